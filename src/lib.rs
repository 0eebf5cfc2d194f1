//! aiprod: a local-first pipeline that turns a short text brief into a finished,
//! quality-checked, subtitled video.
//!
//! Module map (see ARCHITECTURE.md for the bird's-eye view):
//! - [`config`]: typed `config/v33.json`, validated at start-up.
pub mod config;
pub mod finance;
pub mod memory;
pub mod pipeline;
pub mod store;
