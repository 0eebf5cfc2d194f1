//! The ICC (interactive control centre) routes: the exposed memory view with ETags, manifest
//! edits during plan review (validated, versioned, authored by the key's name), the review
//! decisions (approve, request changes, reject) and comment threads per memory section.
//!
//! An edit during plan review also re-runs the visual translator on the edited manifest, in
//! the same transaction, so the plan a reviewer approves is exactly the plan rendered. With
//! "request changes" the job goes back to planning, where the planning stage keeps the
//! human-edited manifest and the translating stage uses it.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::Shared;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody, parse_json};
use super::hub::progress_pct;
use super::jobs::{job_id, state_answer};
use crate::memory::{MemoryWrite, Section};
use crate::pipeline::driver::seed_for;
use crate::pipeline::machine::{Event, State as JobState};
use crate::pipeline::stages;
use crate::sanitize::SanitizedInput;
use crate::store::service::Comment;
use crate::store::{MemoryEntry, NewEvent};
use agents::domain::ProductionManifest;

/// Longest caption a reviewer may write.
pub const MAX_CAPTION_CHARS: usize = 120;
/// Most scenes a manifest may have.
pub const MAX_SCENES: usize = 30;
const CAMERAS: [&str; 5] = ["dolly", "pan", "zoom", "static", "orbital"];

fn exposed_view(state: &Shared, id: &str) -> Result<Value, ApiError> {
    let job = state.store.job(id)?;
    let memory = state.store.memory(id)?;
    let history = state.store.history(id)?;
    let mut sections = Map::new();
    for s in Section::EXPOSED {
        let v = match memory.get(&s) {
            Some(e) => json!({"version": e.version, "author": e.author, "written_at": e.written_at,
                              "content": e.content, "metadata": e.metadata}),
            None => Value::Null,
        };
        sections.insert(s.as_str().into(), v);
    }
    // The QA report's weakest scenes and the technical score help the review; read-only.
    let technical = memory
        .get(&Section::TechnicalValidationReport)
        .and_then(|e| crate::memory::decode::<crate::qa_gate::TechnicalReport>(e).ok())
        .map(|r| json!({"technical_score": r.technical_score, "passed": r.passed, "checks": r.checks}));
    let decision = memory.get(&Section::FinalApproval).map(|e| e.content.clone());
    let comments = state.store.comments(id, None)?;
    Ok(json!({
        "job_id": id,
        "state": job.state.name(),
        "phase": job.state.phase(),
        "progress_pct": progress_pct(&job.state, state.hub.live(id)),
        "editable": matches!(job.state, JobState::PlanReview {}),
        "failed": match &job.state { JobState::Failed { stage, error } => json!({"stage": stage, "error": error}), _ => Value::Null },
        "sections": sections,
        "technical_qa": technical,
        "final_approval": decision,
        "comments": comments,
        "history": history,
    }))
}

fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", &hex::encode(Sha256::digest(body))[..32])
}

fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == etag || t == "*"))
}

/// The exposed memory view (production manifest, cost certification, consistency report,
/// delivery manifest, state, progress, history) with an ETag; 304 on a matching
/// If-None-Match.
#[utoipa::path(get, path = "/v1/jobs/{id}/memory", params(("id" = String, Path)),
    responses((status = 200, description = "the exposed view"), (status = 304, description = "unchanged"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])), tag = "icc")]
pub async fn memory(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let body = serde_json::to_vec(&exposed_view(&state, id)?).map_err(ApiError::internal)?;
    let etag = etag_of(&body);
    let tag = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    if matches_etag(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    Ok((
        StatusCode::OK,
        [(header::ETAG, tag), (header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response())
}

/// Changes to the production manifest. Top-level fields replace; `scenes[i]` objects merge
/// into the existing scene `i` (so a caption edit sends only the caption); extra scenes
/// must be complete; a shorter list drops the last scenes.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestPatch {
    /// New title.
    pub title: Option<String>,
    /// New script.
    pub script: Option<String>,
    /// Scenes: `{description?, caption?, duration_s?, camera?, mood?}` each.
    #[schema(value_type = Option<Vec<Object>>)]
    pub scenes: Option<Vec<Map<String, Value>>>,
    /// Consistency markers `{style?, palette?, mood?, lighting?}`.
    #[schema(value_type = Option<Object>)]
    pub markers: Option<Map<String, Value>>,
}

/// Apply a patch to a manifest document and validate the result against the requested
/// duration; returns the new manifest and the changed fields.
pub fn apply_patch(
    current: &Value,
    patch: &ManifestPatch,
    requested_duration_s: f64,
) -> Result<(ProductionManifest, Value, Vec<String>), ApiError> {
    let mut doc = current.clone();
    let obj = doc.as_object_mut().ok_or_else(|| ApiError::internal("stored manifest is not an object"))?;
    if let Some(t) = &patch.title {
        obj.insert("title".into(), Value::String(t.clone()));
    }
    if let Some(s) = &patch.script {
        obj.insert("script".into(), Value::String(s.clone()));
    }
    if let Some(m) = &patch.markers {
        let markers = obj.entry("markers").or_insert_with(|| Value::Object(Map::new()));
        if let Some(target) = markers.as_object_mut() {
            for (k, v) in m {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(scenes) = &patch.scenes {
        if scenes.is_empty() {
            return Err(ApiError::invalid("scenes", "required", "a manifest needs at least one scene"));
        }
        if scenes.len() > MAX_SCENES {
            return Err(ApiError::invalid("scenes", "max_length", format!("at most {MAX_SCENES} scenes")));
        }
        let old = obj.get("scenes").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut merged = Vec::with_capacity(scenes.len());
        for (i, edit) in scenes.iter().enumerate() {
            let mut scene = old.get(i).and_then(Value::as_object).cloned().unwrap_or_default();
            for (k, v) in edit {
                scene.insert(k.clone(), v.clone());
            }
            if let Some(cam) = scene.get("camera")
                && !cam.as_str().is_some_and(|c| CAMERAS.contains(&c))
            {
                return Err(ApiError::invalid(
                    format!("scenes[{i}].camera"),
                    "allowed_values",
                    format!("camera must be one of {}, got {cam}", CAMERAS.join(", ")),
                ));
            }
            merged.push(Value::Object(scene));
        }
        obj.insert("scenes".into(), Value::Array(merged));
    }
    let manifest: ProductionManifest = serde_path_to_error::deserialize(doc.clone()).map_err(|e| {
        let path = e.path().to_string();
        ApiError::invalid(path, "format", e.into_inner().to_string())
    })?;
    validate_manifest(&manifest, requested_duration_s)?;
    let normalised = serde_json::to_value(&manifest).map_err(ApiError::internal)?;
    let mut changed = Vec::new();
    diff(current, &normalised, "", &mut changed);
    Ok((manifest, normalised, changed))
}

/// The rules a reviewed manifest must keep.
pub fn validate_manifest(m: &ProductionManifest, requested_duration_s: f64) -> Result<(), ApiError> {
    if m.scenes.is_empty() {
        return Err(ApiError::invalid("scenes", "required", "a manifest needs at least one scene"));
    }
    for (i, s) in m.scenes.iter().enumerate() {
        if !(s.duration_s > 0.0 && s.duration_s.is_finite()) {
            return Err(ApiError::invalid(
                format!("scenes[{i}].duration_s"),
                "range",
                format!("a scene lasts a positive number of seconds, got {}", s.duration_s),
            ));
        }
        let caption = s.caption.trim();
        if caption.is_empty() {
            return Err(ApiError::invalid(format!("scenes[{i}].caption"), "required", "a caption must not be empty"));
        }
        let n = caption.chars().count();
        if n > MAX_CAPTION_CHARS {
            return Err(ApiError::invalid(
                format!("scenes[{i}].caption"),
                "max_length",
                format!("a caption has at most {MAX_CAPTION_CHARS} characters, got {n}"),
            ));
        }
    }
    let total = m.duration_s();
    let (lo, hi) = (requested_duration_s * 0.9, requested_duration_s * 1.1);
    if !(lo..=hi).contains(&total) {
        return Err(ApiError::invalid(
            "scenes",
            "range",
            format!(
                "scene durations add up to {total:.2} s; they must be within ±10 % of the requested {requested_duration_s} s ({lo:.2}–{hi:.2})"
            ),
        ));
    }
    Ok(())
}

/// The JSON paths where two documents differ (`scenes[1].caption`, `title`).
pub fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => diff(u, v, &p, out),
                    _ => out.push(p),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff(u, v, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(if path.is_empty() { "(root)".into() } else { path.to_owned() }),
        _ => {}
    }
}

async fn edited_writes(
    state: &Shared,
    id: &str,
    patch: &ManifestPatch,
    author: &str,
    retranslate: bool,
) -> Result<(Vec<MemoryWrite>, Vec<String>, i64), ApiError> {
    let current = state
        .store
        .section(id, Section::ProductionManifest)?
        .ok_or_else(|| ApiError::conflict("the job has no production manifest yet"))?;
    let brief_entry =
        state.store.section(id, Section::SanitizedInput)?.ok_or_else(|| ApiError::internal("no sanitized input"))?;
    let brief: SanitizedInput = crate::memory::decode(&brief_entry).map_err(ApiError::internal)?;
    let (manifest, doc, changed) = apply_patch(&current.content, patch, brief.duration_sec as f64)?;
    if changed.is_empty() {
        return Err(ApiError::invalid("(body)", "required", "the edit changes nothing"));
    }
    let mut writes = vec![MemoryWrite {
        section: Section::ProductionManifest,
        content: doc,
        author: author.to_owned(),
        metadata: Some(json!({"changed_fields": changed, "base_version": current.version, "edited_via": "api"})),
    }];
    if retranslate {
        let ctx = agents::AgentContext::with_seed(seed_for(id));
        let out = stages::translation_for(&state.config, &brief, manifest, &ctx)
            .await
            .map_err(|e| ApiError::internal(format!("re-translating the edited manifest: {e}")))?;
        let mut metadata = serde_json::to_value(&out.metadata).map_err(ApiError::internal)?;
        metadata["note"] = Value::String(format!(
            "re-run after {author} edited the production manifest (based on version {})",
            current.version
        ));
        writes.push(MemoryWrite {
            section: Section::PromptBundle,
            content: serde_json::to_value(&out.value).map_err(ApiError::internal)?,
            author: format!("stage:{}", crate::pipeline::machine::Stage::Translate.name()),
            metadata: Some(metadata),
        });
    }
    Ok((writes, changed, current.version))
}

/// Edit the production manifest while the job is in plan review (409 otherwise). The edit
/// is validated and stored as a new version authored by the API key's name.
#[utoipa::path(patch, path = "/v1/jobs/{id}/manifest", params(("id" = String, Path)), request_body = ManifestPatch,
    responses((status = 200, description = "the new version"), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "icc")]
pub async fn patch_manifest(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let job = state.store.job(id)?;
    if !matches!(job.state, JobState::PlanReview {}) {
        return Err(ApiError::conflict(format!(
            "the manifest can be edited only in plan_review; job {id} is in {}",
            job.state.name()
        )));
    }
    let patch: ManifestPatch = parse_json(&body)?;
    let (writes, changed, base) = edited_writes(&state, id, &patch, &caller.name, true).await?;
    let event = NewEvent {
        event: "manifest_edited".into(),
        duration_ms: 0,
        attempt: 0,
        error: None,
        detail: Some(json!({"author": caller.name, "changed_fields": changed, "base_version": base})),
    };
    state.store.write_human_versions(id, &job.state, &writes, &event)?;
    state.hub.changed(id);
    let latest = state.store.section(id, Section::ProductionManifest)?.ok_or_else(|| ApiError::internal("lost"))?;
    Ok(axum::Json(json!({"job_id": id, "version": latest.version, "author": latest.author,
                        "changed_fields": changed, "manifest": latest.content}))
    .into_response())
}

/// One version of the manifest with what changed from the previous one.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManifestVersion {
    /// Version number.
    pub version: i64,
    /// Who wrote it: `stage:planning` or an API key's name.
    pub author: String,
    /// When.
    pub written_at: chrono::DateTime<chrono::Utc>,
    /// Whether a person wrote it.
    pub human: bool,
    /// Fields changed from the previous version (empty for the first).
    pub changed_fields: Vec<String>,
    /// The document.
    #[schema(value_type = Object)]
    pub content: Value,
}

/// Every version of the production manifest, oldest first, with changed fields.
#[utoipa::path(get, path = "/v1/jobs/{id}/manifest/versions", params(("id" = String, Path)),
    responses((status = 200, body = Vec<ManifestVersion>)), security(("bearer" = [])), tag = "icc")]
pub async fn manifest_versions(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
) -> Result<axum::Json<Vec<ManifestVersion>>, ApiError> {
    let id = job_id(&id)?;
    state.store.job(id)?;
    let versions = state.store.section_versions(id, Section::ProductionManifest)?;
    let mut out = Vec::new();
    let mut prev: Option<&MemoryEntry> = None;
    for v in &versions {
        let mut changed = Vec::new();
        if let Some(p) = prev {
            diff(&p.content, &v.content, "", &mut changed);
        }
        out.push(ManifestVersion {
            version: v.version,
            author: v.author.clone(),
            written_at: v.written_at,
            human: stages::is_human_author(&v.author),
            changed_fields: changed,
            content: v.content.clone(),
        });
        prev = Some(v);
    }
    Ok(axum::Json(out))
}

fn decide(state: &Shared, id: &str, event: Event, author: &str) -> Result<Response, ApiError> {
    let new_state = state.driver.apply_human(id, event, author)?;
    state.hub.wake();
    Ok(state_answer(id, &new_state))
}

/// Approve the plan (plan review) or the result (awaiting review); 409 in other states.
#[utoipa::path(post, path = "/v1/jobs/{id}/approve", params(("id" = String, Path)),
    responses((status = 200, description = "the new state"), (status = 409, body = ErrorBody)), security(("bearer" = [])), tag = "icc")]
pub async fn approve(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    decide(&state, id, Event::Approve, &caller.name)
}

/// The body of request-changes: optional manifest edits and a comment.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    /// Edits to apply before re-planning.
    pub edits: Option<ManifestPatch>,
    /// A note for the production manifest's thread.
    pub comment: Option<String>,
}

/// Send the job back to planning, with optional edits (kept by the planning stage).
#[utoipa::path(post, path = "/v1/jobs/{id}/request-changes", params(("id" = String, Path)), request_body = ChangeRequest,
    responses((status = 200, description = "the new state"), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "icc")]
pub async fn request_changes(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let request: ChangeRequest =
        if body.iter().all(u8::is_ascii_whitespace) { ChangeRequest::default() } else { parse_json(&body)? };
    let job = state.store.job(id)?;
    if !job.state.awaits_human() {
        return Err(ApiError::conflict(format!("job {id} is in {}, not waiting for a review", job.state.name())));
    }
    if let Some(edits) = &request.edits {
        let (writes, changed, base) = edited_writes(&state, id, edits, &caller.name, false).await?;
        let event = NewEvent {
            event: "manifest_edited".into(),
            duration_ms: 0,
            attempt: 0,
            error: None,
            detail: Some(json!({"author": caller.name, "changed_fields": changed, "base_version": base})),
        };
        state.store.write_human_versions(id, &job.state, &writes, &event)?;
    }
    if let Some(text) = request.comment.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        state.store.add_comment(id, Section::ProductionManifest, None, &caller.name, text)?;
    }
    decide(&state, id, Event::RequestChanges, &caller.name)
}

/// The body of reject.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Why.
    pub reason: Option<String>,
}

/// Reject the job (it ends failed, naming the review).
#[utoipa::path(post, path = "/v1/jobs/{id}/reject", params(("id" = String, Path)), request_body = RejectRequest,
    responses((status = 200, description = "the new state"), (status = 409, body = ErrorBody)), security(("bearer" = [])), tag = "icc")]
pub async fn reject(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let request: RejectRequest =
        if body.iter().all(u8::is_ascii_whitespace) { RejectRequest::default() } else { parse_json(&body)? };
    let reason = request.reason.filter(|r| !r.trim().is_empty()).unwrap_or_else(|| "rejected by the reviewer".into());
    decide(&state, id, Event::Reject { reason: format!("{reason} ({})", caller.name) }, &caller.name)
}

/// A new comment.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// The text (1–4000 characters).
    pub body: String,
    /// The comment this answers.
    pub parent_id: Option<i64>,
}

fn section(name: &str) -> Result<Section, ApiError> {
    name.parse().map_err(|e: String| ApiError::not_found(e))
}

/// A memory section's comment thread, oldest first (replies carry `parent_id`).
#[utoipa::path(get, path = "/v1/jobs/{id}/memory/{section}/comments", params(("id" = String, Path), ("section" = String, Path)),
    responses((status = 200, description = "comments")), security(("bearer" = [])), tag = "icc")]
pub async fn comments(
    State(state): State<Shared>,
    UrlPath((id, name)): UrlPath<(String, String)>,
) -> Result<axum::Json<Vec<Comment>>, ApiError> {
    let id = job_id(&id)?;
    state.store.job(id)?;
    Ok(axum::Json(state.store.comments(id, Some(section(&name)?))?))
}

/// Add a comment (or a reply) to a memory section's thread.
#[utoipa::path(post, path = "/v1/jobs/{id}/memory/{section}/comments", params(("id" = String, Path), ("section" = String, Path)),
    request_body = NewComment, responses((status = 201, description = "the comment"), (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "icc")]
pub async fn add_comment(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    UrlPath((id, name)): UrlPath<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let section = section(&name)?;
    state.store.job(id)?;
    let c: NewComment = parse_json(&body)?;
    let text = c.body.trim();
    if text.is_empty() || text.chars().count() > 4000 {
        return Err(ApiError::invalid("body", "range", "a comment has 1–4000 characters"));
    }
    let comment = state.store.add_comment(id, section, c.parent_id, &caller.name, text).map_err(|e| match e {
        crate::store::StoreError::NotFound(what) => ApiError::invalid("parent_id", "format", format!("no {what}")),
        other => other.into(),
    })?;
    state.hub.changed(id);
    Ok((StatusCode::CREATED, axum::Json(comment)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Value {
        json!({
            "title": "t", "script": "s", "language": "en", "fast_track": false,
            "markers": {"style": "minimal", "palette": ["#112233", "#445566", "#778899"], "mood": "calm", "lighting": "warm"},
            "scenes": [
                {"description": "a", "caption": "one", "narration": "a", "duration_s": 5.0, "camera": "pan", "mood": "calm"},
                {"description": "b", "caption": "two", "narration": "b", "duration_s": 5.0, "camera": "zoom", "mood": "calm"}
            ]
        })
    }

    fn patch(v: Value) -> ManifestPatch {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_caption_edit_merges_and_names_the_field() {
        let (m, _, changed) =
            apply_patch(&manifest(), &patch(json!({"scenes": [{}, {"caption": "deux"}]})), 10.0).unwrap();
        assert_eq!(m.scenes[1].caption, "deux");
        assert_eq!(changed, ["scenes[1].caption"]);
    }

    #[test]
    fn invalid_edits_name_field_and_rule() {
        let cases = [
            (json!({"scenes": []}), "scenes", "required"),
            (json!({"scenes": [{}, {"caption": "  "}]}), "scenes[1].caption", "required"),
            (json!({"scenes": [{}, {"caption": "x".repeat(121)}]}), "scenes[1].caption", "max_length"),
            (json!({"scenes": [{"camera": "crane"}, {}]}), "scenes[0].camera", "allowed_values"),
            (json!({"scenes": [{"duration_s": -1.0}, {}]}), "scenes[0].duration_s", "range"),
            (json!({"scenes": [{"duration_s": 9.0}, {}]}), "scenes", "range"),
        ];
        for (p, field, rule) in cases {
            let e = apply_patch(&manifest(), &patch(p.clone()), 10.0).unwrap_err();
            assert_eq!((e.field.as_deref(), e.rule), (Some(field), Some(rule)), "{p}");
        }
        // Within ±10 %: 5.5 + 5 = 10.5 s for 10 s requested.
        assert!(apply_patch(&manifest(), &patch(json!({"scenes": [{"duration_s": 5.5}, {}]})), 10.0).is_ok());
    }

    #[test]
    fn etags_follow_if_none_match_lists() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"a\", W/\"b\""));
        assert!(matches_etag(&h, "\"b\""));
        assert!(!matches_etag(&h, "\"c\""));
    }
}
