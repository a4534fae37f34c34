//! The case queue (filters in the URL, saved views, bulk work, take next) and the case
//! workspace (one screen per decision).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use base64::Engine as _;
use riskdesk_app::billing::reports::{ExposureOut, exposure_of};
use riskdesk_app::response::preview::{ActionPreview, preview};
use riskdesk_app::response::{self, ActionRequest};
use riskdesk_domain::money::{Currency, Money};
use riskdesk_domain::response::{ActionKind, CaseKind, CaseStatus};
use riskdesk_domain::{CustomerId, Permission, Reason};
use riskdesk_storage::actions::{self, ActionRow};
use riskdesk_storage::alerts::{self, AlertFilter, AlertRow};
use riskdesk_storage::cases::{self, CaseFilter, CaseRow, EntryRow};
use riskdesk_storage::customers::{self, CustomerRow};
use riskdesk_storage::subscriptions::{self, SubscriptionRow};
use riskdesk_storage::time::to_micros;
use serde::Deserialize;
use uuid::Uuid;

use super::{UiForm, as_of, claim, done, opt, parse_id, render};
use crate::UiState;
use crate::error::UiError;
use crate::session::Staff;
use crate::svg;
use crate::view::Layout;

pub const PAGE: u32 = 50;

/// The queue's filters, as the URL carries them (so back, bookmark and share work).
#[derive(Deserialize, Default, Clone, Debug)]
pub struct QueueQuery {
    pub view: Option<String>,
    pub status: Option<String>,
    pub kind: Option<String>,
    pub severity: Option<String>,
    pub assignee: Option<String>,
    pub overdue: Option<String>,
    pub customer: Option<String>,
    pub as_of: Option<String>,
    pub cursor: Option<String>,
    /// Set after "take next" found nothing.
    pub none: Option<String>,
    /// Set after a bulk change: how many cases it changed.
    pub changed: Option<u32>,
}

/// The saved views: named filters, each a URL.
pub const VIEWS: [(&str, &str); 5] = [
    ("all", "view-all"),
    ("mine", "view-mine"),
    ("unassigned", "view-unassigned"),
    ("overdue", "view-overdue"),
    ("critical", "view-critical"),
];

impl QueueQuery {
    /// The storage filter this view and these fields ask for.
    pub fn filter(&self, staff: &Staff, at: i64) -> Result<CaseFilter, UiError> {
        let mut f = CaseFilter {
            status: opt(&self.status).map(str::to_owned),
            kind: opt(&self.kind).map(str::to_owned),
            severity: opt(&self.severity).map(str::to_owned),
            assignee: opt(&self.assignee).map(str::to_owned),
            customer: match opt(&self.customer) {
                Some(c) => Some(
                    c.parse()
                        .map_err(|_| UiError::Invalid("customer: is not a customer id".into()))?,
                ),
                None => None,
            },
            overdue_at: opt(&self.overdue).map(|_| at),
            active_only: opt(&self.status).is_none(),
            after: None,
        };
        if let Some(s) = &f.status
            && CaseStatus::parse(s).is_none()
        {
            return Err(UiError::Invalid(format!(
                "status: '{s}' is not a case status"
            )));
        }
        if let Some(k) = &f.kind
            && CaseKind::parse(k).is_none()
        {
            return Err(UiError::Invalid(format!("kind: '{k}' is not a case kind")));
        }
        if let Some(s) = &f.severity
            && !riskdesk_domain::response::case::SEVERITIES.contains(&s.as_str())
        {
            return Err(UiError::Invalid(format!(
                "severity: '{s}' is not a severity"
            )));
        }
        match opt(&self.view) {
            None | Some("all") => {}
            Some("mine") => f.assignee = Some(staff.assignee().to_owned()),
            Some("unassigned") => {}
            Some("overdue") => f.overdue_at = Some(at),
            Some("critical") => f.severity = Some("critical".into()),
            Some(v) => return Err(UiError::Invalid(format!("view: '{v}' is not a view"))),
        }
        if let Some(c) = opt(&self.cursor) {
            f.after = Some(decode_cursor(c).ok_or_else(|| {
                UiError::Invalid("cursor: is not a cursor this page made".into())
            })?);
        }
        Ok(f)
    }

    /// The query string of these filters, without the cursor and the one-time flags.
    pub fn query_string(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("view", &self.view),
            ("status", &self.status),
            ("kind", &self.kind),
            ("severity", &self.severity),
            ("assignee", &self.assignee),
            ("overdue", &self.overdue),
            ("customer", &self.customer),
            ("as_of", &self.as_of),
        ] {
            if let Some(v) = opt(v) {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }
}

fn encode_cursor(due: i64, id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{due}:{id}"))
}

fn decode_cursor(c: &str) -> Option<(i64, Uuid)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (d, id) = s.split_once(':')?;
    Some((d.parse().ok()?, id.parse().ok()?))
}

pub struct CaseLine {
    pub id: Uuid,
    pub title: String,
    pub kind: String,
    pub severity: String,
    pub status: String,
    pub assignee: Option<String>,
    pub customer: Option<String>,
    pub due: String,
    pub due_at: String,
    pub overdue: bool,
}

#[derive(Template)]
#[template(path = "cases.html")]
struct QueuePage {
    l: Layout,
    q: QueueQuery,
    view: String,
    rows: Vec<CaseLine>,
    next: Option<String>,
    bulk_message: Option<String>,
    qs: String,
    statuses: Vec<&'static str>,
    kinds: Vec<&'static str>,
    severities: Vec<&'static str>,
    views: [(&'static str, &'static str); 5],
}

pub async fn lines(
    s: &UiState,
    staff: &Staff,
    rows: &[CaseRow],
    at: i64,
) -> Result<Vec<CaseLine>, UiError> {
    let t = staff.t();
    let mut ids: Vec<Uuid> = rows.iter().filter_map(|r| r.customer_id).collect();
    ids.sort();
    ids.dedup();
    let names: std::collections::HashMap<Uuid, String> =
        customers::get_many(s.app.db(), staff.tenant(), &ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
    Ok(rows
        .iter()
        .map(|r| {
            let closed = matches!(r.status.as_str(), "resolved" | "dismissed");
            CaseLine {
                id: r.id,
                title: r.title.clone(),
                kind: t.label("case-kind", &r.kind),
                severity: r.severity.clone(),
                status: t.label("case-status", &r.status),
                assignee: r.assignee.clone(),
                customer: r.customer_id.and_then(|c| names.get(&c).cloned()),
                due: if closed {
                    String::new()
                } else {
                    t.relative(r.due_at, at)
                },
                due_at: t.datetime(r.due_at),
                overdue: !closed && r.due_at < at,
            }
        })
        .collect())
}

pub async fn queue(
    State(s): State<UiState>,
    staff: Staff,
    Query(q): Query<QueueQuery>,
) -> Result<Response, UiError> {
    staff.require(Permission::ReadCustomers)?;
    let (at_ts, as_of_text) = as_of(&q.as_of, s.app.clock.now())?;
    let at = to_micros(at_ts);
    let f = q.filter(&staff, at)?;
    let unassigned_only = opt(&q.view) == Some("unassigned");
    let mut rows = cases::list(s.app.db(), staff.tenant(), &f, PAGE + 1).await?;
    if unassigned_only {
        rows.retain(|r| r.assignee.is_none());
    }
    let next = (rows.len() > PAGE as usize).then(|| {
        rows.truncate(PAGE as usize);
        let last = rows.last().expect("a full page has a last row");
        encode_cursor(last.due_at, last.id)
    });
    let l = Layout::new(&s, &staff, "cases").with_as_of(as_of_text, at);
    let lines = lines(&s, &staff, &rows, at).await?;
    render(&QueuePage {
        l,
        bulk_message: q.changed.map(|n| staff.t().n("bulk-done", i64::from(n))),
        view: opt(&q.view).unwrap_or("all").to_owned(),
        qs: q.query_string(),
        q,
        rows: lines,
        next,
        statuses: CaseStatus::ALL.iter().map(|s| s.as_str()).collect(),
        kinds: CaseKind::ALL.iter().map(|k| k.as_str()).collect(),
        severities: riskdesk_domain::response::case::SEVERITIES.to_vec(),
        views: VIEWS,
    })
}

#[derive(Deserialize)]
pub struct TakeNextForm {
    key: String,
    #[serde(flatten)]
    q: QueueQuery,
}

/// Takes the most urgent unassigned case of the view for the person and opens it.
pub async fn take_next(
    State(s): State<UiState>,
    staff: Staff,
    UiForm(f): UiForm<TakeNextForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::WorkCases)?;
    let now = s.app.clock.now();
    let mut view = f.q.filter(&staff, to_micros(now))?;
    view.assignee = None;
    let mut tx = s.app.begin().await?;
    if let Some(r) = claim(&mut tx, &staff, &f.key, "take-next", now).await? {
        return Ok(r);
    }
    let taken = response::take_next(
        &mut tx,
        staff.tenant(),
        &staff.actor(),
        &view,
        staff.assignee(),
        now,
    )
    .await?;
    let to = match taken {
        Some(c) => format!("/ui/cases/{}", c.id),
        None => {
            let qs = f.q.query_string();
            format!(
                "/ui/cases?{qs}{}none=1",
                if qs.is_empty() { "" } else { "&" }
            )
        }
    };
    done(tx, &staff, &f.key, &to).await
}

/// Bulk work on the selected cases, in one unit of work (all or nothing): assign, change the
/// status, or comment.
pub async fn bulk(
    State(s): State<UiState>,
    staff: Staff,
    body: axum::body::Bytes,
) -> Result<Response, UiError> {
    let mut ids = Vec::new();
    let (mut key, mut op, mut assignee, mut status, mut text, mut back) =
        (None, None, None, None, None, None);
    for (k, v) in form_urlencoded::parse(&body) {
        if let Some(m) = riskdesk_app::kernel::json::control_character_in_parameter(&v) {
            return Err(UiError::Invalid(format!("{k}: {m}")));
        }
        let v = v.into_owned();
        match k.as_ref() {
            "ids" => {
                ids.push(parse_id(&v).map_err(|_| UiError::Invalid("ids: not case ids".into()))?)
            }
            "key" => key = Some(v),
            "op" => op = Some(v),
            "assignee" => assignee = Some(v),
            "status" => status = Some(v),
            "text" => text = Some(v),
            "back" => back = Some(v),
            _ => {}
        }
    }
    let key = key.ok_or_else(|| UiError::Invalid("the form has no one-time key".into()))?;
    if ids.is_empty() {
        return Err(UiError::Invalid("select at least one case (x)".into()));
    }
    if ids.len() > 500 {
        return Err(UiError::Invalid("at most 500 cases at once".into()));
    }
    let op = op.unwrap_or_default();
    let required = if op == "comment" {
        Permission::CommentOnCases
    } else {
        Permission::WorkCases
    };
    staff.require(required)?;
    let now = s.app.clock.now();
    let tenant = staff.tenant();
    let actor = staff.actor();
    let what = format!("bulk {op} {ids:?} {assignee:?} {status:?} {text:?}");
    let mut tx = s.app.begin().await?;
    if let Some(r) = claim(&mut tx, &staff, &key, &what, now).await? {
        return Ok(r);
    }
    for id in &ids {
        match op.as_str() {
            "assign_me" => {
                response::assign(&mut tx, tenant, &actor, *id, Some(staff.assignee()), now).await?;
            }
            "assign" => {
                let a = opt(&assignee)
                    .ok_or_else(|| UiError::Invalid("assignee: who is to take them?".into()))?;
                response::assign(&mut tx, tenant, &actor, *id, Some(a), now).await?;
            }
            "unassign" => {
                response::assign(&mut tx, tenant, &actor, *id, None, now).await?;
            }
            "status" => {
                let to = opt(&status)
                    .and_then(CaseStatus::parse)
                    .ok_or_else(|| UiError::Invalid("status: choose a case status".into()))?;
                let note = super::note("note", &text)?;
                response::set_status(&mut tx, tenant, &actor, *id, to, note.as_deref(), now)
                    .await
                    .map_err(|e| with_case(e, *id))?;
            }
            "comment" => {
                let t = riskdesk_domain::customer::parse_note(opt(&text).unwrap_or(""))
                    .map_err(|e| UiError::Invalid(format!("comment: {}", e.0)))?;
                response::comment(&mut tx, tenant, &actor, *id, &t, now).await?;
            }
            other => {
                return Err(UiError::Invalid(format!(
                    "op: '{other}' is not a bulk operation"
                )));
            }
        }
    }
    let back = back
        .filter(|b| b.starts_with("/ui/cases"))
        .unwrap_or_else(|| "/ui/cases".into());
    let sep = if back.contains('?') { '&' } else { '?' };
    done(
        tx,
        &staff,
        &key,
        &format!("{back}{sep}changed={}", ids.len()),
    )
    .await
}

fn with_case(e: riskdesk_app::kernel::error::AppError, id: Uuid) -> UiError {
    match UiError::from(e) {
        UiError::Conflict(m) => UiError::Conflict(format!("case {id}: {m}")),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// The workspace

pub struct SubView {
    pub row: SubscriptionRow,
    pub provider_id: Option<String>,
    pub previews: Vec<ActionPreview>,
}

pub struct TimelineItem {
    pub at: String,
    pub kind: String,
    pub kind_label: String,
    pub actor: String,
    pub text: String,
    pub href: Option<String>,
}

pub struct AlertView {
    pub row: AlertRow,
    pub values: Vec<(String, String)>,
    pub rule_text: Option<String>,
    pub raw: String,
}

#[derive(Template)]
#[template(path = "case.html")]
struct Workspace {
    l: Layout,
    case: CaseRow,
    due: String,
    overdue: bool,
    customer: Option<CustomerRow>,
    exposure: Option<ExposureOut>,
    gauge: Option<String>,
    budget_bar: Option<String>,
    subs: Vec<SubView>,
    customer_previews: Vec<ActionPreview>,
    actions: Vec<ActionRow>,
    timeline: Vec<TimelineItem>,
    alerts: Vec<AlertView>,
    statuses: Vec<&'static str>,
    unfinished: bool,
    spend_json: String,
}

fn alert_view(a: AlertRow) -> AlertView {
    let ev: serde_json::Value = serde_json::from_str(&a.evidence_json).unwrap_or_default();
    let mut values = Vec::new();
    if let Some(obj) = ev.get("values").and_then(|v| v.as_object()) {
        for (k, v) in obj {
            values.push((k.clone(), v.to_string()));
        }
    } else if let Some(obj) = ev.as_object() {
        for (k, v) in obj {
            if !v.is_object() && !v.is_array() {
                values.push((k.clone(), v.to_string()));
            }
        }
    }
    let rule_text = ev
        .get("condition")
        .or_else(|| ev.get("rule_text"))
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    AlertView {
        raw: serde_json::to_string_pretty(&ev).unwrap_or_default(),
        row: a,
        values,
        rule_text,
    }
}

fn timeline_item(staff: &Staff, e: &EntryRow) -> TimelineItem {
    let t = staff.t();
    let href = match (e.kind.as_str(), e.ref_id) {
        ("action", Some(id)) | ("proposal", Some(id)) => Some(format!("/ui/actions/{id}")),
        _ => None,
    };
    TimelineItem {
        at: t.datetime(e.at),
        kind: e.kind.clone(),
        kind_label: t.label("entry", &e.kind),
        actor: e.actor.clone(),
        text: e.text.clone().unwrap_or_default(),
        href,
    }
}

/// What happened to the customer outside the case: the dunning steps sent, the payments, the
/// sign-up assessment.
async fn customer_story(
    s: &UiState,
    staff: &Staff,
    c: &CustomerRow,
) -> Result<Vec<(i64, TimelineItem)>, UiError> {
    let t = staff.t();
    let db = s.app.db();
    let tenant = staff.tenant();
    let mut out = Vec::new();
    for st in riskdesk_storage::dunning::steps_of_customer(db, tenant, c.id).await? {
        out.push((
            st.at,
            TimelineItem {
                at: t.datetime(st.at),
                kind: "dunning".into(),
                kind_label: t.label("entry", "dunning"),
                actor: "system:dunning".into(),
                text: st.step,
                href: Some(format!("/ui/invoices/{}", st.invoice_id)),
            },
        ));
    }
    for p in riskdesk_storage::billing::payments_of_customer(db, tenant, c.id).await? {
        out.push((
            p.received_at,
            TimelineItem {
                at: t.datetime(p.received_at),
                kind: "payment".into(),
                kind_label: t.label("entry", "payment"),
                actor: String::new(),
                text: format!("{} ({})", t.money(p.amount_minor, &p.currency), p.status),
                href: p.invoice_id.map(|i| format!("/ui/invoices/{i}")),
            },
        ));
    }
    if let Some(sid) = c.signup_id
        && let Ok(su) = riskdesk_storage::signups::get(db, tenant, sid).await
    {
        out.push((
            su.created_at,
            TimelineItem {
                at: t.datetime(su.created_at),
                kind: "signup".into(),
                kind_label: t.label("entry", "signup"),
                actor: String::new(),
                text: format!("{} · {}", t.label("decision", &su.decision), su.score),
                href: Some(format!("/ui/signups/{sid}")),
            },
        ));
    }
    Ok(out)
}

pub async fn workspace(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<AsOfQuery>,
) -> Result<Response, UiError> {
    staff.require(Permission::ReadCustomers)?;
    let id = parse_id(&id)?;
    let db = s.app.db();
    let tenant = staff.tenant();
    let (at_ts, as_of_text) = as_of(&q.as_of, s.app.clock.now())?;
    let at = to_micros(at_ts);
    let case = cases::get(db, tenant, id).await?;
    let entries = cases::entries(db, tenant, id).await?;
    let acts = actions::of_case(db, tenant, id).await?;
    let t = staff.t();
    let mut customer = None;
    let mut exposure = None;
    let mut gauge = None;
    let mut budget_bar = None;
    let mut story: Vec<(i64, TimelineItem)> = Vec::new();
    let mut subs = Vec::new();
    let mut customer_previews = Vec::new();
    let mut alerts_v = Vec::new();
    let mut spend_json = "null".to_owned();
    if let Some(cid) = case.customer_id {
        let c = customers::get(db, tenant, CustomerId(cid)).await?;
        let e = exposure_of(db, tenant, &c, at_ts).await?;
        gauge = Some(svg::exposure_gauge(&t, &e));
        exposure = Some(e);
        budget_bar = crate::pages::customers::budget_svg(&s, &t, tenant, cid, at_ts).await?;
        story = customer_story(&s, &staff, &c).await?;
        for sub in
            subscriptions::list_for_customer(db, tenant, CustomerId(cid), None, None, 200).await?
        {
            let link = riskdesk_storage::provider::subscription_link(db, tenant, sub.id).await?;
            let mut previews = Vec::new();
            for kind in [
                ActionKind::Suspend,
                ActionKind::DisableAccess,
                ActionKind::Reactivate,
                ActionKind::Cancel,
            ] {
                previews.push(preview(db, tenant, cid, Some(sub.id), kind, None).await?);
            }
            subs.push(SubView {
                provider_id: link.map(|l| l.provider_subscription_id),
                row: sub,
                previews,
            });
        }
        for kind in [
            ActionKind::RequirePrepayment,
            ActionKind::RevokeAdminAccess,
            ActionKind::MarkFraudulent,
        ] {
            customer_previews.push(preview(db, tenant, cid, None, kind, None).await?);
        }
        alerts_v = alerts::list(
            db,
            tenant,
            &AlertFilter {
                customer_id: Some(cid),
                ..Default::default()
            },
            20,
        )
        .await?
        .into_iter()
        .map(alert_view)
        .collect();
        spend_json = crate::pages::customers::spend_chart_json(&s, tenant, cid, at).await?;
        customer = Some(c);
    }
    let closed = matches!(case.status.as_str(), "resolved" | "dismissed");
    let unfinished = acts
        .iter()
        .any(|a| matches!(a.status.as_str(), "awaiting_approval" | "pending"));
    let l = Layout::new(&s, &staff, "cases").with_as_of(as_of_text, at);
    render(&Workspace {
        due: if closed {
            String::new()
        } else {
            t.relative(case.due_at, at)
        },
        overdue: !closed && case.due_at < at,
        timeline: {
            // The case's own entries and the customer's story (dunning steps, payments, the
            // sign-up assessment), newest first.
            let mut all: Vec<(i64, TimelineItem)> = entries
                .iter()
                .map(|e| (e.at, timeline_item(&staff, e)))
                .chain(story)
                .collect();
            all.sort_by(|a, b| b.0.cmp(&a.0));
            all.into_iter().map(|(_, i)| i).collect()
        },
        l,
        case,
        customer,
        exposure,
        gauge,
        budget_bar,
        subs,
        customer_previews,
        actions: acts,
        alerts: alerts_v,
        statuses: CaseStatus::ALL.iter().map(|s| s.as_str()).collect(),
        unfinished,
        spend_json,
    })
}

#[derive(Deserialize)]
pub struct AsOfQuery {
    pub as_of: Option<String>,
}

#[derive(Deserialize)]
pub struct AssignForm {
    key: String,
    /// "me", or an email; blank unassigns.
    assignee: Option<String>,
}

pub async fn assign(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    UiForm(f): UiForm<AssignForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::WorkCases)?;
    let id = parse_id(&id)?;
    let now = s.app.clock.now();
    let who = match opt(&f.assignee) {
        Some("me") => Some(staff.assignee().to_owned()),
        Some(a) if a.chars().count() <= 200 => Some(a.to_owned()),
        Some(_) => return Err(UiError::Invalid("assignee: at most 200 characters".into())),
        None => None,
    };
    let mut tx = s.app.begin().await?;
    if let Some(r) = claim(
        &mut tx,
        &staff,
        &f.key,
        &format!("assign {id} {who:?}"),
        now,
    )
    .await?
    {
        return Ok(r);
    }
    response::assign(
        &mut tx,
        staff.tenant(),
        &staff.actor(),
        id,
        who.as_deref(),
        now,
    )
    .await?;
    done(tx, &staff, &f.key, &format!("/ui/cases/{id}")).await
}

#[derive(Deserialize)]
pub struct StatusForm {
    key: String,
    status: String,
    note: Option<String>,
}

pub async fn set_status(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    UiForm(f): UiForm<StatusForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::WorkCases)?;
    let id = parse_id(&id)?;
    let to = CaseStatus::parse(&f.status)
        .ok_or_else(|| UiError::Invalid(format!("status: '{}' is not a case status", f.status)))?;
    let note = super::note("note", &f.note)?;
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(r) = claim(
        &mut tx,
        &staff,
        &f.key,
        &format!("status {id} {}", f.status),
        now,
    )
    .await?
    {
        return Ok(r);
    }
    response::set_status(
        &mut tx,
        staff.tenant(),
        &staff.actor(),
        id,
        to,
        note.as_deref(),
        now,
    )
    .await?;
    done(tx, &staff, &f.key, &format!("/ui/cases/{id}")).await
}

#[derive(Deserialize)]
pub struct CommentForm {
    key: String,
    text: String,
}

pub async fn comment(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    UiForm(f): UiForm<CommentForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::CommentOnCases)?;
    let id = parse_id(&id)?;
    let text = riskdesk_domain::customer::parse_note(&f.text)
        .map_err(|e| UiError::Invalid(format!("comment: {}", e.0)))?;
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(r) = claim(
        &mut tx,
        &staff,
        &f.key,
        &format!("comment {id} {text}"),
        now,
    )
    .await?
    {
        return Ok(r);
    }
    response::comment(&mut tx, staff.tenant(), &staff.actor(), id, &text, now).await?;
    done(tx, &staff, &f.key, &format!("/ui/cases/{id}#timeline")).await
}

#[derive(Deserialize)]
pub struct ActForm {
    key: String,
    kind: String,
    subscription_id: Option<String>,
    reason: Option<String>,
    note: Option<String>,
    amount: Option<String>,
    currency: Option<String>,
    /// "apply" or "propose".
    mode: String,
}

/// Takes an action from the case now, or proposes it for another person's approval.
pub async fn act(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    UiForm(f): UiForm<ActForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::WorkCases)?;
    let id = parse_id(&id)?;
    let kind = ActionKind::parse(&f.kind)
        .ok_or_else(|| UiError::Invalid(format!("kind: '{}' is not an action", f.kind)))?;
    let reason = match opt(&f.reason) {
        None if kind == ActionKind::Reactivate => Reason::Resolved,
        None => Reason::Investigation,
        Some(r) => Reason::parse(r)
            .ok_or_else(|| UiError::Invalid(format!("reason: '{r}' is not a reason")))?,
    };
    let subscription = match opt(&f.subscription_id) {
        Some(s) => Some(
            s.parse::<Uuid>()
                .map_err(|_| UiError::Invalid("subscription_id: not a subscription id".into()))?,
        ),
        None => None,
    };
    let note = super::note("note", &f.note)?;
    let amount = match (opt(&f.amount), opt(&f.currency)) {
        (None, None) => None,
        (Some(a), Some(c)) => {
            let cur =
                Currency::parse(c).map_err(|e| UiError::Invalid(format!("currency: {}", e.0)))?;
            Some(Money::parse(a, cur).map_err(|e| UiError::Invalid(format!("amount: {}", e.0)))?)
        }
        _ => return Err(UiError::Invalid("amount and currency go together".into())),
    };
    let propose = match f.mode.as_str() {
        "apply" => false,
        "propose" => true,
        m => {
            return Err(UiError::Invalid(format!(
                "mode: '{m}' is neither apply nor propose"
            )));
        }
    };
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    let what = format!(
        "act {id} {} {subscription:?} {} {propose}",
        kind.as_str(),
        reason.as_str()
    );
    if let Some(r) = claim(&mut tx, &staff, &f.key, &what, now).await? {
        return Ok(r);
    }
    let row = response::act_on_case(
        &mut tx,
        staff.tenant(),
        &staff.actor(),
        id,
        &ActionRequest {
            kind,
            subscription,
            amount,
            reason,
            note,
        },
        propose,
        now,
    )
    .await?;
    done(
        tx,
        &staff,
        &f.key,
        &format!("/ui/cases/{id}#action-{}", row.id),
    )
    .await
}
