"""Contract v1 payloads and topics as code: every rule of CONTRACT.md, edges included, without I/O."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bondwatch.contract.errors import ContractViolation
from bondwatch.contract.payloads import (
    MAX_BATCH,
    MAX_PAYLOAD_BYTES,
    TS_MS_MAX,
    TS_MS_MIN,
    parse_ts,
    validate_payload,
)
from bondwatch.contract.topics import DEVICE_KINDS, DeviceTopic, parse_device_topic

TS_MS = 1_764_028_800_000  # 2025-11-25T00:00:00Z
TS_DT = datetime(2025, 11, 25, tzinfo=UTC)
EPC_96 = "3034257BF7194E4000000001"  # 24 hex digits, 96 bits

VALID: dict[str, dict[str, Any]] = {
    "gps": {"ts": TS_MS, "seq": 1, "lat": 39.6, "lon": 109.8, "fix": "3d"},
    "temp": {"ts": TS_MS, "seq": 1, "temp_c": 4.5},
    "rfid": {"ts": TS_MS, "seq": 1, "epc": EPC_96},
    "status": {"online": True, "ts": TS_MS},
}
REQUIRED = {
    "gps": ("ts", "seq", "lat", "lon", "fix"),
    "temp": ("ts", "seq", "temp_c"),
    "rfid": ("ts", "seq", "epc"),
    "status": ("online", "ts"),
}


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def item(kind: str, **fields: Any) -> dict[str, Any]:
    return {**VALID[kind], **fields}


def accept(kind: str, payload: bytes) -> Sequence[Any]:
    return validate_payload(kind, payload)


def with_forms(rows: list[tuple[str, str, Any]]) -> list[Any]:
    """Each row as one object and as a batch of one (status is never a batch)."""
    return [
        pytest.param(kind, field, value, batch, id=f"{kind}-{field}-{value!r}-{'batch' if batch else 'object'}")
        for kind, field, value in rows
        for batch in (False, True)
        if not (batch and kind == "status")
    ]


def refuse(kind: str, payload: bytes) -> str:
    with pytest.raises(ContractViolation) as info:
        validate_payload(kind, payload)
    reason = str(info.value)
    assert reason, "a dead letter needs a reason"
    return reason


# ------------------------------------------------------------------------------------------ ts


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(TS_MS, TS_DT, id="int-ms"),
        pytest.param(TS_MS + 123, TS_DT + timedelta(milliseconds=123), id="int-ms-fraction"),
        pytest.param(TS_MS_MIN, datetime(2000, 1, 1, tzinfo=UTC), id="int-ms-lowest"),
        pytest.param(TS_MS_MAX - 1, datetime(2100, 1, 1, tzinfo=UTC) - timedelta(milliseconds=1), id="int-ms-highest"),
        pytest.param("2025-11-25T00:00:00Z", TS_DT, id="rfc3339-Z"),
        pytest.param("2025-11-25t00:00:00z", TS_DT, id="rfc3339-lowercase"),
        pytest.param("2025-11-25T08:00:00+08:00", TS_DT, id="rfc3339-plus-0800"),
        pytest.param("2025-11-24T18:30:00-05:30", TS_DT, id="rfc3339-minus-0530"),
        pytest.param("2025-11-25T00:00:00.5Z", TS_DT + timedelta(microseconds=500_000), id="fraction-1-digit"),
        pytest.param("2025-11-25T00:00:00.123Z", TS_DT + timedelta(microseconds=123_000), id="fraction-ms"),
        pytest.param("2025-11-25T00:00:00.123456Z", TS_DT + timedelta(microseconds=123_456), id="fraction-us"),
        pytest.param("2025-11-25T00:00:00.123456789Z", TS_DT + timedelta(microseconds=123_456), id="fraction-ns"),
        pytest.param(
            "2025-11-24T23:59:59.9999999Z",
            TS_DT - timedelta(microseconds=1),
            id="ns-truncated-not-rounded-into-next-day",
        ),
        pytest.param(
            "2025-11-25T08:00:00.999999999+08:00",
            TS_DT + timedelta(microseconds=999_999),
            id="ns-truncated-with-offset",
        ),
    ],
)
def test_parse_ts_accepts(value: object, expected: datetime) -> None:
    parsed = parse_ts(value)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0), "always aware UTC"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("2025-11-25T08:00:00", "with an offset", id="no-offset"),
        pytest.param("2025-11-25T08:00:00.123", "with an offset", id="no-offset-fraction"),
        pytest.param("2025-11-25", "RFC 3339", id="date-only"),
        pytest.param("2025-11-25T08:00:00.1234567890Z", "RFC 3339", id="ten-fraction-digits"),
        pytest.param("2025-11-25T08:00:00+0800", "RFC 3339", id="offset-without-colon"),
        pytest.param("2025-02-30T08:00:00Z", "not a valid date and time", id="february-30"),
        pytest.param("2025-11-25T24:00:00Z", "not a valid date and time", id="hour-24"),
        pytest.param(1_764_028_800, "not milliseconds", id="seconds-instead-of-ms"),
        pytest.param(TS_MS * 1000, "not milliseconds", id="microseconds-instead-of-ms"),
        pytest.param(TS_MS_MIN - 1, "not milliseconds", id="before-2000"),
        pytest.param(TS_MS_MAX, "not milliseconds", id="year-2100"),
        pytest.param(True, "boolean", id="bool-true"),
        pytest.param(False, "boolean", id="bool-false"),
        pytest.param(float(TS_MS), "float", id="float"),
        pytest.param(None, "NoneType", id="null"),
        pytest.param([TS_MS], "list", id="list"),
    ],
)
def test_parse_ts_refuses_with_reason(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_ts(value)


@pytest.mark.parametrize(
    "ts",
    [TS_MS, "2025-11-25T00:00:00Z", "2025-11-25T08:00:00+08:00", "2025-11-25T00:00:00.000000999Z"],
    ids=["int-ms", "Z", "+08:00", "ns"],
)
@pytest.mark.parametrize("kind", ["gps", "temp", "rfid", "status"])
def test_both_ts_forms_in_every_kind(kind: str, ts: object) -> None:
    (reading,) = accept(kind, encode(item(kind, ts=ts)))
    assert reading.ts == TS_DT


@pytest.mark.parametrize(
    "ts",
    ["2025-11-25T08:00:00", 1_764_028_800, True, 1_764_028_800_000.0],
    ids=["no-offset", "seconds", "bool", "float"],
)
@pytest.mark.parametrize("kind", ["gps", "status"])
def test_bad_ts_in_payload_names_the_field(kind: str, ts: object) -> None:
    reason = refuse(kind, encode(item(kind, ts=ts)))
    assert "field 'ts'" in reason


# ------------------------------------------------------------------------------- field ranges

EDGES_OK = [
    ("gps", "lat", -90),
    ("gps", "lat", 90),
    ("gps", "lat", 90.0),
    ("gps", "lon", -180),
    ("gps", "lon", 180),
    ("gps", "fix", "none"),
    ("gps", "fix", "2d"),
    ("gps", "fix", "3d"),
    ("gps", "speed_kmh", 0),
    ("gps", "heading_deg", 0),
    ("gps", "heading_deg", 360),
    ("gps", "soc_pct", 0),
    ("gps", "soc_pct", 100),
    ("gps", "energy_kwh", 0),
    ("gps", "sats", 0),
    ("temp", "temp_c", -80),
    ("temp", "temp_c", 85),
    ("temp", "temp_c", 84.99),
    ("temp", "rh_pct", 0),
    ("temp", "rh_pct", 100),
    ("temp", "door_open", True),
    ("temp", "door_open", False),
    ("rfid", "epc", "A" * 24),  # 96 bits
    ("rfid", "epc", "0123456789ABCDEF" + "0" * 12),  # 112 bits, 7 words
    ("rfid", "epc", "F" * 124),  # 496 bits
    ("rfid", "direction", "in"),
    ("rfid", "direction", "out"),
    ("rfid", "antenna", 0),
    ("status", "online", False),
]

EDGES_BAD = [
    ("gps", "lat", 90.0001),
    ("gps", "lat", -90.0001),
    ("gps", "lon", 180.0001),
    ("gps", "lon", -180.0001),
    ("gps", "fix", "3D"),
    ("gps", "fix", "1d"),
    ("gps", "fix", ""),
    ("gps", "fix", None),
    ("gps", "speed_kmh", -0.1),
    ("gps", "heading_deg", -0.1),
    ("gps", "heading_deg", 360.1),
    ("gps", "soc_pct", -0.01),
    ("gps", "soc_pct", 100.01),
    ("temp", "temp_c", -80.01),
    ("temp", "temp_c", 85.01),
    ("temp", "rh_pct", 100.1),
    ("rfid", "epc", "A" * 23),
    ("rfid", "epc", "A" * 25),
    ("rfid", "epc", "A" * 26),  # 104 bits: not whole 16-bit words
    ("rfid", "epc", "A" * 20),  # 80 bits
    ("rfid", "epc", "F" * 128),  # 512 bits
    ("rfid", "epc", "G" * 24),  # not hexadecimal
    ("rfid", "epc", "0x" + "A" * 22),
    ("rfid", "epc", ""),
    ("rfid", "direction", "IN"),
    ("rfid", "direction", "both"),
]


@pytest.mark.parametrize(("kind", "field", "value", "batch"), with_forms(EDGES_OK))
def test_range_edges_accepted(kind: str, field: str, value: object, batch: bool) -> None:
    obj = item(kind, **{field: value})
    readings = accept(kind, encode([obj] if batch else obj))
    assert len(readings) == 1
    stored = getattr(readings[0], field)
    assert stored == (value.upper() if isinstance(value, str) and field == "epc" else value)


@pytest.mark.parametrize(("kind", "field", "value", "batch"), with_forms(EDGES_BAD))
def test_range_edges_refused_naming_the_field(kind: str, field: str, value: object, batch: bool) -> None:
    obj = item(kind, **{field: value})
    reason = refuse(kind, encode([obj] if batch else obj))
    assert f"field '{field}'" in reason
    assert reason.startswith(kind)


def test_epc_lowercase_accepted_and_upper_cased() -> None:
    (reading,) = accept("rfid", encode(item("rfid", epc="3034257bf7194e40000000aa")))
    assert reading.epc == "3034257BF7194E40000000AA"


def test_epc_refusal_says_what_an_epc_is() -> None:
    reason = refuse("rfid", encode(item("rfid", epc="A" * 23)))
    assert "96 to 496 bits" in reason


def test_epc_with_trailing_newline_refused() -> None:
    refuse("rfid", encode(item("rfid", epc=EPC_96 + "\n")))


# ------------------------------------------------------------------------------- strict types


@pytest.mark.parametrize(
    ("kind", "field", "value", "batch"),
    with_forms(
        [
            ("gps", "lat", "39.6"),
            ("gps", "lon", "109"),
            ("gps", "heading_deg", "1"),
            ("temp", "temp_c", "1"),
            ("temp", "temp_c", True),
            ("temp", "door_open", 1),
            ("temp", "door_open", 0),
            ("temp", "door_open", "true"),
            ("gps", "seq", True),
            ("gps", "seq", "1"),
            ("gps", "seq", 1.0),
            ("gps", "seq", -1),
            ("gps", "sats", 7.0),
            ("rfid", "antenna", "1"),
            ("rfid", "epc", 3034257),
            ("status", "online", 1),
            ("status", "online", "false"),
            ("status", "online", None),
        ]
    ),
)
def test_strict_types(kind: str, field: str, value: object, batch: bool) -> None:
    obj = item(kind, **{field: value})
    reason = refuse(kind, encode([obj] if batch else obj))
    assert f"field '{field}'" in reason


def test_integer_accepted_where_a_number_is_expected() -> None:
    (reading,) = accept("gps", encode(item("gps", lat=40, lon=110, speed_kmh=0)))
    assert (reading.lat, reading.lon) == (40.0, 110.0)
    assert isinstance(reading.lat, float)


# ----------------------------------------------------------------------------- required, extra


@pytest.mark.parametrize(("kind", "field"), [(kind, field) for kind, fields in REQUIRED.items() for field in fields])
def test_missing_required_field_is_named(kind: str, field: str) -> None:
    obj = item(kind)
    del obj[field]
    reason = refuse(kind, encode(obj))
    assert f"required field '{field}' is missing" in reason


def test_every_missing_field_is_named() -> None:
    reason = refuse("gps", encode({"fix": "3d"}))
    for field in ("ts", "seq", "lat"):
        assert f"required field '{field}' is missing" in reason
    assert "and 1 more" in reason  # lon: the reason names three and counts the rest


@pytest.mark.parametrize("kind", ["gps", "temp", "rfid", "status"])
def test_unknown_fields_are_ignored(kind: str) -> None:
    obj = item(kind, firmware="2.1.0", vendor={"name": "x", "ids": [1, 2]}, zz_extra=None)
    for payload in (encode(obj), encode([obj])) if kind != "status" else (encode(obj),):
        (reading,) = accept(kind, payload)
        assert "firmware" not in reading.model_dump()
        assert not hasattr(reading, "vendor")


def test_optional_fields_default_to_none() -> None:
    (gps,) = accept("gps", encode(item("gps")))
    assert gps.speed_kmh is None and gps.soc_pct is None and gps.heading_deg is None
    (rfid,) = accept("rfid", encode(item("rfid")))
    assert rfid.direction is None and rfid.gate_id is None


# ------------------------------------------------------------------------------------- batches


@pytest.mark.parametrize("kind", ["gps", "temp", "rfid"])
def test_batch_of_1000_accepted_in_order(kind: str) -> None:
    payload = encode([item(kind, seq=i) for i in range(MAX_BATCH)])
    readings = accept(kind, payload)
    assert [r.seq for r in readings] == list(range(MAX_BATCH))


def test_batch_of_1001_refused() -> None:
    reason = refuse("temp", encode([item("temp", seq=i) for i in range(MAX_BATCH + 1)]))
    assert "1001 items" in reason and "1000" in reason


def test_empty_batch_refused() -> None:
    assert "empty" in refuse("gps", b"[]")


def test_one_bad_item_refuses_the_whole_batch_and_names_it() -> None:
    items = [item("temp", seq=i) for i in range(600)]
    items[537]["temp_c"] = 99.0
    reason = refuse("temp", encode(items))
    assert "item 537" in reason
    assert "field 'temp_c'" in reason


def test_batch_item_missing_field_named_with_index() -> None:
    items = [item("gps", seq=i) for i in range(3)]
    del items[2]["fix"]
    reason = refuse("gps", encode(items))
    assert "item 2" in reason and "required field 'fix' is missing" in reason


@pytest.mark.parametrize("bad", [7, "x", None, [], [item("gps")]], ids=["int", "str", "null", "list", "nested"])
def test_batch_item_that_is_not_an_object(bad: object) -> None:
    reason = refuse("gps", encode([item("gps"), bad]))
    assert "item 1: must be a JSON object" in reason


def test_status_as_array_refused() -> None:
    reason = refuse("status", encode([VALID["status"]]))
    assert "status" in reason and "array" in reason


def test_status_object_accepted() -> None:
    (status,) = accept("status", encode({"online": False, "ts": "2025-11-25T08:00:00+08:00"}))
    assert status.online is False
    assert status.ts == TS_DT


# -------------------------------------------------------------------------- bytes on the wire


def padded(size: int, char: str = "x") -> bytes:
    """A valid gps object of exactly ``size`` bytes, grown by an ignored field."""
    base = encode(item("gps", pad=""))
    room = size - len(base)
    assert room % len(char.encode()) == 0
    payload = encode(item("gps", pad=char * (room // len(char.encode()))))
    assert len(payload) == size
    return payload


def test_payload_exactly_at_the_limit_accepted() -> None:
    assert MAX_PAYLOAD_BYTES == 262_144
    (reading,) = accept("gps", padded(MAX_PAYLOAD_BYTES))
    assert reading.fix == "3d"


def test_payload_one_byte_over_the_limit_refused() -> None:
    reason = refuse("gps", padded(MAX_PAYLOAD_BYTES + 1))
    assert "262145 bytes" in reason and "262144" in reason


def test_limit_counts_bytes_not_characters() -> None:
    base = len(encode(item("gps", pad="")))
    payload = padded(MAX_PAYLOAD_BYTES + 1 + (MAX_PAYLOAD_BYTES + 1 - base) % 2, char="é")
    assert len(payload.decode()) < MAX_PAYLOAD_BYTES
    assert "over the 256 KiB" in refuse("gps", payload)


def test_batch_over_the_limit_refused_even_with_few_items() -> None:
    big = item("gps", pad="x" * (MAX_PAYLOAD_BYTES // 2))
    assert "bytes, over" in refuse("gps", encode([big, big]))


@pytest.mark.parametrize(
    "payload",
    [
        encode(item("temp"))[:-1] + b',"note":"\xff"}',
        encode(item("temp"))[:-1] + b',"note":"caf\xc3"}',
        b"\xfe" + encode(item("temp")),
        encode([item("temp")])[:-1] + b',"\xe4\xb8"]',
    ],
    ids=["ff-in-string", "truncated-sequence", "leading-byte", "in-batch"],
)
def test_non_utf8_refused_naming_the_offset(payload: bytes) -> None:
    first_non_ascii = next(i for i, byte in enumerate(payload) if byte >= 0x80)  # the rest is ASCII
    reason = refuse("temp", payload)
    assert "not UTF-8" in reason
    assert f"byte 0x{payload[first_non_ascii]:02x} at offset {first_non_ascii}" in reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"42", "got int"),
        (b"4.5", "got float"),
        (b'"gps"', "got str"),
        (b"null", "got NoneType"),
        (b"true", "got bool"),
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"{'ts': 1}", "not JSON"),
        (encode(VALID["temp"]) + b" trailing", "not JSON"),
        (encode(VALID["temp"]) + encode(VALID["temp"]), "not JSON"),
    ],
    ids=["number", "float", "string", "null", "bool", "empty", "truncated", "single-quotes", "trailing", "two-objects"],
)
def test_non_object_json_refused(payload: bytes, reason: str) -> None:
    assert reason in refuse("temp", payload)


def test_whitespace_around_an_object_is_fine() -> None:
    (reading,) = accept("temp", b" \n" + encode(item("temp")) + b"\n")
    assert reading.temp_c == 4.5


@pytest.mark.parametrize(
    "payload",
    [
        encode(item("gps"))[:-1] + b',"hdop":Infinity}',
        encode(item("gps"))[:-1] + b',"energy_kwh":Infinity}',
        encode(item("gps"))[:-1] + b',"vendor_extra":NaN}',
    ],
    ids=["hdop-infinity", "energy-infinity", "nan-in-ignored-field"],
)
def test_non_json_number_literals_refused(payload: bytes) -> None:
    refuse("gps", payload)


def test_non_json_number_literals_refused_in_a_batch() -> None:
    # The slow path gets this right; the fast path (previous test) does not.
    payload = b"[" + encode(item("gps"))[:-1] + b',"hdop":Infinity}]'
    assert "not JSON" in refuse("gps", payload)


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        validate_payload("alerts", encode(VALID["gps"]))


# -------------------------------------------------------------------------------------- topics


@pytest.mark.parametrize("kind", DEVICE_KINDS)
@pytest.mark.parametrize("device_id", ["truck-01", "T_2.b", "a", "x" * 64, "0716.cold-room_3"])
def test_parse_device_topic_accepts(kind: str, device_id: str) -> None:
    topic = f"bw/v1/ordos-czb/{kind}/{device_id}"
    parsed = parse_device_topic(topic)
    assert parsed == DeviceTopic("ordos-czb", kind, device_id)
    assert str(parsed) == topic


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("bw/v2/ordos-czb/gps/truck-01", "is not bw/v1/{site}/{kind}/{device_id}"),
        ("xx/v1/ordos-czb/gps/truck-01", "is not bw/v1/{site}/{kind}/{device_id}"),
        ("/bw/v1/ordos-czb/gps/truck-01", "is not bw/v1/{site}/{kind}/{device_id}"),
        ("bw/v1/ordos-czb/gps/truck-01/extra", "is not bw/v1/{site}/{kind}/{device_id}"),
        ("bw/v1/ordos-czb/gps/truck-01/", "is not bw/v1/{site}/{kind}/{device_id}"),
        ("bw/v1/ordos-czb/gps", "is not bw/v1/{site}/{kind}/{device_id}"),
        ("bw/v1/ordos-czb/alerts/truck-01", "topic kind 'alerts'"),
        ("bw/v1/ordos-czb/GPS/truck-01", "topic kind 'GPS'"),
        ("bw/v1/ordos-czb/position/truck-01", "topic kind 'position'"),
        ("bw/v1/ordos-czb/gps/truck 01", "device_id 'truck 01'"),
        ("bw/v1/ordos-czb/gps/truck#1", "device_id 'truck#1'"),
        ("bw/v1/ordos-czb/gps/truck+1", "device_id 'truck+1'"),
        ("bw/v1/ordos-czb/gps/trück", "device_id 'trück'"),
        ("bw/v1/ordos-czb/gps/", "device_id ''"),
        ("bw/v1/ordos-czb/gps/" + "x" * 65, "device_id '" + "x" * 65 + "'"),
    ],
    ids=[
        "v2",
        "prefix",
        "leading-slash",
        "six-levels",
        "trailing-slash",
        "four-levels",
        "alerts-kind",
        "uppercase-kind",
        "unknown-kind",
        "space",
        "hash",
        "plus",
        "non-ascii",
        "empty-id",
        "65-chars",
    ],
)
def test_parse_device_topic_refuses(topic: str, reason: str) -> None:
    with pytest.raises(ContractViolation) as info:
        parse_device_topic(topic)
    assert reason in str(info.value)


def test_device_id_with_trailing_newline_refused() -> None:
    with pytest.raises(ContractViolation):
        parse_device_topic("bw/v1/ordos-czb/gps/truck-01\n")


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_ts_whose_utc_is_outside_the_calendar_is_a_contract_violation(ts: str) -> None:
    """Found by tests/fuzz: OverflowError escaped validate_payload (and would have stopped the ingest worker)."""
    with pytest.raises(ContractViolation) as info:
        validate_payload("temp", json.dumps({"ts": ts, "seq": 1, "temp_c": 4.0}).encode())
    assert "field 'ts'" in str(info.value) and "outside the calendar" in str(info.value)
