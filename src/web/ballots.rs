//! What CAB members vote on in the browser, and the markup to vote and to register a passkey:
//! the open ballots (deployments waiting for the CAB, model, exception, change and registry
//! proposals, break-glass reviews, progression), the vote form every ballot shares, and the
//! member's keys page.
//!
//! A vote form posts without scripts (an unsigned vote, which a log requiring signed votes
//! refuses with its reason); with `passkey.js`, a member holding passkeys signs the vote's
//! statement first, and the form posts the assertion with it.

use super::pages::layout;
use super::session::SignedIn;
use events::Timestamp;
use maud::{html, Markup};
use projections::state::{DeploymentStatus, GovernanceState};
use projections::vote_statement::Kind;
use std::collections::BTreeMap;

/// One thing the CAB votes on, as the vote's statement names it.
pub struct Ballot {
    /// What kind of vote.
    pub kind: Kind,
    /// The statement's subject.
    pub subject: String,
    /// A line saying what it is.
    pub title: String,
    /// Where to read more, if a page shows it.
    pub link: Option<String>,
    /// The votes so far: member → approve?
    pub votes: BTreeMap<String, bool>,
}

/// Every open ballot, oldest kinds of work first: deployments, then proposals.
pub fn open_ballots(s: &GovernanceState, now: Timestamp) -> Vec<Ballot> {
    let mut ballots = Vec::new();
    for (id, d) in s.deployments.iter() {
        if d.status == DeploymentStatus::PendingCab {
            ballots.push(Ballot {
                kind: Kind::Deployment,
                subject: id.to_string(),
                title: format!(
                    "Deployment of {} ({})",
                    d.submitted.app_name,
                    d.class.as_str()
                ),
                link: Some(format!("/deployments/{id}")),
                votes: d.votes.iter().map(|(m, (a, _))| (m.clone(), *a)).collect(),
            });
        }
    }
    for (version, m) in &s.models {
        if m.approved_by.is_none() {
            ballots.push(Ballot {
                kind: Kind::RiskModel,
                subject: version.clone(),
                title: format!("Risk model {version}, proposed by {}", m.proposed_by),
                link: Some("/models".into()),
                votes: m.votes.clone(),
            });
        }
    }
    open_proposals(
        &mut ballots,
        (&s.exception_proposals, Kind::Exception),
        now,
        |p| {
            format!(
                "Exception waiving {} for {}: {}",
                p.control, p.scope, p.reason
            )
        },
    );
    open_proposals(
        &mut ballots,
        (&s.change_proposals, Kind::Change),
        now,
        |p| change_title(&p.change),
    );
    open_proposals(
        &mut ballots,
        (&s.registry_proposals, Kind::RegistryChange),
        now,
        |p| format!("Registry entry for {}", p.entry.app_id),
    );
    for (id, (by, _)) in &s.unreviewed_breakglass {
        ballots.push(Ballot {
            kind: Kind::BreakglassReview,
            subject: id.to_string(),
            title: format!("Review of the break-glass release by {by} (approve: it was justified)"),
            link: Some(format!("/deployments/{id}")),
            votes: s
                .breakglass_review_votes
                .get(id)
                .cloned()
                .unwrap_or_default(),
        });
    }
    if let Some(e) = &s.last_evaluation {
        let ready = e.evaluation.outcome == projections::maturity::READY_TO_PROGRESS;
        if let (true, Some(level)) = (ready, e.evaluation.target_level) {
            ballots.push(Ballot {
                kind: Kind::MaturityProgression,
                subject: level.to_string(),
                title: format!("Progression to maturity level {level}"),
                link: Some("/".into()),
                votes: s
                    .progression_votes
                    .get(&level)
                    .map(|m| m.iter().map(|v| (v.clone(), true)).collect())
                    .unwrap_or_default(),
            });
        }
    }
    ballots
}

/// The open proposals of one kind (not yet carried out, not expired), each titled by `title`.
fn open_proposals<P>(
    ballots: &mut Vec<Ballot>,
    (open, kind): (
        &BTreeMap<uuid::Uuid, projections::proposal::Proposal<P>>,
        Kind,
    ),
    now: Timestamp,
    title: impl Fn(&P) -> String,
) {
    for (id, p) in open {
        if !p.applied && p.proposal_expires_at > now {
            ballots.push(Ballot {
                kind,
                subject: id.to_string(),
                title: title(&p.proposal),
                link: None,
                votes: p.votes.clone(),
            });
        }
    }
}

fn change_title(change: &events::payloads::ProposedChange) -> String {
    use events::payloads::ProposedChange;
    match change {
        ProposedChange::AddMember { member, .. } => format!("Add {member} to the CAB"),
        ProposedChange::RemoveMember { member } => format!("Remove {member} from the CAB"),
        ProposedChange::BlastRadiusPolicy(p) => format!("Blast-radius policy {}", p.version),
        ProposedChange::SetEvidenceProducer { producer, .. } => {
            format!("Evidence producer key for {producer}")
        }
    }
}

/// The member's passkeys' credential ids, comma-separated (what `passkey.js` offers the browser).
fn credential_ids(s: &GovernanceState, member: &str) -> String {
    s.member_passkeys
        .get(member)
        .map(|keys| keys.keys().cloned().collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

/// The vote form for `ballot`, for a CAB member who has not voted on it; what they already
/// decided otherwise, and nothing for others.
pub fn vote_form(s: &GovernanceState, who: &SignedIn, ballot: &Ballot, digest: &str) -> Markup {
    let member = &who.principal.name;
    if !s.cab_members.contains(member) {
        return html! {};
    }
    if let Some(approve) = ballot.votes.get(member) {
        return html! { p { "You voted to " @if *approve { "approve" } @else { "reject" } "." } };
    }
    let passkeys = credential_ids(s, member);
    let rationale_id = format!("rationale-{}-{}", ballot.kind.as_str(), ballot.subject);
    html! {
        form.vote method="post" action="/votes"
            data-passkeys=(passkeys) data-origin=(s.origin) data-kind=(ballot.kind.as_str())
            data-subject=(ballot.subject) data-digest=(digest) {
            input type="hidden" name="csrf" value=(who.csrf);
            input type="hidden" name="kind" value=(ballot.kind.as_str());
            input type="hidden" name="subject" value=(ballot.subject);
            label for=(rationale_id) { "Rationale" }
            textarea id=(rationale_id) name="rationale" rows="2" required {}
            div.buttons {
                button type="submit" name="decision" value="approve" { "Approve" }
                button type="submit" name="decision" value="reject" { "Reject" }
            }
            @if passkeys.is_empty() {
                p.hint { "Unsigned: this vote carries no signature. " a href="/keys" { "Register a passkey" } " to sign votes in the browser." }
            } @else {
                p.hint { "Your passkey signs the statement: kind " code { (ballot.kind.as_str()) } ", subject " code { (ballot.subject) } ", digest " code { (digest[..16]) "…" } ", your decision and the SHA-256 of your rationale." }
            }
            p.error role="alert" hidden {}
        }
    }
}

/// The proposals page: every open ballot, each with its vote form.
pub fn proposals(s: &GovernanceState, who: &SignedIn, ballots: &[(Ballot, String)]) -> Markup {
    let main = html! {
        @if ballots.is_empty() { p { "Nothing is waiting for the CAB's votes." } }
        @for (ballot, digest) in ballots {
            section.ballot {
                h2 { @if let Some(link) = &ballot.link { a href=(link) { (ballot.title) } } @else { (ballot.title) } }
                p { (ballot.votes.values().filter(|a| **a).count()) " approve, " (ballot.votes.values().filter(|a| !**a).count()) " reject so far" }
                (vote_form(s, who, ballot, digest))
            }
        }
        script src="/assets/passkey.js" defer {}
    };
    layout("Open votes", Some(who), &main)
}

/// What the keys page shows besides the keys: a message after a registration, or an error.
pub enum Notice<'a> {
    /// Nothing.
    None,
    /// Done.
    Done(&'a str),
    /// Why the last request failed.
    Error(&'a str),
}

/// The member's vote keys (SSH key, passkeys) and the passkey registration button, which signs
/// a registration statement dated `requested_at`.
pub fn keys(
    s: &GovernanceState,
    who: &SignedIn,
    (web_origin, rp_id): (&str, &str),
    requested_at: &str,
    notice: &Notice<'_>,
) -> Markup {
    let member = &who.principal.name;
    let is_member = s.cab_members.contains(member);
    let passkeys = s.member_passkeys.get(member);
    let statement = projections::passkey::RegistrationStatement {
        origin: &s.origin,
        member,
        requested_at,
    };
    let main = html! {
        @match notice {
            Notice::Done(m) => p.notice role="status" { (m) },
            Notice::Error(m) => p.error role="alert" { (m) },
            Notice::None => {},
        }
        @if !is_member {
            p { "Only CAB members hold vote keys." }
        } @else {
            h2 { "SSH key" }
            @match s.member_keys.get(member) {
                Some(k) => p { code { (k.fingerprint) } " (" code { "trustledger vote" } " signs with it)" },
                None => p { "None registered." },
            }
            h2 { "Passkeys" }
            @match passkeys {
                Some(keys) if !keys.is_empty() => table {
                    caption { "Your passkeys in force" }
                    thead { tr { th scope="col" { "Fingerprint" } th scope="col" { "Credential" } th scope="col" { "Origin" } } }
                    tbody { @for k in keys.values() { tr { td { code { (k.fingerprint) } } td { code { (k.credential_id) } } td { (k.web_origin) } } } }
                },
                _ => p { "None registered." },
            }
            form #register-passkey method="post" action="/keys/passkeys"
                data-rp-id=(rp_id) data-member=(member) data-exclude=(credential_ids(s, member))
                data-challenge=(projections::passkey::challenge(&statement.to_text())) {
                input type="hidden" name="csrf" value=(who.csrf);
                input type="hidden" name="requested_at" value=(requested_at);
                input type="hidden" name="credential_id";
                input type="hidden" name="client_data_json";
                input type="hidden" name="attestation_object";
                button type="submit" { "Register a passkey" }
                p.hint { "Your authenticator signs this statement (its SHA-256 is the challenge), and it is recorded in the log with the key; pages at " code { (web_origin) } " use it." }
                pre { (statement.to_text()) }
                noscript { p { "Registering a passkey needs scripts: the browser's WebAuthn interface is a script interface." } }
                p.error role="alert" hidden {}
            }
            script src="/assets/passkey.js" defer {}
        }
    };
    layout("Your vote keys", Some(who), &main)
}
