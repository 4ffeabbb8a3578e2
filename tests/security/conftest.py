"""A private Mosquitto for the security tests, and MQTT helpers that report what the broker answered.

Provisioning rewrites a broker's password file and ACL and reloads it, so these tests run their
own broker instance (same binary, same configuration code as `bondwatch services up`, own folder,
own free ports) instead of touching the shared one that the rest of the suite uses. Its TLS
listener has a certificate for ``localhost`` only, from a CA of the test's own, so that one broker
also shows that a client checks the name.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from bondwatch.mqtt import make_client
from bondwatch.provision import BrokerAuth, Plan, ProvisionSettings, provision
from bondwatch.services.manager import LocalServices
from bondwatch.services.mosquitto import Mosquitto
from bondwatch.services.secrets import MQTT_USER, load_or_create
from bondwatch.settings import MqttTarget

PROTOCOLS = [pytest.param(mqtt.MQTTv311, id="mqtt311"), pytest.param(mqtt.MQTTv5, id="mqtt5")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PrivateBroker:
    broker: Mosquitto
    service_password: str

    @property
    def plain_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.broker.port}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://localhost:{self.broker.tls_port}"

    @property
    def service_url(self) -> str:
        return f"mqtt://{MQTT_USER}:{self.service_password}@127.0.0.1:{self.broker.port}"

    @property
    def ca_file(self) -> Path:
        return self.broker.pki.ca_cert

    def auth(self) -> BrokerAuth:
        return BrokerAuth(self.broker.passwd_file, self.broker.acl_file, self.tls_url, self.ca_file, self.broker.reload)

    def settings(self, site: str) -> ProvisionSettings:
        return ProvisionSettings(site=site, mqtt_url=self.service_url)

    def provision(self, site: str, **kwargs: object) -> Plan:
        result, _, _ = provision(self.settings(site), self.auth(), **kwargs)  # type: ignore[arg-type]
        return result


@pytest.fixture(scope="session")
def private_broker(services: LocalServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    secrets = load_or_create(services.settings)
    broker = Mosquitto(
        services.runtime,
        services.settings,
        name=f"test-security-{os.getpid()}",
        port=free_port(),
        tls_port=free_port(),
        pki_folder=tmp_path_factory.mktemp("pki"),
        tls_hosts=("localhost",),
    )
    broker.start(secrets)
    try:
        yield PrivateBroker(broker, secrets.mqtt_password)
    finally:
        broker.stop()
        shutil.rmtree(broker.host_dir, ignore_errors=True)


@dataclass
class Session:
    """A connected client and everything the broker said to it."""

    client: mqtt.Client
    connack: ReasonCode
    received: list[tuple[str, bytes]] = field(default_factory=list)
    pubacks: dict[int, ReasonCode] = field(default_factory=dict)
    subacks: dict[int, list[ReasonCode]] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code (always Success under MQTT 3.1.1)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self.cond:
            assert self.cond.wait_for(lambda: info.mid in self.pubacks, 10), f"no PUBACK for {topic}"
            return self.pubacks[info.mid]

    def subscribe(self, topic: str) -> list[ReasonCode]:
        result, mid = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS and mid is not None
        with self.cond:
            assert self.cond.wait_for(lambda: mid in self.subacks, 10), f"no SUBACK for {topic}"
            return self.subacks[mid]

    def wait_received(self, topic: str, timeout: float = 10) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: any(t == topic for t, _ in self.received), timeout), (
                f"nothing arrived on {topic}; got {[t for t, _ in self.received]}"
            )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    url: str,
    username: str | None = None,
    password: str | None = None,
    protocol: MQTTProtocolVersion = mqtt.MQTTv5,
    ca_file: Path | None = None,
) -> Session:
    """Connect and wait for the CONNACK; the session is returned whether the broker accepted or not."""
    target = MqttTarget.parse(url)
    if ca_file is not None:
        target = dataclasses.replace(target, ca_file=str(ca_file))
    if username is not None:
        target = dataclasses.replace(target, username=username, password=password)
    if protocol == mqtt.MQTTv5:
        client = make_client(target, f"test-sec-{uuid.uuid4().hex[:8]}")
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-sec-{uuid.uuid4().hex[:8]}", protocol=protocol
        )
        if target.tls:
            client.tls_set(ca_certs=target.ca_file)
        if target.username is not None:
            client.username_pw_set(target.username, target.password)
    client.reconnect_delay_set(60, 120)  # a refused client must not retry during the test
    answer: list[ReasonCode] = []
    session = Session(client, ReasonCode(PacketTypes.CONNACK, "Success"))

    def on_connect(c: mqtt.Client, userdata: object, flags: object, rc: ReasonCode, props: object) -> None:
        with session.cond:
            answer.append(rc)
            session.cond.notify_all()

    def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with session.cond:
            session.received.append((msg.topic, bytes(msg.payload)))
            session.cond.notify_all()

    def on_publish(c: mqtt.Client, userdata: object, mid: int, rc: ReasonCode, props: object) -> None:
        with session.cond:
            session.pubacks[mid] = rc
            session.cond.notify_all()

    def on_subscribe(c: mqtt.Client, userdata: object, mid: int, rcs: list[ReasonCode], props: object) -> None:
        with session.cond:
            session.subacks[mid] = rcs
            session.cond.notify_all()

    client.on_connect = on_connect
    client.on_message = on_message
    client.on_publish = on_publish
    client.on_subscribe = on_subscribe
    client.connect(target.host, target.port, keepalive=30)
    client.loop_start()
    with session.cond:
        if not session.cond.wait_for(lambda: bool(answer), 10):
            session.close()
            raise AssertionError("no CONNACK within 10 s")
    session.connack = answer[0]
    return session


def connack(
    url: str, username: str | None, password: str | None, protocol: MQTTProtocolVersion = mqtt.MQTTv5
) -> ReasonCode:
    session = connect(url, username, password, protocol)
    session.close()
    return session.connack


def wait_login(url: str, username: str, password: str, accepted: bool = True, timeout: float = 10) -> None:
    """The broker re-reads its files on SIGHUP, a moment after provisioning returns: wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        rc = connack(url, username, password)
        if rc.is_failure != accepted:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"login {username}: still {rc} after {timeout:.0f} s")
        time.sleep(0.1)
