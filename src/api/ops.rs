//! Money and operations: presets, cost estimates, health, Prometheus metrics and alerts.
//!
//! Metrics and alerts are computed from what the store recorded (job states, history lines
//! with stage durations, QA and cost sections), so a fresh server reports zeros and raises
//! no alert.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::Shared;
use super::auth;
use super::error::{ApiError, ErrorBody, parse_json};
use crate::finance::{self, CostQuote};
use crate::sanitize::{self, BriefRequest};
use crate::store::service::{ExecutionStats, StuckJob};

/// The configured presets.
#[utoipa::path(get, path = "/v1/presets", responses((status = 200, description = "presets by name")), security(("bearer" = [])), tag = "money")]
pub async fn presets(State(state): State<Shared>) -> Response {
    let presets: serde_json::Map<String, serde_json::Value> = state
        .config
        .presets
        .iter()
        .map(|(name, p)| {
            (
                name.clone(),
                json!({
                    "pipeline": format!("{:?}", p.pipeline).to_lowercase(),
                    "min_quality": p.min_quality,
                    "max_duration_sec": p.max_duration_sec,
                    "cost_per_minute": p.cost_per_minute,
                    "default_tier": p.default_tier,
                    "plan_review": p.plan_review,
                    "cache": p.cache,
                    "multi_review": p.multi_review,
                }),
            )
        })
        .collect();
    axum::Json(json!({"presets": presets})).into_response()
}

/// Price a brief without submitting it (validated like a submission).
#[utoipa::path(post, path = "/v1/cost-estimate", request_body = BriefRequest,
    responses((status = 200, description = "the estimate"), (status = 422, body = ErrorBody)), security(("bearer" = [])), tag = "money")]
pub async fn cost_estimate(State(state): State<Shared>, body: Bytes) -> Result<axum::Json<CostQuote>, ApiError> {
    let brief: BriefRequest = parse_json(&body)?;
    let clean = sanitize::sanitize(&brief, &state.config)?;
    let e =
        finance::quote_brief(&state.config, state.store.as_ref(), &state.data_dir, Some(state.store.as_ref()), &clean)
            .map_err(ApiError::internal)?;
    Ok(axum::Json(e))
}

/// Whether the request may read the operational endpoints: always on a loopback bind or
/// with `service.publicOps`; otherwise with a key of the `ops` or `admin` role. `Ok(false)`
/// when no key was sent; 401/403/429 for a bad, unprivileged or throttled one.
fn ops_access(state: &Shared, req: &Request) -> Result<bool, ApiError> {
    if state.ops_open {
        return Ok(true);
    }
    let ip = super::serve::peer(req).map(|a| a.ip());
    let Some(secret) = auth::bearer(req) else {
        if let Some(ip) = ip
            && let Err(wait) = state.auth.throttled(ip)
        {
            return Err(ApiError::too_many(
                "auth_throttled",
                format!("too many failed authentications from {ip}"),
                wait,
            ));
        }
        return Ok(false);
    };
    let caller = state.auth.authenticate(Some(&secret), ip)?;
    if !caller.role.may_read_ops() {
        return Err(ApiError::forbidden(format!(
            "key '{}' has the role '{}'; operational endpoints need 'ops' or 'admin'",
            caller.name,
            caller.role.as_str()
        )));
    }
    Ok(true)
}

/// Liveness and readiness: store reachable, versions, workers, models. On a public bind
/// without `service.publicOps`, a request without an `ops`/`admin` key gets only
/// `{"status": "alive"}`.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "healthy (or, unauthenticated on a public bind, alive)"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody),
    (status = 503, description = "store unreachable")), tag = "ops")]
pub async fn health(State(state): State<Shared>, req: Request) -> Result<Response, ApiError> {
    if !ops_access(&state, &req)? {
        return Ok(axum::Json(json!({"status": "alive"})).into_response());
    }
    let store = state.store.ping();
    let queued = state.store.queued_count().unwrap_or(-1);
    let body = json!({
        "status": if store.is_ok() { "ok" } else { "degraded" },
        "store": match &store { Ok(()) => json!({"ok": true, "kind": state.store.backend()}), Err(e) => json!({"ok": false, "error": e.to_string()}) },
        // Where deliverables go: every node of a deployment must name the same place.
        "artifacts": {"location": state.driver.artifacts().location("{job}"), "working_dir": state.driver.artifacts().is_working_dir()},
        "version": env!("CARGO_PKG_VERSION"),
        "config_version": state.config.version,
        "workers": {"configured": state.pool.size, "busy": state.pool.busy()},
        "queued_jobs": queued,
        "models_loaded": [],
        "device": "cpu",
        "uptime_s": state.started.elapsed().as_secs(),
    });
    let status = if store.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok((status, axum::Json(body)).into_response())
}

/// Histogram buckets for stage latency, seconds.
const BUCKETS: [f64; 12] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

fn render_metrics(stats: &ExecutionStats, busy: usize, workers: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP aiprod_jobs Jobs by state.\n# TYPE aiprod_jobs gauge");
    for (s, n) in &stats.jobs_by_state {
        let _ = writeln!(out, "aiprod_jobs{{state=\"{s}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP aiprod_stage_duration_seconds Committed stage durations.\n# TYPE aiprod_stage_duration_seconds histogram"
    );
    for l in &stats.stage_latencies {
        let secs: Vec<f64> = l.durations_ms.iter().map(|ms| *ms as f64 / 1000.0).collect();
        for b in BUCKETS {
            let n = secs.iter().filter(|s| **s <= b).count();
            let _ = writeln!(out, "aiprod_stage_duration_seconds_bucket{{stage=\"{}\",le=\"{b}\"}} {n}", l.stage);
        }
        let _ =
            writeln!(out, "aiprod_stage_duration_seconds_bucket{{stage=\"{}\",le=\"+Inf\"}} {}", l.stage, secs.len());
        let _ =
            writeln!(out, "aiprod_stage_duration_seconds_sum{{stage=\"{}\"}} {}", l.stage, secs.iter().sum::<f64>());
        let _ = writeln!(out, "aiprod_stage_duration_seconds_count{{stage=\"{}\"}} {}", l.stage, secs.len());
    }
    let _ = writeln!(
        out,
        "# HELP aiprod_semantic_qa_score Semantic QA scores of scored jobs.\n# TYPE aiprod_semantic_qa_score summary"
    );
    let _ = writeln!(out, "aiprod_semantic_qa_score_sum {}", stats.semantic_scores.iter().sum::<f64>());
    let _ = writeln!(out, "aiprod_semantic_qa_score_count {}", stats.semantic_scores.len());
    let _ = writeln!(
        out,
        "# HELP aiprod_cost_estimate_usd_total Sum of cost estimates of costed jobs.\n# TYPE aiprod_cost_estimate_usd_total counter"
    );
    let _ = writeln!(out, "aiprod_cost_estimate_usd_total {}", stats.costs.iter().sum::<f64>());
    let cache = crate::store::cache::stats();
    let _ = writeln!(
        out,
        "# HELP aiprod_cache_lookups_total Consistency-cache lookups in this process: brand markers and identical requests.\n# TYPE aiprod_cache_lookups_total counter"
    );
    for (kind, result, n) in [
        ("markers", "hit", cache.hits),
        ("markers", "miss", cache.misses),
        ("request", "hit", cache.request_hits),
        ("request", "miss", cache.request_misses),
    ] {
        let _ = writeln!(out, "aiprod_cache_lookups_total{{kind=\"{kind}\",result=\"{result}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP aiprod_stage_executions_total Stage executions recorded.\n# TYPE aiprod_stage_executions_total counter"
    );
    let _ = writeln!(out, "aiprod_stage_executions_total {}", stats.executions);
    let _ = writeln!(
        out,
        "# HELP aiprod_stage_errors_total Stage attempts that failed (retried or fatal).\n# TYPE aiprod_stage_errors_total counter"
    );
    let _ = writeln!(out, "aiprod_stage_errors_total {}", stats.errors);
    let _ = writeln!(out, "# HELP aiprod_workers Workers configured and busy.\n# TYPE aiprod_workers gauge");
    let _ =
        writeln!(out, "aiprod_workers{{status=\"configured\"}} {workers}\naiprod_workers{{status=\"busy\"}} {busy}");
    out
}

/// The shared queue as the store sees it.
pub struct Queue {
    /// Jobs waiting for a worker (unowned, or owned under a lapsed lease).
    pub depth: i64,
    /// Jobs taken over from a worker whose lease lapsed, with how often each was.
    pub takeovers: Vec<(String, i64)>,
}

/// The scale-out series: queue depth and lease takeovers (the shared store's view, the same
/// on every node), claim latency and jobs driven (this process's workers, labelled with its
/// owner id so a scrape of every worker adds up).
fn render_queue_metrics(out: &mut String, queue: &Queue, pool: &super::workers::PoolStats, owner: &str) {
    let _ = writeln!(out, "# HELP aiprod_queue_depth Jobs waiting for a worker.\n# TYPE aiprod_queue_depth gauge");
    let _ = writeln!(out, "aiprod_queue_depth {}", queue.depth);
    let _ = writeln!(
        out,
        "# HELP aiprod_lease_takeovers_total Jobs resumed by another worker after their owner's lease lapsed.\n# TYPE aiprod_lease_takeovers_total counter"
    );
    let _ = writeln!(out, "aiprod_lease_takeovers_total {}", queue.takeovers.iter().map(|(_, n)| n).sum::<i64>());
    let _ = writeln!(
        out,
        "# HELP aiprod_claim_seconds Time to claim a job from the queue, by this process's workers.\n# TYPE aiprod_claim_seconds summary"
    );
    let _ = writeln!(out, "aiprod_claim_seconds_sum{{owner=\"{owner}\"}} {}", pool.claim_micros as f64 / 1e6);
    let _ = writeln!(out, "aiprod_claim_seconds_count{{owner=\"{owner}\"}} {}", pool.claims);
    let _ = writeln!(
        out,
        "# HELP aiprod_worker_jobs_total Jobs this process's workers drove until they stopped (delivered, waiting, failed, handed back).\n# TYPE aiprod_worker_jobs_total counter"
    );
    let _ = writeln!(out, "aiprod_worker_jobs_total{{owner=\"{owner}\"}} {}", pool.driven);
    let _ = writeln!(
        out,
        "# HELP aiprod_heartbeat_failures_total Lease renewals that failed.\n# TYPE aiprod_heartbeat_failures_total counter"
    );
    let _ = writeln!(out, "aiprod_heartbeat_failures_total{{owner=\"{owner}\"}} {}", pool.heartbeats_failed);
}

/// Prometheus text exposition. On a public bind without `service.publicOps` it needs a key
/// with the `ops` or `admin` role.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)),
    tag = "ops")]
pub async fn metrics(State(state): State<Shared>, req: Request) -> Result<Response, ApiError> {
    if !ops_access(&state, &req)? {
        return Err(ApiError::unauthorized(
            "this server is not bound to loopback: /metrics needs a key with the 'ops' or 'admin' role",
        ));
    }
    let stats = state.store.execution_stats()?;
    let mut text = render_metrics(&stats, state.pool.busy(), state.pool.size);
    let queue = Queue { depth: state.store.queued_count()?, takeovers: state.store.lease_takeovers()? };
    render_queue_metrics(&mut text, &queue, &state.pool.stats(), &state.pool.owner);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Alert {
    /// `high_latency`, `high_cost`, `low_quality`, `high_error_rate` `stuck_job` or `repeated_takeover`.
    pub name: &'static str,
    /// The measured value.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// In words.
    pub message: String,
}

/// The v33 alert rules over recorded executions: average stage execution > 5 s, average
/// job cost > $1, average semantic score < 0.6, more than 10 errors and > 10 % of executions;
/// and one `stuck_job` alert per job in a working state for more than
/// `orchestrator.alertOnStuckStateMinutes` (`stuck_after_min`).
pub fn alerts_for(stats: &ExecutionStats, stuck: &[StuckJob], stuck_after_min: u64) -> Vec<Alert> {
    alerts_with_takeovers(stats, stuck, stuck_after_min, &[])
}

/// Takeovers of one job at or above which it is reported: a job whose worker keeps dying
/// (it crashes the worker, or outlives every lease) needs a person.
pub const REPEATED_TAKEOVERS: i64 = 2;

/// [`alerts_for`], plus one `repeated_takeover` alert per job taken over from a lapsed lease
/// [`REPEATED_TAKEOVERS`] times or more.
pub fn alerts_with_takeovers(
    stats: &ExecutionStats,
    stuck: &[StuckJob],
    stuck_after_min: u64,
    takeovers: &[(String, i64)],
) -> Vec<Alert> {
    let mut out = Vec::new();
    for (job, n) in takeovers.iter().filter(|(_, n)| *n >= REPEATED_TAKEOVERS) {
        out.push(Alert {
            name: "repeated_takeover",
            value: *n as f64,
            threshold: REPEATED_TAKEOVERS as f64,
            message: format!(
                "job {job} was taken over {n} times after its worker stopped renewing the lease: it may crash or outlast its workers"
            ),
        });
    }
    let now = chrono::Utc::now();
    for job in stuck {
        let minutes = (now - job.since).num_seconds().max(0) as f64 / 60.0;
        out.push(Alert {
            name: "stuck_job",
            value: minutes,
            threshold: stuck_after_min as f64,
            message: format!(
                "job {} has been in '{}' for {minutes:.0} min (orchestrator.alertOnStuckStateMinutes = {stuck_after_min})",
                job.job_id, job.state
            ),
        });
    }
    let all: Vec<u64> = stats.stage_latencies.iter().flat_map(|l| l.durations_ms.iter().copied()).collect();
    if !all.is_empty() {
        let avg = all.iter().sum::<u64>() as f64 / all.len() as f64 / 1000.0;
        if avg > 5.0 {
            out.push(Alert {
                name: "high_latency",
                value: avg,
                threshold: 5.0,
                message: format!("average stage execution {avg:.2} s > 5 s"),
            });
        }
    }
    if !stats.costs.is_empty() {
        let avg = stats.costs.iter().sum::<f64>() / stats.costs.len() as f64;
        if avg > 1.0 {
            out.push(Alert {
                name: "high_cost",
                value: avg,
                threshold: 1.0,
                message: format!("average job cost ${avg:.2} > $1"),
            });
        }
    }
    if !stats.semantic_scores.is_empty() {
        let avg = stats.semantic_scores.iter().sum::<f64>() / stats.semantic_scores.len() as f64;
        if avg < 0.6 {
            out.push(Alert {
                name: "low_quality",
                value: avg,
                threshold: 0.6,
                message: format!("average semantic QA score {avg:.2} < 0.6"),
            });
        }
    }
    if stats.executions > 0 {
        let rate = stats.errors as f64 / stats.executions as f64;
        if stats.errors > 10 && rate > 0.1 {
            out.push(Alert {
                name: "high_error_rate",
                value: rate,
                threshold: 0.1,
                message: format!("{} errors in {} executions ({:.0} %)", stats.errors, stats.executions, rate * 100.0),
            });
        }
    }
    out
}

/// Alerts computed from recorded executions.
#[utoipa::path(get, path = "/v1/alerts", responses((status = 200, description = "active alerts")), security(("bearer" = [])), tag = "ops")]
pub async fn alerts(State(state): State<Shared>) -> Result<Response, ApiError> {
    let stats = state.store.execution_stats()?;
    let minutes = state.config.orchestrator.alert_on_stuck_state_minutes;
    let cutoff = chrono::Utc::now() - chrono::Duration::minutes(minutes as i64);
    let stuck = state.store.stuck_jobs(cutoff)?;
    let alerts = alerts_with_takeovers(&stats, &stuck, minutes, &state.store.lease_takeovers()?);
    Ok(axum::Json(json!({"alerts": alerts, "basis": {"executions": stats.executions, "errors": stats.errors,
        "scored_jobs": stats.semantic_scores.len(), "costed_jobs": stats.costs.len()}}))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::service::StageLatency;

    #[test]
    fn no_data_no_alerts_and_thresholds_apply() {
        assert!(alerts_for(&ExecutionStats::default(), &[], 30).is_empty());
        let stats = ExecutionStats {
            stage_latencies: vec![StageLatency { stage: "rendering".into(), durations_ms: vec![6000, 7000] }],
            costs: vec![1.5],
            semantic_scores: vec![0.5],
            errors: 11,
            executions: 50,
            ..Default::default()
        };
        let names: Vec<_> = alerts_for(&stats, &[], 30).iter().map(|a| a.name).collect();
        assert_eq!(names, ["high_latency", "high_cost", "low_quality", "high_error_rate"]);
        let stuck = StuckJob {
            job_id: "j1".into(),
            state: "rendering".into(),
            since: chrono::Utc::now() - chrono::Duration::minutes(45),
        };
        let alerts = alerts_for(&ExecutionStats::default(), &[stuck], 30);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].name, "stuck_job");
        assert!(alerts[0].value >= 45.0 && alerts[0].message.contains("j1"), "{:?}", alerts[0]);
        let text = render_metrics(&stats, 0, 2);
        assert!(text.contains("aiprod_stage_duration_seconds_bucket{stage=\"rendering\",le=\"+Inf\"} 2"));
        assert!(text.contains("aiprod_stage_duration_seconds_bucket{stage=\"rendering\",le=\"5\"} 0"));
    }

    #[test]
    fn a_job_taken_over_twice_raises_an_alert_and_takeovers_are_counted() {
        let takeovers = [("once".to_owned(), 1), ("twice".to_owned(), 2)];
        let alerts = alerts_with_takeovers(&ExecutionStats::default(), &[], 30, &takeovers);
        assert_eq!(alerts.iter().map(|a| a.name).collect::<Vec<_>>(), ["repeated_takeover"]);
        assert!(alerts[0].message.contains("twice"), "{}", alerts[0].message);
        let mut text = String::new();
        let pool = crate::api::workers::PoolStats { claims: 4, claim_micros: 2_000, driven: 3, heartbeats_failed: 0 };
        render_queue_metrics(&mut text, &Queue { depth: 5, takeovers: takeovers.to_vec() }, &pool, "worker:1:x");
        assert!(text.contains("aiprod_queue_depth 5"));
        assert!(text.contains("aiprod_lease_takeovers_total 3"));
        assert!(text.contains("aiprod_claim_seconds_sum{owner=\"worker:1:x\"} 0.002"));
        assert!(text.contains("aiprod_worker_jobs_total{owner=\"worker:1:x\"} 3"));
    }
}
