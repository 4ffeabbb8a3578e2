"""Prometheus counters of ingest, also summarised in the log."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECEIVED = Counter("bondwatch_ingest_messages_received", "MQTT messages received", ["kind"])
STORED = Counter("bondwatch_ingest_readings_stored", "Readings written to the database", ["kind"])
DUPLICATES = Counter("bondwatch_ingest_readings_duplicate", "Readings already stored (repeats)", ["kind"])
DEAD_LETTERS = Counter("bondwatch_ingest_dead_letters", "Messages kept as dead letters", ["kind"])
STATUS = Counter("bondwatch_ingest_status_messages", "Device status messages stored")
DB_ERRORS = Counter("bondwatch_ingest_db_errors", "Batches the database failed to commit (retried)")
BATCH_SECONDS = Histogram(
    "bondwatch_ingest_batch_seconds",
    "Time to validate, write and commit one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_MESSAGES = Histogram(
    "bondwatch_ingest_batch_messages",
    "Messages per committed batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000),
)
PENDING = Gauge("bondwatch_ingest_pending_messages", "Messages received but not yet committed")
CONNECTED = Gauge("bondwatch_ingest_broker_connected", "1 while the worker is connected to the broker")
