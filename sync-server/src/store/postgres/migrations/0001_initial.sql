-- Doorstep server schema on PostgreSQL, version 1: the tables and columns of the SQLite schema
-- v1..v3 in one step (no PostgreSQL database ever existed at an earlier SQLite version, so the
-- v3 evidence-head backfill has nothing to backfill). Integers are BIGINT, blobs BYTEA, flags
-- BOOLEAN. Identifier, name and day columns use the "C" collation so that comparisons and
-- ORDER BY are byte-wise, as in SQLite, whatever the database's default collation is.
-- JSON payloads stay TEXT (byte-exact as written); queries cast them to jsonb where they look
-- inside.

CREATE TABLE couriers (
    courier_id TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL,
    region     TEXT COLLATE "C" NOT NULL DEFAULT ''
);

CREATE TABLE devices (
    device_id          TEXT COLLATE "C" PRIMARY KEY,
    courier_id         TEXT COLLATE "C" NOT NULL REFERENCES couriers(courier_id),
    name               TEXT COLLATE "C" NOT NULL,
    token_hash         TEXT COLLATE "C" NOT NULL UNIQUE,
    public_key         TEXT,
    enrolled_at_ms     BIGINT NOT NULL,
    last_applied_seq   BIGINT NOT NULL DEFAULT 0,
    last_contact_ms    BIGINT,
    clock_offset_ms    BIGINT,
    clock_skew_flagged BOOLEAN NOT NULL DEFAULT FALSE,
    events_rejected    BIGINT NOT NULL DEFAULT 0,
    events_conflicted  BIGINT NOT NULL DEFAULT 0,
    queue_json         TEXT,
    -- The statement digest of the device's last signed proof whose signature verified ('' before
    -- the first): the device's next signed proof must link to it.
    evidence_head      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX devices_by_courier ON devices(courier_id);

CREATE TABLE enrollment_codes (
    code_hash     TEXT COLLATE "C" PRIMARY KEY,
    courier_id    TEXT COLLATE "C" NOT NULL REFERENCES couriers(courier_id),
    expires_at_ms BIGINT NOT NULL,
    used_by       TEXT COLLATE "C"
);

CREATE TABLE dispatchers (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL
);

-- The append-only event log: every processed device event (whatever its outcome) and every
-- office event. `log_seq` is the server receive order. An identity value is taken when the row is
-- inserted but becomes visible at commit, so concurrent writers can make a smaller `log_seq`
-- visible after a larger one.
CREATE TABLE events (
    log_seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        TEXT COLLATE "C" NOT NULL,
    device_id       TEXT COLLATE "C",
    device_seq      BIGINT,
    intent_key      TEXT COLLATE "C" NOT NULL,
    fingerprint     TEXT COLLATE "C" NOT NULL,
    kind            TEXT COLLATE "C" NOT NULL,
    stop_id         TEXT COLLATE "C",
    hlc_wall        BIGINT NOT NULL,
    hlc_logical     BIGINT NOT NULL,
    device_time_ms  BIGINT,
    received_at_ms  BIGINT NOT NULL,
    clock_offset_ms BIGINT,
    status          TEXT COLLATE "C" NOT NULL,
    code            TEXT COLLATE "C",
    payload         TEXT NOT NULL,
    UNIQUE (device_id, device_seq)
);
CREATE INDEX events_by_stop ON events(stop_id, log_seq);
CREATE INDEX events_by_kind ON events(kind, status);
CREATE INDEX events_by_received ON events(received_at_ms);
-- Event ids are looked up at push, so an id reused with another intent is refused.
CREATE INDEX events_by_event_id ON events(event_id);

-- Business intents that took effect, with the fingerprint of their payload.
CREATE TABLE intents (
    intent_key  TEXT COLLATE "C" PRIMARY KEY,
    fingerprint TEXT COLLATE "C" NOT NULL,
    event_id    TEXT COLLATE "C" NOT NULL
);

CREATE TABLE routes (
    route_id   TEXT COLLATE "C" PRIMARY KEY,
    courier_id TEXT COLLATE "C" NOT NULL REFERENCES couriers(courier_id),
    day        TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    plan_json  TEXT NOT NULL
);
CREATE INDEX routes_by_courier ON routes(courier_id);

-- Each stop's convergent state (postcard-encoded StopState) and its derived status.
CREATE TABLE stops (
    stop_id     TEXT COLLATE "C" PRIMARY KEY,
    route_id    TEXT COLLATE "C" NOT NULL,
    state       BYTEA NOT NULL,
    status      TEXT COLLATE "C" NOT NULL,
    terminal    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX stops_by_route ON stops(route_id);

-- Every courier a stop was ever assigned to: a device may act on those stops only.
CREATE TABLE stop_assignments (
    stop_id    TEXT COLLATE "C" NOT NULL,
    courier_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (stop_id, courier_id)
);

-- What each courier's devices must pull: office events, in cursor order. Like `events.log_seq`,
-- a cursor is taken at insert and visible at commit: writers of this table must be serialised
-- (or readers must stop at a safe watermark) for a reader resuming after a cursor to miss nothing.
CREATE TABLE feed (
    cursor     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    courier_id TEXT COLLATE "C" NOT NULL,
    log_seq    BIGINT NOT NULL REFERENCES events(log_seq)
);
CREATE INDEX feed_by_courier ON feed(courier_id, cursor);

CREATE TABLE escalations (
    escalation_id TEXT COLLATE "C" PRIMARY KEY,
    kind          TEXT COLLATE "C" NOT NULL,
    priority      BIGINT NOT NULL,
    stop_id       TEXT COLLATE "C",
    device_id     TEXT COLLATE "C",
    event_id      TEXT COLLATE "C",
    opened_at_ms  BIGINT NOT NULL,
    resolved      BOOLEAN NOT NULL DEFAULT FALSE,
    detail        TEXT NOT NULL
);
CREATE INDEX escalations_open ON escalations(resolved, priority, opened_at_ms);

CREATE TABLE idempotency_keys (
    key          TEXT COLLATE "C" PRIMARY KEY,
    request_hash TEXT COLLATE "C" NOT NULL,
    done         BOOLEAN NOT NULL DEFAULT FALSE,
    status       BIGINT,
    body         TEXT,
    created_ms   BIGINT NOT NULL
);

-- The office's contact attempts with a stop's customer, one row per recorded contact command
-- (keyed by its intent), so the store can count the unsuccessful ones.
CREATE TABLE contact_attempts (
    intent_key TEXT COLLATE "C" PRIMARY KEY,
    stop_id    TEXT COLLATE "C" NOT NULL,
    reached    BOOLEAN NOT NULL
);
CREATE INDEX contact_attempts_by_stop ON contact_attempts (stop_id, reached);

-- One row per open upload session; its bytes so far are in the blob store's staging file.
CREATE TABLE upload_sessions (
    upload_id     TEXT COLLATE "C" PRIMARY KEY,
    digest        TEXT COLLATE "C" NOT NULL,
    size          BIGINT NOT NULL,
    offset_bytes  BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX upload_sessions_by_expiry ON upload_sessions(expires_at_ms);

-- The stamp of the last office event (one row), locked by every office command: office commands
-- are serialised across replicas, so feed cursors become visible in the order they are taken and
-- office stamps never go back behind one already recorded.
CREATE TABLE office_clock (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    hlc_wall    BIGINT NOT NULL,
    hlc_logical BIGINT NOT NULL
);
INSERT INTO office_clock (id, hlc_wall, hlc_logical) VALUES (1, 0, 0);

-- Single-use live-stream tickets, kept in the database so any replica can redeem them.
CREATE TABLE live_tickets (
    ticket_hash   TEXT COLLATE "C" PRIMARY KEY,
    dispatcher    TEXT COLLATE "C" NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
