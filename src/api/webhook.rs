//! Terminal-state webhooks. A job submitted with `callback_url` gets one signed POST when it
//! ends (delivered, failed, cancelled): the JSON body is signed with HMAC-SHA256 under the
//! job's secret (returned once at submission) in `X-Aiprod-Signature: sha256=<hex>`.
//! Delivery is retried with exponential backoff; every attempt is journaled. Only http(s)
//! URLs are accepted, and addresses that are not global (see [`super::egress`]) are refused
//! unless `service.webhooks.allowPrivate` is set. The check runs at submission (where a name
//! that does not resolve yet is accepted) and again before each attempt; each attempt
//! resolves the host once and connects to the addresses it checked.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use tracing::{info, warn};

use super::Shared;
use super::egress;
use super::error::ApiError;
use crate::pipeline::machine::State as JobState;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-aiprod-signature";

/// `sha256=<hex>` of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A callback URL that passed the check, with the addresses its host resolved to then: the
/// connection goes to exactly these (the client is pinned), never to a second resolution.
#[derive(Debug, Clone)]
pub struct CheckedUrl {
    /// The URL as given (http or https).
    pub url: reqwest::Url,
    /// The host when it is a name, not an IP literal.
    pub domain: Option<String>,
    /// The checked addresses (port from the URL).
    pub addrs: Vec<SocketAddr>,
}

/// Check a callback URL: http(s), a host, resolved once; unless `allow_private`, every
/// address it resolves to must be a global one ([`egress::denied`]). This is the check
/// before each delivery attempt: the connection goes to the addresses it returns.
pub async fn check_url(url: &str, allow_private: bool) -> Result<CheckedUrl, ApiError> {
    match check(url, allow_private).await? {
        Resolved::Checked(target) => Ok(target),
        Resolved::Unresolved { host, error } => {
            Err(ApiError::invalid("callback_url", "format", format!("cannot resolve '{host}': {error}")))
        }
    }
}

/// The check at submission: [`check_url`], except that a name which does not resolve now
/// is accepted. Whether a name resolves is a fact about this moment and this resolver, not
/// about the request — the record may be added after the job is queued, the resolver may be
/// unreachable for a while, and a server without DNS (tests, an air-gapped host) would
/// otherwise refuse every named callback. What keeps callbacks off internal addresses is
/// the check before each attempt, on the addresses the connection then uses; a name that
/// still does not resolve fails there and the attempt is journaled. A literal address, and
/// a name that resolves now to a non-global address, are refused here already.
pub async fn check_submitted_url(url: &str, allow_private: bool) -> Result<(), ApiError> {
    if let Resolved::Unresolved { host, error } = check(url, allow_private).await? {
        info!(%host, %error, "callback host does not resolve now; it is checked again before each delivery");
    }
    Ok(())
}

/// What [`check`] found: a URL whose addresses passed, or a well-formed URL whose host did
/// not resolve.
enum Resolved {
    Checked(CheckedUrl),
    Unresolved { host: String, error: String },
}

/// The longest callback URL accepted, in characters (the spec's `maxLength`): longer ones
/// are refused before parsing, as the spec says, not silently taken.
pub const MAX_URL_CHARS: usize = 2048;

async fn check(url: &str, allow_private: bool) -> Result<Resolved, ApiError> {
    let chars = url.chars().count();
    if chars > MAX_URL_CHARS {
        return Err(ApiError::invalid(
            "callback_url",
            "max_length",
            format!("a callback URL is at most {MAX_URL_CHARS} characters, got {chars}"),
        ));
    }
    let bad = |m: String| ApiError::invalid("callback_url", "format", m);
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(format!("only http and https callbacks are allowed, not '{}'", parsed.scheme())));
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    let host = parsed.host_str().ok_or_else(|| bad("the URL has no host".into()))?.to_owned();
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&host);
    let (domain, addrs): (Option<String>, Vec<SocketAddr>) = match literal.parse::<IpAddr>() {
        Ok(ip) => (None, vec![SocketAddr::new(ip, port)]),
        Err(_) => {
            let looked_up = tokio::net::lookup_host((host.as_str(), port)).await.map(Iterator::collect::<Vec<_>>);
            let addrs = match looked_up {
                Ok(addrs) => addrs,
                Err(e) => return Ok(Resolved::Unresolved { host, error: e.to_string() }),
            };
            if addrs.is_empty() {
                return Ok(Resolved::Unresolved { host, error: "no address".into() });
            }
            (Some(host.clone()), addrs)
        }
    };
    if !allow_private && let Some((addr, why)) = addrs.iter().find_map(|a| egress::denied(a.ip()).map(|why| (a, why))) {
        return Err(ApiError::invalid(
            "callback_url",
            "allowed_values",
            format!(
                "'{host}' is not a global address ({} is {why}); set service.webhooks.allowPrivate to allow it",
                addr.ip()
            ),
        ));
    }
    Ok(Resolved::Checked(CheckedUrl { url: parsed, domain, addrs }))
}

/// POST `body` to a checked URL, connecting only to its checked addresses; no redirects, no
/// proxy. Answers the HTTP status.
pub async fn post_to(
    target: &CheckedUrl,
    timeout: Duration,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<u16, String> {
    let mut builder =
        reqwest::Client::builder().no_proxy().timeout(timeout).redirect(reqwest::redirect::Policy::none());
    if let Some(domain) = &target.domain {
        builder = builder.resolve_to_addrs(domain, &target.addrs);
    }
    let client = builder.build().map_err(|e| format!("cannot build the webhook client: {e}"))?;
    let mut req = client.post(target.url.clone()).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(body).send().await.map_err(|e| e.to_string()).map(|r| r.status().as_u16())
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
    send(state, job_id, terminal, url, secret).await
}

/// Call back for a request answered by reuse: the reused job has already ended, so its
/// terminal-state payload goes to the request's URL now, signed with the request's secret.
pub fn deliver_reused(state: Shared, job_id: String, url: String, secret: String) {
    tokio::spawn(async move {
        let terminal = match state.store.job(&job_id) {
            Ok(job) => job.state.name().to_owned(),
            Err(e) => return warn!(job = %job_id, error = %e, "reading the reused job for its webhook failed"),
        };
        send(state, job_id, terminal, url, secret).await
    });
}

/// Sign and POST the terminal-state payload, retrying with backoff; every attempt is
/// journaled.
async fn send(state: Shared, job_id: String, terminal: String, url: String, secret: String) {
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
    let delivery = uuid::Uuid::new_v4().to_string();
    for attempt in 1..=cfg.max_attempts {
        let result = match check_url(&url, cfg.allow_private).await {
            Err(e) => Err(e.message),
            Ok(target) => {
                let event = format!("job.{terminal}");
                let headers = [
                    (SIGNATURE_HEADER, signature.as_str()),
                    ("x-aiprod-event", event.as_str()),
                    ("x-aiprod-delivery", delivery.as_str()),
                ];
                post_to(&target, Duration::from_secs_f64(cfg.timeout_sec), &headers, body.clone()).await
            }
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
        assert!(check_url("http://127.0.0.1:9/hook", true).await.is_ok());
        let ok = check_url("https://93.184.215.14/hook", false).await.unwrap();
        assert_eq!(ok.addrs, vec!["93.184.215.14:443".parse::<SocketAddr>().unwrap()]);
        assert_eq!(ok.domain, None, "an IP literal is not resolved");
    }

    /// A name that does not resolve (`.invalid` never does) is accepted at submission and
    /// refused before a delivery attempt; a malformed URL or a literal private address is
    /// refused at both.
    #[tokio::test]
    async fn an_unresolvable_name_waits_for_the_delivery_check() {
        assert!(check_submitted_url("https://hooks.example.invalid/x", false).await.is_ok());
        let e = check_url("https://hooks.example.invalid/x", false).await.unwrap_err();
        assert!(e.message.contains("cannot resolve"), "{}", e.message);
        assert!(check_submitted_url("ftp://hooks.example.invalid/x", false).await.is_err());
        assert!(check_submitted_url("http://10.0.0.1/x", false).await.is_err());
        assert!(check_submitted_url("http://localhost/x", false).await.is_err());
        let long = format!("https://{}.invalid/", "a".repeat(MAX_URL_CHARS));
        assert_eq!(check_submitted_url(&long, false).await.unwrap_err().rule, Some("max_length"));
    }

    /// Every address the reliability pass got accepted as a callback, and the classic ones,
    /// are refused with the rule `allowed_values`.
    #[tokio::test]
    async fn every_non_global_callback_address_is_refused() {
        for host in crate::api::egress::REPORTED_ACCEPTED.iter().copied().chain([
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "100.64.0.1",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "[fd00::1]",
            "[fe80::1]",
            "localhost",
        ]) {
            let e = check_url(&format!("http://{host}:8080/hook"), false).await.unwrap_err();
            assert_eq!(e.rule, Some("allowed_values"), "{host}: {}", e.message);
        }
    }

    /// The connection goes to the address that was checked: a name that does not resolve at
    /// all is still reached through its pinned address, so no second lookup happens.
    #[tokio::test]
    async fn delivery_connects_to_the_checked_address_without_resolving_again() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !String::from_utf8_lossy(&got).contains("\r\n\r\n{}") {
                let n = sock.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            sock.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await.unwrap();
            String::from_utf8_lossy(&got).into_owned()
        });
        let target = CheckedUrl {
            url: reqwest::Url::parse(&format!("http://hook.invalid:{}/hook", addr.port())).unwrap(),
            domain: Some("hook.invalid".into()),
            addrs: vec![addr],
        };
        let status = post_to(&target, Duration::from_secs(10), &[], b"{}".to_vec()).await.unwrap();
        assert_eq!(status, 204);
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /hook HTTP/1.1"), "{request}");
        assert!(request.to_ascii_lowercase().contains(&format!("host: hook.invalid:{}", addr.port())), "{request}");
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
