"""Prometheus counters of the rules engine (served on /metrics by `bondwatch serve`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OBSERVED = Counter("bondwatch_rules_readings_total", "Readings the rules engine judged", ["kind"])
LATE = Counter("bondwatch_rules_late_total", "Readings older than their device's latest (not judged)", ["kind"])
FUTURE = Counter("bondwatch_rules_future_total", "Readings stamped too far in the future (not judged)", ["kind"])
FIXES_REJECTED = Counter("bondwatch_rules_fixes_rejected_total", "Positions held back by hygiene", ["reason"])
ALERT_CHANGES = Counter("bondwatch_rules_alert_events_total", "Alert events written", ["type", "event"])
DECISIONS = Counter("bondwatch_rules_gate_decisions_total", "Outbound gate passages decided", ["decision"])
STEP_ERRORS = Counter("bondwatch_rules_step_errors_total", "Rule steps that raised", ["step"])
PUBLISHED = Counter("bondwatch_rules_published_total", "Messages sent to the broker", ["what"])
BATCH_SECONDS = Histogram("bondwatch_rules_batch_seconds", "Time to judge and commit one batch")
CONNECTED = Gauge("bondwatch_rules_broker_connected", "1 while the rules engine is connected to the broker")
