"""Settings of the ingest service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bondwatch.settings import CommonSettings


class IngestSettings(CommonSettings):
    # Workers of one site share the load through this shared-subscription group. A lone worker
    # subscribes without it: Mosquitto 2.0 does not restore shared subscriptions from its
    # persistence after a restart (measured with 2.0.21), so messages published before the worker
    # resubscribes would reach nobody; a plain persistent subscription is restored and queues them.
    ingest_share_group: str = "bondwatch-ingest"
    ingest_shared: bool = False  # set by `bondwatch ingest --workers N` (N > 1)
    # Stable per worker: the broker keeps the session (and queues messages) under this id while the
    # worker is down. Empty means bondwatch-ingest-{site}-{worker_index}.
    ingest_client_id: str = ""
    ingest_worker_index: int = Field(default=1, ge=1)
    ingest_mqtt_protocol: Literal["3.1.1", "5"] = "3.1.1"
    ingest_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    # Unacknowledged messages the broker may send before it waits for PUBACKs (MQTT 5 Receive
    # Maximum). Several batches' worth, so the next batch arrives while one is being committed.
    ingest_inflight: int = Field(default=10_000, ge=1, le=65535)
    # A batch closes at this many messages or this many ms after its first message.
    ingest_batch_messages: int = Field(default=2000, ge=1, le=65535)
    ingest_batch_wait_ms: int = Field(default=50, ge=1, le=10_000)
    ingest_metrics_port: int = Field(default=9717, ge=0, le=65535)
    ingest_log_every_s: float = Field(default=30.0, gt=0)

    def client_id(self) -> str:
        return self.ingest_client_id or f"bondwatch-ingest-{self.site}-{self.ingest_worker_index}"
