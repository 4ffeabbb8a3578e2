"""``bondwatch report monthly``: the same report as GET /api/v1/reports/monthly, straight from the database."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from bondwatch.settings import load_settings
from reports import FORMATS
from reports.period import BadMonth, Month, previous_month
from reports.settings import ReportSettings
from reports.store import get_report


def monthly_command(month: str | None, fmt: str, out: Path | None) -> None:
    settings = load_settings(ReportSettings)
    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format")
    now = datetime.now(UTC)
    try:
        wanted = Month.parse(month) if month else previous_month(now, settings.zone)
    except BadMonth as exc:
        raise typer.BadParameter(str(exc), param_hint="--month") from None
    if wanted.start(settings.zone) >= now:
        raise typer.BadParameter(f"month {wanted} has not begun", param_hint="--month")
    to_stdout = str(out) == "-" or (out is None and fmt != "pdf")
    if to_stdout and fmt == "pdf" and sys.stdout.isatty():
        raise typer.BadParameter("a PDF is not for the terminal: give a file, or redirect", param_hint="--out")

    report = get_report(settings, wanted, fmt, now, by="cli")
    if to_stdout:
        sys.stdout.buffer.write(report.content)
        sys.stdout.flush()
        target = "standard output"
    else:
        path = out or Path(report.filename)
        path.write_bytes(report.content)
        target = str(path)
    state = "stored report" if report.stored else "generated, not stored (the month is not over)"
    typer.echo(f"{wanted} {fmt}: {len(report.content)} bytes to {target}, sha256 {report.sha256} ({state})", err=True)
