//! `aiprod calibrate`, `aiprod cost …` and `aiprod audit …`: the money commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::config::Config;
use crate::finance::audit;
use crate::finance::certificate::{Certificate, CostKey};
use crate::finance::model::Calibration;
use crate::finance::{self, daily, routing};
use crate::sanitize;
use crate::store::CostLedger;
use crate::store::Database;

/// Exit code when the daily budget refuses a new job.
pub const EXIT_BUDGET: u8 = 3;

/// `aiprod calibrate` options.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Length of the short calibration render, seconds.
    #[arg(long, default_value_t = 5)]
    pub short: u32,
    /// Length of the long calibration render, seconds.
    #[arg(long, default_value_t = 12)]
    pub long: u32,
}

/// `aiprod cost …`
#[derive(Debug, Subcommand)]
pub enum CostCommand {
    /// Check a cost certificate's signature (exit 0 when valid, 1 when altered or forged).
    Verify {
        /// The certificate (a job's `cost_certificate.json`).
        file: PathBuf,
    },
    /// Estimate a brief without running it: every tier priced and the routing decision.
    Estimate(super::BriefArgs),
    /// Today's spend against financial.dailyLimit.
    Daily,
    /// Every preset priced with the cost model.
    Presets,
    /// Refresh the pricing table now (from pricing.source) and print the table in force.
    Pricing {
        /// Consult the source even if the refresh interval has not elapsed.
        #[arg(long)]
        refresh: bool,
    },
}

/// `aiprod audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; names the first bad entry (exit 1) or reports how many verified.
    Verify,
    /// Print every entry as JSON lines.
    List,
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Run the pricing refresh a CLI process does at start; prints what changed or failed.
/// Returns false when no table can be used (source failed, nothing to fall back on).
pub async fn refresh_pricing(config: &Config, store: &dyn Database, force: bool, quiet: bool) -> bool {
    match crate::app::pricing::refresh(config, store, &config.storage.data_dir, chrono::Utc::now(), force).await {
        Ok(o) => {
            if let Some(e) = &o.error {
                eprintln!("warning: pricing refresh failed ({e}); using {} (version {})", o.origin, o.version);
            } else if o.changed && !quiet {
                eprintln!("pricing table {} from {} is now in force (audited)", o.version, o.origin);
            }
            true
        }
        Err(e) => {
            eprintln!("error: {e} (financial.dynamicPricing.fallbackToStatic is off)");
            false
        }
    }
}

/// `aiprod calibrate`
pub async fn calibrate(args: CalibrateArgs, config: Arc<Config>) -> ExitCode {
    let data_dir = config.storage.data_dir.clone();
    let scratch = data_dir.join(format!(".calibration-{}", uuid::Uuid::new_v4()));
    eprintln!(
        "calibrating: {} s and {} s renders at every tier ({} build) in {}",
        args.short,
        args.long,
        finance::model::build_profile(),
        scratch.display()
    );
    let result = crate::app::calibrate::calibrate(&config, &scratch, args.short, args.long, |r| {
        let cpu: f64 = r.stage_cpu.iter().map(|(_, c)| c).sum();
        let render = r.stage_cpu.iter().find(|(s, _)| s == "rendering").map(|(_, c)| *c).unwrap_or(0.0);
        eprintln!(
            "  {:<9} {:>3} s  {:>8.1} Mpx-frames  cpu {:>7.2} s (render {:>7.2} s)  {:>9} bytes",
            r.tier, r.seconds, r.mpf, cpu, render, r.bytes
        );
    })
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    match result {
        Ok((cal, _runs)) => match cal.save(&data_dir) {
            Ok(path) => {
                println!("calibration written to {}", path.display());
                for (tier, c) in &cal.tiers {
                    let r = c.stages.get("rendering").copied().unwrap_or(finance::model::Linear {
                        fixed_s: 0.0,
                        per_mpf_s: 0.0,
                        per_output_s: 0.0,
                    });
                    let q = c.stages.get("technical_qa").copied().unwrap_or(r);
                    println!(
                        "  {tier:<9} render {:.3} s + {:.5} s/Mpx-frame; technical QA {:.3} s + {:.5} s/Mpx-frame",
                        r.fixed_s, r.per_mpf_s, q.fixed_s, q.per_mpf_s
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: writing the calibration: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("error: calibration failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `aiprod cost …`
pub async fn cost(command: CostCommand, config: Arc<Config>, store: Arc<dyn Database>) -> ExitCode {
    let data_dir = config.storage.data_dir.clone();
    match command {
        CostCommand::Verify { file } => verify_certificate(&file, &data_dir),
        CostCommand::Estimate(a) => {
            let brief = match sanitize::sanitize(&a.request(), &config) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: invalid brief: {e}");
                    return ExitCode::from(super::EXIT_INVALID);
                }
            };
            match finance::quote_brief(&config, store.as_ref(), &data_dir, Some(store.as_ref()), &brief) {
                Ok(q) => {
                    print_json(&q.orchestration);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        CostCommand::Daily => {
            let prices = crate::store::pricing_in_force(&config, Some(store.as_ref() as &dyn CostLedger));
            match daily::status(store.as_ref(), &config, &prices, chrono::Utc::now()) {
                Ok(s) => {
                    print_json(&s);
                    if let Some(w) = s.warning() {
                        eprintln!("{w}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        CostCommand::Presets => {
            let prices = crate::store::pricing_in_force(&config, Some(store.as_ref() as &dyn CostLedger));
            print_json(&finance::preset_estimates(&config, &prices, &Calibration::load_or_default(&data_dir)));
            ExitCode::SUCCESS
        }
        CostCommand::Pricing { refresh } => {
            if !refresh_pricing(&config, &*store, refresh, false).await {
                return ExitCode::FAILURE;
            }
            print_json(&crate::store::pricing_in_force(&config, Some(store.as_ref() as &dyn CostLedger)));
            ExitCode::SUCCESS
        }
    }
}

fn verify_certificate(file: &Path, data_dir: &Path) -> ExitCode {
    let key = match CostKey::load(data_dir) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match Certificate::verify_file(file, &key) {
        Ok(c) => {
            println!(
                "valid: job {} — {} tier via {}, estimate ${:.4} (${:.4}/min), pricing {}, key {}",
                c.job,
                c.chosen_tier,
                c.backend,
                c.estimate.total,
                c.estimate.cost_per_minute,
                c.pricing_version,
                c.key_id
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("invalid: {}: {e}", file.display());
            ExitCode::from(super::EXIT_FAILED)
        }
    }
}

/// `aiprod audit …`
pub fn audit(command: AuditCommand, store: &dyn Database) -> ExitCode {
    let entries = match store.entries() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        AuditCommand::List => {
            for e in &entries {
                println!("{}", serde_json::to_string(e).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        AuditCommand::Verify => match audit::verify(&entries) {
            Ok(n) => {
                println!("audit trail OK: {n} entries, hash chain intact");
                ExitCode::SUCCESS
            }
            Err(t) => {
                eprintln!("audit trail TAMPERED: {t}");
                ExitCode::from(super::EXIT_FAILED)
            }
        },
    }
}

/// The daily guard's line before a run, or the refusal (exit code [`EXIT_BUDGET`]).
pub fn daily_gate(config: &Config, store: &dyn Database, quiet: bool) -> Result<(), ExitCode> {
    let prices = crate::store::pricing_in_force(config, Some(store as &dyn CostLedger));
    match daily::status(store, config, &prices, chrono::Utc::now()) {
        Ok(s) => {
            if let Some(w) = s.warning()
                && !quiet
                && s.level != routing::DailyLevel::Refuse
            {
                eprintln!("warning: {w}");
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}
