//! Pricing refresh, a use case: consult `pricing.source` (a file or an http(s) URL) when its
//! interval has passed, and put a valid, changed table in force by auditing it. Called by
//! `aiprod cost pricing refresh` and the service's start-up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::finance::audit::AuditKind;
use crate::finance::pricing::{PricingError, PricingTable};
use crate::store::CostLedger;

/// Where a dynamic pricing table comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PricingSource {
    /// A JSON file on disk.
    File(PathBuf),
    /// An http(s) URL answering the JSON table.
    Url(String),
}

impl PricingSource {
    /// Interpret `pricing.source`: `http://` or `https://` is a URL, anything else a path.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("http://") || s.starts_with("https://") {
            PricingSource::Url(s.to_owned())
        } else {
            PricingSource::File(PathBuf::from(s))
        }
    }

    fn name(&self) -> String {
        match self {
            PricingSource::File(p) => p.display().to_string(),
            PricingSource::Url(u) => u.clone(),
        }
    }

    /// Read and validate the table at the source.
    pub async fn fetch(&self) -> Result<PricingTable, PricingError> {
        let fetch_err = |message: String| PricingError::Fetch { source_name: self.name(), message };
        let text = match self {
            PricingSource::File(p) => std::fs::read_to_string(p).map_err(|e| fetch_err(e.to_string()))?,
            PricingSource::Url(u) => {
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| fetch_err(e.to_string()))?;
                let resp = client.get(u).send().await.map_err(|e| fetch_err(e.to_string()))?;
                if !resp.status().is_success() {
                    return Err(fetch_err(format!("HTTP {}", resp.status())));
                }
                resp.text().await.map_err(|e| fetch_err(e.to_string()))?
            }
        };
        PricingTable::from_json(&text)
    }
}

/// What one refresh did, for logs and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshOutcome {
    /// The table in force afterwards.
    pub version: String,
    /// Where it came from: `static config`, the source, or `last good table`.
    pub origin: String,
    /// Whether the table in force changed (and an audit entry was written).
    pub changed: bool,
    /// Whether the source was consulted (false when the interval has not elapsed).
    pub fetched: bool,
    /// The fetch or validation error, when the source failed.
    pub error: Option<String>,
}

/// When the source was last consulted, kept in the data dir so the interval survives restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshState {
    checked_at: DateTime<Utc>,
    source: String,
}

fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("pricing_refresh.json")
}

/// Bring the table in force up to date. Without a source the static table is in force (audited
/// the first time it differs from the last audited table). With a source, it is consulted when
/// `financial.dynamicPricing.updateIntervalHours` have passed since the last check (or `force`):
/// a valid table that differs is audited and put in force; on error the last good table stays,
/// or — when there is none and `fallbackToStatic` — the static table.
pub async fn refresh(
    config: &Config,
    ledger: &dyn CostLedger,
    data_dir: &Path,
    now: DateTime<Utc>,
    force: bool,
) -> Result<RefreshOutcome, PricingError> {
    let last = ledger
        .latest_pricing()
        .map_err(|e| PricingError::Fetch { source_name: "audit log".into(), message: e.to_string() })?;
    let adopt = |table: &PricingTable, origin: &str| -> Result<bool, PricingError> {
        if last.as_ref() == Some(table) {
            return Ok(false);
        }
        let payload = serde_json::json!({"origin": origin, "table": table, "previous_version": last.as_ref().map(|t| t.version.clone())});
        ledger
            .append(AuditKind::PricingUpdate, None, &payload)
            .map_err(|e| PricingError::Fetch { source_name: "audit log".into(), message: e.to_string() })?;
        Ok(true)
    };
    let Some(source) = config.pricing.source.as_deref().map(PricingSource::parse) else {
        let changed = adopt(&config.pricing.table, "static config")?;
        return Ok(RefreshOutcome {
            version: config.pricing.table.version.clone(),
            origin: "static config".into(),
            changed,
            fetched: false,
            error: None,
        });
    };
    let interval = chrono::Duration::hours(config.financial.dynamic_pricing.update_interval_hours as i64);
    let state: Option<RefreshState> =
        std::fs::read_to_string(state_path(data_dir)).ok().and_then(|s| serde_json::from_str(&s).ok());
    let due = force
        || last.is_none()
        || state.as_ref().is_none_or(|s| s.source != source.name() || now - s.checked_at >= interval);
    if !due {
        let table = last.clone().unwrap_or_else(|| config.pricing.table.clone());
        return Ok(RefreshOutcome {
            version: table.version,
            origin: "last good table".into(),
            changed: false,
            fetched: false,
            error: None,
        });
    }
    let fetched = source.fetch().await;
    let state = RefreshState { checked_at: now, source: source.name() };
    if let Ok(text) = serde_json::to_string(&state) {
        let _ = std::fs::create_dir_all(data_dir);
        let _ = std::fs::write(state_path(data_dir), text);
    }
    match fetched {
        Ok(table) => {
            let changed = adopt(&table, &source.name())?;
            Ok(RefreshOutcome { version: table.version, origin: source.name(), changed, fetched: true, error: None })
        }
        Err(e) => match last {
            Some(good) => Ok(RefreshOutcome {
                version: good.version,
                origin: "last good table".into(),
                changed: false,
                fetched: true,
                error: Some(e.to_string()),
            }),
            None if config.financial.dynamic_pricing.fallback_to_static => {
                let changed = adopt(&config.pricing.table, "static config (source failed)")?;
                Ok(RefreshOutcome {
                    version: config.pricing.table.version.clone(),
                    origin: "static config".into(),
                    changed,
                    fetched: true,
                    error: Some(e.to_string()),
                })
            }
            None => Err(e),
        },
    }
}
