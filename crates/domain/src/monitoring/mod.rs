//! Monitoring: usage and activity events as they arrive, costs exact to 1e-9 of a currency
//! unit, monthly budgets and when their thresholds are crossed.

pub mod azure_ops;
pub mod budget;
pub mod cost;
pub mod event;
pub(crate) mod native;
pub mod rules;

pub use cost::Cost;
pub use event::{Activity, CustomerRef, Event, EventBody, RawEvent, Usage};
