//! Triage of alerts as units of work: acknowledging, dismissing, reopening.

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use riskdesk_domain::audit::Actor;
use riskdesk_storage::alerts::{self, AlertRow};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::time::to_micros;
use uuid::Uuid;

use crate::kernel::Uow;
use crate::kernel::error::AppError;

/// What a person does with an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Triage {
    Acknowledge,
    Dismiss,
    Reopen,
}

impl Triage {
    /// `acknowledge`, `dismiss` or `reopen`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "acknowledge" => Some(Triage::Acknowledge),
            "dismiss" => Some(Triage::Dismiss),
            "reopen" => Some(Triage::Reopen),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Triage::Acknowledge => "acknowledge",
            Triage::Dismiss => "dismiss",
            Triage::Reopen => "reopen",
        }
    }

    /// The alert's status afterwards.
    pub fn status(self) -> &'static str {
        match self {
            Triage::Acknowledge => "acknowledged",
            Triage::Dismiss => "dismissed",
            Triage::Reopen => "open",
        }
    }
}

/// Sets an alert's status as `triage` says, with `note`, audited as `alert.<triage>` with the
/// status and note before and after. Returns the alert as it is now.
pub async fn triage_alert(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: Uuid,
    triage: Triage,
    note: Option<&str>,
    now: Timestamp,
) -> Result<AlertRow, AppError> {
    let (before, after) =
        alerts::set_status(tx, tenant, id, triage.status(), note, to_micros(now)).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, &format!("alert.{}", triage.as_str()), "alert", id)
            .before(&serde_json::json!({"status": before.status, "note": before.note}))
            .after(&serde_json::json!({"status": after.status, "note": after.note}))
            .note(note),
    )
    .await?;
    Ok(after)
}
