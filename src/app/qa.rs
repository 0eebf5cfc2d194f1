//! QA of any file against a job's plan (`aiprod qa FILE --job ID`): the technical gate, the
//! semantic QA with its perception checks (captions read back, narration heard, the mix
//! metered, black and frozen scenes) and the supervisor's decision, exactly as the pipeline
//! would run them — on a deliverable someone re-edited by hand, or on a broken variant.
//! The keyframes are decoded from the file itself, never taken from the render.

use std::path::{Path, PathBuf};
use std::time::Instant;

use agents::domain::{ProductionManifest, RenderPlan};
use agents::render::{CaptionBox, RenderOutput};
use agents::semantic::{self, CriterionConfig, SemanticReport, SemanticRequest};
use agents::supervisor::{self, Decision, Inputs, Thresholds, Verdict};
use agents::voice::VoiceEngine;
use serde::Serialize;

use crate::config::Config;
use crate::memory::Memory;
use crate::memory::sections::{CostCertification, GeneratedAssets};
use crate::pipeline::stages::{narration_engine, plan_as_rendered};
use crate::qa_gate::{self, Expectations, TechnicalReport};
use crate::sanitize::SanitizedInput;
use crate::store::Store;

/// What a file is judged against: the job's brief, manifest, plan and cost.
#[derive(Debug, Clone)]
pub struct QaSubject {
    /// The sanitised brief.
    pub brief: String,
    /// The production manifest.
    pub manifest: ProductionManifest,
    /// The plan as rendered (encoder settings, mix and narration applied).
    pub plan: RenderPlan,
    /// Caption rectangles the job's render recorded (empty when it predates them).
    pub caption_boxes: Vec<CaptionBox>,
    /// The job's certified cost.
    pub cost: f64,
    /// The brief's budget.
    pub budget: Option<f64>,
    /// The synthesiser that spoke the narration, when known.
    pub narration_engine: Option<VoiceEngine>,
}

impl QaSubject {
    /// The subject of job `id`, read from its memory; the job must have been planned and
    /// costed (its render, if any, provides the caption rectangles).
    pub fn from_job(store: &dyn Store, id: &str, config: &Config) -> Result<QaSubject, String> {
        let memory = Memory::new(store.memory(id).map_err(|e| format!("job {id}: {e}"))?);
        let job_dir = config.storage.data_dir.join("jobs").join(id);
        let brief: SanitizedInput = memory.read().map_err(|e| format!("job {id}: {e}"))?;
        let manifest: ProductionManifest = memory.read().map_err(|e| format!("job {id}: {e}"))?;
        let plan = plan_as_rendered(&memory, &job_dir, config).map_err(|e| format!("job {id}: {e}"))?;
        let cost = memory.get::<CostCertification>().map_err(|e| format!("job {id}: {e}"))?;
        let assets = memory.get::<GeneratedAssets>().map_err(|e| format!("job {id}: {e}"))?;
        Ok(QaSubject {
            brief: brief.content,
            manifest,
            plan,
            caption_boxes: assets.map(|a| a.output.caption_boxes).unwrap_or_default(),
            cost: cost.as_ref().map(|c| c.certificate.estimate.total).unwrap_or(0.0),
            budget: cost.and_then(|c| c.budget),
            narration_engine: narration_engine(&memory),
        })
    }

    /// A subject from a render made outside the pipeline (tests, tools): nothing was spent.
    pub fn from_render(brief: &str, manifest: ProductionManifest, plan: RenderPlan, render: &RenderOutput) -> Self {
        QaSubject {
            brief: brief.to_owned(),
            manifest,
            plan,
            caption_boxes: render.caption_boxes.clone(),
            cost: 0.0,
            budget: None,
            narration_engine: None,
        }
    }
}

/// The three verdicts on one file.
#[derive(Debug, Clone, Serialize)]
pub struct QaOutcome {
    /// The file inspected.
    pub file: PathBuf,
    /// The technical gate's report.
    pub technical: TechnicalReport,
    /// The semantic report, perception checks included.
    pub semantic: SemanticReport,
    /// The supervisor's decision on them.
    pub verdict: Verdict,
    /// Wall time of the semantic QA (keyframes, perception checks, criteria), ms.
    pub semantic_ms: u64,
    /// Wall time of the technical gate, ms.
    pub technical_ms: u64,
}

impl QaOutcome {
    /// Whether the supervisor would approve the file.
    pub fn approved(&self) -> bool {
        self.verdict.decision == Decision::Approve
    }
}

/// Runs the technical gate, the semantic QA and the supervisor on `video` against
/// `subject`, with the configuration's gates and thresholds. The technical gate and the
/// semantic QA run in parallel.
pub fn qa_file(video: &Path, subject: &QaSubject, config: &Config) -> Result<QaOutcome, String> {
    if !video.is_file() {
        return Err(format!("{} is not a file", video.display()));
    }
    let keyframe_dir = ScratchDir::new()?;
    let expect = Expectations::from_plan(&subject.plan);
    let (technical, semantic) = std::thread::scope(|s| {
        let technical = s.spawn(|| {
            let started = Instant::now();
            let r = qa_gate::inspect(video, &expect, &config.technical_qa, config.quality_gates.technical);
            (r, started.elapsed().as_millis() as u64)
        });
        let started = Instant::now();
        let semantic = semantic_of(video, subject, config, keyframe_dir.path());
        let semantic = semantic.map(|r| (r, started.elapsed().as_millis() as u64));
        (technical.join(), semantic)
    });
    let (technical, technical_ms) = technical.map_err(|_| "the technical gate panicked".to_owned())?;
    let (semantic, semantic_ms) = semantic?;
    let s = &config.supervisor;
    let verdict = supervisor::decide(
        &Inputs {
            quality: semantic.score,
            technical: technical.technical_score,
            cost: subject.cost,
            budget: subject.budget,
            failed_checks: semantic.failed_checks(),
        },
        &Thresholds {
            approve_min_quality: s.approve_min_quality,
            reject_below_quality: s.reject_below_quality,
            reject_below_technical: s.reject_below_technical,
        },
    );
    Ok(QaOutcome { file: video.to_path_buf(), technical, semantic, verdict, semantic_ms, technical_ms })
}

/// A private temporary directory, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<ScratchDir, String> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("aiprod-qa-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(ScratchDir(dir))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The semantic report on `video`, with keyframes decoded from it into `keyframe_dir`.
fn semantic_of(
    video: &Path,
    subject: &QaSubject,
    config: &Config,
    keyframe_dir: &Path,
) -> Result<SemanticReport, String> {
    let keyframes = semantic::frames::keyframes_png(video, &subject.plan, keyframe_dir)?;
    let request = SemanticRequest {
        brief: subject.brief.clone(),
        manifest: subject.manifest.clone(),
        plan: subject.plan.clone(),
        keyframes,
        criteria: config
            .semantic_qa
            .criteria
            .iter()
            .map(|(k, c)| (k.clone(), CriterionConfig { weight: c.weight, threshold: c.threshold }))
            .collect(),
        gate: config.quality_gates.semantic,
        narrative_embeddings: None,
        video: Some(video.to_path_buf()),
        caption_boxes: subject.caption_boxes.clone(),
        narration_engine: subject.narration_engine,
    };
    semantic::assess(&request).map_err(|e| e.to_string())
}

/// The report in plain words: the decision, the failing checks with their measured values,
/// the criteria and the checks that were not measured.
pub fn describe(o: &QaOutcome) -> String {
    let mut out = format!("QA of {}\n", o.file.display());
    out.push_str(&format!(
        "  technical score {:.2} ({}), {} ms\n",
        o.technical.technical_score,
        if o.technical.passed { "passed" } else { "failed" },
        o.technical_ms
    ));
    for c in o.technical.failed() {
        out.push_str(&format!("    ✗ {}: {}\n", c.name, c.detail));
    }
    out.push_str(&format!(
        "  semantic score {:.2} ({}), {} ms\n",
        o.semantic.score,
        if o.semantic.passed { "passed" } else { "failed" },
        o.semantic_ms
    ));
    for c in &o.semantic.criteria {
        out.push_str(&format!("    {} {:.2} (threshold {:.2})\n", c.name, c.score, c.threshold));
    }
    for c in &o.semantic.checks {
        let mark = match c.status {
            semantic::checks::CheckStatus::Passed => "✓",
            semantic::checks::CheckStatus::Failed => "✗",
            semantic::checks::CheckStatus::NotApplicable => "–",
            semantic::checks::CheckStatus::NotMeasured => "?",
        };
        out.push_str(&format!("    {mark} {}\n", c.summary()));
    }
    out.push_str(&format!("  decision: {:?}\n", o.verdict.decision));
    for r in &o.verdict.reasons {
        out.push_str(&format!("    {r}\n"));
    }
    out
}
