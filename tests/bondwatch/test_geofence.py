"""Geofences as GeoJSON Features: what the registry accepts, and the reason for everything it refuses."""

from __future__ import annotations

from typing import Any

import pytest
import shapely

from bondwatch.geofence import Geofence, GeofenceInvalid, parse_feature

# Around the Ordos comprehensive bonded zone (lon, lat).
OUTER = [[109.90, 39.60], [109.95, 39.60], [109.95, 39.64], [109.90, 39.64], [109.90, 39.60]]
HOLE = [[109.92, 39.61], [109.93, 39.61], [109.93, 39.62], [109.92, 39.62], [109.92, 39.61]]
OTHER = [[110.00, 39.70], [110.01, 39.70], [110.01, 39.71], [110.00, 39.71], [110.00, 39.70]]
ROUTE = [[109.95, 39.62], [109.99, 39.65], [110.05, 39.66]]
BOW_TIE = [[109.90, 39.60], [109.95, 39.64], [109.95, 39.60], [109.90, 39.64], [109.90, 39.60]]


def feature(geometry: Any, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {"name": "Bonded zone", **properties}}


def polygon(*rings: list[list[Any]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


def refused(body: Any) -> str:
    with pytest.raises(GeofenceInvalid) as info:
        parse_feature(body, "gf-1")
    return str(info.value)


def test_polygon_with_hole() -> None:
    body = feature(polygon(OUTER, HOLE), kind="bonded_boundary")
    fence = parse_feature(body, "gf-1")
    assert isinstance(fence, Geofence)
    assert (fence.id, fence.name, fence.kind, fence.width_m) == ("gf-1", "Bonded zone", "bonded_boundary", None)
    assert fence.geometry.geom_type == "Polygon"
    assert len(fence.geometry.interiors) == 1
    assert fence.geometry.contains(shapely.Point(109.91, 39.63))
    assert not fence.geometry.contains(shapely.Point(109.925, 39.615)), "a point in the hole is outside"
    assert fence.feature == {
        "type": "Feature",
        "id": "gf-1",
        "geometry": body["geometry"],
        "properties": body["properties"],
    }


def test_multipolygon() -> None:
    body = feature({"type": "MultiPolygon", "coordinates": [[OUTER, HOLE], [OTHER]]}, kind="zone")
    fence = parse_feature(body, "gf-2")
    assert fence.geometry.geom_type == "MultiPolygon"
    assert len(fence.geometry.geoms) == 2
    assert fence.geometry.contains(shapely.Point(110.005, 39.705))


def test_name_is_trimmed() -> None:
    body = feature(polygon(OUTER), kind="zone")
    body["properties"]["name"] = "  Cold store A  "
    assert parse_feature(body, "gf-3").name == "Cold store A"


@pytest.mark.parametrize("width", [25, 12.5, 50_000])
def test_corridor_with_width(width: float) -> None:
    fence = parse_feature(feature({"type": "LineString", "coordinates": ROUTE}, kind="corridor", width_m=width), "c")
    assert fence.kind == "corridor"
    assert fence.geometry.geom_type == "LineString"
    assert fence.width_m == float(width)
    assert isinstance(fence.width_m, float)


def test_multilinestring_corridor() -> None:
    geometry = {"type": "MultiLineString", "coordinates": [ROUTE, [[110.05, 39.66], [110.10, 39.70]]]}
    fence = parse_feature(feature(geometry, kind="corridor", width_m=30), "c2")
    assert fence.geometry.geom_type == "MultiLineString"


@pytest.mark.parametrize(
    "geometry",
    [polygon(OUTER), {"type": "Point", "coordinates": [109.95, 39.62]}],
    ids=["polygon", "point"],
)
def test_gate_polygon_or_point(geometry: dict[str, Any]) -> None:
    assert parse_feature(feature(geometry, kind="gate"), "g1").kind == "gate"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"type": "Polygon", "coordinates": [OUTER]}, "must be a GeoJSON Feature"),
        ({"type": "FeatureCollection", "features": []}, "must be a GeoJSON Feature"),
        ({"geometry": polygon(OUTER), "properties": {"name": "x", "kind": "zone"}}, "must be a GeoJSON Feature"),
        ({"type": "Feature", "geometry": polygon(OUTER)}, "properties must be an object"),
        ({"type": "Feature", "geometry": polygon(OUTER), "properties": ["zone"]}, "properties must be an object"),
    ],
    ids=["bare-geometry", "feature-collection", "no-type", "no-properties", "properties-list"],
)
def test_not_a_feature(body: dict[str, Any], reason: str) -> None:
    assert reason in refused(body)


@pytest.mark.parametrize("kind", ["warehouse", "Zone", "", None, 3])
def test_bad_kind(kind: object) -> None:
    reason = refused(feature(polygon(OUTER), kind=kind))
    assert "properties.kind must be one of bonded_boundary, zone, corridor, gate" in reason
    assert repr(kind) in reason


@pytest.mark.parametrize("name", ["", "   ", None, 7])
def test_name_required(name: object) -> None:
    body = feature(polygon(OUTER), kind="zone")
    body["properties"]["name"] = name
    assert refused(body) == "properties.name is required"


def test_geometry_required() -> None:
    assert refused(feature(None, kind="zone")) == "geometry is required"


@pytest.mark.parametrize(
    ("kind", "geometry", "reason"),
    [
        ("bonded_boundary", {"type": "LineString", "coordinates": ROUTE}, "a bonded_boundary must be a Polygon or "),
        ("zone", {"type": "Point", "coordinates": [109.9, 39.6]}, "a zone must be a Polygon or MultiPolygon, got"),
        ("corridor", polygon(OUTER), "a corridor must be a LineString or MultiLineString, got 'Polygon'"),
        ("gate", {"type": "LineString", "coordinates": ROUTE}, "a gate must be a Polygon or MultiPolygon or Point"),
        ("zone", {"type": "GeometryCollection", "geometries": []}, "got 'GeometryCollection'"),
    ],
    ids=["boundary-line", "zone-point", "corridor-polygon", "gate-line", "zone-collection"],
)
def test_wrong_geometry_type_for_kind(kind: str, geometry: dict[str, Any], reason: str) -> None:
    extra = {"width_m": 10} if kind == "corridor" else {}
    assert reason in refused(feature(geometry, kind=kind, **extra))


def test_self_intersecting_bow_tie() -> None:
    reason = refused(feature(polygon(BOW_TIE), kind="bonded_boundary"))
    assert reason.startswith("geometry is not valid")
    assert "Self-intersection" in reason


def test_hole_outside_the_shell_not_valid() -> None:
    assert refused(feature(polygon(OUTER, OTHER), kind="zone")).startswith("geometry is not valid")


@pytest.mark.parametrize(
    "geometry",
    [
        polygon([[0, 0], [181, 0], [181, 1], [0, 0]]),
        polygon([[0, 0], [1, 0], [1, 90.5], [0, 0]]),
        polygon([[-180.01, 0], [0, 0], [0, 1], [-180.01, 0]]),
        {"type": "Point", "coordinates": [39.6, 109.9]},  # lat, lon swapped
        {"type": "Point", "coordinates": [0, -91]},
    ],
    ids=["lon-181", "lat-90.5", "lon-minus-180.01", "swapped", "lat-minus-91"],
)
def test_out_of_range_coordinates(geometry: dict[str, Any]) -> None:
    kind = "gate" if geometry["type"] == "Point" else "zone"
    assert refused(feature(geometry, kind=kind)) == "coordinates must be WGS 84 [longitude, latitude] within ±180, ±90"


def test_coordinates_on_the_edges_are_in_range() -> None:
    fence = parse_feature(feature(polygon([[-180, -90], [180, -90], [180, 90], [-180, -90]]), kind="zone"), "w")
    assert fence.geometry.bounds == (-180.0, -90.0, 180.0, 90.0)


@pytest.mark.parametrize(
    "geometry",
    [
        polygon([["a", "b"], [1, 0], [1, 1], ["a", "b"]]),
        {"type": "Polygon", "coordinates": [[0, 0], [1, 0], [1, 1], [0, 0]]},
        {"type": "Polygon"},
        {"type": "Point", "coordinates": [1]},
    ],
    ids=["strings", "ring-depth", "no-coordinates", "one-number-point"],
)
def test_malformed_coordinates(geometry: dict[str, Any]) -> None:
    kind = "gate" if geometry["type"] == "Point" else "zone"
    assert refused(feature(geometry, kind=kind)).startswith("geometry coordinates are malformed")


def test_empty_geometry() -> None:
    assert refused(feature({"type": "Polygon", "coordinates": []}, kind="zone")) == "geometry is empty"


CORRIDOR_NEEDS_WIDTH = "a corridor needs properties.width_m, a number of metres in (0, 50000]"


@pytest.mark.parametrize(
    "width",
    [None, 0, 0.0, -5, 50_000.5, "25", True, [25]],
    ids=["missing", "zero", "zero-float", "negative", "over-50km", "string", "bool", "list"],
)
def test_corridor_width_required_and_positive(width: object) -> None:
    props = {} if width is None else {"width_m": width}
    assert refused(feature({"type": "LineString", "coordinates": ROUTE}, kind="corridor", **props)) == (
        CORRIDOR_NEEDS_WIDTH
    )


@pytest.mark.parametrize("kind", ["bonded_boundary", "zone", "gate"])
@pytest.mark.parametrize("width", [25, 0])
def test_width_on_a_non_corridor(kind: str, width: float) -> None:
    assert refused(feature(polygon(OUTER), kind=kind, width_m=width)) == "width_m applies to corridors only"


def test_width_null_on_a_non_corridor_is_no_width() -> None:
    assert parse_feature(feature(polygon(OUTER), kind="zone", width_m=None), "z").width_m is None


@pytest.mark.parametrize(
    "geometry",
    [{"type": "LineString", "coordinates": [[109.9, 39.6]]}, {"type": "MultiLineString", "coordinates": [[[1, 1]]]}],
    ids=["linestring", "multilinestring"],
)
def test_one_point_corridor_refused(geometry: dict[str, Any]) -> None:
    assert refused(feature(geometry, kind="corridor", width_m=25)).startswith("geometry")
