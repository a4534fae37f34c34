//! Collections settings and their plumbing as units of work: the tenant's dunning ladder, a
//! customer's dunning override and credit terms, payment instruments, webhook endpoints and
//! re-sending an outbox message. Each writes, audits, and brings what depends on the change in
//! line in the caller's unit of work; the caller has validated the input's shape.

use jiff::Timestamp;
use rand::RngCore;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::billing::Day;
use riskdesk_domain::billing::dunning::Policy;
use riskdesk_domain::money::Money;
use riskdesk_domain::{CustomerId, TenantId};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::billing::{self, CreditEnforcementRow, InstrumentRow};
use riskdesk_storage::customers;
use riskdesk_storage::dunning::{self as store, OverrideRow};
use riskdesk_storage::outbox::{self, EndpointRow, OutboxRow};
use riskdesk_storage::time::to_micros;
use uuid::Uuid;

use crate::kernel::Uow;
use crate::kernel::error::AppError;

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, AppError> {
    serde_json::to_string(v).map_err(|e| AppError::Internal(e.to_string()))
}

/// Stores `policy` as the tenant's dunning ladder and audits it (`dunning.policy`, with the
/// ladder it replaces as the before snapshot). Every open invoice is re-evaluated by the next
/// run.
pub async fn set_policy(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    policy: &Policy,
    now: Timestamp,
) -> Result<(), AppError> {
    let json = to_json(policy)?;
    let before = store::policy_tx(tx, tenant).await?;
    store::put_policy(tx, tenant, &json, to_micros(now)).await?;
    let mut d = AuditDraft::new(actor, "dunning.policy", "tenant", tenant.0).after(policy);
    if let Some(b) = before
        .as_deref()
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
    {
        d = d.before(&b);
    }
    audit::append(tx, tenant, now, d).await?;
    Ok(())
}

/// A customer's exceptions to the tenant's ladder, as staff set them.
pub struct DunningOverride {
    /// A whole ladder for this customer instead of the tenant's.
    pub policy: Option<Policy>,
    /// Notices continue, levers never fire (and any in force are undone).
    pub enforcement_off: bool,
    /// No notices, no levers.
    pub excluded: bool,
    /// Hold the whole account until this day (exclusive); needs a `hold_reason`.
    pub hold_until: Option<Day>,
    pub hold_reason: Option<String>,
}

/// Replaces the customer's dunning override, audits it (`customer.dunning_override`, before
/// and after), then runs the ladder for that customer so its levers are in line at once.
/// `fallback` is the installation's ladder, for a tenant without its own.
pub async fn set_override(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: CustomerId,
    o: DunningOverride,
    fallback: &Policy,
    now: Timestamp,
) -> Result<(), AppError> {
    if o.hold_until.is_some() && o.hold_reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(AppError::field(
            "hold_reason",
            "say why the account is on hold",
        ));
    }
    let row = OverrideRow {
        customer_id: customer.0,
        policy_json: o.policy.as_ref().map(to_json).transpose()?,
        enforcement_off: o.enforcement_off,
        excluded: o.excluded,
        hold_until_day: o.hold_until.map(|d| d.0),
        hold_reason: o.hold_reason,
        updated_at: to_micros(now),
    };
    customers::get_tx(tx, tenant, customer).await?;
    let before = store::put_override(tx, tenant, &row).await?;
    let mut d =
        AuditDraft::new(actor, "customer.dunning_override", "customer", customer.0).after(&row);
    if let Some(b) = &before {
        d = d.before(b);
    }
    audit::append(tx, tenant, now, d).await?;
    super::dunning::run_customers(tx, tenant, fallback, &[customer.0], None, now).await?;
    Ok(())
}

/// A payment instrument as registered (never a full card number).
pub struct NewInstrument {
    /// `card`, `bank_transfer` or `invoice`.
    pub kind: String,
    pub bin: Option<String>,
    pub last4: Option<String>,
    pub country: Option<String>,
    /// From the BIN table: credit, debit, prepaid, … (none when unknown).
    pub funding: Option<String>,
}

/// Registers a payment instrument for an existing customer of the tenant and audits it
/// (`customer.payment_instrument`). Returns the stored instrument.
pub async fn add_instrument(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: CustomerId,
    i: NewInstrument,
    now: Timestamp,
) -> Result<InstrumentRow, AppError> {
    customers::get_tx(tx, tenant, customer).await?;
    let row = InstrumentRow {
        id: Uuid::now_v7(),
        customer_id: customer.0,
        kind: i.kind,
        bin: i.bin,
        last4: i.last4,
        country: i.country,
        funding: i.funding,
        created_at: to_micros(now),
    };
    billing::insert_instrument(tx, tenant, &row).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "customer.payment_instrument", "customer", customer.0).after(&row),
    )
    .await?;
    Ok(row)
}

/// Registers an active webhook endpoint at `url` with a fresh signing secret
/// (`whsec_<48 hex>`) and audits it (`webhook_endpoint.create`, the secret left out). The
/// returned row carries the secret, for the caller to show once.
pub async fn create_endpoint(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    url: String,
    now: Timestamp,
) -> Result<EndpointRow, AppError> {
    let mut raw = [0u8; 24];
    rand::rng().fill_bytes(&mut raw);
    let row = EndpointRow {
        id: Uuid::now_v7(),
        tenant_id: tenant.0,
        url,
        secret: format!("whsec_{}", hex::encode(raw)),
        active: true,
        created_at: to_micros(now),
    };
    outbox::insert_endpoint(tx, &row).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "webhook_endpoint.create", "webhook_endpoint", row.id).after(&row),
    )
    .await?;
    Ok(row)
}

/// Queues an outbox message again, due now (it keeps its id and attempts), and audits it
/// (`outbox.resend`). Returns the message as queued.
pub async fn resend(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: Uuid,
    now: Timestamp,
) -> Result<OutboxRow, AppError> {
    let m = outbox::resend(tx, tenant, id, to_micros(now)).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "outbox.resend", "outbox", id),
    )
    .await?;
    Ok(m)
}

/// A customer's credit terms, as staff decide them.
pub struct CreditTerms {
    /// The credit limit (its currency is the credit currency); not negative.
    pub limit: Money,
    /// New subscriptions wait until the prepaid balance covers their first period.
    pub prepayment_required: bool,
    /// What a breach of the limit does (none: an alert only).
    pub on_breach: Option<CreditEnforcementRow>,
}

/// Sets the customer's credit limit, prepayment requirement and breach enforcement, audits
/// them (`customer.credit_terms`), then activates the pending subscriptions the prepaid
/// balance now covers and raises the credit-limit alert (with its enforcement) if the limit is
/// already exceeded.
pub async fn set_credit_terms(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: CustomerId,
    t: CreditTerms,
    now: Timestamp,
) -> Result<(), AppError> {
    let (before, after) = customers::set_terms(
        tx,
        tenant,
        customer,
        t.limit.minor,
        t.limit.currency.code(),
        t.prepayment_required,
        None,
        now,
    )
    .await?;
    billing::put_credit_enforcement(tx, tenant, customer.0, t.on_breach.as_ref(), to_micros(now))
        .await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "customer.credit_terms", "customer", customer.0)
            .before(&before)
            .after(&serde_json::json!({"customer": &after, "on_breach": &t.on_breach})),
    )
    .await?;
    super::activate_prepaid(tx, tenant, actor, customer.0, now).await?;
    super::check_credit_limit(tx, tenant, customer.0, now).await?;
    Ok(())
}
