//! The driver: the only part of the pipeline that does IO around the pure machine.
//!
//! For each working state it runs the state's stage with a timeout and the retry policy,
//! computes the next state with the [`Machine`], then commits the stage's memory writes, the
//! history line and the new state in one store transaction. A process that dies mid-stage
//! leaves the job at its last committed state; the next `drive` re-runs only that stage.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use agents::{AgentContext, CancelToken, Progress};
use backon::Retryable;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::machine::{Event, Machine, Rejection, Stage, State};
use super::retry::{StageError, backoff};
use super::stages::{self, StageInput};
use crate::config::Config;
use crate::finance::audit::CostLedger;
use crate::finance::daily::{self, BudgetRefused};
use crate::finance::{cpu, pricing};
use crate::sanitize::{self, BriefRequest, FieldError};
use crate::store::{JobRecord, NewEvent, NewJob, StepCommit, Store, StoreError};

/// Why driving a job stopped abnormally (stage failures are not errors: they end the job in
/// `Failed`).
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stage produced an event its state does not accept (a bug, recorded in the history).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The brief failed validation.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// Today's spend has reached `financial.dailyLimit`; no job was created.
    #[error(transparent)]
    BudgetRefused(#[from] BudgetRefused),
}

/// Watches a job's progress: the CLI draws progress bars, the server forwards events.
pub trait Observer: Send + Sync {
    /// A stage attempt began.
    fn stage_started(&self, _job: &str, _stage: Stage, _attempt: u32) {}
    /// A stage reported the fraction of its work done.
    fn progress(&self, _job: &str, _stage: Stage, _fraction: f32) {}
    /// The job moved to a new state.
    fn transitioned(&self, _job: &str, _from: &State, _to: &State, _event: &Event, _duration_ms: u64) {}
    /// A stage attempt failed transiently and will be retried after `delay`.
    fn retrying(&self, _job: &str, _stage: Stage, _attempt: u32, _error: &str, _delay: Duration) {}
}

/// An observer that ignores everything.
pub struct NoObserver;
impl Observer for NoObserver {}

/// Runs jobs to completion (or to a human decision) against a store.
pub struct Driver {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    data_dir: PathBuf,
    observer: Arc<dyn Observer>,
    ledger: Option<Arc<dyn CostLedger>>,
    shutdown: Option<CancelToken>,
}

/// The seed for a job's randomness: the first 8 bytes of SHA-256(job id), so a re-run stage
/// makes the same choices.
pub fn seed_for(job_id: &str) -> u64 {
    let digest = Sha256::digest(job_id.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

impl Driver {
    /// A driver over `store`, writing artifacts under `data_dir/jobs/<id>/`.
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>, data_dir: impl Into<PathBuf>) -> Self {
        Self { config, store, data_dir: data_dir.into(), observer: Arc::new(NoObserver), ledger: None, shutdown: None }
    }

    /// Record cost decisions in (and read the pricing table in force from) this audit trail.
    /// Without one, the costing stage uses the static pricing table and says in memory that
    /// its decision was not audited.
    pub fn with_ledger(mut self, ledger: Arc<dyn CostLedger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// Stop at the next checkpoint when `token` trips, without ending the job: the server's
    /// graceful shutdown. A stage interrupted this way is journaled as `interrupted` and runs
    /// again when the job is next driven (stages are idempotent). Job tokens passed to
    /// [`Driver::drive`] should be children of it, so running stages stop at once.
    pub fn with_shutdown(mut self, token: CancelToken) -> Self {
        self.shutdown = Some(token);
        self
    }

    fn shutting_down(&self) -> bool {
        self.shutdown.as_ref().is_some_and(CancelToken::is_cancelled)
    }

    /// The configuration the driver runs with.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Apply a human decision (approve, request changes, reject, cancel) to a job, with its
    /// author in the history. The machine decides whether the job's state accepts it:
    /// [`DriverError::Rejected`] when it does not (nothing changes, the refusal is journaled),
    /// [`StoreError::Conflict`] when the job moved on meanwhile. Returns the new state.
    pub fn apply_human(&self, id: &str, event: Event, author: &str) -> Result<State, DriverError> {
        let job = self.store.job(id)?;
        let error = match &event {
            Event::Reject { reason } => Some(reason.clone()),
            _ => None,
        };
        self.commit(&job, event, vec![], 0, 0, error, Some(json!({"author": author})))?;
        Ok(self.store.job(id)?.state)
    }

    /// Report progress to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// The store the driver journals into.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Where a job's artifacts live.
    pub fn job_dir(&self, id: &str) -> PathBuf {
        self.data_dir.join("jobs").join(id)
    }

    /// Validate a brief and create its job. Nothing is stored for an invalid brief, nor when
    /// today's spend has reached `financial.dailyLimit` ([`DriverError::BudgetRefused`]).
    pub fn submit(&self, request: &BriefRequest, auto_approve: bool) -> Result<JobRecord, DriverError> {
        let clean = sanitize::sanitize(request, &self.config)?;
        let prices = pricing::current(&self.config, self.ledger.as_deref());
        daily::status(self.store.as_ref(), &self.config, &prices, chrono::Utc::now())?.admit()?;
        let job = self.store.create_job(&NewJob {
            id: uuid::Uuid::new_v4().to_string(),
            request: serde_json::to_value(request).map_err(StoreError::Json)?,
            preset: Some(clean.preset.clone()),
            brand_id: clean.brand_id.clone(),
            auto_approve,
        })?;
        info!(job = %job.id, preset = %clean.preset, "job submitted");
        Ok(job)
    }

    /// Drive every job a previous process left unfinished, marking each resume in its
    /// history. Returns the final states.
    pub async fn resume_all(&self, cancel: &CancelToken) -> Result<Vec<(String, State)>, DriverError> {
        let mut out = Vec::new();
        for job in self.store.resumable_jobs()? {
            let event = NewEvent {
                event: "resumed".into(),
                duration_ms: 0,
                attempt: 0,
                error: None,
                detail: Some(json!({"at_state": job.state.name()})),
            };
            self.store.append_event(&job.id, &job.state, &event)?;
            info!(job = %job.id, state = job.state.name(), "resuming job from its last committed state");
            out.push((job.id.clone(), self.drive(&job.id, cancel).await?));
        }
        Ok(out)
    }

    /// Run a job until it ends or waits for a human. Returns the state it stopped in.
    pub async fn drive(&self, id: &str, cancel: &CancelToken) -> Result<State, DriverError> {
        let mut ran = false;
        loop {
            let job = self.store.job(id)?;
            let state = job.state.clone();
            if state.is_terminal() {
                if ran && matches!(state, State::Delivered {}) {
                    crate::pipeline::reuse::record_delivery(&self.config, self.store.as_ref(), id).await;
                }
                return Ok(state);
            }
            if self.shutting_down() {
                return Ok(state);
            }
            if cancel.is_cancelled() {
                self.commit(&job, Event::Cancel, vec![], 0, 1, Some("cancelled".into()), None)?;
                continue;
            }
            let Some(stage) = state.stage() else {
                if job.auto_approve {
                    let detail = json!({"auto_approved": true, "why": "job submitted with auto-approve (CLI run)"});
                    self.commit(&job, Event::Approve, vec![], 0, 1, None, Some(detail))?;
                    continue;
                }
                return Ok(state);
            };
            self.run_stage(&job, stage, cancel).await?;
            ran = true;
        }
    }

    async fn run_stage(&self, job: &JobRecord, stage: Stage, cancel: &CancelToken) -> Result<(), DriverError> {
        let job_dir = self.job_dir(&job.id);
        std::fs::create_dir_all(&job_dir)
            .map_err(|e| StoreError::Setup(format!("create {}: {e}", job_dir.display())))?;
        let timeout = self.config.orchestrator.timeout(stage.name());
        let attempts = AtomicU32::new(0);
        let started = Instant::now();
        // Process CPU time around the whole stage (all attempts): the actual cost's input.
        let cpu_before = cpu::process_cpu_time();
        let run_once = || async {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            self.observer.stage_started(&job.id, stage, attempt);
            let token = cancel.child();
            let observer = self.observer.clone();
            let job_id = job.id.clone();
            let input = StageInput {
                config: &self.config,
                store: self.store.as_ref(),
                job,
                job_dir: &job_dir,
                data_dir: &self.data_dir,
                ledger: self.ledger.as_deref(),
                agent: AgentContext {
                    seed: seed_for(&job.id),
                    cancel: token.clone(),
                    progress: Progress::new(move |f| observer.progress(&job_id, stage, f)),
                },
            };
            match tokio::time::timeout(timeout, stages::run(&job.state, &input)).await {
                Ok(result) => result,
                Err(_) => {
                    token.cancel();
                    Err(StageError::Transient(format!(
                        "{} timed out after {:.0} s",
                        stage.name(),
                        timeout.as_secs_f64()
                    )))
                }
            }
        };
        let result = run_once
            .retry(backoff(&self.config.orchestrator.retry_policy))
            .sleep(tokio::time::sleep)
            .when(StageError::is_transient)
            .notify(|err, delay| {
                let attempt = attempts.load(Ordering::SeqCst);
                warn!(job = %job.id, stage = stage.name(), attempt, error = %err, ?delay, "stage failed, retrying");
                self.observer.retrying(&job.id, stage, attempt, &err.to_string(), delay);
                let event = NewEvent {
                    event: "retry".into(),
                    duration_ms: started.elapsed().as_millis() as u64,
                    attempt,
                    error: Some(err.to_string()),
                    detail: Some(json!({"stage": stage.name(), "delay_ms": delay.as_millis() as u64})),
                };
                if let Err(e) = self.store.append_event(&job.id, &job.state, &event) {
                    warn!(job = %job.id, error = %e, "could not journal a retry");
                }
            })
            .await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let cpu_ms = cpu::process_cpu_time().saturating_sub(cpu_before).as_millis() as u64;
        let with_cpu = |detail: Option<serde_json::Value>| match detail {
            Some(serde_json::Value::Object(mut m)) => {
                m.insert("cpu_ms".into(), cpu_ms.into());
                Some(serde_json::Value::Object(m))
            }
            Some(other) => Some(json!({"cpu_ms": cpu_ms, "stage_detail": other})),
            None => Some(json!({"cpu_ms": cpu_ms})),
        };
        let attempt = attempts.load(Ordering::SeqCst);
        match result {
            Ok(out) => self.commit(job, out.event, out.writes, duration_ms, attempt, None, with_cpu(out.detail)),
            Err(StageError::Cancelled) if self.shutting_down() => {
                let event = NewEvent {
                    event: "interrupted".into(),
                    duration_ms,
                    attempt,
                    error: Some(format!("{} interrupted by a server shutdown; it runs again on resume", stage.name())),
                    detail: Some(json!({"stage": stage.name()})),
                };
                self.store.append_event(&job.id, &job.state, &event)?;
                info!(job = %job.id, stage = stage.name(), "stage interrupted by shutdown");
                Ok(())
            }
            Err(StageError::Cancelled) => self.commit(
                job,
                Event::Cancel,
                vec![],
                duration_ms,
                attempt,
                Some(format!("cancelled during {}", stage.name())),
                with_cpu(None),
            ),
            Err(e) => {
                let error = e.to_string();
                let event = Event::StageFailed { stage: stage.name().into(), error: error.clone() };
                self.commit(job, event, vec![], duration_ms, attempt, Some(error), with_cpu(None))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        job: &JobRecord,
        event: Event,
        writes: Vec<crate::memory::MemoryWrite>,
        duration_ms: u64,
        attempt: u32,
        error: Option<String>,
        detail: Option<serde_json::Value>,
    ) -> Result<(), DriverError> {
        let mut machine = Machine::restore(job.state.clone(), self.config.orchestrator.max_rerenders);
        let to = match machine.apply(&event) {
            Ok(to) => to.clone(),
            Err(rejection) => {
                let line = NewEvent {
                    event: format!("rejected:{}", event.name()),
                    duration_ms,
                    attempt,
                    error: Some(rejection.to_string()),
                    detail: None,
                };
                self.store.append_event(&job.id, &job.state, &line)?;
                return Err(rejection.into());
            }
        };
        let error = error.or_else(|| match &event {
            Event::TechnicalFailed { reason } => Some(reason.clone()),
            _ => None,
        });
        self.store.commit_step(&StepCommit {
            job_id: job.id.clone(),
            from: job.state.clone(),
            to: to.clone(),
            event: NewEvent { event: event.name().into(), duration_ms, attempt, error, detail },
            writes,
        })?;
        info!(job = %job.id, from = job.state.name(), to = to.name(), event = event.name(), duration_ms, attempt, "transition");
        self.observer.transitioned(&job.id, &job.state, &to, &event, duration_ms);
        Ok(())
    }
}

/// The data directory's SQLite file.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("aiprod.db")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_stable_per_job() {
        assert_eq!(seed_for("a"), seed_for("a"));
        assert_ne!(seed_for("a"), seed_for("b"));
    }
}
