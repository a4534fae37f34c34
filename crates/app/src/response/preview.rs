//! What an action would do, before anyone takes it: the change here (by the same lifecycle
//! rule `take_action` applies), the call at the provider on the customer's cloud instance
//! (by the same `provider_call`), whether a second person must approve it, and the notice
//! the customer would receive, in the customer's language. The dashboard shows it above every
//! action button, so it never offers a button the API would refuse.

use fluent_bundle::FluentArgs;
use riskdesk_domain::lifecycle::{allowed_reasons, transition};
use riskdesk_domain::response::ActionKind;
use riskdesk_domain::response::action::ProviderCall;
use riskdesk_domain::{CloudInstance, CustomerId, Locale, Reason, SubscriptionStatus, TenantId};
use riskdesk_storage::{Db, customers, provider, subscriptions, tenants};
use serde::Serialize;
use uuid::Uuid;

use crate::kernel::error::AppError;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoticePreview {
    /// The customer's language the notice is written in.
    pub locale: String,
    pub to: String,
    pub subject: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionPreview {
    pub kind: String,
    pub subscription_id: Option<Uuid>,
    pub reason: String,
    /// The reasons this kind accepts (lifecycle actions); empty: any.
    pub reasons: Vec<String>,
    /// Whether taking it now would be accepted.
    pub allowed: bool,
    /// Why not, when it would not.
    pub refusal: Option<String>,
    /// What changes in riskdesk.
    pub here: Vec<String>,
    pub cloud_instance: String,
    /// partner_center (a call is queued), none (riskdesk only), unsupported (the instance has
    /// no such call).
    pub provider: String,
    /// What is asked of the provider, in words.
    pub provider_effect: String,
    /// Proposing it instead leaves it to another person (maker-checker); taking it now is the
    /// caller's own decision.
    pub approval: String,
    pub notice: Option<NoticePreview>,
}

/// Previews `kind` on `customer` (and `subscription`, for lifecycle actions) for `reason`
/// (default: investigation, or resolved for reactivate).
pub async fn preview(
    db: &Db,
    tenant: TenantId,
    customer: Uuid,
    subscription: Option<Uuid>,
    kind: ActionKind,
    reason: Option<Reason>,
) -> Result<ActionPreview, AppError> {
    let c = customers::get(db, tenant, CustomerId(customer)).await?;
    let instance = CloudInstance::parse(&c.cloud_instance)
        .ok_or_else(|| AppError::Internal(format!("cloud instance '{}'", c.cloud_instance)))?;
    let reason = reason.unwrap_or(if kind == ActionKind::Reactivate {
        Reason::Resolved
    } else {
        Reason::Investigation
    });
    let mut out = ActionPreview {
        kind: kind.as_str().into(),
        subscription_id: subscription,
        reason: reason.as_str().into(),
        reasons: kind
            .lifecycle()
            .map(|a| {
                allowed_reasons(a)
                    .iter()
                    .map(|r| r.as_str().to_owned())
                    .collect()
            })
            .unwrap_or_default(),
        allowed: true,
        refusal: None,
        here: vec![],
        cloud_instance: instance.as_str().into(),
        provider: "none".into(),
        provider_effect: String::new(),
        approval: "Take it now on your own decision, or propose it: a proposal is applied only \
                   when another person approves it."
            .into(),
        notice: None,
    };
    let mut sub = None;
    if let Some(action) = kind.lifecycle() {
        let Some(sid) = subscription else {
            out.allowed = false;
            out.refusal = Some(format!(
                "{} needs the subscription to act on",
                kind.as_str()
            ));
            return Ok(out);
        };
        let s = subscriptions::get(db, tenant, riskdesk_domain::SubscriptionId(sid)).await?;
        if s.customer_id != customer {
            return Err(AppError::NotFound("no such subscription".into()));
        }
        let current = SubscriptionStatus::parse(&s.status)
            .ok_or_else(|| AppError::Internal(format!("subscription status '{}'", s.status)))?;
        match transition(instance, current, action, reason) {
            Ok(next) => out.here.push(format!(
                "subscription '{}': {} → {}",
                s.offer,
                current.as_str(),
                next.as_str()
            )),
            Err(e) => {
                out.allowed = false;
                out.refusal = Some(e.to_string());
            }
        }
        sub = Some(s);
    } else {
        out.here.push(match kind {
            ActionKind::SetBudget => "the customer's monthly budget is set to the amount given".into(),
            ActionKind::RequirePrepayment => {
                if c.prepayment_required {
                    "prepayment is already required (no change)".into()
                } else {
                    "new purchases must be prepaid".into()
                }
            }
            ActionKind::RevokeAdminAccess => {
                if c.admin_access == "restricted" {
                    "admin access is already restricted (no change)".into()
                } else {
                    "full admin access is withdrawn until its conditions are met again".into()
                }
            }
            ActionKind::MarkFraudulent => {
                "the customer is marked fraudulent; its identifiers are linked to fraud for future sign-ups".into()
            }
            _ => String::new(),
        });
    }
    let profile = instance.profile();
    match kind.provider_call(instance) {
        ProviderCall::LocalOnly => {
            out.provider_effect = "riskdesk's own control: nothing is asked of the provider".into();
        }
        ProviderCall::Unsupported(what) => {
            out.provider = "unsupported".into();
            out.provider_effect = format!(
                "{} offers no {what} call: riskdesk acts on its side only",
                profile.display_name
            );
        }
        call => {
            let cust_link = provider::customer_link(db, tenant, customer).await?;
            let sub_link = match subscription {
                Some(s) => provider::subscription_link(db, tenant, s).await?,
                None => None,
            };
            let what = match call {
                ProviderCall::SuspendSubscription => "PATCH the subscription to status suspended",
                ProviderCall::ReactivateSubscription => "PATCH the subscription to status active",
                ProviderCall::CancelSubscription => "PATCH the subscription to status cancelled",
                _ => "set the customer's Azure usage budget",
            };
            match (&cust_link, subscription.is_none() || sub_link.is_some()) {
                (Some(l), true) => {
                    out.provider = "partner_center".into();
                    out.provider_effect = format!(
                        "{what} at {} (customer {}{})",
                        profile.display_name,
                        l.provider_customer_id,
                        sub_link
                            .as_ref()
                            .map(|s| format!(", subscription {}", s.provider_subscription_id))
                            .unwrap_or_default()
                    );
                }
                (None, _) => {
                    out.provider_effect =
                        "the customer has no provider link: riskdesk acts on its side only".into()
                }
                (Some(_), false) => {
                    out.provider_effect =
                        "the subscription has no provider link: riskdesk acts on its side only"
                            .into()
                }
            }
        }
    }
    if let (Some(s), true) = (&sub, out.allowed) {
        let locale = Locale::parse(&c.locale).unwrap_or(Locale::En);
        let partner = tenants::get(db, tenant).await?.name;
        let mut a = FluentArgs::new();
        a.set("customer", c.name.clone());
        a.set("partner", partner);
        a.set("offer", s.offer.clone());
        out.notice = Some(NoticePreview {
            locale: locale.as_str().into(),
            to: c.email.clone(),
            subject: crate::kernel::notices::text(
                locale,
                &format!("action-{}-subject", kind.as_str()),
                &a,
            ),
        });
    }
    Ok(out)
}
