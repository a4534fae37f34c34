//! Idempotency keys for POST. The key row is claimed inside the same unit of work as the effect
//! and completed with the response before commit, so "effect happened" and "response stored"
//! are one atomic fact: a retry either replays the stored response or runs the request anew.
//!
//! On PostgreSQL a concurrent request with the same key blocks on the claim's INSERT until the
//! first commits, then sees the stored response; on SQLite the single writer serialises them.

use jiff::Timestamp;
use riskdesk_domain::TenantId;

use crate::query::{FromRow, Q, RowLike};
use crate::time::to_micros;
use crate::{Result, Tx};

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use of the key: run the request, then [`complete`].
    Fresh,
    /// Same key, same request: answer with the stored response.
    Replay { status: u16, body: String },
    /// Same key, different request.
    Mismatch,
}

struct Stored {
    request_hash: String,
    status_code: Option<i64>,
    response_body: Option<String>,
}

impl FromRow for Stored {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(Stored {
            request_hash: r.text("request_hash")?,
            status_code: r.opt_i64("status_code")?,
            response_body: r.opt_text("response_body")?,
        })
    }
}

pub async fn claim(
    tx: &mut Tx,
    tenant: TenantId,
    key: &str,
    request_hash: &str,
    now: Timestamp,
) -> Result<Claim> {
    let inserted = tx
        .execute(
            Q::new(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, key) DO NOTHING",
            )
            .bind(tenant.0)
            .bind(key)
            .bind(request_hash)
            .bind(to_micros(now)),
        )
        .await?;
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let stored: Option<Stored> = tx
        .fetch_optional(
            Q::new("SELECT request_hash, status_code, response_body FROM idempotency_keys WHERE tenant_id = $1 AND key = $2")
                .bind(tenant.0)
                .bind(key),
        )
        .await?;
    let Some(stored) = stored else {
        return Ok(Claim::Mismatch);
    };
    if stored.request_hash != request_hash {
        return Ok(Claim::Mismatch);
    }
    match (stored.status_code, stored.response_body) {
        (Some(status), Some(body)) => Ok(Claim::Replay {
            status: status as u16,
            body,
        }),
        // Cannot be observed committed (claim and completion share a transaction); treat as a
        // mismatch rather than run the effect twice.
        _ => Ok(Claim::Mismatch),
    }
}

pub async fn complete(
    tx: &mut Tx,
    tenant: TenantId,
    key: &str,
    status: u16,
    body: &str,
) -> Result<()> {
    tx.execute(
        Q::new("UPDATE idempotency_keys SET status_code = $3, response_body = $4 WHERE tenant_id = $1 AND key = $2")
            .bind(tenant.0)
            .bind(key)
            .bind(i64::from(status))
            .bind(body),
    )
    .await?;
    Ok(())
}
