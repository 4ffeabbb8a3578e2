"""`python -m drills [NAME ...]`: run the fault drills and print published against stored for each.

Exit status 0 when every drill that ran passed, 1 when one failed, 2 on bad arguments. Results go to
``var/bench/drills.json`` (see docs/drills.md).
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from bondwatch.errors import BondWatchError
from drills.faults import DRILLS, Timing
from drills.harness import Drill, DrillFailed, DrillResult, DrillSkipped, PlatformKind, Services, machine

console = Console()
if not console.is_terminal:
    console = Console(width=120)  # a log file or CI: lines that do not wrap at 80 columns
app = typer.Typer(add_completion=False, help=__doc__)


def _run_one(
    services: Services, name: str, timing: Timing, devices: int, platform: PlatformKind, keep: bool
) -> DrillResult:
    spec = DRILLS[name]
    result = DrillResult(name, spec.title)
    console.rule(f"[bold]{name}[/]: {spec.title}")
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=True,
    )
    with progress:
        try:
            with Drill(services, result, progress, devices, platform, keep) as drill:
                console.print(f"  site {drill.site}, {devices} GNSS terminals at 1 Hz, work folder {drill.workdir}")
                spec.run(drill, timing)
        except DrillSkipped as exc:
            result.skipped = str(exc)
        except (DrillFailed, BondWatchError, OSError) as exc:
            result.failures.append(f"{type(exc).__name__}: {exc}")
        except KeyboardInterrupt:
            result.failures.append("interrupted")
            _print_result(result)
            raise
    _print_result(result)
    return result


def _print_result(r: DrillResult) -> None:
    colour = {"PASS": "green", "FAIL": "red", "SKIP": "yellow"}[r.verdict]
    if r.skipped is not None:
        console.print(f"  [{colour}]SKIP[/]: {r.skipped}")
        return
    console.print(
        f"  published {r.published:,}  stored {r.stored:,}  duplicates {r.duplicates}  gaps {r.gaps}"
        f"  ({r.seconds:.0f} s)  [bold {colour}]{r.verdict}[/]"
    )
    for key, value in r.details.items():
        if key != "timeline":
            console.print(f"  [dim]{key}: {value}[/]")
    for failure in r.failures:
        console.print(f"  [red]- {failure}[/]")
    if r.workdir:
        console.print(f"  [dim]logs: {r.workdir}[/]")


def _summary(results: list[DrillResult], total_s: float) -> None:
    table = Table(title=f"fault drills: {total_s / 60:.1f} min")
    for column in ("drill", "published", "stored", "duplicates", "gaps", "seconds", "verdict"):
        table.add_column(column, justify="left" if column in ("drill", "verdict") else "right")
    for r in results:
        colour = {"PASS": "green", "FAIL": "red", "SKIP": "yellow"}[r.verdict]
        table.add_row(r.name, f"{r.published:,}", f"{r.stored:,}", str(r.duplicates), str(r.gaps),
                      f"{r.seconds:.0f}", f"[{colour}]{r.verdict}[/]")  # fmt: skip
    console.print(table)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def main(
    names: Annotated[
        list[str] | None, typer.Argument(help=f"Drills to run (default all): {', '.join(DRILLS)}.")
    ] = None,
    load_devices: Annotated[
        int, typer.Option(min=1, max=500, help="GNSS terminals (1 Hz each) read by the agent.")
    ] = 20,
    unreachable_s: Annotated[
        float, typer.Option(min=10, help="How long the broker is unreachable from the agent (broker-unreachable).")
    ] = 600.0,
    warmup_s: Annotated[float, typer.Option(min=5, help="Steady load before each fault.")] = 20.0,
    recovery_s: Annotated[float, typer.Option(min=5, help="Steady load after each fault.")] = 25.0,
    platform: Annotated[
        str, typer.Option(help="`ingest` (bondwatch ingest) or `serve` (bondwatch serve, ingest as its child).")
    ] = "ingest",
    shared_services: Annotated[
        bool,
        typer.Option(
            help="Use (and restart) `bondwatch services`' broker and database instead of private ones for the run."
        ),
    ] = False,
    keep: Annotated[bool, typer.Option(help="Keep each drill's rows and work folder (logs, queue file).")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Where to write the results.")] = None,
) -> None:
    # SIGTERM (`timeout`, a CI runner) unwinds like Ctrl-C, so the services are restored and the tmpfs unmounted.
    signal.signal(signal.SIGTERM, _interrupt)
    selected = names or list(DRILLS)
    unknown = [n for n in selected if n not in DRILLS]
    if unknown:
        console.print(f"[red]unknown drill(s): {', '.join(unknown)}[/]; known: {', '.join(DRILLS)}")
        raise typer.Exit(2)
    if platform not in ("ingest", "serve"):
        console.print("[red]--platform must be ingest or serve[/]")
        raise typer.Exit(2)
    kind: PlatformKind = "serve" if platform == "serve" else "ingest"
    timing = Timing(warmup_s=warmup_s, recovery_s=recovery_s, unreachable_s=unreachable_s)
    estimate = sum(DRILLS[n].estimate(timing) for n in selected)
    command = " ".join(shlex.quote(a) for a in ["python", "-m", "drills", *sys.argv[1:]])
    console.print(f"[bold]BondWatch fault drills[/]: {', '.join(selected)} (about {estimate / 60:.0f} min)")
    try:
        services = Services(shared=shared_services)
    except (DrillFailed, BondWatchError, psycopg.Error) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"  services {services.describe()}; platform `bondwatch {kind}`")
    started_at = datetime.now(UTC)
    started = time.monotonic()
    results: list[DrillResult] = []
    try:
        for name in selected:
            results.append(_run_one(services, name, timing, load_devices, kind, keep))
    finally:
        services.close()
    total_s = time.monotonic() - started
    _summary(results, total_s)
    where = "shared" if shared_services else "private"
    out = json_out or services.settings.state_dir / "bench" / "drills.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "command": command,
        "started": started_at.isoformat(timespec="seconds"),
        "total_s": round(total_s, 1),
        "machine": machine(),
        "load": {"devices": load_devices, "hz_per_device": 1, "platform": kind, "services": where},
        "timing": timing.__dict__,
        "drills": [r.as_json() for r in results],
        "passed": all(r.verdict != "FAIL" for r in results),
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    console.print(f"results in {out}")
    if any(r.verdict == "FAIL" for r in results):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
