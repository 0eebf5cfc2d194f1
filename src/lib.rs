//! aiprod: a local-first pipeline that turns a short text brief into a finished,
//! quality-checked, subtitled video.
//!
//! Module map (see ARCHITECTURE.md for the bird's-eye view):
//! - [`config`]: typed `config/v33.json`, validated at start-up.
//! - [`sanitize`]: the InputSanitizer; cleans and checks a brief into a [`sanitize::SanitizedInput`].
//! - [`pipeline`]: the pure state machine, the retry policy, the stages and the driver.
//! - [`store`]: the `Store` trait and its SQLite implementation (jobs, history, memory).
//! - [`artifacts`]: where finished files live for every node (the data directory, a shared
//!   directory, S3-compatible object storage), behind the `ArtifactStore` trait.
//! - [`memory`]: the job memory sections of v33's memorySchema.
//! - [`finance`]: pricing, the calibrated cost model, tier routing, certificates, audit trail,
//!   daily budget.
//! - [`qa_gate`]: the TechnicalQaGate; probes a produced MP4 with FFmpeg and scores it.
//! - [`telemetry`]: console and size-rotated file logging.
//! - [`app`]: use cases (submit, quote, resume, pricing refresh) shared by the CLI and the API.
//! - [`api`]: `aiprod serve`: the REST API, workers, webhooks and the ICC web client.
//! - [`cli`]: the `aiprod` commands (the binary only parses arguments).
pub mod api;
pub mod app;
pub mod artifacts;
pub mod cli;
pub mod config;
pub mod finance;
pub mod memory;
pub mod pipeline;
pub mod qa_gate;
pub mod sanitize;
pub mod store;
pub mod telemetry;
