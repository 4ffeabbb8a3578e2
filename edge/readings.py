"""Typed readings as protocols produce them, and their contract payloads.

A protocol module turns bytes into these; the queue gives each its ``seq``; the publisher sends
``payload(reading, seq)`` on ``bw/v1/{site}/{kind}/{device_id}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Fix = Literal["none", "2d", "3d"]


@dataclass(frozen=True, slots=True)
class Position:
    """A GNSS fix, with the vehicle's energy figures where the terminal reports them."""

    ts: datetime  # aware, UTC
    lat: float
    lon: float
    fix: Fix
    speed_kmh: float | None = None
    heading_deg: float | None = None
    hdop: float | None = None
    sats: int | None = None
    soc_pct: float | None = None
    energy_kwh: float | None = None
    h2_kg: float | None = None
    odometer_km: float | None = None

    kind = "gps"


@dataclass(frozen=True, slots=True)
class Temperature:
    ts: datetime
    temp_c: float
    rh_pct: float | None = None
    door_open: bool | None = None
    battery_v: float | None = None

    kind = "temp"


@dataclass(frozen=True, slots=True)
class TagRead:
    """One tag at one reader antenna; after smoothing, one read stands for many sightings."""

    ts: datetime  # last seen
    epc: str  # hex, upper case
    antenna: int | None = None
    rssi_dbm: float | None = None  # peak RSSI over the sightings
    gate_id: str | None = None
    direction: Literal["in", "out"] | None = None
    first_seen: datetime | None = None
    count: int = 1
    epc_uri: str | None = None  # pure identity URI where the scheme is known (SGTIN, SSCC, GRAI)

    kind = "rfid"


Reading = Position | Temperature | TagRead


def _ts(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(reading: Reading, seq: int) -> dict[str, Any]:
    """The contract payload of a reading; ``None`` fields are left out."""
    out: dict[str, Any] = {"ts": _ts(reading.ts), "seq": seq}
    for name in reading.__dataclass_fields__:
        if name in ("ts", "kind"):
            continue
        value = getattr(reading, name)
        if value is None:
            continue
        out[name] = _ts(value) if isinstance(value, datetime) else value
    return out
