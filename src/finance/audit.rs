//! The audit trail: an append-only, hash-chained log of every pricing change and every cost
//! decision. Each entry carries the previous entry's hash and its own hash, SHA-256 over a
//! canonical serialisation (compact JSON with sorted keys) of `{seq, at, kind, job_id,
//! payload, prev_hash}`. Editing, deleting or reordering a stored row breaks the chain at that
//! row, and [`verify`] names it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash the first entry points back to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A new pricing table was put in force; payload `{origin, table, previous_version}`.
    PricingUpdate,
    /// The costing stage chose a tier and backend; payload is the decision.
    CostDecision,
    /// Delivery reconciled the actual cost with the estimate.
    CostReconciled,
}

impl AuditKind {
    /// Name in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::PricingUpdate => "pricing_update",
            AuditKind::CostDecision => "cost_decision",
            AuditKind::CostReconciled => "cost_reconciled",
        }
    }
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When it was appended (RFC 3339, microseconds, as stored).
    pub at: String,
    /// Kind name (`pricing_update`, `cost_decision`, `cost_reconciled`).
    pub kind: String,
    /// The job, for cost decisions.
    pub job_id: Option<String>,
    /// The recorded document.
    pub payload: Value,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 of the canonical serialisation, hex.
    pub hash: String,
}

impl AuditEntry {
    /// The entry that follows `last` (the chain's tail: its seq and hash; `None` for an empty
    /// chain), stamped now and hashed. Every store appends through this, so the chain is
    /// built one way whatever the backend.
    pub fn after(last: Option<(i64, String)>, kind: AuditKind, job_id: Option<&str>, payload: &Value) -> Self {
        let (seq, prev_hash) = last.map(|(s, h)| (s + 1, h)).unwrap_or((1, GENESIS.to_owned()));
        let at = timestamp(Utc::now());
        let hash = entry_hash(seq, &at, kind.as_str(), job_id, payload, &prev_hash);
        Self {
            seq,
            at,
            kind: kind.as_str().into(),
            job_id: job_id.map(str::to_owned),
            payload: payload.clone(),
            prev_hash,
            hash,
        }
    }
}

/// The hash an entry must carry.
pub fn entry_hash(seq: i64, at: &str, kind: &str, job_id: Option<&str>, payload: &Value, prev_hash: &str) -> String {
    // serde_json's Map is ordered by key, so this is a canonical form: compact, sorted keys.
    let canonical = serde_json::json!({
        "seq": seq, "at": at, "kind": kind, "job_id": job_id, "payload": payload, "prev_hash": prev_hash,
    })
    .to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Why the chain does not verify: the first bad entry and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("audit entry {seq} is bad: {reason}")]
pub struct Tampered {
    /// The first entry that fails.
    pub seq: i64,
    /// What failed (hash mismatch, broken link, gap).
    pub reason: String,
}

/// Check the chain in order; `Ok(count)` or the first bad entry.
pub fn verify(entries: &[AuditEntry]) -> Result<usize, Tampered> {
    let mut prev = GENESIS.to_owned();
    for (i, e) in entries.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        if e.seq != expected_seq {
            return Err(Tampered {
                seq: expected_seq,
                reason: format!("expected entry {expected_seq}, found {} (an entry was removed)", e.seq),
            });
        }
        if e.prev_hash != prev {
            return Err(Tampered {
                seq: e.seq,
                reason: "its prev_hash does not match the previous entry's hash".into(),
            });
        }
        let h = entry_hash(e.seq, &e.at, &e.kind, e.job_id.as_deref(), &e.payload, &e.prev_hash);
        if h != e.hash {
            return Err(Tampered { seq: e.seq, reason: format!("content hashes to {h}, stored hash is {}", e.hash) });
        }
        prev = e.hash.clone();
    }
    Ok(entries.len())
}

/// The time format entries store.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let payload = serde_json::json!({"n": seq});
                let hash = entry_hash(seq, "t", "cost_decision", Some("j"), &payload, &prev);
                let e = AuditEntry {
                    seq,
                    at: "t".into(),
                    kind: "cost_decision".into(),
                    job_id: Some("j".into()),
                    payload,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies_and_edits_removals_are_named() {
        assert_eq!(verify(&chain(3)), Ok(3));
        let mut edited = chain(3);
        edited[1].payload = serde_json::json!({"n": 99});
        assert_eq!(verify(&edited).unwrap_err().seq, 2);
        let mut removed = chain(3);
        removed.remove(1);
        assert_eq!(verify(&removed).unwrap_err().seq, 2);
        let mut relinked = chain(3);
        relinked[2].prev_hash = GENESIS.into();
        assert_eq!(verify(&relinked).unwrap_err().seq, 3);
    }
}
