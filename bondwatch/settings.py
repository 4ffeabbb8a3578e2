"""Typed settings shared by every BondWatch service.

Values come from ``BONDWATCH_*`` environment variables over the file of secrets that
``bondwatch services up`` writes (``<state_dir>/services.env``) over defaults that match the
local services. Each service extends :class:`CommonSettings` with its own fields, so a typo in an
environment variable's value fails at start-up, not at the first message.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bondwatch.errors import SettingsError

DEFAULT_PG_PORT = 55432
DEFAULT_MQTT_PORT = 18830
DEFAULT_API_PORT = 8716
SITE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def state_dir_from_env() -> Path:
    """Where local services keep data and secrets; read before the settings themselves."""
    return Path(os.environ.get("BONDWATCH_STATE_DIR", "var")).resolve()


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BONDWATCH_", extra="ignore")

    site: str = "ordos-czb"
    state_dir: Path = Path("var")
    mqtt_url: str = f"mqtt://127.0.0.1:{DEFAULT_MQTT_PORT}"
    db_url: str = f"postgresql://bondwatch_app@127.0.0.1:{DEFAULT_PG_PORT}/bondwatch"
    api_url: str = f"http://127.0.0.1:{DEFAULT_API_PORT}"
    log_level: str = "INFO"
    # CA bundle that an mqtts:// broker's certificate must chain to (the system's CAs when unset);
    # a ``?ca=`` in the URL wins. See docs/security.md.
    mqtt_ca_file: Path | None = None

    @field_validator("site")
    @classmethod
    def _site(cls, value: str) -> str:
        if not SITE_RE.match(value):
            raise ValueError("site must be lowercase letters, digits and '-', e.g. ordos-czb")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        MqttTarget.parse(value)
        return value

    @field_validator("db_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("postgresql", "postgres"):
            raise ValueError("db_url must be a postgresql:// URL")
        return value

    @field_validator("state_dir")
    @classmethod
    def _state_dir(cls, value: Path) -> Path:
        return value.resolve()

    @property
    def mqtt(self) -> MqttTarget:
        target = MqttTarget.parse(self.mqtt_url)
        if target.tls and target.ca_file is None and self.mqtt_ca_file is not None:
            return dataclasses.replace(target, ca_file=str(self.mqtt_ca_file))
        return target

    def public_view(self) -> dict[str, Any]:
        """Settings as JSON-ready values with every password masked."""
        out: dict[str, Any] = {}
        for key, value in self.model_dump().items():
            if isinstance(value, Path):
                value = str(value)
            if isinstance(value, str) and "://" in value:
                value = mask_url(value)
            if "password" in key or "secret" in key:
                value = "***" if value else value
            out[key] = value
        return out


# Query parameters of an mqtts:// URL: the CA bundle, and a client certificate and key for a broker
# that requires one (``require_certificate true``). Paths, never secrets themselves.
TLS_URL_PARAMS = {"ca": "ca_file", "cert": "cert_file", "key": "key_file"}


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def parse(cls, url: str) -> MqttTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {mask_url(url)!r}")
        if not parts.hostname:
            raise ValueError(f"MQTT URL has no host: {mask_url(url)!r}")
        tls = parts.scheme == "mqtts"
        files: dict[str, str] = {}
        for key, values in parse_qs(parts.query, keep_blank_values=True).items():
            if key not in TLS_URL_PARAMS or len(values) != 1 or not values[0]:
                raise ValueError(f"MQTT URL: unknown or repeated parameter {key!r} (known: ca, cert, key)")
            if not tls:
                raise ValueError(f"MQTT URL: {key!r} needs mqtts://")
            files[TLS_URL_PARAMS[key]] = values[0]
        if ("cert_file" in files) != ("key_file" in files):
            raise ValueError("MQTT URL: 'cert' and 'key' go together")
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            **files,
        )


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


S = TypeVar("S", bound=CommonSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build a settings object, failing fast with one readable message."""
    state_dir = state_dir_from_env()
    env_file = state_dir / "services.env"
    try:
        return cls(_env_file=env_file if env_file.exists() else None, **overrides)  # type: ignore[call-arg]
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise SettingsError(f"invalid settings: {exc}") from exc
