"""position_samples (migration 0009): each truck's last fix of every five minutes, and what reads them.

bondwatch_fleet_usage must give exactly what the fixes alone give, with the samples written or not; late fixes
stored by ingest are sampled again on the next roll.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest.mqtt import InboundMessage
from ingest.triage import Accepted, triage
from ingest.writer import BatchWriter

Db = psycopg.Connection[tuple[Any, ...]]
T0 = datetime.fromisoformat("2026-11-10T05:03:17+08:00")


def _truck(db: Db, fcev: bool) -> tuple[str, str]:
    device_id, vehicle_id = f"gps-{uuid.uuid4().hex[:10]}", f"v-{uuid.uuid4().hex[:10]}"
    db.execute("INSERT INTO devices (device_id, kind, name) VALUES (%s, 'gps', 'terminal')", (device_id,))
    db.execute(
        "INSERT INTO vehicles (vehicle_id, name, plate, device_id) VALUES (%s, 'truck', %s, %s)",
        (vehicle_id, "蒙K" + vehicle_id[-5:], device_id),
    )
    return device_id, vehicle_id


def _drive(db: Db, rng: random.Random, device_id: str, fcev: bool, start: datetime, hours: float) -> None:
    """Fixes every ~10 s with pauses (a parked night), counters that rise and once reset (a new terminal)."""
    rows, t, seq, odo, kwh, h2, soc = [], start, 0, 1000.0, 50.0, 3.0, 80.0
    while t < start + timedelta(hours=hours):
        seq += 1
        step = rng.uniform(0, 0.3)
        odo, soc = odo + step, max(5.0, soc - step * 0.2)
        kwh, h2 = (kwh, h2 + step * 0.08) if fcev else (kwh + step * 1.3, h2)
        if seq == 900:
            odo = 3.0  # a replaced terminal starts again from a low odometer
        rows.append((t, device_id, seq, 39.5, 109.9, "3d", soc, None if fcev else kwh, h2 if fcev else None, odo))
        t += timedelta(seconds=rng.choice([10, 10, 10, 11, 9, 300, 10])) if rng.random() > 0.002 else timedelta(hours=3)
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO positions (ts, device_id, seq, lat, lon, fix, soc_pct, energy_kwh, h2_kg, odometer_km) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


def _usage(db: Db, vehicles: list[str], a: datetime, b: datetime, bucket: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT * FROM bondwatch_fleet_usage(%s, %s, %s) WHERE vehicle_id = ANY(%s)", (a, b, bucket, vehicles)
    ).fetchall()


def _roll(db: Db, device_id: str, upto: datetime) -> int:
    row = db.execute("SELECT bondwatch_roll_positions(%s, %s, 100000)", (upto, device_id)).fetchone()
    assert row is not None
    return int(row[0])


def _unroll(db: Db, devices: list[str]) -> None:
    db.execute("DELETE FROM position_samples WHERE device_id = ANY(%s)", (devices,))
    db.execute("DELETE FROM position_rollup WHERE device_id = ANY(%s)", (devices,))


def test_usage_from_samples_is_usage_from_fixes(db: Db) -> None:
    rng = random.Random(9)
    trucks = [_truck(db, fcev) for fcev in (False, True)]
    for (device_id, _), fcev in zip(trucks, (False, True), strict=True):
        _drive(db, rng, device_id, fcev, T0, 30)
    devices, vehicles = [d for d, _ in trucks], [v for _, v in trucks]
    windows = []
    for i in range(16):
        a = T0 - timedelta(hours=1) + timedelta(seconds=rng.randrange(0, 30 * 3600))
        b = a + timedelta(seconds=rng.randrange(300, 20 * 3600))
        if i % 2:
            a, b = a.replace(minute=0, second=0), b.replace(minute=0, second=0) + timedelta(hours=1)
        windows.append((a, b, ("hour", "day", "total")[i % 3]))
    from_fixes = [_usage(db, vehicles, *w) for w in windows]
    assert sum(len(r) for r in from_fixes) > 40
    # Up to 20 h after T0: later windows read samples where written and fixes after them.
    assert sum(_roll(db, d, T0 + timedelta(hours=20)) for d in devices) > 300
    try:
        for w, expected in zip(windows, from_fixes, strict=True):
            assert _usage(db, vehicles, *w) == expected, w
    finally:
        _unroll(db, devices)


def test_a_sample_is_the_last_fix_of_its_five_minutes(db: Db) -> None:
    device_id, _ = _truck(db, False)
    _drive(db, random.Random(3), device_id, False, T0, 3)
    _roll(db, device_id, T0 + timedelta(hours=4))
    try:
        mismatches = db.execute(
            """SELECT count(*) FROM position_samples s
               FULL JOIN (
                   SELECT DISTINCT ON (1) time_bucket('5 minutes', ts - interval '1 microsecond')
                          + interval '5 minutes' AS at, ts, soc_pct
                   FROM positions WHERE device_id = %(d)s ORDER BY 1, ts DESC, seq DESC
               ) x ON x.at = s.at AND s.device_id = %(d)s
               WHERE (s.device_id = %(d)s OR s.device_id IS NULL)
                 AND (s.at IS NULL OR x.at IS NULL OR s.ts <> x.ts OR s.soc_pct <> x.soc_pct)""",
            {"d": device_id},
        ).fetchone()
        assert mismatches == (0,)
    finally:
        _unroll(db, [device_id])


def test_late_fixes_through_ingest_are_sampled_again(db: Db, test_env: dict[str, str]) -> None:
    site = "s-" + uuid.uuid4().hex[:8]
    device_id, vehicle_id = _truck(db, False)
    _drive(db, random.Random(5), device_id, False, T0, 2)
    _roll(db, device_id, T0 + timedelta(hours=3))
    # A fix from a backlog, after every other, with a much higher odometer: the last hour's usage grows.
    last = db.execute("SELECT max(ts), max(seq) FROM positions WHERE device_id = %s", (device_id,)).fetchone()
    assert last is not None
    late_ts = last[0] + timedelta(seconds=5)
    fix = {"ts": int(late_ts.timestamp() * 1000), "seq": last[1] + 1, "lat": 39.5, "lon": 109.9, "fix": "3d",
           "odometer_km": 99_999.0, "soc_pct": 50.0, "energy_kwh": 5_000.0}  # fmt: skip
    message = InboundMessage(f"bw/v1/{site}/gps/{device_id}", json.dumps(fix).encode(), 1, 1, time.time(), 0)
    accepted = triage(message, site)
    assert isinstance(accepted, Accepted)
    with psycopg.connect(test_env["BONDWATCH_DB_URL"]) as conn:
        assert BatchWriter(conn).write([accepted], []).stored["gps"] == 1
    # A window that ends on a five-minute boundary the samples cover: its end is read from the samples.
    end = late_ts.replace(second=0, microsecond=0) + timedelta(minutes=5 - late_ts.minute % 5)
    window = (T0, end, "total")
    stale = _usage(db, [vehicle_id], *window)
    _roll(db, device_id, T0 + timedelta(hours=3))
    fresh = _usage(db, [vehicle_id], *window)
    _unroll(db, [device_id])
    assert fresh == _usage(db, [vehicle_id], *window)
    assert fresh != stale
    assert fresh[0][4] == pytest.approx(stale[0][4] + 99_999.0 - float(
        db.execute("SELECT odometer_km FROM positions WHERE device_id = %s AND ts < %s ORDER BY ts DESC LIMIT 1",
                   (device_id, late_ts)).fetchone()[0]  # type: ignore[index]
    ))  # fmt: skip
