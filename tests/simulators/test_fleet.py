"""The truck fleet over a simulated shift: where trucks go, how fast, what energy they use, what the gates see."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.ops import unary_union

from bondwatch.geofence import parse_feature
from edge.protocols.epc import pure_identity_uri
from edge.readings import Position, payload
from simulators import geography as geo
from simulators.fleet import (
    LOADED_KWH_PER_KM_BAND,
    MAX_GROSS_T,
    SHIFT_H2_KG_PER_100KM_BAND,
    SHIFT_KWH_PER_KM_BAND,
    Fleet,
    GatePassage,
    grai96,
    h2_kg_per_km,
    kwh_per_km,
    sgtin96,
)

TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32649", always_xy=True)
START = datetime(2026, 4, 15, 0, 0, tzinfo=UTC)  # 08:00 in Ordos, a spring morning
DT_S = 10.0
HOURS = 8


@dataclass
class Shift:
    fleet: Fleet
    samples: dict[str, list[Position]]
    states: Counter[str]
    passages: list[GatePassage]
    late_passages: int  # passages handed out in a later step than the one they happened in


def run(seed: int, hours: float, start: datetime = START) -> Shift:
    fleet = Fleet(seed)
    samples: dict[str, list[Position]] = defaultdict(list)
    states: Counter[str] = Counter()
    passages: list[GatePassage] = []
    late = 0
    now = start
    for _ in range(int(hours * 3600 / DT_S)):
        now += timedelta(seconds=DT_S)
        fleet.step(now, DT_S)
        for vehicle_id, position in fleet.positions(now):
            samples[vehicle_id].append(position)
        states.update(t.state for t in fleet.trucks)
        batch = fleet.gate_passages(now)
        late += sum(not now - timedelta(seconds=DT_S) < p.ts <= now for p in batch)
        passages.extend(batch)
    return Shift(fleet, samples, states, passages, late)


@pytest.fixture(scope="module")
def shift() -> Shift:
    return run(716, HOURS)


def test_same_seed_same_shift_other_seed_other_shift(shift: Shift) -> None:
    again, other = run(716, 1), run(8, 1)
    assert again.samples == {v: positions[: len(again.samples[v])] for v, positions in shift.samples.items()}
    assert again.passages == [p for p in shift.passages if p.ts <= START + timedelta(hours=1)]
    assert again.samples != other.samples


def test_fleet_composition() -> None:
    fleet = Fleet(716)
    assert len(fleet.trucks) == 24
    kinds = Counter(t.powertrain for t in fleet.trucks)
    assert kinds["bev"] >= 12 and kinds["fcev"] >= 6
    assert len({t.vehicle_id for t in fleet.trucks}) == 24
    for truck in fleet.trucks:
        assert re.fullmatch(r"trk-\d{2}", truck.vehicle_id)
        assert re.fullmatch(r"蒙K·\d{5}[DF]", truck.plate)
        assert truck.plate.endswith("D" if truck.powertrain == "bev" else "F")
        assert re.fullmatch(r"33[0-9A-F]{22}", truck.vehicle_epc), "GRAI-96"
        if truck.powertrain == "bev":
            assert 282 <= truck.battery_kwh <= 423 and truck.h2_capacity_kg == 0
        else:
            assert 30 <= truck.h2_capacity_kg <= 40 and truck.battery_kwh <= 110
        assert truck.vehicle_record()["tag_epc"] == truck.vehicle_epc
    assert len(Fleet(1, n=30).trucks) == 30


def test_epc_encoders_match_gs1_examples() -> None:
    # Published test vectors (pyepc's SGTIN-96 test, retail-epcpy's GRAI-96 test).
    assert sgtin96("0614141", "812345", 6789) == "3034257BF7194E4000001A85"
    assert grai96("0614141", "12345", 400, filter_value=5) == "33B4257BF40C0E4000000190"
    assert pure_identity_uri(grai96("6970716", "10001", 7)) == "urn:epc:id:grai:6970716.10001.7"
    assert pure_identity_uri(sgtin96("7071234", "100021", 42)) == "urn:epc:id:sgtin:7071234.100021.42"
    with pytest.raises(ValueError):
        sgtin96("0614141", "81234", 1)
    with pytest.raises(ValueError):
        sgtin96("0614141", "812345", 1 << 38)


def test_energy_formula_in_the_documented_bands() -> None:
    for speed in (40, 50, 60, 70, 80):
        low, high = LOADED_KWH_PER_KM_BAND
        assert low <= kwh_per_km(MAX_GROSS_T, speed) <= high, speed
        assert 0.069 <= h2_kg_per_km(MAX_GROSS_T, speed) <= 0.090, speed
    assert kwh_per_km(18.5, 60) < kwh_per_km(35, 60) < kwh_per_km(MAX_GROSS_T, 60), "more load, more energy"
    assert kwh_per_km(MAX_GROSS_T, 60, ambient_c=-15) > 1.15 * kwh_per_km(MAX_GROSS_T, 60), "winter costs"
    assert kwh_per_km(MAX_GROSS_T, 60, grade=0.01) > kwh_per_km(MAX_GROSS_T, 60, grade=-0.01)


def _allowed_area() -> shapely.Geometry:
    parts = []
    for feature in geo.geofence_features():
        fence = parse_feature(feature, feature["id"])
        geometry = shapely.transform(fence.geometry, lambda xy: np.column_stack(TO_UTM.transform(xy[:, 0], xy[:, 1])))
        if fence.kind == "corridor":
            assert fence.width_m is not None
            geometry = geometry.buffer(fence.width_m / 2)
        elif fence.kind == "zone" and feature["properties"].get("bonded") is not False:
            continue  # zones inside the boundary add nothing
        elif fence.id == geo.SERVICE_AREA_ID:
            continue  # the non-bonded service area is where trucks never go
        parts.append(geometry)
    return unary_union(parts).buffer(8.0)  # GNSS noise


def test_positions_stay_in_the_boundary_corridors_and_destinations(shift: Shift) -> None:
    area = _allowed_area()
    shapely.prepare(area)
    for vehicle_id, positions in shift.samples.items():
        x, y = TO_UTM.transform(np.array([p.lon for p in positions]), np.array([p.lat for p in positions]))
        inside = shapely.contains_xy(area, x, y)
        assert inside.all(), f"{vehicle_id} strays at {positions[int(np.argmin(inside))]}"


def test_positions_are_contract_readings(shift: Shift) -> None:
    for vehicle_id, positions in shift.samples.items():
        bev = shift.fleet.truck(vehicle_id).powertrain == "bev"
        for p in positions:
            assert p.fix == "3d" and -90 <= p.lat <= 90 and -180 <= p.lon <= 180
            assert p.speed_kmh is not None and 0 <= p.speed_kmh <= 90
            assert p.heading_deg is not None and 0 <= p.heading_deg < 360
            assert p.soc_pct is not None and 0 < p.soc_pct <= 100
            assert (p.energy_kwh is not None) is bev and (p.h2_kg is not None) is not bev
        body = payload(positions[-1], 1)
        assert {"ts", "seq", "lat", "lon", "fix", "soc_pct", "odometer_km"} <= set(body)


def test_trucks_move_and_stop_plausibly(shift: Shift) -> None:
    assert {"moving", "at_gate", "loading", "charging"} <= set(shift.states)
    speeds = [p.speed_kmh or 0.0 for positions in shift.samples.values() for p in positions]
    assert max(speeds) > 60, "trucks reach road speed on the corridors"
    assert sum(s > 1 for s in speeds) / len(speeds) > 0.15, "and spend a fair share of the shift moving"
    for positions in shift.samples.values():
        for a, b in itertools.pairwise(positions):
            # No teleporting: between two fixes 10 s apart a truck covers at most 90 km/h worth, plus noise.
            ax, ay = geo.local_xy((a.lon, a.lat))
            bx, by = geo.local_xy((b.lon, b.lat))
            assert math.hypot(bx - ax, by - ay) < 90 / 3.6 * DT_S + 15


def test_counters_are_cumulative_and_soc_mostly_above_twenty(shift: Shift) -> None:
    low = total = 0
    for vehicle_id, positions in shift.samples.items():
        truck = shift.fleet.truck(vehicle_id)
        odometers = [p.odometer_km or 0.0 for p in positions]
        assert odometers == sorted(odometers)
        counter = [(p.energy_kwh if truck.powertrain == "bev" else p.h2_kg) or 0.0 for p in positions]
        assert counter == sorted(counter), f"{vehicle_id} cumulative energy never decreases"
        km = odometers[-1] - odometers[0]
        assert km > 20, f"{vehicle_id} drove only {km:.1f} km in {HOURS} h"
        if truck.powertrain == "bev":
            per_km = (counter[-1] - counter[0]) / km
            low_band, high_band = SHIFT_KWH_PER_KM_BAND
            assert low_band <= per_km <= high_band, f"{vehicle_id} used {per_km:.2f} kWh/km"
            low += sum((p.soc_pct or 0) < 20 for p in positions)
            total += len(positions)
        else:
            per_100 = (counter[-1] - counter[0]) / km * 100
            low_band, high_band = SHIFT_H2_KG_PER_100KM_BAND
            assert low_band <= per_100 <= high_band, f"{vehicle_id} used {per_100:.1f} kg H2/100 km"
            assert all(30 <= (p.soc_pct or 0) <= 100 for p in positions), "the buffer battery is kept up"
    assert low / total < 0.05, "low_soc is the exception"


def test_gate_passages_both_ways_with_vehicle_and_cargo_tags(shift: Shift) -> None:
    passages = shift.passages
    assert {p.direction for p in passages} == {"in", "out"}
    assert {p.gate_id for p in passages} == set(geo.GATES)
    assert len(passages) > 2 * len(shift.fleet.trucks), "several trips per truck in a shift"
    tags = shift.fleet.tags()
    statuses: Counter[str] = Counter()
    for p in passages:
        assert START < p.ts <= START + timedelta(hours=HOURS)
        assert p.vehicle_epc == shift.fleet.truck(p.vehicle_id).vehicle_epc
        assert tags[p.vehicle_epc]["kind"] == "vehicle"
        assert (pure_identity_uri(p.vehicle_epc) or "").startswith("urn:epc:id:grai:")
        for epc in p.cargo_epcs:
            assert re.fullmatch(r"30[0-9A-F]{22}", epc), "SGTIN-96"
            assert (pure_identity_uri(epc) or "").startswith("urn:epc:id:sgtin:")
            assert tags[epc]["kind"] == "cargo"
            statuses[tags[epc]["customs_status"]] += 1
        if p.direction == "out":
            assert p.cargo_epcs, "trucks leave loaded"
    assert statuses["bonded"] > 0 and statuses["non_bonded"] > 0
    assert any(p.direction == "in" and p.cargo_epcs for p in passages), "some backhaul loads come in"
    assert sorted(passages, key=lambda p: p.ts) == passages


def test_gate_passages_are_handed_out_once_in_their_step(shift: Shift) -> None:
    assert shift.late_passages == 0
    assert len(set(shift.passages)) == len(shift.passages)
    assert shift.fleet.gate_passages(START + timedelta(hours=HOURS)) == []


def test_gps_jump_displaces_one_fix() -> None:
    fleet = Fleet(5, n=4)
    now = START + timedelta(seconds=DT_S)
    fleet.step(now, DT_S)
    truth = fleet.truck("trk-02").position
    fleet.inject_gps_jump("trk-02", 5.0)
    jumped = dict(fleet.positions(now))["trk-02"]
    assert geo.distance_m(truth, (jumped.lon, jumped.lat)) == pytest.approx(5000, abs=20)
    after = dict(fleet.positions(now))["trk-02"]
    assert geo.distance_m(truth, (after.lon, after.lat)) < 15
    with pytest.raises(KeyError):
        fleet.inject_gps_jump("trk-99", 1.0)
