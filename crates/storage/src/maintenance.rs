//! Housekeeping: rows that only matter for a while (velocity counters past every window,
//! idempotency keys past their retention, expired MFA challenges) are deleted so tables do not
//! grow without bound.

use jiff::Timestamp;

use crate::query::Q;
use crate::time::to_micros;
use crate::{Db, Result};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub velocity_rows: u64,
    pub idempotency_keys: u64,
    pub challenges: u64,
}

/// Deletes velocity rows older than `velocity_keep`, idempotency keys older than
/// `idempotency_keep`, and unconfirmed challenges expired before `as_of`.
pub async fn prune(
    db: &Db,
    as_of: Timestamp,
    velocity_keep: jiff::SignedDuration,
    idempotency_keep: jiff::SignedDuration,
) -> Result<Pruned> {
    let mut tx = db.begin().await?;
    let velocity_rows = tx
        .execute(
            Q::new("DELETE FROM signup_velocity WHERE at < $1")
                .bind(to_micros(as_of - velocity_keep)),
        )
        .await?;
    let idempotency_keys = tx
        .execute(
            Q::new("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(to_micros(as_of - idempotency_keep)),
        )
        .await?;
    let challenges = tx
        .execute(
            Q::new("DELETE FROM signup_challenges WHERE confirmed_at IS NULL AND expires_at < $1")
                .bind(to_micros(as_of)),
        )
        .await?;
    tx.commit().await?;
    Ok(Pruned {
        velocity_rows,
        idempotency_keys,
        challenges,
    })
}
