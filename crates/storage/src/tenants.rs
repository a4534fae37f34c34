use jiff::Timestamp;
use riskdesk_domain::audit::GENESIS_HASH;
use riskdesk_domain::{TenantId, TenantSlug};
use uuid::Uuid;

use crate::time::to_micros;
use crate::{Db, Result, StorageError, Tx, conflict_on_unique};

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
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
    on_tx!(tx, |c| {
        sqlx::query("INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(row.id)
            .bind(&row.slug)
            .bind(&row.name)
            .bind(row.created_at)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| conflict_on_unique(e, || format!("tenant '{slug}' already exists")))?;
        sqlx::query("INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2)")
            .bind(row.id)
            .bind(GENESIS_HASH)
            .execute(&mut **c)
            .await?;
    });
    Ok(row)
}

pub async fn by_slug(db: &Db, slug: &str) -> Result<TenantRow> {
    on_pool!(db, |p| sqlx::query_as::<_, TenantRow>(
        "SELECT id, slug, name, created_at FROM tenants WHERE slug = $1"
    )
    .bind(slug)
    .fetch_optional(p)
    .await)?
    .ok_or(StorageError::NotFound("tenant"))
}

pub async fn by_slug_tx(tx: &mut Tx, slug: &str) -> Result<Option<TenantRow>> {
    Ok(on_tx!(tx, |c| sqlx::query_as::<_, TenantRow>(
        "SELECT id, slug, name, created_at FROM tenants WHERE slug = $1"
    )
    .bind(slug)
    .fetch_optional(&mut **c)
    .await)?)
}

pub async fn list(db: &Db) -> Result<Vec<TenantRow>> {
    Ok(on_pool!(db, |p| sqlx::query_as::<_, TenantRow>(
        "SELECT id, slug, name, created_at FROM tenants ORDER BY slug"
    )
    .fetch_all(p)
    .await)?)
}
