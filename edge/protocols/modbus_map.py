"""Modbus register maps of cold-room sensors: registers in, a :class:`~edge.readings.Temperature` out. No I/O.

A Modbus RTU exchange on an RS-485 bus (CRC-16/MODBUS, low byte first on the wire)::

    request   ┌───────┬────┬──────────────┬──────────────┬─────────┐
              │ slave │ fc │ address (BE) │  count (BE)  │ CRC lo hi│   8 bytes
              └───────┴────┴──────────────┴──────────────┴─────────┘
    response  ┌───────┬────┬────────────┬──────────────────────┬─────────┐
              │ slave │ fc │ byte count │ data (2 B / register │ CRC lo hi│  5 + byte count
              │       │    │            │  or 1 bit / coil)    │         │
              └───────┴────┴────────────┴──────────────────────┴─────────┘
    exception ┌───────┬───────────┬────────────────┬─────────┐
              │ slave │ fc | 0x80 │ exception code │ CRC lo hi│   5 bytes
              └───────┴───────────┴────────────────┴─────────┘

    e.g. an SHT20-type transmitter (frames.txt, A1):
      req 01 04 0001 0001 600A     read 1 input register at 0x0001
      rsp 01 04 02 0131 7974       0x0131 = 305, scale 0.1 -> 30.5 °C

A point is one value of a sensor: which function reads it, where, and how its registers become a
number. Registers are 16-bit big-endian words; a 32-bit value takes two, and devices disagree on
which comes first::

    int32 0x0001_E240 (123456)   word_order "big":    [0x0001, 0xE240]   (high word first, Modicon)
                                 word_order "little": [0xE240, 0x0001]   (low word first)

    value = raw * scale + offset           (door contacts: raw != 0, optionally inverted)

Function 1 (coils) and 2 (discrete inputs) read single bits; only a door contact may use them.
The conversions themselves are pymodbus's (``convert_from_registers`` / ``convert_to_registers``,
``FramerRTU`` for the CRC), so this module and the bus agree byte for byte.

Reasons raised (:class:`~edge.errors.FrameError`): :func:`decode` ``short_response`` (not the
point's register count), ``malformed`` (a register outside 16 bits), ``out_of_range`` (a float
that is NaN or infinite); :func:`to_temperature` ``missing_temp``, ``out_of_range``;
:func:`parse_response` ``crc``, ``malformed`` (not one complete response pymodbus can decode).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU

from edge.errors import FrameError
from edge.readings import Temperature

log = logging.getLogger(__name__)

PointName = Literal["temp_c", "rh_pct", "door_open", "battery_v"]
RegisterType = Literal["int16", "uint16", "int32", "uint32", "float32"]
FunctionCode = Literal[1, 2, 3, 4]
Registers = Sequence[int] | Sequence[bool]

BIT_FUNCTIONS = frozenset({1, 2})
REGISTER_FUNCTIONS = frozenset({3, 4})
# Modbus application protocol limits for one read request.
MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000

_DATATYPE = ModbusClientMixin.DATATYPE
_DATATYPES: dict[str, ModbusClientMixin.DATATYPE] = {
    "int16": _DATATYPE.INT16,
    "uint16": _DATATYPE.UINT16,
    "int32": _DATATYPE.INT32,
    "uint32": _DATATYPE.UINT32,
    "float32": _DATATYPE.FLOAT32,
}
WIDTH: dict[str, int] = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}

#: Valid ranges of the contract's temp payload fields (temp_c and rh_pct are the contract's own;
#: battery_v has no contract bound, 0..60 V covers a lithium cell up to a 48 V supply rail).
RANGES: dict[str, tuple[float, float]] = {"temp_c": (-80.0, 85.0), "rh_pct": (0.0, 100.0), "battery_v": (0.0, 60.0)}


class Point(BaseModel):
    """One value of a sensor and where it lives in the device's Modbus address space."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: PointName
    function: FunctionCode
    address: int = Field(ge=0, le=0xFFFF)  # zero-based protocol address, as on the wire
    count: Literal[1, 2] = 1  # registers (or bits); filled in from ``type`` when left out
    type: RegisterType = "int16"
    scale: float = 1.0
    offset: float = 0.0
    word_order: Literal["big", "little"] = "big"
    # Door contacts come normally-open and normally-closed; ``invert`` makes True mean "door open".
    invert: bool = False

    @model_validator(mode="before")
    @classmethod
    def _count_from_type(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "count" not in data:
            data = dict(data)
            data["count"] = 1 if data.get("function") in BIT_FUNCTIONS else WIDTH.get(data.get("type", "int16"), 1)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Point:
        if self.function in BIT_FUNCTIONS:
            if self.name != "door_open":
                raise ValueError(f"{self.name}: function {self.function} reads single bits; only door_open may use it")
            if self.count != 1:
                raise ValueError(f"{self.name}: a coil or discrete input point has count 1")
        elif self.count != WIDTH[self.type]:
            raise ValueError(
                f"{self.name}: type {self.type} takes {WIDTH[self.type]} register(s), count is {self.count}"
            )
        if self.address + self.count - 1 > 0xFFFF:
            raise ValueError(f"{self.name}: address {self.address} + count {self.count} runs past 0xFFFF")
        if not (math.isfinite(self.scale) and self.scale != 0 and math.isfinite(self.offset)):
            raise ValueError(f"{self.name}: scale must be finite and non-zero, offset finite")
        return self

    @property
    def end(self) -> int:
        """One past the last register (or bit) of the point."""
        return self.address + self.count


class RegisterMap(BaseModel):
    """The points of one sensor; ``temp_c`` is required, each name at most once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points: list[Point] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> RegisterMap:
        names = [p.name for p in self.points]
        if len(set(names)) != len(names):
            raise ValueError(f"a point name appears twice: {names}")
        if "temp_c" not in names:
            raise ValueError("a cold-room sensor map needs a temp_c point")
        return self


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request covering contiguous points of one function."""

    function: int
    address: int
    count: int
    points: tuple[Point, ...]

    def slice(self, point: Point, data: Registers) -> Registers:
        """The registers (or bits) of ``point`` within this block's response data."""
        start = point.address - self.address
        return data[start : start + point.count]

    @property
    def response_size(self) -> int:
        """Bytes of a normal RTU response to this block: slave, fc, byte count, data, CRC."""
        data = (self.count + 7) // 8 if self.function in BIT_FUNCTIONS else 2 * self.count
        return 5 + data


def plan_reads(points: Sequence[Point]) -> list[ReadBlock]:
    """Group points into as few requests as possible: same function, registers touching or overlapping.

    Gaps are never bridged: many devices answer "illegal data address" for a register they do not
    implement, and one such register would fail the whole merged request.
    """
    blocks: list[ReadBlock] = []
    for point in sorted(points, key=lambda p: (p.function, p.address, p.count)):
        limit = MAX_BITS_PER_READ if point.function in BIT_FUNCTIONS else MAX_REGISTERS_PER_READ
        last = blocks[-1] if blocks else None
        if last and last.function == point.function and point.address <= last.address + last.count:
            end = max(last.address + last.count, point.end)
            if end - last.address <= limit:
                blocks[-1] = ReadBlock(last.function, last.address, end - last.address, (*last.points, point))
                continue
        blocks.append(ReadBlock(point.function, point.address, point.count, (point,)))
    return blocks


def _decimals(value: float) -> int:
    exponent = Decimal(repr(value)).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def decode(point: Point, registers: Registers) -> float | bool:
    """The value of ``point`` from exactly its own registers (or bits).

    Integer registers times a decimal scale land on binary-float noise (305 * 0.1 is fine, 3 * 0.1
    is 0.30000000000000004); the result is rounded to the decimals the scale and offset carry, so
    the payload says 0.3. float32 is rounded to 7 significant digits, the precision it has.
    """
    if len(registers) != point.count:
        raise FrameError("short_response", f"{point.name}: {len(registers)} values for a point of {point.count}")
    if point.function in BIT_FUNCTIONS:
        return bool(registers[0]) != point.invert
    words = [int(r) for r in registers]
    if any(not 0 <= w <= 0xFFFF for w in words):
        raise FrameError("malformed", f"{point.name}: register value out of 16 bits: {words}")
    raw = ModbusClientMixin.convert_from_registers(words, _DATATYPES[point.type], word_order=point.word_order)
    if not isinstance(raw, int | float):  # pragma: no cover - a numeric DATATYPE always gives a number
        raise FrameError("malformed", f"{point.name}: {raw!r} is not a number")
    if point.name == "door_open":
        return (raw != 0) != point.invert
    if point.type == "float32":
        if not math.isfinite(raw):
            # NaN/inf is how many float sensors say "probe broken": refuse it like any bad value.
            raise FrameError("out_of_range", f"{point.name}: not a finite number ({raw})")
        return float(f"{raw * point.scale + point.offset:.7g}")
    return round(raw * point.scale + point.offset, max(_decimals(point.scale), _decimals(point.offset)))


def encode(point: Point, value: float | bool) -> list[int] | list[bool]:
    """The registers (or bits) a device shows for ``value``: the inverse of :func:`decode`, for simulators."""
    if point.function in BIT_FUNCTIONS:
        return [bool(value) != point.invert]
    if point.name == "door_open":
        return ModbusClientMixin.convert_to_registers(
            int(bool(value) != point.invert), _DATATYPES[point.type], word_order=point.word_order
        )
    raw: float = (float(value) - point.offset) / point.scale
    if point.type != "float32":
        raw = round(raw)
    return ModbusClientMixin.convert_to_registers(raw, _DATATYPES[point.type], word_order=point.word_order)


def to_temperature(values: Mapping[str, float | bool], ts: datetime) -> Temperature:
    """A contract temp reading from decoded point values; any value outside its range refuses the whole reading.

    Refusing the reading, rather than dropping the bad field, is deliberate: a sensor that reports
    140 %RH is not trusted for its temperature either, and the refusal is counted, never silent.
    """
    if "temp_c" not in values:
        raise FrameError("missing_temp", "no temp_c value")
    numbers: dict[str, float] = {}
    for name, (low, high) in RANGES.items():
        if name not in values:
            continue
        value = float(values[name])
        if not (math.isfinite(value) and low <= value <= high):
            raise FrameError("out_of_range", f"{name} {value} outside {low}..{high}")
        numbers[name] = value
    door = values.get("door_open")
    return Temperature(
        ts=ts,
        temp_c=numbers["temp_c"],
        rh_pct=numbers.get("rh_pct"),
        door_open=None if door is None else bool(door),
        battery_v=numbers.get("battery_v"),
    )


# --- raw frames -------------------------------------------------------------------------------


def crc_ok(frame: bytes) -> bool:
    """True if the last two bytes of an RTU frame are the CRC-16/MODBUS of the rest (pymodbus's CRC)."""
    if len(frame) < 4:
        return False
    return FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big"))


def find_frame(data: bytes) -> bytes | None:
    """The shortest CRC-valid frame at the start of ``data``, if any (to tell noise from a stray frame)."""
    for end in range(4, len(data) + 1):
        if crc_ok(data[:end]):
            return data[:end]
    return None


@dataclass(frozen=True, slots=True)
class Response:
    """A decoded RTU response; bits of a coil read come padded to whole bytes."""

    slave: int
    function: int
    registers: list[int]
    bits: list[bool]
    exception_code: int | None = None


def parse_response(frame: bytes) -> Response:
    """One complete RTU response frame, CRC checked, decoded with pymodbus's own framer and PDUs."""
    if not crc_ok(frame):
        raise FrameError("crc", "CRC mismatch", raw=frame)
    framer = FramerRTU(DecodePDU(is_server=False))
    try:
        used, pdu = framer.handleFrame(frame, 0, 0)
    except ModbusException as exc:  # CRC-valid bytes whose PDU pymodbus cannot decode
        raise FrameError("malformed", f"undecodable Modbus response: {exc}", raw=frame) from None
    if pdu is None or used != len(frame):
        raise FrameError("malformed", "not one complete Modbus response", raw=frame)
    if pdu.isError():
        return Response(pdu.dev_id, pdu.function_code & 0x7F, [], [], exception_code=pdu.exception_code)
    return Response(pdu.dev_id, pdu.function_code, list(pdu.registers), list(pdu.bits))
