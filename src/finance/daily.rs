//! The daily budget guard: today's spend (UTC day) against `financial.dailyLimit`.
//!
//! The spend is read from the store, so it survives a restart: for the jobs created today,
//! their reconciled actual cost when they were delivered, else their journaled CPU time
//! (`cpu_ms` in the history) priced with the table in force — one aggregate query
//! ([`crate::store::Store::day_spend`]), not one query per job.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::model::{self, CostBreakdown};
use super::pricing::PricingTable;
use super::routing::DailyLevel;
use crate::config::Config;
use crate::store::{DaySpend, HistoryEvent, Store, StoreError};

/// Where today's spend stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyStatus {
    /// The UTC day.
    pub day: NaiveDate,
    /// USD spent today.
    pub spent: f64,
    /// `financial.dailyLimit`.
    pub limit: f64,
    /// spent / limit.
    pub fraction: f64,
    /// What the guard does at this level.
    pub level: DailyLevel,
    /// Jobs counted.
    pub jobs: usize,
}

/// A new job refused because the day's budget is spent. The API answers 402 with
/// [`BudgetRefused::body`]; the CLI exits non-zero with the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "daily budget exhausted: ${spent:.4} spent of the ${limit:.2} financial.dailyLimit today ({day} UTC); new jobs are refused until the next UTC day"
)]
pub struct BudgetRefused {
    /// USD spent today.
    pub spent: f64,
    /// The limit.
    pub limit: f64,
    /// The UTC day.
    pub day: NaiveDate,
}

impl BudgetRefused {
    /// The HTTP status the API should answer with.
    pub const HTTP_STATUS: u16 = 402;

    /// The JSON error body: `{error: {code, message, spent, limit, day}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {
            "code": "daily_budget_exhausted",
            "message": self.to_string(),
            "spent": self.spent,
            "limit": self.limit,
            "day": self.day.to_string(),
        }})
    }
}

impl DailyStatus {
    /// `Err` when new jobs must be refused (≥ 100 %).
    pub fn admit(&self) -> Result<(), BudgetRefused> {
        if self.level == DailyLevel::Refuse {
            Err(BudgetRefused { spent: self.spent, limit: self.limit, day: self.day })
        } else {
            Ok(())
        }
    }

    /// A line for the CLI, when the guard has something to say.
    pub fn warning(&self) -> Option<String> {
        let pct = self.fraction * 100.0;
        match self.level {
            DailyLevel::Normal => None,
            DailyLevel::Warn => Some(format!("today's spend is {pct:.0} % of the daily limit ${:.2}", self.limit)),
            DailyLevel::Economy => Some(format!(
                "today's spend is {pct:.0} % of the daily limit ${:.2}: new jobs take the economy tier",
                self.limit
            )),
            DailyLevel::Refuse => Some(format!("today's spend is {pct:.0} % of the daily limit ${:.2}", self.limit)),
        }
    }
}

/// CPU-seconds per stage from a job's history (`cpu_ms` of each committed stage).
pub fn stage_cpu(history: &[HistoryEvent]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for h in history {
        let Some(ms) = h.detail.as_ref().and_then(|d| d.get("cpu_ms")).and_then(|v| v.as_f64()) else { continue };
        match out.iter_mut().find(|(s, _)| *s == h.from) {
            Some((_, total)) => *total += ms / 1000.0,
            None => out.push((h.from.clone(), ms / 1000.0)),
        }
    }
    out
}

/// The actual cost of a job so far, from its history (compute only, no bytes).
pub fn actual_from_history(pricing: &PricingTable, history: &[HistoryEvent], duration_s: f64) -> CostBreakdown {
    model::price(pricing, &stage_cpu(history), &Default::default(), None, 0, duration_s)
}

/// Today's spend.
pub fn status(
    store: &dyn Store,
    config: &Config,
    pricing: &PricingTable,
    now: DateTime<Utc>,
) -> Result<DailyStatus, StoreError> {
    let day = now.date_naive();
    Ok(from_spend(config, pricing, day, &store.day_spend(day)?))
}

/// The day's status from its aggregated spend: reconciled totals plus the other jobs' CPU
/// time priced with `pricing`.
pub fn from_spend(config: &Config, pricing: &PricingTable, day: NaiveDate, spend: &DaySpend) -> DailyStatus {
    let spent = spend.reconciled_usd + spend.unreconciled_cpu_s * pricing.cpu_second;
    let limit = config.financial.daily_limit;
    DailyStatus {
        day,
        spent: model::usd(spent),
        limit,
        fraction: spent / limit,
        level: DailyLevel::of(spent, limit, config.financial.cost_controls.alert_threshold),
        jobs: spend.jobs,
    }
}
