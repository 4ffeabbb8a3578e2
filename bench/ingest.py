"""Ingest throughput: BondWatch end to end against the broker's own ceiling and a naive pipeline.

All three are measured in the same run on the same machine, broker and database:

1. ceiling   - Mosquitto's C clients, QoS 0: ``mosquitto_pub -l`` publishers -> broker -> ``mosquitto_sub``.
2. bondwatch - the same publishers at QoS 1 -> broker -> ``bondwatch ingest`` workers (shared
               subscription, COPY batches, PUBACK after commit) -> rows committed in TimescaleDB.
3. naive     - the same publishers at QoS 1 -> one paho subscriber (MQTT 5, auto-ack) ->
               json.loads + one INSERT per message with autocommit.

Messages are contract ``temp`` readings of ~150 bytes from ``--devices`` devices. Each figure is
messages per second from the first publish to the last message delivered (1) or committed (2, 3);
(2) and (3) also check that exactly the published readings are in the database (zero loss).

    python -m bench.ingest [--messages 200000] [--naive-messages 20000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
from rich.console import Console
from rich.table import Table

from bondwatch.db.settings import DbSettings
from bondwatch.mqtt import make_client
from bondwatch.services.manager import LocalServices
from bondwatch.services.settings import ServicesSettings
from bondwatch.settings import load_settings

console = Console()


@dataclass
class Result:
    name: str
    messages: int
    delivered: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0


def payload_lines(device: int, count: int, start_ms: int) -> bytes:
    lines = [
        orjson.dumps(
            {
                "ts": start_ms + i * 1000,
                "seq": i,
                "temp_c": round(2.0 + (i % 40) / 10, 1),
                "rh_pct": 85.0,
                "door_open": False,
                "battery_v": 3.61,
            }
        )
        for i in range(count)
    ]
    return b"\n".join(lines) + b"\n"


class Publishers:
    """One ``mosquitto_pub -l`` per device, each fed its lines on stdin."""

    def __init__(self, services: LocalServices, site: str, devices: int, per_device: int, qos: int) -> None:
        self.settings = load_settings(ServicesSettings)
        self.target = load_settings(DbSettings).mqtt
        self.tool = services.mosquitto.client_tool("mosquitto_pub")
        self.jobs = [
            (f"bw/v1/{site}/temp/bench-{d:03d}", payload_lines(d, per_device, 1_764_000_000_000))
            for d in range(devices)
        ]
        self.qos = qos

    def run(self) -> None:
        procs = []
        for topic, data in self.jobs:
            argv = [
                *self.tool,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.target.port),
                "-u",
                self.target.username or "",
                "-P",
                self.target.password or "",
                "-V",
                "mqttv5",
                "-q",
                str(self.qos),
                "-M",
                "1000",
                "-t",
                topic,
                "-l",
            ]
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            procs.append((proc, data))
        feeders = [threading.Thread(target=self._feed, args=(p, d)) for p, d in procs]
        for f in feeders:
            f.start()
        for f in feeders:
            f.join()
        for proc, _ in procs:
            if proc.wait() != 0:
                raise RuntimeError(f"mosquitto_pub failed: {proc.stderr.read().decode() if proc.stderr else ''}")

    @staticmethod
    def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
        assert proc.stdin is not None
        proc.stdin.write(data)
        proc.stdin.close()


def ceiling(services: LocalServices, devices: int, per_device: int) -> Result:
    site = f"bench-{uuid.uuid4().hex[:6]}"
    total = devices * per_device
    target = load_settings(DbSettings).mqtt
    sub = subprocess.Popen(
        [
            *services.mosquitto.client_tool("mosquitto_sub"),
            "-h",
            "127.0.0.1",
            "-p",
            str(target.port),
            "-u",
            target.username or "",
            "-P",
            target.password or "",
            "-V",
            "mqttv5",
            "-q",
            "0",
            "-t",
            f"bw/v1/{site}/temp/+",
            "-C",
            str(total),
            "-W",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    counted = [0]

    def count() -> None:
        assert sub.stdout is not None
        for _ in sub.stdout:
            counted[0] += 1

    reader = threading.Thread(target=count)
    reader.start()
    start = time.perf_counter()
    Publishers(services, site, devices, per_device, qos=0).run()
    reader.join()
    sub.wait()
    return Result("broker ceiling (C clients, QoS 0)", total, counted[0], time.perf_counter() - start)


def wait_rows(db_url: str, site: str, total: int, stall_s: float = 15.0) -> tuple[int, float]:
    """Poll until ``total`` rows are committed or progress stalls; returns (rows, time of last row)."""
    rows, last_change = -1, time.perf_counter()
    with psycopg.connect(db_url, autocommit=True) as conn:
        while True:
            n = conn.execute("SELECT count(*) FROM temperatures WHERE device_id LIKE 'bench-%'").fetchone()[0]  # type: ignore[index]
            now = time.perf_counter()
            if n != rows:
                rows, last_change = n, now
            if rows >= total or now - last_change > stall_s:
                return rows, last_change
            time.sleep(0.25)  # polling costs the database CPU the pipeline needs


def reset_bench_rows(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM temperatures WHERE device_id LIKE 'bench-%'")
        conn.execute("DELETE FROM device_latest WHERE device_id LIKE 'bench-%'")


def bondwatch(services: LocalServices, devices: int, per_device: int, workers: int, db_url: str) -> Result:
    site = f"bench-{uuid.uuid4().hex[:6]}"
    total = devices * per_device
    reset_bench_rows(db_url)
    env = {
        **os.environ,
        "BONDWATCH_SITE": site,
        "BONDWATCH_INGEST_SESSION_EXPIRY_S": "60",
        "BONDWATCH_INGEST_METRICS_PORT": "0",
        "BONDWATCH_LOG_LEVEL": "WARNING",
    }
    ingest = subprocess.Popen(
        [str(Path(sys.executable).with_name("bondwatch")), "ingest", "--workers", str(workers)], env=env
    )
    try:
        time.sleep(3.0)  # workers connected and subscribed
        start = time.perf_counter()
        Publishers(services, site, devices, per_device, qos=1).run()
        rows, done = wait_rows(db_url, site, total)
        return Result(f"bondwatch ingest ({workers} workers, QoS 1, COPY)", total, rows, done - start)
    finally:
        ingest.terminate()
        ingest.wait(timeout=30)


def naive(services: LocalServices, devices: int, per_device: int, db_url: str) -> Result:
    site = f"bench-{uuid.uuid4().hex[:6]}"
    total = devices * per_device
    reset_bench_rows(db_url)
    target = load_settings(DbSettings).mqtt
    conn = psycopg.connect(db_url, autocommit=True)

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        data: dict[str, Any] = json.loads(msg.payload)
        conn.execute(
            "INSERT INTO temperatures (ts, device_id, seq, temp_c, rh_pct, door_open, battery_v) "
            "VALUES (to_timestamp(%s / 1000.0), %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                data["ts"],
                msg.topic.rsplit("/", 1)[1],
                data["seq"],
                data["temp_c"],
                data["rh_pct"],
                data["door_open"],
                data["battery_v"],
            ),
        )

    client = make_client(target, f"bench-naive-{site}")
    client.on_message = on_message
    client.connect(target.host, target.port)
    client.subscribe(f"bw/v1/{site}/temp/+", qos=1)
    client.loop_start()
    try:
        time.sleep(1.0)
        start = time.perf_counter()
        Publishers(services, site, devices, per_device, qos=1).run()
        rows, done = wait_rows(db_url, site, total)
        return Result("naive paho + INSERT per message", total, rows, done - start)
    finally:
        client.disconnect()
        client.loop_stop()
        conn.close()
        reset_bench_rows(db_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--naive-messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    services = LocalServices(load_settings(ServicesSettings))
    services.up()
    db_url = load_settings(DbSettings).db_url
    per = args.messages // args.devices
    console.print(
        f"[bold]ingest benchmark[/]: {args.devices * per} messages from {args.devices} devices, "
        f"{os.cpu_count()} cores, broker and database on this machine"
    )
    results = [ceiling(services, args.devices, per)]
    console.print(f"  measured: {results[-1].name}")
    results.append(bondwatch(services, args.devices, per, args.workers, db_url))
    console.print(f"  measured: {results[-1].name}")
    results.append(naive(services, args.devices, args.naive_messages // args.devices, db_url))
    console.print(f"  measured: {results[-1].name}")
    reset_bench_rows(db_url)

    table = Table("pipeline", "messages", "delivered", "seconds", "msg/s")
    for r in results:
        table.add_row(r.name, str(r.messages), str(r.delivered), f"{r.seconds:.2f}", f"{r.rate:,.0f}")
    console.print(table)
    top, ours, slow = results
    lossless = ours.delivered == ours.messages
    console.print(f"bondwatch / ceiling = {ours.rate / top.rate:.1%} (target >= 20%)")
    console.print(f"bondwatch / naive   = {ours.rate / slow.rate:.1f}x (target >= 8x)")
    console.print(f"zero loss: {'yes' if lossless else 'NO'} ({ours.delivered} of {ours.messages} committed)")
    out = Path(load_settings(ServicesSettings).state_dir) / "bench" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([asdict(r) | {"rate": r.rate} for r in results], indent=2))
    if not lossless:
        sys.exit(1)


if __name__ == "__main__":
    main()
