//! riskdesk's web dashboard: server-rendered HTML (askama templates in `templates/`) with htmx
//! for partial updates, served under `/ui` by the same binary as the API. Like riskdesk-http,
//! a thin adapter over riskdesk-app: a handler reads the request, checks the person's
//! permission, calls storage reads or ONE application function, fills a typed view, renders.
//! No business rule lives here: what a button would do is asked of the same domain functions
//! that do it.
//!
//! People sign in as themselves (`staff_users`, argon2id, optional TOTP); the session is a
//! `__Host-` cookie holding 32 random bytes whose SHA-256 alone is stored. `/v1` never reads the
//! cookie. Every state-changing request passes tower-http's CSRF check (`Sec-Fetch-Site` /
//! `Origin`), and carries a one-time key in a hidden field, claimed in the unit of work, so a
//! double submit applies once.

pub mod assets;
pub mod error;
pub mod i18n;
pub mod pages;
pub mod session;
pub mod svg;
pub mod view;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use riskdesk_app::App;
use riskdesk_app::accounts::staff::SessionPolicy;

/// Largest form accepted, in bytes.
pub const FORM_LIMIT: usize = 64 * 1024;

/// `[dashboard]` settings.
#[derive(Clone, Debug, Default)]
pub struct UiOptions {
    pub sessions: SessionPolicy,
    /// Sign-in with Microsoft Entra ID per tenant (slug → the app registration).
    pub entra: std::collections::BTreeMap<String, riskdesk_connectors::oidc::OidcSettings>,
}

/// Violations of the Content-Security-Policy and script errors the pages reported
/// (`POST /ui/csp-report`): logged, and counted for the browser tests, which assert zero.
#[derive(Default, Debug)]
pub struct Reports {
    count: AtomicU64,
    last: std::sync::Mutex<Vec<String>>,
}

impl Reports {
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
    /// The last reports received (at most 20), for a failing test's message.
    pub fn last(&self) -> Vec<String> {
        self.last.lock().map(|v| v.clone()).unwrap_or_default()
    }
    fn add(&self, body: String) {
        self.count.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut v) = self.last.lock() {
            if v.len() >= 20 {
                v.remove(0);
            }
            v.push(body);
        }
    }
}

#[derive(Clone)]
pub struct UiState {
    pub app: Arc<App>,
    pub opts: Arc<UiOptions>,
    pub assets: Arc<assets::Assets>,
    pub reports: Arc<Reports>,
}

impl std::ops::Deref for UiState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; \
base-uri 'none'; report-uri /ui/csp-report";

/// The headers every dashboard answer carries: a strict CSP (no inline script or style), no
/// framing, no sniffing, no referrer off the site, and HTML never cached (it holds customer data).
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    resp
}

/// The dashboard's routes, mounted at `/ui` (and `/` sends a browser there), with its own
/// 404 page. `reports` receives what pages report (see [`Reports`]).
pub fn router(app: Arc<App>, opts: UiOptions, reports: Arc<Reports>) -> anyhow::Result<Router> {
    let state = UiState {
        app,
        opts: Arc::new(opts),
        assets: Arc::new(assets::Assets::load()?),
        reports,
    };
    use pages::*;
    let csrf = tower_http::csrf::CsrfLayer::new()
        .with_rejection_response(|_| error::UiError::CrossSite.into_response());
    let ui = Router::new()
        .route("/", get(home::home))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/login/entra", get(entra::start))
        .route("/login/entra/callback", get(entra::callback))
        .route("/logout", post(auth::logout))
        .route("/logout-everywhere", post(auth::logout_everywhere))
        .route("/me", get(auth::me_page))
        .route("/me/locale", post(auth::set_locale))
        .route("/cases", get(cases::queue))
        .route("/cases/take-next", post(cases::take_next))
        .route("/cases/bulk", post(cases::bulk))
        .route("/cases/{id}", get(cases::workspace))
        .route("/cases/{id}/assign", post(cases::assign))
        .route("/cases/{id}/status", post(cases::set_status))
        .route("/cases/{id}/comment", post(cases::comment))
        .route("/cases/{id}/actions", post(cases::act))
        .route("/actions/{id}", get(approvals::action_status))
        .route("/actions/{id}/decide", post(approvals::decide))
        .route("/actions/{id}/retry", post(approvals::retry))
        .route("/approvals", get(approvals::list))
        .route("/signups", get(signups::queue))
        .route("/signups/{id}", get(signups::detail))
        .route("/signups/{id}/review", post(signups::review))
        .route("/customers", get(customers::list))
        .route("/customers/{id}", get(customers::page))
        .route(
            "/subscriptions/{id}/actions",
            post(customers::act_on_subscription),
        )
        .route("/invoices", get(invoices::list))
        .route("/invoices/{id}", get(invoices::page))
        .route("/invoices/{id}/payment", post(invoices::payment))
        .route("/invoices/{id}/dispute", post(invoices::dispute))
        .route("/reports/aging", get(aging::page))
        .route("/reports/aging.csv", get(aging::csv))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{id}", post(admin::change_user))
        .route("/admin/provider", get(provider::page))
        .route(
            "/admin/provider/{instance}/connect",
            post(provider::connect),
        )
        .route(
            "/admin/provider/{instance}/disconnect",
            post(provider::disconnect),
        )
        .route("/assets/{name}", get(assets::serve))
        .route("/csp-report", post(csp_report))
        .fallback(|| async { error::UiError::NotFound })
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(csrf)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state.clone());
    // `nest` answers `/ui` itself, not `/ui/`: the home page is reachable at both.
    let home = Router::new()
        .route("/ui/", get(home::home))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state);
    Ok(Router::new()
        .nest("/ui", ui)
        .merge(home)
        .route("/", get(|| async { Redirect::to("/ui/") })))
}

async fn csp_report(
    axum::extract::State(s): axum::extract::State<UiState>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let text: String = String::from_utf8_lossy(&body).chars().take(2000).collect();
    tracing::warn!(report = %text, "dashboard: content-security-policy or script report");
    s.reports.add(text);
    axum::http::StatusCode::NO_CONTENT
}
