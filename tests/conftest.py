"""Fixtures: the real local broker and TimescaleDB, a fresh test database, MQTT helpers.

The services are the ones `bondwatch services up` runs; the tests use their own database
(``bondwatch_test``, recreated per session) and a site name of their own per test, so a developer's
demo data and topics are never touched.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from bondwatch.db.migrate import migrate
from bondwatch.db.settings import DbSettings
from bondwatch.mqtt import make_client
from bondwatch.services.manager import LocalServices
from bondwatch.services.settings import ServicesSettings
from bondwatch.settings import MqttTarget, load_settings
from ingest.service import IngestService
from ingest.settings import IngestSettings

ROOT = Path(__file__).resolve().parent.parent
# One database per test session (by pid), so concurrent sessions never drop each other's.
TEST_DB = f"bondwatch_test_{os.getpid()}"
SHARED_TESTDATA = ROOT.parent / "shared" / "testdata"


@pytest.fixture(scope="session")
def services() -> LocalServices:
    local = LocalServices(load_settings(ServicesSettings))
    local.up()
    return local


@pytest.fixture(scope="session")
def test_env(services: LocalServices) -> Iterator[dict[str, str]]:
    """BONDWATCH_* variables that point every component at the test database; set for the session."""
    base = load_settings(DbSettings)
    assert base.db_admin_url and base.db_readonly_url, "services.env has no admin or read-only URL"
    admin = base.on_database("postgres").db_admin_url
    assert admin
    with psycopg.connect(admin, autocommit=True) as conn:
        for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bondwatch_test_%'").fetchall():
            pid = int(name.rsplit("_", 1)[1])
            if not Path(f"/proc/{pid}").exists():  # left by a session that died
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEST_DB}")
    test = base.on_database(TEST_DB)
    assert test.db_admin_url and test.db_readonly_url
    env = {
        "BONDWATCH_DB_URL": test.db_url,
        "BONDWATCH_DB_ADMIN_URL": test.db_admin_url,
        "BONDWATCH_DB_READONLY_URL": test.db_readonly_url,
        "BONDWATCH_MQTT_URL": base.mqtt_url,
        "BONDWATCH_INGEST_SESSION_EXPIRY_S": "600",
        "BONDWATCH_INGEST_METRICS_PORT": "0",
        "BONDWATCH_RULES_METRICS_PORT": "0",
        "BONDWATCH_LOG_LEVEL": "WARNING",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    migrate(load_settings(DbSettings))
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)")


@pytest.fixture
def db(test_env: dict[str, str]) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(test_env["BONDWATCH_DB_ADMIN_URL"], autocommit=True) as conn:
        yield conn


@pytest.fixture
def site() -> str:
    """A site of the test's own, so topics and broker sessions never mix between tests."""
    return f"t-{uuid.uuid4().hex[:10]}"


class Publisher:
    """A paho client that publishes at QoS 1 and waits until the broker has acknowledged everything."""

    def __init__(self, url: str, client_id: str) -> None:
        self.client = make_client(MqttTarget.parse(url), client_id)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        target = MqttTarget.parse(url)
        self._acked = 0
        self._sent = 0
        self._cond = threading.Condition()
        self.client.on_publish = self._on_publish
        self.client.connect(target.host, target.port)
        self.client.loop_start()

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        self._sent += 1

    def wait_acked(self, timeout: float = 60) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._acked >= self._sent, timeout):
                raise TimeoutError(f"broker acknowledged {self._acked} of {self._sent} messages")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(test_env: dict[str, str]) -> Iterator[Publisher]:
    pub = Publisher(test_env["BONDWATCH_MQTT_URL"], f"test-pub-{uuid.uuid4().hex[:8]}")
    yield pub
    pub.close()


@pytest.fixture
def ingest(site: str, test_env: dict[str, str]) -> Iterator[IngestService]:
    """An ingest worker of the test's own site, in this process."""
    service = IngestService(IngestSettings(site=site))
    service.start()
    yield service
    service.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 120.0, state: Callable[[], str] | None = None) -> None:
    """Poll until ``predicate`` holds; on time-out say what ``state`` reports, for the post-mortem."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not reached within {timeout:.0f} s" + (f": {state()}" if state else ""))
        time.sleep(0.2)


def shared_testdata(*parts: str) -> Path:
    """A file of ../shared/testdata, or a clean skip where the folder is absent."""
    path = SHARED_TESTDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not present: {path}")
    return path
