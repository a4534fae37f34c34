//! Connecting a cloud instance as a partner (the Secure Application Model): a partner admin
//! consents once, interactively and with MFA, and riskdesk keeps the refresh token, encrypted
//! at rest, to redeem app + user tokens for the calls Microsoft refuses app-only tokens on
//! (fraud events, service requests, the usage summary).
//!
//! - [`start`]: a consent flow (`state`, PKCE verifier) stored for ten minutes; the admin opens
//!   the returned page at the instance's Entra ID authority.
//! - [`complete`]: the redirect back (`code`, `state`): the state is taken (once), the code
//!   redeemed with the verifier, the refresh token sealed and stored; audited in the tenant
//!   of whoever opened the flow.
//! - [`StoredConsent`]: the client's [`ConsentVault`]: it reads the sealed refresh token,
//!   stores every rotated one before the access token that came with it is used, and when the
//!   token endpoint refuses the consent (`invalid_grant`: expired, revoked) marks the
//!   connection `lost` — a critical `provider.connection_lost` alert and webhook in every
//!   tenant, once per loss. Calls that need the consent meanwhile stay queued (retryable), and
//!   are due again at once when the instance is connected again.
//!
//! The connection belongs to the installation (one Partner Center account per cloud
//! instance), not to a tenant; who may connect it through the API is set by
//! `provider_operators` (see `AppOptions`).

use std::sync::Arc;

use jiff::Timestamp;
use riskdesk_connectors::partner_center::{ConsentVault, PcError};
use riskdesk_domain::audit::Actor;
use riskdesk_domain::{Clock, CloudInstance, TenantId};
use riskdesk_storage::alerts::NewAlert;
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::provider::{self, ConnectionRow, ConsentFlowRow};
use riskdesk_storage::time::{from_micros, to_micros};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::kernel::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::secrets::TokenCipher;
use crate::provider::ProviderHub;

/// How long a consent page may take to come back.
pub const FLOW_TTL: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// An instance's connection as staff see it (never a token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Connection {
    pub instance: String,
    /// `connected`, `lost` (the consent expired or was revoked: reconnect), `disconnected`,
    /// or `not_connected` (never connected).
    pub state: String,
    /// Whether the instance can be connected here (a `redirect_uri` is configured and
    /// `provider_token_keys` is set).
    pub connectable: bool,
    /// When the last app + user access token redeemed from the consent expires (RFC 3339).
    pub token_expires_at: Option<String>,
    pub connected_at: Option<String>,
    pub connected_by: Option<String>,
    /// When the refresh token last rotated.
    pub rotated_at: Option<String>,
    pub lost_at: Option<String>,
    pub last_error: Option<String>,
    /// What the poll last pulled from this instance, per feed.
    pub pulls: Vec<Pull>,
}

/// A feed the poll pulls (`audit_day`, `usage:EUR:current`, `activity_log`, …): where it is
/// and since when (for `activity_log`, the subscription that moved longest ago).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pull {
    pub feed: String,
    /// The day read last (audit records), `complete` or `in_progress` (usage pages), the
    /// time a usage pull last reached its last page (`…:complete`).
    pub position: String,
    /// When the feed last moved (RFC 3339).
    pub updated_at: String,
    /// Seconds since then, as of the status.
    pub lag_seconds: i64,
}

/// A consent page to open.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentStart {
    pub instance: String,
    /// The instance's Entra ID consent page (authorization code with PKCE).
    pub authorize_url: String,
    /// The flow must come back before this (RFC 3339).
    pub expires_at: String,
}

fn ts(micros: Option<i64>) -> Option<String> {
    micros.map(|m| from_micros(m).to_string())
}

fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

fn instance_of(name: &str) -> Result<CloudInstance, AppError> {
    CloudInstance::parse(name).ok_or_else(|| {
        AppError::NotFound(format!(
            "unknown cloud instance {name:?} (global, us_government, germany, china_21vianet)"
        ))
    })
}

fn cipher(c: Option<&Arc<TokenCipher>>) -> Result<&Arc<TokenCipher>, AppError> {
    c.ok_or_else(|| {
        AppError::Conflict(
            "no key to encrypt the consent with: set provider_token_keys (RISKDESK_PROVIDER_TOKEN_KEYS; `riskdesk provider keygen`)"
                .into(),
        )
    })
}

fn view(instance: &str, row: Option<&ConnectionRow>, connectable: bool) -> Connection {
    Connection {
        instance: instance.to_owned(),
        state: row.map_or("not_connected".into(), |r| r.state.clone()),
        connectable,
        token_expires_at: row.and_then(|r| ts(r.access_expires_at)),
        connected_at: row.and_then(|r| ts(r.connected_at)),
        connected_by: row.and_then(|r| r.connected_by.clone()),
        rotated_at: row.and_then(|r| ts(r.rotated_at)),
        lost_at: row.and_then(|r| ts(r.lost_at)),
        last_error: row.and_then(|r| r.last_error.clone()),
        pulls: Vec::new(),
    }
}

/// Every configured instance's connection.
pub async fn connections(
    ctx: &Arc<Ctx>,
    hub: &ProviderHub,
    keys: Option<&Arc<TokenCipher>>,
) -> Result<Vec<Connection>, AppError> {
    let rows = provider::connections(&ctx.db).await?;
    let now = to_micros(Timestamp::now());
    let mut out = Vec::new();
    for (i, c) in hub.all() {
        let row = rows.iter().find(|r| r.instance == i.as_str());
        let mut v = view(i.as_str(), row, keys.is_some() && c.can_consent());
        // Activity Logs are pulled per Azure subscription, of every tenant's customers: one
        // line for them all (which subscriptions lost access is each tenant's alert).
        // (A subscription refused on its very first pull has only its access line.)
        let mut subs = std::collections::BTreeSet::new();
        let (mut without, mut oldest) = (0, None::<i64>);
        for (feed, value, updated) in provider::cursors(&ctx.db, i.as_str()).await? {
            if let Some(sub) = feed.strip_prefix("activity:") {
                subs.insert(sub.to_owned());
                oldest = Some(oldest.map_or(updated, |o| o.min(updated)));
                continue;
            }
            if let Some(sub) = feed.strip_prefix("activity_access:") {
                subs.insert(sub.to_owned());
                if value.starts_with("lost") {
                    without += 1;
                    oldest = Some(oldest.map_or(updated, |o| o.min(updated)));
                }
                continue;
            }
            let position = if feed.starts_with("billed:") && value != "complete" {
                "in_progress".into()
            } else if feed.starts_with("usage:") && !feed.ends_with(":complete") {
                if value.is_empty() {
                    "complete".into()
                } else {
                    "in_progress".into()
                }
            } else {
                value
            };
            v.pulls.push(Pull {
                feed,
                position,
                updated_at: from_micros(updated).to_string(),
                lag_seconds: (now - updated).max(0) / 1_000_000,
            });
        }
        if let Some(updated) = oldest {
            v.pulls.push(Pull {
                feed: "activity_log".into(),
                position: format!("{} subscriptions, {without} without access", subs.len()),
                updated_at: from_micros(updated).to_string(),
                lag_seconds: (now - updated).max(0) / 1_000_000,
            });
        }
        out.push(v);
    }
    Ok(out)
}

/// Whether `tenant`'s admins may connect or disconnect the installation's Partner Center
/// instances: any tenant when `provider_operators` is empty, else only those it names.
pub fn may_operate(operators: &[uuid::Uuid], tenant: TenantId) -> Result<(), AppError> {
    if !operators.is_empty() && !operators.contains(&tenant.0) {
        return Err(AppError::Forbidden(
            "the Partner Center connection belongs to the installation: only an operator tenant's admin may change it (provider_operators)"
                .into(),
        ));
    }
    Ok(())
}

/// Opens a consent flow for `instance` in the caller's unit of work.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    tx: &mut crate::kernel::Uow,
    hub: &ProviderHub,
    keys: Option<&Arc<TokenCipher>>,
    tenant: TenantId,
    actor: &Actor,
    instance: &str,
    now: Timestamp,
) -> Result<ConsentStart, AppError> {
    let i = instance_of(instance)?;
    let client = hub.client(i).ok_or_else(|| {
        AppError::NotFound(format!(
            "Partner Center is not configured for {instance} ([partner_center.{instance}])"
        ))
    })?;
    let keys = cipher(keys)?;
    let flow = riskdesk_connectors::oidc::Flow::new();
    let url = client
        .consent_url(&flow.state, &flow.challenge())
        .map_err(|e| AppError::Conflict(e.to_string()))?;
    let expires = now + FLOW_TTL;
    provider::insert_consent_flow(
        tx,
        &ConsentFlowRow {
            state_hash: state_hash(&flow.state),
            instance: i.as_str().into(),
            verifier: keys.seal(&format!("flow:{}", i.as_str()), &flow.verifier),
            tenant_id: tenant.0,
            created_by: actor.name.clone(),
            created_at: to_micros(now),
            expires_at: to_micros(expires),
        },
    )
    .await?;
    Ok(ConsentStart {
        instance: i.as_str().into(),
        authorize_url: url,
        expires_at: expires.to_string(),
    })
}

/// What Entra ID sent back to the redirect URI.
pub struct Callback<'a> {
    pub state: &'a str,
    pub code: Option<&'a str>,
    /// `error` / `error_description` when the admin declined or sign-in failed.
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
}

/// Completes a consent flow: the connection is stored `connected`.
pub async fn complete(
    ctx: &Arc<Ctx>,
    hub: &ProviderHub,
    keys: Option<&Arc<TokenCipher>>,
    cb: Callback<'_>,
    now: Timestamp,
) -> Result<Connection, AppError> {
    let keys = cipher(keys)?;
    let mut tx = ctx.begin().await?;
    let flow = provider::take_consent_flow(&mut tx, &state_hash(cb.state), to_micros(now))
        .await?
        .ok_or_else(|| {
            AppError::BadRequest(
                "unknown or expired consent state: open the consent page again (a state completes once, within ten minutes)"
                    .into(),
            )
        })?;
    // The flow is used up whatever happens next.
    tx.commit().await?;
    if let Some(e) = cb.error {
        return Err(AppError::BadRequest(format!(
            "the consent was not given: {e}: {}",
            cb.error_description.unwrap_or("no description")
        )));
    }
    let code = cb
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AppError::field("code", "the redirect carries no code"))?;
    let i = instance_of(&flow.instance)?;
    let client = hub.client(i).ok_or_else(|| {
        AppError::NotFound(format!(
            "Partner Center is not configured for {}",
            flow.instance
        ))
    })?;
    let verifier = keys
        .open(&format!("flow:{}", i.as_str()), &flow.verifier)
        .map_err(AppError::Internal)?;
    let tokens = client
        .redeem_consent_code(code, &verifier)
        .await
        .map_err(|e| match e {
            PcError::Auth(m) => AppError::BadRequest(m),
            other => AppError::BadGateway(other.to_string()),
        })?;
    let refresh = tokens.refresh_token.as_deref().unwrap_or_default();
    let n = to_micros(now);
    let mut tx = ctx.begin().await?;
    let before = provider::connection_tx(&mut tx, i.as_str()).await?;
    let row = ConnectionRow {
        instance: i.as_str().into(),
        state: "connected".into(),
        refresh_token: Some(keys.seal(i.as_str(), refresh)),
        access_expires_at: Some(n + tokens.expires_in as i64 * 1_000_000),
        connected_at: Some(n),
        connected_by: Some(flow.created_by.clone()),
        rotated_at: None,
        lost_at: None,
        last_error: None,
        updated_at: n,
    };
    provider::put_connection(&mut tx, &row).await?;
    let actor = Actor {
        kind: "token".into(),
        name: flow.created_by.clone(),
        role: "admin".into(),
    };
    audit::append(
        &mut tx,
        TenantId(flow.tenant_id),
        now,
        AuditDraft::new(
            &actor,
            "provider.connect",
            "provider_connection",
            i.as_str(),
        )
        .before(&before.as_ref().map(|b| b.state.clone()))
        .after(&serde_json::json!({"state": "connected"})),
    )
    .await?;
    // Calls that waited for the consent are due now.
    requeue_waiting(&mut tx, n).await?;
    tx.commit().await?;
    client.forget_user_token().await;
    Ok(view(i.as_str(), Some(&row), true))
}

/// Provider calls kept back for want of a consent are due at once.
async fn requeue_waiting(tx: &mut crate::kernel::Uow, now: i64) -> Result<(), AppError> {
    tx.execute(
        riskdesk_storage::query::Q::new(
            "UPDATE actions SET next_attempt_at = $1 WHERE status = 'pending' AND next_attempt_at > $1 \
             AND last_error LIKE '%needs a partner admin''s consent%'",
        )
        .bind(now),
    )
    .await?;
    Ok(())
}

/// Forgets an instance's consent (the refresh token is deleted).
pub async fn disconnect(
    ctx: &Arc<Ctx>,
    hub: &ProviderHub,
    tenant: TenantId,
    actor: &Actor,
    instance: &str,
    now: Timestamp,
) -> Result<Connection, AppError> {
    let i = instance_of(instance)?;
    let mut tx = ctx.begin().await?;
    let Some(mut row) = provider::connection_tx(&mut tx, i.as_str()).await? else {
        return Err(AppError::NotFound(format!(
            "{instance} was never connected"
        )));
    };
    let before = row.state.clone();
    row.state = "disconnected".into();
    row.refresh_token = None;
    row.updated_at = to_micros(now);
    provider::put_connection(&mut tx, &row).await?;
    audit::append(
        &mut tx,
        tenant,
        now,
        AuditDraft::new(
            actor,
            "provider.disconnect",
            "provider_connection",
            i.as_str(),
        )
        .before(&serde_json::json!({"state": before}))
        .after(&serde_json::json!({"state": "disconnected"})),
    )
    .await?;
    tx.commit().await?;
    if let Some(c) = hub.client(i) {
        c.forget_user_token().await;
    }
    Ok(view(i.as_str(), Some(&row), true))
}

/// Seals every stored refresh token again under the current key (after a key rotation).
/// Returns how many were sealed again.
pub async fn rekey(ctx: &Arc<Ctx>, keys: &TokenCipher, now: Timestamp) -> Result<usize, AppError> {
    let mut n = 0;
    let mut tx = ctx.begin().await?;
    for mut row in provider::connections(&ctx.db).await? {
        let Some(sealed) = row.refresh_token.clone() else {
            continue;
        };
        if TokenCipher::key_of(&sealed) == Some(keys.current_key()) {
            continue;
        }
        let plain = keys
            .open(&row.instance, &sealed)
            .map_err(AppError::Internal)?;
        row.refresh_token = Some(keys.seal(&row.instance, &plain));
        row.updated_at = to_micros(now);
        provider::put_connection(&mut tx, &row).await?;
        n += 1;
    }
    tx.commit().await?;
    Ok(n)
}

/// The vault a client uses: the instance's row in `provider_connections`.
pub struct StoredConsent {
    pub ctx: Arc<Ctx>,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<TokenCipher>,
    pub instance: CloudInstance,
}

#[async_trait::async_trait]
impl ConsentVault for StoredConsent {
    async fn refresh_token(&self) -> Result<Option<String>, String> {
        let row = provider::connection(&self.ctx.db, self.instance.as_str())
            .await
            .map_err(|e| e.to_string())?;
        match row {
            Some(r) if r.state == "connected" => match r.refresh_token {
                Some(s) => self.keys.open(self.instance.as_str(), &s).map(Some),
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }

    async fn rotated(&self, refresh_token: &str, expires_in: u64) -> Result<(), String> {
        let now = to_micros(self.clock.now());
        let mut tx = self.ctx.begin().await.map_err(|e| e.to_string())?;
        let Some(mut row) = provider::connection_tx(&mut tx, self.instance.as_str())
            .await
            .map_err(|e| e.to_string())?
        else {
            return Err("the connection row is gone".into());
        };
        row.refresh_token = Some(self.keys.seal(self.instance.as_str(), refresh_token));
        row.rotated_at = Some(now);
        row.access_expires_at = Some(now + expires_in as i64 * 1_000_000);
        row.updated_at = now;
        provider::put_connection(&mut tx, &row)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())
    }

    async fn lost(&self, reason: &str) {
        if let Err(e) = connection_lost(&self.ctx, self.instance, reason, self.clock.now()).await {
            tracing::error!(instance = self.instance.as_str(), error = %e, "could not record a lost Partner Center consent");
        }
    }
}

/// Marks the consent lost and tells every tenant, once per loss.
pub async fn connection_lost(
    ctx: &Arc<Ctx>,
    instance: CloudInstance,
    reason: &str,
    now: Timestamp,
) -> Result<(), AppError> {
    let tenants = riskdesk_storage::tenants::list(&ctx.db).await?;
    let mut tx = ctx.begin().await?;
    let Some(mut row) = provider::connection_tx(&mut tx, instance.as_str()).await? else {
        return Ok(());
    };
    if row.state != "connected" {
        return Ok(());
    }
    let n = to_micros(now);
    row.state = "lost".into();
    row.refresh_token = None;
    row.lost_at = Some(n);
    row.last_error = Some(reason.to_owned());
    row.updated_at = n;
    provider::put_connection(&mut tx, &row).await?;
    let actor = Actor::system("partner-center");
    let title = format!(
        "Partner Center consent lost on {}: app + user calls (fraud events, service requests) wait until a partner admin connects it again",
        instance.as_str()
    );
    for t in tenants {
        let tenant = TenantId(t.id);
        audit::append(
            &mut tx,
            tenant,
            now,
            AuditDraft::new(
                &actor,
                "provider.connection_lost",
                "provider_connection",
                instance.as_str(),
            )
            .before(&serde_json::json!({"state": "connected"}))
            .after(&serde_json::json!({"state": "lost"}))
            .reason(reason),
        )
        .await?;
        crate::alerts::raise(
            &mut tx,
            tenant,
            &actor,
            NewAlert {
                customer_id: None,
                rule: "provider.connection_lost",
                severity: "critical",
                title: &title,
                evidence_json: serde_json::json!({"instance": instance.as_str(), "reason": reason})
                    .to_string(),
                at: n,
                cooldown_micros: 0,
                occurrences: 1,
                last_at: n,
            },
            now,
        )
        .await?;
        let endpoints = riskdesk_storage::outbox::endpoints_tx(&mut tx, tenant).await?;
        if !endpoints.is_empty() {
            crate::kernel::outbox::webhooks(
                &mut tx,
                tenant,
                &endpoints,
                None,
                "provider.connection_lost",
                &format!("provider.connection_lost:{}:{n}", instance.as_str()),
                serde_json::json!({"instance": instance.as_str(), "reason": reason, "lost_at": now.to_string()}),
                now,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
