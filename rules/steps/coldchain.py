"""Cold chain: temperature excursions and pre-alarms per the sensor's profile, on the readings' own time.

For each direction (high above ``max_c``, low below ``min_c``):

    inside ──first reading outside──▶ pending(start) ──reading with ts > start + delay_s──▶ ALARM
       ▲                                  │ back inside                                    │
       └──────────────────────────────────┘                                                │
       ◀──────────────── reading back inside by hysteresis_c (≤ max_c − hysteresis_c) ─────┘

The pre-alarm is the same machine on the band within ``pre_alarm_margin_c`` inside a limit, and
clears ``hysteresis_c`` below the band. An excursion supersedes its pre-alarm (one to-do, not two).
Door openings (``door_open``) seen from ``rules_door_lookback_s`` before an excursion began until it
ends are listed in its details: the usual cause, and what a warehouse manager asks first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bondwatch.contract.payloads import TempReading
from rules.effects import Effects
from rules.observation import Observation
from rules.registry import Profile
from rules.steps.base import Step

DIRECTION_ZH = {"high": "高于上限", "low": "低于下限"}
DIRECTION_EN = {"high": "above its maximum", "low": "below its minimum"}


@dataclass
class ColdState:
    ex_dir: str | None = None  # direction of the pending or open excursion
    ex_start: float = 0.0
    ex_open: bool = False
    ex_peak: float = 0.0
    ex_last_out: float = 0.0
    pre_dir: str | None = None
    pre_start: float = 0.0
    pre_open: bool = False
    pre_peak: float = 0.0
    door_since: float | None = None
    doors: list[list[float]] = field(default_factory=list)  # closed door-open periods [from, to]


def outside(p: Profile, v: float) -> str | None:
    return "high" if v > p.max_c else "low" if v < p.min_c else None


def in_band(p: Profile, v: float) -> str | None:
    if p.pre_alarm_margin_c <= 0:
        return None
    if p.max_c - p.pre_alarm_margin_c <= v <= p.max_c:
        return "high"
    if p.min_c <= v <= p.min_c + p.pre_alarm_margin_c:
        return "low"
    return None


def back_inside(p: Profile, direction: str, v: float, margin: float) -> bool:
    """Inside again by the hysteresis, ``margin`` further in (0 for an excursion, the band for a pre-alarm)."""
    if direction == "high":
        return v <= p.max_c - margin - p.hysteresis_c
    return v >= p.min_c + margin + p.hysteresis_c


def held(start: float, t: float, delay: float) -> bool:
    return t - start > delay or (delay == 0 and t >= start)


class ColdChain(Step[ColdState]):
    name = "coldchain"
    state_type = ColdState
    kinds = ("temp",)

    def handle(self, obs: Observation, fx: Effects) -> None:
        if not obs.fresh:
            return
        profile = self.ctx.registry.profile_of(obs.device_id)
        if profile is None:
            return
        r = obs.reading
        assert isinstance(r, TempReading)
        s = self.state(obs.device_id)
        self._doors(s, r.door_open, obs.t)
        self._excursion(obs.device_id, profile, s, r.temp_c, obs.t, fx)
        self._pre_alarm(obs.device_id, profile, s, r.temp_c, obs.t, fx)

    def _doors(self, s: ColdState, door_open: bool | None, t: float) -> None:
        if door_open is True and s.door_since is None:
            s.door_since = t
        elif door_open is False and s.door_since is not None:
            s.doors.append([s.door_since, t])
            s.door_since = None
        keep_from = (s.ex_start if s.ex_dir else t) - self.ctx.settings.rules_door_lookback_s
        s.doors = [d for d in s.doors if d[1] >= keep_from]

    def _excursion(self, device: str, p: Profile, s: ColdState, v: float, t: float, fx: Effects) -> None:
        side = outside(p, v)
        if s.ex_open and s.ex_dir is not None:
            if side == s.ex_dir:
                s.ex_peak = max(s.ex_peak, v) if side == "high" else min(s.ex_peak, v)
                s.ex_last_out = t
                self.alert(fx, "update", "temp_excursion", "device", device, t, self._details(device, p, s, v, t))
                return
            if not back_inside(p, s.ex_dir, v, 0.0):
                return
            details = self._details(device, p, s, v, t) | {"ended_at": self.ctx.local(t)}
            self.alert(fx, "clear", "temp_excursion", "device", device, t, details)
            s.ex_open, s.ex_dir = False, None
        if side is None:
            s.ex_dir = None
            return
        if s.ex_dir != side:
            s.ex_dir, s.ex_start, s.ex_peak = side, t, v
        s.ex_peak = max(s.ex_peak, v) if side == "high" else min(s.ex_peak, v)
        s.ex_last_out = t
        if held(s.ex_start, t, p.delay_s):
            s.ex_open = True
            self.alert(fx, "open", "temp_excursion", "device", device, t, self._details(device, p, s, v, t))
            if s.pre_open:
                note = {"superseded_by": "temp_excursion"}
                self.alert(fx, "clear", "temp_pre_alarm", "device", device, t, note)
                s.pre_open, s.pre_dir = False, None

    def _pre_alarm(self, device: str, p: Profile, s: ColdState, v: float, t: float, fx: Effects) -> None:
        if s.ex_open:
            return
        band = in_band(p, v)
        if s.pre_open and s.pre_dir is not None:
            if back_inside(p, s.pre_dir, v, p.pre_alarm_margin_c):
                details = self._pre_details(device, p, s, v, t) | {"ended_at": self.ctx.local(t)}
                self.alert(fx, "clear", "temp_pre_alarm", "device", device, t, details)
                s.pre_open, s.pre_dir = False, None
            elif band == s.pre_dir:
                s.pre_peak = max(s.pre_peak, v) if band == "high" else min(s.pre_peak, v)
            return
        if band is None:
            s.pre_dir = None
            return
        if s.pre_dir != band:
            s.pre_dir, s.pre_start, s.pre_peak = band, t, v
        s.pre_peak = max(s.pre_peak, v) if band == "high" else min(s.pre_peak, v)
        if held(s.pre_start, t, p.delay_s):
            s.pre_open = True
            self.alert(fx, "open", "temp_pre_alarm", "device", device, t, self._pre_details(device, p, s, v, t))

    def _name(self, device: str) -> str:
        d = self.ctx.registry.devices.get(device)
        return d.name if d else device

    def _details(self, device: str, p: Profile, s: ColdState, v: float, t: float) -> dict[str, Any]:
        direction = s.ex_dir or "high"
        limit = p.max_c if direction == "high" else p.min_c
        minutes = round((s.ex_last_out - s.ex_start) / 60)
        doors = [*s.doors, *([[s.door_since, t]] if s.door_since is not None else [])]
        door_periods = [
            {"from": self.ctx.local(a), "to": self.ctx.local(b), "duration_s": round(b - a)}
            for a, b in doors
            if b >= s.ex_start - self.ctx.settings.rules_door_lookback_s
        ]
        name = self._name(device)
        return {
            "direction": direction,
            "profile": p.name,
            "limit_c": limit,
            "peak_c": round(s.ex_peak, 2),
            "last_c": round(v, 2),
            "started_at": self.ctx.local(s.ex_start),
            "duration_s": round(s.ex_last_out - s.ex_start),
            "door_open_periods": door_periods,
            "door_open_s": sum(d["duration_s"] for d in door_periods),
            "message_zh": f"{name}温度{DIRECTION_ZH[direction]} {limit:g} °C 已 {minutes} 分钟，"
            f"峰值 {s.ex_peak:.1f} °C（{p.name}）",
            "message_en": f"{name} has been {DIRECTION_EN[direction]} of {limit:g} °C for {minutes} min, "
            f"peak {s.ex_peak:.1f} °C ({p.name})",
        }

    def _pre_details(self, device: str, p: Profile, s: ColdState, v: float, t: float) -> dict[str, Any]:
        direction = s.pre_dir or "high"
        limit = p.max_c if direction == "high" else p.min_c
        name = self._name(device)
        near_zh = "接近上限" if direction == "high" else "接近下限"
        return {
            "direction": direction,
            "profile": p.name,
            "limit_c": limit,
            "margin_c": p.pre_alarm_margin_c,
            "peak_c": round(s.pre_peak, 2),
            "last_c": round(v, 2),
            "started_at": self.ctx.local(s.pre_start),
            "message_zh": f"{name}温度{near_zh} {limit:g} °C（{v:.1f} °C，{p.name}），请检查制冷",
            "message_en": f"{name} is within {p.pre_alarm_margin_c:g} °C of its {limit:g} °C limit "
            f"({v:.1f} °C, {p.name}); check the cooling",
        }
