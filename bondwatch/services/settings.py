"""Settings of the local services."""

from __future__ import annotations

from pathlib import Path

from bondwatch.settings import DEFAULT_MQTT_PORT, DEFAULT_PG_PORT, CommonSettings


class ServicesSettings(CommonSettings):
    pg_port: int = DEFAULT_PG_PORT
    mqtt_port: int = DEFAULT_MQTT_PORT
    # Shared by every checkout on the machine: building the root is the slow part.
    rootfs_cache: Path = Path("/var/cache/bondwatch")
    debian_suite: str = "trixie"
