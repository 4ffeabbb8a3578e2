"""Credentials of the local services, generated once and kept in ``<state_dir>/services.env``.

The file holds ``BONDWATCH_*`` URLs, so every command run from this checkout finds the broker and
the database without further set-up, and nothing secret is ever committed or built in.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bondwatch.services.settings import ServicesSettings

MQTT_USER = "bondwatch"
DB_NAME = "bondwatch"
DB_ADMIN = "bondwatch_admin"
DB_APP = "bondwatch_app"
DB_READONLY = "bondwatch_readonly"


@dataclass(frozen=True)
class LocalSecrets:
    mqtt_password: str
    db_admin_password: str
    db_app_password: str
    db_readonly_password: str

    def env(self, settings: ServicesSettings) -> dict[str, str]:
        pg = f"127.0.0.1:{settings.pg_port}/{DB_NAME}"
        return {
            "BONDWATCH_MQTT_URL": f"mqtt://{MQTT_USER}:{self.mqtt_password}@127.0.0.1:{settings.mqtt_port}",
            "BONDWATCH_DB_URL": f"postgresql://{DB_APP}:{self.db_app_password}@{pg}",
            "BONDWATCH_DB_ADMIN_URL": f"postgresql://{DB_ADMIN}:{self.db_admin_password}@{pg}",
            "BONDWATCH_DB_READONLY_URL": f"postgresql://{DB_READONLY}:{self.db_readonly_password}@{pg}",
        }


def secrets_file(settings: ServicesSettings) -> Path:
    return settings.state_dir / "services.env"


def _password_of(url: str) -> str:
    return urlsplit(url).password or ""


def load_or_create(settings: ServicesSettings) -> LocalSecrets:
    path = secrets_file(settings)
    if path.exists():
        values = dict(
            line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")
        )
        return LocalSecrets(
            mqtt_password=_password_of(values["BONDWATCH_MQTT_URL"]),
            db_admin_password=_password_of(values["BONDWATCH_DB_ADMIN_URL"]),
            db_app_password=_password_of(values["BONDWATCH_DB_URL"]),
            db_readonly_password=_password_of(values["BONDWATCH_DB_READONLY_URL"]),
        )
    made = LocalSecrets(*(secrets.token_urlsafe(24) for _ in range(4)))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("# Credentials of the local services, made by `bondwatch services up`. Keep private.\n")
        for key, value in made.env(settings).items():
            out.write(f"{key}={value}\n")
    return made
