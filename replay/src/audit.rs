//! Decision re-derivation: did every recorded decision follow the rules in force when it was
//! made?
//!
//! Entries are grouped into decisions: a *cause* (the entry that records what someone asked for,
//! e.g. `deployment.submitted`, `cab.vote_cast`, `deployment.released`) and its *consequences*
//! (the following entries whose `causationid` names the cause, e.g. `deployment.routed_to_cab`,
//! `deployment.approved`, `maturity.level_changed`). For each decision the command is rebuilt from
//! the cause, and [`projections::policy::decide`] — the very code the service runs — is asked
//! again, against the state folded from every earlier entry, at the cause's own time, as its
//! actor. Any difference is a finding at the first differing seq: a refused command (a vote by a
//! non-member, an approval by the submitter), a different consequence (an auto-approval above
//! the threshold, a release without quorum), or a consequence with no cause (a level change
//! nobody approved). The state then folds what was recorded, so one finding does not hide or
//! cascade into others.

use crate::spill::TempFileSpill;
use events::catalogue::DecodeError;
use events::payloads::*;
use events::Entry;
use projections::genesis::{genesis_events, GENESIS_ACTOR};
use projections::policy::{self, SignatureMemo, SignatureQuestion};
use projections::snapshot;
use projections::state::GovernanceState;
use projections::{evidence_signature, vote_statement};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};

/// One recorded decision that the rules do not reproduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The first entry that differs.
    pub seq: u64,
    /// The decision kind (the cause's type).
    pub kind: String,
    /// What is wrong.
    pub message: String,
}

/// The result of re-deriving a log's decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionAudit {
    /// Entries read.
    pub entries: u64,
    /// Decisions re-derived, by kind.
    pub decisions: BTreeMap<String, u64>,
    /// Every finding, in seq order.
    pub findings: Vec<Finding>,
    /// Fingerprint of the folded state at the end.
    pub fingerprint: Option<events::Digest>,
    /// Model proposals citing a backtest, still to be re-run
    /// ([`crate::citations::check_cited_backtests`]).
    pub cited_backtests: Vec<crate::citations::CitedBacktest>,
    /// Cited backtests re-run, whose digests matched.
    pub backtests_rerun: u64,
    /// Seqs of proposals whose cited backtest was not re-run (a served log is read once).
    pub backtests_unchecked: Vec<u64>,
}

impl fmt::Display for DecisionAudit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "decisions re-derived from {} entries:", self.entries)?;
        for (kind, count) in &self.decisions {
            writeln!(f, "  {count:>8}  {kind}")?;
        }
        if let Some(fp) = &self.fingerprint {
            writeln!(f, "projection fingerprint {fp}")?;
        }
        if self.backtests_rerun > 0 {
            writeln!(
                f,
                "cited backtests re-run, digests matching: {}",
                self.backtests_rerun
            )?;
        }
        for seq in &self.backtests_unchecked {
            writeln!(f, "not re-run: the backtest cited at seq {seq} (audit an export bundle or the data directory to re-run it)")?;
        }
        if self.findings.is_empty() {
            writeln!(
                f,
                "no findings: every recorded decision follows the rules in force when it was made"
            )
        } else {
            writeln!(f, "{} findings:", self.findings.len())?;
            for finding in &self.findings {
                writeln!(
                    f,
                    "  seq {}: {}: {}",
                    finding.seq, finding.kind, finding.message
                )?;
            }
            Ok(())
        }
    }
}

fn short(name: &str) -> &str {
    name.strip_prefix("trustledger.").unwrap_or(name)
}

/// Re-derives decisions entry by entry; memory holds the folded state and one decision. Settled
/// deployments and their evidence go to a temporary file ([`TempFileSpill`]), so that memory
/// holds the records still in play plus a header per settled one.
#[derive(Debug)]
pub struct Auditor {
    state: GovernanceState,
    pending: Vec<(Entry, Option<Payload>)>,
    report: DecisionAudit,
    signatures: Option<Arc<SignatureMemo>>,
    spill: Option<Arc<TempFileSpill>>,
}

impl Default for Auditor {
    fn default() -> Self {
        let (state, spill) = crate::spill::spilling_state();
        Self {
            state,
            pending: Vec::new(),
            report: DecisionAudit::default(),
            signatures: None,
            spill,
        }
    }
}

/// Works out, on the threads that decode entries ahead of the re-derivation, the SBOM signature
/// checks that releases will ask for: each evidence package's signature under every key trusted
/// with its key id so far. Ed25519 is the costliest step of re-deriving a release, and the
/// evidence is always read before the release that uses it. A key trusted in a block still in
/// flight is missed, and that release verifies on the re-deriving thread: slower, never different.
#[derive(Debug, Default)]
pub struct SignatureForesight {
    keys: RwLock<HashMap<String, Vec<String>>>,
    memo: Arc<SignatureMemo>,
}

impl SignatureForesight {
    /// Notes a decoded payload: remembers trusted keys, answers ahead for signed evidence and
    /// signed votes (whose statement names the log's origin, `entry.source`).
    pub fn look_at(&self, entry: &Entry, payload: &Payload) {
        match payload {
            Payload::CabVoteCast(vote) => {
                if let Some(statement) = vote_statement_of(&entry.source, vote) {
                    let signature = vote.signature.as_ref().map(|s| s.sshsig.clone());
                    if let Some(sshsig) = signature {
                        self.memo.queue_ssh(
                            vote_statement::NAMESPACE,
                            sshsig,
                            statement.into_bytes(),
                        );
                    }
                }
            }
            Payload::SigningKeyTrusted(key) => {
                if let Ok(mut keys) = self.keys.write() {
                    keys.entry(key.key_id.clone())
                        .or_default()
                        .push(key.public_key_hex.clone());
                }
            }
            Payload::EvidenceRecorded(evidence) => {
                if let (Some(sshsig), Ok(signed)) = (
                    &evidence.signature,
                    evidence_signature::signed_bytes(&evidence.document),
                ) {
                    self.memo
                        .queue_ssh(evidence_signature::NAMESPACE, sshsig.clone(), signed);
                }
                let Some(sbom) = &evidence.document.sbom else {
                    return;
                };
                let Some(signature) = &sbom.signature else {
                    return;
                };
                let candidates = self
                    .keys
                    .read()
                    .ok()
                    .and_then(|keys| keys.get(&signature.key_id).cloned())
                    .unwrap_or_default();
                for public_key_hex in candidates {
                    self.memo.queue_sbom(SignatureQuestion {
                        public_key_hex,
                        signature_hex: signature.signature_hex.clone(),
                        sbom_sha256_hex: sbom.sha256.clone(),
                    });
                }
            }
            _ => {}
        }
    }
}

/// The statement a recorded vote says its member signed, if it carries a signature.
fn vote_statement_of(origin: &str, vote: &CabVoteCast) -> Option<String> {
    use projections::vote_statement::{Kind, Statement};
    let signature = vote.signature.as_ref()?;
    let (kind, subject) = match &vote.target {
        VoteTarget::Deployment { deployment_id } => (Kind::Deployment, deployment_id.to_string()),
        VoteTarget::RiskModel { version } => (Kind::RiskModel, version.clone()),
        VoteTarget::MaturityProgression { to_level } => {
            (Kind::MaturityProgression, to_level.to_string())
        }
        VoteTarget::Exception { exception_id } => (Kind::Exception, exception_id.to_string()),
        VoteTarget::BreakglassReview { deployment_id } => {
            (Kind::BreakglassReview, deployment_id.to_string())
        }
        VoteTarget::RegistryChange { proposal_id } => {
            (Kind::RegistryChange, proposal_id.to_string())
        }
        VoteTarget::Change { proposal_id } => (Kind::Change, proposal_id.to_string()),
    };
    Some(
        Statement {
            kind,
            origin,
            subject: &subject,
            digest: &signature.digest,
            approve: vote.approve,
            rationale: &vote.rationale,
            signed_at: &signature.signed_at,
        }
        .to_text(),
    )
}

impl Auditor {
    /// A fresh auditor expecting entry 0 first.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh auditor whose policy consults the answers `foresight` works out ahead.
    pub fn with_foresight(foresight: &SignatureForesight) -> Self {
        Self {
            signatures: Some(foresight.memo.clone()),
            ..Self::default()
        }
    }

    /// Takes the next entry (already integrity-checked by the caller).
    pub fn push(&mut self, entry: Entry) {
        let decoded = Payload::decode(&entry);
        self.push_decoded(entry, decoded);
    }

    /// [`Auditor::push`] for an entry whose payload the caller decoded (perhaps on another
    /// thread): `decoded` must be `Payload::decode(&entry)`.
    pub fn push_decoded(&mut self, entry: Entry, decoded: Result<Option<Payload>, DecodeError>) {
        self.report.entries += 1;
        let payload = match decoded {
            Ok(p) => p,
            Err(e) => {
                self.finish_pending();
                self.finding(
                    entry.seq,
                    short(&entry.event_type),
                    format!("payload does not match its schema: {e}"),
                );
                self.state.apply_decoded(&entry, Err(e));
                return;
            }
        };
        let continues = self.pending.first().is_some_and(|(cause, _)| {
            let mut text = uuid::Uuid::encode_buffer();
            entry.causation_id.as_deref() == Some(&*cause.id.hyphenated().encode_lower(&mut text))
        });
        if !continues {
            self.finish_pending();
        }
        self.pending.push((entry, payload));
    }

    fn finding(&mut self, seq: u64, kind: &str, message: String) {
        self.report.findings.push(Finding {
            seq,
            kind: kind.to_owned(),
            message,
        });
    }

    fn finish_pending(&mut self) {
        let group = std::mem::take(&mut self.pending);
        let Some((cause, cause_payload)) = group.first() else {
            return;
        };
        let kind = short(&cause.event_type).to_owned();
        let mut derived_exactly = false;
        if let Some(payload) = cause_payload {
            *self.report.decisions.entry(kind.clone()).or_default() += 1;
            derived_exactly = self.rederive(&group, cause, payload, &kind);
        }
        self.note_citation(cause.seq, cause_payload.as_ref(), derived_exactly);
        // A vote counts only if the rules accept it as recorded (its signature verifies under
        // the member's key then in force): an unfounded one is left out of the state, so that
        // an approval it helped reach is found short of its quorum where it was recorded.
        if !derived_exactly && matches!(cause_payload, Some(Payload::CabVoteCast(_))) {
            return;
        }
        for (entry, payload) in group {
            match payload {
                // The rules just derived this very entry from its document, hash included.
                Some(Payload::EvidenceRecorded(recorded)) if derived_exactly => {
                    self.state.apply_derived_evidence(&entry, recorded);
                }
                payload => self.state.apply_decoded(&entry, Ok(payload)),
            }
        }
    }

    /// Re-derives the decision `group` records; whether every entry of it is exactly what the
    /// rules derive (each difference is a finding).
    fn rederive(
        &mut self,
        group: &[(Entry, Option<Payload>)],
        cause: &Entry,
        payload: &Payload,
        kind: &str,
    ) -> bool {
        let expected: Vec<(String, Payload)> = if cause.actor == GENESIS_ACTOR {
            if self.state.last_seq.is_some() {
                self.finding(
                    cause.seq,
                    kind,
                    "genesis configuration written after the log began".into(),
                );
                return false;
            }
            genesis_events()
        } else {
            let command = match policy::command_of(payload) {
                Ok(Some(command)) => command,
                Ok(None) => return false,
                Err(why) => {
                    self.finding(cause.seq, kind, format!("{kind} {why}"));
                    return false;
                }
            };
            if !policy::holds_role_for(&self.state, &cause.actor, &command) {
                let roles: Vec<&str> = policy::roles_for(&command)
                    .iter()
                    .map(|r| r.as_str())
                    .collect();
                self.finding(
                    cause.seq,
                    kind,
                    format!(
                        "{} held no token granting a role that may issue it ({}) at that time",
                        cause.actor,
                        roles.join(", ")
                    ),
                );
                return false;
            }
            let decide = || policy::decide(&self.state, &cause.actor, cause.time, &command);
            let decided = match &self.signatures {
                Some(memo) => memo.consulted_during(decide),
                None => decide(),
            };
            match decided {
                Ok(decision) if decision.replay_of.is_some() || decision.events.is_empty() => {
                    self.finding(
                        cause.seq,
                        kind,
                        "recorded although the rules treat it as a retry of an earlier decision"
                            .into(),
                    );
                    return false;
                }
                Ok(decision) => decision.events,
                Err(rejection) => {
                    self.finding(
                        cause.seq,
                        kind,
                        format!(
                            "the rules in force refuse it for {}: {rejection}",
                            cause.actor
                        ),
                    );
                    return false;
                }
            }
        };
        let recorded: Vec<&(Entry, Option<Payload>)> = group.iter().collect();
        for (i, (subject, want)) in expected.iter().enumerate() {
            let Some((entry, got)) = recorded.get(i) else {
                let seq = recorded.last().map_or(cause.seq, |(e, _)| e.seq);
                self.finding(
                    seq,
                    kind,
                    format!(
                        "the rules also require {} on {subject}, which is missing",
                        want.event_type()
                    ),
                );
                return false;
            };
            if got.as_ref() != Some(want) || entry.subject != *subject {
                self.finding(
                    entry.seq,
                    kind,
                    format!(
                        "recorded {} differs from what the rules derive: {}",
                        short(&entry.event_type),
                        describe(want)
                    ),
                );
                return false;
            }
        }
        if let Some((extra, _)) = recorded.get(expected.len()) {
            self.finding(
                extra.seq,
                kind,
                format!(
                    "{} was recorded but the rules derive no such consequence",
                    short(&extra.event_type)
                ),
            );
            return false;
        }
        true
    }

    /// Entries taken so far.
    pub fn entries(&self) -> u64 {
        self.report.entries
    }

    /// Finishes the pending decision (the caller knows the entries so far end on a decision
    /// boundary, e.g. a snapshot's or a checkpoint's seq) and fingerprints the state folded so far.
    pub fn fingerprint_so_far(&mut self) -> events::Digest {
        self.finish_pending();
        snapshot::fingerprint(&self.state)
    }

    /// Finishes the last decision and returns the report.
    ///
    /// # Errors
    /// [`AuditError::Io`] when a settled record could not be read back from the temporary file:
    /// decisions that read it were re-derived from nothing, so no verdict is given.
    pub fn finish(mut self) -> Result<DecisionAudit, AuditError> {
        self.finish_pending();
        self.report_unreviewed_breakglass();
        self.report.fingerprint = Some(snapshot::fingerprint(&self.state));
        crate::spill::check_spill(self.spill.as_deref(), "audit")?;
        // Freeing the state of a million-entry history takes a quarter of a second, and nothing
        // needs to wait for it.
        let state = std::mem::take(&mut self.state);
        std::thread::spawn(move || drop(state));
        Ok(self.report)
    }
}

impl Auditor {
    /// Keeps a model proposal that cites a backtest (to re-run after the pass), and where it was
    /// activated.
    fn note_citation(&mut self, seq: u64, payload: Option<&Payload>, derived_exactly: bool) {
        match payload {
            Some(Payload::RiskModelProposed(model))
                if derived_exactly && model.backtest.is_some() =>
            {
                self.report
                    .cited_backtests
                    .push(crate::citations::CitedBacktest {
                        seq,
                        model: model.clone(),
                        activated_seq: None,
                    });
            }
            Some(Payload::RiskModelActivated(activated)) => {
                if let Some(cited) = self
                    .report
                    .cited_backtests
                    .iter_mut()
                    .find(|c| c.model.version == activated.version)
                {
                    cited.activated_seq.get_or_insert(seq);
                }
            }
            _ => {}
        }
    }

    /// A break-glass release whose review was due before the log's last entry and never came
    /// is a finding, at the release's seq.
    fn report_unreviewed_breakglass(&mut self) {
        let Some(end) = self.state.last_time else {
            return;
        };
        for (id, (by, _)) in &self.state.unreviewed_breakglass {
            let Some(d) = self.state.deployments.get(id) else {
                continue;
            };
            if let Some((due, None)) = d.breakglass {
                if due < end {
                    self.report.findings.push(Finding {
                        seq: d.released_seq.unwrap_or_default(),
                        kind: "breakglass.released".into(),
                        message: format!(
                            "{by}'s break-glass release of deployment {id} was never reviewed; \
                             the review was due at {due}"
                        ),
                    });
                }
            }
        }
        self.report.findings.sort_by_key(|f| f.seq);
    }
}

fn describe(payload: &Payload) -> String {
    match payload {
        Payload::DeploymentRoutedToCab(DeploymentRoutedToCab(g)) => format!(
            "routed to the CAB (score {} against threshold {}, model {}, level {})",
            policy::centi_to_decimal(g.score_centi),
            g.threshold,
            g.model_version,
            g.maturity_level
        ),
        Payload::DeploymentAutoApproved(DeploymentAutoApproved(g)) => {
            format!(
                "auto-approved (score {} within threshold {})",
                policy::centi_to_decimal(g.score_centi),
                g.threshold
            )
        }
        Payload::DeploymentReleaseBlocked(DeploymentReleaseBlocked(v)) => {
            let failed: Vec<String> = v
                .checks
                .iter()
                .filter(|c| c.outcome == CheckOutcome::Fail)
                .map(|c| c.reason_code.clone().unwrap_or_default())
                .collect();
            format!("release blocked ({})", failed.join(", "))
        }
        other => format!("{} with different content", short(&other.event_type())),
    }
}

/// Everything an audit established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// What the integrity check said: `Ok(summary)` or `Err(problem)`.
    pub integrity: Result<String, String>,
    /// Decision re-derivation (absent when integrity failed: a broken log is not re-derived).
    pub decisions: Option<DecisionAudit>,
    /// The rebuilt projection compared with the fingerprint the source reports.
    pub projection_check: Option<ProjectionCheck>,
    /// Why a source that should report a projection (a data directory's stored snapshot) was not
    /// compared: none stored, or one that does not unseal. Not a finding by itself (the service
    /// rebuilds such a snapshot), but the auditor is told the check did not happen.
    pub projection_unchecked: Option<String>,
}

/// A rebuilt projection's fingerprint beside the one the source reports for the same seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionCheck {
    /// The last seq both states cover.
    pub seq: u64,
    /// Who reported `reported` ("the stored snapshot", "the server").
    pub reported_by: &'static str,
    /// The fingerprint the source reports.
    pub reported: events::Digest,
    /// The fingerprint of the auditor's own rebuild.
    pub rebuilt: events::Digest,
}

impl ProjectionCheck {
    /// True when the rebuild matches what the source reports.
    pub fn matches(&self) -> bool {
        self.reported == self.rebuilt
    }
}

impl AuditReport {
    /// True when nothing is wrong.
    pub fn clean(&self) -> bool {
        self.integrity.is_ok()
            && self
                .decisions
                .as_ref()
                .is_some_and(|d| d.findings.is_empty())
            && self
                .projection_check
                .as_ref()
                .is_none_or(ProjectionCheck::matches)
    }
}

/// Why an audit could not be carried out at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The bundle is unreadable.
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    /// The store is unreadable.
    #[error(transparent)]
    Read(#[from] events::ReadError),
    /// A file could not be read.
    #[error("{0}")]
    Io(String),
    /// A server could not be reached or did not answer as a trustledger log does.
    #[error("{0}")]
    Remote(String),
}

/// Audits an export bundle: integrity (as `verify --bundle`), then every decision.
///
/// # Errors
/// [`AuditError`] when the bundle cannot be read.
pub fn audit_bundle(
    dir: &std::path::Path,
    options: &crate::bundle::BundleOptions,
    mut progress: impl FnMut(u64),
) -> Result<AuditReport, AuditError> {
    // One pass: the workers parse, hash and decode; this thread links and re-derives.
    let foresight = SignatureForesight::default();
    let mut auditor = Auditor::with_foresight(&foresight);
    let decode = DecodeLookingAhead(&foresight);
    let checked =
        crate::bundle::check_bundle(dir, options, &mut progress, decode, |entry, decoded| {
            auditor.push_decoded(entry, decoded);
        })?;
    Ok(match checked {
        Ok(report) => AuditReport {
            integrity: Ok(report.to_string().trim_end().to_owned()),
            decisions: Some({
                let mut decisions = auditor.finish()?;
                crate::citations::check_cited_backtests(&mut decisions, |log_size| {
                    bundle_prefix(dir, log_size)
                })?;
                decisions
            }),
            projection_check: None,
            projection_unchecked: None,
        },
        // A broken log is not re-derived: what was folded before the break is dropped.
        Err(invalid) => AuditReport {
            integrity: Err(invalid.to_string()),
            decisions: None,
            projection_check: None,
            projection_unchecked: None,
        },
    })
}

/// Audits a stored log: full verification, every decision, and the stored snapshot's fingerprint
/// against a rebuild to the same seq.
///
/// # Errors
/// [`AuditError`] when the store cannot be read.
pub fn audit_log(
    log: &events::Log,
    verifier: Option<&events::checkpoint::NoteVerifier>,
    mut progress: impl FnMut(u64),
) -> Result<AuditReport, AuditError> {
    let integrity = match events::verify::verify_store(log, verifier, &mut progress) {
        Ok(report) => Ok(report.to_string()),
        Err(events::verify::VerifyStoreError::Integrity(problem)) => Err(problem.to_string()),
        Err(events::verify::VerifyStoreError::Read(e)) => return Err(e.into()),
        Err(other) => return Err(AuditError::Io(other.to_string())),
    };
    if integrity.is_err() {
        return Ok(AuditReport {
            integrity,
            decisions: None,
            projection_check: None,
            projection_unchecked: None,
        });
    }
    let (stored, mut projection_unchecked) = match log.get_snapshot("governance")? {
        None => (
            None,
            Some("the data directory holds no stored snapshot".to_owned()),
        ),
        // Only the stored state's fingerprint is compared, so it is taken now and the state
        // dropped: held through the walk, a decoded state of the whole history was most of
        // the audit's memory.
        Some(bytes) => match snapshot::unseal(&bytes) {
            Ok(sealed) if log.get(sealed.seq)?.map(|e| e.hash()) != Some(sealed.head) => (
                None,
                Some(format!(
                    "the stored snapshot was folded from another log (its entry {} differs)",
                    sealed.seq
                )),
            ),
            Ok(sealed) => (
                Some((sealed.seq, snapshot::fingerprint(&sealed.state))),
                None,
            ),
            Err(e) => (
                None,
                Some(format!("the stored snapshot does not unseal: {e}")),
            ),
        },
    };
    let foresight = SignatureForesight::default();
    let mut auditor = Auditor::with_foresight(&foresight);
    let mut projection_check = None;
    let mut batch = Vec::with_capacity(STORE_BATCH);
    let mut items = log.iter_bytes(0).peekable();
    while items.peek().is_some() {
        batch.clear();
        for item in items.by_ref().take(STORE_BATCH) {
            batch.push(item?);
        }
        // Parsed and decoded on every core; folded here, in order.
        let decoded = parse_in_parallel(&batch, &foresight);
        for ((seq, _), parsed) in batch.iter().zip(decoded) {
            let (entry, payload) = parsed
                .map_err(|e| AuditError::Io(format!("entry {seq} changed while auditing: {e}")))?;
            push_and_compare(&mut auditor, entry, payload, stored, &mut projection_check);
            if auditor.report.entries.is_multiple_of(4096) {
                progress(auditor.report.entries);
            }
        }
    }
    if projection_check.is_none() && projection_unchecked.is_none() {
        projection_unchecked = Some("the stored snapshot covers no seq of the log".to_owned());
    }
    let mut decisions = auditor.finish()?;
    crate::citations::check_cited_backtests(&mut decisions, |log_size| {
        log.iter_bytes_until(0, log_size)
            .map(|item| item.map(|(_, bytes)| bytes))
    })?;
    Ok(AuditReport {
        integrity,
        decisions: Some(decisions),
        projection_check,
        projection_unchecked,
    })
}

/// The first `log_size` lines of a bundle's entries (each an entry's stored bytes), read again
/// for a cited backtest after the bundle verified.
fn bundle_prefix(
    dir: &std::path::Path,
    log_size: u64,
) -> Box<dyn Iterator<Item = Result<Vec<u8>, std::io::Error>>> {
    use std::io::BufRead as _;
    match std::fs::File::open(dir.join(crate::bundle::ENTRIES_FILE)) {
        Ok(file) => Box::new(
            std::io::BufReader::new(file)
                .split(b'\n')
                .take(usize::try_from(log_size).unwrap_or(usize::MAX)),
        ),
        Err(e) => Box::new(std::iter::once(Err(e))),
    }
}

/// What the audit's workers make of each entry: its payload, decoded, with the signatures it
/// carries worked out ahead (a block's SSH signatures in one batch).
struct DecodeLookingAhead<'a>(&'a SignatureForesight);

impl crate::bundle::Prepare<Decoded> for DecodeLookingAhead<'_> {
    fn entry(&self, entry: &Entry) -> Decoded {
        let decoded = Payload::decode(entry);
        if let Ok(Some(payload)) = &decoded {
            self.0.look_at(entry, payload);
        }
        decoded
    }

    fn block_done(&self) {
        self.0.memo.answer_queued();
    }
}

/// Entries read from the store per parallel parse.
const STORE_BATCH: usize = 4096;

type Decoded = Result<Option<Payload>, DecodeError>;

/// Parses and decodes a batch of stored entries on every core, in order.
fn parse_in_parallel(
    batch: &[(u64, impl AsRef<[u8]> + Sync)],
    foresight: &SignatureForesight,
) -> Vec<Result<(Entry, Decoded), String>> {
    let parse = |bytes: &[u8]| {
        let entry = Entry::parse(bytes).map_err(|e| e.to_string())?;
        let decoded = Payload::decode(&entry);
        if let Ok(Some(payload)) = &decoded {
            foresight.look_at(&entry, payload);
        }
        Ok((entry, decoded))
    };
    // One part per core, each finished with its signatures verified as one batch.
    let threads = events::verify::worker_threads();
    let parts: Vec<_> = batch
        .chunks(batch.len().div_ceil(threads.max(1)).max(1))
        .collect();
    events::verify::in_parallel(&parts, threads, |_, part| {
        let parsed: Vec<_> = part
            .iter()
            .map(|(_, bytes)| parse(bytes.as_ref()))
            .collect();
        foresight.memo.answer_queued();
        parsed
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Folds one stored entry and, at the stored snapshot's seq, compares fingerprints.
fn push_and_compare(
    auditor: &mut Auditor,
    entry: Entry,
    payload: Decoded,
    stored: Option<(u64, events::Digest)>,
    projection_check: &mut Option<ProjectionCheck>,
) {
    let seq = entry.seq;
    auditor.push_decoded(entry, payload);
    if let Some((snapshot_seq, stored_fingerprint)) = stored {
        if snapshot_seq == seq {
            // The snapshot covers whole decisions, so the pending one ends here.
            *projection_check = Some(ProjectionCheck {
                seq,
                reported_by: "the stored snapshot",
                reported: stored_fingerprint,
                rebuilt: auditor.fingerprint_so_far(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use projections::settling::SpillStore as _;

    /// A settled record the temporary file lost means decisions were re-derived from nothing:
    /// the audit must say it is unusable, not clean.
    #[test]
    fn an_audit_whose_temporary_file_failed_gives_no_verdict() {
        let auditor = Auditor::new();
        let store = auditor
            .spill
            .clone()
            .expect("a temporary file can be made here");
        assert!(Auditor::new().finish().is_ok());
        store.damaged(0);
        assert!(
            matches!(auditor.finish(), Err(AuditError::Io(why)) if why.contains("temporary file"))
        );
    }
}
