use serde_json::json;

use crate::helpers::{customer_body, spawn_app};

fn history_actions(sub: &serde_json::Value) -> Vec<String> {
    sub["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn suspend_while_investigating_then_reactivate() {
    let app = spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Contoso"))
        .await;
    let sub = app
        .create_subscription(&app.admin, c["id"].as_str().unwrap())
        .await;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["quantity"], 3);
    let id = sub["id"].as_str().unwrap();

    let r = app
        .post(
            &app.admin,
            &format!("/v1/subscriptions/{id}/actions"),
            &json!({"action": "suspend", "reason": "investigation", "note": "GPU spike"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "suspended");
    let last = r.body["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "subscription.suspend");
    assert_eq!(last["from_status"], "active");
    assert_eq!(last["to_status"], "suspended");
    assert_eq!(last["reason"], "investigation");
    assert_eq!(last["note"], "GPU spike");
    assert_eq!(last["actor"]["role"], "admin");

    let r = app.act(&app.admin, id, "reactivate", "resolved").await;
    assert_eq!(r.body["status"], "active");
    assert_eq!(
        history_actions(&r.body),
        [
            "subscription.create",
            "subscription.suspend",
            "subscription.reactivate"
        ]
    );

    let got = app
        .get(&app.admin, &format!("/v1/subscriptions/{id}"))
        .await;
    assert_eq!(
        got.body, r.body,
        "GET shows the same subscription and history"
    );
}

#[tokio::test]
async fn disable_access_for_non_payment_then_cancel_is_final() {
    let app = spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Contoso"))
        .await;
    let id = app
        .create_subscription(&app.admin, c["id"].as_str().unwrap())
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(
        app.act(&app.admin, &id, "disable_access", "non_payment")
            .await
            .body["status"],
        "disabled"
    );
    assert_eq!(
        app.act(&app.admin, &id, "cancel", "non_payment").await.body["status"],
        "cancelled"
    );
    for (action, reason) in [
        ("reactivate", "resolved"),
        ("suspend", "fraud"),
        ("disable_access", "fraud"),
        ("cancel", "fraud"),
    ] {
        let r = app.act(&app.admin, &id, action, reason).await;
        assert!(
            r.problem(409)["detail"].as_str().unwrap().contains("final"),
            "{}",
            r.body
        );
    }
    let got = app
        .get(&app.admin, &format!("/v1/subscriptions/{id}"))
        .await;
    assert_eq!(got.body["status"], "cancelled");
    assert_eq!(
        history_actions(&got.body).len(),
        3,
        "refused actions change nothing"
    );
}

#[tokio::test]
async fn china_21vianet_blocks_access_but_never_cancels() {
    let app = spawn_app().await;
    let mut body = customer_body("上海云启科技有限公司");
    body["cloud_instance"] = json!("china_21vianet");
    body["country"] = json!("CN");
    body["locale"] = json!("zh-CN");
    body["phone"] = json!("+862155551234");
    let c = app.create_customer(&app.admin, body).await;
    let id = app
        .create_subscription(&app.admin, c["id"].as_str().unwrap())
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = app.act(&app.admin, &id, "cancel", "fraud").await;
    let detail = r.problem(409)["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("21Vianet"), "{detail}");
    assert_eq!(
        app.get(&app.admin, &format!("/v1/subscriptions/{id}"))
            .await
            .body["status"],
        "active"
    );

    assert_eq!(
        app.act(&app.admin, &id, "disable_access", "non_payment")
            .await
            .body["status"],
        "disabled"
    );
    assert_eq!(
        app.act(&app.admin, &id, "suspend", "fraud").await.body["status"],
        "suspended"
    );
    let r = app.act(&app.admin, &id, "cancel", "fraud").await;
    r.problem(409);
}

#[tokio::test]
async fn bad_actions_and_reasons_are_named() {
    let app = spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Contoso"))
        .await;
    let id = app
        .create_subscription(&app.admin, c["id"].as_str().unwrap())
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = app.act(&app.admin, &id, "delete", "fraud").await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "action");
    let r = app.act(&app.admin, &id, "suspend", "boredom").await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "reason");
    // A reason that exists but does not fit the action.
    let r = app.act(&app.admin, &id, "reactivate", "fraud").await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "reason");
    assert!(
        r.detail()
            .contains("allowed reasons: resolved, customer_request"),
        "{}",
        r.detail()
    );
    let r = app.act(&app.admin, &id, "reactivate", "resolved").await;
    assert!(
        r.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("already active")
    );
}

#[tokio::test]
async fn subscriptions_belong_to_a_customer() {
    let app = spawn_app().await;
    let a = app.create_customer(&app.admin, customer_body("A")).await;
    let b = app.create_customer(&app.admin, customer_body("B")).await;
    let a_id = a["id"].as_str().unwrap();
    let s1 = app.create_subscription(&app.admin, a_id).await;
    let s2 = app.create_subscription(&app.admin, a_id).await;
    app.create_subscription(&app.admin, b["id"].as_str().unwrap())
        .await;
    app.act(
        &app.admin,
        s2["id"].as_str().unwrap(),
        "suspend",
        "investigation",
    )
    .await;

    let list = app
        .get(&app.admin, &format!("/v1/customers/{a_id}/subscriptions"))
        .await;
    let ids: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [s1["id"].as_str().unwrap(), s2["id"].as_str().unwrap()]
    );
    let suspended = app
        .get(
            &app.admin,
            &format!("/v1/customers/{a_id}/subscriptions?status=suspended"),
        )
        .await;
    assert_eq!(suspended.body["items"].as_array().unwrap().len(), 1);

    let r = app
        .post(
            &app.admin,
            &format!("/v1/customers/{}/subscriptions", uuid::Uuid::now_v7()),
            &json!({"offer": "x"}),
        )
        .await;
    r.problem(404);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/customers/{a_id}/subscriptions"),
            &json!({"offer": " ", "quantity": 0}),
        )
        .await;
    let mut f = r.fields();
    f.sort();
    assert_eq!(f, ["offer", "quantity"]);
}
