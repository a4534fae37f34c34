//! Staff API tokens: 32 random bytes shown once, stored only as their SHA-256 (a fast hash is
//! right for high-entropy secrets; a slow password hash would only cost latency).

use base64::Engine as _;
use jiff::Timestamp;
use rand::RngCore as _;
use riskdesk_domain::{Role, TenantId, TokenId};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::time::to_micros;
use crate::{Db, Result, StorageError, Tx};

/// Tokens start with this so they are recognisable in logs and by secret scanners.
pub const TOKEN_PREFIX: &str = "rdk_";

#[derive(Clone, Debug, serde::Serialize)]
pub struct TokenRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub role: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl FromRow for TokenRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(TokenRow {
            id: r.uuid("id")?,
            tenant_id: r.uuid("tenant_id")?,
            name: r.text("name")?,
            role: r.text("role")?,
            created_at: r.i64("created_at")?,
            revoked_at: r.opt_i64("revoked_at")?,
        })
    }
}

const SELECT: &str = "SELECT id, tenant_id, name, role, created_at, revoked_at FROM api_tokens";

/// An authenticated caller: what a valid bearer token stands for.
#[derive(Clone, Debug)]
pub struct Principal {
    pub token_id: TokenId,
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Creates a token; returns its row and the secret, which is never stored or shown again.
pub async fn create(
    tx: &mut Tx,
    tenant: TenantId,
    name: &str,
    role: Role,
    now: Timestamp,
) -> Result<(TokenRow, String)> {
    let secret = new_secret();
    let row = TokenRow {
        id: TokenId::new().0,
        tenant_id: tenant.0,
        name: name.to_owned(),
        role: role.as_str().to_owned(),
        created_at: to_micros(now),
        revoked_at: None,
    };
    tx.execute(
        Q::new("INSERT INTO api_tokens (id, tenant_id, name, role, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(row.id)
            .bind(row.tenant_id)
            .bind(&row.name)
            .bind(&row.role)
            .bind(hash_secret(&secret))
            .bind(row.created_at),
    )
    .await?;
    Ok((row, secret))
}

/// Revokes a token; returns the row as it was before (for the audit entry).
pub async fn revoke(tx: &mut Tx, id: TokenId, now: Timestamp) -> Result<TokenRow> {
    let before: TokenRow = tx
        .fetch_optional(Q::new(format!("{SELECT} WHERE id = $1")).bind(id.0))
        .await?
        .ok_or(StorageError::NotFound("token"))?;
    tx.execute(
        Q::new("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id.0)
            .bind(to_micros(now)),
    )
    .await?;
    Ok(before)
}

pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<TokenRow>> {
    db.fetch_all(Q::new(format!("{SELECT} WHERE tenant_id = $1 ORDER BY id")).bind(tenant.0))
        .await
}

/// Finds the live token a bearer secret belongs to.
pub async fn authenticate(db: &Db, secret: &str) -> Result<Option<Principal>> {
    if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 128 {
        return Ok(None);
    }
    let row: Option<TokenRow> = db
        .fetch_optional(
            Q::new(format!(
                "{SELECT} WHERE secret_hash = $1 AND revoked_at IS NULL"
            ))
            .bind(hash_secret(secret)),
        )
        .await?;
    row.map(|r| {
        let role = Role::parse(&r.role).ok_or_else(|| {
            StorageError::Corrupt(format!("token {} has role '{}'", r.id, r.role))
        })?;
        Ok(Principal {
            token_id: TokenId(r.id),
            tenant_id: TenantId(r.tenant_id),
            name: r.name,
            role,
        })
    })
    .transpose()
}
