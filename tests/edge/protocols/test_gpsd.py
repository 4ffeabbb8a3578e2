"""gpsd JSON: hand-made TPV/SKY lines, and the JSON gpsd itself wrote into the regression .chk files."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from edge.errors import FrameError
from edge.protocols.gpsd import GpsdDecoder, GpsdFramer
from edge.readings import Position
from tests.conftest import shared_testdata
from tests.edge.protocols.sanity import check_position

TPV = {
    "class": "TPV",
    "device": "/dev/ttyUSB0",
    "mode": 3,
    "time": "2026-11-25T02:15:30.000Z",
    "lat": 39.6086667,
    "lon": 109.7801667,
    "altHAE": 1322.0,
    "track": 87.5,
    "speed": 11.1,
}


def line(**changes: object) -> str:
    obj = {**TPV, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not None})


def reason(decoder: GpsdDecoder, text: str) -> str:
    with pytest.raises(FrameError) as info:
        decoder.decode(text)
    return info.value.reason


def test_tpv_3d_and_2d() -> None:
    d = GpsdDecoder()
    (p,) = d.decode(line())
    check_position(p)
    assert p.ts == datetime(2026, 11, 25, 2, 15, 30, tzinfo=UTC)
    assert (p.lat, p.lon, p.fix, p.heading_deg) == (39.6086667, 109.7801667, "3d", 87.5)
    assert p.speed_kmh == pytest.approx(39.96)
    (q,) = d.decode(line(mode=2, time="2026-11-25T02:15:31.000Z", speed=None, track=None))
    check_position(q)
    assert (q.fix, q.speed_kmh, q.heading_deg) == ("2d", None, None)


def test_sky_gives_hdop_and_sats_to_following_tpvs() -> None:
    d = GpsdDecoder()
    sats = [{"PRN": n, "used": n % 2 == 0} for n in range(1, 11)]
    assert d.decode(json.dumps({"class": "SKY", "hdop": 0.9, "satellites": sats})) == []
    (p,) = d.decode(line())
    assert (p.hdop, p.sats) == (0.9, 5)
    d.decode(json.dumps({"class": "SKY", "uSat": 12}))  # hdop not repeated: kept
    (q,) = d.decode(line(time="2026-11-25T02:15:31Z"))
    assert (q.hdop, q.sats) == (0.9, 12)


def test_no_fix_and_refusals() -> None:
    d = GpsdDecoder()
    assert reason(d, line(mode=1, lat=None, lon=None)) == "no_fix"
    assert reason(d, line(mode=0)) == "no_fix"
    assert reason(d, line(mode=None)) == "empty_fields"
    assert reason(d, line(mode="3")) == "malformed"
    assert reason(d, line(mode=4)) == "malformed"
    assert reason(d, line(time=None)) == "no_time"
    assert reason(d, line(time="yesterday")) == "malformed"
    assert reason(d, line(time="2026-11-25T02:15:30")) == "malformed"  # no offset
    assert reason(d, line(lat=None)) == "empty_fields"
    assert reason(d, line(lat="39.6")) == "malformed"
    assert reason(d, line(lat=91.0)) == "out_of_range"
    assert reason(d, line(speed=-1.0)) == "out_of_range"
    assert reason(d, line(track=400.0)) == "out_of_range"
    assert reason(d, "{not json") == "malformed"
    assert reason(d, "[1, 2]") == "malformed"
    assert reason(d, '{"mode": 3}') == "empty_fields"
    assert reason(d, '{"class": "SKY", "uSat": -1}') == "malformed"
    assert d.decode('{"class":"VERSION","release":"3.25"}') == []
    assert d.decode('{"class":"DEVICES","devices":[]}') == []


def test_numeric_time_and_one_position_per_time() -> None:
    d = GpsdDecoder()
    (p,) = d.decode(line(time=1795572930.5))
    assert p.ts == datetime(2026, 11, 25, 2, 15, 30, 500000, tzinfo=UTC)
    assert d.decode(line(time=1795572930.5, mode=2)) == []  # same epoch reported again


def test_framer() -> None:
    errors: list[FrameError] = []
    framer = GpsdFramer(on_error=errors.append)
    a, b = line(), line(time="2026-11-25T02:15:31Z")
    data = f"{a}\r\n$GPRMC,whatever\r\n{b}\n".encode()
    out = [x for i in range(0, len(data), 5) for x in framer.feed(data[i : i + 5])]
    assert out == [a, b]
    assert framer.feed(b'{"class":"TPV"') == []
    assert framer.flush() == []
    assert [e.reason for e in errors] == ["garbage", "truncated"]
    small = GpsdFramer(max_len=64, on_error=errors.append)
    assert small.feed(f"{a}\n".encode()) == []
    assert errors[-1].reason == "overlong"


@pytest.mark.parametrize("name", ["bu353-glonass", "firefly-II", "neo-m8n", "triton400", "tn200", "holux-gm-210"])
def test_gpsd_chk_json(name: str) -> None:
    """gpsd's own TPV/SKY output of the regression logs decodes to one Position per reported epoch."""
    chk = shared_testdata("nmea", f"{name}.log.chk")
    lines = [x for x in chk.read_text().splitlines() if x.startswith("{")]
    expected: dict[str, dict[str, object]] = {}
    for x in lines:
        obj = json.loads(x)
        if obj["class"] == "TPV" and obj["mode"] >= 2 and "time" in obj:
            expected.setdefault(obj["time"], obj)
    d = GpsdDecoder()
    framer = GpsdFramer()
    positions: list[Position] = []
    reasons: list[str] = []
    for text in framer.feed(chk.read_bytes()) + framer.flush():
        try:
            positions += d.decode(text)
        except FrameError as exc:
            reasons.append(exc.reason)
    assert len(positions) == len(expected)
    for p, (when, tpv) in zip(positions, expected.items(), strict=True):
        check_position(p)
        assert p.ts == datetime.fromisoformat(when)
        assert (p.lat, p.lon, p.fix) == (tpv["lat"], tpv["lon"], {2: "2d", 3: "3d"}[tpv["mode"]])  # type: ignore[index]
    assert set(reasons) <= {"no_fix", "no_time"}
    assert framer.rejected.keys() <= {"garbage"}  # the echoed NMEA sentences


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_time_whose_utc_is_outside_the_calendar_is_malformed(when: str) -> None:
    """Found by tests/fuzz: astimezone(UTC) raised OverflowError instead of FrameError."""
    with pytest.raises(FrameError) as info:
        GpsdDecoder().decode(line(time=when))
    assert info.value.reason == "malformed"
