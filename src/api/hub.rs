//! The hub: the driver's [`Observer`] for the server. It fans state changes and progress
//! out to SSE clients over a tokio broadcast channel, keeps each running job's live progress,
//! wakes idle workers when work appears, and triggers webhooks on terminal states.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, broadcast};

use crate::pipeline::driver::Observer;
use crate::pipeline::machine::{Event, Stage, State};

/// Every `kind` a [`JobEvent`] has; the SSE `event` field repeats it. The spec lists them.
pub const EVENT_KINDS: [&str; 5] = ["snapshot", "state", "stage_started", "progress", "retrying"];

/// One message on a job's event stream.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobEvent {
    /// The job.
    pub job_id: String,
    /// One of [`EVENT_KINDS`]: `snapshot` (first), `state`, `stage_started`, `progress` or
    /// `retrying`.
    pub kind: &'static str,
    /// The state name after the event, on `snapshot` and `state` events; empty on the
    /// others (they happen inside a state).
    pub state: String,
    /// The stage concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'static str>,
    /// The stage's own progress, 0–1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage_fraction: Option<f32>,
    /// Whole-job progress, 0–100.
    pub progress_pct: f64,
    /// The event that caused a state change, or the retry's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A running stage's progress.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    /// The stage.
    pub stage: Stage,
    /// Its fraction done.
    pub fraction: f32,
}

/// Share of the whole job each stage represents, in percent (rendering dominates).
const WEIGHTS: [(Stage, f64); 11] = [
    (Stage::Sanitize, 1.0),
    (Stage::Route, 1.0),
    (Stage::Plan, 3.0),
    (Stage::Translate, 2.0),
    (Stage::Cost, 1.0),
    (Stage::Voice, 6.0),
    (Stage::Render, 54.0),
    (Stage::TechnicalQa, 15.0),
    (Stage::SemanticQa, 10.0),
    (Stage::Supervise, 1.0),
    (Stage::Deliver, 6.0),
];

fn done_before(stage: Stage) -> f64 {
    WEIGHTS.iter().take_while(|(s, _)| *s != stage).map(|(_, w)| w).sum()
}

fn weight(stage: Stage) -> f64 {
    WEIGHTS.iter().find(|(s, _)| *s == stage).map(|(_, w)| *w).unwrap_or(0.0)
}

/// Whole-job progress in percent for a state and, while a stage runs, its fraction.
pub fn progress_pct(state: &State, live: Option<Live>) -> f64 {
    let pct = match state {
        State::Delivered {} => 100.0,
        State::PlanReview {} => done_before(Stage::Voice),
        State::AwaitingReview {} => done_before(Stage::Deliver),
        State::Failed { stage, .. } => WEIGHTS
            .iter()
            .find(|(s, _)| s.name() == stage)
            .map(|(s, _)| done_before(*s))
            .unwrap_or(done_before(Stage::Deliver)),
        State::Cancelled {} => 0.0,
        other => match other.stage() {
            Some(stage) => {
                let f = live.filter(|l| l.stage == stage).map(|l| l.fraction.clamp(0.0, 1.0) as f64).unwrap_or(0.0);
                done_before(stage) + weight(stage) * f
            }
            None => 0.0,
        },
    };
    (pct * 10.0).round() / 10.0
}

/// A callback told the id of a job that changed.
type ChangeListener = Box<dyn Fn(&str) + Send + Sync>;

/// Shared by the driver (as observer), the workers and the handlers.
pub struct Hub {
    events: broadcast::Sender<JobEvent>,
    live: RwLock<HashMap<String, Live>>,
    /// Wakes idle workers when a job becomes runnable.
    pub work: Notify,
    /// Terminal states to announce by webhook.
    terminal: Mutex<Option<tokio::sync::mpsc::UnboundedSender<(String, String)>>>,
    /// Invalidation callback for cached job views.
    invalidate: Mutex<Vec<ChangeListener>>,
    runtime: tokio::runtime::Handle,
}

impl Hub {
    /// A hub on the current tokio runtime.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            events,
            live: RwLock::new(HashMap::new()),
            work: Notify::new(),
            terminal: Mutex::new(None),
            invalidate: Mutex::new(Vec::new()),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Receive every job's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.events.subscribe()
    }

    /// Send terminal states (job id, state name) to `tx` (the webhook sender).
    pub fn on_terminal(&self, tx: tokio::sync::mpsc::UnboundedSender<(String, String)>) {
        *self.terminal.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    }

    /// Call `f` with the job id whenever a job changes.
    pub fn on_change(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        self.invalidate.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(f));
    }

    /// Tell listeners a job changed outside the driver (human edit, resume marker).
    pub fn changed(&self, job: &str) {
        for f in self.invalidate.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            f(job);
        }
    }

    /// The running stage of a job, if one runs in this process.
    pub fn live(&self, job: &str) -> Option<Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).get(job).copied()
    }

    fn send(&self, e: JobEvent) {
        // No subscriber is not an error.
        let _ = self.events.send(e);
    }

    /// Wake one idle worker soon (after the current call returns).
    pub fn wake(&self) {
        self.work.notify_waiters();
        self.work.notify_one();
    }

    /// The runtime the hub was made on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for Hub {
    fn stage_started(&self, job: &str, stage: Stage, attempt: u32) {
        let live = Live { stage, fraction: 0.0 };
        self.live.write().unwrap_or_else(|p| p.into_inner()).insert(job.to_owned(), live);
        self.send(JobEvent {
            job_id: job.to_owned(),
            kind: "stage_started",
            state: String::new(),
            stage: Some(stage.name()),
            stage_fraction: Some(0.0),
            progress_pct: done_before(stage),
            detail: Some(format!("attempt {attempt}")),
        });
    }

    fn progress(&self, job: &str, stage: Stage, fraction: f32) {
        let previous = {
            let mut map = self.live.write().unwrap_or_else(|p| p.into_inner());
            map.insert(job.to_owned(), Live { stage, fraction }).map(|l| l.fraction).unwrap_or(0.0)
        };
        // Send at most one event per 1 % of the stage, not one per frame.
        if (fraction * 100.0).floor() > (previous * 100.0).floor() || fraction >= 1.0 {
            self.send(JobEvent {
                job_id: job.to_owned(),
                kind: "progress",
                state: String::new(),
                stage: Some(stage.name()),
                stage_fraction: Some(fraction),
                progress_pct: ((done_before(stage) + weight(stage) * fraction as f64) * 10.0).round() / 10.0,
                detail: None,
            });
        }
    }

    fn transitioned(&self, job: &str, _from: &State, to: &State, event: &Event, _duration_ms: u64) {
        self.live.write().unwrap_or_else(|p| p.into_inner()).remove(job);
        self.changed(job);
        self.send(JobEvent {
            job_id: job.to_owned(),
            kind: "state",
            state: to.name().to_owned(),
            stage: to.stage().map(Stage::name),
            stage_fraction: None,
            progress_pct: progress_pct(to, None),
            detail: Some(event.name().to_owned()),
        });
        if to.is_terminal()
            && let Some(tx) = self.terminal.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
        {
            let _ = tx.send((job.to_owned(), to.name().to_owned()));
        }
        if matches!(event, Event::Approve | Event::RequestChanges) {
            self.wake();
        }
    }

    fn retrying(&self, job: &str, stage: Stage, attempt: u32, error: &str, delay: Duration) {
        self.changed(job);
        self.send(JobEvent {
            job_id: job.to_owned(),
            kind: "retrying",
            state: String::new(),
            stage: Some(stage.name()),
            stage_fraction: None,
            progress_pct: done_before(stage),
            detail: Some(format!("attempt {attempt} failed: {error}; retrying in {} ms", delay.as_millis())),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_follows_the_pipeline() {
        assert_eq!(progress_pct(&State::Init {}, None), 0.0);
        assert_eq!(progress_pct(&State::PlanReview {}, None), 8.0);
        let live = Live { stage: Stage::Render, fraction: 0.5 };
        assert_eq!(progress_pct(&State::Rendering { attempt: 1 }, Some(live)), 41.0);
        assert_eq!(progress_pct(&State::Delivered {}, None), 100.0);
        assert_eq!(WEIGHTS.iter().map(|(_, w)| w).sum::<f64>(), 100.0);
    }
}
