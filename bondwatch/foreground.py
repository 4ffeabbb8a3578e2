"""Running one long-lived service in the foreground: metrics endpoint, start, wait for SIGTERM or SIGINT, stop."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Protocol

from prometheus_client import start_http_server

log = logging.getLogger(__name__)


class Service(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def run_until_signalled(service: Service, metrics_port: int) -> None:
    if metrics_port:
        start_http_server(metrics_port, addr="127.0.0.1")
        log.info("metrics on http://127.0.0.1:%d/metrics", metrics_port)
    done = threading.Event()

    def _terminate(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    service.start()
    done.wait()
    service.stop()
