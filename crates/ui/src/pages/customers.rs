//! Customers: search by name, external id, domain, email or id; the customer page (its
//! subscriptions, alerts, cases, invoices, exposure and credit terms, budget, provider links).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use riskdesk_app::billing::reports::{ExposureOut, exposure_of};
use riskdesk_domain::{CustomerId, Permission, TenantId};
use riskdesk_storage::alerts::{self, AlertFilter, AlertRow};
use riskdesk_storage::billing::{self, InvoiceFilter, InvoiceRow};
use riskdesk_storage::budgets;
use riskdesk_storage::cases::{self, CaseFilter};
use riskdesk_storage::customers::{self, CustomerFilter, CustomerRow};
use riskdesk_storage::subscriptions::{self, SubscriptionRow};
use riskdesk_storage::time::to_micros;
use serde::Deserialize;
use uuid::Uuid;

use super::cases::CaseLine;
use super::{as_of, opt, parse_id, render};
use crate::UiState;
use crate::error::UiError;
use crate::session::Staff;
use crate::svg;
use crate::view::Layout;

const HOUR: i64 = 3_600_000_000;

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "customers.html")]
struct ListPage {
    l: Layout,
    q: String,
    rows: Vec<CustomerRow>,
    next: Option<Uuid>,
}

pub async fn list(
    State(s): State<UiState>,
    staff: Staff,
    Query(q): Query<ListQuery>,
) -> Result<Response, UiError> {
    staff.require(Permission::ReadCustomers)?;
    let db = s.app.db();
    let text = opt(&q.q).unwrap_or("").to_owned();
    if text.chars().count() > 200 {
        return Err(UiError::Invalid("q: at most 200 characters".into()));
    }
    let (rows, next) = if text.is_empty() {
        let after = match opt(&q.cursor) {
            Some(c) => {
                Some(CustomerId(c.parse().map_err(|_| {
                    UiError::Invalid("cursor: not a cursor".into())
                })?))
            }
            None => None,
        };
        let mut rows = customers::list(
            db,
            staff.tenant(),
            &CustomerFilter {
                country: None,
                cloud_instance: None,
                external_id: None,
                name_contains: None,
            },
            after,
            51,
        )
        .await?;
        let next = (rows.len() > 50).then(|| {
            rows.truncate(50);
            rows.last().map(|r| r.id)
        });
        (rows, next.flatten())
    } else {
        (
            customers::search(db, staff.tenant(), &text, 50).await?,
            None,
        )
    };
    render(&ListPage {
        l: Layout::new(&s, &staff, "customers"),
        q: text,
        rows,
        next,
    })
}

pub struct SubLine {
    pub row: SubscriptionRow,
    pub provider_id: Option<String>,
    /// What each lifecycle action would do to it now (the same rule that applies it).
    pub previews: Vec<riskdesk_app::response::preview::ActionPreview>,
}

pub struct AuditLine {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub note: String,
}

#[derive(Template)]
#[template(path = "customer.html")]
struct CustomerPage {
    l: Layout,
    c: CustomerRow,
    provider_id: Option<String>,
    exposure: ExposureOut,
    gauge: String,
    budget_bar: Option<String>,
    subs: Vec<SubLine>,
    alerts: Vec<AlertRow>,
    cases: Vec<CaseLine>,
    invoices: Vec<InvoiceRow>,
    payments: Vec<riskdesk_storage::billing::PaymentRow>,
    audit: Vec<AuditLine>,
    spend_json: String,
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
    let db = s.app.db();
    let tenant = staff.tenant();
    let (at_ts, as_of_text) = as_of(&q.as_of, s.app.clock.now())?;
    let at = to_micros(at_ts);
    let c = customers::get(db, tenant, CustomerId(id)).await?;
    let t = staff.t();
    let exposure = exposure_of(db, tenant, &c, at_ts).await?;
    let gauge = svg::exposure_gauge(&t, &exposure);
    let budget_bar = budget_svg(&s, &t, tenant, id, at_ts).await?;
    let link = riskdesk_storage::provider::customer_link(db, tenant, id).await?;
    let mut subs = Vec::new();
    for row in subscriptions::list_for_customer(db, tenant, CustomerId(id), None, None, 200).await?
    {
        let l = riskdesk_storage::provider::subscription_link(db, tenant, row.id).await?;
        let mut previews = Vec::new();
        for kind in [
            riskdesk_domain::response::ActionKind::Suspend,
            riskdesk_domain::response::ActionKind::DisableAccess,
            riskdesk_domain::response::ActionKind::Reactivate,
            riskdesk_domain::response::ActionKind::Cancel,
        ] {
            previews.push(
                riskdesk_app::response::preview::preview(db, tenant, id, Some(row.id), kind, None)
                    .await?,
            );
        }
        subs.push(SubLine {
            provider_id: l.map(|l| l.provider_subscription_id),
            row,
            previews,
        });
    }
    let alerts = alerts::list(
        db,
        tenant,
        &AlertFilter {
            customer_id: Some(id),
            ..Default::default()
        },
        50,
    )
    .await?;
    let case_rows = cases::list(
        db,
        tenant,
        &CaseFilter {
            status: None,
            kind: None,
            severity: None,
            assignee: None,
            customer: Some(id),
            overdue_at: None,
            active_only: false,
            after: None,
        },
        50,
    )
    .await?;
    let cases = super::cases::lines(&s, &staff, &case_rows, at).await?;
    let invoices = billing::list_invoices(
        db,
        tenant,
        &InvoiceFilter {
            customer: Some(id),
            open: None,
            after: None,
            limit: 100,
        },
    )
    .await?;
    let spend_json = spend_chart_json(&s, tenant, id, at).await?;
    let payments = billing::payments_of_customer(db, tenant, id).await?;
    let audit = if staff.can(Permission::ReadAudit) {
        let rows = riskdesk_storage::audit::list(
            db,
            tenant,
            &riskdesk_storage::audit::AuditFilter {
                entity_id: Some(id.to_string()),
                entity_type: None,
                action: None,
            },
            None,
            500,
        )
        .await?;
        rows.into_iter()
            .rev()
            .take(20)
            .map(|r| AuditLine {
                at: r.at,
                actor: format!("{}:{}", r.actor_kind, r.actor_name),
                action: r.action,
                note: r.note.or(r.reason).unwrap_or_default(),
            })
            .collect()
    } else {
        Vec::new()
    };
    render(&CustomerPage {
        payments,
        audit,
        l: Layout::new(&s, &staff, "customers").with_as_of(as_of_text, at),
        provider_id: link.map(|l| l.provider_customer_id),
        c,
        exposure,
        gauge,
        budget_bar,
        subs,
        alerts,
        cases,
        invoices,
        spend_json,
    })
}

#[derive(Deserialize)]
pub struct SubActForm {
    key: String,
    kind: String,
    reason: Option<String>,
    note: Option<String>,
    /// "apply" or "propose".
    mode: String,
}

/// A lifecycle action on a subscription from the customer page (no case): applied now, or
/// proposed for another person's approval — as `POST /v1/subscriptions/{id}/actions` and the
/// case's actions do, through `response::take_action`.
pub async fn act_on_subscription(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    super::UiForm(f): super::UiForm<SubActForm>,
) -> Result<Response, UiError> {
    use riskdesk_domain::Reason;
    use riskdesk_domain::response::ActionKind;
    staff.require(Permission::WorkCases)?;
    let sid = parse_id(&id)?;
    let kind = ActionKind::parse(&f.kind)
        .filter(|k| k.lifecycle().is_some())
        .ok_or_else(|| UiError::Invalid(format!("kind: '{}' is not a lifecycle action", f.kind)))?;
    let reason = match opt(&f.reason) {
        None if kind == ActionKind::Reactivate => Reason::Resolved,
        None => Reason::Investigation,
        Some(r) => Reason::parse(r)
            .ok_or_else(|| UiError::Invalid(format!("reason: '{r}' is not a reason")))?,
    };
    let note = super::note("note", &f.note)?;
    let propose = match f.mode.as_str() {
        "apply" => false,
        "propose" => true,
        m => {
            return Err(UiError::Invalid(format!(
                "mode: '{m}' is neither apply nor propose"
            )));
        }
    };
    let sub = subscriptions::get(
        s.app.db(),
        staff.tenant(),
        riskdesk_domain::SubscriptionId(sid),
    )
    .await?;
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    let what = format!(
        "sub-act {sid} {} {} {propose}",
        kind.as_str(),
        reason.as_str()
    );
    if let Some(r) = super::claim(&mut tx, &staff, &f.key, &what, now).await? {
        return Ok(r);
    }
    riskdesk_app::response::take_action(
        &mut tx,
        staff.tenant(),
        &staff.actor(),
        None,
        sub.customer_id,
        &riskdesk_app::response::ActionRequest {
            kind,
            subscription: Some(sid),
            amount: None,
            reason,
            note,
        },
        propose,
        now,
    )
    .await?;
    super::done(
        tx,
        &staff,
        &f.key,
        &format!("/ui/customers/{}#sub-{sid}", sub.customer_id),
    )
    .await
}

/// The customer's budget bar (month-to-date spend against the budget, threshold ticks, the
/// month's forecast) at `at_ts`, if it has a budget.
pub async fn budget_svg(
    s: &UiState,
    t: &crate::i18n::T,
    tenant: TenantId,
    customer: Uuid,
    at_ts: jiff::Timestamp,
) -> Result<Option<String>, UiError> {
    let db = s.app.db();
    let at = to_micros(at_ts);
    let Some(b) = budgets::get(db, tenant, customer).await? else {
        return Ok(None);
    };
    let d = at_ts.to_zoned(jiff::tz::TimeZone::UTC).date();
    let month_start = jiff::civil::date(d.year(), d.month(), 1)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| to_micros(z.timestamp()))
        .unwrap_or(at);
    let spent = riskdesk_storage::events::spend_between(db, tenant, customer, month_start, at)
        .await?
        .into_iter()
        .find(|x| x.currency == b.currency)
        .map(|x| riskdesk_domain::monitoring::cost::join(x.units, x.rem))
        .unwrap_or(0);
    Ok(Some(svg::budget_bar(t, &b, spent, month_start, at)))
}

/// The spend chart's data for the 14 days before `at`, embedded in the page as JSON (never
/// executed, so the CSP allows it): uPlot's columns — hours, then one series per category —
/// with each series' anomaly hours and the alerts raised on the customer as markers.
pub async fn spend_chart_json(
    s: &UiState,
    tenant: TenantId,
    customer: Uuid,
    at: i64,
) -> Result<String, UiError> {
    let to = (at.div_euclid(HOUR) + 1) * HOUR;
    let from = to - 14 * 24 * HOUR;
    let threshold = s.app.detector.spend.threshold;
    let series = riskdesk_app::monitoring::spend::spend_series(
        s.app.db(),
        tenant,
        customer,
        from,
        to,
        threshold,
    )
    .await?;
    let hours: Vec<i64> = (0..(to - from) / HOUR)
        .map(|i| (from + i * HOUR) / 1_000_000)
        .collect();
    let cats: Vec<serde_json::Value> = series
        .series
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.meter_category,
                "currencies": c.currencies,
                "values": c.points.iter().map(|p| p.spend.parse::<f64>().unwrap_or(0.0)).collect::<Vec<_>>(),
                "scores": c.points.iter().map(|p| p.score).collect::<Vec<_>>(),
                "anomalies": c.points.iter().enumerate().filter(|(_, p)| p.anomaly).map(|(i, _)| i).collect::<Vec<_>>(),
            })
        })
        .collect();
    let alerts = alerts::list(
        s.app.db(),
        tenant,
        &AlertFilter {
            customer_id: Some(customer),
            ..Default::default()
        },
        50,
    )
    .await?;
    let mut markers: Vec<serde_json::Value> = alerts
        .iter()
        .filter(|a| a.last_at >= from && a.last_at < to)
        .map(|a| serde_json::json!({"t": a.last_at / 1_000_000, "kind": "alert", "severity": a.severity, "label": a.title}))
        .collect();
    // Actions taken (suspended at t, reactivated at t).
    let acts = riskdesk_storage::actions::list(
        s.app.db(),
        tenant,
        &riskdesk_storage::actions::ActionFilter {
            status: None,
            customer: Some(customer),
            case_id: None,
        },
        100,
    )
    .await?;
    for a in acts {
        if let Some(at) = a
            .done_at
            .or(Some(a.updated_at))
            .filter(|t| *t >= from && *t < to)
            && matches!(a.status.as_str(), "done" | "pending")
        {
            markers
                .push(serde_json::json!({"t": at / 1_000_000, "kind": "action", "label": a.kind}));
        }
    }
    let v =
        serde_json::json!({"x": hours, "series": cats, "markers": markers, "threshold": threshold});
    // `</` inside a <script> element would end it: escape it (JSON allows `\/`).
    Ok(v.to_string().replace("</", "<\\/"))
}
