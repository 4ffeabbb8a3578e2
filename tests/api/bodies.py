"""Valid request bodies of the registry, and helpers that register a whole chain of rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.api.conftest import Api, uid

# A rectangle around the Ordos comprehensive bonded zone, with a courtyard cut out of it.
ZONE_OUTER = [[109.90, 39.60], [110.00, 39.60], [110.00, 39.68], [109.90, 39.68], [109.90, 39.60]]
ZONE_HOLE = [[109.94, 39.63], [109.96, 39.63], [109.96, 39.65], [109.94, 39.65], [109.94, 39.63]]


def epc() -> str:
    return uuid.uuid4().hex[:24].upper()


def polygon(kind: str = "bonded_boundary", name: str = "Bonded zone", hole: bool = False) -> dict[str, Any]:
    rings = [ZONE_OUTER, ZONE_HOLE] if hole else [ZONE_OUTER]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": rings},
        "properties": {"name": name, "kind": kind},
    }


def multipolygon(name: str = "Bonded zone, two parcels") -> dict[str, Any]:
    east = [[110.10, 39.60], [110.20, 39.60], [110.20, 39.66], [110.10, 39.66], [110.10, 39.60]]
    return {
        "type": "Feature",
        "geometry": {"type": "MultiPolygon", "coordinates": [[ZONE_OUTER], [east]]},
        "properties": {"name": name, "kind": "bonded_boundary"},
    }


def corridor(width_m: float | None = 50.0, name: str = "Corridor to the airport") -> dict[str, Any]:
    props: dict[str, Any] = {"name": name, "kind": "corridor"}
    if width_m is not None:
        props["width_m"] = width_m
    line = [[110.00, 39.64], [110.05, 39.62], [110.12, 39.58]]
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": line}, "properties": props}


def profile(min_c: float = 0.0, max_c: float = 4.0) -> dict[str, Any]:
    return {
        "min_c": min_c,
        "max_c": max_c,
        "delay_s": 300,
        "hysteresis_c": 0.5,
        "pre_alarm_margin_c": 0.5,
        "offline_after_s": 600,
        "description": "chilled salmon",
    }


def temp_device(profile_name: str | None) -> dict[str, Any]:
    return {"kind": "temp", "name": "Cold room 3 probe", "profile": profile_name}


def vehicle(device_id: str | None = None, corridor_id: str | None = None, tag_epc: str | None = None) -> dict[str, Any]:
    return {
        "name": "Hydrogen truck 7",
        "plate": "蒙K·H0007",
        "device_id": device_id or uid("gps"),
        "bonded_transport": True,
        "corridor_id": corridor_id,
        "tag_epc": tag_epc,
        "gps_lost_after_s": 90,
        "low_soc_pct": 15.0,
    }


def tag(vehicle_id: str | None = None) -> dict[str, Any]:
    return {
        "kind": "cargo",
        "customs_status": "bonded",
        "vehicle_id": vehicle_id,
        "description": "pallet of frozen beef",
    }


def release_note(vehicle_id: str, note_id: str | None = None) -> dict[str, Any]:
    return {
        "id": note_id or uid("rn"),
        "vehicle_id": vehicle_id,
        "epcs": [epc(), epc()],
        "valid_from": "2026-11-25T08:00:00+08:00",
        "valid_until": "2026-11-25T20:00:00+08:00",
    }


def register_geofence(admin: Api, feature: dict[str, Any] | None = None) -> str:
    fence_id = uid("gf")
    admin.ok("PUT", f"/geofences/{fence_id}", feature or polygon())
    return fence_id


def register_vehicle(admin: Api, **fields: Any) -> str:
    vehicle_id = uid("veh")
    admin.ok("PUT", f"/vehicles/{vehicle_id}", vehicle(**fields))
    return vehicle_id


def register_sensor(admin: Api, profile_body: dict[str, Any] | None = None) -> tuple[str, str]:
    """A temp device with a profile of its own; returns (device_id, profile name)."""
    name = uid("prof")
    admin.ok("PUT", f"/profiles/{name}", profile_body or profile())
    device_id = uid("temp")
    admin.ok("PUT", f"/devices/{device_id}", temp_device(name))
    return device_id, name


# ---------------------------------------------------------------- rows the rules engine writes

Db = psycopg.Connection[tuple[Any, ...]]
# The site of the engine that "raised" the seeded rows: not the API's own, so tests can tell them apart.
ENGINE_SITE = "t-engine"


def insert_alert(
    db: Db,
    *,
    alert_type: str = "temp_excursion",
    severity: str = "major",
    status: str = "active",
    subject_id: str | None = None,
    opened_at: datetime | None = None,
    updated_at: datetime | None = None,
    note: str | None = None,
    opened_event: bool = True,
) -> int:
    """An alert as the engine raises it (with its 'opened' event unless told otherwise); returns its id.

    A cleared alert is one its rule cleared (cleared_at set, nobody resolved it).
    """
    opened_at = opened_at or datetime.now(UTC) - timedelta(minutes=5)
    updated_at = updated_at or opened_at
    row = db.execute(
        "INSERT INTO alerts (type, severity, status, subject_kind, subject_id, opened_at, updated_at, cleared_at, "
        "acked_by, acked_at, note, details) VALUES (%s, %s, %s, 'device', %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            alert_type,
            severity,
            status,
            subject_id or uid("temp"),
            opened_at,
            updated_at,
            updated_at if status == "cleared" else None,
            "engine-test" if status == "acknowledged" else None,
            updated_at if status == "acknowledged" else None,
            note,
            Jsonb({"direction": "high", "peak": 9.5, "profile": "chilled"}),
        ),
    ).fetchone()
    assert row is not None
    alert_id = int(row[0])
    if opened_event:
        db.execute(
            "INSERT INTO alert_events (site, alert_id, event, alert) "
            "SELECT %s, id, 'opened', bondwatch_alert_object(a) FROM alerts a WHERE id = %s",
            (ENGINE_SITE, alert_id),
        )
    return alert_id


def insert_passage(
    db: Db,
    gate_id: str,
    first_read_at: datetime,
    direction: str = "out",
    decision: str | None = "pass",
    vehicle_id: str | None = None,
) -> str:
    """A gate passage as the engine records it; returns its id."""
    passage_id = uid("psg")
    vehicle_epc, cargo = epc(), [epc(), epc()]
    reasons = [] if decision != "hold" else [{"code": "no_release_note", "vehicle_id": vehicle_id}]
    db.execute(
        "INSERT INTO gate_passages (id, site, gate_id, direction, vehicle_id, vehicle_epc, epcs, cargo_epcs, reads, "
        "readers, first_read_at, last_read_at, decision, reasons) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 14, %s, %s, %s, %s, %s)",
        (
            passage_id,
            ENGINE_SITE,
            gate_id,
            direction,
            vehicle_id,
            vehicle_epc,
            [vehicle_epc, *cargo],
            cargo,
            [f"{gate_id}-r1", f"{gate_id}-r2"],
            first_read_at,
            first_read_at + timedelta(seconds=6),
            decision,
            Jsonb(reasons),
        ),
    )
    return passage_id
