//! Settings: defaults, then `riskdesk.toml`, then `RISKDESK_…` environment variables, then
//! command-line flags (the later wins).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use riskdesk_storage::DbOptions;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `ADDR:PORT` to listen on.
    pub bind: String,
    /// SQLite file path / `sqlite:` URL, or `postgres://…`.
    pub database_url: String,
    /// `full` (default: an acknowledged write survives power loss) or `normal` (survives a
    /// process crash; faster).
    pub sqlite_synchronous: String,
    /// SQLite: milliseconds a part of an event batch lets interactive writes (assessments,
    /// actions) waiting for the single writer go first before it takes its turn anyway; -1:
    /// for as long as any wait (ingest may starve under constant interactive load).
    pub sqlite_bulk_yield_ms: i64,
    /// Log filter, e.g. `info` or `riskdesk=debug,info`.
    pub log: String,
    /// Seconds an authenticated token is remembered; a token revoked from another process
    /// stops working within this time. 0 checks the database on every request.
    pub auth_cache_seconds: u64,
    /// PostgreSQL connections this process keeps at most (each PostgreSQL server has its own
    /// limit, `max_connections`, shared by every process).
    pub pg_max_connections: u32,
    /// The Ed25519 key (a 32-byte seed, 64 hex digits; `riskdesk audit keygen`) that signs
    /// checkpoints of the audit chains (`riskdesk audit checkpoint`). Best given in the
    /// environment (`RISKDESK_AUDIT_SIGNING_KEY`), not in a file next to the database.
    pub audit_signing_key: Option<String>,
    /// The keys that seal the Partner Center consents (refresh tokens) at rest: `id:hex`
    /// pairs, comma-separated, the first the current one (`riskdesk provider keygen`). Best
    /// given in the environment (`RISKDESK_PROVIDER_TOKEN_KEYS`). Without it, instances
    /// cannot be connected for app + user calls.
    pub provider_token_keys: Option<String>,
    /// Tenants (ids) whose admins may connect and disconnect the installation's Partner
    /// Center instances through the API; empty: any tenant's admin (one-partner
    /// installations). The CLI (`riskdesk provider connect`) always may.
    pub provider_operators: Vec<uuid::Uuid>,
    /// `[data]`: reference data files replacing the shipped copies, GeoIP databases.
    pub data: riskdesk_app::onboarding::risk::DataSettings,
    /// `[onboarding]`: the sign-up risk policy (points, thresholds, credit bands, velocity…).
    pub onboarding: riskdesk_domain::onboarding::Policy,
    /// `[verification]`: the identity/credit verification provider (optional).
    pub verification: Option<riskdesk_connectors::verification::VerificationSettings>,
    /// `[sms]`: the SMS provider (Twilio Messages API) for MFA codes (optional).
    pub sms: Option<riskdesk_connectors::sms::SmsSettings>,
    /// `[email]`: the SMTP server customer notices go out through (optional: without it,
    /// emails wait in the outbox, visible as pending).
    pub email: Option<riskdesk_connectors::email::SmtpConfig>,
    /// `[dunning]`: the default ladder and how often the server runs it.
    pub dunning: DunningSettings,
    /// `[monitoring]`: anomaly detection on customers' hourly spend.
    pub monitoring: MonitoringSettings,
    /// `[response]`: which alerts open cases, SLAs per severity and kind, the staff email.
    pub response: riskdesk_app::kernel::ResponseSettings,
    /// `[partner_center.<instance>]` (global, us_government, germany, china_21vianet): the
    /// provider's API, one app registration per cloud. Without it actions act locally only.
    pub partner_center: std::collections::HashMap<
        String,
        riskdesk_connectors::partner_center::PartnerCenterSettings,
    >,
    /// `[partner_center_webhooks]`: accept Partner Center callbacks at
    /// `POST /v1/provider/webhooks?tenant=…` (signatures checked as configured here).
    pub partner_center_webhooks: Option<riskdesk_connectors::pc_webhook::WebhookVerifySettings>,
    /// `[provider_worker]`: how the provider calls queued by actions are made.
    pub provider_worker: ProviderWorkerSettings,
    /// `[scheduler]`: the jobs one process at a time runs (SLA pass, dunning run, Partner
    /// Center poll, housekeeping) and their leases.
    pub scheduler: SchedulerSettings,
    /// `[http]`: how slow or too many clients are bounded.
    pub http: HttpSettings,
    /// `[dashboard]`: the web dashboard's sessions and sign-in throttling.
    pub dashboard: DashboardSettings,
    /// `[scale]`: several processes over one PostgreSQL, events carried by NATS JetStream
    /// and partitioned by customer (absent: events are ingested in the request).
    pub scale: Option<ScaleSettings>,
}

/// `[scale]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScaleSettings {
    pub nats_url: String,
    /// The JetStream stream's name.
    pub stream: String,
    /// Subjects are `<subject_prefix>.ev.<partition>`.
    pub subject_prefix: String,
    /// Fixed when the stream is first used: at least twice the most ingest workers planned.
    pub partitions: u32,
    /// 1 on one NATS server; 3 on a cluster (a 202 answer is then held by a quorum).
    pub replicas: usize,
    /// The backlog's limit in bytes: past it `POST /v1/events` answers 503.
    pub max_bytes: i64,
    /// How long `POST /v1/events` waits for a batch to be applied before answering 202.
    pub sync_wait_ms: u64,
    /// Seconds a partition's lease lasts from its last renewal (the takeover time after a
    /// worker dies; renewed every third of it).
    pub lease_seconds: u64,
    /// Seconds a delivered message may go unacknowledged before it is delivered again.
    pub ack_wait_seconds: u64,
    /// Messages one ingest worker applies at once across its partitions (each partition's in
    /// order, one at a time). About the cores PostgreSQL has: more only queue there, ahead of
    /// the API's statements.
    pub worker_concurrency: usize,
}

impl Default for ScaleSettings {
    fn default() -> Self {
        ScaleSettings {
            nats_url: "nats://127.0.0.1:4222".into(),
            stream: "RD_EVENTS".into(),
            subject_prefix: "rd".into(),
            partitions: 32,
            replicas: 1,
            max_bytes: 8 << 30,
            sync_wait_ms: 10_000,
            lease_seconds: 10,
            ack_wait_seconds: 60,
            worker_concurrency: 4,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardSettings {
    /// Minutes without a request after which a session ends.
    pub idle_minutes: u64,
    /// Hours after sign-in at which a session ends, however active.
    pub absolute_hours: u64,
    /// Failed sign-ins for one email within `throttle_window_minutes` that pause its sign-in
    /// for `throttle_lock_minutes`.
    pub throttle_failures: i64,
    pub throttle_window_minutes: u64,
    pub throttle_lock_minutes: u64,
    /// `[dashboard.entra.<tenant slug>]`: sign-in with Microsoft Entra ID for that tenant's
    /// people.
    pub entra: std::collections::BTreeMap<String, riskdesk_connectors::oidc::OidcSettings>,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        let d = riskdesk_app::accounts::staff::SessionPolicy::default();
        Self {
            idle_minutes: d.idle.as_secs() / 60,
            absolute_hours: d.absolute.as_secs() / 3600,
            throttle_failures: d.throttle.max,
            throttle_window_minutes: d.throttle.window.as_secs() / 60,
            throttle_lock_minutes: d.throttle.lock.as_secs() / 60,
            entra: Default::default(),
        }
    }
}

impl DashboardSettings {
    pub fn ui_options(&self) -> riskdesk_ui::UiOptions {
        let m = |n: u64| std::time::Duration::from_secs(n.max(1) * 60);
        riskdesk_ui::UiOptions {
            sessions: riskdesk_app::accounts::staff::SessionPolicy {
                idle: m(self.idle_minutes),
                absolute: m(self.absolute_hours * 60),
                throttle: riskdesk_storage::staff::Throttle {
                    max: self.throttle_failures.max(1),
                    window: m(self.throttle_window_minutes),
                    lock: m(self.throttle_lock_minutes),
                },
            },
            entra: self.entra.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Seconds a client has to send a request's headers; also the longest a kept-alive
    /// connection may sit idle between requests.
    pub header_read_timeout_seconds: u64,
    /// Seconds a client has to send a request's body.
    pub body_read_timeout_seconds: u64,
    /// Open connections at most; beyond it new connections are closed at once.
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        let d = riskdesk_http::HttpLimits::default();
        Self {
            header_read_timeout_seconds: d.header_read_timeout.as_secs(),
            body_read_timeout_seconds: d.body_read_timeout.as_secs(),
            max_connections: d.max_connections,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderWorkerSettings {
    /// Seconds between looks for due provider calls.
    pub interval_seconds: u64,
    /// Seconds a started call is left alone before it may be tried again (after a crash):
    /// longer than a call with its retries can take.
    pub lease_seconds: u64,
    /// Minutes between pulls of fraud events and audit records from Partner Center (0: never;
    /// the default pulls every 15 minutes when `[partner_center_webhooks]` is not set, hourly
    /// otherwise to catch what a webhook missed).
    pub poll_every_minutes: Option<u64>,
}

/// `[scheduler]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSettings {
    /// Seconds a job's lease lasts from its last renewal (renewed every third of it): when the
    /// process holding it dies, another takes the job over within this time (at least 3).
    pub lease_seconds: u64,
    /// Minutes between signed checkpoints of the audit chains' heads (the `audit-checkpoint`
    /// job; only with `audit_signing_key`; 0: never).
    pub checkpoint_every_minutes: u64,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            lease_seconds: 15,
            checkpoint_every_minutes: 60,
        }
    }
}

impl Default for ProviderWorkerSettings {
    fn default() -> Self {
        Self {
            interval_seconds: 2,
            lease_seconds: 120,
            poll_every_minutes: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringSettings {
    /// Score at or above which an hour of spend raises an `anomaly.spend` alert (0–1).
    pub anomaly_threshold: f64,
    /// Seconds between scoring passes over the spend series ingest touched (`serve`).
    pub anomaly_every_seconds: u64,
}

impl Default for MonitoringSettings {
    fn default() -> Self {
        Self {
            anomaly_threshold: riskdesk_domain::anomaly::detector::ALARM_THRESHOLD,
            anomaly_every_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DunningSettings {
    /// The ladder for tenants that have not set their own with `PUT /v1/dunning/policy`.
    pub policy: riskdesk_domain::billing::dunning::Policy,
    /// Minutes between runs of the ladder for today in `serve` (0: never; runs are idempotent).
    pub run_every_minutes: u64,
}

impl Default for DunningSettings {
    fn default() -> Self {
        Self {
            policy: Default::default(),
            run_every_minutes: 60,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            database_url: "riskdesk.db".into(),
            sqlite_synchronous: "full".into(),
            sqlite_bulk_yield_ms: riskdesk_storage::DEFAULT_BULK_YIELD.as_millis() as i64,
            log: "info".into(),
            auth_cache_seconds: 1,
            pg_max_connections: 16,
            audit_signing_key: None,
            provider_token_keys: None,
            provider_operators: Vec::new(),
            data: Default::default(),
            onboarding: Default::default(),
            verification: None,
            sms: None,
            email: None,
            dunning: Default::default(),
            monitoring: Default::default(),
            response: Default::default(),
            partner_center: Default::default(),
            partner_center_webhooks: None,
            provider_worker: Default::default(),
            scheduler: Default::default(),
            http: Default::default(),
            dashboard: Default::default(),
            scale: None,
        }
    }
}

impl Settings {
    pub fn load(
        file: &std::path::Path,
        bind: Option<String>,
        database_url: Option<String>,
    ) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("RISKDESK_").only(&[
                "bind",
                "database_url",
                "sqlite_synchronous",
                "sqlite_bulk_yield_ms",
                "log",
                "auth_cache_seconds",
                "pg_max_connections",
                "audit_signing_key",
                "provider_token_keys",
            ]));
        if let Some(b) = bind {
            fig = fig.merge(("bind", b));
        }
        if let Some(d) = database_url {
            fig = fig.merge(("database_url", d));
        }
        let s: Settings = fig.extract()?;
        if !(0.0..=1.0).contains(&s.monitoring.anomaly_threshold) {
            anyhow::bail!(
                "[monitoring] anomaly_threshold must be between 0 and 1, not {}",
                s.monitoring.anomaly_threshold
            );
        }
        let problems = s.dunning.policy.problems();
        if !problems.is_empty() {
            anyhow::bail!(
                "[dunning.policy]: {}",
                problems
                    .iter()
                    .map(|(f, m)| format!("{f}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        let problems = s.response.problems();
        if !problems.is_empty() {
            anyhow::bail!(
                "[response]: {}",
                problems
                    .iter()
                    .map(|(f, m)| format!("{f}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        if !matches!(s.sqlite_synchronous.as_str(), "full" | "normal") {
            anyhow::bail!(
                "sqlite_synchronous must be 'full' or 'normal', not '{}'",
                s.sqlite_synchronous
            );
        }
        Ok(s)
    }

    /// Loads the risk engine (reference data + policy); fails naming the bad file or field.
    pub fn risk_engine(&self) -> anyhow::Result<riskdesk_app::onboarding::risk::RiskEngine> {
        riskdesk_app::onboarding::risk::RiskEngine::load(&self.data, &self.onboarding)
            .map_err(|e| anyhow::anyhow!(e))
    }

    /// The consent keys, checked (a bad key stops the start).
    pub fn token_cipher(
        &self,
    ) -> anyhow::Result<Option<std::sync::Arc<riskdesk_app::kernel::secrets::TokenCipher>>> {
        self.provider_token_keys
            .as_deref()
            .filter(|k| !k.trim().is_empty())
            .map(|k| {
                riskdesk_app::kernel::secrets::TokenCipher::parse(k)
                    .map(std::sync::Arc::new)
                    .map_err(|e| anyhow::anyhow!("provider_token_keys: {e}"))
            })
            .transpose()
    }

    pub fn server_options(&self) -> anyhow::Result<riskdesk_http::ServerOptions> {
        Ok(riskdesk_http::ServerOptions {
            auth_cache_ttl: std::time::Duration::from_secs(self.auth_cache_seconds),
            limits: riskdesk_http::HttpLimits {
                header_read_timeout: std::time::Duration::from_secs(
                    self.http.header_read_timeout_seconds.max(1),
                ),
                body_read_timeout: std::time::Duration::from_secs(
                    self.http.body_read_timeout_seconds.max(1),
                ),
                max_connections: self.http.max_connections.max(1),
            },
            risk: std::sync::Arc::new(self.risk_engine()?),
            verifier: match &self.verification {
                Some(v) => Some(std::sync::Arc::new(
                    riskdesk_connectors::verification::VerificationClient::new(v.clone())
                        .map_err(|e| anyhow::anyhow!(e))?,
                )),
                None => None,
            },
            sms: match &self.sms {
                Some(v) => Some(std::sync::Arc::new(
                    riskdesk_connectors::sms::SmsClient::new(v.clone())
                        .map_err(|e| anyhow::anyhow!(e))?,
                )),
                None => None,
            },
            dunning_policy: std::sync::Arc::new(self.dunning.policy.clone()),
            smtp: self.email.clone(),
            outbox_interval: std::time::Duration::from_secs(2),
            dunning_every: (self.dunning.run_every_minutes > 0)
                .then(|| std::time::Duration::from_secs(self.dunning.run_every_minutes * 60)),
            anomaly_every: std::time::Duration::from_secs(
                self.monitoring.anomaly_every_seconds.max(1),
            ),
            anomaly_threshold: self.monitoring.anomaly_threshold,
            response: self.response.clone(),
            partner_center: self.partner_center.clone(),
            pc_webhooks: self.partner_center_webhooks.clone(),
            provider_interval: std::time::Duration::from_secs(
                self.provider_worker.interval_seconds.max(1),
            ),
            provider_lease: std::time::Duration::from_secs(
                self.provider_worker.lease_seconds.max(1),
            ),
            sla_every: std::time::Duration::from_secs(60),
            roles: riskdesk_app::workers::Roles::ALL,
            lease_ttl: std::time::Duration::from_secs(self.scheduler.lease_seconds.max(3)),
            audit_checkpoints: match (
                &self.audit_signing_key,
                self.scheduler.checkpoint_every_minutes,
            ) {
                (Some(seed), m) if m > 0 => {
                    // Checked here, so a bad key stops the start instead of every pass.
                    riskdesk_domain::audit::checkpoint::key_from_seed(seed)
                        .map_err(|e| anyhow::anyhow!("audit_signing_key: {e}"))?;
                    Some((seed.clone(), std::time::Duration::from_secs(m * 60)))
                }
                _ => None,
            },
            scale: None,
            provider_token_keys: self.token_cipher()?,
            provider_operators: self.provider_operators.clone(),
            provider_poll_every: match self.provider_worker.poll_every_minutes {
                Some(0) => None,
                Some(m) => Some(std::time::Duration::from_secs(m * 60)),
                None if self.partner_center_webhooks.is_some() => {
                    Some(std::time::Duration::from_secs(3600))
                }
                None => Some(std::time::Duration::from_secs(15 * 60)),
            },
        })
    }

    /// Connects to the event stream of `[scale]` (None without it) and checks the database
    /// agrees on its partitions. Refused on SQLite: one process owns a SQLite file.
    pub async fn scale(
        &self,
        db: &riskdesk_storage::Db,
    ) -> anyhow::Result<Option<std::sync::Arc<riskdesk_app::monitoring::stream::Scale>>> {
        let Some(c) = &self.scale else {
            return Ok(None);
        };
        if c.worker_concurrency == 0 {
            anyhow::bail!(
                "[scale] worker_concurrency must be at least 1 (messages an ingest worker applies at once)"
            );
        }
        if db.backend() != riskdesk_storage::Backend::Postgres {
            anyhow::bail!(
                "[scale] needs PostgreSQL: one process owns a SQLite file (remove [scale], or set database_url to postgres://…)"
            );
        }
        if c.lease_seconds < 3 {
            anyhow::bail!(
                "[scale] lease_seconds must be at least 3, not {}",
                c.lease_seconds
            );
        }
        let stream = riskdesk_connectors::jetstream::EventStream::connect(
            riskdesk_connectors::jetstream::StreamSettings {
                url: c.nats_url.clone(),
                stream: c.stream.clone(),
                subject_prefix: c.subject_prefix.clone(),
                partitions: c.partitions,
                replicas: c.replicas.max(1),
                max_bytes: c.max_bytes,
                ack_wait: std::time::Duration::from_secs(c.ack_wait_seconds.max(5)),
            },
        )
        .await?;
        let known = riskdesk_storage::event_stream::register(db, &c.stream, c.partitions).await?;
        if known != c.partitions {
            anyhow::bail!(
                "[scale] partitions = {} but stream {} was used with {known}: the partition count is fixed for a stream (drain it and use a new stream name to change it)",
                c.partitions,
                c.stream
            );
        }
        Ok(Some(std::sync::Arc::new(
            riskdesk_app::monitoring::stream::Scale {
                stream,
                sync_wait: std::time::Duration::from_millis(c.sync_wait_ms),
                lease: std::time::Duration::from_secs(c.lease_seconds),
                worker_concurrency: c.worker_concurrency,
            },
        )))
    }

    pub fn db_options(&self) -> DbOptions {
        DbOptions {
            sqlite_full_sync: self.sqlite_synchronous == "full",
            pg_max_connections: self.pg_max_connections.max(1),
            sqlite_bulk_yield: (self.sqlite_bulk_yield_ms >= 0)
                .then(|| std::time::Duration::from_millis(self.sqlite_bulk_yield_ms as u64)),
            ..DbOptions::default()
        }
    }
}
