-- BondWatch schema, version 1: readings (hypertables), registry, alerts, tokens, dead letters.
-- All times are timestamptz (stored as UTC); reports cut days and months in Asia/Shanghai.

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- Group roles: the services log in as members of bondwatch_writer, Grafana as a member of
-- bondwatch_reader. Neither may change the schema.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bondwatch_writer') THEN
        CREATE ROLE bondwatch_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bondwatch_reader') THEN
        CREATE ROLE bondwatch_reader NOLOGIN;
    END IF;
END
$$;

-- ---------------------------------------------------------------- readings
-- Identity of a reading is (device_id, seq). A hypertable's unique index must contain its time
-- column, and a retransmitted reading carries its original ts, so (device_id, seq, ts) makes every
-- repeat on the wire land once.

CREATE TABLE positions (
    ts           timestamptz      NOT NULL,
    device_id    text             NOT NULL,
    seq          bigint           NOT NULL,
    received_at  timestamptz      NOT NULL DEFAULT now(),
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    fix          text             NOT NULL CHECK (fix IN ('none', '2d', '3d')),
    speed_kmh    real,
    heading_deg  real,
    hdop         real,
    sats         smallint,
    soc_pct      real,
    energy_kwh   double precision,
    h2_kg        double precision,
    odometer_km  double precision
);
SELECT create_hypertable('positions', 'ts', chunk_time_interval => interval '1 day');
CREATE UNIQUE INDEX positions_identity ON positions (device_id, seq, ts);
CREATE INDEX positions_device_ts ON positions (device_id, ts DESC);

CREATE TABLE temperatures (
    ts           timestamptz NOT NULL,
    device_id    text        NOT NULL,
    seq          bigint      NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    temp_c       real        NOT NULL,
    rh_pct       real,
    door_open    boolean,
    battery_v    real
);
SELECT create_hypertable('temperatures', 'ts', chunk_time_interval => interval '1 day');
CREATE UNIQUE INDEX temperatures_identity ON temperatures (device_id, seq, ts);
CREATE INDEX temperatures_device_ts ON temperatures (device_id, ts DESC);

CREATE TABLE rfid_reads (
    ts           timestamptz NOT NULL,
    device_id    text        NOT NULL,
    seq          bigint      NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    epc          text        NOT NULL,
    antenna      integer,
    rssi_dbm     real,
    gate_id      text,
    direction    text CHECK (direction IN ('in', 'out'))
);
SELECT create_hypertable('rfid_reads', 'ts', chunk_time_interval => interval '1 day');
CREATE UNIQUE INDEX rfid_reads_identity ON rfid_reads (device_id, seq, ts);
CREATE INDEX rfid_reads_epc_ts ON rfid_reads (epc, ts DESC);
CREATE INDEX rfid_reads_gate_ts ON rfid_reads (gate_id, ts DESC);

-- Latest reading of each device, kept by ingest so that "current state" never scans history.
-- It only moves forward in ts: late data never overwrites a newer state.
CREATE TABLE device_latest (
    device_id    text        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('gps', 'temp', 'rfid')),
    ts           timestamptz NOT NULL,
    seq          bigint      NOT NULL,
    received_at  timestamptz NOT NULL,
    reading      jsonb       NOT NULL
);

-- Retained online/offline status (including last wills).
CREATE TABLE device_status (
    device_id    text        PRIMARY KEY,
    online       boolean     NOT NULL,
    ts           timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- Every message that broke the contract, byte for byte, with the reason.
CREATE TABLE dead_letters (
    id           bigserial   PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    topic        text        NOT NULL,
    payload      bytea       NOT NULL,
    reason       text        NOT NULL,
    device_id    text,
    kind         text
);
CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);

-- ---------------------------------------------------------------- registry
CREATE TABLE profiles (
    name                text PRIMARY KEY,
    min_c               real    NOT NULL,
    max_c               real    NOT NULL,
    delay_s             integer NOT NULL CHECK (delay_s >= 0),
    hysteresis_c        real    NOT NULL CHECK (hysteresis_c >= 0),
    pre_alarm_margin_c  real    NOT NULL CHECK (pre_alarm_margin_c >= 0),
    offline_after_s     integer NOT NULL CHECK (offline_after_s > 0),
    description         text,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (min_c < max_c)
);

CREATE TABLE devices (
    device_id   text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    kind        text NOT NULL CHECK (kind IN ('gps', 'temp', 'rfid')),
    name        text NOT NULL,
    vehicle_id  text,
    gate_id     text,
    profile     text REFERENCES profiles (name),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE geofences (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('bonded_boundary', 'zone', 'corridor', 'gate')),
    feature     jsonb NOT NULL,
    width_m     real CHECK (width_m IS NULL OR width_m > 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'corridor' OR width_m IS NOT NULL)
);

CREATE TABLE vehicles (
    vehicle_id        text PRIMARY KEY,
    name              text NOT NULL,
    plate             text NOT NULL,
    device_id         text,
    bonded_transport  boolean NOT NULL DEFAULT false,
    corridor_id       text REFERENCES geofences (id),
    tag_epc           text,
    gps_lost_after_s  integer NOT NULL DEFAULT 120 CHECK (gps_lost_after_s > 0),
    low_soc_pct       real    NOT NULL DEFAULT 20 CHECK (low_soc_pct BETWEEN 0 AND 100),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX vehicles_device ON vehicles (device_id) WHERE device_id IS NOT NULL;

CREATE TABLE tags (
    epc             text PRIMARY KEY CHECK (epc ~ '^[0-9A-F]{24,124}$'),
    kind            text NOT NULL CHECK (kind IN ('vehicle', 'cargo')),
    customs_status  text NOT NULL CHECK (customs_status IN ('bonded', 'non_bonded')),
    vehicle_id      text REFERENCES vehicles (vehicle_id),
    description     text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE release_notes (
    id           text PRIMARY KEY,
    vehicle_id   text NOT NULL REFERENCES vehicles (vehicle_id),
    epcs         text[] NOT NULL,
    valid_from   timestamptz NOT NULL,
    valid_until  timestamptz NOT NULL,
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_from < valid_until)
);
CREATE INDEX release_notes_vehicle ON release_notes (vehicle_id, valid_until DESC);

-- ---------------------------------------------------------------- alerts and access
CREATE TABLE alerts (
    id            bigserial PRIMARY KEY,
    type          text NOT NULL,
    severity      text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
    status        text NOT NULL CHECK (status IN ('active', 'acknowledged', 'cleared')),
    subject_kind  text NOT NULL,
    subject_id    text NOT NULL,
    opened_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    cleared_at    timestamptz,
    acked_by      text,
    acked_at      timestamptz,
    note          text,
    details       jsonb NOT NULL DEFAULT '{}'
);
-- One open alert per (type, subject): a repeat updates it.
CREATE UNIQUE INDEX alerts_one_open ON alerts (type, subject_id) WHERE status <> 'cleared';
CREATE INDEX alerts_opened ON alerts (opened_at DESC);

CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'dispatcher', 'admin')),
    token_hash    bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
