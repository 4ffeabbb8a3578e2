"""Queue -> MQTT: the edge agent's only way out. A reading leaves the queue only after the broker's PUBACK.

Threading
    Everything runs on the publisher's own thread: the paho network loop (``client.loop``), its
    callbacks, reading the queue and deleting from it. No state is shared with other threads except
    the queue (thread-safe) and the stop event, so the in-flight bookkeeping needs no locks. Any
    unexpected exception is logged and treated like a lost connection: the thread never dies
    silently while the agent believes it is publishing.

Connection and reconnect
    Each connection gets a fresh paho client (MQTT 5, TLS for ``mqtts://``, from
    :func:`bondwatch.mqtt.make_client`) with clean start and no broker session. The durable queue *is*
    the session: after a disconnect everything in memory is forgotten and replay starts again from
    the oldest row still queued, i.e. exactly what was not acknowledged. A persistent broker session
    would add nothing (paho keeps its in-flight copies in memory, which die with the process anyway)
    and letting paho resend as well would double every duplicate. Failed attempts back off
    exponentially with jitter from ``min_backoff`` to ``max_backoff``; the delay resets once a
    connection has lasted a while, so a broker that accepts and then kicks us (e.g. a second agent
    with the same client id) is not hammered.

Status and last will
    The contract wants a retained ``bw/v1/{site}/status/{device_id}`` per device whose last will sets
    ``online: false``. The devices behind a gateway have no MQTT connection of their own and MQTT
    allows one will per connection, so the will goes on the gateway's own status topic, using the
    agent's ``client_id`` as its device id. On every (re)connect the publisher publishes a retained
    ``{"online": true, "ts"}`` for the gateway and each device; on a clean stop a retained
    ``online: false`` for all of them, then a normal DISCONNECT (which discards the will). After a
    crash or a cut link only the gateway's will fires, so a consumer reads a device as offline when
    its gateway is; the platform's silence rules (``sensor_offline``, ``gps_lost``) catch it anyway.
    The will's ``ts`` must be fixed when connecting, so the online message of the same connection
    carries the very same ``ts``: the platform keeps the status with the newest ts (``>=``), and the
    will is then never older than the online message it overrides.

In flight
    At most ``max_inflight`` QoS 1 messages (readings and statuses) are unacknowledged at once, fewer
    if the broker's CONNACK announces a smaller Receive Maximum. Messages leave in queue order on one
    connection, so the broker sees each device's readings in order. Acknowledged row ids are deleted
    after each network loop pass, in one transaction: deleting late costs at most a duplicate after a
    crash, deleting early could lose a reading. A PUBACK with a failure reason code (MQTT 5) keeps the
    rows and ends the connection with a normal DISCONNECT (no false will); they go again after the
    backoff, so a permanent refusal (an ACL) stalls the queue loudly instead of dropping data.
    Duplicates are fine (the platform stores ``(device_id, seq)`` once), losses are not.

Batching
    The queue is read a window of rows at a time. Within a window, rows are grouped per
    ``(kind, device_id)`` in order of first appearance and cut into contract batches: a JSON array of
    at most ``batch_max`` (<= 1000) items and 256 KiB, or the single object when a group has one row,
    so live traffic goes out at once and a replay after an outage goes out in large arrays. Grouping
    never reorders a device's rows, and one window is sent completely before the next is read.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from bondwatch.contract.payloads import MAX_BATCH, MAX_PAYLOAD_BYTES
from bondwatch.contract.topics import DEVICE_ID_RE, device_topic
from bondwatch.mqtt import make_client
from bondwatch.settings import MqttTarget
from edge import metrics
from edge.queue import EdgeQueue, QueuedReading, QueueStorageError

log = logging.getLogger(__name__)

# A connection that lasted this long resets the backoff; shorter ones count as failed attempts.
_STABLE_AFTER_S = 10.0
_CONNACK_TIMEOUT_S = 10.0
# Queue errors (disk) are retried every pass; log them at most this often.
_ERROR_LOG_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes
    kind: str
    ids: tuple[int, ...]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _status_payload(online: bool, ts: str) -> bytes:
    return orjson.dumps({"online": online, "ts": ts})


class EdgePublisher:
    """Publishes the queue's readings at QoS 1 on its own thread; see the module docstring."""

    def __init__(
        self,
        target: MqttTarget,
        client_id: str,
        site: str,
        queue: EdgeQueue,
        status_device_ids: list[str],
        batch_max: int = 200,
        *,
        max_inflight: int = 50,
        keepalive: int = 30,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        poll_interval: float = 0.05,
        drain_timeout: float = 2.0,
    ) -> None:
        if not DEVICE_ID_RE.fullmatch(client_id):
            # The client id doubles as the gateway's device id on its status topic.
            raise ValueError(f"client_id {client_id!r} must match [A-Za-z0-9_.-]{{1,64}}")
        if not site or any(c in site for c in "/+#"):
            raise ValueError(f"site {site!r} must be a non-empty topic level without '/', '+' or '#'")
        for device_id in status_device_ids:
            if not DEVICE_ID_RE.fullmatch(device_id):
                raise ValueError(f"status device id {device_id!r} must match [A-Za-z0-9_.-]{{1,64}}")
        if not 1 <= batch_max <= MAX_BATCH:
            raise ValueError(f"batch_max must be 1..{MAX_BATCH}, got {batch_max}")
        if max_inflight < 1:
            raise ValueError(f"max_inflight must be at least 1, got {max_inflight}")
        self.target = target
        self.client_id = client_id
        self.site = site
        self.queue = queue
        # The gateway first: its status is the one the will covers.
        self.status_ids = list(dict.fromkeys([client_id, *status_device_ids]))
        self.batch_max = batch_max
        self.max_inflight = max_inflight
        self.keepalive = keepalive
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self.drain_timeout = drain_timeout
        # A window holds several full batches per device even when devices interleave row by row.
        self._read_rows = max(1000, batch_max * 10)

        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Owned by the publisher thread; reset for every connection.
        self._connack: ReasonCode | None = None
        self._connected = False
        self._broken = False
        self._window = max_inflight
        self._inflight: dict[int, _Message] = {}
        self._status_mids: set[int] = set()
        self._acked: list[int] = []
        self._pending: deque[_Message] = deque()
        self._cursor = 0
        self._last_error_log = 0.0

    # -- public ------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a connection is up and accepted by the broker."""
        return self._connected

    def status_topic(self, device_id: str) -> str:
        return device_topic(self.site, "status", device_id)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("edge publisher already running")
        self._stop.clear()
        metrics.BROKER_CONNECTED.set(0)
        self._thread = threading.Thread(target=self._run, name=f"edge-publisher-{self.client_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly: wait briefly for in-flight PUBACKs, publish every status offline, disconnect.

        Readings still queued stay queued for the next start.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("edge publisher did not stop within %.1f s", timeout)
            self._thread = None

    # -- the thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.min_backoff
        while not self._stop.is_set():
            started = time.monotonic()
            established = False
            try:
                established = self._session()
            except Exception:
                log.exception("edge publisher: unexpected error; reconnecting")
            finally:
                self._set_connected(False)
            if self._stop.is_set():
                break
            if established and time.monotonic() - started >= _STABLE_AFTER_S:
                delay = self.min_backoff
            # Jitter, so that many gateways do not reconnect in lockstep after a broker restart.
            self._stop.wait(random.uniform(delay / 2, delay))
            delay = min(delay * 2, self.max_backoff)
        log.info("edge publisher stopped")

    def _session(self) -> bool:
        """One connection from connect to loss or stop; True if the broker accepted it."""
        self._reset_flight()
        client = make_client(self.target, self.client_id)
        client.max_inflight_messages_set(self.max_inflight + len(self.status_ids))  # our window rules, not paho's
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        ts = _now()  # shared by the will and this connection's online statuses, see the docstring
        client.will_set(self.status_topic(self.client_id), _status_payload(False, ts), qos=1, retain=True)
        try:
            client.connect(self.target.host, self.target.port, keepalive=self.keepalive)
        except OSError as exc:
            log.warning("edge publisher: cannot connect to %s:%d: %s", self.target.host, self.target.port, exc)
            return False
        try:
            if not self._await_connack(client):
                return False
            self._set_connected(True)
            log.info("edge publisher connected to %s:%d as %s", self.target.host, self.target.port, self.client_id)
            for device_id in self.status_ids:
                self._publish_status(client, device_id, True, ts)
            while not self._stop.is_set() and self._connected and not self._broken:
                if self._flush_acks():
                    self._pump(client)
                rc = client.loop(self.poll_interval)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    break
            self._flush_acks()
            if self._connected:
                if self._stop.is_set() and not self._broken:
                    self._shutdown(client)
                else:
                    # A refused PUBACK, not a dead link: say goodbye properly so no false will fires.
                    client.disconnect()
            return True
        finally:
            sock = client.socket()
            if sock is not None:  # paho closed it already unless we are leaving on an error
                sock.close()

    def _await_connack(self, client: mqtt.Client) -> bool:
        deadline = time.monotonic() + _CONNACK_TIMEOUT_S
        while self._connack is None:
            if self._stop.is_set():
                return False
            rc = client.loop(0.1)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                log.warning("edge publisher: connection lost before CONNACK: %s", mqtt.error_string(rc))
                return False
            if time.monotonic() > deadline:
                log.warning("edge publisher: no CONNACK within %.0f s", _CONNACK_TIMEOUT_S)
                return False
        if self._connack.is_failure:
            log.error("edge publisher: broker refused the connection: %s", self._connack)
            return False
        return True

    def _pump(self, client: mqtt.Client) -> None:
        """Fill the in-flight window from the queue, oldest first."""
        while len(self._inflight) + len(self._status_mids) < self._window:
            if not self._pending:
                try:
                    rows = self.queue.peek(self._read_rows, after_id=self._cursor)
                except QueueStorageError as exc:
                    self._log_queue_error(exc)
                    return
                if not rows:
                    return
                self._cursor = rows[-1].id
                self._pending.extend(self._batches(rows))
            message = self._pending[0]
            info = client.publish(message.topic, message.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                # The link is gone; the rows are still queued and go again on the next connection.
                log.warning("edge publisher: publish failed: %s", mqtt.error_string(info.rc))
                self._broken = True
                return
            self._pending.popleft()
            self._inflight[info.mid] = message

    def _batches(self, rows: list[QueuedReading]) -> list[_Message]:
        groups: dict[tuple[str, str], list[QueuedReading]] = {}
        for row in rows:
            groups.setdefault((row.kind, row.device_id), []).append(row)
        out: list[_Message] = []
        for (kind, device_id), items in groups.items():
            topic = device_topic(self.site, kind, device_id)
            chunk: list[QueuedReading] = []
            size = 2  # the brackets
            for row in items:
                extra = len(row.payload) + (1 if chunk else 0)
                if chunk and (len(chunk) >= self.batch_max or size + extra > MAX_PAYLOAD_BYTES):
                    out.append(_message(topic, kind, chunk))
                    chunk, size, extra = [], 2, len(row.payload)
                chunk.append(row)
                size += extra
            if chunk:
                out.append(_message(topic, kind, chunk))
        return out

    def _flush_acks(self) -> bool:
        """Delete acknowledged rows; False while the queue refuses (then nothing new is sent)."""
        if not self._acked:
            return True
        try:
            self.queue.delete(self._acked)
        except QueueStorageError as exc:
            self._log_queue_error(exc)
            return False
        self._acked.clear()
        return True

    def _shutdown(self, client: mqtt.Client) -> None:
        # Let the PUBACKs of what is in flight arrive, so a clean stop leaves no duplicates behind.
        deadline = time.monotonic() + self.drain_timeout
        while self._inflight and self._connected and time.monotonic() < deadline:
            client.loop(self.poll_interval)
            self._flush_acks()
        ts = _now()
        for device_id in self.status_ids:
            self._publish_status(client, device_id, False, ts)
        deadline = time.monotonic() + self.drain_timeout
        while self._status_mids and self._connected and time.monotonic() < deadline:
            client.loop(self.poll_interval)
        self._flush_acks()
        client.disconnect()  # a normal DISCONNECT: the broker discards the will

    def _publish_status(self, client: mqtt.Client, device_id: str, online: bool, ts: str) -> None:
        info = client.publish(self.status_topic(device_id), _status_payload(online, ts), qos=1, retain=True)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            self._status_mids.add(info.mid)
        else:
            log.warning("edge publisher: status of %s not sent: %s", device_id, mqtt.error_string(info.rc))

    # -- paho callbacks (on the publisher thread, inside client.loop) -------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, properties: Any
    ) -> None:
        self._connack = reason
        receive_max = getattr(properties, "ReceiveMaximum", None)
        if isinstance(receive_max, int) and receive_max > 0:
            # Exceeding the broker's Receive Maximum is a protocol error that costs the connection.
            self._window = min(self.max_inflight, receive_max)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags, reason: ReasonCode, properties: Any
    ) -> None:
        was_connected = self._connected
        self._set_connected(False)
        if was_connected and not self._stop.is_set():
            log.warning(
                "edge publisher: disconnected (%s); %d message(s) in flight go again", reason, len(self._inflight)
            )

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any) -> None:
        if mid in self._status_mids:
            self._status_mids.discard(mid)
            if reason.is_failure:
                log.warning("edge publisher: broker refused a status message: %s", reason)
            return
        message = self._inflight.pop(mid, None)
        if message is None:
            return
        if reason.is_failure:
            log.error(
                "edge publisher: broker refused %s (%d reading(s)): %s; keeping them, reconnecting",
                message.topic,
                len(message.ids),
                reason,
            )
            self._broken = True
            return
        self._acked.extend(message.ids)
        metrics.PUBLISHED.labels(message.kind).inc(len(message.ids))

    # -- helpers -----------------------------------------------------------------------------------

    def _reset_flight(self) -> None:
        self._connack = None
        self._broken = False
        self._window = self.max_inflight
        self._inflight.clear()
        self._status_mids.clear()
        self._pending.clear()
        self._cursor = 0
        # self._acked survives: those rows were acknowledged and only wait for their delete.

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        metrics.BROKER_CONNECTED.set(1 if connected else 0)

    def _log_queue_error(self, exc: QueueStorageError) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= _ERROR_LOG_EVERY_S:
            self._last_error_log = now
            log.error("edge publisher: %s; retrying", exc)


def _message(topic: str, kind: str, rows: list[QueuedReading]) -> _Message:
    ids = tuple(row.id for row in rows)
    if len(rows) == 1:
        return _Message(topic, rows[0].payload, kind, ids)
    return _Message(topic, b"[" + b",".join(row.payload for row in rows) + b"]", kind, ids)
