//! Sign-up review: the queue with score, decision and reason chips; the detail with every
//! reason and its points, the signals skipped and why, the credit terms an approval gives;
//! approve or reject, then straight to the next.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use riskdesk_app::onboarding::StoredOutcome;
use riskdesk_domain::Permission;
use riskdesk_storage::signups::{self, SignupRow};
use serde::Deserialize;
use uuid::Uuid;

use super::{UiForm, claim, done, parse_id, render};
use crate::UiState;
use crate::error::UiError;
use crate::session::Staff;
use crate::view::Layout;

pub struct SignupLine {
    pub row: SignupRow,
    pub outcome: Option<StoredOutcome>,
    pub company: String,
    pub email: String,
    pub country: String,
    pub waiting: String,
}

fn line(staff: &Staff, row: SignupRow, now: i64) -> SignupLine {
    let input: serde_json::Value = serde_json::from_str(&row.input_json).unwrap_or_default();
    let text = |p: &str| {
        input
            .pointer(p)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let company = {
        let c = text("/details/company_name");
        if c.is_empty() {
            text("/request/company/name")
        } else {
            c
        }
    };
    SignupLine {
        outcome: serde_json::from_str(&row.outcome_json).ok(),
        company,
        email: text("/request/contact/email"),
        country: text("/request/company/country"),
        waiting: staff.t().relative(row.created_at, now),
        row,
    }
}

#[derive(Template)]
#[template(path = "signups.html")]
struct QueuePage {
    l: Layout,
    rows: Vec<SignupLine>,
}

pub async fn queue(State(s): State<UiState>, staff: Staff) -> Result<Response, UiError> {
    staff.require(Permission::ReadCustomers)?;
    let l = Layout::new(&s, &staff, "signups");
    let rows = signups::list(
        s.app.db(),
        staff.tenant(),
        None,
        Some("pending_review"),
        None,
        200,
    )
    .await?
    .into_iter()
    .map(|r| line(&staff, r, l.now))
    .collect();
    render(&QueuePage { l, rows })
}

#[derive(Template)]
#[template(path = "signup.html")]
struct DetailPage {
    l: Layout,
    s: SignupLine,
    next: Option<Uuid>,
    raw: String,
}

pub async fn detail(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    staff.require(Permission::ReadCustomers)?;
    let id = parse_id(&id)?;
    let row = signups::get(s.app.db(), staff.tenant(), id).await?;
    let next = next_pending(&s, &staff, Some(id)).await?;
    let l = Layout::new(&s, &staff, "signups");
    let raw = serde_json::from_str::<serde_json::Value>(&row.input_json)
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or_default();
    render(&DetailPage {
        s: line(&staff, row, l.now),
        l,
        next,
        raw,
    })
}

/// The next sign-up waiting for review after `after` (in the queue's order), if any.
async fn next_pending(
    s: &UiState,
    staff: &Staff,
    after: Option<Uuid>,
) -> Result<Option<Uuid>, UiError> {
    let rows = signups::list(
        s.app.db(),
        staff.tenant(),
        None,
        Some("pending_review"),
        after,
        1,
    )
    .await?;
    Ok(rows.first().map(|r| r.id))
}

#[derive(Deserialize)]
pub struct ReviewForm {
    key: String,
    /// "approve" or "reject".
    decision: String,
    note: Option<String>,
}

pub async fn review(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    UiForm(f): UiForm<ReviewForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::WriteCustomers)?;
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
        &format!("review {id} {approve}"),
        now,
    )
    .await?
    {
        return Ok(r);
    }
    let row = riskdesk_app::onboarding::review_signup(
        &mut tx,
        staff.tenant(),
        &staff.actor(),
        id,
        approve,
        note.as_deref(),
        now,
    )
    .await?;
    // Straight to the next one waiting, or to the customer just created.
    let next = next_pending(&s, &staff, Some(id)).await?;
    let to = match (next, row.customer_id) {
        (Some(n), _) => format!("/ui/signups/{n}?done={id}"),
        (None, Some(c)) => format!("/ui/customers/{c}"),
        (None, None) => "/ui/signups".into(),
    };
    done(tx, &staff, &f.key, &to).await
}
