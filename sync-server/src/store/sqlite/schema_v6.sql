-- Version 6: shippers, their integration tokens (hashed) and their orders, every version kept.
CREATE TABLE shippers (
    shipper_id TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE
);
CREATE TABLE integration_tokens (
    token_hash TEXT PRIMARY KEY,
    shipper_id TEXT NOT NULL REFERENCES shippers(shipper_id)
);
-- The current version of each order.
CREATE TABLE orders (
    shipper_id     TEXT NOT NULL REFERENCES shippers(shipper_id),
    external_id    TEXT NOT NULL,
    version        INTEGER NOT NULL,
    fingerprint    TEXT NOT NULL,
    day            TEXT NOT NULL,
    order_json     TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    dispatched     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (shipper_id, external_id)
);
CREATE INDEX orders_by_day ON orders(day);
-- Every version as it arrived; never changed.
CREATE TABLE order_versions (
    shipper_id     TEXT NOT NULL,
    external_id    TEXT NOT NULL,
    version        INTEGER NOT NULL,
    fingerprint    TEXT NOT NULL,
    order_json     TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (shipper_id, external_id, version)
);
