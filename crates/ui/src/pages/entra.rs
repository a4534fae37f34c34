//! Sign-in with Microsoft Entra ID (OpenID Connect), per tenant: `/ui/login/entra?tenant=…`
//! sends the browser to the tenant's directory with a fresh state, nonce and PKCE challenge
//! (kept in a short-lived `__Host-` cookie), and the callback redeems the code, verifies the
//! ID token (`riskdesk_connectors::oidc`) and opens a session for the staff account linked to
//! that person — never creating one.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use riskdesk_app::accounts::staff::{self, SignIn, Vouched};
use riskdesk_connectors::oidc::{Client, Flow};
use serde::Deserialize;

use super::see_other;
use crate::UiState;
use crate::error::{UiError, safe_next};
use crate::session;

const FLOW_COOKIE: &str = "__Host-riskdesk_oidc";

#[derive(Deserialize)]
pub struct StartQuery {
    tenant: String,
    next: Option<String>,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes())
}

fn unb64(s: &str) -> Option<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// Sends the browser to the tenant's Entra ID sign-in.
pub async fn start(
    State(s): State<UiState>,
    Query(q): Query<StartQuery>,
) -> Result<Response, UiError> {
    let settings = s
        .opts
        .entra
        .get(&q.tenant)
        .ok_or(UiError::NotFound)?
        .clone();
    let client = Client::new(settings).map_err(|e| UiError::Unavailable(e.to_string()))?;
    let d = client
        .discover()
        .await
        .map_err(|e| UiError::Unavailable(e.to_string()))?;
    let flow = Flow::new();
    let next = safe_next(q.next.as_deref().unwrap_or("/ui/"));
    // tenant ~ flow ~ next: each part URL-safe base64 or the flow's own dotted form.
    let value = format!("{}~{}~{}", b64(&q.tenant), flow.encode(), b64(next));
    let mut resp = Redirect::to(&client.authorize_url(&d, &flow)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{FLOW_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600"
        ))
        .map_err(|e| UiError::Internal(e.to_string()))?,
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn flow_cookie(headers: &HeaderMap) -> Option<(String, Flow, String)> {
    let raw = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == FLOW_COOKIE)
        .map(|(_, v)| v.to_owned())?;
    let mut it = raw.split('~');
    let (t, f, n) = (it.next()?, it.next()?, it.next()?);
    Some((unb64(t)?, Flow::decode(f)?, unb64(n)?))
}

fn refused(message: &str) -> Response {
    let to = format!(
        "/ui/login?error={}",
        form_urlencoded::byte_serialize(message.as_bytes()).collect::<String>()
    );
    Redirect::to(&to).into_response()
}

/// Where Entra ID sends the browser back.
pub async fn callback(
    State(s): State<UiState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, UiError> {
    let Some((tenant_slug, flow, next)) = flow_cookie(&headers) else {
        return Ok(refused("entra-no-flow"));
    };
    if let Some(e) = &q.error {
        tracing::info!(error = %e, description = ?q.error_description, "Entra ID sign-in refused by the provider");
        return Ok(refused("entra-refused"));
    }
    // The state proves this browser started this sign-in (no login CSRF).
    if q.state.as_deref() != Some(flow.state.as_str()) {
        return Ok(refused("entra-state"));
    }
    let Some(code) = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 4096)
    else {
        return Ok(refused("entra-refused"));
    };
    let settings = s
        .opts
        .entra
        .get(&tenant_slug)
        .ok_or(UiError::NotFound)?
        .clone();
    let tenant = riskdesk_app::accounts::tenant_by_slug(s.app.db(), &tenant_slug)
        .await?
        .tenant_id();
    let client = Client::new(settings).map_err(|e| UiError::Unavailable(e.to_string()))?;
    let d = client
        .discover()
        .await
        .map_err(|e| UiError::Unavailable(e.to_string()))?;
    let now = s.app.clock.now();
    let identity = match client.redeem(&d, code, &flow, now.as_second()).await {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, tenant = %tenant_slug, "Entra ID sign-in failed");
            return Ok(refused("entra-refused"));
        }
    };
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let outcome = staff::sign_in_vouched(
        &s.app.ctx,
        tenant,
        &Vouched {
            subject: &identity.subject,
            email: identity.email.as_deref(),
            user_agent: ua,
        },
        &s.opts.sessions,
        now,
    )
    .await?;
    match outcome {
        SignIn::Ok { secret, .. } => {
            let mut resp = see_other(safe_next(&next));
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                HeaderValue::from_str(&session::set_cookie(&secret, s.opts.sessions.absolute))
                    .map_err(|e| UiError::Internal(e.to_string()))?,
            );
            h.append(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "__Host-riskdesk_oidc=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
                ),
            );
            Ok(resp)
        }
        _ => Ok(refused("entra-no-account")),
    }
}
