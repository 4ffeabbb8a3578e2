"""gpsd's JSON stream (``?WATCH={"enable":true,"json":true}``): bytes in, Position out. No I/O.

One JSON object per line, LF-terminated (gpsd sends CR LF)::

    {"class":"TPV","device":"/dev/ttyUSB0","mode":3,"time":"2013-04-01T03:01:29.000Z",
     "lat":26.63621,"lon":-80.18982,"altHAE":-12.0,"track":219.6,"speed":0.0,...}\\r\\n
    {"class":"SKY","hdop":1.50,"nSat":11,"uSat":6,"satellites":[...]}\\r\\n
    {"class":"VERSION",...} {"class":"DEVICES",...} {"class":"WATCH",...}     (ignored)

    TPV  mode   0 unknown, 1 no fix, 2 2D, 3 3D        -> fix "2d" / "3d"; mode < 2 is no fix
         time   RFC 3339 UTC (older gpsd: seconds since the epoch, a number)
         lat, lon  degrees; speed m/s (-> km/h x 3.6); track degrees true
    SKY  hdop, uSat (satellites used; else the count of "used": true entries), nSat

Rules of :class:`GpsdDecoder` (one per gpsd device):

* A TPV with mode 2 or 3, a time and lat/lon is one Position, stamped with the TPV's time.
  gpsd may report the same epoch several times (one TPV per NMEA sentence of the cycle); only the
  first TPV of a given time is used, the others return nothing.
* hdop and satellites come from the last SKY (each field until a later SKY reports it again);
  gpsd sends SKY after the TPV of its cycle, so they describe the previous epoch at worst.

Reasons raised: ``malformed`` (not JSON, not an object, wrong types), ``empty_fields`` (no class,
no mode, mode >= 2 without lat/lon), ``no_fix`` (mode 0/1), ``no_time`` (a fix without time),
``out_of_range``. The framer reports ``garbage`` (a line that is not a JSON object), ``overlong``
and ``truncated``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson

from edge.errors import FrameError
from edge.protocols._lines import ErrorHandler, LineFramer
from edge.readings import Fix, Position

MS_TO_KMH = 3.6
MAX_SPEED_KMH = 1000.0  # the contract's bound
MAX_SATS = 255
_FIX: dict[int, Fix] = {2: "2d", 3: "3d"}


class GpsdFramer(LineFramer):
    """Cut gpsd's stream into JSON lines; a line that does not start with ``{`` is ``garbage``."""

    def __init__(
        self, *, max_len: int = 65536, on_error: ErrorHandler | None = None, device: str | None = None
    ) -> None:
        super().__init__(max_len=max_len, encoding="utf-8", on_error=on_error, device=device)

    def _split(self, raw: bytes) -> list[str]:
        line = self._check(raw)
        if line is None:
            return []
        if not line.startswith("{"):
            self._reject("garbage", "line is not a JSON object", raw)
            return []
        return [line]


class GpsdDecoder:
    """Turn gpsd JSON lines into Positions (rules in the module docstring)."""

    def __init__(self, *, device: str | None = None) -> None:
        self.device = device
        self.hdop: float | None = None
        self.sats: int | None = None
        self._last_time: datetime | None = None

    def decode(self, line: str) -> list[Position]:
        """One JSON line -> zero or one Position; raises :class:`~edge.errors.FrameError` if refused."""
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise self._error("malformed", f"not JSON: {exc}", line) from None
        if not isinstance(obj, dict):
            raise self._error("malformed", "not a JSON object", line)
        cls = obj.get("class")
        if cls is None:
            raise self._error("empty_fields", "object without class", line)
        if cls == "SKY":
            self._sky(obj, line)
            return []
        if cls != "TPV":
            return []
        return self._tpv(obj, line)

    def _tpv(self, obj: dict[str, Any], line: str) -> list[Position]:
        mode = obj.get("mode")
        if mode is None:
            raise self._error("empty_fields", "TPV without mode", line)
        if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 3:
            raise self._error("malformed", f"TPV mode {mode!r}", line)
        if mode < 2:
            raise self._error("no_fix", f"TPV mode {mode}", line)
        ts = self._time(obj.get("time"), line)
        lat, lon = obj.get("lat"), obj.get("lon")
        if lat is None or lon is None:
            raise self._error("empty_fields", "TPV fix without lat/lon", line)
        lat, lon = self._number(lat, "lat", line), self._number(lon, "lon", line)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise self._error("out_of_range", f"TPV position {lat}, {lon}", line)
        speed = obj.get("speed")
        speed_kmh = None if speed is None else self._number(speed, "speed", line) * MS_TO_KMH
        if speed_kmh is not None and not 0 <= speed_kmh <= MAX_SPEED_KMH:
            raise self._error("out_of_range", f"TPV speed {speed}", line)
        track = obj.get("track")
        heading = None if track is None else self._number(track, "track", line)
        if heading is not None and not 0 <= heading <= 360:
            raise self._error("out_of_range", f"TPV track {track}", line)
        if ts == self._last_time:
            return []
        self._last_time = ts
        return [
            Position(
                ts=ts,
                lat=lat,
                lon=lon,
                fix=_FIX[mode],
                speed_kmh=speed_kmh,
                heading_deg=None if heading is None else heading % 360.0,
                hdop=self.hdop,
                sats=self.sats,
            )
        ]

    def _sky(self, obj: dict[str, Any], line: str) -> None:
        hdop = obj.get("hdop")
        if hdop is not None:
            value = self._number(hdop, "hdop", line)
            self.hdop = value if value >= 0 else None
        used = obj.get("uSat")
        if used is None and isinstance(obj.get("satellites"), list):
            used = sum(1 for sat in obj["satellites"] if isinstance(sat, dict) and sat.get("used") is True)
        if used is not None:
            if not isinstance(used, int) or isinstance(used, bool) or not 0 <= used <= MAX_SATS:
                raise self._error("malformed", f"SKY uSat {used!r}", line)
            self.sats = used

    def _time(self, value: object, line: str) -> datetime:
        if value is None:
            raise self._error("no_time", "TPV fix without time", line)
        try:
            if isinstance(value, str):
                ts = datetime.fromisoformat(value)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                ts = datetime.fromtimestamp(value, UTC)
            else:
                raise ValueError(value)
        except (ValueError, OverflowError, OSError):
            raise self._error("malformed", f"TPV time {value!r}", line) from None
        if ts.tzinfo is None:
            raise self._error("malformed", f"TPV time {value!r} without offset", line)
        try:
            return ts.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: its UTC is before year 1
            raise self._error("malformed", f"TPV time {value!r} is outside the calendar in UTC", line) from None

    def _number(self, value: object, what: str, line: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self._error("malformed", f"TPV/SKY {what} {value!r}", line)
        return float(value)

    def _error(self, reason: str, message: str, line: str) -> FrameError:
        return FrameError(reason, message, raw=line.encode("utf-8", "replace"), device=self.device)
