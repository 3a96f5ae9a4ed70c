//! A model proposal's cited backtest, re-run before the proposal is decided: the report digest a
//! loosening model cites must be the digest of the service's own backtest of that model over the
//! log's first `log_size` entries, or the proposal is refused and nothing is written.

use super::{CommandError, Governance};
use projections::policy::{Command, Rejection};

impl Governance {
    /// Re-runs the backtest `command` cites, if it is a model proposal that cites one.
    ///
    /// # Errors
    /// [`CommandError::Rejected`] when the cited digest or size does not match the re-run;
    /// [`CommandError::Read`]-like failures as [`CommandError::Unavailable`].
    pub fn check_cited_backtest(&self, command: &Command) -> Result<(), CommandError> {
        let Command::ProposeRiskModel(model) = command else {
            return Ok(());
        };
        let Some(cited) = &model.backtest else {
            return Ok(());
        };
        let size = self.log().head().size;
        if cited.log_size == 0 || cited.log_size > size {
            return Err(Rejection::Invalid {
                field: "backtest.log_size",
                reason: format!("must be 1–{size}: the backtest runs over entries the log holds"),
            }
            .into());
        }
        let entries = self
            .log()
            .iter_bytes_until(0, cited.log_size)
            .map(|item| item.map(|(_, bytes)| bytes));
        let report = replay::backtest::rerun(entries, model).map_err(|e| {
            CommandError::Unavailable(format!("the backtest could not be re-run: {e}"))
        })?;
        let digest = report.sha256();
        if digest != cited.report_sha256 {
            return Err(Rejection::Invalid {
                field: "backtest.report_sha256",
                reason: format!(
                    "the service's backtest of model {} over the log's first {} entries gives report sha256 {digest}, not {}",
                    model.version, cited.log_size, cited.report_sha256
                ),
            }
            .into());
        }
        Ok(())
    }
}
