//! Provider notices saved as emails, `riskdesk notices import FILE.eml`
//! (`riskdesk_app::provider::events::notice_from_eml`, over `mail-parser`).
//!
//! Invariants: no panic; the same bytes read twice give the same notice; a message that
//! reads is read again the same from a canonical rewrite of it (Subject as an RFC 2047 UTF-8
//! encoded word, the text body in base64, the sender, Message-ID and Date re-printed), for
//! the fields riskdesk keeps (subject, sender, Message-ID, date, body).
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use riskdesk_app::provider::events::{NoticeInput, notice_from_eml};

fn key(n: &NoticeInput) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        n.message_id, n.received_at, n.sender, n.subject, n.body
    )
}

/// Text a header can carry as is (a plain address or message id).
fn atom(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@.-_+".contains(&b))
}

fn rewrite(n: &NoticeInput) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut m = String::new();
    m.push_str(&format!("From: <{}>\r\n", n.sender));
    m.push_str(&format!(
        "Subject: =?utf-8?b?{}?=\r\n",
        b64.encode(&n.subject)
    ));
    if let Some(id) = &n.message_id {
        m.push_str(&format!("Message-ID: <{id}>\r\n"));
    }
    if let Some(t) = n.received_at {
        m.push_str(&format!(
            "Date: {}\r\n",
            jiff::fmt::rfc2822::to_string(&t.to_zoned(jiff::tz::TimeZone::UTC)).unwrap()
        ));
    }
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    m.push_str(&b64.encode(&n.body));
    m.push_str("\r\n");
    m.into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let first = notice_from_eml(data);
    let second = notice_from_eml(data);
    match (&first, &second) {
        (Ok(a), Ok(b)) => assert_eq!(key(a), key(b), "the same message read twice"),
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("the same message read twice: {first:?} / {second:?}"),
    }
    let Ok(n) = first else { return };
    // The canonical rewrite carries only what headers can hold unescaped.
    let canonical = atom(&n.sender)
        && n.message_id.as_deref().is_none_or(atom)
        && !n.subject.is_empty()
        && !n.subject.chars().any(char::is_control)
        && n.subject.trim() == n.subject
        && !n.body.contains('\r')
        && n.received_at.is_none_or(|t| {
            t.subsec_nanosecond() == 0
                && (1900..=9999).contains(&t.to_zoned(jiff::tz::TimeZone::UTC).year())
        });
    if !canonical {
        return;
    }
    let text = rewrite(&n);
    match notice_from_eml(&text) {
        Ok(again) => assert_eq!(
            key(&n),
            key(&again),
            "a notice read again from its canonical rewrite:\n{}",
            String::from_utf8_lossy(&text)
        ),
        Err(e) => panic!(
            "the canonical rewrite of a notice does not read ({e}):\n{}",
            String::from_utf8_lossy(&text)
        ),
    }
});
