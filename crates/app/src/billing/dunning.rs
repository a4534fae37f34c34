//! Runs the dunning ladder (the pure rules are in `riskdesk_domain::billing::dunning`) over
//! stored receivables: records each step sent, queues its notice (email in the customer's
//! language, webhooks), and brings subscriptions to the state the unpaid invoices call for —
//! pulling levers through the subscription lifecycle, and undoing exactly what dunning did
//! once the customer has paid.
//!
//! Work is partitioned by customer: a run looks only at customers with an invoice whose next
//! check is due (or with a lever to reconsider), in batches, one unit of work per batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::billing::Day;
use riskdesk_domain::billing::dunning::{self, Desired, Lever, Policy, Receivable};
use riskdesk_domain::money::{Currency, Money};
use riskdesk_domain::{
    CloudInstance, Locale, Reason, SubscriptionId, SubscriptionStatus, TenantId,
};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::billing::{self, InvoiceRow};
use riskdesk_storage::dunning::{self as store, LeverRow, StepRow};
use riskdesk_storage::outbox::EndpointRow;
use riskdesk_storage::time::to_micros;
use riskdesk_storage::{customers, outbox as outbox_store, subscriptions, tenants};
use serde::Serialize;
use uuid::Uuid;

use crate::accounts;
use crate::kernel::error::AppError;
use crate::kernel::notices::{self, NoticeFacts};
use crate::kernel::{Ctx, Uow};

/// Customers per unit of work in a run.
pub const BATCH: usize = 500;

/// What a run did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSummary {
    /// The day the ladder was evaluated for (`YYYY-MM-DD`).
    pub as_of: String,
    pub customers: u64,
    /// Steps sent (each with its notice).
    pub steps: u64,
    pub levers_applied: u64,
    pub levers_undone: u64,
    /// Levers proposed for approval (policy `levers_need_approval`).
    pub levers_proposed: u64,
    pub purchases_blocked: u64,
    pub purchases_unblocked: u64,
}

impl RunSummary {
    fn add(&mut self, o: &RunSummary) {
        self.customers += o.customers;
        self.steps += o.steps;
        self.levers_applied += o.levers_applied;
        self.levers_undone += o.levers_undone;
        self.levers_proposed += o.levers_proposed;
        self.purchases_blocked += o.purchases_blocked;
        self.purchases_unblocked += o.purchases_unblocked;
    }
}

fn actor() -> Actor {
    Actor::system("dunning")
}

/// A policy as stored (validated when it was written; a failure here is corruption).
pub fn stored_policy(json: &str) -> Result<Policy, AppError> {
    dunning::parse_policy(json)
        .map_err(|e| AppError::Internal(format!("stored dunning policy: {}", e.0)))
}

/// The ladder that applies and where it comes from: the customer's override (`customer`), else
/// the tenant's (`tenant`), else the installation's (`default`).
pub fn applicable_policy(
    customer: Option<&str>,
    tenant: Option<&str>,
    fallback: &Policy,
) -> Result<(Policy, &'static str), AppError> {
    Ok(match (customer, tenant) {
        (Some(j), _) => (stored_policy(j)?, "customer"),
        (None, Some(j)) => (stored_policy(j)?, "tenant"),
        (None, None) => (fallback.clone(), "default"),
    })
}

/// The tenant's policy, or the installation's default.
pub async fn tenant_policy(
    tx: &mut Uow,
    tenant: TenantId,
    fallback: &Policy,
) -> Result<Policy, AppError> {
    let json = store::policy_tx(tx, tenant).await?;
    Ok(applicable_policy(None, json.as_deref(), fallback)?.0)
}

/// Runs the ladder for every customer of a tenant that needs it on `day`.
pub async fn run_tenant(
    ctx: &Arc<Ctx>,
    tenant: TenantId,
    fallback: &Policy,
    day: Day,
    now: Timestamp,
) -> Result<RunSummary, AppError> {
    let db = &ctx.db;
    let due = store::customers_due(db, tenant, day.0).await?;
    let mut total = RunSummary {
        as_of: day.to_string(),
        ..RunSummary::default()
    };
    for chunk in due.chunks(BATCH) {
        let mut tx = ctx.begin().await?;
        let s = run_customers(&mut tx, tenant, fallback, chunk, Some(day), now).await?;
        tx.commit().await?;
        total.add(&s);
    }
    Ok(total)
}

/// Runs the ladder for some customers inside the caller's unit of work. With `day` None no
/// step is sent: levers are only brought in line with the steps already sent (after a payment,
/// a credit, a dispute or an override change).
pub async fn run_customers(
    tx: &mut Uow,
    tenant: TenantId,
    fallback: &Policy,
    customer_ids: &[Uuid],
    day: Option<Day>,
    now: Timestamp,
) -> Result<RunSummary, AppError> {
    let mut summary = RunSummary {
        as_of: day.map(|d| d.to_string()).unwrap_or_default(),
        ..RunSummary::default()
    };
    if customer_ids.is_empty() {
        return Ok(summary);
    }
    let default = tenant_policy(tx, tenant, fallback).await?;
    let partner = tenants::get_tx(tx, tenant).await?.name;
    let endpoints = outbox_store::endpoints_tx(tx, tenant).await?;
    let custs = customers::get_many_tx(tx, tenant, customer_ids).await?;
    let mut invoices: HashMap<Uuid, Vec<InvoiceRow>> = HashMap::new();
    for i in billing::open_invoices_of_tx(tx, tenant, customer_ids).await? {
        invoices.entry(i.customer_id).or_default().push(i);
    }
    let mut steps: HashMap<Uuid, BTreeMap<String, Day>> = HashMap::new();
    for s in store::steps_of_customers_tx(tx, tenant, customer_ids).await? {
        steps
            .entry(s.invoice_id)
            .or_default()
            .insert(s.step, Day(s.sent_day));
    }
    let overrides: HashMap<Uuid, store::OverrideRow> =
        store::overrides_of_tx(tx, tenant, customer_ids)
            .await?
            .into_iter()
            .map(|o| (o.customer_id, o))
            .collect();
    let mut levers: HashMap<Uuid, LeverRow> = HashMap::new();
    for l in store::levers_of_customers_tx(tx, tenant, customer_ids).await? {
        levers.insert(l.subscription_id, l);
    }
    let mut subs: HashMap<Uuid, Vec<subscriptions::SubscriptionRow>> = HashMap::new();
    for s in subscriptions::of_customers_tx(tx, tenant, customer_ids).await? {
        subs.entry(s.customer_id).or_default().push(s);
    }
    let today = day.unwrap_or_else(|| Day::of(now));

    for c in custs {
        summary.customers += 1;
        let locale = Locale::parse(&c.locale).unwrap_or(Locale::En);
        let instance = CloudInstance::parse(&c.cloud_instance).unwrap_or(CloudInstance::Global);
        let ov = overrides.get(&c.id).cloned().unwrap_or_default();
        let policy = match &ov.policy_json {
            Some(j) => stored_policy(j)?,
            None => default.clone(),
        };
        let held_until = ov.hold_until_day.filter(|d| today.0 < *d);
        let open = invoices.remove(&c.id).unwrap_or_default();
        let mut receivables: Vec<Receivable<Uuid>> = Vec::with_capacity(open.len());
        for inv in &open {
            let currency = Currency::parse(&inv.currency)
                .map_err(|e| AppError::Internal(format!("invoice {}: {}", inv.id, e.0)))?;
            receivables.push(Receivable {
                due_day: Day(inv.due_day),
                open_minor: inv.open_minor,
                currency,
                paused: inv.disputed || held_until.is_some() || ov.excluded,
                done: steps.remove(&inv.id).unwrap_or_default(),
                subscriptions: serde_json::from_str(&inv.subscription_ids_json).unwrap_or_default(),
            });
        }

        if let Some(day) = day {
            let mut checks = Vec::with_capacity(open.len());
            for (inv, r) in open.iter().zip(receivables.iter_mut()) {
                let p = dunning::progress(&policy, r, day);
                for i in &p.fire {
                    let step = &policy.steps[*i];
                    send_step(
                        tx, tenant, &partner, &endpoints, &c, locale, instance, &policy, *i, inv,
                        r.currency, day, now,
                    )
                    .await?;
                    r.done.insert(step.name.clone(), day);
                    summary.steps += 1;
                }
                let next = if held_until.is_some() && !ov.excluded && !inv.disputed {
                    held_until
                } else {
                    p.next_check.map(|d| d.0)
                };
                if next != inv.next_check_day {
                    checks.push((inv.id, next));
                }
            }
            store::set_next_checks(tx, tenant, &checks).await?;
        }

        let desired = if ov.enforcement_off || ov.excluded {
            Desired::default()
        } else {
            dunning::desired(&policy, &receivables)
        };
        let reason_note = format!("dunning ({} unpaid invoices)", receivables.len());
        for sub in subs.remove(&c.id).unwrap_or_default() {
            let status = sub.status()?;
            if status == SubscriptionStatus::Cancelled {
                continue;
            }
            let want = desired.lever_for(&sub.id).map(|l| l.on(instance));
            let owned = levers.get(&sub.id);
            match want.and_then(|l| l.action().map(|a| (l, a))) {
                Some((lever, action)) => {
                    let target = match lever {
                        Lever::Suspend => SubscriptionStatus::Suspended,
                        Lever::Cancel => SubscriptionStatus::Cancelled,
                        _ => SubscriptionStatus::Disabled,
                    };
                    let ours = owned.is_some_and(|o| o.status_set == status.as_str());
                    if status == target || !(status == SubscriptionStatus::Active || ours) {
                        // Already there, or someone else changed it (e.g. suspended for
                        // fraud): dunning leaves it alone.
                        continue;
                    }
                    if policy.levers_need_approval {
                        if tx
                            .approvals()
                            .propose_dunning_lever(
                                tx,
                                crate::kernel::ports::DunningProposal {
                                    tenant,
                                    actor: &actor(),
                                    customer: c.id,
                                    customer_name: &c.name,
                                    subscription: sub.id,
                                    kind: riskdesk_domain::response::ActionKind::from_lifecycle(
                                        action,
                                    ),
                                    why: &reason_note,
                                    now,
                                },
                            )
                            .await?
                        {
                            summary.levers_proposed += 1;
                        }
                        continue;
                    }
                    accounts::act_on_subscription(
                        tx,
                        tenant,
                        &actor(),
                        SubscriptionId(sub.id),
                        action,
                        Reason::NonPayment,
                        Some(&reason_note),
                        now,
                    )
                    .await?;
                    summary.levers_applied += 1;
                    if lever == Lever::Cancel {
                        store::delete_lever(tx, tenant, sub.id).await?;
                    } else {
                        store::put_lever(
                            tx,
                            tenant,
                            &LeverRow {
                                subscription_id: sub.id,
                                customer_id: c.id,
                                lever: lever.as_str().to_owned(),
                                status_set: target.as_str().to_owned(),
                                applied_at: to_micros(now),
                            },
                        )
                        .await?;
                    }
                }
                None => {
                    // Paid up (or put on hold) before anyone approved: withdraw the proposal.
                    tx.approvals()
                        .withdraw_dunning_proposals(tx, tenant, &actor(), sub.id, now)
                        .await?;
                    if let Some(o) = owned {
                        if status.as_str() == o.status_set {
                            accounts::act_on_subscription(
                                tx,
                                tenant,
                                &actor(),
                                SubscriptionId(sub.id),
                                riskdesk_domain::LifecycleAction::Reactivate,
                                Reason::Resolved,
                                Some("dunning: paid up"),
                                now,
                            )
                            .await?;
                            summary.levers_undone += 1;
                        }
                        store::delete_lever(tx, tenant, sub.id).await?;
                    }
                }
            }
        }
        if c.purchases_blocked != desired.block_new_purchases {
            let block = desired.block_new_purchases;
            let (before, after) =
                customers::change(tx, tenant, riskdesk_domain::CustomerId(c.id), now, |x| {
                    x.purchases_blocked = block
                })
                .await?;
            audit::append(
                tx,
                tenant,
                now,
                AuditDraft::new(
                    &actor(),
                    if block {
                        "customer.purchases_blocked"
                    } else {
                        "customer.purchases_unblocked"
                    },
                    "customer",
                    c.id,
                )
                .before(&before)
                .after(&after)
                .reason("non_payment"),
            )
            .await?;
            if block {
                summary.purchases_blocked += 1;
            } else {
                summary.purchases_unblocked += 1;
            }
        }
    }
    Ok(summary)
}

/// Records one step for one invoice, audits it and queues its notice.
#[allow(clippy::too_many_arguments)]
async fn send_step(
    tx: &mut Uow,
    tenant: TenantId,
    partner: &str,
    endpoints: &[EndpointRow],
    c: &customers::CustomerRow,
    locale: Locale,
    instance: CloudInstance,
    policy: &Policy,
    index: usize,
    inv: &InvoiceRow,
    currency: Currency,
    day: Day,
    now: Timestamp,
) -> Result<(), AppError> {
    let step = &policy.steps[index];
    let applied = step.lever.on(instance);
    let due = Day(inv.due_day);
    let next = policy.steps.get(index + 1).map(|n| {
        let mut d = due.plus(n.offset_days);
        if n.lever != Lever::None {
            d = d.max(day.plus(policy.min_notice_days as i32));
        }
        (d, n.lever.on(instance))
    });
    let row = StepRow {
        invoice_id: inv.id,
        step: step.name.clone(),
        customer_id: c.id,
        sent_day: day.0,
        at: to_micros(now),
    };
    store::insert_step(tx, tenant, &row).await?;
    #[derive(Serialize)]
    struct StepAudit<'a> {
        invoice_number: &'a str,
        step: &'a str,
        notice: &'a str,
        lever: &'a str,
        day: String,
        open_amount: String,
        currency: &'a str,
    }
    let open = Money {
        minor: inv.open_minor,
        currency,
    };
    let snapshot = StepAudit {
        invoice_number: &inv.number,
        step: &step.name,
        notice: &step.notice,
        lever: applied.as_str(),
        day: day.to_string(),
        open_amount: open.to_decimal_string(),
        currency: currency.code(),
    };
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(&actor(), "dunning.step", "invoice", inv.id)
            .after(&snapshot)
            .reason("non_payment"),
    )
    .await?;
    let (subject, body) = notices::render_notice(
        locale,
        &step.notice,
        &NoticeFacts {
            customer: &c.name,
            partner,
            invoice: &inv.number,
            open,
            due,
            applied,
            awaiting_approval: policy.levers_need_approval,
            next,
            sent_on: day,
        },
    );
    let key = format!("dunning:{}:{}", inv.id, step.name);
    crate::kernel::outbox::email(
        tx,
        tenant,
        Some(c.id),
        &c.email,
        &format!("dunning.{}", step.notice),
        format!("{key}:email"),
        subject,
        body,
        now,
    )
    .await?;
    crate::kernel::outbox::webhooks(
        tx,
        tenant,
        endpoints,
        Some(c.id),
        "dunning.step",
        &key,
        serde_json::json!({
            "customer_id": c.id,
            "invoice_id": inv.id,
            "invoice_number": inv.number,
            "step": step.name,
            "notice": step.notice,
            "lever": applied.as_str(),
            "day": day.to_string(),
            "open_amount": open.to_decimal_string(),
            "currency": currency.code(),
        }),
        now,
    )
    .await?;
    Ok(())
}

/// The daily schedule: every `every`, runs the ladder for today (UTC) in every tenant. Runs are
/// idempotent, so running more often than daily only catches up sooner after downtime.
pub async fn schedule(
    ctx: Arc<Ctx>,
    clock: std::sync::Arc<dyn riskdesk_domain::Clock>,
    fallback: std::sync::Arc<Policy>,
    every: std::time::Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut stop = stop;
    loop {
        let now = clock.now();
        match tenants::list(&ctx.db).await {
            Ok(ts) => {
                for t in ts {
                    match run_tenant(&ctx, t.tenant_id(), &fallback, Day::of(now), now).await {
                        Ok(s) if s.steps + s.levers_applied + s.levers_undone > 0 => {
                            tracing::info!(tenant = %t.slug, ?s, "dunning run")
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(tenant = %t.slug, error = %e, "dunning run failed")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "dunning: cannot list tenants"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}
