//! The CAB: membership and the review queue.

use crate::api::*;
use projections::vote_statement::{self, Kind};
use std::collections::BTreeSet;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/api/v1/cab/queue",
            get(cab_queue),
            vec![op(
                "get",
                "Deployments pending the CAB, oldest first",
                ANY_READER,
            )
            .query(AS_OF)
            .returns::<CabQueue>(200, "The queue")],
        ),
        route(
            "/api/v1/cab/members",
            post(add_member).get(list_members),
            vec![
                op("post", "Add a CAB member", &[Role::Admin])
                    .returns::<Members>(201, "The members now")
                    .body::<MemberBody>(),
                op("get", "CAB members", ANY_READER)
                    .query(AS_OF)
                    .returns::<Members>(200, "The members"),
            ],
        ),
        route(
            "/api/v1/cab/members/{member}",
            axum::routing::delete(remove_member),
            vec![op("delete", "Remove a CAB member", &[Role::Admin]).no_content()],
        ),
        route(
            "/api/v1/cab/members/{member}/key",
            put(register_key),
            vec![op(
                "put",
                "Register the key the member signs votes with from now on (the member only)",
                &[Role::Cab],
            )
            .body::<KeyBody>()
            .returns::<Members>(200, "The members now")],
        ),
        route(
            "/api/v1/cab/members/{member}/key/revocation",
            post(revoke_key),
            vec![op(
                "post",
                "Revoke the member's key in force (the member or an admin); never registered again",
                &[Role::Admin, Role::Cab],
            )
            .body::<KeyRevocationBody>()
            .returns::<Members>(200, "The members now")],
        ),
        route(
            "/api/v1/cab/signed-votes",
            post(require_signed_votes),
            vec![op(
                "post",
                "Require every vote from now on to be signed (every new log does from genesis)",
                &[Role::Admin],
            )
            .no_content()],
        ),
        route(
            "/api/v1/cab/vote-statement",
            get(vote_statement),
            vec![op(
                "get",
                "The exact statement a vote is signed over (ssh-keygen -Y sign -n trustledger-vote)",
                ANY_READER,
            )
            .query(&[
                ("kind", "string"),
                ("subject", "string"),
                ("approve", "boolean"),
                ("rationale_sha256", "string"),
                ("signed_at", "string"),
            ])
            .returns::<VoteStatement>(200, "The statement")],
        ),
    ]
}

/// A new member.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    /// Their principal name.
    member: String,
    /// The OpenSSH Ed25519 public key they sign votes with (`ssh-ed25519 AAAA...`): required on
    /// a log that requires signed votes.
    #[serde(default)]
    ssh_key: Option<String>,
}

/// A member's new key.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    /// The OpenSSH Ed25519 public key line.
    ssh_key: String,
}

/// Which key to revoke, and why.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct KeyRevocationBody {
    /// The key's fingerprint (`SHA256:...`, as `ssh-keygen -l` prints it).
    fingerprint: String,
    /// Why.
    reason: String,
}

/// The CAB's members.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Members {
    /// Their principal names.
    members: BTreeSet<String>,
    /// Each member's key in force: its `authorized_keys` line and fingerprint.
    keys: BTreeMap<String, MemberKeyView>,
    /// Whether every vote must be signed.
    signed_votes_required: bool,
}

/// A member's key in force.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct MemberKeyView {
    /// `ssh-ed25519 AAAA...`.
    public_key: String,
    /// `SHA256:...`.
    fingerprint: String,
}

impl Members {
    fn of(s: &GovernanceState) -> Self {
        Self {
            members: s.cab_members.clone(),
            keys: s
                .member_keys
                .iter()
                .map(|(m, k)| {
                    (
                        m.clone(),
                        MemberKeyView {
                            public_key: k.public_key.clone(),
                            fingerprint: k.fingerprint.clone(),
                        },
                    )
                })
                .collect(),
            signed_votes_required: s.signed_votes_required,
        }
    }
}

#[derive(Deserialize)]
struct StatementQuery {
    kind: String,
    subject: String,
    approve: bool,
    rationale_sha256: String,
    signed_at: Option<String>,
}

/// What a vote is signed over.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct VoteStatement {
    /// The exact bytes to sign, as UTF-8 text (each line ends with a line feed).
    statement: String,
    /// The digest it names (what is approved, as the log holds it now).
    digest: String,
    /// The log's origin.
    origin: String,
    /// The signing time it names (the service's clock when not asked for one).
    signed_at: String,
}

/// Deployments waiting for CAB votes, oldest first.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct CabQueue {
    /// The time the queue is judged at.
    as_of: String,
    /// What waits.
    pending: Vec<Queued>,
}

/// One deployment waiting for votes.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Queued {
    deployment_id: Uuid,
    app_name: String,
    /// Its blast-radius class.
    class: &'static str,
    approvals: u32,
    quorum: u32,
    age_minutes: i64,
}

async fn add_member(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(b): ApiJson<MemberBody>,
) -> Result<Response, ApiError> {
    execute(
        &state,
        caller.0,
        Command::AddCabMember {
            member: b.member,
            ssh_key: b.ssh_key,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(state.gov.with_state(Members::of)),
    )
        .into_response())
}

async fn register_key(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(member): Path<String>,
    ApiJson(b): ApiJson<KeyBody>,
) -> Result<axum::Json<Members>, ApiError> {
    let command = Command::RegisterMemberKey {
        member,
        ssh_key: b.ssh_key,
    };
    execute(&state, caller.0, command).await?;
    Ok(axum::Json(state.gov.with_state(Members::of)))
}

async fn revoke_key(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(member): Path<String>,
    ApiJson(b): ApiJson<KeyRevocationBody>,
) -> Result<axum::Json<Members>, ApiError> {
    let command = Command::RevokeMemberKey {
        member,
        fingerprint: b.fingerprint,
        reason: b.reason,
    };
    execute(&state, caller.0, command).await?;
    Ok(axum::Json(state.gov.with_state(Members::of)))
}

async fn require_signed_votes(
    caller: Caller,
    State(state): State<Arc<AppState>>,
) -> Result<StatusCode, ApiError> {
    execute(&state, caller.0, Command::RequireSignedVotes).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn vote_statement(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<StatementQuery>,
) -> Result<axum::Json<VoteStatement>, ApiError> {
    caller.require(ANY_READER)?;
    let kind = Kind::parse(&q.kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "kind {:?} is not deployment, risk_model, maturity_progression, exception, breakglass_review, registry_change or change",
            q.kind
        ))
    })?;
    if events::Digest::from_hex(&q.rationale_sha256).is_none() {
        return Err(ApiError::bad_request(
            "rationale_sha256 must be 64 lowercase hex digits",
        ));
    }
    // The subject as the policy spells it (a lowercase hyphenated id, a level without zeros).
    let subject = match kind {
        Kind::Deployment
        | Kind::Exception
        | Kind::BreakglassReview
        | Kind::RegistryChange
        | Kind::Change => Uuid::parse_str(&q.subject)
            .map(|id| id.to_string())
            .map_err(|_| ApiError::bad_request("subject must be an id"))?,
        Kind::MaturityProgression => q
            .subject
            .parse::<u32>()
            .map(|level| level.to_string())
            .map_err(|_| ApiError::bad_request("subject must be a maturity level"))?,
        Kind::RiskModel => q.subject,
    };
    let signed_at = match q.signed_at {
        Some(t) => Timestamp::parse(&t)
            .map_err(|_| ApiError::bad_request("signed_at must be YYYY-MM-DDTHH:MM:SS.ffffffZ"))?,
        None => state.gov.current_time(),
    }
    .to_string();
    let (origin, digest) = state
        .gov
        .with_state(|s| policy::vote_digest(s, kind, &subject).map(|d| (s.origin.clone(), d)))
        .map_err(|r| ApiError::from(crate::governance::CommandError::from(r)))?;
    let statement = vote_statement::Statement {
        kind,
        origin: &origin,
        subject: &subject,
        digest: &digest,
        approve: q.approve,
        rationale: "",
        signed_at: &signed_at,
    }
    .to_text_with_rationale_sha256(&q.rationale_sha256);
    Ok(axum::Json(VoteStatement {
        statement,
        digest,
        origin,
        signed_at,
    }))
}

async fn list_members(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Members>, ApiError> {
    caller.require(ANY_READER)?;
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    Ok(axum::Json(Members::of(&s)))
}

async fn remove_member(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(member): Path<String>,
) -> Result<StatusCode, ApiError> {
    execute(&state, caller.0, Command::RemoveCabMember { member }).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn cab_queue(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<CabQueue>, ApiError> {
    caller.require(ANY_READER)?;
    let (s, at) = state_and_time(&state, q.as_of.as_deref()).await?;
    let queue = views::cab_queue(&s, at);
    Ok(axum::Json(CabQueue {
        as_of: at.to_string(),
        pending: queue
            .into_iter()
            .map(|q| Queued {
                deployment_id: q.deployment_id,
                app_name: q.app_name,
                class: q.class.as_str(),
                approvals: q.approvals,
                quorum: q.quorum,
                age_minutes: q.age_minutes,
            })
            .collect(),
    }))
}
