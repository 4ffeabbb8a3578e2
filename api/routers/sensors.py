"""Cold-room sensors: latest state against their profile, reading history and cold-chain statistics."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from psycopg.rows import dict_row

from api.auth import Viewer
from api.db import Conn
from api.errors import Invalid, NotFound, error_responses
from api.ids import IdPath
from api.timewindow import From, To, window

router = APIRouter(prefix="/sensors", tags=["sensors"], responses=error_responses(401))
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


@router.get("/{device_id}/readings", responses=error_responses(404))
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


# ---------------------------------------------------------------- cold-chain statistics

COLDCHAIN_PERIODS = ("day", "month")
COLDCHAIN_MAX_SPAN = timedelta(days=400)
COLDCHAIN = (
    "SELECT * FROM bondwatch_coldchain(%s::text, %s::timestamptz, %s::timestamptz, %s::text, %s::text) "
    "ORDER BY period_start"
)
SENSOR_PROFILE = (
    "SELECT p.name, p.min_c, p.max_c, p.offline_after_s FROM devices d "
    "LEFT JOIN profiles p ON p.name = d.profile WHERE d.device_id = %s"
)
ColdFrom = Annotated[
    datetime | None,
    Query(
        alias="from",
        description="RFC 3339 with offset; default: the local month of 'to' (period=day), "
        "or the 12 local months ending with it (period=month)",
    ),
]
ColdTo = Annotated[datetime | None, Query(alias="to", description="RFC 3339 with offset; default: now")]


def _month_start(value: datetime, zone: ZoneInfo, back: int = 0) -> datetime:
    """Local midnight of the 1st of the month that contains ``value``, ``back`` months earlier."""
    local = value.astimezone(zone)
    months = local.year * 12 + local.month - 1 - back
    return datetime(months // 12, months % 12 + 1, 1, tzinfo=zone)


def coldchain_window(
    period: str, start: datetime | None, end: datetime | None, zone: ZoneInfo, now: datetime
) -> tuple[datetime, datetime]:
    """The ?from=&to= of /coldchain, in the zone's offset; the conventions of api.timewindow, a longer limit."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise Invalid(f"'{name}' needs an offset, e.g. 2026-11-25T08:00:00+08:00")
    hi = (end or now).astimezone(zone)
    if start is None:
        last = hi - timedelta(microseconds=1)  # a 'to' at midnight on the 1st closes the month before
        start = _month_start(last, zone, back=0 if period == "day" else 11)
    lo = start.astimezone(zone)
    # Compared in UTC: aware datetimes that share a tzinfo compare by wall time.
    if lo.astimezone(UTC) >= hi.astimezone(UTC):
        raise Invalid("'from' must be before 'to'")
    if hi.astimezone(UTC) - lo.astimezone(UTC) > COLDCHAIN_MAX_SPAN:
        raise Invalid("a cold-chain window spans at most 400 days; ask year by year")
    return lo, hi


@router.get("/{device_id}/coldchain", responses=error_responses(404))
async def coldchain(
    device_id: IdPath,
    who: Viewer,
    conn: Conn,
    request: Request,
    start: ColdFrom = None,
    end: ColdTo = None,
    period: Annotated[str, Query(description="day or month: local calendar days or months")] = "day",
) -> dict[str, Any]:
    """Time-weighted mean, min/max, mean kinetic temperature and seconds in/above/below the profile range,
    per local day or month, from the database function bondwatch_coldchain (docs/coldchain.md)."""
    if period not in COLDCHAIN_PERIODS:
        raise Invalid(f"period {period!r} must be day or month")
    tz: str = request.app.state.settings.api_timezone
    lo, hi = coldchain_window(period, start, end, ZoneInfo(tz), datetime.now(UTC))

    cur = await conn.cursor(row_factory=dict_row).execute(SENSOR_PROFILE, (device_id,))
    registered = await cur.fetchone()
    cur = await conn.cursor(row_factory=dict_row).execute(COLDCHAIN, (device_id, lo, hi, "total", tz))
    totals = await cur.fetchone()
    assert totals is not None  # the 'total' bucket always has its one row
    if registered is None and totals["readings"] == 0:
        known = await conn.execute("SELECT 1 FROM device_latest WHERE device_id = %s", (device_id,))
        if await known.fetchone() is None:
            raise NotFound(f"no sensor {device_id!r}")
    del totals["period_start"]
    cur = await conn.cursor(row_factory=dict_row).execute(COLDCHAIN, (device_id, lo, hi, period, tz))
    rows = await cur.fetchall()
    profile = registered if registered is not None and registered["name"] is not None else None
    return {
        "device_id": device_id,
        "profile": profile,
        "period": period,
        "timezone": tz,
        "from": lo,
        "to": hi,
        "rows": rows,
        "totals": totals,
    }
