"""The SQL the dashboards share (migration 0006_dashboards.sql): each rule on rows made for it.

Run in a transaction on the seeded database that is rolled back, at a moment (2020) the history does not
touch, so the seeded data neither interferes nor changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from simulators.geography import GATES, PLACES
from tests.dashboards.support import SeededDb

AT = datetime(2020, 1, 1, 4, 0, tzinfo=UTC)


@pytest.fixture
def tx(seeded_db: SeededDb) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(seeded_db.admin_url) as conn:
        yield conn
        conn.rollback()


Fix = tuple[float, tuple[float, float], float, float]


def _truck(conn: psycopg.Connection[tuple[Any, ...]], n: int, fixes: list[Fix]) -> str:
    """A vehicle with fixes (seconds before AT, (lon, lat), speed, soc)."""
    vid = f"t-state-{n}"
    conn.execute(
        "INSERT INTO vehicles (vehicle_id, name, plate, device_id) VALUES (%s, %s, %s, %s)",
        (vid, vid, f"TEST{n}", f"gps-{vid}"),
    )
    for i, (before_s, (lon, lat), speed, soc) in enumerate(fixes):
        conn.execute(
            "INSERT INTO positions (ts, device_id, seq, lat, lon, fix, speed_kmh, soc_pct, energy_kwh, odometer_km)"
            " VALUES (%s, %s, %s, %s, %s, '3d', %s, %s, %s, %s)",
            (AT - timedelta(seconds=before_s), f"gps-{vid}", i, lat, lon, speed, soc, 100.0 + i, 1000.0 + i),
        )
    return vid


def test_fleet_state_rules(tx: psycopg.Connection[tuple[Any, ...]]) -> None:
    depot, bay, gate = PLACES["depot"].point, PLACES["bay-a"].point, GATES["gate-n1"].centre
    avenue = (109.8850, 39.5200)
    moving = _truck(tx, 1, [(30, avenue, 25.0, 60.0)])
    at_depot = _truck(tx, 2, [(30, depot, 0.0, 50.0)])
    at_gate = _truck(tx, 3, [(30, gate, 0.0, 70.0)])
    stopped = _truck(tx, 4, [(30, bay, 0.0, 70.0)])
    # Standing at a bay with the charge rising by 3 points in 5 minutes: a charger outside the depot.
    charging_elsewhere = _truck(tx, 5, [(330, bay, 0.0, 40.0), (30, bay, 0.0, 43.0)])
    with_alert = _truck(tx, 6, [(30, gate, 0.0, 70.0)])  # an alert outranks being at a gate
    read_at_gate = _truck(tx, 7, [(30, avenue, 30.0, 70.0)])  # moving, but a reader saw it a minute ago
    stale = _truck(tx, 8, [(2 * 86400, avenue, 30.0, 70.0)])  # no fix within a day: not on the map
    tx.execute(
        "INSERT INTO alerts (type, severity, status, subject_kind, subject_id, opened_at, updated_at)"
        " VALUES ('low_soc', 'warning', 'active', 'vehicle', %s, %s, %s)",
        (with_alert, AT - timedelta(minutes=10), AT),
    )
    tx.execute(
        "INSERT INTO alerts (type, severity, status, subject_kind, subject_id, opened_at, updated_at, cleared_at)"
        " VALUES ('gps_lost', 'minor', 'cleared', 'vehicle', %s, %s, %s, %s)",
        (moving, AT - timedelta(hours=2), AT, AT - timedelta(hours=1)),  # cleared before AT: no longer counts
    )
    tx.execute(
        "INSERT INTO gate_passages (id, site, gate_id, direction, vehicle_id, epcs, cargo_epcs, reads, readers,"
        " first_read_at, last_read_at, decision) VALUES ('p-test', 's', 'gate-e1', 'out', %s, '{}', '{}', 1,"
        " '{}', %s, %s, 'pass')",
        (read_at_gate, AT - timedelta(seconds=60), AT - timedelta(seconds=55)),
    )
    rows = tx.execute(
        "SELECT vehicle_id, state, state_code, gate_id, open_alerts FROM bondwatch_fleet_state(%s)", (AT,)
    ).fetchall()
    got = {r[0]: r[1:] for r in rows}
    assert got == {
        moving: ("moving", 0, None, 0),
        at_depot: ("charging", 2, None, 0),
        at_gate: ("at_gate", 1, "gate-n1", 0),
        stopped: ("stopped", 4, None, 0),
        charging_elsewhere: ("charging", 2, None, 0),
        with_alert: ("alert", 3, "gate-n1", 1),
        read_at_gate: ("at_gate", 1, "gate-e1", 0),
    }
    assert stale not in got


def test_fleet_usage_adds_up(tx: psycopg.Connection[tuple[Any, ...]], seeded_db: SeededDb) -> None:
    """Per-hour deltas sum to the whole window's, and to the counters' own span."""
    args = (seeded_db.start, seeded_db.end)
    hourly = tx.execute("SELECT sum(km), sum(kwh), sum(h2_kg) FROM bondwatch_fleet_usage(%s, %s, 'hour')", args)
    total = tx.execute("SELECT sum(km), sum(kwh), sum(h2_kg) FROM bondwatch_fleet_usage(%s, %s, 'total')", args)
    a, b = hourly.fetchone(), total.fetchone()
    assert a and b and b[0] > 0
    assert a == pytest.approx(b)
    span = tx.execute(
        "SELECT sum(d) FROM (SELECT max(odometer_km) - min(odometer_km) AS d FROM positions"
        " WHERE ts >= %s AND ts <= %s GROUP BY device_id) s",
        args,
    ).fetchone()
    assert span and b[0] == pytest.approx(span[0], rel=1e-6)
    kinds = dict(tx.execute("SELECT powertrain, count(*) FROM bondwatch_fleet_usage(%s, %s, 'total') GROUP BY 1", args))
    assert set(kinds) == {"bev", "fcev"}
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        tx.execute("SELECT * FROM bondwatch_fleet_usage(%s, %s, 'week')", args)


def test_geometry_helpers(tx: psycopg.Connection[tuple[Any, ...]]) -> None:
    inside = tx.execute(
        "SELECT id FROM geofences WHERE bondwatch_fence_contains(feature, %s, %s) ORDER BY id", PLACES["depot"].point
    ).fetchall()
    assert [r[0] for r in inside] == ["ordos-czb-boundary", "zone-depot"]
    # The service area is a hole of the bonded boundary: inside the zone polygon, outside the boundary.
    hole = tx.execute("SELECT id FROM geofences WHERE bondwatch_fence_contains(feature, 109.874, 39.526)").fetchall()
    assert [r[0] for r in hole] == ["zone-service-area"]
    centre = tx.execute(
        "SELECT bondwatch_fence_centre_lon(feature), bondwatch_fence_centre_lat(feature) FROM geofences"
        " WHERE id = 'gate-n1'"
    ).fetchone()
    assert centre == pytest.approx(GATES["gate-n1"].centre, abs=1e-6)
    # Outline points: every fence, in order, at most the spacing apart (15 m; corridors 40 m).
    gaps = tx.execute(
        "SELECT kind, max(bondwatch_distance_m(lat, lon, plat, plon)) FROM ("
        " SELECT kind, lat, lon, lag(lat) OVER w AS plat, lag(lon) OVER w AS plon"
        " FROM bondwatch_geofence_outline() WINDOW w AS (PARTITION BY fence_id, part ORDER BY seq)) s"
        " WHERE plat IS NOT NULL GROUP BY kind"
    ).fetchall()
    assert {k: g <= (40.01 if k == "corridor" else 15.01) for k, g in gaps} == {
        "bonded_boundary": True,
        "zone": True,
        "gate": True,
        "corridor": True,
    }
    every = tx.execute(
        "SELECT count(DISTINCT fence_id) = (SELECT count(*) FROM geofences) FROM bondwatch_geofence_outline()"
    )
    assert every.fetchone() == (True,)
