"""TagSmoother: sightings within a window collapse into one TagRead; deterministic on given times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.readings import TagRead
from edge.smoothing import TagSmoother

T0 = datetime(2026, 11, 25, 2, 15, 30, tzinfo=UTC)
TRUCK = "3005FB63AC1F3841EC880467"
PALLET = "300833B2DDD906C000000000"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sight(epc: str, seconds: float, rssi: float | None, antenna: int = 1, **kw: object) -> TagRead:
    return TagRead(ts=at(seconds), epc=epc, antenna=antenna, rssi_dbm=rssi, first_seen=at(seconds), **kw)  # type: ignore[arg-type]


def test_sightings_in_a_window_collapse() -> None:
    sm = TagSmoother(10)
    for i, (rssi, ant) in enumerate([(-60, 1), (-48, 2), (-55, 1), (None, 3)]):
        sm.add(sight(TRUCK, i, rssi, ant), now=at(i))
    sm.add(sight(PALLET, 1.5, -70), now=at(1.5))
    assert sm.flush(at(9.99)) == []
    assert len(sm) == 2
    truck, pallet = sm.flush(at(11.5))
    assert (truck.epc, truck.first_seen, truck.ts, truck.count) == (TRUCK, at(0), at(3), 4)
    assert (truck.rssi_dbm, truck.antenna) == (-48, 2)  # the strongest sighting's antenna
    assert (pallet.epc, pallet.count, pallet.first_seen) == (PALLET, 1, at(1.5))
    assert sm.flush(at(100)) == [] and len(sm) == 0


def test_window_is_measured_on_now_not_on_read_time() -> None:
    sm = TagSmoother(5)
    # A reader whose clock is an hour behind: its timestamps do not move the window.
    sm.add(sight(TRUCK, -3600, -50), now=at(0))
    sm.add(sight(TRUCK, -3598, -52), now=at(2))
    assert sm.flush(at(4.9)) == []
    (read,) = sm.flush(at(5))
    assert (read.first_seen, read.ts, read.count) == (at(-3600), at(-3598), 2)


def test_a_tag_that_stays_gives_one_read_per_window() -> None:
    sm = TagSmoother(10)
    for second in range(0, 25):
        sm.add(sight(TRUCK, second, -50), now=at(second))
    reads = sm.flush(at(25))
    assert [(r.first_seen, r.ts, r.count) for r in reads] == [(at(0), at(9), 10), (at(10), at(19), 10)]
    (last,) = sm.flush_all()
    assert (last.first_seen, last.count) == (at(20), 5)


def test_per_antenna_key() -> None:
    sm = TagSmoother(10, per_antenna=True)
    sm.add(sight(TRUCK, 0, -60, antenna=1), now=at(0))
    sm.add(sight(TRUCK, 1, -50, antenna=2), now=at(1))
    sm.add(sight(TRUCK, 2, -65, antenna=1), now=at(2))
    reads = sm.flush(at(20))
    assert [(r.antenna, r.count, r.rssi_dbm) for r in reads] == [(1, 2, -60), (2, 1, -50)]


def test_merges_counts_and_keeps_fields() -> None:
    sm = TagSmoother(3)
    a = TagRead(ts=at(1), epc=TRUCK, antenna=1, rssi_dbm=None, count=5, first_seen=at(0), gate_id="g1")
    b = TagRead(ts=at(2), epc=TRUCK, antenna=4, rssi_dbm=None, count=2, epc_uri="urn:epc:id:sgtin:x")
    sm.add(a, now=at(0))
    sm.add(b, now=at(1))
    (read,) = sm.flush(at(3))
    assert (read.count, read.first_seen, read.ts, read.antenna, read.gate_id) == (7, at(0), at(2), 1, "g1")
    assert read.rssi_dbm is None and read.epc_uri == "urn:epc:id:sgtin:x"


def test_deterministic_order_and_input_checks() -> None:
    def run() -> list[TagRead]:
        sm = TagSmoother(1)
        for epc in (PALLET, TRUCK):
            sm.add(sight(epc, 0, -50), now=at(0))
        sm.add(sight(TRUCK, 5, -50), now=at(5))  # closes TRUCK's first window on arrival
        return sm.flush(at(5.5))

    first = run()
    assert first == run()
    assert [r.epc for r in first] == [TRUCK, PALLET]  # same first_seen: by EPC
    with pytest.raises(ValueError):
        TagSmoother(0)
    with pytest.raises(ValueError):
        TagSmoother(float("nan"))
