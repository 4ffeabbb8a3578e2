"""kill -9 of the ingest process in the middle of a stream: after a restart nothing is lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from simulators.traffic import TrafficGenerator
from tests.conftest import Publisher, wait_for
from tests.ingest.test_ingest_stream import TABLES, stored_counts

BONDWATCH = str(Path(sys.executable).with_name("bondwatch"))


def start_ingest(site: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [BONDWATCH, "ingest"],
        env={**os.environ, "BONDWATCH_SITE": site},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_kill_9_midstream_loses_and_doubles_nothing(
    site: str, publisher: Publisher, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    gen = TrafficGenerator(site, seed=9)
    messages = list(gen.stream(20_000, repeat_ratio=0.05, batch_ratio=0.02))
    unique = {k: set() for k in TABLES}  # type: dict[str, set[tuple[str, int]]]
    for m in messages:
        unique[m.kind].update(m.readings)
    expected = {k: len(v) for k, v in unique.items()}

    ingest = start_ingest(site)
    try:
        wait_for(
            lambda: (
                db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (f"bondwatch-ingest-{site}-1",)
                ).fetchone()[0]
                == 1
            ),
            timeout=30,
        )

        def publish_all() -> None:
            for i, m in enumerate(messages):
                publisher.publish(m.topic, m.payload)
                if i % 500 == 499:
                    time.sleep(0.05)  # a steady stream rather than one burst
            publisher.wait_acked()

        sender = threading.Thread(target=publish_all)
        sender.start()
        total = sum(expected.values())
        wait_for(lambda: sum(stored_counts(db, site).values()) >= total // 3, timeout=60)
        ingest.send_signal(signal.SIGKILL)
        ingest.wait(timeout=10)
        killed_at = sum(stored_counts(db, site).values())
        assert killed_at < total, "stream finished before the kill; the test proves nothing"
        time.sleep(1.0)
        ingest = start_ingest(site)
        sender.join(timeout=120)
        wait_for(
            lambda: stored_counts(db, site) == expected,
            timeout=120,
            state=lambda: f"{stored_counts(db, site)} != {expected}",
        )
        time.sleep(1.0)
        assert stored_counts(db, site) == expected
        for kind, table in TABLES.items():
            dup = db.execute(
                f"SELECT count(*) - count(DISTINCT (device_id, seq)) FROM {table} WHERE device_id LIKE %s",
                (f"{site}-%",),
            ).fetchone()[0]
            assert dup == 0, f"{kind}: {dup} readings stored twice"
        dead = db.execute("SELECT count(*) FROM dead_letters WHERE topic LIKE %s", (f"bw/v1/{site}/%",)).fetchone()[0]
        assert dead == 0
    finally:
        ingest.terminate()
        try:
            ingest.wait(timeout=15)
        except subprocess.TimeoutExpired:
            ingest.kill()
