//! Stored sign-up assessments (the review queue), velocity counters and the identifiers used
//! to link sign-ups and customers to known fraud.

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::time::to_micros;
use crate::{Db, Result, StorageError, Tx};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignupRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub created_at: i64,
    pub as_of: i64,
    pub decision: String,
    pub score: i64,
    pub status: String,
    pub input_json: String,
    pub outcome_json: String,
    pub customer_id: Option<Uuid>,
    pub reviewed_at: Option<i64>,
    pub review_note: Option<String>,
}

impl FromRow for SignupRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(SignupRow {
            id: r.uuid("id")?,
            tenant_id: r.uuid("tenant_id")?,
            created_at: r.i64("created_at")?,
            as_of: r.i64("as_of")?,
            decision: r.text("decision")?,
            score: r.i64("score")?,
            status: r.text("status")?,
            input_json: r.text("input_json")?,
            outcome_json: r.text("outcome_json")?,
            customer_id: r.opt_uuid("customer_id")?,
            reviewed_at: r.opt_i64("reviewed_at")?,
            review_note: r.opt_text("review_note")?,
        })
    }
}

const SELECT: &str = "SELECT id, tenant_id, created_at, as_of, decision, score, status, input_json, outcome_json, customer_id, \
                      reviewed_at, review_note FROM signups";

pub async fn insert(tx: &mut Tx, row: &SignupRow) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO signups (id, tenant_id, created_at, as_of, decision, score, status, input_json, outcome_json, customer_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(row.id)
        .bind(row.tenant_id)
        .bind(row.created_at)
        .bind(row.as_of)
        .bind(&row.decision)
        .bind(row.score)
        .bind(&row.status)
        .bind(&row.input_json)
        .bind(&row.outcome_json)
        .bind(row.customer_id),
    )
    .await?;
    Ok(())
}

pub async fn get(db: &Db, tenant: TenantId, id: Uuid) -> Result<SignupRow> {
    db.fetch_optional(
        Q::new(format!("{SELECT} WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("sign-up"))
}

pub async fn get_tx(tx: &mut Tx, tenant: TenantId, id: Uuid) -> Result<SignupRow> {
    tx.fetch_optional(
        Q::new(format!("{SELECT} WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("sign-up"))
}

pub async fn list(
    db: &Db,
    tenant: TenantId,
    decision: Option<&str>,
    status: Option<&str>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<SignupRow>> {
    db.fetch_all(
        Q::new(format!(
            "{SELECT} WHERE tenant_id = $1 AND ($2 IS NULL OR decision = $2) AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR id > $4) \
             ORDER BY id LIMIT $5"
        ))
        .bind(tenant.0)
        .bind(decision)
        .bind(status)
        .bind(after)
        .bind(i64::from(limit)),
    )
    .await
}

/// Records the analyst's review; returns the row after it.
pub async fn set_reviewed(
    tx: &mut Tx,
    before: &SignupRow,
    status: &str,
    customer_id: Option<Uuid>,
    note: Option<&str>,
    now: Timestamp,
) -> Result<SignupRow> {
    let after = SignupRow {
        status: status.to_owned(),
        customer_id: customer_id.or(before.customer_id),
        reviewed_at: Some(to_micros(now)),
        review_note: note.map(str::to_owned),
        ..before.clone()
    };
    tx.execute(
        Q::new("UPDATE signups SET status = $3, customer_id = $4, reviewed_at = $5, review_note = $6 WHERE tenant_id = $1 AND id = $2")
            .bind(before.tenant_id)
            .bind(before.id)
            .bind(&after.status)
            .bind(after.customer_id)
            .bind(after.reviewed_at)
            .bind(&after.review_note),
    )
    .await?;
    Ok(after)
}

/// Serialises concurrent sign-ups that share a velocity value (PostgreSQL advisory locks, taken
/// in a fixed order; SQLite's single writer already serialises).
pub async fn lock_velocity_keys(
    tx: &mut Tx,
    tenant: TenantId,
    keys: &[(String, String)],
) -> Result<()> {
    let names: Vec<String> = keys
        .iter()
        .map(|(k, v)| format!("{}|{k}|{v}", tenant.0))
        .collect();
    tx.advisory_xact_locks(&names).await
}

/// Records this sign-up under each velocity value and returns, per value, how many sign-ups
/// (this one included) fall in (`at` − window, `at`].
pub async fn count_velocity(
    tx: &mut Tx,
    tenant: TenantId,
    signup: Uuid,
    at: Timestamp,
    keys: &[(String, String, u64, u32)],
) -> Result<Vec<u32>> {
    count_velocity_until(tx, tenant, signup, at, true, keys).await
}

/// [`count_velocity`]; with `bounded` false the window has no upper end: a live sign-up (no
/// `as_of` given) counts every sign-up recorded before it in the window, also those of a
/// concurrent burst whose clock reading came a moment later than its own.
pub async fn count_velocity_until(
    tx: &mut Tx,
    tenant: TenantId,
    signup: Uuid,
    at: Timestamp,
    bounded: bool,
    keys: &[(String, String, u64, u32)],
) -> Result<Vec<u32>> {
    let at_us = to_micros(at);
    let mut out = Vec::with_capacity(keys.len());
    let pairs: Vec<(String, String)> = keys
        .iter()
        .map(|(k, v, _, _)| (k.clone(), v.clone()))
        .collect();
    record_velocity(tx, tenant, signup, at, &pairs).await?;
    for (kind, value, window, cap) in keys {
        let since = at_us - (*window as i64) * 1_000_000;
        let n: Option<i64> = tx
            .fetch_optional(
                // The cap is written into the text, not bound: SQLite re-prepares a statement
                // whose LIMIT is a bound parameter on every run (measured: 10 % of an assessment's
                // CPU). It is a small integer from the policy, so few texts exist.
                Q::new(format!(
                    "SELECT COUNT(*) AS n FROM (SELECT 1 FROM signup_velocity WHERE tenant_id = $1 AND kind = $2 AND value = $3 \
                     AND at > $4 AND at <= $5 LIMIT {cap}) capped"
                ))
                .bind(tenant.0)
                .bind(kind)
                .bind(value)
                .bind(since)
                .bind(if bounded { at_us } else { i64::MAX }),
            )
            .await?;
        out.push(n.unwrap_or(0) as u32);
    }
    Ok(out)
}

/// Records this sign-up under each velocity value (kind, value), without counting; once per
/// value, however many rules (windows) read it.
pub async fn record_velocity(
    tx: &mut Tx,
    tenant: TenantId,
    signup: Uuid,
    at: Timestamp,
    keys: &[(String, String)],
) -> Result<()> {
    let mut distinct: Vec<&(String, String)> = Vec::with_capacity(keys.len());
    for k in keys {
        if !distinct.contains(&k) {
            distinct.push(k);
        }
    }
    let keys = distinct;
    if keys.is_empty() {
        return Ok(());
    }
    // One multi-row statement: $1 tenant, $2 at, $3 sign-up, then (kind, value) pairs.
    let rows: Vec<String> = (0..keys.len())
        .map(|i| format!("($1, ${}, ${}, $2, $3)", 4 + 2 * i, 5 + 2 * i))
        .collect();
    let mut q = Q::new(format!(
        "INSERT INTO signup_velocity (tenant_id, kind, value, at, signup_id) VALUES {}",
        rows.join(", ")
    ))
    .bind(tenant.0)
    .bind(to_micros(at))
    .bind(signup);
    for (kind, value) in keys {
        q = q.bind(kind).bind(value);
    }
    tx.execute(q).await?;
    Ok(())
}

/// One stored velocity record.
pub struct VelocityRecord {
    pub kind: String,
    pub value: String,
    pub at: i64,
}

impl FromRow for VelocityRecord {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(VelocityRecord {
            kind: r.text("kind")?,
            value: r.text("value")?,
            at: r.i64("at")?,
        })
    }
}

/// Every velocity record of the tenant at or after `since` (microseconds): what an in-memory
/// velocity book is rebuilt from.
pub async fn velocity_since(db: &Db, tenant: TenantId, since: i64) -> Result<Vec<VelocityRecord>> {
    db.fetch_all(
        Q::new("SELECT kind, value, at FROM signup_velocity WHERE tenant_id = $1 AND at >= $2")
            .bind(tenant.0)
            .bind(since),
    )
    .await
}

/// Records which identifiers an owner (sign-up or customer) uses.
pub async fn add_identifiers(
    tx: &mut Tx,
    tenant: TenantId,
    owner_type: &str,
    owner: Uuid,
    ids: &[(String, String)],
) -> Result<()> {
    add_identifiers_of(tx, tenant, &[(owner_type, owner)], ids).await
}

/// Records that each owner (type, id) uses each identifier, in one statement.
pub async fn add_identifiers_of(
    tx: &mut Tx,
    tenant: TenantId,
    owners: &[(&str, Uuid)],
    ids: &[(String, String)],
) -> Result<()> {
    if ids.is_empty() || owners.is_empty() {
        return Ok(());
    }
    // $1 tenant, then (owner type, owner) pairs, then (kind, value) pairs.
    let first_id = 2 + 2 * owners.len();
    let mut rows = Vec::with_capacity(owners.len() * ids.len());
    for o in 0..owners.len() {
        for i in 0..ids.len() {
            rows.push(format!(
                "($1, ${}, ${}, ${}, ${})",
                first_id + 2 * i,
                first_id + 2 * i + 1,
                2 + 2 * o,
                3 + 2 * o
            ));
        }
    }
    let mut q = Q::new(format!(
        "INSERT INTO identifiers (tenant_id, kind, value, owner_type, owner_id) VALUES {} \
         ON CONFLICT (tenant_id, kind, value, owner_type, owner_id) DO NOTHING",
        rows.join(", ")
    ))
    .bind(tenant.0);
    for (owner_type, owner) in owners {
        q = q.bind(*owner_type).bind(*owner);
    }
    for (kind, value) in ids {
        q = q.bind(kind).bind(value);
    }
    tx.execute(q).await?;
    Ok(())
}

struct KindValue {
    kind: String,
    value: String,
}

impl FromRow for KindValue {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(KindValue {
            kind: r.text("kind")?,
            value: r.text("value")?,
        })
    }
}

/// The identifiers among `ids` that something marked fraudulent also uses, as `kind:value`.
/// Read outside a unit of work (a reader connection on SQLite): the committed marks as of now.
pub async fn fraud_links(
    db: &Db,
    tenant: TenantId,
    ids: &[(String, String)],
) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let hits: Vec<KindValue> = db.fetch_all(fraud_probe(tenant, ids)).await?;
    Ok(linked(ids, &hits))
}

/// One probe for all identifiers (each pair is a primary-key look-up).
fn fraud_probe(tenant: TenantId, ids: &[(String, String)]) -> Q {
    let pairs: Vec<String> = (0..ids.len())
        .map(|i| format!("(kind = ${} AND value = ${})", 2 + 2 * i, 3 + 2 * i))
        .collect();
    let mut q = Q::new(format!(
        "SELECT kind, value FROM fraud_identifiers WHERE tenant_id = $1 AND ({})",
        pairs.join(" OR ")
    ))
    .bind(tenant.0);
    for (kind, value) in ids {
        q = q.bind(kind).bind(value);
    }
    q
}

/// The probed identifiers that were hit, in the order given, as `kind:value`.
fn linked(ids: &[(String, String)], hits: &[KindValue]) -> Vec<String> {
    ids.iter()
        .filter(|(k, v)| hits.iter().any(|h| &h.kind == k && &h.value == v))
        .map(|(k, v)| format!("{k}:{v}"))
        .collect()
}

/// Marks every identifier of `owner` fraudulent and returns the other customers that share one
/// of them (id, the shared `kind:value`).
pub async fn mark_fraudulent(
    tx: &mut Tx,
    tenant: TenantId,
    owner: Uuid,
    now: Timestamp,
) -> Result<Vec<(Uuid, String)>> {
    tx.execute(
        Q::new(
            "INSERT INTO fraud_identifiers (tenant_id, kind, value, source_id, marked_at) \
             SELECT tenant_id, kind, value, owner_id, $3 FROM identifiers WHERE tenant_id = $1 AND owner_id = $2 \
             ON CONFLICT (tenant_id, kind, value) DO NOTHING",
        )
        .bind(tenant.0)
        .bind(owner)
        .bind(to_micros(now)),
    )
    .await?;
    let shared: Vec<LinkedOwner> = tx
        .fetch_all(
            Q::new(
                "SELECT DISTINCT o.owner_id AS owner_id, o.kind AS kind, o.value AS value FROM identifiers f \
                 JOIN identifiers o ON o.tenant_id = f.tenant_id AND o.kind = f.kind AND o.value = f.value \
                 WHERE f.tenant_id = $1 AND f.owner_id = $2 AND o.owner_id <> $2 AND o.owner_type = 'customer' ORDER BY o.owner_id",
            )
            .bind(tenant.0)
            .bind(owner),
        )
        .await?;
    Ok(shared
        .into_iter()
        .map(|l| (l.owner_id, format!("{}:{}", l.kind, l.value)))
        .collect())
}

struct LinkedOwner {
    owner_id: Uuid,
    kind: String,
    value: String,
}

impl FromRow for LinkedOwner {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(LinkedOwner {
            owner_id: r.uuid("owner_id")?,
            kind: r.text("kind")?,
            value: r.text("value")?,
        })
    }
}

/// Marks a sign-up verified (MFA passed).
pub async fn set_verified(tx: &mut Tx, tenant: TenantId, id: Uuid, now: Timestamp) -> Result<()> {
    tx.execute(
        Q::new("UPDATE signups SET verified_at = $3 WHERE tenant_id = $1 AND id = $2 AND verified_at IS NULL")
            .bind(tenant.0)
            .bind(id)
            .bind(to_micros(now)),
    )
    .await?;
    Ok(())
}

/// Whether a sign-up passed MFA.
pub async fn is_verified(tx: &mut Tx, tenant: TenantId, id: Uuid) -> Result<bool> {
    let n: Option<i64> = tx
        .fetch_optional(Q::new("SELECT COUNT(*) AS n FROM signups WHERE tenant_id = $1 AND id = $2 AND verified_at IS NOT NULL").bind(tenant.0).bind(id))
        .await?;
    Ok(n.unwrap_or(0) > 0)
}
