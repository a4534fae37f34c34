//! Onboarding risk: the data sets a sign-up is checked against, the partner's policy, and the
//! pure assessment that turns one sign-up plus its looked-up facts into a decision.

pub mod assess;
pub mod geo;
pub mod lists;
pub mod policy;
pub mod shipped;
pub mod velocity;

pub use assess::{Assessment, Decision, ReasonCode, SignupFacts, SignupInput, assess};
pub use policy::Policy;
