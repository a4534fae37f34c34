//! Who reacts to what: the one file that names both ends of every link between capabilities.
//!
//! Each arm of [`Wiring::react`] is a reaction to an [`Event`], run in the emitter's unit of
//! work at the point where the emitter announces it, in the order written here. Each has a
//! delivery class (see [`delivery`]); every reaction of this release is
//! [`Delivery::InTx`]: it must commit with its cause (an alert and its case, a sign-up and
//! its rules' hits). [`Approvals`] is answered by response.

use riskdesk_domain::response::CaseKind;
use std::sync::Arc;

use crate::kernel::ports::{Approvals, BoxFuture, DunningProposal, EnforcementProposal, Hooks};
use crate::kernel::{AppError, Event, Uow};
use crate::monitoring::detect::Detector;
use crate::{monitoring, response};

/// How a reaction is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Inside the emitter's unit of work: commits with it or not at all.
    InTx,
    /// After the emitter commits, at least once, deduplicated by event id (none yet: the
    /// event outbox that carries them is the scale-out issue's).
    AfterCommit,
}

/// Every reaction to an event: its name and delivery class, in the order they run. The
/// table ARCHITECTURE.md shows.
pub fn delivery(event: &Event<'_>) -> &'static [(&'static str, Delivery)] {
    match event {
        Event::AlertRaised { .. } => &[("response::on_alert", Delivery::InTx)],
        Event::CustomerExternalIdSet { .. } => &[("monitoring::attach_pending", Delivery::InTx)],
        Event::SignupAssessed { .. } => &[("monitoring::run_signup_rules", Delivery::InTx)],
        Event::SignupHeldForReview { .. } => &[("response::open_or_attach", Delivery::InTx)],
        Event::SignupReviewed { .. } => &[("response::close_signup_case", Delivery::InTx)],
    }
}

/// The capabilities' state the reactions need.
pub struct Wiring {
    pub detector: Arc<Detector>,
}

impl Hooks for Wiring {
    fn react<'a>(
        &'a self,
        uow: &'a mut Uow,
        event: &'a Event<'a>,
    ) -> BoxFuture<'a, Result<(), AppError>> {
        Box::pin(async move {
            match *event {
                Event::AlertRaised {
                    tenant,
                    at,
                    actor,
                    alert,
                    endpoints,
                } => {
                    // A new alert joins its customer's open case, or opens one (by severity).
                    response::on_alert(uow, tenant, actor, alert, endpoints, at).await?;
                }
                Event::CustomerExternalIdSet {
                    tenant,
                    customer,
                    external_id,
                    ..
                } => {
                    // Events that arrived for this external id before the customer had it
                    // are its now.
                    monitoring::attach_pending(uow, tenant, external_id, customer).await?;
                }
                Event::SignupAssessed {
                    tenant,
                    at,
                    signup,
                    cloud_instance,
                    input,
                    assessment,
                } => {
                    monitoring::run_signup_rules(
                        uow,
                        tenant,
                        &self.detector,
                        signup,
                        input,
                        assessment,
                        cloud_instance,
                        at,
                    )
                    .await?;
                }
                Event::SignupHeldForReview {
                    tenant,
                    at,
                    actor,
                    signup,
                    company_name,
                    score,
                } => {
                    let title = format!("Sign-up in review: {company_name} (score {score})");
                    response::open_or_attach(
                        uow,
                        tenant,
                        actor,
                        None,
                        Some(signup),
                        response::CaseSource {
                            kind: CaseKind::SignupReview,
                            severity: "medium",
                            title: &title,
                            entry_kind: "signup",
                            ref_id: Some(signup),
                            data: Some(serde_json::json!({ "score": score })),
                        },
                        at,
                    )
                    .await?;
                }
                Event::SignupReviewed {
                    tenant,
                    at,
                    actor,
                    signup,
                    customer,
                    approved,
                } => {
                    response::close_signup_case(uow, tenant, actor, signup, customer, approved, at)
                        .await?;
                }
            }
            Ok(())
        })
    }
}

impl Approvals for Wiring {
    fn propose_enforcement<'a>(
        &'a self,
        uow: &'a mut Uow,
        p: EnforcementProposal<'a>,
    ) -> BoxFuture<'a, Result<Vec<uuid::Uuid>, AppError>> {
        Box::pin(response::propose_enforcement(
            uow, p.tenant, p.actor, p.customer, p.kind, p.why, p.alert, p.now,
        ))
    }

    fn propose_dunning_lever<'a>(
        &'a self,
        uow: &'a mut Uow,
        p: DunningProposal<'a>,
    ) -> BoxFuture<'a, Result<bool, AppError>> {
        Box::pin(response::propose_dunning_lever(
            uow,
            p.tenant,
            p.actor,
            p.customer,
            p.customer_name,
            p.subscription,
            p.kind,
            p.why,
            p.now,
        ))
    }

    fn withdraw_dunning_proposals<'a>(
        &'a self,
        uow: &'a mut Uow,
        tenant: riskdesk_domain::TenantId,
        actor: &'a riskdesk_domain::audit::Actor,
        subscription: uuid::Uuid,
        now: jiff::Timestamp,
    ) -> BoxFuture<'a, Result<(), AppError>> {
        Box::pin(response::withdraw_dunning_proposals(
            uow,
            tenant,
            actor,
            subscription,
            now,
        ))
    }
}
