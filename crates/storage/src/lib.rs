//! riskdesk storage: one repository interface over SQLite (embedded default) and PostgreSQL.
//!
//! sqlx's `Any` driver cannot carry uuid, booleans or timestamps, so [`Db`] holds a native pool
//! per backend and every query is written once and compiled for both through the `on_pool!` /
//! `on_tx!` macros. SQL text is shared (`$1` placeholders work on both); the rare backend
//! specific statement is an explicit match arm.
//!
//! Writes go through a [`Tx`] (a unit of work): on SQLite it starts with `BEGIN IMMEDIATE` so a
//! writer waits for the lock instead of failing with `SQLITE_BUSY` mid-transaction.

#[macro_use]
mod db;
pub mod audit;
pub mod customers;
pub mod idempotency;
pub mod subscriptions;
pub mod tenants;
pub mod time;
pub mod tokens;

pub use db::{Backend, Db, DbOptions, Tx};

/// Storage failures the callers act on; everything else is `Db`.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was violated (e.g. an `external_id` already used in the tenant).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Maps a unique-constraint violation to [`StorageError::Conflict`] with a message.
pub(crate) fn conflict_on_unique(e: sqlx::Error, what: impl FnOnce() -> String) -> StorageError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StorageError::Conflict(what()),
        _ => StorageError::Db(e),
    }
}
