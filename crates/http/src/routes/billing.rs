//! Receivables, the prepaid balance, exposure and aging over HTTP.

use crate::extract::Path;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use riskdesk_domain::billing::Day;
use riskdesk_domain::billing::aging::{Basis, Buckets};
use riskdesk_domain::money::{Currency, Money};
use riskdesk_domain::{CustomerId, Permission};
use riskdesk_storage::billing::{self, EntryRow, InvoiceFilter, InvoiceRow};
use riskdesk_storage::customers::{self};
use riskdesk_storage::time::to_micros;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::parse_id;
use crate::AppState;
use crate::dto::{Page, check_limit, decode_cursor, page, rfc3339};
use crate::error::{ApiError, Problem, Validator};
use crate::extract::{ApiJson, ApiQuery, Caller, IdempotencyKey};
use crate::idem::{self, Fingerprint};
use riskdesk_app::billing::{self as ops, Allocation, NewInvoice, NewPayment};

use riskdesk_app::billing::reports::{
    AgingReport, ExposureOut, aging_report, exposure_of, money_str,
};
use riskdesk_app::kernel::time::parse_as_of;

fn minor_of(amount: &str, currency: &str) -> i64 {
    Currency::parse(currency)
        .ok()
        .and_then(|c| Money::parse(amount, c).ok())
        .map_or(0, |m| m.minor)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineIn {
    pub description: String,
    /// Decimal string in the invoice's currency.
    pub amount: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceIn {
    pub customer_id: String,
    /// The partner's invoice number, unique in the tenant.
    pub number: String,
    /// `YYYY-MM-DD`
    pub issue_date: String,
    /// `YYYY-MM-DD`; the dunning ladder and aging count from it.
    pub due_date: String,
    pub currency: String,
    pub lines: Vec<LineIn>,
    /// Decimal string; must equal the sum of the lines.
    pub total: String,
    /// The subscriptions this invoice bills (for levers scoped to the invoice).
    pub subscription_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineOut {
    pub description: String,
    pub amount: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryOut {
    /// payment, wallet (paid from the prepaid balance), credit_note, write_off, chargeback
    pub kind: String,
    /// Signed decimal string: negative lowers what is open.
    pub amount: String,
    pub at: String,
    pub source_id: Option<Uuid>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceOut {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub number: String,
    pub issue_date: String,
    pub due_date: String,
    pub currency: String,
    pub total: String,
    pub open_amount: String,
    /// `open` (something left to pay) or `settled`.
    pub status: String,
    pub disputed: bool,
    pub dispute_reason: Option<String>,
    pub lines: Vec<LineOut>,
    pub subscription_ids: Vec<Uuid>,
    pub settled_at: Option<String>,
    pub created_at: String,
    /// Every change to the open amount (on `GET /v1/invoices/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<LedgerEntryOut>>,
}

impl InvoiceOut {
    pub fn from_row(r: InvoiceRow, entries: Option<Vec<EntryRow>>) -> Self {
        #[derive(Deserialize)]
        struct L {
            description: String,
            amount: String,
        }
        let lines: Vec<L> = serde_json::from_str(&r.lines_json).unwrap_or_default();
        InvoiceOut {
            id: r.id,
            customer_id: r.customer_id,
            issue_date: Day(r.issue_day).to_string(),
            due_date: Day(r.due_day).to_string(),
            total: money_str(r.total_minor, &r.currency),
            open_amount: money_str(r.open_minor.max(0), &r.currency),
            status: if r.open_minor > 0 { "open" } else { "settled" }.into(),
            disputed: r.disputed,
            dispute_reason: r.dispute_reason,
            lines: lines
                .into_iter()
                .map(|l| LineOut {
                    description: l.description,
                    amount: l.amount,
                })
                .collect(),
            subscription_ids: serde_json::from_str(&r.subscription_ids_json).unwrap_or_default(),
            settled_at: r.settled_at.map(rfc3339),
            created_at: rfc3339(r.created_at),
            entries: entries.map(|es| {
                es.into_iter()
                    .map(|e| LedgerEntryOut {
                        kind: e.kind,
                        amount: money_str(e.amount_minor, &r.currency),
                        at: rfc3339(e.at),
                        source_id: e.source_id,
                        reason: e.reason,
                    })
                    .collect()
            }),
            number: r.number,
            currency: r.currency,
        }
    }
}

fn validate_invoice(b: InvoiceIn) -> Result<NewInvoice, ApiError> {
    let mut v = Validator::default();
    let customer: Option<CustomerId> = v.check(
        "customer_id",
        b.customer_id
            .parse()
            .map_err(|_| format!("'{}' is not a customer id", b.customer_id)),
    );
    let number = b.number.trim().to_owned();
    if number.is_empty() || number.len() > 64 {
        v.fail("number", "give the invoice number (1–64 characters)");
    }
    let issue = v.check("issue_date", Day::parse(&b.issue_date).map_err(|e| e.0));
    let due = v.check("due_date", Day::parse(&b.due_date).map_err(|e| e.0));
    if let (Some(i), Some(d)) = (issue, due)
        && d < i
    {
        v.fail("due_date", "is before issue_date");
    }
    let currency = v.check("currency", Currency::parse(&b.currency).map_err(|e| e.0));
    let mut lines = Vec::new();
    let mut total = None;
    if b.lines.is_empty() || b.lines.len() > 1000 {
        v.fail("lines", "give between 1 and 1000 lines");
    }
    if let Some(c) = currency {
        for (i, l) in b.lines.iter().enumerate() {
            if l.description.trim().is_empty() || l.description.len() > 500 {
                v.fail(
                    &format!("lines[{i}].description"),
                    "give a description (1–500 characters)",
                );
            }
            if let Some(m) = v.check(
                &format!("lines[{i}].amount"),
                Money::parse(&l.amount, c).map_err(|e| e.0),
            ) {
                lines.push((l.description.trim().to_owned(), m));
            }
        }
        total = v.check("total", Money::parse(&b.total, c).map_err(|e| e.0));
        if let Some(t) = total {
            if t.minor <= 0 {
                v.fail("total", "must be more than zero");
            } else if lines.len() == b.lines.len() {
                let sum: i64 = lines.iter().map(|(_, m)| m.minor).sum();
                if sum != t.minor {
                    v.fail(
                        "total",
                        format!(
                            "is {} but the lines add up to {}",
                            t.to_decimal_string(),
                            Money {
                                minor: sum,
                                currency: c
                            }
                            .to_decimal_string()
                        ),
                    );
                }
            }
        }
    }
    let mut subscriptions = Vec::new();
    for (i, s) in b.subscription_ids.iter().flatten().enumerate() {
        if let Some(u) = v.check(
            &format!("subscription_ids[{i}]"),
            s.parse::<Uuid>()
                .map_err(|_| format!("'{s}' is not a subscription id")),
        ) {
            subscriptions.push(u);
        }
    }
    v.finish()?;
    let missing = || ApiError::Internal("validated fields missing".into());
    Ok(NewInvoice {
        customer: customer.ok_or_else(missing)?,
        number,
        issue: issue.ok_or_else(missing)?,
        due: due.ok_or_else(missing)?,
        currency: currency.ok_or_else(missing)?,
        lines,
        total: total.ok_or_else(missing)?,
        subscriptions,
    })
}

/// Record an invoice. A prepaid balance in its currency pays it at once, as far as it goes;
/// what stays open enters the dunning ladder, anchored on `due_date`.
#[utoipa::path(post, path = "/v1/invoices", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = InvoiceIn,
    responses((status = 201, body = InvoiceOut),
              (status = 409, description = "number already used", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_invoice(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<InvoiceIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let fp = Fingerprint {
        key: &key,
        method_path: "POST /v1/invoices".into(),
        body_sha256: &body.body_sha256,
    };
    let new = validate_invoice(body.value)?;
    let now = s.clock.now();
    let mut tx = s.app.begin_billing(caller.tenant(), new.customer.0).await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let tenant = caller.tenant();
    // An unknown customer is refused by create_invoice, naming `customer_id`.
    let row = ops::create_invoice(&mut tx, tenant, &caller.actor(), new, now).await?;
    idem::finish(
        tx,
        &caller,
        &fp,
        StatusCode::CREATED,
        &InvoiceOut::from_row(row, None),
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InvoiceListQuery {
    pub customer_id: Option<String>,
    /// `open` or `settled`
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// List invoices (by id), optionally one customer's, open or settled ones.
#[utoipa::path(get, path = "/v1/invoices", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(InvoiceListQuery),
    responses((status = 200, body = Page<InvoiceOut>)))]
pub async fn list_invoices(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<InvoiceListQuery>,
) -> Result<Json<Page<InvoiceOut>>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let limit = check_limit(q.limit)?;
    let customer = super::customer_filter(&q.customer_id)?;
    let open = match q.status.as_deref() {
        None => None,
        Some("open") => Some(true),
        Some("settled") => Some(false),
        Some(o) => {
            return Err(ApiError::field(
                "status",
                format!("'{o}' is not open or settled"),
            ));
        }
    };
    let rows = billing::list_invoices(
        s.db(),
        caller.tenant(),
        &InvoiceFilter {
            customer,
            open,
            after: decode_cursor(&q.cursor)?,
            limit: limit + 1,
        },
    )
    .await?;
    Ok(Json(page(
        rows,
        limit,
        |r| r.id.to_string(),
        |r| InvoiceOut::from_row(r, None),
    )))
}

/// One invoice with every change to its open amount.
#[utoipa::path(get, path = "/v1/invoices/{id}", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = InvoiceOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_invoice(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InvoiceOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: Uuid = parse_id(&id, "invoice")?;
    let row = billing::get_invoice(s.db(), caller.tenant(), id).await?;
    let entries = billing::entries_of_invoice(s.db(), caller.tenant(), id).await?;
    Ok(Json(InvoiceOut::from_row(row, Some(entries))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditNoteIn {
    /// Decimal string in the invoice's currency.
    pub amount: String,
    /// e.g. duplicated_charge, order_cancellation, fraudulent_charge, goodwill.
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonIn {
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeIn {
    /// true opens a dispute (the invoice leaves the dunning ladder), false closes it.
    pub open: bool,
    pub reason: String,
}

fn check_reason(r: &str) -> Result<String, ApiError> {
    let r = r.trim();
    if r.is_empty() || r.len() > 500 {
        return Err(ApiError::field(
            "reason",
            "give a reason (1–500 characters)",
        ));
    }
    Ok(r.to_owned())
}

macro_rules! write_op {
    ($s:expr, $caller:expr, $key:expr, $path:expr, $sha:expr, $status:expr, |$tx:ident, $now:ident| $body:expr) => {{
        let fp = Fingerprint {
            key: &$key,
            method_path: $path,
            body_sha256: $sha,
        };
        let $now = $s.clock.now();
        let mut $tx = $s.app.begin().await?;
        if let Some(replay) = idem::begin(&mut $tx, &$caller, &fp, $now).await? {
            return Ok(replay);
        }
        let out = $body;
        idem::finish($tx, &$caller, &fp, $status, &out).await
    }};
}

/// Credit part or all of an invoice. What exceeds the open amount (the invoice was paid) goes
/// to the prepaid balance; credits never exceed the invoice's total.
#[utoipa::path(post, path = "/v1/invoices/{id}/credit-notes", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = CreditNoteIn,
    responses((status = 200, body = InvoiceOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn credit_note(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<CreditNoteIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let id: Uuid = parse_id(&id, "invoice")?;
    let reason = check_reason(&body.value.reason)?;
    write_op!(
        s,
        caller,
        key,
        format!("POST /v1/invoices/{id}/credit-notes"),
        &body.body_sha256,
        StatusCode::OK,
        |tx, now| {
            let row = ops::credit_note(
                &mut tx,
                caller.tenant(),
                &caller.actor(),
                &s.dunning_policy,
                id,
                &body.value.amount,
                &reason,
                now,
            )
            .await?;
            InvoiceOut::from_row(row, None)
        }
    )
}

/// Write off what is still open on an invoice (audited; it leaves the dunning ladder).
#[utoipa::path(post, path = "/v1/invoices/{id}/write-off", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = ReasonIn,
    responses((status = 200, body = InvoiceOut), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn write_off(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<ReasonIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let id: Uuid = parse_id(&id, "invoice")?;
    let reason = check_reason(&body.value.reason)?;
    write_op!(
        s,
        caller,
        key,
        format!("POST /v1/invoices/{id}/write-off"),
        &body.body_sha256,
        StatusCode::OK,
        |tx, now| {
            let row = ops::write_off(
                &mut tx,
                caller.tenant(),
                &caller.actor(),
                &s.dunning_policy,
                id,
                &reason,
                now,
            )
            .await?;
            InvoiceOut::from_row(row, None)
        }
    )
}

/// Open or close a dispute: a disputed invoice takes no dunning step and pulls no lever.
#[utoipa::path(post, path = "/v1/invoices/{id}/dispute", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = DisputeIn,
    responses((status = 200, body = InvoiceOut)))]
pub async fn dispute(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<DisputeIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let id: Uuid = parse_id(&id, "invoice")?;
    let reason = check_reason(&body.value.reason)?;
    write_op!(
        s,
        caller,
        key,
        format!("POST /v1/invoices/{id}/dispute"),
        &body.body_sha256,
        StatusCode::OK,
        |tx, now| {
            let row = ops::dispute(
                &mut tx,
                caller.tenant(),
                &caller.actor(),
                &s.dunning_policy,
                id,
                body.value.open,
                &reason,
                now,
            )
            .await?;
            InvoiceOut::from_row(row, None)
        }
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentIn {
    pub customer_id: String,
    /// Decimal string, more than zero.
    pub amount: String,
    pub currency: String,
    /// RFC 3339.
    pub received_at: String,
    /// The bank or processor reference.
    pub reference: Option<String>,
    /// Pay this invoice first (otherwise open invoices oldest due first).
    pub invoice_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentOut {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub amount: String,
    pub currency: String,
    pub received_at: String,
    pub reference: Option<String>,
    /// `received` or `charged_back`.
    pub status: String,
    pub allocations: Vec<Allocation>,
    /// What went to the prepaid balance (over-payment or top-up).
    pub to_balance: String,
}

struct ParsedPayment {
    customer: CustomerId,
    amount: Money,
    received_at: Timestamp,
    reference: Option<String>,
    invoice: Option<Uuid>,
}

fn validate_payment(b: &PaymentIn) -> Result<ParsedPayment, ApiError> {
    let mut v = Validator::default();
    let customer: Option<CustomerId> = v.check(
        "customer_id",
        b.customer_id
            .parse()
            .map_err(|_| format!("'{}' is not a customer id", b.customer_id)),
    );
    let currency = v.check("currency", Currency::parse(&b.currency).map_err(|e| e.0));
    let amount =
        currency.and_then(|c| v.check("amount", Money::parse(&b.amount, c).map_err(|e| e.0)));
    if amount.is_some_and(|a| a.minor <= 0) {
        v.fail("amount", "must be more than zero");
    }
    let received_at: Option<Timestamp> = v.check(
        "received_at",
        b.received_at
            .parse()
            .map_err(|_| format!("'{}' is not an RFC 3339 time", b.received_at)),
    );
    let invoice = match &b.invoice_id {
        None => None,
        Some(i) => v.check(
            "invoice_id",
            i.parse::<Uuid>()
                .map_err(|_| format!("'{i}' is not an invoice id")),
        ),
    };
    if b.reference.as_ref().is_some_and(|r| r.len() > 200) {
        v.fail("reference", "at most 200 characters");
    }
    v.finish()?;
    let missing = || ApiError::Internal("validated fields missing".into());
    Ok(ParsedPayment {
        customer: customer.ok_or_else(missing)?,
        amount: amount.ok_or_else(missing)?,
        received_at: received_at.ok_or_else(missing)?,
        reference: b.reference.clone(),
        invoice,
    })
}

/// Record a payment received: the named invoice first, then the customer's open invoices in
/// the same currency, oldest due first; the rest goes to the prepaid balance. Paying up undoes
/// the dunning levers at once.
#[utoipa::path(post, path = "/v1/payments", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = PaymentIn,
    responses((status = 201, body = PaymentOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_payment(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<PaymentIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let p = validate_payment(&body.value)?;
    write_op!(
        s,
        caller,
        key,
        "POST /v1/payments".into(),
        &body.body_sha256,
        StatusCode::CREATED,
        |tx, now| {
            customers::get_tx(&mut tx, caller.tenant(), p.customer)
                .await
                .map_err(|_| {
                    ApiError::field(
                        "customer_id",
                        format!("no customer {} in this tenant", p.customer.0),
                    )
                })?;
            let (pay, allocations, to_balance) = ops::record_payment(
                &mut tx,
                caller.tenant(),
                &caller.actor(),
                &s.dunning_policy,
                NewPayment {
                    customer: p.customer,
                    amount: p.amount,
                    received_at: p.received_at,
                    reference: p.reference,
                    invoice: p.invoice,
                    top_up: false,
                },
                now,
            )
            .await?;
            payment_out(pay, allocations, to_balance)
        }
    )
}

fn payment_out(
    pay: billing::PaymentRow,
    allocations: Vec<Allocation>,
    to_balance: Money,
) -> PaymentOut {
    PaymentOut {
        id: pay.id,
        customer_id: pay.customer_id,
        amount: money_str(pay.amount_minor, &pay.currency),
        received_at: rfc3339(pay.received_at),
        reference: pay.reference,
        status: pay.status,
        allocations,
        to_balance: to_balance.to_decimal_string(),
        currency: pay.currency,
    }
}

/// A chargeback: the payment is reversed, every invoice it paid reopens (and re-enters the
/// dunning ladder), what it left on the prepaid balance is taken back.
#[utoipa::path(post, path = "/v1/payments/{id}/chargeback", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = ReasonIn,
    responses((status = 200, body = PaymentOut), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn chargeback(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<ReasonIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let id: Uuid = parse_id(&id, "payment")?;
    let reason = check_reason(&body.value.reason)?;
    write_op!(
        s,
        caller,
        key,
        format!("POST /v1/payments/{id}/chargeback"),
        &body.body_sha256,
        StatusCode::OK,
        |tx, now| {
            let pay = ops::chargeback(
                &mut tx,
                caller.tenant(),
                &caller.actor(),
                &s.dunning_policy,
                id,
                &reason,
                now,
            )
            .await?;
            let cur = Currency::parse(&pay.currency).map_err(|e| ApiError::Internal(e.0))?;
            payment_out(
                pay,
                vec![],
                Money {
                    minor: 0,
                    currency: cur,
                },
            )
        }
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpIn {
    pub amount: String,
    pub currency: String,
    /// RFC 3339 (default: now).
    pub received_at: Option<String>,
    pub reference: Option<String>,
}

/// Add prepaid credit (a prepayment received). It pays no existing invoice; new invoices draw
/// from it. Counts as the customer's first payment.
#[utoipa::path(post, path = "/v1/customers/{id}/balance/top-ups", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = TopUpIn,
    responses((status = 201, body = PaymentOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn top_up(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<TopUpIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let customer: CustomerId = parse_id(&id, "customer")?;
    let b = &body.value;
    let p = validate_payment(&PaymentIn {
        customer_id: customer.0.to_string(),
        amount: b.amount.clone(),
        currency: b.currency.clone(),
        received_at: b
            .received_at
            .clone()
            .unwrap_or_else(|| s.clock.now().to_string()),
        reference: b.reference.clone(),
        invoice_id: None,
    })?;
    write_op!(
        s,
        caller,
        key,
        format!("POST /v1/customers/{}/balance/top-ups", customer.0),
        &body.body_sha256,
        StatusCode::CREATED,
        |tx, now| {
            let (pay, allocations, to_balance) = ops::record_payment(
                &mut tx,
                caller.tenant(),
                &caller.actor(),
                &s.dunning_policy,
                NewPayment {
                    customer,
                    amount: p.amount,
                    received_at: p.received_at,
                    reference: p.reference,
                    invoice: None,
                    top_up: true,
                },
                now,
            )
            .await?;
            payment_out(pay, allocations, to_balance)
        }
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundIn {
    pub amount: String,
    pub currency: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundOut {
    pub refunded: String,
    pub currency: String,
    pub balance_after: String,
}

/// Pay money back from the prepaid balance (never more than it holds).
#[utoipa::path(post, path = "/v1/customers/{id}/balance/refunds", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("write_billing"))),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = RefundIn,
    responses((status = 201, body = RefundOut), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn refund(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<RefundIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WriteBilling)?;
    let customer: CustomerId = parse_id(&id, "customer")?;
    let b = &body.value;
    let reason = check_reason(&b.reason)?;
    let currency = Currency::parse(&b.currency).map_err(|e| ApiError::field("currency", e.0))?;
    let amount = Money::parse(&b.amount, currency).map_err(|e| ApiError::field("amount", e.0))?;
    write_op!(
        s,
        caller,
        key,
        format!("POST /v1/customers/{}/balance/refunds", customer.0),
        &body.body_sha256,
        StatusCode::CREATED,
        |tx, now| {
            let left = ops::refund(
                &mut tx,
                caller.tenant(),
                &caller.actor(),
                customer,
                amount,
                &reason,
                now,
            )
            .await?;
            RefundOut {
                refunded: amount.to_decimal_string(),
                currency: currency.code().to_owned(),
                balance_after: left.to_decimal_string(),
            }
        }
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Amount {
    pub currency: String,
    pub amount: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletEntryOut {
    /// top_up, overpayment, credit_note, invoice_draw, refund, chargeback
    pub kind: String,
    pub amount: String,
    pub currency: String,
    pub at: String,
    pub source_id: Option<Uuid>,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceOut {
    pub customer_id: Uuid,
    pub as_of: String,
    /// The prepaid balance per currency (negative: the customer owes it, e.g. after a chargeback).
    pub balances: Vec<Amount>,
    pub entries: Vec<WalletEntryOut>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// RFC 3339, or a date (the end of that UTC day). Default now.
    pub as_of: Option<String>,
}

/// A customer's prepaid balance per currency, and its movements.
#[utoipa::path(get, path = "/v1/customers/{id}/balance", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path), AsOfQuery),
    responses((status = 200, body = BalanceOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_balance(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AsOfQuery>,
) -> Result<Json<BalanceOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let customer: CustomerId = parse_id(&id, "customer")?;
    let as_of = parse_as_of(&q.as_of, s.clock.now())?;
    customers::get(s.db(), caller.tenant(), customer).await?;
    let before = to_micros(as_of);
    let balances = billing::wallet_balance(s.db(), caller.tenant(), customer.0, before).await?;
    let entries = billing::wallet_entries(s.db(), caller.tenant(), customer.0).await?;
    Ok(Json(BalanceOut {
        customer_id: customer.0,
        as_of: as_of.to_string(),
        balances: balances
            .into_iter()
            .map(|b| Amount {
                amount: money_str(b.minor, &b.currency),
                currency: b.currency,
            })
            .collect(),
        entries: entries
            .into_iter()
            .filter(|e| e.at < before)
            .map(|e| WalletEntryOut {
                amount: money_str(e.amount_minor, &e.currency),
                kind: e.kind,
                currency: e.currency,
                at: rfc3339(e.at),
                source_id: e.source_id,
                note: e.note,
            })
            .collect(),
    }))
}

/// How much money a customer puts at risk now (or `as_of`), against its credit limit.
#[utoipa::path(get, path = "/v1/customers/{id}/exposure", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path), AsOfQuery),
    responses((status = 200, body = ExposureOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_exposure(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AsOfQuery>,
) -> Result<Json<ExposureOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let customer: CustomerId = parse_id(&id, "customer")?;
    let as_of = parse_as_of(&q.as_of, s.clock.now())?;
    let c = customers::get(s.db(), caller.tenant(), customer).await?;
    Ok(Json(exposure_of(s.db(), caller.tenant(), &c, as_of).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExposureReportQuery {
    pub as_of: Option<String>,
    /// How many customers, most exposed first (default 20, at most 500).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExposureReport {
    pub as_of: String,
    pub customers_with_exposure: u64,
    pub over_limit: u64,
    /// Exposure per currency over every customer of the tenant.
    pub totals: Vec<Amount>,
    pub top: Vec<ExposureOut>,
}

/// The tenant's most exposed customers and its totals per currency.
#[utoipa::path(get, path = "/v1/reports/exposure", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(ExposureReportQuery),
    responses((status = 200, body = ExposureReport)))]
pub async fn exposure_report(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ExposureReportQuery>,
) -> Result<Json<ExposureReport>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let limit = match q.limit {
        None => 20,
        Some(l) if (1..=500).contains(&l) => l as usize,
        Some(_) => return Err(ApiError::field("limit", "must be between 1 and 500")),
    };
    let as_of = parse_as_of(&q.as_of, s.clock.now())?;
    let tenant = caller.tenant();
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let batch = customers::list(s.db(), tenant, &Default::default(), after, 500).await?;
        let n = batch.len();
        for c in batch {
            after = Some(CustomerId(c.id));
            let e = exposure_of(s.db(), tenant, &c, as_of).await?;
            if e.lines
                .iter()
                .any(|l| minor_of(&l.exposure, &l.currency) != 0)
            {
                all.push(e);
            }
        }
        if n < 500 {
            break;
        }
    }
    let mut totals: std::collections::BTreeMap<String, i64> = Default::default();
    for e in &all {
        for l in &e.lines {
            *totals.entry(l.currency.clone()).or_default() += minor_of(&l.exposure, &l.currency);
        }
    }
    all.sort_by_key(|e| std::cmp::Reverse(minor_of(&e.exposure, &e.currency)));
    Ok(Json(ExposureReport {
        as_of: as_of.to_string(),
        customers_with_exposure: all.len() as u64,
        over_limit: all.iter().filter(|e| e.over_limit).count() as u64,
        totals: totals
            .into_iter()
            .map(|(c, m)| Amount {
                amount: money_str(m, &c),
                currency: c,
            })
            .collect(),
        top: all.into_iter().take(limit).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AgingQuery {
    /// A date (`YYYY-MM-DD`, the end of that day) or an RFC 3339 time; default now.
    pub as_of: Option<String>,
    /// `due_date` (default) or `issue_date`.
    pub basis: Option<String>,
    /// Bucket edges in days, e.g. `30,60,90` (the default).
    pub buckets: Option<String>,
}

/// Aged receivables: every open invoice in a bucket by days past its due date (or issue date)
/// on `as_of`, per customer and currency, with totals per currency. Any past date reproduces.
#[utoipa::path(get, path = "/v1/reports/aging", tag = "billing", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(AgingQuery),
    responses((status = 200, body = AgingReport), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn get_aging(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AgingQuery>,
) -> Result<Json<AgingReport>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let as_of = parse_as_of(&q.as_of, s.clock.now())?;
    let basis = Basis::parse(q.basis.as_deref().unwrap_or("due_date"))
        .map_err(|e| ApiError::field("basis", e.0))?;
    let buckets = match &q.buckets {
        None => Buckets::default(),
        Some(b) => Buckets::parse(b).map_err(|e| ApiError::field("buckets", e.0))?,
    };
    Ok(Json(
        aging_report(s.db(), caller.tenant(), as_of, basis, &buckets).await?,
    ))
}
