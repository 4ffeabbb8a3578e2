"""Serving the API with uvicorn, alone (`bondwatch api`) or with ingest and rules (`bondwatch serve`)."""

from __future__ import annotations

import logging

import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from bondwatch.db.retention import RetentionJob
from bondwatch.settings import load_settings

log = logging.getLogger(__name__)


def run_api(settings: ApiSettings, with_ingest: bool) -> None:
    from ingest.service import IngestService
    from ingest.settings import IngestSettings
    from rules.service import RulesService
    from rules.settings import RulesSettings

    ingest = IngestService(load_settings(IngestSettings)) if with_ingest else None
    rules = RulesService(load_settings(RulesSettings)) if with_ingest else None
    retention = RetentionJob(settings) if with_ingest else None
    if ingest is not None and rules is not None and retention is not None:
        ingest.start()
        rules.start()
        retention.start()
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
        if ingest is not None and rules is not None and retention is not None:
            retention.stop()
            rules.stop()
            ingest.stop()
