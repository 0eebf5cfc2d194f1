//! Scale-out on a real PostgreSQL: one API node with no workers of its own, three
//! `aiprod worker` processes, 24 short economy jobs, and one worker killed with SIGKILL while
//! it renders. Every job must be delivered exactly once: one transition into `delivered`, an
//! unbroken chain of committed steps (a step committed twice would fork it), one final video
//! per job, and the killed worker's job resumed by another worker after its lease lapsed.
//!
//! Needs PostgreSQL (`AIPROD_TEST_PG_URL`, default `postgres://postgres:postgres@127.0.0.1:5432/postgres`)
//! and the installed voice and illustrations; `make test` provides both.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aiprod::store::pg::ScratchDatabase;
use aiprod::store::{PgStore, Store};
use serde_json::{Value, json};

const JOBS: usize = 24;
const WORKERS: usize = 3;
const LEASE_SEC: f64 = 4.0;

/// A child process killed (and reaped) when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn aiprod(home: &Path, store: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aiprod"));
    c.env("AIPROD_CONFIG", home.join("config.json"))
        .env("AIPROD_DATA_DIR", home.join("data"))
        .env("AIPROD_STORE_URL", store)
        .env("NO_COLOR", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// The shipped configuration with a short lease, fast retries and no rate limit in the way.
fn write_config(home: &Path) {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/v33.json")).unwrap();
    let mut config: Value = serde_json::from_str(&text).unwrap();
    config["storage"]["leaseSec"] = json!(LEASE_SEC);
    config["storage"]["dataDir"] = json!(home.join("data"));
    config["logging"]["dir"] = json!(home.join("logs"));
    config["models"]["dir"] = json!(Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    config["orchestrator"]["retryPolicy"]["backoffSec"] = json!(0.05);
    config["orchestrator"]["retryPolicy"]["maxBackoffSec"] = json!(0.2);
    config["service"]["rateLimit"]["default"] = json!({"perMinute": 60000.0, "burst": 1000.0});
    std::fs::write(home.join("config.json"), serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

/// Start a process and read the first stdout line that starts with `prefix`.
fn start(mut cmd: Command, prefix: &str) -> (Proc, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with '{prefix}'"));
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL and the models (make test provides both)"]
async fn three_workers_deliver_every_job_exactly_once_when_one_is_killed_mid_render() {
    let admin = std::env::var("AIPROD_TEST_PG_URL").unwrap_or_else(|_| aiprod::store::pg::LOCAL_URL.into());
    let db = ScratchDatabase::create(&admin).expect("a PostgreSQL server");
    let home = tempfile::tempdir().unwrap();
    write_config(home.path());

    let out = aiprod(home.path(), &db.url).args(["keys", "create", "ops", "--role", "admin"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let mut serve = aiprod(home.path(), &db.url);
    serve.args(["serve", "--bind", "127.0.0.1:0", "--workers", "0"]);
    let (_api, line) = start(serve, "listening on ");
    let base = line.trim_start_matches("listening on ").trim().to_owned();
    let mut workers: BTreeMap<u32, Proc> = BTreeMap::new();
    for _ in 0..WORKERS {
        let mut w = aiprod(home.path(), &db.url);
        w.args(["worker", "--concurrency", "1"]);
        let (p, _) = start(w, "worker running");
        workers.insert(p.0.id(), p);
    }

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut ids = Vec::new();
    for i in 0..JOBS {
        let brief = json!({
            "content": format!("A short teaser number {i} for a neighbourhood bakery: fresh bread at dawn, warm light."),
            "preset": "quick_social",
            "duration_sec": 5,
            "tier": "economy",
            "aspect_ratio": "16:9",
        });
        let r = http
            .post(format!("{base}/v1/pipeline/run"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(brief.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        ids.push(body["job_id"].as_str().unwrap().to_owned());
    }

    // Kill -9 the worker that renders first; its lease lapses and another worker resumes.
    let store = PgStore::open(&db.url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let (victim_job, victim_owner) = loop {
        assert!(Instant::now() < deadline, "no job reached rendering");
        let rendering = ids.iter().find(|id| store.job(id).unwrap().state.name() == "rendering");
        if let Some(id) = rendering
            && let Some(owner) = store.job_owner(id).unwrap()
        {
            break (id.clone(), owner);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pid: u32 = victim_owner.split(':').nth(1).unwrap().parse().unwrap();
    let mut victim = workers.remove(&pid).expect("the owner is one of our workers");
    victim.0.kill().unwrap();
    victim.0.wait().unwrap();

    // Everything ends delivered; a job the supervisor holds for review is approved through
    // the API node, and whichever worker claims it next finishes it.
    let deadline = Instant::now() + Duration::from_secs(1500);
    loop {
        let states: Vec<String> = ids.iter().map(|id| store.job(id).unwrap().state.name().to_owned()).collect();
        for (id, s) in ids.iter().zip(&states) {
            if s == "awaiting_review" {
                let r = http
                    .post(format!("{base}/v1/jobs/{id}/approve"))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send();
                let _ = r.await;
            }
            assert!(!matches!(s.as_str(), "failed" | "cancelled"), "job {id} ended {s}: {:#?}", store.history(id));
        }
        if states.iter().all(|s| s == "delivered") {
            break;
        }
        assert!(Instant::now() < deadline, "not all delivered in time: {states:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    for id in &ids {
        let history = store.history(id).unwrap();
        let moves: Vec<_> = history.iter().filter(|h| h.from != h.to).collect();
        assert_eq!(moves.iter().filter(|h| h.to == "delivered").count(), 1, "{id}: one delivery");
        for pair in moves.windows(2) {
            assert_eq!(pair[1].from, pair[0].to, "{id}: every step follows the last committed one: {moves:#?}");
        }
        let dir = home.path().join("data/jobs").join(id);
        let videos: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("video") && n.ends_with(".mp4"))
            .collect();
        assert_eq!(videos, ["video.mp4"], "{id}: one final video");
    }
    let victim_history = store.history(&victim_job).unwrap();
    let takeover = victim_history
        .iter()
        .find(|h| h.event == "lease_taken_over")
        .unwrap_or_else(|| panic!("the killed worker's job shows the takeover: {victim_history:#?}"));
    let detail = takeover.detail.as_ref().unwrap();
    assert_eq!(detail["previous_owner"], victim_owner.as_str());
    assert_ne!(detail["owner"], victim_owner.as_str());
    let delivered = victim_history.iter().find(|h| h.to == "delivered").unwrap();
    assert!(takeover.seq < delivered.seq, "the job was finished after the takeover");
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("aiprod_lease_takeovers_total"), "{metrics}");
    assert!(metrics.contains("aiprod_queue_depth 0"), "{metrics}");
}
