//! Aging: a stacked bar per currency (never summed across currencies), as of a day, by due or
//! issue date, with chosen bucket edges; a segment filters the table; the CSV is exactly what
//! `riskdesk report aging --format csv` prints.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use riskdesk_app::billing::reports::{AgingReport, aging_csv, aging_report};
use riskdesk_domain::Permission;
use riskdesk_domain::billing::aging::{Basis, Buckets};
use serde::Deserialize;

use super::{as_of, opt, render};
use crate::UiState;
use crate::error::UiError;
use crate::session::Staff;
use crate::svg;
use crate::view::Layout;

#[derive(Deserialize, Default)]
pub struct AgingQuery {
    as_of: Option<String>,
    basis: Option<String>,
    buckets: Option<String>,
    /// A segment clicked: the table shows the customers with money in it.
    currency: Option<String>,
    bucket: Option<usize>,
}

impl AgingQuery {
    fn parse(&self) -> Result<(Basis, Buckets), UiError> {
        let basis = Basis::parse(opt(&self.basis).unwrap_or("due_date"))
            .map_err(|e| UiError::Invalid(format!("basis: {}", e.0)))?;
        let buckets = Buckets::parse(opt(&self.buckets).unwrap_or("30,60,90"))
            .map_err(|e| UiError::Invalid(format!("buckets: {}", e.0)))?;
        Ok((basis, buckets))
    }

    fn query_string(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("as_of", &self.as_of),
            ("basis", &self.basis),
            ("buckets", &self.buckets),
        ] {
            if let Some(v) = opt(v) {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }
}

async fn report(
    s: &UiState,
    staff: &Staff,
    q: &AgingQuery,
) -> Result<(AgingReport, Option<String>, i64), UiError> {
    staff.require(Permission::ReadCustomers)?;
    let (at, text) = as_of(&q.as_of, s.app.clock.now())?;
    let (basis, buckets) = q.parse()?;
    let r = aging_report(s.app.db(), staff.tenant(), at, basis, &buckets).await?;
    Ok((r, text, riskdesk_storage::time::to_micros(at)))
}

pub struct Row {
    pub name: String,
    pub id: String,
    pub currency: String,
    pub amounts: Vec<String>,
    pub total: String,
}

#[derive(Template)]
#[template(path = "aging.html")]
struct AgingPage {
    l: Layout,
    r: AgingReport,
    charts: Vec<String>,
    rows: Vec<Row>,
    qs: String,
    basis: String,
    buckets: String,
    as_of_value: String,
    filter: Option<String>,
}

pub async fn page(
    State(s): State<UiState>,
    staff: Staff,
    Query(q): Query<AgingQuery>,
) -> Result<Response, UiError> {
    let (r, as_of_text, at) = report(&s, &staff, &q).await?;
    let t = staff.t();
    let qs = q.query_string();
    let charts = r
        .totals
        .iter()
        .map(|tot| svg::aging_bar(&t, &r.buckets, tot, &qs))
        .collect();
    let selected = match (opt(&q.currency), q.bucket) {
        (Some(c), Some(b)) if b < r.buckets.len() => Some((c.to_owned(), b)),
        _ => None,
    };
    let rows = r
        .customers
        .iter()
        .filter(|c| match &selected {
            Some((cur, b)) => {
                &c.currency == cur
                    && c.amounts
                        .get(*b)
                        .is_some_and(|a| a.trim_start_matches(['0', '.']) != "")
            }
            None => true,
        })
        .map(|c| Row {
            name: c.customer_name.clone().unwrap_or_default(),
            id: c.customer_id.map(|i| i.to_string()).unwrap_or_default(),
            currency: c.currency.clone(),
            amounts: c.amounts.clone(),
            total: c.total.clone(),
        })
        .collect();
    let filter = selected.map(|(c, b)| format!("{c} · {}", r.buckets[b]));
    render(&AgingPage {
        l: Layout::new(&s, &staff, "aging").with_as_of(as_of_text.clone(), at),
        basis: r.basis.clone(),
        buckets: opt(&q.buckets).unwrap_or("30,60,90").to_owned(),
        as_of_value: as_of_text.unwrap_or_default(),
        charts,
        rows,
        qs,
        filter,
        r,
    })
}

pub async fn csv(
    State(s): State<UiState>,
    staff: Staff,
    Query(q): Query<AgingQuery>,
) -> Result<Response, UiError> {
    let (r, _, _) = report(&s, &staff, &q).await?;
    let body = aging_csv(&r)?;
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"aging-{}.csv\"", r.as_of))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
