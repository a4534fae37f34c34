use jiff::Timestamp;
use riskdesk_domain::{CustomerId, SubscriptionId, SubscriptionStatus, TenantId};
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::time::to_micros;
use crate::{Db, Result, StorageError, Tx, conflict_on_unique};

/// A stored subscription. Serialises as its audit snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SubscriptionRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub customer_id: Uuid,
    pub offer: String,
    pub external_id: Option<String>,
    pub quantity: i64,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The price of the first period, which a customer that must prepay has to cover first.
    pub first_period_minor: Option<i64>,
    pub first_period_currency: Option<String>,
}

impl FromRow for SubscriptionRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(SubscriptionRow {
            id: r.uuid("id")?,
            tenant_id: r.uuid("tenant_id")?,
            customer_id: r.uuid("customer_id")?,
            offer: r.text("offer")?,
            external_id: r.opt_text("external_id")?,
            quantity: r.i64("quantity")?,
            status: r.text("status")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
            first_period_minor: r.opt_i64("first_period_minor")?,
            first_period_currency: r.opt_text("first_period_currency")?,
        })
    }
}

impl SubscriptionRow {
    pub fn status(&self) -> Result<SubscriptionStatus> {
        SubscriptionStatus::parse(&self.status).ok_or_else(|| {
            StorageError::Corrupt(format!(
                "subscription {} has status '{}'",
                self.id, self.status
            ))
        })
    }
}

/// A subscription together with the cloud instance of its customer, which decides what the
/// subscription may do.
#[derive(Clone, Debug)]
pub struct SubscriptionWithInstance {
    pub sub: SubscriptionRow,
    pub cloud_instance: String,
}

impl FromRow for SubscriptionWithInstance {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(SubscriptionWithInstance {
            sub: SubscriptionRow::from_row(r)?,
            cloud_instance: r.text("cloud_instance")?,
        })
    }
}

const SELECT: &str = "SELECT id, tenant_id, customer_id, offer, external_id, quantity, status, created_at, updated_at, \
                      first_period_minor, first_period_currency FROM subscriptions";

pub struct NewSubscription {
    pub offer: String,
    pub external_id: Option<String>,
    pub quantity: i64,
    pub status: SubscriptionStatus,
    /// (minor units, currency) of the first period.
    pub first_period: Option<(i64, String)>,
}

pub async fn insert(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    s: &NewSubscription,
    now: Timestamp,
) -> Result<SubscriptionRow> {
    let now = to_micros(now);
    let row = SubscriptionRow {
        id: SubscriptionId::new().0,
        tenant_id: tenant.0,
        customer_id: customer.0,
        offer: s.offer.clone(),
        external_id: s.external_id.clone(),
        quantity: s.quantity,
        status: s.status.as_str().to_owned(),
        created_at: now,
        updated_at: now,
        first_period_minor: s.first_period.as_ref().map(|f| f.0),
        first_period_currency: s.first_period.as_ref().map(|f| f.1.clone()),
    };
    tx.execute(
        Q::new(
            "INSERT INTO subscriptions (id, tenant_id, customer_id, offer, external_id, quantity, status, created_at, updated_at, \
             first_period_minor, first_period_currency) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(row.id)
        .bind(row.tenant_id)
        .bind(row.customer_id)
        .bind(&row.offer)
        .bind(&row.external_id)
        .bind(row.quantity)
        .bind(&row.status)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.first_period_minor)
        .bind(&row.first_period_currency),
    )
    .await
    .map_err(|e| {
        conflict_on_unique(e, || {
            format!("external_id '{}' is already used by another subscription of this tenant", row.external_id.as_deref().unwrap_or(""))
        })
    })?;
    Ok(row)
}

pub async fn get(db: &Db, tenant: TenantId, id: SubscriptionId) -> Result<SubscriptionRow> {
    db.fetch_optional(
        Q::new(format!("{SELECT} WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(id.0),
    )
    .await?
    .ok_or(StorageError::NotFound("subscription"))
}

/// Reads a subscription inside a write, with its customer's cloud instance.
pub async fn get_with_instance_tx(
    tx: &mut Tx,
    tenant: TenantId,
    id: SubscriptionId,
) -> Result<SubscriptionWithInstance> {
    tx.fetch_optional(
        Q::new(
            "SELECT s.id, s.tenant_id, s.customer_id, s.offer, s.external_id, s.quantity, s.status, s.created_at, s.updated_at, \
             s.first_period_minor, s.first_period_currency, c.cloud_instance FROM subscriptions s JOIN customers c ON c.id = s.customer_id WHERE s.tenant_id = $1 AND s.id = $2",
        )
        .bind(tenant.0)
        .bind(id.0),
    )
    .await?
    .ok_or(StorageError::NotFound("subscription"))
}

pub async fn list_for_customer(
    db: &Db,
    tenant: TenantId,
    customer: CustomerId,
    status: Option<SubscriptionStatus>,
    after: Option<SubscriptionId>,
    limit: u32,
) -> Result<Vec<SubscriptionRow>> {
    let q = Q::new(format!(
        "{SELECT} WHERE tenant_id = $1 AND customer_id = $2 AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR id > $4) \
         ORDER BY id LIMIT $5"
    ))
    .bind(tenant.0)
    .bind(customer.0)
    .bind(status.map(|s| s.as_str()))
    .bind(after.map(|a| a.0))
    .bind(i64::from(limit));
    db.fetch_all(q).await
}

/// Sets the status decided by the domain; returns the row after the change.
pub async fn set_status(
    tx: &mut Tx,
    before: &SubscriptionRow,
    status: SubscriptionStatus,
    now: Timestamp,
) -> Result<SubscriptionRow> {
    let (q, after) = set_status_q(before, status, now);
    tx.execute(q).await?;
    Ok(after)
}

/// The statement of [`set_status`] and the row it leaves, for a caller that runs it with its
/// audit entry (`audit::append_after`).
pub fn set_status_q(
    before: &SubscriptionRow,
    status: SubscriptionStatus,
    now: Timestamp,
) -> (Q, SubscriptionRow) {
    let mut after = before.clone();
    after.status = status.as_str().to_owned();
    after.updated_at = to_micros(now);
    let q = Q::new(
        "UPDATE subscriptions SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(before.tenant_id)
    .bind(before.id)
    .bind(&after.status)
    .bind(after.updated_at);
    (q, after)
}

/// The ids of a customer's subscriptions in a status, inside a unit of work (for enforcement).
pub async fn ids_in_status_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    status: SubscriptionStatus,
) -> Result<Vec<SubscriptionId>> {
    let rows: Vec<SubscriptionRow> = tx
        .fetch_all(
            Q::new(format!(
                "{SELECT} WHERE tenant_id = $1 AND customer_id = $2 AND status = $3 ORDER BY id"
            ))
            .bind(tenant.0)
            .bind(customer.0)
            .bind(status.as_str()),
        )
        .await?;
    Ok(rows.into_iter().map(|r| SubscriptionId(r.id)).collect())
}

/// Every subscription of several customers, inside a unit of work (for the dunning ladder).
pub async fn of_customers_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[Uuid],
) -> Result<Vec<SubscriptionRow>> {
    if customers.is_empty() {
        return Ok(vec![]);
    }
    let (cond, args) = crate::query::any_uuid(tx.backend(), "customer_id", 2, customers);
    let mut q = Q::new(format!(
        "{SELECT} WHERE tenant_id = $1 AND {cond} ORDER BY customer_id, id",
    ))
    .bind(tenant.0);
    q.args.extend(args);
    tx.fetch_all(q).await
}

/// The sum of the first-period prices of a customer's subscriptions still waiting for their
/// prepayment, in one currency.
pub async fn pending_first_periods_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
    currency: &str,
) -> Result<i64> {
    Ok(pending_tx(tx, tenant, customer)
        .await?
        .iter()
        .filter(|s| s.first_period_currency.as_deref() == Some(currency))
        .filter_map(|s| s.first_period_minor)
        .sum())
}

/// A customer's subscriptions waiting for their prepayment, oldest first.
pub async fn pending_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: CustomerId,
) -> Result<Vec<SubscriptionRow>> {
    tx.fetch_all(
        Q::new(format!(
            "{SELECT} WHERE tenant_id = $1 AND customer_id = $2 AND status = 'pending_payment' ORDER BY created_at, id"
        ))
        .bind(tenant.0)
        .bind(customer.0),
    )
    .await
}
