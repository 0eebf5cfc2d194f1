//! `GET /v1/jobs/{id}/links`: signed, short-lived links ([`super::links`]) to the files a job
//! has now, so the ICC's `<video>`, `<img>`, `<track>` and download links need no API key.

use axum::extract::{Path as UrlPath, State};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Shared;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::files::store_error;
use super::jobs::{artifact_name, job_id};
use super::links::{LinkSigner, expiry_for};
use crate::artifacts::Artifact;

/// One signed file of a job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignedFile {
    /// The artifact name (`video.mp4`, `preview.mp4`, `subtitles.fr.vtt`, `keyframes/scene_01.png`).
    pub name: String,
    /// The URL that fetches it without a key, until `expires_at`.
    pub url: String,
    /// Its size now.
    pub bytes: u64,
}

/// One subtitle track.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignedTrack {
    /// The language code (`en`, `fr`).
    pub lang: String,
    /// The signed URL of its WebVTT file.
    pub url: String,
}

/// Signed links to the files a job has now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobLinks {
    /// When every link here stops working.
    pub expires_at: DateTime<Utc>,
    /// The final video, once rendered.
    pub video: Option<String>,
    /// The low-resolution preview, as soon as the renderer wrote it.
    pub preview: Option<String>,
    /// A poster image for the player: the first scene's keyframe.
    pub poster: Option<String>,
    /// One WebVTT track per subtitle language delivered.
    pub subtitles: Vec<SignedTrack>,
    /// Every servable file, sorted by name.
    pub files: Vec<SignedFile>,
}

/// The servable files among a job's stored files, sorted, with their sizes.
fn servable_files(stored: &[Artifact]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> =
        stored.iter().filter(|a| artifact_name(&a.name).is_ok()).map(|a| (a.name.clone(), a.bytes)).collect();
    out.sort();
    out
}

/// Build the links for a job's stored files at time `now`.
pub fn job_links(signer: &LinkSigner, job: &str, stored: &[Artifact], by: &str, now: i64) -> JobLinks {
    let expires = expiry_for(now);
    let files: Vec<SignedFile> = servable_files(stored)
        .into_iter()
        .map(|(name, bytes)| SignedFile { url: signer.url(job, &name, by, expires), name, bytes })
        .collect();
    let find = |n: &str| files.iter().find(|f| f.name == n).map(|f| f.url.clone());
    let poster = files.iter().find(|f| f.name.starts_with("keyframes/")).map(|f| f.url.clone());
    let subtitles = files
        .iter()
        .filter_map(|f| {
            let lang = f.name.strip_prefix("subtitles.")?.strip_suffix(".vtt")?;
            Some(SignedTrack { lang: lang.to_owned(), url: f.url.clone() })
        })
        .collect();
    JobLinks {
        expires_at: Utc.timestamp_opt(expires, 0).single().unwrap_or_else(Utc::now),
        video: find("video.mp4"),
        preview: find("preview.mp4"),
        poster,
        subtitles,
        files,
    }
}

/// Signed, short-lived links to the job's video, preview, subtitles and keyframes (whichever
/// exist now), for `<video>`, `<img>`, `<track>` and downloads: no API key goes in a URL.
#[utoipa::path(get, path = "/v1/jobs/{id}/links", params(("id" = String, Path)),
    responses((status = 200, body = JobLinks), (status = 404, body = ErrorBody)), security(("bearer" = [])), tag = "pipeline")]
pub async fn links(
    State(state): State<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    UrlPath(id): UrlPath<String>,
) -> Result<axum::Json<JobLinks>, ApiError> {
    let id = job_id(&id)?;
    state.store.job(id)?;
    let stored = state.driver.artifacts().list(id).await.map_err(|e| store_error(e, "file"))?;
    Ok(axum::Json(job_links(state.auth.links(), id, &stored, &caller.name, Utc::now().timestamp())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "0b7c5d0e-8a43-4f7e-9d0a-1f2e3d4c5b6a";

    #[test]
    fn links_cover_the_servable_files_that_exist() {
        let stored: Vec<Artifact> = [
            "subtitles.fr.vtt",
            "preview.mp4",
            "subtitles.en.vtt",
            "keyframes/scene_01.png",
            "narration/scene_01.en.wav",
        ]
        .into_iter()
        .map(|name| Artifact { name: name.into(), bytes: 1, etag: "t".into() })
        .collect();
        let s = LinkSigner::new(b"k".to_vec());
        let l = job_links(&s, JOB, &stored, "viewer", 1_900_000_000);
        let names: Vec<&str> = l.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["keyframes/scene_01.png", "preview.mp4", "subtitles.en.vtt", "subtitles.fr.vtt"]);
        assert!(l.video.is_none(), "no video before the render");
        assert!(l.preview.as_deref().unwrap().starts_with(&format!("/v1/jobs/{JOB}/artifacts/preview.mp4?exp=")));
        assert!(l.poster.as_deref().unwrap().contains("keyframes/scene_01.png"));
        let langs: Vec<&str> = l.subtitles.iter().map(|t| t.lang.as_str()).collect();
        assert_eq!(langs, ["en", "fr"]);
        assert!(l.files.iter().all(|f| !f.url.contains("aip_")), "no key in any link");
    }
}
