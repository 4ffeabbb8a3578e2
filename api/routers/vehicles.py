"""Vehicles: the registry, their latest state, and their tracks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Admin, Viewer
from api.db import Conn
from api.errors import NotFound, error_responses
from api.ids import EpcField, IdField, IdPath
from api.registry import RegistryTable
from api.timewindow import From, To, window

router = APIRouter(prefix="/vehicles", tags=["vehicles"], responses=error_responses(401))


class VehicleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    plate: Annotated[str, Field(min_length=1, max_length=32)]
    device_id: IdField
    bonded_transport: bool = False
    corridor_id: str | None = None
    tag_epc: EpcField | None = None
    gps_lost_after_s: Annotated[int, Field(gt=0, le=86_400)] = 120
    low_soc_pct: Annotated[float, Field(ge=0, le=100)] = 20


TABLE = RegistryTable("vehicles", "vehicle_id", tuple(VehicleIn.model_fields), "vehicle")

STATE = """
SELECT v.vehicle_id, v.name, v.plate, v.device_id, v.bonded_transport, v.corridor_id,
       l.ts AS last_ts, l.received_at AS last_received_at, l.reading AS position,
       s.online
FROM vehicles v
LEFT JOIN device_latest l ON l.device_id = v.device_id
LEFT JOIN device_status s ON s.device_id = v.device_id
"""


@router.get("")
async def vehicle_states(who: Viewer, conn: Conn) -> list[dict[str, Any]]:
    """Every registered vehicle with its latest position, charge and energy readings."""
    cur = await conn.cursor(row_factory=dict_row).execute(STATE + " ORDER BY v.vehicle_id")
    return await cur.fetchall()


@router.get("/{vehicle_id}", responses=error_responses(404))
async def get_vehicle(vehicle_id: IdPath, who: Viewer, conn: Conn) -> dict[str, Any]:
    return await TABLE.get(conn, vehicle_id)


@router.put("/{vehicle_id}", responses=error_responses(400, 403, 409))
async def put_vehicle(vehicle_id: IdPath, body: VehicleIn, who: Admin, conn: Conn) -> dict[str, Any]:
    values = body.model_dump()
    if values["tag_epc"]:
        values["tag_epc"] = values["tag_epc"].upper()
    return await TABLE.upsert(conn, vehicle_id, values)


@router.get("/{vehicle_id}/track", responses=error_responses(404))
async def track(
    vehicle_id: IdPath, who: Viewer, conn: Conn, request: Request, start: From = None, end: To = None
) -> dict[str, Any]:
    """Positions of the vehicle's terminal in [from, to), oldest first."""
    vehicle = await TABLE.get(conn, vehicle_id)
    lo, hi = window(start, end)
    limit = request.app.state.settings.api_track_max_points
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT ts, lat, lon, fix, speed_kmh, heading_deg, soc_pct, energy_kwh, h2_kg, odometer_km "
        "FROM positions WHERE device_id = %s AND ts >= %s AND ts < %s ORDER BY ts LIMIT %s",
        (vehicle["device_id"], lo, hi, limit + 1),
    )
    points = await cur.fetchall()
    if not points and vehicle["device_id"] is None:
        raise NotFound(f"vehicle {vehicle_id!r} has no terminal")
    return {
        "vehicle_id": vehicle_id,
        "device_id": vehicle["device_id"],
        "from": lo,
        "to": hi,
        "truncated": len(points) > limit,
        "points": points[:limit],
    }
