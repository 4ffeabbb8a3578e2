"""`bondwatch services up|down|status`: both local services together, idempotently."""

from __future__ import annotations

from dataclasses import dataclass

from bondwatch.services.mosquitto import Mosquitto
from bondwatch.services.postgres import Postgres
from bondwatch.services.runtime import Runtime, prepare_runtime
from bondwatch.services.secrets import load_or_create
from bondwatch.services.settings import ServicesSettings


@dataclass(frozen=True)
class ServiceState:
    name: str
    running: bool
    pid: int | None
    address: str
    log: str


class LocalServices:
    def __init__(self, settings: ServicesSettings, runtime: Runtime | None = None) -> None:
        self.settings = settings
        self.runtime = runtime or prepare_runtime(settings)
        self.postgres = Postgres(self.runtime, settings)
        self.mosquitto = Mosquitto(self.runtime, settings)

    def up(self) -> None:
        secrets = load_or_create(self.settings)
        self.postgres.start(secrets)
        self.mosquitto.start(secrets)

    def down(self) -> None:
        self.mosquitto.stop()
        self.postgres.stop()

    def status(self) -> list[ServiceState]:
        pg_pid, mq_pid = self.postgres.pid(), self.mosquitto.pid()
        return [
            ServiceState(
                "postgresql",
                pg_pid is not None,
                pg_pid,
                f"127.0.0.1:{self.settings.pg_port}",
                str(self.postgres.log_file),
            ),
            ServiceState(
                "mosquitto",
                mq_pid is not None,
                mq_pid,
                f"127.0.0.1:{self.settings.mqtt_port}",
                str(self.mosquitto.log_file),
            ),
        ]
