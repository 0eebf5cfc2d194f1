//! The agent contract: typed input → typed output plus metadata, with cancellation and
//! progress reporting, and an error type that tells the driver whether a retry can help.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

/// What every agent reports about its own run, journaled next to its output so a reader of
/// the job's memory can see which model (or deterministic function) produced a section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentMetadata {
    /// The model or algorithm that produced the output, e.g. `"planner"`.
    pub model_used: String,
    /// Wall-clock time the agent spent, in milliseconds.
    pub processing_ms: u64,
    /// The agent's own version, bumped when its output for the same input changes.
    pub version: String,
}

/// An agent's typed result together with its metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentOutput<T> {
    /// The value written to the job's memory.
    pub value: T,
    /// What ran to produce it.
    pub metadata: AgentMetadata,
}

/// Why an agent failed, split by whether retrying the same input can succeed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A failure that may pass on retry (resource exhaustion, a busy device, a timeout).
    #[error("transient: {0}")]
    Transient(String),
    /// A failure that will repeat for the same input (invalid plan, missing font).
    #[error("{0}")]
    Permanent(String),
    /// The job was cancelled while the agent ran.
    #[error("cancelled")]
    Cancelled,
}

impl AgentError {
    /// Whether the driver should retry the stage.
    pub fn is_transient(&self) -> bool {
        matches!(self, AgentError::Transient(_))
    }
}

/// A cheap, cloneable cancellation flag that long-running agents poll between units of work
/// (the renderer checks it every frame). A child token is cancelled with its parent, or on
/// its own (the driver cancels one stage attempt on timeout without cancelling the job).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<TokenInner>);

#[derive(Debug, Default)]
struct TokenInner {
    flag: AtomicBool,
    parent: Option<CancelToken>,
}

impl CancelToken {
    /// A fresh, not-cancelled token.
    pub fn new() -> Self {
        Self::default()
    }
    /// A token that is cancelled when this one is, and can also be cancelled alone.
    pub fn child(&self) -> Self {
        Self(Arc::new(TokenInner { flag: AtomicBool::new(false), parent: Some(self.clone()) }))
    }
    /// Ask every holder of this token (and its children) to stop.
    pub fn cancel(&self) {
        self.0.flag.store(true, Ordering::SeqCst);
    }
    /// Whether cancellation was requested here or on a parent.
    pub fn is_cancelled(&self) -> bool {
        self.0.flag.load(Ordering::SeqCst) || self.0.parent.as_ref().is_some_and(CancelToken::is_cancelled)
    }
}

/// Progress sink: agents report the fraction of their work done (0.0–1.0) so the driver can
/// forward it to progress bars and the API without the agent knowing who listens.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(f32) + Send + Sync>);

impl Progress {
    /// Wrap a callback.
    pub fn new(f: impl Fn(f32) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
    /// A sink that discards reports, for callers that do not display progress.
    pub fn none() -> Self {
        Self::new(|_| {})
    }
    /// Report the fraction done, clamped to 0.0–1.0.
    pub fn report(&self, fraction: f32) {
        (self.0)(fraction.clamp(0.0, 1.0))
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// Everything an agent may use besides its input: a deterministic seed derived from the job
/// id (so re-running a stage after a crash gives the same output), cancellation and progress.
#[derive(Debug, Clone)]
pub struct AgentContext {
    /// Seed for any randomness; derived from the job id by the driver.
    pub seed: u64,
    /// Checked between units of work.
    pub cancel: CancelToken,
    /// Where fractions of work done go.
    pub progress: Progress,
}

impl AgentContext {
    /// A context with the given seed, a fresh cancel token and no progress sink.
    pub fn with_seed(seed: u64) -> Self {
        Self { seed, cancel: CancelToken::new(), progress: Progress::none() }
    }
}

/// One agent: typed input from memory → typed output to memory. Agents are async so that
/// model-backed ones can await shared model instances; CPU-heavy agents move their work to a
/// blocking thread themselves.
pub trait Agent: Send + Sync {
    /// What the agent reads from the job's memory.
    type Input: Send;
    /// What the agent writes to the job's memory.
    type Output: Send;
    /// The agent's name as it appears in logs and metadata.
    const NAME: &'static str;
    /// Run once on `input`.
    fn run(
        &self,
        input: Self::Input,
        ctx: &AgentContext,
    ) -> impl Future<Output = Result<AgentOutput<Self::Output>, AgentError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_tokens_follow_their_parent_but_not_the_reverse() {
        let job = CancelToken::new();
        let attempt = job.child();
        attempt.cancel();
        assert!(attempt.is_cancelled() && !job.is_cancelled());
        let second = job.child();
        job.cancel();
        assert!(second.is_cancelled());
    }
}
