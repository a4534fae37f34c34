//! The audit log: append inside the unit of work that made the change, read, and verify.

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use riskdesk_domain::audit::{
    Actor, AuditContent, ChainBreak, ChainVerifier, StoredEntry, entry_hash,
};
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::time::to_micros;
use crate::{Db, Result, StorageError, Tx};

/// What a caller records; the chain position and hashes are filled in by [`append`].
pub struct AuditDraft<'a> {
    pub actor: &'a Actor,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub reason: Option<&'a str>,
    pub note: Option<&'a str>,
}

impl<'a> AuditDraft<'a> {
    /// An entry about `entity_type` `entity_id`; add snapshots, reason and note as they apply.
    pub fn new(
        actor: &'a Actor,
        action: &'a str,
        entity_type: &'a str,
        entity_id: impl ToString,
    ) -> Self {
        AuditDraft {
            actor,
            action,
            entity_type,
            entity_id: entity_id.to_string(),
            before: None,
            after: None,
            reason: None,
            note: None,
        }
    }

    pub fn before<T: serde::Serialize>(mut self, v: &T) -> Self {
        self.before = snapshot(v);
        self
    }

    pub fn after<T: serde::Serialize>(mut self, v: &T) -> Self {
        self.after = snapshot(v);
        self
    }

    pub fn reason(mut self, reason: &'a str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn note(mut self, note: Option<&'a str>) -> Self {
        self.note = note;
        self
    }
}

/// Serialises a snapshot for `before`/`after`.
pub fn snapshot<T: serde::Serialize>(v: &T) -> Option<String> {
    serde_json::to_string(v).ok()
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct AuditRow {
    pub tenant_id: Uuid,
    pub seq: i64,
    pub at: i64,
    pub actor_kind: String,
    pub actor_name: String,
    pub actor_role: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl FromRow for AuditRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(AuditRow {
            tenant_id: r.uuid("tenant_id")?,
            seq: r.i64("seq")?,
            at: r.i64("at")?,
            actor_kind: r.text("actor_kind")?,
            actor_name: r.text("actor_name")?,
            actor_role: r.text("actor_role")?,
            action: r.text("action")?,
            entity_type: r.text("entity_type")?,
            entity_id: r.text("entity_id")?,
            before_json: r.opt_text("before_json")?,
            after_json: r.opt_text("after_json")?,
            reason: r.opt_text("reason")?,
            note: r.opt_text("note")?,
            prev_hash: r.text("prev_hash")?,
            hash: r.text("hash")?,
        })
    }
}

impl AuditRow {
    fn into_stored(self) -> StoredEntry {
        StoredEntry {
            content: AuditContent {
                tenant_id: self.tenant_id,
                seq: self.seq,
                at_micros: self.at,
                actor: Actor {
                    kind: self.actor_kind,
                    name: self.actor_name,
                    role: self.actor_role,
                },
                action: self.action,
                entity_type: self.entity_type,
                entity_id: self.entity_id,
                before: self.before_json,
                after: self.after_json,
                reason: self.reason,
                note: self.note,
            },
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

struct Head {
    seq: i64,
    hash: String,
}

impl FromRow for Head {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(Head {
            seq: r.i64("seq")?,
            hash: r.text("hash")?,
        })
    }
}

/// Appends an entry to the tenant's chain. Bumping the head row first takes its row lock on
/// PostgreSQL (SQLite's writer lock already serialises), so concurrent appenders queue instead
/// of forking the chain. Returns the entry's seq.
pub async fn append(
    tx: &mut Tx,
    tenant: TenantId,
    at: Timestamp,
    d: AuditDraft<'_>,
) -> Result<i64> {
    let head: Head = tx
        .fetch_optional(
            Q::new("UPDATE audit_heads SET seq = seq + 1 WHERE tenant_id = $1 RETURNING seq, hash")
                .bind(tenant.0),
        )
        .await?
        .ok_or(StorageError::NotFound("tenant audit head"))?;
    let content = AuditContent {
        tenant_id: tenant.0,
        seq: head.seq,
        at_micros: to_micros(at),
        actor: d.actor.clone(),
        action: d.action.to_owned(),
        entity_type: d.entity_type.to_owned(),
        entity_id: d.entity_id,
        before: d.before,
        after: d.after,
        reason: d.reason.map(str::to_owned),
        note: d.note.map(str::to_owned),
    };
    let hash = entry_hash(&content, &head.hash);
    // On PostgreSQL the entry and the head's new hash go in one statement (one round trip
    // fewer on every audited write); SQLite runs them in process, two statements cost nothing.
    let pg = tx.backend() == crate::Backend::Postgres;
    let insert = "INSERT INTO audit_log (tenant_id, seq, at, actor_kind, actor_name, actor_role, action, entity_type, entity_id, \
         before_json, after_json, reason, note, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
    tx.execute(
        Q::new(if pg {
            format!(
                "WITH entry AS ({insert}) UPDATE audit_heads SET hash = $15 WHERE tenant_id = $1"
            )
        } else {
            insert.to_owned()
        })
        .bind(tenant.0)
        .bind(content.seq)
        .bind(content.at_micros)
        .bind(&content.actor.kind)
        .bind(&content.actor.name)
        .bind(&content.actor.role)
        .bind(&content.action)
        .bind(&content.entity_type)
        .bind(&content.entity_id)
        .bind(&content.before)
        .bind(&content.after)
        .bind(&content.reason)
        .bind(&content.note)
        .bind(&head.hash)
        .bind(&hash),
    )
    .await?;
    if !pg {
        tx.execute(
            Q::new("UPDATE audit_heads SET hash = $2 WHERE tenant_id = $1")
                .bind(tenant.0)
                .bind(&hash),
        )
        .await?;
    }
    Ok(content.seq)
}

/// Appends several entries to the tenant's chain with one head bump, one multi-row insert and
/// one head update (the hot paths that record several changes at once, e.g. an approved
/// sign-up: its assessment, the customer and its credit terms). Same chain as `append` called
/// once per draft, in order. Returns the first entry's seq.
pub async fn append_many(
    tx: &mut Tx,
    tenant: TenantId,
    at: Timestamp,
    drafts: Vec<AuditDraft<'_>>,
) -> Result<i64> {
    let n = drafts.len() as i64;
    if n == 0 {
        return Err(StorageError::Config(
            "append_many needs at least one entry".into(),
        ));
    }
    let head: Head = tx
        .fetch_optional(
            Q::new(
                "UPDATE audit_heads SET seq = seq + $2 WHERE tenant_id = $1 RETURNING seq, hash",
            )
            .bind(tenant.0)
            .bind(n),
        )
        .await?
        .ok_or(StorageError::NotFound("tenant audit head"))?;
    let first = head.seq - n + 1;
    let mut prev = head.hash;
    let mut rows = Vec::with_capacity(drafts.len());
    for (i, d) in drafts.into_iter().enumerate() {
        let content = AuditContent {
            tenant_id: tenant.0,
            seq: first + i as i64,
            at_micros: to_micros(at),
            actor: d.actor.clone(),
            action: d.action.to_owned(),
            entity_type: d.entity_type.to_owned(),
            entity_id: d.entity_id,
            before: d.before,
            after: d.after,
            reason: d.reason.map(str::to_owned),
            note: d.note.map(str::to_owned),
        };
        let hash = entry_hash(&content, &prev);
        rows.push((content, std::mem::replace(&mut prev, hash.clone()), hash));
    }
    // $1 tenant, $2 at, then 13 parameters per entry.
    let values: Vec<String> = (0..rows.len())
        .map(|i| {
            let b = 3 + 13 * i;
            format!(
                "($1, ${}, $2, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b,
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9,
                b + 10,
                b + 11,
                b + 12
            )
        })
        .collect();
    let mut q = Q::new(format!(
        "INSERT INTO audit_log (tenant_id, seq, at, actor_kind, actor_name, actor_role, action, entity_type, entity_id, \
         before_json, after_json, reason, note, prev_hash, hash) VALUES {}",
        values.join(", ")
    ))
    .bind(tenant.0)
    .bind(to_micros(at));
    for (c, prev_hash, hash) in &rows {
        q = q
            .bind(c.seq)
            .bind(&c.actor.kind)
            .bind(&c.actor.name)
            .bind(&c.actor.role)
            .bind(&c.action)
            .bind(&c.entity_type)
            .bind(&c.entity_id)
            .bind(&c.before)
            .bind(&c.after)
            .bind(&c.reason)
            .bind(&c.note)
            .bind(prev_hash)
            .bind(hash);
    }
    tx.execute(q).await?;
    tx.execute(
        Q::new("UPDATE audit_heads SET hash = $2 WHERE tenant_id = $1")
            .bind(tenant.0)
            .bind(&prev),
    )
    .await?;
    Ok(first)
}

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub entity_id: Option<String>,
    pub entity_type: Option<String>,
    pub action: Option<String>,
}

const SELECT: &str = "SELECT tenant_id, seq, at, actor_kind, actor_name, actor_role, action, entity_type, entity_id, \
                      before_json, after_json, reason, note, prev_hash, hash FROM audit_log";

/// One page of a tenant's entries in chain order, after `after_seq`.
pub async fn list(
    db: &Db,
    tenant: TenantId,
    f: &AuditFilter,
    after_seq: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditRow>> {
    let q = Q::new(format!(
        "{SELECT} WHERE tenant_id = $1 AND ($2 IS NULL OR entity_id = $2) AND ($3 IS NULL OR entity_type = $3) \
         AND ($4 IS NULL OR action = $4) AND seq > $5 ORDER BY seq LIMIT $6"
    ))
    .bind(tenant.0)
    .bind(&f.entity_id)
    .bind(&f.entity_type)
    .bind(&f.action)
    .bind(after_seq.unwrap_or(0))
    .bind(i64::from(limit));
    db.fetch_all(q).await
}

/// Every entry about one entity inside a unit of work (used to return a history with a change).
pub async fn for_entity_tx(
    tx: &mut Tx,
    tenant: TenantId,
    entity_id: &str,
) -> Result<Vec<AuditRow>> {
    tx.fetch_all(
        Q::new(format!(
            "{SELECT} WHERE tenant_id = $1 AND entity_id = $2 ORDER BY seq"
        ))
        .bind(tenant.0)
        .bind(entity_id),
    )
    .await
}

/// The outcome of verifying one tenant's chain.
#[derive(Debug)]
pub struct TenantVerification {
    pub tenant_id: Uuid,
    pub slug: String,
    pub result: std::result::Result<i64, ChainBreak>,
}

/// Verifies every tenant's chain, streaming entries in pages so memory stays bounded.
pub async fn verify_all(db: &Db) -> Result<Vec<TenantVerification>> {
    const PAGE: i64 = 10_000;
    let tenants = crate::tenants::list(db).await?;
    let mut out = Vec::with_capacity(tenants.len());
    for t in tenants {
        let head: Option<Head> = db
            .fetch_optional(
                Q::new("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1").bind(t.id),
            )
            .await?;
        let mut verifier = ChainVerifier::new(t.id);
        let mut after = 0i64;
        let mut result = Ok(());
        'pages: loop {
            let rows: Vec<AuditRow> = db
                .fetch_all(
                    Q::new(format!(
                        "{SELECT} WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                    ))
                    .bind(t.id)
                    .bind(after)
                    .bind(PAGE),
                )
                .await?;
            let n = rows.len() as i64;
            for r in rows {
                after = r.seq;
                if let Err(e) = verifier.feed(&r.into_stored()) {
                    result = Err(e);
                    break 'pages;
                }
            }
            if n < PAGE {
                break;
            }
        }
        let result = match (result, head) {
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(ChainBreak {
                tenant_id: t.id,
                seq: 0,
                why: "the tenant's audit head is missing".into(),
            }),
            (Ok(()), Some(h)) => verifier.finish(h.seq, &h.hash),
        };
        out.push(TenantVerification {
            tenant_id: t.id,
            slug: t.slug,
            result,
        });
    }
    Ok(out)
}

/// Every tenant's chain head: (tenant id, slug, seq, hash); tenants without entries are left out.
pub async fn heads(db: &Db) -> Result<Vec<(Uuid, String, i64, String)>> {
    let mut out = Vec::new();
    for t in crate::tenants::list(db).await? {
        let head: Option<Head> = db
            .fetch_optional(
                Q::new("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1").bind(t.id),
            )
            .await?;
        if let Some(h) = head.filter(|h| h.seq > 0) {
            out.push((t.id, t.slug, h.seq, h.hash));
        }
    }
    Ok(out)
}

/// The stored hash of entry `seq` of a tenant's chain, if it is there.
pub async fn stored_hash(db: &Db, tenant: Uuid, seq: i64) -> Result<Option<String>> {
    struct H(String);
    impl FromRow for H {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(H(r.text("hash")?))
        }
    }
    Ok(db
        .fetch_optional::<H>(
            Q::new("SELECT hash FROM audit_log WHERE tenant_id = $1 AND seq = $2")
                .bind(tenant)
                .bind(seq),
        )
        .await?
        .map(|h| h.0))
}
