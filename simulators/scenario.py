"""Scenarios: small, documented TOML files that make the platform raise each alert type of the contract on cue.

The site simulator (:mod:`simulators.site`) produces realistic traffic, but an excursion or a bonded exit happens
there when the models say so, which is rarely and never at a known moment. The rules engine needs the opposite:
input whose every alert is known in advance, to the second, so its tests can say "this alert must be open from
here, and not before". A scenario is that input, written down: the registry it needs (applied through the REST
API, as an operator would), the device readings over scenario time (piecewise-linear temperatures, GPS tracks
along the site's real geometry, gate passages), and what the platform must raise (``[[expect]]``), decide at the
gates (``[[decisions]]``) and must not raise (``[[no_alert]]``). The file format is documented in
``simulators/scenarios/README.md``.

Readings are generated, not recorded, so that a scenario stays short and readable; the only randomness is a
small, seeded sensor noise, so the bytes are the same on every run for the same base time.

Two ways to play a scenario (:func:`run`):

- ``live``: readings go out in real time from now on. Needed for ``sensor_offline`` and ``gps_lost``, because the
  contract measures silence on the platform's clock;
- ``backlog``: everything at once, stamped as if the scenario had started ``duration_s`` ago: the contract's
  "buffered or replayed data is judged as it happened", and a run that takes a second instead of two hours.

Ids in the files are fixed (``scn-temp-cr-01``); a prefix given when loading is put in front of every device,
vehicle and release-note id, and folded into every tag's serial number, so that concurrent runs never share a
device, a seq series or a release note.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import logging
import math
import random
import sys
import threading
import time
import tomllib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import httpx
import orjson
import paho.mqtt.client as mqtt
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from bondwatch.contract.alerts import SILENCE_ALERTS, AlertType, Severity
from bondwatch.contract.payloads import EPC_PATTERN
from bondwatch.contract.topics import DEVICE_ID_PATTERN, device_topic
from bondwatch.errors import BondWatchError
from bondwatch.mqtt import make_client
from bondwatch.settings import CommonSettings
from simulators import geography as geo
from simulators.coldrooms import PRODUCTS

log = logging.getLogger(__name__)

SCENARIO_DIR = Path(__file__).resolve().with_name("scenarios")
Mode = Literal["live", "backlog"]
MODES: tuple[str, ...] = get_args(Mode)
SubjectKind = Literal["device", "vehicle", "gate"]

CST = timezone(timedelta(hours=8), "CST")  # the zone's offset, for the RFC 3339 form of ts
PASSAGE_WINDOW_S = 10.0  # the contract's default: the reads of one gate within this window are one passage
READ_SPACING_S = 0.02  # between two tags of one sighting: a reader reports the tags of one inventory round in turn
SERIAL_BITS = 38  # SGTIN-96 and GRAI-96 serials: the low 38 bits, where a prefix is folded in
PREFIX_MAX = 24
ACK_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0

# Registry resources a scenario may write, and where their ids are: (method, first path segment).
RESOURCES = {
    ("PUT", "geofences"),
    ("PUT", "profiles"),
    ("PUT", "devices"),
    ("PUT", "vehicles"),
    ("PUT", "tags"),
    ("POST", "release-notes"),
}


class ScenarioError(BondWatchError, ValueError):
    """A scenario file is unusable, or its registry was refused; the text names the file and the entry."""


def _upper(value: str) -> str:
    return value.upper()


Id = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
Epc = Annotated[str, Field(pattern=EPC_PATTERN), AfterValidator(_upper)]
Seconds = Annotated[float, Field(ge=0)]
Lon = Annotated[float, Field(ge=-180, le=180)]
Lat = Annotated[float, Field(ge=-90, le=90)]
LonLat = tuple[Lon, Lat]
Ramp = float | tuple[float, float]  # a constant, or [start, end] linear over the step


class _Model(BaseModel):
    # Typos in a scenario file are errors, not silently ignored keys.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RegistryEntry(_Model):
    """One request applied through the REST API before the run, in file order (references need order)."""

    method: Literal["PUT", "POST"]
    path: str
    # Omitted for a geofence or a profile of the standard site: the body then comes from
    # simulators.geography.geofence_features() or simulators.coldrooms.PRODUCTS, so a scenario never copies them.
    body: dict[str, Any] | None = None
    # Body fields set to base + seconds (RFC 3339) when applied, e.g. a release note's validity, which must
    # follow the run's base time: {valid_from = -3600, valid_until = 14400}.
    times_s: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_resource(self) -> RegistryEntry:
        parts = self.path.split("/")
        if len(parts) < 2 or parts[0] != "" or (self.method, parts[1]) not in RESOURCES:
            known = ", ".join(f"{m} /{r}" + ("" if m == "POST" else "/{id}") for m, r in sorted(RESOURCES))
            raise ValueError(f"{self.method} {self.path} is not a registry write a scenario may make; known: {known}")
        if (self.method == "PUT") != (len(parts) == 3) or (len(parts) == 3 and not parts[2]):
            raise ValueError(f"{self.method} {self.path}: PUT takes /resource/{{id}}, POST takes /resource")
        if self.body is None and parts[1] not in ("geofences", "profiles"):
            raise ValueError(f"{self.path}: only standard geofences and profiles may omit the body")
        return self

    @property
    def resource(self) -> str:
        return self.path.split("/")[1]

    @property
    def key(self) -> str | None:
        parts = self.path.split("/")
        return parts[2] if len(parts) == 3 else None


class _Interval(_Model):
    device: Id
    from_s: Seconds
    to_s: Seconds  # exclusive: the next step of the device starts here without a repeated reading
    every_s: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _ordered(self) -> _Interval:
        if self.to_s <= self.from_s:
            raise ValueError(f"to_s ({self.to_s}) must be after from_s ({self.from_s})")
        return self

    def times(self) -> list[float]:
        out: list[float] = []
        k = 0
        while (t := self.from_s + k * self.every_s) < self.to_s - 1e-9:
            out.append(round(t, 3))
            k += 1
        return out

    def fraction(self, t: float) -> float:
        return (t - self.from_s) / (self.to_s - self.from_s)


class TempStep(_Interval):
    """A cold-room sensor's readings: ``temp_c`` constant or a linear ramp [start, end] over [from_s, to_s)."""

    kind: Literal["temp"]
    temp_c: Ramp
    door_open: list[tuple[Seconds, Seconds]] = Field(default_factory=list)  # [from, to) windows
    rh_pct: Ramp | None = None
    battery_v: float | None = 3.6
    noise_c: Annotated[float, Field(ge=0, le=0.5)] = 0.05  # uniform ± this; ±1 % on rh_pct

    @model_validator(mode="after")
    def _windows(self) -> TempStep:
        for a, b in self.door_open:
            if b <= a:
                raise ValueError(f"door_open window [{a}, {b}] must end after it starts")
        return self


class GpsStep(_Interval):
    """A vehicle terminal's fixes along ``waypoints`` [[lon, lat], ...], at constant speed over [from_s, to_s).

    The last waypoint is where the vehicle is at ``to_s``: the next step starts there. One waypoint: standing.
    """

    kind: Literal["gps"]
    waypoints: Annotated[list[LonLat], Field(min_length=1)]
    fix: Literal["none", "2d", "3d"] = "3d"
    soc_pct: Ramp | None = None
    noise_m: Annotated[float, Field(ge=0, le=20)] = 1.5  # Gaussian, per axis (the fleet model's GNSS noise)
    heading_deg: Annotated[float, Field(ge=0, lt=360)] | None = None  # reported while standing
    # At from_s; grows with the distance driven and carries on into the device's next steps.
    odometer_km: Annotated[float, Field(ge=0)] | None = None


class RfidStep(_Model):
    """A gate passage at a reader: every tag in ``epcs`` read ``sightings`` times, ``every_s`` apart."""

    kind: Literal["rfid"]
    device: Id
    at_s: Seconds
    gate_id: Id
    direction: Literal["in", "out"]
    epcs: Annotated[list[Epc], Field(min_length=1, max_length=200)]
    sightings: Annotated[int, Field(ge=1, le=20)] = 3
    every_s: Annotated[float, Field(gt=0, le=5)] = 1.0
    rssi_dbm: Annotated[float, Field(ge=-100, le=-20)] = -55.0

    @model_validator(mode="after")
    def _one_passage(self) -> RfidStep:
        if len(set(self.epcs)) != len(self.epcs):
            raise ValueError("epcs lists a tag more than once")
        if len(self.epcs) * READ_SPACING_S >= self.every_s:
            raise ValueError(f"{len(self.epcs)} tags do not fit one sighting every {self.every_s} s")
        if self.burst_s >= PASSAGE_WINDOW_S:
            raise ValueError(
                f"the reads last {self.burst_s:.2f} s, beyond one passage window ({PASSAGE_WINDOW_S:.0f} s)"
            )
        return self

    @property
    def burst_s(self) -> float:
        return (self.sightings - 1) * self.every_s + (len(self.epcs) - 1) * READ_SPACING_S


class JumpStep(_Model):
    """One fix of a vehicle terminal far from where the vehicle is (a multipath or spoofing glitch)."""

    kind: Literal["jump"]
    device: Id
    at_s: Seconds
    position: LonLat
    soc_pct: Annotated[float, Field(ge=0, le=100)] | None = None


Step = Annotated[TempStep | GpsStep | RfidStep | JumpStep, Field(discriminator="kind")]


class Expect(_Model):
    """An alert the platform must raise: open from ``opens_after_s`` on (and not before), within ``within_s``."""

    type: AlertType
    subject_kind: SubjectKind
    subject_id: Id
    severity: Severity
    opens_after_s: Seconds
    within_s: Annotated[float, Field(gt=0)] = 60.0  # evaluation latency the platform may take
    clears_after_s: Seconds | None = None
    details: dict[str, Any] = Field(default_factory=dict)  # a subset of the alert's details
    # gate_hold only: the decision behind the alert.
    gate_id: Id | None = None
    decision: Literal["hold"] | None = None
    reasons: list[str] = Field(default_factory=list)  # substrings, case-insensitive, of the decision's reasons
    reason_epcs: list[Epc] = Field(default_factory=list)  # tags the reasons must name

    @model_validator(mode="after")
    def _consistent(self) -> Expect:
        gate_fields = self.gate_id is not None or self.decision is not None or self.reasons or self.reason_epcs
        if self.type == "gate_hold" and (self.gate_id is None or self.decision != "hold"):
            raise ValueError("a gate_hold expectation names its gate_id and decision = 'hold'")
        if self.type != "gate_hold" and gate_fields:
            raise ValueError("gate_id, decision, reasons and reason_epcs belong to gate_hold expectations")
        if self.clears_after_s is not None and self.clears_after_s <= self.opens_after_s:
            raise ValueError("clears_after_s must come after opens_after_s")
        return self


class Decision(_Model):
    """The decision the platform must publish for one outbound passage (``bw/v1/{site}/gate/{gate_id}/decision``)."""

    gate_id: Id
    vehicle_id: Id
    decision: Literal["pass", "hold"]
    after_s: Seconds  # the passage's first read; the decision follows its window
    within_s: Annotated[float, Field(gt=0)] = 15.0
    release_note_id: Id | None = None
    reasons: list[str] = Field(default_factory=list)
    reason_epcs: list[Epc] = Field(default_factory=list)


class NoAlert(_Model):
    """An alert the platform must not raise during the scenario: what makes the scenario's point sharp."""

    type: AlertType
    subject_kind: SubjectKind
    subject_id: Id


@dataclass(frozen=True)
class ScheduledMessage:
    """One MQTT message of a scenario: due ``at_s`` seconds after the base time."""

    at_s: float
    topic: str
    payload: bytes
    device_id: str
    kind: str
    seq: int
    ts: datetime


@dataclass(frozen=True)
class RegistryRequest:
    method: str
    path: str
    body: dict[str, Any]


class Scenario(_Model):
    name: Id
    description_zh: Annotated[str, Field(min_length=1)]
    description_en: Annotated[str, Field(min_length=1)]
    seed: int
    duration_s: Annotated[float, Field(gt=0)]
    live_only: bool = False
    site_geofences: bool = False
    registry: list[RegistryEntry] = Field(default_factory=list)
    steps: Annotated[list[Step], Field(min_length=1)]
    expect: list[Expect] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    no_alert: list[NoAlert] = Field(default_factory=list)

    _prefix: str = PrivateAttr(default="")
    _source: Path | None = PrivateAttr(default=None)

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def source(self) -> Path | None:
        return self._source

    # -- what the registry says --------------------------------------------------------------------------------

    def registered(self, resource: str) -> dict[str, dict[str, Any]]:
        """Bodies of the scenario's own registry writes to ``resource`` (e.g. "vehicles"), keyed by id."""
        out: dict[str, dict[str, Any]] = {}
        for request in self.registry_requests(datetime(2000, 1, 1, tzinfo=UTC)):
            parts = request.path.split("/")
            if parts[1] != resource:
                continue
            key = parts[2] if len(parts) == 3 else str(request.body.get("id"))
            out[key] = request.body
        return out

    def registry_requests(self, base: datetime) -> list[RegistryRequest]:
        """Every API write of the scenario in order, with standard bodies filled in and times resolved."""
        out: list[RegistryRequest] = []
        if self.site_geofences:
            out += [RegistryRequest("PUT", f"/geofences/{f['id']}", f) for f in geo.geofence_features()]
        for entry in self.registry:
            body = dict(entry.body) if entry.body is not None else _standard_body(entry)
            for key, seconds in entry.times_s.items():
                body[key] = _rfc3339(base + timedelta(seconds=seconds))
            out.append(RegistryRequest(entry.method, entry.path, body))
        return out

    # -- the readings ------------------------------------------------------------------------------------------

    def messages(self, base: datetime, site: str = geo.SITE) -> list[ScheduledMessage]:
        """Every reading of the scenario as an MQTT message, in time order.

        ``ts`` is ``base + at_s`` (base cut to whole milliseconds), alternately RFC 3339 with the zone's +08:00
        offset and integer milliseconds, so both forms of the contract are exercised; seq counts from 0 per
        device. The same base and seed give the same bytes.
        """
        if base.tzinfo is None:
            raise ValueError("base must be an aware datetime")
        base = _whole_ms(base)
        raw: list[tuple[float, int, int, str, str, dict[str, Any]]] = []
        rngs: dict[str, random.Random] = {}
        odometers: dict[str, float | None] = {}  # a device's odometer carries on from one step to the next
        for index, step in sorted(enumerate(self.steps), key=lambda item: (_start(item[1]), item[0])):
            original = step.device.removeprefix(self._prefix)
            rng = rngs.setdefault(step.device, random.Random(f"{self.seed}/{original}"))
            kind = _step_device_kind(step)
            if isinstance(step, GpsStep):
                start = step.odometer_km if step.odometer_km is not None else odometers.get(step.device)
                samples, odometers[step.device] = _gps_samples(step, rng, start)
            else:
                samples = _samples(step, rng)
            for sub, (at_s, fields) in enumerate(samples):
                raw.append((at_s, index, sub, step.device, kind, fields))
        raw.sort(key=lambda r: (r[0], r[1], r[2]))
        seqs: dict[str, int] = defaultdict(int)
        out: list[ScheduledMessage] = []
        for at_s, _, _, device, kind, fields in raw:
            seq = seqs[device]
            seqs[device] = seq + 1
            ts = base + timedelta(milliseconds=round(at_s * 1000))
            ts_value: str | int = _rfc3339(ts) if seq % 2 == 0 else int(ts.timestamp() * 1000)
            payload = orjson.dumps({"ts": ts_value, "seq": seq, **fields})
            out.append(ScheduledMessage(at_s, device_topic(site, kind, device), payload, device, kind, seq, ts))
        return out

    def devices(self) -> dict[str, str]:
        """Every device that publishes in the scenario, and its kind (gps, temp or rfid)."""
        out: dict[str, str] = {}
        for step in self.steps:
            out.setdefault(step.device, _step_device_kind(step))
        return out


# --- generation ---------------------------------------------------------------------------------------------------


def _lerp(value: Ramp, f: float) -> float:
    if isinstance(value, tuple):
        return value[0] + (value[1] - value[0]) * f
    return value


def _start(step: TempStep | GpsStep | RfidStep | JumpStep) -> float:
    return step.from_s if isinstance(step, TempStep | GpsStep) else step.at_s


def _samples(step: TempStep | RfidStep | JumpStep, rng: random.Random) -> list[tuple[float, dict[str, Any]]]:
    if isinstance(step, TempStep):
        return _temp_samples(step, rng)
    if isinstance(step, RfidStep):
        return _rfid_samples(step, rng)
    return _jump_samples(step, rng)


def _temp_samples(step: TempStep, rng: random.Random) -> list[tuple[float, dict[str, Any]]]:
    out: list[tuple[float, dict[str, Any]]] = []
    for t in step.times():
        f = step.fraction(t)
        fields: dict[str, Any] = {"temp_c": round(_lerp(step.temp_c, f) + rng.uniform(-step.noise_c, step.noise_c), 2)}
        rh_noise = rng.uniform(-1.0, 1.0)  # drawn either way, so adding rh_pct leaves temp_c as it was
        if step.rh_pct is not None:
            fields["rh_pct"] = round(min(100.0, max(0.0, _lerp(step.rh_pct, f) + rh_noise)), 1)
        fields["door_open"] = any(a <= t < b for a, b in step.door_open)
        if step.battery_v is not None:
            fields["battery_v"] = step.battery_v
        out.append((t, fields))
    return out


def _gps_samples(
    step: GpsStep, rng: random.Random, odometer_km: float | None
) -> tuple[list[tuple[float, dict[str, Any]]], float | None]:
    """The step's fixes, and the odometer at its end (None when the scenario does not report one)."""
    points = [geo.local_xy(p) for p in step.waypoints]
    seg = [math.dist(a, b) for a, b in itertools.pairwise(points)]
    total = sum(seg)
    speed_kmh = total / (step.to_s - step.from_s) * 3.6
    out: list[tuple[float, dict[str, Any]]] = []
    for t in step.times():
        along = step.fraction(t) * total
        x, y = points[-1]
        heading = step.heading_deg
        for i, length in enumerate(seg):
            if length <= 0:
                continue
            (ax, ay), (bx, by) = points[i], points[i + 1]
            heading = math.degrees(math.atan2(bx - ax, by - ay)) % 360.0
            if along <= length:
                x, y = ax + (bx - ax) * along / length, ay + (by - ay) * along / length
                break
            along -= length
        dx, dy = rng.gauss(0.0, step.noise_m), rng.gauss(0.0, step.noise_m)
        quality = rng.random()
        if step.fix != "none":
            x, y = x + dx, y + dy
        lon, lat = geo.from_local_xy(x, y)
        fields: dict[str, Any] = {"lat": round(lat, 7), "lon": round(lon, 7), "fix": step.fix}
        if step.fix == "3d":
            fields |= {"hdop": round(0.6 + 0.6 * quality, 1), "sats": 14 + int(quality * 10)}
        elif step.fix == "2d":
            fields |= {"hdop": round(2.0 + 2.0 * quality, 1), "sats": 4 + int(quality * 2)}
        else:
            fields |= {"sats": int(quality * 4)}
        if step.fix != "none":
            fields["speed_kmh"] = round(speed_kmh, 1)
            if heading is not None:
                fields["heading_deg"] = round(heading, 1)
        if step.soc_pct is not None:
            fields["soc_pct"] = round(_lerp(step.soc_pct, step.fraction(t)), 1)
        if odometer_km is not None:
            fields["odometer_km"] = round(odometer_km + step.fraction(t) * total / 1000.0, 2)
        out.append((t, fields))
    return out, None if odometer_km is None else odometer_km + total / 1000.0


def _rfid_samples(step: RfidStep, rng: random.Random) -> list[tuple[float, dict[str, Any]]]:
    antenna = 1 if step.direction == "in" else 2  # the portal's two antennas face each way (as simulators.site)
    out: list[tuple[float, dict[str, Any]]] = []
    for k in range(step.sightings):
        for i, epc in enumerate(step.epcs):
            at = round(step.at_s + k * step.every_s + i * READ_SPACING_S, 3)
            rssi = round(step.rssi_dbm + rng.uniform(-6.0, 6.0), 1)
            out.append(
                (
                    at,
                    {
                        "epc": epc,
                        "antenna": antenna,
                        "rssi_dbm": rssi,
                        "gate_id": step.gate_id,
                        "direction": step.direction,
                    },
                )
            )
    return out


def _jump_samples(step: JumpStep, rng: random.Random) -> list[tuple[float, dict[str, Any]]]:
    lon, lat = step.position
    fields: dict[str, Any] = {"lat": round(lat, 7), "lon": round(lon, 7), "fix": "3d", "hdop": 0.9, "sats": 12}
    if step.soc_pct is not None:
        fields["soc_pct"] = step.soc_pct
    return [(step.at_s, fields)]


def _step_device_kind(step: TempStep | GpsStep | RfidStep | JumpStep) -> str:
    return "temp" if step.kind == "temp" else "rfid" if step.kind == "rfid" else "gps"


def _whole_ms(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def _rfc3339(at: datetime) -> str:
    return at.astimezone(CST).isoformat(timespec="milliseconds")


def _standard_body(entry: RegistryEntry) -> dict[str, Any]:
    key = entry.key
    if entry.resource == "geofences":
        for feature in geo.geofence_features():
            if feature["id"] == key:
                return feature
        raise ScenarioError(f"{entry.path}: no geofence {key!r} in simulators.geography.geofence_features()")
    if key in PRODUCTS:
        return PRODUCTS[key].profile()
    raise ScenarioError(f"{entry.path}: no profile {key!r} in simulators.coldrooms.PRODUCTS")


# --- loading ------------------------------------------------------------------------------------------------------


def load_scenario(path: str | Path, prefix: str = "") -> Scenario:
    """Read and check a scenario file; ``prefix`` goes in front of its ids (see the module doc).

    Every problem raises :class:`ScenarioError` naming the file and the entry, e.g.
    ``temp_excursion.toml: steps[2] (temp, device scn-temp-cr-01): every_s: Input should be greater than 0``.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{path}: " + "; ".join(_describe(exc, data))) from None
    problems = _problems(scenario)
    if problems:
        raise ScenarioError(f"{path}: " + "; ".join(problems))
    scenario = _with_prefix(scenario, prefix, path)
    scenario._source = path
    return scenario


def _where(data: Any, loc: tuple[int | str, ...]) -> str:
    """``steps[2] (temp, device X).every_s`` from a pydantic error location."""
    if not loc:
        return "file"
    text = str(loc[0])
    rest = list(loc[1:])
    if rest and isinstance(index := rest[0], int):
        rest.pop(0)
        text += f"[{index}]"
        items = data.get(str(loc[0])) if isinstance(data, dict) else None
        item = items[index] if isinstance(items, list) and index < len(items) else None
        if isinstance(item, dict):
            label = ", ".join(
                str(part) for part in (item.get("kind") or item.get("type"), _label(item)) if part is not None
            )
            if label:
                text += f" ({label})"
            if rest and rest[0] == item.get("kind"):
                rest.pop(0)  # the discriminator's own level
    return ".".join([text, *(str(part) for part in rest)])


def _label(item: dict[str, Any]) -> str | None:
    for key in ("device", "subject_id", "vehicle_id", "path"):
        if key in item:
            return f"{key.replace('_id', '')} {item[key]}"
    return None


def _describe(exc: ValidationError, data: Any) -> list[str]:
    parts = []
    for err in exc.errors(include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required field is missing"
        parts.append(f"{_where(data, tuple(err['loc']))}: {msg}")
    return parts


def _step_label(index: int, step: TempStep | GpsStep | RfidStep | JumpStep) -> str:
    return f"steps[{index}] ({step.kind}, device {step.device})"


def _problems(s: Scenario) -> list[str]:
    """What the models alone cannot see: time limits, devices used two ways, overlapping steps, dangling ids."""
    problems: list[str] = []
    kinds: dict[str, str] = {}
    spans: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for i, step in enumerate(s.steps):
        where = _step_label(i, step)
        kind = _step_device_kind(step)
        if kinds.setdefault(step.device, kind) != kind:
            problems.append(f"{where}: device is a {kinds[step.device]} device in an earlier step")
        if isinstance(step, TempStep | GpsStep):
            start, end = step.from_s, step.to_s
        elif isinstance(step, RfidStep):
            start, end = step.at_s, step.at_s + step.burst_s + 1e-3
        else:
            start, end = step.at_s, step.at_s + 1e-3
        if end > s.duration_s + 1e-6:
            problems.append(f"{where}: ends at {end:g} s, beyond duration_s {s.duration_s:g}")
        if isinstance(step, TempStep):
            for a, b in step.door_open:
                if a < step.from_s or b > step.to_s:
                    problems.append(f"{where}: door_open window [{a:g}, {b:g}] is outside the step")
        spans[step.device].append((start, end, i))
    for device, items in spans.items():
        items.sort()
        for (_, end_a, a), (start_b, _, b) in itertools.pairwise(items):
            if start_b < end_a - 1e-9:
                problems.append(f"steps[{b}] (device {device}) overlaps steps[{a}] in time")
    for i, entry in enumerate(s.registry):
        if entry.body is None:
            try:
                _standard_body(entry)
            except ScenarioError as exc:
                problems.append(f"registry[{i}]: {exc}")
    vehicles = {e.key for e in s.registry if e.resource == "vehicles"}
    registered_devices = {e.key for e in s.registry if e.resource == "devices"}
    for i, exp in enumerate(s.expect):
        where = f"expect[{i}] ({exp.type}, subject {exp.subject_id})"
        if exp.subject_kind == "vehicle" and exp.subject_id not in vehicles:
            problems.append(f"{where}: vehicle is not registered by the scenario")
        if exp.subject_kind == "device" and exp.subject_id not in kinds and exp.subject_id not in registered_devices:
            problems.append(f"{where}: device neither publishes nor is registered")
        last = max(exp.opens_after_s + exp.within_s, exp.clears_after_s or 0.0)
        if last > s.duration_s + 1e-6:
            problems.append(f"{where}: the alert is due by {last:g} s, beyond duration_s {s.duration_s:g}")
        if exp.type in SILENCE_ALERTS and not s.live_only:
            problems.append(f"{where}: silence is judged on the platform's clock; set live_only = true")
    passages = {(st.gate_id, st.at_s) for st in s.steps if isinstance(st, RfidStep) and st.direction == "out"}
    for i, dec in enumerate(s.decisions):
        if dec.vehicle_id not in vehicles:
            problems.append(f"decisions[{i}] (vehicle {dec.vehicle_id}): vehicle is not registered by the scenario")
        if (dec.gate_id, dec.after_s) not in passages:
            problems.append(f"decisions[{i}]: no outbound passage at {dec.gate_id} starting at {dec.after_s:g} s")
    return problems


# --- prefixing ----------------------------------------------------------------------------------------------------


def prefixed_epc(epc: str, prefix: str) -> str:
    """``epc`` with a hash of ``prefix`` XORed into its low 38 bits: the serial of an SGTIN-96 or GRAI-96.

    The result is still a well-formed tag of the same product (or asset type) and company, distinct for
    distinct tags (XOR is a bijection), and the same wherever the scenario names the tag.
    """
    if not prefix:
        return epc.upper()
    mask = int.from_bytes(hashlib.sha256(prefix.encode()).digest()[:8], "big") & ((1 << SERIAL_BITS) - 1)
    return f"{int(epc, 16) ^ mask:0{len(epc)}X}"


def _with_prefix(s: Scenario, prefix: str, path: Path) -> Scenario:
    if not prefix:
        return s
    if len(prefix) > PREFIX_MAX or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in prefix):
        raise ScenarioError(f"prefix {prefix!r} must be up to {PREFIX_MAX} of [A-Za-z0-9_.-]")
    d = s.model_dump(mode="json")

    def ident(value: str | None) -> str | None:
        return None if value is None else prefix + value

    def tag(value: str | None) -> str | None:
        return None if value is None else prefixed_epc(value, prefix)

    def subject(item: dict[str, Any]) -> None:
        if item["subject_kind"] in ("device", "vehicle"):
            item["subject_id"] = ident(item["subject_id"])

    for step in d["steps"]:
        step["device"] = ident(step["device"])
        if step["kind"] == "rfid":
            step["epcs"] = [tag(e) for e in step["epcs"]]
    for entry in d["registry"]:
        resource = entry["path"].split("/")[1]
        body = entry["body"]
        if resource in ("devices", "vehicles"):
            entry["path"] = f"/{resource}/{ident(entry['path'].split('/')[2])}"
        elif resource == "tags":
            entry["path"] = f"/tags/{tag(entry['path'].split('/')[2])}"
        if body is None or resource in ("geofences", "profiles"):
            continue
        for key in ("vehicle_id", "device_id") if resource != "release-notes" else ("id", "vehicle_id"):
            if isinstance(body.get(key), str):
                body[key] = ident(body[key])
        if isinstance(body.get("tag_epc"), str):
            body["tag_epc"] = tag(body["tag_epc"])
        if resource == "release-notes" and isinstance(body.get("epcs"), list):
            body["epcs"] = [tag(e) if isinstance(e, str) else e for e in body["epcs"]]
    for exp in d["expect"]:
        subject(exp)
        exp["reason_epcs"] = [tag(e) for e in exp["reason_epcs"]]
    for dec in d["decisions"]:
        dec["vehicle_id"] = ident(dec["vehicle_id"])
        dec["release_note_id"] = ident(dec["release_note_id"])
        dec["reason_epcs"] = [tag(e) for e in dec["reason_epcs"]]
    for item in d["no_alert"]:
        subject(item)
    try:
        renamed = Scenario.model_validate(d)
    except ValidationError as exc:
        raise ScenarioError(f"{path} with prefix {prefix!r}: " + "; ".join(_describe(exc, d))) from None
    renamed._prefix = prefix
    return renamed


# --- running ------------------------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    """What a run did: its base time (scenario time 0), the registry writes and the messages per device."""

    scenario: str
    mode: str
    base: datetime
    registry: int
    published: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.published.values())


def apply_registry(scenario: Scenario, api: httpx.Client, base: datetime) -> int:
    """Write the scenario's registry through the API (``api``: base URL .../api/v1, an admin token)."""
    requests = scenario.registry_requests(base)
    for request in requests:
        response = api.request(request.method, request.path, json=request.body)
        if response.status_code < 300:
            continue
        hint = ""
        if response.status_code == 409 and request.path == "/release-notes":
            hint = " (a release note is issued once: run again with another --prefix)"
        raise ScenarioError(
            f"{scenario.source or scenario.name}: {request.method} {request.path}: "
            f"{response.status_code} {response.text[:300]}{hint}"
        )
    return len(requests)


class _Publisher:
    """QoS 1 publishing that knows when the broker has acknowledged everything."""

    def __init__(self, settings: CommonSettings, client_id: str) -> None:
        target = settings.mqtt
        self.client = make_client(target, client_id)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(200)
        self._cond = threading.Condition()
        self._sent = 0
        self._acked = 0
        self._connected = threading.Event()
        self._refused: str | None = None
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        try:
            self.client.connect(target.host, target.port)
        except OSError as exc:
            raise ScenarioError(f"cannot reach the MQTT broker at {target.host}:{target.port}: {exc}") from None
        self.client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S) or self._refused:
            self.close()
            raise ScenarioError(f"MQTT broker {target.host}:{target.port} refused or did not answer: {self._refused}")

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, rc: Any, props: object) -> None:
        if rc.is_failure:
            self._refused = str(rc)
        self._connected.set()

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: queued until reconnected
            raise ScenarioError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        with self._cond:
            self._sent += 1

    def wait_acked(self, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._acked >= self._sent, timeout):
                raise ScenarioError(
                    f"the broker acknowledged {self._acked} of {self._sent} messages in {timeout:.0f} s"
                )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(scenario: Scenario, settings: CommonSettings, api: httpx.Client | None, mode: Mode = "backlog") -> RunSummary:
    """Apply the registry (when ``api`` is given), then publish every reading at QoS 1 to ``settings.site``.

    ``live``: scenario time 0 is now; each message goes out when due, and the run lasts ``duration_s`` (silence
    at the end is part of a scenario). ``backlog``: scenario time 0 is ``duration_s`` ago and everything goes
    out at once, as an edge agent replays its buffer after an outage.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "backlog" and scenario.live_only:
        log.warning("%s judges silence on the platform's clock: its expectations hold in live mode only", scenario.name)
    started = time.monotonic()
    now = _whole_ms(datetime.now(UTC))
    base = now if mode == "live" else now - timedelta(seconds=scenario.duration_s)
    summary = RunSummary(scenario.name, mode, base, 0)
    if api is not None:
        summary.registry = apply_registry(scenario, api, base)
    messages = scenario.messages(base, settings.site)
    publisher = _Publisher(settings, f"bondwatch-scenario-{uuid.uuid4().hex[:8]}")
    try:
        for message in messages:
            if mode == "live":
                pause = (message.ts - datetime.now(UTC)).total_seconds()
                if pause > 0:
                    time.sleep(pause)
            publisher.publish(message.topic, message.payload)
            summary.published[message.device_id] = summary.published.get(message.device_id, 0) + 1
        publisher.wait_acked(ACK_TIMEOUT_S)
    finally:
        publisher.close()
    if mode == "live":
        rest = (base + timedelta(seconds=scenario.duration_s) - datetime.now(UTC)).total_seconds()
        if rest > 0:
            time.sleep(rest)
    summary.seconds = time.monotonic() - started
    return summary


# --- command line -------------------------------------------------------------------------------------------------


def resolve(name: str) -> Path:
    """A file path as given, or the name of a bundled scenario (``temp_excursion``)."""
    path = Path(name)
    if path.exists() or path.suffix == ".toml" or "/" in name:
        return path
    return SCENARIO_DIR / f"{name}.toml"


def bundled() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.toml"))


def _print_plan(scenario: Scenario, base: datetime) -> None:
    def at(seconds: float) -> str:
        return (base + timedelta(seconds=seconds)).astimezone(CST).strftime("%H:%M:%S")

    for exp in scenario.expect:
        clears = f", clears from {at(exp.clears_after_s)}" if exp.clears_after_s is not None else ""
        print(
            f"  expect {exp.type} ({exp.severity}) on {exp.subject_kind} {exp.subject_id}: "
            f"open from {at(exp.opens_after_s)} (within {exp.within_s:g} s){clears}"
        )
    for dec in scenario.decisions:
        print(f"  expect {dec.decision} at {dec.gate_id} for {dec.vehicle_id} after {at(dec.after_s)}")
    for no in scenario.no_alert:
        print(f"  expect no {no.type} on {no.subject_kind} {no.subject_id}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulators.scenario FILE [--mode live|backlog] [--prefix P]``.

    Also what ``bondwatch simulate scenario`` runs; exit status 1 on any error.
    """
    parser = argparse.ArgumentParser(
        prog="python -m simulators.scenario",
        description="Play a scenario: apply its registry through the API, then publish its readings to MQTT.",
    )
    parser.add_argument("file", nargs="?", help="a scenario file, or the name of a bundled one (temp_excursion)")
    parser.add_argument("--mode", choices=MODES, default="live", help="live: in real time; backlog: all at once")
    parser.add_argument("--prefix", default="", help="put in front of every device, vehicle and note id")
    parser.add_argument("--no-registry", action="store_true", help="do not write the registry through the API")
    parser.add_argument("--list", action="store_true", help="list the bundled scenarios")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.list:
        for path in bundled():
            s = load_scenario(path)
            print(f"{path.stem:20} {s.duration_s:>6g} s  {s.description_zh} / {s.description_en}")
        return 0
    if not args.file:
        parser.error("give a scenario FILE (or the name of a bundled one), or --list")
    from bondwatch.settings import load_settings

    try:
        scenario = load_scenario(resolve(args.file), args.prefix)
        settings = load_settings(CommonSettings)
        api: httpx.Client | None = None
        if not args.no_registry:
            from simulators.registry_client import admin_client

            api = admin_client(settings, f"simulate scenario {scenario.name}")
        print(f"{scenario.name}: {scenario.description_zh} / {scenario.description_en}")
        if args.mode == "live":
            _print_plan(scenario, _whole_ms(datetime.now(UTC)))
        try:
            summary = run(scenario, settings, api, args.mode)
        finally:
            if api is not None:
                api.close()
    except (BondWatchError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if args.mode == "backlog":
        _print_plan(scenario, summary.base)
    print(f"published {summary.total} messages in {summary.seconds:.1f} s (base {_rfc3339(summary.base)}):")
    for device, count in sorted(summary.published.items()):
        print(f"  {device:32} {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
