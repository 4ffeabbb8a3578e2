-- Retention of readings, the same way on both TimescaleDB editions.
--
-- The Apache edition (Debian's package) refuses retention and compression policies, so the
-- platform's own scheduled job calls this function; where the community edition is present,
-- `bondwatch db migrate` also adds the native policies. The function runs with the owner's rights
-- (drop_chunks needs them) but the services' role may only call it, with at least 30 days kept.

CREATE FUNCTION bondwatch_drop_expired(keep interval) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    dropped integer := 0;
    hypertable text;
BEGIN
    IF keep < interval '30 days' THEN
        RAISE EXCEPTION 'refusing to keep less than 30 days of readings (asked: %)', keep;
    END IF;
    FOREACH hypertable IN ARRAY ARRAY['positions', 'temperatures', 'rfid_reads'] LOOP
        dropped := dropped + coalesce(array_length(ARRAY(
            SELECT drop_chunks(hypertable::regclass, older_than => now() - keep)), 1), 0);
    END LOOP;
    RETURN dropped;
END
$$;

REVOKE ALL ON FUNCTION bondwatch_drop_expired(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bondwatch_drop_expired(interval) TO bondwatch_writer;
