//! Azure Activity Log JSON as `riskdesk ingest` reads it (`formats::json_document`): the REST
//! API's event objects (one event, `{"value": [...]}` or the REST specification's example
//! document) and the storage-account / Event Hubs export (`{"records": [...]}`), each an
//! activity event.
//!
//! Input: the first byte chooses the reader's options (see `riskdesk_fuzz::file_options`);
//! the rest is the document.
//!
//! Invariants: those of `riskdesk_fuzz::check_json_document`, and an event read from an
//! Activity Log record (`eventTimestamp`, or `operationName` and `time`) is an activity event
//! whose id is `azure:` something.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riskdesk_domain::monitoring::EventBody;
use riskdesk_fuzz::check_json_document;

fuzz_target!(|data: &[u8]| {
    let Some(records) = check_json_document(data) else {
        return;
    };
    for (i, verdict) in &records {
        if let Ok(e) = verdict
            && e.event_id.starts_with("azure:")
        {
            assert!(
                matches!(e.body, EventBody::Activity(_)),
                "record {i}: {e:?}"
            );
        }
    }
});
