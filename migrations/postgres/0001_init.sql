-- The PostgreSQL schema: the same tables as the SQLite migrations 0001-0004 (timestamps as
-- RFC 3339 text with microseconds, JSON as text, so both backends store identical documents),
-- plus the worker lease: `lease_until` is when the owner's claim lapses unless it heartbeats.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    state        TEXT NOT NULL,
    state_json   TEXT NOT NULL,
    request_json TEXT NOT NULL,
    preset       TEXT,
    brand_id     TEXT,
    auto_approve BOOLEAN NOT NULL DEFAULT FALSE,
    owner        TEXT,
    lease_until  TIMESTAMPTZ
);
CREATE INDEX jobs_state ON jobs(state);
CREATE INDEX jobs_created ON jobs(created_at, id);

CREATE TABLE job_events (
    job_id      TEXT NOT NULL REFERENCES jobs(id),
    seq         BIGINT NOT NULL,
    at          TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    event       TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    attempt     BIGINT NOT NULL,
    error       TEXT,
    detail_json TEXT,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE job_memory (
    job_id        TEXT NOT NULL REFERENCES jobs(id),
    section       TEXT NOT NULL,
    version       BIGINT NOT NULL,
    written_at    TEXT NOT NULL,
    author        TEXT NOT NULL,
    content_json  TEXT NOT NULL,
    metadata_json TEXT,
    PRIMARY KEY (job_id, section, version)
);

CREATE TABLE cost_audit (
    seq          BIGINT PRIMARY KEY,
    at           TEXT NOT NULL,
    kind         TEXT NOT NULL,
    job_id       TEXT,
    payload_json TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX cost_audit_kind ON cost_audit(kind, seq);

CREATE TABLE api_keys (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    key_sha256  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE idempotency_keys (
    key_name    TEXT NOT NULL,
    idem_key    TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    job_id      TEXT NOT NULL REFERENCES jobs(id),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (key_name, idem_key)
);

CREATE TABLE job_api (
    job_id         TEXT PRIMARY KEY REFERENCES jobs(id),
    submitted_by   TEXT NOT NULL,
    callback_url   TEXT,
    webhook_secret TEXT
);

CREATE TABLE comments (
    id         BIGSERIAL PRIMARY KEY,
    job_id     TEXT NOT NULL REFERENCES jobs(id),
    section    TEXT NOT NULL,
    parent_id  BIGINT REFERENCES comments(id),
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX comments_job ON comments(job_id, section);

CREATE TABLE webhook_deliveries (
    job_id      TEXT NOT NULL REFERENCES jobs(id),
    attempt     BIGINT NOT NULL,
    at          TEXT NOT NULL,
    url         TEXT NOT NULL,
    state       TEXT NOT NULL,
    http_status INTEGER,
    error       TEXT,
    PRIMARY KEY (job_id, state, attempt)
);

CREATE TABLE cache_entries (
    kind       TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    brand      TEXT,
    value      TEXT   NOT NULL,
    embedding  TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX cache_entries_brand ON cache_entries (kind, brand, created_at);
