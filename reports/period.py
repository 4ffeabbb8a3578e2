"""Report months: ``YYYY-MM`` cut at local midnight (Asia/Shanghai), and when each month's report is due."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class BadMonth(ValueError):
    """A month that is not ``YYYY-MM``, or that has not begun."""


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = MONTH_RE.match(text)
        if not match:
            raise BadMonth(f"month {text!r} must be YYYY-MM, e.g. 2026-10")
        year = int(match[1])
        if year < 2000:
            raise BadMonth(f"month {text!r} is before 2000")
        return cls(year, int(match[2]))

    @classmethod
    def of(cls, moment: datetime, zone: ZoneInfo) -> Month:
        local = moment.astimezone(zone)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def shift(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def start(self, zone: ZoneInfo) -> datetime:
        """Local midnight on the 1st (自然月), as an aware datetime in ``zone``."""
        return datetime(self.year, self.month, 1, tzinfo=zone)

    def end(self, zone: ZoneInfo) -> datetime:
        return self.shift(1).start(zone)

    def days(self) -> list[date]:
        first, nxt = self.first_day, self.shift(1).first_day
        return [first + timedelta(days=i) for i in range((nxt - first).days)]


def previous_month(now: datetime, zone: ZoneInfo) -> Month:
    """The month before the local month of ``now``: the default report."""
    return Month.of(now, zone).shift(-1)


def due_at(month: Month, day: int, hour: int, zone: ZoneInfo) -> datetime:
    """When ``month``'s report is due: ``day`` of the next month at ``hour`` local time."""
    nxt = month.shift(1)
    return datetime(nxt.year, nxt.month, day, hour, tzinfo=zone)


def latest_due(now: datetime, day: int, hour: int, zone: ZoneInfo) -> Month:
    """The most recent month whose report is due at ``now``: the previous month once this month's report
    day and hour have come, the one before it until then."""
    last = previous_month(now, zone)
    if now.astimezone(UTC) >= due_at(last, day, hour, zone).astimezone(UTC):
        return last
    return last.shift(-1)
