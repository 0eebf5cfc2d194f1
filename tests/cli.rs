//! The CLI end to end: bad input is refused with the field named, and a real brief becomes a
//! real, probed MP4 with keyframes, preview and subtitles.

mod common;

use common::{aiprod, codecs, ffprobe, stderr};

fn run_fails_naming(args: &[&str], field: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = aiprod(dir.path()).arg("run").args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(field), "{args:?}: expected '{field}' in: {err}");
    // Nothing was stored for a refused brief.
    let list = aiprod(dir.path()).args(["jobs", "list"]).output().unwrap();
    assert!(list.stdout.is_empty(), "a job was created for invalid input");
}

#[test]
fn empty_brief_is_refused() {
    run_fails_naming(&[""], "content");
}

#[test]
fn duration_out_of_range_is_refused() {
    run_fails_naming(&["A calm teaser for a bakery at dawn.", "--duration", "1000"], "duration_sec");
}

#[test]
fn unknown_language_is_refused() {
    run_fails_naming(&["A calm teaser for a bakery at dawn.", "--lang", "en,xx"], "languages[1]");
}

#[test]
fn unsupported_aspect_ratio_is_refused() {
    run_fails_naming(&["A calm teaser for a bakery at dawn.", "--aspect", "7:3"], "aspect_ratio");
}

#[test]
fn broken_config_fails_fast_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    let mut v: serde_json::Value = serde_json::from_str(include_str!("../config/v33.json")).unwrap();
    v["fastTrack"]["maxScenes"] = "three".into();
    std::fs::write(&bad, v.to_string()).unwrap();
    let out = aiprod(dir.path()).args(["config", "check"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("fastTrack.maxScenes"), "{}", stderr(&out));
    let ok = aiprod(dir.path()).args(["config", "check", "config.json"]).output().unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));
}

#[test]
fn a_brief_becomes_a_checked_subtitled_video() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = aiprod(dir.path())
        .args([
            "run",
            BAKERY,
            "--duration",
            "8",
            "--aspect",
            "9:16",
            "--tier",
            "economy",
            "--lang",
            "en,fr",
            "--json",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["state"], "delivered");
    let path: Vec<&str> = summary["path"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(path.first(), Some(&"init"));
    assert_eq!(path.last(), Some(&"delivered"));
    assert!(path.contains(&"technical_qa") && path.contains(&"semantic_qa") && path.contains(&"supervising"));
    assert!(summary["planner"].as_str().unwrap().starts_with("planner"), "{}", summary["planner"]);
    // French subtitles cannot be produced without a translation model, and the summary says so.
    let fr = summary["subtitles"].as_array().unwrap().iter().find(|l| l["lang"] == "fr").unwrap();
    assert_eq!(fr["status"], "unavailable");

    let video = out_dir.join("video.mp4");
    let probe = ffprobe(&video);
    let codecs = codecs(&probe);
    assert_eq!(codecs, ["h264", "aac", "mov_text"], "{probe}");
    let v = &probe["streams"][0];
    // Economy tier: short side 480; 9:16 → 480 × 852.
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(480), Some(852)));
    let duration: f64 = probe["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - 8.0).abs() <= 2.0, "duration {duration}");
    assert!(out_dir.join("preview.mp4").exists());
    assert!(out_dir.join("subtitles.en.vtt").exists());
    assert!(!out_dir.join("subtitles.fr.vtt").exists(), "no invented translation");
    let keyframes = std::fs::read_dir(out_dir.join("keyframes")).unwrap().count();
    assert!((1..=3).contains(&keyframes), "{keyframes} keyframes");

    // The identical request again: the delivered job's artifacts come back, no new job runs.
    let jobs = || std::fs::read_dir(dir.path().join("data/jobs")).unwrap().count();
    let again_dir = dir.path().join("again");
    let args = ["run", BAKERY, "--duration", "8", "--aspect", "9:16", "--tier", "economy", "--lang", "en,fr", "--json"];
    let again = aiprod(dir.path()).args(args).arg("--out").arg(&again_dir).output().unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let reused: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!((&reused["job_id"], &reused["state"]), (&summary["job_id"], &summary["state"]));
    assert_eq!(std::fs::read(again_dir.join("video.mp4")).unwrap(), std::fs::read(&video).unwrap());
    assert_eq!(jobs(), 1);
    // Another option is another request; --fresh runs every stage anyway.
    let fresh = aiprod(dir.path()).args(args).arg("--fresh").output().unwrap();
    assert!(fresh.status.success(), "{}", stderr(&fresh));
    let fresh: serde_json::Value = serde_json::from_slice(&fresh.stdout).unwrap();
    assert_ne!(fresh["job_id"], summary["job_id"]);
    assert_eq!(jobs(), 2);
}

const BAKERY: &str =
    "A calm teaser for a neighbourhood bakery: fresh bread at dawn, warm light, the shop opening its doors.";
