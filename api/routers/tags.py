"""RFID tags: vehicle tags and cargo tags, with the goods' customs status."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Admin, Viewer
from api.db import Conn
from api.errors import error_responses
from api.ids import EpcPath
from api.registry import RegistryTable

router = APIRouter(prefix="/tags", tags=["tags"], responses=error_responses(401))
# Same form as an RFID reading's epc: hex, 96..496 bits in whole 16-bit words.
TABLE = RegistryTable("tags", "epc", ("kind", "customs_status", "vehicle_id", "description"), "tag")


class TagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["vehicle", "cargo"]
    customs_status: Literal["bonded", "non_bonded"]
    vehicle_id: str | None = None
    description: Annotated[str, Field(max_length=500)] | None = None


@router.get("/{epc}", responses=error_responses(404))
async def get_tag(epc: EpcPath, who: Viewer, conn: Conn) -> dict[str, Any]:
    return await TABLE.get(conn, epc.upper())


@router.put("/{epc}", responses=error_responses(400, 403, 409))
async def put_tag(epc: EpcPath, body: TagIn, who: Admin, conn: Conn) -> dict[str, Any]:
    return await TABLE.upsert(conn, epc.upper(), body.model_dump())
