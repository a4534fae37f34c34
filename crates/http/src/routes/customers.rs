use crate::extract::Path;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use riskdesk_domain::customer::{CustomerPatch, NewCustomer, parse_external_id, parse_name};
use riskdesk_domain::{
    CloudInstance, CountryCode, CustomerId, DomainName, Email, Locale, Permission, Phone,
};
use riskdesk_storage::customers::{self, CustomerFilter};
use serde::Deserialize;
use utoipa::IntoParams;

use super::parse_id;
use crate::AppState;
use crate::dto::{CreateCustomer, Customer, Page, PatchCustomer, check_limit, decode_cursor, page};
use crate::error::{ApiError, Problem, Validator};
use crate::extract::{ApiJson, ApiQuery, Caller, IdempotencyKey};
use crate::idem::{self, Fingerprint};
use riskdesk_app::accounts;

fn cloud_instance(s: &str) -> Result<CloudInstance, String> {
    CloudInstance::parse(s).ok_or_else(|| {
        format!(
            "'{s}' is not a cloud instance; one of global, us_government, germany, china_21vianet"
        )
    })
}

fn validate_new(c: CreateCustomer) -> Result<NewCustomer, ApiError> {
    let mut v = Validator::default();
    let name = v.check("name", parse_name(&c.name));
    let domain = v.check("domain", DomainName::parse(&c.domain));
    let country = v.check("country", CountryCode::parse(&c.country));
    let email = v.check("email", Email::parse(&c.email));
    let phone = match &c.phone {
        Some(p) => v.check("phone", Phone::parse(p)).map(Some),
        None => Some(None),
    };
    let locale = v.check("locale", Locale::parse(c.locale.as_deref().unwrap_or("en")));
    let cloud = v.check("cloud_instance", cloud_instance(&c.cloud_instance));
    let external_id = match &c.external_id {
        Some(e) => v.check("external_id", parse_external_id(e)).map(Some),
        None => Some(None),
    };
    v.finish()?;
    // Every Option is Some once the validator found no error.
    match (
        name,
        domain,
        country,
        email,
        phone,
        locale,
        cloud,
        external_id,
    ) {
        (
            Some(name),
            Some(domain),
            Some(country),
            Some(email),
            Some(phone),
            Some(locale),
            Some(cloud_instance),
            Some(external_id),
        ) => Ok(NewCustomer {
            name,
            domain,
            country,
            email,
            phone,
            locale,
            cloud_instance,
            external_id,
        }),
        _ => Err(ApiError::Internal(
            "validation passed with a missing value".into(),
        )),
    }
}

fn validate_patch(p: PatchCustomer) -> Result<CustomerPatch, ApiError> {
    let mut v = Validator::default();
    if p.cloud_instance.is_some() {
        v.fail(
            "cloud_instance",
            "cannot be changed: a customer belongs to one cloud instance for life",
        );
    }
    let patch = CustomerPatch {
        name: p
            .name
            .as_deref()
            .and_then(|s| v.check("name", parse_name(s))),
        domain: p
            .domain
            .as_deref()
            .and_then(|s| v.check("domain", DomainName::parse(s))),
        country: p
            .country
            .as_deref()
            .and_then(|s| v.check("country", CountryCode::parse(s))),
        email: p
            .email
            .as_deref()
            .and_then(|s| v.check("email", Email::parse(s))),
        phone: match p.phone {
            None => None,
            Some(None) => Some(None),
            Some(Some(s)) => v.check("phone", Phone::parse(&s)).map(Some),
        },
        locale: p
            .locale
            .as_deref()
            .and_then(|s| v.check("locale", Locale::parse(s))),
        external_id: match p.external_id {
            None => None,
            Some(None) => Some(None),
            Some(Some(s)) => v.check("external_id", parse_external_id(&s)).map(Some),
        },
    };
    v.finish()?;
    Ok(patch)
}

/// Register a customer.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_customers"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry: same key and body give the same response, once")),
    request_body = CreateCustomer,
    responses(
        (status = 201, body = Customer),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "external_id already used", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_customer(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<CreateCustomer>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteCustomers)?;
    let fp = Fingerprint {
        key: &key,
        method_path: "POST /v1/customers".into(),
        body_sha256: &body.body_sha256,
    };
    let new = validate_new(body.value)?;
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row =
        accounts::create_customer(&mut tx, caller.tenant(), &caller.actor(), &new, now).await?;
    idem::finish(tx, &caller, &fp, StatusCode::CREATED, &Customer::from(row)).await
}

/// Read one customer.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Customer), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_customer(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Customer>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: CustomerId = parse_id(&id, "customer")?;
    Ok(Json(
        customers::get(s.db(), caller.tenant(), id).await?.into(),
    ))
}

/// Change a customer (JSON merge patch: absent fields stay, `null` clears `phone` or `external_id`).
#[utoipa::path(patch, path = "/v1/customers/{id}", tag = "customers", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_customers"))),
    params(("id" = uuid::Uuid, Path)),
    request_body(content = PatchCustomer, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, body = Customer),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch_customer(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<PatchCustomer>,
) -> Result<Json<Customer>, ApiError> {
    caller.require(Permission::WriteCustomers)?;
    let id: CustomerId = parse_id(&id, "customer")?;
    let patch = validate_patch(body.value)?;
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    let row = accounts::update_customer(&mut tx, caller.tenant(), &caller.actor(), id, &patch, now)
        .await?;
    tx.commit().await?;
    Ok(Json(row.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListCustomersQuery {
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub cloud_instance: Option<String>,
    pub external_id: Option<String>,
    /// Case-insensitive part of the name.
    pub name_contains: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List customers, oldest first, with filters and cursor pagination.
#[utoipa::path(get, path = "/v1/customers", tag = "customers", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(ListCustomersQuery),
    responses((status = 200, body = Page<Customer>), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_customers(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListCustomersQuery>,
) -> Result<Json<Page<Customer>>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let mut v = Validator::default();
    let country = q
        .country
        .as_deref()
        .and_then(|c| v.check("country", CountryCode::parse(c)));
    let cloud = q
        .cloud_instance
        .as_deref()
        .and_then(|c| v.check("cloud_instance", cloud_instance(c)));
    let limit = v.check(
        "limit",
        check_limit(q.limit).map_err(|e| e.to_string().replace("limit: ", "")),
    );
    let after = v.check(
        "cursor",
        decode_cursor::<CustomerId>(&q.cursor).map_err(|_| "is not a cursor this API returned"),
    );
    v.finish()?;
    let limit = limit.unwrap_or(crate::dto::DEFAULT_LIMIT);
    let filter = CustomerFilter {
        country: country.map(|c| c.to_string()),
        cloud_instance: cloud.map(|c| c.as_str().to_owned()),
        external_id: q.external_id,
        name_contains: q.name_contains,
    };
    let rows =
        customers::list(s.db(), caller.tenant(), &filter, after.flatten(), limit + 1).await?;
    Ok(Json(page(
        rows,
        limit,
        |r| r.id.to_string(),
        Customer::from,
    )))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FraudRequest {
    /// What confirmed the fraud (e.g. "issuer confirmed the card stolen").
    pub note: Option<String>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LinkedCustomer {
    pub customer_id: uuid::Uuid,
    /// The identifier shared, `kind:value` (email, phone, card, device, ip).
    pub shared: String,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FraudOutcome {
    pub customer: Customer,
    /// Customers sharing an identifier with this one; each is flagged for review.
    pub linked: Vec<LinkedCustomer>,
}

/// Mark a customer fraudulent. Its identifiers become fraud signals for future sign-ups
/// (`linked_to_fraud`), and every customer sharing one is flagged for review and listed.
#[utoipa::path(post, path = "/v1/customers/{id}/fraud", tag = "customers", security(("bearer" = [])),
    extensions(("x-permission" = json!("act_on_subscriptions"))),
    params(("id" = uuid::Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = FraudRequest,
    responses((status = 200, body = FraudOutcome), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn mark_fraud(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<FraudRequest>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ActOnSubscriptions)?;
    let id: CustomerId = parse_id(&id, "customer")?;
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/customers/{id}/fraud"),
        body_sha256: &body.body_sha256,
    };
    let mut v = Validator::default();
    let note = body
        .value
        .note
        .as_deref()
        .and_then(|n| v.check("note", riskdesk_domain::customer::parse_note(n)));
    v.finish()?;
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let (row, linked) = riskdesk_app::onboarding::mark_fraudulent(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        note.as_deref(),
        now,
    )
    .await?;
    let out = FraudOutcome {
        customer: row.into(),
        linked: linked
            .into_iter()
            .map(|(customer_id, shared)| LinkedCustomer {
                customer_id,
                shared,
            })
            .collect(),
    };
    idem::finish(tx, &caller, &fp, StatusCode::OK, &out).await
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminAccessRequest {
    /// RFC 3339; the time the conditions are judged at. Default now.
    pub as_of: Option<String>,
}

/// Grant the customer full administrative access — only once the risk controls are met
/// (verified, first payment received, N days as a customer); otherwise 409 listing what is
/// missing in `errors`.
#[utoipa::path(post, path = "/v1/customers/{id}/admin-access", tag = "customers", security(("bearer" = [])),
    extensions(("x-permission" = json!("act_on_subscriptions"))),
    params(("id" = uuid::Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = AdminAccessRequest,
    responses((status = 200, body = Customer), (status = 409, description = "Conditions not met (listed in errors)", body = Problem, content_type = "application/problem+json")))]
pub async fn grant_admin_access(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<AdminAccessRequest>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ActOnSubscriptions)?;
    let id: CustomerId = parse_id(&id, "customer")?;
    let now = s.clock.now();
    let as_of = match &body.value.as_of {
        None => now,
        Some(t) => t
            .parse::<jiff::Timestamp>()
            .map_err(|e| ApiError::field("as_of", format!("'{t}' is not an RFC 3339 time: {e}")))?,
    };
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/customers/{id}/admin-access"),
        body_sha256: &body.body_sha256,
    };
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row = riskdesk_app::onboarding::mfa::grant_admin(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        &s.risk.policy,
        as_of,
        now,
    )
    .await?;
    idem::finish(tx, &caller, &fp, StatusCode::OK, &Customer::from(row)).await
}
