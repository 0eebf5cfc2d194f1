//! Terminal-state webhooks. A job submitted with `callback_url` gets one signed POST when it
//! ends (delivered, failed, cancelled): the JSON body is signed with HMAC-SHA256 under the
//! job's secret (returned once at submission) in `X-Aiprod-Signature: sha256=<hex>`.
//! Delivery is retried with exponential backoff; every attempt is journaled. Only http(s)
//! URLs are accepted, and loopback/private/link-local addresses are refused unless
//! `service.webhooks.allowPrivate` is set (checked at submission and again before each
//! attempt, against what the name resolves to then).

use std::net::IpAddr;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use tracing::{info, warn};

use super::Shared;
use super::error::ApiError;
use crate::pipeline::machine::State as JobState;
use crate::store::Store;
use crate::store::service::ServiceStore;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-aiprod-signature";

/// `sha256=<hex>` of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]) // carrier-grade NAT
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return private(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Check a callback URL: http(s), a host, and (unless allowed) no private address.
pub async fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, ApiError> {
    let bad = |m: String| ApiError::invalid("callback_url", "format", m);
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(format!("only http and https callbacks are allowed, not '{}'", parsed.scheme())));
    }
    let host = parsed.host_str().ok_or_else(|| bad("the URL has no host".into()))?.to_owned();
    if allow_private {
        return Ok(parsed);
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| bad(format!("cannot resolve '{host}': {e}")))?
            .map(|a| a.ip())
            .collect(),
    };
    if let Some(ip) = addrs.iter().find(|ip| private(**ip)) {
        return Err(ApiError::invalid(
            "callback_url",
            "allowed_values",
            format!("'{host}' is a loopback or private address ({ip}); set service.webhooks.allowPrivate to allow it"),
        ));
    }
    Ok(parsed)
}

/// Start the delivery task: it receives terminal states from the hub.
pub fn start(state: Shared) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    state.hub.on_terminal(tx);
    tokio::spawn(async move {
        while let Some((job, terminal)) = rx.recv().await {
            let st = state.clone();
            tokio::spawn(async move { deliver(st, job, terminal).await });
        }
    });
}

async fn deliver(state: Shared, job_id: String, terminal: String) {
    let options = match state.store.job_api_options(&job_id) {
        Ok(Some(o)) => o,
        Ok(None) => return,
        Err(e) => return warn!(job = %job_id, error = %e, "reading webhook options failed"),
    };
    let (Some(url), Some(secret)) = (options.callback_url, options.webhook_secret) else { return };
    let job = match state.store.job(&job_id) {
        Ok(j) => j,
        Err(e) => return warn!(job = %job_id, error = %e, "reading the job for its webhook failed"),
    };
    let (failed_stage, error) = match &job.state {
        JobState::Failed { stage, error } => (Some(stage.clone()), Some(error.clone())),
        _ => (None, None),
    };
    let payload = json!({
        "event": format!("job.{terminal}"),
        "job_id": job_id,
        "state": terminal,
        "phase": job.state.phase(),
        "failed_stage": failed_stage,
        "error": error,
        "at": job.updated_at,
        "links": {"self": format!("/v1/jobs/{job_id}"), "video": format!("/v1/jobs/{job_id}/video"),
                  "memory": format!("/v1/jobs/{job_id}/memory")},
    });
    let body = serde_json::to_vec(&payload).unwrap_or_default();
    let signature = sign(&secret, &body);
    let cfg = state.config.service.webhooks.clone();
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs_f64(cfg.timeout_sec))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => return warn!(error = %e, "cannot build the webhook client"),
    };
    let delivery = uuid::Uuid::new_v4().to_string();
    for attempt in 1..=cfg.max_attempts {
        let result = match check_url(&url, cfg.allow_private).await {
            Err(e) => Err(e.message),
            Ok(u) => client
                .post(u)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, &signature)
                .header("x-aiprod-event", format!("job.{terminal}"))
                .header("x-aiprod-delivery", &delivery)
                .body(body.clone())
                .send()
                .await
                .map_err(|e| e.to_string())
                .map(|r| r.status().as_u16()),
        };
        let (status, error) = match &result {
            Ok(s) if (200..300).contains(s) => (Some(*s), None),
            Ok(s) => (Some(*s), Some(format!("HTTP {s}"))),
            Err(e) => (None, Some(e.clone())),
        };
        if let Err(e) = state.store.record_webhook(&job_id, &terminal, attempt, &url, status, error.as_deref()) {
            warn!(job = %job_id, error = %e, "journaling a webhook attempt failed");
        }
        if error.is_none() {
            info!(job = %job_id, attempt, "webhook delivered");
            return;
        }
        warn!(job = %job_id, attempt, error = ?error, "webhook attempt failed");
        if attempt < cfg.max_attempts {
            tokio::time::sleep(Duration::from_millis(cfg.backoff_ms.saturating_mul(1 << (attempt - 1).min(16)))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_are_checked() {
        assert!(check_url("ftp://example.com/x", true).await.is_err());
        assert!(check_url("not a url", true).await.is_err());
        let e = check_url("http://127.0.0.1:9/hook", false).await.unwrap_err();
        assert_eq!(e.rule, Some("allowed_values"));
        assert!(check_url("http://10.1.2.3/hook", false).await.is_err());
        assert!(check_url("http://[::1]/hook", false).await.is_err());
        assert!(check_url("http://127.0.0.1:9/hook", true).await.is_ok());
        assert!(check_url("https://93.184.215.14/hook", false).await.is_ok());
    }

    #[test]
    fn signatures_are_hmac_sha256() {
        // RFC 4231 test case 2.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
