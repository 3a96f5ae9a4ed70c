//! Evidence producers: the CI systems whose SSH keys sign evidence packages.

use crate::api::*;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/api/v1/evidence-producers",
            get(list_producers),
            vec![op("get", "Evidence producers and their keys in force", ANY_READER)
                .query(AS_OF)
                .returns::<Producers>(200, "The producers")],
        ),
        route(
            "/api/v1/evidence-producers/{producer}",
            put(set_producer),
            vec![op(
                "put",
                "Set the key a producer signs evidence with (an admin, only before the CAB's first vote; after, a CAB proposal of kind set_evidence_producer)",
                &[Role::Admin],
            )
            .body::<ProducerKeyBody>()
            .returns::<Producers>(200, "The producers now")],
        ),
        route(
            "/api/v1/evidence-producers/{producer}/revocation",
            post(revoke_producer),
            vec![op(
                "post",
                "Stop trusting a producer's key (never registered again)",
                &[Role::Admin],
            )
            .body::<ReasonBody>()
            .returns::<Producers>(200, "The producers now")],
        ),
    ]
}

/// A producer's key.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProducerKeyBody {
    /// The OpenSSH Ed25519 public key line (`ssh-ed25519 AAAA...`).
    ssh_key: String,
}

/// The evidence producers.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Producers {
    /// Each producer's key in force: its `authorized_keys` line and fingerprint.
    producers: BTreeMap<String, ProducerKeyView>,
    /// Whether every evidence package must be signed by one of them.
    signed_evidence_required: bool,
}

/// A producer's key in force.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ProducerKeyView {
    /// `ssh-ed25519 AAAA...`.
    public_key: String,
    /// `SHA256:...`.
    fingerprint: String,
}

impl Producers {
    fn of(s: &GovernanceState) -> Self {
        Self {
            producers: s
                .evidence_producers
                .iter()
                .map(|(p, k)| {
                    (
                        p.clone(),
                        ProducerKeyView {
                            public_key: k.public_key.clone(),
                            fingerprint: k.fingerprint.clone(),
                        },
                    )
                })
                .collect(),
            signed_evidence_required: s.signed_evidence_required,
        }
    }
}

async fn list_producers(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Producers>, ApiError> {
    caller.require(ANY_READER)?;
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    Ok(axum::Json(Producers::of(&s)))
}

async fn set_producer(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(producer): Path<String>,
    ApiJson(body): ApiJson<ProducerKeyBody>,
) -> Result<axum::Json<Producers>, ApiError> {
    let command = Command::SetEvidenceProducer {
        producer,
        ssh_key: body.ssh_key,
    };
    execute(&state, caller.0, command).await?;
    Ok(axum::Json(state.gov.with_state(Producers::of)))
}

async fn revoke_producer(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(producer): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<axum::Json<Producers>, ApiError> {
    let command = Command::RevokeEvidenceProducer {
        producer,
        reason: body.reason,
    };
    execute(&state, caller.0, command).await?;
    Ok(axum::Json(state.gov.with_state(Producers::of)))
}
