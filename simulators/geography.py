"""Site layout of the Ordos comprehensive bonded zone (鄂尔多斯综合保税区), as data.

Approximate, synthetic: the shapes are plausible for a bonded zone in the airport logistics area north-east of
Ordos Ejin Horo International Airport, but they are not surveyed and must not be used for navigation. All
coordinates are WGS 84 ``(longitude, latitude)`` in decimal degrees, the GeoJSON order.

The layout:

- the **bonded boundary** (about 2.2 km east-west by 1.7 km north-south, a cut corner in the north-east) with one
  hole: the non-bonded service area (administration, bank, canteen) in the north-west, which is outside customs
  supervision;
- one internal **avenue** running east-west at latitude 39.5200 that every loading bay, the depot and the gates
  connect to, so that an inside path is always *place → its avenue access → the other's access → other place*;
- three **customs gates** (卡口) on the fence, each a small polygon straddling it; the side named in ``out_side`` is
  outside the bonded zone;
- **loading bays** of the bonded warehouses and the fleet **depot** (chargers and a hydrogen station), inside;
- **destinations** outside, each reached from one gate along a **corridor** (监管通道): a LineString that starts at
  the gate's centre and follows a plausible road, with a width in metres (60 m for short urban links, up to 150 m
  for the expressway north to Dongsheng).

Also the site's climate (:func:`ambient_c`), which the fleet and cold-room models share.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

LonLat = tuple[float, float]
Side = Literal["north", "south", "east", "west"]

SITE = "ordos-czb"
CUSTOMS_DISTRICT = "0716"
UTC_OFFSET = timedelta(hours=8)  # China Standard Time; Ordos keeps it, although solar noon is about 12:40.

# Reference point for the local metric plane (the boundary's south-west corner).
ORIGIN: LonLat = (109.8700, 39.5150)
# Metres per degree at the origin's latitude (WGS 84 ellipsoid series; error well under 0.1 % over the site).
_PHI = math.radians(ORIGIN[1])
M_PER_DEG_LAT = 111_132.92 - 559.82 * math.cos(2 * _PHI) + 1.175 * math.cos(4 * _PHI)
M_PER_DEG_LON = 111_412.84 * math.cos(_PHI) - 93.5 * math.cos(3 * _PHI)

# Ground elevation of the zone: the Ordos plateau around the airport lies at roughly 1,300-1,350 m.
SITE_ELEVATION_M = 1330.0
AVENUE_LAT = 39.5200

BOUNDARY_ID = "ordos-czb-boundary"
BOUNDARY_NAME_ZH = "鄂尔多斯综合保税区"
BOUNDARY_NAME_EN = "Ordos comprehensive bonded zone"
# Exterior ring counter-clockwise, hole clockwise (RFC 7946 right-hand rule).
BOUNDARY_RING: tuple[LonLat, ...] = (
    (109.8700, 39.5150),
    (109.8960, 39.5150),
    (109.8960, 39.5265),
    (109.8925, 39.5300),
    (109.8700, 39.5300),
    (109.8700, 39.5150),
)
SERVICE_AREA_ID = "zone-service-area"
SERVICE_AREA_NAME_ZH = "综合服务区（非保税）"
SERVICE_AREA_NAME_EN = "Service area (non-bonded)"
SERVICE_AREA_RING: tuple[LonLat, ...] = (
    (109.8725, 39.5240),
    (109.8725, 39.5280),
    (109.8770, 39.5280),
    (109.8770, 39.5240),
    (109.8725, 39.5240),
)


@dataclass(frozen=True)
class Gate:
    """A customs gate: the reader portal and barrier where the fence crosses a road.

    ``centre`` lies on the fence line; ``access`` is where the gate road meets the internal avenue. The polygon is
    60 m along the road and 40 m across it (two lanes, the inspection booth and the RFID portal).
    """

    gate_id: str
    name_zh: str
    name_en: str
    centre: LonLat
    access: LonLat
    out_side: Side

    @property
    def polygon(self) -> tuple[LonLat, ...]:
        along, across = 30.0, 20.0
        lon, lat = self.centre
        if self.out_side in ("north", "south"):
            dlon, dlat = across / M_PER_DEG_LON, along / M_PER_DEG_LAT
        else:
            dlon, dlat = along / M_PER_DEG_LON, across / M_PER_DEG_LAT
        return _rect(lon, lat, dlon, dlat)


@dataclass(frozen=True)
class Place:
    """A place inside the bonded zone where trucks stop: a loading bay or the depot."""

    place_id: str
    kind: Literal["loading_bay", "depot"]
    name_zh: str
    name_en: str
    point: LonLat
    access: LonLat  # where its driveway meets the avenue
    half_size_m: tuple[float, float]  # the zone polygon around the point, east-west and north-south half sizes


@dataclass(frozen=True)
class Depot:
    """Energy supply at the depot: DC chargers for the battery trucks, a 35 MPa hydrogen station for the others.

    360 kW per charger is the common rating of heavy-truck DC chargers in China (one or two guns per post); a
    heavy-duty 35 MPa dispenser fills at roughly 1.5-2 kg/min, so a 35 kg tank takes about 20 minutes.
    """

    place_id: str
    chargers: int
    charger_kw: float
    h2_dispensers: int
    h2_kg_per_min: float
    h2_pressure_mpa: float


@dataclass(frozen=True)
class Destination:
    """A place outside the zone that trucks serve through one gate, along one corridor.

    ``road`` runs from the gate's centre to the destination's unloading point, which is its last vertex.
    ``speed_kmh`` is the truck speed the road allows; ``elevation_m`` gives the corridor a constant grade.
    """

    destination_id: str
    name_zh: str
    name_en: str
    gate_id: str
    road: tuple[LonLat, ...]
    width_m: float
    speed_kmh: float
    elevation_m: float

    @property
    def point(self) -> LonLat:
        return self.road[-1]

    @property
    def corridor_id(self) -> str:
        return f"corridor-{self.destination_id}"

    @property
    def length_m(self) -> float:
        return polyline_length_m(list(self.road))

    @property
    def grade(self) -> float:
        """Mean grade from the gate to the destination (rise over run); negative when the road falls."""
        return (self.elevation_m - SITE_ELEVATION_M) / self.length_m


GATES: dict[str, Gate] = {
    g.gate_id: g
    for g in (
        Gate("gate-n1", "北卡口", "North gate", (109.8840, 39.5300), (109.8840, AVENUE_LAT), "north"),
        Gate("gate-e1", "东卡口", "East gate", (109.8960, 39.5200), (109.8945, AVENUE_LAT), "east"),
        Gate("gate-s1", "南卡口", "South gate", (109.8780, 39.5150), (109.8780, AVENUE_LAT), "south"),
    )
}

PLACES: dict[str, Place] = {
    p.place_id: p
    for p in (
        Place(
            "bay-a",
            "loading_bay",
            "保税仓库A装卸区",
            "Bonded warehouse A loading bay",
            (109.8745, 39.5185),
            (109.8745, AVENUE_LAT),
            (90.0, 60.0),
        ),
        Place(
            "bay-b",
            "loading_bay",
            "冷链仓库装卸区",
            "Cold-chain warehouse loading bay",
            (109.8905, 39.5218),
            (109.8905, AVENUE_LAT),
            (80.0, 60.0),
        ),
        Place(
            "bay-c",
            "loading_bay",
            "跨境电商监管中心装卸区",
            "Cross-border e-commerce supervision centre loading bay",
            (109.8815, 39.5232),
            (109.8815, AVENUE_LAT),
            (80.0, 60.0),
        ),
        Place(
            "depot",
            "depot",
            "新能源车队场站（充电站、加氢站）",
            "Zero-carbon fleet depot (chargers, hydrogen station)",
            (109.8925, 39.5172),
            (109.8925, AVENUE_LAT),
            (100.0, 70.0),
        ),
    )
}
LOADING_BAYS: tuple[str, ...] = tuple(p for p, place in PLACES.items() if place.kind == "loading_bay")

DEPOT = Depot("depot", chargers=8, charger_kw=360.0, h2_dispensers=2, h2_kg_per_min=1.8, h2_pressure_mpa=35.0)

DESTINATIONS: dict[str, Destination] = {
    d.destination_id: d
    for d in (
        Destination(
            "airport-cargo",
            "鄂尔多斯伊金霍洛国际机场货运站",
            "Ordos Ejin Horo International Airport cargo terminal",
            "gate-s1",
            ((109.8780, 39.5150), (109.8780, 39.5120), (109.8745, 39.5060), (109.8700, 39.5010), (109.8665, 39.4975)),
            80.0,
            50.0,
            1320.0,
        ),
        Destination(
            "airport-logistics-park",
            "鄂尔多斯空港物流园区配送中心",
            "Ordos Airport Logistics Park distribution hub",
            "gate-e1",
            ((109.8960, 39.5200), (109.9000, 39.5200), (109.9060, 39.5185), (109.9120, 39.5170), (109.9150, 39.5160)),
            60.0,
            50.0,
            1335.0,
        ),
        Destination(
            "kangbashi",
            "康巴什区城市配送站",
            "Kangbashi district city distribution point",
            "gate-n1",
            (
                (109.8840, 39.5300),
                (109.8840, 39.5340),
                (109.8790, 39.5450),
                (109.8600, 39.5650),
                (109.8300, 39.5850),
                (109.8000, 39.5990),
                (109.7880, 39.6050),
            ),
            100.0,
            70.0,
            1360.0,
        ),
        Destination(
            "dongsheng-dc",
            "东胜区配送中心",
            "Dongsheng district distribution centre",
            "gate-n1",
            (
                (109.8840, 39.5300),
                (109.8840, 39.5340),
                (109.8900, 39.5500),
                (109.9100, 39.6000),
                (109.9300, 39.6600),
                (109.9500, 39.7300),
                (109.9620, 39.7880),
            ),
            150.0,
            80.0,
            1450.0,
        ),
        Destination(
            "altan-xire",
            "伊金霍洛旗阿勒腾席热镇物流站",
            "Ejin Horo Banner (Altan Xire) logistics station",
            "gate-s1",
            (
                (109.8780, 39.5150),
                (109.8780, 39.5120),
                (109.8650, 39.5120),
                (109.8300, 39.5250),
                (109.7900, 39.5450),
                (109.7600, 39.5600),
                (109.7480, 39.5650),
            ),
            100.0,
            70.0,
            1340.0,
        ),
    )
}
DESTINATION_ZONE_HALF_M = 150.0  # the zone drawn around each destination's unloading point

# Monthly mean air temperature, °C, January first: approximate climate normals of the Ordos plateau (Dongsheng),
# a cold semi-arid climate with winters around -10 °C and summers around +21 °C.
MONTHLY_MEAN_C = (-10.2, -6.3, 0.5, 8.6, 15.2, 19.9, 21.8, 19.8, 14.3, 7.7, -0.6, -7.8)
# Half the mean daily range: the dry air makes days warm and nights cold, about 12 °C apart.
DIURNAL_HALF_RANGE_C = 6.0
WARMEST_LOCAL_HOUR = 15.0


def ambient_c(at: datetime) -> float:
    """Outdoor air temperature at the site at ``at`` (aware), °C: the seasonal mean plus a daily swing.

    Monthly normals are taken at mid-month and interpolated linearly; the daily swing is a cosine peaking at
    15:00 local time. No weather: a deterministic climate that callers may perturb with their own noise.
    """
    local = at.astimezone(UTC) + UTC_OFFSET
    start = datetime(local.year, 1, 1)
    days_in_year = (datetime(local.year + 1, 1, 1) - start).days
    day = (local.replace(tzinfo=None) - start).total_seconds() / 86400.0
    month_pos = day / days_in_year * 12.0 - 0.5  # 0.0 at mid-January
    i = math.floor(month_pos)
    frac = month_pos - i
    mean = MONTHLY_MEAN_C[i % 12] * (1 - frac) + MONTHLY_MEAN_C[(i + 1) % 12] * frac
    hour = local.hour + local.minute / 60.0 + local.second / 3600.0
    return mean + DIURNAL_HALF_RANGE_C * math.cos(2 * math.pi * (hour - WARMEST_LOCAL_HOUR) / 24.0)


# --- geometry helpers on a local plane ---------------------------------------------------------------------------


def local_xy(p: LonLat) -> tuple[float, float]:
    """Metres east and north of :data:`ORIGIN` (equirectangular; accurate to well under 0.1 % over 50 km)."""
    return (p[0] - ORIGIN[0]) * M_PER_DEG_LON, (p[1] - ORIGIN[1]) * M_PER_DEG_LAT


def from_local_xy(x: float, y: float) -> LonLat:
    return ORIGIN[0] + x / M_PER_DEG_LON, ORIGIN[1] + y / M_PER_DEG_LAT


def distance_m(a: LonLat, b: LonLat) -> float:
    ax, ay = local_xy(a)
    bx, by = local_xy(b)
    return math.hypot(bx - ax, by - ay)


def bearing_deg(a: LonLat, b: LonLat) -> float:
    """Direction from ``a`` to ``b``, degrees clockwise from north, in [0, 360)."""
    ax, ay = local_xy(a)
    bx, by = local_xy(b)
    return math.degrees(math.atan2(bx - ax, by - ay)) % 360.0


def polyline_length_m(points: list[LonLat]) -> float:
    return sum(distance_m(a, b) for a, b in itertools.pairwise(points))


def _rect(lon: float, lat: float, dlon: float, dlat: float) -> tuple[LonLat, ...]:
    return (
        (lon - dlon, lat - dlat),
        (lon + dlon, lat - dlat),
        (lon + dlon, lat + dlat),
        (lon - dlon, lat + dlat),
        (lon - dlon, lat - dlat),
    )


def _ring(points: tuple[LonLat, ...] | list[LonLat]) -> list[list[float]]:
    return [[round(lon, 7), round(lat, 7)] for lon, lat in points]


def _dedupe(points: list[LonLat]) -> list[LonLat]:
    out: list[LonLat] = []
    for p in points:
        if not out or distance_m(out[-1], p) > 0.01:
            out.append(p)
    return out


# --- paths -------------------------------------------------------------------------------------------------------


def _inside_node(node_id: str) -> tuple[LonLat, LonLat]:
    if node_id in PLACES:
        return PLACES[node_id].point, PLACES[node_id].access
    if node_id in GATES:
        return GATES[node_id].centre, GATES[node_id].access
    raise ValueError(f"unknown place or gate {node_id!r}; places: {', '.join(PLACES)}; gates: {', '.join(GATES)}")


def inside_path(start: str, end: str) -> list[LonLat]:
    """The path inside the zone between two places or gates (ids), along the avenue; the points are lon/lat."""
    a, a_access = _inside_node(start)
    b, b_access = _inside_node(end)
    return _dedupe([a, a_access, b_access, b])


def route(gate_id: str, destination: str, start: str = "bay-a") -> list[LonLat]:
    """A truck's polyline from a loading bay (or the depot) through ``gate_id`` to ``destination``.

    It starts inside the boundary at ``start``, runs along the avenue and the gate road to the gate's centre,
    then follows the destination's corridor to its unloading point. Reverse it for the way back.
    """
    if destination not in DESTINATIONS:
        raise ValueError(f"unknown destination {destination!r}; known: {', '.join(DESTINATIONS)}")
    dest = DESTINATIONS[destination]
    if gate_id != dest.gate_id:
        raise ValueError(f"{destination!r} is served through {dest.gate_id!r}, not {gate_id!r}")
    if start not in PLACES:
        raise ValueError(f"unknown start {start!r}; known: {', '.join(PLACES)}")
    return _dedupe(inside_path(start, gate_id) + list(dest.road))


# --- GeoJSON -----------------------------------------------------------------------------------------------------


def _feature(fence_id: str, kind: str, geometry: dict[str, Any], zh: str, en: str, **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"name": f"{zh} {en}", "kind": kind, "name_zh": zh, "name_en": en, **extra}
    return {"type": "Feature", "id": fence_id, "geometry": geometry, "properties": props}


def _polygon(*rings: tuple[LonLat, ...] | list[LonLat]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [_ring(r) for r in rings]}


def _box(point: LonLat, half_east_m: float, half_north_m: float) -> tuple[LonLat, ...]:
    return _rect(point[0], point[1], half_east_m / M_PER_DEG_LON, half_north_m / M_PER_DEG_LAT)


def geofence_features() -> list[dict[str, Any]]:
    """Every geofence of the site as a GeoJSON Feature in the API's form, with its id in ``feature["id"]``.

    The bonded boundary (with the service-area hole), one zone per loading bay, the depot, the service area
    and each destination, one gate polygon per gate (its id is the gate_id the readers report) and one corridor
    per destination (a LineString with ``width_m``).
    """
    features = [
        _feature(
            BOUNDARY_ID,
            "bonded_boundary",
            _polygon(BOUNDARY_RING, SERVICE_AREA_RING),
            BOUNDARY_NAME_ZH,
            BOUNDARY_NAME_EN,
            customs_district=CUSTOMS_DISTRICT,
            site=SITE,
        ),
        _feature(
            SERVICE_AREA_ID,
            "zone",
            _polygon(SERVICE_AREA_RING),
            SERVICE_AREA_NAME_ZH,
            SERVICE_AREA_NAME_EN,
            bonded=False,
        ),
    ]
    for place in PLACES.values():
        features.append(
            _feature(
                f"zone-{place.place_id}",
                "zone",
                _polygon(_box(place.point, *place.half_size_m)),
                place.name_zh,
                place.name_en,
                place_kind=place.kind,
                bonded=True,
            )
        )
    for gate in GATES.values():
        features.append(
            _feature(gate.gate_id, "gate", _polygon(gate.polygon), gate.name_zh, gate.name_en, out_side=gate.out_side)
        )
    for dest in DESTINATIONS.values():
        features.append(
            _feature(
                f"zone-{dest.destination_id}",
                "zone",
                _polygon(_box(dest.point, DESTINATION_ZONE_HALF_M, DESTINATION_ZONE_HALF_M)),
                dest.name_zh,
                dest.name_en,
                bonded=False,
            )
        )
        features.append(
            _feature(
                dest.corridor_id,
                "corridor",
                {"type": "LineString", "coordinates": _ring(dest.road)},
                f"{dest.name_zh}监管通道",
                f"Corridor to {dest.name_en}",
                width_m=dest.width_m,
                gate_id=dest.gate_id,
                destination=dest.destination_id,
            )
        )
    return features
