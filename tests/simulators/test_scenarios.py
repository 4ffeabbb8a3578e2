"""Scenarios: every file loads, its messages are contract messages, and it raises exactly what it claims.

"Exactly" is checked against a small reference reading of the contract's alert rules (:func:`evaluate`), written
from CONTRACT.md alone: from a scenario's registry and generated readings it derives every alert the rules imply,
when it opens and when it clears, and every gate decision. A scenario's ``[[expect]]`` must match that list to the
second, its ``[[no_alert]]`` entries must be absent from it, and nothing may be raised that the scenario does not
expect. Readings are also required to be *crisp*: no temperature or state of charge within 0.05 of a threshold
and no fix in the band a corridor's width leaves open to interpretation (half or full ``width_m``), so that the
platform's choice of ``<`` or ``<=``, or of how wide a corridor is, never changes the outcome.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from api.app import create_app
from api.auth import Role, create_token
from api.settings import ApiSettings
from bondwatch.contract.alerts import ALERT_TYPES
from bondwatch.contract.payloads import validate_payload
from bondwatch.contract.topics import parse_device_topic
from bondwatch.db.settings import DbSettings
from bondwatch.mqtt import make_client
from bondwatch.settings import CommonSettings, MqttTarget, load_settings
from edge.protocols.epc import pure_identity_uri
from ingest.service import IngestService
from simulators import geography as geo
from simulators.coldrooms import PRODUCTS
from simulators.scenario import (
    PASSAGE_WINDOW_S,
    SCENARIO_DIR,
    RfidStep,
    Scenario,
    ScenarioError,
    ScheduledMessage,
    bundled,
    load_scenario,
    main,
    prefixed_epc,
    run,
)
from tests.conftest import wait_for

FILES = bundled()
BASE = datetime(2026, 7, 15, 6, 0, 0, 123_456, tzinfo=UTC)  # 14:00 local on a summer afternoon, odd microseconds
TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32649", always_xy=True)  # UTM zone 49N, metres
CRISP_C = 0.05  # no temperature or state of charge this close to a threshold
CRISP_M = 5.0  # no fix this close to the edge of what a geofence may mean
BONDED_EXIT_PASS_S = 30 * 60  # the contract: no pass decision for the vehicle in the last 30 min
EXPECTED_FILES = set(ALERT_TYPES)
by_file = pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])


@cache
def scenario(path: Path) -> Scenario:
    return load_scenario(path)


@cache
def messages(path: Path) -> list[ScheduledMessage]:
    return scenario(path).messages(BASE)


def readings(path: Path, device: str) -> list[tuple[float, dict[str, Any]]]:
    return [(m.at_s, orjson.loads(m.payload)) for m in messages(path) if m.device_id == device]


def utm(geometry: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geometry, lambda xy: np.column_stack(TO_UTM.transform(xy[:, 0], xy[:, 1])))


def utm_point(fields: dict[str, Any]) -> Point:
    x, y = TO_UTM.transform(fields["lon"], fields["lat"])
    return Point(x, y)


# --- the reference reading of the contract's rules ----------------------------------------------------------------


@dataclass
class Episode:
    """One alert the rules imply: open from ``opens`` (the earliest instant), seen by the platform at ``seen``."""

    type: str
    subject_id: str
    opens: float
    seen: float
    clears: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Passage:
    gate_id: str
    at_s: float
    vehicle_id: str | None
    decision: str
    release_note_id: str | None
    reason_epcs: frozenset[str]


@dataclass(frozen=True)
class Fences:
    boundary: BaseGeometry  # every bonded boundary, UTM
    corridors: dict[str, tuple[BaseGeometry, float]]  # id -> (centre line in UTM, width_m)

    def inside(self, p: Point, corridors: list[str] | None = None) -> bool | None:
        """True: inside whatever the corridors' width means; False: outside it; None: in between (not crisp)."""
        chosen = [self.corridors[c] for c in (self.corridors if corridors is None else corridors)]
        if self.boundary.buffer(-CRISP_M).contains(p) or any(
            line.distance(p) < width / 2 - CRISP_M for line, width in chosen
        ):
            return True
        if not self.boundary.buffer(CRISP_M).contains(p) and all(
            line.distance(p) > width + CRISP_M for line, width in chosen
        ):
            return False
        return None


def fences(features: list[dict[str, Any]]) -> Fences:
    boundary = shapely.unary_union(
        [utm(shape(f["geometry"])) for f in features if f["properties"]["kind"] == "bonded_boundary"]
    )
    corridors = {
        f["id"]: (utm(shape(f["geometry"])), float(f["properties"]["width_m"]))
        for f in features
        if f["properties"]["kind"] == "corridor"
    }
    return Fences(boundary, corridors)


def _runs(points: list[tuple[float, bool]]) -> Iterator[tuple[int, int]]:
    """Index ranges [a, b] of consecutive True flags."""
    i = 0
    while i < len(points):
        if points[i][1]:
            j = i
            while j + 1 < len(points) and points[j + 1][1]:
                j += 1
            yield i, j
            i = j + 1
        else:
            i += 1


def _held(
    kind: str, subject: str, series: list[tuple[float, float]], flags: list[bool], delay: float, cleared: list[bool]
) -> list[Episode]:
    """A condition held for longer than ``delay`` on the readings' ts; cleared at the first ``cleared`` reading."""
    out: list[Episode] = []
    for a, b in _runs(list(zip([t for t, _ in series], flags, strict=True))):
        start = series[a][0]
        later = [i for i in range(a, b + 1) if series[i][0] > start + delay]
        if not later:
            continue
        clears = next((series[i][0] for i in range(b + 1, len(series)) if cleared[i]), None)
        out.append(Episode(kind, subject, start + delay, series[later[0]][0], clears))
    return out


def evaluate(s: Scenario, path: Path, features: list[dict[str, Any]]) -> tuple[list[Episode], list[Passage]]:
    requests = s.registry_requests(BASE)
    profiles = s.registered("profiles")
    devices = s.registered("devices")
    vehicles = s.registered("vehicles")
    tags = s.registered("tags")
    notes = {r.body["id"]: r.body for r in requests if r.path == "/release-notes"}
    vehicle_of = {v["device_id"]: vid for vid, v in vehicles.items()}
    geo_fences = fences(features)
    episodes: list[Episode] = []
    passages: list[Passage] = []
    for device, kind in s.devices().items():
        series = readings(path, device)
        if kind == "temp":
            name = devices[device]["profile"]
            p = profiles[name]
            temps = [(t, float(r["temp_c"])) for t, r in series]
            for direction, outside, band, cleared, band_cleared in (
                (
                    "high",
                    [v > p["max_c"] for _, v in temps],
                    [p["max_c"] - p["pre_alarm_margin_c"] <= v <= p["max_c"] for _, v in temps],
                    [v <= p["max_c"] - p["hysteresis_c"] for _, v in temps],
                    [v <= p["max_c"] - p["pre_alarm_margin_c"] - p["hysteresis_c"] for _, v in temps],
                ),
                (
                    "low",
                    [v < p["min_c"] for _, v in temps],
                    [p["min_c"] <= v <= p["min_c"] + p["pre_alarm_margin_c"] for _, v in temps],
                    [v >= p["min_c"] + p["hysteresis_c"] for _, v in temps],
                    [v >= p["min_c"] + p["pre_alarm_margin_c"] + p["hysteresis_c"] for _, v in temps],
                ),
            ):
                for e in _held("temp_excursion", device, temps, outside, p["delay_s"], cleared):
                    e.details = {"direction": direction, "profile": name}
                    episodes.append(e)
                for e in _held("temp_pre_alarm", device, temps, band, p["delay_s"], band_cleared):
                    e.details = {"direction": direction, "profile": name}
                    episodes.append(e)
            times = [t for t, _ in series]
            for t, nxt in itertools.pairwise([*times, s.duration_s]):
                if nxt - t >= p["offline_after_s"]:
                    opens = t + p["offline_after_s"]
                    episodes.append(Episode("sensor_offline", device, opens, opens))
        elif kind == "gps":
            vid = vehicle_of[device]
            v = vehicles[vid]
            valid = [(t, r) for t, r in series if r["fix"] != "none"]
            times = [t for t, _ in valid]
            lost_after = v.get("gps_lost_after_s", 120)
            for t, nxt in itertools.pairwise([*times, s.duration_s]):
                if nxt - t >= lost_after:
                    episodes.append(Episode("gps_lost", vid, t + lost_after, t + lost_after))
            soc = [(t, float(r["soc_pct"])) for t, r in series if "soc_pct" in r]
            threshold = v.get("low_soc_pct", 20.0)
            for a, _ in _runs([(t, value < threshold) for t, value in soc]):
                episodes.append(Episode("low_soc", vid, soc[a][0], soc[a][0]))
            episodes += _geometry(s, vid, v, valid, geo_fences)
    for step in sorted((st for st in s.steps if isinstance(st, RfidStep)), key=lambda st: st.at_s):
        if step.direction != "out":
            continue
        passage = _decide(step, vehicles, tags, notes)
        passages.append(passage)
        if passage.decision == "hold" and passage.vehicle_id is not None:
            episodes.append(Episode("gate_hold", passage.vehicle_id, step.at_s, step.at_s))
    # A recent pass at a gate excuses a bonded vehicle's being outside (the contract's 30 minutes).
    kept = []
    for e in episodes:
        if e.type == "bonded_exit":
            passes = [p.at_s for p in passages if p.vehicle_id == e.subject_id and p.decision == "pass"]
            if any(0 <= e.opens - t <= BONDED_EXIT_PASS_S for t in passes):
                continue
        kept.append(e)
    return kept, passages


def _geometry(
    s: Scenario, vid: str, v: dict[str, Any], fixes: list[tuple[float, dict[str, Any]]], f: Fences
) -> list[Episode]:
    out: list[Episode] = []
    points = [(t, utm_point(r)) for t, r in fixes]
    if v.get("bonded_transport"):
        states = [(t, f.inside(p)) for t, p in points]
        vague = [t for t, state in states if state is None]
        assert not vague, f"{s.name}: {vid}'s fixes at {vague} s are neither clearly inside nor clearly outside"
        # Outside fixes are judged one by one: a pass decision may excuse some of them and not others.
        out += [Episode("bonded_exit", vid, t, t) for t, state in states if state is False][:1]
    corridor = v.get("corridor_id")
    if corridor and corridor in f.corridors:
        flags: list[tuple[float, bool]] = []
        for t, p in points:
            state = f.inside(p, [corridor])  # inside the boundary or the vehicle's own corridor
            assert state is not None, f"{s.name}: {vid}'s fix at {t} s is neither clearly on nor clearly off it"
            flags.append((t, not state))
        for a, b in _runs(flags):
            clears = flags[b + 1][0] if b + 1 < len(flags) else None
            out.append(Episode("corridor_deviation", vid, flags[a][0], flags[a][0], clears))
    return out


def _decide(
    step: RfidStep, vehicles: dict[str, dict[str, Any]], tags: dict[str, dict[str, Any]], notes: dict[str, Any]
) -> Passage:
    """The contract's gate rule: hold without a valid note, with a tag the note does not list, or a bonded tag."""
    at = BASE + timedelta(seconds=step.at_s)
    vehicle = next((vid for vid, v in vehicles.items() if v.get("tag_epc") in step.epcs), None)
    cargo = [e for e in step.epcs if tags.get(e, {}).get("kind") != "vehicle"]
    valid = [
        n
        for n in notes.values()
        if n["vehicle_id"] == vehicle
        and datetime.fromisoformat(n["valid_from"]) <= at <= datetime.fromisoformat(n["valid_until"])
    ]
    if vehicle is None or not valid:
        bonded = frozenset(e for e in cargo if tags.get(e, {}).get("customs_status") != "non_bonded")
        return Passage(step.gate_id, step.at_s, vehicle, "hold", None, bonded)
    best = max(valid, key=lambda n: len(set(cargo) & set(n["epcs"])))
    unlisted = frozenset(e for e in cargo if e not in best["epcs"])
    return Passage(step.gate_id, step.at_s, vehicle, "hold" if unlisted else "pass", best["id"], unlisted)


def site_features_used(s: Scenario) -> list[dict[str, Any]]:
    return list(s.registered("geofences").values())


# --- the files ----------------------------------------------------------------------------------------------------


def test_one_file_per_alert_type_at_least() -> None:
    assert {p.stem for p in FILES} >= EXPECTED_FILES
    covered = {e.type for p in FILES for e in scenario(p).expect}
    assert covered == set(ALERT_TYPES), f"alert types without a scenario: {set(ALERT_TYPES) - covered}"
    severities: dict[str, set[str]] = defaultdict(set)
    for p in FILES:
        for e in scenario(p).expect:
            severities[e.type].add(e.severity)
    assert all(len(v) == 1 for v in severities.values()), f"one severity per alert type: {dict(severities)}"
    assert severities["bonded_exit"] == {"critical"}, "the contract makes a bonded exit critical"


@by_file
def test_file_is_documented(path: Path) -> None:
    s = scenario(path)
    assert s.name == path.stem
    assert any("\u4e00" <= c <= "\u9fff" for c in s.description_zh), "description_zh is Chinese"
    assert not any("\u4e00" <= c <= "\u9fff" for c in s.description_en), "description_en is English"
    assert s.expect, "a scenario says what the platform must raise"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#"), "the file opens with a comment that explains the scenario"
    if s.live_only:
        assert "LIVE MODE ONLY" in text
    readme = (SCENARIO_DIR / "README.md").read_text(encoding="utf-8")
    assert f"{path.stem}.toml" in readme, "the README lists every scenario"


@by_file
def test_messages_are_contract_messages(path: Path) -> None:
    s = scenario(path)
    msgs = messages(path)
    assert msgs == sorted(msgs, key=lambda m: m.at_s), "in time order"
    seqs: dict[str, list[int]] = defaultdict(list)
    for m in msgs:
        topic = parse_device_topic(m.topic)
        assert (topic.site, topic.kind, topic.device_id) == (geo.SITE, m.kind, m.device_id)
        (item,) = validate_payload(m.kind, m.payload)
        raw = orjson.loads(m.payload)
        assert item.seq == m.seq  # type: ignore[attr-defined]
        base = BASE.replace(microsecond=123_000)  # cut to whole milliseconds
        assert item.ts == m.ts == base + timedelta(seconds=m.at_s)  # type: ignore[attr-defined]
        if m.seq % 2 == 0:
            assert isinstance(raw["ts"], str) and raw["ts"].endswith("+08:00")
        else:
            assert isinstance(raw["ts"], int)
        assert 0 <= m.at_s < s.duration_s
        seqs[m.device_id].append(m.seq)
    for device, got in seqs.items():
        assert got == list(range(len(got))), f"{device}: seq counts from 0 in time order"
    assert set(seqs) == set(s.devices())


@by_file
def test_messages_are_deterministic(path: Path) -> None:
    first = load_scenario(path).messages(BASE, "ordos-czb")
    again = load_scenario(path).messages(BASE, "ordos-czb")
    assert [(m.at_s, m.topic, m.payload) for m in first] == [(m.at_s, m.topic, m.payload) for m in again]
    later = load_scenario(path).messages(BASE + timedelta(days=1), "other-site")
    for a, b in zip(first, later, strict=True):
        x, y = orjson.loads(a.payload), orjson.loads(b.payload)
        x.pop("ts"), y.pop("ts")
        assert x == y and b.topic == a.topic.replace("/ordos-czb/", "/other-site/")


@by_file
def test_registry_uses_the_standard_site(path: Path) -> None:
    s = scenario(path)
    standard = {f["id"]: f for f in geo.geofence_features()}
    for fence_id, body in s.registered("geofences").items():
        assert body == standard[fence_id], f"geofence {fence_id} is the standard site's"
    for name, body in s.registered("profiles").items():
        assert body == PRODUCTS[name].profile(), f"profile {name} is the cold-room model's (profiles are shared)"
    for vid, body in s.registered("vehicles").items():
        assert body["plate"].startswith("蒙K·") and body["plate"][-1] in "DF", vid
        if body.get("corridor_id"):
            assert body["corridor_id"] in s.registered("geofences"), f"{vid}'s corridor is registered first"
    for epc, body in s.registered("tags").items():
        uri = pure_identity_uri(epc)
        assert uri is not None and uri.startswith(
            "urn:epc:id:grai:" if body["kind"] == "vehicle" else "urn:epc:id:sgtin:"
        ), epc
    for device, kind in s.devices().items():
        assert s.registered("devices")[device]["kind"] == kind, f"{device} is registered as what it is"


@by_file
def test_scenario_raises_exactly_what_it_expects(path: Path) -> None:
    s = scenario(path)
    episodes, passages = evaluate(s, path, site_features_used(s))
    # The platform may hold the whole standard site's geofences (another scenario put them there): same outcome.
    again, _ = evaluate(s, path, geo.geofence_features())
    assert [(e.type, e.subject_id, e.opens) for e in again] == [(e.type, e.subject_id, e.opens) for e in episodes], (
        "the outcome depends on which other geofences of the site the platform holds: register what the scenario needs"
    )
    within = [e for e in episodes if e.opens < s.duration_s]
    found = {(e.type, e.subject_id): e for e in within}
    assert len(found) == len(within), f"one episode per alert and subject: {within}"
    for exp in s.expect:
        e = found.get((exp.type, exp.subject_id))
        assert e is not None, f"{exp.type} on {exp.subject_id} is expected but the readings do not raise it"
        assert exp.opens_after_s == pytest.approx(e.opens), f"{exp.type}: opens at {e.opens} s by the rules"
        assert e.seen <= exp.opens_after_s + exp.within_s, f"{exp.type}: seen at {e.seen} s, after within_s"
        if exp.clears_after_s is not None:
            assert e.clears == pytest.approx(exp.clears_after_s), f"{exp.type}: clears at {e.clears} s"
        for key, value in exp.details.items():
            assert e.details.get(key) == value, f"{exp.type}: details.{key} is {e.details.get(key)!r}"
    expected = {(exp.type, exp.subject_id) for exp in s.expect}
    assert set(found) == expected, f"raised but not expected: {set(found) - expected}"
    for no in s.no_alert:
        assert (no.type, no.subject_id) not in found and (no.type, no.subject_id) not in expected
    decided = {(d.gate_id, d.after_s): d for d in s.decisions}
    assert len(decided) == len(passages), "one decision per outbound passage"
    for p in passages:
        d = decided[(p.gate_id, p.at_s)]
        assert (d.vehicle_id, d.decision, d.release_note_id) == (p.vehicle_id, p.decision, p.release_note_id)
        assert set(d.reason_epcs) == p.reason_epcs
        assert d.within_s >= PASSAGE_WINDOW_S + 1, "the window closes, then the contract allows 1 s"
    for exp in s.expect:
        if exp.type == "gate_hold":
            d = next(d for d in s.decisions if d.vehicle_id == exp.subject_id and d.decision == "hold")
            assert (exp.gate_id, exp.opens_after_s, set(exp.reason_epcs)) == (d.gate_id, d.after_s, set(d.reason_epcs))


@by_file
def test_readings_are_crisp(path: Path) -> None:
    """No reading so close to a threshold that < or <= in a rule would change the outcome."""
    s = scenario(path)
    profiles, devices, vehicles = s.registered("profiles"), s.registered("devices"), s.registered("vehicles")
    for device, kind in s.devices().items():
        if kind == "temp":
            p = profiles[devices[device]["profile"]]
            m, h = p["pre_alarm_margin_c"], p["hysteresis_c"]
            thresholds = {p["min_c"], p["max_c"], p["max_c"] - m, p["min_c"] + m, p["max_c"] - h, p["min_c"] + h}
            thresholds |= {p["max_c"] - m - h, p["min_c"] + m + h}
            for t, r in readings(path, device):
                near = [x for x in thresholds if abs(r["temp_c"] - x) < CRISP_C - 1e-9]
                assert not near, f"{device} at {t} s reads {r['temp_c']} °C, too close to {near}"
        if kind == "gps":
            v = next(v for v in vehicles.values() if v["device_id"] == device)
            for t, r in readings(path, device):
                if "soc_pct" in r:
                    assert abs(r["soc_pct"] - v.get("low_soc_pct", 20.0)) >= CRISP_C - 1e-9, (device, t)


@by_file
def test_vehicles_drive_plausibly(path: Path) -> None:
    s = scenario(path)
    for device, kind in s.devices().items():
        if kind != "gps":
            continue
        fixes = [(t, r) for t, r in readings(path, device) if r["fix"] != "none"]
        for (t1, a), (t2, b) in itertools.pairwise(fixes):
            assert a.get("speed_kmh", 0) <= 90, f"{device} at {t1} s"
            metres = geo.distance_m((a["lon"], a["lat"]), (b["lon"], b["lat"]))
            assert metres <= 90 / 3.6 * (t2 - t1) + 10, f"{device} teleports between {t1} and {t2} s"
        odometer = [r["odometer_km"] for _, r in readings(path, device) if "odometer_km" in r]
        assert odometer == sorted(odometer), f"{device}: the odometer never runs back"


# --- the claims of the individual files, in their own terms --------------------------------------------------------


def _profile(s: Scenario, device: str) -> dict[str, Any]:
    return s.registered("profiles")[s.registered("devices")[device]["profile"]]


def test_temp_excursion_stays_above_max_longer_than_the_delay() -> None:
    path = SCENARIO_DIR / "temp_excursion.toml"
    s = scenario(path)
    (exp,) = s.expect
    p = _profile(s, exp.subject_id)
    above = [t for t, r in readings(path, exp.subject_id) if r["temp_c"] > p["max_c"]]
    assert above[-1] - above[0] > p["delay_s"]
    assert above == [t for t in range(int(above[0]), int(above[-1]) + 1, 60)], "one unbroken excursion"
    assert exp.opens_after_s == above[0] + p["delay_s"]
    back = [t for t, r in readings(path, exp.subject_id) if t > above[-1] and r["temp_c"] <= p["max_c"] - 0.5]
    assert exp.clears_after_s == back[0]


def test_temp_pre_alarm_stays_inside_but_near_max() -> None:
    path = SCENARIO_DIR / "temp_pre_alarm.toml"
    s = scenario(path)
    (exp,) = s.expect
    p = _profile(s, exp.subject_id)
    series = readings(path, exp.subject_id)
    assert all(p["min_c"] <= r["temp_c"] <= p["max_c"] for _, r in series), "never outside the limits"
    band = [t for t, r in series if r["temp_c"] >= p["max_c"] - p["pre_alarm_margin_c"]]
    assert band[-1] - band[0] > p["delay_s"] and exp.opens_after_s == band[0] + p["delay_s"]


def test_silence_scenarios_are_live_only() -> None:
    for name, device in (("sensor_offline", "scn-temp-cr-06"), ("gps_lost", "scn-gps-trk-l1")):
        s = scenario(SCENARIO_DIR / f"{name}.toml")
        assert s.live_only
        last_valid = max(t for t, r in readings(SCENARIO_DIR / f"{name}.toml", device) if r.get("fix") != "none")
        (exp,) = s.expect
        assert exp.opens_after_s > last_valid
    fixes = readings(SCENARIO_DIR / "gps_lost.toml", "scn-gps-trk-l1")
    assert [r["fix"] for _, r in fixes][-1] == "none", "the terminal reports no fix before it falls silent"


def test_bonded_exit_leaves_every_boundary_and_corridor() -> None:
    path = SCENARIO_DIR / "bonded_exit.toml"
    s = scenario(path)
    (exp,) = s.expect
    vehicle = s.registered("vehicles")[exp.subject_id]
    assert vehicle["bonded_transport"] and not vehicle.get("corridor_id")
    areas = []
    for f in geo.geofence_features():
        kind = f["properties"]["kind"]
        if kind == "bonded_boundary":
            areas.append(utm(shape(f["geometry"])))
        elif kind == "corridor":
            areas.append(utm(shape(f["geometry"])).buffer(f["properties"]["width_m"]))  # even at full width
    allowed = shapely.unary_union(areas)
    fixes = readings(path, vehicle["device_id"])
    outside = [t for t, r in fixes if not allowed.contains(utm_point(r))]
    assert outside and outside[0] == exp.opens_after_s
    assert outside == [t for t, _ in fixes if t >= outside[0]], "and stays out"
    assert not any(isinstance(st, RfidStep) for st in s.steps), "no gate ever reads it"


def test_corridor_deviation_leaves_the_corridor_outside_the_boundary() -> None:
    path = SCENARIO_DIR / "corridor_deviation.toml"
    s = scenario(path)
    (exp,) = s.expect
    vehicle = s.registered("vehicles")[exp.subject_id]
    fence = s.registered("geofences")[vehicle["corridor_id"]]
    corridor = utm(shape(fence["geometry"])).buffer(fence["properties"]["width_m"])
    boundary = utm(shape(s.registered("geofences")[geo.BOUNDARY_ID]["geometry"]))
    off = [
        t
        for t, r in readings(path, vehicle["device_id"])
        if not corridor.contains(utm_point(r)) and not boundary.contains(utm_point(r))
    ]
    assert off and off[0] == exp.opens_after_s and exp.clears_after_s is not None
    assert off[-1] < exp.clears_after_s
    (decision,) = s.decisions
    assert decision.decision == "pass" and exp.clears_after_s - decision.after_s < BONDED_EXIT_PASS_S


def test_gate_hold_exercises_both_decisions() -> None:
    s = scenario(SCENARIO_DIR / "gate_hold.toml")
    assert {d.decision for d in s.decisions} == {"hold", "pass"}
    notes = [r.body for r in s.registry_requests(BASE) if r.path == "/release-notes"]
    listed = {e for n in notes for e in n["epcs"]}
    (exp,) = s.expect
    tags = s.registered("tags")
    assert all(e not in listed and tags[e]["customs_status"] == "bonded" for e in exp.reason_epcs)
    for note in notes:
        valid_from, valid_until = (datetime.fromisoformat(note[k]) for k in ("valid_from", "valid_until"))
        assert valid_from < BASE < BASE + timedelta(seconds=s.duration_s) < valid_until


def test_low_soc_crosses_the_threshold_on_the_corridor() -> None:
    path = SCENARIO_DIR / "low_soc.toml"
    s = scenario(path)
    (exp,) = s.expect
    vehicle = s.registered("vehicles")[exp.subject_id]
    fixes = readings(path, vehicle["device_id"])
    first = next(t for t, r in fixes if r["soc_pct"] < vehicle["low_soc_pct"])
    assert first == exp.opens_after_s
    assert all(r["soc_pct"] >= vehicle["low_soc_pct"] for t, r in fixes if t < first)


# --- loading, prefixes, errors ------------------------------------------------------------------------------------


def test_prefix_renames_every_id_consistently() -> None:
    path = SCENARIO_DIR / "gate_hold.toml"
    plain, prefixed = load_scenario(path), load_scenario(path, prefix="run7-")
    assert prefixed.prefix == "run7-"
    text = orjson.dumps([r.body for r in prefixed.registry_requests(BASE)]).decode()
    text += " ".join(r.path for r in prefixed.registry_requests(BASE))
    text += " ".join(m.payload.decode() + m.topic for m in prefixed.messages(BASE))
    for epc in plain.registered("tags"):
        assert epc not in text, f"tag {epc} kept its serial"
        renamed = prefixed_epc(epc, "run7-")
        assert renamed in text
        plain_uri, renamed_uri = pure_identity_uri(epc), pure_identity_uri(renamed)
        assert plain_uri and renamed_uri and plain_uri.rsplit(".", 1)[0] == renamed_uri.rsplit(".", 1)[0]
    assert set(prefixed.registered("vehicles")) == {f"run7-{v}" for v in plain.registered("vehicles")}
    assert set(prefixed.registered("devices")) == {f"run7-{d}" for d in plain.registered("devices")}
    assert set(prefixed.registered("release-notes")) == {f"run7-{n}" for n in plain.registered("release-notes")}
    assert set(prefixed.registered("geofences")) == set(plain.registered("geofences")), "site data is shared"
    for vid, v in prefixed.registered("vehicles").items():
        assert v["device_id"].startswith("run7-") and v["tag_epc"] in prefixed.registered("tags"), vid
    assert {e.subject_id for e in prefixed.expect} == {f"run7-{e.subject_id}" for e in plain.expect}
    assert all(d.release_note_id and d.release_note_id.startswith("run7-") for d in prefixed.decisions)
    reads = {orjson.loads(m.payload)["epc"] for m in prefixed.messages(BASE)}
    assert reads <= set(prefixed.registered("tags"))
    values = [orjson.loads(m.payload) for m in load_scenario(SCENARIO_DIR / "temp_excursion.toml", "x-").messages(BASE)]
    assert values == [orjson.loads(m.payload) for m in messages(SCENARIO_DIR / "temp_excursion.toml")], (
        "a prefix changes names, not readings"
    )
    with pytest.raises(ScenarioError, match="prefix"):
        load_scenario(path, prefix="bad prefix/")


GOOD = """
name = "t"
description_zh = "测试"
description_en = "test"
seed = 1
duration_s = 600
[[steps]]
kind = "temp"
device = "room-1"
from_s = 0
to_s = 300
every_s = 60
temp_c = 2.0
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[steps]]\nkind = "temp"\ndevice = "room-1"\nfrom_s = 300\nto_s = 600\nevery_s = 0\ntemp_c = 2.0\n',
         r"steps\[1\] \(temp, device room-1\)\.every_s: Input should be greater than 0"),
        ('[[steps]]\nkind = "smoke"\ndevice = "room-2"\nat_s = 5\n', r"steps\[1\] \(smoke, device room-2\)"),
        ('[[steps]]\nkind = "temp"\ndevice = "room-1"\nfrom_s = 200\nto_s = 400\nevery_s = 60\ntemp_c = 2.0\n',
         r"steps\[1\] \(device room-1\) overlaps steps\[0\]"),
        ('[[steps]]\nkind = "gps"\ndevice = "room-1"\nfrom_s = 300\nto_s = 400\nevery_s = 10\n'
         "waypoints = [[109.87, 39.52]]\n", r"steps\[1\] \(gps, device room-1\): device is a temp device"),
        ('[[steps]]\nkind = "gps"\ndevice = "trk"\nfrom_s = 0\nto_s = 700\nevery_s = 10\n'
         "waypoints = [[109.87, 39.52]]\n", r"steps\[1\] \(gps, device trk\): ends at 700 s, beyond duration_s"),
        ('[[steps]]\nkind = "temp"\ndevice = "room-2"\nfrom_s = 0\nto_s = 60\nevery_s = 60\n',
         r"steps\[1\] \(temp, device room-2\)\.temp_c: required field is missing"),
        ('[[expect]]\ntype = "sensor_offline"\nsubject_kind = "device"\nsubject_id = "room-1"\n'
         'severity = "minor"\nopens_after_s = 360\n', r"expect\[0\] .*set live_only = true"),
        ('[[registry]]\nmethod = "PUT"\npath = "/geofences/nowhere"\n', r"registry\[0\].*no geofence 'nowhere'"),
        ('[[registry]]\nmethod = "DELETE"\npath = "/alerts/1"\n', r"registry\[0\] \(path /alerts/1\)\.method"),
        ("colour = 'blue'\n", r"colour: Extra inputs are not permitted"),
        ("[[steps]\n", r"not valid TOML"),
    ],
    ids=["every_s", "kind", "overlap", "two-kinds", "duration", "missing", "live-only", "geofence", "method",
         "extra", "toml"],
)  # fmt: skip
def test_load_errors_name_the_file_and_the_entry(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(GOOD + extra, encoding="utf-8")
    with pytest.raises(ScenarioError, match=message) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(str(path))


def test_jump_and_fix_kinds(tmp_path: Path) -> None:
    path = tmp_path / "jump.toml"
    path.write_text(
        GOOD.replace('kind = "temp"\ndevice = "room-1"', 'kind = "gps"\ndevice = "trk-1"').replace(
            "temp_c = 2.0", 'waypoints = [[109.8745, 39.5185], [109.8745, 39.5200]]\nfix = "2d"\nnoise_m = 0'
        )
        + '[[steps]]\nkind = "jump"\ndevice = "trk-1"\nat_s = 300\nposition = [110.10, 39.80]\n',
        encoding="utf-8",
    )
    s = load_scenario(path)
    msgs = s.messages(BASE)
    assert [m.seq for m in msgs] == list(range(6))
    first, jump = orjson.loads(msgs[0].payload), orjson.loads(msgs[-1].payload)
    assert (first["lon"], first["lat"], first["fix"]) == (109.8745, 39.5185, "2d")
    assert first["speed_kmh"] == pytest.approx(167 / 300 * 3.6, abs=0.1) and first["heading_deg"] == 0.0
    assert (jump["lon"], jump["lat"], msgs[-1].at_s) == (110.1, 39.8, 300)
    assert geo.distance_m((first["lon"], first["lat"]), (jump["lon"], jump["lat"])) > 25_000
    for m in msgs:
        validate_payload("gps", m.payload)


def test_cli_lists_the_bundled_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(p.stem in out for p in FILES)
    assert main([str(SCENARIO_DIR / "no_such_scenario.toml"), "--no-registry"]) == 1
    assert "cannot read" in capsys.readouterr().err


# --- against the real broker and database -------------------------------------------------------------------------


def test_registry_of_every_scenario_is_accepted_by_the_api(test_env: dict[str, str]) -> None:
    token = create_token(load_settings(DbSettings), Role.admin, "scenario registry test")
    run_id = uuid.uuid4().hex[:8]
    with TestClient(create_app(load_settings(ApiSettings))) as client:
        client.base_url = client.base_url.join("/api/v1")
        client.headers["Authorization"] = f"Bearer {token}"
        for path in FILES:
            s = load_scenario(path, prefix=f"r{run_id}-")
            for request in s.registry_requests(BASE):
                response = client.request(request.method, request.path, json=request.body)
                assert response.status_code < 300, (path.stem, request.path, response.text)
        vehicle = client.get(f"/vehicles/r{run_id}-scn-trk-c1").json()
        assert vehicle["corridor_id"] == "corridor-airport-cargo"
        notes = client.get("/release-notes", params={"vehicle_id": f"r{run_id}-scn-trk-g2"}).json()
        assert [n["id"] for n in notes] == [f"r{run_id}-HF0716000103"]


def test_backlog_run_reaches_the_database(
    site: str, ingest: IngestService, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    s = load_scenario(SCENARIO_DIR / "temp_excursion.toml", prefix=f"{site}-")
    device = f"{site}-scn-temp-cr-01"
    token = create_token(load_settings(DbSettings), Role.admin, "scenario backlog test")
    started = datetime.now(UTC)
    with TestClient(create_app(load_settings(ApiSettings))) as client:
        client.base_url = client.base_url.join("/api/v1")
        client.headers["Authorization"] = f"Bearer {token}"
        summary = run(s, CommonSettings(site=site), client, "backlog")
        assert client.get(f"/devices/{device}").json()["profile"] == "chilled-salmon"
    assert summary.published == {device: 120} and summary.registry == 2
    assert summary.seconds < 10, "a backlog run is not paced"
    assert abs((summary.base + timedelta(seconds=s.duration_s) - started).total_seconds()) < 5
    expected = {
        (m.seq, m.ts, orjson.loads(m.payload)["temp_c"], orjson.loads(m.payload)["door_open"])
        for m in s.messages(summary.base, site)
    }

    def stored() -> list[tuple[Any, ...]]:
        return db.execute(
            "SELECT seq, ts, temp_c, door_open FROM temperatures WHERE device_id = %s", (device,)
        ).fetchall()

    wait_for(lambda: len(stored()) >= len(expected), timeout=15, state=lambda: f"{len(stored())} stored")
    time.sleep(0.3)  # anything extra would show up now
    rows = {(seq, ts, round(float(temp), 2), door) for seq, ts, temp, door in stored()}
    assert rows == expected, "exactly the scenario's readings, stamped as they happened"


def test_live_run_paces_messages_in_real_time(site: str, test_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "live.toml"
    path.write_text(GOOD.replace("duration_s = 600", "duration_s = 1.5").replace(
        "to_s = 300\nevery_s = 60", "to_s = 1.2\nevery_s = 0.4"), encoding="utf-8")  # fmt: skip
    s = load_scenario(path, prefix=f"{site}-")
    arrivals: list[float] = []
    target = MqttTarget.parse(test_env["BONDWATCH_MQTT_URL"])
    listener = make_client(target, f"test-scn-{uuid.uuid4().hex[:8]}")
    subscribed = threading.Event()
    listener.on_subscribe = lambda *args: subscribed.set()
    listener.on_message = lambda client, userdata, msg: arrivals.append(time.monotonic())
    listener.connect(target.host, target.port)
    listener.loop_start()
    try:
        listener.subscribe(f"bw/v1/{site}/temp/+", qos=1)
        assert subscribed.wait(5)
        started = time.monotonic()
        summary = run(s, CommonSettings(site=site), None, "live")
        elapsed = time.monotonic() - started
        wait_for(lambda: len(arrivals) == 3, timeout=5)
    finally:
        listener.disconnect()
        listener.loop_stop()
    assert summary.published == {f"{site}-room-1": 3} and summary.registry == 0
    assert elapsed >= 1.5, "a live run lasts the scenario's duration"
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(0.25 < g < 0.6 for g in gaps), f"messages 0.4 s apart, got {gaps}"
