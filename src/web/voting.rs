//! The routes through which CAB members vote in the browser and register passkeys. Votes and
//! registrations are the same commands the API and the CLI send (`RegisterPasskey`, `Vote`,
//! `VoteRiskModel`, ...), decided by the same policy, which checks the passkey's signature.

use super::ballots::{self, Notice};
use super::session::SignedIn;
use super::{check_csrf, html, signed_in, NotShown, Page};
use crate::api::AppState;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use events::payloads::PasskeyAssertion;
use projections::policy::{self, Command, SignedVote, VoteProof};
use projections::vote_statement::Kind;
use std::sync::Arc;

/// The script that signs with passkeys.
const PASSKEY_JS: &str = include_str!("assets/passkey.js");

/// The routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/keys", get(keys))
        .route("/keys/passkeys", axum::routing::post(register_passkey))
        .route("/votes", get(open_votes).post(vote))
        .route("/assets/passkey.js", get(passkey_js))
}

async fn passkey_js() -> Response {
    super::asset("text/javascript; charset=utf-8", PASSKEY_JS)
}

/// The web origin pages are served at, and the relying party id passkeys are scoped to (its
/// host).
fn web_origin(state: &AppState) -> Option<(String, String)> {
    let origin = state.web_origin.get()?;
    let host = origin.split_once("://")?.1;
    let rp_id = host.rsplit_once(':').map_or(host, |(h, _)| h);
    Some((origin.clone(), rp_id.to_owned()))
}

#[derive(serde::Deserialize)]
struct KeysQuery {
    registered: Option<String>,
}

async fn keys(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<KeysQuery>,
) -> Page {
    let who = signed_in(&state, &headers)?;
    let notice = if query.registered.is_some() {
        Notice::Done(
            "Your passkey is registered: votes you sign with it are recorded with its assertion.",
        )
    } else {
        Notice::None
    };
    Ok(html(&keys_page(&state, &who, &notice)))
}

fn keys_page(state: &AppState, who: &SignedIn, notice: &Notice<'_>) -> maud::Markup {
    let requested_at = state.gov.current_time().to_string();
    match web_origin(state) {
        Some((origin, rp_id)) => state
            .gov
            .with_state(|s| ballots::keys(s, who, (&origin, &rp_id), &requested_at, notice)),
        None => super::pages::layout(
            "Your vote keys",
            Some(who),
            &maud::html! { p { "This server has no web origin set (serve --web-origin), so it cannot register passkeys." } },
        ),
    }
}

#[derive(serde::Deserialize)]
struct PasskeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    requested_at: String,
    #[serde(default)]
    credential_id: String,
    #[serde(default)]
    client_data_json: String,
    #[serde(default)]
    attestation_object: String,
}

async fn register_passkey(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<PasskeyForm>,
) -> Page {
    let who = signed_in(&state, &headers)?;
    check_csrf(&who, &form.csrf)?;
    let refuse =
        |status, why: &str| NotShown::Page(status, keys_page(&state, &who, &Notice::Error(why)));
    let Some((_, rp_id)) = web_origin(&state) else {
        return Err(refuse(
            StatusCode::CONFLICT,
            "This server has no web origin set.",
        ));
    };
    let command = Command::RegisterPasskey {
        member: who.principal.name.clone(),
        requested_at: form.requested_at,
        rp_id,
        credential_id: form.credential_id,
        client_data_json: form.client_data_json,
        attestation_object: form.attestation_object,
    };
    match state.gov.submit(&who.principal, command).await {
        Ok(_) => Ok(Redirect::to("/keys?registered=1").into_response()),
        Err(e) => {
            let (status, why) = refusal(e);
            Err(refuse(status, &why))
        }
    }
}

/// The status the API answers a refused command with (403 a rule or role, 409 a conflict, 422
/// a field), and why, for the page that says so.
pub(super) fn refusal(e: crate::governance::CommandError) -> (StatusCode, String) {
    let why = e.to_string();
    (crate::api::ApiError::from(e).status(), why)
}

async fn open_votes(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Page {
    let who = signed_in(&state, &headers)?;
    let now = state.gov.current_time();
    Ok(html(&state.gov.with_state(|s| {
        let open: Vec<_> = ballots::open_ballots(s, now)
            .into_iter()
            .filter_map(|b| {
                let digest = policy::vote_digest(s, b.kind, &b.subject).ok()?;
                Some((b, digest))
            })
            .collect();
        ballots::proposals(s, &who, &open)
    })))
}

/// A vote as its form posts it; the passkey fields only when a passkey signed it.
#[derive(serde::Deserialize)]
struct VoteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    rationale: String,
    signed_at: Option<String>,
    credential_id: Option<String>,
    authenticator_data: Option<String>,
    client_data_json: Option<String>,
    signature: Option<String>,
}

impl VoteForm {
    /// The passkey's signature, when the form carries one (all of its fields or none).
    fn signature(&self) -> Result<Option<SignedVote>, String> {
        match (
            &self.signed_at,
            &self.credential_id,
            &self.authenticator_data,
            &self.client_data_json,
            &self.signature,
        ) {
            (None, None, None, None, None) => Ok(None),
            (Some(at), Some(id), Some(data), Some(client), Some(signature)) => {
                Ok(Some(SignedVote {
                    signed_at: at.clone(),
                    proof: VoteProof::Passkey(PasskeyAssertion {
                        credential_id: id.clone(),
                        authenticator_data: data.clone(),
                        client_data_json: client.clone(),
                        signature: signature.clone(),
                    }),
                }))
            }
            _ => Err("The passkey's signature came without all of its parts: sign again.".into()),
        }
    }
}

/// The command a vote form asks for.
fn vote_command(form: &VoteForm) -> Result<(Command, String), String> {
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err("Choose approve or reject.".into()),
    };
    let kind = Kind::parse(&form.kind).ok_or("Unknown kind of vote.")?;
    // Browsers post a textarea's line breaks as CRLF; the statement was signed over LF.
    let rationale = form.rationale.replace("\r\n", "\n");
    let signature = form.signature()?;
    let uuid = || uuid::Uuid::parse_str(&form.subject).map_err(|_| "Unknown subject.".to_owned());
    let back = match kind {
        Kind::Deployment | Kind::BreakglassReview => format!("/deployments/{}", form.subject),
        _ => "/votes".to_owned(),
    };
    let command = match kind {
        Kind::Deployment => Command::Vote {
            deployment_id: uuid()?,
            approve,
            rationale,
            signature,
        },
        Kind::BreakglassReview => Command::VoteBreakglassReview {
            deployment_id: uuid()?,
            justified: approve,
            findings: rationale,
            signature,
        },
        Kind::RiskModel => Command::VoteRiskModel {
            version: form.subject.clone(),
            approve,
            rationale,
            signature,
        },
        Kind::Exception => Command::VoteException {
            exception_id: uuid()?,
            approve,
            rationale,
            signature,
        },
        Kind::Change => Command::VoteChange {
            proposal_id: uuid()?,
            approve,
            rationale,
            signature,
        },
        Kind::RegistryChange => Command::VoteRegistryChange {
            proposal_id: uuid()?,
            approve,
            rationale,
            signature,
        },
        Kind::MaturityProgression => Command::VoteProgression {
            to_level: form.subject.parse().map_err(|_| "Unknown level.")?,
            approve,
            rationale,
            signature,
        },
    };
    Ok((command, back))
}

async fn vote(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<VoteForm>,
) -> Page {
    let who = signed_in(&state, &headers)?;
    check_csrf(&who, &form.csrf)?;
    let refused =
        |status, why: &str| NotShown::message(status, "Vote not recorded", Some(&who), why);
    let (command, back) = vote_command(&form).map_err(|e| refused(StatusCode::BAD_REQUEST, &e))?;
    match state.gov.submit(&who.principal, command).await {
        Ok(_) => Ok(Redirect::to(&back).into_response()),
        Err(e) => {
            let (status, why) = refusal(e);
            Err(refused(status, &why))
        }
    }
}
