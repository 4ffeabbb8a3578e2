"""The report's figures for a seeded month against independent computations on the same rows (Python over the
raw readings, alerts and passages; not the report's own SQL)."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from reports.monthly import COUNTERS, gather
from reports.period import Month
from reports.settings import ReportSettings
from tests.reports.conftest import AFTER, MONTH, SITE

DB = psycopg.Connection[tuple[Any, ...]]
DH_R = 83144.0 / 8.314462618


def _window(settings: ReportSettings) -> tuple[datetime, datetime]:
    return MONTH.start(settings.zone), MONTH.end(settings.zone)


def test_period_is_the_local_month(month_report: dict[str, Any], db: DB, report_settings: ReportSettings) -> None:
    lo, hi = _window(report_settings)
    # The history goes on into April: those readings exist, and the report leaves them out.
    after = db.execute("SELECT count(*) FROM temperatures WHERE ts >= %s", (hi,)).fetchone()
    assert after is not None and after[0] > 0
    in_month = db.execute("SELECT count(*) FROM temperatures WHERE ts >= %s AND ts < %s", (lo, hi)).fetchone()
    assert in_month is not None
    assert sum(r["readings"] for r in month_report["coldchain"]["rooms"]) == in_month[0]
    period = month_report["period"]
    assert month_report["month"] == "2025-03"
    assert period["from"] == "2025-03-01T00:00:00+08:00"
    assert period["to"] == "2025-04-01T00:00:00+08:00"
    assert period["complete"] is True
    assert period["seconds"] == 31 * 86400
    assert [d["date"] for d in month_report["coldchain"]["daily"]] == [f"2025-03-{d:02d}" for d in range(1, 32)]
    assert month_report["site"]["id"] == SITE
    assert month_report["site"]["name_zh"] == "鄂尔多斯综合保税区"


def test_rooms_time_in_range_and_mkt(month_report: dict[str, Any], db: DB, report_settings: ReportSettings) -> None:
    lo, hi = _window(report_settings)
    rooms = {r["device_id"]: r for r in month_report["coldchain"]["rooms"]}
    assert len([r for r in rooms.values() if r["profile"]]) >= 12
    total_in = total_cov = 0.0
    for dev, room in rooms.items():
        prof = db.execute(
            "SELECT p.min_c, p.max_c, p.offline_after_s FROM devices d JOIN profiles p ON p.name = d.profile "
            "WHERE d.device_id = %s",
            (dev,),
        ).fetchone()
        rows = db.execute(
            "SELECT ts, temp_c FROM temperatures WHERE device_id = %s AND ts >= %s AND ts < %s ORDER BY ts, seq",
            (dev, lo, hi),
        ).fetchall()
        assert room["readings"] == len(rows)
        if prof is None or not rows:
            continue
        lo_c, hi_c, cap = prof
        weights = [
            min((nxt[0] if nxt else hi) - ts, timedelta(seconds=cap)).total_seconds()
            for (ts, _), nxt in zip(rows, [*rows[1:], None], strict=True)
        ]
        covered = sum(weights)
        inside = sum(w for w, (_, t) in zip(weights, rows, strict=True) if lo_c <= t <= hi_c)
        temps = [round(t * 1e5) / 1e5 for _, t in rows]
        mkt = (
            DH_R
            / -math.log(sum(w * math.exp(-DH_R / (t + 273.15)) for w, t in zip(weights, temps, strict=True)) / covered)
            - 273.15
        )
        assert room["covered_s"] == pytest.approx(covered, abs=0.1)
        assert room["in_range_pct"] == pytest.approx(100 * inside / covered, abs=1e-3)
        assert room["mkt_c"] == pytest.approx(mkt, abs=0.01)
        assert room["lowest_c"] == pytest.approx(min(temps), abs=0.01)
        assert room["highest_c"] == pytest.approx(max(temps), abs=0.01)
        total_in += inside
        total_cov += covered
    assert month_report["coldchain"]["in_range_pct"] == pytest.approx(100 * total_in / total_cov, abs=1e-3)
    assert month_report["summary"]["in_range_pct"] == month_report["coldchain"]["in_range_pct"]


def test_daily_compliance_adds_up(month_report: dict[str, Any]) -> None:
    """Every day's site figure lies between its rooms' worst and best, and days without data are None."""
    for day in month_report["coldchain"]["daily"]:
        values = [v for v in day["rooms"].values() if v is not None]
        if values:
            assert min(values) - 1e-6 <= day["in_range_pct"] <= max(values) + 1e-6
        else:
            assert day["in_range_pct"] is None


def test_excursions_are_the_temp_excursion_alerts(
    month_report: dict[str, Any], db: DB, report_settings: ReportSettings
) -> None:
    lo, hi = _window(report_settings)
    rooms = {r["device_id"] for r in month_report["coldchain"]["rooms"]}
    expected = {}
    for alert_id, subject, opened, cleared, details in db.execute(
        "SELECT id, subject_id, opened_at, cleared_at, details FROM alerts WHERE type = 'temp_excursion'"
    ).fetchall():
        start = datetime.fromisoformat(details["started_at"]) if details.get("started_at") else opened
        if subject in rooms and start < hi and (cleared is None or cleared >= lo):
            expected[alert_id] = (details.get("peak_c"), details.get("duration_s"), start)
    got = {e["alert_id"]: e for e in month_report["coldchain"]["excursions"]}
    assert set(got) == set(expected)
    for alert_id, (peak, duration, start) in expected.items():
        e = got[alert_id]
        if peak is not None:
            assert e["peak_c"] == pytest.approx(peak, abs=0.01)
        if duration is not None:
            assert e["duration_s"] == pytest.approx(duration, abs=0.1)
        assert datetime.fromisoformat(e["started_at"]) == start
    per_room = Counter(e["device_id"] for e in got.values())
    for room in month_report["coldchain"]["rooms"]:
        assert room["excursions"] == per_room[room["device_id"]]


def test_alerts_by_type_severity_and_response_times(
    month_report: dict[str, Any], db: DB, report_settings: ReportSettings
) -> None:
    lo, hi = _window(report_settings)
    rows = db.execute(
        "SELECT a.type, a.severity, a.raised_at, a.opened_at, a.acked_at, a.cleared_at FROM alerts a "
        "WHERE a.opened_at >= %s AND a.opened_at < %s "
        "AND NOT EXISTS (SELECT 1 FROM alert_events e WHERE e.alert_id = a.id AND e.site <> %s)",
        (lo, hi, SITE),
    ).fetchall()
    assert rows, "the seeded month has alerts"
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        groups[(row[0], row[1])].append(row)
    got = {(a["type"], a["severity"]): a for a in month_report["alerts"]["by_type"]}
    assert set(got) == set(groups)

    def quantiles(values: list[float]) -> tuple[float | None, float | None]:
        if not values:
            return None, None
        return float(np.percentile(values, 50)), float(np.percentile(values, 90))

    for key, members in groups.items():
        a = got[key]
        assert a["opened"] == len(members)
        assert a["acknowledged"] == sum(1 for m in members if m[4] is not None and m[4] < hi)
        assert a["cleared"] == sum(1 for m in members if m[5] is not None and m[5] < hi)
        assert a["opened"] == a["cleared"] + a["open_at_end"]
        ack = [(m[4] - m[2]).total_seconds() for m in members if m[4] is not None]
        clear = [(m[5] - m[3]).total_seconds() for m in members if m[5] is not None]
        for name, values in (("ack", ack), ("clear", clear)):
            median, p90 = quantiles(values)
            assert a[f"{name}_median_s"] == (None if median is None else pytest.approx(median, abs=0.1))
            assert a[f"{name}_p90_s"] == (None if p90 is None else pytest.approx(p90, abs=0.1))
    assert month_report["alerts"]["total"]["opened"] == len(rows)
    assert sum(sum(v for k, v in d.items() if k != "date") for d in month_report["alerts"]["daily"]) == len(rows)
    all_ack = [(m[4] - m[2]).total_seconds() for m in rows if m[4] is not None]
    if all_ack:
        assert month_report["alerts"]["total"]["ack_median_s"] == pytest.approx(np.percentile(all_ack, 50), abs=0.1)


def test_gate_passages_and_holds(month_report: dict[str, Any], db: DB, report_settings: ReportSettings) -> None:
    lo, hi = _window(report_settings)
    rows = db.execute(
        "SELECT id, gate_id, direction, decision, reasons FROM gate_passages "
        "WHERE site = %s AND first_read_at >= %s AND first_read_at < %s",
        (SITE, lo, hi),
    ).fetchall()
    assert rows, "the seeded month has gate passages"
    per_gate: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: Counter[tuple[str, str]] = Counter()
    for _, gate, direction, decision, why in rows:
        per_gate[gate]["inbound" if direction == "in" else "outbound"] += 1
        if decision:
            per_gate[gate]["passed" if decision == "pass" else "held"] += 1
        if decision == "hold":
            for code in {r["code"] for r in why}:
                reasons[(gate, code)] += 1
    got = {g["gate_id"]: g for g in month_report["gates"]["by_gate"]}
    assert set(got) == set(per_gate)
    for gate, counts in per_gate.items():
        for key in ("inbound", "outbound", "passed", "held"):
            assert got[gate][key] == counts[key], (gate, key)
    assert {(r["gate_id"], r["code"]): r["passages"] for r in month_report["gates"]["hold_reasons"]} == reasons
    assert len(month_report["gates"]["holds"]) == sum(c["held"] for c in per_gate.values())
    daily = month_report["gates"]["daily"]
    assert sum(d["inbound"] + d["outbound"] for d in daily) == len(rows)


def _counter_sum(readings: list[tuple[datetime, float]], column: str) -> float:
    """The documented rule, written again: rises count, falls (resets) and impossible rises (glitches) do not."""
    rate, slack = COUNTERS[column]
    total = 0.0
    for (t0, v0), (t1, v1) in itertools.pairwise(readings):
        rise = v1 - v0
        if 0 < rise <= rate * (t1 - t0).total_seconds() / 3600 + slack:
            total += rise
    return total


def _counter_readings(db: DB, device: str, column: str, lo: datetime, hi: datetime) -> list[tuple[datetime, float]]:
    before = db.execute(
        f"SELECT ts, {column} FROM positions WHERE device_id = %s AND ts < %s AND ts >= %s AND {column} IS NOT NULL "
        "ORDER BY ts DESC, seq DESC LIMIT 1",
        (device, lo, lo - timedelta(days=7)),
    ).fetchall()
    inside = db.execute(
        f"SELECT ts, {column} FROM positions WHERE device_id = %s AND ts >= %s AND ts < %s AND {column} IS NOT NULL "
        "ORDER BY ts, seq",
        (device, lo, hi),
    ).fetchall()
    return [(t, float(v)) for t, v in before + inside]


def test_fleet_distance_energy_hydrogen_and_co2(
    month_report: dict[str, Any], db: DB, report_settings: ReportSettings
) -> None:
    lo, hi = _window(report_settings)
    fleet = month_report["fleet"]
    assert len(fleet["vehicles"]) >= 3
    s = report_settings
    diesel_per_km = s.report_diesel_l_per_100km / 100 * s.report_diesel_kg_co2_per_l
    kinds: Counter[str] = Counter()
    for v in fleet["vehicles"]:
        dev = v["device_id"]
        odometer = _counter_readings(db, dev, "odometer_km", lo, hi)
        assert v["km"] == pytest.approx(_counter_sum(odometer, "odometer_km"), abs=0.01)
        if v["odometer_resets"] == 0 and v["glitches"] == 0 and odometer:
            # Without resets the sum of rises is simply how far the odometer moved.
            assert v["km"] == pytest.approx(odometer[-1][1] - odometer[0][1], abs=0.01)
        energy = _counter_readings(db, dev, "energy_kwh", lo, hi)
        hydrogen = _counter_readings(db, dev, "h2_kg", lo, hi)
        kinds[v["powertrain"]] += 1
        if v["powertrain"] == "bev":
            assert v["energy_kwh"] == pytest.approx(_counter_sum(energy, "energy_kwh"), abs=0.01)
            assert v["co2_actual_kg"] == pytest.approx(
                v["energy_kwh"] / s.report_charging_efficiency * s.report_grid_kg_co2_per_kwh, abs=0.02
            )
            if v["km"] > 0:
                assert v["kwh_per_km"] == pytest.approx(v["energy_kwh"] / v["km"], abs=1e-3)
        elif v["powertrain"] == "fcev":
            assert v["h2_kg"] == pytest.approx(_counter_sum(hydrogen, "h2_kg"), abs=0.001)
            assert v["co2_actual_kg"] == pytest.approx(v["h2_kg"] * s.report_h2_kg_co2_per_kg, abs=0.02)
        if v["co2_baseline_kg"] is not None:
            assert v["co2_baseline_kg"] == pytest.approx(v["km"] * diesel_per_km, abs=0.02)
            assert v["co2_avoided_kg"] == pytest.approx(v["co2_baseline_kg"] - v["co2_actual_kg"], abs=0.02)
        if v["powertrain"] in ("bev", "fcev"):
            # Tailpipe (direct): nothing from the exhaust, so a diesel truck's CO2 over the distance driven,
            # from the odometer's rises, whatever the grid and hydrogen factors.
            tailpipe = _counter_sum(odometer, "odometer_km") * diesel_per_km
            assert v["co2_avoided_tailpipe_kg"] == pytest.approx(tailpipe, abs=0.02)
            assert v["co2_avoided_tailpipe_kg"] - v["co2_avoided_kg"] == pytest.approx(v["co2_actual_kg"], abs=0.03)
            if v["km"] > 0:
                assert v["co2_avoided_tailpipe_kg"] > 0 and v["co2_actual_kg"] > 0
                assert v["co2_avoided_tailpipe_kg"] > v["co2_avoided_kg"]
        else:
            assert v["co2_avoided_tailpipe_kg"] is None and v["co2_avoided_kg"] is None
    assert kinds["bev"] > 0 and kinds["fcev"] > 0, "the seeded fleet has both powertrains"
    totals = fleet["totals"]
    assert totals["km"] == pytest.approx(sum(v["km"] for v in fleet["vehicles"]), abs=0.01)
    assert totals["km"] == pytest.approx(sum(d["km"] for d in fleet["daily"]), abs=0.01)
    assert totals["energy_kwh"] == pytest.approx(sum(d["energy_kwh"] for d in fleet["daily"]), abs=0.01)
    assert totals["h2_kg"] == pytest.approx(sum(d["h2_kg"] for d in fleet["daily"]), abs=0.001)
    assert totals["km"] > 0 and totals["energy_kwh"] > 0 and totals["h2_kg"] > 0
    for kind in ("bev", "fcev"):
        part = sum(v["co2_avoided_kg"] for v in fleet["vehicles"] if v["powertrain"] == kind)
        assert totals[f"co2_avoided_{kind}_kg"] == pytest.approx(part, abs=0.05)
    assert totals["co2_avoided_kg"] == pytest.approx(totals["co2_baseline_kg"] - totals["co2_actual_kg"], abs=0.05)
    # Tailpipe totals: the kilometres of the trucks with energy figures at the diesel truck's CO2 per km.
    for kind in ("bev", "fcev"):
        km = sum(v["km"] for v in fleet["vehicles"] if v["powertrain"] == kind)
        assert totals[f"co2_avoided_tailpipe_{kind}_kg"] == pytest.approx(km * diesel_per_km, abs=0.05)
        assert totals[f"co2_avoided_tailpipe_{kind}_kg"] > totals[f"co2_avoided_{kind}_kg"]
    electric_km = totals["bev_km"] + totals["fcev_km"]
    assert totals["co2_avoided_tailpipe_kg"] == pytest.approx(electric_km * diesel_per_km, abs=0.05)
    assert totals["co2_avoided_tailpipe_kg"] == pytest.approx(
        totals["co2_avoided_tailpipe_bev_kg"] + totals["co2_avoided_tailpipe_fcev_kg"], abs=0.05
    )
    assert totals["co2_avoided_tailpipe_kg"] - totals["co2_avoided_kg"] == pytest.approx(
        totals["co2_actual_kg"], abs=0.05
    )
    summary = month_report["summary"]
    assert summary["co2_avoided_tailpipe_kg"] == totals["co2_avoided_tailpipe_kg"] > 0
    assert summary["co2_avoided_kg"] == totals["co2_avoided_kg"]
    # The fleet model's own bands: 0.7-1.4 kWh/km and 4-8.5 kg/100 km over a month of mixed trips.
    assert 0.5 < totals["kwh_per_km"] < 2.0
    assert 2.0 < totals["h2_kg_per_100km"] < 12.0


def test_uptime_and_completeness(month_report: dict[str, Any], db: DB, report_settings: ReportSettings) -> None:
    lo, hi = _window(report_settings)
    month_s = (hi - lo).total_seconds()
    got = {d["device_id"]: d for d in month_report["devices"]["devices"]}
    seeded = [d for d in got.values() if d["readings"] > 0]
    assert len(seeded) >= 15
    for dev in seeded:
        kind = dev["kind"]
        table = "positions" if kind == "gps" else "temperatures"
        times = [t for (t,) in db.execute(
            f"SELECT ts FROM {table} WHERE device_id = %s AND ts >= %s AND ts < %s ORDER BY ts, seq",
            (dev["device_id"], lo, hi),
        ).fetchall()]  # fmt: skip
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        median = statistics.median([g for g in gaps if g > 0])
        if kind == "temp":
            row = db.execute(
                "SELECT p.offline_after_s FROM devices d LEFT JOIN profiles p ON p.name = d.profile "
                "WHERE d.device_id = %s",
                (dev["device_id"],),
            ).fetchone()
            silence = (row[0] if row else None) or 600
        else:
            row = db.execute(
                "SELECT gps_lost_after_s FROM vehicles WHERE device_id = %s", (dev["device_id"],)
            ).fetchone()
            silence = (row[0] if row else None) or 120
        limit = max(silence, 2 * median)
        covered = sum(min(g, limit) for g in gaps) + min((hi - times[-1]).total_seconds(), limit)
        assert dev["readings"] == len(times)
        assert dev["median_interval_s"] == pytest.approx(median, abs=0.1)
        assert dev["uptime_pct"] == pytest.approx(100 * covered / month_s, abs=1e-3)
        expected = month_s / median
        assert dev["expected"] == pytest.approx(expected, abs=0.1)
        assert dev["completeness_pct"] == pytest.approx(100 * min(len(times), expected) / expected, abs=1e-3)
    for kind in ("gps", "temp"):
        members = [d for d in got.values() if d["kind"] == kind]
        k = month_report["devices"]["by_kind"][kind]
        assert k["received"] == sum(d["readings"] for d in members)
        assert k["expected"] == pytest.approx(sum(d["expected"] for d in members), abs=1)


def test_counters_survive_resets_glitches_and_gaps(db: DB, report_settings: ReportSettings) -> None:
    """A terminal replaced mid-month (odometer back to 0), a corrupt reading and a day without data."""
    month = Month(2024, 6)
    zone = report_settings.zone
    lo = month.start(zone)
    device = "rpt-odometer-terminal"
    db.execute("DELETE FROM positions WHERE device_id = %s", (device,))
    db.execute(
        "INSERT INTO devices (device_id, kind, name) VALUES (%s, 'gps', 'odometer test') ON CONFLICT DO NOTHING",
        (device,),
    )
    steps = [
        (-600, 1000.0),  # the last reading of May: the first step into June counts in June
        (600, 1004.0),  # +4 km
        (1200, 1008.0),  # +4
        (1800, 99999.0),  # glitch: 90,000 km in 10 min
        (2400, 1012.0),  # back down: counts as a reset, nothing
        (3000, 1015.0),  # +3
        (3000 + 86400, 1400.0),  # a day without data: +385 km across the gap counts
        (4200 + 86400, 0.5),  # new terminal: reset
        (4800 + 86400, 6.5),  # +6
    ]
    with db.cursor() as cur:
        for seq, (offset, odo) in enumerate(steps):
            cur.execute(
                "INSERT INTO positions (ts, device_id, seq, lat, lon, fix, odometer_km) "
                "VALUES (%s, %s, %s, 39.52, 109.88, '3d', %s)",
                (lo + timedelta(seconds=offset), device, seq, odo),
            )
    with psycopg.connect(report_settings.db_url) as conn:
        report = gather(conn, report_settings, month, AFTER)
    truck = next(v for v in report["fleet"]["vehicles"] if v["device_id"] == device)
    assert truck["km"] == pytest.approx(4 + 4 + 3 + 385 + 6, abs=1e-6)
    assert truck["odometer_resets"] == 2
    assert truck["glitches"] == 1
    assert truck["powertrain"] == "unknown" and truck["co2_avoided_kg"] is None
    assert truck["co2_avoided_tailpipe_kg"] is None
    first = next(d for d in report["fleet"]["daily"] if d["date"] == "2024-06-01")
    assert first["km"] == pytest.approx(11, abs=1e-6)


def test_only_net_co2_follows_the_supply_factors(month_report: dict[str, Any], report_settings: ReportSettings) -> None:
    """The same month with other grid and hydrogen factors: the tailpipe figures stay, the net ones move by the
    supply's CO2; with zero-emission electricity and hydrogen the net figures equal the tailpipe ones."""
    base = month_report["fleet"]
    clean = report_settings.model_copy(update={"report_grid_kg_co2_per_kwh": 0.0, "report_h2_kg_co2_per_kg": 0.0})
    dirty = report_settings.model_copy(update={"report_grid_kg_co2_per_kwh": 1.2, "report_h2_kg_co2_per_kg": 30.0})
    with psycopg.connect(report_settings.db_url) as conn:
        fleets = {name: gather(conn, s, MONTH, AFTER)["fleet"] for name, s in (("clean", clean), ("dirty", dirty))}
    assert fleets["dirty"]["factors"]["h2_kg_co2_per_kg"] == 30.0
    keys = ("", "bev_", "fcev_")
    for fleet in fleets.values():
        for k in keys:
            key = f"co2_avoided_tailpipe_{k}kg"
            assert fleet["totals"][key] == base["totals"][key], key
        for v, b in zip(fleet["vehicles"], base["vehicles"], strict=True):
            assert v["co2_avoided_tailpipe_kg"] == b["co2_avoided_tailpipe_kg"]
    clean_t, dirty_t = fleets["clean"]["totals"], fleets["dirty"]["totals"]
    for k in keys:
        assert clean_t[f"co2_avoided_{k}kg"] == pytest.approx(clean_t[f"co2_avoided_tailpipe_{k}kg"], abs=0.05)
        assert dirty_t[f"co2_avoided_{k}kg"] < base["totals"][f"co2_avoided_{k}kg"] < clean_t[f"co2_avoided_{k}kg"]
    assert clean_t["co2_actual_kg"] == 0
    # A 1.2 kg/kWh grid and 30 kg/kg hydrogen emit more than the 35 L/100 km diesel truck: net below zero.
    assert dirty_t["co2_avoided_kg"] < 0 < dirty_t["co2_avoided_tailpipe_kg"]
