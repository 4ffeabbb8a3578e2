"""Ingest throughput: BondWatch end to end against the broker's own ceiling and a naive pipeline.

All are measured in the same run on the same machine, broker and database, with the same
publishers: one ``mosquitto_pub -l`` process per device, ~150-byte contract ``temp`` readings.

1. ceiling    - the broker with Mosquitto's C clients at QoS 0: publishers -> broker -> ``mosquitto_sub``,
                everything sent at once.
2. bondwatch  - publishers at QoS 1 -> broker -> ``bondwatch ingest`` workers (shared subscription,
                COPY batches, PUBACK after commit) -> rows committed in TimescaleDB.
                *sustained*: publishers paced at a fixed rate for ``--step-seconds``, stepping the
                rate up until the pipeline no longer keeps up (every row committed within 1.5 s of
                the last publish); rows/s of the highest rate that kept up.
                *burst*: everything sent at once, rows/s from first publish to last commit.
3. naive      - publishers at QoS 1 -> one paho subscriber (auto-ack) -> json.loads + one INSERT per
                message with autocommit; everything sent at once.

Every figure is messages per second; (2) and (3) also check that exactly the published readings
were committed (zero loss).

The sustained rate is measured with ``--workers`` (2) and again with ``--compare-workers`` (1), so
that the two can be compared: splitting the subscription must not lower the figure.

    python -m bench.ingest [--messages 200000] [--naive-messages 20000] [--workers 2] [--compare-workers 1]
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
from collections.abc import Callable
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
TICK_S = 0.02
MAX_LAG_S = 1.5  # a pipeline that keeps up commits the last row this soon after the last publish


@dataclass
class Result:
    name: str
    messages: int
    delivered: int
    seconds: float
    offered_rate: float | None = None
    lag: float = 0.0  # last commit after the last publish returned

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0


def payload_lines(count: int, start_ms: int, step_ms: int = 1000) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "ts": start_ms + i * step_ms,
                "seq": i,
                "temp_c": round(2.0 + (i % 40) / 10, 1),
                "rh_pct": 85.0,
                "door_open": False,
                "battery_v": 3.61,
            }
        )
        + b"\n"
        for i in range(count)
    ]


class Publishers:
    """One ``mosquitto_pub -l`` per device, connected before the clock starts, fed on stdin."""

    def __init__(
        self,
        services: LocalServices,
        site: str,
        prefix: str,
        devices: int,
        per_device: int,
        qos: int,
        start_ms: int = 1_764_000_000_000,
        step_ms: int = 1000,
    ) -> None:
        target = load_settings(DbSettings).mqtt
        tool = services.mosquitto.client_tool("mosquitto_pub")
        self.devices = [f"{prefix}-{d:03d}" for d in range(devices)]
        self.lines = [payload_lines(per_device, start_ms, step_ms) for _ in range(devices)]
        self.procs = [
            subprocess.Popen(
                [*tool, "-h", "127.0.0.1", "-p", str(target.port), "-u", target.username or "",
                 "-P", target.password or "", "-V", "mqttv5", "-q", str(qos), "-M", "1000",
                 "-t", f"bw/v1/{site}/temp/{device}", "-l"],
                stdin=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            for device in self.devices
        ]  # fmt: skip
        time.sleep(1.0)  # connected before the first line

    def feed(self, rate: float | None) -> tuple[float, float]:
        """Write every line (all at once, or ``rate`` per second in total); returns start and end times."""
        start = time.perf_counter()
        if rate is None:
            threads = [
                threading.Thread(target=self._write, args=(p, b"".join(ls)))
                for p, ls in zip(self.procs, self.lines, strict=True)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            per_tick = rate * TICK_S / len(self.procs)
            sent = [0] * len(self.procs)
            tick = 0
            while any(s < len(ls) for s, ls in zip(sent, self.lines, strict=True)):
                tick += 1
                for i, (proc, lines) in enumerate(zip(self.procs, self.lines, strict=True)):
                    upto = min(len(lines), int(tick * per_tick))
                    if upto > sent[i]:
                        assert proc.stdin is not None
                        proc.stdin.write(b"".join(lines[sent[i] : upto]))
                        proc.stdin.flush()
                        sent[i] = upto
                time.sleep(max(0.0, start + tick * TICK_S - time.perf_counter()))
        for proc in self.procs:
            if proc.stdin and not proc.stdin.closed:
                proc.stdin.close()
        for proc in self.procs:
            if proc.wait() != 0:
                raise RuntimeError(f"mosquitto_pub failed: {proc.stderr.read().decode() if proc.stderr else ''}")
        return start, time.perf_counter()

    @staticmethod
    def _write(proc: subprocess.Popen[bytes], data: bytes) -> None:
        assert proc.stdin is not None
        proc.stdin.write(data)
        proc.stdin.close()


def ceiling(services: LocalServices, devices: int, per_device: int) -> Result:
    site = f"bench-{uuid.uuid4().hex[:6]}"
    total = devices * per_device
    target = load_settings(DbSettings).mqtt
    sub = subprocess.Popen(
        [*services.mosquitto.client_tool("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(target.port),
         "-u", target.username or "", "-P", target.password or "", "-V", "mqttv5", "-q", "0",
         "-t", f"bw/v1/{site}/temp/+", "-C", str(total), "-W", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    counted = [0]

    def count() -> None:
        assert sub.stdout is not None
        for _ in sub.stdout:
            counted[0] += 1

    reader = threading.Thread(target=count)
    reader.start()
    publishers = Publishers(services, site, "ceil", devices, per_device, qos=0)
    start, _ = publishers.feed(None)
    reader.join()
    sub.wait()
    return Result("broker ceiling (C clients, QoS 0, burst)", total, counted[0], time.perf_counter() - start)


def wait_rows(db_url: str, prefix: str, total: int, stall_s: float = 15.0) -> tuple[int, float]:
    """Poll until ``total`` rows are committed or progress stalls; returns (rows, time of last row)."""
    rows, last_change = -1, time.perf_counter()
    with psycopg.connect(db_url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM temperatures WHERE device_id LIKE %s", (f"{prefix}-%",)).fetchone()
            n = int(row[0]) if row else 0
            now = time.perf_counter()
            if n != rows:
                rows, last_change = n, now
            if rows >= total or now - last_change > stall_s:
                return rows, last_change
            time.sleep(0.1)  # polling costs the database CPU the pipeline needs


def reset_bench_rows(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM temperatures WHERE device_id LIKE 'bench%'")
        conn.execute("DELETE FROM device_latest WHERE device_id LIKE 'bench%'")


def run_pipeline(name: str, services: LocalServices, site: str, prefix: str, devices: int, per_device: int,
                 db_url: str, rate: float | None = None) -> Result:  # fmt: skip
    total = devices * per_device
    publishers = Publishers(services, site, prefix, devices, per_device, qos=1)
    start, published = publishers.feed(rate)
    rows, done = wait_rows(db_url, prefix, total)
    return Result(name, total, rows, done - start, rate, lag=done - published)


def with_ingest(workers: int, site: str, body: Callable[[], list[Result]]) -> list[Result]:
    env = {
        **os.environ,
        "BONDWATCH_SITE": site,
        "BONDWATCH_INGEST_METRICS_PORT": "0",
        "BONDWATCH_LOG_LEVEL": "ERROR",
    }
    exe = str(Path(sys.executable).with_name("bondwatch"))
    ingest = subprocess.Popen([exe, "ingest", "--workers", str(workers)], env=env)
    try:
        time.sleep(3.0)  # workers connected and subscribed
        return body()
    finally:
        ingest.terminate()
        ingest.wait(timeout=30)


def bondwatch(
    services: LocalServices, args: argparse.Namespace, db_url: str, workers: int, burst: bool
) -> list[Result]:
    site = f"bench-{uuid.uuid4().hex[:6]}"

    def body() -> list[Result]:
        out: list[Result] = []
        if burst:
            per = args.messages // args.devices
            out.append(run_pipeline(f"bondwatch ingest ({workers} workers, QoS 1, burst)", services, site,
                                    f"benchb{workers}", args.devices, per, db_url))  # fmt: skip
            console.print(f"  measured: {out[-1].name}")
        best: Result | None = None
        for step, rate in enumerate(args.rates):
            per = int(rate * args.step_seconds) // args.devices
            result = run_pipeline("", services, site, f"bench{workers}s{step}", args.devices, per, db_url, rate)
            kept_up = result.delivered == result.messages and result.lag <= MAX_LAG_S
            verdict = "kept up" if kept_up else "fell behind"
            console.print(f"  offered {rate:,.0f} msg/s: committed {result.rate:,.0f} msg/s, "
                          f"last row {result.lag:.2f} s after the last publish ({verdict})")  # fmt: skip
            if not kept_up:
                break
            best = result
        if best is not None:
            best.name = f"bondwatch ingest ({workers} worker{'s' if workers > 1 else ''}, QoS 1, sustained)"
            out.insert(0, best)
        return out

    return with_ingest(workers, site, body)


def naive(services: LocalServices, devices: int, per_device: int, db_url: str) -> Result:
    site = f"bench-{uuid.uuid4().hex[:6]}"
    target = load_settings(DbSettings).mqtt
    conn = psycopg.connect(db_url, autocommit=True)

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        data: dict[str, Any] = json.loads(msg.payload)
        conn.execute(
            "INSERT INTO temperatures (ts, device_id, seq, temp_c, rh_pct, door_open, battery_v) "
            "VALUES (to_timestamp(%s / 1000.0), %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (data["ts"], msg.topic.rsplit("/", 1)[1], data["seq"], data["temp_c"], data["rh_pct"],
             data["door_open"], data["battery_v"]),
        )  # fmt: skip

    client = make_client(target, f"bench-naive-{site}")
    client.on_message = on_message
    client.connect(target.host, target.port)
    client.subscribe(f"bw/v1/{site}/temp/+", qos=1)
    client.loop_start()
    try:
        time.sleep(1.0)
        return run_pipeline("naive paho + INSERT per message (burst)", services, site, "benchn", devices,
                            per_device, db_url)  # fmt: skip
    finally:
        client.disconnect()
        client.loop_stop()
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000, help="burst size")
    parser.add_argument("--naive-messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="workers of the burst and the main sustained run")
    parser.add_argument("--compare-workers", type=int, default=1,
                        help="also the sustained rate with this many workers (0: skip)")  # fmt: skip
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--rates", type=lambda s: [float(r) for r in s.split(",")],
                        default=[6000, 8000, 10000, 12000, 14000, 16000, 18000, 20000])  # fmt: skip
    args = parser.parse_args()
    services = LocalServices(load_settings(ServicesSettings))
    services.up()
    db_url = load_settings(DbSettings).db_url
    reset_bench_rows(db_url)
    console.print(f"[bold]ingest benchmark[/]: {args.devices} publishing devices, {os.cpu_count()} cores, "
                  "broker and database on this machine")  # fmt: skip
    per = args.messages // args.devices
    results = [ceiling(services, args.devices, per)]
    console.print(f"  measured: {results[-1].name}")
    results += bondwatch(services, args, db_url, args.workers, burst=True)
    if args.compare_workers and args.compare_workers != args.workers:
        results += bondwatch(services, args, db_url, args.compare_workers, burst=False)
    results.append(naive(services, args.devices, args.naive_messages // args.devices, db_url))
    console.print(f"  measured: {results[-1].name}")
    reset_bench_rows(db_url)

    table = Table("pipeline", "messages", "committed", "seconds", "msg/s")
    for r in results:
        table.add_row(r.name, str(r.messages), str(r.delivered), f"{r.seconds:.2f}", f"{r.rate:,.0f}")
    console.print(table)
    top, slow = results[0], results[-1]
    ours = [r for r in results if "sustained" in r.name]
    burst = next(r for r in results if "bondwatch" in r.name and "burst" in r.name)
    for r in [*ours, burst]:
        console.print(f"{r.name}: {r.rate / top.rate:.1%} of the ceiling (target >= 20%), "
                      f"{r.rate / slow.rate:.1f}x naive (target >= 8x)")  # fmt: skip
    lossless = all(r.delivered == r.messages for r in results[1:])
    console.print(f"zero loss: {'yes' if lossless else 'NO'}")
    out = load_settings(ServicesSettings).state_dir / "bench" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([asdict(r) | {"rate": r.rate} for r in results], indent=2))
    if not lossless:
        sys.exit(1)


if __name__ == "__main__":
    main()
