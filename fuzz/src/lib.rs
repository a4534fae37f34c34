//! What the fuzz targets share: the invariants every validated event must hold, and JSON
//! comparison that tolerates the last bit of a float (serde_json without `float_roundtrip`,
//! as riskdesk builds it, may read back a printed double one ULP away).

use riskdesk_domain::monitoring::cost::format_picos;
use riskdesk_domain::monitoring::{CustomerRef, Event, EventBody, RawEvent};
use riskdesk_domain::values::{control_character_in_json, forbidden_control};

/// The wire form of a validated event: what a partner would send to get exactly this event.
pub fn raw_of(e: &Event) -> RawEvent {
    let mut r = RawEvent {
        kind: Some(e.kind().to_owned()),
        event_id: Some(e.event_id.clone()),
        subscription_id: e.subscription_id.map(|u| u.to_string()),
        time: Some(e.time.to_string()),
        ..RawEvent::default()
    };
    match &e.customer {
        CustomerRef::Id(id) => r.customer_id = Some(id.to_string()),
        CustomerRef::External(x) => r.customer_external_id = Some(x.clone()),
    }
    match &e.body {
        EventBody::Usage(u) => {
            r.meter_category = Some(u.meter_category.clone());
            r.meter_name = Some(u.meter_name.clone());
            r.region = Some(u.region.clone());
            r.resource_id = u.resource_id.clone();
            r.quantity = u.quantity.clone().map(serde_json::Value::String);
            r.unit = u.unit.clone();
            r.cost = Some(serde_json::Value::String(format_picos(u.cost.picos)));
            r.currency = Some(u.cost.currency.code().to_owned());
        }
        EventBody::Activity(a) => {
            r.operation = Some(a.operation.clone());
            r.actor = a.actor.clone();
            r.status = a.status.clone();
            r.properties = Some(a.properties.clone());
        }
    }
    r
}

/// Two JSON values equal, floats within a few ULPs.
pub fn json_equiv(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => {
            if x == y {
                return true;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(p), Some(q)) if x.is_f64() && y.is_f64() => {
                    p == q || (p.to_bits() as i64 - q.to_bits() as i64).abs() <= 4
                }
                _ => false,
            }
        }
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equiv(p, q))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equiv(v, w)))
        }
        _ => a == b,
    }
}

/// Two events equal (an activity's properties compared with [`json_equiv`]).
pub fn events_equiv(a: &Event, b: &Event) -> bool {
    match (&a.body, &b.body) {
        (EventBody::Activity(x), EventBody::Activity(y)) => {
            a.event_id == b.event_id
                && a.customer == b.customer
                && a.subscription_id == b.subscription_id
                && a.time == b.time
                && x.operation == y.operation
                && x.actor == y.actor
                && x.status == y.status
                && json_equiv(&x.properties, &y.properties)
        }
        _ => a == b,
    }
}

/// Validates one event's JSON text the way `POST /v1/events` and `riskdesk ingest` do.
pub fn parse_event(text: &[u8]) -> Result<Event, String> {
    serde_json::from_slice::<RawEvent>(text)
        .map_err(|e| e.to_string())?
        .validate()
}

/// The invariants of a validated event:
/// - no text field holds a control character (ARCHITECTURE.md: control characters are refused
///   with the field's name in bodies and event properties; PostgreSQL cannot store NUL);
///   tab and line feed are allowed only inside `properties` (free text);
/// - its wire form ([`raw_of`]) printed as JSON validates again to the same event.
pub fn check_event(e: &Event) {
    let mut texts: Vec<(&str, &str)> = vec![("event_id", &e.event_id)];
    if let CustomerRef::External(x) = &e.customer {
        texts.push(("customer_external_id", x));
    }
    match &e.body {
        EventBody::Usage(u) => {
            texts.push(("meter_category", &u.meter_category));
            texts.push(("meter_name", &u.meter_name));
            texts.push(("region", &u.region));
            texts.extend(u.resource_id.as_deref().map(|s| ("resource_id", s)));
            texts.extend(u.quantity.as_deref().map(|s| ("quantity", s)));
            texts.extend(u.unit.as_deref().map(|s| ("unit", s)));
        }
        EventBody::Activity(a) => {
            texts.push(("operation", &a.operation));
            texts.extend(a.actor.as_deref().map(|s| ("actor", s)));
            texts.extend(a.status.as_deref().map(|s| ("status", s)));
            assert!(
                a.properties.is_object(),
                "properties is not an object: {:?}",
                a.properties
            );
            if let Some((at, c)) = control_character_in_json(&a.properties, "properties", true) {
                panic!("a validated event holds control character {c:?} at `{at}`: {e:?}");
            }
        }
    }
    for (field, s) in texts {
        if let Some(c) = forbidden_control(s, false) {
            panic!("a validated event holds control character {c:?} in `{field}`: {e:?}");
        }
    }
    let text = serde_json::to_vec(&raw_of(e)).expect("a RawEvent prints as JSON");
    match parse_event(&text) {
        Ok(again) => assert!(
            events_equiv(e, &again),
            "the wire form of a validated event validates to another event:\n{e:?}\n{again:?}\n{}",
            String::from_utf8_lossy(&text)
        ),
        Err(why) => panic!(
            "the wire form of a validated event is refused ({why}):\n{e:?}\n{}",
            String::from_utf8_lossy(&text)
        ),
    }
}

/// The reader's options chosen by the first byte of a file target's input: bit 0
/// `--customer-external-id C-FUZZ`, bit 1 `--currency EUR`, bit 2 `--customer-column
/// BillingAccountName`.
pub fn file_options(flags: u8) -> riskdesk_app::monitoring::formats::FileOptions {
    riskdesk_app::monitoring::formats::FileOptions {
        customer_external_id: (flags & 1 != 0).then(|| "C-FUZZ".to_owned()),
        currency: (flags & 2 != 0).then(|| "EUR".to_owned()),
        customer_column: (flags & 4 != 0).then(|| "BillingAccountName".to_owned()),
    }
}

/// A Partner Center / Azure Activity Log document read by `riskdesk ingest`
/// (`formats::json_document`), with the invariants both document targets share: no panic; the
/// same document read twice gives the same verdicts; every event id is `pc-usage:`,
/// `pc-audit:` or `azure:` something, usage only from Partner Center line items; the customer
/// is `--customer-external-id` when given; every accepted event holds [`check_event`]'s
/// invariants. Returns the verdicts (None: the input is not UTF-8 or not a document).
pub fn check_json_document(data: &[u8]) -> Option<Vec<(usize, Result<Event, String>)>> {
    use riskdesk_app::monitoring::formats;
    let (&flags, file) = data.split_first()?;
    // `riskdesk ingest` reads a document with `read_to_string`: UTF-8 only.
    let text = std::str::from_utf8(file).ok()?;
    let opts = file_options(flags);
    let first = formats::json_document(text, &opts);
    let second = formats::json_document(text, &opts);
    assert_eq!(first, second, "the same document read twice");
    let records = first.ok()?;
    for (i, verdict) in &records {
        let Ok(e) = verdict else { continue };
        let id = &e.event_id;
        match e.body {
            EventBody::Usage(_) => assert!(id.starts_with("pc-usage:"), "record {i}: {id}"),
            EventBody::Activity(_) => assert!(
                id.starts_with("pc-audit:") || id.starts_with("azure:"),
                "record {i}: {id}"
            ),
        }
        if let Some(c) = &opts.customer_external_id {
            assert_eq!(e.customer, CustomerRef::External(c.clone()), "record {i}");
        }
        check_event(e);
    }
    Some(records)
}
