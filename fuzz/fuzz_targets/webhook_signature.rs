//! The `Riskdesk-Signature` header of riskdesk's own webhooks
//! (`riskdesk_connectors::webhook::{sign, verify}`: `t=<unix seconds>,v1=<hex HMAC-SHA256>`),
//! as a receiver checks it.
//!
//! Input, lines: the secret, `t`, `now`, the replay window (integers), a header to check, then
//! the body (the rest).
//!
//! Invariants: no panic (nor overflow) on any header, time and window; `verify` accepts a
//! header only when its `t` is within the window of `now` and its `v1` is the HMAC of
//! `"<t>.<body>"` under the secret; a header made by `sign` verifies at any `now` within the
//! window and is stale outside it; it never verifies once the body, a byte of the MAC, the
//! timestamp or the secret is changed.
#![no_main]

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use riskdesk_connectors::webhook::{VerifyError, sign, verify};
use sha2::Sha256;

fn mac(secret: &str, t: i64, body: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// `t` and `v1` as `verify` reads them (the last of each wins).
fn fields(header: &str) -> (Option<i64>, Option<Vec<u8>>) {
    let (mut t, mut v1) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    (t, v1)
}

fn within(now: i64, t: i64, window: i64) -> bool {
    (now as i128 - t as i128).abs() <= window as i128
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(6, |b| *b == b'\n');
    let mut line = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let secret = line();
    let num = |s: String| s.trim().parse::<i64>().unwrap_or(0);
    let t = num(line());
    let now = num(line());
    let window = num(line());
    let header = line();
    let body = parts.next().unwrap_or_default().to_vec();

    // Any header.
    if verify(&secret, &header, &body, now, window).is_ok() {
        let (Some(ht), Some(v1)) = fields(&header) else {
            panic!("verify accepted a header without t and v1: {header:?}");
        };
        assert!(
            within(now, ht, window),
            "accepted outside the window: {header:?} at {now}"
        );
        assert_eq!(
            v1,
            mac(&secret, ht, &body),
            "accepted a MAC that is not the body's: {header:?}"
        );
    }

    // A header riskdesk signed.
    let signed = sign(&secret, t, &body);
    let at = now.clamp(t.saturating_sub(1_000_000), t.saturating_add(1_000_000));
    let r = verify(&secret, &signed, &body, at, window);
    if within(at, t, window) {
        assert_eq!(r, Ok(()), "{signed:?} at {at}, window {window}");
    } else {
        assert_eq!(
            r,
            Err(VerifyError::Stale),
            "{signed:?} at {at}, window {window}"
        );
    }
    if window < 1 {
        return;
    }
    let refused = |secret: &str, header: &str, body: &[u8], what: &str| {
        assert_eq!(
            verify(secret, header, body, t, window),
            Err(VerifyError::Mismatch),
            "{what}: {header:?}"
        );
    };
    let seed = body.iter().fold(data.len(), |h, b| {
        h.wrapping_mul(31).wrapping_add(*b as usize)
    });
    // Another body.
    let mut other = body.clone();
    match other.get_mut(seed % body.len().max(1)) {
        Some(b) => *b ^= 1 << (seed % 8),
        None => other.push(b'x'),
    }
    refused(&secret, &signed, &other, "another body");
    // Another MAC (one bit of one byte), printed as verify reads it.
    let mut m = mac(&secret, t, &body);
    m[seed % 32] ^= 1 << (seed % 8);
    refused(
        &secret,
        &format!("t={t},v1={}", hex::encode(&m)),
        &body,
        "another MAC",
    );
    // Another timestamp, within the window.
    if let Some(t2) = t.checked_add(1) {
        let v1 = hex::encode(mac(&secret, t, &body));
        assert_eq!(
            verify(&secret, &format!("t={t2},v1={v1}"), &body, t2, window),
            Err(VerifyError::Mismatch),
            "another timestamp"
        );
    }
    // Another secret of the same length (HMAC pads short keys with zeros: only trailing
    // NULs would make an equal key, and the length does not change here).
    let mut chars: Vec<char> = secret.chars().collect();
    if !chars.is_empty() {
        let i = seed % chars.len();
        chars[i] = if chars[i] == 'x' { 'y' } else { 'x' };
        let other_secret: String = chars.into_iter().collect();
        if other_secret.len() == secret.len() {
            refused(&other_secret, &signed, &body, "another secret");
        }
    }
});
