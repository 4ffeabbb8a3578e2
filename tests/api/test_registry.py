"""Registry round trips, the refusals that name their reason, and nothing half-written after a refusal."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.api import bodies
from tests.api.conftest import Api, uid

PLUS_8 = timedelta(hours=8)


def assert_local_time(value: str) -> datetime:
    """A timestamp as the API must send it: RFC 3339 with the zone's +08:00 offset."""
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == PLUS_8, value
    assert value.endswith("+08:00"), value
    return parsed


def assert_refused(resp: Any, status: int, *words: str) -> str:
    assert resp.status_code == status, resp.text
    detail: str = resp.json()["detail"]
    for word in words:
        assert word in detail, f"{word!r} not in {detail!r}"
    return detail


# ---------------------------------------------------------------- round trips


def test_profile_round_trip(admin: Api) -> None:
    name = uid("prof")
    body = bodies.profile(min_c=-1.5, max_c=4.0)
    stored = admin.ok("PUT", f"/profiles/{name}", body)
    got = admin.ok("GET", f"/profiles/{name}")
    assert got == stored
    assert {k: got[k] for k in body} == body
    assert got["name"] == name
    assert_local_time(got["updated_at"])
    assert name in [p["name"] for p in admin.ok("GET", "/profiles")]


def test_profile_put_replaces(admin: Api) -> None:
    name = uid("prof")
    admin.ok("PUT", f"/profiles/{name}", bodies.profile())
    first = admin.ok("GET", f"/profiles/{name}")
    admin.ok("PUT", f"/profiles/{name}", {**bodies.profile(min_c=-25.0, max_c=-18.0), "description": None})
    got = admin.ok("GET", f"/profiles/{name}")
    assert (got["min_c"], got["max_c"], got["description"]) == (-25.0, -18.0, None)
    assert assert_local_time(got["updated_at"]) >= assert_local_time(first["updated_at"])


def test_device_round_trip(admin: Api) -> None:
    device_id, profile_name = bodies.register_sensor(admin)
    got = admin.ok("GET", f"/devices/{device_id}")
    assert got["device_id"] == device_id
    assert {k: got[k] for k in ("kind", "name", "profile", "vehicle_id", "gate_id")} == {
        **bodies.temp_device(profile_name),
        "vehicle_id": None,
        "gate_id": None,
    }
    assert_local_time(got["updated_at"])
    assert device_id in [d["device_id"] for d in admin.ok("GET", "/devices")]

    reader = uid("rfid")
    body = {"kind": "rfid", "name": "Gate 2 reader", "gate_id": "gate-2"}
    admin.ok("PUT", f"/devices/{reader}", body)
    got = admin.ok("GET", f"/devices/{reader}")
    assert {k: got[k] for k in ("kind", "name", "gate_id", "profile")} == {**body, "profile": None}


def test_vehicle_round_trip(admin: Api) -> None:
    corridor_id = bodies.register_geofence(admin, bodies.corridor())
    vehicle_id = uid("veh")
    tag = bodies.epc().lower()
    body = bodies.vehicle(corridor_id=corridor_id, tag_epc=tag)
    admin.ok("PUT", f"/vehicles/{vehicle_id}", body)
    got = admin.ok("GET", f"/vehicles/{vehicle_id}")
    assert got["vehicle_id"] == vehicle_id
    assert {k: got[k] for k in body} == {**body, "tag_epc": tag.upper()}
    assert_local_time(got["updated_at"])


def test_vehicle_defaults(admin: Api) -> None:
    vehicle_id = uid("veh")
    admin.ok("PUT", f"/vehicles/{vehicle_id}", {"name": "Van", "plate": "蒙K·00001", "device_id": uid("gps")})
    got = admin.ok("GET", f"/vehicles/{vehicle_id}")
    assert (got["bonded_transport"], got["gps_lost_after_s"], got["low_soc_pct"]) == (False, 120, 20)
    assert (got["corridor_id"], got["tag_epc"]) == (None, None)


def test_tag_round_trip(admin: Api) -> None:
    vehicle_id = bodies.register_vehicle(admin)
    epc = bodies.epc()
    body = bodies.tag(vehicle_id)
    admin.ok("PUT", f"/tags/{epc.lower()}", body)
    got = admin.ok("GET", f"/tags/{epc}")
    assert got == admin.ok("GET", f"/tags/{epc.lower()}")
    assert got["epc"] == epc
    assert {k: got[k] for k in body} == body
    assert_local_time(got["updated_at"])


def test_release_note_round_trip(admin: Api, dispatcher: Api) -> None:
    vehicle_id = bodies.register_vehicle(admin)
    body = {**bodies.release_note(vehicle_id), "valid_from": "2026-11-25T00:00:00Z"}
    body["epcs"] = [e.lower() for e in body["epcs"]]
    created = dispatcher.request("POST", "/release-notes", json=body)
    assert created.status_code == 201, created.text
    got = admin.ok("GET", f"/release-notes/{body['id']}")
    assert got == created.json()
    assert (got["id"], got["vehicle_id"]) == (body["id"], vehicle_id)
    assert got["epcs"] == [e.upper() for e in body["epcs"]]
    assert got["valid_from"] == "2026-11-25T08:00:00+08:00"
    assert got["valid_until"] == "2026-11-25T20:00:00+08:00"
    assert_local_time(got["created_at"])
    assert got["created_by"].startswith("test-dispatcher")
    listed = admin.ok("GET", f"/release-notes?vehicle_id={vehicle_id}")
    assert [n["id"] for n in listed] == [body["id"]]
    valid = admin.ok(
        "GET", "/release-notes?" + urlencode({"vehicle_id": vehicle_id, "valid_at": "2026-11-25T12:00:00+08:00"})
    )
    assert [n["id"] for n in valid] == [body["id"]]
    expired = admin.ok(
        "GET", "/release-notes?" + urlencode({"vehicle_id": vehicle_id, "valid_at": "2026-11-26T12:00:00+08:00"})
    )
    assert expired == []


def test_unknown_keys_are_404(admin: Api) -> None:
    for path in (
        f"/profiles/{uid('p')}",
        f"/devices/{uid('d')}",
        f"/vehicles/{uid('v')}",
        f"/tags/{bodies.epc()}",
        f"/release-notes/{uid('rn')}",
        f"/geofences/{uid('gf')}",
        f"/vehicles/{uid('v')}/track",
    ):
        assert_refused(admin.get(path), 404, "no ")


# ---------------------------------------------------------------- geofences


def test_geofence_lifecycle(admin: Api) -> None:
    zone = {**bodies.polygon(hole=True), "id": uid("gf")}
    created = admin.post("/geofences", zone)
    assert created.status_code == 201, created.text
    assert created.json() == {**zone, "id": zone["id"]}
    got = admin.ok("GET", f"/geofences/{zone['id']}")
    assert got["type"] == "Feature" and got["id"] == zone["id"]
    assert got["geometry"] == zone["geometry"]
    assert len(got["geometry"]["coordinates"]) == 2
    assert got["properties"] == zone["properties"]

    parcels = bodies.multipolygon()
    parcels["properties"]["id"] = uid("gf")
    created = admin.post("/geofences", parcels)
    assert created.status_code == 201, created.text
    parcels_id = parcels["properties"]["id"]
    assert created.json()["id"] == parcels_id
    assert admin.ok("GET", f"/geofences/{parcels_id}")["geometry"]["type"] == "MultiPolygon"

    route = bodies.corridor(width_m=75)
    created = admin.post("/geofences", route)
    assert created.status_code == 201, created.text
    route_id = created.json()["id"]
    got = admin.ok("GET", f"/geofences/{route_id}")
    assert got["geometry"]["type"] == "LineString"
    assert got["properties"]["width_m"] == 75

    collection = admin.ok("GET", "/geofences")
    assert collection["type"] == "FeatureCollection"
    ids = {f["id"] for f in collection["features"]}
    assert {zone["id"], parcels_id, route_id} <= ids
    assert all(f["type"] == "Feature" for f in collection["features"])

    corridors = admin.ok("GET", "/geofences?kind=corridor")["features"]
    assert route_id in {f["id"] for f in corridors}
    assert {zone["id"], parcels_id}.isdisjoint(f["id"] for f in corridors)
    assert {f["properties"]["kind"] for f in corridors} == {"corridor"}
    boundaries = admin.ok("GET", "/geofences?kind=bonded_boundary")["features"]
    assert {zone["id"], parcels_id} <= {f["id"] for f in boundaries}
    gates = admin.ok("GET", "/geofences?kind=gate")["features"]
    assert all(f["properties"]["kind"] == "gate" for f in gates)

    replacement = bodies.polygon(kind="zone", name="Cold store yard")
    admin.ok("PUT", f"/geofences/{zone['id']}", replacement)
    got = admin.ok("GET", f"/geofences/{zone['id']}")
    assert got["properties"] == {"name": "Cold store yard", "kind": "zone"}
    assert len(got["geometry"]["coordinates"]) == 1
    assert zone["id"] not in {f["id"] for f in admin.ok("GET", "/geofences?kind=bonded_boundary")["features"]}

    deleted = admin.delete(f"/geofences/{zone['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_refused(admin.get(f"/geofences/{zone['id']}"), 404, zone["id"])
    assert_refused(admin.delete(f"/geofences/{zone['id']}"), 404, zone["id"])


def test_geofence_post_existing_id_is_409(admin: Api) -> None:
    fence_id = bodies.register_geofence(admin)
    resp = admin.post("/geofences", {**bodies.polygon(name="Other"), "id": fence_id})
    assert_refused(resp, 409, fence_id)
    assert admin.ok("GET", f"/geofences/{fence_id}")["properties"]["name"] == "Bonded zone"


def _feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {"name": "Fence", "kind": "zone", **props}}


BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[110.0, 39.6], [110.1, 39.7], [110.1, 39.6], [110.0, 39.7], [110.0, 39.6]]],
}
LINE = {"type": "LineString", "coordinates": [[110.0, 39.6], [110.1, 39.7]]}
NORTH_OF_POLE = {"type": "Polygon", "coordinates": [[[110.0, 39.6], [110.1, 39.6], [110.1, 95.0], [110.0, 39.6]]]}

INVALID_FENCES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "self-intersecting polygon": (_feature(BOWTIE), ("not valid", "Self-intersection")),
    "corridor without width_m": (_feature(LINE, kind="corridor"), ("corridor", "width_m")),
    "corridor with width 0": (_feature(LINE, kind="corridor", width_m=0), ("width_m",)),
    "LineString as bonded_boundary": (_feature(LINE, kind="bonded_boundary"), ("bonded_boundary", "LineString")),
    "unknown kind": (_feature(bodies.polygon()["geometry"], kind="parking"), ("kind", "parking")),
    "latitude out of range": (_feature(NORTH_OF_POLE), ("latitude", "90")),
    "missing name": ({"type": "Feature", "geometry": BOWTIE, "properties": {"kind": "zone"}}, ("name",)),
    "width_m on a zone": (_feature(bodies.polygon()["geometry"], width_m=30), ("width_m", "corridor")),
    "not a Feature": (bodies.polygon()["geometry"], ("Feature",)),
    "malformed coordinates": (
        _feature({"type": "Polygon", "coordinates": [[[110.0, 39.6], [110.1, 39.7]]]}),
        ("malformed",),
    ),
}


@pytest.mark.parametrize("case", list(INVALID_FENCES))
def test_invalid_geofence_is_422_and_stores_nothing(case: str, admin: Api) -> None:
    feature, words = INVALID_FENCES[case]
    new_id = uid("gf")
    assert_refused(admin.put(f"/geofences/{new_id}", feature), 422, *words)
    assert_refused(admin.get(f"/geofences/{new_id}"), 404)

    posted_id = uid("gf")
    assert_refused(admin.post("/geofences", {**feature, "id": posted_id}), 422, *words)
    assert_refused(admin.get(f"/geofences/{posted_id}"), 404)

    existing = bodies.register_geofence(admin)
    before = admin.ok("GET", f"/geofences/{existing}")
    assert_refused(admin.put(f"/geofences/{existing}", feature), 422, *words)
    assert admin.ok("GET", f"/geofences/{existing}") == before


def test_geofence_id_must_be_safe(admin: Api) -> None:
    resp = admin.post("/geofences", {**bodies.polygon(), "id": "no spaces please"})
    assert_refused(resp, 422, "geofence id")


def test_geofence_used_as_corridor_cannot_be_deleted(admin: Api) -> None:
    corridor_id = bodies.register_geofence(admin, bodies.corridor())
    vehicle_id = bodies.register_vehicle(admin, corridor_id=corridor_id)
    assert_refused(admin.delete(f"/geofences/{corridor_id}"), 409, corridor_id, "corridor")
    assert admin.ok("GET", f"/geofences/{corridor_id}")["properties"]["kind"] == "corridor"
    assert admin.ok("GET", f"/vehicles/{vehicle_id}")["corridor_id"] == corridor_id

    admin.ok("PUT", f"/vehicles/{vehicle_id}", {**bodies.vehicle(), "corridor_id": None})
    assert admin.delete(f"/geofences/{corridor_id}").status_code == 204


# ---------------------------------------------------------------- profiles and devices


@pytest.mark.parametrize(("min_c", "max_c"), [(4.0, 4.0), (8.0, 2.0)])
def test_profile_min_not_below_max_is_422(admin: Api, min_c: float, max_c: float) -> None:
    name = uid("prof")
    assert_refused(admin.put(f"/profiles/{name}", bodies.profile(min_c, max_c)), 422, "min_c", "max_c")
    assert_refused(admin.get(f"/profiles/{name}"), 404)

    admin.ok("PUT", f"/profiles/{name}", bodies.profile())
    before = admin.ok("GET", f"/profiles/{name}")
    assert_refused(admin.put(f"/profiles/{name}", bodies.profile(min_c, max_c)), 422, "min_c")
    assert admin.ok("GET", f"/profiles/{name}") == before


def test_profile_missing_and_extra_fields_are_422(admin: Api) -> None:
    name = uid("prof")
    body = bodies.profile()
    del body["offline_after_s"]
    assert_refused(admin.put(f"/profiles/{name}", body), 422, "offline_after_s")
    assert_refused(admin.put(f"/profiles/{name}", {**bodies.profile(), "colour": "blue"}), 422, "colour")
    assert_refused(admin.get(f"/profiles/{name}"), 404)


def test_device_with_unknown_profile_is_422(admin: Api) -> None:
    device_id, _ = bodies.register_sensor(admin)
    before = admin.ok("GET", f"/devices/{device_id}")
    ghost = uid("no-such-profile")
    assert_refused(admin.put(f"/devices/{device_id}", bodies.temp_device(ghost)), 422, ghost)
    assert admin.ok("GET", f"/devices/{device_id}") == before

    new_id = uid("temp")
    assert_refused(admin.put(f"/devices/{new_id}", bodies.temp_device(ghost)), 422, ghost)
    assert_refused(admin.get(f"/devices/{new_id}"), 404)


def test_device_profile_only_for_temp(admin: Api) -> None:
    _, profile_name = bodies.register_sensor(admin)
    new_id = uid("gps")
    assert_refused(
        admin.put(f"/devices/{new_id}", {"kind": "gps", "name": "t", "profile": profile_name}), 422, "profile", "temp"
    )
    assert_refused(admin.put(f"/devices/{new_id}", {"kind": "lidar", "name": "t"}), 422, "kind")
    assert_refused(admin.get(f"/devices/{new_id}"), 404)


# ---------------------------------------------------------------- vehicles and tags


def test_vehicle_with_unknown_corridor_is_422(admin: Api) -> None:
    ghost = uid("no-such-fence")
    vehicle_id = uid("veh")
    assert_refused(admin.put(f"/vehicles/{vehicle_id}", bodies.vehicle(corridor_id=ghost)), 422, ghost)
    assert_refused(admin.get(f"/vehicles/{vehicle_id}"), 404)

    existing = bodies.register_vehicle(admin)
    before = admin.ok("GET", f"/vehicles/{existing}")
    assert_refused(admin.put(f"/vehicles/{existing}", bodies.vehicle(corridor_id=ghost)), 422, ghost)
    assert admin.ok("GET", f"/vehicles/{existing}") == before


def test_vehicle_terminal_used_by_another_vehicle_is_409(admin: Api) -> None:
    terminal = uid("gps")
    first = bodies.register_vehicle(admin, device_id=terminal)
    second = uid("veh")
    assert_refused(admin.put(f"/vehicles/{second}", bodies.vehicle(device_id=terminal)), 409, terminal)
    assert_refused(admin.get(f"/vehicles/{second}"), 404)
    assert admin.ok("GET", f"/vehicles/{first}")["device_id"] == terminal


def test_vehicle_bad_fields_are_422(admin: Api) -> None:
    vehicle_id = uid("veh")
    assert_refused(admin.put(f"/vehicles/{vehicle_id}", {**bodies.vehicle(), "tag_epc": "XYZ"}), 422, "tag_epc")
    assert_refused(admin.put(f"/vehicles/{vehicle_id}", {**bodies.vehicle(), "low_soc_pct": 120}), 422, "low_soc_pct")
    body = bodies.vehicle()
    del body["plate"]
    assert_refused(admin.put(f"/vehicles/{vehicle_id}", body), 422, "plate")
    assert_refused(admin.get(f"/vehicles/{vehicle_id}"), 404)


def test_tag_with_unknown_vehicle_is_422(admin: Api) -> None:
    ghost = uid("no-such-vehicle")
    epc = bodies.epc()
    assert_refused(admin.put(f"/tags/{epc}", bodies.tag(ghost)), 422, ghost)
    assert_refused(admin.get(f"/tags/{epc}"), 404)


def test_tag_epc_must_be_hex(admin: Api) -> None:
    assert_refused(admin.put("/tags/NOT-HEX-AT-ALL-NOT-HEX-AT", bodies.tag()), 422, "epc")
    assert_refused(
        admin.put(f"/tags/{bodies.epc()}", {**bodies.tag(), "customs_status": "free"}), 422, "customs_status"
    )


# ---------------------------------------------------------------- release notes


def test_release_note_for_unregistered_vehicle_is_422(dispatcher: Api, admin: Api) -> None:
    ghost = uid("no-such-vehicle")
    note = bodies.release_note(ghost)
    assert_refused(dispatcher.post("/release-notes", note), 422, ghost)
    assert_refused(admin.get(f"/release-notes/{note['id']}"), 404)


def test_release_note_duplicate_id_is_409(dispatcher: Api, admin: Api) -> None:
    note = bodies.release_note(bodies.register_vehicle(admin))
    dispatcher.ok("POST", "/release-notes", note)
    before = admin.ok("GET", f"/release-notes/{note['id']}")
    other = bodies.release_note(bodies.register_vehicle(admin), note_id=note["id"])
    assert_refused(dispatcher.post("/release-notes", other), 409, note["id"])
    assert admin.ok("GET", f"/release-notes/{note['id']}") == before


INVALID_NOTES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "valid_from after valid_until": (
        {"valid_from": "2026-11-25T20:00:00+08:00", "valid_until": "2026-11-25T08:00:00+08:00"},
        ("valid_from", "valid_until"),
    ),
    "valid_from equal to valid_until": (
        {"valid_from": "2026-11-25T08:00:00+08:00", "valid_until": "2026-11-25T00:00:00Z"},
        ("valid_from",),
    ),
    "epc not hex": ({"epcs": ["ZZZZ" * 6]}, ("epcs",)),
    "epc too short": ({"epcs": ["ABCD"]}, ("epcs",)),
    "epc listed twice": ({"epcs": ["ABCD" * 6, "abcd" * 6]}, ("more than once",)),
    "no epcs": ({"epcs": []}, ("epcs",)),
    "naive valid_from": ({"valid_from": "2026-11-25T08:00:00"}, ("valid_from", "timezone")),
    "naive valid_until": ({"valid_until": "2026-11-25T20:00:00"}, ("valid_until", "timezone")),
    "unknown field": ({"gate_id": "gate-1"}, ("gate_id",)),
}


@pytest.mark.parametrize("case", list(INVALID_NOTES))
def test_invalid_release_note_is_422(case: str, dispatcher: Api, admin: Api) -> None:
    change, words = INVALID_NOTES[case]
    note = {**bodies.release_note(bodies.register_vehicle(admin)), **change}
    assert_refused(dispatcher.post("/release-notes", note), 422, *words)
    assert_refused(admin.get(f"/release-notes/{note['id']}"), 404)


# ---------------------------------------------------------------- found by tests/fuzz (schemathesis)


def test_value_no_real_column_holds_is_422_not_500(admin: Api) -> None:
    """1e-310 is within -80..85 but underflows the `real` column: the database's refusal is the request's fault."""
    name = uid("prof")
    assert_refused(admin.put(f"/profiles/{name}", bodies.profile(min_c=1e-310, max_c=4.0)), 422, "cannot be stored")
    assert admin.get(f"/profiles/{name}").status_code == 404  # nothing half-written


def test_nul_character_in_a_text_is_422_not_500(admin: Api) -> None:
    device = uid("dev")
    assert_refused(admin.put(f"/devices/{device}", {"kind": "gps", "name": "truck\u0000"}), 422, "cannot be stored")
    assert admin.get(f"/devices/{device}").status_code == 404


def test_refusals_are_documented_with_the_bodies_they_have(admin: Api) -> None:
    spec = admin.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["HTTPValidationError"]["properties"]["detail"]["type"] == "string"  # not FastAPI's list
    put_device = spec["paths"]["/api/v1/devices/{device_id}"]["put"]["responses"]
    assert {"400", "401", "403", "409", "422"} <= set(put_device)
    assert put_device["403"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
    bad = admin.put(f"/devices/{uid('dev')}", {"kind": "plane", "name": "x"})
    assert bad.status_code == 422 and isinstance(bad.json()["detail"], str) and bad.json()["errors"]
