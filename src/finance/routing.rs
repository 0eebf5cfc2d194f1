//! Budget-aware routing: the pure rules that pick a tier and backend for a job. No IO; every
//! rule has its boundary tested below.
//!
//! Rules, in order:
//! 1. The daily guard at ≥ 90 % of `financial.dailyLimit` sends the job to the economy tier.
//! 2. A candidate is feasible when it is executable here, its quality ≥ the preset's floor,
//!    its cost per minute ≤ `financial.maxCostPerMinute` and ≤ its tier's
//!    `qualityToCostMapping.<tier>.maxCostPerMinute`, and its estimate ≤ the brief's budget.
//!    (When no candidate reaches the floor at all, the floor becomes the best quality on
//!    offer, and the decision says so.)
//! 3. The brief's tier is kept when it meets the money rules — even below the quality floor
//!    (with a warning): the orchestrator never spends more than the brief asked for.
//! 4. Otherwise, when `costControls.autoDowngrade` is on, the best-quality feasible candidate
//!    cheaper than it is chosen (a downgrade; never below the floor).
//! 5. Otherwise the brief's tier is kept and flagged over budget; the supervisor then asks
//!    for a review with the overrun.

use serde::{Deserialize, Serialize};

/// One option the orchestrator can pick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// `economy`, `standard`, `premium`, or `remote:<name>`.
    pub name: String,
    /// The tier whose render settings it uses (remote backends: the tier they replace).
    pub tier: String,
    /// Expected quality, 0–1.
    pub quality: f64,
    /// Estimated total, USD.
    pub estimate: f64,
    /// Estimated USD per minute of output.
    pub cost_per_minute: f64,
    /// The tier's `qualityToCostMapping` ceiling, if it has one.
    pub tier_max_cost_per_minute: Option<f64>,
    /// Whether this build can run it (remote backends have no executor yet).
    pub executable: bool,
}

/// Where the day's spend stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DailyLevel {
    /// Below `financial.costControls.alertThreshold`.
    Normal,
    /// At or above `alertThreshold` (0.8 as shipped): warn.
    Warn,
    /// 90 % or more: new jobs take the economy tier.
    Economy,
    /// 100 % or more: new jobs are refused.
    Refuse,
}

impl DailyLevel {
    /// The level for `spent` of `limit`, warning from `alert_at` (the fraction
    /// `financial.costControls.alertThreshold`).
    pub fn of(spent: f64, limit: f64, alert_at: f64) -> Self {
        let f = if limit > 0.0 { spent / limit } else { f64::INFINITY };
        if f >= 1.0 {
            DailyLevel::Refuse
        } else if f >= 0.9 {
            DailyLevel::Economy
        } else if f >= alert_at {
            DailyLevel::Warn
        } else {
            DailyLevel::Normal
        }
    }
}

/// The constraints from the brief, its preset and config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// The tier the brief asked for (or its preset's default).
    pub requested: String,
    /// The preset's `minQuality`.
    pub quality_floor: f64,
    /// The brief's budget.
    pub budget: Option<f64>,
    /// `financial.maxCostPerMinute`.
    pub max_cost_per_minute: f64,
    /// `costControls.autoDowngrade`.
    pub auto_downgrade: bool,
    /// The daily guard.
    pub daily: DailyLevel,
}

/// A candidate not chosen, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    /// The candidate.
    pub candidate: Candidate,
    /// Why it was not chosen.
    pub reasons: Vec<String>,
}

/// What the orchestrator decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The chosen candidate.
    pub chosen: Candidate,
    /// Why, in words.
    pub reason: String,
    /// The chosen tier is cheaper than the requested one because of money.
    pub downgraded: bool,
    /// The chosen candidate breaks a money rule (no feasible alternative).
    pub over_budget: bool,
    /// The floor actually applied (lower than the preset's when nothing reaches it).
    pub quality_floor_applied: f64,
    /// Warnings (daily spend, relaxed floor).
    pub warnings: Vec<String>,
    /// Every candidate not chosen with its reasons.
    pub alternatives: Vec<Alternative>,
}

/// Why no decision is possible.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoutingError {
    /// The requested tier is not among the candidates.
    #[error("the requested tier '{0}' has no cost estimate")]
    UnknownTier(String),
}

/// The money rules a candidate breaks (empty = affordable).
fn money_violations(c: &Candidate, r: &Rules) -> Vec<String> {
    let mut v = Vec::new();
    if c.cost_per_minute > r.max_cost_per_minute {
        v.push(format!("${:.4}/min exceeds financial.maxCostPerMinute ${}", c.cost_per_minute, r.max_cost_per_minute));
    }
    if let Some(ceiling) = c.tier_max_cost_per_minute
        && c.cost_per_minute > ceiling
    {
        v.push(format!(
            "${:.4}/min exceeds qualityToCostMapping.{}.maxCostPerMinute ${ceiling}",
            c.cost_per_minute, c.tier
        ));
    }
    if let Some(b) = r.budget
        && c.estimate > b
    {
        v.push(format!("estimate ${:.4} exceeds the budget ${b}", c.estimate));
    }
    v
}

/// Every rule a candidate breaks as a switch target: money, floor, executability.
fn violations(c: &Candidate, r: &Rules, floor: f64) -> Vec<String> {
    let mut v = Vec::new();
    if !c.executable {
        v.push("no executor for this backend in this build (priced for comparison only)".into());
    }
    if c.quality < floor {
        v.push(format!("quality {} is below the floor {}", c.quality, floor));
    }
    v.extend(money_violations(c, r));
    v
}

/// Apply the rules to the candidates.
pub fn decide(candidates: &[Candidate], rules: &Rules) -> Result<Decision, RoutingError> {
    let requested = candidates
        .iter()
        .find(|c| c.name == rules.requested)
        .ok_or_else(|| RoutingError::UnknownTier(rules.requested.clone()))?;
    let mut warnings = Vec::new();
    let best_quality = candidates.iter().filter(|c| c.executable).map(|c| c.quality).fold(0.0, f64::max);
    let floor = if best_quality < rules.quality_floor {
        warnings.push(format!(
            "no backend reaches the preset's quality floor {}; the best on offer ({best_quality}) is used as the floor",
            rules.quality_floor
        ));
        best_quality
    } else {
        rules.quality_floor
    };
    if requested.quality < floor {
        warnings.push(format!(
            "the requested tier '{}' (quality {}) is below the preset's floor {floor}; kept because the brief chose it \
             (the orchestrator never spends more than the brief asked for)",
            requested.name, requested.quality
        ));
    }
    match rules.daily {
        DailyLevel::Warn => warnings
            .push("today's spend has reached financial.costControls.alertThreshold of financial.dailyLimit".into()),
        DailyLevel::Economy | DailyLevel::Refuse => {
            warnings.push("today's spend has reached 90 % of financial.dailyLimit".into())
        }
        DailyLevel::Normal => {}
    }
    let req_violations = money_violations(requested, rules);
    let economy = candidates.iter().find(|c| c.name == "economy");
    let (chosen, reason, downgraded, over_budget) = if matches!(rules.daily, DailyLevel::Economy | DailyLevel::Refuse)
        && let Some(e) = economy
    {
        (
            e.clone(),
            "daily guard: spend ≥ 90 % of financial.dailyLimit routes new jobs to the economy tier".to_owned(),
            e.name != requested.name,
            !money_violations(e, rules).is_empty(),
        )
    } else if req_violations.is_empty() {
        (requested.clone(), format!("the requested tier '{}' meets every money rule", requested.name), false, false)
    } else if rules.auto_downgrade {
        // A downgrade target must meet the floor (or the requested tier's own quality, when
        // that is already below it) and every money rule.
        let target_floor = floor.min(requested.quality);
        let pick = candidates
            .iter()
            .filter(|c| c.name != requested.name && c.estimate < requested.estimate)
            .filter(|c| violations(c, rules, target_floor).is_empty())
            .max_by(|a, b| a.quality.total_cmp(&b.quality).then(b.estimate.total_cmp(&a.estimate)));
        match pick {
            Some(c) => (
                c.clone(),
                format!(
                    "auto-downgrade: '{}' breaks a money rule ({}); '{}' is the best quality that fits",
                    requested.name,
                    req_violations.join("; "),
                    c.name
                ),
                true,
                false,
            ),
            None => (
                requested.clone(),
                format!(
                    "over budget and no cheaper option meets the quality floor and the money rules; keeping '{}' ({})",
                    requested.name,
                    req_violations.join("; ")
                ),
                false,
                true,
            ),
        }
    } else {
        (
            requested.clone(),
            format!(
                "autoDowngrade is off; keeping '{}' although it breaks a money rule ({})",
                requested.name,
                req_violations.join("; ")
            ),
            false,
            true,
        )
    };
    let alternatives = candidates
        .iter()
        .filter(|c| c.name != chosen.name)
        .map(|c| {
            let v = violations(c, rules, floor);
            Alternative {
                candidate: c.clone(),
                reasons: if v.is_empty() {
                    vec![format!("meets every rule, but '{}' was chosen: {reason}", chosen.name)]
                } else {
                    v
                },
            }
        })
        .collect();
    Ok(Decision { chosen, reason, downgraded, over_budget, quality_floor_applied: floor, warnings, alternatives })
}

/// `financial.forceFastTrackIfCostExceeds`: forced when the estimate is strictly above it.
pub fn force_fast_track(estimate: f64, threshold: f64) -> bool {
    estimate > threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, quality: f64, estimate: f64, cpm: f64, ceiling: f64) -> Candidate {
        Candidate {
            name: name.into(),
            tier: name.into(),
            quality,
            estimate,
            cost_per_minute: cpm,
            tier_max_cost_per_minute: Some(ceiling),
            executable: true,
        }
    }

    fn tiers() -> Vec<Candidate> {
        vec![
            cand("economy", 0.4, 0.10, 0.30, 0.5),
            cand("standard", 0.6, 0.20, 0.60, 0.9),
            cand("premium", 0.8, 0.50, 1.00, 1.5),
        ]
    }

    fn rules(requested: &str) -> Rules {
        Rules {
            requested: requested.into(),
            quality_floor: 0.6,
            budget: None,
            max_cost_per_minute: 1.2,
            auto_downgrade: true,
            daily: DailyLevel::Normal,
        }
    }

    #[test]
    fn budget_boundary_equal_fits_above_downgrades() {
        let mut r = rules("premium");
        r.budget = Some(0.50);
        let d = decide(&tiers(), &r).unwrap();
        assert_eq!((d.chosen.name.as_str(), d.downgraded), ("premium", false));
        r.budget = Some(0.4999);
        let d = decide(&tiers(), &r).unwrap();
        assert_eq!((d.chosen.name.as_str(), d.downgraded), ("standard", true));
        let premium = d.alternatives.iter().find(|a| a.candidate.name == "premium").unwrap();
        assert!(premium.reasons[0].contains("exceeds the budget"), "{:?}", premium.reasons);
        // economy is cheaper but below the quality floor: rejected with that reason
        let economy = d.alternatives.iter().find(|a| a.candidate.name == "economy").unwrap();
        assert!(economy.reasons.iter().any(|r| r.contains("below the floor")));
    }

    #[test]
    fn without_auto_downgrade_over_budget_is_kept_and_flagged() {
        let mut r = rules("premium");
        r.budget = Some(0.3);
        r.auto_downgrade = false;
        let d = decide(&tiers(), &r).unwrap();
        assert_eq!((d.chosen.name.as_str(), d.over_budget, d.downgraded), ("premium", true, false));
    }

    #[test]
    fn nothing_fits_keeps_requested_over_budget() {
        let mut r = rules("standard");
        r.budget = Some(0.05);
        let d = decide(&tiers(), &r).unwrap();
        assert_eq!((d.chosen.name.as_str(), d.over_budget), ("standard", true));
    }

    #[test]
    fn global_max_cost_per_minute_boundary() {
        let mut r = rules("premium");
        r.max_cost_per_minute = 1.0;
        assert_eq!(decide(&tiers(), &r).unwrap().chosen.name, "premium");
        r.max_cost_per_minute = 0.9999;
        let d = decide(&tiers(), &r).unwrap();
        assert_eq!((d.chosen.name.as_str(), d.downgraded), ("standard", true));
    }

    #[test]
    fn tier_ceiling_boundary() {
        let mut t = tiers();
        t[2].cost_per_minute = 1.5;
        let mut r = rules("premium");
        r.max_cost_per_minute = 2.0;
        assert_eq!(decide(&t, &r).unwrap().chosen.name, "premium");
        t[2].cost_per_minute = 1.5001;
        let d = decide(&t, &r).unwrap();
        assert_eq!(d.chosen.name, "standard");
        let p = d.alternatives.iter().find(|a| a.candidate.name == "premium").unwrap();
        assert!(p.reasons[0].contains("qualityToCostMapping.premium"), "{:?}", p.reasons);
    }

    #[test]
    fn downgrade_never_goes_below_the_floor() {
        // economy (0.10) fits the budget but its quality 0.4 is below the floor 0.6.
        let mut r = rules("premium");
        r.budget = Some(0.15);
        let d = decide(&tiers(), &r).unwrap();
        assert_eq!((d.chosen.name.as_str(), d.over_budget), ("premium", true));
        // At floor 0.4 exactly, economy qualifies.
        r.quality_floor = 0.4;
        let d = decide(&tiers(), &r).unwrap();
        assert_eq!((d.chosen.name.as_str(), d.downgraded), ("economy", true));
        r.quality_floor = 0.4001;
        assert_eq!(decide(&tiers(), &r).unwrap().chosen.name, "premium");
    }

    #[test]
    fn requested_tier_below_floor_is_kept_with_a_warning() {
        let d = decide(&tiers(), &rules("economy")).unwrap();
        assert_eq!((d.chosen.name.as_str(), d.downgraded, d.over_budget), ("economy", false, false));
        assert!(d.warnings.iter().any(|w| w.contains("below the preset's floor")), "{:?}", d.warnings);
    }

    #[test]
    fn unreachable_floor_relaxes_to_best_on_offer() {
        let mut r = rules("premium");
        r.quality_floor = 0.9;
        let d = decide(&tiers(), &r).unwrap();
        assert_eq!((d.chosen.name.as_str(), d.quality_floor_applied), ("premium", 0.8));
        assert!(d.warnings[0].contains("floor"));
    }

    #[test]
    fn daily_levels_at_their_boundaries() {
        assert_eq!(DailyLevel::of(79.99, 100.0, 0.8), DailyLevel::Normal);
        assert_eq!(DailyLevel::of(80.0, 100.0, 0.8), DailyLevel::Warn);
        assert_eq!(DailyLevel::of(70.0, 100.0, 0.7), DailyLevel::Warn, "the threshold is config's");
        assert_eq!(DailyLevel::of(89.99, 100.0, 0.8), DailyLevel::Warn);
        assert_eq!(DailyLevel::of(90.0, 100.0, 0.8), DailyLevel::Economy);
        assert_eq!(DailyLevel::of(99.99, 100.0, 0.8), DailyLevel::Economy);
        assert_eq!(DailyLevel::of(100.0, 100.0, 0.8), DailyLevel::Refuse);
    }

    #[test]
    fn daily_economy_routes_to_economy_and_warn_only_warns() {
        let mut r = rules("premium");
        r.daily = DailyLevel::Economy;
        let d = decide(&tiers(), &r).unwrap();
        assert_eq!((d.chosen.name.as_str(), d.downgraded), ("economy", true));
        r.daily = DailyLevel::Warn;
        let d = decide(&tiers(), &r).unwrap();
        assert_eq!(d.chosen.name, "premium");
        assert!(d.warnings.iter().any(|w| w.contains("alertThreshold")));
    }

    #[test]
    fn remote_backend_without_executor_is_rejected_with_reason() {
        let mut t = tiers();
        t.push(Candidate { name: "remote:cloud".into(), executable: false, ..cand("premium", 0.95, 0.05, 0.1, 1.5) });
        let mut r = rules("premium");
        r.budget = Some(0.3);
        let d = decide(&t, &r).unwrap();
        assert_eq!(d.chosen.name, "standard");
        let remote = d.alternatives.iter().find(|a| a.candidate.name == "remote:cloud").unwrap();
        assert!(remote.reasons[0].contains("no executor"));
        // an executable remote backend that fits is a valid downgrade target
        t[3].executable = true;
        assert_eq!(decide(&t, &r).unwrap().chosen.name, "remote:cloud");
    }

    #[test]
    fn force_fast_track_is_strictly_above_threshold() {
        assert!(!force_fast_track(0.80, 0.80));
        assert!(force_fast_track(0.8001, 0.80));
    }

    #[test]
    fn unknown_requested_tier_is_an_error() {
        assert!(decide(&tiers(), &rules("ultra")).is_err());
    }
}
