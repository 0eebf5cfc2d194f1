//! Serving a job's files from the artifact store (`GET /v1/jobs/{id}/video`, `GET
//! /v1/jobs/{id}/artifacts/{name}`): whichever store holds them — the data directory, a
//! shared directory, S3 — the answer is the same, so an API node needs no local copy.
//!
//! HTTP Range (one range: `bytes=a-b`, `bytes=a-`, `bytes=-n`) answers 206 with
//! `Content-Range`, or 416 with the size; several ranges or a malformed header get the whole
//! file (RFC 9110 lets a server ignore Range). Bodies are read from the store a chunk at a
//! time as the client takes them, so a player that seeks or stops costs only what it read.
//! The range arithmetic ([`byte_range`]) is pure and tested alone.

use std::ops::Range;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use super::error::ApiError;
use crate::artifacts::{ArtifactError, ArtifactStore};

/// Bytes read from the store per request while streaming a body.
const CHUNK: u64 = 4 << 20;

/// What a request's Range header asks of a file of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranged {
    /// No (usable) Range: the whole file, 200.
    Whole,
    /// One satisfiable range, 206.
    Part(Range<u64>),
    /// A range that starts past the end, 416.
    Unsatisfiable,
}

/// Interpret a Range header value against a file of `size` bytes.
pub fn byte_range(header: Option<&str>, size: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Ranged::Whole };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Ranged::Whole };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // `bytes=-n`: the last n bytes.
        (true, false) => match parse(last) {
            Some(0) => Ranged::Unsatisfiable,
            Some(_) if size == 0 => Ranged::Unsatisfiable,
            Some(n) => Ranged::Part(size.saturating_sub(n)..size),
            None => Ranged::Whole,
        },
        // `bytes=a-`: from a to the end.
        (false, true) => match parse(first) {
            Some(a) if a < size => Ranged::Part(a..size),
            Some(_) => Ranged::Unsatisfiable,
            None => Ranged::Whole,
        },
        // `bytes=a-b`: inclusive, b clamped to the end.
        (false, false) => match (parse(first), parse(last)) {
            (Some(a), Some(b)) if a > b => Ranged::Whole,
            (Some(a), Some(_)) if a >= size => Ranged::Unsatisfiable,
            (Some(a), Some(b)) => Ranged::Part(a..b.min(size - 1) + 1),
            _ => Ranged::Whole,
        },
        (true, true) => Ranged::Whole,
    }
}

/// The media type of an artifact, by extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "mp4" => "video/mp4",
        "png" => "image/png",
        "vtt" => "text/vtt; charset=utf-8",
        "json" => "application/json",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}

/// An artifact-store failure as an API answer: a missing file is 404, the rest 500.
pub fn store_error(e: ArtifactError, what: &str) -> ApiError {
    match e {
        ArtifactError::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, "not_ready", format!("no {what} yet")),
        ArtifactError::BadName(name) => ApiError::not_found(format!("no artifact named '{name}'")),
        other => ApiError::internal(other),
    }
}

/// Answer a GET or HEAD of `name` of `job` from `store`: 200 or 206 with the bytes, 304 when
/// `If-None-Match` names the current tag, 416 for a range past the end, 404 (`not_ready`,
/// "no {what} yet") when the file does not exist.
pub async fn serve(
    store: Arc<dyn ArtifactStore>,
    job: &str,
    name: &str,
    what: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let meta = store
        .head(job, name)
        .await
        .map_err(|e| store_error(e, what))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_ready", format!("no {what} yet")))?;
    let etag = format!("\"{}\"", meta.etag);
    let mut common = HeaderMap::new();
    common.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    common.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        common.insert(header::ETAG, v);
    }
    let header_str = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    if header_str(header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let (status, range) = match byte_range(header_str(header::RANGE), meta.bytes) {
        Ranged::Whole => (StatusCode::OK, 0..meta.bytes),
        Ranged::Part(r) => {
            let value = format!("bytes {}-{}/{}", r.start, r.end - 1, meta.bytes);
            common.insert(header::CONTENT_RANGE, HeaderValue::from_str(&value).map_err(ApiError::internal)?);
            (StatusCode::PARTIAL_CONTENT, r)
        }
        Ranged::Unsatisfiable => {
            let mut answer = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the {what} has {} bytes", meta.bytes),
            )
            .into_response();
            let value = format!("bytes */{}", meta.bytes);
            answer
                .headers_mut()
                .insert(header::CONTENT_RANGE, HeaderValue::from_str(&value).map_err(ApiError::internal)?);
            return Ok(answer);
        }
    };
    common.insert(header::CONTENT_LENGTH, HeaderValue::from(range.end - range.start));
    if *method == Method::HEAD {
        return Ok((status, common).into_response());
    }
    let (job, name) = (job.to_owned(), name.to_owned());
    let chunks = stream::try_unfold((store, range.start), move |(store, at)| {
        let (job, name, end) = (job.clone(), name.clone(), range.end);
        async move {
            if at >= end {
                return Ok::<_, ArtifactError>(None);
            }
            let to = (at + CHUNK).min(end);
            let bytes = store.get_range(&job, &name, at..to).await?;
            Ok(Some((bytes, (store, to))))
        }
    });
    Ok((status, common, Body::from_stream(chunks)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let cases: [(Option<&str>, u64, Ranged); 14] = [
            (None, 100, Ranged::Whole),
            (Some("bytes=0-99"), 1000, Ranged::Part(0..100)),
            (Some("bytes=0-99"), 50, Ranged::Part(0..50)),
            (Some("bytes=10-"), 100, Ranged::Part(10..100)),
            (Some("bytes=-10"), 100, Ranged::Part(90..100)),
            (Some("bytes=-500"), 100, Ranged::Part(0..100)),
            (Some("bytes=99-99"), 100, Ranged::Part(99..100)),
            (Some("bytes=100-"), 100, Ranged::Unsatisfiable),
            (Some("bytes=110-200"), 100, Ranged::Unsatisfiable),
            (Some("bytes=-0"), 100, Ranged::Unsatisfiable),
            (Some("bytes=5-1"), 100, Ranged::Whole),
            (Some("bytes=0-1,5-9"), 100, Ranged::Whole),
            (Some("items=0-1"), 100, Ranged::Whole),
            (Some("bytes=x-"), 100, Ranged::Whole),
        ];
        for (header, size, want) in cases {
            assert_eq!(byte_range(header, size), want, "{header:?} of {size}");
        }
    }

    #[test]
    fn media_types_follow_the_extension() {
        assert_eq!(content_type("video.mp4"), "video/mp4");
        assert_eq!(content_type("keyframes/scene_01.png"), "image/png");
        assert!(content_type("subtitles.fr.vtt").starts_with("text/vtt"));
        assert_eq!(content_type("x.bin"), "application/octet-stream");
    }
}
