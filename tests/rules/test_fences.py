"""Geofences in metres: the CRS chosen for the site, corridor widths, the boundary's hole, vectorised checks."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
from pyproj import Geod
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from bondwatch.geofence import parse_feature
from rules.fences import Bools, FenceSet, Floats
from simulators.geography import SERVICE_AREA_RING, geofence_features
from tests.rules.test_engine import (
    EAST_ACCESS,
    EAST_OF_HOLE,
    FAR,
    GATE_ROAD,
    IN_CORRIDOR,
    INSIDE,
    INSIDE_SOUTH,
    LOGISTICS_CORRIDOR,
    OFF_CORRIDOR,
    OFF_CORRIDOR_2,
    OTHER_CORRIDOR,
    OUTSIDE,
    OUTSIDE_2,
    SE_OF_HOLE,
    SOUTH_ACCESS,
    SW_OF_HOLE,
    WEST_OF_HOLE,
    LonLat,
    site_fences,
)

WGS84 = Geod(ellps="WGS84")
# A straight corridor of our own, 30 m wide, running east from the zone's north-east (lon, lat).
ROAD = [(109.9000, 39.5400), (109.9200, 39.5400)]


def corridor_feature(width_m: float = 30.0) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [list(p) for p in ROAD]},
        "properties": {"name": "test road", "kind": "corridor", "width_m": width_m},
    }


def where(fences: FenceSet, p: LonLat) -> tuple[bool, bool]:
    """(in the bonded boundary, in the allowed area) of one point."""
    x, y = fences.project(np.array([p[0]]), np.array([p[1]]))
    return bool(fences.in_boundary(x, y)[0]), bool(fences.in_allowed(x, y)[0])


def north_of(p: LonLat, metres: float) -> LonLat:
    lon, lat, _ = WGS84.fwd(p[0], p[1], 0.0, metres)
    return float(lon), float(lat)


def test_the_ordos_site_is_measured_in_utm_49n() -> None:
    assert site_fences().crs.to_epsg() == 32649


def test_a_crs_can_be_given_and_an_empty_set_defaults_to_49n() -> None:
    fences = [parse_feature(f, f["id"]) for f in geofence_features()]
    assert FenceSet(fences, "EPSG:32648").crs.to_epsg() == 32648
    assert FenceSet.empty().crs.to_epsg() == 32649
    assert FenceSet.empty().allowed is None


def test_a_corridor_is_its_width_on_the_ground() -> None:
    fences = FenceSet([parse_feature(corridor_feature(30.0), "road")])
    assert fences.crs.to_epsg() == 32649
    mid = ((ROAD[0][0] + ROAD[1][0]) / 2, ROAD[0][1])
    points = [mid, north_of(mid, 10), north_of(mid, -10), north_of(mid, 14), north_of(mid, 16), north_of(mid, 20)]
    x, y = fences.project(np.array([p[0] for p in points]), np.array([p[1] for p in points]))
    assert fences.in_corridor("road", x, y).tolist() == [True, True, True, True, False, False]
    assert fences.in_allowed(x, y).tolist() == [True, True, True, True, False, False]
    assert fences.in_corridor("no-such-corridor", x, y).tolist() == [False] * 6
    assert fences.distance_outside_m(float(x[5]), float(y[5])) == pytest.approx(5.0, abs=0.1)


def test_the_service_area_hole_is_outside_the_boundary() -> None:
    fences = site_fences()
    (w, s), (e, n) = SERVICE_AREA_RING[0], SERVICE_AREA_RING[2]
    in_hole = [((w + e) / 2, (s + n) / 2), (w + 0.0002, s + 0.0002), (e - 0.0002, n - 0.0002)]
    around = [(w - 0.0005, (s + n) / 2), (e + 0.0005, (s + n) / 2), ((w + e) / 2, s - 0.0005)]
    assert [where(fences, p) for p in in_hole] == [(False, False)] * 3
    assert [where(fences, p) for p in around] == [(True, True)] * 3
    x, y = fences.project(np.array([(w + e) / 2]), np.array([(s + n) / 2]))
    assert fences.distance_outside_m(float(x[0]), float(y[0])) == pytest.approx(193, abs=3)  # half the hole's width


@pytest.mark.parametrize(
    ("name", "point", "expected"),
    [
        ("INSIDE", INSIDE, (True, True)),
        ("INSIDE_SOUTH", INSIDE_SOUTH, (True, True)),
        ("EAST_ACCESS", EAST_ACCESS, (True, True)),
        ("SOUTH_ACCESS", SOUTH_ACCESS, (True, True)),
        ("WEST_OF_HOLE", WEST_OF_HOLE, (True, True)),
        ("EAST_OF_HOLE", EAST_OF_HOLE, (True, True)),
        ("SW_OF_HOLE", SW_OF_HOLE, (True, True)),
        ("SE_OF_HOLE", SE_OF_HOLE, (True, True)),
        ("GATE_ROAD", GATE_ROAD, (False, True)),
        ("IN_CORRIDOR", IN_CORRIDOR, (False, True)),
        ("OTHER_CORRIDOR", OTHER_CORRIDOR, (False, True)),
        ("OUTSIDE", OUTSIDE, (False, False)),
        ("OUTSIDE_2", OUTSIDE_2, (False, False)),
        ("OFF_CORRIDOR", OFF_CORRIDOR, (False, False)),
        ("OFF_CORRIDOR_2", OFF_CORRIDOR_2, (False, False)),
        ("FAR", FAR, (False, False)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_places_of_the_engine_tests_lie_where_their_names_say(
    name: str, point: LonLat, expected: tuple[bool, bool]
) -> None:
    assert where(site_fences(), point) == expected, name


def test_own_corridor_membership_of_the_places() -> None:
    fences = site_fences()
    pts = [GATE_ROAD, IN_CORRIDOR, OTHER_CORRIDOR, OFF_CORRIDOR]
    x, y = fences.project(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    assert fences.in_corridor(LOGISTICS_CORRIDOR, x, y).tolist() == [True, True, False, False]


def test_a_segment_across_the_hole_goes_out_by_half_the_holes_width() -> None:
    fences = site_fences()
    pts = [WEST_OF_HOLE, EAST_OF_HOLE, SW_OF_HOLE, SE_OF_HOLE]
    x, y = fences.project(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    assert fences.segment_outside_m(x[0], y[0], x[1], y[1]) == pytest.approx(387 / 2, abs=5)  # the hole is 387 m wide
    assert fences.segment_outside_m(x[2], y[2], x[3], y[3]) == 0.0
    assert fences.segment_outside_m(x[0], y[0], x[0], y[0]) == 0.0


def test_vectorised_checks_equal_point_by_point_checks() -> None:
    fences = site_fences()
    rng = np.random.default_rng(20260921)
    lon = rng.uniform(109.862, 109.912, 400)
    lat = rng.uniform(39.505, 39.540, 400)
    x, y = fences.project(lon, lat)
    assert fences.boundary is not None and fences.allowed is not None
    checks: dict[str, tuple[Callable[[Floats, Floats], Bools], BaseGeometry]] = {
        "boundary": (fences.in_boundary, fences.boundary),
        "allowed": (fences.in_allowed, fences.allowed),
    }
    checks |= {cid: (partial(fences.in_corridor, cid), c.area) for cid, c in fences.corridors.items()}
    for name, (check, geometry) in checks.items():
        together = check(x, y)
        one_by_one = np.array([check(x[i : i + 1], y[i : i + 1])[0] for i in range(len(x))])
        by_shapely = np.array([geometry.intersects(Point(x[i], y[i])) for i in range(len(x))])
        assert together.dtype == np.bool_ and together.shape == (400,)
        assert (together == one_by_one).all(), name
        assert (together == by_shapely).all(), name
    inside = fences.in_boundary(x, y)
    assert 50 < inside.sum() < 350, "the sample must hold points on both sides of the fence"
    # projecting the batch equals projecting each point alone
    xi, yi = fences.project(lon[:1], lat[:1])
    assert (xi[0], yi[0]) == (x[0], y[0])
