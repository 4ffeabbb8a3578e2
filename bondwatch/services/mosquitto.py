"""Mosquitto 2 on loopback: passwords, provisioned per-device ACLs, a TLS listener, the packaged tuning.

Two listeners, both on 127.0.0.1: the plain one (``mqtt_port``, 18830) that the platform's own
processes and the tests use with the service account, and a TLS one (``mqtt_tls_port``, 18883)
with a server certificate from the checkout's development CA (:mod:`bondwatch.services.tls`).
Anonymous clients are refused on both. The service account may read and write ``bw/v1/#``; a
device may do only what its block of the ACL, written by ``bondwatch devices provision``
(:mod:`bondwatch.provision`), allows.

``start`` converges: a broker that runs with an older configuration (say, without the TLS
listener) is restarted, one whose passwords or ACL changed is sent SIGHUP (Mosquitto re-reads both),
and one that is already right is left alone.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import time
from importlib import resources
from pathlib import Path

from bondwatch.errors import ServiceError
from bondwatch.services.mqtt_auth import (
    AclFile,
    hash_password,
    read_passwd,
    render_passwd,
    service_acl,
    verify_password,
)
from bondwatch.services.runtime import MOSQUITTO_BIN, Runtime
from bondwatch.services.secrets import MQTT_USER, LocalSecrets
from bondwatch.services.settings import ServicesSettings
from bondwatch.services.tls import LOCAL_HOSTS, DevPki, ensure_dev_pki

log = logging.getLogger(__name__)
NAME = "mosquitto"

# The fixed part of the ACL (see mqtt_auth.service_acl); devices get theirs from provisioning.
# There are no `pattern` rules: every test, simulator and local edge agent publishes with the
# service account, and a pattern would let any account publish on any site, as any kind.
ACL = service_acl(MQTT_USER)

CONF = """# Written by `bondwatch services up`; edit mosquitto-tuning.conf in the package instead.
pid_file {inner}/mosquitto.pid
user mosquitto
allow_anonymous false
password_file {inner}/passwd
acl_file {inner}/acl
persistence_location {inner}/
log_dest file {inner}/mosquitto.log

listener {port} 127.0.0.1
"""

TLS_CONF = """
# TLS with the development CA (<state_dir>/tls/ca.pem); clients must verify the broker's name.
listener {tls_port} 127.0.0.1
cafile {inner}/tls/ca.pem
certfile {inner}/tls/server.pem
keyfile {inner}/tls/server.key
tls_version tlsv1.2
"""

INCLUDE = "\ninclude_dir {inner}/conf.d\n"


def tuning_conf() -> str:
    return resources.files("bondwatch.services").joinpath("mosquitto-tuning.conf").read_text()


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    path.write_bytes(data)
    return True


class Mosquitto:
    """One broker instance: ``name`` is its folder under the runtime's data folder.

    The instance of ``bondwatch services up`` is ``mosquitto`` on the settings' ports; tests make
    private ones with their own name and ports.
    """

    def __init__(
        self,
        runtime: Runtime,
        settings: ServicesSettings,
        *,
        name: str = NAME,
        port: int | None = None,
        tls_port: int | None = None,
        pki_folder: Path | None = None,
        tls_hosts: tuple[str, ...] = LOCAL_HOSTS,
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self._pki_folder = pki_folder or settings.state_dir / "tls"
        self.tls_hosts = tls_hosts
        self.port = settings.mqtt_port if port is None else port
        self.tls_port = settings.mqtt_tls_port if tls_port is None else tls_port
        self.inner = f"{runtime.data_inner}/{name}"
        self.host_dir = runtime.host_path(self.inner)

    @property
    def log_file(self) -> Path:
        return self.host_dir / "mosquitto.log"

    @property
    def passwd_file(self) -> Path:
        return self.host_dir / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.host_dir / "acl"

    @property
    def pki(self) -> DevPki:
        """The development CA and server certificate (the originals, under the state folder)."""
        return DevPki(self._pki_folder)

    def pid(self) -> int | None:
        pid_file = self.host_dir / "mosquitto.pid"
        if not pid_file.exists():
            return None
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            return None
        return pid

    def render_conf(self) -> str:
        conf = CONF.format(inner=self.inner, port=self.port)
        if self.tls_port:
            conf += TLS_CONF.format(inner=self.inner, tls_port=self.tls_port)
        return conf + INCLUDE.format(inner=self.inner)

    def configure(self, secrets: LocalSecrets) -> tuple[bool, bool]:
        """Write the broker's files; returns (restart needed, reload needed) for a running broker."""
        self.host_dir.mkdir(parents=True, exist_ok=True)
        (self.host_dir / "conf.d").mkdir(exist_ok=True)
        restart = _write_if_changed(self.host_dir / "mosquitto.conf", self.render_conf().encode())
        restart |= _write_if_changed(self.host_dir / "conf.d" / "tuning.conf", tuning_conf().encode())
        if self.tls_port:
            pki = ensure_dev_pki(self.pki.folder, self.tls_hosts)
            (self.host_dir / "tls").mkdir(exist_ok=True)
            for source, target in (
                (pki.ca_cert, "ca.pem"),
                (pki.server_cert, "server.pem"),
                (pki.server_key, "server.key"),
            ):
                restart |= _write_if_changed(self.host_dir / "tls" / target, source.read_bytes())
        reload = self._configure_auth(secrets)
        uid, gid = self.runtime.owner_of("mosquitto")
        for path in [self.host_dir, *self.host_dir.rglob("*")]:
            os.chown(path, uid, gid)
        for path in (self.passwd_file, self.acl_file, self.host_dir / "tls" / "server.key"):
            if path.exists():
                os.chmod(path, 0o600)
        return restart, reload

    def _configure_auth(self, secrets: LocalSecrets) -> bool:
        """The service account's line and the ACL's fixed part; provisioned logins are kept as they are."""
        entries = read_passwd(self.passwd_file)
        current = entries.get(MQTT_USER)
        if current is None or not verify_password(secrets.mqtt_password, current):
            current = hash_password(secrets.mqtt_password)
        passwd = render_passwd({MQTT_USER: current, **{u: h for u, h in entries.items() if u != MQTT_USER}})
        changed = _write_if_changed(self.passwd_file, passwd.encode())
        acl = AclFile.read(self.acl_file) or AclFile("", [])
        header = "# Fixed part written by `bondwatch services up`; device logins come from provisioning.\n"
        changed |= _write_if_changed(self.acl_file, AclFile(header + ACL, acl.section).render().encode())
        return changed

    def start(self, secrets: LocalSecrets) -> None:
        restart, reload = self.configure(secrets)
        pid = self.pid()
        if pid is not None:
            if not restart:
                if reload:
                    self.reload()
                return
            log.info("Mosquitto's configuration changed: restarting it")
            self.stop()
        log.info("starting Mosquitto on 127.0.0.1:%d (TLS: %s)", self.port, self.tls_port or "off")
        self.runtime.run([MOSQUITTO_BIN, "-c", f"{self.inner}/mosquitto.conf", "-d"], service=NAME)
        deadline = time.monotonic() + 15
        for port in (self.port, self.tls_port):
            if not port:
                continue
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
                        raise ServiceError(NAME, f"not listening on {port}: {exc}\n{tail}") from exc
                    time.sleep(0.1)

    def reload(self) -> bool:
        """SIGHUP: Mosquitto re-reads its password and ACL files. False if it is not running."""
        pid = self.pid()
        if pid is None:
            return False
        log.info("reloading Mosquitto's passwords and ACL")
        os.kill(pid, signal.SIGHUP)
        return True

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        log.info("stopping Mosquitto")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while self.pid() is not None:
            if time.monotonic() > deadline:
                raise ServiceError(NAME, f"pid {pid} did not stop within 15 s")
            time.sleep(0.1)

    def client_tool(self, tool: str) -> list[str]:
        """argv prefix for mosquitto_pub / mosquitto_sub from the same runtime (benchmarks)."""
        if shutil.which(tool) and not self.runtime.chrooted:
            return [tool]
        return self.runtime.argv([f"/usr/bin/{tool}"])
