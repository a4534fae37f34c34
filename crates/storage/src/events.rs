//! Ingested events and the hourly spend aggregates derived from them.

use std::collections::{HashMap, HashSet};

use riskdesk_domain::TenantId;
use riskdesk_domain::monitoring::cost::join;
use riskdesk_domain::monitoring::rules::{Interner, Rec, StoredFields};
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::{Db, Result, StorageError, Tx};

/// An event ready to store (validated, customer resolved where it could be).
#[derive(Clone, Debug)]
pub struct EventRow {
    pub event_id: String,
    pub kind: &'static str,
    pub customer_id: Option<Uuid>,
    pub customer_external_id: Option<String>,
    pub subscription_id: Option<Uuid>,
    pub time: i64,
    pub received_at: i64,
    pub meter_category: Option<String>,
    pub meter_name: Option<String>,
    pub region: Option<String>,
    pub resource_id: Option<String>,
    pub quantity: Option<String>,
    pub unit: Option<String>,
    /// (whole units, pico remainder), see `riskdesk_domain::monitoring::cost::split`.
    pub cost: Option<(i64, i64)>,
    pub currency: Option<String>,
    pub operation: Option<String>,
    pub actor: Option<String>,
    pub status: Option<String>,
    pub properties_json: Option<String>,
}

const COLUMNS: usize = 21;
/// Rows per INSERT: 21 × 40 = 840 parameters, under both backends' limits.
const ROWS_PER_STATEMENT: usize = 40;

struct EventIdRow(String);
impl FromRow for EventIdRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(EventIdRow(r.text("event_id")?))
    }
}

/// The multi-row INSERT for `rows` rows (built once per size: the text is also the key of the
/// prepared-statement cache).
fn insert_sql(rows: usize) -> std::borrow::Cow<'static, str> {
    static FULL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let build = |rows: usize| {
        let placeholders: Vec<String> = (0..rows)
            .map(|r| {
                let cols: Vec<String> = (0..COLUMNS)
                    .map(|c| format!("${}", r * COLUMNS + c + 1))
                    .collect();
                format!("({})", cols.join(", "))
            })
            .collect();
        format!(
            "INSERT INTO events (tenant_id, event_id, kind, customer_id, customer_external_id, subscription_id, time, received_at, \
             meter_category, meter_name, region, resource_id, quantity, unit, cost_units, cost_rem, currency, operation, actor, status, \
             properties_json) VALUES {} ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING event_id",
            placeholders.join(", ")
        )
    };
    if rows == ROWS_PER_STATEMENT {
        std::borrow::Cow::Borrowed(FULL.get_or_init(|| build(rows)).as_str())
    } else {
        std::borrow::Cow::Owned(build(rows))
    }
}

/// Stores the events that are new; returns, per input row, whether it was stored (`false` = a
/// duplicate of an event already stored or earlier in the same batch).
pub async fn insert_new(tx: &mut Tx, tenant: TenantId, rows: Vec<EventRow>) -> Result<Vec<bool>> {
    let mut stored = vec![false; rows.len()];
    // A repeat inside the batch is a duplicate of its first occurrence.
    let mut seen = HashSet::with_capacity(rows.len());
    let ids: Vec<String> = rows.iter().map(|r| r.event_id.clone()).collect();
    let fresh: Vec<usize> = (0..ids.len())
        .filter(|i| seen.insert(ids[*i].as_str()))
        .collect();
    // Bound by value: the strings move into the statement instead of being copied.
    let mut slots: Vec<Option<EventRow>> = rows.into_iter().map(Some).collect();
    for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
        let mut q = Q::new(insert_sql(chunk.len()));
        for i in chunk {
            let Some(e) = slots[*i].take() else { continue };
            let (units, rem) = match e.cost {
                Some((u, r)) => (Some(u), Some(r)),
                None => (None, None),
            };
            q = q
                .bind(tenant.0)
                .bind(e.event_id)
                .bind(e.kind)
                .bind(e.customer_id)
                .bind(e.customer_external_id)
                .bind(e.subscription_id)
                .bind(e.time)
                .bind(e.received_at)
                .bind(e.meter_category)
                .bind(e.meter_name)
                .bind(e.region)
                .bind(e.resource_id)
                .bind(e.quantity)
                .bind(e.unit)
                .bind(units)
                .bind(rem)
                .bind(e.currency)
                .bind(e.operation)
                .bind(e.actor)
                .bind(e.status)
                .bind(e.properties_json);
        }
        let inserted: HashSet<String> = tx
            .fetch_all::<EventIdRow>(q)
            .await?
            .into_iter()
            .map(|r| r.0)
            .collect();
        for i in chunk {
            stored[*i] = inserted.contains(&ids[*i]);
        }
    }
    Ok(stored)
}

/// Maps the partner's customer ids to riskdesk's, for those that exist.
pub async fn customers_by_external_id(
    tx: &mut Tx,
    tenant: TenantId,
    external: &[String],
) -> Result<HashMap<String, Uuid>> {
    let mut out = HashMap::new();
    for chunk in external.chunks(500) {
        let list = crate::query::placeholders(2, chunk.len());
        let mut q = Q::new(format!(
            "SELECT id, external_id FROM customers WHERE tenant_id = $1 AND external_id IN ({})",
            list
        ))
        .bind(tenant.0);
        for e in chunk {
            q = q.bind(e);
        }
        for r in tx.fetch_all::<IdExternal>(q).await? {
            out.insert(r.external_id, r.id);
        }
    }
    Ok(out)
}

/// Which of these customer ids exist in the tenant.
pub async fn existing_customers(
    tx: &mut Tx,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>> {
    let mut out = HashSet::new();
    for chunk in ids.chunks(500) {
        let list = crate::query::placeholders(2, chunk.len());
        let mut q = Q::new(format!(
            "SELECT id, '' AS external_id FROM customers WHERE tenant_id = $1 AND id IN ({})",
            list
        ))
        .bind(tenant.0);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(
            tx.fetch_all::<IdExternal>(q)
                .await?
                .into_iter()
                .map(|r| r.id),
        );
    }
    Ok(out)
}

struct IdExternal {
    id: Uuid,
    external_id: String,
}
impl FromRow for IdExternal {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(IdExternal {
            id: r.uuid("id")?,
            external_id: r.opt_text("external_id")?.unwrap_or_default(),
        })
    }
}

/// Spend to add to one hourly bucket.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketKey {
    pub customer_id: Uuid,
    pub meter_category: String,
    /// µs of the hour's start.
    pub hour: i64,
    pub currency: String,
}

/// Adds spend to hourly buckets. Each amount is (whole units, pico remainder); the remainder's
/// whole units carry into the units column, so sums stay exact (both columns are computed from
/// the old values in one UPDATE).
pub async fn add_spend(
    tx: &mut Tx,
    tenant: TenantId,
    buckets: &[(BucketKey, (i64, i64), i64)],
) -> Result<()> {
    for chunk in buckets.chunks(100) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = 2 + i * 7;
                format!(
                    "($1, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b,
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6
                )
            })
            .collect();
        let mut q = Q::new(format!(
            "INSERT INTO spend_hourly AS s (tenant_id, customer_id, meter_category, hour, currency, cost_units, cost_rem, events) \
             VALUES {} ON CONFLICT (tenant_id, customer_id, hour, meter_category, currency) DO UPDATE SET \
             cost_units = s.cost_units + excluded.cost_units + (s.cost_rem + excluded.cost_rem) / 1000000000000, \
             cost_rem = (s.cost_rem + excluded.cost_rem) % 1000000000000, \
             events = s.events + excluded.events",
            rows.join(", ")
        ))
        .bind(tenant.0);
        for (k, (units, rem), n) in chunk {
            q = q
                .bind(k.customer_id)
                .bind(&k.meter_category)
                .bind(k.hour)
                .bind(&k.currency)
                .bind(*units)
                .bind(*rem)
                .bind(*n);
        }
        tx.execute(q).await?;
    }
    Ok(())
}

/// Spend per currency between two instants (µs), as (currency, whole units, pico remainder).
#[derive(Clone, Debug)]
pub struct CurrencySpend {
    pub currency: String,
    pub units: i64,
    pub rem: i64,
}
impl FromRow for CurrencySpend {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(CurrencySpend {
            currency: r.text("currency")?,
            units: r.i64("units")?,
            rem: r.i64("rem")?,
        })
    }
}

fn spend_query(tenant: TenantId, customer: Uuid, from: i64, to: i64) -> Q {
    Q::new(
        "SELECT currency, CAST(SUM(cost_units) AS BIGINT) AS units, CAST(SUM(cost_rem) AS BIGINT) AS rem FROM spend_hourly \
         WHERE tenant_id = $1 AND customer_id = $2 AND hour >= $3 AND hour < $4 GROUP BY currency ORDER BY currency",
    )
    .bind(tenant.0)
    .bind(customer)
    .bind(from)
    .bind(to)
}

pub async fn spend_between_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    from: i64,
    to: i64,
) -> Result<Vec<CurrencySpend>> {
    tx.fetch_all(spend_query(tenant, customer, from, to)).await
}

pub async fn spend_between(
    db: &Db,
    tenant: TenantId,
    customer: Uuid,
    from: i64,
    to: i64,
) -> Result<Vec<CurrencySpend>> {
    db.fetch_all(spend_query(tenant, customer, from, to)).await
}

/// A usage event's contribution to the hourly buckets.
#[derive(Clone, Debug)]
pub struct UsageLine {
    pub meter_category: String,
    pub time: i64,
    pub currency: String,
    pub units: i64,
    pub rem: i64,
}
impl FromRow for UsageLine {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(UsageLine {
            meter_category: r.text("meter_category")?,
            time: r.i64("time")?,
            currency: r.text("currency")?,
            units: r.i64("cost_units")?,
            rem: r.i64("cost_rem")?,
        })
    }
}

/// Gives the events kept for an external id to the customer that now has it; returns their
/// usage lines so the caller adds them to the spend buckets.
pub async fn attach_pending(
    tx: &mut Tx,
    tenant: TenantId,
    external_id: &str,
    customer: Uuid,
) -> Result<(u64, Vec<UsageLine>)> {
    let lines = tx
        .fetch_all::<UsageLine>(
            Q::new(
                "SELECT meter_category, time, currency, cost_units, cost_rem FROM events \
                 WHERE tenant_id = $1 AND customer_id IS NULL AND customer_external_id = $2 AND kind = 'usage'",
            )
            .bind(tenant.0)
            .bind(external_id),
        )
        .await?;
    let n = tx
        .execute(
            Q::new(
                "UPDATE events SET customer_id = $3 WHERE tenant_id = $1 AND customer_id IS NULL AND customer_external_id = $2",
            )
            .bind(tenant.0)
            .bind(external_id)
            .bind(customer),
        )
        .await?;
    Ok((n, lines))
}

/// Events waiting for a customer, per tenant.
pub async fn pending_count(db: &Db, tenant: TenantId) -> Result<i64> {
    let n = db
        .fetch_optional::<i64>(
            Q::new("SELECT COUNT(*) AS n FROM events WHERE tenant_id = $1 AND customer_id IS NULL")
                .bind(tenant.0),
        )
        .await?;
    Ok(n.unwrap_or(0))
}

/// A stored event as the rules see it.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub event_id: String,
    pub kind: String,
    pub customer_id: Uuid,
    pub time: i64,
    pub meter_category: Option<String>,
    pub meter_name: Option<String>,
    pub region: Option<String>,
    pub resource_id: Option<String>,
    pub quantity: Option<String>,
    pub unit: Option<String>,
    pub cost_units: Option<i64>,
    pub cost_rem: Option<i64>,
    pub currency: Option<String>,
    pub operation: Option<String>,
    pub actor: Option<String>,
    pub status: Option<String>,
    pub properties_json: Option<String>,
}

impl FromRow for StoredEvent {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(StoredEvent {
            event_id: r.text("event_id")?,
            kind: r.text("kind")?,
            customer_id: r.uuid("customer_id")?,
            time: r.i64("time")?,
            meter_category: r.opt_text("meter_category")?,
            meter_name: r.opt_text("meter_name")?,
            region: r.opt_text("region")?,
            resource_id: r.opt_text("resource_id")?,
            quantity: r.opt_text("quantity")?,
            unit: r.opt_text("unit")?,
            cost_units: r.opt_i64("cost_units")?,
            cost_rem: r.opt_i64("cost_rem")?,
            currency: r.opt_text("currency")?,
            operation: r.opt_text("operation")?,
            actor: r.opt_text("actor")?,
            status: r.opt_text("status")?,
            properties_json: r.opt_text("properties_json")?,
        })
    }
}

const STORED: &str = "SELECT event_id, kind, customer_id, time, meter_category, meter_name, region, resource_id, quantity, unit, \
    cost_units, cost_rem, currency, operation, actor, status, properties_json FROM events";

/// The events of some customers from `since` on, oldest first (the rules' histories), in one
/// range scan of the tenant's recent events.
pub async fn recent_for_customers(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[Uuid],
    since: i64,
) -> Result<Vec<StoredEvent>> {
    let mut out = Vec::new();
    for chunk in customers.chunks(500) {
        let list = crate::query::placeholders(3, chunk.len());
        let mut q = Q::new(format!(
            "{STORED} WHERE tenant_id = $1 AND time >= $2 AND customer_id IN ({}) ORDER BY time",
            list
        ))
        .bind(tenant.0)
        .bind(since);
        for c in chunk {
            q = q.bind(*c);
        }
        out.extend(tx.fetch_all::<StoredEvent>(q).await?);
    }
    Ok(out)
}

/// Events of known customers with time in [from, to), in time order, a page at a time: pass
/// the last (time, event_id) seen to continue.
pub async fn page_by_time(
    db: &Db,
    tenant: TenantId,
    from: i64,
    to: i64,
    after: Option<(i64, String)>,
    limit: u32,
) -> Result<Vec<StoredEvent>> {
    let (t, e) = match after {
        Some((t, e)) => (Some(t), Some(e)),
        None => (None, None),
    };
    db.fetch_all(
        Q::new(format!(
            "{STORED} WHERE tenant_id = $1 AND time >= $2 AND time < $3 AND customer_id IS NOT NULL \
             AND ($4 IS NULL OR time > $4 OR (time = $4 AND event_id > $5)) ORDER BY time, event_id LIMIT $6"
        ))
        .bind(tenant.0)
        .bind(from)
        .bind(to)
        .bind(t)
        .bind(e)
        .bind(i64::from(limit)),
    )
    .await
}

/// A stored event as a backtest replays it: its customer, the record rule windows read (strings
/// shared across events) and, when asked for, the whole stored event.
pub struct Replayed {
    pub customer_id: Uuid,
    pub rec: Rec,
    pub stored: Option<StoredEvent>,
}

impl StoredEvent {
    /// What makes this event's [`Rec`].
    pub fn fields(&self) -> StoredFields<'_> {
        StoredFields {
            at: self.time,
            kind: &self.kind,
            cost_picos: match (self.cost_units, self.cost_rem) {
                (Some(u), Some(r)) => Some(join(u, r)),
                _ => None,
            },
            category: self.meter_category.as_deref(),
            region: self.region.as_deref(),
            sku: self.meter_name.as_deref(),
            operation: self.operation.as_deref(),
            status: self.status.as_deref(),
            actor: self.actor.as_deref(),
        }
    }
}

/// Events per batch a replay sends.
const REPLAY_BATCH: usize = 4096;

/// Streams a tenant's events that have a customer, with `from <= time < to`, oldest first (then
/// by event id), in batches read on another thread while the caller evaluates the previous ones:
/// on SQLite one statement on a read-only connection of its own, on PostgreSQL pages of
/// `page_by_time`. `whole` also decodes the whole stored event (a rule that reads `event`). The
/// stream ends after the last batch or after an error; dropping the receiver stops the reading.
pub fn replay(
    db: &Db,
    tenant: TenantId,
    from: i64,
    to: i64,
    whole: bool,
) -> tokio::sync::mpsc::Receiver<Result<Vec<Replayed>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    match db {
        Db::Sqlite(store) => {
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = replay_sqlite(&store, tenant, from, to, whole, &tx) {
                    let _ = tx.blocking_send(Err(e));
                }
            });
        }
        Db::Postgres(_) => {
            let db = db.clone();
            tokio::spawn(async move {
                let mut strings = Interner::default();
                let mut after = None;
                loop {
                    let page = match page_by_time(&db, tenant, from, to, after.take(), 20_000).await
                    {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    let full = page.len() == 20_000;
                    after = page.last().map(|e| (e.time, e.event_id.clone()));
                    let batch = page
                        .into_iter()
                        .map(|e| Replayed {
                            customer_id: e.customer_id,
                            rec: Rec::of_stored(&e.fields(), |s| strings.share(s)),
                            stored: whole.then_some(e),
                        })
                        .collect();
                    if tx.send(Ok(batch)).await.is_err() || !full {
                        return;
                    }
                }
            });
        }
    }
    rx
}

fn replay_sqlite(
    store: &crate::db::SqliteStore,
    tenant: TenantId,
    from: i64,
    to: i64,
    whole: bool,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<Replayed>>>,
) -> Result<()> {
    use rusqlite::types::ValueRef;
    let conn = store.open_reader()?;
    let mut stmt = conn.prepare(&format!(
        "{STORED} WHERE tenant_id = ?1 AND time >= ?2 AND time < ?3 AND customer_id IS NOT NULL \
         ORDER BY time, event_id"
    ))?;
    let mut rows = stmt.query(rusqlite::params![
        crate::query::Val::from(tenant.0),
        from,
        to
    ])?;
    // Columns by position, in `STORED`'s order.
    fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<&'r str>> {
        match row.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(b) => std::str::from_utf8(b)
                .map(Some)
                .map_err(|e| StorageError::Corrupt(format!("events column {i}: {e}"))),
            _ => Err(StorageError::Corrupt(format!(
                "events column {i}: not text"
            ))),
        }
    }
    let mut strings = Interner::default();
    let mut batch = Vec::with_capacity(REPLAY_BATCH);
    while let Some(row) = rows.next()? {
        let customer_id = match row.get_ref(2)? {
            ValueRef::Blob(b) => Uuid::from_slice(b)
                .map_err(|e| StorageError::Corrupt(format!("events customer_id: {e}")))?,
            _ => {
                return Err(StorageError::Corrupt(
                    "events customer_id: not a uuid".into(),
                ));
            }
        };
        let (units, rem): (Option<i64>, Option<i64>) = (row.get(10)?, row.get(11)?);
        let fields = StoredFields {
            at: row.get(3)?,
            kind: text(row, 1)?.unwrap_or(""),
            cost_picos: units.zip(rem).map(|(u, r)| join(u, r)),
            category: text(row, 4)?,
            sku: text(row, 5)?,
            region: text(row, 6)?,
            operation: text(row, 13)?,
            actor: text(row, 14)?,
            status: text(row, 15)?,
        };
        let rec = Rec::of_stored(&fields, |s| strings.share(s));
        let stored = if whole {
            let owned = |i| -> Result<Option<String>> { Ok(text(row, i)?.map(str::to_owned)) };
            Some(StoredEvent {
                event_id: owned(0)?.unwrap_or_default(),
                kind: fields.kind.to_owned(),
                customer_id,
                time: fields.at,
                meter_category: owned(4)?,
                meter_name: owned(5)?,
                region: owned(6)?,
                resource_id: owned(7)?,
                quantity: owned(8)?,
                unit: owned(9)?,
                cost_units: units,
                cost_rem: rem,
                currency: owned(12)?,
                operation: owned(13)?,
                actor: owned(14)?,
                status: owned(15)?,
                properties_json: owned(16)?,
            })
        } else {
            None
        };
        batch.push(Replayed {
            customer_id,
            rec,
            stored,
        });
        if batch.len() == REPLAY_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(REPLAY_BATCH));
            if tx.blocking_send(Ok(full)).is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
    Ok(())
}

/// The next hour a spend series will score (None: never scored).
pub async fn anomaly_next_hour_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    category: &str,
) -> Result<Option<i64>> {
    struct H(i64);
    impl FromRow for H {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(H(r.i64("next_hour")?))
        }
    }
    Ok(tx
        .fetch_optional::<H>(
            Q::new(
                "SELECT next_hour FROM anomaly_series WHERE tenant_id = $1 AND customer_id = $2 AND meter_category = $3",
            )
            .bind(tenant.0)
            .bind(customer)
            .bind(category),
        )
        .await?
        .map(|h| h.0))
}

pub async fn set_anomaly_next_hour(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    category: &str,
    expected: Option<i64>,
    next_hour: i64,
) -> Result<bool> {
    // A compare-and-set: false when another process moved the series on since `expected` was
    // read (its scoring wins; this one's is rolled back and redone from storage).
    let q = match expected {
        None => Q::new(
            "INSERT INTO anomaly_series (tenant_id, customer_id, meter_category, next_hour) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, customer_id, meter_category) DO NOTHING",
        )
        .bind(tenant.0)
        .bind(customer)
        .bind(category)
        .bind(next_hour),
        Some(was) => Q::new(
            "UPDATE anomaly_series SET next_hour = $4 WHERE tenant_id = $1 AND customer_id = $2 \
             AND meter_category = $3 AND next_hour = $5",
        )
        .bind(tenant.0)
        .bind(customer)
        .bind(category)
        .bind(next_hour)
        .bind(was),
    };
    Ok(tx.execute(q).await? == 1)
}

/// One hour of a spend series: (hour µs, total cost in pico-units over every currency).
#[derive(Clone, Debug)]
pub struct HourSpend {
    pub hour: i64,
    pub units: i64,
    pub rem: i64,
}

impl FromRow for HourSpend {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(HourSpend {
            hour: r.i64("hour")?,
            units: r.i64("units")?,
            rem: r.i64("rem")?,
        })
    }
}

/// The hourly spend of one series in [from, to), hours without spend absent.
pub async fn series_hours_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    category: &str,
    from: i64,
    to: i64,
) -> Result<Vec<HourSpend>> {
    tx.fetch_all(
        Q::new(
            "SELECT hour, CAST(SUM(cost_units) AS BIGINT) AS units, CAST(SUM(cost_rem) AS BIGINT) AS rem FROM spend_hourly \
             WHERE tenant_id = $1 AND customer_id = $2 AND meter_category = $3 AND hour >= $4 AND hour < $5 GROUP BY hour ORDER BY hour",
        )
        .bind(tenant.0)
        .bind(customer)
        .bind(category)
        .bind(from)
        .bind(to),
    )
    .await
}

/// Serialises ingest per customer on PostgreSQL: a transaction-scoped advisory lock on each
/// key (a customer id, or an external id whose events wait for their customer), all taken in
/// one global order (the keys' byte order, on both sides), so two batches for overlapping
/// customers wait for each other instead of deadlocking on their rows, and their
/// read-then-write steps (budget marks, alert folding) see each other's commits. SQLite has a
/// single writer: nothing to do.
pub async fn lock_for_ingest(tx: &mut Tx, tenant: TenantId, keys: &[String]) -> Result<()> {
    if !matches!(tx, Tx::Postgres(..)) || keys.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = keys
        .iter()
        .map(|k| format!("ingest|{}|{k}", tenant.0))
        .collect();
    names.sort();
    names.dedup();
    for chunk in names.chunks(1000) {
        let values = (1..=chunk.len())
            .map(|i| format!("(${i})"))
            .collect::<Vec<_>>()
            .join(",");
        let mut q = Q::new(format!(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM \
             (SELECT k FROM (VALUES {values}) AS v(k) ORDER BY k COLLATE \"C\") AS s"
        ));
        for n in chunk {
            q = q.bind(n.clone());
        }
        tx.execute(q).await?;
    }
    Ok(())
}

/// Bumps the ingest counters of `customers` (see migration 0015), returning each one's new
/// value. Call it under the customers' ingest locks ([`lock_for_ingest`]); rows are written in
/// id order, so two units of work never wait on each other in a cycle.
pub async fn bump_ingest_heads(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, i64>> {
    let mut ids = customers.to_vec();
    ids.sort();
    ids.dedup();
    struct Head(Uuid, i64);
    impl FromRow for Head {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(Head(r.uuid("customer_id")?, r.i64("seq")?))
        }
    }
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let values = (0..chunk.len())
            .map(|i| format!("($1, ${}, 1)", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let mut q = Q::new(format!(
            "INSERT INTO customer_ingest_heads AS h (tenant_id, customer_id, seq) VALUES {values} \
             ON CONFLICT (tenant_id, customer_id) DO UPDATE SET seq = h.seq + 1 RETURNING customer_id, seq"
        ))
        .bind(tenant.0);
        for c in chunk {
            q = q.bind(*c);
        }
        for h in tx.fetch_all::<Head>(q).await? {
            out.insert(h.0, h.1);
        }
    }
    Ok(out)
}

/// One hour of one meter category's spend in one currency.
#[derive(Clone, Debug)]
pub struct CategoryHour {
    pub meter_category: String,
    pub currency: String,
    pub hour: i64,
    pub units: i64,
    pub rem: i64,
}

impl FromRow for CategoryHour {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(CategoryHour {
            meter_category: r.text("meter_category")?,
            currency: r.text("currency")?,
            hour: r.i64("hour")?,
            units: r.i64("cost_units")?,
            rem: r.i64("cost_rem")?,
        })
    }
}

/// A customer's hourly spend in [from, to) per meter category and currency, hours without
/// spend absent, in (category, currency, hour) order.
pub async fn customer_spend_hours(
    db: &Db,
    tenant: TenantId,
    customer: Uuid,
    from: i64,
    to: i64,
) -> Result<Vec<CategoryHour>> {
    db.fetch_all(
        Q::new(
            "SELECT meter_category, currency, hour, cost_units, cost_rem FROM spend_hourly \
             WHERE tenant_id = $1 AND customer_id = $2 AND hour >= $3 AND hour < $4 \
             ORDER BY meter_category, currency, hour",
        )
        .bind(tenant.0)
        .bind(customer)
        .bind(from)
        .bind(to),
    )
    .await
}
