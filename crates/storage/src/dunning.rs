//! The dunning policy, per-customer overrides, the steps sent per invoice and the levers
//! dunning pulled on subscriptions.

use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::{Db, Result, Tx};

struct PolicyJson(String);
impl FromRow for PolicyJson {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(PolicyJson(r.text("policy_json")?))
    }
}

/// The tenant's policy (JSON), if one was set.
pub async fn policy(db: &Db, tenant: TenantId) -> Result<Option<String>> {
    Ok(db
        .fetch_optional::<PolicyJson>(
            Q::new("SELECT policy_json FROM dunning_policies WHERE tenant_id = $1").bind(tenant.0),
        )
        .await?
        .map(|p| p.0))
}

pub async fn policy_tx(tx: &mut Tx, tenant: TenantId) -> Result<Option<String>> {
    Ok(tx
        .fetch_optional::<PolicyJson>(
            Q::new("SELECT policy_json FROM dunning_policies WHERE tenant_id = $1").bind(tenant.0),
        )
        .await?
        .map(|p| p.0))
}

/// Sets the tenant's policy; every open invoice is looked at again by the next run.
pub async fn put_policy(tx: &mut Tx, tenant: TenantId, json: &str, now: i64) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO dunning_policies (tenant_id, policy_json, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET policy_json = excluded.policy_json, updated_at = excluded.updated_at",
        )
        .bind(tenant.0)
        .bind(json)
        .bind(now),
    )
    .await?;
    recheck_all(tx, tenant).await
}

/// Marks every open invoice of the tenant for the next run (after a policy change).
pub async fn recheck_all(tx: &mut Tx, tenant: TenantId) -> Result<()> {
    tx.execute(
        Q::new("UPDATE invoices SET next_check_day = -2147483648 WHERE tenant_id = $1 AND open_minor > 0")
            .bind(tenant.0),
    )
    .await?;
    Ok(())
}

/// Marks one customer's open invoices for the next run (after an override change).
pub async fn recheck_customer(tx: &mut Tx, tenant: TenantId, customer: Uuid) -> Result<()> {
    tx.execute(
        Q::new(
            "UPDATE invoices SET next_check_day = -2147483648 WHERE tenant_id = $1 AND customer_id = $2 AND open_minor > 0",
        )
        .bind(tenant.0)
        .bind(customer),
    )
    .await?;
    Ok(())
}

/// A customer's exceptions to the tenant's ladder. Serialises as its audit snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OverrideRow {
    pub customer_id: Uuid,
    /// A whole policy for this customer instead of the tenant's.
    pub policy_json: Option<String>,
    /// Notices continue; levers never fire (and are undone).
    pub enforcement_off: bool,
    /// No notices and no levers at all.
    pub excluded: bool,
    /// Manual hold of the whole account until this day (exclusive).
    pub hold_until_day: Option<i32>,
    pub hold_reason: Option<String>,
    pub updated_at: i64,
}

impl FromRow for OverrideRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(OverrideRow {
            customer_id: r.uuid("customer_id")?,
            policy_json: r.opt_text("policy_json")?,
            enforcement_off: r.i64("enforcement_off")? != 0,
            excluded: r.i64("excluded")? != 0,
            hold_until_day: r.opt_i64("hold_until_day")?.map(|d| d as i32),
            hold_reason: r.opt_text("hold_reason")?,
            updated_at: r.i64("updated_at")?,
        })
    }
}

const OVERRIDE_COLS: &str =
    "customer_id, policy_json, enforcement_off, excluded, hold_until_day, hold_reason, updated_at";

pub async fn override_of(db: &Db, tenant: TenantId, customer: Uuid) -> Result<Option<OverrideRow>> {
    db.fetch_optional(
        Q::new(format!(
            "SELECT {OVERRIDE_COLS} FROM dunning_overrides WHERE tenant_id = $1 AND customer_id = $2"
        ))
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

pub async fn overrides_of_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[Uuid],
) -> Result<Vec<OverrideRow>> {
    if customers.is_empty() {
        return Ok(vec![]);
    }
    let (cond, args) = crate::query::any_uuid(tx.backend(), "customer_id", 2, customers);
    let mut q = Q::new(format!(
        "SELECT {OVERRIDE_COLS} FROM dunning_overrides WHERE tenant_id = $1 AND {cond}",
    ))
    .bind(tenant.0);
    q.args.extend(args);
    tx.fetch_all(q).await
}

pub async fn put_override(
    tx: &mut Tx,
    tenant: TenantId,
    o: &OverrideRow,
) -> Result<Option<OverrideRow>> {
    let before: Option<OverrideRow> = tx
        .fetch_optional(
            Q::new(format!(
                "SELECT {OVERRIDE_COLS} FROM dunning_overrides WHERE tenant_id = $1 AND customer_id = $2"
            ))
            .bind(tenant.0)
            .bind(o.customer_id),
        )
        .await?;
    tx.execute(
        Q::new(
            "INSERT INTO dunning_overrides (tenant_id, customer_id, policy_json, enforcement_off, excluded, hold_until_day, hold_reason, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, customer_id) DO UPDATE SET \
             policy_json = excluded.policy_json, enforcement_off = excluded.enforcement_off, excluded = excluded.excluded, \
             hold_until_day = excluded.hold_until_day, hold_reason = excluded.hold_reason, updated_at = excluded.updated_at",
        )
        .bind(tenant.0)
        .bind(o.customer_id)
        .bind(&o.policy_json)
        .bind(i64::from(o.enforcement_off))
        .bind(i64::from(o.excluded))
        .bind(o.hold_until_day.map(i64::from))
        .bind(&o.hold_reason)
        .bind(o.updated_at),
    )
    .await?;
    recheck_customer(tx, tenant, o.customer_id).await?;
    Ok(before)
}

/// A step sent for an invoice.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StepRow {
    pub invoice_id: Uuid,
    pub step: String,
    pub customer_id: Uuid,
    pub sent_day: i32,
    pub at: i64,
}

impl FromRow for StepRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(StepRow {
            invoice_id: r.uuid("invoice_id")?,
            step: r.text("step")?,
            customer_id: r.uuid("customer_id")?,
            sent_day: r.i64("sent_day")? as i32,
            at: r.i64("at")?,
        })
    }
}

pub async fn steps_of_customers_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[Uuid],
) -> Result<Vec<StepRow>> {
    if customers.is_empty() {
        return Ok(vec![]);
    }
    let (cond, args) = crate::query::any_uuid(tx.backend(), "customer_id", 2, customers);
    let mut q = Q::new(format!(
        "SELECT invoice_id, step, customer_id, sent_day, at FROM dunning_steps WHERE tenant_id = $1 AND {cond}",
    ))
    .bind(tenant.0);
    q.args.extend(args);
    tx.fetch_all(q).await
}

pub async fn steps_of_customer(db: &Db, tenant: TenantId, customer: Uuid) -> Result<Vec<StepRow>> {
    db.fetch_all(
        Q::new(
            "SELECT invoice_id, step, customer_id, sent_day, at FROM dunning_steps WHERE tenant_id = $1 AND customer_id = $2 \
             ORDER BY sent_day, at",
        )
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

/// Records sent steps, many rows per statement (a round trip per 1,000 steps on PostgreSQL
/// instead of one per step).
pub async fn insert_steps(tx: &mut Tx, tenant: TenantId, steps: &[StepRow]) -> Result<()> {
    if tx.backend() == crate::Backend::Postgres && !steps.is_empty() {
        tx.execute(
            Q::new(
                "INSERT INTO dunning_steps (tenant_id, invoice_id, step, customer_id, sent_day, at) \
                 SELECT $1, v.i, v.s, v.c, v.d, v.a FROM unnest($2::uuid[], $3::text[], $4::uuid[], $5::int8[], $6::int8[]) \
                 AS v(i, s, c, d, a)",
            )
            .bind(tenant.0)
            .bind(steps.iter().map(|s| s.invoice_id).collect::<Vec<Uuid>>())
            .bind(steps.iter().map(|s| Some(s.step.clone())).collect::<Vec<Option<String>>>())
            .bind(steps.iter().map(|s| s.customer_id).collect::<Vec<Uuid>>())
            .bind(steps.iter().map(|s| Some(i64::from(s.sent_day))).collect::<Vec<Option<i64>>>())
            .bind(steps.iter().map(|s| Some(s.at)).collect::<Vec<Option<i64>>>()),
        )
        .await?;
        return Ok(());
    }
    for chunk in steps.chunks(1000) {
        let values = (0..chunk.len())
            .map(|i| format!("($1, {})", crate::query::placeholders(2 + 5 * i, 5)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut q = Q::new(format!(
            "INSERT INTO dunning_steps (tenant_id, invoice_id, step, customer_id, sent_day, at) VALUES {values}"
        ))
        .bind(tenant.0);
        for s in chunk {
            q = q
                .bind(s.invoice_id)
                .bind(&s.step)
                .bind(s.customer_id)
                .bind(i64::from(s.sent_day))
                .bind(s.at);
        }
        tx.execute(q).await?;
    }
    Ok(())
}

/// A subscription state dunning set.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LeverRow {
    pub subscription_id: Uuid,
    pub customer_id: Uuid,
    pub lever: String,
    pub status_set: String,
    pub applied_at: i64,
}

impl FromRow for LeverRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(LeverRow {
            subscription_id: r.uuid("subscription_id")?,
            customer_id: r.uuid("customer_id")?,
            lever: r.text("lever")?,
            status_set: r.text("status_set")?,
            applied_at: r.i64("applied_at")?,
        })
    }
}

pub async fn levers_of_customers_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[Uuid],
) -> Result<Vec<LeverRow>> {
    if customers.is_empty() {
        return Ok(vec![]);
    }
    let (cond, args) = crate::query::any_uuid(tx.backend(), "customer_id", 2, customers);
    let mut q = Q::new(format!(
        "SELECT subscription_id, customer_id, lever, status_set, applied_at FROM dunning_levers WHERE tenant_id = $1 AND {cond}",
    ))
    .bind(tenant.0);
    q.args.extend(args);
    tx.fetch_all(q).await
}

pub async fn levers_of_customer(
    db: &Db,
    tenant: TenantId,
    customer: Uuid,
) -> Result<Vec<LeverRow>> {
    db.fetch_all(
        Q::new(
            "SELECT subscription_id, customer_id, lever, status_set, applied_at FROM dunning_levers WHERE tenant_id = $1 AND customer_id = $2",
        )
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

pub async fn put_lever(tx: &mut Tx, tenant: TenantId, l: &LeverRow) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO dunning_levers (tenant_id, subscription_id, customer_id, lever, status_set, applied_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, subscription_id) DO UPDATE SET lever = excluded.lever, status_set = excluded.status_set, applied_at = excluded.applied_at",
        )
        .bind(tenant.0)
        .bind(l.subscription_id)
        .bind(l.customer_id)
        .bind(&l.lever)
        .bind(&l.status_set)
        .bind(l.applied_at),
    )
    .await?;
    Ok(())
}

pub async fn delete_lever(tx: &mut Tx, tenant: TenantId, subscription: Uuid) -> Result<()> {
    tx.execute(
        Q::new("DELETE FROM dunning_levers WHERE tenant_id = $1 AND subscription_id = $2")
            .bind(tenant.0)
            .bind(subscription),
    )
    .await?;
    Ok(())
}

struct CustomerIdRow(Uuid);
impl FromRow for CustomerIdRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(CustomerIdRow(r.uuid("customer_id")?))
    }
}

/// The customers a run must look at on `day`: those with an open invoice whose next check is
/// due — read through the partial index on `next_check_day`, so customers with nothing due
/// (blocked or not) cost nothing. Levers and purchase blocks need no daily look of their own:
/// whatever can lift one (a payment, credit, write-off, dispute, override or policy change)
/// runs the ladder for that customer in its own unit of work, and a hold's end is its
/// invoices' next check. Sorted, so work partitions by customer.
pub async fn customers_due(db: &Db, tenant: TenantId, day: i32) -> Result<Vec<Uuid>> {
    let rows: Vec<CustomerIdRow> = db
        .fetch_all(
            Q::new(
                "SELECT DISTINCT customer_id FROM invoices WHERE tenant_id = $1 AND next_check_day IS NOT NULL AND next_check_day <= $2",
            )
            .bind(tenant.0)
            .bind(i64::from(day)),
        )
        .await?;
    let mut out: Vec<Uuid> = rows.into_iter().map(|r| r.0).collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Sets when each invoice next needs the ladder.
pub async fn set_next_checks(
    tx: &mut Tx,
    tenant: TenantId,
    checks: &[(Uuid, Option<i32>)],
) -> Result<()> {
    if tx.backend() == crate::Backend::Postgres {
        // One statement text for any count (prepared once), and a plan that looks each
        // invoice up by its key (a `VALUES` list of hundreds is hash-joined against the
        // tenant's whole table).
        for chunk in checks.chunks(10_000) {
            let ids: Vec<Uuid> = chunk.iter().map(|c| c.0).collect();
            let days: Vec<Option<i64>> = chunk.iter().map(|c| c.1.map(i64::from)).collect();
            tx.execute(
                Q::new(
                    "UPDATE invoices SET next_check_day = v.d FROM unnest($2::uuid[], $3::int8[]) AS v(id, d) \
                     WHERE invoices.tenant_id = $1 AND invoices.id = v.id",
                )
                .bind(tenant.0)
                .bind(ids)
                .bind(days),
            )
            .await?;
        }
        return Ok(());
    }
    // One statement per 1,000 invoices (`VALUES` columns are `column1`, `column2`).
    for chunk in checks.chunks(1000) {
        let values = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 + 2 * i, 3 + 2 * i))
            .collect::<Vec<_>>()
            .join(", ");
        let mut q = Q::new(format!(
            "UPDATE invoices SET next_check_day = v.column2 FROM (VALUES {values}) AS v \
             WHERE invoices.tenant_id = $1 AND invoices.id = v.column1"
        ))
        .bind(tenant.0);
        for (id, day) in chunk {
            q = q.bind(*id).bind(day.map(i64::from));
        }
        tx.execute(q).await?;
    }
    Ok(())
}
