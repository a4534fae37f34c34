//! The block list: typed, normalised identifiers with an optional expiry.

use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike, placeholders};
use crate::{Db, Result, StorageError, Tx};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BlockRow {
    pub id: Uuid,
    pub kind: String,
    pub value: String,
    pub reason: String,
    pub case_id: Option<Uuid>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub removed_at: Option<i64>,
    pub removed_by: Option<String>,
}

impl FromRow for BlockRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(BlockRow {
            id: r.uuid("id")?,
            kind: r.text("kind")?,
            value: r.text("value")?,
            reason: r.text("reason")?,
            case_id: r.opt_uuid("case_id")?,
            created_by: r.text("created_by")?,
            created_at: r.i64("created_at")?,
            expires_at: r.opt_i64("expires_at")?,
            removed_at: r.opt_i64("removed_at")?,
            removed_by: r.opt_text("removed_by")?,
        })
    }
}

const COLS: &str =
    "id, kind, value, reason, case_id, created_by, created_at, expires_at, removed_at, removed_by";

pub async fn insert(tx: &mut Tx, tenant: TenantId, b: &BlockRow) -> Result<()> {
    tx.execute(
        Q::new(format!(
            "INSERT INTO blocklist (tenant_id, {COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(tenant.0)
        .bind(b.id)
        .bind(&b.kind)
        .bind(&b.value)
        .bind(&b.reason)
        .bind(b.case_id)
        .bind(&b.created_by)
        .bind(b.created_at)
        .bind(b.expires_at)
        .bind(b.removed_at)
        .bind(&b.removed_by),
    )
    .await?;
    Ok(())
}

pub async fn get_tx(tx: &mut Tx, tenant: TenantId, id: Uuid) -> Result<BlockRow> {
    tx.fetch_optional(
        Q::new(format!(
            "SELECT {COLS} FROM blocklist WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("block-list entry"))
}

pub async fn remove(tx: &mut Tx, tenant: TenantId, id: Uuid, by: &str, at: i64) -> Result<()> {
    tx.execute(
        Q::new("UPDATE blocklist SET removed_at = $3, removed_by = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(id)
            .bind(at)
            .bind(by),
    )
    .await?;
    Ok(())
}

/// Entries in force at `at` (not removed, not expired), optionally of one kind.
pub async fn active(
    db: &Db,
    tenant: TenantId,
    kind: Option<&str>,
    at: i64,
) -> Result<Vec<BlockRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {COLS} FROM blocklist WHERE tenant_id = $1 AND removed_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2) AND ($3 IS NULL OR kind = $3) ORDER BY created_at DESC, id"
        ))
        .bind(tenant.0)
        .bind(at)
        .bind(kind),
    )
    .await
}

/// Every entry, removed and expired ones included, newest first.
pub async fn all(
    db: &Db,
    tenant: TenantId,
    kind: Option<&str>,
    limit: u32,
) -> Result<Vec<BlockRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {COLS} FROM blocklist WHERE tenant_id = $1 AND ($2 IS NULL OR kind = $2) ORDER BY created_at DESC, id LIMIT $3"
        ))
        .bind(tenant.0)
        .bind(kind)
        .bind(i64::from(limit)),
    )
    .await
}

/// Entries in force at `at` that equal one of `exact` (kind, value) pairs, and every IP range
/// (ranges are matched by containment in the domain). Read outside a unit of work (a reader
/// connection on SQLite): the committed list as of now.
pub async fn candidates(
    db: &Db,
    tenant: TenantId,
    exact: &[(String, String)],
    at: i64,
) -> Result<Vec<(String, String)>> {
    let rows: Vec<KV> = db.fetch_all(candidates_query(tenant, exact, at)).await?;
    Ok(keep_candidates(rows, exact))
}

#[derive(Debug)]
struct KV(String, String);
impl FromRow for KV {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(KV(r.text("kind")?, r.text("value")?))
    }
}

fn candidates_query(tenant: TenantId, exact: &[(String, String)], at: i64) -> Q {
    let values: Vec<&String> = exact.iter().map(|(_, v)| v).collect();
    let list = if values.is_empty() {
        "NULL".to_owned()
    } else {
        placeholders(3, values.len())
    };
    let mut q = Q::new(format!(
        "SELECT kind, value FROM blocklist WHERE tenant_id = $1 AND removed_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $2) AND (kind = 'ip' OR value IN ({list}))"
    ))
    .bind(tenant.0)
    .bind(at);
    for v in values {
        q = q.bind(v);
    }
    q
}

fn keep_candidates(rows: Vec<KV>, exact: &[(String, String)]) -> Vec<(String, String)> {
    rows.into_iter()
        .filter(|KV(k, v)| k == "ip" || exact.iter().any(|(ek, ev)| ek == k && ev == v))
        .map(|KV(k, v)| (k, v))
        .collect()
}
