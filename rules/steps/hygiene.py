"""Position hygiene: which fixes the geofence rules may trust.

A fix is *valid* when the terminal says it has one (``fix`` 2d/3d), it is not the 0/0 placeholder,
its HDOP is sane, and it is not older than the oldest data a rule will still judge. A valid fix is
*accepted* unless it implies an impossible speed from the last accepted fix (a multipath or
spoofing jump). When ``rules_jump_reset_after`` rejected fixes in a row agree with each other (each
plausible from the one before), the new place is believed: the truck was moved while the terminal
was off. Scattered glitches never agree, so they never move the truck. Late, repeated and
future-stamped readings never get here (see :mod:`rules.steps.order`).

Marks set on the observation: ``valid`` (bool), ``fix`` (accepted, bool), ``rejected`` (reason).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyproj import Geod

from bondwatch.contract.payloads import GpsReading
from rules import metrics
from rules.effects import Effects
from rules.observation import Observation
from rules.steps.base import Step

WGS84 = Geod(ellps="WGS84")


@dataclass
class LastFix:
    t: float = 0.0
    lon: float = 0.0
    lat: float = 0.0
    have: bool = False
    # The rejected fixes in a row that agree with each other: how many, and the latest of them.
    agreeing: int = 0
    cand_t: float = 0.0
    cand_lon: float = 0.0
    cand_lat: float = 0.0


def invalid_reason(r: GpsReading, t: float, arrived: float, max_hdop: float, max_age_s: float) -> str:
    if r.fix == "none":
        return "no_fix"
    if r.lat == 0 and r.lon == 0:
        return "null_island"
    if r.hdop is not None and r.hdop > max_hdop:
        return "hdop"
    if t < arrived - max_age_s:
        return "stale"
    return ""


class PositionHygiene(Step[LastFix]):
    name = "hygiene"
    state_type = LastFix
    kinds = ("gps",)

    def handle(self, obs: Observation, fx: Effects) -> None:
        if not obs.fresh:
            return
        s = self.ctx.settings
        r = obs.reading
        assert isinstance(r, GpsReading)
        reason = invalid_reason(r, obs.t, obs.arrived, s.rules_max_hdop, s.rules_max_fix_age_s)
        obs.marks["valid"] = not reason
        last = self.states.get(obs.device_id)
        if not reason and last is not None and last.have and self._jump(last.t, last.lon, last.lat, r, obs.t):
            agrees = last.agreeing > 0 and not self._jump(last.cand_t, last.cand_lon, last.cand_lat, r, obs.t)
            last.agreeing = last.agreeing + 1 if agrees else 1
            last.cand_t, last.cand_lon, last.cand_lat = obs.t, r.lon, r.lat
            self.dirty.add(obs.device_id)
            if last.agreeing < s.rules_jump_reset_after:
                reason = "jump"
        obs.marks["fix"] = not reason
        if reason:
            obs.marks["rejected"] = reason
            metrics.FIXES_REJECTED.labels(reason).inc()
            return
        last = self.state(obs.device_id)
        last.t, last.lon, last.lat, last.have, last.agreeing = obs.t, r.lon, r.lat, True, 0

    def _jump(self, t0: float, lon0: float, lat0: float, r: GpsReading, t: float) -> bool:
        """Whether going from (lon0, lat0) at t0 to the fix at t would take an impossible speed."""
        s = self.ctx.settings
        _, _, metres = WGS84.inv(lon0, lat0, r.lon, r.lat)
        if metres <= s.rules_jump_min_m:
            return False
        seconds = max(t - t0, 1e-3)
        return bool(metres / seconds * 3.6 > s.rules_max_speed_kmh)
