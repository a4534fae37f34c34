//! What goes wrong, as a page a person can read (the API answers problem+json instead). Another
//! tenant's object is a plain 404, exactly like one that does not exist.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use riskdesk_app::kernel::error::AppError;
use riskdesk_storage::StorageError;

#[derive(Debug)]
pub enum UiError {
    /// No live session: to the sign-in page, back here afterwards.
    SignIn {
        next: String,
    },
    NotFound,
    Forbidden(String),
    Conflict(String),
    Invalid(String),
    TooMany(String),
    /// A state-changing request from another site (the CSRF check).
    CrossSite,
    Unavailable(String),
    Internal(String),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    detail: &'a str,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, detail) = match &self {
            UiError::SignIn { next } => {
                let to = format!(
                    "/ui/login?next={}",
                    form_urlencoded::byte_serialize(safe_next(next).as_bytes()).collect::<String>()
                );
                return Redirect::to(&to).into_response();
            }
            UiError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or it is not yours to see.",
            ),
            UiError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m.as_str()),
            UiError::Conflict(m) => (StatusCode::CONFLICT, "Not now", m.as_str()),
            UiError::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, "Not valid", m.as_str()),
            UiError::TooMany(m) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                m.as_str(),
            ),
            UiError::CrossSite => (
                StatusCode::FORBIDDEN,
                "Refused",
                "This form was sent from another site. Open riskdesk and try again from there.",
            ),
            UiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "Busy", m.as_str()),
            UiError::Internal(m) => {
                tracing::error!(error = %m, "dashboard: internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something failed",
                    "riskdesk could not complete this. Nothing was changed; try again.",
                )
            }
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            detail,
        };
        let html = page
            .render()
            .unwrap_or_else(|_| format!("<!doctype html><title>{}</title>", status.as_u16()));
        let mut resp = (status, Html(html)).into_response();
        if matches!(self, UiError::TooMany(_)) {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("60"),
            );
        }
        resp
    }
}

/// A `next` target is a path on this site under /ui, never another origin.
pub fn safe_next(next: &str) -> &str {
    if next.starts_with("/ui/") && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/ui/"
    }
}

impl From<AppError> for UiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Forbidden(m) => UiError::Forbidden(m),
            AppError::NotFound(_) => UiError::NotFound,
            AppError::Conflict(m) => UiError::Conflict(m),
            AppError::Validation { detail, .. } => UiError::Invalid(detail),
            AppError::Unmet { detail, .. } => UiError::Conflict(detail),
            AppError::BadRequest(m) => UiError::Invalid(m),
            AppError::TooManyRequests(m) => UiError::TooMany(m),
            AppError::BadGateway(m) => UiError::Unavailable(m),
            AppError::Contention(m) => UiError::Unavailable(m),
            AppError::Unavailable { detail, .. } => UiError::Unavailable(detail),
            AppError::Internal(m) => UiError::Internal(m),
        }
    }
}

impl From<StorageError> for UiError {
    fn from(e: StorageError) -> Self {
        AppError::from(e).into()
    }
}

impl From<askama::Error> for UiError {
    fn from(e: askama::Error) -> Self {
        UiError::Internal(format!("template: {e}"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_never_leaves_the_dashboard() {
        use super::safe_next;
        assert_eq!(safe_next("/ui/cases?status=open"), "/ui/cases?status=open");
        for bad in [
            "https://evil.example/",
            "//evil.example/ui/",
            "/v1/cases",
            "/ui\\x",
            "",
        ] {
            assert_eq!(safe_next(bad), "/ui/", "{bad}");
        }
    }
}
