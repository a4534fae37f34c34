//! What the edge enforces, stated in the OpenAPI document: enums, formats, patterns, lengths
//! and ranges of parameters and body fields. The handlers' types say what shape a value has;
//! this says which values are accepted, so a client generated from the document (or a schema
//! fuzzer) sends what the API takes. The lists come from the domain where it has them
//! (countries, currencies, case kinds, action kinds, …), so the document and the validators
//! cannot drift apart; `tests/schemathesis` (run by `.ci/run`) checks the rest against a live
//! server.
//!
//! Rules are keyed by name: a query parameter by (path, name) or by name alone, a body field by
//! (schema, property) or by property alone (`*`). The most specific rule wins. Every string
//! left without an enum, a format or a pattern gets the control-character rule of
//! [`riskdesk_domain::values::forbidden_control`]: none at all, or tab and line feed in free
//! text ([`riskdesk_domain::values::FREE_TEXT_FIELDS`]).

use riskdesk_domain::values::is_free_text;
use serde_json::{Map, Value, json};

/// No control character (U+0000–U+001F, U+007F–U+009F).
const PLAIN: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";
/// Free text: tab and line feed kept.
const FREE: &str = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$";
/// Free text that must hold something other than white space (the validators trim).
const FREE_NONBLANK: &str =
    r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$";
/// A plain text that must hold something other than white space.
const PLAIN_NONBLANK: &str =
    r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";
/// A non-negative decimal amount as [`riskdesk_domain::money::Money::parse`] reads it (how
/// many decimals the currency allows — 2 for EUR, 0 for JPY — depends on the other field).
const DECIMAL_UNSIGNED: &str = r"^ *[0-9]{1,15}(\.[0-9]{1,12})? *$";
/// A decimal amount greater than zero.
const DECIMAL_POSITIVE: &str =
    r"^ *(0*[1-9][0-9]{0,14}(\.[0-9]{1,12})?|0+\.[0-9]{0,11}[1-9][0-9]{0,11}) *$";
/// A fully qualified DNS name in ASCII, as [`riskdesk_domain::values::DomainName`] reads it.
const DOMAIN: &str = r"^ *([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{1,63}|[Xx][Nn]--[A-Za-z0-9-]{0,58}[A-Za-z0-9])\.? *$";
/// A provider's id (Partner Center customer, subscription, ticket): printable ASCII.
const PROVIDER_ID: &str = r"^[\x21-\x7E]{1,128}$";
/// The `Idempotency-Key` header (see [`crate::extract::IdempotencyKey`]).
pub const IDEMPOTENCY_KEY: &str = r"^[\x21-\x7E]{1,255}$";

/// One constraint: a JSON object merged into a string (or integer) schema.
#[derive(Clone)]
enum Rule {
    /// `{"enum": [...]}` (null added when the field is nullable).
    OneOf(Vec<String>),
    /// Merged as is (format, pattern, lengths, minimum, …).
    Merge(Value),
    /// A date (`YYYY-MM-DD`) or an RFC 3339 instant.
    DateOrInstant,
    /// Left as it is (a value whose shape the handler checks, e.g. a cursor).
    Keep,
    /// An IPv4 or IPv6 address.
    Ip,
}

fn strings(list: impl IntoIterator<Item = impl AsRef<str>>) -> Rule {
    Rule::OneOf(list.into_iter().map(|s| s.as_ref().to_owned()).collect())
}

fn merge(v: Value) -> Rule {
    Rule::Merge(v)
}

fn uuid() -> Rule {
    merge(json!({"format": "uuid"}))
}
fn instant() -> Rule {
    merge(json!({"format": "date-time"}))
}
fn date() -> Rule {
    merge(json!({"format": "date"}))
}
fn text(max: usize, free: bool) -> Rule {
    merge(json!({"maxLength": max, "pattern": if free { FREE_NONBLANK } else { PLAIN_NONBLANK }}))
}
fn pattern(p: &str) -> Rule {
    merge(json!({ "pattern": p }))
}

/// The grammar `plain_http_url` in `routes/collections.rs` checks, as a pattern.
fn webhook_url() -> String {
    // A DNS label that does not start with `xn--` (case-insensitive).
    let label = r"([A-Za-z0-9-]{1,3}|[A-WYZa-wyz0-9-][A-Za-z0-9-]{3,62}|[Xx][A-MO-Za-mo-z0-9-][A-Za-z0-9-]{2,61}|[Xx][Nn][A-Za-z0-9][A-Za-z0-9-]{1,60}|[Xx][Nn]-[A-Za-z0-9][A-Za-z0-9-]{0,59})";
    // The last label starts with a letter (so it cannot be read as a number).
    let last = r"([A-WYZa-wyz][A-Za-z0-9-]{0,62}|[Xx]([A-MO-Za-mo-z0-9-][A-Za-z0-9-]{0,61})?|[Xx][Nn]([A-Za-z0-9][A-Za-z0-9-]{0,60})?|[Xx][Nn]-([A-Za-z0-9][A-Za-z0-9-]{0,59})?)";
    let octet = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    let port = r"([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
    format!(r"^https?://(({label}\.)*{last}|({octet}\.){{3}}{octet})(:{port})?(/[\x21-\x7E]*)?$")
}

fn severities() -> Rule {
    strings(riskdesk_domain::response::case::SEVERITIES)
}

/// Body fields by property name, whatever the schema.
fn property_rule(schema: &str, prop: &str) -> Option<Rule> {
    use riskdesk_domain::response::blocklist::BlockKind;
    use riskdesk_domain::response::{ActionKind, CaseStatus, NoticeStatus};
    let specific = match (schema, prop) {
        ("ActionIn", "kind") => Some(strings(ActionKind::ALL.iter().map(|k| k.as_str()))),
        ("ActionIn", "reason") => Some(strings(
            riskdesk_domain::lifecycle::Reason::ALL
                .iter()
                .map(|r| r.as_str()),
        )),
        ("AlertAction", "action") => Some(strings(["acknowledge", "dismiss", "reopen"])),
        ("BlockIn", "kind") => Some(strings(BlockKind::ALL.iter().map(|k| k.as_str()))),
        ("BlockIn", "value") => Some(text(320, false)),
        ("AssignIn", "assignee") => Some(text(200, false)),
        ("BlockIn", "reason") => Some(text(riskdesk_domain::customer::NOTE_MAX, true)),
        ("EnforcementIn", "action") => Some(strings(["suspend", "disable_access"])),
        ("EnforcementIn" | "OnBreachIn" | "RuleAction", "mode") => {
            Some(strings(["auto", "require_approval"]))
        }
        ("RuleAction", "action") => Some(strings(["suspend", "disable_access"])),
        ("OnBreachIn", "action") => Some(strings([
            "require_prepayment",
            "block_new_purchases",
            "suspend",
        ])),
        ("InstrumentIn" | "PaymentInstrumentIn", "type") => {
            Some(strings(["card", "bank_transfer", "invoice"]))
        }
        ("InstrumentIn" | "PaymentInstrumentIn", "bin") => Some(pattern(r"^[0-9]{6,8}$")),
        ("InstrumentIn" | "PaymentInstrumentIn", "last4") => Some(pattern(r"^[0-9]{4}$")),
        ("NoticeIn", "severity") => Some(severities()),
        ("NoticeIn", "sender" | "subject") => Some(text(1000, false)),
        ("NoticeIn", "body") => Some(text(100_000, true)),
        ("NoticeStatusIn", "status") => Some(strings(
            NoticeStatus::ALL
                .iter()
                .map(|s| s.as_str())
                .filter(|s| *s != "received"),
        )),
        ("ReviewRequest", "decision") => Some(strings(["approve", "reject"])),
        ("RuleIn", "mode") => Some(strings(["active", "shadow", "disabled"])),
        ("RuleIn", "name") => Some(text(100, false)),
        ("RuleIn" | "ValidateIn", "scope") => Some(strings(["usage", "activity", "signup"])),
        ("RuleIn", "severity") => Some(severities()),
        ("RuleIn", "condition") => Some(text(10_000, true)),
        ("StartVerification", "channel") => Some(strings(["sms", "totp"])),
        ("ConfirmVerification", "code") => Some(pattern(r"^[0-9]{6}$")),
        ("StatusIn" | "TakeNextIn" | "BulkIn", "status") => {
            Some(strings(CaseStatus::ALL.iter().map(|s| s.as_str())))
        }
        ("TakeNextIn", "kind") => Some(strings(
            riskdesk_domain::response::CaseKind::ALL
                .iter()
                .map(|k| k.as_str()),
        )),
        ("TakeNextIn", "severity") => Some(severities()),
        ("TakeNextIn" | "BulkIn", "assignee") => Some(text(200, false)),
        ("BulkIn", "op") => Some(strings(["assign", "unassign", "status", "comment"])),
        ("BulkIn", "ids") => Some(merge(
            json!({"minItems": 1, "maxItems": 500, "uniqueItems": true}),
        )),
        ("Step", "name") => Some(pattern(r"^[a-z0-9_]{1,40}$")),
        ("Step", "notice") => Some(strings(riskdesk_domain::billing::dunning::NOTICES)),
        ("RawEvent", "type") => Some(strings(["usage", "activity"])),
        ("RawEvent", "time") => Some(instant()),
        ("RawEvent", "customer_id") => Some(uuid()),
        ("RawEvent", "subscription_id" | "event_id" | "customer_external_id") => None,
        ("InvoiceIn", "number") => Some(text(64, false)),
        ("LineIn", "description") => Some(text(500, false)),
        ("CustomerLinkIn", "provider_customer_id") => Some(pattern(PROVIDER_ID)),
        ("SubscriptionLinkIn", "provider_subscription_id" | "azure_entitlement_id") => {
            Some(pattern(PROVIDER_ID))
        }
        ("TicketIn", "ticket_id") => Some(pattern(PROVIDER_ID)),
        ("EndpointIn", "url") => Some(pattern(&webhook_url())),
        ("AssessRequest", "ip") => Some(Rule::Ip),
        ("AssessRequest", "device_id") => Some(text(200, false)),
        ("CompanyIn", "address") => Some(text(500, true)),
        ("InvoiceIn", "lines") => Some(merge(json!({"minItems": 1, "maxItems": 1000}))),
        ("ValidateIn", "condition") => Some(pattern(FREE)),
        ("CreateSubscription", "offer") => Some(text(riskdesk_domain::customer::OFFER_MAX, false)),
        ("CreateSubscription", "quantity") => {
            Some(merge(json!({"minimum": 1, "maximum": 1_000_000})))
        }
        ("BudgetIn", "thresholds") => None,
        ("CreditTermsIn", "limit") => Some(pattern(DECIMAL_UNSIGNED)),
        _ => None,
    };
    if specific.is_some() {
        return specific;
    }
    Some(match prop {
        "currency" => strings(riskdesk_domain::values::currency_codes()),
        "country" => strings(riskdesk_domain::values::country_codes()),
        "customer_id" | "invoice_id" | "subscription_id" | "case_id" => uuid(),
        "as_of" | "received_at" | "expires_at" | "deadline" | "from" | "to" => instant(),
        "issue_date" | "due_date" | "hold_until" => date(),
        "amount" | "total" | "monthly_amount" | "first_period_amount" => pattern(DECIMAL_POSITIVE),
        "min_overdue_amount" => pattern(DECIMAL_UNSIGNED),
        "domain" => merge(json!({"pattern": DOMAIN, "maxLength": 253})),
        "email" => merge(json!({"format": "email", "maxLength": 254})),
        "phone" => pattern(r"^ *\+[1-9][0-9]{7,14} *$"),
        "name" => text(riskdesk_domain::customer::NAME_MAX, false),
        "external_id" => text(riskdesk_domain::customer::EXTERNAL_ID_MAX, false),
        "note" | "text" => text(riskdesk_domain::customer::NOTE_MAX, true),
        "reason" => text(500, true),
        _ => return None,
    })
}

/// Query parameters by (path, name), then by name.
fn query_rule(path: &str, name: &str) -> Option<Rule> {
    use riskdesk_domain::response::blocklist::BlockKind;
    use riskdesk_domain::response::{ActionKind, ActionStatus, CaseKind, CaseStatus, NoticeStatus};
    let specific = match (path, name) {
        ("/v1/actions", "status") => Some(strings(ActionStatus::ALL.iter().map(|s| s.as_str()))),
        ("/v1/alerts", "status") => Some(strings(["open", "acknowledged", "dismissed"])),
        ("/v1/alerts", "since" | "until") => Some(instant()),
        ("/v1/cases", "status") => Some(strings(CaseStatus::ALL.iter().map(|s| s.as_str()))),
        ("/v1/cases", "kind") => Some(strings(CaseKind::ALL.iter().map(|k| k.as_str()))),
        ("/v1/blocklist", "kind") => Some(strings(BlockKind::ALL.iter().map(|k| k.as_str()))),
        ("/v1/invoices", "status") => Some(strings(["open", "settled"])),
        ("/v1/outbox", "status") => Some(strings(["pending", "sent", "failed"])),
        ("/v1/outbox", "channel") => Some(strings(["email", "webhook"])),
        ("/v1/provider/notices", "status") => {
            Some(strings(NoticeStatus::ALL.iter().map(|s| s.as_str())))
        }
        ("/v1/cases/{id}/actions/preview", "kind") => {
            Some(strings(ActionKind::ALL.iter().map(|k| k.as_str())))
        }
        ("/v1/cases/{id}/actions/preview", "reason") => Some(strings(
            riskdesk_domain::lifecycle::Reason::ALL
                .iter()
                .map(|r| r.as_str()),
        )),
        ("/v1/cases/{id}/actions/preview", "subscription_id") => Some(uuid()),
        ("/v1/customers/{id}/spend", "from" | "to") => Some(instant()),
        ("/v1/signups", "decision") => Some(strings(["approve", "review", "reject"])),
        ("/v1/signups", "status") => Some(strings(["approved", "pending_review", "rejected"])),
        ("/v1/customers/{id}/subscriptions", "status") => Some(strings(
            riskdesk_domain::lifecycle::SubscriptionStatus::ALL
                .iter()
                .map(|s| s.as_str()),
        )),
        ("/v1/customers/{id}/collections-policy", "format") => Some(strings(["html", "text"])),
        ("/v1/customers/{id}/collections-policy", "locale") => Some(strings(
            riskdesk_domain::values::Locale::ALL
                .iter()
                .map(|l| l.as_str()),
        )),
        ("/v1/customers/{id}/budget" | "/v1/events", "as_of") => Some(instant()),
        ("/v1/reports/aging", "basis") => Some(strings(["due_date", "issue_date"])),
        ("/v1/reports/aging", "buckets") => {
            Some(pattern(r"^ *[0-9]{1,9} *(, *[0-9]{1,9} *){0,11}$"))
        }
        ("/v1/provider/webhooks", "tenant") => {
            Some(pattern(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))
        }
        _ => None,
    };
    if specific.is_some() {
        return specific;
    }
    Some(match name {
        "limit" => merge(json!({"minimum": 1, "maximum": crate::dto::MAX_LIMIT})),
        "as_of" => Rule::DateOrInstant,
        "severity" => severities(),
        "customer_id" | "case_id" => uuid(),
        "country" => strings(riskdesk_domain::values::country_codes()),
        "cloud_instance" => strings(
            riskdesk_domain::CloudInstance::ALL
                .iter()
                .map(|c| c.as_str()),
        ),
        "cursor" => Rule::Keep,
        _ => return None,
    })
}

/// Applies the rules to the document (as JSON).
pub fn apply(doc: &mut Value) {
    // Body schemas: those a request body reaches (an answer's schema says what riskdesk
    // writes, which these rules do not describe).
    let requested = request_schemas(doc);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if !requested.contains(name) {
                continue;
            }
            let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
                continue;
            };
            for (prop, s) in props.iter_mut() {
                let rule = property_rule(name, prop);
                constrain(s, rule.as_ref(), is_free_text(prop));
            }
        }
    }
    // A batch of events is read event by event: one that is not a valid event is reported in
    // the answer's `rejected` (with its index) and the others are kept, so the body's items are
    // described, not required, to be `RawEvent`s.
    if let Some(items) = doc
        .pointer_mut("/paths/~1v1~1events/post/requestBody/content/application~1json/schema/items")
    {
        let described = items.take();
        *items = json!({
            "anyOf": [described, {}],
            "description": "An event (`RawEvent`); anything else is reported in `rejected`, the rest of the batch is kept."
        });
    }
    // Parameters.
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for op in item.values_mut() {
                let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                    continue;
                };
                for p in params {
                    let (name, place) = (
                        p["name"].as_str().unwrap_or("").to_owned(),
                        p["in"].as_str().unwrap_or("").to_owned(),
                    );
                    let Some(s) = p.get_mut("schema") else {
                        continue;
                    };
                    match place.as_str() {
                        "query" => constrain(s, query_rule(path, &name).as_ref(), false),
                        "header" if name.eq_ignore_ascii_case("Idempotency-Key") => {
                            constrain(s, Some(&pattern(IDEMPOTENCY_KEY)), false)
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// The component schemas a request body refers to, directly or through others.
fn request_schemas(doc: &Value) -> std::collections::BTreeSet<String> {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    if let Some(name) = r.strip_prefix("#/components/schemas/") {
                        out.push(name.to_owned());
                    }
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(xs) => xs.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut todo = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for item in paths.values().filter_map(Value::as_object) {
            for op in item.values() {
                if let Some(body) = op.get("requestBody") {
                    refs(body, &mut todo);
                }
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = todo.pop() {
        if seen.insert(name.clone()) {
            if let Some(s) = doc.pointer(&format!("/components/schemas/{name}")) {
                refs(s, &mut todo);
            }
        }
    }
    seen
}

fn is_string(s: &Map<String, Value>) -> bool {
    match s.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
        _ => false,
    }
}

fn nullable(s: &Map<String, Value>) -> bool {
    matches!(s.get("type"), Some(Value::Array(ts)) if ts.iter().any(|t| t == "null"))
}

/// Applies `rule` to a string schema (or an array of strings: to its items), or the
/// control-character rule if there is none.
fn constrain(schema: &mut Value, rule: Option<&Rule>, free: bool) {
    let Some(s) = schema.as_object_mut() else {
        return;
    };
    let is_array = matches!(s.get("type"), Some(Value::String(t)) if t == "array")
        || matches!(s.get("type"), Some(Value::Array(ts)) if ts.iter().any(|t| t == "array"));
    if is_array {
        match rule {
            Some(Rule::Merge(Value::Object(m))) if m.contains_key("minItems") => {
                for (k, v) in m {
                    s.insert(k.clone(), v.clone());
                }
            }
            _ => {
                if let Some(items) = s.get_mut("items") {
                    constrain(items, rule, free);
                }
            }
        }
        return;
    }
    let is_integer = matches!(s.get("type"), Some(Value::String(t)) if t == "integer")
        || matches!(s.get("type"), Some(Value::Array(ts)) if ts.iter().any(|t| t == "integer"));
    if is_integer {
        if let Some(Rule::Merge(Value::Object(m))) = rule {
            for (k, v) in m {
                s.insert(k.clone(), v.clone());
            }
        }
        return;
    }
    if !is_string(s) {
        return;
    }
    match rule {
        Some(Rule::OneOf(values)) => {
            let mut e: Vec<Value> = values.iter().map(|v| Value::String(v.clone())).collect();
            if nullable(s) {
                e.push(Value::Null);
            }
            s.insert("enum".into(), Value::Array(e));
        }
        Some(Rule::Merge(Value::Object(m))) => {
            for (k, v) in m {
                s.insert(k.clone(), v.clone());
            }
        }
        Some(Rule::DateOrInstant) => {
            let mut any = vec![
                json!({"type": "string", "format": "date"}),
                json!({"type": "string", "format": "date-time"}),
            ];
            if nullable(s) {
                any.push(json!({"type": "null"}));
            }
            s.remove("type");
            s.insert("anyOf".into(), Value::Array(any));
        }
        Some(Rule::Ip) => {
            s.remove("type");
            s.insert(
                "anyOf".into(),
                json!([{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]),
            );
        }
        Some(Rule::Keep) => {
            s.insert("pattern".into(), Value::String(PLAIN.into()));
        }
        Some(Rule::Merge(_)) | None => {
            if !s.contains_key("format") && !s.contains_key("pattern") && !s.contains_key("enum") {
                s.insert(
                    "pattern".into(),
                    Value::String(if free { FREE } else { PLAIN }.into()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The patterns say what the validators accept: each is checked against its validator on
    //! the same strings, edge cases and a spread of generated ones.
    use super::*;
    use regex::Regex;

    /// A few thousand strings over an alphabet that hits the patterns' edges.
    fn spread(alphabet: &[&str], len: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..4000 {
            let mut s = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % len as u64) as usize;
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push_str(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            out.push(s);
        }
        out
    }

    #[test]
    fn the_webhook_url_pattern_is_the_validator() {
        let re = Regex::new(&webhook_url()).unwrap();
        let mut cases: Vec<String> = [
            "https://hooks.example.com/riskdesk",
            "http://10.0.0.5:8080/in?x=1",
            "http://0.0.0.0",
            "http://999.1.1.1",
            "http://1.2.3",
            "http://a.1",
            "https://xn--zz.example/",
            "https://a.xn--zz/",
            "https://xn-a.example/",
            "https://a.example:65535",
            "https://a.example:65536",
            "https://a.example:00080",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let parts = [
            "a", "x", "n", "-", "--", "xn--", "Xn", "0", "1", "25", "255", "256", "09", ".", ":",
            ":80", ":65535", ":99999", "/", "/p", " ", "@", "[", "]", "?",
        ];
        for tail in spread(&parts, 9) {
            cases.push(format!("http://{tail}"));
        }
        let mut accepted = 0;
        for c in &cases {
            let ok = crate::routes::collections::plain_http_url(c);
            accepted += ok as usize;
            assert_eq!(re.is_match(c), ok, "{c:?}");
            if ok {
                assert!(
                    reqwest::Url::parse(c).is_ok(),
                    "accepted but unparsable: {c:?}"
                );
            }
        }
        assert!(
            accepted > 100,
            "the spread must reach accepted URLs too ({accepted})"
        );
    }

    #[test]
    fn the_control_character_patterns_are_the_validator() {
        let plain = Regex::new(PLAIN).unwrap();
        let free = Regex::new(FREE).unwrap();
        let parts = [
            "a", " ", "\t", "\n", "\r", "\u{0}", "\u{1f}", "\u{7f}", "\u{85}", "\u{9f}", "\u{a0}",
            "é",
        ];
        for s in spread(&parts, 6) {
            assert_eq!(
                plain.is_match(&s),
                riskdesk_domain::values::forbidden_control(&s, false).is_none(),
                "{s:?}"
            );
            assert_eq!(
                free.is_match(&s),
                riskdesk_domain::values::forbidden_control(&s, true).is_none(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn the_domain_pattern_accepts_only_what_the_validator_does() {
        let re = Regex::new(DOMAIN).unwrap();
        let parts = ["a", "Z", "0", "-", ".", "xn--", "x", " ", "é", "_"];
        let mut accepted = 0;
        for s in spread(&parts, 12) {
            if re.is_match(&s) {
                accepted += 1;
                assert!(
                    riskdesk_domain::values::DomainName::parse(&s).is_ok(),
                    "{s:?}"
                );
            }
        }
        assert!(accepted > 20, "{accepted}");
    }

    #[test]
    fn the_amount_patterns_accept_only_amounts() {
        let pos = Regex::new(DECIMAL_POSITIVE).unwrap();
        let non_neg = Regex::new(DECIMAL_UNSIGNED).unwrap();
        let eur = riskdesk_domain::money::Currency::parse("EUR").unwrap();
        let parts = ["0", "1", "9", ".", "-", " ", "00", "5"];
        for s in spread(&parts, 8) {
            // At most 2 decimals (EUR's minor unit) is a rule between fields: test within it.
            let decimals = s.split_once('.').map(|(_, f)| f.trim().len()).unwrap_or(0);
            if decimals > 2 {
                continue;
            }
            let parsed = riskdesk_domain::money::Money::parse(&s, eur);
            if pos.is_match(&s) {
                assert!(parsed.as_ref().is_ok_and(|m| m.minor > 0), "{s:?}");
            }
            if non_neg.is_match(&s) {
                assert!(parsed.as_ref().is_ok_and(|m| m.minor >= 0), "{s:?}");
            }
        }
    }
}
