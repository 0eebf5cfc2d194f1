//! Crash recovery with the real binary: SIGKILL `aiprod run` while it renders, then
//! `aiprod resume` finishes the job from its last committed state — every completed stage
//! exactly once, the resume visible in the history, the video delivered once.

mod common;

use std::time::{Duration, Instant};

use common::{aiprod, codecs, ffprobe, stderr};
use rusqlite::{Connection, OpenFlags};

fn job_state(db: &std::path::Path) -> Option<(String, String)> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.query_row("SELECT id, state FROM jobs LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))).ok()
}

#[test]
fn sigkill_during_rendering_then_resume_delivers_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/aiprod.db");
    let mut child = aiprod(dir.path())
        .args([
            "run",
            "A quiet poem about an old lighthouse keeper's last night. Cold blue palette. The light goes out.",
            "--duration",
            "20",
            "--tier",
            "economy",
            "--quiet",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // Wait until the job is rendering and the encoder has written part of the video (its
    // `.video.mp4.partial` has bytes), then kill the process without any chance to clean up.
    let deadline = Instant::now() + Duration::from_secs(120);
    let job_id = loop {
        assert!(Instant::now() < deadline, "the job never reached rendering");
        assert!(child.try_wait().unwrap().is_none(), "aiprod run exited before it could be killed");
        if let Some((id, state)) = job_state(&db)
            && state == "rendering"
        {
            break id;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let partial = dir.path().join("data/jobs").join(&job_id).join(".video.mp4.partial");
    loop {
        assert!(Instant::now() < deadline, "the renderer never wrote {}", partial.display());
        assert!(child.try_wait().unwrap().is_none(), "aiprod run exited before it could be killed");
        if std::fs::metadata(&partial).is_ok_and(|m| m.len() > 0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert_eq!(job_state(&db).unwrap().1, "rendering", "the kill must land mid-render for this test to mean anything");

    let out = aiprod(dir.path()).arg("resume").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{job_id} delivered")));

    let show = aiprod(dir.path()).args(["jobs", "show", &job_id]).output().unwrap();
    let job: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let events: Vec<(String, String, String)> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (h["from"].as_str().unwrap().into(), h["to"].as_str().unwrap().into(), h["event"].as_str().unwrap().into())
        })
        .collect();
    let count = |name: &str| events.iter().filter(|e| e.2 == name).count();
    for stage_event in ["input_accepted", "routed", "planned", "translated", "costed", "rendered", "delivery_packed"] {
        assert_eq!(count(stage_event), 1, "{stage_event} must be committed exactly once: {events:?}");
    }
    let resumed = events.iter().position(|e| e.2 == "resumed").expect("the history shows the resume");
    assert_eq!(events[resumed].0, "rendering", "resumed at the last committed state");
    let rendered = events.iter().position(|e| e.2 == "rendered").unwrap();
    assert!(resumed < rendered, "rendering completed only after the resume: {events:?}");
    assert_eq!(events.iter().filter(|e| e.1 == "delivered").count(), 1);
    assert_eq!(job["job"]["state"]["Delivered"], serde_json::json!({}));

    let video = dir.path().join("data/jobs").join(&job_id).join("video.mp4");
    assert_eq!(codecs(&ffprobe(&video)), ["h264", "aac", "mov_text"]);
    let files = job["memory"]["delivery_manifest"]["content"]["files"].as_array().unwrap();
    for f in files {
        let p = f["path"].as_str().unwrap();
        assert!(!p.contains("tmp") && !p.contains("partial"), "leftover from the killed render delivered: {p}");
    }
}
