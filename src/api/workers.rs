//! The worker pool: a fixed number of tasks that claim queued jobs from the store (one
//! `UPDATE … RETURNING` each) and drive them until they end or wait for a human.
//!
//! Shutdown is graceful: the HTTP server stops accepting, workers stop claiming, and running
//! stages are interrupted at their next checkpoint without ending the job (the driver journals
//! `interrupted`); the next start releases the jobs and resumes them from their last committed
//! state, marking `resumed` in their history.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use agents::CancelToken;
use tokio::sync::watch;
use tracing::{info, warn};

use super::Shared;

/// The shutdown signal: a cancel token for the driver and a watch for async waiters.
#[derive(Clone)]
pub struct Shutdown {
    token: CancelToken,
    tx: watch::Sender<bool>,
}

impl Shutdown {
    /// Not tripped.
    pub fn new() -> Self {
        Self { token: CancelToken::new(), tx: watch::channel(false).0 }
    }
    /// Ask everything to stop.
    pub fn trigger(&self) {
        self.token.cancel();
        self.tx.send_replace(true);
    }
    /// The token running stages observe.
    pub fn token(&self) -> CancelToken {
        self.token.clone()
    }
    /// Whether it was tripped.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }
    /// Resolve once tripped.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

/// The jobs this process drives now.
pub struct Pool {
    /// Configured workers.
    pub size: usize,
    busy: AtomicUsize,
    running: Mutex<HashMap<String, CancelToken>>,
    /// This process's owner id in the jobs table.
    pub owner: String,
    counters: PoolCounters,
}

/// What this process's workers did since it started, for `/metrics`.
#[derive(Debug, Default)]
struct PoolCounters {
    claims: AtomicU64,
    claim_micros: AtomicU64,
    driven: AtomicU64,
    heartbeats_failed: AtomicU64,
}

/// A snapshot of [`Pool`]'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Claim attempts that found a job.
    pub claims: u64,
    /// Time spent in those claims, microseconds (the claim latency's sum).
    pub claim_micros: u64,
    /// Jobs this process stopped driving (delivered, waiting for a human, failed, handed back).
    pub driven: u64,
    /// Lease renewals that failed (the database was unreachable).
    pub heartbeats_failed: u64,
}

impl Pool {
    /// A pool of `size` workers; `what` names the process kind in its owner id (`serve`,
    /// `worker`).
    pub fn new(size: usize, what: &str) -> Self {
        Self {
            size,
            busy: AtomicUsize::new(0),
            running: Mutex::new(HashMap::new()),
            owner: crate::store::service::new_owner(what),
            counters: PoolCounters::default(),
        }
    }
    /// Workers driving a job now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }
    /// The counters so far.
    pub fn stats(&self) -> PoolStats {
        let c = &self.counters;
        PoolStats {
            claims: c.claims.load(Ordering::Relaxed),
            claim_micros: c.claim_micros.load(Ordering::Relaxed),
            driven: c.driven.load(Ordering::Relaxed),
            heartbeats_failed: c.heartbeats_failed.load(Ordering::Relaxed),
        }
    }
    /// Cancel a running job's stage; `false` when no worker here drives it.
    pub fn cancel(&self, job: &str) -> bool {
        match self.running.lock().unwrap_or_else(|p| p.into_inner()).get(job) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }
}

/// Free jobs a previous process owned and mark their resumption in history.
pub fn mark_resumes(state: &Shared) -> anyhow::Result<()> {
    let mut resumable = state.store.release_stale()?;
    // Jobs with no owner that are mid-pipeline (the process died before claiming
    // bookkeeping) are picked up by the workers anyway; only mark the ones that were owned.
    resumable.sort_by_key(|a| a.created_at);
    for job in resumable {
        state.driver.mark_resumed(&job, "serve")?;
    }
    Ok(())
}

/// Start the workers, and with them (when there are any) the lease heartbeat and the
/// store's wake-up channel.
pub fn spawn(state: Shared, shutdown: Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
    if state.pool.size == 0 {
        return Vec::new();
    }
    // Leases are renewed for as long as this process lives, draining included.
    let (pool, owner) = (state.pool.clone(), state.pool.owner.clone());
    crate::app::renew_leases(state.store.clone(), owner.clone(), move |e| {
        pool.counters.heartbeats_failed.fetch_add(1, Ordering::Relaxed);
        warn!(%owner, error = %e, "renewing the lease failed");
    });
    let hub = state.hub.clone();
    match state.store.wake_on_work(Box::new(move || hub.wake())) {
        Ok(true) => info!("workers wake on the store's notifications (and poll every 500 ms)"),
        Ok(false) => {}
        Err(e) => warn!(error = %e, "no wake-up channel; workers poll every 500 ms"),
    }
    (0..state.pool.size).map(|i| tokio::spawn(worker(i, state.clone(), shutdown.clone()))).collect()
}

async fn worker(index: usize, state: Shared, shutdown: Shutdown) {
    let pool = state.pool.clone();
    loop {
        if shutdown.is_triggered() {
            break;
        }
        // Register interest before looking, so a submit between the look and the wait
        // still wakes us.
        let notified = state.hub.work.notified();
        let started = std::time::Instant::now();
        let claimed = match state.store.claim_next(&pool.owner) {
            Ok(c) => c,
            Err(e) => {
                warn!(worker = index, error = %e, "claiming a job failed");
                None
            }
        };
        if claimed.is_some() {
            pool.counters.claims.fetch_add(1, Ordering::Relaxed);
            pool.counters.claim_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        let Some(job) = claimed else {
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.wait() => break,
            }
            continue;
        };
        let token = shutdown.token().child();
        pool.running.lock().unwrap_or_else(|p| p.into_inner()).insert(job.id.clone(), token.clone());
        pool.busy.fetch_add(1, Ordering::SeqCst);
        info!(worker = index, job = %job.id, state = job.state.name(), "worker claimed job");
        match state.driver.drive(&job.id, &token).await {
            Ok(s) => info!(worker = index, job = %job.id, state = s.name(), "worker stopped driving job"),
            Err(e) => warn!(worker = index, job = %job.id, error = %e, "driving the job stopped with an error"),
        }
        pool.busy.fetch_sub(1, Ordering::SeqCst);
        pool.counters.driven.fetch_add(1, Ordering::Relaxed);
        pool.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&job.id);
        // On shutdown a job stays owned so the next start marks it resumed; where claims are
        // leases (other machines' workers share the queue), a draining worker hands it back
        // at once instead of making them wait for the lease to lapse.
        let hand_back = !shutdown.is_triggered() || state.store.leases().is_some();
        if hand_back && let Err(e) = state.store.release(&job.id, &pool.owner) {
            warn!(job = %job.id, error = %e, "releasing the job failed");
        }
        state.hub.changed(&job.id);
    }
}

/// Wait for the workers to stop, at most `grace`.
pub async fn join(tasks: Vec<tokio::task::JoinHandle<()>>, grace: Duration) {
    let all = futures_util::future::join_all(tasks);
    if tokio::time::timeout(grace, all).await.is_err() {
        warn!("workers did not stop within {:.0} s; exiting anyway", grace.as_secs_f64());
    }
}
