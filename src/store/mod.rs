//! Persistence behind a [`Store`] trait: jobs, their history and their memory.
//!
//! The invariant the driver relies on: [`Store::commit_step`] writes a stage's memory
//! sections, its history event and the job's new state in one transaction, and only if the
//! job is still in the state the stage started from. A crash therefore leaves a job either
//! before or after a stage, never half-way, and a stage is never committed twice.

pub mod cache;
pub mod finance;
pub mod pg;
pub mod service;
pub mod sqlite;
#[cfg(test)]
mod suite;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::memory::MemoryEntry;
use crate::memory::{MemoryWrite, Section};
use crate::pipeline::machine::State;
pub use finance::{AuditAppend, CostLedger, pricing_in_force};
pub use pg::PgStore;
pub use sqlite::SqliteStore;

/// The data directory's SQLite file. Lives here, with the store that opens it, so nothing
/// below the CLI/API needs to know the layout of a data directory to reach the database.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("aiprod.db")
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("store: {0}")]
    Db(#[from] rusqlite::Error),
    /// PostgreSQL reported an error.
    #[error("store: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// A stored document could not be (de)serialised.
    #[error("store: bad stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// No job with this id.
    #[error("job {0} not found")]
    NotFound(String),
    /// The job moved on since the caller read it (another writer committed first).
    #[error("job {job} is in state '{actual}', not '{expected}'")]
    Conflict {
        /// The job.
        job: String,
        /// The state the caller expected.
        expected: String,
        /// The state found.
        actual: String,
    },
    /// A step named an owner that no longer holds the job: its lease lapsed and another
    /// worker took the job over, so this step must not be committed.
    #[error("job {job} is held by {holder}, not by {owner} (lease taken over)")]
    LeaseLost {
        /// The job.
        job: String,
        /// The owner the step was run by.
        owner: String,
        /// Who holds the job now.
        holder: String,
    },
    /// A migration or file operation failed.
    #[error("store: {0}")]
    Setup(String),
}

impl StoreError {
    /// Whether a uniqueness constraint refused the write (a key name taken, an idempotency key
    /// held), whichever backend reported it.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Db(rusqlite::Error::SqliteFailure(f, _)) => f.code == rusqlite::ErrorCode::ConstraintViolation,
            Self::Postgres(e) => e.code() == Some(&::postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job id (UUID).
    pub id: String,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// The machine state.
    pub state: State,
    /// The brief as submitted.
    pub request: serde_json::Value,
    /// Preset name, for filtering.
    pub preset: Option<String>,
    /// Brand id, for filtering.
    pub brand_id: Option<String>,
    /// Whether human review steps are approved automatically (CLI runs).
    pub auto_approve: bool,
}

/// A job about to be created.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The job id.
    pub id: String,
    /// The brief as submitted.
    pub request: serde_json::Value,
    /// Preset name.
    pub preset: Option<String>,
    /// Brand id.
    pub brand_id: Option<String>,
    /// Approve review steps automatically.
    pub auto_approve: bool,
}

/// One line of a job's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// Position in the job's history, from 1.
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// State name before.
    pub from: String,
    /// State name after (same as `from` for markers such as `resumed`).
    pub to: String,
    /// Event name.
    pub event: String,
    /// How long the stage ran, in milliseconds.
    pub duration_ms: u64,
    /// Which attempt of the stage this was (1 = first try).
    pub attempt: u32,
    /// The error, for failures and retries.
    pub error: Option<String>,
    /// Extra structured detail (complexity breakdown, failed checks…).
    pub detail: Option<serde_json::Value>,
}

/// A history line to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Event name.
    pub event: String,
    /// Stage duration.
    pub duration_ms: u64,
    /// Attempt number.
    pub attempt: u32,
    /// Error text.
    pub error: Option<String>,
    /// Structured detail.
    pub detail: Option<serde_json::Value>,
}

/// A stage's result, committed atomically.
#[derive(Debug, Clone)]
pub struct StepCommit {
    /// The job.
    pub job_id: String,
    /// The state the stage ran in; the commit fails with `Conflict` if the job left it.
    pub from: State,
    /// The state the machine moved to.
    pub to: State,
    /// The history line.
    pub event: NewEvent,
    /// Memory sections the stage wrote.
    pub writes: Vec<MemoryWrite>,
    /// Audit-trail entries the stage decided on (cost decision, reconciliation): appended in
    /// the same transaction, so a step that does not commit leaves no decision behind.
    pub audit: Vec<AuditAppend>,
    /// Consistency-cache entries the stage produced (brand markers, delivered requests):
    /// written in the same transaction; the driver mirrors them into the in-memory cache only
    /// after the commit succeeded.
    pub cache: Vec<cache::CacheEntry>,
    /// The owner that ran the stage, when it runs jobs it claimed: the commit is refused
    /// ([`StoreError::LeaseLost`]) unless the job is still that owner's. `None` for human
    /// decisions, which any API node may apply.
    pub owner: Option<String>,
}

impl StepCommit {
    /// Whether this step may commit on a job found in `current` state, held by `holder`:
    /// `Conflict` when the job left the stage's state, `LeaseLost` when the step names an
    /// owner that no longer holds the job. Every backend checks this inside its transaction.
    pub fn check(&self, current: &State, holder: Option<&str>) -> Result<(), StoreError> {
        if *current != self.from {
            return Err(StoreError::Conflict {
                job: self.job_id.clone(),
                expected: self.from.name().into(),
                actual: current.name().into(),
            });
        }
        match &self.owner {
            Some(me) if holder != Some(me.as_str()) => Err(StoreError::LeaseLost {
                job: self.job_id.clone(),
                owner: me.clone(),
                holder: holder.unwrap_or("nobody").to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

/// The inputs of a day's spend, read in one query: what delivered jobs reconciled, and the
/// CPU time journaled by the jobs that have no reconciliation (yet).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DaySpend {
    /// Jobs created that day.
    pub jobs: usize,
    /// Sum of the reconciled actual totals (USD) of that day's delivered jobs.
    pub reconciled_usd: f64,
    /// Sum of the journaled CPU-seconds of that day's other jobs.
    pub unreconciled_cpu_s: f64,
}

/// Where jobs live. Implementations must make [`Store::commit_step`] atomic.
pub trait Store: Send + Sync {
    /// Insert a new job in `Init`.
    fn create_job(&self, job: &NewJob) -> Result<JobRecord, StoreError>;
    /// Read one job.
    fn job(&self, id: &str) -> Result<JobRecord, StoreError>;
    /// Commit a stage: memory writes + audit entries + cache entries + history line + state
    /// change, all or nothing. The audit entries' sequence numbers and hashes are added to the
    /// history line's detail (`audit`), so the step names the decisions it recorded.
    fn commit_step(&self, step: &StepCommit) -> Result<(), StoreError>;
    /// Append a history line without changing state (retries, resumes).
    fn append_event(&self, job_id: &str, state: &State, event: &NewEvent) -> Result<(), StoreError>;
    /// The job's history in order.
    fn history(&self, id: &str) -> Result<Vec<HistoryEvent>, StoreError>;
    /// The latest version of every written section.
    fn memory(&self, id: &str) -> Result<BTreeMap<Section, MemoryEntry>, StoreError>;
    /// The latest version of one section, if written.
    fn section(&self, id: &str, section: Section) -> Result<Option<MemoryEntry>, StoreError>;
    /// Every job, newest first.
    fn list_jobs(&self) -> Result<Vec<JobRecord>, StoreError>;
    /// Jobs a driver should pick up: not ended and not waiting for a human.
    fn resumable_jobs(&self) -> Result<Vec<JobRecord>, StoreError>;
    /// The process that drives the job now (`jobs.owner`), if any.
    fn job_owner(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// What the jobs created on `day` (UTC) spent, as one aggregate (the daily budget guard
    /// runs it on every submission).
    fn day_spend(&self, day: chrono::NaiveDate) -> Result<DaySpend, StoreError>;
}

/// Everything a process needs from its database: the job store, the service's persistence,
/// the cost audit trail and the consistency cache's table. One value of this serves the CLI,
/// the API and the workers, whichever backend it is.
pub trait Database: Store + service::ServiceStore + CostLedger + cache::CacheStore + Send + Sync {}

impl<T: Store + service::ServiceStore + CostLedger + cache::CacheStore + Send + Sync> Database for T {}

/// Where the jobs live, as `--store` / `AIPROD_STORE_URL` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An SQLite file (`sqlite://path`, or a plain path).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://user@host:port/db`).
    Postgres(String),
}

impl StoreUrl {
    /// The embedded default: `aiprod.db` under the data dir.
    pub fn default_for(data_dir: &Path) -> Self {
        Self::Sqlite(database_path(data_dir))
    }
}

impl std::str::FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Self::Postgres(s.to_owned()));
        }
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite://data/aiprod.db".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if s.is_empty() {
            return Err("empty store URL".into());
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(format!("unknown store scheme '{scheme}://' (expected sqlite:// or postgres://)"));
        }
        Ok(Self::Sqlite(PathBuf::from(s)))
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Self::Postgres(u) => f.write_str(&pg::redact(u)),
        }
    }
}

/// Open the store `url` names; PostgreSQL claims last `lease` without a heartbeat.
pub fn open(url: &StoreUrl, lease: std::time::Duration) -> Result<std::sync::Arc<dyn Database>, StoreError> {
    Ok(match url {
        StoreUrl::Sqlite(path) => std::sync::Arc::new(SqliteStore::open(path)?),
        StoreUrl::Postgres(u) => std::sync::Arc::new(PgStore::open(u)?.with_lease(lease)),
    })
}

/// The store the configuration names: `storage.storeUrl` when set, else the SQLite file
/// under `storage.dataDir`.
pub fn open_configured(storage: &crate::config::Storage) -> Result<std::sync::Arc<dyn Database>, StoreError> {
    let url = match &storage.store_url {
        Some(u) => u.parse().map_err(|e| StoreError::Setup(format!("storage.storeUrl: {e}")))?,
        None => StoreUrl::default_for(&storage.data_dir),
    };
    open(&url, std::time::Duration::from_secs_f64(storage.lease_sec))
}

#[cfg(test)]
mod url_tests {
    use super::StoreUrl;
    use std::path::PathBuf;

    #[test]
    fn store_urls_name_their_backend_or_are_refused() {
        assert_eq!("sqlite://d/a.db".parse(), Ok(StoreUrl::Sqlite(PathBuf::from("d/a.db"))));
        assert_eq!("d/a.db".parse(), Ok(StoreUrl::Sqlite(PathBuf::from("d/a.db"))));
        assert_eq!("postgres://u@h:5432/db".parse(), Ok(StoreUrl::Postgres("postgres://u@h:5432/db".into())));
        assert!("mysql://h/db".parse::<StoreUrl>().unwrap_err().contains("mysql://"));
        assert!("sqlite://".parse::<StoreUrl>().is_err());
        assert_eq!(StoreUrl::Postgres("postgres://u:secret@h/db".into()).to_string(), "postgres://u:***@h/db");
    }
}
