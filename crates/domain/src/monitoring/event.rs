//! The event contract: what partners send to `POST /v1/events` and what the file readers
//! produce. [`RawEvent`] is the wire shape (field names are a public contract); [`Event`] is a
//! validated event, built only by [`RawEvent::validate`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::cost::Cost;
use crate::money::Currency;

const ID_MAX: usize = 200;
const TEXT_MAX: usize = 200;
const PROPERTIES_MAX: usize = 16 * 1024;

/// An event as sent. Unknown fields are refused, so a misspelt field is an error, not a
/// silently missing value.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    /// `usage` or `activity`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Partner-supplied, unique per tenant: a re-sent event is recognised and not counted again.
    pub event_id: Option<String>,
    /// riskdesk's customer id — or give `customer_external_id`.
    pub customer_id: Option<String>,
    /// The partner's own customer id; events for an external id riskdesk does not know yet are
    /// kept and applied when a customer with that `external_id` appears.
    pub customer_external_id: Option<String>,
    pub subscription_id: Option<String>,
    /// When it happened, RFC 3339 (e.g. `2026-11-02T14:00:00Z`).
    pub time: Option<String>,
    /// usage: e.g. `Virtual Machines`, `Bandwidth`, `Storage`.
    pub meter_category: Option<String>,
    /// usage: the SKU, e.g. `NC24ads A100 v4`.
    pub meter_name: Option<String>,
    /// usage: e.g. `westeurope`.
    pub region: Option<String>,
    pub resource_id: Option<String>,
    /// usage: a number or a decimal string.
    #[schema(value_type = Option<String>)]
    pub quantity: Option<serde_json::Value>,
    pub unit: Option<String>,
    /// usage: a decimal string, up to 9 decimals (`"0.000016059"`).
    pub cost: Option<serde_json::Value>,
    /// usage: ISO 4217.
    pub currency: Option<String>,
    /// activity: e.g. `role_assignment`, `user_added`, `sign_in_failure`, `quota_increase`,
    /// `vm_created`, `firewall_rule_opened`, `provider_fraud_notification`.
    pub operation: Option<String>,
    pub actor: Option<String>,
    /// activity: e.g. `succeeded`, `failed`.
    pub status: Option<String>,
    /// activity: any further details (an object).
    #[schema(value_type = Option<Object>)]
    pub properties: Option<serde_json::Value>,
}

/// Whose event it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CustomerRef {
    Id(Uuid),
    External(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Usage {
    pub meter_category: String,
    pub meter_name: String,
    pub region: String,
    pub resource_id: Option<String>,
    /// Kept as the decimal text given.
    pub quantity: Option<String>,
    pub unit: Option<String>,
    pub cost: Cost,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    pub operation: String,
    pub actor: Option<String>,
    pub status: Option<String>,
    /// A JSON object.
    pub properties: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventBody {
    Usage(Usage),
    Activity(Activity),
}

/// A validated event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub customer: CustomerRef,
    pub subscription_id: Option<Uuid>,
    pub time: Timestamp,
    pub body: EventBody,
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self.body {
            EventBody::Usage(_) => "usage",
            EventBody::Activity(_) => "activity",
        }
    }
}

fn text(field: &str, v: &Option<String>, required: bool) -> Result<Option<String>, String> {
    match v.as_deref().map(str::trim) {
        None | Some("") if required => Err(format!("`{field}` is required")),
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > TEXT_MAX => {
            Err(format!("`{field}` is longer than {TEXT_MAX} characters"))
        }
        Some(s) if s.chars().any(char::is_control) => {
            Err(format!("`{field}` contains control characters"))
        }
        Some(s) => Ok(Some(s.to_owned())),
    }
}

fn decimal_text(field: &str, v: &serde_json::Value) -> Result<String, String> {
    let s = match v {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.trim().to_owned(),
        _ => return Err(format!("`{field}` must be a number or a decimal string")),
    };
    let digits = s.strip_prefix('-').unwrap_or(&s);
    let (i, f) = digits.split_once('.').unwrap_or((digits, "0"));
    if i.is_empty()
        || f.is_empty()
        || !i.bytes().all(|b| b.is_ascii_digit())
        || !f.bytes().all(|b| b.is_ascii_digit())
        || s.len() > 40
    {
        return Err(format!("`{field}` '{s}' is not a decimal number"));
    }
    Ok(s)
}

impl RawEvent {
    /// Checks every field and builds the event; the error names the field and what is wrong.
    pub fn validate(self) -> Result<Event, String> {
        let kind = text("type", &self.kind, true)?.unwrap_or_default();
        let event_id = match self.event_id.as_deref() {
            None | Some("") => return Err("`event_id` is required".into()),
            Some(s) if s.chars().count() > ID_MAX => {
                return Err(format!("`event_id` is longer than {ID_MAX} characters"));
            }
            Some(s) if s.chars().any(char::is_control) => {
                return Err("`event_id` contains control characters".into());
            }
            Some(s) => s.to_owned(),
        };
        let customer = match (
            self.customer_id.as_deref(),
            text("customer_external_id", &self.customer_external_id, false)?,
        ) {
            (Some(_), Some(_)) => {
                return Err("give `customer_id` or `customer_external_id`, not both".into());
            }
            (Some(id), None) => CustomerRef::Id(
                Uuid::parse_str(id).map_err(|_| format!("`customer_id` '{id}' is not a UUID"))?,
            ),
            (None, Some(ext)) => CustomerRef::External(ext),
            (None, None) => {
                return Err("`customer_id` or `customer_external_id` is required".into());
            }
        };
        let subscription_id = match self.subscription_id.as_deref() {
            None | Some("") => None,
            Some(s) => Some(
                Uuid::parse_str(s).map_err(|_| format!("`subscription_id` '{s}' is not a UUID"))?,
            ),
        };
        let time = match self.time.as_deref() {
            None | Some("") => return Err("`time` is required".into()),
            Some(t) => t.parse::<Timestamp>().map_err(|_| {
                format!("`time` '{t}' is not an RFC 3339 time with an offset (e.g. 2026-11-02T14:00:00Z)")
            })?,
        };
        let usage_fields = [
            ("meter_category", self.meter_category.is_some()),
            ("meter_name", self.meter_name.is_some()),
            ("region", self.region.is_some()),
            ("resource_id", self.resource_id.is_some()),
            ("quantity", self.quantity.is_some()),
            ("unit", self.unit.is_some()),
            ("cost", self.cost.is_some()),
            ("currency", self.currency.is_some()),
        ];
        let activity_fields = [
            ("operation", self.operation.is_some()),
            ("actor", self.actor.is_some()),
            ("status", self.status.is_some()),
            ("properties", self.properties.is_some()),
        ];
        let foreign = |fields: &[(&str, bool)], other: &str| -> Result<(), String> {
            match fields.iter().find(|(_, present)| *present) {
                Some((f, _)) => Err(format!(
                    "`{f}` belongs to `{other}` events, not `{kind}` events"
                )),
                None => Ok(()),
            }
        };
        let body = match kind.as_str() {
            "usage" => {
                foreign(&activity_fields, "activity")?;
                let currency =
                    text("currency", &self.currency, true)?.ok_or("`currency` is required")?;
                let currency =
                    Currency::parse(&currency).map_err(|e| format!("`currency`: {}", e.0))?;
                let cost = match &self.cost {
                    None => return Err("`cost` is required".into()),
                    Some(serde_json::Value::String(s)) => {
                        Cost::parse(s, currency).map_err(|e| format!("`cost`: {}", e.0))?
                    }
                    Some(_) => {
                        return Err("`cost` must be a decimal string like \"12.50\" (numbers lose exactness)".into());
                    }
                };
                EventBody::Usage(Usage {
                    meter_category: text("meter_category", &self.meter_category, true)?
                        .unwrap_or_default(),
                    meter_name: text("meter_name", &self.meter_name, true)?.unwrap_or_default(),
                    region: text("region", &self.region, true)?.unwrap_or_default(),
                    resource_id: bounded_opt("resource_id", self.resource_id, 1024)?,
                    quantity: self
                        .quantity
                        .as_ref()
                        .map(|q| decimal_text("quantity", q))
                        .transpose()?,
                    unit: text("unit", &self.unit, false)?,
                    cost,
                })
            }
            "activity" => {
                foreign(&usage_fields, "usage")?;
                let properties = match self.properties {
                    None => serde_json::Value::Object(Default::default()),
                    Some(p @ serde_json::Value::Object(_)) => {
                        if p.to_string().len() > PROPERTIES_MAX {
                            return Err(format!(
                                "`properties` is larger than {PROPERTIES_MAX} bytes"
                            ));
                        }
                        if let Some((at, _)) =
                            crate::values::control_character_in_json(&p, "properties", true)
                        {
                            return Err(format!("`{at}` contains control characters"));
                        }
                        p
                    }
                    Some(_) => return Err("`properties` must be an object".into()),
                };
                EventBody::Activity(Activity {
                    operation: text("operation", &self.operation, true)?.unwrap_or_default(),
                    actor: text("actor", &self.actor, false)?,
                    status: text("status", &self.status, false)?,
                    properties,
                })
            }
            other => {
                return Err(format!(
                    "`type` must be `usage` or `activity`, not '{other}'"
                ));
            }
        };
        Ok(Event {
            event_id,
            customer,
            subscription_id,
            time,
            body,
        })
    }
}

fn bounded_opt(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, String> {
    match v {
        Some(s) if s.chars().count() > max => {
            Err(format!("`{field}` is longer than {max} characters"))
        }
        Some(s) if s.is_empty() => Ok(None),
        Some(s) if s.chars().any(char::is_control) => {
            Err(format!("`{field}` contains control characters"))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(v: serde_json::Value) -> Result<Event, String> {
        serde_json::from_value::<RawEvent>(v)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn a_usage_event() {
        let e = raw(serde_json::json!({"type": "usage", "event_id": "u-1", "customer_external_id": "C-9",
            "time": "2026-11-02T14:00:00Z", "meter_category": "Virtual Machines", "meter_name": "NC24ads A100 v4",
            "region": "westeurope", "quantity": 3, "unit": "Hours", "cost": "11.016", "currency": "EUR"}))
        .unwrap();
        assert_eq!(e.customer, CustomerRef::External("C-9".into()));
        let EventBody::Usage(u) = e.body else {
            panic!("usage expected")
        };
        assert_eq!(u.cost.picos, 11_016_000_000_000);
        assert_eq!(u.quantity.as_deref(), Some("3"));
    }

    /// Found by fuzzing (fuzz/regressions/event_json): `resource_id` was checked for length only.
    #[test]
    fn a_resource_id_with_a_control_character_is_refused() {
        for bad in ["a\u{0}b", "a\u{7f}b", "a\u{16}b"] {
            let e = raw(
                serde_json::json!({"type": "usage", "event_id": "u-1", "customer_external_id": "C",
                "time": "2026-11-02T14:00:00Z", "meter_category": "Storage", "meter_name": "LRS", "region": "westeurope",
                "cost": "1.00", "currency": "EUR", "resource_id": bad}),
            );
            let err = e.unwrap_err();
            assert!(
                err.contains("`resource_id` contains control characters"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn an_activity_event() {
        let e = raw(serde_json::json!({"type": "activity", "event_id": "a-1", "customer_id": "0190c3f8-9a4e-7cc2-8b4a-37e7ad1f2a10",
            "time": "2026-11-02T14:00:00+01:00", "operation": "sign_in_failure", "actor": "eve@example.com",
            "status": "failed", "properties": {"ip": "203.0.113.9"}}))
        .unwrap();
        assert_eq!(e.kind(), "activity");
        assert_eq!(e.time.to_string(), "2026-11-02T13:00:00Z");
    }

    #[test]
    fn each_mistake_is_named() {
        let base = serde_json::json!({"type": "usage", "event_id": "u-1", "customer_external_id": "C",
            "time": "2026-11-02T14:00:00Z", "meter_category": "VM", "meter_name": "D2", "region": "x",
            "cost": "1.00", "currency": "USD"});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base.clone();
            b[k] = v;
            raw(b).unwrap_err()
        };
        assert!(with("cost", serde_json::json!(1.5)).contains("decimal string"));
        assert!(with("cost", serde_json::json!("1.0000000000001")).contains("12 significant"));
        assert!(with("currency", serde_json::json!("ZZZ")).contains("currency"));
        assert!(with("time", serde_json::json!("2026-11-02 14:00")).contains("RFC 3339"));
        assert!(with("type", serde_json::json!("click")).contains("usage` or `activity"));
        assert!(with("operation", serde_json::json!("x")).contains("belongs to `activity`"));
        assert!(with("customer_id", serde_json::json!("nope")).contains("not both"));
        assert!(with("quantity", serde_json::json!("many")).contains("quantity"));
        assert!(with("event_id", serde_json::json!("")).contains("event_id"));
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove("meter_name");
        assert!(raw(b).unwrap_err().contains("`meter_name` is required"));
        let mut b = base.clone();
        b["colour"] = serde_json::json!("red");
        assert!(raw(b).unwrap_err().contains("unknown field `colour`"));
    }
}
