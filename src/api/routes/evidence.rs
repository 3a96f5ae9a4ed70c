//! Evidence packages: recorded and read back as recorded.

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
            .body::<EvidenceDocument>()
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
}

async fn record_evidence(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(document): ApiJson<EvidenceDocument>,
) -> Result<Response, ApiError> {
    let evidence_id = state.gov.new_id();
    execute(
        &state,
        caller.0,
        Command::RecordEvidence {
            evidence_id,
            document,
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
