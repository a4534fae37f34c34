//! Alerts as a capability shared by every detector: raising (or folding into the open alert
//! of the same rule and customer) with its audit entry, the `alert.raised` event that response
//! reacts to (a case), and the partner's `alert.raised` webhook through the outbox; triage
//! (acknowledge, dismiss, reopen).

pub mod triage;

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use riskdesk_domain::audit::Actor;
use riskdesk_storage::alerts::{self, AlertRow, NewAlert};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::time::to_micros;

use crate::kernel::{AppError, Event, Uow};

/// Raises (or folds) an alert and audits it.
pub async fn raise(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    a: NewAlert<'_>,
    now: Timestamp,
) -> Result<AlertRow, AppError> {
    let (row, new) = alerts::raise(tx, tenant, a, to_micros(now)).await?;
    let draft = AuditDraft::new(actor, if new { "alert.raise" } else { "alert.fold" }, "alert", row.id)
        .after(&serde_json::json!({"rule": row.rule, "severity": row.severity, "count": row.count, "customer_id": row.customer_id}));
    audit::append(tx, tenant, now, draft).await?;
    if new {
        // Staff and partner systems hear of a new alert through the outbox (a fold does not
        // repeat it).
        let endpoints = riskdesk_storage::outbox::endpoints_tx(tx, tenant).await?;
        // A new alert joins its customer's open case, or opens one (by severity): `wiring`.
        tx.emit(Event::AlertRaised {
            tenant,
            at: now,
            actor,
            alert: &row,
            endpoints: &endpoints,
        })
        .await?;
        if !endpoints.is_empty() {
            crate::kernel::outbox::webhooks(
                tx,
                tenant,
                &endpoints,
                row.customer_id,
                "alert.raised",
                &format!("alert:{}", row.id),
                serde_json::json!({
                    "alert_id": row.id, "rule": row.rule, "severity": row.severity, "title": row.title,
                    "customer_id": row.customer_id,
                    "evidence": serde_json::from_str::<serde_json::Value>(&row.evidence_json).unwrap_or_default(),
                }),
                now,
            )
            .await?;
        }
    }
    Ok(row)
}
