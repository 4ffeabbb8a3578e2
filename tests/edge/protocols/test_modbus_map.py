"""Register maps and RTU frames: real captures from ../shared/testdata/modbus, plus the map's own rules."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from pymodbus.framer import FramerRTU

from edge.errors import FrameError
from edge.protocols.modbus_map import (
    Point,
    RegisterMap,
    crc_ok,
    decode,
    encode,
    find_frame,
    parse_response,
    plan_reads,
    to_temperature,
)
from tests.conftest import shared_testdata

TS = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def frames() -> list[tuple[str, bytes, str]]:
    """(direction, frame, comment) of every line of frames.txt."""
    out = []
    for line in shared_testdata("modbus", "frames.txt").read_text().splitlines():
        body, _, comment = line.partition("#")
        if not body.strip():
            continue
        direction, hexbytes = body.split(None, 1)
        out.append((direction, bytes.fromhex(hexbytes), comment.strip()))
    return out


def frame(hexbytes: str) -> bytes:
    """A response of frames.txt, asserted to be in the file (the test relies on the capture, not a copy)."""
    wanted = bytes.fromhex(hexbytes)
    assert any(f == wanted for _, f, _ in frames()), f"{hexbytes} is not in frames.txt"
    return wanted


def with_crc(body: bytes) -> bytes:
    return body + FramerRTU.compute_CRC(body).to_bytes(2, "big")


# --- frames.txt -----------------------------------------------------------------------------


def test_every_captured_frame_passes_its_crc() -> None:
    captured = frames()
    assert len(captured) >= 40
    assert [f.hex(" ") for _, f, _ in captured if not crc_ok(f)] == []


def test_any_single_flipped_bit_fails_the_crc() -> None:
    for _, good, _ in frames():
        for bit in range(len(good) * 8):
            bad = bytearray(good)
            bad[bit // 8] ^= 1 << (bit % 8)
            assert not crc_ok(bytes(bad)), f"{good.hex(' ')} bit {bit}"


@pytest.mark.parametrize(
    ("hexbytes", "point", "expected"),
    [
        ("01 04 02 01 31 79 74", Point(name="temp_c", function=4, address=1, scale=0.1), 30.5),
        ("01 04 02 0B EA 3F 8F", Point(name="temp_c", function=4, address=1, scale=0.01), 30.5),
        ("01 04 02 02 22 38 49", Point(name="rh_pct", function=4, address=2, type="uint16", scale=0.1), 54.6),
        ("01 04 02 15 54 B6 5F", Point(name="rh_pct", function=4, address=2, type="uint16", scale=0.01), 54.6),
        # Delta DTB4824 PV as recorded: 0xFDDE is 64990 unsigned, -546 as the signed value it is.
        ("07 03 02 FD DE F0 8C", Point(name="temp_c", function=3, address=0x1000, scale=0.1), -54.6),
        ("07 03 02 FD DE F0 8C", Point(name="temp_c", function=3, address=0x1000, type="uint16"), 64990),
    ],
)
def test_captured_responses_decode_to_the_documented_values(hexbytes: str, point: Point, expected: float) -> None:
    response = parse_response(frame(hexbytes))
    assert response.exception_code is None
    assert response.function == point.function
    assert decode(point, response.registers) == expected


def test_sht20_temperature_and_humidity_in_one_request() -> None:
    sht20 = RegisterMap(
        points=[
            Point(name="temp_c", function=4, address=1, scale=0.1),
            Point(name="rh_pct", function=4, address=2, type="uint16", scale=0.1),
        ]
    )
    [block] = plan_reads(sht20.points)
    assert (block.function, block.address, block.count) == (4, 1, 2)  # = the A1 request 01 04 0001 0002
    raw = frame("01 04 04 01 31 02 22 2A CE")
    assert len(raw) == block.response_size
    response = parse_response(raw)
    values: dict[str, float | bool] = {p.name: decode(p, block.slice(p, response.registers)) for p in block.points}
    reading = to_temperature(values, TS)
    assert (reading.temp_c, reading.rh_pct, reading.door_open, reading.ts) == (30.5, 54.6, None, TS)


def test_captured_discrete_inputs_as_a_door_contact() -> None:
    response = parse_response(frame("07 02 02 07 00 33 88"))  # 9 inputs from 0x0810: 07 00
    contact = Point(name="door_open", function=2, address=0x0810)
    assert decode(contact, response.bits[:1]) is True
    assert decode(contact.model_copy(update={"invert": True}), response.bits[:1]) is False
    assert response.bits[:9] == [True, True, True, False, False, False, False, False, False]


def test_a_corrupted_capture_is_refused_as_crc() -> None:
    good = frame("01 04 02 01 31 79 74")
    with pytest.raises(FrameError) as err:
        parse_response(good[:-1] + bytes([good[-1] ^ 0x01]))
    assert err.value.reason == "crc"


# --- the map's own rules ----------------------------------------------------------------------


def test_exception_response() -> None:
    response = parse_response(with_crc(bytes([0x01, 0x84, 0x02])))
    assert (response.slave, response.function, response.exception_code) == (1, 4, 2)


@pytest.mark.parametrize(
    ("type_", "word_order", "registers", "expected"),
    [
        ("int16", "big", [0xFF27], -21.7),
        ("uint16", "big", [0xFF27], 6531.9),
        ("int32", "big", [0xFFFE, 0x1DC0], -12345.6),
        ("int32", "little", [0x1DC0, 0xFFFE], -12345.6),
        ("uint32", "big", [0x0001, 0xE240], 12345.6),
        ("uint32", "little", [0xE240, 0x0001], 12345.6),
    ],
)
def test_integer_types_and_word_order(type_: str, word_order: str, registers: list[int], expected: float) -> None:
    point = Point.model_validate(
        {"name": "temp_c", "function": 3, "address": 0, "type": type_, "word_order": word_order, "scale": 0.1}
    )
    assert point.count == len(registers)  # count follows the type when left out
    assert decode(point, registers) == expected


def test_float32_word_order_and_nan() -> None:
    big = Point(name="temp_c", function=4, address=0, type="float32")
    little = big.model_copy(update={"word_order": "little"})
    assert decode(big, [0xC194, 0x0000]) == -18.5
    assert decode(little, [0x0000, 0xC194]) == -18.5
    assert decode(big, encode(big, 13.2)) == 13.2  # float32's 13.199999809 comes back as 13.2
    with pytest.raises(FrameError) as err:
        decode(big, [0x7FC0, 0x0000])  # NaN: a broken probe on many float sensors
    assert err.value.reason == "out_of_range"


def test_scale_offset_and_round_trip() -> None:
    point = Point(name="temp_c", function=3, address=0, scale=0.01, offset=-40)
    assert decode(point, [3]) == -39.97  # not -39.970000000000006
    for value in (-80.0, -21.75, 0.0, 4.44, 85.0):
        assert decode(point, encode(point, value)) == value


def test_door_contact_on_a_register_and_inverted() -> None:
    register = Point(name="door_open", function=3, address=7, type="uint16")
    closed_when_set = Point(name="door_open", function=1, address=0, invert=True)
    assert decode(register, [1]) is True
    assert decode(register, [0]) is False
    assert decode(closed_when_set, [True]) is False
    assert encode(closed_when_set, True) == [False]


def test_wrong_number_of_registers() -> None:
    with pytest.raises(FrameError) as err:
        decode(Point(name="temp_c", function=3, address=0, type="int32"), [1])
    assert err.value.reason == "short_response"


@pytest.mark.parametrize(
    "point",
    [
        {"name": "temp_c", "function": 1, "address": 0},  # a temperature is not a bit
        {"name": "temp_c", "function": 3, "address": 0, "type": "float32", "count": 1},
        {"name": "temp_c", "function": 3, "address": 0xFFFF, "type": "int32"},
        {"name": "temp_c", "function": 3, "address": 0, "scale": 0},
        {"name": "temp_c", "function": 5, "address": 0},
        {"name": "pressure", "function": 3, "address": 0},
        {"name": "temp_c", "function": 3, "address": 0, "colour": "red"},
    ],
)
def test_invalid_points(point: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Point.model_validate(point)


def test_a_map_needs_temp_c_once() -> None:
    rh = {"name": "rh_pct", "function": 4, "address": 2}
    temp = {"name": "temp_c", "function": 4, "address": 1}
    with pytest.raises(ValidationError, match="temp_c"):
        RegisterMap.model_validate({"points": [rh]})
    with pytest.raises(ValidationError, match="twice"):
        RegisterMap.model_validate({"points": [temp, rh, rh]})


def test_plan_reads_groups_contiguous_points_only() -> None:
    points = [
        Point(name="temp_c", function=3, address=10, type="float32"),
        Point(name="rh_pct", function=3, address=12),
        Point(name="battery_v", function=3, address=20),  # a gap: its own request
        Point(name="door_open", function=2, address=0),
    ]
    blocks = [(b.function, b.address, b.count, [p.name for p in b.points]) for b in plan_reads(points)]
    assert blocks == [
        (2, 0, 1, ["door_open"]),
        (3, 10, 3, ["temp_c", "rh_pct"]),
        (3, 20, 1, ["battery_v"]),
    ]


def test_plan_reads_respects_the_request_size_limit() -> None:
    # 63 contiguous float32 points, registers 0..125: one more than a request may carry (125).
    points = [Point(name="temp_c", function=4, address=a, type="float32") for a in range(0, 126, 2)]
    assert [(b.address, b.count) for b in plan_reads(points)] == [(0, 124), (124, 2)]
    coils = [Point(name="door_open", function=1, address=a) for a in range(2001)]
    assert [(b.address, b.count) for b in plan_reads(coils)] == [(0, 2000), (2000, 1)]


def test_to_temperature_ranges() -> None:
    edge_values = to_temperature({"temp_c": -80.0, "rh_pct": 100.0, "battery_v": 3.6, "door_open": False}, TS)
    assert (edge_values.temp_c, edge_values.rh_pct, edge_values.battery_v, edge_values.door_open) == (
        -80.0,
        100.0,
        3.6,
        False,
    )
    assert to_temperature({"temp_c": 85.0}, TS).temp_c == 85.0
    for bad in ({"temp_c": 85.1}, {"temp_c": -80.5}, {"temp_c": 4.0, "rh_pct": 100.2}, {"temp_c": math.nan}):
        with pytest.raises(FrameError) as err:
            to_temperature(bad, TS)
        assert err.value.reason == "out_of_range", bad
    with pytest.raises(FrameError) as err:
        to_temperature({"rh_pct": 50.0}, TS)
    assert err.value.reason == "missing_temp"


def test_crc_helpers_on_short_and_glued_input() -> None:
    good = with_crc(bytes.fromhex("01 04 02 01 31"))
    assert not crc_ok(b"\x01\x04\x00")
    assert find_frame(good + good) == good
    assert find_frame(b"\x00\x11\x22\x33\x44") is None


def test_crc_valid_response_pymodbus_cannot_decode_is_malformed() -> None:
    """Found by tests/fuzz: a CRC-valid read-file-record answer with a bad sub-request length made pymodbus raise
    ModbusIOException out of parse_response."""
    with pytest.raises(FrameError) as err:
        parse_response(with_crc(bytes([0x01, 0x14, 0x03, 0x06, 0x00, 0x01])))
    assert err.value.reason == "malformed"
