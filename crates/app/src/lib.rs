//! riskdesk's application layer: every use case of the product as a unit of work over the
//! pure domain, storage and the connectors. It knows no HTTP: adapters (`riskdesk-http`, the
//! CLI, the workers) parse their input, call one function here inside a [`Uow`] they began,
//! and render its result.
//!
//! Modules are layered, bottom to top; a module may use those below it, never those above or
//! beside it (`tests/layers.rs` checks it):
//!
//! | layer | modules |
//! |---|---|
//! | 0 | [`kernel`]: unit of work, errors, events and ports, settings, outbox, notices |
//! | 1 | [`accounts`]: tenants, tokens, customers, the subscription lifecycle |
//! | 2 | [`alerts`]: raising and folding alerts |
//! | 3 | [`onboarding`], [`monitoring`], [`billing`]: side by side, never naming each other |
//! | 4 | [`response`]: cases, actions, approvals, SLAs, staff notices |
//! | 5 | [`provider`]: Partner Center calls, inbound events and notices, the poll |
//! | top | [`wiring`] (who reacts to what), [`workers`], [`demo`], this file |
//!
//! A capability that must make another react emits a [`kernel::Event`] or asks through
//! [`kernel::Approvals`]; [`wiring`] is the one place naming both ends.

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod billing;
pub mod demo;
pub mod kernel;
pub mod monitoring;
pub mod onboarding;
pub mod provider;
pub mod response;
pub mod wiring;
pub mod workers;

use std::sync::Arc;

use riskdesk_domain::Clock;
use riskdesk_storage::{Db, StorageError};

pub use kernel::{AppError, Ctx, Event, Uow};

use crate::monitoring::detect::Detector;
use crate::onboarding::risk::RiskEngine;
use crate::onboarding::velocity::VelocityBook;
use crate::provider::ProviderHub;

/// How long idempotency keys are kept: a retry after this is a new request.
pub const IDEMPOTENCY_RETENTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(7 * 24);

/// Prunes what only matters for a while (see `riskdesk_storage::maintenance`): velocity rows
/// past the longest window the policy uses, old idempotency keys, expired challenges.
pub async fn prune(
    db: &Db,
    risk: &RiskEngine,
    as_of: jiff::Timestamp,
) -> Result<riskdesk_storage::maintenance::Pruned, AppError> {
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

/// The application's settings (everything but the database and how adapters listen).
#[derive(Clone)]
pub struct AppOptions {
    /// Onboarding reference data and policy.
    pub risk: Arc<RiskEngine>,
    /// The identity/credit verification provider, if configured.
    pub verifier: Option<Arc<riskdesk_connectors::verification::VerificationClient>>,
    /// The SMS provider for MFA codes, if configured.
    pub sms: Option<Arc<riskdesk_connectors::sms::SmsClient>>,
    /// The dunning ladder for tenants that have not set their own.
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
    pub response: kernel::ResponseSettings,
    /// `[partner_center.<instance>]`: the provider's API per cloud instance.
    pub partner_center: std::collections::HashMap<
        String,
        riskdesk_connectors::partner_center::PartnerCenterSettings,
    >,
    /// How often the provider worker looks for due calls, and how long a call it started is
    /// left alone before being tried again (longer than a call with its retries can take).
    pub provider_interval: std::time::Duration,
    pub provider_lease: std::time::Duration,
    /// How often cases are checked against their deadlines.
    pub sla_every: std::time::Duration,
    /// Pull fraud events and audit records from Partner Center this often (None: never).
    pub provider_poll_every: Option<std::time::Duration>,
    /// How long a scheduler job's lease lasts from its last renewal (renewed every third of
    /// it): how soon another process takes a job over from one that died.
    pub lease_ttl: std::time::Duration,
    /// `[scale]`: events go through NATS JetStream, partitioned by customer (None: ingested
    /// in the request, in process).
    pub scale: Option<Arc<monitoring::stream::Scale>>,
    /// The audit signing key (a seed, hex) and how often the scheduler's `audit-checkpoint`
    /// job signs the chains' heads (None: never).
    pub audit_checkpoints: Option<(String, std::time::Duration)>,
    /// The keys the Partner Center consents (refresh tokens) are sealed with at rest (None:
    /// instances cannot be connected for app + user calls).
    pub provider_token_keys: Option<Arc<kernel::secrets::TokenCipher>>,
    /// The tenants whose admins may connect and disconnect the installation's Partner Center
    /// instances through the API (empty: any tenant's admin, for one-partner installations).
    pub provider_operators: Vec<uuid::Uuid>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            risk: Arc::new(
                RiskEngine::shipped().expect("the shipped reference data and default policy load"),
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
            provider_interval: std::time::Duration::from_secs(2),
            provider_lease: std::time::Duration::from_secs(120),
            sla_every: std::time::Duration::from_secs(60),
            provider_poll_every: None,
            lease_ttl: std::time::Duration::from_secs(15),
            scale: None,
            audit_checkpoints: None,
            provider_token_keys: None,
            provider_operators: Vec::new(),
        }
    }
}

/// One running application: its context and the state its capabilities keep between units of
/// work. Adapters hold it in an `Arc` and call capabilities with it.
pub struct App {
    pub ctx: Arc<Ctx>,
    pub clock: Arc<dyn Clock>,
    pub risk: Arc<RiskEngine>,
    pub verifier: Option<Arc<riskdesk_connectors::verification::VerificationClient>>,
    pub sms: Option<Arc<riskdesk_connectors::sms::SmsClient>>,
    /// Detection rules and customers' recent histories (a cache of storage).
    pub detector: Arc<Detector>,
    /// The dunning ladder for tenants that have not set their own.
    pub dunning_policy: Arc<riskdesk_domain::billing::dunning::Policy>,
    /// Partner Center clients per cloud instance (empty: actions act locally only).
    pub provider: Arc<ProviderHub>,
    /// Sign-up velocity counted in this process (SQLite, which one process owns); `None`:
    /// counted in storage (PostgreSQL, shared by several processes).
    pub velocity: Option<Arc<VelocityBook>>,
    pub options: AppOptions,
}

impl App {
    pub fn new(db: Db, clock: Arc<dyn Clock>, opts: &AppOptions) -> anyhow::Result<Self> {
        let provider =
            Arc::new(ProviderHub::new(&opts.partner_center).map_err(|e| anyhow::anyhow!(e))?);
        let mut detector = Detector::default();
        detector.spend.threshold = opts.anomaly_threshold;
        let detector = Arc::new(detector);
        let velocity = (db.backend() == riskdesk_storage::Backend::Sqlite).then(|| {
            let longest = opts
                .risk
                .policy
                .velocity
                .iter()
                .map(|(_, w, _)| *w)
                .max()
                .unwrap_or(0);
            Arc::new(VelocityBook::new(clock.now(), longest))
        });
        let wiring = Arc::new(wiring::Wiring {
            detector: detector.clone(),
        });
        let ctx = Arc::new(Ctx::new(db, opts.response.clone(), wiring.clone(), wiring));
        // App + user calls redeem the consent stored (sealed) for their instance.
        if let Some(keys) = &opts.provider_token_keys {
            for (instance, client) in provider.all() {
                client.set_consent_vault(Arc::new(provider::consent::StoredConsent {
                    ctx: ctx.clone(),
                    clock: clock.clone(),
                    keys: keys.clone(),
                    instance,
                }));
            }
        }
        Ok(Self {
            ctx,
            clock,
            risk: opts.risk.clone(),
            verifier: opts.verifier.clone(),
            sms: opts.sms.clone(),
            detector,
            dunning_policy: opts.dunning_policy.clone(),
            provider,
            velocity,
            options: opts.clone(),
        })
    }

    pub fn db(&self) -> &Db {
        &self.ctx.db
    }

    /// Begins a unit of work.
    pub async fn begin(&self) -> Result<Uow, StorageError> {
        self.ctx.begin().await
    }

    /// Begins a unit of work holding a customer's billing lock: see `Ctx::begin_billing`.
    pub async fn begin_billing(
        &self,
        tenant: riskdesk_domain::TenantId,
        customer: uuid::Uuid,
    ) -> Result<Uow, StorageError> {
        self.ctx.begin_billing(tenant, customer).await
    }

    /// Begins a bulk unit of work (a part of an event batch): see `Db::begin_bulk`.
    pub async fn begin_bulk(&self) -> Result<Uow, StorageError> {
        self.ctx.begin_bulk().await
    }
}
