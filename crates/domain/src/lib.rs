//! riskdesk's domain core.
//!
//! Architecture invariant: this crate does no I/O, holds no sqlx/axum types and never reads the
//! clock. Callers pass time in (`as_of`) so every decision can be replayed.

pub mod anomaly;
pub mod audit;
pub mod billing;
pub mod cloud;
pub mod customer;
pub mod ids;
pub mod lifecycle;
pub mod money;
pub mod monitoring;
pub mod onboarding;
pub mod response;
pub mod role;
pub mod values;

pub use cloud::CloudInstance;
pub use ids::{CustomerId, SubscriptionId, TenantId, TokenId};
pub use lifecycle::{LifecycleAction, Reason, SubscriptionStatus};
pub use role::{Permission, Role};
pub use values::{CountryCode, DomainName, Email, Locale, Phone, TenantSlug, ValueError};

/// Where "now" comes from. The domain never reads the system clock; the server passes a
/// system clock, tests a fixed one.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> jiff::Timestamp;
}
