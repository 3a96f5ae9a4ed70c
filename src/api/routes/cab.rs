//! The CAB: membership and the review queue.

use crate::api::*;
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
    ]
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    member: String,
}

/// The CAB's members.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Members {
    /// Their principal names.
    members: BTreeSet<String>,
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
    execute(&state, caller.0, Command::AddCabMember { member: b.member }).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Members {
            members: state.gov.with_state(|s| s.cab_members.clone()),
        }),
    )
        .into_response())
}

async fn list_members(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<AsOfQuery>,
) -> Result<axum::Json<Members>, ApiError> {
    caller.require(ANY_READER)?;
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    Ok(axum::Json(Members {
        members: s.cab_members.clone(),
    }))
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
