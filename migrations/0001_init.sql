-- Jobs, their history and their memory. One row per job; history and memory are append-only.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    state        TEXT NOT NULL,            -- state name, for filtering
    state_json   TEXT NOT NULL,            -- the full machine state (serde)
    request_json TEXT NOT NULL,            -- the brief as submitted
    preset       TEXT,
    brand_id     TEXT,
    auto_approve INTEGER NOT NULL DEFAULT 0,
    owner        TEXT                      -- the process that drives the job now (NULL = free)
);
CREATE INDEX jobs_state ON jobs(state);

CREATE TABLE job_events (
    job_id      TEXT NOT NULL REFERENCES jobs(id),
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    event       TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    error       TEXT,
    detail_json TEXT,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE job_memory (
    job_id        TEXT NOT NULL REFERENCES jobs(id),
    section       TEXT NOT NULL,
    version       INTEGER NOT NULL,
    written_at    TEXT NOT NULL,
    author        TEXT NOT NULL,
    content_json  TEXT NOT NULL,
    metadata_json TEXT,
    PRIMARY KEY (job_id, section, version)
);
