//! What riskdesk knows of the provider (Partner Center): the provider's ids of customers and
//! subscriptions, the notices it sent by email, the service requests filed with it, and the
//! events it pushed (once each).

use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::{Db, Result, StorageError, Tx, conflict_on_unique};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CustomerLink {
    pub customer_id: Uuid,
    pub provider_customer_id: String,
    pub linked_at: i64,
}

impl FromRow for CustomerLink {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(CustomerLink {
            customer_id: r.uuid("customer_id")?,
            provider_customer_id: r.text("provider_customer_id")?,
            linked_at: r.i64("linked_at")?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SubscriptionLink {
    pub subscription_id: Uuid,
    pub provider_subscription_id: String,
    /// The Azure subscription (entitlement) inside an Azure plan, when the riskdesk
    /// subscription stands for one.
    pub provider_entitlement_id: Option<String>,
    pub auto_renew_before: Option<i64>,
    pub provider_status: Option<String>,
    pub synced_at: Option<i64>,
    pub linked_at: i64,
}

impl FromRow for SubscriptionLink {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(SubscriptionLink {
            subscription_id: r.uuid("subscription_id")?,
            provider_subscription_id: r.text("provider_subscription_id")?,
            provider_entitlement_id: r.opt_text("provider_entitlement_id")?,
            auto_renew_before: r.opt_i64("auto_renew_before")?,
            provider_status: r.opt_text("provider_status")?,
            synced_at: r.opt_i64("synced_at")?,
            linked_at: r.i64("linked_at")?,
        })
    }
}

/// Links (or re-links) a customer to its provider id; another customer of the tenant already
/// holding that id is a conflict.
pub async fn link_customer(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    provider_id: &str,
    now: i64,
) -> Result<CustomerLink> {
    tx.execute(
        Q::new(
            "INSERT INTO provider_customers (customer_id, tenant_id, provider_customer_id, linked_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (customer_id) DO UPDATE SET provider_customer_id = excluded.provider_customer_id, linked_at = excluded.linked_at",
        )
        .bind(customer)
        .bind(tenant.0)
        .bind(provider_id)
        .bind(now),
    )
    .await
    .map_err(|e| {
        conflict_on_unique(e, || {
            format!("provider customer id '{provider_id}' is already linked to another customer")
        })
    })?;
    Ok(CustomerLink {
        customer_id: customer,
        provider_customer_id: provider_id.to_owned(),
        linked_at: now,
    })
}

pub async fn customer_link_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
) -> Result<Option<CustomerLink>> {
    tx.fetch_optional(
        Q::new(
            "SELECT customer_id, provider_customer_id, linked_at FROM provider_customers WHERE tenant_id = $1 AND customer_id = $2",
        )
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

pub async fn customer_link(
    db: &Db,
    tenant: TenantId,
    customer: Uuid,
) -> Result<Option<CustomerLink>> {
    db.fetch_optional(
        Q::new(
            "SELECT customer_id, provider_customer_id, linked_at FROM provider_customers WHERE tenant_id = $1 AND customer_id = $2",
        )
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

/// The riskdesk customer holding a provider customer id.
pub async fn customer_by_provider_id_tx(
    tx: &mut Tx,
    tenant: TenantId,
    provider_id: &str,
) -> Result<Option<CustomerLink>> {
    tx.fetch_optional(
        Q::new(
            "SELECT customer_id, provider_customer_id, linked_at FROM provider_customers \
             WHERE tenant_id = $1 AND lower(provider_customer_id) = lower($2)",
        )
        .bind(tenant.0)
        .bind(provider_id),
    )
    .await
}

pub async fn link_subscription(
    tx: &mut Tx,
    tenant: TenantId,
    subscription: Uuid,
    provider_id: &str,
    entitlement: Option<&str>,
    now: i64,
) -> Result<SubscriptionLink> {
    tx.execute(
        Q::new(
            "INSERT INTO provider_subscriptions (subscription_id, tenant_id, provider_subscription_id, provider_entitlement_id, linked_at) \
             VALUES ($1, $2, $3, $5, $4) ON CONFLICT (subscription_id) DO UPDATE SET provider_subscription_id = excluded.provider_subscription_id, \
             provider_entitlement_id = excluded.provider_entitlement_id, linked_at = excluded.linked_at",
        )
        .bind(subscription)
        .bind(tenant.0)
        .bind(provider_id)
        .bind(now)
        .bind(entitlement),
    )
    .await
    .map_err(|e| {
        conflict_on_unique(e, || {
            format!("provider subscription id '{provider_id}' is already linked to another subscription")
        })
    })?;
    subscription_link_tx(tx, tenant, subscription)
        .await?
        .ok_or(StorageError::NotFound("subscription link"))
}

const SUB_COLS: &str = "subscription_id, provider_subscription_id, provider_entitlement_id, auto_renew_before, provider_status, \
     synced_at, linked_at";

pub async fn subscription_link_tx(
    tx: &mut Tx,
    tenant: TenantId,
    subscription: Uuid,
) -> Result<Option<SubscriptionLink>> {
    tx.fetch_optional(
        Q::new(format!(
            "SELECT {SUB_COLS} FROM provider_subscriptions WHERE tenant_id = $1 AND subscription_id = $2"
        ))
        .bind(tenant.0)
        .bind(subscription),
    )
    .await
}

pub async fn subscription_link(
    db: &Db,
    tenant: TenantId,
    subscription: Uuid,
) -> Result<Option<SubscriptionLink>> {
    db.fetch_optional(
        Q::new(format!(
            "SELECT {SUB_COLS} FROM provider_subscriptions WHERE tenant_id = $1 AND subscription_id = $2"
        ))
        .bind(tenant.0)
        .bind(subscription),
    )
    .await
}

pub async fn subscription_by_provider_id_tx(
    tx: &mut Tx,
    tenant: TenantId,
    provider_id: &str,
) -> Result<Option<SubscriptionLink>> {
    tx.fetch_optional(
        Q::new(format!(
            "SELECT {SUB_COLS} FROM provider_subscriptions WHERE tenant_id = $1 AND lower(provider_subscription_id) = lower($2)"
        ))
        .bind(tenant.0)
        .bind(provider_id),
    )
    .await
}

/// Records what the provider said of a subscription (status; auto-renew before a suspension).
pub async fn record_subscription_sync(
    tx: &mut Tx,
    tenant: TenantId,
    subscription: Uuid,
    provider_status: &str,
    auto_renew_before: Option<Option<bool>>,
    now: i64,
) -> Result<()> {
    let q = match auto_renew_before {
        Some(a) => Q::new(
            "UPDATE provider_subscriptions SET provider_status = $3, synced_at = $4, auto_renew_before = $5 \
             WHERE tenant_id = $1 AND subscription_id = $2",
        )
        .bind(tenant.0)
        .bind(subscription)
        .bind(provider_status)
        .bind(now)
        .bind(a.map(i64::from)),
        None => Q::new(
            "UPDATE provider_subscriptions SET provider_status = $3, synced_at = $4 WHERE tenant_id = $1 AND subscription_id = $2",
        )
        .bind(tenant.0)
        .bind(subscription)
        .bind(provider_status)
        .bind(now),
    };
    tx.execute(q).await?;
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NoticeRow {
    pub id: Uuid,
    pub customer_id: Option<Uuid>,
    pub case_id: Option<Uuid>,
    pub message_id: Option<String>,
    pub received_at: i64,
    pub sender: String,
    pub subject: String,
    pub body: String,
    pub provider_action: Option<String>,
    pub requested_action: Option<String>,
    pub deadline_at: Option<i64>,
    pub status: String,
    pub response: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl FromRow for NoticeRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(NoticeRow {
            id: r.uuid("id")?,
            customer_id: r.opt_uuid("customer_id")?,
            case_id: r.opt_uuid("case_id")?,
            message_id: r.opt_text("message_id")?,
            received_at: r.i64("received_at")?,
            sender: r.text("sender")?,
            subject: r.text("subject")?,
            body: r.text("body")?,
            provider_action: r.opt_text("provider_action")?,
            requested_action: r.opt_text("requested_action")?,
            deadline_at: r.opt_i64("deadline_at")?,
            status: r.text("status")?,
            response: r.opt_text("response")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
        })
    }
}

const NOTICE_COLS: &str = "id, customer_id, case_id, message_id, received_at, sender, subject, body, provider_action, \
     requested_action, deadline_at, status, response, created_at, updated_at";

/// Records a notice; the same message id again is a conflict (the notice was imported before).
pub async fn insert_notice(tx: &mut Tx, tenant: TenantId, n: &NoticeRow) -> Result<()> {
    tx.execute(
        Q::new(format!(
            "INSERT INTO provider_notices (tenant_id, {NOTICE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16)"
        ))
        .bind(tenant.0)
        .bind(n.id)
        .bind(n.customer_id)
        .bind(n.case_id)
        .bind(&n.message_id)
        .bind(n.received_at)
        .bind(&n.sender)
        .bind(&n.subject)
        .bind(&n.body)
        .bind(&n.provider_action)
        .bind(&n.requested_action)
        .bind(n.deadline_at)
        .bind(&n.status)
        .bind(&n.response)
        .bind(n.created_at)
        .bind(n.updated_at),
    )
    .await
    .map_err(|e| {
        conflict_on_unique(e, || {
            format!(
                "a notice with message id '{}' was already recorded",
                n.message_id.as_deref().unwrap_or("")
            )
        })
    })?;
    Ok(())
}

pub async fn notice_tx(tx: &mut Tx, tenant: TenantId, id: Uuid) -> Result<NoticeRow> {
    tx.fetch_optional(
        Q::new(format!(
            "SELECT {NOTICE_COLS} FROM provider_notices WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("notice"))
}

pub async fn notice(db: &Db, tenant: TenantId, id: Uuid) -> Result<NoticeRow> {
    db.fetch_optional(
        Q::new(format!(
            "SELECT {NOTICE_COLS} FROM provider_notices WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("notice"))
}

pub async fn update_notice(tx: &mut Tx, tenant: TenantId, n: &NoticeRow) -> Result<()> {
    tx.execute(
        Q::new(
            "UPDATE provider_notices SET status = $3, response = $4, updated_at = $5, case_id = $6, customer_id = $7 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(n.id)
        .bind(&n.status)
        .bind(&n.response)
        .bind(n.updated_at)
        .bind(n.case_id)
        .bind(n.customer_id),
    )
    .await?;
    Ok(())
}

pub async fn notices(
    db: &Db,
    tenant: TenantId,
    status: Option<&str>,
    customer: Option<Uuid>,
    limit: u32,
) -> Result<Vec<NoticeRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {NOTICE_COLS} FROM provider_notices WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR customer_id = $3) ORDER BY received_at DESC, id DESC LIMIT $4"
        ))
        .bind(tenant.0)
        .bind(status)
        .bind(customer)
        .bind(i64::from(limit)),
    )
    .await
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ServiceRequestRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub title: String,
    pub severity: String,
    pub description: String,
    pub ticket_id: Option<String>,
    /// draft (prepared, not filed yet), then the provider's status: open, attention_needed,
    /// closed, … (filed: recorded, not synced yet)
    pub status: String,
    pub notes_json: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub synced_at: Option<i64>,
}

impl FromRow for ServiceRequestRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(ServiceRequestRow {
            id: r.uuid("id")?,
            case_id: r.uuid("case_id")?,
            customer_id: r.opt_uuid("customer_id")?,
            title: r.text("title")?,
            severity: r.text("severity")?,
            description: r.text("description")?,
            ticket_id: r.opt_text("ticket_id")?,
            status: r.text("status")?,
            notes_json: r.text("notes_json")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
            synced_at: r.opt_i64("synced_at")?,
        })
    }
}

const SR_COLS: &str = "id, case_id, customer_id, title, severity, description, ticket_id, status, notes_json, created_at, \
     updated_at, synced_at";

pub async fn insert_service_request(
    tx: &mut Tx,
    tenant: TenantId,
    s: &ServiceRequestRow,
) -> Result<()> {
    tx.execute(
        Q::new(format!(
            "INSERT INTO service_requests (tenant_id, {SR_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(tenant.0)
        .bind(s.id)
        .bind(s.case_id)
        .bind(s.customer_id)
        .bind(&s.title)
        .bind(&s.severity)
        .bind(&s.description)
        .bind(&s.ticket_id)
        .bind(&s.status)
        .bind(&s.notes_json)
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(s.synced_at),
    )
    .await?;
    Ok(())
}

pub async fn update_service_request(
    tx: &mut Tx,
    tenant: TenantId,
    s: &ServiceRequestRow,
) -> Result<()> {
    tx.execute(
        Q::new(
            "UPDATE service_requests SET ticket_id = $3, status = $4, notes_json = $5, updated_at = $6, synced_at = $7 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(s.id)
        .bind(&s.ticket_id)
        .bind(&s.status)
        .bind(&s.notes_json)
        .bind(s.updated_at)
        .bind(s.synced_at),
    )
    .await
    .map_err(|e| {
        conflict_on_unique(e, || {
            format!(
                "ticket '{}' is already recorded on another service request",
                s.ticket_id.as_deref().unwrap_or("")
            )
        })
    })?;
    Ok(())
}

pub async fn service_request_tx(
    tx: &mut Tx,
    tenant: TenantId,
    id: Uuid,
) -> Result<ServiceRequestRow> {
    tx.fetch_optional(
        Q::new(format!(
            "SELECT {SR_COLS} FROM service_requests WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("service request"))
}

pub async fn service_request(db: &Db, tenant: TenantId, id: Uuid) -> Result<ServiceRequestRow> {
    db.fetch_optional(
        Q::new(format!(
            "SELECT {SR_COLS} FROM service_requests WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("service request"))
}

pub async fn service_requests_of_case(
    db: &Db,
    tenant: TenantId,
    case: Uuid,
) -> Result<Vec<ServiceRequestRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {SR_COLS} FROM service_requests WHERE tenant_id = $1 AND case_id = $2 ORDER BY created_at"
        ))
        .bind(tenant.0)
        .bind(case),
    )
    .await
}

/// Records an inbound provider event once; false if this key was seen before.
pub async fn record_event(
    tx: &mut Tx,
    tenant: TenantId,
    dedupe_key: &str,
    event_name: &str,
    body: &str,
    now: i64,
) -> Result<bool> {
    let n = tx
        .execute(
            Q::new(
                "INSERT INTO provider_events (tenant_id, dedupe_key, event_name, received_at, body) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, dedupe_key) DO NOTHING",
            )
            .bind(tenant.0)
            .bind(dedupe_key)
            .bind(event_name)
            .bind(now)
            .bind(body),
        )
        .await?;
    Ok(n > 0)
}

/// Every tenant's customer linked to this provider customer id: (tenant, customer).
pub async fn customers_by_provider_id_any_tenant(
    db: &Db,
    provider_id: &str,
) -> Result<Vec<(Uuid, Uuid)>> {
    #[derive(Debug)]
    struct R(Uuid, Uuid);
    impl FromRow for R {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(R(r.uuid("tenant_id")?, r.uuid("customer_id")?))
        }
    }
    let rows: Vec<R> = db
        .fetch_all(
            Q::new("SELECT tenant_id, customer_id FROM provider_customers WHERE provider_customer_id = $1")
                .bind(provider_id),
        )
        .await?;
    Ok(rows.into_iter().map(|R(t, c)| (t, c)).collect())
}

/// Every tenant's subscription linked to this provider subscription id: (tenant, subscription,
/// customer).
pub async fn subscriptions_by_provider_id_any_tenant(
    db: &Db,
    provider_id: &str,
) -> Result<Vec<(Uuid, Uuid, Uuid)>> {
    #[derive(Debug)]
    struct R(Uuid, Uuid, Uuid);
    impl FromRow for R {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(R(
                r.uuid("tenant_id")?,
                r.uuid("subscription_id")?,
                r.uuid("customer_id")?,
            ))
        }
    }
    let rows: Vec<R> = db
        .fetch_all(
            Q::new(
                "SELECT p.tenant_id, p.subscription_id, s.customer_id FROM provider_subscriptions p \
                 JOIN subscriptions s ON s.id = p.subscription_id WHERE p.provider_subscription_id = $1",
            )
            .bind(provider_id),
        )
        .await?;
    Ok(rows.into_iter().map(|R(t, s, c)| (t, s, c)).collect())
}

pub async fn cursor(db: &Db, instance: &str, feed: &str) -> Result<Option<String>> {
    #[derive(Debug)]
    struct V(String);
    impl FromRow for V {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(V(r.text("value")?))
        }
    }
    Ok(db
        .fetch_optional::<V>(
            Q::new("SELECT value FROM provider_cursors WHERE instance = $1 AND feed = $2")
                .bind(instance)
                .bind(feed),
        )
        .await?
        .map(|V(v)| v))
}

pub async fn set_cursor(
    tx: &mut Tx,
    instance: &str,
    feed: &str,
    value: &str,
    now: i64,
) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO provider_cursors (instance, feed, value, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (instance, feed) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(instance)
        .bind(feed)
        .bind(value)
        .bind(now),
    )
    .await?;
    Ok(())
}

/// A cloud instance's delegated consent (the Secure Application Model). `refresh_token` is
/// ciphertext; it never leaves the application layer decrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRow {
    pub instance: String,
    /// `connected`, `lost` or `disconnected`.
    pub state: String,
    pub refresh_token: Option<String>,
    pub access_expires_at: Option<i64>,
    pub connected_at: Option<i64>,
    pub connected_by: Option<String>,
    pub rotated_at: Option<i64>,
    pub lost_at: Option<i64>,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

impl FromRow for ConnectionRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(ConnectionRow {
            instance: r.text("instance")?,
            state: r.text("state")?,
            refresh_token: r.opt_text("refresh_token")?,
            access_expires_at: r.opt_i64("access_expires_at")?,
            connected_at: r.opt_i64("connected_at")?,
            connected_by: r.opt_text("connected_by")?,
            rotated_at: r.opt_i64("rotated_at")?,
            lost_at: r.opt_i64("lost_at")?,
            last_error: r.opt_text("last_error")?,
            updated_at: r.i64("updated_at")?,
        })
    }
}

const CONNECTION_COLUMNS: &str = "instance, state, refresh_token, access_expires_at, connected_at, connected_by, \
     rotated_at, lost_at, last_error, updated_at";

pub async fn connection(db: &Db, instance: &str) -> Result<Option<ConnectionRow>> {
    db.fetch_optional(
        Q::new(format!(
            "SELECT {CONNECTION_COLUMNS} FROM provider_connections WHERE instance = $1"
        ))
        .bind(instance),
    )
    .await
}

pub async fn connection_tx(tx: &mut Tx, instance: &str) -> Result<Option<ConnectionRow>> {
    tx.fetch_optional(
        Q::new(format!(
            "SELECT {CONNECTION_COLUMNS} FROM provider_connections WHERE instance = $1"
        ))
        .bind(instance),
    )
    .await
}

pub async fn connections(db: &Db) -> Result<Vec<ConnectionRow>> {
    db.fetch_all(Q::new(format!(
        "SELECT {CONNECTION_COLUMNS} FROM provider_connections ORDER BY instance"
    )))
    .await
}

/// Writes the whole row (insert or replace).
pub async fn put_connection(tx: &mut Tx, c: &ConnectionRow) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO provider_connections (instance, state, refresh_token, access_expires_at, connected_at, \
             connected_by, rotated_at, lost_at, last_error, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (instance) DO UPDATE SET state = excluded.state, refresh_token = excluded.refresh_token, \
             access_expires_at = excluded.access_expires_at, connected_at = excluded.connected_at, \
             connected_by = excluded.connected_by, rotated_at = excluded.rotated_at, lost_at = excluded.lost_at, \
             last_error = excluded.last_error, updated_at = excluded.updated_at",
        )
        .bind(c.instance.as_str())
        .bind(c.state.as_str())
        .bind(c.refresh_token.clone())
        .bind(c.access_expires_at)
        .bind(c.connected_at)
        .bind(c.connected_by.clone())
        .bind(c.rotated_at)
        .bind(c.lost_at)
        .bind(c.last_error.clone())
        .bind(c.updated_at),
    )
    .await?;
    Ok(())
}

/// A consent page opened and not completed yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentFlowRow {
    pub state_hash: String,
    pub instance: String,
    /// The PKCE verifier, encrypted.
    pub verifier: String,
    pub tenant_id: Uuid,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl FromRow for ConsentFlowRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(ConsentFlowRow {
            state_hash: r.text("state_hash")?,
            instance: r.text("instance")?,
            verifier: r.text("verifier")?,
            tenant_id: r.text("tenant_id")?.parse().map_err(|_| {
                StorageError::Corrupt("provider_consent_flows.tenant_id is not a UUID".into())
            })?,
            created_by: r.text("created_by")?,
            created_at: r.i64("created_at")?,
            expires_at: r.i64("expires_at")?,
        })
    }
}

pub async fn insert_consent_flow(tx: &mut Tx, f: &ConsentFlowRow) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO provider_consent_flows (state_hash, instance, verifier, tenant_id, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(f.state_hash.as_str())
        .bind(f.instance.as_str())
        .bind(f.verifier.as_str())
        .bind(f.tenant_id.to_string())
        .bind(f.created_by.as_str())
        .bind(f.created_at)
        .bind(f.expires_at),
    )
    .await?;
    Ok(())
}

/// Takes a consent flow out (a state completes once); expired flows are removed on the way.
pub async fn take_consent_flow(
    tx: &mut Tx,
    state_hash: &str,
    now: i64,
) -> Result<Option<ConsentFlowRow>> {
    tx.execute(Q::new("DELETE FROM provider_consent_flows WHERE expires_at < $1").bind(now))
        .await?;
    let row: Option<ConsentFlowRow> = tx
        .fetch_optional(
            Q::new(
                "SELECT state_hash, instance, verifier, tenant_id, created_by, created_at, expires_at \
                 FROM provider_consent_flows WHERE state_hash = $1",
            )
            .bind(state_hash),
        )
        .await?;
    if row.is_some() {
        tx.execute(
            Q::new("DELETE FROM provider_consent_flows WHERE state_hash = $1").bind(state_hash),
        )
        .await?;
    }
    Ok(row)
}

/// Every cursor of an instance's feeds: (feed, value, updated_at µs).
pub async fn cursors(db: &Db, instance: &str) -> Result<Vec<(String, String, i64)>> {
    #[derive(Debug)]
    struct C(String, String, i64);
    impl FromRow for C {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(C(r.text("feed")?, r.text("value")?, r.i64("updated_at")?))
        }
    }
    Ok(db
        .fetch_all::<C>(
            Q::new("SELECT feed, value, updated_at FROM provider_cursors WHERE instance = $1 ORDER BY feed")
                .bind(instance),
        )
        .await?
        .into_iter()
        .map(|C(f, v, u)| (f, v, u))
        .collect())
}

/// A cursor read in a unit of work.
pub async fn cursor_tx(tx: &mut Tx, instance: &str, feed: &str) -> Result<Option<String>> {
    #[derive(Debug)]
    struct V(String);
    impl FromRow for V {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(V(r.text("value")?))
        }
    }
    Ok(tx
        .fetch_optional::<V>(
            Q::new("SELECT value FROM provider_cursors WHERE instance = $1 AND feed = $2")
                .bind(instance)
                .bind(feed),
        )
        .await?
        .map(|V(v)| v))
}

/// Every Azure subscription (entitlement) linked by any tenant for a customer on `instance`:
/// (Partner Center customer id, Azure subscription id), each pair once, in order.
pub async fn azure_subscriptions(db: &Db, instance: &str) -> Result<Vec<(String, String)>> {
    #[derive(Debug)]
    struct R(String, String);
    impl FromRow for R {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(R(
                r.text("provider_customer_id")?,
                r.text("provider_entitlement_id")?,
            ))
        }
    }
    let rows: Vec<R> = db
        .fetch_all(
            Q::new(
                "SELECT DISTINCT pc.provider_customer_id, ps.provider_entitlement_id \
                 FROM provider_subscriptions ps \
                 JOIN subscriptions s ON s.id = ps.subscription_id \
                 JOIN customers c ON c.id = s.customer_id \
                 JOIN provider_customers pc ON pc.customer_id = c.id \
                 WHERE c.cloud_instance = $1 AND ps.provider_entitlement_id IS NOT NULL \
                 ORDER BY pc.provider_customer_id, ps.provider_entitlement_id",
            )
            .bind(instance),
        )
        .await?;
    Ok(rows.into_iter().map(|R(c, s)| (c, s)).collect())
}
