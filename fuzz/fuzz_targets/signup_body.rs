//! The sign-up body: `POST /v1/signups/assess` reads it with the kernel's JSON reader into a
//! `serde_json::Value` and validates it with `riskdesk_app::onboarding::request::parse_request`
//! (as it does again on approval, from the stored value); `riskdesk signups assess` batch lines
//! go through `parse_request_bytes`. A valid one is then scored by the pure
//! `riskdesk_domain::onboarding::assess::assess` with the shipped reference data.
//!
//! Invariants: no panic; a refusal is a validation problem or a bad request, never the
//! "validation passed with a missing value" internal error; whatever the batch reader accepts
//! the API accepts as the same sign-up, and the stored value (printed and read back) is
//! accepted again as the same sign-up; validated text holds no control character (tab and
//! line feed only in the free-text address); the score is the sum of the reasons' points
//! capped at 100, each reason once, and a rejection has no credit.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use riskdesk_app::AppError;
use riskdesk_app::kernel::json::parse_json;
use riskdesk_app::onboarding::request::{parse_request, parse_request_bytes};
use riskdesk_app::onboarding::risk::RiskEngine;
use riskdesk_domain::onboarding::assess::{Decision, SignupFacts, assess, velocity_keys};
use riskdesk_domain::values::forbidden_control;

static ENGINE: LazyLock<RiskEngine> =
    LazyLock::new(|| RiskEngine::shipped().expect("the shipped reference data loads"));

fn no_internal<T>(r: &Result<T, AppError>, what: &str) {
    if let Err(e @ AppError::Internal(_)) = r {
        panic!("{what}: an internal error for a bad sign-up: {e:?}");
    }
    if let Err(e) = r {
        assert!(
            matches!(e, AppError::Validation { .. } | AppError::BadRequest(_)),
            "{what}: {e:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let now = jiff::Timestamp::from_second(1_900_000_000).unwrap();
    let batch = parse_request_bytes(data, now);
    no_internal(&batch, "parse_request_bytes");
    let api = parse_json::<serde_json::Value>(data).map(|v| (parse_request(v.clone(), now), v));
    if let Ok((r, _)) = &api {
        no_internal(r, "parse_request");
    }
    if let Ok(b) = &batch {
        let Ok((Ok(a), _)) = &api else {
            panic!("the batch reader accepts {b:?}, the API does not: {api:?}");
        };
        assert_eq!(
            format!("{a:?}"),
            format!("{b:?}"),
            "the API and the batch reader"
        );
    }
    let Ok((Ok((input, details)), value)) = api else {
        return;
    };
    // Approval re-reads the stored value.
    let stored: serde_json::Value = serde_json::from_str(&value.to_string()).unwrap();
    match parse_request(stored, now) {
        Ok(again) => assert_eq!(
            format!("{:?}", (&input, &details)),
            format!("{again:?}"),
            "the stored sign-up read again"
        ),
        Err(e) => panic!("the stored sign-up is refused on approval: {e:?}"),
    }

    let texts = [
        ("company.name", Some(input.company_name.as_str())),
        ("company.domain", Some(input.company_domain.as_str())),
        ("contact.email", Some(input.email.as_str())),
        ("contact.phone", input.phone.as_deref()),
        ("device_id", input.device_id.as_deref()),
        ("contact.name", details.contact_name.as_deref()),
    ];
    for (field, s) in texts {
        if let Some(c) = s.and_then(|s| forbidden_control(s, false)) {
            panic!("a validated sign-up holds {c:?} in {field}: {input:?}");
        }
    }
    if let Some(c) = details
        .address
        .as_deref()
        .and_then(|s| forbidden_control(s, true))
    {
        panic!("a validated sign-up holds {c:?} in company.address: {details:?}");
    }

    let engine = &*ENGINE;
    let _ = velocity_keys(&input, &engine.data.email_lists);
    let a = assess(
        &input,
        &SignupFacts::default(),
        &engine.data,
        &engine.policy,
    );
    let points: u32 = a.reasons.iter().map(|r| r.points).sum();
    assert_eq!(a.score, points.min(100), "{a:?}");
    let mut codes: Vec<_> = a.reasons.iter().map(|r| r.code).collect();
    codes.sort_unstable();
    let n = codes.len();
    codes.dedup();
    assert_eq!(codes.len(), n, "a reason given twice: {a:?}");
    if a.decision == Decision::Reject {
        assert!(a.credit_limit.minor == 0 && a.prepayment_required, "{a:?}");
    }
    let again = assess(
        &input,
        &SignupFacts::default(),
        &engine.data,
        &engine.policy,
    );
    assert_eq!(a, again, "the same sign-up scored twice");
});
