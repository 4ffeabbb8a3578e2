"""The small interface every input driver implements, and what it hands its readings to.

A driver owns one device: it opens its transport, feeds bytes to its protocol, and passes each
reading to the :class:`Sink` (the durable queue). Everything a protocol refuses is counted by
reason and never becomes a reading.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import Counter
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from edge import metrics
from edge.errors import ConfigError, DeviceError, FrameError
from edge.readings import Reading

log = logging.getLogger(__name__)


class Sink(Protocol):
    def emit(self, device_id: str, reading: Reading) -> None: ...


class DriverOptions(BaseModel):
    """Base of each driver's options (the device table of the config file, less id and driver)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Driver(ABC):
    #: Registry key, used as ``driver = "..."`` in the config file.
    name: ClassVar[str]
    Options: ClassVar[type[DriverOptions]]

    def __init__(self, device_id: str, options: dict[str, Any], sink: Sink) -> None:
        self.device_id = device_id
        try:
            self.options = self.Options.model_validate(options)
        except ValidationError as exc:
            raise ConfigError(f"device {device_id!r} ({self.name}): {exc}") from None
        self.sink = sink
        self.rejected: Counter[str] = Counter()
        self.readings = 0
        self.last_error: str | None = None
        self.setup()

    def setup(self) -> None:
        """Per-device state a driver needs once its options are parsed (decoders, smoothers)."""
        return None

    @property
    def device_ids(self) -> list[str]:
        """The device ids this driver publishes for (a bus of sensors has several)."""
        return [self.device_id]

    @abstractmethod
    def run(self, stop: threading.Event) -> None:
        """Read the device until ``stop`` is set; reconnect on transport errors."""

    def emit(self, reading: Reading) -> None:
        self.readings += 1
        metrics.READINGS.labels(self.device_id, reading.kind).inc()
        self.sink.emit(self.device_id, reading)

    def reject(self, error: FrameError | DeviceError) -> None:
        """Count and log a refused frame or failed exchange; it never becomes a reading."""
        self.rejected[error.reason] += 1
        self.last_error = str(error)
        metrics.REJECTED.labels(self.device_id, error.reason).inc()
        raw = getattr(error, "raw", b"")
        log.debug("%s: %s%s", self.device_id, error, f" raw={raw[:120]!r}" if raw else "")

    def status(self) -> dict[str, Any]:
        return {"readings": self.readings, "rejected": dict(self.rejected), "last_error": self.last_error}
