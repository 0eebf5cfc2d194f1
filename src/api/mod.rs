//! The service: `aiprod serve`. An axum 0.8 application (routes under `/v1`, `/health`,
//! `/metrics`, `/docs`, and the ICC web client at `/`) plus a bounded pool of workers that
//! claim queued jobs from the store and drive them.
//!
//! Module map:
//! - [`error`]: the `{error: {code, message, field}}` answers.
//! - [`auth`]: API keys (hashed), roles, per-key rate limits.
//! - [`hub`]: the driver's observer for the server (SSE fan-out, live progress).
//! - [`workers`]: the worker pool and graceful shutdown.
//! - [`jobs`]: submit, list, get, cancel, events, video, artifacts.
//! - [`links`]: the signed, short-lived media link format; [`media`]: hands links out.
//! - [`icc`]: memory view (ETag), manifest edits and versions, review decisions, comments.
//! - [`ops`]: presets, cost estimate, health, metrics, alerts.
//! - [`webhook`]: signed terminal-state callbacks; [`egress`]: which addresses they may reach.
//! - [`docs`]: the OpenAPI document and its page; [`web`]: the ICC page.
//! - [`serve`]: the connection loop (header, body and idle deadlines; the peer address).

pub mod auth;
pub mod docs;
pub mod egress;
pub mod error;
pub mod hub;
pub mod icc;
pub mod jobs;
pub mod links;
pub mod media;
pub mod ops;
pub mod serve;
pub mod web;
pub mod webhook;
pub mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;

use crate::config::Config;
use crate::pipeline::driver::Driver;
use crate::store::SqliteStore;
use crate::store::database_path;

/// Everything a handler may use.
pub struct AppState {
    /// Configuration.
    pub config: Arc<Config>,
    /// The store (SQLite).
    pub store: Arc<SqliteStore>,
    /// The driver (human decisions go through it so the machine validates them).
    pub driver: Arc<Driver>,
    /// Events and live progress.
    pub hub: Arc<hub::Hub>,
    /// Keys and rate limits.
    pub auth: auth::Auth,
    /// Cached job views for the status endpoint.
    pub views: jobs::ViewCache,
    /// The running jobs' cancel tokens and worker count.
    pub pool: Arc<workers::Pool>,
    /// Where job directories live.
    pub data_dir: PathBuf,
    /// When the server started.
    pub started: Instant,
    /// Trips on SIGTERM/SIGINT; long-lived responses (SSE) end with it.
    pub shutdown: workers::Shutdown,
    /// `/metrics` and the full `/health` need no key: the bind is loopback, or
    /// `service.publicOps` is set.
    pub ops_open: bool,
}

/// Shared state handed to handlers.
pub type Shared = Arc<AppState>;

/// Build the application router.
pub fn router(state: Shared) -> Router {
    let v1 = Router::new()
        .route("/pipeline/run", post(jobs::submit))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::get_job))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/jobs/{id}/events", get(jobs::events))
        .route("/jobs/{id}/video", get(jobs::video))
        .route("/jobs/{id}/artifacts/{*name}", get(jobs::artifact))
        .route("/jobs/{id}/links", get(media::links))
        .route("/jobs/{id}/memory", get(icc::memory))
        .route("/jobs/{id}/manifest", axum::routing::patch(icc::patch_manifest))
        .route("/jobs/{id}/manifest/versions", get(icc::manifest_versions))
        .route("/jobs/{id}/approve", post(icc::approve))
        .route("/jobs/{id}/request-changes", post(icc::request_changes))
        .route("/jobs/{id}/reject", post(icc::reject))
        .route("/jobs/{id}/memory/{section}/comments", get(icc::comments).post(icc::add_comment))
        .route("/presets", get(ops::presets))
        .route("/cost-estimate", post(ops::cost_estimate))
        .route("/alerts", get(ops::alerts))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_key));
    let max_body = state.config.input_sanitizer.max_body_bytes;
    Router::new()
        .nest("/v1", v1)
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/docs", get(docs::page))
        .route("/docs/openapi.json", get(docs::openapi))
        .route("/", get(web::index))
        .route("/jobs/{id}", get(web::index))
        .route("/app.js", get(web::script))
        .route("/style.css", get(web::style))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(cors(&state.config))
        .with_state(state)
}

fn cors(config: &Config) -> CorsLayer {
    let origins: Vec<HeaderValue> =
        config.service.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            "idempotency-key".parse().unwrap(),
        ])
        .expose_headers([header::ETAG, header::RETRY_AFTER, header::CONTENT_RANGE])
}

/// A server that is running: its address and the handle that stops it.
pub struct Running {
    /// The bound address (the real port when bound to port 0).
    pub addr: SocketAddr,
    /// Trip to shut down gracefully.
    pub shutdown: workers::Shutdown,
    /// Resolves when the HTTP server and every worker have stopped.
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Open the store under the config's data dir, bind, start the workers and serve until
/// `shutdown` trips. Jobs a previous process left mid-stage are resumed first.
pub async fn start(config: Arc<Config>, listener: TcpListener) -> anyhow::Result<Running> {
    use anyhow::Context;
    let data_dir = config.storage.data_dir.clone();
    let store = Arc::new(
        SqliteStore::open(&database_path(&data_dir))
            .with_context(|| format!("opening the store under {}", data_dir.display()))?,
    );
    let hub = Arc::new(hub::Hub::new());
    let shutdown = workers::Shutdown::new();
    let pool = Arc::new(workers::Pool::new(config.service.workers));
    // Registered before stale owners are released, so this server's own id counts as live.
    crate::store::service::register_owner(&pool.owner);
    let driver = Arc::new(
        crate::app::driver(config.clone(), store.clone())
            .await
            .context("opening the consistency cache")?
            .with_observer(hub.clone())
            .with_shutdown(shutdown.token())
            .with_owner(pool.owner.clone()),
    );
    let state = Arc::new(AppState {
        config: config.clone(),
        store: store.clone(),
        driver: driver.clone(),
        hub: hub.clone(),
        auth: auth::Auth::new(store.clone(), config.service.rate_limit.clone(), config.service.failed_auth_per_minute),
        ops_open: config.service.public_ops || listener.local_addr()?.ip().is_loopback(),
        views: jobs::ViewCache::default(),
        pool: pool.clone(),
        data_dir,
        started: Instant::now(),
        shutdown: shutdown.clone(),
    });
    {
        let st = state.clone();
        hub.on_change(move |id| st.views.invalidate(id));
    }
    webhook::start(state.clone());
    workers::mark_resumes(&state)?;
    let worker_tasks = workers::spawn(state.clone(), shutdown.clone());
    let addr = listener.local_addr()?;
    let app = router(state.clone());
    let stop = shutdown.clone();
    let owner = pool.owner.clone();
    let grace = std::time::Duration::from_secs_f64(config.service.shutdown_grace_sec);
    let deadlines = serve::Deadlines {
        header: std::time::Duration::from_secs_f64(config.service.header_timeout_sec),
        body: std::time::Duration::from_secs_f64(config.service.body_timeout_sec),
    };
    let done = tokio::spawn(async move {
        serve::serve(listener, app, deadlines, stop).await;
        workers::join(worker_tasks, grace).await;
        crate::store::service::unregister_owner(&owner);
        Ok(())
    });
    Ok(Running { addr, shutdown, done })
}
