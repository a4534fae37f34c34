//! The outbox: every email and webhook riskdesk sends is first a row here, written in the unit
//! of work that decided it, then delivered by a worker that marks it sent or schedules a retry.
//! A crash before the commit sends nothing; after it, the row is delivered (at least once; the
//! webhook carries its id so receivers can drop a repeat).

use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::{Db, Result, StorageError, Tx};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OutboxRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// email, webhook
    pub channel: String,
    /// One decision, one message: enqueueing the same key again does nothing.
    pub dedupe_key: String,
    pub customer_id: Option<Uuid>,
    /// An email address, or a webhook endpoint id.
    pub destination: String,
    /// e.g. dunning.final_warning, budget.threshold_reached
    pub event_type: String,
    pub subject: Option<String>,
    /// The email text, or the webhook's JSON body — rendered when decided, never re-read.
    pub body: String,
    /// pending, sent, failed (gave up after the last retry)
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

impl FromRow for OutboxRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(OutboxRow {
            id: r.uuid("id")?,
            tenant_id: r.uuid("tenant_id")?,
            channel: r.text("channel")?,
            dedupe_key: r.text("dedupe_key")?,
            customer_id: r.opt_uuid("customer_id")?,
            destination: r.text("destination")?,
            event_type: r.text("event_type")?,
            subject: r.opt_text("subject")?,
            body: r.text("body")?,
            status: r.text("status")?,
            attempts: r.i64("attempts")?,
            next_attempt_at: r.i64("next_attempt_at")?,
            last_error: r.opt_text("last_error")?,
            created_at: r.i64("created_at")?,
            sent_at: r.opt_i64("sent_at")?,
        })
    }
}

const COLS: &str = "id, tenant_id, channel, dedupe_key, customer_id, destination, event_type, subject, body, status, attempts, \
     next_attempt_at, last_error, created_at, sent_at";

/// Enqueues a message unless one with the same dedupe key exists; true if it was new.
pub async fn enqueue(tx: &mut Tx, m: &OutboxRow) -> Result<bool> {
    let n = tx
        .execute(
            Q::new(format!(
                "INSERT INTO outbox ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (tenant_id, dedupe_key) DO NOTHING"
            ))
            .bind(m.id)
            .bind(m.tenant_id)
            .bind(&m.channel)
            .bind(&m.dedupe_key)
            .bind(m.customer_id)
            .bind(&m.destination)
            .bind(&m.event_type)
            .bind(&m.subject)
            .bind(&m.body)
            .bind(&m.status)
            .bind(m.attempts)
            .bind(m.next_attempt_at)
            .bind(&m.last_error)
            .bind(m.created_at)
            .bind(m.sent_at),
        )
        .await?;
    Ok(n > 0)
}

/// Enqueues several messages in one statement (those whose dedupe key exists are skipped);
/// returns how many were new.
pub async fn enqueue_many(tx: &mut Tx, rows: &[OutboxRow]) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    if tx.backend() == crate::Backend::Postgres {
        // One statement text whatever the count, one array per column.
        let text = |f: &dyn Fn(&OutboxRow) -> Option<String>| -> Vec<Option<String>> {
            rows.iter().map(f).collect()
        };
        let int = |f: &dyn Fn(&OutboxRow) -> Option<i64>| -> Vec<Option<i64>> {
            rows.iter().map(f).collect()
        };
        let q = Q::new(format!(
            "INSERT INTO outbox ({COLS}) SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], \
             $4::text[], $5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
             $11::int8[], $12::int8[], $13::text[], $14::int8[], $15::int8[]) \
             ON CONFLICT (tenant_id, dedupe_key) DO NOTHING"
        ))
        .bind(rows.iter().map(|m| m.id).collect::<Vec<Uuid>>())
        .bind(rows.iter().map(|m| m.tenant_id).collect::<Vec<Uuid>>())
        .bind(text(&|m| Some(m.channel.clone())))
        .bind(text(&|m| Some(m.dedupe_key.clone())))
        .bind(
            rows.iter()
                .map(|m| m.customer_id)
                .collect::<Vec<Option<Uuid>>>(),
        )
        .bind(text(&|m| Some(m.destination.clone())))
        .bind(text(&|m| Some(m.event_type.clone())))
        .bind(text(&|m| m.subject.clone()))
        .bind(text(&|m| Some(m.body.clone())))
        .bind(text(&|m| Some(m.status.clone())))
        .bind(int(&|m| Some(m.attempts)))
        .bind(int(&|m| Some(m.next_attempt_at)))
        .bind(text(&|m| m.last_error.clone()))
        .bind(int(&|m| Some(m.created_at)))
        .bind(int(&|m| m.sent_at));
        return tx.execute(q).await;
    }
    let values: Vec<String> = (0..rows.len())
        .map(|i| format!("({})", crate::query::placeholders(i * 15 + 1, 15)))
        .collect();
    let mut q = Q::new(format!(
        "INSERT INTO outbox ({COLS}) VALUES {} ON CONFLICT (tenant_id, dedupe_key) DO NOTHING",
        values.join(", ")
    ));
    for m in rows {
        q = q
            .bind(m.id)
            .bind(m.tenant_id)
            .bind(&m.channel)
            .bind(&m.dedupe_key)
            .bind(m.customer_id)
            .bind(&m.destination)
            .bind(&m.event_type)
            .bind(&m.subject)
            .bind(&m.body)
            .bind(&m.status)
            .bind(m.attempts)
            .bind(m.next_attempt_at)
            .bind(&m.last_error)
            .bind(m.created_at)
            .bind(m.sent_at);
    }
    tx.execute(q).await
}

/// Claims up to `limit` pending messages due by `now` (all tenants), oldest first, for one
/// delivery attempt: their `next_attempt_at` moves to `lease_until` in the same statement, so
/// no other process (nor this one's next pass) takes them while this one sends. If the sender
/// dies, they are due again when the lease ends (at least once; receivers dedupe on the id).
/// Only webhooks when `with_email` is false (emails wait for an SMTP server and must not hold
/// webhooks back).
pub async fn claim_due(
    db: &Db,
    now: i64,
    lease_until: i64,
    limit: u32,
    with_email: bool,
) -> Result<Vec<OutboxRow>> {
    // PostgreSQL: rows another claimer has locked are skipped, not waited for. SQLite has one
    // writer, so the statement is atomic as it is.
    let skip_locked = if db.backend() == crate::Backend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let mut tx = db.begin().await?;
    let mut rows: Vec<OutboxRow> = tx
        .fetch_all(
            Q::new(format!(
                "UPDATE outbox SET next_attempt_at = $4 WHERE id IN (SELECT id FROM outbox \
                 WHERE status = 'pending' AND next_attempt_at <= $1 AND ($3 = 1 OR channel = 'webhook') \
                 ORDER BY next_attempt_at, id LIMIT $2{skip_locked}) RETURNING {COLS}"
            ))
            .bind(now)
            .bind(i64::from(limit))
            .bind(i64::from(with_email))
            .bind(lease_until),
        )
        .await?;
    tx.commit().await?;
    rows.sort_by_key(|r| (r.created_at, r.id));
    Ok(rows)
}

/// Records a delivery attempt's outcome. `next` None = sent; Some(t) = retry at t; a failure
/// with `give_up` marks it failed.
pub async fn record_attempt(
    tx: &mut Tx,
    id: Uuid,
    now: i64,
    outcome: Result<(), (String, Option<i64>)>,
) -> Result<()> {
    let q = match outcome {
        Ok(()) => Q::new(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = $2, last_error = NULL WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(now),
        Err((error, Some(retry_at))) => Q::new(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(retry_at)
        .bind(error),
        Err((error, None)) => Q::new(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $2 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(error),
    };
    tx.execute(q).await?;
    Ok(())
}

pub struct OutboxFilter {
    pub customer: Option<Uuid>,
    pub channel: Option<String>,
    pub status: Option<String>,
    pub limit: u32,
}

pub async fn list(db: &Db, tenant: TenantId, f: &OutboxFilter) -> Result<Vec<OutboxRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {COLS} FROM outbox WHERE tenant_id = $1 AND ($2 IS NULL OR customer_id = $2) AND ($3 IS NULL OR channel = $3) \
             AND ($4 IS NULL OR status = $4) ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind(tenant.0)
        .bind(f.customer)
        .bind(f.channel.clone())
        .bind(f.status.clone())
        .bind(i64::from(f.limit)),
    )
    .await
}

pub async fn get(db: &Db, tenant: TenantId, id: Uuid) -> Result<OutboxRow> {
    db.fetch_optional(
        Q::new(format!(
            "SELECT {COLS} FROM outbox WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("outbox message"))
}

/// Queues a message again (manual re-send): pending, due now, attempts kept.
pub async fn resend(tx: &mut Tx, tenant: TenantId, id: Uuid, now: i64) -> Result<OutboxRow> {
    tx.execute(
        Q::new(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $3 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(id)
        .bind(now),
    )
    .await?;
    tx.fetch_optional(
        Q::new(format!(
            "SELECT {COLS} FROM outbox WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("outbox message"))
}

/// A partner endpoint that receives signed webhooks.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EndpointRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    #[serde(skip)]
    pub secret: String,
    pub active: bool,
    pub created_at: i64,
}

impl FromRow for EndpointRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(EndpointRow {
            id: r.uuid("id")?,
            tenant_id: r.uuid("tenant_id")?,
            url: r.text("url")?,
            secret: r.text("secret")?,
            active: r.i64("active")? != 0,
            created_at: r.i64("created_at")?,
        })
    }
}

pub async fn insert_endpoint(tx: &mut Tx, e: &EndpointRow) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, secret, active, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(e.id)
        .bind(e.tenant_id)
        .bind(&e.url)
        .bind(&e.secret)
        .bind(i64::from(e.active))
        .bind(e.created_at),
    )
    .await?;
    Ok(())
}

pub async fn endpoints_tx(tx: &mut Tx, tenant: TenantId) -> Result<Vec<EndpointRow>> {
    tx.fetch_all(
        Q::new(
            "SELECT id, tenant_id, url, secret, active, created_at FROM webhook_endpoints WHERE tenant_id = $1 AND active <> 0 ORDER BY created_at, id",
        )
        .bind(tenant.0),
    )
    .await
}

pub async fn endpoints(db: &Db, tenant: TenantId) -> Result<Vec<EndpointRow>> {
    db.fetch_all(
        Q::new(
            "SELECT id, tenant_id, url, secret, active, created_at FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant.0),
    )
    .await
}

pub async fn endpoint(db: &Db, id: Uuid) -> Result<Option<EndpointRow>> {
    db.fetch_optional(
        Q::new(
            "SELECT id, tenant_id, url, secret, active, created_at FROM webhook_endpoints WHERE id = $1",
        )
        .bind(id),
    )
    .await
}
