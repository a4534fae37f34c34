//! Detection rules over HTTP: validate, shadow, active, versions, folding, backtest, enforcement.

use riskdesk_domain::Role;
use serde_json::{Value, json};

use crate::helpers::{customer_body, spawn_app};

fn gpu(event_id: &str, customer: &str, time: &str, cost: &str, region: &str) -> Value {
    json!({"type": "usage", "event_id": event_id, "customer_id": customer, "time": time,
           "meter_category": "Virtual Machines", "meter_name": "NC24ads A100 v4", "region": region,
           "cost": cost, "currency": "USD"})
}

#[tokio::test]
async fn validate_names_the_position_and_the_problem() {
    let app = spawn_app().await;
    let v = |cond: &str| json!({"scope": "usage", "condition": cond});
    let r = app
        .post(
            &app.admin,
            "/v1/rules/validate",
            &v("event.cost > 10.0 && spend(\"24h\") > 100.0"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["valid"], true);
    let r = app
        .post(&app.admin, "/v1/rules/validate", &v("event.cost >"))
        .await;
    assert_eq!(r.body["valid"], false);
    assert_eq!(r.body["errors"][0]["line"], 1, "{}", r.body);
    assert!(r.body["errors"][0]["column"].as_u64().is_some());
    let r = app
        .post(&app.admin, "/v1/rules/validate", &v("event.cost + 1.0"))
        .await;
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("true or false"),
        "{}",
        r.body
    );
    let r = app
        .post(&app.admin, "/v1/rules/validate", &v("spend(\"5h\") > 1.0"))
        .await;
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("window '5h'"),
        "{}",
        r.body
    );
    let r = app
        .post(&app.admin, "/v1/rules/validate", &v("evnt.cost > 1.0"))
        .await;
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown variable 'evnt'")
    );
    let r = app
        .post(
            &app.admin,
            "/v1/rules/validate",
            &json!({"scope": "signals", "condition": "true"}),
        )
        .await;
    assert_eq!(r.status, 422);

    let r = app.post(&app.admin, "/v1/rules", &json!({"name": "bad", "scope": "usage", "condition": "event.cost >", "severity": "high"})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.fields(), vec!["condition"]);
    assert!(r.detail().contains("line 1, column"), "{}", r.detail());
    let auditor = app.token("default", Role::Auditor).await;
    let r = app
        .post(
            &auditor,
            "/v1/rules",
            &json!({"name": "x", "scope": "usage", "condition": "true", "severity": "low"}),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn a_rule_is_tried_in_shadow_then_alerts_with_its_evidence_and_folds() {
    let app = spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Miner"))
        .await;
    let cid = c["id"].as_str().unwrap();
    let rule = json!({"name": "GPU surge", "scope": "usage", "severity": "high", "cooldown_seconds": 3600,
        "condition": "event.meter_category == 'Virtual Machines' && spend(\"1h\") > 100.0 && customer.age_days < 30"});
    let r = app.post(&app.admin, "/v1/rules", &rule).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["mode"], "shadow");
    assert_eq!(r.body["version"], 1);
    let id = r.body["id"].as_str().unwrap().to_owned();

    let r = app
        .post(
            &app.admin,
            "/v1/events",
            &json!([
                gpu("g-1", cid, "2026-11-02T10:00:00Z", "60", "westeurope"),
                gpu("g-2", cid, "2026-11-02T10:20:00Z", "60", "westeurope"),
            ]),
        )
        .await;
    assert_eq!(r.body["shadow_hits"], 1, "{}", r.body);
    assert_eq!(r.body["alerts"], json!([]));
    assert_eq!(
        app.get(&app.admin, &format!("/v1/rules/{id}")).await.body["shadow_hits"],
        1
    );

    // Switched on: version 2; the next hit alerts and says why.
    let mut active = rule.clone();
    active["mode"] = json!("active");
    let r = app
        .put(&app.admin, &format!("/v1/rules/{id}"), &active)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["version"], 2);
    let r = app
        .post(
            &app.admin,
            "/v1/events",
            &json!([gpu("g-3", cid, "2026-11-02T10:40:00Z", "10", "westeurope")]),
        )
        .await;
    let alert_id = r.body["alerts"][0].as_str().unwrap().to_owned();
    let a = app.get(&app.admin, &format!("/v1/alerts/{alert_id}")).await;
    assert_eq!(a.body["severity"], "high");
    assert_eq!(a.body["title"], "GPU surge");
    assert_eq!(a.body["rule"], id);
    assert_eq!(
        a.body["evidence"]["values"]["spend(\"1h\")"], 130.0,
        "{}",
        a.body
    );
    assert_eq!(a.body["evidence"]["rule"]["version"], 2);
    assert_eq!(a.body["evidence"]["event"]["event_id"], "g-3");
    assert_eq!(a.body["evidence"]["customer"]["age_days"], 0);

    // Within the cool-down, another hit folds into the same alert.
    let r = app
        .post(
            &app.admin,
            "/v1/events",
            &json!([gpu("g-4", cid, "2026-11-02T10:50:00Z", "10", "westeurope")]),
        )
        .await;
    assert_eq!(r.body["alerts"][0], alert_id.as_str());
    let a = app.get(&app.admin, &format!("/v1/alerts/{alert_id}")).await;
    assert_eq!(a.body["count"], 2);

    // Both versions are in the audit log.
    let audit = app
        .get(&app.admin, &format!("/v1/audit?entity_id={id}"))
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["rule.create", "rule.update"]);
}

/// Rules are evaluated while a batch is written, as if every event were new: a batch that
/// turns out to re-send an event is evaluated again without it, and the customer's history
/// keeps it once.
#[tokio::test]
async fn a_re_sent_event_in_a_batch_is_not_seen_twice_by_the_rules() {
    let app = spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Resender"))
        .await;
    let cid = c["id"].as_str().unwrap();
    let rule = json!({"name": "Hour spend band", "scope": "usage", "severity": "low", "mode": "shadow",
        "condition": "spend(\"1h\") > 100.0 && spend(\"1h\") < 120.0"});
    let r = app.post(&app.admin, "/v1/rules", &rule).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Holds on d-2 only if d-2 is evaluated, and on the hour as it really is.
    let low = json!({"name": "Hour spend low band", "scope": "usage", "severity": "low", "mode": "shadow",
        "condition": "spend(\"1h\") > 60.0 && spend(\"1h\") < 70.0"});
    let r = app.post(&app.admin, "/v1/rules", &low).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let low_id = r.body["id"].as_str().unwrap().to_owned();
    let send = |events: Value| {
        let app = &app;
        async move { app.post(&app.admin, "/v1/events", &events).await }
    };
    let r = send(json!([gpu(
        "d-1",
        cid,
        "2026-11-02T10:00:00Z",
        "55",
        "westeurope"
    )]))
    .await;
    assert_eq!(
        (r.body["accepted"].as_u64(), r.body["shadow_hits"].as_u64()),
        (Some(1), Some(0)),
        "{}",
        r.body
    );
    // d-1 again (counted twice: 110 in the hour, a hit) with d-2 (10): the hour holds 65.
    let r = send(json!([
        gpu("d-1", cid, "2026-11-02T10:00:00Z", "55", "westeurope"),
        gpu("d-2", cid, "2026-11-02T10:20:00Z", "10", "westeurope"),
    ]))
    .await;
    assert_eq!(r.body["duplicates"], 1, "{}", r.body);
    assert_eq!(r.body["shadow_hits"], 1, "{}", r.body);
    assert_eq!(
        app.get(&app.admin, &format!("/v1/rules/{low_id}"))
            .await
            .body["shadow_hits"],
        1
    );
    // 40 more: 105 in the hour (160 had the history kept d-1 twice).
    let r = send(json!([gpu(
        "d-3",
        cid,
        "2026-11-02T10:30:00Z",
        "40",
        "westeurope"
    )]))
    .await;
    assert_eq!(r.body["shadow_hits"], 1, "{}", r.body);
}

#[tokio::test]
async fn backtest_reports_hits_per_customer_and_day_and_writes_nothing() {
    let app = spawn_app().await;
    let a = app.create_customer(&app.admin, customer_body("A")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.create_customer(&app.admin, customer_body("B")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &app.admin,
        "/v1/events",
        &json!([
            gpu("a-1", &a, "2026-11-01T08:00:00Z", "5", "westeurope"),
            gpu("a-2", &a, "2026-11-01T09:00:00Z", "5", "brazilsouth"),
            gpu("a-3", &a, "2026-11-02T09:00:00Z", "5", "japaneast"),
            gpu("b-1", &b, "2026-11-01T08:00:00Z", "5", "westeurope"),
            gpu("b-2", &b, "2026-11-03T08:00:00Z", "5", "westeurope"),
        ]),
    )
    .await;
    let r = app
        .post(
            &app.admin,
            "/v1/rules",
            &json!({"name": "new region", "scope": "usage", "severity": "medium",
        "condition": "new_region() && events(\"30d\") > 1", "mode": "disabled"}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &app.admin,
            &format!("/v1/rules/{id}/backtest"),
            &json!({"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["events_evaluated"], 5);
    assert_eq!(r.body["hits"], 2, "{}", r.body);
    assert_eq!(
        r.body["by_customer"],
        json!([{"customer_id": a, "hits": 2}])
    );
    assert_eq!(
        r.body["by_day"],
        json!([{"day": "2026-11-01", "hits": 1}, {"day": "2026-11-02", "hits": 1}])
    );
    // The window functions saw history before `from`.
    let r = app
        .post(
            &app.admin,
            &format!("/v1/rules/{id}/backtest"),
            &json!({"from": "2026-11-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.body["hits"], 1);
    assert_eq!(r.body["events_scanned"], 5);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/rules/{id}/backtest"),
            &json!({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.fields(), vec!["to"]);
    let alerts = app.get(&app.admin, "/v1/alerts").await;
    assert_eq!(alerts.body["items"], json!([]));
}

#[tokio::test]
async fn a_backtest_over_several_batches_reads_event_fields_and_activity() {
    let app = spawn_app().await;
    let c = app.create_customer(&app.admin, customer_body("Busy")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // 5,000 usage events (more than one replay batch of 4,096), one a minute, every seventh in
    // Japan; then three failed sign-ins among activity.
    let start: jiff::Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
    let at = |m: i64| (start + jiff::SignedDuration::from_mins(m)).to_string();
    let usage: Vec<Value> = (0..5000)
        .map(|m| {
            let region = if m % 7 == 0 {
                "japaneast"
            } else {
                "westeurope"
            };
            gpu(&format!("u-{m}"), &c, &at(m), "1.25", region)
        })
        .collect();
    for chunk in usage.chunks(1000) {
        let r = app
            .post(&app.admin, "/v1/events", &Value::Array(chunk.to_vec()))
            .await;
        assert_eq!(r.body["accepted"], 1000, "{}", r.body);
    }
    let activity: Vec<Value> = (0..5)
        .map(|k| {
            json!({"type": "activity", "event_id": format!("a-{k}"), "customer_id": c,
                   "time": at(5000 + k), "operation": "sign-in", "actor": "x@example.com",
                   "status": if k % 2 == 0 { "Failed" } else { "Succeeded" }, "properties": {}})
        })
        .collect();
    app.post(&app.admin, "/v1/events", &Value::Array(activity))
        .await;
    let backtest = |cond: &'static str, scope: &'static str| {
        let app = &app;
        async move {
            let r = app
                .post(
                    &app.admin,
                    "/v1/rules",
                    &json!({"name": cond, "scope": scope, "severity": "low", "condition": cond, "mode": "disabled"}),
                )
                .await;
            let id = r.body["id"].as_str().unwrap().to_owned();
            app.post(
                &app.admin,
                &format!("/v1/rules/{id}/backtest"),
                &json!({"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}),
            )
            .await
            .body
        }
    };
    // `event` is read from the stored events; the window sees every earlier event.
    let r = backtest(
        "event.region == 'japaneast' && spend('1h') >= 75.0",
        "usage",
    )
    .await;
    assert_eq!(r["events_scanned"], 5005, "{r}");
    assert_eq!(r["events_evaluated"], 5000, "{r}");
    // From minute 59 on a full hour holds 60 events of 1.25: every Japanese minute from 63 on.
    let expected = (59..5000).filter(|m| m % 7 == 0).count();
    assert_eq!(r["hits"], expected, "{r}");
    let r = backtest("failed_ops('sign-in', '1h') >= 2", "activity").await;
    assert_eq!(r["events_evaluated"], 5, "{r}");
    // Failed at minutes 5000, 5002 and 5004: two or more in the hour from the third event on.
    assert_eq!(r["hits"], 3, "{r}");
}

#[tokio::test]
async fn an_automatic_action_suspends_the_customers_subscriptions() {
    let app = spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Spammer"))
        .await;
    let cid = c["id"].as_str().unwrap();
    let sub = app.create_subscription(&app.admin, cid).await;
    let r = app.post(&app.admin, "/v1/rules", &json!({"name": "port 25", "scope": "activity", "severity": "critical", "mode": "active",
        "condition": "event.operation == 'firewall_rule_opened' && event.properties.port == 25",
        "action": {"action": "suspend", "mode": "auto"}})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ev = |id: &str, port: i64| {
        json!({"type": "activity", "event_id": id, "customer_id": cid, "time": "2026-11-02T10:00:00Z",
        "operation": "firewall_rule_opened", "actor": "x@example.com", "status": "succeeded", "properties": {"port": port}})
    };
    let r = app
        .post(&app.admin, "/v1/events", &json!([ev("f-1", 443)]))
        .await;
    assert_eq!(r.body["alerts"], json!([]));
    let r = app
        .post(&app.admin, "/v1/events", &json!([ev("f-2", 25)]))
        .await;
    // Two alerts: this rule's, and the shipped "port 25 opened" detector's.
    assert_eq!(r.body["alerts"].as_array().unwrap().len(), 2, "{}", r.body);
    let mut ours = None;
    for id in r.body["alerts"].as_array().unwrap() {
        let a = app
            .get(&app.admin, &format!("/v1/alerts/{}", id.as_str().unwrap()))
            .await;
        if a.body["title"] == "port 25" {
            ours = Some(a);
        }
    }
    let alert = ours.expect("the rule's alert");
    assert_eq!(
        alert.body["evidence"]["enforcement"]["subscriptions_acted_on"],
        json!([sub["id"]])
    );
    let s = app
        .get(
            &app.admin,
            &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(s.body["status"], "suspended");
    // An event without the property the rule reads is an evaluation error, not a failed batch.
    let r = app
        .post(
            &app.admin,
            "/v1/events",
            &json!([{"type": "activity", "event_id": "f-3", "customer_id": cid,
        "time": "2026-11-02T11:00:00Z", "operation": "firewall_rule_opened"}]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["accepted"], 1);
    assert_eq!(r.body["rule_errors"], 1, "{}", r.body);
}

#[tokio::test]
async fn signup_rules_see_each_assessment_and_alert_without_window_functions() {
    let app = crate::helpers::spawn_app().await;
    // Window functions read a customer's history, which a sign-up has not.
    let r = app
        .post(
            &app.admin,
            "/v1/rules/validate",
            &json!({"scope": "signup", "condition": "spend(\"1h\") > 1.0"}),
        )
        .await;
    assert_eq!(r.body["valid"], false, "{}", r.body);
    let r = app
        .post(
            &app.admin,
            "/v1/rules",
            &json!({"name": "Night sign-ups from free mail", "scope": "signup", "severity": "medium",
                    "condition": "event.email_domain == 'gmail.com' && 'email_free_provider' in event.reasons",
                    "mode": "active"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let rule_id = r.body["id"].as_str().unwrap().to_owned();
    let signup = |email: &str, ip: &str| {
        json!({
            "company": {"name": "Contoso Ltd", "domain": "contoso.co.uk", "country": "GB", "address": "1 High St"},
            "contact": {"email": email, "phone": "+442071838750", "name": "Ada"},
            "ip": ip, "payment_instrument": {"type": "bank_transfer"},
            "cloud_instance": "global", "locale": "en", "as_of": "2026-11-01T12:00:00Z",
        })
    };
    let a = app
        .post(
            &app.admin,
            "/v1/signups/assess",
            &signup("founder@gmail.com", "203.0.113.20"),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    app.post(
        &app.admin,
        "/v1/signups/assess",
        &signup("ops@contoso.co.uk", "203.0.113.21"),
    )
    .await;
    let alerts = app
        .get(&app.admin, &format!("/v1/alerts?rule={rule_id}"))
        .await;
    let items = alerts.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", alerts.body);
    let one = app
        .get(
            &app.admin,
            &format!("/v1/alerts/{}", items[0]["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(one.body["evidence"]["signup"]["email"], "founder@gmail.com");
    assert_eq!(
        one.body["evidence"]["signup"]["assessment_id"],
        a.body["assessment_id"]
    );
    // Signup rules are tried in shadow mode, not backtested over events.
    let b = app
        .post(
            &app.admin,
            &format!("/v1/rules/{rule_id}/backtest"),
            &json!({"from": "2026-10-01T00:00:00Z", "to": "2026-11-30T00:00:00Z"}),
        )
        .await;
    b.problem(409);
}
