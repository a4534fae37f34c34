//! The background loops, started apart from any adapter: the HTTP server calls
//! [`spawn_all`] today; a worker process will call the same function without serving HTTP.
//! Each loop is a "one pass" function on a timer, and the passes are what tests drive.

use std::sync::Arc;

use crate::App;
use crate::kernel::outbox::Deliverer;
use crate::provider::ProviderWorker;

/// Starts every background loop of `app`: outbox delivery, the spend-anomaly pass, the
/// provider worker and (if configured) the Partner Center poll, the SLA pass and (if
/// configured) the daily dunning run. They stop when `stop` changes or its sender is dropped.
pub fn spawn_all(app: &Arc<App>, stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
    let opts = &app.options;
    let smtp = match &opts.smtp {
        Some(c) => Some(Arc::new(
            riskdesk_connectors::email::SmtpSender::new(c)
                .map_err(|e| anyhow::anyhow!("SMTP settings: {e}"))?,
        )),
        None => None,
    };
    let deliverer = Deliverer {
        db: app.db().clone(),
        clock: app.clock.clone(),
        smtp,
        http: reqwest::Client::new(),
    };
    tokio::spawn(deliverer.run(opts.outbox_interval, stop.clone()));
    tokio::spawn(crate::monitoring::spend::schedule(
        app.ctx.clone(),
        app.clock.clone(),
        app.detector.clone(),
        opts.anomaly_every,
        stop.clone(),
    ));
    tokio::spawn(
        ProviderWorker {
            ctx: app.ctx.clone(),
            clock: app.clock.clone(),
            hub: app.provider.clone(),
            lease: opts.provider_lease,
        }
        .run(opts.provider_interval, stop.clone()),
    );
    if let Some(every) = opts.provider_poll_every
        && !app.provider.is_empty()
    {
        tokio::spawn(crate::provider::poll::schedule(
            app.ctx.clone(),
            app.clock.clone(),
            app.provider.clone(),
            app.detector.clone(),
            every,
            stop.clone(),
        ));
    }
    tokio::spawn(crate::response::sla_schedule(
        app.ctx.clone(),
        app.clock.clone(),
        opts.sla_every,
        stop.clone(),
    ));
    if let Some(every) = opts.dunning_every {
        tokio::spawn(crate::billing::dunning::schedule(
            app.ctx.clone(),
            app.clock.clone(),
            app.dunning_policy.clone(),
            every,
            stop,
        ));
    }
    Ok(())
}
