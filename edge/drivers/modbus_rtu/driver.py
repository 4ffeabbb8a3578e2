"""``modbus_rtu``: cold-room sensors on one RS-485 bus, polled as a Modbus RTU master with pymodbus.

    gateway ── USB/RS-485 adapter ══╤═══════════╤═══════════╤══ A/B pair, 120 Ω at both ends
            (this driver = master)  │           │           │
                                slave 1     slave 2     slave 3
                             salmon room  frozen room  fruit room

    one poll, per sensor, per read block (contiguous points of one function):
      master ─ 01 04 0001 0002 CRC ──────────────────────────────▶ slave 1
      master ◀──────────────────────────── 01 04 04 0131 0222 CRC ─ slave 1
      ... then slave 2, slave 3 (a bus is half duplex: one exchange at a time)

The driver is one config device (the bus, with its own ``id``) that publishes for several: each
sensor has its own ``device_id`` and its readings go out on ``bw/v1/{site}/temp/{sensor id}``.
:class:`~edge.drivers.base.Driver` is built around one device, so this driver keeps its
interface as it is and adds two small methods beside it: :meth:`ModbusRtuDriver.emit_for` and
:meth:`ModbusRtuDriver.reject_for` do what ``emit``/``reject`` do, with the sensor's id in the
sink call and the metric labels (so a dashboard sees readings and refusals per sensor, the way it
sees them for any other device). Faults of the bus itself (port gone) are labelled with the bus id.
``status()`` still gives the bus totals, plus a ``sensors`` breakdown; :attr:`device_ids` lists
the ids the bus publishes for.

Failures, each counted once per attempt by reason and never turned into a reading:

    timeout             nothing came back within ``timeout_s``       DeviceError
    crc                 bytes came back but no frame passed its CRC  FrameError (raw = the bytes)
    unexpected_frame    a valid frame, but not the answer asked for  FrameError
    exception_response  the slave answered with an exception code   DeviceError (not retried)
    out_of_range        a value outside the contract's range         FrameError
    duplicate_frame     the answer arrived twice (first copy used)   FrameError
    port_unavailable    the serial port cannot be opened / was lost  DeviceError (bus id)
    driver_error        anything unforeseen during a poll (logged)   DeviceError (bus id)

pymodbus' sync client is used with its own retries off: it reports a CRC-failed answer and
silence alike (as "no response"), so the driver makes each attempt itself and reads what arrived
through the client's ``trace_packet`` hook to tell the two apart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator
from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from bondwatch.contract.topics import DEVICE_ID_PATTERN
from edge import metrics
from edge.drivers.base import Driver, DriverOptions, Sink
from edge.errors import ConfigError, DeviceError, FrameError
from edge.protocols.modbus_map import (
    BIT_FUNCTIONS,
    ReadBlock,
    RegisterMap,
    Registers,
    decode,
    find_frame,
    plan_reads,
    to_temperature,
)
from edge.readings import Reading

log = logging.getLogger(__name__)


class SensorOptions(RegisterMap):
    """One slave on the bus: the device id it publishes as, its address, its register map."""

    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    slave: int = Field(ge=1, le=247)  # 0 is broadcast, 248..255 reserved


class ModbusRtuOptions(DriverOptions):
    port: str  # e.g. /dev/serial/by-id/usb-FTDI_...-port0 (stable across re-plugging, unlike ttyUSB0)
    baudrate: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    timeout_s: float = Field(default=0.5, gt=0, le=30)
    retries: int = Field(default=1, ge=0, le=10)
    poll_s: float = Field(default=10.0, gt=0)
    sensors: list[SensorOptions] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ModbusRtuOptions:
        ids = [s.device_id for s in self.sensors]
        slaves = [s.slave for s in self.sensors]
        if len(set(ids)) != len(ids):
            raise ValueError(f"a sensor device_id appears twice: {ids}")
        if len(set(slaves)) != len(slaves):
            raise ValueError(f"a slave address appears twice on one bus: {slaves}")
        return self


class _Sensor:
    """A sensor's options plus its read plan, worked out once."""

    def __init__(self, options: SensorOptions) -> None:
        self.device_id = options.device_id
        self.slave = options.slave
        blocks = plan_reads(options.points)
        # The block holding temp_c goes first: if it fails, the rest of the sensor is skipped this
        # poll (no reading can be made without it), so a dead sensor costs the bus one timeout.
        blocks.sort(key=lambda b: not any(p.name == "temp_c" for p in b.points))
        self.blocks = blocks
        self.readings = 0
        self.rejected: Counter[str] = Counter()


class _PortLost(Exception):
    pass


class ModbusRtuDriver(Driver):
    name: ClassVar[str] = "modbus_rtu"
    Options: ClassVar[type[DriverOptions]] = ModbusRtuOptions

    def __init__(self, device_id: str, options: dict[str, Any], sink: Sink) -> None:
        super().__init__(device_id, options, sink)
        assert isinstance(self.options, ModbusRtuOptions)
        self.opts: ModbusRtuOptions = self.options
        self.sensors = [_Sensor(s) for s in self.opts.sensors]
        self._by_id = {s.device_id: s for s in self.sensors}
        if device_id in self.device_ids:
            raise ConfigError(f"device {device_id!r} ({self.name}): the bus id must differ from its sensors' ids")
        self._client: ModbusSerialClient | None = None
        self._rx: list[bytes] = []  # what arrived during the current attempt (trace_packet)
        self._port_ok = True
        self._stop = threading.Event()

    @property
    def device_ids(self) -> list[str]:
        """The device ids this bus publishes readings for (not the bus's own id)."""
        return [s.device_id for s in self.sensors]

    # --- the multi-device counterparts of Driver.emit / Driver.reject --------------------------

    def emit_for(self, sensor_id: str, reading: Reading) -> None:
        """Like :meth:`Driver.emit`, for one of the bus's sensors."""
        self.readings += 1
        self._by_id[sensor_id].readings += 1
        metrics.READINGS.labels(sensor_id, reading.kind).inc()
        self.sink.emit(sensor_id, reading)

    def reject_for(self, sensor_id: str, error: FrameError | DeviceError) -> None:
        """Like :meth:`Driver.reject`, labelled with the sensor rather than the bus."""
        self.rejected[error.reason] += 1
        self._by_id[sensor_id].rejected[error.reason] += 1
        self.last_error = str(error)
        metrics.REJECTED.labels(sensor_id, error.reason).inc()
        raw = getattr(error, "raw", b"")
        log.debug("%s: %s%s", sensor_id, error, f" raw={raw.hex(' ')}" if raw else "")

    def status(self) -> dict[str, Any]:
        out = super().status()
        out["sensors"] = {s.device_id: {"readings": s.readings, "rejected": dict(s.rejected)} for s in self.sensors}
        return out

    # --- running -------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        next_poll = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    self.poll_once()
                except Exception as exc:
                    # A surprise from pyserial or pymodbus must not end the thread: the rooms would
                    # go unwatched until someone noticed. Count it, start over with a fresh port.
                    log.exception("%s: poll failed", self.device_id)
                    self.close()
                    self.reject(DeviceError("driver_error", f"{type(exc).__name__}: {exc}", device=self.device_id))
                # Fixed rate; after a slow poll (timeouts) start the next at once rather than in a burst.
                next_poll = max(next_poll + self.opts.poll_s, time.monotonic())
                stop.wait(next_poll - time.monotonic())
        finally:
            self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()  # type: ignore[no-untyped-call]  # pymodbus leaves close() unannotated
            self._client = None

    def poll_once(self) -> int:
        """Read every sensor once; the number of readings emitted. Opens (or reopens) the port as needed."""
        client = self._connect()
        if client is None:
            return 0
        emitted = 0
        try:
            for sensor in self.sensors:
                if self._stop.is_set():
                    break
                emitted += self._poll_sensor(client, sensor)
        except _PortLost as exc:
            self.close()
            self._port_down(str(exc))
        return emitted

    def _connect(self) -> ModbusSerialClient | None:
        if self._client is None:
            self._client = ModbusSerialClient(
                self.opts.port,
                framer=FramerType.RTU,
                baudrate=self.opts.baudrate,
                bytesize=self.opts.bytesize,
                parity=self.opts.parity,
                stopbits=self.opts.stopbits,
                timeout=self.opts.timeout_s,
                retries=0,  # attempts are made here, so each one can be classified (see module doc)
                name=self.device_id,
                trace_packet=self._trace_packet,
            )
        if not self._client.connect():
            self._port_down(f"cannot open {self.opts.port}")
            return None
        if not self._port_ok:
            log.info("%s: port %s is back", self.device_id, self.opts.port)
            self._port_ok = True
        return self._client

    def _port_down(self, message: str) -> None:
        # Counted on every poll while the port is missing (like a timeout per poll), logged once.
        if self._port_ok:
            log.warning("%s: %s; retrying every %.3g s", self.device_id, message, self.opts.poll_s)
            self._port_ok = False
        self.reject(DeviceError("port_unavailable", message, device=self.device_id))

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        # pymodbus hands over the bytes it sends and, for received data, its whole receive buffer
        # each time it grows; keeping those buffers is enough to say afterwards what came back.
        if sending:
            self._rx = []
        else:
            self._rx.append(bytes(data))
        return data

    def _poll_sensor(self, client: ModbusSerialClient, sensor: _Sensor) -> int:
        values: dict[str, float | bool] = {}
        for block in sensor.blocks:
            data = self._read_block(client, sensor, block)
            if data is None:
                if "temp_c" not in values:
                    return 0
                continue  # an optional point's block failed (counted): the reading goes out without it
            for point in block.points:
                try:
                    values[point.name] = decode(point, block.slice(point, data))
                except FrameError as exc:
                    self.reject_for(sensor.device_id, exc)
            if "temp_c" not in values:
                return 0
        try:
            reading = to_temperature(values, datetime.now(UTC))
        except FrameError as exc:
            self.reject_for(sensor.device_id, exc)
            return 0
        self.emit_for(sensor.device_id, reading)
        return 1

    def _read_block(self, client: ModbusSerialClient, sensor: _Sensor, block: ReadBlock) -> Registers | None:
        for _attempt in range(self.opts.retries + 1):
            if self._stop.is_set():
                return None
            try:
                return self._exchange(client, sensor, block)
            except (FrameError, DeviceError) as exc:
                self.reject_for(sensor.device_id, exc)
                if exc.reason == "exception_response":
                    return None  # the device said no on purpose; asking again gets the same answer
        return None

    def _exchange(self, client: ModbusSerialClient, sensor: _Sensor, block: ReadBlock) -> Registers:
        read = {
            1: client.read_coils,
            2: client.read_discrete_inputs,
            3: client.read_holding_registers,
            4: client.read_input_registers,
        }[block.function]
        where = f"slave {sensor.slave} fc {block.function} @{block.address}+{block.count}"
        self._rx = []
        try:
            response = read(block.address, count=block.count, device_id=sensor.slave)
        except ConnectionException as exc:
            raise _PortLost(f"port {self.opts.port} lost: {exc}") from None
        except ModbusIOException:
            raise self._no_answer(sensor, where) from None
        except ModbusException as exc:
            raise FrameError(
                "unexpected_frame", f"{where}: {exc}", raw=self._received(), device=sensor.device_id
            ) from None
        if response.isError():
            raise DeviceError(
                "exception_response", f"{where}: exception code {response.exception_code}", device=sensor.device_id
            )
        data = self._data(response, block, where, sensor)
        self._check_trailing(sensor, block)
        return data

    def _received(self) -> bytes:
        return self._rx[-1] if self._rx else b""

    def _no_answer(self, sensor: _Sensor, where: str) -> FrameError | DeviceError:
        chunks = [c for c in self._rx if c]
        if not chunks:
            return DeviceError("timeout", f"{where}: no answer within {self.opts.timeout_s} s", device=sensor.device_id)
        raw = max(chunks, key=len)
        if any(find_frame(c) for c in chunks):
            # A CRC-valid frame that pymodbus skipped: another slave's address, or a stray frame.
            return FrameError("unexpected_frame", f"{where}: answer for someone else", raw=raw, device=sensor.device_id)
        return FrameError("crc", f"{where}: answer failed its CRC", raw=raw, device=sensor.device_id)

    def _data(self, response: ModbusPDU, block: ReadBlock, where: str, sensor: _Sensor) -> Registers:
        # pymodbus' sync RTU client matches an answer to its request by slave id only; a late frame
        # of the same slave for another function would otherwise be decoded as this one's data.
        if response.function_code != block.function:
            raise FrameError(
                "unexpected_frame",
                f"{where}: answer is for fc {response.function_code}",
                raw=self._received(),
                device=sensor.device_id,
            )
        # Bits come padded to whole bytes, hence the cut.
        bits = block.function in BIT_FUNCTIONS
        data: Sequence[int] | Sequence[bool] = list(response.bits)[: block.count] if bits else list(response.registers)
        if len(data) != block.count:
            raise FrameError(
                "short_response",
                f"{where}: {len(data)} values for {block.count}",
                raw=self._received(),
                device=sensor.device_id,
            )
        return data

    def _check_trailing(self, sensor: _Sensor, block: ReadBlock) -> None:
        # pymodbus decodes the first frame of its buffer and drops the rest; a repeated answer (a
        # repeater echoing, a slave retransmitting) is counted here so it does not pass unseen.
        raw = self._received()
        size = block.response_size
        if len(raw) <= size:
            return
        extra = raw[size:]
        reason = "duplicate_frame" if extra == raw[:size] else "trailing_bytes"
        error = FrameError(reason, f"{len(extra)} bytes after the answer", raw=raw, device=sensor.device_id)
        self.reject_for(sensor.device_id, error)
