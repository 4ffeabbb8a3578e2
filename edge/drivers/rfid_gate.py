"""What every gate reader driver does after decoding: gate and direction, then ALE-style smoothing."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Literal

from pydantic import Field

from edge.drivers.base import DriverOptions
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


class GateReader:
    def __init__(self, options: GateReaderOptions) -> None:
        self.options = options
        self.smoother = TagSmoother(options.window_s)

    def sighting(self, read: TagRead, now: datetime) -> None:
        direction = self.options.antenna_directions.get(read.antenna or -1, self.options.direction)
        self.smoother.add(
            dataclasses.replace(read, gate_id=self.options.gate_id, direction=direction,
                                epc_uri=pure_identity_uri(read.epc)),
            now,
        )  # fmt: skip

    def due(self, now: datetime) -> list[Reading]:
        return list(self.smoother.flush(now))
