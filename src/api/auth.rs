//! API keys and per-key rate limits.
//!
//! A key is 32 random bytes shown once as `aip_<hex>`; only its SHA-256 is stored. Every
//! `/v1` route needs `Authorization: Bearer <key>`, except a GET of a job's video or artifact
//! through a signed link ([`super::links`]): `<video>`, `<img>` and `<track>` cannot send
//! headers, and no API key ever goes in a URL. Roles:
//! `admin` and `editor` may change things, `viewer` and `ops` may only read; `ops` (and
//! `admin`) may also read `/metrics` and the full `/health` on a public bind. Each key has a
//! token bucket (`service.rateLimit`); an empty bucket answers 429 with `Retry-After`.
//!
//! Guessing keys is throttled per client address: after `service.failedAuthPerMinute`
//! unknown keys in a minute, every request from that address that needs a key answers 429
//! with `Retry-After` until the minute is over.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::Shared;
use super::error::ApiError;
use super::links::{LinkError, LinkSigner, link_caller};
use crate::config::{RateLimit, RateLimits};
use crate::store::Database;
use crate::store::service::ApiKeyRecord;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Submit, edit, review, cancel.
    Editor,
    /// Read only.
    Viewer,
    /// Read only, plus the operational endpoints (`/metrics`, full `/health`).
    Ops,
}

impl Role {
    /// The role's name as stored and as `aiprod keys create --role` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
            Role::Ops => "ops",
        }
    }

    /// Whether the role may read the operational endpoints on a public bind.
    pub fn may_read_ops(self) -> bool {
        matches!(self, Role::Admin | Role::Ops)
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            "ops" => Ok(Role::Ops),
            other => Err(format!("unknown role '{other}' (admin, editor, viewer or ops)")),
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
        if matches!(self.role, Role::Viewer | Role::Ops) {
            return Err(ApiError::forbidden(format!(
                "key '{}' has the read-only role '{}' and cannot change anything",
                self.name,
                self.role.as_str()
            )));
        }
        Ok(())
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One client address's failed authentications in the current one-minute window.
struct Failures {
    since: Instant,
    count: u32,
}

const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; beyond it, expired windows are dropped first, then all.
const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// Key lookup (cached), rate limiting, and throttling of failed authentication.
pub struct Auth {
    store: Arc<dyn Database>,
    keys: RwLock<HashMap<String, Caller>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    limits: RateLimits,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    failed_per_minute: u32,
    links: LinkSigner,
}

/// The SHA-256 of a key, hex: what is stored.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Create a key for `name` with `role`; returns the secret (shown once).
pub fn create_key(store: &dyn Database, name: &str, role: Role) -> Result<String, ApiError> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(ApiError::invalid("name", "format", "a key name is 1–64 of [A-Za-z0-9._-]"));
    }
    let secret = format!("aip_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    store.create_api_key(name, role.as_str(), &hash_key(&secret)).map_err(|e| match e {
        e if e.is_unique_violation() => ApiError::conflict(format!("a key named '{name}' already exists")),
        other => other.into(),
    })?;
    Ok(secret)
}

impl Auth {
    /// Keys from `store`, limits from config.
    pub fn new(store: Arc<dyn Database>, limits: RateLimits, failed_per_minute: u32) -> Self {
        Self {
            store,
            keys: RwLock::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            limits,
            failures: Mutex::new(HashMap::new()),
            failed_per_minute: failed_per_minute.max(1),
            links: LinkSigner::from_env_or_random(),
        }
    }

    /// The signer of this server's media links.
    pub fn links(&self) -> &LinkSigner {
        &self.links
    }

    /// `Err(seconds until the window ends)` when `ip` has used up its failed attempts.
    pub fn throttled(&self, ip: IpAddr) -> Result<(), u64> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get(&ip) {
            Some(f) if f.count >= self.failed_per_minute && f.since.elapsed() < FAILURE_WINDOW => {
                Err(FAILURE_WINDOW.saturating_sub(f.since.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Count one failed authentication from `ip`.
    pub fn record_failure(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_TRACKED_ADDRESSES {
            failures.retain(|_, f| now.duration_since(f.since) < FAILURE_WINDOW);
            if failures.len() >= MAX_TRACKED_ADDRESSES {
                failures.clear();
            }
        }
        let f = failures.entry(ip).or_insert(Failures { since: now, count: 0 });
        if now.duration_since(f.since) >= FAILURE_WINDOW {
            *f = Failures { since: now, count: 0 };
        }
        f.count = f.count.saturating_add(1);
    }

    /// The caller a bearer secret belongs to, with failed-authentication throttling by the
    /// client address: 429 while the address is throttled, 401 for a missing or unknown key
    /// (an unknown one counts as a failure).
    pub fn authenticate(&self, secret: Option<&str>, ip: Option<IpAddr>) -> Result<Caller, ApiError> {
        if let Some(ip) = ip
            && let Err(wait) = self.throttled(ip)
        {
            return Err(ApiError::too_many(
                "auth_throttled",
                format!("too many failed authentications from {ip}; retry in {wait} s"),
                wait,
            ));
        }
        let Some(secret) = secret else {
            return Err(ApiError::unauthorized("send an API key: Authorization: Bearer <key>"));
        };
        match self.lookup(secret)? {
            Some(caller) => Ok(caller),
            None => {
                if let Some(ip) = ip {
                    self.record_failure(ip);
                }
                Err(ApiError::unauthorized("unknown API key"))
            }
        }
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

/// The bearer secret a request carries in its `Authorization` header (never in the URL).
pub fn bearer(req: &Request) -> Option<String> {
    let h = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())?;
    h.strip_prefix("Bearer ").map(|s| s.trim().to_owned())
}

/// The caller a signed link makes of a request without a key, when it carries one: 401 for
/// an expired, malformed or forged link (a forged one counts as a failed authentication).
fn signed_link_caller(state: &Shared, req: &Request, ip: Option<IpAddr>) -> Option<Result<Caller, ApiError>> {
    let verdict = link_caller(state.auth.links(), req.method(), req.uri().path(), req.uri().query())?;
    if let Some(ip) = ip
        && let Err(wait) = state.auth.throttled(ip)
    {
        return Some(Err(ApiError::too_many(
            "auth_throttled",
            format!("too many failed authentications from {ip}; retry in {wait} s"),
            wait,
        )));
    }
    Some(verdict.map(|name| Caller { name, role: Role::Viewer }).map_err(|e| {
        let message = match e {
            LinkError::Expired => "this link has expired; GET /v1/jobs/{id}/links hands out fresh ones",
            LinkError::Malformed => "a signed link needs exp, by and sig",
            LinkError::BadSignature => {
                if let Some(ip) = ip {
                    state.auth.record_failure(ip);
                }
                "this link's signature does not match its job, file and expiry"
            }
        };
        ApiError::unauthorized(message)
    }))
}

/// Middleware on `/v1`: authenticate (a key, or a signed link on a media route), rate-limit,
/// and refuse writes by viewers.
pub async fn require_key(State(state): State<Shared>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let ip = super::serve::peer(&req).map(|a| a.ip());
    let secret = bearer(&req);
    let linked = if secret.is_none() { signed_link_caller(&state, &req, ip) } else { None };
    let caller = match linked {
        Some(linked) => linked?,
        None => state.auth.authenticate(secret.as_deref(), ip)?,
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
    use crate::store::SqliteStore;

    #[test]
    fn buckets_refill_at_the_configured_rate() {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let limits = RateLimits { default: RateLimit { per_minute: 60.0, burst: 2.0 }, per_key: Default::default() };
        let auth = Auth::new(store.clone(), limits, 20);
        assert!(auth.take("a").is_ok());
        assert!(auth.take("a").is_ok());
        assert_eq!(auth.take("a"), Err(1));
        assert!(auth.take("b").is_ok(), "buckets are per key");
        let secret = create_key(&*store, "alice", Role::Viewer).unwrap();
        let c = auth.lookup(&secret).unwrap().unwrap();
        assert_eq!((c.name.as_str(), c.role), ("alice", Role::Viewer));
        assert!(auth.lookup("aip_nope").unwrap().is_none());
        assert!(create_key(&*store, "alice", Role::Admin).is_err());
    }

    #[test]
    fn failed_authentications_are_throttled_per_address() {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let auth = Auth::new(store.clone(), RateLimits::default(), 3);
        let good = create_key(&*store, "ops1", Role::Ops).unwrap();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(auth.authenticate(Some("aip_wrong"), Some(a)).unwrap_err().status.as_u16(), 401);
        }
        let e = auth.authenticate(Some(&good), Some(a)).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (429, "auth_throttled"));
        assert!((1..=60).contains(&e.retry_after.unwrap()));
        assert_eq!(
            auth.authenticate(Some(&good), Some(b)).unwrap().role,
            Role::Ops,
            "other addresses are not affected"
        );
        assert_eq!(auth.authenticate(None, Some(b)).unwrap_err().status.as_u16(), 401, "a missing key is no guess");
        assert!(auth.throttled(b).is_ok());
    }
}
