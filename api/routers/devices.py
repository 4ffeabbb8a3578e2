"""Devices: vehicle terminals (gps), cold-room sensors (temp) and RFID readers (rfid)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Admin, Viewer
from api.db import Conn
from api.errors import Invalid, error_responses
from api.ids import IdPath
from api.registry import RegistryTable

router = APIRouter(prefix="/devices", tags=["devices"], responses=error_responses(401))
TABLE = RegistryTable("devices", "device_id", ("kind", "name", "vehicle_id", "gate_id", "profile"), "device")


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["gps", "temp", "rfid"]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    vehicle_id: str | None = None
    gate_id: str | None = None
    profile: str | None = None


@router.get("")
async def list_devices(who: Viewer, conn: Conn) -> list[dict[str, Any]]:
    return await TABLE.list(conn)


@router.get("/{device_id}", responses=error_responses(404))
async def get_device(device_id: IdPath, who: Viewer, conn: Conn) -> dict[str, Any]:
    return await TABLE.get(conn, device_id)


@router.put("/{device_id}", responses=error_responses(400, 403, 409))
async def put_device(device_id: IdPath, body: DeviceIn, who: Admin, conn: Conn) -> dict[str, Any]:
    if body.profile is not None and body.kind != "temp":
        raise Invalid("profile applies to temp devices only")
    return await TABLE.upsert(conn, device_id, body.model_dump())
