"""A truck's GNSS terminal on a serial line: NMEA 0183 (RMC, GGA, GSA, VTG) at 1 Hz plus $PBWEV.

Sentences are built with pynmea2, so their checksums are right unless a fault says otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pynmea2

from edge.protocols.nmea import BWEV
from edge.readings import Position
from simulators.devices.serial_device import SerialDevice

KMH_PER_KNOT = 1.852


def _lat(value: float) -> tuple[str, str]:
    deg = int(abs(value))
    return f"{deg:02d}{(abs(value) - deg) * 60:07.4f}", "N" if value >= 0 else "S"


def _lon(value: float) -> tuple[str, str]:
    deg = int(abs(value))
    return f"{deg:03d}{(abs(value) - deg) * 60:07.4f}", "E" if value >= 0 else "W"


def _opt(value: float | None, fmt: str = "{:.1f}") -> str:
    return "" if value is None else fmt.format(value)


def nmea_sentences(p: Position, talker: str = "GN") -> list[bytes]:
    """The sentences of one fix epoch, CR LF terminated."""
    t = p.ts.strftime("%H%M%S.") + f"{p.ts.microsecond // 10000:02d}"
    lat, ns = _lat(p.lat)
    lon, ew = _lon(p.lon)
    knots = _opt(None if p.speed_kmh is None else p.speed_kmh / KMH_PER_KNOT, "{:.2f}")
    course = _opt(p.heading_deg)
    valid = p.fix != "none"
    sentences = [
        pynmea2.RMC(talker, "RMC", (t, "A" if valid else "V", lat, ns, lon, ew, knots, course,
                                    p.ts.strftime("%d%m%y"), "", "", "A" if valid else "N")),
        pynmea2.GGA(talker, "GGA", (t, lat, ns, lon, ew, "1" if valid else "0", f"{p.sats or 0:02d}",
                                    _opt(p.hdop), "1350.0", "M", "-28.0", "M", "", "")),
        pynmea2.GSA(talker, "GSA", ("A", {"none": "1", "2d": "2", "3d": "3"}[p.fix], *([""] * 12),
                                    "1.6", _opt(p.hdop), "1.3")),
        pynmea2.VTG(talker, "VTG", (course, "T", "", "M", knots, "N", _opt(p.speed_kmh), "K", "A")),
    ]  # fmt: skip
    out = [str(s).encode() + b"\r\n" for s in sentences]
    if any(v is not None for v in (p.soc_pct, p.energy_kwh, p.h2_kg, p.odometer_km)):
        ev = BWEV("BWE", ["V", _opt(p.soc_pct), _opt(p.energy_kwh, "{:.2f}"), _opt(p.h2_kg, "{:.3f}"),
                          _opt(p.odometer_km)])  # fmt: skip
        out.insert(0, str(ev).encode() + b"\r\n")  # before the epoch's fix, so it rides on it
    return out


class GnssTerminal(SerialDevice):
    """Writes the fixes ``source(now)`` returns; ``None`` means the receiver has no fix."""

    def __init__(self, source: Callable[[datetime], Position | None], talker: str = "GN",
                 period_s: float = 1.0, link: Path | str | None = None) -> None:  # fmt: skip
        super().__init__(period_s, link)
        self.source = source
        self.talker = talker
        self.clock_skew = timedelta(0)  # fault: the terminal's clock is off by this much

    def frames(self, now: datetime) -> list[bytes]:
        position = self.source(now)
        if position is None:
            return []
        if self.clock_skew:
            position = dataclasses.replace(position, ts=position.ts + self.clock_skew)
        return nmea_sentences(position, self.talker)
