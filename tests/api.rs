//! The service against the real server on port 0, with a fresh SQLite store per test and
//! real renders (economy tier, 6 s), so every answer is one the pipeline really produced.

#[path = "api/helpers.rs"]
mod helpers;

use std::time::Duration;

use helpers::{TestApp, restart, small_brief, spawn_app, spawn_app_with};
use serde_json::{Value, json};

fn error_of(a: &helpers::Answer) -> (&str, Option<&str>) {
    (a.body["error"]["code"].as_str().unwrap_or(""), a.body["error"]["field"].as_str())
}

async fn plan_review_job(app: &TestApp) -> String {
    let id = app.submit(small_brief("brand_campaign")).await;
    app.wait_for(&id, &["plan_review"]).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brand_campaign_lifecycle_with_review_edit_range_and_artifacts() {
    let mut app = spawn_app().await;
    let a = app.call("POST", "/v1/pipeline/run", &app.editor, Some(&small_brief("brand_campaign"))).await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["cost_estimate"]["tier"], "economy");
    assert!(a.body["cost_estimate"]["estimate"].as_f64().unwrap() > 0.0);
    assert_eq!(a.body["links"]["video"], format!("/v1/jobs/{}/video", a.body["job_id"].as_str().unwrap()));
    let id = a.body["job_id"].as_str().unwrap().to_owned();

    // brand_campaign asks for plan review: the job pauses there and nothing renders.
    let view = app.wait_for(&id, &["plan_review"]).await;
    assert_eq!(view["awaiting_human"], true);
    assert_eq!(view["phase"], "AGENTS");
    assert!(view["stage_durations_ms"]["planning"].is_u64());
    assert!(!app.dir.path().join(format!("data/jobs/{id}/video.mp4")).exists());

    // The memory view has an ETag; the same tag answers 304.
    let m = app.call("GET", &format!("/v1/jobs/{id}/memory"), &app.viewer, None).await;
    assert_eq!(m.status, 200);
    assert_eq!(m.body["editable"], true);
    let etag = m.headers["etag"].to_str().unwrap().to_owned();
    let again =
        app.call_with("GET", &format!("/v1/jobs/{id}/memory"), &app.viewer, None, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.bytes.is_empty());
    let scenes = m.body["sections"]["production_manifest"]["content"]["scenes"].as_array().unwrap().len();
    assert!(scenes >= 1);

    // Invalid edits name the field; a valid caption edit becomes version 2 by "editor".
    let bad = app
        .call("PATCH", &format!("/v1/jobs/{id}/manifest"), &app.editor, Some(&json!({"scenes": [{"caption": ""}]})))
        .await;
    assert_eq!((bad.status, error_of(&bad).1), (422, Some("scenes[0].caption")));
    let bad = app
        .call("PATCH", &format!("/v1/jobs/{id}/manifest"), &app.editor, Some(&json!({"scenes": [{"camera": "crane"}]})))
        .await;
    assert_eq!((bad.status, error_of(&bad).1), (422, Some("scenes[0].camera")));
    let edit = json!({"scenes": [{"caption": "Edited during review", "narration": "Edited during review."}]});
    let ok = app.call("PATCH", &format!("/v1/jobs/{id}/manifest"), &app.editor, Some(&edit)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["version"], 2);
    assert_eq!(ok.body["changed_fields"], json!(["scenes[0].caption", "scenes[0].narration"]));
    let changed =
        app.call_with("GET", &format!("/v1/jobs/{id}/memory"), &app.viewer, None, &[("if-none-match", &etag)]).await;
    assert_eq!(changed.status, 200, "an edit changes the ETag");
    let versions = app.call("GET", &format!("/v1/jobs/{id}/manifest/versions"), &app.viewer, None).await;
    let v = versions.body.as_array().unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!((v[0]["author"].as_str(), v[0]["human"].as_bool()), (Some("stage:planning"), Some(false)));
    assert_eq!((v[1]["author"].as_str(), v[1]["human"].as_bool()), (Some("editor"), Some(true)));
    assert_eq!(v[1]["changed_fields"], json!(["scenes[0].caption", "scenes[0].narration"]));

    // Comments thread per section.
    let c = app
        .call(
            "POST",
            &format!("/v1/jobs/{id}/memory/production_manifest/comments"),
            &app.editor,
            Some(&json!({"body": "Warmer?"})),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    let reply = json!({"body": "Done.", "parent_id": c.body["id"]});
    let r =
        app.call("POST", &format!("/v1/jobs/{id}/memory/production_manifest/comments"), &app.admin, Some(&reply)).await;
    assert_eq!(r.status, 201);
    let thread =
        app.call("GET", &format!("/v1/jobs/{id}/memory/production_manifest/comments"), &app.viewer, None).await;
    assert_eq!(thread.body.as_array().unwrap().len(), 2);
    assert_eq!(thread.body[1]["parent_id"], c.body["id"]);

    // Approve → render → QA → delivered; the edited caption is what was rendered.
    let ap = app.call("POST", &format!("/v1/jobs/{id}/approve"), &app.editor, None).await;
    assert_eq!((ap.status, ap.body["state"].as_str()), (200, Some("voicing")), "{}", ap.body);
    let again = app.call("POST", &format!("/v1/jobs/{id}/approve"), &app.editor, None).await;
    assert_eq!(again.status, 409, "approve is not accepted outside review");
    let done = app.wait_for(&id, &["delivered", "awaiting_review"]).await;
    if done["state"] == "awaiting_review" {
        // The supervisor escalated: a human verdict finishes the job.
        let ap = app.call("POST", &format!("/v1/jobs/{id}/approve"), &app.admin, None).await;
        assert_eq!(ap.status, 200);
        app.wait_for(&id, &["delivered"]).await;
    }
    let vtt = app.call("GET", &format!("/v1/jobs/{id}/artifacts/subtitles.en.vtt"), &app.viewer, None).await;
    assert_eq!(vtt.status, 200);
    assert!(String::from_utf8_lossy(&vtt.bytes).contains("Edited during review"));
    let history = app.call("GET", &format!("/v1/jobs/{id}"), &app.viewer, None).await.body["history"].clone();
    let approve = history.as_array().unwrap().iter().find(|h| h["event"] == "approve").unwrap();
    assert_eq!(approve["detail"]["author"], "editor");

    // The video with HTTP Range.
    let full = app.call("GET", &format!("/v1/jobs/{id}/video"), &app.viewer, None).await;
    assert_eq!(full.status, 200);
    assert_eq!(&full.bytes[4..8], b"ftyp");
    let part =
        app.call_with("GET", &format!("/v1/jobs/{id}/video"), &app.viewer, None, &[("range", "bytes=0-99")]).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes.len(), 100);
    assert_eq!(part.headers["content-range"].to_str().unwrap(), format!("bytes 0-99/{}", full.bytes.len()));
    let beyond = format!("bytes={}-", full.bytes.len() + 10);
    let none = app.call_with("GET", &format!("/v1/jobs/{id}/video"), &app.viewer, None, &[("range", &beyond)]).await;
    assert_eq!(none.status, 416);
    let by_query = app.call("GET", &format!("/v1/jobs/{id}/video?access_token={}", app.viewer), "", None).await;
    assert_eq!(by_query.status, 401, "an API key in the URL no longer authenticates");

    // Signed links open the media without a key, and only the file they name.
    let links = app.call("GET", &format!("/v1/jobs/{id}/links"), &app.viewer, None).await;
    assert_eq!(links.status, 200, "{}", links.body);
    let video_link = links.body["video"].as_str().unwrap().to_owned();
    assert!(!video_link.contains(&app.viewer) && video_link.contains("&by=viewer&sig="), "{video_link}");
    let by_link = app.call("GET", &video_link, "", None).await;
    assert_eq!((by_link.status, by_link.bytes.len()), (200, full.bytes.len()));
    let ranged = app.call_with("GET", &video_link, "", None, &[("range", "bytes=0-99")]).await;
    assert_eq!(ranged.status, 206, "a <video> seeks through the link");
    let en = links.body["subtitles"].as_array().unwrap().iter().find(|t| t["lang"] == "en").unwrap().clone();
    let vtt_by_link = app.call("GET", en["url"].as_str().unwrap(), "", None).await;
    assert_eq!(vtt_by_link.status, 200);
    assert!(String::from_utf8_lossy(&vtt_by_link.bytes).starts_with("WEBVTT"));
    assert!(links.body["poster"].as_str().unwrap().contains("/artifacts/keyframes/"), "{}", links.body);
    let query = video_link.split_once('?').unwrap().1;
    let moved = app.call("GET", &format!("/v1/jobs/{id}/artifacts/preview.mp4?{query}"), "", None).await;
    assert_eq!(moved.status, 401, "a video link does not open another file");
    let tampered = video_link.replace("&sig=", "&sig=00");
    assert_eq!(app.call("GET", &tampered, "", None).await.status, 401);
    let later = video_link.replace("?exp=", "?exp=9");
    assert_eq!(app.call("GET", &later, "", None).await.status, 401, "the expiry is signed");
    let write = app.call("POST", &video_link.replace("/video?", "/cancel?"), "", None).await;
    assert_eq!(write.status, 401, "a link authorises no write");
    let list = app.call("GET", "/v1/jobs", &app.viewer, None).await;
    let thumb = list.body["jobs"][0]["thumbnail"].as_str().unwrap().to_owned();
    let png = app.call("GET", &thumb, "", None).await;
    assert_eq!((png.status, &png.bytes[1..4]), (200, &b"PNG"[..]), "the list's thumbnail opens without a key");

    // Artifacts, and no way out of the job directory.
    let kf = app.call("GET", &format!("/v1/jobs/{id}/artifacts/keyframes/scene_01.png"), &app.viewer, None).await;
    assert_eq!((kf.status, &kf.bytes[1..4]), (200, &b"PNG"[..]));
    let preview = app.call("GET", &format!("/v1/jobs/{id}/artifacts/preview.mp4"), &app.viewer, None).await;
    assert_eq!(preview.status, 200);
    for bad in ["..%2F..%2Faiprod.db", "keyframes/..%2F..%2F..%2Faiprod.db", "aiprod.db", "%2Fetc%2Fpasswd"] {
        let a = app.call("GET", &format!("/v1/jobs/{id}/artifacts/{bad}"), &app.viewer, None).await;
        assert_eq!(a.status, 404, "{bad}");
    }

    // Terminal jobs cannot be cancelled or edited.
    let c = app.call("POST", &format!("/v1/jobs/{id}/cancel"), &app.editor, None).await;
    assert_eq!((c.status, error_of(&c).0), (409, "conflict"));
    let e = app.call("PATCH", &format!("/v1/jobs/{id}/manifest"), &app.editor, Some(&edit)).await;
    assert_eq!(e.status, 409);

    // Metrics and alerts come from what was recorded.
    let metrics = app.call("GET", "/metrics", "", None).await;
    let text = String::from_utf8_lossy(&metrics.bytes);
    assert!(text.contains("aiprod_jobs{state=\"delivered\"} 1"), "{text}");
    assert!(text.contains("aiprod_stage_duration_seconds_count{stage=\"rendering\"} 1"), "{text}");
    assert!(text.contains("aiprod_semantic_qa_score_count 1"), "{text}");
    assert!(text.contains("aiprod_cache_lookups_total{kind=\"request\",result=\"miss\"}"), "{text}");
    let alerts = app.call("GET", "/v1/alerts", &app.viewer, None).await;
    assert_eq!(alerts.body["basis"]["costed_jobs"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_changes_with_edits_replans_keeping_the_human_manifest_and_reject_fails() {
    let mut app = spawn_app().await;
    let id = plan_review_job(&app).await;
    let body = json!({"edits": {"title": "Reviewed title", "scenes": [{"caption": "Kept through replanning"}]},
                      "comment": "tighter title"});
    let r = app.call("POST", &format!("/v1/jobs/{id}/request-changes"), &app.editor, Some(&body)).await;
    assert_eq!((r.status, r.body["state"].as_str()), (200, Some("planning")), "{}", r.body);
    let view = app.wait_for(&id, &["plan_review"]).await;
    let planned: Vec<&Value> = view["history"].as_array().unwrap().iter().filter(|h| h["event"] == "planned").collect();
    assert_eq!(planned.len(), 2);
    assert_eq!(planned[1]["detail"]["kept_human_manifest"]["author"], "editor");
    let m = app.call("GET", &format!("/v1/jobs/{id}/memory"), &app.viewer, None).await;
    let manifest = &m.body["sections"]["production_manifest"];
    assert_eq!(manifest["author"], "editor");
    assert_eq!(manifest["content"]["title"], "Reviewed title");
    assert_eq!(m.body["comments"][0]["body"], "tighter title");

    let rj =
        app.call("POST", &format!("/v1/jobs/{id}/reject"), &app.editor, Some(&json!({"reason": "off brand"}))).await;
    assert_eq!((rj.status, rj.body["state"].as_str()), (200, Some("failed")));
    let view = app.call("GET", &format!("/v1/jobs/{id}"), &app.viewer, None).await.body;
    assert_eq!(view["failed_stage"], "plan_review");
    assert!(view["error"].as_str().unwrap().contains("off brand"));
    assert_eq!(app.call("POST", &format!("/v1/jobs/{id}/reject"), &app.editor, None).await.status, 409);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_social_runs_through_and_streams_events() {
    let mut app = spawn_app().await;
    let id = app.submit(small_brief("quick_social")).await;
    let resp =
        app.client.get(format!("{}/v1/jobs/{id}/events", app.base)).bearer_auth(&app.viewer).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut resp = resp;
    let mut text = String::new();
    let read = async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(180), read).await.expect("the stream ends when the job ends");
    assert!(text.starts_with("event: snapshot"), "{text}");
    assert!(text.contains("event: progress"), "rendering reports progress: {text}");
    assert!(text.contains("\"state\":\"rendering\""), "{text}");
    assert!(!text.contains("plan_review"), "quick_social has no plan review");
    let last = text.lines().rfind(|l| l.starts_with("data:")).unwrap();
    let last: Value = serde_json::from_str(&last[5..]).unwrap();
    assert!(matches!(last["state"].as_str(), Some("delivered" | "awaiting_review")), "{last}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_right_codes() {
    let mut app = spawn_app_with(|c| c.input_sanitizer.max_body_bytes = 4096).await;
    let run = |body: Vec<u8>| app.call_with("POST", "/v1/pipeline/run", &app.editor, Some(body), &[]);
    let a = run(b"{\"content\": ".to_vec()).await;
    assert_eq!((a.status, error_of(&a).0), (400, "malformed_json"));
    let a =
        run(serde_json::to_vec(&json!({"content": "A fine brief for a video.", "duration_sec": 1000})).unwrap()).await;
    assert_eq!((a.status, error_of(&a)), (422, ("validation_failed", Some("duration_sec"))));
    assert_eq!(a.body["error"]["rule"], "range");
    let a = run(serde_json::to_vec(&json!({"content": "A fine brief for a video.", "colour": "red"})).unwrap()).await;
    assert_eq!((a.status, error_of(&a).1), (422, Some("colour")));
    let a = run(serde_json::to_vec(&json!({"content": 12})).unwrap()).await;
    assert_eq!((a.status, error_of(&a).1), (422, Some("content")));
    let big = serde_json::to_vec(&json!({"content": "x".repeat(5000)})).unwrap();
    let a = run(big).await;
    assert_eq!((a.status, error_of(&a).0), (413, "body_too_large"));
    let hook = json!({"content": "A fine brief for a video.", "callback_url": "http://127.0.0.1:9/hook"});
    let a = run(serde_json::to_vec(&hook).unwrap()).await;
    assert_eq!((a.status, error_of(&a).1), (422, Some("callback_url")), "loopback callbacks are refused by default");
    let a =
        run(serde_json::to_vec(&json!({"content": "A fine brief.", "callback_url": "file:///etc/passwd"})).unwrap())
            .await;
    assert_eq!((a.status, error_of(&a).1), (422, Some("callback_url")));

    // Auth and roles.
    let a = app.call("GET", "/v1/jobs", "", None).await;
    assert_eq!((a.status, error_of(&a).0), (401, "unauthorized"));
    let a = app.call("GET", "/v1/jobs", "aip_wrong", None).await;
    assert_eq!(a.status, 401);
    let a = app.call("POST", "/v1/pipeline/run", &app.viewer, Some(&small_brief("quick_social"))).await;
    assert_eq!((a.status, error_of(&a).0), (403, "forbidden"));
    let a = app.call("POST", "/v1/cost-estimate", &app.viewer, Some(&small_brief("premium_spot"))).await;
    assert_eq!(a.status, 200, "estimating changes nothing: {}", a.body);
    assert_eq!(a.body["tier"], "economy");
    assert_eq!(app.call("GET", "/v1/jobs", &app.viewer, None).await.status, 200);

    // Unknown jobs and filters.
    let missing = "00000000-0000-4000-8000-000000000000";
    assert_eq!(app.call("GET", &format!("/v1/jobs/{missing}"), &app.viewer, None).await.status, 404);
    assert_eq!(app.call("GET", "/v1/jobs/not-a-uuid", &app.viewer, None).await.status, 404);
    let a = app.call("GET", "/v1/jobs?state=sleeping", &app.viewer, None).await;
    assert_eq!((a.status, error_of(&a).1), (422, Some("state")));
    let a = app.call("GET", "/v1/jobs?limit=0", &app.viewer, None).await;
    assert_eq!((a.status, error_of(&a).1), (422, Some("limit")));

    // Nothing invalid created a job.
    assert_eq!(app.call("GET", "/v1/jobs", &app.viewer, None).await.body["jobs"], json!([]));

    // Ops on a fresh server: healthy, no alerts, presets, OpenAPI.
    let h = app.call("GET", "/health", "", None).await;
    assert_eq!((h.status, h.body["store"]["ok"].as_bool()), (200, Some(true)));
    assert_eq!(h.body["models_loaded"], json!([]));
    // The default artifact store is the job's working directory, under this test's data dir.
    let location = h.body["artifacts"]["location"].as_str().expect("the artifact store is named");
    assert!(
        location.contains("{job}") && location.starts_with(&app.config.storage.data_dir.display().to_string()),
        "{location}"
    );
    assert_eq!(h.body["artifacts"]["working_dir"], true);
    let al = app.call("GET", "/v1/alerts", &app.viewer, None).await;
    assert_eq!(al.body["alerts"], json!([]));
    let p = app.call("GET", "/v1/presets", &app.viewer, None).await;
    assert_eq!(p.body["presets"]["brand_campaign"]["plan_review"], true);
    assert_eq!(p.body["presets"]["quick_social"]["plan_review"], false);
    let spec = app.call("GET", "/docs/openapi.json", "", None).await;
    assert!(spec.body["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/v1/pipeline/run", "/v1/jobs/{id}", "/v1/jobs/{id}/manifest", "/v1/jobs/{id}/events"] {
        assert!(spec.body["paths"][path].is_object(), "{path} missing from the spec");
    }
    let page = app.call("GET", "/docs", "", None).await;
    assert!(String::from_utf8_lossy(&page.bytes).contains("/docs/openapi.json"));
    let index = app.call("GET", "/", "", None).await;
    assert!(String::from_utf8_lossy(&index.bytes).contains("/app.js"));
    let deep = app.call("GET", "/jobs/0b7c5d0e-8a43-4f7e-9d0a-1f2e3d4c5b6a", "", None).await;
    assert_eq!((deep.status, deep.bytes.as_slice()), (200, index.bytes.as_slice()), "a job URL is the same page");
    assert!(spec.body["paths"]["/v1/jobs/{id}/links"].is_object(), "the links operation is documented");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_return_the_same_job_or_conflict() {
    let mut app = spawn_app().await;
    let body = serde_json::to_vec(&small_brief("brand_campaign")).unwrap();
    let h = [("idempotency-key", "order-42")];
    let first = app.call_with("POST", "/v1/pipeline/run", &app.editor, Some(body.clone()), &h).await;
    let second = app.call_with("POST", "/v1/pipeline/run", &app.editor, Some(body), &h).await;
    assert_eq!((first.status, second.status), (202, 202));
    assert_eq!(first.body["job_id"], second.body["job_id"]);
    let other = serde_json::to_vec(&json!({"content": "Something else entirely, please."})).unwrap();
    let third = app.call_with("POST", "/v1/pipeline/run", &app.editor, Some(other), &h).await;
    assert_eq!((third.status, error_of(&third).0), (409, "idempotency_key_reused"));
    let jobs = app.call("GET", "/v1/jobs", &app.viewer, None).await;
    assert_eq!(jobs.body["jobs"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_full_queue_answer_429_with_retry_after() {
    let mut app = spawn_app_with(|c| {
        c.service.rate_limit.per_key.insert("viewer".into(), aiprod::config::RateLimit { per_minute: 1.0, burst: 3.0 });
        c.service.max_queued_jobs = 1;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.call("GET", "/v1/presets", &app.viewer, None).await.status, 200);
    }
    let limited = app.call("GET", "/v1/presets", &app.viewer, None).await;
    assert_eq!((limited.status, error_of(&limited).0), (429, "rate_limited"));
    let wait: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(app.call("GET", "/v1/presets", &app.editor, None).await.status, 200, "limits are per key");

    // One worker, a queue of one: the third quick submission finds the queue full.
    let mut codes = Vec::new();
    for _ in 0..3 {
        let a = app.call("POST", "/v1/pipeline/run", &app.editor, Some(&small_brief("quick_social"))).await;
        if a.status == 429 {
            assert_eq!(error_of(&a).0, "queue_full");
            assert!(a.headers.contains_key("retry-after"));
        }
        codes.push(a.status);
    }
    assert_eq!(codes[0], 202);
    assert!(codes.contains(&429), "{codes:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_list_filters_and_pages() {
    let mut app = spawn_app().await;
    let a = app.submit(small_brief("brand_campaign")).await;
    let mut b_body = small_brief("brand_campaign");
    b_body["brand_id"] = "acme".into();
    let b = app.submit(b_body).await;
    let c = app.submit(small_brief("brand_campaign")).await;
    let page1 = app.call("GET", "/v1/jobs?limit=2", &app.viewer, None).await.body;
    let ids: Vec<&str> = page1["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [c.as_str(), b.as_str()], "newest first");
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = app.call("GET", &format!("/v1/jobs?limit=2&cursor={cursor}"), &app.viewer, None).await.body;
    assert_eq!(page2["jobs"][0]["id"], a.as_str());
    assert!(page2["next_cursor"].is_null());
    let acme = app.call("GET", "/v1/jobs?brand=acme", &app.viewer, None).await.body;
    assert_eq!(acme["jobs"].as_array().unwrap().len(), 1);
    let none = app.call("GET", "/v1/jobs?preset=quick_social", &app.viewer, None).await.body;
    assert_eq!(none["jobs"], json!([]));
    for id in [&a, &b, &c] {
        app.wait_for(id, &["plan_review"]).await;
    }
    let review = app.call("GET", "/v1/jobs?state=plan_review", &app.viewer, None).await.body;
    assert_eq!(review["jobs"].as_array().unwrap().len(), 3);
    // Cancelling a job waiting for review ends it.
    let x = app.call("POST", &format!("/v1/jobs/{a}/cancel"), &app.editor, None).await;
    assert_eq!((x.status, x.body["state"].as_str()), (200, Some("cancelled")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_delivered_once_signed() {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let h2 = hits.clone();
    // The receiver fails the first attempt, so the retry path runs too.
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let hits = h2.clone();
            async move {
                if hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                tx.send((headers, body)).unwrap();
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let mut app = spawn_app_with(|c| {
        c.service.webhooks.allow_private = true;
        c.service.webhooks.backoff_ms = 50;
    })
    .await;
    let mut body = small_brief("quick_social");
    body["callback_url"] = format!("http://{hook_addr}/hook").into();
    let a = app.call("POST", "/v1/pipeline/run", &app.editor, Some(&body)).await;
    assert_eq!(a.status, 202, "{}", a.body);
    let secret = a.body["webhook_secret"].as_str().unwrap().to_owned();
    let id = a.body["job_id"].as_str().unwrap().to_owned();
    let (headers, payload) = tokio::time::timeout(Duration::from_secs(180), rx.recv()).await.unwrap().unwrap();
    let sig = headers["x-aiprod-signature"].to_str().unwrap();
    assert_eq!(sig, aiprod::api::webhook::sign(&secret, &payload));
    assert_ne!(sig, aiprod::api::webhook::sign("another secret", &payload));
    let v: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(v["job_id"], id.as_str());
    assert!(matches!(v["state"].as_str(), Some("delivered" | "failed")), "{v}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2, "one failed attempt, one retry");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_interrupts_a_render_and_the_next_start_resumes_it() {
    let mut app = spawn_app().await;
    let mut body = small_brief("quick_social");
    body["duration_sec"] = 30.into();
    body["tier"] = "standard".into();
    let id = app.submit(body).await;
    app.wait_for(&id, &["rendering"]).await;
    // Stop once the encoder has written part of the video, so the shutdown lands mid-render.
    let partial = app.config.storage.data_dir.join("jobs").join(&id).join(".video.mp4.partial");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !std::fs::metadata(&partial).is_ok_and(|m| m.len() > 0) {
        assert!(std::time::Instant::now() < deadline, "the renderer never wrote {}", partial.display());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.stop().await;
    let config = app.config.clone();
    let store = aiprod::store::SqliteStore::open(&aiprod::store::database_path(&config.storage.data_dir)).unwrap();
    use aiprod::store::Store;
    let job = store.job(&id).unwrap();
    assert_eq!(job.state.name(), "rendering", "a shutdown does not end the job");
    let history = store.history(&id).unwrap();
    assert_eq!(history.last().unwrap().event, "interrupted");
    drop(store);

    let mut app = restart(&app).await;
    let view = app.wait_for(&id, &["delivered", "awaiting_review"]).await;
    let events: Vec<&str> = view["history"].as_array().unwrap().iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert!(events.contains(&"resumed"), "{events:?}");
    assert_eq!(events.iter().filter(|e| **e == "rendered").count(), 1, "{events:?}");
    app.stop().await;
}
