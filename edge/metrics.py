"""Prometheus metrics of the edge agent."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

READINGS = Counter("bondwatch_edge_readings", "Readings produced by a device's driver", ["device", "kind"])
REJECTED = Counter("bondwatch_edge_rejected", "Frames or exchanges refused, by reason", ["device", "reason"])
QUEUE_DEPTH = Gauge("bondwatch_edge_queue_depth", "Readings waiting in the on-disk queue")
QUEUE_DROPPED = Counter("bondwatch_edge_queue_dropped", "Readings dropped by the queue's bound policy")
QUEUE_REFUSED = Counter(
    "bondwatch_edge_queue_refused", "Readings the queue refused (refuse_new at its bound, disk full)", ["reason"]
)
PUBLISHED = Counter("bondwatch_edge_published", "Readings acknowledged by the broker", ["kind"])
BROKER_CONNECTED = Gauge("bondwatch_edge_broker_connected", "1 while connected to the broker")
