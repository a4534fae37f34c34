//! Events in, budgets, alerts — over HTTP.

use riskdesk_domain::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, customer_body, spawn_app};

fn usage(event_id: &str, customer: &str, time: &str, cost: &str) -> Value {
    json!({"type": "usage", "event_id": event_id, "customer_id": customer, "time": time,
           "meter_category": "Virtual Machines", "meter_name": "D4s v5", "region": "westeurope",
           "quantity": 1, "unit": "Hours", "cost": cost, "currency": "USD"})
}

async fn post_ndjson(app: &TestApp, token: &str, body: String) -> crate::helpers::Resp {
    app.send(
        app.client
            .post(format!("{}/v1/events", app.base))
            .bearer_auth(token)
            .header("Content-Type", "application/x-ndjson")
            .body(body),
    )
    .await
}

async fn customer(app: &TestApp, external_id: Option<&str>) -> String {
    let mut b = customer_body("Fabrikam");
    if let Some(x) = external_id {
        b["external_id"] = json!(x);
    }
    app.create_customer(&app.admin, b).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_batch_accepts_good_events_counts_duplicates_and_names_each_bad_one() {
    let app = spawn_app().await;
    let c = customer(&app, None).await;
    let batch = json!([
        usage("e-1", &c, "2026-11-02T10:15:00Z", "12.50"),
        {"type": "activity", "event_id": "e-2", "customer_id": c, "time": "2026-11-02T10:16:00Z",
         "operation": "sign_in_failure", "actor": "eve@example.com", "status": "failed", "properties": {"ip": "203.0.113.9"}},
        usage("e-3", &c, "not a time", "1.00"),
        usage("e-1", &c, "2026-11-02T10:15:00Z", "12.50"),
        {"type": "usage", "event_id": "e-4"},
        usage("e-5", "0190c3f8-9a4e-7cc2-8b4a-37e7ad1f2a10", "2026-11-02T10:15:00Z", "1.00"),
    ]);
    let r = app.post(&app.admin, "/v1/events", &batch).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["accepted"], 2);
    assert_eq!(r.body["duplicates"], 1);
    let rejected = r.body["rejected"].as_array().unwrap();
    let idx: Vec<u64> = rejected
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![2, 4, 5]);
    assert!(rejected[0]["reason"].as_str().unwrap().contains("`time`"));
    assert!(
        rejected[1]["reason"]
            .as_str()
            .unwrap()
            .contains("customer_id")
    );
    assert!(
        rejected[2]["reason"]
            .as_str()
            .unwrap()
            .contains("not a customer of this tenant")
    );

    // Sent again: nothing new, nothing counted twice.
    let r = app.post(&app.admin, "/v1/events", &batch).await;
    assert_eq!(r.body["accepted"], 0);
    assert_eq!(r.body["duplicates"], 3);
}

#[tokio::test]
async fn ndjson_lines_are_indexed_from_zero_and_a_bad_line_blocks_nothing() {
    let app = spawn_app().await;
    let c = customer(&app, None).await;
    let body = format!(
        "{}\n{{not json\n\n{}\n",
        usage("n-1", &c, "2026-11-02T10:00:00Z", "1.00"),
        usage("n-2", &c, "2026-11-02T11:00:00Z", "2.00")
    );
    let r = post_ndjson(&app, &app.admin, body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["accepted"], 2);
    let idx: Vec<u64> = r.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![1, 2]);

    let r = app
        .send(
            app.client
                .post(format!("{}/v1/events", app.base))
                .bearer_auth(&app.admin)
                .header("Content-Type", "text/csv")
                .body("a,b"),
        )
        .await;
    assert_eq!(r.status, 415);
    let r = app
        .send(
            app.client
                .post(format!("{}/v1/events", app.base))
                .bearer_auth(&app.admin)
                .json(&json!({"type": "usage"})),
        )
        .await;
    assert_eq!(r.status, 400, "a single object is not a batch: {}", r.body);
    assert!(r.detail().contains("JSON array"));
}

#[tokio::test]
async fn who_may_send_events() {
    let app = spawn_app().await;
    let auditor = app.token("default", Role::Auditor).await;
    let r = app.post(&auditor, "/v1/events", &json!([])).await;
    assert_eq!(r.status, 403);
    let analyst = app.token("default", Role::Analyst).await;
    let r = app.post(&analyst, "/v1/events", &json!([])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["accepted"], 0);
}

#[tokio::test]
async fn events_for_an_unknown_external_id_wait_for_their_customer() {
    let app = spawn_app().await;
    let ev = json!([{"type": "usage", "event_id": "p-1", "customer_external_id": "CRM-77", "time": "2026-11-03T09:00:00Z",
        "meter_category": "Storage", "meter_name": "LRS", "region": "eastus", "cost": "40.00", "currency": "USD"}]);
    let r = app
        .post(&app.admin, "/v1/events?as_of=2026-11-03T10:00:00Z", &ev)
        .await;
    assert_eq!(r.body["accepted"], 1);
    assert_eq!(r.body["pending_customer"], 1);

    let c = customer(&app, Some("CRM-77")).await;
    let r = app
        .put(
            &app.admin,
            &format!("/v1/customers/{c}/budget"),
            &json!({"monthly_amount": "1000.00", "currency": "USD"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .get(
            &app.admin,
            &format!("/v1/customers/{c}/budget?as_of=2026-11-03T10:00:00Z"),
        )
        .await;
    assert_eq!(r.body["month_to_date"], "40.00", "{}", r.body);
}

async fn put_budget(app: &TestApp, c: &str, body: Value) -> crate::helpers::Resp {
    app.put(&app.admin, &format!("/v1/customers/{c}/budget"), &body)
        .await
}

async fn alerts_for(app: &TestApp, c: &str) -> Vec<Value> {
    let r = app
        .get(&app.admin, &format!("/v1/alerts?customer_id={c}&limit=100"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn budget_thresholds_notify_exactly_once_and_once_more_on_recovery() {
    let app = spawn_app().await;
    let c = customer(&app, None).await;
    let r = put_budget(&app, &c, json!({"monthly_amount": "1000.00", "currency": "USD", "thresholds": [50, 90], "absolute_thresholds": ["600"]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["thresholds"], json!([50, 90]));

    // Late in the month so the forecast stays near the spend.
    let as_of = "as_of=2026-11-29T18:00:00Z";
    let send = |id: &str, cost: &str| usage(id, &c, "2026-11-29T10:00:00Z", cost);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/events?{as_of}"),
            &json!([send("b-1", "499.99")]),
        )
        .await;
    assert_eq!(r.body["alerts"], json!([]));
    let r = app
        .post(
            &app.admin,
            &format!("/v1/events?{as_of}"),
            &json!([send("b-2", "0.01")]),
        )
        .await;
    assert_eq!(
        r.body["alerts"].as_array().unwrap().len(),
        1,
        "50 % reached: {}",
        r.body
    );
    // More spend under the next mark, and a re-sent event: no new notification.
    let r = app
        .post(
            &app.admin,
            &format!("/v1/events?{as_of}"),
            &json!([send("b-3", "50"), send("b-2", "0.01")]),
        )
        .await;
    assert_eq!(r.body["alerts"], json!([]));
    assert_eq!(r.body["duplicates"], 1);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/events?{as_of}"),
            &json!([send("b-4", "400")]),
        )
        .await;
    let rules: Vec<String> = alerts_for(&app, &c)
        .await
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(r.body["alerts"].as_array().unwrap().len(), 2, "{}", r.body);
    assert!(rules.contains(&"budget.percent:90".to_owned()), "{rules:?}");
    assert!(
        rules.contains(&"budget.absolute:60000".to_owned()),
        "{rules:?}"
    );
    assert!(rules.contains(&"budget.percent:50".to_owned()));

    let b = app
        .get(&app.admin, &format!("/v1/customers/{c}/budget?{as_of}"))
        .await;
    assert_eq!(b.body["month_to_date"], "950.00");
    assert_eq!(b.body["percent_used"], 95.0);
    assert_eq!(
        b.body["thresholds_crossed"],
        json!(["percent:50", "percent:90", "absolute:60000"])
    );
    let forecast: f64 = b.body["forecast_month_end"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(forecast > 950.0 && forecast < 1000.0, "{forecast}");

    // A credit takes spend back under 90 %: one recovery notice.
    let r = app
        .post(
            &app.admin,
            &format!("/v1/events?{as_of}"),
            &json!([send("b-5", "-100")]),
        )
        .await;
    let ids = r.body["alerts"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{}", r.body);
    let a = app
        .get(
            &app.admin,
            &format!("/v1/alerts/{}", ids[0].as_str().unwrap()),
        )
        .await;
    assert_eq!(a.body["rule"], "budget.percent:90");
    assert_eq!(a.body["severity"], "info");
    assert_eq!(a.body["evidence"]["change"], "recovered");
    assert_eq!(a.body["evidence"]["spend"], "850.00");
    assert_eq!(alerts_for(&app, &c).await.len(), 4);
}

#[tokio::test]
async fn late_events_count_in_their_own_month() {
    let app = spawn_app().await;
    let c = customer(&app, None).await;
    put_budget(
        &app,
        &c,
        json!({"monthly_amount": "100", "currency": "USD"}),
    )
    .await;
    let r = app
        .post(
            &app.admin,
            "/v1/events?as_of=2026-11-05T00:00:00Z",
            &json!([
                usage("l-1", &c, "2026-10-31T23:59:59Z", "80"),
                usage("l-2", &c, "2026-11-01T00:00:00Z", "5")
            ]),
        )
        .await;
    assert_eq!(r.body["accepted"], 2);
    let nov = app
        .get(
            &app.admin,
            &format!("/v1/customers/{c}/budget?as_of=2026-11-05T00:00:00Z"),
        )
        .await;
    assert_eq!(nov.body["month"], "2026-11");
    assert_eq!(nov.body["month_to_date"], "5.00");
    let oct = app
        .get(
            &app.admin,
            &format!("/v1/customers/{c}/budget?as_of=2026-10-31T23:59:59Z"),
        )
        .await;
    assert_eq!(oct.body["month_to_date"], "80.00");
    // October's 50 % and 75 % marks were notified for October, late as they came.
    let alerts = alerts_for(&app, &c).await;
    let oct_marks: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["evidence"]["month"] == "2026-10")
        .collect();
    assert_eq!(oct_marks.len(), 2, "{alerts:?}");
}

#[tokio::test]
async fn enforcement_suspends_at_its_percentage_once() {
    let app = spawn_app().await;
    let c = customer(&app, None).await;
    let sub = app.create_subscription(&app.admin, &c).await;
    let r = put_budget(
        &app,
        &c,
        json!({"monthly_amount": "100", "currency": "USD", "thresholds": [],
        "enforcement": {"at_percent": 150, "action": "suspend", "mode": "auto"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let as_of = "as_of=2026-11-29T12:00:00Z";
    app.post(
        &app.admin,
        &format!("/v1/events?{as_of}"),
        &json!([usage("x-1", &c, "2026-11-29T10:00:00Z", "149.99")]),
    )
    .await;
    let s = app
        .get(
            &app.admin,
            &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(s.body["status"], "active");
    app.post(
        &app.admin,
        &format!("/v1/events?{as_of}"),
        &json!([usage("x-2", &c, "2026-11-29T10:00:00Z", "0.01")]),
    )
    .await;
    let s = app
        .get(
            &app.admin,
            &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(s.body["status"], "suspended");
    let enforcement: Vec<Value> = alerts_for(&app, &c)
        .await
        .into_iter()
        .filter(|a| a["rule"] == "budget.enforcement")
        .collect();
    assert_eq!(enforcement.len(), 1);
    assert_eq!(
        enforcement[0]["evidence"]["enforcement"]["subscriptions_acted_on"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Reactivated by staff; more spend the same month does not suspend it again.
    app.act(
        &app.admin,
        sub["id"].as_str().unwrap(),
        "reactivate",
        "resolved",
    )
    .await;
    app.post(
        &app.admin,
        &format!("/v1/events?{as_of}"),
        &json!([usage("x-3", &c, "2026-11-29T11:00:00Z", "10")]),
    )
    .await;
    let s = app
        .get(
            &app.admin,
            &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(s.body["status"], "active");
}

#[tokio::test]
async fn budgets_refuse_bad_values_with_each_field_named() {
    let app = spawn_app().await;
    let c = customer(&app, None).await;
    let r = put_budget(
        &app,
        &c,
        json!({"monthly_amount": "12.345", "currency": "USD"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.fields(), vec!["monthly_amount"]);
    let r = put_budget(&app, &c, json!({"monthly_amount": "10", "currency": "USD", "enforcement": {"at_percent": 150, "action": "cancel", "mode": "later"}})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.fields(), vec!["enforcement.action", "enforcement.mode"]);
    let r = put_budget(&app, &c, json!({"monthly_amount": "10", "currency": "ZZZ"})).await;
    assert_eq!(r.fields(), vec!["currency"]);
    let r = app
        .get(&app.admin, &format!("/v1/customers/{c}/budget"))
        .await;
    assert_eq!(r.status, 404);
    let other = app.token("other", Role::Admin).await;
    let r = put_budget(&app, &c, json!({"monthly_amount": "10", "currency": "USD"})).await;
    assert_eq!(r.status, 200);
    let r = app.get(&other, &format!("/v1/customers/{c}/budget")).await;
    assert_eq!(r.status, 404, "another tenant sees nothing");
}

#[tokio::test]
async fn alerts_are_acknowledged_and_dismissed_with_a_note_and_audited() {
    let app = spawn_app().await;
    let c = customer(&app, None).await;
    put_budget(
        &app,
        &c,
        json!({"monthly_amount": "100", "currency": "USD", "thresholds": [50]}),
    )
    .await;
    let r = app
        .post(
            &app.admin,
            "/v1/events?as_of=2026-11-29T12:00:00Z",
            &json!([usage("a-1", &c, "2026-11-29T10:00:00Z", "60")]),
        )
        .await;
    let id = r.body["alerts"][0].as_str().unwrap().to_owned();
    let a = app.get(&app.admin, &format!("/v1/alerts/{id}")).await;
    assert_eq!(a.body["status"], "open");
    assert_eq!(a.body["evidence"]["spend"], "60.00");

    let auditor = app.token("default", Role::Auditor).await;
    let r = app
        .post(
            &auditor,
            &format!("/v1/alerts/{id}"),
            &json!({"action": "acknowledge"}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/alerts/{id}"),
            &json!({"action": "snooze"}),
        )
        .await;
    assert_eq!(r.fields(), vec!["action"]);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/alerts/{id}"),
            &json!({"action": "acknowledge", "note": "customer called"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "acknowledged");
    let r = app
        .post(
            &app.admin,
            &format!("/v1/alerts/{id}"),
            &json!({"action": "dismiss", "note": "expected launch"}),
        )
        .await;
    assert_eq!(r.body["status"], "dismissed");

    let list = app.get(&app.admin, "/v1/alerts?status=dismissed").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let list = app.get(&app.admin, "/v1/alerts?severity=urgent").await;
    assert_eq!(list.status, 422);
    let audit = app
        .get(&app.admin, &format!("/v1/audit?entity_id={id}"))
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["alert.raise", "alert.acknowledge", "alert.dismiss"]
    );
    let other = app.token("other", Role::Admin).await;
    assert_eq!(
        app.get(&other, &format!("/v1/alerts/{id}")).await.status,
        404
    );
}

/// Issue 18: concurrent batches for overlapping customers, each client sending the customers
/// in its own order (on PostgreSQL this deadlocked, and a budget mark was alerted 6–7 times),
/// and the tenant's first batches racing to create its built-in rules (409s). All must answer
/// 2xx, the spend must be exact, each budget mark alerted once, each built-in rule created once.
#[tokio::test]
async fn concurrent_batches_for_overlapping_customers_are_exact_on_both_backends() {
    const CUSTOMERS: usize = 40;
    const CLIENTS: usize = 8;
    const BATCHES: usize = 5;
    let app = spawn_app().await;
    let mut cs = Vec::new();
    for i in 0..CUSTOMERS {
        let c = app
            .create_customer(&app.admin, customer_body(&format!("Overlap {i}")))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = put_budget(
            &app,
            &c,
            json!({"monthly_amount": "100.00", "currency": "USD", "thresholds": [50]}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        cs.push(c);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..CLIENTS {
        let (client, base, token, cs) = (
            app.client.clone(),
            app.base.clone(),
            app.admin.clone(),
            cs.clone(),
        );
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            for b in 0..BATCHES {
                // Every client its own order of the same customers.
                let mut order: Vec<usize> = (0..CUSTOMERS).collect();
                order.rotate_left((k * 7 + b * 3) % CUSTOMERS);
                if k % 2 == 1 {
                    order.reverse();
                }
                // Half the clients write the same hour's buckets, the others their own hours.
                let hour = if k % 2 == 0 { 10 } else { 10 + (k + b) % 12 };
                let at = format!("2026-11-29T{hour:02}:00:00Z");
                let batch: Vec<Value> = order
                    .iter()
                    .map(|&i| usage(&format!("k{k}-b{b}-c{i}"), &cs[i], &at, "2.00"))
                    .collect();
                let r = client
                    .post(format!("{base}/v1/events?as_of=2026-11-29T23:00:00Z"))
                    .bearer_auth(&token)
                    .json(&batch)
                    .send()
                    .await
                    .expect("request");
                statuses.push((r.status().as_u16(), r.text().await.unwrap_or_default()));
            }
            statuses
        });
    }
    let mut answers = Vec::new();
    while let Some(r) = tasks.join_next().await {
        answers.extend(r.expect("client task"));
    }
    let failed: Vec<&(u16, String)> = answers.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} batches failed: {failed:?}",
        failed.len(),
        answers.len()
    );

    let spent = format!("{}.00", 2 * CLIENTS * BATCHES);
    for c in &cs {
        let b = app
            .get(
                &app.admin,
                &format!("/v1/customers/{c}/budget?as_of=2026-11-29T23:00:00Z"),
            )
            .await;
        assert_eq!(b.body["month_to_date"], spent.as_str(), "{c}: {}", b.body);
        let marks: Vec<Value> = alerts_for(&app, c)
            .await
            .into_iter()
            .filter(|a| a["rule"] == "budget.percent:50")
            .collect();
        assert_eq!(marks.len(), 1, "{c}: {marks:?}");
        assert_eq!(marks[0]["count"], 1, "{c}: {marks:?}");
    }
    let rules = app.get(&app.admin, "/v1/rules").await;
    assert_eq!(rules.status, 200, "{}", rules.body);
    let builtins: Vec<&Value> = rules
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["builtin"].is_null())
        .collect();
    assert_eq!(builtins.len(), 13, "{}", rules.body);
}

/// A batch bigger than a part (250 events) is applied part by part: one answer for the whole
/// batch, with each bad line named at its index in the batch, every event counted once, the
/// budget's spend exact; the same request again (same key) replays the answer, and the same
/// events under a new key are all duplicates.
#[tokio::test]
async fn a_big_batch_is_applied_in_parts_with_one_answer() {
    let app = spawn_app().await;
    let c = customer(&app, None).await;
    let r = app
        .put(
            &app.admin,
            &format!("/v1/customers/{c}/budget"),
            &json!({"monthly_amount": "100000.00", "currency": "USD"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut lines: Vec<String> = (0..1000)
        .map(|i| {
            usage(
                &format!("p-{i}"),
                &c,
                "2026-11-02T10:00:00Z",
                "0.000000000123",
            )
            .to_string()
        })
        .collect();
    lines[600] = json!({"type": "usage", "event_id": "broken"}).to_string();
    lines[999] = lines[0].clone(); // a duplicate within the batch, in the last part
    let body = lines.join("\n");
    let send = |key: &'static str| {
        app.send(
            app.client
                .post(format!("{}/v1/events?as_of=2026-11-03T00:00:00Z", app.base))
                .bearer_auth(&app.admin)
                .header("Content-Type", "application/x-ndjson")
                .header("Idempotency-Key", key)
                .body(body.clone()),
        )
    };
    let r = send("parts-1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["accepted"], 998, "{}", r.body);
    assert_eq!(r.body["duplicates"], 1, "{}", r.body);
    let rejected = r.body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{}", r.body);
    assert_eq!(rejected[0]["index"], 600);
    let again = send("parts-1").await;
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body, r.body);
    let other = send("parts-2").await;
    assert_eq!(other.body["accepted"], 0, "{}", other.body);
    assert_eq!(other.body["duplicates"], 999, "{}", other.body);
    let b = app
        .get(
            &app.admin,
            &format!("/v1/customers/{c}/budget?as_of=2026-11-03T00:00:00Z"),
        )
        .await;
    // 998 × 0.000000000123
    assert_eq!(b.body["month_to_date"], "0.000000122754", "{}", b.body);
}
