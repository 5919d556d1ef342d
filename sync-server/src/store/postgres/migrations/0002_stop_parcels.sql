-- The stops route plans name each parcel for, so a scan of a parcel at another stop is
-- recognised as a mis-sort. Filled from the plans already stored.
CREATE TABLE stop_parcels (
    parcel  TEXT COLLATE "C" NOT NULL,
    stop_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (parcel, stop_id)
);
CREATE INDEX stop_parcels_by_stop ON stop_parcels(stop_id);
INSERT INTO stop_parcels (parcel, stop_id)
SELECT DISTINCT p.parcel, s.stop ->> 'stop_id'
FROM routes r,
     jsonb_array_elements(r.plan_json::jsonb -> 'stops') AS s(stop),
     jsonb_array_elements_text(s.stop -> 'parcels') AS p(parcel)
ON CONFLICT DO NOTHING;
