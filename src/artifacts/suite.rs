//! The artifact-store suite: every behaviour the driver and the API rely on, written once and
//! run on each store — the working directories, a shared directory, and S3-compatible object
//! storage. The S3 runs need a server: each test starts its own `moto_server` (installed by
//! `scripts/ensure_moto.sh`; `make test` runs it), so they are ignored unless asked for.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::moto::MotoServer;
use super::sync::{self, LEDGER};
use super::*;

const JOB: &str = "0b7c5d0e-8a43-4f7e-9d0a-1f2e3d4c5b6a";
const OTHER: &str = "5f1e2d3c-4b5a-4978-8a6b-7c8d9e0f1a2b";

/// One store under test, with whatever keeps it alive.
struct Backend {
    store: Arc<dyn ArtifactStore>,
    /// Scratch space: the store's directory (filesystem stores) and local working copies.
    dir: tempfile::TempDir,
    _server: Option<MotoServer>,
}

impl Backend {
    async fn working_dir() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self { store: Arc::new(fs::FsArtifacts::working(dir.path().join("jobs"))), dir, _server: None }
    }

    async fn shared_dir() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self { store: Arc::new(fs::FsArtifacts::shared(dir.path().join("shared"))), dir, _server: None }
    }

    async fn s3() -> Self {
        let server = MotoServer::start("aiprod-suite").await.expect("an S3-compatible server (moto)");
        let store = Arc::new(server.store("renders/test").unwrap());
        Self { store, dir: tempfile::tempdir().unwrap(), _server: Some(server) }
    }

    fn store(&self) -> &dyn ArtifactStore {
        self.store.as_ref()
    }

    /// A local working directory for `job` on some worker (`host`), outside the store.
    fn working(&self, host: &str, job: &str) -> std::path::PathBuf {
        let dir = self.dir.path().join(host).join(job);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn names(list: &[Artifact]) -> Vec<&str> {
    list.iter().map(|a| a.name.as_str()).collect()
}

async fn files_round_trip_with_sizes_and_listing(b: &Backend) {
    let s = b.store();
    let local = b.working("host-a", "upload").join("video.mp4");
    write(&local, &[7u8; 1000]);
    let video = s.put_file(JOB, "video.mp4", &local).await.unwrap();
    assert_eq!((video.name.as_str(), video.bytes), ("video.mp4", 1000));
    s.put_bytes(JOB, "keyframes/scene_01.png", Bytes::from_static(b"\x89PNG....")).await.unwrap();
    s.put_bytes(JOB, "subtitles.en.vtt", Bytes::from_static(b"WEBVTT\n")).await.unwrap();
    s.put_bytes(OTHER, "video.mp4", Bytes::from_static(b"other")).await.unwrap();

    assert_eq!(s.head(JOB, "video.mp4").await.unwrap().map(|a| a.bytes), Some(1000));
    assert_eq!(s.head(JOB, "video.mp4").await.unwrap().unwrap().etag, video.etag, "a HEAD shows the tag the put saw");
    assert_eq!(s.head(JOB, "preview.mp4").await.unwrap(), None);
    assert_eq!(&get(s, JOB, "subtitles.en.vtt").await.unwrap()[..], b"WEBVTT\n");
    assert!(matches!(get(s, JOB, "preview.mp4").await, Err(ArtifactError::NotFound { .. })));
    let list = s.list(JOB).await.unwrap();
    assert_eq!(names(&list), ["keyframes/scene_01.png", "subtitles.en.vtt", "video.mp4"]);
    assert_eq!(list[2], video, "a listing shows the tag the put saw");
    assert_eq!(names(&s.list(OTHER).await.unwrap()), ["video.mp4"], "jobs do not see each other's files");
    assert!(s.list("9a9a9a9a-0000-4000-8000-000000000000").await.unwrap().is_empty());
    assert!(s.location(JOB).contains(JOB));
}

async fn ranges_read_exactly_the_bytes_asked(b: &Backend) {
    let s = b.store();
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    s.put_bytes(JOB, "video.mp4", Bytes::from(data.clone())).await.unwrap();
    assert_eq!(&s.get_range(JOB, "video.mp4", 0..100).await.unwrap()[..], &data[..100]);
    assert_eq!(&s.get_range(JOB, "video.mp4", 4321..8765).await.unwrap()[..], &data[4321..8765]);
    assert_eq!(&s.get_range(JOB, "video.mp4", 9999..10_000).await.unwrap()[..], &data[9999..]);
    assert!(s.get_range(JOB, "video.mp4", 50..50).await.unwrap().is_empty());
    let past = s.get_range(JOB, "video.mp4", 9_990..10_010).await;
    assert!(matches!(past, Err(ArtifactError::BadRange { size: 10_000, .. })), "{past:?}");
    assert!(matches!(s.get_range(JOB, "preview.mp4", 0..1).await, Err(ArtifactError::NotFound { .. })));
}

async fn a_replaced_file_is_read_whole_and_changes_its_tag(b: &Backend) {
    let s = b.store();
    let first = s.put_bytes(JOB, "preview.mp4", Bytes::from_static(b"first render")).await.unwrap();
    let second = s.put_bytes(JOB, "preview.mp4", Bytes::from_static(b"the second render")).await.unwrap();
    assert_ne!(first.etag, second.etag);
    assert_eq!(&get(s, JOB, "preview.mp4").await.unwrap()[..], b"the second render");
    assert_eq!(names(&s.list(JOB).await.unwrap()), ["preview.mp4"], "no temporary file is left behind");
}

async fn names_cannot_leave_the_job(b: &Backend) {
    let s = b.store();
    for bad in ["../escape", "/etc/passwd", "a//b", ".hidden", "keyframes/../../x"] {
        let put = s.put_bytes(JOB, bad, Bytes::from_static(b"x")).await;
        assert!(matches!(put, Err(ArtifactError::BadName(_))), "{bad}: {put:?}");
        assert!(s.head(JOB, bad).await.is_err(), "{bad}");
    }
    assert!(matches!(s.list("../jobs").await, Err(ArtifactError::BadName(_))));
    assert!(s.put_bytes("a/b", "video.mp4", Bytes::from_static(b"x")).await.is_err());
}

async fn large_files_upload_in_parts_and_read_back(b: &Backend) {
    let s = b.store();
    let size = crate::artifacts::s3::MULTIPART_FROM + 3 * 1024 * 1024 + 17;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let local = b.working("host-a", "big").join("video.mp4");
    write(&local, &data);
    let stored = s.put_file(JOB, "video.mp4", &local).await.unwrap();
    assert_eq!(stored.bytes, size);
    let tail = s.get_range(JOB, "video.mp4", size - 1000..size).await.unwrap();
    assert_eq!(&tail[..], &data[data.len() - 1000..]);
    let back = b.working("host-b", "big");
    let path = sync::fetch(s, JOB, &stored, &back).await.unwrap();
    assert!(std::fs::read(path).unwrap() == data, "the download is the upload");
}

async fn removing_a_job_deletes_its_files_only(b: &Backend) {
    let s = b.store();
    s.put_bytes(JOB, "video.mp4", Bytes::from_static(b"v")).await.unwrap();
    s.put_bytes(JOB, "keyframes/scene_01.png", Bytes::from_static(b"k")).await.unwrap();
    s.put_bytes(OTHER, "video.mp4", Bytes::from_static(b"o")).await.unwrap();
    s.remove_job(JOB).await.unwrap();
    assert!(s.list(JOB).await.unwrap().is_empty());
    assert_eq!(names(&s.list(OTHER).await.unwrap()), ["video.mp4"]);
    s.remove_job(JOB).await.unwrap();
}

/// Upload, then record: a worker publishes what a stage finished (its `.partial` under the
/// final name) before the step commits; another worker restores the job's files before its
/// next stage, and re-downloads only what changed in the store since.
async fn working_copies_publish_and_restore_through_the_store(b: &Backend) {
    let s = b.store();
    let a = b.working("host-a", JOB);
    write(&a.join("video.mp4"), b"the video");
    write(&a.join("keyframes/scene_01.png"), b"png");
    write(&a.join("narration/scene_01.en.wav"), b"RIFF");
    write(&a.join(".cost_certificate.json.partial"), b"{\"signed\": true}");
    let finished = [(a.join(".cost_certificate.json.partial"), "cost_certificate.json".to_owned())];
    let uploaded = sync::publish(s, JOB, &a, &finished).await.unwrap();
    if s.is_working_dir() {
        // The working directory is the store: nothing moves, nothing is recorded.
        assert!(uploaded.is_empty());
        assert!(sync::restore(s, JOB, &a).await.unwrap().is_empty());
        assert!(!a.join(LEDGER).exists());
        return;
    }
    assert_eq!(uploaded, ["cost_certificate.json", "keyframes/scene_01.png", "narration/scene_01.en.wav", "video.mp4"]);
    assert_eq!(&get(s, JOB, "cost_certificate.json").await.unwrap()[..], b"{\"signed\": true}");
    assert!(s.head(JOB, ".cost_certificate.json.partial").await.is_err(), "hidden files are never stored");
    // The step committed: the partial is renamed into place; nothing needs uploading again.
    std::fs::rename(a.join(".cost_certificate.json.partial"), a.join("cost_certificate.json")).unwrap();
    assert!(sync::publish(s, JOB, &a, &[]).await.unwrap().is_empty());
    assert!(sync::restore(s, JOB, &a).await.unwrap().is_empty(), "a worker is up to date with its own uploads");

    // Another machine takes the job over with an empty working directory.
    let other = b.working("host-b", JOB);
    let restored = sync::restore(s, JOB, &other).await.unwrap();
    assert_eq!(restored, ["cost_certificate.json", "keyframes/scene_01.png", "narration/scene_01.en.wav", "video.mp4"]);
    assert_eq!(std::fs::read(other.join("narration/scene_01.en.wav")).unwrap(), b"RIFF");
    assert!(sync::restore(s, JOB, &other).await.unwrap().is_empty());
    // It re-renders the video and publishes it; the first worker, resuming later, fetches it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(&other.join("video.mp4"), b"the video, re-rendered");
    assert_eq!(sync::publish(s, JOB, &other, &[]).await.unwrap(), ["video.mp4"]);
    assert_eq!(sync::restore(s, JOB, &a).await.unwrap(), ["video.mp4"]);
    assert_eq!(std::fs::read(a.join("video.mp4")).unwrap(), b"the video, re-rendered");
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod working_dir {
            $(#[tokio::test] async fn $name() { super::$name(&super::Backend::working_dir().await).await })*
        }
        mod shared_dir {
            $(#[tokio::test] async fn $name() { super::$name(&super::Backend::shared_dir().await).await })*
        }
        mod s3 {
            $(
                #[tokio::test]
                #[ignore = "needs an S3-compatible server (moto): make test installs it"]
                async fn $name() { super::$name(&super::Backend::s3().await).await }
            )*
        }
    };
}

suite!(
    files_round_trip_with_sizes_and_listing,
    ranges_read_exactly_the_bytes_asked,
    a_replaced_file_is_read_whole_and_changes_its_tag,
    names_cannot_leave_the_job,
    large_files_upload_in_parts_and_read_back,
    removing_a_job_deletes_its_files_only,
    working_copies_publish_and_restore_through_the_store,
);
