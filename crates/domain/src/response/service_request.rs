//! Service requests to the provider. Its create API is retired (31 August 2020): riskdesk
//! prepares the text from a case for staff to paste into the portal, records the ticket id
//! once filed, then follows it through the read/update API.

use serde::{Deserialize, Serialize};

/// The provider's severities (`unknown`=0, `critical`=1, `moderate`=2, `minimal`=3).
pub fn provider_severity(case_severity: &str) -> &'static str {
    match case_severity {
        "critical" | "high" => "critical",
        "medium" => "moderate",
        _ => "minimal",
    }
}

/// A provider status as it arrives: a string or an integer, new values kept as they are.
pub fn status_name(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(0) => "none".into(),
            Some(1) => "open".into(),
            Some(2) => "closed".into(),
            Some(3) => "attention_needed".into(),
            _ => format!("unknown({n})"),
        },
        serde_json::Value::String(s) => s.to_ascii_lowercase(),
        other => format!("unknown({other})"),
    }
}

/// What staff paste into the portal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub title: String,
    pub severity: String,
    pub description: String,
}

/// The facts a draft is written from.
pub struct CaseFacts<'a> {
    pub case_id: &'a str,
    pub severity: &'a str,
    pub customer_name: &'a str,
    pub provider_customer_id: Option<&'a str>,
    pub provider_subscription_ids: &'a [String],
    pub summary: &'a str,
    /// One line per piece of evidence (alerts, actions taken), oldest first.
    pub evidence: &'a [String],
}

pub fn draft(f: &CaseFacts<'_>) -> Draft {
    let mut d = String::new();
    d.push_str(&format!(
        "Suspicious activity on customer {}",
        f.customer_name
    ));
    if let Some(t) = f.provider_customer_id {
        d.push_str(&format!(" (customer tenant {t})"));
    }
    d.push_str(".\n\n");
    d.push_str(f.summary.trim());
    d.push_str("\n\n");
    if !f.provider_subscription_ids.is_empty() {
        d.push_str("Subscriptions concerned: ");
        d.push_str(&f.provider_subscription_ids.join(", "));
        d.push_str("\n\n");
    }
    if !f.evidence.is_empty() {
        d.push_str("Evidence:\n");
        for e in f.evidence {
            d.push_str("- ");
            d.push_str(e);
            d.push('\n');
        }
        d.push('\n');
    }
    d.push_str(&format!("Our reference: riskdesk case {}.", f.case_id));
    let mut title = format!("Suspicious activity: {}", f.customer_name);
    if title.chars().count() > 120 {
        title = title.chars().take(117).collect::<String>() + "...";
    }
    Draft {
        title,
        severity: provider_severity(f.severity).into(),
        description: d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_as_strings_or_integers() {
        assert_eq!(status_name(&serde_json::json!(3)), "attention_needed");
        assert_eq!(status_name(&serde_json::json!("Open")), "open");
        assert_eq!(status_name(&serde_json::json!(9)), "unknown(9)");
    }

    #[test]
    fn draft_carries_the_evidence() {
        let ev = vec!["alert crypto mining: 40 GPU hours".to_owned()];
        let subs = vec!["sub-1".to_owned()];
        let d = draft(&CaseFacts {
            case_id: "c1",
            severity: "high",
            customer_name: "Contoso",
            provider_customer_id: Some("t-1"),
            provider_subscription_ids: &subs,
            summary: "GPU spend surge on a new account.",
            evidence: &ev,
        });
        assert_eq!(d.severity, "critical");
        assert_eq!(d.title, "Suspicious activity: Contoso");
        assert!(d.description.contains("customer tenant t-1"));
        assert!(
            d.description
                .contains("- alert crypto mining: 40 GPU hours")
        );
        assert!(d.description.contains("sub-1"));
        assert!(d.description.ends_with("riskdesk case c1."));
    }
}
