//! Reports over the ledger: a customer's exposure (unbilled usage + unpaid invoices − prepaid
//! balance) against its credit limit, and aged receivables. Shared by the API, the CLI
//! (`riskdesk report aging`) and the benches.

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use riskdesk_domain::billing::Day;
use riskdesk_domain::billing::aging::{self, Basis, Buckets, OpenItem};
use riskdesk_domain::money::{Currency, Money};
use riskdesk_storage::billing;
use riskdesk_storage::customers::{self, CustomerRow};
use riskdesk_storage::time::to_micros;
use riskdesk_storage::{Db, events};
use serde::Serialize;
use uuid::Uuid;

use crate::billing as ops;
use crate::kernel::error::AppError;
use crate::kernel::time::report_day;

/// An amount in minor units as decimal text in its currency (the minor units themselves if
/// the currency is unknown).
pub fn money_str(minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(c) => Money { minor, currency: c }.to_decimal_string(),
        Err(_) => minor.to_string(),
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExposureLine {
    pub currency: String,
    /// Usage since the last invoice's issue date (from the monitoring events), rounded to the
    /// currency's minor unit.
    pub unbilled: String,
    pub unpaid: String,
    pub prepaid: String,
    /// unbilled + unpaid − prepaid
    pub exposure: String,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExposureOut {
    pub customer_id: Uuid,
    pub customer_name: String,
    pub as_of: String,
    pub credit_limit: Option<String>,
    pub credit_currency: Option<String>,
    /// Exposure in the credit currency (or the first currency with money at risk).
    pub exposure: String,
    pub currency: String,
    /// credit limit − exposure (absent without a credit limit).
    pub available: Option<String>,
    pub over_limit: bool,
    /// Exposure as a percentage of the credit limit (two decimals).
    pub limit_used_percent: Option<f64>,
    /// Every currency the customer has money in.
    pub lines: Vec<ExposureLine>,
}

/// Exposure of one customer at an instant: unbilled consumption + unpaid invoices − prepaid
/// balance, per currency, against its credit limit.
pub async fn exposure_of(
    db: &Db,
    tenant: TenantId,
    c: &CustomerRow,
    as_of: Timestamp,
) -> Result<ExposureOut, AppError> {
    let before = to_micros(as_of);
    let day = report_day(as_of);
    let from = ops::unbilled_from(billing::last_issue_day(db, tenant, c.id, day.0).await?);
    let per = ops::fold_exposure(
        billing::unpaid_by_currency(db, tenant, c.id, day.0, before).await?,
        billing::wallet_balance(db, tenant, c.id, before).await?,
        events::spend_between(db, tenant, c.id, from, before).await?,
    );
    let currency = c
        .credit_currency
        .clone()
        .or_else(|| per.keys().next().cloned())
        .unwrap_or_else(|| "USD".into());
    let exposure_minor = per.get(&currency).map_or(0, |v| v[0] + v[1] - v[2]);
    let limit = c
        .credit_limit_minor
        .filter(|_| c.credit_currency.as_deref() == Some(currency.as_str()));
    Ok(ExposureOut {
        customer_id: c.id,
        customer_name: c.name.clone(),
        as_of: as_of.to_string(),
        credit_limit: limit.map(|l| money_str(l, &currency)),
        credit_currency: c.credit_currency.clone(),
        exposure: money_str(exposure_minor, &currency),
        available: limit.map(|l| money_str(l - exposure_minor, &currency)),
        over_limit: limit.is_some_and(|l| exposure_minor > l),
        limit_used_percent: limit
            .filter(|l| *l > 0)
            .map(|l| (exposure_minor as i128 * 10_000 / l as i128) as f64 / 100.0),
        lines: per
            .into_iter()
            .map(|(cur, v)| ExposureLine {
                unbilled: money_str(v[0], &cur),
                unpaid: money_str(v[1], &cur),
                prepaid: money_str(v[2], &cur),
                exposure: money_str(v[0] + v[1] - v[2], &cur),
                currency: cur,
            })
            .collect(),
        currency,
    })
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgingRowOut {
    pub customer_id: Option<Uuid>,
    pub customer_name: Option<String>,
    pub currency: String,
    /// One amount per bucket, in `buckets` order.
    pub amounts: Vec<String>,
    pub total: String,
    pub invoices: u64,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgingReport {
    /// The day aged at (`YYYY-MM-DD`, UTC): invoices are aged by whole days.
    pub as_of: String,
    pub basis: String,
    pub buckets: Vec<String>,
    pub customers: Vec<AgingRowOut>,
    /// Per currency (currencies are never added together).
    pub totals: Vec<AgingRowOut>,
}

/// Builds the aging report (shared by the API and `riskdesk report aging`).
pub async fn aging_report(
    db: &Db,
    tenant: TenantId,
    as_of: Timestamp,
    basis: Basis,
    buckets: &Buckets,
) -> Result<AgingReport, AppError> {
    let day = report_day(as_of);
    let items = billing::open_items_as_of(db, tenant, day.0, to_micros(as_of)).await?;
    let (rows, totals) = aging::age(
        items.into_iter().map(|i| OpenItem {
            key: i.customer_id,
            currency: i.currency,
            issue_day: Day(i.issue_day),
            due_day: Day(i.due_day),
            open_minor: i.open_minor,
        }),
        day,
        basis,
        buckets,
    );
    let ids: Vec<Uuid> = rows.keys().map(|(k, _)| *k).collect();
    let mut names = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let mut tx = db.begin().await?;
        for c in customers::get_many_tx(&mut tx, tenant, chunk).await? {
            names.insert(c.id, c.name);
        }
        tx.commit().await?;
    }
    let row_out = |id: Option<Uuid>, cur: String, r: aging::Row| AgingRowOut {
        customer_id: id,
        customer_name: id.and_then(|i| names.get(&i).cloned()),
        amounts: r.buckets.iter().map(|m| money_str(*m, &cur)).collect(),
        total: money_str(r.total, &cur),
        invoices: r.items,
        currency: cur,
    };
    Ok(AgingReport {
        as_of: day.to_string(),
        basis: match basis {
            Basis::DueDate => "due_date",
            Basis::IssueDate => "issue_date",
        }
        .into(),
        buckets: buckets.labels(),
        customers: rows
            .into_iter()
            .map(|((id, cur), r)| row_out(Some(id), cur, r))
            .collect(),
        totals: totals
            .into_iter()
            .map(|(cur, r)| row_out(None, cur, r))
            .collect(),
    })
}

/// The report as table rows: one per customer and currency, then a TOTAL per currency.
pub fn aging_rows(r: &AgingReport) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for c in &r.customers {
        let mut row = vec![
            c.customer_name.clone().unwrap_or_default(),
            c.customer_id.map(|i| i.to_string()).unwrap_or_default(),
            c.currency.clone(),
        ];
        row.extend(c.amounts.iter().cloned());
        row.push(c.total.clone());
        out.push(row);
    }
    for t in &r.totals {
        let mut row = vec!["TOTAL".to_owned(), String::new(), t.currency.clone()];
        row.extend(t.amounts.iter().cloned());
        row.push(t.total.clone());
        out.push(row);
    }
    out
}

/// The column names of [`aging_rows`].
pub fn aging_header(r: &AgingReport) -> Vec<String> {
    let mut h = vec![
        "customer".to_owned(),
        "customer_id".into(),
        "currency".into(),
    ];
    h.extend(r.buckets.iter().cloned());
    h.push("total".into());
    h
}

/// The report as CSV: what `riskdesk report aging --format csv` prints and the dashboard
/// downloads.
pub fn aging_csv(r: &AgingReport) -> Result<String, AppError> {
    let csv_err = |e: &dyn std::fmt::Display| AppError::Internal(format!("CSV: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(aging_header(r)).map_err(|e| csv_err(&e))?;
    for row in aging_rows(r) {
        w.write_record(row).map_err(|e| csv_err(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| csv_err(&e))?;
    String::from_utf8(bytes).map_err(|e| csv_err(&e))
}
