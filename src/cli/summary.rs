//! The end-of-run summary: state path, per-stage timings, QA scores, decision, cost and the
//! output files — read back from the store, so it shows what was journaled, not what the
//! process believes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use agents::render::RenderOutput;
use agents::visual::LanguageStatus;
use agents::voice::narrate::{Narration, NarrationStatus};
use serde::Serialize;

use crate::finance::Reconciliation;
use crate::finance::certificate::Certificate;
use crate::memory::sections::{BackendSelection, CostCertification, DeliveryManifest, GeneratedAssets};
use crate::memory::{Memory, MemoryError, Section};
use crate::qa_gate::TechnicalReport;
use crate::store::{Store, StoreError};

/// The tier decision as the summary shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierDecision {
    /// The tier the brief asked for.
    pub requested_tier: String,
    /// The tier rendered.
    pub tier: String,
    /// `local-cpu` or `remote:<name>`.
    pub backend: crate::finance::Backend,
    /// Why, in words.
    pub reason: String,
    /// Daily-budget and quality-floor warnings.
    pub warnings: Vec<String>,
}

/// What `aiprod run` prints (or emits as JSON with `--json`).
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The job id.
    pub job_id: String,
    /// Final state name.
    pub state: String,
    /// Failed stage and error, when failed.
    pub failure: Option<(String, String)>,
    /// States visited in order.
    pub path: Vec<String>,
    /// (stage state, milliseconds, attempts) for each committed stage.
    pub stages: Vec<(String, u64, u32)>,
    /// Total time from first to last event, ms.
    pub total_ms: u64,
    /// Who wrote the manifest.
    pub planner: Option<String>,
    /// Technical QA score and checks passed/total.
    pub technical: Option<(f64, usize, usize)>,
    /// Semantic QA score.
    pub semantic: Option<f64>,
    /// Supervisor reasons.
    pub decision: Vec<String>,
    /// The signed cost certificate (estimate, tier, pricing version).
    pub cost: Option<Certificate>,
    /// The tier decision: requested and chosen tier, reason.
    pub tier_decision: Option<TierDecision>,
    /// Actual cost against the estimate (variance, overrun flag), once delivered.
    pub cost_reconciliation: Option<Reconciliation>,
    /// Subtitle status per language.
    pub subtitles: Vec<LanguageStatus>,
    /// Render facts (resolution, fps, frames, encode fps, the mix's loudness).
    pub render: Option<RenderOutput>,
    /// The narration: who spoke (the engine named for what it is), rate, fit, or why there is
    /// none.
    pub narration: Option<Narration>,
    /// Deliverable files relative to the job directory.
    pub files: Vec<String>,
    /// The job directory.
    pub job_dir: PathBuf,
}

fn store_err(e: MemoryError) -> StoreError {
    StoreError::Setup(e.to_string())
}

impl Summary {
    /// Read everything the summary needs from the store.
    pub fn load(store: &dyn Store, id: &str, job_dir: &Path) -> Result<Self, StoreError> {
        let job = store.job(id)?;
        let history = store.history(id)?;
        let memory = Memory::new(store.memory(id)?);
        let mut path = vec!["init".to_owned()];
        let mut stages = Vec::new();
        for h in &history {
            if h.from != h.to {
                path.push(h.to.clone());
                if !matches!(h.event.as_str(), "approve" | "cancel") || h.duration_ms > 0 {
                    stages.push((h.from.clone(), h.duration_ms, h.attempt));
                }
            }
        }
        let total_ms = match (history.first(), history.last()) {
            (Some(a), Some(b)) => (b.at - job.created_at.min(a.at)).num_milliseconds().max(0) as u64,
            _ => 0,
        };
        let technical = memory.get::<TechnicalReport>().map_err(store_err)?.map(|r| {
            let passed = r.checks.iter().filter(|c| c.passed).count();
            (r.technical_score, passed, r.checks.len())
        });
        let failure = match &job.state {
            crate::pipeline::machine::State::Failed { stage, error } => Some((stage.clone(), error.clone())),
            _ => None,
        };
        let delivery = memory.get::<DeliveryManifest>().map_err(store_err)?;
        let planner = memory.entry(Section::ProductionManifest).and_then(|e| e.metadata.as_ref()).map(|m| {
            #[derive(serde::Deserialize, Default)]
            struct PlannerNote {
                #[serde(default)]
                model_used: Option<String>,
                #[serde(default)]
                note: Option<String>,
            }
            let n: PlannerNote = serde_json::from_value(m.clone()).unwrap_or_default();
            format!("{} ({})", n.model_used.as_deref().unwrap_or("?"), n.note.as_deref().unwrap_or(""))
        });
        Ok(Summary {
            job_id: id.to_owned(),
            state: job.state.name().to_owned(),
            failure,
            path,
            stages,
            total_ms,
            planner,
            technical,
            semantic: memory.get::<agents::semantic::SemanticReport>().map_err(store_err)?.map(|r| r.score),
            decision: memory
                .get::<agents::supervisor::Verdict>()
                .map_err(store_err)?
                .map(|v| v.reasons)
                .unwrap_or_default(),
            cost: memory.get::<CostCertification>().map_err(store_err)?.map(|c| c.certificate),
            tier_decision: memory.get::<BackendSelection>().map_err(store_err)?.map(|s| TierDecision {
                requested_tier: s.requested_tier,
                tier: s.tier,
                backend: s.backend,
                reason: s.orchestration.decision.reason,
                warnings: s.orchestration.decision.warnings,
            }),
            cost_reconciliation: delivery.as_ref().and_then(|d| d.cost.reconciled().cloned()),
            subtitles: memory
                .get::<agents::visual::Translation>()
                .map_err(store_err)?
                .map(|t| t.languages)
                .unwrap_or_default(),
            render: memory.get::<GeneratedAssets>().map_err(store_err)?.map(|a| a.output),
            narration: memory.get::<Narration>().map_err(store_err)?,
            files: delivery.map(|d| d.files.into_iter().map(|f| f.path).collect()).unwrap_or_default(),
            job_dir: job_dir.to_path_buf(),
        })
    }

    /// The human-readable summary. `out` is where the deliverables were copied, if anywhere.
    pub fn render(&self, out: Option<&Path>) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "\njob {}: {} in {:.1} s", self.job_id, self.state, self.total_ms as f64 / 1000.0);
        if let Some((stage, error)) = &self.failure {
            let _ = writeln!(s, "  failed at {stage}: {error}");
        }
        let _ = writeln!(s, "  path: {}", self.path.join(" → "));
        let _ = writeln!(s, "  stages:");
        for (stage, ms, attempts) in &self.stages {
            let retry = if *attempts > 1 { format!(" ({attempts} attempts)") } else { String::new() };
            let _ = writeln!(s, "    {stage:<16} {ms:>7} ms{retry}");
        }
        if let Some(p) = &self.planner {
            let _ = writeln!(s, "  manifest by: {p}");
        }
        if let Some(r) = &self.render {
            let _ = writeln!(
                s,
                "  render: {}x{} @ {} fps, {} frames, {:.1} s, encoded at {:.0} fps",
                r.width, r.height, r.fps, r.frames, r.duration_s, r.encode_fps
            );
        }
        match self.narration.as_ref().map(|n| (n, n.spoken())) {
            Some((n, Some(track))) => {
                let _ = writeln!(
                    s,
                    "  narration: {} — {}, rate {:.2}×, scenes fitted to {:.1} s, real-time factor {:.2}",
                    track.voice.as_deref().unwrap_or("?"),
                    track.engine_description.as_deref().unwrap_or("?"),
                    n.rate,
                    n.total_duration_s,
                    n.real_time_factor.unwrap_or(0.0)
                );
                if let Some(why) = &track.reason {
                    let _ = writeln!(s, "    {why}");
                }
                for dropped in &n.shortened {
                    let _ = writeln!(s, "    dropped to fit: {dropped}");
                }
                for other in n.tracks.iter().skip(1) {
                    match other.status {
                        NarrationStatus::Narrated => {
                            let _ = writeln!(
                                s,
                                "  narration ({}): {} — {}{}",
                                other.lang,
                                other.voice.as_deref().unwrap_or("?"),
                                other.engine_description.as_deref().unwrap_or("?"),
                                other.reason.as_deref().map(|r| format!("; {r}")).unwrap_or_default()
                            );
                        }
                        _ => {
                            let _ = writeln!(
                                s,
                                "  narration ({}): none — {}",
                                other.lang,
                                other.reason.as_deref().unwrap_or("?")
                            );
                        }
                    }
                }
            }
            Some((n, None)) => {
                let what = if n.status == NarrationStatus::Disabled { "off" } else { "none" };
                let _ = writeln!(s, "  narration: {what} — {}", n.reason.as_deref().unwrap_or("?"));
            }
            None => {}
        }
        if let Some(l) = self.render.as_ref().and_then(|r| r.loudness.as_ref()) {
            let _ = writeln!(
                s,
                "  mix: {:.1} LUFS integrated, true peak {:.1} dBTP (target {} LUFS, ≤ {} dBTP), music ducked {} dB under speech",
                l.integrated_lufs, l.true_peak_dbtp, l.target_lufs, l.true_peak_limit_dbtp, l.duck_db
            );
        }
        for t in self.render.iter().flat_map(|r| r.soundtracks.iter().skip(1)) {
            let _ = writeln!(
                s,
                "  mix ({}): {:.1} LUFS integrated, true peak {:.1} dBTP",
                t.lang.as_deref().unwrap_or("music"),
                t.loudness.integrated_lufs,
                t.loudness.true_peak_dbtp
            );
        }
        if let Some((score, passed, total)) = self.technical {
            let _ = writeln!(s, "  technical QA: {score:.2} ({passed}/{total} checks passed)");
        }
        if let Some(score) = self.semantic {
            let _ = writeln!(s, "  semantic QA: {score:.2}");
        }
        for reason in &self.decision {
            let _ = writeln!(s, "  decision: {reason}");
        }
        if let Some(c) = &self.cost {
            let _ = writeln!(
                s,
                "  cost estimate: ${:.4} (${:.4}/min of output; {} tier via {}, pricing {}; {})",
                c.estimate.total,
                c.estimate.cost_per_minute,
                c.chosen_tier,
                c.backend,
                c.pricing_version,
                c.calibration,
            );
        }
        if let Some(t) = &self.tier_decision
            && t.requested_tier != t.tier
        {
            let _ = writeln!(s, "  tier changed: {} → {} ({})", t.requested_tier, t.tier, t.reason);
        }
        if let Some(r) = &self.cost_reconciliation {
            let flag = if r.overrun_flagged {
                format!(" — OVERRUN beyond the allowed {}%", r.max_overrun_pct)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  cost actual: ${:.4} (${:.4}/min of output, {:.2} CPU-s), variance {:+.1}% vs estimate{flag}",
                r.actual.total, r.actual.cost_per_minute, r.actual.cpu_s, r.variance_pct,
            );
        }
        for l in &self.subtitles {
            match l.status.as_str() {
                "unavailable" => {
                    let _ = writeln!(s, "  subtitles {}: unavailable — {}", l.lang, l.reason.as_deref().unwrap_or(""));
                }
                status => {
                    let _ = writeln!(s, "  subtitles {}: {status}", l.lang);
                }
            }
        }
        let dir = out.unwrap_or(&self.job_dir);
        if !self.files.is_empty() {
            let _ = writeln!(s, "  outputs in {}:", dir.display());
            for f in &self.files {
                let _ = writeln!(s, "    {f}");
            }
        }
        s
    }
}

/// Copy a delivered job's files into `out`, keeping the relative layout.
pub fn copy_deliverables(job_dir: &Path, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut copied = Vec::new();
    copy_dir(job_dir, job_dir, out, &mut copied)?;
    Ok(copied)
}

fn copy_dir(root: &Path, dir: &Path, out: &Path, copied: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let target = out.join(rel);
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(root, &path, out, copied)?;
        } else if !entry.file_name().to_string_lossy().starts_with('.') {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(&path, &target)?;
            copied.push(target);
        }
    }
    Ok(())
}
