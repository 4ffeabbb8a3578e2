"""What every gate reader driver does after decoding: gate and direction, then ALE-style smoothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import Field

from edge.drivers.base import DriverOptions
from edge.drivers.stream import StreamDriver
from edge.protocols.epc import pure_identity_uri
from edge.readings import Reading, TagRead
from edge.smoothing import TagSmoother


class GateReaderOptions(DriverOptions):
    gate_id: str | None = None
    # Antenna number -> direction of travel it watches (e.g. outer antenna "in", inner "out").
    antenna_directions: dict[int, Literal["in", "out"]] = Field(default_factory=dict)
    direction: Literal["in", "out"] | None = None  # for every antenna not in antenna_directions
    # A tag seen again and again within this window is one read (first/last seen, count, peak RSSI).
    window_s: float = Field(default=3.0, gt=0, le=300)


class GateReaderDriver(StreamDriver):
    """A gate reader: decoded sightings get gate and direction, then leave smoothed, on the clock."""

    options: GateReaderOptions

    def setup(self) -> None:
        self._smoother = TagSmoother(self.options.window_s)

    def sightings(self, reads: Iterable[TagRead], now: datetime) -> list[Reading]:
        for read in reads:
            direction = self.options.antenna_directions.get(read.antenna or -1, self.options.direction)
            self._smoother.add(
                dataclasses.replace(read, gate_id=self.options.gate_id, direction=direction,
                                    epc_uri=pure_identity_uri(read.epc)),
                now,
            )  # fmt: skip
        return []  # readings leave through tick() when their window closes

    def tick(self, now: datetime) -> list[Reading]:
        return list(self._smoother.flush(now))
