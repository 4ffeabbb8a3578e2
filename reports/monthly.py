"""The figures of one month's operations report, from the database: the one implementation that the API,
``bondwatch report monthly`` and the scheduled job share. Definitions: docs/reports.md.

:func:`gather` returns a JSON-ready dict (times as RFC 3339 strings with the zone's offset, numbers rounded
to what a reader needs); the renderers (:mod:`reports.render`) only lay it out.

The month is ``[local midnight on the 1st, local midnight on the 1st of the next month)`` in the report's
time zone; for the month in progress it ends at ``now`` (``period.until``) and the report says it is partial.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from reports.period import BadMonth, Month
from reports.settings import ReportSettings

VERSION = 1
Row = dict[str, Any]
Conn = psycopg.Connection[Any]

# Silence limits when the registry gives none: the cold-chain function's cap (600 s) and the vehicles
# table's default gps_lost_after_s (120 s).
DEFAULT_TEMP_LIMIT_S = 600
DEFAULT_GPS_LIMIT_S = 120
# Expected cadence of a device with fewer than two readings when no device of its kind has a median either.
FALLBACK_CADENCE_S = 60.0

# Cumulative counters (odometer, energy, hydrogen): a step faster than this (per hour, plus a little for
# readings close together) is a glitch, not driving; it counts nothing. Far above what a 49 t truck does:
# 200 km/h; 1 MW from the pack; 30 kg H2/h (a 130 kW fuel-cell system uses about 7.5).
COUNTERS: dict[str, tuple[float, float]] = {  # column -> (max per hour, slack)
    "odometer_km": (200.0, 1.0),
    "energy_kwh": (1000.0, 5.0),
    "h2_kg": (30.0, 0.5),
}
# How far back the reading before the month is looked for, so that the step across midnight on the 1st
# counts in this month (and every step in exactly one month).
COUNTER_LOOKBACK = "7 days"


@dataclass(frozen=True)
class Window:
    month: Month
    zone: ZoneInfo
    start: datetime  # local midnight on the 1st
    end: datetime  # local midnight on the 1st of the next month
    until: datetime  # end, or now for the month in progress
    generated_at: datetime

    @property
    def complete(self) -> bool:
        return self.until >= self.end

    @property
    def seconds(self) -> float:
        return (self.until - self.start).total_seconds()

    def days(self) -> list[date]:
        """The local days of the window that have begun."""
        last = self.until.astimezone(self.zone)
        return [d for d in self.month.days() if datetime(d.year, d.month, d.day, tzinfo=self.zone) < last]


def window(month: Month, zone: ZoneInfo, now: datetime) -> Window:
    start, end = month.start(zone), month.end(zone)
    if now.astimezone(UTC) <= start.astimezone(UTC):
        raise BadMonth(f"month {month} has not begun")
    until = min(end.astimezone(UTC), now.astimezone(UTC)).astimezone(zone)
    return Window(month, zone, start, end, until, now.astimezone(zone))


# ---------------------------------------------------------------- helpers


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 3) if whole > 0 else None


def _iso(value: datetime | None, zone: ZoneInfo) -> str | None:
    return None if value is None else value.astimezone(zone).isoformat()


def _fetch(conn: Conn, query: str | sql.Composed, params: dict[str, Any] | tuple[Any, ...]) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def _params(settings: ReportSettings, w: Window) -> dict[str, Any]:
    return {"lo": w.start, "hi": w.end, "until": w.until, "tz": settings.report_timezone, "site": settings.site}


# ---------------------------------------------------------------- scope: which devices the month is about

SCOPE = """
SELECT d.device_id, d.kind, d.name, d.profile, p.min_c, p.max_c, p.offline_after_s,
       v.vehicle_id, v.name AS vehicle_name, v.plate, v.gps_lost_after_s
FROM devices d
LEFT JOIN profiles p ON p.name = d.profile
LEFT JOIN vehicles v ON v.device_id = d.device_id
WHERE d.kind IN ('gps', 'temp') AND (d.updated_at < %(hi)s OR d.device_id = ANY(%(heard)s))
ORDER BY d.device_id
"""

# Per device of one kind: readings, median interval, and the time its readings cover. A reading covers
# the time until the device's next reading, at most `limit_s`; the last one at most until the window ends.
# limit_s is the device's silence limit (the profile's offline_after_s, the vehicle's gps_lost_after_s),
# but at least twice its median interval: a device that reports less often by design is not down between
# readings (completeness shows whether it reports as often as it should).
HEARD = """
WITH r AS (
    SELECT t.device_id, t.ts,
           date_part('epoch', lead(t.ts) OVER (PARTITION BY t.device_id ORDER BY t.ts, t.seq) - t.ts) AS gap
    FROM {table} t
    WHERE t.ts >= %(lo)s AND t.ts < %(until)s
),
m AS (
    SELECT r.device_id, count(*) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY r.gap) FILTER (WHERE r.gap > 0) AS median_s
    FROM r GROUP BY r.device_id
),
lim AS (
    SELECT m.device_id, m.n, m.median_s,
           greatest({silence}, 2 * coalesce(m.median_s, 0)) AS limit_s
    FROM m
    LEFT JOIN devices d ON d.device_id = m.device_id
    LEFT JOIN profiles p ON p.name = d.profile
    LEFT JOIN vehicles v ON v.device_id = m.device_id
)
SELECT lim.device_id, lim.n, lim.median_s, lim.limit_s,
       sum(least(coalesce(r.gap, date_part('epoch', %(until)s::timestamptz - r.ts)), lim.limit_s)) AS covered_s
FROM r JOIN lim ON lim.device_id = r.device_id
GROUP BY lim.device_id, lim.n, lim.median_s, lim.limit_s
"""
SILENCE = {
    "temp": f"coalesce(p.offline_after_s, {DEFAULT_TEMP_LIMIT_S})",
    "gps": f"coalesce(v.gps_lost_after_s, {DEFAULT_GPS_LIMIT_S})",
}
TABLES = {"temp": "temperatures", "gps": "positions"}


def _heard(conn: Conn, kind: str, params: dict[str, Any]) -> dict[str, Row]:
    query = sql.SQL(HEARD).format(table=sql.Identifier(TABLES[kind]), silence=sql.SQL(SILENCE[kind]))
    return {row["device_id"]: row for row in _fetch(conn, query, params)}


# ---------------------------------------------------------------- cold chain

# Every room in one query per bucket (bondwatch_coldchain_many: bondwatch_coldchain for many sensors).
COLDCHAIN = (
    "SELECT * FROM bondwatch_coldchain_many(%s::text[], %s::timestamptz, %s::timestamptz, %s::text, %s::text)"
)

EXCURSIONS = """
SELECT a.id, a.subject_id, a.status, a.opened_at, a.cleared_at, a.details,
       coalesce((a.details->>'started_at')::timestamptz, a.opened_at) AS started_at
FROM alerts a
WHERE a.type = 'temp_excursion'
  AND coalesce((a.details->>'started_at')::timestamptz, a.opened_at) < %(until)s
  AND (a.cleared_at IS NULL OR a.cleared_at >= %(lo)s)
  AND NOT EXISTS (SELECT 1 FROM alert_events e WHERE e.alert_id = a.id AND e.site <> %(site)s)
ORDER BY started_at, a.id
"""


def _coldchain(conn: Conn, settings: ReportSettings, w: Window, rooms: list[Row], params: dict[str, Any]) -> Row:
    zone, tz = w.zone, settings.report_timezone
    names = {r["device_id"]: r["name"] for r in rooms}
    excursions: list[Row] = []
    for a in _fetch(conn, EXCURSIONS, params):
        if a["subject_id"] not in names:
            continue
        d = a["details"] or {}
        end = a["cleared_at"]
        duration = d.get("duration_s")
        if duration is None:  # an alert written without it: from its start to its end, or to now
            duration = ((end or w.until) - a["started_at"]).total_seconds()
        excursions.append(
            {
                "alert_id": a["id"],
                "device_id": a["subject_id"],
                "name": names[a["subject_id"]],
                "direction": d.get("direction"),
                "limit_c": _r(d.get("limit_c"), 2),
                "peak_c": _r(d.get("peak_c"), 2),
                "started_at": _iso(a["started_at"], zone),
                "ended_at": _iso(end, zone),
                "duration_s": _r(duration, 1),
                "status": a["status"],
            }
        )
    by_room: dict[str, list[Row]] = defaultdict(list)
    for e in excursions:
        by_room[e["device_id"]].append(e)

    out_rooms: list[Row] = []
    daily: dict[str, dict[str, float | None]] = {d.isoformat(): {} for d in w.days()}
    day_in: dict[str, float] = defaultdict(float)
    day_cov: dict[str, float] = defaultdict(float)
    in_total = cov_total = 0.0
    devices = [r["device_id"] for r in rooms]
    totals = {row["device_id"]: row for row in _fetch(conn, COLDCHAIN, (devices, w.start, w.until, "total", tz))}
    days_of: dict[str, list[Row]] = defaultdict(list)
    for row in _fetch(conn, COLDCHAIN, (devices, w.start, w.until, "day", tz)):
        days_of[row["device_id"]].append(row)
    for room in rooms:
        dev = room["device_id"]
        total = totals[dev]
        has_profile = room["profile"] is not None and total["in_range_s"] is not None
        out_rooms.append(
            {
                "device_id": dev,
                "name": room["name"],
                "profile": room["profile"],
                "min_c": _r(room["min_c"], 2),
                "max_c": _r(room["max_c"], 2),
                "readings": int(total["readings"]),
                "covered_s": _r(total["covered_s"], 1),
                "in_range_s": _r(total["in_range_s"], 1),
                "above_s": _r(total["above_s"], 1),
                "below_s": _r(total["below_s"], 1),
                "in_range_pct": _r(total["in_range_pct"], 3),
                "mean_c": _r(total["mean_c"], 2),
                "lowest_c": _r(total["min_c"], 2),
                "highest_c": _r(total["max_c"], 2),
                "mkt_c": _r(total["mkt_c"], 2),
                "door_open_s": _r(total["door_open_s"], 1),
                "excursions": len(by_room[dev]),
                "excursion_s": _r(sum(e["duration_s"] or 0 for e in by_room[dev]), 1),
            }
        )
        if has_profile:
            in_total += total["in_range_s"]
            cov_total += total["covered_s"]
        for row in days_of[dev]:
            day = row["period_start"].astimezone(zone).date().isoformat()
            if day not in daily:
                continue
            daily[day][dev] = _r(row["in_range_pct"], 3)
            if has_profile and row["covered_s"]:
                day_in[day] += row["in_range_s"]
                day_cov[day] += row["covered_s"]
    return {
        "rooms": out_rooms,
        "in_range_pct": _pct(in_total, cov_total),
        "excursions": excursions,
        "daily": [
            {"date": day, "in_range_pct": _pct(day_in[day], day_cov[day]), "rooms": rooms_pct}
            for day, rooms_pct in daily.items()
        ],
    }


# ---------------------------------------------------------------- alerts

ALERT_BASE = """
SELECT a.type, a.severity, a.opened_at, a.acked_at, a.cleared_at, a.resolved_at,
       date_part('epoch', a.acked_at - a.raised_at) AS ack_s,
       date_part('epoch', a.cleared_at - a.opened_at) AS clear_s
FROM alerts a
WHERE a.opened_at >= %(lo)s AND a.opened_at < %(until)s
  AND NOT EXISTS (SELECT 1 FROM alert_events e WHERE e.alert_id = a.id AND e.site <> %(site)s)
"""
ALERT_STATS = f"""
WITH a AS ({ALERT_BASE})
SELECT a.type, a.severity, GROUPING(a.type, a.severity) AS level,
       count(*) AS opened,
       count(a.acked_at) FILTER (WHERE a.acked_at < %(until)s) AS acknowledged,
       count(a.cleared_at) FILTER (WHERE a.cleared_at < %(until)s) AS cleared,
       count(a.resolved_at) FILTER (WHERE a.resolved_at < %(until)s) AS resolved_by_person,
       count(*) FILTER (WHERE a.cleared_at IS NULL OR a.cleared_at >= %(until)s) AS open_at_end,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY a.ack_s) AS ack_median_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY a.ack_s) AS ack_p90_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY a.clear_s) AS clear_median_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY a.clear_s) AS clear_p90_s
FROM a
GROUP BY GROUPING SETS ((a.type, a.severity), (a.severity), ())
"""
ALERT_DAILY = f"""
WITH a AS ({ALERT_BASE})
SELECT (a.opened_at AT TIME ZONE %(tz)s)::date AS day, a.severity, count(*) AS n
FROM a GROUP BY 1, 2
"""


def _alert_row(row: Row) -> Row:
    return {
        "opened": int(row["opened"]),
        "acknowledged": int(row["acknowledged"]),
        "cleared": int(row["cleared"]),
        "resolved_by_person": int(row["resolved_by_person"]),
        "open_at_end": int(row["open_at_end"]),
        "ack_median_s": _r(row["ack_median_s"], 1),
        "ack_p90_s": _r(row["ack_p90_s"], 1),
        "clear_median_s": _r(row["clear_median_s"], 1),
        "clear_p90_s": _r(row["clear_p90_s"], 1),
    }


def _alerts(conn: Conn, w: Window, params: dict[str, Any]) -> Row:
    from reports.labels import SEVERITY_ORDER

    rows = _fetch(conn, ALERT_STATS, params)
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    by_type = sorted(
        ({"type": r["type"], "severity": r["severity"], **_alert_row(r)} for r in rows if r["level"] == 0),
        key=lambda r: (rank.get(r["severity"], 9), r["type"]),
    )
    by_severity = sorted(
        ({"severity": r["severity"], **_alert_row(r)} for r in rows if r["level"] == 2),
        key=lambda r: rank.get(r["severity"], 9),
    )
    total = next((r for r in rows if r["level"] == 3), None)
    daily: dict[str, dict[str, int]] = {d.isoformat(): dict.fromkeys(SEVERITY_ORDER, 0) for d in w.days()}
    for r in _fetch(conn, ALERT_DAILY, params):
        day = r["day"].isoformat()
        if day in daily:
            daily[day][r["severity"]] = int(r["n"])
    empty = {"opened": 0, "acknowledged": 0, "cleared": 0, "resolved_by_person": 0, "open_at_end": 0}
    return {
        "by_type": by_type,
        "by_severity": by_severity,
        "total": _alert_row(total) if total is not None and total["opened"] else {**empty},
        "daily": [{"date": day, **counts} for day, counts in daily.items()],
    }


# ---------------------------------------------------------------- gates

PASSAGE_BASE = """
SELECT p.* FROM gate_passages p
WHERE p.site = %(site)s AND p.first_read_at >= %(lo)s AND p.first_read_at < %(until)s
"""
GATE_STATS = f"""
WITH p AS ({PASSAGE_BASE})
SELECT p.gate_id,
       count(*) FILTER (WHERE p.direction = 'in') AS inbound,
       count(*) FILTER (WHERE p.direction = 'out') AS outbound,
       count(*) FILTER (WHERE p.decision = 'pass') AS passed,
       count(*) FILTER (WHERE p.decision = 'hold') AS held
FROM p GROUP BY p.gate_id ORDER BY p.gate_id
"""
# A passage held for several tags not on its note counts once under not_on_note.
HOLD_REASONS = f"""
WITH p AS ({PASSAGE_BASE})
SELECT p.gate_id, r->>'code' AS code, count(DISTINCT p.id) AS passages
FROM p CROSS JOIN LATERAL jsonb_array_elements(p.reasons) r
WHERE p.decision = 'hold'
GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2
"""
HOLDS = f"""
WITH p AS ({PASSAGE_BASE})
SELECT p.id, p.gate_id, p.first_read_at, p.vehicle_id, p.release_note_id,
       ARRAY(SELECT DISTINCT r->>'code' FROM jsonb_array_elements(p.reasons) r ORDER BY 1) AS codes
FROM p WHERE p.decision = 'hold' ORDER BY p.first_read_at, p.id
"""
PASSAGE_DAILY = f"""
WITH p AS ({PASSAGE_BASE})
SELECT (p.first_read_at AT TIME ZONE %(tz)s)::date AS day, p.direction, count(*) AS n FROM p GROUP BY 1, 2
"""
GATE_NAMES = "SELECT id, name FROM geofences WHERE kind = 'gate'"


def _gates(conn: Conn, w: Window, params: dict[str, Any]) -> Row:
    names = {r["id"]: r["name"] for r in _fetch(conn, GATE_NAMES, {})}
    by_gate = [
        {
            "gate_id": r["gate_id"],
            "name": names.get(r["gate_id"], r["gate_id"]),
            "inbound": int(r["inbound"]),
            "outbound": int(r["outbound"]),
            "passed": int(r["passed"]),
            "held": int(r["held"]),
        }
        for r in _fetch(conn, GATE_STATS, params)
    ]
    reasons = [
        {"gate_id": r["gate_id"], "code": r["code"], "passages": int(r["passages"])}
        for r in _fetch(conn, HOLD_REASONS, params)
    ]
    holds = [
        {
            "passage_id": r["id"],
            "gate_id": r["gate_id"],
            "at": _iso(r["first_read_at"], w.zone),
            "vehicle_id": r["vehicle_id"],
            "release_note_id": r["release_note_id"],
            "reasons": list(r["codes"]),
        }
        for r in _fetch(conn, HOLDS, params)
    ]
    daily: dict[str, dict[str, int]] = {d.isoformat(): {"inbound": 0, "outbound": 0} for d in w.days()}
    for r in _fetch(conn, PASSAGE_DAILY, params):
        day = r["day"].isoformat()
        if day in daily:
            daily[day]["inbound" if r["direction"] == "in" else "outbound"] = int(r["n"])
    totals = {k: sum(g[k] for g in by_gate) for k in ("inbound", "outbound", "passed", "held")}
    reason_totals: dict[str, int] = defaultdict(int)
    for r in reasons:
        reason_totals[r["code"]] += r["passages"]
    return {
        "by_gate": by_gate,
        "totals": totals,
        "hold_reasons": reasons,
        "hold_reason_totals": dict(sorted(reason_totals.items(), key=lambda kv: (-kv[1], kv[0]))),
        "holds": holds,
        "daily": [{"date": day, **counts} for day, counts in daily.items()],
    }


# ---------------------------------------------------------------- fleet

COUNTER = """
WITH devs AS (SELECT unnest(%(devices)s::text[]) AS device_id),
before AS (
    SELECT d.device_id, b.ts, b.seq, b.v
    FROM devs d
    CROSS JOIN LATERAL (
        SELECT p.ts, p.seq, p.{col} AS v FROM positions p
        WHERE p.device_id = d.device_id AND p.ts < %(lo)s AND p.ts >= %(lo)s - %(lookback)s::interval
          AND p.{col} IS NOT NULL
        ORDER BY p.ts DESC, p.seq DESC LIMIT 1
    ) b
),
s AS (
    SELECT device_id, ts, seq, v FROM before
    UNION ALL
    SELECT p.device_id, p.ts, p.seq, p.{col} FROM positions p
    WHERE p.ts >= %(lo)s AND p.ts < %(until)s AND p.{col} IS NOT NULL
),
d AS (
    SELECT s.device_id, s.ts,
           s.v - lag(s.v) OVER w AS dv,
           date_part('epoch', s.ts - lag(s.ts) OVER w) AS dt
    FROM s WINDOW w AS (PARTITION BY s.device_id ORDER BY s.ts, s.seq)
)
SELECT d.device_id, (d.ts AT TIME ZONE %(tz)s)::date AS day,
       coalesce(sum(d.dv) FILTER (WHERE d.dv > 0 AND d.dv <= %(rate)s * d.dt / 3600 + %(slack)s), 0) AS amount,
       count(*) FILTER (WHERE d.dv < 0) AS resets,
       count(*) FILTER (WHERE d.dv > %(rate)s * d.dt / 3600 + %(slack)s) AS glitches,
       count(*) AS steps
FROM d
WHERE d.ts >= %(lo)s AND d.dv IS NOT NULL
GROUP BY 1, 2
"""


def counter_deltas(conn: Conn, column: str, devices: list[str], params: dict[str, Any]) -> list[Row]:
    """Per device and local day: the sum of a cumulative counter's rises between consecutive readings.

    A fall is a reset (a new terminal, a counter that wrapped): it counts nothing and counting goes on
    from the new value. A rise faster than the counter's limit (:data:`COUNTERS`) is a glitch and counts
    nothing. A gap in the data counts whatever the counter rose across it, so a terminal that was off for a
    day still gets its kilometres. The step into the month from the last reading before it counts here.
    """
    rate, slack = COUNTERS[column]
    query = sql.SQL(COUNTER).format(col=sql.Identifier(column))
    return _fetch(
        conn,
        query,
        {**params, "devices": devices, "lookback": COUNTER_LOOKBACK, "rate": rate, "slack": slack},
    )


def _fleet(conn: Conn, settings: ReportSettings, w: Window, gps: list[Row], params: dict[str, Any]) -> Row:
    devices = [g["device_id"] for g in gps]
    per: dict[str, dict[str, float]] = {d: defaultdict(float) for d in devices}
    seen: dict[str, set[str]] = {d: set() for d in devices}
    daily: dict[str, dict[str, float]] = {d.isoformat(): defaultdict(float) for d in w.days()}
    for column, key in (("odometer_km", "km"), ("energy_kwh", "energy_kwh"), ("h2_kg", "h2_kg")):
        for row in counter_deltas(conn, column, devices, params):
            dev, day = row["device_id"], row["day"].isoformat()
            if dev not in per:  # a terminal heard in the month but not in scope cannot happen; be safe
                continue
            per[dev][key] += float(row["amount"])
            per[dev][f"{key}_resets"] += int(row["resets"])
            per[dev][f"{key}_glitches"] += int(row["glitches"])
            seen[dev].add(key)
            if day in daily:
                daily[day][key] += float(row["amount"])

    f = settings
    diesel_kg_per_km = f.report_diesel_l_per_100km / 100.0 * f.report_diesel_kg_co2_per_l
    grid_kg_per_pack_kwh = f.report_grid_kg_co2_per_kwh / f.report_charging_efficiency
    vehicles: list[Row] = []
    for g in gps:
        dev = g["device_id"]
        v = per[dev]
        km, kwh, h2 = v["km"], v["energy_kwh"], v["h2_kg"]
        has_e, has_h = "energy_kwh" in seen[dev], "h2_kg" in seen[dev]
        # A fuel-cell truck's buffer battery is charged by its fuel cell: its energy_kwh, if reported, is
        # hydrogen already counted, not grid electricity.
        powertrain = "fcev" if has_h else "bev" if has_e else "unknown"
        # CO2 only where there are energy figures: a truck without them would look like pure saving.
        # Two figures: tailpipe (direct, scope 1) avoided is the whole baseline, since a battery or fuel-cell
        # truck burns nothing; net (well to wheel) avoided also takes off the CO2 of producing its energy.
        baseline = actual = None
        if powertrain != "unknown":
            baseline = km * diesel_kg_per_km
            actual = h2 * f.report_h2_kg_co2_per_kg if powertrain == "fcev" else kwh * grid_kg_per_pack_kwh
        vehicles.append(
            {
                "device_id": dev,
                "vehicle_id": g["vehicle_id"],
                "name": g["vehicle_name"] or g["name"],
                "plate": g["plate"],
                "powertrain": powertrain,
                "km": round(km, 3),
                "energy_kwh": round(kwh, 3) if has_e else None,
                "h2_kg": round(h2, 4) if has_h else None,
                "kwh_per_km": round(kwh / km, 4) if has_e and km > 0 else None,
                "h2_kg_per_100km": round(100 * h2 / km, 4) if has_h and km > 0 else None,
                "co2_baseline_kg": _r(baseline, 2),
                "co2_actual_kg": _r(actual, 2),
                "co2_avoided_kg": _r(None if baseline is None or actual is None else baseline - actual, 2),
                "co2_avoided_tailpipe_kg": _r(baseline, 2),
                "odometer_resets": int(v["km_resets"]),
                "glitches": int(v["km_glitches"] + v["energy_kwh_glitches"] + v["h2_kg_glitches"]),
            }
        )

    def total(key: str, rows: list[Row]) -> float:
        return sum(r[key] or 0.0 for r in rows)

    bev = [v for v in vehicles if v["powertrain"] == "bev"]
    fcev = [v for v in vehicles if v["powertrain"] == "fcev"]
    km_all, bev_km, fcev_km = total("km", vehicles), total("km", bev), total("km", fcev)
    kwh_all, h2_all = total("energy_kwh", vehicles), total("h2_kg", vehicles)
    co2_rows = [v for v in vehicles if v["co2_baseline_kg"] is not None]
    baseline_all, actual_all = total("co2_baseline_kg", co2_rows), total("co2_actual_kg", co2_rows)
    return {
        "vehicles": vehicles,
        "totals": {
            "vehicles": len(vehicles),
            "active_vehicles": sum(1 for v in vehicles if v["km"] > 0),
            "bev": len(bev),
            "fcev": len(fcev),
            "km": round(km_all, 3),
            "energy_kwh": round(kwh_all, 3),
            "h2_kg": round(h2_all, 4),
            "bev_km": round(bev_km, 3),
            "fcev_km": round(fcev_km, 3),
            "kwh_per_km": round(total("energy_kwh", bev) / bev_km, 4) if bev_km > 0 else None,
            "h2_kg_per_100km": round(100 * total("h2_kg", fcev) / fcev_km, 4) if fcev_km > 0 else None,
            "co2_baseline_kg": round(baseline_all, 2),
            "co2_actual_kg": round(actual_all, 2),
            # Net (well to wheel): the baseline less the CO2 of producing the electricity and hydrogen used.
            "co2_avoided_kg": round(baseline_all - actual_all, 2),
            # Per powertrain: the two depend on different factors (grid, hydrogen route) and can differ in sign.
            "co2_avoided_bev_kg": round(total("co2_avoided_kg", bev), 2),
            "co2_avoided_fcev_kg": round(total("co2_avoided_kg", fcev), 2),
            # Tailpipe (direct, scope 1): nothing comes out of the trucks' exhaust, so the whole baseline.
            "co2_avoided_tailpipe_kg": round(total("co2_avoided_tailpipe_kg", co2_rows), 2),
            "co2_avoided_tailpipe_bev_kg": round(total("co2_avoided_tailpipe_kg", bev), 2),
            "co2_avoided_tailpipe_fcev_kg": round(total("co2_avoided_tailpipe_kg", fcev), 2),
        },
        "factors": {
            "diesel_l_per_100km": f.report_diesel_l_per_100km,
            "diesel_kg_co2_per_l": f.report_diesel_kg_co2_per_l,
            "grid_kg_co2_per_kwh": f.report_grid_kg_co2_per_kwh,
            "charging_efficiency": f.report_charging_efficiency,
            "h2_kg_co2_per_kg": f.report_h2_kg_co2_per_kg,
        },
        "daily": [
            {
                "date": day,
                "km": round(v["km"], 3),
                "energy_kwh": round(v["energy_kwh"], 3),
                "h2_kg": round(v["h2_kg"], 4),
            }
            for day, v in daily.items()
        ],
    }


# ---------------------------------------------------------------- devices: uptime and completeness


def _devices(settings: ReportSettings, w: Window, scope: list[Row], heard: dict[str, dict[str, Row]]) -> Row:
    configured = {"gps": settings.report_cadence_gps_s, "temp": settings.report_cadence_temp_s}
    out: list[Row] = []
    kinds: dict[str, Row] = {}
    for kind in ("gps", "temp"):
        members = [d for d in scope if d["kind"] == kind]
        medians = [heard[kind][d["device_id"]]["median_s"] for d in members if d["device_id"] in heard[kind]]
        medians = [m for m in medians if m]
        kind_median = statistics.median(medians) if medians else None
        sum_received = sum_expected = sum_capped = sum_covered = 0.0
        for d in members:
            h = heard[kind].get(d["device_id"])
            if kind == "temp":
                silence = d["offline_after_s"] or DEFAULT_TEMP_LIMIT_S
            else:
                silence = d["gps_lost_after_s"] or DEFAULT_GPS_LIMIT_S
            n = int(h["n"]) if h else 0
            median = float(h["median_s"]) if h and h["median_s"] else None
            cadence = configured[kind] or median or kind_median or FALLBACK_CADENCE_S
            expected = w.seconds / cadence
            covered = float(h["covered_s"]) if h else 0.0
            sum_received += n
            sum_expected += expected
            sum_capped += min(n, expected)
            sum_covered += covered
            out.append(
                {
                    "device_id": d["device_id"],
                    "kind": kind,
                    "name": d["name"],
                    "readings": n,
                    "median_interval_s": _r(median, 1),
                    "limit_s": _r(float(h["limit_s"]) if h else float(silence), 1),
                    "covered_s": round(covered, 1),
                    "uptime_pct": round(100.0 * covered / w.seconds, 3),
                    "cadence_s": round(cadence, 1),
                    "expected": round(expected, 1),
                    "completeness_pct": round(100.0 * min(n, expected) / expected, 3),
                }
            )
        kinds[kind] = {
            "devices": len(members),
            "received": int(sum_received),
            "expected": round(sum_expected, 1),
            "completeness_pct": _pct(sum_capped, sum_expected),
            "uptime_pct": _pct(sum_covered, w.seconds * len(members)),
        }
    return {"devices": out, "by_kind": kinds}


# ---------------------------------------------------------------- the report


def gather(conn: Conn, settings: ReportSettings, month: Month, now: datetime | None = None) -> Row:
    """Every figure of ``month``'s report, as a JSON-ready dict."""
    zone = settings.zone
    w = window(month, zone, now or datetime.now(UTC))
    params = _params(settings, w)
    heard = {kind: _heard(conn, kind, params) for kind in ("gps", "temp")}
    heard_ids = sorted({d for kind in heard.values() for d in kind})
    scope_rows = _fetch(conn, SCOPE, {**params, "heard": heard_ids})
    known = {r["device_id"] for r in scope_rows}
    # Heard but not registered: in the report under its id, so its data is not silently left out.
    for kind, devices in heard.items():
        for dev in sorted(set(devices) - known):
            scope_rows.append(
                {
                    "device_id": dev,
                    "kind": kind,
                    "name": dev,
                    "profile": None,
                    "min_c": None,
                    "max_c": None,
                    "offline_after_s": None,
                    "vehicle_id": None,
                    "vehicle_name": None,
                    "plate": None,
                    "gps_lost_after_s": None,
                }
            )
    scope_rows.sort(key=lambda r: r["device_id"])
    rooms = [r for r in scope_rows if r["kind"] == "temp"]
    gps = [r for r in scope_rows if r["kind"] == "gps"]

    coldchain = _coldchain(conn, settings, w, rooms, params)
    alerts = _alerts(conn, w, params)
    gates = _gates(conn, w, params)
    fleet = _fleet(conn, settings, w, gps, params)
    devices = _devices(settings, w, scope_rows, heard)
    excursion_s = sum(e["duration_s"] or 0 for e in coldchain["excursions"])
    return {
        "report": "monthly",
        "version": VERSION,
        "site": {
            "id": settings.site,
            "name_zh": settings.report_site_name_zh,
            "name_en": settings.report_site_name_en,
            "customs_district": settings.report_customs_district,
        },
        "month": str(month),
        "timezone": settings.report_timezone,
        "period": {
            "from": _iso(w.start, zone),
            "to": _iso(w.end, zone),
            "until": _iso(w.until, zone),
            "complete": w.complete,
            "seconds": w.seconds,
        },
        "generated_at": _iso(w.generated_at, zone),
        "summary": {
            "rooms": len(rooms),
            "in_range_pct": coldchain["in_range_pct"],
            "excursions": len(coldchain["excursions"]),
            "excursion_s": round(excursion_s, 1),
            "alerts": alerts["total"]["opened"],
            "critical_alerts": next((s["opened"] for s in alerts["by_severity"] if s["severity"] == "critical"), 0),
            "ack_median_s": alerts["total"].get("ack_median_s"),
            "passages_in": gates["totals"]["inbound"],
            "passages_out": gates["totals"]["outbound"],
            "holds": gates["totals"]["held"],
            "vehicles": fleet["totals"]["active_vehicles"],
            "km": fleet["totals"]["km"],
            "energy_kwh": fleet["totals"]["energy_kwh"],
            "h2_kg": fleet["totals"]["h2_kg"],
            "co2_avoided_kg": fleet["totals"]["co2_avoided_kg"],
            "co2_avoided_tailpipe_kg": fleet["totals"]["co2_avoided_tailpipe_kg"],
            "uptime_pct": {k: v["uptime_pct"] for k, v in devices["by_kind"].items()},
            "completeness_pct": {k: v["completeness_pct"] for k, v in devices["by_kind"].items()},
        },
        "coldchain": coldchain,
        "alerts": alerts,
        "gates": gates,
        "fleet": fleet,
        "devices": devices,
    }
