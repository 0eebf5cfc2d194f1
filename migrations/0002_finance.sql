-- The cost audit trail: append-only and hash-chained (each row carries the previous row's
-- hash; see src/finance/audit.rs). Rows are never updated or deleted by the application.
CREATE TABLE cost_audit (
    seq          INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    kind         TEXT NOT NULL,
    job_id       TEXT,
    payload_json TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX cost_audit_kind ON cost_audit(kind, seq);
