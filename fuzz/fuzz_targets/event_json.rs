//! `POST /v1/events` with `Content-Type: application/json`: a JSON array of events
//! (`riskdesk_http::routes::monitoring::parse_batch(bytes, false)`), each element validated by
//! `RawEvent::validate`.
//!
//! Invariants: no panic; the batch is refused whole only when the body is not a JSON array
//! (or holds too many events); each element is judged alone (parsing the element's own text
//! gives the same verdict and event); every accepted event holds the invariants of
//! `riskdesk_fuzz::check_event` (no control characters, its wire form validates back to it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use riskdesk_fuzz::{check_event, events_equiv, parse_event};
use riskdesk_http::routes::monitoring::{EVENTS_MAX, parse_batch};

fuzz_target!(|data: &[u8]| {
    let items: Result<Vec<&serde_json::value::RawValue>, _> = serde_json::from_slice(data);
    match parse_batch(data, false) {
        Err(e) => {
            // Refused whole: not an array, or more events than one request may carry.
            if let Ok(items) = &items {
                assert!(
                    items.len() > EVENTS_MAX,
                    "a JSON array of {} events refused whole: {e:?}",
                    items.len()
                );
            }
        }
        Ok(out) => {
            let items = items.expect("parse_batch accepted a body that is not a JSON array");
            assert_eq!(out.len(), items.len(), "one verdict per element");
            for (verdict, item) in out.iter().zip(&items) {
                let alone = parse_event(item.get().as_bytes());
                match (verdict, &alone) {
                    (Ok(e), Ok(a)) => {
                        assert!(events_equiv(e, a), "{e:?} != {a:?}");
                        check_event(e);
                    }
                    (Err(_), Err(_)) => {}
                    _ => panic!(
                        "an element judged differently in the batch ({verdict:?}) and alone ({alone:?}): {}",
                        item.get()
                    ),
                }
            }
        }
    }
});
