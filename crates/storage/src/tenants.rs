use jiff::Timestamp;
use riskdesk_domain::audit::GENESIS_HASH;
use riskdesk_domain::{TenantId, TenantSlug};
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::time::to_micros;
use crate::{Db, Result, StorageError, Tx, conflict_on_unique};

#[derive(Clone, Debug, serde::Serialize)]
pub struct TenantRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

impl TenantRow {
    pub fn tenant_id(&self) -> TenantId {
        TenantId(self.id)
    }
}

impl FromRow for TenantRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(TenantRow {
            id: r.uuid("id")?,
            slug: r.text("slug")?,
            name: r.text("name")?,
            created_at: r.i64("created_at")?,
        })
    }
}

const SELECT: &str = "SELECT id, slug, name, created_at FROM tenants";

/// Creates a tenant and the head of its (empty) audit chain.
pub async fn insert(
    tx: &mut Tx,
    slug: &TenantSlug,
    name: &str,
    now: Timestamp,
) -> Result<TenantRow> {
    let row = TenantRow {
        id: TenantId::new().0,
        slug: slug.to_string(),
        name: name.to_owned(),
        created_at: to_micros(now),
    };
    tx.execute(
        Q::new("INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(row.id)
            .bind(&row.slug)
            .bind(&row.name)
            .bind(row.created_at),
    )
    .await
    .map_err(|e| conflict_on_unique(e, || format!("tenant '{slug}' already exists")))?;
    // One head per lane of the tenant's audit chain (crate::audit::lanes).
    let lanes = crate::audit::lanes(tx.backend());
    let values = (0..lanes)
        .map(|l| format!("($1, {l}, 0, $2)"))
        .collect::<Vec<_>>()
        .join(", ");
    tx.execute(
        Q::new(format!(
            "INSERT INTO audit_heads (tenant_id, lane, seq, hash) VALUES {values}"
        ))
        .bind(row.id)
        .bind(GENESIS_HASH),
    )
    .await?;
    Ok(row)
}

pub async fn by_slug(db: &Db, slug: &str) -> Result<TenantRow> {
    db.fetch_optional(Q::new(format!("{SELECT} WHERE slug = $1")).bind(slug))
        .await?
        .ok_or(StorageError::NotFound("tenant"))
}

pub async fn by_slug_tx(tx: &mut Tx, slug: &str) -> Result<Option<TenantRow>> {
    tx.fetch_optional(Q::new(format!("{SELECT} WHERE slug = $1")).bind(slug))
        .await
}

pub async fn list(db: &Db) -> Result<Vec<TenantRow>> {
    db.fetch_all(Q::new(format!("{SELECT} ORDER BY slug")))
        .await
}

pub async fn get(db: &Db, id: TenantId) -> Result<TenantRow> {
    db.fetch_optional(Q::new(format!("{SELECT} WHERE id = $1")).bind(id.0))
        .await?
        .ok_or(StorageError::NotFound("tenant"))
}

pub async fn get_tx(tx: &mut Tx, id: TenantId) -> Result<TenantRow> {
    tx.fetch_optional(Q::new(format!("{SELECT} WHERE id = $1")).bind(id.0))
        .await?
        .ok_or(StorageError::NotFound("tenant"))
}
