//! The pure job state machine.
//!
//! States and events are plain enums; the machine does no IO, reads no clock and draws no
//! random numbers, so it can be restored from the store at any state and tested exhaustively.
//! It is statig's synchronous (blocking) machine: the async one is not `Send` and cannot live
//! inside tokio tasks. Events that a state does not accept bubble up to the `active` or
//! `terminal` superstate, which records them as a [`Rejection`] instead of dropping them.
//!
//! ```text
//! Init ─▶ Sanitized ─▶ Planning ─▶ Translating ─▶ Costing ─┬▶ PlanReview ─▶ Voicing ─▶ Rendering
//!                                                          └───────────────▶ Voicing
//! Rendering ─▶ TechnicalQa ─┬▶ SemanticQa ─▶ Supervising ─┬▶ Delivering ─▶ Delivered
//!        ▲                  │                             ├▶ AwaitingReview ─▶ Delivering
//!        └─ (bounded) ──────┘                             └▶ Failed{approval}
//! any non-terminal ─Cancel─▶ Cancelled;  ─StageFailed─▶ Failed{stage, error}
//! ```

use serde::{Deserialize, Serialize};
use statig::prelude::*;

pub use agents::supervisor::Decision;

/// Something that happened to a job: a stage's outcome, a human decision or a cancellation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The brief passed the sanitizer.
    InputAccepted,
    /// The complexity score chose the planning path.
    Routed {
        /// Whether the fast track was chosen.
        fast_track: bool,
    },
    /// A production manifest was written.
    Planned,
    /// The render plan and subtitles were written.
    Translated,
    /// The cost was estimated and the tier chosen.
    Costed {
        /// Whether the preset asks a human to review the plan before rendering.
        plan_review: bool,
    },
    /// The narration was synthesised and the scene durations fitted to it (or the job was
    /// found to have music only, with the reason in memory).
    Voiced,
    /// A human approved (the plan in PlanReview, the result in AwaitingReview).
    Approve,
    /// A human asked for changes; the job goes back to planning.
    RequestChanges,
    /// A human rejected the job.
    Reject {
        /// Why, in the reviewer's words.
        reason: String,
    },
    /// The video was rendered.
    Rendered,
    /// The technical QA gate passed.
    TechnicalPassed,
    /// The technical QA gate failed.
    TechnicalFailed {
        /// The failed checks, for the history.
        reason: String,
    },
    /// Semantic QA scored the render.
    SemanticScored,
    /// The supervisor decided.
    Decided {
        /// The decision.
        decision: Decision,
    },
    /// The deliverables were packed and listed.
    DeliveryPacked,
    /// A stage exhausted its retries or failed permanently.
    StageFailed {
        /// The stage that failed.
        stage: String,
        /// Its last error.
        error: String,
    },
    /// Someone cancelled the job.
    Cancel,
}

impl Event {
    /// A short name for logs and the history table.
    pub fn name(&self) -> &'static str {
        match self {
            Event::InputAccepted => "input_accepted",
            Event::Routed { .. } => "routed",
            Event::Planned => "planned",
            Event::Translated => "translated",
            Event::Costed { .. } => "costed",
            Event::Voiced => "voiced",
            Event::Approve => "approve",
            Event::RequestChanges => "request_changes",
            Event::Reject { .. } => "reject",
            Event::Rendered => "rendered",
            Event::TechnicalPassed => "technical_passed",
            Event::TechnicalFailed { .. } => "technical_failed",
            Event::SemanticScored => "semantic_scored",
            Event::Decided { .. } => "decided",
            Event::DeliveryPacked => "delivery_packed",
            Event::StageFailed { .. } => "stage_failed",
            Event::Cancel => "cancel",
        }
    }
}

/// An event the current state does not accept, recorded rather than silently dropped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("event '{event}' is not accepted in state '{state}'")]
pub struct Rejection {
    /// The state's name.
    pub state: &'static str,
    /// The event's name.
    pub event: &'static str,
}

/// The machine's shared storage: policy that shapes transitions (set from config).
#[derive(Debug, Clone, Default)]
pub struct JobMachine {
    /// How many times a technical QA failure may send the job back to rendering.
    pub max_rerenders: u32,
}

/// Set by the catch-all superstates when the event being handled was not accepted.
type Verdict = bool;

#[state_machine(
    initial = "State::init()",
    state(derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)),
    superstate(derive(Debug))
)]
impl JobMachine {
    /// A new job, not yet sanitised.
    #[state(superstate = "active")]
    fn init(event: &Event) -> Outcome<State> {
        match event {
            Event::InputAccepted => Transition(State::sanitized()),
            _ => Super,
        }
    }

    /// Sanitised; the router picks the planning path next.
    #[state(superstate = "active")]
    fn sanitized(event: &Event) -> Outcome<State> {
        match event {
            Event::Routed { fast_track } => Transition(State::planning(*fast_track)),
            _ => Super,
        }
    }

    /// A planner writes the production manifest.
    #[state(superstate = "agents")]
    fn planning(fast_track: &bool, event: &Event) -> Outcome<State> {
        let _ = fast_track;
        match event {
            Event::Planned => Transition(State::translating()),
            _ => Super,
        }
    }

    /// The visual translator writes the render plan and subtitles.
    #[state(superstate = "agents")]
    fn translating(event: &Event) -> Outcome<State> {
        match event {
            Event::Translated => Transition(State::costing()),
            _ => Super,
        }
    }

    /// The cost is estimated and the tier confirmed.
    #[state(superstate = "agents")]
    fn costing(event: &Event) -> Outcome<State> {
        match event {
            Event::Costed { plan_review: true } => Transition(State::plan_review()),
            Event::Costed { plan_review: false } => Transition(State::voicing()),
            _ => Super,
        }
    }

    /// Waiting for a human to approve or change the plan.
    #[state(superstate = "agents")]
    fn plan_review(event: &Event) -> Outcome<State> {
        match event {
            Event::Approve => Transition(State::voicing()),
            Event::RequestChanges => Transition(State::planning(false)),
            Event::Reject { reason } => Transition(State::failed("plan_review".into(), reason.clone())),
            _ => Super,
        }
    }

    /// The narrator speaks the approved plan; scene durations follow the speech.
    #[state(superstate = "agents")]
    fn voicing(event: &Event) -> Outcome<State> {
        match event {
            Event::Voiced => Transition(State::rendering(1)),
            _ => Super,
        }
    }

    /// The render executor composes and encodes; `attempt` counts renders of this job.
    #[state(superstate = "agents")]
    fn rendering(attempt: &u32, event: &Event) -> Outcome<State> {
        match event {
            Event::Rendered => Transition(State::technical_qa(*attempt)),
            _ => Super,
        }
    }

    /// The technical gate probes the file of render `attempt`.
    #[state(superstate = "qa")]
    fn technical_qa(&mut self, attempt: &u32, event: &Event) -> Outcome<State> {
        match event {
            Event::TechnicalPassed => Transition(State::semantic_qa()),
            Event::TechnicalFailed { .. } if *attempt <= self.max_rerenders => {
                Transition(State::rendering(attempt + 1))
            }
            Event::TechnicalFailed { reason } => Transition(State::failed(
                "technical_qa".into(),
                format!("technical QA failed after {attempt} render(s): {reason}"),
            )),
            _ => Super,
        }
    }

    /// Semantic QA scores the render.
    #[state(superstate = "qa")]
    fn semantic_qa(event: &Event) -> Outcome<State> {
        match event {
            Event::SemanticScored => Transition(State::supervising()),
            _ => Super,
        }
    }

    /// The supervisor applies the decision matrix.
    #[state(superstate = "approval")]
    fn supervising(event: &Event) -> Outcome<State> {
        match event {
            Event::Decided { decision: Decision::Approve } => Transition(State::delivering()),
            Event::Decided { decision: Decision::Reject { reason } } => {
                Transition(State::failed("approval".into(), reason.clone()))
            }
            Event::Decided { decision: Decision::Escalate | Decision::OverBudgetReview } => {
                Transition(State::awaiting_review())
            }
            _ => Super,
        }
    }

    /// Waiting for a human verdict on the finished video.
    #[state(superstate = "approval")]
    fn awaiting_review(event: &Event) -> Outcome<State> {
        match event {
            Event::Approve => Transition(State::delivering()),
            Event::RequestChanges => Transition(State::planning(false)),
            Event::Reject { reason } => Transition(State::failed("approval".into(), reason.clone())),
            _ => Super,
        }
    }

    /// The deliverables are checksummed and listed.
    #[state(superstate = "approval")]
    fn delivering(event: &Event) -> Outcome<State> {
        match event {
            Event::DeliveryPacked => Transition(State::delivered()),
            _ => Super,
        }
    }

    /// Terminal: the job's deliverables are final.
    #[state(superstate = "terminal")]
    fn delivered(event: &Event) -> Outcome<State> {
        let _ = event;
        Super
    }

    /// Terminal: someone cancelled the job.
    #[state(superstate = "terminal")]
    fn cancelled(event: &Event) -> Outcome<State> {
        let _ = event;
        Super
    }

    /// Terminal: a stage failed for good, or a reviewer rejected the job.
    #[state(superstate = "terminal")]
    fn failed(stage: &String, error: &String, event: &Event) -> Outcome<State> {
        let _ = (stage, error, event);
        Super
    }

    /// The agents phase of the pipeline.
    #[superstate(superstate = "active")]
    fn agents(event: &Event) -> Outcome<State> {
        let _ = event;
        Super
    }

    /// The QA phase.
    #[superstate(superstate = "active")]
    fn qa(event: &Event) -> Outcome<State> {
        let _ = event;
        Super
    }

    /// The approval phase.
    #[superstate(superstate = "active")]
    fn approval(event: &Event) -> Outcome<State> {
        let _ = event;
        Super
    }

    /// Every non-terminal state: cancellation and stage failure apply everywhere; anything
    /// else that reached this far is rejected.
    #[superstate]
    fn active(event: &Event, context: &mut Verdict) -> Outcome<State> {
        match event {
            Event::Cancel => Transition(State::cancelled()),
            Event::StageFailed { stage, error } => Transition(State::failed(stage.clone(), error.clone())),
            _ => {
                *context = true;
                Handled
            }
        }
    }

    /// Terminal states accept nothing.
    #[superstate]
    fn terminal(event: &Event, context: &mut Verdict) -> Outcome<State> {
        let _ = event;
        *context = true;
        Handled
    }
}

/// The stages the driver runs; one per working state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// InputSanitizer.
    Sanitize,
    /// Complexity score → fast track or full path.
    Route,
    /// FastTrack planner or CreativeDirector.
    Plan,
    /// VisualTranslator: render plan and subtitles.
    Translate,
    /// Cost estimate and tier.
    Cost,
    /// Narration: voices, word timings, scene durations.
    Voice,
    /// RenderExecutor.
    Render,
    /// TechnicalQaGate.
    TechnicalQa,
    /// SemanticQA.
    SemanticQa,
    /// Supervisor.
    Supervise,
    /// Delivery manifest.
    Deliver,
}

impl Stage {
    /// Every stage in pipeline order (config validation lists them in its errors).
    pub const ALL: [Stage; 11] = [
        Stage::Sanitize,
        Stage::Route,
        Stage::Plan,
        Stage::Translate,
        Stage::Cost,
        Stage::Voice,
        Stage::Render,
        Stage::TechnicalQa,
        Stage::SemanticQa,
        Stage::Supervise,
        Stage::Deliver,
    ];

    /// The stage's key in config (`orchestrator.stageTimeoutsSec`): its name in camelCase,
    /// like every other key of the file. Parsing goes through this one function so a key the
    /// driver would never look up is a config error, not a silently ignored timeout.
    pub fn config_key(self) -> &'static str {
        match self {
            Stage::TechnicalQa => "technicalQa",
            Stage::SemanticQa => "semanticQa",
            other => other.name(),
        }
    }

    /// The stage whose config key is `key`, if any.
    pub fn from_config_key(key: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.config_key() == key)
    }

    /// The stage's name in logs, history and memory authorship.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Sanitize => "sanitize",
            Stage::Route => "route",
            Stage::Plan => "planning",
            Stage::Translate => "translating",
            Stage::Cost => "costing",
            Stage::Voice => "voicing",
            Stage::Render => "rendering",
            Stage::TechnicalQa => "technical_qa",
            Stage::SemanticQa => "semantic_qa",
            Stage::Supervise => "supervising",
            Stage::Deliver => "delivering",
        }
    }
}

impl State {
    /// The state's name, as stored in the jobs table and shown by the API.
    pub fn name(&self) -> &'static str {
        match self {
            State::Init {} => "init",
            State::Sanitized {} => "sanitized",
            State::Planning { .. } => "planning",
            State::Translating {} => "translating",
            State::Costing {} => "costing",
            State::PlanReview {} => "plan_review",
            State::Voicing {} => "voicing",
            State::Rendering { .. } => "rendering",
            State::TechnicalQa { .. } => "technical_qa",
            State::SemanticQa {} => "semantic_qa",
            State::Supervising {} => "supervising",
            State::AwaitingReview {} => "awaiting_review",
            State::Delivering {} => "delivering",
            State::Delivered {} => "delivered",
            State::Cancelled {} => "cancelled",
            State::Failed { .. } => "failed",
        }
    }

    /// The top-level phase of DESIGN §2 this state belongs to.
    pub fn phase(&self) -> &'static str {
        match self {
            State::Init {} => "INIT",
            State::Sanitized {} => "SANITIZED",
            State::Planning { .. }
            | State::Translating {}
            | State::Costing {}
            | State::PlanReview {}
            | State::Voicing {}
            | State::Rendering { .. } => "AGENTS",
            State::TechnicalQa { .. } | State::SemanticQa {} => "QA",
            State::Supervising {} | State::AwaitingReview {} | State::Delivering {} => "APPROVAL",
            State::Delivered {} => "DELIVERED",
            State::Cancelled {} => "CANCELLED",
            State::Failed { .. } => "FAILED",
        }
    }

    /// The stage the driver runs in this state; `None` when the job waits for a human or
    /// has ended.
    pub fn stage(&self) -> Option<Stage> {
        Some(match self {
            State::Init {} => Stage::Sanitize,
            State::Sanitized {} => Stage::Route,
            State::Planning { .. } => Stage::Plan,
            State::Translating {} => Stage::Translate,
            State::Costing {} => Stage::Cost,
            State::Voicing {} => Stage::Voice,
            State::Rendering { .. } => Stage::Render,
            State::TechnicalQa { .. } => Stage::TechnicalQa,
            State::SemanticQa {} => Stage::SemanticQa,
            State::Supervising {} => Stage::Supervise,
            State::Delivering {} => Stage::Deliver,
            State::PlanReview {} | State::AwaitingReview {} => return None,
            State::Delivered {} | State::Cancelled {} | State::Failed { .. } => return None,
        })
    }

    /// Whether the job has ended.
    pub fn is_terminal(&self) -> bool {
        matches!(self, State::Delivered {} | State::Cancelled {} | State::Failed { .. })
    }

    /// Whether the job waits for a human decision.
    pub fn awaits_human(&self) -> bool {
        matches!(self, State::PlanReview {} | State::AwaitingReview {})
    }

    /// Rough share of the pipeline done when this state is reached, for progress displays.
    pub fn progress(&self) -> f32 {
        match self {
            State::Init {} => 0.0,
            State::Sanitized {} => 0.05,
            State::Planning { .. } => 0.1,
            State::Translating {} => 0.2,
            State::Costing {} => 0.25,
            State::PlanReview {} => 0.3,
            State::Voicing {} => 0.3,
            State::Rendering { .. } => 0.35,
            State::TechnicalQa { .. } => 0.8,
            State::SemanticQa {} => 0.88,
            State::Supervising {} => 0.94,
            State::AwaitingReview {} => 0.95,
            State::Delivering {} => 0.97,
            State::Delivered {} | State::Cancelled {} | State::Failed { .. } => 1.0,
        }
    }
}

/// A job's state machine, restorable at any state.
pub struct Machine {
    inner: statig::blocking::InitializedStateMachine<JobMachine>,
}

impl Machine {
    /// A machine for a new job, in `Init`.
    pub fn new(max_rerenders: u32) -> Self {
        Self::restore(State::init(), max_rerenders)
    }

    /// A machine resumed at a state read back from the store.
    pub fn restore(state: State, max_rerenders: u32) -> Self {
        let mut uninit = JobMachine { max_rerenders }.uninitialized_state_machine();
        *uninit.state_mut() = state;
        // No state has entry actions, so initialising does not move the restored state.
        let inner = uninit.init_with_context(&mut false);
        Self { inner }
    }

    /// The current state.
    pub fn state(&self) -> &State {
        self.inner.state()
    }

    /// Feed one event. On success the new state is returned; an event the state does not
    /// accept leaves the state unchanged and comes back as a [`Rejection`].
    pub fn apply(&mut self, event: &Event) -> Result<&State, Rejection> {
        let state = self.inner.state().name();
        let mut rejected: Verdict = false;
        self.inner.handle_with_context(event, &mut rejected);
        if rejected { Err(Rejection { state, event: event.name() }) } else { Ok(self.inner.state()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_states() -> Vec<State> {
        vec![
            State::init(),
            State::sanitized(),
            State::planning(true),
            State::planning(false),
            State::translating(),
            State::costing(),
            State::plan_review(),
            State::voicing(),
            State::rendering(1),
            State::rendering(2),
            State::technical_qa(1),
            State::technical_qa(2),
            State::semantic_qa(),
            State::supervising(),
            State::awaiting_review(),
            State::delivering(),
            State::delivered(),
            State::cancelled(),
            State::failed("rendering".into(), "boom".into()),
        ]
    }

    fn all_events() -> Vec<Event> {
        vec![
            Event::InputAccepted,
            Event::Routed { fast_track: true },
            Event::Routed { fast_track: false },
            Event::Planned,
            Event::Translated,
            Event::Costed { plan_review: true },
            Event::Costed { plan_review: false },
            Event::Voiced,
            Event::Approve,
            Event::RequestChanges,
            Event::Reject { reason: "off brand".into() },
            Event::Rendered,
            Event::TechnicalPassed,
            Event::TechnicalFailed { reason: "no audio".into() },
            Event::SemanticScored,
            Event::Decided { decision: Decision::Approve },
            Event::Decided { decision: Decision::Reject { reason: "quality 0.3 < 0.4".into() } },
            Event::Decided { decision: Decision::Escalate },
            Event::Decided { decision: Decision::OverBudgetReview },
            Event::DeliveryPacked,
            Event::StageFailed { stage: "rendering".into(), error: "disk full".into() },
            Event::Cancel,
        ]
    }

    /// The specification: every accepted (state, event) pair and where it leads, with
    /// `max_rerenders = 1`. Cancel and StageFailed from every non-terminal state are added
    /// by [`expected`]; every pair not listed must be rejected.
    fn table() -> Vec<(State, Event, State)> {
        use Event as E;
        let failed = |s: &str, e: &str| State::failed(s.into(), e.into());
        vec![
            (State::init(), E::InputAccepted, State::sanitized()),
            (State::sanitized(), E::Routed { fast_track: true }, State::planning(true)),
            (State::sanitized(), E::Routed { fast_track: false }, State::planning(false)),
            (State::planning(true), E::Planned, State::translating()),
            (State::planning(false), E::Planned, State::translating()),
            (State::translating(), E::Translated, State::costing()),
            (State::costing(), E::Costed { plan_review: true }, State::plan_review()),
            (State::costing(), E::Costed { plan_review: false }, State::voicing()),
            (State::plan_review(), E::Approve, State::voicing()),
            (State::voicing(), E::Voiced, State::rendering(1)),
            (State::plan_review(), E::RequestChanges, State::planning(false)),
            (State::plan_review(), E::Reject { reason: "off brand".into() }, failed("plan_review", "off brand")),
            (State::rendering(1), E::Rendered, State::technical_qa(1)),
            (State::rendering(2), E::Rendered, State::technical_qa(2)),
            (State::technical_qa(1), E::TechnicalPassed, State::semantic_qa()),
            (State::technical_qa(2), E::TechnicalPassed, State::semantic_qa()),
            (State::technical_qa(1), E::TechnicalFailed { reason: "no audio".into() }, State::rendering(2)),
            (
                State::technical_qa(2),
                E::TechnicalFailed { reason: "no audio".into() },
                failed("technical_qa", "technical QA failed after 2 render(s): no audio"),
            ),
            (State::semantic_qa(), E::SemanticScored, State::supervising()),
            (State::supervising(), E::Decided { decision: Decision::Approve }, State::delivering()),
            (
                State::supervising(),
                E::Decided { decision: Decision::Reject { reason: "quality 0.3 < 0.4".into() } },
                failed("approval", "quality 0.3 < 0.4"),
            ),
            (State::supervising(), E::Decided { decision: Decision::Escalate }, State::awaiting_review()),
            (State::supervising(), E::Decided { decision: Decision::OverBudgetReview }, State::awaiting_review()),
            (State::awaiting_review(), E::Approve, State::delivering()),
            (State::awaiting_review(), E::RequestChanges, State::planning(false)),
            (State::awaiting_review(), E::Reject { reason: "off brand".into() }, failed("approval", "off brand")),
            (State::delivering(), E::DeliveryPacked, State::delivered()),
        ]
    }

    fn expected(state: &State, event: &Event) -> Option<State> {
        if !state.is_terminal() {
            match event {
                Event::Cancel => return Some(State::cancelled()),
                Event::StageFailed { stage, error } => return Some(State::failed(stage.clone(), error.clone())),
                _ => {}
            }
        }
        table().into_iter().find(|(s, e, _)| s == state && e == event).map(|(_, _, to)| to)
    }

    #[test]
    fn every_state_event_pair_matches_the_table() {
        let mut accepted = 0;
        let mut rejected = 0;
        for state in all_states() {
            for event in all_events() {
                let mut m = Machine::restore(state.clone(), 1);
                let result = m.apply(&event).cloned();
                match expected(&state, &event) {
                    Some(to) => {
                        assert_eq!(result, Ok(to), "{state:?} + {event:?}");
                        accepted += 1;
                    }
                    None => {
                        let rejection = result.expect_err(&format!("{state:?} + {event:?} must be rejected"));
                        assert_eq!(rejection, Rejection { state: state.name(), event: event.name() });
                        assert_eq!(m.state(), &state, "a rejected event must not move the state");
                        rejected += 1;
                    }
                }
            }
        }
        assert_eq!(accepted + rejected, all_states().len() * all_events().len());
        assert!(accepted > 40 && rejected > 200, "{accepted} accepted, {rejected} rejected");
    }

    #[test]
    fn happy_path_walks_every_phase() {
        let mut m = Machine::new(1);
        let events = [
            Event::InputAccepted,
            Event::Routed { fast_track: true },
            Event::Planned,
            Event::Translated,
            Event::Costed { plan_review: false },
            Event::Voiced,
            Event::Rendered,
            Event::TechnicalPassed,
            Event::SemanticScored,
            Event::Decided { decision: Decision::Approve },
            Event::DeliveryPacked,
        ];
        let mut phases = vec![m.state().phase()];
        for e in &events {
            phases.push(m.apply(e).unwrap().phase());
        }
        phases.dedup();
        assert_eq!(phases, ["INIT", "SANITIZED", "AGENTS", "QA", "APPROVAL", "DELIVERED"]);
    }

    #[test]
    fn rerenders_are_bounded_by_policy() {
        let mut m = Machine::restore(State::technical_qa(1), 0);
        let next = m.apply(&Event::TechnicalFailed { reason: "x".into() }).unwrap();
        assert_eq!(next.name(), "failed");
        let mut m = Machine::restore(State::technical_qa(3), 3);
        assert_eq!(m.apply(&Event::TechnicalFailed { reason: "x".into() }).unwrap(), &State::rendering(4));
    }

    #[test]
    fn states_round_trip_through_json() {
        for s in all_states() {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<State>(&json).unwrap(), s);
        }
    }

    #[test]
    fn stage_mapping_covers_working_states_only() {
        for s in all_states() {
            assert_eq!(s.stage().is_none(), s.is_terminal() || s.awaits_human(), "{s:?}");
        }
    }
}
