"""Running ingest: in its own process (`bondwatch ingest`) or inside `bondwatch serve`."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

from bondwatch.foreground import run_until_signalled
from ingest.mqtt import Subscriber, Subscription
from ingest.settings import IngestSettings
from ingest.worker import IngestWorker

log = logging.getLogger(__name__)


class IngestService:
    """One worker: a subscriber plus its writer loop on a thread."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.subscriber = Subscriber(Subscription.for_ingest(settings))
        self.worker = IngestWorker(settings, self.subscriber)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.worker.run, args=(self._stop,), name="ingest", daemon=True)

    def start(self) -> None:
        self.worker.connect()
        self.subscriber.connect()
        self._thread.start()
        log.info("ingest worker %s running for site %s", self.settings.client_id(), self.settings.site)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def run_standalone(settings: IngestSettings, workers: int = 1) -> None:
    """Run ``workers`` worker processes sharing the subscription; this process is worker 1."""
    if workers > 1:
        settings = settings.model_copy(update={"ingest_shared": True})
    children = [
        subprocess.Popen(
            [sys.argv[0], "ingest", "--workers", "1"],
            env={
                **os.environ,
                "BONDWATCH_INGEST_SHARED": "true",
                "BONDWATCH_INGEST_WORKER_INDEX": str(settings.ingest_worker_index + i),
                "BONDWATCH_INGEST_METRICS_PORT": str(settings.ingest_metrics_port + i)
                if settings.ingest_metrics_port
                else "0",
            },
        )
        for i in range(1, workers)
    ]
    run_until_signalled(IngestService(settings), settings.ingest_metrics_port)
    for child in children:
        child.terminate()
    for child in children:
        child.wait(timeout=15)
