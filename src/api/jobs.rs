//! Pipeline routes: submit a brief, list and read jobs, cancel, follow events (SSE), fetch the
//! video (HTTP Range) and artifacts.
//!
//! `GET /v1/jobs/{id}` is the hot polling endpoint: its view (state, history, durations) is
//! cached per job and invalidated by the hub when the job changes, so a request costs a map
//! lookup and a serialisation, not a database query.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::Shared;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody, parse_json};
use super::hub::{JobEvent, progress_pct};
use crate::finance::{self, CostQuote};
use crate::pipeline::machine::{Event, State as JobState};
use crate::sanitize::{self, BriefRequest, SanitizedInput};
use crate::store::service::{Cursor, IdempotencyClaim, JobApiOptions, JobFilter, Submission};
use crate::store::{HistoryEvent, JobRecord, Store};

/// The body of `POST /v1/pipeline/run`: a brief plus API-only options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The brief text (10–10,000 characters).
    pub content: String,
    /// Length in seconds (5–300, and the preset's maximum).
    #[serde(default, deserialize_with = "sanitize::whole_seconds")]
    pub duration_sec: Option<u32>,
    /// `16:9`, `9:16`, `1:1` or `4:5`.
    pub aspect_ratio: Option<String>,
    /// Subtitle languages; the first is the caption language.
    pub languages: Option<Vec<String>>,
    /// `quick_social`, `brand_campaign` or `premium_spot`.
    pub preset: Option<String>,
    /// `low`, `normal` or `high`.
    pub priority: Option<String>,
    /// Budget in USD.
    pub budget: Option<f64>,
    /// Brand id.
    pub brand_id: Option<String>,
    /// `economy`, `standard` or `premium`.
    pub tier: Option<String>,
    /// Narrator voice: `auto`, `piper` or `espeak-ng` (default: the preset's).
    pub voice: Option<String>,
    /// `false` for music only (default: the preset's, narrated).
    pub narration: Option<bool>,
    /// Where to POST a signed JSON payload when the job ends (http or https).
    pub callback_url: Option<String>,
    /// Run every stage even when an identical request was already delivered (by default the
    /// delivered job is returned with 200 and `reused: true`).
    #[serde(default)]
    pub fresh: bool,
}

impl SubmitRequest {
    fn brief(&self) -> BriefRequest {
        BriefRequest {
            content: self.content.clone(),
            duration_sec: self.duration_sec,
            aspect_ratio: self.aspect_ratio.clone(),
            languages: self.languages.clone(),
            preset: self.preset.clone(),
            priority: self.priority.clone(),
            budget: self.budget,
            brand_id: self.brand_id.clone(),
            tier: self.tier.clone(),
            voice: self.voice.clone(),
            narration: self.narration,
        }
    }
}

/// Links to a job's resources.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Links {
    /// The job's status.
    #[serde(rename = "self")]
    pub self_: String,
    /// Server-sent events.
    pub events: String,
    /// The ICC memory view.
    pub memory: String,
    /// The video (once rendered).
    pub video: String,
}

fn links(id: &str) -> Links {
    Links {
        self_: format!("/v1/jobs/{id}"),
        events: format!("/v1/jobs/{id}/events"),
        memory: format!("/v1/jobs/{id}/memory"),
        video: format!("/v1/jobs/{id}/video"),
    }
}

/// The answer to a submission.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Submitted {
    /// The new (or, for a repeated idempotency key, the existing) job.
    pub job_id: String,
    /// Its state now.
    pub state: String,
    /// The cost orchestrator's quote: chosen tier, price, and every option it weighed.
    #[schema(value_type = Object)]
    pub cost_estimate: CostQuote,
    /// Where to follow it.
    pub links: Links,
    /// The job is an earlier delivery of an identical request, returned without running
    /// any stage.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reused: bool,
    /// HMAC-SHA256 key of this job's webhook (`X-Aiprod-Signature: sha256=<hex>`), when a
    /// `callback_url` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

/// Submit a brief; the job is queued for a worker.
#[utoipa::path(post, path = "/v1/pipeline/run", request_body = SubmitRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "same key + same body → same job")),
    responses((status = 202, body = Submitted), (status = 200, description = "an identical request was already delivered: that job, reused"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])), tag = "pipeline")]
pub async fn submit(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the body exceeds inputSanitizer.maxBodyBytes ({} bytes)",
                    state.config.input_sanitizer.max_body_bytes
                ),
            )
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    let request: SubmitRequest = parse_json(&body)?;
    let idem_key = idempotency_key(&headers)?;
    let body_hash = hex::encode(Sha256::digest(serde_json::to_vec(&request).map_err(ApiError::internal)?));
    if let Some(key) = &idem_key
        && let Some((job_id, hash)) = state.store.idempotent_job(&caller.name, key)?
    {
        return held(&state, key, &job_id, &hash, &body_hash);
    }
    let brief = request.brief();
    let clean = sanitize::sanitize(&brief, &state.config)?;
    if let Some(url) = &request.callback_url {
        super::webhook::check_submitted_url(url, state.config.service.webhooks.allow_private).await?;
    }
    if !request.fresh
        && let Some(id) = crate::pipeline::reuse::reusable_job(
            &state.config,
            state.driver.cache(),
            state.store.as_ref(),
            state.driver.artifacts().as_ref(),
            &clean,
        )
        .await
    {
        tracing::info!(job = %id, by = %caller.name, "identical request: delivered job reused");
        let mut out = submitted(&state, &id)?;
        out.reused = true;
        // The caller asked to be called back: the reused job has ended, so the callback
        // goes now, signed with a secret of this request's own.
        if let Some(url) = &request.callback_url {
            let secret = new_webhook_secret();
            super::webhook::deliver_reused(state.clone(), id.clone(), url.clone(), secret.clone());
            out.webhook_secret = Some(secret);
        }
        return Ok((StatusCode::OK, axum::Json(out)).into_response());
    }
    let queued = state.store.queued_count()?;
    if queued >= state.config.service.max_queued_jobs {
        return Err(ApiError::too_many(
            "queue_full",
            format!("{queued} jobs are waiting for a worker (service.maxQueuedJobs); retry later"),
            30,
        ));
    }
    let new_job = state.driver.admit(&brief, &clean, false)?;
    let webhook_secret = request.callback_url.as_ref().map(|_| new_webhook_secret());
    let options = JobApiOptions {
        submitted_by: caller.name.clone(),
        callback_url: request.callback_url.clone(),
        webhook_secret: webhook_secret.clone(),
    };
    let claim =
        idem_key.as_deref().map(|key| IdempotencyClaim { key_name: &caller.name, key, body_sha256: &body_hash });
    let job = match state.store.create_api_job(&new_job, &options, claim)? {
        Submission::Created(job) => job,
        // A concurrent request with the same key got there first: nothing was created.
        Submission::Held { job_id, body_sha256 } => {
            return held(&state, idem_key.as_deref().unwrap_or_default(), &job_id, &body_sha256, &body_hash);
        }
    };
    state.hub.wake();
    let mut out = submitted_with(&state, &job.id, &clean)?;
    out.webhook_secret = webhook_secret;
    tracing::info!(job = %job.id, by = %caller.name, preset = %clean.preset, "job submitted through the API");
    Ok((StatusCode::ACCEPTED, axum::Json(out)).into_response())
}

/// A fresh webhook signing key.
fn new_webhook_secret() -> String {
    hex::encode(Sha256::digest(uuid::Uuid::new_v4().as_bytes()))
}

/// The `Idempotency-Key` header, if sent: one value of 1–255 printable ASCII characters
/// (0x20–0x7E, as the IETF draft's structured-field string allows), else 422.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else { return Ok(None) };
    let bad = |m: &str| ApiError::invalid("Idempotency-Key", "format", m.to_owned());
    if values.next().is_some() {
        return Err(bad("send one Idempotency-Key header, not several"));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 {
        return Err(ApiError::invalid("Idempotency-Key", "max_length", "an idempotency key is 1–255 characters"));
    }
    if !bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(bad(
            "an idempotency key is printable ASCII (0x20–0x7E); non-ASCII and control characters are refused",
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The answer when an idempotency key is already held: the same job for the same body, 409
/// for a different one.
fn held(state: &Shared, key: &str, job_id: &str, held_hash: &str, body_hash: &str) -> Result<Response, ApiError> {
    if held_hash != body_hash {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            format!("Idempotency-Key '{key}' was used with a different body (job {job_id})"),
        ));
    }
    submitted(state, job_id).map(|s| (StatusCode::ACCEPTED, axum::Json(s)).into_response())
}

fn submitted(state: &Shared, job_id: &str) -> Result<Submitted, ApiError> {
    let job = state.store.job(job_id)?;
    let brief: BriefRequest = serde_json::from_value(job.request.clone()).map_err(ApiError::internal)?;
    let clean = sanitize::sanitize(&brief, &state.config)?;
    submitted_with(state, job_id, &clean)
}

/// The submission answer for a job whose sanitised brief the caller already has.
fn submitted_with(state: &Shared, job_id: &str, clean: &SanitizedInput) -> Result<Submitted, ApiError> {
    let job = state.store.job(job_id)?;
    let cost_estimate =
        finance::quote_brief(&state.config, state.store.as_ref(), &state.data_dir, Some(state.store.as_ref()), clean)
            .map_err(ApiError::internal)?;
    let webhook_secret = None;
    Ok(Submitted {
        job_id: job.id.clone(),
        state: job.state.name().into(),
        cost_estimate,
        links: links(&job.id),
        reused: false,
        webhook_secret,
    })
}

/// What every view of a job starts with: identity, state and timestamps.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobHeader {
    /// Job id.
    pub id: String,
    /// State name.
    pub state: String,
    /// Phase (INIT, SANITIZED, AGENTS, QA, APPROVAL, DELIVERED, FAILED, CANCELLED).
    pub phase: &'static str,
    /// Preset.
    pub preset: Option<String>,
    /// Brand.
    pub brand_id: Option<String>,
    /// Submitted at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl JobHeader {
    fn of(job: &JobRecord) -> Self {
        Self {
            id: job.id.clone(),
            state: job.state.name().into(),
            phase: job.state.phase(),
            preset: job.preset.clone(),
            brand_id: job.brand_id.clone(),
            created_at: job.created_at,
            updated_at: job.updated_at,
        }
    }
}

/// A job's history line as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    /// Id, state, preset, brand, timestamps.
    #[serde(flatten)]
    pub header: JobHeader,
    /// Whether the job waits for a human (plan review or final review).
    pub awaiting_human: bool,
    /// Whether the job has ended.
    pub terminal: bool,
    /// For failed jobs: the stage that failed.
    pub failed_stage: Option<String>,
    /// For failed jobs: the error.
    pub error: Option<String>,
    /// Total committed time per stage (retries included), in milliseconds.
    pub stage_durations_ms: BTreeMap<String, u64>,
    /// Every history line.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<HistoryEvent>,
    /// Related resources.
    pub links: Links,
}

fn build_view(job: &JobRecord, history: Vec<HistoryEvent>) -> JobView {
    let mut durations = BTreeMap::new();
    for h in &history {
        if h.from != h.to || h.event == "retry" {
            *durations.entry(h.from.clone()).or_insert(0) += h.duration_ms;
        }
    }
    let (failed_stage, error) = match &job.state {
        JobState::Failed { stage, error } => (Some(stage.clone()), Some(error.clone())),
        _ => (None, None),
    };
    JobView {
        header: JobHeader::of(job),
        awaiting_human: job.state.awaits_human(),
        terminal: job.state.is_terminal(),
        failed_stage,
        error,
        stage_durations_ms: durations,
        history,
        links: links(&job.id),
    }
}

/// A job's state and its view, shared between requests. The view's JSON is written once,
/// when the view is built: a client polling a job gets those bytes with the live progress
/// spliced in, not a fresh serialisation of the whole history on every request.
pub struct CachedJob {
    /// The job's state.
    pub state: JobState,
    /// The view.
    pub view: JobView,
    /// `view` as a JSON object.
    pub json: Vec<u8>,
}

/// A cached job, shared between requests.
pub type CachedView = Arc<CachedJob>;

/// Per-job views, dropped when the hub reports a change (and after a second, for writers
/// outside this process).
#[derive(Default)]
pub struct ViewCache {
    views: RwLock<HashMap<String, (Instant, CachedView)>>,
}

const VIEW_TTL: Duration = Duration::from_secs(1);

impl ViewCache {
    /// Forget a job's view.
    pub fn invalidate(&self, id: &str) {
        self.views.write().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// The job's view, from cache or the store.
    pub fn get(&self, store: &dyn Store, id: &str) -> Result<CachedView, ApiError> {
        if let Some((at, v)) = self.views.read().unwrap_or_else(|p| p.into_inner()).get(id)
            && at.elapsed() < VIEW_TTL
        {
            return Ok(v.clone());
        }
        let job = store.job(id)?;
        let history = store.history(id)?;
        let view = build_view(&job, history);
        let json = serde_json::to_vec(&view).map_err(|e| ApiError::internal(format!("job view: {e}")))?;
        let view = Arc::new(CachedJob { state: job.state.clone(), view, json });
        let mut map = self.views.write().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(id.to_owned(), (Instant::now(), view.clone()));
        Ok(view)
    }
}

/// Check a path id is a UUID before touching the store or disk.
pub fn job_id(id: &str) -> Result<&str, ApiError> {
    uuid::Uuid::parse_str(id).map_err(|_| ApiError::not_found(format!("job {id} not found")))?;
    Ok(id)
}

/// A job's state, phase, progress, current stage, history with durations, and failure.
#[utoipa::path(get, path = "/v1/jobs/{id}", params(("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)), security(("bearer" = [])), tag = "pipeline")]
pub async fn get_job(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let cached = state.views.get(state.store.as_ref(), id)?;
    let job_state = &cached.state;
    let live = state.hub.live(id);
    let progress = LiveProgress {
        progress_pct: progress_pct(job_state, live),
        current_stage: job_state.stage().map(|s| s.name()),
        stage_fraction: live.filter(|l| Some(l.stage) == job_state.stage()).map(|l| l.fraction),
    };
    let body = progress.spliced_into(&cached.json).map_err(|e| ApiError::internal(format!("job view: {e}")))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The status answer is the job's [`JobView`] plus what changes between two polls of a job:
/// its live progress.
#[derive(Debug, Serialize)]
struct LiveProgress {
    /// Whole-job progress, 0–100.
    progress_pct: f64,
    /// The stage running now, if any.
    current_stage: Option<&'static str>,
    /// That stage's fraction done.
    stage_fraction: Option<f32>,
}

impl LiveProgress {
    /// The status JSON: these fields followed by the members of `view`, a JSON object
    /// written by serde (so it starts with `{` and has at least one member).
    fn spliced_into(&self, view: &[u8]) -> serde_json::Result<Vec<u8>> {
        let mut out = serde_json::to_vec(self)?;
        debug_assert!(view.first() == Some(&b'{') && out.last() == Some(&b'}'));
        out.pop();
        out.push(b',');
        out.extend_from_slice(&view[1..]);
        Ok(out)
    }
}

/// Filters and paging for the job list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this state.
    pub state: Option<String>,
    /// Only jobs of this preset.
    pub preset: Option<String>,
    /// Only jobs of this brand.
    pub brand: Option<String>,
    /// Page size (1–100, default 20).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page: `<created_at>_<job id>`. Any value of that shape
    /// is a position; the page holds the jobs created before it.
    pub cursor: Option<String>,
}

/// One row of the job list.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobSummary {
    /// Id, state, preset, brand, timestamps.
    #[serde(flatten)]
    pub header: JobHeader,
    /// The brief's first 80 characters.
    pub brief: String,
    /// A signed link (no key needed) to the first scene's keyframe, once rendered.
    pub thumbnail: Option<String>,
}

/// The keyframe the job list shows as a job's thumbnail.
const THUMBNAIL: &str = "keyframes/scene_01.png";

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// Newest first.
    pub jobs: Vec<JobSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The shape of a cursor, one character class per position: `d` a digit, `h` a lowercase
/// hex digit, anything else itself. A cursor is the position a page ended on — the last
/// job's creation time (RFC 3339, microseconds, UTC) and its id — so the list can continue
/// after it with one indexed comparison. Any value of this shape names a position (the list
/// continues with the jobs created before it, newest first), so a client or a fuzzer that
/// builds one from the spec's pattern gets a page, not an error.
pub const CURSOR_SHAPE: &str = "dddd-dd-ddTdd:dd:dd.ddddddZ_hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh";

/// [`CURSOR_SHAPE`] as the ECMA-262 pattern the spec publishes. It has no `$`: the spec
/// fixes the length instead (`minLength` = `maxLength`), because a `$` also matches before
/// a final newline in the regex dialect some generators use, and the server would then
/// refuse what the spec allows.
pub fn cursor_pattern() -> String {
    let mut p = String::from("^");
    for c in CURSOR_SHAPE.chars() {
        match c {
            'd' => p.push_str("[0-9]"),
            'h' => p.push_str("[0-9a-f]"),
            '.' => p.push_str("\\."),
            c => p.push(c),
        }
    }
    p
}

fn encode_cursor(c: &Cursor) -> String {
    format!("{}_{}", c.created_at, c.id)
}

fn decode_cursor(s: &str) -> Result<Cursor, ApiError> {
    let fits = s.len() == CURSOR_SHAPE.len()
        && s.bytes().zip(CURSOR_SHAPE.bytes()).all(|(b, want)| match want {
            b'd' => b.is_ascii_digit(),
            b'h' => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            _ => b == want,
        });
    if !fits {
        return Err(ApiError::invalid(
            "cursor",
            "format",
            "a cursor is the `next_cursor` of a previous page: <created_at>_<job id>, \
             e.g. 2026-01-31T12:00:00.000000Z_0f8e2b6a-1c3d-4e5f-8a9b-0c1d2e3f4a5b",
        ));
    }
    let (created_at, id) = s.split_at(CURSOR_SHAPE.find('_').unwrap_or(0));
    Ok(Cursor { created_at: created_at.into(), id: id[1..].into() })
}

/// Jobs, newest first, filtered by state, preset and brand, with cursor pagination.
#[utoipa::path(get, path = "/v1/jobs", params(ListQuery), responses((status = 200, body = JobPage), (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "pipeline")]
pub async fn list(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<JobPage>, ApiError> {
    let Query(q) = query.map_err(super::error::query_rejection)?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "range", format!("limit must be within 1..100, got {limit}")));
    }
    if let Some(s) = &q.state
        && !STATE_NAMES.contains(&s.as_str())
    {
        return Err(ApiError::invalid("state", "allowed_values", format!("unknown state '{s}'")));
    }
    let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let filter = JobFilter { state: q.state, preset: q.preset, brand: q.brand };
    let rows = state.store.list_page(&filter, cursor.as_ref(), limit + 1)?;
    let more = rows.len() > limit;
    let rows: Vec<_> = rows.into_iter().take(limit).collect();
    let next_cursor = if more {
        rows.last().map(|(j, at)| encode_cursor(&Cursor { created_at: at.clone(), id: j.id.clone() }))
    } else {
        None
    };
    let expires = super::links::expiry_for(Utc::now().timestamp());
    // Which jobs have a thumbnail: one HEAD each on the artifact store (a few at a time, as
    // the store may be remote).
    let artifacts = state.driver.artifacts().clone();
    let ids: Vec<String> = rows.iter().map(|(j, _)| j.id.clone()).collect();
    let has_thumbnail: Vec<bool> = stream::iter(ids.into_iter().map(move |id| {
        let artifacts = artifacts.clone();
        async move { matches!(artifacts.head(&id, THUMBNAIL).await, Ok(Some(_))) }
    }))
    .buffered(16)
    .collect()
    .await;
    let jobs = rows
        .into_iter()
        .zip(has_thumbnail)
        .map(|((j, _), thumb)| JobSummary {
            thumbnail: thumb.then(|| state.auth.links().url(&j.id, THUMBNAIL, &caller.name, expires)),
            brief: sanitize::printable(j.request.get("content").and_then(|c| c.as_str()).unwrap_or_default())
                .chars()
                .take(80)
                .collect(),
            header: JobHeader::of(&j),
        })
        .collect();
    Ok(axum::Json(JobPage { jobs, next_cursor }))
}

/// Every state name, for filter validation.
pub const STATE_NAMES: [&str; 16] = [
    "init",
    "sanitized",
    "planning",
    "translating",
    "costing",
    "plan_review",
    "voicing",
    "rendering",
    "technical_qa",
    "semantic_qa",
    "supervising",
    "awaiting_review",
    "delivering",
    "delivered",
    "cancelled",
    "failed",
];

/// Cancel a job; 409 when it has already ended.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", params(("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 409, body = ErrorBody)), security(("bearer" = [])), tag = "pipeline")]
pub async fn cancel(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?.to_owned();
    let job = state.store.job(&id)?;
    if job.state.is_terminal() {
        return Err(ApiError::conflict(format!("job {id} has already ended ({})", job.state.name())));
    }
    if state.pool.cancel(&id) {
        // The worker commits the cancellation at its next checkpoint (the renderer checks
        // every frame); wait for it briefly so the answer shows the outcome.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !state.store.job(&id)?.state.is_terminal() {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    } else {
        match state.driver.apply_human(&id, Event::Cancel, &caller.name) {
            Ok(_) => {}
            // A worker claimed the job meanwhile: cancel through it.
            Err(crate::pipeline::driver::DriverError::Store(crate::store::StoreError::Conflict { .. })) => {
                state.pool.cancel(&id);
            }
            Err(e) => return Err(e.into()),
        }
    }
    state.views.invalidate(&id);
    get_job(State(state), UrlPath(id)).await
}

/// Server-sent events: a `snapshot` first, then `state`, `stage_started`, `progress` and
/// `retrying` events until the job ends or waits for a human… and on through review.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", params(("id" = String, Path)),
    responses((status = 200, description = "text/event-stream of JobEvent", body = JobEvent, content_type = "text/event-stream")), security(("bearer" = [])), tag = "pipeline")]
pub async fn events(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Result<Response, ApiError> {
    let id = job_id(&id)?.to_owned();
    let rx = state.hub.subscribe();
    let cached = state.views.get(state.store.as_ref(), &id)?;
    let snapshot = JobEvent {
        job_id: id.clone(),
        kind: "snapshot",
        state: cached.view.header.state.clone(),
        stage: cached.state.stage().map(|s| s.name()),
        stage_fraction: None,
        progress_pct: progress_pct(&cached.state, state.hub.live(&id)),
        detail: None,
    };
    let ended = cached.state.is_terminal();
    let last = cached.view.header.state.clone();
    let first = stream::once(async move { Ok::<_, Infallible>(sse(&snapshot)) });
    let stop = state.shutdown.clone();
    let shared = state.clone();
    let updates = stream::unfold((rx, ended, last), move |(mut rx, ended, mut last)| {
        let id = id.clone();
        let stop = stop.clone();
        let shared = shared.clone();
        async move {
            if ended {
                return None;
            }
            let is_end = |s: &str| matches!(s, "delivered" | "failed" | "cancelled");
            loop {
                let next = tokio::select! {
                    r = rx.recv() => r,
                    _ = stop.wait() => return None,
                    // A worker in another process (a shared PostgreSQL store) drives the job:
                    // its transitions reach this node only through the store.
                    _ = tokio::time::sleep(STORE_POLL) => {
                        let Ok(view) = shared.views.get(shared.store.as_ref(), &id) else { continue };
                        if view.view.header.state == last {
                            continue;
                        }
                        last = view.view.header.state.clone();
                        let e = JobEvent {
                            job_id: id.clone(),
                            kind: "state",
                            state: last.clone(),
                            stage: view.state.stage().map(|s| s.name()),
                            stage_fraction: None,
                            progress_pct: progress_pct(&view.state, None),
                            detail: None,
                        };
                        let done = is_end(&e.state);
                        return Some((Ok::<_, Infallible>(sse(&e)), (rx, done, last)));
                    }
                };
                match next {
                    Ok(e) if e.job_id == id => {
                        let done = e.kind == "state" && is_end(&e.state);
                        if e.kind == "state" {
                            last = e.state.clone();
                        }
                        return Some((Ok::<_, Infallible>(sse(&e)), (rx, done, last)));
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let body: std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>> =
        Box::pin(first.chain(updates));
    Ok(Sse::new(body).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// How often an event stream re-reads its job from the store, for transitions committed by
/// workers in other processes.
const STORE_POLL: Duration = Duration::from_secs(1);

fn sse(e: &JobEvent) -> SseEvent {
    SseEvent::default().event(e.kind).json_data(e).unwrap_or_else(|_| SseEvent::default().data("{}"))
}

/// The rendered video, with HTTP Range support (206, 416). With a key, or through a signed link.
#[utoipa::path(get, path = "/v1/jobs/{id}/video", params(("id" = String, Path),
        ("exp" = Option<i64>, Query, description = "signed link: expiry (Unix seconds), from GET /v1/jobs/{id}/links"),
        ("by" = Option<String>, Query, description = "signed link: the key name it was handed to"),
        ("sig" = Option<String>, Query, description = "signed link: HMAC-SHA256, hex")),
    responses((status = 200, description = "video/mp4"), (status = 206, description = "a byte range"),
        (status = 404, body = ErrorBody), (status = 416, description = "range not satisfiable")),
    security(("bearer" = [])), tag = "pipeline")]
pub async fn video(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    state.store.job(id)?;
    super::files::serve(state.driver.artifacts().clone(), id, "video.mp4", "video", req.method(), req.headers()).await
}

/// Check an artifact name: `video.mp4`, `preview.mp4`, `subtitles.<lang>.vtt` or
/// `keyframes/<file>.png`; nothing that could leave the job's files. Returns the name.
pub fn artifact_name(name: &str) -> Result<&str, ApiError> {
    let bad = || ApiError::not_found(format!("no artifact named '{name}'"));
    crate::artifacts::check_name(name).map_err(|_| bad())?;
    let parts: Vec<&str> = name.split('/').collect();
    let allowed = match parts.as_slice() {
        ["video.mp4"] | ["preview.mp4"] => true,
        [f] => f.starts_with("subtitles.") && f.ends_with(".vtt"),
        ["keyframes", f] => f.ends_with(".png"),
        _ => false,
    };
    if allowed { Ok(name) } else { Err(bad()) }
}

/// A deliverable by name: `keyframes/scene_01.png`, `preview.mp4`, `subtitles.en.vtt`, …
/// With a key, or through a signed link.
#[utoipa::path(get, path = "/v1/jobs/{id}/artifacts/{name}", params(("id" = String, Path), ("name" = String, Path),
        ("exp" = Option<i64>, Query, description = "signed link: expiry (Unix seconds), from GET /v1/jobs/{id}/links"),
        ("by" = Option<String>, Query, description = "signed link: the key name it was handed to"),
        ("sig" = Option<String>, Query, description = "signed link: HMAC-SHA256, hex")),
    responses((status = 200, description = "the file"), (status = 404, body = ErrorBody)), security(("bearer" = [])), tag = "pipeline")]
pub async fn artifact(
    State(state): State<Shared>,
    UrlPath((id, name)): UrlPath<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    state.store.job(id)?;
    let name = artifact_name(&name)?;
    let what = format!("artifact '{name}'");
    super::files::serve(state.driver.artifacts().clone(), id, name, &what, req.method(), req.headers()).await
}

/// JSON helper for handlers that answer with a plain value.
pub fn ok_json(v: serde_json::Value) -> Response {
    axum::Json(v).into_response()
}

/// A small JSON answer `{job_id, state}`.
pub fn state_answer(id: &str, s: &JobState) -> Response {
    ok_json(json!({"job_id": id, "state": s.name(), "phase": s.phase(), "links": links(id)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_progress_is_spliced_into_the_views_json_as_one_object() {
        let view = br#"{"job_id":"a","history":[{"to":"delivered"}]}"#;
        let live = LiveProgress { progress_pct: 42.5, current_stage: Some("rendering"), stage_fraction: None };
        let spliced: serde_json::Value = serde_json::from_slice(&live.spliced_into(view).unwrap()).unwrap();
        assert_eq!(
            spliced,
            json!({"progress_pct": 42.5, "current_stage": "rendering", "stage_fraction": null, "job_id": "a",
                   "history": [{"to": "delivered"}]})
        );
    }

    #[test]
    fn artifact_names_cannot_escape() {
        assert!(artifact_name("keyframes/scene_01.png").is_ok());
        assert!(artifact_name("subtitles.en.vtt").is_ok());
        assert!(artifact_name("preview.mp4").is_ok());
        for bad in [
            "../x",
            "keyframes/../../etc/passwd",
            "/etc/passwd",
            "keyframes/.x.png",
            "aiprod.db",
            "subtitles.en.vtt/..",
            "narration/scene_01.en.wav",
            "keyframes/a b.png",
        ] {
            assert!(artifact_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_have_the_published_shape() {
        // What the stores write: `now()` and a v4 UUID.
        let c = Cursor {
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            id: uuid::Uuid::new_v4().to_string(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&c)).unwrap(), c);
        // Any value of the shape is a position, even one no page ended on.
        let made_up = "0000-00-00T00:00:00.000000Z_00000000-0000-0000-0000-000000000000";
        assert_eq!(decode_cursor(made_up).unwrap().created_at, "0000-00-00T00:00:00.000000Z");
        let (longer, lower, newline) = (format!("{made_up}0"), made_up.replace('Z', "z"), format!("{made_up}\n"));
        for bad in ["zz", "", &made_up[1..], longer.as_str(), lower.as_str(), newline.as_str()] {
            assert!(decode_cursor(bad).is_err(), "{bad:?}");
        }
        assert_eq!(cursor_pattern().matches("[0-9]").count(), CURSOR_SHAPE.matches('d').count());
    }
}
