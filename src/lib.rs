//! aiprod: a local-first pipeline that turns a short text brief into a finished,
//! quality-checked, subtitled video.
//!
//! Module map (see ARCHITECTURE.md for the bird's-eye view):
//! - [`config`]: typed `config/v33.json`, validated at start-up.
//! - [`sanitize`]: the InputSanitizer; cleans and checks a brief into a [`sanitize::SanitizedInput`].
pub mod config;
pub mod sanitize;
