"""Cold-chain profiles: the limits a room's product needs (e.g. chilled salmon 0..4 °C)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import Admin, Viewer
from api.db import Conn
from api.errors import error_responses
from api.ids import IdPath
from api.registry import RegistryTable

router = APIRouter(prefix="/profiles", tags=["profiles"], responses=error_responses(401))


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_c: Annotated[float, Field(ge=-80, le=85)]
    max_c: Annotated[float, Field(ge=-80, le=85)]
    delay_s: Annotated[int, Field(ge=0, le=86_400)]
    hysteresis_c: Annotated[float, Field(ge=0, le=20)]
    pre_alarm_margin_c: Annotated[float, Field(ge=0, le=20)]
    offline_after_s: Annotated[int, Field(gt=0, le=7 * 86_400)]
    description: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ProfileIn:
        if self.min_c >= self.max_c:
            raise ValueError(f"min_c ({self.min_c}) must be below max_c ({self.max_c})")
        return self


TABLE = RegistryTable("profiles", "name", tuple(ProfileIn.model_fields), "profile")


@router.get("")
async def list_profiles(who: Viewer, conn: Conn) -> list[dict[str, Any]]:
    return await TABLE.list(conn)


@router.get("/{name}", responses=error_responses(404))
async def get_profile(name: IdPath, who: Viewer, conn: Conn) -> dict[str, Any]:
    return await TABLE.get(conn, name)


@router.put("/{name}", responses=error_responses(400, 403, 409))
async def put_profile(name: IdPath, body: ProfileIn, who: Admin, conn: Conn) -> dict[str, Any]:
    return await TABLE.upsert(conn, name, body.model_dump())
