//! Costs end to end: a real job's certificate verifies (and a forged one does not), its actual
//! cost is reconciled from measured CPU time, the audit trail catches a row edited in SQLite,
//! the daily guard routes to economy at 90 % and refuses at 100 % across restarts, and the
//! pricing table refreshes from a file and from a real HTTP server.

mod common;

use std::sync::Arc;

use aiprod::app::pricing;
use aiprod::config::Config;
use aiprod::finance::{daily, routing::DailyLevel};
use aiprod::memory::Section;
use aiprod::pipeline::driver::Driver;
use aiprod::pipeline::machine::State;
use aiprod::sanitize::BriefRequest;
use aiprod::store::CostLedger;
use aiprod::store::database_path;
use aiprod::store::{NewEvent, NewJob, SqliteStore, Store};
use common::{aiprod, stderr, test_config};

const BRIEF: &str = "A calm teaser for a bakery at dawn, warm light.";

fn show(dir: &std::path::Path, id: &str) -> serde_json::Value {
    let out = aiprod(dir).args(["jobs", "show", id]).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn job_ids(dir: &std::path::Path) -> Vec<String> {
    let list = aiprod(dir).args(["jobs", "list"]).output().unwrap();
    String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn certificate_reconciliation_and_audit_trail_of_a_real_job() {
    let dir = tempfile::tempdir().unwrap();
    let key = "a test signing key";
    let run = aiprod(dir.path())
        .env("AIPROD_COST_KEY", key)
        .args(["run", BRIEF, "--duration", "6", "--tier", "economy", "-q"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let summary = String::from_utf8_lossy(&run.stdout);
    assert!(summary.contains("/min of output"), "{summary}");
    assert!(summary.contains("variance"), "{summary}");

    let id = job_ids(dir.path()).remove(0);
    let v = show(dir.path(), &id);
    // Every committed stage carries its measured CPU time; rendering used some.
    let history = v["history"].as_array().unwrap();
    let render = history.iter().find(|h| h["from"] == "rendering" && h["to"] == "technical_qa").unwrap();
    assert!(render["detail"]["cpu_ms"].as_u64().unwrap() > 0, "{render}");
    // The delivery manifest reconciles actual against the estimate.
    let cost = &v["memory"]["delivery_manifest"]["content"]["cost"];
    let estimate = cost["estimate"].as_f64().unwrap();
    let actual = cost["actual"]["total"].as_f64().unwrap();
    assert!(estimate > 0.0 && actual > 0.0, "{cost}");
    let variance = cost["variance_pct"].as_f64().unwrap();
    assert!((variance - (actual - estimate) / estimate * 100.0).abs() < 0.01, "{cost}");
    assert_eq!(cost["overrun_flagged"].as_bool().unwrap(), variance > 20.0);
    // The decision names its rejected alternatives.
    let sel = &v["memory"]["optimized_backend_selection"]["content"];
    assert_eq!(sel["tier"], "economy");
    assert_eq!(sel["orchestration"]["decision"]["alternatives"].as_array().unwrap().len(), 2);

    // The certificate verifies with the key, and a forged copy does not.
    let cert = dir.path().join("data/jobs").join(&id).join("cost_certificate.json");
    let ok = aiprod(dir.path()).env("AIPROD_COST_KEY", key).args(["cost", "verify"]).arg(&cert).output().unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("valid"));
    let wrong_key =
        aiprod(dir.path()).env("AIPROD_COST_KEY", "other").args(["cost", "verify"]).arg(&cert).output().unwrap();
    assert_eq!(wrong_key.status.code(), Some(1));
    let mut forged: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cert).unwrap()).unwrap();
    forged["chosen_tier"] = "premium".into();
    let forged_path = dir.path().join("forged.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let bad =
        aiprod(dir.path()).env("AIPROD_COST_KEY", key).args(["cost", "verify"]).arg(&forged_path).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("signature does not match"), "{}", stderr(&bad));

    // The audit trail: pricing in force, the decision, the reconciliation — intact.
    let verify = aiprod(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", stderr(&verify));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("3 entries"));

    // Edit the decision's row directly in SQLite: verification names that entry.
    let conn = rusqlite::Connection::open(database_path(&dir.path().join("data"))).unwrap();
    let kind: String = conn.query_row("SELECT kind FROM cost_audit WHERE seq = 2", [], |r| r.get(0)).unwrap();
    assert_eq!(kind, "cost_decision");
    conn.execute(
        "UPDATE cost_audit SET payload_json = replace(payload_json, '\"economy\"', '\"premium\"') WHERE seq = 2",
        [],
    )
    .unwrap();
    drop(conn);
    let tampered = aiprod(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert_eq!(tampered.status.code(), Some(1));
    assert!(stderr(&tampered).contains("audit entry 2 is bad"), "{}", stderr(&tampered));
}

#[test]
fn daily_limit_refuses_new_jobs_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = test_config(dir.path());
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["financial"]["dailyLimit"] = 0.000001.into();
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, v.to_string()).unwrap();
    let aiprod = |d: &std::path::Path| {
        let mut c = aiprod(d);
        c.env("AIPROD_CONFIG", &edited);
        c
    };
    let first = aiprod(dir.path()).args(["run", BRIEF, "--duration", "5", "--tier", "economy", "-q"]).output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    // A new process reads today's spend back from the store and refuses.
    let second = aiprod(dir.path()).args(["run", BRIEF, "--duration", "5", "-q"]).output().unwrap();
    assert_eq!(second.status.code(), Some(3), "{}", stderr(&second));
    assert!(stderr(&second).contains("daily budget exhausted"), "{}", stderr(&second));
    let list = aiprod(dir.path()).args(["jobs", "list"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 1, "no job is created for a refused brief");
    let status = aiprod(dir.path()).args(["cost", "daily"]).output().unwrap();
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["level"], "refuse");
    assert_eq!(s["jobs"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ninety_percent_of_the_daily_limit_routes_to_economy_and_the_render_follows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Arc::new(SqliteStore::open(&database_path(&data)).unwrap());
    // An earlier job today that used 10 CPU-seconds.
    store
        .create_job(&NewJob {
            id: "earlier".into(),
            request: serde_json::json!({"content": BRIEF}),
            preset: None,
            brand_id: None,
            auto_approve: true,
        })
        .unwrap();
    let line = NewEvent {
        event: "rendered".into(),
        duration_ms: 10_000,
        attempt: 1,
        error: None,
        detail: Some(serde_json::json!({"cpu_ms": 10_000})),
    };
    store.append_event("earlier", &State::Init {}, &line).unwrap();
    let mut config = Config::builtin();
    let spent = 10.0 * config.pricing.table.cpu_second;
    // 85 % (above costControls.alertThreshold, 0.8) warns only.
    config.financial.daily_limit = spent / 0.85;
    let s = daily::status(store.as_ref(), &config, &config.pricing.table, chrono::Utc::now()).unwrap();
    assert_eq!(s.level, DailyLevel::Warn);
    // 95 %: new jobs take the economy tier. Also force the fast track from the route stage.
    config.financial.daily_limit = spent / 0.95;
    config.financial.force_fast_track_if_cost_exceeds = 0.000001;
    let config = Arc::new(config);
    let driver = Driver::new(config, store.clone(), data.clone()).with_ledger(store.clone());
    let request = BriefRequest {
        content: BRIEF.into(),
        duration_sec: Some(5),
        aspect_ratio: Some("16:9".into()),
        languages: None,
        preset: Some("brand_campaign".into()),
        priority: None,
        budget: None,
        brand_id: None,
        tier: Some("premium".into()),
        ..Default::default()
    };
    let job = driver.submit(&request, true).unwrap();
    let state = driver.drive(&job.id, &agents::CancelToken::new()).await.unwrap();
    assert_eq!(state, State::Delivered {});
    let routing = store.section(&job.id, Section::Routing).unwrap().unwrap().content;
    assert_eq!(routing["fast_track"], true);
    assert!(routing["reason"].as_str().unwrap().contains("forceFastTrackIfCostExceeds"), "{routing}");
    let sel = store.section(&job.id, Section::OptimizedBackendSelection).unwrap().unwrap().content;
    assert_eq!((sel["requested_tier"].as_str(), sel["tier"].as_str()), (Some("premium"), Some("economy")));
    assert!(sel["orchestration"]["decision"]["reason"].as_str().unwrap().contains("daily guard"));
    // The render followed the decision: economy is 480 px on the short side.
    let assets = store.section(&job.id, Section::GeneratedAssets).unwrap().unwrap().content;
    assert_eq!(assets["output"]["height"], 480);
    let cert = store.section(&job.id, Section::CostCertification).unwrap().unwrap().content;
    assert_eq!(cert["certificate"]["chosen_tier"], "economy");
    assert!(store.entries().unwrap().iter().any(|e| e.kind == "cost_decision"));
}

fn config_with_source(source: &str) -> Config {
    let mut c = Config::builtin();
    c.pricing.source = Some(source.into());
    c
}

fn table_json(version: &str, cpu_second: f64) -> String {
    let mut t = Config::builtin().pricing.table;
    t.version = version.into();
    t.cpu_second = cpu_second;
    serde_json::to_string(&t).unwrap()
}

#[tokio::test]
async fn pricing_refreshes_from_a_file_keeps_the_last_good_table_and_audits_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("aiprod.db")).unwrap();
    let file = dir.path().join("prices.json");
    std::fs::write(&file, table_json("file-v1", 0.01)).unwrap();
    let config = config_with_source(file.to_str().unwrap());
    let now = chrono::Utc::now();

    let o = pricing::refresh(&config, &store, dir.path(), now, false).await.unwrap();
    assert_eq!((o.version.as_str(), o.changed, o.fetched), ("file-v1", true, true));
    assert_eq!(aiprod::store::pricing_in_force(&config, Some(&store)).cpu_second, 0.01);

    // Within the interval the source is not consulted.
    std::fs::write(&file, table_json("file-v2", 0.02)).unwrap();
    let o = pricing::refresh(&config, &store, dir.path(), now + chrono::Duration::hours(1), false).await.unwrap();
    assert!(!o.fetched && !o.changed);
    // After updateIntervalHours it is.
    let later = now + chrono::Duration::hours(config.financial.dynamic_pricing.update_interval_hours as i64);
    let o = pricing::refresh(&config, &store, dir.path(), later, false).await.unwrap();
    assert_eq!((o.version.as_str(), o.changed), ("file-v2", true));

    // An invalid table is refused; the last good one stays in force.
    let mut bad: serde_json::Value = serde_json::from_str(&table_json("file-v3", 0.03)).unwrap();
    bad["cpuSecond"] = (-1.0).into();
    std::fs::write(&file, bad.to_string()).unwrap();
    let o = pricing::refresh(&config, &store, dir.path(), later, true).await.unwrap();
    assert_eq!(o.version, "file-v2");
    assert!(o.error.unwrap().contains("cpuSecond"));
    assert_eq!(aiprod::store::pricing_in_force(&config, Some(&store)).version, "file-v2");

    // Every change is in the chain, which verifies.
    let entries = store.entries().unwrap();
    assert_eq!(entries.iter().filter(|e| e.kind == "pricing_update").count(), 2);
    assert_eq!(aiprod::finance::audit::verify(&entries), Ok(2));
}

#[tokio::test]
async fn a_failing_source_with_no_good_table_falls_back_to_static() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("aiprod.db")).unwrap();
    let config = config_with_source(dir.path().join("missing.json").to_str().unwrap());
    let o = pricing::refresh(&config, &store, dir.path(), chrono::Utc::now(), false).await.unwrap();
    assert_eq!(o.version, config.pricing.table.version);
    assert!(o.changed && o.error.is_some());
    let mut strict = config.clone();
    strict.financial.dynamic_pricing.fallback_to_static = false;
    let fresh = SqliteStore::open(&dir.path().join("other.db")).unwrap();
    assert!(pricing::refresh(&strict, &fresh, &dir.path().join("x"), chrono::Utc::now(), false).await.is_err());
}

/// Serve one HTTP response on a random local port; returns the URL.
async fn serve_once(status: &'static str, body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = socket.read(&mut buf).await;
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(response.as_bytes()).await.unwrap();
        socket.shutdown().await.ok();
    });
    format!("http://{addr}/pricing.json")
}

#[tokio::test]
async fn pricing_refreshes_from_a_real_http_server() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("aiprod.db")).unwrap();
    let url = serve_once("200 OK", table_json("http-v1", 0.007)).await;
    let config = config_with_source(&url);
    let o = pricing::refresh(&config, &store, dir.path(), chrono::Utc::now(), false).await.unwrap();
    assert_eq!((o.version.as_str(), o.changed, o.error), ("http-v1", true, None));
    assert_eq!(aiprod::store::pricing_in_force(&config, Some(&store)).cpu_second, 0.007);

    // A server error keeps the last good table.
    let url = serve_once("500 Internal Server Error", "{}".into()).await;
    let config = config_with_source(&url);
    let o = pricing::refresh(&config, &store, dir.path(), chrono::Utc::now(), true).await.unwrap();
    assert_eq!(o.version, "http-v1");
    assert!(o.error.unwrap().contains("500"));
}
