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
devices_app = typer.Typer(help="Broker logins of the registered devices.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")
simulate_app = typer.Typer(help="Device simulators and scenarios.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")
report_app = typer.Typer(help="Monthly operations reports (月度运行情况通报).", no_args_is_help=True)
app.add_typer(report_app, name="report")
dashboards_app = typer.Typer(help="Grafana dashboards (dashboards/).", no_args_is_help=True)
app.add_typer(dashboards_app, name="dashboards")

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


@app.command("trace")
def trace(
    epc: Annotated[str, typer.Argument(help="The tag's EPC, hex in any case.")],
    epcis: Annotated[bool, typer.Option("--epcis", help="Print the EPCIS 2.0 JSON-LD document.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the timeline as the API's JSON.")] = False,
) -> None:
    """A tag's story from source to destination (源头可溯、去向可查), read from the database."""
    from api.settings import ApiSettings
    from api.trace.console import print_trace

    print_trace(load_settings(ApiSettings), epc, as_epcis=epcis, as_json=json_out)


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


@token_app.command("revoke")
def token_revoke(
    ident: Annotated[str, typer.Argument(help="The token's id, or its name (all tokens of that name).")],
) -> None:
    """Revoke API tokens: their next request gets 401."""
    from api.auth import revoke_token
    from bondwatch.db.settings import DbSettings

    revoked = revoke_token(load_settings(DbSettings), ident)
    if not revoked:
        console.print(f"[red]error:[/] no active token with id or name {ident!r}")
        raise typer.Exit(1)
    for token_id, token_name in revoked:
        typer.echo(f"revoked token {token_id} ({token_name})")


@token_app.command("list")
def token_list(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """API tokens: id, name, role, when made, last used and revoked (never the token itself)."""
    from api.auth import list_tokens
    from bondwatch.db.settings import DbSettings

    tokens = list_tokens(load_settings(DbSettings))
    if json_out:
        typer.echo(json.dumps([{**t.__dict__} for t in tokens], default=str))
        return
    for t in tokens:
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
        typer.echo(f"{t.id:>5}  {t.role:<10}  {state:<22}  {t.name}")


@devices_app.command("provision")
def devices_provision(
    device: Annotated[
        list[str] | None, typer.Option("--device", help="Only this device (repeatable); default: every registered one.")
    ] = None,
    rotate: Annotated[
        bool, typer.Option(help="New passwords for the chosen logins (every login without --device/--gateway).")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write each new credential to OUT/ID.env (mode 0600) instead of printing it.")
    ] = None,
    gateway: Annotated[
        list[str] | None,
        typer.Option(help="GATEWAY_ID=DEVICE_ID[,DEVICE_ID...]: one login for an edge gateway and its devices."),
    ] = None,
    revoke: Annotated[
        list[str] | None, typer.Option(help="Take this login away and keep it away; --device ID gives it back.")
    ] = None,
) -> None:
    """Broker logins for the registered devices, an ACL confining each to its own topics, broker reload."""
    from bondwatch.provision import ProvisionSettings, run_provision

    run_provision(
        load_settings(ProvisionSettings),
        devices=device or [],
        rotate=rotate,
        gateways=gateway or [],
        revoke=revoke or [],
        out=out,
    )


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


@simulate_app.command("history")
def simulate_history(
    days: Annotated[float, typer.Option(min=0.01, max=400, help="Simulated days.")] = 30,
    start: Annotated[
        str | None, typer.Option(help="First local day (Asia/Shanghai), YYYY-MM-DD; default: the previous month's 1st.")
    ] = None,
    trucks: Annotated[int, typer.Option(min=1, max=500, help="Zero-carbon trucks in the fleet.")] = 24,
    rooms: Annotated[int, typer.Option(min=1, max=12, help="Cold rooms (of the cold store's 12).")] = 12,
    gps_every: Annotated[float, typer.Option(min=1, max=3600, help="Seconds between a truck's fixes.")] = 60,
    temp_every: Annotated[float, typer.Option(min=1, max=3600, help="Seconds between a sensor's readings.")] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the models and incidents.")] = 716,
    prefix: Annotated[str, typer.Option(help="Put in front of every device, vehicle and note id.")] = "",
) -> None:
    """Weeks of trucks, cold rooms and gates written straight into the database, with the gate decisions, alerts
    and dispatcher actions the platform makes of them (simulators/history.py)."""
    from simulators.history import describe, local_midnight, previous_month_start, seed_history

    try:
        begin = local_midnight(start) if start else previous_month_start()
    except ValueError:
        raise typer.BadParameter(f"{start!r} is not a date YYYY-MM-DD", param_hint="--start") from None
    settings = load_settings(CommonSettings)
    summary = seed_history(
        settings.db_url, settings.site, begin, days, trucks=trucks, rooms=rooms, gps_every_s=gps_every,
        temp_every_s=temp_every, seed=seed, progress=True, prefix=prefix,
    )  # fmt: skip
    typer.echo(describe(summary))


@app.command("demo")
def demo() -> None:
    """The platform with simulated devices, for a first look: serve + simulate load."""
    from bondwatch.demo import run_demo

    run_demo()


@report_app.command("monthly")
def report_monthly(
    month: Annotated[str | None, typer.Option(help="YYYY-MM, a local month; default: the previous month.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="pdf, json or csv.")] = "pdf",
    out: Annotated[
        Path | None,
        typer.Option(
            help="File to write, '-' for standard output; default: a PDF to ./bondwatch-monthly-report-"
            "YYYY-MM.pdf, JSON and CSV to standard output."
        ),
    ] = None,
) -> None:
    """A month's operations report: the issued one if stored, else generated (and kept once the month is over)."""
    from reports.cli import monthly_command

    monthly_command(month, fmt, out)


@dashboards_app.command("push")
def dashboards_push(
    url: Annotated[str, typer.Option("--url", envvar="BONDWATCH_GRAFANA_URL", help="Grafana's base URL.")],
    token: Annotated[
        str, typer.Option("--token", envvar="BONDWATCH_GRAFANA_TOKEN", help="A service-account token (Editor).")
    ],
    folder: Annotated[str, typer.Option("--folder", help="Folder title; created when missing.")] = "BondWatch 保税监管",
    folder_uid: Annotated[str, typer.Option("--folder-uid", help="Folder uid (as provisioning uses).")] = "bondwatch",
    directory: Annotated[Path | None, typer.Option("--dir", help="The JSON files (default: dashboards/).")] = None,
) -> None:
    """Save every dashboard into a running Grafana (overwriting), in one folder."""
    from bondwatch.grafana import push_dashboards

    for pushed in push_dashboards(url, token, folder_title=folder, folder_uid=folder_uid, directory=directory):
        typer.echo(f"{pushed.uid}: {pushed.title} -> {pushed.url or '(no url)'} version {pushed.version}")

def main() -> None:
    try:
        app()
    except BondWatchError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from exc
