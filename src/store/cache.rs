//! The consistency cache: a moka in-memory cache with the configured TTL, written through to
//! SQLite (`cache_entries`, migration 0004) so entries survive a restart.
//!
//! Per brand, a brief whose embedding is at least `similarityThreshold` similar to an earlier
//! brief's reuses that brief's consistency markers. Hits and misses are counted process-wide
//! ([`stats`]) for the CLI and the service.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agents::domain::ConsistencyMarkers;
use moka::future::Cache;
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{SqliteStore, StoreError};

/// Entry kind of brand consistency markers.
pub const KIND_MARKERS: &str = "markers";
/// Entry kind of delivered requests: key = request hash, value = the delivering job's id.
pub const KIND_DELIVERED: &str = "delivered";

/// One persisted cache entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// `markers` (brand look) or another kind.
    pub kind: String,
    /// Unique key within the kind (the job id that produced it, or a request hash).
    pub key: String,
    /// Brand the entry belongs to, when any.
    pub brand: Option<String>,
    /// The cached document.
    pub value: serde_json::Value,
    /// The brief's embedding, for similarity lookups.
    pub embedding: Option<Vec<f32>>,
    /// Unix seconds when written.
    pub created_at: i64,
}

/// Persistence of cache entries, implemented for both stores (SQLite, PostgreSQL).
pub trait CacheStore {
    /// Insert or replace an entry.
    fn cache_put(&self, entry: &CacheEntry) -> Result<(), StoreError>;
    /// Entries of `kind` written at or after `since` (unix seconds), oldest first.
    fn cache_since(&self, kind: &str, since: i64) -> Result<Vec<CacheEntry>, StoreError>;
}

/// Insert or replace an entry on `conn` (a plain connection or a step's transaction).
pub(super) fn put_in(conn: &rusqlite::Connection, e: &CacheEntry) -> Result<(), StoreError> {
    let embedding = e.embedding.as_ref().map(serde_json::to_string).transpose()?;
    conn.execute(
        "INSERT OR REPLACE INTO cache_entries (kind, key, brand, value, embedding, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![e.kind, e.key, e.brand, e.value.to_string(), embedding, e.created_at],
    )?;
    Ok(())
}

impl CacheStore for SqliteStore {
    fn cache_put(&self, e: &CacheEntry) -> Result<(), StoreError> {
        put_in(&self.conn(), e)
    }

    fn cache_since(&self, kind: &str, since: i64) -> Result<Vec<CacheEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT kind, key, brand, value, embedding, created_at FROM cache_entries
             WHERE kind = ?1 AND created_at >= ?2 ORDER BY created_at, key",
        )?;
        let rows = stmt.query_map(params![kind, since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, key, brand, value, embedding, created_at) = row?;
            out.push(CacheEntry {
                kind,
                key,
                brand,
                value: serde_json::from_str(&value)?,
                embedding: embedding.map(|s| serde_json::from_str(&s)).transpose()?,
                created_at,
            });
        }
        Ok(out)
    }
}

static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);
static REQUEST_HITS: AtomicU64 = AtomicU64::new(0);
static REQUEST_MISSES: AtomicU64 = AtomicU64::new(0);

/// Hit and miss counts of the consistency cache in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Marker lookups that found a similar brief of the same brand.
    pub hits: u64,
    /// Marker lookups that found none.
    pub misses: u64,
    /// Identical-request lookups that found a delivered job to reuse.
    pub request_hits: u64,
    /// Identical-request lookups that found none.
    pub request_misses: u64,
}

/// The process-wide hit/miss counters (for `aiprod models list` and the service's metrics).
pub fn stats() -> CacheStats {
    CacheStats {
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
        request_hits: REQUEST_HITS.load(Ordering::Relaxed),
        request_misses: REQUEST_MISSES.load(Ordering::Relaxed),
    }
}

/// Count an identical-request lookup (the caller decides, after checking the job and its
/// files, whether the entry was usable).
pub fn count_request_lookup(hit: bool) {
    if hit { &REQUEST_HITS } else { &REQUEST_MISSES }.fetch_add(1, Ordering::Relaxed);
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A hit: the markers to reuse and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkersHit {
    /// The reused markers.
    pub markers: ConsistencyMarkers,
    /// The earlier entry's key (the job that produced them).
    pub source_key: String,
    /// Cosine similarity of the two briefs.
    pub similarity: f32,
}

/// Brand markers cache: moka in front, SQLite behind. One per process, opened at start-up on
/// the store the driver journals into and handed to the driver: a stage only reads it, and
/// its new entries are written by the step commit ([`super::StepCommit::cache`]) and
/// mirrored here with [`ConsistencyCache::remember`] once committed.
#[derive(Clone)]
pub struct ConsistencyCache {
    memory: Cache<String, Arc<CacheEntry>>,
    store: Arc<dyn CacheStore + Send + Sync>,
    ttl: Duration,
    threshold: f32,
}

impl std::fmt::Debug for ConsistencyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsistencyCache").field("ttl", &self.ttl).field("threshold", &self.threshold).finish()
    }
}

impl ConsistencyCache {
    /// A cache over `store` with the given TTL and similarity threshold, warmed with every
    /// persisted entry younger than the TTL.
    pub async fn open(
        store: Arc<dyn CacheStore + Send + Sync>,
        ttl: Duration,
        threshold: f32,
    ) -> Result<Self, StoreError> {
        let memory = Cache::builder().time_to_live(ttl).max_capacity(10_000).build();
        let cache = Self { memory, store, ttl, threshold };
        let since = unix_now() - ttl.as_secs() as i64;
        for kind in [KIND_MARKERS, KIND_DELIVERED] {
            for e in cache.store.cache_since(kind, since)? {
                cache.memory.insert(format!("{}:{}", e.kind, e.key), Arc::new(e)).await;
            }
        }
        Ok(cache)
    }

    /// The cache configured by `consistencyCache` over `store`.
    pub async fn from_config(
        store: Arc<dyn CacheStore + Send + Sync>,
        config: &crate::config::ConsistencyCache,
    ) -> Result<Self, StoreError> {
        Self::open(store, Duration::from_secs(config.ttl_hours * 3600), config.similarity_threshold as f32).await
    }

    /// Mirror an entry that a step commit wrote to SQLite into the in-memory cache.
    pub async fn remember(&self, entry: CacheEntry) {
        self.memory.insert(format!("{}:{}", entry.kind, entry.key), Arc::new(entry)).await;
    }

    /// The most similar earlier brief of the same brand at or above the threshold, if any;
    /// counts a hit or a miss. `exclude` skips the caller's own entry (a re-run stage).
    pub fn find_markers(&self, brand: &str, embedding: &[f32], exclude: &str) -> Option<MarkersHit> {
        let best = self
            .memory
            .iter()
            .filter(|(_, e)| e.kind == KIND_MARKERS && e.brand.as_deref() == Some(brand) && e.key != exclude)
            .filter_map(|(_, e)| {
                let sim = agents::models::embed::cosine(e.embedding.as_deref()?, embedding);
                Some((sim, e))
            })
            .filter(|(sim, _)| *sim >= self.threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match best {
            Some((similarity, e)) => match serde_json::from_value(e.value.clone()) {
                Ok(markers) => {
                    HITS.fetch_add(1, Ordering::Relaxed);
                    Some(MarkersHit { markers, source_key: e.key.clone(), similarity })
                }
                Err(_) => {
                    MISSES.fetch_add(1, Ordering::Relaxed);
                    None
                }
            },
            None => {
                MISSES.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The job that delivered the request with this key within the TTL, if any.
    pub async fn delivered(&self, request_key: &str) -> Option<String> {
        let e = self.memory.get(&format!("{KIND_DELIVERED}:{request_key}")).await?;
        e.value.as_str().map(str::to_owned)
    }

    /// Record that `job_id` delivered the request with this key (write-through).
    pub async fn put_delivered(&self, request_key: &str, job_id: &str) -> Result<(), StoreError> {
        let entry = delivered_entry(request_key, job_id);
        self.store.cache_put(&entry)?;
        self.remember(entry).await;
        Ok(())
    }

    /// Record a brand's markers for a brief (write-through).
    pub async fn put_markers(
        &self,
        brand: &str,
        key: &str,
        embedding: Vec<f32>,
        markers: &ConsistencyMarkers,
    ) -> Result<(), StoreError> {
        let entry = markers_entry(brand, key, embedding, markers)?;
        self.store.cache_put(&entry)?;
        self.remember(entry).await;
        Ok(())
    }
}

/// The entry recording that `job_id` delivered the request with this key.
pub fn delivered_entry(request_key: &str, job_id: &str) -> CacheEntry {
    CacheEntry {
        kind: KIND_DELIVERED.into(),
        key: request_key.into(),
        brand: None,
        value: serde_json::Value::String(job_id.into()),
        embedding: None,
        created_at: unix_now(),
    }
}

/// The entry recording a brand's markers for a brief (`key`: the job that produced them).
pub fn markers_entry(
    brand: &str,
    key: &str,
    embedding: Vec<f32>,
    markers: &ConsistencyMarkers,
) -> Result<CacheEntry, StoreError> {
    Ok(CacheEntry {
        kind: KIND_MARKERS.into(),
        key: key.into(),
        brand: Some(brand.into()),
        value: serde_json::to_value(markers)?,
        embedding: Some(embedding),
        created_at: unix_now(),
    })
}

/// The cache's behaviours, written once and run on both backends through the store suite's
/// [`Backend`](super::suite::Backend): SQLite everywhere, PostgreSQL when a server is there
/// (a scratch database per test; `make test` provides the server).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::suite::Backend;

    fn markers(style: &str) -> ConsistencyMarkers {
        ConsistencyMarkers {
            style: style.into(),
            palette: vec![agents::domain::Rgb(10, 20, 30)],
            mood: "calm".into(),
            lighting: "soft".into(),
        }
    }

    /// A cache as a new process opens it: a fresh handle on the backend's database.
    async fn open_on(b: &Backend, ttl: Duration, threshold: f32) -> ConsistencyCache {
        ConsistencyCache::open(b.open(), ttl, threshold).await.unwrap()
    }

    async fn markers_survive_a_restart_and_match_by_brand_and_similarity(b: &Backend) {
        let ttl = Duration::from_secs(168 * 3600);
        {
            let cache = open_on(b, ttl, 0.85).await;
            cache.put_markers("acme", "job-1", vec![1.0, 0.0, 0.0], &markers("bold")).await.unwrap();
        }
        // A new process: only the database carries the entry over.
        let cache = open_on(b, ttl, 0.85).await;
        let before = stats();
        let hit = cache.find_markers("acme", &[0.95, 0.31, 0.0], "job-2").expect("similar brief hits");
        assert_eq!(hit.markers.style, "bold");
        assert_eq!(hit.source_key, "job-1");
        assert!(hit.similarity >= 0.85);
        assert!(cache.find_markers("other-brand", &[1.0, 0.0, 0.0], "job-2").is_none());
        assert!(cache.find_markers("acme", &[0.0, 1.0, 0.0], "job-2").is_none(), "dissimilar brief misses");
        assert!(cache.find_markers("acme", &[1.0, 0.0, 0.0], "job-1").is_none(), "own entry is excluded");
        let after = stats();
        assert!(after.hits > before.hits && after.misses >= before.misses + 3);
    }

    async fn delivered_requests_survive_a_restart(b: &Backend) {
        let ttl = Duration::from_secs(168 * 3600);
        {
            let cache = open_on(b, ttl, 0.85).await;
            assert_eq!(cache.delivered("k1").await, None);
            cache.put_delivered("k1", "job-1").await.unwrap();
        }
        let cache = open_on(b, ttl, 0.85).await;
        assert_eq!(cache.delivered("k1").await.as_deref(), Some("job-1"));
        assert_eq!(cache.delivered("k2").await, None);
    }

    async fn expired_entries_are_not_loaded(b: &Backend) {
        let store = b.open();
        store
            .cache_put(&CacheEntry {
                kind: KIND_MARKERS.into(),
                key: "old".into(),
                brand: Some("acme".into()),
                value: serde_json::to_value(markers("old")).unwrap(),
                embedding: Some(vec![1.0, 0.0]),
                created_at: unix_now() - 3 * 3600,
            })
            .unwrap();
        let cache = ConsistencyCache::open(store, Duration::from_secs(3600), 0.85).await.unwrap();
        assert!(cache.find_markers("acme", &[1.0, 0.0], "new").is_none());
    }

    macro_rules! cache_suite {
        ($($name:ident),* $(,)?) => {
            mod sqlite {
                $(#[tokio::test] async fn $name() { super::$name(&super::Backend::sqlite()).await })*
            }
            mod postgres {
                $(
                    #[tokio::test]
                    #[ignore = "needs PostgreSQL (make test provides one)"]
                    async fn $name() { super::$name(&super::Backend::postgres()).await }
                )*
            }
        };
    }

    cache_suite!(
        markers_survive_a_restart_and_match_by_brand_and_similarity,
        delivered_requests_survive_a_restart,
        expired_entries_are_not_loaded,
    );
}
