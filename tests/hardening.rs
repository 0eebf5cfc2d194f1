//! Regression tests for the hardening pass, against the real server on port 0: every error
//! answer is JSON, idempotency keys are printable ASCII and make one job, invisible or
//! oversized input is refused, nothing unsafe is echoed, and a reused delivery still calls
//! back.

#[path = "common/mod.rs"]
mod common;
#[path = "api/helpers.rs"]
mod helpers;

use std::time::Duration;

use helpers::{TestApp, small_brief, spawn_app, spawn_app_with};
use serde_json::{Value, json};

fn code_of(a: &helpers::Answer) -> &str {
    a.body["error"]["code"].as_str().unwrap_or("")
}

/// The answer is the JSON error shape with a code and a message.
fn assert_json_error(a: &helpers::Answer, status: u16, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", String::from_utf8_lossy(&a.bytes));
    let ct = a.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(ct.starts_with("application/json"), "{what}: content-type {ct:?}");
    assert!(!code_of(a).is_empty(), "{what}: no error code in {}", a.body);
    assert!(a.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {}", a.body);
}

async fn job_count(app: &TestApp) -> usize {
    app.call("GET", "/v1/jobs?limit=100", &app.viewer, None).await.body["jobs"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_answer_is_json() {
    let mut app = spawn_app_with(|c| c.input_sanitizer.max_body_bytes = 1024).await;
    let id = "00000000-0000-4000-8000-000000000000";
    let big = serde_json::to_vec(&json!({"content": "x".repeat(2000)})).unwrap();
    // Bodies over the limit, on every route that takes one.
    for (method, path) in [
        ("POST", "/v1/cost-estimate".to_owned()),
        ("PATCH", format!("/v1/jobs/{id}/manifest")),
        ("POST", format!("/v1/jobs/{id}/memory/production_manifest/comments")),
        ("POST", format!("/v1/jobs/{id}/reject")),
        ("POST", "/v1/pipeline/run".to_owned()),
    ] {
        let a = app.call_with(method, &path, &app.admin, Some(big.clone()), &[]).await;
        assert_json_error(&a, 413, &format!("{method} {path}"));
        assert_eq!(code_of(&a), "body_too_large");
    }
    // Query strings that do not parse.
    for q in ["limit=-1", "limit=abc", "limit=1e23", "limit=1&limit=2"] {
        let a = app.call("GET", &format!("/v1/jobs?{q}"), &app.viewer, None).await;
        assert_json_error(&a, 422, q);
        assert_eq!(a.body["error"]["field"], "limit", "{q}: {}", a.body);
    }
    // A path segment that is not UTF-8.
    let a = app.call("GET", "/v1/jobs/%c0%ae%c0%ae/artifacts/x", &app.viewer, None).await;
    assert_json_error(&a, 400, "non-UTF-8 path");
    // Wrong method: 405 with Allow, as JSON.
    let a = app.call("DELETE", "/v1/jobs", &app.admin, None).await;
    assert_json_error(&a, 405, "DELETE /v1/jobs");
    assert!(a.headers.contains_key("allow"));
    // Unknown routes.
    let a = app.call("GET", "/nowhere", "", None).await;
    assert_json_error(&a, 404, "unknown route");
    let a = app.call("GET", "/v1/nowhere", &app.viewer, None).await;
    assert_json_error(&a, 404, "unknown /v1 route");
    // Trailing data after the JSON value is refused and creates nothing.
    let mut body = serde_json::to_vec(&small_brief("quick_social")).unwrap();
    body.extend_from_slice(b"xx");
    let a = app.call_with("POST", "/v1/pipeline/run", &app.editor, Some(body), &[]).await;
    assert_json_error(&a, 400, "trailing data");
    assert_eq!(code_of(&a), "malformed_json");
    assert_eq!(job_count(&app).await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_printable_ascii_and_concurrent_duplicates_make_one_job() {
    let mut app = spawn_app_with(|c| c.service.workers = 0).await;
    let body = serde_json::to_vec(&small_brief("brand_campaign")).unwrap();
    // reqwest refuses to send non-ASCII header text, so the bytes go in raw.
    let raw = reqwest::header::HeaderValue::from_bytes("commande-été-42".as_bytes()).unwrap();
    let resp = app
        .client
        .post(format!("{}/v1/pipeline/run", app.base))
        .header("authorization", format!("Bearer {}", app.editor))
        .header("content-type", "application/json")
        .header("idempotency-key", raw)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(v["error"]["field"], "Idempotency-Key", "{v}");
    assert_eq!(job_count(&app).await, 0, "a refused key creates nothing");

    // Ten parallel submissions with one key: one job row, every answer names it.
    let calls = (0..10).map(|_| {
        let body = body.clone();
        let app = &app;
        async move {
            app.call_with("POST", "/v1/pipeline/run", &app.editor, Some(body), &[("idempotency-key", "order-7")]).await
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let first = answers[0].body["job_id"].clone();
    for a in &answers {
        assert_eq!(a.status, 202, "{}", a.body);
        assert_eq!(a.body["job_id"], first);
    }
    assert_eq!(job_count(&app).await, 1, "exactly one job row, no cancelled extras");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_briefs_huge_language_lists_and_unsafe_characters_are_refused_or_cleaned() {
    let mut app = spawn_app_with(|c| c.service.workers = 0).await;
    let run = |body: Value| {
        app.call_with("POST", "/v1/pipeline/run", &app.editor, Some(serde_json::to_vec(&body).unwrap()), &[])
    };
    let invisible = "\u{3164}\u{115F}\u{200D}\u{200C}\u{AD}\u{2800}\u{FE0F}\u{34F}".repeat(8);
    let a = run(json!({"content": invisible})).await;
    assert_eq!((a.status, a.body["error"]["field"].as_str()), (422, Some("content")), "{}", a.body);
    let many: Vec<&str> = std::iter::repeat_n("en", 10_000).collect();
    let a = run(json!({"content": "A calm teaser for a bakery at dawn.", "languages": many})).await;
    assert_eq!((a.status, a.body["error"]["field"].as_str()), (422, Some("languages")), "{}", a.body);
    assert_eq!(job_count(&app).await, 0);

    let id = app.submit(json!({"content": "Fresh\u{0} bread \u{202E}at dawn\u{202C}, warm light."})).await;
    let list = app.call("GET", "/v1/jobs", &app.viewer, None).await;
    let brief = list.body["jobs"][0]["brief"].as_str().unwrap();
    assert_eq!(brief, "Fresh bread at dawn, warm light.");
    use aiprod::store::Store;
    let store = aiprod::store::SqliteStore::open(&aiprod::store::database_path(&app.config.storage.data_dir)).unwrap();
    assert_eq!(store.job(&id).unwrap().request["content"], "Fresh bread at dawn, warm light.", "stored clean");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_delivery_still_calls_back() {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                tx.send((headers, body)).unwrap();
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let mut app = spawn_app_with(|c| c.service.webhooks.allow_private = true).await;
    let id = app.submit(small_brief("quick_social")).await;
    app.wait_for(&id, &["delivered"]).await;
    let mut again = small_brief("quick_social");
    again["callback_url"] = hook.into();
    let a = app.call("POST", "/v1/pipeline/run", &app.editor, Some(&again)).await;
    assert_eq!((a.status, a.body["reused"].as_bool()), (200, Some(true)), "{}", a.body);
    assert_eq!(a.body["job_id"], id.as_str());
    let secret = a.body["webhook_secret"].as_str().expect("the reused answer carries a webhook secret").to_owned();
    let (headers, payload) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.unwrap().unwrap();
    assert_eq!(headers["x-aiprod-signature"].to_str().unwrap(), aiprod::api::webhook::sign(&secret, &payload));
    let v: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!((v["job_id"].as_str(), v["state"].as_str()), (Some(id.as_str()), Some("delivered")), "{v}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_to_non_global_addresses_are_refused_at_submission() {
    let mut app = spawn_app_with(|c| c.service.workers = 0).await;
    for host in ["192.0.2.1", "[::7f00:1]", "[64:ff9b::a9fe:a9fe]", "[2002:7f00:1::]", "198.18.0.1", "192.0.0.170"] {
        let mut body = small_brief("quick_social");
        body["callback_url"] = format!("http://{host}/hook").into();
        let a = app.call("POST", "/v1/pipeline/run", &app.editor, Some(&body)).await;
        assert_eq!((a.status, a.body["error"]["rule"].as_str()), (422, Some("allowed_values")), "{host}: {}", a.body);
    }
    assert_eq!(job_count(&app).await, 0);
    app.stop().await;
}

/// Read until the server closes the connection; `None` if it is still open after `guard`
/// (a generous bound: the server's own deadlines in these tests are one second).
async fn closed_within(stream: &mut tokio::net::TcpStream, guard: Duration) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(guard, read_all).await.ok()?;
    Some(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_slow_bodies_and_idle_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let mut app = spawn_app_with(|c| {
        c.service.header_timeout_sec = 1.0;
        c.service.body_timeout_sec = 1.0;
        c.service.workers = 0;
    })
    .await;
    // The server closes idle connections after a second: no pooled connection to reuse.
    app.client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().unwrap();
    let addr = app.base.trim_start_matches("http://").to_owned();
    let guard = Duration::from_secs(30);

    // Slowloris: twenty connections that send part of their headers and stop.
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"POST /v1/pipeline/run HTTP/1.1\r\nHost: x\r\nX-Slow: 1").await.unwrap();
        slow.push(s);
    }
    for s in &mut slow {
        assert!(closed_within(s, guard).await.is_some(), "a connection with unfinished headers was kept open");
    }

    // A body shorter than its Content-Length: answered with an error, then closed.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/pipeline/run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"content\":",
        app.editor
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = closed_within(&mut s, guard).await.expect("a request with a stalled body was kept open");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    assert_eq!(job_count(&app).await, 0);

    // An idle keep-alive connection after a complete request.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = closed_within(&mut s, guard).await.expect("an idle keep-alive connection was kept open");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));

    // The server still answers normally.
    assert_eq!(app.call("GET", "/v1/presets", &app.viewer, None).await.status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_throttled_per_client_address() {
    let mut app = spawn_app_with(|c| {
        c.service.failed_auth_per_minute = 5;
        c.service.workers = 0;
    })
    .await;
    for i in 0..5 {
        let a = app.call("GET", "/v1/jobs", &format!("aip_guess{i}"), None).await;
        assert_eq!(a.status, 401, "{}", a.body);
    }
    for key in ["aip_guess5", app.viewer.as_str()] {
        let a = app.call("GET", "/v1/jobs", key, None).await;
        assert_eq!((a.status, code_of(&a)), (429, "auth_throttled"), "{}", a.body);
        let wait: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_endpoints_need_an_ops_key_on_a_public_bind() {
    let mut app = helpers::spawn_app_bound("0.0.0.0:0", |c| c.service.workers = 0).await;
    let h = app.call("GET", "/health", "", None).await;
    assert_eq!((h.status, h.body.clone()), (200, json!({"status": "alive"})), "liveness only, nothing more");
    let m = app.call("GET", "/metrics", "", None).await;
    assert_eq!((m.status, code_of(&m)), (401, "unauthorized"));
    let m = app.call("GET", "/metrics", &app.viewer, None).await;
    assert_eq!((m.status, code_of(&m)), (403, "forbidden"));
    let m = app.call("GET", "/metrics", &app.ops, None).await;
    assert_eq!(m.status, 200);
    assert!(String::from_utf8_lossy(&m.bytes).contains("aiprod_jobs"));
    let h = app.call("GET", "/health", &app.admin, None).await;
    assert_eq!(h.body["store"]["ok"], true, "{}", h.body);
    app.stop().await;

    let mut open = helpers::spawn_app_bound("0.0.0.0:0", |c| {
        c.service.workers = 0;
        c.service.public_ops = true;
    })
    .await;
    assert_eq!(open.call("GET", "/metrics", "", None).await.status, 200, "service.publicOps opens them");
    assert_eq!(open.call("GET", "/health", "", None).await.body["store"]["ok"], true);
    open.stop().await;
}

/// `aiprod resume` on the data directory of a server that is rendering a job: the CLI
/// leaves the job to its live owner, the server delivers it once, and the delivered files
/// are the ones the delivery manifest hashes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_while_the_server_renders_leaves_the_job_to_the_server() {
    use aiprod::memory::Section;
    use aiprod::store::Store;
    use sha2::{Digest, Sha256};
    let mut app = spawn_app().await;
    let mut body = small_brief("quick_social");
    body["duration_sec"] = 20.into();
    let id = app.submit(body).await;
    app.wait_for(&id, &["rendering"]).await;
    let dir = app.dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || common::aiprod(&dir).arg("resume").output().unwrap()).await.unwrap();
    let stderr = common::stderr(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("job {id} is driven by a running process")), "{stderr}");
    app.wait_for(&id, &["delivered"]).await;

    let store = aiprod::store::SqliteStore::open(&aiprod::store::database_path(&app.config.storage.data_dir)).unwrap();
    let history: Vec<String> = store.history(&id).unwrap().into_iter().map(|e| e.event).collect();
    assert!(!history.iter().any(|e| e == "resumed"), "{history:?}");
    let manifest = store.section(&id, Section::DeliveryManifest).unwrap().expect("a delivery manifest");
    let job_dir = app.config.storage.data_dir.join("jobs").join(&id);
    let files = manifest.content["files"].as_array().unwrap();
    assert!(files.iter().any(|f| f["path"] == "video.mp4"));
    for f in files {
        let path = job_dir.join(f["path"].as_str().unwrap());
        let hash = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
        assert_eq!(hash, f["sha256"].as_str().unwrap(), "{} changed after delivery", path.display());
    }
    app.stop().await;
}

/// The spec carries the limits as schema and documents the error answers, so a generator
/// or fuzzer can build requests the server accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_spec_states_limits_and_error_answers() {
    let mut app = spawn_app_with(|c| c.service.workers = 0).await;
    let spec = app.call("GET", "/docs/openapi.json", "", None).await.body;
    let submit = &spec["components"]["schemas"]["SubmitRequest"]["properties"];
    assert_eq!(
        (submit["content"]["minLength"].as_u64(), submit["content"]["maxLength"].as_u64()),
        (Some(10), Some(10_000))
    );
    assert_eq!(submit["duration_sec"]["minimum"], 5);
    assert!(submit["aspect_ratio"]["enum"].as_array().unwrap().contains(&json!("16:9")));
    assert!(submit["preset"]["enum"].as_array().unwrap().contains(&json!("quick_social")));
    assert!(submit["priority"]["enum"].as_array().unwrap().contains(&json!("high")));
    assert_eq!(submit["languages"]["maxItems"], 9);
    assert!(submit["languages"]["items"]["enum"].as_array().unwrap().contains(&json!("fr")));
    let brief = &spec["components"]["schemas"]["BriefRequest"]["properties"];
    assert_eq!(brief["content"]["maxLength"], 10_000);
    let list = spec["paths"]["/v1/jobs"]["get"]["parameters"].as_array().unwrap();
    let limit = list.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!((limit["schema"]["minimum"].as_u64(), limit["schema"]["maximum"].as_u64()), (Some(1), Some(100)));
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let codes = op["responses"].as_object().unwrap();
            if path.starts_with("/v1/") {
                for code in ["401", "429"] {
                    assert!(codes.contains_key(code), "{method} {path} documents no {code}");
                }
            }
            if method != "get" && path.starts_with("/v1/") {
                assert!(codes.contains_key("403"), "{method} {path} documents no 403");
            }
            if op.get("requestBody").is_some() {
                for code in ["400", "413", "422"] {
                    assert!(codes.contains_key(code), "{method} {path} documents no {code}");
                }
            }
            if path.contains("{id}") {
                assert!(codes.contains_key("404"), "{method} {path} documents no 404");
            }
        }
    }
    // The server accepts what the schema describes at its bounds.
    let edge = json!({"content": "x".repeat(10), "duration_sec": 5, "aspect_ratio": "1:1", "languages": ["fr"],
        "preset": "quick_social", "priority": "high", "tier": "economy", "voice": "espeak-ng"});
    let a = app.call("POST", "/v1/cost-estimate", &app.viewer, Some(&edge)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    app.stop().await;
}

/// The briefs that took minutes and gigabytes to plan: the director gets them capped, and
/// the plan's metadata says what was cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs models"]
async fn pathological_briefs_reach_the_planner_capped() {
    use aiprod::memory::Section;
    use aiprod::store::Store;
    let mut app = spawn_app().await;
    let briefs = [format!("Spring sale {}", "😀".repeat(9000)), format!("Spring sale {}", "!".repeat(5000))];
    for content in briefs {
        let body = json!({"content": content, "duration_sec": 10, "preset": "brand_campaign", "tier": "economy",
                          "fresh": true});
        let id = app.submit(body).await;
        app.wait_for(&id, &["plan_review"]).await;
        let store =
            aiprod::store::SqliteStore::open(&aiprod::store::database_path(&app.config.storage.data_dir)).unwrap();
        let plan = store.section(&id, Section::ProductionManifest).unwrap().expect("a manifest");
        let cap = &plan.metadata.as_ref().expect("plan metadata")["planning_brief"];
        assert!(cap["collapsed_chars"].as_u64().unwrap() > 4000, "{cap}");
        assert!(cap["estimated_tokens"].as_u64().unwrap() <= aiprod::pipeline::brief_cap::TOKEN_BUDGET as u64);
        // Two words are nothing a model could write scenes from without inventing: the
        // planner writes the plan at once, and says why.
        let meta = plan.metadata.as_ref().unwrap();
        let note = meta["note"].as_str().unwrap_or_default();
        assert!(note.contains("too little for the creative director"), "{note}");
        assert_eq!(meta["model_used"], "planner", "{meta}");
    }
    app.stop().await;
}

/// A cursor is a position in the list, and the spec says what one looks like: the
/// `next_cursor` of a page continues the list, and any value of the published shape — one
/// no page ended on, as a generator builds from the pattern — is a position too (the jobs
/// created before it), not an error. Values of another shape are refused as the cursor's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_cursor_of_the_published_shape_is_a_position_in_the_list() {
    let mut app = spawn_app_with(|c| c.service.workers = 0).await;
    let spec = app.call("GET", "/docs/openapi.json", "", None).await.body;
    let params = spec["paths"]["/v1/jobs"]["get"]["parameters"].as_array().unwrap();
    let cursor = &params.iter().find(|p| p["name"] == "cursor").expect("a cursor parameter")["schema"];
    let len = cursor["maxLength"].as_u64().expect("a cursor has a fixed length") as usize;
    assert_eq!(cursor["minLength"].as_u64(), Some(len as u64), "{cursor}");
    assert!(cursor["pattern"].as_str().is_some_and(|p| p.starts_with('^')), "{cursor}");
    for n in 0..3 {
        let mut b = small_brief("quick_social");
        b["content"] = format!("A calm teaser for bakery number {n}: fresh bread at dawn.").into();
        app.submit(b).await;
    }
    let first = app.call("GET", "/v1/jobs?limit=2", &app.viewer, None).await;
    let next = first.body["next_cursor"].as_str().expect("a second page").to_owned();
    assert_eq!(next.len(), len, "{next}");
    let rest = app.call("GET", &format!("/v1/jobs?limit=2&cursor={next}"), &app.viewer, None).await;
    assert_eq!((rest.status, rest.body["jobs"].as_array().map(Vec::len)), (200, Some(1)), "{}", rest.body);
    // Made-up positions of the published shape: after everything, before everything.
    for (made_up, jobs) in [
        ("9999-12-31T23:59:59.999999Z_ffffffff-ffff-ffff-ffff-ffffffffffff", 3),
        ("0000-00-00T00:00:00.000000Z_00000000-0000-0000-0000-000000000000", 0),
    ] {
        assert_eq!(made_up.len(), len);
        let a = app.call("GET", &format!("/v1/jobs?cursor={made_up}"), &app.viewer, None).await;
        assert_eq!((a.status, a.body["jobs"].as_array().map(Vec::len)), (200, Some(jobs)), "{made_up}: {}", a.body);
    }
    let (longer, upper) = (format!("{next}0"), next.to_uppercase());
    for bad in ["abc", "00", longer.as_str(), upper.as_str()] {
        let a = app.call("GET", &format!("/v1/jobs?cursor={bad}"), &app.viewer, None).await;
        assert_json_error(&a, 422, bad);
        assert_eq!(a.body["error"]["field"], "cursor", "{bad}: {}", a.body);
    }
    app.stop().await;
}

/// The duration cap that depends on the preset is in the spec: one shape per cap, naming
/// its presets (the default one also without a preset). The server accepts each shape's
/// maximum and refuses one second more, so the spec and the server agree at every edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_states_each_presets_duration_cap() {
    let mut app = spawn_app_with(|c| c.service.workers = 0).await;
    let spec = app.call("GET", "/docs/openapi.json", "", None).await.body;
    for schema in ["SubmitRequest", "BriefRequest"] {
        let shapes =
            spec["components"]["schemas"][schema]["anyOf"].as_array().unwrap_or_else(|| panic!("{schema}: no anyOf"));
        let mut named = Vec::new();
        let mut without_preset = 0;
        for shape in shapes {
            let cap = shape["properties"]["duration_sec"]["maximum"].as_u64().expect("a maximum");
            for preset in shape["properties"]["preset"]["enum"].as_array().unwrap() {
                let mut body = json!({"content": "A calm teaser for a neighbourhood bakery.", "duration_sec": cap});
                if preset.is_null() {
                    without_preset += 1;
                } else {
                    body["preset"] = preset.clone();
                    named.push(preset.as_str().unwrap().to_owned());
                }
                let ok = app.call("POST", "/v1/cost-estimate", &app.viewer, Some(&body)).await;
                assert_eq!(ok.status, 200, "{schema} {body}: {}", ok.body);
                body["duration_sec"] = (cap + 1).into();
                let over = app.call("POST", "/v1/cost-estimate", &app.viewer, Some(&body)).await;
                assert_json_error(&over, 422, &format!("{schema} {body}"));
                assert_eq!(over.body["error"]["field"], "duration_sec");
            }
        }
        // A whole number written with a fraction part is the same integer to JSON Schema.
        let body = json!({"content": "A calm teaser for a neighbourhood bakery.", "duration_sec": 27.0});
        let a = app.call("POST", "/v1/cost-estimate", &app.viewer, Some(&body)).await;
        assert_eq!(a.status, 200, "{schema} {body}: {}", a.body);
        let body = json!({"content": "A calm teaser for a neighbourhood bakery.", "duration_sec": 27.5});
        assert_json_error(&app.call("POST", "/v1/cost-estimate", &app.viewer, Some(&body)).await, 422, "27.5 s");
        named.sort();
        assert_eq!(named, ["brand_campaign", "premium_spot", "quick_social"], "{schema}: every preset once");
        assert_eq!(without_preset, 1, "{schema}: the default preset's shape also covers no preset");
    }
    let mut body = small_brief("quick_social");
    body["duration_sec"] = json!(27.0);
    app.submit(body).await;
    app.stop().await;
}

/// A callback host that does not resolve now is not a malformed request: the job is
/// accepted, and the delivery attempt (which resolves and checks the address it connects
/// to) fails and is journaled. `.invalid` never resolves (RFC 6761).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_host_that_does_not_resolve_yet_is_accepted_and_fails_at_delivery() {
    let mut app = spawn_app_with(|c| {
        c.service.workers = 0;
        c.service.webhooks.max_attempts = 1;
    })
    .await;
    let mut body = small_brief("quick_social");
    body["callback_url"] = "https://hooks.example.invalid/aiprod".into();
    let a = app.call("POST", "/v1/pipeline/run", &app.editor, Some(&body)).await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert!(a.body["webhook_secret"].is_string(), "{}", a.body);
    let id = a.body["job_id"].as_str().unwrap().to_owned();
    let c = app.call("POST", &format!("/v1/jobs/{id}/cancel"), &app.editor, None).await;
    assert_eq!(c.status, 200, "{}", c.body);
    let db = rusqlite::Connection::open(aiprod::store::database_path(&app.config.storage.data_dir)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let error: String = loop {
        let row = db.query_row(
            "SELECT error FROM webhook_deliveries WHERE job_id = ?1 AND state = 'cancelled'",
            [&id],
            |r| r.get::<_, Option<String>>(0),
        );
        if let Ok(e) = row {
            break e.expect("the attempt failed");
        }
        assert!(std::time::Instant::now() < deadline, "no webhook attempt journaled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(error.contains("cannot resolve"), "{error}");
    // Longer than the spec's maxLength: refused, nothing created.
    let spec = app.call("GET", "/docs/openapi.json", "", None).await.body;
    let max =
        spec["components"]["schemas"]["SubmitRequest"]["properties"]["callback_url"]["maxLength"].as_u64().unwrap();
    body["callback_url"] = format!("https://{}.invalid/", "a".repeat(max as usize)).into();
    let a = app.call("POST", "/v1/pipeline/run", &app.editor, Some(&body)).await;
    assert_json_error(&a, 422, "a callback URL over maxLength");
    assert_eq!(a.body["error"]["rule"], "max_length", "{}", a.body);
    assert_eq!(job_count(&app).await, 1);
    app.stop().await;
}

/// Each event of the stream, read as an event-stream client reads it (`event` and `data`
/// fields), fits the spec's schema for one event: a known kind, and `data` a JSON JobEvent
/// with every required field, no undocumented one, and the same kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_streamed_event_fits_the_spec() {
    let mut app = spawn_app_with(|c| c.service.workers = 0).await;
    let spec = app.call("GET", "/docs/openapi.json", "", None).await.body;
    let item =
        &spec["paths"]["/v1/jobs/{id}/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"];
    let required: Vec<&str> =
        item["required"].as_array().expect("an event schema").iter().map(|r| r.as_str().unwrap()).collect();
    let kinds = item["properties"]["event"]["enum"].as_array().expect("the kinds");
    let data = &item["properties"]["data"];
    assert_eq!((data["type"].as_str(), data["contentMediaType"].as_str()), (Some("string"), Some("application/json")));
    assert_eq!(data["contentSchema"]["$ref"], "#/components/schemas/JobEvent");
    let job_event = &spec["components"]["schemas"]["JobEvent"];

    let id = app.submit(small_brief("quick_social")).await;
    // The answer's head comes once the stream is subscribed; the cancellation is then its
    // second event, and the last.
    let resp =
        app.client.get(format!("{}/v1/jobs/{id}/events", app.base)).bearer_auth(&app.viewer).send().await.unwrap();
    let c = app.call("POST", &format!("/v1/jobs/{id}/cancel"), &app.editor, None).await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = tokio::time::timeout(Duration::from_secs(30), resp.text()).await.expect("the stream ends").unwrap();
    let mut seen = Vec::new();
    for block in text.split("\n\n").filter(|b| b.lines().any(|l| l.starts_with("data:"))) {
        let mut fields = serde_json::Map::new();
        for line in block.lines().filter(|l| !l.starts_with(':')) {
            let (k, v) = line.split_once(':').unwrap_or((line, ""));
            fields.insert(k.to_owned(), v.strip_prefix(' ').unwrap_or(v).into());
        }
        for r in &required {
            assert!(fields.contains_key(*r), "event without {r}: {block}");
        }
        assert!(kinds.contains(&fields["event"]), "unknown kind: {block}");
        let payload: Value = serde_json::from_str(fields["data"].as_str().unwrap()).expect("data is JSON");
        for r in job_event["required"].as_array().unwrap() {
            assert!(payload.get(r.as_str().unwrap()).is_some(), "data without {r}: {payload}");
        }
        for k in payload.as_object().unwrap().keys() {
            assert!(job_event["properties"].get(k).is_some(), "undocumented field {k}: {payload}");
        }
        assert_eq!(payload["kind"], fields["event"]);
        assert!(job_event["properties"]["kind"]["enum"].as_array().unwrap().contains(&payload["kind"]));
        seen.push(payload["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.first().map(String::as_str), Some("snapshot"), "{text}");
    assert!(seen.iter().any(|k| k == "state"), "{text}");
    app.stop().await;
}
