-- Monthly operations reports (月度运行情况通报), kept as issued. See docs/reports.md.
--
-- One row per local month and format (json, csv, pdf): the exact bytes that were served, and their
-- SHA-256, so a report fetched again (or compared with a copy someone e-mailed) is the same document.
-- `bondwatch serve` writes the previous month on the report day (BONDWATCH_REPORT_DAY, the 25th);
-- GET /reports/monthly and `bondwatch report monthly` write a complete month they had to generate.
-- The job decides what is due from this table, not from memory, so a restart never issues twice.
--
-- A database serves one site (README): month and format identify a report; `site` records whose it is.
-- The grants of `bondwatch db migrate` cover the table (writer: read and write; reader: read); the
-- trigger below keeps issued reports from being changed or deleted by the services.

CREATE TABLE monthly_reports (
    month         date        NOT NULL CHECK (extract(day FROM month) = 1),  -- first day of the local month
    format        text        NOT NULL CHECK (format IN ('json', 'csv', 'pdf')),
    site          text        NOT NULL,
    generated_at  timestamptz NOT NULL,
    content       bytea       NOT NULL,
    sha256        text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- Who stored it: the scheduled job, or a request that generated a complete month.
    stored_by     text        NOT NULL DEFAULT 'job' CHECK (stored_by IN ('job', 'request', 'cli')),
    stored_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (month, format),
    CHECK (sha256 = encode(sha256(content), 'hex'))
);

-- An issued report is a record (通报存档): the services' role may add one, never rewrite or remove it.
-- The schema owner (or a superuser) still may, e.g. to withdraw a report issued from wrong data;
-- migrate's GRANTS give the writer group UPDATE and DELETE on every table, hence a trigger, not REVOKE.
CREATE FUNCTION bondwatch_monthly_reports_keep() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND rolsuper)
       AND current_user <> (SELECT tableowner FROM pg_tables
                            WHERE schemaname = TG_TABLE_SCHEMA AND tablename = TG_TABLE_NAME) THEN
        RAISE EXCEPTION 'monthly_reports: an issued report (% %) is kept as issued', OLD.month, OLD.format
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER monthly_reports_keep BEFORE UPDATE OR DELETE ON monthly_reports
    FOR EACH ROW EXECUTE FUNCTION bondwatch_monthly_reports_keep();
