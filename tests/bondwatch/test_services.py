"""The local services as `bondwatch services up` leaves them: running, on loopback, locked down."""

from __future__ import annotations

import socket
import stat
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from bondwatch.db.migrate import migrate
from bondwatch.db.settings import DbSettings
from bondwatch.services.manager import LocalServices
from bondwatch.services.secrets import MQTT_USER, secrets_file
from bondwatch.settings import MqttTarget, load_settings

HYPERTABLES = {"positions", "temperatures", "rfid_reads"}


def listen_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket in LISTEN on ``port``, from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for name in ("tcp", "tcp6"):
        table = Path("/proc/net") / name
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] == "0A" and int(port_hex, 16) == port:
                if len(address) == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:
                    raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, 32, 8))
                    found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


# ------------------------------------------------------------------------------------ processes


def test_status_both_running_on_loopback(services: LocalServices) -> None:
    states = {s.name: s for s in services.status()}
    assert set(states) == {"postgresql", "mosquitto"}
    ports = {"postgresql": services.settings.pg_port, "mosquitto": services.settings.mqtt_port}
    for name, state in states.items():
        assert state.running, f"{name} is not running"
        assert state.pid is not None and Path(f"/proc/{state.pid}").exists()
        assert state.address == f"127.0.0.1:{ports[name]}"
        assert Path(state.log).exists(), f"{name} log {state.log} missing"
        socket.create_connection(("127.0.0.1", ports[name]), timeout=2).close()
        assert listen_addresses(ports[name]) == {"127.0.0.1"}, f"{name} must listen on loopback only"


def test_default_ports(services: LocalServices) -> None:
    # The contract's defaults must match what `services up` runs when nothing overrides them.
    assert (services.settings.pg_port, services.settings.mqtt_port) == (55432, 18830)


def test_up_again_is_idempotent(services: LocalServices) -> None:
    before = {s.name: s.pid for s in services.status()}
    services.up()
    again = LocalServices(services.settings)
    again.up()
    assert {s.name: s.pid for s in again.status()} == before
    assert {s.name: s.pid for s in services.status()} == before


def test_secrets_file_is_private(services: LocalServices) -> None:
    path = secrets_file(services.settings)
    assert path == services.settings.state_dir / "services.env"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, f"{path} has mode {mode:o}"
    keys = {line.split("=", 1)[0] for line in path.read_text().splitlines() if "=" in line and line[0] != "#"}
    assert {"BONDWATCH_MQTT_URL", "BONDWATCH_DB_URL", "BONDWATCH_DB_ADMIN_URL", "BONDWATCH_DB_READONLY_URL"} <= keys


# ------------------------------------------------------------------------------------- database


def test_timescaledb_loaded(db: psycopg.Connection[tuple[Any, ...]]) -> None:
    row = db.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    assert row is not None and row[0], "timescaledb extension missing from the database"
    preload = db.execute("SHOW shared_preload_libraries").fetchone()
    assert preload is not None and "timescaledb" in preload[0]
    license_row = db.execute("SHOW timescaledb.license").fetchone()
    assert license_row is not None and license_row[0] in ("apache", "timescale")


def test_hypertables(db: psycopg.Connection[tuple[Any, ...]]) -> None:
    rows = db.execute(
        "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public'"
    ).fetchall()
    assert {r[0] for r in rows} == HYPERTABLES
    dims = db.execute(
        "SELECT hypertable_name, column_name FROM timescaledb_information.dimensions WHERE hypertable_schema = 'public'"
    ).fetchall()
    assert set(dims) == {(t, "ts") for t in HYPERTABLES}


def test_migrate_again_applies_nothing(test_env: dict[str, str], db: psycopg.Connection[tuple[Any, ...]]) -> None:
    before = db.execute("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version").fetchall()
    assert before, "the session's migrate recorded nothing"
    assert migrate(load_settings(DbSettings)) == []
    after = db.execute("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version").fetchall()
    assert after == before


def _app(test_env: dict[str, str]) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(test_env["BONDWATCH_DB_URL"], autocommit=True)


def _readonly(test_env: dict[str, str]) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(test_env["BONDWATCH_DB_READONLY_URL"], autocommit=True)


def test_app_and_readonly_are_their_own_roles(test_env: dict[str, str]) -> None:
    for connect, group in ((_app, "bondwatch_writer"), (_readonly, "bondwatch_reader")):
        with connect(test_env) as conn:
            row = conn.execute(
                "SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole, pg_has_role(current_user, %s, 'MEMBER') "
                "FROM pg_roles r WHERE r.rolname = current_user",
                (group,),
            ).fetchone()
            assert row == (False, False, False, True)


def test_app_can_write_rows(test_env: dict[str, str]) -> None:
    device = f"test-svc-{uuid.uuid4().hex[:8]}"
    with _app(test_env) as conn:
        conn.execute("INSERT INTO devices (device_id, kind, name) VALUES (%s, 'temp', 'probe')", (device,))
        row = conn.execute("SELECT name FROM devices WHERE device_id = %s", (device,)).fetchone()
        assert row == ("probe",)
        conn.execute("DELETE FROM devices WHERE device_id = %s", (device,))


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE test_svc_intruder (x int)",
        "ALTER TABLE devices ADD COLUMN intruder int",
        "DROP TABLE devices",
        "TRUNCATE dead_letters",
        "INSERT INTO schema_migrations (version, checksum) VALUES ('9999_intruder', 'x')",
        "UPDATE schema_migrations SET checksum = checksum",
        "DELETE FROM schema_migrations",
    ],
    ids=["create-table", "alter", "drop", "truncate", "insert-migration", "update-migration", "delete-migration"],
)
def test_app_cannot_change_the_schema(test_env: dict[str, str], statement: str) -> None:
    with _app(test_env) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_readonly_can_read_readings(test_env: dict[str, str]) -> None:
    with _readonly(test_env) as conn:
        for table in (*HYPERTABLES, "devices", "alerts", "dead_letters"):
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert row is not None and row[0] >= 0


def test_readonly_cannot_write_any_table(test_env: dict[str, str]) -> None:
    with _readonly(test_env) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        assert set(tables) >= HYPERTABLES
        writable = [
            t
            for t in tables
            for priv in ("INSERT", "UPDATE", "DELETE", "TRUNCATE")
            if conn.execute("SELECT has_table_privilege(%s, %s)", (f"public.{t}", priv)).fetchone() != (False,)
        ]
        assert writable == []


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO positions (ts, device_id, seq, lat, lon, fix) VALUES (now(), 'ro', 1, 0, 0, '3d')",
        "INSERT INTO devices (device_id, kind, name) VALUES ('ro-intruder', 'gps', 'x')",
        "INSERT INTO api_tokens (name, role, token_hash) VALUES ('ro', 'admin', '\\x00')",
        "UPDATE alerts SET note = 'x'",
        "DELETE FROM dead_letters",
        "CREATE TABLE test_ro_intruder (x int)",
        "SELECT * FROM api_tokens",
        "SELECT token_hash FROM api_tokens",
        "SELECT * FROM schema_migrations",
    ],
    ids=[
        "insert-position",
        "insert-device",
        "insert-token",
        "update",
        "delete",
        "create",
        "read-tokens",
        "read-token-hash",
        "read-migrations",
    ],
)
def test_readonly_refused(test_env: dict[str, str], statement: str) -> None:
    with _readonly(test_env) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


# ---------------------------------------------------------------------------------------- broker


def connack(
    target: MqttTarget, username: str | None, password: str | None, protocol: MQTTProtocolVersion
) -> ReasonCode:
    """The broker's answer to a CONNECT with these credentials."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-svc-{uuid.uuid4().hex[:8]}", protocol=protocol)
    if username is not None:
        client.username_pw_set(username, password)
    answer: list[ReasonCode] = []
    done = threading.Event()

    def on_connect(c: mqtt.Client, userdata: object, flags: object, rc: ReasonCode, props: object) -> None:
        answer.append(rc)
        done.set()

    client.on_connect = on_connect
    client.connect(target.host, target.port, keepalive=10)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK within 10 s"
    finally:
        client.disconnect()
        client.loop_stop()
    return answer[0]


PROTOCOLS = [pytest.param(mqtt.MQTTv311, id="mqtt311"), pytest.param(mqtt.MQTTv5, id="mqtt5")]


@pytest.fixture
def broker(test_env: dict[str, str]) -> MqttTarget:
    target = MqttTarget.parse(test_env["BONDWATCH_MQTT_URL"])
    assert target.host == "127.0.0.1" and target.username and target.password
    return target


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_broker_accepts_the_platform_account(broker: MqttTarget, protocol: MQTTProtocolVersion) -> None:
    rc = connack(broker, broker.username, broker.password, protocol)
    assert not rc.is_failure, rc


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_broker_refuses_a_wrong_password(broker: MqttTarget, protocol: MQTTProtocolVersion) -> None:
    rc = connack(broker, broker.username, (broker.password or "") + "x", protocol)
    assert rc.is_failure
    assert str(rc) in ("Bad user name or password", "Not authorized")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_broker_refuses_anonymous(broker: MqttTarget, protocol: MQTTProtocolVersion) -> None:
    rc = connack(broker, None, None, protocol)
    assert rc.is_failure
    assert str(rc) in ("Not authorized", "Bad user name or password")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_broker_refuses_an_unknown_device_account(broker: MqttTarget, protocol: MQTTProtocolVersion) -> None:
    assert connack(broker, "truck-01", "guess", protocol).is_failure


def test_broker_config_is_locked_down(services: LocalServices) -> None:
    conf = (services.mosquitto.host_dir / "mosquitto.conf").read_text().splitlines()
    assert f"listener {services.settings.mqtt_port} 127.0.0.1" in conf
    assert "allow_anonymous false" in conf
    assert any(line.startswith("password_file ") for line in conf)
    assert any(line.startswith("acl_file ") for line in conf)
    for name in ("passwd", "acl"):
        mode = stat.S_IMODE((services.mosquitto.host_dir / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {mode:o}"


def test_acl_file_limits_devices_to_their_own_topics(services: LocalServices) -> None:
    # Devices get rights only from their own provisioned block (tests/security/test_broker_auth.py);
    # no pattern gives every account rights, and no topic is open to every account.
    lines = [line.strip() for line in (services.mosquitto.host_dir / "acl").read_text().splitlines()]
    assert not [line for line in lines if line.startswith("pattern ")]
    assert not any(line.startswith("topic ") for line in lines[: lines.index(f"user {MQTT_USER}")]), (
        "no topic is open to every account"
    )
    assert "topic readwrite bw/v1/#" in lines
