"""Issued reports in ``monthly_reports``: a stored month is served byte for byte; a month that is not stored is
generated, and kept if it is complete (over), so that every later request gets the same document."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from reports import FORMATS
from reports.monthly import gather
from reports.period import Month
from reports.render import render
from reports.settings import ReportSettings

log = logging.getLogger(__name__)

SELECT = "SELECT content, sha256, generated_at FROM monthly_reports WHERE month = %s AND format = %s"
# DO NOTHING: when two requests (or a request and the job) generate the same month at once, the first one
# stored is the report; the other one serves that instead of its own bytes.
INSERT = (
    "INSERT INTO monthly_reports (month, format, site, generated_at, content, sha256, stored_by) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (month, format) DO NOTHING"
)


def has_data(report: dict[str, Any]) -> bool:
    """Whether the month has anything at all: a reading, an alert or a gate passage. A month without any is
    not kept: the platform was not running, or its data has not been loaded yet (a restored database, a
    history seeded later), and a stored empty report would stay empty for good."""
    return (
        any(d["readings"] for d in report["devices"]["devices"])
        or report["alerts"]["total"]["opened"] > 0
        or report["gates"]["totals"]["inbound"] + report["gates"]["totals"]["outbound"] > 0
    )


@dataclass(frozen=True)
class Report:
    month: Month
    format: str
    content: bytes
    sha256: str
    generated_at: datetime
    stored: bool  # kept in monthly_reports (served from there from now on)

    @property
    def filename(self) -> str:
        return f"bondwatch-monthly-report-{self.month}.{self.format}"


def _fetch(conn: psycopg.Connection[Any], month: Month, fmt: str) -> Report | None:
    row = conn.execute(SELECT, (month.first_day, fmt)).fetchone()
    if row is None:
        return None
    return Report(month, fmt, bytes(row[0]), str(row[1]), row[2], stored=True)


def _gather(conn: psycopg.Connection[Any], settings: ReportSettings, month: Month, now: datetime) -> dict[str, Any]:
    # One snapshot for every figure: readings that land while the report is gathered cannot make two of
    # its tables disagree.
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return gather(conn, settings, month, now)


def _keep(
    conn: psycopg.Connection[Any], settings: ReportSettings, month: Month, fmt: str, content: bytes,
    generated_at: datetime, by: str,
) -> Report:  # fmt: skip
    digest = hashlib.sha256(content).hexdigest()
    with conn.transaction():
        conn.execute(INSERT, (month.first_day, fmt, settings.site, generated_at, content, digest, by))
    stored = _fetch(conn, month, fmt)
    assert stored is not None  # just inserted, or inserted by whoever won the race
    return stored


def get_report(
    settings: ReportSettings, month: Month, fmt: str, now: datetime | None = None, by: str = "request"
) -> Report:
    """The stored report of ``month`` in ``fmt``, or a new one (stored when the month is over and has data)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} must be one of {', '.join(FORMATS)}")
    now = now or datetime.now(UTC)
    with psycopg.connect(settings.db_url, autocommit=True, application_name="bondwatch-reports") as conn:
        stored = _fetch(conn, month, fmt)
        if stored is not None:
            return stored
        report = _gather(conn, settings, month, now)
        content = render(report, fmt, settings.report_font)
        generated_at = datetime.fromisoformat(report["generated_at"])
        if report["period"]["complete"] and has_data(report):
            return _keep(conn, settings, month, fmt, content, generated_at, by)
        return Report(month, fmt, content, hashlib.sha256(content).hexdigest(), generated_at, stored=False)


def issue(settings: ReportSettings, month: Month, now: datetime, by: str = "job") -> list[str]:
    """Store every format of a complete ``month`` that is not stored yet, from one gathering of the figures
    (so the PDF, CSV and JSON issued together agree); returns the formats stored now."""
    with psycopg.connect(settings.db_url, autocommit=True, application_name="bondwatch-reports") as conn:
        missing = [fmt for fmt in FORMATS if _fetch(conn, month, fmt) is None]
        if not missing:
            return []
        report = _gather(conn, settings, month, now)
        if not report["period"]["complete"]:
            raise ValueError(f"month {month} is not over at {now.isoformat()}: nothing to issue")
        if not has_data(report):
            log.info("monthly report %s: no data in the month, not issued (checked again later)", month)
            return []
        generated_at = datetime.fromisoformat(report["generated_at"])
        done = []
        for fmt in missing:
            kept = _keep(conn, settings, month, fmt, render(report, fmt, settings.report_font), generated_at, by)
            if kept.generated_at == generated_at:
                done.append(fmt)
        return done
