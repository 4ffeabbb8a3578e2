"""Monthly operations report (月度运行情况通报): GET /reports/monthly?month=YYYY-MM&format=json|csv|pdf.

A month that was issued (stored in monthly_reports) is served byte for byte, with its SHA-256; any other month
is generated on request, and kept when it is over. The figures are :func:`reports.monthly.gather`'s, the
same as `bondwatch report monthly` and the scheduled job. See docs/reports.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Viewer
from api.errors import ApiError, Invalid, error_responses
from bondwatch.settings import load_settings
from reports import FORMATS, MEDIA_TYPES
from reports.fonts import FontMissing
from reports.period import BadMonth, Month, previous_month
from reports.settings import ReportSettings
from reports.store import get_report

router = APIRouter(prefix="/reports", tags=["reports"], responses=error_responses(401))


class Unavailable(ApiError):
    status = 503


def _settings(request: Request) -> ReportSettings:
    """The report's settings (BONDWATCH_REPORT_*) on the app's own database and site, loaded once."""
    cached: ReportSettings | None = getattr(request.app.state, "report_settings", None)
    if cached is None:
        api = request.app.state.settings
        cached = load_settings(ReportSettings, db_url=api.db_url, site=api.site)
        request.app.state.report_settings = cached
    return cached


@router.get(
    "/monthly",
    responses={
        200: {"content": {"application/json": {}, "text/csv": {}, "application/pdf": {}}},
        **error_responses(503),
    },
)
async def monthly(
    who: Viewer,
    request: Request,
    month: Annotated[
        str | None, Query(description="YYYY-MM, a local month (Asia/Shanghai); default: the previous month")
    ] = None,
    fmt: Annotated[str, Query(alias="format", description="json, csv or pdf")] = "json",
) -> Response:
    settings = _settings(request)
    if fmt not in FORMATS:
        raise Invalid(f"format {fmt!r} must be json, csv or pdf")
    now = datetime.now(UTC)
    try:
        wanted = Month.parse(month) if month is not None else previous_month(now, settings.zone)
    except BadMonth as exc:
        raise Invalid(str(exc)) from None
    if wanted.start(settings.zone) >= now:
        raise Invalid(f"month {wanted} has not begun")
    try:
        # Gathering and rendering block (database, matplotlib, ReportLab): off the event loop.
        report = await run_in_threadpool(get_report, settings, wanted, fmt, now)
    except FontMissing as exc:
        raise Unavailable(str(exc)) from None
    disposition = "inline" if fmt == "pdf" else "attachment"
    headers = {
        "ETag": f'"{report.sha256}"',
        "X-Report-SHA256": report.sha256,
        "X-Report-Month": str(report.month),
        "X-Report-Generated-At": report.generated_at.astimezone(settings.zone).isoformat(),
        "X-Report-Stored": "true" if report.stored else "false",
    }
    if fmt != "json":
        headers["Content-Disposition"] = f'{disposition}; filename="{report.filename}"'
    return Response(report.content, media_type=MEDIA_TYPES[fmt], headers=headers)
