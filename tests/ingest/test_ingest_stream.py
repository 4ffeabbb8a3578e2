"""Contract traffic through the real broker into the real database, and every defect dead-lettered."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from ingest.service import IngestService
from simulators.traffic import Message, TrafficGenerator
from tests.conftest import Publisher, wait_for

TABLES = {"gps": "positions", "temp": "temperatures", "rfid": "rfid_reads"}


def stored_counts(db: psycopg.Connection[tuple[Any, ...]], site: str) -> dict[str, int]:
    return {
        kind: db.execute(f"SELECT count(*) FROM {table} WHERE device_id LIKE %s", (f"{site}-%",)).fetchone()[0]
        for kind, table in TABLES.items()
    }


def dead_letters(db: psycopg.Connection[tuple[Any, ...]], site: str) -> list[tuple[str, bytes, str]]:
    return db.execute(
        "SELECT topic, payload, reason FROM dead_letters WHERE topic LIKE %s ORDER BY id", (f"bw/v1/{site}/%",)
    ).fetchall()


def test_ten_thousand_messages_with_repeats_batches_and_malformed(
    site: str, ingest: IngestService, publisher: Publisher, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    gen = TrafficGenerator(site)
    valid = list(gen.stream(10_000, repeat_ratio=0.05, batch_ratio=0.02))
    bad = list(gen.malformed(200))
    messages: list[Message] = valid + bad
    gen.rng.shuffle(messages)

    unique: dict[str, set[tuple[str, int]]] = {k: set() for k in TABLES}
    for m in valid:
        unique[m.kind].update(m.readings)
    assert sum(m.readings != () and len(m.readings) > 1 for m in valid) >= 100  # batches present
    assert len(valid) - len({id(m) for m in valid}) >= 400  # repeats present (same object sent twice)

    for m in messages:
        publisher.publish(m.topic, m.payload)
    publisher.wait_acked()

    expected = {k: len(v) for k, v in unique.items()}
    wait_for(lambda: stored_counts(db, site) == expected and len(dead_letters(db, site)) >= len(bad))
    time.sleep(1.0)  # anything extra would show up now
    assert stored_counts(db, site) == expected

    letters = dead_letters(db, site)
    assert len(letters) == len(bad)
    by_payload = {(topic, bytes(payload)): reason for topic, payload, reason in letters}
    for m in bad:
        reason = by_payload[(m.topic, m.payload)]
        assert m.malformed is not None and m.malformed in reason, (m.malformed, reason)

    for kind, table in TABLES.items():
        keys = db.execute(f"SELECT device_id, seq FROM {table} WHERE device_id LIKE %s", (f"{site}-%",)).fetchall()
        assert {(d, s) for d, s in keys} == unique[kind]


def test_latest_state_never_moves_back(
    site: str, ingest: IngestService, publisher: Publisher, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    topic = f"bw/v1/{site}/temp/{site}-cr-1"
    publisher.publish(topic, b'{"ts": "2026-11-25T10:00:00+08:00", "seq": 2, "temp_c": 3.5}')
    publisher.wait_acked()
    wait_for(
        lambda: (
            db.execute("SELECT count(*) FROM device_latest WHERE device_id = %s", (f"{site}-cr-1",)).fetchone()[0] == 1
        )
    )
    publisher.publish(topic, b'{"ts": "2026-11-25T09:59:00+08:00", "seq": 1, "temp_c": 9.5}')  # late
    publisher.wait_acked()
    wait_for(lambda: stored_counts(db, site)["temp"] == 2)
    seq, temp = db.execute(
        "SELECT seq, (reading->>'temp_c')::real FROM device_latest WHERE device_id = %s", (f"{site}-cr-1",)
    ).fetchone()
    assert (seq, temp) == (2, 3.5)


def test_status_messages_and_wrong_site(
    site: str, ingest: IngestService, publisher: Publisher, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    publisher.publish(f"bw/v1/{site}/status/{site}-gw-1", b'{"online": false, "ts": 1764000000000}', retain=False)
    publisher.publish(f"bw/v1/{site}/status/{site}-gw-2", b'[{"online": true, "ts": 1764000000000}]')
    publisher.wait_acked()
    wait_for(
        lambda: (
            db.execute("SELECT count(*) FROM device_status WHERE device_id = %s", (f"{site}-gw-1",)).fetchone()[0] == 1
        )
    )
    wait_for(lambda: len(dead_letters(db, site)) == 1)
    assert db.execute("SELECT online FROM device_status WHERE device_id = %s", (f"{site}-gw-1",)).fetchone()[0] is False
    assert "not an array" in dead_letters(db, site)[0][2]
