//! The `trustledger` command line.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use trustledger::commands::{self, Verdict};
use trustledger::data_dir;

/// Exit code for a log or bundle that is not intact.
const EXIT_INVALID: u8 = 1;
/// Exit code for a usage or IO error.
const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "trustledger",
    version,
    about = "Tamper-evident deployment governance: a hash-chained, event-sourced CAB record"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Open (creating on first start) the data directory and its signing key, and hold it.
    Serve {
        /// Data directory [default: $TRUSTLEDGER_DATA or ./trustledger-data].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Checkpoint signing key file (from `keygen`) [default: DIR/signing-key, created on first start].
        #[arg(long)]
        key: Option<PathBuf>,
        /// The log's origin, unique per log [default for a new log: trustledger.local/log/<random>].
        #[arg(long)]
        origin: Option<String>,
    },
    /// Verify a stored log (--data) or an export bundle (--bundle). Exit 0 valid, 1 invalid, 2 error.
    Verify {
        /// Data directory of a stored log.
        #[arg(long, conflicts_with = "bundle", required_unless_present = "bundle")]
        data: Option<PathBuf>,
        /// Export bundle directory.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Verifier key to check checkpoint signatures with (the key itself or a file holding it).
        #[arg(long)]
        key: Option<String>,
        /// A signed checkpoint kept from earlier: the bundle must extend it.
        #[arg(long, requires = "bundle")]
        from_checkpoint: Option<PathBuf>,
    },
    /// Audit a bundle or a stored log: integrity, then every recorded decision re-derived with the
    /// rules in force when it was made. Exit 0 clean, 1 findings, 2 unusable input.
    Audit {
        /// Data directory of a stored log (not in use by a server).
        #[arg(long, conflicts_with = "bundle", required_unless_present = "bundle")]
        data: Option<PathBuf>,
        /// Export bundle directory.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Verifier key (the key itself or a file holding it).
        #[arg(long)]
        key: Option<String>,
        /// A signed checkpoint kept from earlier: the bundle must extend it.
        #[arg(long, requires = "bundle")]
        from_checkpoint: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_parser = ["text", "json"], default_value = "text")]
        format: String,
    },
    /// Replay real history under a candidate risk model (and levels): what would it have done?
    Backtest {
        /// Data directory of a stored log (not in use by a server).
        #[arg(long, conflicts_with = "bundle", required_unless_present = "bundle")]
        data: Option<PathBuf>,
        /// Export bundle directory.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// The candidate model: a risk_model.proposed payload as JSON.
        #[arg(long)]
        model: PathBuf,
        /// Candidate maturity levels: a JSON array of levels (default: the recorded ones).
        #[arg(long)]
        levels: Option<PathBuf>,
        /// Verifier key (the key itself or a file holding it).
        #[arg(long)]
        key: Option<String>,
        /// Output format.
        #[arg(long, value_parser = ["text", "json"], default_value = "text")]
        format: String,
    },
    /// Generate a realistic history through the real commands, on a simulated clock.
    Simulate {
        /// Data directory to create (must not hold a log).
        #[arg(long)]
        data: PathBuf,
        /// Weeks to simulate.
        #[arg(long, default_value_t = 16)]
        weeks: u32,
        /// Deployments per week.
        #[arg(long, default_value_t = 100)]
        per_week: u32,
        /// Seed: the same seed gives the same log.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Incident probability of a typical release, in percent (riskier apps scale it up).
        #[arg(long, default_value = "0.40")]
        incident_rate: String,
    },
    /// Export a stored log as a bundle: entries.jsonl, checkpoint, verifier-key.
    Export {
        /// Data directory of the log.
        #[arg(long)]
        data: PathBuf,
        /// Directory to write the bundle into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the latest signed checkpoint of a stored log.
    Checkpoint {
        /// Data directory of the log.
        #[arg(long)]
        data: PathBuf,
    },
    /// Create an Ed25519 checkpoint signing key (file mode 0600) and print its verifier key.
    Keygen {
        /// Key file to create.
        #[arg(long)]
        out: PathBuf,
        /// Key name (appears in signature lines).
        #[arg(long, default_value = "trustledger")]
        name: String,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
}

/// A progress bar on a terminal; nothing when stderr is piped.
fn progress(what: &'static str) -> (ProgressBar, impl FnMut(u64)) {
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}: {pos} entries ({per_sec})")
                .expect("valid template"),
        );
        bar.set_message(what);
        bar
    } else {
        ProgressBar::hidden()
    };
    let handle = bar.clone();
    (bar, move |n| handle.set_position(n))
}

fn verdict(v: Verdict) -> ExitCode {
    match v {
        Verdict::Valid(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Verdict::Invalid(text) => {
            println!("{text}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { data, key, origin } => {
            let dir = data.unwrap_or_else(data_dir::default_dir);
            let log = data_dir::open_for_serving(&dir, &data_dir::ServeOptions { key, origin })?;
            let governance = trustledger::governance::Governance::open(
                log,
                std::sync::Arc::new(events::SystemClock),
                trustledger::governance::IdSource::Random,
            )?;
            let log = governance.log();
            let head = log.head();
            eprintln!(
                "trustledger: log {} in {} ({} entries)",
                log.origin(),
                dir.display(),
                head.size
            );
            if let Some(key) = log.verifier() {
                eprintln!("trustledger: checkpoint verifier key {key}");
            }
            if let Some(refusal) = log.refusal() {
                eprintln!("trustledger: WARNING: {refusal}");
            }
            governance.with_state(|s| {
                eprintln!(
                    "trustledger: risk model {} in force, maturity level {}, {} CAB members, {} deployments",
                    s.active_model.as_deref().unwrap_or("none"),
                    s.level,
                    s.cab_members.len(),
                    s.deployments.len()
                );
            });
            eprintln!("trustledger: the HTTP API is not built yet; holding the data directory until interrupted");
            loop {
                std::thread::park();
            }
        }
        Command::Verify {
            data,
            bundle,
            key,
            from_checkpoint,
        } => {
            let (bar, tick) = progress("verifying");
            let result = match (data, bundle) {
                (Some(dir), _) => commands::verify_data(&dir, key.as_deref(), tick),
                (None, Some(dir)) => {
                    commands::verify_bundle(&dir, key.as_deref(), from_checkpoint.as_deref(), tick)
                }
                (None, None) => unreachable!("clap requires one of --data and --bundle"),
            };
            bar.finish_and_clear();
            Ok(verdict(result?))
        }
        Command::Audit {
            data,
            bundle,
            key,
            from_checkpoint,
            format,
        } => {
            let (bar, tick) = progress("auditing");
            let source = match (&data, &bundle) {
                (Some(dir), _) => commands::AuditSource::Data(dir),
                (None, Some(dir)) => commands::AuditSource::Bundle(dir),
                (None, None) => unreachable!("clap requires one of --data and --bundle"),
            };
            let result = commands::audit(
                source,
                key.as_deref(),
                from_checkpoint.as_deref(),
                format == "json",
                tick,
            );
            bar.finish_and_clear();
            Ok(verdict(result?))
        }
        Command::Backtest {
            data,
            bundle,
            model,
            levels,
            key,
            format,
        } => {
            let (bar, tick) = progress("backtesting");
            let source = match (&data, &bundle) {
                (Some(dir), _) => commands::AuditSource::Data(dir),
                (None, Some(dir)) => commands::AuditSource::Bundle(dir),
                (None, None) => unreachable!("clap requires one of --data and --bundle"),
            };
            let result = commands::backtest(
                source,
                &model,
                levels.as_deref(),
                key.as_deref(),
                format == "json",
                tick,
            );
            bar.finish_and_clear();
            println!("{}", result?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate {
            data,
            weeks,
            per_week,
            seed,
            incident_rate,
        } => {
            let incident_rate_bp = parse_percent_bp(&incident_rate)?;
            if weeks == 0 || weeks > 520 || per_week == 0 || per_week > 100_000 {
                anyhow::bail!("--weeks must be 1–520 and --per-week 1–100000");
            }
            let clock = events::ManualClock::new(
                events::Timestamp::parse("2026-02-10T09:00:00.000000Z").expect("valid"),
            );
            let log = data_dir::create_for_simulation(
                &data,
                clock.clone(),
                format!("trustledger.sim/seed-{seed}"),
            )?;
            let governance = trustledger::governance::Governance::open(
                log,
                std::sync::Arc::new(clock.clone()),
                trustledger::governance::IdSource::Seeded(seed),
            )?;
            let bar = if std::io::stderr().is_terminal() {
                let bar = ProgressBar::new(u64::from(weeks));
                bar.set_style(
                    ProgressStyle::with_template("simulating week {pos}/{len} {bar:30} {elapsed}")
                        .expect("valid template"),
                );
                bar
            } else {
                ProgressBar::hidden()
            };
            let config = trustledger::simulate::SimulationConfig {
                weeks,
                per_week,
                seed,
                incident_rate_bp,
            };
            let report = trustledger::simulate::run(&governance, &clock, &config, |week| {
                bar.set_position(u64::from(week))
            })?;
            bar.finish_and_clear();
            governance.save_snapshot()?;
            println!("{report}");
            println!("data directory: {} (written with flush-only durability: a simulation is disposable)", data.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { data, out } => {
            let (bar, tick) = progress("exporting");
            let n = commands::export(&data, &out, tick)?;
            bar.finish_and_clear();
            println!("exported {n} entries to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkpoint { data } => {
            print!("{}", commands::latest_checkpoint(&data)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { out, name, force } => {
            let verifier = commands::keygen(&out, &name, force)?;
            println!("{verifier}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Parses a percentage like `0.40` into basis points, exactly.
fn parse_percent_bp(text: &str) -> anyhow::Result<u32> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let valid = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 2
        && frac.bytes().all(|b| b.is_ascii_digit());
    let bp = whole
        .parse::<u32>()
        .ok()
        .filter(|_| valid)
        .and_then(|w| w.checked_mul(100))
        .map(|w| w + format!("{frac:0<2}").parse::<u32>().unwrap_or(0));
    match bp {
        Some(bp) if bp <= 10_000 => Ok(bp),
        _ => anyhow::bail!("--incident-rate must be a percentage from 0 to 100 with at most two decimals, e.g. 0.40"),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trustledger: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
