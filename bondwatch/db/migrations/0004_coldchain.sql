-- Cold-chain statistics of one temperature sensor, per local day or month, as one SQL function:
-- the API (GET /sensors/{id}/coldchain), the monthly report and Grafana all call it, so they all
-- share one definition. See docs/coldchain.md.
--
--   SELECT * FROM bondwatch_coldchain('cr3-probe-1', '2026-11-01+08', '2026-12-01+08', 'day');
--
-- Time weighting: a reading stands for the time until the device's next reading, capped at the
-- profile's offline_after_s (600 s without a profile): a gap longer than that is silence, not
-- temperature. The last reading in the window counts up to min(to_ts, ts + cap). Only readings with
-- from_ts <= ts < to_ts count (one before from_ts does not reach into the window).
-- A reading's whole interval is attributed to the period its ts falls in; intervals are at most
-- `cap` long, so an interval that crosses midnight is not split (at most cap seconds move between
-- neighbouring days, and the totals are exact).
--
-- Periods: bucket 'day' or 'month' are calendar days / months in `tz`
-- (date_trunc(bucket, ts AT TIME ZONE tz) AT TIME ZONE tz); every period that overlaps the window
-- gets a row, those without readings with readings = 0, covered_s = 0 and NULL temperatures.
-- bucket 'total' gives exactly one row for the whole window, with period_start = from_ts.
--
-- Mean kinetic temperature (平均动力学温度), ΔH = 83.144 kJ/mol, R = 8.314462618 J/(mol·K):
--   MKT = (ΔH/R) / (−ln(Σ wᵢ·exp(−ΔH/(R·Tᵢ)) / Σ wᵢ)) − 273.15,  Tᵢ = temp_c + 273.15 K,
-- with wᵢ the time weights; equal weights give the USP <1079.2> formula. mean_c is time-weighted too.
-- In/above/below range compare against the device's profile [min_c, max_c] (limits inclusive);
-- without a profile those columns and in_range_pct are NULL.
--
-- Temperatures are stored as real; they are read to 1e-5 °C, which gives back the decimal the device
-- sent (1.1 stays 1.1 rather than 1.100000023841858).
--
-- Cost: one range scan of the temperatures_device_ts index (device_id = device, ts in the window, so
-- only the window's chunks), one sort by (ts, seq) and one aggregate pass; no continuous aggregates
-- (the Apache edition has none).

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
LANGUAGE plpgsql STABLE
-- JIT compiling this plan (its cost passes jit_above_cost at about a month of 1-minute readings) takes
-- longer than running it: measured 0.65 s of 1.9 s for a year of 1-minute readings.
SET search_path = public, pg_temp SET jit = off AS $$
#variable_conflict use_column
DECLARE
    -- ΔH / R in kelvin: 83144 J/mol / 8.314462618 J/(mol·K) ≈ 9999.9 K.
    dh_r CONSTANT double precision := 83144.0 / 8.314462618;
    unit text;  -- date_trunc unit; NULL for 'total'
BEGIN
    IF device IS NULL OR from_ts IS NULL OR to_ts IS NULL OR tz IS NULL THEN
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

    RETURN QUERY
    WITH prof AS (
        -- Exactly one row, also for a device that is not registered.
        SELECT make_interval(secs => coalesce(p.offline_after_s, 600)) AS cap,
               p.name IS NOT NULL AS has_profile, p.min_c AS lo, p.max_c AS hi
        FROM (SELECT 1) AS one
        LEFT JOIN devices d ON d.device_id = device
        LEFT JOIN profiles p ON p.name = d.profile
    ),
    r AS (
        -- temp_c is real; c is it to 1e-5 °C, which gives back the decimal the device sent (1.1, not
        -- 1.100000023841858). The profile limits are compared with the stored reals.
        SELECT t.temp_c, round(t.temp_c::double precision * 1e5::double precision) / 1e5::double precision AS c,
               t.door_open,
               coalesce(date_trunc(unit, t.ts AT TIME ZONE tz), from_ts AT TIME ZONE tz) AS local_start,
               -- The weight in seconds; least() skips the NULL lead() of the last reading.
               date_part('epoch', least(lead(t.ts) OVER (ORDER BY t.ts, t.seq), to_ts, t.ts + prof.cap) - t.ts) AS w,
               prof.lo, prof.hi
        FROM temperatures t, prof
        WHERE t.device_id = device AND t.ts >= from_ts AND t.ts < to_ts
    ),
    by_period AS (
        SELECT r.local_start,
               count(*) AS n,
               sum(r.w) AS covered,
               sum(r.w * r.c) AS wt,
               min(r.c) AS lo_c,
               max(r.c) AS hi_c,
               sum(r.w * exp(-dh_r / (r.c + 273.15::double precision))) AS wk,
               coalesce(sum(r.w) FILTER (WHERE r.temp_c >= r.lo AND r.temp_c <= r.hi), 0) AS inside,
               coalesce(sum(r.w) FILTER (WHERE r.temp_c > r.hi), 0) AS above,
               coalesce(sum(r.w) FILTER (WHERE r.temp_c < r.lo), 0) AS below,
               coalesce(sum(r.w) FILTER (WHERE r.door_open), 0) AS door
        FROM r
        GROUP BY r.local_start
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
    SELECT CASE WHEN unit IS NULL THEN from_ts ELSE pe.local_start AT TIME ZONE tz END,
           coalesce(b.n, 0),
           coalesce(b.covered, 0),
           b.wt / nullif(b.covered, 0),
           b.lo_c,
           b.hi_c,
           dh_r / -ln(b.wk / nullif(b.covered, 0)) - 273.15::double precision,
           CASE WHEN prof.has_profile THEN coalesce(b.inside, 0) END,
           CASE WHEN prof.has_profile THEN coalesce(b.above, 0) END,
           CASE WHEN prof.has_profile THEN coalesce(b.below, 0) END,
           CASE WHEN prof.has_profile THEN coalesce(b.above + b.below, 0) END,
           CASE WHEN prof.has_profile THEN 100 * b.inside / nullif(b.covered, 0) END,
           coalesce(b.door, 0)
    FROM periods pe
    CROSS JOIN prof
    LEFT JOIN by_period b ON b.local_start = pe.local_start
    ORDER BY pe.local_start;
END
$$;

COMMENT ON FUNCTION bondwatch_coldchain(text, timestamptz, timestamptz, text, text) IS
    'Cold-chain statistics of one sensor per local day/month (or the whole window: bucket total): '
    'time-weighted mean, min, max, mean kinetic temperature (ΔH 83.144 kJ/mol), seconds in/above/below '
    'the profile range and with the door open. See docs/coldchain.md.';

REVOKE ALL ON FUNCTION bondwatch_coldchain(text, timestamptz, timestamptz, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bondwatch_coldchain(text, timestamptz, timestamptz, text, text)
    TO bondwatch_writer, bondwatch_reader;
