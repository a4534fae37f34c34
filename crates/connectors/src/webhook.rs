//! Signed webhooks to partner endpoints.
//!
//! Each delivery is a `POST` of a JSON body with these headers:
//! - `Riskdesk-Event-Id`: the message id (the same on every retry: receivers drop repeats),
//! - `Riskdesk-Event-Type`: e.g. `dunning.step`,
//! - `Riskdesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
//!
//! A receiver recomputes the HMAC over the timestamp and the raw body it received, compares in
//! constant time, and refuses a timestamp older than its replay window (5 minutes is the
//! default of [`verify`]). A 2xx answer is a delivery; anything else is retried with backoff.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "Riskdesk-Signature";
pub const EVENT_ID_HEADER: &str = "Riskdesk-Event-Id";
pub const EVENT_TYPE_HEADER: &str = "Riskdesk-Event-Type";
/// The replay window [`verify`] applies by default.
pub const REPLAY_WINDOW_SECONDS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// The `Riskdesk-Signature` value for a body sent at `t` (Unix seconds).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key size");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature is outside the replay window")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks a signature header against the raw body, at `now` (Unix seconds).
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    window_seconds: i64,
) -> Result<(), VerifyError> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(VerifyError::Malformed);
    };
    // In i128: a timestamp far from now (`t=-9223372036854775808`) is stale, not an overflow;
    // a negative window accepts nothing.
    if (i128::from(now) - i128::from(t)).abs() > i128::from(window_seconds) {
        return Err(VerifyError::Stale);
    }
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key size");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&v1).map_err(|_| VerifyError::Mismatch)
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the endpoint answered {0}")]
    Status(u16),
    #[error("could not reach the endpoint: {0}")]
    Transport(String),
}

/// Posts one signed event. `now` is the signing time (Unix seconds).
pub async fn deliver(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    event_id: &str,
    event_type: &str,
    body: &str,
    now: i64,
) -> Result<(), DeliveryError> {
    let r = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_ID_HEADER, event_id)
        .header(EVENT_TYPE_HEADER, event_type)
        .header(SIGNATURE_HEADER, sign(secret, now, body.as_bytes()))
        .body(body.to_owned())
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| DeliveryError::Transport(e.to_string()))?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Status(r.status().as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (fuzz/regressions/webhook_signature): `now - t` overflowed.
    #[test]
    fn a_timestamp_at_the_ends_of_i64_is_stale_not_an_overflow() {
        for (t, now) in [(i64::MIN, 0), (i64::MIN, 1_800_000_000), (i64::MAX, -1)] {
            let h = format!("t={t},v1=00");
            assert_eq!(
                verify("whsec_1", &h, b"{}", now, 300),
                Err(VerifyError::Stale)
            );
        }
    }

    #[test]
    fn a_signature_verifies_only_for_its_body_secret_and_window() {
        let h = sign("whsec_1", 1_800_000_000, b"{\"a\":1}");
        assert!(h.starts_with("t=1800000000,v1="));
        assert_eq!(
            verify("whsec_1", &h, b"{\"a\":1}", 1_800_000_100, 300),
            Ok(())
        );
        assert_eq!(
            verify("whsec_1", &h, b"{\"a\":2}", 1_800_000_100, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("whsec_2", &h, b"{\"a\":1}", 1_800_000_100, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("whsec_1", &h, b"{\"a\":1}", 1_800_000_400, 300),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify("whsec_1", "v1=00", b"", 0, 300),
            Err(VerifyError::Malformed)
        );
    }
}
