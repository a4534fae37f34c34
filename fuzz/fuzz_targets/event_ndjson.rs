//! NDJSON events, the two readers of the same format: `POST /v1/events` with
//! `Content-Type: application/x-ndjson` (`riskdesk_http::routes::monitoring::parse_batch(bytes,
//! true)`) and `riskdesk ingest` (`riskdesk_app::monitoring::formats::ndjson`, after
//! `formats::detect` on the file's first 4 KiB).
//!
//! Invariants: no panic; the API and the CLI accept the same lines as the same events (the
//! line numbers agree; blank lines are an error for the API and skipped by the CLI); every
//! accepted event holds the invariants of `riskdesk_fuzz::check_event`; `detect` never panics
//! and calls a text whose first line is an event NDJSON.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use riskdesk_app::monitoring::formats::{self, Format};
use riskdesk_fuzz::{check_event, events_equiv};
use riskdesk_http::routes::monitoring::parse_batch;

fuzz_target!(|data: &[u8]| {
    let head = &data[..data.len().min(4096)];
    let detected = formats::detect(head);

    let cli: BTreeMap<usize, _> = formats::ndjson(std::io::Cursor::new(data)).collect();
    let api = match parse_batch(data, true) {
        Ok(v) => v,
        // Only too many lines refuse the whole body (more than fuzz inputs hold).
        Err(e) => panic!("an NDJSON body refused whole: {e:?}"),
    };
    for (i, verdict) in api.iter().enumerate() {
        match (verdict, cli.get(&i)) {
            (Ok(a), Some(Ok(c))) => {
                assert!(events_equiv(a, c), "line {i}: API {a:?}, CLI {c:?}");
                check_event(a);
            }
            (Ok(a), other) => panic!("line {i}: the API accepts {a:?}, the CLI says {other:?}"),
            (Err(_), Some(Ok(c))) => panic!("line {i}: the CLI accepts {c:?}, the API refuses it"),
            (Err(_), _) => {}
        }
    }
    for (i, verdict) in &cli {
        if let Ok(c) = verdict {
            assert!(
                matches!(api.get(*i), Some(Ok(_))),
                "line {i}: the CLI accepts {c:?}, the API does not"
            );
        }
    }
    // A first line that is a valid event makes the file NDJSON.
    if let Some(first) = std::str::from_utf8(head)
        .ok()
        .and_then(|t| t.lines().next())
        && head.len() < 4096
        && matches!(api.first(), Some(Ok(_)))
        && !first.trim_start_matches('\u{feff}').is_empty()
    {
        assert_eq!(detected, Ok(Format::Ndjson), "first line {first:?}");
    }
});
