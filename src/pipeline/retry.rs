//! Retry policy for stages: exponential backoff with jitter from config, retrying only
//! errors that say they are transient.

use std::time::Duration;

use backon::ExponentialBuilder;

use crate::config::RetryPolicy;

/// Why a stage failed, and whether retrying can help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StageError {
    /// May pass on retry (IO, resources, timeouts).
    #[error("{0}")]
    Transient(String),
    /// Will fail again with the same input.
    #[error("{0}")]
    Permanent(String),
    /// The job was cancelled while the stage ran.
    #[error("cancelled")]
    Cancelled,
}

impl StageError {
    /// Whether a retry is worth it.
    pub fn is_transient(&self) -> bool {
        matches!(self, StageError::Transient(_))
    }
}

impl From<agents::AgentError> for StageError {
    fn from(e: agents::AgentError) -> Self {
        match e {
            agents::AgentError::Transient(m) => StageError::Transient(m),
            agents::AgentError::Permanent(m) => StageError::Permanent(m),
            agents::AgentError::Cancelled => StageError::Cancelled,
        }
    }
}

/// The backoff schedule for a policy: `backoffSec` doubling up to `maxBackoffSec`, with
/// jitter so that jobs failing together do not retry in lockstep, at most `maxRetries`
/// retries after the first attempt.
pub fn backoff(policy: &RetryPolicy) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs_f64(policy.backoff_sec))
        .with_max_delay(Duration::from_secs_f64(policy.max_backoff_sec))
        .with_factor(2.0)
        .with_max_times(policy.max_retries as usize)
        .with_jitter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    #[test]
    fn schedule_has_max_retries_delays_within_bounds() {
        let p = RetryPolicy { max_retries: 3, backoff_sec: 1.0, max_backoff_sec: 3.0 };
        let delays: Vec<Duration> = backoff(&p).build().collect();
        assert_eq!(delays.len(), 3);
        for d in &delays {
            // backon 1.6's jitter adds up to the current (capped) delay again: at most 2 × 3 s.
            assert!(*d >= Duration::from_secs(1) && *d <= Duration::from_secs(6), "{d:?}");
        }
    }

    #[test]
    fn agent_errors_keep_their_kind() {
        assert!(StageError::from(agents::AgentError::Transient("x".into())).is_transient());
        assert!(!StageError::from(agents::AgentError::Permanent("x".into())).is_transient());
        assert_eq!(StageError::from(agents::AgentError::Cancelled), StageError::Cancelled);
    }
}
