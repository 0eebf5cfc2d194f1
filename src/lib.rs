//! aiprod: a local-first pipeline that turns a short text brief into a finished,
//! quality-checked, subtitled video.
//!
//! Module map (see ARCHITECTURE.md for the bird's-eye view):
//! - [`config`]: typed `config/v33.json`, validated at start-up.
//! - [`qa_gate`]: the technical QA gate; probes a rendered MP4 against its plan.
pub mod config;
pub mod qa_gate;
