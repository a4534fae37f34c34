//! Sign in, sign out, sign out everywhere, the person's own page and language.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use riskdesk_app::accounts::staff::{self, Attempt, SignIn};
use riskdesk_domain::Locale;
use riskdesk_storage::staff::SessionRow;
use serde::Deserialize;

use super::{UiForm, render, see_other};
use crate::UiState;
use crate::error::{UiError, safe_next};
use crate::i18n::T;
use crate::session::{self, Staff};
use crate::view::Layout;

pub const LANGS: [(&str, &str); 5] = [
    ("en", "English"),
    ("zh-CN", "简体中文"),
    ("zh-TW", "繁體中文"),
    ("fr-FR", "Français"),
    ("pt-BR", "Português (Brasil)"),
];

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    t: T,
    css: String,
    next: String,
    email: String,
    message: Option<String>,
    need_code: bool,
    langs: [(&'static str, &'static str); 5],
    /// Tenants that sign in with Entra ID: (slug, link).
    entra: Vec<(String, String)>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    lang: Option<String>,
    /// Why an Entra ID sign-in came back refused (a message id).
    error: Option<String>,
}

fn entra_links(s: &UiState, next: &str) -> Vec<(String, String)> {
    s.opts
        .entra
        .keys()
        .map(|slug| {
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("tenant", slug)
                .append_pair("next", next)
                .finish();
            (slug.clone(), format!("/ui/login/entra?{q}"))
        })
        .collect()
}

fn login_locale(headers: &HeaderMap, lang: Option<&str>) -> Locale {
    lang.and_then(|l| Locale::parse(l).ok())
        .unwrap_or_else(|| session::accept_language(headers))
}

pub async fn login_page(
    State(s): State<UiState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, UiError> {
    let t = T(login_locale(&headers, q.lang.as_deref()));
    let next = safe_next(q.next.as_deref().unwrap_or("/ui/")).to_owned();
    let message = match q.error.as_deref() {
        Some(e @ ("entra-no-flow" | "entra-refused" | "entra-state" | "entra-no-account")) => {
            Some(t.t(&format!("sign-in-{e}")))
        }
        _ => None,
    };
    render(&LoginPage {
        t,
        css: s.assets.url("app.css").to_owned(),
        entra: entra_links(&s, &next),
        next,
        email: String::new(),
        message,
        need_code: false,
        langs: LANGS,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    code: Option<String>,
    next: Option<String>,
}

pub async fn login(
    State(s): State<UiState>,
    headers: HeaderMap,
    UiForm(f): UiForm<LoginForm>,
) -> Result<Response, UiError> {
    let locale = login_locale(&headers, None);
    let t = T(locale);
    let next = safe_next(f.next.as_deref().unwrap_or("/ui/")).to_owned();
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let now = s.app.clock.now();
    let outcome = staff::sign_in(
        &s.app.ctx,
        &Attempt {
            email: &f.email,
            password: &f.password,
            code: f.code.as_deref(),
            locale: None,
            user_agent: ua,
            ip: None,
        },
        &s.opts.sessions,
        now,
    )
    .await?;
    let page = |message: Option<String>, need_code: bool| LoginPage {
        t,
        css: s.assets.url("app.css").to_owned(),
        entra: entra_links(&s, &next),
        next: next.clone(),
        email: f.email.trim().to_owned(),
        message,
        need_code,
        langs: LANGS,
    };
    match outcome {
        SignIn::Ok { secret, .. } => {
            let mut resp = see_other(&next);
            resp.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&session::set_cookie(&secret, s.opts.sessions.absolute))
                    .map_err(|e| UiError::Internal(e.to_string()))?,
            );
            Ok(resp)
        }
        SignIn::NeedsCode => {
            let msg = f
                .code
                .as_deref()
                .filter(|c| !c.trim().is_empty())
                .map(|_| t.t("sign-in-wrong-code"));
            render(&page(msg, true))
        }
        SignIn::Refused => {
            let mut r = render(&page(Some(t.t("sign-in-refused")), false))?;
            *r.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
            Ok(r)
        }
        SignIn::Locked(until) => {
            let mut r = render(&page(
                Some(t.a("sign-in-locked", "until", t.datetime(until))),
                false,
            ))?;
            *r.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("900"));
            Ok(r)
        }
    }
}

fn signed_out() -> Response {
    let mut resp = see_other("/ui/login");
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

pub async fn logout(
    State(s): State<UiState>,
    staff: Result<Staff, UiError>,
) -> Result<Response, UiError> {
    let Ok(staff) = staff else {
        return Ok(signed_out());
    };
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    staff::sign_out(&mut tx, &staff.s, now).await?;
    tx.commit().await?;
    Ok(signed_out())
}

pub async fn logout_everywhere(
    State(s): State<UiState>,
    staff: Staff,
) -> Result<Response, UiError> {
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    staff::sign_out_everywhere(&mut tx, &staff.s, now).await?;
    tx.commit().await?;
    Ok(signed_out())
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage {
    l: Layout,
    totp: bool,
    sessions: Vec<SessionRow>,
    langs: [(&'static str, &'static str); 5],
}

pub async fn me_page(State(s): State<UiState>, staff: Staff) -> Result<Response, UiError> {
    let sessions =
        riskdesk_storage::staff::live_sessions(s.app.db(), staff.s.user.id, s.app.clock.now())
            .await?;
    render(&MePage {
        l: Layout::new(&s, &staff, "me"),
        totp: staff.s.user.totp_enabled,
        sessions,
        langs: LANGS,
    })
}

#[derive(Deserialize)]
pub struct LocaleForm {
    locale: String,
    #[allow(dead_code)]
    key: Option<String>,
}

pub async fn set_locale(
    State(s): State<UiState>,
    staff: Staff,
    UiForm(f): UiForm<LocaleForm>,
) -> Result<Response, UiError> {
    let locale = Locale::parse(&f.locale).map_err(|e| UiError::Invalid(e.0))?;
    let mut tx = s.app.begin().await?;
    staff::set_locale(&mut tx, &staff.s, locale).await?;
    tx.commit().await?;
    Ok(see_other("/ui/me").into_response())
}
