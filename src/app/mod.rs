//! Use cases: what a user asks aiprod to do, written once and called by both the CLI and the
//! API. The dependency rule: `cli`/`api` → `app` → `pipeline`, `finance`, `store`, `agents` →
//! domain types; nothing below `app` imports it.
pub mod calibrate;
pub mod pricing;
pub mod qa;

use std::sync::Arc;

use crate::config::Config;
use crate::pipeline::driver::Driver;
use crate::store::cache::ConsistencyCache;
use crate::store::{Database, StoreError};

/// The driver a process runs jobs with: journaling into `store`, auditing into the same
/// store, with the one consistency cache of the process, opened here on that store, and
/// publishing to the configured artifact store (`storage.artifacts`). The CLI and the
/// service both start from this, so the two cannot wire the pipeline differently.
pub async fn driver(config: Arc<Config>, store: Arc<dyn Database>) -> Result<Driver, StoreError> {
    let artifacts = crate::artifacts::open_configured(&config.storage)
        .map_err(|e| StoreError::Setup(format!("artifact store (storage.artifacts, --artifacts): {e}")))?;
    let cache = ConsistencyCache::from_config(store.clone(), &config.consistency_cache).await?;
    let data_dir = config.storage.data_dir.clone();
    Ok(Driver::new(config, store.clone(), data_dir).with_ledger(store).with_cache(cache).with_artifacts(artifacts))
}

/// Renew `owner`'s leases every third of the lease while the returned task runs, when the
/// store's claims lapse (PostgreSQL); `None` for stores whose owners are processes on this
/// machine. A failed renewal is reported to `on_fail`; the work goes on (its commits are
/// refused if another worker took the job over meanwhile). Abort the task to stop renewing.
pub fn renew_leases(
    store: Arc<dyn Database>,
    owner: String,
    on_fail: impl Fn(&StoreError) + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    let every = store.leases()? / 3;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = store.heartbeat(&owner) {
                on_fail(&e);
            }
        }
    }))
}
