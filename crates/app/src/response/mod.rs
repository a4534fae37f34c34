//! Cases and actions as units of work: opening a case (or attaching to the customer's open
//! one) from alerts, sign-ups in review and provider notices; status, assignee and comments;
//! taking an action (applied here at once, its provider call queued on the action row) or
//! proposing one for approval (maker-checker); the SLA pass.

use jiff::Timestamp;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::response::action::{ProviderCall, check_decider};
use riskdesk_domain::response::case::{change_status, max_severity, severity_rank};
use riskdesk_domain::response::{ActionKind, ActionStatus, CaseKind, CaseStatus};
use riskdesk_domain::{CloudInstance, CustomerId, Reason, SubscriptionId, TenantId};
use riskdesk_storage::actions::{self, ActionRow};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::cases::{self, CaseRow, EntryRow};
use riskdesk_storage::outbox::EndpointRow;
use riskdesk_storage::time::to_micros;
use riskdesk_storage::{customers, provider, subscriptions};
use std::sync::Arc;
use uuid::Uuid;

use crate::kernel::error::AppError;
use crate::kernel::{Ctx, Uow};

pub mod blocklist;
pub mod preview;
pub use crate::kernel::settings::ResponseSettings;

fn actor_id(a: &Actor) -> String {
    format!("{}:{}", a.kind, a.name)
}

/// What opens a case or joins one.
pub struct CaseSource<'a> {
    pub kind: CaseKind,
    pub severity: &'a str,
    pub title: &'a str,
    /// The timeline entry's kind: alert, signup, notice, provider_event, action.
    pub entry_kind: &'a str,
    pub ref_id: Option<Uuid>,
    pub data: Option<serde_json::Value>,
}

/// Opens a case for the customer (or sign-up), or attaches to its open one: a more urgent
/// source raises the case's severity and may bring its deadline forward. Returns the case and
/// whether it is new.
pub async fn open_or_attach(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: Option<Uuid>,
    signup: Option<Uuid>,
    src: CaseSource<'_>,
    now: Timestamp,
) -> Result<(CaseRow, bool), AppError> {
    open_or_attach_with(tx, tenant, actor, customer, signup, src, None, now).await
}

/// [`open_or_attach`] with the tenant's webhook endpoints already read in this unit of work
/// (the alert path has them: reading them again is a round trip on PostgreSQL).
#[allow(clippy::too_many_arguments)]
pub async fn open_or_attach_with(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: Option<Uuid>,
    signup: Option<Uuid>,
    src: CaseSource<'_>,
    endpoints: Option<&[EndpointRow]>,
    now: Timestamp,
) -> Result<(CaseRow, bool), AppError> {
    let ctx = tx.ctx().clone();
    let cfg = &ctx.response;
    let at = to_micros(now);
    cases::lock_open_case(tx, tenant, customer, signup).await?;
    let existing = match (customer, signup) {
        (Some(c), _) => cases::open_for_customer_tx(tx, tenant, c).await?,
        (None, Some(s)) => cases::open_for_signup_tx(tx, tenant, s).await?,
        (None, None) => None,
    };
    let (case, new) = match existing {
        Some(before) => {
            let mut after = before.clone();
            after.severity = max_severity(&before.severity, src.severity).to_owned();
            after.due_at = before.due_at.min(cfg.sla.due(src.kind, src.severity, at));
            if after != before {
                after.updated_at = at;
                cases::update(tx, tenant, &after).await?;
                audit::append(
                    tx,
                    tenant,
                    now,
                    AuditDraft::new(actor, "case.escalate", "case", after.id)
                        .before(&before)
                        .after(&after),
                )
                .await?;
            }
            (after, false)
        }
        None => {
            let c = CaseRow {
                id: Uuid::now_v7(),
                customer_id: customer,
                signup_id: signup,
                kind: src.kind.as_str().into(),
                severity: src.severity.into(),
                status: CaseStatus::Open.as_str().into(),
                title: src.title.into(),
                assignee: None,
                opened_at: at,
                due_at: cfg.sla.due(src.kind, src.severity, at),
                sla_notified_at: None,
                closed_at: None,
                updated_at: at,
            };
            cases::insert(tx, tenant, &c).await?;
            audit::append(
                tx,
                tenant,
                now,
                AuditDraft::new(actor, "case.open", "case", c.id).after(&c),
            )
            .await?;
            notify_staff_with(
                tx,
                tenant,
                endpoints,
                customer,
                "case.opened",
                &format!("case:{}:opened", c.id),
                &format!("Case opened: {}", c.title),
                serde_json::json!({"case_id": c.id, "kind": c.kind, "severity": c.severity, "title": c.title,
                                   "customer_id": c.customer_id, "due_at": crate::kernel::time::rfc3339(c.due_at)}),
                false,
                now,
            )
            .await?;
            (c, true)
        }
    };
    entry(
        tx,
        tenant,
        case.id,
        src.entry_kind,
        actor,
        Some(src.title),
        src.ref_id,
        src.data,
        now,
    )
    .await?;
    Ok((case, new))
}

#[allow(clippy::too_many_arguments)]
pub async fn entry(
    tx: &mut Uow,
    tenant: TenantId,
    case: Uuid,
    kind: &str,
    actor: &Actor,
    text: Option<&str>,
    ref_id: Option<Uuid>,
    data: Option<serde_json::Value>,
    now: Timestamp,
) -> Result<(), AppError> {
    cases::add_entry(
        tx,
        tenant,
        &EntryRow {
            id: Uuid::now_v7(),
            case_id: case,
            at: to_micros(now),
            kind: kind.into(),
            actor: actor_id(actor),
            text: text.map(str::to_owned),
            ref_id,
            data_json: data.map(|d| d.to_string()),
        },
    )
    .await?;
    Ok(())
}

/// The case kind an alert opens, by its rule.
fn kind_of_alert(rule: &str) -> CaseKind {
    match rule {
        "credit_limit.exceeded" => CaseKind::CreditLimit,
        "provider.fraud_event" => CaseKind::ProviderFraud,
        "provider.budget_exceeded" => CaseKind::ProviderBudget,
        _ => CaseKind::Alert,
    }
}

/// A new alert: joins its customer's open case, or opens one when severe enough.
pub async fn on_alert(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    alert: &riskdesk_storage::alerts::AlertRow,
    endpoints: &[EndpointRow],
    now: Timestamp,
) -> Result<Option<CaseRow>, AppError> {
    let Some(customer) = alert.customer_id else {
        return Ok(None);
    };
    let min = tx.response_settings().case_min_severity.clone();
    if severity_rank(&alert.severity) < severity_rank(&min)
        && cases::open_for_customer_tx(tx, tenant, customer)
            .await?
            .is_none()
    {
        return Ok(None);
    }
    let (case, _) = open_or_attach_with(
        tx,
        tenant,
        actor,
        Some(customer),
        None,
        CaseSource {
            kind: kind_of_alert(&alert.rule),
            severity: &alert.severity,
            title: &alert.title,
            entry_kind: "alert",
            ref_id: Some(alert.id),
            data: Some(serde_json::json!({"rule": alert.rule, "severity": alert.severity})),
        },
        Some(endpoints),
        now,
    )
    .await?;
    Ok(Some(case))
}

/// Changes a case's status (the domain decides; closing waits for its unfinished actions).
pub async fn set_status(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: Uuid,
    to: CaseStatus,
    note: Option<&str>,
    now: Timestamp,
) -> Result<CaseRow, AppError> {
    let before = cases::get_tx(tx, tenant, id).await?;
    let from = CaseStatus::parse(&before.status)
        .ok_or_else(|| AppError::Internal(format!("case {id} has status '{}'", before.status)))?;
    let unfinished = actions::unfinished_of_case_tx(tx, tenant, id).await?;
    change_status(from, to, unfinished as usize).map_err(|e| AppError::Conflict(e.to_string()))?;
    if from.is_closed() && !to.is_closed() {
        // Reopening: a customer has one open case at a time (a unique index says so too).
        if let Some(customer) = before.customer_id {
            cases::lock_open_case(tx, tenant, Some(customer), None).await?;
            if let Some(open) = cases::open_for_customer_tx(tx, tenant, customer).await? {
                return Err(AppError::Conflict(format!(
                    "the customer already has an open case ({}): work that one, or close it first",
                    open.id
                )));
            }
        }
    }
    let mut after = before.clone();
    after.status = to.as_str().into();
    after.updated_at = to_micros(now);
    after.closed_at = to.is_closed().then(|| to_micros(now));
    cases::update(tx, tenant, &after).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, &format!("case.{}", to.as_str()), "case", id)
            .before(&before)
            .after(&after)
            .note(note),
    )
    .await?;
    entry(
        tx,
        tenant,
        id,
        "status",
        actor,
        note,
        None,
        Some(serde_json::json!({"from": before.status, "to": after.status})),
        now,
    )
    .await?;
    Ok(after)
}

pub async fn assign(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: Uuid,
    assignee: Option<&str>,
    now: Timestamp,
) -> Result<CaseRow, AppError> {
    let before = cases::get_tx(tx, tenant, id).await?;
    let mut after = before.clone();
    after.assignee = assignee.map(str::to_owned);
    // Taking a case starts the investigation.
    if assignee.is_some() && before.status == CaseStatus::Open.as_str() {
        after.status = CaseStatus::Investigating.as_str().into();
    }
    after.updated_at = to_micros(now);
    cases::update(tx, tenant, &after).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "case.assign", "case", id)
            .before(&before)
            .after(&after),
    )
    .await?;
    entry(tx, tenant, id, "assign", actor, assignee, None, None, now).await?;
    Ok(after)
}

/// Takes the most urgent unassigned case of a view for `assignee`, atomically: two callers at
/// once never get the same case (the claim is a conditional update; the loser moves on to the
/// next candidate). `None` when the view has no unassigned case.
pub async fn take_next(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    view: &cases::CaseFilter,
    assignee: &str,
    now: Timestamp,
) -> Result<Option<CaseRow>, AppError> {
    let at = to_micros(now);
    for _ in 0..32 {
        let Some(before) = cases::next_unassigned(tx, tenant, view).await? else {
            return Ok(None);
        };
        if cases::claim(tx, tenant, before.id, assignee, at).await? == 0 {
            continue;
        }
        let mut after = before.clone();
        after.assignee = Some(assignee.to_owned());
        if before.status == CaseStatus::Open.as_str() {
            after.status = CaseStatus::Investigating.as_str().into();
        }
        after.updated_at = at;
        cases::update(tx, tenant, &after).await?;
        audit::append(
            tx,
            tenant,
            now,
            AuditDraft::new(actor, "case.take", "case", before.id)
                .before(&before)
                .after(&after),
        )
        .await?;
        entry(
            tx,
            tenant,
            before.id,
            "assign",
            actor,
            Some(assignee),
            None,
            None,
            now,
        )
        .await?;
        return Ok(Some(after));
    }
    Err(AppError::Contention(
        "every candidate case was taken by someone else meanwhile; try again".into(),
    ))
}

pub async fn comment(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: Uuid,
    text: &str,
    now: Timestamp,
) -> Result<CaseRow, AppError> {
    let case = cases::get_tx(tx, tenant, id).await?;
    entry(
        tx,
        tenant,
        id,
        "comment",
        actor,
        Some(text),
        None,
        None,
        now,
    )
    .await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "case.comment", "case", id).note(Some(text)),
    )
    .await?;
    Ok(case)
}

/// An action as asked for (from a case, a rule, the budget or the credit policy).
#[derive(Clone, Debug)]
pub struct ActionRequest {
    pub kind: ActionKind,
    pub subscription: Option<Uuid>,
    /// set_budget: the monthly amount (decimal string) and currency.
    pub amount: Option<riskdesk_domain::money::Money>,
    pub reason: Reason,
    pub note: Option<String>,
}

/// An action taken from a case: on the case's customer (a case about a sign-up in review or
/// an unmatched notice has none yet, and refuses).
pub async fn act_on_case(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    case: Uuid,
    req: &ActionRequest,
    propose: bool,
    now: Timestamp,
) -> Result<ActionRow, AppError> {
    let row = cases::get_tx(tx, tenant, case).await?;
    let customer = row.customer_id.ok_or_else(|| {
        AppError::Conflict(format!(
            "case {case} has no customer yet (a sign-up in review or an unmatched notice): review the sign-up or link the notice first"
        ))
    })?;
    take_action(tx, tenant, actor, Some(case), customer, req, propose, now).await
}

/// Takes an action now (`propose` false) or records it for approval by someone else.
pub async fn take_action(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    case: Option<Uuid>,
    customer: Uuid,
    req: &ActionRequest,
    propose: bool,
    now: Timestamp,
) -> Result<ActionRow, AppError> {
    let c = customers::get_tx(tx, tenant, CustomerId(customer)).await?;
    if let Some(case) = case {
        let row = cases::get_tx(tx, tenant, case).await?;
        if row.customer_id.is_some_and(|id| id != customer) {
            return Err(AppError::Conflict(format!(
                "case {case} is about another customer"
            )));
        }
    }
    if let Some(sid) = req.subscription {
        let s = subscriptions::get_with_instance_tx(tx, tenant, SubscriptionId(sid)).await?;
        if s.sub.customer_id != customer {
            return Err(AppError::field(
                "subscription_id",
                "this subscription belongs to another customer",
            ));
        }
    } else if req.kind.lifecycle().is_some() {
        return Err(AppError::field(
            "subscription_id",
            format!("{} needs the subscription to act on", req.kind.as_str()),
        ));
    }
    if req.kind == ActionKind::SetBudget && req.amount.is_none() {
        return Err(AppError::field(
            "amount",
            "set_budget needs the monthly amount and currency",
        ));
    }
    let at = to_micros(now);
    let params = serde_json::json!({
        "amount": req.amount.as_ref().map(|m| m.to_decimal_string()),
        "currency": req.amount.as_ref().map(|m| m.currency.code().to_owned()),
    });
    let mut row = ActionRow {
        id: Uuid::now_v7(),
        tenant_id: tenant.0,
        case_id: case,
        customer_id: customer,
        subscription_id: req.subscription,
        kind: req.kind.as_str().into(),
        params_json: params.to_string(),
        status: ActionStatus::AwaitingApproval.as_str().into(),
        reason: req.reason.as_str().into(),
        note: req.note.clone(),
        proposed_by: actor_id(actor),
        decided_by: None,
        provider: "none".into(),
        provider_request_id: None,
        provider_result_json: None,
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        created_at: at,
        updated_at: at,
        done_at: None,
    };
    if propose {
        actions::insert(tx, &row).await?;
        audit::append(
            tx,
            tenant,
            now,
            AuditDraft::new(actor, "action.propose", "action", row.id)
                .after(&row)
                .reason(req.reason.as_str())
                .note(req.note.as_deref()),
        )
        .await?;
        if let Some(case) = case {
            entry(
                tx,
                tenant,
                case,
                "action",
                actor,
                Some(&format!(
                    "{} proposed, awaiting approval",
                    req.kind.as_str()
                )),
                Some(row.id),
                None,
                now,
            )
            .await?;
        }
        notify_staff(
            tx,
            tenant,
            Some(customer),
            "action.awaiting_approval",
            &format!("action:{}:proposed", row.id),
            &format!(
                "Action awaiting approval: {} for {}",
                req.kind.as_str(),
                c.name
            ),
            action_event(&row),
            false,
            now,
        )
        .await?;
        return Ok(row);
    }
    actions::insert(tx, &row).await?;
    row = apply(tx, tenant, actor, row, &c.cloud_instance, now).await?;
    Ok(row)
}

/// Carries out an action here (in this unit of work) and queues its provider call.
async fn apply(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    mut row: ActionRow,
    cloud_instance: &str,
    now: Timestamp,
) -> Result<ActionRow, AppError> {
    let kind = ActionKind::parse(&row.kind)
        .ok_or_else(|| AppError::Internal(format!("action kind '{}'", row.kind)))?;
    let reason = Reason::parse(&row.reason).unwrap_or(Reason::Investigation);
    let instance = CloudInstance::parse(cloud_instance)
        .ok_or_else(|| AppError::Internal(format!("cloud instance '{cloud_instance}'")))?;
    let customer = CustomerId(row.customer_id);
    let params: serde_json::Value = serde_json::from_str(&row.params_json).unwrap_or_default();
    match kind {
        ActionKind::Suspend
        | ActionKind::DisableAccess
        | ActionKind::Reactivate
        | ActionKind::Cancel => {
            let sid = SubscriptionId(row.subscription_id.expect("validated"));
            let s = crate::accounts::act_on_subscription(
                tx,
                tenant,
                actor,
                sid,
                kind.lifecycle().expect("lifecycle kind"),
                reason,
                row.note.as_deref(),
                now,
            )
            .await?;
            // A lever the dunning ladder proposed is the ladder's once approved: paying up
            // undoes it like any lever it pulled itself.
            if row.proposed_by == "system:dunning" {
                if kind == ActionKind::Cancel {
                    riskdesk_storage::dunning::delete_lever(tx, tenant, sid.0).await?;
                } else {
                    riskdesk_storage::dunning::put_lever(
                        tx,
                        tenant,
                        &riskdesk_storage::dunning::LeverRow {
                            subscription_id: sid.0,
                            customer_id: row.customer_id,
                            lever: kind.as_str().to_owned(),
                            status_set: s.status.clone(),
                            applied_at: to_micros(now),
                        },
                    )
                    .await?;
                }
            }
        }
        ActionKind::SetBudget => {
            let amount = params["amount"].as_str().unwrap_or_default();
            let currency = params["currency"].as_str().unwrap_or_default();
            let currency = riskdesk_domain::money::Currency::parse(currency)
                .map_err(|e| AppError::field("currency", e.0))?;
            let money = riskdesk_domain::money::Money::parse(amount, currency)
                .map_err(|e| AppError::field("amount", e.0))?;
            crate::monitoring::set_budget_amount(tx, tenant, actor, customer.0, money, now).await?;
        }
        ActionKind::RequirePrepayment => {
            let (b, a) =
                customers::change(tx, tenant, customer, now, |c| c.prepayment_required = true)
                    .await?;
            audit_customer(
                tx,
                tenant,
                actor,
                "customer.require_prepayment",
                &b,
                &a,
                now,
            )
            .await?;
        }
        ActionKind::RevokeAdminAccess => {
            let (b, a) = customers::change(tx, tenant, customer, now, |c| {
                c.admin_access = "restricted".into();
                c.admin_access_granted_at = None;
            })
            .await?;
            audit_customer(
                tx,
                tenant,
                actor,
                "customer.revoke_admin_access",
                &b,
                &a,
                now,
            )
            .await?;
        }
        ActionKind::MarkFraudulent => {
            crate::onboarding::mark_fraudulent(
                tx,
                tenant,
                actor,
                customer,
                row.note.as_deref(),
                now,
            )
            .await?;
        }
    }
    // What the provider is asked to do, if it can be and the ids are known.
    let at = to_micros(now);
    row.status = ActionStatus::Done.as_str().into();
    row.updated_at = at;
    let local_only = |why: &str| serde_json::json!({"local_only": why});
    match kind.provider_call(instance) {
        ProviderCall::LocalOnly => {
            row.provider_result_json = Some(local_only("riskdesk's own control").to_string());
        }
        ProviderCall::Unsupported(what) => {
            row.provider = "unsupported".into();
            row.provider_result_json = Some(
                local_only(&format!(
                    "{} offers no {what} call: acted in riskdesk only",
                    instance.profile().display_name
                ))
                .to_string(),
            );
        }
        _ => {
            let cust_link = provider::customer_link_tx(tx, tenant, row.customer_id).await?;
            let sub_link = match row.subscription_id {
                Some(s) => provider::subscription_link_tx(tx, tenant, s).await?,
                None => None,
            };
            let linked =
                cust_link.is_some() && (row.subscription_id.is_none() || sub_link.is_some());
            if linked {
                row.provider = "partner_center".into();
                row.status = ActionStatus::Pending.as_str().into();
                // The MS-RequestId of every attempt: a retry after a crash or a lost reply is
                // recognised by the provider and has no second effect.
                row.provider_request_id = Some(row.id.to_string());
                row.next_attempt_at = Some(at);
            } else {
                row.provider_result_json = Some(
                    local_only(if cust_link.is_none() {
                        "the customer has no provider link: acted in riskdesk only"
                    } else {
                        "the subscription has no provider link: acted in riskdesk only"
                    })
                    .to_string(),
                );
            }
        }
    }
    if row.status == ActionStatus::Done.as_str() {
        row.done_at = Some(at);
    }
    if row.decided_by.is_none() {
        row.decided_by = Some(actor_id(actor));
    }
    actions::update(tx, &row).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "action.take", "action", row.id)
            .after(&row)
            .reason(&row.reason)
            .note(row.note.as_deref()),
    )
    .await?;
    if let Some(case) = row.case_id {
        entry(
            tx,
            tenant,
            case,
            "action",
            actor,
            Some(&format!(
                "{} {}",
                row.kind,
                if row.status == "pending" {
                    "applied here; provider call queued"
                } else {
                    "done"
                }
            )),
            Some(row.id),
            None,
            now,
        )
        .await?;
        let c = cases::get_tx(tx, tenant, case).await?;
        if matches!(c.status.as_str(), "open" | "investigating") {
            let mut after = c.clone();
            after.status = CaseStatus::Actioned.as_str().into();
            after.updated_at = at;
            cases::update(tx, tenant, &after).await?;
            audit::append(
                tx,
                tenant,
                now,
                AuditDraft::new(actor, "case.actioned", "case", case)
                    .before(&c)
                    .after(&after),
            )
            .await?;
        }
    }
    notify_staff(
        tx,
        tenant,
        Some(row.customer_id),
        "action.taken",
        &format!("action:{}:taken", row.id),
        &format!("Action taken: {}", row.kind),
        action_event(&row),
        false,
        now,
    )
    .await?;
    crate::kernel::notices::queue_action_notice(tx, tenant, &row, now).await?;
    Ok(row)
}

async fn audit_customer(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    what: &str,
    before: &riskdesk_storage::customers::CustomerRow,
    after: &riskdesk_storage::customers::CustomerRow,
    now: Timestamp,
) -> Result<(), AppError> {
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, what, "customer", after.id)
            .before(before)
            .after(after),
    )
    .await?;
    Ok(())
}

pub fn action_event(a: &ActionRow) -> serde_json::Value {
    serde_json::json!({
        "action_id": a.id, "case_id": a.case_id, "customer_id": a.customer_id,
        "subscription_id": a.subscription_id, "kind": a.kind, "status": a.status,
        "provider": a.provider, "reason": a.reason, "last_error": a.last_error,
    })
}

/// Approves (and carries out) or rejects an action awaiting approval. Whoever proposed it
/// cannot decide it.
pub async fn decide(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: Uuid,
    approve: bool,
    note: Option<&str>,
    now: Timestamp,
) -> Result<ActionRow, AppError> {
    let row = actions::get_tx(tx, tenant, id).await?;
    let status = ActionStatus::parse(&row.status)
        .ok_or_else(|| AppError::Internal(format!("action status '{}'", row.status)))?;
    check_decider(status, &row.proposed_by, &actor_id(actor)).map_err(|e| match e {
        riskdesk_domain::response::ApprovalError::SameActor => AppError::Forbidden(e.to_string()),
        _ => AppError::Conflict(e.to_string()),
    })?;
    let mut row = row;
    row.decided_by = Some(actor_id(actor));
    if approve {
        audit::append(
            tx,
            tenant,
            now,
            AuditDraft::new(actor, "action.approve", "action", id).note(note),
        )
        .await?;
        let c = customers::get_tx(tx, tenant, CustomerId(row.customer_id)).await?;
        apply(tx, tenant, actor, row, &c.cloud_instance, now).await
    } else {
        close_proposal(
            tx,
            tenant,
            actor,
            row,
            "action.reject",
            note,
            "rejected",
            now,
        )
        .await
    }
}

/// Closes a proposal as rejected (by an analyst, or withdrawn by whoever proposed it) with
/// its audit entry and a line on its case's timeline.
#[allow(clippy::too_many_arguments)]
async fn close_proposal(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    before: ActionRow,
    audit_action: &str,
    note: Option<&str>,
    what: &str,
    now: Timestamp,
) -> Result<ActionRow, AppError> {
    let mut row = before.clone();
    row.status = ActionStatus::Rejected.as_str().into();
    row.decided_by = Some(actor_id(actor));
    row.updated_at = to_micros(now);
    row.done_at = Some(to_micros(now));
    actions::update(tx, &row).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, audit_action, "action", row.id)
            .before(&before)
            .after(&row)
            .note(note),
    )
    .await?;
    if let Some(case) = row.case_id {
        entry(
            tx,
            tenant,
            case,
            "action",
            actor,
            Some(&format!("{} {what}", row.kind)),
            Some(row.id),
            None,
            now,
        )
        .await?;
    }
    Ok(row)
}

/// An enforcement a rule, the budget or the credit policy proposes in `require_approval`
/// mode: one action per active subscription, attached to the customer's case (opened if
/// needed), waiting for an analyst.
pub async fn propose_enforcement(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: Uuid,
    kind: ActionKind,
    why: &str,
    alert: Option<Uuid>,
    now: Timestamp,
) -> Result<Vec<Uuid>, AppError> {
    let (case, _) = open_or_attach(
        tx,
        tenant,
        actor,
        Some(customer),
        None,
        CaseSource {
            kind: CaseKind::EnforcementApproval,
            severity: "high",
            title: why,
            entry_kind: "proposal",
            ref_id: alert,
            data: None,
        },
        now,
    )
    .await?;
    let subs = if kind.lifecycle().is_some() {
        subscriptions::ids_in_status_tx(
            tx,
            tenant,
            CustomerId(customer),
            riskdesk_domain::SubscriptionStatus::Active,
        )
        .await?
        .into_iter()
        .map(|s| Some(s.0))
        .collect()
    } else {
        vec![None]
    };
    // One proposal at a time: a repeat of the same kind and subscription waits behind the
    // first (a rule firing again, a budget mark re-evaluated).
    let waiting = actions::awaiting_tx(tx, tenant, customer).await?;
    let mut ids = Vec::new();
    for s in subs {
        if waiting
            .iter()
            .any(|w| w.kind == kind.as_str() && w.subscription_id == s)
        {
            continue;
        }
        let a = take_action(
            tx,
            tenant,
            actor,
            Some(case.id),
            customer,
            &ActionRequest {
                kind,
                subscription: s,
                amount: None,
                reason: Reason::Investigation,
                note: Some(why.to_owned()),
            },
            true,
            now,
        )
        .await?;
        ids.push(a.id);
    }
    Ok(ids)
}

/// Staff hear of case and action events by webhook and, if configured, by email.
#[allow(clippy::too_many_arguments)]
pub async fn notify_staff(
    tx: &mut Uow,
    tenant: TenantId,
    customer: Option<Uuid>,
    event_type: &str,
    dedupe: &str,
    subject: &str,
    data: serde_json::Value,
    email: bool,
    now: Timestamp,
) -> Result<(), AppError> {
    notify_staff_with(
        tx, tenant, None, customer, event_type, dedupe, subject, data, email, now,
    )
    .await
}

/// [`notify_staff`] with the tenant's endpoints when the caller has read them already.
#[allow(clippy::too_many_arguments)]
pub async fn notify_staff_with(
    tx: &mut Uow,
    tenant: TenantId,
    endpoints: Option<&[EndpointRow]>,
    customer: Option<Uuid>,
    event_type: &str,
    dedupe: &str,
    subject: &str,
    data: serde_json::Value,
    email: bool,
    now: Timestamp,
) -> Result<(), AppError> {
    let read;
    let endpoints = match endpoints {
        Some(e) => e,
        None => {
            read = riskdesk_storage::outbox::endpoints_tx(tx, tenant).await?;
            &read[..]
        }
    };
    if !endpoints.is_empty() {
        crate::kernel::outbox::webhooks(
            tx,
            tenant,
            endpoints,
            customer,
            event_type,
            dedupe,
            data.clone(),
            now,
        )
        .await?;
    }
    if email && let Some(to) = tx.response_settings().staff_email.clone() {
        let body = format!(
            "{subject}\n\n{}\n",
            serde_json::to_string_pretty(&data).unwrap_or_default()
        );
        crate::kernel::outbox::email(
            tx,
            tenant,
            customer,
            &to,
            event_type,
            format!("{dedupe}:staff"),
            format!("[riskdesk] {subject}"),
            body,
            now,
        )
        .await?;
    }
    Ok(())
}

/// Marks every case past its deadline (of one tenant, or all) and notifies staff once per case.
/// Returns how many breaches were notified.
pub async fn sla_pass(
    ctx: &Arc<Ctx>,
    only: Option<TenantId>,
    now: Timestamp,
) -> Result<usize, AppError> {
    let db = &ctx.db;
    let mut n = 0;
    loop {
        let due = cases::breached(db, only, to_micros(now), 200).await?;
        if due.is_empty() {
            return Ok(n);
        }
        for (tenant, before) in due {
            let tenant = TenantId(tenant);
            let mut tx = ctx.begin().await?;
            let mut after = before.clone();
            after.sla_notified_at = Some(to_micros(now));
            cases::update(&mut tx, tenant, &after).await?;
            let actor = Actor::system("sla");
            entry(
                &mut tx,
                tenant,
                after.id,
                "sla_breach",
                &actor,
                Some("the case is past its deadline"),
                None,
                Some(serde_json::json!({"due_at": crate::kernel::time::rfc3339(after.due_at)})),
                now,
            )
            .await?;
            audit::append(
                &mut tx,
                tenant,
                now,
                AuditDraft::new(&actor, "case.sla_breach", "case", after.id)
                    .before(&before)
                    .after(&after),
            )
            .await?;
            notify_staff(
                &mut tx,
                tenant,
                after.customer_id,
                "case.sla_breached",
                &format!("case:{}:sla", after.id),
                &format!("SLA breached: {} (due {})", after.title, crate::kernel::time::rfc3339(after.due_at)),
                serde_json::json!({"case_id": after.id, "kind": after.kind, "severity": after.severity,
                                   "assignee": after.assignee, "due_at": crate::kernel::time::rfc3339(after.due_at)}),
                true,
                now,
            )
            .await?;
            tx.commit().await?;
            n += 1;
        }
    }
}

/// The analyst decided a sign-up: its review case closes (resolved when approved, with the new
/// customer on it; dismissed when rejected).
pub async fn close_signup_case(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    signup: Uuid,
    customer: Option<Uuid>,
    approved: bool,
    now: Timestamp,
) -> Result<(), AppError> {
    let Some(before) = cases::open_for_signup_tx(tx, tenant, signup).await? else {
        return Ok(());
    };
    if customer.is_some() && before.customer_id.is_none() {
        let mut c = before.clone();
        c.customer_id = customer;
        cases::update(tx, tenant, &c).await?;
    }
    let to = if approved {
        CaseStatus::Resolved
    } else {
        CaseStatus::Dismissed
    };
    set_status(
        tx,
        tenant,
        actor,
        before.id,
        to,
        Some(if approved {
            "sign-up approved after review"
        } else {
            "sign-up rejected after review"
        }),
        now,
    )
    .await?;
    Ok(())
}

/// The dunning ladder wants a lever on a subscription but its policy needs approval: the
/// customer's case gets a proposed action (once: a proposal already waiting is left as it is).
/// Returns whether a new proposal was made.
#[allow(clippy::too_many_arguments)]
pub async fn propose_dunning_lever(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: Uuid,
    customer_name: &str,
    subscription: Uuid,
    kind: ActionKind,
    why: &str,
    now: Timestamp,
) -> Result<bool, AppError> {
    let waiting = actions::awaiting_tx(tx, tenant, customer).await?;
    if waiting
        .iter()
        .any(|w| w.subscription_id == Some(subscription) && w.proposed_by == actor_id(actor))
    {
        return Ok(false);
    }
    let title = format!(
        "Dunning proposes {} for {customer_name}: {why}",
        kind.as_str()
    );
    let (case, _) = open_or_attach(
        tx,
        tenant,
        actor,
        Some(customer),
        None,
        CaseSource {
            kind: CaseKind::EnforcementApproval,
            severity: "medium",
            title: &title,
            entry_kind: "proposal",
            ref_id: None,
            data: None,
        },
        now,
    )
    .await?;
    take_action(
        tx,
        tenant,
        actor,
        Some(case.id),
        customer,
        &ActionRequest {
            kind,
            subscription: Some(subscription),
            amount: None,
            reason: Reason::NonPayment,
            note: Some(why.to_owned()),
        },
        true,
        now,
    )
    .await?;
    Ok(true)
}

/// Withdraws the dunning ladder's proposals still waiting on a subscription (its customer paid
/// or the ladder no longer wants the lever). Audited as `action.withdraw`.
pub async fn withdraw_dunning_proposals(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    subscription: Uuid,
    now: Timestamp,
) -> Result<(), AppError> {
    let sub = subscriptions::get_with_instance_tx(tx, tenant, SubscriptionId(subscription)).await?;
    for a in actions::awaiting_tx(tx, tenant, sub.sub.customer_id).await? {
        if a.subscription_id != Some(subscription) || a.proposed_by != actor_id(actor) {
            continue;
        }
        close_proposal(
            tx,
            tenant,
            actor,
            a,
            "action.withdraw",
            Some("no longer wanted by the dunning ladder (paid up or on hold)"),
            "withdrawn: no longer due",
            now,
        )
        .await?;
    }
    Ok(())
}
