//! Detection rule conditions (CEL) as `POST /v1/rules`, `riskdesk rules` and the detector
//! compile them: `riskdesk_domain::monitoring::rules::RuleRuntime::compile` (parse, names
//! checked, one run on a sample event of the scope), then evaluation by the native evaluator
//! and the CEL interpreter.
//!
//! Input: the first byte is the scope (`u` usage, `a` activity, `s` signup; any other byte:
//! its value mod 3), the rest the condition.
//!
//! Invariants: no panic (nor stack overflow) on any text; a condition that compiles runs on
//! the sample subject of its scope without an error; `decide` (the native evaluator's answer
//! when it has one) and `evaluate` (the interpreter whenever the native evaluator does not
//! say false) agree on the sample subject, on a sparse one and on one with other types and a
//! history; so do they for `!(condition)`, which compiles whenever the condition does (a
//! native "false" that the interpreter would call "true" shows there).
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use riskdesk_domain::monitoring::rules::{
    Compiled, History, Rec, RuleRuntime, Scope, Subject, sample_subject,
};

static RUNTIME: LazyLock<RuleRuntime> = LazyLock::new(RuleRuntime::default);

const HOUR: i64 = 3_600_000_000;

fn history() -> History {
    let mut h = History::default();
    let rec = |at: i64, usage: bool, cost: f64, op: &str, failed: bool| Rec {
        at,
        usage,
        cost,
        category: Arc::from("Virtual Machines"),
        region: Arc::from(if at % 2 == 0 { "westeurope" } else { "eastus" }),
        sku: Arc::from("NC24ads A100 v4"),
        operation: Arc::from(op),
        failed,
        actor: Arc::from("someone@example.com"),
    };
    let now = 40 * 24 * HOUR;
    for (i, (back, usage, cost, op, failed)) in [
        (30 * 24 * HOUR, true, 3.5, "", false),
        (8 * 24 * HOUR, true, 12.25, "", false),
        (2 * HOUR, false, 0.0, "quota_increase", false),
        (30 * 60_000_000, false, 0.0, "sign_in_failure", true),
        (5 * 60_000_000, true, 250.0, "", false),
        (0, true, 1.0, "", false),
    ]
    .into_iter()
    .enumerate()
    {
        h.push(rec(now - back + i as i64, usage, cost, op, failed));
    }
    h
}

/// Subjects beyond the sample: one with almost nothing, one with ints where the sample has
/// doubles (and the reverse), other strings, and a history.
fn subjects(scope: Scope) -> Vec<(Subject<'static>, History)> {
    let now = 40 * 24 * HOUR;
    let sparse = Subject::new(
        serde_json::json!({"type": scope.as_str()}),
        serde_json::json!({}),
        now,
        Arc::from(""),
        Arc::from(""),
    );
    let other = Subject::new(
        serde_json::json!({
            "type": scope.as_str(), "event_id": "e-2", "meter_category": "Bandwidth",
            "meter_name": "", "region": "eastus", "resource_id": null, "quantity": 3,
            "unit": "GB", "cost": 250, "currency": "EUR", "operation": "quota_increase",
            "actor": "", "status": "Failed", "properties": {"port": "25", "external": true},
            "hour": 0, "weekday": 7, "email_domain": "gmail.com", "reasons": [], "score": 99.5,
            "decision": "reject",
        }),
        serde_json::json!({
            "id": "x", "age_days": 0.5, "country": "", "cloud_instance": "china_21vianet",
            "risk_status": "watch", "admin_access": "full", "credit_limit": -1,
            "budget_used_pct": 150, "paid": true,
        }),
        now,
        Arc::from("eastus"),
        Arc::from("D2s v5"),
    );
    vec![
        (sample_subject(scope), History::default()),
        (sparse, History::default()),
        (other, history()),
    ]
}

fn agree(rule: &Compiled, what: &str) {
    for (i, (subject, history)) in subjects(rule.scope).into_iter().enumerate() {
        let decided = RUNTIME.decide(rule, &subject, &mut history.clone());
        let evaluated = RUNTIME.evaluate(rule, &subject, &mut history.clone());
        match (&decided, &evaluated) {
            (Ok(d), Ok(o)) => assert_eq!(
                *d, o.hit,
                "{what} on subject {i}: decide says {d}, evaluate says {}",
                o.hit
            ),
            (Err(_), Err(_)) => {}
            _ => panic!("{what} on subject {i}: decide gives {decided:?}, evaluate {evaluated:?}"),
        }
        if i == 0 {
            assert!(
                evaluated.is_ok(),
                "{what} compiled but fails on the sample subject: {evaluated:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&s, rest)) = data.split_first() else {
        return;
    };
    let scope = match s {
        b'u' => Scope::Usage,
        b'a' => Scope::Activity,
        b's' => Scope::Signup,
        n => [Scope::Usage, Scope::Activity, Scope::Signup][n as usize % 3],
    };
    // Conditions arrive in JSON strings: UTF-8.
    let Ok(source) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(rule) = RUNTIME.compile(source, scope) else {
        return;
    };
    agree(&rule, source);
    if source.len() <= 4000 {
        let negated = format!("!(\n{source}\n)");
        match RUNTIME.compile(&negated, scope) {
            Ok(not) => agree(&not, &negated),
            Err(e) => panic!("{source:?} compiles, its negation does not: {e:?}"),
        }
    }
});
