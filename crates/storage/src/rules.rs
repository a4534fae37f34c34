//! Detection rules and the hits of rules in shadow mode.

use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::{Db, Result, StorageError, Tx, conflict_on_unique};

/// A stored rule. Serialises as its audit snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleRow {
    pub id: Uuid,
    pub name: String,
    pub scope: String,
    pub condition: String,
    pub severity: String,
    pub cooldown_seconds: i64,
    pub mode: String,
    pub action_json: Option<String>,
    /// The built-in detector this rule was shipped as, if any.
    pub builtin: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl FromRow for RuleRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(RuleRow {
            id: r.uuid("id")?,
            name: r.text("name")?,
            scope: r.text("scope")?,
            condition: r.text("condition")?,
            severity: r.text("severity")?,
            cooldown_seconds: r.i64("cooldown_seconds")?,
            mode: r.text("mode")?,
            action_json: r.opt_text("action_json")?,
            builtin: r.opt_text("builtin")?,
            version: r.i64("version")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
        })
    }
}

const SELECT: &str = "SELECT id, name, scope, condition, severity, cooldown_seconds, mode, action_json, builtin, version, created_at, updated_at FROM rules";

pub async fn insert(tx: &mut Tx, tenant: TenantId, r: &RuleRow) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO rules (id, tenant_id, name, scope, condition, severity, cooldown_seconds, mode, action_json, builtin, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(r.id)
        .bind(tenant.0)
        .bind(&r.name)
        .bind(&r.scope)
        .bind(&r.condition)
        .bind(&r.severity)
        .bind(r.cooldown_seconds)
        .bind(&r.mode)
        .bind(&r.action_json)
        .bind(&r.builtin)
        .bind(r.version)
        .bind(r.created_at)
        .bind(r.updated_at),
    )
    .await
    .map_err(|e| conflict_on_unique(e, || format!("a rule named '{}' already exists", r.name)))?;
    Ok(())
}

/// Replaces a rule's definition (the caller has bumped `version`).
pub async fn update(tx: &mut Tx, tenant: TenantId, r: &RuleRow) -> Result<()> {
    tx.execute(
        Q::new(
            "UPDATE rules SET name = $3, scope = $4, condition = $5, severity = $6, cooldown_seconds = $7, mode = $8, \
             action_json = $9, version = $10, updated_at = $11 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(r.id)
        .bind(&r.name)
        .bind(&r.scope)
        .bind(&r.condition)
        .bind(&r.severity)
        .bind(r.cooldown_seconds)
        .bind(&r.mode)
        .bind(&r.action_json)
        .bind(r.version)
        .bind(r.updated_at),
    )
    .await
    .map_err(|e| conflict_on_unique(e, || format!("a rule named '{}' already exists", r.name)))?;
    Ok(())
}

pub async fn get(db: &Db, tenant: TenantId, id: Uuid) -> Result<RuleRow> {
    db.fetch_optional(
        Q::new(format!("{SELECT} WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("rule"))
}

pub async fn get_tx(tx: &mut Tx, tenant: TenantId, id: Uuid) -> Result<RuleRow> {
    tx.fetch_optional(
        Q::new(format!("{SELECT} WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("rule"))
}

pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<RuleRow>> {
    db.fetch_all(Q::new(format!("{SELECT} WHERE tenant_id = $1 ORDER BY name")).bind(tenant.0))
        .await
}

pub async fn list_tx(tx: &mut Tx, tenant: TenantId) -> Result<Vec<RuleRow>> {
    tx.fetch_all(Q::new(format!("{SELECT} WHERE tenant_id = $1 ORDER BY name")).bind(tenant.0))
        .await
}

/// A hit of a rule in shadow mode (a repeat for the same event is ignored).
pub async fn record_hit(
    tx: &mut Tx,
    tenant: TenantId,
    rule: Uuid,
    version: i64,
    customer: Uuid,
    event_id: &str,
    at: i64,
    evidence_json: &str,
) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO rule_hits (tenant_id, rule_id, version, customer_id, event_id, at, evidence_json) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, rule_id, event_id) DO NOTHING",
        )
        .bind(tenant.0)
        .bind(rule)
        .bind(version)
        .bind(customer)
        .bind(event_id)
        .bind(at)
        .bind(evidence_json),
    )
    .await?;
    Ok(())
}

/// The number of recorded (shadow) hits of a rule.
pub async fn hit_count(db: &Db, tenant: TenantId, rule: Uuid) -> Result<i64> {
    Ok(db
        .fetch_optional::<i64>(
            Q::new("SELECT COUNT(*) AS n FROM rule_hits WHERE tenant_id = $1 AND rule_id = $2")
                .bind(tenant.0)
                .bind(rule),
        )
        .await?
        .unwrap_or(0))
}

/// On PostgreSQL, makes the tenant's units of work that create its built-in rules wait for
/// each other (a transaction-scoped advisory lock), so concurrent first requests of a tenant
/// create each rule once: the later one reads what the earlier committed. SQLite has a single
/// writer: nothing to do.
pub async fn lock_builtins(tx: &mut Tx, tenant: TenantId) -> Result<()> {
    tx.advisory_xact_lock(format!("builtin_rules|{}", tenant.0))
        .await
}
