//! riskdesk's HTTP API (axum). Only this crate knows HTTP and JSON: requests are parsed into
//! domain values at the edge (`extract`, `dto`), errors leave as problem+json (`error`), and
//! the work is done by `service` inside a storage unit of work.

pub mod auth_cache;
pub mod batch;
pub mod builtin_rules;
pub mod demo;
pub mod detect;
pub mod dto;
pub mod error;
pub mod extract;
pub mod formats;
pub mod idem;
pub mod metrics;
pub mod mfa;
pub mod monitoring;
pub mod onboarding;
pub mod risk;
pub mod routes;
pub mod service;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use riskdesk_domain::Clock;
use riskdesk_storage::Db;
use tokio::net::TcpListener;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long idempotency keys are kept: a retry after this is a new request.
pub const IDEMPOTENCY_RETENTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(7 * 24);

/// Prunes what only matters for a while (see `riskdesk_storage::maintenance`): velocity rows
/// past the longest window the policy uses, old idempotency keys, expired challenges.
pub async fn prune(
    db: &Db,
    risk: &risk::RiskEngine,
    as_of: jiff::Timestamp,
) -> Result<riskdesk_storage::maintenance::Pruned, ApiError> {
    let longest = risk
        .policy
        .velocity
        .iter()
        .map(|(_, w, _)| *w)
        .max()
        .unwrap_or(0)
        .max(3600);
    Ok(riskdesk_storage::maintenance::prune(
        db,
        as_of,
        jiff::SignedDuration::from_secs(longest as i64),
        IDEMPOTENCY_RETENTION,
    )
    .await?)
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub openapi_json: Arc<String>,
    pub auth_cache: Arc<auth_cache::AuthCache>,
    pub risk: Arc<risk::RiskEngine>,
    pub verifier: Option<Arc<riskdesk_connectors::verification::VerificationClient>>,
    pub sms: Option<Arc<riskdesk_connectors::sms::SmsClient>>,
    /// Detection rules and customers' recent histories (a cache of storage).
    pub detector: Arc<detect::Detector>,
}

/// Server settings that are not the database or the address.
#[derive(Clone)]
pub struct ServerOptions {
    /// How long an authenticated token is remembered (0 = ask the database on every request).
    /// A token revoked from another process stops working within this time.
    pub auth_cache_ttl: std::time::Duration,
    /// Onboarding reference data and policy.
    pub risk: Arc<risk::RiskEngine>,
    /// The identity/credit verification provider, if configured.
    pub verifier: Option<Arc<riskdesk_connectors::verification::VerificationClient>>,
    /// The SMS provider for MFA codes, if configured.
    pub sms: Option<Arc<riskdesk_connectors::sms::SmsClient>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            auth_cache_ttl: std::time::Duration::from_secs(1),
            risk: Arc::new(
                risk::RiskEngine::shipped()
                    .expect("the shipped reference data and default policy load"),
            ),
            verifier: None,
            sms: None,
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "riskdesk", description = "Risk control for cloud resellers: customers, subscriptions, lifecycle actions, audit."),
    modifiers(&BearerAuth),
    components(schemas(error::Problem, error::FieldError)),
    tags(
        (name = "customers", description = "The partner's customers"),
        (name = "subscriptions", description = "Subscriptions and their lifecycle: suspend, disable access, reactivate, cancel"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "onboarding", description = "Sign-up risk assessment, the review queue, credit terms"),
        (name = "monitoring", description = "Usage and activity events, spending budgets, alerts"),
        (name = "operations", description = "Health, metrics, this document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A staff token from `riskdesk token create`"))
                    .build(),
            ),
        );
    }
}

/// The API's routes and their OpenAPI description, from one list so they cannot drift apart.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::health::metrics))
        .routes(routes!(routes::health::openapi))
        .routes(routes!(routes::health::me))
        .routes(routes!(
            routes::customers::create_customer,
            routes::customers::list_customers
        ))
        .routes(routes!(
            routes::customers::get_customer,
            routes::customers::patch_customer
        ))
        .routes(routes!(
            routes::subscriptions::create_subscription,
            routes::subscriptions::list_subscriptions
        ))
        .routes(routes!(routes::subscriptions::get_subscription))
        .routes(routes!(routes::subscriptions::act))
        .routes(routes!(routes::audit::list_audit))
        .routes(routes!(routes::customers::mark_fraud))
        .routes(routes!(routes::signups::assess))
        .routes(routes!(routes::signups::list_signups))
        .routes(routes!(routes::signups::get_signup))
        .routes(routes!(routes::signups::review))
        .routes(routes!(routes::signups::start_verification))
        .routes(routes!(routes::signups::confirm_verification))
        .routes(routes!(routes::customers::grant_admin_access))
        .routes(routes!(routes::monitoring::post_events))
        .routes(routes!(
            routes::monitoring::put_budget,
            routes::monitoring::get_budget
        ))
        .routes(routes!(routes::monitoring::list_alerts))
        .routes(routes!(
            routes::rules::create_rule,
            routes::rules::list_rules
        ))
        .routes(routes!(routes::rules::get_rule, routes::rules::update_rule))
        .routes(routes!(routes::rules::validate_rule))
        .routes(routes!(routes::rules::backtest_rule))
        .routes(routes!(
            routes::monitoring::get_alert,
            routes::monitoring::act_on_alert
        ))
        .split_for_parts()
}

/// The OpenAPI document as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

pub fn router(db: Db, clock: Arc<dyn Clock>, opts: &ServerOptions) -> Router {
    metrics::init();
    let (router, doc) = api();
    let openapi_json = Arc::new(doc.to_pretty_json().unwrap_or_default());
    let auth_cache = Arc::new(auth_cache::AuthCache::new(opts.auth_cache_ttl));
    let state = AppState {
        db,
        clock,
        openapi_json,
        auth_cache,
        risk: opts.risk.clone(),
        verifier: opts.verifier.clone(),
        sms: opts.sms.clone(),
        detector: Arc::new(detect::Detector::default()),
    };
    router
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::RouteNotFound(format!("no route for {}", uri.path()))
        })
        .method_not_allowed_fallback(
            |method: axum::http::Method, uri: axum::http::Uri| async move {
                ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
            },
        )
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// A bound, ready-to-run server. Binding happens in [`Application::build`], so port 0 works
/// and tests learn the port before serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    pub async fn build(
        bind: &str,
        db: Db,
        clock: Arc<dyn Clock>,
        opts: &ServerOptions,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
        Ok(Self {
            listener,
            router: router(db, clock, opts),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        Ok(())
    }
}
