//! Leases: a named job held by one process at a time (see migration 0015). Installation-wide,
//! not per tenant: a job's one pass serves every tenant.

use crate::query::{FromRow, Q, RowLike};
use crate::{Db, Result};

/// A lease as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub epoch: i64,
    /// µs since the epoch.
    pub lease_until: i64,
    pub acquired_at: i64,
}

impl FromRow for LeaseRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(LeaseRow {
            name: r.text("name")?,
            holder: r.text("holder")?,
            epoch: r.i64("epoch")?,
            lease_until: r.i64("lease_until")?,
            acquired_at: r.i64("acquired_at")?,
        })
    }
}

/// Takes or renews `name` for `holder` until `until` (µs) when it is free, expired at `now`,
/// or already `holder`'s; returns the lease held (its epoch grows at each change of holder),
/// or `None` while another holder's lease runs. One statement: two processes asking at once
/// cannot both get it.
pub async fn hold(
    db: &Db,
    name: &str,
    holder: &str,
    now: i64,
    until: i64,
) -> Result<Option<LeaseRow>> {
    let mut tx = db.begin().await?;
    let held = tx
        .fetch_optional(
        Q::new(
            "INSERT INTO leases (name, holder, epoch, lease_until, acquired_at) VALUES ($1, $2, 1, $4, $3) \
             ON CONFLICT (name) DO UPDATE SET \
               epoch = CASE WHEN leases.holder = excluded.holder THEN leases.epoch ELSE leases.epoch + 1 END, \
               acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END, \
               holder = excluded.holder, lease_until = excluded.lease_until \
             WHERE leases.holder = excluded.holder OR leases.lease_until < $3 \
             RETURNING name, holder, epoch, lease_until, acquired_at",
        )
        .bind(name)
        .bind(holder)
        .bind(now)
        .bind(until),
    )
    .await?;
    tx.commit().await?;
    Ok(held)
}

/// Gives `name` up if `holder` has it (a graceful stop: the next process need not wait for
/// the lease to run out).
pub async fn release(db: &Db, name: &str, holder: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    tx.execute(
        Q::new("UPDATE leases SET lease_until = 0 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Every lease, by name.
pub async fn list(db: &Db) -> Result<Vec<LeaseRow>> {
    db.fetch_all(Q::new(
        "SELECT name, holder, epoch, lease_until, acquired_at FROM leases ORDER BY name",
    ))
    .await
}

/// The leases whose names start with `prefix`, by name.
pub async fn with_prefix(db: &Db, prefix: &str) -> Result<Vec<LeaseRow>> {
    // A prefix, not a pattern: `LIKE` would read `_` and `%` in it.
    db.fetch_all(
        Q::new(
            "SELECT name, holder, epoch, lease_until, acquired_at FROM leases \
             WHERE substr(name, 1, length($1)) = $1 ORDER BY name",
        )
        .bind(prefix),
    )
    .await
}
