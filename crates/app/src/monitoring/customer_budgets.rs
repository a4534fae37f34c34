//! Customers' budgets as units of work: setting one (and evaluating it at once).

use jiff::Timestamp;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::monitoring::budget::{Budget, Month};
use riskdesk_domain::{CustomerId, TenantId};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::budgets::{self, BudgetRow};
use riskdesk_storage::customers;
use riskdesk_storage::time::to_micros;

use crate::kernel::Uow;
use crate::kernel::error::AppError;
use crate::monitoring::{StoredEnforcement, evaluate_budget};

/// Sets a customer's budget, replacing the previous one (audited as `customer.budget`, with the
/// previous row if there was one), then evaluates it for the current month: the new budget may
/// already be crossed. Marks already notified this month stay notified. Returns the stored row.
pub async fn set_budget(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: CustomerId,
    budget: &Budget,
    now: Timestamp,
) -> Result<BudgetRow, AppError> {
    let row = BudgetRow {
        customer_id: customer.0,
        monthly_minor: budget.monthly.minor,
        currency: budget.monthly.currency.code().to_owned(),
        thresholds_json: serde_json::to_string(&budget.thresholds_pct)
            .map_err(|e| AppError::Internal(e.to_string()))?,
        absolute_json: serde_json::to_string(
            &budget.absolute.iter().map(|m| m.minor).collect::<Vec<_>>(),
        )
        .map_err(|e| AppError::Internal(e.to_string()))?,
        enforcement_json: budget
            .enforcement
            .map(|e| {
                serde_json::to_string(&StoredEnforcement {
                    at_percent: e.at_percent,
                    action: e.action.as_str().to_owned(),
                    mode: e.mode.as_str().to_owned(),
                })
            })
            .transpose()
            .map_err(|e| AppError::Internal(e.to_string()))?,
        updated_at: to_micros(now),
    };
    customers::get_tx(tx, tenant, customer).await?;
    let before = budgets::put(tx, tenant, &row).await?;
    let mut draft = AuditDraft::new(actor, "customer.budget", "customer", customer).after(&row);
    if let Some(b) = &before {
        draft = draft.before(b);
    }
    audit::append(tx, tenant, now, draft).await?;
    evaluate_budget(tx, tenant, customer.0, &Month::of(now), now, now).await?;
    Ok(row)
}
