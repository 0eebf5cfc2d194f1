//! The end-of-run summary: state path, per-stage timings, QA scores, decision, cost and the
//! output files — read back from the store, so it shows what was journaled, not what the
//! process believes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::memory::Section;
use crate::store::{Store, StoreError};

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
    pub cost: Option<Value>,
    /// The tier decision: requested and chosen tier, reason.
    pub tier_decision: Option<Value>,
    /// Actual cost against the estimate (variance, overrun flag), once delivered.
    pub cost_reconciliation: Option<Value>,
    /// Subtitle status per language.
    pub subtitles: Vec<Value>,
    /// Render facts (resolution, fps, frames, encode fps, loudness).
    pub render: Option<Value>,
    /// The narration: who spoke (engine named honestly), rate, fit, or why there is none.
    pub narration: Option<Value>,
    /// Deliverable files relative to the job directory.
    pub files: Vec<String>,
    /// The job directory.
    pub job_dir: PathBuf,
}

impl Summary {
    /// Read everything the summary needs from the store.
    pub fn load(store: &dyn Store, id: &str, job_dir: &Path) -> Result<Self, StoreError> {
        let job = store.job(id)?;
        let history = store.history(id)?;
        let memory = store.memory(id)?;
        let content = |s: Section| memory.get(&s).map(|e| e.content.clone());
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
        let technical = content(Section::TechnicalValidationReport).map(|r| {
            let checks = r["checks"].as_array().cloned().unwrap_or_default();
            let passed = checks.iter().filter(|c| c["passed"] == Value::Bool(true)).count();
            (r["technical_score"].as_f64().unwrap_or(0.0), passed, checks.len())
        });
        let failure = match &job.state {
            crate::pipeline::machine::State::Failed { stage, error } => Some((stage.clone(), error.clone())),
            _ => None,
        };
        let files = content(Section::DeliveryManifest)
            .and_then(|d| d["files"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f["path"].as_str().map(str::to_owned))
            .collect();
        Ok(Summary {
            job_id: id.to_owned(),
            state: job.state.name().to_owned(),
            failure,
            path,
            stages,
            total_ms,
            planner: memory
                .get(&Section::ProductionManifest)
                .and_then(|e| e.metadata.as_ref())
                .map(|m| format!("{} ({})", m["model_used"].as_str().unwrap_or("?"), m["note"].as_str().unwrap_or(""))),
            technical,
            semantic: content(Section::ConsistencyReport).and_then(|r| r["score"].as_f64()),
            decision: content(Section::FinalApproval)
                .and_then(|v| v["reasons"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
            cost: content(Section::CostCertification).map(|c| c["certificate"].clone()),
            tier_decision: content(Section::OptimizedBackendSelection).map(|s| {
                serde_json::json!({
                    "requested_tier": s["requested_tier"], "tier": s["tier"], "backend": s["backend"],
                    "reason": s["orchestration"]["decision"]["reason"],
                    "warnings": s["orchestration"]["decision"]["warnings"],
                })
            }),
            cost_reconciliation: content(Section::DeliveryManifest)
                .map(|d| d["cost"].clone())
                .filter(|c| c.is_object()),
            subtitles: content(Section::PromptBundle)
                .and_then(|p| p["languages"].as_array().cloned())
                .unwrap_or_default(),
            render: content(Section::GeneratedAssets).map(|a| a["output"].clone()),
            narration: content(Section::Narration).map(|n| {
                let t = &n["tracks"][0];
                serde_json::json!({
                    "status": n["status"], "reason": n["reason"], "voice": t["voice"],
                    "engine": t["engine_description"], "fallback": t["reason"], "rate": n["rate"],
                    "total_duration_s": n["total_duration_s"], "real_time_factor": n["real_time_factor"],
                    "shortened": n["shortened"],
                })
            }),
            files,
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
                r["width"],
                r["height"],
                r["fps"],
                r["frames"],
                r["duration_s"].as_f64().unwrap_or(0.0),
                r["encode_fps"].as_f64().unwrap_or(0.0)
            );
        }
        if let Some(n) = &self.narration {
            if n["status"] == "narrated" {
                let _ = writeln!(
                    s,
                    "  narration: {} — {}, rate {:.2}×, scenes fitted to {:.1} s, real-time factor {:.2}",
                    n["voice"].as_str().unwrap_or("?"),
                    n["engine"].as_str().unwrap_or("?"),
                    n["rate"].as_f64().unwrap_or(1.0),
                    n["total_duration_s"].as_f64().unwrap_or(0.0),
                    n["real_time_factor"].as_f64().unwrap_or(0.0)
                );
                if let Some(f) = n["fallback"].as_str() {
                    let _ = writeln!(s, "    {f}");
                }
                for dropped in n["shortened"].as_array().into_iter().flatten() {
                    let _ = writeln!(s, "    dropped to fit: {dropped}");
                }
            } else {
                let _ = writeln!(s, "  narration: none — {}", n["reason"].as_str().unwrap_or("?"));
            }
        }
        if let Some(l) = self.render.as_ref().map(|r| &r["loudness"]).filter(|l| l.is_object()) {
            let _ = writeln!(
                s,
                "  mix: {:.1} LUFS integrated, true peak {:.1} dBTP (target {} LUFS, ≤ {} dBTP), bed ducked {} dB under speech",
                l["integrated_lufs"].as_f64().unwrap_or(f64::NAN),
                l["true_peak_dbtp"].as_f64().unwrap_or(f64::NAN),
                l["target_lufs"],
                l["true_peak_limit_dbtp"],
                l["duck_db"]
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
            let e = &c["estimate"];
            let _ = writeln!(
                s,
                "  cost estimate: ${:.4} (${:.4}/min of output; {} tier via {}, pricing {}; {})",
                e["total"].as_f64().unwrap_or(0.0),
                e["cost_per_minute"].as_f64().unwrap_or(0.0),
                c["chosen_tier"].as_str().unwrap_or("?"),
                c["backend"].as_str().unwrap_or("?"),
                c["pricing_version"].as_str().unwrap_or("?"),
                c["calibration"].as_str().unwrap_or("?"),
            );
        }
        if let Some(t) = &self.tier_decision
            && t["requested_tier"] != t["tier"]
        {
            let _ = writeln!(
                s,
                "  tier changed: {} → {} ({})",
                t["requested_tier"].as_str().unwrap_or("?"),
                t["tier"].as_str().unwrap_or("?"),
                t["reason"].as_str().unwrap_or("")
            );
        }
        if let Some(r) = &self.cost_reconciliation {
            let a = &r["actual"];
            let flag = if r["overrun_flagged"] == Value::Bool(true) {
                format!(" — OVERRUN beyond the allowed {}%", r["max_overrun_pct"])
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  cost actual: ${:.4} (${:.4}/min of output, {:.2} CPU-s), variance {:+.1}% vs estimate{flag}",
                a["total"].as_f64().unwrap_or(0.0),
                a["cost_per_minute"].as_f64().unwrap_or(0.0),
                a["cpu_s"].as_f64().unwrap_or(0.0),
                r["variance_pct"].as_f64().unwrap_or(0.0),
            );
        }
        for l in &self.subtitles {
            let lang = l["lang"].as_str().unwrap_or("?");
            match l["status"].as_str() {
                Some("unavailable") => {
                    let _ = writeln!(s, "  subtitles {lang}: unavailable — {}", l["reason"].as_str().unwrap_or(""));
                }
                Some(status) => {
                    let _ = writeln!(s, "  subtitles {lang}: {status}");
                }
                None => {}
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
