//! The driver: the only part of the pipeline that does IO around the pure machine.
//!
//! For each working state it runs the state's stage with a timeout and the retry policy,
//! computes the next state with the [`Machine`], then commits the stage's outcome — memory
//! writes, audit and cache entries — with the history line and the new state in one store
//! transaction, and only then promotes the files the stage finished. A process that dies
//! mid-stage leaves the job at its last committed state; the next `drive` re-runs only that
//! stage.
//!
//! Stages run through a [`StageRunner`] (the real one is [`PipelineStages`]), so the retry,
//! timeout, cancel, shutdown and rejection logic can be tested with a scripted runner in
//! milliseconds.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use agents::{AgentContext, CancelToken, Progress};
use backon::Retryable;
use futures_util::future::BoxFuture;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::machine::{Event, Machine, Rejection, Stage, State};
use super::retry::{StageError, backoff};
use super::stages::{self, Effect, StageInput, StageOutcome};
use crate::artifacts::{self, ArtifactStore};
use crate::config::Config;
use crate::finance::cpu;
use crate::finance::daily::{self, BudgetRefused};
use crate::memory::{Memory, MemoryWrite};
use crate::sanitize::{self, BriefRequest, FieldError, SanitizedInput};
use crate::store::cache::ConsistencyCache;
use crate::store::{CostLedger, JobRecord, NewEvent, NewJob, StepCommit, Store, StoreError};

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
    /// The preset asks for two distinct approvers (`multiReview`) and this person already
    /// approved; nothing changes.
    #[error("job {job} needs a second approver: {author} has already approved it (presets.*.multiReview)")]
    SameApprover {
        /// The job.
        job: String,
        /// Who approved twice.
        author: String,
    },
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

/// Runs the stage of a state. The driver owns timeouts, retries, cancellation and the commit;
/// the runner only turns inputs into an outcome. Injected so the driver's policy is testable
/// without rendering anything.
pub trait StageRunner: Send + Sync {
    /// Run the stage for `state` once.
    fn run<'a>(
        &'a self,
        state: &'a State,
        input: &'a StageInput<'a>,
    ) -> BoxFuture<'a, Result<StageOutcome, StageError>>;
}

/// The real stages ([`stages::run`]).
pub struct PipelineStages;

impl StageRunner for PipelineStages {
    fn run<'a>(
        &'a self,
        state: &'a State,
        input: &'a StageInput<'a>,
    ) -> BoxFuture<'a, Result<StageOutcome, StageError>> {
        Box::pin(stages::run(state, input))
    }
}

/// Runs jobs to completion (or to a human decision) against a store.
pub struct Driver {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    data_dir: PathBuf,
    artifacts: Arc<dyn ArtifactStore>,
    observer: Arc<dyn Observer>,
    ledger: Option<Arc<dyn CostLedger>>,
    cache: Option<ConsistencyCache>,
    runner: Arc<dyn StageRunner>,
    shutdown: Option<CancelToken>,
    owner: Option<String>,
}

/// The `.partial` files a stage finished, with their final names inside the job: published
/// under those names before the step commits, renamed locally after.
fn finished_files(job_dir: &std::path::Path, effects: &[Effect]) -> Vec<(PathBuf, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Promote { from, to } => {
                let name = to.strip_prefix(job_dir).ok()?.to_string_lossy().replace('\\', "/");
                Some((from.clone(), name))
            }
            _ => None,
        })
        .collect()
}

/// How a stage attempt refused to run because the job moved on (see [`Driver::with_owner`]).
const MOVED_ON: &str = "not run";

/// A duration in seconds as people write it: `600 s`, `0.25 s`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{s:.0} s") } else { format!("{s:.2} s") }
}

/// The seed for a job's randomness: the first 8 bytes of SHA-256(job id), so a re-run stage
/// makes the same choices.
pub fn seed_for(job_id: &str) -> u64 {
    let digest = Sha256::digest(job_id.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

impl Driver {
    /// A driver over `store`, working in `data_dir/jobs/<id>/` and serving the files from
    /// there (see [`Driver::with_artifacts`] for another artifact store).
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>, data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            config,
            store,
            artifacts: Arc::new(artifacts::fs::FsArtifacts::working(data_dir.join("jobs"))),
            data_dir,
            observer: Arc::new(NoObserver),
            ledger: None,
            cache: None,
            runner: Arc::new(PipelineStages),
            shutdown: None,
            owner: None,
        }
    }

    /// Use the process's consistency cache (opened at start-up on this driver's store): brand
    /// markers are looked up in it and identical requests reuse delivered jobs. Without one,
    /// neither happens, and the planning stage says so in memory.
    pub fn with_cache(mut self, cache: ConsistencyCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The consistency cache, when the driver has one.
    pub fn cache(&self) -> Option<&ConsistencyCache> {
        self.cache.as_ref()
    }

    /// Publish finished files to `store` (a shared directory, S3) instead of serving them from
    /// the working directories: each stage's files are uploaded before its step commits, and
    /// a job's working directory is restored from the store before each stage, so any worker
    /// on any machine can continue a job.
    pub fn with_artifacts(mut self, store: Arc<dyn ArtifactStore>) -> Self {
        self.artifacts = store;
        self
    }

    /// Where the jobs' finished files are published and read from.
    pub fn artifacts(&self) -> &Arc<dyn ArtifactStore> {
        &self.artifacts
    }

    /// Bring `id`'s local working directory up to date with the artifact store (a job another
    /// machine rendered, before its files are copied out or summarised here). Returns the
    /// names downloaded; none with the default store.
    pub async fn restore_working_copy(&self, id: &str) -> Result<Vec<String>, artifacts::ArtifactError> {
        let dir = self.job_dir(id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| artifacts::ArtifactError::io(format!("create {}", dir.display()), e))?;
        artifacts::sync::restore(self.artifacts.as_ref(), id, &dir).await
    }

    /// Run stages with `runner` instead of the real ones (tests of the driver's policy).
    pub fn with_runner(mut self, runner: Arc<dyn StageRunner>) -> Self {
        self.runner = runner;
        self
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

    /// Drive only jobs whose `jobs.owner` is `owner` (this process's id): before every stage
    /// attempt, retries included, and before committing one, the job must still be in the
    /// stage's state and still be owned by it; otherwise the driver stops touching the job.
    /// Without an owner (one-job tools, tests) only the state is re-checked.
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Why this driver must leave `job` alone now: it left the state the stage started from,
    /// or another process owns it. `None` while it is still this driver's to run.
    fn moved_on(&self, job: &JobRecord) -> Result<Option<String>, StoreError> {
        let now = self.store.job(&job.id)?;
        if now.state != job.state {
            return Ok(Some(format!(
                "job {} is now in state '{}', not '{}'",
                job.id,
                now.state.name(),
                job.state.name()
            )));
        }
        if let Some(me) = &self.owner {
            let holder = self.store.job_owner(&job.id)?;
            if holder.as_deref() != Some(me.as_str()) {
                let holder = holder.unwrap_or_else(|| "nobody".into());
                return Ok(Some(format!("job {} is owned by {holder}, not by this process", job.id)));
            }
        }
        Ok(None)
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
        let mut detail = json!({"author": author});
        if matches!(event, Event::Approve) && job.state.awaits_human() && self.multi_review(&job) {
            match self.approvals_so_far(&job)? {
                approvers if approvers.iter().any(|a| a == author) => {
                    return Err(DriverError::SameApprover { job: job.id.clone(), author: author.to_owned() });
                }
                approvers if approvers.is_empty() => {
                    // The first of two approvals: journaled, the job waits for the second.
                    let line = NewEvent {
                        event: "approval_recorded".into(),
                        duration_ms: 0,
                        attempt: 0,
                        error: None,
                        detail: Some(json!({"author": author, "approvals_needed": 2})),
                    };
                    self.store.append_event(&job.id, &job.state, &line)?;
                    info!(job = %job.id, author, "first of two approvals recorded (multiReview)");
                    return Ok(job.state);
                }
                approvers => detail = json!({"author": author, "approvers": [approvers[0].as_str(), author]}),
            }
        }
        self.commit(&job, event, vec![], 0, 0, error, Some(detail))?;
        Ok(self.store.job(id)?.state)
    }

    /// Whether the job's preset asks for two distinct approvers (`presets.*.multiReview`).
    fn multi_review(&self, job: &JobRecord) -> bool {
        job.preset.as_deref().and_then(|p| self.config.presets.get(p)).is_some_and(|p| p.multi_review)
    }

    /// Who approved the job since it entered its current (waiting) state.
    fn approvals_so_far(&self, job: &JobRecord) -> Result<Vec<String>, StoreError> {
        let history = self.store.history(&job.id)?;
        let entered = history.iter().rposition(|h| h.from != h.to && h.to == job.state.name()).map_or(0, |i| i + 1);
        Ok(history[entered..]
            .iter()
            .filter(|h| h.event == "approval_recorded")
            .filter_map(|h| h.detail.as_ref()?.get("author")?.as_str().map(str::to_owned))
            .collect())
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

    /// A job's local working directory: where its stages read and write files (with the
    /// default artifact store, also where they are served from).
    pub fn job_dir(&self, id: &str) -> PathBuf {
        artifacts::working_dir(&self.data_dir, id)
    }

    /// Validate a brief and create its job. Nothing is stored for an invalid brief, nor when
    /// today's spend has reached `financial.dailyLimit` ([`DriverError::BudgetRefused`]).
    pub fn submit(&self, request: &BriefRequest, auto_approve: bool) -> Result<JobRecord, DriverError> {
        let clean = sanitize::sanitize(request, &self.config)?;
        self.submit_sanitized(request, &clean, auto_approve)
    }

    /// [`Driver::submit`] for a brief the caller already sanitised (the CLI and the API check
    /// it first, for identical-request reuse): the brief is sanitised once per submission.
    pub fn submit_sanitized(
        &self,
        request: &BriefRequest,
        clean: &SanitizedInput,
        auto_approve: bool,
    ) -> Result<JobRecord, DriverError> {
        let job = self.store.create_job(&self.admit(request, clean, auto_approve)?)?;
        info!(job = %job.id, preset = %clean.preset, "job submitted");
        Ok(job)
    }

    /// The job row a sanitised brief becomes, once today's spend admits it
    /// ([`DriverError::BudgetRefused`] otherwise). The API creates it with its options and
    /// idempotency key in one transaction; [`Driver::submit_sanitized`] creates it as is.
    pub fn admit(
        &self,
        request: &BriefRequest,
        clean: &SanitizedInput,
        auto_approve: bool,
    ) -> Result<NewJob, DriverError> {
        let prices = crate::store::pricing_in_force(&self.config, self.ledger.as_deref());
        daily::status(self.store.as_ref(), &self.config, &prices, chrono::Utc::now())?.admit()?;
        Ok(NewJob {
            id: uuid::Uuid::new_v4().to_string(),
            // The cleaned text is what is stored: control and bidi characters never reach
            // the store, and re-sanitising it gives the same brief.
            request: serde_json::to_value(BriefRequest { content: clean.content.clone(), ..request.clone() })
                .map_err(StoreError::Json)?,
            preset: Some(clean.preset.clone()),
            brand_id: clean.brand_id.clone(),
            auto_approve,
        })
    }

    /// Journal that `job` is picked up again from its last committed state (a `resumed` line
    /// naming the state and who resumed it: `aiprod resume` or the service's start-up).
    pub fn mark_resumed(&self, job: &JobRecord, by: &str) -> Result<(), StoreError> {
        let event = NewEvent {
            event: "resumed".into(),
            duration_ms: 0,
            attempt: 0,
            error: None,
            detail: Some(json!({"at_state": job.state.name(), "by": by})),
        };
        self.store.append_event(&job.id, &job.state, &event)?;
        info!(job = %job.id, state = job.state.name(), by, "resuming job from its last committed state");
        Ok(())
    }

    /// Run a job until it ends or waits for a human. Returns the state it stopped in.
    pub async fn drive(&self, id: &str, cancel: &CancelToken) -> Result<State, DriverError> {
        loop {
            let job = self.store.job(id)?;
            let state = job.state.clone();
            if state.is_terminal() {
                return Ok(state);
            }
            if self.shutting_down() {
                return Ok(state);
            }
            if cancel.is_cancelled() {
                self.commit(&job, Event::Cancel, vec![], 0, 1, Some("cancelled".into()), None)?;
                continue;
            }
            if let Some(me) = &self.owner
                && self.store.job_owner(id)?.as_deref() != Some(me.as_str())
            {
                info!(job = %id, "another process drives this job now; leaving it");
                return Ok(state);
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
        }
    }

    async fn run_stage(&self, job: &JobRecord, stage: Stage, cancel: &CancelToken) -> Result<(), DriverError> {
        let job_dir = self.job_dir(&job.id);
        std::fs::create_dir_all(&job_dir)
            .map_err(|e| StoreError::Setup(format!("create {}: {e}", job_dir.display())))?;
        let timeout = self.config.orchestrator.timeout(stage);
        // What the stage may read, read once before its first attempt: memory does not change
        // while the job sits in this state (only this driver, the job's owner, commits).
        let memory = Memory::new(self.store.memory(&job.id)?);
        // Costing prices the stages that already ran as measured; delivery reconciles them all.
        let history =
            if matches!(stage, Stage::Cost | Stage::Deliver) { self.store.history(&job.id)? } else { Vec::new() };
        let prices = crate::store::pricing_in_force(&self.config, self.ledger.as_deref());
        let day = match stage {
            Stage::Cost => Some(daily::status(self.store.as_ref(), &self.config, &prices, chrono::Utc::now())?),
            _ => None,
        };
        let location = self.artifacts.location(&job.id);
        let attempts = AtomicU32::new(0);
        let started = Instant::now();
        // Process CPU time around the whole stage (all attempts): the actual cost's input.
        let cpu_before = cpu::process_cpu_time();
        let run_once = || async {
            // Every attempt, retries included, runs only while the job is still this stage's
            // and this process's: a retry never re-renders a job someone else delivered.
            if let Some(why) = self.moved_on(job).map_err(|e| StageError::Transient(e.to_string()))? {
                return Err(StageError::Permanent(format!("{MOVED_ON}: {why}")));
            }
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            self.observer.stage_started(&job.id, stage, attempt);
            let token = cancel.child();
            let observer = self.observer.clone();
            let job_id = job.id.clone();
            let input = StageInput {
                config: &self.config,
                job,
                memory: &memory,
                history: &history,
                job_dir: &job_dir,
                artifact_location: &location,
                data_dir: &self.data_dir,
                prices: &prices,
                audited: self.ledger.is_some(),
                daily: day.as_ref(),
                cache: self.cache.as_ref(),
                agent: AgentContext {
                    seed: seed_for(&job.id),
                    cancel: token.clone(),
                    progress: Progress::new(move |f| observer.progress(&job_id, stage, f)),
                },
            };
            // Restore, run, publish: the files a stage reads are here before it starts, and
            // the files it finished are in the artifact store before its step can commit.
            let attempt_future = async {
                let restored = artifacts::sync::restore(self.artifacts.as_ref(), &job.id, &job_dir)
                    .await
                    .map_err(|e| StageError::Transient(format!("restoring the job's files: {e}")))?;
                if !restored.is_empty() {
                    info!(job = %job.id, files = restored.len(), "working copy restored from the artifact store");
                }
                let outcome = self.runner.run(&job.state, &input).await?;
                let finished = finished_files(&job_dir, &outcome.effects);
                let published = artifacts::sync::publish(self.artifacts.as_ref(), &job.id, &job_dir, &finished)
                    .await
                    .map_err(|e| StageError::Transient(format!("publishing the job's files: {e}")))?;
                if !published.is_empty() {
                    info!(job = %job.id, files = published.len(), "published to the artifact store");
                }
                Ok::<StageOutcome, StageError>(outcome)
            };
            tokio::pin!(attempt_future);
            tokio::select! {
                result = &mut attempt_future => result,
                _ = tokio::time::sleep(timeout) => {
                    // Cancel the attempt and wait for it to stop, so a retry never runs next
                    // to a timed-out attempt that is still working (blocking work ignores a
                    // dropped future; it sees the token).
                    token.cancel();
                    let _ = attempt_future.await;
                    Err(StageError::Transient(format!("{} timed out after {}", stage.name(), seconds(timeout))))
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
        // The job moved on while the stage ran (or before an attempt): nothing to commit.
        if let Some(why) = self.moved_on(job)? {
            warn!(job = %job.id, stage = stage.name(), %why, "stage result dropped: the job moved on");
            return Ok(());
        }
        match result {
            Ok(out) => {
                let detail = with_cpu(out.detail);
                self.commit_outcome(job, out.event, out.writes, out.effects, duration_ms, attempt, detail).await
            }
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

    /// Commit a stage's outcome: audit and cache entries go into the step's transaction; the
    /// in-memory cache and the promoted files follow only once it committed. A step that does
    /// not commit leaves its `.partial` files behind, never a final one.
    #[allow(clippy::too_many_arguments)]
    async fn commit_outcome(
        &self,
        job: &JobRecord,
        event: Event,
        writes: Vec<MemoryWrite>,
        effects: Vec<Effect>,
        duration_ms: u64,
        attempt: u32,
        detail: Option<serde_json::Value>,
    ) -> Result<(), DriverError> {
        let (mut audit, mut cache, mut promote) = (Vec::new(), Vec::new(), Vec::new());
        for effect in effects {
            match effect {
                Effect::Audit(a) => audit.push(a),
                Effect::Cache(c) => cache.push(c),
                Effect::Promote { from, to } => promote.push((from, to)),
            }
        }
        self.commit_with(job, event, writes, audit, cache.clone(), duration_ms, attempt, None, detail)?;
        if let Some(c) = &self.cache {
            for entry in cache {
                c.remember(entry).await;
            }
        }
        for (from, to) in promote {
            if let Err(e) = std::fs::rename(&from, &to) {
                warn!(job = %job.id, from = %from.display(), to = %to.display(), error = %e, "could not promote a finished file");
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        job: &JobRecord,
        event: Event,
        writes: Vec<MemoryWrite>,
        duration_ms: u64,
        attempt: u32,
        error: Option<String>,
        detail: Option<serde_json::Value>,
    ) -> Result<(), DriverError> {
        self.commit_with(job, event, writes, vec![], vec![], duration_ms, attempt, error, detail)
    }

    #[allow(clippy::too_many_arguments)]
    fn commit_with(
        &self,
        job: &JobRecord,
        event: Event,
        writes: Vec<MemoryWrite>,
        audit: Vec<crate::store::AuditAppend>,
        cache: Vec<crate::store::cache::CacheEntry>,
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
            audit,
            cache,
            // Stage commits (attempt 1 and up) are this driver's only while it still holds
            // the job; human decisions (attempt 0) may come from any API node.
            owner: if attempt == 0 { None } else { self.owner.clone() },
        })?;
        info!(job = %job.id, from = job.state.name(), to = to.name(), event = event.name(), duration_ms, attempt, "transition");
        self.observer.transitioned(&job.id, &job.state, &to, &event, duration_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::finance::audit::AuditKind;
    use crate::store::cache::{self, CacheStore};
    use crate::store::{AuditAppend, SqliteStore};

    type Script =
        dyn Fn(State, PathBuf, CancelToken) -> BoxFuture<'static, Result<StageOutcome, StageError>> + Send + Sync;

    /// A stage runner that plays a script instead of running stages.
    struct Scripted(Box<Script>);

    impl StageRunner for Scripted {
        fn run<'a>(
            &'a self,
            state: &'a State,
            input: &'a StageInput<'a>,
        ) -> BoxFuture<'a, Result<StageOutcome, StageError>> {
            (self.0)(state.clone(), input.job_dir.to_path_buf(), input.agent.cancel.clone())
        }
    }

    fn scripted(
        f: impl Fn(State, PathBuf, CancelToken) -> BoxFuture<'static, Result<StageOutcome, StageError>>
        + Send
        + Sync
        + 'static,
    ) -> Arc<dyn StageRunner> {
        Arc::new(Scripted(Box::new(f)))
    }

    fn config(edit: impl FnOnce(&mut Config)) -> Arc<Config> {
        let mut c = Config::builtin();
        c.orchestrator.retry_policy.backoff_sec = 0.0;
        c.orchestrator.retry_policy.max_backoff_sec = 0.0;
        edit(&mut c);
        Arc::new(c)
    }

    struct Fixture {
        store: Arc<SqliteStore>,
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            Self { store: Arc::new(SqliteStore::in_memory().unwrap()), dir: tempfile::tempdir().unwrap() }
        }

        fn driver(&self, config: Arc<Config>, runner: Arc<dyn StageRunner>) -> Driver {
            Driver::new(config, self.store.clone(), self.dir.path()).with_runner(runner).with_ledger(self.store.clone())
        }

        /// A job moved straight into `state` (as if the earlier stages had run).
        fn job_in(&self, state: State) -> String {
            let id = uuid::Uuid::new_v4().to_string();
            let new = NewJob { id: id.clone(), request: json!({}), preset: None, brand_id: None, auto_approve: false };
            self.store.create_job(&new).unwrap();
            let event = NewEvent { event: "setup".into(), duration_ms: 0, attempt: 0, error: None, detail: None };
            let step = StepCommit {
                job_id: id.clone(),
                from: State::Init {},
                to: state,
                event,
                writes: vec![],
                audit: vec![],
                cache: vec![],
                owner: None,
            };
            self.store.commit_step(&step).unwrap();
            id
        }

        fn events(&self, id: &str) -> Vec<crate::store::HistoryEvent> {
            self.store.history(id).unwrap()
        }
    }

    fn ok(event: Event) -> Result<StageOutcome, StageError> {
        Ok(StageOutcome::new(event, vec![], None))
    }

    /// Every stage after the one under test fails permanently, so a drive stops right after it.
    fn stop() -> Result<StageOutcome, StageError> {
        Err(StageError::Permanent("script ends here".into()))
    }

    /// Drive with a generous outer bound: a driver bug fails the test instead of hanging it.
    async fn drive(driver: &Driver, id: &str, cancel: &CancelToken) -> Result<State, DriverError> {
        tokio::time::timeout(Duration::from_secs(60), driver.drive(id, cancel)).await.expect("drive finished")
    }

    /// Wait until the attempt's token is cancelled, then take `linger` to stop (as a blocking
    /// stage would), answering `Cancelled`.
    async fn until_cancelled(token: CancelToken, linger: Duration) -> Result<StageOutcome, StageError> {
        while !token.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(linger).await;
        Err(StageError::Cancelled)
    }

    #[test]
    fn seeds_are_stable_per_job() {
        assert_eq!(seed_for("a"), seed_for("a"));
        assert_ne!(seed_for("a"), seed_for("b"));
    }

    #[tokio::test]
    async fn the_technical_qa_timeout_from_config_is_the_one_applied() {
        let f = Fixture::new();
        // Every other stage gets an hour: if the driver looked up the wrong key, the QA stage
        // would get the longest timeout and the outer bound would fail the test.
        let config = config(|c| {
            for stage in Stage::ALL {
                c.orchestrator.stage_timeouts_sec.0.insert(stage, 3600.0);
            }
            c.orchestrator.stage_timeouts_sec.0.insert(Stage::TechnicalQa, 0.05);
            c.orchestrator.retry_policy.max_retries = 0;
        });
        let runner = scripted(|state, _, token| {
            Box::pin(async move {
                match state {
                    State::TechnicalQa { .. } => until_cancelled(token, Duration::ZERO).await,
                    _ => stop(),
                }
            })
        });
        let driver = f.driver(config, runner);
        let id = f.job_in(State::TechnicalQa { attempt: 1 });
        let end = drive(&driver, &id, &CancelToken::new()).await.unwrap();
        match end {
            State::Failed { stage, error } => {
                assert_eq!(stage, "technical_qa");
                assert_eq!(error, "technical_qa timed out after 0.05 s");
            }
            other => panic!("expected a failed job, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_timed_out_attempt_is_cancelled_and_awaited_before_the_retry() {
        let f = Fixture::new();
        let config = config(|c| {
            c.orchestrator.stage_timeouts_sec.0.insert(Stage::Render, 0.02);
            c.orchestrator.retry_policy.max_retries = 2;
        });
        let running = Arc::new(AtomicUsize::new(0));
        let overlaps = Arc::new(AtomicUsize::new(0));
        let attempts = Arc::new(AtomicUsize::new(0));
        let (r, o, a) = (running.clone(), overlaps.clone(), attempts.clone());
        let runner = scripted(move |state, _, token| {
            let (r, o, a) = (r.clone(), o.clone(), a.clone());
            Box::pin(async move {
                if !matches!(state, State::Rendering { .. }) {
                    return stop();
                }
                a.fetch_add(1, Ordering::SeqCst);
                if r.fetch_add(1, Ordering::SeqCst) > 0 {
                    o.fetch_add(1, Ordering::SeqCst);
                }
                // Slow to stop: a retry started without awaiting this attempt would overlap.
                let out = until_cancelled(token, Duration::from_millis(30)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                out
            })
        });
        let driver = f.driver(config, runner);
        let id = f.job_in(State::Rendering { attempt: 1 });
        let end = drive(&driver, &id, &CancelToken::new()).await.unwrap();
        assert!(matches!(end, State::Failed { .. }), "{end:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 3, "first attempt + 2 retries");
        assert_eq!(overlaps.load(Ordering::SeqCst), 0, "an attempt started while a timed-out one still ran");
        let retries = f.events(&id).iter().filter(|e| e.event == "retry").count();
        assert_eq!(retries, 2);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_journaled_then_the_stage_commits() {
        let f = Fixture::new();
        let config = config(|c| c.orchestrator.retry_policy.max_retries = 3);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let runner = scripted(move |state, _, _| {
            let c = c.clone();
            Box::pin(async move {
                match state {
                    State::Supervising {} if c.fetch_add(1, Ordering::SeqCst) < 2 => {
                        Err(StageError::Transient("flaky".into()))
                    }
                    State::Supervising {} => ok(Event::Decided { decision: super::super::machine::Decision::Approve }),
                    _ => stop(),
                }
            })
        });
        let driver = f.driver(config, runner);
        let id = f.job_in(State::Supervising {});
        let end = drive(&driver, &id, &CancelToken::new()).await.unwrap();
        // Approved: delivering ran next and the script stopped it there.
        assert!(matches!(&end, State::Failed { stage, .. } if stage == "delivering"), "{end:?}");
        let history = f.events(&id);
        let retries: Vec<_> = history.iter().filter(|e| e.event == "retry").collect();
        assert_eq!(retries.len(), 2);
        assert!(retries.iter().all(|e| e.error.as_deref() == Some("flaky")));
        let decided = history.iter().find(|e| e.event == "decided").expect("decision committed");
        assert_eq!(decided.attempt, 3);
        assert!(decided.detail.as_ref().is_some_and(|d| d.get("cpu_ms").is_some()), "cpu time journaled");
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let f = Fixture::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let runner = scripted(move |_, _, _| {
            c.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err(StageError::Permanent("bad input".into())) })
        });
        let driver = f.driver(config(|c| c.orchestrator.retry_policy.max_retries = 3), runner);
        let id = f.job_in(State::Costing {});
        let end = drive(&driver, &id, &CancelToken::new()).await.unwrap();
        assert_eq!(end, State::Failed { stage: "costing".into(), error: "bad input".into() });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_cancelled_job_ends_cancelled_during_its_stage() {
        let f = Fixture::new();
        let runner = scripted(|_, _, token| Box::pin(until_cancelled(token, Duration::ZERO)));
        let driver = f.driver(config(|_| {}), runner);
        let id = f.job_in(State::Rendering { attempt: 1 });
        let cancel = CancelToken::new();
        let trip = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            trip.cancel();
        });
        let end = drive(&driver, &id, &cancel).await.unwrap();
        assert_eq!(end, State::Cancelled {});
        let last = f.events(&id).pop().unwrap();
        assert_eq!(last.error.as_deref(), Some("cancelled during rendering"));
    }

    #[tokio::test]
    async fn a_shutdown_interrupts_the_stage_without_ending_the_job() {
        let f = Fixture::new();
        let shutdown = CancelToken::new();
        let runner = scripted(|_, _, token| Box::pin(until_cancelled(token, Duration::ZERO)));
        let driver = f.driver(config(|_| {}), runner).with_shutdown(shutdown.clone());
        let id = f.job_in(State::Rendering { attempt: 1 });
        let job_token = shutdown.child();
        let trip = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            trip.cancel();
        });
        let end = drive(&driver, &id, &job_token).await.unwrap();
        assert_eq!(end, State::Rendering { attempt: 1 }, "the job stays where it was, to be resumed");
        let last = f.events(&id).pop().unwrap();
        assert_eq!(last.event, "interrupted");
    }

    #[tokio::test]
    async fn an_event_the_state_does_not_accept_is_rejected_and_journaled() {
        let f = Fixture::new();
        let runner = scripted(|_, _, _| Box::pin(async { ok(Event::Rendered) }));
        let driver = f.driver(config(|_| {}), runner);
        let id = f.job_in(State::Costing {});
        let err = drive(&driver, &id, &CancelToken::new()).await.unwrap_err();
        assert!(matches!(err, DriverError::Rejected(_)), "{err:?}");
        assert_eq!(f.store.job(&id).unwrap().state, State::Costing {});
        assert_eq!(f.events(&id).pop().unwrap().event, "rejected:rendered");
    }

    fn effects(job_dir: &std::path::Path, id: &str) -> Vec<Effect> {
        std::fs::create_dir_all(job_dir).unwrap();
        let partial = job_dir.join(".report.json.partial");
        std::fs::write(&partial, b"{}").unwrap();
        vec![
            Effect::Audit(AuditAppend { kind: AuditKind::CostDecision, payload: json!({"estimate": 0.25}) }),
            Effect::Cache(cache::delivered_entry("request-key", id)),
            Effect::Promote { from: partial, to: job_dir.join("report.json") },
        ]
    }

    #[tokio::test]
    async fn a_stages_audit_and_cache_effects_commit_with_its_step() {
        let f = Fixture::new();
        let runner = scripted(|state, job_dir, _| {
            Box::pin(async move {
                match state {
                    State::Costing {} => {
                        let id = job_dir.file_name().unwrap().to_string_lossy().into_owned();
                        let effects = effects(&job_dir, &id);
                        Ok(StageOutcome {
                            event: Event::Costed { plan_review: false },
                            writes: vec![],
                            effects,
                            detail: None,
                        })
                    }
                    _ => stop(),
                }
            })
        });
        let driver = f.driver(config(|_| {}), runner);
        let id = f.job_in(State::Costing {});
        drive(&driver, &id, &CancelToken::new()).await.unwrap();
        let audit = f.store.entries().unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].job_id.as_deref(), Some(id.as_str()));
        let costed = f.events(&id).into_iter().find(|e| e.event == "costed").unwrap();
        assert_eq!(costed.detail.unwrap()["audit"][0]["seq"], 1, "the step names the entry it appended");
        let cached = f.store.cache_since(cache::KIND_DELIVERED, 0).unwrap();
        assert_eq!(cached.len(), 1);
        assert!(driver.job_dir(&id).join("report.json").is_file(), "the finished file was promoted");
    }

    #[tokio::test]
    async fn a_step_that_does_not_commit_leaves_no_audit_cache_or_final_file() {
        let f = Fixture::new();
        let store = f.store.clone();
        let moved = Arc::new(Mutex::new(None::<String>));
        let m = moved.clone();
        // The job moves on while the stage runs (another writer; or a process killed between
        // the stage's end and its commit, whose successor re-runs the stage): the commit
        // conflicts and must take the stage's effects down with it.
        let runner = scripted(move |state, job_dir, _| {
            let (store, m) = (store.clone(), m.clone());
            Box::pin(async move {
                let id = job_dir.file_name().unwrap().to_string_lossy().into_owned();
                assert_eq!(state, State::Costing {});
                let event =
                    NewEvent { event: "elsewhere".into(), duration_ms: 0, attempt: 0, error: None, detail: None };
                store
                    .commit_step(&StepCommit {
                        job_id: id.clone(),
                        from: State::Costing {},
                        to: State::Cancelled {},
                        event,
                        writes: vec![],
                        audit: vec![],
                        cache: vec![],
                        owner: None,
                    })
                    .unwrap();
                *m.lock().unwrap() = Some(id.clone());
                let effects = effects(&job_dir, &id);
                Ok(StageOutcome { event: Event::Costed { plan_review: false }, writes: vec![], effects, detail: None })
            })
        });
        let driver = f.driver(config(|_| {}), runner);
        let id = f.job_in(State::Costing {});
        // The driver sees that the job moved on before committing and drops the result (a
        // move between that check and the commit is refused by the commit's own state check).
        let end = drive(&driver, &id, &CancelToken::new()).await.unwrap();
        assert_eq!(end, State::Cancelled {});
        assert_eq!(moved.lock().unwrap().as_deref(), Some(id.as_str()));
        assert!(f.store.entries().unwrap().is_empty(), "no audit entry without its step");
        assert!(f.store.cache_since(cache::KIND_DELIVERED, 0).unwrap().is_empty(), "no cache entry without its step");
        assert!(!driver.job_dir(&id).join("report.json").exists(), "nothing promoted without its step");
        assert!(f.events(&id).iter().all(|e| e.event != "costed"));
    }

    /// A shared-directory artifact store that notes, for every file put, the job's state in
    /// the job store at that moment: upload, then record means it is the state the stage
    /// started from.
    struct Witness {
        inner: artifacts::fs::FsArtifacts,
        jobs: Arc<SqliteStore>,
        puts: Mutex<Vec<(String, String)>>,
    }

    impl ArtifactStore for Witness {
        fn location(&self, job: &str) -> String {
            self.inner.location(job)
        }
        fn is_working_dir(&self) -> bool {
            false
        }
        fn put_file<'a>(
            &'a self,
            job: &'a str,
            name: &'a str,
            local: &'a std::path::Path,
        ) -> BoxFuture<'a, Result<artifacts::Artifact, artifacts::ArtifactError>> {
            let state = self.jobs.job(job).unwrap().state.name().to_owned();
            self.puts.lock().unwrap().push((name.to_owned(), state));
            self.inner.put_file(job, name, local)
        }
        fn put_bytes<'a>(
            &'a self,
            job: &'a str,
            name: &'a str,
            bytes: bytes::Bytes,
        ) -> BoxFuture<'a, Result<artifacts::Artifact, artifacts::ArtifactError>> {
            self.inner.put_bytes(job, name, bytes)
        }
        fn head<'a>(
            &'a self,
            job: &'a str,
            name: &'a str,
        ) -> BoxFuture<'a, Result<Option<artifacts::Artifact>, artifacts::ArtifactError>> {
            self.inner.head(job, name)
        }
        fn get_range<'a>(
            &'a self,
            job: &'a str,
            name: &'a str,
            range: std::ops::Range<u64>,
        ) -> BoxFuture<'a, Result<bytes::Bytes, artifacts::ArtifactError>> {
            self.inner.get_range(job, name, range)
        }
        fn list<'a>(
            &'a self,
            job: &'a str,
        ) -> BoxFuture<'a, Result<Vec<artifacts::Artifact>, artifacts::ArtifactError>> {
            self.inner.list(job)
        }
        fn remove_job<'a>(&'a self, job: &'a str) -> BoxFuture<'a, Result<(), artifacts::ArtifactError>> {
            self.inner.remove_job(job)
        }
    }

    #[tokio::test]
    async fn with_an_artifact_store_a_stages_files_are_stored_before_its_step_and_restored_before_the_next() {
        let f = Fixture::new();
        let shared = f.dir.path().join("shared");
        let witness = Arc::new(Witness {
            inner: artifacts::fs::FsArtifacts::shared(&shared),
            jobs: f.store.clone(),
            puts: Mutex::new(Vec::new()),
        });
        let runner = scripted(|state, job_dir, _| {
            Box::pin(async move {
                match state {
                    State::Costing {} => {
                        let id = job_dir.file_name().unwrap().to_string_lossy().into_owned();
                        std::fs::create_dir_all(job_dir.join("narration")).unwrap();
                        std::fs::write(job_dir.join("narration/scene_01.en.wav"), b"RIFF").unwrap();
                        let effects = effects(&job_dir, &id);
                        Ok(StageOutcome {
                            event: Event::Costed { plan_review: false },
                            writes: vec![],
                            effects,
                            detail: None,
                        })
                    }
                    // The next stage finds the files even though its working copy was wiped
                    // (another machine): they were restored from the store.
                    State::Voicing {} => {
                        assert_eq!(std::fs::read(job_dir.join("report.json")).unwrap(), b"{}");
                        assert_eq!(std::fs::read(job_dir.join("narration/scene_01.en.wav")).unwrap(), b"RIFF");
                        stop()
                    }
                    _ => stop(),
                }
            })
        });
        let driver = f.driver(config(|_| {}), runner).with_artifacts(witness.clone());
        let id = f.job_in(State::Costing {});
        // Stop after costing: the working copy is then wiped before voicing runs.
        let drive_costing = async {
            let job = f.store.job(&id).unwrap();
            driver.run_stage(&job, Stage::Cost, &CancelToken::new()).await.unwrap();
        };
        drive_costing.await;
        let puts = witness.puts.lock().unwrap().clone();
        let names: Vec<&str> = puts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["narration/scene_01.en.wav", "report.json"], "the partial went up under its final name");
        assert!(puts.iter().all(|(_, state)| state == "costing"), "uploaded before the step was recorded: {puts:?}");
        assert_eq!(f.store.job(&id).unwrap().state, State::Voicing {});
        assert!(shared.join(&id).join("report.json").is_file());
        assert!(driver.job_dir(&id).join("report.json").is_file(), "promoted locally after the commit");
        std::fs::remove_dir_all(driver.job_dir(&id)).unwrap();
        let end = drive(&driver, &id, &CancelToken::new()).await.unwrap();
        assert!(matches!(&end, State::Failed { stage, .. } if stage == "voicing"), "{end:?}");
        let failed = f.events(&id).pop().unwrap();
        assert_eq!(failed.error.as_deref(), Some("script ends here"), "the voicing script's asserts held");
    }

    fn waiting_job(f: &Fixture, preset: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let new = NewJob {
            id: id.clone(),
            request: json!({}),
            preset: Some(preset.into()),
            brand_id: None,
            auto_approve: false,
        };
        f.store.create_job(&new).unwrap();
        let event = NewEvent { event: "setup".into(), duration_ms: 0, attempt: 0, error: None, detail: None };
        let to = State::AwaitingReview {};
        let step = StepCommit {
            job_id: id.clone(),
            from: State::Init {},
            to,
            event,
            writes: vec![],
            audit: vec![],
            cache: vec![],
            owner: None,
        };
        f.store.commit_step(&step).unwrap();
        id
    }

    #[test]
    fn multi_review_presets_need_two_distinct_approvers() {
        let f = Fixture::new();
        let driver = f.driver(config(|_| {}), scripted(|_, _, _| Box::pin(async { stop() })));
        let id = waiting_job(&f, "premium_spot");
        assert_eq!(driver.apply_human(&id, Event::Approve, "ann").unwrap(), State::AwaitingReview {});
        let err = driver.apply_human(&id, Event::Approve, "ann").unwrap_err();
        assert!(matches!(err, DriverError::SameApprover { .. }), "{err:?}");
        assert_eq!(driver.apply_human(&id, Event::Approve, "bob").unwrap(), State::Delivering {});
        let approve = f.events(&id).pop().unwrap();
        assert_eq!(approve.detail.unwrap()["approvers"], json!(["ann", "bob"]));
        // One approver is enough without multiReview.
        let single = waiting_job(&f, "brand_campaign");
        assert_eq!(driver.apply_human(&single, Event::Approve, "ann").unwrap(), State::Delivering {});
    }

    /// Another process delivers the job while this driver's render attempt fails: the retry
    /// must not run (it would rewrite the delivered files) and nothing is committed.
    #[tokio::test]
    async fn a_retry_never_runs_once_the_job_moved_on() {
        let f = Fixture::new();
        let config = config(|c| c.orchestrator.retry_policy.max_retries = 3);
        let calls = Arc::new(AtomicUsize::new(0));
        let (c, store) = (calls.clone(), f.store.clone());
        let id = f.job_in(State::Rendering { attempt: 1 });
        let job_id = id.clone();
        let runner = scripted(move |state, _, _| {
            let (c, store, job_id) = (c.clone(), store.clone(), job_id.clone());
            Box::pin(async move {
                if !matches!(state, State::Rendering { .. }) {
                    return stop();
                }
                c.fetch_add(1, Ordering::SeqCst);
                // Meanwhile the other process finishes the job.
                let event =
                    NewEvent { event: "elsewhere".into(), duration_ms: 0, attempt: 0, error: None, detail: None };
                let step = StepCommit {
                    job_id,
                    from: state,
                    to: State::Delivered {},
                    event,
                    writes: vec![],
                    audit: vec![],
                    cache: vec![],
                    owner: None,
                };
                store.commit_step(&step).unwrap();
                Err(StageError::Transient("cannot finish .video.mp4.partial".into()))
            })
        });
        let driver = f.driver(config, runner);
        let end = drive(&driver, &id, &CancelToken::new()).await.unwrap();
        assert_eq!(end, State::Delivered {});
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the retry ran although the job was delivered");
        let events: Vec<String> = f.events(&id).iter().map(|e| e.event.clone()).collect();
        assert!(!events.iter().any(|e| e.starts_with("stage_failed") || e.starts_with("rejected")), "{events:?}");
    }

    /// A driver with an owner id leaves alone a job another live process owns.
    #[tokio::test]
    async fn a_driver_with_an_owner_only_drives_its_own_jobs() {
        use crate::store::service::{Claim, ServiceStore, new_owner, register_owner};
        let f = Fixture::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let runner = scripted(move |_, _, _| {
            c.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { stop() })
        });
        let (mine, theirs) = (new_owner("resume"), new_owner("serve"));
        register_owner(&theirs);
        let driver = f.driver(config(|_| {}), runner).with_owner(mine.clone());
        let id = f.job_in(State::Rendering { attempt: 1 });
        assert_eq!(f.store.claim_job(&id, &theirs).unwrap(), Claim::Claimed);
        assert_eq!(f.store.claim_job(&id, &mine).unwrap(), Claim::Held(theirs.clone()), "a live owner keeps its job");
        let end = drive(&driver, &id, &CancelToken::new()).await.unwrap();
        assert_eq!((end, calls.load(Ordering::SeqCst)), (State::Rendering { attempt: 1 }, 0));
        // Once that owner is gone, the job can be taken over and driven.
        crate::store::service::unregister_owner(&theirs);
        assert_eq!(f.store.claim_job(&id, &mine).unwrap(), Claim::Claimed);
        drive(&driver, &id, &CancelToken::new()).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
