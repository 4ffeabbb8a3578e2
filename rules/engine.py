"""The engine: an explicit, ordered pipeline of rule steps over each batch of readings.

    StreamOrder → PositionHygiene → Silence → ColdChain → LowSoc → GatePassages → Geofence

Order matters: late readings are marked before any rule looks; hygiene marks fixes before the rules
that trust them; gate passages are read before the geofence rule, which may wait for their
decision. A step that raises on one reading is logged and counted, and the pipeline goes on with
the next reading and the next step. The engine does no I/O: readings in, :class:`Effects` out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from rules import metrics
from rules.effects import Effects
from rules.errors import StateUnreadable, StepFailed
from rules.observation import Observation
from rules.registry import Registry
from rules.settings import RulesSettings
from rules.steps.base import Context, StatefulStep, Step
from rules.steps.coldchain import ColdChain
from rules.steps.gates import GatePassages, PassLog
from rules.steps.geofence import Geofence
from rules.steps.hygiene import PositionHygiene
from rules.steps.order import StreamOrder
from rules.steps.silence import Silence
from rules.steps.soc import LowSoc

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, settings: RulesSettings, registry: Registry) -> None:
        self.ctx = Context(registry, settings, ZoneInfo(settings.rules_timezone))
        self.passes = PassLog(self.ctx)
        self.silence = Silence(self.ctx)
        self.gates = GatePassages(self.ctx, self.passes)
        self.steps: list[Step[Any]] = [
            StreamOrder(self.ctx),
            PositionHygiene(self.ctx),
            self.silence,
            ColdChain(self.ctx),
            LowSoc(self.ctx),
            self.gates,
            Geofence(self.ctx, self.gates, self.passes),
        ]
        self.stateful: list[StatefulStep[Any]] = [*self.steps, self.passes]

    @property
    def registry(self) -> Registry:
        return self.ctx.registry

    def process(self, batch: list[Observation]) -> Effects:
        fx = Effects()
        for obs in batch:
            metrics.OBSERVED.labels(obs.kind).inc()
        for step in self.steps:
            mine = [o for o in batch if o.kind in step.kinds]
            if not mine:
                continue
            try:
                step.prepare(mine)
            except Exception as exc:
                self._failed(step, None, exc)
            for obs in mine:
                try:
                    step.handle(obs, fx)
                except Exception as exc:
                    self._failed(step, obs.device_id, exc)
        return fx

    def tick(self, now: float) -> Effects:
        fx = Effects()
        for step in self.steps:
            try:
                step.tick(now, fx)
            except Exception as exc:
                self._failed(step, None, exc)
        return fx

    @staticmethod
    def _failed(step: Step[Any], device: str | None, exc: Exception) -> None:
        metrics.STEP_ERRORS.labels(step.name).inc()
        log.error("%s", StepFailed(step.name, device, exc), exc_info=exc)

    def dirty_states(self) -> Iterator[tuple[str, str, dict[str, Any] | None]]:
        for holder in self.stateful:
            for subject, state in holder.dump_dirty():
                yield holder.name, subject, state

    def restore(self, rows: list[tuple[str, str, dict[str, Any]]]) -> int:
        holders = {h.name: h for h in self.stateful}
        restored = 0
        for rule, subject, state in rows:
            holder = holders.get(rule)
            if holder is None:
                continue
            try:
                holder.load(subject, state)
                restored += 1
            except (TypeError, ValueError) as exc:
                log.error("%s", StateUnreadable(rule, subject, exc))
        return restored
