"""The broker side of ingest: a persistent-session, shared-subscription, manual-PUBACK subscriber.

Messages leave this module as :class:`InboundMessage`; paho's own types stay inside. A message is
acknowledged only through :meth:`Subscriber.ack`, which the worker calls after the database commit,
so a crash anywhere before it makes the broker deliver the message again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from bondwatch.contract.topics import device_subscriptions
from bondwatch.mqtt import make_client
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


class Subscriber:
    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.client_id = settings.client_id()
        self.inbox: queue.SimpleQueue[InboundMessage] = queue.SimpleQueue()
        self._session = 0
        self._connected = threading.Event()
        self._refused: str | None = None
        self._client = make_client(settings.mqtt, self.client_id, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    @property
    def session(self) -> int:
        return self._session

    def start(self, timeout: float = 30.0) -> None:
        target = self.settings.mqtt
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.ingest_session_expiry_s
        props.ReceiveMaximum = self.settings.ingest_batch_messages
        try:
            self._client.connect(target.host, target.port, keepalive=30, clean_start=False, properties=props)
        except OSError as exc:
            raise BrokerUnavailable(self.client_id, str(exc)) from exc
        self._client.loop_start()
        deadline = time.monotonic() + timeout
        while not self._connected.wait(0.1):
            if self._refused or time.monotonic() > deadline:
                self.stop()
                raise BrokerUnavailable(self.client_id, self._refused or f"no CONNACK within {timeout:.0f} s")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, messages: list[InboundMessage]) -> int:
        """PUBACK each message (in receive order) that came on the current connection."""
        current = self._session
        sent = 0
        for message in messages:
            if message.qos > 0 and message.session == current:
                self._client.ack(message.mid, message.qos)
                sent += 1
        return sent

    def is_connected(self) -> bool:
        return self._connected.is_set()

    # paho callbacks, on paho's network thread
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            log.error("%s: broker refused connection: %s", self.client_id, reason)
            return
        self._session += 1
        group = self.settings.ingest_share_group
        topics = [(f"$share/{group}/{t}", SubscribeOptions(qos=1)) for t in device_subscriptions(self.settings.site)]
        client.subscribe(topics)
        metrics.CONNECTED.set(1)
        self._connected.set()
        log.info("%s: connected (session present: %s), subscribed to %s", self.client_id,
                 flags.session_present, ", ".join(t for t, _ in topics))

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:
        self._connected.clear()
        metrics.CONNECTED.set(0)
        log.warning("%s: disconnected from broker (%s); unacknowledged messages will be redelivered",
                    self.client_id, reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.inbox.put(InboundMessage(msg.topic, msg.payload, msg.mid, msg.qos, time.time(), self._session))
