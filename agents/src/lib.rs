//! Agents of the aiprod pipeline.
//!
//! Each agent turns typed input from a job's memory into typed output for it, and reports
//! what ran in [`AgentMetadata`]. Agents never touch the store or HTTP: the driver in the
//! main crate owns all IO around them, which keeps every agent testable on its own.
//!
//! Module map:
//! - [`agent`]: the [`Agent`] trait, its context (seed, cancellation, progress) and errors.
//! - [`domain`]: the production manifest, consistency markers and render plan types that
//!   flow between agents.
//! - [`models`]: local model files, lazy shared loading (embedder, LLM), preparation.
//! - [`director`]: the CreativeDirector (local LLM → production manifest, best-of-N).
//! - [`planner`]: the deterministic FastTrack planner (brief → production manifest).
//! - [`script`]: brief analysis (direction vs content, steering text dropped), the
//!   deterministic script writer and the checks every writer's lines must pass.
//! - [`visual`]: the VisualTranslator (manifest → render plan, subtitle cues).
//! - [`voice`]: narration (Piper neural voice, espeak-ng formant voice), word timings,
//!   scene durations that follow the speech, subtitle cues from the words.
//! - [`illustrate`]: the Illustrator (scene text → 0–3 pictures from the illustration set,
//!   by embedding similarity to CLDR annotations, with a relevance floor).
//! - [`render`]: the RenderExecutor (render plan → MP4, preview, keyframes, VTT, the mix).
//! - [`semantic`]: SemanticQA (brief + manifest + plan + keyframes → scored report, no model).
//! - [`translate`]: caption translation backends (Marian, LLM prompt), chrF quality bar.
//! - [`supervisor`]: the v33 decision matrix.

pub mod agent;
pub mod director;
pub mod domain;
pub mod illustrate;
pub mod models;
pub mod planner;
pub mod render;
pub mod script;
pub mod semantic;
pub mod supervisor;
pub mod translate;
pub mod visual;
pub mod voice;

pub use agent::{Agent, AgentContext, AgentError, AgentMetadata, AgentOutput, CancelToken, Progress};
pub use render::{PreviewSettings, RenderExecutor, RenderOutput, RenderRequest};
