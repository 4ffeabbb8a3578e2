"""The scheduled report: due on the report day, issued once, kept as issued, served byte for byte."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from bondwatch.db.settings import DbSettings
from bondwatch.settings import load_settings
from reports.job import MonthlyReportJob
from reports.period import Month, due_at, latest_due, previous_month
from reports.settings import ReportSettings
from simulators.history import HistorySummary
from tests.api.conftest import Api
from tests.reports.conftest import MONTH

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (_local(2026, 11, 25, 8, 0), "2026-10"),  # the report day at the report hour
        (_local(2026, 11, 25, 7, 59), "2026-09"),  # a minute early: still the month before
        (_local(2026, 11, 24, 23, 0), "2026-09"),
        (_local(2026, 12, 24, 0, 0), "2026-10"),  # until the next report day, October stays the latest
        (_local(2027, 1, 25, 8, 0), "2026-12"),  # across the new year
        (_local(2027, 1, 1, 0, 30), "2026-11"),
        (datetime(2026, 11, 25, 0, 0, tzinfo=UTC), "2026-10"),  # 08:00 in Shanghai is 00:00 UTC
        (datetime(2026, 11, 24, 23, 59, tzinfo=UTC), "2026-09"),
    ],
)
def test_which_month_is_due(now: datetime, due: str) -> None:
    assert str(latest_due(now, 25, 8, SHANGHAI)) == due


def test_month_arithmetic() -> None:
    assert str(Month(2026, 1).shift(-1)) == "2025-12"
    assert str(previous_month(_local(2026, 3, 1, 0, 0), SHANGHAI)) == "2026-02"
    # Local midnight: 2026-03-01 00:30 in Shanghai is still February in UTC; months are cut locally.
    assert str(previous_month(datetime(2026, 2, 28, 16, 30, tzinfo=UTC), SHANGHAI)) == "2026-02"
    assert due_at(Month(2026, 12), 25, 8, SHANGHAI) == _local(2027, 1, 25, 8, 0)
    assert len(Month(2024, 2).days()) == 29


def _stored(db: psycopg.Connection[tuple[Any, ...]]) -> dict[str, tuple[bytes, str, datetime, str]]:
    rows = db.execute(
        "SELECT format, content, sha256, generated_at, stored_by FROM monthly_reports WHERE month = %s",
        (MONTH.first_day,),
    ).fetchall()
    return {fmt: (bytes(content), sha, at, by) for fmt, content, sha, at, by in rows}


def test_job_issues_the_due_month_once_keeps_it_and_the_api_serves_it(
    seeded: HistorySummary,
    report_settings: ReportSettings,
    db: psycopg.Connection[tuple[Any, ...]],
    viewer: Api,
    forget_month: None,
) -> None:
    due = due_at(MONTH, report_settings.report_day, report_settings.report_hour, report_settings.zone)
    clock = [due.replace(minute=due.minute + 3)]
    job = MonthlyReportJob(report_settings, clock=lambda: clock[0])
    assert job.due() == MONTH

    assert sorted(job.check()) == ["csv", "json", "pdf"]
    stored = _stored(db)
    assert set(stored) == {"json", "csv", "pdf"}
    for content, sha, generated_at, by in stored.values():
        assert hashlib.sha256(content).hexdigest() == sha
        assert generated_at == clock[0]  # the job's (fake) clock, not the machine's
        assert by == "job"
    assert stored["pdf"][0].startswith(b"%PDF-")

    # A second round, and a restarted job (no memory of the first): nothing more.
    clock[0] = clock[0].replace(minute=clock[0].minute + 5)
    assert job.check() == []
    assert MonthlyReportJob(report_settings, clock=lambda: clock[0]).check() == []
    assert _stored(db) == stored

    # The API serves the stored bytes, whatever it would generate now.
    for fmt in ("pdf", "json", "csv"):
        resp = viewer.get(f"/reports/monthly?month={MONTH}&format={fmt}")
        assert resp.status_code == 200, resp.text
        assert resp.content == stored[fmt][0]
        assert resp.headers["x-report-sha256"] == stored[fmt][1]
        assert resp.headers["x-report-stored"] == "true"
        assert hashlib.sha256(resp.content).hexdigest() == stored[fmt][1]

    # The services' role may add a report but not rewrite or remove one.
    with psycopg.connect(report_settings.db_url, autocommit=True) as conn:
        for statement in (
            "UPDATE monthly_reports SET content = 'x', sha256 = encode(sha256('x'), 'hex') WHERE month = %s",
            "DELETE FROM monthly_reports WHERE month = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement, (MONTH.first_day,))
    assert _stored(db) == stored
    # The reader role (Grafana) reads them and writes nothing.
    readonly = load_settings(DbSettings).db_readonly_url
    assert readonly
    with psycopg.connect(readonly, autocommit=True) as conn:
        assert (
            len(conn.execute("SELECT sha256 FROM monthly_reports WHERE month = %s", (MONTH.first_day,)).fetchall()) == 3
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO monthly_reports (month, format, site, generated_at, content, sha256) "
                "VALUES ('2019-01-01', 'json', 'x', now(), 'x', encode(sha256('x'), 'hex'))"
            )


def test_a_month_without_data_is_not_issued(
    report_settings: ReportSettings, db: psycopg.Connection[tuple[Any, ...]], viewer: Api
) -> None:
    """Nothing was running in January 2020: the job issues nothing (and looks again next time), and a request
    gets a generated report that is not kept, so data loaded later still makes it into the month's report."""
    job = MonthlyReportJob(report_settings, clock=lambda: _local(2020, 2, 25, 9, 0))
    assert job.due() == Month(2020, 1)
    assert job.check() == []
    resp = viewer.get("/reports/monthly?month=2020-01&format=json")
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-report-stored"] == "false"
    assert db.execute("SELECT 1 FROM monthly_reports WHERE month = '2020-01-01'").fetchone() is None


def test_job_thread_starts_and_stops(
    seeded: HistorySummary,
    report_settings: ReportSettings,
    db: psycopg.Connection[tuple[Any, ...]],
    forget_month: None,
) -> None:
    """The job inside `bondwatch serve`: a daemon thread that checks at once, then waits; stop() ends it."""
    now = due_at(MONTH, 25, 8, report_settings.zone) + timedelta(minutes=10)
    job = MonthlyReportJob(report_settings.model_copy(update={"report_check_every_s": 3600}), clock=lambda: now)
    job.start()
    try:
        deadline = time.monotonic() + 90  # a PDF takes seconds, more on a busy machine
        while len(_stored(db)) < 3:
            assert time.monotonic() < deadline, "the job thread did not issue the month"
            time.sleep(0.1)
    finally:
        job.stop()
    job._thread.join(timeout=5)
    assert not job._thread.is_alive()
