"""NMEA 0183 from vehicle GNSS receivers: bytes in, :class:`~edge.readings.Position` out. No I/O.

Sentence layout (parsing and checksums are pynmea2's)::

    $<talker><type>,<field>,<field>,...,<field>*<hh><CR><LF>      (82 chars by the standard)
     │       │                                  └ XOR of every byte between '$' and '*', 2 hex
     │       └ RMC GGA GLL VTG GSA (used), ZDA (date only), anything else is ignored
     └ GP GPS, GL GLONASS, GA Galileo, GB / BD BeiDou, GN multi-constellation

    RMC  time,status A|V,lat,N|S,lon,E|W,speed kn,track °true,ddmmyy,magvar,E|W[,mode[,nav status]]
    GGA  time,lat,N|S,lon,E|W,quality 0..8,sats used,hdop,alt,M,geoid sep,M,dgps age,dgps station
    GLL  lat,N|S,lon,E|W,time,status A|V[,mode]
    VTG  track °true,T,track °mag,M,speed kn,N,speed km/h,K[,mode]
    GSA  A|M,fix 1|2|3,12 x PRN used,pdop,hdop,vdop[,system id]
    ZDA  time,dd,mm,yyyy,zone h,zone min
         time is hhmmss[.ss] UTC; lat ddmm.mmmm; lon dddmm.mmmm

BondWatch truck terminals add one proprietary sentence (registered with pynmea2 as ``BWEV``)::

    $PBWEV,<soc_pct>,<energy_kwh>,<h2_kg>,<odometer_km>*hh
           │         │            │       └ odometer, km (>= 0)
           │         │            └ hydrogen used, cumulative kg (>= 0; fuel-cell trucks)
           │         └ cumulative traction energy, kWh (>= 0)
           └ state of charge of the traction battery, % (0..100)
    e.g.  $PBWEV,76.5,18234.2,,120554.8*7D      (a battery truck: no hydrogen, empty field)

Any field may be empty (not reported). A ``$PBWEV`` replaces the whole set of four values (an
empty field clears that value) and the set is attached to every Position emitted after it, until
the next ``$PBWEV``; it carries no time of its own and does not expire.

Rules of :class:`NmeaDecoder` (one decoder per receiver: it keeps that receiver's state)

* Validity. RMC status ``V`` or mode ``N``/``E``/``M``/``S``, GGA quality other than 1..5, GLL
  status ``V`` or mode ``N``/``E``/``M``/``S``, and empty latitude/longitude are no fix: the
  sentence raises ``FrameError("no_fix")``, marks its epoch as without fix (it is never emitted)
  and forgets the last GSA fix dimension. No ``fix: "none"`` Position is ever produced. A GSA with
  fix 1 is not an error: it only clears the remembered dimension.
* Epochs. RMC, GGA and GLL carry the fix time; consecutive sentences with the same time form one
  epoch and make at most one Position. VTG and GSA carry no time and belong to the epoch that is
  open when they arrive (if it has not been emitted yet). An epoch is emitted

  - as soon as it holds every sentence of the receiver's cycle: the subset of {RMC, GGA} seen in
    the previous epoch that had either (both, until the first epoch has closed). A receiver that
    sends RMC and GGA gets its Position at the later of the two, one that sends only RMC (or whose
    GGA fails its checksum) at its RMC;
  - otherwise when the next epoch starts (a timed sentence with another time) or at
    :meth:`NmeaDecoder.flush`; e.g. an epoch that only got a GLL (its GGA was cut off).

  Values of sentences that arrive after their epoch was emitted are dropped (a GSA still updates
  the remembered fix dimension). A Position completed while a refused sentence is handled is
  returned by the next ``decode()`` or ``flush()``.
* Date. RMC (or ZDA) gives the date; a sentence with a time only (GGA, GLL, RMC with an empty
  date) takes the date of the last RMC/ZDA, moved one day on when its time is more than 12 h
  earlier than that sentence's time (midnight passed) and one day back when more than 12 h later.
  Before any date is known a time-only sentence raises ``FrameError("no_date")``.
* Fix dimension: from a GSA of the epoch, else the last GSA seen (fix 2 or 3), else ``3d`` if
  the epoch has a GGA with an altitude, else ``2d``.
* Speed from RMC (knots x 1.852) or VTG (km/h field, else knots); heading from RMC or VTG true
  track (the first of the epoch wins). Latitude/longitude from GGA, else RMC, else GLL. hdop and
  satellites from GGA, else from the epoch's GSA (hdop; satellites = PRNs listed across its GSAs).

Reasons raised: ``bad_checksum``, ``no_checksum``, ``malformed``, ``empty_fields``, ``no_fix``,
``no_date``, ``out_of_range``, ``unsupported`` (a used sentence type from a talker not listed
above). The framer reports ``garbage``, ``overlong`` and ``truncated``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar, NoReturn, cast

import pynmea2

from edge.errors import FrameError
from edge.protocols._lines import ErrorHandler, LineFramer
from edge.readings import Fix, Position

TALKERS = frozenset({"GP", "GL", "GA", "GB", "BD", "GN"})
KNOTS_TO_KMH = 1.852
MAX_SPEED_KMH = 1000.0  # the contract's bound
MAX_SATS = 255
_USED = frozenset({"RMC", "GGA", "GLL", "VTG", "GSA", "ZDA"})
_ANCHORS = frozenset({"RMC", "GGA"})
_NO_FIX_MODES = frozenset({"N", "E", "M", "S"})  # FAA mode: not valid, estimated, manual, simulator
_HALF_DAY = 12 * 3600
_GSA_FIX: dict[str, Fix] = {"2": "2d", "3": "3d"}


class BWE(pynmea2.ProprietarySentence):  # type: ignore[misc]
    """BondWatch proprietary sentences, ``$PBWE<x>``: pynmea2 dispatches on the letter after BWE."""

    sentence_types: ClassVar[dict[str, type[BWE]]] = {}

    def __new__(cls, manufacturer: str, data: list[str]) -> BWE:
        sub = cls.sentence_types.get(manufacturer + (data[0] if data else ""), cls)
        return cast(BWE, super().__new__(sub))

    def __init__(self, manufacturer: str, data: list[str]) -> None:
        self.sentence_type = manufacturer + (data[0] if data else "")
        super().__init__(manufacturer, data)


class BWEV(BWE):
    """``$PBWEV``: energy figures of a BondWatch truck terminal (layout in the module docstring)."""

    fields = (
        ("Subtype", "subtype"),
        ("State of charge (%)", "soc_pct"),
        ("Cumulative traction energy (kWh)", "energy_kwh"),
        ("Hydrogen used, cumulative (kg)", "h2_kg"),
        ("Odometer (km)", "odometer_km"),
    )


@dataclass(frozen=True, slots=True)
class EvFigures:
    """The values of the last ``$PBWEV``."""

    soc_pct: float | None = None
    energy_kwh: float | None = None
    h2_kg: float | None = None
    odometer_km: float | None = None


class NmeaFramer(LineFramer):
    """Cut a receiver's byte stream into sentences (``$...``, without CR/LF).

    Besides the :class:`~edge.protocols._lines.LineFramer` checks, a line is resynchronised on
    ``$``: bytes before the first ``$`` are ``garbage``, and a sentence cut short by the next
    ``$`` (``$GPGGA,030130$GPGLL,...*41``) is reported as ``truncated`` while the sentence after it
    is kept. A sentence complete with its ``*hh`` directly followed by another is kept too.
    """

    def __init__(self, *, max_len: int = 128, on_error: ErrorHandler | None = None, device: str | None = None) -> None:
        super().__init__(max_len=max_len, encoding="ascii", on_error=on_error, device=device)

    def _split(self, raw: bytes) -> list[str]:
        raw = raw.strip()
        start = raw.find(b"$")
        if start < 0:
            self._reject("garbage", "line without '$'", raw)
            return []
        if raw[:start].strip():
            self._reject("garbage", "bytes before '$'", raw[:start])
        parts = [b"$" + part for part in raw[start + 1 :].split(b"$")]
        out: list[str] = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if not last and not _has_checksum(part):
                self._reject("truncated", "sentence cut off by the next '$'", part)
                continue
            line = self._check(part)
            if line is not None:
                out.append(line)
        return out

    def _overflow(self) -> list[str]:
        # Keep a sentence that started after a lost terminator, if it still fits.
        cut = self._buf.rfind(b"$")
        if cut > 0 and len(self._buf) - cut <= self.max_len:
            self._reject("overlong", f"line longer than {self.max_len} bytes", bytes(self._buf[:cut]))
            del self._buf[:cut]
            return []
        return super()._overflow()


def _has_checksum(part: bytes) -> bool:
    return len(part) >= 3 and part[-3:-2] == b"*"


@dataclass(slots=True)
class _Epoch:
    at: time  # time of day, UTC
    day: date | None = None  # from this epoch's RMC
    inferred_day: date | None = None  # from the last RMC/ZDA, for time-only sentences
    seen: set[str] = field(default_factory=set)
    has_fix: bool = False
    no_fix: bool = False
    emitted: bool = False
    lat: float | None = None
    lon: float | None = None
    latlon_rank: int = 0  # 3 GGA, 2 RMC, 1 GLL
    gga_altitude: bool = False
    gsa_fix: Fix | None = None
    speed_kmh: float | None = None
    heading_deg: float | None = None
    hdop: float | None = None
    sats: int | None = None
    gsa_hdop: float | None = None
    gsa_sats: int = 0


class NmeaDecoder:
    """Turn one receiver's sentences into Positions, one per epoch (rules in the module docstring)."""

    def __init__(self, *, device: str | None = None) -> None:
        self.device = device
        self.ev: EvFigures | None = None
        self._ref: tuple[date, time] | None = None  # date and time of the last RMC/ZDA
        self._gsa_fix: Fix | None = None
        self._cycle: frozenset[str] = _ANCHORS
        self._open: _Epoch | None = None
        self._outbox: list[Position] = []

    def decode(self, sentence: str) -> list[Position]:
        """One sentence -> the Positions it completes (usually none or one).

        Raises :class:`~edge.errors.FrameError` for a sentence that is refused.
        """
        msg = self._parse(sentence)
        if isinstance(msg, BWEV):
            self._ev(msg, sentence)
        elif isinstance(msg, pynmea2.TalkerSentence) and msg.sentence_type in _USED:
            if msg.talker not in TALKERS:
                raise self._error("unsupported", f"talker {msg.talker!r} is not a supported GNSS", sentence)
            kind = cast(str, msg.sentence_type)
            getattr(self, f"_{kind.lower()}")(msg, sentence)
        return self._take()

    def flush(self) -> list[Position]:
        """End of the stream (or a long silence): emit the open epoch if it has a fix."""
        if self._open is not None:
            self._close(self._open)
            self._open = None
        return self._take()

    # -- parsing -----------------------------------------------------------------------------

    def _parse(self, sentence: str) -> Any:
        match = pynmea2.NMEASentence.sentence_re.match(sentence)
        if match is None:
            raise self._error("malformed", "not an NMEA sentence", sentence)
        if match.group("checksum") is None:
            raise self._error("no_checksum", "sentence without '*hh' checksum", sentence)
        try:
            return pynmea2.parse(sentence, check=True)
        except pynmea2.ChecksumError:
            raise self._error("bad_checksum", "checksum does not match", sentence) from None
        except pynmea2.SentenceTypeError:
            return None  # a talker sentence pynmea2 does not know: not ours to use
        except (ValueError, IndexError) as exc:
            raise self._error("malformed", f"unparsable sentence: {exc}", sentence) from None

    # -- sentence handlers -------------------------------------------------------------------

    def _rmc(self, msg: Any, raw: str) -> None:
        t = self._time(msg, raw)
        if msg.status != "A" or _mode(msg, "mode_indicator") in _NO_FIX_MODES:
            self._no_fix(t, "RMC", f"RMC status {msg.status!r}", raw)
        lat, lon = self._latlon(msg, "RMC", t, raw)
        day = msg.datestamp
        if day is not None and not isinstance(day, date):
            raise self._error("malformed", f"RMC date {day!r}", raw)
        if day is not None:
            self._ref = (day, t)
        ep = self._epoch(t, raw, dated=day is not None)
        ep.day = day if day is not None else ep.day
        self._fix(ep, "RMC", lat, lon, rank=2)
        speed = _number(msg.spd_over_grnd, "RMC speed", raw, self)
        if speed is not None and ep.speed_kmh is None:
            ep.speed_kmh = self._speed(speed * KNOTS_TO_KMH, raw)
        self._heading(ep, _number(msg.true_course, "RMC track", raw, self), raw)
        self._complete(ep)

    def _gga(self, msg: Any, raw: str) -> None:
        t = self._time(msg, raw)
        if msg.gps_qual is None:
            raise self._error("empty_fields", "GGA without fix quality", raw)
        if not isinstance(msg.gps_qual, int):
            raise self._error("malformed", f"GGA fix quality {msg.gps_qual!r}", raw)
        if not 1 <= msg.gps_qual <= 5:
            self._no_fix(t, "GGA", f"GGA fix quality {msg.gps_qual}", raw)
        lat, lon = self._latlon(msg, "GGA", t, raw)
        ep = self._epoch(t, raw, dated=False)
        self._fix(ep, "GGA", lat, lon, rank=3)
        ep.gga_altitude = _number(msg.altitude, "GGA altitude", raw, self) is not None
        hdop = _number(msg.horizontal_dil, "GGA hdop", raw, self)
        sats = _number(msg.num_sats, "GGA satellites", raw, self)
        if (hdop is not None and hdop < 0) or (sats is not None and not 0 <= sats <= MAX_SATS):
            raise self._error("out_of_range", f"GGA hdop {hdop} / satellites {sats}", raw)
        ep.hdop = hdop if hdop is not None else ep.hdop
        ep.sats = int(sats) if sats is not None else ep.sats
        self._complete(ep)

    def _gll(self, msg: Any, raw: str) -> None:
        t = self._time(msg, raw)
        if msg.status != "A" or _mode(msg, "faa_mode") in _NO_FIX_MODES:
            self._no_fix(t, "GLL", f"GLL status {msg.status!r}", raw)
        lat, lon = self._latlon(msg, "GLL", t, raw)
        ep = self._epoch(t, raw, dated=False)
        self._fix(ep, "GLL", lat, lon, rank=1)
        self._complete(ep)

    def _vtg(self, msg: Any, raw: str) -> None:
        ep = self._open
        if ep is None or ep.emitted or _mode(msg, "faa_mode") == "N":
            return
        kmh = _number(msg.spd_over_grnd_kmph, "VTG speed", raw, self)
        if kmh is None:
            knots = _number(msg.spd_over_grnd_kts, "VTG speed", raw, self)
            kmh = None if knots is None else knots * KNOTS_TO_KMH
        if kmh is not None and ep.speed_kmh is None:
            ep.speed_kmh = self._speed(kmh, raw)
        self._heading(ep, _number(msg.true_track, "VTG track", raw, self), raw)

    def _gsa(self, msg: Any, raw: str) -> None:
        dim = msg.mode_fix_type
        if dim not in ("1", "2", "3"):
            raise self._error("empty_fields" if not dim else "malformed", f"GSA fix type {dim!r}", raw)
        fix = _GSA_FIX.get(dim)
        self._gsa_fix = fix
        ep = self._open
        if ep is None or ep.emitted or fix is None:
            return
        ep.gsa_fix = fix
        hdop = _number(msg.hdop, "GSA hdop", raw, self)
        ep.gsa_hdop = hdop if hdop is not None and hdop >= 0 else ep.gsa_hdop
        ep.gsa_sats += sum(1 for i in range(1, 13) if getattr(msg, f"sv_id{i:02d}"))

    def _zda(self, msg: Any, raw: str) -> None:
        t = self._time(msg, raw)
        try:
            day = msg.datestamp
        except (TypeError, ValueError, OverflowError):  # OverflowError: a year beyond a C long
            raise self._error("malformed", "ZDA date", raw) from None
        self._ref = (day, t)

    def _ev(self, msg: BWEV, raw: str) -> None:
        if len(msg.data) != 5:
            raise self._error("malformed", f"$PBWEV has {len(msg.data) - 1} fields, expected 4", raw)
        values: dict[str, float | None] = {}
        for name, top in (("soc_pct", 100.0), ("energy_kwh", None), ("h2_kg", None), ("odometer_km", None)):
            value = _number(getattr(msg, name), f"$PBWEV {name}", raw, self)
            if value is not None and (value < 0 or (top is not None and value > top)):
                raise self._error("out_of_range", f"$PBWEV {name} {value}", raw)
            values[name] = value
        self.ev = EvFigures(**values)

    # -- epochs ------------------------------------------------------------------------------

    def _epoch(self, t: time, raw: str, *, dated: bool) -> _Epoch:
        """The epoch of time ``t``, closing the open one if ``t`` starts a new epoch."""
        inferred = None if dated else self._date_for(t, raw)
        ep = self._open
        if ep is None or ep.at != t:
            if ep is not None:
                self._close(ep)
            ep = self._open = _Epoch(at=t)
        ep.inferred_day = inferred or ep.inferred_day
        return ep

    def _fix(self, ep: _Epoch, kind: str, lat: float, lon: float, *, rank: int) -> None:
        ep.seen.add(kind)
        ep.has_fix = True
        if rank > ep.latlon_rank:
            ep.lat, ep.lon, ep.latlon_rank = lat, lon, rank

    def _complete(self, ep: _Epoch) -> None:
        if not ep.emitted and not ep.no_fix and ep.has_fix and self._cycle <= ep.seen:
            self._emit(ep)

    def _close(self, ep: _Epoch) -> None:
        cycle = ep.seen & _ANCHORS
        if cycle:
            self._cycle = frozenset(cycle)
        if not ep.emitted and not ep.no_fix and ep.has_fix:
            self._emit(ep)

    def _emit(self, ep: _Epoch) -> None:
        ep.emitted = True
        day = ep.day or ep.inferred_day
        if day is None or ep.lat is None or ep.lon is None:  # pragma: no cover - guarded on arrival
            return
        fix: Fix = ep.gsa_fix or self._gsa_fix or ("3d" if ep.gga_altitude else "2d")
        ev = self.ev or EvFigures()
        self._outbox.append(
            Position(
                ts=datetime.combine(day, ep.at.replace(tzinfo=None), tzinfo=UTC),
                lat=ep.lat,
                lon=ep.lon,
                fix=fix,
                speed_kmh=ep.speed_kmh,
                heading_deg=ep.heading_deg,
                hdop=ep.hdop if ep.hdop is not None else ep.gsa_hdop,
                sats=ep.sats if ep.sats is not None else (ep.gsa_sats or None),
                soc_pct=ev.soc_pct,
                energy_kwh=ev.energy_kwh,
                h2_kg=ev.h2_kg,
                odometer_km=ev.odometer_km,
            )
        )

    def _no_fix(self, t: time, kind: str, message: str, raw: str) -> NoReturn:
        ep = self._open
        if ep is None or ep.at != t:
            if ep is not None:
                self._close(ep)
            ep = self._open = _Epoch(at=t)
        ep.seen.add(kind)
        ep.no_fix = True
        self._gsa_fix = None
        raise self._error("no_fix", message, raw)

    def _take(self) -> list[Position]:
        out, self._outbox = self._outbox, []
        return out

    # -- fields ------------------------------------------------------------------------------

    def _time(self, msg: Any, raw: str) -> time:
        t = msg.timestamp
        if t is None:
            raise self._error("empty_fields", f"{msg.sentence_type} without time", raw)
        if not isinstance(t, time):
            raise self._error("malformed", f"{msg.sentence_type} time {t!r}", raw)
        return t

    def _date_for(self, t: time, raw: str) -> date:
        if self._ref is None:
            raise self._error("no_date", "time-only sentence before any RMC/ZDA date", raw)
        day, ref = self._ref
        delta = _seconds(t) - _seconds(ref)
        try:
            if delta < -_HALF_DAY:
                return day + timedelta(days=1)
            if delta > _HALF_DAY:
                return day - timedelta(days=1)
        except OverflowError:  # a ZDA of 9999-12-31 (or 0001-01-01) and a time past midnight
            raise self._error("out_of_range", f"date after {day} is outside the calendar", raw) from None
        return day

    def _latlon(self, msg: Any, kind: str, t: time, raw: str) -> tuple[float, float]:
        if not (msg.lat and msg.lat_dir and msg.lon and msg.lon_dir):
            self._no_fix(t, kind, f"{kind} without latitude/longitude", raw)
        if msg.lat_dir not in ("N", "S") or msg.lon_dir not in ("E", "W"):
            raise self._error("malformed", f"{kind} hemisphere {msg.lat_dir!r}/{msg.lon_dir!r}", raw)
        try:
            lat, lon = float(msg.latitude), float(msg.longitude)
        except ValueError:
            raise self._error("malformed", f"{kind} latitude/longitude", raw) from None
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
            raise self._error("out_of_range", f"{kind} position {lat}, {lon}", raw)
        return lat, lon

    def _speed(self, kmh: float, raw: str) -> float:
        if not 0 <= kmh <= MAX_SPEED_KMH:
            raise self._error("out_of_range", f"speed {kmh} km/h", raw)
        return kmh

    def _heading(self, ep: _Epoch, value: float | None, raw: str) -> None:
        if value is None or ep.heading_deg is not None:
            return
        if not 0 <= value <= 360:
            raise self._error("out_of_range", f"track {value}", raw)
        ep.heading_deg = value % 360.0

    def _error(self, reason: str, message: str, raw: str) -> FrameError:
        return FrameError(reason, message, raw=raw.encode("ascii", "replace"), device=self.device)


def _number(value: object, what: str, raw: str, decoder: NmeaDecoder) -> float | None:
    """A pynmea2 field as a finite float; pynmea2 hands back the text when its conversion fails."""
    if value is None or value == "":
        return None
    try:
        number = float(cast(Any, value))
    except (TypeError, ValueError):
        raise decoder._error("malformed", f"{what} {value!r}", raw) from None
    if not math.isfinite(number):
        raise decoder._error("malformed", f"{what} {value!r}", raw)
    return number


def _mode(msg: Any, name: str) -> str | None:
    try:
        value = getattr(msg, name)
    except AttributeError:
        return None
    return cast(str, value) or None


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second
