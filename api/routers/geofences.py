"""Geofences: bonded boundaries, zones, gates and corridors as GeoJSON Features."""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg
from fastapi import APIRouter, Body, Response
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.auth import Admin, Viewer
from api.db import Conn
from api.errors import Conflict, Invalid, NotFound, error_responses
from api.ids import ID_PATTERN
from bondwatch.geofence import Geofence, GeofenceInvalid, parse_feature

router = APIRouter(prefix="/geofences", tags=["geofences"], responses=error_responses(401))
ID_RE = re.compile(ID_PATTERN)


def _parse(feature: dict[str, Any], fence_id: str) -> Geofence:
    if not ID_RE.fullmatch(fence_id):
        raise Invalid(f"geofence id {fence_id!r} must match [A-Za-z0-9_.-]{{1,64}}")
    try:
        return parse_feature(feature, fence_id)
    except GeofenceInvalid as exc:
        raise Invalid(str(exc)) from None


async def _upsert(conn: Conn, fence: Geofence, create_only: bool) -> dict[str, Any]:
    conflict = (
        "NOTHING"
        if create_only
        else (
            "UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, feature = EXCLUDED.feature, "
            "width_m = EXCLUDED.width_m, updated_at = now()"
        )
    )
    cur = await conn.execute(
        f"INSERT INTO geofences (id, name, kind, feature, width_m) VALUES (%s, %s, %s, %s, %s) "
        f"ON CONFLICT (id) DO {conflict} RETURNING id",
        (fence.id, fence.name, fence.kind, Jsonb(fence.feature), fence.width_m),
    )
    if await cur.fetchone() is None:
        raise Conflict(f"geofence {fence.id!r} exists; use PUT /geofences/{fence.id} to replace it")
    return fence.feature


@router.get("")
async def list_geofences(who: Viewer, conn: Conn, kind: str | None = None) -> dict[str, Any]:
    cur = await conn.execute(
        "SELECT feature FROM geofences WHERE %(kind)s::text IS NULL OR kind = %(kind)s ORDER BY id", {"kind": kind}
    )
    return {"type": "FeatureCollection", "features": [row[0] for row in await cur.fetchall()]}


@router.get("/{fence_id}", responses=error_responses(404))
async def get_geofence(fence_id: str, who: Viewer, conn: Conn) -> dict[str, Any]:
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT feature, updated_at FROM geofences WHERE id = %s", (fence_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no geofence {fence_id!r}")
    feature: dict[str, Any] = row["feature"]
    return feature


@router.post("", status_code=201, responses=error_responses(400, 403, 409))
async def create_geofence(who: Admin, conn: Conn, feature: dict[str, Any] = Body(...)) -> dict[str, Any]:
    fence_id = feature.get("id") or (feature.get("properties") or {}).get("id") or uuid.uuid4().hex[:12]
    return await _upsert(conn, _parse(feature, str(fence_id)), create_only=True)


@router.put("/{fence_id}", responses=error_responses(400, 403))
async def put_geofence(fence_id: str, who: Admin, conn: Conn, feature: dict[str, Any] = Body(...)) -> dict[str, Any]:
    return await _upsert(conn, _parse(feature, fence_id), create_only=False)


@router.delete("/{fence_id}", status_code=204, responses=error_responses(403, 404, 409))
async def delete_geofence(fence_id: str, who: Admin, conn: Conn) -> Response:
    try:
        cur = await conn.execute("DELETE FROM geofences WHERE id = %s", (fence_id,))
    except psycopg.errors.ForeignKeyViolation:
        raise Conflict(f"geofence {fence_id!r} is a vehicle's corridor; change the vehicle first") from None
    if cur.rowcount == 0:
        raise NotFound(f"no geofence {fence_id!r}")
    return Response(status_code=204)
