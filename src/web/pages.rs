//! The pages, as maud templates over the folded state: semantic HTML, every control labelled,
//! forms that post without scripts. Everything shown is escaped by maud.

use super::session::SignedIn;
use crate::governance::Role;
use events::payloads::BlastRadiusClass;
use maud::{html, Markup, DOCTYPE};
use projections::state::GovernanceState;
use projections::{maturity, policy, views};

/// A whole page: head, the navigation the principal's roles allow, and `main`.
pub fn layout(title: &str, who: Option<&SignedIn>, main: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · trustledger" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                header {
                    a.brand href="/" { "trustledger" }
                    @if let Some(who) = who {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/" { "Overview" } }
                                li { a href="/queue" { "CAB queue" } }
                                li { a href="/incidents" { "Incidents" } }
                                li { a href="/audit" { "Audit" } }
                            }
                        }
                        form.signout method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(who.csrf);
                            span { "Signed in as " strong { (who.principal.name) } }
                            " "
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { h1 { (title) } (main) }
            }
        }
    }
}

/// The sign-in form, with an error beside the field when there is one.
pub fn sign_in(error: Option<&str>) -> Markup {
    let main = html! {
        form method="post" action="/sign-in" {
            p { "Sign in once with your bearer token; the browser then keeps only a session." }
            label for="token" { "Token" }
            input #token type="password" name="token" autocomplete="current-password" required
                aria-describedby=[error.map(|_| "token-error")];
            @if let Some(error) = error {
                p #token-error .error role="alert" { (error) }
            }
            button type="submit" { "Sign in" }
        }
    };
    layout("Sign in", None, &main)
}

/// The overview: level and mode, the progression criteria, thresholds and quora by class.
pub fn overview(s: &GovernanceState, who: &SignedIn) -> Markup {
    let at = s
        .last_time
        .unwrap_or(events::Timestamp::from_unix_micros(0));
    let preview = maturity::evaluate(s, at, false);
    let model = s.active_model().map(|m| m.proposal.clone());
    let main = html! {
        section aria-labelledby="level" {
            h2 #level { "Maturity level " (s.level) }
            p {
                "Mode: " strong { (s.current_level().map_or("none", |l| l.mode.as_str())) }
                " · risk model: " strong { (model.as_ref().map_or("none", |m| m.version.as_str())) }
                @if let Some(e) = &s.last_evaluation {
                    " · last evaluation: " (e.evaluation.outcome) " at " (e.at.to_string()) " (seq " (e.seq) ")"
                }
            }
        }
        section aria-labelledby="criteria" {
            h2 #criteria { "Progression criteria" @if let Some(t) = preview.target_level { " for level " (t) } }
            p { "If evaluated now: " strong { (preview.outcome) } }
            table {
                thead { tr { th scope="col" { "Criterion" } th scope="col" { "Required" } th scope="col" { "Actual" } th scope="col" { "Met" } } }
                tbody {
                    @for c in &preview.criteria {
                        tr {
                            th scope="row" { (c.name) }
                            td { (c.required) }
                            td { (c.actual) }
                            td { @if c.met { "yes" } @else { strong { "no" } } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="thresholds" {
            h2 #thresholds { "Thresholds and quora by blast-radius class" }
            table {
                thead { tr { th scope="col" { "Class" } th scope="col" { "Model" } th scope="col" { "Level" } th scope="col" { "Effective" } th scope="col" { "Quorum" } } }
                tbody {
                    @for class in BlastRadiusClass::ALL {
                        @let gate = model.as_ref().map(|m| policy::gate(s, (uuid::Uuid::nil(), at), class, 0, m).1);
                        tr {
                            th scope="row" { (class.as_str()) }
                            td { (opt(gate.as_ref().map(|g| g.model_threshold))) }
                            td { (opt(gate.as_ref().map(|g| g.level_threshold))) }
                            td { (opt(gate.as_ref().map(|g| g.threshold))) }
                            td { (s.quorum(class)) }
                        }
                    }
                }
            }
        }
    };
    layout("Overview", Some(who), &main)
}

fn opt(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| v.to_string())
}

/// The CAB queue, oldest first.
pub fn queue(s: &GovernanceState, who: &SignedIn) -> Markup {
    let at = s
        .last_time
        .unwrap_or(events::Timestamp::from_unix_micros(0));
    let mut queue = views::cab_queue(s, at);
    queue.sort_by_key(|q| std::cmp::Reverse(q.age_minutes));
    let main = html! {
        @if queue.is_empty() {
            p { "No deployment waits for the CAB." }
        } @else {
            table {
                caption { (queue.len()) " deployments waiting for votes, oldest first" }
                thead { tr { th scope="col" { "Deployment" } th scope="col" { "App" } th scope="col" { "Class" } th scope="col" { "Approvals" } th scope="col" { "Waiting" } } }
                tbody {
                    @for q in &queue {
                        tr {
                            td { a href={ "/deployments/" (q.deployment_id) } { code { (q.deployment_id) } } }
                            td { (q.app_name) }
                            td { (q.class.as_str()) }
                            td { (q.approvals) " of " (q.quorum) }
                            td { (q.age_minutes / 60) " h " (q.age_minutes % 60) " min" }
                        }
                    }
                }
            }
        }
    };
    layout("CAB queue", Some(who), &main)
}

/// One deployment: what was submitted, its state, its votes, and its history as entries.
pub fn deployment(
    id: uuid::Uuid,
    d: &projections::state::DeploymentRecord,
    history: &[events::Entry],
    who: &SignedIn,
) -> Markup {
    let main = html! {
        dl {
            dt { "Application" } dd { (d.submitted.app_name) }
            dt { "Status" } dd { (format!("{:?}", d.status)) }
            dt { "Blast-radius class" } dd { (d.class.as_str()) }
            dt { "Submitted by" } dd { (d.submitter) " at " (d.submitted_at.to_string()) }
            @if let Some(gate) = &d.gate {
                dt { "Score and threshold" } dd { (gate.score_centi) " (threshold " (gate.threshold) ")" }
            }
        }
        h2 { "Votes" }
        @if d.votes.is_empty() { p { "No votes yet." } }
        @else {
            ul { @for (member, (approve, _)) in d.votes.iter() { li { (member) ": " @if *approve { "approve" } @else { "reject" } } } }
        }
        h2 { "History" }
        table {
            caption { "Every entry of this deployment, with its inclusion proof" }
            thead { tr { th scope="col" { "Seq" } th scope="col" { "Type" } th scope="col" { "Actor" } th scope="col" { "Time" } th scope="col" { "Hash" } } }
            tbody {
                @for e in history {
                    tr {
                        td { a href={ "/api/v1/log/receipt?seq=" (e.seq) } { (e.seq) } }
                        td { (e.event_type) }
                        td { (e.actor) }
                        td { (e.time.to_string()) }
                        td { code { (e.hash().to_hex()[..16]) "…" } }
                    }
                }
            }
        }
    };
    layout(&format!("Deployment {id}"), Some(who), &main)
}

/// What the incident form posted, kept to show it again beside its errors.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct IncidentForm {
    /// The CSRF token.
    #[serde(default)]
    pub csrf: String,
    /// Each field as typed.
    #[serde(default)]
    pub deployment_id: String,
    #[serde(default)]
    #[allow(missing_docs)]
    pub severity: String,
    #[serde(default)]
    #[allow(missing_docs)]
    pub affected_user_count: String,
    #[serde(default)]
    #[allow(missing_docs)]
    pub downtime_minutes: String,
    #[serde(default)]
    #[allow(missing_docs)]
    pub business_impact_usd: String,
    #[serde(default)]
    #[allow(missing_docs)]
    pub preventable: Option<String>,
    #[serde(default)]
    #[allow(missing_docs)]
    pub preventability_notes: String,
}

/// The incidents (newest first) and, for incident reporters, the report form with each
/// field's error beside it.
pub fn incidents(
    s: &GovernanceState,
    who: &SignedIn,
    form: &IncidentForm,
    errors: &[(&str, String)],
) -> Markup {
    let error_for = |field: &str| {
        errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, e)| e.clone())
    };
    let field = |name: &'static str, label: &str, value: &str, kind: &str| {
        let error = error_for(name);
        html! {
            div.field {
                label for=(name) { (label) }
                input id=(name) name=(name) type=(kind) value=(value)
                    aria-invalid=[error.as_ref().map(|_| "true")]
                    aria-describedby=[error.as_ref().map(|_| format!("{name}-error"))];
                @if let Some(e) = error { p.error id={ (name) "-error" } { (e) } }
            }
        }
    };
    let mut list: Vec<_> = s.incidents.values().collect();
    list.sort_by_key(|i| std::cmp::Reverse(i.incident_date));
    let main = html! {
        @if who.holds(&[Role::IncidentReporter]) {
            section aria-labelledby="report" {
                h2 #report { "Report an incident" }
                @if let Some(e) = error_for("form") { p.error role="alert" { (e) } }
                form method="post" action="/incidents" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    (field("deployment_id", "Deployment id", &form.deployment_id, "text"))
                    div.field {
                        label for="severity" { "Severity" }
                        select #severity name="severity" {
                            @for (level, meaning) in [("P1", "critical outage"), ("P2", "major"), ("P3", "minor"), ("P4", "cosmetic")] {
                                option value=(level) selected[form.severity == level] { (level) " (" (meaning) ")" }
                            }
                        }
                        @if let Some(e) = error_for("severity") { p.error { (e) } }
                    }
                    (field("affected_user_count", "Users affected", &form.affected_user_count, "number"))
                    (field("downtime_minutes", "Downtime (minutes)", &form.downtime_minutes, "number"))
                    (field("business_impact_usd", "Business impact (USD, e.g. 1250.00)", &form.business_impact_usd, "text"))
                    div.field {
                        input #preventable type="checkbox" name="preventable" value="true" checked[form.preventable.is_some()];
                        label for="preventable" { "Preventable by our controls" }
                    }
                    (field("preventability_notes", "Notes", &form.preventability_notes, "text"))
                    button type="submit" { "Report" }
                }
            }
        }
        section aria-labelledby="list" {
            h2 #list { (list.len()) " incidents" }
            table {
                thead { tr { th scope="col" { "Date" } th scope="col" { "Severity" } th scope="col" { "Deployment" } th scope="col" { "Users" } th scope="col" { "Reporter" } } }
                tbody {
                    @for i in &list {
                        tr {
                            td { (i.incident_date.to_string()) }
                            td { (format!("{:?}", i.current.severity)) }
                            td { a href={ "/deployments/" (i.current.deployment_id) } { code { (i.current.deployment_id) } } }
                            td { (i.current.affected_user_count) }
                            td { (i.reporter) }
                        }
                    }
                }
            }
        }
    };
    layout("Incidents", Some(who), &main)
}

/// What an auditor needs to check the log: its size and head, the published checkpoint and the
/// key, and how to verify.
pub fn audit(log: &events::Log, published: Option<&str>, who: &SignedIn) -> Markup {
    let head = log.head();
    let main = html! {
        dl {
            dt { "Origin" } dd { code { (log.origin()) } }
            dt { "Entries" } dd { (head.size) }
            dt { "Head hash" } dd { code { (head.last_hash.to_hex()) } }
            dt { "Merkle root" } dd { code { (head.root.to_hex()) } }
            dt { "Verifier key" } dd { code { (log.verifier().map(ToString::to_string).unwrap_or_default()) } }
        }
        h2 { "Published checkpoint" }
        pre { (published.unwrap_or("none yet")) }
        h2 { "Check it yourself" }
        p { "The log is served as C2SP tiles under " a href="/tlog/checkpoint" { code { "/tlog" } } "; verify it with nothing of ours but the key:" }
        pre { "trustledger verify --tiles URL/tlog --key KEY" }
    };
    layout("Audit", Some(who), &main)
}
