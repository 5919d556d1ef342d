-- Version 4: event ids are looked up at push, so an id reused with another intent is refused
-- instead of colliding in the stop's fold.
CREATE INDEX events_by_event_id ON events(event_id);

-- The stamp of the last office event, so office events are stamped in order whatever clock the
-- recording server has.
CREATE TABLE office_clock (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    hlc_wall    INTEGER NOT NULL,
    hlc_logical INTEGER NOT NULL
);
INSERT INTO office_clock (id, hlc_wall, hlc_logical)
SELECT 1, hlc_wall, hlc_logical FROM events WHERE device_id IS NULL
ORDER BY hlc_wall DESC, hlc_logical DESC LIMIT 1;

-- Single-use live-stream tickets, kept in the database so any server can redeem them.
CREATE TABLE live_tickets (
    ticket_hash   TEXT PRIMARY KEY,
    dispatcher    TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
