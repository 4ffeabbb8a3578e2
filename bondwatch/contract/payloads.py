"""Payloads of contract v1 and their validation.

A payload is one UTF-8 JSON object, or a JSON array of 1..1000 objects (a batch), at most 256 KiB.
Validation is all or nothing per MQTT message: one bad item makes the whole message a dead letter,
so a batch is never half-stored. Every failure raises :class:`ContractViolation` whose text says
what is wrong, in terms a device vendor can act on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from bondwatch.contract.errors import ContractViolation

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_BATCH = 1000
# Integer timestamps are milliseconds; these bounds catch seconds or microseconds sent by mistake.
TS_MS_MIN = 946_684_800_000  # 2000-01-01T00:00:00Z
TS_MS_MAX = 4_102_444_800_000  # 2100-01-01T00:00:00Z
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
EPC_PATTERN = r"^(?:[0-9A-Fa-f]{4}){6,31}$"  # 96..496 bits, whole 16-bit words
EPC_RE = re.compile(EPC_PATTERN)


def parse_ts(value: Any) -> datetime:
    """RFC 3339 with an offset, or integer milliseconds since the epoch -> aware UTC datetime."""
    if isinstance(value, bool):
        raise ValueError("ts must be an RFC 3339 string or integer milliseconds, not a boolean")
    if isinstance(value, int):
        if not TS_MS_MIN <= value < TS_MS_MAX:
            raise ValueError(f"ts {value} is not milliseconds between 2000 and 2100")
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        if not RFC3339_RE.fullmatch(value):
            raise ValueError(f"ts {value!r} is not RFC 3339 with an offset (e.g. 2026-11-25T08:00:00+08:00)")
        text = value.upper().replace("Z", "+00:00")
        if "." in text:  # Python keeps microseconds: cut nanoseconds, never round up a second
            head, rest = text.split(".", 1)
            digits = rest[: len(rest) - 6]
            text = f"{head}.{digits[:6].ljust(6, '0')}{rest[-6:]}"
        try:
            return datetime.fromisoformat(text).astimezone(UTC)
        except ValueError as exc:
            raise ValueError(f"ts {value!r} is not a valid date and time: {exc}") from None
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: in UTC that is before year 1
            raise ValueError(f"ts {value!r} is outside the calendar in UTC") from None
    raise ValueError(f"ts must be an RFC 3339 string or integer milliseconds, got {type(value).__name__}")


def _epc(value: Any) -> str:
    if not isinstance(value, str) or not EPC_RE.fullmatch(value):
        raise ValueError("epc must be hexadecimal, 96 to 496 bits in whole 16-bit words (24..124 hex digits)")
    return value.upper()


Ts = Annotated[datetime, BeforeValidator(parse_ts)]
Seq = Annotated[int, Field(ge=0, le=2**63 - 1)]
Epc = Annotated[str, BeforeValidator(_epc)]


class _Payload(BaseModel):
    # strict: "12.5" is not a number and 1 is not true; unknown fields are ignored (the contract
    # may be extended by devices without breaking the platform).
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, allow_inf_nan=False)


class _Reading(_Payload):
    ts: Ts
    seq: Seq


class GpsReading(_Reading):
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    fix: Literal["none", "2d", "3d"]
    speed_kmh: Annotated[float, Field(ge=0, le=1000)] | None = None
    heading_deg: Annotated[float, Field(ge=0, le=360)] | None = None
    hdop: Annotated[float, Field(ge=0)] | None = None
    sats: Annotated[int, Field(ge=0, le=255)] | None = None
    soc_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    energy_kwh: Annotated[float, Field(ge=0)] | None = None
    h2_kg: Annotated[float, Field(ge=0)] | None = None
    odometer_km: Annotated[float, Field(ge=0)] | None = None


class TempReading(_Reading):
    temp_c: Annotated[float, Field(ge=-80, le=85)]
    rh_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    door_open: bool | None = None
    battery_v: Annotated[float, Field(ge=0, le=100)] | None = None


class RfidReading(_Reading):
    epc: Epc
    antenna: Annotated[int, Field(ge=0, le=65535)] | None = None
    rssi_dbm: Annotated[float, Field(ge=-150, le=50)] | None = None
    gate_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    direction: Literal["in", "out"] | None = None


class StatusMessage(_Payload):
    online: bool
    ts: Ts


Reading = GpsReading | TempReading | RfidReading
MODELS: dict[str, type[_Payload]] = {
    "gps": GpsReading,
    "temp": TempReading,
    "rfid": RfidReading,
    "status": StatusMessage,
}


def decode_json(payload: bytes) -> Any:
    """Size, encoding and JSON checks shared by every kind."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractViolation(f"payload is {len(payload)} bytes, over the 256 KiB (262144 bytes) limit")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractViolation(
            f"payload is not UTF-8: byte 0x{payload[exc.start]:02x} at offset {exc.start}"
        ) from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ContractViolation(f"payload is not JSON: {exc}") from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:3]:
        field = ".".join(str(p) for p in err["loc"]) or "payload"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            parts.append(f"required field '{field}' is missing")
        else:
            parts.append(f"field '{field}': {msg} (got {err.get('input')!r:.60})")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def validate_payload(kind: str, payload: bytes) -> Sequence[_Payload]:
    """All items of one message, validated, or ContractViolation for the whole message."""
    model = MODELS[kind]
    data = decode_json(payload)
    if isinstance(data, dict):
        items: list[Any] = [data]
    elif isinstance(data, list):
        if kind == "status":
            raise ContractViolation("status payload must be one JSON object, not an array")
        if not data:
            raise ContractViolation("batch is an empty array")
        if len(data) > MAX_BATCH:
            raise ContractViolation(f"batch has {len(data)} items, over the limit of {MAX_BATCH}")
        items = data
    else:
        raise ContractViolation(f"payload must be a JSON object or array of objects, got {type(data).__name__}")
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ContractViolation(f"item {index}: must be a JSON object, got {type(item).__name__}")
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            where = f"item {index}: " if len(items) > 1 else ""
            raise ContractViolation(f"{kind} {where}{_describe(exc)}") from None
    return out
