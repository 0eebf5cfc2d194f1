//! Cost certificates: `{job, inputs_hash, pricing_version, estimate, chosen_tier, …}` signed
//! with HMAC-SHA256 over their canonical JSON (compact, sorted keys, signature field absent).
//!
//! The key comes from `AIPROD_COST_KEY` (its UTF-8 bytes); without it, a random 32-byte key is
//! generated once into `<data dir>/cost_key` (mode 0600) and reused. Certificates carry the
//! key's id (first 16 hex digits of its SHA-256) so a verifier can tell a wrong key from a
//! forged certificate.

use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::model::CostBreakdown;

/// Environment variable holding the signing key.
pub const KEY_ENV: &str = "AIPROD_COST_KEY";

/// Why a certificate could not be signed or verified.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The key file could not be read or created.
    #[error("cost key: {0}")]
    Key(String),
    /// The file is not a certificate.
    #[error("not a cost certificate: {0}")]
    Malformed(String),
    /// The signature does not match the content.
    #[error(
        "signature does not match: the certificate was altered or signed with another key (certificate key id {cert_key}, this key id {our_key})"
    )]
    BadSignature {
        /// Key id the certificate names.
        cert_key: String,
        /// Key id of the key used to verify.
        our_key: String,
    },
}

/// The signing key and where it came from.
pub struct CostKey {
    bytes: Vec<u8>,
    /// `env AIPROD_COST_KEY` or the key file's path.
    pub origin: String,
    /// Whether this call created the key file.
    pub generated: bool,
}

impl std::fmt::Debug for CostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CostKey").field("id", &self.id()).field("origin", &self.origin).finish()
    }
}

/// The key file in a data dir.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("cost_key")
}

impl CostKey {
    /// A key from raw bytes (tests, or a caller with its own key management).
    pub fn from_bytes(bytes: Vec<u8>, origin: &str) -> Self {
        Self { bytes, origin: origin.into(), generated: false }
    }

    /// `AIPROD_COST_KEY`, else the data dir's key file, created with a random key if missing.
    pub fn load(data_dir: &Path) -> Result<Self, CertificateError> {
        if let Ok(k) = std::env::var(KEY_ENV)
            && !k.is_empty()
        {
            return Ok(Self { bytes: k.into_bytes(), origin: format!("env {KEY_ENV}"), generated: false });
        }
        let path = key_path(data_dir);
        match std::fs::read_to_string(&path) {
            Ok(hex_key) => {
                let bytes = hex::decode(hex_key.trim())
                    .map_err(|e| CertificateError::Key(format!("{} is not hex: {e}", path.display())))?;
                Ok(Self { bytes, origin: path.display().to_string(), generated: false })
            }
            Err(_) => {
                let mut bytes = vec![0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| CertificateError::Key(format!("no randomness: {e}")))?;
                std::fs::create_dir_all(data_dir).map_err(|e| CertificateError::Key(e.to_string()))?;
                write_private(&path, &hex::encode(&bytes))
                    .map_err(|e| CertificateError::Key(format!("cannot write {}: {e}", path.display())))?;
                tracing::warn!(path = %path.display(), "generated a new cost-certificate signing key ({KEY_ENV} is not set)");
                Ok(Self { bytes, origin: path.display().to_string(), generated: true })
            }
        }
    }

    /// First 16 hex digits of SHA-256(key): names the key without revealing it.
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))[..16].to_owned()
    }

    fn mac(&self, message: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.bytes).expect("HMAC takes keys of any length");
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(path)?.write_all(content.as_bytes())
}

/// The signed document written to `cost_certificate.json` and journaled in
/// `cost_certification`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// The job.
    pub job: String,
    /// SHA-256 of the canonical JSON of everything the estimate depends on.
    pub inputs_hash: String,
    /// Pricing table version used.
    pub pricing_version: String,
    /// The estimate for the chosen option.
    pub estimate: CostBreakdown,
    /// The chosen tier.
    pub chosen_tier: String,
    /// The chosen backend (`local-cpu` or `remote:<name>`).
    pub backend: super::Backend,
    /// Where the coefficients came from (measured or defaults, with the note).
    pub calibration: String,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
    /// Id of the signing key.
    pub key_id: String,
    /// HMAC-SHA256, hex, over the canonical JSON of every other field.
    pub signature: String,
}

fn canonical_unsigned(cert: &Certificate) -> Result<String, CertificateError> {
    let mut v = serde_json::to_value(cert).map_err(|e| CertificateError::Malformed(e.to_string()))?;
    if let Value::Object(m) = &mut v {
        m.remove("signature");
    }
    Ok(v.to_string())
}

/// SHA-256 of the canonical JSON of `inputs`.
pub fn inputs_hash(inputs: &Value) -> String {
    hex::encode(Sha256::digest(inputs.to_string().as_bytes()))
}

impl Certificate {
    /// Fill in `key_id` and `signature`.
    pub fn sign(mut self, key: &CostKey) -> Result<Self, CertificateError> {
        self.key_id = key.id();
        self.signature = String::new();
        self.signature = key.mac(canonical_unsigned(&self)?.as_bytes());
        Ok(self)
    }

    /// Check the signature with `key`.
    pub fn verify(&self, key: &CostKey) -> Result<(), CertificateError> {
        let expected = key.mac(canonical_unsigned(self)?.as_bytes());
        // Constant-time comparison through the MAC API.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key.bytes).expect("any key length");
        mac.update(canonical_unsigned(self)?.as_bytes());
        let sig = hex::decode(&self.signature)
            .map_err(|_| CertificateError::BadSignature { cert_key: self.key_id.clone(), our_key: key.id() })?;
        if mac.verify_slice(&sig).is_err() || expected != self.signature {
            return Err(CertificateError::BadSignature { cert_key: self.key_id.clone(), our_key: key.id() });
        }
        Ok(())
    }

    /// Read a certificate file and verify it.
    pub fn verify_file(path: &Path, key: &CostKey) -> Result<Certificate, CertificateError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CertificateError::Malformed(format!("cannot read {}: {e}", path.display())))?;
        let cert: Certificate = serde_json::from_str(&text).map_err(|e| CertificateError::Malformed(e.to_string()))?;
        cert.verify(key)?;
        Ok(cert)
    }

    /// Write to `path` atomically.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::finance::model::{Calibration, Workload, predict};

    fn cert() -> Certificate {
        let c = Config::builtin();
        let work = Workload {
            width: 1280,
            height: 720,
            fps: 25,
            duration_s: 20.0,
            spoken: Default::default(),
            tokens: Default::default(),
            measured: Default::default(),
        };
        Certificate {
            job: "job-1".into(),
            inputs_hash: inputs_hash(&serde_json::json!({"a": 1})),
            pricing_version: c.pricing.table.version.clone(),
            estimate: predict(&Calibration::defaults(), &c.pricing.table, "standard", &work, None),
            chosen_tier: "standard".into(),
            backend: crate::finance::Backend::LocalCpu,
            calibration: "defaults".into(),
            issued_at: "2026-11-21T00:00:00Z".into(),
            key_id: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn round_trip_through_a_file_verifies_and_forgeries_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let key = CostKey::from_bytes(b"secret key".to_vec(), "test");
        let signed = cert().sign(&key).unwrap();
        let path = dir.path().join("cost_certificate.json");
        signed.write(&path).unwrap();
        assert_eq!(Certificate::verify_file(&path, &key).unwrap(), signed);

        // A forged total: same signature, different content.
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["estimate"]["total"] = serde_json::json!(0.000001);
        std::fs::write(&path, v.to_string()).unwrap();
        assert!(matches!(Certificate::verify_file(&path, &key), Err(CertificateError::BadSignature { .. })));

        // Re-signed with another key: rejected, and the key ids differ.
        let other = CostKey::from_bytes(b"attacker".to_vec(), "test");
        let forged = cert().sign(&other).unwrap();
        let err = forged.verify(&key).unwrap_err().to_string();
        assert!(err.contains(&other.id()) && err.contains(&key.id()), "{err}");
    }

    #[test]
    fn awkward_floats_survive_the_file_round_trip() {
        // The signature covers re-serialised numbers: parsing must give back the same f64.
        let dir = tempfile::tempdir().unwrap();
        let key = CostKey::from_bytes(b"k".to_vec(), "test");
        for v in [0.1 + 0.2, 1.0 / 3.0, 2.0f64.sqrt() * 1e-7, 123456.789012345, 5e-324] {
            let mut c = cert();
            c.estimate.total = v;
            c.estimate.cost_per_minute = v * 7.0;
            let signed = c.sign(&key).unwrap();
            let path = dir.path().join("c.json");
            signed.write(&path).unwrap();
            Certificate::verify_file(&path, &key).unwrap();
        }
    }

    #[test]
    fn key_file_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: not set in tests; only this test reads the key file path.
        if std::env::var(KEY_ENV).is_ok() {
            return;
        }
        let a = CostKey::load(dir.path()).unwrap();
        assert!(a.generated);
        let b = CostKey::load(dir.path()).unwrap();
        assert!(!b.generated);
        assert_eq!(a.id(), b.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(dir.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
