//! The dunning policy and its runs, per-customer overrides and state, the collections policy
//! document, payment instruments, webhook endpoints and the outbox's delivery log.

use crate::extract::Path;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use riskdesk_domain::billing::Day;
use riskdesk_domain::billing::dunning::Policy;
use riskdesk_domain::money::Currency;
use riskdesk_domain::{CloudInstance, CustomerId, Locale, Permission};
use riskdesk_storage::billing::{self, InstrumentRow};
use riskdesk_storage::customers;
use riskdesk_storage::dunning as store;
use riskdesk_storage::outbox::{self, OutboxFilter, OutboxRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::parse_id;
use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, Caller, IdempotencyKey};
use crate::idem::{self, Fingerprint};
use riskdesk_app::billing::collections as ops;
use riskdesk_app::billing::dunning::RunSummary;
use riskdesk_app::kernel::notices::{self, DocFormat};
use riskdesk_app::kernel::time::rfc3339;

fn problems_to_error(p: &Policy) -> Result<(), ApiError> {
    let problems = p.problems();
    if problems.is_empty() {
        return Ok(());
    }
    let mut v = crate::error::Validator::default();
    for (f, m) in problems {
        v.fail(&f, m);
    }
    Ok(v.finish()?)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyOut {
    /// `tenant` (set with PUT), or `default` (the installation's).
    pub source: String,
    pub policy: Policy,
}

/// The tenant's dunning ladder.
#[utoipa::path(get, path = "/v1/dunning/policy", tag = "collections", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    responses((status = 200, body = PolicyOut)))]
pub async fn get_policy(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<PolicyOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let json = store::policy(s.db(), caller.tenant()).await?;
    let (policy, source) = riskdesk_app::billing::dunning::applicable_policy(
        None,
        json.as_deref(),
        &s.dunning_policy,
    )?;
    Ok(Json(PolicyOut {
        source: source.into(),
        policy,
    }))
}

/// Set the tenant's dunning ladder (audited). Every open invoice is re-evaluated by the next run.
#[utoipa::path(put, path = "/v1/dunning/policy", tag = "collections", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    request_body = Policy,
    responses((status = 200, body = PolicyOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_policy(
    State(s): State<AppState>,
    caller: Caller,
    body: ApiJson<Policy>,
) -> Result<Json<PolicyOut>, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let p = body.value;
    problems_to_error(&p)?;
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    ops::set_policy(&mut tx, caller.tenant(), &caller.actor(), &p, now).await?;
    tx.commit().await?;
    Ok(Json(PolicyOut {
        source: "tenant".into(),
        policy: p,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// The day to run the ladder for, `YYYY-MM-DD` (default today, UTC).
    pub as_of: Option<String>,
}

/// Run the dunning ladder for a day now (the server also runs it on its schedule). Idempotent:
/// a second run for the same day does nothing new; a run after missed days sends every
/// skipped notice, in order.
#[utoipa::path(post, path = "/v1/dunning/run", tag = "collections", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    params(RunQuery, ("Idempotency-Key" = Option<String>, Header, description = "A retried request gets the first run's summary")),
    responses((status = 200, body = RunSummary)))]
pub async fn run(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    ApiQuery(q): ApiQuery<RunQuery>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let now = s.clock.now();
    let day = match &q.as_of {
        None => Day::of(now),
        Some(d) => Day::parse_date_or_instant(d).map_err(|e| ApiError::field("as_of", e.0))?,
    };
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/dunning/run?as_of={day}"),
        body_sha256: "",
    };
    // The run commits in batches of customers, so the key is checked first and recorded after;
    // a retry racing the first run runs the ladder again, which is idempotent.
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    drop(tx);
    let summary = riskdesk_app::billing::dunning::run_tenant(
        &s.ctx,
        caller.tenant(),
        &s.dunning_policy,
        day,
        now,
    )
    .await?;
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    idem::finish(tx, &caller, &fp, StatusCode::OK, &summary).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideIn {
    /// A whole ladder for this customer instead of the tenant's (null: the tenant's).
    pub policy: Option<Policy>,
    /// Notices continue, levers never fire (and any in force are undone).
    #[serde(default)]
    pub enforcement_off: bool,
    /// No notices, no levers.
    #[serde(default)]
    pub excluded: bool,
    /// Hold the whole account until this day (`YYYY-MM-DD`, exclusive).
    pub hold_until: Option<String>,
    pub hold_reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepSent {
    pub invoice_id: Uuid,
    pub step: String,
    pub day: String,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeverOut {
    pub subscription_id: Uuid,
    pub lever: String,
    pub status_set: String,
    pub applied_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerDunning {
    pub customer_id: Uuid,
    pub policy: Policy,
    /// `tenant`, `default` or `customer`.
    pub policy_source: String,
    pub enforcement_off: bool,
    pub excluded: bool,
    pub hold_until: Option<String>,
    pub hold_reason: Option<String>,
    pub purchases_blocked: bool,
    /// Every step sent, oldest first.
    pub steps: Vec<StepSent>,
    /// Subscriptions whose state dunning set (undone when the customer pays up).
    pub levers: Vec<LeverOut>,
}

async fn customer_dunning(
    s: &AppState,
    caller: &Caller,
    id: CustomerId,
) -> Result<CustomerDunning, ApiError> {
    let tenant = caller.tenant();
    let c = customers::get(s.db(), tenant, id).await?;
    let ov = store::override_of(s.db(), tenant, id.0)
        .await?
        .unwrap_or_default();
    let tenant_json = match ov.policy_json {
        Some(_) => None,
        None => store::policy(s.db(), tenant).await?,
    };
    let (policy, source) = riskdesk_app::billing::dunning::applicable_policy(
        ov.policy_json.as_deref(),
        tenant_json.as_deref(),
        &s.dunning_policy,
    )?;
    Ok(CustomerDunning {
        customer_id: c.id,
        policy,
        policy_source: source.into(),
        enforcement_off: ov.enforcement_off,
        excluded: ov.excluded,
        hold_until: ov.hold_until_day.map(|d| Day(d).to_string()),
        hold_reason: ov.hold_reason,
        purchases_blocked: c.purchases_blocked,
        steps: store::steps_of_customer(s.db(), tenant, id.0)
            .await?
            .into_iter()
            .map(|r| StepSent {
                invoice_id: r.invoice_id,
                step: r.step,
                day: Day(r.sent_day).to_string(),
                at: rfc3339(r.at),
            })
            .collect(),
        levers: store::levers_of_customer(s.db(), tenant, id.0)
            .await?
            .into_iter()
            .map(|l| LeverOut {
                subscription_id: l.subscription_id,
                lever: l.lever,
                status_set: l.status_set,
                applied_at: rfc3339(l.applied_at),
            })
            .collect(),
    })
}

/// A customer's place on the ladder: the policy that applies, every step sent, the levers in
/// force, overrides.
#[utoipa::path(get, path = "/v1/customers/{id}/dunning", tag = "collections", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = CustomerDunning), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_customer_dunning(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CustomerDunning>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: CustomerId = parse_id(&id, "customer")?;
    Ok(Json(customer_dunning(&s, &caller, id).await?))
}

/// Set a customer's dunning override (audited): its own ladder, enforcement off, excluded, or
/// a manual hold. Levers are brought in line at once.
#[utoipa::path(put, path = "/v1/customers/{id}/dunning", tag = "collections", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    params(("id" = Uuid, Path)),
    request_body = OverrideIn,
    responses((status = 200, body = CustomerDunning), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_customer_dunning(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<OverrideIn>,
) -> Result<Json<CustomerDunning>, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let id: CustomerId = parse_id(&id, "customer")?;
    let b = body.value;
    if let Some(p) = &b.policy {
        problems_to_error(p)?;
    }
    let hold_until = match &b.hold_until {
        None => None,
        Some(d) => Some(Day::parse(d).map_err(|e| ApiError::field("hold_until", e.0))?),
    };
    let input = ops::DunningOverride {
        policy: b.policy,
        enforcement_off: b.enforcement_off,
        excluded: b.excluded,
        hold_until,
        hold_reason: b.hold_reason,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    ops::set_override(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        input,
        &s.dunning_policy,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(customer_dunning(&s, &caller, id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DocQuery {
    /// `html` (default) or `text`.
    pub format: Option<String>,
    /// Another language than the customer's (en, zh-CN, zh-TW, fr-FR, pt-BR).
    pub locale: Option<String>,
}

/// The collections policy that applies to this customer, in its language: when each notice
/// comes and when access is affected — generated from the same ladder the engine runs.
#[utoipa::path(get, path = "/v1/customers/{id}/collections-policy", tag = "collections", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path), DocQuery),
    responses((status = 200, description = "The policy as HTML (`format=html`, the default) or plain text (`format=text`)",
               content((String = "text/html"), (String = "text/plain"))),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn collections_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DocQuery>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: CustomerId = parse_id(&id, "customer")?;
    let fmt = match q.format.as_deref() {
        None | Some("html") => DocFormat::Html,
        Some("text") => DocFormat::Text,
        Some(o) => {
            return Err(ApiError::field(
                "format",
                format!("'{o}' is not html or text"),
            ));
        }
    };
    let c = customers::get(s.db(), caller.tenant(), id).await?;
    let locale = match &q.locale {
        Some(l) => Locale::parse(l).map_err(|e| ApiError::field("locale", e.0))?,
        None => Locale::parse(&c.locale).unwrap_or(Locale::En),
    };
    let d = customer_dunning(&s, &caller, id).await?;
    let instance = CloudInstance::parse(&c.cloud_instance).unwrap_or(CloudInstance::Global);
    let currency = c
        .credit_currency
        .as_deref()
        .and_then(|x| Currency::parse(x).ok());
    let doc = notices::render_policy(locale, &d.policy, instance, currency, fmt);
    let ct = match fmt {
        DocFormat::Html => "text/html; charset=utf-8",
        DocFormat::Text => "text/plain; charset=utf-8",
    };
    Ok((
        [
            (header::CONTENT_TYPE, ct),
            (header::CONTENT_LANGUAGE, locale.as_str()),
        ],
        doc,
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstrumentIn {
    /// card, bank_transfer or invoice
    #[serde(rename = "type")]
    pub kind: String,
    /// Cards: the first 6–8 digits.
    pub bin: Option<String>,
    /// Cards: the last four digits.
    pub last4: Option<String>,
    /// Cards: the issuing country, if known.
    pub country: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstrumentOut {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub bin: Option<String>,
    pub last4: Option<String>,
    pub country: Option<String>,
    /// From the BIN table: credit, debit, prepaid, … (absent when unknown).
    pub funding: Option<String>,
    pub created_at: String,
}

impl From<InstrumentRow> for InstrumentOut {
    fn from(r: InstrumentRow) -> Self {
        InstrumentOut {
            id: r.id,
            kind: r.kind,
            bin: r.bin,
            last4: r.last4,
            country: r.country,
            funding: r.funding,
            created_at: rfc3339(r.created_at),
        }
    }
}

/// Register a payment instrument. Prepaid and stored-value cards are refused (422), as at
/// onboarding, using the same BIN table.
#[utoipa::path(post, path = "/v1/customers/{id}/payment-instruments", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = InstrumentIn,
    responses((status = 201, body = InstrumentOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn add_instrument(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<InstrumentIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let customer: CustomerId = parse_id(&id, "customer")?;
    let b = &body.value;
    let mut v = crate::error::Validator::default();
    let mut funding = None;
    match b.kind.as_str() {
        "card" => {
            let bin = b.bin.as_deref().unwrap_or("");
            if !(6..=8).contains(&bin.len()) || !bin.bytes().all(|c| c.is_ascii_digit()) {
                v.fail("bin", "give the card's first 6 to 8 digits");
            }
            let l4 = b.last4.as_deref().unwrap_or("");
            if l4.len() != 4 || !l4.bytes().all(|c| c.is_ascii_digit()) {
                v.fail("last4", "give the card's last four digits");
            }
            if let Some(info) = s.risk.data.bins.lookup(bin) {
                if info.prepaid {
                    v.fail(
                        "bin",
                        format!(
                            "BIN {} is a prepaid or stored-value card ({} {}): such cards are refused",
                            info.prefix, info.brand, info.category
                        ),
                    );
                }
                funding = Some(if info.prepaid {
                    "prepaid".to_owned()
                } else {
                    info.card_type.to_ascii_lowercase()
                });
            }
        }
        "bank_transfer" | "invoice" => {
            if b.bin.is_some() || b.last4.is_some() {
                v.fail("type", "bin and last4 are for cards only");
            }
        }
        o => v.fail(
            "type",
            format!("'{o}' is not card, bank_transfer or invoice"),
        ),
    }
    let country = match b.country.as_deref() {
        None => None,
        Some(c) => v
            .check(
                "country",
                riskdesk_domain::CountryCode::parse(c).map_err(|e| e.0),
            )
            .map(|c| c.as_str().to_owned()),
    };
    v.finish()?;
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/customers/{}/payment-instruments", customer.0),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row = ops::add_instrument(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        customer,
        ops::NewInstrument {
            kind: b.kind.clone(),
            bin: b.bin.clone(),
            last4: b.last4.clone(),
            country,
            funding,
        },
        now,
    )
    .await?;
    idem::finish(
        tx,
        &caller,
        &fp,
        StatusCode::CREATED,
        &InstrumentOut::from(row),
    )
    .await
}

/// A customer's payment instruments.
#[utoipa::path(get, path = "/v1/customers/{id}/payment-instruments", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<InstrumentOut>)))]
pub async fn list_instruments(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<InstrumentOut>>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let customer: CustomerId = parse_id(&id, "customer")?;
    customers::get(s.db(), caller.tenant(), customer).await?;
    Ok(Json(
        billing::instruments(s.db(), caller.tenant(), customer.0)
            .await?
            .into_iter()
            .map(InstrumentOut::from)
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointIn {
    /// Where events are POSTed (http or https).
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointOut {
    pub id: Uuid,
    pub url: String,
    pub active: bool,
    pub created_at: String,
    /// The signing secret: shown once, when the endpoint is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `http[s]://host[:port][/path]`: the host a DNS name whose last label starts with a letter,
/// or a dotted-quad IPv4 address; no IDN (`xn--`) label; the path printable ASCII. The OpenAPI
/// document states the same grammar as a pattern. What a URL parser would also take — user
/// info, spaces, IPv6 literals, numeric hosts in other forms — is refused: a webhook target is
/// configured once, and a surprising one should not pass.
pub(crate) fn plain_http_url(u: &str) -> bool {
    let Some(rest) = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
    else {
        return false;
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if !path.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        return false;
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    // 0 to 65535; five digits only without a leading zero.
    let port_ok = |p: &str| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p.len() <= 4 || (p.len() == 5 && !p.starts_with('0') && p <= "65535"))
    };
    if port.is_some_and(|p| !port_ok(p)) {
        return false;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
    };
    let octet_ok = |l: &str| {
        (1..=3).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_digit())
            && (l.len() == 1 || !l.starts_with('0'))
            && l.parse::<u16>().is_ok_and(|n| n <= 255)
    };
    let last = labels.last().copied().unwrap_or("");
    if last.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) {
        labels.iter().all(|l| label_ok(l))
    } else {
        labels.len() == 4 && labels.iter().all(|l| octet_ok(l))
    }
}

/// Register a webhook endpoint. The answer carries its signing secret, once. Every delivery is
/// signed: `Riskdesk-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "integrations", security(("bearer" = [])),
    extensions(("x-permission" = json!("manage_integrations"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = EndpointIn,
    responses((status = 201, body = EndpointOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_endpoint(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<EndpointIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ManageIntegrations)?;
    let url = body.value.url.trim().to_owned();
    if !plain_http_url(&url) {
        return Err(ApiError::field(
            "url",
            format!(
                "'{url}' is not an http(s) URL of the form http[s]://host[:port][/path]: \
                 a host name or an IP address, no user, printable ASCII"
            ),
        ));
    }
    let parsed = reqwest::Url::parse(&url)
        .map_err(|e| ApiError::field("url", format!("'{url}' is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ApiError::field(
            "url",
            "must be an http or https URL with a host",
        ));
    }
    let now = s.clock.now();
    let fp = Fingerprint {
        key: &key,
        method_path: "POST /v1/webhook-endpoints".into(),
        body_sha256: &body.body_sha256,
    };
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row = ops::create_endpoint(&mut tx, caller.tenant(), &caller.actor(), url, now).await?;
    let out = EndpointOut {
        id: row.id,
        url: row.url,
        active: true,
        created_at: rfc3339(row.created_at),
        secret: Some(row.secret),
    };
    idem::finish(tx, &caller, &fp, StatusCode::CREATED, &out).await
}

/// The tenant's webhook endpoints (secrets are never shown again).
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "integrations", security(("bearer" = [])),
    extensions(("x-permission" = json!("manage_integrations"))),
    responses((status = 200, body = Vec<EndpointOut>)))]
pub async fn list_endpoints(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<EndpointOut>>, ApiError> {
    caller.require(Permission::ManageIntegrations)?;
    Ok(Json(
        outbox::endpoints(s.db(), caller.tenant())
            .await?
            .into_iter()
            .map(|e| EndpointOut {
                id: e.id,
                url: e.url,
                active: e.active,
                created_at: rfc3339(e.created_at),
                secret: None,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    pub customer_id: Option<String>,
    /// `email` or `webhook`
    pub channel: Option<String>,
    /// `pending`, `sent` or `failed`
    pub status: Option<String>,
    /// Default 50, at most 500.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxOut {
    pub id: Uuid,
    pub channel: String,
    pub event_type: String,
    pub customer_id: Option<Uuid>,
    /// The email address, or the webhook endpoint id.
    pub destination: String,
    pub subject: Option<String>,
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub next_attempt_at: String,
}

impl From<OutboxRow> for OutboxOut {
    fn from(m: OutboxRow) -> Self {
        OutboxOut {
            id: m.id,
            channel: m.channel,
            event_type: m.event_type,
            customer_id: m.customer_id,
            destination: m.destination,
            subject: m.subject,
            body: m.body,
            status: m.status,
            attempts: m.attempts,
            last_error: m.last_error,
            created_at: rfc3339(m.created_at),
            sent_at: m.sent_at.map(rfc3339),
            next_attempt_at: rfc3339(m.next_attempt_at),
        }
    }
}

/// The delivery log: every notice and webhook, newest first, with its status and last error.
#[utoipa::path(get, path = "/v1/outbox", tag = "integrations", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(OutboxQuery),
    responses((status = 200, body = Vec<OutboxOut>)))]
pub async fn list_outbox(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<OutboxQuery>,
) -> Result<Json<Vec<OutboxOut>>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let customer = super::customer_filter(&q.customer_id)?;
    if let Some(ch) = &q.channel
        && !matches!(ch.as_str(), "email" | "webhook")
    {
        return Err(ApiError::field("channel", "must be email or webhook"));
    }
    if let Some(st) = &q.status
        && !matches!(st.as_str(), "pending" | "sent" | "failed")
    {
        return Err(ApiError::field("status", "must be pending, sent or failed"));
    }
    let limit = crate::dto::check_limit(q.limit)?;
    Ok(Json(
        outbox::list(
            s.db(),
            caller.tenant(),
            &OutboxFilter {
                customer,
                channel: q.channel,
                status: q.status,
                limit,
            },
        )
        .await?
        .into_iter()
        .map(OutboxOut::from)
        .collect(),
    ))
}

/// Queue a message again (e.g. after fixing an endpoint); it keeps its id, so receivers can
/// still drop a repeat.
#[utoipa::path(post, path = "/v1/outbox/{id}/resend", tag = "integrations", security(("bearer" = [])),
    extensions(("x-permission" = json!("manage_integrations"))),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    responses((status = 200, body = OutboxOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn resend(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ManageIntegrations)?;
    let id: Uuid = parse_id(&id, "outbox message")?;
    let now = s.clock.now();
    outbox::get(s.db(), caller.tenant(), id).await?;
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/outbox/{id}/resend"),
        body_sha256: "",
    };
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let m = ops::resend(&mut tx, caller.tenant(), &caller.actor(), id, now).await?;
    idem::finish(tx, &caller, &fp, StatusCode::OK, &OutboxOut::from(m)).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditTermsIn {
    /// Decimal string in `currency`.
    pub limit: String,
    pub currency: String,
    /// New subscriptions wait (`pending_payment`) until the prepaid balance covers their first period.
    pub prepayment_required: bool,
    /// What happens when exposure goes over the limit (absent: an alert only).
    pub on_breach: Option<OnBreachIn>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnBreachIn {
    /// `require_prepayment`, `block_new_purchases` (new subscriptions are refused while over the
    /// limit) or `suspend` (every active subscription).
    pub action: String,
    /// `auto` (applied with the alert) or `require_approval` (the alert proposes it).
    pub mode: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreditTermsOut {
    pub customer: crate::dto::Customer,
    pub on_breach: Option<OnBreachIn>,
}

/// Set a customer's credit terms (staff decision, audited): credit limit, prepayment required,
/// and what a credit-limit breach does. Pending subscriptions are activated if the balance now
/// covers them; a limit already exceeded raises its alert at once.
#[utoipa::path(put, path = "/v1/customers/{id}/credit-terms", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    params(("id" = Uuid, Path)),
    request_body = CreditTermsIn,
    responses((status = 200, body = CreditTermsOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_credit_terms(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<CreditTermsIn>,
) -> Result<Json<CreditTermsOut>, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let id: CustomerId = parse_id(&id, "customer")?;
    let b = body.value;
    let mut v = crate::error::Validator::default();
    let currency = v.check("currency", Currency::parse(&b.currency).map_err(|e| e.0));
    let limit = currency.and_then(|c| {
        v.check(
            "limit",
            riskdesk_domain::money::Money::parse(&b.limit, c)
                .map_err(|e| e.0)
                .and_then(|m| {
                    if m.minor >= 0 {
                        Ok(m)
                    } else {
                        Err("must not be negative".into())
                    }
                }),
        )
    });
    if let Some(e) = &b.on_breach {
        if !matches!(
            e.action.as_str(),
            "require_prepayment" | "block_new_purchases" | "suspend"
        ) {
            v.fail(
                "on_breach.action",
                format!(
                    "'{}' is not require_prepayment, block_new_purchases or suspend",
                    e.action
                ),
            );
        }
        if !matches!(e.mode.as_str(), "auto" | "require_approval") {
            v.fail(
                "on_breach.mode",
                format!("'{}' is not auto or require_approval", e.mode),
            );
        }
    }
    v.finish()?;
    let limit = limit.ok_or_else(|| ApiError::field("limit", "is required"))?;
    let now = s.clock.now();
    let tenant = caller.tenant();
    let terms = ops::CreditTerms {
        limit,
        prepayment_required: b.prepayment_required,
        on_breach: b.on_breach.as_ref().map(|e| billing::CreditEnforcementRow {
            action: e.action.clone(),
            mode: e.mode.clone(),
        }),
    };
    let mut tx = s.app.begin().await?;
    ops::set_credit_terms(&mut tx, tenant, &caller.actor(), id, terms, now).await?;
    tx.commit().await?;
    let c = customers::get(s.db(), tenant, id).await?;
    Ok(Json(CreditTermsOut {
        customer: c.into(),
        on_breach: b.on_breach,
    }))
}

#[cfg(test)]
mod url_tests {
    use super::plain_http_url;

    #[test]
    fn a_webhook_url_is_http_or_https_with_a_plain_host() {
        for ok in [
            "https://hooks.example.com/riskdesk",
            "http://10.0.0.5:8080/in?x=1",
            "http://0.0.0.0",
            "http://localhost:3000",
            "https://1.example.com/x",
            "https://a.example:65535",
        ] {
            assert!(plain_http_url(ok), "{ok}");
        }
        for bad in [
            "ftp://example.com",
            "https://",
            "https://user:pw@example.com/",
            "http://0*",
            "http://0",
            "http://999.1.1.1",
            "http://1.2.3",
            "http://a.1",
            "http://01.2.3.4",
            "https://[2001:db8::1]:443/",
            "https://xn--zz.example/",
            "https://a.example./",
            "https://example.com:65536/",
            "https://example.com:00080/",
            "https://example.com/a b",
            "https://exa mple.com/",
            "https://example.com?x",
            "HTTPS://example.com/",
        ] {
            assert!(!plain_http_url(bad), "{bad}");
        }
    }
}
