-- Hourly cold-chain sums per sensor, so that statistics over days, weeks and months read 24 rows a
-- day per sensor instead of 1,440 readings: the Apache edition of TimescaleDB has no continuous
-- aggregates, so the platform keeps its own (bondwatch/db/rollup.py calls bondwatch_roll_temperatures
-- every minute). bondwatch_coldchain(_many) and bondwatch_door_openings(_many) read the hours the
-- rollup holds and the raw readings for the rest of the window, and give exactly what the readings
-- alone would.
--
-- An hour's row sums its readings with the weights bondwatch_coldchain gives them (a reading stands
-- for the time until the device's next reading, capped at the profile's offline_after_s), whole: the
-- interval of an hour's last reading may run into the next hour, as it does in the function. A window
-- that ends before that interval does cuts it (the last_* columns say by how much, and what to take
-- off). Openings count the door going from not open to open between two readings of the same hour;
-- first_open and last_open join the hours.
--
-- An hour is rolled once its next `cap` and ten minutes have passed (its last reading's interval is
-- known). Readings
-- that arrive late (an edge backlog) are marked by ingest in temperature_late; the next roll
-- computes the hours they touch again. A device whose profile limits or cap change is rolled again
-- from its first reading: its rows were computed with the old ones (temperature_rollup says which).

CREATE TABLE temperature_hourly (
    device_id    text             NOT NULL,
    hour         timestamptz      NOT NULL,
    readings     integer          NOT NULL,
    covered_s    double precision NOT NULL,
    sum_wc       double precision NOT NULL,  -- Σ w·c, c = temp_c to 1e-5 °C
    sum_wk       double precision NOT NULL,  -- Σ w·exp(−ΔH/(R·(c + 273.15)))
    min_c        double precision NOT NULL,
    max_c        double precision NOT NULL,
    in_range_s   double precision NOT NULL,  -- 0 without a profile (the function says NULL)
    above_s      double precision NOT NULL,
    below_s      double precision NOT NULL,
    door_open_s  double precision NOT NULL,
    openings     integer          NOT NULL,
    first_open   boolean,
    last_open    boolean,
    first_ts     timestamptz      NOT NULL,  -- the hour's first reading (it ends the interval before it)
    last_ts      timestamptz      NOT NULL,  -- the hour's last reading: its ts, weight and values
    last_w       double precision NOT NULL,
    last_c       double precision NOT NULL,
    last_temp    real             NOT NULL,
    PRIMARY KEY (device_id, hour)
);

CREATE INDEX temperature_hourly_hour ON temperature_hourly (hour);

CREATE TABLE temperature_rollup (
    device_id     text        PRIMARY KEY,
    rolled_until  timestamptz NOT NULL,  -- every hour before this is in temperature_hourly
    lo            real,                  -- the profile limits and cap the rows were computed with
    hi            real,
    cap_s         integer     NOT NULL,
    rolled_at     timestamptz NOT NULL DEFAULT now()
);

-- Readings that arrived more than five minutes after their ts (ingest, in the same transaction).
CREATE TABLE temperature_late (
    device_id  text        NOT NULL,
    first_ts   timestamptz NOT NULL,
    marked_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- rolling
-- Rolls every temperature sensor (or one) up to the hours complete at `upto`, at most `max_hours`
-- hours per sensor per call (a database migrated with months of readings catches up over a few
-- calls). Returns the hours written. Concurrent calls: the second one returns 0 at once.

CREATE FUNCTION bondwatch_roll_temperatures(
    upto      timestamptz DEFAULT now(),
    device    text DEFAULT NULL,
    max_hours integer DEFAULT 24 * 31
) RETURNS integer
LANGUAGE plpgsql
SET search_path = public, pg_temp SET jit = off AS $$
DECLARE
    dh_r CONSTANT double precision := 83144.0 / 8.314462618;
    dev record;
    written integer := 0;
    n integer;
    lo_h timestamptz;
    hi_h timestamptz;
    cap interval;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7160716) THEN
        RETURN 0;
    END IF;
    -- Late readings seen by this transaction: their hours (and the hour whose last interval they end)
    -- are rolled again. Marks committed after this statement stay for the next call.
    WITH late AS (
        DELETE FROM temperature_late RETURNING device_id, first_ts
    ), first_late AS (
        SELECT device_id, min(first_ts) AS first_ts FROM late GROUP BY device_id
    )
    UPDATE temperature_rollup r
    SET rolled_until = date_trunc('hour', l.first_ts - make_interval(secs => r.cap_s))
    FROM first_late l
    WHERE r.device_id = l.device_id
      AND r.rolled_until > date_trunc('hour', l.first_ts - make_interval(secs => r.cap_s));

    FOR dev IN
        SELECT d.device_id, p.min_c AS lo, p.max_c AS hi, coalesce(p.offline_after_s, 600) AS cap_s,
               r.rolled_until, r.lo AS r_lo, r.hi AS r_hi, r.cap_s AS r_cap
        FROM devices d
        LEFT JOIN profiles p ON p.name = d.profile
        LEFT JOIN temperature_rollup r ON r.device_id = d.device_id
        WHERE d.kind = 'temp' AND (device IS NULL OR d.device_id = device)
        ORDER BY d.device_id
    LOOP
        cap := make_interval(secs => dev.cap_s);
        IF dev.rolled_until IS NOT NULL AND (dev.r_lo IS DISTINCT FROM dev.lo OR dev.r_hi IS DISTINCT FROM dev.hi
                                            OR dev.r_cap <> dev.cap_s) THEN
            DELETE FROM temperature_hourly h WHERE h.device_id = dev.device_id;
            dev.rolled_until := NULL;
        END IF;
        lo_h := coalesce(dev.rolled_until,
                         (SELECT date_trunc('hour', min(t.ts)) FROM temperatures t WHERE t.device_id = dev.device_id));
        CONTINUE WHEN lo_h IS NULL;  -- no readings yet
        -- Ten minutes' margin: a reading that touches an hour already rolled arrives more than five
        -- minutes after its ts, so ingest marks it.
        hi_h := least(date_trunc('hour', upto - cap - interval '10 minutes'), lo_h + make_interval(hours => max_hours));
        CONTINUE WHEN hi_h <= lo_h;

        DELETE FROM temperature_hourly h WHERE h.device_id = dev.device_id AND h.hour >= lo_h AND h.hour < hi_h;
        INSERT INTO temperature_hourly (device_id, hour, readings, covered_s, sum_wc, sum_wk, min_c, max_c,
                                        in_range_s, above_s, below_s, door_open_s, openings, first_open,
                                        last_open, first_ts, last_ts, last_w, last_c, last_temp)
        SELECT dev.device_id, x.hour, count(*), sum(x.w), sum(x.w * x.c),
               sum(x.w * exp(-dh_r / (x.c + 273.15::double precision))), min(x.c), max(x.c),
               coalesce(sum(x.w) FILTER (WHERE x.temp_c >= dev.lo AND x.temp_c <= dev.hi), 0),
               coalesce(sum(x.w) FILTER (WHERE x.temp_c > dev.hi), 0),
               coalesce(sum(x.w) FILTER (WHERE x.temp_c < dev.lo), 0),
               coalesce(sum(x.w) FILTER (WHERE x.door_open), 0),
               count(*) FILTER (WHERE NOT x.first_in_hour AND x.door_open AND NOT coalesce(x.prev_door, false)),
               (array_agg(x.door_open ORDER BY x.ts, x.seq))[1],
               (array_agg(x.door_open ORDER BY x.ts DESC, x.seq DESC))[1],
               min(x.ts),
               max(x.ts),
               (array_agg(x.w ORDER BY x.ts DESC, x.seq DESC))[1],
               (array_agg(x.c ORDER BY x.ts DESC, x.seq DESC))[1],
               (array_agg(x.temp_c ORDER BY x.ts DESC, x.seq DESC))[1]
        FROM (
            SELECT t.ts, t.seq, t.temp_c, t.door_open, date_trunc('hour', t.ts) AS hour,
                   round(t.temp_c::double precision * 1e5::double precision) / 1e5::double precision AS c,
                   date_part('epoch', least(lead(t.ts) OVER w, t.ts + cap) - t.ts) AS w,
                   lag(t.door_open) OVER w AS prev_door,
                   date_trunc('hour', lag(t.ts) OVER w) IS DISTINCT FROM date_trunc('hour', t.ts) AS first_in_hour
            FROM temperatures t
            WHERE t.device_id = dev.device_id AND t.ts >= lo_h AND t.ts < hi_h + cap
            WINDOW w AS (ORDER BY t.ts, t.seq)
        ) AS x
        WHERE x.ts < hi_h
        GROUP BY x.hour;
        GET DIAGNOSTICS n = ROW_COUNT;
        written := written + n;

        INSERT INTO temperature_rollup (device_id, rolled_until, lo, hi, cap_s, rolled_at)
        VALUES (dev.device_id, hi_h, dev.lo, dev.hi, dev.cap_s, now())
        ON CONFLICT (device_id) DO UPDATE
        SET rolled_until = EXCLUDED.rolled_until, lo = EXCLUDED.lo, hi = EXCLUDED.hi, cap_s = EXCLUDED.cap_s,
            rolled_at = EXCLUDED.rolled_at;
    END LOOP;
    RETURN written;
END
$$;

COMMENT ON FUNCTION bondwatch_roll_temperatures(timestamptz, text, integer) IS
    'Rolls temperature readings into temperature_hourly up to the hours complete at upto (all sensors or one); '
    'returns the hours written. See migration 0007 and docs/coldchain.md.';

-- ---------------------------------------------------------------- reading
-- bondwatch_coldchain_many: bondwatch_coldchain's rows for many sensors in one query (a dashboard of
-- 300 rooms makes one call, not 300), with the sensor as the first column. Same arguments, columns
-- and definition as bondwatch_coldchain in migration 0004 (see there and docs/coldchain.md), which is
-- now this function for one sensor.
--
-- Per sensor, the hours [h0, hc) come from the rollup: the whole hours inside the window, rolled
-- with the profile in force now, when every local period boundary is on an hour (a zone whose
-- offset has minutes reads the readings alone). Readings in [from_ts, h0) and [hc, to_ts) are
-- weighed as before (the first reading in the rolled hours ends the interval of the last one before
-- them); the rolled hours are summed, and the last rolled reading's interval is cut at to_ts when no
-- reading in the window follows it.

DROP FUNCTION bondwatch_coldchain(text, timestamptz, timestamptz, text, text);

CREATE FUNCTION bondwatch_coldchain_many(
    devices text[],
    from_ts timestamptz,
    to_ts   timestamptz,
    bucket  text DEFAULT 'day',
    tz      text DEFAULT 'Asia/Shanghai'
) RETURNS TABLE (
    device_id       text,
    period_start    timestamptz,
    readings        bigint,
    covered_s       double precision,
    mean_c          double precision,
    min_c           double precision,
    max_c           double precision,
    mkt_c           double precision,
    in_range_s      double precision,
    above_s         double precision,
    below_s         double precision,
    out_of_range_s  double precision,
    in_range_pct    double precision,
    door_open_s     double precision
)
LANGUAGE plpgsql STABLE ROWS 1000
SET search_path = public, pg_temp SET jit = off AS $$
#variable_conflict use_column
DECLARE
    dh_r CONSTANT double precision := 83144.0 / 8.314462618;
    unit text;
    h0 timestamptz;
    whole_hours boolean;
BEGIN
    IF devices IS NULL OR array_position(devices, NULL) IS NOT NULL OR from_ts IS NULL OR to_ts IS NULL
       OR tz IS NULL THEN
        RAISE EXCEPTION 'bondwatch_coldchain: device, from_ts, to_ts and tz must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF bucket IS NULL OR bucket NOT IN ('day', 'month', 'total') THEN
        RAISE EXCEPTION 'bondwatch_coldchain: bucket must be day, month or total (got %)', coalesce(bucket, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_ts >= to_ts THEN
        RAISE EXCEPTION 'bondwatch_coldchain: from_ts (%) must be before to_ts (%)', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    unit := nullif(bucket, 'total');
    h0 := date_trunc('hour', from_ts);
    IF h0 < from_ts THEN
        h0 := h0 + interval '1 hour';
    END IF;
    whole_hours := date_part('minute', from_ts AT TIME ZONE tz - from_ts AT TIME ZONE 'UTC') = 0
                   AND date_part('minute', to_ts AT TIME ZONE tz - to_ts AT TIME ZONE 'UTC') = 0;

    RETURN QUERY
    WITH devs AS (
        SELECT u.device_id, make_interval(secs => coalesce(p.offline_after_s, 600)) AS cap,
               p.name IS NOT NULL AS has_profile, p.min_c AS lo, p.max_c AS hi,
               CASE WHEN r.hc > h0 THEN h0 ELSE to_ts END AS h0,
               CASE WHEN r.hc > h0 THEN r.hc ELSE to_ts END AS hc
        FROM (SELECT DISTINCT x AS device_id FROM unnest(devices) AS x) AS u
        LEFT JOIN devices d ON d.device_id = u.device_id
        LEFT JOIN profiles p ON p.name = d.profile
        LEFT JOIN LATERAL (
            SELECT least(date_trunc('hour', to_ts), ro.rolled_until) AS hc
            FROM temperature_rollup ro
            WHERE ro.device_id = u.device_id AND whole_hours
              AND ro.lo IS NOT DISTINCT FROM p.min_c AND ro.hi IS NOT DISTINCT FROM p.max_c
              AND ro.cap_s = coalesce(p.offline_after_s, 600)
        ) AS r ON true
    ),
    raw AS (
        -- Per sensor, range scans of its index for the window before its rolled hours and after them (none
        -- when empty), and the first rolled reading's ts, which ends the interval of the last one before.
        SELECT dv.device_id, t.ts, t.seq, t.temp_c, t.door_open, true AS counted
        FROM devs dv
        CROSS JOIN LATERAL (
            SELECT t.ts, t.seq, t.temp_c, t.door_open FROM temperatures t
            WHERE from_ts < dv.h0 AND t.device_id = dv.device_id AND t.ts >= from_ts AND t.ts < dv.h0
            UNION ALL
            SELECT t.ts, t.seq, t.temp_c, t.door_open FROM temperatures t
            WHERE dv.hc < to_ts AND t.device_id = dv.device_id AND t.ts >= dv.hc AND t.ts < to_ts
        ) AS t
        UNION ALL
        SELECT dv.device_id, f.first_ts, 0, NULL, NULL, false
        FROM devs dv
        CROSS JOIN LATERAL (
            SELECT hh.first_ts FROM temperature_hourly hh
            WHERE from_ts < dv.h0 AND hh.device_id = dv.device_id AND hh.hour >= dv.h0 AND hh.hour < dv.hc
            ORDER BY hh.hour LIMIT 1
        ) AS f
    ),
    r AS (
        SELECT x.device_id, x.counted, x.temp_c,
               round(x.temp_c::double precision * 1e5::double precision) / 1e5::double precision AS c,
               x.door_open, dv.lo, dv.hi,
               coalesce(date_trunc(unit, x.ts AT TIME ZONE tz), from_ts AT TIME ZONE tz) AS local_start,
               date_part('epoch', least(lead(x.ts) OVER (PARTITION BY x.device_id ORDER BY x.ts, x.seq), to_ts,
                                        x.ts + dv.cap) - x.ts) AS w
        FROM raw x
        JOIN devs dv ON dv.device_id = x.device_id
    ),
    parts AS (
        SELECT r.device_id, r.local_start, count(*) AS n, sum(r.w) AS covered, sum(r.w * r.c) AS wt,
               min(r.c) AS lo_c, max(r.c) AS hi_c, sum(r.w * exp(-dh_r / (r.c + 273.15::double precision))) AS wk,
               coalesce(sum(r.w) FILTER (WHERE r.temp_c >= r.lo AND r.temp_c <= r.hi), 0) AS inside,
               coalesce(sum(r.w) FILTER (WHERE r.temp_c > r.hi), 0) AS above,
               coalesce(sum(r.w) FILTER (WHERE r.temp_c < r.lo), 0) AS below,
               coalesce(sum(r.w) FILTER (WHERE r.door_open), 0) AS door
        FROM r
        WHERE r.counted
        GROUP BY r.device_id, r.local_start
        UNION ALL
        -- The part of an hour's last interval after to_ts is taken off (x seconds, of its last reading): only the
        -- last rolled hour can have one (any other hour's last interval ends at a later reading, before to_ts).
        SELECT h.device_id, h.local_start,
               sum(h.readings), sum(h.covered_s) - sum(h.x), sum(h.sum_wc) - sum(h.x * h.last_c), min(h.min_c),
               max(h.max_c),
               sum(h.sum_wk) - coalesce(sum(h.x * exp(-dh_r / (h.last_c + 273.15::double precision)))
                                        FILTER (WHERE h.x > 0), 0),
               sum(h.in_range_s) - coalesce(sum(h.x) FILTER (WHERE h.last_temp >= h.lo AND h.last_temp <= h.hi), 0),
               sum(h.above_s) - coalesce(sum(h.x) FILTER (WHERE h.last_temp > h.hi), 0),
               sum(h.below_s) - coalesce(sum(h.x) FILTER (WHERE h.last_temp < h.lo), 0),
               sum(h.door_open_s) - coalesce(sum(h.x) FILTER (WHERE h.last_open), 0)
        FROM (
            SELECT dv.device_id, hh.readings, hh.covered_s, hh.sum_wc, hh.sum_wk, hh.min_c, hh.max_c, hh.in_range_s,
                   hh.above_s, hh.below_s, hh.door_open_s, hh.last_c, hh.last_temp, hh.last_open, dv.lo, dv.hi,
                   coalesce(date_trunc(unit, hh.hour AT TIME ZONE tz), from_ts AT TIME ZONE tz) AS local_start,
                   greatest(0, date_part('epoch', hh.last_ts - to_ts) + hh.last_w) AS x
            FROM devs dv
            JOIN temperature_hourly hh ON hh.device_id = dv.device_id
            -- The window's bounds as constants too, so a week is a range of the hour index, a month a scan.
            WHERE hh.hour >= h0 AND hh.hour < date_trunc('hour', to_ts)
              AND hh.hour >= dv.h0 AND hh.hour < dv.hc
        ) AS h
        GROUP BY 1, 2
    ),
    by_period AS (
        SELECT p.device_id, p.local_start, sum(p.n) AS n, sum(p.covered) AS covered, sum(p.wt) AS wt,
               min(p.lo_c) AS lo_c, max(p.hi_c) AS hi_c, sum(p.wk) AS wk, sum(p.inside) AS inside,
               sum(p.above) AS above, sum(p.below) AS below, sum(p.door) AS door
        FROM parts p
        GROUP BY p.device_id, p.local_start
    ),
    periods AS (
        SELECT from_ts AT TIME ZONE tz AS local_start
        WHERE unit IS NULL
        UNION ALL
        SELECT g
        FROM generate_series(date_trunc(unit, from_ts AT TIME ZONE tz), to_ts AT TIME ZONE tz,
                             ('1 ' || unit)::interval) AS g
        WHERE unit IS NOT NULL AND g < to_ts AT TIME ZONE tz
    )
    SELECT dv.device_id,
           CASE WHEN unit IS NULL THEN from_ts ELSE pe.local_start AT TIME ZONE tz END,
           coalesce(b.n, 0)::bigint,
           coalesce(b.covered, 0),
           b.wt / nullif(b.covered, 0),
           b.lo_c,
           b.hi_c,
           dh_r / -ln(b.wk / nullif(b.covered, 0)) - 273.15::double precision,
           CASE WHEN dv.has_profile THEN coalesce(b.inside, 0) END,
           CASE WHEN dv.has_profile THEN coalesce(b.above, 0) END,
           CASE WHEN dv.has_profile THEN coalesce(b.below, 0) END,
           CASE WHEN dv.has_profile THEN coalesce(b.above + b.below, 0) END,
           CASE WHEN dv.has_profile THEN 100 * b.inside / nullif(b.covered, 0) END,
           coalesce(b.door, 0)
    FROM devs dv
    CROSS JOIN periods pe
    LEFT JOIN by_period b ON b.device_id = dv.device_id AND b.local_start = pe.local_start
    ORDER BY dv.device_id, pe.local_start;
END
$$;

COMMENT ON FUNCTION bondwatch_coldchain_many(text[], timestamptz, timestamptz, text, text) IS
    'bondwatch_coldchain for many sensors in one query, the sensor first. See docs/coldchain.md.';

CREATE FUNCTION bondwatch_coldchain(
    device  text,
    from_ts timestamptz,
    to_ts   timestamptz,
    bucket  text DEFAULT 'day',
    tz      text DEFAULT 'Asia/Shanghai'
) RETURNS TABLE (
    period_start    timestamptz,
    readings        bigint,
    covered_s       double precision,
    mean_c          double precision,
    min_c           double precision,
    max_c           double precision,
    mkt_c           double precision,
    in_range_s      double precision,
    above_s         double precision,
    below_s         double precision,
    out_of_range_s  double precision,
    in_range_pct    double precision,
    door_open_s     double precision
)
LANGUAGE sql STABLE
SET search_path = public, pg_temp SET jit = off AS $$
    SELECT c.period_start, c.readings, c.covered_s, c.mean_c, c.min_c, c.max_c, c.mkt_c, c.in_range_s, c.above_s,
           c.below_s, c.out_of_range_s, c.in_range_pct, c.door_open_s
    FROM bondwatch_coldchain_many(ARRAY[device], from_ts, to_ts, bucket, tz) AS c
    ORDER BY c.period_start
$$;

COMMENT ON FUNCTION bondwatch_coldchain(text, timestamptz, timestamptz, text, text) IS
    'Cold-chain statistics of one sensor per local day/month (or the whole window: bucket total): '
    'time-weighted mean, min, max, mean kinetic temperature (ΔH 83.144 kJ/mol), seconds in/above/below '
    'the profile range and with the door open. See docs/coldchain.md.';

-- Door openings in [from_ts, to_ts) per sensor: readings whose door is open after a reading whose door
-- was not (closed or not reported); the first reading of the window counts when open. Rolled hours
-- count their own openings, plus one when an hour's first reading is open after a part whose last was
-- not.
CREATE FUNCTION bondwatch_door_openings_many(devices text[], from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (device_id text, openings bigint)
LANGUAGE sql STABLE ROWS 1000
SET search_path = public, pg_temp SET jit = off AS $$
    WITH devs AS (
        SELECT u.device_id,
               CASE WHEN r.hc > g.h0 THEN g.h0 ELSE to_ts END AS h0,
               CASE WHEN r.hc > g.h0 THEN r.hc ELSE to_ts END AS hc
        FROM (SELECT DISTINCT x AS device_id FROM unnest(devices) AS x) AS u
        CROSS JOIN (
            SELECT date_trunc('hour', from_ts) + CASE WHEN date_trunc('hour', from_ts) < from_ts
                                                      THEN interval '1 hour' ELSE interval '0' END AS h0
        ) AS g
        LEFT JOIN devices d ON d.device_id = u.device_id
        LEFT JOIN profiles p ON p.name = d.profile
        LEFT JOIN LATERAL (
            SELECT least(date_trunc('hour', to_ts), ro.rolled_until) AS hc
            FROM temperature_rollup ro
            WHERE ro.device_id = u.device_id
              AND ro.lo IS NOT DISTINCT FROM p.min_c AND ro.hi IS NOT DISTINCT FROM p.max_c
              AND ro.cap_s = coalesce(p.offline_after_s, 600)
        ) AS r ON true
    ),
    parts AS (
        SELECT dv.device_id, t.ts AS at, t.seq, 0::bigint AS openings, t.door_open AS first_open,
               t.door_open AS last_open
        FROM devs dv
        CROSS JOIN LATERAL (
            SELECT t.ts, t.seq, t.door_open FROM temperatures t
            WHERE from_ts < dv.h0 AND t.device_id = dv.device_id AND t.ts >= from_ts AND t.ts < dv.h0
            UNION ALL
            SELECT t.ts, t.seq, t.door_open FROM temperatures t
            WHERE dv.hc < to_ts AND t.device_id = dv.device_id AND t.ts >= dv.hc AND t.ts < to_ts
        ) AS t
        UNION ALL
        SELECT dv.device_id, h.hour, 0, h.openings, h.first_open, h.last_open
        FROM devs dv
        JOIN temperature_hourly h ON h.device_id = dv.device_id
        WHERE h.hour >= date_trunc('hour', from_ts) AND h.hour < date_trunc('hour', to_ts)
          AND h.hour >= dv.h0 AND h.hour < dv.hc
    )
    SELECT dv.device_id, coalesce(sum(p.openings + CASE WHEN p.first_open AND NOT coalesce(p.prev, false)
                                                        THEN 1 ELSE 0 END), 0)::bigint
    FROM devs dv
    LEFT JOIN (
        SELECT parts.*, lag(parts.last_open) OVER (PARTITION BY parts.device_id ORDER BY parts.at, parts.seq) AS prev
        FROM parts
    ) AS p ON p.device_id = dv.device_id
    GROUP BY dv.device_id
    ORDER BY dv.device_id
$$;

CREATE FUNCTION bondwatch_door_openings(device text, from_ts timestamptz, to_ts timestamptz)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = public, pg_temp SET jit = off AS $$
    SELECT o.openings FROM bondwatch_door_openings_many(ARRAY[device], from_ts, to_ts) AS o
$$;

DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'bondwatch_coldchain_many(text[], timestamptz, timestamptz, text, text)',
        'bondwatch_coldchain(text, timestamptz, timestamptz, text, text)',
        'bondwatch_door_openings_many(text[], timestamptz, timestamptz)',
        'bondwatch_door_openings(text, timestamptz, timestamptz)'
    ] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO bondwatch_writer, bondwatch_reader', f);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION bondwatch_roll_temperatures(timestamptz, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bondwatch_roll_temperatures(timestamptz, text, integer) TO bondwatch_writer;
REVOKE ALL ON temperature_late FROM bondwatch_reader;
