"""Alert latency: publish of the deciding reading -> the alert on MQTT, under background load.

`bondwatch serve` (ingest, rules, API) runs as its own process for a bench site. The background load is
published at half the sustained ingest rate measured by `bench.ingest` in the same `make bench` run (or
``--rate``) by the same publishers as that benchmark (``mosquitto_pub -l``, one per device: in the field the
publishers are the devices, not this machine's cores): live ``temp`` readings of 50 registered sensors whose
profile they stay inside, so every one is judged and none raises an alert. Meanwhile a cold-room
sensor with a profile whose delay is 0 s gets an in-range reading and then, every ``--every`` seconds,
an out-of-range one for a fresh sensor: the deciding reading. The latency of a sample is from just
before that reading is handed to the client library until the ``opened`` alert for that sensor is
received from the broker; both clocks are this process's.

    python -m bench.alerts [--rate R] [--samples 300] [--every 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import orjson
import paho.mqtt.client as mqtt
from rich.console import Console

from api.auth import Role, create_token
from bench.ingest import Publishers
from bondwatch.db.settings import DbSettings
from bondwatch.mqtt import make_client
from bondwatch.services.manager import LocalServices
from bondwatch.services.settings import ServicesSettings
from bondwatch.settings import load_settings

console = Console()
EXE = str(Path(sys.executable).with_name("bondwatch"))
BACKGROUND_SENSORS = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_rate(state_dir: Path) -> float:
    """Half the sustained ingest rate of this run's ingest benchmark, if there is one."""
    results = state_dir / "bench" / "ingest.json"
    if results.exists():
        for r in json.loads(results.read_text()):
            if "sustained" in r["name"]:
                return float(r["rate"]) / 2
    return 5000.0


def wait_healthy(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("bondwatch serve did not become healthy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=None, help="background msg/s (default: half of ingest's)")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--every", type=float, default=0.1, help="seconds between deciding readings")
    args = parser.parse_args()
    services = LocalServices(load_settings(ServicesSettings))
    services.up()
    settings = load_settings(DbSettings)
    rate = args.rate or default_rate(services.settings.state_dir)
    site = f"bench-{uuid.uuid4().hex[:6]}"
    port = free_port()
    env = {**os.environ, "BONDWATCH_SITE": site, "BONDWATCH_API_PORT": str(port), "BONDWATCH_LOG_LEVEL": "ERROR",
           "BONDWATCH_INGEST_METRICS_PORT": "0"}  # fmt: skip
    serve = subprocess.Popen([EXE, "serve"], env=env)
    load: threading.Thread | None = None
    # Enough background lines for the warm-up, the samples and the wait for the last alerts.
    seconds = 5 + 2 + args.samples * args.every + 20
    per_device = int(rate * seconds / BACKGROUND_SENSORS)
    step_ms = max(1, round(1000 * BACKGROUND_SENSORS / rate))  # live: each sensor's ts keeps up with the clock
    opened: dict[str, float] = {}
    sent: dict[str, float] = {}
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        body = orjson.loads(msg.payload)
        if body.get("event") == "opened":
            with lock:
                opened.setdefault(body["subject_id"], now)

    target = settings.mqtt
    listener = make_client(target, f"bench-alerts-{site}")
    listener.on_message = on_message
    publisher = make_client(target, f"bench-alerts-pub-{site}")
    try:
        wait_healthy(port)
        token = create_token(settings, Role.admin, f"bench alerts {site}")
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers={"Authorization": f"Bearer {token}"})
        profile = {"min_c": 0.0, "max_c": 4.0, "delay_s": 0, "hysteresis_c": 0.5, "pre_alarm_margin_c": 0.5,
                   "offline_after_s": 3600}  # fmt: skip
        api.put(f"/profiles/{site}", json=profile).raise_for_status()
        api.put(f"/profiles/{site}-bg", json={**profile, "min_c": -10.0, "max_c": 20.0}).raise_for_status()
        sensors = [f"{site}-cr-{i:04d}" for i in range(args.samples)]
        for device in sensors:
            api.put(f"/devices/{device}", json={"kind": "temp", "name": device, "profile": site}).raise_for_status()
        listener.connect(target.host, target.port)
        listener.subscribe(f"bw/v1/{site}/alerts/temp_excursion", qos=1)
        listener.loop_start()
        publisher.connect(target.host, target.port)
        publisher.loop_start()
        background = Publishers(services, site, f"{site}-bg", BACKGROUND_SENSORS, per_device, qos=1,
                                start_ms=int(time.time() * 1000), step_ms=step_ms)  # fmt: skip
        for device in background.devices:
            api.put(f"/devices/{device}", json={"kind": "temp", "name": device, "profile": f"{site}-bg"}
                    ).raise_for_status()  # fmt: skip
        load = threading.Thread(target=background.feed, args=(rate,), name="background-load", daemon=True)
        load.start()
        time.sleep(5)  # the load is flowing and the engine has seen the registry
        for device in sensors:
            reading = {"ts": int(time.time() * 1000), "seq": 0, "temp_c": 2.0}
            publisher.publish(f"bw/v1/{site}/temp/{device}", orjson.dumps(reading), qos=1)
        time.sleep(2)
        start = time.perf_counter()
        for i, device in enumerate(sensors):
            time.sleep(max(0.0, start + i * args.every - time.perf_counter()))
            reading = {"ts": int(time.time() * 1000), "seq": 1, "temp_c": 9.5}
            with lock:
                sent[device] = time.perf_counter()
            publisher.publish(f"bw/v1/{site}/temp/{device}", orjson.dumps(reading), qos=1)
        deadline = time.monotonic() + 30
        while len(opened) < len(sensors) and time.monotonic() < deadline:
            time.sleep(0.1)
        still_loaded = load is not None and load.is_alive()
    finally:
        if load is not None:
            load.join(timeout=120)
        serve.terminate()
        serve.wait(timeout=30)
        for client in (listener, publisher):
            client.disconnect()
            client.loop_stop()
    latencies = np.array([(opened[d] - sent[d]) * 1000 for d in sensors if d in opened])
    missing = len(sensors) - len(latencies)
    results = {
        "background_rate": rate,
        "samples": len(sensors),
        "received": len(latencies),
        "p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else None,
        "p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else None,
        "max_ms": float(latencies.max()) if len(latencies) else None,
        "load_ran_throughout": still_loaded,
    }
    console.print(f"[bold]alert latency[/]: {len(sensors)} deciding readings under {rate:,.0f} msg/s of other traffic")
    console.print(f"  received {len(latencies)} alerts, missing {missing}; p50 {results['p50_ms']:.0f} ms, "
                  f"p99 {results['p99_ms']:.0f} ms (target <= 500), max {results['max_ms']:.0f} ms")  # fmt: skip
    out = load_settings(ServicesSettings).state_dir / "bench" / "alerts.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    if missing:
        sys.exit(1)


if __name__ == "__main__":
    main()
