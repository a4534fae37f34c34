//! The provider: links to its ids, its webhook callbacks, its notices, service requests.

use crate::extract::Path;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use riskdesk_domain::response::NoticeStatus;
use riskdesk_domain::{CustomerId, Permission, SubscriptionId};
use riskdesk_storage::provider::{self, NoticeRow, ServiceRequestRow};
use riskdesk_storage::tenants;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::parse_id;
use crate::AppState;
use crate::error::{ApiError, Problem, Validator};
use crate::extract::{ApiJson, ApiQuery, Caller, IdempotencyKey};
use crate::idem::{self, Fingerprint};
use riskdesk_app::kernel::time::rfc3339;
use riskdesk_app::provider::events::{self as provider_events, NoticeInput, WebhookOutcome};
use riskdesk_app::provider::links;

/// Provider ids are the provider's GUIDs (or other opaque ids): printable, bounded.
fn provider_id(field: &str, raw: &str) -> Result<String, ApiError> {
    let t = raw.trim();
    if t.is_empty() || t.len() > 128 || !t.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::field(
            field,
            "must be the provider's id: 1 to 128 printable ASCII characters",
        ));
    }
    Ok(t.to_owned())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerLinkIn {
    /// The customer's tenant id at Partner Center.
    pub provider_customer_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerLinkOut {
    pub customer_id: Uuid,
    pub provider_customer_id: String,
    pub linked_at: String,
}

/// Links a customer to its Partner Center customer (tenant) id; actions on its subscriptions
/// are then carried out at the provider.
#[utoipa::path(put, path = "/v1/customers/{id}/provider-link", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_customers"))),
    params(("id" = Uuid, Path, description = "customer id")),
    request_body = CustomerLinkIn,
    responses((status = 200, body = CustomerLinkOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn link_customer(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<CustomerLinkIn>,
) -> Result<Json<CustomerLinkOut>, ApiError> {
    caller.require(Permission::WriteCustomers)?;
    let customer: CustomerId = parse_id(&id, "customer")?;
    let pid = provider_id("provider_customer_id", &body.value.provider_customer_id)?;
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    let l = links::link_customer(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        customer,
        &pid,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(CustomerLinkOut {
        customer_id: l.customer_id,
        provider_customer_id: l.provider_customer_id,
        linked_at: rfc3339(l.linked_at),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionLinkIn {
    /// The subscription's id at Partner Center (for an Azure subscription: its Azure plan's).
    pub provider_subscription_id: String,
    /// For an Azure subscription inside an Azure plan: its entitlement id (a cancel then
    /// cancels that Azure subscription, not the plan).
    pub azure_entitlement_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionLinkOut {
    pub subscription_id: Uuid,
    pub provider_subscription_id: String,
    pub azure_entitlement_id: Option<String>,
    /// The status Partner Center last reported (after an action or a resync).
    pub provider_status: Option<String>,
    pub synced_at: Option<String>,
    pub linked_at: String,
}

/// Links a subscription to its Partner Center subscription id.
#[utoipa::path(put, path = "/v1/subscriptions/{id}/provider-link", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_customers"))),
    params(("id" = Uuid, Path, description = "subscription id")),
    request_body = SubscriptionLinkIn,
    responses((status = 200, body = SubscriptionLinkOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn link_subscription(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<SubscriptionLinkIn>,
) -> Result<Json<SubscriptionLinkOut>, ApiError> {
    caller.require(Permission::WriteCustomers)?;
    let sid: SubscriptionId = parse_id(&id, "subscription")?;
    let pid = provider_id(
        "provider_subscription_id",
        &body.value.provider_subscription_id,
    )?;
    let entitlement = body
        .value
        .azure_entitlement_id
        .as_deref()
        .map(|e| provider_id("azure_entitlement_id", e))
        .transpose()?;
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    let l = links::link_subscription(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        sid,
        &pid,
        entitlement.as_deref(),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(SubscriptionLinkOut {
        subscription_id: l.subscription_id,
        provider_subscription_id: l.provider_subscription_id,
        azure_entitlement_id: l.provider_entitlement_id,
        provider_status: l.provider_status,
        synced_at: l.synced_at.map(rfc3339),
        linked_at: rfc3339(l.linked_at),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WebhookQuery {
    /// The tenant slug the partner registered this URL for (`…/v1/provider/webhooks?tenant=acme`).
    pub tenant: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    pub event: String,
    /// alert, resynced, recorded, duplicate, unknown_customer
    pub handled: String,
    pub alert_id: Option<Uuid>,
    pub provider_status: Option<String>,
}

/// Partner Center webhook callbacks. No bearer token: the request must carry Partner Center's
/// RSA-SHA256 signature (`Authorization: Signature …`, `X-MS-Certificate-Url` on an allowed
/// host, `X-MS-Signature-Algorithm: rsa-sha256`), checked against the certificate's chain
/// before the body is read. `azure-fraud-event-detected` and `usagerecords-thresholdExceeded`
/// raise alerts that open cases; `subscription-updated` reads the subscription back.
#[utoipa::path(post, path = "/v1/provider/webhooks", tag = "cases",
    params(WebhookQuery),
    responses((status = 200, body = WebhookOut), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn webhook(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<WebhookQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookOut>, ApiError> {
    let Some(verifier) = s.pc_webhooks.clone() else {
        return Err(ApiError::NotFound(
            "Partner Center webhooks are not configured ([partner_center_webhooks] in riskdesk.toml)"
                .into(),
        ));
    };
    let slug = q.tenant.ok_or_else(|| {
        ApiError::field(
            "tenant",
            "the webhook URL must name the tenant (?tenant=slug)",
        )
    })?;
    let tenant = tenants::by_slug(s.db(), &slug)
        .await
        .map_err(|_| ApiError::NotFound(format!("no tenant '{slug}'")))?
        .tenant_id();
    let now = s.clock.now();
    let lookup = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let ev = verifier
        .verify(&lookup, &body, now.as_second())
        .await
        .map_err(|e| ApiError::Unauthorized(format!("webhook refused: {e}")))?;
    let WebhookOutcome {
        event,
        handled,
        alert_id,
        provider_status,
    } = provider_events::handle_webhook(&s.ctx, &s.provider, tenant, &ev, &body, now).await?;
    Ok(Json(WebhookOut {
        event,
        handled,
        alert_id,
        provider_status,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeOut {
    pub id: Uuid,
    pub customer_id: Option<Uuid>,
    pub case_id: Option<Uuid>,
    pub message_id: Option<String>,
    pub received_at: String,
    pub sender: String,
    pub subject: String,
    pub body: String,
    pub provider_action: Option<String>,
    pub requested_action: Option<String>,
    pub deadline_at: Option<String>,
    /// received, reviewed, acted, responded
    pub status: String,
    pub response: Option<String>,
    pub updated_at: String,
}

impl From<NoticeRow> for NoticeOut {
    fn from(n: NoticeRow) -> Self {
        NoticeOut {
            id: n.id,
            customer_id: n.customer_id,
            case_id: n.case_id,
            message_id: n.message_id,
            received_at: rfc3339(n.received_at),
            sender: n.sender,
            subject: n.subject,
            body: n.body,
            provider_action: n.provider_action,
            requested_action: n.requested_action,
            deadline_at: n.deadline_at.map(rfc3339),
            status: n.status,
            response: n.response,
            updated_at: rfc3339(n.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeIn {
    /// The customer concerned; without it, provider ids found in the text decide.
    pub customer_id: Option<Uuid>,
    /// The email's Message-ID (a notice is recorded once per message).
    pub message_id: Option<String>,
    /// When the provider sent it (RFC 3339; default now).
    pub received_at: Option<String>,
    pub sender: String,
    pub subject: String,
    pub body: String,
    /// What the provider did (e.g. "suspended the subscription").
    pub provider_action: Option<String>,
    /// What it asks of the partner.
    pub requested_action: Option<String>,
    /// The provider's deadline for an answer (RFC 3339).
    pub deadline: Option<String>,
    /// Case severity (default medium: the notice SLA of 24 h applies).
    pub severity: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeCreated {
    pub notice: NoticeOut,
    pub case_id: Uuid,
    pub case_due_at: String,
}

fn bounded(v: &mut Validator, field: &str, s: &str, max: usize) -> Option<String> {
    v.check(
        field,
        riskdesk_domain::values::bounded_text(field, s, max).map_err(|e| e.0),
    )
}

/// Records a provider notice (Acceptable Use Policy enforcement arrives by email) and opens
/// its case with the notice SLA.
#[utoipa::path(post, path = "/v1/provider/notices", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = NoticeIn,
    responses((status = 201, body = NoticeCreated), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "`customer_id` names no customer of the tenant", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_notice(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<NoticeIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WorkCases)?;
    let b = &body.value;
    let mut v = Validator::default();
    let sender = bounded(&mut v, "sender", &b.sender, 320);
    let subject = bounded(&mut v, "subject", &b.subject, 500);
    let text = bounded(&mut v, "body", &b.body, 100_000);
    let time = |v: &mut Validator, f: &str, t: &Option<String>| {
        t.as_deref().and_then(|t| {
            v.check(
                f,
                t.parse::<Timestamp>()
                    .map_err(|_| "is not an RFC 3339 time"),
            )
        })
    };
    let received_at = time(&mut v, "received_at", &b.received_at);
    let deadline = time(&mut v, "deadline", &b.deadline);
    if let Some(sev) = &b.severity
        && !riskdesk_domain::response::case::SEVERITIES.contains(&sev.as_str())
    {
        v.fail("severity", "must be info, low, medium, high or critical");
    }
    v.finish()?;
    let fp = Fingerprint {
        key: &key,
        method_path: "POST /v1/provider/notices".into(),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let (n, case) = provider_events::record_notice(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        NoticeInput {
            customer: b.customer_id,
            message_id: b.message_id.clone(),
            received_at,
            sender: sender.unwrap_or_default(),
            subject: subject.unwrap_or_default(),
            body: text.unwrap_or_default(),
            provider_action: b.provider_action.clone(),
            requested_action: b.requested_action.clone(),
            deadline,
            severity: b.severity.clone(),
        },
        now,
    )
    .await?;
    let out = NoticeCreated {
        notice: n.into(),
        case_id: case.id,
        case_due_at: rfc3339(case.due_at),
    };
    idem::finish(tx, &caller, &fp, StatusCode::CREATED, &out).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NoticesQuery {
    /// received, reviewed, acted, responded
    pub status: Option<String>,
    pub customer_id: Option<String>,
}

/// Provider notices, newest first.
#[utoipa::path(get, path = "/v1/provider/notices", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(NoticesQuery),
    responses((status = 200, body = Vec<NoticeOut>)))]
pub async fn list_notices(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<NoticesQuery>,
) -> Result<Json<Vec<NoticeOut>>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    if let Some(st) = &q.status
        && NoticeStatus::parse(st).is_none()
    {
        return Err(ApiError::field(
            "status",
            "must be received, reviewed, acted or responded",
        ));
    }
    let customer = super::customer_filter(&q.customer_id)?;
    let rows =
        provider::notices(s.db(), caller.tenant(), q.status.as_deref(), customer, 500).await?;
    Ok(Json(rows.into_iter().map(NoticeOut::from).collect()))
}

/// One provider notice.
#[utoipa::path(get, path = "/v1/provider/notices/{id}", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path, description = "notice id")),
    responses((status = 200, body = NoticeOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_notice(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<NoticeOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: Uuid = parse_id(&id, "notice")?;
    Ok(Json(
        provider::notice(s.db(), caller.tenant(), id).await?.into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeStatusIn {
    /// reviewed, acted, responded (forward only)
    pub status: String,
    /// The answer sent to the provider (needed for `responded`).
    pub response: Option<String>,
}

/// Moves a notice forward: received → reviewed → acted → responded.
#[utoipa::path(post, path = "/v1/provider/notices/{id}/status", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("id" = Uuid, Path, description = "notice id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = NoticeStatusIn,
    responses((status = 200, body = NoticeOut), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn notice_status(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<NoticeStatusIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WorkCases)?;
    let id: Uuid = parse_id(&id, "notice")?;
    let mut v = Validator::default();
    let to = v.check(
        "status",
        NoticeStatus::parse(&body.value.status).ok_or("must be reviewed, acted or responded"),
    );
    let response = body
        .value
        .response
        .as_deref()
        .and_then(|r| bounded(&mut v, "response", r, 20_000));
    v.finish()?;
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/provider/notices/{id}/status"),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let n = provider_events::advance_notice(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        to.expect("validated"),
        response,
        now,
    )
    .await?;
    idem::finish(tx, &caller, &fp, StatusCode::OK, &NoticeOut::from(n)).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceRequestOut {
    pub id: Uuid,
    pub case_id: Uuid,
    pub customer_id: Option<Uuid>,
    /// What to paste into the provider's portal.
    pub title: String,
    /// critical, moderate, minimal (the provider's scale)
    pub severity: String,
    pub description: String,
    pub ticket_id: Option<String>,
    /// draft, filed, then the provider's: open, attention_needed, closed, …
    pub status: String,
    /// The provider's notes on the ticket, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub notes: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    pub synced_at: Option<String>,
}

impl From<ServiceRequestRow> for ServiceRequestOut {
    fn from(r: ServiceRequestRow) -> Self {
        ServiceRequestOut {
            id: r.id,
            case_id: r.case_id,
            customer_id: r.customer_id,
            title: r.title,
            severity: r.severity,
            description: r.description,
            ticket_id: r.ticket_id,
            status: r.status,
            notes: serde_json::from_str(&r.notes_json).unwrap_or_default(),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            synced_at: r.synced_at.map(rfc3339),
        }
    }
}

/// Prepares a service request from a case. The provider retired its create API (August
/// 2020): staff paste the title and description into the portal, then record the ticket id.
#[utoipa::path(post, path = "/v1/cases/{id}/service-requests", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("id" = Uuid, Path, description = "case id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    responses((status = 201, body = ServiceRequestOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn prepare_service_request(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WorkCases)?;
    let id: Uuid = parse_id(&id, "case")?;
    let fp = Fingerprint::without_body(&key, format!("POST /v1/cases/{id}/service-requests"));
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let r = provider_events::prepare_service_request(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        now,
    )
    .await?;
    idem::finish(
        tx,
        &caller,
        &fp,
        StatusCode::CREATED,
        &ServiceRequestOut::from(r),
    )
    .await
}

/// One service request.
#[utoipa::path(get, path = "/v1/service-requests/{id}", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path, description = "service request id")),
    responses((status = 200, body = ServiceRequestOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_service_request(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ServiceRequestOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: Uuid = parse_id(&id, "service request")?;
    Ok(Json(
        provider::service_request(s.db(), caller.tenant(), id)
            .await?
            .into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketIn {
    /// The ticket id the provider's portal gave the request.
    pub ticket_id: String,
}

/// Records the ticket id once the request is filed in the portal.
#[utoipa::path(put, path = "/v1/service-requests/{id}", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("id" = Uuid, Path, description = "service request id")),
    request_body = TicketIn,
    responses((status = 200, body = ServiceRequestOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn record_ticket(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<TicketIn>,
) -> Result<Json<ServiceRequestOut>, ApiError> {
    caller.require(Permission::WorkCases)?;
    let id: Uuid = parse_id(&id, "service request")?;
    let ticket = provider_id("ticket_id", &body.value.ticket_id)?;
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    let r =
        provider_events::record_ticket(&mut tx, caller.tenant(), &caller.actor(), id, &ticket, now)
            .await?;
    tx.commit().await?;
    Ok(Json(r.into()))
}

/// Reads the ticket's status and notes from the provider (`attention_needed` notifies staff).
#[utoipa::path(post, path = "/v1/service-requests/{id}/sync", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("id" = Uuid, Path, description = "service request id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Accepted; a sync is safe to repeat")),
    responses((status = 200, body = ServiceRequestOut), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 502, body = Problem, content_type = "application/problem+json")))]
pub async fn sync_service_request(
    State(s): State<AppState>,
    caller: Caller,
    _key: IdempotencyKey,
    Path(id): Path<String>,
) -> Result<Json<ServiceRequestOut>, ApiError> {
    caller.require(Permission::WorkCases)?;
    let id: Uuid = parse_id(&id, "service request")?;
    let r = provider_events::sync_service_request(
        &s.ctx,
        &s.provider,
        caller.tenant(),
        id,
        s.clock.now(),
    )
    .await?;
    Ok(Json(r.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteIn {
    pub text: String,
}

/// Adds a note to the provider's ticket (PATCH at the provider, with the Idempotency-Key as
/// its MS-RequestId so a retry adds it once).
#[utoipa::path(post, path = "/v1/service-requests/{id}/notes", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("id" = Uuid, Path, description = "service request id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = NoteIn,
    responses((status = 200, body = ServiceRequestOut), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 502, body = Problem, content_type = "application/problem+json")))]
pub async fn add_note(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<NoteIn>,
) -> Result<Json<ServiceRequestOut>, ApiError> {
    caller.require(Permission::WorkCases)?;
    let id: Uuid = parse_id(&id, "service request")?;
    let text = riskdesk_domain::customer::parse_note(&body.value.text)
        .map_err(|e| ApiError::field("text", e.0))?;
    let request_id = key
        .0
        .clone()
        .map(|k| format!("{id}:{k}"))
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    let r = provider_events::add_service_request_note(
        &s.ctx,
        &s.provider,
        caller.tenant(),
        &caller.actor(),
        id,
        &text,
        &request_id,
        s.clock.now(),
    )
    .await?;
    Ok(Json(r.into()))
}

// ---- Connecting a cloud instance as a partner (the Secure Application Model) ----

use riskdesk_app::provider::consent::{self, Callback, Connection, ConsentStart};

/// Connecting and disconnecting the installation's Partner Center instances: an admin
/// (`manage_integrations`) of an operator tenant (`provider_operators`; any tenant when none
/// is set).
fn require_operator(s: &AppState, caller: &Caller) -> Result<(), ApiError> {
    caller.require(Permission::ManageIntegrations)?;
    consent::may_operate(&s.app.options.provider_operators, caller.tenant())?;
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    pub items: Vec<Connection>,
}

/// Each configured cloud instance's Partner Center connection: whether app + user calls
/// (fraud events, service requests) can be made, when the consent was given, rotated or lost.
/// Never a token.
#[utoipa::path(get, path = "/v1/provider/connections", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    responses((status = 200, body = ConnectionList)))]
pub async fn list_connections(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<ConnectionList>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let items = consent::connections(
        &s.app.ctx,
        &s.app.provider,
        s.app.options.provider_token_keys.as_ref(),
    )
    .await?;
    Ok(Json(ConnectionList { items }))
}

/// `POST /v1/provider/connections/{instance}/consent`: an empty object.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentIn {}

/// Starts connecting an instance: returns the Entra ID consent page (authorization code with
/// PKCE) for a partner admin to open, sign in to with MFA and consent on; Entra ID then sends
/// the browser to `/v1/provider/consent/callback`. The page must come back within ten
/// minutes.
#[utoipa::path(post, path = "/v1/provider/connections/{instance}/consent", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("manage_integrations"))),
    params(("instance" = String, Path, description = "global, us_government, germany or china_21vianet"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = ConsentIn,
    responses((status = 201, body = ConsentStart),
              (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn start_consent(
    State(s): State<AppState>,
    caller: Caller,
    Path(instance): Path<String>,
    key: IdempotencyKey,
    body: ApiJson<ConsentIn>,
) -> Result<Response, ApiError> {
    require_operator(&s, &caller)?;
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/provider/connections/{instance}/consent"),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let out = consent::start(
        &mut tx,
        &s.app.provider,
        s.app.options.provider_token_keys.as_ref(),
        caller.tenant(),
        &caller.actor(),
        &instance,
        now,
    )
    .await?;
    idem::finish(tx, &caller, &fp, StatusCode::CREATED, &out).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsentCallbackQuery {
    /// The state riskdesk sent (it completes one flow, once).
    #[param(required = true, min_length = 1, max_length = 256)]
    pub state: Option<String>,
    /// The authorization code.
    pub code: Option<String>,
    /// Sent by Entra ID beside the code; not used.
    pub session_state: Option<String>,
    /// Sent instead of a code when the admin declined or sign-in failed.
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub error_uri: Option<String>,
}

/// Where Entra ID sends the partner admin's browser back after consent (register it as the
/// app's redirect URI and as `redirect_uri` under `[partner_center.<instance>]`). No bearer
/// token: the one-time `state` is the credential. The code is redeemed with the flow's PKCE
/// verifier and the refresh token stored encrypted. A browser (`Accept: text/html`) is sent
/// on to the dashboard's Partner Center page (303); any other client gets the connection.
#[utoipa::path(get, path = "/v1/provider/consent/callback", tag = "cases",
    params(ConsentCallbackQuery),
    responses((status = 200, body = Connection),
              (status = 303, description = "A browser: on to `/ui/admin/provider?connected=<instance>`"),
              (status = 400, description = "Unknown or expired state, or consent declined", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "Partner Center is not configured for the flow's instance", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "No key to encrypt the consent with (`provider_token_keys`)", body = Problem, content_type = "application/problem+json"),
              (status = 502, body = Problem, content_type = "application/problem+json")))]
pub async fn consent_callback(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    ApiQuery(q): ApiQuery<ConsentCallbackQuery>,
) -> Result<Response, ApiError> {
    let state = q
        .state
        .as_deref()
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .ok_or_else(|| {
            ApiError::field(
                "state",
                "the redirect carries no state (or one longer than 256 characters)",
            )
        })?;
    if q.code.as_ref().is_some_and(|c| c.len() > 8192) {
        return Err(ApiError::field("code", "longer than 8192 characters"));
    }
    let out = consent::complete(
        &s.app.ctx,
        &s.app.provider,
        s.app.options.provider_token_keys.as_ref(),
        Callback {
            state,
            code: q.code.as_deref(),
            error: q.error.as_deref(),
            error_description: q.error_description.as_deref(),
        },
        s.clock.now(),
    )
    .await?;
    let browser = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if browser {
        return Ok(axum::response::Redirect::to(&format!(
            "/ui/admin/provider?connected={}",
            out.instance
        ))
        .into_response());
    }
    Ok(Json(out).into_response())
}

/// Forgets an instance's consent (its refresh token is deleted); app + user calls wait until
/// it is connected again.
#[utoipa::path(delete, path = "/v1/provider/connections/{instance}", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("manage_integrations"))),
    params(("instance" = String, Path, description = "global, us_government, germany or china_21vianet")),
    responses((status = 200, body = Connection)))]
pub async fn disconnect(
    State(s): State<AppState>,
    caller: Caller,
    Path(instance): Path<String>,
) -> Result<Json<Connection>, ApiError> {
    require_operator(&s, &caller)?;
    let out = consent::disconnect(
        &s.app.ctx,
        &s.app.provider,
        caller.tenant(),
        &caller.actor(),
        &instance,
        s.clock.now(),
    )
    .await?;
    Ok(Json(out))
}
