"""The serial RFID line protocol: encoder and decoder share one definition; refusals; reader clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.errors import FrameError
from edge.protocols.rfid_serial import (
    SerialRfidDecoder,
    SerialRfidFramer,
    checksum,
    encode_heartbeat_line,
    encode_tag_line,
)
from tests.edge.protocols.sanity import check_tag

T0 = datetime(2026, 11, 25, 2, 15, 30, tzinfo=UTC)
SGTIN = "3034257BF7194E4000001A85"


def text(data: bytes) -> str:
    return data.decode("ascii").rstrip("\r\n")


def reason(decoder: SerialRfidDecoder, line: str) -> str:
    with pytest.raises(FrameError) as info:
        decoder.decode(line, T0)
    return info.value.reason


def signed(body: str) -> str:
    return f"{body}*{checksum(body)}"


def test_docstring_examples() -> None:
    assert encode_tag_line("3005FB63AC1F3841EC880467", 1, -61.5, 123456) == (
        b"TAG,1,-61.5,3005FB63AC1F3841EC880467,123456*2A\r\n"
    )
    assert encode_heartbeat_line(128000) == b"HB,128000,OK*05\r\n"


def test_round_trip_through_the_framer() -> None:
    stream = (
        encode_heartbeat_line(1000)
        + encode_tag_line(SGTIN.lower(), 2, -48.0, 1500)
        + encode_tag_line("1FB41F712AC9C37AB79D618173188324001A", 0, -70.2, 1750)
        + encode_heartbeat_line(2000, "ANT2_OPEN")
    )
    framer = SerialRfidFramer()
    decoder = SerialRfidDecoder()
    lines = [x for i in range(0, len(stream), 3) for x in framer.feed(stream[i : i + 3])]
    assert len(lines) == 4 and framer.rejected == {}
    reads = [r for x in lines for r in decoder.decode(x, T0 + timedelta(milliseconds=10))]
    for r in reads:
        check_tag(r)
    a, b = reads
    assert (a.epc, a.antenna, a.rssi_dbm, a.count) == (SGTIN, 2, -48.0, 1)
    assert a.epc_uri == "urn:epc:id:sgtin:0614141.812345.6789"
    assert (b.antenna, b.rssi_dbm, b.epc_uri) == (0, -70.2, None)
    # Anchored on the heartbeat: ms counter spacing is kept exactly.
    assert a.ts == T0 + timedelta(milliseconds=10 + 500) and a.first_seen == a.ts
    assert b.ts - a.ts == timedelta(milliseconds=250)
    assert decoder.reader_status == "ANT2_OPEN"


def test_clock_reanchors_on_restart_and_drift() -> None:
    d = SerialRfidDecoder(max_skew_s=2.0)
    (a,) = d.decode(text(encode_tag_line(SGTIN, 1, -50, 10_000)), T0)
    assert a.ts == T0
    (b,) = d.decode(text(encode_tag_line(SGTIN, 1, -50, 11_000)), T0 + timedelta(seconds=1.5))
    assert b.ts == T0 + timedelta(seconds=1)  # delivered late: stamped on the reader's counter
    (c,) = d.decode(text(encode_tag_line(SGTIN, 1, -50, 500)), T0 + timedelta(seconds=3))
    assert c.ts == T0 + timedelta(seconds=3)  # counter went back: reader restarted
    (e,) = d.decode(text(encode_tag_line(SGTIN, 1, -50, 1500)), T0 + timedelta(seconds=60))
    assert e.ts == T0 + timedelta(seconds=60)  # 59 s skew: re-anchored
    with pytest.raises(ValueError):
        d.decode(text(encode_tag_line(SGTIN, 1, -50, 1600)), datetime(2026, 11, 25))


def test_refusals() -> None:
    d = SerialRfidDecoder()
    good = text(encode_tag_line(SGTIN, 1, -61.5, 42))
    assert reason(d, good[:-2] + ("00" if good[-2:] != "00" else "01")) == "bad_checksum"
    assert reason(d, good[:20]) == "truncated"
    assert reason(d, good[:-1]) == "malformed"  # one checksum digit
    assert reason(d, signed("TAG,1,-61.5,3034257BF7194E4000001A8,42")) == "bad_epc"  # odd digits
    assert reason(d, signed("TAG,1,-61.5,3034257BF7194E4000001A8X,42")) == "bad_epc"
    assert reason(d, signed("TAG,1,-61.5,3034257BF7194E40,42")) == "bad_epc"  # 64 bits
    assert reason(d, signed("TAG,1,-61.5,3634257BF7194E5B3770E40000000000000000000000000000,42")) == "bad_epc"
    assert reason(d, signed("TAG,1,-61.5,42")) == "malformed"
    assert reason(d, signed("TAG,1,,3034257BF7194E4000001A85,42")) == "empty_fields"
    assert reason(d, signed("TAG,x,-61.5,3034257BF7194E4000001A85,42")) == "malformed"
    assert reason(d, signed("TAG,300,-61.5,3034257BF7194E4000001A85,42")) == "out_of_range"
    assert reason(d, signed("TAG,1,-200,3034257BF7194E4000001A85,42")) == "out_of_range"
    assert reason(d, signed("TAG,1,-61.55,3034257BF7194E4000001A85,42")) == "malformed"
    assert reason(d, signed("TAG,1,-61.5,3034257BF7194E4000001A85,4294967296")) == "malformed"
    assert reason(d, signed("HB,42")) == "malformed"
    assert reason(d, signed("HB,42,bad status")) == "malformed"
    assert reason(d, signed("VER,1.0")) == "unsupported"


def test_encoder_refuses_what_the_protocol_cannot_carry() -> None:
    with pytest.raises(ValueError):
        encode_tag_line("XYZ", 1, -50, 0)
    with pytest.raises(ValueError):
        encode_tag_line(SGTIN, 256, -50, 0)
    with pytest.raises(ValueError):
        encode_tag_line(SGTIN, 1, float("nan"), 0)
    with pytest.raises(ValueError):
        encode_heartbeat_line(-1)
    with pytest.raises(ValueError):
        encode_heartbeat_line(0, "not ok")
    assert encode_heartbeat_line(2**32 + 5).startswith(b"HB,5,")  # the counter wraps


def test_framer_refusals() -> None:
    errors: list[FrameError] = []
    framer = SerialRfidFramer(on_error=errors.append)
    good = encode_tag_line(SGTIN, 1, -50, 1)
    out = framer.feed(b"\xff\xfe\r\n" + b"TAG," + b"F" * 300 + b"\r\n" + good + b"TAG,1,-5")
    assert out == [text(good)]
    assert framer.flush() == []
    assert [e.reason for e in errors] == ["garbage", "overlong", "truncated"]
