//! Logging: tracing to the console and to a size-rotated log file (`logs/aiprod.log`, rotated
//! at `logging.maxBytes` keeping `logging.backups` files). tracing-appender only rotates by
//! time, so rotation by size uses file-rotate.

use std::sync::Mutex;

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::Logging;

/// Open the rotating log file described by `logging`.
pub fn rotating_file(logging: &Logging) -> std::io::Result<FileRotate<AppendCount>> {
    std::fs::create_dir_all(&logging.dir)?;
    Ok(FileRotate::new(
        logging.dir.join(&logging.file),
        AppendCount::new(logging.backups),
        ContentLimit::BytesSurpassed(logging.max_bytes),
        Compression::None,
        None,
    ))
}

/// Install the global subscriber: `console_level` on stderr (overridable with `AIPROD_LOG`),
/// `info` and above in the rotating file. Returns an error only if the log directory cannot
/// be created; a second call is a no-op.
pub fn init(logging: &Logging, console_level: &str) -> std::io::Result<()> {
    let file = rotating_file(logging)?;
    let console_filter = EnvFilter::try_from_env("AIPROD_LOG").unwrap_or_else(|_| EnvFilter::new(console_level));
    let console =
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false).with_filter(console_filter);
    let file_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(Mutex::new(file).with_max_level(tracing::Level::INFO))
        .with_target(false);
    let _ = tracing_subscriber::registry().with(console).with(file_layer).try_init();
    Ok(())
}

use tracing_subscriber::Layer as _;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn log_file_rotates_by_size_and_keeps_backups() {
        let dir = tempfile::tempdir().unwrap();
        let logging = Logging { dir: dir.path().to_path_buf(), file: "t.log".into(), max_bytes: 1024, backups: 2 };
        let mut f = rotating_file(&logging).unwrap();
        for i in 0..100 {
            writeln!(f, "line {i:04} {}", "x".repeat(80)).unwrap();
        }
        f.flush().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["t.log", "t.log.1", "t.log.2"]);
        assert!(std::fs::metadata(dir.path().join("t.log.1")).unwrap().len() <= 1024 + 100);
    }
}
