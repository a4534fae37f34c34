//! The provider side of actions: the Partner Center clients per cloud instance, and the worker
//! that makes each pending action's provider call after the deciding unit of work committed.
//!
//! Crash safety: the action row is written (with its fixed `MS-RequestId`) in the unit of work
//! that decided it. The worker leases a due action (moves `next_attempt_at` past the call's
//! longest duration) in its own commit, calls, and records the outcome. A crash before the call
//! leaves the action due again when the lease ends; a crash after the provider applied it (a
//! lost reply) repeats the call with the same `MS-RequestId`, which the provider answers
//! without a second effect — and the subscription already has the wanted status, so the
//! repeat reads it and sends nothing.

pub mod consent;
pub mod events;
pub mod links;
pub mod poll;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use riskdesk_connectors::partner_center::{PartnerCenterClient, PartnerCenterSettings, PcError};
use riskdesk_domain::audit::Actor;
use riskdesk_domain::response::{ActionKind, ActionStatus};
use riskdesk_domain::{Clock, CloudInstance, CustomerId, TenantId};
use riskdesk_storage::actions::{self, ActionRow};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::time::to_micros;
use riskdesk_storage::{customers, provider};

use crate::kernel::Ctx;
use crate::kernel::error::AppError;

/// The Partner Center clients, one per configured cloud instance.
#[derive(Default)]
pub struct ProviderHub {
    clients: HashMap<CloudInstance, Arc<PartnerCenterClient>>,
}

impl ProviderHub {
    /// Builds the clients from `[partner_center.<instance>]` settings.
    pub fn new(settings: &HashMap<String, PartnerCenterSettings>) -> Result<Self, String> {
        let mut clients = HashMap::new();
        for (name, s) in settings {
            let instance = CloudInstance::parse(name).ok_or_else(|| {
                format!(
                    "[partner_center.{name}]: unknown cloud instance (global, us_government, germany, china_21vianet)"
                )
            })?;
            let p = instance.profile();
            let c = PartnerCenterClient::new(s.clone(), p.rest_base, p.token_authority, p.arm_base)
                .map_err(|e| format!("[partner_center.{name}]: {e}"))?;
            clients.insert(instance, Arc::new(c));
        }
        Ok(Self { clients })
    }

    pub fn client(&self, instance: CloudInstance) -> Option<Arc<PartnerCenterClient>> {
        self.clients.get(&instance).cloned()
    }

    /// Every configured instance with its client.
    pub fn all(&self) -> Vec<(CloudInstance, Arc<PartnerCenterClient>)> {
        let mut v: Vec<_> = self.clients.iter().map(|(i, c)| (*i, c.clone())).collect();
        v.sort_by_key(|(i, _)| i.as_str());
        v
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

/// Backoff between attempts of a provider call: 30 s doubling, capped at 1 h. A call is never
/// given up while it may still succeed: it stays pending, with its last error, for a person.
fn backoff(attempts: i64) -> Duration {
    Duration::from_secs(30u64.saturating_mul(1 << attempts.clamp(0, 7)).min(3600))
}

pub struct ProviderWorker {
    pub ctx: Arc<Ctx>,
    pub clock: Arc<dyn Clock>,
    pub hub: Arc<ProviderHub>,
    /// How long a leased call is left alone before another pass may retry it (longer than a
    /// call with its retries can take).
    pub lease: Duration,
}

enum Outcome {
    Done(serde_json::Value),
    Retry(String, Option<Duration>),
    Failed(String),
}

impl ProviderWorker {
    /// One pass over the due calls; returns how many were attempted.
    pub async fn pass(&self) -> Result<usize, AppError> {
        let now = self.clock.now();
        let due = actions::due(&self.ctx.db, to_micros(now), 100).await?;
        let mut n = 0;
        for a in due {
            // Lease it: only the pass whose update matched calls.
            let mut tx = self.ctx.begin().await?;
            let mut leased = a.clone();
            leased.next_attempt_at = Some(to_micros(now) + self.lease.as_micros() as i64);
            leased.attempts += 1;
            let changed = tx
                .execute(
                    riskdesk_storage::query::Q::new(
                        "UPDATE actions SET next_attempt_at = $3, attempts = $4 WHERE tenant_id = $1 AND id = $2 \
                         AND status = 'pending' AND next_attempt_at = $5",
                    )
                    .bind(a.tenant_id)
                    .bind(a.id)
                    .bind(leased.next_attempt_at)
                    .bind(leased.attempts)
                    .bind(a.next_attempt_at),
                )
                .await?;
            tx.commit().await?;
            if changed == 0 {
                continue;
            }
            n += 1;
            let outcome = self.call(&leased).await;
            self.record(leased, outcome).await?;
        }
        Ok(n)
    }

    async fn call(&self, a: &ActionRow) -> Outcome {
        let tenant = TenantId(a.tenant_id);
        let lookup = async {
            let c = customers::get(&self.ctx.db, tenant, CustomerId(a.customer_id)).await?;
            let cl = provider::customer_link(&self.ctx.db, tenant, a.customer_id).await?;
            let sl = match a.subscription_id {
                Some(s) => provider::subscription_link(&self.ctx.db, tenant, s).await?,
                None => None,
            };
            Ok::<_, riskdesk_storage::StorageError>((c, cl, sl))
        };
        let (c, cl, sl) = match lookup.await {
            Ok(x) => x,
            Err(e) => return Outcome::Retry(format!("storage: {e}"), None),
        };
        let Some(instance) = CloudInstance::parse(&c.cloud_instance) else {
            return Outcome::Failed(format!("unknown cloud instance '{}'", c.cloud_instance));
        };
        let Some(client) = self.hub.client(instance) else {
            return Outcome::Retry(
                format!(
                    "Partner Center is not configured for {} ([partner_center.{}] in riskdesk.toml)",
                    instance.profile().display_name,
                    instance.as_str()
                ),
                None,
            );
        };
        let Some(cl) = cl else {
            return Outcome::Failed("the customer's provider link was removed".into());
        };
        let request_id = a
            .provider_request_id
            .clone()
            .unwrap_or_else(|| a.id.to_string());
        let kind = ActionKind::parse(&a.kind);
        let result = match kind {
            Some(ActionKind::Suspend | ActionKind::DisableAccess) => {
                let Some(sl) = sl else {
                    return Outcome::Failed("the subscription's provider link was removed".into());
                };
                client
                    .set_subscription_status(
                        &cl.provider_customer_id,
                        &sl.provider_subscription_id,
                        "suspended",
                        None,
                        &request_id,
                    )
                    .await
                    .map(|ch| serde_json::to_value(ch).unwrap_or_default())
            }
            Some(ActionKind::Reactivate) => {
                let Some(sl) = sl else {
                    return Outcome::Failed("the subscription's provider link was removed".into());
                };
                client
                    .set_subscription_status(
                        &cl.provider_customer_id,
                        &sl.provider_subscription_id,
                        "active",
                        sl.auto_renew_before.map(|v| v != 0),
                        &request_id,
                    )
                    .await
                    .map(|ch| serde_json::to_value(ch).unwrap_or_default())
            }
            Some(ActionKind::Cancel) => {
                let Some(sl) = sl else {
                    return Outcome::Failed("the subscription's provider link was removed".into());
                };
                if let Some(ent) = &sl.provider_entitlement_id {
                    // An Azure subscription of an Azure plan: cancel that entitlement (the
                    // API cannot cancel the plan itself).
                    return match client
                        .cancel_entitlement(
                            &cl.provider_customer_id,
                            &sl.provider_subscription_id,
                            ent,
                            "compromise",
                            &request_id,
                        )
                        .await
                    {
                        Ok(ch) => Outcome::Done(serde_json::to_value(ch).unwrap_or_default()),
                        Err(e) if e.is_retryable() => {
                            Outcome::Retry(e.to_string(), e.retry_after())
                        }
                        Err(e) => Outcome::Failed(e.to_string()),
                    };
                }
                client
                    .set_subscription_status(
                        &cl.provider_customer_id,
                        &sl.provider_subscription_id,
                        "deleted",
                        None,
                        &request_id,
                    )
                    .await
                    .map(|ch| serde_json::to_value(ch).unwrap_or_default())
            }
            Some(ActionKind::SetBudget) => {
                let params: serde_json::Value =
                    serde_json::from_str(&a.params_json).unwrap_or_default();
                let amount = params["amount"].as_str().unwrap_or_default().to_owned();
                client
                    .set_usage_budget(&cl.provider_customer_id, &amount, &request_id)
                    .await
                    .map(|v| serde_json::json!({"usage_budget": v}))
            }
            _ => return Outcome::Failed(format!("'{}' makes no provider call", a.kind)),
        };
        match result {
            Ok(v) => Outcome::Done(v),
            Err(e) if e.is_retryable() => Outcome::Retry(e.to_string(), e.retry_after()),
            Err(e @ PcError::Rejected { .. }) | Err(e @ PcError::BadResponse(_)) => {
                Outcome::Failed(e.to_string())
            }
            Err(e) => Outcome::Retry(e.to_string(), None),
        }
    }

    async fn record(&self, before: ActionRow, outcome: Outcome) -> Result<(), AppError> {
        let now = self.clock.now();
        let at = to_micros(now);
        let tenant = TenantId(before.tenant_id);
        let actor = Actor::system("partner-center");
        let mut tx = self.ctx.begin().await?;
        // The row may have moved on (a person retried or it was leased again): act on the
        // current one.
        let current = actions::get_tx(&mut tx, tenant, before.id).await?;
        if current.status != ActionStatus::Pending.as_str() {
            return Ok(());
        }
        let mut a = current.clone();
        a.updated_at = at;
        let (what, event) = match &outcome {
            Outcome::Done(v) => {
                a.status = ActionStatus::Done.as_str().into();
                a.done_at = Some(at);
                a.next_attempt_at = None;
                a.last_error = None;
                a.provider_result_json = Some(v.to_string());
                if let Some(sid) = a.subscription_id {
                    let status = v["after"].as_str().unwrap_or_default().to_owned();
                    // Keep auto-renew as it was before a suspension, to restore it later.
                    let keep = matches!(a.kind.as_str(), "suspend" | "disable_access")
                        && v["patched"] == true;
                    let auto = keep.then(|| v["auto_renew_before"].as_bool());
                    provider::record_subscription_sync(&mut tx, tenant, sid, &status, auto, at)
                        .await?;
                }
                ("action.provider_done", "action.completed")
            }
            Outcome::Retry(e, wait) => {
                a.last_error = Some(e.clone());
                let wait = wait.unwrap_or_default().max(backoff(a.attempts - 1));
                a.next_attempt_at = Some(at + wait.as_micros() as i64);
                ("action.provider_retry", "")
            }
            Outcome::Failed(e) => {
                a.status = ActionStatus::Failed.as_str().into();
                a.next_attempt_at = None;
                a.last_error = Some(e.clone());
                a.done_at = Some(at);
                ("action.provider_failed", "action.failed")
            }
        };
        actions::update(&mut tx, &a).await?;
        if what != "action.provider_retry" || current.last_error != a.last_error {
            audit::append(
                &mut tx,
                tenant,
                now,
                AuditDraft::new(&actor, what, "action", a.id)
                    .before(&current)
                    .after(&a),
            )
            .await?;
        }
        if let Some(case) = a.case_id {
            let text = match &outcome {
                Outcome::Done(_) => format!("{}: done at the provider", a.kind),
                Outcome::Retry(e, _) => format!("{}: provider call will be retried ({e})", a.kind),
                Outcome::Failed(e) => format!("{}: the provider refused it ({e})", a.kind),
            };
            if !matches!(outcome, Outcome::Retry(..)) || current.attempts <= 1 {
                crate::response::entry(
                    &mut tx,
                    tenant,
                    case,
                    "action",
                    &actor,
                    Some(&text),
                    Some(a.id),
                    None,
                    now,
                )
                .await?;
            }
        }
        if !event.is_empty() {
            crate::response::notify_staff(
                &mut tx,
                tenant,
                Some(a.customer_id),
                event,
                &format!("action:{}:{event}", a.id),
                &format!("{}: {}", event, a.kind),
                crate::response::action_event(&a),
                event == "action.failed",
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Runs passes every `interval` until `stop`.
    pub async fn run(self, interval: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "provider pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Sets a failed or waiting action due now again (a person asks for another attempt).
pub async fn retry_now(
    tx: &mut riskdesk_storage::Tx,
    tenant: TenantId,
    actor: &Actor,
    id: uuid::Uuid,
    now: Timestamp,
) -> Result<ActionRow, AppError> {
    let before = actions::get_tx(tx, tenant, id).await?;
    if before.provider != "partner_center"
        || !matches!(before.status.as_str(), "pending" | "failed")
    {
        return Err(AppError::Conflict(format!(
            "action {id} is {} with provider '{}': only a pending or failed provider call can be retried",
            before.status, before.provider
        )));
    }
    let mut a = before.clone();
    a.status = ActionStatus::Pending.as_str().into();
    a.next_attempt_at = Some(to_micros(now));
    a.done_at = None;
    a.updated_at = to_micros(now);
    actions::update(tx, &a).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "action.retry", "action", id)
            .before(&before)
            .after(&a),
    )
    .await?;
    Ok(a)
}
