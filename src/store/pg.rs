//! The PostgreSQL store, for many workers on many machines sharing one database.
//!
//! Same tables and documents as the SQLite store (migrations under `migrations/postgres/`,
//! tracked in `schema_migrations`), plus worker leases: a claim sets `jobs.owner` and
//! `jobs.lease_until`; the owner renews the lease with [`ServiceStore::heartbeat`]; a job
//! whose lease lapsed (its worker was killed, its machine lost) is claimed again by another
//! worker, which journals `lease_taken_over` and resumes from the last committed stage. A step
//! commit names its owner and is refused once the lease was taken over, so a step is never
//! committed twice.
//!
//! The `postgres` client blocks on its own runtime, which must not run on a thread that
//! drives async tasks: every call made from such a thread is moved to a scoped thread
//! ([`PgStore::with_client`]). Calls are short (one statement or one transaction).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::{Client, NoTls, Row, Transaction};
use serde_json::Value;

use super::cache::{CacheEntry, CacheStore};
use super::finance::CostLedger;
use super::service::{
    ApiKeyRecord, Claim, Comment, Cursor, ExecutionStats, IdempotencyClaim, JobApiOptions, JobFilter, ServiceStore,
    StuckJob, Submission,
};
use super::sqlite::now;
use super::{DaySpend, HistoryEvent, JobRecord, MemoryEntry, NewEvent, NewJob, StepCommit, Store, StoreError};
use crate::finance::audit::{AuditEntry, AuditKind};
use crate::finance::pricing::PricingTable;
use crate::memory::sections::CostCertification;
use crate::memory::{MemoryWrite, Section, SectionDoc};
use crate::pipeline::machine::State;
use agents::semantic::SemanticReport;

/// Migrations in order; the index + 1 is the version recorded in `schema_migrations`.
const MIGRATIONS: [&str; 1] = [include_str!("../../migrations/postgres/0001_init.sql")];

/// The channel a submission (or a job freed for any worker) is announced on.
pub const WORK_CHANNEL: &str = "aiprod_work";

/// Advisory-lock keys: one serialises migrations between processes starting together, one
/// serialises appends to the audit chain (its tail is read and extended in one transaction).
const MIGRATION_LOCK: i64 = 0x6169_7072_6f64_0001;
const AUDIT_LOCK: i64 = 0x6169_7072_6f64_0002;

/// Connections per store: enough that the API's reads do not queue behind a worker's commit.
const POOL_SIZE: usize = 4;

/// The `jobs` columns [`job_from_row`] reads, in order.
const JOB_COLUMNS: &str = "id, created_at, updated_at, state_json, request_json, preset, brand_id, auto_approve";

/// States in which no worker has anything to do: ended, or waiting for a human.
const IDLE_STATES: &str = "'delivered', 'cancelled', 'failed', 'plan_review', 'awaiting_review'";

/// The brief's `priority` as a sort key (see the SQLite store's).
const PRIORITY_ORDER: &str =
    "CASE lower(trim(request_json::jsonb ->> 'priority')) WHEN 'high' THEN 0 WHEN 'low' THEN 2 ELSE 1 END";

/// How long a claim lasts without a heartbeat, unless configured.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// PostgreSQL behind a small pool of blocking connections.
pub struct PgStore {
    url: String,
    pool: Vec<Mutex<Client>>,
    next: AtomicUsize,
    lease: Duration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("url", &redact(&self.url)).field("lease", &self.lease).finish()
    }
}

/// A connection URL with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Run `f` where the blocking client may block: on this thread when it drives no async
/// tasks, else on a scoped thread of its own.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn connect(url: &str) -> Result<Client, StoreError> {
    off_runtime(|| Client::connect(url, NoTls))
        .map_err(|e| StoreError::Setup(format!("cannot connect to PostgreSQL at {}: {e}", redact(url))))
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Setup(format!("bad stored time '{s}': {e}")))
}

fn job_from_row(r: &Row) -> Result<JobRecord, StoreError> {
    Ok(JobRecord {
        id: r.try_get(0)?,
        created_at: parse_time(&r.try_get::<_, String>(1)?)?,
        updated_at: parse_time(&r.try_get::<_, String>(2)?)?,
        state: serde_json::from_str(&r.try_get::<_, String>(3)?)?,
        request: serde_json::from_str(&r.try_get::<_, String>(4)?)?,
        preset: r.try_get(5)?,
        brand_id: r.try_get(6)?,
        auto_approve: r.try_get(7)?,
    })
}

/// A memory version row (version, written_at, author, content_json, metadata_json) whose
/// columns start at `first`.
fn memory_entry(r: &Row, first: usize) -> Result<MemoryEntry, StoreError> {
    Ok(MemoryEntry {
        version: r.try_get(first)?,
        written_at: parse_time(&r.try_get::<_, String>(first + 1)?)?,
        author: r.try_get(first + 2)?,
        content: serde_json::from_str(&r.try_get::<_, String>(first + 3)?)?,
        metadata: r.try_get::<_, Option<String>>(first + 4)?.map(|s| serde_json::from_str(&s)).transpose()?,
    })
}

fn jobs(rows: Vec<Row>) -> Result<Vec<JobRecord>, StoreError> {
    rows.iter().map(job_from_row).collect()
}

/// Lock the job row and read its state; `NotFound` when there is none.
fn locked_state(tx: &mut Transaction<'_>, job_id: &str) -> Result<(State, Option<String>), StoreError> {
    let row = tx
        .query_opt("SELECT state_json, owner FROM jobs WHERE id = $1 FOR UPDATE", &[&job_id])?
        .ok_or_else(|| StoreError::NotFound(job_id.to_owned()))?;
    Ok((serde_json::from_str(&row.try_get::<_, String>(0)?)?, row.try_get(1)?))
}

fn insert_event(
    tx: &mut Transaction<'_>,
    job_id: &str,
    from: &State,
    to: &State,
    e: &NewEvent,
) -> Result<(), StoreError> {
    let detail = e.detail.as_ref().map(serde_json::to_string).transpose()?;
    tx.execute(
        "INSERT INTO job_events (job_id, seq, at, from_state, to_state, event, duration_ms, attempt, error, detail_json)
         VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = $1), $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &job_id,
            &now(),
            &from.name(),
            &to.name(),
            &e.event,
            &(e.duration_ms as i64),
            &i64::from(e.attempt),
            &e.error,
            &detail,
        ],
    )?;
    Ok(())
}

fn insert_memory(tx: &mut Transaction<'_>, job_id: &str, w: &MemoryWrite, at: &str) -> Result<(), StoreError> {
    let metadata = w.metadata.as_ref().map(serde_json::to_string).transpose()?;
    tx.execute(
        "INSERT INTO job_memory (job_id, section, version, written_at, author, content_json, metadata_json)
         VALUES ($1, $2, (SELECT COALESCE(MAX(version), 0) + 1 FROM job_memory WHERE job_id = $1 AND section = $2),
                 $3, $4, $5, $6)",
        &[&job_id, &w.section.as_str(), &at, &w.author, &serde_json::to_string(&w.content)?, &metadata],
    )?;
    Ok(())
}

fn insert_job(tx: &mut Transaction<'_>, job: &NewJob) -> Result<(), StoreError> {
    let state = State::Init {};
    tx.execute(
        "INSERT INTO jobs (id, created_at, updated_at, state, state_json, request_json, preset, brand_id, auto_approve)
         VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &job.id,
            &now(),
            &state.name(),
            &serde_json::to_string(&state)?,
            &serde_json::to_string(&job.request)?,
            &job.preset,
            &job.brand_id,
            &job.auto_approve,
        ],
    )?;
    Ok(())
}

fn append_audit(
    tx: &mut Transaction<'_>,
    kind: AuditKind,
    job_id: Option<&str>,
    payload: &Value,
) -> Result<AuditEntry, StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])?;
    let last = tx.query_opt("SELECT seq, hash FROM cost_audit ORDER BY seq DESC LIMIT 1", &[])?;
    let last = last.map(|r| Ok::<_, StoreError>((r.try_get::<_, i64>(0)?, r.try_get::<_, String>(1)?))).transpose()?;
    let e = AuditEntry::after(last, kind, job_id, payload);
    tx.execute(
        "INSERT INTO cost_audit (seq, at, kind, job_id, payload_json, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&e.seq, &e.at, &e.kind, &e.job_id, &e.payload.to_string(), &e.prev_hash, &e.hash],
    )?;
    Ok(e)
}

fn put_cache(tx: &mut impl postgres::GenericClient, e: &CacheEntry) -> Result<(), StoreError> {
    let embedding = e.embedding.as_ref().map(serde_json::to_string).transpose()?;
    tx.execute(
        "INSERT INTO cache_entries (kind, key, brand, value, embedding, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (kind, key) DO UPDATE SET brand = EXCLUDED.brand, value = EXCLUDED.value,
             embedding = EXCLUDED.embedding, created_at = EXCLUDED.created_at",
        &[&e.kind, &e.key, &e.brand, &e.value.to_string(), &embedding, &e.created_at],
    )?;
    Ok(())
}

impl PgStore {
    /// Connect to `url` (`postgres://user@host:port/db`) and bring the schema up to date.
    /// Claims last [`DEFAULT_LEASE`] unless renewed; see [`PgStore::with_lease`].
    pub fn open(url: &str) -> Result<Self, StoreError> {
        // Off the runtime as a whole: a client dropped on an async thread (an error half-way)
        // would block there.
        off_runtime(|| {
            let mut first = connect(url)?;
            migrate(&mut first)?;
            let mut pool = vec![Mutex::new(first)];
            for _ in 1..POOL_SIZE {
                pool.push(Mutex::new(connect(url)?));
            }
            Ok(Self { url: url.to_owned(), pool, next: AtomicUsize::new(0), lease: DEFAULT_LEASE })
        })
    }

    /// How long a claim lasts without a heartbeat (workers heartbeat at a third of it).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// The lease length.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn lease_sql(&self) -> String {
        format!("now() + interval '{} milliseconds'", self.lease.as_millis())
    }

    fn client(&self) -> MutexGuard<'_, Client> {
        for m in &self.pool {
            if let Ok(c) = m.try_lock() {
                return c;
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        self.pool[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on a pooled connection (reconnecting one the server closed), off any async
    /// runtime thread.
    fn with_client<R: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        let mut guard = self.client();
        let client: &mut Client = &mut guard;
        let url = self.url.as_str();
        off_runtime(move || {
            if client.is_closed() {
                *client = Client::connect(url, NoTls)?;
            }
            f(client)
        })
    }

    /// Run `f` in one transaction.
    fn in_tx<R: Send>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        self.with_client(|c| {
            let mut tx = c.transaction()?;
            let r = f(&mut tx)?;
            tx.commit()?;
            Ok(r)
        })
    }

    fn jobs_where(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<JobRecord>, StoreError> {
        let sql = sql.to_owned();
        self.with_client(|c| jobs(c.query(sql.as_str(), params)?))
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing a client blocks on its own runtime: not on a thread that drives tasks.
        let pool = std::mem::take(&mut self.pool);
        off_runtime(move || drop(pool));
    }
}

fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    let version: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.try_get(0)?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::Setup(format!(
            "database schema version {version} is newer than this binary knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[&((i + 1) as i64), &now()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

impl Store for PgStore {
    fn create_job(&self, job: &NewJob) -> Result<JobRecord, StoreError> {
        self.in_tx(|tx| {
            insert_job(tx, job)?;
            tx.execute("SELECT pg_notify($1, $2)", &[&WORK_CHANNEL, &job.id])?;
            Ok(())
        })?;
        self.job(&job.id)
    }

    fn job(&self, id: &str) -> Result<JobRecord, StoreError> {
        self.with_client(|c| {
            let row = c
                .query_opt(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"), &[&id])?
                .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
            job_from_row(&row)
        })
    }

    fn commit_step(&self, step: &StepCommit) -> Result<(), StoreError> {
        self.in_tx(|tx| {
            let (current, owner) = locked_state(tx, &step.job_id)?;
            step.check(&current, owner.as_deref())?;
            let t = now();
            for w in &step.writes {
                insert_memory(tx, &step.job_id, w, &t)?;
            }
            let mut audited = Vec::new();
            for a in &step.audit {
                let entry = append_audit(tx, a.kind, Some(&step.job_id), &a.payload)?;
                audited.push(serde_json::json!({"kind": entry.kind, "seq": entry.seq, "hash": entry.hash}));
            }
            for entry in &step.cache {
                put_cache(tx, entry)?;
            }
            let mut event = step.event.clone();
            if !audited.is_empty() {
                let detail = event.detail.get_or_insert_with(|| serde_json::json!({}));
                if let Some(map) = detail.as_object_mut() {
                    map.insert("audit".into(), Value::Array(audited));
                }
            }
            insert_event(tx, &step.job_id, &step.from, &step.to, &event)?;
            tx.execute(
                "UPDATE jobs SET state = $2, state_json = $3, updated_at = $4 WHERE id = $1",
                &[&step.job_id, &step.to.name(), &serde_json::to_string(&step.to)?, &t],
            )?;
            // A job nobody holds that can run again (a human approved it) wakes a worker.
            if owner.is_none() && !step.to.is_terminal() && !step.to.awaits_human() {
                tx.execute("SELECT pg_notify($1, $2)", &[&WORK_CHANNEL, &step.job_id])?;
            }
            Ok(())
        })
    }

    fn append_event(&self, job_id: &str, state: &State, event: &NewEvent) -> Result<(), StoreError> {
        self.in_tx(|tx| {
            locked_state(tx, job_id)?;
            insert_event(tx, job_id, state, state, event)
        })
    }

    fn history(&self, id: &str) -> Result<Vec<HistoryEvent>, StoreError> {
        self.with_client(|c| {
            c.query(
                "SELECT seq, at, from_state, to_state, event, duration_ms, attempt, error, detail_json
                 FROM job_events WHERE job_id = $1 ORDER BY seq",
                &[&id],
            )?
            .iter()
            .map(|r| {
                Ok(HistoryEvent {
                    seq: r.try_get(0)?,
                    at: parse_time(&r.try_get::<_, String>(1)?)?,
                    from: r.try_get(2)?,
                    to: r.try_get(3)?,
                    event: r.try_get(4)?,
                    duration_ms: r.try_get::<_, i64>(5)?.max(0) as u64,
                    attempt: r.try_get::<_, i64>(6)?.clamp(0, i64::from(u32::MAX)) as u32,
                    error: r.try_get(7)?,
                    detail: r.try_get::<_, Option<String>>(8)?.map(|s| serde_json::from_str(&s)).transpose()?,
                })
            })
            .collect()
        })
    }

    fn memory(&self, id: &str) -> Result<BTreeMap<Section, MemoryEntry>, StoreError> {
        self.with_client(|c| {
            let rows = c.query(
                "SELECT DISTINCT ON (section) section, version, written_at, author, content_json, metadata_json
                 FROM job_memory WHERE job_id = $1 ORDER BY section, version DESC",
                &[&id],
            )?;
            let mut out = BTreeMap::new();
            for r in &rows {
                // Sections this binary does not know (written by a newer version) are skipped.
                if let Ok(section) = r.try_get::<_, String>(0)?.parse::<Section>() {
                    out.insert(section, memory_entry(r, 1)?);
                }
            }
            Ok(out)
        })
    }

    fn section(&self, id: &str, section: Section) -> Result<Option<MemoryEntry>, StoreError> {
        self.with_client(|c| {
            c.query_opt(
                "SELECT version, written_at, author, content_json, metadata_json FROM job_memory
                 WHERE job_id = $1 AND section = $2 ORDER BY version DESC LIMIT 1",
                &[&id, &section.as_str()],
            )?
            .map(|r| memory_entry(&r, 0))
            .transpose()
        })
    }

    fn list_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.jobs_where(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC"), &[])
    }

    fn resumable_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.jobs_where(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state NOT IN ({IDLE_STATES}) ORDER BY created_at"),
            &[],
        )
    }

    fn job_owner(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.with_client(|c| {
            c.query_opt("SELECT owner FROM jobs WHERE id = $1", &[&id])?
                .ok_or_else(|| StoreError::NotFound(id.to_owned()))?
                .try_get(0)
                .map_err(Into::into)
        })
    }

    fn day_spend(&self, day: chrono::NaiveDate) -> Result<DaySpend, StoreError> {
        // `{cost,actual,total}` is `DeliveryManifest::actual_total` (memory::sections), as in
        // the SQLite store; the shared store suite ties both to the typed document.
        let day = day.format("%Y-%m-%d").to_string();
        self.with_client(|c| {
            let r = c.query_one(
                "WITH today AS (SELECT id FROM jobs WHERE substr(created_at, 1, 10) = $1),
                 reconciled AS (
                     SELECT DISTINCT ON (m.job_id) m.job_id,
                            (m.content_json::jsonb #>> '{cost,actual,total}')::float8 AS total
                     FROM job_memory m JOIN today t ON t.id = m.job_id
                     WHERE m.section = 'delivery_manifest'
                     ORDER BY m.job_id, m.version DESC)
                 SELECT (SELECT COUNT(*) FROM today),
                        (SELECT COALESCE(SUM(total), 0.0) FROM reconciled WHERE total IS NOT NULL)::float8,
                        (SELECT COALESCE(SUM((e.detail_json::jsonb ->> 'cpu_ms')::float8), 0.0)
                         FROM job_events e JOIN today t ON t.id = e.job_id
                         WHERE e.job_id NOT IN (SELECT job_id FROM reconciled WHERE total IS NOT NULL))::float8",
                &[&day],
            )?;
            Ok(DaySpend {
                jobs: r.try_get::<_, i64>(0)? as usize,
                reconciled_usd: r.try_get(1)?,
                unreconciled_cpu_s: r.try_get::<_, f64>(2)? / 1000.0,
            })
        })
    }
}

impl ServiceStore for PgStore {
    fn claim_next(&self, owner: &str) -> Result<Option<JobRecord>, StoreError> {
        let lease = self.lease_sql();
        self.in_tx(|tx| {
            // SKIP LOCKED: workers racing for the queue each take a different row.
            let Some(row) = tx.query_opt(
                &format!(
                    "SELECT id, owner FROM jobs
                     WHERE auto_approve = FALSE AND state NOT IN ({IDLE_STATES})
                       AND (owner IS NULL OR lease_until < now())
                     ORDER BY {PRIORITY_ORDER}, created_at, id LIMIT 1
                     FOR UPDATE SKIP LOCKED"
                ),
                &[],
            )?
            else {
                return Ok(None);
            };
            let id: String = row.try_get(0)?;
            let previous: Option<String> = row.try_get(1)?;
            let claimed = tx.query_one(
                &format!("UPDATE jobs SET owner = $2, lease_until = {lease} WHERE id = $1 RETURNING {JOB_COLUMNS}"),
                &[&id, &owner],
            )?;
            let job = job_from_row(&claimed)?;
            if let Some(previous) = previous {
                let line = NewEvent {
                    event: "lease_taken_over".into(),
                    duration_ms: 0,
                    attempt: 0,
                    error: Some(format!("{previous} stopped renewing its lease; {owner} resumes the job")),
                    detail: Some(serde_json::json!({"previous_owner": previous, "owner": owner})),
                };
                insert_event(tx, &id, &job.state, &job.state, &line)?;
            }
            Ok(Some(job))
        })
    }

    fn release(&self, job_id: &str, owner: &str) -> Result<(), StoreError> {
        self.with_client(|c| {
            let n = c.execute(
                "UPDATE jobs SET owner = NULL, lease_until = NULL WHERE id = $1 AND owner = $2",
                &[&job_id, &owner],
            )?;
            // A job handed back mid-pipeline (a draining worker) is another worker's to take.
            if n == 1 {
                c.execute("SELECT pg_notify($1, $2)", &[&WORK_CHANNEL, &job_id])?;
            }
            Ok(())
        })
    }

    fn release_stale(&self) -> Result<Vec<JobRecord>, StoreError> {
        let mut jobs = self.jobs_where(
            &format!(
                "UPDATE jobs SET owner = NULL, lease_until = NULL
                 WHERE owner IS NOT NULL AND lease_until < now() RETURNING {JOB_COLUMNS}"
            ),
            &[],
        )?;
        jobs.sort_by_key(|j| j.created_at);
        Ok(jobs.into_iter().filter(|j| !j.state.is_terminal() && !j.state.awaits_human()).collect())
    }

    fn claim_job(&self, job_id: &str, owner: &str) -> Result<Claim, StoreError> {
        let lease = self.lease_sql();
        self.in_tx(|tx| {
            let row = tx
                .query_opt("SELECT owner, lease_until < now() FROM jobs WHERE id = $1 FOR UPDATE", &[&job_id])?
                .ok_or_else(|| StoreError::NotFound(job_id.to_owned()))?;
            let holder: Option<String> = row.try_get(0)?;
            let lapsed: Option<bool> = row.try_get(1)?;
            if let Some(h) = holder.as_deref().filter(|h| *h != owner && lapsed != Some(true)) {
                return Ok(Claim::Held(h.to_owned()));
            }
            tx.execute(
                &format!("UPDATE jobs SET owner = $2, lease_until = {lease} WHERE id = $1"),
                &[&job_id, &owner],
            )?;
            Ok(Claim::Claimed)
        })
    }

    fn queued_count(&self) -> Result<i64, StoreError> {
        self.with_client(|c| {
            Ok(c.query_one(
                &format!(
                    "SELECT COUNT(*) FROM jobs WHERE auto_approve = FALSE AND state NOT IN ({IDLE_STATES})
                       AND (owner IS NULL OR lease_until < now())"
                ),
                &[],
            )?
            .try_get(0)?)
        })
    }

    fn list_page(
        &self,
        filter: &JobFilter,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<(JobRecord, String)>, StoreError> {
        let (after_time, after_id) = (cursor.map(|c| c.created_at.clone()), cursor.map(|c| c.id.clone()));
        let limit = limit as i64;
        self.with_client(|c| {
            c.query(
                &format!(
                    "SELECT {JOB_COLUMNS}, created_at FROM jobs
                     WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR preset = $2)
                       AND ($3::text IS NULL OR brand_id = $3)
                       AND ($4::text IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5::text))
                     ORDER BY created_at DESC, id DESC LIMIT $6"
                ),
                &[&filter.state, &filter.preset, &filter.brand, &after_time, &after_id, &limit],
            )?
            .iter()
            .map(|r| Ok((job_from_row(r)?, r.try_get::<_, String>(8)?)))
            .collect()
        })
    }

    fn create_api_key(&self, name: &str, role: &str, key_sha256: &str) -> Result<(), StoreError> {
        self.with_client(|c| {
            c.execute(
                "INSERT INTO api_keys (name, role, key_sha256, created_at) VALUES ($1, $2, $3, $4)",
                &[&name, &role, &key_sha256, &now()],
            )?;
            Ok(())
        })
    }

    fn api_key_by_hash(&self, key_sha256: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.with_client(|c| {
            c.query_opt("SELECT name, role FROM api_keys WHERE key_sha256 = $1", &[&key_sha256])?
                .map(|r| Ok(ApiKeyRecord { name: r.try_get(0)?, role: r.try_get(1)? }))
                .transpose()
        })
    }

    fn idempotent_job(&self, key_name: &str, idem_key: &str) -> Result<Option<(String, String)>, StoreError> {
        self.with_client(|c| {
            c.query_opt(
                "SELECT job_id, body_sha256 FROM idempotency_keys WHERE key_name = $1 AND idem_key = $2",
                &[&key_name, &idem_key],
            )?
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
        })
    }

    fn create_api_job(
        &self,
        job: &NewJob,
        o: &JobApiOptions,
        claim: Option<IdempotencyClaim<'_>>,
    ) -> Result<Submission, StoreError> {
        let held = self.in_tx(|tx| {
            if let Some(c) = claim {
                // Concurrent submissions with one key queue on this lock, so exactly one
                // creates the job.
                tx.execute("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", &[&c.key_name, &c.key])?;
                if let Some(r) = tx.query_opt(
                    "SELECT job_id, body_sha256 FROM idempotency_keys WHERE key_name = $1 AND idem_key = $2",
                    &[&c.key_name, &c.key],
                )? {
                    return Ok(Some((r.try_get(0)?, r.try_get(1)?)));
                }
            }
            insert_job(tx, job)?;
            tx.execute(
                "INSERT INTO job_api (job_id, submitted_by, callback_url, webhook_secret) VALUES ($1, $2, $3, $4)",
                &[&job.id, &o.submitted_by, &o.callback_url, &o.webhook_secret],
            )?;
            if let Some(c) = claim {
                tx.execute(
                    "INSERT INTO idempotency_keys (key_name, idem_key, body_sha256, job_id, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&c.key_name, &c.key, &c.body_sha256, &job.id, &now()],
                )?;
            }
            tx.execute("SELECT pg_notify($1, $2)", &[&WORK_CHANNEL, &job.id])?;
            Ok(None)
        })?;
        match held {
            Some((job_id, body_sha256)) => Ok(Submission::Held { job_id, body_sha256 }),
            None => Ok(Submission::Created(self.job(&job.id)?)),
        }
    }

    fn job_api_options(&self, job_id: &str) -> Result<Option<JobApiOptions>, StoreError> {
        self.with_client(|c| {
            c.query_opt("SELECT submitted_by, callback_url, webhook_secret FROM job_api WHERE job_id = $1", &[&job_id])?
                .map(|r| {
                    Ok(JobApiOptions {
                        submitted_by: r.try_get(0)?,
                        callback_url: r.try_get(1)?,
                        webhook_secret: r.try_get(2)?,
                    })
                })
                .transpose()
        })
    }

    fn write_human_versions(
        &self,
        job_id: &str,
        expected_state: &State,
        writes: &[MemoryWrite],
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        self.in_tx(|tx| {
            let (current, _) = locked_state(tx, job_id)?;
            if &current != expected_state {
                return Err(StoreError::Conflict {
                    job: job_id.to_owned(),
                    expected: expected_state.name().into(),
                    actual: current.name().into(),
                });
            }
            let t = now();
            for w in writes {
                insert_memory(tx, job_id, w, &t)?;
            }
            insert_event(tx, job_id, &current, &current, event)?;
            tx.execute("UPDATE jobs SET updated_at = $2 WHERE id = $1", &[&job_id, &t])?;
            Ok(())
        })
    }

    fn section_versions(&self, job_id: &str, section: Section) -> Result<Vec<MemoryEntry>, StoreError> {
        self.with_client(|c| {
            c.query(
                "SELECT version, written_at, author, content_json, metadata_json FROM job_memory
                 WHERE job_id = $1 AND section = $2 ORDER BY version",
                &[&job_id, &section.as_str()],
            )?
            .iter()
            .map(|r| memory_entry(r, 0))
            .collect()
        })
    }

    fn add_comment(
        &self,
        job_id: &str,
        section: Section,
        parent_id: Option<i64>,
        author: &str,
        body: &str,
    ) -> Result<Comment, StoreError> {
        self.in_tx(|tx| {
            if let Some(parent) = parent_id
                && tx
                    .query_opt(
                        "SELECT id FROM comments WHERE id = $1 AND job_id = $2 AND section = $3",
                        &[&parent, &job_id, &section.as_str()],
                    )?
                    .is_none()
            {
                return Err(StoreError::NotFound(format!("comment {parent} in {section} of job {job_id}")));
            }
            let t = now();
            let id: i64 = tx
                .query_one(
                    "INSERT INTO comments (job_id, section, parent_id, author, body, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[&job_id, &section.as_str(), &parent_id, &author, &body, &t],
                )?
                .try_get(0)?;
            Ok(Comment {
                id,
                section: section.as_str().into(),
                parent_id,
                author: author.into(),
                body: body.into(),
                created_at: parse_time(&t)?,
            })
        })
    }

    fn comments(&self, job_id: &str, section: Option<Section>) -> Result<Vec<Comment>, StoreError> {
        let section = section.map(Section::as_str);
        self.with_client(|c| {
            c.query(
                "SELECT id, section, parent_id, author, body, created_at FROM comments
                 WHERE job_id = $1 AND ($2::text IS NULL OR section = $2) ORDER BY id",
                &[&job_id, &section],
            )?
            .iter()
            .map(|r| {
                Ok(Comment {
                    id: r.try_get(0)?,
                    section: r.try_get(1)?,
                    parent_id: r.try_get(2)?,
                    author: r.try_get(3)?,
                    body: r.try_get(4)?,
                    created_at: parse_time(&r.try_get::<_, String>(5)?)?,
                })
            })
            .collect()
        })
    }

    fn record_webhook(
        &self,
        job_id: &str,
        state: &str,
        attempt: u32,
        url: &str,
        http_status: Option<u16>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let status = http_status.map(i32::from);
        self.with_client(|c| {
            c.execute(
                "INSERT INTO webhook_deliveries (job_id, attempt, at, url, state, http_status, error)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (job_id, state, attempt) DO UPDATE SET at = EXCLUDED.at, url = EXCLUDED.url,
                     http_status = EXCLUDED.http_status, error = EXCLUDED.error",
                &[&job_id, &i64::from(attempt), &now(), &url, &state, &status, &error],
            )?;
            Ok(())
        })
    }

    fn execution_stats(&self) -> Result<ExecutionStats, StoreError> {
        self.with_client(|c| {
            let mut stats = ExecutionStats::default();
            stats.jobs_by_state = c
                .query("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state", &[])?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, StoreError>>()?;
            for r in c.query(
                "SELECT from_state, duration_ms FROM job_events
                 WHERE from_state != to_state AND attempt >= 1
                   AND event NOT IN ('cancel', 'approve', 'request_changes', 'reject')
                 ORDER BY from_state",
                &[],
            )? {
                stats.add_latency(r.try_get(0)?, r.try_get(1)?);
            }
            let r = c.query_one(
                "SELECT COALESCE(SUM(CASE WHEN event IN ('retry', 'stage_failed') THEN 1 ELSE 0 END), 0)::bigint, COUNT(*)
                 FROM job_events WHERE attempt >= 1 AND event NOT IN ('cancel', 'approve', 'request_changes', 'reject')",
                &[],
            )?;
            stats.errors = r.try_get(0)?;
            stats.executions = r.try_get(1)?;
            fn latest<T: SectionDoc>(c: &mut Client) -> Result<Vec<T>, StoreError> {
                let rows = c.query(
                    "SELECT DISTINCT ON (job_id) content_json FROM job_memory WHERE section = $1
                     ORDER BY job_id, version DESC",
                    &[&T::SECTION.as_str()],
                )?;
                Ok(rows.iter().filter_map(|r| serde_json::from_str::<T>(r.get::<_, &str>(0)).ok()).collect())
            }
            stats.semantic_scores = latest::<SemanticReport>(c)?.into_iter().map(|r| r.score).collect();
            stats.costs = latest::<CostCertification>(c)?.into_iter().map(|x| x.certificate.estimate.total).collect();
            Ok(stats)
        })
    }

    fn stuck_jobs(&self, cutoff: DateTime<Utc>) -> Result<Vec<StuckJob>, StoreError> {
        let cutoff = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        self.with_client(|c| {
            c.query(
                &format!(
                    "SELECT id, state, updated_at FROM jobs WHERE state NOT IN ({IDLE_STATES}) AND updated_at < $1
                     ORDER BY updated_at, id"
                ),
                &[&cutoff],
            )?
            .iter()
            .map(|r| {
                Ok(StuckJob {
                    job_id: r.try_get(0)?,
                    state: r.try_get(1)?,
                    since: parse_time(&r.try_get::<_, String>(2)?)?,
                })
            })
            .collect()
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with_client(|c| {
            c.query_one("SELECT 1", &[])?;
            Ok(())
        })
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn heartbeat(&self, owner: &str) -> Result<u64, StoreError> {
        let lease = self.lease_sql();
        self.with_client(|c| {
            Ok(c.execute(&format!("UPDATE jobs SET lease_until = {lease} WHERE owner = $1"), &[&owner])?)
        })
    }

    fn lease_takeovers(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.with_client(|c| {
            c.query(
                "SELECT job_id, COUNT(*) FROM job_events WHERE event = 'lease_taken_over' GROUP BY job_id ORDER BY job_id",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
        })
    }

    fn leases(&self) -> Option<Duration> {
        Some(self.lease)
    }

    fn wake_on_work(&self, wake: Box<dyn Fn() + Send>) -> Result<bool, StoreError> {
        let url = self.url.clone();
        // A connection of its own, on a thread of its own: LISTEN blocks between
        // notifications. It reconnects after an error, waking everyone once so nothing
        // submitted meanwhile is missed (workers also poll).
        std::thread::Builder::new()
            .name("pg-listen".into())
            .spawn(move || {
                loop {
                    if let Ok(mut client) = Client::connect(&url, NoTls)
                        && client.batch_execute(&format!("LISTEN {WORK_CHANNEL}")).is_ok()
                    {
                        wake();
                        let mut notes = client.notifications();
                        let mut iter = notes.blocking_iter();
                        while let Ok(Some(_)) = postgres::fallible_iterator::FallibleIterator::next(&mut iter) {
                            wake();
                        }
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
            .map_err(|e| StoreError::Setup(format!("cannot start the LISTEN thread: {e}")))?;
        Ok(true)
    }
}

impl CostLedger for PgStore {
    fn append(&self, kind: AuditKind, job_id: Option<&str>, payload: &Value) -> Result<AuditEntry, StoreError> {
        self.in_tx(|tx| append_audit(tx, kind, job_id, payload))
    }

    fn entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.with_client(|c| {
            c.query("SELECT seq, at, kind, job_id, payload_json, prev_hash, hash FROM cost_audit ORDER BY seq", &[])?
                .iter()
                .map(|r| {
                    let payload: String = r.try_get(4)?;
                    Ok(AuditEntry {
                        seq: r.try_get(0)?,
                        at: r.try_get(1)?,
                        kind: r.try_get(2)?,
                        job_id: r.try_get(3)?,
                        payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
                        prev_hash: r.try_get(5)?,
                        hash: r.try_get(6)?,
                    })
                })
                .collect()
        })
    }

    fn latest_pricing(&self) -> Result<Option<PricingTable>, StoreError> {
        let payload: Option<String> = self.with_client(|c| {
            Ok(c.query_opt(
                "SELECT payload_json FROM cost_audit WHERE kind = 'pricing_update' ORDER BY seq DESC LIMIT 1",
                &[],
            )?
            .map(|r| r.try_get(0))
            .transpose()?)
        })?;
        let Some(payload) = payload else { return Ok(None) };
        let v: Value = serde_json::from_str(&payload)?;
        Ok(Some(serde_json::from_value(v["table"].clone())?))
    }
}

impl CacheStore for PgStore {
    fn cache_put(&self, entry: &CacheEntry) -> Result<(), StoreError> {
        self.with_client(|c| put_cache(c, entry))
    }

    fn cache_since(&self, kind: &str, since: i64) -> Result<Vec<CacheEntry>, StoreError> {
        self.with_client(|c| {
            c.query(
                "SELECT kind, key, brand, value, embedding, created_at FROM cache_entries
                 WHERE kind = $1 AND created_at >= $2 ORDER BY created_at, key",
                &[&kind, &since],
            )?
            .iter()
            .map(|r| {
                Ok(CacheEntry {
                    kind: r.try_get(0)?,
                    key: r.try_get(1)?,
                    brand: r.try_get(2)?,
                    value: serde_json::from_str(r.try_get::<_, &str>(3)?)?,
                    embedding: r.try_get::<_, Option<String>>(4)?.map(|s| serde_json::from_str(&s)).transpose()?,
                    created_at: r.try_get(5)?,
                })
            })
            .collect()
        })
    }
}

/// The local server `scripts/ensure_postgres.sh` provides (and the tests use unless
/// `AIPROD_TEST_PG_URL` names another).
pub const LOCAL_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

/// `url` with its database name replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let root = match base.find("://").map(|i| i + 3) {
        Some(start) => match base[start..].find('/') {
            Some(slash) => &base[..start + slash],
            None => base,
        },
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    }
}

/// A database of its own for one test or one benchmark run, dropped (with any connection
/// still open to it) when this value is.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    /// The scratch database's URL.
    pub url: String,
}

impl ScratchDatabase {
    /// Create a fresh, empty database next to the one `admin_url` names.
    pub fn create(admin_url: &str) -> Result<Self, StoreError> {
        let name = format!("aiprod_scratch_{}", uuid::Uuid::new_v4().simple());
        off_runtime(|| {
            let mut admin = connect(admin_url)?;
            admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
            Ok::<_, StoreError>(())
        })?;
        Ok(Self { admin_url: admin_url.to_owned(), url: with_database(admin_url, &name), name })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let url = self.admin_url.clone();
        let _ = off_runtime(move || Client::connect(&url, NoTls).and_then(|mut c| c.batch_execute(&sql)));
    }
}
