//! Backtesting a candidate risk model (and optionally maturity levels) on real history: "what
//! would it have done?"
//!
//! The log is folded in order; at every `deployment.submitted` the candidate scores the
//! deployment from the same facts (the evidence, the app's history *as it was then*, the class
//! the policy in force assigned) and gates it at the maturity level in force then. After the
//! whole history is folded, each deployment's candidate decision is joined with what actually
//! happened: whether it was auto-approved, and the incidents it later caused. The report is the
//! calibration evidence a model proposal cites (by the report's SHA-256).

use events::payloads::*;
use events::Entry;
use projections::policy;
use projections::state::GovernanceState;
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;

/// What is being tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The candidate model (its thresholds and weights are what is tried).
    pub model: RiskModelProposed,
    /// Candidate maturity levels; `None` keeps the levels recorded in the log.
    pub levels: Option<Vec<MaturityLevel>>,
}

/// Per-class results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassResult {
    /// Deployments submitted.
    pub deployments: u64,
    /// Auto-approved as recorded.
    pub auto_recorded: u64,
    /// Auto-approved under the candidate.
    pub auto_candidate: u64,
    /// Sent to the CAB as recorded.
    pub cab_recorded: u64,
    /// Sent to the CAB under the candidate.
    pub cab_candidate: u64,
    /// Candidate auto-approvals that later had incidents, by severity (incidents counted).
    pub incidents_let_through: BTreeMap<Severity, u64>,
    /// Deployments whose candidate decision (gate outcome and score) equals the recorded one.
    pub identical: u64,
}

/// The backtest's findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BacktestReport {
    /// The candidate's version label.
    pub model_version: String,
    /// How many entries, from seq 0, were folded.
    pub log_size: u64,
    /// Results per class.
    pub classes: BTreeMap<BlastRadiusClass, ClassResult>,
    /// Candidate scores joined with outcomes: AUC of the candidate score against "caused an
    /// incident", over released deployments, in bp.
    pub candidate_auc_bp: Option<u32>,
    /// Recorded scores, same measure.
    pub recorded_auc_bp: Option<u32>,
}

impl BacktestReport {
    /// The report as JSON: what `trustledger backtest --format json` prints, and what
    /// [`BacktestReport::sha256`] digests.
    pub fn to_json(&self) -> serde_json::Value {
        let class_json = |r: &ClassResult| {
            serde_json::json!({
                "deployments": r.deployments,
                "auto_recorded": r.auto_recorded,
                "auto_candidate": r.auto_candidate,
                "cab_recorded": r.cab_recorded,
                "cab_candidate": r.cab_candidate,
                "identical": r.identical,
                "incidents_let_through": r
                    .incidents_let_through
                    .iter()
                    .map(|(s, n)| (format!("{s:?}"), *n))
                    .collect::<BTreeMap<_, _>>(),
            })
        };
        let classes: serde_json::Map<String, serde_json::Value> = self
            .classes
            .iter()
            .map(|(class, r)| (class.as_str().to_owned(), class_json(r)))
            .collect();
        serde_json::json!({
            "model_version": self.model_version,
            "log_size": self.log_size,
            "classes": classes,
            "total": class_json(&self.total()),
            "candidate_auc_bp": self.candidate_auc_bp,
            "recorded_auc_bp": self.recorded_auc_bp,
        })
    }

    /// Lowercase hex SHA-256 of the report's RFC 8785 canonical JSON: what a model proposal
    /// cites, and what the service and the audit recompute.
    pub fn sha256(&self) -> String {
        let bytes = events::canonical::to_canonical_vec(&self.to_json())
            .expect("a report holds only strings and counts");
        events::Digest::of(&bytes).to_hex()
    }

    /// All classes together.
    pub fn total(&self) -> ClassResult {
        let mut t = ClassResult::default();
        for c in self.classes.values() {
            t.deployments += c.deployments;
            t.auto_recorded += c.auto_recorded;
            t.auto_candidate += c.auto_candidate;
            t.cab_recorded += c.cab_recorded;
            t.cab_candidate += c.cab_candidate;
            t.identical += c.identical;
            for (s, n) in &c.incidents_let_through {
                *t.incidents_let_through.entry(*s).or_default() += n;
            }
        }
        t
    }
}

impl fmt::Display for BacktestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "backtest of model {} on recorded history",
            self.model_version
        )?;
        writeln!(
            f,
            "{:<24} {:>8} {:>10} {:>10} {:>9} {:>9} {:>10} incidents let through",
            "class", "deploys", "auto(rec)", "auto(cand)", "CAB(rec)", "CAB(cand)", "identical"
        )?;
        let total = self.total();
        let rows = self
            .classes
            .iter()
            .map(|(c, r)| (c.as_str(), r))
            .chain(std::iter::once(("ALL", &total)));
        for (name, r) in rows {
            let let_through: Vec<String> = r
                .incidents_let_through
                .iter()
                .map(|(s, n)| format!("{s:?}×{n}"))
                .collect();
            writeln!(
                f,
                "{:<24} {:>8} {:>10} {:>10} {:>9} {:>9} {:>10} {}",
                name,
                r.deployments,
                r.auto_recorded,
                r.auto_candidate,
                r.cab_recorded,
                r.cab_candidate,
                r.identical,
                if let_through.is_empty() {
                    "none".to_owned()
                } else {
                    let_through.join(" ")
                }
            )?;
        }
        let auc = |a: Option<u32>| {
            a.map_or("n/a".to_owned(), |bp| {
                format!("{}.{:04}", bp / 10_000, bp % 10_000)
            })
        };
        writeln!(
            f,
            "AUC of score vs incident: candidate {}, recorded {}",
            auc(self.candidate_auc_bp),
            auc(self.recorded_auc_bp)
        )
    }
}

struct Tried {
    class: BlastRadiusClass,
    auto: bool,
    score: u32,
}

/// Folds entries and tries the candidate at every submission. Settled records wait in a
/// temporary file, as in the audit ([`crate::spill::TempFileSpill`]).
pub struct Backtester {
    state: GovernanceState,
    folded: u64,
    tried: BTreeMap<Uuid, Tried>,
    spill: Option<std::sync::Arc<crate::spill::TempFileSpill>>,
}

impl Default for Backtester {
    fn default() -> Self {
        let (state, spill) = crate::spill::spilling_state();
        Self {
            state,
            folded: 0,
            tried: BTreeMap::new(),
            spill,
        }
    }
}

impl Backtester {
    /// A fresh backtester expecting entry 0 first.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh backtester that keeps every record in memory, for short histories: its
    /// [`Backtester::finish`] cannot fail.
    pub fn in_memory() -> Self {
        Self {
            state: GovernanceState::new(),
            folded: 0,
            tried: BTreeMap::new(),
            spill: None,
        }
    }

    /// Takes the next entry (already integrity-checked by the caller).
    pub fn push(&mut self, entry: &Entry, candidate: &Candidate) {
        self.push_decoded(entry, Payload::decode(entry), candidate);
    }

    /// [`Backtester::push`] for an entry whose payload the caller decoded (perhaps on another
    /// thread): `decoded` must be `Payload::decode(entry)`.
    pub fn push_decoded(
        &mut self,
        entry: &Entry,
        decoded: Result<Option<Payload>, events::catalogue::DecodeError>,
        candidate: &Candidate,
    ) {
        if let Ok(Some(Payload::DeploymentSubmitted(s))) = &decoded {
            if let Some(evidence) = self.state.evidence.get(&s.evidence_id) {
                let input = policy::ClassifyInput {
                    app_name: s.app_name.clone(),
                    requires_admin: s.requires_admin,
                    target_user_count: s.target_user_count,
                    cmdb: s.cmdb.clone(),
                };
                let class = s.classification.class;
                let factors = policy::derive_factors(
                    &self.state,
                    &candidate.model.weights_bp,
                    &input,
                    class,
                    &evidence,
                    entry.time,
                );
                let score = policy::score_centi(&factors);
                let mut view = self.state.clone_for_gate();
                if let Some(levels) = &candidate.levels {
                    view.levels.clone_from(levels);
                }
                let (auto, _) = policy::gate(
                    &view,
                    (s.deployment_id, entry.time),
                    class,
                    score,
                    &candidate.model,
                );
                self.tried
                    .insert(s.deployment_id, Tried { class, auto, score });
            }
        }
        self.state.apply_decoded(entry, decoded);
        self.folded += 1;
    }

    /// Joins the candidate's decisions with what happened.
    ///
    /// # Errors
    /// [`crate::audit::AuditError::Io`] when a settled record could not be read back from the
    /// temporary file: the report would be missing it.
    pub fn finish(self, candidate: &Candidate) -> Result<BacktestReport, crate::audit::AuditError> {
        let report = self.join(candidate);
        crate::spill::check_spill(self.spill.as_deref(), "backtest")?;
        Ok(report)
    }

    fn join(&self, candidate: &Candidate) -> BacktestReport {
        let mut report = BacktestReport {
            model_version: candidate.model.version.clone(),
            log_size: self.folded,
            ..BacktestReport::default()
        };
        let mut candidate_samples = Vec::new();
        let mut recorded_samples = Vec::new();
        for (id, tried) in &self.tried {
            let Some(d) = self.state.deployments.get(id) else {
                continue;
            };
            let r = report.classes.entry(tried.class).or_default();
            r.deployments += 1;
            let recorded_auto = d.auto_approved;
            if recorded_auto {
                r.auto_recorded += 1
            } else {
                r.cab_recorded += 1
            }
            if tried.auto {
                r.auto_candidate += 1
            } else {
                r.cab_candidate += 1
            }
            if recorded_auto == tried.auto && d.submitted.score_centi == tried.score {
                r.identical += 1;
            }
            let incidents: Vec<Severity> = d
                .incidents
                .iter()
                .filter_map(|i| self.state.incidents.get(i))
                .map(|i| i.current.severity)
                .collect();
            if tried.auto {
                for s in &incidents {
                    *r.incidents_let_through.entry(*s).or_default() += 1;
                }
            }
            if d.released_at.is_some() {
                candidate_samples.push((tried.score, !incidents.is_empty()));
                recorded_samples.push((d.submitted.score_centi, !incidents.is_empty()));
            }
        }
        report.candidate_auc_bp = projections::stats::auc_bp(&candidate_samples);
        report.recorded_auc_bp = projections::stats::auc_bp(&recorded_samples);
        report
    }
}

/// Backtests `candidate` (with the recorded levels) on the stored entries `entries` yields, in seq
/// order from 0: what the service runs when a proposal cites a report, and the audit after it.
///
/// # Errors
/// The first entry that cannot be read or parsed, or a settled record that cannot be read back.
pub fn rerun<B: AsRef<[u8]>, E: std::fmt::Display>(
    entries: impl Iterator<Item = Result<B, E>>,
    model: &RiskModelProposed,
) -> Result<BacktestReport, String> {
    let candidate = Candidate {
        model: model.clone(),
        levels: None,
    };
    let mut tester = Backtester::new();
    for (seq, bytes) in entries.enumerate() {
        let bytes = bytes.map_err(|e| format!("entry {seq}: {e}"))?;
        let entry = Entry::parse(bytes.as_ref()).map_err(|e| format!("entry {seq}: {e}"))?;
        tester.push(&entry, &candidate);
    }
    tester.finish(&candidate).map_err(|e| e.to_string())
}

/// Backtests `model` over the log as it is now and returns the citation a proposal of it gives
/// (its size and the report's digest), with the report.
///
/// # Errors
/// As [`rerun`].
pub fn cite(
    log: &events::Log,
    model: &RiskModelProposed,
) -> Result<(BacktestCitation, BacktestReport), String> {
    let log_size = log.head().size;
    let entries = log
        .iter_bytes_until(0, log_size)
        .map(|item| item.map(|(_, bytes)| bytes));
    let report = rerun(entries, model)?;
    let citation = BacktestCitation {
        log_size,
        report_sha256: report.sha256(),
    };
    Ok((citation, report))
}

/// Backtests on a bundle, after verifying its integrity. `Ok(Err(problem))` when it is not intact.
///
/// # Errors
/// [`crate::audit::AuditError`] when the bundle cannot be read.
pub fn backtest_bundle(
    dir: &std::path::Path,
    options: &crate::bundle::BundleOptions,
    candidate: &Candidate,
    progress: impl FnMut(u64),
) -> Result<Result<BacktestReport, String>, crate::audit::AuditError> {
    // One pass, as the audit reads a bundle: what was folded counts only if the bundle verifies.
    let mut tester = Backtester::new();
    let checked =
        crate::bundle::check_bundle(dir, options, progress, Payload::decode, |entry, decoded| {
            tester.push_decoded(&entry, decoded, candidate)
        })?;
    Ok(match checked {
        Ok(_) => Ok(tester.finish(candidate)?),
        Err(invalid) => Err(invalid.to_string()),
    })
}

/// Backtests on a stored log, after verifying it. `Ok(Err(problem))` when it is not intact.
///
/// # Errors
/// [`crate::audit::AuditError`] when the store cannot be read.
pub fn backtest_log(
    log: &events::Log,
    verifier: Option<&events::checkpoint::NoteVerifier>,
    candidate: &Candidate,
    progress: impl FnMut(u64),
) -> Result<Result<BacktestReport, String>, crate::audit::AuditError> {
    match events::verify::verify_store(log, verifier, progress) {
        Ok(_) => {}
        Err(events::verify::VerifyStoreError::Integrity(problem)) => {
            return Ok(Err(problem.to_string()))
        }
        Err(events::verify::VerifyStoreError::Read(e)) => return Err(e.into()),
        Err(other) => return Err(crate::audit::AuditError::Io(other.to_string())),
    }
    let mut tester = Backtester::new();
    for item in log.iter_bytes(0) {
        let (seq, bytes) = item?;
        let entry = Entry::parse(&bytes).map_err(|e| {
            crate::audit::AuditError::Io(format!("entry {seq} changed since it was verified: {e}"))
        })?;
        tester.push(&entry, candidate);
    }
    Ok(Ok(tester.finish(candidate)?))
}
