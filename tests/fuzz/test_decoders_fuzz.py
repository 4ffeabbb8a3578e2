"""Property-based and fuzz tests of every edge protocol module and of the framers that cut byte streams.

For each protocol, three kinds of input:

* arbitrary bytes, text or JSON: shallow, but they find what a careless first check misses;
* near-valid: real frames (built as the simulators build them: NMEA with pynmea2, Modbus RTU frames
  with pymodbus, RFID lines with the protocol's own encoder; gpsd JSON and LLRP reports with the small
  encoders below, as no simulator speaks those) with fields changed (checksum recomputed, so that the
  change reaches the field parsers), bytes changed, truncated, concatenated, reordered and split at
  random points, as a serial port or socket hands them over;
* valid: a round trip, frame built from a reading -> the same reading.

Properties: a decoder returns typed readings that the platform's contract accepts, or raises only
:class:`edge.errors.FrameError` with one of the reasons its module documents; a framer drops bytes
only with a documented reason, counted in ``rejected`` and handed to ``on_error``; no case takes
longer than the deadline (conftest.py). Each generator is written once and run two ways
(conftest.py): ``structured`` (Hypothesis draws every choice and shrinks a failure) and ``fast``
(a Hypothesis-seeded Random per case, for volume).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import string
import struct
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pynmea2
import pytest
from hypothesis import given, settings
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsResponse, ReadDiscreteInputsResponse
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

from bondwatch.contract.payloads import validate_payload
from edge.drivers.base import Driver
from edge.drivers.gpsd.driver import GpsdDriver
from edge.drivers.nmea_serial.driver import NmeaSerialDriver
from edge.drivers.rfid_serial.driver import RfidSerialDriver
from edge.drivers.stream import Source, StreamDriver
from edge.errors import DeviceError, FrameError
from edge.protocols import epc as epc_mod
from edge.protocols import gpsd as gpsd_mod
from edge.protocols import llrp as llrp_mod
from edge.protocols import modbus_map as modbus_mod
from edge.protocols import nmea as nmea_mod
from edge.protocols import rfid_serial as rfid_mod
from edge.protocols._lines import LineFramer
from edge.protocols.epc import normalize_epc, pure_identity_uri
from edge.protocols.gpsd import GpsdDecoder, GpsdFramer
from edge.protocols.llrp import LlrpDecoder, LlrpFramer
from edge.protocols.modbus_map import (
    MAX_BITS_PER_READ,
    MAX_REGISTERS_PER_READ,
    WIDTH,
    Point,
    crc_ok,
    decode,
    encode,
    find_frame,
    parse_response,
    plan_reads,
    to_temperature,
)
from edge.protocols.nmea import BWEV, TALKERS, NmeaDecoder, NmeaFramer
from edge.protocols.rfid_serial import (
    SerialRfidDecoder,
    SerialRfidFramer,
    checksum,
    encode_heartbeat_line,
    encode_tag_line,
)
from edge.readings import Position, Reading, TagRead, Temperature, payload
from simulators.devices.gnss_terminal import nmea_sentences
from tests.fuzz.conftest import FUZZ, Chooser, cases, fast, json_value, structured, time_limit

# --- documented reasons -------------------------------------------------------------------------

LINE_REASONS = frozenset({"overlong", "garbage", "truncated"})
NMEA_REASONS = frozenset(
    {"bad_checksum", "no_checksum", "malformed", "empty_fields", "no_fix", "no_date", "out_of_range", "unsupported"}
)
GPSD_REASONS = frozenset({"malformed", "empty_fields", "no_fix", "no_time", "out_of_range"})
RFID_REASONS = frozenset(
    {"truncated", "bad_checksum", "malformed", "empty_fields", "bad_epc", "out_of_range", "unsupported"}
)
LLRP_FRAMER_REASONS = frozenset({"malformed", "unsupported", "overlong", "truncated"})
LLRP_DECODER_REASONS = frozenset({"malformed", "unsupported", "no_time"})
LLRP_TAG_REASONS = frozenset({"bad_epc"})
EPC_REASONS = frozenset({"bad_epc"})
MODBUS_DECODE_REASONS = frozenset({"short_response", "malformed", "out_of_range"})
MODBUS_TEMPERATURE_REASONS = frozenset({"missing_temp", "out_of_range"})
MODBUS_FRAME_REASONS = frozenset({"crc", "malformed"})

DOCUMENTED: list[tuple[Any, frozenset[str]]] = [
    (nmea_mod, NMEA_REASONS | LINE_REASONS),
    (gpsd_mod, GPSD_REASONS | LINE_REASONS),
    (rfid_mod, RFID_REASONS | LINE_REASONS),
    (llrp_mod, LLRP_FRAMER_REASONS | LLRP_DECODER_REASONS | LLRP_TAG_REASONS),
    (epc_mod, EPC_REASONS),
    (modbus_mod, MODBUS_DECODE_REASONS | MODBUS_TEMPERATURE_REASONS | MODBUS_FRAME_REASONS),
]


def documents(doc: str | None, reason: str) -> bool:
    """The docstring names ``reason`` as code: ``reason`` or FrameError("reason")."""
    return re.search(rf"(``|\"){re.escape(reason)}(``|\")", doc or "") is not None


@pytest.mark.parametrize(("module", "reasons"), DOCUMENTED, ids=lambda v: getattr(v, "__name__", ""))
def test_the_reasons_asserted_here_are_the_documented_ones(module: Any, reasons: frozenset[str]) -> None:
    for reason in reasons:
        assert documents(module.__doc__, reason), f"{module.__name__} does not document reason {reason!r}"


# --- shared checks ------------------------------------------------------------------------------


def refused(exc: BaseException, allowed: frozenset[str]) -> None:
    """``exc`` is the module's documented refusal: a FrameError with a known reason and a message."""
    assert isinstance(exc, FrameError), f"{type(exc).__name__}: {exc}"
    assert exc.reason in allowed, f"undocumented reason {exc.reason!r}: {exc}"
    assert str(exc).strip(), "a refusal without a message"
    assert isinstance(exc.raw, bytes)


def contract_accepts(reading: Reading) -> None:
    """The platform's validator takes the edge's payload of this reading as it is (seq 0)."""
    items = validate_payload(reading.kind, orjson.dumps(payload(reading, 0)))
    assert len(items) == 1


def check_position(p: Position) -> None:
    assert isinstance(p, Position)
    assert p.ts.tzinfo is not None and p.ts.utcoffset() == timedelta(0), p.ts
    assert p.fix in ("2d", "3d"), p.fix  # a "none" fix is never produced
    assert -90 <= p.lat <= 90 and -180 <= p.lon <= 180
    assert p.speed_kmh is None or 0 <= p.speed_kmh <= 1000
    assert p.heading_deg is None or 0 <= p.heading_deg < 360
    assert p.sats is None or (isinstance(p.sats, int) and 0 <= p.sats <= 255)
    contract_accepts(p)


def check_tag(r: TagRead) -> None:
    assert isinstance(r, TagRead)
    assert r.ts.tzinfo is not None
    assert r.epc == r.epc.upper() and len(r.epc) % 4 == 0 and 24 <= len(r.epc) <= 124, r.epc
    assert r.count >= 1
    assert r.epc_uri is None or r.epc_uri.startswith("urn:epc:id:")
    contract_accepts(r)


class Errors(list[FrameError]):
    """An ``on_error`` callback that keeps what it is handed."""

    def __call__(self, error: FrameError) -> None:
        self.append(error)


def framer_consistent(framer: LineFramer | LlrpFramer, errors: Errors, allowed: frozenset[str]) -> None:
    """Every drop was handed to on_error with a documented reason and counted once in ``rejected``."""
    for error in errors:
        refused(error, allowed)
    assert Counter(e.reason for e in errors) == +framer.rejected


def lines_ok(lines: Sequence[str], framer: LineFramer) -> None:
    for line in lines:
        assert isinstance(line, str) and line == line.strip() and line
        assert "\r" not in line and "\n" not in line
        assert len(line.encode(framer.encoding)) <= framer.max_len


# --- generic byte-stream generators -----------------------------------------------------------

INTERESTING_BYTES = b'\r\n$*,{}\x00\xff\x80.-0123456789ABCDEFabcdef \t"\\:'
INSERTS = [b"\r\n", b"$", b"*", b",", b"\n", b"\x00", b"\xff\xfe"]
TERMINATORS = ["\r\n", "\r\n", "\r\n", "\n", "\r"]
ASCII_NO_SEPARATORS = "".join(c for c in map(chr, range(128)) if c not in ",*$\r\n")


def chunks_of(c: Chooser, data: bytes) -> list[bytes]:
    """``data`` split at random points (as a serial port or a socket hands it over)."""
    cuts = sorted(c.integer(0, len(data)) for _ in range(c.integer(0, 6)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def damaged(c: Chooser, data: bytes, max_ops: int = 3) -> bytes:
    """``data`` with 0..max_ops byte-level changes: flips, replacements, insertions, deletions, cuts, repeats."""
    buf = bytearray(data)
    for _ in range(c.integer(0, max_ops)):
        op = c.choice(["flip", "set", "insert", "delete", "truncate", "duplicate"])
        pos = c.integer(0, len(buf))
        if op == "flip" and pos < len(buf):
            buf[pos] ^= 1 << c.integer(0, 7)
        elif op == "set" and pos < len(buf):
            buf[pos] = c.choice(INTERESTING_BYTES) if c.boolean() else c.integer(0, 255)
        elif op == "insert":
            buf[pos:pos] = c.choice(INSERTS) if c.boolean() else c.binary(8)
        elif op == "delete":
            del buf[pos : pos + c.integer(1, 8)]
        elif op == "truncate":
            del buf[pos:]
        elif op == "duplicate":
            buf[pos:pos] = buf[pos : c.integer(pos, min(len(buf), pos + 64))]
    return bytes(buf)


def stream_of(c: Chooser, lines: Sequence[str], complete: bool = False) -> bytes:
    """Lines joined with CR LF (now and then LF or CR alone); the last one maybe left unterminated."""
    out = "".join(line + c.choice(TERMINATORS) for line in lines)
    if lines and not complete and c.integer(0, 9) == 0:
        out = out.rstrip("\r\n")
    return out.encode("latin-1", "replace")


def to_json_line(value: Any) -> str:
    """JSON text; NaN and Infinity spelt out as Python's json does (gpsd never sends them, a fuzzer does)."""
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return repr(value)


# ================================================================================================
# Line framers (NMEA, gpsd, serial RFID)
# ================================================================================================

LINE_FRAMERS = ["nmea", "gpsd", "rfid"]


def line_framer(which: str, errors: Errors) -> LineFramer:
    if which == "nmea":
        return NmeaFramer(on_error=errors)
    if which == "gpsd":
        return GpsdFramer(max_len=256, on_error=errors)
    return SerialRfidFramer(on_error=errors)


def framer_bytes_case(c: Chooser) -> tuple[str, list[bytes]]:
    data = c.binary(600)
    if c.boolean():  # mostly the bytes that mean something to a framer
        data = bytes(INTERESTING_BYTES[b % len(INTERESTING_BYTES)] for b in data)
    return c.choice(LINE_FRAMERS), chunks_of(c, data)


def check_line_framer(case: tuple[str, list[bytes]]) -> None:
    which, chunks = case
    errors = Errors()
    framer = line_framer(which, errors)
    with time_limit():
        lines = [line for chunk in chunks for line in framer.feed(chunk)]
        assert framer.flush() == []
    lines_ok(lines, framer)
    if which == "nmea":
        assert all(line.startswith("$") for line in lines)
    if which == "gpsd":
        assert all(line.startswith("{") for line in lines)
    framer_consistent(framer, errors, LINE_REASONS)


@settings(FUZZ, max_examples=cases(200))
@given(case=structured(framer_bytes_case))
def test_line_framers_take_any_bytes(case: tuple[str, list[bytes]]) -> None:
    check_line_framer(case)


@settings(FUZZ, max_examples=cases(1500))
@given(case=fast(framer_bytes_case))
def test_line_framers_take_any_bytes_fast(case: tuple[str, list[bytes]]) -> None:
    check_line_framer(case)


def framer_split_case(c: Chooser) -> tuple[str, bytes, list[bytes]]:
    prefix = c.choice(["$", "{", "TAG,", ""])
    lines = [
        prefix + c.text(80, string.printable.replace("\r", "").replace("\n", ""), 1) for _ in range(c.integer(0, 8))
    ]
    stream = stream_of(c, lines)
    return c.choice(LINE_FRAMERS), stream, chunks_of(c, stream)


@settings(FUZZ, max_examples=cases(200))
@given(case=structured(framer_split_case))
def test_line_framers_give_the_same_lines_however_the_stream_is_split(case: tuple[str, bytes, list[bytes]]) -> None:
    which, stream, chunks = case
    whole_errors, split_errors = Errors(), Errors()
    whole, split = line_framer(which, whole_errors), line_framer(which, split_errors)
    with time_limit():
        expected = whole.feed(stream)
        whole.flush()
        got = [line for chunk in chunks for line in split.feed(chunk)]
        split.flush()
    assert got == expected
    assert split.rejected == whole.rejected
    framer_consistent(split, split_errors, LINE_REASONS)


# ================================================================================================
# NMEA 0183
# ================================================================================================

NMEA_FIELD_VALUES = [
    "", "A", "V", "N", "E", "M", "S", "D", "W", "T", "K", "0", "1", "2", "3", "4", "5", "6", "9", "-1", "-0",
    "00", "1e400", "nan", "NaN", "inf", "-inf", "1e-400", "999999999", "3960.0000", "9000.0000", "9000.0001",
    "18000.0000", "18000.0001", "0000.0000", "4916.45", "12311.12", "235960", "240000", "000000.00",
    "123519.999", "99", "x", "010100", "311299", "290223", "290224", "320101", "001300", "01", "12", "13",
    "31", "32", "0000", "1999", "2068", "9999", "10000", "99999",
]  # fmt: skip
SENTENCE_TYPES = ["RMC", "GGA", "GLL", "VTG", "GSA", "ZDA", "GSV", "TXT", "XYZ"]
SOME_TALKERS = [*sorted(TALKERS), "XX", "PB", "", "G"]


def nmea_line(body: str) -> str:
    """``$body*hh`` with the right checksum (pynmea2's XOR)."""
    return f"${body}*{pynmea2.NMEASentence.checksum(body):02X}"


ODD_SENTENCES = [
    nmea_line("PBWEV,76.5,18234.2,,120554.8"),
    nmea_line("PBWEV"),
    nmea_line("PBWEV,,,,"),
    nmea_line("PBWEX,1,2"),
    nmea_line("PGRMZ,246,f,3"),
    nmea_line("GPTXT,01,01,02,ANTSTATUS=OK"),
    nmea_line("CCGPQ,GGA"),
    nmea_line("GPZDA,235959.99,31,12,9999,00,00"),
    nmea_line("GPZDA,000000.00,01,01,0001,00,00"),
    nmea_line("GPGGA,120000.00,3930.0000,N,10948.0000,E,1,08,0.9,1350.0,M,-28.0,M,,"),
    nmea_line("GPGSA,A,3,,,,,,,,,,,,,1.6,0.9,1.3"),
    "$GPRMC,120000.00,A,3930.0000,N,10948.0000,E,0.0,0.0,010126,,,A",
]


def nmea_field(c: Chooser) -> str:
    how = c.integer(0, 4)
    if how <= 1:
        return c.choice(NMEA_FIELD_VALUES)
    if how == 2:
        return c.text(12, ASCII_NO_SEPARATORS)
    if how == 3:
        return repr(c.any_float())
    return str(c.integer(-(10**20), 10**20))


def optional(c: Chooser, low: float, high: float) -> float | None:
    return None if c.integer(0, 3) == 0 else c.real(low, high)


NMEA_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
NMEA_SPAN_CS = int((datetime(2067, 12, 31, tzinfo=UTC) - NMEA_EPOCH).total_seconds() * 100)


def track(c: Chooser, size: int | None = None) -> list[Position]:
    """1..4 fixes, centisecond times (as NMEA carries them) in 2000..2068 (RMC dates have two-digit
    years), strictly increasing and less than 12 h apart (each its own epoch, the day inferable)."""
    ts = NMEA_EPOCH + timedelta(milliseconds=10 * c.integer(0, NMEA_SPAN_CS))
    out: list[Position] = []
    for i in range(size if size is not None else c.integer(1, 4)):
        if i:
            ts += timedelta(milliseconds=10 * c.integer(1, 12 * 360_000 - 1))
        sats = None if c.integer(0, 3) == 0 else c.integer(0, 99)
        out.append(
            Position(
                ts=ts,
                lat=c.real(-89.9, 89.9),
                lon=c.real(-179.9, 179.9),
                fix=c.choice(["2d", "3d"]),
                speed_kmh=optional(c, 0, 999),
                heading_deg=optional(c, 0, 359.9),
                hdop=optional(c, 0, 99),
                sats=sats,
                soc_pct=optional(c, 0, 100),
                energy_kwh=optional(c, 0, 1e6),
                h2_kg=optional(c, 0, 1e4),
                odometer_km=optional(c, 0, 1e7),
            )
        )
    return out


def _lat_lon_fields(p: Position) -> tuple[str, str, str, str]:
    deg = int(abs(p.lat))
    lat = f"{deg:02d}{(abs(p.lat) - deg) * 60:07.4f}"
    deg = int(abs(p.lon))
    lon = f"{deg:03d}{(abs(p.lon) - deg) * 60:07.4f}"
    return lat, "N" if p.lat >= 0 else "S", lon, "E" if p.lon >= 0 else "W"


def extra_sentences(p: Position, talker: str) -> list[str]:
    """GLL and ZDA of the same fix, which the truck terminals do not send but other receivers do."""
    t = p.ts.strftime("%H%M%S.") + f"{p.ts.microsecond // 10000:02d}"
    lat, ns, lon, ew = _lat_lon_fields(p)
    day = (p.ts.strftime("%d"), p.ts.strftime("%m"), p.ts.strftime("%Y"))
    return [
        str(pynmea2.GLL(talker, "GLL", (lat, ns, lon, ew, t, "A", "A"))),
        str(pynmea2.ZDA(talker, "ZDA", (t, *day, "00", "00"))),
    ]


def mutate_sentence(c: Chooser, line: str) -> str:
    """One field-level change, usually with the checksum recomputed so that it reaches the field parsers."""
    fields = line[1:].split("*", 1)[0].split(",")
    op = c.choice(["set", "set", "set", "drop", "add", "cut", "talker", "type"])
    if op == "set":
        fields[c.integer(0, len(fields) - 1)] = nmea_field(c)
    elif op == "drop" and len(fields) > 1:
        del fields[c.integer(1, len(fields) - 1)]
    elif op == "add":
        fields.insert(c.integer(1, len(fields)), nmea_field(c))
    elif op == "cut":
        fields = fields[: c.integer(1, len(fields))]
    elif op == "talker" and not fields[0].startswith("P"):
        fields[0] = c.choice(SOME_TALKERS) + fields[0][2:]
    elif op == "type" and not fields[0].startswith("P"):
        fields[0] = fields[0][:2] + c.choice(SENTENCE_TYPES)
    body = ",".join(fields)
    how = c.choice(["recompute"] * 6 + ["keep", "none", "lower", "garble"])
    if how == "recompute":
        return nmea_line(body)
    if how == "keep":
        return f"${body}*{line.rsplit('*', 1)[-1]}"
    if how == "none":
        return f"${body}"
    if how == "lower":
        return nmea_line(body).lower()
    return f"${body}*{c.text(3, '0123456789ABCDEFGZ*')}"


def nmea_lines(c: Chooser) -> list[str]:
    """Sentences of a few fix epochs (the simulator's RMC/GGA/GSA/VTG/$PBWEV, plus GLL/ZDA) with damage."""
    talker = c.choice(sorted(TALKERS))
    lines: list[str] = []
    for p in track(c):
        lines += [s.decode("ascii").rstrip() for s in nmea_sentences(p, talker)]
        if c.boolean():
            lines += extra_sentences(p, talker)
    lines += [c.choice(ODD_SENTENCES) for _ in range(c.integer(0, 3))]
    for _ in range(c.integer(0, 4)):
        i = c.integer(0, len(lines) - 1)
        op = c.choice(["mutate", "mutate", "mutate", "drop", "duplicate", "swap"])
        if op == "mutate":
            lines[i] = mutate_sentence(c, lines[i])
        elif op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        else:
            j = c.integer(0, len(lines) - 1)
            lines[i], lines[j] = lines[j], lines[i]
    return lines


def nmea_case(c: Chooser) -> list[bytes]:
    return chunks_of(c, damaged(c, stream_of(c, nmea_lines(c)), max_ops=2))


def run_nmea_lines(lines: Sequence[str]) -> list[Position]:
    decoder = NmeaDecoder(device="trk")
    out: list[Position] = []
    for line in lines:
        try:
            out += decoder.decode(line)
        except FrameError as exc:
            refused(exc, NMEA_REASONS)
    out += decoder.flush()
    for p in out:
        check_position(p)
    return out


def run_nmea_stream(chunks: Sequence[bytes]) -> list[Position]:
    errors = Errors()
    framer = NmeaFramer(on_error=errors, device="trk")
    with time_limit():
        lines = [line for chunk in chunks for line in framer.feed(chunk)]
        framer.flush()
        out = run_nmea_lines(lines)
    lines_ok(lines, framer)
    framer_consistent(framer, errors, LINE_REASONS)
    return out


def nmea_any_lines(c: Chooser) -> list[str]:
    out = []
    for _ in range(c.integer(0, 12)):
        how = c.integer(0, 2)
        if how == 0:
            out.append(c.text(100))
        elif how == 1:
            out.append(nmea_line(",".join(nmea_field(c) for _ in range(c.integer(1, 16)))))
        else:
            kind = c.choice([*(t + s for t in ("GP", "GN", "BD", "XX") for s in SENTENCE_TYPES), "PBWEV"])
            out.append(nmea_line(",".join([kind, *(nmea_field(c) for _ in range(c.integer(0, 16)))])))
    return out


@settings(FUZZ, max_examples=cases(150))
@given(lines=structured(nmea_any_lines))
def test_nmea_decoder_takes_any_line(lines: list[str]) -> None:
    with time_limit():
        run_nmea_lines(lines)


@settings(FUZZ, max_examples=cases(150))
@given(chunks=structured(nmea_case))
def test_nmea_near_valid_streams(chunks: list[bytes]) -> None:
    run_nmea_stream(chunks)


@settings(FUZZ, max_examples=cases(3000))
@given(chunks=fast(nmea_case))
def test_nmea_near_valid_streams_fast(chunks: list[bytes]) -> None:
    run_nmea_stream(chunks)


def nmea_round_trip_case(c: Chooser) -> tuple[list[Position], list[bytes]]:
    fixes = track(c)
    talker = c.choice(sorted(TALKERS))
    return fixes, chunks_of(c, b"".join(s for p in fixes for s in nmea_sentences(p, talker)))


@settings(FUZZ, max_examples=cases(100))
@given(case=structured(nmea_round_trip_case))
def test_nmea_round_trip_of_the_simulator_sentences(case: tuple[list[Position], list[bytes]]) -> None:
    fixes, chunks = case
    got = run_nmea_stream(chunks)
    assert len(got) == len(fixes)
    ev: Position | None = None
    for i, (p, q) in enumerate(zip(fixes, got, strict=True)):
        if any(v is not None for v in (p.soc_pct, p.energy_kwh, p.h2_kg, p.odometer_km)):
            ev = p  # a $PBWEV replaces the whole set and rides on every later fix
        assert abs(q.ts - p.ts) <= timedelta(microseconds=10)
        assert math.isclose(q.lat, p.lat, abs_tol=2e-6) and math.isclose(q.lon, p.lon, abs_tol=2e-6)
        # The epoch is emitted at its GGA; the GSA after it informs the next epoch (module docstring).
        assert q.fix == ("3d" if i == 0 else fixes[i - 1].fix)
        assert _close(q.speed_kmh, p.speed_kmh, 0.01)
        assert _close(q.heading_deg, None if p.heading_deg is None else float(f"{p.heading_deg:.1f}") % 360, 1e-9)
        assert _close(q.hdop, None if p.hdop is None else float(f"{p.hdop:.1f}"), 1e-9)
        assert q.sats == (p.sats or 0)
        assert _close(q.soc_pct, ev and ev.soc_pct, 0.05)
        assert _close(q.energy_kwh, ev and ev.energy_kwh, 0.005)
        assert _close(q.h2_kg, ev and ev.h2_kg, 0.0005)
        assert _close(q.odometer_km, ev and ev.odometer_km, 0.05)


def _close(got: float | None, expected: float | None, tol: float) -> bool:
    if got is None or expected is None:
        return got is None and expected is None
    return math.isclose(got, expected, abs_tol=tol)


def test_bwev_is_registered_with_pynmea2() -> None:
    assert isinstance(pynmea2.parse(nmea_line("PBWEV,1,2,3,4")), BWEV)


# ================================================================================================
# gpsd JSON
# ================================================================================================

GPSD_TIME_VALUES: list[Any] = [
    "2013-04-01T03:01:29.000Z",
    "2013-04-01T03:01:29",
    "2013-04-01T03:01:29+08:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00Z",
    "2013-02-30T00:00:00Z",
    "",
    "now",
    1e300,
    -1e300,
    2**64,
    -(2**64),
    True,
    None,
    0,
]
GPSD_NUMBER_VALUES: list[Any] = [0, -0.0, 90, -90, 180, -180, 90.0000001, 360, 1e308, "1.5", True, None, [], {}]


def gpsd_time(c: Chooser) -> Any:
    how = c.integer(0, 3)
    if how == 0:
        return (NMEA_EPOCH + timedelta(milliseconds=10 * c.integer(0, NMEA_SPAN_CS))).isoformat().replace("+00:00", "Z")
    if how == 1:
        return c.choice(GPSD_TIME_VALUES)
    if how == 2:
        return c.any_float()
    return c.integer(-(2**64), 2**64)


def gpsd_number(c: Chooser) -> Any:
    how = c.integer(0, 3)
    if how == 0:
        return c.real(-200, 200)
    if how == 1:
        return c.any_float()
    if how == 2:
        return c.choice(GPSD_NUMBER_VALUES)
    return c.integer(-(2**64), 2**64)


def gpsd_object(c: Chooser) -> dict[str, Any]:
    kind = c.choice(["TPV", "TPV", "TPV", "SKY", "SKY", "VERSION", "DEVICES", None, 7])
    obj: dict[str, Any] = {} if kind is None else {"class": kind}
    if kind == "TPV":
        obj["mode"] = c.choice([0, 1, 2, 3, 3, 3, -1, 4, True, "3", 3.0, None]) if c.integer(0, 4) else c.integer(
            -(2**40), 2**40)  # fmt: skip
        obj["time"] = gpsd_time(c)
        for key in ("lat", "lon", "speed", "track", "altHAE"):
            obj[key] = gpsd_number(c)
    elif kind == "SKY":
        obj["hdop"] = gpsd_number(c)
        obj["uSat"] = c.integer(-5, 300) if c.boolean() else gpsd_number(c)
        if c.boolean():
            obj["satellites"] = [{"PRN": c.integer(1, 200), "used": json_value(c, 3)} for _ in range(c.integer(0, 6))]
        else:
            obj["satellites"] = json_value(c)
    for _ in range(c.integer(0, 2)):
        obj.pop(c.choice(["class", "mode", "time", "lat", "lon", "hdop", "uSat", "satellites"]), None)
    if c.boolean():
        obj[c.text(6)] = json_value(c)
    return obj


def run_gpsd_lines(lines: Sequence[str]) -> list[Position]:
    decoder = GpsdDecoder(device="gps")
    out: list[Position] = []
    for line in lines:
        try:
            out += decoder.decode(line)
        except FrameError as exc:
            refused(exc, GPSD_REASONS)
    for p in out:
        check_position(p)
    return out


def run_gpsd_stream(chunks: Sequence[bytes]) -> list[Position]:
    errors = Errors()
    framer = GpsdFramer(on_error=errors)
    with time_limit():
        lines = [line for chunk in chunks for line in framer.feed(chunk)]
        framer.flush()
        out = run_gpsd_lines(lines)
    lines_ok(lines, framer)
    framer_consistent(framer, errors, LINE_REASONS)
    return out


def gpsd_any_lines(c: Chooser) -> list[str]:
    return [to_json_line(json_value(c)) if c.boolean() else c.text(60) for _ in range(c.integer(0, 8))]


def gpsd_case(c: Chooser) -> list[bytes]:
    lines = [to_json_line(gpsd_object(c)) for _ in range(c.integer(1, 8))]
    return chunks_of(c, damaged(c, stream_of(c, lines), max_ops=2))


@settings(FUZZ, max_examples=cases(150))
@given(lines=structured(gpsd_any_lines))
def test_gpsd_decoder_takes_any_json(lines: list[str]) -> None:
    with time_limit():
        run_gpsd_lines(lines)


@settings(FUZZ, max_examples=cases(150))
@given(chunks=structured(gpsd_case))
def test_gpsd_near_valid_streams(chunks: list[bytes]) -> None:
    run_gpsd_stream(chunks)


@settings(FUZZ, max_examples=cases(2000))
@given(chunks=fast(gpsd_case))
def test_gpsd_near_valid_streams_fast(chunks: list[bytes]) -> None:
    run_gpsd_stream(chunks)


def tpv_and_sky(p: Position) -> list[dict[str, Any]]:
    """gpsd's report of a fix: SKY (hdop, satellites used) then TPV."""
    sky: dict[str, Any] = {"class": "SKY", "device": "/dev/ttyUSB0"}
    if p.hdop is not None:
        sky["hdop"] = p.hdop
    if p.sats is not None:
        sky["uSat"] = p.sats
    tpv: dict[str, Any] = {
        "class": "TPV",
        "device": "/dev/ttyUSB0",
        "mode": 3 if p.fix == "3d" else 2,
        "time": p.ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "lat": p.lat,
        "lon": p.lon,
    }
    if p.speed_kmh is not None:
        tpv["speed"] = p.speed_kmh / 3.6
    if p.heading_deg is not None:
        tpv["track"] = p.heading_deg
    return [sky, tpv]


def gpsd_round_trip_case(c: Chooser) -> tuple[list[Position], list[bytes]]:
    fixes = track(c)
    lines = [orjson.dumps(obj).decode() for p in fixes for obj in tpv_and_sky(p)]
    return fixes, chunks_of(c, stream_of(c, lines, complete=True))


@settings(FUZZ, max_examples=cases(100))
@given(case=structured(gpsd_round_trip_case))
def test_gpsd_round_trip(case: tuple[list[Position], list[bytes]]) -> None:
    fixes, chunks = case
    got = run_gpsd_stream(chunks)
    assert len(got) == len(fixes)
    hdop: float | None = None
    sats: int | None = None
    for p, q in zip(fixes, got, strict=True):
        hdop = p.hdop if p.hdop is not None else hdop  # the last SKY's value holds until a SKY reports it
        sats = p.sats if p.sats is not None else sats
        assert (q.ts, q.lat, q.lon, q.fix, q.hdop, q.sats) == (p.ts, p.lat, p.lon, p.fix, hdop, sats)
        assert _close(q.speed_kmh, p.speed_kmh, 1e-9)
        assert _close(q.heading_deg, p.heading_deg, 1e-9)


# ================================================================================================
# Serial RFID line protocol
# ================================================================================================

HEX = "0123456789ABCDEFabcdef"
STATUS_CHARS = string.ascii_uppercase + string.digits + "_"
RFID_FIELD_VALUES = [
    "", "0", "1", "255", "256", "999", "0001", "-1", "+1", "-128.0", "-128.1", "20.0", "20.1", "-61.5",
    "-61.55", "1e3", "nan", "4294967295", "4294967296", "12345678901", "OK", "ANT2_OPEN", "ok", "A" * 33,
    "3005FB63AC1F3841EC880467", "3005FB63AC1F3841EC88046", "3005FB63AC1F3841EC8804", "G" * 24, "²", "١",
]  # fmt: skip
RECEIVED_FROM = datetime(2000, 1, 1, tzinfo=UTC)
RECEIVED_SPAN_MS = 99 * 365 * 86_400_000


def epc_hex(c: Chooser) -> str:
    return c.text(4 * (words := c.integer(6, 31)), HEX, 4 * words)


def received(c: Chooser) -> datetime:
    return RECEIVED_FROM + timedelta(milliseconds=c.integer(0, RECEIVED_SPAN_MS))


def rfid_field(c: Chooser) -> str:
    how = c.integer(0, 4)
    if how <= 1:
        return c.choice(RFID_FIELD_VALUES)
    if how == 2:
        return c.text(12, ASCII_NO_SEPARATORS)
    if how == 3:
        return epc_hex(c)
    return str(c.integer(-(10**20), 10**20))


def rfid_record(c: Chooser) -> str:
    """A TAG or HB record as the reader's encoder builds it, often with one field changed (checksum redone)."""
    if c.integer(0, 3):
        raw = encode_tag_line(epc_hex(c), c.integer(0, 255), c.real(-128, 20), c.integer(0, 2**40))
    else:
        raw = encode_heartbeat_line(c.integer(0, 2**40), c.text(32, STATUS_CHARS, 1))
    line = raw.decode().rstrip("\r\n")
    op = c.choice(["keep", "keep", "keep", "set", "set", "set", "drop", "add", "type"])
    if op == "keep":
        return line
    fields = line.rsplit("*", 1)[0].split(",")
    if op == "set":
        fields[c.integer(1, len(fields) - 1)] = rfid_field(c)
    elif op == "drop":
        del fields[c.integer(1, len(fields) - 1)]
    elif op == "add":
        fields.insert(c.integer(1, len(fields)), rfid_field(c))
    else:
        fields[0] = c.choice(["TAG", "HB", "TAGX", "tag", "", "HELLO"])
    body = ",".join(fields)
    try:
        cs = checksum(body)
    except UnicodeEncodeError:
        cs = "00"
    return c.choice([f"{body}*{cs}", f"{body}*{cs}", f"{body}*{cs.lower()}", body, f"{body}*", f"{body}*Z1"])


def run_rfid_lines(lines: Sequence[str], received_at: Sequence[datetime]) -> list[TagRead]:
    decoder = SerialRfidDecoder(device="rdr")
    out: list[TagRead] = []
    for line, at in zip(lines, received_at, strict=False):
        try:
            out += decoder.decode(line, at)
        except FrameError as exc:
            refused(exc, RFID_REASONS)
    for read in out:
        check_tag(read)
    return out


def rfid_any_case(c: Chooser) -> tuple[list[str], datetime]:
    return [c.text(120) for _ in range(c.integer(0, 8))], received(c)


@settings(FUZZ, max_examples=cases(150))
@given(case=structured(rfid_any_case))
def test_rfid_decoder_takes_any_line(case: tuple[list[str], datetime]) -> None:
    lines, at = case
    with time_limit():
        run_rfid_lines(lines, [at] * len(lines))


def rfid_case(c: Chooser) -> tuple[list[bytes], datetime, list[int]]:
    stream = damaged(c, stream_of(c, [rfid_record(c) for _ in range(c.integer(1, 8))]), max_ops=2)
    return chunks_of(c, stream), received(c), [c.integer(0, 10_000) for _ in range(10)]


def check_rfid_stream(case: tuple[list[bytes], datetime, list[int]]) -> None:
    chunks, start, gaps = case
    errors = Errors()
    framer = SerialRfidFramer(on_error=errors)
    with time_limit():
        lines = [line for chunk in chunks for line in framer.feed(chunk)]
        framer.flush()
        at = [start + timedelta(milliseconds=sum(gaps[: i + 1])) for i in range(len(lines))]
        run_rfid_lines(lines, at)
    lines_ok(lines, framer)
    framer_consistent(framer, errors, LINE_REASONS)


@settings(FUZZ, max_examples=cases(150))
@given(case=structured(rfid_case))
def test_rfid_near_valid_streams(case: tuple[list[bytes], datetime, list[int]]) -> None:
    check_rfid_stream(case)


@settings(FUZZ, max_examples=cases(2000))
@given(case=fast(rfid_case))
def test_rfid_near_valid_streams_fast(case: tuple[list[bytes], datetime, list[int]]) -> None:
    check_rfid_stream(case)


Sighting = tuple[str, int, float, int, datetime]  # epc, antenna, rssi, counter, received at


def rfid_round_trip_case(c: Chooser) -> tuple[list[Sighting], list[bytes]]:
    counter, at = c.integer(0, 2**32 - 10_000), received(c)
    sightings: list[Sighting] = []
    for _ in range(c.integer(1, 6)):
        gap = c.integer(0, 1500)
        counter, at = counter + gap, at + timedelta(milliseconds=gap)
        sightings.append((epc_hex(c), c.integer(0, 255), c.real(-128, 20), counter, at))
    stream = b"".join(encode_tag_line(e, a, r, n) for e, a, r, n, _ in sightings)
    return sightings, chunks_of(c, stream)


@settings(FUZZ, max_examples=cases(100))
@given(case=structured(rfid_round_trip_case))
def test_rfid_round_trip_of_the_reader_encoder(case: tuple[list[Sighting], list[bytes]]) -> None:
    sightings, chunks = case
    framer = SerialRfidFramer()
    with time_limit():
        lines = [line for chunk in chunks for line in framer.feed(chunk)]
        got = run_rfid_lines(lines, [s[4] for s in sightings])
    assert framer.rejected == Counter()
    assert len(got) == len(sightings)
    for (epc, antenna, rssi, _, at), read in zip(sightings, got, strict=True):
        assert (read.epc, read.antenna, read.rssi_dbm) == (epc.upper(), antenna, float(f"{rssi:.1f}"))
        assert read.ts == at == read.first_seen  # the counter runs in step with the host clock
        assert read.epc_uri == pure_identity_uri(epc)


# ================================================================================================
# LLRP (RO_ACCESS_REPORT via sllurp)
# ================================================================================================

KEEPALIVE = struct.pack("!HII", (1 << 10) | 62, 10, 7)
READER_EVENT = bytes.fromhex("043f000000200ab288c900f600160080000c0004f8535baadaff010000060000")
RO_ACCESS_REPORT = 61
US_2000, US_2100 = 946_684_800_000_000, 4_102_444_800_000_000
LLRP_EXTREMES = [b"\x00" * 8, b"\xff" * 8, struct.pack("!Q", 2**63), struct.pack("!Q", 1), b"\x7f" + b"\xff" * 7]


def llrp_message(msgtype: int, body: bytes, msgid: int = 1, version: int = 1) -> bytes:
    return struct.pack("!HII", (version << 10) | msgtype, 10 + len(body), msgid) + body


LLRP_OTHERS = [KEEPALIVE, READER_EVENT, llrp_message(999, b"")]


def tag_report_data(
    epc: bytes,
    *,
    epc96: bool,
    antenna: int | None,
    rssi: int | None,
    first_us: int | None,
    last_us: int | None,
    count: int | None,
) -> bytes:
    """One TagReportData TLV, its parameters in the order of LLRP 1.0.1 §13.2.3."""
    params = b"\x8d" + epc if epc96 else struct.pack("!HHH", 241, 6 + len(epc), 8 * len(epc)) + epc
    if antenna is not None:
        params += b"\x81" + struct.pack("!H", antenna)
    if rssi is not None:
        params += b"\x86" + struct.pack("!b", rssi)
    if first_us is not None:
        params += b"\x82" + struct.pack("!Q", first_us)
    if last_us is not None:
        params += b"\x84" + struct.pack("!Q", last_us)
    if count is not None:
        params += b"\x88" + struct.pack("!H", count)
    return struct.pack("!HH", 240, 4 + len(params)) + params


def maybe(c: Chooser, low: int, high: int) -> int | None:
    return None if c.integer(0, 3) == 0 else c.integer(low, high)


def tag_report(c: Chooser) -> tuple[bytes, dict[str, Any]]:
    epc96 = c.boolean()
    epc = c.binary(12, 12) if epc96 else c.binary(2 * (words := c.integer(6, 31)), 2 * words)
    fields = {
        "antenna": maybe(c, 0, 65535),
        "rssi": maybe(c, -128, 127),
        "first_us": maybe(c, US_2000, US_2100),
        "last_us": maybe(c, US_2000, US_2100),
        "count": maybe(c, 0, 65535),
    }
    return tag_report_data(epc, epc96=epc96, **fields), {"epc": epc.hex().upper(), **fields}


def llrp_mutated(c: Chooser, message: bytes) -> bytes:
    """A message with damage in its body; the header's length made right again (mostly)."""
    body = bytearray(message[10:])
    for _ in range(c.integer(1, 3)):
        op = c.choice(["flip", "set", "insert", "delete", "extreme", "tlv_len"])
        pos = c.integer(0, max(0, len(body) - 1))
        if op == "flip" and body:
            body[pos] ^= 1 << c.integer(0, 7)
        elif op == "set" and body:
            body[pos] = c.integer(0, 255)
        elif op == "insert":
            body[pos:pos] = c.binary(6)
        elif op == "delete":
            del body[pos : pos + c.integer(1, 6)]
        elif op == "extreme":
            body[pos : pos + 8] = c.choice(LLRP_EXTREMES)
        elif op == "tlv_len" and len(body) >= pos + 4:
            body[pos + 2 : pos + 4] = struct.pack("!H", c.integer(0, 0xFFFF))
    if c.integer(0, 4):
        return struct.pack("!HII", int.from_bytes(message[:2], "big"), 10 + len(body), 9) + bytes(body)
    return message[:10] + bytes(body)


def llrp_reports(c: Chooser, max_reports: int = 3, max_tags: int = 4) -> list[bytes]:
    messages = []
    for i in range(c.integer(1, max_reports)):
        message = llrp_message(RO_ACCESS_REPORT, b"".join(tag_report(c)[0] for _ in range(c.integer(0, max_tags))), i)
        messages.append(llrp_mutated(c, message) if c.boolean() else message)
    return messages


def run_llrp_messages(messages: Sequence[bytes], at: datetime | None) -> list[TagRead]:
    tag_errors = Errors()
    decoder = LlrpDecoder(on_error=tag_errors, device="rdr")
    out: list[TagRead] = []
    for message in messages:
        try:
            out += decoder.decode(message, at)
        except FrameError as exc:
            refused(exc, LLRP_DECODER_REASONS)
    for error in tag_errors:
        refused(error, LLRP_TAG_REASONS)
    assert Counter(e.reason for e in tag_errors) == +decoder.rejected
    for read in out:
        check_tag(read)
    return out


def run_llrp_stream(chunks: Sequence[bytes], at: datetime | None) -> list[TagRead]:
    errors = Errors()
    framer = LlrpFramer(max_len=4096, on_error=errors)
    with time_limit():
        messages = [m for chunk in chunks for m in framer.feed(chunk)]
        framer.flush()
        out = run_llrp_messages(messages, at)
    framer_consistent(framer, errors, LLRP_FRAMER_REASONS)
    for message in messages:
        assert len(message) >= 10 and llrp_mod.parse_header(message)[2] == len(message)
    return out


def llrp_any_case(c: Chooser) -> tuple[bytes, list[bytes], datetime | None]:
    data = c.binary(400)
    return data, chunks_of(c, data), None if c.boolean() else received(c)


@settings(FUZZ, max_examples=cases(150))
@given(case=structured(llrp_any_case))
def test_llrp_takes_any_bytes(case: tuple[bytes, list[bytes], datetime | None]) -> None:
    data, chunks, at = case
    run_llrp_stream(chunks, at)
    with time_limit():  # the decoder on its own, handed anything with a consistent header
        run_llrp_messages([llrp_message(int.from_bytes(data[:2] or b"\x00\x3d", "big") & 0x3FF, data[10:])], at)


def llrp_case(c: Chooser) -> tuple[list[bytes], datetime | None]:
    messages = llrp_reports(c) + [c.choice(LLRP_OTHERS) for _ in range(c.integer(0, 2))]
    for i in range(len(messages) - 1, 0, -1):  # shuffled
        j = c.integer(0, i)
        messages[i], messages[j] = messages[j], messages[i]
    return chunks_of(c, damaged(c, b"".join(messages), max_ops=1)), None if c.boolean() else received(c)


@settings(FUZZ, max_examples=cases(150))
@given(case=structured(llrp_case))
def test_llrp_near_valid_streams(case: tuple[list[bytes], datetime | None]) -> None:
    run_llrp_stream(*case)


@settings(FUZZ, max_examples=cases(2500))
@given(case=fast(llrp_case))
def test_llrp_near_valid_streams_fast(case: tuple[list[bytes], datetime | None]) -> None:
    run_llrp_stream(*case)


def llrp_round_trip_case(c: Chooser) -> tuple[list[dict[str, Any]], datetime, list[bytes]]:
    reports = [tag_report(c) for _ in range(c.integer(1, 5))]
    stream = KEEPALIVE + llrp_message(RO_ACCESS_REPORT, b"".join(r for r, _ in reports)) + READER_EVENT
    return [f for _, f in reports], received(c), chunks_of(c, stream)


@settings(FUZZ, max_examples=cases(100))
@given(case=structured(llrp_round_trip_case))
def test_llrp_round_trip(case: tuple[list[dict[str, Any]], datetime, list[bytes]]) -> None:
    reports, at, chunks = case
    got = run_llrp_stream(chunks, at)
    assert len(got) == len(reports)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for f, read in zip(reports, got, strict=True):
        first = None if f["first_us"] is None else epoch + timedelta(microseconds=f["first_us"])
        last = None if f["last_us"] is None else epoch + timedelta(microseconds=f["last_us"])
        assert read.epc == f["epc"]
        assert read.antenna == f["antenna"]
        assert read.first_seen == first
        assert read.ts == (last or first or at)
        assert read.count == (f["count"] or 1)
        if f["rssi"] is None or not -150 <= f["rssi"] <= 50:
            assert read.rssi_dbm is None  # none reported, or one no antenna measures: left out
        else:
            assert read.rssi_dbm == float(f["rssi"])
        assert read.epc_uri == pure_identity_uri(f["epc"])


# ================================================================================================
# EPC (GS1 TDS binary -> pure identity URI, via epcpy)
# ================================================================================================

PARTITIONS = [(40, 12), (37, 11), (34, 10), (30, 9), (27, 8), (24, 7), (20, 6)]  # company prefix bits, digits
EPC_HEADERS = ["30", "31", "33", "36", "37", "32", "34", "35", "38", "39", "3A", "2C", "E2", "00"]


def gs1_96(c: Chooser) -> tuple[str, str]:
    """An SGTIN-96, SSCC-96 or GRAI-96 packed bit by bit as the GS1 TDS lays them out, and its pure identity URI."""
    scheme = c.choice(["sgtin", "sscc", "grai"])
    partition = c.integer(0, 6)
    cp_bits, cp_digits = PARTITIONS[partition]
    company = c.integer(0, min(2**cp_bits, 10**cp_digits) - 1)
    filt = c.integer(0, 7)
    if scheme == "sscc":  # header 8, filter 3, partition 3, company + serial reference 58, 24 unallocated
        ref_bits, ref_digits = 58 - cp_bits, 17 - cp_digits
        ref = c.integer(0, min(2**ref_bits, 10**ref_digits) - 1)
        value = (((((0x31 << 3 | filt) << 3 | partition) << cp_bits | company) << ref_bits) | ref) << 24
        return f"{value:024X}", f"urn:epc:id:sscc:{company:0{cp_digits}d}.{ref:0{ref_digits}d}"
    # header 8, filter 3, partition 3, company + item reference (SGTIN) or asset type (GRAI) 44, serial 38
    ref_bits, ref_digits = 44 - cp_bits, 13 - cp_digits - (scheme == "grai")
    ref = c.integer(0, min(2**ref_bits, 10**ref_digits) - 1)
    ref_text = f"{ref:0{ref_digits}d}" if ref_digits else ""
    serial = c.integer(0, 2**38 - 1)
    header = 0x30 if scheme == "sgtin" else 0x33
    value = ((((header << 3 | filt) << 3 | partition) << cp_bits | company) << ref_bits | ref) << 38 | serial
    return f"{value:024X}", f"urn:epc:id:{scheme}:{company:0{cp_digits}d}.{ref_text}.{serial}"


def epc_text(c: Chooser) -> str:
    how = c.integer(0, 2)
    if how == 0:
        return c.text(140)
    if how == 1:
        return c.text(140, HEX + " \t")
    return c.choice(EPC_HEADERS) + c.text(130, "0123456789ABCDEF")


def check_epc_text(text: str) -> None:
    with time_limit():
        try:
            epc = normalize_epc(text)
        except FrameError as exc:
            refused(exc, EPC_REASONS)
        else:
            assert epc == text.strip().upper() and len(epc) % 4 == 0 and 24 <= len(epc) <= 124
        try:
            uri = pure_identity_uri(text)
        except FrameError as exc:
            refused(exc, EPC_REASONS)
        else:
            assert uri is None or uri.startswith(("urn:epc:id:sgtin:", "urn:epc:id:sscc:", "urn:epc:id:grai:"))


@settings(FUZZ, max_examples=cases(150))
@given(text=structured(epc_text))
def test_epc_functions_take_any_text(text: str) -> None:
    check_epc_text(text)


@settings(FUZZ, max_examples=cases(1000))
@given(text=fast(epc_text))
def test_epc_functions_take_any_text_fast(text: str) -> None:
    check_epc_text(text)


@settings(FUZZ, max_examples=cases(200))
@given(encoded=structured(gs1_96))
def test_epc_round_trip_of_gs1_96_bit_encodings(encoded: tuple[str, str]) -> None:
    hex_epc, uri = encoded
    with time_limit():
        assert pure_identity_uri(hex_epc) == uri
        assert pure_identity_uri(hex_epc.lower()) == uri
        assert normalize_epc(hex_epc.lower()) == hex_epc


# ================================================================================================
# Modbus register maps and RTU frames
# ================================================================================================

SCALES = [1.0, 0.1, 0.01, 0.001, 10.0, 0.5, 0.25, 2.0, -0.1, -1.0]
OFFSETS = [0.0, -40.0, 273.15, 0.5, -100.0]
INT_RANGES = {"int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1), "int32": (-(2**31), 2**31 - 1),
              "uint32": (0, 2**32 - 1)}  # fmt: skip


def point(c: Chooser, any_scale: bool = True) -> Point:
    name = c.choice(["temp_c", "rh_pct", "door_open", "battery_v"])
    function = c.choice([1, 2, 3, 4] if name == "door_open" else [3, 4])
    kind = c.choice(sorted(WIDTH))
    count = 1 if function in (1, 2) else WIDTH[kind]
    scale = c.choice(SCALES)
    offset = c.choice(OFFSETS)
    if any_scale and c.boolean():
        scale = c.real(-1e12, 1e12) or 1.0
        offset = c.real(-1e12, 1e12)
    return Point.model_validate(
        {
            "name": name,
            "function": function,
            "address": c.integer(0, 0x10000 - count),
            "type": kind,
            "scale": scale,
            "offset": offset,
            "word_order": c.choice(["big", "little"]),
            "invert": c.boolean(),
        }
    )


def modbus_decode_case(c: Chooser) -> tuple[Point, list[int] | list[bool], dict[str, Any], datetime]:
    how = c.integer(0, 2)
    size = c.integer(0, 3)
    registers: list[int] | list[bool]
    if how == 0:
        registers = [c.integer(0, 0xFFFF) for _ in range(size)]
    elif how == 1:
        registers = [c.integer(-(2**20), 2**20) for _ in range(size)]
    else:
        registers = [c.boolean() for _ in range(size)]
    values: dict[str, Any] = {}
    for _ in range(c.integer(0, 4)):
        name = c.choice(["temp_c", "rh_pct", "door_open", "battery_v", "other"])
        values[name] = c.choice([c.any_float(), c.boolean(), c.integer(-(10**6), 10**6)])
    return point(c), registers, values, received(c)


def check_modbus_decode(case: tuple[Point, list[int] | list[bool], dict[str, Any], datetime]) -> None:
    pt, registers, values, at = case
    with time_limit():
        try:
            value = decode(pt, registers)
        except FrameError as exc:
            refused(exc, MODBUS_DECODE_REASONS)
        else:
            assert isinstance(value, bool) if pt.name == "door_open" else isinstance(value, float | int)
            values = {**values, pt.name: value}
        try:
            reading = to_temperature(values, at)
        except FrameError as exc:
            refused(exc, MODBUS_TEMPERATURE_REASONS)
        else:
            assert isinstance(reading, Temperature)
            contract_accepts(reading)


@settings(FUZZ, max_examples=cases(150))
@given(case=structured(modbus_decode_case))
def test_modbus_decoding_takes_any_registers(
    case: tuple[Point, list[int] | list[bool], dict[str, Any], datetime],
) -> None:
    check_modbus_decode(case)


@settings(FUZZ, max_examples=cases(1000))
@given(case=fast(modbus_decode_case))
def test_modbus_decoding_takes_any_registers_fast(
    case: tuple[Point, list[int] | list[bool], dict[str, Any], datetime],
) -> None:
    check_modbus_decode(case)


def register_round_trip_case(c: Chooser) -> tuple[Point, list[int] | list[bool]]:
    pt = point(c, any_scale=False)
    plain = pt.model_copy(update={"scale": 1.0, "offset": 0.0})
    if pt.function in (1, 2):
        return pt, [c.boolean()]
    if pt.type == "float32":
        raw = struct.unpack("<f", struct.pack("<f", c.real(-1e6, 1e6)))[0]
        return pt, encode(plain, raw)
    return pt, encode(plain, c.integer(*INT_RANGES[pt.type]))


@settings(FUZZ, max_examples=cases(150))
@given(case=structured(register_round_trip_case))
def test_modbus_register_round_trip(case: tuple[Point, list[int] | list[bool]]) -> None:
    """decode . encode . decode == decode: what a simulator shows for a value reads back as that value."""
    pt, registers = case
    with time_limit():
        value = decode(pt, registers)
        again = decode(pt, encode(pt, value))
    assert again == value or math.isclose(float(again), float(value), rel_tol=1e-6)


RESPONSES: dict[int, type[ModbusPDU]] = {
    1: ReadCoilsResponse,
    2: ReadDiscreteInputsResponse,
    3: ReadHoldingRegistersResponse,
    4: ReadInputRegistersResponse,
}
OTHER_FUNCTIONS = [0, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43, 0x80, 0x83, 0xFF]


def rtu_frame(pdu: ModbusPDU) -> bytes:
    """The RTU bytes of a response PDU, as the simulated slaves build them (pymodbus's FramerRTU)."""
    return bytes(FramerRTU(DecodePDU(is_server=True)).buildFrame(pdu))


def with_crc(body: bytes) -> bytes:
    return body + FramerRTU.compute_CRC(body).to_bytes(2, "big")


def rtu_response(c: Chooser) -> tuple[bytes, dict[str, Any]]:
    slave = c.integer(1, 247)
    function = c.choice([1, 2, 3, 4])
    if c.integer(0, 5) == 0:
        code = c.integer(1, 11)
        return rtu_frame(ExceptionResponse(function, code, device_id=slave)), {
            "slave": slave, "function": function, "exception": code}  # fmt: skip
    if function in (1, 2):
        bits = [c.boolean() for _ in range(c.integer(1, 64))]
        return rtu_frame(RESPONSES[function](bits=bits, dev_id=slave)), {
            "slave": slave, "function": function, "bits": bits}  # fmt: skip
    registers = [c.integer(0, 0xFFFF) for _ in range(c.integer(1, MAX_REGISTERS_PER_READ))]
    return rtu_frame(RESPONSES[function](registers=registers, dev_id=slave)), {
        "slave": slave, "function": function, "registers": registers}  # fmt: skip


def rtu_near_valid(c: Chooser) -> bytes:
    if c.integer(0, 4) == 0:
        return c.binary(120)
    frame, _ = rtu_response(c)
    how = c.choice(["bytes", "recrc", "recrc", "other_fc", "concat", "random_crc_ok"])
    if how == "bytes":
        return damaged(c, frame)
    if how == "recrc":
        return with_crc(damaged(c, frame[:-2]))
    if how == "other_fc":
        return with_crc(frame[:1] + bytes([c.choice(OTHER_FUNCTIONS)]) + frame[2:-2])
    if how == "concat":
        return frame + c.choice([rtu_response(c)[0], frame, c.binary(8)])
    return with_crc(c.binary(40, 1))


def check_rtu_frame(frame: bytes) -> None:
    with time_limit():
        found = find_frame(frame)
        assert found is None or (frame.startswith(found) and crc_ok(found))
        try:
            response = parse_response(frame)
        except FrameError as exc:
            refused(exc, MODBUS_FRAME_REASONS)
        else:
            assert crc_ok(frame)
            assert 0 <= response.function <= 0x7F
            assert all(isinstance(r, int) and 0 <= r <= 0xFFFF for r in response.registers)


@settings(FUZZ, max_examples=cases(150))
@given(frame=structured(rtu_near_valid))
def test_modbus_frames_take_any_bytes(frame: bytes) -> None:
    check_rtu_frame(frame)


@settings(FUZZ, max_examples=cases(1500))
@given(frame=fast(rtu_near_valid))
def test_modbus_frames_take_any_bytes_fast(frame: bytes) -> None:
    check_rtu_frame(frame)


@settings(FUZZ, max_examples=cases(100))
@given(response=structured(rtu_response))
def test_modbus_frame_round_trip(response: tuple[bytes, dict[str, Any]]) -> None:
    frame, sent = response
    with time_limit():
        got = parse_response(frame)
    assert (got.slave, got.function) == (sent["slave"], sent["function"])
    if "exception" in sent:
        assert got.exception_code == sent["exception"]
    elif "bits" in sent:
        assert got.exception_code is None and got.bits[: len(sent["bits"])] == sent["bits"]
    else:
        assert got.exception_code is None and got.registers == sent["registers"]


@settings(FUZZ, max_examples=cases(100))
@given(points=structured(lambda c: [point(c) for _ in range(c.integer(0, 6))]))
def test_modbus_read_plan_covers_every_point(points: list[Point]) -> None:
    blocks = plan_reads(points)
    assert sorted(id(p) for b in blocks for p in b.points) == sorted(id(p) for p in points)
    for block in blocks:
        limit = MAX_BITS_PER_READ if block.function in (1, 2) else MAX_REGISTERS_PER_READ
        assert 1 <= block.count <= limit
        for p in block.points:
            assert p.function == block.function and block.address <= p.address and p.end <= block.address + block.count


# ================================================================================================
# Drivers: the real read loop (StreamDriver.run) fed with near-valid byte streams
# ================================================================================================


class ListSink:
    def __init__(self) -> None:
        self.readings: list[tuple[str, Reading]] = []

    def emit(self, device_id: str, reading: Reading) -> None:
        self.readings.append((device_id, reading))


class FakeSource:
    """A transport that hands over the given chunks (and transport errors), then ends."""

    def __init__(self, chunks: Sequence[bytes | DeviceError]) -> None:
        self._chunks = list(chunks)
        self.sent: list[bytes] = []

    def chunks(self, stop: Any) -> Iterator[bytes | DeviceError]:
        yield from self._chunks

    def send(self, data: bytes) -> None:
        self.sent.append(data)


def fed(cls: type[StreamDriver], source: FakeSource) -> type[StreamDriver]:
    class Fed(cls):  # type: ignore[valid-type,misc]
        def source(self) -> Source:
            return source

    return Fed


def llrp_driver_class() -> type[StreamDriver] | None:
    try:
        from edge.drivers.llrp.driver import LlrpDriver
    except ImportError:  # the optional llrp extra (sllurp) is not installed
        return None
    return LlrpDriver


DriverCase = tuple[type[StreamDriver], dict[str, Any], list[bytes | DeviceError], frozenset[str]]


def driver_case(c: Chooser) -> DriverCase:
    which = c.choice(["nmea", "gpsd", "rfid", "llrp"])
    llrp = llrp_driver_class()
    cls: type[StreamDriver]
    if which == "llrp" and llrp is not None:
        cls, stream = llrp, KEEPALIVE + b"".join(llrp_reports(c, max_tags=3))
        options: dict[str, Any] = {"host": "127.0.0.1", "gate_id": "gate-1", "direction": "out", "window_s": 0.5}
        reasons = LLRP_FRAMER_REASONS | LLRP_DECODER_REASONS | LLRP_TAG_REASONS
    elif which == "gpsd":
        cls, stream = GpsdDriver, stream_of(c, [to_json_line(gpsd_object(c)) for _ in range(c.integer(1, 6))])
        options = {"max_skew_s": c.choice([None, 300.0])}
        reasons = GPSD_REASONS | LINE_REASONS | {"clock_skew"}
    elif which == "rfid" or llrp is None:
        cls, stream = RfidSerialDriver, stream_of(c, [rfid_record(c) for _ in range(c.integer(1, 6))])
        options = {"port": "/dev/null", "gate_id": "gate-1", "antenna_directions": {1: "in", 2: "out"}}
        reasons = RFID_REASONS | LINE_REASONS
    else:
        cls, stream = NmeaSerialDriver, stream_of(c, nmea_lines(c))
        options = {"port": "/dev/null", "max_skew_s": c.choice([None, 300.0])}
        reasons = NMEA_REASONS | LINE_REASONS | {"clock_skew"}
    chunks: list[bytes | DeviceError] = list(chunks_of(c, damaged(c, stream, max_ops=1)))
    if c.integer(0, 9) == 0:
        chunks.insert(c.integer(0, len(chunks)), DeviceError("timeout", "no data", device="dev"))
        reasons = reasons | {"timeout"}
    return cls, options, chunks, reasons


def check_driver(case: DriverCase) -> None:
    cls, options, chunks, reasons = case
    sink = ListSink()
    driver: Driver = fed(cls, FakeSource(chunks))("dev", options, sink)
    assert isinstance(driver, StreamDriver)
    with time_limit():
        driver.run(stop=None)  # type: ignore[arg-type]  # the fake source ignores it
        late = driver.tick(datetime.now(UTC) + timedelta(days=1))  # close every smoothing window
    for reading in late:
        driver.emit(reading)
    assert set(driver.rejected) <= reasons, driver.rejected
    assert driver.readings == len(sink.readings)
    for device, reading in sink.readings:
        assert device == "dev"
        contract_accepts(reading)


@settings(FUZZ, max_examples=cases(100))
@given(case=structured(driver_case))
def test_driver_read_loops_count_every_refusal(case: DriverCase) -> None:
    check_driver(case)


@settings(FUZZ, max_examples=cases(1000))
@given(case=fast(driver_case))
def test_driver_read_loops_count_every_refusal_fast(case: DriverCase) -> None:
    check_driver(case)
