//! The HTTP/1.1 connection loop, with the deadlines `axum::serve` does not have.
//!
//! Each accepted connection is served by hyper with a header-read timeout
//! (`service.headerTimeoutSec`): hyper starts that timer whenever the connection waits for a
//! request head, so a client trickling its headers (slowloris) and an idle keep-alive
//! connection are both closed when it runs out. Each request body must arrive within
//! `service.bodyTimeoutSec` of its headers; a late body fails its read, so the handler
//! answers with an error and the connection closes. Every request carries the peer address
//! as axum's [`ConnectInfo`], which failed-authentication throttling keys on.
//!
//! Shutdown stops accepting, asks open connections to finish their current response, and
//! resolves when the last one has closed.

use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use futures_util::StreamExt;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;
use tracing::{debug, warn};

use super::workers::Shutdown;

/// The deadlines a connection is served with.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Time to send a request's headers (and the longest a keep-alive connection idles).
    pub header: Duration,
    /// Time to send a request's body once the headers arrived.
    pub body: Duration,
}

/// Serve `app` on `listener` until `stop` trips and every connection has closed.
pub async fn serve(listener: TcpListener, app: Router, deadlines: Deadlines, stop: Shutdown) {
    // Every connection task holds a receiver; the sender sees `closed()` when all are gone.
    let (all_closed_tx, all_closed_rx) = watch::channel(());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.wait() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop.clone();
        let held = all_closed_rx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                // A request without a body (every GET) needs no deadline on it.
                let mut req = req.map(|body| {
                    if body.is_end_stream() { Body::empty() } else { with_deadline(Body::new(body), deadlines.body) }
                });
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(deadlines.header);
            let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.wait() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                debug!(peer = %peer, error = %e, "connection ended with an error");
            }
            drop(held);
        });
    }
    drop(listener);
    drop(all_closed_rx);
    all_closed_tx.closed().await;
}

/// `body`, failing its next read once `limit` has passed since the headers arrived.
fn with_deadline(body: Body, limit: Duration) -> Body {
    let deadline = tokio::time::Instant::now() + limit;
    let frames = body.into_data_stream();
    let timed = futures_util::stream::unfold(Some(frames), move |frames| async move {
        let mut frames = frames?;
        match tokio::time::timeout_at(deadline, frames.next()).await {
            Ok(Some(item)) => Some((item, Some(frames))),
            Ok(None) => None,
            Err(_) => Some((
                Err(axum::Error::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the request body did not arrive within {} s (service.bodyTimeoutSec)",
                        limit.as_secs_f64()
                    ),
                ))),
                None,
            )),
        }
    });
    Body::from_stream(timed)
}

/// The peer address of a request served by [`serve`] (absent when a test calls the
/// router directly).
pub fn peer(req: &axum::extract::Request) -> Option<SocketAddr> {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
