"""Geofence checks per second: the rules engine's vectorised path against a per-point loop.

The boundary set is the synthetic Ordos site (simulators.geography: the bonded boundary with its
non-bonded hole, five corridors of 40-60 m, three gates), with the boundary densified to a vertex
every 10 m as a surveyed fence line is. Both paths answer the same question for each fix: inside
some bonded boundary or corridor (bonded_exit), and inside the boundary or the vehicle's own
corridor (corridor_deviation), in UTM 49N metres.

- vectorised: :class:`rules.fences.FenceSet` as the engine uses it: one pyproj call per batch,
  prepared geometries, ``shapely.intersects_xy`` over arrays; batches of 1,000 fixes (a busy
  engine batch) and of 100,000.
- per point: one pyproj transform and one prepared-geometry predicate per fix and area.

    python -m bench.geofence [--points 100000]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from rich.console import Console

from bondwatch.geofence import parse_feature
from bondwatch.services.settings import ServicesSettings
from bondwatch.settings import load_settings
from rules.fences import FenceSet
from simulators.geography import geofence_features

console = Console()


def densified_features(spacing_m: float = 10.0) -> list[dict[str, Any]]:
    out = []
    for f in geofence_features():
        if f["properties"]["kind"] == "bonded_boundary":
            geometry = shapely.geometry.shape(f["geometry"])
            # degrees: ~spacing_m at this latitude (1e-4 deg is about 8.6-11 m)
            dense = shapely.segmentize(geometry, spacing_m / 100_000)
            f = {**f, "geometry": shapely.geometry.mapping(dense)}
        out.append(f)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()
    features = densified_features()
    fences = FenceSet([parse_feature(f, f["id"]) for f in features])
    corridor = next(iter(fences.corridors))
    vertices = sum(len(shapely.get_coordinates(shapely.geometry.shape(f["geometry"]))) for f in features)
    rng = np.random.default_rng(716)
    minx, miny, maxx, maxy = shapely.unary_union([shapely.geometry.shape(f["geometry"]) for f in features]).bounds
    lon = rng.uniform(minx - 0.01, maxx + 0.01, args.points)
    lat = rng.uniform(miny - 0.01, maxy + 0.01, args.points)

    def vectorised(batch: int) -> tuple[float, np.ndarray]:
        started = time.perf_counter()
        answers = []
        for i in range(0, args.points, batch):
            x, y = fences.project(lon[i : i + batch], lat[i : i + batch])
            allowed = fences.in_allowed(x, y)
            own = fences.in_boundary(x, y) | fences.in_corridor(corridor, x, y)
            answers.append(allowed * 2 + own)
        return time.perf_counter() - started, np.concatenate(answers)

    to_utm = Transformer.from_crs("EPSG:4326", fences.crs, always_xy=True)
    assert fences.allowed is not None and fences.boundary is not None
    own_area = shapely.union(fences.boundary, fences.corridors[corridor].area)
    shapely.prepare(own_area)

    def per_point() -> tuple[float, np.ndarray]:
        started = time.perf_counter()
        answers = np.empty(args.points, dtype=np.int64)
        for i in range(args.points):
            x, y = to_utm.transform(lon[i], lat[i])
            p = shapely.Point(x, y)
            answers[i] = int(fences.allowed.intersects(p)) * 2 + int(own_area.intersects(p))  # type: ignore[union-attr]
        return time.perf_counter() - started, answers

    loop_s, loop_answers = per_point()
    small_s, small_answers = vectorised(1_000)
    big_s, big_answers = vectorised(args.points)
    assert (loop_answers == small_answers).all() and (loop_answers == big_answers).all(), "the paths disagree"
    results = {
        "points": args.points,
        "vertices": vertices,
        "per_point_per_s": args.points / loop_s,
        "vectorised_1000_per_s": args.points / small_s,
        "vectorised_all_per_s": args.points / big_s,
    }
    console.print(f"[bold]geofence benchmark[/]: {args.points:,} fixes, {vertices:,} vertices, two questions per fix")
    console.print(f"  per point:                {results['per_point_per_s']:>12,.0f} fixes/s")
    console.print(f"  vectorised, batches 1000: {results['vectorised_1000_per_s']:>12,.0f} fixes/s "
                  f"({results['vectorised_1000_per_s'] / results['per_point_per_s']:.1f}x)")  # fmt: skip
    console.print(f"  vectorised, one batch:    {results['vectorised_all_per_s']:>12,.0f} fixes/s "
                  f"({results['vectorised_all_per_s'] / results['per_point_per_s']:.1f}x)")  # fmt: skip
    out = load_settings(ServicesSettings).state_dir / "bench" / "geofence.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
