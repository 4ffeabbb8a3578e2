"""The scheduled report: inside ``bondwatch serve``, every few minutes, issue the previous month's report once
its day has come (BONDWATCH_REPORT_DAY, the 25th, from BONDWATCH_REPORT_HOUR local time).

What is due is decided from ``monthly_reports``, not from memory: a restart, a second ``serve`` or a check
that runs twice issues nothing twice (the table's unique key settles a race). The job issues the most recent
due month only; an older month that was never issued is generated on request (GET /reports/monthly).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from bondwatch.errors import BondWatchError
from reports.period import Month, latest_due
from reports.settings import ReportSettings
from reports.store import issue

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MonthlyReportJob:
    """Like :class:`bondwatch.db.retention.RetentionJob`: a daemon thread; :meth:`check` does one round."""

    def __init__(self, settings: ReportSettings, clock: Clock = _utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monthly-report", daemon=True)

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
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            try:
                self.check()
            except (psycopg.Error, BondWatchError, ValueError, OSError) as exc:  # the next round tries again
                log.error("monthly report job failed: %s", exc)
            if self._stop.wait(self.settings.report_check_every_s):
                return
