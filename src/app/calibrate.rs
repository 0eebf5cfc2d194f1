//! `aiprod calibrate`: measure what each stage costs on this machine.
//!
//! For every tier it drives two short real jobs (different lengths) through the real pipeline
//! — the real renderer (`agents::render`), the real QA gate — on a private in-memory store and
//! a scratch directory, reads the process CPU time the driver journaled for each stage
//! (`cpu_ms`), and fits `fixed + per_mpf × megapixel-frames` per stage through the two
//! points (voicing `fixed + per_output × seconds of speech`, semantic QA `fixed + per_output
//! × seconds of soundtrack`: neither follows the pixels). The calibration jobs never touch
//! the real job database, so they do not count towards the day's spend.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use agents::CancelToken;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::finance::model::{Calibration, CalibrationSource, Linear, STAGES, TierCoefficients, build_profile};
use crate::memory::sections::{DeliveryManifest, GeneratedAssets};
use crate::memory::{Section, decode};
use crate::pipeline::driver::Driver;
use crate::pipeline::machine::State;
use crate::sanitize::BriefRequest;
use crate::store::{SqliteStore, Store};

/// One measured calibration job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRun {
    /// Tier rendered.
    pub tier: String,
    /// Requested length.
    pub seconds: u32,
    /// Megapixel-frames rendered.
    pub mpf: f64,
    /// Seconds of speech its narration holds (estimated from the text, as the costing stage
    /// does).
    #[serde(default)]
    pub speech_s: f64,
    /// CPU-seconds per stage.
    pub stage_cpu: Vec<(String, f64)>,
    /// Deliverable bytes.
    pub bytes: u64,
}

const BRIEF: &str =
    "Calibration clip: a calm product shot of running shoes in soft morning light, with a short caption.";

/// Run one calibration job and measure it.
async fn measure(config: &Arc<Config>, scratch: &Path, tier: &str, seconds: u32) -> Result<CalibrationRun, String> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().map_err(|e| e.to_string())?);
    let driver = Driver::new(config.clone(), store.clone(), scratch.to_path_buf());
    let request = BriefRequest {
        content: BRIEF.into(),
        duration_sec: Some(seconds),
        aspect_ratio: Some("16:9".into()),
        languages: Some(vec!["en".into()]),
        preset: Some("quick_social".into()),
        priority: None,
        budget: None,
        brand_id: None,
        tier: Some(tier.into()),
        ..Default::default()
    };
    let job = driver.submit(&request, true).map_err(|e| e.to_string())?;
    let state = driver.drive(&job.id, &CancelToken::new()).await.map_err(|e| e.to_string())?;
    if state != (State::Delivered {}) {
        return Err(format!("calibration job at tier {tier} ended in {state:?}"));
    }
    let assets = store.section(&job.id, Section::GeneratedAssets).map_err(|e| e.to_string())?.ok_or("no render")?;
    let out = decode::<GeneratedAssets>(&assets).map_err(|e| e.to_string())?.output;
    let (w, h, frames) = (out.width as f64, out.height as f64, out.frames as f64);
    // 16:9: the short side is the height.
    if out.height != config.render.tiers[tier].short_side {
        return Err(format!("calibration job for tier {tier} rendered {w}x{h}, not that tier"));
    }
    let bytes = match store.section(&job.id, Section::DeliveryManifest).map_err(|e| e.to_string())? {
        Some(entry) => decode::<DeliveryManifest>(&entry).map_err(|e| e.to_string())?.bytes(),
        None => 0,
    };
    let manifest = store.section(&job.id, Section::ProductionManifest).map_err(|e| e.to_string())?;
    let speech_s = match manifest {
        Some(entry) => {
            let manifest = decode::<agents::domain::ProductionManifest>(&entry).map_err(|e| e.to_string())?;
            agents::script::speech::total_seconds(manifest.scenes.iter().map(|s| s.narration.as_str()))
        }
        None => 0.0,
    };
    let history = store.history(&job.id).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(driver.job_dir(&job.id));
    Ok(CalibrationRun {
        tier: tier.into(),
        seconds,
        mpf: w * h * frames / 1e6,
        speech_s,
        stage_cpu: crate::finance::daily::stage_cpu(&history),
        bytes,
    })
}

/// Fit a line through two points; slopes below zero (noise) become a constant.
fn fit(x1: f64, y1: f64, x2: f64, y2: f64) -> Linear {
    if (x2 - x1).abs() < 1e-9 {
        return Linear { fixed_s: (y1 + y2) / 2.0, per_mpf_s: 0.0, per_output_s: 0.0 };
    }
    let slope = (y2 - y1) / (x2 - x1);
    if slope <= 0.0 {
        return Linear { fixed_s: (y1 + y2) / 2.0, per_mpf_s: 0.0, per_output_s: 0.0 };
    }
    let fixed = y1 - slope * x1;
    if fixed < 0.0 {
        // Through the origin, matching the larger (less noisy) point.
        return Linear { fixed_s: 0.0, per_mpf_s: y2 / x2, per_output_s: 0.0 };
    }
    Linear { fixed_s: fixed, per_mpf_s: slope, per_output_s: 0.0 }
}

/// The config the calibration jobs run with: no rule may move a job off its tier.
fn calibration_config(config: &Config) -> Config {
    let mut c = config.clone();
    for p in c.presets.values_mut() {
        p.min_quality = 0.0;
    }
    c.financial.cost_controls.auto_downgrade = false;
    c.financial.max_cost_per_minute = f64::MAX / 4.0;
    c.financial.force_fast_track_if_cost_exceeds = f64::MAX / 4.0;
    c.fast_track.cost_ceiling = f64::MAX / 4.0;
    c.fast_track.max_latency_sec = u32::MAX;
    for m in c.financial.quality_to_cost_mapping.values_mut() {
        m.max_cost_per_minute = f64::MAX / 4.0;
    }
    c.financial.daily_limit = f64::MAX / 4.0;
    c.orchestrator.retry_policy.max_retries = 0;
    c.orchestrator.retry_policy.backoff_sec = 0.0;
    c
}

/// Measure every tier at `short` and `long` seconds (5 ≤ short < long ≤ 30) in `scratch`.
pub async fn calibrate(
    config: &Config,
    scratch: &Path,
    short: u32,
    long: u32,
    report: impl Fn(&CalibrationRun),
) -> Result<(Calibration, Vec<CalibrationRun>), String> {
    if !(5 <= short && short < long && long <= 30) {
        return Err(format!("calibration lengths must satisfy 5 ≤ short < long ≤ 30, got {short} and {long}"));
    }
    let config = Arc::new(calibration_config(config));
    let mut runs = Vec::new();
    let mut tiers = BTreeMap::new();
    for tier in config.render.tiers.keys() {
        let a = measure(&config, scratch, tier, short).await?;
        report(&a);
        let b = measure(&config, scratch, tier, long).await?;
        report(&b);
        let cpu =
            |r: &CalibrationRun, s: &str| r.stage_cpu.iter().find(|(n, _)| n == s).map(|(_, c)| *c).unwrap_or(0.0);
        let default_voice_rate = Calibration::defaults().tiers["standard"].stages["voicing"].per_output_s;
        let stages = STAGES
            .iter()
            .map(|s| {
                let line = if *s == "voicing" {
                    // The voice's time follows the seconds it speaks; when both clips say the
                    // same, only its start-up is measured and the default rate is kept.
                    let l = fit(a.speech_s, cpu(&a, s), b.speech_s, cpu(&b, s));
                    if l.per_mpf_s > 0.0 {
                        Linear { fixed_s: l.fixed_s, per_mpf_s: 0.0, per_output_s: l.per_mpf_s }
                    } else {
                        let fixed_s = (l.fixed_s - default_voice_rate * a.speech_s).max(0.0);
                        Linear { fixed_s, per_mpf_s: 0.0, per_output_s: default_voice_rate }
                    }
                } else if *s == "semantic_qa" {
                    // The perception checks follow the seconds of soundtrack, not the pixels.
                    let l = fit(a.seconds as f64, cpu(&a, s), b.seconds as f64, cpu(&b, s));
                    Linear { fixed_s: l.fixed_s, per_mpf_s: 0.0, per_output_s: l.per_mpf_s }
                } else {
                    fit(a.mpf, cpu(&a, s), b.mpf, cpu(&b, s))
                };
                (s.to_string(), line)
            })
            .collect();
        let bytes_per_mpf = (a.bytes + b.bytes) as f64 / (a.mpf + b.mpf);
        tiers.insert(tier.clone(), TierCoefficients { stages, bytes_per_mpf });
        runs.push(a);
        runs.push(b);
    }
    let calibration = Calibration {
        source: CalibrationSource::Measured,
        measured_at: Some(chrono::Utc::now()),
        build: build_profile().into(),
        note: format!(
            "measured by `aiprod calibrate` ({short} s and {long} s renders at every tier, {} build)",
            build_profile()
        ),
        tiers,
    };
    Ok((calibration, runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_goes_through_both_points_and_clamps_noise() {
        let l = fit(1.0, 1.5, 3.0, 2.5);
        assert!((l.fixed_s - 1.0).abs() < 1e-9 && (l.per_mpf_s - 0.5).abs() < 1e-9);
        assert_eq!(fit(1.0, 2.0, 3.0, 1.0), Linear { fixed_s: 1.5, per_mpf_s: 0.0, per_output_s: 0.0 });
        let origin = fit(1.0, 0.1, 3.0, 3.0);
        assert_eq!(origin.fixed_s, 0.0);
        assert!((origin.per_mpf_s - 1.0).abs() < 1e-9);
    }
}
