"""Drivers whose device streams bytes at us: a transport, a framer and a decoder, nothing else.

transport.chunks() --bytes--> framer.feed() --units--> decode() --readings--> sink
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Protocol

from edge.drivers.base import Driver
from edge.errors import DeviceError, FrameError
from edge.readings import Reading


class Source(Protocol):
    def chunks(self, stop: threading.Event) -> Iterator[bytes | DeviceError]: ...


class Framer(Protocol):
    def feed(self, data: bytes) -> Sequence[str] | Sequence[bytes]: ...


class StreamDriver(Driver):
    @abstractmethod
    def source(self) -> Source: ...

    @abstractmethod
    def framer(self) -> Framer:
        """A new framer whose ``on_error`` is :meth:`reject`."""

    @abstractmethod
    def decode(self, unit: str | bytes, now: datetime) -> list[Reading]:
        """Readings from one framed unit; FrameError for a refused one."""

    def on_time(self, readings: list[Reading], now: datetime, max_skew_s: float | None) -> list[Reading]:
        """Readings whose own time is within ``max_skew_s`` of the gateway's clock; the rest are refused.

        A live device reports the present: a fix hours off is a receiver with a wrong clock (or a
        spoofed one), and rules must never judge it as if it happened then.
        """
        if max_skew_s is None:
            return readings
        kept = []
        for reading in readings:
            skew = abs((reading.ts - now).total_seconds())
            if skew > max_skew_s:
                self.reject(FrameError("clock_skew", f"reading time {reading.ts.isoformat()} is {skew:.0f} s "
                                       f"from the gateway clock", device=self.device_id))  # fmt: skip
            else:
                kept.append(reading)
        return kept

    def tick(self, now: datetime) -> list[Reading]:
        """Readings due by time alone (e.g. closed smoothing windows); called on every chunk."""
        return []

    def run(self, stop: threading.Event) -> None:
        framer = self.framer()
        for chunk in self.source().chunks(stop):
            if isinstance(chunk, DeviceError):
                self.reject(chunk)
                framer = self.framer()  # a partial frame from before the reconnect is garbage
                continue
            now = datetime.now(UTC)
            for unit in framer.feed(chunk) if chunk else ():
                try:
                    readings = self.decode(unit, now)
                except FrameError as exc:
                    self.reject(exc)
                    continue
                for reading in readings:
                    self.emit(reading)
            for reading in self.tick(now):
                self.emit(reading)
