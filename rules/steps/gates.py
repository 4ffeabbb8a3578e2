"""Customs gates: tag reads grouped into passages, each outbound passage decided once its window closes.

The reads of one gate (the read's ``gate_id``, else the reader's registered gate) that fall within
``rules_passage_window_s`` of the first read form one passage. It closes when a read of the same
gate comes after the window (on the readings' clock), or on the platform's clock at

    last arrival + max(settle, first ts + window − last ts)

that is, when what is left of the window, as the reader's clock counts it, has passed since its
latest read arrived. Live, that is the end of the window whatever the reader's clock says (a reader
60 s slow or 30 s fast alike); a backlog delivered all at once closes a window's length after it
arrives, unless the gate's next passage closes it first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bondwatch.contract.payloads import RfidReading
from rules import metrics
from rules.decide import decide
from rules.effects import Effects, PassageOutcome
from rules.observation import Observation
from rules.steps.base import StatefulStep, Step

log = logging.getLogger(__name__)
DETAIL_CAP = 20  # reasons and tags an alert lists; the passage keeps them all


@dataclass
class OpenPassage:
    first_t: float = 0.0
    last_t: float = 0.0
    last_arrival: float = 0.0
    reads: list[list[Any]] = field(default_factory=list)  # [epc, t, device, direction]


@dataclass
class PassMark:
    t: float = 0.0
    passage_id: str = ""


class PassLog(StatefulStep[PassMark]):
    """The last ``pass`` of each vehicle: it excuses a bonded vehicle's being outside for a while."""

    name = "passes"
    state_type = PassMark

    def record(self, vehicle_id: str, t: float, passage_id: str) -> None:
        mark = self.state(vehicle_id)
        if t >= mark.t:
            mark.t, mark.passage_id = t, passage_id

    def last(self, vehicle_id: str) -> PassMark | None:
        return self.states.get(vehicle_id)


def passage_id(gate_id: str, first_t: float) -> str:
    stamp = datetime.fromtimestamp(first_t, tz=UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3]
    return f"{gate_id}-{stamp}Z"


class GatePassages(Step[OpenPassage]):
    name = "gates"
    state_type = OpenPassage
    kinds = ("rfid",)

    def __init__(self, ctx: Any, passes: PassLog) -> None:
        super().__init__(ctx)
        self.passes = passes

    def gate_of(self, obs: Observation) -> str:
        r = obs.reading
        assert isinstance(r, RfidReading)
        if r.gate_id:
            return r.gate_id
        device = self.ctx.registry.devices.get(obs.device_id)
        return device.gate_id if device is not None and device.gate_id else f"reader-{obs.device_id}"

    def handle(self, obs: Observation, fx: Effects) -> None:
        if not obs.fresh:
            return
        r = obs.reading
        assert isinstance(r, RfidReading)
        gate = self.gate_of(obs)
        window = self.ctx.settings.rules_passage_window_s
        current = self.states.get(gate)
        if current is not None and obs.t >= current.first_t + window:
            self._close(gate, fx)
            current = None
        p = self.state(gate)
        if current is None:
            p.first_t = obs.t
        p.first_t = min(p.first_t, obs.t)
        p.last_t = max(p.last_t, obs.t)
        p.last_arrival = obs.arrived
        p.reads.append([r.epc, obs.t, obs.device_id, r.direction])

    def undecided_before(self, t: float) -> bool:
        """Whether some passage that began by ``t`` is still being read (its decision could excuse ``t``)."""
        return any(p.first_t <= t for p in self.states.values())

    def tick(self, now: float, fx: Effects) -> None:
        s = self.ctx.settings
        for gate, p in list(self.states.items()):
            left = p.first_t + s.rules_passage_window_s - p.last_t
            if now >= p.last_arrival + max(s.rules_passage_settle_s, left):
                self._close(gate, fx)

    def _close(self, gate: str, fx: Effects) -> None:
        p = self.states[gate]
        self.forget(gate)
        epcs = list(dict.fromkeys(read[0] for read in p.reads))
        readers = sorted({read[2] for read in p.reads})
        pid = passage_id(gate, p.first_t)
        outcome = decide(
            pid, gate, epcs, [read[3] for read in p.reads], readers, len(p.reads), p.first_t, p.last_t,
            self.ctx.registry,
        )  # fmt: skip
        fx.passages.append(outcome)
        if outcome.decision is None:
            return
        metrics.DECISIONS.labels(outcome.decision).inc()
        log.info(
            "gate %s passage %s: %s (vehicle %s, note %s)%s",
            gate,
            pid,
            outcome.decision,
            outcome.vehicle_id,
            outcome.release_note_id,
            "".join(f"; {r.text}" for r in outcome.reasons),
        )
        if outcome.decision == "pass" and outcome.vehicle_id:
            self._passed(outcome, fx)
        elif outcome.decision == "hold":
            self._held(outcome, fx)

    def _passed(self, o: PassageOutcome, fx: Effects) -> None:
        assert o.vehicle_id is not None and o.release_note_id is not None
        self.passes.record(o.vehicle_id, o.first_read, o.id)
        self.ctx.registry.notes[o.release_note_id].used_passage_id = o.id
        details = {"cleared_by_passage": o.id, "gate_id": o.gate_id, "release_note_id": o.release_note_id}
        self.alert(fx, "clear", "gate_hold", "vehicle", o.vehicle_id, o.first_read, details)

    def _held(self, o: PassageOutcome, fx: Effects) -> None:
        vehicle = self.ctx.registry.vehicles.get(o.vehicle_id) if o.vehicle_id else None
        gate_name = self.ctx.registry.fences.names.get(o.gate_id, o.gate_id)
        who_zh = f"车辆 {vehicle.plate}" if vehicle else "未识别车辆"
        who_en = f"vehicle {vehicle.plate}" if vehicle else "an unidentified vehicle"
        shown = o.reasons[:DETAIL_CAP]
        details = {
            "gate_id": o.gate_id,
            "passage_id": o.id,
            "release_note_id": o.release_note_id,
            "reasons": [r.as_json() for r in shown],
            "reasons_total": len(o.reasons),
            "epcs": list(o.epcs[:DETAIL_CAP]),
            "epcs_total": len(o.epcs),
            "message_zh": f"{gate_name}拦截{who_zh}出区：" + "；".join(r.text.split(" / ")[0] for r in shown),
            "message_en": f"{who_en} held at {o.gate_id}: " + "; ".join(r.text.split(" / ")[-1] for r in shown),
        }
        if o.vehicle_id:
            self.alert(fx, "open", "gate_hold", "vehicle", o.vehicle_id, o.first_read, details)
        else:
            self.alert(fx, "open", "gate_hold", "gate", o.gate_id, o.first_read, details)
