"""Fixtures of the dashboard tests: the dashboards, and a database of their own with simulated history.

The history comes from ``simulators.history.seed_history`` (the same models as ``bondwatch simulate site``,
judged by the platform's own rules engine), written into a database made for this session, so that no other
test's data or seeding can collide with it. Panels are then queried as Grafana would, as the read-only login
(``BONDWATCH_DB_READONLY_URL``'s role, a member of bondwatch_reader).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bondwatch.db.migrate import migrate
from bondwatch.db.rollup import roll
from bondwatch.db.settings import DbSettings
from bondwatch.services.manager import LocalServices
from bondwatch.settings import load_settings
from tests.dashboards.support import ROOT, TIMINGS, SeededDb, load_dashboards

DB_NAME = f"bondwatch_dashboards_{os.getpid()}"

# How much history the suite seeds. The simulated fleet and the rules engine cost about 15-40 s per simulated
# day on the 2-core machines (more when they are busy), so the suite seeds 1 day, with readings every 60 s
# as the terminals send them (at 5-minute GPS intervals every truck would raise gps_lost, its limit being
# 120 s, and long straight lines between fixes would cut corridor corners). It ends at the hour before now,
# so "now"-relative panels see data. docs/dashboards.md has query times measured on a seeded month
# (BONDWATCH_DASHBOARD_TEST_DAYS=30).
HISTORY_DAYS = float(os.environ.get("BONDWATCH_DASHBOARD_TEST_DAYS", "1"))
READING_EVERY_S = float(os.environ.get("BONDWATCH_DASHBOARD_TEST_EVERY_S", "60"))
# Working on the dashboards: BONDWATCH_DASHBOARD_TEST_DB=<database> runs the tests on a database seeded
# before (e.g. with `bondwatch simulate history`), instead of seeding one; it is left as it is.
REUSE_DB = os.environ.get("BONDWATCH_DASHBOARD_TEST_DB", "")
SEEDED: list[SeededDb] = []  # for the terminal summary


@pytest.fixture(scope="session")
def dashboards() -> dict[str, dict[str, Any]]:
    return load_dashboards()


@pytest.fixture(scope="session")
def seeded_db(services: LocalServices) -> Iterator[SeededDb]:
    from simulators.history import seed_history

    base = load_settings(DbSettings)
    assert base.db_admin_url and base.db_readonly_url, "services.env has no admin or read-only URL"
    if REUSE_DB:  # a database seeded before (for working on the dashboards); kept as it is
        db = base.on_database(REUSE_DB)
        with psycopg.connect(db.db_admin_url) as conn:
            row = conn.execute("SELECT min(ts), max(ts) FROM positions").fetchone()
        assert row and row[0], f"{REUSE_DB} has no positions"
        yield SeededDb(db.db_url, db.db_admin_url, db.db_readonly_url, row[0], row[1], 0.0, None)
        return
    server = base.on_database("postgres")
    with psycopg.connect(server.db_admin_url, autocommit=True) as conn:
        for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'bondwatch_dashboards_%'"
        ).fetchall():
            if not Path(f"/proc/{name.rsplit('_', 1)[1]}").exists():  # left by a session that died
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    db = base.on_database(DB_NAME)
    migrate(db)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=HISTORY_DAYS)
    began = time.perf_counter()
    summary = seed_history(
        db.db_url, "ordos-czb", start, HISTORY_DAYS, gps_every_s=READING_EVERY_S, temp_every_s=READING_EVERY_S
    )
    seeded = SeededDb(db.db_url, db.db_admin_url, db.db_readonly_url, start, end, time.perf_counter() - began, summary)
    SEEDED.append(seeded)
    # The rollups as `bondwatch serve` keeps them (every minute), so the panels read what they read in production.
    roll(db)
    with psycopg.connect(db.db_admin_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # fresh statistics, as autovacuum would have them on a live database
    yield seeded
    with psycopg.connect(server.db_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


@pytest.fixture(scope="session")
def reader(seeded_db: SeededDb) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """The read-only login Grafana uses, on the seeded database."""
    with psycopg.connect(seeded_db.readonly_url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '30s'")
        yield conn


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Each panel query's time on the seeded history (measured, not asserted)."""
    if not TIMINGS:
        return
    tr = terminalreporter
    tr.section("dashboard panel queries on the seeded history (read-only role)")
    if SEEDED:
        s = SEEDED[0]
        tr.write_line(f"history {s.start:%Y-%m-%d %H:%M} - {s.end:%Y-%m-%d %H:%M} UTC, seeded in {s.seconds:.1f} s")
    for dashboard, panel, window, ms, rows in TIMINGS:
        tr.write_line(f"{ms:8.1f} ms {rows:6d} rows  {window:<14} {dashboard}: {panel}")
    report = ROOT / "var" / "dashboard-query-times.txt"
    if report.parent.exists():
        report.write_text("".join(f"{d}\t{p}\t{w}\t{ms:.1f}\t{r}\n" for d, p, w, ms, r in TIMINGS), encoding="utf-8")
