-- The service: API keys, idempotency, per-job API options, comment threads and webhook
-- deliveries. Job claiming uses the existing jobs.owner column.
CREATE TABLE api_keys (
    name        TEXT PRIMARY KEY,          -- who: shown as the author of edits and comments
    role        TEXT NOT NULL,             -- admin | editor | viewer
    key_sha256  TEXT NOT NULL UNIQUE,      -- hex SHA-256 of the secret; the secret is never stored
    created_at  TEXT NOT NULL
);

CREATE TABLE idempotency_keys (
    key_name    TEXT NOT NULL,             -- the API key that used it (keys are per client)
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
    webhook_secret TEXT                    -- HMAC key for this job's callbacks, returned once
);

CREATE TABLE comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     TEXT NOT NULL REFERENCES jobs(id),
    section    TEXT NOT NULL,
    parent_id  INTEGER REFERENCES comments(id),
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX comments_job ON comments(job_id, section);

CREATE TABLE webhook_deliveries (
    job_id      TEXT NOT NULL REFERENCES jobs(id),
    attempt     INTEGER NOT NULL,
    at          TEXT NOT NULL,
    url         TEXT NOT NULL,
    state       TEXT NOT NULL,             -- the terminal state announced
    http_status INTEGER,
    error       TEXT,
    PRIMARY KEY (job_id, state, attempt)
);

CREATE INDEX jobs_created ON jobs(created_at, id);
