//! The case queue, a case's story, work on a case, actions and their approval.

use crate::extract::Path;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use riskdesk_domain::money::{Currency, Money};
use riskdesk_domain::response::{ActionKind, CaseKind, CaseStatus};
use riskdesk_domain::{CustomerId, Permission, Reason};
use riskdesk_storage::actions::{self, ActionFilter, ActionRow};
use riskdesk_storage::cases::{self, CaseFilter, CaseRow, EntryRow};
use riskdesk_storage::time::to_micros;
use riskdesk_storage::{alerts, customers, provider, subscriptions};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::parse_id;
use crate::AppState;
use crate::dto::{Page, check_limit, page, rfc3339};
use crate::error::{ApiError, Problem, Validator};
use crate::extract::{ApiJson, ApiQuery, Caller, IdempotencyKey};
use crate::idem::{self, Fingerprint};
use riskdesk_app::kernel::time::parse_as_of;
use riskdesk_app::response::{self, ActionRequest};

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseOut {
    pub id: Uuid,
    pub customer_id: Option<Uuid>,
    pub signup_id: Option<Uuid>,
    /// alert, signup_review, credit_limit, enforcement_approval, provider_notice,
    /// provider_fraud, provider_budget
    pub kind: String,
    pub severity: String,
    /// open, investigating, actioned, resolved, dismissed
    pub status: String,
    pub title: String,
    pub assignee: Option<String>,
    pub opened_at: String,
    pub due_at: String,
    /// Past its deadline and not closed (at `as_of`).
    pub overdue: bool,
    pub sla_breach_notified_at: Option<String>,
    pub closed_at: Option<String>,
    pub updated_at: String,
}

impl CaseOut {
    fn of(r: CaseRow, at: i64) -> Self {
        let closed = matches!(r.status.as_str(), "resolved" | "dismissed");
        CaseOut {
            id: r.id,
            customer_id: r.customer_id,
            signup_id: r.signup_id,
            kind: r.kind,
            severity: r.severity,
            overdue: !closed && r.due_at < at,
            status: r.status,
            title: r.title,
            assignee: r.assignee,
            opened_at: rfc3339(r.opened_at),
            due_at: rfc3339(r.due_at),
            sla_breach_notified_at: r.sla_notified_at.map(rfc3339),
            closed_at: r.closed_at.map(rfc3339),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntryOut {
    pub at: String,
    /// opened, alert, proposal, comment, status, assign, action, notice, service_request,
    /// sla_breach
    pub kind: String,
    pub actor: String,
    pub text: Option<String>,
    pub ref_id: Option<Uuid>,
    /// What the entry carries (absent data is null).
    #[schema(value_type = Option<Object>)]
    pub data: serde_json::Value,
}

impl From<EntryRow> for TimelineEntryOut {
    fn from(e: EntryRow) -> Self {
        TimelineEntryOut {
            at: rfc3339(e.at),
            kind: e.kind,
            actor: e.actor,
            text: e.text,
            ref_id: e.ref_id,
            data: e
                .data_json
                .and_then(|d| serde_json::from_str(&d).ok())
                .unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionOut {
    pub id: Uuid,
    pub case_id: Option<Uuid>,
    pub customer_id: Uuid,
    pub subscription_id: Option<Uuid>,
    /// suspend, disable_access, reactivate, cancel, set_budget, require_prepayment,
    /// revoke_admin_access, mark_fraudulent
    pub kind: String,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// awaiting_approval, pending (applied here, provider call queued or retrying), done,
    /// failed (the provider refused: see last_error), rejected
    pub status: String,
    pub reason: String,
    pub note: Option<String>,
    pub proposed_by: String,
    pub decided_by: Option<String>,
    /// partner_center, none (riskdesk's own control or no provider link), unsupported
    pub provider: String,
    /// The MS-RequestId every attempt of the provider call carries.
    pub provider_request_id: Option<String>,
    #[schema(value_type = Object)]
    pub provider_result: serde_json::Value,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub done_at: Option<String>,
}

impl From<ActionRow> for ActionOut {
    fn from(a: ActionRow) -> Self {
        ActionOut {
            id: a.id,
            case_id: a.case_id,
            customer_id: a.customer_id,
            subscription_id: a.subscription_id,
            kind: a.kind,
            params: serde_json::from_str(&a.params_json).unwrap_or_default(),
            status: a.status,
            reason: a.reason,
            note: a.note,
            proposed_by: a.proposed_by,
            decided_by: a.decided_by,
            provider: a.provider,
            provider_request_id: a.provider_request_id,
            provider_result: a
                .provider_result_json
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or(serde_json::Value::Null),
            attempts: a.attempts,
            next_attempt_at: a.next_attempt_at.map(rfc3339),
            last_error: a.last_error,
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
            done_at: a.done_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CasesQuery {
    /// open, investigating, actioned, resolved, dismissed
    pub status: Option<String>,
    pub kind: Option<String>,
    pub severity: Option<String>,
    pub assignee: Option<String>,
    pub customer_id: Option<String>,
    /// `true`: only cases past their deadline and still open.
    pub overdue: Option<bool>,
    /// `true` (default): closed cases are left out unless `status` asks for them.
    pub active: Option<bool>,
    /// The instant "overdue" is judged at (default now).
    pub as_of: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The case queue, earliest deadline first.
#[utoipa::path(get, path = "/v1/cases", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(CasesQuery),
    responses((status = 200, body = Page<CaseOut>), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_cases(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CasesQuery>,
) -> Result<Json<Page<CaseOut>>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let mut v = Validator::default();
    check_view(&mut v, &q.status, &q.kind, &q.severity);
    let customer = v.check(
        "customer_id",
        super::customer_filter(&q.customer_id).map_err(|e| e.to_string()),
    );
    let limit = v.check(
        "limit",
        check_limit(q.limit).map_err(|_| "must be between 1 and 500"),
    );
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => v.check(
            "cursor",
            decode_case_cursor(c).ok_or("is not a cursor this API returned"),
        ),
    };
    let as_of = v.check(
        "as_of",
        parse_as_of(&q.as_of, s.clock.now()).map_err(|e| e.to_string()),
    );
    v.finish()?;
    let (limit, as_of) = (limit.unwrap_or(50), as_of.unwrap_or_else(|| s.clock.now()));
    let at = to_micros(as_of);
    let f = CaseFilter {
        status: q.status.clone(),
        kind: q.kind.clone(),
        severity: q.severity.clone(),
        assignee: q.assignee.clone(),
        customer: customer.flatten(),
        overdue_at: q.overdue.unwrap_or(false).then_some(at),
        active_only: q.status.is_none() && q.active.unwrap_or(true),
        after,
    };
    let rows = cases::list(s.db(), caller.tenant(), &f, limit + 1).await?;
    Ok(Json(page(
        rows,
        limit,
        |r| format!("{}:{}", r.due_at, r.id),
        |r| CaseOut::of(r, at),
    )))
}

/// The filters a view of the queue is made of (the list and take-next share them).
fn check_view(
    v: &mut Validator,
    status: &Option<String>,
    kind: &Option<String>,
    severity: &Option<String>,
) {
    if let Some(st) = status
        && CaseStatus::parse(st).is_none()
    {
        v.fail(
            "status",
            "must be open, investigating, actioned, resolved or dismissed",
        );
    }
    if let Some(k) = kind
        && CaseKind::parse(k).is_none()
    {
        v.fail("kind", "is not a case kind");
    }
    if let Some(sev) = severity
        && !riskdesk_domain::response::case::SEVERITIES.contains(&sev.as_str())
    {
        v.fail("severity", "must be info, low, medium, high or critical");
    }
}

fn decode_case_cursor(c: &str) -> Option<(i64, Uuid)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (d, id) = s.split_once(':')?;
    Some((d.parse().ok()?, id.parse().ok()?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseDetail {
    pub case: CaseOut,
    /// Everything that happened on the case, oldest first.
    pub timeline: Vec<TimelineEntryOut>,
    pub actions: Vec<ActionOut>,
    /// The customer's story: profile and terms, its sign-up assessment, subscriptions (with
    /// provider ids), recent alerts and invoices, provider notices, service requests.
    #[schema(value_type = Object)]
    pub customer: serde_json::Value,
}

/// One case with its timeline and the customer's whole story.
#[utoipa::path(get, path = "/v1/cases/{id}", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path, description = "case id"),
           ("as_of" = Option<String>, Query, description = "judge overdue at this instant")),
    responses((status = 200, body = CaseDetail), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_case(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AsOfQuery>,
) -> Result<Json<CaseDetail>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: Uuid = parse_id(&id, "case")?;
    let tenant = caller.tenant();
    let at = to_micros(parse_as_of(&q.as_of, s.clock.now())?);
    let case = cases::get(s.db(), tenant, id).await?;
    let timeline = cases::entries(s.db(), tenant, id).await?;
    let acts = actions::of_case(s.db(), tenant, id).await?;
    let mut story = serde_json::Value::Null;
    if let Some(c) = case.customer_id {
        story = customer_story(&s, tenant, c).await?;
    }
    let notices = provider::notices(s.db(), tenant, None, case.customer_id, 50).await?;
    let srs = provider::service_requests_of_case(s.db(), tenant, id).await?;
    if let Some(obj) = story.as_object_mut() {
        obj.insert(
            "notices".into(),
            serde_json::to_value(&notices).unwrap_or_default(),
        );
    } else {
        story = serde_json::json!({"notices": notices});
    }
    story["service_requests"] = serde_json::to_value(&srs).unwrap_or_default();
    if let Some(sid) = case.signup_id {
        story["signup"] = serde_json::to_value(
            riskdesk_storage::signups::get(s.db(), tenant, sid)
                .await
                .ok(),
        )
        .unwrap_or_default();
    }
    Ok(Json(CaseDetail {
        case: CaseOut::of(case, at),
        timeline: timeline.into_iter().map(TimelineEntryOut::from).collect(),
        actions: acts.into_iter().map(ActionOut::from).collect(),
        customer: story,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    pub as_of: Option<String>,
}

async fn customer_story(
    s: &AppState,
    tenant: riskdesk_domain::TenantId,
    customer: Uuid,
) -> Result<serde_json::Value, ApiError> {
    let c = customers::get(s.db(), tenant, CustomerId(customer)).await?;
    let link = provider::customer_link(s.db(), tenant, customer).await?;
    let subs =
        subscriptions::list_for_customer(s.db(), tenant, CustomerId(customer), None, None, 200)
            .await?;
    let mut subs_out = Vec::new();
    for sub in subs {
        let l = provider::subscription_link(s.db(), tenant, sub.id).await?;
        subs_out.push(serde_json::json!({
            "id": sub.id, "offer": sub.offer, "status": sub.status, "quantity": sub.quantity,
            "provider_subscription_id": l.as_ref().map(|l| l.provider_subscription_id.clone()),
            "provider_status": l.as_ref().and_then(|l| l.provider_status.clone()),
        }));
    }
    let recent_alerts = alerts::list(
        s.db(),
        tenant,
        &alerts::AlertFilter {
            customer_id: Some(customer),
            ..Default::default()
        },
        20,
    )
    .await?;
    let invoices = riskdesk_storage::billing::list_invoices(
        s.db(),
        tenant,
        &riskdesk_storage::billing::InvoiceFilter {
            customer: Some(customer),
            open: None,
            after: None,
            limit: 50,
        },
    )
    .await?;
    let assessment = match c.signup_id {
        Some(sid) => riskdesk_storage::signups::get(s.db(), tenant, sid)
            .await
            .ok(),
        None => None,
    };
    Ok(serde_json::json!({
        "id": c.id, "name": c.name, "email": c.email, "country": c.country,
        "cloud_instance": c.cloud_instance, "risk_status": c.risk_status,
        "admin_access": c.admin_access, "prepayment_required": c.prepayment_required,
        "credit_limit_minor": c.credit_limit_minor, "credit_currency": c.credit_currency,
        "created_at": rfc3339(c.created_at),
        "provider_customer_id": link.map(|l| l.provider_customer_id),
        "assessment": assessment,
        "subscriptions": subs_out,
        "alerts": recent_alerts.into_iter().map(|a| serde_json::json!({
            "id": a.id, "rule": a.rule, "severity": a.severity, "status": a.status, "title": a.title,
            "count": a.count, "last_at": rfc3339(a.last_at),
        })).collect::<Vec<_>>(),
        "invoices": invoices,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignIn {
    /// Who works the case (a staff name); null unassigns.
    pub assignee: Option<String>,
}

/// Assigns a case (an open case moves to `investigating`).
#[utoipa::path(post, path = "/v1/cases/{id}/assign", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("id" = Uuid, Path, description = "case id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = AssignIn,
    responses((status = 200, body = CaseOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn assign(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<AssignIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WorkCases)?;
    let id: Uuid = parse_id(&id, "case")?;
    let assignee = match body.value.assignee.as_deref().map(str::trim) {
        Some("") => {
            return Err(ApiError::field(
                "assignee",
                "must not be empty (null unassigns)",
            ));
        }
        Some(a) if a.chars().count() > 200 => {
            return Err(ApiError::field("assignee", "at most 200 characters"));
        }
        other => other.map(str::to_owned),
    };
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/cases/{id}/assign"),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row = response::assign(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        assignee.as_deref(),
        now,
    )
    .await?;
    idem::finish(
        tx,
        &caller,
        &fp,
        StatusCode::OK,
        &CaseOut::of(row, to_micros(now)),
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentIn {
    pub text: String,
}

/// Adds a comment to a case's timeline.
#[utoipa::path(post, path = "/v1/cases/{id}/comments", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("comment_on_cases"))),
    params(("id" = Uuid, Path, description = "case id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = CommentIn,
    responses((status = 201, body = CaseOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn comment(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<CommentIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::CommentOnCases)?;
    let id: Uuid = parse_id(&id, "case")?;
    let text = riskdesk_domain::customer::parse_note(&body.value.text)
        .map_err(|e| ApiError::field("text", e.0))?;
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/cases/{id}/comments"),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row = response::comment(&mut tx, caller.tenant(), &caller.actor(), id, &text, now).await?;
    idem::finish(
        tx,
        &caller,
        &fp,
        StatusCode::CREATED,
        &CaseOut::of(row, to_micros(now)),
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusIn {
    /// open, investigating, actioned, resolved, dismissed
    pub status: String,
    pub note: Option<String>,
}

/// Changes a case's status. A case with actions still pending or awaiting approval cannot be
/// resolved or dismissed (409).
#[utoipa::path(post, path = "/v1/cases/{id}/status", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("id" = Uuid, Path, description = "case id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = StatusIn,
    responses((status = 200, body = CaseOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn set_status(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<StatusIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WorkCases)?;
    let id: Uuid = parse_id(&id, "case")?;
    let mut v = Validator::default();
    let to = v.check(
        "status",
        CaseStatus::parse(&body.value.status)
            .ok_or("must be open, investigating, actioned, resolved or dismissed"),
    );
    let note = body.value.note.as_deref().and_then(|n| {
        v.check(
            "note",
            riskdesk_domain::customer::parse_note(n).map_err(|e| e.0),
        )
    });
    v.finish()?;
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/cases/{id}/status"),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row = response::set_status(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        to.expect("validated"),
        note.as_deref(),
        now,
    )
    .await?;
    idem::finish(
        tx,
        &caller,
        &fp,
        StatusCode::OK,
        &CaseOut::of(row, to_micros(now)),
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionIn {
    /// suspend, disable_access, reactivate, cancel, set_budget, require_prepayment,
    /// revoke_admin_access, mark_fraudulent
    pub kind: String,
    /// The subscription (suspend, disable_access, reactivate, cancel).
    pub subscription_id: Option<Uuid>,
    /// set_budget: the monthly amount (decimal string) and currency.
    pub amount: Option<String>,
    pub currency: Option<String>,
    /// investigation (default; resolved for reactivate), fraud, non_payment, aup_violation,
    /// customer_request, resolved
    pub reason: Option<String>,
    pub note: Option<String>,
    /// `true`: record it for another analyst to approve instead of acting now.
    pub require_approval: Option<bool>,
}

/// Takes an action from a case — applied in riskdesk at once, carried out at the provider by
/// the provider worker (the action shows pending → done | failed) — or proposes it for
/// approval.
#[utoipa::path(post, path = "/v1/cases/{id}/actions", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("id" = Uuid, Path, description = "case id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = ActionIn,
    responses((status = 201, body = ActionOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn act(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<ActionIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WorkCases)?;
    let id: Uuid = parse_id(&id, "case")?;
    let b = &body.value;
    let mut v = Validator::default();
    let kind = v.check(
        "kind",
        ActionKind::parse(&b.kind).ok_or(
            "must be suspend, disable_access, reactivate, cancel, set_budget, require_prepayment, revoke_admin_access or mark_fraudulent",
        ),
    );
    let reason = match &b.reason {
        // Reactivating ends an investigation; everything else starts or serves one.
        None if b.kind == "reactivate" => Some(Reason::Resolved),
        None => Some(Reason::Investigation),
        Some(r) => v.check("reason", Reason::parse(r).ok_or("is not a reason")),
    };
    let note = b.note.as_deref().and_then(|n| {
        v.check(
            "note",
            riskdesk_domain::customer::parse_note(n).map_err(|e| e.0),
        )
    });
    let amount = match (&b.amount, &b.currency) {
        (None, None) => None,
        (Some(a), Some(c)) => Currency::parse(c)
            .map_err(|e| v.fail("currency", e.0))
            .ok()
            .and_then(|cur| v.check("amount", Money::parse(a, cur).map_err(|e| e.0))),
        _ => {
            v.fail("amount", "amount and currency go together");
            None
        }
    };
    v.finish()?;
    if ActionKind::Cancel == kind.expect("validated") && b.subscription_id.is_none() {
        return Err(ApiError::field(
            "subscription_id",
            "cancel needs the subscription",
        ));
    }
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/cases/{id}/actions"),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let tenant = caller.tenant();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row = response::act_on_case(
        &mut tx,
        tenant,
        &caller.actor(),
        id,
        &ActionRequest {
            kind: kind.expect("validated"),
            subscription: b.subscription_id,
            amount,
            reason: reason.expect("validated"),
            note,
        },
        b.require_approval.unwrap_or(false),
        now,
    )
    .await?;
    idem::finish(tx, &caller, &fp, StatusCode::CREATED, &ActionOut::from(row)).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActionsQuery {
    /// awaiting_approval, pending, done, failed, rejected
    pub status: Option<String>,
    pub customer_id: Option<String>,
    pub case_id: Option<String>,
    pub limit: Option<u32>,
}

/// Actions, newest first (`status=awaiting_approval` is the approval queue).
#[utoipa::path(get, path = "/v1/actions", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(ActionsQuery),
    responses((status = 200, body = Vec<ActionOut>), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_actions(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ActionsQuery>,
) -> Result<Json<Vec<ActionOut>>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    if let Some(st) = &q.status
        && riskdesk_domain::response::ActionStatus::parse(st).is_none()
    {
        return Err(ApiError::field(
            "status",
            "must be awaiting_approval, pending, done, failed or rejected",
        ));
    }
    let customer = super::customer_filter(&q.customer_id)?;
    let case_id = q
        .case_id
        .as_deref()
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::field("case_id", "is not a case id"))
        })
        .transpose()?;
    let limit = check_limit(q.limit)?;
    let rows = actions::list(
        s.db(),
        caller.tenant(),
        &ActionFilter {
            status: q.status.clone(),
            customer,
            case_id,
        },
        limit,
    )
    .await?;
    Ok(Json(rows.into_iter().map(ActionOut::from).collect()))
}

/// One action, with its provider outcome.
#[utoipa::path(get, path = "/v1/actions/{id}", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path, description = "action id")),
    responses((status = 200, body = ActionOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_action(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ActionOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: Uuid = parse_id(&id, "action")?;
    Ok(Json(
        actions::get(s.db(), caller.tenant(), id).await?.into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionIn {
    pub note: Option<String>,
}

async fn decide(
    s: AppState,
    caller: Caller,
    key: IdempotencyKey,
    id: String,
    body: ApiJson<DecisionIn>,
    approve: bool,
) -> Result<Response, ApiError> {
    caller.require(Permission::ApproveActions)?;
    let id: Uuid = parse_id(&id, "action")?;
    let note = body
        .value
        .note
        .as_deref()
        .map(|n| riskdesk_domain::customer::parse_note(n).map_err(|e| ApiError::field("note", e.0)))
        .transpose()?;
    let fp = Fingerprint {
        key: &key,
        method_path: format!(
            "POST /v1/actions/{id}/{}",
            if approve { "approve" } else { "reject" }
        ),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row = response::decide(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        approve,
        note.as_deref(),
        now,
    )
    .await?;
    idem::finish(tx, &caller, &fp, StatusCode::OK, &ActionOut::from(row)).await
}

/// Approves an action awaiting approval and carries it out (not by whoever proposed it: 403).
#[utoipa::path(post, path = "/v1/actions/{id}/approve", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("approve_actions"))),
    params(("id" = Uuid, Path, description = "action id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = DecisionIn,
    responses((status = 200, body = ActionOut), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn approve(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<DecisionIn>,
) -> Result<Response, ApiError> {
    decide(s, caller, key, id, body, true).await
}

/// Rejects an action awaiting approval (not by whoever proposed it: 403).
#[utoipa::path(post, path = "/v1/actions/{id}/reject", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("approve_actions"))),
    params(("id" = Uuid, Path, description = "action id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = DecisionIn,
    responses((status = 200, body = ActionOut), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn reject(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<DecisionIn>,
) -> Result<Response, ApiError> {
    decide(s, caller, key, id, body, false).await
}

/// Queues another attempt of a failed (or waiting) provider call now.
#[utoipa::path(post, path = "/v1/actions/{id}/retry", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("id" = Uuid, Path, description = "action id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    responses((status = 200, body = ActionOut), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn retry(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WorkCases)?;
    let id: Uuid = parse_id(&id, "action")?;
    let fp = Fingerprint::without_body(&key, format!("POST /v1/actions/{id}/retry"));
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row = riskdesk_app::provider::retry_now(&mut tx, caller.tenant(), &caller.actor(), id, now)
        .await?;
    idem::finish(tx, &caller, &fp, StatusCode::OK, &ActionOut::from(row)).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlaCheckOut {
    /// Cases whose breach was notified by this run.
    pub breaches_notified: usize,
}

/// Checks every case against its deadline now (or `as_of`) and notifies staff of new
/// breaches, once per case. The server also runs this every minute.
#[utoipa::path(post, path = "/v1/cases/sla-check", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("as_of" = Option<String>, Query, description = "the instant to judge at (default now)"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    responses((status = 200, body = SlaCheckOut)))]
pub async fn sla_check(
    State(s): State<AppState>,
    caller: Caller,
    _key: IdempotencyKey,
    ApiQuery(q): ApiQuery<AsOfQuery>,
) -> Result<Json<SlaCheckOut>, ApiError> {
    caller.require(Permission::WorkCases)?;
    let as_of = parse_as_of(&q.as_of, s.clock.now())?;
    // Runs are idempotent (each breach is notified once), so the key needs no record.
    let n = response::sla_pass(&s.ctx, Some(caller.tenant()), as_of).await?;
    Ok(Json(SlaCheckOut {
        breaches_notified: n,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeNextIn {
    /// The view to take from (the queue's filters); absent fields match every case.
    pub status: Option<String>,
    pub kind: Option<String>,
    pub severity: Option<String>,
    pub customer_id: Option<Uuid>,
    /// Only cases past their deadline.
    pub overdue: Option<bool>,
    /// Who takes it (default: the caller's name).
    pub assignee: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TakeNextOut {
    /// The case taken, now assigned; null when the view has no unassigned case.
    pub case: Option<CaseOut>,
}

/// Takes the most urgent unassigned case of a view, atomically: two callers at once never get
/// the same case.
#[utoipa::path(post, path = "/v1/cases/take-next", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = TakeNextIn,
    responses((status = 200, body = TakeNextOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn take_next(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<TakeNextIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WorkCases)?;
    let b = &body.value;
    let mut v = Validator::default();
    check_view(&mut v, &b.status, &b.kind, &b.severity);
    let assignee = match b.assignee.as_deref().map(str::trim) {
        Some("") => {
            v.fail("assignee", "must not be empty");
            None
        }
        Some(a) if a.chars().count() > 200 => {
            v.fail("assignee", "at most 200 characters");
            None
        }
        Some(a) => Some(a.to_owned()),
        None => Some(caller.0.name.clone()),
    };
    v.finish()?;
    let fp = Fingerprint {
        key: &key,
        method_path: "POST /v1/cases/take-next".into(),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let at = to_micros(now);
    let view = CaseFilter {
        status: b.status.clone(),
        kind: b.kind.clone(),
        severity: b.severity.clone(),
        assignee: None,
        customer: b.customer_id,
        overdue_at: b.overdue.unwrap_or(false).then_some(at),
        active_only: true,
        after: None,
    };
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let taken = response::take_next(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        &view,
        assignee.as_deref().expect("validated"),
        now,
    )
    .await?;
    idem::finish(
        tx,
        &caller,
        &fp,
        StatusCode::OK,
        &TakeNextOut {
            case: taken.map(|c| CaseOut::of(c, at)),
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkIn {
    /// The cases (1 to 500), changed together or not at all.
    pub ids: Vec<Uuid>,
    /// assign, unassign, status or comment.
    pub op: String,
    /// assign: who takes them.
    pub assignee: Option<String>,
    /// status: the status to set.
    pub status: Option<String>,
    /// comment: the comment; status: the note.
    pub text: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkOut {
    pub changed: usize,
    pub cases: Vec<CaseOut>,
}

/// Assigns, unassigns, changes the status of, or comments on several cases in one unit of work:
/// if one cannot be changed (a 409 naming it), none is.
#[utoipa::path(post, path = "/v1/cases/bulk", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = BulkIn,
    responses((status = 200, body = BulkOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn bulk(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<BulkIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WorkCases)?;
    let b = &body.value;
    let mut v = Validator::default();
    if b.ids.is_empty() || b.ids.len() > 500 {
        v.fail("ids", "between 1 and 500 case ids");
    }
    let mut seen = std::collections::HashSet::new();
    if !b.ids.iter().all(|i| seen.insert(*i)) {
        v.fail("ids", "must not repeat a case");
    }
    let text = b.text.as_deref().and_then(|t| {
        v.check(
            "text",
            riskdesk_domain::customer::parse_note(t).map_err(|e| e.0),
        )
    });
    let assignee = b.assignee.as_deref().map(str::trim).map(str::to_owned);
    let status = b.status.as_deref().map(CaseStatus::parse);
    match b.op.as_str() {
        "assign" => match assignee.as_deref() {
            None | Some("") => v.fail("assignee", "assign needs who takes them"),
            Some(a) if a.chars().count() > 200 => v.fail("assignee", "at most 200 characters"),
            _ => {}
        },
        "unassign" => {}
        "status" => {
            if !matches!(status, Some(Some(_))) {
                v.fail(
                    "status",
                    "must be open, investigating, actioned, resolved or dismissed",
                );
            }
        }
        "comment" => {
            if b.text.is_none() {
                v.fail("text", "comment needs the text");
            }
        }
        _ => v.fail("op", "must be assign, unassign, status or comment"),
    }
    v.finish()?;
    let fp = Fingerprint {
        key: &key,
        method_path: "POST /v1/cases/bulk".into(),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let (tenant, actor) = (caller.tenant(), caller.actor());
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let mut out = Vec::with_capacity(b.ids.len());
    for id in &b.ids {
        let row = match b.op.as_str() {
            "assign" => {
                response::assign(&mut tx, tenant, &actor, *id, assignee.as_deref(), now).await
            }
            "unassign" => response::assign(&mut tx, tenant, &actor, *id, None, now).await,
            "status" => {
                let to = status.flatten().expect("validated");
                response::set_status(&mut tx, tenant, &actor, *id, to, text.as_deref(), now).await
            }
            _ => {
                response::comment(
                    &mut tx,
                    tenant,
                    &actor,
                    *id,
                    text.as_deref().unwrap_or(""),
                    now,
                )
                .await
            }
        }
        .map_err(|e| match e {
            riskdesk_app::kernel::error::AppError::Conflict(m) => {
                riskdesk_app::kernel::error::AppError::Conflict(format!("case {id}: {m}"))
            }
            riskdesk_app::kernel::error::AppError::NotFound(_) => {
                riskdesk_app::kernel::error::AppError::NotFound(format!("no such case {id}"))
            }
            other => other,
        })?;
        out.push(CaseOut::of(row, to_micros(now)));
    }
    idem::finish(
        tx,
        &caller,
        &fp,
        StatusCode::OK,
        &BulkOut {
            changed: out.len(),
            cases: out,
        },
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// suspend, disable_access, reactivate, cancel, set_budget, require_prepayment,
    /// revoke_admin_access, mark_fraudulent
    pub kind: String,
    /// The subscription (lifecycle actions).
    pub subscription_id: Option<String>,
    /// The reason it would be taken for (default: investigation; resolved for reactivate).
    pub reason: Option<String>,
}

/// What an action on the case's customer would do, by the rules that would apply it: the
/// change here, the call at Partner Center on the customer's cloud instance, the approval
/// rule, and the notice the customer would receive in their language. Nothing is changed.
#[utoipa::path(get, path = "/v1/cases/{id}/actions/preview", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path, description = "case id"), PreviewQuery),
    responses((status = 200, body = riskdesk_app::response::preview::ActionPreview),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn preview_action(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Json<riskdesk_app::response::preview::ActionPreview>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: Uuid = parse_id(&id, "case")?;
    let mut v = Validator::default();
    let kind = v.check(
        "kind",
        ActionKind::parse(&q.kind).ok_or(
            "must be suspend, disable_access, reactivate, cancel, set_budget, require_prepayment, revoke_admin_access or mark_fraudulent",
        ),
    );
    let reason = q
        .reason
        .as_deref()
        .and_then(|r| v.check("reason", Reason::parse(r).ok_or("is not a reason")));
    let subscription = q.subscription_id.as_deref().and_then(|sid| {
        v.check(
            "subscription_id",
            sid.parse::<Uuid>().map_err(|_| "is not a subscription id"),
        )
    });
    v.finish()?;
    let tenant = caller.tenant();
    let case = cases::get(s.db(), tenant, id).await?;
    let customer = case.customer_id.ok_or_else(|| {
        ApiError::Conflict(format!(
            "case {id} has no customer yet: there is nothing to act on"
        ))
    })?;
    Ok(Json(
        riskdesk_app::response::preview::preview(
            s.db(),
            tenant,
            customer,
            subscription,
            kind.expect("validated"),
            reason,
        )
        .await?,
    ))
}
