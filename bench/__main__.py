"""`make bench`: every benchmark in one run on this machine, then bench/RESULTS.md from their figures.

    python -m bench [--skip NAME ...]

Order matters: the alert-latency benchmark runs its background load at half the sustained ingest
rate measured just before. Each benchmark writes its figures to <state dir>/bench/NAME.json; this
module turns them into bench/RESULTS.md with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bondwatch.services.settings import ServicesSettings
from bondwatch.settings import load_settings

STEPS = ("ingest", "alerts", "geofence", "edge", "queries")
RESULTS = Path(__file__).parent / "RESULTS.md"


def machine() -> str:
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_kib / 1024 / 1024:.0f} GiB, {platform.platform()}, "
        f"Python {platform.python_version()}; broker, database, platform and load generators on the same machine"
    )


def load(state: Path, name: str) -> Any:
    path = state / "bench" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def section_ingest(data: list[dict[str, Any]], measured: str) -> list[str]:
    top = next(r for r in data if "ceiling" in r["name"])
    naive = next(r for r in data if "naive" in r["name"])
    lines = ["## 1. Ingest (`python -m bench.ingest`)", "", f"Measured {measured}.", "",
             "| pipeline | messages | committed | msg/s | of ceiling | x naive |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in data:
        lines.append(f"| {r['name']} | {r['messages']:,} | {r['delivered']:,} | {r['rate']:,.0f} | "
                     f"{r['rate'] / top['rate']:.1%} | {r['rate'] / naive['rate']:.1f} |")  # fmt: skip
    sustained = [r for r in data if "sustained" in r["name"]]
    lossless = all(r["delivered"] == r["messages"] for r in data if "ceiling" not in r["name"])
    lines += ["", f"Targets: sustained >= 20% of the ceiling and >= 8x naive; zero loss: "
              f"{'yes' if lossless else 'NO'}."]  # fmt: skip
    if len(sustained) > 1:
        lines.append("Workers compared (the figure must not drop with two): " + "; ".join(
            f"{r['name']}: {r['rate']:,.0f} msg/s" for r in sustained) + ".")  # fmt: skip
    return lines


def section_alerts(d: dict[str, Any], measured: str) -> list[str]:
    return ["## 2. Alert latency (`python -m bench.alerts`)", "", f"Measured {measured}.", "",
            f"Deciding reading published -> `opened` alert received on MQTT, {d['samples']} samples under "
            f"{d['background_rate']:,.0f} msg/s of background load (half the sustained ingest rate): "
            f"p50 **{d['p50_ms']:.0f} ms**, p99 **{d['p99_ms']:.0f} ms** (target <= 500 ms), max {d['max_ms']:.0f} ms; "
            f"{d['received']} of {d['samples']} alerts received."]  # fmt: skip


def section_geofence(d: dict[str, Any], measured: str) -> list[str]:
    per = d["per_point_per_s"]
    return ["## 3. Geofence checks (`python -m bench.geofence`)", "", f"Measured {measured}.", "",
            f"{d['points']:,} fixes against the site ({d['vertices']:,} vertices: boundary with a hole, corridors, "
            "gates), two questions per fix:", "", "| path | fixes/s | ratio |", "|---|---|---|",
            f"| per point (pyproj + prepared predicate per fix) | {per:,.0f} | 1.0 |",
            f"| vectorised, batches of 1,000 (the engine's path) | {d['vectorised_1000_per_s']:,.0f} | "
            f"{d['vectorised_1000_per_s'] / per:.1f} |",
            f"| vectorised, one batch | {d['vectorised_all_per_s']:,.0f} | "
            f"{d['vectorised_all_per_s'] / per:.1f} |"]  # fmt: skip


def section_edge(d: dict[str, Any], measured: str) -> list[str]:
    cpu, rep = d["cpu"], d["replay"]
    return ["## 4. Edge agent (`python -m bench.edge`)", "", f"Measured {measured}.", "",
            f"- {cpu['readings_per_s']:.0f} readings/s (NMEA from pseudo-terminals, SQLite WAL synchronous=FULL, "
            f"QoS 1): **{cpu['cpu_share_of_one_core']:.1%}** of one core.",
            f"- replay of {rep['backlog']:,} queued readings after an outage: drained in {rep['drain_s']:.1f} s, "
            f"**{rep['replay_per_s']:,.0f} readings/s**; {rep['stored']:,} stored."]  # fmt: skip


def section_queries(d: dict[str, Any], measured: str) -> list[str]:
    """Its parts may come from different runs (``--skip``): each says when it was measured."""
    spec, rows = d["spec"], d["rows"]
    month = {(r["group"], r["name"]): r for r in d.get("panels_30d", [])}
    over = [r for r in d["panels"] + d["endpoints"] if r["p95_ms"] > 200]
    lines = ["## 5. Dashboard and API queries (`python -m bench.queries`)", "",
             "Measured with `python -m bench.queries` (each part when it was last measured: "
             + ", ".join(f"{part} {d[f'{key}_measured_at']}" for part, key in
                         (("panels", "panels"), ("30 days", "panels_30d"), ("endpoints", "endpoints"),
                          ("reports", "generated")) if f"{key}_measured_at" in d) + ").", "",
             f"{spec['days']} days of {spec['trucks']} trucks (a fix every 10 s) and {spec['sensors']} cold-room "
             f"sensors (a reading a minute): {rows['positions']:,} positions, {rows['temperatures']:,} temperatures, "
             f"{rows['rfid_reads']:,} tag reads, {rows['gate_passages']:,} gate passages, {rows['alerts']:,} alerts. "
             f"Panels as Grafana's read-only login at each dashboard's default range ending at the data's end, "
             f"{spec['runs']} runs (a panel repeated per room: every repeat, {max(1, spec['runs'] // 5)} runs); "
             f"the 30-day column for comparison. Target p95 <= 200 ms; "
             f"{'every panel and endpoint meets it' if not over else f'{len(over)} do not'}.", "",
             "| dashboard | panel | range | queries | p50 ms | p95 ms | p95 ms, 30 days |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in d["panels"]:
        m = month.get((r["group"], r["name"]))
        at_30d = f"{m['p95_ms']:.0f}" if m else ""
        lines.append(f"| {r['group'].removeprefix('bondwatch-')} | {r['name']} | {r['window']} | {r['queries']} | "
                     f"{r['p50_ms']:.1f} | **{r['p95_ms']:.1f}** | {at_30d} |")  # fmt: skip
    lines += ["", f"Read endpoints (`bondwatch api`, a viewer token, {spec['runs']} requests each):", "",
              "| request | p50 ms | p95 ms |", "|---|---|---|"]  # fmt: skip
    for r in d["endpoints"]:
        lines.append(f"| `{r['name']}` | {r['p50_ms']:.1f} | **{r['p95_ms']:.1f}** |")
    lines += ["", "The month is one simulated day copied back 29 times, so every tag passes the gates every day: the "
              "traced tag's story has 30 times the passages and rides of a pallet's real one."]  # fmt: skip
    lines += ["", "Reports of a month in progress are generated on every request (a finished month is stored and "
              "served as stored, above):", "", "| request | requests | p50 ms | max ms |",
              "|---|---|---|---|"]  # fmt: skip
    for r in d["generated"]:
        lines.append(f"| `{r['name']}` | {r['queries']} | {r['p50_ms']:,.0f} | {r['max_ms']:,.0f} |")
    return lines


SECTIONS: dict[str, Callable[[Any, str], list[str]]] = {
    "ingest": section_ingest,
    "alerts": section_alerts,
    "geofence": section_geofence,
    "edge": section_edge,
    "queries": section_queries,
}


def _local(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M %Z")


def write_results(state: Path, command: str) -> None:
    """bench/RESULTS.md from each step's figures; a step's time is when its figures were written, so a step
    measured by an earlier run (``--skip``) says so."""
    lines = ["# Benchmark results", "", f"Written {_local(time.time())} by `{command}` on: {machine()}.", "",
             "Figures are from one run; ratios compare figures of that same run. The machine is shared and "
             "noisy, so absolute numbers move between runs; the ratios move less.", ""]  # fmt: skip
    for name in STEPS:
        data = load(state, name)
        if data is None:
            lines += [f"## {name}: not run", ""]
            continue
        written = (state / "bench" / f"{name}.json").stat().st_mtime
        lines += [*SECTIONS[name](data, _local(written)), ""]
    drills = load(state, "drills")
    if drills is not None:
        lines += ["## Fault drills (`make drills`)", "", "```", json.dumps(drills, indent=2, ensure_ascii=False),
                  "```", ""]  # fmt: skip
    RESULTS.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip", nargs="*", default=[], choices=STEPS)
    args = parser.parse_args()
    state = load_settings(ServicesSettings).state_dir
    failed = []
    for name in STEPS:
        if name in args.skip:
            continue
        if subprocess.call([sys.executable, "-m", f"bench.{name}"]) != 0:
            failed.append(name)
    write_results(state, "make bench" if not args.skip else f"python -m bench --skip {' '.join(args.skip)}")
    print(f"wrote {RESULTS}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
