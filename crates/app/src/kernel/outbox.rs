//! Writing to the outbox (in the caller's unit of work) and delivering from it (a worker).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use riskdesk_connectors::email::SmtpSender;
use riskdesk_connectors::webhook;
use riskdesk_domain::{Clock, TenantId};
use riskdesk_storage::outbox::{self, EndpointRow, OutboxRow};
use riskdesk_storage::time::to_micros;
use riskdesk_storage::{Db, Tx};
use uuid::Uuid;

use crate::kernel::error::AppError;

/// After this many failed attempts a message is marked failed (a person can re-send it).
pub const MAX_ATTEMPTS: i64 = 10;

/// Backoff after the n-th failed attempt: 30 s, 1 min, 2 min, … capped at 6 h.
pub fn backoff(attempts: i64) -> Duration {
    let secs = 30u64.saturating_mul(1u64 << attempts.clamp(0, 20));
    Duration::from_secs(secs.min(6 * 3600))
}

/// Queues an email to a customer. Returns false if this dedupe key was already queued.
#[allow(clippy::too_many_arguments)]
pub async fn email(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Option<Uuid>,
    to: &str,
    event_type: &str,
    dedupe_key: String,
    subject: String,
    body: String,
    now: Timestamp,
) -> Result<bool, AppError> {
    let row = email_row(
        tenant, customer, to, event_type, dedupe_key, subject, body, now,
    );
    Ok(outbox::enqueue(tx, &row).await?)
}

/// The outbox row of [`email`], for callers that queue many in one statement
/// (`outbox::enqueue_many`).
#[allow(clippy::too_many_arguments)]
pub fn email_row(
    tenant: TenantId,
    customer: Option<Uuid>,
    to: &str,
    event_type: &str,
    dedupe_key: String,
    subject: String,
    body: String,
    now: Timestamp,
) -> OutboxRow {
    let now = to_micros(now);
    OutboxRow {
        id: Uuid::now_v7(),
        tenant_id: tenant.0,
        channel: "email".into(),
        dedupe_key,
        customer_id: customer,
        destination: to.to_owned(),
        event_type: event_type.to_owned(),
        subject: Some(subject),
        body,
        status: "pending".into(),
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
        sent_at: None,
    }
}

/// Queues one webhook event per active endpoint of the tenant. The body is
/// `{"id", "type", "created_at", "data"}`; `id` is the outbox id (the receiver's dedupe key).
pub async fn webhooks(
    tx: &mut Tx,
    tenant: TenantId,
    endpoints: &[EndpointRow],
    customer: Option<Uuid>,
    event_type: &str,
    dedupe_key: &str,
    data: serde_json::Value,
    now: Timestamp,
) -> Result<u64, AppError> {
    // One statement for every endpoint (a round trip each on PostgreSQL otherwise).
    let rows = webhook_rows(
        tenant, endpoints, customer, event_type, dedupe_key, data, now,
    );
    Ok(outbox::enqueue_many(tx, &rows).await?)
}

/// The outbox rows of [`webhooks`] (one per active endpoint), for callers that queue many in
/// one statement.
pub fn webhook_rows(
    tenant: TenantId,
    endpoints: &[EndpointRow],
    customer: Option<Uuid>,
    event_type: &str,
    dedupe_key: &str,
    data: serde_json::Value,
    now: Timestamp,
) -> Vec<OutboxRow> {
    let at = to_micros(now);
    endpoints
        .iter()
        .filter(|e| e.active)
        .map(|e| {
            let id = Uuid::now_v7();
            let body = serde_json::json!({
                "id": id,
                "type": event_type,
                "created_at": now.to_string(),
                "data": data,
            });
            OutboxRow {
                id,
                tenant_id: tenant.0,
                channel: "webhook".into(),
                dedupe_key: format!("{dedupe_key}:{}", e.id),
                customer_id: customer,
                destination: e.id.to_string(),
                event_type: event_type.to_owned(),
                subject: None,
                body: body.to_string(),
                status: "pending".into(),
                attempts: 0,
                next_attempt_at: at,
                last_error: None,
                created_at: at,
                sent_at: None,
            }
        })
        .collect()
}

/// Messages one pass claims and sends.
pub const BATCH: u32 = 25;
/// How long a pass's claim on the messages it is sending lasts: longer than the sends of one
/// pass can take even when every one times out (SMTP 20 s, webhooks 10 s, × [`BATCH`]).
pub const CLAIM: Duration = Duration::from_secs(600);

/// Delivers due messages until `stop` resolves: emails over SMTP (if configured; without it
/// emails wait, visible as pending), webhooks signed with their endpoint's secret.
pub struct Deliverer {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub smtp: Option<Arc<SmtpSender>>,
    pub http: reqwest::Client,
}

impl Deliverer {
    /// One pass over the due messages; returns how many were attempted.
    pub async fn pass(&self) -> Result<usize, AppError> {
        let now = self.clock.now();
        // Claimed before sending: another process's pass (or this one's next) does not send
        // them too; a crash leaves them due again when the claim ends.
        let due = outbox::claim_due(
            &self.db,
            to_micros(now),
            to_micros(now) + CLAIM.as_micros() as i64,
            BATCH,
            self.smtp.is_some(),
        )
        .await?;
        let mut attempted = 0;
        for m in due {
            let outcome = match m.channel.as_str() {
                "email" => match &self.smtp {
                    None => continue,
                    Some(s) => s
                        .send(
                            &m.destination,
                            m.subject.as_deref().unwrap_or(""),
                            &m.body,
                            &m.id.to_string(),
                        )
                        .await
                        .map_err(|e| e.to_string()),
                },
                "webhook" => self.webhook(&m, now).await,
                other => Err(format!("unknown channel '{other}'")),
            };
            attempted += 1;
            let outcome = outcome.map_err(|e| {
                let retry = (m.attempts + 1 < MAX_ATTEMPTS)
                    .then(|| to_micros(now) + backoff(m.attempts).as_micros() as i64);
                if retry.is_none() {
                    tracing::warn!(id = %m.id, error = %e, "outbox message failed for good");
                }
                (e, retry)
            });
            let mut tx = self.db.begin().await?;
            outbox::record_attempt(&mut tx, m.id, to_micros(now), outcome).await?;
            tx.commit().await?;
        }
        Ok(attempted)
    }

    async fn webhook(&self, m: &OutboxRow, now: Timestamp) -> Result<(), String> {
        let id: Uuid = m
            .destination
            .parse()
            .map_err(|_| "bad endpoint id".to_owned())?;
        let e = outbox::endpoint(&self.db, id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the endpoint was removed".to_owned())?;
        webhook::deliver(
            &self.http,
            &e.url,
            &e.secret,
            &m.id.to_string(),
            &m.event_type,
            &m.body,
            now.as_second(),
        )
        .await
        .map_err(|e| e.to_string())
    }

    /// Runs passes every `interval` until `stop`.
    pub async fn run(self, interval: Duration, stop: tokio::sync::watch::Receiver<bool>) {
        let mut stop = stop;
        loop {
            match self.pass().await {
                // A full batch: more may be due, go on at once.
                Ok(n) if n >= BATCH as usize => {
                    if stop.has_changed().unwrap_or(true) {
                        return;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox pass failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
        }
    }
}
