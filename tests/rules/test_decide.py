"""Customs gates: tag reads grouped into passages, and the pass/hold decision of each outbound passage.

``decide`` is tested as the pure function it is; grouping, the decision's timing and the ``gate_hold`` alert
through an in-memory :class:`Engine` (builders in ``test_engine.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from rules.decide import decide
from rules.effects import PassageOutcome, at
from rules.registry import Registry
from rules.steps.gates import passage_id
from tests.rules.test_engine import (
    BONDED_A,
    BONDED_B,
    BONDED_B_URN,
    DOMESTIC,
    STRANGER,
    T0,
    VEH1_EPC,
    VEH3_EPC,
    actions,
    add_note,
    changes,
    feed,
    make_engine,
    make_registry,
    only,
    passages,
    rfid,
)

PID = passage_id("gate-e1", T0)


def decide_out(
    reg: Registry, epcs: Sequence[str], *, pid: str = PID, first: float = T0, directions: Sequence[str | None] = ()
) -> PassageOutcome:
    """An outbound passage of ``epcs`` at gate-e1, first read at ``first``."""
    dirs = list(directions) or ["out"] * len(epcs)
    return decide(pid, "gate-e1", list(epcs), dirs, ["reader-e1"], len(epcs), first, first + 3, reg)


def codes(outcome: PassageOutcome) -> list[tuple[str, str | None]]:
    return [(r.code, r.epc) for r in outcome.reasons]


# --- decide --------------------------------------------------------------------------------------------------------


def test_pass_when_the_note_lists_every_cargo_tag() -> None:
    reg = make_registry()
    add_note(reg, "HF-1", [BONDED_A, BONDED_B, DOMESTIC])
    outcome = decide_out(reg, [VEH1_EPC, BONDED_A, BONDED_B, DOMESTIC])
    assert (outcome.decision, outcome.reasons, outcome.release_note_id) == ("pass", (), "HF-1")
    assert (outcome.vehicle_id, outcome.vehicle_epc, outcome.direction) == ("veh-1", VEH1_EPC, "out")
    assert outcome.cargo_epcs == (BONDED_A, BONDED_B, DOMESTIC)
    assert outcome.missing_epcs == ()


def test_an_empty_truck_passes_on_an_empty_vehicle_note() -> None:
    reg = make_registry()
    add_note(reg, "HF-EMPTY", [])
    outcome = decide_out(reg, [VEH1_EPC])
    assert (outcome.decision, outcome.release_note_id, outcome.cargo_epcs) == ("pass", "HF-EMPTY", ())


def test_tags_listed_but_not_read_are_missing_without_holding_the_truck() -> None:
    reg = make_registry()
    add_note(reg, "HF-1", [BONDED_A, BONDED_B, DOMESTIC])
    outcome = decide_out(reg, [VEH1_EPC, BONDED_A])
    assert outcome.decision == "pass"
    assert outcome.missing_epcs == tuple(sorted([BONDED_B, DOMESTIC]))


def test_hold_without_a_vehicle_tag() -> None:
    reg = make_registry()
    add_note(reg, "HF-1", [BONDED_A])
    outcome = decide_out(reg, [BONDED_A])
    assert outcome.decision == "hold" and outcome.vehicle_id is None
    assert codes(outcome) == [("no_vehicle_tag", None), ("bonded_without_note", BONDED_A)]


def test_hold_with_several_vehicles() -> None:
    reg = make_registry()
    add_note(reg, "HF-1", [BONDED_A])
    outcome = decide_out(reg, [VEH1_EPC, VEH3_EPC, BONDED_A])
    assert outcome.decision == "hold" and outcome.vehicle_id is None
    assert codes(outcome) == [("several_vehicles", None), ("bonded_without_note", BONDED_A)]
    assert "veh-1" in outcome.reasons[0].text and "veh-3" in outcome.reasons[0].text
    assert outcome.cargo_epcs == (BONDED_A,)


def test_hold_without_a_note_names_every_bonded_or_unregistered_tag_but_not_the_non_bonded() -> None:
    reg = make_registry()
    outcome = decide_out(reg, [VEH1_EPC, BONDED_A, DOMESTIC, STRANGER])
    assert outcome.decision == "hold" and outcome.release_note_id is None
    assert codes(outcome) == [
        ("no_release_note", None),
        ("bonded_without_note", BONDED_A),
        ("bonded_without_note", STRANGER),
    ]
    assert "unregistered tag" in outcome.reasons[2].text and "bonded goods" in outcome.reasons[1].text


def test_a_truck_with_only_non_bonded_goods_still_needs_a_note() -> None:
    outcome = decide_out(make_registry(), [VEH1_EPC, DOMESTIC])
    assert (outcome.decision, codes(outcome)) == ("hold", [("no_release_note", None)])


def test_hold_for_a_tag_not_on_the_note_names_the_epc_and_its_urn() -> None:
    reg = make_registry()
    add_note(reg, "HF-1", [BONDED_A])
    outcome = decide_out(reg, [VEH1_EPC, BONDED_A, BONDED_B])
    assert (outcome.decision, outcome.release_note_id) == ("hold", "HF-1")
    assert codes(outcome) == [("not_on_note", BONDED_B)]
    text = outcome.reasons[0].text
    assert BONDED_B in text and BONDED_B_URN in text and "HF-1" in text


def test_the_best_matching_note_is_judged() -> None:
    reg = make_registry()
    add_note(reg, "HF-OLD", [BONDED_A], valid_from=T0 - 7200)
    add_note(reg, "HF-NEW", [BONDED_A, BONDED_B], valid_from=T0 - 600)
    outcome = decide_out(reg, [VEH1_EPC, BONDED_A, BONDED_B])
    assert (outcome.decision, outcome.release_note_id) == ("pass", "HF-NEW")


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "usable"),
    [
        (T0 - 3600, T0 - 1, False),
        (T0 + 1, T0 + 3600, False),
        (T0, T0 + 3600, True),
        (T0 - 3600, T0, True),
    ],
    ids=["expired", "not-yet-valid", "from-first-read", "until-first-read"],
)
def test_a_note_is_usable_only_within_its_validity(valid_from: float, valid_until: float, usable: bool) -> None:
    reg = make_registry()
    add_note(reg, "HF-1", [BONDED_A], valid_from=valid_from, valid_until=valid_until)
    outcome = decide_out(reg, [VEH1_EPC, BONDED_A])
    if usable:
        assert (outcome.decision, outcome.release_note_id) == ("pass", "HF-1")
    else:
        assert codes(outcome) == [("no_release_note", None), ("bonded_without_note", BONDED_A)]


def test_a_note_used_by_another_passage_is_not_usable_but_the_same_passage_replays() -> None:
    reg = make_registry()
    add_note(reg, "HF-1", [BONDED_A], used_by=PID)
    assert decide_out(reg, [VEH1_EPC, BONDED_A]).decision == "pass", "a replay of the passage that used it"
    other = decide_out(reg, [VEH1_EPC, BONDED_A], pid=passage_id("gate-e1", T0 + 600), first=T0 + 600)
    assert other.decision == "hold" and ("no_release_note", None) in codes(other)


def test_an_inbound_passage_is_not_decided() -> None:
    outcome = decide_out(make_registry(), [VEH1_EPC, STRANGER, BONDED_A], directions=["in", "in", "out"])
    assert (outcome.direction, outcome.decision, outcome.reasons) == ("in", None, ())


def test_reads_that_do_not_say_their_direction_count_as_outbound() -> None:
    outcome = decide_out(make_registry(), [VEH1_EPC], directions=[None])
    assert (outcome.direction, outcome.decision) == ("out", "hold")


# --- passages through the engine -----------------------------------------------------------------------------------


def test_reads_within_the_window_are_one_passage_and_a_read_after_it_starts_the_next() -> None:
    engine = make_engine()
    fx = feed(engine, rfid(T0, VEH1_EPC), rfid(T0 + 5, BONDED_A), rfid(T0 + 5.5, VEH1_EPC))
    assert passages(fx) == []
    fx = feed(engine, rfid(T0 + 12, VEH1_EPC))  # the next truck: closes the first passage on the readings' clock
    (first,) = passages(fx)
    assert (first.id, first.gate_id, first.reads) == (passage_id("gate-e1", T0), "gate-e1", 3)
    assert (first.epcs, first.first_read, first.last_read, first.readers) == (
        (VEH1_EPC, BONDED_A),
        T0,
        T0 + 5.5,
        ("reader-e1",),
    )
    (second,) = passages(engine.tick(T0 + 22))
    assert (second.id, second.reads, second.first_read) == (passage_id("gate-e1", T0 + 12), 1, T0 + 12)


def test_a_read_exactly_one_window_after_the_first_starts_a_new_passage() -> None:
    engine = make_engine()
    feed(engine, rfid(T0, VEH1_EPC))
    (first,) = passages(feed(engine, rfid(T0 + 10, BONDED_A)))
    assert first.epcs == (VEH1_EPC,)


def test_a_live_passage_is_decided_when_its_window_ends() -> None:
    engine = make_engine()
    feed(engine, rfid(T0, VEH1_EPC), rfid(T0 + 3, BONDED_A))
    assert passages(engine.tick(T0 + 9.9)) == []
    (outcome,) = passages(engine.tick(T0 + 10))
    assert outcome.epcs == (VEH1_EPC, BONDED_A)
    assert passages(engine.tick(T0 + 20)) == [], "decided once"


def test_a_backlog_is_decided_once_what_is_left_of_its_window_has_passed() -> None:
    engine = make_engine()
    arrived = T0 + 3600  # read an hour ago, delivered all at once now
    engine.process([rfid(T0, VEH1_EPC, arrived=arrived), rfid(T0 + 2, BONDED_A, arrived=arrived)])
    assert passages(engine.tick(arrived + 7.9)) == [], "the reader might still send reads of the last 8 s"
    (outcome,) = passages(engine.tick(arrived + 8.0))
    assert outcome.reads == 2 and outcome.first_read == T0


def test_a_live_passage_from_a_reader_whose_clock_lags_is_one_passage() -> None:
    reg = make_registry()
    add_note(reg, "HF-1", [BONDED_A, BONDED_B])
    engine = make_engine(reg)
    lag = 60.0
    reads = [(0.0, VEH1_EPC), (1.0, BONDED_A), (2.0, BONDED_B)]  # live: arrival = the reader's ts + 60 s
    decided: list[PassageOutcome] = []
    now = T0
    while now <= T0 + 15:  # the service ticks every 0.5 s
        for offset, epc in reads:
            if offset == now - T0:
                decided += passages(engine.process([rfid(T0 - lag + offset, epc, arrived=now)]))
        decided += passages(engine.tick(now))
        now += 0.5
    assert [(p.epcs, p.decision) for p in decided] == [((VEH1_EPC, BONDED_A, BONDED_B), "pass")]


def test_the_gate_is_the_reads_gate_id_else_the_readers_registered_gate() -> None:
    reg = make_registry()
    engine = make_engine(reg)
    feed(engine, rfid(T0, VEH1_EPC, gate_id="gate-s1"), rfid(T0, BONDED_A, device="reader-n1"))
    gates = sorted(p.gate_id for p in passages(engine.tick(T0 + 10)))
    assert gates == ["gate-n1", "gate-s1"]


def test_a_pass_uses_the_note_and_clears_a_gate_hold_of_the_vehicle() -> None:
    reg = make_registry()
    engine = make_engine(reg)
    feed(engine, rfid(T0, VEH1_EPC), rfid(T0 + 1, BONDED_A))
    fx = engine.tick(T0 + 10)
    (held,) = passages(fx)
    hold = only(fx, "gate_hold", "open")
    assert (hold.subject_kind, hold.subject_id, hold.when, hold.severity) == ("vehicle", "veh-1", at(T0), "major")
    assert (hold.details["passage_id"], hold.details["gate_id"]) == (held.id, "gate-e1")
    assert [r["code"] for r in hold.details["reasons"]] == ["no_release_note", "bonded_without_note"]
    assert hold.details["epcs"] == [VEH1_EPC, BONDED_A]

    note = add_note(reg, "HF-1", [BONDED_A])  # the dispatcher issues the release note; the truck comes round again
    feed(engine, rfid(T0 + 300, VEH1_EPC), rfid(T0 + 301, BONDED_A))
    fx = engine.tick(T0 + 310)
    (passed,) = passages(fx)
    assert (passed.decision, passed.release_note_id) == ("pass", "HF-1")
    assert note.used_passage_id == passed.id
    cleared = only(fx, "gate_hold", "clear")
    assert (cleared.subject_id, cleared.when) == ("veh-1", at(T0 + 300))
    assert cleared.details["cleared_by_passage"] == passed.id

    feed(engine, rfid(T0 + 900, VEH1_EPC), rfid(T0 + 901, BONDED_A))  # the same note a second time
    (again,) = passages(engine.tick(T0 + 910))
    assert again.decision == "hold" and ("no_release_note", None) in codes(again)


def test_a_replayed_passage_decides_as_before() -> None:
    reg = make_registry()
    add_note(reg, "HF-1", [BONDED_A])
    first = make_engine(reg)
    feed(first, rfid(T0, VEH1_EPC), rfid(T0 + 1, BONDED_A))
    (before,) = passages(first.tick(T0 + 10))
    assert reg.notes["HF-1"].used_passage_id == before.id
    restarted = make_engine(reg)  # crashed before acknowledging: the broker delivers the reads again
    feed(restarted, rfid(T0, VEH1_EPC), rfid(T0 + 1, BONDED_A))
    (after,) = passages(restarted.tick(T0 + 10))
    assert (after.id, after.decision, after.release_note_id) == (before.id, "pass", "HF-1")


def test_a_hold_without_a_known_vehicle_is_the_gates() -> None:
    engine = make_engine()
    feed(engine, rfid(T0, BONDED_A), rfid(T0 + 1, STRANGER))
    fx = engine.tick(T0 + 10)
    hold = only(fx, "gate_hold", "open")
    assert (hold.subject_kind, hold.subject_id) == ("gate", "gate-e1")
    assert "an unidentified vehicle" in hold.details["message_en"]


def test_an_inbound_passage_raises_nothing() -> None:
    engine = make_engine()
    feed(engine, rfid(T0, VEH1_EPC, direction="in"), rfid(T0 + 1, STRANGER, direction="in"))
    fx = engine.tick(T0 + 10)
    (outcome,) = passages(fx)
    assert (outcome.direction, outcome.decision) == ("in", None)
    assert changes(fx) == []
    assert engine.passes.last("veh-1") is None


def test_missing_tags_are_reported_on_the_passage() -> None:
    reg = make_registry()
    add_note(reg, "HF-1", [BONDED_A, BONDED_B])
    engine = make_engine(reg)
    feed(engine, rfid(T0, VEH1_EPC), rfid(T0 + 1, BONDED_A), rfid(T0 + 2, BONDED_A))
    fx = engine.tick(T0 + 10)
    (outcome,) = passages(fx)
    assert (outcome.decision, outcome.missing_epcs, outcome.reads) == ("pass", (BONDED_B,), 3)
    assert actions(fx, "gate_hold") == ["clear"]
