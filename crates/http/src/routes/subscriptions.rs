use crate::extract::Path;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use riskdesk_domain::customer::{parse_external_id, parse_note, parse_offer, parse_quantity};
use riskdesk_domain::{
    CustomerId, LifecycleAction, Permission, Reason, SubscriptionId, SubscriptionStatus,
};
use riskdesk_storage::{audit, customers, subscriptions};
use serde::Deserialize;
use utoipa::IntoParams;

use super::parse_id;
use crate::AppState;
use crate::dto::{
    CreateSubscription, Page, Subscription, SubscriptionActionRequest, check_limit, decode_cursor,
    page,
};
use crate::error::{ApiError, Problem, Validator};
use crate::extract::{ApiJson, ApiQuery, Caller, IdempotencyKey};
use crate::idem::{self, Fingerprint};
use riskdesk_app::accounts;
use riskdesk_app::billing::SubscriptionInput;

/// Add a subscription to a customer. It starts `active`.
#[utoipa::path(post, path = "/v1/customers/{id}/subscriptions", tag = "subscriptions", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_customers"))),
    params(("id" = uuid::Uuid, Path, description = "customer id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = CreateSubscription,
    responses(
        (status = 201, body = Subscription),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_subscription(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<CreateSubscription>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteCustomers)?;
    let customer: CustomerId = parse_id(&id, "customer")?;
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/customers/{customer}/subscriptions"),
        body_sha256: &body.body_sha256,
    };
    let b = body.value;
    let mut v = Validator::default();
    let offer = v.check("offer", parse_offer(&b.offer));
    let external_id = b
        .external_id
        .as_deref()
        .and_then(|e| v.check("external_id", parse_external_id(e)));
    let quantity = v.check("quantity", parse_quantity(b.quantity.unwrap_or(1)));
    let first_period = match (&b.first_period_amount, &b.currency) {
        (None, None) => None,
        (Some(a), Some(c)) => v
            .check(
                "currency",
                riskdesk_domain::money::Currency::parse(c).map_err(|e| e.0),
            )
            .and_then(|cur| {
                v.check(
                    "first_period_amount",
                    riskdesk_domain::money::Money::parse(a, cur)
                        .map_err(|e| e.0)
                        .and_then(|m| {
                            if m.minor > 0 {
                                Ok(m)
                            } else {
                                Err("must be more than zero".into())
                            }
                        }),
                )
            }),
        (Some(_), None) => {
            v.fail("currency", "give the currency of first_period_amount");
            None
        }
        (None, Some(_)) => {
            v.fail(
                "first_period_amount",
                "currency is only for first_period_amount",
            );
            None
        }
    };
    v.finish()?;
    let input = SubscriptionInput {
        offer: offer.unwrap_or_default(),
        external_id,
        quantity: quantity.unwrap_or(1),
        first_period,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row = riskdesk_app::billing::create_subscription(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        customer,
        input,
        now,
    )
    .await?;
    let entries = audit::for_entity_tx(&mut tx, caller.tenant(), &row.id.to_string()).await?;
    idem::finish(
        tx,
        &caller,
        &fp,
        StatusCode::CREATED,
        &Subscription::with_history(row, entries),
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListSubscriptionsQuery {
    pub status: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A customer's subscriptions, oldest first.
#[utoipa::path(get, path = "/v1/customers/{id}/subscriptions", tag = "subscriptions", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = uuid::Uuid, Path, description = "customer id"), ListSubscriptionsQuery),
    responses((status = 200, body = Page<Subscription>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list_subscriptions(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListSubscriptionsQuery>,
) -> Result<Json<Page<Subscription>>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let customer: CustomerId = parse_id(&id, "customer")?;
    let mut v = Validator::default();
    let status = q.status.as_deref().and_then(|st| {
        v.check(
            "status",
            SubscriptionStatus::parse(st)
                .ok_or("must be one of active, suspended, disabled, cancelled"),
        )
    });
    let limit = v.check(
        "limit",
        check_limit(q.limit).map_err(|_| "must be between 1 and 500"),
    );
    let after = v.check(
        "cursor",
        decode_cursor::<SubscriptionId>(&q.cursor).map_err(|_| "is not a cursor this API returned"),
    );
    v.finish()?;
    let limit = limit.unwrap_or(crate::dto::DEFAULT_LIMIT);
    customers::get(s.db(), caller.tenant(), customer).await?;
    let rows = subscriptions::list_for_customer(
        s.db(),
        caller.tenant(),
        customer,
        status,
        after.flatten(),
        limit + 1,
    )
    .await?;
    Ok(Json(page(
        rows,
        limit,
        |r| r.id.to_string(),
        Subscription::from,
    )))
}

/// One subscription with its full lifecycle history.
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "subscriptions", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Subscription), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_subscription(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Subscription>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: SubscriptionId = parse_id(&id, "subscription")?;
    let row = subscriptions::get(s.db(), caller.tenant(), id).await?;
    let filter = audit::AuditFilter {
        entity_id: Some(id.to_string()),
        ..Default::default()
    };
    let entries = audit::list(s.db(), caller.tenant(), &filter, None, 10_000).await?;
    Ok(Json(Subscription::with_history(row, entries)))
}

/// Suspend, disable (block) access, reactivate or cancel. The customer's cloud instance decides
/// what is allowed (no cancellation on 21Vianet); a refused action changes nothing.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/actions", tag = "subscriptions", security(("bearer" = [])),
    extensions(("x-permission" = json!("act_on_subscriptions"))),
    params(("id" = uuid::Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = SubscriptionActionRequest,
    responses(
        (status = 200, description = "The subscription after the action, with its history", body = Subscription),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed on the instance or in the current state", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn act(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<SubscriptionActionRequest>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ActOnSubscriptions)?;
    let id: SubscriptionId = parse_id(&id, "subscription")?;
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/subscriptions/{id}/actions"),
        body_sha256: &body.body_sha256,
    };
    let b = body.value;
    let mut v = Validator::default();
    let action = v.check(
        "action",
        LifecycleAction::parse(&b.action)
            .ok_or("must be one of suspend, disable_access, reactivate, cancel"),
    );
    let reason = v.check(
        "reason",
        Reason::parse(&b.reason).ok_or("must be one of investigation, fraud, non_payment, aup_violation, customer_request, resolved"),
    );
    let note = b
        .note
        .as_deref()
        .and_then(|n| v.check("note", parse_note(n)));
    v.finish()?;
    let (Some(action), Some(reason)) = (action, reason) else {
        return Err(ApiError::Internal(
            "validation passed with a missing value".into(),
        ));
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let (row, entries) = accounts::act_on_subscription_with_history(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        action,
        reason,
        note.as_deref(),
        now,
    )
    .await?;
    idem::finish(
        tx,
        &caller,
        &fp,
        StatusCode::OK,
        &Subscription::with_history(row, entries),
    )
    .await
}
