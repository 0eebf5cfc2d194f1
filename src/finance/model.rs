//! The cost model: predicted CPU-seconds per stage from the plan (resolution, fps, duration →
//! megapixel-frames; the tier fixes the x264 preset), priced with the table in force; and the
//! actual cost from the CPU time each stage really used.
//!
//! Each stage's CPU time is modelled as `fixed + per_mpf × megapixel-frames`, one pair per
//! stage and tier, fitted by `aiprod calibrate` (see [`super::calibration`]). Without a
//! calibration the documented [`Calibration::defaults`] are used and every estimate says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::pricing::{PricingTable, RemoteBackend};

/// The stages (by the state they run in) whose CPU time is modelled, in pipeline order.
pub const STAGES: [&str; 11] = [
    "init",
    "sanitized",
    "planning",
    "translating",
    "costing",
    "voicing",
    "rendering",
    "technical_qa",
    "semantic_qa",
    "supervising",
    "delivering",
];

/// What a job will produce, as far as cost is concerned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Output duration in seconds.
    pub duration_s: f64,
    /// What the voices will speak: the voicing stage's time follows it, and each narrated
    /// language is a soundtrack mixed, encoded and measured.
    #[serde(default)]
    pub spoken: Spoken,
    /// Tokens each model will process, for models priced per token (none: the local models are
    /// priced by the CPU time of the stage they run in).
    pub tokens: BTreeMap<String, u64>,
    /// CPU-seconds already measured for stages that have run (state name → seconds). The
    /// costing stage runs after planning and translating, whose CPU time depends on the local
    /// models (a 135M LLM planning for a minute); those are priced as measured, not modelled.
    #[serde(default)]
    pub measured: BTreeMap<String, f64>,
}

/// Share of each language's video the voice is assumed to fill before a plan exists.
pub const SPEECH_SHARE: f64 = 0.5;

/// What the voices will speak, as far as cost is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spoken {
    /// Languages narrated (at least one): each is a soundtrack mixed, encoded and measured.
    pub languages: u32,
    /// Seconds of speech of all languages together, estimated from the plan's narration text
    /// (`agents::script::speech`); `None` before a plan exists (a quote), when
    /// [`SPEECH_SHARE`] of each language's video is assumed.
    pub speech_s: Option<f64>,
}

impl Default for Spoken {
    fn default() -> Self {
        Spoken { languages: 1, speech_s: None }
    }
}

impl Spoken {
    /// `languages` narrated, speech not yet written.
    pub fn languages(languages: usize) -> Self {
        Spoken { languages: languages.max(1) as u32, speech_s: None }
    }
}

impl Workload {
    /// Seconds `stage` works through: the voice the seconds it speaks, the renderer and
    /// semantic QA one soundtrack per language, everything else the video.
    fn output_s(&self, stage: &str) -> f64 {
        let languages = self.spoken.languages.max(1) as f64;
        match stage {
            "voicing" => self.spoken.speech_s.unwrap_or(self.duration_s * languages * SPEECH_SHARE),
            "rendering" | "semantic_qa" => self.duration_s * languages,
            _ => self.duration_s,
        }
    }

    /// Width × height × frames, in millions: the unit render and decode time scale with.
    pub fn megapixel_frames(&self) -> f64 {
        let frames = (self.duration_s * self.fps as f64).round().max(1.0);
        self.width as f64 * self.height as f64 * frames / 1e6
    }
}

/// CPU-seconds of one stage: `fixed_s + per_mpf_s × megapixel-frames + per_output_s ×
/// seconds of output` (the last for work that scales with length, not resolution: the voice).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Seconds regardless of size.
    pub fixed_s: f64,
    /// Seconds per megapixel-frame.
    pub per_mpf_s: f64,
    /// Seconds per second of output, whatever the resolution (absent in older calibrations).
    #[serde(default)]
    pub per_output_s: f64,
}

impl Linear {
    /// A stage modelled as free.
    pub const ZERO: Linear = Linear { fixed_s: 0.0, per_mpf_s: 0.0, per_output_s: 0.0 };

    fn at(&self, mpf: f64, output_s: f64) -> f64 {
        (self.fixed_s + self.per_mpf_s * mpf + self.per_output_s * output_s).max(0.0)
    }
}

/// The coefficients of one tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierCoefficients {
    /// Per stage (state name).
    pub stages: BTreeMap<String, Linear>,
    /// Bytes of deliverables per megapixel-frame (storage and egress).
    pub bytes_per_mpf: f64,
}

/// Where coefficients came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationSource {
    /// Measured on this machine by `aiprod calibrate`.
    Measured,
    /// The documented defaults (no calibration file).
    Defaults,
}

/// Coefficients for every tier, as `aiprod calibrate` writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Measured or defaults.
    pub source: CalibrationSource,
    /// When it was measured.
    pub measured_at: Option<DateTime<Utc>>,
    /// `release` or `debug`: CPU time differs a lot between the two builds.
    pub build: String,
    /// How it was obtained, in words.
    pub note: String,
    /// Per tier name.
    pub tiers: BTreeMap<String, TierCoefficients>,
}

/// The build this binary is.
pub fn build_profile() -> &'static str {
    if cfg!(debug_assertions) { "debug" } else { "release" }
}

/// The calibration file in a data dir.
pub fn calibration_path(data_dir: &Path) -> PathBuf {
    data_dir.join("cost_calibration.json")
}

impl Calibration {
    /// Defaults: the coefficients measured on a shared 2-core development VM (release build;
    /// 5, 15 and 30 s renders in one and two narrated languages, child processes' CPU time
    /// included, rounded). Real machines differ; calibrate yours. Stages not listed measured
    /// under a millisecond and are modelled as free.
    pub fn defaults() -> Self {
        let tier = |render_per_mpf: f64, qa: Linear, bytes: f64| {
            let mut stages: BTreeMap<String, Linear> = STAGES.iter().map(|s| (s.to_string(), Linear::ZERO)).collect();
            // Frames (per megapixel-frame) plus the mix and the AAC encode of each language's
            // soundtrack (per second of output and language).
            stages.insert("rendering".into(), Linear { fixed_s: 0.45, per_mpf_s: render_per_mpf, per_output_s: 0.06 });
            stages.insert("technical_qa".into(), qa);
            // Mostly the tools' start-up (tesseract per caption crop, ffmpeg decodes,
            // pocketsphinx), then each soundtrack measured: 1.1–1.7 CPU-s for 5 s of video,
            // 3.2 for 30 s, 3.1–4.2 for 15 s in two languages (the same job varies by ±20 %
            // on a shared VM; these sit near the middle so a normal run is no overrun).
            stages.insert("semantic_qa".into(), Linear { fixed_s: 1.9, per_mpf_s: 0.0, per_output_s: 0.05 });
            // The Piper voice loads once (≈ 0.3 CPU-s), then ≈ 0.06 CPU-s per second of speech
            // (espeak-ng for other languages costs about the same with its start-up).
            stages.insert("voicing".into(), Linear { fixed_s: 0.3, per_mpf_s: 0.0, per_output_s: 0.06 });
            TierCoefficients { stages, bytes_per_mpf: bytes }
        };
        let tiers = BTreeMap::from([
            ("economy".to_owned(), tier(0.0100, Linear { fixed_s: 0.05, per_mpf_s: 0.00095, ..Linear::ZERO }, 4800.0)),
            ("standard".to_owned(), tier(0.0075, Linear { fixed_s: 0.0, per_mpf_s: 0.00126, ..Linear::ZERO }, 3100.0)),
            ("premium".to_owned(), tier(0.0121, Linear { fixed_s: 0.0, per_mpf_s: 0.0015, ..Linear::ZERO }, 1850.0)),
        ]);
        Calibration {
            source: CalibrationSource::Defaults,
            measured_at: None,
            build: "release".into(),
            note: "documented defaults (no calibration file; run `aiprod calibrate` on this machine)".into(),
            tiers,
        }
    }

    /// The calibration in `data_dir`, or the defaults when there is none or it is unreadable
    /// (the note says which and why).
    pub fn load_or_default(data_dir: &Path) -> Self {
        let path = calibration_path(data_dir);
        match std::fs::read_to_string(&path) {
            Err(_) => Self::defaults(),
            Ok(text) => match serde_json::from_str::<Calibration>(&text) {
                Ok(mut c) => {
                    if c.build != build_profile() {
                        c.note = format!(
                            "{} — measured with a {} build, this is a {} build: CPU times will differ",
                            c.note,
                            c.build,
                            build_profile()
                        );
                    }
                    c
                }
                Err(e) => {
                    let mut d = Self::defaults();
                    d.note = format!("{} — {} is unreadable: {e}", d.note, path.display());
                    d
                }
            },
        }
    }

    /// Coefficients for `tier`: its own, else `standard`'s (a tier added to config after the
    /// calibration).
    pub fn for_tier(&self, tier: &str) -> Option<&TierCoefficients> {
        self.tiers.get(tier).or_else(|| self.tiers.get("standard"))
    }

    /// Write atomically to the data dir.
    pub fn save(&self, data_dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(data_dir)?;
        let path = calibration_path(data_dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

/// One stage's share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageCost {
    /// Stage (state name).
    pub stage: String,
    /// CPU-seconds (predicted or measured).
    pub cpu_s: f64,
    /// USD.
    pub cost: f64,
}

/// One model's share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCost {
    /// Model name.
    pub model: String,
    /// Tokens processed.
    pub tokens: u64,
    /// USD.
    pub cost: f64,
}

/// Remote rendering share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteCost {
    /// Backend name.
    pub backend: String,
    /// Seconds of output billed.
    pub output_s: f64,
    /// USD.
    pub cost: f64,
}

/// A priced breakdown: what an estimate predicts or what a job actually cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostBreakdown {
    /// Per stage, in pipeline order.
    pub stages: Vec<StageCost>,
    /// Total CPU-seconds.
    pub cpu_s: f64,
    /// USD for CPU time.
    pub compute: f64,
    /// Per model.
    pub models: Vec<ModelCost>,
    /// Remote render, when a remote backend renders.
    pub remote: Option<RemoteCost>,
    /// Deliverable bytes (predicted or measured).
    pub bytes: u64,
    /// USD for storing them `storageMonths`.
    pub storage: f64,
    /// USD for delivering them once.
    pub egress: f64,
    /// USD in all.
    pub total: f64,
    /// Seconds of output.
    pub duration_s: f64,
    /// USD per minute of output.
    pub cost_per_minute: f64,
    /// Pricing table version.
    pub pricing_version: String,
}

/// Round money to 1/1,000,000 USD and CPU-seconds to the millisecond.
pub fn usd(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn secs(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

const GB: f64 = 1e9;

/// Price CPU time per stage, model tokens and bytes into a breakdown.
pub fn price(
    pricing: &PricingTable,
    stage_cpu: &[(String, f64)],
    tokens: &BTreeMap<String, u64>,
    remote: Option<(&str, &RemoteBackend)>,
    bytes: u64,
    duration_s: f64,
) -> CostBreakdown {
    let stages: Vec<StageCost> = stage_cpu
        .iter()
        .map(|(s, cpu)| StageCost { stage: s.clone(), cpu_s: secs(*cpu), cost: usd(cpu * pricing.cpu_second) })
        .collect();
    let cpu_s: f64 = stage_cpu.iter().map(|(_, c)| c).sum();
    let compute = cpu_s * pricing.cpu_second;
    let models: Vec<ModelCost> = tokens
        .iter()
        .map(|(m, t)| {
            let rate = pricing.models.get(m).map(|r| r.per_1k_tokens).unwrap_or(0.0);
            ModelCost { model: m.clone(), tokens: *t, cost: usd(*t as f64 / 1000.0 * rate) }
        })
        .collect();
    let remote = remote.map(|(name, b)| RemoteCost {
        backend: name.to_owned(),
        output_s: duration_s,
        cost: usd(duration_s * b.price_per_output_second),
    });
    let storage = bytes as f64 / GB * pricing.storage_gb_month * pricing.storage_months;
    let egress = bytes as f64 / GB * pricing.egress_gb;
    let total = compute
        + models.iter().map(|m| m.cost).sum::<f64>()
        + remote.as_ref().map(|r| r.cost).unwrap_or(0.0)
        + storage
        + egress;
    CostBreakdown {
        stages,
        cpu_s: secs(cpu_s),
        compute: usd(compute),
        models,
        remote,
        bytes,
        storage: usd(storage),
        egress: usd(egress),
        total: usd(total),
        duration_s,
        cost_per_minute: if duration_s > 0.0 { usd(total / duration_s * 60.0) } else { 0.0 },
        pricing_version: pricing.version.clone(),
    }
}

/// Predict a job's cost on `tier` (and optionally a remote render backend, which replaces the
/// local render stage's CPU time with its per-second price).
pub fn predict(
    calibration: &Calibration,
    pricing: &PricingTable,
    tier: &str,
    work: &Workload,
    remote: Option<(&str, &RemoteBackend)>,
) -> CostBreakdown {
    let mpf = work.megapixel_frames();
    let fallback = TierCoefficients { stages: BTreeMap::new(), bytes_per_mpf: 0.0 };
    let coef = calibration.for_tier(tier).unwrap_or(&fallback);
    let stage_cpu: Vec<(String, f64)> = STAGES
        .iter()
        .map(|s| {
            let cpu = match (work.measured.get(*s), coef.stages.get(*s)) {
                (Some(measured), _) => *measured,
                (None, Some(_)) if remote.is_some() && *s == "rendering" => 0.0,
                (None, Some(l)) => l.at(mpf, work.output_s(s)),
                (None, None) => 0.0,
            };
            (s.to_string(), cpu)
        })
        .collect();
    let bytes = (coef.bytes_per_mpf * mpf).round() as u64;
    price(pricing, &stage_cpu, &work.tokens, remote, bytes, work.duration_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn work(short: u32) -> Workload {
        let (w, h) = agents::domain::AspectRatio::Landscape16x9.frame_size(short);
        Workload {
            width: w,
            height: h,
            fps: 25,
            duration_s: 20.0,
            spoken: Spoken::default(),
            tokens: BTreeMap::new(),
            measured: BTreeMap::new(),
        }
    }

    #[test]
    fn estimate_grows_with_resolution_and_adds_up() {
        let c = Config::builtin();
        let cal = Calibration::defaults();
        let small = predict(&cal, &c.pricing.table, "standard", &work(480), None);
        let big = predict(&cal, &c.pricing.table, "standard", &work(1080), None);
        assert!(big.total > small.total);
        let parts = big.compute + big.storage + big.egress;
        assert!((parts - big.total).abs() < 1e-5, "{parts} vs {}", big.total);
        assert_eq!(big.stages.len(), STAGES.len());
        assert!((big.cost_per_minute - big.total * 3.0).abs() < 1e-5);
    }

    #[test]
    fn a_second_narrated_language_is_a_second_voice() {
        let c = Config::builtin();
        let cal = Calibration::defaults();
        let one = predict(&cal, &c.pricing.table, "standard", &work(720), None);
        let two =
            predict(&cal, &c.pricing.table, "standard", &Workload { spoken: Spoken::languages(2), ..work(720) }, None);
        let stage = |b: &CostBreakdown, name: &str| b.stages.iter().find(|s| s.stage == name).unwrap().cpu_s;
        assert!(stage(&one, "voicing") > 0.0);
        // The voice loads once; before a plan, each language is assumed to fill half its video.
        let voice = cal.tiers["standard"].stages["voicing"];
        assert!(voice.per_output_s > 0.0);
        let added = stage(&two, "voicing") - stage(&one, "voicing");
        assert!((added - voice.per_output_s * 20.0 * SPEECH_SHARE).abs() < 2e-3, "{added}");
        // Once the plan is written, the voice costs what it will say.
        let planned = Spoken { languages: 2, speech_s: Some(6.0) };
        let said = predict(&cal, &c.pricing.table, "standard", &Workload { spoken: planned, ..work(720) }, None);
        assert!((stage(&said, "voicing") - (voice.fixed_s + voice.per_output_s * 6.0)).abs() < 2e-3);
        assert!(stage(&two, "rendering") > stage(&one, "rendering"), "a second soundtrack is mixed and encoded");
        assert_eq!(stage(&two, "technical_qa"), stage(&one, "technical_qa"));
        assert!(two.total > one.total);
    }

    #[test]
    fn remote_backend_replaces_local_render_time() {
        let c = Config::builtin();
        let cal = Calibration::defaults();
        let b = RemoteBackend { price_per_output_second: 0.01, quality: 0.9 };
        let local = predict(&cal, &c.pricing.table, "premium", &work(1080), None);
        let remote = predict(&cal, &c.pricing.table, "premium", &work(1080), Some(("cloud", &b)));
        let render = |b: &CostBreakdown| b.stages.iter().find(|s| s.stage == "rendering").unwrap().cpu_s;
        assert!(render(&local) > 0.0);
        assert_eq!(render(&remote), 0.0);
        assert_eq!(remote.remote.as_ref().unwrap().cost, 0.2);
    }

    #[test]
    fn missing_calibration_file_means_defaults_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let c = Calibration::load_or_default(dir.path());
        assert_eq!(c.source, CalibrationSource::Defaults);
        assert!(c.note.contains("aiprod calibrate"));
        std::fs::write(calibration_path(dir.path()), "{").unwrap();
        assert!(Calibration::load_or_default(dir.path()).note.contains("unreadable"));
        let mut m = Calibration::defaults();
        m.source = CalibrationSource::Measured;
        m.build = build_profile().into();
        m.save(dir.path()).unwrap();
        assert_eq!(Calibration::load_or_default(dir.path()), m);
    }
}
