"""Load mode: N simulated devices publishing contract readings at R messages per second.

bondwatch simulate load --devices 30 --rate 50 --duration 60             straight to MQTT
bondwatch simulate load --devices 30 --rate 50 --duration 60 --via-edge  NMEA on ptys -> edge agent
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bondwatch.mqtt import make_client
from bondwatch.settings import CommonSettings
from edge.readings import Position
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


def run_load_via_edge(
    settings: CommonSettings, devices: int, rate: float, duration: float | None, workdir: Path
) -> LoadResult:
    """The same load through the production path: GNSS terminals on ptys read by one edge agent."""
    from edge.agent import EdgeAgent
    from edge.config import EdgeConfig
    from simulators.devices.gnss_terminal import GnssTerminal

    period = devices / rate

    def moving(index: int) -> Callable[[datetime], Position]:
        def fix(now: datetime) -> Position:
            east = (now.timestamp() % 3600) * 1e-5
            return Position(now, 39.45 + index * 1e-3, 109.70 + east, "3d", speed_kmh=40.0, soc_pct=70.0)

        return fix

    terminals = [GnssTerminal(moving(i), period_s=period).start() for i in range(devices)]
    gateway = f"gw-load-{uuid.uuid4().hex[:6]}"
    config = EdgeConfig.model_validate({
        "agent": {"gateway_id": gateway, "queue_path": workdir / f"{gateway}.db"},
        "devices": [{"id": f"load-{gateway[-6:]}-{i:04d}", "driver": "nmea_serial", "port": t.path}
                    for i, t in enumerate(terminals)],
    })  # fmt: skip
    workdir.mkdir(parents=True, exist_ok=True)
    agent = EdgeAgent(config, settings)
    agent.start()
    start = time.monotonic()
    try:
        while duration is None or time.monotonic() - start < duration:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for terminal in terminals:
            terminal.stop()
        agent.stop()
    published = sum(d.readings for d in agent.drivers)
    return LoadResult(published, time.monotonic() - start)
