"""Release notes (核放单): customs' permission for one vehicle to take listed goods out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Query
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from api.auth import Dispatcher, Viewer
from api.db import Conn
from api.errors import Conflict, Invalid, NotFound, error_responses
from api.ids import EpcField, IdField, IdPath

router = APIRouter(prefix="/release-notes", tags=["release notes"], responses=error_responses(401))
Epc = EpcField
COLUMNS = "id, vehicle_id, epcs, valid_from, valid_until, created_by, created_at"


class ReleaseNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: IdField
    vehicle_id: str
    epcs: Annotated[list[EpcField], Field(min_length=1, max_length=10_000)]
    valid_from: AwareDatetime
    valid_until: AwareDatetime

    @field_validator("epcs")
    @classmethod
    def _upper_unique(cls, epcs: list[str]) -> list[str]:
        upper = [e.upper() for e in epcs]
        if len(set(upper)) != len(upper):
            raise ValueError("epcs lists a tag more than once")
        return upper

    @model_validator(mode="after")
    def _ordered(self) -> ReleaseNoteIn:
        if self.valid_from >= self.valid_until:
            raise ValueError("valid_from must be before valid_until")
        return self


@router.get("")
async def list_notes(
    who: Viewer, conn: Conn, vehicle_id: str | None = None, valid_at: Annotated[datetime | None, Query()] = None
) -> list[dict[str, Any]]:
    cur = await conn.cursor(row_factory=dict_row).execute(
        f"SELECT {COLUMNS} FROM release_notes WHERE (%(v)s::text IS NULL OR vehicle_id = %(v)s) "
        "AND (%(t)s::timestamptz IS NULL OR %(t)s::timestamptz BETWEEN valid_from AND valid_until) "
        "ORDER BY valid_from DESC LIMIT 1000",
        {"v": vehicle_id, "t": valid_at},
    )
    return await cur.fetchall()


@router.get("/{note_id}", responses=error_responses(404))
async def get_note(note_id: IdPath, who: Viewer, conn: Conn) -> dict[str, Any]:
    cur = await conn.cursor(row_factory=dict_row).execute(
        f"SELECT {COLUMNS} FROM release_notes WHERE id = %s", (note_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no release note {note_id!r}")
    return row


@router.post("", status_code=201, responses=error_responses(400, 403, 409))
async def create_note(body: ReleaseNoteIn, who: Dispatcher, conn: Conn) -> dict[str, Any]:
    try:
        cur = await conn.cursor(row_factory=dict_row).execute(
            "INSERT INTO release_notes (id, vehicle_id, epcs, valid_from, valid_until, created_by) "
            f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}",
            (body.id, body.vehicle_id, body.epcs, body.valid_from, body.valid_until, who.name),
        )
    except psycopg.errors.UniqueViolation:
        raise Conflict(f"release note {body.id!r} exists; a note is issued once") from None
    except psycopg.errors.ForeignKeyViolation:
        raise Invalid(f"vehicle_id {body.vehicle_id!r} is not a registered vehicle") from None
    row = await cur.fetchone()
    assert row is not None
    return row
