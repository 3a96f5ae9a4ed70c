//! Backtests that model proposals cite, re-run by the audit: a loosening model is proposed with
//! the digest of its backtest over the log's first `log_size` entries, which the service checked
//! when it decided. The audit re-runs each over the same entries after its pass over the log, and
//! reports a digest that does not match where the proposal and its activation were recorded.

use crate::audit::{AuditError, DecisionAudit, Finding};
use events::payloads::RiskModelProposed;

/// A model proposal that cites a backtest, as the audit found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitedBacktest {
    /// The proposal's seq.
    pub seq: u64,
    /// The proposed model (its `backtest` is the citation).
    pub model: RiskModelProposed,
    /// Where the model was activated, if it was.
    pub activated_seq: Option<u64>,
}

/// Re-runs every backtest `audit` found cited, each over `prefix(log_size)`: the stored bytes of
/// the log's first `log_size` entries, in order. A digest that does not match is a finding at the
/// proposal, and at the activation if the model was activated.
///
/// # Errors
/// [`AuditError::Io`] when the entries cannot be read back.
pub fn check_cited_backtests<B, E, I>(
    audit: &mut DecisionAudit,
    mut prefix: impl FnMut(u64) -> I,
) -> Result<(), AuditError>
where
    B: AsRef<[u8]>,
    E: std::fmt::Display,
    I: Iterator<Item = Result<B, E>>,
{
    for cited in std::mem::take(&mut audit.cited_backtests) {
        let Some(citation) = &cited.model.backtest else {
            continue;
        };
        let report =
            crate::backtest::rerun(prefix(citation.log_size), &cited.model).map_err(|e| {
                AuditError::Io(format!(
                    "re-running the backtest cited at seq {}: {e}",
                    cited.seq
                ))
            })?;
        let digest = report.sha256();
        if digest == citation.report_sha256 && report.log_size == citation.log_size {
            audit.backtests_rerun += 1;
            continue;
        }
        let why = format!(
            "model {} cites backtest report sha256 {} over {} entries; re-run over them it gives {digest}",
            cited.model.version, citation.report_sha256, citation.log_size
        );
        audit.findings.push(Finding {
            seq: cited.seq,
            kind: "risk_model.proposed".into(),
            message: why.clone(),
        });
        if let Some(seq) = cited.activated_seq {
            audit.findings.push(Finding {
                seq,
                kind: "risk_model.activated".into(),
                message: format!("activated without a matching backtest digest: {why}"),
            });
        }
    }
    audit.findings.sort_by_key(|f| f.seq);
    Ok(())
}
