//! Staff roles and what each may do. Handlers ask for a [`Permission`], never for a role, so
//! adding a role never means auditing every handler.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything inside its tenant.
    Admin,
    /// Customers, subscriptions and lifecycle actions.
    Analyst,
    /// The billing side (invoices, payments, dunning); read access to customers.
    Collections,
    /// Read-only, including the audit log.
    Auditor,
    /// Support staff: read everything, comment on cases.
    Support,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    ReadCustomers,
    WriteCustomers,
    ActOnSubscriptions,
    ReadAudit,
    WriteBilling,
    /// Send usage and activity events.
    IngestEvents,
    /// Set customers' spending budgets.
    ManageBudgets,
    /// Acknowledge or dismiss alerts.
    TriageAlerts,
    /// Write detection rules.
    ManageRules,
    /// Register webhook endpoints and re-send outbox messages (admin only).
    ManageIntegrations,
    /// Work the case queue: assign, comment, change status, take or propose actions, record
    /// provider notices and service requests.
    WorkCases,
    /// Approve or reject an action someone else proposed (maker-checker).
    ApproveActions,
    /// Add a comment to a case (support staff may, without working the case).
    CommentOnCases,
    /// Create, change and disable staff accounts (admin only).
    ManageStaff,
}

impl Permission {
    pub const ALL: [Permission; 14] = [
        Permission::ReadCustomers,
        Permission::WriteCustomers,
        Permission::ActOnSubscriptions,
        Permission::ReadAudit,
        Permission::WriteBilling,
        Permission::IngestEvents,
        Permission::ManageBudgets,
        Permission::TriageAlerts,
        Permission::ManageRules,
        Permission::ManageIntegrations,
        Permission::WorkCases,
        Permission::ApproveActions,
        Permission::CommentOnCases,
        Permission::ManageStaff,
    ];

    /// The name the OpenAPI document gives it (`x-permission` on each operation).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadCustomers => "read_customers",
            Permission::WriteCustomers => "write_customers",
            Permission::ActOnSubscriptions => "act_on_subscriptions",
            Permission::ReadAudit => "read_audit",
            Permission::WriteBilling => "write_billing",
            Permission::IngestEvents => "ingest_events",
            Permission::ManageBudgets => "manage_budgets",
            Permission::TriageAlerts => "triage_alerts",
            Permission::ManageRules => "manage_rules",
            Permission::ManageIntegrations => "manage_integrations",
            Permission::WorkCases => "work_cases",
            Permission::ApproveActions => "approve_actions",
            Permission::CommentOnCases => "comment_on_cases",
            Permission::ManageStaff => "manage_staff",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Analyst,
        Role::Collections,
        Role::Auditor,
        Role::Support,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Collections => "collections",
            Role::Auditor => "auditor",
            Role::Support => "support",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Analyst => matches!(
                p,
                ReadCustomers
                    | WriteCustomers
                    | ActOnSubscriptions
                    | IngestEvents
                    | ManageBudgets
                    | TriageAlerts
                    | ManageRules
                    | WorkCases
                    | ApproveActions
                    | CommentOnCases
            ),
            Role::Collections => matches!(p, ReadCustomers | WriteBilling | ManageBudgets),
            Role::Auditor => matches!(p, ReadCustomers | ReadAudit),
            Role::Support => matches!(p, ReadCustomers | ReadAudit | CommentOnCases),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn permission_names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert_eq!(Permission::parse("everything"), None);
    }

    #[test]
    fn permissions_by_role() {
        use Permission::*;
        assert!(Role::Admin.allows(ReadAudit));
        assert!(Role::Analyst.allows(ActOnSubscriptions));
        assert!(!Role::Analyst.allows(ReadAudit));
        assert!(!Role::Auditor.allows(WriteCustomers));
        assert!(!Role::Auditor.allows(ActOnSubscriptions));
        assert!(Role::Auditor.allows(ReadAudit));
        assert!(!Role::Collections.allows(ActOnSubscriptions));
        assert!(Role::Collections.allows(ReadCustomers));
        assert!(Role::Collections.allows(ManageBudgets));
        assert!(!Role::Collections.allows(IngestEvents));
        assert!(!Role::Auditor.allows(TriageAlerts));
        assert!(Role::Analyst.allows(TriageAlerts));
        assert!(Role::Analyst.allows(WorkCases));
        assert!(Role::Analyst.allows(ApproveActions));
        assert!(!Role::Collections.allows(ApproveActions));
        assert!(!Role::Auditor.allows(WorkCases));
        assert!(Role::Support.allows(CommentOnCases));
        assert!(Role::Support.allows(ReadAudit));
        assert!(!Role::Support.allows(WorkCases));
        assert!(!Role::Support.allows(ApproveActions));
        assert!(!Role::Auditor.allows(CommentOnCases));
        assert!(Role::Analyst.allows(CommentOnCases));
        assert!(!Role::Analyst.allows(ManageStaff));
        assert!(Role::Admin.allows(ManageStaff));
    }
}
