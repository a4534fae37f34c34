//! Actions taken from a case, their statuses, and the maker-checker rule for approvals.

use serde::{Deserialize, Serialize};

use crate::LifecycleAction;
use crate::cloud::CloudInstance;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Suspend,
    DisableAccess,
    Reactivate,
    Cancel,
    /// Set (or lower) the customer's monthly spending budget, here and at the provider.
    SetBudget,
    RequirePrepayment,
    RevokeAdminAccess,
    MarkFraudulent,
}

impl ActionKind {
    pub const ALL: [ActionKind; 8] = [
        ActionKind::Suspend,
        ActionKind::DisableAccess,
        ActionKind::Reactivate,
        ActionKind::Cancel,
        ActionKind::SetBudget,
        ActionKind::RequirePrepayment,
        ActionKind::RevokeAdminAccess,
        ActionKind::MarkFraudulent,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Suspend => "suspend",
            ActionKind::DisableAccess => "disable_access",
            ActionKind::Reactivate => "reactivate",
            ActionKind::Cancel => "cancel",
            ActionKind::SetBudget => "set_budget",
            ActionKind::RequirePrepayment => "require_prepayment",
            ActionKind::RevokeAdminAccess => "revoke_admin_access",
            ActionKind::MarkFraudulent => "mark_fraudulent",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// The subscription lifecycle action this is, if it is one.
    pub fn lifecycle(self) -> Option<LifecycleAction> {
        match self {
            ActionKind::Suspend => Some(LifecycleAction::Suspend),
            ActionKind::DisableAccess => Some(LifecycleAction::DisableAccess),
            ActionKind::Reactivate => Some(LifecycleAction::Reactivate),
            ActionKind::Cancel => Some(LifecycleAction::Cancel),
            _ => None,
        }
    }
    pub fn from_lifecycle(a: LifecycleAction) -> Self {
        match a {
            LifecycleAction::Suspend => ActionKind::Suspend,
            LifecycleAction::DisableAccess => ActionKind::DisableAccess,
            LifecycleAction::Reactivate => ActionKind::Reactivate,
            LifecycleAction::Cancel => ActionKind::Cancel,
        }
    }
    /// What the provider is asked to do for this action on this cloud, if anything.
    pub fn provider_call(self, instance: CloudInstance) -> ProviderCall {
        let caps = instance.profile();
        match self {
            // The provider has one lever for both: a suspended subscription's users lose access.
            ActionKind::Suspend | ActionKind::DisableAccess => ProviderCall::SuspendSubscription,
            ActionKind::Reactivate => ProviderCall::ReactivateSubscription,
            ActionKind::Cancel if caps.allows_cancel => ProviderCall::CancelSubscription,
            ActionKind::Cancel => ProviderCall::Unsupported("cancel"),
            ActionKind::SetBudget if caps.has_usage_budget => ProviderCall::SetUsageBudget,
            ActionKind::SetBudget => ProviderCall::Unsupported("usage budget"),
            ActionKind::RequirePrepayment
            | ActionKind::RevokeAdminAccess
            | ActionKind::MarkFraudulent => ProviderCall::LocalOnly,
        }
    }
}

/// The call an action makes at the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderCall {
    SuspendSubscription,
    ReactivateSubscription,
    CancelSubscription,
    SetUsageBudget,
    /// riskdesk's own control (credit terms, admin access, fraud marks).
    LocalOnly,
    /// The provider offers no such call on this cloud.
    Unsupported(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Proposed (by a rule, the budget, the credit policy or an analyst) and waiting for an
    /// analyst who did not propose it.
    AwaitingApproval,
    /// Decided and applied here; the provider call is queued or being retried.
    Pending,
    Done,
    /// The provider refused it for good (its error is on the action).
    Failed,
    Rejected,
}

impl ActionStatus {
    pub const ALL: [ActionStatus; 5] = [
        ActionStatus::AwaitingApproval,
        ActionStatus::Pending,
        ActionStatus::Done,
        ActionStatus::Failed,
        ActionStatus::Rejected,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::AwaitingApproval => "awaiting_approval",
            ActionStatus::Pending => "pending",
            ActionStatus::Done => "done",
            ActionStatus::Failed => "failed",
            ActionStatus::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// Unfinished actions keep their case from closing.
    pub fn is_unfinished(self) -> bool {
        matches!(self, ActionStatus::AwaitingApproval | ActionStatus::Pending)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("the action is {0}, not awaiting approval")]
    NotAwaiting(&'static str),
    #[error(
        "whoever proposed an action cannot approve or reject it (maker-checker): ask another analyst"
    )]
    SameActor,
}

/// Maker-checker: an action awaiting approval is decided by someone other than its proposer.
/// Actors are compared by their audit identity (`kind:name`).
pub fn check_decider(
    status: ActionStatus,
    proposed_by: &str,
    decider: &str,
) -> Result<(), ApprovalError> {
    if status != ActionStatus::AwaitingApproval {
        return Err(ApprovalError::NotAwaiting(status.as_str()));
    }
    if proposed_by == decider {
        return Err(ApprovalError::SameActor);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::parse(k.as_str()), Some(k));
        }
        for s in ActionStatus::ALL {
            assert_eq!(ActionStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ActionKind::parse("delete"), None);
    }

    #[test]
    fn maker_cannot_check() {
        let s = ActionStatus::AwaitingApproval;
        assert_eq!(
            check_decider(s, "token:alice", "token:alice"),
            Err(ApprovalError::SameActor)
        );
        assert_eq!(check_decider(s, "system:rule", "token:alice"), Ok(()));
        assert_eq!(
            check_decider(ActionStatus::Done, "token:bob", "token:alice"),
            Err(ApprovalError::NotAwaiting("done"))
        );
    }

    #[test]
    fn twentyone_vianet_never_cancels_at_the_provider() {
        assert_eq!(
            ActionKind::Cancel.provider_call(CloudInstance::China21vianet),
            ProviderCall::Unsupported("cancel")
        );
        assert_eq!(
            ActionKind::DisableAccess.provider_call(CloudInstance::China21vianet),
            ProviderCall::SuspendSubscription
        );
        assert_eq!(
            ActionKind::SetBudget.provider_call(CloudInstance::China21vianet),
            ProviderCall::Unsupported("usage budget")
        );
        assert_eq!(
            ActionKind::Cancel.provider_call(CloudInstance::Global),
            ProviderCall::CancelSubscription
        );
        assert_eq!(
            ActionKind::MarkFraudulent.provider_call(CloudInstance::Global),
            ProviderCall::LocalOnly
        );
    }
}
