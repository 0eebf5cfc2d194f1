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
use crate::store::{SqliteStore, StoreError};

/// The driver a process runs jobs with: journaling into `store`, auditing into the same
/// store, and with the one consistency cache of the process, opened here on that store. The
/// CLI and the service both start from this, so the two cannot wire the pipeline differently.
pub async fn driver(config: Arc<Config>, store: Arc<SqliteStore>) -> Result<Driver, StoreError> {
    let cache = ConsistencyCache::from_config(store.clone(), &config.consistency_cache).await?;
    let data_dir = config.storage.data_dir.clone();
    Ok(Driver::new(config, store.clone(), data_dir).with_ledger(store).with_cache(cache))
}
