//! A job's local working directory and its artifact store, kept in step by the driver.
//!
//! - [`publish`]: after a stage succeeded and before its step is committed, every file of
//!   the working directory that the store does not have in its current form is uploaded, and
//!   so is each file the stage finished under a `.partial` name (under its final name). The
//!   step that records the files is committed only after this returned: upload, then record.
//! - [`restore`]: before a stage runs, every stored file the working directory lacks, or that
//!   changed in the store since this directory last saw it (another worker re-rendered), is
//!   downloaded. A job can therefore continue on any worker on any machine.
//!
//! What the working directory last exchanged with the store is kept in a hidden ledger file
//! in it (`.artifacts.json`: per file, the local size and modification time, and the stored
//! tag). The decisions — [`to_upload`] and [`to_download`] — are pure functions of that
//! ledger and two listings; the rest of this module only carries them out.
//!
//! With a store whose directories are the working directories ([`ArtifactStore::is_working_dir`])
//! both are no-ops.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::{Artifact, ArtifactError, ArtifactStore, check_name};

/// The ledger's file name in a working directory (hidden: never listed, never delivered).
pub const LEDGER: &str = ".artifacts.json";
/// Downloads are read this many bytes at a time (flat memory for any file size).
const FETCH_CHUNK: u64 = 8 << 20;

/// A file of the working directory as the filesystem describes it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Its artifact name (relative, `/`-separated).
    pub name: String,
    /// Its size.
    pub bytes: u64,
    /// Its modification time in nanoseconds since the epoch: with the size, what tells that
    /// a stage rewrote it.
    pub modified_ns: u64,
}

/// What the working directory last exchanged with the store for one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Synced {
    /// The local size then.
    pub bytes: u64,
    /// The local modification time then.
    pub modified_ns: u64,
    /// The stored file's tag then.
    pub etag: String,
}

/// Every file the working directory exchanged with the store, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// By artifact name.
    pub files: BTreeMap<String, Synced>,
}

/// The local files to upload: those the ledger does not show in their current form (new, or
/// rewritten since they were last uploaded or downloaded).
pub fn to_upload(local: &[LocalFile], ledger: &Ledger) -> Vec<String> {
    local
        .iter()
        .filter(|f| ledger.files.get(&f.name).is_none_or(|s| s.bytes != f.bytes || s.modified_ns != f.modified_ns))
        .map(|f| f.name.clone())
        .collect()
}

/// The stored files to download: those missing locally, and those whose stored tag is not
/// the one this directory last exchanged (someone else stored them since). A local file the
/// store still has in the form this directory uploaded or downloaded is kept as it is.
pub fn to_download(stored: &[Artifact], local: &[LocalFile], ledger: &Ledger) -> Vec<String> {
    stored
        .iter()
        .filter(|s| {
            let here = local.iter().any(|f| f.name == s.name);
            !here || ledger.files.get(&s.name).is_none_or(|synced| synced.etag != s.etag)
        })
        .map(|s| s.name.clone())
        .collect()
}

fn modified_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as u64)
}

/// The working directory's visible files (hidden names — the ledger, `.partial` files —
/// and names that are not artifact names are left out).
pub fn scan(dir: &Path) -> Result<Vec<LocalFile>, ArtifactError> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<LocalFile>) -> Result<(), ArtifactError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ArtifactError::io(format!("list {}", dir.display()), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| ArtifactError::io(format!("list {}", dir.display()), e))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let meta = entry.metadata().map_err(|e| ArtifactError::io(format!("stat {}", path.display()), e))?;
            if meta.is_dir() {
                walk(root, &path, out)?;
            } else if meta.is_file() {
                let name = path.strip_prefix(root).unwrap_or(path.as_path()).to_string_lossy().replace('\\', "/");
                if check_name(&name).is_ok() {
                    out.push(LocalFile { name, bytes: meta.len(), modified_ns: modified_ns(&meta) });
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The ledger of `dir`; an unreadable or missing one is empty (everything is then compared
/// afresh, which costs transfers but loses nothing).
pub fn read_ledger(dir: &Path) -> Ledger {
    std::fs::read(dir.join(LEDGER)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn write_ledger(dir: &Path, ledger: &Ledger) -> Result<(), ArtifactError> {
    let path = dir.join(LEDGER);
    let tmp = dir.join(format!("{LEDGER}.partial"));
    let text = serde_json::to_vec_pretty(ledger).unwrap_or_default();
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| ArtifactError::io(format!("write {}", path.display()), e))
}

async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ArtifactError> + Send + 'static,
) -> Result<T, ArtifactError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ArtifactError::io("artifact sync task", std::io::Error::other(e.to_string())))?
}

fn stat(path: &Path) -> Result<std::fs::Metadata, ArtifactError> {
    std::fs::metadata(path).map_err(|e| ArtifactError::io(format!("stat {}", path.display()), e))
}

/// Upload what the store lacks of `job`'s working directory `dir`, plus each finished
/// `.partial` file in `finished` (`(local file, final name)`) under its final name. Returns
/// the names uploaded, sorted. A no-op for a store that is the working directory.
pub async fn publish(
    store: &dyn ArtifactStore,
    job: &str,
    dir: &Path,
    finished: &[(PathBuf, String)],
) -> Result<Vec<String>, ArtifactError> {
    if store.is_working_dir() {
        return Ok(Vec::new());
    }
    let owned = dir.to_path_buf();
    let (local, mut ledger) = off_thread(move || Ok((scan(&owned)?, read_ledger(&owned)))).await?;
    let mut uploaded = Vec::new();
    for name in to_upload(&local, &ledger) {
        let path = dir.join(&name);
        // Sizes and times as they were when this upload read the file.
        let meta = stat(&path)?;
        let stored = store.put_file(job, &name, &path).await?;
        ledger
            .files
            .insert(name.clone(), Synced { bytes: meta.len(), modified_ns: modified_ns(&meta), etag: stored.etag });
        uploaded.push(name);
    }
    for (partial, name) in finished {
        check_name(name)?;
        let meta = stat(partial)?;
        let stored = store.put_file(job, name, partial).await?;
        // After the step commits the partial is renamed to `name`, keeping its size and
        // time: the next publish sees it as already uploaded.
        ledger
            .files
            .insert(name.clone(), Synced { bytes: meta.len(), modified_ns: modified_ns(&meta), etag: stored.etag });
        uploaded.push(name.clone());
    }
    let owned = dir.to_path_buf();
    off_thread(move || write_ledger(&owned, &ledger)).await?;
    uploaded.sort();
    uploaded.dedup();
    Ok(uploaded)
}

/// Download into `job`'s working directory `dir` what it lacks of the store, or has in a
/// form the store no longer holds. Returns the names downloaded, sorted. A no-op for a store
/// that is the working directory.
pub async fn restore(store: &dyn ArtifactStore, job: &str, dir: &Path) -> Result<Vec<String>, ArtifactError> {
    if store.is_working_dir() {
        return Ok(Vec::new());
    }
    let stored = store.list(job).await?;
    let owned = dir.to_path_buf();
    let (local, mut ledger) = off_thread(move || Ok((scan(&owned)?, read_ledger(&owned)))).await?;
    let wanted = to_download(&stored, &local, &ledger);
    for name in &wanted {
        let Some(artifact) = stored.iter().find(|a| &a.name == name) else { continue };
        let path = fetch(store, job, artifact, dir).await?;
        let meta = stat(&path)?;
        let synced = Synced { bytes: meta.len(), modified_ns: modified_ns(&meta), etag: artifact.etag.clone() };
        ledger.files.insert(name.clone(), synced);
    }
    if !wanted.is_empty() {
        let owned = dir.to_path_buf();
        off_thread(move || write_ledger(&owned, &ledger)).await?;
    }
    Ok(wanted)
}

/// Download one stored file into `dir` (through a hidden temporary file renamed into place),
/// a chunk at a time. Returns its local path.
pub async fn fetch(
    store: &dyn ArtifactStore,
    job: &str,
    artifact: &Artifact,
    dir: &Path,
) -> Result<PathBuf, ArtifactError> {
    check_name(&artifact.name)?;
    let target = dir.join(&artifact.name);
    let parent = target.parent().unwrap_or(dir).to_path_buf();
    let file_name = target.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{file_name}.download"));
    let (p, t) = (parent.clone(), tmp.clone());
    let mut file = off_thread(move || {
        std::fs::create_dir_all(&p).map_err(|e| ArtifactError::io(format!("create {}", p.display()), e))?;
        std::fs::File::create(&t).map_err(|e| ArtifactError::io(format!("create {}", t.display()), e))
    })
    .await?;
    let mut at = 0;
    while at < artifact.bytes {
        let end = (at + FETCH_CHUNK).min(artifact.bytes);
        let chunk = match store.get_range(job, &artifact.name, at..end).await {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let t = tmp.clone();
        file = off_thread(move || {
            file.write_all(&chunk).map_err(|e| ArtifactError::io(format!("write {}", t.display()), e))?;
            Ok(file)
        })
        .await?;
        at = end;
    }
    let (t, to) = (tmp.clone(), target.clone());
    off_thread(move || {
        file.sync_all().map_err(|e| ArtifactError::io(format!("write {}", t.display()), e))?;
        drop(file);
        std::fs::rename(&t, &to)
            .map_err(|e| ArtifactError::io(format!("rename {} to {}", t.display(), to.display()), e))
    })
    .await?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(name: &str, bytes: u64, t: u64) -> LocalFile {
        LocalFile { name: name.into(), bytes, modified_ns: t }
    }

    fn stored(name: &str, etag: &str) -> Artifact {
        Artifact { name: name.into(), bytes: 1, etag: etag.into() }
    }

    fn ledger(entries: &[(&str, u64, u64, &str)]) -> Ledger {
        let files = entries
            .iter()
            .map(|(n, b, t, e)| (n.to_string(), Synced { bytes: *b, modified_ns: *t, etag: e.to_string() }))
            .collect();
        Ledger { files }
    }

    #[test]
    fn new_and_rewritten_files_are_uploaded_unchanged_ones_are_not() {
        let l = ledger(&[("video.mp4", 10, 100, "a"), ("preview.mp4", 5, 100, "b")]);
        let files = [local("video.mp4", 10, 100), local("preview.mp4", 5, 200), local("keyframes/scene_01.png", 3, 1)];
        assert_eq!(to_upload(&files, &l), ["preview.mp4", "keyframes/scene_01.png"]);
        assert!(to_upload(&files[..1], &l).is_empty());
    }

    #[test]
    fn missing_and_changed_stored_files_are_downloaded_what_this_directory_synced_is_kept() {
        let l = ledger(&[("video.mp4", 10, 100, "v1"), ("preview.mp4", 5, 100, "p1")]);
        let here = [local("video.mp4", 10, 100), local("preview.mp4", 7, 300)];
        let store = [stored("video.mp4", "v2"), stored("preview.mp4", "p1"), stored("subtitles.en.vtt", "s1")];
        // The video was re-rendered elsewhere (v2); the preview is the one this directory
        // synced (kept, even though it was rewritten here since); the subtitles are new.
        assert_eq!(to_download(&store, &here, &l), ["video.mp4", "subtitles.en.vtt"]);
        // A file never synced here but present locally is replaced by the stored one.
        assert_eq!(
            to_download(&[stored("cost_certificate.json", "c")], &[local("cost_certificate.json", 1, 1)], &l),
            ["cost_certificate.json"]
        );
        assert!(to_download(&[], &here, &l).is_empty());
    }

    #[test]
    fn scanning_skips_hidden_and_partial_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("keyframes")).unwrap();
        for f in ["video.mp4", "keyframes/scene_01.png", ".video.mp4.partial", LEDGER, "keyframes/.x.png"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let names: Vec<String> = scan(dir.path()).unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["keyframes/scene_01.png", "video.mp4"]);
        assert_eq!(read_ledger(dir.path()), Ledger::default(), "an unreadable ledger is empty");
    }
}
