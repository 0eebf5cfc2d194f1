//! Persistence the service needs beyond the [`Store`](super::Store) trait: claiming queued
//! jobs for a worker, API keys, idempotency keys, per-job API options, versioned human edits
//! of memory sections, comment threads, webhook deliveries and the aggregates behind
//! `/metrics` and `/v1/alerts`.
//!
//! It is an extension trait, implemented for [`SqliteStore`] here and for the PostgreSQL
//! store in `pg.rs`, so the core `Store` stays small; every method is one short statement or
//! one transaction.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::sqlite::{IDLE_STATES, JOB_COLUMNS, insert_job, job_from_row, memory_entry, now, parse_time};
use super::{JobRecord, MemoryEntry, NewEvent, NewJob, SqliteStore, Store, StoreError};
use agents::semantic::SemanticReport;

use crate::memory::sections::CostCertification;
use crate::memory::{MemoryWrite, Section, SectionDoc};
use crate::pipeline::machine::State;

/// The brief's `priority` as a sort key: high before normal before low (FIFO within each).
/// The sanitizer only admits these three words (or none, which is normal).
const PRIORITY_ORDER: &str =
    "CASE lower(trim(json_extract(request_json, '$.priority'))) WHEN 'high' THEN 0 WHEN 'low' THEN 2 ELSE 1 END";

/// A stored API key (without its secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyRecord {
    /// The key's name: the author of edits and comments made with it.
    pub name: String,
    /// `admin`, `editor` or `viewer`.
    pub role: String,
}

/// A job's API-only options.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobApiOptions {
    /// The key that submitted the job.
    pub submitted_by: String,
    /// Where the terminal-state webhook goes.
    pub callback_url: Option<String>,
    /// The HMAC key for that webhook.
    #[serde(skip)]
    pub webhook_secret: Option<String>,
}

/// An `Idempotency-Key` as a submission carries it: the API key that sent it, the key itself
/// and the hash of the body it came with.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyClaim<'a> {
    /// The API key's name (idempotency keys are per client).
    pub key_name: &'a str,
    /// The `Idempotency-Key` header's value.
    pub key: &'a str,
    /// Hex SHA-256 of the request body.
    pub body_sha256: &'a str,
}

/// What [`ServiceStore::create_api_job`] did.
#[derive(Debug, Clone)]
pub enum Submission {
    /// The job was created (with its API options and idempotency key, if any).
    Created(JobRecord),
    /// The idempotency key already belongs to a job; nothing was created.
    Held {
        /// The job that holds the key.
        job_id: String,
        /// The body hash it was created with.
        body_sha256: String,
    },
}

/// What [`ServiceStore::claim_job`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The job is now the caller's.
    Claimed,
    /// A live process drives it (its owner id).
    Held(String),
}

/// A new owner id for this process: `<what>:<pid>:<uuid>` (`serve`, `run`, `resume`).
pub fn new_owner(what: &str) -> String {
    format!("{what}:{}:{}", std::process::id(), uuid::Uuid::new_v4())
}

/// Whether the process named in an owner id (`<what>:<pid>:<uuid>`) still runs on this
/// machine. An id with this process's pid is alive only while registered
/// ([`register_owner`]): a restarted server in a container gets the same pid as the one that
/// died. Ids of another shape are taken as gone (they predate owner ids with a pid), so
/// their jobs can be resumed.
pub fn owner_alive(owner: &str) -> bool {
    let mut parts = owner.splitn(3, ':');
    let (Some(_), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else { return false };
    let Ok(pid) = pid.parse::<i32>() else { return false };
    if pid <= 0 {
        return false;
    }
    if pid as u32 == std::process::id() {
        return OWN_IDS.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|o| o == owner);
    }
    // SAFETY: signal 0 sends nothing; it only asks whether the pid exists (EPERM: it does,
    // under another user).
    let r = unsafe { libc::kill(pid, 0) };
    let exists = r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !zombie(pid)
}

/// A process that has exited but was not reaped yet (state `Z` or `X` in `/proc/<pid>/stat`)
/// still answers signal 0; it drives nothing.
fn zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state follows the command name, which is in parentheses and may contain spaces.
    stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()).is_some_and(|c| matches!(c, 'Z' | 'X'))
}

/// Owner ids this process uses now (servers and drivers register theirs), so an id with
/// our pid is known to be live.
static OWN_IDS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Record an owner id as this process's (see [`owner_alive_for`]).
pub fn register_owner(owner: &str) {
    OWN_IDS.lock().unwrap_or_else(|p| p.into_inner()).push(owner.to_owned());
}

/// Forget an owner id this process no longer uses.
pub fn unregister_owner(owner: &str) {
    OWN_IDS.lock().unwrap_or_else(|p| p.into_inner()).retain(|o| o != owner);
}

/// Filters for listing jobs; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// State name.
    pub state: Option<String>,
    /// Preset name.
    pub preset: Option<String>,
    /// Brand id.
    pub brand: Option<String>,
}

/// A position in the newest-first job list: the last row a page ended on.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// That row's creation time, as stored.
    pub created_at: String,
    /// That row's id (tie-breaker).
    pub id: String,
}

/// One comment in a section's thread.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comment {
    /// Comment id.
    pub id: i64,
    /// The memory section it discusses.
    pub section: String,
    /// The comment it answers, if any.
    pub parent_id: Option<i64>,
    /// Who wrote it (API key name).
    pub author: String,
    /// The text.
    pub body: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Per-stage latency aggregates from the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageLatency {
    /// The state the stage ran in.
    pub stage: String,
    /// Every committed duration, milliseconds.
    pub durations_ms: Vec<u64>,
}

/// Totals behind `/metrics` and the alerts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExecutionStats {
    /// Jobs per state name.
    pub jobs_by_state: Vec<(String, i64)>,
    /// Committed stage durations per stage.
    pub stage_latencies: Vec<StageLatency>,
    /// Semantic QA scores of every scored job.
    pub semantic_scores: Vec<f64>,
    /// Cost estimates of every costed job.
    pub costs: Vec<f64>,
    /// Stage executions that ended a job in failure or were retried.
    pub errors: i64,
    /// Stage executions recorded (commits, retries and failures).
    pub executions: i64,
}

impl ExecutionStats {
    /// Add one committed duration; rows arrive ordered by stage, so a stage's durations are
    /// one run.
    pub fn add_latency(&mut self, stage: String, ms: i64) {
        let ms = ms.max(0) as u64;
        match self.stage_latencies.last_mut() {
            Some(l) if l.stage == stage => l.durations_ms.push(ms),
            _ => self.stage_latencies.push(StageLatency { stage, durations_ms: vec![ms] }),
        }
    }
}

/// A job that has sat in one working state for long (`orchestrator.alertOnStuckStateMinutes`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StuckJob {
    /// The job.
    pub job_id: String,
    /// The state it sits in.
    pub state: String,
    /// When it entered it.
    pub since: DateTime<Utc>,
}

/// The service's persistence, on top of [`Store`](super::Store).
pub trait ServiceStore {
    /// Atomically take the oldest job a worker can run (not ended, not waiting for a human,
    /// owned by nobody, submitted for review rather than by an auto-approving `aiprod run`,
    /// which drives its own job) and mark it owned by `owner`.
    fn claim_next(&self, owner: &str) -> Result<Option<JobRecord>, StoreError>;
    /// Give a job back (the worker stopped driving it).
    fn release(&self, job_id: &str, owner: &str) -> Result<(), StoreError>;
    /// Free every job owned by a process that is no longer running ([`owner_alive`]);
    /// returns those left mid-pipeline (they are resumed from their last committed state).
    /// Jobs another live process drives (`aiprod run` or `resume`) stay its own.
    fn release_stale(&self) -> Result<Vec<JobRecord>, StoreError>;
    /// Take one job for `owner` when nobody, or only a process that is gone, owns it.
    fn claim_job(&self, job_id: &str, owner: &str) -> Result<Claim, StoreError>;
    /// How many jobs wait for a worker.
    fn queued_count(&self) -> Result<i64, StoreError>;
    /// A page of jobs, newest first, after `cursor`.
    fn list_page(
        &self,
        filter: &JobFilter,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<(JobRecord, String)>, StoreError>;

    /// Store a new API key (by its SHA-256).
    fn create_api_key(&self, name: &str, role: &str, key_sha256: &str) -> Result<(), StoreError>;
    /// The key whose secret hashes to `key_sha256`.
    fn api_key_by_hash(&self, key_sha256: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// The job an idempotency key already created, with the body hash it was created from.
    fn idempotent_job(&self, key_name: &str, idem_key: &str) -> Result<Option<(String, String)>, StoreError>;
    /// Create a job submitted through the API, its API options and its idempotency key in one
    /// transaction: when the key is already held, nothing is created and the holder is
    /// returned, so concurrent duplicates create exactly one job row.
    fn create_api_job(
        &self,
        job: &NewJob,
        options: &JobApiOptions,
        claim: Option<IdempotencyClaim<'_>>,
    ) -> Result<Submission, StoreError>;

    /// A job's API options, if it came through the API.
    fn job_api_options(&self, job_id: &str) -> Result<Option<JobApiOptions>, StoreError>;

    /// Add human-written versions of sections, only while the job is in `expected_state`,
    /// with a history line; all or nothing.
    fn write_human_versions(
        &self,
        job_id: &str,
        expected_state: &State,
        writes: &[MemoryWrite],
        event: &NewEvent,
    ) -> Result<(), StoreError>;
    /// Every version of a section, oldest first.
    fn section_versions(&self, job_id: &str, section: Section) -> Result<Vec<MemoryEntry>, StoreError>;

    /// Add a comment to a section's thread.
    fn add_comment(
        &self,
        job_id: &str,
        section: Section,
        parent_id: Option<i64>,
        author: &str,
        body: &str,
    ) -> Result<Comment, StoreError>;
    /// A section's comments, oldest first (or every section's when `section` is `None`).
    fn comments(&self, job_id: &str, section: Option<Section>) -> Result<Vec<Comment>, StoreError>;

    /// Journal a webhook delivery attempt.
    fn record_webhook(
        &self,
        job_id: &str,
        state: &str,
        attempt: u32,
        url: &str,
        http_status: Option<u16>,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Aggregates over every recorded execution.
    fn execution_stats(&self) -> Result<ExecutionStats, StoreError>;
    /// Jobs in a working state (not ended, not waiting for a human) unchanged since before
    /// `cutoff`, oldest first.
    fn stuck_jobs(&self, cutoff: DateTime<Utc>) -> Result<Vec<StuckJob>, StoreError>;
    /// Whether the database answers.
    fn ping(&self) -> Result<(), StoreError>;
    /// The backend's name (`sqlite`, `postgres`), for `/health`.
    fn backend(&self) -> &'static str;

    /// Renew the lease on every job `owner` holds; returns how many. A store without leases
    /// (SQLite: owners are processes on this machine, checked by pid) renews nothing.
    fn heartbeat(&self, _owner: &str) -> Result<u64, StoreError> {
        Ok(0)
    }
    /// Jobs taken over from an owner whose lease lapsed, with how many times each was.
    fn lease_takeovers(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// How long a claim lasts without a heartbeat, for stores whose claims lapse.
    fn leases(&self) -> Option<std::time::Duration> {
        None
    }
    /// Call `wake` whenever another process announces work (a submission, a job handed
    /// back); `false` when this store has no such channel and workers only poll.
    fn wake_on_work(&self, _wake: Box<dyn Fn() + Send>) -> Result<bool, StoreError> {
        Ok(false)
    }
}

impl ServiceStore for SqliteStore {
    fn claim_next(&self, owner: &str) -> Result<Option<JobRecord>, StoreError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!(
                    "UPDATE jobs SET owner = ?1
                     WHERE id = (SELECT id FROM jobs WHERE owner IS NULL AND auto_approve = 0
                                   AND state NOT IN ({IDLE_STATES})
                                 ORDER BY {PRIORITY_ORDER}, created_at, id LIMIT 1)
                       AND owner IS NULL
                     RETURNING {JOB_COLUMNS}"
                ),
                [owner],
                job_from_row,
            )
            .optional()?)
    }

    fn release(&self, job_id: &str, owner: &str) -> Result<(), StoreError> {
        self.conn().execute("UPDATE jobs SET owner = NULL WHERE id = ?1 AND owner = ?2", [job_id, owner])?;
        Ok(())
    }

    fn release_stale(&self) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn();
        let owners: Vec<String> = conn
            .prepare("SELECT DISTINCT owner FROM jobs WHERE owner IS NOT NULL")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut jobs = Vec::new();
        for owner in owners.iter().filter(|o| !owner_alive(o)) {
            let mut stmt =
                conn.prepare(&format!("UPDATE jobs SET owner = NULL WHERE owner = ?1 RETURNING {JOB_COLUMNS}"))?;
            let rows = stmt.query_map([owner], job_from_row)?;
            jobs.extend(rows.collect::<Result<Vec<_>, _>>()?);
        }
        jobs.sort_by_key(|j| j.created_at);
        Ok(jobs.into_iter().filter(|j| !j.state.is_terminal() && !j.state.awaits_human()).collect())
    }

    fn claim_job(&self, job_id: &str, owner: &str) -> Result<Claim, StoreError> {
        let conn = self.conn();
        let current: Option<String> = conn
            .query_row("SELECT owner FROM jobs WHERE id = ?1", [job_id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(job_id.to_owned()))?;
        if let Some(holder) = current.as_deref().filter(|o| *o != owner && owner_alive(o)) {
            return Ok(Claim::Held(holder.to_owned()));
        }
        // Compare-and-set on the owner seen: a process that claims in between wins.
        let n =
            conn.execute("UPDATE jobs SET owner = ?2 WHERE id = ?1 AND owner IS ?3", params![job_id, owner, current])?;
        if n == 1 {
            return Ok(Claim::Claimed);
        }
        let holder: Option<String> = conn.query_row("SELECT owner FROM jobs WHERE id = ?1", [job_id], |r| r.get(0))?;
        Ok(Claim::Held(holder.unwrap_or_default()))
    }

    fn queued_count(&self) -> Result<i64, StoreError> {
        Ok(self.conn().query_row(
            &format!(
                "SELECT COUNT(*) FROM jobs WHERE owner IS NULL AND auto_approve = 0 AND state NOT IN ({IDLE_STATES})"
            ),
            [],
            |r| r.get(0),
        )?)
    }

    fn list_page(
        &self,
        filter: &JobFilter,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<(JobRecord, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {JOB_COLUMNS}, created_at FROM jobs
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR preset = ?2) AND (?3 IS NULL OR brand_id = ?3)
               AND (?4 IS NULL OR created_at < ?4 OR (created_at = ?4 AND id < ?5))
             ORDER BY created_at DESC, id DESC LIMIT ?6"
        ))?;
        let rows = stmt.query_map(
            params![
                filter.state,
                filter.preset,
                filter.brand,
                cursor.map(|c| c.created_at.clone()),
                cursor.map(|c| c.id.clone()),
                limit as i64
            ],
            |r| Ok((job_from_row(r)?, r.get::<_, String>(8)?)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn create_api_key(&self, name: &str, role: &str, key_sha256: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO api_keys (name, role, key_sha256, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, role, key_sha256, now()],
        )?;
        Ok(())
    }

    fn api_key_by_hash(&self, key_sha256: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT name, role FROM api_keys WHERE key_sha256 = ?1", [key_sha256], |r| {
                Ok(ApiKeyRecord { name: r.get(0)?, role: r.get(1)? })
            })
            .optional()?)
    }

    fn idempotent_job(&self, key_name: &str, idem_key: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT job_id, body_sha256 FROM idempotency_keys WHERE key_name = ?1 AND idem_key = ?2",
                [key_name, idem_key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn create_api_job(
        &self,
        job: &NewJob,
        o: &JobApiOptions,
        claim: Option<IdempotencyClaim<'_>>,
    ) -> Result<Submission, StoreError> {
        {
            let mut conn = self.conn();
            // Immediate: another process's submission with the same key waits for this one.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if let Some(c) = claim
                && let Some((job_id, body_sha256)) = tx
                    .query_row(
                        "SELECT job_id, body_sha256 FROM idempotency_keys WHERE key_name = ?1 AND idem_key = ?2",
                        [c.key_name, c.key],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?
            {
                return Ok(Submission::Held { job_id, body_sha256 });
            }
            insert_job(&tx, job)?;
            tx.execute(
                "INSERT INTO job_api (job_id, submitted_by, callback_url, webhook_secret) VALUES (?1, ?2, ?3, ?4)",
                params![job.id, o.submitted_by, o.callback_url, o.webhook_secret],
            )?;
            if let Some(c) = claim {
                // The primary key (key_name, idem_key) is the constraint that makes a key
                // name one job.
                tx.execute(
                    "INSERT INTO idempotency_keys (key_name, idem_key, body_sha256, job_id, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![c.key_name, c.key, c.body_sha256, job.id, now()],
                )?;
            }
            tx.commit()?;
        }
        Ok(Submission::Created(self.job(&job.id)?))
    }

    fn job_api_options(&self, job_id: &str) -> Result<Option<JobApiOptions>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT submitted_by, callback_url, webhook_secret FROM job_api WHERE job_id = ?1",
                [job_id],
                |r| Ok(JobApiOptions { submitted_by: r.get(0)?, callback_url: r.get(1)?, webhook_secret: r.get(2)? }),
            )
            .optional()?)
    }

    fn write_human_versions(
        &self,
        job_id: &str,
        expected_state: &State,
        writes: &[MemoryWrite],
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let current: Option<String> =
            tx.query_row("SELECT state_json FROM jobs WHERE id = ?1", [job_id], |r| r.get(0)).optional()?;
        let current: State = match current {
            Some(s) => serde_json::from_str(&s)?,
            None => return Err(StoreError::NotFound(job_id.to_owned())),
        };
        if &current != expected_state {
            return Err(StoreError::Conflict {
                job: job_id.to_owned(),
                expected: expected_state.name().into(),
                actual: current.name().into(),
            });
        }
        let t = now();
        for w in writes {
            let metadata = w.metadata.as_ref().map(serde_json::to_string).transpose()?;
            tx.execute(
                "INSERT INTO job_memory (job_id, section, version, written_at, author, content_json, metadata_json)
                 VALUES (?1, ?2, (SELECT COALESCE(MAX(version), 0) + 1 FROM job_memory WHERE job_id = ?1 AND section = ?2),
                         ?3, ?4, ?5, ?6)",
                params![job_id, w.section.as_str(), t, w.author, serde_json::to_string(&w.content)?, metadata],
            )?;
        }
        let detail = event.detail.as_ref().map(serde_json::to_string).transpose()?;
        tx.execute(
            "INSERT INTO job_events (job_id, seq, at, from_state, to_state, event, duration_ms, attempt, error, detail_json)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?1), ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                job_id,
                t,
                current.name(),
                event.event,
                event.duration_ms as i64,
                event.attempt,
                event.error,
                detail
            ],
        )?;
        tx.execute("UPDATE jobs SET updated_at = ?2 WHERE id = ?1", params![job_id, t])?;
        tx.commit()?;
        Ok(())
    }

    fn section_versions(&self, job_id: &str, section: Section) -> Result<Vec<MemoryEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT version, written_at, author, content_json, metadata_json FROM job_memory
             WHERE job_id = ?1 AND section = ?2 ORDER BY version",
        )?;
        let rows = stmt.query_map(params![job_id, section.as_str()], |r| memory_entry(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn add_comment(
        &self,
        job_id: &str,
        section: Section,
        parent_id: Option<i64>,
        author: &str,
        body: &str,
    ) -> Result<Comment, StoreError> {
        let conn = self.conn();
        if let Some(parent) = parent_id {
            let ok: Option<i64> = conn
                .query_row(
                    "SELECT id FROM comments WHERE id = ?1 AND job_id = ?2 AND section = ?3",
                    params![parent, job_id, section.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if ok.is_none() {
                return Err(StoreError::NotFound(format!("comment {parent} in {section} of job {job_id}")));
            }
        }
        let t = now();
        conn.execute(
            "INSERT INTO comments (job_id, section, parent_id, author, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![job_id, section.as_str(), parent_id, author, body, t],
        )?;
        Ok(Comment {
            id: conn.last_insert_rowid(),
            section: section.as_str().into(),
            parent_id,
            author: author.into(),
            body: body.into(),
            created_at: parse_time(t)?,
        })
    }

    fn comments(&self, job_id: &str, section: Option<Section>) -> Result<Vec<Comment>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, section, parent_id, author, body, created_at FROM comments
             WHERE job_id = ?1 AND (?2 IS NULL OR section = ?2) ORDER BY id",
        )?;
        let rows = stmt.query_map(params![job_id, section.map(Section::as_str)], |r| {
            Ok(Comment {
                id: r.get(0)?,
                section: r.get(1)?,
                parent_id: r.get(2)?,
                author: r.get(3)?,
                body: r.get(4)?,
                created_at: parse_time(r.get(5)?)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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
        self.conn().execute(
            "INSERT OR REPLACE INTO webhook_deliveries (job_id, attempt, at, url, state, http_status, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![job_id, attempt, now(), url, state, http_status, error],
        )?;
        Ok(())
    }

    fn stuck_jobs(&self, cutoff: DateTime<Utc>) -> Result<Vec<StuckJob>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id, state, updated_at FROM jobs WHERE state NOT IN ({IDLE_STATES}) AND updated_at < ?1
             ORDER BY updated_at, id"
        ))?;
        let cutoff = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let rows = stmt.query_map([cutoff], |r| {
            Ok(StuckJob { job_id: r.get(0)?, state: r.get(1)?, since: parse_time(r.get(2)?)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn execution_stats(&self) -> Result<ExecutionStats, StoreError> {
        let conn = self.conn();
        let mut stats = ExecutionStats::default();
        let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")?;
        stats.jobs_by_state = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        // A committed stage is a history line that changed state and took time; markers
        // (resumed, interrupted, human decisions) have attempt 0 or no duration.
        let mut stmt = conn.prepare(
            "SELECT from_state, duration_ms FROM job_events
             WHERE from_state != to_state AND attempt >= 1 AND event NOT IN ('cancel', 'approve', 'request_changes', 'reject')
             ORDER BY from_state",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (stage, ms) = row?;
            stats.add_latency(stage, ms);
        }
        let (errors, executions): (i64, i64) = conn.query_row(
            "SELECT COALESCE(SUM(CASE WHEN event IN ('retry', 'stage_failed') THEN 1 ELSE 0 END), 0), COUNT(*)
             FROM job_events WHERE attempt >= 1 AND event NOT IN ('cancel', 'approve', 'request_changes', 'reject')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        stats.errors = errors;
        stats.executions = executions;
        // The latest version of every job's section, decoded as its typed document; one that
        // does not decode (an older schema) is left out of the figures.
        fn latest<T: SectionDoc>(conn: &rusqlite::Connection) -> Result<Vec<T>, StoreError> {
            let mut stmt = conn.prepare_cached(
                "SELECT m.content_json FROM job_memory m WHERE m.section = ?1
                 AND m.version = (SELECT MAX(version) FROM job_memory WHERE job_id = m.job_id AND section = m.section)",
            )?;
            let rows = stmt.query_map([T::SECTION.as_str()], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for row in rows {
                if let Ok(doc) = serde_json::from_str::<T>(&row?) {
                    out.push(doc);
                }
            }
            Ok(out)
        }
        stats.semantic_scores = latest::<SemanticReport>(&conn)?.into_iter().map(|r| r.score).collect();
        stats.costs = latest::<CostCertification>(&conn)?.into_iter().map(|c| c.certificate.estimate.total).collect();
        Ok(stats)
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.conn().query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn lease_takeovers(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT job_id, COUNT(*) FROM job_events WHERE event = 'lease_taken_over' GROUP BY job_id ORDER BY job_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owner ids name a process: alive while it runs (a zombie does not count), gone once
    /// it exited; this process's own ids only while registered.
    #[test]
    fn owners_are_alive_exactly_while_their_process_runs() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let owner = format!("run:{}:x", child.id());
        assert!(owner_alive(&owner));
        child.kill().unwrap();
        // Until reaped, the killed child is a zombie: not a live owner either.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while owner_alive(&owner) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!owner_alive(&owner), "a killed, unreaped process is not a live owner");
        child.wait().unwrap();
        assert!(!owner_alive(&owner));
        let mine = new_owner("serve");
        assert!(!owner_alive(&mine), "this pid, not registered: a previous incarnation");
        register_owner(&mine);
        assert!(owner_alive(&mine));
        unregister_owner(&mine);
        assert!(!owner_alive("legacy-owner"), "ids without a pid are taken as gone");
    }
}
