-- Version 4: event ids are looked up at push, so an id reused with another intent is refused
-- instead of colliding in the stop's fold.
CREATE INDEX events_by_event_id ON events(event_id);
