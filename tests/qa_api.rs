//! `POST /v1/qa/technical` and `POST /v1/qa/semantic` on the real server: a delivered job's
//! own video passes, a damaged copy of it uploaded as the body is rejected with the failing
//! checks named, and bad requests get the JSON error shape naming the field.

#[path = "api/helpers.rs"]
mod helpers;

use helpers::{small_brief, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_file_is_judged_against_a_jobs_plan() {
    let mut app = spawn_app().await;
    let id = app.submit(small_brief("quick_social")).await;
    app.wait_for(&id, &["delivered", "awaiting_review"]).await;
    let video = app.dir.path().join("data/jobs").join(&id).join("video.mp4");
    let bytes = std::fs::read(&video).unwrap();
    let mp4 = [("content-type", "video/mp4")];

    // The job's own video, stored or uploaded: the technical gate passes and no perception
    // check finds a defect.
    let a = app.call_with("POST", &format!("/v1/qa/semantic?job_id={id}"), &app.editor, None, &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["outcome"]["file"], "video.mp4");
    let up =
        app.call_with("POST", &format!("/v1/qa/semantic?job_id={id}"), &app.editor, Some(bytes.clone()), &mp4).await;
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(up.body["outcome"]["file"], "upload.mp4", "the server's paths stay private");
    for answer in [&a, &up] {
        assert_eq!(answer.body["outcome"]["technical"]["passed"], true, "{}", answer.body);
        let checks = answer.body["outcome"]["semantic"]["checks"].as_array().unwrap();
        assert!(checks.iter().all(|c| c["status"] != "failed"), "{checks:?}");
        assert!(checks.iter().any(|c| c["name"] == "caption_readback" && c["status"] == "passed"), "{checks:?}");
    }

    // A copy cut to 40 %: the technical gate fails it on duration and frames, and so does
    // the whole verdict.
    let cut = bytes[..bytes.len() * 2 / 5].to_vec();
    let t = app.call_with("POST", &format!("/v1/qa/technical?job_id={id}"), &app.editor, Some(cut.clone()), &mp4).await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.body["passed"], false, "{}", t.body);
    let s = app.call_with("POST", &format!("/v1/qa/semantic?job_id={id}"), &app.editor, Some(cut), &mp4).await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.body["approved"], false, "{}", s.body);
    // The uploads are not kept.
    let uploads = app.dir.path().join("data/qa-uploads");
    assert_eq!(std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0), 0);

    // Bad requests: the field is named; an unknown job is 404; a viewer may not run QA.
    let missing = app.call_with("POST", "/v1/qa/technical", &app.editor, Some(bytes.clone()), &mp4).await;
    assert_eq!(missing.status, 422, "{}", missing.body);
    assert_eq!(missing.body["error"]["field"], "job_id", "{}", missing.body);
    let unknown = app
        .call_with("POST", "/v1/qa/technical?job_id=7c1d1c9e-2f7a-4f5e-9a39-0c3b1f9e2d11", &app.editor, None, &[])
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let viewer = app.call_with("POST", &format!("/v1/qa/technical?job_id={id}"), &app.viewer, None, &[]).await;
    assert_eq!(viewer.status, 403, "{}", viewer.body);
    app.stop().await;
}
