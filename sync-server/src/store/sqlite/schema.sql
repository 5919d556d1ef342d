-- Doorstep server schema, version 1. Applied once; later versions add migrations after it.
CREATE TABLE couriers (
    courier_id TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    region     TEXT NOT NULL DEFAULT ''
);

CREATE TABLE devices (
    device_id          TEXT PRIMARY KEY,
    courier_id         TEXT NOT NULL REFERENCES couriers(courier_id),
    name               TEXT NOT NULL,
    token_hash         TEXT NOT NULL UNIQUE,
    public_key         TEXT,
    enrolled_at_ms     INTEGER NOT NULL,
    last_applied_seq   INTEGER NOT NULL DEFAULT 0,
    last_contact_ms    INTEGER,
    clock_offset_ms    INTEGER,
    clock_skew_flagged INTEGER NOT NULL DEFAULT 0,
    events_rejected    INTEGER NOT NULL DEFAULT 0,
    events_conflicted  INTEGER NOT NULL DEFAULT 0,
    queue_json         TEXT
);

CREATE TABLE enrollment_codes (
    code_hash     TEXT PRIMARY KEY,
    courier_id    TEXT NOT NULL REFERENCES couriers(courier_id),
    expires_at_ms INTEGER NOT NULL,
    used_by       TEXT
);

CREATE TABLE dispatchers (
    token_hash TEXT PRIMARY KEY,
    name       TEXT NOT NULL
);

-- The append-only event log: every processed device event (whatever its outcome) and every
-- office event. `log_seq` is the server receive order.
CREATE TABLE events (
    log_seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL,
    device_id       TEXT,
    device_seq      INTEGER,
    intent_key      TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    stop_id         TEXT,
    hlc_wall        INTEGER NOT NULL,
    hlc_logical     INTEGER NOT NULL,
    device_time_ms  INTEGER,
    received_at_ms  INTEGER NOT NULL,
    clock_offset_ms INTEGER,
    status          TEXT NOT NULL,
    code            TEXT,
    payload         TEXT NOT NULL,
    UNIQUE (device_id, device_seq)
);
CREATE INDEX events_by_stop ON events(stop_id, log_seq);
CREATE INDEX events_by_kind ON events(kind, status);

-- Business intents that took effect, with the fingerprint of their payload.
CREATE TABLE intents (
    intent_key  TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    event_id    TEXT NOT NULL
);

CREATE TABLE routes (
    route_id   TEXT PRIMARY KEY,
    courier_id TEXT NOT NULL REFERENCES couriers(courier_id),
    day        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    plan_json  TEXT NOT NULL
);
CREATE INDEX routes_by_courier ON routes(courier_id);

-- Each stop's convergent state (postcard-encoded StopState) and its derived status.
CREATE TABLE stops (
    stop_id     TEXT PRIMARY KEY,
    route_id    TEXT NOT NULL,
    state       BLOB NOT NULL,
    status      TEXT NOT NULL,
    terminal    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX stops_by_route ON stops(route_id);

-- Every courier a stop was ever assigned to: a device may act on those stops only.
CREATE TABLE stop_assignments (
    stop_id    TEXT NOT NULL,
    courier_id TEXT NOT NULL,
    PRIMARY KEY (stop_id, courier_id)
) WITHOUT ROWID;

-- What each courier's devices must pull: office events, in cursor order.
CREATE TABLE feed (
    cursor     INTEGER PRIMARY KEY AUTOINCREMENT,
    courier_id TEXT NOT NULL,
    log_seq    INTEGER NOT NULL REFERENCES events(log_seq)
);
CREATE INDEX feed_by_courier ON feed(courier_id, cursor);

CREATE TABLE escalations (
    escalation_id TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    priority      INTEGER NOT NULL,
    stop_id       TEXT,
    device_id     TEXT,
    event_id      TEXT,
    opened_at_ms  INTEGER NOT NULL,
    resolved      INTEGER NOT NULL DEFAULT 0,
    detail        TEXT NOT NULL
);
CREATE INDEX escalations_open ON escalations(resolved, priority, opened_at_ms);

CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    done         INTEGER NOT NULL DEFAULT 0,
    status       INTEGER,
    body         TEXT,
    created_ms   INTEGER NOT NULL
);
