//! Receivables: invoices and their ledger of entries, payments, the prepaid wallet and payment
//! instruments. Every change to an invoice's open amount is an entry; `invoices.open_minor`
//! is kept in step with them in the same unit of work.

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::{Db, Result, StorageError, Tx, conflict_on_unique};

/// A stored invoice. Serialises as its audit snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InvoiceRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub number: String,
    pub issue_day: i32,
    pub due_day: i32,
    pub currency: String,
    pub total_minor: i64,
    /// JSON array of {description, amount_minor}.
    pub lines_json: String,
    /// JSON array of subscription ids.
    pub subscription_ids_json: String,
    pub open_minor: i64,
    pub settled_at: Option<i64>,
    pub disputed: bool,
    pub dispute_reason: Option<String>,
    pub next_check_day: Option<i32>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl FromRow for InvoiceRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(InvoiceRow {
            id: r.uuid("id")?,
            customer_id: r.uuid("customer_id")?,
            number: r.text("number")?,
            issue_day: r.i64("issue_day")? as i32,
            due_day: r.i64("due_day")? as i32,
            currency: r.text("currency")?,
            total_minor: r.i64("total_minor")?,
            lines_json: r.text("lines_json")?,
            subscription_ids_json: r.text("subscription_ids_json")?,
            open_minor: r.i64("open_minor")?,
            settled_at: r.opt_i64("settled_at")?,
            disputed: r.i64("disputed")? != 0,
            dispute_reason: r.opt_text("dispute_reason")?,
            next_check_day: r.opt_i64("next_check_day")?.map(|d| d as i32),
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
        })
    }
}

const INVOICE_COLS: &str = "id, customer_id, number, issue_day, due_day, currency, total_minor, lines_json, subscription_ids_json, \
     open_minor, settled_at, disputed, dispute_reason, next_check_day, created_at, updated_at";

fn select_invoices() -> String {
    format!("SELECT {INVOICE_COLS} FROM invoices")
}

/// The insert of invoice `i`; `if_customer`: only if the tenant has its customer.
fn insert_invoice_q(tenant: TenantId, i: &InvoiceRow, if_customer: bool) -> Q {
    let values = "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17";
    Q::new(if if_customer {
        format!(
            "INSERT INTO invoices (tenant_id, {INVOICE_COLS}) SELECT {values} \
             WHERE EXISTS (SELECT 1 FROM customers WHERE tenant_id = $1 AND id = $3)"
        )
    } else {
        format!("INSERT INTO invoices (tenant_id, {INVOICE_COLS}) VALUES ({values})")
    })
    .bind(tenant.0)
    .bind(i.id)
    .bind(i.customer_id)
    .bind(&i.number)
    .bind(i64::from(i.issue_day))
    .bind(i64::from(i.due_day))
    .bind(&i.currency)
    .bind(i.total_minor)
    .bind(&i.lines_json)
    .bind(&i.subscription_ids_json)
    .bind(i.open_minor)
    .bind(i.settled_at)
    .bind(i64::from(i.disputed))
    .bind(&i.dispute_reason)
    .bind(i.next_check_day.map(i64::from))
    .bind(i.created_at)
    .bind(i.updated_at)
}

fn number_taken(i: &InvoiceRow) -> impl FnOnce() -> String + '_ {
    move || {
        format!(
            "invoice number '{}' is already used in this tenant",
            i.number
        )
    }
}

pub async fn insert_invoice(tx: &mut Tx, tenant: TenantId, i: &InvoiceRow) -> Result<()> {
    tx.execute(insert_invoice_q(tenant, i, false))
        .await
        .map_err(|e| conflict_on_unique(e, number_taken(i)))?;
    Ok(())
}

/// Records invoice `i` with its audit entry `d` if the tenant has its customer, and returns
/// the customer and its prepaid balances (read before the insert). On PostgreSQL, with the
/// audit lane's head known, that is one statement (see
/// [`audit::append_after_reading`](crate::audit::append_after_reading)); no such customer is
/// `NotFound("customer")` and the unit of work can only roll back.
pub async fn insert_invoice_for_customer(
    tx: &mut Tx,
    tenant: TenantId,
    i: &InvoiceRow,
    at: Timestamp,
    d: crate::audit::AuditDraft<'_>,
) -> Result<(crate::customers::CustomerRow, Vec<(String, i64)>)> {
    let conditional = insert_invoice_q(tenant, i, true);
    let rows = crate::audit::append_after_reading(
        tx,
        tenant,
        at,
        conditional,
        crate::customers::with_wallet_q(tenant, riskdesk_domain::CustomerId(i.customer_id)),
        d,
        "customer",
    )
    .await
    .map_err(|e| conflict_on_unique(e, number_taken(i)))?;
    crate::customers::fold_wallet(rows)
}

/// Writes an invoice's mutable columns (open amount, settlement, dispute, ladder check).
pub async fn update_invoice(tx: &mut Tx, tenant: TenantId, i: &InvoiceRow) -> Result<()> {
    tx.execute(
        Q::new(
            "UPDATE invoices SET open_minor = $3, settled_at = $4, disputed = $5, dispute_reason = $6, next_check_day = $7, \
             updated_at = $8 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(i.id)
        .bind(i.open_minor)
        .bind(i.settled_at)
        .bind(i64::from(i.disputed))
        .bind(&i.dispute_reason)
        .bind(i.next_check_day.map(i64::from))
        .bind(i.updated_at),
    )
    .await?;
    Ok(())
}

pub async fn get_invoice(db: &Db, tenant: TenantId, id: Uuid) -> Result<InvoiceRow> {
    db.fetch_optional(
        Q::new(format!(
            "{} WHERE tenant_id = $1 AND id = $2",
            select_invoices()
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("invoice"))
}

pub async fn get_invoice_tx(tx: &mut Tx, tenant: TenantId, id: Uuid) -> Result<InvoiceRow> {
    tx.fetch_optional(
        Q::new(format!(
            "{} WHERE tenant_id = $1 AND id = $2",
            select_invoices()
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("invoice"))
}

/// A customer's invoices still open, oldest due first (the allocation order).
pub async fn open_invoices_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
) -> Result<Vec<InvoiceRow>> {
    tx.fetch_all(
        Q::new(format!(
            "{} WHERE tenant_id = $1 AND customer_id = $2 AND open_minor > 0 ORDER BY due_day, issue_day, number",
            select_invoices()
        ))
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

/// The invoices of several customers still open (one query for a dunning batch).
pub async fn open_invoices_of_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customers: &[Uuid],
) -> Result<Vec<InvoiceRow>> {
    if customers.is_empty() {
        return Ok(vec![]);
    }
    let (cond, args) = crate::query::any_uuid(tx.backend(), "customer_id", 2, customers);
    let mut q = Q::new(format!(
        "{} WHERE tenant_id = $1 AND open_minor > 0 AND {cond} ORDER BY customer_id, due_day, issue_day, number",
        select_invoices(),
    ))
    .bind(tenant.0);
    q.args.extend(args);
    tx.fetch_all(q).await
}

pub struct InvoiceFilter {
    pub customer: Option<Uuid>,
    /// Only invoices with an open amount (true) or only settled ones (false).
    pub open: Option<bool>,
    pub after: Option<Uuid>,
    pub limit: u32,
}

pub async fn list_invoices(
    db: &Db,
    tenant: TenantId,
    f: &InvoiceFilter,
) -> Result<Vec<InvoiceRow>> {
    let open = match f.open {
        None => "",
        Some(true) => " AND open_minor > 0",
        Some(false) => " AND open_minor <= 0",
    };
    db.fetch_all(
        Q::new(format!(
            "{} WHERE tenant_id = $1 AND ($2 IS NULL OR customer_id = $2) AND ($3 IS NULL OR id > $3){open} ORDER BY id LIMIT $4",
            select_invoices()
        ))
        .bind(tenant.0)
        .bind(f.customer)
        .bind(f.after)
        .bind(i64::from(f.limit)),
    )
    .await
}

/// One change to an invoice's open amount.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EntryRow {
    pub id: Uuid,
    pub invoice_id: Uuid,
    pub customer_id: Uuid,
    /// payment, wallet, credit_note, write_off, chargeback
    pub kind: String,
    pub source_id: Option<Uuid>,
    /// Negative lowers the open amount, positive reopens it.
    pub amount_minor: i64,
    pub at: i64,
    pub reason: Option<String>,
}

impl FromRow for EntryRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(EntryRow {
            id: r.uuid("id")?,
            invoice_id: r.uuid("invoice_id")?,
            customer_id: r.uuid("customer_id")?,
            kind: r.text("kind")?,
            source_id: r.opt_uuid("source_id")?,
            amount_minor: r.i64("amount_minor")?,
            at: r.i64("at")?,
            reason: r.opt_text("reason")?,
        })
    }
}

const ENTRY_COLS: &str = "id, invoice_id, customer_id, kind, source_id, amount_minor, at, reason";

pub async fn insert_entry(tx: &mut Tx, tenant: TenantId, e: &EntryRow) -> Result<()> {
    tx.execute(
        Q::new(format!(
            "INSERT INTO invoice_entries (tenant_id, {ENTRY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(tenant.0)
        .bind(e.id)
        .bind(e.invoice_id)
        .bind(e.customer_id)
        .bind(&e.kind)
        .bind(e.source_id)
        .bind(e.amount_minor)
        .bind(e.at)
        .bind(&e.reason),
    )
    .await?;
    Ok(())
}

pub async fn entries_of_invoice(db: &Db, tenant: TenantId, invoice: Uuid) -> Result<Vec<EntryRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {ENTRY_COLS} FROM invoice_entries WHERE tenant_id = $1 AND invoice_id = $2 ORDER BY at, id"
        ))
        .bind(tenant.0)
        .bind(invoice),
    )
    .await
}

/// The entries a payment (or credit note) made, newest first.
pub async fn entries_from_source_tx(
    tx: &mut Tx,
    tenant: TenantId,
    source: Uuid,
) -> Result<Vec<EntryRow>> {
    tx.fetch_all(
        Q::new(format!(
            "SELECT {ENTRY_COLS} FROM invoice_entries WHERE tenant_id = $1 AND source_id = $2 ORDER BY at DESC, id DESC"
        ))
        .bind(tenant.0)
        .bind(source),
    )
    .await
}

/// A received payment. Serialises as its audit snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PaymentRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub received_at: i64,
    pub reference: Option<String>,
    pub invoice_id: Option<Uuid>,
    /// received, charged_back
    pub status: String,
    pub created_at: i64,
}

impl FromRow for PaymentRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(PaymentRow {
            id: r.uuid("id")?,
            customer_id: r.uuid("customer_id")?,
            amount_minor: r.i64("amount_minor")?,
            currency: r.text("currency")?,
            received_at: r.i64("received_at")?,
            reference: r.opt_text("reference")?,
            invoice_id: r.opt_uuid("invoice_id")?,
            status: r.text("status")?,
            created_at: r.i64("created_at")?,
        })
    }
}

const PAYMENT_COLS: &str = "id, customer_id, amount_minor, currency, received_at, reference, invoice_id, status, created_at";

pub async fn insert_payment(tx: &mut Tx, tenant: TenantId, p: &PaymentRow) -> Result<()> {
    tx.execute(
        Q::new(format!(
            "INSERT INTO payments (tenant_id, {PAYMENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(tenant.0)
        .bind(p.id)
        .bind(p.customer_id)
        .bind(p.amount_minor)
        .bind(&p.currency)
        .bind(p.received_at)
        .bind(&p.reference)
        .bind(p.invoice_id)
        .bind(&p.status)
        .bind(p.created_at),
    )
    .await?;
    Ok(())
}

pub async fn get_payment_tx(tx: &mut Tx, tenant: TenantId, id: Uuid) -> Result<PaymentRow> {
    tx.fetch_optional(
        Q::new(format!(
            "SELECT {PAYMENT_COLS} FROM payments WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("payment"))
}

pub async fn set_payment_status(
    tx: &mut Tx,
    tenant: TenantId,
    id: Uuid,
    status: &str,
) -> Result<()> {
    tx.execute(
        Q::new("UPDATE payments SET status = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(id)
            .bind(status),
    )
    .await?;
    Ok(())
}

pub async fn payments_of_customer(
    db: &Db,
    tenant: TenantId,
    customer: Uuid,
) -> Result<Vec<PaymentRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {PAYMENT_COLS} FROM payments WHERE tenant_id = $1 AND customer_id = $2 ORDER BY received_at, id"
        ))
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

/// One movement of a customer's prepaid balance.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WalletEntryRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub currency: String,
    /// top_up, overpayment, credit_note, invoice_draw, refund, chargeback
    pub kind: String,
    pub source_id: Option<Uuid>,
    pub amount_minor: i64,
    pub at: i64,
    pub note: Option<String>,
}

impl FromRow for WalletEntryRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(WalletEntryRow {
            id: r.uuid("id")?,
            customer_id: r.uuid("customer_id")?,
            currency: r.text("currency")?,
            kind: r.text("kind")?,
            source_id: r.opt_uuid("source_id")?,
            amount_minor: r.i64("amount_minor")?,
            at: r.i64("at")?,
            note: r.opt_text("note")?,
        })
    }
}

const WALLET_COLS: &str = "id, customer_id, currency, kind, source_id, amount_minor, at, note";

pub async fn insert_wallet_entry(tx: &mut Tx, tenant: TenantId, w: &WalletEntryRow) -> Result<()> {
    tx.execute(
        Q::new(format!(
            "INSERT INTO wallet_entries (tenant_id, {WALLET_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(tenant.0)
        .bind(w.id)
        .bind(w.customer_id)
        .bind(&w.currency)
        .bind(&w.kind)
        .bind(w.source_id)
        .bind(w.amount_minor)
        .bind(w.at)
        .bind(&w.note),
    )
    .await?;
    Ok(())
}

/// (currency, balance in minor units) per currency, entries before `before` (µs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrencyAmount {
    pub currency: String,
    pub minor: i64,
}

impl FromRow for CurrencyAmount {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(CurrencyAmount {
            currency: r.text("currency")?,
            minor: r.i64("minor")?,
        })
    }
}

fn balance_query(tenant: TenantId, customer: Uuid, before: i64) -> Q {
    Q::new(
        "SELECT currency, CAST(SUM(amount_minor) AS BIGINT) AS minor FROM wallet_entries \
         WHERE tenant_id = $1 AND customer_id = $2 AND at < $3 GROUP BY currency ORDER BY currency",
    )
    .bind(tenant.0)
    .bind(customer)
    .bind(before)
}

pub async fn wallet_balance(
    db: &Db,
    tenant: TenantId,
    customer: Uuid,
    before: i64,
) -> Result<Vec<CurrencyAmount>> {
    db.fetch_all(balance_query(tenant, customer, before)).await
}

pub async fn wallet_balance_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    before: i64,
) -> Result<Vec<CurrencyAmount>> {
    tx.fetch_all(balance_query(tenant, customer, before)).await
}

pub async fn wallet_entries(
    db: &Db,
    tenant: TenantId,
    customer: Uuid,
) -> Result<Vec<WalletEntryRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {WALLET_COLS} FROM wallet_entries WHERE tenant_id = $1 AND customer_id = $2 ORDER BY at, id"
        ))
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

/// Open invoice amounts per currency as of an instant: the invoice total plus every entry
/// before it. Invoices untouched since then use their stored open amount (same value, no
/// ledger read), so today's figures cost one indexed read per customer.
fn unpaid_query(tenant: TenantId, customer: Uuid, as_of_day: i32, before: i64) -> Q {
    Q::new(
        "SELECT currency, CAST(SUM(open_at) AS BIGINT) AS minor FROM (\
           SELECT i.currency, CAST(CASE WHEN i.updated_at < $4 THEN i.open_minor ELSE i.total_minor + COALESCE(\
             (SELECT SUM(e.amount_minor) FROM invoice_entries e WHERE e.invoice_id = i.id AND e.at < $4), 0) END AS BIGINT) AS open_at \
           FROM invoices i WHERE i.tenant_id = $1 AND i.customer_id = $2 AND i.issue_day <= $3 AND (i.settled_at IS NULL OR i.settled_at >= $4)\
         ) x GROUP BY currency ORDER BY currency",
    )
    .bind(tenant.0)
    .bind(customer)
    .bind(i64::from(as_of_day))
    .bind(before)
}

pub async fn unpaid_by_currency(
    db: &Db,
    tenant: TenantId,
    customer: Uuid,
    as_of_day: i32,
    before: i64,
) -> Result<Vec<CurrencyAmount>> {
    db.fetch_all(unpaid_query(tenant, customer, as_of_day, before))
        .await
}

pub async fn unpaid_by_currency_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    as_of_day: i32,
    before: i64,
) -> Result<Vec<CurrencyAmount>> {
    tx.fetch_all(unpaid_query(tenant, customer, as_of_day, before))
        .await
}

/// The issue day of the customer's latest invoice issued on or before a day.
pub async fn last_issue_day(
    db: &Db,
    tenant: TenantId,
    customer: Uuid,
    as_of_day: i32,
) -> Result<Option<i32>> {
    let v: Option<MaxDay> = db
        .fetch_optional(last_issue_query(tenant, customer, as_of_day))
        .await?;
    Ok(v.and_then(|d| d.0).map(|d| d as i32))
}

struct MaxDay(Option<i64>);
impl FromRow for MaxDay {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(MaxDay(r.opt_i64("d")?))
    }
}

fn last_issue_query(tenant: TenantId, customer: Uuid, as_of_day: i32) -> Q {
    Q::new("SELECT MAX(issue_day) AS d FROM invoices WHERE tenant_id = $1 AND customer_id = $2 AND issue_day <= $3")
        .bind(tenant.0)
        .bind(customer)
        .bind(i64::from(as_of_day))
}

/// An open invoice as aging sees it.
#[derive(Clone, Debug)]
pub struct AgingItem {
    pub customer_id: Uuid,
    pub currency: String,
    pub issue_day: i32,
    pub due_day: i32,
    pub open_minor: i64,
}

impl FromRow for AgingItem {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(AgingItem {
            customer_id: r.uuid("customer_id")?,
            currency: r.text("currency")?,
            issue_day: r.i64("issue_day")? as i32,
            due_day: r.i64("due_day")? as i32,
            open_minor: r.i64("open_at")?,
        })
    }
}

/// Every invoice open at the end of `as_of_day` (`before` = that instant, µs), with its open
/// amount then.
pub async fn open_items_as_of(
    db: &Db,
    tenant: TenantId,
    as_of_day: i32,
    before: i64,
) -> Result<Vec<AgingItem>> {
    let rows: Vec<AgingItem> = db
        .fetch_all(
            Q::new(
                "SELECT i.customer_id, i.currency, i.issue_day, i.due_day, \
                   CAST(CASE WHEN i.updated_at < $3 THEN i.open_minor ELSE i.total_minor + COALESCE(\
                     (SELECT SUM(e.amount_minor) FROM invoice_entries e WHERE e.invoice_id = i.id AND e.at < $3), 0) END AS BIGINT) AS open_at \
                 FROM invoices i WHERE i.tenant_id = $1 AND i.issue_day <= $2 AND (i.settled_at IS NULL OR i.settled_at >= $3)",
            )
            .bind(tenant.0)
            .bind(i64::from(as_of_day))
            .bind(before),
        )
        .await?;
    Ok(rows.into_iter().filter(|r| r.open_minor > 0).collect())
}

/// A registered payment instrument (never a full card number: BIN and last four only).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InstrumentRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub kind: String,
    pub bin: Option<String>,
    pub last4: Option<String>,
    pub country: Option<String>,
    pub funding: Option<String>,
    pub created_at: i64,
}

impl FromRow for InstrumentRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(InstrumentRow {
            id: r.uuid("id")?,
            customer_id: r.uuid("customer_id")?,
            kind: r.text("kind")?,
            bin: r.opt_text("bin")?,
            last4: r.opt_text("last4")?,
            country: r.opt_text("country")?,
            funding: r.opt_text("funding")?,
            created_at: r.i64("created_at")?,
        })
    }
}

const INSTRUMENT_COLS: &str = "id, customer_id, kind, bin, last4, country, funding, created_at";

pub async fn insert_instrument(tx: &mut Tx, tenant: TenantId, i: &InstrumentRow) -> Result<()> {
    tx.execute(
        Q::new(format!(
            "INSERT INTO payment_instruments (tenant_id, {INSTRUMENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(tenant.0)
        .bind(i.id)
        .bind(i.customer_id)
        .bind(&i.kind)
        .bind(&i.bin)
        .bind(&i.last4)
        .bind(&i.country)
        .bind(&i.funding)
        .bind(i.created_at),
    )
    .await?;
    Ok(())
}

pub async fn instruments(db: &Db, tenant: TenantId, customer: Uuid) -> Result<Vec<InstrumentRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {INSTRUMENT_COLS} FROM payment_instruments WHERE tenant_id = $1 AND customer_id = $2 ORDER BY created_at, id"
        ))
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

/// Serialises concurrent money movements of one customer (PostgreSQL advisory lock; SQLite's
/// single writer already serialises).
pub async fn lock_customer(tx: &mut Tx, tenant: TenantId, customer: Uuid) -> Result<()> {
    tx.advisory_xact_lock(customer_lock_key(tenant, customer))
        .await
}

/// The key of [`lock_customer`], for [`Db::begin_holding`](crate::Db::begin_holding): a unit
/// of work that begins holding it does not take it again.
pub fn customer_lock_key(tenant: TenantId, customer: Uuid) -> String {
    format!("billing|{}|{customer}", tenant.0)
}

/// Wallet entries a given source (payment, invoice) made.
pub async fn wallet_entries_from_source_tx(
    tx: &mut Tx,
    tenant: TenantId,
    source: Uuid,
) -> Result<Vec<WalletEntryRow>> {
    tx.fetch_all(
        Q::new(format!(
            "SELECT {WALLET_COLS} FROM wallet_entries WHERE tenant_id = $1 AND source_id = $2 ORDER BY at, id"
        ))
        .bind(tenant.0)
        .bind(source),
    )
    .await
}

/// `last_issue_day` inside a unit of work.
pub async fn last_issue_day_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    as_of_day: i32,
) -> Result<Option<i32>> {
    let v: Option<MaxDay> = tx
        .fetch_optional(last_issue_query(tenant, customer, as_of_day))
        .await?;
    Ok(v.and_then(|d| d.0).map(|d| d as i32))
}

/// What happens when a customer's exposure goes over its credit limit.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CreditEnforcementRow {
    /// `require_prepayment` or `suspend`
    pub action: String,
    /// `auto` or `require_approval`
    pub mode: String,
}

impl FromRow for CreditEnforcementRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(CreditEnforcementRow {
            action: r.text("action")?,
            mode: r.text("mode")?,
        })
    }
}

pub async fn credit_enforcement_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
) -> Result<Option<CreditEnforcementRow>> {
    tx.fetch_optional(
        Q::new(
            "SELECT action, mode FROM credit_enforcement WHERE tenant_id = $1 AND customer_id = $2",
        )
        .bind(tenant.0)
        .bind(customer),
    )
    .await
}

/// Sets (Some) or removes (None) a customer's credit-limit enforcement.
pub async fn put_credit_enforcement(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    e: Option<&CreditEnforcementRow>,
    now: i64,
) -> Result<()> {
    let q = match e {
        Some(e) => Q::new(
            "INSERT INTO credit_enforcement (tenant_id, customer_id, action, mode, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, customer_id) DO UPDATE SET action = excluded.action, mode = excluded.mode, updated_at = excluded.updated_at",
        )
        .bind(tenant.0)
        .bind(customer)
        .bind(&e.action)
        .bind(&e.mode)
        .bind(now),
        None => Q::new("DELETE FROM credit_enforcement WHERE tenant_id = $1 AND customer_id = $2")
            .bind(tenant.0)
            .bind(customer),
    };
    tx.execute(q).await?;
    Ok(())
}

/// How many of a customer's invoices are open past their due date on `day`.
pub async fn overdue_count_tx(
    tx: &mut Tx,
    tenant: TenantId,
    customer: Uuid,
    day: i32,
) -> Result<i64> {
    Ok(tx
        .fetch_optional::<i64>(
            Q::new(
                "SELECT COUNT(*) AS n FROM invoices WHERE tenant_id = $1 AND customer_id = $2 AND open_minor > 0 \
                 AND due_day < $3 AND disputed = 0",
            )
            .bind(tenant.0)
            .bind(customer)
            .bind(i64::from(day)),
        )
        .await?
        .unwrap_or(0))
}
