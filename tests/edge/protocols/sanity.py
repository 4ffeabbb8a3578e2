"""Sanity checks every decoded reading must pass, whatever the protocol (after Traccar's filters).

A reading that fails one of these would be refused by the platform (contract payload models) or is
implausible: coordinates out of range or at "null island", a naive or non-UTC timestamp, a
``none`` fix (protocols never emit those), negative speed.
"""

from __future__ import annotations

from datetime import timedelta

from bondwatch.contract.payloads import GpsReading, RfidReading
from edge.readings import Position, TagRead, payload


def check_position(p: Position) -> Position:
    assert isinstance(p, Position)
    assert p.ts.tzinfo is not None and p.ts.utcoffset() == timedelta(0), f"ts not aware UTC: {p.ts!r}"
    assert 2000 <= p.ts.year < 2100, p.ts
    assert -90.0 <= p.lat <= 90.0 and -180.0 <= p.lon <= 180.0, (p.lat, p.lon)
    assert (p.lat, p.lon) != (0.0, 0.0), "null island"
    assert p.fix in ("2d", "3d"), p.fix
    assert p.speed_kmh is None or 0.0 <= p.speed_kmh <= 1000.0, p.speed_kmh
    assert p.heading_deg is None or 0.0 <= p.heading_deg < 360.0, p.heading_deg
    assert p.hdop is None or p.hdop >= 0.0, p.hdop
    assert p.sats is None or (isinstance(p.sats, int) and 0 <= p.sats <= 255), p.sats
    assert p.soc_pct is None or 0.0 <= p.soc_pct <= 100.0, p.soc_pct
    for value in (p.energy_kwh, p.h2_kg, p.odometer_km):
        assert value is None or value >= 0.0, value
    GpsReading.model_validate(payload(p, 0))  # the contract accepts it as is
    return p


def check_tag(r: TagRead) -> TagRead:
    assert isinstance(r, TagRead)
    assert r.ts.tzinfo is not None and r.ts.utcoffset() == timedelta(0), f"ts not aware UTC: {r.ts!r}"
    assert r.epc == r.epc.upper() and len(r.epc) % 4 == 0 and 24 <= len(r.epc) <= 124, r.epc
    assert r.count >= 1
    assert r.first_seen is None or r.first_seen <= r.ts
    assert r.epc_uri is None or r.epc_uri.startswith("urn:epc:id:")
    RfidReading.model_validate(payload(r, 0))
    return r
