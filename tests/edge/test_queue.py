"""The edge queue on a real SQLite file: seq assignment, bounds, threads, and a kill -9 mid-write."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY

from edge.errors import QueueFull
from edge.queue import EdgeQueue, QueueStorageError
from edge.readings import Position, TagRead, Temperature

ROOT = Path(__file__).resolve().parents[2]
TS = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def temp(value: float = 4.0) -> Temperature:
    return Temperature(ts=TS, temp_c=value)


def dropped_total() -> float:
    return REGISTRY.get_sample_value("bondwatch_edge_queue_dropped_total") or 0.0


def test_seq_rises_per_device_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    with EdgeQueue(path) as q:
        assert [q.put("temp", "cold-1", temp()) for _ in range(3)] == [0, 1, 2]
        assert q.put("gps", "truck-1", Position(ts=TS, lat=39.6, lon=109.8, fix="3d")) == 0
        assert q.put("temp", "cold-1", temp()) == 3
        assert q.depth() == 5
    with EdgeQueue(path) as q:
        assert q.depth() == 5
        assert q.put("temp", "cold-1", temp()) == 4
        assert q.put("gps", "truck-1", Position(ts=TS, lat=39.6, lon=109.8, fix="3d")) == 1
        # Acknowledged rows leave the queue, their seqs stay used.
        q.delete([r.id for r in q.peek(100)])
        assert q.depth() == 0
    with EdgeQueue(path) as q:
        assert q.depth() == 0
        assert q.put("temp", "cold-1", temp()) == 5
        assert q.next_seq("truck-1") == 2
        assert q.next_seq("never-seen") == 0


def test_payload_order_peek_and_delete(tmp_path: Path) -> None:
    with EdgeQueue(tmp_path / "q.db") as q:
        seqs = q.put_many(
            [
                ("temp", "cold-1", Temperature(ts=TS, temp_c=-18.5, door_open=False)),
                ("rfid", "gate-1", TagRead(ts=TS, epc="E2801160600002084C5A1B2C", antenna=2, direction="out")),
                ("temp", "cold-1", temp(-18.0)),
            ]
        )
        assert seqs == [0, 0, 1]
        rows = q.peek(10)
        assert [(r.kind, r.device_id, r.seq) for r in rows] == [
            ("temp", "cold-1", 0),
            ("rfid", "gate-1", 0),
            ("temp", "cold-1", 1),
        ]
        assert rows[0].id < rows[1].id < rows[2].id
        assert orjson.loads(rows[0].payload) == {
            "ts": "2026-11-25T08:00:00.000Z",
            "seq": 0,
            "temp_c": -18.5,
            "door_open": False,
        }
        assert orjson.loads(rows[1].payload)["epc"] == "E2801160600002084C5A1B2C"
        assert [r.id for r in q.peek(10, after_id=rows[0].id)] == [rows[1].id, rows[2].id]
        assert len(q.peek(1)) == 1
        q.delete([rows[1].id, rows[1].id, 999_999])  # repeats and unknown ids are harmless
        assert q.depth() == 2
        assert [r.seq for r in q.peek(10)] == [0, 1]
        # Ids never repeat, even after the queue ran empty: the publisher pages by id.
        q.delete([r.id for r in q.peek(10)])
        q.put("temp", "cold-1", temp())
        assert q.peek(10)[0].id > rows[2].id


def test_unpublishable_rows_are_refused(tmp_path: Path) -> None:
    with EdgeQueue(tmp_path / "q.db") as q:
        with pytest.raises(ValueError, match="device_id"):
            q.put("temp", "cold/1", temp())
        with pytest.raises(ValueError, match="does not match the reading"):
            q.put("gps", "cold-1", temp())
        with pytest.raises(ValueError, match="kind"):
            q.put("status", "cold-1", temp())
        assert q.depth() == 0
        assert q.next_seq("cold-1") == 0


def test_concurrent_puts_get_unique_seqs(tmp_path: Path) -> None:
    q = EdgeQueue(tmp_path / "q.db")
    got: dict[str, list[int]] = {"a": [], "b": []}
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        device = "a" if n % 2 else "b"
        mine = []
        start.wait()
        for i in range(100):
            if i % 10 == 0:
                mine.extend(q.put_many([("temp", device, temp())] * 3))
            else:
                mine.append(q.put("temp", device, temp()))
        with lock:
            got[device].extend(mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    per_device = 4 * (90 + 10 * 3)
    for device in ("a", "b"):
        assert sorted(got[device]) == list(range(per_device))
    stored = [(r.device_id, r.seq) for r in q.peek(10_000)]
    assert len(stored) == len(set(stored)) == 2 * per_device == q.depth()
    for device in ("a", "b"):  # the queue's order is the seq order of each device
        seqs = [s for d, s in stored if d == device]
        assert seqs == sorted(seqs)
    q.close()


def test_drop_oldest_keeps_the_newest(tmp_path: Path) -> None:
    before = dropped_total()
    with EdgeQueue(tmp_path / "q.db", max_readings=10) as q:
        for _ in range(15):
            q.put("temp", "cold-1", temp())
        assert q.depth() == 10
        assert [r.seq for r in q.peek(100)] == list(range(5, 15))
        q.put_many([("temp", "cold-1", temp())] * 25)
        assert q.depth() == 10
        assert [r.seq for r in q.peek(100)] == list(range(30, 40))
        assert dropped_total() - before == 5 + 25
    with EdgeQueue(tmp_path / "q.db", max_readings=10) as q:
        assert q.depth() == 10


def test_refuse_new_raises_queue_full(tmp_path: Path) -> None:
    with EdgeQueue(tmp_path / "q.db", max_readings=3, policy="refuse_new") as q:
        assert q.put_many([("temp", "cold-1", temp())] * 2) == [0, 1]
        with pytest.raises(QueueFull, match="refuse_new"):
            q.put_many([("temp", "cold-1", temp())] * 2)  # all or nothing
        assert q.put("temp", "cold-1", temp()) == 2
        with pytest.raises(QueueFull):
            q.put("temp", "cold-1", temp())
        assert q.depth() == 3
        q.delete([q.peek(1)[0].id])
        assert q.put("temp", "cold-1", temp()) == 3  # a refused put used no seq


def test_disk_full_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    q = EdgeQueue(path)
    q.put("temp", "cold-1", temp())
    # SQLite reports a capped file exactly as a full disk (SQLITE_FULL), which a test cannot otherwise cause.
    pages = q._conn.execute("PRAGMA page_count").fetchone()[0]
    q._conn.execute(f"PRAGMA max_page_count={pages}")
    big = [("rfid", "gate-1", TagRead(ts=TS, epc="E2" * 62, gate_id="g" * 64))] * 200
    with pytest.raises(QueueStorageError) as info:
        q.put_many(big)
    assert info.value.disk_full
    assert str(path) in str(info.value) and "SQLITE_FULL" in str(info.value)
    assert q.depth() == 1 and q.next_seq("gate-1") == 0
    q._conn.execute("PRAGMA max_page_count=1073741823")
    assert q.put_many(big)[0] == 0
    q.close()
    with pytest.raises(QueueStorageError, match="closed"):
        q.put("temp", "cold-1", temp())


def test_unusable_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"not a database at all" * 200)
    with pytest.raises(QueueStorageError, match=str(bad)):
        EdgeQueue(bad)
    with pytest.raises(QueueStorageError, match="cannot"):
        EdgeQueue(tmp_path)  # a directory


CHILD = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from edge.queue import EdgeQueue
from edge.readings import Temperature

q = EdgeQueue(Path(sys.argv[1]))
reading = Temperature(ts=datetime.now(UTC), temp_c=5.0)
n = 0
while True:
    device = "dev-a" if n % 3 else "dev-b"
    if n % 7 == 0:
        seqs = q.put_many([("temp", device, reading)] * 5)
    else:
        seqs = [q.put("temp", device, reading)]
    for seq in seqs:
        print("put", device, seq, flush=True)
    if n % 20 == 19:  # acknowledge the oldest rows, as the publisher does; announced before, as the kill may come
        rows = q.peek(30)
        for r in rows:
            print("ack", r.device_id, r.seq, flush=True)
        q.delete([r.id for r in rows])
    n += 1
"""


def test_kill_minus_9_leaves_an_intact_queue_and_no_seq_reuse(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    assert child.stdout is not None
    put: set[tuple[str, int]] = set()
    acked: set[tuple[str, int]] = set()
    try:
        while len(put) < 1500:
            line = child.stdout.readline()
            assert line, f"child exited early with {child.wait()}"
            what, device, seq = line.split()
            (put if what == "put" else acked).add((device, int(seq)))
    finally:
        os.kill(child.pid, signal.SIGKILL)
        rest = child.stdout.read()  # whatever it managed to report before dying
        child.wait()
    for line in rest.split("\n")[:-1]:  # a last line without its newline may be cut short
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            (put if parts[0] == "put" else acked).add((parts[1], int(parts[2])))

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with EdgeQueue(path) as q:
        stored = {(r.device_id, r.seq) for r in q.peek(1_000_000)}
        assert q.depth() == len(stored)
        assert acked, "the child acknowledged nothing"
        # Every reading put() returned for is still queued unless it was (about to be) acknowledged.
        assert put - acked <= stored
        for device in ("dev-a", "dev-b"):
            highest = max(seq for d, seq in put | stored if d == device)
            assert q.put("temp", device, temp()) > highest


def refused_total(reason: str) -> float:
    return REGISTRY.get_sample_value("bondwatch_edge_queue_refused_total", {"reason": reason}) or 0.0


def test_a_refused_reading_is_counted_and_the_driver_goes_on(tmp_path: Path) -> None:
    # emit() is the drivers' sink: an exception there would end the driver's thread for good.
    before = refused_total("queue_full")
    with EdgeQueue(tmp_path / "q.db", max_readings=2, policy="refuse_new") as q:
        for _ in range(5):
            q.emit("cold-1", temp())
        assert q.depth() == 2 and q.next_seq("cold-1") == 2
        assert refused_total("queue_full") - before == 3
        q.delete([q.peek(1)[0].id])
        q.emit("cold-1", temp())
        assert [r.seq for r in q.peek(10)] == [1, 2]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs, as on a gateway whose disk is nearly full (needs root)."""
    folder = tmp_path / "small"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_refuses_new_readings_and_frees_up_when_acknowledged(small_fs: Path) -> None:
    path = small_fs / "q.db"
    reading = Position(ts=TS, lat=39.6, lon=109.8, fix="3d", speed_kmh=40.0, hdop=0.9, sats=12, soc_pct=60.0)
    accepted_total = 0
    with EdgeQueue(path) as q:
        for _ in range(3):
            before = refused_total("disk_full")
            accepted = 0
            while refused_total("disk_full") == before:
                q.emit(f"truck-{accepted % 20}", reading)
                accepted += 1
            accepted -= 1  # the last one was refused
            accepted_total += accepted
            # The WAL alone used to fill 512 KiB after ~36 readings, and then nothing could be written again.
            assert accepted > 1000
            assert q.depth() == accepted  # nothing dropped to make room
            with pytest.raises(QueueStorageError, match=f"{path}: .*disk full") as info:
                q.put("gps", "truck-0", reading)
            assert info.value.disk_full
            # Acknowledged readings can always be deleted, even all at once as after a replay (a delete that
            # big needs more WAL room than the disk has left), and new readings take the room they leave.
            q.delete([r.id for r in q.peek(100_000)])
            assert q.depth() == 0
        # A refused reading used no seq.
        assert sum(q.next_seq(f"truck-{i}") for i in range(20)) == accepted_total
