//! Staff accounts, for admins: list, create, change role, disable and enable again.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use riskdesk_app::accounts::staff::{self, ChangeUser, CreateUser};
use riskdesk_domain::{Locale, Permission, Role};
use riskdesk_storage::staff::StaffUserRow;
use serde::Deserialize;

use super::{UiForm, claim, done, opt, parse_id, render};
use crate::UiState;
use crate::error::UiError;
use crate::session::Staff;
use crate::view::Layout;

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    l: Layout,
    users: Vec<StaffUserRow>,
    roles: Vec<&'static str>,
}

pub async fn users(State(s): State<UiState>, staff: Staff) -> Result<Response, UiError> {
    staff.require(Permission::ManageStaff)?;
    render(&UsersPage {
        l: Layout::new(&s, &staff, "admin"),
        users: staff::users(s.app.db(), staff.tenant()).await?,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
    })
}

#[derive(Deserialize)]
pub struct CreateForm {
    key: String,
    email: String,
    name: String,
    role: String,
    password: String,
    locale: Option<String>,
}

pub async fn create_user(
    State(s): State<UiState>,
    staff: Staff,
    UiForm(f): UiForm<CreateForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::ManageStaff)?;
    let role = Role::parse(&f.role)
        .ok_or_else(|| UiError::Invalid(format!("role: '{}' is not a role", f.role)))?;
    let locale = match opt(&f.locale) {
        Some(l) => Locale::parse(l).map_err(|e| UiError::Invalid(format!("locale: {}", e.0)))?,
        None => Locale::En,
    };
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(r) = claim(
        &mut tx,
        &staff,
        &f.key,
        &format!("create user {}", f.email),
        now,
    )
    .await?
    {
        return Ok(r);
    }
    staff::create_user(
        &mut tx,
        staff.tenant(),
        &staff.actor(),
        &CreateUser {
            email: &f.email,
            name: &f.name,
            role,
            password: Some(&f.password),
            locale,
        },
        now,
    )
    .await?;
    done(tx, &staff, &f.key, "/ui/admin/users").await
}

#[derive(Deserialize)]
pub struct ChangeForm {
    key: String,
    role: Option<String>,
    /// "disable" or "enable".
    state: Option<String>,
}

pub async fn change_user(
    State(s): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    UiForm(f): UiForm<ChangeForm>,
) -> Result<Response, UiError> {
    staff.require(Permission::ManageStaff)?;
    let id = parse_id(&id)?;
    let role = match opt(&f.role) {
        Some(r) => Some(
            Role::parse(r).ok_or_else(|| UiError::Invalid(format!("role: '{r}' is not a role")))?,
        ),
        None => None,
    };
    let disabled = match opt(&f.state) {
        Some("disable") => Some(true),
        Some("enable") => Some(false),
        Some(x) => {
            return Err(UiError::Invalid(format!(
                "state: '{x}' is neither disable nor enable"
            )));
        }
        None => None,
    };
    if id == staff.s.user.id && (disabled == Some(true) || role.is_some_and(|r| r != Role::Admin)) {
        return Err(UiError::Conflict(
            "you cannot disable yourself or drop your own admin role: ask another admin".into(),
        ));
    }
    let now = s.app.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(r) = claim(
        &mut tx,
        &staff,
        &f.key,
        &format!("change user {id} {role:?} {disabled:?}"),
        now,
    )
    .await?
    {
        return Ok(r);
    }
    staff::update_user(
        &mut tx,
        staff.tenant(),
        &staff.actor(),
        id,
        &ChangeUser {
            role,
            disabled,
            ..Default::default()
        },
        now,
    )
    .await?;
    done(tx, &staff, &f.key, "/ui/admin/users").await
}
