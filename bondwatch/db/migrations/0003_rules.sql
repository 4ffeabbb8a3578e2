-- Rules and alerts: alert history (also the outbox of alert messages), gate passages and their
-- decisions, release notes used up by a pass, the rules engine's checkpointed state, and the
-- notifications that tell the engine and the API's event stream that something changed.

-- ---------------------------------------------------------------- alerts
-- raised_at is the platform's clock when the alert was first written (opened_at is when its rule
-- was met, on the clock the rule judges by: a replayed backlog opens alerts in the past).
ALTER TABLE alerts
    ADD COLUMN raised_at         timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN resolved_by       text,
    ADD COLUMN resolved_at       timestamptz,
    ADD COLUMN escalated_at      timestamptz,
    ADD COLUMN escalation_level  integer NOT NULL DEFAULT 0;
-- An episode of a rule is identified by when it began: replaying the readings that opened it
-- (after a crash, before their acknowledgement) finds it instead of opening it twice.
CREATE UNIQUE INDEX alerts_episode ON alerts (type, subject_id, opened_at);
CREATE INDEX alerts_status_updated ON alerts (status, updated_at DESC);
CREATE INDEX alerts_subject ON alerts (subject_id, opened_at DESC);

-- The alert object of the contract, the one shape the API, the event stream and MQTT all send.
-- Times come out in the session's time zone (the services set Asia/Shanghai: +08:00).
CREATE FUNCTION bondwatch_alert_object(a alerts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', a.id, 'type', a.type, 'severity', a.severity, 'status', a.status,
        'subject_kind', a.subject_kind, 'subject_id', a.subject_id,
        'opened_at', a.opened_at, 'updated_at', a.updated_at, 'cleared_at', a.cleared_at,
        'acked_by', a.acked_by, 'acked_at', a.acked_at, 'note', a.note,
        'resolved_by', a.resolved_by, 'resolved_at', a.resolved_at, 'raised_at', a.raised_at,
        'escalated_at', a.escalated_at, 'escalation_level', a.escalation_level,
        'details', a.details)
$$;

-- Every change of an alert, in order: what happened, who did it, the alert as it then was.
-- Rows with published_at NULL are still to be sent on bw/v1/{site}/alerts/{type}.
-- site: whose relay sends the row (a database normally serves one site; the relay never sends
-- another site's rows on its own topics).
CREATE TABLE alert_events (
    id            bigserial   PRIMARY KEY,
    site          text        NOT NULL,
    alert_id      bigint      NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT now(),
    event         text        NOT NULL CHECK (event IN ('opened', 'acknowledged', 'resolved', 'cleared', 'escalated')),
    actor         text,
    note          text,
    alert         jsonb       NOT NULL,
    published_at  timestamptz
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);
CREATE INDEX alert_events_unpublished ON alert_events (id) WHERE published_at IS NULL;

CREATE FUNCTION bondwatch_alert_event_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bondwatch_alerts', NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER alert_events_notify AFTER INSERT ON alert_events
    FOR EACH ROW EXECUTE FUNCTION bondwatch_alert_event_notify();

-- ---------------------------------------------------------------- gates
-- One passage: the tag reads of one gate within the passage window. Outbound passages carry the
-- decision published on bw/v1/{site}/gate/{gate_id}/decision (published_at once sent).
CREATE TABLE gate_passages (
    id               text        PRIMARY KEY,
    site             text        NOT NULL,
    gate_id          text        NOT NULL,
    direction        text        NOT NULL CHECK (direction IN ('in', 'out')),
    vehicle_id       text,
    vehicle_epc      text,
    epcs             text[]      NOT NULL,
    cargo_epcs       text[]      NOT NULL,
    missing_epcs     text[]      NOT NULL DEFAULT '{}',  -- on the note, not read (reported, not held)
    reads            integer     NOT NULL,
    readers          text[]      NOT NULL,
    first_read_at    timestamptz NOT NULL,
    last_read_at     timestamptz NOT NULL,
    decided_at       timestamptz NOT NULL DEFAULT now(),
    decision         text        CHECK (decision IN ('pass', 'hold')),
    reasons          jsonb       NOT NULL DEFAULT '[]',
    release_note_id  text,
    published_at     timestamptz,
    CHECK (direction = 'in' OR decision IS NOT NULL)
);
CREATE INDEX gate_passages_gate ON gate_passages (gate_id, first_read_at DESC);
CREATE INDEX gate_passages_vehicle ON gate_passages (vehicle_id, first_read_at DESC);
CREATE INDEX gate_passages_epcs ON gate_passages USING gin (epcs);
CREATE INDEX gate_passages_unpublished ON gate_passages (decided_at) WHERE published_at IS NULL AND decision IS NOT NULL;

-- A release note lets its goods out once: the pass that uses it is recorded on it.
ALTER TABLE release_notes
    ADD COLUMN used_at          timestamptz,
    ADD COLUMN used_passage_id  text;

-- ---------------------------------------------------------------- the engine's memory
-- What each rule knows about each subject (pending conditions, last fix, passage being read),
-- checkpointed with the readings it has acknowledged to the broker; one engine per site.
CREATE TABLE rule_state (
    site        text        NOT NULL,
    rule        text        NOT NULL,
    subject     text        NOT NULL,
    state       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, rule, subject)
);

-- ---------------------------------------------------------------- registry changes
-- Whoever writes the registry (the API, psql, a migration), the engine hears of it and reloads.
CREATE FUNCTION bondwatch_registry_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bondwatch_registry', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['geofences', 'devices', 'profiles', 'vehicles', 'tags', 'release_notes'] LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION bondwatch_registry_notify()', t || '_notify', t);
    END LOOP;
END
$$;
