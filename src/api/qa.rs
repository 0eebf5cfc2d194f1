//! QA any file against a job's plan: `POST /v1/qa/technical` and `POST /v1/qa/semantic`.
//!
//! The body is the MP4 to inspect — a deliverable someone re-edited by hand, a re-encode —
//! or empty to inspect the job's own `video.mp4`; `job_id` names the job whose plan,
//! narration and caption boxes the file is judged against (what `aiprod qa FILE --job ID`
//! does on the command line). An upload is written to a private file under the data
//! directory, inspected off the async runtime and removed.

use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Shared;
use super::error::{ApiError, ErrorBody};
use super::jobs::job_id;
use crate::app::qa::{QaOutcome, QaSubject, qa_file};
use crate::config::Config;
use crate::qa_gate::{self, Expectations, TechnicalReport};

/// The largest file the QA endpoints accept: a 5-minute 1080p video at a high bitrate.
pub const MAX_UPLOAD_BYTES: usize = 512 * 1024 * 1024;

/// Which job's plan the file is judged against.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QaQuery {
    /// The job (its id, a UUID).
    pub job_id: String,
}

/// The whole verdict on a file.
#[derive(Debug, Serialize, ToSchema)]
pub struct QaAnswer {
    /// Whether the supervisor would approve the file (technical gate, semantic QA and its
    /// perception checks, cost).
    pub approved: bool,
    /// Why the semantic QA could not run on the file (it does not decode), when it could not.
    pub reason: Option<String>,
    /// The technical gate, the semantic report and the supervisor's decision, with every
    /// measured value (absent when the semantic QA could not run).
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<QaOutcome>,
    /// The technical gate's report alone, when the semantic QA could not run.
    #[schema(value_type = Option<Object>)]
    pub technical: Option<TechnicalReport>,
}

/// A file to inspect: the upload (removed when dropped) or the job's own video.
struct Subject {
    path: PathBuf,
    uploaded: bool,
}

impl Drop for Subject {
    fn drop(&mut self) {
        if self.uploaded {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The file the request asks about: the body written to a private file, or the job's video.
fn subject_file(state: &Shared, id: &str, body: &Bytes) -> Result<Subject, ApiError> {
    if body.is_empty() {
        let path = state.data_dir.join("jobs").join(id).join("video.mp4");
        if !path.is_file() {
            return Err(ApiError::conflict(format!(
                "job {id} has no rendered video.mp4 yet: send the file to inspect as the request body"
            )));
        }
        return Ok(Subject { path, uploaded: false });
    }
    let dir = state.data_dir.join("qa-uploads");
    std::fs::create_dir_all(&dir).map_err(|e| ApiError::internal(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(format!("{}.mp4", uuid::Uuid::new_v4()));
    std::fs::write(&path, body).map_err(|e| ApiError::internal(format!("cannot write the upload: {e}")))?;
    Ok(Subject { path, uploaded: true })
}

/// The job's plan as rendered, read from its memory (404 for no such job, 409 before it
/// has a plan).
fn job_subject(state: &Shared, id: &str) -> Result<QaSubject, ApiError> {
    state.store.job(id)?;
    QaSubject::from_job(state.store.as_ref(), id, &state.config)
        .map_err(|why| ApiError::conflict(format!("job {id} cannot be used to judge a file yet: {why}")))
}

/// What both endpoints start from: the job's plan and the file to judge. A job another node
/// rendered has its files (the video, the narration clips the presence checks compare with)
/// fetched from the artifact store first.
async fn request(
    state: &Shared,
    query: Result<Query<QaQuery>, axum::extract::rejection::QueryRejection>,
    body: &Bytes,
) -> Result<(QaSubject, Subject), ApiError> {
    let Query(q) = query.map_err(super::error::query_rejection)?;
    let id = job_id(&q.job_id)?.to_owned();
    state.store.job(&id)?;
    state
        .driver
        .restore_working_copy(&id)
        .await
        .map_err(|e| ApiError::internal(format!("job {id}'s files cannot be fetched from the artifact store: {e}")))?;
    let subject = job_subject(state, &id)?;
    let file = subject_file(state, &id, body)?;
    Ok((subject, file))
}

/// The technical gate on `file` against the plan's expectations.
fn inspect(file: &Path, subject: &QaSubject, config: &Config) -> TechnicalReport {
    let expect = Expectations::from_plan(&subject.plan);
    qa_gate::inspect(file, &expect, &config.technical_qa, config.quality_gates.technical)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("QA task failed: {e}")))
}

/// Run the technical QA gate (every frame decoded, ten checks) on a file against a job's plan.
#[utoipa::path(post, path = "/v1/qa/technical", params(QaQuery),
    request_body(content = Vec<u8>, content_type = "video/mp4", description = "the MP4 to inspect; empty: the job's own video.mp4"),
    responses((status = 200, description = "the technical report", body = Object),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "qa")]
pub async fn technical(
    State(state): State<Shared>,
    query: Result<Query<QaQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Result<axum::Json<TechnicalReport>, ApiError> {
    let (subject, file) = request(&state, query, &body).await?;
    let config = state.config.clone();
    let report = blocking(move || inspect(&file.path, &subject, &config)).await?;
    Ok(axum::Json(report))
}

/// Run the technical gate, the semantic QA (captions read back, narration found and heard,
/// the mix measured, pictures checked) and the supervisor on a file against a job's plan.
#[utoipa::path(post, path = "/v1/qa/semantic", params(QaQuery),
    request_body(content = Vec<u8>, content_type = "video/mp4", description = "the MP4 to inspect; empty: the job's own video.mp4"),
    responses((status = 200, body = QaAnswer),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "qa")]
pub async fn semantic(
    State(state): State<Shared>,
    query: Result<Query<QaQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Result<axum::Json<QaAnswer>, ApiError> {
    let (subject, file) = request(&state, query, &body).await?;
    let config = state.config.clone();
    let shown = if body.is_empty() { "video.mp4" } else { "upload.mp4" };
    let answer = blocking(move || {
        let answer = match qa_file(&file.path, &subject, &config) {
            Ok(mut outcome) => {
                // The server's own paths are not the caller's business.
                outcome.file = PathBuf::from(shown);
                QaAnswer { approved: outcome.approved(), reason: None, outcome: Some(outcome), technical: None }
            }
            // A file the semantic QA cannot decode is a rejected file, with the gate's reasons.
            Err(why) => QaAnswer {
                approved: false,
                reason: Some(why),
                outcome: None,
                technical: Some(inspect(&file.path, &subject, &config)),
            },
        };
        drop(file);
        answer
    })
    .await?;
    Ok(axum::Json(answer))
}
