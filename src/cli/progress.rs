//! Progress bars for `aiprod run`: one bar per stage, filled by the stage's own progress
//! reports, finished with the stage's duration.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::pipeline::driver::Observer;
use crate::pipeline::machine::{Event, Stage, State};

/// An [`Observer`] that draws indicatif bars on stderr (hidden when stderr is not a
/// terminal, so logs and CI output stay clean).
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<&'static str, ProgressBar>>,
}

impl Bars {
    /// Bars on stderr, or hidden when `quiet`.
    pub fn new(quiet: bool) -> Self {
        let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        Self { multi: MultiProgress::with_draw_target(target), bars: Mutex::new(HashMap::new()) }
    }

    fn bar(&self, stage: Stage) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.entry(stage.name())
            .or_insert_with(|| {
                let style =
                    ProgressStyle::with_template("{prefix:>13} [{bar:30.cyan/blue}] {percent:>3}% {elapsed:>4} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> ");
                let bar = self.multi.add(ProgressBar::new(1000).with_style(style).with_prefix(stage.name()));
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            })
            .clone()
    }
}

impl Observer for Bars {
    fn stage_started(&self, _job: &str, stage: Stage, attempt: u32) {
        let bar = self.bar(stage);
        bar.set_position(0);
        if attempt > 1 {
            bar.set_message(format!("attempt {attempt}"));
        }
    }

    fn progress(&self, _job: &str, stage: Stage, fraction: f32) {
        self.bar(stage).set_position((fraction * 1000.0) as u64);
    }

    fn transitioned(&self, _job: &str, from: &State, to: &State, event: &Event, duration_ms: u64) {
        if let Some(stage) = from.stage() {
            let bar = self.bar(stage);
            bar.set_position(1000);
            bar.finish_with_message(format!("{} ms → {}", duration_ms, to.name()));
        } else if let Event::Approve = event {
            let _ = self.multi.println(format!("{:>13} auto-approved (CLI run)", from.name()));
        }
    }

    fn retrying(&self, _job: &str, stage: Stage, attempt: u32, error: &str, delay: Duration) {
        self.bar(stage)
            .set_message(format!("attempt {attempt} failed: {error}; retry in {:.1} s", delay.as_secs_f64()));
    }
}
