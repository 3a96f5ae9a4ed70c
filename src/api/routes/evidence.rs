//! Evidence packages: recorded (signed by a registered producer, on a log that requires it) and
//! read back as recorded.

use crate::api::*;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/api/v1/evidence",
            post(record_evidence),
            vec![op(
                "post",
                "Record an evidence package",
                &[Role::Submitter, Role::Operator],
            )
            .body::<SignedEvidence>()
            .returns::<Recorded>(201, "Recorded")],
        ),
        route(
            "/api/v1/evidence/{id}",
            get(get_evidence),
            vec![op("get", "An evidence package", ANY_READER)
                .query(AS_OF)
                .returns::<EvidenceView>(200, "The package as recorded")],
        ),
    ]
}

/// An evidence package and its producer's signature.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignedEvidence {
    /// The document. Its RFC 8785 canonical JSON is what the producer signs, and its SHA-256
    /// is the evidence hash.
    document: EvidenceDocument,
    /// The producer's armored SSH signature (`ssh-keygen -Y sign -n trustledger-evidence`) over
    /// the document's canonical JSON, by the key in force for the producer `generated_by`
    /// names. Required on a log that requires signed evidence.
    #[serde(default)]
    signature: Option<String>,
}

/// A recorded evidence package's id and canonical hash.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Recorded {
    evidence_id: Uuid,
    /// SHA-256 of the document's canonical JSON.
    evidence_hash: Option<String>,
}

/// An evidence package, read back as recorded.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct EvidenceView {
    evidence_id: Uuid,
    document: EvidenceDocument,
    evidence_hash: String,
    /// Who recorded it.
    recorded_by: Option<String>,
    /// The producer's SSH signature over the document's canonical JSON, as verified when it
    /// was recorded (absent on logs that never required signed evidence).
    signature: Option<String>,
}

async fn record_evidence(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(SignedEvidence {
        document,
        signature,
    }): ApiJson<SignedEvidence>,
) -> Result<Response, ApiError> {
    let evidence_id = state.gov.new_id();
    execute(
        &state,
        caller.0,
        Command::RecordEvidence {
            evidence_id,
            document,
            signature,
        },
    )
    .await?;
    let hash = state.gov.with_state(|s| {
        s.evidence
            .get(&evidence_id)
            .map(|e| e.evidence_hash.to_string())
    });
    Ok((
        StatusCode::CREATED,
        axum::Json(Recorded {
            evidence_id,
            evidence_hash: hash,
        }),
    )
        .into_response())
}

async fn get_evidence(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<EvidenceView>, ApiError> {
    caller.require(ANY_READER)?;
    // The state keeps what decisions read; the document is read back from its entry, after the
    // state is released (log reads must not hold up commands).
    let seq = state_as_of(&state, q.as_of.as_deref())
        .await?
        .evidence
        .get(&id)
        .map(|e| e.seq)
        .ok_or_else(|| ApiError::not_found(format!("unknown evidence {id}")))?;
    let entry = state.gov.log().get(seq)?;
    match entry.as_ref().map(Payload::decode) {
        Some(Ok(Some(Payload::EvidenceRecorded(recorded)))) if recorded.evidence_id == id => {
            Ok(axum::Json(EvidenceView {
                evidence_id: id,
                document: recorded.document,
                evidence_hash: recorded.evidence_hash,
                recorded_by: entry.map(|e| e.actor),
                signature: recorded.signature,
            }))
        }
        _ => {
            tracing::error!(%id, seq, "the state names an entry that does not record this evidence");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("evidence {id} could not be read back from seq {seq}"),
            ))
        }
    }
}
