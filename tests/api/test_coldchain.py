"""GET /sensors/{id}/coldchain: cold-chain statistics per local day or month, from bondwatch_coldchain()."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.api import bodies
from tests.api.conftest import API, Api, uid
from tests.bondwatch.test_coldchain_sql import Db, at, insert_readings, mkt

SHANGHAI = ZoneInfo("Asia/Shanghai")
MIN = timedelta(minutes=1)
# Profile [0, 4] °C, offline_after_s 600: every reading below stands for 10 minutes.
NIGHT = [
    (at("2026-11-20T23:50:00+08:00"), 3.0, False),
    (at("2026-11-21T00:00:00+08:00"), 5.0, True),  # above
    (at("2026-11-21T00:10:00+08:00"), -1.0, False),  # below
    (at("2026-11-21T00:20:00+08:00"), 2.0, False),
]
TWO_DAYS = {"from": "2026-11-20T00:00:00+08:00", "to": "2026-11-22T00:00:00+08:00"}


def local(value: str) -> datetime:
    assert value.endswith("+08:00"), value
    return datetime.fromisoformat(value)


def coldchain(api: Api, device_id: str, **params: str) -> dict[str, Any]:
    body: dict[str, Any] = api.ok("GET", f"/sensors/{device_id}/coldchain?" + urlencode(params))
    return body


def month_start(value: datetime, back: int = 0) -> datetime:
    local_value = value.astimezone(SHANGHAI)
    months = local_value.year * 12 + local_value.month - 1 - back
    return datetime(months // 12, months % 12 + 1, 1, tzinfo=SHANGHAI)


@pytest.fixture
def sensor(admin: Api, db: Db) -> tuple[str, str]:
    device_id, profile_name = bodies.register_sensor(admin, bodies.profile(min_c=0.0, max_c=4.0))
    insert_readings(db, device_id, NIGHT)
    return device_id, profile_name


def test_daily_statistics(viewer: Api, sensor: tuple[str, str]) -> None:
    device_id, profile_name = sensor
    body = coldchain(viewer, device_id, **TWO_DAYS)
    assert (body["device_id"], body["period"], body["timezone"]) == (device_id, "day", "Asia/Shanghai")
    assert body["profile"] == {"name": profile_name, "min_c": 0.0, "max_c": 4.0, "offline_after_s": 600}
    assert (local(body["from"]), local(body["to"])) == (at(TWO_DAYS["from"]), at(TWO_DAYS["to"]))

    first, second = body["rows"]
    assert local(first["period_start"]) == at("2026-11-20T00:00:00+08:00")
    assert local(second["period_start"]) == at("2026-11-21T00:00:00+08:00")
    assert (first["readings"], first["covered_s"], first["mean_c"], first["in_range_pct"]) == (1, 600.0, 3.0, 100.0)
    assert (second["readings"], second["covered_s"], second["min_c"], second["max_c"]) == (3, 1800.0, -1.0, 5.0)
    assert (second["in_range_s"], second["above_s"], second["below_s"]) == (600.0, 600.0, 600.0)
    assert (second["out_of_range_s"], second["door_open_s"]) == (1200.0, 600.0)
    assert second["in_range_pct"] == pytest.approx(100 / 3)
    assert second["mkt_c"] == pytest.approx(mkt([(5.0, 1), (-1.0, 1), (2.0, 1)]), rel=1e-12)

    totals = body["totals"]
    assert "period_start" not in totals
    assert (totals["readings"], totals["covered_s"], totals["in_range_pct"]) == (4, 2400.0, 50.0)
    assert (totals["above_s"], totals["below_s"], totals["door_open_s"]) == (600.0, 600.0, 600.0)
    assert totals["mean_c"] == pytest.approx(9.0 / 4)
    assert totals["mkt_c"] == pytest.approx(mkt([(t, 1) for _, t, _ in NIGHT]), rel=1e-12)


def test_monthly_statistics(viewer: Api, sensor: tuple[str, str]) -> None:
    device_id, _ = sensor
    window = {"from": "2026-10-01T00:00:00+08:00", "to": "2026-12-01T00:00:00+08:00"}
    body = coldchain(viewer, device_id, period="month", **window)
    assert body["period"] == "month"
    rows = body["rows"]
    assert [local(r["period_start"]) for r in rows] == [at(window["from"]), at("2026-11-01T00:00:00+08:00")]
    assert [r["readings"] for r in rows] == [0, 4]
    assert (rows[0]["covered_s"], rows[0]["mkt_c"], rows[0]["in_range_pct"]) == (0.0, None, None)
    assert rows[1]["mkt_c"] == pytest.approx(body["totals"]["mkt_c"], rel=1e-12)
    assert body["totals"]["readings"] == 4


def test_default_window_of_days_is_this_local_month(viewer: Api, admin: Api, db: Db) -> None:
    device_id, _ = bodies.register_sensor(admin)
    this_month = month_start(datetime.now(UTC))
    insert_readings(db, device_id, [(this_month - MIN, 3.0, False), (this_month, 3.0, False)])
    before = datetime.now(UTC)
    body = coldchain(viewer, device_id)
    after = datetime.now(UTC)
    assert body["period"] == "day"
    assert local(body["from"]) == this_month
    assert before <= local(body["to"]) <= after
    assert local(body["rows"][0]["period_start"]) == this_month
    assert len(body["rows"]) == local(body["to"]).day
    assert body["totals"]["readings"] == 1  # the reading a minute before the month is outside


def test_default_window_of_months_is_the_last_12_local_months(viewer: Api, admin: Api, db: Db) -> None:
    device_id, _ = bodies.register_sensor(admin)
    first = month_start(datetime.now(UTC), back=11)
    insert_readings(db, device_id, [(first - MIN, 3.0, False), (first, 3.0, False)])
    body = coldchain(viewer, device_id, period="month")
    assert local(body["from"]) == first
    starts = [local(r["period_start"]) for r in body["rows"]]
    assert starts == [month_start(first, back=-i) for i in range(12)]
    assert [r["readings"] for r in body["rows"]][:2] == [1, 0]
    assert body["totals"]["readings"] == 1


@pytest.mark.parametrize(
    ("period", "expected_from"),
    [("day", "2026-11-01T00:00:00+08:00"), ("month", "2025-12-01T00:00:00+08:00")],
)
def test_to_alone_picks_the_months_it_closes(
    viewer: Api, sensor: tuple[str, str], period: str, expected_from: str
) -> None:
    device_id, _ = sensor
    # Midnight on 1 December closes November: the default window ends with November, not December.
    body = coldchain(viewer, device_id, period=period, to="2026-11-30T16:00:00Z")
    assert (local(body["from"]), local(body["to"])) == (at(expected_from), at("2026-12-01T00:00:00+08:00"))
    assert body["totals"]["readings"] == 4


def test_sensor_heard_from_but_not_registered(viewer: Api, db: Db) -> None:
    device_id = uid("temp")
    insert_readings(db, device_id, NIGHT)
    body = coldchain(viewer, device_id, **TWO_DAYS)
    assert body["profile"] is None
    totals = body["totals"]
    assert (totals["readings"], totals["covered_s"], totals["door_open_s"]) == (4, 2400.0, 600.0)
    assert [totals[k] for k in ("in_range_s", "above_s", "below_s", "out_of_range_s", "in_range_pct")] == [None] * 5


def test_registered_sensor_without_profile(viewer: Api, admin: Api) -> None:
    device_id = uid("temp")
    admin.ok("PUT", f"/devices/{device_id}", bodies.temp_device(None))
    body = coldchain(viewer, device_id, **TWO_DAYS)
    assert body["profile"] is None
    assert [r["readings"] for r in body["rows"]] == [0, 0]
    assert (body["totals"]["readings"], body["totals"]["covered_s"], body["totals"]["mkt_c"]) == (0, 0.0, None)


def test_known_sensor_in_an_empty_window(viewer: Api, sensor: tuple[str, str]) -> None:
    device_id, _ = sensor
    body = coldchain(viewer, device_id, **{"from": "2026-11-01T00:00:00+08:00", "to": "2026-11-03T00:00:00+08:00"})
    assert [(r["readings"], r["covered_s"], r["in_range_s"]) for r in body["rows"]] == [(0, 0.0, 0.0)] * 2
    assert (body["totals"]["readings"], body["totals"]["in_range_pct"]) == (0, None)


def test_unknown_sensor_is_404(viewer: Api) -> None:
    ghost = uid("temp")
    for params in ({}, TWO_DAYS, {"period": "month"}):
        resp = viewer.get(f"/sensors/{ghost}/coldchain", params=params)
        assert resp.status_code == 404, resp.text
        assert ghost in resp.json()["detail"]


ORDER = ("'from' must be before 'to'",)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"period": "week"}, ("period", "day or month")),
        ({"period": "total"}, ("period", "day or month")),
        ({"from": "2026-11-21T00:00:00+08:00", "to": "2026-11-20T00:00:00+08:00"}, ORDER),
        ({"from": "2026-11-21T00:00:00+08:00", "to": "2026-11-20T16:00:00Z"}, ORDER),  # the same instant
        ({"from": "2099-01-01T00:00:00+08:00"}, ORDER),  # after the default 'to' (now)
        ({"from": "2026-11-20T00:00:00", "to": "2026-11-21T00:00:00+08:00"}, ("'from'", "offset")),
        ({"to": "2026-11-21T00:00:00"}, ("'to'", "offset")),
        ({"from": "2025-01-01T00:00:00+08:00", "to": "2026-02-05T00:00:01+08:00"}, ("400 days",)),
        ({"from": "yesterday"}, ("from",)),
    ],
)
def test_bad_requests_are_422(viewer: Api, sensor: tuple[str, str], params: dict[str, str], words: tuple[str]) -> None:
    device_id, _ = sensor
    resp = viewer.get(f"/sensors/{device_id}/coldchain", params=params)
    assert resp.status_code == 422, resp.text
    for word in words:
        assert word in resp.json()["detail"]


def test_400_days_is_the_longest_window(viewer: Api, sensor: tuple[str, str]) -> None:
    device_id, _ = sensor
    body = coldchain(
        viewer, device_id, period="month", **{"from": "2025-11-01T00:00:00+08:00", "to": "2026-12-06T00:00:00+08:00"}
    )
    assert len(body["rows"]) == 14
    assert body["totals"]["readings"] == 4


def test_needs_a_token(client: TestClient, sensor: tuple[str, str]) -> None:
    device_id, _ = sensor
    resp = client.get(f"{API}/sensors/{device_id}/coldchain", params=TWO_DAYS)
    assert resp.status_code == 401
