"""Gates: what passed through each one, and the decisions on outbound passages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from psycopg.rows import dict_row
from pydantic import AwareDatetime

from api.auth import Viewer
from api.db import Conn
from api.errors import Invalid, error_responses

router = APIRouter(prefix="/gates", tags=["gates"], responses=error_responses(401))

# As long as a reader's gate_id may be (the contract's rfid payload), not the registry's id form:
# a gate heard of only through its readers has passages too.
GateId = Annotated[str, Path(min_length=1, max_length=64)]

PASSAGE_COLUMNS = (
    "id, site, gate_id, direction, vehicle_id, vehicle_epc, epcs, cargo_epcs, missing_epcs, reads, readers, "
    "first_read_at, last_read_at, decided_at, decision, reasons, release_note_id, published_at"
)

# Gates are the registered gate geofences plus any gate_id readers have reported. The distinct
# gate ids are walked along the (gate_id, first_read_at) index one at a time, and each gate's counts
# read only its last day, so the cost does not grow with years of passages.
GATES = """
WITH RECURSIVE seen (gate_id) AS (
    (SELECT gate_id FROM gate_passages ORDER BY gate_id LIMIT 1)
    UNION ALL
    SELECT (SELECT p.gate_id FROM gate_passages p WHERE p.gate_id > s.gate_id ORDER BY p.gate_id LIMIT 1)
    FROM seen s WHERE s.gate_id IS NOT NULL
), gates AS (
    SELECT id AS gate_id, name FROM geofences WHERE kind = 'gate'
    UNION ALL
    SELECT s.gate_id, NULL FROM seen s
    WHERE s.gate_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM geofences g WHERE g.kind = 'gate' AND g.id = s.gate_id)
)
SELECT g.gate_id, g.name,
       coalesce(d.passages_in, 0) AS passages_in_24h, coalesce(d.passages_out, 0) AS passages_out_24h,
       coalesce(d.holds, 0) AS holds_24h,
       (SELECT max(p.first_read_at) FROM gate_passages p WHERE p.gate_id = g.gate_id) AS last_passage_at
FROM gates g
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE p.direction = 'in') AS passages_in,
           count(*) FILTER (WHERE p.direction = 'out') AS passages_out,
           count(*) FILTER (WHERE p.decision = 'hold') AS holds
    FROM gate_passages p WHERE p.gate_id = g.gate_id AND p.first_read_at >= now() - interval '24 hours'
) d ON true
ORDER BY g.gate_id
"""


@router.get("")
async def list_gates(who: Viewer, conn: Conn) -> list[dict[str, Any]]:
    """Every gate with its passages in and out, and holds, over the last 24 h."""
    cur = await conn.cursor(row_factory=dict_row).execute(GATES)
    return await cur.fetchall()


@router.get("/{gate_id}/passages")
async def passages(
    gate_id: GateId,
    who: Viewer,
    conn: Conn,
    since: Annotated[AwareDatetime | None, Query(description="first read at or after; default: now - 24 h")] = None,
    until: Annotated[AwareDatetime | None, Query(description="first read before; default: no end")] = None,
    direction: Literal["in", "out"] | None = None,
    decision: Literal["pass", "hold"] | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict[str, Any]]:
    """A gate's passages, newest first; an unknown gate simply has none."""
    since = since or datetime.now(UTC) - timedelta(hours=24)
    if until is not None and until <= since:
        raise Invalid("'until' must be after 'since'")
    cur = await conn.cursor(row_factory=dict_row).execute(
        f"SELECT {PASSAGE_COLUMNS} FROM gate_passages "
        "WHERE gate_id = %s AND first_read_at >= %s AND (%s::timestamptz IS NULL OR first_read_at < %s) "
        "AND (%s::text IS NULL OR direction = %s) AND (%s::text IS NULL OR decision = %s) "
        "ORDER BY first_read_at DESC, id DESC LIMIT %s",
        (gate_id, since, until, until, direction, direction, decision, decision, limit),
    )
    return await cur.fetchall()
