//! riskdesk storage: one repository interface over SQLite (embedded default) and PostgreSQL.
//!
//! Repository functions build a [`query::Q`] (one SQL text with `$n` placeholders, typed
//! arguments) and run it on a [`Db`] (reads) or a [`Tx`] (a unit of work); rows decode by
//! column name through [`query::FromRow`], so each query is written once for both backends.
//! The rare backend-specific statement is an explicit match arm.

pub mod actions;
pub mod alerts;
pub mod audit;
pub mod billing;
pub mod blocklist;
pub mod budgets;
pub mod cases;
pub mod challenges;
pub mod customers;
mod db;
pub mod dunning;
pub mod event_stream;
pub mod events;
pub mod idempotency;
pub mod leases;
pub mod maintenance;
mod migrate;
pub mod outbox;
pub mod provider;
pub mod query;
pub mod rules;
pub mod signups;
mod sqlite_writer;
pub mod staff;
pub mod subscriptions;
pub mod tenants;
pub mod time;
pub mod tokens;

pub use db::{Backend, DEFAULT_BULK_YIELD, Db, DbOptions, Tx};
pub use migrate::SQLITE_MIGRATIONS;

/// Storage failures the callers act on; the rest are backend errors.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was violated (e.g. an `external_id` already used in the tenant).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Config(String),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StorageError {
    /// A deadlock or a serialisation failure: the transaction was chosen as the victim of a
    /// conflict with a concurrent one, and running it again may succeed (PostgreSQL SQLSTATE
    /// 40P01 and 40001; SQLite's single writer never produces them).
    pub fn is_retryable(&self) -> bool {
        match self {
            StorageError::Postgres(sqlx::Error::Database(d)) => {
                matches!(d.code().as_deref(), Some("40P01") | Some("40001"))
            }
            _ => false,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        match self {
            StorageError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            StorageError::Postgres(sqlx::Error::Database(d)) => d.is_unique_violation(),
            _ => false,
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Maps a unique-constraint violation to [`StorageError::Conflict`] with a message.
pub(crate) fn conflict_on_unique(e: StorageError, what: impl FnOnce() -> String) -> StorageError {
    if e.is_unique_violation() {
        StorageError::Conflict(what())
    } else {
        e
    }
}
