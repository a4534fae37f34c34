//! FOCUS cost-and-usage CSV as `riskdesk ingest` reads it
//! (`riskdesk_app::monitoring::formats::focus`): a usage event per row.
//!
//! Input: the first byte chooses the reader's options (bit 0: `--customer-external-id C-FUZZ`,
//! bit 1: `--currency EUR`, bit 2: `--customer-column BillingAccountName`); the rest is the file.
//!
//! Invariants: no panic; the same file read twice gives the same verdicts and events (so a
//! reload stores nothing new); every event is a usage event whose id is `focus:` and the row's
//! `Id`, or, in a file without an `Id` column, an id no other row of the file has; the customer
//! is `--customer-external-id` when given; every accepted event holds the invariants of
//! `riskdesk_fuzz::check_event`.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use riskdesk_app::monitoring::formats;
use riskdesk_domain::monitoring::{CustomerRef, EventBody};
use riskdesk_fuzz::{check_event, file_options};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, file)) = data.split_first() else {
        return;
    };
    let opts = file_options(flags);
    let read = |file: &[u8]| formats::focus(file, &opts).map(|it| it.collect::<Vec<_>>());
    let first = read(file);
    let second = read(file);
    assert_eq!(first, second, "the same file read twice");
    let Ok(rows) = first else {
        return;
    };
    let has_id_column = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(file)
        .headers()
        .map(|h| h.iter().any(|c| c.trim_start_matches('\u{feff}') == "Id"))
        .unwrap_or(false);
    let mut ids = HashSet::new();
    for (line, verdict) in &rows {
        let Ok(e) = verdict else { continue };
        assert!(matches!(e.body, EventBody::Usage(_)), "row {line}: {e:?}");
        assert!(
            e.event_id.starts_with("focus:"),
            "row {line}: {}",
            e.event_id
        );
        if !has_id_column {
            assert!(
                ids.insert(e.event_id.clone()),
                "row {line}: id {} given to two rows",
                e.event_id
            );
        }
        if let Some(c) = &opts.customer_external_id {
            assert_eq!(e.customer, CustomerRef::External(c.clone()), "row {line}");
        }
        check_event(e);
    }
});
