"""What the engine decides, as data: alert changes and gate passages, applied by the store in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from bondwatch.contract.alerts import SEVERITY, Severity

SubjectKind = Literal["device", "vehicle", "gate"]


def at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


@dataclass(frozen=True, slots=True)
class AlertChange:
    """open: raise (or, if one is open, update) the alert; update: new details; clear: the condition is over."""

    action: Literal["open", "update", "clear"]
    type: str
    subject_kind: SubjectKind
    subject_id: str
    when: datetime  # opened_at for open, cleared_at for clear
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.type]


@dataclass(frozen=True, slots=True)
class Reason:
    code: str  # no_vehicle_tag | several_vehicles | no_release_note | bonded_without_note | not_on_note
    text: str  # Chinese first, then English
    epc: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "text": self.text, "epc": self.epc}


@dataclass(frozen=True, slots=True)
class PassageOutcome:
    id: str
    gate_id: str
    direction: Literal["in", "out"]
    vehicle_id: str | None
    vehicle_epc: str | None
    epcs: tuple[str, ...]
    cargo_epcs: tuple[str, ...]
    reads: int
    readers: tuple[str, ...]
    first_read: float
    last_read: float
    decision: Literal["pass", "hold"] | None  # None: inbound, nothing to decide
    reasons: tuple[Reason, ...]
    release_note_id: str | None
    missing_epcs: tuple[str, ...] = ()  # listed on the note but not read


@dataclass
class Effects:
    alerts: list[AlertChange] = field(default_factory=list)
    passages: list[PassageOutcome] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.alerts or self.passages)

    def extend(self, other: Effects) -> None:
        self.alerts += other.alerts
        self.passages += other.passages
