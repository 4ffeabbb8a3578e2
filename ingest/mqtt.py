"""The broker side of ingest: a persistent-session, manual-PUBACK subscriber (shared by several workers).

Messages leave this module as :class:`InboundMessage`; paho's own types stay inside. A message is
acknowledged only through :meth:`Subscriber.ack`, which the worker calls after the database commit,
so a crash anywhere before it makes the broker deliver the message again.

The subscriber runs on the worker's own thread (no paho background thread). Measured on a 2-core
machine: a paho network thread beside a CPU-busy writer thread in one process spent ~150 µs of CPU
per message on GIL hand-offs; reading, validating and writing in one thread costs ~70 µs.

MQTT 3.1.1 with a persistent session is the default: paho's MQTT 5 path cost ~20 µs more per
message (property parsing) for nothing ingest uses. The broker's ``max_inflight_messages`` bounds
the unacknowledged window under 3.1.1; under 5 the Receive Maximum does.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from bondwatch.contract.topics import device_subscriptions
from bondwatch.mqtt import make_client
from bondwatch.settings import MqttTarget
from ingest import metrics
from ingest.errors import BrokerUnavailable
from ingest.settings import IngestSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: float  # platform clock, epoch seconds
    session: int  # connection generation: a PUBACK is only valid on the connection that received it


@dataclass(frozen=True)
class Subscription:
    """Who subscribes to a site's telemetry, and how: ingest's workers and the rules engine each have one."""

    mqtt: MqttTarget
    site: str
    client_id: str
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    session_expiry_s: int = 7 * 24 * 3600
    inflight: int = 10_000
    share_group: str | None = None  # None: a plain subscription (restored by the broker after its restart)
    on_connection: Callable[[bool], None] | None = None

    @classmethod
    def for_ingest(cls, settings: IngestSettings) -> Subscription:
        return cls(
            mqtt=settings.mqtt,
            site=settings.site,
            client_id=settings.client_id(),
            protocol=settings.ingest_mqtt_protocol,
            session_expiry_s=settings.ingest_session_expiry_s,
            inflight=settings.ingest_inflight,
            share_group=settings.ingest_share_group if settings.ingest_shared else None,
            on_connection=lambda up: metrics.CONNECTED.set(1 if up else 0),
        )


class Subscriber:
    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.client_id = subscription.client_id
        self._session = 0
        self._connected = False
        self._refused: str | None = None
        self._received: list[InboundMessage] = []
        self._client = make_client(
            subscription.mqtt, self.client_id, manual_ack=True, persistent_v311=subscription.protocol == "3.1.1"
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    @property
    def session(self) -> int:
        return self._session

    def is_connected(self) -> bool:
        return self._connected

    def connect(self, timeout: float = 30.0) -> None:
        """Connect (or reconnect) and subscribe; BrokerUnavailable if the broker refuses or is away."""
        sub = self.subscription
        target = sub.mqtt
        self._refused = None
        try:
            if self._session == 0:
                if sub.protocol == "5":
                    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                    props.SessionExpiryInterval = sub.session_expiry_s
                    props.ReceiveMaximum = sub.inflight
                    self._client.connect(target.host, target.port, keepalive=30, clean_start=False, properties=props)
                else:
                    self._client.connect(target.host, target.port, keepalive=30)
            else:
                self._client.reconnect()
        except OSError as exc:
            raise BrokerUnavailable(self.client_id, str(exc)) from exc
        deadline = time.monotonic() + timeout
        while not self._connected:
            if self._refused:
                raise BrokerUnavailable(self.client_id, self._refused)
            if time.monotonic() > deadline:
                raise BrokerUnavailable(self.client_id, f"no CONNACK within {timeout:.0f} s")
            self._wait_socket(0.1)
            if self._client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
                raise BrokerUnavailable(self.client_id, "connection closed during CONNECT")

    def poll(self, max_messages: int, wait_s: float) -> list[InboundMessage]:
        """Messages read from the socket: up to ``max_messages``, waiting at most ``wait_s``.

        Raises BrokerUnavailable when the connection is lost; nothing read is lost with it,
        since none of it has been acknowledged.
        """
        client = self._client
        deadline = time.monotonic() + wait_s
        while len(self._received) < max_messages:
            before = len(self._received)
            rc = client.loop_read()
            if rc != mqtt.MQTT_ERR_SUCCESS or not self._connected:
                raise BrokerUnavailable(self.client_id, mqtt.error_string(rc) if rc else "connection lost")
            if len(self._received) == before:  # the socket had no whole packet
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wait_socket(left)
        client.loop_misc()  # keepalive
        out, self._received = self._received, []
        return out

    def _wait_socket(self, timeout: float) -> None:
        """Block until the socket is readable (or writable with output pending).

        paho's own loop() would do this too, but it also creates a wake-up socket pair that then
        costs a syscall for every PUBACK; this subscriber never needs waking from another thread.
        """
        sock = self._client.socket()
        if sock is None:
            raise BrokerUnavailable(self.client_id, "no socket")
        writing = self._client.want_write()
        select.select([sock], [sock] if writing else [], [], timeout)
        if writing:
            self._client.loop_write()

    def ack(self, messages: list[InboundMessage]) -> int:
        """PUBACK each message (in receive order) that came on the current connection."""
        current = self._session
        sent = 0
        for message in messages:
            if message.qos > 0 and message.session == current:
                self._client.ack(message.mid, message.qos)
                sent += 1
        return sent

    def close(self) -> None:
        if self._connected:
            self._client.disconnect()

    def reconnect(self, stop: threading.Event) -> None:
        """Connect again, retrying until connected or told to stop."""
        delay = 0.25
        while not stop.wait(delay):
            try:
                self.connect()
                return
            except BrokerUnavailable as exc:
                log.error("%s; retrying in %.1f s", exc, delay)
                # Short: after a broker restart every second without our subscription is a second
                # in which shared-subscription messages would reach nobody.
                delay = min(delay * 2, 1.0)

    # paho callbacks, run inside loop_read() on the worker's thread
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            log.error("%s: broker refused connection: %s", self.client_id, reason)
            return
        self._session += 1
        sub = self.subscription
        prefix = f"$share/{sub.share_group}/" if sub.share_group else ""
        topics = [(f"{prefix}{t}", 1) for t in device_subscriptions(sub.site)]
        client.subscribe(topics)
        if sub.on_connection is not None:
            sub.on_connection(True)
        self._connected = True
        log.info(
            "%s: connected (session present: %s), subscribed to %s",
            self.client_id,
            flags.session_present,
            ", ".join(t for t, _ in topics),
        )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected = False
        if self.subscription.on_connection is not None:
            self.subscription.on_connection(False)
        log.warning(
            "%s: disconnected from broker (%s); unacknowledged messages will be redelivered", self.client_id, reason
        )

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self._received.append(
            InboundMessage(msg.topic, bytes(msg.payload), msg.mid, msg.qos, time.time(), self._session)
        )
