//! Incidents: reports, updates, and the seed's filtered list (with and without the trailing slash).

use crate::api::*;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    const FILTERS: &[(&str, &str)] = &[
        ("severity", "string"),
        ("blast_radius", "string"),
        ("from", "string"),
        ("to", "string"),
        ("limit", "integer"),
        ("offset", "integer"),
        ("as_of", "string"),
    ];
    let both = |path| {
        route(
            path,
            post(report_incident).get(list_incidents),
            vec![
                op(
                    "post",
                    "Report an incident (the deployment context is looked up)",
                    &[Role::IncidentReporter],
                )
                .body::<IncidentBody>()
                .returns::<IncidentView>(201, "The incident recorded"),
                op("get", "Incidents by severity, class and date", ANY_READER)
                    .query(FILTERS)
                    .returns::<Incidents>(200, "A page of incidents"),
            ],
        )
    };
    vec![
        both("/api/v1/incidents"),
        both("/api/v1/incidents/"),
        route(
            "/api/v1/incidents/{id}",
            get(get_incident),
            vec![op("get", "An incident", ANY_READER)
                .query(AS_OF)
                .returns::<IncidentView>(200, "The incident")],
        ),
        route(
            "/api/v1/incidents/{id}/",
            get(get_incident),
            vec![op("get", "An incident", ANY_READER)
                .query(AS_OF)
                .returns::<IncidentView>(200, "The incident")],
        ),
        route(
            "/api/v1/incidents/{id}/updates",
            post(update_incident),
            vec![op("post", "Correct an incident", &[Role::IncidentReporter])
                .body::<IncidentUpdateBody>()
                .returns::<IncidentView>(200, "The incident as it now stands")],
        ),
    ]
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct IncidentBody {
    deployment_id: Uuid,
    severity: Severity,
    incident_date: Option<String>,
    affected_user_count: u64,
    downtime_minutes: u64,
    business_impact_usd: String,
    preventable: bool,
    #[serde(default)]
    preventability_notes: String,
    #[serde(default)]
    control_improvements: Vec<String>,
    incident_id: Option<Uuid>,
}

async fn report_incident(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(b): ApiJson<IncidentBody>,
) -> Result<Response, ApiError> {
    let incident_date = match &b.incident_date {
        Some(t) => parse_time("incident_date", t)?,
        // Not given: it happened now, by the log's clock.
        None => state.gov.current_time(),
    };
    let incident_id = b.incident_id.unwrap_or_else(|| state.gov.new_id());
    let report = IncidentReport {
        incident_id,
        deployment_id: b.deployment_id,
        severity: b.severity,
        incident_date,
        affected_user_count: b.affected_user_count,
        downtime_minutes: b.downtime_minutes,
        business_impact_usd: b.business_impact_usd,
        preventable: b.preventable,
        preventability_notes: b.preventability_notes,
        control_improvements: b.control_improvements,
    };
    execute(&state, caller.0, Command::ReportIncident(report)).await?;
    let body = current_incident(&state, &incident_id)?;
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// An incident as it stands (after its corrections).
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct IncidentView {
    incident: IncidentReported,
    reporter: String,
    reported_at: String,
    /// Corrections recorded since.
    updates: usize,
}

/// A page of incidents.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Incidents {
    /// How many match the filters.
    total: usize,
    incidents: Vec<IncidentView>,
}

fn incident_view(i: &projections::state::IncidentRecord) -> IncidentView {
    IncidentView {
        incident: i.current.clone(),
        reporter: i.reporter.clone(),
        reported_at: i.reported_at.to_string(),
        updates: i.updates.len(),
    }
}

/// The incident as it now stands; the caller's command was just decided, so it exists.
fn current_incident(state: &AppState, id: &Uuid) -> Result<IncidentView, ApiError> {
    state
        .gov
        .with_state(|s| s.incidents.get(id).map(incident_view))
        .ok_or_else(|| ApiError::not_found(format!("unknown incident {id}")))
}

#[derive(Deserialize)]
struct IncidentQuery {
    severity: Option<String>,
    blast_radius: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
    as_of: Option<String>,
}

async fn list_incidents(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<IncidentQuery>,
) -> Result<axum::Json<Incidents>, ApiError> {
    caller.require(ANY_READER)?;
    let invalid = |f: &str, m: &str| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            format!("{f}: {m}"),
        )
    };
    let filter = views::IncidentFilter {
        severity: q
            .severity
            .as_deref()
            .map(|s| Severity::parse(s).ok_or_else(|| invalid("severity", "one of P1, P2, P3, P4")))
            .transpose()?,
        blast_radius: q
            .blast_radius
            .as_deref()
            .map(|c| {
                BlastRadiusClass::parse(c).ok_or_else(|| invalid("blast_radius", "a class name"))
            })
            .transpose()?,
        from: q
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?,
        to: q.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
    };
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    let all = views::incidents(&s, &filter);
    let incidents = all
        .iter()
        .skip(q.offset.unwrap_or(0))
        .take(q.limit.unwrap_or(100).min(PAGE_MAX))
        .map(|i| incident_view(i))
        .collect();
    Ok(axum::Json(Incidents {
        total: all.len(),
        incidents,
    }))
}

async fn get_incident(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<IncidentView>, ApiError> {
    caller.require(ANY_READER)?;
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    s.incidents
        .get(&id)
        .map(incident_view)
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("unknown incident {id}")))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct IncidentUpdateBody {
    severity: Option<Severity>,
    affected_user_count: Option<u64>,
    downtime_minutes: Option<u64>,
    business_impact_usd: Option<String>,
    preventable: Option<bool>,
    notes: Option<String>,
}

async fn update_incident(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<IncidentUpdateBody>,
) -> Result<axum::Json<IncidentView>, ApiError> {
    let update = IncidentUpdated {
        incident_id: id,
        severity: b.severity,
        affected_user_count: b.affected_user_count,
        downtime_minutes: b.downtime_minutes,
        business_impact_usd: b.business_impact_usd,
        preventable: b.preventable,
        notes: b.notes,
    };
    execute(&state, caller.0, Command::UpdateIncident(update)).await?;
    Ok(axum::Json(current_incident(&state, &id)?))
}
