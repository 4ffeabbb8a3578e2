"""Serving the API with uvicorn, alone (`bondwatch api`) or with ingest and rules (`bondwatch serve`)."""

from __future__ import annotations

import logging

import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from bondwatch.children import Child
from bondwatch.db.retention import RetentionJob
from bondwatch.db.rollup import RollupJob
from bondwatch.jobs import PeriodicJob
from bondwatch.settings import load_settings

log = logging.getLogger(__name__)


def run_api(settings: ApiSettings, with_ingest: bool) -> None:
    from reports.job import MonthlyReportJob
    from reports.settings import ReportSettings

    # Ingest and rules run as child processes (bondwatch/children.py): each needs a core of its own.
    children = [Child("ingest"), Child("rules")] if with_ingest else []
    # Retention, the cold-chain rollup and the monthly report are scheduled jobs of the whole platform (not of a
    # bare `bondwatch api`).
    jobs: list[PeriodicJob] = (
        [RetentionJob(settings), RollupJob(settings), MonthlyReportJob(load_settings(ReportSettings))]
        if with_ingest
        else []
    )
    for child in children:
        child.start()
    for job in jobs:
        job.start()
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
        for job in jobs:
            job.stop()
        for child in children:
            child.stop()
