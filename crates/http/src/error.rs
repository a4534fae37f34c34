//! Every error leaves the API as RFC 9457 `application/problem+json` with a precise `detail`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use riskdesk_app::kernel::error::AppError;
pub use riskdesk_app::kernel::error::{FieldError, Validator};
use riskdesk_domain::lifecycle::TransitionError;
use riskdesk_storage::StorageError;
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The problem document (RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem kind, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    RouteNotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed JSON but its values are invalid.
    #[error("{detail}")]
    Validation {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// The body is not what the endpoint reads (not JSON, wrong content type).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    IdempotencyMismatch(String),
    /// Conditions for the action are not met yet (409, each missing condition in `errors`).
    #[error("{detail}")]
    Unmet {
        detail: String,
        missing: Vec<FieldError>,
    },
    #[error("{0}")]
    TooManyRequests(String),
    /// A provider riskdesk depends on failed.
    #[error("{0}")]
    BadGateway(String),
    /// 503 with `Retry-After`: the event stream is full or out of reach.
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: u32,
    },
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Validation {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError {
                field: field.to_owned(),
                message,
            }],
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
            ),
            Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "Not allowed for this role",
            ),
            NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            RouteNotFound(_) => (StatusCode::NOT_FOUND, "no-such-route", "No such route"),
            MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Conflict(_) => (
                StatusCode::CONFLICT,
                "conflict",
                "Conflicts with the current state",
            ),
            Validation { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request",
            ),
            BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-request",
                "Malformed request",
            ),
            UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            IdempotencyMismatch(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused with a different request",
            ),
            Unmet { .. } => (
                StatusCode::CONFLICT,
                "conditions-unmet",
                "Conditions not met",
            ),
            TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            BadGateway(_) => (
                StatusCode::BAD_GATEWAY,
                "provider-failed",
                "A provider failed",
            ),
            Unavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable, retry later",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, kind, title) = self.parts();
        let errors = match self {
            ApiError::Validation { errors, .. } => errors.clone(),
            ApiError::Unmet { missing, .. } => missing.clone(),
            _ => Vec::new(),
        };
        Problem {
            kind: format!("/problems/{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(msg) = &self {
            tracing::error!(error = %msg, "internal error");
        }
        let problem = match &self {
            // Never leak internals (SQL, paths) to the caller; the log has them.
            ApiError::Internal(_) => Problem {
                detail: "the server failed to handle the request; it has been logged".into(),
                ..self.problem()
            },
            _ => self.problem(),
        };
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let ApiError::Unavailable {
            retry_after_secs, ..
        } = &self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// One-to-one: every application error keeps the problem kind it had before the split.
impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Forbidden(m) => ApiError::Forbidden(m),
            AppError::NotFound(m) => ApiError::NotFound(m),
            AppError::Conflict(m) => ApiError::Conflict(m),
            AppError::Validation { detail, errors } => ApiError::Validation { detail, errors },
            AppError::BadRequest(m) => ApiError::BadRequest(m),
            AppError::Unmet { detail, missing } => ApiError::Unmet { detail, missing },
            AppError::TooManyRequests(m) => ApiError::TooManyRequests(m),
            AppError::BadGateway(m) => ApiError::BadGateway(m),
            AppError::Unavailable {
                detail,
                retry_after_secs,
            } => ApiError::Unavailable {
                detail,
                retry_after_secs,
            },
            // Left after the adapter's retries: the server's failure, logged.
            AppError::Contention(m) | AppError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        AppError::from(e).into()
    }
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        AppError::from(e).into()
    }
}
