//! `riskdesk`: the server and the administration CLI in one binary.

mod anomaly;
mod collections;
mod config;
mod ingest;
mod users;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, Subcommand};
use riskdesk_app::SystemClock;
use riskdesk_app::accounts as service;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::audit::checkpoint;
use riskdesk_domain::{Clock, Role, TenantSlug, TokenId};
use riskdesk_http::Application;

/// mimalloc instead of the system allocator: allocation was ≈ 12–20 % of the CPU in ingest and
/// assessment profiles, much of it glibc's free-list upkeep (BENCHMARKS.md, session 6).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use riskdesk_storage::Db;

use crate::config::Settings;

#[derive(Parser)]
#[command(name = "riskdesk", version, about = "Risk control for cloud resellers")]
struct Cli {
    /// Configuration file (TOML). Settings: bind, database_url, sqlite_synchronous, log.
    #[arg(long, global = true, default_value = "riskdesk.toml")]
    config: std::path::PathBuf,
    /// Address to listen on [env: RISKDESK_BIND] [default: 127.0.0.1:8080]
    #[arg(long, global = true)]
    bind: Option<String>,
    /// Database: a SQLite file path or sqlite: URL, or postgres://… [env: RISKDESK_DATABASE_URL] [default: riskdesk.db]
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Aged receivables: open invoices in buckets by days past due, per customer and currency.
    Aging {
        /// The day (YYYY-MM-DD, its end) or instant (RFC 3339) to age at; default now.
        #[arg(long)]
        as_of: Option<String>,
        /// `due_date` or `issue_date`.
        #[arg(long, default_value = "due_date")]
        basis: String,
        /// Bucket edges in days.
        #[arg(long, default_value = "30,60,90")]
        buckets: String,
        /// `table`, `csv` or `json`.
        #[arg(long, default_value = "table", value_parser = ["table", "csv", "json"])]
        format: String,
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

#[derive(Subcommand)]
enum DunningCommand {
    /// Run the ladder for a day (idempotent; a late run catches up every skipped notice).
    Run {
        /// YYYY-MM-DD (default today, UTC).
        #[arg(long)]
        as_of: Option<String>,
        /// One tenant (slug); default every tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum NoticesCommand {
    /// List messages missing from a language (they fall back to English); exits 1 if any.
    Check,
    /// Record provider notices (Acceptable Use Policy emails) from .eml files: each opens a
    /// case with the notice SLA. The customer is the one given, else the linked customer
    /// whose provider id appears in the message. A message already recorded is skipped.
    Import {
        /// RFC 5322 message files.
        files: Vec<std::path::PathBuf>,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// The riskdesk customer id the notices are about.
        #[arg(long)]
        customer: Option<uuid::Uuid>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (migrates the database and creates the default tenant on first start).
    Serve {
        /// Also load the demo book into the default tenant (only if it has no customers yet).
        #[arg(long)]
        demo: bool,
        /// The roles this process runs: `api` (HTTP, and the spend-anomaly pass over what it
        /// ingests) and any of `ingest` (with `[scale]`), `outbox`, `provider`, `scheduler`;
        /// `all` (the default) is the embedded single process. Other roles can run in
        /// `riskdesk worker` processes.
        #[arg(long, default_value = "all")]
        roles: String,
    },
    /// Run background roles without HTTP (`ingest`, `outbox`, `provider`, `scheduler`,
    /// comma-separated), for several processes over one PostgreSQL: stream partitions,
    /// outbox messages and provider calls are claimed before they are worked on, and each
    /// scheduler job runs in the one process holding its lease.
    Worker {
        #[arg(long)]
        roles: String,
        /// One pass of each role's loops (scheduler jobs only where this process gets their
        /// lease), a line per loop, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Which process holds each scheduler job's lease, since when and until when.
    Leases,
    /// The Partner Center connection of each cloud instance (the Secure Application Model:
    /// a partner admin's consent, kept encrypted, for the app + user calls).
    Provider {
        #[command(subcommand)]
        command: ProviderCommand,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants (one per reseller in an indirect provider's installation).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage staff accounts: the people who sign in to the web dashboard.
    User {
        #[command(subcommand)]
        command: users::UserCommand,
    },
    /// Manage staff API tokens (for machines; people sign in as users).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Delete what only matters for a while: velocity rows past every window, idempotency keys
    /// older than 7 days, expired MFA challenges. `serve` also does this every hour.
    Prune,
    /// Sign-up assessment.
    Signups {
        #[command(subcommand)]
        command: SignupsCommand,
    },
    /// Reference data for onboarding risk.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// The onboarding risk policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Score a series for anomalies: reads a CSV with the header `timestamp,value`, writes the
    /// same rows with `anomaly_score` in [0, 1] added (the streaming detector of the monitoring
    /// pipeline: each score uses only its row and earlier ones).
    Detect {
        #[arg(long)]
        input: std::path::PathBuf,
        #[arg(long)]
        output: std::path::PathBuf,
    },
    /// Evaluate the anomaly detector on the Numenta Anomaly Benchmark (a directory with `data/`
    /// and `labels/combined_windows.json`, e.g. `data/nab`) with NAB's scoring; prints the score
    /// per profile at NAB's best threshold.
    Nab {
        #[arg(default_value = "data/nab")]
        dir: std::path::PathBuf,
    },
    /// Evaluate the anomaly detector on generated hourly spend (seasonality, growth, noise per
    /// meter category) with injected fraud shapes: hours to detect each shape and false alarms
    /// per customer-month on clean series, at the product's alarm threshold.
    Scenarios {
        /// Customers generated (each: three meter categories, 90 days).
        #[arg(long, default_value_t = 200)]
        customers: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Alarm threshold (default: the product's).
        #[arg(long)]
        threshold: Option<f64>,
    },
    /// Reports.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// The dunning ladder.
    Dunning {
        #[command(subcommand)]
        command: DunningCommand,
    },
    /// Customer notice templates.
    Notices {
        #[command(subcommand)]
        command: NoticesCommand,
    },
    /// Load usage and activity events from files: NDJSON events (the POST /v1/events
    /// contract) or FOCUS cost-and-usage CSV (1.0, 1.2). Every record is stored once (re-loading
    /// a file adds nothing), bad records are reported with file and line and skipped, budgets
    /// of the customers touched are evaluated. Prints a summary; exits 1 if a file cannot be
    /// read at all.
    Ingest {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Tenant (slug) the events belong to.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// FOCUS: the column that names the customer (default SubAccountId, else BillingAccountId).
        #[arg(long)]
        customer_column: Option<String>,
        /// Every record of these files belongs to the customer with this external id.
        #[arg(long)]
        customer_external_id: Option<String>,
        /// FOCUS: currency for files without a BillingCurrency column.
        #[arg(long)]
        currency: Option<String>,
        /// Evaluate budgets as of this instant (RFC 3339; default now).
        #[arg(long)]
        as_of: Option<String>,
        /// Events per unit of work (one COMMIT each; the writer is held meanwhile, ~0.5 s at
        /// the default). Larger units rewrite each touched page fewer times: on 1M events
        /// 50,000 ran 17-21 % faster than 20,000; 100,000 no faster than 50,000.
        #[arg(long, default_value_t = 50_000)]
        batch: usize,
    },
}

#[derive(Subcommand)]
enum SignupsCommand {
    /// Assess a batch offline: one assessment request (the POST /v1/signups/assess body) per
    /// line of FILE; one JSON line per input line on stdout (or --output). Velocity is counted
    /// across the batch; nothing is stored.
    Assess {
        file: std::path::PathBuf,
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Which data sets are loaded, from where, how many entries, how old.
    Status,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate the `[onboarding]` policy of a TOML file (default: the --config file) and
    /// explain every error.
    Check { file: Option<std::path::PathBuf> },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create {
        slug: String,
        /// Display name (defaults to the slug).
        #[arg(long)]
        name: Option<String>,
    },
    /// List tenants.
    List,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (its only line on stdout). It is shown once.
    Create {
        #[arg(long)]
        tenant: String,
        /// admin, analyst, collections or auditor.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List a tenant's tokens (never their secrets).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify every tenant's hash chain. Exit 0 with the count when intact; non-zero naming the
    /// first broken entry otherwise. With `--checkpoints`, also check each signed checkpoint
    /// of the file against `--public-key` and the chain as stored now: a chain rewritten or cut
    /// back after a checkpoint fails even when it is consistent in itself.
    Verify {
        /// Checkpoints (JSON lines, as `riskdesk audit checkpoint` prints them).
        #[arg(long, requires = "public_key")]
        checkpoints: Option<std::path::PathBuf>,
        /// The public key the checkpoints must be signed with (hex; `riskdesk audit keygen`).
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Sign a checkpoint of every lane head of every tenant's chain with `audit_signing_key`,
    /// printed as one JSON line per lane: keep them outside the database (an auditor's copy).
    /// With `--store`, also store those of heads that moved (as the scheduler's
    /// `audit-checkpoint` job does).
    Checkpoint {
        #[arg(long)]
        store: bool,
    },
    /// Export the checkpoints stored by the scheduler's `audit-checkpoint` job (JSON lines, the
    /// format `audit verify --checkpoints` reads), oldest first.
    Checkpoints {
        /// Only this tenant's (its slug).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Print a new audit signing key (for `audit_signing_key`) and its public key (for
    /// auditors and `audit verify --public-key`).
    Keygen,
}

#[derive(Subcommand)]
enum ProviderCommand {
    /// Each configured instance: connection state, token expiry, when the consent was given,
    /// rotated or lost, the last error.
    Status,
    /// Start connecting an instance: prints the consent page for a partner admin to open (sign
    /// in with MFA, consent). Entra ID then sends the browser to the configured redirect URI
    /// (riskdesk's `/v1/provider/consent/callback` completes it); without a server, paste the
    /// address it was sent to into `riskdesk provider complete`.
    Connect {
        /// global, us_government, germany or china_21vianet.
        instance: String,
        /// The tenant (slug) the connection is audited in.
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Complete a consent with the address Entra ID redirected the browser to (it carries
    /// `code` and `state`).
    Complete { redirect_url: String },
    /// Forget an instance's consent (its refresh token is deleted).
    Disconnect {
        instance: String,
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Seal every stored consent again under the current (first) key of
    /// `provider_token_keys`, after a new key was put first.
    Rekey,
    /// Print a new key for `provider_token_keys`.
    Keygen {
        /// The key's id (keep ids unique: k1, k2, …).
        #[arg(long, default_value = "k1")]
        id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config, cli.bind.clone(), cli.database_url.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("riskdesk: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&settings.log);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("riskdesk: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command, settings, cli.config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("riskdesk: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn provider_command(
    command: ProviderCommand,
    settings: &Settings,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<ExitCode> {
    use riskdesk_app::provider::consent;
    if let ProviderCommand::Keygen { id } = &command {
        println!(
            "provider_token_keys = \"{}\"",
            riskdesk_app::kernel::secrets::TokenCipher::generate(id)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let db = open_db(settings).await?;
    let app = open_app(settings, &db, clock)?;
    let keys = app.options.provider_token_keys.clone();
    let now = clock.now();
    let print = |c: &consent::Connection| -> anyhow::Result<()> {
        println!("{}", serde_json::to_string(c)?);
        Ok(())
    };
    match command {
        ProviderCommand::Keygen { .. } => unreachable!("handled above"),
        ProviderCommand::Status => {
            if app.provider.is_empty() {
                eprintln!("no [partner_center.<instance>] is configured");
            }
            for c in consent::connections(&app.ctx, &app.provider, keys.as_ref()).await? {
                print(&c)?;
            }
        }
        ProviderCommand::Connect { instance, tenant } => {
            let t = riskdesk_storage::tenants::by_slug(&db, &tenant).await?;
            let mut tx = app.begin().await?;
            let start = consent::start(
                &mut tx,
                &app.provider,
                keys.as_ref(),
                riskdesk_domain::TenantId(t.id),
                &Actor::cli(),
                &instance,
                now,
            )
            .await?;
            tx.commit().await?;
            println!("{}", start.authorize_url);
            eprintln!(
                "open this page as a partner admin (sign in with MFA, consent) before {}",
                start.expires_at
            );
        }
        ProviderCommand::Complete { redirect_url } => {
            let query = redirect_url
                .split_once('?')
                .map(|(_, q)| q)
                .ok_or_else(|| anyhow!("the address has no query (?code=…&state=…)"))?;
            let q: std::collections::HashMap<String, String> =
                form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect();
            let state = q
                .get("state")
                .ok_or_else(|| anyhow!("the address carries no state"))?;
            let c = consent::complete(
                &app.ctx,
                &app.provider,
                keys.as_ref(),
                consent::Callback {
                    state,
                    code: q.get("code").map(String::as_str),
                    error: q.get("error").map(String::as_str),
                    error_description: q.get("error_description").map(String::as_str),
                },
                now,
            )
            .await?;
            print(&c)?;
        }
        ProviderCommand::Disconnect { instance, tenant } => {
            let t = riskdesk_storage::tenants::by_slug(&db, &tenant).await?;
            let c = consent::disconnect(
                &app.ctx,
                &app.provider,
                riskdesk_domain::TenantId(t.id),
                &Actor::cli(),
                &instance,
                now,
            )
            .await?;
            print(&c)?;
        }
        ProviderCommand::Rekey => {
            let keys = keys.ok_or_else(|| anyhow!("provider_token_keys is not set"))?;
            let n = consent::rekey(&app.ctx, &keys, now).await?;
            eprintln!("{n} consents sealed again under key {}", keys.current_key());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The application over `db`, for commands that run use cases without serving HTTP.
fn open_app(s: &Settings, db: &Db, clock: &Arc<dyn Clock>) -> anyhow::Result<riskdesk_app::App> {
    riskdesk_app::App::new(
        db.clone(),
        clock.clone(),
        &s.server_options()?.app_options(),
    )
}

/// An invalid batch line's error as the API's problem document.
fn problem_of(e: riskdesk_app::AppError) -> serde_json::Value {
    serde_json::to_value(riskdesk_http::error::ApiError::from(e).problem()).unwrap_or_default()
}

async fn open_db(s: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&s.database_url, &s.db_options())
        .await
        .with_context(|| format!("cannot open the database {}", redact(&s.database_url)))?;
    db.migrate().await.context("cannot apply migrations")?;
    Ok(db)
}

/// Hides a password in a database URL before it is printed.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn run(
    command: Command,
    settings: Settings,
    config_path: std::path::PathBuf,
) -> anyhow::Result<ExitCode> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        Command::Serve { demo, roles } => {
            let roles = riskdesk_app::workers::Roles::parse(&roles).map_err(|e| anyhow!(e))?;
            if !roles.api {
                bail!(
                    "`serve` runs the api role; run background roles alone with `riskdesk worker --roles …`"
                );
            }
            let db = open_db(&settings).await?;
            let mut demo_signins = Vec::new();
            if let Some((_, secret)) = service::ensure_default_tenant(&db, clock.now()).await? {
                println!("Created tenant 'default'. Its admin token (shown once, keep it):");
                println!("{secret}");
            }
            if demo {
                let tenant = service::tenant_by_slug(&db, service::DEFAULT_TENANT).await?;
                let app = open_app(&settings, &db, &clock)?;
                let n = riskdesk_app::demo::load(&app.ctx, tenant.tenant_id(), clock.now()).await?;
                if n > 0 {
                    println!("Loaded the demo book: {n} customers in tenant 'default'.");
                } else {
                    println!("Demo book not loaded: tenant 'default' already has customers.");
                }
                demo_signins = users::demo_users(&db, tenant.tenant_id(), clock.now()).await?;
            }
            let mut options = settings.server_options()?;
            // Housekeeping (hourly) is a scheduler job.
            options.roles = roles;
            options.scale = settings.scale(&db).await?;
            if roles.ingest && !roles.api && options.scale.is_none() {
                bail!(
                    "the ingest role needs [scale]: without it the api role ingests in the request"
                );
            }
            let ui = settings.dashboard.ui_options();
            let app = Application::build_with(&settings.bind, db.clone(), clock, &options, |app| {
                riskdesk_ui::router(app, ui, Default::default())
            })
            .await?;
            println!("Dashboard: http://{}/ui/", app.local_addr());
            if !app.local_addr().ip().is_loopback() {
                println!(
                    "  (not on loopback: browsers keep the dashboard's __Host- cookie only over HTTPS, so put TLS in front)"
                );
            }
            for (email, password, role) in &demo_signins {
                println!("  demo sign-in ({role}): {email} / {password}");
            }
            // Last: tests and scripts read up to this line.
            println!(
                "riskdesk listening on http://{} (database: {})",
                app.local_addr(),
                redact(&settings.database_url)
            );
            app.run_until(shutdown_signal()).await?;
            db.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { roles, once } => {
            let roles = riskdesk_app::workers::Roles::parse(&roles).map_err(|e| anyhow!(e))?;
            if roles.api {
                bail!("the api role serves HTTP: run it with `riskdesk serve --roles api`");
            }
            let db = open_db(&settings).await?;
            let scale = settings.scale(&db).await?;
            if roles.ingest && scale.is_none() {
                bail!(
                    "the ingest role needs [scale] (NATS JetStream): without it events are ingested by `riskdesk serve`, in the request"
                );
            }
            let mut opts = settings.server_options()?.app_options();
            opts.scale = scale;
            let app = Arc::new(riskdesk_app::App::new(db.clone(), clock.clone(), &opts)?);
            if once {
                for line in riskdesk_app::workers::run_once(&app, roles).await? {
                    println!("{line}");
                }
            } else {
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let leases = riskdesk_app::workers::spawn_all(&app, roles, stopped)?;
                // Last: tests and scripts read up to this line.
                println!(
                    "riskdesk worker running {} (database: {})",
                    roles.names().join(", "),
                    redact(&settings.database_url)
                );
                shutdown_signal().await;
                let _ = stop.send(true);
                if let Some(l) = leases {
                    l.release_all().await;
                }
            }
            db.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Leases => {
            let db = open_db(&settings).await?;
            let now = jiff::Timestamp::now().as_microsecond();
            let when = |us: i64| {
                jiff::Timestamp::from_microsecond(us)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|_| us.to_string())
            };
            for l in riskdesk_storage::leases::list(&db).await? {
                let state = if l.lease_until == 0 {
                    "released".to_owned()
                } else if l.lease_until < now {
                    format!("expired at {}", when(l.lease_until))
                } else {
                    format!("held until {}", when(l.lease_until))
                };
                println!(
                    "{:<14} {:<26} epoch {:<5} since {}  {state}",
                    l.name,
                    l.holder,
                    l.epoch,
                    when(l.acquired_at)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Prune => {
            let db = open_db(&settings).await?;
            let p = riskdesk_app::prune(&db, &settings.risk_engine()?, clock.now()).await?;
            println!(
                "pruned {} velocity rows, {} idempotency keys, {} expired challenges",
                p.velocity_rows, p.idempotency_keys, p.challenges
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let db = open_db(&settings).await?;
            println!("migrations applied ({:?})", db.backend());
            Ok(ExitCode::SUCCESS)
        }
        Command::Tenant { command } => {
            let db = open_db(&settings).await?;
            service::ensure_default_tenant(&db, clock.now()).await?;
            match command {
                TenantCommand::Create { slug, name } => {
                    let slug = TenantSlug::parse(&slug).map_err(|e| anyhow::anyhow!(e.0))?;
                    let name = name.unwrap_or_else(|| slug.to_string());
                    let mut tx = db.begin().await?;
                    let t =
                        service::create_tenant(&mut tx, &Actor::cli(), &slug, &name, clock.now())
                            .await?;
                    tx.commit().await?;
                    println!("{}", t.slug);
                    eprintln!(
                        "created tenant '{}' ({}); give it a token with: riskdesk token create --tenant {} --role admin",
                        t.slug, t.id, t.slug
                    );
                }
                TenantCommand::List => {
                    for t in riskdesk_storage::tenants::list(&db).await? {
                        println!("{}\t{}\t{}", t.slug, t.id, t.name);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command } => users::run(command, &settings, &clock).await,
        Command::Token { command } => {
            let db = open_db(&settings).await?;
            service::ensure_default_tenant(&db, clock.now()).await?;
            match command {
                TokenCommand::Create { tenant, role, name } => {
                    let role = Role::parse(&role).ok_or_else(|| {
                        anyhow::anyhow!(
                            "role '{role}' is not one of admin, analyst, collections, auditor"
                        )
                    })?;
                    let tenant = service::tenant_by_slug(&db, &tenant).await?;
                    let name = name.unwrap_or_else(|| format!("{}-token", role.as_str()));
                    let mut tx = db.begin().await?;
                    let (row, secret) = service::create_token(
                        &mut tx,
                        tenant.tenant_id(),
                        &Actor::cli(),
                        &name,
                        role,
                        clock.now(),
                    )
                    .await?;
                    tx.commit().await?;
                    eprintln!(
                        "created token {} '{}' ({}) in tenant '{}'",
                        row.id, row.name, row.role, tenant.slug
                    );
                    println!("{secret}");
                }
                TokenCommand::List { tenant } => {
                    let tenant = service::tenant_by_slug(&db, &tenant).await?;
                    for t in riskdesk_storage::tokens::list(&db, tenant.tenant_id()).await? {
                        let state = if t.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        println!("{}\t{}\t{}\t{}", t.id, t.name, t.role, state);
                    }
                }
                TokenCommand::Revoke { id } => {
                    let id: TokenId = id.parse().map_err(|_| {
                        anyhow::anyhow!("'{id}' is not a token id (see riskdesk token list)")
                    })?;
                    let mut tx = db.begin().await?;
                    service::revoke_token(&mut tx, &Actor::cli(), id, clock.now()).await?;
                    tx.commit().await?;
                    eprintln!("revoked token {id}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Signups {
            command: SignupsCommand::Assess { file, output },
        } => {
            let engine = settings.risk_engine()?;
            let input = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let total = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let reader = std::io::BufReader::new(bar.wrap_read(input));
            let started = std::time::Instant::now();
            let summary = match output {
                Some(path) => {
                    let f = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    riskdesk_app::onboarding::batch::assess_lines(
                        &engine,
                        reader,
                        std::io::BufWriter::new(f),
                        clock.now(),
                        |_| {},
                        problem_of,
                    )?
                }
                None => riskdesk_app::onboarding::batch::assess_lines(
                    &engine,
                    reader,
                    std::io::BufWriter::new(std::io::stdout().lock()),
                    clock.now(),
                    |_| {},
                    problem_of,
                )?,
            };
            bar.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "{} lines in {:.2} s ({:.0}/s): {} approve, {} review, {} reject, {} invalid",
                summary.lines,
                secs,
                summary.lines as f64 / secs.max(1e-9),
                summary.approve,
                summary.review,
                summary.reject,
                summary.invalid
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest {
            files,
            tenant,
            customer_column,
            customer_external_id,
            currency,
            as_of,
            batch,
        } => {
            let as_of = match as_of {
                Some(t) => t
                    .parse::<jiff::Timestamp>()
                    .with_context(|| format!("--as-of '{t}' is not an RFC 3339 time"))?,
                None => clock.now(),
            };
            let opts = riskdesk_app::monitoring::formats::FileOptions {
                customer_column,
                customer_external_id,
                currency,
            };
            let db = open_db(&settings).await?;
            let tenant = service::tenant_by_slug(&db, &tenant).await?;
            let app = open_app(&settings, &db, &clock)?;
            let ok = ingest::run(
                &app,
                tenant,
                &files,
                &opts,
                batch.max(1),
                clock.as_ref(),
                as_of,
            )
            .await?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Report {
            command:
                ReportCommand::Aging {
                    as_of,
                    basis,
                    buckets,
                    format,
                    tenant,
                },
        } => {
            let as_of = riskdesk_app::kernel::time::parse_as_of(&as_of, clock.now())
                .map_err(|e| anyhow::anyhow!("--as-of: {e}"))?;
            let basis = riskdesk_domain::billing::aging::Basis::parse(&basis)
                .map_err(|e| anyhow::anyhow!("--basis: {}", e.0))?;
            let buckets = riskdesk_domain::billing::aging::Buckets::parse(&buckets)
                .map_err(|e| anyhow::anyhow!("--buckets: {}", e.0))?;
            let db = open_db(&settings).await?;
            let tenant = service::tenant_by_slug(&db, &tenant).await?;
            print!(
                "{}",
                collections::aging(&db, tenant.tenant_id(), as_of, basis, &buckets, &format)
                    .await?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Dunning {
            command: DunningCommand::Run { as_of, tenant },
        } => {
            let now = clock.now();
            let day = match as_of {
                Some(d) => riskdesk_domain::billing::Day::parse_date_or_instant(&d)
                    .map_err(|e| anyhow::anyhow!("--as-of: {}", e.0))?,
                None => riskdesk_domain::billing::Day::of(now),
            };
            let db = open_db(&settings).await?;
            let app = open_app(&settings, &db, &clock)?;
            let tenants = match tenant {
                Some(t) => vec![service::tenant_by_slug(&db, &t).await?],
                None => riskdesk_storage::tenants::list(&db).await?,
            };
            for t in tenants {
                print!(
                    "{}: {}",
                    t.slug,
                    collections::dunning_run(
                        &app.ctx,
                        t.tenant_id(),
                        &settings.dunning.policy,
                        day,
                        now
                    )
                    .await?
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Notices {
            command:
                NoticesCommand::Import {
                    files,
                    tenant,
                    customer,
                },
        } => {
            let db = open_db(&settings).await?;
            let app = open_app(&settings, &db, &clock)?;
            let t = service::tenant_by_slug(&db, &tenant).await?;
            let mut failed = false;
            for f in files {
                let bytes =
                    std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?;
                match riskdesk_app::provider::events::notice_from_eml(&bytes) {
                    Err(e) => {
                        eprintln!("{}: {e}", f.display());
                        failed = true;
                    }
                    Ok(mut n) => {
                        n.customer = customer;
                        let mut tx = app.begin().await?;
                        match riskdesk_app::provider::events::record_notice(
                            &mut tx,
                            t.tenant_id(),
                            &riskdesk_domain::audit::Actor::cli(),
                            n,
                            clock.now(),
                        )
                        .await
                        {
                            Ok((notice, case)) => {
                                tx.commit().await?;
                                println!(
                                    "{}: notice {} ({}), customer {}, case {} due {}",
                                    f.display(),
                                    notice.id,
                                    notice.subject,
                                    notice
                                        .customer_id
                                        .map_or("unknown".to_owned(), |c| c.to_string()),
                                    case.id,
                                    riskdesk_app::kernel::time::rfc3339(case.due_at)
                                );
                            }
                            Err(e) => {
                                eprintln!("{}: {e}", f.display());
                                failed = true;
                            }
                        }
                    }
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Notices {
            command: NoticesCommand::Check,
        } => {
            let missing = riskdesk_app::kernel::notices::missing_translations();
            if missing.is_empty() {
                println!("every notice message exists in en, zh-CN, zh-TW, fr-FR and pt-BR");
                Ok(ExitCode::SUCCESS)
            } else {
                for m in &missing {
                    println!("missing (falls back to English): {m}");
                }
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Detect { input, output } => {
            let report = anomaly::detect(&input, &output)?;
            for (row, why) in &report.skipped {
                eprintln!("{}: row {row}: {why}; skipped", input.display());
            }
            eprintln!(
                "{} rows scored into {}; {} skipped; {} out of time order (scored as they arrived: {} went back, {} repeated)",
                report.scored,
                output.display(),
                report.skipped.len(),
                report.went_back + report.repeated,
                report.went_back,
                report.repeated
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Nab { dir } => {
            anomaly::nab(&dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Scenarios {
            customers,
            seed,
            threshold,
        } => {
            anomaly::scenarios(customers, seed, threshold)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Data {
            command: DataCommand::Status,
        } => {
            let engine = settings.risk_engine()?;
            println!(
                "{:<20} {:>8}  {:<28} source",
                "data set", "entries", "as of"
            );
            for d in &engine.status {
                println!(
                    "{:<20} {:>8}  {:<28} {}",
                    d.name, d.entries, d.as_of, d.source
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy {
            command: PolicyCommand::Check { file },
        } => {
            let path = file.unwrap_or(config_path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            #[derive(serde::Deserialize)]
            struct OnlyPolicy {
                #[serde(default)]
                onboarding: riskdesk_domain::onboarding::Policy,
            }
            let parsed: OnlyPolicy = match toml_from_str(&text) {
                Ok(p) => p,
                Err(e) => {
                    println!("{}: {e}", path.display());
                    return Ok(ExitCode::from(1));
                }
            };
            match parsed.onboarding.compile() {
                Ok(_) => {
                    println!("{}: the onboarding policy is valid", path.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(errs) => {
                    for e in errs {
                        println!("{}: onboarding.{e}", path.display());
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Provider { command } => provider_command(command, &settings, &clock).await,
        Command::Audit {
            command: AuditCommand::Keygen,
        } => {
            let mut seed = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
                .map_err(|_| anyhow!("no randomness from the system"))?;
            let seed = checkpoint::new_seed(seed);
            let key = checkpoint::key_from_seed(&seed).map_err(|e| anyhow!(e))?;
            println!("audit_signing_key = \"{seed}\"");
            println!("public_key = \"{}\"", checkpoint::public_key_hex(&key));
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            command: AuditCommand::Checkpoints { tenant },
        } => {
            let db = open_db(&settings).await?;
            let tenants = riskdesk_storage::tenants::list(&db).await?;
            if let Some(slug) = &tenant
                && !tenants.iter().any(|t| &t.slug == slug)
            {
                bail!("no tenant '{slug}'");
            }
            for t in tenants
                .iter()
                .filter(|t| tenant.as_ref().is_none_or(|s| s == &t.slug))
            {
                let mut after = None;
                loop {
                    let rows = riskdesk_storage::audit::checkpoints(&db, t.id, after, 1000).await?;
                    let n = rows.len();
                    for r in rows {
                        after = Some((r.created_at, r.lane, r.seq));
                        let c = riskdesk_app::audit::to_checkpoint(r);
                        println!("{}", serde_json::to_string(&c)?);
                    }
                    if n < 1000 {
                        break;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            command: AuditCommand::Checkpoint { store },
        } => {
            let Some(seed) = &settings.audit_signing_key else {
                bail!(
                    "no audit signing key: set RISKDESK_AUDIT_SIGNING_KEY (`riskdesk audit keygen` makes one)"
                );
            };
            let key = checkpoint::key_from_seed(seed).map_err(|e| anyhow!(e))?;
            let db = open_db(&settings).await?;
            let at = clock.now().to_string();
            for h in riskdesk_storage::audit::heads(&db).await? {
                let c = checkpoint::sign(&key, h.tenant_id, h.lane, h.seq, &h.hash, &at);
                println!("{}", serde_json::to_string(&c)?);
            }
            if store {
                let n = riskdesk_app::audit::checkpoint_pass(&db, seed, clock.now()).await?;
                eprintln!("{n} checkpoints stored");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    checkpoints,
                    public_key,
                },
        } => {
            let db = open_db(&settings).await?;
            let mut total = 0;
            let mut broken = false;
            if let (Some(path), Some(pk)) = (checkpoints, public_key) {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let mut checked = 0;
                for (i, line) in text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    let c: checkpoint::Checkpoint =
                        serde_json::from_str(line).with_context(|| {
                            format!("{}:{}: not a checkpoint", path.display(), i + 1)
                        })?;
                    let place = format!(
                        "checkpoint {}:{} (tenant {}, lane {}, entry {})",
                        path.display(),
                        i + 1,
                        c.tenant_id,
                        c.lane,
                        c.seq
                    );
                    if let Err(e) = checkpoint::verify(&pk, &c) {
                        broken = true;
                        println!("{place}: {e}");
                        continue;
                    }
                    match riskdesk_storage::audit::stored_hash(&db, c.tenant_id, c.lane, c.seq)
                        .await?
                    {
                        Some(h) if h == c.hash => checked += 1,
                        Some(_) => {
                            broken = true;
                            println!(
                                "{place}: REWRITTEN: the entry's hash is not the one signed at {}",
                                c.at
                            );
                        }
                        None => {
                            broken = true;
                            println!(
                                "{place}: MISSING: the chain no longer holds the entry signed at {}",
                                c.at
                            );
                        }
                    }
                }
                println!("{checked} checkpoints match the chain");
            }
            for v in riskdesk_storage::audit::verify_all(&db).await? {
                match v.result {
                    Ok(n) => {
                        total += n;
                        println!("tenant {}: {n} entries, chain intact", v.slug);
                    }
                    Err(e) => {
                        broken = true;
                        let lane = if e.lane == 0 {
                            String::new()
                        } else {
                            format!(" of lane {}", e.lane)
                        };
                        println!(
                            "tenant {}: BROKEN at entry {}{lane}: {}",
                            v.slug, e.seq, e.why
                        );
                    }
                }
            }
            if broken {
                eprintln!("audit verification FAILED");
                Ok(ExitCode::from(1))
            } else {
                println!("{total} audit entries verified");
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// Parses TOML text into `T` with figment's precise error messages.
fn toml_from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, figment::Error> {
    use figment::providers::Format as _;
    figment::Figment::from(figment::providers::Toml::string(text)).extract()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
