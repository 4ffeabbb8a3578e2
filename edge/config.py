"""The edge agent's config file (TOML): the agent's own settings and the devices it reads.

    [agent]
    gateway_id = "gw-gate-1"              # MQTT client id; its status topic carries the last will
    queue_path = "/var/lib/bondwatch-edge/gw-gate-1.db"
    queue_max_readings = 1000000
    queue_policy = "drop_oldest"          # or "refuse_new"
    metrics_port = 9719                   # 0: no metrics endpoint

    [[devices]]
    id = "truck-01"                       # the device_id in topics
    driver = "nmea_serial"                # a key of edge.drivers.REGISTRY
    port = "/dev/ttyUSB0"                 # ... the driver's own options

The broker URL and its credentials are not in the file: they come from the environment
(``BONDWATCH_MQTT_URL``, ``BONDWATCH_SITE``), so a config file can be shared and versioned.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bondwatch.contract.topics import DEVICE_ID_PATTERN
from edge.errors import ConfigError


class AgentSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gateway_id: str = Field(pattern=DEVICE_ID_PATTERN)
    queue_path: Path
    queue_max_readings: int = Field(default=1_000_000, ge=1000)
    queue_policy: Literal["drop_oldest", "refuse_new"] = "drop_oldest"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    publish_batch_max: int = Field(default=200, ge=1, le=1000)


class DeviceSection(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(pattern=DEVICE_ID_PATTERN)
    driver: str

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class EdgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: AgentSection
    devices: list[DeviceSection] = Field(min_length=1)


def load_config(path: Path) -> EdgeConfig:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = EdgeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    ids = [d.id for d in config.devices]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: a device id appears twice")
    base = path.resolve().parent
    if not config.agent.queue_path.is_absolute():
        config.agent.queue_path = base / config.agent.queue_path
    return config
