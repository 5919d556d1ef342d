-- Version 5: the stops route plans name each parcel for, so a scan of a parcel at another stop
-- is recognised as a mis-sort. Filled from the plans already stored.
CREATE TABLE stop_parcels (
    parcel  TEXT NOT NULL,
    stop_id TEXT NOT NULL,
    PRIMARY KEY (parcel, stop_id)
);
CREATE INDEX stop_parcels_by_stop ON stop_parcels(stop_id);
INSERT OR IGNORE INTO stop_parcels (parcel, stop_id)
SELECT p.value, json_extract(s.value, '$.stop_id')
FROM routes r, json_each(r.plan_json, '$.stops') s, json_each(s.value, '$.parcels') p;
