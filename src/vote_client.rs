//! `trustledger vote`: a CAB member's client. It asks the service for the statement the vote is
//! signed over, checks that the statement names what the member asked for, shows it, signs it
//! with the member's own key and posts the vote.
//!
//! An unencrypted OpenSSH key is read and used in-process. A passphrase-protected key (or one
//! only the agent holds, given as its `.pub` file) is handed to `ssh-keygen -Y sign`, which asks
//! for the passphrase or uses the agent, so the private key never passes through this program.

use anyhow::{bail, Context as _};
use projections::vote_statement::{self, Kind};
use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// What the member votes on.
#[derive(Debug, Clone)]
pub struct Ballot {
    /// What is voted on.
    pub kind: Kind,
    /// Deployment id, model version or target level.
    pub subject: String,
    /// Approve or reject.
    pub approve: bool,
    /// Why.
    pub rationale: String,
}

impl Ballot {
    /// The route the vote is posted to, and the body's fields besides the vote itself.
    fn endpoint(&self) -> (String, serde_json::Map<String, serde_json::Value>) {
        let mut extra = serde_json::Map::new();
        let path = match self.kind {
            Kind::Deployment => format!("/api/v1/deployments/{}/votes", self.subject),
            Kind::RiskModel => format!("/api/v1/risk-models/{}/votes", self.subject),
            Kind::Exception => format!("/api/v1/exceptions/{}/votes", self.subject),
            Kind::Change => format!("/api/v1/cab/proposals/{}/votes", self.subject),
            Kind::RegistryChange => {
                format!("/api/v1/registry/proposals/{}/votes", self.subject)
            }
            Kind::BreakglassReview => {
                format!("/api/v1/deployments/{}/breakglass/votes", self.subject)
            }
            Kind::MaturityProgression => {
                let level: u32 = self.subject.parse().unwrap_or(u32::MAX);
                extra.insert("to_level".into(), level.into());
                "/api/v1/maturity/progression".into()
            }
        };
        (path, extra)
    }
}

/// Signs and posts `ballot`; returns the service's answer (JSON text) and the statement signed.
///
/// # Errors
/// When the service cannot be reached or refuses (its problem's detail is in the error), when the
/// statement it offers does not name the ballot, or when the key cannot sign.
pub fn vote(
    url: &str,
    token: &str,
    key: &Path,
    ballot: &Ballot,
) -> anyhow::Result<(String, String)> {
    let base = url.trim_end_matches('/');
    let rationale_sha256 = hex::encode(Sha256::digest(ballot.rationale.as_bytes()));
    let offered: serde_json::Value = answer(
        ureq::get(&format!("{base}/api/v1/cab/vote-statement"))
            .set("Authorization", &format!("Bearer {token}"))
            .query("kind", ballot.kind.as_str())
            .query("subject", &ballot.subject)
            .query("approve", if ballot.approve { "true" } else { "false" })
            .query("rationale_sha256", &rationale_sha256)
            .call(),
    )?;
    let field = |name: &str| -> anyhow::Result<String> {
        offered[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("the service's statement has no {name}"))
    };
    let (statement, origin, digest, signed_at) = (
        field("statement")?,
        field("origin")?,
        field("digest")?,
        field("signed_at")?,
    );
    // The service names the origin and the digest; everything else must be what was asked.
    let expected = vote_statement::Statement {
        kind: ballot.kind,
        origin: &origin,
        subject: &ballot.subject,
        digest: &digest,
        approve: ballot.approve,
        rationale: &ballot.rationale,
        signed_at: &signed_at,
    }
    .to_text();
    if statement != expected {
        bail!("the service offered a statement that does not name this vote:\n{statement}");
    }
    let sshsig = sign(key, &statement)?;
    let (path, mut body) = ballot.endpoint();
    body.insert("approve".into(), ballot.approve.into());
    body.insert("rationale".into(), ballot.rationale.clone().into());
    body.insert(
        "signature".into(),
        serde_json::json!({"signed_at": signed_at, "sshsig": sshsig}),
    );
    let recorded: serde_json::Value = answer(
        ureq::post(&format!("{base}{path}"))
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(serde_json::Value::Object(body)),
    )?;
    Ok((recorded.to_string(), statement))
}

/// The JSON of a 2xx answer, or the problem's detail as the error.
fn answer(response: Result<ureq::Response, ureq::Error>) -> anyhow::Result<serde_json::Value> {
    match response {
        Ok(r) => Ok(r.into_json()?),
        Err(ureq::Error::Status(status, r)) => {
            let problem: serde_json::Value = r.into_json().unwrap_or_default();
            bail!(
                "the service refused ({status}): {}",
                problem["detail"].as_str().unwrap_or("no detail")
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// Signs `statement` with the key at `key` (a private key file, or a public one whose private
/// half the agent holds).
fn sign(key: &Path, statement: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(key)
        .with_context(|| format!("cannot read the key {}", key.display()))?;
    if let Ok(private) = ssh_key::PrivateKey::from_openssh(&text) {
        if !private.is_encrypted() {
            return Ok(sign_in_process(&private, statement)?);
        }
    }
    sign_with_ssh_keygen(key, statement)
}

fn sign_in_process(key: &ssh_key::PrivateKey, statement: &str) -> Result<String, ssh_key::Error> {
    key.sign(
        vote_statement::NAMESPACE,
        ssh_key::HashAlg::Sha512,
        statement.as_bytes(),
    )?
    .to_pem(ssh_key::LineEnding::LF)
}

fn sign_with_ssh_keygen(key: &Path, statement: &str) -> anyhow::Result<String> {
    let mut child = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", vote_statement::NAMESPACE, "-f"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("the key is passphrase-protected or held by the agent, so ssh-keygen signs it, and ssh-keygen could not be started (apt-get install openssh-client)")?;
    child
        .stdin
        .take()
        .context("ssh-keygen's input")?
        .write_all(statement.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("ssh-keygen -Y sign failed ({})", output.status);
    }
    Ok(String::from_utf8(output.stdout)?)
}
