//! The signed-in person: the session cookie read, looked up, and turned into what handlers use
//! (tenant, role, audit identity, language).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use riskdesk_domain::audit::Actor;
use riskdesk_domain::{Locale, Permission, Role, TenantId};
use riskdesk_storage::staff::StaffSession;

use crate::UiState;
use crate::error::UiError;
use crate::i18n::T;

/// The cookie's name: `__Host-` makes the browser refuse it unless it is Secure, has no Domain
/// and has Path=/ (no subdomain can plant or read it).
pub const COOKIE: &str = "__Host-riskdesk_session";

pub fn set_cookie(secret: &str, max_age: std::time::Duration) -> String {
    format!(
        "{COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        max_age.as_secs()
    )
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// The session secret in the request's cookies, if any.
pub fn cookie_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A signed-in person. Every page but the sign-in page takes one; like the API's `Caller`, it
/// is the only way a handler learns the tenant.
#[derive(Clone, Debug)]
pub struct Staff {
    pub s: StaffSession,
    pub role: Role,
    pub locale: Locale,
    /// The page asked for (path and query, with the `/ui` prefix).
    pub here: String,
}

impl Staff {
    pub fn tenant(&self) -> TenantId {
        TenantId(self.s.user.tenant_id)
    }
    pub fn actor(&self) -> Actor {
        riskdesk_app::accounts::staff::actor(&self.s.user)
    }
    /// The audit identity (`user:<email>`), as actions record their proposer.
    pub fn actor_id(&self) -> String {
        format!("user:{}", self.s.user.email)
    }
    pub fn can(&self, p: Permission) -> bool {
        self.role.allows(p)
    }
    pub fn require(&self, p: Permission) -> Result<(), UiError> {
        if self.can(p) {
            Ok(())
        } else {
            Err(UiError::Forbidden(format!(
                "role '{}' may not do this ({})",
                self.role.as_str(),
                p.as_str()
            )))
        }
    }
    pub fn t(&self) -> T {
        T(self.locale)
    }
    /// What the person is called in assignee fields: their email (unique, stable).
    pub fn assignee(&self) -> &str {
        &self.s.user.email
    }
}

impl FromRequestParts<UiState> for Staff {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &UiState) -> Result<Self, UiError> {
        if let Some(s) = parts.extensions.get::<Staff>() {
            return Ok(s.clone());
        }
        // Inside `nest("/ui", …)` the URI has lost its prefix; the original one has it.
        let uri = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map(|o| o.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        let next = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/ui/".into());
        let Some(secret) = cookie_secret(&parts.headers) else {
            return Err(UiError::SignIn { next });
        };
        let next_for_error = next.clone();
        let now = state.app.clock.now();
        let Some(s) = riskdesk_app::accounts::staff::session(
            &state.app.ctx,
            &secret,
            &state.opts.sessions,
            now,
        )
        .await?
        else {
            return Err(UiError::SignIn {
                next: next_for_error,
            });
        };
        let role = s
            .user
            .role()
            .map_err(|e| UiError::Internal(e.to_string()))?;
        let locale = Locale::parse(&s.session.locale).unwrap_or(Locale::En);
        let staff = Staff {
            s,
            role,
            locale,
            here: next,
        };
        parts.extensions.insert(staff.clone());
        Ok(staff)
    }
}

/// The language a browser asks for (`Accept-Language`), matched against the five.
pub fn accept_language(headers: &HeaderMap) -> Locale {
    let Some(v) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Locale::En;
    };
    let mut tags: Vec<(f32, String)> = v
        .split(',')
        .filter_map(|part| {
            let mut it = part.trim().split(';');
            let tag = it.next()?.trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
                .unwrap_or(1.0);
            Some((q, tag))
        })
        .collect();
    tags.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    for (_, tag) in tags {
        if let Ok(l) = Locale::parse(&tag) {
            return l;
        }
        let l = match tag.as_str() {
            t if t.starts_with("zh-hant") || t == "zh-hk" || t == "zh-mo" => Locale::ZhTw,
            t if t.starts_with("zh") => Locale::ZhCn,
            t if t.starts_with("fr") => Locale::FrFr,
            t if t.starts_with("pt") => Locale::PtBr,
            t if t.starts_with("en") => Locale::En,
            _ => continue,
        };
        return l;
    }
    Locale::En
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("a=1; {COOKIE}=s3cr3t; b=2").parse().unwrap(),
        );
        assert_eq!(cookie_secret(&h).as_deref(), Some("s3cr3t"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "riskdesk_session=x".parse().unwrap());
        assert_eq!(cookie_secret(&h), None);
    }

    #[test]
    fn languages_are_matched_by_quality_then_family() {
        let cases = [
            ("zh-CN,zh;q=0.9,en;q=0.8", Locale::ZhCn),
            ("de-DE,pt;q=0.5", Locale::PtBr),
            ("zh-Hant-TW", Locale::ZhTw),
            ("en;q=0.2, fr-CA;q=0.9", Locale::FrFr),
            ("de", Locale::En),
        ];
        for (h, want) in cases {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_LANGUAGE, h.parse().unwrap());
            assert_eq!(accept_language(&m), want, "{h}");
        }
    }

    #[test]
    fn the_cookie_has_the_host_prefix_attributes() {
        let c = set_cookie("x", std::time::Duration::from_secs(60));
        for part in ["__Host-", "Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!c.contains("Domain"));
    }
}
