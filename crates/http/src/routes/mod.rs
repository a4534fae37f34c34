pub mod audit;
pub mod billing;
pub mod blocklist;
pub mod cases;
pub mod collections;
pub mod customers;
pub mod health;
pub mod monitoring;
pub mod provider;
pub mod rules;
pub mod signups;
pub mod subscriptions;

use crate::error::ApiError;

/// Parses an id from the path; a malformed id names no resource, so it is a 404 like any
/// unknown id (and says why).
pub fn parse_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("no {what} with id '{raw}' (ids are UUIDs)")))
}

/// An optional customer id filter from the query string; a malformed one is a 422 naming it.
pub fn customer_filter(raw: &Option<String>) -> Result<Option<uuid::Uuid>, ApiError> {
    raw.as_deref()
        .map(|c| {
            c.parse()
                .map_err(|_| ApiError::field("customer_id", format!("'{c}' is not a customer id")))
        })
        .transpose()
}
