//! Perception checks: what a viewer sees and hears in the rendered file, measured with
//! external tools on the video itself — captions read back with OCR ([`super::ocr`]), the
//! narration transcribed ([`super::asr`]), found in the soundtrack word by word
//! ([`super::presence`]) and the mix measured ([`super::mix`]).
//!
//! Every check reports one of four outcomes with the measured values and a plain-language
//! reason. A check whose input does not exist (no video, no caption, no narration) is
//! *not applicable*; one whose tool or language data is missing is *not measured*. Neither
//! ever counts as a pass.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::RenderPlan;
use crate::render::CaptionBox;
use crate::voice::VoiceEngine;

use super::{asr, frames, mix, ocr, presence, sync};

/// Name of the per-scene caption read-back check.
pub const CAPTION_READBACK: &str = "caption_readback";
/// Name of the narration transcription check.
pub const NARRATION_HEARD: &str = "narration_heard";
/// Name of the per-scene black/blank picture check.
pub const BLACK_SCENE: &str = "black_scene";
/// Name of the per-scene frozen picture check.
pub const FROZEN_SCENE: &str = "frozen_scene";
/// Name of the integrated-loudness check.
pub const LOUDNESS: &str = "loudness";
/// Name of the true-peak check.
pub const TRUE_PEAK: &str = "true_peak";
/// Name of the clipped-samples check.
pub const CLIPPING: &str = "clipping";
/// Name of the silence-gap check.
pub const SILENCE_GAPS: &str = "silence_gaps";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Measured and within bounds.
    Passed,
    /// Measured and out of bounds: the video has the defect.
    Failed,
    /// The thing to check is not there (no caption, no narration, no audio track).
    NotApplicable,
    /// The thing is there but could not be measured (tool or language data missing).
    NotMeasured,
}

/// One measured check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The check's name (one of the constants of this module).
    pub name: String,
    /// The scene it concerns, for per-scene checks.
    pub scene: Option<usize>,
    /// Outcome.
    pub status: CheckStatus,
    /// 0–1 quality of what was measured (1 for a perfect read-back, recall, or in-bounds level);
    /// meaningful for passed and failed checks.
    pub score: f64,
    /// In plain language: what was measured and what it means.
    pub reason: String,
    /// The measured values.
    pub measured: Value,
}

impl Check {
    /// A check that could not run because its input does not exist.
    pub fn not_applicable(name: &str, scene: Option<usize>, reason: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            scene,
            status: CheckStatus::NotApplicable,
            score: 0.0,
            reason: reason.into(),
            measured: Value::Null,
        }
    }

    /// A check whose input exists but that could not be measured here.
    pub fn not_measured(name: &str, scene: Option<usize>, reason: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            scene,
            status: CheckStatus::NotMeasured,
            score: 0.0,
            reason: reason.into(),
            measured: Value::Null,
        }
    }

    /// A measured check: passed when `ok`.
    pub fn measured(
        name: &str,
        scene: Option<usize>,
        ok: bool,
        score: f64,
        reason: impl Into<String>,
        measured: Value,
    ) -> Check {
        Check {
            name: name.into(),
            scene,
            status: if ok { CheckStatus::Passed } else { CheckStatus::Failed },
            score: score.clamp(0.0, 1.0),
            reason: reason.into(),
            measured,
        }
    }

    /// Whether the check found a defect.
    pub fn failed(&self) -> bool {
        self.status == CheckStatus::Failed
    }

    /// One line for reports and the supervisor: `name (scene N): reason`.
    pub fn summary(&self) -> String {
        match self.scene {
            Some(s) => format!("{} (scene {s}): {}", self.name, self.reason),
            None => format!("{}: {}", self.name, self.reason),
        }
    }
}

/// What the perception checks look at: the rendered file and what the plan says it contains.
#[derive(Debug, Clone)]
pub struct Perception<'a> {
    /// The rendered MP4, if there is one.
    pub video: Option<&'a Path>,
    /// The plan that was rendered (narration text, mix targets, scene times).
    pub plan: &'a RenderPlan,
    /// The caption rectangles the renderer recorded.
    pub caption_boxes: &'a [CaptionBox],
    /// The synthesiser that spoke the narration, when known.
    pub narration_engine: Option<VoiceEngine>,
    /// Directory for intermediate files (crops, 16 kHz audio); created if missing.
    pub scratch: PathBuf,
}

/// Runs every perception check: one decode of the frames the checks need, then OCR of the
/// captions and the picture checks on one thread while the audio is transcribed and
/// metered on others (the tools are separate processes, so the cores work in parallel).
pub fn run(p: &Perception<'_>) -> Vec<Check> {
    let Some(video) = p.video.filter(|v| v.is_file()) else {
        let why = "no rendered video to inspect";
        let mut checks: Vec<Check> =
            [CAPTION_READBACK, BLACK_SCENE, FROZEN_SCENE].iter().map(|n| Check::not_applicable(n, None, why)).collect();
        checks.push(Check::not_applicable(NARRATION_HEARD, None, why));
        checks.push(Check::not_applicable(sync::SUBTITLE_SYNC, None, why));
        checks.extend(presence::NAMES.iter().map(|n| Check::not_applicable(n, None, why)));
        checks.extend(mix::NAMES.iter().map(|n| Check::not_applicable(n, None, why)));
        return checks;
    };
    if let Err(e) = std::fs::create_dir_all(&p.scratch) {
        let why = format!("cannot create the scratch directory {}: {e}", p.scratch.display());
        let mut checks: Vec<Check> =
            [CAPTION_READBACK, BLACK_SCENE, FROZEN_SCENE].iter().map(|n| Check::not_measured(n, None, &why)).collect();
        checks.push(Check::not_measured(NARRATION_HEARD, None, &why));
        checks.push(Check::not_measured(sync::SUBTITLE_SYNC, None, &why));
        checks.extend(presence::NAMES.iter().map(|n| Check::not_measured(n, None, &why)));
        checks.extend(mix::NAMES.iter().map(|n| Check::not_measured(n, None, &why)));
        return checks;
    }
    let timed = |f: &dyn Fn() -> Vec<Check>| {
        let started = std::time::Instant::now();
        (f(), started.elapsed().as_millis())
    };
    let ((captions, seen_ms), (heard, heard_ms), (levels, levels_ms)) = std::thread::scope(|s| {
        let captions = s.spawn(|| timed(&|| seen(video, p)));
        let heard = s.spawn(|| timed(&|| asr::check_narration(video, p.plan, p.narration_engine, &p.scratch)));
        let levels = timed(&|| {
            let mut levels = presence::check_voice(video, p.plan);
            levels.extend(mix::check_mix(video, p.plan));
            levels.extend(sync::check_sync(video, p.plan));
            levels
        });
        let heard =
            heard.join().unwrap_or_else(|_| (vec![Check::not_measured(NARRATION_HEARD, None, "ASR panicked")], 0));
        let captions =
            captions.join().unwrap_or_else(|_| (vec![Check::not_measured(CAPTION_READBACK, None, "OCR panicked")], 0));
        (captions, heard, levels)
    });
    tracing::debug!(seen_ms, heard_ms, levels_ms, "perception checks finished");
    captions.into_iter().chain(heard).chain(levels).collect()
}

/// What is seen: the caption read-back and the picture checks, from one decode.
fn seen(video: &Path, p: &Perception<'_>) -> Vec<Check> {
    let mut times: Vec<f64> = frames::scene_times(p.plan).into_iter().flatten().collect();
    times.extend(p.caption_boxes.iter().map(ocr::read_time));
    match frames::grab(video, p.plan.video.fps, &times, &p.scratch) {
        Ok(grabbed) => {
            let mut checks = ocr::check_captions(&grabbed, p.plan, p.caption_boxes, &p.scratch);
            checks.extend(frames::check_pictures(p.plan, &grabbed));
            checks
        }
        Err(why) => {
            [CAPTION_READBACK, BLACK_SCENE, FROZEN_SCENE].iter().map(|n| Check::not_measured(n, None, &why)).collect()
        }
    }
}
