"""Load mode: N simulated devices publishing contract readings at R messages per second.

bondwatch simulate load --devices 30 --rate 50 --duration 60
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bondwatch.mqtt import make_client
from bondwatch.settings import CommonSettings
from simulators.traffic import TrafficGenerator

log = logging.getLogger(__name__)
KINDS = ("gps", "temp", "rfid")


@dataclass(frozen=True)
class LoadResult:
    published: int
    seconds: float


def run_load(settings: CommonSettings, devices: int, rate: float, duration: float | None, seed: int) -> LoadResult:
    """Publish at ``rate`` msg/s spread over ``devices`` devices; forever when ``duration`` is None."""
    target = settings.mqtt
    client = make_client(target, f"bondwatch-sim-{uuid.uuid4().hex[:8]}")
    client.connect(target.host, target.port)
    client.loop_start()
    gen = TrafficGenerator(settings.site, seed=seed, devices_per_kind=max(1, devices // len(KINDS)), live=True)
    total = int(rate * duration) if duration else None
    sent = 0
    start = time.monotonic()
    with Progress(
        TextColumn("[bold]simulate load[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=total is None,
    ) as progress:
        task = progress.add_task("publish", total=total)
        try:
            while total is None or sent < total:
                due = start + sent / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                message = gen.valid(KINDS[sent % len(KINDS)])
                client.publish(message.topic, message.payload, qos=1)
                sent += 1
                progress.advance(task)
        except KeyboardInterrupt:
            log.info("stopped after %d messages", sent)
    client.disconnect()
    client.loop_stop()
    return LoadResult(sent, time.monotonic() - start)
