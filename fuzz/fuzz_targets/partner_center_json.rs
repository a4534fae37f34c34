//! Partner Center JSON as `riskdesk ingest` reads it (`formats::json_document`): rated daily
//! usage line items (`DailyRatedUsageLineItem`, usage events, their floating-point costs made
//! exact decimals by `formats::json_decimal`) and audit records (`AuditRecord`, activity
//! events; `formats::pc_audit_record` reads the same records pulled from the API).
//!
//! Input: the first byte chooses the reader's options (see `riskdesk_fuzz::file_options`);
//! the rest is the document.
//!
//! Invariants: those of `riskdesk_fuzz::check_json_document`; `pc_audit_record` never panics
//! and reads an audit record with an `id` as the file reader does; `json_decimal` never
//! panics, gives a plain decimal of at most 12 decimals, and keeps the value of a plain
//! decimal that has at most 12 (the same pico-units as `cost::parse_picos`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use riskdesk_app::monitoring::formats;
use riskdesk_domain::monitoring::cost::parse_picos;
use riskdesk_fuzz::check_json_document;

fn check_decimal(text: &str) {
    let Ok(d) = formats::json_decimal(text) else {
        return;
    };
    let digits = d.strip_prefix('-').unwrap_or(&d);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(
        !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
            && frac.len() <= 12
            && (int == "0" || !int.starts_with('0'))
            && d != "-0",
        "json_decimal({text:?}) = {d:?}"
    );
    let t = text.trim();
    let plain = t.strip_prefix('-').unwrap_or(t);
    let short = plain.split_once('.').is_none_or(|(_, f)| f.len() <= 12);
    if short
        && !plain.contains(['e', 'E'])
        && let Ok(p) = parse_picos(t)
    {
        assert_eq!(
            parse_picos(&d).ok(),
            Some(p),
            "json_decimal({text:?}) = {d:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let records = check_json_document(data);
    let Ok(text) = std::str::from_utf8(data.get(1..).unwrap_or_default()) else {
        return;
    };
    // The numbers as the line items carry them, and the input itself as a number.
    if text.len() <= 64 {
        check_decimal(text);
    }
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let items = doc
        .get("items")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    for (i, item) in items.iter().enumerate() {
        for k in ["billingPreTaxTotal", "quantity", "unitPrice"] {
            match item.get(k) {
                Some(serde_json::Value::Number(n)) => check_decimal(&n.to_string()),
                Some(serde_json::Value::String(s)) if s.len() <= 64 => check_decimal(s),
                _ => {}
            }
        }
        let pulled = formats::pc_audit_record(item);
        let read = records
            .as_ref()
            .and_then(|r| r.get(i))
            .map(|(_, verdict)| verdict);
        let has_id = item
            .get("id")
            .and_then(|v| v.as_str())
            .is_some_and(|s| !s.trim().is_empty());
        let audit = item.get("billingPreTaxTotal").is_none()
            && item
                .get("attributes")
                .and_then(|a| a.get("objectType"))
                .and_then(|t| t.as_str())
                .map(str::trim)
                != Some("DailyRatedUsageLineItem")
            && item.get("operationType").is_some();
        if let (Ok(p), Some(Ok(r))) = (&pulled, read)
            && has_id
            && audit
            && data[0] & 1 == 0
        {
            assert_eq!(p, r, "item {i}: pulled from the API and read from a file");
        }
    }
});
