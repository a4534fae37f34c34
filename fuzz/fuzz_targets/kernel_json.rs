//! The kernel's JSON reader, `riskdesk_app::kernel::json::parse_json`, which every adapter
//! reads request bodies with (the failing field's path in the error, nothing after the value,
//! no control characters in any string), read into a `serde_json::Value` and into a typed
//! request with the shapes the API's bodies have (`deny_unknown_fields`, nested objects,
//! lists, options, numbers).
//!
//! Invariants: no panic; it accepts exactly the valid JSON documents that hold no control
//! character (`riskdesk_domain::values::control_character_in_json` over the whole document,
//! tab and line feed only in free-text fields), and what it accepts is serde_json's reading;
//! what it accepts, printed again, it accepts again as the same value; a refusal of valid JSON
//! names the field holding the control character; a typed read succeeds only on a document
//! the `Value` read accepts, and reports a validation problem (field and message) or a bad
//! request, nothing else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riskdesk_app::AppError;
use riskdesk_app::kernel::json::{control_character_at, parse_json};
use riskdesk_domain::values::control_character_in_json;
use riskdesk_fuzz::json_equiv;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Line {
    description: String,
    amount: Option<String>,
    quantity: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Request {
    name: String,
    note: Option<String>,
    limit: Option<u32>,
    ratio: Option<f64>,
    enabled: Option<bool>,
    tags: Option<Vec<String>>,
    lines: Option<Vec<Line>>,
    properties: Option<serde_json::Value>,
}

fuzz_target!(|data: &[u8]| {
    let plain = serde_json::from_slice::<serde_json::Value>(data);
    let read = parse_json::<serde_json::Value>(data);
    match (&plain, &read) {
        (Ok(p), Ok(r)) => {
            assert_eq!(p, r, "parse_json reads another value than serde_json");
            if let Some((at, c)) = control_character_in_json(r, "", false) {
                panic!("parse_json accepted control character {c:?} at `{at}`: {r}");
            }
            let printed = serde_json::to_vec(r).unwrap();
            match parse_json::<serde_json::Value>(&printed) {
                Ok(again) => assert!(json_equiv(r, &again), "{r} read again as {again}"),
                Err(e) => panic!("an accepted document printed again is refused ({e:?}): {r}"),
            }
        }
        (Ok(p), Err(e)) => {
            let Some((field, message)) = control_character_at(data) else {
                panic!("valid JSON without control characters refused: {e:?}: {p}");
            };
            assert!(
                control_character_in_json(p, "", false).is_some(),
                "control_character_at says {field}: {message}, the walker finds none: {p}"
            );
            match e {
                AppError::Validation { errors, .. } => {
                    assert_eq!(errors.len(), 1, "{e:?}");
                    assert_eq!(errors[0].field, field, "{e:?}");
                }
                other => panic!("a control character refused as {other:?}"),
            }
        }
        (Err(_), Ok(r)) => panic!("parse_json accepts what serde_json refuses: {r}"),
        (Err(_), Err(e)) => assert!(matches!(e, AppError::BadRequest(_)), "{e:?}"),
    }
    match parse_json::<Request>(data) {
        Ok(_) => assert!(
            read.is_ok(),
            "a typed read accepts what the Value read refuses"
        ),
        Err(AppError::Validation { errors, .. }) => assert!(!errors.is_empty()),
        Err(AppError::BadRequest(_)) => {}
        Err(other) => panic!("a typed read refused as {other:?}"),
    }
});
