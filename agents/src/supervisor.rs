//! The supervisor: the v33 decision matrix that turns quality, technical score and cost into
//! approve / reject / escalate / over-budget review.

use serde::{Deserialize, Serialize};

/// The supervisor's verdict; the job state machine routes on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Decision {
    /// Quality and cost are fine: deliver.
    Approve,
    /// Quality or technical score too low.
    Reject {
        /// Which rule fired.
        reason: String,
    },
    /// Borderline quality: a human decides.
    Escalate,
    /// Over budget: a human decides, knowing the overrun.
    OverBudgetReview,
}

/// Thresholds of the matrix, from config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Quality at or above which a job within budget is approved.
    pub approve_min_quality: f64,
    /// Quality below which a job is rejected.
    pub reject_below_quality: f64,
    /// Technical score below which a job is rejected.
    pub reject_below_technical: f64,
}

/// The measured inputs of a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    /// Overall quality (semantic score), 0–1.
    pub quality: f64,
    /// Technical QA score, 0–1.
    pub technical: f64,
    /// The job's cost.
    pub cost: f64,
    /// The budget, if the brief set one.
    pub budget: Option<f64>,
    /// Perception checks that found a defect (caption unreadable, narration not heard, mix
    /// out of bounds), one line each with the measured value; any of them rejects.
    #[serde(default)]
    pub failed_checks: Vec<String>,
}

/// A decision with the reasons that led to it, journaled as `final_approval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The decision.
    pub decision: Decision,
    /// Each rule evaluated, in order, in words.
    pub reasons: Vec<String>,
    /// How far over budget the job is, in percent (when over).
    pub overrun_pct: Option<f64>,
    /// The inputs, for the record.
    pub inputs: Inputs,
}

/// Apply the matrix. Order matters: a technically broken video, one that failed a perception
/// check, or a very poor one is rejected whatever it cost; then budget; then quality decides approve or escalate.
pub fn decide(inputs: &Inputs, t: &Thresholds) -> Verdict {
    let mut reasons = Vec::new();
    let overrun_pct = inputs
        .budget
        .filter(|b| inputs.cost > *b && *b > 0.0)
        .map(|b| ((inputs.cost - b) / b * 100.0 * 100.0).round() / 100.0);
    let decision = if inputs.technical < t.reject_below_technical {
        let r = format!("technical score {:.3} < {:.3}", inputs.technical, t.reject_below_technical);
        reasons.push(format!("reject: {r}"));
        Decision::Reject { reason: r }
    } else if !inputs.failed_checks.is_empty() {
        let r = format!("failed checks: {}", inputs.failed_checks.join("; "));
        reasons.push(format!("reject: {r}"));
        Decision::Reject { reason: r }
    } else if inputs.quality < t.reject_below_quality {
        let r = format!("quality {:.3} < {:.3}", inputs.quality, t.reject_below_quality);
        reasons.push(format!("reject: {r}"));
        Decision::Reject { reason: r }
    } else if let Some(pct) = overrun_pct {
        reasons.push(format!(
            "review: cost {:.4} exceeds budget {:.4} by {pct:.2} %",
            inputs.cost,
            inputs.budget.unwrap_or_default()
        ));
        Decision::OverBudgetReview
    } else if inputs.quality >= t.approve_min_quality {
        reasons.push(format!(
            "approve: quality {:.3} ≥ {:.3} and cost within budget",
            inputs.quality, t.approve_min_quality
        ));
        Decision::Approve
    } else {
        reasons.push(format!(
            "escalate: quality {:.3} within [{:.3}, {:.3})",
            inputs.quality, t.reject_below_quality, t.approve_min_quality
        ));
        Decision::Escalate
    };
    Verdict { decision, reasons, overrun_pct, inputs: inputs.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds =
        Thresholds { approve_min_quality: 0.7, reject_below_quality: 0.4, reject_below_technical: 0.8 };

    fn d(quality: f64, technical: f64, cost: f64, budget: Option<f64>) -> Decision {
        decide(&Inputs { quality, technical, cost, budget, failed_checks: vec![] }, &T).decision
    }

    #[test]
    fn boundaries_of_the_matrix() {
        assert_eq!(d(0.7, 0.8, 1.0, Some(1.0)), Decision::Approve, "exactly at both approve thresholds");
        assert_eq!(d(0.6999, 1.0, 0.0, None), Decision::Escalate);
        assert_eq!(d(0.4, 1.0, 0.0, None), Decision::Escalate, "0.4 is escalated, not rejected");
        assert!(matches!(d(0.3999, 1.0, 0.0, None), Decision::Reject { .. }));
        assert!(matches!(d(0.95, 0.7999, 0.0, None), Decision::Reject { .. }), "technical below 0.8 rejects");
        assert_eq!(d(0.95, 0.8, 1.0001, Some(1.0)), Decision::OverBudgetReview);
        assert_eq!(d(0.95, 1.0, 5.0, None), Decision::Approve, "no budget, no overrun");
    }

    #[test]
    fn overrun_is_reported_in_percent() {
        let v =
            decide(&Inputs { quality: 0.9, technical: 1.0, cost: 1.25, budget: Some(1.0), failed_checks: vec![] }, &T);
        assert_eq!(v.overrun_pct, Some(25.0));
        assert!(v.reasons[0].contains("25.00 %"));
    }

    #[test]
    fn a_failed_check_rejects_and_is_quoted() {
        let failed = vec!["caption_readback (scene 1): caption reads back as \"上\"".to_owned()];
        let v = decide(&Inputs { quality: 0.95, technical: 1.0, cost: 0.0, budget: None, failed_checks: failed }, &T);
        let Decision::Reject { reason } = &v.decision else { panic!("{v:?}") };
        assert!(reason.contains("caption_readback (scene 1)"), "{reason}");
    }

    #[test]
    fn rejection_beats_overrun() {
        assert!(matches!(d(0.1, 1.0, 9.0, Some(1.0)), Decision::Reject { .. }));
    }
}
