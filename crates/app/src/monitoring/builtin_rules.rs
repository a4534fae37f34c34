//! The detectors riskdesk ships: ordinary rules (editable, versioned, can be switched to shadow
//! or off) added to every tenant, active, the first time its rules are read. Each names the
//! abuse from Microsoft's guidance it looks for; the conditions use the event vocabulary of the
//! README (`operation` names such as `sign_in_failure`, `role_assignment`, `quota_increase`).

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use riskdesk_domain::audit::Actor;
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::rules::{self, RuleRow};
use riskdesk_storage::time::to_micros;
use uuid::Uuid;

use crate::kernel::Uow;
use crate::kernel::error::AppError;

pub struct Builtin {
    pub key: &'static str,
    pub name: &'static str,
    pub scope: &'static str,
    pub severity: &'static str,
    pub cooldown_seconds: i64,
    pub condition: &'static str,
}

/// GPU / HPC sizes (Azure N-series and H-series) and their usual SKU markers.
const GPU: &str = "(event.meter_name.contains('NC') || event.meter_name.contains('ND') || event.meter_name.contains('NV') || event.meter_name.contains('A100') || event.meter_name.contains('H100') || event.meter_name.contains('HB') || event.meter_name.contains('HC'))";

pub fn builtins() -> Vec<Builtin> {
    vec![
        Builtin {
            key: "crypto_mining_gpu_surge",
            name: "Crypto mining: GPU/HPC spend above 200 a day on a young account or in a new region",
            scope: "usage",
            severity: "high",
            cooldown_seconds: 6 * 3600,
            condition: Box::leak(format!(
                "event.meter_category == 'Virtual Machines' && {GPU} && (customer.age_days < 30 || new_region()) \
                 && spend_in('Virtual Machines', '24h') > 200.0"
            ).into_boxed_str()),
        },
        Builtin {
            key: "crypto_mining_quota_then_vms",
            name: "Crypto mining: quota increase followed by mass VM creation",
            scope: "activity",
            severity: "high",
            cooldown_seconds: 6 * 3600,
            condition: "event.operation == 'vm_created' && ops('quota_increase', '24h') >= 1 && ops('vm_created', '1h') >= 10",
        },
        Builtin {
            key: "ddos_egress_spike",
            name: "DDoS or spam: egress bandwidth spike",
            scope: "usage",
            severity: "high",
            cooldown_seconds: 3600,
            condition: "event.meter_category == 'Bandwidth' && spend_in('Bandwidth', '1h') > 50.0 && baseline_ratio('1h') > 10.0",
        },
        Builtin {
            key: "spam_port_25_opened",
            name: "Spam: outbound port 25 opened",
            scope: "activity",
            severity: "high",
            cooldown_seconds: 24 * 3600,
            condition: "event.operation == 'firewall_rule_opened' && 'port' in event.properties && string(event.properties.port) == '25'",
        },
        Builtin {
            key: "hacking_sign_in_failures",
            name: "Hacking: burst of failed sign-ins",
            scope: "activity",
            severity: "medium",
            cooldown_seconds: 3600,
            condition: "event.operation == 'sign_in_failure' && ops('sign_in_failure', '10m') >= 20",
        },
        Builtin {
            key: "hacking_privileged_outsider",
            name: "Hacking: privileged role given to an outside user",
            scope: "activity",
            severity: "high",
            cooldown_seconds: 3600,
            condition: "event.operation == 'role_assignment' && 'role' in event.properties && \
                        event.properties.role in ['Owner', 'Global Administrator', 'User Access Administrator', 'Contributor'] && \
                        'external' in event.properties && event.properties.external == true",
        },
        Builtin {
            key: "malware_storage_egress",
            name: "Malware distribution: storage egress surge",
            scope: "usage",
            severity: "high",
            cooldown_seconds: 3600,
            condition: "event.meter_category == 'Storage' && spend_in('Storage', '1h') > 20.0 && baseline_ratio('1h') > 10.0",
        },
        Builtin {
            key: "malware_public_storage",
            name: "Malware distribution: storage opened to public access",
            scope: "activity",
            severity: "medium",
            cooldown_seconds: 24 * 3600,
            condition: "event.operation == 'storage_public_access_enabled'",
        },
        Builtin {
            key: "resold_admin_churn",
            name: "Resold stolen subscription: owner/admin changes and many new users on a new account",
            scope: "activity",
            severity: "high",
            cooldown_seconds: 24 * 3600,
            condition: "customer.age_days < 60 && event.operation in ['owner_changed', 'admin_changed', 'user_added'] && \
                        ops('owner_changed', '7d') + ops('admin_changed', '7d') >= 1 && ops('user_added', '24h') >= 10",
        },
        Builtin {
            key: "resold_many_regions",
            name: "Resold stolen subscription: sudden usage in many regions on a new account",
            scope: "usage",
            severity: "high",
            cooldown_seconds: 24 * 3600,
            condition: "customer.age_days < 30 && distinct_regions('24h') >= 5",
        },
        Builtin {
            key: "theft_of_service_over_credit",
            name: "Theft of service: usage far above the credit limit",
            scope: "usage",
            severity: "critical",
            cooldown_seconds: 24 * 3600,
            condition: "customer.credit_limit > 0.0 && spend('30d') > 1.5 * customer.credit_limit",
        },
        Builtin {
            key: "theft_of_service_before_payment",
            name: "Theft of service: heavy usage before the first payment",
            scope: "usage",
            severity: "high",
            cooldown_seconds: 24 * 3600,
            condition: "!customer.paid && customer.age_days < 45 && spend('30d') > 1000.0",
        },
        Builtin {
            key: "provider_fraud_notification",
            name: "The provider reported fraud on this customer",
            scope: "activity",
            severity: "critical",
            cooldown_seconds: 0,
            condition: "event.operation == 'provider_fraud_notification'",
        },
    ]
}

/// Adds the built-in rules a tenant does not have yet (by key), active, audited.
pub async fn ensure(tx: &mut Uow, tenant: TenantId, now: Timestamp) -> Result<u32, AppError> {
    // Concurrent first requests of a tenant would each add the rules (one then fails on the
    // unique name): the later waits here, then reads what the earlier committed.
    rules::lock_builtins(tx, tenant).await?;
    let existing: Vec<String> = rules::list_tx(tx, tenant)
        .await?
        .into_iter()
        .filter_map(|r| r.builtin)
        .collect();
    let mut added = 0;
    let actor = Actor::system("builtin-rules");
    for b in builtins() {
        if existing.iter().any(|k| k == b.key) {
            continue;
        }
        let row = RuleRow {
            id: Uuid::now_v7(),
            name: b.name.to_owned(),
            scope: b.scope.to_owned(),
            condition: b.condition.split_whitespace().collect::<Vec<_>>().join(" "),
            severity: b.severity.to_owned(),
            cooldown_seconds: b.cooldown_seconds,
            mode: "active".into(),
            action_json: None,
            builtin: Some(b.key.to_owned()),
            version: 1,
            created_at: to_micros(now),
            updated_at: to_micros(now),
        };
        rules::insert(tx, tenant, &row).await?;
        audit::append(
            tx,
            tenant,
            now,
            AuditDraft::new(&actor, "rule.create", "rule", row.id).after(&row),
        )
        .await?;
        added += 1;
    }
    Ok(added)
}
