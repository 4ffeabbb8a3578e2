"""Edge agent: CPU share at 100 readings/s, and the replay rate of a 100,000-reading backlog.

1. CPU share: 100 simulated GNSS terminals on pseudo-terminals, one NMEA sentence pair a second
   each, read by one `bondwatch edge` process that decodes, queues (SQLite WAL, synchronous=FULL)
   and publishes at QoS 1 to the local broker. The agent's CPU time (user + system, from
   /proc/PID/stat) over a minute, as a share of one core.
2. Replay: 100,000 readings put in an agent's queue while no broker is reachable (as after an
   outage), then the agent is started against the broker with `bondwatch ingest` running: readings
   per second from the agent's start until its queue is empty, and the rows stored.

    python -m bench.edge [--terminals 100] [--seconds 60] [--backlog 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from bondwatch.db.settings import DbSettings
from bondwatch.services.manager import LocalServices
from bondwatch.services.settings import ServicesSettings
from bondwatch.settings import load_settings
from edge.queue import EdgeQueue
from edge.readings import Position
from simulators.devices.gnss_terminal import GnssTerminal

console = Console()
EXE = str(Path(sys.executable).with_name("bondwatch"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def fixer(index: int) -> Any:
    def fix(now: datetime) -> Position:
        return Position(now, 39.45 + index * 1e-3, 109.70 + (now.timestamp() % 3600) * 1e-5, "3d",
                        speed_kmh=40.0, heading_deg=90.0, hdop=0.9, sats=12, soc_pct=60.0)  # fmt: skip

    return fix


def write_config(path: Path, gateway: str, devices: list[tuple[str, str]]) -> Path:
    lines = [f'[agent]\ngateway_id = "{gateway}"\nqueue_path = "queue.db"\n']
    lines += [f'[[devices]]\nid = "{d}"\ndriver = "nmea_serial"\nport = "{port}"\n' for d, port in devices]
    path.write_text("\n".join(lines))
    return path


def stored(db_url: str, prefix: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM positions WHERE device_id LIKE %s", (f"{prefix}%",)).fetchone()
        return int(row[0]) if row else 0


def cpu_share(site: str, terminals: int, seconds: float, work: Path, env: dict[str, str]) -> dict[str, float]:
    ttys = [GnssTerminal(fixer(i), period_s=1.0).start() for i in range(terminals)]
    devices = [(f"{site}-cpu-{i:03d}", t.path) for i, t in enumerate(ttys)]
    config = write_config(work / "cpu.toml", f"{site}-gw", devices)
    agent = subprocess.Popen([EXE, "edge", "--config", str(config)], env=env, stderr=subprocess.DEVNULL)
    try:
        time.sleep(10)  # connected, queue warm
        c0, t0 = cpu_seconds(agent.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(agent.pid), time.monotonic()
    finally:
        for t in ttys:
            t.stop()
        agent.terminate()
        agent.wait(timeout=30)
    return {"readings_per_s": float(terminals), "cpu_share_of_one_core": (c1 - c0) / (t1 - t0)}


def replay(site: str, backlog: int, work: Path, env: dict[str, str], db_url: str) -> dict[str, float]:
    devices = [f"{site}-rep-{i:03d}" for i in range(100)]
    config = write_config(work / "replay.toml", f"{site}-gw2", [(d, "/dev/null") for d in devices])
    start = datetime.now(UTC) - timedelta(seconds=backlog // len(devices))
    with EdgeQueue(work / "queue.db") as queue:
        items = [
            ("gps", devices[i % len(devices)], fixer(i % len(devices))(start + timedelta(seconds=i // len(devices))))
            for i in range(backlog)
        ]
        for chunk in range(0, backlog, 5000):
            queue.put_many(items[chunk : chunk + 5000])
        assert queue.depth() == backlog
    ingest = subprocess.Popen([EXE, "ingest"], env=env, stderr=subprocess.DEVNULL)
    agent: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(3)
        t0 = time.monotonic()
        agent = subprocess.Popen([EXE, "edge", "--config", str(config)], env=env, stderr=subprocess.DEVNULL)
        # The agent's own queue object counts its depth in memory; from outside, ask the file.
        waiting = sqlite3.connect(f"file:{work / 'queue.db'}?mode=ro", uri=True)
        try:
            while waiting.execute("SELECT count(*) FROM queue").fetchone()[0] > 0 and time.monotonic() - t0 < 600:
                time.sleep(0.2)
        finally:
            waiting.close()
        drained = time.monotonic() - t0
        deadline = time.monotonic() + 60
        while stored(db_url, f"{site}-rep-") < backlog and time.monotonic() < deadline:
            time.sleep(0.2)
        landed = time.monotonic() - t0
        rows = stored(db_url, f"{site}-rep-")
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(timeout=30)
        ingest.terminate()
        ingest.wait(timeout=30)
    return {"backlog": backlog, "drain_s": drained, "replay_per_s": backlog / drained, "stored": rows,
            "stored_per_s": rows / landed}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--backlog", type=int, default=100_000)
    args = parser.parse_args()
    services = LocalServices(load_settings(ServicesSettings))
    services.up()
    db_url = load_settings(DbSettings).db_url
    site = f"bench-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "BONDWATCH_SITE": site, "BONDWATCH_LOG_LEVEL": "ERROR", "BONDWATCH_INGEST_METRICS_PORT": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "cpu").mkdir()
        (work / "replay").mkdir()
        cpu = cpu_share(site, args.terminals, args.seconds, work / "cpu", env)
        console.print(f"[bold]edge agent[/]: {cpu['readings_per_s']:.0f} readings/s cost "
                      f"{cpu['cpu_share_of_one_core']:.1%} of one core")  # fmt: skip
        rep = replay(site, args.backlog, work / "replay", env, db_url)
        console.print(f"  replay of {args.backlog:,} queued readings: drained in {rep['drain_s']:.1f} s "
                      f"({rep['replay_per_s']:,.0f}/s), {rep['stored']:,.0f} stored")  # fmt: skip
    out = load_settings(ServicesSettings).state_dir / "bench" / "edge.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu": cpu, "replay": rep}, indent=2))
    if rep["stored"] != args.backlog:
        sys.exit(1)


if __name__ == "__main__":
    main()
