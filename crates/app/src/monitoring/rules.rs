//! Detection rules as units of work: creating, changing, adding the shipped ones. Each drops
//! the tenant's compiled rules from the detector's cache, so the next batch sees the change.

use std::sync::Arc;

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use riskdesk_domain::audit::Actor;
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::rules::{self, RuleRow};
use riskdesk_storage::time::to_micros;
use uuid::Uuid;

use crate::kernel::Uow;
use crate::kernel::error::AppError;
use crate::monitoring::builtin_rules;
use crate::monitoring::detect::Detector;

/// Stores a new rule (`row` checked, version 1) created `now`, audited as `rule.create`. The
/// tenant's compiled rules are dropped from the cache when the unit of work ends, whether it
/// commits or not. Returns the stored row.
pub async fn create_rule(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    detector: &Arc<Detector>,
    mut row: RuleRow,
    now: Timestamp,
) -> Result<RuleRow, AppError> {
    row.created_at = to_micros(now);
    row.updated_at = row.created_at;
    rules::insert(tx, tenant, &row).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "rule.create", "rule", row.id).after(&row),
    )
    .await?;
    let d = detector.clone();
    tx.after_commit(move || d.invalidate(tenant));
    let d = detector.clone();
    tx.on_rollback(move || d.invalidate(tenant));
    Ok(row)
}

/// Changes rule `id` to `checked` (its name, scope, condition, severity, cool-down, mode and
/// action) as a new version: same id, built-in key and creation time, version + 1, updated
/// `now`. Audited as `rule.update` with both versions. The tenant's compiled rules are dropped
/// from the cache once the unit of work has committed. Returns the new version.
pub async fn update_rule(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    detector: &Arc<Detector>,
    id: Uuid,
    checked: RuleRow,
    now: Timestamp,
) -> Result<RuleRow, AppError> {
    let before = rules::get_tx(tx, tenant, id).await?;
    let after = RuleRow {
        id,
        builtin: before.builtin.clone(),
        version: before.version + 1,
        created_at: before.created_at,
        updated_at: to_micros(now),
        ..checked
    };
    rules::update(tx, tenant, &after).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "rule.update", "rule", id)
            .before(&before)
            .after(&after),
    )
    .await?;
    let d = detector.clone();
    tx.after_commit(move || d.invalidate(tenant));
    Ok(after)
}

/// Adds the shipped detectors the tenant does not have yet ([`builtin_rules::ensure`]); if it
/// added any, the tenant's compiled rules are dropped from the cache once the unit of work has
/// committed. Returns how many were added (none: there is nothing to commit).
pub async fn ensure_builtins(
    tx: &mut Uow,
    tenant: TenantId,
    detector: &Arc<Detector>,
    now: Timestamp,
) -> Result<u32, AppError> {
    let added = builtin_rules::ensure(tx, tenant, now).await?;
    if added > 0 {
        let d = detector.clone();
        tx.after_commit(move || d.invalidate(tenant));
    }
    Ok(added)
}
