//! `trustledger monitor --url PREFIX --key KEY --state FILE [--once]`: runs
//! [`replay::monitor::observe`] now and then (or once), keeping its state in a file that is
//! replaced, atomically, only after an observation that passed.

use crate::commands::Verdict;
use anyhow::Context as _;
use replay::monitor::{observe, MonitorConfig, MonitorState, Unreachable};
use replay::tiles::{DirTiles, TileSource, UrlTiles};
use std::path::Path;
use std::time::Duration;

/// How the monitor runs.
#[derive(Debug, Clone)]
pub struct MonitorRun {
    /// The log's tiles: a URL prefix (a server's is `URL/tlog`) or a directory.
    pub source: String,
    /// Where the state is kept.
    pub state: std::path::PathBuf,
    /// One observation, then exit.
    pub once: bool,
    /// Time between observations.
    pub interval: Duration,
}

/// Runs the monitor: `Valid` after `--once` passes, `Invalid` with the alarm on the first
/// inconsistency (in both modes).
///
/// # Errors
/// When the state file cannot be read or written, or (with `--once`) the log cannot be read.
pub fn run(run: &MonitorRun, config: &MonitorConfig) -> anyhow::Result<Verdict> {
    if run.source.starts_with("http://") || run.source.starts_with("https://") {
        watch(&UrlTiles(run.source.clone()), run, config)
    } else {
        watch(&DirTiles(run.source.clone().into()), run, config)
    }
}

fn watch(
    source: &impl TileSource,
    run: &MonitorRun,
    config: &MonitorConfig,
) -> anyhow::Result<Verdict> {
    loop {
        let kept = read_state(&run.state)?;
        match observe(source, config, kept.as_ref()) {
            Ok(Ok(observation)) => {
                write_state(&run.state, &observation.state)?;
                let line = format!("ok: {}", observation.report);
                if run.once {
                    return Ok(Verdict::Valid(line));
                }
                println!("{line}");
            }
            Ok(Err(alarm)) => return Ok(Verdict::Invalid(format!("ALARM: {alarm}"))),
            Err(Unreachable(why)) if run.once => anyhow::bail!("cannot observe the log: {why}"),
            Err(Unreachable(why)) => eprintln!("cannot observe the log now (will retry): {why}"),
        }
        std::thread::sleep(run.interval);
    }
}

fn read_state(path: &Path) -> anyhow::Result<Option<MonitorState>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is not a monitor state file", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Replaces the state file atomically: a crash leaves the old state or the new, never half.
fn write_state(path: &Path, state: &MonitorState) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut bytes = serde_json::to_vec_pretty(state)?;
    bytes.push(b'\n');
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&temporary)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
