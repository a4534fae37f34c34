//! The block list as units of work: adding a typed identifier (a sign-up matching an entry in
//! force is refused with reason `blocklisted`) and taking one off. Entries are kept when
//! removed, marked with who removed them and when.

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::response::blocklist::BlockKind;
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::blocklist::{self, BlockRow};
use riskdesk_storage::cases;
use riskdesk_storage::time::to_micros;
use uuid::Uuid;

use super::{actor_id, entry};
use crate::kernel::Uow;
use crate::kernel::error::AppError;

/// A block-list entry as asked for, already validated by the caller.
#[derive(Clone, Debug)]
pub struct NewBlock {
    pub kind: BlockKind,
    /// Normalised for its kind (`riskdesk_domain::response::blocklist::normalize`).
    pub value: String,
    pub reason: String,
    /// The case it comes from (the entry goes on its timeline).
    pub case: Option<Uuid>,
    /// Until when; none: until removed.
    pub expires_at: Option<Timestamp>,
}

/// Adds an entry to the block list: checks its case exists, writes the entry, audits it as
/// `blocklist.add` (its reason as the note) and, when it comes from a case, puts a
/// `blocklist` line on that case's timeline.
pub async fn add(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    new: NewBlock,
    now: Timestamp,
) -> Result<BlockRow, AppError> {
    if let Some(c) = new.case {
        cases::get_tx(tx, tenant, c).await?;
    }
    let row = BlockRow {
        id: Uuid::now_v7(),
        kind: new.kind.as_str().into(),
        value: new.value,
        reason: new.reason,
        case_id: new.case,
        created_by: actor_id(actor),
        created_at: to_micros(now),
        expires_at: new.expires_at.map(to_micros),
        removed_at: None,
        removed_by: None,
    };
    blocklist::insert(tx, tenant, &row).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "blocklist.add", "blocklist", row.id)
            .after(&row)
            .note(Some(&row.reason)),
    )
    .await?;
    if let Some(c) = row.case_id {
        entry(
            tx,
            tenant,
            c,
            "blocklist",
            actor,
            Some(&format!("blocked {} {}", row.kind, row.value)),
            Some(row.id),
            None,
            now,
        )
        .await?;
    }
    Ok(row)
}

/// Takes an entry off the block list (kept, marked removed by `actor` at `now`) and audits it
/// as `blocklist.remove` with `note`. An entry already removed is a conflict, before anything
/// is written.
pub async fn remove(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: Uuid,
    note: Option<&str>,
    now: Timestamp,
) -> Result<BlockRow, AppError> {
    let before = blocklist::get_tx(tx, tenant, id).await?;
    if before.removed_at.is_some() {
        return Err(AppError::Conflict(format!(
            "entry {id} was already removed"
        )));
    }
    let by = actor_id(actor);
    blocklist::remove(tx, tenant, id, &by, to_micros(now)).await?;
    let after = BlockRow {
        removed_at: Some(to_micros(now)),
        removed_by: Some(by),
        ..before.clone()
    };
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "blocklist.remove", "blocklist", id)
            .before(&before)
            .after(&after)
            .note(note),
    )
    .await?;
    Ok(after)
}
