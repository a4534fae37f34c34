//! The two seams between capabilities. A capability never names a capability above or beside
//! it: it *tells* (emits an [`Event`], and whoever cares reacts through [`Hooks`]) or it *asks*
//! (through [`Approvals`], which response answers). Both are implemented once, in
//! `crate::wiring`, the only file that names both ends.

use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::response::ActionKind;
use uuid::Uuid;

use super::error::AppError;
use super::event::Event;
use super::uow::Uow;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Reactions to events, run inside the emitter's unit of work.
pub trait Hooks: Send + Sync {
    fn react<'a>(
        &'a self,
        uow: &'a mut Uow,
        event: &'a Event<'a>,
    ) -> BoxFuture<'a, Result<(), AppError>>;
}

/// An enforcement a rule, a budget or the credit check wants taken, put to staff for approval.
pub struct EnforcementProposal<'a> {
    pub tenant: TenantId,
    pub actor: &'a Actor,
    pub customer: Uuid,
    pub kind: ActionKind,
    pub why: &'a str,
    /// The alert that motivated it, if any.
    pub alert: Option<Uuid>,
    pub now: Timestamp,
}

/// A dunning lever (suspend, disable access) that the tenant's policy wants approved first.
pub struct DunningProposal<'a> {
    pub tenant: TenantId,
    pub actor: &'a Actor,
    pub customer: Uuid,
    pub customer_name: &'a str,
    pub subscription: Uuid,
    pub kind: ActionKind,
    pub why: &'a str,
    pub now: Timestamp,
}

/// Ask-style port: lower capabilities propose actions; response turns them into proposed
/// actions on a case, waiting for a second person.
pub trait Approvals: Send + Sync {
    /// Proposes one action per active subscription of the customer; returns the actions'
    /// ids (none when an identical proposal is already waiting).
    fn propose_enforcement<'a>(
        &'a self,
        uow: &'a mut Uow,
        p: EnforcementProposal<'a>,
    ) -> BoxFuture<'a, Result<Vec<Uuid>, AppError>>;

    /// Proposes a dunning lever on one subscription; `true` if the proposal is new.
    fn propose_dunning_lever<'a>(
        &'a self,
        uow: &'a mut Uow,
        p: DunningProposal<'a>,
    ) -> BoxFuture<'a, Result<bool, AppError>>;

    /// Withdraws the dunning proposals still waiting on a subscription (the customer paid).
    fn withdraw_dunning_proposals<'a>(
        &'a self,
        uow: &'a mut Uow,
        tenant: TenantId,
        actor: &'a Actor,
        subscription: Uuid,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<(), AppError>>;
}
