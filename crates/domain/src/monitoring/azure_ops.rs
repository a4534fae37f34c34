//! Azure Activity Log operations as the detectors name them.
//!
//! The Activity Log names Azure Resource Manager operations
//! (`Microsoft.Compute/virtualMachines/write`); the built-in detectors and most partners'
//! rules speak of what happened (`vm_created`, `quota_increase`, `firewall_rule_opened`,
//! `storage_public_access_enabled`, `role_assignment`). [`classify`] turns one into the other
//! from the operation, its status and the request body ARM logged (`properties.requestbody`,
//! a JSON text, often absent or cut short). An operation it does not know keeps its ARM name.
//!
//! Only a **succeeded** write counts: ARM logs each write as `Started` then `Succeeded` (or
//! `Accepted`, `Failed`), and counting both would double every count a rule compares. A VM
//! write counts as a creation only when ARM answered `Created` (an update answers `OK`).

use serde_json::{Map, Value};

/// What an Activity Log event is, for the detectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    /// The detector's operation name, or `None` to keep the ARM operation.
    pub operation: Option<&'static str>,
    /// Facts read from the request body (`port`, `direction`, `access`, `role`, …).
    pub properties: Map<String, Value>,
}

/// Built-in Azure role definitions (their ids are the same in every tenant).
const ROLES: &[(&str, &str)] = &[
    ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner"),
    ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"),
    (
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "User Access Administrator",
    ),
    ("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader"),
];

/// `operation`: the ARM operation name; `status`: `status.value`; `status_code`:
/// `properties.statusCode`; `request_body`: `properties.requestbody` (a JSON text).
pub fn classify(
    operation: &str,
    status: Option<&str>,
    status_code: Option<&str>,
    request_body: Option<&str>,
) -> Classified {
    let mut props = Map::new();
    let op = operation.to_ascii_lowercase();
    let succeeded = status.is_some_and(|s| s.eq_ignore_ascii_case("succeeded"));
    let body: Option<Value> = request_body
        .filter(|b| !b.trim().is_empty())
        .and_then(|b| serde_json::from_str(b).ok());
    let body_props = body.as_ref().and_then(|b| b.get("properties"));
    let operation = if !succeeded {
        None
    } else {
        match op.as_str() {
            "microsoft.compute/virtualmachines/write" => status_code
                .is_none_or(|c| c.eq_ignore_ascii_case("created"))
                .then_some("vm_created"),
            "microsoft.capacity/resourceproviders/locations/servicelimits/write"
            | "microsoft.quota/quotas/write"
            | "microsoft.compute/locations/quotas/write" => Some("quota_increase"),
            "microsoft.network/networksecuritygroups/securityrules/write" => {
                firewall(body_props, &mut props).then_some("firewall_rule_opened")
            }
            "microsoft.network/networksecuritygroups/write" => {
                // A whole group written at once: any allowing rule in it.
                let rules = body_props
                    .and_then(|p| p.get("securityRules"))
                    .and_then(Value::as_array);
                let mut opened = false;
                for r in rules.into_iter().flatten() {
                    let mut one = Map::new();
                    if firewall(r.get("properties"), &mut one) {
                        // The port detectors look for wins over the others.
                        if !opened || one.get("port").and_then(Value::as_str) == Some("25") {
                            props = one;
                        }
                        opened = true;
                    }
                }
                opened.then_some("firewall_rule_opened")
            }
            "microsoft.storage/storageaccounts/write" => body_props
                .and_then(|p| p.get("allowBlobPublicAccess"))
                .and_then(Value::as_bool)
                .filter(|on| *on)
                .map(|_| "storage_public_access_enabled"),
            "microsoft.storage/storageaccounts/blobservices/containers/write" => body_props
                .and_then(|p| p.get("publicAccess"))
                .and_then(Value::as_str)
                .filter(|a| !a.eq_ignore_ascii_case("none"))
                .map(|_| "storage_public_access_enabled"),
            "microsoft.authorization/roleassignments/write" => {
                if let Some(p) = body_props {
                    if let Some(def) = p.get("roleDefinitionId").and_then(Value::as_str) {
                        let id = def.rsplit('/').next().unwrap_or(def).to_ascii_lowercase();
                        let name = ROLES
                            .iter()
                            .find(|(g, _)| *g == id)
                            .map(|(_, n)| (*n).to_owned())
                            .unwrap_or(id);
                        props.insert("role".into(), Value::String(name));
                    }
                    if let Some(t) = p.get("principalType").and_then(Value::as_str) {
                        props.insert("principal_type".into(), Value::String(t.to_owned()));
                    }
                    if let Some(t) = p.get("principalId").and_then(Value::as_str) {
                        props.insert("principal_id".into(), Value::String(t.to_owned()));
                    }
                }
                Some("role_assignment")
            }
            _ => None,
        }
    };
    Classified {
        operation,
        properties: props,
    }
}

/// An allowing security rule: `direction`, `access`, `protocol` and `port` (25 when the
/// rule's destination ports cover it, else the first range as written) into `props`.
fn firewall(rule: Option<&Value>, props: &mut Map<String, Value>) -> bool {
    let Some(r) = rule else { return false };
    let access = r.get("access").and_then(Value::as_str).unwrap_or("Allow");
    if !access.eq_ignore_ascii_case("allow") {
        return false;
    }
    let mut ranges: Vec<String> = Vec::new();
    if let Some(p) = r.get("destinationPortRange").and_then(Value::as_str) {
        ranges.push(p.trim().to_owned());
    }
    for p in r
        .get("destinationPortRanges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        ranges.push(p.trim().to_owned());
    }
    for (k, name) in [
        ("direction", "direction"),
        ("protocol", "protocol"),
        ("access", "access"),
    ] {
        if let Some(v) = r.get(k).and_then(Value::as_str) {
            props.insert(name.into(), Value::String(v.to_owned()));
        }
    }
    let port = if ranges.iter().any(|r| covers(r, 25)) {
        Some("25".to_owned())
    } else {
        ranges.first().cloned()
    };
    if let Some(p) = port {
        props.insert("port".into(), Value::String(p));
    }
    if !ranges.is_empty() {
        props.insert(
            "port_ranges".into(),
            Value::Array(ranges.into_iter().map(Value::String).collect()),
        );
    }
    true
}

/// Whether a port range as ARM writes it (`25`, `20-30`, `*`) covers `port`.
fn covers(range: &str, port: u16) -> bool {
    if range == "*" {
        return true;
    }
    match range.split_once('-') {
        Some((a, b)) => match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            (Ok(a), Ok(b)) => a <= port && port <= b,
            _ => false,
        },
        None => range.parse::<u16>() == Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_counts_once_and_only_when_created() {
        let w = "Microsoft.Compute/virtualMachines/write";
        assert_eq!(
            classify(w, Some("Succeeded"), Some("Created"), None).operation,
            Some("vm_created")
        );
        assert_eq!(classify(w, Some("Started"), None, None).operation, None);
        assert_eq!(classify(w, Some("Accepted"), None, None).operation, None);
        assert_eq!(
            classify(w, Some("Succeeded"), Some("OK"), None).operation,
            None
        );
    }

    #[test]
    fn quota_requests_are_quota_increases() {
        for op in [
            "Microsoft.Capacity/resourceProviders/locations/serviceLimits/write",
            "Microsoft.Quota/quotas/write",
        ] {
            assert_eq!(
                classify(op, Some("Succeeded"), None, None).operation,
                Some("quota_increase")
            );
        }
    }

    #[test]
    fn an_allowing_rule_reports_port_25_when_its_range_covers_it() {
        let op = "Microsoft.Network/networkSecurityGroups/securityRules/write";
        let body = r#"{"properties":{"direction":"Outbound","access":"Allow","protocol":"Tcp","destinationPortRange":"20-30"}}"#;
        let c = classify(op, Some("Succeeded"), Some("Created"), Some(body));
        assert_eq!(c.operation, Some("firewall_rule_opened"));
        assert_eq!(c.properties["port"], "25");
        assert_eq!(c.properties["direction"], "Outbound");
        let body =
            r#"{"properties":{"access":"Allow","destinationPortRanges":["443","8080-8090"]}}"#;
        let c = classify(op, Some("Succeeded"), None, Some(body));
        assert_eq!(c.properties["port"], "443");
        let deny = r#"{"properties":{"access":"Deny","destinationPortRange":"25"}}"#;
        assert_eq!(
            classify(op, Some("Succeeded"), None, Some(deny)).operation,
            None
        );
    }

    #[test]
    fn a_group_written_whole_reports_its_port_25_rule() {
        let body = r#"{"properties":{"securityRules":[
            {"properties":{"access":"Allow","destinationPortRange":"443"}},
            {"properties":{"access":"Allow","direction":"Outbound","destinationPortRange":"25"}}]}}"#;
        let c = classify(
            "Microsoft.Network/networkSecurityGroups/write",
            Some("Succeeded"),
            None,
            Some(body),
        );
        assert_eq!(c.operation, Some("firewall_rule_opened"));
        assert_eq!(c.properties["port"], "25");
    }

    #[test]
    fn storage_opened_to_the_public() {
        let c = classify(
            "Microsoft.Storage/storageAccounts/write",
            Some("Succeeded"),
            None,
            Some(r#"{"properties":{"allowBlobPublicAccess":true}}"#),
        );
        assert_eq!(c.operation, Some("storage_public_access_enabled"));
        let c = classify(
            "Microsoft.Storage/storageAccounts/write",
            Some("Succeeded"),
            None,
            Some(r#"{"properties":{"allowBlobPublicAccess":false}}"#),
        );
        assert_eq!(c.operation, None);
        let c = classify(
            "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            Some("Succeeded"),
            None,
            Some(r#"{"properties":{"publicAccess":"Container"}}"#),
        );
        assert_eq!(c.operation, Some("storage_public_access_enabled"));
    }

    #[test]
    fn role_assignments_name_built_in_roles() {
        let body = r#"{"properties":{"roleDefinitionId":"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635","principalId":"p1","principalType":"User"}}"#;
        let c = classify(
            "Microsoft.Authorization/roleAssignments/write",
            Some("Succeeded"),
            Some("Created"),
            Some(body),
        );
        assert_eq!(c.operation, Some("role_assignment"));
        assert_eq!(c.properties["role"], "Owner");
        assert_eq!(c.properties["principal_type"], "User");
    }

    #[test]
    fn unknown_operations_and_unreadable_bodies_keep_the_arm_name() {
        assert_eq!(
            classify("Microsoft.Web/sites/write", Some("Succeeded"), None, None).operation,
            None
        );
        assert_eq!(
            classify(
                "Microsoft.Storage/storageAccounts/write",
                Some("Succeeded"),
                None,
                Some("{\"properties\": {\"allowBlob"),
            )
            .operation,
            None
        );
    }
}
