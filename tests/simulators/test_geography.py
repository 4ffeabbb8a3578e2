"""The site layout: every geofence is one the API accepts; routes keep to the boundary, the gate and the corridor."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from bondwatch.geofence import parse_feature
from simulators import geography as geo

TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32649", always_xy=True)  # UTM zone 49N, metres


def utm(geometry: BaseGeometry) -> BaseGeometry:
    def project(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(TO_UTM.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(geometry, project)


@cache
def fences() -> dict[str, BaseGeometry]:
    return {f["id"]: parse_feature(f, f["id"]).geometry for f in geo.geofence_features()}


def boundary() -> BaseGeometry:
    return fences()[geo.BOUNDARY_ID]


def test_every_feature_is_a_valid_geofence() -> None:
    features = geo.geofence_features()
    ids = [f["id"] for f in features]
    assert len(ids) == len(set(ids)), "ids are unique"
    kinds = set()
    for feature in features:
        assert re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", feature["id"])
        fence = parse_feature(feature, feature["id"])
        assert fence.feature == feature, "stored exactly as given"
        assert fence.name == feature["properties"]["name"]
        kinds.add(fence.kind)
        if fence.kind == "corridor":
            assert fence.width_m is not None and 60 <= fence.width_m <= 150
    assert kinds == {"bonded_boundary", "zone", "corridor", "gate"}
    assert {f["id"] for f in features if f["properties"]["kind"] == "gate"} == set(geo.GATES)


def test_boundary_has_the_service_area_as_a_hole() -> None:
    area = boundary()
    assert area.geom_type == "Polygon" and len(area.interiors) == 1
    hole_centre = shapely.Polygon(geo.SERVICE_AREA_RING).centroid
    assert not area.contains(hole_centre), "the non-bonded service area is outside the bonded zone"
    size = utm(area).area / 1e6
    assert 2.0 < size < 5.0, f"a plausible bonded zone area, got {size:.2f} km²"


def test_places_inside_destinations_outside() -> None:
    area = boundary()
    for place in geo.PLACES.values():
        assert area.contains(Point(place.point)), place.place_id
        assert area.contains(Point(place.access)), place.place_id
    for dest in geo.DESTINATIONS.values():
        assert not area.buffer(0.01).contains(Point(dest.point)), f"{dest.destination_id} is well outside"
        assert dest.name_zh and dest.name_en


def test_gates_straddle_the_fence_with_the_out_side_outside() -> None:
    area = utm(boundary())
    for gate in geo.GATES.values():
        polygon = utm(shapely.Polygon(gate.polygon))
        assert polygon.intersects(area.exterior), gate.gate_id
        centre = utm(Point(gate.centre))
        assert centre.distance(area.exterior) < 1.0, "the gate's centre is on the fence"
        dx, dy = {"north": (0, 1), "south": (0, -1), "east": (1, 0), "west": (-1, 0)}[gate.out_side]
        assert not area.contains(Point(centre.x + 100 * dx, centre.y + 100 * dy)), f"{gate.gate_id} out side"
        assert area.contains(Point(centre.x - 100 * dx, centre.y - 100 * dy)), f"{gate.gate_id} in side"


@pytest.mark.parametrize("destination", sorted(geo.DESTINATIONS))
@pytest.mark.parametrize("start", sorted(geo.PLACES))
def test_route_starts_inside_passes_its_gate_and_keeps_to_the_corridor(destination: str, start: str) -> None:
    dest = geo.DESTINATIONS[destination]
    gate = geo.GATES[dest.gate_id]
    path = geo.route(dest.gate_id, destination, start)
    area = utm(boundary())
    assert path[0] == geo.PLACES[start].point
    assert area.contains(utm(Point(path[0]))), "starts inside the boundary"
    assert path[-1] == dest.point
    i = path.index(gate.centre)
    inside, outside = path[: i + 1], path[i:]
    assert area.buffer(1.0).contains(utm(LineString(inside))), "inside the boundary up to the gate"
    assert utm(LineString(path)).intersects(utm(shapely.Polygon(gate.polygon))), "passes through the gate"
    corridor = utm(fences()[dest.corridor_id]).buffer(dest.width_m / 2)
    route_out = utm(LineString(outside))
    assert corridor.contains(route_out), "from the gate on, within the corridor's width"
    assert not area.contains(utm(Point(outside[1]))), "leaves through the gate's out side"
    length_km = route_out.length / 1000
    assert 1.0 < length_km < 40.0


def test_route_refuses_the_wrong_gate_or_unknown_places() -> None:
    with pytest.raises(ValueError, match="served through 'gate-n1'"):
        geo.route("gate-s1", "dongsheng-dc")
    with pytest.raises(ValueError, match="unknown destination"):
        geo.route("gate-n1", "beijing")
    with pytest.raises(ValueError, match="unknown start"):
        geo.route("gate-n1", "dongsheng-dc", start="nowhere")


def test_corridor_widths_and_lengths_are_plausible() -> None:
    for dest in geo.DESTINATIONS.values():
        assert dest.road[0] == geo.GATES[dest.gate_id].centre, "a corridor starts at its gate"
        assert 4 <= len(dest.road) <= 8
        assert 1_000 < dest.length_m < 40_000
        assert abs(dest.grade) < 0.01
    assert geo.local_xy(geo.from_local_xy(1234.5, -678.9)) == pytest.approx((1234.5, -678.9))
    airport_to_zone = geo.distance_m(geo.DESTINATIONS["airport-cargo"].point, geo.GATES["gate-s1"].centre)
    utm_distance = utm(Point(geo.DESTINATIONS["airport-cargo"].point)).distance(utm(Point(geo.GATES["gate-s1"].centre)))
    assert airport_to_zone == pytest.approx(utm_distance, rel=0.002)


def test_climate_cold_winters_warm_summers() -> None:
    january = [geo.ambient_c(datetime(2026, 1, 15, h, tzinfo=UTC)) for h in range(24)]
    july = [geo.ambient_c(datetime(2026, 7, 15, h, tzinfo=UTC)) for h in range(24)]
    assert -20 < min(january) < max(january) < 0
    assert 10 < min(july) < max(july) < 32
    assert max(july) - min(july) == pytest.approx(2 * geo.DIURNAL_HALF_RANGE_C, abs=0.1)
    warmest = max(range(24), key=lambda h: july[h])
    assert warmest == 7, "15:00 in Ordos is 07:00 UTC"
    before_new_year = geo.ambient_c(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC))  # 23:59:59 local
    assert geo.ambient_c(datetime(2026, 12, 31, 16, tzinfo=UTC)) == pytest.approx(before_new_year, abs=0.01)
