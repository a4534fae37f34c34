//! What the dashboard added to the API: take next, bulk case work, action previews, spend
//! series, the support role.

use riskdesk_domain::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, customer_body, spawn_app};

async fn fraud_case(app: &TestApp, name: &str) -> (String, String) {
    let c = app.create_customer(&app.admin, customer_body(name)).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &app.admin,
            "/v1/events",
            &json!([{"type": "activity", "event_id": format!("fraud-{cid}"), "customer_id": cid,
                     "time": jiff::Timestamp::now().to_string(), "operation": "provider_fraud_notification",
                     "actor": "partner-center", "status": "succeeded", "properties": {}}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cases = app
        .get(&app.admin, &format!("/v1/cases?customer_id={cid}"))
        .await;
    (
        cid,
        cases.body["items"][0]["id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn take_next_hands_each_case_to_one_caller_then_none() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for n in ["A", "B", "C"] {
        ids.push(fraud_case(&app, n).await.1);
    }
    let a = app.token("default", Role::Analyst).await;
    let b = app.token("default", Role::Analyst).await;
    // Six takes at once from two callers: three get a case each, all different; three get none.
    let mut handles = Vec::new();
    for i in 0..6 {
        let (client, base, tok) = (
            app.client.clone(),
            app.base.clone(),
            if i % 2 == 0 { a.clone() } else { b.clone() },
        );
        handles.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/v1/cases/take-next"))
                .bearer_auth(tok)
                .json(&json!({"assignee": format!("analyst-{i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }));
    }
    let mut taken = Vec::new();
    for h in handles {
        let v = h.await.unwrap();
        if !v["case"].is_null() {
            assert_eq!(v["case"]["status"], "investigating");
            taken.push(v["case"]["id"].as_str().unwrap().to_owned());
        }
    }
    taken.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(taken, want, "each case taken exactly once");
    // The view's filters apply: nothing critical is unassigned now.
    let r = app
        .post(&a, "/v1/cases/take-next", &json!({"severity": "critical"}))
        .await;
    assert_eq!(r.body, json!({"case": null}));
    let r = app
        .post(&a, "/v1/cases/take-next", &json!({"severity": "urgent"}))
        .await;
    r.problem(422);
    assert_eq!(r.fields(), ["severity"]);
    // A read-only role may not take cases.
    let auditor = app.token("default", Role::Auditor).await;
    app.post(&auditor, "/v1/cases/take-next", &json!({}))
        .await
        .problem(403);
}

#[tokio::test]
async fn bulk_work_changes_every_case_or_none() {
    let app = spawn_app().await;
    let (_, c1) = fraud_case(&app, "A").await;
    let (cid2, c2) = fraud_case(&app, "B").await;
    let analyst = app.token("default", Role::Analyst).await;
    let r = app
        .post(
            &analyst,
            "/v1/cases/bulk",
            &json!({"ids": [c1, c2], "op": "assign", "assignee": "ana"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["changed"], 2);
    for c in [&c1, &c2] {
        let g = app.get(&analyst, &format!("/v1/cases/{c}")).await;
        assert_eq!(g.body["case"]["assignee"], "ana");
    }
    // Case 2 has an action awaiting approval, so it cannot be resolved: the whole batch is
    // refused, naming it, and case 1 stays as it was.
    let s = app.create_subscription(&app.admin, &cid2).await;
    let p = app
        .post(
            &analyst,
            &format!("/v1/cases/{c2}/actions"),
            &json!({"kind": "suspend", "subscription_id": s["id"], "require_approval": true}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.body);
    let r = app
        .post(
            &analyst,
            "/v1/cases/bulk",
            &json!({"ids": [c1, c2], "op": "status", "status": "resolved", "text": "done"}),
        )
        .await;
    r.problem(409);
    assert!(r.detail().contains(&c2), "{}", r.detail());
    let g = app.get(&analyst, &format!("/v1/cases/{c1}")).await;
    assert_eq!(g.body["case"]["status"], "investigating");
    // Bad batches are refused whole, field by field.
    let r = app
        .post(
            &analyst,
            "/v1/cases/bulk",
            &json!({"ids": [], "op": "explode"}),
        )
        .await;
    r.problem(422);
    assert_eq!(r.fields(), ["ids", "op"]);
    let r = app
        .post(
            &analyst,
            "/v1/cases/bulk",
            &json!({"ids": [c1, c1], "op": "unassign"}),
        )
        .await;
    assert_eq!(r.fields(), ["ids"]);
    let r = app
        .post(
            &analyst,
            "/v1/cases/bulk",
            &json!({"ids": [uuid::Uuid::nil()], "op": "unassign"}),
        )
        .await;
    r.problem(404);
}

#[tokio::test]
async fn a_preview_says_what_an_action_would_do_here_and_at_the_provider() {
    let app = spawn_app().await;
    let (cid, case) = fraud_case(&app, "Contoso").await;
    let s = app.create_subscription(&app.admin, &cid).await;
    let sid = s["id"].as_str().unwrap();
    let analyst = app.token("default", Role::Analyst).await;
    let r = app
        .get(
            &analyst,
            &format!("/v1/cases/{case}/actions/preview?kind=suspend&subscription_id={sid}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["allowed"], true);
    assert_eq!(
        r.body["here"][0],
        "subscription 'Azure plan': active → suspended"
    );
    assert_eq!(r.body["provider"], "none");
    assert!(
        r.body["provider_effect"]
            .as_str()
            .unwrap()
            .contains("no provider link")
    );
    // The notice goes out in the customer's language (fr-FR).
    assert_eq!(r.body["notice"]["locale"], "fr-FR");
    assert!(!r.body["notice"]["subject"].as_str().unwrap().is_empty());
    // Reactivating an active subscription is refused by the lifecycle rule, with its reason.
    let r = app
        .get(
            &analyst,
            &format!("/v1/cases/{case}/actions/preview?kind=reactivate&subscription_id={sid}"),
        )
        .await;
    assert_eq!(r.body["allowed"], false);
    assert!(r.body["refusal"].as_str().is_some());
    // The preview changed nothing.
    let sub = app.get(&analyst, &format!("/v1/subscriptions/{sid}")).await;
    assert_eq!(sub.body["status"], "active");
    let r = app
        .get(
            &analyst,
            &format!("/v1/cases/{case}/actions/preview?kind=nuke"),
        )
        .await;
    r.problem(422);
}

#[tokio::test]
async fn a_cancel_on_21vianet_is_previewed_as_not_possible() {
    let app = spawn_app().await;
    let mut body = customer_body("Beijing Co");
    body["cloud_instance"] = json!("china_21vianet");
    let c = app.create_customer(&app.admin, body).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    let s = app.create_subscription(&app.admin, &cid).await;
    let r = app
        .post(&app.admin, "/v1/events",
              &json!([{"type": "activity", "event_id": "f-1", "customer_id": cid,
                       "time": jiff::Timestamp::now().to_string(), "operation": "provider_fraud_notification",
                       "actor": "partner-center", "status": "succeeded", "properties": {}}]))
        .await;
    assert_eq!(r.status, 200);
    let cases = app
        .get(&app.admin, &format!("/v1/cases?customer_id={cid}"))
        .await;
    let case = cases.body["items"][0]["id"].as_str().unwrap().to_owned();
    let r = app
        .get(
            &app.admin,
            &format!(
                "/v1/cases/{case}/actions/preview?kind=cancel&subscription_id={}&reason=fraud",
                s["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(r.body["allowed"], false, "{}", r.body);
    assert!(
        r.body["refusal"].as_str().unwrap().contains("21Vianet")
            || r.body["refusal"].as_str().unwrap().contains("china"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn the_spend_series_has_every_hour_per_category_with_scores() {
    let app = spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Contoso"))
        .await;
    let cid = c["id"].as_str().unwrap();
    let events: Vec<Value> = (0..3)
        .map(|h| json!({"type": "usage", "event_id": format!("u-{h}"), "customer_id": cid,
            "time": format!("2026-11-01T0{h}:10:00Z"), "meter_category": "Virtual Machines",
            "meter_name": "D4s v5", "region": "westeurope",
            "quantity": 1, "unit": "Hours", "cost": "1.250000000001", "currency": "EUR"}))
        .chain([json!({"type": "usage", "event_id": "s-1", "customer_id": cid, "time": "2026-11-01T01:30:00Z",
            "meter_category": "Storage", "meter_name": "LRS", "region": "westeurope", "quantity": 1, "unit": "GB", "cost": "0.5", "currency": "USD"})])
        .collect();
    let r = app.post(&app.admin, "/v1/events", &json!(events)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["rejected"], json!([]), "{}", r.body);
    let r = app
        .get(
            &app.admin,
            &format!("/v1/customers/{cid}/spend?from=2026-11-01T00:00:00Z&to=2026-11-01T04:00:00Z"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let series = r.body["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    let storage = series
        .iter()
        .find(|s| s["meter_category"] == "Storage")
        .unwrap();
    assert_eq!(storage["currencies"], json!(["USD"]));
    let spends: Vec<&str> = storage["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["spend"].as_str().unwrap())
        .collect();
    assert_eq!(spends, ["0.00", "0.50", "0.00", "0.00"]);
    let vm = series
        .iter()
        .find(|s| s["meter_category"] == "Virtual Machines")
        .unwrap();
    let p0 = &vm["points"][0];
    assert_eq!(p0["hour"], "2026-11-01T00:00:00Z");
    assert_eq!(p0["spend"], "1.250000000001");
    assert!(p0["score"].as_f64().unwrap() >= 0.0);
    let r = app
        .get(
            &app.admin,
            &format!("/v1/customers/{cid}/spend?from=2026-01-01T00:00:00Z&to=2026-11-01T00:00:00Z"),
        )
        .await;
    r.problem(422);
    let r = app
        .get(
            &app.admin,
            &format!("/v1/customers/{cid}/spend?from=yesterday"),
        )
        .await;
    assert_eq!(r.fields(), ["from"]);
    let r = app
        .get(
            &app.admin,
            "/v1/customers/00000000-0000-0000-0000-000000000000/spend",
        )
        .await;
    r.problem(404);
}

#[tokio::test]
async fn support_staff_read_and_comment_but_do_not_work_cases() {
    let app = spawn_app().await;
    let (_, case) = fraud_case(&app, "Contoso").await;
    let support = app.token("default", Role::Support).await;
    assert_eq!(
        app.get(&support, &format!("/v1/cases/{case}")).await.status,
        200
    );
    assert_eq!(app.get(&support, "/v1/audit").await.status, 200);
    let r = app
        .post(
            &support,
            &format!("/v1/cases/{case}/comments"),
            &json!({"text": "customer called"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    app.post(
        &support,
        &format!("/v1/cases/{case}/assign"),
        &json!({"assignee": "me"}),
    )
    .await
    .problem(403);
    app.post(&support, "/v1/customers", &customer_body("X"))
        .await
        .problem(403);
}
