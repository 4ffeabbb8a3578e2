"""Geofences as the registry stores them: a GeoJSON Feature (WGS 84 lon/lat) with a kind.

Used by the API to refuse a geofence before it is stored, and by the rules to build geometries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

KINDS = ("bonded_boundary", "zone", "corridor", "gate")
GEOMETRY_TYPES = {
    "bonded_boundary": ("Polygon", "MultiPolygon"),
    "zone": ("Polygon", "MultiPolygon"),
    "gate": ("Polygon", "MultiPolygon", "Point"),
    "corridor": ("LineString", "MultiLineString"),
}


class GeofenceInvalid(ValueError):
    """The feature is not a usable geofence; the text says why."""


@dataclass(frozen=True)
class Geofence:
    id: str
    name: str
    kind: str
    geometry: BaseGeometry
    width_m: float | None
    feature: dict[str, Any]


def parse_feature(feature: dict[str, Any], fence_id: str) -> Geofence:
    if feature.get("type") != "Feature":
        raise GeofenceInvalid(
            "body must be a GeoJSON Feature ({'type': 'Feature', 'geometry': ..., 'properties': ...})"
        )
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise GeofenceInvalid("properties must be an object with name and kind")
    name, kind = props.get("name"), props.get("kind")
    if not isinstance(name, str) or not name.strip():
        raise GeofenceInvalid("properties.name is required")
    if kind not in KINDS:
        raise GeofenceInvalid(f"properties.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    raw = feature.get("geometry")
    if not isinstance(raw, dict):
        raise GeofenceInvalid("geometry is required")
    gtype = raw.get("type")
    if gtype not in GEOMETRY_TYPES[kind]:
        raise GeofenceInvalid(f"a {kind} must be a {' or '.join(GEOMETRY_TYPES[kind])}, got {gtype!r}")
    try:
        geometry = shape(raw)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, shapely.errors.GEOSException) as exc:
        raise GeofenceInvalid(f"geometry coordinates are malformed: {exc}") from None
    if geometry.is_empty:
        raise GeofenceInvalid("geometry is empty")
    minx, miny, maxx, maxy = geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise GeofenceInvalid("coordinates must be WGS 84 [longitude, latitude] within ±180, ±90")
    if not shapely.is_valid(geometry):
        raise GeofenceInvalid(f"geometry is not valid: {explain_validity(geometry)}")
    width = props.get("width_m")
    if kind == "corridor":
        if isinstance(width, bool) or not isinstance(width, int | float) or not 0 < width <= 50_000:
            raise GeofenceInvalid("a corridor needs properties.width_m, a number of metres in (0, 50000]")
        width = float(width)
    elif width is not None:
        raise GeofenceInvalid("width_m applies to corridors only")
    return Geofence(
        fence_id,
        name.strip(),
        kind,
        geometry,
        width,
        {"type": "Feature", "id": fence_id, "geometry": raw, "properties": props},
    )
