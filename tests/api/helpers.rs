//! `spawn_app()`: the real server on 127.0.0.1:0 with a fresh SQLite store in a temporary
//! directory, three API keys (admin, editor, viewer), and small HTTP helpers.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aiprod::api::auth::{Role, create_key};
use aiprod::config::Config;
use aiprod::store::SqliteStore;
use aiprod::store::database_path;
use serde_json::Value;

/// A running test server.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Admin, editor, viewer and ops keys.
    pub admin: String,
    pub editor: String,
    pub viewer: String,
    pub ops: String,
    /// The HTTP client (no proxy).
    pub client: reqwest::Client,
    /// The server, to shut down.
    pub running: Option<aiprod::api::Running>,
    /// The data directory (kept alive for the test's duration).
    pub dir: Arc<tempfile::TempDir>,
    /// The configuration the server runs with.
    pub config: Config,
}

/// A test configuration: fast retries, logs and data in `dir`, one worker, port 0.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::builtin();
    c.storage.data_dir = dir.join("data");
    c.logging.dir = dir.join("logs");
    c.orchestrator.retry_policy.backoff_sec = 0.05;
    c.orchestrator.retry_policy.max_backoff_sec = 0.2;
    c.service.bind = "127.0.0.1:0".into();
    c.service.workers = 1;
    c.service.shutdown_grace_sec = 20.0;
    // Tests poll every 50 ms; the rate-limit test sets its own, tighter limit.
    c.service.rate_limit.default = aiprod::config::RateLimit { per_minute: 60_000.0, burst: 1_000.0 };
    c
}

/// Start a server with the test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Start a server after `tweak` adjusts the test configuration.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(dir.path());
    tweak(&mut config);
    start_in(dir, config, "127.0.0.1:0").await
}

/// Start a server listening on `bind` (e.g. `0.0.0.0:0`, a public bind); `base` still
/// reaches it through 127.0.0.1.
pub async fn spawn_app_bound(bind: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(dir.path());
    tweak(&mut config);
    start_in(dir, config, bind).await
}

async fn start_in(dir: Arc<tempfile::TempDir>, config: Config, bind: &str) -> TestApp {
    let store = SqliteStore::open(&database_path(&config.storage.data_dir)).unwrap();
    let key = |name: &str, role| create_key(&store, name, role).unwrap();
    let keys = Keys {
        admin: key("admin", Role::Admin),
        editor: key("editor", Role::Editor),
        viewer: key("viewer", Role::Viewer),
        ops: key("ops", Role::Ops),
    };
    drop(store);
    serve(dir, config, keys, bind).await
}

struct Keys {
    admin: String,
    editor: String,
    viewer: String,
    ops: String,
}

/// Start a new server on a stopped one's directory, configuration and keys.
pub async fn restart(prev: &TestApp) -> TestApp {
    let keys = Keys {
        admin: prev.admin.clone(),
        editor: prev.editor.clone(),
        viewer: prev.viewer.clone(),
        ops: prev.ops.clone(),
    };
    serve(prev.dir.clone(), prev.config.clone(), keys, "127.0.0.1:0").await
}

async fn serve(dir: Arc<tempfile::TempDir>, config: Config, keys: Keys, bind: &str) -> TestApp {
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let running = aiprod::api::start(Arc::new(config.clone()), listener).await.unwrap();
    TestApp {
        base: format!("http://127.0.0.1:{}", running.addr.port()),
        admin: keys.admin,
        editor: keys.editor,
        viewer: keys.viewer,
        ops: keys.ops,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        running: Some(running),
        dir,
        config,
    }
}

/// An answer: status, headers and the body as JSON (Null when empty or not JSON).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
}

impl TestApp {
    /// Send a request with `key` and an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, key: &str, body: Option<&Value>) -> Answer {
        self.call_with(method, path, key, body.map(|b| serde_json::to_vec(b).unwrap()), &[]).await
    }

    /// Send raw bytes with extra headers.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if !key.is_empty() {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap().to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, headers, body, bytes }
    }

    /// Submit a brief as the editor; panics unless 202.
    pub async fn submit(&self, body: Value) -> String {
        let a = self.call("POST", "/v1/pipeline/run", &self.editor, Some(&body)).await;
        assert_eq!(a.status, 202, "{}", a.body);
        a.body["job_id"].as_str().unwrap().to_owned()
    }

    /// Poll the job until its state is one of `states` (or it ends); returns the view.
    pub async fn wait_for(&self, id: &str, states: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let a = self.call("GET", &format!("/v1/jobs/{id}"), &self.viewer, None).await;
            assert_eq!(a.status, 200, "{}", a.body);
            let state = a.body["state"].as_str().unwrap().to_owned();
            if states.contains(&state.as_str()) {
                return a.body;
            }
            assert!(
                !a.body["terminal"].as_bool().unwrap(),
                "job ended in {state} while waiting for {states:?}: {}",
                a.body
            );
            assert!(Instant::now() < deadline, "job stuck in {state} while waiting for {states:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Shut down gracefully and wait.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown.trigger();
            r.done.await.unwrap().unwrap();
        }
    }
}

/// A short, cheap brief.
pub fn small_brief(preset: &str) -> Value {
    serde_json::json!({
        "content": "A calm teaser for a neighbourhood bakery: fresh bread at dawn, warm light.",
        "preset": preset,
        "duration_sec": 6,
        "tier": "economy",
        "aspect_ratio": "16:9",
    })
}
