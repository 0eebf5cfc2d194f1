//! The pricing table: what a CPU-second, a GPU-second, a GB-month of storage, a GB of egress
//! and a thousand model tokens cost, plus optional remote render backends priced per second of
//! output. Versioned, validated on construction, and refreshable from a file or an http(s) URL
//! (see [`refresh`]); every change of the table in force is written to the audit trail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::audit::{AuditKind, CostLedger};
use crate::config::Config;

/// Why a pricing table was refused or could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    /// A value is out of range; names the key.
    #[error("pricing key '{key}': {message}")]
    Invalid {
        /// Dotted key path inside the table.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// The document is not a pricing table.
    #[error("pricing table is malformed at '{key}': {message}")]
    Parse {
        /// Dotted key path.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// The source could not be read.
    #[error("cannot fetch pricing from {source_name}: {message}")]
    Fetch {
        /// The file or URL.
        source_name: String,
        /// What failed.
        message: String,
    },
}

/// Price of one model, per thousand tokens processed (prompt + generated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelRate {
    /// USD per 1,000 tokens.
    pub per_1k_tokens: f64,
}

/// A render backend outside this machine, priced per second of delivered video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RemoteBackend {
    /// USD per second of output video.
    pub price_per_output_second: f64,
    /// Expected quality on the same 0–1 scale as the tiers' `minQuality`.
    pub quality: f64,
}

/// One version of the prices. Everything the cost model multiplies by comes from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PricingTable {
    /// Version label, recorded in every estimate and certificate.
    pub version: String,
    /// Currency of every price (only USD is accepted, so amounts add up).
    pub currency: String,
    /// USD per CPU-second of measured process time.
    pub cpu_second: f64,
    /// USD per GPU-second (no stage uses a GPU yet; priced for completeness).
    pub gpu_second: f64,
    /// USD per GB stored for one month.
    pub storage_gb_month: f64,
    /// How many months deliverables are kept (storage is billed for this long).
    pub storage_months: f64,
    /// USD per GB downloaded (one delivery of the deliverables is billed).
    pub egress_gb: f64,
    /// Per-model token rates, keyed by the model name agents report in `model_used`.
    #[serde(default)]
    pub models: BTreeMap<String, ModelRate>,
    /// Optional remote render backends, keyed by name.
    #[serde(default)]
    pub remote_backends: BTreeMap<String, RemoteBackend>,
}

impl PricingTable {
    /// Parse and validate a table from JSON text; errors name the key.
    pub fn from_json(text: &str) -> Result<Self, PricingError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let table: PricingTable = serde_path_to_error::deserialize(de)
            .map_err(|e| PricingError::Parse { key: e.path().to_string(), message: e.into_inner().to_string() })?;
        table.validate()?;
        Ok(table)
    }

    /// Check ranges: prices finite and ≥ 0, qualities within 0–1, a version and USD.
    pub fn validate(&self) -> Result<(), PricingError> {
        let bad = |key: &str, message: String| Err(PricingError::Invalid { key: key.into(), message });
        let price = |key: &str, v: f64| {
            if v.is_finite() && v >= 0.0 { Ok(()) } else { bad(key, format!("{v} must be a finite price ≥ 0")) }
        };
        if self.version.trim().is_empty() || self.version.len() > 64 {
            return bad("version", "must be 1–64 characters".into());
        }
        if self.currency != "USD" {
            return bad("currency", format!("'{}' is not supported (only USD)", self.currency));
        }
        price("cpuSecond", self.cpu_second)?;
        price("gpuSecond", self.gpu_second)?;
        price("storageGbMonth", self.storage_gb_month)?;
        price("egressGb", self.egress_gb)?;
        if !(self.storage_months.is_finite() && (0.0..=120.0).contains(&self.storage_months)) {
            return bad("storageMonths", format!("{} must be within 0–120", self.storage_months));
        }
        for (name, m) in &self.models {
            price(&format!("models.{name}.per1kTokens"), m.per_1k_tokens)?;
        }
        for (name, b) in &self.remote_backends {
            price(&format!("remoteBackends.{name}.pricePerOutputSecond"), b.price_per_output_second)?;
            if !(0.0..=1.0).contains(&b.quality) {
                return bad(&format!("remoteBackends.{name}.quality"), format!("{} is not within 0–1", b.quality));
            }
        }
        Ok(())
    }
}

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

/// The table in force: the latest one written to the audit trail, else the static table.
pub fn current(config: &Config, ledger: Option<&dyn CostLedger>) -> PricingTable {
    ledger.and_then(|l| l.latest_pricing().ok().flatten()).unwrap_or_else(|| config.pricing.table.clone())
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
