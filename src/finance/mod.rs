//! Money: what a job will cost, what it did cost, and the rules that keep spending in bounds
//! (DESIGN §6, `financial` and `pricing` in config).
//!
//! - [`pricing`]: the versioned pricing table and its dynamic refresh (file or URL).
//! - [`model`]: per-stage CPU-time model with calibrated coefficients; estimate and actual.
//! - `aiprod calibrate` (measuring real renders at every tier) is a use case: `app::calibrate`.
//! - [`routing`]: the pure tier/backend selection rules (FinancialOrchestrator).
//! - [`daily`]: the daily budget guard and its refusal error.
//! - [`certificate`]: HMAC-signed cost certificates.
//! - [`audit`]: the hash-chained audit trail of pricing changes and cost decisions.
//! - [`cpu`]: process CPU time, which every actual cost is computed from.
//!
//! This module's functions are what callers use: [`orchestrate`] (the costing stage, and
//! `POST /cost-estimate`), [`preset_estimates`] (`GET /presets`), [`reconcile`] (delivery),
//! [`daily::status`] and [`daily::BudgetRefused`] (admission, `402`).

pub mod audit;
pub mod certificate;
pub mod cpu;
pub mod daily;
pub mod model;
pub mod pricing;
pub mod routing;

use std::collections::BTreeMap;

use agents::domain::AspectRatio;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::sanitize::SanitizedInput;
use crate::store::HistoryEvent;
use model::{Calibration, CalibrationSource, CostBreakdown, Spoken, Workload};
use pricing::PricingTable;
use routing::{Candidate, DailyLevel, Decision, Rules};

/// The render backend name of local tiers.
pub const LOCAL_BACKEND: &str = "local-cpu";

/// Where a job renders: on this machine's CPU, or on a priced remote backend. Stored and shown
/// as `local-cpu` / `remote:<name>` (the strings certificates have always signed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The local renderer.
    LocalCpu,
    /// A remote backend from the pricing table, by name.
    Remote(String),
}

impl Backend {
    /// The backend of a routing candidate (`remote:<name>` candidates are remote).
    pub fn of_candidate(name: &str) -> Self {
        match name.strip_prefix("remote:") {
            Some(remote) => Backend::Remote(remote.to_owned()),
            None => Backend::LocalCpu,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::LocalCpu => f.write_str(LOCAL_BACKEND),
            Backend::Remote(name) => write!(f, "remote:{name}"),
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            LOCAL_BACKEND => Ok(Backend::LocalCpu),
            _ => match s.strip_prefix("remote:") {
                Some(name) if !name.is_empty() => Ok(Backend::Remote(name.to_owned())),
                _ => Err(format!("unknown backend '{s}' (expected {LOCAL_BACKEND} or remote:<name>)")),
            },
        }
    }
}

impl Serialize for Backend {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Backend {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a cost decision could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FinanceError {
    /// The routing rules could not be applied.
    #[error(transparent)]
    Routing(#[from] routing::RoutingError),
    /// Signing failed.
    #[error(transparent)]
    Certificate(#[from] certificate::CertificateError),
}

/// One option, priced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// The option as the routing rules see it.
    pub candidate: Candidate,
    /// Its full estimate.
    pub breakdown: CostBreakdown,
    /// Render settings it implies.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

/// Price every local tier and remote backend for a video of `duration_s` in `aspect`.
pub fn quotes(
    config: &Config,
    pricing: &PricingTable,
    calibration: &Calibration,
    aspect: AspectRatio,
    duration_s: f64,
    spoken: Spoken,
    tokens: &BTreeMap<String, u64>,
    measured: &BTreeMap<String, f64>,
) -> Vec<Quote> {
    let mapping = &config.financial.quality_to_cost_mapping;
    let work = |width, height, fps| Workload {
        width,
        height,
        fps,
        duration_s,
        spoken,
        tokens: tokens.clone(),
        measured: measured.clone(),
    };
    let mut out = Vec::new();
    for (name, tier) in &config.render.tiers {
        let (width, height) = aspect.frame_size(tier.short_side);
        let breakdown = model::predict(calibration, pricing, name, &work(width, height, tier.fps), None);
        out.push(Quote {
            candidate: Candidate {
                name: name.clone(),
                tier: name.clone(),
                quality: mapping.get(name).map(|m| m.min_quality).unwrap_or(0.0),
                estimate: breakdown.total,
                cost_per_minute: breakdown.cost_per_minute,
                tier_max_cost_per_minute: mapping.get(name).map(|m| m.max_cost_per_minute),
                executable: true,
            },
            breakdown,
            width,
            height,
            fps: tier.fps,
        });
    }
    for (name, backend) in &pricing.remote_backends {
        // A remote backend renders at the best local tier its quality matches; QA still runs here.
        let tier = mapping
            .iter()
            .filter(|(t, m)| m.min_quality <= backend.quality && config.render.tiers.contains_key(*t))
            .max_by(|a, b| a.1.min_quality.total_cmp(&b.1.min_quality))
            .map(|(t, _)| t.clone())
            .unwrap_or_else(|| "economy".into());
        let Some(t) = config.render.tiers.get(&tier) else { continue };
        let (width, height) = aspect.frame_size(t.short_side);
        let breakdown = model::predict(calibration, pricing, &tier, &work(width, height, t.fps), Some((name, backend)));
        out.push(Quote {
            candidate: Candidate {
                name: format!("remote:{name}"),
                tier,
                quality: backend.quality,
                estimate: breakdown.total,
                cost_per_minute: breakdown.cost_per_minute,
                tier_max_cost_per_minute: None,
                executable: false,
            },
            breakdown,
            width,
            height,
            fps: t.fps,
        });
    }
    out
}

/// The `forceFastTrackIfCostExceeds` check as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FastTrackCheck {
    /// `financial.forceFastTrackIfCostExceeds`.
    pub threshold: f64,
    /// The estimate compared (the brief's requested tier).
    pub estimate: f64,
    /// Whether it exceeds the threshold (the route stage then forces the fast track).
    pub exceeded: bool,
    /// Predicted CPU-seconds of the job on that tier: the route stage compares it with
    /// `fastTrack.maxLatencySec`.
    #[serde(default)]
    pub cpu_s: f64,
}

/// The FinancialOrchestrator's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orchestration {
    /// The routing decision with the rejected alternatives.
    pub decision: Decision,
    /// The chosen option's estimate.
    pub estimate: CostBreakdown,
    /// Render settings of the chosen option.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// The rules applied.
    pub rules: Rules,
    /// Every option priced.
    pub quotes: Vec<Quote>,
    /// The fast-track cost check on the requested tier.
    pub fast_track_check: FastTrackCheck,
    /// Measured or defaults, with the note.
    pub calibration: String,
    /// Whether the coefficients were measured on this machine.
    pub calibrated: bool,
    /// Model tokens priced, and why.
    pub tokens_note: String,
}

/// Decide tier and backend for a brief of `duration_s` seconds: price every option, apply the
/// routing rules (budget, ceilings, quality floor, daily guard, auto-downgrade). `POST
/// /cost-estimate` calls it with the brief's duration and nothing measured yet.
pub fn orchestrate(
    config: &Config,
    pricing: &PricingTable,
    calibration: &Calibration,
    brief: &SanitizedInput,
    duration_s: f64,
    daily: DailyLevel,
) -> Result<Orchestration, FinanceError> {
    let spoken = Spoken::languages(brief.languages.len());
    orchestrate_measured(config, pricing, calibration, brief, duration_s, spoken, daily, &BTreeMap::new())
}

/// [`orchestrate`] with the CPU-seconds of the stages that already ran (state name →
/// seconds), priced as measured: the costing stage passes the job's history so far, so the
/// planning stage's LLM time is in the certified estimate instead of an overrun later. It
/// also knows what will be `spoken`: the languages the translation reached and the seconds of
/// narration the plan holds, where a quote before the job can only count the requested
/// languages.
#[allow(clippy::too_many_arguments)]
pub fn orchestrate_measured(
    config: &Config,
    pricing: &PricingTable,
    calibration: &Calibration,
    brief: &SanitizedInput,
    duration_s: f64,
    spoken: Spoken,
    daily: DailyLevel,
    measured: &BTreeMap<String, f64>,
) -> Result<Orchestration, FinanceError> {
    let tokens = BTreeMap::new();
    let quotes = quotes(config, pricing, calibration, brief.aspect_ratio, duration_s, spoken, &tokens, measured);
    let rules = Rules {
        requested: brief.tier.clone(),
        quality_floor: config.presets.get(&brief.preset).map(|p| p.min_quality).unwrap_or(0.0),
        budget: brief.budget,
        max_cost_per_minute: config.financial.max_cost_per_minute,
        auto_downgrade: config.financial.cost_controls.auto_downgrade,
        daily,
    };
    let candidates: Vec<Candidate> = quotes.iter().map(|q| q.candidate.clone()).collect();
    let decision = routing::decide(&candidates, &rules)?;
    let chosen = quotes.iter().find(|q| q.candidate.name == decision.chosen.name).expect("chosen among quotes");
    let requested = quotes.iter().find(|q| q.candidate.name == brief.tier).map(|q| &q.breakdown);
    let (requested_estimate, requested_cpu_s) = requested.map_or((0.0, 0.0), |b| (b.total, b.cpu_s));
    let threshold = config.financial.force_fast_track_if_cost_exceeds;
    Ok(Orchestration {
        estimate: chosen.breakdown.clone(),
        width: chosen.width,
        height: chosen.height,
        fps: chosen.fps,
        fast_track_check: FastTrackCheck {
            threshold,
            estimate: requested_estimate,
            exceeded: routing::force_fast_track(requested_estimate, threshold),
            cpu_s: requested_cpu_s,
        },
        calibration: calibration.note.clone(),
        calibrated: calibration.source == CalibrationSource::Measured,
        tokens_note: "no per-token prices: every model runs locally and is priced by the CPU time it uses (the \
                      director and translator as measured before costing, the voices and QA tools as modelled)"
            .into(),
        decision,
        rules,
        quotes,
    })
}

/// A preset's price, as `GET /presets` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetEstimate {
    /// Preset name.
    pub preset: String,
    /// Its default tier.
    pub tier: String,
    /// The quoted `costPerMinute` from config.
    pub quoted_cost_per_minute: f64,
    /// The cost model's USD per minute of output (16:9, one minute or the preset's maximum).
    pub estimated_cost_per_minute: f64,
    /// The model's estimate for a video of the preset's maximum length.
    pub estimate_at_max_duration: f64,
    /// The preset's maximum length.
    pub max_duration_s: u32,
    /// Whether the model's price is within the quote.
    pub within_quote: bool,
    /// Measured or default coefficients.
    pub calibrated: bool,
}

/// Every preset priced with the cost model.
pub fn preset_estimates(config: &Config, pricing: &PricingTable, calibration: &Calibration) -> Vec<PresetEstimate> {
    config
        .presets
        .iter()
        .filter_map(|(name, p)| {
            let tier = config.render.tiers.get(&p.default_tier)?;
            let (width, height) = AspectRatio::Landscape16x9.frame_size(tier.short_side);
            let at = |d: f64| {
                let work = Workload {
                    width,
                    height,
                    fps: tier.fps,
                    duration_s: d,
                    spoken: Spoken::default(),
                    tokens: BTreeMap::new(),
                    measured: BTreeMap::new(),
                };
                model::predict(calibration, pricing, &p.default_tier, &work, None)
            };
            let minute = at(60.0f64.min(p.max_duration_sec as f64));
            let max = at(p.max_duration_sec as f64);
            Some(PresetEstimate {
                preset: name.clone(),
                tier: p.default_tier.clone(),
                quoted_cost_per_minute: p.cost_per_minute,
                estimated_cost_per_minute: minute.cost_per_minute,
                estimate_at_max_duration: max.total,
                max_duration_s: p.max_duration_sec,
                within_quote: minute.cost_per_minute <= p.cost_per_minute,
                calibrated: calibration.source == CalibrationSource::Measured,
            })
        })
        .collect()
}

/// Actual against estimate, written into the delivery manifest at delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// The certified estimate, USD.
    pub estimate: f64,
    /// What the job cost: measured CPU time per stage, measured bytes.
    pub actual: CostBreakdown,
    /// (actual − estimate) / estimate × 100.
    pub variance_pct: f64,
    /// `costControls.maxOverrunPercentage`.
    pub max_overrun_pct: f64,
    /// Actual exceeds the estimate by more than the allowed overrun.
    pub overrun_flagged: bool,
    /// USD per minute of output, actual.
    pub cost_per_minute: f64,
    /// What is and is not included.
    pub note: String,
}

/// Compare the actual cost (CPU time of every committed stage in `history`, `bytes` of
/// deliverables) with the certified estimate.
pub fn reconcile(
    config: &Config,
    pricing: &PricingTable,
    estimate: &CostBreakdown,
    history: &[HistoryEvent],
    bytes: u64,
) -> Reconciliation {
    let actual = model::price(pricing, &daily::stage_cpu(history), &BTreeMap::new(), None, bytes, estimate.duration_s);
    let variance_pct = if estimate.total > 0.0 {
        ((actual.total - estimate.total) / estimate.total * 100.0 * 100.0).round() / 100.0
    } else {
        0.0
    };
    let max = config.financial.cost_controls.max_overrun_percentage;
    Reconciliation {
        estimate: estimate.total,
        cost_per_minute: actual.cost_per_minute,
        variance_pct,
        max_overrun_pct: max,
        overrun_flagged: variance_pct > max,
        note: "actual = measured process CPU time of every stage up to supervising (the delivering stage is still \
               running when this is written) + storage and egress of the delivered bytes"
            .into(),
        actual,
    }
}

/// Why a brief could not be quoted before its job exists.
#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    /// The routing rules or certificate failed.
    #[error(transparent)]
    Finance(#[from] FinanceError),
    /// Today's spend could not be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The headline of a quote, what a client shows before submitting: the chosen tier and its
/// price, whether money changed the choice, and the full orchestration behind it.
#[derive(Debug, Clone, Serialize)]
pub struct CostQuote {
    /// The tier that would render.
    pub tier: String,
    /// The tier the brief asked for.
    pub requested_tier: String,
    /// `local` or `remote:<name>`.
    pub backend: Backend,
    /// Estimated total, USD.
    pub estimate: f64,
    /// Always `USD`: every price in the pricing table is in dollars.
    pub currency: &'static str,
    /// Estimated USD per minute of output.
    pub cost_per_minute: f64,
    /// Seconds of output priced.
    pub duration_s: f64,
    /// A cheaper tier was chosen because of money.
    pub downgraded: bool,
    /// The choice still breaks a money rule.
    pub over_budget: bool,
    /// Why this option, in words.
    pub reason: String,
    /// Daily-budget and quality-floor warnings.
    pub warnings: Vec<String>,
    /// Whether the coefficients were measured on this machine.
    pub calibrated: bool,
    /// Every option priced and every rule applied.
    pub orchestration: Orchestration,
}

impl From<Orchestration> for CostQuote {
    fn from(o: Orchestration) -> Self {
        let chosen = &o.decision.chosen;
        Self {
            tier: chosen.tier.clone(),
            requested_tier: o.rules.requested.clone(),
            backend: Backend::of_candidate(&chosen.name),
            estimate: o.estimate.total,
            currency: "USD",
            cost_per_minute: o.estimate.cost_per_minute,
            duration_s: o.estimate.duration_s,
            downgraded: o.decision.downgraded,
            over_budget: o.decision.over_budget,
            reason: o.decision.reason.clone(),
            warnings: o.decision.warnings.clone(),
            calibrated: o.calibrated,
            orchestration: o,
        }
    }
}

/// The quote for a sanitised brief before any job runs — what `POST /v1/cost-estimate` and a
/// submission answer: the pricing table in force, this data dir's calibration (or the
/// documented defaults, which the result says), and today's budget level.
pub fn quote_brief(
    config: &Config,
    store: &dyn crate::store::Store,
    data_dir: &std::path::Path,
    ledger: Option<&dyn crate::store::CostLedger>,
    brief: &SanitizedInput,
) -> Result<CostQuote, QuoteError> {
    let prices = crate::store::pricing_in_force(config, ledger);
    let level = daily::status(store, config, &prices, chrono::Utc::now())?.level;
    let calibration = Calibration::load_or_default(data_dir);
    Ok(orchestrate(config, &prices, &calibration, brief, brief.duration_sec as f64, level)?.into())
}
