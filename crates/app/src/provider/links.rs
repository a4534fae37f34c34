//! Links between riskdesk's customers and subscriptions and their ids at Partner Center: once
//! linked, actions on them are carried out at the provider.

use jiff::Timestamp;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::{CustomerId, SubscriptionId, TenantId};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::provider::{self, CustomerLink, SubscriptionLink};
use riskdesk_storage::time::to_micros;
use riskdesk_storage::{customers, subscriptions};

use crate::kernel::Uow;
use crate::kernel::error::AppError;

/// Links a customer to its Partner Center customer (tenant) id, replacing any earlier link:
/// checks the customer exists, writes the link and audits it as `customer.provider_link`
/// (the earlier link, if any, as its `before`).
pub async fn link_customer(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: CustomerId,
    provider_customer_id: &str,
    now: Timestamp,
) -> Result<CustomerLink, AppError> {
    customers::get_tx(tx, tenant, customer).await?;
    let before = provider::customer_link_tx(tx, tenant, customer.0).await?;
    let l = provider::link_customer(tx, tenant, customer.0, provider_customer_id, to_micros(now))
        .await?;
    let mut d = AuditDraft::new(actor, "customer.provider_link", "customer", customer.0).after(&l);
    if let Some(b) = &before {
        d = d.before(b);
    }
    audit::append(tx, tenant, now, d).await?;
    Ok(l)
}

/// Links a subscription to its Partner Center subscription id (and, for an Azure subscription
/// inside an Azure plan, its entitlement id), replacing any earlier link: checks the
/// subscription exists, writes the link and audits it as `subscription.provider_link` (the
/// earlier link, if any, as its `before`).
pub async fn link_subscription(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    subscription: SubscriptionId,
    provider_subscription_id: &str,
    entitlement: Option<&str>,
    now: Timestamp,
) -> Result<SubscriptionLink, AppError> {
    subscriptions::get_with_instance_tx(tx, tenant, subscription).await?;
    let before = provider::subscription_link_tx(tx, tenant, subscription.0).await?;
    let l = provider::link_subscription(
        tx,
        tenant,
        subscription.0,
        provider_subscription_id,
        entitlement,
        to_micros(now),
    )
    .await?;
    let mut d = AuditDraft::new(
        actor,
        "subscription.provider_link",
        "subscription",
        subscription.0,
    )
    .after(&l);
    if let Some(b) = &before {
        d = d.before(b);
    }
    audit::append(tx, tenant, now, d).await?;
    Ok(l)
}
