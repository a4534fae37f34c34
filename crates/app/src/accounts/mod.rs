//! The operations behind the API and the CLI, independent of HTTP. Each runs inside a caller's
//! unit of work ([`Tx`]) and records its audit entry there, so a change and its audit entry
//! commit together or not at all.

use jiff::Timestamp;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::customer::{CustomerPatch, NewCustomer};
use riskdesk_domain::lifecycle::transition;
use riskdesk_domain::{
    CloudInstance, CustomerId, LifecycleAction, Reason, Role, SubscriptionId, SubscriptionStatus,
    TenantId, TenantSlug, TokenId,
};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::customers::{self, CustomerRow};
use riskdesk_storage::subscriptions::{self, SubscriptionRow};
use riskdesk_storage::tenants::{self, TenantRow};
use riskdesk_storage::tokens::{self, TokenRow};
use riskdesk_storage::{Db, StorageError, Tx};
use uuid::Uuid;

use crate::kernel::error::AppError;
use crate::kernel::{Event, Uow};

pub mod staff;

pub const DEFAULT_TENANT: &str = "default";

pub async fn create_customer(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    c: &NewCustomer,
    now: Timestamp,
) -> Result<CustomerRow, AppError> {
    let row = customers::insert(tx, tenant, c, now).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "customer.create", "customer", row.id).after(&row),
    )
    .await?;
    if let Some(ext) = &row.external_id {
        // Events that arrived for this external id before the customer existed are its now.
        tx.emit(Event::CustomerExternalIdSet {
            tenant,
            at: now,
            customer: CustomerId(row.id),
            external_id: ext,
        })
        .await?;
    }
    Ok(row)
}

pub async fn update_customer(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: CustomerId,
    patch: &CustomerPatch,
    now: Timestamp,
) -> Result<CustomerRow, AppError> {
    let (before, after) = customers::update(tx, tenant, id, patch, now).await?;
    if before != after {
        audit::append(
            tx,
            tenant,
            now,
            AuditDraft::new(actor, "customer.update", "customer", after.id)
                .before(&before)
                .after(&after),
        )
        .await?;
    }
    if let Some(ext) = after
        .external_id
        .as_deref()
        .filter(|e| Some(*e) != before.external_id.as_deref())
    {
        tx.emit(Event::CustomerExternalIdSet {
            tenant,
            at: now,
            customer: CustomerId(after.id),
            external_id: ext,
        })
        .await?;
    }
    Ok(after)
}

/// Applies a lifecycle action as the domain's transition table decides. A refused action
/// returns an error before anything is written.
pub async fn act_on_subscription(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: SubscriptionId,
    action: LifecycleAction,
    reason: Reason,
    note: Option<&str>,
    now: Timestamp,
) -> Result<SubscriptionRow, AppError> {
    act(tx, tenant, actor, id, action, reason, note, now, false)
        .await
        .map(|(row, _)| row)
}

/// [`act_on_subscription`], also returning the subscription's audit history, the action's
/// entry last (read with the entry's insert: no round trip more).
#[allow(clippy::too_many_arguments)]
pub async fn act_on_subscription_with_history(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: SubscriptionId,
    action: LifecycleAction,
    reason: Reason,
    note: Option<&str>,
    now: Timestamp,
) -> Result<(SubscriptionRow, Vec<riskdesk_storage::audit::AuditRow>), AppError> {
    act(tx, tenant, actor, id, action, reason, note, now, true).await
}

#[allow(clippy::too_many_arguments)]
async fn act(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: SubscriptionId,
    action: LifecycleAction,
    reason: Reason,
    note: Option<&str>,
    now: Timestamp,
    history: bool,
) -> Result<(SubscriptionRow, Vec<riskdesk_storage::audit::AuditRow>), AppError> {
    let current = subscriptions::get_with_instance_tx(tx, tenant, id).await?;
    let instance = CloudInstance::parse(&current.cloud_instance).ok_or_else(|| {
        AppError::Internal(format!(
            "customer of subscription {id} has cloud instance '{}'",
            current.cloud_instance
        ))
    })?;
    let target = transition(instance, current.sub.status()?, action, reason)?;
    // The status change runs in its audit entry's statement on PostgreSQL.
    let (write, after) = subscriptions::set_status_q(&current.sub, target, now);
    let draft = AuditDraft::new(
        actor,
        match action {
            LifecycleAction::Suspend => "subscription.suspend",
            LifecycleAction::DisableAccess => "subscription.disable_access",
            LifecycleAction::Reactivate => "subscription.reactivate",
            LifecycleAction::Cancel => "subscription.cancel",
        },
        "subscription",
        id,
    )
    .before(&current.sub)
    .after(&after)
    .reason(reason.as_str())
    .note(note);
    let entries = if history {
        audit::append_after_with_history(tx, tenant, now, write, draft).await?
    } else {
        audit::append_after(tx, tenant, now, write, draft).await?;
        Vec::new()
    };
    Ok((after, entries))
}

pub async fn create_tenant(
    tx: &mut Tx,
    actor: &Actor,
    slug: &TenantSlug,
    name: &str,
    now: Timestamp,
) -> Result<TenantRow, AppError> {
    let row = tenants::insert(tx, slug, name, now).await?;
    audit::append(
        tx,
        row.tenant_id(),
        now,
        AuditDraft::new(actor, "tenant.create", "tenant", row.id).after(&row),
    )
    .await?;
    Ok(row)
}

pub async fn create_token(
    tx: &mut Tx,
    tenant: TenantId,
    actor: &Actor,
    name: &str,
    role: Role,
    now: Timestamp,
) -> Result<(TokenRow, String), AppError> {
    let (row, secret) = tokens::create(tx, tenant, name, role, now).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "token.create", "token", row.id).after(&row),
    )
    .await?;
    Ok((row, secret))
}

pub async fn revoke_token(
    tx: &mut Tx,
    actor: &Actor,
    id: TokenId,
    now: Timestamp,
) -> Result<TokenRow, AppError> {
    let before = tokens::revoke(tx, id, now).await?;
    if before.revoked_at.is_some() {
        return Err(AppError::Conflict(format!("token {id} is already revoked")));
    }
    let after = TokenRow {
        revoked_at: Some(riskdesk_storage::time::to_micros(now)),
        ..before.clone()
    };
    audit::append(
        tx,
        TenantId(before.tenant_id),
        now,
        AuditDraft::new(actor, "token.revoke", "token", id)
            .before(&before)
            .after(&after),
    )
    .await?;
    Ok(after)
}

/// Creates the `default` tenant and its first admin token if the installation has none yet.
/// Returns the secret only when it was just created (it is shown once).
pub async fn ensure_default_tenant(
    db: &Db,
    now: Timestamp,
) -> Result<Option<(TenantRow, String)>, AppError> {
    let mut tx = db.begin().await?;
    if tenants::by_slug_tx(&mut tx, DEFAULT_TENANT)
        .await?
        .is_some()
    {
        return Ok(None);
    }
    let slug = TenantSlug::parse(DEFAULT_TENANT).map_err(|e| AppError::Internal(e.0))?;
    let actor = Actor::system("first-start");
    let tenant = create_tenant(&mut tx, &actor, &slug, "Default tenant", now).await?;
    let (_, secret) = create_token(
        &mut tx,
        tenant.tenant_id(),
        &actor,
        "initial-admin",
        Role::Admin,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Some((tenant, secret)))
}

/// Resolves a tenant slug for the CLI, with a message that lists what exists.
pub async fn tenant_by_slug(db: &Db, slug: &str) -> Result<TenantRow, AppError> {
    match tenants::by_slug(db, slug).await {
        Ok(t) => Ok(t),
        Err(StorageError::NotFound(_)) => {
            let known: Vec<String> = tenants::list(db)
                .await?
                .into_iter()
                .map(|t| t.slug)
                .collect();
            Err(AppError::NotFound(format!(
                "no tenant '{slug}'; tenants: {}",
                known.join(", ")
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Applies an enforcement action to every active subscription of a customer (through the
/// lifecycle, so the cloud instance's rules hold); returns the subscriptions acted on. Already
/// suspended or disabled subscriptions are left alone, so repeating it does nothing new.
pub async fn act_on_active_subscriptions(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: Uuid,
    action: LifecycleAction,
    note: &str,
    now: Timestamp,
) -> Result<Vec<Uuid>, AppError> {
    let mut acted = Vec::new();
    let active = subscriptions::ids_in_status_tx(
        tx,
        tenant,
        CustomerId(customer),
        SubscriptionStatus::Active,
    )
    .await?;
    for id in active {
        act_on_subscription(
            tx,
            tenant,
            actor,
            id,
            action,
            Reason::Investigation,
            Some(note),
            now,
        )
        .await?;
        acted.push(id.0);
    }
    Ok(acted)
}
