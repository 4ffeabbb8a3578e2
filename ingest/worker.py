"""The ingest loop: collect a batch, triage, write, commit, then acknowledge to the broker."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import psycopg

from ingest import metrics
from ingest.errors import BrokerUnavailable
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
                try:
                    batch = self.subscriber.poll(
                        self.settings.ingest_batch_messages, self.settings.ingest_batch_wait_ms / 1000
                    )
                except BrokerUnavailable as exc:
                    log.error("%s; reconnecting", exc)
                    self.subscriber.reconnect(stop)
                    continue
                metrics.PENDING.set(len(batch))
                if batch:
                    self._process(batch, stop)
                self._maybe_log()
        finally:
            self.subscriber.close()
            if self._conn is not None:
                self._conn.close()

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

    def _count(
        self,
        batch: list[InboundMessage],
        accepted: list[Accepted],
        rejected: list[Rejected],
        result: WriteResult,
        seconds: float,
    ) -> None:
        received = Counter(acc.kind for acc in accepted)
        received.update(rej.kind or "unknown" for rej in rejected)
        for kind, n in received.items():
            metrics.RECEIVED.labels(kind).inc(n)
        for rej in rejected:
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
        self.totals.update(
            received=len(batch),
            stored=sum(result.stored.values()),
            duplicates=sum(result.duplicates.values()),
            dead=sum(result.dead.values()),
            batches=1,
        )

    def _maybe_log(self) -> None:
        now = time.monotonic()
        if now - self._last_log >= self.settings.ingest_log_every_s and self.totals:
            t = self.totals
            log.info(
                "ingest totals: received %d, stored %d, duplicates %d, dead letters %d, batches %d",
                t["received"],
                t["stored"],
                t["duplicates"],
                t["dead"],
                t["batches"],
            )
            self._last_log = now
