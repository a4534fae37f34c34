//! Approvals (maker-checker): proposals by others with their preview, approve or reject with a
//! note; one's own proposals listed apart, not approvable. And an action's live provider status.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use riskdesk_app::response::preview::{ActionPreview, preview};
use riskdesk_domain::Permission;
use riskdesk_domain::response::ActionKind;
use riskdesk_storage::actions::{self, ActionFilter, ActionRow};
use riskdesk_storage::customers;
use serde::Deserialize;
use uuid::Uuid;

use super::{UiForm, claim, done, opt, parse_id, render};
use crate::UiState;
use crate::error::UiError;
use crate::session::Staff;
use crate::view::Layout;

pub struct Proposal {
    pub a: ActionRow,
    pub customer: String,
    pub preview: Option<ActionPreview>,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    l: Layout,
    others: Vec<Proposal>,
    mine: Vec<Proposal>,
    failed: Vec<Proposal>,
}

async fn proposals(
    s: &UiState,
    staff: &Staff,
    rows: Vec<ActionRow>,
) -> Result<Vec<Proposal>, UiError> {
    let db = s.app.db();
    let tenant = staff.tenant();
    let mut ids: Vec<Uuid> = rows.iter().map(|a| a.customer_id).collect();
    ids.sort();
    ids.dedup();
    let names: std::collections::HashMap<Uuid, String> = customers::get_many(db, tenant, &ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let mut out = Vec::new();
    for a in rows {
        let p = match ActionKind::parse(&a.kind) {
            Some(k) if a.status == "awaiting_approval" => Some(
                preview(
                    db,
                    tenant,
                    a.customer_id,
                    a.subscription_id,
                    k,
                    riskdesk_domain::Reason::parse(&a.reason),
                )
                .await?,
            ),
            _ => None,
        };
        out.push(Proposal {
            customer: names.get(&a.customer_id).cloned().unwrap_or_default(),
            a,
            preview: p,
        });
    }
    Ok(out)
}

pub async fn list(State(s): State<UiState>, staff: Staff) -> Result<Response, UiError> {
    staff.require(Permission::ReadCustomers)?;
    let db = s.app.db();
    let filter = |status: &str| ActionFilter {
        status: Some(status.into()),
        customer: None,
        case_id: None,
    };
    let awaiting = actions::list(db, staff.tenant(), &filter("awaiting_approval"), 200).await?;
    let me = staff.actor_id();
    let (mine, others): (Vec<_>, Vec<_>) = awaiting.into_iter().partition(|a| a.proposed_by == me);
    let failed = actions::list(db, staff.tenant(), &filter("failed"), 100).await?;
    render(&ApprovalsPage {
        l: Layout::new(&s, &staff, "approvals"),
        others: proposals(&s, &staff, others).await?,
        mine: proposals(&s, &staff, mine).await?,
        failed: proposals(&s, &staff, failed).await?,
    })
}

#[derive(Deserialize)]
pub struct DecideForm {
    key: String,
    /// "approve" or "reject".
    decision: String,
    note: Option<String>,
    back: Option<String>,
}

pub async fn decide(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    UiForm(f): UiForm<DecideForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::ApproveActions)?;
    let id = parse_id(&id)?;
    let approve = match f.decision.as_str() {
        "approve" => true,
        "reject" => false,
        d => {
            return Err(UiError::Invalid(format!(
                "decision: '{d}' is neither approve nor reject"
            )));
        }
    };
    let note = super::note("note", &f.note)?;
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(r) = claim(
        &mut tx,
        &staff,
        &f.key,
        &format!("decide {id} {approve}"),
        now,
    )
    .await?
    {
        return Ok(r);
    }
    let row = riskdesk_app::response::decide(
        &mut tx,
        staff.tenant(),
        &staff.actor(),
        id,
        approve,
        note.as_deref(),
        now,
    )
    .await?;
    let to = match (opt(&f.back), row.case_id) {
        (Some(b), _) if b.starts_with("/ui/") => b.to_owned(),
        (_, Some(c)) => format!("/ui/cases/{c}#action-{id}"),
        _ => "/ui/approvals".into(),
    };
    done(tx, &staff, &f.key, &to).await
}

#[derive(Deserialize)]
pub struct KeyForm {
    key: String,
}

/// Tries a failed or pending provider call again now.
pub async fn retry(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    UiForm(f): UiForm<KeyForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::WorkCases)?;
    let id = parse_id(&id)?;
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(r) = claim(&mut tx, &staff, &f.key, &format!("retry {id}"), now).await? {
        return Ok(r);
    }
    let row =
        riskdesk_app::provider::retry_now(&mut tx, staff.tenant(), &staff.actor(), id, now).await?;
    let to = match row.case_id {
        Some(c) => format!("/ui/cases/{c}#action-{id}"),
        None => "/ui/approvals#failed".into(),
    };
    done(tx, &staff, &f.key, &to).await
}

#[derive(Template)]
#[template(path = "action_status.html")]
struct StatusFragment {
    l: Layout,
    a: ActionRow,
}

#[derive(Template)]
#[template(path = "action.html")]
struct ActionPage {
    l: Layout,
    a: ActionRow,
    customer: String,
    preview: Option<ActionPreview>,
}

#[derive(Deserialize)]
pub struct FragmentQuery {
    fragment: Option<String>,
}

/// An action: its whole page, or (`?fragment=1`, polled by htmx while pending) its status alone.
pub async fn action_status(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<FragmentQuery>,
) -> Result<Response, UiError> {
    staff.require(Permission::ReadCustomers)?;
    let id = parse_id(&id)?;
    let a = actions::get(s.app.db(), staff.tenant(), id).await?;
    let l = Layout::new(&s, &staff, "approvals");
    if q.fragment.is_some() {
        return render(&StatusFragment { l, a });
    }
    let mut p = proposals(&s, &staff, vec![a]).await?;
    let p = p.pop().expect("one action in, one out");
    render(&ActionPage {
        l,
        a: p.a,
        customer: p.customer,
        preview: p.preview,
    })
}
