"""BondWatch serial RFID line protocol, version 1, for simple UHF readers: bytes in, TagRead out. No I/O.

The reader sends one ASCII record per line, CR LF terminated, at most 200 bytes::

    TAG,<antenna>,<rssi_dbm>,<epc>,<ms>*<cs>\\r\\n        one tag sighting
    HB,<ms>,<status>*<cs>\\r\\n                           heartbeat, at least every 5 s when idle

    antenna    decimal 0..255, the reader's antenna port
    rssi_dbm   decimal dBm with at most one decimal place, -128.0..20.0 (e.g. -61.5)
    epc        the EPC in hex, 24..124 digits in steps of 4 (96..496 bits, whole 16-bit words), either case
    ms         the reader's free-running millisecond counter, decimal 0..4294967295 (wraps)
    status     OK, or an upper-case word naming a fault (e.g. ANT2_OPEN, TEMP_HIGH), [A-Z0-9_]{1,32}
    cs         XOR of every byte before the '*', two hex digits (sent upper case, either accepted)

    e.g.  TAG,1,-61.5,3005FB63AC1F3841EC880467,123456*2A
          HB,128000,OK*05

:func:`encode_tag_line` and :func:`encode_heartbeat_line` build these lines; simulators use them,
so both ends share this one definition.

Time: the reader has no calendar clock, only ``ms``. :class:`SerialRfidDecoder` anchors the counter
on the host's receive time of the first record (``decode(line, received_at)``) and stamps each
sighting with ``anchor time + (ms - anchor ms)``, which keeps the spacing of a burst exact even
when the serial line delivers it late. It re-anchors on the record at hand (ts = received_at) when
the counter goes backwards (reader restart, wrap) or the stamped time drifts more than
``max_skew_s`` from the receive time.

Reasons raised: ``truncated`` (no ``*cs``: the line was cut), ``bad_checksum``, ``malformed``
(wrong field count or a field that does not parse), ``empty_fields``, ``bad_epc``,
``out_of_range`` (antenna, RSSI), ``unsupported`` (a record type other than TAG/HB). The framer
reports ``garbage``, ``overlong`` and ``truncated``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from functools import reduce

from edge.errors import FrameError
from edge.protocols._lines import ErrorHandler, LineFramer
from edge.protocols.epc import normalize_epc, pure_identity_uri
from edge.readings import TagRead

MAX_LINE = 200
COUNTER_MOD = 2**32
ANTENNAS = range(0, 256)
RSSI_MIN, RSSI_MAX = -128.0, 20.0
_RSSI = re.compile(r"[+-]?\d{1,3}(?:\.\d)?")
_UINT = re.compile(r"\d{1,10}")
_STATUS = re.compile(r"[A-Z0-9_]{1,32}")
_CHECKSUM = re.compile(r"[0-9A-Fa-f]{2}")


def checksum(body: str) -> str:
    """XOR of the bytes of ``body`` as two upper-case hex digits."""
    return f"{reduce(lambda acc, byte: acc ^ byte, body.encode('ascii'), 0):02X}"


def encode_tag_line(epc: str, antenna: int, rssi_dbm: float, counter_ms: int) -> bytes:
    """One ``TAG`` record, CR LF included; ``ValueError`` for values the protocol cannot carry."""
    try:
        hex_epc = normalize_epc(epc)
    except FrameError as exc:
        raise ValueError(str(exc)) from None
    if antenna not in ANTENNAS:
        raise ValueError(f"antenna {antenna} outside 0..255")
    if not (math.isfinite(rssi_dbm) and RSSI_MIN <= rssi_dbm <= RSSI_MAX):
        raise ValueError(f"rssi {rssi_dbm} outside {RSSI_MIN}..{RSSI_MAX}")
    body = f"TAG,{antenna},{rssi_dbm:.1f},{hex_epc},{_counter(counter_ms)}"
    return f"{body}*{checksum(body)}\r\n".encode("ascii")


def encode_heartbeat_line(counter_ms: int, status: str = "OK") -> bytes:
    """One ``HB`` record, CR LF included."""
    if not _STATUS.fullmatch(status):
        raise ValueError(f"status {status!r} is not [A-Z0-9_]{{1,32}}")
    body = f"HB,{_counter(counter_ms)},{status}"
    return f"{body}*{checksum(body)}\r\n".encode("ascii")


def _counter(counter_ms: int) -> int:
    if counter_ms < 0:
        raise ValueError(f"counter {counter_ms} is negative")
    return counter_ms % COUNTER_MOD


class SerialRfidFramer(LineFramer):
    """Cut a reader's byte stream into records (CR/LF split, ASCII, at most 200 bytes)."""

    def __init__(
        self, *, max_len: int = MAX_LINE, on_error: ErrorHandler | None = None, device: str | None = None
    ) -> None:
        super().__init__(max_len=max_len, encoding="ascii", on_error=on_error, device=device)


class SerialRfidDecoder:
    """Turn one reader's records into TagReads (time rules in the module docstring)."""

    def __init__(self, *, max_skew_s: float = 2.0, device: str | None = None) -> None:
        self.max_skew = timedelta(seconds=max_skew_s)
        self.device = device
        self.reader_status: str | None = None  # from the last heartbeat
        self.last_heartbeat: datetime | None = None
        self._anchor: tuple[int, datetime] | None = None
        self._last_counter: int | None = None

    def decode(self, line: str, received_at: datetime) -> list[TagRead]:
        """One record -> one TagRead (``TAG``) or none (``HB``); ``received_at`` is aware host time."""
        if received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        body, star, cs = line.strip().rpartition("*")
        if not star:
            raise self._error("truncated", "record without '*' checksum", line)
        if not _CHECKSUM.fullmatch(cs):
            raise self._error("malformed", f"checksum field {cs!r}", line)
        try:
            expected = checksum(body)
        except UnicodeEncodeError:
            raise self._error("malformed", "record is not ASCII", line) from None
        if cs.upper() != expected:
            raise self._error("bad_checksum", f"checksum {cs} != {expected}", line)
        fields = body.split(",")
        kind = fields[0]
        if kind == "TAG":
            return [self._tag(fields, line, received_at)]
        if kind == "HB":
            self._heartbeat(fields, line, received_at)
            return []
        raise self._error("unsupported", f"record type {kind!r}", line)

    def _tag(self, fields: list[str], line: str, received_at: datetime) -> TagRead:
        if len(fields) != 5:
            raise self._error("malformed", f"TAG record with {len(fields) - 1} fields, expected 4", line)
        _, antenna_s, rssi_s, epc_s, counter_s = fields
        if not all(fields[1:]):
            raise self._error("empty_fields", "TAG record with an empty field", line)
        if not antenna_s.isdigit() or len(antenna_s) > 3:
            raise self._error("malformed", f"antenna {antenna_s!r}", line)
        antenna = int(antenna_s)
        if antenna not in ANTENNAS:
            raise self._error("out_of_range", f"antenna {antenna}", line)
        if not _RSSI.fullmatch(rssi_s):
            raise self._error("malformed", f"rssi {rssi_s!r}", line)
        rssi = float(rssi_s)
        if not RSSI_MIN <= rssi <= RSSI_MAX:
            raise self._error("out_of_range", f"rssi {rssi}", line)
        try:
            epc = normalize_epc(epc_s, device=self.device)
        except FrameError as exc:
            raise self._error("bad_epc", str(exc), line) from None
        ts = self._stamp(self._parse_counter(counter_s, line), received_at)
        return TagRead(ts=ts, epc=epc, antenna=antenna, rssi_dbm=rssi, first_seen=ts, epc_uri=pure_identity_uri(epc))

    def _heartbeat(self, fields: list[str], line: str, received_at: datetime) -> None:
        if len(fields) != 3:
            raise self._error("malformed", f"HB record with {len(fields) - 1} fields, expected 2", line)
        if not all(fields[1:]):
            raise self._error("empty_fields", "HB record with an empty field", line)
        counter = self._parse_counter(fields[1], line)
        if not _STATUS.fullmatch(fields[2]):
            raise self._error("malformed", f"status {fields[2]!r}", line)
        self._stamp(counter, received_at)
        self.reader_status = fields[2]
        self.last_heartbeat = received_at

    def _parse_counter(self, text: str, line: str) -> int:
        if not _UINT.fullmatch(text) or int(text) >= COUNTER_MOD:
            raise self._error("malformed", f"counter {text!r}", line)
        return int(text)

    def _stamp(self, counter: int, received_at: datetime) -> datetime:
        anchor = self._anchor
        backwards = self._last_counter is not None and counter < self._last_counter
        self._last_counter = counter
        if anchor is not None and not backwards:
            ts = anchor[1] + timedelta(milliseconds=counter - anchor[0])
            if abs(ts - received_at) <= self.max_skew:
                return ts
        self._anchor = (counter, received_at)
        return received_at

    def _error(self, reason: str, message: str, line: str) -> FrameError:
        return FrameError(reason, message, raw=line.encode("ascii", "replace"), device=self.device)
