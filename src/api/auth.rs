//! API keys and per-key rate limits.
//!
//! A key is 32 random bytes shown once as `aip_<hex>`; only its SHA-256 is stored. Every
//! `/v1` route needs `Authorization: Bearer <key>` (media and event routes also accept
//! `?access_token=`, because `<video>` and `EventSource` cannot send headers). Roles:
//! `admin` and `editor` may change things, `viewer` may only read. Each key has a token
//! bucket (`service.rateLimit`); an empty bucket answers 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::Shared;
use super::error::ApiError;
use crate::config::{RateLimit, RateLimits};
use crate::store::SqliteStore;
use crate::store::service::{ApiKeyRecord, ServiceStore};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Submit, edit, review, cancel.
    Editor,
    /// Read only.
    Viewer,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("unknown role '{other}' (admin, editor or viewer)")),
        }
    }
}

/// The authenticated caller, put into request extensions by [`require_key`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's name (the author of edits).
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// 403 unless the caller may change things.
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.role == Role::Viewer {
            return Err(ApiError::forbidden(format!("key '{}' is a viewer and cannot change anything", self.name)));
        }
        Ok(())
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Key lookup (cached) and rate limiting.
pub struct Auth {
    store: Arc<SqliteStore>,
    keys: RwLock<HashMap<String, Caller>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    limits: RateLimits,
}

/// The SHA-256 of a key, hex: what is stored.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Create a key for `name` with `role`; returns the secret (shown once).
pub fn create_key(store: &SqliteStore, name: &str, role: Role) -> Result<String, ApiError> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(ApiError::invalid("name", "format", "a key name is 1–64 of [A-Za-z0-9._-]"));
    }
    let secret = format!("aip_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let role = match role {
        Role::Admin => "admin",
        Role::Editor => "editor",
        Role::Viewer => "viewer",
    };
    store.create_api_key(name, role, &hash_key(&secret)).map_err(|e| match e {
        crate::store::StoreError::Db(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            ApiError::conflict(format!("a key named '{name}' already exists"))
        }
        other => other.into(),
    })?;
    Ok(secret)
}

impl Auth {
    /// Keys from `store`, limits from config.
    pub fn new(store: Arc<SqliteStore>, limits: RateLimits) -> Self {
        Self { store, keys: RwLock::new(HashMap::new()), buckets: Mutex::new(HashMap::new()), limits }
    }

    fn lookup(&self, secret: &str) -> Result<Option<Caller>, ApiError> {
        let hash = hash_key(secret);
        if let Some(c) = self.keys.read().unwrap_or_else(|p| p.into_inner()).get(&hash) {
            return Ok(Some(c.clone()));
        }
        let Some(ApiKeyRecord { name, role }) = self.store.api_key_by_hash(&hash)? else {
            return Ok(None);
        };
        let caller = Caller { name, role: role.parse().map_err(ApiError::internal)? };
        self.keys.write().unwrap_or_else(|p| p.into_inner()).insert(hash, caller.clone());
        Ok(Some(caller))
    }

    fn limit_for(&self, name: &str) -> RateLimit {
        self.limits.per_key.get(name).copied().unwrap_or(self.limits.default)
    }

    /// Take one token from `name`'s bucket; `Err(seconds until one is back)` when empty.
    pub fn take(&self, name: &str) -> Result<(), u64> {
        let limit = self.limit_for(name);
        let rate = limit.per_minute / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(name.to_owned()).or_insert(Bucket { tokens: limit.burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(limit.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil() as u64)
        }
    }
}

fn bearer(req: &Request) -> Option<String> {
    if let Some(h) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return h.strip_prefix("Bearer ").map(|s| s.trim().to_owned());
    }
    let path = req.uri().path();
    let media = path.ends_with("/video") || path.contains("/artifacts/") || path.ends_with("/events");
    if req.method() == Method::GET && media {
        return req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("access_token=").map(str::to_owned)));
    }
    None
}

/// Middleware on `/v1`: authenticate, rate-limit, and refuse writes by viewers.
pub async fn require_key(State(state): State<Shared>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let Some(secret) = bearer(&req) else {
        return Err(ApiError::unauthorized("send an API key: Authorization: Bearer <key>"));
    };
    let Some(caller) = state.auth.lookup(&secret)? else {
        return Err(ApiError::unauthorized("unknown API key"));
    };
    if let Err(wait) = state.auth.take(&caller.name) {
        return Err(ApiError::too_many(
            "rate_limited",
            format!("key '{}' exceeded its rate limit; retry in {wait} s", caller.name),
            wait,
        ));
    }
    // Estimating a cost changes nothing, so viewers may do it.
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.uri().path().ends_with("/cost-estimate");
    if !read_only {
        caller.require_write()?;
    }
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_configured_rate() {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let limits = RateLimits { default: RateLimit { per_minute: 60.0, burst: 2.0 }, per_key: Default::default() };
        let auth = Auth::new(store.clone(), limits);
        assert!(auth.take("a").is_ok());
        assert!(auth.take("a").is_ok());
        assert_eq!(auth.take("a"), Err(1));
        assert!(auth.take("b").is_ok(), "buckets are per key");
        let secret = create_key(&store, "alice", Role::Viewer).unwrap();
        let c = auth.lookup(&secret).unwrap().unwrap();
        assert_eq!((c.name.as_str(), c.role), ("alice", Role::Viewer));
        assert!(auth.lookup("aip_nope").unwrap().is_none());
        assert!(create_key(&store, "alice", Role::Admin).is_err());
    }
}
