//! Maturity: status, evaluation, progression votes, calibration.

use crate::api::*;
use std::collections::BTreeSet;

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    let evaluate_op = || {
        op(
            "post",
            "Evaluate the maturity level now",
            &[Role::Operator, Role::Admin, Role::Cab],
        )
        .optional_body::<EvaluateBody>()
        .returns::<Evaluated>(200, "The evaluation recorded")
    };
    let status_op = || {
        op(
            "get",
            "Level, thresholds in force and next-level criteria",
            ANY_READER,
        )
        .query(&[("as_of", "string"), ("strict", "boolean")])
        .returns::<MaturityStatus>(200, "The status")
    };
    const CLASSIFY: &[(&str, &str)] = &[
        ("app_name", "string"),
        ("requires_admin", "boolean"),
        ("target_user_count", "integer"),
        ("service_tier", "string"),
        ("as_of", "string"),
    ];
    const CALIBRATION: &[(&str, &str)] = &[
        ("class", "string"),
        ("level", "integer"),
        ("from", "string"),
        ("to", "string"),
        ("as_of", "string"),
    ];
    vec![
        route(
            "/api/v1/maturity/evaluate",
            post(evaluate),
            vec![evaluate_op()],
        ),
        route(
            "/api/v1/maturity/evaluate/",
            post(evaluate),
            vec![evaluate_op()],
        ),
        route("/api/v1/maturity/status", get(status), vec![status_op()]),
        route("/api/v1/maturity/status/", get(status), vec![status_op()]),
        route(
            "/api/v1/maturity/progression",
            post(vote_progression),
            vec![
                op("post", "A CAB member approves progression", &[Role::Cab])
                    .body::<ProgressionBody>()
                    .returns::<Progression>(200, "The votes now"),
            ],
        ),
        route(
            "/api/v1/blast-radius/classify",
            get(classify),
            vec![op("get", "Classify without recording anything", ANY_READER)
                .query(CLASSIFY)
                .returns::<Classified>(200, "The class")],
        ),
        route(
            "/api/v1/blast-radius/classify/",
            get(classify),
            vec![op("get", "Classify without recording anything", ANY_READER)
                .query(CLASSIFY)
                .returns::<Classified>(200, "The class")],
        ),
        route(
            "/api/v1/calibration",
            get(calibration_report),
            vec![op("get", "Calibration statistics", ANY_READER)
                .query(CALIBRATION)
                .returns::<Calibration>(200, "The report")],
        ),
        route(
            "/api/v1/calibration/",
            get(calibration_report),
            vec![op("get", "Calibration statistics", ANY_READER)
                .query(CALIBRATION)
                .returns::<Calibration>(200, "The report")],
        ),
    ]
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EvaluateBody {
    #[serde(default)]
    strict: bool,
}

/// An evaluation just recorded, and the level after it.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Evaluated {
    evaluation: Option<MaturityEvaluated>,
    level_now: u32,
}

/// Where maturity stands: the level, its thresholds, and each criterion for the next level.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct MaturityStatus {
    level: u32,
    /// The level's mode (e.g. `Baseline`).
    mode: Option<String>,
    /// Since when the level is in force.
    since: Option<String>,
    /// The last seq folded.
    as_of_seq: Option<u64>,
    /// The risk model version in force.
    risk_model: Option<String>,
    /// Per class: the thresholds in force and the quorum.
    thresholds: BTreeMap<&'static str, ClassThreshold>,
    next_level: Option<u32>,
    /// Each progression criterion: required, actual, met.
    criteria: Vec<Criterion>,
    outcome_if_evaluated_now: String,
    stats: WindowStats,
    last_evaluation: Option<LastEvaluation>,
}

/// A class's auto-approval thresholds (score in hundredths) and its CAB quorum.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ClassThreshold {
    /// The lower of the model's and the level's.
    effective: Option<u32>,
    model: Option<u32>,
    level: Option<u32>,
    quorum: u32,
}

/// The last recorded evaluation.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct LastEvaluation {
    seq: u64,
    at: String,
    outcome: String,
}

/// A classification by the policy in force.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Classified {
    class: &'static str,
    /// The rule that decided it (`registry:<app id>` when the registry did).
    rule: String,
    policy_version: u32,
    quorum: u32,
    /// The registered application the name matched (absent: unregistered, never auto-approved;
    /// or a log without a registry).
    #[serde(skip_serializing_if = "Option::is_none")]
    registered_app: Option<String>,
    /// Where each input came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<String>,
}

/// The calibration report (rates as percentages with two decimals).
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Calibration {
    deployments: u64,
    auto_approved: u64,
    auto_approval_rate: String,
    released: u64,
    change_failure_rate: String,
    /// The Wilson 95% interval of the change-failure rate.
    change_failure_wilson_95: [String; 2],
    /// Deployments by score decile.
    score_histogram: [u64; 10],
    /// Area under the ROC curve of the score against incidents, as a decimal.
    auc: Option<String>,
    confusion: Confusion,
    /// Incidents by severity.
    severity_mix: BTreeMap<String, u64>,
    preventable: u64,
    incidents: u64,
    review_minutes_median: Option<i64>,
    review_minutes_p90: Option<i64>,
    /// Incidents by the week they happened (its Monday, UTC).
    weekly_incidents: BTreeMap<String, u64>,
    /// Controls named as improvements by incident reports, counted.
    control_gaps: BTreeMap<String, u64>,
}

/// Auto-approval against incidents.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Confusion {
    true_positive: u64,
    false_positive: u64,
    true_negative: u64,
    false_negative: u64,
}

/// Progression votes since the last level change.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Progression {
    level: u32,
    /// Approving CAB members, by target level.
    progression_votes: BTreeMap<u32, BTreeSet<String>>,
}

async fn evaluate(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Result<axum::Json<Evaluated>, ApiError> {
    // The body is optional: empty means the defaults.
    let strict = if body.is_empty() {
        false
    } else {
        serde_json::from_slice::<EvaluateBody>(&body)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-body",
                    e.to_string(),
                )
            })?
            .strict
    };
    execute(&state, caller.0, Command::EvaluateMaturity { strict }).await?;
    let (evaluation, level) = state
        .gov
        .with_state(|s| (s.last_evaluation.clone().map(|e| e.evaluation), s.level));
    Ok(axum::Json(Evaluated {
        evaluation,
        level_now: level,
    }))
}

#[derive(Deserialize)]
struct StatusQuery {
    as_of: Option<String>,
    strict: Option<bool>,
}

async fn status(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    caller.require(ANY_READER)?;
    let strict = q.strict.unwrap_or(false);
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    // The live status is a pure function of the folded state (its time is the last entry's),
    // so it is computed once per log head and strictness, not once per request.
    let live_key = q.as_of.is_none().then_some((s.last_seq, strict));
    let cache = || {
        state
            .status_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some(key) = live_key {
        if let Some((cached_key, body)) = cache().as_ref() {
            if *cached_key == key {
                return Ok(json_body(body));
            }
        }
    }
    let at = now_of(&s);
    let model = s.active_model().map(|m| m.proposal.clone());
    let thresholds = BlastRadiusClass::ALL
        .iter()
        .map(|c| {
            let g = model
                .as_ref()
                .map(|m| policy::gate(&s, (Uuid::nil(), at), *c, 0, m).1);
            let threshold = ClassThreshold {
                effective: g.as_ref().map(|g| g.threshold),
                model: g.as_ref().map(|g| g.model_threshold),
                level: g.as_ref().map(|g| g.level_threshold),
                quorum: s.quorum(*c),
            };
            (c.as_str(), threshold)
        })
        .collect();
    // The criteria as they stand now, computed without recording an evaluation.
    let preview = maturity::evaluate(&s, at, strict);
    let value = MaturityStatus {
        level: s.level,
        mode: s.current_level().map(|l| l.mode.clone()),
        since: s.level_since.map(|t| t.to_string()),
        as_of_seq: s.last_seq,
        risk_model: model.map(|m| m.version),
        thresholds,
        next_level: preview.target_level,
        criteria: preview.criteria,
        outcome_if_evaluated_now: preview.outcome,
        stats: preview.stats,
        last_evaluation: s.last_evaluation.as_ref().map(|e| LastEvaluation {
            seq: e.seq,
            at: e.at.to_string(),
            outcome: e.evaluation.outcome.clone(),
        }),
    };
    let body: Arc<str> = serde_json::to_string(&value)
        .expect("the status serialises")
        .into();
    if let Some(key) = live_key {
        *cache() = Some((key, Arc::clone(&body)));
    }
    Ok(json_body(&body))
}

fn json_body(body: &Arc<str>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct ClassifyQuery {
    app_name: String,
    #[serde(default)]
    requires_admin: bool,
    #[serde(default)]
    target_user_count: u64,
    service_tier: Option<String>,
    as_of: Option<String>,
}

async fn classify(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<ClassifyQuery>,
) -> Result<axum::Json<Classified>, ApiError> {
    caller.require(ANY_READER)?;
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    let input = policy::ClassifyInput {
        app_name: q.app_name,
        requires_admin: q.requires_admin,
        target_user_count: q.target_user_count,
        cmdb: q
            .service_tier
            .map(|t| [("service_tier".to_owned(), t)].into())
            .unwrap_or_default(),
    };
    s.blast_policy
        .as_ref()
        .map(|p| {
            let c = policy::registry::classify_submission(&s, p, &input, None);
            Classified {
                class: c.class.as_str(),
                quorum: s.quorum(c.class),
                rule: c.rule,
                policy_version: c.policy_version,
                registered_app: c.registered_app,
                sources: c.sources,
            }
        })
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("no blast-radius policy in force"))
}

#[derive(Deserialize)]
struct CalibrationQuery {
    class: Option<String>,
    level: Option<u32>,
    from: Option<String>,
    to: Option<String>,
    as_of: Option<String>,
}

async fn calibration_report(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Query(q): Query<CalibrationQuery>,
) -> Result<axum::Json<Calibration>, ApiError> {
    caller.require(ANY_READER)?;
    let filter = calibration::CalibrationFilter {
        class: q
            .class
            .as_deref()
            .map(|c| {
                BlastRadiusClass::parse(c).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid-field",
                        "class: a class name",
                    )
                })
            })
            .transpose()?,
        level: q.level,
        from: q
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?,
        to: q.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
    };
    let s = state_as_of(&state, q.as_of.as_deref()).await?;
    let r = calibration::calibrate(&s, &filter);
    let pct = projections::stats::bp_to_percent;
    Ok(axum::Json(Calibration {
        deployments: r.deployments,
        auto_approved: r.auto_approved,
        auto_approval_rate: pct(r.auto_approval_rate_bp),
        released: r.released,
        change_failure_rate: pct(r.change_failure_rate_bp),
        change_failure_wilson_95: [
            pct(r.change_failure_wilson_bp.0),
            pct(r.change_failure_wilson_bp.1),
        ],
        score_histogram: r.score_histogram,
        auc: r
            .auc_bp
            .map(|bp| format!("{}.{:04}", bp / 10_000, bp % 10_000)),
        confusion: Confusion {
            true_positive: r.confusion.true_positive,
            false_positive: r.confusion.false_positive,
            true_negative: r.confusion.true_negative,
            false_negative: r.confusion.false_negative,
        },
        severity_mix: r
            .severity_mix
            .iter()
            .map(|(s, n)| (format!("{s:?}"), *n))
            .collect(),
        preventable: r.preventable,
        incidents: r.incidents,
        review_minutes_median: r.review_minutes_median,
        review_minutes_p90: r.review_minutes_p90,
        weekly_incidents: r.weekly_incidents,
        control_gaps: r.control_gaps,
    }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProgressionBody {
    to_level: u32,
    approve: bool,
    rationale: String,
    /// The member's SSH signature over the vote's statement (see `VoteBody`).
    #[serde(default)]
    signature: Option<SignatureBody>,
}

async fn vote_progression(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    ApiJson(b): ApiJson<ProgressionBody>,
) -> Result<axum::Json<Progression>, ApiError> {
    execute(
        &state,
        caller.0,
        Command::VoteProgression {
            to_level: b.to_level,
            approve: b.approve,
            rationale: b.rationale,
            signature: b.signature.map(SignatureBody::into_signed_vote),
        },
    )
    .await?;
    Ok(axum::Json(state.gov.with_state(|s| Progression {
        level: s.level,
        progression_votes: s.progression_votes.clone(),
    })))
}
