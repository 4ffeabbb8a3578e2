"""Cold rooms: a day without faults stays within each product's profile but for short bumps; a broken compressor
drives a real, sustained excursion."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from edge.readings import Temperature, payload
from simulators.coldrooms import PRODUCTS, ColdStore, dock_c

DT_S = 10.0
JULY = datetime(2026, 7, 15, tzinfo=UTC)  # 08:00 in Ordos
API_PROFILE_KEYS = {"min_c", "max_c", "delay_s", "hysteresis_c", "pre_alarm_margin_c", "offline_after_s", "description"}


def run(
    store: ColdStore, start: datetime, hours: float, ambient_c: float | None = None
) -> dict[str, list[Temperature]]:
    readings: dict[str, list[Temperature]] = defaultdict(list)
    now = start
    for _ in range(int(hours * 3600 / DT_S)):
        now += timedelta(seconds=DT_S)
        store.step(now, DT_S, ambient_c)
        for device_id, reading in store.readings(now):
            readings[device_id].append(reading)
    return readings


@pytest.fixture(scope="module")
def july() -> dict[str, list[Temperature]]:
    """A healthy summer day, the hardest for the refrigeration."""
    return run(ColdStore(716), JULY, 24)


def longest_outside(readings: list[Temperature], low: float, high: float) -> float:
    longest = current = 0.0
    for r in readings:
        current = current + DT_S if not low <= r.temp_c <= high else 0.0
        longest = max(longest, current)
    return longest


def test_rooms_and_profiles() -> None:
    store = ColdStore(716)
    assert len(store.rooms) >= 12
    names = {r.product.name for r in store.rooms}
    assert {"chilled-salmon", "frozen-goods", "tropical-fruit", "live-seafood", "pharma-2-8", "ice-cream"} <= names
    for room in store.rooms:
        assert re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", room.device_id)
        body = room.profile()
        assert set(body) == API_PROFILE_KEYS, "exactly the API's profile form"
        assert -80 <= body["min_c"] < body["max_c"] <= 85
        assert 0 <= body["delay_s"] <= 86_400 and body["offline_after_s"] > 0
        assert 0 <= body["hysteresis_c"] <= 20 and 0 <= body["pre_alarm_margin_c"] <= 20
        p = room.product
        assert p.name_zh and p.name_en and p.description_zh and p.description_en
        assert p.name_zh in body["description"] and p.name_en in body["description"]
        assert p.min_c < p.setpoint_c - p.deadband_c / 2 and p.setpoint_c + p.deadband_c / 2 < p.max_c
        assert room.device_record()["profile"] == p.name
    assert PRODUCTS["chilled-salmon"].profile()["min_c"] == 0 and PRODUCTS["chilled-salmon"].profile()["max_c"] == 4
    assert PRODUCTS["frozen-goods"].profile()["max_c"] == -18


def test_same_seed_same_readings(july: dict[str, list[Temperature]]) -> None:
    again, other = run(ColdStore(716), JULY, 2), run(ColdStore(8), JULY, 2)
    assert again == {device_id: series[: len(again[device_id])] for device_id, series in july.items()}
    assert again != other


@pytest.mark.parametrize("month", [1, 7])
def test_a_day_without_faults_stays_within_profile_but_for_short_bumps(
    month: int, july: dict[str, list[Temperature]]
) -> None:
    store = ColdStore(716)
    readings = july if month == 7 else run(store, datetime(2026, month, 15, tzinfo=UTC), 24)
    bumps = 0
    for room in store.rooms:
        p = room.product
        series = readings[room.device_id]
        assert len(series) == 24 * 360
        longest = longest_outside(series, p.min_c, p.max_c)
        assert longest < p.delay_s, f"{room.room_id} was outside {p.min_c}..{p.max_c} for {longest:.0f} s"
        bumps += longest > 0
        mean = sum(r.temp_c for r in series) / len(series)
        assert p.setpoint_c - p.deadband_c <= mean <= p.setpoint_c + p.deadband_c, f"{room.room_id} mean {mean:.2f}"
        opened = sum(bool(r.door_open) for r in series) / len(series)
        assert 0 < opened < 0.15, f"{room.room_id} door open {opened:.1%} of the time"
        for r in series:
            assert r.rh_pct is not None and 0 <= r.rh_pct <= 100
            assert r.battery_v is not None and 3.4 <= r.battery_v <= 3.7
            assert -80 <= r.temp_c <= 85
    if month == 7:
        assert bumps > 0, "summer doors and defrosts do push some rooms briefly out of range"


def test_sensor_noise_is_a_tenth_of_a_degree() -> None:
    store = ColdStore(3)
    now = datetime(2026, 4, 1, tzinfo=UTC)
    for _ in range(100):
        now += timedelta(seconds=DT_S)
        store.step(now, DT_S)
        for (device_id, reading), room in zip(store.readings(now), store.rooms, strict=True):
            assert device_id == room.device_id
            assert abs(reading.temp_c - room.temp_c) <= 0.1 + 0.005
            assert payload(reading, 0)["temp_c"] == reading.temp_c


def test_compressor_failure_drives_a_sustained_excursion(july: dict[str, list[Temperature]]) -> None:
    failure = JULY + timedelta(hours=4)
    store = ColdStore(716)
    failing = ("cr-01", "cr-03")  # chilled salmon, frozen goods
    for room_id in failing:
        store.fail_compressor(room_id, failure)
    got = run(store, JULY, 12)
    for room_id in failing:
        p = store.room(room_id).product
        series = got[f"temp-{room_id}"]
        after = [r for r in series if r.ts >= failure + timedelta(hours=3)]
        assert after and all(r.temp_c > p.max_c for r in after), f"{room_id} out above max_c and staying out"
        assert longest_outside(series, p.min_c, p.max_c) > 2 * p.delay_s
        assert series[-1].temp_c > p.max_c + 2
        assert series[-1].temp_c < dock_c(30.0), "warming toward the dock, not beyond it"
        before = [r for r in series if r.ts < failure]
        assert before == july[f"temp-{room_id}"][: len(before)], "identical until the failure"
    for device_id, series in got.items():
        if device_id.removeprefix("temp-") not in failing:
            assert series == july[device_id][: len(series)], "the other rooms do not notice"


def test_repair_brings_the_room_back() -> None:
    start = datetime(2026, 7, 15, tzinfo=UTC)
    store = ColdStore(716)
    store.fail_compressor("cr-01", start + timedelta(hours=1))
    store.repair_compressor("cr-01", start + timedelta(hours=4))
    series = run(store, start, 6)["temp-cr-01"]
    p = store.room("cr-01").product
    assert max(r.temp_c for r in series) > p.max_c
    assert all(p.min_c <= r.temp_c <= p.max_c + 1 for r in series[-360:]), "back in range an hour or so later"


def test_door_held_open_and_ambient_override() -> None:
    start = datetime(2026, 1, 15, tzinfo=UTC)
    store = ColdStore(716)
    store.hold_door_open("cr-05", start + timedelta(minutes=30), 1800)
    series = run(store, start, 2, ambient_c=35.0)["temp-cr-05"]
    held = [r for r in series if start + timedelta(minutes=31) <= r.ts < start + timedelta(minutes=60)]
    assert held and all(r.door_open for r in held)
    with pytest.raises(ValueError):
        store.step(start, 0)
    with pytest.raises(KeyError):
        store.fail_compressor("cr-99", start)
