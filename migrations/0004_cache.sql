-- Consistency cache, written through from the in-memory moka cache so entries survive a
-- restart. `kind` separates brand consistency markers from delivered-request entries.
CREATE TABLE cache_entries (
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    brand      TEXT,
    value      TEXT    NOT NULL,  -- JSON
    embedding  TEXT,              -- JSON array of f32, for similarity lookups
    created_at INTEGER NOT NULL,  -- unix seconds
    PRIMARY KEY (kind, key)
);
CREATE INDEX cache_entries_brand ON cache_entries (kind, brand, created_at);
