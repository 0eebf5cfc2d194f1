//! `aiprod serve`, `aiprod worker` and `aiprod keys create`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::api::auth::{self, Role};
use crate::config::Config;
use crate::store::Database;

/// `aiprod serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides service.bind and AIPROD_BIND); port 0 picks a free one.
    #[arg(long)]
    pub bind: Option<String>,
    /// Number of workers (overrides service.workers).
    #[arg(long)]
    pub workers: Option<usize>,
}

/// `aiprod worker` options.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Jobs this process drives at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Serve this worker's /metrics and /health on this address (e.g. 0.0.0.0:9101).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

/// `aiprod keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key and print it once (only its SHA-256 is stored).
    Create {
        /// The key's name: shown as the author of edits and comments.
        name: String,
        /// admin, editor, viewer or ops (read-only, plus /metrics and /health on a public bind).
        #[arg(long, default_value = "editor")]
        role: String,
    },
}

/// Run the server until SIGTERM or SIGINT, then shut down gracefully.
pub async fn serve(args: ServeArgs, config: Arc<Config>) -> ExitCode {
    let mut config = (*config).clone();
    if let Some(b) = args.bind {
        config.service.bind = b;
    }
    if let Some(w) = args.workers {
        config.service.workers = w;
    }
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(super::EXIT_INVALID);
    }
    let listener = match tokio::net::TcpListener::bind(&config.service.bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", config.service.bind);
            return ExitCode::FAILURE;
        }
    };
    let running = match crate::api::start(Arc::new(config), listener).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on http://{}", running.addr);
    until_signal(running, "shutting down: no new requests; running stages stop at their next checkpoint").await
}

/// Wait for SIGTERM or SIGINT, say `stopping`, trip the shutdown and wait until everything
/// stopped.
async fn until_signal(running: crate::api::Running, stopping: &'static str) -> ExitCode {
    let _ = std::io::stdout().flush();
    let shutdown = running.shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("{stopping}");
        shutdown.trigger();
    });
    match running.done.await {
        Ok(Ok(())) => {
            eprintln!("stopped");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: task failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Run jobs from the shared store until SIGTERM or SIGINT, then drain: running stages stop
/// at their next checkpoint and their jobs are handed back for another worker.
pub async fn worker(args: WorkerArgs, config: Arc<Config>) -> ExitCode {
    if args.concurrency == 0 || args.concurrency > 64 {
        eprintln!("error: --concurrency must be within 1..64");
        return ExitCode::from(super::EXIT_INVALID);
    }
    let metrics = match &args.metrics {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("error: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let running = match crate::api::start_worker(config, args.concurrency, metrics).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match &args.metrics {
        Some(_) => {
            println!("worker running ({} at once); metrics on http://{}/metrics", args.concurrency, running.addr)
        }
        None => println!("worker running ({} at once)", args.concurrency),
    }
    until_signal(running, "draining: no new jobs; running stages stop at their next checkpoint and are handed back")
        .await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `aiprod keys create`.
pub fn keys(command: KeysCommand, store: &dyn Database) -> ExitCode {
    match command {
        KeysCommand::Create { name, role } => {
            let role: Role = match role.parse() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: --role: {e}");
                    return ExitCode::from(super::EXIT_INVALID);
                }
            };
            match auth::create_key(store, &name, role) {
                Ok(secret) => {
                    eprintln!("key '{name}' created; it is shown once, store it now:");
                    println!("{secret}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {}", e.message);
                    ExitCode::from(super::EXIT_INVALID)
                }
            }
        }
    }
}
