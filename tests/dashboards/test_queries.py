"""Every panel query of every dashboard, run as Grafana would run it, on simulated history.

Each panel's SQL is expanded as Grafana 12 does (dashboards/grafana_sql.py: template variables at
their saved defaults, then the PostgreSQL macros), at the dashboard's default time range (or the panel's
own ``timeFrom``) ending now, and run as the read-only login. The result must have what the panel type
reads (a ``time`` column and numbers for a time series, lat/lon and the colour field for a Geomap layer,
the columns a table's overrides name, ...) and rows, unless the seeded data itself says there are none
(:data:`IMPLIED`, asked with simpler SQL of its own). Each query's time is recorded for the terminal summary,
on the default range and on the whole seeded history.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from dashboards.grafana_sql import TimeRange, interpolate, panel_range, panel_statements, parse_time
from tests.dashboards.support import SeededDb, load_dashboards, record_timing

TZ = ZoneInfo("Asia/Shanghai")
NUMERIC = {20, 21, 23, 700, 701, 1700}  # int8, int2, int4, float4, float8, numeric
TIME = {1114, 1184}  # timestamp, timestamptz
TEXT = {25, 1043, 19}  # text, varchar, name

# Panels that may come back empty, each with a query (as the schema owner, simpler than the panel's own) that
# says whether the seeded data has anything for it in [from, to]. Every other panel must have rows.
IMPLIED: dict[tuple[str, str], str] = {
    ("bondwatch-fleet", "车队告警 Open fleet alerts"): """
        SELECT EXISTS (SELECT 1 FROM alerts WHERE subject_kind = 'vehicle' AND opened_at <= %(to)s
                       AND (cleared_at IS NULL OR cleared_at > %(to)s))""",
    ("bondwatch-fleet", "在途运单 Trips in progress"): """
        SELECT EXISTS (
            SELECT 1 FROM (
                SELECT DISTINCT ON (vehicle_id) vehicle_id, direction, decision FROM gate_passages
                WHERE vehicle_id IS NOT NULL AND first_read_at <= %(to)s
                  AND first_read_at > %(to)s - interval '12 hours'
                ORDER BY vehicle_id, first_read_at DESC) AS last
            WHERE direction = 'out' AND decision = 'pass')""",
    ("bondwatch-coldstore", "离线传感器 Sensors offline"): """
        SELECT EXISTS (
            SELECT 1 FROM devices d JOIN profiles p ON p.name = d.profile
            WHERE d.kind = 'temp' AND coalesce((SELECT max(ts) FROM temperatures t
                                                WHERE t.device_id = d.device_id AND t.ts <= %(to)s), '-infinity')
                                      < %(to)s - make_interval(secs => p.offline_after_s))
            OR EXISTS (SELECT 1 FROM alerts WHERE type = 'sensor_offline' AND opened_at <= %(to)s
                       AND (cleared_at IS NULL OR cleared_at > %(to)s))""",
    ("bondwatch-coldstore", "超温与预警 Excursions and pre-alarms"): """
        SELECT EXISTS (SELECT 1 FROM alerts WHERE type IN ('temp_excursion', 'temp_pre_alarm')
                       AND opened_at <= %(to)s AND (cleared_at IS NULL OR cleared_at >= %(from)s))""",
    ("bondwatch-gates", "扣留记录 Holds"): """
        SELECT EXISTS (SELECT 1 FROM gate_passages WHERE decision = 'hold'
                       AND first_read_at BETWEEN %(from)s AND %(to)s)""",
    ("bondwatch-gates", "扣留原因 Hold reasons"): """
        SELECT EXISTS (SELECT 1 FROM gate_passages WHERE decision = 'hold'
                       AND first_read_at BETWEEN %(from)s AND %(to)s)""",
    ("bondwatch-gates", "核放单使用 Release notes used"): """
        SELECT EXISTS (SELECT 1 FROM release_notes WHERE used_at BETWEEN %(from)s AND %(to)s)""",
    ("bondwatch-alerts", "待办告警 Open alerts"): "SELECT EXISTS (SELECT 1 FROM alerts WHERE status <> 'cleared')",
    ("bondwatch-alerts", "确认用时 Time to acknowledge"): """
        SELECT EXISTS (SELECT 1 FROM alerts WHERE acked_at BETWEEN %(from)s AND %(to)s AND acked_at >= raised_at)""",
    ("bondwatch-alerts", "处理记录 Alert history"): """
        SELECT EXISTS (SELECT 1 FROM alert_events WHERE at BETWEEN %(from)s AND %(to)s)""",
    ("bondwatch-alerts", "按类型 Alerts by type"): """
        SELECT EXISTS (SELECT 1 FROM alerts WHERE opened_at BETWEEN %(from)s AND %(to)s)""",
    ("bondwatch-alerts", "告警趋势 Alerts opened"): """
        SELECT EXISTS (SELECT 1 FROM alerts WHERE opened_at BETWEEN %(from)s AND %(to)s)""",
}


@dataclass
class Result:
    refid: str
    sql: str
    columns: list[str]
    types: list[int]
    rows: list[tuple[Any, ...]]
    ms: float

    def column(self, name: str) -> int:
        assert name in self.columns, f"query {self.refid} has no column {name!r}; it has {self.columns}"
        return self.columns.index(name)


def panels() -> Iterator[Any]:
    for name, board in load_dashboards().items():
        for panel in board["panels"]:
            if panel.get("targets"):
                yield pytest.param(name, panel["id"], id=f"{board['uid']}:{panel['id']}:{panel['title']}")


def _options(conn: psycopg.Connection[tuple[Any, ...]], variable: Mapping[str, Any]) -> list[str]:
    rows = conn.execute(str(variable["query"]).encode()).fetchall()
    return [str(r[0]) for r in rows]


def _run(conn: psycopg.Connection[tuple[Any, ...]], refid: str, sql: str) -> Result:
    began = time.perf_counter()
    cur = conn.execute(sql.encode())  # a statement built here, not by psycopg's sql module
    rows = cur.fetchall()
    ms = (time.perf_counter() - began) * 1000
    desc = cur.description or []
    return Result(refid, sql, [d.name for d in desc], [d.type_code for d in desc], rows, ms)


def run_panel(
    conn: psycopg.Connection[tuple[Any, ...]],
    board: dict[str, Any],
    panel: dict[str, Any],
    dashboard_range: TimeRange,
    now: datetime,
    engine_used: set[str] | None = None,
) -> list[list[Result]]:
    """The panel's targets as Grafana sends them; one list of results per repeat of the panel."""
    repeats = panel_statements(board, panel, dashboard_range, now, TZ, lambda v: _options(conn, v), engine_used)
    return [[_run(conn, s.refid, s.sql) for s in statements] for statements in repeats]


def _check_shape(panel: dict[str, Any], results: list[Result]) -> None:
    kind = panel["type"]
    by_ref = {r.refid: r for r in results}
    for r, t in zip(results, panel["targets"], strict=True):
        if t["format"] == "time_series":
            i = r.column("time")
            assert r.types[i] in TIME, f"{r.refid}: time column is of type {r.types[i]}"
            assert any(ty in NUMERIC for ty in r.types), f"{r.refid}: no numeric value column"
            if "metric" in r.columns:
                assert r.types[r.column("metric")] in TEXT
            times = [row[i] for row in r.rows]
            assert times == sorted(times), f"{r.refid}: rows not sorted by time"
    if kind in ("stat", "bargauge"):
        (r,) = results
        assert any(ty in NUMERIC for ty in r.types), f"{kind}: no numeric column in {r.columns}"
    if kind == "bargauge":
        name = re.fullmatch(r"\$\{__data\.fields\.(\w+)\}", panel["fieldConfig"]["defaults"]["displayName"])
        assert name, "bar gauge bars are named by a ${__data.fields.<column>}"
        results[0].column(name.group(1))
    if kind == "barchart":
        (r,) = results
        x = r.column(panel["options"]["xField"])
        assert r.types[x] in TEXT | TIME, f"barchart x field {panel['options']['xField']!r} is not text or time"
        assert any(ty in NUMERIC for i, ty in enumerate(r.types) if i != x), "barchart has no numeric field"
    if kind == "geomap":
        for layer in panel["options"]["layers"]:
            r = by_ref[layer["filterData"]["options"]]
            for axis in ("latitude", "longitude"):
                assert r.types[r.column(layer["location"][axis])] in NUMERIC
            style = layer["config"]["style"]
            assert r.types[r.column(style["color"]["field"])] in NUMERIC, "colour by a numeric state code"
            if "text" in style:
                r.column(style["text"]["field"])
    names = [o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"] if o["matcher"]["id"] == "byName"]
    names += [s["displayName"] for s in panel.get("options", {}).get("sortBy", [])]
    columns = {c for r in results for c in r.columns}
    missing = [n for n in names if n not in columns]
    if any("metric" in r.columns for r in results):
        # Series are named by the metric column's values: an override may name one that has no rows in
        # this window (a severity without alerts), so only overrides of real columns are checked.
        missing = []
    assert not missing, f"overrides or sorting name columns the queries do not return: {missing}"


@pytest.mark.parametrize(("dashboard", "panel_id"), list(panels()))
def test_panel_query(
    dashboard: str,
    panel_id: int,
    dashboards: dict[str, dict[str, Any]],
    seeded_db: SeededDb,
    reader: psycopg.Connection[tuple[Any, ...]],
    macros_used: set[str],
) -> None:
    board = dashboards[dashboard]
    panel = next(p for p in board["panels"] if p["id"] == panel_id)
    now = datetime.now(TZ)
    default = TimeRange(parse_time(board["time"]["from"], now, TZ), parse_time(board["time"]["to"], now, TZ, True))
    for results in run_panel(reader, board, panel, default, now, macros_used):
        _check_shape(panel, results)
        rows = sum(len(r.rows) for r in results)
        time_range = panel_range(panel, default, now, TZ)
        key = (board["uid"], panel["title"])
        if key in IMPLIED:
            with psycopg.connect(seeded_db.admin_url) as admin:
                row = admin.execute(IMPLIED[key], {"from": time_range.start, "to": time_range.end}).fetchone()
            implied = bool(row and row[0])
        else:
            implied = True
        if implied:
            assert all(r.rows for r in results), f"no rows although the seeded data has some:\n{results[0].sql}"
        record_timing(board["uid"], panel["title"], f"{board['time']['from']}..now", sum(r.ms for r in results), rows)
    # The same panel over the whole seeded history: the cost of a long range (measured, not asserted).
    history = TimeRange(seeded_db.start, seeded_db.end)
    for results in run_panel(reader, board, {**panel, "timeFrom": None}, history, now):
        _check_shape(panel, results)
        days = (seeded_db.end - seeded_db.start).total_seconds() / 86400
        record_timing(
            board["uid"],
            panel["title"],
            f"history {days:.1f} d",
            sum(r.ms for r in results),
            sum(len(r.rows) for r in results),
        )


def test_variable_queries(dashboards: dict[str, dict[str, Any]], reader: psycopg.Connection[tuple[Any, ...]]) -> None:
    """Every query variable returns values (__value) and labels (__text) as the read-only login."""
    seen = 0
    for board in dashboards.values():
        for v in board["templating"]["list"]:
            if v["type"] != "query":
                continue
            cur = reader.execute(interpolate(v["query"], {}))
            assert [d.name for d in cur.description or []] == ["__value", "__text"]
            assert cur.fetchall(), f"{board['uid']}: variable {v['name']} has no values"
            seen += 1
    assert seen >= 2


@pytest.fixture(scope="module")
def macros_used() -> Iterator[set[str]]:
    used: set[str] = set()
    yield used
    # Every macro the dashboards use went through the expansion above (an unknown one raises there).
    assert used <= {
        "__timeFilter",
        "__timeFrom",
        "__timeTo",
        "__timeGroup",
        "__timeGroupAlias",
        "__time",
        "__timeEpoch",
        "__unixEpochFilter",
        "__unixEpochFrom",
        "__unixEpochTo",
        "__unixEpochGroup",
        "__unixEpochGroupAlias",
        "__unixEpochNanoFilter",
        "__unixEpochNanoFrom",
        "__unixEpochNanoTo",
    }
