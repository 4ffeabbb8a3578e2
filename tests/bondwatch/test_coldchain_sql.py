"""bondwatch_coldchain(): time-weighted cold-chain statistics in SQL, against the real test database.

Expected values are derived here from the definitions (docs/coldchain.md), never copied from a run.
"""

from __future__ import annotations

import json
import math
import random
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest.mqtt import InboundMessage
from ingest.triage import Accepted, triage
from ingest.writer import BatchWriter

Db = psycopg.Connection[tuple[Any, ...]]
MIN = timedelta(minutes=1)
T0 = datetime.fromisoformat("2026-11-10T08:00:00+08:00")
DH_R = 83144.0 / 8.314462618  # ΔH / R in kelvin


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def mkt(samples: list[tuple[float, float]]) -> float:
    """Mean kinetic temperature (°C) of (temp_c, weight) pairs, straight from the formula."""
    total = sum(w for _, w in samples)
    mean_k = sum(w * math.exp(-DH_R / (t + 273.15)) for t, w in samples) / total
    return DH_R / -math.log(mean_k) - 273.15


def make_profile(db: Db, min_c: float = 0.0, max_c: float = 4.0, offline_after_s: int = 600) -> str:
    name = uid("prof")
    db.execute(
        "INSERT INTO profiles (name, min_c, max_c, delay_s, hysteresis_c, pre_alarm_margin_c, offline_after_s) "
        "VALUES (%s, %s, %s, 300, 0.5, 0.5, %s)",
        (name, min_c, max_c, offline_after_s),
    )
    return name


def make_sensor(db: Db, profile: str | None) -> str:
    device_id = uid("temp")
    db.execute(
        "INSERT INTO devices (device_id, kind, name, profile) VALUES (%s, 'temp', 'Cold room probe', %s)",
        (device_id, profile),
    )
    return device_id


def insert_readings(db: Db, device_id: str, readings: Sequence[tuple[datetime, float, bool | None]]) -> None:
    """Readings (ts, temp_c, door_open) with seq 1, 2, ... in the given order."""
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO temperatures (ts, device_id, seq, temp_c, rh_pct, door_open) VALUES (%s, %s, %s, %s, 85, %s)",
            [(ts, device_id, seq, temp, door) for seq, (ts, temp, door) in enumerate(readings, start=1)],
        )


def _coldchain(db: Db, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    marks = ", ".join(["%s"] * len(args))
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT * FROM bondwatch_coldchain({marks})", args).fetchall()


def roll(db: Db, device_id: str) -> int:
    """Every hour of the device's readings into the hourly rollup (migration 0007)."""
    row = db.execute("SELECT bondwatch_roll_temperatures('infinity', %s, 1000000)", (device_id,)).fetchone()
    assert row is not None
    return int(row[0])


def unroll(db: Db, device_id: str) -> None:
    db.execute("DELETE FROM temperature_hourly WHERE device_id = %s", (device_id,))
    db.execute("DELETE FROM temperature_rollup WHERE device_id = %s", (device_id,))


def assert_same_rows(raw: list[dict[str, Any]], rolled: list[dict[str, Any]]) -> None:
    assert len(raw) == len(rolled)
    for a, b in zip(raw, rolled, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float) and isinstance(b[key], float):
                assert b[key] == pytest.approx(a[key], rel=1e-9, abs=1e-6), (key, a, b)
            else:
                assert b[key] == a[key], (key, a, b)


def coldchain(
    db: Db, device_id: str, start: datetime, end: datetime, bucket: str = "day", tz: str | None = None
) -> list[dict[str, Any]]:
    """The function's rows from the readings; checked equal to its rows with the device's hours rolled up, so
    every test here holds for both ways the function reads."""
    args: tuple[Any, ...] = (device_id, start, end, bucket) + ((tz,) if tz else ())
    raw = _coldchain(db, args)
    roll(db, device_id)
    try:
        assert_same_rows(raw, _coldchain(db, args))
    finally:
        unroll(db, device_id)
    return raw


def total(db: Db, device_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    rows = coldchain(db, device_id, start, end, "total")
    assert len(rows) == 1
    assert rows[0]["period_start"] == start
    return rows[0]


# ---------------------------------------------------------------- mean kinetic temperature


def test_mkt_of_constant_temperature_is_that_temperature(db: Db) -> None:
    device_id = make_sensor(db, make_profile(db))
    # Uneven spacing: the weights differ, the temperature does not.
    times = [T0, T0 + 5 * MIN, T0 + 7 * MIN, T0 + 15 * MIN, T0 + 25 * MIN]
    insert_readings(db, device_id, [(ts, 4.5, False) for ts in times])
    row = total(db, device_id, T0, T0 + 30 * MIN)
    assert row["readings"] == 5
    assert row["covered_s"] == 1800.0
    assert row["mkt_c"] == pytest.approx(4.5, abs=1e-9)
    assert (row["mean_c"], row["min_c"], row["max_c"]) == (pytest.approx(4.5), 4.5, 4.5)


def test_mkt_of_two_equal_weights_matches_closed_form(db: Db) -> None:
    device_id = make_sensor(db, make_profile(db, min_c=-30.0, max_c=30.0))
    insert_readings(db, device_id, [(T0, 2.0, False), (T0 + 10 * MIN, 12.0, False)])
    row = total(db, device_id, T0, T0 + 20 * MIN)
    assert row["covered_s"] == 1200.0
    t1, t2 = 2.0 + 273.15, 12.0 + 273.15
    expected = DH_R / -math.log((math.exp(-DH_R / t1) + math.exp(-DH_R / t2)) / 2) - 273.15
    assert row["mkt_c"] == pytest.approx(expected, rel=1e-12)
    assert row["mean_c"] == pytest.approx(7.0)
    # MKT weighs warm spells more than the arithmetic mean does.
    assert row["mkt_c"] > row["mean_c"] + 0.5


def test_mkt_and_mean_are_time_weighted(db: Db) -> None:
    device_id = make_sensor(db, make_profile(db, min_c=-30.0, max_c=30.0))
    # -18 °C for 10 min, then -5 °C for 5 min (the window ends).
    insert_readings(db, device_id, [(T0, -18.0, False), (T0 + 10 * MIN, -5.0, False)])
    row = total(db, device_id, T0, T0 + 15 * MIN)
    assert row["covered_s"] == 900.0
    assert row["mean_c"] == pytest.approx((-18.0 * 600 + -5.0 * 300) / 900)
    assert row["mkt_c"] == pytest.approx(mkt([(-18.0, 600), (-5.0, 300)]), rel=1e-12)
    assert row["mkt_c"] != pytest.approx(mkt([(-18.0, 1), (-5.0, 1)]), rel=1e-6)


def test_mkt_of_many_irregular_readings(db: Db) -> None:
    device_id = make_sensor(db, make_profile(db, min_c=-30.0, max_c=30.0, offline_after_s=900))
    temps = [2.0, 3.5, 8.0, 7.25, 4.0, 25.0, 2.5, 3.0]
    gaps_min = [1, 3, 10, 20, 2, 7, 5, 4]  # 20 min is capped to 15 (offline_after_s = 900)
    times = [T0 + sum(gaps_min[:i]) * MIN for i in range(len(temps))]
    insert_readings(db, device_id, [(ts, temp, False) for ts, temp in zip(times, temps, strict=True)])
    end = times[-1] + 4 * MIN
    weights = [min(g, 15) * 60.0 for g in gaps_min]
    row = total(db, device_id, T0, end)
    assert row["covered_s"] == pytest.approx(sum(weights))
    assert row["mkt_c"] == pytest.approx(mkt(list(zip(temps, weights, strict=True))), rel=1e-12)
    mean = sum(t * w for t, w in zip(temps, weights, strict=True)) / sum(weights)
    assert row["mean_c"] == pytest.approx(mean, rel=1e-12)
    assert row["mkt_c"] > mean


# ---------------------------------------------------------------- time weighting


def test_gap_longer_than_cap_counts_the_cap(db: Db) -> None:
    capped = make_sensor(db, make_profile(db, offline_after_s=600))
    unregistered = uid("temp")  # no profile: capped at 600 s as well
    patient = make_sensor(db, make_profile(db, offline_after_s=3600))
    for device_id in (capped, unregistered, patient):
        insert_readings(db, device_id, [(T0, 3.0, False), (T0 + 30 * MIN, 3.0, False)])
    end = T0 + 60 * MIN
    assert total(db, capped, T0, end)["covered_s"] == 600.0 + 600.0
    assert total(db, unregistered, T0, end)["covered_s"] == 600.0 + 600.0
    assert total(db, patient, T0, end)["covered_s"] == 1800.0 + 1800.0


def test_last_reading_counts_up_to_the_window_end(db: Db) -> None:
    device_id = make_sensor(db, make_profile(db))
    insert_readings(db, device_id, [(T0, 3.0, False), (T0 + 2 * MIN, 3.0, False), (T0 + 20 * MIN, 9.0, False)])
    # The 10:02 reading reaches to the window's end (100 s), not to the next reading at 10:20.
    row = total(db, device_id, T0, T0 + 2 * MIN + timedelta(seconds=100))
    assert (row["readings"], row["covered_s"]) == (2, 120.0 + 100.0)
    assert row["max_c"] == 3.0


def test_readings_outside_the_window_do_not_count(db: Db) -> None:
    device_id = make_sensor(db, make_profile(db))
    insert_readings(db, device_id, [(T0 - MIN, 20.0, True), (T0, 3.0, False), (T0 + 10 * MIN, 20.0, True)])
    row = total(db, device_id, T0, T0 + 10 * MIN)
    assert (row["readings"], row["covered_s"], row["max_c"], row["door_open_s"]) == (1, 600.0, 3.0, 0.0)


# ---------------------------------------------------------------- periods


def test_days_are_cut_at_local_midnight(db: Db) -> None:
    device_id = make_sensor(db, make_profile(db))
    # 15:59Z and 16:01Z: one UTC day, two Shanghai days.
    insert_readings(
        db, device_id, [(at("2026-11-20T23:59:00+08:00"), 3.0, False), (at("2026-11-21T00:01:00+08:00"), 5.0, False)]
    )
    start, end = at("2026-11-20T00:00:00+08:00"), at("2026-11-22T00:00:00+08:00")
    rows = coldchain(db, device_id, start, end)
    assert [r["period_start"] for r in rows] == [start, at("2026-11-21T00:00:00+08:00")]
    assert [r["readings"] for r in rows] == [1, 1]
    # The 23:59 reading's two minutes stay in its own day (no splitting at midnight).
    assert [r["covered_s"] for r in rows] == [120.0, 600.0]
    assert [r["mean_c"] for r in rows] == [3.0, 5.0]
    # Cut in UTC instead, both land on the 20th (UTC).
    utc = coldchain(db, device_id, start, end, "day", "UTC")
    assert [(r["period_start"], r["readings"]) for r in utc if r["readings"]] == [(at("2026-11-20T00:00:00Z"), 2)]


def test_every_period_of_the_window_has_a_row(db: Db) -> None:
    device_id = make_sensor(db, make_profile(db))
    insert_readings(
        db,
        device_id,
        [(at("2026-08-31T23:30:00+08:00"), 2.0, True), (at("2026-10-01T00:10:00+08:00"), 6.0, False)],
    )
    start, end = at("2026-08-01T00:00:00+08:00"), at("2026-11-01T00:00:00+08:00")
    rows = coldchain(db, device_id, start, end, "month")
    assert [r["period_start"] for r in rows] == [
        start,
        at("2026-09-01T00:00:00+08:00"),
        at("2026-10-01T00:00:00+08:00"),
    ]
    aug, sep, oct_ = rows
    assert (aug["readings"], aug["covered_s"], aug["door_open_s"], aug["in_range_s"]) == (1, 600.0, 600.0, 600.0)
    assert (sep["readings"], sep["covered_s"], sep["door_open_s"]) == (0, 0.0, 0.0)
    assert (sep["mean_c"], sep["min_c"], sep["mkt_c"], sep["in_range_pct"]) == (None, None, None, None)
    assert (sep["in_range_s"], sep["above_s"], sep["below_s"]) == (0.0, 0.0, 0.0)
    assert (oct_["readings"], oct_["above_s"], oct_["in_range_pct"]) == (1, 600.0, 0.0)

    whole = total(db, device_id, start, end)
    assert (whole["readings"], whole["covered_s"], whole["in_range_pct"]) == (2, 1200.0, 50.0)
    assert whole["mkt_c"] == pytest.approx(mkt([(2.0, 600), (6.0, 600)]), rel=1e-12)


def test_window_not_on_midnight_starts_with_its_calendar_day(db: Db) -> None:
    device_id = make_sensor(db, None)
    start, end = at("2026-11-20T18:00:00+08:00"), at("2026-11-22T00:00:01+08:00")
    rows = coldchain(db, device_id, start, end)
    assert [r["period_start"] for r in rows] == [
        at("2026-11-20T00:00:00+08:00"),
        at("2026-11-21T00:00:00+08:00"),
        at("2026-11-22T00:00:00+08:00"),
    ]
    assert {r["readings"] for r in rows} == {0}
    empty = total(db, device_id, start, end)
    assert (empty["readings"], empty["covered_s"], empty["mkt_c"], empty["in_range_s"]) == (0, 0.0, None, None)


def test_days_in_a_zone_with_daylight_saving(db: Db) -> None:
    device_id = make_sensor(db, None)
    start, end = at("2026-10-24T00:00:00+02:00"), at("2026-10-27T00:00:00+01:00")
    rows = coldchain(db, device_id, start, end, "day", "Europe/Berlin")
    assert [r["period_start"] for r in rows] == [
        start,
        at("2026-10-25T00:00:00+02:00"),
        at("2026-10-26T00:00:00+01:00"),  # the 25th had 25 hours
    ]


# ---------------------------------------------------------------- range and door


def test_seconds_in_above_and_below_the_profile_range(db: Db) -> None:
    device_id = make_sensor(db, make_profile(db, min_c=0.0, max_c=4.0))
    temps = [-1.0, 0.0, 2.0, 4.0, 4.5, 6.0]  # below, in (limit), in, in (limit), above, above
    insert_readings(db, device_id, [(T0 + i * 10 * MIN, t, False) for i, t in enumerate(temps)])
    row = total(db, device_id, T0, T0 + 60 * MIN)
    assert row["covered_s"] == 3600.0
    assert (row["in_range_s"], row["above_s"], row["below_s"]) == (1800.0, 1200.0, 600.0)
    assert row["out_of_range_s"] == 1800.0
    assert row["in_range_pct"] == pytest.approx(50.0)
    assert (row["min_c"], row["max_c"]) == (-1.0, 6.0)


def test_limits_compare_exactly_with_the_stored_reals(db: Db) -> None:
    device_id = make_sensor(db, make_profile(db, min_c=-1.5, max_c=4.1))
    insert_readings(db, device_id, [(T0, 4.1, False), (T0 + 10 * MIN, -1.5, False), (T0 + 20 * MIN, 4.2, False)])
    row = total(db, device_id, T0, T0 + 30 * MIN)
    assert (row["in_range_s"], row["above_s"], row["below_s"]) == (1200.0, 600.0, 0.0)
    assert (row["min_c"], row["max_c"]) == (-1.5, 4.2)  # read at real's precision: 4.2, not 4.199999809265137


def test_door_open_seconds(db: Db) -> None:
    device_id = make_sensor(db, make_profile(db))
    doors = [False, True, True, None, False, True]
    gaps_s = [60, 90, 30, 600, 120, 45]
    times = [T0 + timedelta(seconds=sum(gaps_s[:i])) for i in range(len(doors))]
    insert_readings(db, device_id, [(ts, 3.0, door) for ts, door in zip(times, doors, strict=True)])
    row = total(db, device_id, T0, times[-1] + timedelta(seconds=45))
    assert row["door_open_s"] == 90.0 + 30.0 + 45.0
    assert row["covered_s"] == sum(gaps_s)


def test_device_without_profile_has_no_range_figures(db: Db) -> None:
    registered = make_sensor(db, None)
    heard_only = uid("temp")
    for device_id in (registered, heard_only):
        insert_readings(db, device_id, [(T0, 30.0, True), (T0 + 5 * MIN, -30.0, False)])
        row = total(db, device_id, T0, T0 + 10 * MIN)
        assert (row["readings"], row["covered_s"], row["door_open_s"]) == (2, 600.0, 300.0)
        assert [row[k] for k in ("in_range_s", "above_s", "below_s", "out_of_range_s", "in_range_pct")] == [None] * 5


# ---------------------------------------------------------------- arguments and rights


@pytest.mark.parametrize(
    ("bucket", "end", "tz", "words"),
    [
        ("week", T0 + MIN, "Asia/Shanghai", "bucket must be day, month or total"),
        ("day", T0, "Asia/Shanghai", "must be before"),
        ("day", T0 - MIN, "Asia/Shanghai", "must be before"),
        ("day", T0 + MIN, "Mars/Olympus", "Mars/Olympus"),
    ],
)
def test_bad_arguments_raise(db: Db, bucket: str, end: datetime, tz: str, words: str) -> None:
    with pytest.raises(psycopg.Error, match=words):
        coldchain(db, uid("temp"), T0, end, bucket, tz)


def test_defaults_are_day_and_shanghai(db: Db) -> None:
    device_id = make_sensor(db, make_profile(db))
    insert_readings(db, device_id, [(at("2026-11-20T23:59:00+08:00"), 3.0, False)])
    start, end = at("2026-11-20T00:00:00+08:00"), at("2026-11-22T00:00:00+08:00")
    rows = db.execute("SELECT period_start, readings FROM bondwatch_coldchain(%s, %s, %s)", (device_id, start, end))
    assert rows.fetchall() == [(start, 1), (at("2026-11-21T00:00:00+08:00"), 0)]


def test_services_and_grafana_roles_may_call_it(db: Db, test_env: dict[str, str]) -> None:
    device_id = make_sensor(db, make_profile(db))
    insert_readings(db, device_id, [(T0, 3.0, False)])
    for url in (test_env["BONDWATCH_DB_URL"], test_env["BONDWATCH_DB_READONLY_URL"]):
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT readings, covered_s FROM bondwatch_coldchain(%s, %s, %s, 'total')",
                (device_id, T0, T0 + 10 * MIN),
            ).fetchone()
            assert row == (1, 600.0)


def test_function_is_stable_and_pins_its_search_path(db: Db) -> None:
    row = db.execute("SELECT provolatile, proconfig FROM pg_proc WHERE proname = 'bondwatch_coldchain'").fetchone()
    assert row is not None
    assert row[0] == "s"
    assert "search_path=public, pg_temp" in row[1]


# ---------------------------------------------------------------- the hourly rollup (migration 0007)


def _irregular_readings(rng: random.Random, start: datetime, hours: int) -> list[tuple[datetime, float, bool | None]]:
    """About a reading a minute with jitter, silences longer than the cap, excursions, a door that opens and
    closes (sometimes not reported), and readings that share a timestamp."""
    out: list[tuple[datetime, float, bool | None]] = []
    t, temp, door = start, 2.0, False
    while t < start + timedelta(hours=hours):
        if rng.random() < 0.1:
            door = not door
        temp = min(12.0, max(-3.0, temp + rng.gauss(0, 0.4) + (1.5 if door else -0.1)))
        out.append((t, round(temp, 2), None if rng.random() < 0.05 else door))
        gap = rng.choice([0.0, 20.0, 60.0, 60.0, 60.0, 75.0, 130.0]) if rng.random() > 0.01 else 1500.0
        t += timedelta(seconds=gap)
    return out


def _openings_from_readings(db: Db, device_id: str, start: datetime, end: datetime) -> int:
    """The door openings panel's definition, on the readings alone."""
    row = db.execute(
        """SELECT count(*) FILTER (WHERE x.door_open AND NOT coalesce(x.prev, false))
           FROM (SELECT t.door_open, lag(t.door_open) OVER (ORDER BY t.ts, t.seq) AS prev FROM temperatures t
                 WHERE t.device_id = %s AND t.ts >= %s AND t.ts < %s) AS x""",
        (device_id, start, end),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _openings(db: Db, device_id: str, start: datetime, end: datetime) -> int:
    row = db.execute("SELECT bondwatch_door_openings(%s, %s, %s)", (device_id, start, end)).fetchone()
    assert row is not None
    return int(row[0])


def test_rolled_hours_give_the_figures_of_the_readings(db: Db) -> None:
    rng = random.Random(716)
    device_id = make_sensor(db, make_profile(db, min_c=0.0, max_c=4.0, offline_after_s=600))
    start = at("2026-11-09T21:17:00+08:00")
    insert_readings(db, device_id, _irregular_readings(rng, start, 60))
    windows = []
    for i in range(60):
        a = start - 20 * MIN + timedelta(seconds=rng.randrange(0, 62 * 3600))
        b = a + timedelta(seconds=rng.randrange(60, 40 * 3600))
        if i % 3 == 0:
            a = a.replace(minute=0, second=0)
        if i % 4 == 0:
            b = b.replace(minute=0, second=0)
        if a < b:
            windows.append((a, b, ("day", "total", "month")[i % 3], "Asia/Shanghai" if i % 5 else "Asia/Kolkata"))
    raw = [_coldchain(db, (device_id, a, b, bucket, tz)) for a, b, bucket, tz in windows]
    openings = [_openings_from_readings(db, device_id, a, b) for a, b, _, _ in windows]
    assert [_openings(db, device_id, a, b) for a, b, _, _ in windows] == openings
    assert sum(openings) > 20, "the readings open the door often"
    assert roll(db, device_id) > 50
    for (a, b, bucket, tz), expected, opened in zip(windows, raw, openings, strict=True):
        assert_same_rows(expected, _coldchain(db, (device_id, a, b, bucket, tz)))
        assert _openings(db, device_id, a, b) == opened, (a, b)


def test_rolled_hours_are_what_the_function_reads(db: Db) -> None:
    """A window of whole days reads the rollup's rows, not the readings: a changed row changes the figures."""
    device_id = make_sensor(db, make_profile(db))
    insert_readings(db, device_id, [(T0 + i * MIN, 3.0, False) for i in range(24 * 60)])
    roll(db, device_id)
    window = (device_id, T0, T0 + timedelta(days=1), "total")
    before = _coldchain(db, window)[0]
    db.execute("UPDATE temperature_hourly SET sum_wc = sum_wc + 3600 WHERE device_id = %s", (device_id,))
    after = _coldchain(db, window)[0]
    assert before["mean_c"] == pytest.approx(3.0)
    assert after["mean_c"] == pytest.approx(4.0)


def test_late_readings_through_ingest_are_rolled_again(db: Db, test_env: dict[str, str]) -> None:
    """A reading ingest stores long after its ts marks its hours; the next roll sums them again."""
    site = "s-" + uuid.uuid4().hex[:8]
    device_id = make_sensor(db, make_profile(db, offline_after_s=600))
    insert_readings(db, device_id, [(T0 + i * 2 * MIN, 3.0, False) for i in range(6 * 30)])
    roll(db, device_id)
    late = {"ts": int((T0 + 61 * MIN).timestamp() * 1000), "seq": 10_000, "temp_c": 9.5, "door_open": True}
    message = InboundMessage(f"bw/v1/{site}/temp/{device_id}", json.dumps(late).encode(), 1, 1, time.time(), 0)
    accepted = triage(message, site)
    assert isinstance(accepted, Accepted)
    with psycopg.connect(test_env["BONDWATCH_DB_URL"]) as conn:
        assert BatchWriter(conn).write([accepted], []).stored["temp"] == 1
    assert db.execute("SELECT count(*) FROM temperature_late WHERE device_id = %s", (device_id,)).fetchone() == (1,)
    window = (device_id, T0, T0 + 6 * 60 * MIN, "total")
    stale = _coldchain(db, window)[0]
    roll(db, device_id)
    fresh = _coldchain(db, window)[0]
    unroll(db, device_id)
    assert_same_rows(_coldchain(db, window), [fresh])
    assert fresh["readings"] == stale["readings"] + 1 == 181
    assert fresh["max_c"] == 9.5 and stale["max_c"] == 3.0


def test_a_changed_profile_rolls_the_sensor_again(db: Db) -> None:
    profile = make_profile(db, min_c=0.0, max_c=4.0)
    device_id = make_sensor(db, profile)
    insert_readings(db, device_id, [(T0 + i * MIN, 3.0 + (i % 120) / 60, False) for i in range(6 * 60)])
    window = (device_id, T0, T0 + 6 * 60 * MIN, "total")
    roll(db, device_id)
    db.execute("UPDATE profiles SET max_c = 3.5 WHERE name = %s", (profile,))
    # Until the next roll the hours rolled with the old limits are not used: the figures are the readings'.
    unrolled = _coldchain(db, window)
    roll(db, device_id)
    rolled = _coldchain(db, window)
    unroll(db, device_id)
    assert_same_rows(_coldchain(db, window), unrolled)
    assert_same_rows(unrolled, rolled)
    assert rolled[0]["above_s"] == pytest.approx(267 * 60.0)  # 3.0 + k/60 > 3.5 for k = 31..119 of each 120


def test_many_sensors_in_one_call_are_each_sensor_alone(db: Db) -> None:
    """bondwatch_coldchain_many and bondwatch_door_openings_many (one query for a dashboard of rooms) give each
    sensor the rows of bondwatch_coldchain and bondwatch_door_openings, rolled or not, registered or not."""
    rng = random.Random(7)
    start = at("2026-11-10T06:40:00+08:00")
    rolled, plain = make_sensor(db, make_profile(db)), make_sensor(db, make_profile(db, min_c=-2.0, max_c=2.0))
    heard_only = uid("temp")
    for device_id in (rolled, plain, heard_only):
        insert_readings(db, device_id, _irregular_readings(rng, start, 30))
    roll(db, rolled)
    devices = [rolled, plain, heard_only]
    for a, b, bucket in (
        (start, start + timedelta(hours=30), "day"),
        (start + 25 * MIN, start + 20 * 60 * MIN, "total"),
    ):
        with db.cursor(row_factory=dict_row) as cur:
            many = cur.execute(
                "SELECT * FROM bondwatch_coldchain_many(%s, %s, %s, %s)", (devices, a, b, bucket)
            ).fetchall()
        assert [r["device_id"] for r in many] == sorted(d for d in devices for _ in range(len(many) // 3))
        for device_id in devices:
            alone = _coldchain(db, (device_id, a, b, bucket))
            assert_same_rows(alone, [{k: v for k, v in r.items() if k != "device_id"} for r in many
                                     if r["device_id"] == device_id])  # fmt: skip
        openings = dict(
            db.execute("SELECT * FROM bondwatch_door_openings_many(%s, %s, %s)", (devices, a, b)).fetchall()
        )
        assert openings == {d: _openings_from_readings(db, d, a, b) for d in devices}
    unroll(db, rolled)
