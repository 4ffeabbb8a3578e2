"""LLRP framing and RO_ACCESS_REPORT decoding (via sllurp) on the sllurp test capture."""

from __future__ import annotations

import random
import re
import struct
from datetime import UTC, datetime, timedelta

import pytest

from edge.errors import FrameError
from edge.protocols.llrp import LlrpDecoder, LlrpFramer, parse_header
from edge.readings import TagRead
from tests.conftest import shared_testdata
from tests.edge.protocols.sanity import check_tag

READER_EVENT = bytes.fromhex("043f000000200ab288c900f600160080000c0004f8535baadaff010000060000")
SUMMARY = re.compile(
    r"id=(?P<id>\d+) TagReportData (?:EPC-96|EPCData\(bits=\d+\))=(?P<epc>[0-9A-F]+) AntennaID=(?P<ant>\d+) "
    r"PeakRSSI=(?P<rssi>-?\d+) FirstSeenTimestampUTC=(?P<first>\d+) TagSeenCount=(?P<count>\d+)"
)


def _stream() -> bytes:
    return shared_testdata("llrp", "ro_access_report_stream.bin").read_bytes()


def _summary() -> list[dict[str, str]]:
    text = shared_testdata("llrp", "decoded_summary.txt").read_text()
    return [m.groupdict() for m in SUMMARY.finditer(text)]


def _decode_all(messages: list[bytes]) -> list[TagRead]:
    decoder = LlrpDecoder()
    return [read for message in messages for read in decoder.decode(message)]


def test_stream_gives_45_reports_matching_the_summary() -> None:
    framer = LlrpFramer()
    messages = framer.feed(_stream())
    assert framer.flush() == [] and framer.rejected == {}
    assert len(messages) == 45
    assert [parse_header(m)[3] for m in messages] == list(range(1083541807, 1083541807 + 45))
    reads = _decode_all(messages)
    summary = _summary()
    assert len(reads) == len(summary) == 45
    for read, row in zip(reads, summary, strict=True):
        check_tag(read)
        first = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(row["first"]))
        assert (read.epc, read.antenna, read.rssi_dbm, read.count) == (
            row["epc"],
            int(row["ant"]),
            float(row["rssi"]),
            int(row["count"]),
        )
        assert read.first_seen == first and read.ts == first  # no LastSeenTimestampUTC in these reports
    long_epc = [r for r in reads if len(r.epc) != 24]
    assert [(r.epc, r.rssi_dbm) for r in long_epc] == [("1FB41F712AC9C37AB79D618173188324001A", -17.0)]
    assert {r.epc for r in reads} == {"3005FB63AC1F3841EC880467", "300833B2DDD906C000000000", long_epc[0].epc}
    assert reads[0].epc_uri is not None and reads[0].epc_uri.startswith("urn:epc:id:sgtin:")
    assert reads[0].first_seen == datetime(2013, 11, 27, 20, 44, 1, 558537, tzinfo=UTC)


@pytest.mark.parametrize("seed", range(5))
def test_random_chunks_give_the_same_messages(seed: int) -> None:
    data = _stream()
    whole = LlrpFramer().feed(data)
    rng = random.Random(seed)
    framer = LlrpFramer()
    messages: list[bytes] = []
    i = 0
    while i < len(data):
        n = rng.choice([1, 2, 3, 9, 10, 11, 43, 44, 45, 100, 500])
        messages += framer.feed(data[i : i + n])
        i += n
    assert messages == whole
    assert _decode_all(messages) == _decode_all(whole)


def test_reader_event_notification_yields_nothing() -> None:
    decoder = LlrpDecoder()
    framer = LlrpFramer()
    messages = framer.feed(READER_EVENT + _stream()[:44])
    assert [parse_header(m)[1] for m in messages] == [63, 61]
    assert decoder.decode(messages[0]) == []
    assert decoder.last_message == "READER_EVENT_NOTIFICATION"
    assert len(decoder.decode(messages[1])) == 1
    assert decoder.last_message == "RO_ACCESS_REPORT"


def test_keepalive_and_unknown_types() -> None:
    decoder = LlrpDecoder()
    keepalive = struct.pack("!HII", (1 << 10) | 62, 10, 7)
    assert decoder.decode(keepalive) == [] and decoder.last_message == "KEEPALIVE"
    with pytest.raises(FrameError) as info:
        decoder.decode(struct.pack("!HII", (1 << 10) | 999, 10, 8))
    assert info.value.reason == "unsupported"
    with pytest.raises(FrameError) as info:
        decoder.decode(_stream()[:43])
    assert info.value.reason == "malformed"


def test_report_without_timestamps_uses_received_at() -> None:
    report = bytes.fromhex("043d0000002c4095892f00f000228d3005fb63ac1f3841ec88046781000186ce820004ec2ea8354c09880001")
    no_ts = bytes.fromhex("043d000000234095892f00f000198d3005fb63ac1f3841ec88046781000186ce880003")
    assert LlrpDecoder().decode(report)[0].first_seen is not None
    now = datetime(2026, 11, 25, 2, 15, 30, tzinfo=UTC)
    (read,) = LlrpDecoder().decode(no_ts, received_at=now)
    assert (read.ts, read.first_seen, read.count, read.antenna, read.rssi_dbm) == (now, None, 3, 1, -50.0)
    with pytest.raises(FrameError) as info:
        LlrpDecoder().decode(no_ts)
    assert info.value.reason == "no_time"


def test_a_bad_epc_drops_only_its_tag() -> None:
    # Two TagReportData: a 64-bit EPCData (too short for the contract) and a good EPC-96.
    short = bytes.fromhex("00f1000e0040") + bytes(8)
    bad = struct.pack("!HH", 240, 4 + len(short)) + short
    good = bytes.fromhex("00f000148d3005fb63ac1f3841ec880467810002")
    body = bad + good
    message = struct.pack("!HII", (1 << 10) | 61, 10 + len(body), 9) + body
    errors: list[FrameError] = []
    decoder = LlrpDecoder(on_error=errors.append)
    (read,) = decoder.decode(message, received_at=datetime(2026, 11, 25, tzinfo=UTC))
    assert (read.epc, read.antenna) == ("3005FB63AC1F3841EC880467", 2)
    assert [e.reason for e in errors] == ["bad_epc"] and decoder.rejected == {"bad_epc": 1}


def test_framer_breaks_on_impossible_headers_until_reset() -> None:
    errors: list[FrameError] = []
    framer = LlrpFramer(on_error=errors.append, max_len=4096)
    assert framer.feed(struct.pack("!HII", (1 << 10) | 61, 4, 1) + _stream()) == []
    assert framer.broken and [e.reason for e in errors] == ["malformed"]
    assert framer.feed(_stream()) == []  # everything dropped until reset
    framer.reset()
    assert len(framer.feed(_stream())) == 45
    framer.reset()
    assert framer.feed(struct.pack("!HII", (5 << 10) | 61, 44, 1)) == []
    framer.reset()
    assert framer.feed(struct.pack("!HII", (1 << 10) | 61, 1 << 20, 1)) == []
    framer.reset()
    assert framer.feed(_stream()[:50]) != []
    framer.flush()
    assert [e.reason for e in errors] == ["malformed", "unsupported", "overlong", "truncated"]


def _report(params: bytes) -> bytes:
    tag = struct.pack("!HH", 240, 4 + len(params)) + params
    return struct.pack("!HII", (1 << 10) | 61, 10 + len(tag), 1) + tag


EPC_96 = b"\x8d" + bytes.fromhex("3005fb63ac1f3841ec880467")


def test_timestamp_past_year_9999_counts_as_absent() -> None:
    """Found by tests/fuzz: a uint64 timestamp beyond datetime's range raised OverflowError."""
    at = datetime(2026, 11, 25, tzinfo=UTC)
    (read,) = LlrpDecoder().decode(_report(EPC_96 + b"\x82" + struct.pack("!Q", 2**63)), at)
    assert read.first_seen is None and read.ts == at


@pytest.mark.parametrize(("rssi", "expected"), [(100, None), (51, None), (50, 50.0), (-128, -128.0), (-50, -50.0)])
def test_peak_rssi_outside_the_contract_is_left_out(rssi: int, expected: float | None) -> None:
    """Found by tests/fuzz: PeakRSSI is any int8, the contract takes -150..50 dBm; one tag's +100 dBm made the
    platform dead-letter the whole batch the edge agent published it in."""
    (read,) = LlrpDecoder().decode(
        _report(EPC_96 + b"\x86" + struct.pack("!b", rssi)), datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert read.rssi_dbm == expected
    check_tag(read)
