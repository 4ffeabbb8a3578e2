"""NMEA decoding of real receiver captures, with gpsd's own output (the ``.chk`` files) as oracle.

The logs are fed the way ``gpsfake`` feeds them (``#`` comment lines dropped, every other byte as
is) in random chunk sizes. The mapping asserted, per log:

* gpsd's epochs are the distinct ``time`` values of its TPVs with mode >= 2; for each the last
  TPV of that time is gpsd's final word (mode, lat, lon). TPVs without a time are fixes gpsd got
  before it knew the date (a GLL/GGA ahead of the first RMC): we refuse those sentences with
  ``no_date`` instead, so they are not epochs on either side.
* We emit exactly one Position per gpsd epoch, at the same time of day, fix ``2d``/``3d`` equal to
  mode 2/3, lat/lon equal to 1e-6 degrees. Dates agree too, except neo-m8n, where gpsd's replay
  dates the fixes 2034-11-01 (its GPS week-rollover guess) while the RMCs say 18 March 2015.
* The only extra Positions are epochs gpsd never reported because the log ends inside them:
  neo-m8n's last epoch (171948: RMC and GGA arrive, its cycle-ending GLL does not; we emit at the
  GGA, gpsd waits for the end of the cycle).

Per log (SOURCES.md): tn200 and holux have no fix at all (RMC V, GGA quality 0) -> no Position;
firefly-II's 23 GGAs all have a wrong checksum -> Positions from RMC only, 2d (no GGA altitude,
no GSA); triton400's spliced ``$GPGGA,030130$GPGLL,...`` loses the GGA (framer: truncated) while
the GLL after it still makes epoch 030130 (3d from the GSA seen before it).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from edge.errors import FrameError
from edge.protocols.nmea import NmeaDecoder, NmeaFramer
from edge.readings import Position
from tests.conftest import shared_testdata
from tests.edge.protocols.sanity import check_position


@dataclass(frozen=True)
class Expect:
    positions: int
    fix: str | None
    rejected: dict[str, int]  # decoder reasons, and framer reasons prefixed "framer:"
    extra_times: tuple[str, ...] = ()  # epochs we emit that gpsd never reported
    gpsd_date_ok: bool = True
    speed: bool = True
    hdop_sats: set[str] = field(default_factory=set)


LOGS = {
    # 19 RMC status V + 19 GGA quality 0.
    "tn200": Expect(0, None, {"no_fix": 38}),
    # 11 RMC V + 11 GGA quality 0; the partial last GGA ends with its line but has no "*hh".
    "holux-gm-210": Expect(0, None, {"no_fix": 22, "no_checksum": 1}),
    # Every GGA: bad checksum (and an empty quality field behind it).
    "firefly-II": Expect(23, "2d", {"bad_checksum": 23}),
    # GLL+GGA of 030129 come before the first RMC (no date yet); one GGA is spliced into a GLL.
    "triton400": Expect(5, "3d", {"no_date": 2, "framer:truncated": 1}),
    # Ten no-fix epochs at the end: GGA quality 0 + RMC status V each.
    "bu353-glonass": Expect(9, "3d", {"no_fix": 20}),
    # The first GLL (171925) comes before any RMC.
    "neo-m8n": Expect(23, "3d", {"no_date": 1}, extra_times=("17:19:48",), gpsd_date_ok=False),
}


def _gpsfake_bytes(path: Path) -> bytes:
    return b"".join(line for line in path.read_bytes().splitlines(keepends=True) if not line.startswith(b"#"))


def _decode(data: bytes, seed: int) -> tuple[list[Position], Counter[str]]:
    rejected: Counter[str] = Counter()
    framer = NmeaFramer(on_error=lambda e: rejected.update([f"framer:{e.reason}"]))
    decoder = NmeaDecoder()
    rng = random.Random(seed)
    sentences: list[str] = []
    i = 0
    while i < len(data):
        n = rng.randint(1, 97)
        sentences += framer.feed(data[i : i + n])
        i += n
    sentences += framer.flush()
    positions: list[Position] = []
    for sentence in sentences:
        try:
            positions += decoder.decode(sentence)
        except FrameError as exc:
            rejected[exc.reason] += 1
    positions += decoder.flush()
    return positions, rejected


def _gpsd_epochs(chk: Path) -> dict[str, dict[str, Any]]:
    """time -> the last TPV gpsd reported for it, among TPVs with a fix and a time."""
    epochs: dict[str, dict[str, Any]] = {}
    for line in chk.read_text().splitlines():
        if not line.startswith("{"):
            continue
        obj = json.loads(line)
        if obj.get("class") == "TPV" and obj.get("mode", 0) >= 2 and "time" in obj:
            epochs[obj["time"]] = obj
    return epochs


@pytest.mark.parametrize("name", sorted(LOGS))
@pytest.mark.parametrize("seed", [1, 2])
def test_log_against_gpsd(name: str, seed: int) -> None:
    log = shared_testdata("nmea", f"{name}.log")
    chk = shared_testdata("nmea", f"{name}.log.chk")
    expect = LOGS[name]
    positions, rejected = _decode(_gpsfake_bytes(log), seed)

    for p in positions:
        check_position(p)
    assert dict(rejected) == expect.rejected
    assert len(positions) == expect.positions
    assert len({p.ts for p in positions}) == len(positions), "one Position per epoch"
    assert [p.ts for p in positions] == sorted(p.ts for p in positions)
    if expect.fix:
        assert {p.fix for p in positions} == {expect.fix}

    epochs = _gpsd_epochs(chk)
    by_time = {p.ts.time().isoformat(): p for p in positions}
    ours_only = set(by_time) - {datetime.fromisoformat(t).time().isoformat() for t in epochs}
    assert ours_only == set(expect.extra_times)
    assert len(positions) == len(epochs) + len(expect.extra_times)
    for when, tpv in epochs.items():
        gpsd_ts = datetime.fromisoformat(when)
        p = by_time[gpsd_ts.time().isoformat()]
        if expect.gpsd_date_ok:
            assert p.ts == gpsd_ts
        assert p.fix == {2: "2d", 3: "3d"}[tpv["mode"]], when
        assert p.lat == pytest.approx(tpv["lat"], abs=1e-6), when
        assert p.lon == pytest.approx(tpv["lon"], abs=1e-6), when


def test_neo_m8n_dates_come_from_rmc() -> None:
    positions, _ = _decode(_gpsfake_bytes(shared_testdata("nmea", "neo-m8n.log")), seed=3)
    assert {p.ts.date().isoformat() for p in positions} == {"2015-03-18"}


def test_bu353_mixed_talkers_fill_every_field() -> None:
    positions, _ = _decode(_gpsfake_bytes(shared_testdata("nmea", "bu353-glonass.log")), seed=4)
    first, second = positions[0], positions[1]
    # 081411: GNRMC only (the log starts after that epoch's GPGGA) -> no hdop/sats from a GGA.
    assert first.speed_kmh == pytest.approx(0.60 * 1.852) and first.heading_deg == pytest.approx(301.29)
    # 081412: GPGGA + 2 x GNGSA + GNRMC -> everything, hdop/sats from the GGA.
    assert (second.hdop, second.sats) == (4.87, 5)
    assert second.speed_kmh == pytest.approx(0.52 * 1.852) and second.heading_deg == pytest.approx(301.26)


def test_firefly_positions_come_from_rmc_alone() -> None:
    positions, _ = _decode(_gpsfake_bytes(shared_testdata("nmea", "firefly-II.log")), seed=5)
    assert all(p.hdop is None and p.sats is None for p in positions)
    assert all(p.speed_kmh == 0.0 and p.heading_deg == 0.0 for p in positions)


def test_whole_log_in_one_feed_counts_comment_lines_as_garbage() -> None:
    log = shared_testdata("nmea", "tn200.log")
    garbage: list[FrameError] = []
    framer = NmeaFramer(on_error=garbage.append)
    sentences = framer.feed(log.read_bytes()) + framer.flush()
    comments = [line for line in log.read_bytes().splitlines() if line.startswith(b"#")]
    assert [e.reason for e in garbage] == ["garbage"] * len(comments)
    assert [e.raw for e in garbage] == comments
    assert len(sentences) == len(log.read_bytes().splitlines()) - len(comments)
