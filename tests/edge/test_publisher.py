"""The edge publisher against the real local broker: replay in batches, status and last will, outages.

Outages are made without touching the shared broker: the publisher talks to it through a small TCP
relay that the test closes (a closed port) or cuts (connections dropped without DISCONNECT, as a pulled
cable or a crashed process would).
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from prometheus_client import REGISTRY

from bondwatch.contract.payloads import validate_payload
from bondwatch.contract.topics import parse_device_topic
from bondwatch.mqtt import make_client
from bondwatch.settings import MqttTarget
from edge.publisher import EdgePublisher
from edge.queue import EdgeQueue
from edge.readings import Position, Reading, TagRead, Temperature, payload
from tests.conftest import Publisher

TS = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
DEVICES = [("temp", "cold-1"), ("gps", "truck-1"), ("rfid", "gate-1"), ("temp", "cold-2")]


def reading(kind: str, i: int) -> Reading:
    ts = TS + timedelta(seconds=i)
    if kind == "temp":
        return Temperature(ts=ts, temp_c=4.0 + (i % 10) / 10, rh_pct=55.0)
    if kind == "gps":
        return Position(ts=ts, lat=39.6 + i * 1e-5, lon=109.8, fix="3d", speed_kmh=30.0)
    return TagRead(ts=ts, epc=f"E280116060000208{i:08X}", antenna=1, gate_id="gate-1", direction="out")


def fill(queue: EdgeQueue, count: int, start: int = 0) -> set[tuple[str, int]]:
    """Queue ``count`` readings round-robin over DEVICES; the (device_id, seq) pairs they got."""
    items = [(kind, dev, reading(kind, start + i)) for i, (kind, dev) in ((i, DEVICES[i % 4]) for i in range(count))]
    seqs = queue.put_many(items)
    return {(dev, seq) for (_, dev, _), seq in zip(items, seqs, strict=True)}


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(0.02)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def published_total() -> float:
    return sum(metric("bondwatch_edge_published_total", kind=k) for k in ("gps", "temp", "rfid"))


class Subscriber:
    """A real MQTT subscriber that records every message it gets, in arrival order."""

    def __init__(self, url: str, topic: str) -> None:
        self.client = make_client(MqttTarget.parse(url), f"test-sub-{uuid.uuid4().hex[:8]}")
        self.messages: list[mqtt.MQTTMessage] = []
        self._readings: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._on_message
        target = MqttTarget.parse(url)
        self.client.connect(target.host, target.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = parse_device_topic(message.topic)
        seen: list[tuple[str, int]] = []
        if topic.kind != "status":
            data = orjson.loads(message.payload)
            seen = [(topic.device_id, item["seq"]) for item in (data if isinstance(data, list) else [data])]
        with self._lock:
            self.messages.append(message)
            self._readings.extend(seen)

    def snapshot(self) -> list[mqtt.MQTTMessage]:
        with self._lock:
            return list(self.messages)

    def readings(self) -> list[tuple[str, int]]:
        """(device_id, seq) of every reading received, in arrival order, repeats included."""
        with self._lock:
            return list(self._readings)

    def statuses(self, device_id: str) -> list[dict[str, Any]]:
        return [orjson.loads(m.payload) for m in self.snapshot() if m.topic.endswith(f"/status/{device_id}")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained_statuses(url: str, site: str, count: int) -> dict[str, dict[str, Any]]:
    """The retained status of each device, as a newcomer sees it."""
    sub = Subscriber(url, f"bw/v1/{site}/status/+")
    try:
        wait_for(lambda: len(sub.snapshot()) >= count, 5, "retained statuses")
        messages = sub.snapshot()
        assert all(m.retain for m in messages)
        return {m.topic.rsplit("/", 1)[1]: orjson.loads(m.payload) for m in messages}
    finally:
        sub.close()


class Relay:
    """A TCP relay in front of the real broker that a test switches off.

    Before the first :meth:`up` nothing listens on its port (connection refused). Later outages keep
    the port bound, since a port just used by cut links cannot always be bound again at once, and
    reset every connection instead.
    """

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._listener: socket.socket | None = None
        self._open = False
        self._links: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        with self._lock:
            self._open = True
        if self._listener is None:
            self._listener = socket.socket()
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind(("127.0.0.1", self.port))
            self._listener.listen()
            self._listener.settimeout(0.05)  # accept() polls: closing a socket does not wake a blocked accept
            threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut every link abruptly: no DISCONNECT reaches the broker."""
        with self._lock:
            self._open = False
            links, self._links = self._links, []
        for sock in links:
            _reset(sock)

    def close(self) -> None:
        self.down()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                _reset(conn)
                continue
            with self._lock:
                if not self._open:
                    _reset(conn)
                    _reset(upstream)
                    continue
                self._links += [conn, upstream]
            for sock in (conn, upstream):  # as paho and the broker do; Nagle would stall every round trip
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _reset(sock: socket.socket) -> None:
    # Linger 0: close sends RST, as a crash or a pulled cable looks to the other side.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def url(test_env: dict[str, str]) -> str:
    return test_env["BONDWATCH_MQTT_URL"]


@pytest.fixture
def watch(url: str, site: str, publisher: Publisher) -> Iterator[Subscriber]:
    """Everything published under the test's site; retained statuses are cleared afterwards."""
    sub = Subscriber(url, f"bw/v1/{site}/#")
    yield sub
    sub.close()
    for topic in {m.topic for m in sub.snapshot() if "/status/" in m.topic}:
        publisher.publish(topic, b"", retain=True)
    publisher.wait_acked(10)


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[EdgeQueue]:
    q = EdgeQueue(tmp_path / "queue.db")
    yield q
    q.close()


def test_replays_the_queue_in_batches_with_status(url: str, site: str, watch: Subscriber, queue: EdgeQueue) -> None:
    expected = fill(queue, 1200)
    before = published_total()
    gateway = f"gw-{site}"
    pub = EdgePublisher(MqttTarget.parse(url), gateway, site, queue, [d for _, d in DEVICES], batch_max=50)
    pub.start()
    try:
        wait_for(lambda: len(watch.readings()) >= len(expected) and queue.depth() == 0, what="replay")
        assert pub.connected and metric("bondwatch_edge_broker_connected") == 1

        got = watch.readings()
        assert set(got) == expected and len(got) == len(expected)  # no reconnect, so no repeats either
        for _, device in DEVICES:  # each device's readings arrive in seq order
            seqs = [s for d, s in got if d == device]
            assert seqs == sorted(seqs)
        sizes = []
        for m in watch.snapshot():
            topic = parse_device_topic(m.topic)
            items = validate_payload(topic.kind, bytes(m.payload))  # the platform's own contract check
            if topic.kind == "status":
                continue
            data = orjson.loads(m.payload)
            sizes.append(len(data) if isinstance(data, list) else 1)
            assert isinstance(data, list) == (len(items) > 1)
            index = [d for _, d in DEVICES].index(topic.device_id)
            for item in data if isinstance(data, list) else [data]:  # each item is its reading, untouched
                assert item == payload(reading(topic.kind, item["seq"] * len(DEVICES) + index), item["seq"])
        assert max(sizes) == 50 and sum(sizes) == 1200 and len(sizes) <= 1200 // 50 + len(DEVICES)
        assert published_total() - before == 1200

        # The gateway and every device announced themselves online, retained, with one ts.
        online = retained_statuses(url, site, 1 + len(DEVICES))
        assert set(online) == {gateway, *(d for _, d in DEVICES)}
        assert {s["online"] for s in online.values()} == {True}
        assert len({s["ts"] for s in online.values()}) == 1

        # Live traffic goes out at once, as a single object.
        (fresh,) = fill(queue, 1, start=5000)
        wait_for(lambda: fresh in watch.readings(), 2, "live reading")
        assert isinstance(orjson.loads(watch.snapshot()[-1].payload), dict)
        wait_for(lambda: queue.depth() == 0, 2, "empty queue")
    finally:
        pub.stop()
    assert metric("bondwatch_edge_broker_connected") == 0
    offline = retained_statuses(url, site, 1 + len(DEVICES))
    assert {s["online"] for s in offline.values()} == {False}


def test_broker_unreachable_then_reachable_and_a_cut_mid_replay(
    url: str, site: str, watch: Subscriber, queue: EdgeQueue
) -> None:
    target = MqttTarget.parse(url)
    relay = Relay(target.host, target.port)  # not listening yet: a closed port
    expected = fill(queue, 2000)
    pub = EdgePublisher(
        dataclasses.replace(target, host="127.0.0.1", port=relay.port),
        f"gw-{site}",
        site,
        queue,
        ["cold-1"],
        batch_max=5,
        max_inflight=4,  # many round trips, so the cut below lands mid-replay
        min_backoff=0.05,
        max_backoff=0.2,
    )
    pub.start()
    try:
        time.sleep(0.6)  # several refused attempts
        assert queue.depth() == 2000 and watch.readings() == []
        assert not pub.connected and metric("bondwatch_edge_broker_connected") == 0

        relay.up()
        wait_for(lambda: set(watch.readings()) == expected and queue.depth() == 0, what="replay after outage")
        assert pub.connected

        expected |= fill(queue, 10_000, start=2000)
        wait_for(lambda: len(watch.readings()) >= 2200, what="second replay under way")
        relay.down()
        depth_at_cut = queue.depth()
        assert depth_at_cut > 0, "the replay finished before the cut; make it longer"
        wait_for(lambda: metric("bondwatch_edge_broker_connected") == 0, 5, "disconnect noticed")
        time.sleep(0.3)  # the subscriber has what the broker got
        # Whatever the broker did not get is still queued: rows go only on PUBACK.
        queued = {(r.device_id, r.seq) for r in queue.peek(100_000)}
        assert expected - set(watch.readings()) <= queued
        assert queue.depth() == len(queued) > 0

        relay.up()
        wait_for(lambda: queue.depth() == 0 and set(watch.readings()) >= expected, what="replay after the cut")
        assert set(watch.readings()) == expected  # repeats allowed, losses not
    finally:
        pub.stop()
        relay.close()


def test_last_will_marks_the_gateway_offline(url: str, site: str, watch: Subscriber, queue: EdgeQueue) -> None:
    target = MqttTarget.parse(url)
    relay = Relay(target.host, target.port)
    relay.up()
    gateway = f"gw-{site}"
    pub = EdgePublisher(
        dataclasses.replace(target, host="127.0.0.1", port=relay.port),
        gateway,
        site,
        queue,
        ["cold-1"],
        min_backoff=0.05,
        max_backoff=0.2,
    )
    pub.start()
    try:
        wait_for(lambda: [s["online"] for s in watch.statuses(gateway)] == [True], 10, "gateway online")
        online_ts = watch.statuses(gateway)[0]["ts"]

        relay.down()  # the link dies without a DISCONNECT: the broker publishes the will
        wait_for(lambda: [s["online"] for s in watch.statuses(gateway)] == [True, False], 10, "last will")
        will = watch.statuses(gateway)[1]
        assert will["ts"] == online_ts  # never older than the online message it overrides
        retained = retained_statuses(url, site, 2)
        assert retained[gateway]["online"] is False
        assert retained["cold-1"]["online"] is True  # devices have no will; their gateway's status counts

        fresh = fill(queue, 4)
        relay.up()
        wait_for(lambda: [s["online"] for s in watch.statuses(gateway)][-1:] == [True], 10, "gateway back online")
        wait_for(lambda: set(watch.readings()) >= fresh and queue.depth() == 0, 10, "readings after reconnect")
    finally:
        pub.stop()
        relay.close()
    assert [s["online"] for s in watch.statuses(gateway)][-1] is False
