//! A fake Partner Center for tests (feature `fake`): a real HTTP server on 127.0.0.1 that
//! mimics the documented shapes — client-credentials token endpoint, subscriptions with
//! full-object PATCH (an omitted `autoRenewEnabled` becomes false; suspension turns it off, as
//! NCE does), ETags and `If-Match` (stale → 400/2055), the usage budget, service requests
//! (read and note; the retired create → 404), `MS-RequestId` replay without a second effect,
//! throttling (429 + `Retry-After` + the documented body), outages (503), an expired token
//! (401), and a PATCH that is applied but never answered (a lost reply). Every request is
//! logged for tests to assert on.
//!
//! The token endpoint implements both grants riskdesk uses: client credentials (app-only
//! tokens `fake-token-N`) and the Secure Application Model's delegated tokens — a consent page
//! (`GET /{tenant}/oauth2/authorize`, standing for the partner admin signing in with MFA) that
//! redirects back with a code, the code redeemed with its PKCE verifier (S256 checked, the
//! redirect URI compared), and refresh tokens that **rotate** (each redemption returns a new
//! one and retires the old) until the consent is revoked (`invalid_grant`). Resources Microsoft
//! documents as app + user only (fraud events, service requests, the usage summary) refuse an
//! app-only token with 403, and a revoked user token with 401.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub if_match: Option<String>,
    pub body: String,
    /// What the fake answered (0: never answered).
    pub status: u16,
}

#[derive(Default)]
struct FakeState {
    subscriptions: HashMap<(String, String), (Value, u64)>,
    budgets: HashMap<String, String>,
    service_requests: HashMap<String, Value>,
    requests: Vec<LoggedRequest>,
    fraud_events: Vec<Value>,
    entitlements: HashMap<(String, String, String), Value>,
    audit_records: Vec<Value>,
    /// Successful changes by `MS-RequestId`: a replay gets the same answer, no second effect.
    replay: HashMap<String, (u16, Value)>,
    throttle: u32,
    throttle_seconds: u64,
    fail: u32,
    unauthorized: bool,
    hang_next_patch: bool,
    tokens: u32,
    effects: u32,
    /// Unbilled usage line items as raw JSON texts (amounts keep every digit), by currency.
    line_items: Vec<(String, String)>,
    /// Line-item requests still to answer before one hangs (never answered: a pull cut short).
    hang_line_items_after: Option<u32>,
    /// Microsoft's invoices to the partner, and their billed usage line items (raw texts).
    invoices: Vec<Value>,
    billed_items: HashMap<String, Vec<String>>,
    /// Consent codes not redeemed yet: code → (S256 challenge, redirect URI).
    codes: HashMap<String, (String, String)>,
    /// Live refresh tokens, and the user access tokens issued from them.
    refresh_tokens: std::collections::HashSet<String>,
    user_tokens: std::collections::HashSet<String>,
    user_grants: u32,
    /// Refresh tokens redeemed (their rotation retired them).
    refreshes: u32,
    /// Access token of each logged request (for tests: which kind each call carried).
    bearer_log: Vec<(String, String)>,
    /// `http://127.0.0.1:PORT`: ARM's `nextLink`s are absolute.
    url: String,
    /// Azure Resource Manager: each Azure subscription's customer tenant, its Activity Log
    /// (management events), the subscriptions whose delegated access was removed, the
    /// customer tenants that refuse the partner a token, and the customer-tenant ARM tokens
    /// issued (token → tenant).
    arm_owner: HashMap<String, String>,
    arm_events: HashMap<String, Vec<Value>>,
    arm_denied: std::collections::HashSet<String>,
    arm_refused_tenants: std::collections::HashSet<String>,
    arm_tokens: HashMap<String, String>,
    arm_page_size: usize,
    /// The `$filter` of every Activity Log request, in order.
    arm_filters: Vec<String>,
}

type Shared = Arc<Mutex<FakeState>>;

pub struct FakePartnerCenter {
    /// `http://127.0.0.1:PORT` (no trailing slash): the REST base and the token authority.
    pub url: String,
    state: Shared,
}

impl FakePartnerCenter {
    pub async fn start() -> Self {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/{tenant}/oauth2/token", post(token))
            .route("/{tenant}/oauth2/authorize", axum::routing::get(authorize))
            .route(
                "/subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values",
                axum::routing::get(activity_log),
            )
            .fallback(any(resource))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Partner Center");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        {
            let mut s = state.lock().expect("fake state");
            s.url = url.clone();
            s.arm_page_size = 100;
        }
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state }
    }

    fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        f(&mut self.state.lock().expect("fake state"))
    }

    /// Seeds a subscription (active). `nce`: suspension turns auto-renew off.
    pub fn add_subscription(&self, customer: &str, id: &str, auto_renew: bool, nce: bool) {
        let v = json!({
            "id": id, "offerId": "CFQ7TTC0LH18:0001", "offerName": "Microsoft 365 Business Basic",
            "friendlyName": "Business Basic", "quantity": 5, "unitType": "Licenses",
            "status": "active", "autoRenewEnabled": auto_renew, "billingCycle": "monthly",
            "termDuration": "P1M", "isNce": nce,
            "attributes": {"objectType": "Subscription", "etag": ""}
        });
        self.with(|s| {
            s.subscriptions.insert((customer.into(), id.into()), (v, 1));
        });
    }

    pub fn subscription(&self, customer: &str, id: &str) -> Value {
        self.with(|s| {
            s.subscriptions
                .get(&(customer.into(), id.into()))
                .map(|(v, _)| v.clone())
                .unwrap_or(Value::Null)
        })
    }

    /// Changes a subscription's status at the provider (as the portal would).
    pub fn set_status(&self, customer: &str, id: &str, status: &str) {
        self.with(|s| {
            if let Some((v, etag)) = s.subscriptions.get_mut(&(customer.into(), id.into())) {
                v["status"] = json!(status);
                *etag += 1;
            }
        });
    }

    pub fn add_service_request(&self, id: &str, status: i64) {
        let v = json!({
            "id": id, "title": "Suspicious activity", "severity": 1, "status": status,
            "notes": [], "attributes": {"objectType": "ServiceRequest"}
        });
        self.with(|s| {
            s.service_requests.insert(id.into(), v);
        });
    }

    pub fn set_service_request_status(&self, id: &str, status: i64) {
        self.with(|s| {
            if let Some(v) = s.service_requests.get_mut(id) {
                v["status"] = json!(status);
            }
        });
    }

    /// Seeds an active Azure subscription (entitlement) inside an Azure plan.
    pub fn add_entitlement(&self, customer: &str, plan: &str, id: &str) {
        let v = json!({"id": id, "friendlyName": "Azure subscription", "status": "active",
                       "subscriptionId": id, "entitlementType": "azure_subscription",
                       "attributes": {"objectType": "AzureEntitlement"}});
        self.with(|s| {
            s.entitlements
                .insert((customer.into(), plan.into(), id.into()), v);
        });
    }

    pub fn entitlement(&self, customer: &str, plan: &str, id: &str) -> Value {
        self.with(|s| {
            s.entitlements
                .get(&(customer.into(), plan.into(), id.into()))
                .cloned()
                .unwrap_or(Value::Null)
        })
    }

    /// Seeds an active fraud event (the new events model's fields) on a subscription.
    pub fn add_fraud_event(
        &self,
        customer: &str,
        subscription: &str,
        entity: &str,
        event_type: &str,
    ) {
        let v = json!({
            "eventTime": "2026-11-21T07:00:00Z", "eventId": format!("{subscription}_{entity}"),
            "partnerTenantId": "partner-tenant", "customerTenantId": customer, "customerFriendlyName": "Customer",
            "subscriptionId": subscription, "entityId": entity, "entityName": entity, "hitCount": 3,
            "eventStatus": "Active", "eventType": event_type, "severity": "High",
            "firstOccurrence": "2026-11-21T06:00:00Z", "lastOccurrence": "2026-11-21T07:00:00Z",
            "resolvedOn": "9999-12-31T23:59:59Z"
        });
        self.with(|s| s.fraud_events.push(v));
    }

    pub fn fraud_event_status(&self, event_id: &str) -> Option<String> {
        self.with(|s| {
            s.fraud_events
                .iter()
                .find(|e| e["eventId"] == event_id)
                .and_then(|e| e["eventStatus"].as_str().map(str::to_owned))
        })
    }

    /// Seeds an audit record (`resourceNewValue` as a JSON string, as the service sends it).
    pub fn add_audit_record(&self, id: &str, customer: &str, operation: &str, date: &str) {
        let v = json!({
            "id": id, "partnerId": "partner-tenant", "customerId": customer, "customerName": "Customer",
            "userPrincipalName": "admin@customer.onmicrosoft.com", "resourceType": "customer_user",
            "resourceNewValue": "{\"Id\":\"x\"}", "operationType": operation, "operationDate": date,
            "operationStatus": "succeeded", "customizedData": [], "attributes": {"objectType": "AuditRecord"}
        });
        self.with(|s| s.audit_records.push(v));
    }

    pub fn budget(&self, customer: &str) -> Option<String> {
        self.with(|s| s.budgets.get(customer).cloned())
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.with(|s| s.requests.clone())
    }

    pub fn requests_with(&self, method: &str) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method)
            .collect()
    }

    /// The next `n` resource calls get 429 with `Retry-After: seconds`.
    pub fn throttle_next(&self, n: u32, seconds: u64) {
        self.with(|s| {
            s.throttle = n;
            s.throttle_seconds = seconds;
        });
    }

    /// The next `n` resource calls get 503.
    pub fn fail_next(&self, n: u32) {
        self.with(|s| s.fail = n);
    }

    /// The next resource call gets 401 (an expired token).
    pub fn unauthorize_next(&self) {
        self.with(|s| s.unauthorized = true);
    }

    /// The next PATCH is applied but never answered (the reply is lost).
    pub fn hang_next_patch(&self) {
        self.with(|s| s.hang_next_patch = true);
    }

    pub fn tokens_issued(&self) -> u32 {
        self.with(|s| s.tokens)
    }

    /// Seeds an unbilled usage line item (its raw JSON text, as the service would send it) in
    /// `currency`.
    pub fn add_unbilled_line_item(&self, currency: &str, raw_json: &str) {
        self.with(|s| {
            s.line_items
                .push((currency.to_owned(), raw_json.to_owned()))
        });
    }

    /// The line-item request after the next `answered` ones is never answered (the process
    /// pulling is then killed by the test); later requests are answered again.
    pub fn hang_line_items_after(&self, answered: u32) {
        self.with(|s| s.hang_line_items_after = Some(answered));
    }

    /// Issues an invoice to the partner in `currency` whose billed usage line items are
    /// `raw_items` (raw JSON texts).
    pub fn add_invoice(&self, id: &str, currency: &str, raw_items: &[&str]) {
        self.with(|s| {
            s.invoices.push(
                json!({"id": id, "currencyCode": currency, "invoiceDate": "2026-12-01T00:00:00Z",
                "attributes": {"objectType": "Invoice"}}),
            );
            s.billed_items.insert(
                id.to_owned(),
                raw_items.iter().map(|r| (*r).to_owned()).collect(),
            );
        });
    }

    /// Revokes every delegated grant (an admin removed the consent, or the refresh token
    /// expired): refresh tokens get `invalid_grant`, user tokens 401.
    pub fn revoke_consent(&self) {
        self.with(|s| {
            s.refresh_tokens.clear();
            s.user_tokens.clear();
        });
    }

    /// Refresh-token redemptions so far (each rotated the refresh token).
    pub fn refreshes(&self) -> u32 {
        self.with(|s| s.refreshes)
    }

    /// Whether `token` is a live refresh token (the old ones retire on rotation).
    pub fn refresh_token_is_live(&self, token: &str) -> bool {
        self.with(|s| s.refresh_tokens.contains(token))
    }

    /// (path, kind of bearer: `app`, `user` or `other`) of every resource call.
    pub fn bearers(&self) -> Vec<(String, String)> {
        self.with(|s| s.bearer_log.clone())
    }

    /// Changes applied (replays and no-op reads excluded).
    pub fn effects(&self) -> u32 {
        self.with(|s| s.effects)
    }

    /// An Azure subscription in the customer tenant `customer` (the Partner Center customer
    /// id is the customer's tenant id), with an empty Activity Log the partner may read.
    pub fn add_azure_subscription(&self, customer: &str, subscription: &str) {
        self.with(|s| {
            let sub = subscription.to_ascii_lowercase();
            s.arm_owner.insert(sub.clone(), customer.to_owned());
            s.arm_events.entry(sub).or_default();
        });
    }

    /// An event in a subscription's Activity Log (the REST shape: `eventDataId`,
    /// `eventTimestamp`, `operationName.value`, …).
    pub fn add_activity_event(&self, subscription: &str, event: Value) {
        self.with(|s| {
            s.arm_events
                .entry(subscription.to_ascii_lowercase())
                .or_default()
                .push(event)
        });
    }

    /// Removes (or gives back) the partner's delegated access to a subscription: ARM answers
    /// 403 `AuthorizationFailed`.
    pub fn set_arm_access(&self, subscription: &str, allowed: bool) {
        self.with(|s| {
            let sub = subscription.to_ascii_lowercase();
            if allowed {
                s.arm_denied.remove(&sub);
            } else {
                s.arm_denied.insert(sub);
            }
        });
    }

    /// The customer tenant refuses to issue the partner a token (`invalid_grant`, as when
    /// the admin relationship ended).
    pub fn refuse_customer_tenant(&self, customer: &str) {
        self.with(|s| s.arm_refused_tenants.insert(customer.to_owned()));
    }

    /// Activity Log events per page (default 100).
    pub fn set_activity_page_size(&self, n: usize) {
        self.with(|s| s.arm_page_size = n.max(1));
    }

    /// The `$filter` of every Activity Log request so far.
    pub fn activity_filters(&self) -> Vec<String> {
        self.with(|s| s.arm_filters.clone())
    }
}

/// The consent page, as if the partner admin signed in (with MFA) and consented: back to the
/// redirect URI with a code and the caller's `state`.
async fn authorize(
    State(state): State<Shared>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let ok = q.get("response_type").map(String::as_str) == Some("code")
        && q.get("code_challenge_method").map(String::as_str) == Some("S256")
        && q.get("client_id").is_some_and(|c| !c.is_empty())
        && q.get("resource").is_some_and(|c| !c.is_empty());
    let (Some(challenge), Some(redirect), Some(st), true) = (
        q.get("code_challenge"),
        q.get("redirect_uri"),
        q.get("state"),
        ok,
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "AADSTS900144: a required parameter is missing",
        )
            .into_response();
    };
    let code = {
        let mut s = state.lock().expect("fake state");
        s.user_grants += 1;
        let code = format!("fake-code-{}", s.user_grants);
        s.codes
            .insert(code.clone(), (challenge.clone(), redirect.clone()));
        code
    };
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let location = format!(
        "{redirect}{sep}{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", st)
            .finish()
    );
    (StatusCode::FOUND, [("location", location)]).into_response()
}

/// A delegated grant's answer: a new user access token and a new refresh token (rotation).
fn user_tokens(s: &mut FakeState, n: u32, resource: &str) -> Response {
    let (access, refresh) = (format!("fake-user-token-{n}"), format!("fake-rt-{n}"));
    s.user_tokens.insert(access.clone());
    s.refresh_tokens.insert(refresh.clone());
    axum::Json(json!({
        "token_type": "Bearer", "expires_in": "3600", "access_token": access,
        "refresh_token": refresh, "resource": resource, "scope": "user_impersonation"
    }))
    .into_response()
}

fn token_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(
    State(state): State<Shared>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    body: String,
) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    if form.get("client_secret").is_none_or(|s| s.is_empty())
        || form.get("client_id").is_none_or(|s| s.is_empty())
    {
        return token_error("invalid_client", "client credentials required");
    }
    let resource = form.get("resource").cloned().unwrap_or_default();
    let mut s = state.lock().expect("fake state");
    s.tokens += 1;
    let n = s.tokens;
    match form.get("grant_type").map(String::as_str) {
        // `expires_in` as a string, as in the documented sample.
        Some("client_credentials") => axum::Json(json!({
            "token_type": "Bearer", "expires_in": "3600", "access_token": format!("fake-token-{n}"),
            "resource": resource
        }))
        .into_response(),
        Some("authorization_code") => {
            let Some((challenge, redirect)) = form.get("code").and_then(|c| s.codes.remove(c))
            else {
                return token_error(
                    "invalid_grant",
                    "AADSTS70008: the code is unknown, used or expired",
                );
            };
            if form.get("redirect_uri") != Some(&redirect) {
                return token_error(
                    "invalid_grant",
                    "AADSTS50011: the redirect URI does not match the authorization request",
                );
            }
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            use base64::Engine as _;
            use sha2::Digest as _;
            let sent = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if sent != challenge {
                return token_error(
                    "invalid_grant",
                    "AADSTS501481: the code verifier does not match the code challenge",
                );
            }
            user_tokens(&mut s, n, &resource)
        }
        Some("refresh_token") => {
            let old = form.get("refresh_token").cloned().unwrap_or_default();
            let arm = resource.trim_end_matches('/') == s.url;
            if arm && s.arm_refused_tenants.contains(&tenant) && s.refresh_tokens.contains(&old) {
                // Refused by the customer's tenant: the refresh token itself stays good.
                return token_error(
                    "invalid_grant",
                    "AADSTS50020: the partner has no access to this tenant",
                );
            }
            if !s.refresh_tokens.remove(&old) {
                return token_error(
                    "invalid_grant",
                    "AADSTS700082: the refresh token has expired or was revoked",
                );
            }
            s.refreshes += 1;
            // A token for Azure Resource Manager in a customer's tenant.
            if arm {
                let (access, refresh) = (format!("fake-arm-token-{n}"), format!("fake-rt-{n}"));
                s.arm_tokens.insert(access.clone(), tenant);
                s.refresh_tokens.insert(refresh.clone());
                return axum::Json(json!({
                    "token_type": "Bearer", "expires_in": "3600", "access_token": access,
                    "refresh_token": refresh, "resource": resource, "scope": "user_impersonation"
                }))
                .into_response();
            }
            user_tokens(&mut s, n, &resource)
        }
        _ => token_error("unsupported_grant_type", "unsupported grant_type"),
    }
}

fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// `GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values`: the
/// Activity Log as ARM serves it — `api-version` and a `$filter` with `eventTimestamp ge` are
/// required (`and eventTimestamp le` optional), a customer-tenant token of the subscription's
/// tenant, pages of `{"value": [...], "nextLink": "<absolute>"}`.
async fn activity_log(
    State(state): State<Shared>,
    axum::extract::Path(sub): axum::extract::Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let mut s = state.lock().expect("fake state");
    let sub = sub.to_ascii_lowercase();
    let q: HashMap<String, String> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let path = uri.path().to_owned();
    s.requests.push(LoggedRequest {
        method: "GET".into(),
        path: path.clone(),
        request_id: header(&headers, "x-ms-client-request-id"),
        correlation_id: None,
        if_match: None,
        body: String::new(),
        status: 200,
    });
    let bearer = header(&headers, "authorization")
        .and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned))
        .unwrap_or_default();
    let kind = if s.arm_tokens.contains_key(&bearer) {
        "arm"
    } else {
        "other"
    };
    s.bearer_log.push((path.clone(), kind.into()));
    if s.throttle > 0 {
        s.throttle -= 1;
        let mut r = arm_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "throttled",
        );
        r.headers_mut().insert(
            "retry-after",
            s.throttle_seconds.to_string().parse().expect("digits"),
        );
        return r;
    }
    if s.fail > 0 {
        s.fail -= 1;
        return arm_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "try again",
        );
    }
    if q.get("api-version").map(String::as_str) != Some("2015-04-01") {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    let Some(tenant) = s.arm_tokens.get(&bearer).cloned() else {
        return arm_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        );
    };
    let Some(owner) = s.arm_owner.get(&sub).cloned() else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{sub}' could not be found."),
        );
    };
    if owner != tenant {
        return arm_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationTokenTenant",
            "The access token is from the wrong issuer.",
        );
    }
    if s.arm_denied.contains(&sub) {
        return arm_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            &format!(
                "The client does not have authorization to perform action 'Microsoft.Insights/eventtypes/values/read' over scope '/subscriptions/{sub}'."
            ),
        );
    }
    let filter = q.get("$filter").cloned().unwrap_or_default();
    s.arm_filters.push(filter.clone());
    let bound = |op: &str| -> Option<jiff::Timestamp> {
        let key = format!("eventTimestamp {op} '");
        let start = filter.find(&key)? + key.len();
        let end = filter[start..].find('\'')? + start;
        filter[start..end].parse().ok()
    };
    let Some(ge) = bound("ge") else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The $filter must name a start time: eventTimestamp ge '<RFC 3339>'.",
        );
    };
    let le = bound("le");
    let mut events: Vec<&Value> = s.arm_events[&sub]
        .iter()
        .filter(|e| {
            let t: Option<jiff::Timestamp> =
                e["eventTimestamp"].as_str().and_then(|t| t.parse().ok());
            t.is_some_and(|t| t >= ge && le.is_none_or(|le| t <= le))
        })
        .collect();
    // Newest first, as ARM answers.
    events.sort_by(|a, b| {
        b["eventTimestamp"]
            .as_str()
            .cmp(&a["eventTimestamp"].as_str())
    });
    let from: usize = q
        .get("$skiptoken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let size = s.arm_page_size;
    let page: Vec<Value> = events
        .iter()
        .skip(from)
        .take(size)
        .map(|e| (*e).clone())
        .collect();
    let mut body = json!({ "value": page });
    if from + size < events.len() {
        let next = form_urlencoded::Serializer::new(String::new())
            .append_pair("api-version", "2015-04-01")
            .append_pair("$filter", &filter)
            .append_pair("$skiptoken", &(from + size).to_string())
            .finish();
        body["nextLink"] = Value::String(format!("{}{path}?{next}", s.url));
    }
    axum::Json(body).into_response()
}

/// `error` as the text of a line-items answer.
fn text_error(status: StatusCode, description: &str) -> (StatusCode, String) {
    let (st, v) = error(status, 0, description);
    (st, v.to_string())
}

/// `GET /v1/invoices/unbilled/lineitems` and `GET /v1/invoices/{id}/lineitems`: pages of raw line items (the body is built as text so
/// amounts keep their digits), `links.next` relative and without `/v1`, the offset in
/// `MS-ContinuationToken`. Throttling and outages apply as to every resource.
fn line_items_page(
    s: &mut FakeState,
    query: &str,
    headers: &HeaderMap,
    invoice: Option<&str>,
) -> (StatusCode, String) {
    if !header(headers, "authorization").is_some_and(|a| a.starts_with("Bearer ")) {
        return text_error(StatusCode::UNAUTHORIZED, "bearer token required");
    }
    s.bearer_log.push((
        format!("/v1/invoices/{}/lineitems", invoice.unwrap_or("unbilled")),
        "app".into(),
    ));
    if s.throttle > 0 {
        s.throttle -= 1;
        return (StatusCode::TOO_MANY_REQUESTS, json!({"statusCode": 429, "message": "Rate limit is exceeded. Try again in 1 seconds."}).to_string());
    }
    if s.fail > 0 {
        s.fail -= 1;
        return text_error(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
    }
    let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let want = |k: &str, v: &str| q.get(k).is_some_and(|x| x.eq_ignore_ascii_case(v));
    if !want("provider", "onetime") || !want("invoicelineitemtype", "usagelineitems") {
        return text_error(
            StatusCode::BAD_REQUEST,
            "provider=onetime and invoicelineitemtype=usagelineitems are required",
        );
    }
    let unbilled = invoice == Some("unbilled");
    let Some(ccy) = q.get("currencycode") else {
        return text_error(StatusCode::BAD_REQUEST, "currencycode is required");
    };
    let period = q.get("period").cloned().unwrap_or_default();
    if unbilled && period.is_empty() {
        return text_error(
            StatusCode::BAD_REQUEST,
            "period is required for unbilled line items",
        );
    }
    let base = match invoice {
        Some("unbilled") | None => "/invoices/unbilled/lineitems".to_owned(),
        Some(id) => format!("/invoices/{id}/lineitems"),
    };
    let size: usize = q
        .get("size")
        .and_then(|x| x.parse().ok())
        .unwrap_or(2000)
        .clamp(1, 2000);
    let from: usize = header(headers, "ms-continuationtoken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let matching: Vec<&String> = match invoice {
        Some("unbilled") | None => s
            .line_items
            .iter()
            .filter(|(c, _)| c.eq_ignore_ascii_case(ccy) && period.eq_ignore_ascii_case("current"))
            .map(|(_, raw)| raw)
            .collect(),
        Some(id) => match s.billed_items.get(id) {
            Some(items) => items.iter().collect(),
            None => {
                return text_error(StatusCode::NOT_FOUND, "Invoice not found");
            }
        },
    };
    let page: Vec<&str> = matching
        .iter()
        .skip(from)
        .take(size)
        .map(|r| r.as_str())
        .collect();
    let mut body = format!(
        "{{\"totalCount\": {}, \"items\": [{}]",
        page.len(),
        page.join(",")
    );
    if from + size < matching.len() {
        body.push_str(&format!(
            ", \"links\": {{\"next\": {{\"uri\": \"{base}?provider=onetime&invoicelineitemtype=usagelineitems&currencycode={ccy}&period={period}&size={size}&seekOperation=Next\", \"method\": \"GET\", \"headers\": [{{\"key\": \"MS-ContinuationToken\", \"value\": \"{}\"}}]}}}}",
            from + size
        ));
    }
    body.push_str(", \"attributes\": {\"objectType\": \"Collection\"}}");
    (StatusCode::OK, body)
}

/// The resources Microsoft documents as app + user only.
fn app_user_only(parts: &[&str]) -> bool {
    let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    matches!(
        l.as_slice(),
        ["v1", "fraudevents", ..]
            | ["v1", "servicerequests", ..]
            | ["v1", "customers", _, "servicerequests", ..]
            | ["v1", "customers", _, "usagesummary"]
    )
}

fn error(status: StatusCode, code: i64, description: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"code": code, "description": description, "data": [], "source": "PartnerFD"}),
    )
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Keys compared case-insensitively (the service accepts PascalCase request bodies).
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

async fn resource(
    State(state): State<Shared>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let mut log = LoggedRequest {
        method: method.to_string(),
        path: path.clone(),
        request_id: header(&headers, "ms-requestid"),
        correlation_id: header(&headers, "ms-correlationid"),
        if_match: header(&headers, "if-match"),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
    };
    let billed = path
        .strip_prefix("/v1/invoices/")
        .and_then(|r| r.strip_suffix("/lineitems"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .map(str::to_owned);
    if method == Method::GET && billed.is_some() {
        let hang = {
            let mut s = state.lock().expect("fake state");
            match s.hang_line_items_after {
                Some(0) => {
                    s.hang_line_items_after = None;
                    s.requests.push(log.clone());
                    true
                }
                Some(n) => {
                    s.hang_line_items_after = Some(n - 1);
                    false
                }
                None => false,
            }
        };
        if hang {
            std::future::pending::<()>().await;
        }
        let mut s = state.lock().expect("fake state");
        let (status, body) = line_items_page(
            &mut s,
            uri.query().unwrap_or(""),
            &headers,
            billed.as_deref(),
        );
        log.status = status.as_u16();
        s.requests.push(log);
        return (status, [("content-type", "application/json")], body).into_response();
    }
    let (status, value, hang, retry_after) = {
        let mut s = state.lock().expect("fake state");
        let out = decide(
            &mut s,
            &method,
            &path,
            uri.query().unwrap_or(""),
            &headers,
            &body,
        );
        log.status = if out.2 { 0 } else { out.0.as_u16() };
        s.requests.push(log);
        out
    };
    if hang {
        // Applied, never answered: the caller sees a timeout or its own crash.
        std::future::pending::<()>().await;
    }
    let mut r = (status, axum::Json(value)).into_response();
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert("retry-after", secs.to_string().parse().expect("digits"));
    }
    if let Some(id) = header(&headers, "ms-requestid") {
        r.headers_mut()
            .insert("ms-requestid", id.parse().expect("echo"));
    }
    r
}

/// An error answer from `decide`.
fn refuse(
    status: StatusCode,
    code: i64,
    description: &str,
) -> (StatusCode, Value, bool, Option<u64>) {
    let (st, v) = error(status, code, description);
    (st, v, false, None)
}

/// Returns (status, body, hang, retry_after).
fn decide(
    s: &mut FakeState,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Value, bool, Option<u64>) {
    let Some(bearer) =
        header(headers, "authorization").and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned))
    else {
        return refuse(StatusCode::UNAUTHORIZED, 0, "bearer token required");
    };
    let kind = if bearer.starts_with("fake-user-token-") {
        "user"
    } else if bearer.starts_with("fake-token-") {
        "app"
    } else {
        "other"
    };
    s.bearer_log.push((path.to_owned(), kind.to_owned()));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    if app_user_only(&parts) {
        if kind != "user" {
            return refuse(
                StatusCode::FORBIDDEN,
                0,
                "This API requires app + user authentication (the Secure Application Model); app-only tokens are not accepted",
            );
        }
        if !s.user_tokens.contains(&bearer) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                0,
                "the token has expired or was revoked",
            );
        }
    }
    if s.unauthorized {
        s.unauthorized = false;
        return refuse(StatusCode::UNAUTHORIZED, 0, "the token has expired");
    }
    if s.throttle > 0 {
        s.throttle -= 1;
        let secs = s.throttle_seconds;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"statusCode": 429, "message": format!("Rate limit is exceeded. Try again in {secs} seconds.")}),
            false,
            Some(secs),
        );
    }
    if s.fail > 0 {
        s.fail -= 1;
        return refuse(StatusCode::SERVICE_UNAVAILABLE, 0, "service unavailable");
    }
    let request_id = header(headers, "ms-requestid");
    if *method != Method::GET
        && let Some((st, v)) = request_id.as_ref().and_then(|id| s.replay.get(id))
    {
        return (
            StatusCode::from_u16(*st).expect("stored status"),
            v.clone(),
            false,
            None,
        );
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (st, v) = match (method.clone(), parts.as_slice()) {
        (Method::GET, ["v1", "customers", c, "subscriptions", id]) => {
            match s.subscriptions.get(&(c.to_string(), id.to_string())) {
                Some((v, etag)) => {
                    let mut v = v.clone();
                    v["attributes"]["etag"] = json!(format!("etag-{etag}"));
                    (StatusCode::OK, v)
                }
                None => error(StatusCode::NOT_FOUND, 20003, "Subscription not found"),
            }
        }
        (Method::PATCH, ["v1", "customers", c, "subscriptions", id]) => {
            let key = (c.to_string(), id.to_string());
            let Some((current, etag)) = s.subscriptions.get(&key).cloned() else {
                return refuse(StatusCode::NOT_FOUND, 20003, "Subscription not found");
            };
            if let Some(m) = header(headers, "if-match")
                && m.trim_matches('"') != format!("etag-{etag}")
            {
                return refuse(StatusCode::BAD_REQUEST, 2055, "Etag is no longer valid");
            }
            let Ok(sent) = serde_json::from_slice::<Value>(body) else {
                return refuse(StatusCode::BAD_REQUEST, 0, "body is not JSON");
            };
            if current["status"] == "deleted" {
                return refuse(StatusCode::BAD_REQUEST, 2011, "Subscription is deleted");
            }
            let status = field(&sent, "status")
                .and_then(Value::as_str)
                .unwrap_or("active")
                .to_owned();
            // Full-object semantics: what is omitted is reset.
            let mut auto_renew = field(&sent, "autoRenewEnabled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if status == "suspended" && current["isNce"] == true {
                auto_renew = false;
            }
            let mut next = current.clone();
            next["status"] = json!(status);
            next["autoRenewEnabled"] = json!(auto_renew);
            if let Some(q) = field(&sent, "quantity") {
                next["quantity"] = q.clone();
            }
            s.subscriptions.insert(key, (next.clone(), etag + 1));
            s.effects += 1;
            next["attributes"]["etag"] = json!(format!("etag-{}", etag + 1));
            if let Some(id) = request_id.clone() {
                s.replay.insert(id, (200, next.clone()));
            }
            if s.hang_next_patch {
                s.hang_next_patch = false;
                return (StatusCode::OK, next, true, None);
            }
            (StatusCode::OK, next)
        }
        (Method::GET, ["v1", "customers", c, "usagebudget"]) => {
            let mut v = json!({"attributes": {"objectType": "SpendingBudget"}});
            if let Some(a) = s.budgets.get(*c) {
                v["amount"] = serde_json::from_str(a).unwrap_or(Value::Null);
            }
            (StatusCode::OK, v)
        }
        (Method::PATCH, ["v1", "customers", c, "usagebudget"]) => {
            // Read the amount from the raw text so its digits stay exact.
            let text = String::from_utf8_lossy(body);
            let amount = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| field(&v, "amount").cloned());
            match amount {
                Some(Value::Number(_)) => {
                    let digits = raw_number(&text, "amount").unwrap_or_default();
                    s.budgets.insert(c.to_string(), digits.clone());
                    s.effects += 1;
                    let v = json!({"amount": serde_json::from_str::<Value>(&digits).unwrap_or(Value::Null),
                                   "attributes": {"objectType": "SpendingBudget"}});
                    if let Some(id) = request_id.clone() {
                        s.replay.insert(id, (200, v.clone()));
                    }
                    (StatusCode::OK, v)
                }
                _ => error(StatusCode::BAD_REQUEST, 0, "amount is required"),
            }
        }
        (
            Method::GET,
            [
                "v1",
                "customers",
                c,
                "subscriptions",
                p,
                "azureEntitlements",
                id,
            ],
        ) => {
            match s
                .entitlements
                .get(&(c.to_string(), p.to_string(), id.to_string()))
            {
                Some(v) => (StatusCode::OK, v.clone()),
                None => error(StatusCode::NOT_FOUND, 800111, "Azure entitlement not found"),
            }
        }
        (
            Method::POST,
            [
                "v1",
                "customers",
                c,
                "subscriptions",
                p,
                "azureEntitlements",
                id,
                op,
            ],
        ) if *op == "cancel" || *op == "reactivate" => {
            let key = (c.to_string(), p.to_string(), id.to_string());
            let sent: Value = serde_json::from_slice(body).unwrap_or_default();
            if *op == "cancel"
                && !matches!(
                    field(&sent, "cancellationReason").and_then(Value::as_str),
                    Some("compromise") | Some("other") | Some("fraud")
                )
            {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    900307,
                    "Invalid cancellation reason",
                );
            }
            match s.entitlements.get_mut(&key) {
                Some(v) => {
                    v["status"] = json!(if *op == "cancel" {
                        "inactive"
                    } else {
                        "active"
                    });
                    let v = v.clone();
                    s.effects += 1;
                    if let Some(id) = request_id.clone() {
                        s.replay.insert(id, (202, v.clone()));
                    }
                    // 202 as in the REST reference (the guide says 200; clients accept both).
                    (StatusCode::ACCEPTED, v)
                }
                None => error(StatusCode::NOT_FOUND, 800111, "Azure entitlement not found"),
            }
        }
        (Method::GET, ["v1", "fraudEvents"]) => {
            let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let want = q.get("EventStatus").map(|x| x.to_ascii_lowercase());
            // A bare array, as documented.
            let list: Vec<Value> = s
                .fraud_events
                .iter()
                .filter(|e| {
                    want.as_deref().is_none_or(|w| {
                        e["eventStatus"]
                            .as_str()
                            .is_some_and(|x| x.eq_ignore_ascii_case(w))
                    })
                })
                .cloned()
                .collect();
            (StatusCode::OK, Value::Array(list))
        }
        (Method::POST, ["v1", "fraudEvents", "subscription", sub, "status"]) => {
            let sent: Value = serde_json::from_slice(body).unwrap_or_default();
            let ids: Vec<String> = field(&sent, "EventIds")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let status = field(&sent, "EventStatus")
                .and_then(Value::as_str)
                .unwrap_or("Resolved")
                .to_owned();
            let reason = field(&sent, "ResolvedReason")
                .cloned()
                .unwrap_or(Value::Null);
            let mut changed = Vec::new();
            for e in s.fraud_events.iter_mut() {
                if e["subscriptionId"] == *sub
                    && (ids.is_empty() || ids.iter().any(|i| e["eventId"] == i.as_str()))
                {
                    e["eventStatus"] = json!(status);
                    e["resolvedReason"] = reason.clone();
                    changed.push(e.clone());
                }
            }
            s.effects += 1;
            let v = Value::Array(changed);
            if let Some(id) = request_id.clone() {
                s.replay.insert(id, (200, v.clone()));
            }
            (StatusCode::OK, v)
        }
        (Method::GET, ["v1", "invoices"]) => (
            StatusCode::OK,
            json!({"totalCount": s.invoices.len(), "items": s.invoices.clone(), "attributes": {"objectType": "Collection"}}),
        ),
        (Method::GET, ["v1", "auditrecords"]) => {
            let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let Some(start) = q.get("startDate").cloned() else {
                return refuse(StatusCode::BAD_REQUEST, 0, "startDate is required");
            };
            let end = q
                .get("endDate")
                .cloned()
                .unwrap_or_else(|| "9999-12-31".into());
            let today = jiff::Timestamp::now()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .date();
            match start.parse::<jiff::civil::Date>() {
                Ok(d) if (today - d).get_days() > 90 => {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        0,
                        "startDate must be within the last 90 days",
                    );
                }
                Err(_) => {
                    return refuse(StatusCode::BAD_REQUEST, 0, "startDate is not a date");
                }
                _ => {}
            }
            let size: usize = q
                .get("size")
                .and_then(|x| x.parse().ok())
                .unwrap_or(500)
                .max(1);
            let from: usize = header(headers, "ms-continuationtoken")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let matching: Vec<Value> = s
                .audit_records
                .iter()
                .filter(|r| {
                    let d = r["operationDate"].as_str().unwrap_or_default();
                    d >= start.as_str() && d < end.as_str()
                })
                .cloned()
                .collect();
            let page: Vec<Value> = matching.iter().skip(from).take(size).cloned().collect();
            let mut v = json!({"totalCount": page.len(), "items": page, "attributes": {"objectType": "Collection"}});
            if from + size < matching.len() {
                // Relative, without /v1, with the token in headers: as the service pages.
                v["links"] = json!({"next": {"uri": format!("/auditrecords?startDate={start}&endDate={end}&size={size}&seekOperation=Next"),
                    "method": "GET", "headers": [{"key": "MS-ContinuationToken", "value": (from + size).to_string()}]}});
            }
            (StatusCode::OK, v)
        }
        (Method::GET, ["v1", "servicerequests", id]) => match s.service_requests.get(*id) {
            Some(v) => (StatusCode::OK, v.clone()),
            None => error(StatusCode::NOT_FOUND, 0, "Service request not found"),
        },
        (Method::PATCH, ["v1", "servicerequests", id]) => {
            let note = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| field(&v, "NewNote").and_then(|n| field(n, "Text")).cloned());
            match (s.service_requests.get_mut(*id), note) {
                (Some(sr), Some(Value::String(text))) => {
                    if let Some(notes) = sr["notes"].as_array_mut() {
                        notes.push(json!({"createdByName": "partner", "text": text}));
                    }
                    let v = sr.clone();
                    s.effects += 1;
                    if let Some(id) = request_id.clone() {
                        s.replay.insert(id, (200, v.clone()));
                    }
                    (StatusCode::OK, v)
                }
                (None, _) => error(StatusCode::NOT_FOUND, 0, "Service request not found"),
                (_, _) => error(StatusCode::BAD_REQUEST, 0, "NewNote.Text is required"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, 0, "Resource not found"),
    };
    (st, v, false, None)
}

/// The literal digits of a top-level numeric field (serde_json would round them through f64).
fn raw_number(text: &str, name: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find(&format!("\"{name}\""))? + name.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let n: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-'))
        .collect();
    (!n.is_empty()).then_some(n)
}
