//! What each `trustledger` subcommand does, as functions the binary and the tests call.

use crate::data_dir;
use crate::governance::Governance;
use anyhow::{bail, Context as _};
use events::checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
use events::verify::{verify_store, VerifyStoreError};
use events::ReadError;
use replay::bundle::{self, BundleOptions};
use std::io::{BufWriter, Write as _};
use std::path::Path;

/// A verdict: the log is intact, or the first problem found.
#[derive(Debug)]
pub enum Verdict {
    /// Intact; the text says what was checked.
    Valid(String),
    /// Not intact; the text names the first bad seq and what is wrong there.
    Invalid(String),
}

/// Reads a verifier key given as the key itself or as a file holding it.
///
/// # Errors
/// If neither parses.
pub fn read_verifier(key: &str) -> anyhow::Result<NoteVerifier> {
    if let Ok(v) = NoteVerifier::parse(key.trim()) {
        return Ok(v);
    }
    let text = std::fs::read_to_string(key)
        .with_context(|| format!("--key {key:?} is neither a verifier key nor a readable file"))?;
    NoteVerifier::parse(text.trim()).with_context(|| format!("verifier key in {key}"))
}

/// The witness policy of `--witness KEY` (repeatable) and `--witnesses-required N` (default:
/// every witness named).
///
/// # Errors
/// If a key does not parse or N is not from 1 to the number of witnesses.
pub fn witness_policy(
    keys: &[String],
    required: Option<usize>,
) -> anyhow::Result<events::cosignature::WitnessPolicy> {
    let witnesses = keys
        .iter()
        .map(|k| crate::witnessing::read_cosignature_verifier(k))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let required = required.unwrap_or(witnesses.len());
    if !witnesses.is_empty() && !(1..=witnesses.len()).contains(&required) {
        bail!(
            "--witnesses-required must be from 1 to the number of --witness ({}), not {required}",
            witnesses.len()
        );
    }
    Ok(events::cosignature::WitnessPolicy {
        witnesses,
        required,
    })
}

/// `trustledger verify --data DIR`: full verification of a stored log.
///
/// # Errors
/// If the log cannot be opened or read.
pub fn verify_data(
    dir: &Path,
    key: Option<&str>,
    progress: impl FnMut(u64),
) -> anyhow::Result<Verdict> {
    let log = match data_dir::open_existing(dir) {
        Ok(log) => log,
        Err(e) if corruption_in(&e) => {
            return Ok(Verdict::Invalid(format!(
                "INVALID: the store is damaged and cannot be opened: {e:#}"
            )))
        }
        Err(e) => return Err(e),
    };
    let pinned = key.map(read_verifier).transpose()?;
    let verifier = pinned.as_ref().or(log.verifier());
    let verified = verify_store(&log, verifier, progress);
    // Intact as far as it goes, but it knows it is not all there (its head mark).
    if let (Ok(_), Some(events::AppendError::ChainBroken { seq, reason })) =
        (&verified, log.refusal())
    {
        return Ok(Verdict::Invalid(format!("INVALID at seq {seq}: {reason}")));
    }
    match verified {
        Ok(report) => {
            let signer = verifier.map_or(
                "no key: checkpoint signatures not checked".to_owned(),
                |v| format!("signatures by {v}"),
            );
            Ok(Verdict::Valid(format!("valid: {report} ({signer})")))
        }
        Err(VerifyStoreError::Integrity(problem)) => Ok(Verdict::Invalid(format!(
            "INVALID at seq {}: {}",
            problem.seq, problem.reason
        ))),
        // What the store gave back is damaged: that is an answer about the log, not an error.
        Err(VerifyStoreError::Read(ReadError::Corrupt { seq, source })) => Ok(Verdict::Invalid(
            format!("INVALID at seq {seq}: the stored entry is damaged: {source}"),
        )),
        Err(VerifyStoreError::Read(ReadError::IndexCorrupt(record))) => Ok(Verdict::Invalid(
            format!("INVALID: a stored index record is damaged: {record}"),
        )),
        Err(VerifyStoreError::Read(ReadError::Storage(e @ sled::Error::Corruption { .. }))) => Ok(
            Verdict::Invalid(format!("INVALID: the store is damaged: {e}")),
        ),
        Err(other) => Err(other.into()),
    }
}

/// Whether an error came from sled finding its own files damaged.
fn corruption_in(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<sled::Error>(),
            Some(sled::Error::Corruption { .. })
        ) || matches!(
            cause.downcast_ref::<events::OpenLogError>(),
            Some(events::OpenLogError::Storage(
                sled::Error::Corruption { .. }
            ))
        )
    })
}

fn read_kept_checkpoint(path: Option<&Path>) -> anyhow::Result<Option<String>> {
    path.map(|p| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display())))
        .transpose()
}

/// `trustledger verify --bundle DIR`: verification of an export bundle.
///
/// # Errors
/// If the bundle cannot be read at all.
pub fn verify_bundle(
    dir: &Path,
    key: Option<&str>,
    from_checkpoint: Option<&Path>,
    progress: impl FnMut(u64),
) -> anyhow::Result<Verdict> {
    let options = BundleOptions {
        pinned_key: key.map(read_verifier).transpose()?,
        earlier_checkpoint: read_kept_checkpoint(from_checkpoint)?,
    };
    Ok(match bundle::verify_bundle(dir, &options, progress)? {
        Ok(report) => Verdict::Valid(report.to_string().trim_end().to_owned()),
        Err(invalid) => Verdict::Invalid(format!("INVALID: {invalid}")),
    })
}

/// `trustledger export --data DIR --out OUT`: writes `entries.jsonl`, `checkpoint` and
/// `verifier-key`. Returns the number of entries exported.
///
/// # Errors
/// If the log cannot be read, has no signing key, or the files cannot be written.
pub fn export(dir: &Path, out: &Path, mut progress: impl FnMut(u64)) -> anyhow::Result<u64> {
    let log = data_dir::open_existing(dir)?;
    let Some(verifier) = log.verifier().cloned() else {
        bail!(
            "{} has no signing key ({}): cannot sign the export's checkpoint",
            dir.display(),
            data_dir::key_file(dir).display()
        );
    };
    // Everything below refers to this one size, whatever is appended meanwhile.
    let size = log.head().size;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let entries_path = out.join(bundle::ENTRIES_FILE);
    let mut writer = BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&entries_path)
            .with_context(|| format!("cannot create {}", entries_path.display()))?,
    );
    let mut written = 0u64;
    for item in log.iter_bytes(0) {
        let (seq, bytes) = item?;
        if seq >= size {
            break;
        }
        if seq != written {
            bail!(
                "the log has no entry at seq {written}: run `trustledger verify --data {}`",
                dir.display()
            );
        }
        writer.write_all(&bytes)?;
        writer.write_all(b"\n")?;
        written += 1;
        if written.is_multiple_of(4096) {
            progress(written);
        }
    }
    progress(written);
    if written != size {
        bail!("the log ends at seq {written}, before its head {size}");
    }
    writer
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    std::fs::write(
        out.join(bundle::CHECKPOINT_FILE),
        checkpoint_note(&log, dir, size)?,
    )?;
    std::fs::write(out.join(bundle::KEY_FILE), format!("{verifier}\n"))?;
    Ok(written)
}

/// The signed checkpoint of `log` (in data directory `dir`) at `size`: the stored one, or, for a
/// log written without a key, one signed now.
///
/// # Errors
/// If the log cannot be read, or the key file cannot.
pub fn checkpoint_note(log: &events::Log, dir: &Path, size: u64) -> anyhow::Result<String> {
    Ok(match log.checkpoint_at(size)? {
        Some(note) => note,
        None => {
            let signer = data_dir::read_key_file(&data_dir::key_file(dir))?;
            Checkpoint {
                origin: log.origin().to_owned(),
                size,
                root: log.root_at(size)?,
            }
            .sign(&signer)
        }
    })
}

/// `trustledger canonical`: the RFC 8785 canonical form of the one JSON value `input` holds.
///
/// # Errors
/// If `input` is not one JSON value, or holds a number outside the log's integer profile.
pub fn canonical(input: impl std::io::Read) -> anyhow::Result<Vec<u8>> {
    let value: serde_json::Value =
        serde_json::from_reader(input).context("stdin is not one JSON value")?;
    events::canonical::to_canonical_vec(&value)
        .map_err(|e| anyhow::anyhow!("no canonical form in this log's profile: {e}"))
}

/// `trustledger keygen --out FILE`: a new Ed25519 checkpoint key. Returns the verifier key.
///
/// # Errors
/// If the file exists (without `force`) or cannot be written.
pub fn keygen(out: &Path, name: &str, force: bool) -> anyhow::Result<NoteVerifier> {
    let signer = NoteSigner::generate(name)?;
    data_dir::write_key_file(out, &signer.to_private_string(), force)?;
    Ok(signer.verifier())
}

/// `trustledger checkpoint --data DIR`: the latest signed checkpoint note.
///
/// # Errors
/// If the log cannot be opened or has no checkpoint.
pub fn latest_checkpoint(dir: &Path) -> anyhow::Result<String> {
    let log = data_dir::open_existing(dir)?;
    log.latest_checkpoint()?
        .with_context(|| format!("the log in {} has no signed checkpoint yet", dir.display()))
}

/// `trustledger audit`: integrity, then every decision re-derived, as text or JSON.
///
/// # Errors
/// If the source cannot be read at all.
pub fn audit(
    source: AuditSource<'_>,
    key: Option<&str>,
    from_checkpoint: Option<&Path>,
    json: bool,
    progress: impl FnMut(u64),
) -> anyhow::Result<Verdict> {
    let pinned = key.map(read_verifier).transpose()?;
    let report = match source {
        AuditSource::Bundle(dir) => {
            let options = BundleOptions {
                pinned_key: pinned,
                earlier_checkpoint: read_kept_checkpoint(from_checkpoint)?,
            };
            replay::audit::audit_bundle(dir, &options, progress)?
        }
        AuditSource::Data(dir) => {
            let log = data_dir::open_existing(dir)?;
            let verifier = pinned.as_ref().or(log.verifier()).cloned();
            replay::audit::audit_log(&log, verifier.as_ref(), progress)?
        }
        AuditSource::Url {
            url,
            token,
            witnesses,
        } => {
            let options = replay::remote::RemoteOptions {
                url: url.to_owned(),
                token: token.map(str::to_owned),
                pinned_key: pinned,
                earlier_checkpoint: read_kept_checkpoint(from_checkpoint)?,
                witnesses,
            };
            replay::remote::audit_url(&options, progress)?
        }
    };
    let text = if json {
        audit_json(&report)
    } else {
        audit_text(&report)
    };
    Ok(if report.clean() {
        Verdict::Valid(text)
    } else {
        Verdict::Invalid(text)
    })
}

/// Where `audit` reads entries from.
#[derive(Debug, Clone)]
pub enum AuditSource<'a> {
    /// An export bundle directory.
    Bundle(&'a Path),
    /// A data directory (not in use by a server).
    Data(&'a Path),
    /// A live server, read with a bearer token.
    Url {
        /// Base URL.
        url: &'a str,
        /// Bearer token.
        token: Option<&'a str>,
        /// Witnesses that must have cosigned the checkpoint audited against.
        witnesses: events::cosignature::WitnessPolicy,
    },
}

fn audit_text(report: &replay::audit::AuditReport) -> String {
    let mut out = String::new();
    match &report.integrity {
        Ok(summary) => out.push_str(&format!("integrity: {summary}\n")),
        Err(problem) => out.push_str(&format!("integrity: INVALID: {problem}\n")),
    }
    if let Some(decisions) = &report.decisions {
        out.push_str(&decisions.to_string());
    }
    if let Some(check) = &report.projection_check {
        let verdict = if check.matches() {
            "matches"
        } else {
            "DIFFERS from"
        };
        out.push_str(&format!(
            "projection rebuilt to seq {}: fingerprint {} {verdict} {}'s {}\n",
            check.seq, check.rebuilt, check.reported_by, check.reported
        ));
    }
    if let Some(why) = &report.projection_unchecked {
        out.push_str(&format!("projection not compared: {why}\n"));
    }
    out.push_str(if report.clean() {
        "verdict: CLEAN"
    } else {
        "verdict: FINDINGS"
    });
    out
}

fn audit_json(report: &replay::audit::AuditReport) -> String {
    let decisions = report.decisions.as_ref();
    serde_json::json!({
        "verdict": if report.clean() { "CLEAN" } else { "FINDINGS" },
        "integrity": match &report.integrity { Ok(s) => serde_json::json!({"valid": true, "summary": s}), Err(p) => serde_json::json!({"valid": false, "problem": p}) },
        "entries": decisions.map(|d| d.entries),
        "decisions": decisions.map(|d| d.decisions.clone()),
        "findings": decisions.map(|d| d.findings.iter().map(|f| serde_json::json!({"seq": f.seq, "kind": f.kind, "message": f.message})).collect::<Vec<_>>()),
        "fingerprint": decisions.and_then(|d| d.fingerprint.map(|f| f.to_hex())),
        "projection_check": report.projection_check.as_ref().map(|c| serde_json::json!({"seq": c.seq, "reported_by": c.reported_by, "reported": c.reported.to_hex(), "rebuilt": c.rebuilt.to_hex(), "matches": c.matches()})),
        "projection_unchecked": report.projection_unchecked,
    })
    .to_string()
}

/// `trustledger backtest`: the candidate model (and levels) replayed over real history.
/// Returns the report text (or JSON) and its SHA-256, to cite as calibration evidence.
///
/// # Errors
/// If the inputs cannot be read or the source is not intact.
pub fn backtest(
    source: AuditSource<'_>,
    model: &Path,
    levels: Option<&Path>,
    key: Option<&str>,
    json: bool,
    progress: impl FnMut(u64),
) -> anyhow::Result<String> {
    let model: events::payloads::RiskModelProposed = serde_json::from_str(
        &std::fs::read_to_string(model)
            .with_context(|| format!("cannot read {}", model.display()))?,
    )
    .with_context(|| {
        format!(
            "{} is not a risk model (the risk_model.proposed payload as JSON)",
            model.display()
        )
    })?;
    let levels: Option<Vec<events::payloads::MaturityLevel>> = levels
        .map(|p| -> anyhow::Result<_> {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a JSON array of maturity levels", p.display()))
        })
        .transpose()?;
    let candidate = replay::backtest::Candidate { model, levels };
    let pinned = key.map(read_verifier).transpose()?;
    let result = match source {
        AuditSource::Bundle(dir) => replay::backtest::backtest_bundle(
            dir,
            &BundleOptions {
                pinned_key: pinned,
                earlier_checkpoint: None,
            },
            &candidate,
            progress,
        )?,
        AuditSource::Data(dir) => {
            let log = data_dir::open_existing(dir)?;
            let verifier = pinned.as_ref().or(log.verifier()).cloned();
            replay::backtest::backtest_log(&log, verifier.as_ref(), &candidate, progress)?
        }
        AuditSource::Url { .. } => {
            bail!(
                "backtest reads an export bundle or a data directory; export the served log first"
            )
        }
    };
    let report = result.map_err(|problem| {
        anyhow::anyhow!("the history is not intact, so it cannot be backtested: {problem}")
    })?;
    let text = if json {
        report.to_json().to_string()
    } else {
        report.to_string()
    };
    Ok(format!(
        "{}\ncite it in the proposal: \"backtest\": {{\"log_size\": {}, \"report_sha256\": \"{}\"}}",
        text.trim_end(),
        report.log_size,
        report.sha256()
    ))
}

/// The principal `serve` grants an admin token to on a log that has no principal yet.
pub const FIRST_ADMIN: &str = "admin";

/// On a log that has never granted a token, grants one to [`FIRST_ADMIN`] (roles admin and
/// auditor) and returns it; `None` once any token was ever granted.
///
/// # Errors
/// If the grant cannot be recorded.
pub fn first_admin_token(gov: &Governance) -> anyhow::Result<Option<String>> {
    use crate::governance::{new_token, Principal, Role, CLI_ADMIN};
    if !gov.with_state(|s| s.access.is_empty()) {
        return Ok(None);
    }
    let (token, token_sha256) = new_token();
    let grant = events::catalogue::access::AccessGranted {
        principal: FIRST_ADMIN.into(),
        roles: vec!["admin".into(), "auditor".into()],
        token_sha256,
    };
    gov.execute(
        &Principal::new(CLI_ADMIN, &[Role::Admin]),
        &projections::policy::Command::GrantAccess(grant),
    )?;
    Ok(Some(token))
}

/// Creates a token through a running server's API (`POST /api/v1/access/tokens`) with an
/// admin's token; returns the new token.
///
/// # Errors
/// If the server cannot be reached or refuses (its problem's detail is in the error).
pub fn create_token_remotely(
    url: &str,
    admin_token: &str,
    principal: &str,
    roles: &[String],
) -> anyhow::Result<String> {
    let endpoint = format!("{}/api/v1/access/tokens", url.trim_end_matches('/'));
    let body = serde_json::json!({"principal": principal, "roles": roles});
    let response = ureq::post(&endpoint)
        .set("Authorization", &format!("Bearer {admin_token}"))
        .send_json(body);
    let answer: serde_json::Value = match response {
        Ok(r) => r.into_json()?,
        Err(ureq::Error::Status(status, r)) => {
            let problem: serde_json::Value = r.into_json().unwrap_or_default();
            anyhow::bail!(
                "the server refused ({status}): {}",
                problem["detail"].as_str().unwrap_or("no detail")
            )
        }
        Err(e) => return Err(e.into()),
    };
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the server's answer has no token"))
}
