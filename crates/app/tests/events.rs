//! The events between capabilities are a contract: stable names, a fixed serialised shape,
//! and a reaction for every one of them in `wiring`.

use riskdesk_app::kernel::Event;
use riskdesk_app::onboarding::request::parse_request_bytes;
use riskdesk_app::onboarding::risk::RiskEngine;
use riskdesk_app::wiring::{Delivery, delivery};
use riskdesk_domain::audit::Actor;
use riskdesk_domain::onboarding::assess::{SignupFacts, assess};
use riskdesk_domain::{CustomerId, TenantId};
use riskdesk_storage::alerts::AlertRow;
use riskdesk_storage::signups::SignupRow;
use serde_json::{Value, json};
use uuid::Uuid;

fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// One event of every kind, and the JSON each must serialise to.
fn check_every_event(f: impl Fn(&Event<'_>, Value)) {
    let tenant = TenantId(uuid(1));
    let at: jiff::Timestamp = "2026-11-01T12:00:00Z".parse().unwrap();
    let actor = Actor::system("test");
    let alert = AlertRow {
        id: uuid(2),
        customer_id: Some(uuid(3)),
        rule: "builtin.gpu_young_account".into(),
        severity: "high".into(),
        status: "open".into(),
        title: "GPU spend on a young account".into(),
        evidence_json: "{}".into(),
        count: 1,
        first_at: 1,
        last_at: 1,
        created_at: 1,
        updated_at: 1,
        note: None,
    };
    f(
        &Event::AlertRaised {
            tenant,
            at,
            actor: &actor,
            alert: &alert,
            endpoints: &[],
        },
        json!({"type": "alert.raised", "tenant": uuid(1), "at": "2026-11-01T12:00:00Z",
               "alert": serde_json::to_value(&alert).unwrap()}),
    );
    f(
        &Event::CustomerExternalIdSet {
            tenant,
            at,
            customer: CustomerId(uuid(3)),
            external_id: "C-1",
        },
        json!({"type": "customer.external_id_set", "tenant": uuid(1),
               "at": "2026-11-01T12:00:00Z", "customer": uuid(3), "external_id": "C-1"}),
    );
    let engine = RiskEngine::shipped().unwrap();
    let (input, _) = parse_request_bytes(
        br#"{"company": {"name": "Contoso Ltd", "domain": "contoso.example", "country": "GB"},
             "contact": {"email": "ops@contoso.example"}, "ip": "203.0.113.9",
             "cloud_instance": "global", "as_of": "2026-11-01T12:00:00Z"}"#,
        at,
    )
    .unwrap();
    let assessment = assess(
        &input,
        &SignupFacts::default(),
        &engine.data,
        &engine.policy,
    );
    let signup = SignupRow {
        id: uuid(4),
        tenant_id: uuid(1),
        created_at: 1,
        as_of: 1,
        decision: assessment.decision.as_str().into(),
        score: assessment.score as i64,
        status: "approved".into(),
        input_json: "{}".into(),
        outcome_json: "{}".into(),
        customer_id: None,
        reviewed_at: None,
        review_note: None,
    };
    f(
        &Event::SignupAssessed {
            tenant,
            at,
            signup: &signup,
            cloud_instance: "global",
            input: &input,
            assessment: &assessment,
        },
        json!({"type": "signup.assessed", "tenant": uuid(1), "at": "2026-11-01T12:00:00Z",
               "signup": serde_json::to_value(&signup).unwrap(), "cloud_instance": "global"}),
    );
    f(
        &Event::SignupHeldForReview {
            tenant,
            at,
            actor: &actor,
            signup: uuid(4),
            company_name: "Contoso Ltd",
            score: 40,
        },
        json!({"type": "signup.held_for_review", "tenant": uuid(1),
               "at": "2026-11-01T12:00:00Z", "signup": uuid(4), "company_name": "Contoso Ltd",
               "score": 40}),
    );
    f(
        &Event::SignupReviewed {
            tenant,
            at,
            actor: &actor,
            signup: uuid(4),
            customer: Some(uuid(3)),
            approved: true,
        },
        json!({"type": "signup.reviewed", "tenant": uuid(1), "at": "2026-11-01T12:00:00Z",
               "signup": uuid(4), "customer": uuid(3), "approved": true}),
    );
}

#[test]
fn every_event_serialises_to_its_documented_shape_under_its_stable_name() {
    let seen = std::cell::RefCell::new(Vec::new());
    check_every_event(|event, want| {
        let got = serde_json::to_value(event).unwrap();
        assert_eq!(got, want, "{}", event.name());
        assert_eq!(got["type"], event.name());
        seen.borrow_mut().push(event.name());
    });
    // One sample per variant, in the order of the names list, each name once.
    assert_eq!(seen.into_inner(), Event::NAMES.to_vec());
    let mut names = Event::NAMES.to_vec();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        Event::NAMES.len(),
        "event names must be unique"
    );
    for name in Event::NAMES {
        assert!(
            name.split('.').count() == 2
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
            "'{name}' is not a stable `noun.verb` name"
        );
    }
}

#[test]
fn every_event_has_a_reaction_in_the_wiring_and_each_commits_with_its_cause() {
    check_every_event(|event, _| {
        let reactions = delivery(event);
        assert!(!reactions.is_empty(), "no reaction to {}", event.name());
        for (name, class) in reactions {
            // This release has no after-commit consumers yet: every reaction is in the
            // emitter's unit of work (see ARCHITECTURE.md, "Events").
            assert_eq!(*class, Delivery::InTx, "{} → {name}", event.name());
        }
    });
}

#[test]
fn skipped_fields_never_leak_in_process_context_onto_the_wire() {
    check_every_event(|event, _| {
        let got = serde_json::to_value(event).unwrap();
        for private in ["actor", "endpoints", "input", "assessment"] {
            assert!(
                got.get(private).is_none(),
                "{} carries {private}",
                event.name()
            );
        }
    });
}
