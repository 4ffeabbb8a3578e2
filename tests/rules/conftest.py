"""Fixtures of the rules tests: an engine of the test's own site, a listener on what it publishes, the API."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, create_token
from api.settings import ApiSettings
from bondwatch.db.settings import DbSettings
from bondwatch.mqtt import make_client
from bondwatch.settings import MqttTarget, load_settings
from rules.service import RulesService
from rules.settings import RulesSettings


def rules_settings(site: str, **overrides: Any) -> RulesSettings:
    values: dict[str, Any] = {
        "site": site,
        "rules_startup_grace_s": 1.0,
        "rules_tick_s": 0.2,
        "rules_metrics_port": 0,
        **overrides,
    }
    return load_settings(RulesSettings, **values)


def start_rules(settings: RulesSettings) -> RulesService:
    service = RulesService(settings)
    service.start()
    assert service.ready.wait(30), "the rules engine did not start"
    return service


@pytest.fixture
def rules(site: str, test_env: dict[str, str]) -> Iterator[RulesService]:
    service = start_rules(rules_settings(site))
    yield service
    service.stop()


@dataclass(frozen=True)
class Heard:
    topic: str
    body: dict[str, Any]
    at: float  # monotonic arrival
    wall: float  # epoch seconds at arrival


class Outbox:
    """Everything the platform publishes for a site: alerts and gate decisions, in arrival order."""

    def __init__(self, url: str, site: str) -> None:
        self.messages: list[Heard] = []
        self._lock = threading.Lock()
        target = MqttTarget.parse(url)
        self.client = make_client(target, f"test-outbox-{uuid.uuid4().hex[:8]}")
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(target.host, target.port)
        self.client.loop_start()
        self.client.subscribe([(f"bw/v1/{site}/alerts/#", 1), (f"bw/v1/{site}/gate/+/decision", 1)])
        assert subscribed.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Heard(msg.topic, orjson.loads(msg.payload), time.monotonic(), time.time()))

    def alerts(self, subject_id: str | None = None, type_: str | None = None) -> list[dict[str, Any]]:
        """Alert events in order; delivery is at least once, so a repeat (same event_id) counts once."""
        with self._lock:
            events = {
                m.body["event_id"]: m.body
                for m in self.messages
                if "/alerts/" in m.topic
                and (subject_id is None or m.body["subject_id"] == subject_id)
                and (type_ is None or m.body["type"] == type_)
            }
        return [events[k] for k in sorted(events)]

    def decisions(self, gate_id: str | None = None) -> list[Heard]:
        """Gate decisions, first delivery of each passage."""
        with self._lock:
            first: dict[str, Heard] = {}
            for m in self.messages:
                if m.topic.endswith("/decision") and (gate_id is None or f"/gate/{gate_id}/" in m.topic):
                    first.setdefault(m.body["passage_id"], m)
        return list(first.values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def outbox(site: str, test_env: dict[str, str]) -> Iterator[Outbox]:
    box = Outbox(test_env["BONDWATCH_MQTT_URL"], site)
    yield box
    box.close()


@pytest.fixture
def api(test_env: dict[str, str]) -> Iterator[TestClient]:
    """The API as a dispatcher with admin rights (registry writes, acknowledgements)."""
    token = create_token(load_settings(DbSettings), Role.admin, f"rules-test-{uuid.uuid4().hex[:6]}")
    with TestClient(create_app(load_settings(ApiSettings))) as client:
        client.base_url = client.base_url.join("/api/v1")
        client.headers["Authorization"] = f"Bearer {token}"
        yield client
