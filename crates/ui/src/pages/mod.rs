//! The dashboard's pages. Reads go to storage (tenant-scoped, like the API's); every write is
//! one application function in one unit of work, claimed by the form's one-time key.

pub mod admin;
pub mod aging;
pub mod approvals;
pub mod auth;
pub mod cases;
pub mod customers;
pub mod entra;
pub mod home;
pub mod invoices;
pub mod provider;
pub mod signups;

use askama::Template;
use axum::extract::{FromRequest, Request};
use axum::response::{Html, IntoResponse, Redirect, Response};
use jiff::Timestamp;
use riskdesk_app::Uow;
use riskdesk_storage::idempotency::{self, Claim};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::UiError;
use crate::session::Staff;

/// A form body (`application/x-www-form-urlencoded`), read strictly: a bad field is a 422 page
/// naming it, never a panic or axum's plain-text rejection.
pub struct UiForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for UiForm<T> {
    type Rejection = UiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, UiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| UiError::Invalid(format!("could not read the form: {}", e.body_text())))?;
        for (k, v) in form_urlencoded::parse(&bytes) {
            if let Some(m) = riskdesk_app::kernel::json::control_character_in_parameter(&v) {
                return Err(UiError::Invalid(format!("{k}: {m}")));
            }
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(&bytes));
        serde_path_to_error_free(de).map(UiForm)
    }
}

fn serde_path_to_error_free<'de, T: DeserializeOwned>(
    de: serde_urlencoded::Deserializer<'de>,
) -> Result<T, UiError> {
    T::deserialize(de).map_err(|e| UiError::Invalid(format!("the form is not valid: {e}")))
}

/// Renders a page.
pub fn render(t: &impl Template) -> Result<Response, UiError> {
    Ok(Html(t.render()?).into_response())
}

/// Claims a form's one-time key in the unit of work. `Some(response)`: this form was applied
/// already (a double click, a resubmit) — answer as the first time did, and do nothing.
pub async fn claim(
    tx: &mut Uow,
    staff: &Staff,
    key: &str,
    what: &str,
    now: Timestamp,
) -> Result<Option<Response>, UiError> {
    let key = key.trim();
    if key.is_empty() || key.len() > 100 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(UiError::Invalid(
            "the form has no valid one-time key: reload the page and try again".into(),
        ));
    }
    let hash = hex::encode(Sha256::digest(what.as_bytes()));
    match idempotency::claim(tx, staff.tenant(), &stored_key(staff, key), &hash, now).await? {
        Claim::Fresh => Ok(None),
        Claim::Replay { body, .. } => Ok(Some(see_other(&body))),
        Claim::Mismatch => Err(UiError::Conflict(
            "this form was already sent with other values: reload the page".into(),
        )),
    }
}

fn stored_key(staff: &Staff, key: &str) -> String {
    format!("ui:{}:{key}", staff.s.user.id)
}

/// Records where the claimed form led, commits, and sends the browser there.
pub async fn done(mut tx: Uow, staff: &Staff, key: &str, to: &str) -> Result<Response, UiError> {
    idempotency::complete(
        &mut tx,
        staff.tenant(),
        &stored_key(staff, key.trim()),
        303,
        to,
    )
    .await?;
    tx.commit().await?;
    Ok(see_other(to))
}

pub fn see_other(to: &str) -> Response {
    Redirect::to(crate::error::safe_next(to)).into_response()
}

/// A path id: anything but a UUID is simply not found.
pub fn parse_id(s: &str) -> Result<Uuid, UiError> {
    s.parse().map_err(|_| UiError::NotFound)
}

/// An optional text field: blank is absent.
pub fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// An optional note field (blank is absent), checked as the API checks notes.
pub fn note(field: &str, raw: &Option<String>) -> Result<Option<String>, UiError> {
    opt(raw)
        .map(riskdesk_domain::customer::parse_note)
        .transpose()
        .map_err(|e| UiError::Invalid(format!("{field}: {}", e.0)))
}

/// The "as of" of a page's query: blank or absent is now; else RFC 3339, or a day (its end).
pub fn as_of(q: &Option<String>, now: Timestamp) -> Result<(Timestamp, Option<String>), UiError> {
    match opt(q) {
        None => Ok((now, None)),
        Some(s) => {
            let t = riskdesk_app::kernel::time::parse_as_of(&Some(s.to_owned()), now)?;
            Ok((t, Some(s.to_owned())))
        }
    }
}
