//! Money movements: invoices, payments and their allocation, the prepaid wallet, credit notes,
//! write-offs, chargebacks and refunds. Each runs in the caller's unit of work, locks the
//! customer's money (PostgreSQL), writes ledger entries, audits, and then brings the dunning
//! levers in line (a customer who has paid up gets access back in the same commit).

pub mod collections;
pub mod dunning;
pub mod reports;

use jiff::Timestamp;
use riskdesk_domain::SubscriptionStatus;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::billing::Day;
use riskdesk_domain::billing::dunning::Policy;
use riskdesk_domain::money::{Currency, Money};
use riskdesk_domain::{CustomerId, TenantId};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::billing::{self, EntryRow, InvoiceRow, PaymentRow, WalletEntryRow};
use riskdesk_storage::customers::{self, CustomerRow};
use riskdesk_storage::subscriptions::{self, NewSubscription, SubscriptionRow};
use riskdesk_storage::time::to_micros;
use serde::Serialize;
use uuid::Uuid;

use crate::kernel::Uow;
use crate::kernel::error::AppError;

/// `next_check_day` that makes the next dunning run look at an invoice.
pub const CHECK_NOW: i32 = i32::MIN;

pub struct NewInvoice {
    pub customer: CustomerId,
    pub number: String,
    pub issue: Day,
    pub due: Day,
    pub currency: Currency,
    pub lines: Vec<(String, Money)>,
    pub total: Money,
    pub subscriptions: Vec<Uuid>,
}

/// Where a payment went.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Allocation {
    pub invoice_id: Uuid,
    pub invoice_number: String,
    /// Decimal string in the payment's currency.
    pub amount: String,
}

/// Changes an invoice's open amount by `delta` (negative pays, positive reopens) with one
/// ledger entry, keeping `settled_at` and the ladder's next check in step.
#[allow(clippy::too_many_arguments)]
async fn post_entry(
    tx: &mut Uow,
    tenant: TenantId,
    inv: &mut InvoiceRow,
    kind: &str,
    source: Option<Uuid>,
    delta: i64,
    at: i64,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), AppError> {
    billing::insert_entry(
        tx,
        tenant,
        &EntryRow {
            id: Uuid::now_v7(),
            invoice_id: inv.id,
            customer_id: inv.customer_id,
            kind: kind.to_owned(),
            source_id: source,
            amount_minor: delta,
            at,
            reason: reason.map(str::to_owned),
        },
    )
    .await?;
    let was_open = inv.open_minor > 0;
    inv.open_minor += delta;
    // updated_at ≥ every entry's time: an aging "as of" before it reads the ledger, after it
    // can trust open_minor.
    inv.updated_at = inv.updated_at.max(to_micros(now)).max(at + 1);
    if inv.open_minor <= 0 {
        inv.settled_at = Some(inv.updated_at);
        inv.next_check_day = None;
    } else {
        inv.settled_at = None;
        if !was_open {
            inv.next_check_day = Some(CHECK_NOW);
        }
    }
    billing::update_invoice(tx, tenant, inv).await?;
    Ok(())
}

async fn wallet(
    tx: &mut Uow,
    tenant: TenantId,
    customer: Uuid,
    currency: Currency,
    kind: &str,
    source: Option<Uuid>,
    amount: i64,
    at: i64,
    note: Option<&str>,
) -> Result<(), AppError> {
    billing::insert_wallet_entry(
        tx,
        tenant,
        &WalletEntryRow {
            id: Uuid::now_v7(),
            customer_id: customer,
            currency: currency.code().to_owned(),
            kind: kind.to_owned(),
            source_id: source,
            amount_minor: amount,
            at,
            note: note.map(str::to_owned),
        },
    )
    .await?;
    Ok(())
}

async fn balance_in(
    tx: &mut Uow,
    tenant: TenantId,
    customer: Uuid,
    currency: Currency,
) -> Result<i64, AppError> {
    Ok(billing::wallet_balance_tx(tx, tenant, customer, i64::MAX)
        .await?
        .into_iter()
        .find(|b| b.currency == currency.code())
        .map_or(0, |b| b.minor))
}

/// Records an invoice; a prepaid balance in its currency pays it at once, as far as it goes.
pub async fn create_invoice(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    n: NewInvoice,
    now: Timestamp,
) -> Result<InvoiceRow, AppError> {
    // The customer's lock first (nothing to do when the unit of work began holding it: see
    // `Ctx::begin_billing`); the customer is read with the insert, below.
    billing::lock_customer(tx, tenant, n.customer.0).await?;
    let customer = n.customer.0;
    let no_customer = || {
        AppError::field(
            "customer_id",
            format!("no customer {customer} in this tenant"),
        )
    };
    if !n.subscriptions.is_empty() {
        // An unknown customer is named before its subscriptions.
        match customers::get_tx(tx, tenant, n.customer).await {
            Err(riskdesk_storage::StorageError::NotFound(_)) => return Err(no_customer()),
            r => r?,
        };
    }
    // An invoice names only its own customer's subscriptions (another tenant's, or one that
    // does not exist, is refused naming it: they are linked to the invoice for dunning).
    for (i, id) in n.subscriptions.iter().enumerate() {
        let known = match subscriptions::get_with_instance_tx(
            tx,
            tenant,
            riskdesk_domain::SubscriptionId(*id),
        )
        .await
        {
            Ok(s) => s.sub.customer_id == customer,
            Err(riskdesk_storage::StorageError::NotFound(_)) => false,
            Err(e) => return Err(e.into()),
        };
        if !known {
            return Err(AppError::field(
                &format!("subscription_ids[{i}]"),
                format!("{id} is not a subscription of customer {customer}"),
            ));
        }
    }
    #[derive(Serialize)]
    struct Line<'a> {
        description: &'a str,
        amount: String,
    }
    let lines: Vec<Line> = n
        .lines
        .iter()
        .map(|(d, m)| Line {
            description: d,
            amount: m.to_decimal_string(),
        })
        .collect();
    let at = to_micros(now);
    let mut inv = InvoiceRow {
        id: Uuid::now_v7(),
        customer_id: customer,
        number: n.number,
        issue_day: n.issue.0,
        due_day: n.due.0,
        currency: n.currency.code().to_owned(),
        total_minor: n.total.minor,
        lines_json: serde_json::to_string(&lines).map_err(|e| AppError::Internal(e.to_string()))?,
        subscription_ids_json: serde_json::to_string(&n.subscriptions)
            .map_err(|e| AppError::Internal(e.to_string()))?,
        open_minor: n.total.minor,
        settled_at: None,
        disputed: false,
        dispute_reason: None,
        next_check_day: (n.total.minor > 0).then_some(CHECK_NOW),
        created_at: at,
        updated_at: at,
    };
    let (cust, prepaid) = match billing::insert_invoice_for_customer(
        tx,
        tenant,
        &inv,
        now,
        AuditDraft::new(actor, "invoice.create", "invoice", inv.id).after(&inv),
    )
    .await
    {
        Err(riskdesk_storage::StorageError::NotFound("customer")) => return Err(no_customer()),
        r => r?,
    };
    let available = prepaid
        .iter()
        .find(|(c, _)| c == n.currency.code())
        .map_or(0, |(_, m)| *m);
    let draw = available.min(inv.open_minor);
    if draw > 0 {
        let issued = Day(inv.issue_day).start();
        let when = to_micros(issued).max(at);
        wallet(
            tx,
            tenant,
            cust.id,
            n.currency,
            "invoice_draw",
            Some(inv.id),
            -draw,
            when,
            None,
        )
        .await?;
        let id = inv.id;
        post_entry(
            tx,
            tenant,
            &mut inv,
            "wallet",
            Some(id),
            -draw,
            when,
            None,
            now,
        )
        .await?;
        audit::append(
            tx,
            tenant,
            now,
            AuditDraft::new(actor, "invoice.paid_from_balance", "invoice", inv.id)
                .after(&inv)
                .note(Some(&format!(
                    "{} drawn from the prepaid balance",
                    Money {
                        minor: draw,
                        currency: n.currency
                    }
                    .to_decimal_string()
                ))),
        )
        .await?;
    }
    // Creating an invoice changes nothing on the customer's row: its credit terms as read.
    check_credit_limit_of(tx, tenant, &cust, now).await?;
    Ok(inv)
}

pub struct NewPayment {
    pub customer: CustomerId,
    pub amount: Money,
    pub received_at: Timestamp,
    pub reference: Option<String>,
    pub invoice: Option<Uuid>,
    /// A prepayment: goes to the wallet, pays no invoice.
    pub top_up: bool,
}

/// Records a payment: the named invoice first, then open invoices of the same currency oldest
/// due first (disputed ones only when named), the rest to the prepaid balance. The first payment
/// of a customer is recorded on it (it lifts the admin-access condition).
pub async fn record_payment(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    fallback: &Policy,
    p: NewPayment,
    now: Timestamp,
) -> Result<(PaymentRow, Vec<Allocation>, Money), AppError> {
    let cust = customers::get_tx(tx, tenant, p.customer).await?;
    billing::lock_customer(tx, tenant, cust.id).await?;
    let at = to_micros(p.received_at);
    let pay = PaymentRow {
        id: Uuid::now_v7(),
        customer_id: cust.id,
        amount_minor: p.amount.minor,
        currency: p.amount.currency.code().to_owned(),
        received_at: at,
        reference: p.reference.clone(),
        invoice_id: p.invoice,
        status: "received".into(),
        created_at: to_micros(now),
    };
    billing::insert_payment(tx, tenant, &pay).await?;
    let mut targets: Vec<InvoiceRow> = Vec::new();
    if !p.top_up {
        if let Some(id) = p.invoice {
            let inv = billing::get_invoice_tx(tx, tenant, id).await.map_err(|_| {
                AppError::field("invoice_id", format!("no invoice {id} in this tenant"))
            })?;
            if inv.customer_id != cust.id {
                return Err(AppError::field(
                    "invoice_id",
                    "the invoice belongs to another customer",
                ));
            }
            if inv.currency != pay.currency {
                return Err(AppError::field(
                    "invoice_id",
                    format!(
                        "the invoice is in {}, the payment in {}",
                        inv.currency, pay.currency
                    ),
                ));
            }
            targets.push(inv);
        }
        for inv in billing::open_invoices_tx(tx, tenant, cust.id).await? {
            if inv.currency == pay.currency && !inv.disputed && Some(inv.id) != p.invoice {
                targets.push(inv);
            }
        }
    }
    let mut left = pay.amount_minor;
    let mut allocations = Vec::new();
    for mut inv in targets {
        if left == 0 {
            break;
        }
        let part = left.min(inv.open_minor);
        if part <= 0 {
            continue;
        }
        post_entry(
            tx,
            tenant,
            &mut inv,
            "payment",
            Some(pay.id),
            -part,
            at,
            None,
            now,
        )
        .await?;
        left -= part;
        allocations.push(Allocation {
            invoice_id: inv.id,
            invoice_number: inv.number.clone(),
            amount: Money {
                minor: part,
                currency: p.amount.currency,
            }
            .to_decimal_string(),
        });
    }
    if left > 0 {
        let kind = if p.top_up { "top_up" } else { "overpayment" };
        wallet(
            tx,
            tenant,
            cust.id,
            p.amount.currency,
            kind,
            Some(pay.id),
            left,
            at,
            None,
        )
        .await?;
    }
    #[derive(Serialize)]
    struct PaymentAudit<'a> {
        payment: &'a PaymentRow,
        allocations: &'a [Allocation],
        to_balance: String,
    }
    let to_balance = Money {
        minor: left,
        currency: p.amount.currency,
    };
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(
            actor,
            if p.top_up {
                "payment.top_up"
            } else {
                "payment.receive"
            },
            "payment",
            pay.id,
        )
        .after(&PaymentAudit {
            payment: &pay,
            allocations: &allocations,
            to_balance: to_balance.to_decimal_string(),
        }),
    )
    .await?;
    if cust.first_payment_at.is_none() {
        first_payment(tx, tenant, actor, &cust, at, now).await?;
    }
    if left > 0 {
        activate_prepaid(tx, tenant, actor, cust.id, now).await?;
    }
    crate::billing::dunning::run_customers(tx, tenant, fallback, &[cust.id], None, now).await?;
    Ok((pay, allocations, to_balance))
}

async fn first_payment(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    cust: &CustomerRow,
    at: i64,
    now: Timestamp,
) -> Result<(), AppError> {
    let (before, after) = customers::change(tx, tenant, CustomerId(cust.id), now, |c| {
        c.first_payment_at = Some(at)
    })
    .await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "customer.first_payment", "customer", cust.id)
            .before(&before)
            .after(&after),
    )
    .await?;
    Ok(())
}

/// Reverses a payment: every invoice it paid reopens by what it paid, and what it left on the
/// prepaid balance is taken back (the balance may go negative: the customer owes it).
pub async fn chargeback(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    fallback: &Policy,
    payment: Uuid,
    reason: &str,
    now: Timestamp,
) -> Result<PaymentRow, AppError> {
    let before = billing::get_payment_tx(tx, tenant, payment).await?;
    billing::lock_customer(tx, tenant, before.customer_id).await?;
    if before.status == "charged_back" {
        return Err(AppError::Conflict(
            "this payment is already charged back".into(),
        ));
    }
    let currency = Currency::parse(&before.currency).map_err(|e| AppError::Internal(e.0))?;
    let at = to_micros(now);
    let mut reopened = 0;
    for e in billing::entries_from_source_tx(tx, tenant, payment).await? {
        if e.kind != "payment" {
            continue;
        }
        let mut inv = billing::get_invoice_tx(tx, tenant, e.invoice_id).await?;
        post_entry(
            tx,
            tenant,
            &mut inv,
            "chargeback",
            Some(payment),
            -e.amount_minor,
            at,
            Some(reason),
            now,
        )
        .await?;
        reopened -= e.amount_minor;
    }
    let to_wallet = before.amount_minor - reopened;
    if to_wallet > 0 {
        wallet(
            tx,
            tenant,
            before.customer_id,
            currency,
            "chargeback",
            Some(payment),
            -to_wallet,
            at,
            Some(reason),
        )
        .await?;
    }
    billing::set_payment_status(tx, tenant, payment, "charged_back").await?;
    let mut after = before.clone();
    after.status = "charged_back".into();
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "payment.chargeback", "payment", payment)
            .before(&before)
            .after(&after)
            .reason("chargeback")
            .note(Some(reason)),
    )
    .await?;
    crate::billing::dunning::run_customers(tx, tenant, fallback, &[before.customer_id], None, now)
        .await?;
    check_credit_limit(tx, tenant, before.customer_id, now).await?;
    Ok(after)
}

/// A credit note: lowers the invoice's open amount; what exceeds it (the invoice was already
/// paid) goes to the prepaid balance. Credits on one invoice never exceed its total.
pub async fn credit_note(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    fallback: &Policy,
    invoice: Uuid,
    amount: &str,
    reason: &str,
    now: Timestamp,
) -> Result<InvoiceRow, AppError> {
    let mut inv = billing::get_invoice_tx(tx, tenant, invoice).await?;
    billing::lock_customer(tx, tenant, inv.customer_id).await?;
    let currency = Currency::parse(&inv.currency).map_err(|e| AppError::Internal(e.0))?;
    let amount = Money::parse(amount, currency).map_err(|e| AppError::field("amount", e.0))?;
    if amount.minor <= 0 {
        return Err(AppError::field("amount", "must be more than zero"));
    }
    let credited: i64 = billing::entries_from_source_tx(tx, tenant, inv.id)
        .await?
        .iter()
        .filter(|e| e.kind == "credit_note")
        .map(|e| -e.amount_minor)
        .sum::<i64>()
        + credited_to_wallet(tx, tenant, &inv).await?;
    if credited + amount.minor > inv.total_minor {
        return Err(AppError::field(
            "amount",
            format!(
                "credits on invoice {} would exceed its total of {} (already credited: {})",
                inv.number,
                Money {
                    minor: inv.total_minor,
                    currency
                }
                .to_decimal_string(),
                Money {
                    minor: credited,
                    currency
                }
                .to_decimal_string()
            ),
        ));
    }
    let before = inv.clone();
    let on_invoice = amount.minor.min(inv.open_minor.max(0));
    let at = to_micros(now);
    if on_invoice > 0 {
        let id = inv.id;
        post_entry(
            tx,
            tenant,
            &mut inv,
            "credit_note",
            Some(id),
            -on_invoice,
            at,
            Some(reason),
            now,
        )
        .await?;
    }
    let rest = amount.minor - on_invoice;
    if rest > 0 {
        wallet(
            tx,
            tenant,
            inv.customer_id,
            currency,
            "credit_note",
            Some(inv.id),
            rest,
            at,
            Some(reason),
        )
        .await?;
    }
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "invoice.credit_note", "invoice", inv.id)
            .before(&before)
            .after(&inv)
            .note(Some(&format!(
                "{} credited: {reason}",
                amount.to_decimal_string()
            ))),
    )
    .await?;
    crate::billing::dunning::run_customers(tx, tenant, fallback, &[inv.customer_id], None, now)
        .await?;
    Ok(inv)
}

async fn credited_to_wallet(
    tx: &mut Uow,
    tenant: TenantId,
    inv: &InvoiceRow,
) -> Result<i64, AppError> {
    // Credit-note surpluses are wallet entries whose source is the invoice.
    let entries = billing::wallet_entries_from_source_tx(tx, tenant, inv.id).await?;
    Ok(entries
        .iter()
        .filter(|w| w.kind == "credit_note")
        .map(|w| w.amount_minor)
        .sum())
}

/// Writes off what is still open on an invoice (it leaves the dunning ladder).
pub async fn write_off(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    fallback: &Policy,
    invoice: Uuid,
    reason: &str,
    now: Timestamp,
) -> Result<InvoiceRow, AppError> {
    let mut inv = billing::get_invoice_tx(tx, tenant, invoice).await?;
    billing::lock_customer(tx, tenant, inv.customer_id).await?;
    if inv.open_minor <= 0 {
        return Err(AppError::Conflict(format!(
            "invoice {} has nothing open to write off",
            inv.number
        )));
    }
    let before = inv.clone();
    let open = inv.open_minor;
    let id = inv.id;
    post_entry(
        tx,
        tenant,
        &mut inv,
        "write_off",
        Some(id),
        -open,
        to_micros(now),
        Some(reason),
        now,
    )
    .await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "invoice.write_off", "invoice", inv.id)
            .before(&before)
            .after(&inv)
            .note(Some(reason)),
    )
    .await?;
    crate::billing::dunning::run_customers(tx, tenant, fallback, &[inv.customer_id], None, now)
        .await?;
    Ok(inv)
}

/// Opens or closes a dispute on an invoice: a disputed invoice takes no dunning step and pulls
/// no lever until the dispute is closed.
pub async fn dispute(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    fallback: &Policy,
    invoice: Uuid,
    open: bool,
    reason: &str,
    now: Timestamp,
) -> Result<InvoiceRow, AppError> {
    let mut inv = billing::get_invoice_tx(tx, tenant, invoice).await?;
    let before = inv.clone();
    inv.disputed = open;
    inv.dispute_reason = open.then(|| reason.to_owned());
    if inv.open_minor > 0 {
        inv.next_check_day = Some(CHECK_NOW);
    }
    inv.updated_at = inv.updated_at.max(to_micros(now));
    billing::update_invoice(tx, tenant, &inv).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(
            actor,
            if open {
                "invoice.dispute_open"
            } else {
                "invoice.dispute_close"
            },
            "invoice",
            inv.id,
        )
        .before(&before)
        .after(&inv)
        .note(Some(reason)),
    )
    .await?;
    crate::billing::dunning::run_customers(tx, tenant, fallback, &[inv.customer_id], None, now)
        .await?;
    Ok(inv)
}

/// Pays money back out of the prepaid balance (never more than it holds).
pub async fn refund(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: CustomerId,
    amount: Money,
    reason: &str,
    now: Timestamp,
) -> Result<Money, AppError> {
    customers::get_tx(tx, tenant, customer).await?;
    billing::lock_customer(tx, tenant, customer.0).await?;
    if amount.minor <= 0 {
        return Err(AppError::field("amount", "must be more than zero"));
    }
    let available = balance_in(tx, tenant, customer.0, amount.currency).await?;
    if amount.minor > available {
        return Err(AppError::Conflict(format!(
            "the prepaid balance holds {} {}; cannot refund {}",
            Money {
                minor: available.max(0),
                currency: amount.currency
            }
            .to_decimal_string(),
            amount.currency,
            amount.to_decimal_string()
        )));
    }
    let id = Uuid::now_v7();
    wallet(
        tx,
        tenant,
        customer.0,
        amount.currency,
        "refund",
        Some(id),
        -amount.minor,
        to_micros(now),
        Some(reason),
    )
    .await?;
    let left = Money {
        minor: available - amount.minor,
        currency: amount.currency,
    };
    #[derive(Serialize)]
    struct RefundAudit {
        amount: String,
        currency: String,
        balance_after: String,
    }
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "balance.refund", "customer", customer.0)
            .after(&RefundAudit {
                amount: amount.to_decimal_string(),
                currency: amount.currency.code().to_owned(),
                balance_after: left.to_decimal_string(),
            })
            .note(Some(reason)),
    )
    .await?;
    check_credit_limit(tx, tenant, customer.0, now).await?;
    Ok(left)
}

/// Per currency: [unbilled usage, unpaid invoices, prepaid balance] in minor units. Exposure is
/// `unbilled + unpaid − prepaid`.
pub type ExposureParts = std::collections::BTreeMap<String, [i64; 3]>;

/// Where unbilled usage starts (µs): the last invoice's issue date (it billed what came
/// before), or the beginning when nothing was invoiced yet.
pub fn unbilled_from(last_issue_day: Option<i32>) -> i64 {
    last_issue_day.map_or(i64::MIN, |d| to_micros(Day(d).start()))
}

/// Folds the three stored figures into per-currency exposure parts (usage picos rounded to the
/// currency's minor unit; currencies never mixed).
pub fn fold_exposure(
    unpaid: Vec<billing::CurrencyAmount>,
    prepaid: Vec<billing::CurrencyAmount>,
    usage: Vec<riskdesk_storage::events::CurrencySpend>,
) -> ExposureParts {
    let mut per = ExposureParts::new();
    for u in unpaid {
        per.entry(u.currency).or_default()[1] += u.minor;
    }
    for w in prepaid {
        per.entry(w.currency).or_default()[2] += w.minor;
    }
    for sp in usage {
        if let Ok(cur) = Currency::parse(&sp.currency) {
            per.entry(sp.currency).or_default()[0] +=
                riskdesk_domain::monitoring::cost::picos_to_minor(
                    riskdesk_domain::monitoring::cost::join(sp.units, sp.rem),
                    cur,
                );
        }
    }
    per
}

/// A customer's exposure against its credit limit, in the credit currency (minor units).
pub struct CreditStanding {
    pub currency: String,
    pub limit: i64,
    pub unbilled: i64,
    pub unpaid: i64,
    pub prepaid: i64,
}

impl CreditStanding {
    pub fn exposure(&self) -> i64 {
        self.unbilled + self.unpaid - self.prepaid
    }
}

/// The customer's credit standing now (None without a credit limit).
pub async fn credit_standing_tx(
    tx: &mut Uow,
    tenant: TenantId,
    customer: Uuid,
    now: Timestamp,
) -> Result<Option<CreditStanding>, AppError> {
    let c = customers::get_tx(tx, tenant, CustomerId(customer)).await?;
    credit_standing_of(tx, tenant, &c, now).await
}

/// [`credit_standing_tx`] of a customer row already read in this unit of work.
pub async fn credit_standing_of(
    tx: &mut Uow,
    tenant: TenantId,
    c: &customers::CustomerRow,
    now: Timestamp,
) -> Result<Option<CreditStanding>, AppError> {
    let customer = c.id;
    let (Some(limit), Some(cur)) = (c.credit_limit_minor, c.credit_currency.clone()) else {
        return Ok(None);
    };
    let before = to_micros(now);
    let day = Day::of(now);
    let unpaid = billing::unpaid_by_currency_tx(tx, tenant, customer, day.0, before).await?;
    let prepaid = billing::wallet_balance_tx(tx, tenant, customer, before).await?;
    let from = unbilled_from(billing::last_issue_day_tx(tx, tenant, customer, day.0).await?);
    let usage =
        riskdesk_storage::events::spend_between_tx(tx, tenant, customer, from, before).await?;
    let [unbilled, unpaid, prepaid] = fold_exposure(unpaid, prepaid, usage)
        .get(&cur)
        .copied()
        .unwrap_or_default();
    Ok(Some(CreditStanding {
        currency: cur,
        limit,
        unbilled,
        unpaid,
        prepaid,
    }))
}

/// Refuses a new purchase when the customer's credit terms block purchases over the limit
/// (`on_breach: block_new_purchases`, `auto`) and its exposure is over it now.
pub async fn check_purchase_allowed(
    tx: &mut Uow,
    tenant: TenantId,
    customer: Uuid,
    now: Timestamp,
) -> Result<(), AppError> {
    let Some(e) = billing::credit_enforcement_tx(tx, tenant, customer).await? else {
        return Ok(());
    };
    if e.action != "block_new_purchases" || e.mode != "auto" {
        return Ok(());
    }
    if let Some(st) = credit_standing_tx(tx, tenant, customer, now).await?
        && st.exposure() > st.limit
    {
        let currency = Currency::parse(&st.currency).map_err(|e| AppError::Internal(e.0))?;
        let m = |minor| Money { minor, currency }.to_decimal_string();
        return Err(AppError::Conflict(format!(
            "new purchases are blocked: exposure {} {} is over the credit limit of {} {}",
            m(st.exposure()),
            st.currency,
            m(st.limit),
            st.currency
        )));
    }
    Ok(())
}

/// When a customer's exposure in its credit currency is above its credit limit, raises (or
/// folds, within a day) a `credit_limit.exceeded` alert with the figures as evidence, and
/// applies or proposes the enforcement its credit terms name.
pub async fn check_credit_limit(
    tx: &mut Uow,
    tenant: TenantId,
    customer: Uuid,
    now: Timestamp,
) -> Result<Option<Uuid>, AppError> {
    let c = customers::get_tx(tx, tenant, CustomerId(customer)).await?;
    check_credit_limit_of(tx, tenant, &c, now).await
}

/// [`check_credit_limit`] of a customer row already read in this unit of work (its credit
/// terms as they are now).
pub async fn check_credit_limit_of(
    tx: &mut Uow,
    tenant: TenantId,
    c: &customers::CustomerRow,
    now: Timestamp,
) -> Result<Option<Uuid>, AppError> {
    let customer = c.id;
    let Some(st) = credit_standing_of(tx, tenant, c, now).await? else {
        return Ok(None);
    };
    let (limit, cur, unbilled, unpaid, prepaid) = (
        st.limit,
        st.currency.clone(),
        st.unbilled,
        st.unpaid,
        st.prepaid,
    );
    let exposure = st.exposure();
    if exposure <= limit {
        return Ok(None);
    }
    let before = to_micros(now);
    let currency = Currency::parse(&cur).map_err(|e| AppError::Internal(e.0))?;
    let m = |minor| Money { minor, currency }.to_decimal_string();
    let title = format!(
        "Exposure {} {cur} is over the credit limit of {} {cur}",
        m(exposure),
        m(limit)
    );
    let mut evidence = serde_json::json!({
        "exposure": m(exposure), "credit_limit": m(limit), "currency": cur,
        "unbilled": m(unbilled), "unpaid": m(unpaid), "prepaid": m(prepaid),
    });
    let actor = Actor::system("billing");
    if let Some(e) = billing::credit_enforcement_tx(tx, tenant, customer).await? {
        let auto = e.mode == "auto";
        let mut acted = Vec::new();
        if auto {
            let note = format!(
                "exposure {} {cur} over the credit limit of {} {cur}",
                m(exposure),
                m(limit)
            );
            match e.action.as_str() {
                // Applied where it bites: `create_subscription` refuses while over the limit.
                "block_new_purchases" => {}
                "suspend" => {
                    acted = crate::accounts::act_on_active_subscriptions(
                        tx,
                        tenant,
                        &actor,
                        customer,
                        riskdesk_domain::LifecycleAction::Suspend,
                        &note,
                        now,
                    )
                    .await?;
                }
                _ => {
                    let (before, after) =
                        customers::change(tx, tenant, CustomerId(customer), now, |c| {
                            c.prepayment_required = true
                        })
                        .await?;
                    if before != after {
                        audit::append(
                            tx,
                            tenant,
                            now,
                            AuditDraft::new(
                                &actor,
                                "customer.prepayment_required",
                                "customer",
                                customer,
                            )
                            .before(&before)
                            .after(&after)
                            .note(Some(&note)),
                        )
                        .await?;
                    }
                }
            }
        }
        evidence["enforcement"] = serde_json::json!({
            "action": e.action, "mode": e.mode, "applied": auto, "subscriptions_acted_on": acted,
        });
    }
    let row = crate::alerts::raise(
        tx,
        tenant,
        &actor,
        riskdesk_storage::alerts::NewAlert {
            customer_id: Some(customer),
            rule: "credit_limit.exceeded",
            severity: "high",
            title: &title,
            evidence_json: evidence.to_string(),
            at: before,
            cooldown_micros: 24 * 3600 * 1_000_000,
            occurrences: 1,
            last_at: before,
        },
        now,
    )
    .await?;
    if let Some(e) = billing::credit_enforcement_tx(tx, tenant, customer).await?
        && e.mode == "require_approval"
    {
        let kind = match e.action.as_str() {
            "suspend" => Some(riskdesk_domain::response::ActionKind::Suspend),
            "require_prepayment" => Some(riskdesk_domain::response::ActionKind::RequirePrepayment),
            // Blocking new purchases has no action of its own: the alert's case carries it.
            _ => None,
        };
        if let Some(kind) = kind {
            tx.approvals()
                .propose_enforcement(
                    tx,
                    crate::kernel::ports::EnforcementProposal {
                        tenant,
                        actor: &actor,
                        customer,
                        kind,
                        why: &title,
                        alert: Some(row.id),
                        now,
                    },
                )
                .await?;
        }
    }
    Ok(Some(row.id))
}

/// Activates the customer's `pending_payment` subscriptions, oldest first, as far as its
/// prepaid balance covers their first periods (each currency on its own). Returns how many.
pub async fn activate_prepaid(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: Uuid,
    now: Timestamp,
) -> Result<u64, AppError> {
    let pending =
        riskdesk_storage::subscriptions::pending_tx(tx, tenant, CustomerId(customer)).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let mut left: std::collections::HashMap<String, i64> =
        billing::wallet_balance_tx(tx, tenant, customer, i64::MAX)
            .await?
            .into_iter()
            .map(|b| (b.currency, b.minor))
            .collect();
    let mut n = 0;
    for sub in pending {
        let (Some(price), Some(cur)) = (sub.first_period_minor, sub.first_period_currency.clone())
        else {
            continue;
        };
        let available = left.entry(cur).or_insert(0);
        if *available < price {
            // Oldest first: a later, cheaper subscription does not jump the queue.
            break;
        }
        *available -= price;
        let after = riskdesk_storage::subscriptions::set_status(
            tx,
            &sub,
            riskdesk_domain::SubscriptionStatus::Active,
            now,
        )
        .await?;
        audit::append(
            tx,
            tenant,
            now,
            AuditDraft::new(actor, "subscription.activate", "subscription", sub.id)
                .before(&sub)
                .after(&after)
                .reason("prepayment"),
        )
        .await?;
        n += 1;
    }
    Ok(n)
}

// ---- purchases --------------------------------------------------------------------------------

/// A purchase as the partner asks for it; `create_subscription` checks it against the credit
/// policy (a customer that must prepay needs the balance) before the subscription exists.
pub struct SubscriptionInput {
    pub offer: String,
    pub external_id: Option<String>,
    pub quantity: i64,
    /// The first period's price: a customer that must prepay gets the subscription
    /// `pending_payment` until its prepaid balance covers it.
    pub first_period: Option<riskdesk_domain::money::Money>,
}

pub async fn create_subscription(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: CustomerId,
    s: SubscriptionInput,
    now: Timestamp,
) -> Result<SubscriptionRow, AppError> {
    // Confirms the customer exists in this tenant (another tenant's is "not found").
    let c = customers::get_tx(tx, tenant, customer).await?;
    if c.purchases_blocked {
        return Err(AppError::Conflict(
            "new purchases are blocked for this customer until its overdue invoices are paid (dunning)".into(),
        ));
    }
    crate::billing::check_purchase_allowed(tx, tenant, customer.0, now).await?;
    let status = if c.prepayment_required {
        let price = s.first_period.ok_or_else(|| {
            AppError::field(
                "first_period_amount",
                "this customer must prepay: give the first period's price (first_period_amount and currency)",
            )
        })?;
        let balance =
            riskdesk_storage::billing::wallet_balance_tx(tx, tenant, customer.0, i64::MAX)
                .await?
                .into_iter()
                .find(|b| b.currency == price.currency.code())
                .map_or(0, |b| b.minor);
        let waiting =
            subscriptions::pending_first_periods_tx(tx, tenant, customer, price.currency.code())
                .await?;
        if balance - waiting >= price.minor {
            SubscriptionStatus::Active
        } else {
            SubscriptionStatus::PendingPayment
        }
    } else {
        SubscriptionStatus::Active
    };
    let new = NewSubscription {
        offer: s.offer,
        external_id: s.external_id,
        quantity: s.quantity,
        status,
        first_period: s
            .first_period
            .map(|m| (m.minor, m.currency.code().to_owned())),
    };
    let row = subscriptions::insert(tx, tenant, customer, &new, now).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "subscription.create", "subscription", row.id).after(&row),
    )
    .await?;
    Ok(row)
}
