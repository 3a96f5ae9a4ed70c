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
            .json(evidence_schema())],
        ),
        route(
            "/api/v1/evidence/{id}",
            get(get_evidence),
            vec![op("get", "An evidence package", ANY_READER).query(AS_OF)],
        ),
    ]
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
        axum::Json(json!({"evidence_id": evidence_id, "evidence_hash": hash})),
    )
        .into_response())
}

async fn get_evidence(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Value>, ApiError> {
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
            Ok(axum::Json(json!({
                "evidence_id": id,
                "document": recorded.document,
                "evidence_hash": recorded.evidence_hash,
                "recorded_by": entry.as_ref().map(|e| &e.actor),
            })))
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

fn evidence_schema() -> Value {
    obj(
        &[
            ("artifacts", "array"),
            ("sbom", "object"),
            ("tests_passed", "integer"),
            ("tests_failed", "integer"),
            ("scan_critical_findings", "integer"),
            ("generated_by", "string"),
            ("packaged_by", "string"),
        ],
        &[
            "artifacts",
            "tests_passed",
            "tests_failed",
            "scan_critical_findings",
            "generated_by",
            "packaged_by",
        ],
    )
}
