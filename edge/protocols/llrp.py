"""LLRP (EPCglobal Low Level Reader Protocol 1.0.1 / 1.1) over TCP: bytes in, TagRead out. No I/O.

Every message starts with a 10-byte header, big-endian::

    byte   0        1        2    3    4    5    6    7    8    9    10 ...
         ┌────────┬────────┬───────────────────┬───────────────────┬─────────────────┐
         │rrrvvvtt│tttttttt│ length (uint32)   │ message id        │ parameters      │
         └────────┴────────┴───────────────────┴───────────────────┴─────────────────┘
          rrr reserved, vvv version (1 = LLRP 1.0.1, 2 = LLRP 1.1), t..t message type (10 bits)
          length counts the whole message, header included (>= 10)

    RO_ACCESS_REPORT (type 61) = TagReportData*
    TagReportData (TLV 240: type uint16, length uint16, then parameters)
       EPCData (TLV 241: bit count uint16 + EPC bytes)  or  EPC-96 (TV 0x8D + 12 bytes)
       AntennaID (TV 0x81, uint16)         PeakRSSI (TV 0x86, int8 dBm)
       FirstSeenTimestampUTC (TV 0x82, uint64 µs)   LastSeenTimestampUTC (TV 0x84, uint64 µs)
       TagSeenCount (TV 0x88, uint16)      ... (Impinj: ImpinjPeakRSSI, custom, 1/100 dBm)

    e.g. 043d 0000002c 4095892f  00f0 0022  8d 3005fb63ac1f3841ec880467  81 0001  86 ce
         82 0004ec2ea8354c09  88 0001
         = v1 RO_ACCESS_REPORT, 44 bytes, id 1083541807: EPC 3005FB63..., antenna 1, -50 dBm,
           first seen 1385585041558537 µs, seen once

:class:`LlrpFramer` cuts the TCP stream into messages by the header's length and keeps a partial
message for the next ``feed()``. The stream has no resynchronisation marker, so a header that
cannot be right (length < 10, a version other than 1 or 2, a length over ``max_len``) leaves the
framer ``broken``: it drops every later byte until :meth:`LlrpFramer.reset` (the driver reconnects).

:class:`LlrpDecoder` decodes a message with sllurp's own decoder (``sllurp.llrp.LLRPMessage``) and
turns each TagReportData of an RO_ACCESS_REPORT into a TagRead:

    epc          EPCData or EPC-96, upper-case hex (sllurp hands EPCData back in whole bytes)
    antenna      AntennaID
    rssi_dbm     ImpinjPeakRSSI / 100 if present, else PeakRSSI; a value outside the contract's
                 -150..50 dBm (PeakRSSI is any int8) is no measurement and is left out
    first_seen   FirstSeenTimestampUTC (0, or a time past year 9999, counts as absent)
    ts           LastSeenTimestampUTC, else FirstSeenTimestampUTC, else ``received_at``
    count        TagSeenCount (1 when absent)
    epc_uri      pure identity URI where the scheme is SGTIN, SSCC or GRAI (:mod:`edge.protocols.epc`)

Every other message sllurp knows (READER_EVENT_NOTIFICATION, KEEPALIVE, the *_RESPONSEs, ...)
yields nothing; its name is left in :attr:`LlrpDecoder.last_message` so the driver can answer a
KEEPALIVE. A tag whose EPC is not 96..496 bits in whole words is dropped alone (``bad_epc`` to
``on_error``, counted in ``rejected``); the other tags of its report are kept.

Reasons: framer ``malformed``, ``unsupported`` (version), ``overlong``, ``truncated`` (stream ended
inside a message); decoder ``malformed`` (sllurp refused it, or its length is not the header's),
``unsupported`` (a message type sllurp does not know), ``no_time`` (a tag without any timestamp
and no ``received_at``), ``bad_epc`` (reported per tag).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sllurp.llrp import LLRPMessage
from sllurp.llrp_errors import LLRPError

from edge.errors import FrameError
from edge.protocols._lines import ErrorHandler
from edge.protocols.epc import normalize_epc, pure_identity_uri
from edge.readings import TagRead

HEADER = struct.Struct("!HII")  # version/type, length, message id
VERSIONS = frozenset({1, 2})
RO_ACCESS_REPORT = 61
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RSSI_MIN, RSSI_MAX = -150.0, 50.0  # the contract's bounds of rssi_dbm


def parse_header(data: bytes | bytearray) -> tuple[int, int, int, int]:
    """``(version, message type, length, message id)`` of the first 10 bytes of ``data``."""
    vertype, length, msgid = HEADER.unpack_from(data)
    return (vertype >> 10) & 0x07, vertype & 0x03FF, length, msgid


class LlrpFramer:
    """Cut an LLRP TCP byte stream into whole messages (``bytes``, header included)."""

    def __init__(
        self, *, max_len: int = 1 << 20, on_error: ErrorHandler | None = None, device: str | None = None
    ) -> None:
        self.max_len = max_len
        self.on_error = on_error
        self.device = device
        self.rejected: Counter[str] = Counter()
        self.broken = False
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes from the socket; return the messages they complete, in order."""
        if self.broken:
            return []
        self._buf += data
        out: list[bytes] = []
        while len(self._buf) >= HEADER.size:
            version, _, length, msgid = parse_header(self._buf)
            if length < HEADER.size:
                self._break("malformed", f"message {msgid}: length {length} shorter than the header")
                break
            if version not in VERSIONS:
                self._break("unsupported", f"message {msgid}: LLRP version {version}")
                break
            if length > self.max_len:
                self._break("overlong", f"message {msgid}: length {length} over {self.max_len}")
                break
            if len(self._buf) < length:
                break
            out.append(bytes(self._buf[:length]))
            del self._buf[:length]
        return out

    def flush(self) -> list[bytes]:
        """The connection has closed: a partial message is reported as ``truncated``."""
        if self._buf and not self.broken:
            self._reject("truncated", f"connection closed {len(self._buf)} bytes into a message", bytes(self._buf))
        self._buf.clear()
        return []

    def reset(self) -> None:
        """Start over on a new connection."""
        self._buf.clear()
        self.broken = False

    def _break(self, reason: str, message: str) -> None:
        self._reject(reason, f"{message}; stream dropped until reset", bytes(self._buf[: HEADER.size]))
        self._buf.clear()
        self.broken = True

    def _reject(self, reason: str, message: str, raw: bytes) -> None:
        self.rejected[reason] += 1
        if self.on_error is not None:
            self.on_error(FrameError(reason, message, raw=raw, device=self.device))


class LlrpDecoder:
    """Decode whole LLRP messages with sllurp; RO_ACCESS_REPORT -> TagReads, the rest -> nothing."""

    def __init__(self, *, on_error: ErrorHandler | None = None, device: str | None = None) -> None:
        self.on_error = on_error
        self.device = device
        self.rejected: Counter[str] = Counter()
        self.last_message: str | None = None

    def decode(self, message: bytes, received_at: datetime | None = None) -> list[TagRead]:
        """One message (as :class:`LlrpFramer` yields it) -> its tag reads, in report order."""
        self.last_message = None
        if len(message) < HEADER.size or parse_header(message)[2] != len(message):
            raise self._error("malformed", "message length does not match its header", message)
        msgtype = parse_header(message)[1]
        try:
            decoded = LLRPMessage(msgbytes=message)
        except LLRPError as exc:
            if "Cannot find decoder" in str(exc):
                raise self._error("unsupported", f"message type {msgtype}", message) from None
            raise self._error("malformed", f"sllurp: {exc}", message) from None
        except (struct.error, ValueError, KeyError, IndexError, TypeError) as exc:
            raise self._error("malformed", f"sllurp: {exc!r}", message) from None
        name = decoded.getName()
        self.last_message = name if isinstance(name, str) else None
        if msgtype != RO_ACCESS_REPORT:
            return []
        body = decoded.msgdict[name]
        reports = body.get("TagReportData", [])
        if isinstance(reports, Mapping):
            reports = [reports]
        reads: list[TagRead] = []
        for report in reports:
            read = self._tag(report, message, received_at)
            if read is not None:
                reads.append(read)
        return reads

    def _tag(self, report: Mapping[str, Any], message: bytes, received_at: datetime | None) -> TagRead | None:
        epc_raw = report.get("EPC", report.get("EPC-96"))
        if not isinstance(epc_raw, bytes | str):
            self._reject("bad_epc", "tag report without EPC", message)
            return None
        epc_text = epc_raw.decode("ascii") if isinstance(epc_raw, bytes) else epc_raw
        try:
            epc = normalize_epc(epc_text, device=self.device)
        except FrameError as exc:
            self._reject("bad_epc", str(exc), message)
            return None
        first_seen = _utc(report.get("FirstSeenTimestampUTC"))
        last_seen = _utc(report.get("LastSeenTimestampUTC"))
        ts = last_seen or first_seen or received_at
        if ts is None:
            raise self._error("no_time", f"tag {epc} without timestamp", message)
        impinj = report.get("ImpinjPeakRSSI")
        peak = report.get("PeakRSSI")
        rssi: float | None = None
        if isinstance(impinj, int):
            rssi = impinj / 100.0
        elif isinstance(peak, int):
            rssi = float(peak)
        if rssi is not None and not RSSI_MIN <= rssi <= RSSI_MAX:
            rssi = None  # no antenna measures that: the platform would refuse the whole batch for it
        antenna = report.get("AntennaID")
        count = report.get("TagSeenCount")
        return TagRead(
            ts=ts,
            epc=epc,
            antenna=antenna if isinstance(antenna, int) else None,
            rssi_dbm=rssi,
            first_seen=first_seen,
            count=count if isinstance(count, int) and count > 0 else 1,
            epc_uri=pure_identity_uri(epc),
        )

    def _reject(self, reason: str, message: str, raw: bytes) -> None:
        self.rejected[reason] += 1
        if self.on_error is not None:
            self.on_error(FrameError(reason, message, raw=raw, device=self.device))

    def _error(self, reason: str, message: str, raw: bytes) -> FrameError:
        return FrameError(reason, message, raw=raw, device=self.device)


def _utc(microseconds: object) -> datetime | None:
    if not isinstance(microseconds, int) or microseconds <= 0:
        return None
    try:
        return _EPOCH + timedelta(microseconds=microseconds)
    except OverflowError:  # a uint64 past year 9999: no reader's clock says that
        return None
