-- Every truck's last fix of each five minutes, so that the fleet's counters at day boundaries and its
-- state of charge over hours are read from 288 rows a day per truck instead of 8,640 fixes (a fix every
-- 10 s). Kept by the same job as the cold-chain rollup (bondwatch/db/rollup.py, every minute), the same
-- way: the Apache edition has no continuous aggregates.
--
-- A sample at `at` is the last fix with at − 5 min < ts <= at (by ts, then seq), with its values; a
-- five minutes without fixes has no sample. "The last fix at or before b", for b on a five-minute
-- boundary the samples cover, is then the sample with the greatest at <= b: exactly what the fixes
-- give. Samples are written up to ten minutes before now; fixes that arrive later than five minutes
-- after their ts are marked by ingest in position_late and their samples written again.

CREATE TABLE position_samples (
    device_id    text             NOT NULL,
    at           timestamptz      NOT NULL,
    ts           timestamptz      NOT NULL,
    soc_pct      real,
    energy_kwh   double precision,
    h2_kg        double precision,
    odometer_km  double precision,
    PRIMARY KEY (device_id, at)
);
CREATE INDEX position_samples_at ON position_samples (at);

CREATE TABLE position_rollup (
    device_id     text        PRIMARY KEY,
    rolled_until  timestamptz NOT NULL,  -- every sample at <= this is written
    rolled_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE position_late (
    device_id  text        NOT NULL,
    first_ts   timestamptz NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION bondwatch_roll_positions(
    upto      timestamptz DEFAULT now(),
    device    text DEFAULT NULL,
    max_hours integer DEFAULT 24 * 31
) RETURNS integer
LANGUAGE plpgsql
SET search_path = public, pg_temp SET jit = off AS $$
DECLARE
    dev record;
    written integer := 0;
    n integer;
    lo timestamptz;
    hi timestamptz;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7160717) THEN
        RETURN 0;
    END IF;
    WITH late AS (
        DELETE FROM position_late RETURNING device_id, first_ts
    ), first_late AS (
        SELECT device_id, min(first_ts) AS first_ts FROM late GROUP BY device_id
    )
    UPDATE position_rollup r
    SET rolled_until = time_bucket('5 minutes', l.first_ts - interval '1 microsecond')
    FROM first_late l
    WHERE r.device_id = l.device_id
      AND r.rolled_until >= time_bucket('5 minutes', l.first_ts - interval '1 microsecond') + interval '5 minutes';

    FOR dev IN
        SELECT d.device_id, r.rolled_until
        FROM devices d
        LEFT JOIN position_rollup r ON r.device_id = d.device_id
        WHERE d.kind = 'gps' AND (device IS NULL OR d.device_id = device)
        ORDER BY d.device_id
    LOOP
        lo := coalesce(dev.rolled_until,
                       (SELECT time_bucket('5 minutes', min(p.ts) - interval '1 microsecond') FROM positions p
                        WHERE p.device_id = dev.device_id));
        CONTINUE WHEN lo IS NULL;
        hi := least(time_bucket('5 minutes', upto - interval '10 minutes'), lo + make_interval(hours => max_hours));
        CONTINUE WHEN hi <= lo;

        DELETE FROM position_samples s WHERE s.device_id = dev.device_id AND s.at > lo AND s.at <= hi;
        INSERT INTO position_samples (device_id, at, ts, soc_pct, energy_kwh, h2_kg, odometer_km)
        SELECT DISTINCT ON (x.at) dev.device_id, x.at, x.ts, x.soc_pct, x.energy_kwh, x.h2_kg, x.odometer_km
        FROM (
            SELECT time_bucket('5 minutes', p.ts - interval '1 microsecond') + interval '5 minutes' AS at,
                   p.ts, p.seq, p.soc_pct, p.energy_kwh, p.h2_kg, p.odometer_km
            FROM positions p
            WHERE p.device_id = dev.device_id AND p.ts > lo AND p.ts <= hi
        ) AS x
        ORDER BY x.at, x.ts DESC, x.seq DESC;
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;

        INSERT INTO position_rollup (device_id, rolled_until, rolled_at) VALUES (dev.device_id, hi, now())
        ON CONFLICT (device_id) DO UPDATE SET rolled_until = EXCLUDED.rolled_until, rolled_at = EXCLUDED.rolled_at;
    END LOOP;
    RETURN written;
END
$$;

COMMENT ON FUNCTION bondwatch_roll_positions(timestamptz, text, integer) IS
    'Writes position_samples (each truck''s last fix of each five minutes) up to ten minutes before upto; '
    'returns the samples written. See migration 0009.';

-- ---------------------------------------------------------------- reading
-- bondwatch_fleet_usage as in migration 0006 (same arguments, columns and definition): the counters at a
-- boundary on five minutes that the samples cover come from the samples, others from the fixes.

CREATE OR REPLACE FUNCTION bondwatch_fleet_usage(
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
        SELECT b, lead(b) OVER (ORDER BY b) AS b_next, b = time_bucket('5 minutes', b) AS on_sample
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
        SELECT v.vehicle_id, v.plate, bo.b, bo.b_next,
               coalesce(sampled.odometer_km, before.odometer_km, after.odometer_km) AS odo,
               coalesce(sampled.energy_kwh, before.energy_kwh, after.energy_kwh) AS kwh,
               coalesce(sampled.h2_kg, before.h2_kg, after.h2_kg) AS h2
        FROM vehicles v
        CROSS JOIN bounds bo
        LEFT JOIN position_rollup pr ON pr.device_id = v.device_id
        CROSS JOIN LATERAL (SELECT coalesce(bo.on_sample AND bo.b <= pr.rolled_until, false) AS use) AS use_samples
        LEFT JOIN LATERAL (
            SELECT s.odometer_km, s.energy_kwh, s.h2_kg, s.ts FROM position_samples s
            WHERE use_samples.use AND s.device_id = v.device_id AND s.at <= bo.b AND s.at > bo.b - lookback
            ORDER BY s.at DESC LIMIT 1
        ) AS last_sample ON true
        LEFT JOIN LATERAL (
            SELECT last_sample.odometer_km, last_sample.energy_kwh, last_sample.h2_kg
            WHERE last_sample.ts > bo.b - lookback
        ) AS sampled ON true
        LEFT JOIN LATERAL (
            SELECT p.odometer_km, p.energy_kwh, p.h2_kg FROM positions p
            WHERE NOT use_samples.use
              AND p.device_id = v.device_id AND p.ts <= bo.b AND p.ts > bo.b - lookback
            ORDER BY p.ts DESC LIMIT 1
        ) AS before ON true
        LEFT JOIN LATERAL (
            SELECT p.odometer_km, p.energy_kwh, p.h2_kg FROM positions p
            WHERE coalesce(sampled.odometer_km, before.odometer_km) IS NULL AND bo.b_next IS NOT NULL
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

-- State of charge per truck over a window, averaged per `bucket`: from the samples where they are
-- written (each the last fix of its five minutes), from the fixes after them.
CREATE FUNCTION bondwatch_soc_series(from_ts timestamptz, to_ts timestamptz, bucket interval)
RETURNS TABLE ("time" timestamptz, plate text, soc double precision)
LANGUAGE sql STABLE ROWS 10000
SET search_path = public, pg_temp SET jit = off AS $$
    WITH x AS (
        SELECT s.device_id, s.at AS ts, s.soc_pct
        FROM position_samples s
        JOIN position_rollup pr ON pr.device_id = s.device_id
        WHERE s.at >= from_ts AND s.at <= to_ts AND s.at <= pr.rolled_until AND s.soc_pct IS NOT NULL
        UNION ALL
        SELECT p.device_id, p.ts, p.soc_pct
        FROM positions p
        LEFT JOIN position_rollup pr ON pr.device_id = p.device_id
        WHERE p.ts >= greatest(from_ts, coalesce((SELECT min(rolled_until) FROM position_rollup), '-infinity'))
          AND p.ts <= to_ts AND p.ts > coalesce(pr.rolled_until, '-infinity') AND p.soc_pct IS NOT NULL
    )
    SELECT time_bucket(bucket, x.ts), v.plate, avg(x.soc_pct)::double precision
    FROM x
    JOIN vehicles v ON v.device_id = x.device_id
    GROUP BY 1, 2
    ORDER BY 1, 2
$$;

REVOKE ALL ON FUNCTION bondwatch_soc_series(timestamptz, timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bondwatch_soc_series(timestamptz, timestamptz, interval) TO bondwatch_writer, bondwatch_reader;
REVOKE ALL ON FUNCTION bondwatch_roll_positions(timestamptz, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bondwatch_roll_positions(timestamptz, text, integer) TO bondwatch_writer;
REVOKE ALL ON position_late FROM bondwatch_reader;
