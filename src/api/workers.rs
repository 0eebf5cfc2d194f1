//! The worker pool: a fixed number of tasks that claim queued jobs from the store (one
//! `UPDATE … RETURNING` each) and drive them until they end or wait for a human.
//!
//! Shutdown is graceful: the HTTP server stops accepting, workers stop claiming, and running
//! stages are interrupted at their next checkpoint without ending the job (the driver journals
//! `interrupted`); the next start releases the jobs and resumes them from their last committed
//! state, marking `resumed` in their history.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agents::CancelToken;
use tokio::sync::watch;
use tracing::{info, warn};

use super::Shared;
use crate::store::service::ServiceStore;

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
}

impl Pool {
    /// A pool of `size` workers.
    pub fn new(size: usize) -> Self {
        Self {
            size,
            busy: AtomicUsize::new(0),
            running: Mutex::new(HashMap::new()),
            owner: crate::store::service::new_owner("serve"),
        }
    }
    /// Workers driving a job now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
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

/// Start the workers.
pub fn spawn(state: Shared, shutdown: Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
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
        let claimed = match state.store.claim_next(&pool.owner) {
            Ok(c) => c,
            Err(e) => {
                warn!(worker = index, error = %e, "claiming a job failed");
                None
            }
        };
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
        pool.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&job.id);
        if !shutdown.is_triggered()
            && let Err(e) = state.store.release(&job.id, &pool.owner)
        {
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
