//! Clients for services outside riskdesk. Each is written against its service's documented
//! interface and tested against a local fake server; none returns canned answers.

pub mod breaker;
pub mod email;
pub mod jetstream;
pub mod oidc;
#[cfg(feature = "fake")]
pub mod oidc_fake;
pub mod partner_center;
#[cfg(feature = "fake")]
pub mod partner_center_fake;
pub mod pc_webhook;
pub mod sms;
pub mod verification;
pub mod webhook;
