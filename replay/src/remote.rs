//! A live server as a source of verified entries: `trustledger audit --url`.
//!
//! Nothing the server says is taken on trust:
//! 1. its signed checkpoint (size N, root R) is checked against the verifier key the auditor
//!    pinned (or, failing that, the key the server serves, which is reported as unpinned);
//! 2. a checkpoint the auditor kept from earlier (size M) must be extended by it: the served
//!    RFC 9162 consistency proof from M to N is verified against both signed roots, and the
//!    auditor's own recomputed root at M must equal the kept one;
//! 3. `/api/v1/events` is paged from seq 0 to N; every entry goes through the same
//!    [`ChainVerifier`] as a bundle (canonical form, contiguous seqs, `prevhash` chain, time order,
//!    one origin), and the last entry of every page is proven included in the signed tree of size
//!    N. Since every entry names its predecessor's hash, that one proof pins the whole prefix: a
//!    server that rewrites history is caught on the first page that shows the rewrite;
//! 4. at the end, the root recomputed from all N entries must equal R;
//! 5. the projection fingerprint the server reports for seq N−1 is compared with the auditor's
//!    own rebuild.
//!
//! Memory holds one page's line at a time, the chain's right edge and the folded state.

use crate::audit::{AuditError, AuditReport, Auditor, ProjectionCheck};
use crate::bundle::BundleReport;
use events::checkpoint::{Checkpoint, NoteVerifier};
use events::limits::ENTRY_BYTES_MAX;
use events::merkle;
use events::rotation::KeySchedule;
use events::verify::{ChainVerifier, RootAt};
use events::Digest;
use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

/// Entries asked for per page (the server's maximum).
pub const PAGE_ENTRIES: u64 = 1000;

/// Where and how to read a served log.
#[derive(Debug, Clone, Default)]
pub struct RemoteOptions {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// A bearer token of a principal with the auditor (or operator, admin) role.
    pub token: Option<String>,
    /// The verifier key the auditor trusts. `None`: use the key the server serves, which proves
    /// only that the server is self-consistent, not who signed its checkpoints.
    pub pinned_key: Option<NoteVerifier>,
    /// A signed checkpoint the auditor kept from earlier: the served log must extend it.
    pub earlier_checkpoint: Option<String>,
    /// Witnesses that must have cosigned the checkpoint audited against. With any, the audit
    /// reads the log's published checkpoint (`/tlog/checkpoint`) rather than its latest.
    pub witnesses: events::cosignature::WitnessPolicy,
}

/// A blocking HTTP client for one server.
struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(options: &RemoteOptions) -> Self {
        Self {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout_read(Duration::from_secs(300))
                .build(),
            base: options.url.trim_end_matches('/').to_owned(),
            token: options.token.clone(),
        }
    }

    fn get(&self, path: &str, query: &[(&str, String)]) -> Result<ureq::Response, AuditError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        for (name, value) in query {
            request = request.query(name, value);
        }
        if let Some(token) = &self.token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        request.call().map_err(|e| match e {
            ureq::Error::Status(status, response) => {
                let body = response.into_string().unwrap_or_default();
                let hint = if status == 401 || status == 403 {
                    " (pass --token with a token of the auditor role)"
                } else {
                    ""
                };
                AuditError::Remote(format!("GET {url}: HTTP {status}{hint}: {}", body.trim()))
            }
            ureq::Error::Transport(t) => AuditError::Remote(format!("cannot read the server: {t}")),
        })
    }

    fn text(&self, path: &str) -> Result<String, AuditError> {
        self.get(path, &[])?
            .into_string()
            .map_err(|e| AuditError::Remote(format!("{path}: {e}")))
    }

    fn json(&self, path: &str, query: &[(&str, String)]) -> Result<serde_json::Value, AuditError> {
        let body = self
            .get(path, query)?
            .into_string()
            .map_err(|e| AuditError::Remote(format!("{path}: {e}")))?;
        serde_json::from_str(&body)
            .map_err(|e| AuditError::Remote(format!("{path}: not JSON: {e}")))
    }

    /// A served proof: the `proof` array of hex hashes.
    fn proof(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<Digest>, AuditError> {
        let body = self.json(path, query)?;
        body.get("proof")
            .and_then(serde_json::Value::as_array)
            .and_then(|hashes| {
                hashes
                    .iter()
                    .map(|h| h.as_str().and_then(Digest::from_hex))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| AuditError::Remote(format!("{path}: no proof array of hex hashes")))
    }
}

/// Audits a live server's log up to its latest signed checkpoint.
///
/// # Errors
/// [`AuditError::Remote`] when the server cannot be reached or answers something that is not a
/// log at all (an unusable source); a log that answers but does not verify is a report whose
/// integrity is `Err`.
pub fn audit_url(
    options: &RemoteOptions,
    mut progress: impl FnMut(u64),
) -> Result<AuditReport, AuditError> {
    let client = Client::new(options);
    let (verifier, key_pinned) = match &options.pinned_key {
        Some(key) => (key.clone(), true),
        None => {
            let text = client.text("/api/v1/log/key")?;
            let key = NoteVerifier::parse(text.trim()).map_err(|e| {
                AuditError::Remote(format!("/api/v1/log/key: not a verifier key: {e}"))
            })?;
            (key, false)
        }
    };
    let invalid = |why: String| AuditReport {
        integrity: Err(why),
        decisions: None,
        projection_check: None,
        projection_unchecked: None,
    };
    // With witnesses, the published (cosigned) checkpoint; else the latest signed one. Both are
    // read now and their signatures checked once the entries are read: a key rotation among
    // them may have changed the key that signs them.
    let note = if options.witnesses.witnesses.is_empty() {
        client.text("/api/v1/log/checkpoint")?
    } else {
        client.text("/tlog/checkpoint")?
    };
    let checkpoint = match crate::tiles::unverified(&note) {
        Ok(c) => c,
        Err(e) => return Ok(invalid(format!("the served checkpoint: {e}"))),
    };
    let earlier = match options
        .earlier_checkpoint
        .as_deref()
        .map(crate::tiles::unverified)
    {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => return Ok(invalid(format!("the kept checkpoint: {e}"))),
    };
    let mut keys = KeySchedule::new(verifier.clone());
    if let Some(old) = &earlier {
        if let Err(why) = check_extends(&client, old, &checkpoint)? {
            return Ok(invalid(why));
        }
    }

    let size = checkpoint.size;
    let mut chain = ChainVerifier::with_origin(checkpoint.origin.clone());
    let mut auditor = Auditor::new();
    let mut earlier_root = earlier.as_ref().map(|c| RootAt::new(c.size));
    while chain.size() < size {
        let mut query = vec![("limit", PAGE_ENTRIES.to_string())];
        if let Some(last) = chain.size().checked_sub(1) {
            query.push(("after", last.to_string()));
        }
        let page = client.get("/api/v1/events", &query)?.into_reader();
        let mut reader = BufReader::with_capacity(1 << 16, page);
        let first = chain.size();
        let mut line = Vec::with_capacity(4096);
        while chain.size() < size {
            line.clear();
            let read = Read::by_ref(&mut reader)
                .take(ENTRY_BYTES_MAX as u64 + 2)
                .read_until(b'\n', &mut line)
                .map_err(|e| AuditError::Remote(format!("/api/v1/events: {e}")))?;
            if read == 0 {
                break;
            }
            let Some(bytes) = line.strip_suffix(b"\n") else {
                return Ok(invalid(format!(
                    "/api/v1/events: the line for seq {} is cut off or longer than the entry limit",
                    chain.size()
                )));
            };
            let entry = match chain.push(bytes) {
                Ok(entry) => entry,
                Err(problem) => return Ok(invalid(format!("/api/v1/events: {problem}"))),
            };
            if let Err(why) = keys.follow(&entry) {
                return Ok(invalid(format!("/api/v1/events: seq {}: {why}", entry.seq)));
            }
            auditor.push(entry);
            if let Some(watch) = &mut earlier_root {
                watch.observe(&chain);
            }
        }
        if chain.size() == first {
            return Ok(invalid(format!(
                "the signed checkpoint covers {size} entries, but /api/v1/events ends after {first}"
            )));
        }
        let last = chain.size() - 1;
        let proof = client.proof(
            "/api/v1/log/proof/inclusion",
            &[("seq", last.to_string()), ("size", size.to_string())],
        )?;
        if let Err(e) =
            merkle::verify_inclusion(&chain.last_leaf(), last, size, &proof, &checkpoint.root)
        {
            return Ok(invalid(format!(
                "entry {last} as served is not in the signed tree of size {size}: {e}"
            )));
        }
        progress(chain.size());
    }
    if chain.root() != checkpoint.root {
        return Ok(invalid(format!(
            "the {size} served entries have root {}, the signed checkpoint {}",
            chain.root(),
            checkpoint.root
        )));
    }
    if let Err(why) = check_signatures(options, &keys, &note, &checkpoint, earlier.as_ref()) {
        return Ok(invalid(why));
    }
    if let (Some(old), Some(root)) = (&earlier, earlier_root.as_ref().and_then(RootAt::root)) {
        if root != old.root {
            return Ok(invalid(format!(
                "the kept checkpoint (size {}, root {}) is not a prefix of the served log: its first {} entries have root {root}",
                old.size, old.root, old.size
            )));
        }
    }

    let projection_check = match size.checked_sub(1) {
        None => None,
        Some(last) => {
            // Checkpoints are signed per group commit, and a decision is one commit, so the
            // checkpoint's size is a decision boundary.
            let rebuilt = auditor.fingerprint_so_far();
            let served = client.json(
                "/api/v1/projections/fingerprint",
                &[("as_of", last.to_string())],
            )?;
            let reported = served
                .get("fingerprint")
                .and_then(serde_json::Value::as_str)
                .and_then(Digest::from_hex)
                .ok_or_else(|| {
                    AuditError::Remote("/api/v1/projections/fingerprint: no fingerprint".into())
                })?;
            let seq = served.get("seq").and_then(serde_json::Value::as_u64);
            if seq != Some(last) {
                return Err(AuditError::Remote(format!(
                    "/api/v1/projections/fingerprint answered for seq {seq:?}, not {last}"
                )));
            }
            Some(ProjectionCheck {
                seq: last,
                reported_by: "the server",
                reported,
                rebuilt,
            })
        }
    };
    let summary = BundleReport {
        origin: checkpoint.origin,
        entries: chain.size(),
        last_hash: chain.last_hash(),
        root: chain.root(),
        key: verifier.to_string(),
        key_pinned,
        extends: earlier.map(|c| c.size),
    };
    Ok(AuditReport {
        integrity: Ok(summary.to_string().trim_end().to_owned()),
        decisions: Some({
            // A served log is read once: its cited backtests are listed as not re-run.
            let mut decisions = auditor.finish()?;
            decisions.backtests_unchecked = std::mem::take(&mut decisions.cited_backtests)
                .into_iter()
                .map(|c| c.seq)
                .collect();
            decisions
        }),
        projection_check,
        projection_unchecked: None,
    })
}

/// Checks that the served checkpoint extends the kept one: same origin, not smaller, and the
/// served consistency proof between the two signed roots verifies.
/// The served checkpoint signed by the key in force at its size (and cosigned as the witness
/// policy asks), the kept one by the key in force at its own, and the pinned key one of the log's.
fn check_signatures(
    options: &RemoteOptions,
    keys: &KeySchedule,
    note: &str,
    checkpoint: &Checkpoint,
    earlier: Option<&Checkpoint>,
) -> Result<(), String> {
    options
        .witnesses
        .verify(note, keys.key_for(checkpoint.size))
        .map_err(|e| format!("the served checkpoint: {e}"))?;
    if let (Some(text), Some(old)) = (options.earlier_checkpoint.as_deref(), earlier) {
        Checkpoint::verify(text, keys.key_for(old.size))
            .map_err(|e| format!("the kept checkpoint: {e}"))?;
    }
    if !keys.anchored() {
        return Err("the verifier key is none of the keys this log's rotations chain".into());
    }
    Ok(())
}

fn check_extends(
    client: &Client,
    old: &Checkpoint,
    new: &Checkpoint,
) -> Result<Result<(), String>, AuditError> {
    if old.origin != new.origin {
        return Ok(Err(format!(
            "the kept checkpoint is of {:?}, the served one of {:?}",
            old.origin, new.origin
        )));
    }
    if old.size > new.size {
        return Ok(Err(format!(
            "the served checkpoint covers {} entries, fewer than the kept one's {}: history was cut",
            new.size, old.size
        )));
    }
    if old.size == 0 || old.size == new.size {
        // An empty tree is a prefix of every tree; equal sizes need equal roots.
        return Ok(if old.size == 0 || old.root == new.root {
            Ok(())
        } else {
            Err(format!(
                "the kept and the served checkpoint both cover {} entries but have roots {} and {}: history was rewritten",
                old.size, old.root, new.root
            ))
        });
    }
    let proof = client.proof(
        "/api/v1/log/proof/consistency",
        &[("from", old.size.to_string()), ("to", new.size.to_string())],
    )?;
    Ok(
        merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof).map_err(
            |e| {
                format!(
                    "the served checkpoint (size {}) is not consistent with the kept one (size {}): {e}: history was rewritten",
                    new.size, old.size
                )
            },
        ),
    )
}
