"""Rules only move forward: a reading not newer than what its device already sent is marked late.

Newer means a later ``ts``, or the same ``ts`` with a higher ``seq``; a repeat on the wire (the
same seq again) is therefore late too. Late readings are stored by ingest, but no rule goes back
in time for them. A reading stamped further in the future than ``rules_future_tolerance_s`` (a
device clock gone wrong) is not judged either, and does not become the device's latest: otherwise
every correct reading after it would look late until real time caught up with the bad clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules import metrics
from rules.effects import Effects
from rules.observation import Observation
from rules.steps.base import Step


@dataclass
class Latest:
    t: float = float("-inf")
    seq: int = -1


class StreamOrder(Step[Latest]):
    name = "order"
    state_type = Latest
    kinds = ("gps", "temp", "rfid")

    def handle(self, obs: Observation, fx: Effects) -> None:
        if obs.t > obs.arrived + self.ctx.settings.rules_future_tolerance_s:
            obs.marks.update(late=True, valid=False, fix=False, rejected="future")
            metrics.FUTURE.labels(obs.kind).inc()
            return
        latest = self.states.get(obs.device_id)
        if latest is not None and (obs.t, obs.seq) <= (latest.t, latest.seq):
            obs.marks["late"] = True
            metrics.LATE.labels(obs.kind).inc()
            return
        latest = self.state(obs.device_id)
        latest.t, latest.seq = obs.t, obs.seq
