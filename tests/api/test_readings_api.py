"""Latest state and history of vehicles and cold-room sensors, from rows written straight to the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.api import bodies
from tests.api.conftest import Api, uid

Db = psycopg.Connection[tuple[Any, ...]]
BASE = datetime.fromisoformat("2026-11-25T10:00:00+08:00")
MIN = timedelta(minutes=1)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def insert_positions(db: Db, device_id: str, points: list[tuple[datetime, float, float]]) -> None:
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO positions (ts, device_id, seq, lat, lon, fix, speed_kmh, soc_pct) "
            "VALUES (%s, %s, %s, %s, %s, '3d', 40, 80)",
            [(ts, device_id, seq, lat, lon) for seq, (ts, lat, lon) in enumerate(points, start=1)],
        )


def insert_temperatures(db: Db, device_id: str, readings: list[tuple[datetime, float, bool]]) -> None:
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO temperatures (ts, device_id, seq, temp_c, rh_pct, door_open, battery_v) "
            "VALUES (%s, %s, %s, %s, 85, %s, 3.6)",
            [(ts, device_id, seq, temp, door) for seq, (ts, temp, door) in enumerate(readings, start=1)],
        )


def set_latest(db: Db, device_id: str, kind: str, ts: datetime, seq: int, reading: dict[str, Any]) -> None:
    db.execute(
        "INSERT INTO device_latest (device_id, kind, ts, seq, received_at, reading) VALUES (%s, %s, %s, %s, %s, %s)",
        (device_id, kind, ts, seq, ts + timedelta(seconds=2), Jsonb(reading)),
    )


def assert_local(value: str) -> datetime:
    assert value.endswith("+08:00"), value
    return at(value)


# ---------------------------------------------------------------- vehicles


@pytest.fixture
def truck(admin: Api, db: Db) -> tuple[str, str]:
    """A registered vehicle whose terminal reported every 10 minutes from 10:00 to 10:40 local."""
    terminal = uid("gps")
    vehicle_id = bodies.register_vehicle(admin, device_id=terminal)
    points = [(BASE + i * 10 * MIN, 39.60 + i * 0.01, 109.90 + i * 0.01) for i in range(5)]
    insert_positions(db, terminal, points)
    last_ts, lat, lon = points[-1]
    reading = {"lat": lat, "lon": lon, "fix": "3d", "soc_pct": 80.0}
    set_latest(db, terminal, "gps", last_ts, len(points), reading)
    # Another terminal's fixes in the same window must never leak into this track.
    insert_positions(db, uid("gps"), [(BASE + 15 * MIN, 1.0, 1.0)])
    return vehicle_id, terminal


def test_vehicles_show_latest_position(admin: Api, truck: tuple[str, str]) -> None:
    vehicle_id, terminal = truck
    states = {v["vehicle_id"]: v for v in admin.ok("GET", "/vehicles")}
    state = states[vehicle_id]
    assert state["device_id"] == terminal
    assert state["position"] == {
        "lat": pytest.approx(39.64),
        "lon": pytest.approx(109.94),
        "fix": "3d",
        "soc_pct": 80.0,
    }
    assert assert_local(state["last_ts"]) == BASE + 40 * MIN
    assert assert_local(state["last_received_at"]) > BASE + 40 * MIN
    assert state["bonded_transport"] is True


def test_vehicle_without_readings_has_no_position(admin: Api) -> None:
    vehicle_id = bodies.register_vehicle(admin)
    state = {v["vehicle_id"]: v for v in admin.ok("GET", "/vehicles")}[vehicle_id]
    assert (state["position"], state["last_ts"], state["online"]) == (None, None, None)


def test_track_returns_window_in_order(admin: Api, truck: tuple[str, str]) -> None:
    vehicle_id, terminal = truck
    params = {"from": (BASE + 5 * MIN).isoformat(), "to": (BASE + 30 * MIN).isoformat()}
    track = admin.ok("GET", f"/vehicles/{vehicle_id}/track?" + urlencode(params))
    assert (track["vehicle_id"], track["device_id"], track["truncated"]) == (vehicle_id, terminal, False)
    assert assert_local(track["from"]) == BASE + 5 * MIN
    assert assert_local(track["to"]) == BASE + 30 * MIN
    times = [assert_local(p["ts"]) for p in track["points"]]
    # [from, to): the 10:30 fix is the window's end, so it is left out.
    assert times == [BASE + 10 * MIN, BASE + 20 * MIN]
    assert [p["lat"] for p in track["points"]] == pytest.approx([39.61, 39.62])
    assert {p["fix"] for p in track["points"]} == {"3d"}


def test_track_whole_window_oldest_first(admin: Api, truck: tuple[str, str]) -> None:
    vehicle_id, _ = truck
    params = {"from": "2026-11-25T02:00:00Z", "to": "2026-11-25T03:00:00Z"}  # 10:00..11:00 local
    points = admin.ok("GET", f"/vehicles/{vehicle_id}/track?" + urlencode(params))["points"]
    times = [assert_local(p["ts"]) for p in points]
    assert times == [BASE + i * 10 * MIN for i in range(5)]


def test_track_empty_window(admin: Api, truck: tuple[str, str]) -> None:
    vehicle_id, _ = truck
    params = {"from": "2026-11-20T00:00:00+08:00", "to": "2026-11-21T00:00:00+08:00"}
    assert admin.ok("GET", f"/vehicles/{vehicle_id}/track?" + urlencode(params))["points"] == []


ORDER = ("'from' must be before 'to'",)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "2026-11-25T11:00:00+08:00", "to": "2026-11-25T10:00:00+08:00"}, ORDER),
        ({"from": "2026-11-25T10:00:00+08:00", "to": "2026-11-25T10:00:00+08:00"}, ORDER),
        ({"from": "2026-11-25T10:00:00", "to": "2026-11-25T11:00:00+08:00"}, ("'from'", "offset")),
        ({"from": "2026-11-25T10:00:00+08:00", "to": "2026-11-25T11:00:00"}, ("'to'", "offset")),
        ({"from": "2026-01-01T00:00:00+08:00", "to": "2026-11-25T00:00:00+08:00"}, ("93 days",)),
        ({"from": "yesterday"}, ("from",)),
    ],
)
def test_track_bad_window_is_422(
    admin: Api, truck: tuple[str, str], params: dict[str, str], words: tuple[str, ...]
) -> None:
    vehicle_id, _ = truck
    resp = admin.get(f"/vehicles/{vehicle_id}/track", params=params)
    assert resp.status_code == 422, resp.text
    for word in words:
        assert word in resp.json()["detail"]


def test_track_of_unknown_vehicle_is_404(admin: Api) -> None:
    ghost = uid("veh")
    resp = admin.get(f"/vehicles/{ghost}/track")
    assert resp.status_code == 404
    assert ghost in resp.json()["detail"]


# ---------------------------------------------------------------- sensors

# Local times around midnight: two readings late on the 24th, three early on the 25th. In UTC all
# five fall on the 24th, so a day bucket cut at UTC midnight would merge them into one.
COLD_ROOM = [
    (at("2026-11-24T23:10:00+08:00"), 1.0, False),
    (at("2026-11-24T23:40:00+08:00"), 2.0, True),
    (at("2026-11-25T00:05:00+08:00"), 3.0, False),
    (at("2026-11-25T00:35:00+08:00"), 4.0, False),
    (at("2026-11-25T01:20:00+08:00"), 5.5, False),
]
NIGHT = {"from": "2026-11-24T23:00:00+08:00", "to": "2026-11-25T02:00:00+08:00"}


@pytest.fixture
def sensor(admin: Api, db: Db) -> tuple[str, str]:
    device_id, profile_name = bodies.register_sensor(admin, bodies.profile(min_c=-1.5, max_c=4.0))
    insert_temperatures(db, device_id, COLD_ROOM)
    ts, temp, door = COLD_ROOM[-1]
    set_latest(db, device_id, "temp", ts, len(COLD_ROOM), {"temp_c": temp, "rh_pct": 85.0, "door_open": door})
    return device_id, profile_name


def test_sensors_list_latest_with_profile_limits(admin: Api, sensor: tuple[str, str]) -> None:
    device_id, profile_name = sensor
    state = {s["device_id"]: s for s in admin.ok("GET", "/sensors")}[device_id]
    assert state["profile"] == profile_name
    assert (state["min_c"], state["max_c"]) == (-1.5, 4.0)
    assert (state["temp_c"], state["rh_pct"], state["door_open"]) == (5.5, 85.0, False)
    assert assert_local(state["last_ts"]) == COLD_ROOM[-1][0]
    assert state["name"] == bodies.temp_device(profile_name)["name"]


def test_sensors_list_unregistered_and_silent_sensors(admin: Api, db: Db) -> None:
    heard = uid("temp")
    set_latest(db, heard, "temp", BASE, 1, {"temp_c": 6.0})
    silent, _ = bodies.register_sensor(admin)
    states = {s["device_id"]: s for s in admin.ok("GET", "/sensors")}
    assert (states[heard]["temp_c"], states[heard]["profile"], states[heard]["min_c"]) == (6.0, None, None)
    assert (states[silent]["temp_c"], states[silent]["last_ts"]) == (None, None)
    assert states[silent]["max_c"] == 4.0


def test_raw_readings_in_order(admin: Api, sensor: tuple[str, str]) -> None:
    device_id, _ = sensor
    body = admin.ok("GET", f"/sensors/{device_id}/readings?" + urlencode(NIGHT))
    assert (body["device_id"], body["bucket"]) == (device_id, None)
    assert assert_local(body["from"]) == at(NIGHT["from"])
    rows = body["readings"]
    assert [assert_local(r["ts"]) for r in rows] == [ts for ts, _, _ in COLD_ROOM]
    assert [r["temp_c"] for r in rows] == [temp for _, temp, _ in COLD_ROOM]
    assert [r["door_open"] for r in rows] == [door for _, _, door in COLD_ROOM]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]

    narrow = {"from": "2026-11-24T23:40:00+08:00", "to": "2026-11-25T00:35:00+08:00"}
    rows = admin.ok("GET", f"/sensors/{device_id}/readings?" + urlencode(narrow))["readings"]
    assert [r["temp_c"] for r in rows] == [2.0, 3.0]


def test_hourly_buckets(admin: Api, sensor: tuple[str, str]) -> None:
    device_id, _ = sensor
    body = admin.ok("GET", f"/sensors/{device_id}/readings?" + urlencode({**NIGHT, "bucket": "1h"}))
    assert body["bucket"] == "1h"
    rows = body["readings"]
    assert [r["bucket"] for r in rows] == [
        "2026-11-24T23:00:00+08:00",
        "2026-11-25T00:00:00+08:00",
        "2026-11-25T01:00:00+08:00",
    ]
    assert [r["n"] for r in rows] == [2, 2, 1]
    assert [r["avg_c"] for r in rows] == pytest.approx([1.5, 3.5, 5.5])
    assert [(r["min_c"], r["max_c"]) for r in rows] == [(1.0, 2.0), (3.0, 4.0), (5.5, 5.5)]
    assert [r["door_opened"] for r in rows] == [True, False, False]


def test_daily_buckets_start_at_local_midnight(admin: Api, sensor: tuple[str, str]) -> None:
    device_id, _ = sensor
    params = {"from": "2026-11-24T00:00:00+08:00", "to": "2026-11-26T00:00:00+08:00", "bucket": "1d"}
    rows = admin.ok("GET", f"/sensors/{device_id}/readings?" + urlencode(params))["readings"]
    assert [r["bucket"] for r in rows] == ["2026-11-24T00:00:00+08:00", "2026-11-25T00:00:00+08:00"]
    assert [r["n"] for r in rows] == [2, 3]
    assert [r["max_c"] for r in rows] == [2.0, 5.5]


@pytest.mark.parametrize("bucket", ["5x", "h", "1.5h", "-1h", "1 h", "12345m", "0h", "0000s"])
def test_bad_bucket_is_422(admin: Api, sensor: tuple[str, str], bucket: str) -> None:
    device_id, _ = sensor
    resp = admin.get(f"/sensors/{device_id}/readings", params={**NIGHT, "bucket": bucket})
    assert resp.status_code == 422, resp.text
    assert "bucket" in resp.json()["detail"]


def test_readings_bad_window_is_422(admin: Api, sensor: tuple[str, str]) -> None:
    device_id, _ = sensor
    resp = admin.get(f"/sensors/{device_id}/readings", params={"from": NIGHT["to"], "to": NIGHT["from"]})
    assert resp.status_code == 422
    assert "'from' must be before 'to'" in resp.json()["detail"]
    resp = admin.get(f"/sensors/{device_id}/readings", params={"from": "2026-11-24T23:00:00"})
    assert resp.status_code == 422
    assert "offset" in resp.json()["detail"]


def test_readings_of_unknown_sensor_is_404(admin: Api) -> None:
    ghost = uid("temp")
    for params in (NIGHT, {**NIGHT, "bucket": "1h"}):
        resp = admin.get(f"/sensors/{ghost}/readings", params=params)
        assert resp.status_code == 404, resp.text
        assert ghost in resp.json()["detail"]


def test_readings_of_known_sensor_in_empty_window(admin: Api, sensor: tuple[str, str]) -> None:
    device_id, _ = sensor
    params = {"from": "2026-11-20T00:00:00+08:00", "to": "2026-11-21T00:00:00+08:00"}
    for query in (params, {**params, "bucket": "1d"}):
        assert admin.ok("GET", f"/sensors/{device_id}/readings?" + urlencode(query))["readings"] == []
