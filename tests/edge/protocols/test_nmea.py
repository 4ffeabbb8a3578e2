"""NMEA framing and decoding on hand-made sentences: BeiDou talkers, $PBWEV, epochs, dates, refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import reduce

import pytest

from edge.errors import FrameError
from edge.protocols.nmea import NmeaDecoder, NmeaFramer
from edge.readings import Position
from tests.edge.protocols.sanity import check_position


def s(body: str) -> str:
    """``$body*hh`` with the right checksum."""
    return f"${body}*{reduce(lambda acc, c: acc ^ ord(c), body, 0):02X}"


def run(decoder: NmeaDecoder, *sentences: str) -> list[Position]:
    out: list[Position] = []
    for sentence in sentences:
        out += decoder.decode(sentence)
    return [check_position(p) for p in out]


def reason(decoder: NmeaDecoder, sentence: str) -> str:
    with pytest.raises(FrameError) as info:
        decoder.decode(sentence)
    return info.value.reason


# Ordos (the bonded zone's district): 39°36.5200'N 109°46.8100'E
RMC = "RMC,021530.00,A,3936.5200,N,10946.8100,E,21.6,87.5,251126,,,A"
GGA = "GGA,021530.00,3936.5200,N,10946.8100,E,1,14,0.8,1352.0,M,-30.1,M,,"
GSA = "GSA,A,3,01,02,03,04,05,06,07,08,,,,,1.5,0.8,1.2"
TS = datetime(2026, 11, 25, 2, 15, 30, tzinfo=UTC)
LAT, LON = 39 + 36.52 / 60, 109 + 46.81 / 60


# -- talkers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("talker", ["BD", "GB", "GN", "GP", "GL", "GA"])
def test_every_supported_talker(talker: str) -> None:
    (p,) = run(NmeaDecoder(), s(talker + RMC), s(talker + GSA), s(talker + GGA))
    assert (p.ts, p.fix, p.hdop, p.sats) == (TS, "3d", 0.8, 14)
    assert p.lat == pytest.approx(LAT) and p.lon == pytest.approx(LON)
    assert p.speed_kmh == pytest.approx(21.6 * 1.852) and p.heading_deg == 87.5


def test_beidou_receiver_with_vtg_and_gll() -> None:
    """A BeiDou-only module (BD talker) sending GGA, GSA, VTG, GLL; the date from an earlier BDRMC."""
    d = NmeaDecoder()
    assert run(d, s("BD" + RMC.replace("021530", "021529"))) == []  # waits for its GGA
    out = run(
        d,
        s("BDGGA,021530.00,3936.5210,N,10946.8120,E,1,09,1.1,1350.0,M,-30.1,M,,"),
        s("BDGSA,A,2,201,202,203,204,205,206,207,208,209,,,,2.0,1.1,1.6"),
        s("BDVTG,88.0,T,,M,10.0,N,18.5,K,A"),
        s("BDGLL,3936.5210,N,10946.8120,E,021530.00,A,A"),
    )
    (first,) = out  # 021529: RMC only; closed by the GGA of 021530
    assert first.ts.second == 29
    (second,) = d.flush()  # 021530: GGA (+GSA, VTG, GLL), no RMC in this epoch
    check_position(second)
    assert second.ts == TS and second.fix == "2d"  # GSA says 2D although GGA has an altitude
    assert (second.speed_kmh, second.heading_deg, second.hdop, second.sats) == (18.5, 88.0, 1.1, 9)
    assert second.lat == pytest.approx(39 + 36.521 / 60)


def test_unsupported_talker_and_ignored_sentences() -> None:
    d = NmeaDecoder()
    assert reason(d, s("II" + RMC)) == "unsupported"
    assert d.decode(s("GPGSV,3,1,11,08,75,303,44,07,66,172,51,11,51,055,36,28,39,325,36")) == []
    assert d.decode(s("GPTXT,01,01,02,ANTSTATUS=OK")) == []
    assert d.decode(s("PUBX,00,021530.00,3936.5200,N")) == []  # another vendor's proprietary sentence


# -- checksums and shape ----------------------------------------------------------------------


def test_checksums() -> None:
    d = NmeaDecoder()
    good = s("GP" + RMC)
    assert reason(d, good[:-2] + ("00" if good[-2:] != "00" else "01")) == "bad_checksum"
    assert reason(d, good[:-3]) == "no_checksum"
    assert reason(d, "$GPGGA,030130$GPGLL,2638.1728,N,08011.3893,W,030131.000,A,A*41") == "bad_checksum"
    assert reason(d, "hello") == "malformed"
    assert run(d, good.lower()[:1] + good[1:-2] + good[-2:].lower()) == []  # lower-case hex is accepted


def test_bad_fields() -> None:
    d = NmeaDecoder()
    assert reason(d, s("GPRMC,,A,3936.5200,N,10946.8100,E,0,0,251126,,,A")) == "empty_fields"
    assert reason(d, s("GPRMC,02xx30,A,3936.5200,N,10946.8100,E,0,0,251126,,,A")) == "malformed"
    assert reason(d, s("GPRMC,021530,A,3936.5200,X,10946.8100,E,0,0,251126,,,A")) == "malformed"
    assert reason(d, s("GPRMC,021530,A,9936.5200,N,10946.8100,E,0,0,251126,,,A")) == "out_of_range"
    assert reason(d, s("GPRMC,021530,A,3936.5200,N,10946.8100,E,fast,0,251126,,,A")) == "malformed"
    assert reason(d, s("GPRMC,021530,A,3936.5200,N,10946.8100,E,9000,0,251126,,,A")) == "out_of_range"
    assert reason(d, s("GPRMC,021530,A,3936.5200,N,10946.8100,E,1,0,2x1126,,,A")) == "malformed"
    assert reason(d, s("GPGGA,021530.00,3936.5200,N,10946.8100,E,,14,0.8,1352.0,M,-30.1,M,,")) == "empty_fields"
    assert reason(d, s("GPGSA,A,,,,,,,,,,,,,,,,")) == "empty_fields"


# -- no fix -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "GPRMC,021530.00,V,3936.5200,N,10946.8100,E,0.0,,251126,,,N",
        "GPRMC,021530.00,A,3936.5200,N,10946.8100,E,0.0,,251126,,,N",  # mode N: not valid
        "GPRMC,021530.00,A,,,,,0.0,,251126,,,A",  # status A but no position
        "GPGGA,021530.00,3936.5200,N,10946.8100,E,0,00,99.9,,M,,M,,",
        "GPGGA,021530.00,3936.5200,N,10946.8100,E,6,05,2.0,1352.0,M,-30.1,M,,",  # dead reckoning
        "GPGGA,021530.00,,,,,1,05,2.0,1352.0,M,-30.1,M,,",
        "GPGLL,3936.5200,N,10946.8100,E,021530.00,V,N",
        "BDGLL,,,,,021530.00,A,A",
    ],
)
def test_no_fix_is_refused_never_emitted(body: str) -> None:
    d = NmeaDecoder()
    run(d, s("GP" + RMC.replace("021530", "021529")))
    assert reason(d, s(body)) == "no_fix"
    positions = d.flush() + d.flush()
    assert [p.ts.second for p in positions] == [29]  # only the earlier, valid epoch
    assert all(p.fix != "none" for p in positions)


def test_a_no_fix_sentence_spoils_its_epoch() -> None:
    d = NmeaDecoder()
    assert run(d, s("GP" + RMC)) == []  # waiting for the GGA of its cycle
    assert reason(d, s("GPGGA,021530.00,3936.5200,N,10946.8100,E,0,00,99.9,,M,,M,,")) == "no_fix"
    assert d.flush() == []


def test_position_completed_by_a_refused_sentence_comes_with_the_next_call() -> None:
    d = NmeaDecoder()
    run(d, s("GP" + RMC.replace("021530", "021529")))
    assert run(d, s("GPGLL,3936.5200,N,10946.8100,E,021530.00,A,A")) != []  # closes 021529
    # 021530 holds only a GLL; the no-fix GGA of 021531 closes it, then is refused itself.
    assert reason(d, s("GPGGA,021531.00,,,,,0,00,,,M,,M,,")) == "no_fix"
    (p,) = d.decode(s("GPGSV,1,1,00"))
    assert p.ts.second == 30 and p.fix == "2d"


# -- epochs -----------------------------------------------------------------------------------


def test_one_position_per_epoch_at_the_later_of_rmc_and_gga() -> None:
    d = NmeaDecoder()
    assert run(d, s("GP" + RMC)) == []
    (p,) = run(d, s("GP" + GGA))
    assert p.ts == TS and (p.hdop, p.sats) == (0.8, 14) and p.fix == "3d"
    assert run(d, s("GP" + GSA), s("GPGLL,3936.5200,N,10946.8100,E,021530.00,A,A")) == []  # same epoch, late
    assert d.flush() == []


def test_rmc_only_receiver_is_learned_after_one_epoch() -> None:
    d = NmeaDecoder()
    rmc = [s("GP" + RMC.replace("021530", f"0215{sec}")) for sec in (30, 31, 32)]
    assert run(d, rmc[0]) == []  # cycle not known yet: RMC + GGA expected
    assert [p.ts.second for p in run(d, rmc[1])] == [30, 31]  # 30 closed; now RMC alone completes
    assert [p.ts.second for p in run(d, rmc[2])] == [32]
    assert d.flush() == []


def test_flush_emits_the_open_epoch_once() -> None:
    d = NmeaDecoder()
    run(d, s("GP" + RMC))
    assert len(d.flush()) == 1
    assert d.flush() == []


def test_fix_dimension() -> None:
    d = NmeaDecoder()
    run(d, s("GP" + RMC.replace("021530", "021529")))
    no_alt = "GPGGA,021530.00,3936.5200,N,10946.8100,E,1,14,0.8,,M,,M,,"
    out = run(d, s(no_alt), s("GP" + RMC))
    assert [p.fix for p in out] == ["2d", "2d"]  # RMC only, then GGA without altitude
    d = NmeaDecoder()
    out = run(d, s("GPGSA,A,2,01,02,03,,,,,,,,,,2.0,1.0,1.7"), s("GP" + RMC), s("GP" + GGA))
    assert [p.fix for p in out] == ["2d"]  # the last GSA wins over the GGA altitude
    d = NmeaDecoder()
    out = run(
        d, s("GPGSA,A,2,01,02,03,,,,,,,,,,2.0,1.0,1.7"), s("GPGSA,A,1,,,,,,,,,,,,,,,"), s("GP" + RMC), s("GP" + GGA)
    )
    assert [p.fix for p in out] == ["3d"]  # GSA fix 1 forgot the dimension: GGA altitude decides


def test_gsa_satellites_and_hdop_when_there_is_no_gga() -> None:
    d = NmeaDecoder()
    run(d, s("GP" + RMC.replace("021530", "021529")), s("GNGLL,3936.5200,N,10946.8100,E,021530.00,A,A"))
    run(d, s("GNGSA,A,3,01,02,03,04,,,,,,,,,1.9,0.9,1.6,1"), s("GNGSA,A,3,201,202,,,,,,,,,,,1.9,0.9,1.6,4"))
    (p,) = d.flush()
    assert (p.fix, p.hdop, p.sats) == ("3d", 0.9, 6)


def test_heading_360_is_0_and_vtg_knots_only() -> None:
    d = NmeaDecoder()
    run(d, s("GP" + RMC.replace("021530", "021529")))
    run(d, s("GPGLL,3936.5200,N,10946.8100,E,021530.00,A,A"), s("GPVTG,360.0,T,,M,10.0,N,,K,A"))
    (p,) = d.flush()
    assert p.heading_deg == 0.0 and p.speed_kmh == pytest.approx(18.52)


# -- dates ------------------------------------------------------------------------------------


def test_time_only_sentence_before_any_date() -> None:
    d = NmeaDecoder()
    assert reason(d, s("GP" + GGA)) == "no_date"
    assert reason(d, s("GPGLL,3936.5200,N,10946.8100,E,021530.00,A,A")) == "no_date"
    assert run(d, s("GPZDA,021531.00,25,11,2026,00,00")) == []  # ZDA gives a date too
    (p,) = run(d, s("GPGLL,3936.5200,N,10946.8100,E,021532.00,A,A")) + d.flush()
    assert p.ts == datetime(2026, 11, 25, 2, 15, 32, tzinfo=UTC)


def test_midnight_rollover_of_time_only_sentences() -> None:
    d = NmeaDecoder()
    out = run(
        d,
        s("GPRMC,235959.50,A,3936.5200,N,10946.8100,E,0.0,0.0,311226,,,A"),
        s("GPGGA,000000.50,3936.5200,N,10946.8100,E,1,14,0.8,1352.0,M,-30.1,M,,"),
        s("GPGLL,3936.5200,N,10946.8100,E,000001.50,A,A"),
    )
    out += d.flush()
    assert [p.ts.isoformat() for p in out] == [
        "2026-12-31T23:59:59.500000+00:00",
        "2027-01-01T00:00:00.500000+00:00",
        "2027-01-01T00:00:01.500000+00:00",
    ]


def test_gga_a_little_before_the_rmc_date_keeps_that_date() -> None:
    d = NmeaDecoder()
    run(d, s("GPRMC,000000.00,A,3936.5200,N,10946.8100,E,0.0,0.0,010127,,,A"))
    run(d, s("GPGLL,3936.5200,N,10946.8100,E,235959.00,A,A"))  # late, from before midnight
    stamps = [p.ts.isoformat() for p in d.flush()]
    assert stamps[-1] == "2026-12-31T23:59:59+00:00"


# -- $PBWEV -----------------------------------------------------------------------------------


def test_pbwev_attaches_to_following_positions() -> None:
    d = NmeaDecoder()
    assert run(d, s("PBWEV,76.5,18234.2,,120554.8")) == []
    (p,) = run(d, s("GN" + RMC), s("GN" + GGA))
    assert (p.soc_pct, p.energy_kwh, p.h2_kg, p.odometer_km) == (76.5, 18234.2, None, 120554.8)
    run(d, s("PBWEV,,,3.25,"))  # a fuel-cell truck reporting hydrogen only: the set is replaced
    (q,) = run(d, s("GN" + RMC.replace("021530", "021531")), s("GN" + GGA.replace("021530", "021531")))
    assert (q.soc_pct, q.energy_kwh, q.h2_kg, q.odometer_km) == (None, None, 3.25, None)
    assert s("PBWEV,76.5,18234.2,,120554.8") == "$PBWEV,76.5,18234.2,,120554.8*7D"  # the docstring's example


def test_pbwev_refusals() -> None:
    d = NmeaDecoder()
    assert reason(d, s("PBWEV,120,1,1,1")) == "out_of_range"
    assert reason(d, s("PBWEV,50,-1,1,1")) == "out_of_range"
    assert reason(d, s("PBWEV,abc,1,1,1")) == "malformed"
    assert reason(d, s("PBWEV,nan,1,1,1")) == "malformed"
    assert reason(d, s("PBWEV,50,1,1")) == "malformed"
    assert reason(d, s("PBWEV,50,1,1,1,1")) == "malformed"
    assert reason(d, s("PBWEV,50,1,1,1")[:-2] + "00") == "bad_checksum"
    assert reason(d, "$PBWEV,50,1,1,1") == "no_checksum"
    assert d.ev is None


# -- framer -----------------------------------------------------------------------------------


def frame(data: bytes | list[bytes], max_len: int = 128) -> tuple[list[str], list[FrameError]]:
    errors: list[FrameError] = []
    framer = NmeaFramer(on_error=errors.append, max_len=max_len)
    out: list[str] = []
    for chunk in [data] if isinstance(data, bytes) else data:
        out += framer.feed(chunk)
    out += framer.flush()
    return out, errors


def test_framer_splits_on_cr_lf_in_any_chunking() -> None:
    a, b, c = s("GP" + RMC), s("GP" + GGA), s("GP" + GSA)
    stream = f"{a}\r\n{b}\n{c}\r".encode()
    whole, errors = frame(stream)
    assert whole == [a, b, c] and errors == []
    assert frame([stream[i : i + 1] for i in range(len(stream))])[0] == whole
    assert frame([stream[i : i + 7] for i in range(0, len(stream), 7)])[0] == whole


def test_framer_resyncs_on_dollar() -> None:
    gll = "$GPGLL,2638.1728,N,08011.3893,W,030131.000,A,A*41"
    out, errors = frame(f"$GPGGA,030130{gll}\r\n".encode())
    assert out == [gll]
    assert [(e.reason, e.raw) for e in errors] == [("truncated", b"$GPGGA,030130")]
    a, b = s("GP" + RMC), s("GP" + GGA)
    out, errors = frame(f"{a}{b}\r\n".encode())  # a lost CR LF between two whole sentences
    assert out == [a, b] and errors == []
    out, errors = frame(f"\x00\xffnoise{a}\r\n".encode("latin-1"))
    assert out == [a] and [e.reason for e in errors] == ["garbage"]


def test_framer_drops_garbage_overlong_and_truncated() -> None:
    a = s("GP" + RMC)
    out, errors = frame(f"# a comment\r\n{'$GPTXT,' + 'X' * 200}\r\n{a}\r\n$GPGGA,0215".encode())
    assert out == [a]
    assert [e.reason for e in errors] == ["garbage", "overlong", "truncated"]
    out, errors = frame(f"{a}\r\n".encode().replace(b"A,3936", b"A,\x8136"))
    assert out == [] and [e.reason for e in errors] == ["garbage"]


def test_framer_bounds_a_line_that_never_ends() -> None:
    errors: list[FrameError] = []
    framer = NmeaFramer(on_error=errors.append, max_len=100)
    a = s("GP" + RMC)
    assert framer.feed(b"$GPTXT," + b"Y" * 500) == []
    assert [e.reason for e in errors] == ["overlong"]
    assert framer.feed(b"Y" * 500 + b"\r\n" + a.encode() + b"\r\n") == [a]  # skipped to the terminator
    assert framer.feed(b"Z" * 150 + a.encode()) == []  # no terminator, but a '$' inside
    assert framer.feed(b"\r\n") == [a]
    assert [e.reason for e in errors] == ["overlong", "overlong"]
    assert framer.rejected == {"overlong": 2}


# Found by tests/fuzz: dates at and beyond the ends of the calendar raised OverflowError, not FrameError.


def test_day_roll_over_past_the_end_of_the_calendar_is_refused() -> None:
    decoder = NmeaDecoder()
    run(decoder, s("GPZDA,235959.00,31,12,9999,00,00"))
    assert reason(decoder, s("GPGGA,000001.00,3936.5200,N,10946.8100,E,1,14,0.8,1352.0,M,-30.1,M,,")) == "out_of_range"
    decoder = NmeaDecoder()
    run(decoder, s("GPZDA,000000.00,01,01,0001,00,00"))
    assert reason(decoder, s("GPGGA,235959.00,3936.5200,N,10946.8100,E,1,14,0.8,1352.0,M,-30.1,M,,")) == "out_of_range"


def test_zda_year_too_large_for_a_date_is_malformed() -> None:
    assert reason(NmeaDecoder(), s("GPZDA,120000.00,01,01,100000000000000000000,00,00")) == "malformed"
