//! The subscription lifecycle as a pure function: (instance, status, action, reason) → new
//! status or a refusal. The HTTP layer and the storage layer never decide a transition.

use serde::{Deserialize, Serialize};

use crate::cloud::CloudInstance;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    /// Suspended by the partner, typically while investigating.
    Suspended,
    /// Access blocked (the article's "disable access" / "block access"), typically for non-payment.
    Disabled,
    /// Final: nothing leaves this state.
    Cancelled,
    /// Waiting for the prepayment its customer must make: it activates when the prepaid balance
    /// covers its first period, and can only be cancelled meanwhile.
    PendingPayment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleAction {
    Suspend,
    DisableAccess,
    Reactivate,
    Cancel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Investigation,
    Fraud,
    NonPayment,
    AupViolation,
    CustomerRequest,
    Resolved,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub const ALL: &'static [$t] = &[$(<$t>::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(<$t>::$v),)* _ => None }
            }
        }
    };
}
str_enum!(SubscriptionStatus { Active => "active", Suspended => "suspended", Disabled => "disabled", Cancelled => "cancelled", PendingPayment => "pending_payment" });
str_enum!(LifecycleAction { Suspend => "suspend", DisableAccess => "disable_access", Reactivate => "reactivate", Cancel => "cancel" });
str_enum!(Reason { Investigation => "investigation", Fraud => "fraud", NonPayment => "non_payment", AupViolation => "aup_violation", CustomerRequest => "customer_request", Resolved => "resolved" });

/// Why a requested action was refused. Each variant maps to one HTTP status at the edge:
/// `ReasonNotValid` is a bad request (422); the others conflict with current state (409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("reason '{}' does not fit action '{}'; allowed reasons: {}", reason.as_str(), action.as_str(), allowed_list(*action))]
    ReasonNotValid {
        action: LifecycleAction,
        reason: Reason,
    },
    #[error("the {} does not allow '{}' (subscriptions there can be suspended or have access blocked, not cancelled)", instance.profile().display_name, action.as_str())]
    NotAllowedOnInstance {
        instance: CloudInstance,
        action: LifecycleAction,
    },
    #[error("the subscription is cancelled; cancellation is final")]
    Final,
    #[error("the subscription is already {}", status.as_str())]
    AlreadyInState { status: SubscriptionStatus },
    #[error(
        "the subscription waits for its prepayment: it activates when the customer's prepaid balance covers its first period, and can only be cancelled meanwhile"
    )]
    AwaitingPayment,
}

/// The reasons that make sense for each action. Reactivation is for a resolved problem or at the
/// customer's request; taking access away needs a risk or customer reason.
pub fn allowed_reasons(action: LifecycleAction) -> &'static [Reason] {
    use Reason::*;
    match action {
        LifecycleAction::Suspend => &[
            Investigation,
            Fraud,
            NonPayment,
            AupViolation,
            CustomerRequest,
        ],
        LifecycleAction::DisableAccess => &[Investigation, Fraud, NonPayment, AupViolation],
        LifecycleAction::Cancel => &[Fraud, NonPayment, AupViolation, CustomerRequest],
        LifecycleAction::Reactivate => &[Resolved, CustomerRequest],
    }
}

fn allowed_list(action: LifecycleAction) -> String {
    allowed_reasons(action)
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one place that decides lifecycle transitions. Checks run in this order so the answer
/// names the most fundamental problem first: the reason, the instance, then the state.
pub fn transition(
    instance: CloudInstance,
    current: SubscriptionStatus,
    action: LifecycleAction,
    reason: Reason,
) -> Result<SubscriptionStatus, TransitionError> {
    use SubscriptionStatus::*;
    if !allowed_reasons(action).contains(&reason) {
        return Err(TransitionError::ReasonNotValid { action, reason });
    }
    if !instance.allows(action) {
        return Err(TransitionError::NotAllowedOnInstance { instance, action });
    }
    if current == Cancelled {
        return Err(TransitionError::Final);
    }
    if current == PendingPayment && action != LifecycleAction::Cancel {
        return Err(TransitionError::AwaitingPayment);
    }
    let target = match action {
        LifecycleAction::Suspend => Suspended,
        LifecycleAction::DisableAccess => Disabled,
        LifecycleAction::Reactivate => Active,
        LifecycleAction::Cancel => Cancelled,
    };
    if target == current {
        return Err(TransitionError::AlreadyInState { status: current });
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleAction as A;
    use SubscriptionStatus as S;

    /// The whole table for the global instance, written out so a change to it is a visible diff.
    #[test]
    fn exhaustive_table_global() {
        let expected = |from: S, a: A| -> Result<S, &'static str> {
            match (from, a) {
                (S::Cancelled, _) => Err("final"),
                (S::PendingPayment, A::Cancel) => Ok(S::Cancelled),
                (S::PendingPayment, _) => Err("awaiting"),
                (S::Active, A::Reactivate) => Err("already"),
                (S::Suspended, A::Suspend) => Err("already"),
                (S::Disabled, A::DisableAccess) => Err("already"),
                (_, A::Suspend) => Ok(S::Suspended),
                (_, A::DisableAccess) => Ok(S::Disabled),
                (_, A::Reactivate) => Ok(S::Active),
                (_, A::Cancel) => Ok(S::Cancelled),
            }
        };
        for &from in S::ALL {
            for &a in A::ALL {
                for &r in Reason::ALL {
                    let got = transition(CloudInstance::Global, from, a, r);
                    if !allowed_reasons(a).contains(&r) {
                        assert!(
                            matches!(got, Err(TransitionError::ReasonNotValid { .. })),
                            "{from:?} {a:?} {r:?}"
                        );
                        continue;
                    }
                    match (expected(from, a), got) {
                        (Ok(s), Ok(g)) => assert_eq!(s, g, "{from:?} {a:?} {r:?}"),
                        (Err("final"), Err(TransitionError::Final)) => {}
                        (Err("awaiting"), Err(TransitionError::AwaitingPayment)) => {}
                        (Err("already"), Err(TransitionError::AlreadyInState { status })) => {
                            assert_eq!(status, from)
                        }
                        (e, g) => panic!("{from:?} {a:?} {r:?}: expected {e:?}, got {g:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn every_instance_but_21vianet_matches_global() {
        for inst in [CloudInstance::UsGovernment, CloudInstance::Germany] {
            for &from in S::ALL {
                for &a in A::ALL {
                    for &r in Reason::ALL {
                        assert_eq!(
                            transition(inst, from, a, r),
                            transition(CloudInstance::Global, from, a, r)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn china_21vianet_refuses_cancel_from_every_state_and_allows_the_rest() {
        for &from in S::ALL {
            let err = transition(CloudInstance::China21vianet, from, A::Cancel, Reason::Fraud)
                .unwrap_err();
            assert!(matches!(err, TransitionError::NotAllowedOnInstance { .. }));
            assert!(err.to_string().contains("21Vianet"), "{err}");
            for a in [A::Suspend, A::DisableAccess, A::Reactivate] {
                let r = allowed_reasons(a)[0];
                assert_eq!(
                    transition(CloudInstance::China21vianet, from, a, r),
                    transition(CloudInstance::Global, from, a, r)
                );
            }
        }
        assert_eq!(
            transition(
                CloudInstance::China21vianet,
                S::Active,
                A::DisableAccess,
                Reason::NonPayment
            ),
            Ok(S::Disabled)
        );
    }

    #[test]
    fn names_round_trip() {
        for &s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        for &a in A::ALL {
            assert_eq!(A::parse(a.as_str()), Some(a));
        }
        for &r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(
            serde_json::to_string(&A::DisableAccess).unwrap(),
            "\"disable_access\""
        );
    }

    #[test]
    fn reason_error_lists_the_allowed_ones() {
        let e = transition(
            CloudInstance::Global,
            S::Active,
            A::Reactivate,
            Reason::Fraud,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "reason 'fraud' does not fit action 'reactivate'; allowed reasons: resolved, customer_request"
        );
    }
}
