"""The rules engine without I/O: a registry of the synthetic Ordos site in memory, readings in, alert changes out.

Every test builds its own :class:`Engine` over a fresh in-memory registry, feeds it observations (one batch per
call unless said otherwise) and reads the :class:`Effects`. No database, no broker. The builders at the top are
shared with ``test_decide.py`` and ``test_fences.py``.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY

from bondwatch.contract.payloads import GpsReading, RfidReading, TempReading
from bondwatch.geofence import parse_feature
from rules.effects import AlertChange, Effects, PassageOutcome, at
from rules.engine import Engine
from rules.fences import FenceSet
from rules.observation import Observation
from rules.registry import Device, Profile, Registry, ReleaseNote, Tag, Vehicle
from rules.settings import RulesSettings
from rules.steps.base import Step
from simulators.fleet import grai96, sgtin96
from simulators.geography import geofence_features

LonLat = tuple[float, float]

# The readings' clock of every test: 2026-09-21T12:53:20Z.
T0 = 1_790_000_000.0
ZONE = ZoneInfo("Asia/Shanghai")

# Places of the synthetic site (lon, lat); test_fences checks that each lies where its name says.
INSIDE: LonLat = (109.8850, 39.5200)  # on the internal avenue, inside the bonded boundary
INSIDE_SOUTH: LonLat = (109.8900, 39.5190)  # another point inside, 450 m east-south-east of INSIDE
EAST_ACCESS: LonLat = (109.8945, 39.5200)  # inside, where the east gate's road meets the avenue
SOUTH_ACCESS: LonLat = (109.8780, 39.5200)  # inside, where the south gate's road meets the avenue
OUTSIDE: LonLat = (109.8990, 39.5240)  # east of the fence, ~260 m from the zone and from every corridor
OUTSIDE_2: LonLat = (109.9000, 39.5245)  # a little further out
GATE_ROAD: LonLat = (109.8990, 39.5200)  # on the corridor east of gate-e1, before its first bend at 109.9000
IN_CORRIDOR: LonLat = (109.9030, 39.51925)  # on the same corridor (to the airport logistics park), past the bend
OFF_CORRIDOR: LonLat = (109.9030, 39.5230)  # ~370 m north of that corridor, outside the zone
OFF_CORRIDOR_2: LonLat = (109.9040, 39.5235)
OTHER_CORRIDOR: LonLat = (109.8780, 39.5130)  # on the corridors south of gate-s1, not the logistics park's
WEST_OF_HOLE: LonLat = (109.8715, 39.5260)  # inside, west of the non-bonded service area (the boundary's hole)
EAST_OF_HOLE: LonLat = (109.8780, 39.5260)  # inside, east of it: the straight line between crosses ~387 m of hole
SW_OF_HOLE: LonLat = (109.8715, 39.5230)  # inside, 110 m south of the hole's south-west corner
SE_OF_HOLE: LonLat = (109.8780, 39.5230)  # inside, 110 m south of its south-east corner
FAR: LonLat = (110.2350, 39.5200)  # ~30 km east of INSIDE

LOGISTICS_CORRIDOR = "corridor-airport-logistics-park"

PROFILE = Profile(
    "chilled", min_c=0.0, max_c=4.0, delay_s=1800.0, hysteresis_c=0.5, pre_alarm_margin_c=0.5, offline_after_s=600.0
)

VEH1_EPC = grai96("6901234", "10001", 1)
VEH2_EPC = grai96("6901234", "10001", 2)
VEH3_EPC = grai96("6901234", "10001", 3)
BONDED_A = sgtin96("6901234", "100001", 1)
BONDED_B = sgtin96("6901234", "100001", 2)
BONDED_B_URN = "urn:epc:id:sgtin:6901234.100001.2"
DOMESTIC = sgtin96("6921234", "200001", 7)  # a registered non-bonded cargo tag
STRANGER = sgtin96("6901234", "100009", 99)  # a cargo tag nobody registered


# --- builders ------------------------------------------------------------------------------------------------------


@cache
def site_fences() -> FenceSet:
    """The synthetic site's geofences (read-only, shared by every test)."""
    return FenceSet([parse_feature(f, f["id"]) for f in geofence_features()])


def make_registry() -> Registry:
    """Two cold-room sensors with a profile and one without; two trucks and a tag-only third; gate readers; tags."""
    reg = Registry()
    reg.profiles = {PROFILE.name: PROFILE}
    devices = [
        Device("temp-1", "temp", "冷库1 cold room 1", None, None, PROFILE.name),
        Device("temp-2", "temp", "冷库2 cold room 2", None, None, PROFILE.name),
        Device("temp-bare", "temp", "无配置传感器 sensor without profile", None, None, None),
        Device("gps-1", "gps", "车载终端1", "veh-1", None, None),
        Device("gps-2", "gps", "车载终端2", "veh-2", None, None),
        Device("gps-stray", "gps", "未绑定终端", None, None, None),
        Device("reader-e1", "rfid", "东卡口读写器", None, "gate-e1", None),
        Device("reader-n1", "rfid", "北卡口读写器", None, "gate-n1", None),
    ]
    reg.devices = {d.device_id: d for d in devices}
    vehicles = [
        Vehicle("veh-1", "保税运输车1", "蒙K·B0001", "gps-1", True, None, VEH1_EPC, 120.0, 20.0),
        Vehicle("veh-2", "配送车2", "蒙K·B0002", "gps-2", False, LOGISTICS_CORRIDOR, VEH2_EPC, 120.0, 20.0),
        Vehicle("veh-3", "配送车3", "蒙K·B0003", None, False, None, None, 120.0, 20.0),
    ]
    reg.vehicles = {v.vehicle_id: v for v in vehicles}
    tags = [
        Tag(VEH3_EPC, "vehicle", "non_bonded", "veh-3", "windscreen tag of veh-3"),
        Tag(BONDED_A, "cargo", "bonded", None, "bonded pallet A"),
        Tag(BONDED_B, "cargo", "bonded", None, "bonded pallet B"),
        Tag(DOMESTIC, "cargo", "non_bonded", None, "domestic cashmere"),
    ]
    reg.tags = {t.epc: t for t in tags}
    reg.fences = site_fences()
    reg._index()
    return reg


def add_note(
    reg: Registry,
    note_id: str,
    epcs: Iterable[str],
    *,
    vehicle_id: str = "veh-1",
    valid_from: float = T0 - 3600,
    valid_until: float = T0 + 3600,
    used_by: str | None = None,
) -> ReleaseNote:
    note = ReleaseNote(note_id, vehicle_id, frozenset(epcs), valid_from, valid_until, used_by)
    reg.notes[note_id] = note
    return note


def make_engine(registry: Registry | None = None, **settings: Any) -> Engine:
    """An engine judging silence from the start (no start-up grace)."""
    engine = Engine(RulesSettings(**settings), registry if registry is not None else make_registry())
    engine.silence.judging_from = 0.0
    return engine


_SEQ = itertools.count(1)


def _observation(
    kind: str, device: str, model: type[Any], fields: dict[str, Any], t: float, seq: int | None, arrived: float | None
) -> Observation:
    body = {"ts": round(t * 1000), "seq": next(_SEQ) if seq is None else seq, **fields}
    reading = model.model_validate(body)
    return Observation(kind, device, reading, reading.ts.timestamp(), t if arrived is None else arrived)


def temp(
    t: float,
    temp_c: float,
    *,
    device: str = "temp-1",
    door_open: bool | None = None,
    seq: int | None = None,
    arrived: float | None = None,
) -> Observation:
    fields: dict[str, Any] = {"temp_c": float(temp_c)}
    if door_open is not None:
        fields["door_open"] = door_open
    return _observation("temp", device, TempReading, fields, t, seq, arrived)


def gps(
    t: float,
    where: LonLat = INSIDE,
    *,
    device: str = "gps-1",
    fix: str = "3d",
    seq: int | None = None,
    arrived: float | None = None,
    **extra: float,
) -> Observation:
    fields: dict[str, Any] = {"lon": where[0], "lat": where[1], "fix": fix, **extra}
    return _observation("gps", device, GpsReading, fields, t, seq, arrived)


def rfid(
    t: float,
    epc: str,
    *,
    device: str = "reader-e1",
    direction: str | None = "out",
    gate_id: str | None = None,
    seq: int | None = None,
    arrived: float | None = None,
) -> Observation:
    fields: dict[str, Any] = {"epc": epc, "antenna": 1, "rssi_dbm": -55.0}
    if direction is not None:
        fields["direction"] = direction
    if gate_id is not None:
        fields["gate_id"] = gate_id
    return _observation("rfid", device, RfidReading, fields, t, seq, arrived)


def feed(engine: Engine, *observations: Observation) -> Effects:
    """Each observation in a batch of its own; the effects of all of them."""
    fx = Effects()
    for obs in observations:
        fx.extend(engine.process([obs]))
    return fx


def each(engine: Engine, observations: Sequence[Observation]) -> list[Effects]:
    """Each observation in a batch of its own; the effects per observation."""
    return [engine.process([obs]) for obs in observations]


def changes(fx: Effects, type_: str | None = None) -> list[AlertChange]:
    return [c for c in fx.alerts if type_ is None or c.type == type_]


def actions(fx: Effects, type_: str) -> list[str]:
    return [c.action for c in changes(fx, type_)]


def only(fx: Effects, type_: str, action: str) -> AlertChange:
    (found,) = [c for c in changes(fx, type_) if c.action == action]
    return found


def passages(fx: Effects) -> list[PassageOutcome]:
    return list(fx.passages)


def local(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=ZONE).isoformat(timespec="seconds")


def step_named(engine: Engine, name: str) -> Step[Any]:
    (step,) = [s for s in engine.steps if s.name == name]
    return step


def drive_pass(engine: Engine, t: float, *cargo: str) -> PassageOutcome:
    """veh-1 leaves through gate-e1 at ``t`` with ``cargo``; the passage is decided on the tick after its window."""
    feed(engine, rfid(t, VEH1_EPC), *(rfid(t + 1 + i, epc) for i, epc in enumerate(cargo)))
    (outcome,) = passages(engine.tick(t + 10 + len(cargo)))
    return outcome


# --- stream order --------------------------------------------------------------------------------------------------


def test_a_late_in_range_reading_does_not_clear_an_open_excursion() -> None:
    engine = make_engine()
    fx = feed(engine, temp(T0, 5.0), temp(T0 + 1801, 5.2))
    assert actions(fx, "temp_excursion") == ["open"]
    late = temp(T0 + 1000, 2.0)  # measured before the excursion opened, delivered now
    fx = engine.process([late])
    assert late.marks["late"] is True
    assert changes(fx) == []
    fx = feed(engine, temp(T0 + 1900, 3.0))
    assert actions(fx, "temp_excursion") == ["clear"]


def test_a_repeat_is_ignored_and_the_same_ts_with_a_higher_seq_is_judged() -> None:
    engine = make_engine()
    feed(engine, temp(T0, 5.0, seq=10))
    opening = temp(T0 + 1801, 5.5, seq=11)
    assert actions(engine.process([opening]), "temp_excursion") == ["open"]
    repeat = temp(T0 + 1801, 5.5, seq=11)
    assert changes(engine.process([repeat])) == []
    assert repeat.marks["late"] is True
    lower_seq = temp(T0 + 1801, 1.0, seq=9)
    assert changes(engine.process([lower_seq])) == [] and lower_seq.marks["late"] is True
    same_ts_next_seq = temp(T0 + 1801, 1.0, seq=12)
    assert actions(engine.process([same_ts_next_seq]), "temp_excursion") == ["clear"]
    assert same_ts_next_seq.fresh


def test_late_readings_do_not_move_low_soc_or_the_track() -> None:
    engine = make_engine()
    feed(engine, gps(T0, INSIDE, soc_pct=50.0), gps(T0 + 60, INSIDE_SOUTH, soc_pct=49.0))
    late = gps(T0 + 30, OUTSIDE, soc_pct=5.0)
    fx = engine.process([late])
    assert changes(fx) == []
    assert late.marks == {"late": True}


# --- position hygiene ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        (gps(T0, INSIDE, fix="none"), "no_fix"),
        (gps(T0, (0.0, 0.0)), "null_island"),
        (gps(T0, INSIDE, hdop=20.5), "hdop"),
        (gps(T0 + 121, INSIDE, arrived=T0), "future"),
        (gps(T0, INSIDE, arrived=T0 + 7 * 86_400 + 1), "stale"),
    ],
    ids=["fix-none", "zero-zero", "hdop", "future", "stale"],
)
def test_invalid_fixes_are_not_accepted(case: Observation, reason: str) -> None:
    engine = make_engine()
    engine.process([case])
    assert {k: case.marks[k] for k in ("valid", "fix", "rejected")} == {
        "valid": False,
        "fix": False,
        "rejected": reason,
    }
    assert case.marks.get("late", False) == (reason == "future"), "a future-stamped reading is judged by no rule"


@pytest.mark.parametrize(
    "case",
    [gps(T0, INSIDE, hdop=20.0), gps(T0 + 120, INSIDE, arrived=T0), gps(T0, INSIDE, arrived=T0 + 7 * 86_400)],
    ids=["hdop-at-limit", "future-within-tolerance", "age-at-limit"],
)
def test_fixes_at_the_limits_are_accepted(case: Observation) -> None:
    engine = make_engine()
    engine.process([case])
    assert case.marks == {"valid": True, "fix": True}


def test_a_single_jump_is_rejected_and_the_next_normal_fix_accepted() -> None:
    engine = make_engine()
    first, jump, normal = gps(T0, INSIDE), gps(T0 + 10, FAR), gps(T0 + 20, INSIDE_SOUTH)
    fx = feed(engine, first, jump, normal)
    assert first.marks == {"valid": True, "fix": True}
    assert jump.marks == {"valid": True, "fix": False, "rejected": "jump"}
    assert normal.marks == {"valid": True, "fix": True}
    assert changes(fx) == [], "a rejected jump must not reach the geofence rule"


@pytest.mark.parametrize("reset_after", [1, 2, 3, 5])
def test_after_reset_after_jumps_to_one_new_place_it_is_believed(reset_after: int) -> None:
    engine = make_engine(rules_jump_reset_after=reset_after)
    feed(engine, gps(T0, INSIDE))
    jumps = [gps(T0 + 10 * (i + 1), FAR) for i in range(reset_after)]
    per_fix = each(engine, jumps)
    assert [j.marks["fix"] for j in jumps] == [False] * (reset_after - 1) + [True]
    # the truck really is 30 km away, outside the zone: bonded_exit from the fix that was believed, not before
    assert [actions(fx, "bonded_exit") for fx in per_fix] == [[]] * (reset_after - 1) + [["open"]]
    nearby = gps(T0 + 10 * (reset_after + 1), (FAR[0] + 0.001, FAR[1]))
    engine.process([nearby])
    assert nearby.marks == {"valid": True, "fix": True}


def test_scattered_jumps_never_move_the_truck() -> None:
    engine = make_engine(rules_jump_reset_after=3)
    feed(engine, gps(T0, INSIDE))
    east, west, north = (110.2350, 39.5200), (109.5350, 39.5200), (109.8850, 39.8000)  # ~30 km each way
    glitches = [gps(T0 + 10, east), gps(T0 + 20, west), gps(T0 + 30, north), gps(T0 + 40, east)]
    per_fix = each(engine, glitches)
    assert [g.marks["fix"] for g in glitches] == [False] * 4, "glitches that disagree with each other are not a move"
    assert [actions(fx, "bonded_exit") for fx in per_fix] == [[]] * 4


def test_a_normal_fix_between_jumps_restarts_the_count() -> None:
    engine = make_engine(rules_jump_reset_after=2)
    fixes = [gps(T0, INSIDE), gps(T0 + 10, FAR), gps(T0 + 20, INSIDE), gps(T0 + 30, FAR), gps(T0 + 40, FAR)]
    feed(engine, *fixes)
    assert [f.marks["fix"] for f in fixes] == [True, False, True, False, True]


def test_a_fix_from_the_future_does_not_blind_the_device() -> None:
    engine = make_engine()
    bogus = gps(T0 + 86_400, INSIDE, arrived=T0)  # the terminal's clock jumped a day ahead once
    engine.process([bogus])
    assert bogus.marks["rejected"] == "future"
    normal = gps(T0 + 10, INSIDE_SOUTH, arrived=T0 + 10)
    engine.process([normal])
    assert normal.marks.get("fix") is True, f"the next normal fix was not accepted: {normal.marks}"


def test_a_temperature_from_the_future_does_not_blind_the_cold_chain() -> None:
    engine = make_engine()
    engine.process([temp(T0 + 86_400, 3.0, arrived=T0)])
    fx = feed(engine, *(temp(T0 + 10 + 60 * i, 6.0) for i in range(40)))
    assert actions(fx, "temp_excursion")[:1] == ["open"]


# --- cold chain ----------------------------------------------------------------------------------------------------


def test_an_excursion_opens_at_the_first_reading_after_the_delay_once_with_details() -> None:
    engine = make_engine()
    readings = [
        temp(T0, 3.0),
        temp(T0 + 60, 5.0),  # first reading above max_c: the excursion starts here
        temp(T0 + 960, 6.5),
        temp(T0 + 1860, 5.5),  # start + delay exactly: not yet
        temp(T0 + 1861, 5.4),  # the first reading after start + delay
        temp(T0 + 1900, 5.2),
        temp(T0 + 2500, 7.0),
    ]
    per = each(engine, readings)
    assert [actions(fx, "temp_excursion") for fx in per] == [[], [], [], [], ["open"], ["update"], ["update"]]
    opened = only(per[4], "temp_excursion", "open")
    assert (opened.subject_kind, opened.subject_id, opened.when) == ("device", "temp-1", at(T0 + 1861))
    assert opened.severity == "major"
    d = opened.details
    assert (d["direction"], d["profile"], d["limit_c"], d["peak_c"]) == ("high", "chilled", 4.0, 6.5)
    assert (d["duration_s"], d["started_at"], d["last_c"]) == (1801, local(T0 + 60), 5.4)
    last = only(per[6], "temp_excursion", "update").details
    assert (last["peak_c"], last["duration_s"]) == (7.0, 2440)
    assert changes(per[4], "temp_pre_alarm") == []


def test_an_excursion_clears_only_once_back_inside_by_the_hysteresis() -> None:
    engine = make_engine()
    feed(engine, temp(T0, 5.0), temp(T0 + 1801, 5.0))
    per = each(engine, [temp(T0 + 1900, 3.8), temp(T0 + 2000, 3.6), temp(T0 + 2100, 3.4), temp(T0 + 2200, 3.0)])
    assert [actions(fx, "temp_excursion") for fx in per] == [[], [], ["clear"], []]
    cleared = only(per[2], "temp_excursion", "clear")
    assert cleared.when == at(T0 + 2100)
    assert cleared.details["ended_at"] == local(T0 + 2100)
    assert cleared.details["duration_s"] == 1801  # from the start to the last reading outside


def test_an_excursion_clears_at_exactly_max_minus_hysteresis() -> None:
    engine = make_engine()
    feed(engine, temp(T0, 5.0), temp(T0 + 1801, 5.0))
    assert actions(feed(engine, temp(T0 + 1900, 3.5)), "temp_excursion") == ["clear"]


def test_a_low_excursion() -> None:
    engine = make_engine()
    per = each(
        engine,
        [temp(T0, -1.0), temp(T0 + 1800, -2.5), temp(T0 + 1801, -2.0), temp(T0 + 1900, 0.3), temp(T0 + 2000, 0.6)],
    )
    assert [actions(fx, "temp_excursion") for fx in per] == [[], [], ["open"], [], ["clear"]]
    d = only(per[2], "temp_excursion", "open").details
    assert (d["direction"], d["limit_c"], d["peak_c"], d["duration_s"]) == ("low", 0.0, -2.5, 1801)


def test_an_excursion_shorter_than_the_delay_raises_nothing_and_restarts_the_clock() -> None:
    engine = make_engine()
    fx = feed(
        engine,
        temp(T0, 5.0),
        temp(T0 + 1700, 6.0),
        temp(T0 + 1750, 3.0),  # back inside before the delay ran out
        temp(T0 + 1810, 5.0),  # a new excursion starts here
        temp(T0 + 3000, 5.0),
        temp(T0 + 3610, 5.0),  # 1800 s after the new start: not yet
    )
    assert changes(fx) == []
    assert actions(feed(engine, temp(T0 + 3611, 5.0)), "temp_excursion") == ["open"]


def test_a_pre_alarm_opens_after_the_delay_in_the_band_and_clears_below_it_by_the_hysteresis() -> None:
    engine = make_engine()
    per = each(
        engine,
        [
            temp(T0, 3.0),
            temp(T0 + 60, 3.5),  # in the band [3.5, 4.0]
            temp(T0 + 1860, 3.9),
            temp(T0 + 1861, 3.8),
            temp(T0 + 1900, 3.4),  # below the band, not by the hysteresis
            temp(T0 + 2000, 3.1),
            temp(T0 + 2100, 3.0),  # max - margin - hysteresis
        ],
    )
    assert [actions(fx, "temp_pre_alarm") for fx in per] == [[], [], [], ["open"], [], [], ["clear"]]
    opened = only(per[3], "temp_pre_alarm", "open")
    assert opened.when == at(T0 + 1861) and opened.severity == "warning"
    d = opened.details
    assert (d["direction"], d["limit_c"], d["margin_c"], d["peak_c"]) == ("high", 4.0, 0.5, 3.9)
    assert d["profile"] == "chilled"
    assert d["started_at"] == local(T0 + 60)
    assert all(changes(fx, "temp_excursion") == [] for fx in per)


def test_a_low_side_pre_alarm() -> None:
    engine = make_engine()
    per = each(engine, [temp(T0, 0.4), temp(T0 + 1801, 0.2), temp(T0 + 1900, 0.9), temp(T0 + 2000, 1.0)])
    assert [actions(fx, "temp_pre_alarm") for fx in per] == [[], ["open"], [], ["clear"]]
    assert only(per[1], "temp_pre_alarm", "open").details["direction"] == "low"


def test_an_excursion_supersedes_an_open_pre_alarm() -> None:
    engine = make_engine()
    feed(engine, temp(T0, 3.8))
    assert actions(feed(engine, temp(T0 + 1801, 3.9)), "temp_pre_alarm") == ["open"]
    fx = feed(engine, temp(T0 + 2000, 5.0), temp(T0 + 3000, 5.5))
    assert changes(fx) == [], "the pre-alarm stays while the excursion is pending"
    fx = feed(engine, temp(T0 + 3801, 5.5))
    assert actions(fx, "temp_excursion") == ["open"]
    superseded = only(fx, "temp_pre_alarm", "clear")
    assert superseded.details == {"superseded_by": "temp_excursion"}
    assert superseded.when == at(T0 + 3801)
    # once the excursion is over, nothing of the pre-alarm comes back by itself
    fx = feed(engine, temp(T0 + 3900, 3.0))
    assert actions(fx, "temp_excursion") == ["clear"] and changes(fx, "temp_pre_alarm") == []


def test_door_openings_before_and_during_an_excursion_are_in_its_details() -> None:
    engine = make_engine()
    fx = feed(
        engine,
        temp(T0 - 3000, 3.0, door_open=True),  # long before: beyond the 30 min look-back
        temp(T0 - 2700, 3.0, door_open=False),
        temp(T0, 3.0, door_open=True),
        temp(T0 + 300, 3.2, door_open=False),
        temp(T0 + 600, 4.5),  # the excursion starts
        temp(T0 + 900, 5.5, door_open=True),
        temp(T0 + 1200, 5.5, door_open=False),
        temp(T0 + 2000, 5.5, door_open=True),  # still open when the alert opens
        temp(T0 + 2401, 5.0),
    )
    d = only(fx, "temp_excursion", "open").details
    assert d["door_open_periods"] == [
        {"from": local(T0), "to": local(T0 + 300), "duration_s": 300},
        {"from": local(T0 + 900), "to": local(T0 + 1200), "duration_s": 300},
        {"from": local(T0 + 2000), "to": local(T0 + 2401), "duration_s": 401},
    ]
    assert d["door_open_s"] == 1001


def test_a_sensor_without_a_profile_raises_nothing() -> None:
    engine = make_engine()
    fx = feed(engine, *(temp(T0 + 600 * i, 30.0, device="temp-bare") for i in range(10)))
    fx.extend(engine.tick(T0 + 86_400))
    assert changes(fx) == []


# --- silence -------------------------------------------------------------------------------------------------------


def test_sensor_offline_opens_when_the_limit_runs_out_and_clears_when_heard() -> None:
    engine = make_engine()
    heard_at = T0 + 5.0
    feed(engine, temp(T0, 3.0, arrived=heard_at))
    assert changes(engine.tick(heard_at + 599)) == []
    fx = engine.tick(heard_at + 600)
    opened = only(fx, "sensor_offline", "open")
    assert (opened.subject_kind, opened.subject_id, opened.when) == ("device", "temp-1", at(heard_at + 600))
    assert opened.severity == "minor"
    assert opened.details["limit_s"] == 600.0 and opened.details["last_heard_at"] == local(heard_at)
    assert changes(engine.tick(heard_at + 900)) == [], "open once"
    fx = feed(engine, temp(T0 + 1000, 3.0, arrived=heard_at + 1000))
    cleared = only(fx, "sensor_offline", "clear")
    assert cleared.when == at(heard_at + 1000)


def test_sensor_offline_is_judged_on_arrival_not_ts() -> None:
    engine = make_engine()
    feed(engine, temp(T0 - 3600, 3.0, arrived=T0))  # an hour-old reading delivered now is still news
    assert changes(engine.tick(T0 + 599)) == []
    assert only(engine.tick(T0 + 600), "sensor_offline", "open").when == at(T0 + 600)


def test_silence_is_not_judged_before_judging_from() -> None:
    engine = make_engine()
    engine.silence.judging_from = T0 + 10_000
    feed(engine, temp(T0, 3.0))
    assert changes(engine.tick(T0 + 9_999)) == []
    assert only(engine.tick(T0 + 10_000), "sensor_offline", "open").when == at(T0 + 600)


def test_gps_lost_counts_only_valid_fixes() -> None:
    engine = make_engine()
    feed(engine, gps(T0, INSIDE))
    for i in range(1, 8):  # the terminal keeps talking, without a fix
        feed(engine, gps(T0 + 20 * i, INSIDE, fix="none"))
        if T0 + 20 * i < T0 + 120:
            assert changes(engine.tick(T0 + 20 * i)) == []
    assert changes(engine.tick(T0 + 119)) == []
    fx = engine.tick(T0 + 120)
    lost = only(fx, "gps_lost", "open")
    assert (lost.subject_kind, lost.subject_id, lost.when) == ("vehicle", "veh-1", at(T0 + 120))
    assert changes(feed(engine, gps(T0 + 200, INSIDE, fix="none"))) == []
    assert only(feed(engine, gps(T0 + 210, INSIDE)), "gps_lost", "clear").when == at(T0 + 210)


def test_no_silence_alerts_for_devices_without_a_profile_or_vehicle() -> None:
    engine = make_engine()
    feed(engine, temp(T0, 3.0, device="temp-bare"), gps(T0, INSIDE, device="gps-stray"))
    assert changes(engine.tick(T0 + 86_400)) == []


# --- low state of charge -------------------------------------------------------------------------------------------


def test_low_soc_opens_once_and_clears_with_hysteresis() -> None:
    engine = make_engine()
    socs = [30.0, 20.0, 19.9, 15.0, 22.0, 24.9, 25.0, 19.0]
    per = each(engine, [gps(T0 + 60 * i, INSIDE, soc_pct=soc) for i, soc in enumerate(socs)])
    assert [actions(fx, "low_soc") for fx in per] == [[], [], ["open"], [], [], [], ["clear"], ["open"]]
    opened = only(per[2], "low_soc", "open")
    assert (opened.subject_kind, opened.subject_id, opened.when) == ("vehicle", "veh-1", at(T0 + 120))
    assert opened.details["soc_pct"] == 19.9 and opened.details["threshold_pct"] == 20.0
    assert only(per[6], "low_soc", "clear").details["lowest_pct"] == 15.0


# --- geofence: bonded_exit -----------------------------------------------------------------------------------------


def test_a_bonded_vehicle_inside_raises_nothing() -> None:
    engine = make_engine()
    fx = feed(engine, gps(T0, INSIDE), gps(T0 + 60, INSIDE_SOUTH), gps(T0 + 120, EAST_ACCESS))
    assert changes(fx) == []


def test_outside_every_boundary_and_corridor_raises_a_critical_bonded_exit() -> None:
    engine = make_engine()
    feed(engine, gps(T0, INSIDE))
    fx = feed(engine, gps(T0 + 60, OUTSIDE))
    opened = only(fx, "bonded_exit", "open")
    assert opened.severity == "critical"
    assert (opened.subject_kind, opened.subject_id, opened.when) == ("vehicle", "veh-1", at(T0 + 60))
    assert (opened.details["lon"], opened.details["lat"]) == OUTSIDE
    assert 230 <= opened.details["distance_outside_m"] <= 290
    assert opened.details["last_pass_passage_id"] is None
    assert "crossed_between_fixes_m" not in opened.details
    assert actions(feed(engine, gps(T0 + 120, OUTSIDE_2)), "bonded_exit") == ["update"]


def test_a_bonded_vehicle_in_any_corridor_raises_nothing() -> None:
    engine = make_engine()
    fx = feed(engine, gps(T0, EAST_ACCESS), gps(T0 + 30, GATE_ROAD), gps(T0 + 60, IN_CORRIDOR))
    assert changes(fx) == []
    engine = make_engine()
    fx = feed(engine, gps(T0, INSIDE), gps(T0 + 60, SOUTH_ACCESS), gps(T0 + 120, OTHER_CORRIDOR))
    assert changes(fx) == []


def test_a_vehicle_that_is_not_bonded_transport_raises_no_bonded_exit() -> None:
    engine = make_engine()
    fx = feed(engine, gps(T0, EAST_ACCESS, device="gps-2"), gps(T0 + 60, OUTSIDE, device="gps-2"))
    assert changes(fx, "bonded_exit") == []


def test_a_pass_excuses_being_outside_for_30_minutes() -> None:
    reg = make_registry()
    add_note(reg, "HF-1", [BONDED_A, BONDED_B])
    engine = make_engine(reg)
    feed(engine, gps(T0 - 60, EAST_ACCESS))
    outcome = drive_pass(engine, T0, BONDED_A, BONDED_B)
    assert outcome.decision == "pass"
    fx = feed(engine, gps(T0 + 60, OUTSIDE), gps(T0 + 1800, OUTSIDE))
    assert changes(fx, "bonded_exit") == []
    fx = feed(engine, gps(T0 + 31 * 60, OUTSIDE_2))
    opened = only(fx, "bonded_exit", "open")
    assert opened.when == at(T0 + 31 * 60)
    assert opened.details["last_pass_passage_id"] == outcome.id


def test_a_hold_does_not_excuse_being_outside() -> None:
    engine = make_engine()
    feed(engine, gps(T0 - 60, EAST_ACCESS))
    assert drive_pass(engine, T0, BONDED_A).decision == "hold"
    assert actions(feed(engine, gps(T0 + 60, OUTSIDE)), "bonded_exit") == ["open"]


@pytest.mark.parametrize("note", [True, False], ids=["pass", "hold"])
def test_a_fix_outside_during_an_open_passage_waits_for_its_decision(note: bool) -> None:
    reg = make_registry()
    if note:
        add_note(reg, "HF-1", [BONDED_A])
    engine = make_engine(reg)
    feed(engine, gps(T0 - 60, EAST_ACCESS))
    feed(engine, rfid(T0, VEH1_EPC), rfid(T0 + 1, BONDED_A))
    fx = feed(engine, gps(T0 + 5, OUTSIDE))
    assert changes(fx) == [], "judged before the passage that began earlier was decided"
    assert changes(engine.tick(T0 + 9)) == [] and engine.gates.undecided_before(T0 + 5)
    fx = engine.tick(T0 + 10)
    (outcome,) = passages(fx)
    assert outcome.decision == ("pass" if note else "hold")
    if note:
        assert changes(fx, "bonded_exit") == []
        assert changes(engine.tick(T0 + 20)) == [], "judged once"
    else:
        assert only(fx, "bonded_exit", "open").when == at(T0 + 5)
        assert actions(fx, "gate_hold") == ["open"]


def test_sparse_fixes_inside_whose_line_crosses_out_of_the_zone_raise_bonded_exit() -> None:
    engine = make_engine()
    feed(engine, gps(T0, WEST_OF_HOLE))
    fx = feed(engine, gps(T0 + 60, EAST_OF_HOLE))
    opened = only(fx, "bonded_exit", "open")
    assert 180 <= opened.details["crossed_between_fixes_m"] <= 200  # half the hole's ~387 m width: how far out
    assert opened.details["distance_outside_m"] == 0
    assert opened.when == at(T0 + 60)


def test_sparse_fixes_whose_line_stays_inside_or_are_too_far_apart_raise_nothing() -> None:
    engine = make_engine()
    around = [gps(T0, WEST_OF_HOLE), gps(T0 + 60, SW_OF_HOLE), gps(T0 + 120, SE_OF_HOLE), gps(T0 + 180, EAST_OF_HOLE)]
    assert changes(feed(engine, *around)) == []
    engine = make_engine()  # more than rules_segment_max_gap_s apart: nobody knows the road it took
    assert changes(feed(engine, gps(T0, WEST_OF_HOLE), gps(T0 + 601, EAST_OF_HOLE))) == []


def test_a_bonded_truck_coming_back_along_its_corridor_raises_no_bonded_exit_at_a_bend() -> None:
    engine = make_engine()  # on its way back: its pass was hours ago, and inbound passages decide nothing
    fx = feed(engine, gps(T0, IN_CORRIDOR), gps(T0 + 60, EAST_ACCESS))  # 740 m by road: 45 km/h round the bend
    assert changes(fx, "bonded_exit") == [], "the truck never left the corridor or the zone"


def test_a_crossing_shorter_than_rules_segment_outside_m_raises_nothing() -> None:
    engine = make_engine(rules_segment_outside_m=400.0)
    assert changes(feed(engine, gps(T0, WEST_OF_HOLE), gps(T0 + 60, EAST_OF_HOLE))) == []


# --- geofence: corridor_deviation ----------------------------------------------------------------------------------


def test_corridor_deviation_opens_off_the_corridor_outside_the_zone_and_clears_back_in_it() -> None:
    engine = make_engine()
    route = [
        gps(T0, INSIDE, device="gps-2"),  # inside the zone, not on the corridor: fine
        gps(T0 + 60, EAST_ACCESS, device="gps-2"),
        gps(T0 + 120, IN_CORRIDOR, device="gps-2"),
        gps(T0 + 180, OFF_CORRIDOR, device="gps-2"),
        gps(T0 + 240, OFF_CORRIDOR_2, device="gps-2"),
        gps(T0 + 300, IN_CORRIDOR, device="gps-2"),
        gps(T0 + 360, IN_CORRIDOR, device="gps-2"),
    ]
    per = each(engine, route)
    assert [actions(fx, "corridor_deviation") for fx in per] == [[], [], [], ["open"], ["update"], ["clear"], []]
    opened = only(per[3], "corridor_deviation", "open")
    assert (opened.subject_kind, opened.subject_id, opened.when, opened.severity) == (
        "vehicle",
        "veh-2",
        at(T0 + 180),
        "major",
    )
    assert opened.details["corridor_id"] == LOGISTICS_CORRIDOR
    assert 300 <= opened.details["distance_off_corridor_m"] <= 400
    assert only(per[5], "corridor_deviation", "clear").when == at(T0 + 300)


def test_another_corridor_is_not_the_vehicles_own() -> None:
    engine = make_engine()
    route = [gps(T0, INSIDE, device="gps-2"), gps(T0 + 60, SOUTH_ACCESS, device="gps-2")]
    fx = feed(engine, *route, gps(T0 + 120, OTHER_CORRIDOR, device="gps-2"))
    assert actions(fx, "corridor_deviation") == ["open"]
    assert actions(feed(engine, gps(T0 + 240, INSIDE, device="gps-2")), "corridor_deviation") == ["clear"]


# --- engine robustness and checkpoints -----------------------------------------------------------------------------


def _step_errors(step: str) -> float:
    return REGISTRY.get_sample_value("bondwatch_rules_step_errors_total", {"step": step}) or 0.0


def test_a_step_that_raises_is_logged_and_counted_and_the_rest_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine()
    coldchain = step_named(engine, "coldchain")
    handle = coldchain.handle

    def broken(obs: Observation, fx: Effects) -> None:
        if obs.device_id == "temp-1":
            raise RuntimeError("profile table corrupt")
        handle(obs, fx)

    monkeypatch.setattr(coldchain, "handle", broken)
    before = _step_errors("coldchain")
    with caplog.at_level(logging.ERROR, logger="rules.engine"):
        engine.process([temp(T0, 6.0), temp(T0, 6.0, device="temp-2"), gps(T0, INSIDE, soc_pct=50.0)])
        fx = engine.process(
            [temp(T0 + 1801, 6.0), temp(T0 + 1801, 6.0, device="temp-2"), gps(T0 + 1801, INSIDE, soc_pct=10.0)]
        )
    assert _step_errors("coldchain") == before + 2
    assert [c.subject_id for c in changes(fx, "temp_excursion")] == ["temp-2"]
    assert [c.subject_id for c in changes(fx, "low_soc")] == ["veh-1"], "a later step still ran"
    assert any("rule step coldchain failed on a reading of temp-1" in r.getMessage() for r in caplog.records)
    # the earlier silence step heard temp-1 although cold chain failed on it
    offline = changes(engine.tick(T0 + 1801 + 600), "sensor_offline")
    assert sorted(c.subject_id for c in offline) == ["temp-1", "temp-2"]


def test_a_tick_that_raises_does_not_stop_the_other_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine()

    def broken(now: float, fx: Effects) -> None:
        raise RuntimeError("clock lost")

    monkeypatch.setattr(engine.silence, "tick", broken)
    before = _step_errors("silence")
    feed(engine, rfid(T0, VEH1_EPC), temp(T0, 3.0))
    fx = engine.tick(T0 + 3600)
    assert len(passages(fx)) == 1 and actions(fx, "gate_hold") == ["open"]
    assert _step_errors("silence") == before + 1


def test_a_failing_prepare_leaves_the_other_steps_working(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine()
    geofence = step_named(engine, "geofence")

    def broken(batch: list[Observation]) -> None:
        raise ValueError("projection failed")

    monkeypatch.setattr(geofence, "prepare", broken)
    fx = engine.process([gps(T0, OUTSIDE, soc_pct=10.0)])
    assert actions(fx, "low_soc") == ["open"] and changes(fx, "bonded_exit") == []


def _checkpoint(engine: Engine) -> list[tuple[str, str, dict[str, Any]]]:
    """The engine's dirty states as the store keeps them: JSON, forgotten subjects deleted."""
    rows = json.loads(json.dumps(list(engine.dirty_states())))
    return [(rule, subject, state) for rule, subject, state in rows if state is not None]


def _cold_readings() -> list[Observation]:
    # ts every 5 min, all above max_c from T0: the excursion opens at the first reading after T0 + 1800
    return [temp(T0 + 300 * i, 5.0 + 0.1 * i, seq=100 + i, arrived=T0 + 300 * i + 1) for i in range(10)]


def test_a_checkpoint_mid_excursion_restores_to_the_same_outcome() -> None:
    straight = make_engine()
    uninterrupted = [actions(fx, "temp_excursion") for fx in each(straight, _cold_readings())]
    assert uninterrupted.index(["open"]) == 7

    before = make_engine()
    readings = _cold_readings()
    head = [actions(fx, "temp_excursion") for fx in each(before, readings[:4])]
    kept = _checkpoint(before)
    assert any(rule == "coldchain" and state["ex_dir"] == "high" and not state["ex_open"] for rule, _, state in kept)

    after = make_engine()
    assert after.restore(kept) == len(kept)
    replay = _cold_readings()
    redelivered = replay[3]  # the broker delivers the last unacknowledged message again
    assert changes(after.process([redelivered])) == [] and redelivered.marks["late"] is True
    tail = [actions(fx, "temp_excursion") for fx in each(after, replay[4:])]
    assert head + tail == uninterrupted
    expected = only(feed(make_engine(), *_cold_readings()), "temp_excursion", "open")
    again = make_engine()
    again.restore(kept)
    resumed = only(feed(again, *_cold_readings()[4:]), "temp_excursion", "open")
    assert resumed.when == expected.when and resumed.details == expected.details


def test_restore_ignores_unknown_rules_and_reports_unreadable_states(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine()
    rows: list[tuple[str, str, dict[str, Any]]] = [
        ("no-such-rule", "x", {}),
        ("coldchain", "temp-1", {"nonsense": 1}),
        ("order", "temp-1", {"t": T0, "seq": 5}),
    ]
    with caplog.at_level(logging.ERROR, logger="rules.engine"):
        assert engine.restore(rows) == 1
    assert any("coldchain/temp-1" in r.getMessage() for r in caplog.records)
    stale = temp(T0, 9.0, seq=5)
    engine.process([stale])
    assert stale.marks["late"] is True


def test_an_open_passage_and_a_parked_fix_survive_a_restart() -> None:
    reg = make_registry()
    add_note(reg, "HF-1", [BONDED_A])
    before = make_engine(reg)
    feed(before, gps(T0 - 60, EAST_ACCESS), rfid(T0, VEH1_EPC), rfid(T0 + 1, BONDED_A))
    assert changes(feed(before, gps(T0 + 5, OUTSIDE))) == []  # parked behind the open passage
    after = make_engine(reg)
    after.restore(_checkpoint(before))
    fx = after.tick(T0 + 10)
    assert [p.decision for p in passages(fx)] == ["pass"]
    assert changes(fx, "bonded_exit") == [], "the parked fix was excused by the pass decided after the restart"
    assert only(feed(after, gps(T0 + 1900, OUTSIDE_2)), "bonded_exit", "open").when == at(T0 + 1900)


def test_an_open_silence_alert_is_not_raised_again_after_a_restart() -> None:
    before = make_engine()
    feed(before, temp(T0, 3.0))
    assert actions(before.tick(T0 + 600), "sensor_offline") == ["open"]
    after = make_engine()
    after.restore(_checkpoint(before))
    assert changes(after.tick(T0 + 1200)) == []
    assert actions(feed(after, temp(T0 + 1300, 3.0)), "sensor_offline") == ["clear"]
