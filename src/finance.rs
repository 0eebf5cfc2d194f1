//! The basic cost estimate: output duration × the tier's rate per minute, from config.
//!
//! This is deliberately simple and says so in every certificate it writes (`basis`); the
//! measured-compute cost model and the full financial orchestrator replace it later.

use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The cost estimate journaled in `cost_certification`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    /// Estimated cost of the job, in the configured currency unit (USD).
    pub estimate: f64,
    /// Currency of every amount.
    pub currency: String,
    /// Tier priced.
    pub tier: String,
    /// Rate applied, per minute of output.
    pub rate_per_minute: f64,
    /// Output duration priced, in seconds.
    pub duration_s: f64,
    /// Estimated cost per minute of output.
    pub cost_per_minute: f64,
    /// The brief's budget, if any.
    pub budget: Option<f64>,
    /// Whether the estimate fits the budget (true when there is none).
    pub within_budget: bool,
    /// Whether the estimate exceeds financial.maxCostPerMinute.
    pub exceeds_max_cost_per_minute: bool,
    /// Configuration version the rates came from.
    pub config_version: String,
    /// How the number was computed, in words.
    pub basis: String,
}

/// Why no estimate could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CostError {
    /// The tier is not in config.
    #[error("tier '{0}' is not configured (render.tiers)")]
    UnknownTier(String),
}

/// Estimate a job's cost from its duration and tier.
pub fn estimate(config: &Config, tier: &str, duration_s: f64, budget: Option<f64>) -> Result<CostEstimate, CostError> {
    let rate = config.render.tiers.get(tier).ok_or_else(|| CostError::UnknownTier(tier.to_owned()))?.rate_per_minute;
    let round = |v: f64| (v * 10_000.0).round() / 10_000.0;
    let estimate = round(duration_s / 60.0 * rate);
    Ok(CostEstimate {
        estimate,
        currency: "USD".into(),
        tier: tier.to_owned(),
        rate_per_minute: rate,
        duration_s,
        cost_per_minute: rate,
        budget,
        within_budget: budget.is_none_or(|b| estimate <= b),
        exceeds_max_cost_per_minute: rate > config.financial.max_cost_per_minute,
        config_version: config.version.clone(),
        basis: "basic estimate: output minutes × tier rate (render.tiers.<tier>.ratePerMinute); \
                measured per-stage compute cost not yet modelled"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_is_duration_times_rate() {
        let c = Config::builtin();
        let e = estimate(&c, "standard", 30.0, Some(1.0)).unwrap();
        assert_eq!(e.estimate, 0.3);
        assert!(e.within_budget);
        let e = estimate(&c, "premium", 120.0, Some(1.0)).unwrap();
        assert_eq!(e.estimate, 2.4);
        assert!(!e.within_budget);
        assert!(matches!(estimate(&c, "ultra", 10.0, None), Err(CostError::UnknownTier(_))));
    }
}
