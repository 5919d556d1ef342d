-- Shippers, their integration tokens (hashed) and their orders, every version kept.
CREATE TABLE shippers (
    shipper_id TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL UNIQUE
);
CREATE TABLE integration_tokens (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    shipper_id TEXT COLLATE "C" NOT NULL REFERENCES shippers(shipper_id)
);
-- The current version of each order.
CREATE TABLE orders (
    shipper_id     TEXT COLLATE "C" NOT NULL REFERENCES shippers(shipper_id),
    external_id    TEXT COLLATE "C" NOT NULL,
    version        BIGINT NOT NULL,
    fingerprint    TEXT COLLATE "C" NOT NULL,
    day            TEXT COLLATE "C" NOT NULL,
    order_json     TEXT COLLATE "C" NOT NULL,
    received_at_ms BIGINT NOT NULL,
    dispatched     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (shipper_id, external_id)
);
CREATE INDEX orders_by_day ON orders(day);
-- Every version as it arrived; never changed.
CREATE TABLE order_versions (
    shipper_id     TEXT COLLATE "C" NOT NULL,
    external_id    TEXT COLLATE "C" NOT NULL,
    version        BIGINT NOT NULL,
    fingerprint    TEXT COLLATE "C" NOT NULL,
    order_json     TEXT COLLATE "C" NOT NULL,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (shipper_id, external_id, version)
);
