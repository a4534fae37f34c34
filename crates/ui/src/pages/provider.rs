//! Partner Center connections, for admins: each cloud instance's consent (the Secure
//! Application Model) and what the poll pulls from it; connect, reconnect, disconnect.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use riskdesk_app::provider::consent::{self, Connection};
use riskdesk_domain::Permission;
use serde::Deserialize;

use super::{UiForm, claim, done, render};
use crate::UiState;
use crate::error::UiError;
use crate::session::Staff;
use crate::view::Layout;

/// A connection as the page shows it, its times written out for the reader.
struct Row {
    c: Connection,
    token_expires: Option<String>,
    connected: Option<String>,
    lost: Option<String>,
    /// (feed, position, when it last moved).
    pulls: Vec<(String, String, String)>,
}

fn micros(t: &Option<String>) -> Option<i64> {
    t.as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_microsecond())
}

#[derive(Template)]
#[template(path = "provider.html")]
struct ProviderPage {
    l: Layout,
    rows: Vec<Row>,
    /// The staff member may connect and disconnect (an operator tenant's admin).
    may_change: bool,
    /// The instance just connected (the consent callback sent the browser back here).
    connected: Option<String>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    connected: Option<String>,
}

pub async fn page(
    State(s): State<UiState>,
    staff: Staff,
    Query(q): Query<PageQuery>,
) -> Result<Response, UiError> {
    staff.require(Permission::ManageIntegrations)?;
    let list = consent::connections(
        &s.app.ctx,
        &s.app.provider,
        s.app.options.provider_token_keys.as_ref(),
    )
    .await?;
    let (t, now) = (staff.t(), s.app.clock.now().as_microsecond());
    let rows = list
        .into_iter()
        .map(|c| Row {
            token_expires: micros(&c.token_expires_at).map(|at| t.relative(at, now)),
            connected: micros(&c.connected_at).map(|at| t.datetime(at)),
            lost: micros(&c.lost_at).map(|at| t.datetime(at)),
            pulls: c
                .pulls
                .iter()
                .map(|p| {
                    let at = micros(&Some(p.updated_at.clone())).unwrap_or(now);
                    (p.feed.clone(), p.position.clone(), t.relative(at, now))
                })
                .collect(),
            c,
        })
        .collect();
    render(&ProviderPage {
        l: Layout::new(&s, &staff, "provider"),
        rows,
        may_change: consent::may_operate(&s.app.options.provider_operators, staff.tenant()).is_ok(),
        connected: q.connected.filter(|i| i.len() <= 32),
    })
}

#[derive(Deserialize)]
pub struct KeyForm {
    key: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage {
    l: Layout,
    instance: String,
    authorize_url: String,
}

/// Starts a consent flow: a page with the link to Microsoft's consent page (a link, not a
/// redirect: the dashboard's forms never leave the site), which brings the browser back to
/// the Partner Center page.
pub async fn connect(
    State(s): State<UiState>,
    staff: Staff,
    Path(instance): Path<String>,
    UiForm(f): UiForm<KeyForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::ManageIntegrations)?;
    consent::may_operate(&s.app.options.provider_operators, staff.tenant())?;
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(r) = claim(&mut tx, &staff, &f.key, &format!("connect {instance}"), now).await? {
        return Ok(r);
    }
    let out = consent::start(
        &mut tx,
        &s.app.provider,
        s.app.options.provider_token_keys.as_ref(),
        staff.tenant(),
        &staff.actor(),
        &instance,
        now,
    )
    .await?;
    // A second submit of this form goes back to the page (this flow stays open ten minutes).
    let _ = done(tx, &staff, &f.key, "/ui/admin/provider").await?;
    render(&ConsentPage {
        l: Layout::new(&s, &staff, "provider"),
        instance: out.instance,
        authorize_url: out.authorize_url,
    })
}

/// Forgets an instance's consent (disconnecting twice changes nothing more).
pub async fn disconnect(
    State(s): State<UiState>,
    staff: Staff,
    Path(instance): Path<String>,
    UiForm(_f): UiForm<KeyForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::ManageIntegrations)?;
    consent::may_operate(&s.app.options.provider_operators, staff.tenant())?;
    consent::disconnect(
        &s.app.ctx,
        &s.app.provider,
        staff.tenant(),
        &staff.actor(),
        &instance,
        s.app.clock.now(),
    )
    .await?;
    Ok(super::see_other("/ui/admin/provider"))
}
