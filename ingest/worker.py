"""The ingest loop: collect a batch, triage, write, commit, then acknowledge to the broker."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter

import psycopg

from ingest import metrics
from ingest.mqtt import InboundMessage, Subscriber
from ingest.settings import IngestSettings
from ingest.triage import Accepted, Rejected, triage
from ingest.writer import BatchWriter, WriteResult

log = logging.getLogger(__name__)


class IngestWorker:
    def __init__(self, settings: IngestSettings, subscriber: Subscriber) -> None:
        self.settings = settings
        self.subscriber = subscriber
        self.totals: Counter[str] = Counter()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._writer: BatchWriter | None = None
        self._last_log = time.monotonic()

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                batch = self._collect(stop)
                if batch:
                    self._process(batch, stop)
                self._maybe_log()
        finally:
            if self._conn is not None:
                self._conn.close()

    def _collect(self, stop: threading.Event) -> list[InboundMessage]:
        inbox = self.subscriber.inbox
        try:
            first = inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        limit = self.settings.ingest_batch_messages
        deadline = time.monotonic() + self.settings.ingest_batch_wait_ms / 1000
        while len(batch) < limit and not stop.is_set():
            try:
                batch.append(inbox.get_nowait())
                continue
            except queue.Empty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(inbox.get(timeout=left))
            except queue.Empty:
                break
        metrics.PENDING.set(inbox.qsize() + len(batch))
        return batch

    def connect(self) -> None:
        """Open the database connection now, so a wrong URL or password fails at start-up."""
        self._connection()

    def _connection(self) -> BatchWriter:
        if self._writer is None:
            self._conn = psycopg.connect(self.settings.db_url, application_name=self.settings.client_id())
            self._writer = BatchWriter(self._conn)
        return self._writer

    def _process(self, batch: list[InboundMessage], stop: threading.Event) -> None:
        started = time.perf_counter()
        accepted: list[Accepted] = []
        rejected: list[Rejected] = []
        for message in batch:
            outcome = triage(message, self.settings.site)
            (accepted if isinstance(outcome, Accepted) else rejected).append(outcome)  # type: ignore[arg-type]
        delay = 0.5
        while True:
            try:
                result = self._connection().write(accepted, rejected)
                break
            except psycopg.OperationalError as exc:
                metrics.DB_ERRORS.inc()
                log.error("database unavailable, batch of %d kept unacknowledged: %s", len(batch), exc)
                self._drop_connection()
                if stop.wait(delay):
                    return  # not acknowledged: the broker delivers these again
                delay = min(delay * 2, 10)
        self.subscriber.ack(batch)
        self._count(batch, accepted, rejected, result, time.perf_counter() - started)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
                self._writer = None

    def _count(self, batch: list[InboundMessage], accepted: list[Accepted], rejected: list[Rejected],
               result: WriteResult, seconds: float) -> None:
        for acc in accepted:
            metrics.RECEIVED.labels(acc.kind).inc()
        for rej in rejected:
            metrics.RECEIVED.labels(rej.kind or "unknown").inc()
            log.warning("dead letter on %s: %s", rej.message.topic, rej.reason)
        for kind, n in result.stored.items():
            metrics.STORED.labels(kind).inc(n)
        for kind, n in result.duplicates.items():
            metrics.DUPLICATES.labels(kind).inc(n)
        for kind, n in result.dead.items():
            metrics.DEAD_LETTERS.labels(kind).inc(n)
        metrics.STATUS.inc(result.status)
        metrics.BATCH_SECONDS.observe(seconds)
        metrics.BATCH_MESSAGES.observe(len(batch))
        self.totals.update(received=len(batch), stored=sum(result.stored.values()),
                           duplicates=sum(result.duplicates.values()), dead=sum(result.dead.values()),
                           batches=1)

    def _maybe_log(self) -> None:
        now = time.monotonic()
        if now - self._last_log >= self.settings.ingest_log_every_s and self.totals:
            t = self.totals
            log.info("ingest totals: received %d, stored %d, duplicates %d, dead letters %d, batches %d, "
                     "pending %d", t["received"], t["stored"], t["duplicates"], t["dead"], t["batches"],
                     self.subscriber.inbox.qsize())
            self._last_log = now
