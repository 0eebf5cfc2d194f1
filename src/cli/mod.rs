//! The `aiprod` command line: `run`, `resume`, `jobs`, `config check`, `calibrate`, `cost`,
//! `audit`, `serve`, `keys`. The binary only
//! calls [`main`]; everything here is plain library code so tests can reach it.

mod finance;
pub mod models;
mod progress;
pub mod service;
mod summary;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use agents::CancelToken;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::pipeline::driver::{Driver, DriverError};
use crate::pipeline::machine::State;
use crate::pipeline::reuse;
use crate::sanitize::{self, BriefRequest};
use crate::store::service::Claim;
use crate::store::{Database, Store};

/// aiprod: turn a short text brief into a finished, quality-checked, subtitled video.
#[derive(Debug, Parser)]
#[command(name = "aiprod", version, about)]
pub struct Cli {
    /// Configuration file (default: ./config/v33.json if present, else the built-in copy).
    #[arg(long, global = true, env = "AIPROD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory for the job database and artifacts (overrides storage.dataDir).
    #[arg(long, global = true, env = "AIPROD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where jobs live: `postgres://user@host/db` (many workers, many machines) or
    /// `sqlite://path` (overrides storage.storeUrl; default: the SQLite file in the data dir).
    #[arg(long = "store", global = true, env = "AIPROD_STORE_URL", value_name = "URL")]
    pub store_url: Option<String>,
    /// Where finished files are published for every node to serve: a directory (NFS, EFS)
    /// or `s3://bucket/prefix` (credentials and endpoint from the AWS environment variables).
    /// Overrides storage.artifacts; default: the working directories `<data dir>/jobs`.
    #[arg(long, global = true, env = "AIPROD_ARTIFACTS", value_name = "DIR|s3://BUCKET/PREFIX")]
    pub artifacts: Option<String>,
    /// Log at info level on the console too (the log file always gets info).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render one brief in-process, with progress bars, and print a summary.
    Run(RunArgs),
    /// Finish every job a previous process left unfinished (after a crash or kill).
    Resume,
    /// Inspect stored jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Measure what each stage costs on this machine (renders at every tier) and save the
    /// cost model's coefficients in the data dir.
    Calibrate(finance::CalibrateArgs),
    /// Cost certificates, estimates, today's spend, presets and pricing.
    #[command(subcommand)]
    Cost(finance::CostCommand),
    /// The hash-chained cost audit trail.
    #[command(subcommand)]
    Audit(finance::AuditCommand),
    /// Run the REST API, the ICC web client and the workers.
    Serve(service::ServeArgs),
    /// Run jobs only (no HTTP API) from a store shared with `aiprod serve`: add these on
    /// more machines against one PostgreSQL (`--store postgres://…`).
    Worker(service::WorkerArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(service::KeysCommand),
    /// Local models: list, verify, prepare.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Run the technical and semantic QA on any video against a job's plan; exits 1 when
    /// the supervisor would not approve it.
    Qa(QaArgs),
}

/// `aiprod qa FILE --job ID`
#[derive(Debug, Args)]
pub struct QaArgs {
    /// The video to inspect (for instance a deliverable edited by hand).
    pub file: PathBuf,
    /// The job whose brief, plan and narration the file is judged against.
    #[arg(long)]
    pub job: String,
    /// Print the full report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The brief and its options as flags; each maps onto a field of [`BriefRequest`]
/// (`aiprod run`, `aiprod cost estimate`).
#[derive(Debug, Args)]
pub struct BriefArgs {
    /// The brief: what the video should say and feel like.
    #[arg(value_name = "BRIEF")]
    pub content: String,
    /// Video length in seconds.
    #[arg(long)]
    pub duration: Option<u32>,
    /// Aspect ratio: 16:9, 9:16, 1:1 or 4:5.
    #[arg(long)]
    pub aspect: Option<String>,
    /// Quality tier: economy, standard or premium.
    #[arg(long)]
    pub tier: Option<String>,
    /// Subtitle languages, comma-separated; the first is the caption language.
    #[arg(long, value_delimiter = ',')]
    pub lang: Option<Vec<String>>,
    /// Preset: quick_social, brand_campaign or premium_spot.
    #[arg(long)]
    pub preset: Option<String>,
    /// Priority: low, normal or high.
    #[arg(long)]
    pub priority: Option<String>,
    /// Budget for the job, in USD.
    #[arg(long)]
    pub budget: Option<f64>,
    /// Brand id (for brand-consistent looks).
    #[arg(long)]
    pub brand: Option<String>,
    /// Narrator voice: auto (Piper where installed, else espeak-ng), piper or espeak-ng.
    #[arg(long)]
    pub voice: Option<String>,
    /// Music only: no narration.
    #[arg(long)]
    pub no_narration: bool,
}

impl BriefArgs {
    /// The brief these flags describe.
    pub fn request(&self) -> BriefRequest {
        BriefRequest {
            content: self.content.clone(),
            duration_sec: self.duration,
            aspect_ratio: self.aspect.clone(),
            languages: self.lang.clone(),
            preset: self.preset.clone(),
            priority: self.priority.clone(),
            budget: self.budget,
            brand_id: self.brand.clone(),
            tier: self.tier.clone(),
            voice: self.voice.clone(),
            narration: self.no_narration.then_some(false),
        }
    }
}

/// `aiprod run` options: the brief, then what to do with the result.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The brief and its options.
    #[command(flatten)]
    pub brief: BriefArgs,
    /// Copy the deliverables into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Run every stage even when an identical request was already delivered (by default
    /// its artifacts are reused).
    #[arg(long)]
    pub fresh: bool,
}

/// `aiprod jobs …`
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// One line per job.
    List,
    /// A job's state, history and memory as JSON.
    Show {
        /// The job id.
        id: String,
    },
}

/// `aiprod config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate a config file; report the first error with its key path.
    Check {
        /// The file (default: the one `--config` resolves to).
        file: Option<PathBuf>,
    },
}

/// Exit code for invalid input (a brief or config that fails validation).
pub const EXIT_INVALID: u8 = 2;
/// Exit code for a job that ended failed or cancelled.
pub const EXIT_FAILED: u8 = 1;

/// The configuration: `--config`/`$AIPROD_CONFIG`, else `config/v33.json` in the aiprod
/// home (`$AIPROD_HOME`, else the current directory), else the built-in copy. Relative paths in
/// it resolve against the home (see [`crate::config::home_for`]).
fn load_config(explicit: Option<&Path>) -> Result<Config, String> {
    let home = crate::config::home_for(None);
    let default = home.join("config/v33.json");
    let config = match explicit {
        Some(path) => Config::load(path),
        None if default.exists() => Config::load(&default),
        None => {
            let mut c = Config::builtin();
            c.resolve_paths(&home);
            Ok(c)
        }
    };
    config.map_err(|e| e.to_string())
}

/// Parse arguments, run the command, and return the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Config(ConfigCommand::Check { file }) = &cli.command {
        let path = file.as_deref().or(cli.config.as_deref());
        return match load_config(path) {
            Ok(c) => {
                println!(
                    "config OK: version {} ({} presets, {} tiers)",
                    c.version,
                    c.presets.len(),
                    c.render.tiers.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_INVALID)
            }
        };
    }
    let mut config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if let Some(url) = &cli.store_url {
        config.storage.store_url = Some(url.clone());
    }
    if let Some(dir) = &cli.data_dir {
        config.storage.data_dir = dir.clone();
    }
    if let Some(artifacts) = &cli.artifacts {
        config.storage.artifacts = Some(artifacts.clone());
    }
    models::export_thread_count(&config);
    if let Command::Models(command) = cli.command {
        return models::run(command, &config);
    }
    if let Err(e) = crate::telemetry::init(&config.logging, if cli.verbose { "info" } else { "warn" }) {
        eprintln!("warning: file logging disabled: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(dispatch(cli.command, Arc::new(config)))
}

fn open_store(config: &Config) -> Result<Arc<dyn Database>, String> {
    crate::store::open_configured(&config.storage).map_err(|e| format!("cannot open the store: {e}"))
}

async fn dispatch(command: Command, config: Arc<Config>) -> ExitCode {
    let store = match open_store(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::Run(args) => run(args, config, store).await,
        Command::Resume => resume(config, store).await,
        Command::Jobs(JobsCommand::List) => list(store.as_ref()),
        Command::Jobs(JobsCommand::Show { id }) => show(store.as_ref(), &id),
        Command::Calibrate(args) => finance::calibrate(args, config).await,
        Command::Cost(c) => finance::cost(c, config, store).await,
        Command::Audit(c) => finance::audit(c, store.as_ref()),
        Command::Serve(args) => service::serve(args, config).await,
        Command::Worker(args) => service::worker(args, config).await,
        Command::Keys(k) => service::keys(k, store.as_ref()),
        Command::Qa(args) => qa(args, config, store).await,
        Command::Config(_) | Command::Models(_) => ExitCode::SUCCESS,
    }
}

/// A cancel token that trips on Ctrl-C, so a running render stops at the next frame and the
/// job is journaled as cancelled.
fn cancel_on_ctrl_c() -> CancelToken {
    let token = CancelToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ncancelling…");
            t.cancel();
        }
    });
    token
}

async fn run(args: RunArgs, config: Arc<Config>, store: Arc<dyn Database>) -> ExitCode {
    let request = args.brief.request();
    let bars = Arc::new(progress::Bars::new(args.quiet || args.json));
    if !finance::refresh_pricing(&config, &*store, false, args.json).await {
        return ExitCode::FAILURE;
    }
    if let Err(code) = finance::daily_gate(&config, &*store, args.json) {
        return code;
    }
    // This process owns the job it runs, so `aiprod resume` elsewhere leaves it alone.
    let owner = crate::store::service::new_owner("run");
    let driver = match crate::app::driver(config.clone(), store.clone()).await {
        Ok(d) => d.with_observer(bars).with_owner(owner.clone()),
        Err(e) => {
            eprintln!("error: cannot open the consistency cache or the artifact store: {e}");
            return ExitCode::FAILURE;
        }
    };
    let clean = match sanitize::sanitize(&request, &config) {
        Ok(clean) => clean,
        Err(e) => {
            eprintln!("error: invalid brief: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let reusable = match args.fresh {
        false => {
            reuse::reusable_job(&config, driver.cache(), store.as_ref(), driver.artifacts().as_ref(), &clean).await
        }
        true => None,
    };
    if reusable.is_none() {
        crate::pipeline::stages::prewarm_voice(&config, &clean);
    }
    if let Some(id) = reusable {
        if !args.json {
            eprintln!(
                "identical request already delivered as job {id}: reusing its artifacts, no stage re-run (--fresh re-runs)"
            );
        }
        // Delivered by another machine: its files come from the artifact store.
        if let Err(e) = driver.restore_working_copy(&id).await {
            eprintln!("error: job {id}: fetching its files from the artifact store: {e}");
            return ExitCode::FAILURE;
        }
        return finish(store.as_ref(), &driver, &id, &State::Delivered {}, args.out.as_deref(), args.json);
    }
    let job = match driver.submit_sanitized(&request, &clean, true) {
        Ok(job) => job,
        Err(DriverError::Invalid(e)) => {
            eprintln!("error: invalid brief: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
        Err(DriverError::BudgetRefused(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(finance::EXIT_BUDGET);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !args.json {
        eprintln!("job {} submitted", job.id);
    }
    crate::store::service::register_owner(&owner);
    match store.claim_job(&job.id, &owner) {
        Ok(Claim::Claimed) => {}
        Ok(Claim::Held(holder)) => {
            eprintln!("error: job {} was taken by {holder} before this process could drive it", job.id);
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: job {}: {e}", job.id);
            return ExitCode::FAILURE;
        }
    }
    let renewing = crate::app::renew_leases(store.clone(), owner.clone(), |e| eprintln!("warning: lease: {e}"));
    let driven = driver.drive(&job.id, &cancel_on_ctrl_c()).await;
    if let Some(task) = renewing {
        task.abort();
    }
    if let Err(e) = store.release(&job.id, &owner) {
        eprintln!("warning: job {}: could not release it: {e}", job.id);
    }
    let state = match driven {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: job {}: {e}", job.id);
            return ExitCode::FAILURE;
        }
    };
    finish(store.as_ref(), &driver, &job.id, &state, args.out.as_deref(), args.json)
}

fn finish(store: &dyn Store, driver: &Driver, id: &str, state: &State, out: Option<&Path>, json: bool) -> ExitCode {
    let job_dir = driver.job_dir(id);
    let copied = match out {
        Some(dir) if matches!(state, State::Delivered {}) => match summary::copy_deliverables(&job_dir, dir) {
            Ok(files) => Some((dir.to_path_buf(), files)),
            Err(e) => {
                eprintln!("error: copying deliverables to {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    match summary::Summary::load(store, id, &job_dir) {
        Ok(s) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                print!("{}", s.render(copied.as_ref().map(|(d, _)| d.as_path())));
            }
        }
        Err(e) => eprintln!("warning: cannot summarise job {id}: {e}"),
    }
    match state {
        State::Delivered {} => ExitCode::SUCCESS,
        State::Failed { stage, error } => {
            eprintln!("error: job {id} failed at stage '{stage}': {error}");
            ExitCode::from(EXIT_FAILED)
        }
        State::Cancelled {} => {
            eprintln!("job {id} was cancelled");
            ExitCode::from(EXIT_FAILED)
        }
        other => {
            eprintln!("job {id} is waiting in state '{}'", other.name());
            ExitCode::SUCCESS
        }
    }
}

/// Drive every job a previous process left unfinished. Each job is claimed first: a job a
/// live process drives (`aiprod serve`, another `run` or `resume`) is skipped, so nothing is
/// rendered twice.
async fn resume(config: Arc<Config>, store: Arc<dyn Database>) -> ExitCode {
    if !finance::refresh_pricing(&config, &*store, false, false).await {
        return ExitCode::FAILURE;
    }
    let owner = crate::store::service::new_owner("resume");
    let driver = match crate::app::driver(config, store.clone()).await {
        Ok(d) => d.with_observer(Arc::new(progress::Bars::new(false))).with_owner(owner.clone()),
        Err(e) => {
            eprintln!("error: cannot open the consistency cache or the artifact store: {e}");
            return ExitCode::FAILURE;
        }
    };
    crate::store::service::register_owner(&owner);
    let jobs = match store.resumable_jobs() {
        Ok(jobs) => jobs,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cancel = cancel_on_ctrl_c();
    let _renewing = crate::app::renew_leases(store.clone(), owner.clone(), |e| eprintln!("warning: lease: {e}"));
    let (mut code, mut resumed) = (ExitCode::SUCCESS, 0);
    for job in jobs {
        match store.claim_job(&job.id, &owner) {
            Ok(Claim::Claimed) => {}
            Ok(Claim::Held(holder)) => {
                eprintln!("job {} is driven by a running process ({holder}); skipped", job.id);
                continue;
            }
            Err(e) => {
                eprintln!("error: job {}: {e}", job.id);
                code = ExitCode::FAILURE;
                continue;
            }
        }
        resumed += 1;
        let driven = match driver.mark_resumed(&job, "resume") {
            Ok(()) => driver.drive(&job.id, &cancel).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = store.release(&job.id, &owner) {
            eprintln!("warning: job {}: could not release it: {e}", job.id);
        }
        match driven {
            Ok(state) => {
                println!("{} {}", job.id, state.name());
                if !matches!(state, State::Delivered {}) && state.is_terminal() {
                    code = ExitCode::from(EXIT_FAILED);
                }
            }
            Err(e) => {
                eprintln!("error: job {}: {e}", job.id);
                code = ExitCode::FAILURE;
            }
        }
    }
    if resumed == 0 {
        eprintln!("nothing to resume");
    }
    code
}

fn list(store: &dyn Database) -> ExitCode {
    match store.list_jobs() {
        Ok(jobs) => {
            for j in jobs {
                println!(
                    "{}  {:<16} {}  {}",
                    j.id,
                    j.state.name(),
                    j.created_at.format("%Y-%m-%d %H:%M:%S"),
                    j.preset.unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `aiprod qa`: the report on stderr (or JSON on stdout), exit 1 unless approved. The job's
/// narration clips (which the presence checks compare the soundtrack with) are fetched from
/// the artifact store first when another machine rendered it.
async fn qa(args: QaArgs, config: Arc<Config>, store: Arc<dyn Database>) -> ExitCode {
    let restored = match crate::app::driver(config.clone(), store.clone()).await {
        Ok(driver) => driver.restore_working_copy(&args.job).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = restored {
        eprintln!("error: job {}'s files cannot be fetched from the artifact store: {e}", args.job);
        return ExitCode::FAILURE;
    }
    let outcome = crate::app::qa::QaSubject::from_job(store.as_ref(), &args.job, &config)
        .and_then(|subject| crate::app::qa::qa_file(&args.file, &subject, &config));
    match outcome {
        Ok(o) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&o).unwrap_or_default());
            } else {
                eprint!("{}", crate::app::qa::describe(&o));
            }
            if o.approved() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_FAILED) }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn show(store: &dyn Store, id: &str) -> ExitCode {
    let result = (|| -> Result<serde_json::Value, crate::store::StoreError> {
        let job = store.job(id)?;
        let history = store.history(id)?;
        let memory: serde_json::Map<String, serde_json::Value> = store
            .memory(id)?
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), serde_json::to_value(v).unwrap_or_default()))
            .collect();
        Ok(serde_json::json!({"job": job, "history": history, "memory": memory}))
    })();
    match result {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
