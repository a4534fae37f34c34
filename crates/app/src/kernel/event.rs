//! The contract between capabilities: every fact one capability announces and another reacts
//! to. The enum is closed — the whole list of what triggers a reaction elsewhere is here —
//! and each variant has a stable name and a serialisable shape (the fields that are not
//! `#[serde(skip)]`), so the same events can later leave the process through an outbox and
//! NATS JetStream without changing their meaning. Skipped fields are in-process context the
//! reactions of this step read directly (a consumer in another process would re-read them by
//! the ids that are serialised).
//!
//! Which capability emits each event and who reacts is in `crate::wiring` (the one dispatch
//! table) and in ARCHITECTURE.md's event table.

use jiff::Timestamp;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::onboarding::assess::{Assessment, SignupInput};
use riskdesk_domain::{CustomerId, TenantId};
use riskdesk_storage::alerts::AlertRow;
use riskdesk_storage::outbox::EndpointRow;
use riskdesk_storage::signups::SignupRow;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum Event<'a> {
    /// A new alert was raised (a fold into an existing alert is not a new alert).
    #[serde(rename = "alert.raised")]
    AlertRaised {
        tenant: TenantId,
        at: Timestamp,
        #[serde(skip)]
        actor: &'a Actor,
        alert: &'a AlertRow,
        /// The tenant's webhook endpoints, already read by the emitter.
        #[serde(skip)]
        endpoints: &'a [EndpointRow],
    },
    /// A customer got an external id (created with one, or updated to a new one).
    #[serde(rename = "customer.external_id_set")]
    CustomerExternalIdSet {
        tenant: TenantId,
        at: Timestamp,
        customer: CustomerId,
        external_id: &'a str,
    },
    /// A sign-up was assessed and stored (whatever the decision).
    #[serde(rename = "signup.assessed")]
    SignupAssessed {
        tenant: TenantId,
        at: Timestamp,
        signup: &'a SignupRow,
        cloud_instance: &'a str,
        #[serde(skip)]
        input: &'a SignupInput,
        #[serde(skip)]
        assessment: &'a Assessment,
    },
    /// A sign-up's assessment held it for an analyst's review.
    #[serde(rename = "signup.held_for_review")]
    SignupHeldForReview {
        tenant: TenantId,
        at: Timestamp,
        #[serde(skip)]
        actor: &'a Actor,
        signup: Uuid,
        company_name: &'a str,
        score: u32,
    },
    /// An analyst approved or rejected a sign-up held for review.
    #[serde(rename = "signup.reviewed")]
    SignupReviewed {
        tenant: TenantId,
        at: Timestamp,
        #[serde(skip)]
        actor: &'a Actor,
        signup: Uuid,
        /// The customer an approval created.
        customer: Option<Uuid>,
        approved: bool,
    },
}

impl Event<'_> {
    /// Every event's name, in declaration order.
    pub const NAMES: [&'static str; 5] = [
        "alert.raised",
        "customer.external_id_set",
        "signup.assessed",
        "signup.held_for_review",
        "signup.reviewed",
    ];

    /// The event's stable name (also its `type` when serialised, and its future subject).
    pub fn name(&self) -> &'static str {
        match self {
            Event::AlertRaised { .. } => Self::NAMES[0],
            Event::CustomerExternalIdSet { .. } => Self::NAMES[1],
            Event::SignupAssessed { .. } => Self::NAMES[2],
            Event::SignupHeldForReview { .. } => Self::NAMES[3],
            Event::SignupReviewed { .. } => Self::NAMES[4],
        }
    }

    pub fn tenant(&self) -> TenantId {
        match self {
            Event::AlertRaised { tenant, .. }
            | Event::CustomerExternalIdSet { tenant, .. }
            | Event::SignupAssessed { tenant, .. }
            | Event::SignupHeldForReview { tenant, .. }
            | Event::SignupReviewed { tenant, .. } => *tenant,
        }
    }
}
