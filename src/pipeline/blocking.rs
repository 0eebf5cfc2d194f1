//! Blocking work off the async runtime: decoding, hashing, encoding and model inference run on
//! tokio's blocking pool, never on the runtime threads the API shares.
//!
//! Every stage goes through [`run`], the one way the pipeline leaves the runtime. The closure
//! gets the attempt's [`AgentContext`] (its cancel token): a future that is dropped cannot stop
//! synchronous code, so on a timeout the driver cancels the token and awaits the attempt —
//! this task included — before a retry starts.

use agents::AgentContext;

use super::retry::StageError;

/// Run `work` on the blocking pool with the attempt's context; `what` names it in the error
/// when the task itself fails (a panic).
pub async fn run<T, F>(what: &str, ctx: &AgentContext, work: F) -> Result<T, StageError>
where
    T: Send + 'static,
    F: FnOnce(&AgentContext) -> T + Send + 'static,
{
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || work(&ctx))
        .await
        .map_err(|e| StageError::Transient(format!("{what} task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_off_the_runtime_and_sees_the_attempts_token() {
        let ctx = AgentContext::with_seed(1);
        ctx.cancel.cancel();
        let seen = run("probe", &ctx, |c| (c.cancel.is_cancelled(), tokio::runtime::Handle::current().id())).await;
        assert!(seen.unwrap().0, "the work sees the attempt's cancellation");
        let err = run("probe", &ctx, |_| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(err.to_string().starts_with("probe task failed"), "{err}");
    }
}
