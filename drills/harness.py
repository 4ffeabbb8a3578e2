"""What every drill shares: the platform and an edge agent as real processes, a steady load, the count.

One drill runs on a site of its own (``drill-xxxxxx``), so its topics, broker session and rows
never mix with anything else on the machine:

    GnssTerminal x N (ptys, 1 Hz NMEA)  ->  `bondwatch edge --config FILE`  (queue file in a temp dir)
                                             |  MQTT QoS 1 (directly, or through a TcpForwarder)
                                             v
                                         broker  ->  `bondwatch ingest` or `bondwatch serve`  ->  TimescaleDB

The count at the end is the drill's verdict. *Published* is what the agent assigned a seq: after a
clean stop with an empty queue, the queue file's ``next_seq`` per device. *Stored* is the rows of
those devices in ``positions``. Every published seq must be stored once: a missing one is a gap
(a loss), a seq stored twice is a duplicate (a reused seq or a repeat the unique key did not catch).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform as host
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families
from rich.progress import Progress, TaskID

from bondwatch.db.migrate import migrate
from bondwatch.db.settings import DbSettings
from bondwatch.mqtt import make_client
from bondwatch.services.manager import LocalServices
from bondwatch.services.mosquitto import Mosquitto
from bondwatch.services.postgres import Postgres
from bondwatch.services.runtime import Runtime
from bondwatch.services.secrets import LocalSecrets, load_or_create
from bondwatch.services.settings import ServicesSettings
from bondwatch.settings import MqttTarget, load_settings
from edge.queue import EdgeQueue
from edge.readings import Position
from simulators.devices.gnss_terminal import GnssTerminal

BONDWATCH = str(Path(sys.executable).with_name("bondwatch"))
# Loaded before any fork: the function run between fork and exec must take no Python-level locks.
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
_PR_SET_PDEATHSIG = 1
PlatformKind = Literal["ingest", "serve"]
# Per device and second of load: 1 Hz terminals. Kept for the queue-growth checks of the outage drills.
READINGS_PER_DEVICE_S = 1.0


class DrillFailed(Exception):
    """The drill could not be carried out as scripted (a process did not start, a wait timed out)."""


class DrillSkipped(Exception):
    """The drill cannot run on this machine (e.g. no permission to mount a file system)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mqtt_url(target: MqttTarget, port: int, host_name: str = "127.0.0.1") -> str:
    auth = ""
    if target.username:
        auth = (
            quote(target.username, safe="") + (f":{quote(target.password, safe='')}" if target.password else "") + "@"
        )
    return f"mqtt://{auth}{host_name}:{port}"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "kernel": host.release(),
        "python": host.python_version(),
        "hostname": host.node(),
    }


class PrivatePostgres(Postgres):
    """A throwaway cluster of the same build and server configuration, on its own port and folder."""

    def __init__(self, runtime: Runtime, settings: ServicesSettings, name: str) -> None:
        super().__init__(runtime, settings.model_copy(update={"pg_port": free_port()}))
        self.inner = f"{runtime.data_inner}/{name}"
        self.host_dir = runtime.host_path(self.inner)

    @property
    def port(self) -> int:
        return self.settings.pg_port

    @property
    def log_file(self) -> Path:
        return self.host_dir / "server.log"

    def start(self, secrets: LocalSecrets) -> None:
        self.init(secrets)
        if self.pid() is None:
            self._pg("pg_ctl", "-D", self.inner, "-l", f"{self.inner}/server.log", "-w", "-t", "60", "start")
        self._ensure_database(secrets)


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{port}"))


class Services:
    """The broker and the database every drill uses.

    By default both are private: a Mosquitto and a PostgreSQL cluster of the same builds, configuration,
    tuning and schema as `bondwatch services`' ones, each on its own port and folder, made for the run
    and removed after it. Restarting them then disturbs nothing else on the machine (a demo, tests,
    other drills). ``shared`` uses `bondwatch services`' own instead (the dev database `bondwatch`),
    and the broker and database drills restart those.
    """

    def __init__(self, shared: bool = False) -> None:
        self.local = LocalServices(load_settings(ServicesSettings))
        self.secrets: LocalSecrets = load_or_create(self.local.settings)
        self.shared = shared
        base = load_settings(DbSettings)
        self.postgres: Postgres
        if shared:
            self.postgres, self.broker = self.local.postgres, self.local.mosquitto
            if self.postgres.pid() is None:
                raise DrillFailed("PostgreSQL is not running: start it with `bondwatch services up`")
            self.settings = base
        else:
            name = f"drills-{os.getpid()}"
            runtime = self.local.runtime
            self.postgres = PrivatePostgres(runtime, self.local.settings, f"{name}-pg")
            self.broker = Mosquitto(runtime, self.local.settings, name=name, port=free_port(), tls_port=0)
            port = self.postgres.settings.pg_port
            self.settings = base.model_copy(
                update={
                    "db_url": _with_port(base.db_url, port),
                    "db_admin_url": _with_port(base.db_admin_url, port) if base.db_admin_url else None,
                    "db_readonly_url": _with_port(base.db_readonly_url, port) if base.db_readonly_url else None,
                }
            )
        self.db_url = self.settings.db_admin_url or self.settings.db_url
        try:
            if not shared:
                self.postgres.start(self.secrets)
                migrate(self.settings)
            self._check_schema()
            self.broker.start(self.secrets)
        except BaseException:
            self.close()
            raise
        self.mqtt_url = mqtt_url(self.settings.mqtt, self.broker.port)

    def describe(self) -> str:
        where = "shared (`bondwatch services`)" if self.shared else "private"
        pg_port = self.postgres.settings.pg_port
        return f"{where}: Mosquitto on 127.0.0.1:{self.broker.port}, PostgreSQL on 127.0.0.1:{pg_port}"

    def env(self) -> dict[str, str]:
        """What the platform's processes need to find these services."""
        env = {"BONDWATCH_MQTT_URL": self.mqtt_url, "BONDWATCH_DB_URL": self.settings.db_url}
        if self.settings.db_admin_url:
            env["BONDWATCH_DB_ADMIN_URL"] = self.settings.db_admin_url
        if self.settings.db_readonly_url:
            env["BONDWATCH_DB_READONLY_URL"] = self.settings.db_readonly_url
        return env

    def _check_schema(self) -> None:
        try:
            with psycopg.connect(self.db_url, connect_timeout=10) as conn:
                found = conn.execute("SELECT to_regclass('positions')").fetchone()
        except psycopg.Error as exc:
            raise DrillFailed(f"cannot reach the database: {exc}") from exc
        if found is None or found[0] is None:
            raise DrillFailed("the database has no schema: run `bondwatch db migrate` first")

    def start_broker(self) -> None:
        self.broker.start(self.secrets)

    def stop_broker(self) -> None:
        self.broker.stop()

    def start_database(self) -> None:
        self.postgres.start(self.secrets)

    def stop_database(self) -> None:
        self.postgres.stop()

    def close(self) -> None:
        """Leave the services as found: the shared ones running, the private ones gone."""
        if self.shared:
            if self.postgres.pid() is None:
                self.start_database()
            self.start_broker()
            return
        self.broker.stop()
        shutil.rmtree(self.broker.host_dir, ignore_errors=True)
        self.postgres.stop()
        shutil.rmtree(self.postgres.host_dir, ignore_errors=True)


@dataclass
class DrillResult:
    name: str
    title: str
    site: str = ""
    seconds: float = 0.0
    devices: int = 0
    published: int = 0
    stored: int = 0
    duplicates: int = 0
    gaps: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    skipped: str | None = None
    workdir: str | None = None

    @property
    def passed(self) -> bool:
        return self.skipped is None and not self.failures

    @property
    def verdict(self) -> str:
        return "SKIP" if self.skipped is not None else ("PASS" if self.passed else "FAIL")

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "verdict": self.verdict,
            "site": self.site,
            "seconds": round(self.seconds, 1),
            "devices": self.devices,
            "published": self.published,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "details": self.details,
            "failures": self.failures,
            "skipped": self.skipped,
        }


def moving(index: int) -> Callable[[datetime], Position]:
    """A truck driving east on its own parallel: every fix differs, so every reading is a real one."""

    def fix(now: datetime) -> Position:
        return Position(now, 39.45 + index * 0.001, 109.70 + (now.timestamp() % 3600) * 1e-5, "3d",
                        speed_kmh=40.0, heading_deg=90.0, hdop=0.9, sats=12, soc_pct=60.0)  # fmt: skip

    return fix


@dataclass
class AgentSample:
    """One look at the running agent (its /metrics) and the database."""

    t: float
    depth: int | None
    acked: int | None
    produced: int | None
    refused: int | None
    dropped: int | None
    connected: bool | None
    stored: int | None


class Drill:
    """One drill's site, processes and load; the drill functions script them. Use as a context manager."""

    def __init__(
        self,
        services: Services,
        result: DrillResult,
        progress: Progress,
        devices: int,
        platform: PlatformKind = "ingest",
        keep: bool = False,
    ) -> None:
        self.services = services
        self.result = result
        self.progress = progress
        self.devices = devices
        self.platform: PlatformKind = platform
        self.keep = keep
        self.site = f"drill-{uuid.uuid4().hex[:6]}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bondwatch-{self.site}-"))
        self.device_ids = [f"{self.site}-trk-{i:02d}" for i in range(devices)]
        self.gateway_id = f"{self.site}-gw"
        self.queue_path = self.workdir / "queue" / "edge-queue.db"
        self.agent_metrics_port = free_port()
        self.agent_mqtt_url = services.mqtt_url
        self.agent_extra: dict[str, Any] = {}
        self.terminals: list[GnssTerminal] = []
        self.samples: list[AgentSample] = []
        self.final: AgentSample | None = None
        self._platform_proc: subprocess.Popen[bytes] | None = None
        self._agent_proc: subprocess.Popen[bytes] | None = None
        self._logs: list[IO[bytes]] = []
        self._db: psycopg.Connection[tuple[Any, ...]] | None = None
        self._task: TaskID = progress.add_task(result.name, total=None, info="")
        self._started = time.monotonic()
        self._last_sample = 0.0
        # Run after the processes are stopped and before the work folder goes (e.g. unmounting it).
        self.on_close: list[Callable[[], None]] = []
        result.site = self.site
        result.devices = devices

    # -- context -----------------------------------------------------------------------------------

    def __enter__(self) -> Drill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.result.seconds = time.monotonic() - self._started
        self.stop_load()
        for proc in (self._agent_proc, self._platform_proc):
            _terminate(proc)
        for log_file in self._logs:
            log_file.close()
        for action in reversed(self.on_close):
            try:
                action()
            except Exception as exc:
                self.say(f"[yellow]clean-up failed: {exc}[/]")
        self._forget_broker_state()
        if not self.keep:
            self._delete_rows()
        if self._db is not None:
            with contextlib.suppress(psycopg.Error):
                self._db.close()
        if self.keep or not self.result.passed:
            self.result.workdir = str(self.workdir)  # the logs, for the post-mortem
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.progress.update(self._task, visible=False)

    def say(self, text: str) -> None:
        self.progress.console.print(f"  [dim]{time.monotonic() - self._started:6.1f} s[/] {text}")

    # -- processes ---------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "BONDWATCH_STATE_DIR": str(self.services.settings.state_dir),
            "BONDWATCH_SITE": self.site,
            **self.services.env(),
            "BONDWATCH_INGEST_METRICS_PORT": "0",
            "BONDWATCH_RULES_METRICS_PORT": "0",
            "BONDWATCH_API_PORT": str(free_port()),
            "BONDWATCH_LOG_LEVEL": "INFO",
            "COLUMNS": "240",  # the children's rich log lines unwrapped, so a file name stays on one line
        }

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log_file = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed in close()
        self._logs.append(log_file)
        log_file.write(f"--- {time.strftime('%H:%M:%S')} starting {' '.join(argv)}\n".encode())
        log_file.flush()
        return subprocess.Popen(argv, env=env, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    def start_platform(self) -> None:
        self._platform_proc = self._spawn(self.platform, [BONDWATCH, self.platform], self.env())
        self.wait_for_ingest_subscription(len(self.log_text(self.platform)))

    def wait_for_ingest_subscription(self, log_offset: int, timeout: float = 60) -> float:
        """Until ingest logs its subscription after ``log_offset`` of the platform's log; the seconds it took."""

        def subscribed() -> bool:
            if self._platform_proc is not None and self._platform_proc.poll() is not None:
                raise DrillFailed(f"`bondwatch {self.platform}` exited with {self._platform_proc.returncode}")
            return f"bondwatch-ingest-{self.site}-1: connected" in self.log_text(self.platform)[log_offset:]

        return self.wait_until("platform connecting", subscribed, timeout)

    def ingest_pid(self) -> int:
        """The process that runs ingest: the platform process, or `bondwatch serve`'s ingest child."""
        if self._platform_proc is None:
            raise DrillFailed("the platform is not running")
        if self.platform == "ingest":
            return self._platform_proc.pid
        for pid in _children(self._platform_proc.pid):
            if b"ingest" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                return pid
        raise DrillFailed("`bondwatch serve` has no ingest child")

    def kill_ingest(self) -> int:
        pid = self.ingest_pid()
        os.kill(pid, signal.SIGKILL)
        if self.platform == "ingest" and self._platform_proc is not None:
            self._platform_proc.wait(timeout=10)
        return pid

    def start_load(self) -> None:
        self.terminals = [GnssTerminal(moving(i)).start() for i in range(self.devices)]

    def stop_load(self) -> None:
        for terminal in self.terminals:
            terminal.stop()
        self.terminals = []

    def write_agent_config(self) -> Path:
        if not self.terminals:
            raise DrillFailed("the load must run before the agent's config names its ports")
        path = self.workdir / "edge.toml"
        agent = {
            "gateway_id": self.gateway_id,
            "queue_path": str(self.queue_path),
            "metrics_port": self.agent_metrics_port,
            **self.agent_extra,
        }
        lines = ["[agent]", *(f"{key} = {_toml(value)}" for key, value in agent.items()), ""]
        for device_id, terminal in zip(self.device_ids, self.terminals, strict=True):
            lines += ["[[devices]]", f'id = "{device_id}"', 'driver = "nmea_serial"', f'port = "{terminal.path}"', ""]
        path.write_text("\n".join(lines))
        return path

    def start_agent(self) -> None:
        config = self.write_agent_config()
        env = {**self.env(), "BONDWATCH_MQTT_URL": self.agent_mqtt_url}
        self._agent_proc = self._spawn("agent", [BONDWATCH, "edge", "--config", str(config)], env)
        self.wait_until("agent starting", lambda: self.agent_metrics() is not None, 30)

    def platform_exited(self) -> bool:
        return self._platform_proc is None or self._platform_proc.poll() is not None

    def agent_alive(self) -> bool:
        return self._agent_proc is not None and self._agent_proc.poll() is None

    def agent_pid(self) -> int:
        if self._agent_proc is None:
            raise DrillFailed("the agent is not running")
        return self._agent_proc.pid

    def kill_agent(self) -> None:
        if self._agent_proc is None:
            return
        self._agent_proc.send_signal(signal.SIGKILL)
        self._agent_proc.wait(timeout=10)

    def stop_agent(self, timeout: float = 60) -> None:
        proc = self._agent_proc
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise DrillFailed(f"the agent did not stop within {timeout:.0f} s of SIGTERM") from exc
        if code != 0:
            self.result.failures.append(f"the agent exited with {code} on SIGTERM")

    def log_text(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- observing ---------------------------------------------------------------------------------

    def agent_metrics(self) -> dict[str, float] | None:
        """The agent's metrics, summed over labels; None while it does not answer."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.agent_metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[sample.name] = out.get(sample.name, 0.0) + sample.value
        return out

    def _database(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._db is None or self._db.closed or self._db.broken:
            self._db = psycopg.connect(self.services.db_url, autocommit=True, connect_timeout=5)
        return self._db

    def stored_count(self) -> int | None:
        try:
            row = (
                self._database()
                .execute("SELECT count(*) FROM positions WHERE device_id = ANY(%s)", (self.device_ids,))
                .fetchone()
            )
        except psycopg.Error:
            self._db = None
            return None
        return int(row[0]) if row else 0

    def stored_seqs(self) -> dict[str, list[int]]:
        rows = (
            self._database()
            .execute(
                "SELECT device_id, array_agg(seq ORDER BY seq) FROM positions WHERE device_id = ANY(%s) GROUP BY 1",
                (self.device_ids,),
            )
            .fetchall()
        )
        return {device: list(seqs) for device, seqs in rows}

    def sample(self) -> AgentSample:
        metrics = self.agent_metrics() if self.agent_alive() else None

        def value(name: str) -> int | None:
            return None if metrics is None else int(metrics.get(name, 0))

        connected = None if metrics is None else bool(metrics.get("bondwatch_edge_broker_connected", 0))
        sample = AgentSample(
            time.monotonic() - self._started,
            value("bondwatch_edge_queue_depth"),
            value("bondwatch_edge_published_total"),
            value("bondwatch_edge_readings_total"),
            value("bondwatch_edge_queue_refused_total"),
            value("bondwatch_edge_queue_dropped_total"),
            connected,
            self.stored_count(),
        )
        self.samples.append(sample)
        return sample

    def _show(self, label: str, sample: AgentSample) -> None:
        def fmt(v: int | None) -> str:
            return "-" if v is None else f"{v:,}"

        link = {None: "agent down", True: "agent online", False: "agent offline"}[sample.connected]
        info = f"queue {fmt(sample.depth)} | acked {fmt(sample.acked)} | stored {fmt(sample.stored)} | {link}"
        if sample.refused:
            info += f" | refused {sample.refused:,}"
        if sample.stored is None:
            info += " | database down"
        self.progress.update(self._task, description=f"{self.result.name}: {label}", info=info)

    def _tick(self, label: str) -> AgentSample | None:
        now = time.monotonic()
        if now - self._last_sample < 1.0:
            return None
        self._last_sample = now
        sample = self.sample()
        self._show(label, sample)
        return sample

    def run_for(self, seconds: float, label: str, every: Callable[[AgentSample], None] | None = None) -> None:
        """Let the load run for ``seconds``, showing the queue and the count."""
        self.progress.reset(self._task, total=seconds, completed=0)
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            self.progress.update(self._task, completed=elapsed)
            sample = self._tick(label)
            if sample is not None and every is not None:
                every(sample)
            time.sleep(min(0.25, max(0.0, seconds - elapsed)))
        self.progress.update(self._task, completed=seconds)

    def wait_until(self, label: str, predicate: Callable[[], bool], timeout: float) -> float:
        """Poll ``predicate`` (showing progress) until it holds; the seconds it took. DrillFailed on time-out."""
        self.progress.reset(self._task, total=None)
        start = time.monotonic()
        while not predicate():
            if time.monotonic() - start > timeout:
                raise DrillFailed(f"{label}: not done within {timeout:.0f} s")
            self._tick(label)
            time.sleep(0.25)
        return time.monotonic() - start

    # -- the end of every drill ---------------------------------------------------------------------

    def finish(self, drain_timeout: float = 300) -> dict[str, int]:
        """Stop the load, let the agent drain and stop cleanly, then count published against stored."""
        self.stop_load()
        self.run_for(3, "load stopped")  # the drivers decode the last bytes on the lines

        def drained() -> bool:
            if not self.agent_alive():
                raise DrillFailed("the agent died while draining")
            metrics = self.agent_metrics()
            return metrics is not None and metrics.get("bondwatch_edge_queue_depth", 1) == 0

        self.result.details["drain_s"] = round(self.wait_until("agent draining", drained, drain_timeout), 1)
        self.final = self.sample()  # the agent's own counts, with the load stopped and nothing queued
        self.stop_agent()
        queue = EdgeQueue(self.queue_path)
        try:
            left = queue.depth()
            published = {device: queue.next_seq(device) for device in self.device_ids}
        finally:
            queue.close()
        if left:
            self.result.failures.append(f"{left} readings still queued after a clean stop")
        total = sum(published.values())
        self.result.published = total
        if total == 0:
            self.result.failures.append("the agent published nothing")

        settle_start: list[float] = [time.monotonic()]
        last: list[int | None] = [None]

        def all_stored() -> bool:
            count = self.stored_count()
            if count != last[0]:
                last[0], settle_start[0] = count, time.monotonic()
            # Done when everything is there, or when nothing has moved for 30 s (then the count tells).
            return count is not None and (count >= total or time.monotonic() - settle_start[0] > 30)

        self.wait_until("ingest catching up", all_stored, 300)
        self.count(published)
        return published

    def count(self, published: dict[str, int]) -> None:
        stored = self.stored_seqs()
        duplicates = gaps = beyond = 0
        for device in self.device_ids:
            seqs = stored.get(device, [])
            distinct = set(seqs)
            duplicates += len(seqs) - len(distinct)
            beyond += sum(1 for s in distinct if s >= published[device])
            gaps += sum(1 for s in range(published[device]) if s not in distinct)
        result = self.result
        result.stored = sum(len(v) for v in stored.values())
        result.duplicates, result.gaps = duplicates, gaps
        if result.stored != result.published:
            result.failures.append(f"published {result.published:,} but stored {result.stored:,}")
        if duplicates:
            result.failures.append(f"{duplicates} seqs stored twice")
        if gaps:
            result.failures.append(f"{gaps} published seqs missing from the database")
        if beyond:
            result.failures.append(f"{beyond} stored seqs the queue never assigned")

    # -- cleaning up -------------------------------------------------------------------------------

    def _forget_broker_state(self) -> None:
        """End the platform's persistent sessions and clear the agent's retained statuses on the broker."""
        target = MqttTarget.parse(self.services.mqtt_url)
        try:
            for client_id in (f"bondwatch-ingest-{self.site}-1", f"bondwatch-rules-{self.site}"):
                # A clean-session connect under the same id makes the broker drop the stored session.
                client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                                     clean_session=True)  # fmt: skip
                if target.username:
                    client.username_pw_set(target.username, target.password)
                _connect_and_wait(client, target)
                client.disconnect()
                client.loop_stop()
            client = make_client(target, f"{self.site}-cleanup")
            _connect_and_wait(client, target)
            infos = [
                client.publish(f"bw/v1/{self.site}/status/{device}", b"", qos=1, retain=True)
                for device in [self.gateway_id, *self.device_ids]
            ]
            for info in infos:
                info.wait_for_publish(timeout=5)
            client.disconnect()
            client.loop_stop()
        except (OSError, RuntimeError, ValueError, TimeoutError):
            pass  # a broker that is gone has nothing left to clean

    def _delete_rows(self) -> None:
        ids = [*self.device_ids, self.gateway_id]
        try:
            with psycopg.connect(self.services.db_url, autocommit=True, connect_timeout=10) as conn:
                for table in ("positions", "device_latest", "device_status"):
                    conn.execute(f"DELETE FROM {table} WHERE device_id = ANY(%s)", (ids,))
                conn.execute("DELETE FROM dead_letters WHERE topic LIKE %s", (f"bw/v1/{self.site}/%",))
        except psycopg.Error as exc:
            self.say(f"[yellow]could not delete the drill's rows: {exc}[/]")


def _connect_and_wait(client: mqtt.Client, target: MqttTarget, timeout: float = 10) -> None:
    client.connect(target.host, target.port)
    client.loop_start()
    deadline = time.monotonic() + timeout
    while not client.is_connected():
        if time.monotonic() > deadline:
            client.loop_stop()
            raise TimeoutError("no CONNACK")
        time.sleep(0.05)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _die_with_parent() -> None:
    # A drill run that is itself killed leaves no agent or ingest behind holding its ports and sessions.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(stat.parent.name))
    return out


def _terminate(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
