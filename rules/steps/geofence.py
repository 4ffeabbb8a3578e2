"""Bonded transport: ``bonded_exit`` and ``corridor_deviation`` from accepted fixes.

- ``bonded_exit`` (critical): a ``bonded_transport`` vehicle is outside every bonded boundary and
  every corridor, or the straight line from its previous fix leaves them by more than
  ``rules_segment_outside_m`` while both fixes are inside the bonded boundary (a boundary crossed
  between two sparse fixes still counts; a line between two fixes on a corridor only cuts the
  road's bends, as a minute between fixes at road speed does by hundreds of metres), and it
  got no ``pass`` at a gate in the ``rules_exit_pass_grace_s`` (30 min) before. Goods have left
  customs supervision: the alert stays until a person resolves it, and returning does not clear it.
  While a gate passage that began before the fix is still being read, the fix waits for its
  decision, so a pass read in the same backlog excuses it exactly as it would live.
- ``corridor_deviation`` (major): a vehicle with a corridor is outside both the bonded boundary and
  its corridor; clears at its first fix back inside either.

Points of a batch are projected and tested against the prepared areas in one vectorised call per
area; the state machines then walk the fixes in order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from bondwatch.contract.payloads import GpsReading
from rules.effects import Effects
from rules.observation import Observation
from rules.registry import Vehicle
from rules.steps.base import Context, Step
from rules.steps.gates import GatePassages, PassLog

log = logging.getLogger(__name__)


@dataclass
class Track:
    x: float = 0.0
    y: float = 0.0
    t: float = 0.0
    have: bool = False
    in_boundary: bool = False
    exit_active: bool = False
    deviating: bool = False
    parked: list[list[float]] = field(default_factory=list)  # [t, x, y, lon, lat, segment_outside_m]


class Geofence(Step[Track]):
    name = "geofence"
    state_type = Track
    kinds = ("gps",)

    def __init__(self, ctx: Context, gates: GatePassages, passes: PassLog) -> None:
        super().__init__(ctx)
        self.gates = gates
        self.passes = passes
        self._flags: dict[int, tuple[float, float, bool, bool, bool]] = {}

    def prepare(self, batch: list[Observation]) -> None:
        """Project and test every accepted fix of the batch at once."""
        self._flags = {}
        fixes = [o for o in batch if o.marks.get("fix") and self.ctx.registry.vehicle_of(o.device_id)]
        if not fixes:
            return
        fences = self.ctx.registry.fences
        lon = np.array([o.reading.lon for o in fixes], dtype=np.float64)  # type: ignore[union-attr]
        lat = np.array([o.reading.lat for o in fixes], dtype=np.float64)  # type: ignore[union-attr]
        x, y = fences.project(lon, lat)
        allowed = fences.in_allowed(x, y)
        boundary = fences.in_boundary(x, y)
        own = np.zeros(len(fixes), dtype=bool)
        corridor_of = [self._vehicle(o).corridor_id for o in fixes]
        for corridor in {c for c in corridor_of if c}:
            rows = np.array([c == corridor for c in corridor_of])
            own[rows] = fences.in_corridor(corridor, x[rows], y[rows])
        for i, o in enumerate(fixes):
            self._flags[id(o)] = (float(x[i]), float(y[i]), bool(allowed[i]), bool(boundary[i]), bool(own[i]))

    def _vehicle(self, obs: Observation) -> Vehicle:
        vehicle = self.ctx.registry.vehicle_of(obs.device_id)
        assert vehicle is not None
        return vehicle

    def handle(self, obs: Observation, fx: Effects) -> None:
        flags = self._flags.get(id(obs))
        if flags is None:
            return
        x, y, allowed, in_boundary, in_own = flags
        vehicle = self._vehicle(obs)
        r = obs.reading
        assert isinstance(r, GpsReading)
        track = self.state(obs.device_id)
        fences = self.ctx.registry.fences
        if vehicle.bonded_transport and fences.allowed is not None:
            crossed = 0.0
            sparse_inside = in_boundary and track.have and track.in_boundary
            if sparse_inside and obs.t - track.t <= self.ctx.settings.rules_segment_max_gap_s:
                crossed = fences.segment_outside_m(track.x, track.y, x, y)
            if not allowed or crossed > self.ctx.settings.rules_segment_outside_m:
                candidate = [obs.t, x, y, r.lon, r.lat, crossed]
                if track.exit_active:
                    self._exit(vehicle, track, candidate, fx, update=True)
                elif self.gates.undecided_before(obs.t):
                    track.parked.append(candidate)
                else:
                    self._judge_exit(vehicle, track, candidate, fx)
            else:
                track.exit_active = False
        if vehicle.corridor_id and vehicle.corridor_id in fences.corridors:
            off = not in_boundary and not in_own
            if off:
                details = self._deviation_details(vehicle, x, y, r.lon, r.lat, obs.t)
                self.alert(
                    fx, "update" if track.deviating else "open", "corridor_deviation", "vehicle",
                    vehicle.vehicle_id, obs.t, details,
                )  # fmt: skip
                track.deviating = True
            elif track.deviating:
                details = {"back_at": self.ctx.local(obs.t), "lon": r.lon, "lat": r.lat}
                self.alert(fx, "clear", "corridor_deviation", "vehicle", vehicle.vehicle_id, obs.t, details)
                track.deviating = False
        track.x, track.y, track.t, track.have, track.in_boundary = x, y, obs.t, True, in_boundary

    def tick(self, now: float, fx: Effects) -> None:
        for device, track in self.states.items():
            if not track.parked:
                continue
            vehicle = self.ctx.registry.vehicle_of(device)
            ready = [c for c in track.parked if not self.gates.undecided_before(c[0])]
            if not ready:
                continue
            self.dirty.add(device)
            track.parked = [c for c in track.parked if c not in ready]
            if vehicle is None:
                continue
            for candidate in ready:
                if track.exit_active:
                    self._exit(vehicle, track, candidate, fx, update=True)
                else:
                    self._judge_exit(vehicle, track, candidate, fx)

    def _judge_exit(self, vehicle: Vehicle, track: Track, candidate: list[float], fx: Effects) -> None:
        t = candidate[0]
        mark = self.passes.last(vehicle.vehicle_id)
        if mark is not None and 0 <= t - mark.t <= self.ctx.settings.rules_exit_pass_grace_s:
            return  # released at a gate a moment ago: on its way, not escaping
        track.exit_active = True
        self._exit(vehicle, track, candidate, fx, update=False)

    def _exit(self, vehicle: Vehicle, track: Track, candidate: list[float], fx: Effects, update: bool) -> None:
        t, x, y, lon, lat, crossed = candidate
        distance = self.ctx.registry.fences.distance_outside_m(x, y) or 0.0
        mark = self.passes.last(vehicle.vehicle_id)
        details: dict[str, Any] = {
            "lon": lon,
            "lat": lat,
            "at": self.ctx.local(t),
            "distance_outside_m": round(distance),
            "plate": vehicle.plate,
            "last_pass_passage_id": mark.passage_id if mark else None,
            "message_zh": f"保税运输车辆 {vehicle.plate} 离开综保区及所有监管通道，距最近边界 {distance:.0f} 米，"
            "且 30 分钟内无卡口放行记录",
            "message_en": f"bonded-transport vehicle {vehicle.plate} is outside the bonded zone and every corridor, "
            f"{distance:.0f} m from the nearest, with no gate pass in the last 30 min",
        }
        if crossed and distance == 0:
            details["crossed_between_fixes_m"] = round(crossed)
            details["message_zh"] = f"保税运输车辆 {vehicle.plate} 两次定位之间驶出综保区约 {crossed:.0f} 米后返回"
            details["message_en"] = (
                f"bonded-transport vehicle {vehicle.plate} left the zone for about {crossed:.0f} m between two fixes"
            )
        if not update:
            log.warning("bonded_exit: %s", details["message_en"])
        self.alert(fx, "update" if update else "open", "bonded_exit", "vehicle", vehicle.vehicle_id, t, details)

    def _deviation_details(
        self, vehicle: Vehicle, x: float, y: float, lon: float, lat: float, t: float
    ) -> dict[str, Any]:
        fences = self.ctx.registry.fences
        corridor = fences.corridors[vehicle.corridor_id or ""]
        off_m = float(shapely.distance(corridor.area, shapely.points(x, y)))
        return {
            "corridor_id": corridor.id,
            "lon": lon,
            "lat": lat,
            "at": self.ctx.local(t),
            "distance_off_corridor_m": round(off_m),
            "plate": vehicle.plate,
            "message_zh": f"车辆 {vehicle.plate} 偏离监管通道「{corridor.name}」约 {off_m:.0f} 米",
            "message_en": f"vehicle {vehicle.plate} is {off_m:.0f} m off its corridor {corridor.id}",
        }
