"""The memory store's SQLite schema: its tables and columns, how a new file is made, how older files migrate.

core/store.py reads and writes it; core/store_file.py checks that a file on disk holds it.
"""

from __future__ import annotations

# 2 added places.seen_empty and places.returns; 3 added items.arrived; 4 added items.settled; 5 added
# places.stay_sightings and places.since_stay; 6 added schema_version.map_frame; 7 added schema_version.clock.
# Older files are migrated in place.
SCHEMA_VERSION = 7

POSE = ("x", "y", "z", "qx", "qy", "qz", "qw")
ITEM_COLUMNS = ("item", "next_place_id", *POSE, "stamp", "confidence", "place_id", "arrived", "settled")
PLACE_COLUMNS = (
    "item", "place_id", *POSE, "dwell_s", "observations", "first_seen", "last_seen", "seen_empty", "returns",
    "stay_sightings", "since_stay",
)
TABLES = {"schema_version": ("version", "map_frame", "clock"), "items": ITEM_COLUMNS, "places": PLACE_COLUMNS}
TABLES_V6 = {**TABLES, "schema_version": ("version", "map_frame")}
TABLES_V5 = {**TABLES, "schema_version": ("version",)}
TABLES_V4 = {**TABLES_V5, "places": PLACE_COLUMNS[:-2]}
TABLES_V3 = {**TABLES_V4, "items": ITEM_COLUMNS[:-1]}
TABLES_V2 = {**TABLES_V4, "items": ITEM_COLUMNS[:-2]}
TABLES_V1 = {**TABLES_V2, "places": PLACE_COLUMNS[:-4]}
NEVER = -1.0e300  # seen_empty of a place never seen empty (SQLite REAL has no portable -inf literal)

# One script, one transaction: a kill during creation leaves an empty file, never half a schema.
CREATE = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL,
    map_frame TEXT NOT NULL DEFAULT '',  -- the frame the positions are in (MemoryStore.claim_frame); '' not yet said
    clock REAL NOT NULL DEFAULT -1e300   -- s, the item memory's clock (its latest frame); -1e300 none yet
);
CREATE TABLE IF NOT EXISTS items (       -- one row per item: its last confirmed observation
    item TEXT PRIMARY KEY,
    next_place_id INTEGER NOT NULL,      -- per-item id counter, so ids are never reused
    x REAL NOT NULL, y REAL NOT NULL, z REAL NOT NULL,                        -- m, map frame
    qx REAL NOT NULL, qy REAL NOT NULL, qz REAL NOT NULL, qw REAL NOT NULL,   -- map frame
    stamp REAL NOT NULL,                 -- s
    confidence REAL NOT NULL,            -- 0..1
    place_id INTEGER NOT NULL,           -- the place this observation was assigned to
    arrived REAL NOT NULL,               -- s, first sighting at that place since the item was seen elsewhere
    settled INTEGER NOT NULL             -- place_id of its last stay (item_memory: what earns a return); -1 none
);
CREATE TABLE IF NOT EXISTS places (      -- the places an item has been at
    item TEXT NOT NULL,
    place_id INTEGER NOT NULL,
    x REAL NOT NULL, y REAL NOT NULL, z REAL NOT NULL,                        -- centre, m, map frame
    qx REAL NOT NULL, qy REAL NOT NULL, qz REAL NOT NULL, qw REAL NOT NULL,   -- mean orientation
    dwell_s REAL NOT NULL,               -- s observed at this place
    observations INTEGER NOT NULL,
    first_seen REAL NOT NULL,            -- s
    last_seen REAL NOT NULL,             -- s
    seen_empty REAL NOT NULL,            -- s, last time the place was in view without the item; -1e300 never
    returns INTEGER NOT NULL,            -- times the item came back here from elsewhere
    stay_sightings INTEGER NOT NULL,     -- sightings here towards a stay (item_memory), since the last at the last stay
    since_stay INTEGER NOT NULL,         -- 1: made since the item's last stay (a stay here is no return), else 0
    PRIMARY KEY (item, place_id)
) WITHOUT ROWID;
INSERT INTO schema_version (version) SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM schema_version);
COMMIT;
"""

# One transaction: a kill leaves the version-1 file as it was, and it is migrated again on the next start.
MIGRATE_1_TO_2 = f"""
BEGIN IMMEDIATE;
ALTER TABLE places ADD COLUMN seen_empty REAL NOT NULL DEFAULT {NEVER};
ALTER TABLE places ADD COLUMN returns INTEGER NOT NULL DEFAULT 0;
UPDATE schema_version SET version = 2;
COMMIT;
"""

# A migrated item "arrived" at its last sighting: the latest it can have, so the return prior counts the
# least time away (it errs towards the last sighting, as it does everywhere).
MIGRATE_2_TO_3 = """
BEGIN IMMEDIATE;
ALTER TABLE items ADD COLUMN arrived REAL NOT NULL DEFAULT 0;
UPDATE items SET arrived = stamp;
UPDATE schema_version SET version = 3;
COMMIT;
"""
# A migrated item "settled" where it was last seen: its next stay elsewhere earns a return, as a sighting there
# did before version 4.
MIGRATE_3_TO_4 = """
BEGIN IMMEDIATE;
ALTER TABLE items ADD COLUMN settled INTEGER NOT NULL DEFAULT -1;
UPDATE items SET settled = place_id;
UPDATE schema_version SET version = 4;
COMMIT;
"""
# A migrated place has no sighting towards a stay and counts as known before the last stay, as every place did
# after a restart before version 5.
MIGRATE_4_TO_5 = """
BEGIN IMMEDIATE;
ALTER TABLE places ADD COLUMN stay_sightings INTEGER NOT NULL DEFAULT 0;
ALTER TABLE places ADD COLUMN since_stay INTEGER NOT NULL DEFAULT 0;
UPDATE schema_version SET version = 5;
COMMIT;
"""
# A migrated file does not say its frame: the first node or run to open it says it (MemoryStore.claim_frame).
MIGRATE_5_TO_6 = """
BEGIN IMMEDIATE;
ALTER TABLE schema_version ADD COLUMN map_frame TEXT NOT NULL DEFAULT '';
UPDATE schema_version SET version = 6;
COMMIT;
"""
# A migrated file has no clock: the item memory starts at its latest remembered time, as it did before version 7.
MIGRATE_6_TO_7 = f"""
BEGIN IMMEDIATE;
ALTER TABLE schema_version ADD COLUMN clock REAL NOT NULL DEFAULT {NEVER};
UPDATE schema_version SET version = 7;
COMMIT;
"""
