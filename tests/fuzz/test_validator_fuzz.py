"""Property-based and fuzz tests of the ingest validator: ``validate_payload`` and ``triage``.

Inputs: arbitrary bytes, arbitrary JSON, and near-valid contract payloads, built valid and then
broken one field at a time (wrong JSON types, out-of-range numbers, NaN/Infinity, huge numbers, ts
forms, seq bounds, epc lengths, batches of 0..1001 items, payloads over 256 KiB, bad UTF-8).

Properties: a payload is either accepted, and every accepted item is within the contract's ranges,
or refused with a :class:`ContractViolation` whose text is a non-empty, printable reason; nothing
else is ever raised. Where a test knows what it built, it also knows the verdict: a valid payload
is accepted with its values intact, a payload broken on purpose is refused with a reason that names
the field (and the item, in a batch).

The last test runs 2,000 generated invalid messages through the real broker and ingest worker and
finds each one in ``dead_letters``, with the reason triage gives it.
"""

from __future__ import annotations

import json
import math
import random
import string
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from bondwatch.contract.errors import ContractViolation
from bondwatch.contract.payloads import (
    EPC_RE,
    MAX_BATCH,
    MAX_PAYLOAD_BYTES,
    TS_MS_MAX,
    TS_MS_MIN,
    GpsReading,
    RfidReading,
    StatusMessage,
    TempReading,
    validate_payload,
)
from bondwatch.contract.topics import DEVICE_ID_RE, DEVICE_KINDS
from ingest.mqtt import InboundMessage
from ingest.service import IngestService
from ingest.triage import Accepted, Rejected, triage
from tests.conftest import Publisher, wait_for
from tests.fuzz.conftest import FUZZ, Chooser, cases, fast, json_value, structured, time_limit

KINDS = ("gps", "temp", "rfid", "status")
MODELS = {"gps": GpsReading, "temp": TempReading, "rfid": RfidReading, "status": StatusMessage}
SEQ_MAX = 2**63 - 1

# field -> (JSON type, low, high) of the contract; None: no bound on that side
Bounds = tuple[str, float | None, float | None]
FIELDS: dict[str, dict[str, Bounds]] = {
    "gps": {
        "lat": ("number", -90, 90),
        "lon": ("number", -180, 180),
        "speed_kmh": ("number", 0, 1000),
        "heading_deg": ("number", 0, 360),
        "hdop": ("number", 0, None),
        "sats": ("integer", 0, 255),
        "soc_pct": ("number", 0, 100),
        "energy_kwh": ("number", 0, None),
        "h2_kg": ("number", 0, None),
        "odometer_km": ("number", 0, None),
    },
    "temp": {
        "temp_c": ("number", -80, 85),
        "rh_pct": ("number", 0, 100),
        "battery_v": ("number", 0, 100),
    },
    "rfid": {
        "antenna": ("integer", 0, 65535),
        "rssi_dbm": ("number", -150, 50),
    },
    "status": {},
}
REQUIRED = {
    "gps": ("ts", "seq", "lat", "lon", "fix"),
    "temp": ("ts", "seq", "temp_c"),
    "rfid": ("ts", "seq", "epc"),
    "status": ("online", "ts"),
}
KNOWN = {kind: set(REQUIRED[kind]) | set(FIELDS[kind]) | {"door_open", "gate_id", "direction"} for kind in KINDS}


# --- valid items --------------------------------------------------------------------------------

TS_FROM, TS_SPAN_S = datetime(2000, 1, 2, tzinfo=UTC), 99 * 365 * 86_400


def rfc3339(c: Chooser) -> tuple[str, datetime]:
    """An RFC 3339 timestamp in one of its legal spellings, and the instant it means."""
    zone = UTC if c.boolean() else timezone(timedelta(minutes=15 * c.integer(-14 * 4, 14 * 4)))
    local = (TS_FROM + timedelta(seconds=c.integer(0, TS_SPAN_S), microseconds=c.integer(0, 999_999))).astimezone(zone)
    digits = c.integer(0, 9)
    fraction = f"{local.microsecond:06d}{c.integer(0, 999):03d}"[:digits]
    text = local.strftime("%Y-%m-%d") + c.choice("Tt ") + local.strftime("%H:%M:%S")
    if digits:
        text += "." + fraction
    offset = local.strftime("%z")
    text += c.choice("Zz") if offset == "+0000" and c.boolean() else f"{offset[:3]}:{offset[3:]}"
    micro = int(fraction[:6].ljust(6, "0")) if digits else 0  # nanoseconds are cut, never rounded
    return text, local.replace(microsecond=micro).astimezone(UTC)


def ts_valid(c: Chooser) -> tuple[str | int, datetime]:
    if c.boolean():
        return rfc3339(c)
    ms = c.integer(TS_MS_MIN, TS_MS_MAX - 1)
    return ms, datetime.fromtimestamp(ms / 1000, UTC)


def number(c: Chooser, low: float | None, high: float | None, integer: bool = False) -> int | float:
    lo = low if low is not None else -1e12
    hi = high if high is not None else 1e12
    if integer:
        return c.integer(int(lo), int(hi))
    return c.real(lo, hi) if c.integer(0, 3) else c.integer(math.ceil(lo), int(hi))


def valid_item(c: Chooser, kind: str) -> tuple[dict[str, Any], datetime]:
    """A contract-valid object of ``kind``, optional fields present or not, with unknown fields now and then."""
    ts, instant = ts_valid(c)
    item: dict[str, Any] = {"ts": ts}
    if kind == "status":
        item["online"] = c.boolean()
    else:
        item["seq"] = c.integer(0, 1000) if c.boolean() else c.integer(0, SEQ_MAX)
    for name, (kind_of, low, high) in FIELDS[kind].items():
        if name in REQUIRED[kind] or c.boolean():
            item[name] = number(c, low, high, kind_of == "integer")
        elif c.integer(0, 3) == 0:
            item[name] = None  # an optional field sent as null is "not reported"
    if kind == "gps":
        item["fix"] = c.choice(["none", "2d", "3d"])
    if kind == "temp" and c.boolean():
        item["door_open"] = c.boolean()
    if kind == "rfid":
        item["epc"] = c.text(4 * (words := c.integer(6, 31)), string.hexdigits, 4 * words)
        if c.boolean():
            item["gate_id"] = c.text(64, None, 1)
        if c.boolean():
            item["direction"] = c.choice(["in", "out"])
    for _ in range(c.integer(0, 2)):
        key = c.text(10)
        if key not in KNOWN[kind]:
            item[key] = json_value(c, 2, strict=True)  # fields the contract does not name are ignored
    return item, instant


def dumps(value: Any) -> bytes:
    """JSON as a device might write it: Python's json, NaN and Infinity spelt out if present."""
    return json.dumps(value, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


# --- breaking a valid item ------------------------------------------------------------------------

WRONG_TYPES: dict[str, list[Any]] = {
    "number": ["12.5", True, False, [], {}, "NaN"],
    "integer": [1.0, 1.5, "1", True, [], {}],
    "bool": [1, 0, "true", "false", None, []],
    "string": [1, 1.5, True, [], {}],
}
TS_INVALID: list[Any] = [
    "2026-11-25T08:00:00",  # no offset
    "2026-11-25",
    "2026-11-25T08:00Z",
    "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-11-25T24:00:00Z",
    "2026-11-25T23:59:60Z",  # a leap second Python's datetime cannot hold
    "2026-11-25T08:00:00+24:00",
    "2026-11-25T08:00:00+0800",
    "2026-11-25T08:00:00.1234567890Z",  # ten fractional digits
    "0001-01-01T00:00:00+01:00",  # UTC before year 1
    "9999-12-31T23:59:59-01:00",  # UTC after year 9999
    "２０２６-11-25T08:00:00Z",  # full-width digits
    "",
    "now",
    TS_MS_MIN - 1,
    TS_MS_MAX,
    1_764_028_800,  # seconds, not milliseconds
    1_764_028_800_000_000,  # microseconds
    1.764e12,
    -1,
    True,
    None,
    [],
    {},
]
MISSING = object()


def out_of_range(kind_of: str, low: float | None, high: float | None) -> list[Any]:
    bad: list[Any] = []
    for edge, step in ((low, -1), (high, 1)):
        if edge is None:
            continue
        if kind_of == "integer":
            bad.append(int(edge) + step)
        else:
            bad += [edge + step * 1e-6, edge + step * 1e-9, edge + step * 1e300]
    bad.append(math.inf if high is not None else -math.inf)  # written out as Infinity: not JSON
    return bad


def breakages(kind: str) -> list[tuple[str, Any, str]]:
    """Every (field, bad value, word the reason must contain) used to break an item of ``kind``."""
    out: list[tuple[str, Any, str]] = [(name, MISSING, name) for name in REQUIRED[kind]]
    out += [("ts", value, "ts") for value in TS_INVALID]
    if kind != "status":
        out += [("seq", v, "seq") for v in (-1, SEQ_MAX + 1, 2**64 - 1, 1.0, "1", True, None)]
    else:
        out += [("online", v, "online") for v in WRONG_TYPES["bool"]]
    for name, (kind_of, low, high) in FIELDS[kind].items():
        out += [(name, v, name) for v in out_of_range(kind_of, low, high)]
        out += [(name, v, name) for v in WRONG_TYPES[kind_of]]
        if name in REQUIRED[kind]:
            out.append((name, None, name))
    if kind == "gps":
        out += [("fix", v, "fix") for v in ("3D", "none ", "", "4d", None, 3, True)]
    if kind == "temp":
        out += [("door_open", v, "door_open") for v in (1, 0, "true", [], {})]
    if kind == "rfid":
        out += [
            ("epc", v, "epc")
            for v in ("", "30", "3" * 20, "3" * 23, "3" * 25, "3" * 26, "3" * 122, "3" * 128, "G" * 24, " " + "3" * 24,
                      "3" * 24 + "\n", "0x" + "3" * 22, 3, None, ["3" * 24])
        ]  # fmt: skip
        out += [("gate_id", v, "gate_id") for v in ("", "g" * 65, 7, True, [])]
        out += [("direction", v, "direction") for v in ("IN", "both", "", 1)]
    return out


BREAKAGES = {kind: breakages(kind) for kind in KINDS}


def broken(item: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    out = dict(item)
    if value is MISSING:
        out.pop(field, None)
    else:
        out[field] = value
    return out


# --- checks ---------------------------------------------------------------------------------------


def within_contract(kind: str, item: Any) -> None:
    """An accepted item is the kind's model with every value in the contract's range."""
    assert isinstance(item, MODELS[kind])
    assert item.ts.tzinfo is not None and item.ts.utcoffset() == timedelta(0)
    if kind != "status":
        assert isinstance(item.seq, int) and 0 <= item.seq <= SEQ_MAX
    for name, (kind_of, low, high) in FIELDS[kind].items():
        value = getattr(item, name)
        if value is None:
            assert name not in REQUIRED[kind]
            continue
        assert isinstance(value, int if kind_of == "integer" else float) and not isinstance(value, bool)
        assert math.isfinite(value)
        assert (low is None or value >= low) and (high is None or value <= high), (name, value)
    if kind == "rfid":
        assert EPC_RE.fullmatch(item.epc) and item.epc == item.epc.upper()


def a_reason(exc: ContractViolation) -> str:
    reason = str(exc)
    assert reason.strip(), "a refusal without a reason"
    assert reason.isprintable(), f"reason is not printable text: {reason!r}"
    assert len(reason) <= 2000
    return reason


def verdict(kind: str, payload: bytes) -> list[Any] | str:
    """The accepted items (checked) or the reason (checked); anything else raised fails the test."""
    with time_limit():
        try:
            items = validate_payload(kind, payload)
        except ContractViolation as exc:
            return a_reason(exc)
    assert 1 <= len(items) <= MAX_BATCH
    for item in items:
        within_contract(kind, item)
    return list(items)


# ==================================================================================================
# validate_payload
# ==================================================================================================


@settings(FUZZ, max_examples=cases(1000))
@given(kind=st.sampled_from(KINDS), payload=st.one_of(st.binary(max_size=400), st.text(max_size=200).map(str.encode)))
def test_any_bytes_are_accepted_within_the_contract_or_refused_with_a_reason(kind: str, payload: bytes) -> None:
    verdict(kind, payload)


FIELD_NAMES = ["ts", "seq", "lat", "lon", "fix", "temp_c", "epc", "online", "rh_pct", "door_open", "x"]


def any_json_case(c: Chooser) -> tuple[str, Any]:
    """Any JSON, or objects (alone or in arrays) whose keys are the contract's, with any values."""
    how = c.integer(0, 2)
    if how == 0:
        value = json_value(c)
    else:
        objects = [{c.choice(FIELD_NAMES): json_value(c, 2) for _ in range(c.integer(0, 8))} for _ in range(4)]
        value = objects[0] if how == 1 else objects[: c.integer(0, 4)]
    return c.choice(KINDS), value


def check_any_json(case: tuple[str, Any]) -> None:
    kind, value = case
    verdict(kind, dumps(value))
    try:
        compact = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):  # NaN, infinities and integers past 64 bits: no orjson text
        return
    verdict(kind, compact)


@settings(FUZZ, max_examples=cases(300))
@given(case=structured(any_json_case))
def test_any_json_is_accepted_within_the_contract_or_refused_with_a_reason(case: tuple[str, Any]) -> None:
    check_any_json(case)


@settings(FUZZ, max_examples=cases(1500))
@given(case=fast(any_json_case))
def test_any_json_is_accepted_within_the_contract_or_refused_with_a_reason_fast(case: tuple[str, Any]) -> None:
    check_any_json(case)


def valid_case(c: Chooser) -> tuple[str, dict[str, Any], datetime]:
    kind = c.choice(KINDS)
    return kind, *valid_item(c, kind)


def check_valid(case: tuple[str, dict[str, Any], datetime]) -> None:
    kind, item, instant = case
    got = verdict(kind, dumps(item))
    assert isinstance(got, list), got
    (model,) = got
    assert model.ts == instant
    for name, value in item.items():
        if name in KNOWN[kind] and name != "ts":
            expected = value.upper() if name == "epc" else value
            assert getattr(model, name) == expected, (name, getattr(model, name), expected)


@settings(FUZZ, max_examples=cases(300))
@given(case=structured(valid_case))
def test_valid_items_are_accepted_with_their_values(case: tuple[str, dict[str, Any], datetime]) -> None:
    check_valid(case)


@settings(FUZZ, max_examples=cases(1000))
@given(case=fast(valid_case))
def test_valid_items_are_accepted_with_their_values_fast(case: tuple[str, dict[str, Any], datetime]) -> None:
    check_valid(case)


BrokenCase = tuple[str, bytes, int | None, str, Any, str]  # kind, payload, batch index, field, value, word


def broken_case(c: Chooser) -> BrokenCase:
    kind = c.choice(KINDS)
    item, _ = valid_item(c, kind)
    field, value, word = c.choice(BREAKAGES[kind])
    bad = broken(item, field, value)
    if kind != "status" and c.boolean():
        batch = [valid_item(c, kind)[0] for _ in range(c.integer(1, 4))]
        index = c.integer(0, len(batch))
        batch.insert(index, bad)
        return kind, dumps(batch), index, field, value, word
    return kind, dumps(bad), None, field, value, word


def check_broken(case: BrokenCase) -> None:
    """Refused, and the reason names the field (and the item, in a batch), unless the JSON itself is bad."""
    kind, payload, index, field, value, word = case
    got = verdict(kind, payload)
    assert isinstance(got, str), f"accepted {field}={value!r}" + ("" if index is None else f" in item {index}")
    if "not JSON" not in got:  # NaN and Infinity are refused before any field is looked at
        assert word in got, (word, got)
        assert index is None or f"item {index}" in got, got


@settings(FUZZ, max_examples=cases(500))
@given(case=structured(broken_case))
def test_an_item_broken_in_one_field_is_refused_naming_the_field(case: BrokenCase) -> None:
    check_broken(case)


@settings(FUZZ, max_examples=cases(2500))
@given(case=fast(broken_case))
def test_an_item_broken_in_one_field_is_refused_naming_the_field_fast(case: BrokenCase) -> None:
    check_broken(case)


JSON_INSERTS = [b"NaN", b"-Infinity", b"1e999", b"\xef\xbb\xbf", b"\\u0000", b"\\ud800", b"{", b"]"]
JSON_BYTES = b'{}[],:"\\0-.eE\xff\xc3\x00 '


def damaged_payload_case(c: Chooser) -> tuple[str, bytes]:
    kind = c.choice(KINDS)
    raw = bytearray(dumps(valid_item(c, kind)[0]))
    for _ in range(c.integer(1, 3)):
        pos = c.integer(0, len(raw))
        op = c.choice(["set", "insert", "delete", "truncate"])
        if op == "set" and pos < len(raw):
            raw[pos] = c.choice(JSON_BYTES) if c.boolean() else c.integer(0, 255)
        elif op == "insert":
            raw[pos:pos] = c.choice(JSON_INSERTS) if c.boolean() else c.binary(4)
        elif op == "delete":
            del raw[pos : pos + c.integer(1, 4)]
        else:
            del raw[pos:]
    return kind, bytes(raw)


@settings(FUZZ, max_examples=cases(200))
@given(case=structured(damaged_payload_case))
def test_near_valid_payloads_with_byte_damage(case: tuple[str, bytes]) -> None:
    verdict(*case)


@settings(FUZZ, max_examples=cases(1000))
@given(case=fast(damaged_payload_case))
def test_near_valid_payloads_with_byte_damage_fast(case: tuple[str, bytes]) -> None:
    verdict(*case)


BATCH_SIZES = [0, 1, 2, MAX_BATCH - 1, MAX_BATCH, MAX_BATCH + 1]


@settings(FUZZ, max_examples=cases(40))
@given(case=structured(lambda c: (k := c.choice(["gps", "temp", "rfid"]), c.choice(BATCH_SIZES), valid_item(c, k)[0])))
def test_batches_of_0_to_1001_items(case: tuple[str, int, dict[str, Any]]) -> None:
    kind, size, item = case
    payload = dumps([item] * size)
    got = verdict(kind, payload)
    if len(payload) > MAX_PAYLOAD_BYTES:  # a thousand rich items can pass 256 KiB: the size is checked first
        assert isinstance(got, str) and "256 KiB" in got
    elif 1 <= size <= MAX_BATCH:
        assert isinstance(got, list) and len(got) == size
    else:
        assert isinstance(got, str) and ("empty" in got if size == 0 else str(size) in got)


@settings(FUZZ, max_examples=cases(40))
@given(
    case=structured(
        lambda c: (k := c.choice(KINDS), valid_item(c, k)[0], c.choice([0, 1, 2, 1000, c.integer(-2000, 2000)]),
                   c.choice([b" ", b"\n", b"\t"]))
    )
)  # fmt: skip
def test_the_size_limit_is_exactly_256_kib(case: tuple[str, dict[str, Any], int, bytes]) -> None:
    kind, item, extra, pad = case
    body = dumps(item)
    payload = body + pad * (MAX_PAYLOAD_BYTES - len(body) + extra)  # JSON allows trailing whitespace
    got = verdict(kind, payload)
    if len(payload) <= MAX_PAYLOAD_BYTES:
        assert isinstance(got, list), got
    else:
        assert isinstance(got, str) and "256 KiB" in got


def bad_utf8_case(c: Chooser) -> tuple[str, bytes, int, bytes]:
    kind = c.choice(KINDS)
    text = dumps(valid_item(c, kind)[0]).decode()
    cut = c.integer(0, len(text))  # between characters, so that the bad byte is the first one
    bad = c.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80", b"\xf8\x88\x80\x80\x80"])
    body = text[:cut].encode() + bad + text[cut:].encode()
    return kind, body, len(text[:cut].encode()), bad


@settings(FUZZ, max_examples=cases(150))
@given(case=structured(bad_utf8_case))
def test_bad_utf8_names_the_byte_and_its_offset(case: tuple[str, bytes, int, bytes]) -> None:
    kind, payload, offset, bad = case
    got = verdict(kind, payload)
    assert isinstance(got, str) and f"0x{bad[0]:02x} at offset {offset}" in got, got


# ==================================================================================================
# triage (topic + payload)
# ==================================================================================================

SITE = "ordos-czb"
DEVICE_ID_CHARS = string.ascii_letters + string.digits + "_.-"
DEVICE_IDS_BAD = ["", "a b", "dev!", "dev+1", "dev#", "ü", "デバイス", "x" * 65, "dev/1", "dev\x00", "dev\n"]


def topic(c: Chooser) -> tuple[str, bool]:
    """A topic and whether it is a valid device topic of SITE."""
    parts = ["bw", "v1", SITE, c.choice(KINDS), c.text(64, DEVICE_ID_CHARS, 1)]
    how = c.choice(["ok", "ok", "ok", "device", "kind", "prefix", "site", "levels", "text"])
    if how == "ok":
        return "/".join(parts), True
    if how == "device":
        parts[4] = c.choice(DEVICE_IDS_BAD) if c.boolean() else c.text(70)
    elif how == "kind":
        parts[3] = c.choice(["alerts", "gate", "GPS", "", "readings", "gps/x"])
    elif how == "prefix":
        parts[:2] = c.choice([["bw", "v2"], ["BW", "v1"], ["bw"], ["", "bw", "v1"]])
    elif how == "site":
        parts[2] = c.choice(["other-site", "", "ordos-czb ", "ORDOS-CZB"])
    elif how == "levels":
        parts = [*parts, "extra"] if c.boolean() else parts[:4]
    else:
        return c.text(80), False
    name = "/".join(parts)
    levels = name.split("/")
    valid = (
        len(levels) == 5
        and levels[:3] == ["bw", "v1", SITE]
        and levels[3] in DEVICE_KINDS
        and DEVICE_ID_RE.fullmatch(levels[4]) is not None
    )
    return name, valid


def payload_for(c: Chooser, kind: str) -> tuple[bytes, bool | None]:
    """A payload for ``kind`` and whether it is valid (None: not known in advance)."""
    how = c.choice(["valid", "valid", "broken", "bytes", "json"])
    if how == "valid":
        return dumps(valid_item(c, kind)[0]), True
    if how == "broken":
        field, value, _ = c.choice(BREAKAGES[kind])
        return dumps(broken(valid_item(c, kind)[0], field, value)), False
    if how == "bytes":
        return c.binary(200), None
    return dumps(json_value(c)), None


TriageCase = tuple[str, bool, bytes, bool | None]


def triage_case(c: Chooser) -> TriageCase:
    name, topic_ok = topic(c)
    kind = name.split("/")[3] if topic_ok else c.choice(KINDS)
    return name, topic_ok, *payload_for(c, kind)


def check_triage(case: TriageCase) -> None:
    name, topic_ok, payload, payload_ok = case
    parts = name.split("/")
    message = InboundMessage(name, payload, mid=1, qos=1, received_at=time.time(), session=0)
    with time_limit():
        outcome = triage(message, SITE)
    if isinstance(outcome, Accepted):
        assert topic_ok and payload_ok is not False, (name, payload)
        assert (outcome.kind, outcome.device_id) == (parts[3], parts[4])
        assert outcome.items
        for item in outcome.items:
            within_contract(outcome.kind, item)
        return
    assert isinstance(outcome, Rejected)
    assert outcome.message is message
    assert outcome.reason.strip() and outcome.reason.isprintable(), outcome.reason
    assert not (topic_ok and payload_ok), f"rejected a valid message: {outcome.reason}"
    if topic_ok:  # refused for its payload: the dead letter says whose it is
        assert (outcome.kind, outcome.device_id) == (parts[3], parts[4])
    elif outcome.kind is not None:
        assert outcome.kind in DEVICE_KINDS and outcome.device_id is not None
        assert DEVICE_ID_RE.fullmatch(outcome.device_id)


@settings(FUZZ, max_examples=cases(300))
@given(case=structured(triage_case))
def test_triage_accepts_within_the_contract_or_rejects_with_a_reason(case: TriageCase) -> None:
    check_triage(case)


@settings(FUZZ, max_examples=cases(1500))
@given(case=fast(triage_case))
def test_triage_accepts_within_the_contract_or_rejects_with_a_reason_fast(case: TriageCase) -> None:
    check_triage(case)


# ==================================================================================================
# Every refusal of the real ingest is a counted dead letter with its reason
# ==================================================================================================

INGEST_MESSAGES = 2000


def _valid_item(rnd: random.Random, kind: str, seq: int) -> dict[str, Any]:
    ts = "2026-11-25T08:00:00.000+08:00"
    if kind == "gps":
        return {"ts": ts, "seq": seq, "lat": 39.6, "lon": 109.8, "fix": "3d", "speed_kmh": rnd.uniform(0, 90)}
    if kind == "temp":
        return {"ts": ts, "seq": seq, "temp_c": rnd.uniform(-20, 8), "door_open": False}
    if kind == "rfid":
        return {"ts": ts, "seq": seq, "epc": "3034257BF7194E4000001A85", "antenna": 1, "direction": "out"}
    return {"online": True, "ts": ts}


def invalid_messages(site: str, n: int, seed: int = 20261125) -> list[tuple[str, bytes]]:
    """``n`` messages that each break the contract, from the same catalogue the properties above use."""
    rnd = random.Random(seed)
    makers: list[Callable[[str, str, int], tuple[str, bytes]]] = []

    def field(kind: str, device: str, i: int) -> tuple[str, bytes]:
        name, value, _ = rnd.choice(BREAKAGES[kind])
        return f"bw/v1/{site}/{kind}/{device}", dumps(broken(_valid_item(rnd, kind, i), name, value))

    def batch(kind: str, device: str, i: int) -> tuple[str, bytes]:
        if kind == "status":
            return f"bw/v1/{site}/{kind}/{device}", dumps([_valid_item(rnd, kind, i)])
        items = [_valid_item(rnd, kind, i * 10 + j) for j in range(rnd.randint(2, 6))]
        name, value, _ = rnd.choice(BREAKAGES[kind])
        items[rnd.randrange(len(items))] = broken(items[0], name, value)
        return f"bw/v1/{site}/{kind}/{device}", dumps(items)

    def shape(kind: str, device: str, i: int) -> tuple[str, bytes]:
        item = dumps(_valid_item(rnd, kind, i))
        payload = rnd.choice(
            [b"", b"[]", b"null", b"42", b'"text"', b"{", item[:-1], item + b"x", b"[" + item + b"]" * 2,
             item.replace(b"}", b',"x":NaN}'), b"\xff" + item, item.decode().encode("utf-16"),
             b"[" + b",".join([item] * (MAX_BATCH + 1)) + b"]", b"[1, 2]", b"[[" + item + b"]]"]
        )  # fmt: skip
        return f"bw/v1/{site}/{kind}/{device}", payload

    def device_id(kind: str, device: str, i: int) -> tuple[str, bytes]:
        bad = rnd.choice(["", "a b", "dev!", "ü", "デバイス", "x" * 65, "dev:1", "dev$", "dev,1"])
        return f"bw/v1/{site}/{kind}/{bad}", dumps(_valid_item(rnd, kind, i))

    def noise(kind: str, device: str, i: int) -> tuple[str, bytes]:
        return f"bw/v1/{site}/{kind}/{device}", b"\xff" + rnd.randbytes(rnd.randint(0, 200))

    makers += [field] * 10 + [batch] * 3 + [shape] * 3 + [device_id, noise]
    out = [rnd.choice(makers)(rnd.choice(KINDS), f"{site}-d{i % 37}", i) for i in range(n - 3)]
    for i in range(3):  # over 256 KiB
        out.append((f"bw/v1/{site}/temp/{site}-big{i}", b" " * MAX_PAYLOAD_BYTES + dumps(_valid_item(rnd, "temp", i))))
    rnd.shuffle(out)
    return out


def test_the_ingest_keeps_every_invalid_message_as_a_dead_letter_with_its_reason(
    site: str, ingest: IngestService, publisher: Publisher, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    messages = invalid_messages(site, INGEST_MESSAGES)
    assert len(messages) == INGEST_MESSAGES
    expected: Counter[tuple[str, bytes, str]] = Counter()
    for topic, payload in messages:
        outcome = triage(InboundMessage(topic, payload, 0, 1, 0.0, 0), site)
        assert isinstance(outcome, Rejected), (topic, payload)  # invalid by construction
        expected[(topic, payload, outcome.reason)] += 1

    started = time.monotonic()
    for topic, payload in messages:
        publisher.publish(topic, payload)
    publisher.wait_acked()

    def dead() -> int:
        row = db.execute("SELECT count(*) FROM dead_letters WHERE topic LIKE %s", (f"bw/v1/{site}/%",)).fetchone()
        return int(row[0]) if row else 0

    wait_for(lambda: dead() >= INGEST_MESSAGES and ingest.worker.totals["dead"] >= INGEST_MESSAGES, timeout=30)
    time.sleep(0.5)  # anything extra would show up now
    rows = db.execute(
        "SELECT topic, payload, reason FROM dead_letters WHERE topic LIKE %s", (f"bw/v1/{site}/%",)
    ).fetchall()
    assert len(rows) == INGEST_MESSAGES
    assert Counter((t, bytes(p), r) for t, p, r in rows) == expected  # raw bytes kept, the triage's reason
    assert ingest.worker.totals["dead"] == INGEST_MESSAGES
    assert ingest.worker.totals["stored"] == 0
    for table in ("positions", "temperatures", "rfid_reads"):
        row = db.execute(f"SELECT count(*) FROM {table} WHERE device_id LIKE %s", (f"{site}-%",)).fetchone()
        assert row is not None and row[0] == 0
    assert time.monotonic() - started < 30


def test_the_generated_invalid_messages_cover_every_stage_of_triage() -> None:
    stages: Counter[str] = Counter()
    for topic, payload in invalid_messages("t-cover", INGEST_MESSAGES):
        reason = triage(InboundMessage(topic, payload, 0, 1, 0.0, 0), "t-cover")
        assert isinstance(reason, Rejected)
        text = reason.reason
        stage = next(
            (s for s, w in (("topic", "in topic does not match"), ("size", "256 KiB"), ("utf8", "not UTF-8"),
                            ("json", "not JSON"), ("shape", "batch is"), ("shape", "batch has"),
                            ("shape", "must be a JSON"), ("shape", "must be one JSON")) if w in text),
            "field",
        )  # fmt: skip
        stages[stage] += 1
    assert set(stages) == {"topic", "size", "utf8", "json", "shape", "field"}, stages
