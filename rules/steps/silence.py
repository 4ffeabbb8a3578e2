"""Silence on the platform's clock: ``sensor_offline`` for cold-room sensors, ``gps_lost`` for vehicles.

A temperature sensor with a profile is offline once nothing has arrived from it for the profile's
``offline_after_s``; a vehicle's terminal has lost GPS once no *valid* fix has arrived for the
vehicle's ``gps_lost_after_s`` (readings saying ``fix: none`` keep arriving, and do not count).
Arrival is what matters here, not ``ts``: a buffered backlog delivered now is news, and silence
is what the platform did not hear. The alert opens at the moment the limit ran out and clears
when the device is heard again.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.effects import Effects, SubjectKind
from rules.observation import Observation
from rules.steps.base import Context, Step


@dataclass
class Heard:
    kind: str = "temp"  # temp: sensor_offline; gps: gps_lost
    arrived: float = 0.0  # last arrival that counts
    t: float = 0.0  # its ts
    open: bool = False


class Silence(Step[Heard]):
    name = "silence"
    state_type = Heard
    kinds = ("gps", "temp")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.judging_from = 0.0  # platform time before which silence is not judged (start-up grace)

    def handle(self, obs: Observation, fx: Effects) -> None:
        if obs.kind == "gps" and not obs.marks.get("valid", False):
            return
        self.heard(obs.device_id, obs.kind, obs.arrived, obs.t, fx)

    def heard(self, device: str, kind: str, arrived: float, t: float, fx: Effects | None = None) -> None:
        h = self.state(device)
        h.kind = kind
        if arrived > h.arrived:
            h.arrived, h.t = arrived, max(h.t, t)
        if h.open and fx is not None:
            h.open = False
            type_, subject_kind, subject = self._subject(device, h)
            if subject is not None:
                self.alert(fx, "clear", type_, subject_kind, subject, arrived, {"heard_at": self.ctx.local(arrived)})

    def seed(self, device: str, kind: str, arrived: float, t: float) -> None:
        """What the database says was last heard, for a device this engine has never judged."""
        if device not in self.states:
            self.heard(device, kind, arrived, t)

    def _subject(self, device: str, h: Heard) -> tuple[str, SubjectKind, str | None]:
        if h.kind == "gps":
            vehicle = self.ctx.registry.vehicle_of(device)
            return "gps_lost", "vehicle", vehicle.vehicle_id if vehicle else None
        return "sensor_offline", "device", device

    def _limit(self, device: str, kind: str) -> float | None:
        if kind == "gps":
            vehicle = self.ctx.registry.vehicle_of(device)
            return float(vehicle.gps_lost_after_s) if vehicle else None
        profile = self.ctx.registry.profile_of(device)
        return float(profile.offline_after_s) if profile else None

    def tick(self, now: float, fx: Effects) -> None:
        if now < self.judging_from:
            return
        for device, h in self.states.items():
            if h.open:
                continue
            limit = self._limit(device, h.kind)
            if limit is None or now - h.arrived < limit:
                continue
            type_, subject_kind, subject = self._subject(device, h)
            if subject is None:
                continue
            h.open = True
            self.dirty.add(device)
            self.alert(fx, "open", type_, subject_kind, subject, h.arrived + limit, self._details(device, h, limit))

    def _details(self, device: str, h: Heard, limit: float) -> dict[str, object]:
        d = self.ctx.registry.devices.get(device)
        name = d.name if d else device
        minutes = round(limit / 60, 1)
        last = self.ctx.local(h.arrived)
        if h.kind == "gps":
            vehicle = self.ctx.registry.vehicle_of(device)
            plate = vehicle.plate if vehicle else device
            zh = f"车辆 {plate} 已 {minutes:g} 分钟无有效定位（最后有效定位 {self.ctx.clock(h.arrived)}）"
            en = f"vehicle {plate} has sent no valid fix for {minutes:g} min (last valid fix {last})"
        else:
            zh = f"{name} 已 {minutes:g} 分钟无数据（最后收到 {self.ctx.clock(h.arrived)}），请检查传感器与网关"
            en = f"{name} has sent nothing for {minutes:g} min (last heard {last}); check the sensor and its gateway"
        return {
            "device_id": device,
            "last_heard_at": last,
            "last_reading_ts": self.ctx.local(h.t),
            "limit_s": limit,
            "message_zh": zh,
            "message_en": en,
        }
