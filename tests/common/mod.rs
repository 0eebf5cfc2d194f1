//! Helpers shared by the integration tests: a per-test config with fast retries and its own
//! log directory, the CLI binary, and ffprobe.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The compiled `aiprod` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_aiprod"))
}

/// Write a copy of the shipped config into `dir` with test-sized retry delays and logs kept
/// inside `dir`; returns its path.
pub fn test_config(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/v33.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["orchestrator"]["retryPolicy"]["backoffSec"] = 0.05.into();
    v["orchestrator"]["retryPolicy"]["maxBackoffSec"] = 0.2.into();
    v["logging"]["dir"] = dir.join("logs").to_string_lossy().into_owned().into();
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    path
}

/// An `aiprod` command using `dir` for its config, data and logs.
pub fn aiprod(dir: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env("AIPROD_CONFIG", test_config(dir))
        .env("AIPROD_DATA_DIR", dir.join("data"))
        .env_remove("AIPROD_LOG")
        .current_dir(dir);
    cmd
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// ffprobe's JSON view of a media file (streams and format).
pub fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams", "-show_format"])
        .arg(path)
        .output()
        .expect("ffprobe is installed (see .ci/run)");
    assert!(out.status.success(), "ffprobe failed on {}: {}", path.display(), stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The codec names of every stream, in order.
pub fn codecs(probe: &serde_json::Value) -> Vec<String> {
    probe["streams"].as_array().unwrap().iter().map(|s| s["codec_name"].as_str().unwrap_or("").to_owned()).collect()
}
