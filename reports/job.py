"""The scheduled report: inside ``bondwatch serve``, every few minutes, issue the previous month's report once
its day has come (BONDWATCH_REPORT_DAY, the 25th, from BONDWATCH_REPORT_HOUR local time).

What is due is decided from ``monthly_reports``, not from memory: a restart, a second ``serve`` or a check
that runs twice issues nothing twice (the table's unique key settles a race). The job issues the most recent
due month only; an older month that was never issued is generated on request (GET /reports/monthly).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from bondwatch.errors import BondWatchError
from bondwatch.jobs import PeriodicJob
from reports.period import Month, latest_due
from reports.settings import ReportSettings
from reports.store import issue

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MonthlyReportJob(PeriodicJob):
    """Every ``report_check_every_s``: :meth:`check` issues what is due."""

    name = "monthly-report"
    expected_errors = (psycopg.Error, BondWatchError, ValueError, OSError)

    def __init__(self, settings: ReportSettings, clock: Clock = _utc_now) -> None:
        super().__init__(settings.report_check_every_s)
        self.settings = settings
        self.clock = clock

    def due(self, now: datetime | None = None) -> Month:
        s = self.settings
        return latest_due(now or self.clock(), s.report_day, s.report_hour, s.zone)

    def check(self, now: datetime | None = None) -> list[str]:
        """Issue what is due at ``now`` (default: the clock) and not stored; returns the formats issued."""
        now = now or self.clock()
        month = self.due(now)
        issued = issue(self.settings, month, now, by="job")
        if issued:
            log.info("monthly report %s issued (%s)", month, ", ".join(issued))
        return issued

    def start(self) -> None:
        s = self.settings
        log.info(
            "monthly report: the previous month on day %d from %02d:00 %s, checked every %.0f s",
            s.report_day, s.report_hour, s.report_timezone, s.report_check_every_s,
        )  # fmt: skip
        super().start()

    def round(self) -> None:
        self.check()
