//! Cloud instances (the Partner Center variants) modelled as data: endpoints and what each
//! allows. Facts: Microsoft's Partner Center documentation on the cloud instances
//! (<https://learn.microsoft.com/partner-center/developer/partner-center-rest-api-reference>) and
//! its article on non-payment, fraud and misuse
//! (<https://learn.microsoft.com/partner-center/customers/non-payment-fraud-misuse>: the
//! 21Vianet-operated variant offers blocking access and suspension, not cancellation).

use serde::{Deserialize, Serialize};

use crate::lifecycle::LifecycleAction;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloudInstance {
    Global,
    UsGovernment,
    Germany,
    /// Written `china_21vianet`, as the API reads it (`china21vianet`, what serde's snake case
    /// made of the name and the OpenAPI document used to say, is still read).
    #[serde(rename = "china_21vianet", alias = "china21vianet")]
    China21vianet,
}

/// What an instance is and allows. One row per instance; code asks the row, never the name.
#[derive(Debug)]
pub struct InstanceProfile {
    pub display_name: &'static str,
    pub rest_base: &'static str,
    pub token_authority: &'static str,
    pub arm_base: &'static str,
    pub graph_base: &'static str,
    /// Subscriptions can be cancelled outright (not on 21Vianet: block access or suspend).
    pub allows_cancel: bool,
    pub has_azure_plan: bool,
    pub has_usage_budget: bool,
    pub has_audit_records: bool,
    pub has_service_requests_api: bool,
}

static GLOBAL: InstanceProfile = InstanceProfile {
    display_name: "Partner Center (global)",
    rest_base: "https://api.partnercenter.microsoft.com",
    token_authority: "https://login.microsoftonline.com/",
    arm_base: "https://management.azure.com",
    graph_base: "https://graph.microsoft.com",
    allows_cancel: true,
    has_azure_plan: true,
    has_usage_budget: true,
    has_audit_records: true,
    has_service_requests_api: true,
};
static US_GOVERNMENT: InstanceProfile = InstanceProfile {
    display_name: "Partner Center for Microsoft Cloud for US Government",
    rest_base: "https://api.partnercenter.microsoft.com",
    token_authority: "https://login.microsoftonline.us/",
    arm_base: "https://management.usgovcloudapi.net",
    graph_base: "https://graph.microsoft.us",
    allows_cancel: true,
    has_azure_plan: true,
    has_usage_budget: true,
    has_audit_records: true,
    has_service_requests_api: true,
};
static GERMANY: InstanceProfile = InstanceProfile {
    display_name: "Partner Center for Microsoft Cloud Germany",
    rest_base: "https://api.partnercenter.microsoft.com",
    token_authority: "https://login.microsoftonline.de/",
    arm_base: "https://management.core.cloudapi.de",
    graph_base: "https://graph.microsoft.de",
    allows_cancel: true,
    has_azure_plan: false,
    has_usage_budget: true,
    has_audit_records: true,
    has_service_requests_api: true,
};
static CHINA_21VIANET: InstanceProfile = InstanceProfile {
    display_name: "Partner Center operated by 21Vianet",
    rest_base: "https://partner.partnercenterapi.microsoftonline.cn",
    token_authority: "https://login.chinacloudapi.cn/",
    arm_base: "https://management.chinacloudapi.cn",
    graph_base: "https://microsoftgraph.chinacloudapi.cn",
    allows_cancel: false,
    has_azure_plan: false,
    has_usage_budget: false,
    has_audit_records: false,
    has_service_requests_api: false,
};

impl CloudInstance {
    pub const ALL: [CloudInstance; 4] = [
        CloudInstance::Global,
        CloudInstance::UsGovernment,
        CloudInstance::Germany,
        CloudInstance::China21vianet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloudInstance::Global => "global",
            CloudInstance::UsGovernment => "us_government",
            CloudInstance::Germany => "germany",
            CloudInstance::China21vianet => "china_21vianet",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn profile(self) -> &'static InstanceProfile {
        match self {
            CloudInstance::Global => &GLOBAL,
            CloudInstance::UsGovernment => &US_GOVERNMENT,
            CloudInstance::Germany => &GERMANY,
            CloudInstance::China21vianet => &CHINA_21VIANET,
        }
    }

    /// Whether a lifecycle action exists on this instance at all (independent of state).
    pub fn allows(self, action: LifecycleAction) -> bool {
        match action {
            LifecycleAction::Cancel => self.profile().allows_cancel,
            LifecycleAction::Suspend
            | LifecycleAction::DisableAccess
            | LifecycleAction::Reactivate => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_21vianet_forbids_cancel() {
        for c in CloudInstance::ALL {
            assert_eq!(
                c.allows(LifecycleAction::Cancel),
                c != CloudInstance::China21vianet,
                "{c:?}"
            );
            assert!(c.allows(LifecycleAction::Suspend));
            assert!(c.allows(LifecycleAction::DisableAccess));
            assert!(c.allows(LifecycleAction::Reactivate));
            assert_eq!(CloudInstance::parse(c.as_str()), Some(c));
        }
        assert!(
            CloudInstance::China21vianet
                .profile()
                .rest_base
                .ends_with(".cn")
        );
    }
}
