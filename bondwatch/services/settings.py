"""Settings of the local services."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bondwatch.settings import DEFAULT_MQTT_PORT, DEFAULT_PG_PORT, CommonSettings

DEFAULT_MQTT_TLS_PORT = 18883


class ServicesSettings(CommonSettings):
    pg_port: int = DEFAULT_PG_PORT
    mqtt_port: int = DEFAULT_MQTT_PORT
    # The broker's second listener, TLS with the development CA of <state_dir>/tls; 0 turns it off.
    mqtt_tls_port: int = Field(default=DEFAULT_MQTT_TLS_PORT, ge=0, le=65535)
    # Shared by every checkout on the machine: building the root is the slow part.
    rootfs_cache: Path = Path("/var/cache/bondwatch")
    debian_suite: str = "trixie"
