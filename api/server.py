"""Serving the API with uvicorn, alone (`bondwatch api`) or with ingest and rules (`bondwatch serve`)."""

from __future__ import annotations

import logging

import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from bondwatch.children import Child
from bondwatch.db.retention import RetentionJob
from bondwatch.settings import load_settings

log = logging.getLogger(__name__)


def run_api(settings: ApiSettings, with_ingest: bool) -> None:
    from reports.job import MonthlyReportJob
    from reports.settings import ReportSettings

    # Ingest and rules run as child processes (bondwatch/children.py): each needs a core of its own.
    children = [Child("ingest"), Child("rules")] if with_ingest else []
    retention = RetentionJob(settings) if with_ingest else None
    # The monthly report is a scheduled job of the whole platform, like retention (not of a bare `bondwatch api`).
    report_job = MonthlyReportJob(load_settings(ReportSettings)) if with_ingest else None
    for child in children:
        child.start()
    if retention is not None:
        retention.start()
    if report_job is not None:
        report_job.start()
    try:
        log.info("API on http://%s:%d/api/v1 (metrics on /metrics)", settings.api_host, settings.api_port)
        uvicorn.run(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_level=settings.log_level.lower(),
            access_log=False,
            timeout_graceful_shutdown=5,  # open alert streams would otherwise hold shutdown forever
        )
    finally:
        if report_job is not None:
            report_job.stop()
        if retention is not None:
            retention.stop()
        for child in children:
            child.stop()
