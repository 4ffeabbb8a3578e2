"""Geofences in metres: the registry's WGS 84 features projected once, prepared, checked many points at a time.

Areas are projected to a metric CRS (by default the UTM zone of the registered fences: 49N, EPSG:32649,
for Ordos) so that a corridor's ``width_m`` is metres on the ground. A corridor is its centre line
buffered by half its width: ``width_m`` is the width of the road it allows. Points on an edge count
as inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from bondwatch.geofence import Geofence

Floats = npt.NDArray[np.float64]
SAMPLE_M = 5.0  # spacing of the points that measure how far a line between two fixes goes out
Bools = npt.NDArray[np.bool_]


def utm_crs_for(lon: float, lat: float) -> CRS:
    zone = int((lon + 180) // 6) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


@dataclass(frozen=True)
class Corridor:
    id: str
    name: str
    width_m: float
    area: BaseGeometry  # projected, buffered by width_m / 2, prepared


class FenceSet:
    def __init__(self, fences: list[Geofence], crs: str = "") -> None:
        self.ids = tuple(f.id for f in fences)
        self.names = {f.id: f.name for f in fences}
        if crs:
            self.crs = CRS.from_user_input(crs)
        elif fences:
            centre = shapely.unary_union([f.geometry for f in fences]).centroid
            self.crs = utm_crs_for(centre.x, centre.y)
        else:
            self.crs = CRS.from_epsg(32649)
        self._to_metres = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)
        boundaries = [self._project_geometry(f.geometry) for f in fences if f.kind == "bonded_boundary"]
        self.boundary: BaseGeometry | None = shapely.unary_union(boundaries) if boundaries else None
        self.corridors: dict[str, Corridor] = {}
        for f in fences:
            if f.kind == "corridor" and f.width_m is not None:
                area = shapely.buffer(self._project_geometry(f.geometry), f.width_m / 2)
                shapely.prepare(area)
                self.corridors[f.id] = Corridor(f.id, f.name, f.width_m, area)
        parts = ([self.boundary] if self.boundary is not None else []) + [c.area for c in self.corridors.values()]
        self.allowed: BaseGeometry | None = shapely.unary_union(parts) if parts else None
        for geometry in (self.boundary, self.allowed):
            if geometry is not None:
                shapely.prepare(geometry)

    @classmethod
    def empty(cls) -> FenceSet:
        return cls([])

    def _project_geometry(self, geometry: BaseGeometry) -> BaseGeometry:
        def to_metres(xy: Floats) -> Floats:
            x, y = self._to_metres.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])

        return shapely.transform(geometry, to_metres)

    def project(self, lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
        x, y = self._to_metres.transform(lon, lat)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    @staticmethod
    def _inside(geometry: BaseGeometry | None, x: Floats, y: Floats) -> Bools:
        if geometry is None:
            return np.zeros(len(x), dtype=bool)
        return np.asarray(shapely.intersects_xy(geometry, x, y), dtype=bool)

    def in_boundary(self, x: Floats, y: Floats) -> Bools:
        return self._inside(self.boundary, x, y)

    def in_allowed(self, x: Floats, y: Floats) -> Bools:
        """Inside some bonded boundary or some corridor."""
        return self._inside(self.allowed, x, y)

    def in_corridor(self, corridor_id: str, x: Floats, y: Floats) -> Bools:
        corridor = self.corridors.get(corridor_id)
        return self._inside(corridor.area if corridor else None, x, y)

    def distance_outside_m(self, x: float, y: float) -> float | None:
        """How far a point lies from the nearest allowed area (0 inside); None without any area."""
        if self.allowed is None:
            return None
        return float(shapely.distance(self.allowed, shapely.points(x, y)))

    def segment_outside_m(self, x0: float, y0: float, x1: float, y1: float) -> float:
        """How far the straight line between two fixes goes outside every allowed area (0 if it stays in).

        The farthest point, not the length outside: a line cutting the inside of a corridor's bend
        runs outside for a long way but only a few metres out, while one crossing a hole in the
        boundary goes far out.
        """
        if self.allowed is None or (x0, y0) == (x1, y1):
            return 0.0
        outside = shapely.difference(LineString([(x0, y0), (x1, y1)]), self.allowed)
        if outside.is_empty:
            return 0.0
        steps = np.arange(0.0, outside.length + SAMPLE_M, SAMPLE_M)
        points = shapely.line_interpolate_point(shapely.line_merge(outside), np.minimum(steps, outside.length))
        return float(np.max(shapely.distance(self.allowed, points)))
