//! riskdesk's HTTP API (axum), a thin adapter over `riskdesk-app`. Only this crate knows HTTP:
//! a handler parses the request into domain values (`extract`, `dto`), checks the caller's
//! permission, begins a unit of work and claims the idempotency key (`idem`), calls one
//! application function, and renders the result; errors leave as problem+json (`error`).

pub mod auth_cache;
pub mod constraints;
pub mod dto;
pub mod error;
pub mod extract;
pub mod idem;
pub mod metrics;
pub mod routes;
pub mod strict;

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

pub use riskdesk_app::{App, AppOptions, IDEMPOTENCY_RETENTION, SystemClock, prune};

/// What every handler gets: the application, and what only HTTP needs.
#[derive(Clone)]
pub struct AppState {
    pub app: Arc<App>,
    pub openapi_json: Arc<String>,
    pub auth_cache: Arc<auth_cache::AuthCache>,
    /// Verifies Partner Center webhook callbacks (None: `POST /v1/provider/webhooks` is off).
    pub pc_webhooks: Option<Arc<riskdesk_connectors::pc_webhook::WebhookVerifier>>,
}

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

impl AppState {
    pub fn db(&self) -> &Db {
        self.app.db()
    }
}

/// Server settings that are not the database or the address.
#[derive(Clone)]
pub struct ServerOptions {
    /// How long an authenticated token is remembered (0 = ask the database on every request).
    /// A token revoked from another process stops working within this time.
    pub auth_cache_ttl: std::time::Duration,
    /// How slow clients are bounded (`[http]`).
    pub limits: HttpLimits,
    /// Onboarding reference data and policy.
    pub risk: Arc<riskdesk_app::onboarding::risk::RiskEngine>,
    /// The identity/credit verification provider, if configured.
    pub verifier: Option<Arc<riskdesk_connectors::verification::VerificationClient>>,
    /// The SMS provider for MFA codes, if configured.
    pub sms: Option<Arc<riskdesk_connectors::sms::SmsClient>>,
    /// The dunning ladder for tenants that have not set their own (`PUT /v1/dunning/policy`).
    pub dunning_policy: Arc<riskdesk_domain::billing::dunning::Policy>,
    /// Where customer emails go out (none: emails wait in the outbox, visible as pending).
    pub smtp: Option<riskdesk_connectors::email::SmtpConfig>,
    /// How often the outbox worker looks for messages to deliver.
    pub outbox_interval: std::time::Duration,
    /// Run the dunning ladder for today this often (none: only on request / from the CLI).
    pub dunning_every: Option<std::time::Duration>,
    /// How often completed hours of the spend series touched by ingest are scored for anomalies.
    pub anomaly_every: std::time::Duration,
    /// Score at or above which an hour of spend raises an `anomaly.spend` alert.
    pub anomaly_threshold: f64,
    /// Cases, SLAs, staff notifications (`[response]`).
    pub response: riskdesk_app::kernel::ResponseSettings,
    /// `[partner_center.<instance>]`: the provider's API per cloud instance.
    pub partner_center: std::collections::HashMap<
        String,
        riskdesk_connectors::partner_center::PartnerCenterSettings,
    >,
    /// `[partner_center_webhooks]`: how inbound Partner Center callbacks are verified
    /// (None: the endpoint answers 404).
    pub pc_webhooks: Option<riskdesk_connectors::pc_webhook::WebhookVerifySettings>,
    /// How often the provider worker looks for due calls, and how long a call it started is
    /// left alone before being tried again (longer than a call with its retries can take).
    pub provider_interval: std::time::Duration,
    pub provider_lease: std::time::Duration,
    /// How often cases are checked against their deadlines.
    pub sla_every: std::time::Duration,
    /// Pull fraud events and audit records from Partner Center this often (None: never).
    pub provider_poll_every: Option<std::time::Duration>,
    /// The background roles this process runs beside the API (`riskdesk serve --roles`).
    pub roles: riskdesk_app::workers::Roles,
    /// How long a scheduler job's lease lasts from its last renewal.
    pub lease_ttl: std::time::Duration,
    /// `[scale]`: events through NATS JetStream (None: ingested in the request).
    pub scale: Option<Arc<riskdesk_app::monitoring::stream::Scale>>,
    /// The audit signing key (seed, hex) and how often the scheduler checkpoints the chains.
    pub audit_checkpoints: Option<(String, std::time::Duration)>,
    /// Seals the Partner Center consents at rest (`provider_token_keys`).
    pub provider_token_keys: Option<Arc<riskdesk_app::kernel::secrets::TokenCipher>>,
    /// Tenants whose admins may connect Partner Center (empty: any tenant's admin).
    pub provider_operators: Vec<uuid::Uuid>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            auth_cache_ttl: std::time::Duration::from_secs(1),
            limits: HttpLimits::default(),
            risk: Arc::new(
                riskdesk_app::onboarding::risk::RiskEngine::shipped()
                    .expect("the shipped reference data and default policy load"),
            ),
            verifier: None,
            sms: None,
            dunning_policy: Arc::new(riskdesk_domain::billing::dunning::Policy::default()),
            smtp: None,
            outbox_interval: std::time::Duration::from_secs(2),
            dunning_every: None,
            anomaly_every: std::time::Duration::from_secs(60),
            anomaly_threshold: riskdesk_domain::anomaly::detector::ALARM_THRESHOLD,
            response: Default::default(),
            partner_center: Default::default(),
            pc_webhooks: None,
            provider_interval: std::time::Duration::from_secs(2),
            provider_lease: std::time::Duration::from_secs(120),
            sla_every: std::time::Duration::from_secs(60),
            provider_poll_every: None,
            roles: riskdesk_app::workers::Roles::ALL,
            lease_ttl: std::time::Duration::from_secs(15),
            scale: None,
            audit_checkpoints: None,
            provider_token_keys: None,
            provider_operators: Vec::new(),
        }
    }
}

/// Bounds on what one client can hold: a connection must send a request's headers within
/// `header_read_timeout` (also the longest a kept-alive connection may sit idle between
/// requests) and its body within `body_read_timeout`; beyond `max_connections` open
/// connections, new ones are closed at once, so the server stays responsive to the others.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    pub header_read_timeout: std::time::Duration,
    pub body_read_timeout: std::time::Duration,
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: std::time::Duration::from_secs(10),
            body_read_timeout: std::time::Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

impl ServerOptions {
    /// The application's half of these settings.
    pub fn app_options(&self) -> AppOptions {
        AppOptions {
            risk: self.risk.clone(),
            verifier: self.verifier.clone(),
            sms: self.sms.clone(),
            dunning_policy: self.dunning_policy.clone(),
            smtp: self.smtp.clone(),
            outbox_interval: self.outbox_interval,
            dunning_every: self.dunning_every,
            anomaly_every: self.anomaly_every,
            anomaly_threshold: self.anomaly_threshold,
            response: self.response.clone(),
            partner_center: self.partner_center.clone(),
            provider_interval: self.provider_interval,
            provider_lease: self.provider_lease,
            sla_every: self.sla_every,
            provider_poll_every: self.provider_poll_every,
            lease_ttl: self.lease_ttl,
            scale: self.scale.clone(),
            audit_checkpoints: self.audit_checkpoints.clone(),
            provider_token_keys: self.provider_token_keys.clone(),
            provider_operators: self.provider_operators.clone(),
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
        (name = "cases", description = "Cases with SLAs, actions and approvals, the provider (Partner Center): links, webhooks, notices, service requests"),
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
    let router_doc = OpenApiRouter::with_openapi(ApiDoc::openapi())
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
        .routes(routes!(routes::audit::list_checkpoints))
        .routes(routes!(routes::customers::mark_fraud))
        .routes(routes!(routes::signups::assess))
        .routes(routes!(routes::signups::list_signups))
        .routes(routes!(routes::signups::get_signup))
        .routes(routes!(routes::signups::review))
        .routes(routes!(routes::signups::start_verification))
        .routes(routes!(routes::signups::confirm_verification))
        .routes(routes!(routes::customers::grant_admin_access))
        .routes(routes!(routes::monitoring::post_events))
        .routes(routes!(routes::monitoring::get_event_batch))
        .routes(routes!(
            routes::monitoring::put_budget,
            routes::monitoring::get_budget
        ))
        .routes(routes!(routes::monitoring::list_alerts))
        .routes(routes!(routes::monitoring::spend))
        .routes(routes!(
            routes::rules::create_rule,
            routes::rules::list_rules
        ))
        .routes(routes!(routes::rules::get_rule, routes::rules::update_rule))
        .routes(routes!(routes::rules::validate_rule))
        .routes(routes!(routes::rules::backtest_rule))
        .routes(routes!(
            routes::billing::create_invoice,
            routes::billing::list_invoices
        ))
        .routes(routes!(routes::billing::get_invoice))
        .routes(routes!(routes::billing::credit_note))
        .routes(routes!(routes::billing::write_off))
        .routes(routes!(routes::billing::dispute))
        .routes(routes!(routes::billing::create_payment))
        .routes(routes!(routes::billing::chargeback))
        .routes(routes!(routes::billing::get_balance))
        .routes(routes!(routes::billing::top_up))
        .routes(routes!(routes::billing::refund))
        .routes(routes!(routes::billing::get_exposure))
        .routes(routes!(routes::billing::exposure_report))
        .routes(routes!(routes::billing::get_aging))
        .routes(routes!(
            routes::collections::add_instrument,
            routes::collections::list_instruments
        ))
        .routes(routes!(
            routes::collections::get_policy,
            routes::collections::put_policy
        ))
        .routes(routes!(routes::collections::run))
        .routes(routes!(
            routes::collections::get_customer_dunning,
            routes::collections::put_customer_dunning
        ))
        .routes(routes!(routes::collections::collections_policy))
        .routes(routes!(routes::collections::put_credit_terms))
        .routes(routes!(
            routes::collections::create_endpoint,
            routes::collections::list_endpoints
        ))
        .routes(routes!(routes::collections::list_outbox))
        .routes(routes!(routes::collections::resend))
        .routes(routes!(
            routes::monitoring::get_alert,
            routes::monitoring::act_on_alert
        ))
        .routes(routes!(routes::cases::list_cases))
        .routes(routes!(routes::cases::take_next))
        .routes(routes!(routes::cases::bulk))
        .routes(routes!(routes::cases::preview_action))
        .routes(routes!(routes::cases::sla_check))
        .routes(routes!(routes::cases::get_case))
        .routes(routes!(routes::cases::assign))
        .routes(routes!(routes::cases::comment))
        .routes(routes!(routes::cases::set_status))
        .routes(routes!(routes::cases::act))
        .routes(routes!(routes::cases::list_actions))
        .routes(routes!(routes::cases::get_action))
        .routes(routes!(routes::cases::approve))
        .routes(routes!(routes::cases::reject))
        .routes(routes!(routes::cases::retry))
        .routes(routes!(routes::provider::link_customer))
        .routes(routes!(routes::provider::link_subscription))
        .routes(routes!(routes::provider::webhook))
        .routes(routes!(routes::provider::list_connections))
        .routes(routes!(routes::provider::start_consent))
        .routes(routes!(routes::provider::disconnect))
        .routes(routes!(routes::provider::consent_callback))
        .routes(routes!(
            routes::provider::create_notice,
            routes::provider::list_notices
        ))
        .routes(routes!(routes::provider::get_notice))
        .routes(routes!(routes::provider::notice_status))
        .routes(routes!(routes::provider::prepare_service_request))
        .routes(routes!(
            routes::provider::get_service_request,
            routes::provider::record_ticket
        ))
        .routes(routes!(routes::provider::sync_service_request))
        .routes(routes!(routes::provider::add_note))
        .routes(routes!(routes::blocklist::add, routes::blocklist::list))
        .routes(routes!(routes::blocklist::remove))
        .split_for_parts();
    let (router, mut doc) = (router_doc.0, router_doc.1);
    document_error_answers(&mut doc);
    (router, doc)
}

/// Every operation documents the problem answers the edge can give it, whatever the handler
/// does: 401/403 where a token is needed, 400/404 for a path id, 400/413/415/422 for a body,
/// 422 for query parameters and the `Idempotency-Key` header, 500 everywhere. (An answer
/// missing from the document is a client's surprise; a generated client must expect each.)
fn document_error_answers(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{Operation, ParameterIn};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    error::PROBLEM_JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    let add = |op: &mut Operation| {
        let mut wanted: Vec<(&str, &str)> = vec![("500", "Internal error (logged)")];
        let params = op.parameters.iter().flatten().filter_map(|p| match p {
            RefOr::T(p) => Some(p),
            RefOr::Ref(_) => None,
        });
        let (mut path, mut query, mut header) = (false, false, false);
        for p in params {
            match p.parameter_in {
                ParameterIn::Path => path = true,
                ParameterIn::Query | ParameterIn::QueryString => query = true,
                ParameterIn::Header => header = true,
                ParameterIn::Cookie => {}
            }
        }
        if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
            wanted.push(("401", "Authentication required"));
            wanted.push(("403", "Not allowed for this role"));
        }
        if path {
            wanted.push(("400", "Malformed request"));
            wanted.push(("404", "Not found"));
        }
        if op.request_body.is_some() {
            wanted.push(("400", "Malformed request"));
            wanted.push(("413", "Request body too large"));
            wanted.push(("415", "Unsupported media type"));
            wanted.push(("422", "Invalid request"));
        }
        if query || header {
            wanted.push(("422", "Invalid request"));
        }
        for (code, description) in wanted {
            op.responses
                .responses
                .entry(code.to_owned())
                .or_insert_with(|| problem(description));
        }
    };
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            add(op);
        }
    }
}

/// The document as served: what the edge enforces written into its schemas
/// ([`constraints`]; in JSON, as utoipa's model has no room for some of it).
pub fn document_json(doc: &utoipa::openapi::OpenApi) -> String {
    let mut json = serde_json::to_value(doc).unwrap_or_default();
    constraints::apply(&mut json);
    serde_json::to_string_pretty(&json).unwrap_or_default()
}

/// The OpenAPI document as served at `/openapi.json`, as text.
pub fn openapi_json() -> String {
    document_json(&openapi())
}

/// The OpenAPI document as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The router over a new application on `db` (no background workers: see [`Application`]).
pub fn router(db: Db, clock: Arc<dyn Clock>, opts: &ServerOptions) -> anyhow::Result<Router> {
    let app = Arc::new(App::new(db, clock, &opts.app_options())?);
    router_for(app, opts)
}

/// The router over `app`.
pub fn router_for(app: Arc<App>, opts: &ServerOptions) -> anyhow::Result<Router> {
    let pc_webhooks = match &opts.pc_webhooks {
        Some(s) => Some(Arc::new(
            riskdesk_connectors::pc_webhook::WebhookVerifier::new(
                s,
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?,
            )
            .map_err(|e| anyhow::anyhow!("[partner_center_webhooks]: {e}"))?,
        )),
        None => None,
    };
    metrics::init();
    let (router, doc) = api();
    let openapi_json = Arc::new(document_json(&doc));
    let query_routes = Arc::new(strict::QueryRoutes::from_doc(&doc));
    let permission_routes =
        strict::PermissionRoutes::from_doc(&doc).map_err(|e| anyhow::anyhow!("OpenAPI: {e}"))?;
    let auth_cache = Arc::new(auth_cache::AuthCache::new(opts.auth_cache_ttl));
    let state = AppState {
        app,
        openapi_json,
        auth_cache,
        pc_webhooks,
    };
    let authorize = Arc::new(strict::Authorize {
        routes: permission_routes,
        state: state.clone(),
    });
    // Layers run outermost (last added) first: the body's timeout and limit, metrics, then
    // authorization (401/403 before the query string or the body is judged), then the
    // undeclared-query check, then the handler's extractors. All run after routing (they are
    // on each route), so `MatchedPath` is known.
    Ok(router
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::RouteNotFound(format!("no route for {}", uri.path()))
        })
        .method_not_allowed_fallback(
            |method: axum::http::Method, uri: axum::http::Uri| async move {
                ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
            },
        )
        .layer(axum::middleware::from_fn_with_state(
            query_routes,
            strict::refuse_undeclared_query,
        ))
        .layer(axum::middleware::from_fn_with_state(
            authorize,
            strict::authorize_first,
        ))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            opts.limits.body_read_timeout,
        ))
        .with_state(state))
}

/// A bound, ready-to-run server. Binding happens in [`Application::build`], so port 0 works
/// and tests learn the port before serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    /// Background workers (outbox delivery, the dunning schedule) stop when this is dropped.
    _stop: tokio::sync::watch::Sender<bool>,
    leases: Option<Arc<riskdesk_app::kernel::lease::Leases>>,
}

impl Application {
    pub async fn build(
        bind: &str,
        db: Db,
        clock: Arc<dyn Clock>,
        opts: &ServerOptions,
    ) -> anyhow::Result<Self> {
        Self::build_with(bind, db, clock, opts, |_| Ok(Router::new())).await
    }

    /// As [`build`](Self::build), with more routes over the same application merged beside
    /// the API (the web dashboard: `riskdesk_ui::router`). They must not overlap `/v1`.
    pub async fn build_with(
        bind: &str,
        db: Db,
        clock: Arc<dyn Clock>,
        opts: &ServerOptions,
        extra: impl FnOnce(Arc<App>) -> anyhow::Result<Router>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let app = Arc::new(App::new(db, clock, &opts.app_options())?);
        let leases = riskdesk_app::workers::spawn_all(&app, opts.roles, stopped)?;
        let more = extra(app.clone())?;
        Ok(Self {
            listener,
            router: router_for(app, opts)?.merge(more),
            limits: opts.limits.clone(),
            _stop: stop,
            leases,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use tower::ServiceExt;

        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.limits.header_read_timeout);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let permits = Arc::new(tokio::sync::Semaphore::new(self.limits.max_connections));
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: log, breathe, go on.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                // At the connection limit: refuse at once rather than hold it.
                drop(stream);
                continue;
            };
            let router = self.router.clone();
            let service = hyper::service::service_fn(
                move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    router.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                let _ = conn.await;
                drop(permit);
            });
        }
        drop(self.listener);
        graceful.shutdown().await;
        // The next process need not wait for this one's leases to run out.
        if let Some(l) = &self.leases {
            l.release_all().await;
        }
        Ok(())
    }
}
