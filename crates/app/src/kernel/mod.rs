//! Layer 0 of the application: what every capability stands on and none owns — the unit of
//! work, the error type, the events and ports through which capabilities react to each other,
//! settings, the outbox (side effects leave through it) and the notice catalogs.

pub mod error;
pub mod event;
pub mod fluent;
pub mod json;
pub mod lease;
pub mod notices;
pub mod outbox;
pub mod ports;
pub mod secrets;
pub mod settings;
pub mod time;
pub mod uow;

pub use error::{AppError, FieldError, Validator};
pub use event::Event;
pub use ports::{Approvals, Hooks};
pub use settings::ResponseSettings;
pub use uow::{Ctx, Uow};
