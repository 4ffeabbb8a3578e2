"""The durable store-and-forward queue of one edge agent, and the only place a reading gets its ``seq``.

Durability
    One SQLite file in WAL mode with ``synchronous=FULL``: :meth:`EdgeQueue.put` returns only after the
    transaction holding the reading has been fsynced, so a reading that ``put`` returned for survives a
    kill -9 and a power cut. A crash mid-transaction leaves the previous state (SQLite's own atomic
    commit); there is no half-written reading to repair on the next start.

seq
    Each device's next ``seq`` lives in table ``seqs`` and is advanced in the same transaction that
    stores the reading. Deleting acknowledged readings never touches it, so after any restart, even a
    kill -9, the next ``seq`` is above every one ever handed out, whether it is still queued or long
    acknowledged. A device new to the queue starts at 0.

    Consequence for operations: the queue file is *state*, not a cache. Deleting it restarts every
    device at seq 0, and the platform, which stores ``(device_id, seq)`` once, would take the new
    readings for repeats of old ones and drop them. The agent must never delete or recreate it; after
    a real loss of the file, give the devices new ids (or move their old rows out of the platform)
    before the agent runs again.

Bound
    At ``max_readings`` rows, policy ``drop_oldest`` (the default) deletes the oldest rows in the same
    transaction as the new ones and counts them in ``bondwatch_edge_queue_dropped``: during a long
    outage recent data is worth more than old data. ``refuse_new`` raises :class:`QueueFull` instead
    and stores nothing (a ``put_many`` that does not fit is refused whole), for sites where the oldest
    readings are the evidence and new ones are refused instead.

Disk full and I/O errors
    Any SQLite failure (disk full, I/O error, read-only or corrupt file) rolls the transaction back and
    raises :class:`QueueStorageError`, which names the file and SQLite's error name. Nothing already
    stored is lost or dropped to make room, and a refused ``put`` consumes no seq. As the drivers'
    sink (:meth:`EdgeQueue.emit`) the queue counts every refused reading in
    ``bondwatch_edge_queue_refused{reason}`` and logs it, and the driver goes on reading; every further
    ``put`` is refused the same way until there is room again. The queue never drops readings
    silently because of the disk.

    Room comes back when the publisher deletes acknowledged readings, and deleting needs room too
    (WAL frames), as does the checkpoint that hands the WAL's space back (the database file grows by
    the WAL's new pages). So a ``put`` is refused as "disk full" while the queue's room (free bytes on
    the file system plus free pages inside the file, less the WAL) is under ``reserve_bytes`` (default
    128 KiB) even after a checkpoint that truncates the WAL; deletes and checkpoints may use the
    reserve, a write that still meets a full disk is retried once after such a checkpoint, and a
    delete too large for the room left goes in small transactions.
    Without this, a WAL that SQLite checkpoints by itself only at 4 MiB fills a small file system
    while the queue is nearly empty, and then nothing, not even a delete, can be written again.

Threads
    Several driver threads put while the publisher thread peeks and deletes. One connection guarded
    by a lock serves all of them: SQLite serialises writers anyway, every statement here is short, and
    a single connection keeps the in-memory depth counter exact without reading ``count(*)`` (a full
    scan) on every call. Ids come from ``AUTOINCREMENT`` and so never repeat, even when the queue runs
    empty, which lets the publisher page with ``peek(after_id=...)``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import orjson

from bondwatch.contract.topics import DEVICE_ID_RE, READING_KINDS
from edge import metrics
from edge.errors import EdgeError, QueueFull
from edge.readings import Reading, payload

log = logging.getLogger(__name__)

Policy = Literal["drop_oldest", "refuse_new"]
_T = TypeVar("_T")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    device_id   TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    payload     BLOB    NOT NULL,
    enqueued_at REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS seqs (
    device_id TEXT PRIMARY KEY,
    next_seq  INTEGER NOT NULL
) WITHOUT ROWID;
"""
_DROP_LOG_EVERY_S = 60.0
_REFUSED_LOG_EVERY_S = 30.0
RESERVE_BYTES = 128 * 1024
# Rows per DELETE statement: well under SQLite's bound-variable limit on every version.
_DELETE_CHUNK = 500
# Rows per transaction when deleting on a full disk: at most as many leaf pages, which fit the reserve's WAL room.
_FULL_DISK_DELETE = 16


class QueueStorageError(EdgeError):
    """The queue's SQLite file could not be opened, read or written (disk full, I/O error, corrupt file)."""

    def __init__(self, path: Path, message: str, *, disk_full: bool = False) -> None:
        super().__init__(f"edge queue {path}: {message}")
        self.path = path
        self.disk_full = disk_full


@dataclass(frozen=True, slots=True)
class QueuedReading:
    """One stored reading: its contract payload (JSON object bytes) and where it goes."""

    id: int
    kind: str
    device_id: str
    seq: int
    payload: bytes
    enqueued_at: float  # epoch seconds


class EdgeQueue:
    """Durable FIFO of readings on one SQLite file; assigns each device's ``seq``. Thread-safe."""

    def __init__(
        self,
        path: Path,
        max_readings: int = 1_000_000,
        policy: Policy = "drop_oldest",
        reserve_bytes: int = RESERVE_BYTES,
    ) -> None:
        if max_readings < 1:
            raise ValueError(f"max_readings must be at least 1, got {max_readings}")
        if policy not in ("drop_oldest", "refuse_new"):
            raise ValueError(f"policy must be 'drop_oldest' or 'refuse_new', got {policy!r}")
        self.path = Path(path)
        self.max_readings = max_readings
        self.policy: Policy = policy
        self.reserve_bytes = reserve_bytes
        self._wal_path = Path(f"{self.path}-wal")
        self._lock = threading.Lock()
        self._closed = False
        self._dropped_unlogged = 0
        self._last_drop_log = -_DROP_LOG_EVERY_S
        self._refused_unlogged = 0
        self._last_refused_log = -_REFUSED_LOG_EVERY_S
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise QueueStorageError(self.path, f"cannot create its directory: {exc}") from exc
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        except sqlite3.Error as exc:
            raise self._storage_error("cannot open", exc) from exc
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                # Without WAL (e.g. some network file systems) readers would block writers; refuse early.
                raise QueueStorageError(self.path, f"file system does not support WAL (journal_mode={mode})")
            self._conn.execute("PRAGMA synchronous=FULL")
            # Keep the WAL from growing without bound after a burst; it is truncated to this after checkpoints.
            self._conn.execute("PRAGMA journal_size_limit=67108864")
            self._conn.executescript(_SCHEMA)
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise QueueStorageError(self.path, f"schema version {version}, this agent knows {SCHEMA_VERSION}")
            self._depth = int(self._conn.execute("SELECT count(*) FROM queue").fetchone()[0])
            self._page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
        except sqlite3.Error as exc:
            self._conn.close()
            raise self._storage_error("cannot open", exc) from exc
        except QueueStorageError:
            self._conn.close()
            raise
        metrics.QUEUE_DEPTH.set(self._depth)
        log.info("edge queue %s open: %d readings waiting", self.path, self._depth)

    # -- writing -----------------------------------------------------------------------------------

    def put(self, kind: str, device_id: str, reading: Reading) -> int:
        """Store one reading durably and return the ``seq`` it was given.

        Raises :class:`QueueFull` (policy ``refuse_new``), :class:`QueueStorageError` (disk), or
        ``ValueError`` for a kind or device id that could never be published.
        """
        return self.put_many([(kind, device_id, reading)])[0]

    def put_many(self, items: Iterable[tuple[str, str, Reading]]) -> list[int]:
        """Store several readings in one transaction (one fsync); their seqs, in order. All or nothing."""
        batch = list(items)
        for kind, device_id, reading in batch:
            _check(kind, device_id, reading)
        if not batch:
            return []
        with self._lock:
            self._check_open()
            if self.policy == "refuse_new" and self._depth + len(batch) > self.max_readings:
                raise QueueFull(
                    f"edge queue {self.path}: {self._depth} of {self.max_readings} readings stored, "
                    f"{len(batch)} more refused (policy refuse_new)"
                )
            self._ensure_room(f"cannot store {len(batch)} reading(s)")
            now = time.time()

            def store() -> tuple[list[int], int]:
                next_seq: dict[str, int] = {}
                seqs: list[int] = []
                rows = []
                for kind, device_id, reading in batch:
                    if device_id not in next_seq:
                        found = self._conn.execute(
                            "SELECT next_seq FROM seqs WHERE device_id = ?", (device_id,)
                        ).fetchone()
                        next_seq[device_id] = int(found[0]) if found else 0
                    seq = next_seq[device_id]
                    next_seq[device_id] = seq + 1
                    seqs.append(seq)
                    rows.append((kind, device_id, seq, orjson.dumps(payload(reading, seq)), now))
                self._conn.executemany(
                    "INSERT INTO queue (kind, device_id, seq, payload, enqueued_at) VALUES (?, ?, ?, ?, ?)", rows
                )
                self._conn.executemany(
                    "INSERT INTO seqs (device_id, next_seq) VALUES (?, ?) "
                    "ON CONFLICT (device_id) DO UPDATE SET next_seq = excluded.next_seq",
                    list(next_seq.items()),
                )
                overflow = self._depth + len(batch) - self.max_readings
                if overflow <= 0:  # always, with refuse_new
                    return seqs, 0
                dropped: int = self._conn.execute(
                    "DELETE FROM queue WHERE id IN (SELECT id FROM queue ORDER BY id LIMIT ?)", (overflow,)
                ).rowcount
                return seqs, dropped

            seqs, dropped = self._write(f"cannot store {len(batch)} reading(s)", store)
            self._depth += len(batch) - dropped
            metrics.QUEUE_DEPTH.set(self._depth)
        if dropped:
            metrics.QUEUE_DROPPED.inc(dropped)
            self._log_drops(dropped)
        return seqs

    def _write(self, failure: str, body: Callable[[], _T]) -> _T:
        """``body`` in one write transaction (caller holds the lock); on a full disk, once more after a checkpoint.

        The WAL gives its space back only when checkpointed (see "Disk full" above): only a write that
        fails again after that is a full disk.
        """
        try:
            with self._transaction(failure):
                return body()
        except QueueStorageError as exc:
            if not exc.disk_full or not self._reclaim_wal():
                raise
        with self._transaction(failure):
            return body()

    def _ensure_room(self, failure: str) -> None:
        """Refuse a write that would eat into the reserve (caller holds the lock); see "Disk full" above."""
        if self._room() >= self.reserve_bytes:
            return
        self._reclaim_wal()
        room = self._room()
        if room < self.reserve_bytes:
            raise QueueStorageError(
                self.path,
                f"{failure}: disk full ({max(room, 0) // 1024} KiB left, "
                f"{self.reserve_bytes // 1024} KiB kept for deleting acknowledged readings)",
                disk_full=True,
            )

    def _room(self) -> int:
        """Bytes the queue can still fill: free on its file system plus free pages in the file, less the WAL."""
        try:
            free_pages = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
        except sqlite3.Error:
            return 1 << 62  # the write itself will report what is wrong
        return self._free_bytes() + free_pages * self._page_size - self._wal_bytes()

    def _free_bytes(self) -> int:
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return 1 << 62  # unknown: let SQLite tell
        return st.f_bavail * st.f_frsize

    def _wal_bytes(self) -> int:
        try:
            return self._wal_path.stat().st_size
        except OSError:
            return 0

    def _reclaim_wal(self) -> bool:
        """Checkpoint the WAL and truncate it to zero bytes; False if that did not complete."""
        try:
            busy = int(self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
        except sqlite3.Error as exc:
            log.debug("edge queue %s: checkpoint failed: %s", self.path, exc)
            return False
        return busy == 0

    @contextlib.contextmanager
    def _transaction(self, failure: str) -> Iterator[None]:
        """One write transaction (caller holds the lock): rolled back on any error, SQLite's as QueueStorageError."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.Error as exc:
            raise self._storage_error(failure, exc) from exc

    def emit(self, device_id: str, reading: Reading) -> None:
        """The drivers' :class:`edge.drivers.base.Sink`: ``put`` under the reading's own kind.

        A reading the queue refuses (policy ``refuse_new`` at the bound, a full disk, an I/O error) is
        counted and logged here, not raised: the driver must go on reading, and take the next reading
        once there is room again.
        """
        try:
            self.put(reading.kind, device_id, reading)
        except QueueFull as exc:
            self._refused("queue_full", exc)
        except QueueStorageError as exc:
            self._refused("disk_full" if exc.disk_full else "storage_error", exc)

    # -- reading and acknowledging -----------------------------------------------------------------

    def peek(self, limit: int, after_id: int = 0) -> list[QueuedReading]:
        """Up to ``limit`` stored readings, oldest first, with ids above ``after_id``; nothing is removed."""
        with self._lock:
            self._check_open()
            try:
                rows = self._conn.execute(
                    "SELECT id, kind, device_id, seq, payload, enqueued_at FROM queue WHERE id > ? ORDER BY id LIMIT ?",
                    (after_id, limit),
                ).fetchall()
            except sqlite3.Error as exc:
                raise self._storage_error("cannot read", exc) from exc
        return [QueuedReading(r[0], r[1], r[2], r[3], bytes(r[4]), r[5]) for r in rows]

    def delete(self, ids: Sequence[int]) -> None:
        """Remove readings (the broker acknowledged them); ids already gone are ignored."""
        if not ids:
            return
        with self._lock:
            self._check_open()
            failure = f"cannot delete {len(ids)} reading(s)"
            try:
                removed = self._write(failure, lambda: self._remove(ids, _DELETE_CHUNK))
            except QueueStorageError as exc:
                if not exc.disk_full or len(ids) <= _FULL_DISK_DELETE:
                    raise
                # Every page a delete touches goes through the WAL first: thousands of rows at once need more
                # room than a full disk has. In small transactions each fits the reserve, and the checkpoint
                # that _write runs when one does not fit hands the space back.
                removed = 0
                try:
                    for start in range(0, len(ids), _FULL_DISK_DELETE):
                        chunk = ids[start : start + _FULL_DISK_DELETE]
                        removed += self._write(failure, functools.partial(self._remove, chunk, len(chunk)))
                finally:
                    self._depth -= removed
                    metrics.QUEUE_DEPTH.set(self._depth)
                return
            self._depth -= removed
            metrics.QUEUE_DEPTH.set(self._depth)

    def _remove(self, ids: Sequence[int], per_statement: int) -> int:
        removed = 0
        for start in range(0, len(ids), per_statement):
            chunk = ids[start : start + per_statement]
            marks = ",".join("?" * len(chunk))
            removed += self._conn.execute(f"DELETE FROM queue WHERE id IN ({marks})", tuple(chunk)).rowcount
        return removed

    def depth(self) -> int:
        """Readings stored and not yet deleted."""
        return self._depth

    def next_seq(self, device_id: str) -> int:
        """The seq the device's next reading will get (0 for a device the queue has never seen)."""
        with self._lock:
            self._check_open()
            try:
                found = self._conn.execute("SELECT next_seq FROM seqs WHERE device_id = ?", (device_id,)).fetchone()
            except sqlite3.Error as exc:
                raise self._storage_error("cannot read", exc) from exc
        return int(found[0]) if found else 0

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.close()
            except sqlite3.Error as exc:
                log.warning("edge queue %s: error on close: %s", self.path, exc)

    def __enter__(self) -> EdgeQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise QueueStorageError(self.path, "queue is closed")

    def _log_drops(self, dropped: int) -> None:
        # A full queue drops on every put during a long outage: one line a minute, not one per reading.
        with self._lock:
            self._dropped_unlogged += dropped
            now = time.monotonic()
            if now - self._last_drop_log < _DROP_LOG_EVERY_S:
                return
            count, self._dropped_unlogged, self._last_drop_log = self._dropped_unlogged, 0, now
        log.warning("edge queue %s full (%d readings): dropped the %d oldest", self.path, self.max_readings, count)

    def _refused(self, reason: str, exc: EdgeError) -> None:
        metrics.QUEUE_REFUSED.labels(reason).inc()
        # One line every 30 s while it lasts (with the count), not one per reading.
        with self._lock:
            self._refused_unlogged += 1
            now = time.monotonic()
            if now - self._last_refused_log < _REFUSED_LOG_EVERY_S:
                return
            count, self._refused_unlogged, self._last_refused_log = self._refused_unlogged, 0, now
        log.error("%s; %d reading(s) refused", exc, count)

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error as exc:  # SQLite may already have rolled back on I/O errors
                log.debug("edge queue %s: rollback: %s", self.path, exc)

    def _storage_error(self, what: str, exc: sqlite3.Error) -> QueueStorageError:
        code = getattr(exc, "sqlite_errorcode", None)
        name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
        disk_full = code == sqlite3.SQLITE_FULL
        # Not logged here: the caller decides (the publisher retries and rate-limits its log lines).
        return QueueStorageError(self.path, f"{what}: {exc} ({name})", disk_full=disk_full)


def _check(kind: str, device_id: str, reading: Reading) -> None:
    # A row that can never become a valid topic would block its device's replay forever; refuse it here.
    if kind not in READING_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(READING_KINDS)}")
    if kind != reading.kind:
        raise ValueError(f"kind {kind!r} does not match the reading ({type(reading).__name__} is {reading.kind!r})")
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise ValueError(f"device_id {device_id!r} does not match [A-Za-z0-9_.-]{{1,64}}")
