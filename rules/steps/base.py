"""The small interface every rule step implements, and the state each keeps per subject.

A step sees each observation of a batch in arrival order (``handle``), may look at the whole batch
first (``prepare``: vectorised geometry), and may act on the platform's clock (``tick``: silence,
closing gate passages). What a step remembers lives in ``states`` keyed by subject; the engine
checkpoints the subjects a step marked dirty, and gives them back after a restart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar
from zoneinfo import ZoneInfo

from rules.effects import AlertChange, Effects, SubjectKind, at
from rules.observation import Observation
from rules.registry import Registry
from rules.settings import RulesSettings

S = TypeVar("S")


@dataclass
class Context:
    """What every step may consult: the registry, the settings, the zone's time."""

    registry: Registry
    settings: RulesSettings
    zone: ZoneInfo

    def local(self, epoch_s: float) -> str:
        """RFC 3339 in the zone's time (+08:00), as dispatchers read it."""
        return datetime.fromtimestamp(epoch_s, tz=self.zone).isoformat(timespec="seconds")

    def clock(self, epoch_s: float) -> str:
        """HH:MM in the zone's time, for alert texts."""
        return datetime.fromtimestamp(epoch_s, tz=self.zone).strftime("%H:%M")


class StatefulStep(ABC, Generic[S]):
    name: ClassVar[str]
    state_type: type[S]

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.states: dict[str, S] = {}
        self.dirty: set[str] = set()

    def state(self, subject: str) -> S:
        found = self.states.get(subject)
        if found is None:
            found = self.states[subject] = self.state_type()
        self.dirty.add(subject)
        return found

    def dump_dirty(self) -> Iterator[tuple[str, dict[str, Any] | None]]:
        """(subject, state) of every changed subject; None for a subject that was forgotten.

        States are flat dataclasses of numbers, strings and lists of them, serialised before the
        step runs again: their own ``__dict__`` is enough (``dataclasses.asdict`` deep-copies, and
        cost a fifth of the engine's time at 3,000 readings/s).
        """
        for subject in self.dirty:
            found = self.states.get(subject)
            yield subject, vars(found) if found is not None else None
        self.dirty.clear()

    def load(self, subject: str, data: dict[str, Any]) -> None:
        self.states[subject] = self.state_type(**data)

    def forget(self, subject: str) -> None:
        if self.states.pop(subject, None) is not None:
            self.dirty.add(subject)

    def alert(
        self,
        fx: Effects,
        action: str,
        type_: str,
        subject_kind: SubjectKind,
        subject_id: str,
        when: float,
        details: dict[str, Any],
    ) -> None:
        fx.alerts.append(AlertChange(action, type_, subject_kind, subject_id, at(when), details))  # type: ignore[arg-type]


class Step(StatefulStep[S]):
    kinds: ClassVar[tuple[str, ...]]  # the observation kinds it handles

    def prepare(self, batch: list[Observation]) -> None:
        """Look at the whole batch before its observations are handled one by one."""

    @abstractmethod
    def handle(self, obs: Observation, fx: Effects) -> None: ...

    def tick(self, now: float, fx: Effects) -> None:
        """Act on the platform's clock."""
