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
                a.skip href="#main" { "Skip to the content" }
                header {
                    a.brand href="/" { "trustledger" }
                    @if let Some(who) = who {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/" { "Overview" } }
                                li { a href="/queue" { "CAB queue" } }
                                li { a href="/votes" { "Votes" } }
                                li { a href="/incidents" { "Incidents" } }
                                li { a href="/models" { "Models" } }
                                li { a href="/audit" { "Audit" } }
                                li { a href="/keys" { "Keys" } }
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
                @if who.is_some() { script src="/assets/live.js" defer {} }
            }
        }
    }
}

/// When the scheduler evaluates next: a cadence after the last evaluation (or the last level
/// change), as `Governance::evaluate_if_due` decides it.
fn next_evaluation(s: &GovernanceState, cadence_hours: Option<u32>) -> Option<events::Timestamp> {
    let last = s.last_evaluation.as_ref().map(|e| e.at).or(s.level_since)?;
    let cadence = i64::from(cadence_hours?) * 3_600_000_000;
    Some(events::Timestamp::from_unix_micros(
        last.unix_micros() + cadence,
    ))
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
pub fn overview(
    s: &GovernanceState,
    trends: &Trends,
    who: &SignedIn,
    cadence_hours: Option<u32>,
) -> Markup {
    let at = s
        .last_time
        .unwrap_or(events::Timestamp::from_unix_micros(0));
    let preview = maturity::evaluate(s, at, false);
    let model = s.active_model().map(|m| m.proposal.clone());
    let main = html! {
        div #live-overview data-live {
        section aria-labelledby="level" {
            h2 #level { "Maturity level " (s.level) }
            p {
                "Mode: " strong { (s.current_level().map_or("none", |l| l.mode.as_str())) }
                " · risk model: " strong { (model.as_ref().map_or("none", |m| m.version.as_str())) }
                @if let Some(e) = &s.last_evaluation {
                    " · last evaluation: " (e.evaluation.outcome) " at " (e.at.to_string()) " (seq " (e.seq) ")"
                }
                @if let Some(next) = next_evaluation(s, cadence_hours) {
                    " · next scheduled evaluation: " (next.to_string())
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
        (trend_charts(s, trends))
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
        }
    };
    layout("Overview", Some(who), &main)
}

/// The overview's charts: weekly deployments, the change-failure rate against the level's cap,
/// CAB review time, the score histogram and the confusion matrix.
fn trend_charts(s: &GovernanceState, (weeks, report): &Trends) -> Markup {
    use super::charts::{chart, Kind, Overlay, Series};
    let categories: Vec<String> = weeks.iter().map(|w| w.week.clone()).collect();
    let count = |f: fn(&projections::trends::Week) -> u64| {
        weeks.iter().map(|w| Some(f(w) as f64)).collect::<Vec<_>>()
    };
    let percent = |bp: u32| f64::from(bp) / 100.0;
    let cap = s.current_level().and_then(|l| l.max_incident_rate_bp);
    let hours = |m: Option<i64>| m.map(|m| m as f64 / 60.0);
    let buckets: Vec<String> = (0..10)
        .map(|b| format!("{}–{}", b * 10, b * 10 + 10))
        .collect();
    let c = &report.confusion;
    html! {
        section aria-labelledby="trends" {
            h2 #trends { "Trends by week" }
            (chart("deployments", "Deployments per week", "deployments", &categories, &[
                Series { name: "released", values: count(|w| w.released) },
                Series { name: "auto-approved", values: count(|w| w.auto_approved) },
                Series { name: "blocked at the gate", values: count(|w| w.blocked) },
            ], Kind::Bars, &Overlay::default()))
            (chart("failure", "Change-failure rate (released deployments followed by an incident)", "%", &categories, &[
                Series { name: "change-failure rate", values: weeks.iter().map(|w| (w.released > 0).then(|| percent(w.change_failure_bp))).collect() },
            ], Kind::Lines, &Overlay {
                band: Some(("Wilson 95% interval".to_owned(), weeks.iter().map(|w| (percent(w.change_failure_wilson_bp.0), percent(w.change_failure_wilson_bp.1))).collect())),
                limit: cap.map(|bp| ("the level's incident-rate cap".to_owned(), percent(bp))),
            }))
            (chart("review", "CAB review time", "hours", &categories, &[
                Series { name: "median", values: weeks.iter().map(|w| hours(w.review_minutes_median)).collect() },
                Series { name: "90th percentile", values: weeks.iter().map(|w| hours(w.review_minutes_p90)).collect() },
            ], Kind::Lines, &Overlay::default()))
            (chart("scores", "Risk scores of all deployments", "deployments", &buckets, &[
                Series { name: "deployments", values: report.score_histogram.iter().map(|n| Some(*n as f64)).collect() },
            ], Kind::Bars, &Overlay::default()))
            table #confusion {
                caption { "Auto-approval against outcome, released deployments (AUC " (opt(report.auc_bp.map(projections::stats::bp_to_percent))) ")" }
                thead { tr { td {} th scope="col" { "Incident" } th scope="col" { "No incident" } } }
                tbody {
                    tr { th scope="row" { "Sent to the CAB" } td { (c.true_positive) } td { (c.false_positive) } }
                    tr { th scope="row" { "Auto-approved" } td { (c.false_negative) } td { (c.true_negative) } }
                }
            }
        }
    }
}

/// Weeks of history the overview's charts show.
pub const TREND_WEEKS: usize = 26;

/// What the overview's charts show: the weekly figures and the calibration report.
pub type Trends = (
    Vec<projections::trends::Week>,
    projections::calibration::CalibrationReport,
);

fn opt(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| v.to_string())
}

/// The CAB queue, oldest first.
pub fn queue(
    s: &GovernanceState,
    rules: &std::collections::HashMap<uuid::Uuid, String>,
    who: &SignedIn,
) -> Markup {
    let at = s
        .last_time
        .unwrap_or(events::Timestamp::from_unix_micros(0));
    let mut queue = views::cab_queue(s, at);
    queue.sort_by_key(|q| std::cmp::Reverse(q.age_minutes));
    let main = html! {
        div #live-queue data-live {
        @if queue.is_empty() {
            p { "No deployment waits for the CAB." }
        } @else {
            table {
                caption { (queue.len()) " deployments waiting for votes, oldest first" }
                thead { tr {
                    th scope="col" { "Deployment" } th scope="col" { "App" } th scope="col" { "Class (rule)" }
                    th scope="col" { "Score (model)" } th scope="col" { "Evidence" } th scope="col" { "Approvals" } th scope="col" { "Waiting" }
                } }
                tbody {
                    @for q in &queue {
                        @let d = s.deployments.get(&q.deployment_id);
                        @let evidence = d.as_ref().and_then(|d| s.evidence.get(&d.submitted.evidence_id));
                        tr {
                            td { a href={ "/deployments/" (q.deployment_id) } { code { (q.deployment_id.to_string().get(..8).unwrap_or_default()) "…" } } }
                            td { (q.app_name) }
                            td { (q.class.as_str()) @if let Some(rule) = rules.get(&q.deployment_id) { br; small { code { (rule) } } } }
                            td { @if let Some(d) = &d { (f64::from(d.submitted.score_centi) / 100.0) br; small { "model " (d.submitted.model_version) } } }
                            td { @match evidence.as_deref() {
                                None => "not on record",
                                Some(e) => { "by " (e.generated_by) "; tests " (e.tests_passed) "/" (e.tests_passed + e.tests_failed)
                                    "; critical findings " (e.scan_critical_findings) "; SBOM " (if e.sbom.is_some() { "given" } else { "none" }) },
                            } }
                            td { (q.approvals) " of " (q.quorum) @if q.approvals < q.quorum { br; small { (q.quorum - q.approvals) " missing" } } }
                            td { (waited(q.age_minutes)) }
                        }
                    }
                }
            }
        }
        }
    };
    layout("CAB queue", Some(who), &main)
}

/// A wait in minutes as a person reads it: minutes, hours and minutes, or days.
fn waited(minutes: i64) -> String {
    match minutes {
        m if m < 60 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h {} min", m / 60, m % 60),
        m => format!("{} days", m / (24 * 60)),
    }
}

/// One deployment: its class and the rule that gave it, the score with every factor, the
/// evidence, the votes and what quorum still needs, and its history as entries.
pub fn deployment(
    s: &GovernanceState,
    id: uuid::Uuid,
    d: &projections::state::DeploymentRecord,
    history: &[events::Entry],
    who: &SignedIn,
) -> Markup {
    let submitted = history
        .iter()
        .find_map(|e| match events::payloads::Payload::decode(e) {
            Ok(Some(events::payloads::Payload::DeploymentSubmitted(p))) => Some(p),
            _ => None,
        });
    let evidence = s.evidence.get(&d.submitted.evidence_id);
    let approvals = d.votes.values().filter(|(approve, _)| *approve).count();
    let quorum = s.quorum(d.class) as usize;
    let main = html! {
        div #live-deployment data-live {
        dl {
            dt { "Application" } dd { (d.submitted.app_name) @if let Some(p) = &submitted { " " (p.app_version) } }
            dt { "Status" } dd { (d.status.as_str()) }
            dt { "Submitted by" } dd { (d.submitter) " at " (d.submitted_at.to_string()) }
            dt { "Blast-radius class" } dd {
                (d.class.as_str())
                @if let Some(p) = &submitted { " — rule " code { (p.classification.rule) } " (policy v" (p.classification.policy_version) ")" }
            }
            dt { "Risk score" } dd { (f64::from(d.submitted.score_centi) / 100.0) " by model " (d.submitted.model_version)
                @if let Some(gate) = &d.gate { " (threshold " (f64::from(gate.threshold) / 100.0) ")" } }
        }
        @if let Some(p) = &submitted {
            table {
                caption { "How the score was derived" }
                thead { tr { th scope="col" { "Factor" } th scope="col" { "Value" } th scope="col" { "Weight" } th scope="col" { "From" } } }
                tbody { @for f in &p.factors { tr { th scope="row" { (f.name) } td { (f.value) } td { (f.weight_bp) " bp" } td { (f.basis) } } } }
            }
        }
        h2 { "Evidence" }
        @match evidence.as_deref() {
            None => p { "The evidence package is not on record." },
            Some(e) => dl {
                dt { "Produced and signed by" } dd { (e.generated_by) }
                dt { "Evidence hash" } dd { code { (e.evidence_hash.to_string()) } }
                @if let Some(a) = &e.first_artifact { dt { "Artifact" } dd { code { (a.sha256.to_string()) } " (" (a.size) " bytes)" } }
                dt { "Tests" } dd { (e.tests_passed) " passed, " (e.tests_failed) " failed" }
                dt { "Critical scan findings" } dd { (e.scan_critical_findings) }
                dt { "SBOM" } dd { @match &e.sbom { None => "none", Some(sbom) => { code { (sbom.sha256.to_string()) } @if sbom.signature.is_some() { " (signed)" } @else { " (unsigned)" } } } }
            },
        }
        h2 { "Votes" }
        p { (approvals) " of " (quorum) " approvals needed"
            @if approvals < quorum && d.status == projections::state::DeploymentStatus::PendingCab { ": " strong { (quorum - approvals) " more" } } }
        @if !d.votes.is_empty() {
            ul { @for (member, (approve, _)) in d.votes.iter() { li { (member) ": " @if *approve { "approve" } @else { "reject" } } } }
        }
        h2 { "History" }
        table {
            caption { "Every entry of this deployment; the seq links to its inclusion receipt" }
            thead { tr { th scope="col" { "Seq" } th scope="col" { "Type" } th scope="col" { "Actor" } th scope="col" { "Time" } th scope="col" { "Hash" } } }
            tbody {
                @for e in history {
                    tr {
                        td { a href={ "/api/v1/log/receipt?seq=" (e.seq) } { (e.seq) } }
                        td { (e.event_type) }
                        td { (e.actor) }
                        td { (e.time.to_string()) }
                        td { code title=(e.hash().to_hex()) { (e.hash().to_hex()[..16]) "…" } }
                    }
                }
            }
        }
        }
    };
    let vote = (d.status == projections::state::DeploymentStatus::PendingCab).then(|| {
        let ballot = super::ballots::Ballot {
            kind: projections::vote_statement::Kind::Deployment,
            subject: id.to_string(),
            title: String::new(),
            link: None,
            votes: d.votes.iter().map(|(m, (a, _))| (m.clone(), *a)).collect(),
        };
        let digest = hex::encode(d.submitted.evidence_hash);
        html! {
            h2 { "Your vote" }
            (super::ballots::vote_form(s, who, &ballot, &digest))
            script src="/assets/passkey.js" defer {}
        }
    });
    let main = html! { (main) @if let Some(vote) = vote { (vote) } };
    layout(&format!("Deployment {id}"), Some(who), &main)
}

/// The incident list's filters, as the filter form sends them.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct IncidentQuery {
    /// `P1`..`P4`, or empty for any.
    #[serde(default)]
    pub severity: String,
    /// A class name, or empty for any.
    #[serde(default)]
    pub blast_radius: String,
    /// `YYYY-MM-DD`: incidents on or after that day (UTC).
    #[serde(default)]
    pub from: String,
    /// `YYYY-MM-DD`: incidents on or before that day (UTC).
    #[serde(default)]
    pub to: String,
}

impl IncidentQuery {
    /// The view's filter, and what was not understood (and left out of it).
    fn to_filter(&self) -> (views::IncidentFilter, Option<String>) {
        let mut problems = Vec::new();
        let day = |text: &str, end: bool, problems: &mut Vec<String>| {
            if text.is_empty() {
                return None;
            }
            let time = if end {
                "T23:59:59.999999Z"
            } else {
                "T00:00:00.000000Z"
            };
            events::Timestamp::parse(&format!("{text}{time}"))
                .map_err(|_| problems.push(format!("{text:?} is not a date (YYYY-MM-DD)")))
                .ok()
        };
        let filter = views::IncidentFilter {
            severity: events::payloads::Severity::parse(&self.severity),
            blast_radius: BlastRadiusClass::parse(&self.blast_radius),
            from: day(&self.from, false, &mut problems),
            to: day(&self.to, true, &mut problems),
        };
        (filter, (!problems.is_empty()).then(|| problems.join("; ")))
    }
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
    (form, errors): (&IncidentForm, &[(&str, String)]),
    filter: &IncidentQuery,
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
    let (view_filter, filter_error) = filter.to_filter();
    let mut list = views::incidents(s, &view_filter);
    list.reverse();
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
        section #live-incidents aria-labelledby="list" data-live {
            h2 #list { (list.len()) " incidents" }
            form.filters method="get" action="/incidents" aria-label="Filter incidents" {
                div.field {
                    label for="f-severity" { "Severity" }
                    select #f-severity name="severity" {
                        option value="" { "any" }
                        @for level in ["P1", "P2", "P3", "P4"] { option value=(level) selected[filter.severity == level] { (level) } }
                    }
                }
                div.field {
                    label for="f-class" { "Blast radius" }
                    select #f-class name="blast_radius" {
                        option value="" { "any" }
                        @for class in BlastRadiusClass::ALL { option value=(class.as_str()) selected[filter.blast_radius == class.as_str()] { (class.as_str()) } }
                    }
                }
                div.field { label for="f-from" { "From" } input #f-from type="date" name="from" value=(filter.from); }
                div.field { label for="f-to" { "To" } input #f-to type="date" name="to" value=(filter.to); }
                button type="submit" { "Filter" }
                @if let Some(e) = filter_error { p.error role="alert" { (e) } }
            }
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

/// Risk-model versions side by side (thresholds, weights, votes, the backtest each cites) and
/// the maturity levels.
pub fn models(s: &GovernanceState, who: &SignedIn) -> Markup {
    let models: Vec<_> = s.models.values().collect();
    let weights: std::collections::BTreeSet<&String> = models
        .iter()
        .flat_map(|m| m.proposal.weights_bp.keys())
        .collect();
    let status = |m: &projections::state::ModelRecord| {
        if s.active_model.as_deref() == Some(m.proposal.version.as_str()) {
            "active"
        } else if m.approved_by.is_some() {
            "approved"
        } else {
            "proposed"
        }
    };
    let main = html! {
        section aria-labelledby="versions" {
            h2 #versions { "Risk-model versions" }
            table {
                thead { tr { th scope="col" { "Version" } @for m in &models { th scope="col" { (m.proposal.version) } } } }
                tbody {
                    tr { th scope="row" { "Status" } @for m in &models { td { (status(m)) } } }
                    tr { th scope="row" { "Mode" } @for m in &models { td { (m.proposal.mode) } } }
                    tr { th scope="row" { "Proposed by" } @for m in &models { td { (m.proposed_by) } } }
                    tr { th scope="row" { "Effective / review" } @for m in &models { td { (m.proposal.effective_date) " / " (m.proposal.review_date) } } }
                    @for class in BlastRadiusClass::ALL {
                        tr { th scope="row" { "Threshold, " (class.as_str()) } @for m in &models { td { (opt(m.proposal.thresholds.get(&class).map(|t| f64::from(*t) / 100.0))) } } }
                    }
                    @for w in &weights {
                        tr { th scope="row" { "Weight, " (w) } @for m in &models { td { (opt(m.proposal.weights_bp.get(*w).map(|bp| format!("{bp} bp")))) } } }
                    }
                    tr { th scope="row" { "Votes" } @for m in &models {
                        td { (m.votes.values().filter(|v| **v).count()) " approve, " (m.votes.values().filter(|v| !**v).count()) " reject"
                            @if let Some(by) = &m.approved_by { br; "approved by " (by.join(", ")) } }
                    } }
                    tr { th scope="row" { "Backtest cited" } @for m in &models {
                        td { @match &m.proposal.backtest {
                            None => "none",
                            Some(b) => { "over the first " (b.log_size) " entries; report " code title=(b.report_sha256) { (b.report_sha256.get(..12).unwrap_or_default()) "…" } },
                        }
                        br; a href={ "/models/" (m.proposal.version) "/backtest" } { "the backtest report" } }
                    } }
                }
            }
            p { "A cited backtest is re-run by the service before the proposal is recorded and again by "
                code { "trustledger audit" } "; " code { "trustledger backtest --model FILE" } " prints the full report." }
        }
        section aria-labelledby="levels" {
            h2 #levels { "Maturity levels" }
            table {
                thead { tr { th scope="col" { "Level" } th scope="col" { "Mode" } th scope="col" { "Minimum weeks" } th scope="col" { "Incident-rate cap" } th scope="col" { "P1 / P2 allowed" } } }
                tbody {
                    @for l in &s.levels {
                        tr {
                            th scope="row" { (l.level) @if l.level == s.level { " (current)" } }
                            td { (l.mode) }
                            td { (l.min_weeks) }
                            td { (opt(l.max_incident_rate_bp.map(projections::stats::bp_to_percent))) }
                            td { (opt(l.max_p1)) " / " (opt(l.max_p2)) }
                        }
                    }
                }
            }
        }
    };
    layout("Models and maturity", Some(who), &main)
}

/// A model's backtest report: what it would have decided, class by class, against what was
/// recorded, and whether the report is the one its proposal cites.
pub fn backtest(
    model: &events::payloads::RiskModelProposed,
    report: &replay::backtest::BacktestReport,
    who: &SignedIn,
) -> Markup {
    let digest = report.sha256();
    let main = html! {
        p {
            "Model " strong { (model.version) } " replayed over the log's first " (report.log_size) " entries. "
            @match &model.backtest {
                Some(cited) if cited.report_sha256 == digest => { "This is the report its proposal cites (" code { (digest.get(..12).unwrap_or_default()) "…" } ")." }
                Some(cited) => strong { "Its proposal cites another report: " code { (cited.report_sha256) } "." },
                None => { "Its proposal cites no backtest (report " code { (digest.get(..12).unwrap_or_default()) "…" } ")." }
            }
        }
        table {
            caption { "Recorded decisions against the candidate's, by class (AUC recorded "
                (opt(report.recorded_auc_bp.map(projections::stats::bp_to_percent))) ", candidate "
                (opt(report.candidate_auc_bp.map(projections::stats::bp_to_percent))) ")" }
            thead { tr {
                th scope="col" { "Class" } th scope="col" { "Deployments" } th scope="col" { "Auto-approved: recorded / candidate" }
                th scope="col" { "To the CAB: recorded / candidate" } th scope="col" { "Identical" } th scope="col" { "Incidents let through" }
            } }
            tbody {
                @for (class, r) in &report.classes {
                    tr {
                        th scope="row" { (class.as_str()) }
                        td { (r.deployments) }
                        td { (r.auto_recorded) " / " (r.auto_candidate) }
                        td { (r.cab_recorded) " / " (r.cab_candidate) }
                        td { (r.identical) }
                        td { @if r.incidents_let_through.is_empty() { "none" } @else {
                            @for (severity, n) in &r.incidents_let_through { (format!("{severity:?}")) ": " (n) " " }
                        } }
                    }
                }
            }
        }
    };
    layout(
        &format!("Backtest of model {}", model.version),
        Some(who),
        &main,
    )
}

/// What an auditor needs to check the log: its size and head, the published checkpoint and the
/// key, and how to verify.
pub fn audit(log: &events::Log, published: Option<&str>, who: &SignedIn) -> Markup {
    let head = log.head();
    let main = html! {
        div #live-audit data-live {
        dl {
            dt { "Origin" } dd { code { (log.origin()) } }
            dt { "Entries" } dd { (head.size) }
            dt { "Head hash" } dd { code { (head.last_hash.to_hex()) } }
            dt { "Merkle root" } dd { code { (head.root.to_hex()) } }
            dt { "Verifier key" } dd { code { (log.verifier().map(ToString::to_string).unwrap_or_default()) } }
        }
        h2 { "Published checkpoint" }
        pre { (published.unwrap_or("none yet")) }
        }
        h2 { "Check it yourself" }
        @if who.holds(&[Role::Auditor, Role::Operator, Role::Admin]) {
            p { a href="/audit/bundle.tar" download { "Download the export bundle" } " (a tar of "
                code { "entries.jsonl" } ", " code { "checkpoint" } ", " code { "verifier-key" } "), then: " }
            pre { "tar xf trustledger-export.tar && trustledger verify --bundle trustledger-export --key KEY" }
        }
        p { "The log is served as C2SP tiles under " a href="/tlog/checkpoint" { code { "/tlog" } } "; verify it with nothing of ours but the key:" }
        pre { "trustledger verify --tiles URL/tlog --key KEY" }
    };
    layout("Audit", Some(who), &main)
}
