"""Dashboard and API queries on a month of data: p95 of every Grafana panel query and every read endpoint.

    python -m bench.queries [--days 30] [--trucks 100] [--sensors 300] [--runs 10] [--reseed]

The data (database ``bondwatch_bench_queries``, kept between runs; ``--reseed`` starts again):

1. One day of the site from the simulators' models, judged by the rules engine (``simulators.history``):
   ``--trucks`` trucks with a fix every 10 s, the cold store's 12 rooms at one reading a minute, gate reads,
   passages, release notes, alerts and the dispatchers' actions. It ends at the hour before the seeding.
2. The rooms copied until there are ``--sensors`` sensors (each copy a registered device of its own, its
   temperatures within +-0.1 °C of the original's), with their alerts.
3. That day copied back ``--days`` - 1 times (every reading, passage, release note, alert and alert event a
   day earlier each time; cumulative counters and sequence numbers continued so that every truck's odometer
   and energy counters rise through the month).

So a month holds what a month of the real site would: 100 trucks x 8,640 fixes a day and 300 sensors x
1,440 readings a day are 25.9 million positions and 13.0 million temperatures.

What is measured, as the roles that run them in production:

- every panel of every dashboard (``dashboards/*.json``), expanded as Grafana does (``dashboards/
  grafana_sql.py``) at the dashboard's default time range (or the panel's own) ending at the seeded data's
  end, run as the read-only login Grafana uses; a repeated panel (one per room) counts each repeat as a
  query. The same at a 30-day range, for comparison.
- every GET endpoint of the API (``bondwatch api`` as its own process, a viewer token) with the
  parameters a dispatcher's screen or an integrator would send.

p50/p95/max over ``--runs`` runs; the target is p95 <= 200 ms. Figures go to <state dir>/bench/queries.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import Progress

from api.auth import Role, create_token
from bench.alerts import free_port, wait_healthy
from bondwatch.db.migrate import migrate
from bondwatch.db.rollup import roll
from bondwatch.db.settings import DbSettings
from bondwatch.services.manager import LocalServices
from bondwatch.services.settings import ServicesSettings
from bondwatch.settings import load_settings
from dashboards.grafana_sql import TimeRange, panel_statements, parse_time

console = Console()
DB_NAME = "bondwatch_bench_queries"
SITE = "ordos-czb"
TZ = ZoneInfo("Asia/Shanghai")
EXE = str(Path(sys.executable).with_name("bondwatch"))
DASHBOARDS = Path(__file__).resolve().parents[1] / "dashboards"
TARGET_MS = 200.0
# Sequence numbers of a copied day: each day's block lies below the next day's, so seq rises with time.
SEQ_BLOCK = 100_000_000


@dataclass(frozen=True)
class Urls:
    """A database's three logins (the services', the schema owner's, Grafana's), and the settings with them."""

    settings: DbSettings
    db_url: str
    db_admin_url: str
    db_readonly_url: str

    @classmethod
    def of(cls, base: DbSettings, dbname: str) -> Urls:
        db = base.on_database(dbname)
        assert db.db_admin_url and db.db_readonly_url, "services.env has no admin or read-only URL"
        return cls(db, db.db_url, db.db_admin_url, db.db_readonly_url)


@dataclass(frozen=True)
class Spec:
    days: int
    trucks: int
    sensors: int

    def comment(self, end: datetime) -> str:
        return f"bench.queries days={self.days} trucks={self.trucks} sensors={self.sensors} end={end.isoformat()}"


# --------------------------------------------------------------------------------------------- seeding


def seeded_end(base: DbSettings, spec: Spec) -> datetime | None:
    """The end of the data already seeded for ``spec``, if the database holds exactly that."""
    with psycopg.connect(Urls.of(base, "postgres").db_admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (DB_NAME,)
        ).fetchone()
    if not row or not row[0]:
        return None
    head, _, end = str(row[0]).rpartition(" end=")
    return datetime.fromisoformat(end) if head == spec.comment(datetime.now(UTC)).rpartition(" end=")[0] else None


def seed(base: DbSettings, spec: Spec) -> datetime:
    from simulators.history import describe, seed_history

    urls = Urls.of(base, DB_NAME)
    with psycopg.connect(Urls.of(base, "postgres").db_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB_NAME)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
    migrate(urls.settings)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    console.print(f"[bold]seeding[/] one day of {spec.trucks} trucks (a fix every 10 s) and 12 rooms ...")
    summary = seed_history(urls.db_url, SITE, end - timedelta(days=1), 1.0, trucks=spec.trucks, rooms=12,
                           gps_every_s=10.0, temp_every_s=60.0, progress=True)  # fmt: skip
    console.print(describe(summary))
    with psycopg.connect(urls.db_admin_url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        copies = -(-spec.sensors // 12) - 1
        _copy_rooms(conn, copies, spec.sensors)
        _copy_days(conn, spec.days)
        console.print("VACUUM ANALYZE ...")
        conn.execute("VACUUM ANALYZE")
    with psycopg.connect(Urls.of(base, "postgres").db_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(DB_NAME),
                                                                     sql.Literal(spec.comment(end))))  # fmt: skip
    return end


ROOM_ALERTS = "a.subject_id IN (SELECT device_id FROM devices WHERE kind = 'temp')"


def _copy_rooms(conn: psycopg.Connection[Any], copies: int, sensors: int) -> None:
    """The 12 rooms' sensors copied ``copies`` times (suffix -01, -02, ...), then cut to ``sensors``."""
    params = {"copies": copies}
    suffix = "'-' || lpad(k::text, 2, '0')"
    steps = [
        f"""INSERT INTO devices (device_id, kind, name, profile)
            SELECT d.device_id || {suffix}, d.kind, d.name || ' #' || k, d.profile
            FROM devices d, generate_series(1, %(copies)s) k WHERE d.kind = 'temp'""",
        f"""INSERT INTO temperatures (ts, device_id, seq, received_at, temp_c, rh_pct, door_open, battery_v)
            SELECT t.ts, t.device_id || {suffix}, t.seq, t.received_at, t.temp_c + (random() - 0.5) * 0.2,
                   t.rh_pct, t.door_open, t.battery_v
            FROM temperatures t, generate_series(1, %(copies)s) k""",
        f"""INSERT INTO device_latest (device_id, kind, ts, seq, received_at, reading)
            SELECT l.device_id || {suffix}, l.kind, l.ts, l.seq, l.received_at, l.reading
            FROM device_latest l, generate_series(1, %(copies)s) k WHERE l.kind = 'temp'""",
        f"""INSERT INTO device_status (device_id, online, ts, received_at)
            SELECT s.device_id || {suffix}, s.online, s.ts, s.received_at
            FROM device_status s JOIN devices d USING (device_id), generate_series(1, %(copies)s) k
            WHERE d.kind = 'temp'""",
        f"""INSERT INTO alerts (type, severity, status, subject_kind, subject_id, opened_at, updated_at, cleared_at,
                               acked_by, acked_at, note, details, raised_at, resolved_by, resolved_at,
                               escalated_at, escalation_level)
            SELECT a.type, a.severity, a.status, a.subject_kind, a.subject_id || {suffix}, a.opened_at,
                   a.updated_at, a.cleared_at, a.acked_by, a.acked_at, a.note, a.details, a.raised_at,
                   a.resolved_by, a.resolved_at, a.escalated_at, a.escalation_level
            FROM alerts a, generate_series(1, %(copies)s) k
            WHERE {ROOM_ALERTS}""",
        f"""INSERT INTO alert_events (site, alert_id, at, event, actor, note, alert, published_at)
            SELECT e.site, n.id, e.at, e.event, e.actor, e.note,
                   e.alert || jsonb_build_object('id', n.id, 'subject_id', n.subject_id), e.published_at
            FROM alert_events e JOIN alerts o ON o.id = e.alert_id, generate_series(1, %(copies)s) k
            JOIN alerts n ON true
            WHERE n.type = o.type AND n.opened_at = o.opened_at AND n.subject_id = o.subject_id || {suffix}
              AND {ROOM_ALERTS.replace("a.", "o.")}""",
    ]
    with Progress(console=console) as progress:
        task = progress.add_task(f"rooms x{copies + 1}", total=len(steps) + 1)
        for step in steps:
            conn.execute(step.encode(), params)
            progress.advance(task)
        # Exactly ``sensors`` sensors: the last copy's surplus goes, with what refers to it.
        surplus = [r[0] for r in conn.execute(
            "SELECT device_id FROM devices WHERE kind = 'temp' ORDER BY device_id DESC OFFSET %s",
            (sensors,)).fetchall()] if sensors % 12 else []  # fmt: skip
        if surplus:
            for table in ("temperatures", "device_latest", "device_status"):
                conn.execute(sql.SQL("DELETE FROM {} WHERE device_id = ANY(%s)").format(sql.Identifier(table)),
                             (surplus,))  # fmt: skip
            conn.execute("DELETE FROM alerts WHERE subject_id = ANY(%s)", (surplus,))
            conn.execute("DELETE FROM devices WHERE device_id = ANY(%s)", (surplus,))
        progress.advance(task)


def _copy_days(conn: psycopg.Connection[Any], days: int, from_day: int = 1) -> None:
    """The seeded day copied back ``days`` - 1 times; counters continue so they rise through the month.
    ``from_day`` > 1 goes on with a copy that stopped after day ``from_day`` - 1."""
    # The seeded day ends on the hour: its first hour is 23 hours before the hour of its last fix.
    first = conn.execute("SELECT date_trunc('hour', max(ts)) - interval '23 hours' FROM positions").fetchone()
    assert first and first[0]
    conn.execute(
        """CREATE TEMP TABLE day_increase AS
           SELECT device_id, max(odometer_km) - min(odometer_km) AS km, max(energy_kwh) - min(energy_kwh) AS kwh,
                  max(h2_kg) - min(h2_kg) AS h2
           FROM positions WHERE ts >= %s GROUP BY device_id""",
        (first[0],),
    )
    # The seeded day is the last: its counters and sequence numbers move up by what the earlier days use.
    if from_day == 1:
        conn.execute(
            """UPDATE positions p SET odometer_km = p.odometer_km + %(n)s * coalesce(i.km, 0),
                                  energy_kwh = p.energy_kwh + %(n)s * coalesce(i.kwh, 0),
                                  h2_kg = p.h2_kg + %(n)s * coalesce(i.h2, 0),
                                  seq = p.seq + %(block)s
           FROM day_increase i WHERE i.device_id = p.device_id""",
            {"n": days - 1, "block": days * SEQ_BLOCK},
        )
        for table in ("temperatures", "rfid_reads"):
            conn.execute(sql.SQL("UPDATE {} SET seq = seq + %s").format(sql.Identifier(table)), (days * SEQ_BLOCK,))
    shift = "- make_interval(days => %(d)s)"
    steps = [
        f"""INSERT INTO positions (ts, device_id, seq, received_at, lat, lon, fix, speed_kmh, heading_deg, hdop, sats,
                                  soc_pct, energy_kwh, h2_kg, odometer_km)
            SELECT p.ts {shift}, p.device_id, p.seq - %(d)s::bigint * {SEQ_BLOCK}, p.received_at {shift}, p.lat, p.lon,
                   p.fix, p.speed_kmh, p.heading_deg, p.hdop, p.sats, p.soc_pct,
                   p.energy_kwh - %(d)s * coalesce(i.kwh, 0), p.h2_kg - %(d)s * coalesce(i.h2, 0),
                   p.odometer_km - %(d)s * coalesce(i.km, 0)
            FROM positions p LEFT JOIN day_increase i USING (device_id)
            WHERE p.ts >= %(first)s""",
        f"""INSERT INTO temperatures (ts, device_id, seq, received_at, temp_c, rh_pct, door_open, battery_v)
            SELECT ts {shift}, device_id, seq - %(d)s::bigint * {SEQ_BLOCK}, received_at {shift}, temp_c, rh_pct,
                   door_open, battery_v
            FROM temperatures WHERE ts >= %(first)s""",
        f"""INSERT INTO rfid_reads (ts, device_id, seq, received_at, epc, antenna, rssi_dbm, gate_id, direction)
            SELECT ts {shift}, device_id, seq - %(d)s::bigint * {SEQ_BLOCK}, received_at {shift}, epc, antenna,
                   rssi_dbm, gate_id, direction
            FROM rfid_reads WHERE ts >= %(first)s""",
        f"""INSERT INTO release_notes (id, vehicle_id, epcs, valid_from, valid_until, created_by, created_at, used_at,
                                      used_passage_id)
            SELECT id || '~' || %(d)s, vehicle_id, epcs, valid_from {shift}, valid_until {shift}, created_by,
                   created_at {shift}, used_at {shift}, used_passage_id || '~' || %(d)s
            FROM release_notes WHERE id !~ '~'""",
        f"""INSERT INTO gate_passages (id, site, gate_id, direction, vehicle_id, vehicle_epc, epcs, cargo_epcs,
                                      missing_epcs, reads, readers, first_read_at, last_read_at, decided_at,
                                      decision, reasons, release_note_id, published_at)
            SELECT id || '~' || %(d)s, site, gate_id, direction, vehicle_id, vehicle_epc, epcs, cargo_epcs,
                   missing_epcs, reads, readers, first_read_at {shift}, last_read_at {shift}, decided_at {shift},
                   decision, reasons, release_note_id || '~' || %(d)s, published_at {shift}
            FROM gate_passages WHERE id !~ '~'""",
        # Alerts still open at the end of the seeded day were resolved, on the earlier days, an hour later.
        f"""INSERT INTO alerts (type, severity, status, subject_kind, subject_id, opened_at, updated_at, cleared_at,
                               acked_by, acked_at, note, details, raised_at, resolved_by, resolved_at,
                               escalated_at, escalation_level)
            SELECT type, severity, 'cleared', subject_kind, subject_id, opened_at {shift}, updated_at {shift},
                   coalesce(cleared_at, opened_at + interval '1 hour') {shift}, acked_by, acked_at {shift},
                   note, details, raised_at {shift}, resolved_by, resolved_at {shift}, escalated_at {shift},
                   escalation_level
            FROM alerts WHERE opened_at >= %(first)s""",
        f"""INSERT INTO alert_events (site, alert_id, at, event, actor, note, alert, published_at)
            SELECT e.site, n.id, e.at {shift}, e.event, e.actor, e.note,
                   e.alert || jsonb_build_object('id', n.id), e.published_at {shift}
            FROM alert_events e JOIN alerts o ON o.id = e.alert_id
            JOIN alerts n ON n.type = o.type AND n.subject_id = o.subject_id AND n.opened_at = o.opened_at {shift}
            WHERE o.opened_at >= %(first)s""",
    ]
    with Progress(console=console) as progress:
        task = progress.add_task(f"days x{days}", total=(days - from_day) * len(steps))
        for d in range(from_day, days):
            for step in steps:
                conn.execute(step.encode(), {"d": d, "first": first[0]})
                progress.advance(task)


# --------------------------------------------------------------------------------------------- measuring


@dataclass
class Timing:
    kind: str  # "panel" or "endpoint"
    group: str  # dashboard uid, or the endpoint's path template
    name: str  # panel title, or the request
    window: str
    ms: list[float]
    rows: int = 0

    def summary(self) -> dict[str, Any]:
        a = np.array(self.ms)
        return {"kind": self.kind, "group": self.group, "name": self.name, "window": self.window,
                "queries": len(a), "p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
                "max_ms": float(a.max()), "rows": self.rows}  # fmt: skip


def _timed(conn: psycopg.Connection[Any], statement: str) -> tuple[float, int]:
    began = time.perf_counter()
    rows = conn.execute(statement.encode()).fetchall()
    return (time.perf_counter() - began) * 1000, len(rows)


def measure_panels(readonly_url: str, end: datetime, runs: int, month: bool) -> list[Timing]:
    boards = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}
    out: list[Timing] = []
    with psycopg.connect(readonly_url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '120s'")

        def options(variable: Any) -> list[str]:
            return [str(r[0]) for r in conn.execute(str(variable["query"]).encode()).fetchall()]

        work = []
        for board in boards.values():
            if month:
                window, rng = "30 days", TimeRange(end - timedelta(days=30), end)
            else:
                default = board["time"]
                window = f"{default['from']} .. {default['to']}"
                rng = TimeRange(parse_time(default["from"], end, TZ), parse_time(default["to"], end, TZ))
            for panel in board["panels"]:
                if panel.get("targets"):
                    own = f"last {panel['timeFrom']} (its own)" if panel.get("timeFrom") and not month else window
                    work.append((board, panel, rng, own))
        with Progress(console=console) as progress:
            task = progress.add_task(f"panels, {'30 days' if month else 'default ranges'}", total=len(work))
            for board, panel, rng, own in work:
                repeats = panel_statements(board, panel, rng, end, TZ, options)
                # A repeated panel (one per room) is as many queries as repeats: each runs once per run, a
                # few runs; any other panel ``runs`` times.
                n = max(1, runs // 5) if len(repeats) > 1 else runs
                timing = Timing("panel", board["uid"], panel["title"], own, [])
                for _ in range(n):
                    for statements in repeats:
                        ms, rows = 0.0, 0
                        for s in statements:  # a panel's targets run one after the other here
                            t, r = _timed(conn, s.sql)
                            ms, rows = ms + t, rows + r
                        timing.ms.append(ms)
                        timing.rows = rows
                out.append(timing)
                progress.advance(task)
    return out


@contextmanager
def api_process(urls: Urls) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "BONDWATCH_DB_URL": urls.db_url, "BONDWATCH_DB_ADMIN_URL": urls.db_admin_url,
           "BONDWATCH_DB_READONLY_URL": urls.db_readonly_url, "BONDWATCH_API_PORT": str(port),
           "BONDWATCH_API_RATE_LIMIT": "false", "BONDWATCH_LOG_LEVEL": "ERROR"}  # fmt: skip
    proc = subprocess.Popen([EXE, "api"], env=env)
    try:
        wait_healthy(port)
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def endpoint_requests(admin_url: str, end: datetime) -> list[tuple[str, str]]:
    """(path template, request) for every GET endpoint, with real ids from the seeded data."""
    with psycopg.connect(admin_url, autocommit=True) as conn:

        def one(q: str) -> str:
            row = conn.execute(q.encode()).fetchone()
            assert row and row[0] is not None, f"the seeded data has nothing for {q}"
            return quote(str(row[0]), safe="")

        vehicle = one("SELECT vehicle_id FROM vehicles WHERE device_id IS NOT NULL ORDER BY vehicle_id LIMIT 1")
        sensor = one("SELECT device_id FROM devices WHERE kind = 'temp' ORDER BY device_id LIMIT 1")
        fence = one("SELECT id FROM geofences ORDER BY id LIMIT 1")
        profile = one("SELECT name FROM profiles ORDER BY name LIMIT 1")
        note = one("SELECT id FROM release_notes ORDER BY valid_from DESC LIMIT 1")
        gate = one("SELECT gate_id FROM gate_passages GROUP BY gate_id ORDER BY count(*) DESC LIMIT 1")
        alert = one("SELECT id FROM alerts ORDER BY opened_at DESC LIMIT 1")
        # The last cargo tag through a gate (each seeded day is a copy, so it was read on every day of the month).
        epc = one(
            "SELECT cargo_epcs[1] FROM gate_passages WHERE cardinality(cargo_epcs) > 0 "
            "ORDER BY first_read_at DESC LIMIT 1"
        )
    day = quote((end - timedelta(days=1)).isoformat(), safe="")
    week = quote((end - timedelta(days=7)).isoformat(), safe="")
    month_ago = quote((end - timedelta(days=30)).isoformat(), safe="")
    to = quote(end.isoformat(), safe="")
    first = end.astimezone(TZ).replace(day=1)
    last_month = (first - timedelta(days=1)).strftime("%Y-%m")
    return [
        ("/health", "/health"),
        ("/geofences", "/geofences"),
        ("/geofences/{fence_id}", f"/geofences/{fence}"),
        ("/devices", "/devices"),
        ("/devices/{device_id}", f"/devices/{sensor}"),
        ("/profiles", "/profiles"),
        ("/profiles/{name}", f"/profiles/{profile}"),
        ("/vehicles", "/vehicles"),
        ("/vehicles/{vehicle_id}", f"/vehicles/{vehicle}"),
        ("/vehicles/{vehicle_id}/track", f"/vehicles/{vehicle}/track?from={day}&to={to}"),
        ("/tags/{epc}", f"/tags/{epc}"),
        ("/release-notes", "/release-notes"),
        ("/release-notes/{note_id}", f"/release-notes/{note}"),
        ("/sensors", "/sensors"),
        ("/sensors/{device_id}/readings", f"/sensors/{sensor}/readings?from={day}&to={to}"),
        ("/sensors/{device_id}/readings", f"/sensors/{sensor}/readings?from={month_ago}&to={to}&bucket=1h"),
        ("/sensors/{device_id}/coldchain", f"/sensors/{sensor}/coldchain?from={week}&to={to}&period=day"),
        ("/sensors/{device_id}/coldchain", f"/sensors/{sensor}/coldchain?from={month_ago}&to={to}&period=month"),
        ("/alerts", "/alerts"),
        ("/alerts", "/alerts?status=active&severity=critical"),
        ("/alerts/{alert_id}", f"/alerts/{alert}"),
        ("/gates", "/gates"),
        ("/gates/{gate_id}/passages", f"/gates/{gate}/passages"),
        ("/gates/{gate_id}/passages", f"/gates/{gate}/passages?decision=hold&since={week}"),
        ("/trace/{epc}", f"/trace/{epc}"),
        ("/trace/{epc}", f"/trace/{epc}?format=epcis"),
        ("/reports/monthly", f"/reports/monthly?month={last_month}&format=json"),
        ("/reports/monthly", f"/reports/monthly?month={last_month}&format=pdf"),
    ]


# Generated on every request (a month in progress is never stored): a batch job's time, measured apart.
def generated_requests(end: datetime) -> list[tuple[str, str]]:
    month = end.astimezone(TZ).strftime("%Y-%m")
    return [("/reports/monthly (month in progress)", f"/reports/monthly?month={month}&format={f}") for f in ("json",)]


def measure_endpoints(urls: Urls, end: datetime, runs: int, reports: bool) -> tuple[list[Timing], list[Timing]]:
    """The read endpoints, and apart the reports generated on each request. The stored month's report is
    generated by its first request (as the scheduled job would have), before the timed ones."""
    requests = endpoint_requests(urls.db_admin_url, end)
    settings = load_settings(DbSettings, db_url=urls.db_admin_url)
    token = create_token(settings, Role.viewer, "bench queries")
    generated = generated_requests(end) if reports else []
    with api_process(urls) as base, httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                                                 timeout=600) as client:  # fmt: skip
        for _, request in requests:
            if request.startswith("/reports/"):
                client.get(request).raise_for_status()
        with Progress(console=console) as progress:
            task = progress.add_task("endpoints", total=len(requests) + len(generated))
            reads = [_time_request(client, t, r, runs, progress, task) for t, r in requests]
            batch = [_time_request(client, t, r, 1, progress, task) for t, r in generated]
    return reads, batch


def _time_request(
    client: httpx.Client, template: str, request: str, runs: int, progress: Progress, task: Any
) -> Timing:
    timing = Timing("endpoint", template, request, "", [])
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(request)
        timing.ms.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {request}: {response.status_code} {response.text[:300]}")
        timing.rows = len(response.content)
    progress.advance(task)
    return timing


def row_counts(admin_url: str) -> dict[str, int]:
    with psycopg.connect(admin_url) as conn:
        return {
            t: int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchall()[0][0])
            for t in ("positions", "temperatures", "rfid_reads", "gate_passages", "alerts")
        }


def _table(title: str, timings: list[Timing], label: Callable[[Timing], str]) -> None:
    console.print(f"[bold]{title}[/]")
    for t in sorted(timings, key=lambda t: -t.summary()["p95_ms"]):
        s = t.summary()
        flag = "" if s["p95_ms"] <= TARGET_MS else "  [red]> 200 ms[/]"
        console.print(f"  p95 {s['p95_ms']:8.1f} ms  p50 {s['p50_ms']:8.1f}  {label(t)}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--trucks", type=int, default=100)
    parser.add_argument("--sensors", type=int, default=300)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--reseed", action="store_true", help="seed again even if the data is there")
    parser.add_argument("--skip", nargs="*", default=[], choices=("panels", "month", "endpoints", "reports"),
                        help="parts not to measure again (their figures stay as the last run wrote them)")  # fmt: skip
    args = parser.parse_args()
    services = LocalServices(load_settings(ServicesSettings))
    services.up()
    base = load_settings(DbSettings)
    spec = Spec(args.days, args.trucks, args.sensors)
    end = None if args.reseed else seeded_end(base, spec)
    began = time.perf_counter()
    if end is None:
        end = seed(base, spec)
    seed_s = time.perf_counter() - began
    urls = Urls.of(base, DB_NAME)
    # The schema of this checkout, and the rollups caught up as `bondwatch serve` keeps them.
    migrate(urls.settings)
    began = time.perf_counter()
    written = roll(urls.settings)
    console.print(f"rollups: {written} rows written in {time.perf_counter() - began:.1f} s")
    counts = row_counts(urls.db_admin_url)
    console.print(f"data: {', '.join(f'{k} {v:,}' for k, v in counts.items())}, ending {end.astimezone(TZ):%F %H:%M}")
    out = load_settings(ServicesSettings).state_dir / "bench" / "queries.json"
    results: dict[str, Any] = json.loads(out.read_text()) if args.skip and out.exists() else {}
    results |= {
        "spec": {"days": spec.days, "trucks": spec.trucks, "sensors": spec.sensors, "runs": args.runs},
        "end": end.isoformat(), "rows": counts, "seed_s": seed_s,
    }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)

    def keep(key: str, timings: list[Timing], title: str, label: Callable[[Timing], str]) -> None:
        """Printed and written as soon as measured: a later failure loses nothing measured before it."""
        _table(title, timings, label)
        results[key] = [t.summary() for t in timings]
        results[f"{key}_measured_at"] = datetime.now(TZ).strftime("%Y-%m-%d %H:%M %Z")
        out.write_text(json.dumps(results, indent=2, ensure_ascii=False))

    if "panels" not in args.skip:
        keep("panels", measure_panels(urls.db_readonly_url, end, args.runs, month=False), "panels, default ranges",
             lambda t: f"{t.group}: {t.name} ({t.window})")  # fmt: skip
    if "month" not in args.skip:
        keep("panels_30d", measure_panels(urls.db_readonly_url, end, max(1, args.runs // 5), month=True),
             "panels, 30 days", lambda t: f"{t.group}: {t.name}")  # fmt: skip
    if "endpoints" not in args.skip:
        endpoints, generated = measure_endpoints(urls, end, args.runs, "reports" not in args.skip)
        keep("endpoints", endpoints, "endpoints", lambda t: t.name)
        if "reports" not in args.skip:
            keep("generated", generated, "reports generated on request", lambda t: t.name)
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
