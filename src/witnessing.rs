//! The log's side of C2SP `tlog-witness`: each new signed checkpoint goes to every configured
//! witness with an `add-checkpoint` request (a consistency proof from the size that witness
//! last cosigned); their `tlog-cosignature` lines are checked and collected, and a checkpoint
//! cosigned by at least `required` of them is kept and published (`/tlog/checkpoint`,
//! receipts). How far each witness lags is in `/readyz` and `/metrics`.
//!
//! Rounds run on their own thread, one at a time, always for the newest checkpoint: a burst of
//! commits costs one round, not one per commit.

use anyhow::Context as _;
use events::checkpoint::Checkpoint;
use events::cosignature::{add_cosignatures, CosignatureVerifier};
use events::witness::{AddCheckpoint, SIZE_CONTENT_TYPE};
use events::Log;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a witness may take to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the thread looks for a new checkpoint.
const POLL: Duration = Duration::from_millis(100);
/// Longest wait before retrying a witness that failed.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A witness the log submits to: where, and the key its cosignatures must verify under.
#[derive(Debug, Clone)]
pub struct WitnessEndpoint {
    /// The submission prefix (`<url>/add-checkpoint`).
    pub url: String,
    /// Its cosignature verifier key.
    pub key: CosignatureVerifier,
}

impl WitnessEndpoint {
    /// Parses `URL=VERIFIER_KEY` (the URL is up to the first `=`; the key itself or a file
    /// holding it).
    ///
    /// # Errors
    /// If it is malformed.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let (url, key) = text
            .split_once('=')
            .context("--witness must be URL=VERIFIER_KEY")?;
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "--witness {url:?} is not an http(s) URL"
        );
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            key: read_cosignature_verifier(key)?,
        })
    }
}

/// Reads a witness's verifier key given as the key itself or a file holding it.
///
/// # Errors
/// If neither parses.
pub fn read_cosignature_verifier(key: &str) -> anyhow::Result<CosignatureVerifier> {
    if let Ok(v) = CosignatureVerifier::parse(key.trim()) {
        return Ok(v);
    }
    let text = std::fs::read_to_string(key).with_context(|| {
        format!("{key:?} is neither a witness verifier key nor a readable file")
    })?;
    CosignatureVerifier::parse(text.trim()).with_context(|| format!("witness key in {key}"))
}

/// What the log knows of one witness.
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct WitnessStatus {
    /// The witness's key name.
    pub name: String,
    /// Its submission URL.
    pub url: String,
    /// The largest size it has cosigned, as far as the log knows.
    pub cosigned_size: Option<u64>,
    /// Entries in the log's latest checkpoint that it has not cosigned.
    pub lag_entries: u64,
    /// Why the last request to it failed, if it did.
    pub last_error: Option<String>,
    #[serde(skip)]
    retry_at: Option<Instant>,
    #[serde(skip)]
    failures: u32,
}

/// The published, witnessed view of the log.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct WitnessingStatus {
    /// How many witnesses must cosign a checkpoint before it is published.
    pub required: usize,
    /// The size of the latest published (cosigned) checkpoint.
    pub published_size: Option<u64>,
    /// Each witness.
    pub witnesses: Vec<WitnessStatus>,
}

/// Each witness's status, and the published checkpoint (its size and cosigned note).
type Shared = (Vec<WitnessStatus>, Option<(u64, String)>);

/// The log's witnessing: its witnesses, the policy and the published checkpoint.
pub struct Witnessing {
    log: Log,
    endpoints: Vec<WitnessEndpoint>,
    required: usize,
    state: Mutex<Shared>,
    agent: ureq::Agent,
}

impl Witnessing {
    /// Witnessing of `log` by `endpoints`, publishing a checkpoint once `required` cosigned it.
    ///
    /// # Errors
    /// If `required` is 0 or more than there are witnesses, or the kept cosigned checkpoint
    /// cannot be read.
    pub fn new(log: Log, endpoints: Vec<WitnessEndpoint>, required: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            (1..=endpoints.len()).contains(&required),
            "--witnesses-required must be from 1 to the number of --witness ({}), not {required}",
            endpoints.len()
        );
        let published = log
            .latest_cosigned_checkpoint()?
            .and_then(|note| Some((Checkpoint::parse_text(note_text(&note)?).ok()?.size, note)));
        let statuses = endpoints
            .iter()
            .map(|e| WitnessStatus {
                name: e.key.name().to_owned(),
                url: e.url.clone(),
                ..WitnessStatus::default()
            })
            .collect();
        Ok(Self {
            log,
            endpoints,
            required,
            state: Mutex::new((statuses, published)),
            agent: ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).build(),
        })
    }

    /// The latest checkpoint cosigned by enough witnesses, with their cosignatures.
    pub fn published(&self) -> Option<String> {
        self.lock().1.as_ref().map(|(_, note)| note.clone())
    }

    /// Each witness's state and the published size.
    pub fn status(&self) -> WitnessingStatus {
        let (witnesses, published) = &*self.lock();
        WitnessingStatus {
            required: self.required,
            published_size: published.as_ref().map(|(size, _)| *size),
            witnesses: witnesses.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Submits the log's latest checkpoint to every witness due for it, and publishes it if
    /// enough cosigned. Returns the size it was published at, if it was.
    pub fn round(&self) -> Option<u64> {
        let note = self.log.latest_checkpoint().ok()??;
        let checkpoint = Checkpoint::parse_text(note_text(&note)?).ok()?;
        if self
            .lock()
            .1
            .as_ref()
            .is_some_and(|(size, _)| *size >= checkpoint.size)
        {
            return None;
        }
        let due: Vec<usize> = {
            let (statuses, _) = &*self.lock();
            let now = Instant::now();
            (0..self.endpoints.len())
                .filter(|&i| statuses[i].retry_at.is_none_or(|at| at <= now))
                .collect()
        };
        let (note_ref, checkpoint_ref) = (&note, &checkpoint);
        let answers: Vec<(usize, Result<String, String>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = due
                .iter()
                .map(|&i| scope.spawn(move || (i, self.submit(i, note_ref, checkpoint_ref))))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut lines = Vec::new();
        {
            let (statuses, _) = &mut *self.lock();
            for (i, answer) in answers {
                let status = &mut statuses[i];
                match answer {
                    Ok(line) => {
                        lines.push(line);
                        status.cosigned_size = Some(checkpoint.size);
                        status.last_error = None;
                        status.failures = 0;
                        status.retry_at = None;
                    }
                    Err(why) => {
                        tracing::warn!(witness = %status.name, %why, "witness did not cosign");
                        status.last_error = Some(why);
                        status.failures = status.failures.saturating_add(1);
                        let backoff = Duration::from_millis(250)
                            .saturating_mul(2u32.saturating_pow(status.failures.min(8)))
                            .min(BACKOFF_MAX);
                        status.retry_at = Some(Instant::now() + backoff);
                    }
                }
            }
            for status in statuses.iter_mut() {
                status.lag_entries = checkpoint
                    .size
                    .saturating_sub(status.cosigned_size.unwrap_or(0));
            }
        }
        if lines.len() < self.required {
            return None;
        }
        let cosigned = add_cosignatures(&note, &lines);
        if let Err(e) = self.log.put_cosigned_checkpoint(checkpoint.size, &cosigned) {
            tracing::error!(error = %e, "cannot keep the cosigned checkpoint");
            return None;
        }
        self.lock().1 = Some((checkpoint.size, cosigned));
        Some(checkpoint.size)
    }

    /// One witness: `add-checkpoint` from the size it last cosigned (asking it with old size 0
    /// when unknown, and once more with the size its 409 names). Returns its verified line.
    fn submit(&self, i: usize, note: &str, checkpoint: &Checkpoint) -> Result<String, String> {
        let endpoint = &self.endpoints[i];
        let mut old = self.lock().0[i].cosigned_size.unwrap_or(0);
        for _ in 0..2 {
            let proof = if old == 0 {
                Vec::new()
            } else {
                self.log
                    .consistency_proof(old, checkpoint.size)
                    .map_err(|e| format!("no consistency proof from its size {old}: {e}"))?
            };
            let body = AddCheckpoint {
                old_size: old,
                proof,
                checkpoint: note.to_owned(),
            }
            .to_body();
            match self
                .agent
                .post(&format!("{}/add-checkpoint", endpoint.url))
                .send_string(&body)
            {
                Ok(response) => {
                    let lines = response
                        .into_string()
                        .map_err(|e| format!("unreadable answer: {e}"))?;
                    return cosignature_from(&endpoint.key, note, &lines);
                }
                Err(ureq::Error::Status(409, response))
                    if response.content_type() == SIZE_CONTENT_TYPE =>
                {
                    let size = response
                        .into_string()
                        .ok()
                        .and_then(|s| s.trim_end().parse::<u64>().ok())
                        .ok_or("a 409 without a size")?;
                    if size > checkpoint.size {
                        return Err(format!(
                            "the witness holds size {size}, beyond this log's {}: it saw another history",
                            checkpoint.size
                        ));
                    }
                    old = size;
                    self.lock().0[i].cosigned_size = Some(size);
                }
                Err(ureq::Error::Status(code, response)) => {
                    let why = response.into_string().unwrap_or_default();
                    return Err(format!("HTTP {code}: {}", why.trim_end()));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("the witness's size kept changing".into())
    }

    /// Runs rounds on a thread of its own for as long as the process lives.
    pub fn spawn(self: Arc<Self>) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("witnessing".into())
            .spawn(move || loop {
                self.round();
                std::thread::sleep(POLL);
            })
            .expect("spawning a thread")
    }
}

/// A signed note's text (up to and including the blank line's first newline).
fn note_text(note: &str) -> Option<&str> {
    note.find("\n\n").map(|at| &note[..=at])
}

/// The witness's cosignature line from its answer, verified against the checkpoint.
fn cosignature_from(key: &CosignatureVerifier, note: &str, answer: &str) -> Result<String, String> {
    let text = note_text(note).ok_or("the checkpoint is not a signed note")?;
    for line in answer.lines() {
        let candidate = format!("{text}\n{line}\n");
        if key.verify_note(&candidate).is_ok() {
            return Ok(format!("{line}\n"));
        }
    }
    Err(format!(
        "no valid cosignature by {} in its answer",
        key.name()
    ))
}
