//! Shared artifacts: a job rendered with an artifact store other than the data directory is
//! published there before its steps are recorded, and the API serves it from there — video
//! with HTTP Range, preview, subtitles, keyframes, signed links, the list's thumbnail — even
//! once the local working copy is gone.
//!
//! - A shared directory (what NFS or EFS gives every node): the real server on port 0 with a
//!   fresh SQLite store, runs everywhere.
//! - S3-compatible object storage: a real `moto_server` on a free port (installed by
//!   `scripts/ensure_moto.sh`, which `make test` runs), the real `aiprod serve` binary with
//!   `--artifacts s3://…` and the AWS environment variables, and a second API node with an
//!   empty data directory of its own that has never seen the job's files.

#[path = "api/helpers.rs"]
mod helpers;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aiprod::artifacts::ArtifactStore;
use aiprod::artifacts::moto::MotoServer;
use helpers::{TestApp, small_brief, spawn_app_with};
use serde_json::{Value, json};

/// Deliver `id`: approve it through the API if the supervisor held it for review.
async fn delivered(app: &TestApp, id: &str) -> Value {
    let view = app.wait_for(id, &["delivered", "awaiting_review"]).await;
    if view["state"] == "awaiting_review" {
        let a = app.call("POST", &format!("/v1/jobs/{id}/approve"), &app.admin, None).await;
        assert_eq!(a.status, 200, "{}", a.body);
        return app.wait_for(id, &["delivered"]).await;
    }
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_published_to_a_shared_directory_is_served_from_there() {
    let shared = tempfile::tempdir().unwrap();
    let root = shared.path().join("artifacts");
    let configured = root.display().to_string();
    let mut app = spawn_app_with(|c| c.storage.artifacts = Some(configured)).await;
    let id = app.submit(small_brief("quick_social")).await;
    delivered(&app, &id).await;

    // Everything the job delivered is in the shared directory, complete (no temporary
    // copies), and the delivery manifest says where it lives.
    let stored = root.join(&id);
    for name in ["video.mp4", "preview.mp4", "subtitles.en.vtt", "keyframes/scene_01.png", "cost_certificate.json"] {
        assert!(stored.join(name).is_file(), "{name} is in the shared directory");
    }
    let hidden: Vec<_> = std::fs::read_dir(&stored)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.file_name())
        .collect();
    assert!(hidden.is_empty(), "no partial copies are left behind: {hidden:?}");
    let memory = app.call("GET", &format!("/v1/jobs/{id}/memory"), &app.viewer, None).await;
    let manifest = &memory.body["sections"]["delivery_manifest"]["content"];
    assert_eq!(manifest["location"], stored.display().to_string(), "{manifest}");
    for f in manifest["files"].as_array().unwrap() {
        let name = f["path"].as_str().unwrap();
        let on_share = std::fs::metadata(stored.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(on_share.len(), f["bytes"].as_u64().unwrap(), "{name} was published whole");
    }

    // The worker's disk is wiped: the API still serves every file from the shared directory.
    std::fs::remove_dir_all(app.dir.path().join("data/jobs").join(&id)).unwrap();
    let video = std::fs::read(stored.join("video.mp4")).unwrap();
    let full = app.call("GET", &format!("/v1/jobs/{id}/video"), &app.viewer, None).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.headers["content-type"], "video/mp4");
    assert!(full.bytes == video, "the video comes from the shared directory");
    let part =
        app.call_with("GET", &format!("/v1/jobs/{id}/video"), &app.viewer, None, &[("range", "bytes=100-199")]).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.headers["content-range"].to_str().unwrap(), format!("bytes 100-199/{}", video.len()));
    assert_eq!(&part.bytes[..], &video[100..200]);
    let beyond = format!("bytes={}-", video.len());
    let none = app.call_with("GET", &format!("/v1/jobs/{id}/video"), &app.viewer, None, &[("range", &beyond)]).await;
    assert_eq!(none.status, 416);
    assert_eq!(none.headers["content-range"].to_str().unwrap(), format!("bytes */{}", video.len()));
    let vtt = app.call("GET", &format!("/v1/jobs/{id}/artifacts/subtitles.en.vtt"), &app.viewer, None).await;
    assert!(vtt.status == 200 && vtt.bytes.starts_with(b"WEBVTT"), "{}", vtt.status);
    let links = app.call("GET", &format!("/v1/jobs/{id}/links"), &app.viewer, None).await;
    assert_eq!(links.status, 200, "{}", links.body);
    let by_link = app.call("GET", links.body["video"].as_str().unwrap(), "", None).await;
    assert!(by_link.status == 200 && by_link.bytes == video, "a signed link opens the shared copy");
    let preview = app.call("GET", links.body["preview"].as_str().unwrap(), "", None).await;
    assert_eq!((preview.status, &preview.bytes[4..8]), (200, &b"ftyp"[..]));
    let list = app.call("GET", "/v1/jobs", &app.viewer, None).await;
    let thumb = app.call("GET", list.body["jobs"][0]["thumbnail"].as_str().unwrap(), "", None).await;
    assert_eq!((thumb.status, &thumb.bytes[1..4]), (200, &b"PNG"[..]), "the thumbnail comes from the share");
    app.stop().await;
}

/// A child process killed (and reaped) when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The shipped configuration with fast retries, logs in `home` and no rate limit in the way.
fn write_config(home: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/v33.json")).unwrap();
    let mut config: Value = serde_json::from_str(&text).unwrap();
    config["logging"]["dir"] = json!(home.join("logs"));
    config["models"]["dir"] = json!(Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    config["orchestrator"]["retryPolicy"]["backoffSec"] = json!(0.05);
    config["orchestrator"]["retryPolicy"]["maxBackoffSec"] = json!(0.2);
    config["service"]["rateLimit"]["default"] = json!({"perMinute": 60000.0, "burst": 1000.0});
    let path = home.join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

/// `aiprod` with `config`, the data directory `data`, the shared SQLite store `db` and the S3
/// store of `s3` under `artifacts`.
fn aiprod(config: &Path, data: &Path, db: &Path, s3: &MotoServer, artifacts: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aiprod"));
    c.env("AIPROD_CONFIG", config)
        .env("AIPROD_DATA_DIR", data)
        .env("AIPROD_STORE_URL", format!("sqlite://{}", db.display()))
        .env("AIPROD_ARTIFACTS", artifacts)
        .env("NO_COLOR", "1")
        .env_remove("AIPROD_LOG")
        .envs(s3.env())
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Start a server and return it with its base URL (from its `listening on` line).
fn start(mut cmd: Command) -> (Proc, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("listening on "))
        .unwrap_or_else(|| panic!("the server did not start"));
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), line.trim_start_matches("listening on ").trim().to_owned())
}

async fn get(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = http.get(url);
    if !key.is_empty() {
        req = req.bearer_auth(key);
    }
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an S3-compatible server (moto): make test installs it"]
async fn a_job_published_to_s3_is_served_by_an_api_node_without_a_local_copy() {
    let s3 = MotoServer::start("aiprod-e2e").await.expect("an S3-compatible server (moto)");
    let artifacts = format!("s3://{}/renders", s3.bucket);
    let home = tempfile::tempdir().unwrap();
    let config = write_config(home.path());
    let (worker_data, api_data, db) =
        (home.path().join("worker"), home.path().join("api"), home.path().join("aiprod.db"));

    let out = aiprod(&config, &worker_data, &db, &s3, &artifacts)
        .args(["keys", "create", "ops", "--role", "admin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    // Node 1 renders (one worker); its working copies are under `worker/`.
    let mut serve = aiprod(&config, &worker_data, &db, &s3, &artifacts);
    serve.args(["serve", "--bind", "127.0.0.1:0", "--workers", "1"]);
    let (_node1, base) = start(serve);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .post(format!("{base}/v1/pipeline/run"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(small_brief("quick_social").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let submitted: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let id = submitted["job_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (_, _, body) = get(&http, &format!("{base}/v1/jobs/{id}"), &key, None).await;
        let view: Value = serde_json::from_slice(&body).unwrap();
        match view["state"].as_str().unwrap() {
            "delivered" => break,
            "awaiting_review" => {
                let a = http
                    .post(format!("{base}/v1/jobs/{id}/approve"))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await;
                assert_eq!(a.unwrap().status(), 200);
            }
            s if view["terminal"] == true => panic!("job ended {s}: {view}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "not delivered in time: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every delivered file is in the bucket, whole, and the manifest records where.
    let bucket = s3.store("renders").unwrap();
    let stored: Vec<String> = bucket.list(&id).await.unwrap().into_iter().map(|a| a.name).collect();
    for name in ["video.mp4", "preview.mp4", "subtitles.en.vtt", "keyframes/scene_01.png", "cost_certificate.json"] {
        assert!(stored.iter().any(|n| n == name), "{name} is in the bucket: {stored:?}");
    }
    let (_, _, memory) = get(&http, &format!("{base}/v1/jobs/{id}/memory"), &key, None).await;
    let memory: Value = serde_json::from_slice(&memory).unwrap();
    let manifest = &memory["sections"]["delivery_manifest"]["content"];
    assert_eq!(manifest["location"], format!("s3://{}/renders/{id}/", s3.bucket), "{manifest}");
    for f in manifest["files"].as_array().unwrap() {
        let name = f["path"].as_str().unwrap();
        let head = bucket.head(&id, name).await.unwrap().unwrap_or_else(|| panic!("{name} is not in the bucket"));
        assert_eq!(head.bytes, f["bytes"].as_u64().unwrap(), "{name} was uploaded whole");
    }
    let video = aiprod::artifacts::get(&bucket, &id, "video.mp4").await.unwrap().to_vec();

    // The working copy is gone; node 1 serves the video from the bucket.
    std::fs::remove_dir_all(worker_data.join("jobs").join(&id)).unwrap();
    let (status, headers, full) = get(&http, &format!("{base}/v1/jobs/{id}/video"), &key, None).await;
    assert_eq!((status, full.len()), (200, video.len()));
    assert!(full == video);
    assert_eq!(headers["accept-ranges"], "bytes");

    // Node 2: an API node with no workers and an empty data directory of its own.
    let mut api = aiprod(&config, &api_data, &db, &s3, &artifacts);
    api.args(["serve", "--bind", "127.0.0.1:0", "--workers", "0"]);
    let (_node2, base2) = start(api);
    assert!(!api_data.join("jobs").join(&id).exists());
    let (status, headers, part) =
        get(&http, &format!("{base2}/v1/jobs/{id}/video"), &key, Some("bytes=1000-4999")).await;
    assert_eq!(status, 206);
    assert_eq!(headers["content-range"].to_str().unwrap(), format!("bytes 1000-4999/{}", video.len()));
    assert_eq!(&part[..], &video[1000..5000]);
    let (status, _, tail) = get(&http, &format!("{base2}/v1/jobs/{id}/video"), &key, Some("bytes=-100")).await;
    assert_eq!((status, &tail[..]), (206, &video[video.len() - 100..]));
    let (status, _, vtt) = get(&http, &format!("{base2}/v1/jobs/{id}/artifacts/subtitles.en.vtt"), &key, None).await;
    assert!(status == 200 && vtt.starts_with(b"WEBVTT"), "{status}");
    let (status, _, png) =
        get(&http, &format!("{base2}/v1/jobs/{id}/artifacts/keyframes/scene_01.png"), &key, None).await;
    assert_eq!((status, &png[1..4]), (200, &b"PNG"[..]));
    let (status, _, links) = get(&http, &format!("{base2}/v1/jobs/{id}/links"), &key, None).await;
    assert_eq!(status, 200);
    let links: Value = serde_json::from_slice(&links).unwrap();
    let preview = links["preview"].as_str().expect("a preview link from the bucket listing");
    let (status, _, preview) = get(&http, &format!("{base2}{preview}"), "", None).await;
    assert_eq!((status, &preview[4..8]), (200, &b"ftyp"[..]));
    assert!(!api_data.join("jobs").join(&id).exists(), "the API node served it all without a local copy");
}
