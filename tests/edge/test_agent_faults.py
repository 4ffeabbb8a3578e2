"""Edge agent under faults: a 60 s broker outage in a 5-minute run of 50 devices, and kill -9 of the agent.

Afterwards every reading the agent queued is in the database exactly once: per device the stored
seqs are exactly 0..n-1 (a gap would be a lost reading, a repeat a reused seq).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bondwatch.services.manager import LocalServices
from bondwatch.settings import CommonSettings
from edge.agent import EdgeAgent
from edge.config import load_config
from edge.readings import Position
from ingest.service import IngestService
from simulators.devices.gnss_terminal import GnssTerminal
from tests.conftest import wait_for

RUN_S = float(os.environ.get("BONDWATCH_TEST_OUTAGE_RUN_S", "300"))
OUTAGE_S = float(os.environ.get("BONDWATCH_TEST_OUTAGE_S", "60"))
BONDWATCH = str(Path(sys.executable).with_name("bondwatch"))


def moving(index: int) -> Any:
    def fix(now: datetime) -> Position:
        return Position(now, 39.45 + index * 0.001, 109.70 + (now.timestamp() % 3600) * 1e-5, "3d",
                        speed_kmh=40.0, heading_deg=90.0, hdop=0.9, sats=12, soc_pct=60.0)  # fmt: skip

    return fix


def write_config(path: Path, site: str, terminals: list[GnssTerminal]) -> Path:
    lines = [f'[agent]\ngateway_id = "{site}-gw"\nqueue_path = "queue.db"\n']
    for i, terminal in enumerate(terminals):
        lines.append(f'[[devices]]\nid = "{site}-trk-{i:02d}"\ndriver = "nmea_serial"\nport = "{terminal.path}"\n')
    path.write_text("\n".join(lines))
    return path


def stored_seqs(db: psycopg.Connection[Any], site: str) -> dict[str, list[int]]:
    rows = db.execute(
        "SELECT device_id, array_agg(seq ORDER BY seq) FROM positions WHERE device_id LIKE %s GROUP BY 1",
        (f"{site}-trk-%",),
    ).fetchall()
    return {device: list(seqs) for device, seqs in rows}


def assert_exactly_once(seqs: dict[str, list[int]], devices: int) -> int:
    assert len(seqs) == devices
    for device, got in seqs.items():
        assert got == list(range(len(got))), f"{device}: seqs are not exactly 0..{len(got) - 1}"
    return sum(len(v) for v in seqs.values())


@pytest.mark.slow
def test_broker_outage_of_60s_in_a_5_minute_run_of_50_devices(
    site: str, ingest: IngestService, services: LocalServices, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    terminals = [GnssTerminal(moving(i)).start() for i in range(50)]
    agent = EdgeAgent(load_config(write_config(tmp_path / "edge.toml", site, terminals)), CommonSettings(site=site))
    agent.start()
    try:
        time.sleep((RUN_S - OUTAGE_S) / 2)
        services.mosquitto.stop()
        time.sleep(OUTAGE_S)
        queued_during_outage = agent.queue.depth()
        services.mosquitto.start(load_secrets(services))
        time.sleep((RUN_S - OUTAGE_S) / 2)
    finally:
        for terminal in terminals:
            terminal.stop()
        time.sleep(2)  # the drivers decode the last bytes
        expected = {d.device_id: agent.queue.next_seq(d.device_id) for d in agent.drivers}

        def state() -> str:
            stored = sum(len(v) for v in stored_seqs(db, site).values())
            return (
                f"queue depth {agent.queue.depth()}, publisher connected {agent.publisher.connected}, "
                f"ingest connected {ingest.subscriber.is_connected()}, stored {stored} of {sum(expected.values())}"
            )

        try:
            wait_for(lambda: agent.queue.depth() == 0, timeout=120, state=state)
        finally:
            agent.stop()
    assert queued_during_outage >= 50 * OUTAGE_S * 0.5  # the agent kept readings while the broker was away
    wait_for(lambda: sum(len(v) for v in stored_seqs(db, site).values()) >= sum(expected.values()), 120, state)
    time.sleep(1)
    seqs = stored_seqs(db, site)
    assert_exactly_once(seqs, 50)
    assert {d: len(v) for d, v in seqs.items()} == expected


def load_secrets(services: LocalServices) -> Any:
    from bondwatch.services.secrets import load_or_create

    return load_or_create(services.settings)


def test_kill_9_of_the_agent_loses_nothing_and_reuses_no_seq(
    site: str, ingest: IngestService, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    terminals = [GnssTerminal(moving(i)).start() for i in range(5)]
    config = write_config(tmp_path / "edge.toml", site, terminals)
    env = {**os.environ, "BONDWATCH_SITE": site}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([BONDWATCH, "edge", "--config", str(config)], env=env, stderr=subprocess.DEVNULL)

    agent = start()
    try:
        wait_for(lambda: sum(len(v) for v in stored_seqs(db, site).values()) >= 20, timeout=30)
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=10)
        before = stored_seqs(db, site)
        time.sleep(2)
        agent = start()
        wait_for(lambda: all(len(v) > len(before.get(d, [])) + 5 for d, v in stored_seqs(db, site).items()), timeout=30)
    finally:
        for terminal in terminals:
            terminal.stop()
        time.sleep(2)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
    # after a clean stop the queue is drained: every seq the agent ever assigned is stored, once
    agent_queue = load_config(config).agent.queue_path
    from edge.queue import EdgeQueue

    queue = EdgeQueue(agent_queue)
    try:
        wait_for(lambda: queue.depth() == 0, timeout=30)
        expected = {f"{site}-trk-{i:02d}": queue.next_seq(f"{site}-trk-{i:02d}") for i in range(5)}
    finally:
        queue.close()
    wait_for(lambda: {d: len(v) for d, v in stored_seqs(db, site).items()} == expected, timeout=60)
    assert_exactly_once(stored_seqs(db, site), 5)
