//! MFA challenges at sign-up: a one-time code sent by SMS, or a TOTP enrolment.

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::time::to_micros;
use crate::{Result, Tx};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub signup_id: Uuid,
    pub channel: String,
    pub destination: Option<String>,
    pub code_hash: Option<String>,
    pub totp_secret: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub confirmed_at: Option<i64>,
    pub provider_ref: Option<String>,
}

impl FromRow for ChallengeRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(ChallengeRow {
            id: r.uuid("id")?,
            tenant_id: r.uuid("tenant_id")?,
            signup_id: r.uuid("signup_id")?,
            channel: r.text("channel")?,
            destination: r.opt_text("destination")?,
            code_hash: r.opt_text("code_hash")?,
            totp_secret: r.opt_text("totp_secret")?,
            attempts: r.i64("attempts")?,
            max_attempts: r.i64("max_attempts")?,
            created_at: r.i64("created_at")?,
            expires_at: r.i64("expires_at")?,
            confirmed_at: r.opt_i64("confirmed_at")?,
            provider_ref: r.opt_text("provider_ref")?,
        })
    }
}

pub async fn insert(tx: &mut Tx, c: &ChallengeRow) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO signup_challenges (id, tenant_id, signup_id, channel, destination, code_hash, totp_secret, attempts, \
             max_attempts, created_at, expires_at, provider_ref) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(c.id)
        .bind(c.tenant_id)
        .bind(c.signup_id)
        .bind(&c.channel)
        .bind(&c.destination)
        .bind(&c.code_hash)
        .bind(&c.totp_secret)
        .bind(c.attempts)
        .bind(c.max_attempts)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(&c.provider_ref),
    )
    .await?;
    Ok(())
}

/// The newest challenge of a sign-up.
pub async fn latest(tx: &mut Tx, tenant: TenantId, signup: Uuid) -> Result<Option<ChallengeRow>> {
    tx.fetch_optional(
        Q::new(
            "SELECT id, tenant_id, signup_id, channel, destination, code_hash, totp_secret, attempts, max_attempts, created_at, \
             expires_at, confirmed_at, provider_ref FROM signup_challenges WHERE tenant_id = $1 AND signup_id = $2 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(tenant.0)
        .bind(signup),
    )
    .await
}

pub async fn record_attempt(tx: &mut Tx, id: Uuid) -> Result<()> {
    tx.execute(
        Q::new("UPDATE signup_challenges SET attempts = attempts + 1 WHERE id = $1").bind(id),
    )
    .await?;
    Ok(())
}

pub async fn confirm(tx: &mut Tx, id: Uuid, now: Timestamp) -> Result<()> {
    tx.execute(
        Q::new(
            "UPDATE signup_challenges SET confirmed_at = $2, attempts = attempts + 1 WHERE id = $1",
        )
        .bind(id)
        .bind(to_micros(now)),
    )
    .await?;
    Ok(())
}
