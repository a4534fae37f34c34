//! Alerts: what a rule, a budget or a detector raised about a customer, with its evidence. The
//! same rule and customer within the cool-down fold into one alert with a count.

use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::{Db, Result, StorageError, Tx};

/// A stored alert. Serialises as its audit snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AlertRow {
    pub id: Uuid,
    pub customer_id: Option<Uuid>,
    pub rule: String,
    pub severity: String,
    pub status: String,
    pub title: String,
    pub evidence_json: String,
    pub count: i64,
    pub first_at: i64,
    pub last_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub note: Option<String>,
}

impl FromRow for AlertRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(AlertRow {
            id: r.uuid("id")?,
            customer_id: r.opt_uuid("customer_id")?,
            rule: r.text("rule")?,
            severity: r.text("severity")?,
            status: r.text("status")?,
            title: r.text("title")?,
            evidence_json: r.text("evidence_json")?,
            count: r.i64("count")?,
            first_at: r.i64("first_at")?,
            last_at: r.i64("last_at")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
            note: r.opt_text("note")?,
        })
    }
}

const SELECT: &str = "SELECT id, customer_id, rule, severity, status, title, evidence_json, count, first_at, last_at, created_at, updated_at, note FROM alerts";

pub struct NewAlert<'a> {
    pub customer_id: Option<Uuid>,
    pub rule: &'a str,
    pub severity: &'a str,
    pub title: &'a str,
    pub evidence_json: String,
    /// When what it reports happened (µs).
    pub at: i64,
    /// A later occurrence within this many µs of the last one folds into the same alert.
    pub cooldown_micros: i64,
    /// Occurrences this raise stands for (hits of one batch folded before writing), ≥ 1.
    pub occurrences: i64,
    /// When the last of them happened (µs); `at` for a single occurrence.
    pub last_at: i64,
}

/// Raises an alert or folds it into the open one of the same rule and customer still inside its
/// cool-down. Returns the alert and whether it is new.
pub async fn raise(
    tx: &mut Tx,
    tenant: TenantId,
    a: NewAlert<'_>,
    now: i64,
) -> Result<(AlertRow, bool)> {
    if a.cooldown_micros > 0 {
        let open: Option<AlertRow> = tx
            .fetch_optional(
                Q::new(format!(
                    "{SELECT} WHERE tenant_id = $1 AND customer_id IS NOT DISTINCT FROM $2 AND rule = $3 AND status <> 'dismissed' \
                     AND last_at >= $4 ORDER BY last_at DESC LIMIT 1"
                ))
                .bind(tenant.0)
                .bind(a.customer_id)
                .bind(a.rule)
                .bind(a.at - a.cooldown_micros),
            )
            .await?;
        if let Some(open) = open {
            let last_at = open.last_at.max(a.last_at);
            let n = a.occurrences.max(1);
            tx.execute(
                Q::new(
                    "UPDATE alerts SET count = count + $6, last_at = $3, evidence_json = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(open.id)
                .bind(last_at)
                .bind(&a.evidence_json)
                .bind(now)
                .bind(n),
            )
            .await?;
            let row = AlertRow {
                count: open.count + n,
                last_at,
                evidence_json: a.evidence_json,
                updated_at: now,
                ..open
            };
            return Ok((row, false));
        }
    }
    let row = AlertRow {
        id: Uuid::now_v7(),
        customer_id: a.customer_id,
        rule: a.rule.to_owned(),
        severity: a.severity.to_owned(),
        status: "open".into(),
        title: a.title.to_owned(),
        evidence_json: a.evidence_json,
        count: a.occurrences.max(1),
        first_at: a.at,
        last_at: a.last_at.max(a.at),
        created_at: now,
        updated_at: now,
        note: None,
    };
    tx.execute(
        Q::new(
            "INSERT INTO alerts (id, tenant_id, customer_id, rule, severity, status, title, evidence_json, count, first_at, last_at, created_at, updated_at, note) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(row.id)
        .bind(tenant.0)
        .bind(row.customer_id)
        .bind(&row.rule)
        .bind(&row.severity)
        .bind(&row.status)
        .bind(&row.title)
        .bind(&row.evidence_json)
        .bind(row.count)
        .bind(row.first_at)
        .bind(row.last_at)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(&row.note),
    )
    .await?;
    Ok((row, true))
}

pub async fn get(db: &Db, tenant: TenantId, id: Uuid) -> Result<AlertRow> {
    db.fetch_optional(
        Q::new(format!("{SELECT} WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("alert"))
}

pub async fn get_tx(tx: &mut Tx, tenant: TenantId, id: Uuid) -> Result<AlertRow> {
    tx.fetch_optional(
        Q::new(format!("{SELECT} WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("alert"))
}

/// Sets an alert's status and note; returns (before, after).
pub async fn set_status(
    tx: &mut Tx,
    tenant: TenantId,
    id: Uuid,
    status: &str,
    note: Option<&str>,
    now: i64,
) -> Result<(AlertRow, AlertRow)> {
    let before = get_tx(tx, tenant, id).await?;
    tx.execute(
        Q::new("UPDATE alerts SET status = $3, note = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(id)
            .bind(status)
            .bind(note)
            .bind(now),
    )
    .await?;
    let after = AlertRow {
        status: status.to_owned(),
        note: note.map(str::to_owned),
        updated_at: now,
        ..before.clone()
    };
    Ok((before, after))
}

#[derive(Clone, Debug, Default)]
pub struct AlertFilter {
    pub customer_id: Option<Uuid>,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub rule: Option<String>,
    /// µs bounds on `last_at`.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Newest first: alerts with an id below this one.
    pub before_id: Option<Uuid>,
}

/// Alerts, newest first.
pub async fn list(db: &Db, tenant: TenantId, f: &AlertFilter, limit: u32) -> Result<Vec<AlertRow>> {
    db.fetch_all(
        Q::new(format!(
            "{SELECT} WHERE tenant_id = $1 AND ($2 IS NULL OR customer_id = $2) AND ($3 IS NULL OR severity = $3) \
             AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR rule = $5) AND ($6 IS NULL OR last_at >= $6) \
             AND ($7 IS NULL OR last_at < $7) AND ($8 IS NULL OR id < $8) ORDER BY id DESC LIMIT $9"
        ))
        .bind(tenant.0)
        .bind(f.customer_id)
        .bind(f.severity.as_deref())
        .bind(f.status.as_deref())
        .bind(f.rule.as_deref())
        .bind(f.since)
        .bind(f.until)
        .bind(f.before_id)
        .bind(i64::from(limit)),
    )
    .await
}

/// How many open alerts of high or critical severity a customer has.
pub async fn open_serious_count_tx(tx: &mut Tx, tenant: TenantId, customer: Uuid) -> Result<i64> {
    Ok(tx
        .fetch_optional::<i64>(
            Q::new(
                "SELECT COUNT(*) AS n FROM alerts WHERE tenant_id = $1 AND customer_id = $2 AND status = 'open' \
                 AND severity IN ('high', 'critical')",
            )
            .bind(tenant.0)
            .bind(customer),
        )
        .await?
        .unwrap_or(0))
}

/// Whether an alert of `rule` for `customer` was raised for the instant `at` (µs): the first
/// or the last occurrence of an alert (dismissed ones included) is `at`.
pub async fn raised_for(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    rule: &str,
    at: i64,
) -> Result<bool> {
    Ok(tx
        .fetch_optional::<i64>(
            Q::new(
                "SELECT COUNT(*) AS n FROM alerts WHERE tenant_id = $1 AND customer_id = $2 AND rule = $3 \
                 AND (first_at = $4 OR last_at = $4)",
            )
            .bind(tenant.0)
            .bind(customer)
            .bind(rule)
            .bind(at),
        )
        .await?
        .unwrap_or(0)
        > 0)
}
