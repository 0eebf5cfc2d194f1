//! The embedded SQLite store: one file under the data dir, WAL mode, migrations from
//! `migrations/` applied in order and tracked with `PRAGMA user_version`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{DaySpend, HistoryEvent, JobRecord, MemoryEntry, NewEvent, NewJob, StepCommit, Store, StoreError};
use crate::memory::Section;
use crate::pipeline::machine::State;

/// Migrations in order; the index + 1 is the schema version after applying it.
const MIGRATIONS: [&str; 4] = [
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_finance.sql"),
    include_str!("../../migrations/0003_service.sql"),
    include_str!("../../migrations/0004_cache.sql"),
];

/// SQLite behind a mutex: writes are serialised by SQLite anyway, and one connection keeps
/// the transaction logic simple. Calls are short (milliseconds).
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Open (or create) the database file and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Setup(format!("create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::migrate(conn)
    }

    /// A private in-memory database, for tests and benchmarks.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::migrate(Connection::open_in_memory()?)
    }

    fn migrate(mut conn: Connection) -> Result<Self, StoreError> {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version as usize > MIGRATIONS.len() {
            return Err(StoreError::Setup(format!(
                "database schema version {version} is newer than this binary knows ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(Self { conn: Mutex::new(conn) })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back on drop), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The store's timestamp format (RFC 3339, microseconds, UTC).
pub(super) fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A stored timestamp; a malformed one is an error, not the epoch.
pub(super) fn parse_time(s: String) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn json_col<T: serde::de::DeserializeOwned>(idx: usize, s: String) -> rusqlite::Result<T> {
    serde_json::from_str(&s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

/// The `jobs` columns [`job_from_row`] reads, in order.
pub(super) const JOB_COLUMNS: &str =
    "id, created_at, updated_at, state_json, request_json, preset, brand_id, auto_approve";

/// States in which no worker has anything to do: ended, or waiting for a human.
pub(super) const IDLE_STATES: &str = "'delivered', 'cancelled', 'failed', 'plan_review', 'awaiting_review'";

/// A job row selected with [`JOB_COLUMNS`].
pub(super) fn job_from_row(r: &Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        id: r.get(0)?,
        created_at: parse_time(r.get(1)?)?,
        updated_at: parse_time(r.get(2)?)?,
        state: json_col(3, r.get(3)?)?,
        request: json_col(4, r.get(4)?)?,
        preset: r.get(5)?,
        brand_id: r.get(6)?,
        auto_approve: r.get(7)?,
    })
}

/// Insert a new job row in `Init` (inside the caller's transaction, if any).
pub(super) fn insert_job(conn: &Connection, job: &NewJob) -> Result<(), StoreError> {
    let state = State::Init {};
    conn.execute(
        "INSERT INTO jobs (id, created_at, updated_at, state, state_json, request_json, preset, brand_id, auto_approve)
         VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            job.id,
            now(),
            state.name(),
            serde_json::to_string(&state)?,
            serde_json::to_string(&job.request)?,
            job.preset,
            job.brand_id,
            job.auto_approve
        ],
    )?;
    Ok(())
}

fn insert_event(tx: &Connection, job_id: &str, from: &State, to: &State, e: &NewEvent) -> Result<(), StoreError> {
    let detail = e.detail.as_ref().map(serde_json::to_string).transpose()?;
    tx.execute(
        "INSERT INTO job_events (job_id, seq, at, from_state, to_state, event, duration_ms, attempt, error, detail_json)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![job_id, now(), from.name(), to.name(), e.event, e.duration_ms as i64, e.attempt, e.error, detail],
    )?;
    Ok(())
}

impl Store for SqliteStore {
    fn create_job(&self, job: &NewJob) -> Result<JobRecord, StoreError> {
        insert_job(&self.conn(), job)?;
        self.job(&job.id)
    }

    fn job(&self, id: &str) -> Result<JobRecord, StoreError> {
        self.conn()
            .query_row(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"), [id], job_from_row)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(id.to_owned()))
    }

    fn commit_step(&self, step: &StepCommit) -> Result<(), StoreError> {
        let mut conn = self.conn();
        // Immediate: the audit chain's tail is read and extended in this transaction.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: Option<(String, Option<String>)> = tx
            .query_row("SELECT state_json, owner FROM jobs WHERE id = ?1", [&step.job_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let (current, owner): (State, Option<String>) = match current {
            Some((s, owner)) => (serde_json::from_str(&s)?, owner),
            None => return Err(StoreError::NotFound(step.job_id.clone())),
        };
        step.check(&current, owner.as_deref())?;
        let t = now();
        for w in &step.writes {
            let metadata = w.metadata.as_ref().map(serde_json::to_string).transpose()?;
            tx.execute(
                "INSERT INTO job_memory (job_id, section, version, written_at, author, content_json, metadata_json)
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(version), 0) + 1 FROM job_memory WHERE job_id = ?1 AND section = ?2),
                         ?3, ?4, ?5, ?6)",
                params![step.job_id, w.section.as_str(), t, w.author, serde_json::to_string(&w.content)?, metadata],
            )?;
        }
        let mut audited = Vec::new();
        for a in &step.audit {
            let entry = super::finance::append_in(&tx, a.kind, Some(&step.job_id), &a.payload)?;
            audited.push(serde_json::json!({"kind": entry.kind, "seq": entry.seq, "hash": entry.hash}));
        }
        for entry in &step.cache {
            super::cache::put_in(&tx, entry)?;
        }
        let mut event = step.event.clone();
        if !audited.is_empty() {
            let detail = event.detail.get_or_insert_with(|| serde_json::json!({}));
            if let Some(map) = detail.as_object_mut() {
                map.insert("audit".into(), serde_json::Value::Array(audited));
            }
        }
        insert_event(&tx, &step.job_id, &step.from, &step.to, &event)?;
        tx.execute(
            "UPDATE jobs SET state = ?2, state_json = ?3, updated_at = ?4 WHERE id = ?1",
            params![step.job_id, step.to.name(), serde_json::to_string(&step.to)?, t],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn append_event(&self, job_id: &str, state: &State, event: &NewEvent) -> Result<(), StoreError> {
        let conn = self.conn();
        insert_event(&conn, job_id, state, state, event)
    }

    fn history(&self, id: &str) -> Result<Vec<HistoryEvent>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT seq, at, from_state, to_state, event, duration_ms, attempt, error, detail_json
             FROM job_events WHERE job_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(HistoryEvent {
                seq: r.get(0)?,
                at: parse_time(r.get(1)?)?,
                from: r.get(2)?,
                to: r.get(3)?,
                event: r.get(4)?,
                duration_ms: r.get::<_, i64>(5)? as u64,
                attempt: r.get(6)?,
                error: r.get(7)?,
                detail: r.get::<_, Option<String>>(8)?.map(|s| json_col(8, s)).transpose()?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn memory(&self, id: &str) -> Result<BTreeMap<Section, MemoryEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT m.section, m.version, m.written_at, m.author, m.content_json, m.metadata_json
             FROM job_memory m
             WHERE m.job_id = ?1
               AND m.version = (SELECT MAX(version) FROM job_memory WHERE job_id = m.job_id AND section = m.section)",
        )?;
        let rows = stmt.query_map([id], |r| {
            let section: String = r.get(0)?;
            Ok((section, memory_entry(r, 1)?))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (name, entry) = row?;
            // Sections this binary does not know (written by a newer version) are skipped.
            if let Ok(section) = name.parse::<Section>() {
                out.insert(section, entry);
            }
        }
        Ok(out)
    }

    fn section(&self, id: &str, section: Section) -> Result<Option<MemoryEntry>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT version, written_at, author, content_json, metadata_json FROM job_memory
                 WHERE job_id = ?1 AND section = ?2 ORDER BY version DESC LIMIT 1",
                params![id, section.as_str()],
                |r| memory_entry(r, 0),
            )
            .optional()?)
    }

    fn list_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC"))?;
        let rows = stmt.query_map([], job_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn day_spend(&self, day: chrono::NaiveDate) -> Result<DaySpend, StoreError> {
        // `$.cost.actual.total` is `DeliveryManifest::actual_total` (memory::sections);
        // `day_spend_reads_the_typed_delivery_manifest` ties the two together.
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "WITH today AS (SELECT id FROM jobs WHERE substr(created_at, 1, 10) = ?1),
             reconciled AS (
                 SELECT m.job_id, json_extract(m.content_json, '$.cost.actual.total') AS total
                 FROM job_memory m JOIN today t ON t.id = m.job_id
                 WHERE m.section = 'delivery_manifest'
                   AND m.version = (SELECT MAX(version) FROM job_memory
                                    WHERE job_id = m.job_id AND section = 'delivery_manifest')
                   AND json_extract(m.content_json, '$.cost.actual.total') IS NOT NULL)
             SELECT (SELECT COUNT(*) FROM today),
                    (SELECT COALESCE(SUM(total), 0.0) FROM reconciled),
                    (SELECT COALESCE(SUM(json_extract(e.detail_json, '$.cpu_ms')), 0.0)
                     FROM job_events e JOIN today t ON t.id = e.job_id
                     WHERE e.job_id NOT IN (SELECT job_id FROM reconciled))",
        )?;
        let (jobs, reconciled_usd, cpu_ms): (i64, f64, f64) =
            stmt.query_row([day.format("%Y-%m-%d").to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(DaySpend { jobs: jobs as usize, reconciled_usd, unreconciled_cpu_s: cpu_ms / 1000.0 })
    }

    fn resumable_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state NOT IN ({IDLE_STATES}) ORDER BY created_at"
        ))?;
        let rows = stmt.query_map([], job_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn job_owner(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row("SELECT owner FROM jobs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(id.to_owned()))
    }
}

/// A memory version row (version, written_at, author, content_json, metadata_json) whose
/// columns start at `first`.
pub(super) fn memory_entry(r: &Row<'_>, first: usize) -> rusqlite::Result<MemoryEntry> {
    Ok(MemoryEntry {
        version: r.get(first)?,
        written_at: parse_time(r.get(first + 1)?)?,
        author: r.get(first + 2)?,
        content: json_col(first + 3, r.get(first + 3)?)?,
        metadata: r.get::<_, Option<String>>(first + 4)?.map(|s| json_col(first + 4, s)).transpose()?,
    })
}
