//! Failure paths through the real binary: transient failures are retried per the policy and
//! then fail the job naming the stage and the last error; permanent failures are not retried.

mod common;

use common::{aiprod, stderr, test_config};

fn history(dir: &std::path::Path, id: &str) -> Vec<serde_json::Value> {
    let show = aiprod(dir).args(["jobs", "show", id]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    v["history"].as_array().unwrap().clone()
}

fn job_id(dir: &std::path::Path) -> String {
    let list = aiprod(dir).args(["jobs", "list"]).output().unwrap();
    String::from_utf8_lossy(&list.stdout).split_whitespace().next().unwrap().to_owned()
}

fn edit_config(dir: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) -> std::path::PathBuf {
    let path = test_config(dir);
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    let edited = dir.join("edited.json");
    std::fs::write(&edited, v.to_string()).unwrap();
    edited
}

#[test]
fn a_stage_that_keeps_timing_out_is_retried_then_fails_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let config = edit_config(dir.path(), |v| {
        v["orchestrator"]["retryPolicy"]["maxRetries"] = 2.into();
        v["orchestrator"]["stageTimeoutsSec"]["rendering"] = 0.05.into();
    });
    let out = aiprod(dir.path())
        .env("AIPROD_CONFIG", &config)
        .args(["run", "A calm teaser for a bakery at dawn, warm light.", "--duration", "10", "--tier", "economy", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("failed at stage 'rendering'") && err.contains("timed out"), "{err}");

    let id = job_id(dir.path());
    let h = history(dir.path(), &id);
    let retries: Vec<_> = h.iter().filter(|e| e["event"] == "retry").collect();
    assert_eq!(retries.len(), 2, "maxRetries = 2: {h:#?}");
    assert!(retries.iter().all(|r| r["error"].as_str().unwrap().contains("timed out")));
    let last = h.last().unwrap();
    assert_eq!((last["from"].as_str(), last["to"].as_str()), (Some("rendering"), Some("failed")));
    assert_eq!(last["attempt"], 3, "first attempt + 2 retries");
}

#[test]
fn a_permanent_failure_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let config = edit_config(dir.path(), |v| {
        v["render"]["fontPath"] = "/nonexistent/font.ttf".into();
    });
    let out = aiprod(dir.path())
        .env("AIPROD_CONFIG", &config)
        .args(["run", "A calm teaser for a bakery at dawn, warm light.", "--duration", "6", "--tier", "economy", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent/font.ttf"), "{}", stderr(&out));
    let h = history(dir.path(), &job_id(dir.path()));
    assert!(h.iter().all(|e| e["event"] != "retry"), "{h:#?}");
    assert_eq!(h.last().unwrap()["to"], "failed");
}
