"""deploy/mosquitto/mosquitto.conf, as docker-compose mounts it, loaded by the same Mosquitto 2.0.21.

No container engine runs here, so the file's /mosquitto/... paths are moved into a folder of the
services' Debian root and its ports onto free loopback ones; everything else is the file as shipped.
The auth files come from `bondwatch devices provision` (as `docker compose run --rm provision`
writes them) and the certificates from bondwatch.services.tls (as `dev-certificates` makes them).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bondwatch.provision import ProvisionSettings, broker_auth, provision
from bondwatch.services.manager import LocalServices
from bondwatch.services.runtime import MOSQUITTO_BIN
from bondwatch.services.secrets import MQTT_USER, load_or_create
from bondwatch.services.tls import ensure_dev_pki
from tests.security.conftest import connack, connect, free_port, wait_login

ROOT = Path(__file__).resolve().parents[2]


class DeployedBroker:
    def __init__(self, services: LocalServices) -> None:
        self.runtime = services.runtime
        self.inner = f"{services.runtime.data_inner}/test-deploy-{os.getpid()}"
        self.host = services.runtime.host_path(self.inner)
        self.plain_port, self.tls_port = free_port(), free_port()
        self.password = load_or_create(services.settings).mqtt_password

    @property
    def service_url(self) -> str:
        return f"mqtt://{MQTT_USER}:{self.password}@127.0.0.1:{self.plain_port}"

    def settings(self, site: str) -> ProvisionSettings:
        """As the compose file's `provision` service sets them, with this broker's folder and ports."""
        uid, gid = self.runtime.owner_of("mosquitto")
        return ProvisionSettings(
            site=site,
            mqtt_url=self.service_url,
            mqtt_auth_dir=self.host / "auth",
            mqtt_auth_owner=f"{uid}:{gid}",
            mqtt_device_url=f"mqtts://localhost:{self.tls_port}",
        )

    def write_config(self) -> None:
        conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
        conf = conf.replace("/mosquitto/", f"{self.inner}/")
        conf = conf.replace("listener 1883\n", f"listener {self.plain_port} 127.0.0.1\n")
        conf = conf.replace("listener 8883\n", f"listener {self.tls_port} 127.0.0.1\n")
        conf = conf.replace("log_dest stdout", f"log_dest file {self.inner}/mosquitto.log")
        conf = f"pid_file {self.inner}/mosquitto.pid\nuser mosquitto\n" + conf
        for folder in ("auth", "certs", "data", "config/conf.d"):
            (self.host / folder).mkdir(parents=True, exist_ok=True)
        (self.host / "config" / "mosquitto.conf").write_text(conf)
        shutil.copy(ROOT / "bondwatch/services/mosquitto-tuning.conf", self.host / "config/conf.d/tuning.conf")
        ensure_dev_pki(self.host / "certs", ("localhost",))

    def start(self) -> None:
        uid, gid = self.runtime.owner_of("mosquitto")
        for path in [self.host, *self.host.rglob("*")]:
            os.chown(path, uid, gid)
        self.runtime.run([MOSQUITTO_BIN, "-c", f"{self.inner}/config/mosquitto.conf", "-d"], service="test")

    def pid(self) -> int | None:
        pid_file = self.host / "mosquitto.pid"
        return int(pid_file.read_text()) if pid_file.exists() else None

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        shutil.rmtree(self.host, ignore_errors=True)


@pytest.fixture
def deployed(services: LocalServices) -> Iterator[DeployedBroker]:
    broker = DeployedBroker(services)
    broker.write_config()
    yield broker
    broker.stop()


def test_production_broker_config(
    deployed: DeployedBroker, site: str, db: psycopg.Connection[Any], test_env: dict[str, str]
) -> None:
    device = f"sec-deploy-{uuid.uuid4().hex[:8]}"
    db.execute("INSERT INTO devices (device_id, kind, name) VALUES (%s, 'gps', 'deploy test')", (device,))
    # First run on an empty volume: the service account from BONDWATCH_MQTT_URL, the ACL, the device.
    settings = deployed.settings(site)
    auth = broker_auth(settings)
    assert auth.reload is None  # a folder: the operator sends SIGHUP (docker compose kill)
    result, changed, reloaded = provision(settings, auth, devices=[device])
    assert changed and not reloaded and [c.login.username for c in result.created] == [device]
    for made in (auth.passwd, auth.acl):  # new files: the broker's user, private
        st = made.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (*deployed.runtime.owner_of("mosquitto"), 0o600)
    deployed.start()
    password = result.created[0].password
    wait_login(f"mqtt://127.0.0.1:{deployed.plain_port}", MQTT_USER, deployed.password)

    tls = f"mqtts://localhost:{deployed.tls_port}"
    ca = deployed.host / "certs" / "ca.pem"
    assert connack(f"mqtt://127.0.0.1:{deployed.plain_port}", None, None).is_failure  # no anonymous access
    anonymous = connect(tls, ca_file=ca)
    anonymous.close()
    assert anonymous.connack.is_failure
    session = connect(tls, device, password, ca_file=ca)
    try:
        assert not session.connack.is_failure, session.connack
        assert not session.publish(f"bw/v1/{site}/gps/{device}", b"{}").is_failure
        assert str(session.publish(f"bw/v1/{site}/gps/someone-else", b"{}")) == "Not authorized"
    finally:
        session.close()
    # The 1 MiB packet limit of the tuning file is in force: the platform can take a 300 KB message.
    platform = connect(deployed.service_url)
    try:
        assert not platform.publish(f"bw/v1/{site}/gps/{device}", b"x" * 300_000).is_failure
    finally:
        platform.close()
