//! Plain settings the use cases read. They travel in the [`Ctx`](super::uow::Ctx) of each unit
//! of work — never in a process-wide static — so two applications in one process (the test
//! suite starts many) each keep their own.

use riskdesk_domain::response::SlaPolicy;
use serde::{Deserialize, Serialize};

/// `[response]` in riskdesk.toml.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseSettings {
    /// Alerts at or above this severity open a case; lower ones only join an open case.
    pub case_min_severity: String,
    /// Deadlines per severity and per case kind.
    pub sla: SlaPolicy,
    /// Where staff notifications (SLA breaches, failed provider calls, actions taken) are
    /// emailed, besides the `case.*`/`action.*` webhooks. None: webhooks only.
    pub staff_email: Option<String>,
}

impl Default for ResponseSettings {
    fn default() -> Self {
        Self {
            case_min_severity: "medium".into(),
            sla: SlaPolicy::default(),
            staff_email: None,
        }
    }
}

impl ResponseSettings {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = self
            .sla
            .problems()
            .into_iter()
            .map(|(f, m)| (format!("sla.{f}"), m))
            .collect();
        if !riskdesk_domain::response::case::SEVERITIES.contains(&self.case_min_severity.as_str()) {
            p.push((
                "case_min_severity".into(),
                "must be info, low, medium, high or critical".into(),
            ));
        }
        p
    }
}
