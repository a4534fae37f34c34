//! Home: what needs the person now, per role.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use riskdesk_domain::Permission;
use riskdesk_storage::actions::{self, ActionFilter};
use riskdesk_storage::{cases, signups};

use super::render;
use crate::UiState;
use crate::error::UiError;
use crate::session::Staff;
use crate::view::Layout;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    l: Layout,
    cards: Vec<Card>,
}

struct Card {
    id: &'static str,
    label: String,
    count: i64,
    href: String,
    /// Draws the eye when not zero.
    alarm: bool,
}

pub async fn home(State(s): State<UiState>, staff: Staff) -> Result<Response, UiError> {
    let l = Layout::new(&s, &staff, "home");
    let t = staff.t();
    let db = s.app.db();
    let tenant = staff.tenant();
    let [mine, breached, unassigned, credit] =
        cases::home_counts(db, tenant, staff.assignee(), l.now).await?;
    let mut cards = vec![
        Card {
            id: "my-cases",
            label: t.t("home-my-cases"),
            count: mine,
            href: format!(
                "/ui/cases?assignee={}",
                form_urlencoded::byte_serialize(staff.assignee().as_bytes()).collect::<String>()
            ),
            alarm: false,
        },
        Card {
            id: "sla-breached",
            label: t.t("home-sla-breached"),
            count: breached,
            href: "/ui/cases?overdue=on".into(),
            alarm: breached > 0,
        },
        Card {
            id: "unassigned",
            label: t.t("home-unassigned"),
            count: unassigned,
            href: "/ui/cases?view=unassigned".into(),
            alarm: false,
        },
        Card {
            id: "over-limit",
            label: t.t("home-over-limit"),
            count: credit,
            href: "/ui/cases?kind=credit_limit".into(),
            alarm: credit > 0,
        },
    ];
    if staff.can(Permission::ApproveActions) {
        let awaiting = actions::list(
            db,
            tenant,
            &ActionFilter {
                status: Some("awaiting_approval".into()),
                customer: None,
                case_id: None,
            },
            500,
        )
        .await?;
        let me = staff.actor_id();
        cards.push(Card {
            id: "awaiting-me",
            label: t.t("home-awaiting-approval"),
            count: awaiting.iter().filter(|a| a.proposed_by != me).count() as i64,
            href: "/ui/approvals".into(),
            alarm: false,
        });
    }
    let pending = signups::list(db, tenant, None, Some("pending_review"), None, 500).await?;
    cards.push(Card {
        id: "signups-waiting",
        label: t.t("home-signups-waiting"),
        count: pending.len() as i64,
        href: "/ui/signups".into(),
        alarm: false,
    });
    let failed = actions::list(
        db,
        tenant,
        &ActionFilter {
            status: Some("failed".into()),
            customer: None,
            case_id: None,
        },
        500,
    )
    .await?;
    cards.push(Card {
        id: "provider-failed",
        label: t.t("home-provider-failed"),
        count: failed.len() as i64,
        href: "/ui/approvals#failed".into(),
        alarm: !failed.is_empty(),
    });
    // Customers whose invoices the ladder acts on today (a step due, a lever to pull).
    let today = riskdesk_domain::billing::Day::of(s.app.clock.now());
    let due = riskdesk_storage::dunning::customers_due(db, tenant, today.0).await?;
    cards.push(Card {
        id: "dunning-today",
        label: t.t("home-dunning-today"),
        count: due.len() as i64,
        href: "/ui/invoices?filter=overdue".into(),
        alarm: false,
    });
    render(&HomePage { l, cards })
}
