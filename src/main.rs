//! The `trustledger` command line.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use trustledger::commands::{self, Verdict};
use trustledger::data_dir;
use trustledger::export_tiles;

// The audit and verification parse on worker threads and free on the linking thread; glibc's
// allocator pays for each such cross-thread free under a lock, mimalloc does not (measured in
// benches/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
enum TokenAction {
    /// Create a token for a principal; it is printed once and stored only as its SHA-256.
    /// Either with the data directory (no server may hold it) or through a running server.
    Create {
        /// Data directory.
        #[arg(long, required_unless_present = "url", conflicts_with = "url")]
        data: Option<PathBuf>,
        /// A running server's URL (with --token, an admin's token).
        #[arg(long, requires = "token")]
        url: Option<String>,
        /// An admin's bearer token, for --url.
        #[arg(long)]
        token: Option<String>,
        /// The principal's name (the entries' actor).
        #[arg(long)]
        principal: String,
        /// Roles: admin, auditor, cab, deployer, incident-reporter, operator, submitter.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// Revoke a principal's token in force (or the one with --token-sha256).
    Revoke {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// The principal it belongs to.
        #[arg(long)]
        principal: String,
        /// The token's id (its SHA-256), if not the principal's token in force.
        #[arg(long)]
        token_sha256: Option<String>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum VoteOn {
    /// A deployment waiting for the CAB.
    Deployment {
        /// The deployment's id.
        id: uuid::Uuid,
    },
    /// A proposed risk model version.
    RiskModel {
        /// The version.
        version: String,
    },
    /// The review of a break-glass release (--approve: the emergency was justified).
    BreakglassReview {
        /// The deployment released by break-glass.
        id: uuid::Uuid,
    },
    /// A proposed change to the CAB's membership or blast-radius policy.
    Change {
        /// The proposal's id.
        id: uuid::Uuid,
    },
    /// A proposed application registry change.
    RegistryChange {
        /// The proposal's id.
        id: uuid::Uuid,
    },
    /// A proposed exception.
    Exception {
        /// The exception's id.
        id: uuid::Uuid,
    },
    /// Progression to the next maturity level (after a READY_TO_PROGRESS evaluation).
    Progression {
        /// The level to progress to.
        to_level: u32,
    },
}

/// Witnesses whose cosignatures a checkpoint must carry.
#[derive(clap::Args)]
struct WitnessArgs {
    /// A witness's cosignature verifier key (the key itself or a file holding it). Repeatable.
    #[arg(long = "witness")]
    witnesses: Vec<String>,
    /// How many of the --witness keys must have cosigned [default: all of them].
    #[arg(long, requires = "witnesses")]
    witnesses_required: Option<usize>,
}

impl WitnessArgs {
    fn policy(&self) -> anyhow::Result<events::cosignature::WitnessPolicy> {
        commands::witness_policy(&self.witnesses, self.witnesses_required)
    }
}

#[derive(Subcommand)]
enum WitnessAction {
    /// Serve add-checkpoint and the monitoring checkpoint; prints the witness's verifier key.
    Serve {
        /// The witness's data directory (its key and the tree heads it holds).
        #[arg(long)]
        data: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8760")]
        listen: std::net::SocketAddr,
        /// A log to witness: ORIGIN=VERIFIER_KEY (the key itself or a file holding it). Repeatable;
        /// an origin given twice is trusted under both keys (across a key rotation).
        #[arg(long = "log", required = true)]
        logs: Vec<String>,
        /// The name of a new witness key (a schema-less URL naming this witness).
        #[arg(long, default_value = "trustledger.local/witness")]
        name: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Cast a CAB vote signed with your own SSH key: the statement the service offers is checked,
    /// shown on stderr, signed (in-process, or by ssh-keygen for a passphrase-protected key or
    /// one in the agent) and posted.
    Vote {
        /// The service's URL.
        #[arg(long)]
        url: String,
        /// Your bearer token [default: $TRUSTLEDGER_TOKEN].
        #[arg(long, env = "TRUSTLEDGER_TOKEN", hide_env_values = true)]
        token: String,
        /// Your OpenSSH Ed25519 key (the private key file, or its .pub when the agent holds it).
        #[arg(long)]
        key: PathBuf,
        /// Approve.
        #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
        approve: bool,
        /// Reject.
        #[arg(long)]
        reject: bool,
        /// Why (its SHA-256 is in the signed statement).
        #[arg(long)]
        rationale: String,
        #[command(subcommand)]
        on: VoteOn,
    },
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
        /// Keep the log in PostgreSQL (`postgres://user@host:port/db`) instead of DIR/sled; DIR
        /// still holds the signing key, which every node of one log shares.
        #[arg(long, env = data_dir::STORE_ENV)]
        store: Option<String>,
        /// The URL other nodes of a PostgreSQL store hand to clients while this node leads
        /// [default: http://LISTEN].
        #[arg(long)]
        advertise: Option<String>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8750")]
        listen: std::net::SocketAddr,
        /// The origin browsers reach the pages at (`https://cab.example.com` behind a proxy):
        /// passkeys are registered for its host and used only there [default:
        /// http://localhost:PORT, PORT the listen port].
        #[arg(long)]
        web_origin: Option<String>,
        /// Scheduled maturity evaluation cadence, in hours of log time.
        #[arg(long, default_value_t = 168)]
        evaluation_cadence_hours: u32,
        /// Scheduled evaluations require the Wilson upper bound to meet the rate cap.
        #[arg(long)]
        strict: bool,
        /// Largest artifact a release may upload, in bytes.
        #[arg(long, default_value_t = trustledger::governance::ARTIFACT_BYTES_MAX)]
        artifact_bytes_max: u64,
        /// Largest SBOM upload, in bytes.
        #[arg(long, default_value_t = trustledger::governance::SBOM_BYTES_MAX)]
        sbom_bytes_max: u64,
        /// Requests per second from one client address (bursts of twice that; 0: no limit).
        #[arg(long, default_value_t = trustledger::api::Limits::default().rate_per_address)]
        rate_per_address: u32,
        /// Requests per second by one principal (bursts of twice that; 0: no limit).
        #[arg(long, default_value_t = trustledger::api::Limits::default().rate_per_principal)]
        rate_per_principal: u32,
        /// Most open connections.
        #[arg(long, default_value_t = trustledger::api::server::ServerLimits::default().connections_max)]
        connections_max: usize,
        /// A C2SP tlog-witness to submit each new checkpoint to: URL=VERIFIER_KEY (the key itself
        /// or a file holding it). Repeatable.
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// How many witnesses must cosign a checkpoint before it is published [default: all].
        #[arg(long, requires = "witnesses")]
        witnesses_required: Option<usize>,
    },
    /// Run a C2SP tlog-witness for logs you do not operate: it cosigns each checkpoint that is
    /// consistent with the last one it cosigned, and refuses rollbacks and forks.
    Witness {
        #[command(subcommand)]
        action: WitnessAction,
    },
    /// Follow a log through its public tiles: each checkpoint signed (and cosigned as
    /// --witness asks), consistent with the last one kept and with what watched witnesses
    /// hold; optionally every new entry checked. Exit 1 with an ALARM on any inconsistency.
    Monitor {
        /// The log's tlog-tiles prefix (a trustledger server's is `URL/tlog`) or a directory.
        #[arg(long)]
        url: String,
        /// The log's checkpoint verifier key (the key itself or a file holding it).
        #[arg(long)]
        key: String,
        /// The state file: the checkpoint kept from the last observation (created if absent).
        #[arg(long)]
        state: PathBuf,
        /// Observe once and exit (0 consistent, 1 alarm, 2 unreachable).
        #[arg(long)]
        once: bool,
        /// Read and check every new entry (chain, canonical form, Merkle root).
        #[arg(long)]
        entries: bool,
        /// Seconds between observations.
        #[arg(long, default_value_t = 60)]
        interval: u64,
        /// A witness's monitoring prefix: the checkpoint it holds for the log must be consistent
        /// with the log's (and, with --witness, cosigned by one of those keys). Repeatable.
        #[arg(long = "witness-view")]
        witness_views: Vec<String>,
        #[command(flatten)]
        witness: WitnessArgs,
    },
    /// Manage bearer tokens (run while no server holds the data directory).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Verify a stored log (--data), an export bundle (--bundle), a tiled log (--tiles) or a
    /// receipt (--receipt). Exit 0 valid, 1 invalid, 2 error.
    Verify {
        /// Data directory of a stored log.
        #[arg(long, conflicts_with_all = ["bundle", "tiles"], required_unless_present_any = ["bundle", "tiles", "receipt"])]
        data: Option<PathBuf>,
        /// Export bundle directory.
        #[arg(long, conflicts_with = "tiles")]
        bundle: Option<PathBuf>,
        /// A C2SP tlog-tiles log: a URL prefix (a server's is `URL/tlog`) or a directory that
        /// `export --tiles` wrote. Needs --key.
        #[arg(long, requires = "key", conflicts_with = "receipt")]
        tiles: Option<String>,
        /// A C2SP tlog-proof receipt (`GET /api/v1/log/receipt?seq=N`), checked offline against
        /// --entry and --key.
        #[arg(long, requires_all = ["key", "entry"], conflicts_with_all = ["data", "bundle"])]
        receipt: Option<PathBuf>,
        /// The entry a receipt proves: a file holding its stored bytes.
        #[arg(long, requires = "receipt")]
        entry: Option<PathBuf>,
        /// Verifier key to check checkpoint signatures with (the key itself or a file holding it).
        #[arg(long)]
        key: Option<String>,
        /// A signed checkpoint kept from earlier: the bundle must extend it.
        #[arg(long, requires = "bundle")]
        from_checkpoint: Option<PathBuf>,
        /// With --tiles or --receipt: the checkpoint must be cosigned by these witnesses.
        #[command(flatten)]
        witness: WitnessArgs,
    },
    /// Audit a bundle or a stored log: integrity, then every recorded decision re-derived with the
    /// rules in force when it was made. Exit 0 clean, 1 findings, 2 unusable input.
    Audit {
        /// Data directory of a stored log (not in use by a server).
        #[arg(long, conflicts_with_all = ["bundle", "url"], required_unless_present_any = ["bundle", "url"])]
        data: Option<PathBuf>,
        /// Export bundle directory.
        #[arg(long, conflicts_with = "url")]
        bundle: Option<PathBuf>,
        /// A live server's base URL, e.g. http://127.0.0.1:8080: its log is paged up to its latest
        /// signed checkpoint and every page checked against it.
        #[arg(long)]
        url: Option<String>,
        /// Bearer token (auditor role) for --url.
        #[arg(
            long,
            env = "TRUSTLEDGER_TOKEN",
            hide_env_values = true,
            requires = "url"
        )]
        token: Option<String>,
        /// Verifier key (the key itself or a file holding it).
        #[arg(long)]
        key: Option<String>,
        /// A signed checkpoint kept from earlier: the bundle or served log must extend it.
        #[arg(long, conflicts_with = "data")]
        from_checkpoint: Option<PathBuf>,
        /// With --url: audit against the log's published checkpoint, which these witnesses
        /// must have cosigned.
        #[command(flatten)]
        witness: WitnessArgs,
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
    /// Export a stored log as a bundle (--out: entries.jsonl, checkpoint, verifier-key) or as the
    /// static files of a C2SP tlog-tiles log (--tiles).
    Export {
        /// Data directory of the log.
        #[arg(long)]
        data: PathBuf,
        /// Directory to write the bundle into.
        #[arg(long, conflicts_with = "tiles", required_unless_present = "tiles")]
        out: Option<PathBuf>,
        /// Directory to write the tiles into (checkpoint, tile/…).
        #[arg(long)]
        tiles: Option<PathBuf>,
    },
    /// Replace the key that signs the log's checkpoints (run while no server holds the data
    /// directory): both keys sign a key-rotation entry, verifiers follow it, and the old key is
    /// kept as DIR/signing-key.retired-N. Prints the new verifier key.
    RotateKey {
        /// Data directory of the log.
        #[arg(long)]
        data: PathBuf,
    },
    /// Copy a log between stores (a data directory's sled store and PostgreSQL, either way),
    /// then verify the copy and compare it with the source (bytes, root, checkpoints) before
    /// reporting success. The source is only read; the target must hold no log.
    Migrate {
        /// The log to copy: a data directory, or a `postgres://` URL.
        #[arg(long)]
        from: String,
        /// Where to copy it: a data directory (its sled store is created), or a `postgres://` URL.
        #[arg(long)]
        to: String,
    },
    /// Print the latest signed checkpoint of a stored log.
    Checkpoint {
        /// Data directory of the log.
        #[arg(long)]
        data: PathBuf,
    },
    /// Read one JSON value on stdin and write its RFC 8785 canonical form (no newline): the bytes
    /// an evidence producer signs (`| ssh-keygen -Y sign -n trustledger-evidence -f KEY`).
    Canonical,
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

/// A `--from`/`--to` of `migrate`: a URL, or a data directory's sled store.
fn migration_end(text: &str) -> events::StoreLocation {
    match events::StoreLocation::parse(text) {
        events::StoreLocation::Directory(dir) => {
            events::StoreLocation::Directory(data_dir::sled_dir(&dir))
        }
        url => url,
    }
}

fn migrate(from: &str, to: &str) -> anyhow::Result<ExitCode> {
    let (source, target) = (migration_end(from), migration_end(to));
    let (bar, tick) = progress("copying");
    let result = events::migrate(&source, &target, tick);
    bar.finish_and_clear();
    let done = result?;
    println!(
        "migrated {} entries and {} checkpoints of {} from {source} to {target}; the copy verifies and matches (root {})",
        done.entries, done.checkpoints, done.origin, done.root
    );
    match (&source, &target) {
        (events::StoreLocation::Directory(_), events::StoreLocation::Postgres(_)) => eprintln!(
            "serve it with: trustledger serve --data {from} --store URL (the directory keeps the signing key)"
        ),
        (events::StoreLocation::Postgres(_), events::StoreLocation::Directory(_)) => eprintln!(
            "the signing key is not in the database: copy it to {to}/signing-key, or serve with --key FILE"
        ),
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
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
        Command::Serve {
            data,
            key,
            origin,
            store,
            advertise,
            listen,
            web_origin,
            evaluation_cadence_hours,
            strict,
            artifact_bytes_max,
            sbom_bytes_max,
            rate_per_address,
            rate_per_principal,
            connections_max,
            witnesses,
            witnesses_required,
        } => {
            let witnesses = witnesses
                .iter()
                .map(|w| trustledger::witnessing::WitnessEndpoint::parse(w))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let required = witnesses_required.unwrap_or(witnesses.len());
            let dir = data.unwrap_or_else(data_dir::default_dir);
            let limits = trustledger::api::Limits {
                artifact_bytes_max,
                sbom_bytes_max,
                rate_per_address,
                rate_per_principal,
            };
            let server_limits = trustledger::api::server::ServerLimits {
                connections_max,
                ..Default::default()
            };
            init_tracing();
            trustledger::serve::serve(
                &dir,
                data_dir::ServeOptions {
                    key,
                    origin,
                    store: store.as_deref().map(events::StoreLocation::parse),
                },
                (
                    listen,
                    web_origin.unwrap_or_else(|| format!("http://localhost:{}", listen.port())),
                    advertise.unwrap_or_else(|| format!("http://{listen}")),
                ),
                (evaluation_cadence_hours, strict),
                (limits, server_limits),
                (witnesses, required),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { action } => token(action),
        Command::RotateKey { data } => {
            let key = trustledger::key_rotation::rotate_key(&data)?;
            eprintln!("rotated: checkpoints from now on are signed by the new key (its verifier key below); give it to your witnesses and auditors");
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Monitor {
            url,
            key,
            state,
            once,
            entries,
            interval,
            witness_views,
            witness,
        } => {
            let config = replay::monitor::MonitorConfig {
                log_key: commands::read_verifier(&key)?,
                policy: witness.policy()?,
                witness_views,
                entries,
            };
            let run = trustledger::monitor::MonitorRun {
                source: url,
                state,
                once,
                interval: std::time::Duration::from_secs(interval.max(1)),
            };
            Ok(verdict(trustledger::monitor::run(&run, &config)?))
        }
        Command::Witness {
            action:
                WitnessAction::Serve {
                    data,
                    listen,
                    logs,
                    name,
                },
        } => {
            init_tracing();
            let logs = logs
                .iter()
                .map(|l| trustledger::witness::parse_log(l))
                .collect::<anyhow::Result<Vec<_>>>()?;
            trustledger::witness::serve(&data, &name, logs, listen)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Vote {
            url,
            token,
            key,
            approve,
            reject: _,
            rationale,
            on,
        } => {
            use projections::vote_statement::Kind;
            let (kind, subject) = match on {
                VoteOn::Deployment { id } => (Kind::Deployment, id.to_string()),
                VoteOn::RiskModel { version } => (Kind::RiskModel, version),
                VoteOn::Exception { id } => (Kind::Exception, id.to_string()),
                VoteOn::RegistryChange { id } => (Kind::RegistryChange, id.to_string()),
                VoteOn::Change { id } => (Kind::Change, id.to_string()),
                VoteOn::BreakglassReview { id } => (Kind::BreakglassReview, id.to_string()),
                VoteOn::Progression { to_level } => {
                    (Kind::MaturityProgression, to_level.to_string())
                }
            };
            let ballot = trustledger::vote_client::Ballot {
                kind,
                subject,
                approve,
                rationale,
            };
            let (recorded, statement) =
                trustledger::vote_client::vote(&url, &token, &key, &ballot)?;
            eprint!("signed and recorded:\n{statement}");
            println!("{recorded}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            data,
            bundle,
            tiles,
            receipt,
            entry,
            key,
            from_checkpoint,
            witness,
        } => {
            let witnesses = witness.policy()?;
            if !witnesses.witnesses.is_empty() && tiles.is_none() && receipt.is_none() {
                anyhow::bail!("--witness applies to --tiles and --receipt");
            }
            let (bar, tick) = progress("verifying");
            if let (Some(receipt), Some(entry), Some(key)) = (&receipt, &entry, &key) {
                bar.finish_and_clear();
                return Ok(verdict(export_tiles::verify_receipt(
                    receipt, entry, key, &witnesses,
                )?));
            }
            let result = match (data, bundle, tiles) {
                (Some(dir), _, _) => commands::verify_data(&dir, key.as_deref(), tick),
                (None, Some(dir), _) => {
                    commands::verify_bundle(&dir, key.as_deref(), from_checkpoint.as_deref(), tick)
                }
                (None, None, Some(source)) => export_tiles::verify_tiles(
                    &source,
                    key.as_deref().expect("clap requires --key with --tiles"),
                    &witnesses,
                    tick,
                ),
                (None, None, None) => {
                    unreachable!("clap requires one of --data, --bundle and --tiles")
                }
            };
            bar.finish_and_clear();
            Ok(verdict(result?))
        }
        Command::Audit {
            data,
            bundle,
            url,
            token,
            key,
            from_checkpoint,
            format,
            witness,
        } => {
            let witnesses = witness.policy()?;
            if !witnesses.witnesses.is_empty() && url.is_none() {
                anyhow::bail!("--witness applies to --url");
            }
            let (bar, tick) = progress("auditing");
            let source = match url.as_deref() {
                Some(url) => commands::AuditSource::Url {
                    url,
                    token: token.as_deref(),
                    witnesses,
                },
                None => audit_source(data.as_deref(), bundle.as_deref()),
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
        Command::Migrate { from, to } => migrate(&from, &to),
        Command::Backtest {
            data,
            bundle,
            model,
            levels,
            key,
            format,
        } => {
            let (bar, tick) = progress("backtesting");
            let source = audit_source(data.as_deref(), bundle.as_deref());
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
        Command::Export { data, out, tiles } => {
            let (bar, tick) = progress("exporting");
            let (n, to) = match (out, tiles) {
                (Some(out), _) => (commands::export(&data, &out, tick)?, out),
                (None, Some(dir)) => (export_tiles::export_tiles(&data, &dir, tick)?, dir),
                (None, None) => unreachable!("clap requires --out or --tiles"),
            };
            bar.finish_and_clear();
            println!("exported {n} entries to {}", to.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkpoint { data } => {
            print!("{}", commands::latest_checkpoint(&data)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Canonical => {
            let bytes = commands::canonical(std::io::stdin().lock())?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { out, name, force } => {
            let verifier = commands::keygen(&out, &name, force)?;
            println!("{verifier}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The entry source of `audit` and `backtest` (clap guarantees exactly one of the two).
fn audit_source<'a>(
    data: Option<&'a std::path::Path>,
    bundle: Option<&'a std::path::Path>,
) -> commands::AuditSource<'a> {
    match (data, bundle) {
        (Some(dir), _) => commands::AuditSource::Data(dir),
        (None, Some(dir)) => commands::AuditSource::Bundle(dir),
        (None, None) => unreachable!("clap requires one of --data and --bundle"),
    }
}

fn token(action: TokenAction) -> anyhow::Result<ExitCode> {
    use trustledger::governance::{new_token, Principal, Role, CLI_ADMIN};
    let cli = Principal::new(CLI_ADMIN, &[Role::Admin]);
    match action {
        TokenAction::Create {
            data: None,
            url: Some(url),
            token: Some(admin),
            principal,
            roles,
        } => {
            let token = commands::create_token_remotely(&url, &admin, &principal, &roles)?;
            eprintln!("token for {principal} (shown once; only its SHA-256 is recorded):");
            println!("{token}");
        }
        TokenAction::Create {
            data,
            principal,
            roles,
            ..
        } => {
            let data = data.ok_or_else(|| anyhow::anyhow!("give --data DIR or --url URL"))?;
            let gov =
                trustledger::serve::open_service(&data, &data_dir::ServeOptions::default(), true)?;
            let (token, token_sha256) = new_token();
            let grant = events::catalogue::access::AccessGranted {
                principal: principal.clone(),
                roles,
                token_sha256,
            };
            gov.execute(&cli, &projections::policy::Command::GrantAccess(grant))?;
            eprintln!("token for {principal} (shown once; only its SHA-256 is recorded):");
            println!("{token}");
        }
        TokenAction::Revoke {
            data,
            principal,
            token_sha256,
            reason,
        } => {
            let gov =
                trustledger::serve::open_service(&data, &data_dir::ServeOptions::default(), true)?;
            let token_sha256 = match token_sha256 {
                Some(id) => id,
                None => gov
                    .with_state(|s| trustledger::governance::token_in_force(s, &principal))
                    .ok_or_else(|| anyhow::anyhow!("{principal} holds no token in force"))?,
            };
            let revoke = events::catalogue::access::AccessRevoked {
                principal,
                token_sha256,
                reason,
            };
            gov.execute(&cli, &projections::policy::Command::RevokeAccess(revoke))?;
            println!("revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr, at `info` unless `RUST_LOG` says otherwise.
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
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
            eprintln!("trustledger: error: {}", error_report(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The error and its causes, each said once: many of our errors already quote their cause in
/// their own message (`cannot read FILE: REASON`), and printing the chain would repeat it.
fn error_report(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
