//! Signed media links: how `<video>`, `<img>`, `<track>` and download links reach a job's
//! files without an API key in any URL. This module is the link format (signing and
//! checking, no IO); [`super::media`] hands the links out and [`super::auth`] accepts them.
//!
//! An authenticated caller asks `GET /v1/jobs/{id}/links` and gets, for each file of the job
//! that exists now, a URL such as `/v1/jobs/{id}/artifacts/preview.mp4?exp=…&by=…&sig=…`.
//! `sig` is HMAC-SHA256 over the job id, the file name, the expiry (Unix seconds) and the name
//! of the key that asked, with a secret only the server knows: a link opens one file of one
//! job, read-only, until it expires, and counts against the asking key's rate limit. Changing
//! any part of it (another job, another file, a later expiry) breaks the signature.
//!
//! The secret is `AIPROD_LINK_KEY` when set (several servers behind one address share it),
//! else 32 random bytes drawn when the server starts (a restart ends every link).

use axum::http::Method;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The environment variable that sets the link-signing secret.
pub const KEY_ENV: &str = "AIPROD_LINK_KEY";
/// How long a link lives at least, in seconds.
pub const LINK_TTL_SEC: i64 = 3600;
/// Expiries are rounded up to this step, so links handed out within it are the same URL and
/// a page that refreshes its links does not reload a playing video.
const EXPIRY_STEP_SEC: i64 = 300;

/// Why a signed link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Its expiry has passed.
    Expired,
    /// The signature does not match the job, file, expiry and key name (tampered or forged).
    BadSignature,
    /// `exp`, `by` or `sig` is missing or does not parse.
    Malformed,
}

/// Signs and checks media links with one secret.
pub struct LinkSigner {
    key: Vec<u8>,
}

impl LinkSigner {
    /// A signer with this secret (tests, or a caller with its own key management).
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    /// `AIPROD_LINK_KEY` when set, else a random secret for this process.
    pub fn from_env_or_random() -> Self {
        if let Ok(k) = std::env::var(KEY_ENV)
            && !k.is_empty()
        {
            return Self::new(k.into_bytes());
        }
        let mut key = vec![0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No system randomness: fall back to two v4 UUIDs (themselves random where the
            // platform has any source at all).
            key = [uuid::Uuid::new_v4().into_bytes(), uuid::Uuid::new_v4().into_bytes()].concat();
        }
        Self::new(key)
    }

    fn mac(&self, job: &str, file: &str, by: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        // Newline-separated: none of the parts can contain one (UUID, artifact name, key name,
        // integer), so no two different tuples give the same message.
        mac.update(format!("aiprod-link-v1\n{job}\n{file}\n{by}\n{expires}").as_bytes());
        mac
    }

    /// The hex signature of a link.
    pub fn sign(&self, job: &str, file: &str, by: &str, expires: i64) -> String {
        hex::encode(self.mac(job, file, by, expires).finalize().into_bytes())
    }

    /// Check a link's parts at time `now` (Unix seconds).
    pub fn verify(&self, job: &str, file: &str, by: &str, expires: i64, sig: &str, now: i64) -> Result<(), LinkError> {
        let sig = hex::decode(sig).map_err(|_| LinkError::BadSignature)?;
        self.mac(job, file, by, expires).verify_slice(&sig).map_err(|_| LinkError::BadSignature)?;
        if now >= expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }

    /// The signed URL path of `file` of `job` for the key named `by`, valid until `expires`.
    pub fn url(&self, job: &str, file: &str, by: &str, expires: i64) -> String {
        let base = if file == "video.mp4" {
            format!("/v1/jobs/{job}/video")
        } else {
            format!("/v1/jobs/{job}/artifacts/{file}")
        };
        format!("{base}?exp={expires}&by={by}&sig={}", self.sign(job, file, by, expires))
    }
}

/// The expiry of links handed out at `now`: at least [`LINK_TTL_SEC`] away, rounded up.
pub fn expiry_for(now: i64) -> i64 {
    let at = now + LINK_TTL_SEC;
    (at + EXPIRY_STEP_SEC - 1).div_euclid(EXPIRY_STEP_SEC) * EXPIRY_STEP_SEC
}

/// The job id and file a media route names (with or without the `/v1` prefix, which the
/// nested router strips): `/v1/jobs/{id}/video` is `video.mp4`,
/// `/v1/jobs/{id}/artifacts/{name}` is `name` as sent (undecoded: a link is signed over the
/// plain name, so an encoded variant does not match).
fn media_target(path: &str) -> Option<(&str, &str)> {
    // Inside the `/v1` router the prefix is already stripped; outside it is not.
    let rest = path.strip_prefix("/v1").unwrap_or(path).strip_prefix("/jobs/")?;
    let (job, tail) = rest.split_once('/')?;
    if tail == "video" {
        return Some((job, "video.mp4"));
    }
    let name = tail.strip_prefix("artifacts/")?;
    (!name.is_empty()).then_some((job, name))
}

/// Who a request without an `Authorization` header acts as, when it carries a signed link:
/// `None` when it carries none (or is not a GET/HEAD of a media route), else the link's
/// verdict: the name of the key it was handed to (the request then reads, read-only, under
/// that name).
pub fn link_caller(
    signer: &LinkSigner,
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Option<Result<String, LinkError>> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return None;
    }
    let (job, file) = media_target(path)?;
    let query = query?;
    let (mut exp, mut by, mut sig) = (None, None, None);
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some(("exp", v)) => exp = Some(v),
            Some(("by", v)) => by = Some(v),
            Some(("sig", v)) => sig = Some(v),
            _ => {}
        }
    }
    if exp.is_none() && by.is_none() && sig.is_none() {
        return None;
    }
    let (Some(exp), Some(by), Some(sig)) = (exp.and_then(|e| e.parse::<i64>().ok()), by, sig) else {
        return Some(Err(LinkError::Malformed));
    };
    let now = Utc::now().timestamp();
    Some(signer.verify(job, file, by, exp, sig, now).map(|()| by.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "0b7c5d0e-8a43-4f7e-9d0a-1f2e3d4c5b6a";
    const OTHER: &str = "5f1e2d3c-4b5a-4978-8a6b-7c8d9e0f1a2b";

    fn query_of(url: &str) -> (&str, &str) {
        url.split_once('?').unwrap()
    }

    #[test]
    fn a_link_opens_its_file_until_it_expires_and_nothing_else() {
        let s = LinkSigner::new(b"test secret".to_vec());
        let now = 1_900_000_000;
        let exp = expiry_for(now);
        assert!(exp >= now + LINK_TTL_SEC && exp < now + LINK_TTL_SEC + EXPIRY_STEP_SEC);
        assert_eq!(expiry_for(now + 1), exp, "links within one step are the same URL");
        let sig = s.sign(JOB, "preview.mp4", "editor", exp);
        assert_eq!(s.verify(JOB, "preview.mp4", "editor", exp, &sig, now), Ok(()));
        assert_eq!(s.verify(JOB, "preview.mp4", "editor", exp, &sig, exp), Err(LinkError::Expired));
        assert_eq!(s.verify(OTHER, "preview.mp4", "editor", exp, &sig, now), Err(LinkError::BadSignature), "wrong job");
        assert_eq!(s.verify(JOB, "video.mp4", "editor", exp, &sig, now), Err(LinkError::BadSignature), "wrong file");
        assert_eq!(s.verify(JOB, "preview.mp4", "admin", exp, &sig, now), Err(LinkError::BadSignature), "other key");
        assert_eq!(
            s.verify(JOB, "preview.mp4", "editor", exp + 3600, &sig, now),
            Err(LinkError::BadSignature),
            "a later expiry"
        );
        let mut tampered = sig.clone().into_bytes();
        tampered[10] = if tampered[10] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(s.verify(JOB, "preview.mp4", "editor", exp, &tampered, now), Err(LinkError::BadSignature));
        assert_eq!(s.verify(JOB, "preview.mp4", "editor", exp, "zz", now), Err(LinkError::BadSignature));
        let other_server = LinkSigner::new(b"another secret".to_vec());
        assert_eq!(other_server.verify(JOB, "preview.mp4", "editor", exp, &sig, now), Err(LinkError::BadSignature));
    }

    #[test]
    fn requests_carrying_links_are_read_only_callers_of_the_signing_key() {
        let s = LinkSigner::new(b"k".to_vec());
        let exp = Utc::now().timestamp() + 600;
        let video = s.url(JOB, "video.mp4", "editor", exp);
        let (path, q) = query_of(&video);
        assert_eq!(path, format!("/v1/jobs/{JOB}/video"));
        assert_eq!(link_caller(&s, &Method::GET, path, Some(q)).unwrap().unwrap(), "editor");
        assert!(link_caller(&s, &Method::HEAD, path, Some(q)).unwrap().is_ok());
        let nested = path.strip_prefix("/v1").unwrap();
        assert_eq!(
            link_caller(&s, &Method::GET, nested, Some(q)).unwrap().unwrap(),
            "editor",
            "as the /v1 router sees it"
        );
        assert!(link_caller(&s, &Method::POST, path, Some(q)).is_none(), "links never authorise writes");

        let vtt = s.url(JOB, "subtitles.fr.vtt", "editor", exp);
        let (vtt_path, vtt_q) = query_of(&vtt);
        assert_eq!(vtt_path, format!("/v1/jobs/{JOB}/artifacts/subtitles.fr.vtt"));
        assert!(link_caller(&s, &Method::GET, vtt_path, Some(vtt_q)).unwrap().is_ok());
        // The video's signature does not open the subtitles, another job, or the events.
        let swapped = format!("/v1/jobs/{JOB}/artifacts/subtitles.fr.vtt");
        assert_eq!(link_caller(&s, &Method::GET, &swapped, Some(q)).unwrap().unwrap_err(), LinkError::BadSignature);
        let other = format!("/v1/jobs/{OTHER}/video");
        assert_eq!(link_caller(&s, &Method::GET, &other, Some(q)).unwrap().unwrap_err(), LinkError::BadSignature);
        assert!(link_caller(&s, &Method::GET, &format!("/v1/jobs/{JOB}/events"), Some(q)).is_none());
        assert!(link_caller(&s, &Method::GET, &format!("/v1/jobs/{JOB}/memory"), Some(q)).is_none());

        let expired = s.url(JOB, "video.mp4", "editor", Utc::now().timestamp() - 1);
        let (p, q) = query_of(&expired);
        assert_eq!(link_caller(&s, &Method::GET, p, Some(q)).unwrap().unwrap_err(), LinkError::Expired);
        assert_eq!(
            link_caller(&s, &Method::GET, path, Some("exp=1&sig=00")).unwrap().unwrap_err(),
            LinkError::Malformed
        );
        assert!(link_caller(&s, &Method::GET, path, Some("access_token=aip_x")).is_none(), "not a link at all");
        assert!(link_caller(&s, &Method::GET, path, None).is_none());
    }
}
