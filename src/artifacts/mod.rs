//! Where a job's finished files live, so that every API node can serve them: behind one
//! [`ArtifactStore`] trait, a directory ([`fs::FsArtifacts`]: the data directory itself, or a
//! shared one such as NFS or EFS) or S3-compatible object storage ([`s3::S3Artifacts`]).
//!
//! Rendering always happens in a local **working directory** (`<data dir>/jobs/<id>/`):
//! ffmpeg, the voice and the QA read and write local files. What the store adds is
//! *publication*: after a stage succeeds and before its step is committed, the driver uploads
//! the files the stage finished ([`sync::publish`]), so the step that records them in memory
//! (the delivery manifest names [`ArtifactStore::location`]) is only ever committed once they
//! are where every node can read them — upload, then record. Before a stage runs, the driver
//! brings the working directory up to date from the store ([`sync::restore`]), so a job can
//! move between workers on different machines. The API reads through the trait (byte ranges
//! for the video), so an API node needs no local copy of anything.
//!
//! With the default store the working directory *is* the artifact directory: publishing and
//! restoring are no-ops and files are served where they were rendered.
//!
//! Module map:
//! - this file: the trait, artifact names, the `--artifacts` location and opening it.
//! - [`fs`]: the directory store (atomic copy-then-rename into a shared directory).
//! - [`s3`]: the object-storage store (`object_store`'s S3 client, AWS environment variables).
//! - [`sync`]: the working directory ↔ store: what to upload and what to download (pure
//!   plans, tested alone) and the IO that carries them out.
//! - [`moto`]: a local S3-compatible server for tests (moto's standalone server).

pub mod fs;
pub mod moto;
pub mod s3;
#[cfg(test)]
mod suite;
pub mod sync;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;

/// One stored file of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Its name inside the job: `video.mp4`, `keyframes/scene_01.png`, `narration/…wav`.
    pub name: String,
    /// Its size, which the API needs to answer byte ranges.
    pub bytes: u64,
    /// A tag that changes whenever the stored content does (the object's ETag; size and
    /// modification time for a file): how a worker tells that its working copy is stale.
    pub etag: String,
}

/// Why an artifact operation failed. Every variant names the job and file (or the
/// location) it was about.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// No such file for this job.
    #[error("artifact '{name}' of job {job} not found")]
    NotFound {
        /// The job.
        job: String,
        /// The file asked for.
        name: String,
    },
    /// A name that is not a plain relative path inside the job (`..`, absolute, hidden).
    #[error("'{0}' is not an artifact name (a relative path without '..' or hidden parts)")]
    BadName(String),
    /// A byte range outside the file.
    #[error("bytes {start}..{end} of '{name}' are outside its {size} bytes")]
    BadRange {
        /// The file.
        name: String,
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// The file's size.
        size: u64,
    },
    /// A local file or directory operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The object store answered with an error (network, credentials, missing bucket).
    #[error("{context}: {source}")]
    Remote {
        /// What was being done, with the object's URL.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The configured location cannot be used (`--artifacts`, `AIPROD_ARTIFACTS`,
    /// `storage.artifacts`).
    #[error("artifact location '{location}': {why}")]
    Location {
        /// The location as configured.
        location: String,
        /// What is wrong with it.
        why: String,
    },
}

impl ArtifactError {
    /// An IO error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }
}

/// Where a job's finished files live. Names are relative paths inside the job, with `/`
/// separators ([`check_name`]); every method is about one job's files.
///
/// Writers put whole files, each atomically: a reader sees the previous content or the new
/// one, never a part. Readers may be other processes on other machines.
pub trait ArtifactStore: Send + Sync + 'static {
    /// Where this store keeps `job`'s files, as a person or another tool would find them:
    /// a directory path, or `s3://bucket/prefix/<job>/`. The delivery manifest records it.
    fn location(&self, job: &str) -> String;

    /// True when the store's directory for a job *is* the job's working directory (the
    /// default): the renderer's own files are the stored ones, so nothing is uploaded or
    /// restored, and a stage's `.partial` files become final only after its step commits.
    fn is_working_dir(&self) -> bool;

    /// Store the local file `local` as `name` of `job`, replacing any previous content
    /// atomically.
    fn put_file<'a>(
        &'a self,
        job: &'a str,
        name: &'a str,
        local: &'a Path,
    ) -> BoxFuture<'a, Result<Artifact, ArtifactError>>;

    /// Store `bytes` as `name` of `job` (small files: reports, tests).
    fn put_bytes<'a>(
        &'a self,
        job: &'a str,
        name: &'a str,
        bytes: Bytes,
    ) -> BoxFuture<'a, Result<Artifact, ArtifactError>>;

    /// The file's size and tag, or `None` when `job` has no file `name`.
    fn head<'a>(&'a self, job: &'a str, name: &'a str) -> BoxFuture<'a, Result<Option<Artifact>, ArtifactError>>;

    /// Bytes `range` of the file (the API's HTTP Range answers, and chunked reads of large
    /// files). A range past the end is [`ArtifactError::BadRange`].
    fn get_range<'a>(
        &'a self,
        job: &'a str,
        name: &'a str,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<Bytes, ArtifactError>>;

    /// Every file of `job`, sorted by name; empty when it has none. Hidden names (a part
    /// starting with `.`, such as in-progress copies) are not listed.
    fn list<'a>(&'a self, job: &'a str) -> BoxFuture<'a, Result<Vec<Artifact>, ArtifactError>>;

    /// Delete every file of `job` (scratch jobs); nothing to delete is not an error.
    fn remove_job<'a>(&'a self, job: &'a str) -> BoxFuture<'a, Result<(), ArtifactError>>;
}

/// The whole of a (small) file: keyframes, subtitles, reports.
pub async fn get(store: &dyn ArtifactStore, job: &str, name: &str) -> Result<Bytes, ArtifactError> {
    let meta = store.head(job, name).await?.ok_or_else(|| not_found(job, name))?;
    if meta.bytes == 0 {
        return Ok(Bytes::new());
    }
    store.get_range(job, name, 0..meta.bytes).await
}

/// [`ArtifactError::NotFound`] for `name` of `job`.
pub fn not_found(job: &str, name: &str) -> ArtifactError {
    ArtifactError::NotFound { job: job.to_owned(), name: name.to_owned() }
}

/// Check an artifact name: one or more `/`-separated parts, each non-empty, not starting
/// with `.` (hidden files, `..`), made of letters, digits, `_`, `-` and `.`. A name that
/// passes cannot leave the job's directory or prefix on any store.
pub fn check_name(name: &str) -> Result<(), ArtifactError> {
    let part_ok = |p: &str| {
        !p.is_empty() && !p.starts_with('.') && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    if name.split('/').all(part_ok) { Ok(()) } else { Err(ArtifactError::BadName(name.to_owned())) }
}

/// Check a job id as a store key: the ids the driver makes are UUIDs; anything with a path
/// separator or a leading dot is refused so it cannot name another directory.
fn check_job(job: &str) -> Result<(), ArtifactError> {
    if check_name(job).is_ok() && !job.contains('/') { Ok(()) } else { Err(ArtifactError::BadName(job.to_owned())) }
}

/// Where artifacts go, as configured: parsed from `--artifacts`, `AIPROD_ARTIFACTS` or
/// `storage.artifacts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactsUrl {
    /// A directory (a path, or `file:///path`): `<dir>/<job>/<name>`.
    Dir(PathBuf),
    /// S3-compatible object storage: `s3://bucket/prefix` → `prefix/<job>/<name>`.
    S3 {
        /// The bucket.
        bucket: String,
        /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
        prefix: String,
    },
}

impl std::str::FromStr for ArtifactsUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty artifact location".into());
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err("s3:// needs a bucket: s3://bucket/prefix".into());
            }
            let prefix = prefix.trim_matches('/');
            if !prefix.is_empty() && check_name(prefix).is_err() {
                return Err(format!("the key prefix '{prefix}' has empty, hidden or unusual parts"));
            }
            return Ok(Self::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() });
        }
        if let Some(path) = s.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err("file:// needs an absolute path: file:///srv/artifacts".into());
            }
            return Ok(Self::Dir(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(format!("unknown artifact scheme '{scheme}://' (expected a directory, file:// or s3://)"));
        }
        Ok(Self::Dir(PathBuf::from(s)))
    }
}

/// The working directory of `job` under a data directory: where stages read and write.
pub fn working_dir(data_dir: &Path, job: &str) -> PathBuf {
    data_dir.join("jobs").join(job)
}

/// The store the storage settings name: `storage.artifacts` when set (a directory other
/// than `<dataDir>/jobs` is a shared directory files are copied into; `s3://…` object
/// storage with credentials and endpoint from the AWS environment variables), else the
/// working directories under `<dataDir>/jobs` themselves.
pub fn open_configured(storage: &crate::config::Storage) -> Result<Arc<dyn ArtifactStore>, ArtifactError> {
    let jobs = storage.data_dir.join("jobs");
    let Some(configured) = &storage.artifacts else {
        return Ok(Arc::new(fs::FsArtifacts::working(jobs)));
    };
    let url: ArtifactsUrl =
        configured.parse().map_err(|why| ArtifactError::Location { location: configured.clone(), why })?;
    Ok(match url {
        ArtifactsUrl::Dir(dir) if same_dir(&dir, &jobs) => Arc::new(fs::FsArtifacts::working(jobs)),
        ArtifactsUrl::Dir(dir) => Arc::new(fs::FsArtifacts::shared(dir)),
        ArtifactsUrl::S3 { bucket, prefix } => Arc::new(s3::S3Artifacts::from_env(&bucket, &prefix)?),
    })
}

/// Whether two paths name the same directory (through symlinks and `..` when both exist).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_locations_parse_or_are_refused_with_the_reason() {
        assert_eq!("/srv/a".parse(), Ok(ArtifactsUrl::Dir("/srv/a".into())));
        assert_eq!("shared/out".parse(), Ok(ArtifactsUrl::Dir("shared/out".into())));
        assert_eq!("file:///srv/a".parse(), Ok(ArtifactsUrl::Dir("/srv/a".into())));
        assert_eq!(
            "s3://media/aiprod/prod/".parse(),
            Ok(ArtifactsUrl::S3 { bucket: "media".into(), prefix: "aiprod/prod".into() })
        );
        assert_eq!("s3://media".parse(), Ok(ArtifactsUrl::S3 { bucket: "media".into(), prefix: String::new() }));
        assert!("s3:///x".parse::<ArtifactsUrl>().unwrap_err().contains("bucket"));
        assert!("s3://b/../x".parse::<ArtifactsUrl>().is_err());
        assert!("gs://b/x".parse::<ArtifactsUrl>().unwrap_err().contains("gs://"));
        assert!("file://relative".parse::<ArtifactsUrl>().is_err());
        assert!(" ".parse::<ArtifactsUrl>().is_err());
    }

    #[test]
    fn names_stay_inside_the_job() {
        for ok in ["video.mp4", "keyframes/scene_01.png", "narration/scene_01.en.wav", "subtitles.pt-BR.vtt"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../b", "a//b", ".video.mp4.partial", "k/.x", "a b", "a\\b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_job("0b7c5d0e-8a43-4f7e-9d0a-1f2e3d4c5b6a").is_ok());
        assert!(check_job("a/b").is_err());
    }

    #[test]
    fn the_default_and_the_data_dirs_own_jobs_directory_are_the_working_directories() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = crate::config::Config::builtin().storage;
        storage.data_dir = dir.path().to_path_buf();
        assert!(open_configured(&storage).unwrap().is_working_dir());
        std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
        storage.artifacts = Some(format!("{}/./jobs", dir.path().display()));
        assert!(open_configured(&storage).unwrap().is_working_dir());
        storage.artifacts = Some(dir.path().join("shared").display().to_string());
        let shared = open_configured(&storage).unwrap();
        assert!(!shared.is_working_dir());
        assert_eq!(shared.location("j1"), dir.path().join("shared/j1").display().to_string());
        storage.artifacts = Some("ftp://x".into());
        let err = open_configured(&storage).err().unwrap().to_string();
        assert!(err.contains("ftp://x") && err.contains("unknown artifact scheme"), "{err}");
    }
}
