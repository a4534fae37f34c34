//! Response: the case queue (one open case per customer collects what needs a person), the SLA
//! that gives each case its deadline, the actions taken from a case and who may approve them,
//! provider notices and service requests. Pure: times are passed in.

pub mod action;
pub mod blocklist;
pub mod case;
pub mod notice;
pub mod service_request;

pub use action::{ActionKind, ActionStatus, ApprovalError};
pub use case::{CaseKind, CaseStatus, CaseTransitionError, SlaPolicy};
pub use notice::NoticeStatus;
