//! Partner Center REST API client, written against Microsoft's public documentation
//! (<https://learn.microsoft.com/partner-center/developer/>: authentication, common headers,
//! errors and throttling, and the customer and subscription resources).
//!
//! - **Auth**: OAuth 2.0 client credentials against the instance's token authority
//!   (`POST {authority}{partner-tenant}/oauth2/token`), cached until shortly before it expires
//!   and dropped on a 401.
//! - **Idempotency**: every call that changes something carries the caller's `MS-RequestId`,
//!   reused unchanged on every retry (the service answers a repeat without a second effect);
//!   `MS-CorrelationId` is new per attempt and logged.
//! - **Retries**: 429 and 5xx wait `Retry-After` (or back off exponentially) and retry up to
//!   `retries` times; a wait longer than `max_wait_seconds` is handed back to the caller as
//!   [`PcError::Throttled`] so the outbox retries later instead of holding a worker. Other 4xx
//!   are final ([`PcError::Rejected`], with the provider's error code).
//! - **Rate**: at most `requests_per_minute` calls per partner tenant from this process.
//! - **Subscriptions are PATCHed whole**: the current object is read (with its ETag), changed
//!   and sent back entire with `If-Match`, so auto-renew and next-term instructions survive; a
//!   stale ETag (400/2055) is re-read once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `[partner_center.<instance>]` in riskdesk.toml: one app registration per cloud instance.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PartnerCenterSettings {
    /// The partner's Entra ID tenant (GUID or domain).
    pub tenant_id: String,
    /// The app registration's client id and secret (app-only authentication).
    pub client_id: String,
    pub client_secret: String,
    /// REST base; empty = the instance's documented endpoint.
    #[serde(default)]
    pub rest_base: String,
    /// Token authority ending in `/`; empty = the instance's documented authority.
    #[serde(default)]
    pub token_authority: String,
    #[serde(default = "default_resource")]
    pub resource: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries after the first attempt (429, 5xx, transport errors).
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// A `Retry-After` longer than this is not waited out in the call: the outbox retries later.
    #[serde(default = "default_max_wait")]
    pub max_wait_seconds: u64,
    /// The documented limit is 500/min per tenant for customer and subscription resources.
    #[serde(default = "default_rpm")]
    pub requests_per_minute: u32,
    /// Where Entra ID sends the partner admin back after consent (the Secure Application
    /// Model): riskdesk's `/v1/provider/consent/callback`, registered as a redirect URI of the
    /// app. Empty: the instance cannot be connected for app + user calls.
    #[serde(default)]
    pub redirect_uri: String,
    /// The billing currencies whose Azure plan usage line items riskdesk pulls (unbilled,
    /// current period) on each poll; empty: none are pulled (usage arrives by file or API).
    #[serde(default)]
    pub usage_currencies: Vec<String>,
    /// Line items per page (the service allows up to 2,000).
    #[serde(default = "default_usage_page")]
    pub usage_page_size: u32,
    /// Pull the Azure Activity Log of every linked Azure subscription on each poll, with a
    /// customer-tenant token redeemed from the partner's consent (the app registration needs
    /// the delegated Azure Service Management permission, `user_impersonation`).
    #[serde(default)]
    pub activity_log: bool,
    /// Azure Resource Manager base; empty = the instance's documented endpoint.
    #[serde(default)]
    pub arm_base: String,
}

fn default_usage_page() -> u32 {
    2000
}

fn default_resource() -> String {
    "https://api.partnercenter.microsoft.com".into()
}
fn default_timeout_ms() -> u64 {
    15_000
}
fn default_retries() -> u32 {
    3
}
fn default_backoff_ms() -> u64 {
    500
}
fn default_max_wait() -> u64 {
    60
}
fn default_rpm() -> u32 {
    500
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PcError {
    #[error("Partner Center is throttling (429); retry after {0:?}")]
    Throttled(Duration),
    #[error("Partner Center is unavailable: {0}")]
    Unavailable(String),
    #[error("Partner Center refused the call: HTTP {status}, code {code}: {description}")]
    Rejected {
        status: u16,
        code: String,
        description: String,
    },
    #[error("authentication with Partner Center failed: {0}")]
    Auth(String),
    #[error("unexpected answer from Partner Center: {0}")]
    BadResponse(String),
    /// The call needs an app + user (delegated) token and the instance has no valid consent
    /// (never connected, or the refresh token expired or was revoked): a partner admin must
    /// connect it again. The call is kept and retried.
    #[error("Partner Center needs a partner admin's consent (app + user) for this call: {0}")]
    ConsentNeeded(String),
    /// The partner's delegated access to a customer's Azure subscription is gone (the role
    /// assignment or the admin relationship was removed, the subscription moved): a state
    /// to report, not a call to retry.
    #[error("no delegated access to the customer's Azure subscription: {0}")]
    NoAccess(String),
}

impl PcError {
    /// Whether the same call may succeed later (the outbox retries it).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PcError::Throttled(_)
                | PcError::Unavailable(_)
                | PcError::Auth(_)
                | PcError::ConsentNeeded(_)
        )
    }
    /// The provider's wait, if it named one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PcError::Throttled(d) => Some(*d),
            _ => None,
        }
    }
}

/// What a subscription status change did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    /// The status before (as the provider spells it).
    pub before: String,
    pub after: String,
    /// `autoRenewEnabled` before the change (kept to restore it on reactivation).
    pub auto_renew_before: Option<bool>,
    /// False when the subscription already had the wanted status (nothing was sent).
    pub patched: bool,
}

/// The calls Microsoft documents as **app + user only** (the Secure Application Model): the
/// customer usage summary, service requests and fraud events. Everything else riskdesk calls
/// works with an app-only token.
pub fn needs_app_user(path: &str) -> bool {
    let p = path
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(path);
    let p = p.split('?').next().unwrap_or(p).to_ascii_lowercase();
    let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
    matches!(
        parts.as_slice(),
        ["v1", "fraudevents", ..]
            | ["v1", "servicerequests", ..]
            | ["v1", "customers", _, "servicerequests", ..]
            | ["v1", "customers", _, "usagesummary"]
    )
}

/// Tokens from the instance's token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    /// The (rotated) refresh token, when the grant returned one.
    pub refresh_token: Option<String>,
    /// Seconds the access token lives (`expires_in`: a string in the documented sample).
    pub expires_in: u64,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token.
        f.debug_struct("TokenSet")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// Where an instance's delegated consent is kept (riskdesk's storage, encrypted at rest): the
/// client asks it for the refresh token when it needs an app + user token, hands back every
/// rotated refresh token before using the access token it came with, and reports a consent
/// the token endpoint refused (expired, revoked).
#[async_trait::async_trait]
pub trait ConsentVault: Send + Sync {
    /// The current refresh token; `None`: not connected (or the consent was lost).
    async fn refresh_token(&self) -> Result<Option<String>, String>;
    /// A redemption returned `refresh_token` (rotation) and an access token valid for
    /// `expires_in` seconds.
    async fn rotated(&self, refresh_token: &str, expires_in: u64) -> Result<(), String>;
    /// The token endpoint refused the refresh token (`invalid_grant`): the consent is gone.
    async fn lost(&self, reason: &str);
}

pub struct PartnerCenterClient {
    settings: PartnerCenterSettings,
    rest_base: String,
    authority: String,
    http: reqwest::Client,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    /// The app + user access token, from the vault's refresh token.
    user_token: tokio::sync::Mutex<Option<(String, Instant)>>,
    vault: std::sync::RwLock<Option<std::sync::Arc<dyn ConsentVault>>>,
    window: tokio::sync::Mutex<VecDeque<Instant>>,
    arm_base: String,
    /// Customer-tenant Azure Resource Manager tokens, by customer tenant.
    arm_tokens: tokio::sync::Mutex<std::collections::HashMap<String, (String, Instant)>>,
    /// Held around every refresh-token redemption: each rotates the refresh token, so two at
    /// once would race on which one the vault keeps.
    redeem: tokio::sync::Mutex<()>,
}

/// How long an access token is used: five minutes less than it lives (at most half of it).
fn keep_for(expires: u64) -> Duration {
    Duration::from_secs(expires.saturating_sub(300.min(expires / 2)))
}

/// What a token endpoint refusal means: `invalid_grant` is a lost consent (or a bad code).
enum TokenRefusal {
    InvalidGrant(String),
    Other(PcError),
}

impl PartnerCenterClient {
    /// `default_rest_base` / `default_authority`: the instance's documented endpoints, used
    /// when the settings leave them empty.
    pub fn new(
        settings: PartnerCenterSettings,
        default_rest_base: &str,
        default_authority: &str,
        default_arm_base: &str,
    ) -> Result<Self, String> {
        let pick = |s: &str, d: &str| {
            if s.is_empty() {
                d.to_owned()
            } else {
                s.to_owned()
            }
        };
        let rest_base = pick(&settings.rest_base, default_rest_base)
            .trim_end_matches('/')
            .to_owned();
        let arm_base = pick(&settings.arm_base, default_arm_base)
            .trim_end_matches('/')
            .to_owned();
        let mut authority = pick(&settings.token_authority, default_authority);
        if !authority.ends_with('/') {
            authority.push('/');
        }
        for (name, v) in [
            ("tenant_id", &settings.tenant_id),
            ("client_id", &settings.client_id),
            ("client_secret", &settings.client_secret),
        ] {
            if v.trim().is_empty() {
                return Err(format!("{name} is empty"));
            }
        }
        if settings.requests_per_minute == 0 {
            return Err("requests_per_minute must be > 0".into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            settings,
            rest_base,
            authority,
            http,
            token: tokio::sync::Mutex::new(None),
            user_token: tokio::sync::Mutex::new(None),
            vault: std::sync::RwLock::new(None),
            window: tokio::sync::Mutex::new(VecDeque::new()),
            arm_base,
            arm_tokens: Default::default(),
            redeem: tokio::sync::Mutex::new(()),
        })
    }

    pub fn rest_base(&self) -> &str {
        &self.rest_base
    }

    pub fn settings(&self) -> &PartnerCenterSettings {
        &self.settings
    }

    /// Whether a partner admin can connect this instance (a redirect URI is configured).
    pub fn can_consent(&self) -> bool {
        !self.settings.redirect_uri.trim().is_empty()
    }

    /// Connects the client to where its instance's consent is kept (app + user calls).
    pub fn set_consent_vault(&self, vault: std::sync::Arc<dyn ConsentVault>) {
        *self.vault.write().unwrap_or_else(|p| p.into_inner()) = Some(vault);
    }

    fn consent_vault(&self) -> Option<std::sync::Arc<dyn ConsentVault>> {
        self.vault.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The consent page a partner admin opens (authorization code with PKCE, RFC 7636): `GET
    /// {authority}{tenant}/oauth2/authorize` with the app, the Partner Center resource, the
    /// redirect URI, `state` and the S256 challenge of the verifier. Entra ID asks for MFA.
    pub fn consent_url(&self, state: &str, code_challenge: &str) -> Result<String, PcError> {
        if self.settings.redirect_uri.trim().is_empty() {
            return Err(PcError::Auth(
                "no redirect_uri is configured for this instance ([partner_center.<instance>] redirect_uri)".into(),
            ));
        }
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_uri)
            .append_pair("resource", &self.settings.resource)
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("prompt", "login")
            .finish();
        Ok(format!(
            "{}{}/oauth2/authorize?{q}",
            self.authority, self.settings.tenant_id
        ))
    }

    /// Redeems the code the consent page returned (with the PKCE verifier) for the first
    /// tokens; the refresh token is what riskdesk keeps.
    pub async fn redeem_consent_code(
        &self,
        code: &str,
        code_verifier: &str,
    ) -> Result<TokenSet, PcError> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("client_secret", &self.settings.client_secret)
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.settings.redirect_uri)
            .append_pair("code_verifier", code_verifier)
            .append_pair("resource", &self.settings.resource)
            .finish();
        let t = self.token_request(form).await.map_err(|e| match e {
            TokenRefusal::InvalidGrant(d) => {
                PcError::Auth(format!("the consent code was refused: {d}"))
            }
            TokenRefusal::Other(e) => e,
        })?;
        if t.refresh_token.is_none() {
            return Err(PcError::Auth(
                "the token endpoint returned no refresh token (is offline access granted?)".into(),
            ));
        }
        *self.user_token.lock().await = Some((
            t.access_token.clone(),
            Instant::now() + keep_for(t.expires_in),
        ));
        Ok(t)
    }

    /// Redeems a refresh token as the documentation describes (`grant_type=refresh_token`, the
    /// Partner Center resource, `scope=openid`, form body).
    pub async fn redeem_refresh_token(&self, refresh_token: &str) -> Result<TokenSet, PcError> {
        let _one = self.redeem.lock().await;
        match self.refresh(refresh_token).await {
            Ok(t) => Ok(t),
            Err(TokenRefusal::InvalidGrant(d)) => Err(PcError::ConsentNeeded(d)),
            Err(TokenRefusal::Other(e)) => Err(e),
        }
    }

    async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, TokenRefusal> {
        self.refresh_at(
            &self.settings.tenant_id,
            &self.settings.resource,
            refresh_token,
        )
        .await
    }

    /// The refresh-token grant at `tenant`'s authority for `resource`: the partner's own tenant
    /// for Partner Center, a customer's tenant for its Azure subscriptions.
    async fn refresh_at(
        &self,
        tenant: &str,
        resource: &str,
        refresh_token: &str,
    ) -> Result<TokenSet, TokenRefusal> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("client_secret", &self.settings.client_secret)
            .append_pair("refresh_token", refresh_token)
            .append_pair("resource", resource)
            .append_pair("scope", "openid")
            .finish();
        self.token_request_at(tenant, form).await
    }

    /// Redeems the vault's refresh token at `tenant` for `resource`, handing a rotated refresh
    /// token to the vault before the access token is used. `None` inside: not connected.
    async fn delegated(
        &self,
        tenant: &str,
        resource: &str,
    ) -> Result<
        (
            std::sync::Arc<dyn ConsentVault>,
            Result<TokenSet, TokenRefusal>,
        ),
        PcError,
    > {
        let _one = self.redeem.lock().await;
        let vault = self
            .consent_vault()
            .ok_or_else(|| PcError::ConsentNeeded("this instance was never connected".into()))?;
        let rt = vault
            .refresh_token()
            .await
            .map_err(|e| PcError::Unavailable(format!("reading the stored consent: {e}")))?
            .ok_or_else(|| PcError::ConsentNeeded("this instance is not connected".into()))?;
        let t = self.refresh_at(tenant, resource, &rt).await;
        if let Ok(t) = &t
            && let Some(new) = &t.refresh_token
            && new != &rt
        {
            vault
                .rotated(new, t.expires_in)
                .await
                .map_err(|e| PcError::Unavailable(format!("storing the rotated consent: {e}")))?;
        }
        Ok((vault, t))
    }

    async fn token_request(&self, form: String) -> Result<TokenSet, TokenRefusal> {
        self.token_request_at(&self.settings.tenant_id, form).await
    }

    /// `POST {authority}{tenant}/oauth2/token` with a form body.
    async fn token_request_at(&self, tenant: &str, form: String) -> Result<TokenSet, TokenRefusal> {
        let url = format!("{}{}/oauth2/token", self.authority, seg(tenant));
        let r = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| {
                TokenRefusal::Other(PcError::Auth(format!("token endpoint {url}: {e}")))
            })?;
        let status = r.status();
        let body: Value = r.json().await.map_err(|e| {
            TokenRefusal::Other(PcError::Auth(format!(
                "token endpoint answered {status}: {e}"
            )))
        })?;
        if !status.is_success() {
            let why = body
                .get("error_description")
                .or_else(|| body.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("no description")
                .to_owned();
            return Err(if body["error"] == "invalid_grant" {
                TokenRefusal::InvalidGrant(why)
            } else if status.is_server_error() {
                TokenRefusal::Other(PcError::Unavailable(format!(
                    "token endpoint answered {status}: {why}"
                )))
            } else {
                TokenRefusal::Other(PcError::Auth(format!(
                    "token endpoint answered {status}: {why}"
                )))
            });
        }
        let access_token = body["access_token"]
            .as_str()
            .ok_or_else(|| {
                TokenRefusal::Other(PcError::Auth(
                    "no access_token in the token response".into(),
                ))
            })?
            .to_owned();
        // `expires_in` is a string ("3600") in the documented sample, a number elsewhere.
        let expires_in = match &body["expires_in"] {
            Value::String(s) => s.parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
        .unwrap_or(3600);
        Ok(TokenSet {
            access_token,
            refresh_token: body["refresh_token"].as_str().map(str::to_owned),
            expires_in,
        })
    }

    /// An app + user access token: cached, else redeemed from the vault's refresh token (the
    /// rotated refresh token is handed to the vault first).
    async fn user_access_token(&self) -> Result<String, PcError> {
        let mut cached = self.user_token.lock().await;
        if let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let (vault, t) = self
            .delegated(&self.settings.tenant_id, &self.settings.resource)
            .await?;
        let t = match t {
            Ok(t) => t,
            Err(TokenRefusal::InvalidGrant(d)) => {
                vault.lost(&d).await;
                return Err(PcError::ConsentNeeded(d));
            }
            Err(TokenRefusal::Other(e)) => return Err(e),
        };
        *cached = Some((
            t.access_token.clone(),
            Instant::now() + keep_for(t.expires_in),
        ));
        Ok(t.access_token)
    }

    /// Drops the cached app + user token (a disconnect, or a 401).
    pub async fn forget_user_token(&self) {
        *self.user_token.lock().await = None;
    }

    async fn access_token(&self) -> Result<String, PcError> {
        let mut cached = self.token.lock().await;
        if let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("client_secret", &self.settings.client_secret)
            .append_pair("resource", &self.settings.resource)
            .finish();
        let t = self.token_request(form).await.map_err(|e| match e {
            TokenRefusal::InvalidGrant(d) => PcError::Auth(d),
            TokenRefusal::Other(e) => e,
        })?;
        *cached = Some((
            t.access_token.clone(),
            Instant::now() + keep_for(t.expires_in),
        ));
        Ok(t.access_token)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// Waits for room in this tenant's per-minute budget.
    async fn pace(&self) {
        loop {
            let wait = {
                let mut w = self.window.lock().await;
                let now = Instant::now();
                while w
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
                {
                    w.pop_front();
                }
                if w.len() < self.settings.requests_per_minute as usize {
                    w.push_back(now);
                    return;
                }
                Duration::from_secs(60) - now.duration_since(*w.front().expect("non-empty"))
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends one logical call with retries. `request_id` is the `MS-RequestId` of every
    /// attempt. Returns the status, ETag and parsed body (Null when empty).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        request_id: &str,
        if_match: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, Option<String>, Value), PcError> {
        self.call_with(method, path, request_id, if_match, body, &[])
            .await
    }

    async fn call_with(
        &self,
        method: reqwest::Method,
        path: &str,
        request_id: &str,
        if_match: Option<&str>,
        body: Option<&str>,
        extra_headers: &[(String, String)],
    ) -> Result<(u16, Option<String>, Value), PcError> {
        self.call_full(method, path, request_id, if_match, body, extra_headers)
            .await
            .map(|(st, etag, v, _)| (st, etag, v))
    }

    /// [`call_with`](Self::call_with), also returning the body's text (for amounts that must
    /// keep every digit they were sent with).
    async fn call_full(
        &self,
        method: reqwest::Method,
        path: &str,
        request_id: &str,
        if_match: Option<&str>,
        body: Option<&str>,
        extra_headers: &[(String, String)],
    ) -> Result<(u16, Option<String>, Value, String), PcError> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.rest_base)
        };
        let mut attempt: u32 = 0;
        let mut refreshed_token = false;
        let app_user = needs_app_user(&url);
        loop {
            self.pace().await;
            let token = if app_user {
                self.user_access_token().await?
            } else {
                self.access_token().await?
            };
            let correlation = uuid::Uuid::now_v7().to_string();
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&token)
                .header("Accept", "application/json")
                .header("MS-RequestId", request_id)
                .header("MS-CorrelationId", &correlation);
            if let Some(e) = if_match {
                req = req.header("If-Match", e);
            }
            for (k, v) in extra_headers {
                req = req.header(k.as_str(), v.as_str());
            }
            if let Some(b) = body {
                req = req
                    .header("Content-Type", "application/json")
                    .body(b.to_owned());
            }
            let outcome = req.send().await;
            let wait = match outcome {
                Err(e) => {
                    tracing::warn!(%url, %correlation, error = %e, "Partner Center call failed");
                    if attempt >= self.settings.retries {
                        return Err(PcError::Unavailable(format!("{method} {path}: {e}")));
                    }
                    self.backoff(attempt)
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = retry_after_of(r.headers());
                    let etag = r
                        .headers()
                        .get("etag")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let text = r.text().await.unwrap_or_default();
                    let parsed: Value = if text.trim().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
                    };
                    tracing::debug!(%url, %correlation, status, "Partner Center call");
                    if (200..300).contains(&status) {
                        return Ok((status, etag, parsed, text));
                    }
                    if status == 401 && !refreshed_token {
                        // An expired or revoked token: get a new one once.
                        refreshed_token = true;
                        if app_user {
                            self.forget_user_token().await;
                        } else {
                            self.forget_token().await;
                        }
                        continue;
                    }
                    if status != 429 && !(500..600).contains(&status) {
                        return Err(rejected(status, &parsed));
                    }
                    let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
                    if status == 429 {
                        if attempt >= self.settings.retries
                            || wait > Duration::from_secs(self.settings.max_wait_seconds)
                        {
                            return Err(PcError::Throttled(wait));
                        }
                    } else if attempt >= self.settings.retries {
                        return Err(PcError::Unavailable(format!(
                            "{method} {path}: HTTP {status}: {}",
                            describe(&parsed)
                        )));
                    }
                    wait
                }
            };
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        Duration::from_millis(
            self.settings
                .backoff_ms
                .saturating_mul(1u64 << attempt.min(10)),
        )
    }

    fn sub_path(customer: &str, subscription: &str) -> String {
        format!(
            "/v1/customers/{}/subscriptions/{}",
            seg(customer),
            seg(subscription)
        )
    }

    /// `GET /v1/customers/{customer}/subscriptions/{subscription}`: the object and its ETag.
    pub async fn get_subscription(
        &self,
        customer: &str,
        subscription: &str,
    ) -> Result<(Value, Option<String>), PcError> {
        let id = uuid::Uuid::now_v7().to_string();
        let (_, etag, body) = self
            .call(
                reqwest::Method::GET,
                &Self::sub_path(customer, subscription),
                &id,
                None,
                None,
            )
            .await?;
        let etag = etag.or_else(|| {
            body.pointer("/attributes/etag")
                .and_then(Value::as_str)
                .map(|e| format!("\"{}\"", e.trim_matches('"')))
        });
        Ok((body, etag))
    }

    /// Sets a subscription's status (`suspended`, `active`, `deleted`) with a full-object
    /// PATCH. `auto_renew` restores auto-renew (reactivation after an NCE suspension turned it
    /// off). Does nothing when the status is already the wanted one.
    pub async fn set_subscription_status(
        &self,
        customer: &str,
        subscription: &str,
        status: &str,
        auto_renew: Option<bool>,
        request_id: &str,
    ) -> Result<StatusChange, PcError> {
        let mut stale_retried = false;
        loop {
            let (mut obj, etag) = self.get_subscription(customer, subscription).await?;
            let before = obj
                .get("status")
                .map(enum_name)
                .ok_or_else(|| PcError::BadResponse("subscription without status".into()))?;
            let auto_renew_before = obj.get("autoRenewEnabled").and_then(Value::as_bool);
            if before == status {
                return Ok(StatusChange {
                    before: before.clone(),
                    after: before,
                    auto_renew_before,
                    patched: false,
                });
            }
            let Some(map) = obj.as_object_mut() else {
                return Err(PcError::BadResponse("subscription is not an object".into()));
            };
            map.insert("status".into(), Value::String(status.into()));
            if let Some(a) = auto_renew {
                map.insert("autoRenewEnabled".into(), Value::Bool(a));
            }
            let body = obj.to_string();
            match self
                .call(
                    reqwest::Method::PATCH,
                    &Self::sub_path(customer, subscription),
                    request_id,
                    etag.as_deref(),
                    Some(&body),
                )
                .await
            {
                Ok((_, _, after)) => {
                    let after = after
                        .get("status")
                        .map(enum_name)
                        .unwrap_or_else(|| status.to_owned());
                    return Ok(StatusChange {
                        before,
                        after,
                        auto_renew_before,
                        patched: true,
                    });
                }
                Err(PcError::Rejected {
                    status: 400, code, ..
                }) if code == "2055" && !stale_retried => {
                    // "Etag is no longer valid": read again and re-apply, once.
                    stale_retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `PATCH /v1/customers/{customer}/usagebudget` with `amount` (a decimal string, sent as an
    /// exact JSON number).
    pub async fn set_usage_budget(
        &self,
        customer: &str,
        amount: &str,
        request_id: &str,
    ) -> Result<Value, PcError> {
        if amount.is_empty()
            || !amount.chars().all(|c| c.is_ascii_digit() || c == '.')
            || amount.matches('.').count() > 1
            || amount.starts_with('.')
            || amount.ends_with('.')
        {
            return Err(PcError::BadResponse(format!(
                "'{amount}' is not a decimal amount"
            )));
        }
        let body =
            format!(r#"{{"amount":{amount},"attributes":{{"objectType":"SpendingBudget"}}}}"#);
        let (_, _, v) = self
            .call(
                reqwest::Method::PATCH,
                &format!("/v1/customers/{}/usagebudget", seg(customer)),
                request_id,
                None,
                Some(&body),
            )
            .await?;
        Ok(v)
    }

    /// `GET /v1/customers/{customer}/usagebudget`: the amount as sent (None = no budget).
    pub async fn get_usage_budget(&self, customer: &str) -> Result<Option<String>, PcError> {
        let id = uuid::Uuid::now_v7().to_string();
        let (_, _, v) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/customers/{}/usagebudget", seg(customer)),
                &id,
                None,
                None,
            )
            .await?;
        Ok(match v.get("amount") {
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        })
    }

    /// `GET /v1/servicerequests/{id}`.
    pub async fn get_service_request(&self, id: &str) -> Result<Value, PcError> {
        let rid = uuid::Uuid::now_v7().to_string();
        let (_, _, v) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/servicerequests/{}", seg(id)),
                &rid,
                None,
                None,
            )
            .await?;
        Ok(v)
    }

    /// `PATCH /v1/servicerequests/{id}` with `{"NewNote": {"Text": …}}`.
    pub async fn add_service_request_note(
        &self,
        id: &str,
        text: &str,
        request_id: &str,
    ) -> Result<Value, PcError> {
        let body = serde_json::json!({"NewNote": {"Text": text}}).to_string();
        let (_, _, v) = self
            .call(
                reqwest::Method::PATCH,
                &format!("/v1/servicerequests/{}", seg(id)),
                request_id,
                None,
                Some(&body),
            )
            .await?;
        Ok(v)
    }
}

/// Where the next page of a collection is: `links.next.uri` (made absolute under `/v1`) and
/// every header of `links.next.headers` (the `MS-ContinuationToken`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextPage {
    pub uri: String,
    pub headers: Vec<(String, String)>,
}

/// One page of usage line items: each item's raw JSON text (costs keep every digit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineItemPage {
    pub items: Vec<String>,
    pub next: Option<NextPage>,
}

fn next_of(links_next: Option<&Value>) -> Option<NextPage> {
    let n = links_next?;
    let uri = n["uri"].as_str().filter(|u| !u.is_empty())?;
    let uri = if uri.starts_with("/v1/") || uri.starts_with("http") {
        uri.to_owned()
    } else {
        format!("/v1{}{uri}", if uri.starts_with('/') { "" } else { "/" })
    };
    let headers = n["headers"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .filter_map(|h| {
                    Some((
                        h["key"].as_str()?.to_owned(),
                        h["value"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(NextPage { uri, headers })
}

impl PartnerCenterClient {
    /// One page of the Azure plan's **unbilled** usage line items (`GET
    /// /v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=usagelineitems&
    /// currencycode=…&period=current|previous&size=…`), or the page `next` points to. App-only.
    pub async fn unbilled_usage_page(
        &self,
        currency: &str,
        period: &str,
        size: u32,
        next: Option<&NextPage>,
    ) -> Result<LineItemPage, PcError> {
        let first = format!(
            "/v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=usagelineitems&currencycode={}&period={}&size={}",
            seg(currency),
            seg(period),
            size.clamp(1, 2000)
        );
        self.line_item_page(first, next).await
    }

    /// One page of an invoice's **billed** usage line items (`GET
    /// /v1/invoices/{id}/lineitems?provider=onetime&invoicelineitemtype=usagelineitems&
    /// currencycode=…&size=…`), or the page `next` points to. App-only.
    pub async fn billed_usage_page(
        &self,
        invoice: &str,
        currency: &str,
        size: u32,
        next: Option<&NextPage>,
    ) -> Result<LineItemPage, PcError> {
        let first = format!(
            "/v1/invoices/{}/lineitems?provider=onetime&invoicelineitemtype=usagelineitems&currencycode={}&size={}",
            seg(invoice),
            seg(currency),
            size.clamp(1, 2000)
        );
        self.line_item_page(first, next).await
    }

    /// Microsoft's invoices to the partner (`GET /v1/invoices`, every page).
    pub async fn invoices(&self) -> Result<Vec<Value>, PcError> {
        self.get_collection("/v1/invoices", 50).await
    }

    async fn line_item_page(
        &self,
        first: String,
        next: Option<&NextPage>,
    ) -> Result<LineItemPage, PcError> {
        let (path, headers) = match next {
            Some(n) => (n.uri.clone(), n.headers.clone()),
            None => (first, Vec::new()),
        };
        let id = uuid::Uuid::now_v7().to_string();
        let (_, _, v, text) = self
            .call_full(reqwest::Method::GET, &path, &id, None, None, &headers)
            .await?;
        #[derive(Deserialize)]
        struct Page<'a> {
            #[serde(borrow, default)]
            items: Vec<&'a serde_json::value::RawValue>,
        }
        let page: Page = serde_json::from_str(&text).map_err(|e| {
            PcError::BadResponse(format!("{path}: not a collection of line items: {e}"))
        })?;
        Ok(LineItemPage {
            items: page.items.iter().map(|r| r.get().to_owned()).collect(),
            next: next_of(v.pointer("/links/next")),
        })
    }

    /// Every item of a collection, following `links.next` (its relative `uri`, prefixed with
    /// `/v1` when it lacks it, sent with every header in `links.next.headers` — the
    /// `MS-ContinuationToken`). A bare JSON array is one page.
    pub async fn get_collection(
        &self,
        path: &str,
        max_pages: usize,
    ) -> Result<Vec<Value>, PcError> {
        let mut items = Vec::new();
        let mut next: Option<(String, Vec<(String, String)>)> = Some((path.to_owned(), Vec::new()));
        let mut pages = 0;
        while let Some((p, headers)) = next.take() {
            pages += 1;
            if pages > max_pages {
                return Err(PcError::BadResponse(format!(
                    "more than {max_pages} pages at {path}"
                )));
            }
            let id = uuid::Uuid::now_v7().to_string();
            let (_, _, body) = self
                .call_with(reqwest::Method::GET, &p, &id, None, None, &headers)
                .await?;
            match body {
                Value::Array(a) => items.extend(a),
                Value::Object(ref o) => {
                    if let Some(Value::Array(a)) = o.get("items") {
                        items.extend(a.iter().cloned());
                    }
                    next = next_of(body.pointer("/links/next")).map(|n| (n.uri, n.headers));
                }
                Value::Null => {}
                other => {
                    return Err(PcError::BadResponse(format!(
                        "{path}: expected a collection, got {}",
                        other
                    )));
                }
            }
        }
        Ok(items)
    }

    /// Cancels one Azure subscription of an Azure plan: `POST
    /// …/subscriptions/{plan}/azureEntitlements/{id}/cancel` with a cancellation reason (200 or
    /// 202). An entitlement already inactive is left alone (nothing sent).
    pub async fn cancel_entitlement(
        &self,
        customer: &str,
        plan: &str,
        entitlement: &str,
        reason: &str,
        request_id: &str,
    ) -> Result<StatusChange, PcError> {
        let path = format!(
            "/v1/customers/{}/subscriptions/{}/azureEntitlements/{}",
            seg(customer),
            seg(plan),
            seg(entitlement)
        );
        let rid = uuid::Uuid::now_v7().to_string();
        let (_, _, current) = self
            .call(reqwest::Method::GET, &path, &rid, None, None)
            .await?;
        let before = current
            .get("status")
            .map(enum_name)
            .unwrap_or_else(|| "unknown".into());
        if matches!(before.as_str(), "inactive" | "cancelled" | "deleted") {
            return Ok(StatusChange {
                after: before.clone(),
                before,
                auto_renew_before: None,
                patched: false,
            });
        }
        let body = serde_json::json!({"cancellationReason": reason}).to_string();
        let (_, _, after) = self
            .call(
                reqwest::Method::POST,
                &format!("{path}/cancel"),
                request_id,
                None,
                Some(&body),
            )
            .await?;
        Ok(StatusChange {
            before,
            after: after
                .get("status")
                .map(enum_name)
                .unwrap_or_else(|| "inactive".into()),
            auto_renew_before: None,
            patched: true,
        })
    }

    /// `GET /v1/fraudEvents?EventStatus=…` (a bare array).
    pub async fn fraud_events(&self, status: &str) -> Result<Vec<Value>, PcError> {
        self.get_collection(&format!("/v1/fraudEvents?EventStatus={}", seg(status)), 50)
            .await
    }

    /// `POST /v1/fraudEvents/subscription/{id}/status`: records a verdict (`Fraud` or
    /// `Ignore`) on events of a subscription (all when `event_ids` is empty).
    pub async fn set_fraud_event_status(
        &self,
        subscription: &str,
        event_ids: &[String],
        status: &str,
        reason: &str,
        request_id: &str,
    ) -> Result<Value, PcError> {
        let body = serde_json::json!({"EventIds": event_ids, "EventStatus": status, "ResolvedReason": reason})
            .to_string();
        let (_, _, v) = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/fraudEvents/subscription/{}/status", seg(subscription)),
                request_id,
                None,
                Some(&body),
            )
            .await?;
        Ok(v)
    }

    /// `GET /v1/auditrecords?startDate=…&endDate=…` for one UTC day (`YYYY-MM-DD`), every page.
    /// Only the last 90 days exist (older: 400).
    pub async fn audit_records(&self, day: &str, next_day: &str) -> Result<Vec<Value>, PcError> {
        self.get_collection(
            &format!(
                "/v1/auditrecords?startDate={}&endDate={}&size=500",
                seg(day),
                seg(next_day)
            ),
            1_000,
        )
        .await
    }
}

/// One page of a customer subscription's Azure Activity Log (management events).
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityPage {
    pub events: Vec<Value>,
    /// The page after this one: ARM's absolute `nextLink` (always on the ARM base).
    pub next: Option<String>,
}

impl PartnerCenterClient {
    /// The Azure Resource Manager base of this instance (no trailing slash).
    pub fn arm_base(&self) -> &str {
        &self.arm_base
    }

    /// A customer-tenant token for Azure Resource Manager: the partner's refresh token
    /// redeemed at the **customer's** authority (`{authority}{customer}/oauth2/token`) for the
    /// ARM resource, cached until shortly before it expires. A refusal there is a lost access
    /// to that customer — unless the partner's own consent is gone too, which is reported as
    /// such (the vault hears of it).
    async fn arm_token(&self, customer_tenant: &str) -> Result<String, PcError> {
        let mut cache = self.arm_tokens.lock().await;
        if let Some((t, until)) = cache.get(customer_tenant)
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let resource = format!("{}/", self.arm_base);
        let (_, t) = self.delegated(customer_tenant, &resource).await?;
        let t = match t {
            Ok(t) => t,
            Err(TokenRefusal::InvalidGrant(d)) => {
                // Is the partner's consent itself gone? A fresh partner-tenant redemption says.
                self.forget_user_token().await;
                self.user_access_token().await?;
                return Err(PcError::NoAccess(format!(
                    "the customer's tenant {customer_tenant} refused a token: {d}"
                )));
            }
            Err(TokenRefusal::Other(e)) => return Err(e),
        };
        cache.insert(
            customer_tenant.to_owned(),
            (
                t.access_token.clone(),
                Instant::now() + keep_for(t.expires_in),
            ),
        );
        Ok(t.access_token)
    }

    /// One page of the Azure Activity Log of `subscription` (in the customer tenant
    /// `customer_tenant`): `GET {arm}/subscriptions/{id}/providers/Microsoft.Insights/
    /// eventtypes/management/values?api-version=2015-04-01&$filter=eventTimestamp ge '…' and
    /// eventTimestamp le '…'`, or the page `next` (a `nextLink`) names. 429 and 5xx are
    /// retried (`Retry-After` honoured up to `max_wait_seconds`); 401 once with a new token;
    /// 401, 403 and 404 after that are [`PcError::NoAccess`].
    pub async fn activity_log_page(
        &self,
        customer_tenant: &str,
        subscription: &str,
        from: &str,
        to: &str,
        next: Option<&str>,
    ) -> Result<ActivityPage, PcError> {
        let url = match next {
            Some(n) => {
                // The token goes only to ARM.
                if !n.starts_with(&format!("{}/", self.arm_base)) {
                    return Err(PcError::BadResponse(format!(
                        "a nextLink off the ARM base {}: {n}",
                        self.arm_base
                    )));
                }
                n.to_owned()
            }
            None => {
                let q = form_urlencoded::Serializer::new(String::new())
                    .append_pair("api-version", "2015-04-01")
                    .append_pair(
                        "$filter",
                        &format!("eventTimestamp ge '{from}' and eventTimestamp le '{to}'"),
                    )
                    .finish();
                format!(
                    "{}/subscriptions/{}/providers/Microsoft.Insights/eventtypes/management/values?{q}",
                    self.arm_base,
                    seg(subscription)
                )
            }
        };
        let mut attempt: u32 = 0;
        let mut renewed = false;
        loop {
            self.pace().await;
            let token = self.arm_token(customer_tenant).await?;
            let request_id = uuid::Uuid::now_v7().to_string();
            let outcome = self
                .http
                .get(&url)
                .bearer_auth(&token)
                .header("Accept", "application/json")
                .header("x-ms-client-request-id", &request_id)
                .send()
                .await;
            let wait = match outcome {
                Err(e) => {
                    tracing::warn!(%url, %request_id, error = %e, "Azure Resource Manager call failed");
                    if attempt >= self.settings.retries {
                        return Err(PcError::Unavailable(format!("GET activity log: {e}")));
                    }
                    self.backoff(attempt)
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = retry_after_of(r.headers());
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    if (200..300).contains(&status) {
                        let events = match body.get("value") {
                            Some(Value::Array(a)) => a.clone(),
                            _ => {
                                return Err(PcError::BadResponse(
                                    "an Activity Log answer without `value`".into(),
                                ));
                            }
                        };
                        let next = body["nextLink"]
                            .as_str()
                            .filter(|n| !n.is_empty())
                            .map(str::to_owned);
                        return Ok(ActivityPage { events, next });
                    }
                    let code = body
                        .pointer("/error/code")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let message = body
                        .pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("no message");
                    if status == 401 && !renewed {
                        renewed = true;
                        self.arm_tokens.lock().await.remove(customer_tenant);
                        continue;
                    }
                    if matches!(status, 401 | 403 | 404) {
                        return Err(PcError::NoAccess(format!(
                            "subscription {subscription}: HTTP {status} {code}: {message}"
                        )));
                    }
                    let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
                    if status == 429 {
                        if attempt >= self.settings.retries
                            || wait > Duration::from_secs(self.settings.max_wait_seconds)
                        {
                            return Err(PcError::Throttled(wait));
                        }
                    } else if (500..600).contains(&status) {
                        if attempt >= self.settings.retries {
                            return Err(PcError::Unavailable(format!(
                                "GET activity log: HTTP {status} {code}: {message}"
                            )));
                        }
                    } else {
                        return Err(PcError::Rejected {
                            status,
                            code: code.to_owned(),
                            description: message.to_owned(),
                        });
                    }
                    wait
                }
            };
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }
}

/// The wait a `Retry-After: <seconds>` header names.
fn retry_after_of(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    h.get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// One path segment, percent-encoded.
fn seg(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// An enum as the provider sends it: lower snake_case string, or an integer (subscriptions:
/// none=0, active=1, suspended=2, deleted=3, expired=4, pending=5, disabled=6).
pub fn enum_name(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_ascii_lowercase(),
        Value::Number(n) => match n.as_i64() {
            Some(0) => "none".into(),
            Some(1) => "active".into(),
            Some(2) => "suspended".into(),
            Some(3) => "deleted".into(),
            Some(4) => "expired".into(),
            Some(5) => "pending".into(),
            Some(6) => "disabled".into(),
            _ => format!("unknown({n})"),
        },
        other => format!("unknown({other})"),
    }
}

fn describe(v: &Value) -> String {
    v.get("description")
        .or_else(|| v.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string())
}

/// The error body `{code, description, data, source}`; `code` arrives as a number or a string.
fn rejected(status: u16, v: &Value) -> PcError {
    let code = match v.get("code") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    PcError::Rejected {
        status,
        code,
        description: describe(v),
    }
}

#[cfg(all(test, feature = "fake"))]
mod tests {
    use super::*;
    use crate::partner_center_fake::FakePartnerCenter;

    fn client(fake: &FakePartnerCenter) -> PartnerCenterClient {
        PartnerCenterClient::new(
            PartnerCenterSettings {
                tenant_id: "partner-tenant".into(),
                client_id: "app".into(),
                client_secret: "secret".into(),
                rest_base: fake.url.clone(),
                token_authority: format!("{}/", fake.url),
                resource: default_resource(),
                timeout_ms: 2_000,
                retries: 3,
                backoff_ms: 10,
                max_wait_seconds: 5,
                requests_per_minute: 500,
                redirect_uri: "https://riskdesk.example/v1/provider/consent/callback".into(),
                usage_currencies: vec!["EUR".into()],
                usage_page_size: 2000,
                activity_log: true,
                arm_base: fake.url.clone(),
            },
            "https://unused.example",
            "https://unused.example/",
            "https://unused.example",
        )
        .expect("client")
    }

    #[tokio::test]
    async fn suspend_patches_the_whole_object_once_and_keeps_auto_renew_to_restore() {
        let fake = FakePartnerCenter::start().await;
        fake.add_subscription("cust-1", "sub-1", true, true);
        let c = client(&fake);
        let change = c
            .set_subscription_status("cust-1", "sub-1", "suspended", None, "req-1")
            .await
            .expect("suspend");
        assert_eq!(change.before, "active");
        assert_eq!(change.after, "suspended");
        assert_eq!(change.auto_renew_before, Some(true));
        assert!(change.patched);
        let patches = fake.requests_with("PATCH");
        assert_eq!(patches.len(), 1);
        let p = &patches[0];
        assert_eq!(p.request_id.as_deref(), Some("req-1"));
        assert!(p.if_match.is_some(), "PATCH carries If-Match");
        // Whole object: offer and quantity went back unchanged.
        let body: Value = serde_json::from_str(&p.body).unwrap();
        assert_eq!(body["offerId"], "CFQ7TTC0LH18:0001");
        assert_eq!(body["quantity"], 5);
        // The fake, like NCE, turned auto-renew off on suspension.
        assert_eq!(
            fake.subscription("cust-1", "sub-1")["autoRenewEnabled"],
            false
        );

        // Again: already suspended, nothing is sent.
        let again = c
            .set_subscription_status("cust-1", "sub-1", "suspended", None, "req-2")
            .await
            .unwrap();
        assert!(!again.patched);
        assert_eq!(fake.requests_with("PATCH").len(), 1);

        // Reactivation restores auto-renew.
        c.set_subscription_status("cust-1", "sub-1", "active", Some(true), "req-3")
            .await
            .unwrap();
        let s = fake.subscription("cust-1", "sub-1");
        assert_eq!(s["status"], "active");
        assert_eq!(s["autoRenewEnabled"], true);
        // One token for all of it.
        assert_eq!(fake.tokens_issued(), 1);
    }

    #[tokio::test]
    async fn throttling_and_outages_are_retried_with_the_same_request_id() {
        let fake = FakePartnerCenter::start().await;
        fake.add_subscription("c", "s", false, false);
        fake.throttle_next(1, 1);
        fake.fail_next(1);
        let c = client(&fake);
        c.set_subscription_status("c", "s", "suspended", None, "req-x")
            .await
            .expect("retried to success");
        // GET throttled, GET 503, GET ok, PATCH ok.
        let calls: Vec<(String, u16)> = fake
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/subscriptions/"))
            .map(|r| (r.method.clone(), r.status))
            .collect();
        assert_eq!(
            calls,
            [
                ("GET".to_owned(), 429),
                ("GET".to_owned(), 503),
                ("GET".to_owned(), 200),
                ("PATCH".to_owned(), 200)
            ]
        );
        assert_eq!(fake.subscription("c", "s")["status"], "suspended");
    }

    #[tokio::test]
    async fn a_long_retry_after_goes_back_to_the_caller_and_a_4xx_is_final() {
        let fake = FakePartnerCenter::start().await;
        fake.add_subscription("c", "s", false, false);
        fake.throttle_next(1, 57);
        let c = client(&fake);
        let e = c
            .set_subscription_status("c", "s", "suspended", None, "r")
            .await
            .unwrap_err();
        assert_eq!(e, PcError::Throttled(Duration::from_secs(57)));
        assert!(e.is_retryable());
        let e = c
            .set_subscription_status("c", "missing", "suspended", None, "r")
            .await
            .unwrap_err();
        match &e {
            PcError::Rejected { status, code, .. } => {
                assert_eq!(*status, 404);
                assert_eq!(code, "20003");
            }
            other => panic!("{other:?}"),
        }
        assert!(!e.is_retryable());
    }

    #[tokio::test]
    async fn a_replayed_request_id_has_no_second_effect() {
        let fake = FakePartnerCenter::start().await;
        fake.add_subscription("c", "s", false, false);
        let c = client(&fake);
        c.set_subscription_status("c", "s", "suspended", None, "same")
            .await
            .unwrap();
        // Someone reactivates at the provider; a replay of the old request must not re-suspend.
        fake.set_status("c", "s", "active");
        let http = reqwest::Client::new();
        let r = http
            .patch(format!("{}/v1/customers/c/subscriptions/s", fake.url))
            .bearer_auth("t")
            .header("MS-RequestId", "same")
            .body(r#"{"status":"suspended"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(fake.subscription("c", "s")["status"], "active");
        assert_eq!(fake.effects(), 1);
    }

    #[tokio::test]
    async fn an_expired_token_is_renewed_once() {
        let fake = FakePartnerCenter::start().await;
        fake.add_subscription("c", "s", false, false);
        let c = client(&fake);
        c.get_subscription("c", "s").await.unwrap();
        fake.unauthorize_next();
        c.get_subscription("c", "s").await.unwrap();
        assert_eq!(fake.tokens_issued(), 2);
    }

    #[tokio::test]
    async fn budget_is_sent_exactly() {
        let fake = FakePartnerCenter::start().await;
        let c = client(&fake);
        assert_eq!(c.get_usage_budget("c").await.unwrap(), None);
        c.set_usage_budget("c", "1234.56", "b1").await.unwrap();
        assert_eq!(
            c.get_usage_budget("c").await.unwrap().as_deref(),
            Some("1234.56")
        );
        assert!(c.set_usage_budget("c", "1e3", "b2").await.is_err());
    }

    #[tokio::test]
    async fn audit_records_follow_continuation_tokens_and_fraud_events_get_a_verdict() {
        let fake = FakePartnerCenter::start().await;
        let day = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        for i in 0..1203 {
            fake.add_audit_record(
                &format!("a{i}"),
                "cust",
                "add_user_member",
                &format!("{day}T10:00:00Z"),
            );
        }
        let (c, _vault) = connected(&fake).await;
        let next = day.tomorrow().unwrap();
        let all = c
            .audit_records(&day.to_string(), &next.to_string())
            .await
            .unwrap();
        assert_eq!(all.len(), 1203);
        assert_eq!(all[1202]["id"], "a1202");
        // Three pages: the second and third carried the token from `links.next.headers`.
        let gets: Vec<_> = fake
            .requests()
            .into_iter()
            .filter(|r| r.path == "/v1/auditrecords")
            .collect();
        assert_eq!(gets.len(), 3);
        // Beyond the 90-day window: the service's 400, final.
        let old = day.checked_sub(jiff::Span::new().days(120)).unwrap();
        let e = c
            .audit_records(&old.to_string(), &old.tomorrow().unwrap().to_string())
            .await
            .unwrap_err();
        assert!(matches!(e, PcError::Rejected { status: 400, .. }), "{e:?}");

        fake.add_fraud_event(
            "cust",
            "sub-1",
            "vm-1",
            "NetworkConnectionsToCryptoMiningPools",
        );
        let events = c.fraud_events("Active").await.unwrap();
        assert_eq!(events.len(), 1);
        c.set_fraud_event_status("sub-1", &[], "Resolved", "Fraud", "v1")
            .await
            .unwrap();
        assert_eq!(
            fake.fraud_event_status("sub-1_vm-1").as_deref(),
            Some("Resolved")
        );
        assert!(c.fraud_events("Active").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn service_requests_read_and_note() {
        let fake = FakePartnerCenter::start().await;
        fake.add_service_request("SR-1", 1);
        let (c, _vault) = connected(&fake).await;
        let v = c.get_service_request("SR-1").await.unwrap();
        assert_eq!(v["status"], 1, "service requests send integer statuses");
        c.add_service_request_note("SR-1", "More evidence attached", "n1")
            .await
            .unwrap();
        let v = c.get_service_request("SR-1").await.unwrap();
        assert_eq!(v["notes"][0]["text"], "More evidence attached");
    }

    /// A vault in memory: the refresh token, every rotation, and whether the consent was lost.
    #[derive(Default)]
    struct MemoryVault {
        token: std::sync::Mutex<Option<String>>,
        rotations: std::sync::Mutex<Vec<String>>,
        lost: std::sync::Mutex<Option<String>>,
    }

    #[async_trait::async_trait]
    impl ConsentVault for MemoryVault {
        async fn refresh_token(&self) -> Result<Option<String>, String> {
            Ok(self.token.lock().unwrap().clone())
        }
        async fn rotated(&self, refresh_token: &str, _expires_in: u64) -> Result<(), String> {
            *self.token.lock().unwrap() = Some(refresh_token.to_owned());
            self.rotations
                .lock()
                .unwrap()
                .push(refresh_token.to_owned());
            Ok(())
        }
        async fn lost(&self, reason: &str) {
            *self.token.lock().unwrap() = None;
            *self.lost.lock().unwrap() = Some(reason.to_owned());
        }
    }

    /// Follows the consent page as the admin's browser would: the redirect back to riskdesk,
    /// with the code and the state.
    async fn consent(c: &PartnerCenterClient, state: &str, challenge: &str) -> (String, String) {
        let url = c.consent_url(state, challenge).unwrap();
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            loc.starts_with("https://riskdesk.example/v1/provider/consent/callback?"),
            "{loc}"
        );
        let q: std::collections::HashMap<String, String> =
            form_urlencoded::parse(loc.split_once('?').unwrap().1.as_bytes())
                .into_owned()
                .collect();
        (q["code"].clone(), q["state"].clone())
    }

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    async fn connected(
        fake: &FakePartnerCenter,
    ) -> (PartnerCenterClient, std::sync::Arc<MemoryVault>) {
        let c = client(fake);
        let (code, _) = consent(&c, "st", CHALLENGE).await;
        let t = c.redeem_consent_code(&code, VERIFIER).await.unwrap();
        let vault = std::sync::Arc::new(MemoryVault::default());
        *vault.token.lock().unwrap() = t.refresh_token;
        c.set_consent_vault(vault.clone());
        (c, vault)
    }

    #[test]
    fn the_app_user_only_calls_are_the_documented_ones() {
        for p in [
            "/v1/fraudEvents?EventStatus=Active",
            "/v1/fraudEvents/subscription/s/status",
            "/v1/servicerequests/SR-1",
            "/v1/customers/c/servicerequests",
            "/v1/customers/c/usagesummary",
            "https://api.partnercenter.microsoft.com/v1/fraudevents",
        ] {
            assert!(needs_app_user(p), "{p}");
        }
        for p in [
            "/v1/customers/c/subscriptions/s",
            "/v1/customers/c/usagebudget",
            "/v1/auditrecords?startDate=2026-01-01",
            "/v1/invoices/unbilled/lineitems?provider=onetime",
            "/v1/customers/usagerecords",
        ] {
            assert!(!needs_app_user(p), "{p}");
        }
    }

    #[tokio::test]
    async fn consent_with_pkce_gives_a_refresh_token_that_rotates_on_every_redemption() {
        let fake = FakePartnerCenter::start().await;
        let c = client(&fake);
        // The state comes back unchanged; a wrong verifier or a reused code is refused.
        let (code, state) = consent(&c, "state-123", CHALLENGE).await;
        assert_eq!(state, "state-123");
        let e = c
            .redeem_consent_code(&code, "not-the-verifier-not-the-verifier-0000000")
            .await
            .unwrap_err();
        assert!(
            matches!(&e, PcError::Auth(m) if m.contains("verifier")),
            "{e:?}"
        );
        let e = c.redeem_consent_code(&code, VERIFIER).await.unwrap_err();
        assert!(
            matches!(&e, PcError::Auth(m) if m.contains("code")),
            "a code is used once: {e:?}"
        );
        let (code, _) = consent(&c, "state-124", CHALLENGE).await;
        let first = c.redeem_consent_code(&code, VERIFIER).await.unwrap();
        let rt0 = first.refresh_token.clone().unwrap();
        assert_eq!(first.expires_in, 3600, "expires_in arrives as a string");
        assert!(
            !format!("{first:?}").contains(&rt0),
            "a token set never prints its tokens"
        );

        let vault = std::sync::Arc::new(MemoryVault::default());
        *vault.token.lock().unwrap() = Some(rt0.clone());
        c.set_consent_vault(vault.clone());
        c.forget_user_token().await;
        fake.add_fraud_event("cust", "sub-1", "vm-1", "UsageAnomalyDetection");
        assert_eq!(c.fraud_events("Active").await.unwrap().len(), 1);
        // The redemption rotated the refresh token: the new one is kept, the old one retired.
        let rotations = vault.rotations.lock().unwrap().clone();
        assert_eq!(rotations.len(), 1);
        assert_ne!(rotations[0], rt0);
        assert!(!fake.refresh_token_is_live(&rt0));
        assert!(fake.refresh_token_is_live(&rotations[0]));
        // A second redemption (the access token forgotten) uses the rotated one.
        c.forget_user_token().await;
        assert_eq!(c.fraud_events("Active").await.unwrap().len(), 1);
        assert_eq!(fake.refreshes(), 2);
        assert_eq!(vault.rotations.lock().unwrap().len(), 2);
        assert!(vault.lost.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn delegated_tokens_go_exactly_where_app_only_is_refused() {
        let fake = FakePartnerCenter::start().await;
        fake.add_subscription("c", "s", false, false);
        fake.add_service_request("SR-1", 1);
        // Not connected: app + user calls wait for a consent; app-only calls work.
        let c = client(&fake);
        let e = c.get_service_request("SR-1").await.unwrap_err();
        assert!(matches!(e, PcError::ConsentNeeded(_)), "{e:?}");
        assert!(e.is_retryable(), "the call is kept, not failed");
        c.get_subscription("c", "s").await.unwrap();
        // Connected: each call carries the kind of token it needs.
        let (c, _vault) = connected(&fake).await;
        c.get_service_request("SR-1").await.unwrap();
        c.get_subscription("c", "s").await.unwrap();
        c.fraud_events("Active").await.unwrap();
        let bearers = fake.bearers();
        for (path, kind) in &bearers {
            let want = if needs_app_user(path) { "user" } else { "app" };
            assert_eq!(kind, want, "{path}");
        }
        assert_eq!(bearers.iter().filter(|(_, k)| k == "user").count(), 2);
        assert_eq!(bearers.iter().filter(|(_, k)| k == "app").count(), 2);
    }

    #[tokio::test]
    async fn a_revoked_consent_is_reported_lost_and_calls_wait_for_a_new_one() {
        let fake = FakePartnerCenter::start().await;
        fake.add_service_request("SR-1", 1);
        let (c, vault) = connected(&fake).await;
        c.get_service_request("SR-1").await.unwrap();
        fake.revoke_consent();
        // The cached user token now gets 401; its renewal gets invalid_grant.
        let e = c.get_service_request("SR-1").await.unwrap_err();
        assert!(matches!(e, PcError::ConsentNeeded(_)), "{e:?}");
        let lost = vault.lost.lock().unwrap().clone().expect("reported lost");
        assert!(lost.contains("revoked"), "{lost}");
        // Reconnected: the calls work again.
        let (code, _) = consent(&c, "again", CHALLENGE).await;
        let t = c.redeem_consent_code(&code, VERIFIER).await.unwrap();
        *vault.token.lock().unwrap() = t.refresh_token;
        assert_eq!(c.get_service_request("SR-1").await.unwrap()["id"], "SR-1");
    }

    #[tokio::test]
    async fn the_activity_log_needs_a_customer_tenant_token_and_refusals_are_told_apart() {
        let fake = FakePartnerCenter::start().await;
        fake.add_azure_subscription("cust-1", "sub-1");
        fake.add_activity_event(
            "sub-1",
            serde_json::json!({"eventDataId": "e1", "eventTimestamp": "2026-12-01T10:00:00Z",
                "operationName": {"value": "Microsoft.Compute/virtualMachines/write"}}),
        );
        let (c, vault) = connected(&fake).await;
        let page = c
            .activity_log_page(
                "cust-1",
                "sub-1",
                "2026-12-01T00:00:00Z",
                "2026-12-02T00:00:00Z",
                None,
            )
            .await
            .unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.next, None);
        // Out of the window: nothing.
        let page = c
            .activity_log_page(
                "cust-1",
                "sub-1",
                "2026-12-02T00:00:00Z",
                "2026-12-03T00:00:00Z",
                None,
            )
            .await
            .unwrap();
        assert!(page.events.is_empty());
        // The redemption at the customer's tenant rotated the refresh token: the vault has it.
        assert!(fake.refresh_token_is_live(vault.token.lock().unwrap().as_deref().unwrap()));
        // A nextLink elsewhere never gets the token.
        let before = fake.requests().len();
        let e = c
            .activity_log_page(
                "cust-1",
                "sub-1",
                "",
                "",
                Some("https://evil.example/steal"),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, PcError::BadResponse(_)), "{e:?}");
        assert_eq!(fake.requests().len(), before);
        // Access removed: NoAccess, and the partner's consent is not reported lost.
        fake.set_arm_access("sub-1", false);
        let e = c
            .activity_log_page(
                "cust-1",
                "sub-1",
                "2026-12-01T00:00:00Z",
                "2026-12-02T00:00:00Z",
                None,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&e, PcError::NoAccess(m) if m.contains("AuthorizationFailed")),
            "{e:?}"
        );
        assert!(vault.lost.lock().unwrap().is_none());
        // Another customer's tenant refuses the partner: NoAccess too.
        fake.add_azure_subscription("cust-2", "sub-2");
        fake.refuse_customer_tenant("cust-2");
        let e = c
            .activity_log_page(
                "cust-2",
                "sub-2",
                "2026-12-01T00:00:00Z",
                "2026-12-02T00:00:00Z",
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, PcError::NoAccess(_)), "{e:?}");
        assert!(vault.lost.lock().unwrap().is_none());
        // The consent itself revoked: that is what is reported (and the vault hears of it).
        fake.revoke_consent();
        fake.add_azure_subscription("cust-3", "sub-3");
        let e = c
            .activity_log_page(
                "cust-3",
                "sub-3",
                "2026-12-01T00:00:00Z",
                "2026-12-02T00:00:00Z",
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, PcError::ConsentNeeded(_)), "{e:?}");
        assert!(vault.lost.lock().unwrap().is_some());
    }
}
