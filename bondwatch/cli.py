"""The `bondwatch` command: one entry point for every service and tool of the platform."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from bondwatch.errors import BondWatchError
from bondwatch.settings import CommonSettings, load_settings

app = typer.Typer(help="BondWatch: bonded-zone IoT and logistics platform.", no_args_is_help=True)
services_app = typer.Typer(help="Local MQTT broker and TimescaleDB on loopback.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(services_app, name="services")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
simulate_app = typer.Typer(help="Device simulators and scenarios.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")

console = Console(stderr=True)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=console, show_path=False)],
    )


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    _setup_logging("DEBUG" if verbose else load_settings(CommonSettings).log_level)


@services_app.command("up")
def services_up() -> None:
    """Start Mosquitto and PostgreSQL+TimescaleDB (builds the Debian 13 root on first use)."""
    from bondwatch.services.manager import LocalServices
    from bondwatch.services.settings import ServicesSettings

    services = LocalServices(load_settings(ServicesSettings))
    services.up()
    _print_status(services)


@services_app.command("down")
def services_down() -> None:
    """Stop both services; data stays in the state folder."""
    from bondwatch.services.manager import LocalServices
    from bondwatch.services.settings import ServicesSettings

    services = LocalServices(load_settings(ServicesSettings))
    services.down()
    _print_status(services)


@services_app.command("status")
def services_status(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Whether each service runs, where it listens, where it logs. Exit 1 if one is down."""
    from bondwatch.services.manager import LocalServices
    from bondwatch.services.settings import ServicesSettings

    services = LocalServices(load_settings(ServicesSettings))
    states = services.status()
    if json_out:
        typer.echo(json.dumps([s.__dict__ for s in states]))
    else:
        _print_status(services)
    if not all(s.running for s in states):
        raise typer.Exit(1)


def _print_status(services: object) -> None:
    from bondwatch.services.manager import LocalServices

    assert isinstance(services, LocalServices)
    table = Table("service", "state", "pid", "address", "log")
    for s in services.status():
        table.add_row(
            s.name, "[green]running[/]" if s.running else "[red]stopped[/]", str(s.pid or "-"), s.address, s.log
        )
    Console().print(table)


@db_app.command("migrate")
def db_migrate() -> None:
    """Bring the schema to the current version (idempotent)."""
    from bondwatch.db.migrate import migrate
    from bondwatch.db.settings import DbSettings

    applied = migrate(load_settings(DbSettings))
    typer.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))


@app.command("config")
def config(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the effective settings (passwords masked)."""
    from api.settings import ApiSettings
    from ingest.settings import IngestSettings
    from rules.settings import RulesSettings

    view: dict[str, object] = {}
    for cls in (ApiSettings, IngestSettings, RulesSettings):
        view.update(load_settings(cls).public_view())
    if json_out:
        typer.echo(json.dumps(view, indent=2, sort_keys=True))
    else:
        for key in sorted(view):
            typer.echo(f"{key} = {view[key]}")


@app.command("stats")
def stats(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Reading and dead-letter counts, counted from the database."""
    from bondwatch.db.settings import DbSettings
    from bondwatch.db.stats import reading_stats

    counts = reading_stats(load_settings(DbSettings))
    if json_out:
        typer.echo(json.dumps(counts))
    else:
        for kind, n in counts["readings"].items():
            typer.echo(f"{kind:>6}: {n}")
        typer.echo(f"dead letters: {counts['dead_letters']}")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="viewer, dispatcher or admin")],
    name: Annotated[str, typer.Option(help="Who or what the token is for.")] = "",
) -> None:
    """Print a new API token; only its hash is stored."""
    from api.auth import Role, create_token
    from bondwatch.db.settings import DbSettings

    try:
        parsed = Role(role)
    except ValueError:
        raise typer.BadParameter("role must be viewer, dispatcher or admin", param_hint="--role") from None
    typer.echo(create_token(load_settings(DbSettings), parsed, name or f"{role} token"))


@app.command("ingest")
def ingest(
    workers: Annotated[int, typer.Option(min=1, max=32, help="Worker processes sharing the subscription.")] = 1,
) -> None:
    """Run ingest workers: MQTT telemetry into TimescaleDB, with metrics on /metrics."""
    from ingest.service import run_standalone
    from ingest.settings import IngestSettings

    run_standalone(load_settings(IngestSettings), workers)


@app.command("rules")
def rules() -> None:
    """Run the rules engine: alerts and gate decisions (one per site; a second one stands by)."""
    from rules.service import run_standalone
    from rules.settings import RulesSettings

    run_standalone(load_settings(RulesSettings))


@app.command("api")
def api() -> None:
    """Run the REST API."""
    from api.server import run_api
    from api.settings import ApiSettings

    run_api(load_settings(ApiSettings), with_ingest=False)


@app.command("serve")
def serve() -> None:
    """The whole platform in one process: ingest, rules, API, scheduled jobs and /metrics."""
    from api.server import run_api
    from api.settings import ApiSettings

    run_api(load_settings(ApiSettings), with_ingest=True)


@app.command("edge")
def edge(config: Annotated[Path, typer.Option("--config", help="Edge agent config file (TOML).")]) -> None:
    """Run an edge agent: read the configured devices, queue on disk, publish to the broker."""
    from edge.agent import run_agent

    run_agent(config, load_settings(CommonSettings))


@simulate_app.command("load")
def simulate_load(
    devices: Annotated[int, typer.Option(min=1, max=100_000, help="Simulated devices (gps, temp, rfid).")] = 30,
    rate: Annotated[float, typer.Option(min=0.1, help="Messages per second, all devices together.")] = 30.0,
    duration: Annotated[float, typer.Option(min=0, help="Seconds; 0 runs until interrupted.")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed of the device traffic.")] = 716,
    via_edge: Annotated[
        bool, typer.Option(help="GNSS terminals on virtual serial lines read by an edge agent.")
    ] = False,
) -> None:
    """Publish contract readings at a steady rate, straight to MQTT or through an edge agent."""
    from simulators.load import run_load, run_load_via_edge

    settings = load_settings(CommonSettings)
    if via_edge:
        result = run_load_via_edge(settings, devices, rate, duration or None, settings.state_dir / "sim" / "load")
    else:
        result = run_load(settings, devices, rate, duration or None, seed)
    typer.echo(f"published {result.published} messages in {result.seconds:.1f} s")


@simulate_app.command("site")
def simulate_site(
    trucks: Annotated[int, typer.Option(min=1, max=500, help="Zero-carbon trucks in the fleet.")] = 24,
    seed: Annotated[int, typer.Option(help="Seed of the fleet and cold-room models.")] = 716,
    seed_registry: Annotated[bool, typer.Option(help="PUT geofences, profiles, devices, vehicles, tags.")] = True,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="KIND:TARGET@SECONDS, repeatable; kinds: gps_jump, bad_checksum, repeat, clock_skew, "
            "silent (trucks); crc, modbus_exception, silent, compressor (cold rooms)."
        ),
    ] = None,
) -> None:
    """The bonded zone on virtual serial devices: trucks (NMEA), cold rooms (Modbus RTU), gate readers
    (serial RFID), each read by an edge agent, until interrupted."""
    from simulators.site import Fault, run_site

    try:
        faults = [Fault.parse(f) for f in fault or []]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault") from None
    settings = load_settings(CommonSettings)
    run_site(settings, settings.state_dir / "sim", seed, trucks, seed_registry, faults)


@simulate_app.command("scenario")
def simulate_scenario(
    file: Annotated[str | None, typer.Argument(help="A scenario file, or a bundled one's name.")] = None,
    mode: Annotated[
        str, typer.Option(help="live: in real time; backlog: everything at once, stamped in the past.")
    ] = "live",
    prefix: Annotated[str, typer.Option(help="Put in front of every device, vehicle and note id.")] = "",
    registry: Annotated[bool, typer.Option(help="Write the scenario's registry through the API first.")] = True,
    list_: Annotated[bool, typer.Option("--list", help="List the bundled scenarios.")] = False,
) -> None:
    """Play a scenario file (simulators/scenarios/): one per alert type, deterministic."""
    from simulators.scenario import main as scenario_main

    argv = ["--list"] if list_ else [*([file] if file else []), "--mode", mode, "--prefix", prefix]
    if not registry:
        argv.append("--no-registry")
    raise typer.Exit(scenario_main(argv))


@app.command("demo")
def demo() -> None:
    """The platform with simulated devices, for a first look: serve + simulate load."""
    from bondwatch.demo import run_demo

    run_demo()


def main() -> None:
    try:
        app()
    except BondWatchError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from exc
