"""A fleet of zero-carbon heavy trucks serving the Ordos bonded zone: positions, energy, trips and gate passages.

Pure model: no I/O and no clock of its own; the caller passes the time in. Deterministic for a seed: every truck
draws from its own ``random.Random`` seeded from the fleet's seed and its vehicle id, and its GNSS noise from
another, so reading positions more often, or a GPS jump injected into one truck, changes nothing else.

**Trucks.** 6x4 tractor-semitrailers at the Chinese 49 t gross limit (GB 1589). About two in three are battery
electric (BEV, LFP packs of 282, 350 or 423 kWh, the common heavy-truck pack sizes); the rest are hydrogen fuel-cell
trucks (FCEV: 30-40 kg of H2 at 35 MPa, a 110-130 kW fuel-cell system and a small 70-110 kWh buffer battery). Plates
follow the new-energy format for large vehicles, ``蒙K·12345D`` (D: battery electric) or ``蒙K·12345F`` (F: other
new-energy, which includes fuel cell); 蒙K is Ordos. Each truck carries a GRAI-96 vehicle tag and, while loaded,
one SGTIN-96 tag per pallet; some pallets are bonded goods, some are not.

**Trips.** depot or loading bay → loading (15-35 min) → the destination's gate (``at_gate``: 1.5-5 min outbound for
the release-note check, under 2.5 min inbound) → corridor → destination (unloading 15-30 min; a third of the time a
backhaul load into the zone) → back through the same gate → a loading bay (next load, or the backhaul's unloading)
or the depot (to charge, refuel or take a break). Speeds: 25 km/h on the zone's avenue, the road's limit on each
corridor (50-80 km/h), each driver at 90-100 % of it; accelerating at 0.4 m/s², braking at 0.8 m/s², stopping at
every gate and bay.

**Energy per km** (:func:`kwh_per_km`), road load over drivetrain efficiency plus auxiliaries::

    F = m g (c_rr + grade) + ½ ρ CdA v²          [N]   m = gross mass, v = speed
    e = F / 3.6e6 / η_drive  (F ≥ 0)  or  F η_regen / 3.6e6  (F < 0, regenerative braking)
    kWh/km = (e + P_aux / v_kmh) × (1 + k_cold × max(0, 10 - T)) + k_hot × max(0, T - 24) / v_kmh

with c_rr = 0.0065 (truck tyres on asphalt), ρ = 1.08 kg/m³ (air at 1,330 m), CdA = 5.8 m² (tractor-semitrailer:
Cd about 0.6 on 9.7 m²), η_drive = 0.85 (battery to wheel, including stop-and-go losses), η_regen = 0.6,
P_aux = 2.5 kW (air compressor, steering pump, cab), k_cold = 0.008 per °C for BEV (battery and cab heating; about
+20 % at -15 °C) and 0.004 for FCEV (the stack's waste heat warms the cab), k_hot = 0.15 kW per °C of air
conditioning. Flat, 20 °C, 49 t: 1.21 kWh/km at 40 km/h, 1.35 at 60, 1.56 at 80, inside the 1.1-1.6 kWh/km that
loaded battery tractors use (:data:`LOADED_KWH_PER_KM_BAND`); empty (18.5 t) about 0.7. Over a shift, with its mix
of empty and loaded legs, slow driving inside the zone and the corridors' gentle grades, a truck averages
0.8-1.2 kWh/km, within :data:`SHIFT_KWH_PER_KM_BAND`.

**Hydrogen**: kg = fuel-cell electrical output / (33.33 kWh/kg lower heating value × 0.52 system efficiency), so a
loaded 49 t truck uses 7-9 kg per 100 km at 40-80 km/h, and a shift averages 5-7 kg per 100 km
(:data:`SHIFT_H2_KG_PER_100KM_BAND`). The fuel cell follows the traction demand up to its rating and tops the
buffer battery up toward 65 %; demand above the rating is drawn from the battery.

**Charging**: when the state of charge is below 40 % (or the next round trip would leave less than 25 %) a truck
goes to the depot and charges to 90-95 % at up to 360 kW (1 C at most, tapering above 80 %). About one driver in six
habitually leaves it later (25 % / 12 %), so ``low_soc`` (below 20 %) happens now and then, but rarely. FCEVs
refuel below 30 % of the tank or when the next trip would leave less than 15 %. Chargers and dispensers are shared:
a truck waits (``idle``) when all are busy.

Reported: ``energy_kwh`` is the BEV's cumulative energy drawn from the pack for traction and auxiliaries (never
decreasing; charging does not count), ``h2_kg`` the FCEV's cumulative hydrogen consumed; an FCEV's ``soc_pct`` is
its buffer battery's. GNSS noise is 1.5 m (1 σ) per axis.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from edge.readings import Position
from simulators import geography as geo
from simulators.geography import LonLat

Powertrain = Literal["bev", "fcev"]
TruckState = Literal["moving", "at_gate", "loading", "charging", "refuelling", "idle"]
CustomsStatus = Literal["bonded", "non_bonded"]
Direction = Literal["in", "out"]

# --- physics ------------------------------------------------------------------------------------------------------
G = 9.81
MAX_GROSS_T = 49.0  # GB 1589 limit for a six-axle tractor-semitrailer
C_RR = 0.0065
RHO_AIR = 1.08
CDA_M2 = 5.8
ETA_DRIVE = 0.85
ETA_REGEN = 0.60
AUX_KW = 2.5
K_COLD = {"bev": 0.008, "fcev": 0.004}
K_HOT_KW = 0.15
H2_LHV_KWH_PER_KG = 33.33
FC_SYSTEM_EFFICIENCY = 0.52
FC_BATTERY_TARGET_PCT = 65.0
LOADED_KWH_PER_KM_BAND = (1.1, 1.6)  # 49 t, flat, 20 °C, 40-80 km/h
SHIFT_KWH_PER_KM_BAND = (0.7, 1.4)  # a BEV's average over a shift of mixed trips, any season
SHIFT_H2_KG_PER_100KM_BAND = (4.0, 8.5)  # an FCEV's average over such a shift

A_ACC = 0.4  # m/s², a loaded heavy truck pulling away
A_DEC = 0.8  # m/s², comfortable braking
V_CREEP = 1.5  # m/s, the least speed while a stop is still ahead
INSIDE_KMH = 25.0
GATE_EXIT_KMH = 40.0
DRIVE_TICK_S = 2.0
CHARGE_TICK_S = 10.0
GNSS_SIGMA_M = 1.5

# --- operations ---------------------------------------------------------------------------------------------------
DESTINATION_WEIGHTS = {
    "airport-cargo": 0.25,
    "airport-logistics-park": 0.20,
    "kangbashi": 0.20,
    "dongsheng-dc": 0.20,
    "altan-xire": 0.15,
}
BACKHAUL_PROBABILITY = 0.35
BREAK_PROBABILITY = 0.12
BEV_CHARGE_BELOW_PCT = (40.0, 25.0)  # (usual driver, late charger)
BEV_RESERVE_PCT = (25.0, 12.0)
FCEV_REFUEL_BELOW = 0.30  # share of the tank
FCEV_RESERVE = 0.15
CHARGE_EFFICIENCY = 0.95  # grid to pack; the loss is not counted in energy_kwh
MAX_C_RATE = 1.0
REFUEL_OVERHEAD_S = 300.0  # connect, leak check, disconnect

# --- tags ---------------------------------------------------------------------------------------------------------
FLEET_COMPANY_PREFIX = "6970716"  # synthetic GS1 company prefix in China's 690-699 range
VEHICLE_ASSET_TYPE = "10001"


@dataclass(frozen=True)
class Product:
    """A kind of pallet: what it is, whose GS1 company prefix its tags carry, and which item reference."""

    description: str
    company_prefix: str
    item_reference: str


# Synthetic shippers: the prefixes sit in plausible GS1 country ranges (Norway 70, Australia 93, France 30, New
# Zealand 94, Germany 40, Thailand 885, China 69) but name no real company.
BONDED_GOODS: dict[str, tuple[Product, ...]] = {
    "bay-a": (
        Product("进口红酒 imported wine", "3012345", "100011"),
        Product("进口婴幼儿奶粉 imported infant formula", "9412345", "100012"),
        Product("进口机电设备零件 imported machinery parts", "4012345", "100013"),
    ),
    "bay-b": (
        Product("冰鲜三文鱼 chilled salmon", "7071234", "100021"),
        Product("进口冷冻牛肉 imported frozen beef", "9312345", "100022"),
        Product("热带水果 tropical fruit", "8851234", "100023"),
        Product("进口乳制品 imported dairy products", "9412345", "100024"),
    ),
    "bay-c": (
        Product("跨境电商包裹 cross-border e-commerce parcels", "6970716", "100031"),
        Product("进口化妆品 imported cosmetics", "3012345", "100032"),
        Product("进口保健品 imported health supplements", "9312345", "100033"),
    ),
}
DOMESTIC_GOODS: tuple[Product, ...] = (
    Product("国内包装材料 domestic packaging materials", "6921234", "200001"),
    Product("鄂尔多斯羊绒制品 Ordos cashmere goods", "6931234", "200002"),
    Product("国产设备配件 domestic spare parts", "6941234", "200003"),
)
BONDED_SHARE = {"bay-a": 0.8, "bay-b": 0.7, "bay-c": 0.6}
BACKHAUL_BONDED_SHARE = {"airport-cargo": 0.85}  # imported air freight under bonded transfer; elsewhere 0.2

# SGTIN-96 / GRAI-96 partition table: company prefix digits -> (partition, prefix bits, reference bits).
_PARTITIONS = {12: (0, 40, 4), 11: (1, 37, 7), 10: (2, 34, 10), 9: (3, 30, 14), 8: (4, 27, 17), 7: (5, 24, 20)}
_PARTITIONS[6] = (6, 20, 24)


def _epc96(header: int, filter_value: int, company_prefix: str, reference: str, ref_digits: int, serial: int) -> str:
    if len(company_prefix) not in _PARTITIONS or not company_prefix.isdigit():
        raise ValueError(f"a GS1 company prefix has 6-12 digits, got {company_prefix!r}")
    if len(company_prefix) + len(reference) != ref_digits or not reference.isdigit():
        raise ValueError(f"company prefix and reference must have {ref_digits} digits together")
    if not 0 <= serial < 1 << 38 or not 0 <= filter_value < 8:
        raise ValueError("serial must fit 38 bits and filter 3 bits")
    partition, prefix_bits, ref_bits = _PARTITIONS[len(company_prefix)]
    value = header
    fields = ((3, filter_value), (3, partition), (prefix_bits, int(company_prefix)), (ref_bits, int(reference)))
    for bits, part in fields:
        value = (value << bits) | part
    value = (value << 38) | serial
    return f"{value:024X}"


def sgtin96(company_prefix: str, item_reference: str, serial: int, filter_value: int = 1) -> str:
    """SGTIN-96 EPC, 24 hex digits (GS1 EPC Tag Data Standard); ``item_reference`` includes the indicator digit."""
    return _epc96(0x30, filter_value, company_prefix, item_reference, 13, serial)


def grai96(company_prefix: str, asset_type: str, serial: int, filter_value: int = 0) -> str:
    """GRAI-96 EPC (a returnable asset: here the truck), 24 hex digits."""
    return _epc96(0x33, filter_value, company_prefix, asset_type, 12, serial)


def road_load_kwh_per_km(gross_t: float, speed_kmh: float, grade: float) -> float:
    """Traction energy at the battery per km, before auxiliaries and temperature effects (see the module doc)."""
    v = speed_kmh / 3.6
    force = gross_t * 1000.0 * G * (C_RR + grade) + 0.5 * RHO_AIR * CDA_M2 * v * v
    wheel_kwh = force * 1000.0 / 3.6e6
    return wheel_kwh / ETA_DRIVE if wheel_kwh >= 0 else wheel_kwh * ETA_REGEN


def _temperature_factor(powertrain: Powertrain, ambient_c: float) -> float:
    return 1.0 + K_COLD[powertrain] * max(0.0, 10.0 - ambient_c)


def _aux_kw(powertrain: Powertrain, ambient_c: float) -> float:
    return AUX_KW * _temperature_factor(powertrain, ambient_c) + K_HOT_KW * max(0.0, ambient_c - 24.0)


def kwh_per_km(
    gross_t: float, speed_kmh: float, grade: float = 0.0, ambient_c: float = 20.0, powertrain: Powertrain = "bev"
) -> float:
    """Electrical energy per km at steady speed, auxiliaries included: the formula of the module doc."""
    speed = max(speed_kmh, 5.0)
    traction = road_load_kwh_per_km(gross_t, speed, grade) * _temperature_factor(powertrain, ambient_c)
    return traction + _aux_kw(powertrain, ambient_c) / speed


def h2_kg_per_km(gross_t: float, speed_kmh: float, grade: float = 0.0, ambient_c: float = 20.0) -> float:
    """Hydrogen per km when the fuel cell supplies all of :func:`kwh_per_km`."""
    return kwh_per_km(gross_t, speed_kmh, grade, ambient_c, "fcev") / (H2_LHV_KWH_PER_KG * FC_SYSTEM_EFFICIENCY)


# --- state --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CargoTag:
    epc: str
    customs_status: CustomsStatus
    description: str


@dataclass(frozen=True)
class GatePassage:
    """A truck at a gate's reader portal: its vehicle tag and the cargo tags it carries at that moment."""

    ts: datetime
    vehicle_id: str
    gate_id: str
    direction: Direction
    vehicle_epc: str
    cargo_epcs: tuple[str, ...]


@dataclass
class Trip:
    trip_id: str
    bay_id: str
    gate_id: str
    destination_id: str
    started_at: datetime
    phase: str = "planned"
    backhaul: bool = False


@dataclass
class Truck:
    vehicle_id: str
    plate: str
    powertrain: Powertrain
    vehicle_epc: str
    tare_t: float
    battery_kwh: float  # BEV: the traction pack; FCEV: the buffer battery
    h2_capacity_kg: float  # 0 for BEV
    fc_kw: float  # fuel-cell system rating; 0 for BEV
    speed_factor: float
    late_charger: bool
    position: LonLat
    place: str | None  # the inside place where it stands, None while on the road
    soc_pct: float
    energy_kwh: float  # cumulative traction energy from the battery
    h2_kg: float  # cumulative hydrogen consumed
    h2_tank_kg: float  # hydrogen on board
    odometer_km: float
    speed_kmh: float = 0.0
    heading_deg: float = 0.0
    load_t: float = 0.0
    state: TruckState = "idle"
    cargo: list[CargoTag] = field(default_factory=list)
    trip: Trip | None = None

    @property
    def device_id(self) -> str:
        return f"gps-{self.vehicle_id}"

    @property
    def gross_t(self) -> float:
        return self.tare_t + self.load_t

    @property
    def max_load_t(self) -> float:
        return MAX_GROSS_T - self.tare_t

    @property
    def name(self) -> str:
        kind = "纯电动重卡 battery-electric truck" if self.powertrain == "bev" else "氢燃料电池重卡 fuel-cell truck"
        return f"{kind} {self.vehicle_id}"

    def vehicle_record(self) -> dict[str, Any]:
        """The truck as the API's ``PUT /vehicles/{vehicle_id}`` body."""
        return {
            "name": self.name,
            "plate": self.plate,
            "device_id": self.device_id,
            "bonded_transport": True,
            "tag_epc": self.vehicle_epc,
            "gps_lost_after_s": 120,
            "low_soc_pct": 20.0,
        }


Hook = Callable[[datetime], None]


@dataclass
class _Action:
    state: TruckState
    phase: str
    on_start: Hook | None = None
    on_end: Hook | None = None
    started: bool = False
    done: bool = False


@dataclass
class _Drive(_Action):
    points: list[LonLat] = field(default_factory=list)
    limits_kmh: list[float] = field(default_factory=list)
    grades: list[float] = field(default_factory=list)
    end_place: str | None = None
    seg: int = 0
    along_m: float = 0.0
    seg_m: list[float] = field(default_factory=list)
    total_m: float = 0.0
    travelled_m: float = 0.0

    def __post_init__(self) -> None:
        self.seg_m = [geo.distance_m(a, b) for a, b in itertools.pairwise(self.points)]
        self.total_m = sum(self.seg_m)

    def remaining_m(self) -> float:
        return self.total_m - self.travelled_m

    def where(self) -> LonLat:
        a, b = self.points[self.seg], self.points[self.seg + 1]
        f = self.along_m / self.seg_m[self.seg] if self.seg_m[self.seg] > 0 else 0.0
        return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f


@dataclass
class _Dwell(_Action):
    seconds: float = 0.0
    elapsed: float = 0.0


@dataclass
class _Charge(_Action):
    target: float = 0.0  # soc % for a BEV, kg on board for an FCEV
    plugged: bool = False
    overhead_s: float = 0.0


class Fleet:
    """The trucks, their trips and their gate passages; advance with :meth:`step`, read with :meth:`positions`."""

    def __init__(self, seed: int, n: int = 24) -> None:
        if n < 1:
            raise ValueError("a fleet needs at least one truck")
        self.seed = seed
        self.trucks: list[Truck] = []
        self._rng: dict[str, random.Random] = {}
        self._noise: dict[str, random.Random] = {}
        self._plan: dict[str, deque[_Action]] = {}
        self._passages: list[GatePassage] = []
        self._tags: dict[str, dict[str, Any]] = {}
        self._jumps: dict[str, float] = {}
        self._serial = 0
        self._trips = 0
        self._chargers_busy = 0
        self._dispensers_busy = 0
        self._t: datetime | None = None
        self._ambient = 10.0
        for i in range(1, n + 1):
            self._add_truck(i)

    # -- construction --

    def _add_truck(self, i: int) -> None:
        vehicle_id = f"trk-{i:02d}"
        rng = random.Random(f"{self.seed}/{vehicle_id}")
        self._rng[vehicle_id] = rng
        self._noise[vehicle_id] = random.Random(f"{self.seed}/{vehicle_id}/gnss")
        fcev = i % 3 == 0
        powertrain: Powertrain = "fcev" if fcev else "bev"
        depot = geo.PLACES[geo.DEPOT.place_id].point
        odometer = rng.uniform(20_000, 120_000)
        plate = f"蒙K·{rng.randrange(10_000, 100_000)}{'F' if fcev else 'D'}"
        if fcev:
            battery = rng.choice((70.0, 90.0, 110.0))
            tank = rng.choice((30.0, 35.0, 40.0))
            truck = Truck(
                vehicle_id,
                plate,
                powertrain,
                grai96(FLEET_COMPANY_PREFIX, VEHICLE_ASSET_TYPE, i),
                tare_t=17.5,
                battery_kwh=battery,
                h2_capacity_kg=tank,
                fc_kw=rng.choice((110.0, 120.0, 130.0)),
                speed_factor=rng.uniform(0.9, 1.0),
                late_charger=False,
                position=depot,
                place=geo.DEPOT.place_id,
                soc_pct=rng.uniform(55.0, 75.0),
                energy_kwh=0.0,
                h2_kg=odometer * rng.uniform(0.055, 0.07),
                h2_tank_kg=tank * rng.uniform(0.4, 0.95),
                odometer_km=odometer,
            )
        else:
            truck = Truck(
                vehicle_id,
                plate,
                powertrain,
                grai96(FLEET_COMPANY_PREFIX, VEHICLE_ASSET_TYPE, i),
                tare_t=18.5,
                battery_kwh=rng.choice((282.0, 350.0, 423.0)),
                h2_capacity_kg=0.0,
                fc_kw=0.0,
                speed_factor=rng.uniform(0.9, 1.0),
                late_charger=rng.random() < 1 / 6,
                position=depot,
                place=geo.DEPOT.place_id,
                soc_pct=rng.uniform(45.0, 95.0),
                energy_kwh=odometer * rng.uniform(0.9, 1.1),
                h2_kg=0.0,
                h2_tank_kg=0.0,
                odometer_km=odometer,
            )
        self.trucks.append(truck)
        self._plan[vehicle_id] = deque()
        self._tags[truck.vehicle_epc] = {
            "kind": "vehicle",
            "customs_status": "non_bonded",
            "vehicle_id": vehicle_id,
            "description": truck.name,
        }

    def truck(self, vehicle_id: str) -> Truck:
        for t in self.trucks:
            if t.vehicle_id == vehicle_id:
                return t
        raise KeyError(f"no truck {vehicle_id!r}")

    # -- public API --

    def step(self, now: datetime, dt_s: float) -> None:
        """Advance every truck over the ``dt_s`` seconds that end at ``now`` (aware)."""
        if dt_s <= 0:
            raise ValueError("dt_s must be positive")
        start = now - timedelta(seconds=dt_s)
        if self._t is None:
            for truck in self.trucks:
                stagger = self._rng[truck.vehicle_id].uniform(0, 2400)
                self._plan[truck.vehicle_id].append(_Dwell("idle", "shift start", seconds=stagger))
        self._ambient = geo.ambient_c(start + timedelta(seconds=dt_s / 2))
        for truck in self.trucks:
            self._advance(truck, start, dt_s)
        self._t = now

    def positions(self, now: datetime) -> list[tuple[str, Position]]:
        """One GNSS fix per truck, stamped ``now``, with its energy figures."""
        out: list[tuple[str, Position]] = []
        for truck in self.trucks:
            noise = self._noise[truck.vehicle_id]
            x, y = geo.local_xy(truck.position)
            x += noise.gauss(0.0, GNSS_SIGMA_M)
            y += noise.gauss(0.0, GNSS_SIGMA_M)
            jump = self._jumps.pop(truck.vehicle_id, None)
            if jump is not None:
                bearing = noise.uniform(0.0, 2 * math.pi)
                x += jump * 1000.0 * math.sin(bearing)
                y += jump * 1000.0 * math.cos(bearing)
            lon, lat = geo.from_local_xy(x, y)
            moving = truck.speed_kmh > 0.5
            bev = truck.powertrain == "bev"
            out.append(
                (
                    truck.vehicle_id,
                    Position(
                        ts=now,
                        lat=round(lat, 7),
                        lon=round(lon, 7),
                        fix="3d",
                        speed_kmh=round(max(0.0, truck.speed_kmh + noise.gauss(0.0, 0.3)) if moving else 0.0, 1),
                        heading_deg=round(truck.heading_deg % 360.0, 1),
                        hdop=round(noise.uniform(0.6, 1.2), 1),
                        sats=noise.randint(14, 24),
                        soc_pct=round(min(100.0, max(0.0, truck.soc_pct)), 1),
                        energy_kwh=round(truck.energy_kwh, 2) if bev else None,
                        h2_kg=None if bev else round(truck.h2_kg, 3),
                        odometer_km=round(truck.odometer_km, 2),
                    ),
                )
            )
        return out

    def gate_passages(self, now: datetime) -> list[GatePassage]:
        """The passages up to ``now`` not returned before, oldest first."""
        due = sorted((p for p in self._passages if p.ts <= now), key=lambda p: (p.ts, p.vehicle_id))
        self._passages = [p for p in self._passages if p.ts > now]
        return due

    def inject_gps_jump(self, vehicle_id: str, km: float) -> None:
        """Displace the truck's next reported fix (only that one) by ``km`` in a random direction."""
        self.truck(vehicle_id)
        self._jumps[vehicle_id] = km

    def tags(self) -> dict[str, dict[str, Any]]:
        """Every tag issued so far, keyed by EPC, as the API's ``PUT /tags/{epc}`` body."""
        return dict(self._tags)

    # -- the model --

    def _advance(self, truck: Truck, start: datetime, dt_s: float) -> None:
        plan = self._plan[truck.vehicle_id]
        elapsed = 0.0
        while elapsed < dt_s - 1e-9:
            if not plan:
                self._decide(truck, start + timedelta(seconds=elapsed))
            action = plan[0]
            t = start + timedelta(seconds=elapsed)
            if not action.started:
                action.started = True
                truck.state = action.state
                if truck.trip is not None:
                    truck.trip.phase = action.phase
                if action.on_start is not None:
                    action.on_start(t)
            used = self._run(truck, action, dt_s - elapsed)
            elapsed += used
            if action.done:
                plan.popleft()
                if action.on_end is not None:
                    action.on_end(start + timedelta(seconds=elapsed))

    def _run(self, truck: Truck, action: _Action, budget: float) -> float:
        if isinstance(action, _Drive):
            return self._drive(truck, action, min(budget, DRIVE_TICK_S))
        if isinstance(action, _Charge):
            return self._charge(truck, action, min(budget, CHARGE_TICK_S))
        assert isinstance(action, _Dwell)
        truck.speed_kmh = 0.0
        used = min(budget, action.seconds - action.elapsed)
        action.elapsed += used
        action.done = action.elapsed >= action.seconds - 1e-9
        return max(used, 0.0)

    def _drive(self, truck: Truck, d: _Drive, h: float) -> float:
        if not d.seg_m or d.remaining_m() <= 0.01:
            d.done = True
            truck.speed_kmh = 0.0
            truck.place = d.end_place
            return 0.0
        truck.place = None
        f = truck.speed_factor
        v = truck.speed_kmh / 3.6
        allowed = d.limits_kmh[d.seg] / 3.6 * f
        ahead = d.seg_m[d.seg] - d.along_m
        for j in range(d.seg + 1, len(d.seg_m)):
            vj = d.limits_kmh[j] / 3.6 * f
            allowed = min(allowed, math.sqrt(vj * vj + 2 * A_DEC * ahead))
            ahead += d.seg_m[j]
        remaining = d.remaining_m()
        allowed = max(V_CREEP, min(allowed, math.sqrt(2 * A_DEC * remaining)))
        v_new = min(allowed, v + A_ACC * h) if v < allowed else allowed
        mean_v = max(0.5 * (v + v_new), 0.1)
        ds = mean_v * h
        used = h
        if ds >= remaining:
            ds, used = remaining, remaining / mean_v
        grade = d.grades[d.seg]
        self._consume(truck, ds / 1000.0, mean_v * 3.6, grade, used)
        truck.odometer_km += ds / 1000.0
        d.travelled_m += ds
        d.along_m += ds
        while d.seg < len(d.seg_m) - 1 and d.along_m >= d.seg_m[d.seg]:
            d.along_m -= d.seg_m[d.seg]
            d.seg += 1
        truck.heading_deg = geo.bearing_deg(d.points[d.seg], d.points[d.seg + 1])
        if ds >= remaining - 1e-6:
            d.done = True
            truck.position = d.points[-1]
            truck.speed_kmh = 0.0
            truck.place = d.end_place
        else:
            truck.position = d.where()
            truck.speed_kmh = v_new * 3.6
        return used

    def _consume(self, truck: Truck, km: float, speed_kmh: float, grade: float, seconds: float) -> None:
        t_amb = self._ambient
        traction = road_load_kwh_per_km(truck.gross_t, speed_kmh, grade) * km
        aux = _aux_kw(truck.powertrain, t_amb) * seconds / 3600
        kwh = traction * _temperature_factor(truck.powertrain, t_amb) + aux
        if truck.powertrain == "bev":
            truck.energy_kwh += max(0.0, kwh)
            truck.soc_pct = min(100.0, max(0.0, truck.soc_pct - kwh / truck.battery_kwh * 100.0))
            return
        hours = seconds / 3600.0
        demand_kw = kwh / hours if hours > 0 else 0.0
        charge_kw = min(40.0, max(0.0, (FC_BATTERY_TARGET_PCT - truck.soc_pct) * 4.0))
        fc_kw = min(truck.fc_kw, max(0.0, demand_kw + charge_kw)) if truck.h2_tank_kg > 0 else 0.0
        h2 = min(truck.h2_tank_kg, fc_kw * hours / (H2_LHV_KWH_PER_KG * FC_SYSTEM_EFFICIENCY))
        truck.h2_tank_kg -= h2
        truck.h2_kg += h2
        truck.energy_kwh += max(0.0, kwh)
        delta = (fc_kw - demand_kw) * hours
        truck.soc_pct = min(100.0, max(0.0, truck.soc_pct + delta / truck.battery_kwh * 100.0))

    def _charge(self, truck: Truck, c: _Charge, h: float) -> float:
        truck.speed_kmh = 0.0
        bev = truck.powertrain == "bev"
        if not c.plugged:
            if bev and self._chargers_busy < geo.DEPOT.chargers:
                self._chargers_busy += 1
                c.plugged = True
            elif not bev and self._dispensers_busy < geo.DEPOT.h2_dispensers:
                self._dispensers_busy += 1
                c.plugged = True
            else:
                truck.state = "idle"
                return h
        truck.state = c.state
        if c.overhead_s > 0:
            used = min(h, c.overhead_s)
            c.overhead_s -= used
            return used
        if bev:
            taper = 1.0 if truck.soc_pct < 80 else max(0.2, (100.0 - truck.soc_pct) / 20.0)
            kw = min(geo.DEPOT.charger_kw, MAX_C_RATE * truck.battery_kwh) * taper
            truck.soc_pct = min(100.0, truck.soc_pct + kw * CHARGE_EFFICIENCY * h / 3600 / truck.battery_kwh * 100)
            finished = truck.soc_pct >= c.target
        else:
            truck.h2_tank_kg = min(truck.h2_capacity_kg, truck.h2_tank_kg + geo.DEPOT.h2_kg_per_min * h / 60.0)
            finished = truck.h2_tank_kg >= c.target
        if finished:
            c.done = True
            if bev:
                self._chargers_busy -= 1
            else:
                self._dispensers_busy -= 1
        return h

    # -- planning --

    def _inside_drive(
        self, start: str, end: str, phase: str, end_place: str | None, on_end: Hook | None = None
    ) -> _Drive:
        points = geo.inside_path(start, end)
        n = max(len(points) - 1, 0)
        return _Drive(
            "moving",
            phase,
            on_end=on_end,
            points=points,
            limits_kmh=[INSIDE_KMH] * n,
            grades=[0.0] * n,
            end_place=end_place,
        )

    def _corridor_drive(self, dest: geo.Destination, outbound: bool, phase: str) -> _Drive:
        points = list(dest.road) if outbound else list(reversed(dest.road))
        n = len(points) - 1
        limits = [dest.speed_kmh] * n
        limits[0 if outbound else n - 1] = GATE_EXIT_KMH
        grade = dest.grade if outbound else -dest.grade
        return _Drive("moving", phase, points=points, limits_kmh=limits, grades=[grade] * n)

    def _needs_energy(self, truck: Truck) -> bool:
        if truck.powertrain == "bev":
            return truck.soc_pct < BEV_CHARGE_BELOW_PCT[truck.late_charger]
        return truck.h2_tank_kg < FCEV_REFUEL_BELOW * truck.h2_capacity_kg

    def _round_trip(self, truck: Truck, dest: geo.Destination) -> tuple[float, float]:
        """Energy (kWh) and hydrogen (kg) a loaded round trip to ``dest`` needs, with a 10 % margin."""
        km = 2 * dest.length_m / 1000.0 + 3.0
        per_km = kwh_per_km(MAX_GROSS_T, dest.speed_kmh, 0.0, self._ambient, truck.powertrain)
        kwh = 1.1 * per_km * km
        return kwh, kwh / (H2_LHV_KWH_PER_KG * FC_SYSTEM_EFFICIENCY)

    def _trip_fits(self, truck: Truck, dest: geo.Destination) -> bool:
        kwh, kg = self._round_trip(truck, dest)
        if truck.powertrain == "bev":
            return truck.soc_pct - kwh / truck.battery_kwh * 100.0 >= BEV_RESERVE_PCT[truck.late_charger]
        return truck.h2_tank_kg - kg >= FCEV_RESERVE * truck.h2_capacity_kg

    def _decide(self, truck: Truck, t: datetime) -> None:
        """Plan the truck's next activity; it stands at an inside place with nothing planned."""
        rng = self._rng[truck.vehicle_id]
        plan = self._plan[truck.vehicle_id]
        place = truck.place or geo.DEPOT.place_id
        dest = geo.DESTINATIONS[rng.choices(list(DESTINATION_WEIGHTS), weights=list(DESTINATION_WEIGHTS.values()))[0]]
        if self._needs_energy(truck) or not self._trip_fits(truck, dest):
            self._plan_energy(truck, place)
            return
        if rng.random() < BREAK_PROBABILITY:
            plan.append(_Dwell("idle", "break", seconds=rng.uniform(300, 1200)))
            return
        self._plan_trip(truck, t, place, dest)

    def _plan_energy(self, truck: Truck, place: str) -> None:
        rng = self._rng[truck.vehicle_id]
        plan = self._plan[truck.vehicle_id]
        depot = geo.DEPOT.place_id
        if place != depot:
            plan.append(self._inside_drive(place, depot, "to depot", depot))
        if truck.powertrain == "bev":
            plan.append(_Charge("charging", "charging", target=rng.uniform(90.0, 95.0)))
        else:
            plan.append(
                _Charge("refuelling", "refuelling", target=0.98 * truck.h2_capacity_kg, overhead_s=REFUEL_OVERHEAD_S)
            )

    def _plan_trip(self, truck: Truck, t: datetime, place: str, dest: geo.Destination) -> None:
        rng = self._rng[truck.vehicle_id]
        plan = self._plan[truck.vehicle_id]
        self._trips += 1
        bay = place if place in geo.LOADING_BAYS else rng.choice(geo.LOADING_BAYS)
        gate = dest.gate_id
        trip = Trip(f"trip-{self._trips:05d}", bay, gate, dest.destination_id, t)
        truck.trip = trip

        def load(at: datetime) -> None:
            self._load(truck, bay, BONDED_SHARE[bay], rng.randint(8, 26))

        def unload_at_destination(at: datetime) -> None:
            self._unload(truck)
            if rng.random() < BACKHAUL_PROBABILITY:
                trip.backhaul = True
                share = BACKHAUL_BONDED_SHARE.get(dest.destination_id, 0.2)
                self._load(truck, rng.choice(geo.LOADING_BAYS), share, rng.randint(4, 18))

        def passage(direction: Direction) -> Hook:
            def emit(at: datetime) -> None:
                epcs = tuple(c.epc for c in truck.cargo)
                self._passages.append(GatePassage(at, truck.vehicle_id, gate, direction, truck.vehicle_epc, epcs))

            return emit

        def back_inside(at: datetime) -> None:
            if trip.backhaul:
                end = rng.choice(geo.LOADING_BAYS)
                plan.append(self._inside_drive(gate, end, "to bay (backhaul)", end))
                plan.append(_Dwell("loading", "unloading backhaul", seconds=rng.uniform(600, 1500), on_end=finish))
                return
            if self._needs_energy(truck) or rng.random() < 0.3:
                end = geo.DEPOT.place_id
            else:
                end = rng.choice(geo.LOADING_BAYS)
            plan.append(self._inside_drive(gate, end, "return", end, on_end=finish))

        def finish(at: datetime) -> None:
            self._unload(truck)
            truck.trip = None

        if place != bay:
            plan.append(self._inside_drive(place, bay, "to bay", bay))
        plan.append(_Dwell("loading", "loading", seconds=rng.uniform(900, 2100), on_end=load))
        plan.append(self._inside_drive(bay, gate, "to gate", None))
        plan.append(_Dwell("at_gate", "at gate out", seconds=rng.uniform(90, 300), on_start=passage("out")))
        plan.append(self._corridor_drive(dest, True, "outbound"))
        plan.append(_Dwell("loading", "unloading", seconds=rng.uniform(900, 1800), on_end=unload_at_destination))
        plan.append(self._corridor_drive(dest, False, "return"))
        plan.append(
            _Dwell("at_gate", "at gate in", seconds=rng.uniform(45, 150), on_start=passage("in"), on_end=back_inside)
        )

    def _load(self, truck: Truck, bay: str, bonded_share: float, pallets: int) -> None:
        rng = self._rng[truck.vehicle_id]
        weight = 0.0
        for _ in range(pallets):
            pallet_t = rng.uniform(0.6, 1.2)
            if weight + pallet_t > truck.max_load_t:
                break
            weight += pallet_t
            bonded = rng.random() < bonded_share
            product = rng.choice(BONDED_GOODS[bay] if bonded else DOMESTIC_GOODS)
            self._serial += 1
            epc = sgtin96(product.company_prefix, product.item_reference, self._serial)
            status: CustomsStatus = "bonded" if bonded else "non_bonded"
            truck.cargo.append(CargoTag(epc, status, product.description))
            self._tags[epc] = {
                "kind": "cargo",
                "customs_status": status,
                "vehicle_id": truck.vehicle_id,
                "description": product.description,
            }
        truck.load_t = round(weight, 2)

    def _unload(self, truck: Truck) -> None:
        truck.cargo = []
        truck.load_t = 0.0
