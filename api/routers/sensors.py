"""Cold-room sensors: latest state against their profile, and reading history."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from psycopg.rows import dict_row

from api.auth import Viewer
from api.db import Conn
from api.errors import Invalid, NotFound
from api.ids import IdPath
from api.timewindow import From, To, window

router = APIRouter(prefix="/sensors", tags=["sensors"])
BUCKET_RE = re.compile(r"^([1-9]\d{0,3})(s|m|h|d)$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

STATE = """
SELECT coalesce(d.device_id, l.device_id) AS device_id, d.name, d.profile,
       p.min_c, p.max_c, l.ts AS last_ts, l.received_at AS last_received_at,
       (l.reading->>'temp_c')::real AS temp_c, (l.reading->>'rh_pct')::real AS rh_pct,
       (l.reading->>'door_open')::boolean AS door_open, s.online
FROM (SELECT * FROM devices WHERE kind = 'temp') d
FULL JOIN (SELECT * FROM device_latest WHERE kind = 'temp') l ON l.device_id = d.device_id
LEFT JOIN profiles p ON p.name = d.profile
LEFT JOIN device_status s ON s.device_id = coalesce(d.device_id, l.device_id)
ORDER BY 1
"""


@router.get("")
async def sensor_states(who: Viewer, conn: Conn) -> list[dict[str, Any]]:
    """Every temperature sensor, registered or merely heard from, with its latest reading."""
    cur = await conn.cursor(row_factory=dict_row).execute(STATE)
    return await cur.fetchall()


@router.get("/{device_id}/readings")
async def readings(
    device_id: IdPath,
    who: Viewer,
    conn: Conn,
    request: Request,
    start: From = None,
    end: To = None,
    bucket: Annotated[str | None, Query(description="e.g. 30s, 5m, 1h, 1d; days cut at local midnight")] = None,
) -> dict[str, Any]:
    lo, hi = window(start, end)
    settings = request.app.state.settings
    if bucket is None:
        cur = await conn.cursor(row_factory=dict_row).execute(
            "SELECT ts, seq, temp_c, rh_pct, door_open, battery_v FROM temperatures "
            "WHERE device_id = %s AND ts >= %s AND ts < %s ORDER BY ts LIMIT %s",
            (device_id, lo, hi, settings.api_track_max_points),
        )
    else:
        match = BUCKET_RE.match(bucket)
        if not match:
            raise Invalid(f"bucket {bucket!r} must be a positive number and s, m, h or d, e.g. 5m")
        interval = f"{match[1]} {UNITS[match[2]]}"
        cur = await conn.cursor(row_factory=dict_row).execute(
            "SELECT time_bucket(%s::interval, ts, %s) AS bucket, avg(temp_c)::real AS avg_c, "
            "min(temp_c) AS min_c, max(temp_c) AS max_c, count(*) AS n, bool_or(door_open) AS door_opened "
            "FROM temperatures WHERE device_id = %s AND ts >= %s AND ts < %s GROUP BY 1 ORDER BY 1",
            (interval, settings.api_timezone, device_id, lo, hi),
        )
    rows = await cur.fetchall()
    if not rows:
        known = await conn.execute(
            "SELECT 1 FROM devices WHERE device_id = %s UNION ALL SELECT 1 FROM device_latest WHERE device_id = %s",
            (device_id, device_id),
        )
        if await known.fetchone() is None:
            raise NotFound(f"no sensor {device_id!r}")
    return {"device_id": device_id, "from": lo, "to": hi, "bucket": bucket, "readings": rows}
