-- What the Grafana dashboards (dashboards/*.json, docs/dashboards.md) need beyond the tables: a few
-- rules that are worth one definition rather than a copy in every panel, and indexes for the panels'
-- time filters on tables that are not hypertables.
--
--   bondwatch_fence_contains(feature, lon, lat)    point in a geofence polygon (no PostGIS here)
--   bondwatch_distance_m(lat1, lon1, lat2, lon2)     great-circle distance in metres
--   bondwatch_fence_centre_lon/lat(feature)          mean of a polygon's exterior vertices
--   bondwatch_geofence_outline(spacing_m, ...)       every geofence's edges as points, for a Geomap layer
--   bondwatch_fleet_state(at_ts, ...)                each truck's state at a moment: the Fleet map's colours
--   bondwatch_fleet_usage(from, to, bucket, tz)      km, kWh and H2 kg per truck per local hour/day/month
--   bondwatch_alert_type_zh(type), bondwatch_severity_zh(severity), bondwatch_severity_rank(severity)
--
-- Grafana logs in as a member of bondwatch_reader: every function here only reads, and is granted to
-- the reader and writer groups (not PUBLIC), like bondwatch_coldchain.

-- ---------------------------------------------------------------- geometry without PostGIS
-- Debian's TimescaleDB build comes without PostGIS, and the geofences are small (rectangles, a
-- boundary of a few vertices), so a plain even-odd ray cast over the GeoJSON ring is exact enough
-- and cheap: a fleet of 24 trucks against a dozen fences is a few hundred edge tests.

CREATE FUNCTION bondwatch_ring_contains(ring jsonb, lon double precision, lat double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- Even-odd rule: a point is inside when a ray towards +lon crosses the ring an odd number of
    -- times. GeoJSON rings are closed (the last vertex repeats the first), so edge i is (i, i+1).
    SELECT coalesce(count(*) % 2 = 1, false)
    FROM (
        SELECT (ring -> i ->> 0)::double precision AS x1, (ring -> i ->> 1)::double precision AS y1,
               (ring -> (i + 1) ->> 0)::double precision AS x2, (ring -> (i + 1) ->> 1)::double precision AS y2
        FROM generate_series(0, jsonb_array_length(ring) - 2) AS i
    ) AS e
    WHERE (e.y1 > lat) <> (e.y2 > lat)
      AND lon < (e.x2 - e.x1) * (lat - e.y1) / (e.y2 - e.y1) + e.x1
$$;

CREATE FUNCTION bondwatch_fence_contains(feature jsonb, lon double precision, lat double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- A GeoJSON Feature (or bare geometry) Polygon or MultiPolygon: inside one polygon's exterior
    -- ring and inside none of its holes. Lines (corridors) contain nothing: their width is a rule of
    -- the engine (docs/rules.md), not a shape.
    WITH g AS (SELECT coalesce(feature -> 'geometry', feature) AS geom),
    polys AS (
        SELECT p.poly
        FROM g, jsonb_array_elements(
            CASE g.geom ->> 'type'
                WHEN 'Polygon' THEN jsonb_build_array(g.geom -> 'coordinates')
                WHEN 'MultiPolygon' THEN g.geom -> 'coordinates'
                ELSE '[]'::jsonb
            END) AS p(poly)
    )
    SELECT coalesce(bool_or(
        bondwatch_ring_contains(poly -> 0, lon, lat)
        AND NOT EXISTS (
            SELECT 1 FROM generate_series(1, jsonb_array_length(poly) - 1) AS h
            WHERE bondwatch_ring_contains(poly -> h, lon, lat))), false)
    FROM polys
$$;

CREATE FUNCTION bondwatch_distance_m(
    lat1 double precision, lon1 double precision, lat2 double precision, lon2 double precision
) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- Haversine on the mean Earth radius (6,371,008.8 m): within 0.5 % of the ellipsoid, plenty for
    -- "which gate is this truck at" and "how long is this edge".
    SELECT 2 * 6371008.8 * asin(sqrt(
        sin(radians(lat2 - lat1) / 2) ^ 2
        + cos(radians(lat1)) * cos(radians(lat2)) * sin(radians(lon2 - lon1) / 2) ^ 2))
$$;

-- A polygon fence's exterior ring (the first polygon's, for a MultiPolygon), NULL for a line.
CREATE FUNCTION bondwatch_fence_ring(feature jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- One expression, no FROM, so that the planner inlines it into its callers.
    SELECT CASE coalesce(feature -> 'geometry', feature) ->> 'type'
        WHEN 'Polygon' THEN coalesce(feature -> 'geometry', feature) -> 'coordinates' -> 0
        WHEN 'MultiPolygon' THEN coalesce(feature -> 'geometry', feature) -> 'coordinates' -> 0 -> 0
    END
$$;

-- The centre of a polygon fence (a gate's portal): the mean of its exterior ring's distinct vertices
-- (the closing vertex repeats the first and is left out).
CREATE FUNCTION bondwatch_fence_centre_lon(feature jsonb) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT avg((r.v ->> 0)::double precision)
    FROM jsonb_array_elements(bondwatch_fence_ring(feature)) WITH ORDINALITY AS r(v, n)
    WHERE r.n < jsonb_array_length(bondwatch_fence_ring(feature))
$$;

CREATE FUNCTION bondwatch_fence_centre_lat(feature jsonb) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT avg((r.v ->> 1)::double precision)
    FROM jsonb_array_elements(bondwatch_fence_ring(feature)) WITH ORDINALITY AS r(v, n)
    WHERE r.n < jsonb_array_length(bondwatch_fence_ring(feature))
$$;

-- ---------------------------------------------------------------- geofences on a map
-- Grafana's Geomap draws a GeoJSON layer only from a URL it can fetch, and its route layer draws one
-- line per query; the registry's fences live in the database and change through the API. So the map
-- gets them as points: every edge cut into pieces of at most spacing_m (corridors: corridor_spacing_m,
-- they are long), drawn as small dots that read as lines. part/seq keep the order along each ring.

CREATE FUNCTION bondwatch_geofence_outline(
    spacing_m          double precision DEFAULT 15,
    corridor_spacing_m double precision DEFAULT 40
) RETURNS TABLE (
    fence_id   text,
    kind       text,
    name       text,
    kind_code  integer,
    part       integer,
    seq        integer,
    lat        double precision,
    lon        double precision
)
LANGUAGE sql STABLE PARALLEL SAFE
-- The planner cannot know how many vertices and pieces the JSON holds (it assumes 1000 per set-returning
-- call), so it estimates billions of rows and JIT-compiles for 2 s what runs in 40 ms: no JIT here, nor in
-- the other functions below (bondwatch_coldchain does the same).
ROWS 3000 SET jit = off AS $$
    WITH g AS (
        SELECT f.id, f.kind, f.name, coalesce(f.feature -> 'geometry', f.feature) AS geom,
               CASE f.kind WHEN 'corridor' THEN corridor_spacing_m ELSE spacing_m END AS step
        FROM geofences f
    ),
    -- Every ring of a polygon and every line, as one array of [lon, lat] vertices each.
    parts AS (
        SELECT g.id, g.kind, g.name, g.step, p.line, p.n::integer AS part
        FROM g, jsonb_array_elements(
            CASE g.geom ->> 'type'
                WHEN 'Polygon' THEN g.geom -> 'coordinates'
                WHEN 'MultiPolygon' THEN (SELECT jsonb_agg(r) FROM jsonb_array_elements(g.geom -> 'coordinates') AS pg(x),
                                                                    jsonb_array_elements(pg.x) AS rr(r))
                WHEN 'LineString' THEN jsonb_build_array(g.geom -> 'coordinates')
                WHEN 'MultiLineString' THEN g.geom -> 'coordinates'
                ELSE '[]'::jsonb
            END) WITH ORDINALITY AS p(line, n)
    ),
    edges AS (
        SELECT pa.id, pa.kind, pa.name, pa.part, i,
               (pa.line -> i ->> 0)::double precision AS x1, (pa.line -> i ->> 1)::double precision AS y1,
               (pa.line -> (i + 1) ->> 0)::double precision AS x2, (pa.line -> (i + 1) ->> 1)::double precision AS y2,
               pa.step, jsonb_array_length(pa.line) AS nv
        FROM parts pa, generate_series(0, jsonb_array_length(pa.line) - 2) AS i
    ),
    pts AS (
        SELECT e.id, e.kind, e.name, e.part, e.i, k, e.x1 + (e.x2 - e.x1) * k / n AS x, e.y1 + (e.y2 - e.y1) * k / n AS y
        FROM edges e,
             LATERAL (SELECT greatest(1, ceil(bondwatch_distance_m(e.y1, e.x1, e.y2, e.x2) / e.step))::integer AS n) AS c,
             -- The last edge also gives its end vertex (k = n), so an open line ends where it ends.
             generate_series(0, CASE WHEN e.i = e.nv - 2 THEN c.n ELSE c.n - 1 END) AS k
    )
    SELECT pts.id, pts.kind, pts.name,
           CASE pts.kind WHEN 'bonded_boundary' THEN 0 WHEN 'zone' THEN 1 WHEN 'gate' THEN 2 ELSE 3 END,
           pts.part,
           (row_number() OVER (PARTITION BY pts.id, pts.part ORDER BY pts.i, pts.k))::integer,
           pts.y, pts.x
    FROM pts
    ORDER BY pts.id, pts.part, pts.i, pts.k
$$;

-- ---------------------------------------------------------------- labels
-- Alert types and severities as the people on shift read them, Chinese first (the API and MQTT keep
-- the English codes of the contract).

CREATE FUNCTION bondwatch_alert_type_zh(type text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE type
        WHEN 'temp_excursion' THEN '温度超限 temperature excursion'
        WHEN 'temp_pre_alarm' THEN '温度预警 temperature pre-alarm'
        WHEN 'sensor_offline' THEN '传感器离线 sensor offline'
        WHEN 'bonded_exit' THEN '保税货物离开监管 bonded exit'
        WHEN 'corridor_deviation' THEN '偏离监管通道 corridor deviation'
        WHEN 'gate_hold' THEN '卡口扣留 gate hold'
        WHEN 'gps_lost' THEN '定位丢失 GPS lost'
        WHEN 'low_soc' THEN '电量低 low charge'
        ELSE type
    END
$$;

CREATE FUNCTION bondwatch_severity_zh(severity text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE severity
        WHEN 'critical' THEN '紧急 critical'
        WHEN 'major' THEN '重要 major'
        WHEN 'minor' THEN '次要 minor'
        WHEN 'warning' THEN '提示 warning'
        ELSE severity
    END
$$;

-- 1 = most urgent, for ORDER BY.
CREATE FUNCTION bondwatch_severity_rank(severity text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE severity WHEN 'critical' THEN 1 WHEN 'major' THEN 2 WHEN 'minor' THEN 3 WHEN 'warning' THEN 4 ELSE 5 END
$$;

-- ---------------------------------------------------------------- the fleet's state
-- One row per vehicle with a fix in the `fix_max_age` before `at_ts`: its latest fix at `at_ts` and the
-- state the Fleet map colours it by. The first rule that holds wins:
--
--   alert     3  an alert whose subject is the vehicle is open at `at_ts` (opened_at <= at_ts, not cleared by then)
--   at_gate   1  the fix is within gate_radius_m of a gate's centre (in the portal or queueing for it),
--                or a gate reader saw the vehicle (a passage began) in the gate_recent before `at_ts`
--   charging  2  standing (< moving_kmh) inside the depot zone (chargers and the hydrogen station), or
--                standing while soc_pct rose by soc_rise_pct or more since the fix soc_window earlier
--                (a charger elsewhere). A fuel-cell truck's tank level is not reported, so parked at
--                the depot counts as charging/refuelling.
--   moving    0  speed_kmh >= moving_kmh
--   stopped   4  anything else: loading at a bay, a break, waiting
--
-- Cost: per vehicle one index probe of positions_device_ts for the latest fix and one for the fix
-- soc_window earlier, one of alerts_subject and one of gate_passages_vehicle; the fences are a few rows.

CREATE FUNCTION bondwatch_fleet_state(
    at_ts         timestamptz DEFAULT now(),
    fix_max_age   interval DEFAULT '1 day',
    gate_radius_m double precision DEFAULT 100,
    gate_recent   interval DEFAULT '2 minutes',
    moving_kmh    double precision DEFAULT 3,
    soc_window    interval DEFAULT '5 minutes',
    soc_rise_pct  double precision DEFAULT 1
) RETURNS TABLE (
    vehicle_id    text,
    plate         text,
    name          text,
    powertrain    text,
    ts            timestamptz,
    lat           double precision,
    lon           double precision,
    speed_kmh     double precision,
    heading_deg   double precision,
    soc_pct       double precision,
    odometer_km   double precision,
    state         text,
    state_code    integer,
    gate_id       text,
    open_alerts   integer,
    worst_alert   text
)
LANGUAGE sql STABLE ROWS 50 SET jit = off AS $$
    -- MATERIALIZED: each fence's centre once, not once per truck (the helpers are not inlined).
    WITH gates AS MATERIALIZED (
        SELECT f.id, bondwatch_fence_centre_lat(f.feature) AS clat, bondwatch_fence_centre_lon(f.feature) AS clon
        FROM geofences f WHERE f.kind = 'gate'
    ),
    depots AS MATERIALIZED (
        SELECT f.feature FROM geofences f
        WHERE f.kind = 'zone' AND (f.feature -> 'properties' ->> 'place_kind' = 'depot' OR f.id = 'zone-depot')
    ),
    v AS (
        SELECT v.vehicle_id, v.plate, v.name, p.ts, p.lat, p.lon, p.speed_kmh::double precision AS speed_kmh,
               p.heading_deg::double precision AS heading_deg, p.soc_pct::double precision AS soc_pct,
               p.odometer_km, p.h2_kg, p.energy_kwh, v.device_id
        FROM vehicles v
        CROSS JOIN LATERAL (
            SELECT p.ts, p.lat, p.lon, p.speed_kmh, p.heading_deg, p.soc_pct, p.odometer_km, p.h2_kg, p.energy_kwh
            FROM positions p
            WHERE p.device_id = v.device_id AND p.ts <= at_ts AND p.ts > at_ts - fix_max_age AND p.fix <> 'none'
            ORDER BY p.ts DESC
            LIMIT 1
        ) AS p
    ),
    facts AS (
        SELECT v.*,
               al.n AS open_alerts, al.worst,
               (SELECT g.id FROM gates g
                WHERE bondwatch_distance_m(v.lat, v.lon, g.clat, g.clon) <= gate_radius_m
                ORDER BY bondwatch_distance_m(v.lat, v.lon, g.clat, g.clon) LIMIT 1) AS near_gate,
               (SELECT gp.gate_id FROM gate_passages gp
                WHERE gp.vehicle_id = v.vehicle_id AND gp.first_read_at <= at_ts AND gp.first_read_at > at_ts - gate_recent
                ORDER BY gp.first_read_at DESC LIMIT 1) AS read_at_gate,
               EXISTS (SELECT 1 FROM depots d WHERE bondwatch_fence_contains(d.feature, v.lon, v.lat)) AS in_depot,
               (SELECT e.soc_pct FROM positions e
                WHERE e.device_id = v.device_id AND e.ts <= v.ts - soc_window AND e.ts > v.ts - 6 * soc_window
                ORDER BY e.ts DESC LIMIT 1)::double precision AS soc_before
        FROM v
        CROSS JOIN LATERAL (
            SELECT count(*)::integer AS n,
                   (array_agg(a.type ORDER BY bondwatch_severity_rank(a.severity), a.opened_at))[1] AS worst
            FROM alerts a
            WHERE a.subject_id = v.vehicle_id AND a.subject_kind = 'vehicle'
              AND a.opened_at <= at_ts AND (a.cleared_at IS NULL OR a.cleared_at > at_ts)
        ) AS al
    )
    SELECT f.vehicle_id, f.plate, f.name,
           CASE WHEN f.h2_kg IS NOT NULL THEN 'fcev' WHEN f.energy_kwh IS NOT NULL THEN 'bev' END,
           f.ts, f.lat, f.lon, f.speed_kmh, f.heading_deg, f.soc_pct, f.odometer_km,
           s.state,
           CASE s.state WHEN 'moving' THEN 0 WHEN 'at_gate' THEN 1 WHEN 'charging' THEN 2
                        WHEN 'alert' THEN 3 ELSE 4 END,
           coalesce(f.near_gate, f.read_at_gate),
           f.open_alerts, f.worst
    FROM facts f
    CROSS JOIN LATERAL (
        SELECT CASE
            WHEN f.open_alerts > 0 THEN 'alert'
            WHEN f.near_gate IS NOT NULL OR f.read_at_gate IS NOT NULL THEN 'at_gate'
            WHEN coalesce(f.speed_kmh, 0) < moving_kmh
                 AND (f.in_depot OR f.soc_pct - f.soc_before >= soc_rise_pct) THEN 'charging'
            WHEN f.speed_kmh >= moving_kmh THEN 'moving'
            ELSE 'stopped'
        END AS state
    ) AS s
    ORDER BY f.plate
$$;

-- ---------------------------------------------------------------- energy and distance counters
-- The trucks report cumulative counters (odometer_km, energy_kwh drawn from the pack by a
-- battery-electric truck, h2_kg consumed by a fuel-cell truck). What a truck used in a period is the
-- counter's value at the period's end minus its value at the start, where "the value at a moment" is
-- the one of the last reading at or before it (within `lookback`), else of the first reading after
-- it inside the period (a truck first heard mid-period). So the sum over consecutive periods is the
-- total over the whole window, and the cost is two index probes per truck per period boundary, not a
-- scan of the readings. A counter that goes backwards (a replaced terminal) counts 0, not negative.
--
-- Periods as in bondwatch_coldchain: 'hour', 'day' or 'month' cut in `tz` (local midnight), clipped
-- to [from_ts, to_ts), or 'total' (one period, period_start = from_ts).

CREATE FUNCTION bondwatch_fleet_usage(
    from_ts  timestamptz,
    to_ts    timestamptz,
    bucket   text DEFAULT 'day',
    tz       text DEFAULT 'Asia/Shanghai',
    lookback interval DEFAULT '7 days'
) RETURNS TABLE (
    period_start timestamptz,
    vehicle_id   text,
    plate        text,
    powertrain   text,
    km           double precision,
    kwh          double precision,
    h2_kg        double precision
)
LANGUAGE plpgsql STABLE ROWS 1000
SET search_path = public, pg_temp SET jit = off AS $$
#variable_conflict use_column
DECLARE
    unit text;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR tz IS NULL OR from_ts >= to_ts THEN
        RAISE EXCEPTION 'bondwatch_fleet_usage: from_ts must be before to_ts (got % and %)', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF bucket IS NULL OR bucket NOT IN ('hour', 'day', 'month', 'total') THEN
        RAISE EXCEPTION 'bondwatch_fleet_usage: bucket must be hour, day, month or total (got %)', coalesce(bucket, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    unit := nullif(bucket, 'total');

    RETURN QUERY
    WITH bounds AS (
        SELECT b, lead(b) OVER (ORDER BY b) AS b_next
        FROM (
            SELECT from_ts AS b
            UNION
            SELECT g AT TIME ZONE tz
            FROM generate_series(date_trunc(coalesce(unit, 'day'), from_ts AT TIME ZONE tz),
                                 to_ts AT TIME ZONE tz, ('1 ' || coalesce(unit, 'day'))::interval) AS g
            WHERE unit IS NOT NULL AND g AT TIME ZONE tz > from_ts AND g AT TIME ZONE tz < to_ts
            UNION
            SELECT to_ts
        ) AS s
    ),
    at_bound AS (
        -- Each truck's counters at each boundary b (the reading at or before b, else the first one
        -- after b and before the next boundary).
        SELECT v.vehicle_id, v.plate, bo.b, bo.b_next,
               coalesce(before.odometer_km, after.odometer_km) AS odo,
               coalesce(before.energy_kwh, after.energy_kwh) AS kwh,
               coalesce(before.h2_kg, after.h2_kg) AS h2
        FROM vehicles v
        CROSS JOIN bounds bo
        LEFT JOIN LATERAL (
            SELECT p.odometer_km, p.energy_kwh, p.h2_kg FROM positions p
            WHERE p.device_id = v.device_id AND p.ts <= bo.b AND p.ts > bo.b - lookback
            ORDER BY p.ts DESC LIMIT 1
        ) AS before ON true
        LEFT JOIN LATERAL (
            SELECT p.odometer_km, p.energy_kwh, p.h2_kg FROM positions p
            WHERE before.odometer_km IS NULL AND bo.b_next IS NOT NULL
              AND p.device_id = v.device_id AND p.ts > bo.b AND p.ts < bo.b_next
            ORDER BY p.ts ASC LIMIT 1
        ) AS after ON true
        WHERE v.device_id IS NOT NULL
    ),
    deltas AS (
        SELECT a.vehicle_id, a.plate, a.b,
               -- CASE, not greatest(): greatest(NULL, 0) is 0, and a counter the truck does not
               -- report (energy_kwh of a fuel-cell truck) must stay NULL, not become 0.
               CASE WHEN lead(a.odo) OVER w < a.odo THEN 0 ELSE lead(a.odo) OVER w - a.odo END AS km,
               CASE WHEN lead(a.kwh) OVER w < a.kwh THEN 0 ELSE lead(a.kwh) OVER w - a.kwh END AS kwh,
               CASE WHEN lead(a.h2) OVER w < a.h2 THEN 0 ELSE lead(a.h2) OVER w - a.h2 END AS h2,
               -- The powertrain shows in what the terminal reports: hydrogen for a fuel-cell truck.
               bool_or(a.h2 IS NOT NULL) OVER (PARTITION BY a.vehicle_id) AS has_h2,
               bool_or(a.kwh IS NOT NULL) OVER (PARTITION BY a.vehicle_id) AS has_kwh,
               a.b_next
        FROM at_bound a
        WINDOW w AS (PARTITION BY a.vehicle_id ORDER BY a.b)
    )
    SELECT CASE WHEN unit IS NULL THEN from_ts ELSE d.b END,
           d.vehicle_id, d.plate,
           CASE WHEN d.has_h2 THEN 'fcev' WHEN d.has_kwh THEN 'bev' END,
           d.km, d.kwh, d.h2
    FROM deltas d
    WHERE d.b_next IS NOT NULL
      AND (unit IS NOT NULL OR d.b = from_ts)
      AND (d.km IS NOT NULL OR d.kwh IS NOT NULL OR d.h2 IS NOT NULL)
    ORDER BY 1, d.plate;
END
$$;

-- For 'total' the boundaries are only from_ts and to_ts: the UNION's middle branch is empty.

-- ---------------------------------------------------------------- indexes for the panels
-- gate_passages, alert_events and release_notes are plain tables that grow by hundreds of rows a day;
-- the panels filter them by time over any gate, so each gets a time index (the existing ones lead
-- with the gate, the alert or the vehicle).
CREATE INDEX gate_passages_first_read ON gate_passages (first_read_at DESC);
CREATE INDEX alert_events_at ON alert_events (at DESC);
CREATE INDEX release_notes_used ON release_notes (used_at DESC) WHERE used_at IS NOT NULL;
-- "Acknowledged when" and "cleared when" for the alert panels' windows.
CREATE INDEX alerts_acked ON alerts (acked_at DESC) WHERE acked_at IS NOT NULL;
CREATE INDEX alerts_cleared ON alerts (cleared_at DESC) WHERE cleared_at IS NOT NULL;

-- ---------------------------------------------------------------- privileges
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'bondwatch_ring_contains(jsonb, double precision, double precision)',
        'bondwatch_fence_contains(jsonb, double precision, double precision)',
        'bondwatch_distance_m(double precision, double precision, double precision, double precision)',
        'bondwatch_fence_ring(jsonb)',
        'bondwatch_fence_centre_lon(jsonb)',
        'bondwatch_fence_centre_lat(jsonb)',
        'bondwatch_geofence_outline(double precision, double precision)',
        'bondwatch_fleet_state(timestamptz, interval, double precision, interval, double precision, interval, double precision)',
        'bondwatch_fleet_usage(timestamptz, timestamptz, text, text, interval)',
        'bondwatch_alert_type_zh(text)',
        'bondwatch_severity_zh(text)',
        'bondwatch_severity_rank(text)'
    ] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO bondwatch_writer, bondwatch_reader', f);
    END LOOP;
END
$$;
