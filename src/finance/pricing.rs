//! The pricing table: what a CPU-second, a GPU-second, a GB-month of storage, a GB of egress
//! and a thousand model tokens cost, plus optional remote render backends priced per second of
//! output. Versioned and validated on construction. A leaf: it imports nothing from the
//! crate, so config, finance and store can all name it. Refreshing the table in force from a
//! file or an http(s) URL is a use case (`app::pricing`); reading the table in force is the
//! store's (`store::finance::pricing_in_force`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
