//! Cases and their timeline. A customer has at most one open (not resolved/dismissed) case
//! that new alerts attach to; the timeline (`case_entries`) is append-only.

use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::{Db, Result, StorageError, Tx};

/// A stored case. Serialises as its audit snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CaseRow {
    pub id: Uuid,
    pub customer_id: Option<Uuid>,
    pub signup_id: Option<Uuid>,
    pub kind: String,
    pub severity: String,
    pub status: String,
    pub title: String,
    pub assignee: Option<String>,
    pub opened_at: i64,
    pub due_at: i64,
    pub sla_notified_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub updated_at: i64,
}

impl FromRow for CaseRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(CaseRow {
            id: r.uuid("id")?,
            customer_id: r.opt_uuid("customer_id")?,
            signup_id: r.opt_uuid("signup_id")?,
            kind: r.text("kind")?,
            severity: r.text("severity")?,
            status: r.text("status")?,
            title: r.text("title")?,
            assignee: r.opt_text("assignee")?,
            opened_at: r.i64("opened_at")?,
            due_at: r.i64("due_at")?,
            sla_notified_at: r.opt_i64("sla_notified_at")?,
            closed_at: r.opt_i64("closed_at")?,
            updated_at: r.i64("updated_at")?,
        })
    }
}

const SELECT: &str = "SELECT id, customer_id, signup_id, kind, severity, status, title, assignee, opened_at, due_at, \
     sla_notified_at, closed_at, updated_at FROM cases";

pub async fn insert(tx: &mut Tx, tenant: TenantId, c: &CaseRow) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO cases (id, tenant_id, customer_id, signup_id, kind, severity, status, title, assignee, opened_at, due_at, \
             sla_notified_at, closed_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(c.id)
        .bind(tenant.0)
        .bind(c.customer_id)
        .bind(c.signup_id)
        .bind(&c.kind)
        .bind(&c.severity)
        .bind(&c.status)
        .bind(&c.title)
        .bind(&c.assignee)
        .bind(c.opened_at)
        .bind(c.due_at)
        .bind(c.sla_notified_at)
        .bind(c.closed_at)
        .bind(c.updated_at),
    )
    .await?;
    Ok(())
}

/// The customer's open case, if any (the newest, should there be several).
pub async fn open_for_customer_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
) -> Result<Option<CaseRow>> {
    tx.fetch_optional(
        Q::new(format!(
            "{SELECT} WHERE tenant_id = $1 AND customer_id = $2 AND status NOT IN ('resolved', 'dismissed') \
             ORDER BY opened_at DESC LIMIT 1"
        ))
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

/// The open case of a sign-up under review, if any.
pub async fn open_for_signup_tx(
    tx: &mut Tx,
    tenant: TenantId,
    signup: Uuid,
) -> Result<Option<CaseRow>> {
    tx.fetch_optional(
        Q::new(format!(
            "{SELECT} WHERE tenant_id = $1 AND signup_id = $2 AND status NOT IN ('resolved', 'dismissed') LIMIT 1"
        ))
        .bind(tenant.0)
        .bind(signup),
    )
    .await
}

pub async fn get(db: &Db, tenant: TenantId, id: Uuid) -> Result<CaseRow> {
    db.fetch_optional(
        Q::new(format!("{SELECT} WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("case"))
}

pub async fn get_tx(tx: &mut Tx, tenant: TenantId, id: Uuid) -> Result<CaseRow> {
    tx.fetch_optional(
        Q::new(format!("{SELECT} WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("case"))
}

/// Writes a case's mutable fields (status, severity, due, assignee, customer, closing).
pub async fn update(tx: &mut Tx, tenant: TenantId, c: &CaseRow) -> Result<()> {
    tx.execute(
        Q::new(
            "UPDATE cases SET customer_id = $3, severity = $4, status = $5, title = $6, assignee = $7, due_at = $8, \
             sla_notified_at = $9, closed_at = $10, updated_at = $11 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(c.id)
        .bind(c.customer_id)
        .bind(&c.severity)
        .bind(&c.status)
        .bind(&c.title)
        .bind(&c.assignee)
        .bind(c.due_at)
        .bind(c.sla_notified_at)
        .bind(c.closed_at)
        .bind(c.updated_at),
    )
    .await?;
    Ok(())
}

pub struct CaseFilter {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub severity: Option<String>,
    pub assignee: Option<String>,
    pub customer: Option<Uuid>,
    /// Only cases still open past their deadline at this instant (µs).
    pub overdue_at: Option<i64>,
    /// Only cases not closed.
    pub active_only: bool,
    /// Keyset: cases due after this (due_at, id).
    pub after: Option<(i64, Uuid)>,
}

/// The queue: most urgent deadline first.
pub async fn list(db: &Db, tenant: TenantId, f: &CaseFilter, limit: u32) -> Result<Vec<CaseRow>> {
    let (after_due, after_id) = f.after.map_or((None, None), |(d, i)| (Some(d), Some(i)));
    db.fetch_all(
        Q::new(format!(
            "{SELECT} WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR kind = $3) \
             AND ($4 IS NULL OR severity = $4) AND ($5 IS NULL OR assignee = $5) AND ($6 IS NULL OR customer_id = $6) \
             AND ($7 IS NULL OR (due_at < $7 AND status NOT IN ('resolved', 'dismissed'))) \
             AND ($8 = 0 OR status NOT IN ('resolved', 'dismissed')) \
             AND ($9 IS NULL OR due_at > $9 OR (due_at = $9 AND id > $10)) \
             ORDER BY due_at, id LIMIT $11"
        ))
        .bind(tenant.0)
        .bind(f.status.clone())
        .bind(f.kind.clone())
        .bind(f.severity.clone())
        .bind(f.assignee.clone())
        .bind(f.customer)
        .bind(f.overdue_at)
        .bind(i64::from(f.active_only))
        .bind(after_due)
        .bind(after_id)
        .bind(i64::from(limit)),
    )
    .await
}

/// The home page's case counts in one pass: (assigned to `assignee` and not closed, past
/// their deadline at `at` and not closed, not closed and unassigned, open credit-limit cases).
pub async fn home_counts(db: &Db, tenant: TenantId, assignee: &str, at: i64) -> Result<[i64; 4]> {
    struct C([i64; 4]);
    impl FromRow for C {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(C([
                r.opt_i64("mine")?.unwrap_or(0),
                r.opt_i64("breached")?.unwrap_or(0),
                r.opt_i64("unassigned")?.unwrap_or(0),
                r.opt_i64("credit")?.unwrap_or(0),
            ]))
        }
    }
    let c: Option<C> = db
        .fetch_optional(
            Q::new(
                "SELECT SUM(CASE WHEN assignee = $2 THEN 1 ELSE 0 END) AS mine, \
                 SUM(CASE WHEN due_at < $3 THEN 1 ELSE 0 END) AS breached, \
                 SUM(CASE WHEN assignee IS NULL THEN 1 ELSE 0 END) AS unassigned, \
                 SUM(CASE WHEN kind = 'credit_limit' THEN 1 ELSE 0 END) AS credit \
                 FROM cases WHERE tenant_id = $1 AND status NOT IN ('resolved', 'dismissed')",
            )
            .bind(tenant.0)
            .bind(assignee)
            .bind(at),
        )
        .await?;
    Ok(c.map_or([0; 4], |c| c.0))
}

/// The most urgent unassigned case of a view (`f`'s assignee is ignored): the candidate
/// [`claim`] then tries to take.
pub async fn next_unassigned(
    tx: &mut Tx,
    tenant: TenantId,
    f: &CaseFilter,
) -> Result<Option<CaseRow>> {
    tx.fetch_optional(
        Q::new(format!(
            "{SELECT} WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR kind = $3) \
             AND ($4 IS NULL OR severity = $4) AND assignee IS NULL AND ($5 IS NULL OR customer_id = $5) \
             AND ($6 IS NULL OR (due_at < $6 AND status NOT IN ('resolved', 'dismissed'))) \
             AND status NOT IN ('resolved', 'dismissed') \
             ORDER BY due_at, id LIMIT 1"
        ))
        .bind(tenant.0)
        .bind(f.status.clone())
        .bind(f.kind.clone())
        .bind(f.severity.clone())
        .bind(f.customer)
        .bind(f.overdue_at),
    )
    .await
}

/// Assigns a case only if nobody has it: 1 when taken, 0 when another unit of work took it
/// first (on PostgreSQL the second writer waits for the first, then sees the assignee).
pub async fn claim(
    tx: &mut Tx,
    tenant: TenantId,
    id: Uuid,
    assignee: &str,
    now: i64,
) -> Result<u64> {
    tx.execute(
        Q::new(
            "UPDATE cases SET assignee = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 AND assignee IS NULL",
        )
        .bind(tenant.0)
        .bind(id)
        .bind(assignee)
        .bind(now),
    )
    .await
}

/// Cases of every tenant past their deadline whose breach has not been notified yet.
pub async fn breached(
    db: &Db,
    tenant: Option<TenantId>,
    now: i64,
    limit: u32,
) -> Result<Vec<(Uuid, CaseRow)>> {
    #[derive(Debug)]
    struct R(Uuid, CaseRow);
    impl FromRow for R {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(R(r.uuid("tenant_id")?, CaseRow::from_row(r)?))
        }
    }
    let rows: Vec<R> = db
        .fetch_all(
            Q::new(
                "SELECT tenant_id, id, customer_id, signup_id, kind, severity, status, title, assignee, opened_at, due_at, \
                 sla_notified_at, closed_at, updated_at FROM cases \
                 WHERE due_at < $1 AND sla_notified_at IS NULL AND status NOT IN ('resolved', 'dismissed') \
                 AND ($3 IS NULL OR tenant_id = $3) ORDER BY due_at LIMIT $2",
            )
            .bind(now)
            .bind(i64::from(limit))
            .bind(tenant.map(|t| t.0)),
        )
        .await?;
    Ok(rows.into_iter().map(|R(t, c)| (t, c)).collect())
}

/// One entry of a case's story.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EntryRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub at: i64,
    /// opened, alert, comment, status, assign, action, notice, service_request, sla_breach
    pub kind: String,
    pub actor: String,
    pub text: Option<String>,
    pub ref_id: Option<Uuid>,
    pub data_json: Option<String>,
}

impl FromRow for EntryRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(EntryRow {
            id: r.uuid("id")?,
            case_id: r.uuid("case_id")?,
            at: r.i64("at")?,
            kind: r.text("kind")?,
            actor: r.text("actor")?,
            text: r.opt_text("text")?,
            ref_id: r.opt_uuid("ref_id")?,
            data_json: r.opt_text("data_json")?,
        })
    }
}

pub async fn add_entry(tx: &mut Tx, tenant: TenantId, e: &EntryRow) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO case_entries (id, tenant_id, case_id, at, kind, actor, text, ref_id, data_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(e.id)
        .bind(tenant.0)
        .bind(e.case_id)
        .bind(e.at)
        .bind(&e.kind)
        .bind(&e.actor)
        .bind(&e.text)
        .bind(e.ref_id)
        .bind(&e.data_json),
    )
    .await?;
    Ok(())
}

const ENTRIES: &str = "SELECT id, case_id, at, kind, actor, text, ref_id, data_json FROM case_entries \
     WHERE tenant_id = $1 AND case_id = $2 ORDER BY at, id";

pub async fn entries(db: &Db, tenant: TenantId, case: Uuid) -> Result<Vec<EntryRow>> {
    db.fetch_all(Q::new(ENTRIES).bind(tenant.0).bind(case))
        .await
}

pub async fn entries_tx(tx: &mut Tx, tenant: TenantId, case: Uuid) -> Result<Vec<EntryRow>> {
    tx.fetch_all(Q::new(ENTRIES).bind(tenant.0).bind(case))
        .await
}

/// On PostgreSQL, serialises the opening of a case per customer (or per sign-up, for a case
/// about a sign-up that has no customer yet) with a transaction-scoped advisory lock, taken
/// before the open case is looked up, so "one open case per customer" holds under concurrent
/// writers: the later unit of work finds the case the earlier one opened (the unique index of
/// migration 0013 is the backstop). SQLite has a single writer: nothing to do.
pub async fn lock_open_case(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Option<Uuid>,
    signup: Option<Uuid>,
) -> Result<()> {
    let key = match (customer, signup) {
        (Some(c), _) => format!("case|{}|customer|{c}", tenant.0),
        (None, Some(s)) => format!("case|{}|signup|{s}", tenant.0),
        (None, None) => return Ok(()),
    };
    tx.advisory_xact_lock(key).await
}
