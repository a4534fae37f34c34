//! The API's own representations. Storage rows and domain types never serialise onto the wire
//! directly, so the public contract changes only when this file does.

use base64::Engine as _;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::{CloudInstance, LifecycleAction, Locale, Reason, SubscriptionStatus};
use riskdesk_storage::audit::AuditRow;
use riskdesk_storage::customers::CustomerRow;
use riskdesk_storage::subscriptions::SubscriptionRow;
use riskdesk_storage::time::from_micros;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

/// RFC 3339 UTC, e.g. `2026-11-21T09:30:00.123456Z`.
pub fn rfc3339(us: i64) -> String {
    from_micros(us).to_string()
}

// ---- customers -------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    #[schema(example = "Contoso Ltd")]
    pub name: String,
    #[schema(example = "contoso.com")]
    pub domain: String,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "FR")]
    pub country: String,
    #[schema(example = "billing@contoso.com")]
    pub email: String,
    /// E.164, e.g. `+33142685300`.
    pub phone: Option<String>,
    /// BCP 47; one of en, zh-CN, zh-TW, fr-FR, pt-BR. Default `en`.
    #[schema(value_type = Option<Locale>)]
    pub locale: Option<String>,
    #[schema(value_type = CloudInstance)]
    pub cloud_instance: String,
    /// The partner's own id (e.g. the Partner Center customer id); unique per tenant.
    pub external_id: Option<String>,
}

/// JSON merge patch of a customer: absent fields stay, `null` clears an optional field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchCustomer {
    pub name: Option<String>,
    pub domain: Option<String>,
    pub country: Option<String>,
    pub email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[schema(value_type = Option<Locale>)]
    pub locale: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub external_id: Option<Option<String>>,
    /// Present only to be refused with a clear message: a customer's cloud instance is fixed.
    #[schema(ignore)]
    pub cloud_instance: Option<serde_json::Value>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    pub id: Uuid,
    pub external_id: Option<String>,
    pub name: String,
    pub domain: String,
    pub country: String,
    pub email: String,
    pub phone: Option<String>,
    #[schema(value_type = Locale)]
    pub locale: String,
    #[schema(value_type = CloudInstance)]
    pub cloud_instance: String,
    pub created_at: String,
    pub updated_at: String,
    /// Credit terms from onboarding; null for customers registered directly.
    pub credit: Option<CreditTerms>,
    /// `restricted` until the admin-access conditions are met, then `granted`.
    pub admin_access: String,
    /// `normal`, `review` (linked to a fraudulent customer) or `fraudulent`.
    pub risk_status: String,
    /// The sign-up assessment the customer came from.
    pub signup_id: Option<Uuid>,
    /// When the first payment (or prepayment) was received.
    pub first_payment_at: Option<String>,
    /// Set by the dunning ladder: new subscriptions are refused (409) until overdue invoices are paid.
    pub purchases_blocked: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreditTerms {
    /// Decimal string.
    pub limit: String,
    pub currency: String,
    pub prepayment_required: bool,
}

impl From<CustomerRow> for Customer {
    fn from(r: CustomerRow) -> Self {
        Customer {
            id: r.id,
            external_id: r.external_id,
            name: r.name,
            domain: r.domain,
            country: r.country,
            email: r.email,
            phone: r.phone,
            locale: r.locale,
            cloud_instance: r.cloud_instance,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            credit: match (
                r.credit_limit_minor,
                r.credit_currency
                    .as_deref()
                    .map(riskdesk_domain::money::Currency::parse),
            ) {
                (Some(minor), Some(Ok(currency))) => Some(CreditTerms {
                    limit: riskdesk_domain::money::Money { minor, currency }.to_decimal_string(),
                    currency: currency.code().to_owned(),
                    prepayment_required: r.prepayment_required,
                }),
                _ => None,
            },
            admin_access: r.admin_access,
            risk_status: r.risk_status,
            signup_id: r.signup_id,
            first_payment_at: r.first_payment_at.map(rfc3339),
            purchases_blocked: r.purchases_blocked,
        }
    }
}

// ---- subscriptions ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    #[schema(example = "Azure plan")]
    pub offer: String,
    pub external_id: Option<String>,
    /// Seats or units; default 1.
    pub quantity: Option<i64>,
    /// The first period's price (decimal string, with `currency`). Required for a customer
    /// that must prepay: its subscription stays `pending_payment` until the prepaid balance
    /// covers this.
    pub first_period_amount: Option<String>,
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionActionRequest {
    #[schema(value_type = LifecycleAction)]
    pub action: String,
    #[schema(value_type = Reason)]
    pub reason: String,
    pub note: Option<String>,
}

/// One lifecycle change, from the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub seq: i64,
    pub at: String,
    /// e.g. `subscription.create`, `subscription.suspend`.
    pub action: String,
    #[schema(value_type = Option<SubscriptionStatus>)]
    pub from_status: Option<String>,
    #[schema(value_type = Option<SubscriptionStatus>)]
    pub to_status: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub actor: Actor,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Subscription {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub offer: String,
    pub external_id: Option<String>,
    pub quantity: i64,
    #[schema(value_type = SubscriptionStatus)]
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    /// The first period's price, when given: `{"amount", "currency"}`.
    pub first_period: Option<serde_json::Value>,
    /// Present on single-subscription responses: every change, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
}

impl From<SubscriptionRow> for Subscription {
    fn from(r: SubscriptionRow) -> Self {
        Subscription {
            id: r.id,
            customer_id: r.customer_id,
            offer: r.offer,
            external_id: r.external_id,
            quantity: r.quantity,
            status: r.status,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            first_period: match (r.first_period_minor, r.first_period_currency.as_deref()) {
                (Some(m), Some(c)) => riskdesk_domain::money::Currency::parse(c).ok().map(|cur| {
                    serde_json::json!({
                        "amount": riskdesk_domain::money::Money { minor: m, currency: cur }.to_decimal_string(),
                        "currency": c,
                    })
                }),
                _ => None,
            },
            history: None,
        }
    }
}

fn status_of(snapshot: &Option<String>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(snapshot.as_deref()?).ok()?;
    v.get("status")?.as_str().map(str::to_owned)
}

impl Subscription {
    pub fn with_history(row: SubscriptionRow, audit: Vec<AuditRow>) -> Self {
        let history = audit
            .into_iter()
            .map(|a| HistoryEntry {
                seq: a.seq,
                at: rfc3339(a.at),
                from_status: status_of(&a.before_json),
                to_status: status_of(&a.after_json),
                action: a.action,
                reason: a.reason,
                note: a.note,
                actor: Actor {
                    kind: a.actor_kind,
                    name: a.actor_name,
                    role: a.actor_role,
                },
            })
            .collect();
        Subscription {
            history: Some(history),
            ..Subscription::from(row)
        }
    }
}

// ---- audit -----------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    /// The lane of the tenant's chain the entry is in (always 0 on SQLite; 0–31 on
    /// PostgreSQL, where concurrent writers append to different lanes).
    pub lane: i32,
    /// The entry's position in its lane's chain, from 1, without gaps.
    pub seq: i64,
    pub at: String,
    pub actor: Actor,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    /// The entity before the change (absent on creation).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(a: AuditRow) -> Self {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        AuditEntry {
            lane: a.lane,
            seq: a.seq,
            at: rfc3339(a.at),
            actor: Actor {
                kind: a.actor_kind,
                name: a.actor_name,
                role: a.actor_role,
            },
            action: a.action,
            entity_type: a.entity_type,
            entity_id: a.entity_id,
            before: parse(a.before_json),
            after: parse(a.after_json),
            reason: a.reason,
            note: a.note,
            prev_hash: a.prev_hash,
            hash: a.hash,
        }
    }
}

// ---- lists and cursors -----------------------------------------------------------------------

/// A page of results; pass `next_cursor` as `cursor` to get the next page (absent on the last).
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

pub fn check_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(l) if (1..=MAX_LIMIT).contains(&l) => Ok(l),
        Some(_) => Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// Cursors are opaque to clients: base64url of the last item's key.
pub fn encode_cursor(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

pub fn decode_cursor<T: std::str::FromStr>(cursor: &Option<String>) -> Result<Option<T>, ApiError> {
    // `?cursor=` (empty) is the first page, as no cursor is.
    let Some(c) = cursor.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API returned"))
}

/// Builds a page from `limit + 1` fetched rows: the extra row only says another page exists.
pub fn page<R, T>(
    mut rows: Vec<R>,
    limit: u32,
    key: impl Fn(&R) -> String,
    map: impl Fn(R) -> T,
) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| encode_cursor(&key(r)))
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(map).collect(),
        next_cursor,
    }
}
