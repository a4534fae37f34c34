//! Invoices: the list with quick filters, and the invoice page with its per-invoice dunning
//! timeline (steps at their planned days, levers in force, pauses, payments as markers, the
//! next step and its date), recording a payment and toggling a dispute.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use riskdesk_app::billing::dunning::{InvoiceTimeline, invoice_timeline};
use riskdesk_app::billing::{self as ops, NewPayment};
use riskdesk_domain::billing::Day;
use riskdesk_domain::money::{Currency, Money};
use riskdesk_domain::{CustomerId, Permission};
use riskdesk_storage::billing::{self, InvoiceFilter, InvoiceRow};
use riskdesk_storage::customers;
use serde::Deserialize;
use uuid::Uuid;

use super::{UiForm, as_of, claim, done, opt, parse_id, render};
use crate::UiState;
use crate::error::UiError;
use crate::session::Staff;
use crate::svg;
use crate::view::Layout;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// open, overdue, disputed, settled (default: open).
    filter: Option<String>,
    currency: Option<String>,
    as_of: Option<String>,
}

pub struct Line {
    pub row: InvoiceRow,
    pub customer: String,
    pub overdue_days: i32,
}

#[derive(Template)]
#[template(path = "invoices.html")]
struct ListPage {
    l: Layout,
    filter: String,
    currency: String,
    rows: Vec<Line>,
    filters: [&'static str; 4],
}

pub async fn list(
    State(s): State<UiState>,
    staff: Staff,
    Query(q): Query<ListQuery>,
) -> Result<Response, UiError> {
    staff.require(Permission::ReadCustomers)?;
    let (at, as_of_text) = as_of(&q.as_of, s.app.clock.now())?;
    let today = Day::of(at);
    let filter = opt(&q.filter).unwrap_or("open").to_owned();
    if !["open", "overdue", "disputed", "settled"].contains(&filter.as_str()) {
        return Err(UiError::Invalid(format!(
            "filter: '{filter}' is not open, overdue, disputed or settled"
        )));
    }
    let currency = opt(&q.currency).map(str::to_uppercase).unwrap_or_default();
    let db = s.app.db();
    let rows = billing::list_invoices(
        db,
        staff.tenant(),
        &InvoiceFilter {
            customer: None,
            open: Some(filter != "settled"),
            after: None,
            limit: 500,
        },
    )
    .await?;
    let rows: Vec<InvoiceRow> = rows
        .into_iter()
        .filter(|i| match filter.as_str() {
            "overdue" => i.due_day < today.0 && !i.disputed,
            "disputed" => i.disputed,
            _ => true,
        })
        .filter(|i| currency.is_empty() || i.currency == currency)
        .collect();
    let mut ids: Vec<Uuid> = rows.iter().map(|r| r.customer_id).collect();
    ids.sort();
    ids.dedup();
    let names: std::collections::HashMap<Uuid, String> =
        customers::get_many(db, staff.tenant(), &ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
    let lines = rows
        .into_iter()
        .map(|row| Line {
            customer: names.get(&row.customer_id).cloned().unwrap_or_default(),
            overdue_days: (today.0 - row.due_day).max(0),
            row,
        })
        .collect();
    render(&ListPage {
        l: Layout::new(&s, &staff, "invoices")
            .with_as_of(as_of_text, riskdesk_storage::time::to_micros(at)),
        filter,
        currency,
        rows: lines,
        filters: ["open", "overdue", "disputed", "settled"],
    })
}

#[derive(Template)]
#[template(path = "invoice.html")]
struct InvoicePage {
    l: Layout,
    tl: InvoiceTimeline,
    customer: String,
    chart: String,
    next_date: Option<String>,
}

#[derive(Deserialize)]
pub struct AsOf {
    as_of: Option<String>,
}

pub async fn page(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<AsOf>,
) -> Result<Response, UiError> {
    staff.require(Permission::ReadCustomers)?;
    let id = parse_id(&id)?;
    let (at, as_of_text) = as_of(&q.as_of, s.app.clock.now())?;
    let tl = invoice_timeline(
        s.app.db(),
        staff.tenant(),
        id,
        Day::of(at),
        &s.app.dunning_policy,
    )
    .await?;
    let c = customers::get(s.app.db(), staff.tenant(), CustomerId(tl.customer_id)).await?;
    let t = staff.t();
    let next_date = tl
        .next_day
        .as_deref()
        .and_then(|d| Day::parse(d).ok())
        .map(|d| t.day(d));
    render(&InvoicePage {
        l: Layout::new(&s, &staff, "invoices")
            .with_as_of(as_of_text, riskdesk_storage::time::to_micros(at)),
        chart: svg::dunning_timeline(&t, &tl),
        customer: c.name,
        next_date,
        tl,
    })
}

#[derive(Deserialize)]
pub struct PaymentForm {
    key: String,
    amount: String,
    reference: Option<String>,
}

/// Records a payment against this invoice (the rest, if any, goes to the customer's other open
/// invoices, then to its prepaid balance — as `POST /v1/payments`).
pub async fn payment(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    UiForm(f): UiForm<PaymentForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::WriteBilling)?;
    let id = parse_id(&id)?;
    let inv = billing::get_invoice(s.app.db(), staff.tenant(), id).await?;
    let currency = Currency::parse(&inv.currency).map_err(|e| UiError::Internal(e.0))?;
    let amount = Money::parse(&f.amount, currency)
        .map_err(|e| UiError::Invalid(format!("amount: {}", e.0)))?;
    if amount.minor <= 0 {
        return Err(UiError::Invalid("amount: must be more than zero".into()));
    }
    let reference = opt(&f.reference).map(str::to_owned);
    if reference.as_ref().is_some_and(|r| r.chars().count() > 200) {
        return Err(UiError::Invalid("reference: at most 200 characters".into()));
    }
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(r) = claim(
        &mut tx,
        &staff,
        &f.key,
        &format!("payment {id} {}", f.amount),
        now,
    )
    .await?
    {
        return Ok(r);
    }
    ops::record_payment(
        &mut tx,
        staff.tenant(),
        &staff.actor(),
        &s.app.dunning_policy,
        NewPayment {
            customer: CustomerId(inv.customer_id),
            amount,
            received_at: now,
            reference,
            invoice: Some(id),
            top_up: false,
        },
        now,
    )
    .await?;
    done(tx, &staff, &f.key, &format!("/ui/invoices/{id}")).await
}

#[derive(Deserialize)]
pub struct DisputeForm {
    key: String,
    /// "open" or "close".
    state: String,
    reason: Option<String>,
}

pub async fn dispute(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    UiForm(f): UiForm<DisputeForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::WriteBilling)?;
    let id = parse_id(&id)?;
    let open = match f.state.as_str() {
        "open" => true,
        "close" => false,
        x => {
            return Err(UiError::Invalid(format!(
                "state: '{x}' is neither open nor close"
            )));
        }
    };
    let reason = riskdesk_domain::customer::parse_note(opt(&f.reason).unwrap_or(if open {
        "disputed"
    } else {
        "dispute closed"
    }))
    .map_err(|e| UiError::Invalid(format!("reason: {}", e.0)))?;
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(r) = claim(
        &mut tx,
        &staff,
        &f.key,
        &format!("dispute {id} {open}"),
        now,
    )
    .await?
    {
        return Ok(r);
    }
    ops::dispute(
        &mut tx,
        staff.tenant(),
        &staff.actor(),
        &s.app.dunning_policy,
        id,
        open,
        &reason,
        now,
    )
    .await?;
    done(tx, &staff, &f.key, &format!("/ui/invoices/{id}")).await
}
