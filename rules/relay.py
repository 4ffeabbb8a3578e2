"""The outbox relay: alert events and gate decisions, committed in the database, sent to the broker.

Rows are written in the same transaction as the change they describe and sent afterwards, in
order, at QoS 1; a row is marked published only once the broker has acknowledged it. If the broker
is away, rows wait (the API's acknowledgements too) and go out when it is back: every change is
sent at least once, whatever crashes in between.

    bw/v1/{site}/alerts/{type}           the alert object + {event, event_id, event_at, actor}
    bw/v1/{site}/gate/{gate_id}/decision {decision, reasons, vehicle_id, release_note_id, passage_id, ts, ...}
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg

from bondwatch.contract.topics import alert_topic, gate_decision_topic
from bondwatch.mqtt import make_client
from rules import metrics
from rules.settings import RulesSettings

log = logging.getLogger(__name__)
BATCH = 500
# A passage with more tags than this is not one truck (a reader left reading a warehouse aisle): its
# message lists the first ones and says how many there were, so it stays far below broker size limits.
LIST_CAP = 200

ALERTS_SQL = (
    "SELECT e.id, e.event, e.at, e.actor, e.note, e.alert FROM alert_events e "
    "WHERE e.published_at IS NULL AND e.site = %s ORDER BY e.id LIMIT %s"
)
DECISIONS_SQL = (
    "SELECT id, gate_id, direction, decision, reasons, vehicle_id, vehicle_epc, release_note_id, decided_at, "
    "epcs, cargo_epcs, missing_epcs, first_read_at, last_read_at FROM gate_passages "
    "WHERE published_at IS NULL AND decision IS NOT NULL AND site = %s ORDER BY decided_at, id LIMIT %s"
)


def alert_message(event_id: int, event: str, event_at: Any, actor: str | None, alert: dict[str, Any]) -> bytes:
    body = {**alert, "event": event, "event_id": event_id, "event_at": event_at.isoformat(), "actor": actor}
    return orjson.dumps(body)


def decision_message(row: tuple[Any, ...]) -> bytes:
    (pid, gate, direction, decision, reasons, vehicle, vehicle_epc, note, decided, epcs, cargo, missing, first,
     last) = row  # fmt: skip
    body = {
        "decision": decision,
        "reasons": [r["text"] for r in reasons[:LIST_CAP]],
        "vehicle_id": vehicle,
        "release_note_id": note,
        "passage_id": pid,
        "ts": decided.isoformat(),
        "gate_id": gate,
        "direction": direction,
        "vehicle_epc": vehicle_epc,
        "epcs": epcs[:LIST_CAP],
        "cargo_epcs": cargo[:LIST_CAP],
        "missing_epcs": missing[:LIST_CAP],
        "reason_codes": reasons[:LIST_CAP],
        "first_read_at": first.isoformat(),
        "last_read_at": last.isoformat(),
    }
    if max(len(reasons), len(epcs), len(missing)) > LIST_CAP:
        body["truncated"] = {"reasons": len(reasons), "epcs": len(epcs), "missing_epcs": len(missing)}
        body["reasons"].append(f"……共 {len(reasons)} 条原因 / {len(reasons)} reasons in all, see passage {pid}")
    return orjson.dumps(body)


class Relay:
    def __init__(self, settings: RulesSettings) -> None:
        self.site = settings.site
        self.target = settings.mqtt
        self.client_id = f"{settings.client_id()}-out"
        self.client = make_client(settings.mqtt, self.client_id)
        self._inflight: dict[tuple[str, Any], mqtt.MQTTMessageInfo] = {}
        self._connected = False
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: Any, props: object) -> None:
        self._connected = not reason.is_failure
        if reason.is_failure:
            log.error("%s: broker refused the relay: %s", self.client_id, reason)

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: Any, props: object) -> None:
        self._connected = False
        log.warning("%s: disconnected from broker (%s); unsent alerts and decisions wait", self.client_id, reason)

    def start(self) -> None:
        self.client.connect_async(self.target.host, self.target.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def flush(self, conn: psycopg.Connection[Any]) -> int:
        """Send what is due, mark what the broker confirmed; returns the number of messages sent now."""
        self._confirm(conn)
        if not self._connected:
            return 0
        sent = 0
        with conn.cursor() as cur:
            for event_id, name, event_at, actor, _note, alert in cur.execute(ALERTS_SQL, (self.site, BATCH)).fetchall():
                key = ("alert", event_id)
                if key not in self._inflight:
                    topic = alert_topic(self.site, alert["type"])
                    body = alert_message(event_id, name, event_at, actor, alert)
                    self._inflight[key] = self.client.publish(topic, body, qos=1)
                    metrics.PUBLISHED.labels("alert").inc()
                    sent += 1
            for row in cur.execute(DECISIONS_SQL, (self.site, BATCH)).fetchall():
                key = ("passage", row[0])
                if key not in self._inflight:
                    self._inflight[key] = self.client.publish(
                        gate_decision_topic(self.site, row[1]), decision_message(row), qos=1
                    )
                    metrics.PUBLISHED.labels("decision").inc()
                    sent += 1
        conn.commit()
        return sent

    def _confirm(self, conn: psycopg.Connection[Any]) -> None:
        done: list[tuple[str, Any]] = []
        for key, info in list(self._inflight.items()):
            if info.rc != mqtt.MQTT_ERR_SUCCESS:  # never reached the client's queue: send again on the next flush
                self._inflight.pop(key)
            elif info.is_published():
                done.append(key)
        if not done:
            return
        alerts = [k[1] for k in done if k[0] == "alert"]
        passages = [k[1] for k in done if k[0] == "passage"]
        with conn.cursor() as cur:
            if alerts:
                cur.execute("UPDATE alert_events SET published_at = now() WHERE id = ANY(%s)", (alerts,))
            if passages:
                cur.execute("UPDATE gate_passages SET published_at = now() WHERE id = ANY(%s)", (passages,))
        conn.commit()
        for key in done:
            self._inflight.pop(key, None)

    def wait_idle(self, timeout: float) -> bool:
        """Wait for the broker to confirm everything sent (at shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(info.rc != mqtt.MQTT_ERR_SUCCESS or info.is_published() for info in self._inflight.values()):
                return True
            time.sleep(0.02)
        return False
