"""Alerts survive restarts of `bondwatch serve`: no duplicate, no lost open alert, no lost pending condition.

Every scenario judged on the readings' ts is played as a backlog in three parts against a real `bondwatch serve`
process: the readings before its first alert is due (conditions pending), kill -9; the readings up to just after
it opened, published while the platform is down (the broker queues them for its persistent sessions); a normal
stop (SIGTERM) and start; the rest, and then every reading once more (a replaying edge agent). The outcome must
be exactly what the scenario expects, as if nothing had happened.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from simulators.scenario import RunSummary, ScheduledMessage, apply_registry, load_scenario
from tests.conftest import Publisher, wait_for
from tests.rules.conftest import Outbox
from tests.rules.test_scenarios_backlog import (
    TS_JUDGED,
    alert_rows,
    check_api,
    check_decisions,
    check_expectations,
    subjects_of,
)

BONDWATCH = Path(sys.executable).parent / "bondwatch"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    def __init__(self, site: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "BONDWATCH_SITE": site,
            "BONDWATCH_API_PORT": str(self.port),
            "BONDWATCH_RULES_STARTUP_GRACE_S": "1",
            "BONDWATCH_LOG_LEVEL": "WARNING",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([str(BONDWATCH), "serve"], env=self.env)

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/api/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=60)

    def stop(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def serve(site: str, test_env: dict[str, str]) -> Iterator[Serve]:
    s = Serve(site)
    s.start()
    yield s
    if s.proc is not None:
        s.stop(signal.SIGTERM)


def test_alerts_survive_restarts(
    site: str, serve: Serve, outbox: Outbox, api: TestClient, publisher: Publisher, db: psycopg.Connection[Any]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    parts: list[list[ScheduledMessage]] = [[], [], []]
    runs = []
    for i, path in enumerate(TS_JUDGED):
        s = load_scenario(path, prefix=f"{site}-{i}-")
        base = now - timedelta(seconds=s.duration_s)
        summary = RunSummary(s.name, "backlog", base, apply_registry(s, api, base))
        first = min(e.opens_after_s for e in s.expect)
        opened = max(e.opens_after_s + e.within_s for e in s.expect if e.opens_after_s == first)
        for m in s.messages(base, site):
            parts[0 if m.at_s < first else 1 if m.at_s <= opened else 2].append(m)
        runs.append((s, summary))

    def publish(messages: list[ScheduledMessage]) -> None:
        for m in messages:
            publisher.publish(m.topic, m.payload)
        publisher.wait_acked()

    publish(parts[0])
    wait_for(lambda: _stored(db) >= len(parts[0]), timeout=30)
    serve.stop(signal.SIGKILL)
    publish(parts[1])  # queued by the broker for the platform's persistent sessions
    serve.start()
    opened_first = sum(
        1 for s, _ in runs for e in s.expect if e.opens_after_s == min(x.opens_after_s for x in s.expect)
    )
    wait_for(lambda: len(_open_rows(db, runs)) >= opened_first, timeout=30, state=lambda: str(_open_rows(db, runs)))
    serve.stop(signal.SIGTERM)
    serve.start()
    publish(parts[2])
    publish([m for part in parts for m in part])  # the same readings once more: repeats change nothing

    def settled() -> bool:
        return all(_settled(db, s, outbox) for s, _ in runs)

    wait_for(settled, timeout=60, state=lambda: str(_open_rows(db, runs)))
    for s, summary in runs:
        check_expectations(s, summary, alert_rows(db, subjects_of(s)), outbox)
        check_decisions(s, outbox)
        check_api(api, alert_rows(db, subjects_of(s)))


def _stored(db: psycopg.Connection[Any]) -> int:
    row = db.execute(
        "SELECT (SELECT count(*) FROM positions) + (SELECT count(*) FROM temperatures) "
        "+ (SELECT count(*) FROM rfid_reads)"
    ).fetchone()
    return int(row[0]) if row else 0


def _open_rows(db: psycopg.Connection[Any], runs: list[Any]) -> list[tuple[str, str]]:
    subjects = set().union(*(subjects_of(s) for s, _ in runs))
    return [(r["type"], r["subject_id"]) for r in alert_rows(db, subjects)]


def _settled(db: psycopg.Connection[Any], s: Any, outbox: Outbox) -> bool:
    rows = alert_rows(db, subjects_of(s))
    for e in s.expect:
        mine = [r for r in rows if (r["type"], r["subject_id"]) == (e.type, e.subject_id)]
        if not mine or (e.clears_after_s is not None and mine[-1]["status"] != "cleared"):
            return False
        if len(outbox.alerts(e.subject_id, e.type)) < (2 if e.clears_after_s is not None else 1):
            return False
    return len([d for d in outbox.decisions() if d.body["vehicle_id"] in subjects_of(s)]) >= len(s.decisions)
