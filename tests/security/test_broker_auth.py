"""Device logins on a real broker: each device publishes as itself only and reads nothing of others'.

Everything goes through `bondwatch devices provision` (the function, and once the command) against
the registry of the test database and a private Mosquitto (tests/security/conftest.py).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from bondwatch.provision import Credential, provision
from bondwatch.services.secrets import MQTT_USER
from ingest.service import IngestService
from ingest.settings import IngestSettings
from tests.conftest import wait_for
from tests.security.conftest import PROTOCOLS, PrivateBroker, connack, connect, wait_login

ROOT = Path(__file__).resolve().parents[2]


def register(db: psycopg.Connection[tuple[Any, ...]], kind: str) -> str:
    device_id = f"sec-{kind}-{uuid.uuid4().hex[:8]}"
    db.execute("INSERT INTO devices (device_id, kind, name) VALUES (%s, %s, 'security test')", (device_id, kind))
    return device_id


def password_of(credentials: list[Credential], device_id: str) -> str:
    (found,) = [c.password for c in credentials if c.login.username == device_id]
    return found


def gps(seq: int) -> bytes:
    return orjson.dumps({"ts": int(time.time() * 1000), "seq": seq, "lat": 39.6, "lon": 109.8, "fix": "3d"})


@pytest.fixture
def pair(
    private_broker: PrivateBroker, site: str, db: psycopg.Connection[tuple[Any, ...]]
) -> tuple[str, str, str, str]:
    """Two provisioned GNSS terminals of the test's site: (a, a's password, b, b's password)."""
    a, b = register(db, "gps"), register(db, "gps")
    result = private_broker.provision(site, devices=[a, b])
    pw_a, pw_b = password_of(result.created, a), password_of(result.created, b)
    wait_login(private_broker.plain_url, a, pw_a)
    return a, pw_a, b, pw_b


def test_device_publishes_its_readings_and_ingest_stores_them(
    private_broker: PrivateBroker, site: str, pair: tuple[str, str, str, str], db: psycopg.Connection[Any]
) -> None:
    a, pw_a, _, _ = pair
    service = IngestService(IngestSettings(site=site, mqtt_url=private_broker.service_url))
    service.start()
    try:
        # Over TLS, as a device would: the name in the certificate is checked against "localhost".
        device = connect(private_broker.tls_url, a, pw_a, ca_file=private_broker.ca_file)
        assert not device.connack.is_failure, device.connack
        try:
            for seq in range(3):
                rc = device.publish(f"bw/v1/{site}/gps/{a}", gps(seq))
                assert not rc.is_failure, rc
            assert not device.publish(f"bw/v1/{site}/status/{a}", b'{"online": true, "ts": 0}', True).is_failure
        finally:
            device.close()
        wait_for(
            lambda: db.execute("SELECT count(*) FROM positions WHERE device_id = %s", (a,)).fetchone() == (3,),
            timeout=20,
        )
    finally:
        service.stop()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_device_cannot_publish_as_another(
    private_broker: PrivateBroker, site: str, pair: tuple[str, str, str, str], protocol: MQTTProtocolVersion
) -> None:
    a, pw_a, b, _ = pair
    watcher = connect(private_broker.service_url, MQTT_USER, private_broker.service_password)
    for watched in (f"bw/v1/{site}/#", "bw/v1/other-site/#"):
        assert watcher.subscribe(watched)[0].value < 0x80
    device = connect(private_broker.plain_url, a, pw_a, protocol)
    try:
        forged = [
            f"bw/v1/{site}/gps/{b}",  # another device's telemetry
            f"bw/v1/{site}/status/{b}",  # another device's status
            f"bw/v1/{site}/temp/{a}",  # its own id, another kind
            f"bw/v1/other-site/gps/{a}",  # its own id, another site
            f"bw/v1/{site}/alerts/bonded_exit",  # an alert
            f"bw/v1/{site}/gate/gate-n1/decision",  # a gate decision
        ]
        for topic in forged:
            rc = device.publish(topic, gps(1))
            if protocol == mqtt.MQTTv5:
                assert str(rc) == "Not authorized", (topic, rc)
            else:
                assert not rc.is_failure  # MQTT 3.1.1 has no way to say no: the broker drops it
        # Its own topic goes through, after the forged ones: once it arrives, they would have too.
        own = f"bw/v1/{site}/gps/{a}"
        assert not device.publish(own, gps(2)).is_failure
        watcher.wait_received(own)
        time.sleep(0.3)
        assert [t for t, _ in watcher.received] == [own]
    finally:
        device.close()
        watcher.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_device_cannot_read_others_data_or_alerts(
    private_broker: PrivateBroker, site: str, pair: tuple[str, str, str, str], protocol: MQTTProtocolVersion
) -> None:
    a, pw_a, b, _ = pair
    device = connect(private_broker.plain_url, a, pw_a, protocol)
    platform = connect(private_broker.service_url, MQTT_USER, private_broker.service_password)
    try:
        for topic in ("#", f"bw/v1/{site}/#", f"bw/v1/{site}/gps/{b}", f"bw/v1/{site}/alerts/+", f"bw/v1/{site}/+/+"):
            device.subscribe(topic)  # the broker may grant a filter; what matters is what it delivers
        own_status = f"bw/v1/{site}/status/{a}"
        assert device.subscribe(own_status)[0].value < 0x80
        for topic in (
            f"bw/v1/{site}/gps/{b}",
            f"bw/v1/{site}/status/{b}",
            f"bw/v1/{site}/gps/{a}",  # even its own telemetry: write only
            f"bw/v1/{site}/alerts/bonded_exit",
            f"bw/v1/{site}/gate/gate-n1/decision",
        ):
            assert not platform.publish(topic, b"{}").is_failure
        assert not platform.publish(own_status, b'{"online": false, "ts": 0}').is_failure
        device.wait_received(own_status)
        time.sleep(0.3)
        # (several copies of its own status: one per matching subscription)
        assert {t for t, _ in device.received} == {own_status}
    finally:
        device.close()
        platform.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_wrong_password_unknown_user_and_anonymous_are_refused(
    private_broker: PrivateBroker, pair: tuple[str, str, str, str], protocol: MQTTProtocolVersion
) -> None:
    a, pw_a, b, pw_b = pair
    url = private_broker.plain_url
    assert not connack(url, a, pw_a, protocol).is_failure
    for username, password in ((a, pw_a + "x"), (a, pw_b), (b, pw_a), ("nobody", pw_a), (a, None)):
        rc = connack(url, username, password, protocol)
        assert rc.is_failure and str(rc) in ("Bad user name or password", "Not authorized"), (username, rc)
    rc = connack(url, None, None, protocol)
    assert rc.is_failure and str(rc) in ("Not authorized", "Bad user name or password"), rc


def test_anonymous_is_refused_over_tls_too(private_broker: PrivateBroker) -> None:
    session = connect(private_broker.tls_url, ca_file=private_broker.ca_file)
    session.close()
    assert session.connack.is_failure, session.connack


def test_rotation_invalidates_the_old_password(
    private_broker: PrivateBroker, site: str, pair: tuple[str, str, str, str]
) -> None:
    a, old, b, pw_b = pair
    result = private_broker.provision(site, devices=[a], rotate=True)
    assert [c.login.username for c in result.rotated] == [a] and not result.created
    new = result.rotated[0].password
    assert new != old
    wait_login(private_broker.plain_url, a, new)
    assert connack(private_broker.plain_url, a, old).is_failure
    assert not connack(private_broker.plain_url, b, pw_b).is_failure  # the other login is untouched


def test_provisioning_again_changes_nothing(
    private_broker: PrivateBroker, site: str, pair: tuple[str, str, str, str]
) -> None:
    # Other tests share the registry: settle every device they registered first, then run once more.
    provision(private_broker.settings(site), private_broker.auth())
    before = (private_broker.broker.passwd_file.read_bytes(), private_broker.broker.acl_file.read_bytes())
    result, changed, reloaded = provision(private_broker.settings(site), private_broker.auth())
    assert not changed and not reloaded
    assert not result.credentials and pair[0] in result.kept and pair[2] in result.kept
    assert (private_broker.broker.passwd_file.read_bytes(), private_broker.broker.acl_file.read_bytes()) == before
    # Only hashes are stored: no password of this run's devices appears in the broker's files.
    for secret in (pair[1], pair[3]):
        assert secret.encode() not in before[0] + before[1]


def test_device_removed_from_the_registry_loses_its_login(
    private_broker: PrivateBroker, site: str, pair: tuple[str, str, str, str], db: psycopg.Connection[Any]
) -> None:
    a, pw_a, b, pw_b = pair
    db.execute("DELETE FROM devices WHERE device_id = %s", (a,))
    result = private_broker.provision(site)
    assert a in result.removed
    wait_login(private_broker.plain_url, a, pw_a, accepted=False)
    assert f"user {a}" not in private_broker.broker.acl_file.read_text()
    assert not connack(private_broker.plain_url, b, pw_b).is_failure


def test_revoked_login_stays_away_until_provisioned_again(
    private_broker: PrivateBroker, site: str, pair: tuple[str, str, str, str]
) -> None:
    a, pw_a, _, _ = pair
    private_broker.provision(site, revoke=[a])
    wait_login(private_broker.plain_url, a, pw_a, accepted=False)
    again = private_broker.provision(site)  # a plain run does not bring it back
    assert a not in {c.login.username for c in again.credentials} and a not in again.kept
    back = private_broker.provision(site, devices=[a])
    wait_login(private_broker.plain_url, a, password_of(back.created, a))
    assert connack(private_broker.plain_url, a, pw_a).is_failure  # with a new password, not the old one


def test_gateway_publishes_for_its_devices_only(
    private_broker: PrivateBroker, site: str, db: psycopg.Connection[Any]
) -> None:
    reader, room, stranger = register(db, "rfid"), register(db, "temp"), register(db, "gps")
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    result = private_broker.provision(site, devices=[reader, room, stranger], gateways=[f"{gateway}={reader},{room}"])
    password = password_of(result.created, gateway)
    wait_login(private_broker.plain_url, gateway, password)
    session = connect(private_broker.plain_url, gateway, password)
    try:
        for topic in (f"bw/v1/{site}/rfid/{reader}", f"bw/v1/{site}/temp/{room}", f"bw/v1/{site}/status/{gateway}"):
            assert not session.publish(topic, b"{}").is_failure, topic
        for topic in (f"bw/v1/{site}/gps/{stranger}", f"bw/v1/{site}/temp/{reader}", f"bw/v1/{site}/gps/{gateway}"):
            assert str(session.publish(topic, b"{}")) == "Not authorized", topic
    finally:
        session.close()
    # Kept on later runs without --gateway, with its password.
    assert gateway in private_broker.provision(site).kept


def test_command_writes_private_credential_files(
    private_broker: PrivateBroker, site: str, db: psycopg.Connection[Any], tmp_path: Path, test_env: dict[str, str]
) -> None:
    device = register(db, "temp")
    out = tmp_path / "credentials"
    env = {
        **os.environ,
        "BONDWATCH_SITE": site,
        "BONDWATCH_MQTT_URL": private_broker.service_url,
        "BONDWATCH_MQTT_AUTH_DIR": str(private_broker.broker.host_dir),
        "BONDWATCH_MQTT_DEVICE_URL": private_broker.tls_url,
        "BONDWATCH_MQTT_CA_FILE": str(private_broker.ca_file),
    }
    bondwatch = Path(sys.executable).with_name("bondwatch")
    argv = [str(bondwatch), "devices", "provision", "--device", device, "--out", str(out)]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "docker compose kill -s SIGHUP mosquitto" in proc.stderr  # a folder of files: the operator reloads
    assert proc.stdout == ""  # the password went to the file only
    snippet = out / f"{device}.env"
    assert stat.S_IMODE(snippet.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in snippet.read_text().splitlines() if not line.startswith("#"))
    assert values["BONDWATCH_SITE"] == site
    assert values["BONDWATCH_MQTT_CA_FILE"] == str(private_broker.ca_file)
    url = values["BONDWATCH_MQTT_URL"]
    assert url.startswith(f"mqtts://{device}:") and url.endswith(f"@localhost:{private_broker.broker.tls_port}")
    assert private_broker.broker.reload()
    password = url.split("@")[0].rsplit(":", 1)[1]
    wait_login(private_broker.plain_url, device, password)
    session = connect(url, ca_file=private_broker.ca_file)  # credentials from the URL, CA from the file
    session.close()
    assert not session.connack.is_failure, session.connack
    # Once only: a second run prints nothing and writes no file again.
    snippet.unlink()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and not snippet.exists() and "broker files unchanged" in proc.stderr
