"""``low_soc``: a vehicle's state of charge below its ``low_soc_pct``, judged on the readings' own time.

It clears once the battery is charged back ``rules_soc_hysteresis_pct`` above the threshold, so a
reading wavering around the line does not open and clear the alert every few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from bondwatch.contract.payloads import GpsReading
from rules.effects import Effects
from rules.observation import Observation
from rules.steps.base import Step


@dataclass
class Charge:
    low: bool = False
    lowest: float = 100.0


class LowSoc(Step[Charge]):
    name = "soc"
    state_type = Charge
    kinds = ("gps",)

    def handle(self, obs: Observation, fx: Effects) -> None:
        r = obs.reading
        assert isinstance(r, GpsReading)
        if not obs.fresh or r.soc_pct is None:
            return
        vehicle = self.ctx.registry.vehicle_of(obs.device_id)
        if vehicle is None:
            return
        c = self.states.get(vehicle.vehicle_id)
        soc, threshold = r.soc_pct, vehicle.low_soc_pct
        if (c is None or not c.low) and soc < threshold:
            c = self.state(vehicle.vehicle_id)
            c.low, c.lowest = True, soc
            details = {
                "soc_pct": soc,
                "threshold_pct": threshold,
                "plate": vehicle.plate,
                "lon": r.lon,
                "lat": r.lat,
                "message_zh": f"车辆 {vehicle.plate} 电量 {soc:.0f}%，低于 {threshold:g}%，请安排充电",
                "message_en": f"vehicle {vehicle.plate} is at {soc:.0f}% charge, below {threshold:g}%; plan charging",
            }
            self.alert(fx, "open", "low_soc", "vehicle", vehicle.vehicle_id, obs.t, details)
        elif c is not None and c.low:
            if soc >= threshold + self.ctx.settings.rules_soc_hysteresis_pct:
                c = self.state(vehicle.vehicle_id)
                c.low = False
                details = {"soc_pct": soc, "lowest_pct": c.lowest, "charged_at": self.ctx.local(obs.t)}
                self.alert(fx, "clear", "low_soc", "vehicle", vehicle.vehicle_id, obs.t, details)
            elif soc < c.lowest:
                self.state(vehicle.vehicle_id).lowest = soc
