//! The application layer's error: what went wrong in a use case, in the terms of the use case.
//! It names no HTTP status; `riskdesk-http` maps each variant one-to-one onto an RFC 9457
//! problem kind (`From<AppError> for ApiError`), and the CLI prints its message.

use riskdesk_domain::lifecycle::TransitionError;
use riskdesk_storage::StorageError;
use serde::Serialize;

/// One invalid field, for validation problems.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The field's path in the request, e.g. `phone` or `lines[2].amount`.
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The caller may not do this (a role, a tenant's setting, a maker-checker rule).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Conflicts with the current state (a transition not allowed now, a duplicate).
    #[error("{0}")]
    Conflict(String),
    /// The input is well-formed but its values are invalid (every invalid field in `errors`).
    #[error("{detail}")]
    Validation {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// The input is not what the use case reads (not JSON, not a sign-up).
    #[error("{0}")]
    BadRequest(String),
    /// Conditions for the action are not met yet (each missing condition in `missing`).
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
    /// A concurrent unit of work won a conflict (a deadlock, a serialisation failure): the
    /// same unit of work run again may succeed. Adapters retry it a bounded number of times.
    #[error("{0}")]
    Contention(String),
    /// A service this needs cannot take the work now (the event stream is full or out of
    /// reach): nothing was done that a retry after `retry_after_secs` would double.
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: u32,
    },
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        AppError::Validation {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError {
                field: field.to_owned(),
                message,
            }],
        }
    }
}

impl From<StorageError> for AppError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(what) => AppError::NotFound(format!("no such {what}")),
            StorageError::Conflict(msg) => AppError::Conflict(msg),
            other if other.is_retryable() => AppError::Contention(other.to_string()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<TransitionError> for AppError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::ReasonNotValid { .. } => AppError::field("reason", e.to_string()),
            _ => AppError::Conflict(e.to_string()),
        }
    }
}

/// Collects field errors so one response names every invalid field, not just the first.
#[derive(Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(FieldError {
                    field: field.to_owned(),
                    message: e.to_string(),
                });
                None
            }
        }
    }

    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
        });
    }

    pub fn finish(self) -> Result<(), AppError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let detail = self
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Err(AppError::Validation {
            detail,
            errors: self.errors,
        })
    }
}
