//! Cases: kinds, the status machine, severities and the SLA that sets a case's deadline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What opened a case. A customer's later alerts attach to its open case whatever their kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// A rule, detector, budget or anomaly alert.
    Alert,
    /// A sign-up held for review by onboarding.
    SignupReview,
    /// Exposure went over the credit limit.
    CreditLimit,
    /// An enforcement a rule, budget or the credit policy proposed in `require_approval` mode.
    EnforcementApproval,
    /// An Acceptable Use Policy notice from the provider (by email).
    ProviderNotice,
    /// The provider's fraud detection (webhook or fraud-events API).
    ProviderFraud,
    /// The provider's usage-budget threshold event.
    ProviderBudget,
}

impl CaseKind {
    pub const ALL: [CaseKind; 7] = [
        CaseKind::Alert,
        CaseKind::SignupReview,
        CaseKind::CreditLimit,
        CaseKind::EnforcementApproval,
        CaseKind::ProviderNotice,
        CaseKind::ProviderFraud,
        CaseKind::ProviderBudget,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            CaseKind::Alert => "alert",
            CaseKind::SignupReview => "signup_review",
            CaseKind::CreditLimit => "credit_limit",
            CaseKind::EnforcementApproval => "enforcement_approval",
            CaseKind::ProviderNotice => "provider_notice",
            CaseKind::ProviderFraud => "provider_fraud",
            CaseKind::ProviderBudget => "provider_budget",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Severities, least to most urgent (the alerts' scale).
pub const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

/// Rank of a severity on [`SEVERITIES`] (unknown ranks lowest).
pub fn severity_rank(s: &str) -> usize {
    SEVERITIES.iter().position(|x| *x == s).unwrap_or(0)
}

/// The more urgent of two severities.
pub fn max_severity<'a>(a: &'a str, b: &'a str) -> &'a str {
    if severity_rank(b) > severity_rank(a) {
        b
    } else {
        a
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Investigating,
    Actioned,
    Resolved,
    Dismissed,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 5] = [
        CaseStatus::Open,
        CaseStatus::Investigating,
        CaseStatus::Actioned,
        CaseStatus::Resolved,
        CaseStatus::Dismissed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Investigating => "investigating",
            CaseStatus::Actioned => "actioned",
            CaseStatus::Resolved => "resolved",
            CaseStatus::Dismissed => "dismissed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// Closed cases take no new alerts; a customer's next alert opens a new case.
    pub fn is_closed(self) -> bool {
        matches!(self, CaseStatus::Resolved | CaseStatus::Dismissed)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CaseTransitionError {
    #[error("a case that is {from} cannot become {to}")]
    NotAllowed {
        from: &'static str,
        to: &'static str,
    },
    #[error(
        "the case cannot be {to} while {pending} of its actions are still pending or awaiting approval"
    )]
    ActionsPending { to: &'static str, pending: usize },
}

/// The one place deciding a case's status changes: `open → investigating → actioned →
/// resolved | dismissed`, steps may be skipped forward, a closed case can be reopened, and a
/// case does not close while an action it started is unfinished (the provider call may still
/// fail and need a person).
pub fn change_status(
    from: CaseStatus,
    to: CaseStatus,
    unfinished_actions: usize,
) -> Result<CaseStatus, CaseTransitionError> {
    use CaseStatus::*;
    let allowed = match (from, to) {
        (a, b) if a == b => false,
        (Open, _) => true,
        (Investigating, Open) => false,
        (Investigating, _) => true,
        (Actioned, Investigating | Resolved | Dismissed) => true,
        (Actioned, _) => false,
        (Resolved | Dismissed, Open) => true,
        (Resolved | Dismissed, _) => false,
    };
    if !allowed {
        return Err(CaseTransitionError::NotAllowed {
            from: from.as_str(),
            to: to.as_str(),
        });
    }
    if to.is_closed() && unfinished_actions > 0 {
        return Err(CaseTransitionError::ActionsPending {
            to: to.as_str(),
            pending: unfinished_actions,
        });
    }
    Ok(to)
}

/// How long a case may wait for a person: by severity, with per-kind limits (e.g. the
/// provider expects an answer to an AUP notice within 24 h). The tighter one wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaPolicy {
    /// Minutes per severity (`info`, `low`, `medium`, `high`, `critical`).
    pub minutes_by_severity: BTreeMap<String, u32>,
    /// Minutes per case kind (`provider_notice`, `provider_fraud`, …); optional.
    pub minutes_by_kind: BTreeMap<String, u32>,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        let by_sev = [
            ("info", 7 * 24 * 60),
            ("low", 72 * 60),
            ("medium", 24 * 60),
            ("high", 4 * 60),
            ("critical", 60),
        ];
        let by_kind = [
            ("provider_notice", 24 * 60),
            ("provider_fraud", 4 * 60),
            ("signup_review", 24 * 60),
            ("enforcement_approval", 4 * 60),
        ];
        SlaPolicy {
            minutes_by_severity: by_sev.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
            minutes_by_kind: by_kind.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
        }
    }
}

impl SlaPolicy {
    /// Problems with a configured policy, as (field, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (k, v) in &self.minutes_by_severity {
            if !SEVERITIES.contains(&k.as_str()) {
                out.push((
                    format!("minutes_by_severity.{k}"),
                    format!("unknown severity; one of {}", SEVERITIES.join(", ")),
                ));
            }
            if *v == 0 {
                out.push((format!("minutes_by_severity.{k}"), "must be > 0".into()));
            }
        }
        for (k, v) in &self.minutes_by_kind {
            if CaseKind::parse(k).is_none() {
                out.push((format!("minutes_by_kind.{k}"), "unknown case kind".into()));
            }
            if *v == 0 {
                out.push((format!("minutes_by_kind.{k}"), "must be > 0".into()));
            }
        }
        out
    }

    /// Minutes allowed for a case of this kind and severity (a severity without a setting
    /// gets a week).
    pub fn minutes(&self, kind: CaseKind, severity: &str) -> u32 {
        let by_sev = self
            .minutes_by_severity
            .get(severity)
            .copied()
            .unwrap_or(7 * 24 * 60);
        match self.minutes_by_kind.get(kind.as_str()) {
            Some(k) => by_sev.min(*k),
            None => by_sev,
        }
    }

    /// The deadline (µs) of a case opened at `opened_micros`.
    pub fn due(&self, kind: CaseKind, severity: &str, opened_micros: i64) -> i64 {
        opened_micros + i64::from(self.minutes(kind, severity)) * 60_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CaseStatus::*;

    #[test]
    fn every_status_pair_is_decided() {
        for from in CaseStatus::ALL {
            for to in CaseStatus::ALL {
                let r = change_status(from, to, 0);
                let expected = match (from, to) {
                    _ if from == to => false,
                    (Open, _) => true,
                    (Investigating, Open) => false,
                    (Investigating, _) => true,
                    (Actioned, Investigating | Resolved | Dismissed) => true,
                    (Resolved | Dismissed, Open) => true,
                    _ => false,
                };
                assert_eq!(r.is_ok(), expected, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn a_case_does_not_close_with_unfinished_actions() {
        assert_eq!(
            change_status(Actioned, Resolved, 1),
            Err(CaseTransitionError::ActionsPending {
                to: "resolved",
                pending: 1
            })
        );
        assert!(change_status(Actioned, Dismissed, 2).is_err());
        // Moving on while actions run is fine; only closing waits.
        assert_eq!(change_status(Open, Actioned, 3), Ok(Actioned));
        assert_eq!(change_status(Actioned, Resolved, 0), Ok(Resolved));
    }

    #[test]
    fn the_tighter_limit_sets_the_deadline() {
        let p = SlaPolicy::default();
        // A critical notice: severity (1 h) is tighter than the notice kind (24 h).
        assert_eq!(p.minutes(CaseKind::ProviderNotice, "critical"), 60);
        // A low notice: the kind's 24 h wins over low's 72 h.
        assert_eq!(p.minutes(CaseKind::ProviderNotice, "low"), 24 * 60);
        assert_eq!(p.minutes(CaseKind::Alert, "low"), 72 * 60);
        assert_eq!(
            p.due(CaseKind::Alert, "high", 1_000),
            1_000 + 4 * 3_600_000_000
        );
    }

    #[test]
    fn policy_problems_name_the_field() {
        let mut p = SlaPolicy::default();
        p.minutes_by_severity.insert("urgent".into(), 5);
        p.minutes_by_kind.insert("alert".into(), 0);
        let fields: Vec<String> = p.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            ["minutes_by_severity.urgent", "minutes_by_kind.alert"]
        );
    }

    #[test]
    fn severities_order() {
        assert_eq!(max_severity("high", "critical"), "critical");
        assert_eq!(max_severity("high", "low"), "high");
        assert_eq!(max_severity("bogus", "info"), "bogus");
    }
}
