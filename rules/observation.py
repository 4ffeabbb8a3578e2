"""A reading as the rules see it: validated, with its own time and the platform's time of arrival."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bondwatch.contract.payloads import GpsReading, RfidReading, TempReading


@dataclass(slots=True)
class Observation:
    kind: str  # gps | temp | rfid
    device_id: str
    reading: GpsReading | TempReading | RfidReading
    t: float  # the reading's ts, epoch seconds
    arrived: float  # platform clock, epoch seconds
    # Set by earlier steps for later ones: "late" (not newer than what the device sent before),
    # "fix" (the position passed hygiene), "valid" (a usable fix, even if hygiene held it back).
    marks: dict[str, Any] = field(default_factory=dict)

    @property
    def fresh(self) -> bool:
        return not self.marks.get("late", False)

    @property
    def seq(self) -> int:
        return self.reading.seq
