//! The directory store: `<root>/<job>/<name>`. Either the data directory's own `jobs/`
//! (the working directories themselves, [`FsArtifacts::working`]) or a directory every node
//! mounts (NFS, EFS) that finished files are copied into ([`FsArtifacts::shared`]).
//!
//! A copy lands under a hidden temporary name in the target directory and is renamed into
//! place, so readers on any node see the old file or the new one, never half of one.
//! Blocking filesystem calls run on tokio's blocking pool.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::{Artifact, ArtifactError, ArtifactStore, check_job, check_name, not_found};

/// Job files in a directory tree.
#[derive(Debug, Clone)]
pub struct FsArtifacts {
    /// `<root>/<job>/` holds a job's files.
    root: PathBuf,
    /// The root is the data directory's `jobs/`: the renderer writes the stored files
    /// itself, so putting a job's own working file is a no-op.
    working: bool,
}

impl FsArtifacts {
    /// The working directories under `root` (`<dataDir>/jobs`) are the stored files: the
    /// one-machine default, and what every node sees when the data directory is shared.
    pub fn working(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), working: true }
    }

    /// A separate directory (typically shared by every node) that finished files are copied
    /// into; workers render in their own local working directories.
    pub fn shared(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), working: false }
    }

    /// The directory holding `job`'s files.
    pub fn job_dir(&self, job: &str) -> PathBuf {
        self.root.join(job)
    }

    fn path(&self, job: &str, name: &str) -> Result<PathBuf, ArtifactError> {
        check_job(job)?;
        check_name(name)?;
        Ok(self.root.join(job).join(name))
    }
}

/// A file's tag: its size and modification time, which change whenever it is rewritten.
fn etag_of(meta: &std::fs::Metadata) -> String {
    let nanos = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    format!("{:x}-{nanos:x}", meta.len())
}

fn artifact_at(name: &str, path: &Path) -> Result<Artifact, ArtifactError> {
    let meta = std::fs::metadata(path).map_err(|e| ArtifactError::io(format!("stat {}", path.display()), e))?;
    Ok(Artifact { name: name.to_owned(), bytes: meta.len(), etag: etag_of(&meta) })
}

/// Write into `target` atomically: `write` fills a hidden temporary file beside it, which is
/// then renamed over `target`.
fn replace_with(target: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<(), ArtifactError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| ArtifactError::io(format!("create {}", dir.display()), e))?;
    let file = target.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file}.{}.partial", uuid::Uuid::new_v4().simple()));
    let result = write(&tmp).map_err(|e| ArtifactError::io(format!("write {}", tmp.display()), e)).and_then(|()| {
        std::fs::rename(&tmp, target)
            .map_err(|e| ArtifactError::io(format!("rename {} to {}", tmp.display(), target.display()), e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ArtifactError> + Send + 'static,
) -> Result<T, ArtifactError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ArtifactError::io("artifact file task", std::io::Error::other(e.to_string())))?
}

/// Every visible file under `dir`, as names relative to `root`, sorted.
fn walk(root: &Path, dir: &Path, out: &mut Vec<Artifact>) -> Result<(), ArtifactError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ArtifactError::io(format!("list {}", dir.display()), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| ArtifactError::io(format!("list {}", dir.display()), e))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| ArtifactError::io(format!("stat {}", path.display()), e))?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let name = path.strip_prefix(root).unwrap_or(path.as_path()).to_string_lossy().replace('\\', "/");
            if check_name(&name).is_ok() {
                out.push(artifact_at(&name, &path)?);
            }
        }
    }
    Ok(())
}

impl ArtifactStore for FsArtifacts {
    fn location(&self, job: &str) -> String {
        self.root.join(job).display().to_string()
    }

    fn is_working_dir(&self) -> bool {
        self.working
    }

    fn put_file<'a>(
        &'a self,
        job: &'a str,
        name: &'a str,
        local: &'a Path,
    ) -> BoxFuture<'a, Result<Artifact, ArtifactError>> {
        Box::pin(async move {
            let target = self.path(job, name)?;
            let (name, local) = (name.to_owned(), local.to_path_buf());
            blocking(move || {
                let same = match (local.canonicalize(), target.canonicalize()) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => false,
                };
                if !same {
                    replace_with(&target, |tmp| std::fs::copy(&local, tmp).map(drop))?;
                }
                artifact_at(&name, &target)
            })
            .await
        })
    }

    fn put_bytes<'a>(
        &'a self,
        job: &'a str,
        name: &'a str,
        bytes: Bytes,
    ) -> BoxFuture<'a, Result<Artifact, ArtifactError>> {
        Box::pin(async move {
            let target = self.path(job, name)?;
            let name = name.to_owned();
            blocking(move || {
                replace_with(&target, |tmp| std::fs::write(tmp, &bytes))?;
                artifact_at(&name, &target)
            })
            .await
        })
    }

    fn head<'a>(&'a self, job: &'a str, name: &'a str) -> BoxFuture<'a, Result<Option<Artifact>, ArtifactError>> {
        Box::pin(async move {
            let path = self.path(job, name)?;
            let name = name.to_owned();
            blocking(move || match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => Ok(Some(Artifact { name, bytes: meta.len(), etag: etag_of(&meta) })),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ArtifactError::io(format!("stat {}", path.display()), e)),
            })
            .await
        })
    }

    fn get_range<'a>(
        &'a self,
        job: &'a str,
        name: &'a str,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<Bytes, ArtifactError>> {
        Box::pin(async move {
            let path = self.path(job, name)?;
            let (job, name) = (job.to_owned(), name.to_owned());
            blocking(move || {
                let mut file = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found(&job, &name)),
                    Err(e) => return Err(ArtifactError::io(format!("open {}", path.display()), e)),
                };
                let size = file.metadata().map_err(|e| ArtifactError::io(format!("stat {}", path.display()), e))?.len();
                if range.start > range.end || range.end > size {
                    return Err(ArtifactError::BadRange { name, start: range.start, end: range.end, size });
                }
                let mut buf = vec![0u8; (range.end - range.start) as usize];
                file.seek(SeekFrom::Start(range.start))
                    .and_then(|_| file.read_exact(&mut buf))
                    .map_err(|e| ArtifactError::io(format!("read {}", path.display()), e))?;
                Ok(Bytes::from(buf))
            })
            .await
        })
    }

    fn list<'a>(&'a self, job: &'a str) -> BoxFuture<'a, Result<Vec<Artifact>, ArtifactError>> {
        Box::pin(async move {
            check_job(job)?;
            let dir = self.root.join(job);
            blocking(move || {
                let mut out = Vec::new();
                walk(&dir, &dir, &mut out)?;
                out.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(out)
            })
            .await
        })
    }

    fn remove_job<'a>(&'a self, job: &'a str) -> BoxFuture<'a, Result<(), ArtifactError>> {
        Box::pin(async move {
            check_job(job)?;
            let dir = self.root.join(job);
            blocking(move || match std::fs::remove_dir_all(&dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(ArtifactError::io(format!("remove {}", dir.display()), e)),
            })
            .await
        })
    }
}
