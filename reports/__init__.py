"""Monthly operations reports (月度运行情况通报): figures from the database, rendered as JSON, CSV or PDF.

:mod:`reports.monthly` gathers the figures (one implementation for the API, the command line and the
scheduled job), :mod:`reports.render` turns them into bytes, :mod:`reports.store` keeps issued reports
in ``monthly_reports`` and :mod:`reports.job` issues the previous month on the report day. See docs/reports.md.
"""

from __future__ import annotations

FORMATS = ("json", "csv", "pdf")
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}
