use crate::extract::Path;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use riskdesk_domain::Permission;
use riskdesk_domain::customer::parse_note;
use riskdesk_storage::signups::{self, SignupRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::parse_id;
use crate::AppState;
use crate::dto::{CreditTerms, Page, check_limit, decode_cursor, page, rfc3339};
use crate::error::{ApiError, Problem, Validator};
use crate::extract::{ApiJson, ApiQuery, Caller, IdempotencyKey};
use crate::idem::{self, Fingerprint};
use riskdesk_app::onboarding::request::{AssessRequest, parse_request};
use riskdesk_app::onboarding::{self, StoredOutcome, StoredReason, StoredSkip};

#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub mfa_required: bool,
}

/// An assessment: the decision, the score, every reason, the terms to offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssessmentOut {
    pub assessment_id: Uuid,
    /// approve, review or reject.
    pub decision: String,
    /// 0 to 100.
    pub score: u32,
    pub reasons: Vec<StoredReason>,
    pub credit: CreditTerms,
    pub verification: Verification,
    /// Signals that could not be evaluated, and why.
    pub skipped: Vec<StoredSkip>,
    /// approved, pending_review or rejected.
    pub status: String,
    /// The customer created on approval.
    pub customer_id: Option<Uuid>,
    pub as_of: String,
    pub created_at: String,
    pub reviewed_at: Option<String>,
    pub review_note: Option<String>,
    /// The request as received (on single-sign-up reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub input: Option<serde_json::Value>,
}

fn out(row: SignupRow, with_input: bool) -> Result<AssessmentOut, ApiError> {
    let o: StoredOutcome =
        serde_json::from_str(&row.outcome_json).map_err(|e| ApiError::Internal(e.to_string()))?;
    let input = if with_input {
        serde_json::from_str::<serde_json::Value>(&row.input_json)
            .ok()
            .and_then(|v| v.get("request").cloned())
    } else {
        None
    };
    Ok(AssessmentOut {
        assessment_id: row.id,
        decision: o.decision,
        score: o.score,
        reasons: o.reasons,
        credit: CreditTerms {
            limit: o.credit_limit,
            currency: o.currency,
            prepayment_required: o.prepayment_required,
        },
        verification: Verification {
            mfa_required: o.mfa_required,
        },
        skipped: o.skipped,
        status: row.status,
        customer_id: row.customer_id,
        as_of: rfc3339(row.as_of),
        created_at: rfc3339(row.created_at),
        reviewed_at: row.reviewed_at.map(rfc3339),
        review_note: row.review_note,
        input,
    })
}

/// Assess a sign-up: decision, score, reasons, credit terms, MFA. Stored; an approved sign-up
/// creates the customer, a review holds it in the queue, a rejection creates nothing.
#[utoipa::path(post, path = "/v1/signups/assess", tag = "onboarding", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_customers"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = AssessRequest,
    responses((status = 201, body = AssessmentOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn assess(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteCustomers)?;
    let fp = Fingerprint {
        key: &key,
        method_path: "POST /v1/signups/assess".into(),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let (input, details) = parse_request(body.value.clone(), now)?;
    // Ask the verification provider before the unit of work: no lock is held across the call.
    let id = Uuid::now_v7();
    let verification = onboarding::verify(s.verifier.as_deref(), id, &input, &details).await;
    // Read (and, in memory, count velocity) before the unit of work: SQLite's writer is held
    // only for the writes.
    let live = body.value.get("as_of").is_none();
    let mut prepared = onboarding::prepare(
        s.db(),
        s.velocity.as_deref(),
        caller.tenant(),
        &s.risk,
        &input,
        live,
        &verification,
    )
    .await?;
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let (row, _assessment) = onboarding::assess_signup(
        &mut tx,
        id,
        verification,
        caller.tenant(),
        &caller.actor(),
        &s.risk,
        &input,
        &details,
        body.value,
        &mut prepared,
        now,
    )
    .await?;
    let response = idem::finish(tx, &caller, &fp, StatusCode::CREATED, &out(row, false)?).await?;
    if let Some(r) = prepared.recorded.take() {
        r.keep();
    }
    Ok(response)
}

/// One stored assessment with its input.
#[utoipa::path(get, path = "/v1/signups/{id}", tag = "onboarding", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = AssessmentOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_signup(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AssessmentOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: Uuid = parse_id(&id, "sign-up")?;
    Ok(Json(out(
        signups::get(s.db(), caller.tenant(), id).await?,
        true,
    )?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListSignupsQuery {
    /// approve, review or reject.
    pub decision: Option<String>,
    /// approved, pending_review or rejected. `decision=review&status=pending_review` is the review queue.
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Stored assessments, oldest first; the review queue is `?decision=review&status=pending_review`.
#[utoipa::path(get, path = "/v1/signups", tag = "onboarding", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(ListSignupsQuery),
    responses((status = 200, body = Page<AssessmentOut>), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_signups(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListSignupsQuery>,
) -> Result<Json<Page<AssessmentOut>>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let mut v = Validator::default();
    if let Some(d) = &q.decision {
        if !["approve", "review", "reject"].contains(&d.as_str()) {
            v.fail("decision", "must be one of approve, review, reject");
        }
    }
    if let Some(st) = &q.status {
        if !["approved", "pending_review", "rejected"].contains(&st.as_str()) {
            v.fail(
                "status",
                "must be one of approved, pending_review, rejected",
            );
        }
    }
    let limit = v.check(
        "limit",
        check_limit(q.limit).map_err(|_| "must be between 1 and 500"),
    );
    let after = v.check(
        "cursor",
        decode_cursor::<Uuid>(&q.cursor).map_err(|_| "is not a cursor this API returned"),
    );
    v.finish()?;
    let limit = limit.unwrap_or(crate::dto::DEFAULT_LIMIT);
    let rows = signups::list(
        s.db(),
        caller.tenant(),
        q.decision.as_deref(),
        q.status.as_deref(),
        after.flatten(),
        limit + 1,
    )
    .await?;
    let p = page(rows, limit, |r| r.id.to_string(), |r| r);
    let items = p
        .items
        .into_iter()
        .map(|r| out(r, false))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Page {
        items,
        next_cursor: p.next_cursor,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// approve or reject.
    pub decision: String,
    /// What the analyst checked (e.g. "called the listed number, confirmed the order").
    pub note: Option<String>,
}

/// Record an analyst's review of a held sign-up; approval creates the customer with the
/// assessed credit terms.
#[utoipa::path(post, path = "/v1/signups/{id}/review", tag = "onboarding", security(("bearer" = [])),
    extensions(("x-permission" = json!("act_on_subscriptions"))),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = ReviewRequest,
    responses((status = 200, body = AssessmentOut), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn review(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<ReviewRequest>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ActOnSubscriptions)?;
    let id: Uuid = parse_id(&id, "sign-up")?;
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/signups/{id}/review"),
        body_sha256: &body.body_sha256,
    };
    let mut v = Validator::default();
    let approve = match body.value.decision.as_str() {
        "approve" => Some(true),
        "reject" => Some(false),
        _ => {
            v.fail("decision", "must be approve or reject");
            None
        }
    };
    let note = body
        .value
        .note
        .as_deref()
        .and_then(|n| v.check("note", parse_note(n)));
    v.finish()?;
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row = onboarding::review_signup(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        approve.unwrap_or(false),
        note.as_deref(),
        now,
    )
    .await?;
    idem::finish(tx, &caller, &fp, StatusCode::OK, &out(row, false)?).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartVerification {
    /// `sms`: a one-time code to the sign-up's phone; `totp`: enrol an authenticator app.
    pub channel: String,
}

/// Start MFA for a sign-up: sends a one-time code by SMS to the phone it was assessed with.
#[utoipa::path(post, path = "/v1/signups/{id}/verification", tag = "onboarding", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_customers"))),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key sends no second code")),
    request_body = StartVerification,
    responses((status = 201, body = riskdesk_app::onboarding::mfa::ChallengeOut), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 429, body = Problem, content_type = "application/problem+json"), (status = 502, body = Problem, content_type = "application/problem+json")))]
pub async fn start_verification(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<StartVerification>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteCustomers)?;
    let id: Uuid = parse_id(&id, "sign-up")?;
    let sms = match body.value.channel.as_str() {
        "totp" => None,
        "sms" => Some(s.sms.clone().ok_or_else(|| {
            ApiError::Conflict(
                "no SMS provider is configured ([sms] in riskdesk.toml); use totp".into(),
            )
        })?),
        other => {
            return Err(ApiError::field(
                "channel",
                format!("'{other}' is not sms or totp"),
            ));
        }
    };
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/signups/{id}/verification"),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let Some(sms) = sms else {
        let out = riskdesk_app::onboarding::mfa::start_totp(
            &mut tx,
            caller.tenant(),
            &caller.actor(),
            id,
            &s.risk.policy,
            now,
        )
        .await?;
        return idem::finish(tx, &caller, &fp, StatusCode::CREATED, &out).await;
    };
    let (out, phone, code) = riskdesk_app::onboarding::mfa::start_sms(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        &s.risk.policy,
        now,
    )
    .await?;
    let resp = idem::finish(tx, &caller, &fp, StatusCode::CREATED, &out).await?;
    // Sent after the commit: no lock is held across the provider call.
    sms.send(
        &phone,
        &format!(
            "Your verification code is {code}. It expires in {} minutes.",
            s.risk.policy.mfa_code_ttl_seconds / 60
        ),
    )
    .await
    .map_err(|e| ApiError::BadGateway(format!("{e}; request a new code")))?;
    Ok(resp)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmVerification {
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Verified {
    pub verified: bool,
}

/// Check the one-time code. A wrong code is a 422 that says how many tries are left.
#[utoipa::path(post, path = "/v1/signups/{id}/verification/confirm", tag = "onboarding", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_customers"))),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = ConfirmVerification,
    responses((status = 200, body = Verified), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn confirm_verification(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<ConfirmVerification>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteCustomers)?;
    let id: Uuid = parse_id(&id, "sign-up")?;
    let code = body.value.code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::field(
            "code",
            "must be the 6 digits sent by SMS or shown by the authenticator app",
        ));
    }
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/signups/{id}/verification/confirm"),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    match riskdesk_app::onboarding::mfa::confirm(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        code,
        now,
    )
    .await?
    {
        riskdesk_app::onboarding::mfa::ConfirmOutcome::Verified => {
            idem::finish(
                tx,
                &caller,
                &fp,
                StatusCode::OK,
                &Verified { verified: true },
            )
            .await
        }
        riskdesk_app::onboarding::mfa::ConfirmOutcome::Wrong { left } => {
            // The failed attempt counts: commit it, then refuse.
            tx.commit().await?;
            Err(ApiError::field(
                "code",
                format!("the code does not match; {left} attempt(s) left"),
            ))
        }
    }
}
