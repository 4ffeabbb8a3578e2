"""Mosquitto 2 on loopback with passwords, per-device ACLs and the packaged tuning."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from importlib import resources
from pathlib import Path

from bondwatch.errors import ServiceError
from bondwatch.services.runtime import MOSQUITTO_BIN, Runtime
from bondwatch.services.secrets import MQTT_USER, LocalSecrets
from bondwatch.services.settings import ServicesSettings

log = logging.getLogger(__name__)
NAME = "mosquitto"

# The platform account reads and writes the whole tree; every other account is a device whose
# username is its device_id and may publish only its own telemetry and retained status.
ACL = f"""user {MQTT_USER}
topic readwrite bw/v1/#
topic read $SYS/#

pattern write bw/v1/+/gps/%u
pattern write bw/v1/+/temp/%u
pattern write bw/v1/+/rfid/%u
pattern readwrite bw/v1/+/status/%u
"""

CONF = """# Written by `bondwatch services up`; edit mosquitto-tuning.conf in the package instead.
pid_file {inner}/mosquitto.pid
user mosquitto
listener {port} 127.0.0.1
allow_anonymous false
password_file {inner}/passwd
acl_file {inner}/acl
persistence_location {inner}/
log_dest file {inner}/mosquitto.log
include_dir {inner}/conf.d
"""


def tuning_conf() -> str:
    return resources.files("bondwatch.services").joinpath("mosquitto-tuning.conf").read_text()


class Mosquitto:
    def __init__(self, runtime: Runtime, settings: ServicesSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.inner = f"{runtime.data_inner}/mosquitto"
        self.host_dir = runtime.host_path(self.inner)

    @property
    def log_file(self) -> Path:
        return self.host_dir / "mosquitto.log"

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

    def configure(self, secrets: LocalSecrets) -> None:
        (self.host_dir / "conf.d").mkdir(parents=True, exist_ok=True)
        (self.host_dir / "mosquitto.conf").write_text(CONF.format(inner=self.inner, port=self.settings.mqtt_port))
        (self.host_dir / "conf.d" / "tuning.conf").write_text(tuning_conf())
        (self.host_dir / "acl").write_text(ACL)
        passwd = self.host_dir / "passwd"
        passwd.unlink(missing_ok=True)
        self.runtime.run(
            ["mosquitto_passwd", "-c", "-b", f"{self.inner}/passwd", MQTT_USER, secrets.mqtt_password], service=NAME
        )
        uid, gid = self.runtime.owner_of("mosquitto")
        for path in [self.host_dir, *self.host_dir.rglob("*")]:
            os.chown(path, uid, gid)
        for name in ("passwd", "acl"):
            os.chmod(self.host_dir / name, 0o600)

    def start(self, secrets: LocalSecrets) -> None:
        if self.pid() is not None:
            return
        self.configure(secrets)
        log.info("starting Mosquitto on 127.0.0.1:%d", self.settings.mqtt_port)
        self.runtime.run([MOSQUITTO_BIN, "-c", f"{self.inner}/mosquitto.conf", "-d"], service=NAME)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.settings.mqtt_port), timeout=1).close()
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
                    raise ServiceError(NAME, f"not listening on {self.settings.mqtt_port}: {exc}\n{tail}") from exc
                time.sleep(0.1)

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        log.info("stopping Mosquitto")
        os.kill(pid, 15)
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
