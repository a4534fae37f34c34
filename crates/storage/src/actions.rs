//! Actions taken or proposed from cases. A `pending` action that calls the provider is also
//! that call's outbox entry: the worker picks due ones (`next_attempt_at`), calls with the
//! stored `provider_request_id`, and records the outcome here.

use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::{Db, Result, StorageError, Tx};

/// A stored action. Serialises as its audit snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ActionRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub case_id: Option<Uuid>,
    pub customer_id: Uuid,
    pub subscription_id: Option<Uuid>,
    pub kind: String,
    pub params_json: String,
    pub status: String,
    pub reason: String,
    pub note: Option<String>,
    pub proposed_by: String,
    pub decided_by: Option<String>,
    /// partner_center (a call is made), none (riskdesk's own control, or no provider link),
    /// unsupported (the cloud has no such call).
    pub provider: String,
    pub provider_request_id: Option<String>,
    pub provider_result_json: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub done_at: Option<i64>,
}

impl FromRow for ActionRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(ActionRow {
            id: r.uuid("id")?,
            tenant_id: r.uuid("tenant_id")?,
            case_id: r.opt_uuid("case_id")?,
            customer_id: r.uuid("customer_id")?,
            subscription_id: r.opt_uuid("subscription_id")?,
            kind: r.text("kind")?,
            params_json: r.text("params_json")?,
            status: r.text("status")?,
            reason: r.text("reason")?,
            note: r.opt_text("note")?,
            proposed_by: r.text("proposed_by")?,
            decided_by: r.opt_text("decided_by")?,
            provider: r.text("provider")?,
            provider_request_id: r.opt_text("provider_request_id")?,
            provider_result_json: r.opt_text("provider_result_json")?,
            attempts: r.i64("attempts")?,
            next_attempt_at: r.opt_i64("next_attempt_at")?,
            last_error: r.opt_text("last_error")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
            done_at: r.opt_i64("done_at")?,
        })
    }
}

const COLS: &str = "id, tenant_id, case_id, customer_id, subscription_id, kind, params_json, status, reason, note, \
     proposed_by, decided_by, provider, provider_request_id, provider_result_json, attempts, next_attempt_at, last_error, \
     created_at, updated_at, done_at";

pub async fn insert(tx: &mut Tx, a: &ActionRow) -> Result<()> {
    tx.execute(
        Q::new(format!(
            "INSERT INTO actions ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21)"
        ))
        .bind(a.id)
        .bind(a.tenant_id)
        .bind(a.case_id)
        .bind(a.customer_id)
        .bind(a.subscription_id)
        .bind(&a.kind)
        .bind(&a.params_json)
        .bind(&a.status)
        .bind(&a.reason)
        .bind(&a.note)
        .bind(&a.proposed_by)
        .bind(&a.decided_by)
        .bind(&a.provider)
        .bind(&a.provider_request_id)
        .bind(&a.provider_result_json)
        .bind(a.attempts)
        .bind(a.next_attempt_at)
        .bind(&a.last_error)
        .bind(a.created_at)
        .bind(a.updated_at)
        .bind(a.done_at),
    )
    .await?;
    Ok(())
}

/// Writes an action's mutable fields.
pub async fn update(tx: &mut Tx, a: &ActionRow) -> Result<()> {
    tx.execute(
        Q::new(
            "UPDATE actions SET status = $3, decided_by = $4, provider = $5, provider_request_id = $6, provider_result_json = $7, \
             attempts = $8, next_attempt_at = $9, last_error = $10, updated_at = $11, done_at = $12, case_id = $13 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(a.tenant_id)
        .bind(a.id)
        .bind(&a.status)
        .bind(&a.decided_by)
        .bind(&a.provider)
        .bind(&a.provider_request_id)
        .bind(&a.provider_result_json)
        .bind(a.attempts)
        .bind(a.next_attempt_at)
        .bind(&a.last_error)
        .bind(a.updated_at)
        .bind(a.done_at)
        .bind(a.case_id),
    )
    .await?;
    Ok(())
}

pub async fn get(db: &Db, tenant: TenantId, id: Uuid) -> Result<ActionRow> {
    db.fetch_optional(
        Q::new(format!(
            "SELECT {COLS} FROM actions WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("action"))
}

pub async fn get_tx(tx: &mut Tx, tenant: TenantId, id: Uuid) -> Result<ActionRow> {
    tx.fetch_optional(
        Q::new(format!(
            "SELECT {COLS} FROM actions WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("action"))
}

pub async fn of_case(db: &Db, tenant: TenantId, case: Uuid) -> Result<Vec<ActionRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {COLS} FROM actions WHERE tenant_id = $1 AND case_id = $2 ORDER BY created_at, id"
        ))
        .bind(tenant.0)
        .bind(case),
    )
    .await
}

/// Actions of a case still pending or awaiting approval.
pub async fn unfinished_of_case_tx(tx: &mut Tx, tenant: TenantId, case: Uuid) -> Result<i64> {
    Ok(tx
        .fetch_optional::<i64>(
            Q::new(
                "SELECT COUNT(*) AS n FROM actions WHERE tenant_id = $1 AND case_id = $2 \
                 AND status IN ('pending', 'awaiting_approval')",
            )
            .bind(tenant.0)
            .bind(case),
        )
        .await?
        .unwrap_or(0))
}

/// A customer's actions awaiting approval.
pub async fn awaiting_tx(tx: &mut Tx, tenant: TenantId, customer: Uuid) -> Result<Vec<ActionRow>> {
    tx.fetch_all(
        Q::new(format!(
            "SELECT {COLS} FROM actions WHERE tenant_id = $1 AND customer_id = $2 AND status = 'awaiting_approval'"
        ))
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

pub struct ActionFilter {
    pub status: Option<String>,
    pub customer: Option<Uuid>,
    pub case_id: Option<Uuid>,
}

pub async fn list(
    db: &Db,
    tenant: TenantId,
    f: &ActionFilter,
    limit: u32,
) -> Result<Vec<ActionRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {COLS} FROM actions WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR customer_id = $3) \
             AND ($4 IS NULL OR case_id = $4) ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind(tenant.0)
        .bind(f.status.clone())
        .bind(f.customer)
        .bind(f.case_id)
        .bind(i64::from(limit)),
    )
    .await
}

/// Pending provider calls due by `now`, all tenants, oldest first.
pub async fn due(db: &Db, now: i64, limit: u32) -> Result<Vec<ActionRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {COLS} FROM actions WHERE status = 'pending' AND next_attempt_at IS NOT NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2"
        ))
        .bind(now)
        .bind(i64::from(limit)),
    )
    .await
}
