"""A day of history in the test database: readings at their cadence, the latest state, gate decisions that agree
with the registry, alerts with their dispatchers, two prefixes side by side, and the same readings for one seed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row
from pydantic import BaseModel
from typer.testing import CliRunner

from bondwatch.cli import app
from bondwatch.contract.payloads import GpsReading, RfidReading, TempReading
from bondwatch.geofence import parse_feature
from rules.fences import FenceSet
from simulators.geography import geofence_features
from simulators.history import HistoryError, HistorySummary, _CoveredFences, _maker, previous_month_start, seed_history
from simulators.scenario import prefixed_epc

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 7, 1, tzinfo=ZONE)  # summer: a failed compressor shows within the hour
END = START + timedelta(days=1)
SITE = "t-history"
PREFIXES = ("h1-", "h2-")
TRUCKS, ROOMS = 3, 3
PER_DAY = 1440  # one reading a minute


@pytest.fixture(scope="module")
def seeded(test_env: dict[str, str]) -> dict[str, HistorySummary]:
    url = test_env["BONDWATCH_DB_URL"]
    return {p: seed_history(url, SITE, START, 1, trucks=TRUCKS, rooms=ROOMS, seed=716, prefix=p) for p in PREFIXES}


@pytest.fixture
def conn(test_env: dict[str, str]) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(test_env["BONDWATCH_DB_URL"], autocommit=True) as c:
        c.execute("SET TimeZone = 'Asia/Shanghai'")
        yield c


def rows(conn: psycopg.Connection[tuple[Any, ...]], query: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


@pytest.mark.parametrize("table", ["positions", "temperatures", "rfid_reads"])
def test_readings_at_their_cadence_with_gap_free_seq(
    seeded: dict[str, HistorySummary], conn: psycopg.Connection[tuple[Any, ...]], table: str
) -> None:
    per_device = rows(
        conn,
        f"SELECT device_id, count(*), count(DISTINCT seq), min(seq), max(seq), min(ts), max(ts) FROM {table} "
        "WHERE device_id LIKE 'h1-%%' GROUP BY device_id ORDER BY device_id",
    )
    expected = {"positions": TRUCKS, "temperatures": ROOMS, "rfid_reads": None}[table]
    if expected is not None:
        assert len(per_device) == expected
    assert per_device, f"no {table} of the history"
    for device, n, distinct, lo, hi, first, last in per_device:
        assert (distinct, lo, hi) == (n, 0, n - 1), f"{device}: seq not 0..{n - 1} without gaps"
        assert first >= START and last < END, device
        if expected is not None:
            assert abs(n - PER_DAY) <= 1, f"{device}: {n} readings in a day at one a minute"
    total = sum(r[1] for r in per_device)
    summary = seeded["h1-"]
    assert total == {"positions": summary.positions, "temperatures": summary.temperatures}.get(
        table, summary.rfid_reads
    )


def test_received_a_moment_after_ts(
    seeded: dict[str, HistorySummary], conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    for table in ("positions", "temperatures", "rfid_reads"):
        lo, hi = rows(
            conn,
            f"SELECT min(extract(epoch FROM received_at - ts)), max(extract(epoch FROM received_at - ts)) "
            f"FROM {table} WHERE device_id LIKE 'h1-%%'",
        )[0]
        assert lo > 0 and hi < 30, table


def test_device_latest_is_the_last_reading(
    seeded: dict[str, HistorySummary], conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    checks = {
        "gps": "SELECT ts, seq, received_at, lat::text FROM positions",
        "temp": "SELECT ts, seq, received_at, temp_c::text FROM temperatures",
        "rfid": "SELECT ts, seq, received_at, epc FROM rfid_reads",
    }
    field = {"gps": "lat", "temp": "temp_c", "rfid": "epc"}
    latest = rows(
        conn, "SELECT device_id, kind, ts, seq, received_at, reading FROM device_latest WHERE device_id LIKE 'h1-%%'"
    )
    assert {kind for _, kind, *_ in latest} == {"gps", "temp", "rfid"}
    assert len([r for r in latest if r[1] != "rfid"]) == TRUCKS + ROOMS
    for device, kind, ts, seq, received, reading in latest:
        last = rows(conn, checks[kind] + " WHERE device_id = %s ORDER BY ts DESC, seq DESC LIMIT 1", device)[0]
        assert (ts, seq, received) == last[:3], device
        assert str(reading[field[kind]]) == str(last[3]) or float(reading[field[kind]]) == pytest.approx(float(last[3]))
        assert reading["seq"] == seq


def test_passages_decided_as_the_registry_says(
    seeded: dict[str, HistorySummary], conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    passages = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT p.*, v.tag_epc, n.vehicle_id AS note_vehicle, n.epcs AS note_epcs, n.used_passage_id, n.used_at "
            "FROM gate_passages p LEFT JOIN vehicles v ON v.vehicle_id = p.vehicle_id "
            "LEFT JOIN release_notes n ON n.id = p.release_note_id "
            "WHERE p.readers && ARRAY['h1-rdr-gate-n1', 'h1-rdr-gate-e1', 'h1-rdr-gate-s1']"
        )
        .fetchall()
    )
    assert len(passages) == seeded["h1-"].passages
    assert {"pass", "hold", None} <= {p["decision"] for p in passages}, "passes, holds and inbound passages"
    vehicle_tags = dict(rows(conn, "SELECT tag_epc, vehicle_id FROM vehicles WHERE vehicle_id LIKE 'h1-%%'"))
    for p in passages:
        read = {vehicle_tags[e] for e in p["epcs"] if e in vehicle_tags}
        if p["vehicle_id"] is None:  # two trucks in the portal at once: the engine cannot say which one leaves
            assert len(read) > 1, p["id"]
        else:
            assert read == {p["vehicle_id"]} and p["vehicle_epc"] == p["tag_epc"], p["id"]
        assert START <= p["first_read_at"] <= p["last_read_at"] < END
        assert p["last_read_at"] <= p["decided_at"] <= p["first_read_at"] + timedelta(seconds=11), p["id"]
        if p["direction"] == "in":
            assert p["decision"] is None and p["published_at"] is None
            continue
        assert p["decision"] in ("pass", "hold") and p["published_at"] >= p["decided_at"]
        if p["decision"] == "pass":
            assert p["note_vehicle"] == p["vehicle_id"] and set(p["cargo_epcs"]) <= set(p["note_epcs"]), p["id"]
            assert (p["used_passage_id"], p["used_at"]) == (p["id"], p["decided_at"])
        else:
            assert p["reasons"], p["id"]
    unregistered = rows(
        conn,
        "SELECT DISTINCT r.epc FROM rfid_reads r LEFT JOIN tags t ON t.epc = r.epc "
        "WHERE r.device_id LIKE 'h1-%%' AND t.epc IS NULL",
    )
    assert unregistered == []


def test_alerts_with_dispatchers_and_every_event_published(
    seeded: dict[str, HistorySummary], conn: psycopg.Connection[tuple[Any, ...]]
) -> None:
    cur = conn.cursor(row_factory=dict_row)
    alerts = cur.execute(
        "SELECT *, greatest(opened_at, cleared_at, acked_at, resolved_at, escalated_at) AS last_change "
        "FROM alerts WHERE subject_id LIKE 'h1-%%' ORDER BY id"
    ).fetchall()
    assert alerts and len(alerts) == seeded["h1-"].alerts
    assert {a["type"] for a in alerts} >= {"temp_excursion", "gate_hold"}
    assert any(a["acked_by"] for a in alerts), "some alerts were acknowledged"
    assert any(a["resolved_by"] for a in alerts), "some were resolved by a person"
    for a in alerts:
        opened, acked, resolved = a["opened_at"], a["acked_at"], a["resolved_at"]
        assert START <= opened < END and a["raised_at"] == opened, a["id"]
        assert a["updated_at"] >= a["last_change"], a["id"]
        assert (a["acked_by"] is None) == (acked is None) and (acked is None or acked > opened), a["id"]
        assert resolved is None or (resolved > opened and a["cleared_at"] == resolved and a["status"] == "cleared")
        assert a["cleared_at"] is None or a["cleared_at"] >= opened, a["id"]
        events = cur.execute("SELECT * FROM alert_events WHERE alert_id = %s ORDER BY id", (a["id"],)).fetchall()
        assert events[0]["event"] == "opened" and events[0]["at"] == opened, a["id"]
        assert [e["at"] for e in events] == sorted(e["at"] for e in events), f"alert {a['id']}: events out of order"
        for e in events:
            assert e["published_at"] is not None and e["published_at"] >= e["at"], (a["id"], e["event"])
            assert datetime.fromisoformat(e["alert"]["raised_at"]) == opened
            assert datetime.fromisoformat(e["alert"]["updated_at"]) == e["at"], (a["id"], e["event"])
            if e["event"] == "acknowledged":
                assert (e["actor"], e["at"]) == (a["acked_by"], acked)
            if e["event"] == "resolved":
                assert (e["actor"], e["at"]) == (a["resolved_by"], resolved)


def test_a_second_prefix_beside_the_first(
    seeded: dict[str, HistorySummary], conn: psycopg.Connection[tuple[Any, ...]], test_env: dict[str, str]
) -> None:
    one, two = seeded["h1-"], seeded["h2-"]
    assert (one.positions, one.temperatures, one.rfid_reads) == (two.positions, two.temperatures, two.rfid_reads)
    assert two.passages == one.passages and two.alerts > 0
    vehicles = dict(rows(conn, "SELECT vehicle_id, tag_epc FROM vehicles WHERE vehicle_id LIKE 'h_-trk-%%'"))
    for n in range(1, TRUCKS + 1):
        assert vehicles[f"h1-trk-{n:02d}"] != vehicles[f"h2-trk-{n:02d}"]
    standard = [f["id"] for f in geofence_features()]
    assert rows(conn, "SELECT count(*) FROM geofences WHERE id = ANY(%s)", standard)[0][0] == len(standard)
    with pytest.raises(HistoryError, match="already have readings"):
        seed_history(
            test_env["BONDWATCH_DB_URL"], SITE, START + timedelta(hours=12), 1, trucks=TRUCKS, rooms=ROOMS, prefix="h1-"
        )


def test_same_seed_same_readings(seeded: dict[str, HistorySummary], conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    def of(prefix: str, query: str) -> list[tuple[Any, ...]]:
        return rows(conn, query, f"{prefix}%")

    gps = (
        "SELECT substr(device_id, 4), seq, ts, received_at, lat, lon, fix, speed_kmh, soc_pct, energy_kwh, h2_kg, "
        "odometer_km FROM positions WHERE device_id LIKE %s ORDER BY 1, 2"
    )
    temp = (
        "SELECT substr(device_id, 4), seq, ts, received_at, temp_c, rh_pct, door_open, battery_v "
        "FROM temperatures WHERE device_id LIKE %s ORDER BY 1, 2"
    )
    assert of("h1-", gps) == of("h2-", gps)
    assert of("h1-", temp) == of("h2-", temp)
    rfid = (
        "SELECT substr(device_id, 4), seq, ts, epc, antenna, rssi_dbm, gate_id, direction FROM rfid_reads "
        "WHERE device_id LIKE %s ORDER BY 1, 2"
    )
    one, two = of("h1-", rfid), of("h2-", rfid)
    assert len(one) == len(two)
    # Reads a few milliseconds apart (passage ids differ), tags with each prefix's serials, the rest the same.
    shifts = {b[2] - a[2] for a, b in zip(one, two, strict=True)}
    assert len(shifts) == 1 and abs(shifts.pop()) < timedelta(seconds=1)
    for a, b in zip(one, two, strict=True):
        assert prefixed_epc(prefixed_epc(a[3], "h1-"), "h2-") == b[3]
        assert a[:2] + a[4:] == b[:2] + b[4:]


def test_refuses_what_it_cannot_do(test_env: dict[str, str]) -> None:
    url = test_env["BONDWATCH_DB_URL"]
    with pytest.raises(HistoryError, match="aware"):
        seed_history(url, SITE, datetime(2026, 7, 1), 1)
    with pytest.raises(HistoryError, match="rooms"):
        seed_history(url, SITE, START, 1, rooms=13)
    with pytest.raises(HistoryError, match="prefix"):
        seed_history(url, SITE, START, 1, prefix="h 1")
    assert previous_month_start(date(2026, 1, 15)) == datetime(2025, 12, 1, tzinfo=ZONE)


def test_command_prints_the_summary(test_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        app,
        ["simulate", "history", "--start", "2026-08-01", "--days", "0.1", "--trucks", "1", "--rooms", "1",
         "--prefix", "cli-"],
        env={"BONDWATCH_SITE": SITE},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "定位 positions" in result.output and "2026-08-01 00:00" in result.output


def test_covered_fences_answer_as_the_overlay() -> None:
    fences = [parse_feature(f, f["id"]) for f in geofence_features()]
    exact, fast = FenceSet(fences), _CoveredFences(fences)
    assert exact.boundary is not None
    rng = np.random.default_rng(716)
    minx, miny, maxx, maxy = exact.boundary.bounds
    n = 800
    x0, y0 = rng.uniform(minx - 300, maxx + 300, n), rng.uniform(miny - 300, maxy + 300, n)
    step = np.where(rng.random(n) < 0.5, rng.uniform(0, 60, n), rng.uniform(0, 1500, n))
    angle = rng.uniform(0, 2 * np.pi, n)
    x1, y1 = x0 + step * np.cos(angle), y0 + step * np.sin(angle)
    for i in range(n):
        assert fast.segment_outside_m(x0[i], y0[i], x1[i], y1[i]) == pytest.approx(
            exact.segment_outside_m(x0[i], y0[i], x1[i], y1[i]), abs=1e-6
        )


def test_readings_made_for_the_engine_are_what_validation_makes() -> None:
    at = START.astimezone(ZoneInfo("UTC"))
    samples: list[tuple[type[BaseModel], dict[str, Any]]] = [
        (GpsReading, {"ts": at, "seq": 3, "lat": 39.52, "lon": 109.88, "fix": "none", "speed_kmh": None,
                      "heading_deg": None, "hdop": None, "sats": 2, "soc_pct": 55.5, "energy_kwh": None,
                      "h2_kg": 812.125, "odometer_km": 45012.5}),
        (TempReading, {"ts": at, "seq": 0, "temp_c": -21.4, "rh_pct": 84.0, "door_open": True, "battery_v": 3.52}),
        (RfidReading, {"ts": at, "seq": 9, "epc": "3035A9757061AFC5A7998E9F", "antenna": 2, "rssi_dbm": -61.5,
                       "gate_id": "gate-n1", "direction": "out"}),
    ]  # fmt: skip
    for cls, values in samples:
        made = _maker(cls)(dict(values))
        assert isinstance(made, cls)
        wire = {**values, "ts": at.isoformat()}  # as a device sends it
        assert made.model_dump(mode="json") == cls.model_validate(wire).model_dump(mode="json")
