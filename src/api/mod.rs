//! The service: `aiprod serve`. An axum 0.8 application (routes under `/v1`, `/health`,
//! `/metrics`, `/docs`, and the ICC web client at `/`) plus a bounded pool of workers that
//! claim queued jobs from the store and drive them.
//!
//! Module map:
//! - [`error`]: the `{error: {code, message, field}}` answers.
//! - [`auth`]: API keys (hashed), roles, per-key rate limits.
//! - [`hub`]: the driver's observer for the server (SSE fan-out, live progress).
//! - [`workers`]: the worker pool and graceful shutdown.
//! - [`jobs`]: submit, list, get, cancel, events, video, artifacts; [`files`]: serving a
//!   job's files from the artifact store (HTTP Range, chunked reads).
//! - [`links`]: the signed, short-lived media link format; [`media`]: hands links out.
//! - [`icc`]: memory view (ETag), manifest edits and versions, review decisions, comments.
//! - [`ops`]: presets, cost estimate, health, metrics, alerts.
//! - [`qa`]: technical and semantic QA of any file against a job's plan.
//! - [`webhook`]: signed terminal-state callbacks; [`egress`]: which addresses they may reach.
//! - [`docs`]: the OpenAPI document and its page; [`web`]: the ICC page.
//! - [`serve`]: the connection loop (header, body and idle deadlines; the peer address).

pub mod auth;
pub mod docs;
pub mod egress;
pub mod error;
pub mod files;
pub mod hub;
pub mod icc;
pub mod jobs;
pub mod links;
pub mod media;
pub mod ops;
pub mod qa;
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
use crate::store::Database;

/// Everything a handler may use.
pub struct AppState {
    /// Configuration.
    pub config: Arc<Config>,
    /// The store (SQLite, or PostgreSQL shared with workers on other machines).
    pub store: Arc<dyn Database>,
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
        .route("/qa/technical", post(qa::technical).layer(DefaultBodyLimit::max(qa::MAX_UPLOAD_BYTES)))
        .route("/qa/semantic", post(qa::semantic).layer(DefaultBodyLimit::max(qa::MAX_UPLOAD_BYTES)))
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

/// Open the configured store, bind, start the workers and serve until `shutdown` trips. Jobs
/// a previous process left mid-stage are resumed first. With `service.workers = 0` the
/// process is an API node only: `aiprod worker` processes sharing its store run the jobs.
pub async fn start(config: Arc<Config>, listener: TcpListener) -> anyhow::Result<Running> {
    let workers = config.service.workers;
    let state = app_state(config.clone(), workers, "serve", listener.local_addr()?).await?;
    let worker_tasks = workers::spawn(state.clone(), state.shutdown.clone());
    let app = router(state.clone());
    Ok(run_http(state, listener, app, worker_tasks))
}

/// Run `concurrency` workers and no API: `aiprod worker`. With `metrics`, the listener also
/// serves this process's `/metrics` and `/health` (no `/v1`).
pub async fn start_worker(
    config: Arc<Config>,
    concurrency: usize,
    metrics: Option<TcpListener>,
) -> anyhow::Result<Running> {
    let addr = match &metrics {
        Some(l) => l.local_addr()?,
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let state = app_state(config, concurrency, "worker", addr).await?;
    let worker_tasks = workers::spawn(state.clone(), state.shutdown.clone());
    match metrics {
        Some(listener) => {
            let app = Router::new()
                .route("/health", get(ops::health))
                .route("/metrics", get(ops::metrics))
                .layer(axum::middleware::map_response(error::json_errors))
                .with_state(state.clone());
            Ok(run_http(state, listener, app, worker_tasks))
        }
        None => {
            let (shutdown, grace, owner) = (state.shutdown.clone(), grace(&state.config), state.pool.owner.clone());
            let done = tokio::spawn(async move {
                shutdown.wait().await;
                workers::join(worker_tasks, grace).await;
                crate::store::service::unregister_owner(&owner);
                Ok(())
            });
            Ok(Running { addr, shutdown: state.shutdown.clone(), done })
        }
    }
}

fn grace(config: &Config) -> std::time::Duration {
    std::time::Duration::from_secs_f64(config.service.shutdown_grace_sec)
}

/// The state every handler and worker of this process shares, on the configured store.
async fn app_state(config: Arc<Config>, workers: usize, what: &str, addr: SocketAddr) -> anyhow::Result<Shared> {
    use anyhow::Context;
    let data_dir = config.storage.data_dir.clone();
    let store = crate::store::open_configured(&config.storage).context("opening the store")?;
    let hub = Arc::new(hub::Hub::new());
    let shutdown = workers::Shutdown::new();
    let pool = Arc::new(workers::Pool::new(workers, what));
    // Registered before stale owners are released, so this process's own id counts as live.
    crate::store::service::register_owner(&pool.owner);
    let driver = Arc::new(
        crate::app::driver(config.clone(), store.clone())
            .await
            .context("opening the consistency cache and the artifact store")?
            .with_observer(hub.clone())
            .with_shutdown(shutdown.token())
            .with_owner(pool.owner.clone()),
    );
    let state = Arc::new(AppState {
        config: config.clone(),
        store: store.clone(),
        driver,
        hub: hub.clone(),
        auth: auth::Auth::new(store, config.service.rate_limit.clone(), config.service.failed_auth_per_minute),
        ops_open: config.service.public_ops || addr.ip().is_loopback(),
        views: jobs::ViewCache::default(),
        pool,
        data_dir,
        started: Instant::now(),
        shutdown,
    });
    {
        let st = state.clone();
        hub.on_change(move |id| st.views.invalidate(id));
    }
    webhook::start(state.clone());
    workers::mark_resumes(&state)?;
    Ok(state)
}

/// Serve `app` on `listener` until shutdown, then wait for the workers.
fn run_http(
    state: Shared,
    listener: TcpListener,
    app: Router,
    worker_tasks: Vec<tokio::task::JoinHandle<()>>,
) -> Running {
    let addr = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let stop = state.shutdown.clone();
    let owner = state.pool.owner.clone();
    let grace = grace(&state.config);
    let deadlines = serve::Deadlines {
        header: std::time::Duration::from_secs_f64(state.config.service.header_timeout_sec),
        body: std::time::Duration::from_secs_f64(state.config.service.body_timeout_sec),
    };
    let done = tokio::spawn(async move {
        serve::serve(listener, app, deadlines, stop).await;
        workers::join(worker_tasks, grace).await;
        crate::store::service::unregister_owner(&owner);
        Ok(())
    });
    Running { addr, shutdown: state.shutdown.clone(), done }
}
