//! The background loops, started apart from any adapter, by role: `riskdesk serve` runs the
//! HTTP API and (by default) every role; `riskdesk worker --roles …` runs some roles without
//! HTTP, so several processes can share one PostgreSQL. Each loop is a "one pass" function on a
//! timer; the passes are what tests drive ([`run_once`]).
//!
//! | role | loops | several processes |
//! |---|---|---|
//! | `api` | the spend-anomaly pass over the series this process ingested | any (each scores what it ingested) |
//! | `ingest` | with `[scale]`: applies the events of the stream partitions it owns, and the spend-anomaly pass over them | any: each partition is leased to one worker |
//! | `outbox` | email and webhook delivery | any: each pass claims its messages first |
//! | `provider` | Partner Center calls | any: each call is leased before it is made |
//! | `scheduler` | the SLA pass, the daily dunning run, the Partner Center poll, housekeeping | any: each job runs in the one process holding its lease |

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::App;
use crate::kernel::lease::Leases;
use crate::kernel::outbox::Deliverer;
use crate::provider::ProviderWorker;

/// What one process does besides (or instead of) serving HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub ingest: bool,
    pub outbox: bool,
    pub provider: bool,
    pub scheduler: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        api: true,
        ingest: true,
        outbox: true,
        provider: true,
        scheduler: true,
    };
    /// The api role alone (HTTP; background work left to `riskdesk worker` processes).
    pub const API: Roles = Roles {
        api: true,
        ingest: false,
        outbox: false,
        provider: false,
        scheduler: false,
    };
    pub const NAMES: [&'static str; 5] = ["api", "ingest", "outbox", "provider", "scheduler"];

    /// `api,ingest,outbox,provider,scheduler` (any of them, or `all`).
    pub fn parse(list: &str) -> Result<Roles, String> {
        let mut r = Roles {
            api: false,
            ingest: false,
            outbox: false,
            provider: false,
            scheduler: false,
        };
        for name in list.split(',').map(str::trim) {
            match name {
                "all" => r = Roles::ALL,
                "api" => r.api = true,
                "outbox" => r.outbox = true,
                "provider" => r.provider = true,
                "scheduler" => r.scheduler = true,
                "ingest" => r.ingest = true,
                "" => return Err("a role list must name at least one role".into()),
                other => {
                    return Err(format!(
                        "unknown role '{other}' (roles: all, {})",
                        Roles::NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(r)
    }

    pub fn names(&self) -> Vec<&'static str> {
        let on = [
            self.api,
            self.ingest,
            self.outbox,
            self.provider,
            self.scheduler,
        ];
        Roles::NAMES
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect()
    }
}

/// The scheduler's jobs, each under its lease.
pub const JOB_SLA: &str = "sla";
pub const JOB_DUNNING: &str = "dunning";
pub const JOB_PROVIDER_POLL: &str = "provider-poll";
pub const JOB_PRUNE: &str = "prune";
pub const JOB_AUDIT_CHECKPOINT: &str = "audit-checkpoint";
/// Housekeeping (`riskdesk prune`) runs this often.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

fn scheduler_jobs(app: &App) -> Vec<(&'static str, Duration)> {
    let opts = &app.options;
    let mut jobs = vec![(JOB_SLA, opts.sla_every), (JOB_PRUNE, PRUNE_EVERY)];
    if let Some(every) = opts.dunning_every {
        jobs.push((JOB_DUNNING, every));
    }
    if let Some((_, every)) = &opts.audit_checkpoints {
        jobs.push((JOB_AUDIT_CHECKPOINT, *every));
    }
    if let Some(every) = opts.provider_poll_every
        && !app.provider.is_empty()
    {
        jobs.push((JOB_PROVIDER_POLL, every));
    }
    jobs
}

fn deliverer(app: &App) -> anyhow::Result<Deliverer> {
    let smtp = match &app.options.smtp {
        Some(c) => Some(Arc::new(
            riskdesk_connectors::email::SmtpSender::new(c)
                .map_err(|e| anyhow::anyhow!("SMTP settings: {e}"))?,
        )),
        None => None,
    };
    Ok(Deliverer {
        db: app.db().clone(),
        clock: app.clock.clone(),
        smtp,
        http: reqwest::Client::new(),
    })
}

fn provider_worker(app: &App) -> ProviderWorker {
    ProviderWorker {
        ctx: app.ctx.clone(),
        clock: app.clock.clone(),
        hub: app.provider.clone(),
        lease: app.options.provider_lease,
    }
}

/// One pass of a scheduler job; a summary line for the log and `riskdesk worker --once`.
async fn job_pass(app: &Arc<App>, job: &str) -> Result<String, crate::kernel::AppError> {
    let now = app.clock.now();
    Ok(match job {
        JOB_SLA => format!(
            "{:?}",
            crate::response::sla_pass(&app.ctx, None, now).await?
        ),
        JOB_DUNNING => {
            let s = crate::billing::dunning::daily_pass(&app.ctx, &app.dunning_policy, now).await?;
            format!(
                "{} customers, {} steps, {} levers applied, {} undone",
                s.customers, s.steps, s.levers_applied, s.levers_undone
            )
        }
        JOB_PROVIDER_POLL => {
            let s =
                crate::provider::poll::pass(&app.ctx, &app.provider, &app.detector, now).await?;
            if !s.errors.is_empty() {
                tracing::warn!(errors = ?s.errors, "Partner Center poll: some feeds failed");
            }
            format!("{s:?}")
        }
        JOB_PRUNE => format!("{:?}", crate::prune(app.db(), &app.risk, now).await?),
        JOB_AUDIT_CHECKPOINT => match &app.options.audit_checkpoints {
            Some((seed, _)) => {
                let n = crate::audit::checkpoint_pass(app.db(), seed, now).await?;
                format!("{n} lane heads checkpointed")
            }
            None => "no audit signing key".to_owned(),
        },
        other => format!("unknown job {other}"),
    })
}

/// Runs `job` every `every` while this process holds its lease (checked more often than
/// `every`, so a process taking a job over starts it within a third of the lease).
async fn led(
    app: Arc<App>,
    leases: Arc<Leases>,
    job: &'static str,
    every: Duration,
    check: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut last: Option<Instant> = None;
    loop {
        if leases.leads(job) && last.is_none_or(|t| t.elapsed() >= every) {
            last = Some(Instant::now());
            match job_pass(&app, job).await {
                Ok(s) => tracing::debug!(job, summary = %s, "scheduled pass"),
                Err(e) => tracing::warn!(job, error = %e, "scheduled pass failed"),
            }
        } else if !leases.leads(job) {
            // Led elsewhere: if this process leads it again later, it runs at once.
            last = None;
        }
        tokio::select! {
            _ = tokio::time::sleep(every.min(check)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Starts the background loops of `roles`. They stop when `stop` changes or its sender is
/// dropped. Returns the scheduler's leases (when it runs), for a graceful stop to give up.
pub fn spawn_all(
    app: &Arc<App>,
    roles: Roles,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<Arc<Leases>>> {
    let opts = &app.options;
    if roles.outbox {
        tokio::spawn(deliverer(app)?.run(opts.outbox_interval, stop.clone()));
    }
    // Without `[scale]` the api role ingests in the request; with it the ingest role does.
    let ingests = match &opts.scale {
        None => roles.api,
        Some(_) => roles.ingest,
    };
    if let (Some(scale), true) = (&opts.scale, roles.ingest) {
        let w = crate::monitoring::stream::IngestWorker::new(
            app.ctx.clone(),
            app.detector.clone(),
            scale.clone(),
        );
        tokio::spawn(w.run(stop.clone()));
    }
    if ingests {
        tokio::spawn(crate::monitoring::spend::schedule(
            app.ctx.clone(),
            app.clock.clone(),
            app.detector.clone(),
            opts.anomaly_every,
            stop.clone(),
        ));
    }
    if roles.provider {
        tokio::spawn(provider_worker(app).run(opts.provider_interval, stop.clone()));
    }
    if roles.scheduler {
        let jobs = scheduler_jobs(app);
        let leases = Arc::new(Leases::new(
            app.db().clone(),
            jobs.iter().map(|(j, _)| *j).collect(),
            opts.lease_ttl,
        ));
        tokio::spawn(leases.clone().run(stop.clone()));
        for (job, every) in jobs {
            tokio::spawn(led(
                app.clone(),
                leases.clone(),
                job,
                every,
                opts.lease_ttl / 3,
                stop.clone(),
            ));
        }
        return Ok(Some(leases));
    }
    Ok(None)
}

/// One pass of every loop of `roles`, in this order: outbox, provider calls, the scheduler's
/// jobs (each only if this process gets its lease; the leases are given up after), the spend
/// anomaly pass. Returns a line per loop.
pub async fn run_once(app: &Arc<App>, roles: Roles) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    if roles.outbox {
        let n = deliverer(app)?.pass().await?;
        out.push(format!("outbox: {n} messages attempted"));
    }
    if roles.provider {
        let n = provider_worker(app).pass().await?;
        out.push(format!("provider: {n} calls attempted"));
    }
    if roles.scheduler {
        let jobs = scheduler_jobs(app);
        let leases = Leases::new(
            app.db().clone(),
            jobs.iter().map(|(j, _)| *j).collect(),
            app.options.lease_ttl,
        );
        leases.beat().await?;
        for (job, _) in jobs {
            if leases.leads(job) {
                let s = job_pass(app, job).await?;
                out.push(format!("{job}: ran ({s})"));
            } else {
                out.push(format!("{job}: not run (another process holds its lease)"));
            }
        }
        leases.release_all().await;
    }
    if let (Some(scale), true) = (&app.options.scale, roles.ingest) {
        let w = crate::monitoring::stream::IngestWorker::new(
            app.ctx.clone(),
            app.detector.clone(),
            scale.clone(),
        );
        let s = w.pass().await?;
        out.push(format!(
            "ingest: {} partitions, {} messages applied, {} skipped (applied before), {} dead-lettered",
            s.partitions, s.applied, s.skipped, s.dead_lettered
        ));
    }
    let ingests = match &app.options.scale {
        None => roles.api,
        Some(_) => roles.ingest,
    };
    if ingests {
        let now = app.clock.now();
        let s = app.detector.spend.pass(&app.ctx, now, now).await?;
        out.push(format!(
            "spend anomalies: {} hours of {} series scored, {} alerts",
            s.hours_scored, s.series, s.alerts
        ));
    }
    Ok(out)
}
