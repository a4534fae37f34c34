//! Monthly budgets per customer and the last notified state of each of their marks.

use std::collections::BTreeMap;

use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::{Db, Result, Tx};

/// A stored budget. Serialises as its audit snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BudgetRow {
    pub customer_id: Uuid,
    pub monthly_minor: i64,
    pub currency: String,
    /// JSON array of percentages.
    pub thresholds_json: String,
    /// JSON array of minor-unit amounts.
    pub absolute_json: String,
    /// JSON object {at_percent, action, mode}, if enforcement is on.
    pub enforcement_json: Option<String>,
    pub updated_at: i64,
}

impl FromRow for BudgetRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(BudgetRow {
            customer_id: r.uuid("customer_id")?,
            monthly_minor: r.i64("monthly_minor")?,
            currency: r.text("currency")?,
            thresholds_json: r.text("thresholds_json")?,
            absolute_json: r.text("absolute_json")?,
            enforcement_json: r.opt_text("enforcement_json")?,
            updated_at: r.i64("updated_at")?,
        })
    }
}

const SELECT: &str = "SELECT customer_id, monthly_minor, currency, thresholds_json, absolute_json, enforcement_json, updated_at FROM budgets";

/// Sets a customer's budget; returns the one it replaces.
pub async fn put(tx: &mut Tx, tenant: TenantId, b: &BudgetRow) -> Result<Option<BudgetRow>> {
    let before = get_tx(tx, tenant, b.customer_id).await?;
    tx.execute(
        Q::new(
            "INSERT INTO budgets (tenant_id, customer_id, monthly_minor, currency, thresholds_json, absolute_json, enforcement_json, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, customer_id) DO UPDATE SET \
             monthly_minor = excluded.monthly_minor, currency = excluded.currency, thresholds_json = excluded.thresholds_json, \
             absolute_json = excluded.absolute_json, enforcement_json = excluded.enforcement_json, updated_at = excluded.updated_at",
        )
        .bind(tenant.0)
        .bind(b.customer_id)
        .bind(b.monthly_minor)
        .bind(&b.currency)
        .bind(&b.thresholds_json)
        .bind(&b.absolute_json)
        .bind(&b.enforcement_json)
        .bind(b.updated_at),
    )
    .await?;
    Ok(before)
}

pub async fn get(db: &Db, tenant: TenantId, customer: Uuid) -> Result<Option<BudgetRow>> {
    db.fetch_optional(
        Q::new(format!(
            "{SELECT} WHERE tenant_id = $1 AND customer_id = $2"
        ))
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

pub async fn get_tx(tx: &mut Tx, tenant: TenantId, customer: Uuid) -> Result<Option<BudgetRow>> {
    tx.fetch_optional(
        Q::new(format!(
            "{SELECT} WHERE tenant_id = $1 AND customer_id = $2"
        ))
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

struct MarkRow(String, bool);
impl FromRow for MarkRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(MarkRow(r.text("mark")?, r.i64("reached")? != 0))
    }
}

fn marks_query(tenant: TenantId, customer: Uuid, month: &str) -> Q {
    Q::new("SELECT mark, reached FROM budget_marks WHERE tenant_id = $1 AND customer_id = $2 AND month = $3")
        .bind(tenant.0)
        .bind(customer)
        .bind(month)
}

/// Each mark's last notified state in a month (`true` = reached).
pub async fn marks_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    month: &str,
) -> Result<BTreeMap<String, bool>> {
    Ok(tx
        .fetch_all::<MarkRow>(marks_query(tenant, customer, month))
        .await?
        .into_iter()
        .map(|m| (m.0, m.1))
        .collect())
}

pub async fn marks(
    db: &Db,
    tenant: TenantId,
    customer: Uuid,
    month: &str,
) -> Result<BTreeMap<String, bool>> {
    Ok(db
        .fetch_all::<MarkRow>(marks_query(tenant, customer, month))
        .await?
        .into_iter()
        .map(|m| (m.0, m.1))
        .collect())
}

pub async fn set_mark(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    month: &str,
    mark: &str,
    reached: bool,
    at: i64,
) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO budget_marks (tenant_id, customer_id, month, mark, reached, at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, customer_id, month, mark) DO UPDATE SET reached = excluded.reached, at = excluded.at",
        )
        .bind(tenant.0)
        .bind(customer)
        .bind(month)
        .bind(mark)
        .bind(i64::from(reached))
        .bind(at),
    )
    .await?;
    Ok(())
}
