//! The SQLite side of the cost audit trail (table `cost_audit`, migration 0002).

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{SqliteStore, StoreError};
use crate::config::Config;
use crate::finance::audit::{AuditEntry, AuditKind};
use crate::finance::pricing::PricingTable;

/// Where the audit trail lives. Implemented for both stores; the trait lives with the
/// store (not in `finance`) so the money rules stay free of persistence.
pub trait CostLedger: Send + Sync {
    /// Append an entry chained to the last one, in one transaction.
    fn append(&self, kind: AuditKind, job_id: Option<&str>, payload: &Value) -> Result<AuditEntry, StoreError>;
    /// Every entry in order.
    fn entries(&self) -> Result<Vec<AuditEntry>, StoreError>;
    /// The table of the latest `pricing_update` entry, if any.
    fn latest_pricing(&self) -> Result<Option<PricingTable>, StoreError>;
}

/// An audit entry a stage decided on, appended by the driver's step commit (the job is the
/// step's job).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditAppend {
    /// What the entry records.
    pub kind: AuditKind,
    /// The recorded document.
    pub payload: Value,
}

/// Append one entry inside the caller's transaction (the ledger's own `append`, or a step
/// commit): the chain's tail is read in the same transaction, so entries never fork.
pub(super) fn append_in(
    tx: &Connection,
    kind: AuditKind,
    job_id: Option<&str>,
    payload: &Value,
) -> Result<AuditEntry, StoreError> {
    let last: Option<(i64, String)> = tx
        .query_row("SELECT seq, hash FROM cost_audit ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let e = AuditEntry::after(last, kind, job_id, payload);
    tx.execute(
        "INSERT INTO cost_audit (seq, at, kind, job_id, payload_json, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![e.seq, e.at, e.kind, e.job_id, e.payload.to_string(), e.prev_hash, e.hash],
    )?;
    Ok(e)
}

/// The table in force: the latest one written to the audit trail, else the static table.
pub fn pricing_in_force(config: &Config, ledger: Option<&dyn CostLedger>) -> PricingTable {
    ledger.and_then(|l| l.latest_pricing().ok().flatten()).unwrap_or_else(|| config.pricing.table.clone())
}

impl CostLedger for SqliteStore {
    fn append(&self, kind: AuditKind, job_id: Option<&str>, payload: &Value) -> Result<AuditEntry, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let entry = append_in(&tx, kind, job_id, payload)?;
        tx.commit()?;
        Ok(entry)
    }

    fn entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT seq, at, kind, job_id, payload_json, prev_hash, hash FROM cost_audit ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            let payload: String = r.get(4)?;
            Ok(AuditEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                kind: r.get(2)?,
                job_id: r.get(3)?,
                // A payload that is no longer JSON is kept as a string so verification names it.
                payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
                prev_hash: r.get(5)?,
                hash: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn latest_pricing(&self) -> Result<Option<PricingTable>, StoreError> {
        let payload: Option<String> = self
            .conn()
            .query_row(
                "SELECT payload_json FROM cost_audit WHERE kind = 'pricing_update' ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let Some(payload) = payload else { return Ok(None) };
        let v: Value = serde_json::from_str(&payload)?;
        Ok(Some(serde_json::from_value(v["table"].clone())?))
    }
}
