"""`bondwatch edge --config FILE`: drivers -> durable queue -> publisher, until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from prometheus_client import start_http_server

from bondwatch.settings import CommonSettings
from edge.config import EdgeConfig, load_config
from edge.drivers import build_driver
from edge.drivers.base import Driver
from edge.publisher import EdgePublisher
from edge.queue import EdgeQueue

log = logging.getLogger(__name__)


class EdgeAgent:
    def __init__(self, config: EdgeConfig, settings: CommonSettings) -> None:
        self.config = config
        self.queue = EdgeQueue(config.agent.queue_path, config.agent.queue_max_readings, config.agent.queue_policy)
        self.drivers: list[Driver] = [build_driver(d.id, d.driver, d.options(), self.queue) for d in config.devices]
        self.publisher = EdgePublisher(
            settings.mqtt,
            config.agent.gateway_id,
            settings.site,
            self.queue,
            [device for driver in self.drivers for device in driver.device_ids],
            batch_max=config.agent.publish_batch_max,
        )
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=d.run, args=(self._stop,), name=f"driver-{d.device_id}", daemon=True)
            for d in self.drivers
        ]

    def start(self) -> None:
        self.publisher.start()
        for thread in self._threads:
            thread.start()
        log.info("edge agent %s: %d devices, queue %s (%d waiting)", self.config.agent.gateway_id,
                 len(self.drivers), self.config.agent.queue_path, self.queue.depth())  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.publisher.stop()
        self.queue.close()


def run_agent(config_path: Path, settings: CommonSettings) -> None:
    config = load_config(config_path)
    if config.agent.metrics_port:
        start_http_server(config.agent.metrics_port, addr="127.0.0.1")
    agent = EdgeAgent(config, settings)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    agent.start()
    done.wait()
    agent.stop()
