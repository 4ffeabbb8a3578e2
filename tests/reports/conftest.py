"""Fixtures of the report tests: history seeded by simulators.history around the end of a month, and the report
gathered for that month.

The history runs from 29 March to 1 April (local time), so the March report must cut the month at local midnight
and leave 1 April out, and the step of each counter across midnight must count exactly once. Four days, three
trucks (two battery-electric, one fuel-cell) and readings every 10 minutes keep the seeding to seconds: the seeder
runs the rules engine over every reading, about 5-15 s per simulated day here. The month lies in the past and is
the tests' own: other tests write their rows at the present time, so they never land in it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from bondwatch.settings import load_settings
from reports.monthly import gather
from reports.period import Month
from reports.settings import ReportSettings
from simulators.history import HistorySummary, seed_history
from tests.api.conftest import admin, client, headers, tokens, viewer  # noqa: F401  (fixtures)

MONTH = Month(2025, 3)
SITE = "ordos-czb"  # the settings' default site: the API's and the job's reports are about it
SEED_DAYS_IN_MONTH = 3  # 29-31 March, then 1 April
TRUCKS = 3  # every third truck of the fleet model is a fuel-cell truck
ROOMS = 12
EVERY_S = 600
# Generated on the 25th of the next month, like the scheduled job would.
AFTER = datetime(2025, 4, 25, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="session")
def report_settings(test_env: dict[str, str]) -> ReportSettings:
    return load_settings(ReportSettings, site=SITE)


@pytest.fixture(scope="session")
def seeded(test_env: dict[str, str], report_settings: ReportSettings) -> HistorySummary:
    zone = report_settings.zone
    start = MONTH.end(zone) - timedelta(days=SEED_DAYS_IN_MONTH)
    days = SEED_DAYS_IN_MONTH + 1
    began = time.monotonic()
    summary = seed_history(
        test_env["BONDWATCH_DB_URL"],
        SITE,
        start,
        days,
        trucks=TRUCKS,
        rooms=ROOMS,
        gps_every_s=EVERY_S,
        temp_every_s=EVERY_S,
        seed=716,
        progress=False,
        prefix="rpt-",
    )
    print(f"seeded {days} days in {time.monotonic() - began:.1f} s: {summary}")
    return summary


@pytest.fixture(scope="session")
def month_report(seeded: HistorySummary, report_settings: ReportSettings) -> dict[str, Any]:
    with psycopg.connect(report_settings.db_url) as conn:
        return gather(conn, report_settings, MONTH, AFTER)


@pytest.fixture
def forget_month(db: psycopg.Connection[tuple[Any, ...]]) -> Iterator[None]:
    """No stored report of the seeded month before and after the test (the owner may delete them)."""
    db.execute("DELETE FROM monthly_reports WHERE month = %s", (MONTH.first_day,))
    yield
    db.execute("DELETE FROM monthly_reports WHERE month = %s", (MONTH.first_day,))
