"""Cold rooms of the bonded zone's cold-chain warehouse: a thermal model per room and its sensor's readings.

Pure model: no I/O and no clock of its own; the caller passes the time in (and, if it wants, the outdoor
temperature). Deterministic for a seed: each room draws its door openings and defrost times from its own
``random.Random`` seeded from the store's seed and the room id, and its sensor noise from another, so reading more
often never changes a room's temperatures, and a fault injected into one room leaves the others as they were.

**Thermal model** (one lumped node per room, the air the probe sits in)::

    dT/dt = (T_dock - T)/τ_wall + door·(T_dock - T)/τ_door + comp·(T_supply - T)/τ_cool
            + heater·(T_set + 6 - T)/τ_heat + defrost·q_defrost

solved exactly over each sub-step (at most 10 s; door, defrost and fault times split sub-steps), where

- ``T_dock``, the warehouse dock the rooms open onto: an insulated, lightly heated hall that follows 40 % of the
  outdoor air's departure from 16 °C (outdoor -10 °C gives 5.6 °C, outdoor +30 °C gives 21.6 °C). The outdoor
  temperature is the caller's ``ambient_c`` or :func:`simulators.geography.ambient_c` (Ordos: about -10 °C in
  January, +22 °C in July, a 12 °C daily range);
- τ_wall = 8 h for chilled rooms (100 mm PU panels) and 10 h for frozen ones (150 mm), with the product load's
  thermal mass lumped in;
- τ_door = 30 min with the door open (a strip curtain limits the exchange), 60 min for frozen rooms (strip and
  air curtain); a 3-minute opening of a chilled room on a summer afternoon lifts the air about 2 °C;
- the refrigeration unit, when running, pulls the air toward the coil's supply temperature, 6 °C (chilled) or
  8 °C (frozen) below the setpoint, with τ_cool = 20 min: the capacity a room needs to recover from a door
  opening within about a quarter of an hour on a hot day, and to cycle on for minutes, off for half an hour;
- an on/off thermostat with a deadband around the setpoint starts it above ``setpoint + deadband/2`` and stops it
  below ``setpoint - deadband/2``; rooms kept above 0 °C also have a heater (Ordos winters would otherwise pull a
  fruit or wine room below its minimum) that runs below the deadband by a further 0.3 °C, toward setpoint + 6 °C
  with τ_heat = 30 min;
- defrost every 6-8 h for 20-30 min: the compressor stops; rooms at or above 0 °C defrost off-cycle (the fans run,
  about +0.5 °C/h of fan heat), frozen rooms with electric coil heaters (+5 °C/h of heat reaching the air), so in
  summer a frozen room rises 3-4 °C and a chilled room about 1 °C before the unit pulls it back;
- doors open at random a few times an hour (a Poisson process, the rate depends on the product) for 30-180 s
  (frozen rooms 30-120 s, with rapid doors; the pharma room 30-90 s, as its handling procedures require).

Humidity relaxes toward the product's target with τ = 30 min, 5 % lower while the coil runs (it condenses
water), toward the dock's 45 % (the dry plateau air) with τ = 5 min while the door is open.

**Sensor**: ±0.1 °C uniform noise on the air temperature, ±1 % on humidity, a 3.6 V lithium-thionyl chloride cell
whose voltage sags 4 mV per °C below 0 °C.

Alarm delays in the profiles (15-60 min) are long enough that these routine bumps, even two doors in quick
succession during a summer defrost, stay shorter than the delay.

**Faults**: :meth:`ColdStore.fail_compressor` stops the unit from a given time (until
:meth:`ColdStore.repair_compressor`), and the room warms toward the dock temperature: on a summer day chilled and
frozen rooms pass their maximum within about an hour and stay out; in winter the cold dock can hold a chilled room
in range for hours, or for good. :meth:`ColdStore.hold_door_open` props a door open.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from edge.readings import Temperature
from simulators import geography as geo

DOCK_REFERENCE_C = 16.0
DOCK_FOLLOWS_OUTDOOR = 0.4
DOCK_RH_PCT = 45.0
TAU_WALL_S = {"chilled": 8 * 3600.0, "frozen": 10 * 3600.0}
TAU_DOOR_S = {"chilled": 1800.0, "frozen": 3600.0}
TAU_COOL_S = 1200.0
SUPPLY_BELOW_SETPOINT_C = {"chilled": 6.0, "frozen": 8.0}
TAU_HEAT_S = 1800.0
HEATER_ABOVE_SETPOINT_C = 6.0
HEATER_MARGIN_C = 0.3
DEFROST_EVERY_S = (6 * 3600.0, 8 * 3600.0)
DEFROST_LASTS_S = (20 * 60.0, 30 * 60.0)
DEFROST_HEAT_C_PER_S = {"chilled": 0.5 / 3600.0, "frozen": 5.0 / 3600.0}
TAU_RH_S = 1800.0
TAU_RH_DOOR_S = 300.0
RH_COIL_DRYING_PCT = 5.0
SUBSTEP_S = 10.0
TEMP_NOISE_C = 0.1
RH_NOISE_PCT = 1.0
BATTERY_SAG_V_PER_C = 0.004


def dock_c(outdoor_c: float) -> float:
    """Temperature of the warehouse dock the rooms open onto, for an outdoor temperature."""
    return DOCK_REFERENCE_C + DOCK_FOLLOWS_OUTDOOR * (outdoor_c - DOCK_REFERENCE_C)


@dataclass(frozen=True)
class ProductProfile:
    """What a product needs (the API's cold-chain profile) and how its room is run to give it that."""

    name: str  # the profile's name in the API: PUT /profiles/{name}
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    min_c: float
    max_c: float
    delay_s: int
    hysteresis_c: float
    pre_alarm_margin_c: float
    offline_after_s: int
    setpoint_c: float
    deadband_c: float
    rh_pct: float
    doors_per_hour: float
    door_max_s: float = 180.0  # routine openings last 30 s to this

    @property
    def frozen(self) -> bool:
        return self.setpoint_c < 0

    @property
    def regime(self) -> str:
        return "frozen" if self.frozen else "chilled"

    @property
    def door_s(self) -> tuple[float, float]:
        return 30.0, self.door_max_s

    def profile(self) -> dict[str, Any]:
        """The API's ``PUT /profiles/{name}`` body; the description gives both languages."""
        return {
            "min_c": self.min_c,
            "max_c": self.max_c,
            "delay_s": self.delay_s,
            "hysteresis_c": self.hysteresis_c,
            "pre_alarm_margin_c": self.pre_alarm_margin_c,
            "offline_after_s": self.offline_after_s,
            "description": f"{self.name_zh}：{self.description_zh} / {self.name_en}: {self.description_en}",
        }


# Limits follow common trade practice for each product; alarm delays are long enough to ride out a door opening
# or a defrost (frozen rooms recover more slowly, so they get an hour), shorter for live animals and medicines.
PRODUCTS: dict[str, ProductProfile] = {
    p.name: p
    for p in (
        ProductProfile(
            "chilled-salmon",
            "冰鲜三文鱼",
            "Chilled salmon",
            "进口冰鲜大西洋鲑，0~4 °C 冷藏",
            "imported fresh Atlantic salmon on ice, kept at 0-4 °C",
            0.0,
            4.0,
            1800,
            0.5,
            0.5,
            600,
            setpoint_c=2.0,
            deadband_c=1.0,
            rh_pct=90.0,
            doors_per_hour=3.0,
        ),
        ProductProfile(
            "frozen-goods",
            "冷冻品",
            "Frozen goods",
            "冷冻肉类、海产品，-25~-18 °C",
            "frozen meat and seafood, -25 to -18 °C",
            -25.0,
            -18.0,
            3600,
            1.0,
            1.0,
            900,
            setpoint_c=-21.5,
            deadband_c=2.0,
            rh_pct=85.0,
            doors_per_hour=2.0,
            door_max_s=120.0,
        ),
        ProductProfile(
            "tropical-fruit",
            "热带水果",
            "Tropical fruit",
            "香蕉、芒果、榴莲，10~14 °C，高湿防失水",
            "bananas, mangoes, durian at 10-14 °C, humid so they do not dry out",
            10.0,
            14.0,
            1800,
            0.5,
            0.5,
            600,
            setpoint_c=12.0,
            deadband_c=1.0,
            rh_pct=90.0,
            doors_per_hour=3.0,
        ),
        ProductProfile(
            "live-seafood",
            "活海鲜暂养",
            "Live seafood holding",
            "活龙虾、帝王蟹暂养，2~8 °C，高湿",
            "live lobster and king crab held at 2-8 °C, very humid",
            2.0,
            8.0,
            900,
            0.5,
            0.5,
            300,
            setpoint_c=5.0,
            deadband_c=1.0,
            rh_pct=95.0,
            doors_per_hour=2.0,
        ),
        ProductProfile(
            "chilled-beef",
            "进口冰鲜牛肉",
            "Imported chilled beef",
            "真空包装冰鲜牛肉，-1~4 °C",
            "vacuum-packed chilled beef, -1 to 4 °C",
            -1.0,
            4.0,
            1800,
            0.5,
            0.5,
            600,
            setpoint_c=1.5,
            deadband_c=1.0,
            rh_pct=88.0,
            doors_per_hour=2.0,
        ),
        ProductProfile(
            "dairy",
            "乳制品",
            "Dairy products",
            "进口奶酪、黄油、酸奶，2~6 °C",
            "imported cheese, butter and yoghurt, 2-6 °C",
            2.0,
            6.0,
            1800,
            0.5,
            0.5,
            600,
            setpoint_c=4.0,
            deadband_c=1.0,
            rh_pct=85.0,
            doors_per_hour=3.0,
        ),
        ProductProfile(
            "pharma-2-8",
            "医药冷藏",
            "Pharmaceuticals, 2-8 °C",
            "疫苗与生物制品，2~8 °C（药品经营质量管理规范）",
            "vaccines and biologics, 2-8 °C (good distribution practice)",
            2.0,
            8.0,
            900,
            0.5,
            1.0,
            300,
            setpoint_c=5.0,
            deadband_c=1.0,
            rh_pct=50.0,
            doors_per_hour=1.0,
            door_max_s=90.0,
        ),
        ProductProfile(
            "ice-cream",
            "冰淇淋",
            "Ice cream",
            "进口冰淇淋，-25~-20 °C，防止融化再冻结",
            "imported ice cream, -25 to -20 °C so it never thaws and refreezes",
            -25.0,
            -20.0,
            2700,
            0.5,
            0.5,
            900,
            setpoint_c=-23.0,
            deadband_c=1.5,
            rh_pct=80.0,
            doors_per_hour=1.5,
            door_max_s=120.0,
        ),
        ProductProfile(
            "wine",
            "进口葡萄酒",
            "Imported wine",
            "恒温葡萄酒库，12~18 °C",
            "wine store at a steady 12-18 °C",
            12.0,
            18.0,
            3600,
            0.5,
            1.0,
            900,
            setpoint_c=15.0,
            deadband_c=1.0,
            rh_pct=70.0,
            doors_per_hour=1.0,
        ),
        ProductProfile(
            "cut-flowers",
            "鲜切花",
            "Fresh cut flowers",
            "进口鲜切花（玫瑰、郁金香），1~5 °C，高湿",
            "imported cut roses and tulips, 1-5 °C, humid",
            1.0,
            5.0,
            1800,
            0.5,
            0.5,
            600,
            setpoint_c=3.0,
            deadband_c=1.0,
            rh_pct=92.0,
            doors_per_hour=2.0,
        ),
    )
}

# Room id, product, name (zh, en).
ROOMS: tuple[tuple[str, str, str, str], ...] = (
    ("cr-01", "chilled-salmon", "1号冷藏间", "Chiller 1"),
    ("cr-02", "chilled-salmon", "2号冷藏间", "Chiller 2"),
    ("cr-03", "frozen-goods", "3号冷冻间", "Freezer 3"),
    ("cr-04", "frozen-goods", "4号冷冻间", "Freezer 4"),
    ("cr-05", "tropical-fruit", "5号水果库", "Fruit room 5"),
    ("cr-06", "live-seafood", "6号活鲜暂养间", "Live seafood room 6"),
    ("cr-07", "chilled-beef", "7号冷藏间", "Chiller 7"),
    ("cr-08", "dairy", "8号冷藏间", "Chiller 8"),
    ("cr-09", "pharma-2-8", "9号医药冷库", "Pharma cold room 9"),
    ("cr-10", "ice-cream", "10号冷冻间", "Freezer 10"),
    ("cr-11", "wine", "11号恒温酒库", "Wine room 11"),
    ("cr-12", "cut-flowers", "12号鲜花冷库", "Flower room 12"),
)


@dataclass
class ColdRoom:
    """One room's state. Scheduled moments are seconds on the store's model time line (0 at its first step)."""

    room_id: str
    name_zh: str
    name_en: str
    product: ProductProfile
    temp_c: float
    rh_pct: float
    battery_nominal_v: float
    compressor_on: bool = False
    heater_on: bool = False
    door_open: bool = False  # as the sensor's door contact reports it
    defrosting: bool = False
    routine_door_open: bool = False
    next_door_s: float = math.inf
    door_close_s: float = math.inf
    next_defrost_s: float = math.inf
    defrost_end_s: float = math.inf
    failed_from: datetime | None = None
    failed_until: datetime | None = None
    held_open: list[tuple[datetime, datetime]] = field(default_factory=list)

    @property
    def device_id(self) -> str:
        return f"temp-{self.room_id}"

    @property
    def profile_name(self) -> str:
        return self.product.name

    def profile(self) -> dict[str, Any]:
        """The room's product profile as the API's ``PUT /profiles/{name}`` body."""
        return self.product.profile()

    def device_record(self) -> dict[str, Any]:
        """The room's sensor as the API's ``PUT /devices/{device_id}`` body."""
        return {"kind": "temp", "name": f"{self.name_zh} {self.name_en}", "profile": self.product.name}


class ColdStore:
    """All the cold rooms; advance with :meth:`step`, read with :meth:`readings`."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rooms: list[ColdRoom] = []
        self._rng: dict[str, random.Random] = {}
        self._noise: dict[str, random.Random] = {}
        self._epoch: datetime | None = None
        for room_id, product_name, zh, en in ROOMS:
            rng = random.Random(f"{seed}/{room_id}")
            self._rng[room_id] = rng
            self._noise[room_id] = random.Random(f"{seed}/{room_id}/sensor")
            product = PRODUCTS[product_name]
            half = product.deadband_c / 2
            self.rooms.append(
                ColdRoom(
                    room_id,
                    zh,
                    en,
                    product,
                    temp_c=product.setpoint_c + rng.uniform(-half, half),
                    rh_pct=product.rh_pct + rng.uniform(-2.0, 2.0),
                    battery_nominal_v=rng.uniform(3.58, 3.66),
                    compressor_on=rng.random() < 0.5,
                )
            )

    def room(self, room_id: str) -> ColdRoom:
        for r in self.rooms:
            if r.room_id == room_id:
                return r
        raise KeyError(f"no cold room {room_id!r}")

    # -- faults --

    def fail_compressor(self, room_id: str, at: datetime) -> None:
        """The room's refrigeration unit stops at ``at`` and stays off until repaired."""
        room = self.room(room_id)
        room.failed_from, room.failed_until = at, None

    def repair_compressor(self, room_id: str, at: datetime) -> None:
        room = self.room(room_id)
        if room.failed_from is None:
            raise ValueError(f"{room_id} has no failed compressor")
        room.failed_until = at

    def hold_door_open(self, room_id: str, at: datetime, seconds: float) -> None:
        """Someone props the door open at ``at`` for ``seconds``."""
        self.room(room_id).held_open.append((at, at + timedelta(seconds=seconds)))

    # -- the model --

    def step(self, now: datetime, dt_s: float, ambient_c: float | None = None) -> None:
        """Advance every room over the ``dt_s`` seconds that end at ``now`` (aware).

        ``ambient_c`` is the outdoor temperature; by default the site's climate at the step's middle.
        """
        if dt_s <= 0:
            raise ValueError("dt_s must be positive")
        start = now - timedelta(seconds=dt_s)
        outdoor = geo.ambient_c(start + timedelta(seconds=dt_s / 2)) if ambient_c is None else ambient_c
        dock = dock_c(outdoor)
        if self._epoch is None:
            self._epoch = start
            for room in self.rooms:
                rng = self._rng[room.room_id]
                room.next_door_s = rng.expovariate(room.product.doors_per_hour / 3600.0)
                room.next_defrost_s = rng.uniform(0.0, DEFROST_EVERY_S[1])
        t0 = (start - self._epoch).total_seconds()
        for room in self.rooms:
            self._advance(room, t0, t0 + dt_s, dock)

    def readings(self, now: datetime) -> list[tuple[str, Temperature]]:
        """One reading per room's sensor, stamped ``now``."""
        out: list[tuple[str, Temperature]] = []
        for room in self.rooms:
            noise = self._noise[room.room_id]
            temp = room.temp_c + noise.uniform(-TEMP_NOISE_C, TEMP_NOISE_C)
            rh = min(100.0, max(0.0, room.rh_pct + noise.uniform(-RH_NOISE_PCT, RH_NOISE_PCT)))
            volts = room.battery_nominal_v - BATTERY_SAG_V_PER_C * max(0.0, -room.temp_c) + noise.uniform(-0.005, 0.005)
            out.append(
                (
                    room.device_id,
                    Temperature(
                        ts=now,
                        temp_c=round(temp, 2),
                        rh_pct=round(rh, 1),
                        door_open=room.door_open,
                        battery_v=round(volts, 2),
                    ),
                )
            )
        return out

    def _seconds(self, at: datetime | None) -> float:
        assert self._epoch is not None
        return math.inf if at is None else (at - self._epoch).total_seconds()

    def _advance(self, room: ColdRoom, t: float, end: float, dock: float) -> None:
        failed = (math.inf, math.inf)
        if room.failed_from is not None:
            failed = (self._seconds(room.failed_from), self._seconds(room.failed_until))
        held = [(self._seconds(a), self._seconds(b)) for a, b in room.held_open]
        moments = [m for m in (*failed, *(x for pair in held for x in pair)) if t < m < end]
        while t < end - 1e-9:
            self._events(room, t, held)
            self._control(room, failed[0] <= t < failed[1])
            # After _events every scheduled moment lies beyond t.
            nxt = min(
                end,
                t + SUBSTEP_S,
                room.door_close_s,
                room.next_door_s,
                room.defrost_end_s,
                room.next_defrost_s,
                *(m for m in moments if m > t),
            )
            self._integrate(room, nxt - t, dock)
            t = nxt

    def _events(self, room: ColdRoom, t: float, held: list[tuple[float, float]]) -> None:
        """Doors and defrost that start or end at ``t``."""
        rng = self._rng[room.room_id]
        product = room.product
        if t >= room.door_close_s:
            room.routine_door_open, room.door_close_s = False, math.inf
        if t >= room.next_door_s:
            room.routine_door_open = True
            room.door_close_s = t + rng.uniform(*product.door_s)
            room.next_door_s = room.door_close_s + rng.expovariate(product.doors_per_hour / 3600.0)
        if t >= room.defrost_end_s:
            room.defrosting, room.defrost_end_s = False, math.inf
        if t >= room.next_defrost_s:
            room.defrosting = True
            room.defrost_end_s = t + rng.uniform(*DEFROST_LASTS_S)
            room.next_defrost_s = t + rng.uniform(*DEFROST_EVERY_S)
        room.door_open = room.routine_door_open or (bool(held) and any(a <= t < b for a, b in held))

    def _control(self, room: ColdRoom, broken: bool) -> None:
        """The thermostat: compressor above the deadband, heater (rooms above 0 °C) below it."""
        p = room.product
        half = p.deadband_c / 2
        if room.defrosting or broken:
            room.compressor_on = False
        elif room.temp_c > p.setpoint_c + half:
            room.compressor_on = True
        elif room.temp_c < p.setpoint_c - half:
            room.compressor_on = False
        if p.frozen:
            room.heater_on = False
        elif room.temp_c < p.setpoint_c - half - HEATER_MARGIN_C:
            room.heater_on = True
        elif room.temp_c > p.setpoint_c - half / 2:
            room.heater_on = False

    def _integrate(self, room: ColdRoom, seconds: float, dock: float) -> None:
        if seconds <= 0:
            return
        p = room.product
        regime = p.regime
        rate = 1.0 / TAU_WALL_S[regime]
        weighted = rate * dock
        if room.door_open:
            k = 1.0 / TAU_DOOR_S[regime]
            rate, weighted = rate + k, weighted + k * dock
        if room.compressor_on:
            k = 1.0 / TAU_COOL_S
            rate, weighted = rate + k, weighted + k * (p.setpoint_c - SUPPLY_BELOW_SETPOINT_C[regime])
        if room.heater_on:
            k = 1.0 / TAU_HEAT_S
            rate, weighted = rate + k, weighted + k * (p.setpoint_c + HEATER_ABOVE_SETPOINT_C)
        target = weighted / rate
        room.temp_c = target + (room.temp_c - target) * math.exp(-rate * seconds)
        if room.defrosting:
            room.temp_c += DEFROST_HEAT_C_PER_S[regime] * seconds
        rh_rate = 1.0 / TAU_RH_S
        rh_weighted = rh_rate * (p.rh_pct - (RH_COIL_DRYING_PCT if room.compressor_on else 0.0))
        if room.door_open:
            k = 1.0 / TAU_RH_DOOR_S
            rh_rate, rh_weighted = rh_rate + k, rh_weighted + k * DOCK_RH_PCT
        rh_target = rh_weighted / rh_rate
        room.rh_pct = min(100.0, max(0.0, rh_target + (room.rh_pct - rh_target) * math.exp(-rh_rate * seconds)))
