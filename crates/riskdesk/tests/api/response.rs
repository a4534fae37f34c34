//! Response: cases from alerts, actions carried out at a fake Partner Center, approvals,
//! provider webhooks, notices, service requests, SLAs.

use std::collections::HashMap;
use std::time::Duration;

use riskdesk_connectors::partner_center::PartnerCenterSettings;
use riskdesk_connectors::partner_center_fake::FakePartnerCenter;
use riskdesk_connectors::pc_webhook::test_support::{self, CertServer};
use riskdesk_domain::Role;
use riskdesk_http::ServerOptions;
use serde_json::{Value, json};

use crate::helpers::{TestApp, customer_body, spawn_app_with};

fn pc_settings(fake: &FakePartnerCenter) -> PartnerCenterSettings {
    PartnerCenterSettings {
        tenant_id: "partner-tenant".into(),
        client_id: "riskdesk-app".into(),
        client_secret: "secret".into(),
        rest_base: fake.url.clone(),
        token_authority: format!("{}/", fake.url),
        resource: "https://api.partnercenter.microsoft.com".into(),
        timeout_ms: 2_000,
        retries: 2,
        backoff_ms: 20,
        max_wait_seconds: 2,
        requests_per_minute: 500,
        // Entra ID sends the admin's browser here; the tests follow it to the test server.
        redirect_uri: "https://riskdesk.test/v1/provider/consent/callback".into(),
        usage_currencies: vec!["EUR".into()],
        usage_page_size: 2,
        // The Activity Log pull is switched on by the test of it.
        activity_log: false,
        arm_base: fake.url.clone(),
    }
}

/// Connects `instance` as a partner admin would: the consent page is opened (the fake stands
/// for the sign-in with MFA) and the redirect back is followed to riskdesk's callback.
pub(crate) async fn connect(app: &TestApp, instance: &str) -> Value {
    let start = app
        .post(
            &app.admin,
            &format!("/v1/provider/connections/{instance}/consent"),
            &json!({}),
        )
        .await;
    assert_eq!(start.status, 201, "{}", start.body);
    let page = start.body["authorize_url"].as_str().unwrap();
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(page)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let query = location
        .strip_prefix("https://riskdesk.test/v1/provider/consent/callback?")
        .unwrap_or_else(|| panic!("redirected to {location}"));
    let back = app
        .get(
            "",
            &format!("/v1/provider/consent/callback?{query}&session_state=s1"),
        )
        .await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(back.body["state"], "connected");
    back.body
}

fn options(pcs: &[(&str, &FakePartnerCenter)]) -> ServerOptions {
    let mut map = HashMap::new();
    for (instance, fake) in pcs {
        map.insert((*instance).to_owned(), pc_settings(fake));
    }
    ServerOptions {
        partner_center: map,
        provider_token_keys: Some(std::sync::Arc::new(
            riskdesk_app::kernel::secrets::TokenCipher::parse(
                &riskdesk_app::kernel::secrets::TokenCipher::generate("k1"),
            )
            .unwrap(),
        )),
        provider_interval: Duration::from_millis(100),
        provider_lease: Duration::from_secs(30),
        ..ServerOptions::default()
    }
}

/// A customer on `instance` with one subscription, both linked to their provider ids.
async fn linked_customer(
    app: &TestApp,
    instance: &str,
    pc_cust: &str,
    pc_sub: &str,
) -> (String, String) {
    let mut body = customer_body("Contoso");
    body["cloud_instance"] = json!(instance);
    let c = app.create_customer(&app.admin, body).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    let s = app.create_subscription(&app.admin, &cid).await;
    let sid = s["id"].as_str().unwrap().to_owned();
    let r = app
        .put(
            &app.admin,
            &format!("/v1/customers/{cid}/provider-link"),
            &json!({"provider_customer_id": pc_cust}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .put(
            &app.admin,
            &format!("/v1/subscriptions/{sid}/provider-link"),
            &json!({"provider_subscription_id": pc_sub}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (cid, sid)
}

/// The provider's own fraud notification (a shipped detector, critical) for a customer.
async fn fraud_alert(app: &TestApp, cid: &str) {
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
    assert_eq!(
        r.body["alerts"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.body
    );
}

async fn only_case(app: &TestApp, cid: &str) -> Value {
    let r = app
        .get(&app.admin, &format!("/v1/cases?customer_id={cid}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let items = r.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{}", r.body);
    items[0].clone()
}

/// Polls an action until it leaves `pending` (the provider worker runs every 100 ms).
async fn settled(app: &TestApp, action: &str) -> Value {
    for _ in 0..100 {
        let r = app.get(&app.admin, &format!("/v1/actions/{action}")).await;
        if r.body["status"] != "pending" {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("action {action} still pending");
}

#[tokio::test]
async fn an_alert_opens_a_case_and_a_suspension_reaches_partner_center_exactly_once() {
    let pc = FakePartnerCenter::start().await;
    pc.add_subscription("pc-cust-1", "pc-sub-1", true, true);
    let app = spawn_app_with(options(&[("global", &pc)])).await;
    let (cid, sid) = linked_customer(&app, "global", "pc-cust-1", "pc-sub-1").await;
    fraud_alert(&app, &cid).await;

    // One case, critical, due within the critical SLA (1 h).
    let case = only_case(&app, &cid).await;
    assert_eq!(case["kind"], "alert");
    assert_eq!(case["severity"], "critical");
    assert_eq!(case["status"], "open");
    let opened: jiff::Timestamp = case["opened_at"].as_str().unwrap().parse().unwrap();
    let due: jiff::Timestamp = case["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(due.duration_since(opened).as_secs(), 3600);
    let case_id = case["id"].as_str().unwrap().to_owned();

    // A second alert of the same customer joins the case.
    let r = app
        .post(
            &app.admin,
            "/v1/events",
            &json!([{"type": "activity", "event_id": "fraud-2", "customer_id": cid,
                     "time": jiff::Timestamp::now().to_string(), "operation": "provider_fraud_notification",
                     "actor": "partner-center", "status": "succeeded", "properties": {"again": true}}]),
        )
        .await;
    assert_eq!(r.status, 200);
    only_case(&app, &cid).await;

    // The analyst suspends the subscription from the case.
    let analyst = app.token("default", Role::Analyst).await;
    let r = app
        .post_with_key(
            &analyst,
            &format!("/v1/cases/{case_id}/actions"),
            "suspend-1",
            &json!({"kind": "suspend", "subscription_id": sid, "reason": "fraud", "note": "provider fraud event"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["provider"], "partner_center");
    let action = r.body["id"].as_str().unwrap().to_owned();
    // A retry of the same request (same Idempotency-Key) is the same action.
    let again = app
        .post_with_key(
            &analyst,
            &format!("/v1/cases/{case_id}/actions"),
            "suspend-1",
            &json!({"kind": "suspend", "subscription_id": sid, "reason": "fraud", "note": "provider fraud event"}),
        )
        .await;
    assert_eq!(again.body["id"], r.body["id"]);
    // Applied in riskdesk at once.
    let sub = app
        .get(&app.admin, &format!("/v1/subscriptions/{sid}"))
        .await;
    assert_eq!(sub.body["status"], "suspended");

    let done = settled(&app, &action).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["provider_result"]["after"], "suspended");
    assert_eq!(done["provider_result"]["auto_renew_before"], true);

    // Exactly one correct PATCH: the whole object, suspended, with the action's MS-RequestId.
    let patches = pc.requests_with("PATCH");
    assert_eq!(patches.len(), 1, "{patches:?}");
    let p = &patches[0];
    assert_eq!(p.path, "/v1/customers/pc-cust-1/subscriptions/pc-sub-1");
    assert_eq!(p.request_id.as_deref(), Some(action.as_str()));
    assert!(p.if_match.is_some());
    let sent: Value = serde_json::from_str(&p.body).unwrap();
    assert_eq!(sent["status"], "suspended");
    assert_eq!(sent["offerId"], "CFQ7TTC0LH18:0001");
    assert_eq!(
        pc.subscription("pc-cust-1", "pc-sub-1")["status"],
        "suspended"
    );

    // The case shows it: actioned, its alerts and the action on the timeline.
    let detail = app.get(&app.admin, &format!("/v1/cases/{case_id}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.body["case"]["status"], "actioned");
    let kinds: Vec<&str> = detail.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "alert").count(),
        2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"action"), "{kinds:?}");
    assert_eq!(detail.body["actions"][0]["status"], "done");
    assert_eq!(
        detail.body["customer"]["subscriptions"][0]["provider_status"],
        "suspended"
    );
    assert_eq!(detail.body["customer"]["provider_customer_id"], "pc-cust-1");

    // The audit log has the decision and the provider's outcome.
    let audit = app.get(&app.admin, "/v1/audit?limit=500").await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "case.open",
        "action.take",
        "subscription.suspend",
        "action.provider_done",
        "case.actioned",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    // The customer was told, in French.
    let outbox = app
        .get(&app.admin, &format!("/v1/outbox?customer_id={cid}"))
        .await;
    let mail = outbox
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["event_type"] == "action.suspend")
        .cloned()
        .unwrap_or_else(|| panic!("no customer notice: {}", outbox.body));
    assert!(
        mail["subject"].as_str().unwrap().contains("suspendu"),
        "{mail}"
    );

    // Nothing is pending: the case can be resolved.
    let r = app
        .post(
            &analyst,
            &format!("/v1/cases/{case_id}/status"),
            &json!({"status": "resolved", "note": "confirmed fraud"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Reactivation restores auto-renew as it was before the suspension.
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/status"),
            &json!({"status": "open"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .post(
            &analyst,
            &format!("/v1/cases/{case_id}/actions"),
            &json!({"kind": "reactivate", "subscription_id": sid, "reason": "resolved"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let done = settled(&app, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    let s = pc.subscription("pc-cust-1", "pc-sub-1");
    assert_eq!(s["status"], "active");
    assert_eq!(s["autoRenewEnabled"], true);
}

#[tokio::test]
async fn throttling_and_outages_are_retried_and_a_refusal_is_visible() {
    let pc = FakePartnerCenter::start().await;
    pc.add_subscription("c", "s", false, false);
    let app = spawn_app_with(options(&[("global", &pc)])).await;
    let (cid, sid) = linked_customer(&app, "global", "c", "s").await;
    fraud_alert(&app, &cid).await;
    let case_id = only_case(&app, &cid).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A short outage and a short throttle are waited out inside the call.
    pc.fail_next(1);
    pc.throttle_next(1, 1);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/actions"),
            &json!({"kind": "suspend", "subscription_id": sid}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let done = settled(&app, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    let statuses: Vec<u16> = pc.requests().iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&503) && statuses.contains(&429),
        "{statuses:?}"
    );
    assert_eq!(pc.requests_with("PATCH").len(), 1);

    // A long Retry-After leaves the call pending with the provider's answer; the case cannot
    // close meanwhile; a retry (here asked for at once) goes through.
    pc.throttle_next(1, 3600);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/actions"),
            &json!({"kind": "reactivate", "subscription_id": sid}),
        )
        .await;
    let action = r.body["id"].as_str().unwrap().to_owned();
    let mut waiting = Value::Null;
    for _ in 0..100 {
        waiting = app
            .get(&app.admin, &format!("/v1/actions/{action}"))
            .await
            .body;
        if waiting["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(waiting["status"], "pending", "{waiting}");
    assert!(
        waiting["last_error"].as_str().unwrap().contains("429"),
        "{waiting}"
    );
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/status"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.detail().contains("pending"), "{}", r.detail());
    let r = app
        .post(
            &app.admin,
            &format!("/v1/actions/{action}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(settled(&app, &action).await["status"], "done");
    assert_eq!(pc.subscription("c", "s")["status"], "active");

    // The provider refuses (the subscription is unknown there): failed, with its error.
    let r = app
        .put(
            &app.admin,
            &format!("/v1/subscriptions/{sid}/provider-link"),
            &json!({"provider_subscription_id": "gone"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/actions"),
            &json!({"kind": "suspend", "subscription_id": sid}),
        )
        .await;
    let failed = settled(&app, r.body["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["last_error"].as_str().unwrap().contains("20003"),
        "{failed}"
    );
}

#[tokio::test]
async fn a_customer_without_a_provider_link_is_acted_on_locally_and_says_so() {
    let app = spawn_app_with(ServerOptions::default()).await;
    let c = app
        .create_customer(&app.admin, customer_body("Fabrikam"))
        .await;
    let cid = c["id"].as_str().unwrap();
    let sid = app.create_subscription(&app.admin, cid).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fraud_alert(&app, cid).await;
    let case_id = only_case(&app, cid).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/actions"),
            &json!({"kind": "suspend", "subscription_id": sid}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "done");
    assert_eq!(r.body["provider"], "none");
    assert!(
        r.body["provider_result"]["local_only"]
            .as_str()
            .unwrap()
            .contains("no provider link")
    );
}

#[tokio::test]
async fn whoever_proposes_an_action_cannot_approve_it() {
    let pc = FakePartnerCenter::start().await;
    pc.add_subscription("c", "s", true, false);
    let app = spawn_app_with(options(&[("global", &pc)])).await;
    let (cid, sid) = linked_customer(&app, "global", "c", "s").await;
    fraud_alert(&app, &cid).await;
    let case_id = only_case(&app, &cid).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let analyst = app.token("default", Role::Analyst).await;
    let r = app
        .post(
            &analyst,
            &format!("/v1/cases/{case_id}/actions"),
            &json!({"kind": "suspend", "subscription_id": sid, "require_approval": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "awaiting_approval");
    let action = r.body["id"].as_str().unwrap().to_owned();
    // Nothing happened yet, here or at the provider.
    let sub = app
        .get(&app.admin, &format!("/v1/subscriptions/{sid}"))
        .await;
    assert_eq!(sub.body["status"], "active");
    let queue = app
        .get(&app.admin, "/v1/actions?status=awaiting_approval")
        .await;
    assert_eq!(queue.body.as_array().unwrap().len(), 1);
    // The case cannot be closed while the proposal waits.
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/status"),
            &json!({"status": "dismissed"}),
        )
        .await;
    assert_eq!(r.status, 409);

    let r = app
        .post(
            &analyst,
            &format!("/v1/actions/{action}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(r.problem(403)["status"], 403);
    assert!(r.detail().contains("maker-checker"), "{}", r.detail());
    // A collections token has no approval right.
    let collections = app.token("default", Role::Collections).await;
    let r = app
        .post(
            &collections,
            &format!("/v1/actions/{action}/approve"),
            &json!({}),
        )
        .await;
    r.problem(403);

    let r = app
        .post(
            &app.admin,
            &format!("/v1/actions/{action}/approve"),
            &json!({"note": "confirmed"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["decided_by"], "token:initial-admin");
    assert_eq!(settled(&app, &action).await["status"], "done");
    assert_eq!(pc.subscription("c", "s")["status"], "suspended");
    // Decided once.
    let r = app
        .post(
            &app.admin,
            &format!("/v1/actions/{action}/reject"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 409);
}

#[tokio::test]
async fn a_rule_in_require_approval_mode_proposes_and_waits() {
    let app = spawn_app_with(ServerOptions::default()).await;
    let c = app
        .create_customer(&app.admin, customer_body("Northwind"))
        .await;
    let cid = c["id"].as_str().unwrap();
    app.create_subscription(&app.admin, cid).await;
    let r = app
        .post(
            &app.admin,
            "/v1/rules",
            &json!({"name": "Big spend", "scope": "usage", "condition": "event.cost > 100.0",
                    "severity": "high", "mode": "active", "action": {"action": "suspend", "mode": "require_approval"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = app
        .post(
            &app.admin,
            "/v1/events",
            &json!([{"type": "usage", "event_id": "u1", "customer_id": cid, "time": jiff::Timestamp::now().to_string(),
                     "meter_category": "Storage", "meter_name": "Hot LRS", "region": "westeurope",
                     "quantity": "1", "unit": "hours", "cost": "500.00", "currency": "USD"}]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["accepted"], 1, "{}", r.body);
    assert_eq!(
        r.body["alerts"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.body
    );
    let waiting = app
        .get(
            &app.admin,
            &format!("/v1/actions?status=awaiting_approval&customer_id={cid}"),
        )
        .await;
    let items = waiting.body.as_array().unwrap();
    let alerts = app
        .get(&app.admin, &format!("/v1/alerts?customer_id={cid}"))
        .await;
    assert_eq!(items.len(), 1, "{} alerts: {}", waiting.body, alerts.body);
    assert_eq!(items[0]["kind"], "suspend");
    assert!(
        items[0]["proposed_by"]
            .as_str()
            .unwrap()
            .starts_with("system:")
    );
    let case = only_case(&app, cid).await;
    assert_eq!(items[0]["case_id"], case["id"]);
}

#[tokio::test]
async fn twentyone_vianet_customers_get_blocked_access_never_a_cancel() {
    let global = FakePartnerCenter::start().await;
    let china = FakePartnerCenter::start().await;
    china.add_subscription("cn-cust", "cn-sub", false, false);
    let app = spawn_app_with(options(&[("global", &global), ("china_21vianet", &china)])).await;
    let (cid, sid) = linked_customer(&app, "china_21vianet", "cn-cust", "cn-sub").await;
    fraud_alert(&app, &cid).await;
    let case_id = only_case(&app, &cid).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/actions"),
            &json!({"kind": "cancel", "subscription_id": sid, "reason": "fraud"}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/actions"),
            &json!({"kind": "disable_access", "subscription_id": sid}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        settled(&app, r.body["id"].as_str().unwrap()).await["status"],
        "done"
    );
    // The 21Vianet endpoint got the block (a suspension there); nothing ever asked for deletion,
    // and the global endpoint was never called.
    assert_eq!(
        china.subscription("cn-cust", "cn-sub")["status"],
        "suspended"
    );
    for p in china.requests_with("PATCH") {
        assert!(!p.body.contains("deleted"), "{}", p.body);
    }
    assert!(global.requests().is_empty());
    // No usage budget on 21Vianet: set locally, said so.
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/actions"),
            &json!({"kind": "set_budget", "amount": "500.00", "currency": "CNY"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["provider"], "unsupported");
    assert_eq!(r.body["status"], "done");
}

#[tokio::test]
async fn lowering_the_budget_sets_it_at_the_provider_exactly() {
    let pc = FakePartnerCenter::start().await;
    pc.add_subscription("c", "s", false, false);
    let app = spawn_app_with(options(&[("global", &pc)])).await;
    let (cid, _) = linked_customer(&app, "global", "c", "s").await;
    fraud_alert(&app, &cid).await;
    let case_id = only_case(&app, &cid).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/actions"),
            &json!({"kind": "set_budget", "amount": "1234.56", "currency": "EUR"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        settled(&app, r.body["id"].as_str().unwrap()).await["status"],
        "done"
    );
    assert_eq!(pc.budget("c").as_deref(), Some("1234.56"));
    let b = app
        .get(&app.admin, &format!("/v1/customers/{cid}/budget"))
        .await;
    assert_eq!(b.body["monthly_amount"], "1234.56", "{}", b.body);
}

async fn webhook_app() -> (TestApp, FakePartnerCenter, CertServer) {
    let pc = FakePartnerCenter::start().await;
    pc.add_subscription(
        "11111111-2222-3333-4444-555555555555",
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        true,
        false,
    );
    let certs = CertServer::start().await;
    let mut opts = options(&[("global", &pc)]);
    opts.pc_webhooks = Some(test_support::settings(&certs.base_url));
    let app = spawn_app_with(opts).await;
    (app, pc, certs)
}

async fn post_webhook(
    app: &TestApp,
    certs: &CertServer,
    body: &str,
    signed_body: &str,
) -> crate::helpers::Resp {
    let sig = test_support::sign(&test_support::leaf_key_pem(), signed_body.as_bytes());
    app.send(
        app.client
            .post(format!("{}/v1/provider/webhooks?tenant=default", app.base))
            .header("content-type", "application/json")
            .header("Authorization", format!("Signature {sig}"))
            .header("X-MS-Certificate-Url", certs.url(test_support::LEAF_CERT))
            .header("X-MS-Signature-Algorithm", "rsa-sha256")
            .body(body.to_owned()),
    )
    .await
}

#[tokio::test]
async fn a_signed_fraud_webhook_opens_a_case_and_a_forged_one_is_refused() {
    let (app, _pc, certs) = webhook_app().await;
    let (cid, _) = linked_customer(
        &app,
        "global",
        "11111111-2222-3333-4444-555555555555",
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    )
    .await;
    let body = json!({
        "EventName": "azure-fraud-event-detected",
        "ResourceUri": "https://api.partnercenter.microsoft.com/v1/fraudEvents?SubscriptionId=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee&EventStatus=Active",
        "ResourceName": "fraudEvent",
        "ResourceChangeUtcDate": "2026-11-21T08:00:00Z"
    })
    .to_string();

    // Forged: the body was changed after signing.
    let forged = body.replace("fraudEvent", "nothing");
    let r = post_webhook(&app, &certs, &forged, &body).await;
    r.problem(401);
    assert!(r.detail().contains("signature"), "{}", r.detail());
    // No signature at all.
    let r = app
        .send(
            app.client
                .post(format!("{}/v1/provider/webhooks?tenant=default", app.base))
                .body(body.clone()),
        )
        .await;
    r.problem(401);
    let cases = app
        .get(&app.admin, &format!("/v1/cases?customer_id={cid}"))
        .await;
    assert!(cases.body["items"].as_array().unwrap().is_empty());

    let r = post_webhook(&app, &certs, &body, &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["handled"], "alert");
    let case = only_case(&app, &cid).await;
    assert_eq!(case["kind"], "provider_fraud");
    assert_eq!(case["severity"], "critical");
    // Partner Center retries deliveries: the same event again does nothing new.
    let r = post_webhook(&app, &certs, &body, &body).await;
    assert_eq!(r.body["handled"], "duplicate");
    only_case(&app, &cid).await;
}

#[tokio::test]
async fn subscription_updated_reads_the_subscription_back() {
    let (app, pc, certs) = webhook_app().await;
    let (cid, _) = linked_customer(
        &app,
        "global",
        "11111111-2222-3333-4444-555555555555",
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    )
    .await;
    // Someone suspended it at the provider, outside riskdesk.
    pc.set_status(
        "11111111-2222-3333-4444-555555555555",
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "suspended",
    );
    let body = json!({
        "EventName": "subscription-updated",
        "ResourceUri": "http://api.partnercenter.microsoft.com/webhooks/v1/customers/11111111-2222-3333-4444-555555555555/subscriptions/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "ResourceName": "subscription",
        "ResourceChangeUtcDate": "2026-11-21T08:00:00Z"
    })
    .to_string();
    let r = post_webhook(&app, &certs, &body, &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["handled"], "resynced");
    assert_eq!(r.body["provider_status"], "suspended");
    let alerts = app
        .get(&app.admin, &format!("/v1/alerts?customer_id={cid}"))
        .await;
    assert_eq!(
        alerts.body["items"][0]["rule"], "provider.subscription_changed",
        "{}",
        alerts.body
    );
}

#[tokio::test]
async fn a_provider_notice_flows_from_received_to_responded() {
    let pc = FakePartnerCenter::start().await;
    let app = spawn_app_with(options(&[("global", &pc)])).await;
    let (cid, _) = linked_customer(
        &app,
        "global",
        "11111111-2222-3333-4444-555555555555",
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    )
    .await;
    let r = app
        .post(
            &app.admin,
            "/v1/provider/notices",
            &json!({
                "message_id": "<aup-1@microsoft.com>",
                "sender": "no-reply@microsoft.com",
                "subject": "Acceptable Use Policy violation: outbound spam",
                "body": "We detected outbound spam from subscription aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee. Respond within 24 hours.",
                "provider_action": "throttled outbound port 25",
                "requested_action": "confirm remediation"
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Matched to the customer by the subscription id in the text; the notice SLA is 24 h.
    assert_eq!(r.body["notice"]["customer_id"], json!(cid));
    assert_eq!(r.body["notice"]["status"], "received");
    let notice = r.body["notice"]["id"].as_str().unwrap().to_owned();
    let case = only_case(&app, &cid).await;
    assert_eq!(case["kind"], "provider_notice");
    let opened: jiff::Timestamp = case["opened_at"].as_str().unwrap().parse().unwrap();
    let due: jiff::Timestamp = case["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(due.duration_since(opened).as_secs(), 24 * 3600);
    // The same email again is refused.
    let r = app
        .post(
            &app.admin,
            "/v1/provider/notices",
            &json!({"message_id": "<aup-1@microsoft.com>", "sender": "x@microsoft.com", "subject": "s", "body": "b"}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);

    let step = |status: &str, response: Option<&str>| {
        let mut b = json!({"status": status});
        if let Some(r) = response {
            b["response"] = json!(r);
        }
        b
    };
    let path = format!("/v1/provider/notices/{notice}/status");
    assert_eq!(
        app.post(&app.admin, &path, &step("reviewed", None))
            .await
            .status,
        200
    );
    assert_eq!(
        app.post(&app.admin, &path, &step("acted", None))
            .await
            .status,
        200
    );
    // Backwards, or responded without the response: refused.
    assert_eq!(
        app.post(&app.admin, &path, &step("reviewed", None))
            .await
            .status,
        409
    );
    let r = app.post(&app.admin, &path, &step("responded", None)).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = app
        .post(
            &app.admin,
            &path,
            &step(
                "responded",
                Some("Port 25 closed, VM deallocated, customer warned."),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "responded");
    let n = app
        .get(&app.admin, &format!("/v1/provider/notices/{notice}"))
        .await;
    assert_eq!(
        n.body["response"],
        "Port 25 closed, VM deallocated, customer warned."
    );
    let detail = app
        .get(
            &app.admin,
            &format!("/v1/cases/{}", case["id"].as_str().unwrap()),
        )
        .await;
    let notice_entries = detail.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "notice")
        .count();
    assert_eq!(notice_entries, 4, "{}", detail.body["timeline"]);
}

#[tokio::test]
async fn the_sla_breach_is_notified_once_and_overdue_cases_are_listed() {
    let app = spawn_app_with(ServerOptions::default()).await;
    let r = app
        .post(
            &app.admin,
            "/v1/webhook-endpoints",
            &json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = app
        .create_customer(&app.admin, customer_body("Tailspin"))
        .await;
    let cid = c["id"].as_str().unwrap();
    fraud_alert(&app, cid).await;
    let case = only_case(&app, cid).await;
    let due: jiff::Timestamp = case["due_at"].as_str().unwrap().parse().unwrap();
    let later = (due + jiff::SignedDuration::from_mins(1)).to_string();
    let before = (due - jiff::SignedDuration::from_mins(1)).to_string();
    let r = app
        .get(
            &app.admin,
            &format!("/v1/cases?overdue=true&as_of={before}"),
        )
        .await;
    assert!(r.body["items"].as_array().unwrap().is_empty());
    let r = app
        .get(&app.admin, &format!("/v1/cases?overdue=true&as_of={later}"))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["overdue"], true);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/sla-check?as_of={later}"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["breaches_notified"], 1);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/sla-check?as_of={later}"),
            &json!({}),
        )
        .await;
    assert_eq!(r.body["breaches_notified"], 0);
    let outbox = app.get(&app.admin, "/v1/outbox?limit=100").await;
    let breaches = outbox
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["event_type"] == "case.sla_breached")
        .count();
    assert_eq!(breaches, 1, "{}", outbox.body);
    // Another tenant's check does not touch this tenant's cases.
    let other = app.token("other", Role::Admin).await;
    let far = (due + jiff::SignedDuration::from_hours(100)).to_string();
    let r = app
        .post(
            &other,
            &format!("/v1/cases/sla-check?as_of={far}"),
            &json!({}),
        )
        .await;
    assert_eq!(r.body["breaches_notified"], 0);
    let r = app.get(&other, "/v1/cases").await;
    assert!(r.body["items"].as_array().unwrap().is_empty());
    let r = app
        .get(
            &other,
            &format!("/v1/cases/{}", case["id"].as_str().unwrap()),
        )
        .await;
    r.problem(404);
}

#[tokio::test]
async fn a_service_request_is_prepared_filed_and_followed() {
    let pc = FakePartnerCenter::start().await;
    pc.add_service_request("SR-4242", 1);
    let app = spawn_app_with(options(&[("global", &pc)])).await;
    connect(&app, "global").await;
    let (cid, _) = linked_customer(&app, "global", "pc-c", "pc-s").await;
    fraud_alert(&app, &cid).await;
    let case_id = only_case(&app, &cid).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/service-requests"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "draft");
    assert_eq!(r.body["severity"], "critical");
    let d = r.body["description"].as_str().unwrap();
    assert!(
        d.contains("pc-c") && d.contains("pc-s") && d.contains(&case_id),
        "{d}"
    );
    let sr = r.body["id"].as_str().unwrap().to_owned();
    // Not filed yet: nothing to sync.
    let r = app
        .post(
            &app.admin,
            &format!("/v1/service-requests/{sr}/sync"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = app
        .put(
            &app.admin,
            &format!("/v1/service-requests/{sr}"),
            &json!({"ticket_id": "SR-4242"}),
        )
        .await;
    assert_eq!(r.body["status"], "filed");
    let r = app
        .post(
            &app.admin,
            &format!("/v1/service-requests/{sr}/sync"),
            &json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "open", "{}", r.body);
    pc.set_service_request_status("SR-4242", 3);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/service-requests/{sr}/sync"),
            &json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "attention_needed");
    let r = app
        .post_with_key(
            &app.admin,
            &format!("/v1/service-requests/{sr}/notes"),
            "n-1",
            &json!({"text": "Customer suspended; logs attached."}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["notes"][0]["text"],
        "Customer suspended; logs attached."
    );
}

#[tokio::test]
async fn a_signup_held_for_review_has_a_case_that_its_review_closes() {
    let app = spawn_app_with(ServerOptions::default()).await;
    // A free-mail contact on a foreign domain with a mismatched phone scores into review.
    let r = app
        .post(
            &app.admin,
            "/v1/signups/assess",
            // Free mail (10) + phone from another country (15) + card from another country (20).
            &json!({"company": {"name": "Review Me", "domain": "reviewme.example", "country": "GB"},
                    "contact": {"email": "someone@gmail.com", "phone": "+33142685300", "name": "A B"},
                    "ip": "203.0.113.9", "cloud_instance": "global",
                    "payment_instrument": {"type": "card", "bin": "100100", "last4": "0001"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    if r.body["decision"] != "review" {
        panic!("expected a review decision to test with: {}", r.body);
    }
    let signup = r.body["assessment_id"].as_str().unwrap().to_owned();
    let cases = app.get(&app.admin, "/v1/cases?kind=signup_review").await;
    let items = cases.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", cases.body);
    assert_eq!(items[0]["signup_id"], json!(signup));
    let case_id = items[0]["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &app.admin,
            &format!("/v1/signups/{signup}/review"),
            &json!({"decision": "approve", "note": "called them"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = app.get(&app.admin, &format!("/v1/cases/{case_id}")).await;
    assert_eq!(c.body["case"]["status"], "resolved");
    assert!(c.body["case"]["customer_id"].is_string());
}

/// A `riskdesk serve` process of the real binary, on a SQLite file, with its stdout read by
/// a thread.
struct Server {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    base: String,
}

impl Server {
    fn start(config: &std::path::Path) -> Server {
        use std::io::BufRead;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_riskdesk"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "--bind",
                &format!("127.0.0.1:{port}"),
                "serve",
            ])
            .env_remove("RISKDESK_DATABASE_URL")
            .env("RISKDESK_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start riskdesk serve");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Lines printed up to "listening" (the admin token on first start is among them).
    fn wait_listening(&self) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("riskdesk did not start: {seen:?}"));
            let done = l.contains("listening on");
            seen.push(l);
            if done {
                return seen;
            }
        }
    }

    /// SIGKILL: no shutdown, no flush, like a crash.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

#[tokio::test]
async fn a_crash_neither_loses_nor_doubles_a_provider_call() {
    let pc = FakePartnerCenter::start().await;
    pc.add_subscription("pc-c", "pc-s", true, true);
    let dir = tempfile::tempdir().unwrap();
    let config = |interval: u64| {
        let path = dir.path().join(format!("riskdesk-{interval}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"database_url = "{db}"
sqlite_synchronous = "full"

[dunning]
run_every_minutes = 0

[provider_worker]
interval_seconds = {interval}
lease_seconds = 2

[partner_center.global]
tenant_id = "partner-tenant"
client_id = "riskdesk-app"
client_secret = "secret"
rest_base = "{pc}"
token_authority = "{pc}/"
timeout_ms = 60000
retries = 0
"#,
                db = dir.path().join("riskdesk.db").display(),
                pc = pc.url
            ),
        )
        .unwrap();
        path
    };
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, base: &str, path: &str, token: &str, body: Value| {
        let req = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body);
        async move {
            let r = req.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // 1. The action is decided, then the process dies before its worker's next pass (the
    //    worker looks once an hour in this process).
    let p1 = Server::start(&config(3600));
    let out = p1.wait_listening();
    let token = out
        .iter()
        .skip_while(|l| !l.contains("admin token"))
        .nth(1)
        .cloned()
        .unwrap_or_else(|| panic!("no admin token printed: {out:?}"));
    let base = p1.base.clone();
    let mut body = customer_body("Crash Test");
    body["external_id"] = json!("CRASH-1");
    let (st, c) = call(reqwest::Method::POST, &base, "/v1/customers", &token, body).await;
    assert_eq!(st, 201, "{c}");
    let cid = c["id"].as_str().unwrap().to_owned();
    let (_, s) = call(
        reqwest::Method::POST,
        &base,
        &format!("/v1/customers/{cid}/subscriptions"),
        &token,
        json!({"offer": "Azure plan", "quantity": 1}),
    )
    .await;
    let sid = s["id"].as_str().unwrap().to_owned();
    call(
        reqwest::Method::PUT,
        &base,
        &format!("/v1/customers/{cid}/provider-link"),
        &token,
        json!({"provider_customer_id": "pc-c"}),
    )
    .await;
    call(
        reqwest::Method::PUT,
        &base,
        &format!("/v1/subscriptions/{sid}/provider-link"),
        &token,
        json!({"provider_subscription_id": "pc-s"}),
    )
    .await;
    let (st, ev) = call(
        reqwest::Method::POST,
        &base,
        "/v1/events",
        &token,
        json!([{"type": "activity", "event_id": "crash-fraud", "customer_id": cid, "time": jiff::Timestamp::now().to_string(),
                "operation": "provider_fraud_notification", "actor": "pc", "status": "succeeded", "properties": {}}]),
    )
    .await;
    assert_eq!(st, 200, "{ev}");
    let (_, cases) = call(
        reqwest::Method::GET,
        &base,
        &format!("/v1/cases?customer_id={cid}"),
        &token,
        Value::Null,
    )
    .await;
    let case_id = cases["items"][0]["id"].as_str().unwrap().to_owned();
    let (st, a) = call(
        reqwest::Method::POST,
        &base,
        &format!("/v1/cases/{case_id}/actions"),
        &token,
        json!({"kind": "suspend", "subscription_id": sid}),
    )
    .await;
    assert_eq!(st, 201, "{a}");
    let first = a["id"].as_str().unwrap().to_owned();
    p1.kill9();
    assert!(
        pc.requests_with("PATCH").is_empty(),
        "no call was made before the crash"
    );

    // 2. A new process carries it out (once); then it starts a second call whose reply is lost
    //    (the provider applies it and never answers) and dies in the middle of it.
    let p2 = Server::start(&config(1));
    p2.wait_listening();
    let base = p2.base.clone();
    let mut done = Value::Null;
    for _ in 0..100 {
        done = call(
            reqwest::Method::GET,
            &base,
            &format!("/v1/actions/{first}"),
            &token,
            Value::Null,
        )
        .await
        .1;
        if done["status"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(pc.requests_with("PATCH").len(), 1);
    pc.hang_next_patch();
    let (st, a) = call(
        reqwest::Method::POST,
        &base,
        &format!("/v1/cases/{case_id}/actions"),
        &token,
        json!({"kind": "reactivate", "subscription_id": sid}),
    )
    .await;
    assert_eq!(st, 201, "{a}");
    let second = a["id"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        if pc.requests_with("PATCH").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        pc.requests_with("PATCH").len(),
        2,
        "the second call reached the provider"
    );
    p2.kill9();

    // 3. After the lease, the next process repeats the call with the same MS-RequestId: the
    //    provider already has it, nothing is applied twice, and the action completes.
    let p3 = Server::start(&config(1));
    p3.wait_listening();
    let base = p3.base.clone();
    for _ in 0..100 {
        done = call(
            reqwest::Method::GET,
            &base,
            &format!("/v1/actions/{second}"),
            &token,
            Value::Null,
        )
        .await
        .1;
        if done["status"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(pc.effects(), 2, "one effect per action");
    let patches = pc.requests_with("PATCH");
    let ids: Vec<Option<String>> = patches.iter().map(|p| p.request_id.clone()).collect();
    assert_eq!(ids, [Some(first.clone()), Some(second.clone())], "{ids:?}");
    assert_eq!(pc.subscription("pc-c", "pc-s")["status"], "active");
    p3.kill9();
}

#[tokio::test]
async fn a_blocked_identifier_refuses_the_sign_up_until_it_expires_or_is_removed() {
    let app = spawn_app_with(ServerOptions::default()).await;
    let c = app
        .create_customer(&app.admin, customer_body("Bad Actor"))
        .await;
    let cid = c["id"].as_str().unwrap();
    fraud_alert(&app, cid).await;
    let case_id = only_case(&app, cid).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // From the case: the domain (and its subdomains) for good, a /24 for a month.
    let r = app
        .post(
            &app.admin,
            "/v1/blocklist",
            &json!({"kind": "domain", "value": "Fraud-Ring.example", "reason": "ring behind case", "case_id": case_id}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["value"], "fraud-ring.example");
    let domain_entry = r.body["id"].as_str().unwrap().to_owned();
    let expires = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30)).to_string();
    let r = app
        .post(
            &app.admin,
            "/v1/blocklist",
            &json!({"kind": "ip", "value": "198.51.100.77/24", "reason": "bot farm", "expires_at": expires}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["value"], "198.51.100.0/24");
    // Bad values are refused field by field.
    let r = app
        .post(
            &app.admin,
            "/v1/blocklist",
            &json!({"kind": "ip", "value": "198.51.100.0/40", "reason": "x"}),
        )
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "value");
    let r = app
        .post(
            &app.admin,
            "/v1/blocklist",
            &json!({"kind": "asn", "value": "1", "reason": "x"}),
        )
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "kind");

    let signup = |email: &str, ip: &str, as_of: &str| {
        json!({"company": {"name": "Acme", "domain": "acme.example", "country": "GB"},
               "contact": {"email": email, "phone": "+442071838750", "name": "A"},
               "ip": ip, "cloud_instance": "global", "as_of": as_of})
    };
    let now = jiff::Timestamp::now().to_string();
    let r = app
        .post(
            &app.admin,
            "/v1/signups/assess",
            &signup("x@mail.fraud-ring.example", "192.0.2.1", &now),
        )
        .await;
    assert_eq!(r.body["decision"], "reject", "{}", r.body);
    let reason = r.body["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "blocklisted")
        .cloned()
        .unwrap_or_else(|| panic!("{}", r.body));
    assert!(
        reason["message"]
            .as_str()
            .unwrap()
            .contains("domain fraud-ring.example")
    );
    let r = app
        .post(
            &app.admin,
            "/v1/signups/assess",
            &signup("ceo@acme.example", "198.51.100.5", &now),
        )
        .await;
    assert_eq!(r.body["decision"], "reject", "{}", r.body);
    // After the range expires (an assessment as of then), the same IP passes.
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 31)).to_string();
    let r = app
        .post(
            &app.admin,
            "/v1/signups/assess",
            &signup("cfo@acme.example", "198.51.100.5", &later),
        )
        .await;
    assert!(
        !r.body["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["code"] == "blocklisted"),
        "{}",
        r.body
    );
    // Removed: the domain passes again; the entry is kept, marked removed.
    let r = app
        .post(
            &app.admin,
            &format!("/v1/blocklist/{domain_entry}/remove"),
            &json!({"note": "cleared"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .post(
            &app.admin,
            "/v1/signups/assess",
            &signup("y@fraud-ring.example", "192.0.2.2", &now),
        )
        .await;
    assert!(
        !r.body["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["code"] == "blocklisted"),
        "{}",
        r.body
    );
    let all = app.get(&app.admin, "/v1/blocklist?active=false").await;
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    let active = app.get(&app.admin, "/v1/blocklist").await;
    assert_eq!(active.body.as_array().unwrap().len(), 1);
    // The case's timeline has it.
    let detail = app.get(&app.admin, &format!("/v1/cases/{case_id}")).await;
    assert!(
        detail.body["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "blocklist")
    );
}

#[tokio::test]
async fn the_poller_turns_fraud_events_and_audit_records_into_alerts_and_events() {
    let pc = FakePartnerCenter::start().await;
    pc.add_subscription("pc-cust-9", "pc-sub-9", true, false);
    pc.add_fraud_event(
        "pc-cust-9",
        "pc-sub-9",
        "vm-miner",
        "NetworkConnectionsToCryptoMiningPools",
    );
    pc.add_fraud_event(
        "someone-else",
        "unlinked-sub",
        "vm-x",
        "UsageAnomalyDetection",
    );
    let now = jiff::Timestamp::now();
    for i in 0..3 {
        pc.add_audit_record(
            &format!("rec-{i}"),
            "pc-cust-9",
            "add_user_member",
            &now.to_string(),
        );
    }
    let mut opts = options(&[("global", &pc)]);
    opts.provider_poll_every = Some(Duration::from_millis(200));
    let app = spawn_app_with(opts).await;
    connect(&app, "global").await;
    let (cid, _) = linked_customer(&app, "global", "pc-cust-9", "pc-sub-9").await;
    let mut alerts = Value::Null;
    let mut events = 0;
    for _ in 0..100 {
        alerts = app
            .get(
                &app.admin,
                &format!("/v1/alerts?customer_id={cid}&rule=provider.fraud_event"),
            )
            .await
            .body;
        events = app
            .db
            .fetch_all::<i64>(riskdesk_storage::query::Q::new(
                "SELECT COUNT(*) AS n FROM events WHERE event_id LIKE 'pc-audit:%'",
            ))
            .await
            .unwrap()[0];
        if alerts["items"].as_array().is_some_and(|a| !a.is_empty()) && events == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let items = alerts["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{alerts}");
    assert_eq!(items[0]["severity"], "critical");
    assert_eq!(
        events, 3,
        "the three audit records are the customer's activity events"
    );
    // Later passes add nothing: one alert per event, each record once.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = app
        .get(
            &app.admin,
            &format!("/v1/alerts?customer_id={cid}&rule=provider.fraud_event"),
        )
        .await;
    assert_eq!(again.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(again.body["items"][0]["count"], 1);
    let case = only_case(&app, &cid).await;
    assert_eq!(case["kind"], "provider_fraud");
}

#[tokio::test]
async fn cancelling_an_azure_subscription_cancels_its_entitlement_not_the_plan() {
    let pc = FakePartnerCenter::start().await;
    pc.add_subscription("pc-c", "azure-plan-1", true, true);
    pc.add_entitlement("pc-c", "azure-plan-1", "azsub-7");
    let app = spawn_app_with(options(&[("global", &pc)])).await;
    let (cid, sid) = linked_customer(&app, "global", "pc-c", "azure-plan-1").await;
    let r = app
        .put(
            &app.admin,
            &format!("/v1/subscriptions/{sid}/provider-link"),
            &json!({"provider_subscription_id": "azure-plan-1", "azure_entitlement_id": "azsub-7"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["azure_entitlement_id"], "azsub-7");
    fraud_alert(&app, &cid).await;
    let case_id = only_case(&app, &cid).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{case_id}/actions"),
            &json!({"kind": "cancel", "subscription_id": sid, "reason": "fraud"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let done = settled(&app, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        pc.entitlement("pc-c", "azure-plan-1", "azsub-7")["status"],
        "inactive"
    );
    // The plan itself was neither patched nor deleted.
    assert!(pc.requests_with("PATCH").is_empty());
    assert_eq!(pc.subscription("pc-c", "azure-plan-1")["status"], "active");
    let posts = pc.requests_with("POST");
    assert_eq!(posts.len(), 1);
    assert!(posts[0].path.ends_with("/azureEntitlements/azsub-7/cancel"));
    assert!(posts[0].body.contains("compromise"));
}

/// A customer has one open case at a time: a closed case cannot be reopened while another is
/// open (409, naming it), and the open case stays the only one (a unique index backs it).
#[tokio::test]
async fn a_closed_case_is_not_reopened_beside_the_customers_open_one() {
    let app = crate::helpers::spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Two Cases Ltd"))
        .await;
    let cid = c["id"].as_str().unwrap().to_owned();
    let notice = |n: u32| {
        json!({"message_id": format!("<two-cases-{n}@example.com>"), "sender": "no-reply@microsoft.com",
               "subject": format!("Notice {n}"), "body": "Please review this customer.", "customer_id": cid})
    };
    let r = app
        .post(&app.admin, "/v1/provider/notices", &notice(1))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let first = r.body["case_id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{first}/status"),
            &json!({"status": "dismissed"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .post(&app.admin, "/v1/provider/notices", &notice(2))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let second = r.body["case_id"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "the dismissed case is not reused");

    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{first}/status"),
            &json!({"status": "open"}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains(&second),
        "{}",
        r.body
    );
    assert_eq!(only_case(&app, &cid).await["id"], second.as_str());

    // Once the open one is closed, the older one may be reopened.
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{second}/status"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/cases/{first}/status"),
            &json!({"status": "open"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(only_case(&app, &cid).await["id"], first.as_str());
}

/// The Secure Application Model through the API: a partner admin connects an instance (PKCE,
/// the state completing once), the refresh token is stored sealed, and app + user calls use it.
#[tokio::test]
async fn a_partner_admin_connects_an_instance_and_the_consent_is_kept_sealed() {
    let pc = FakePartnerCenter::start().await;
    pc.add_fraud_event("pc-cust-1", "pc-sub-1", "vm-1", "UsageAnomalyDetection");
    let mut opts = options(&[("global", &pc)]);
    opts.provider_poll_every = Some(Duration::from_millis(200));
    let app = spawn_app_with(opts).await;
    let (cid, _) = linked_customer(&app, "global", "pc-cust-1", "pc-sub-1").await;
    let list = app.get(&app.admin, "/v1/provider/connections").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["items"][0]["instance"], "global");
    assert_eq!(list.body["items"][0]["state"], "not_connected");
    assert_eq!(list.body["items"][0]["connectable"], true);
    // Only an admin may connect; an instance must be configured.
    let analyst = app.token("default", Role::Analyst).await;
    let r = app
        .post(
            &analyst,
            "/v1/provider/connections/global/consent",
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = app
        .post(
            &app.admin,
            "/v1/provider/connections/us_government/consent",
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("partner_center.us_government")
    );
    let r = app
        .post(
            &app.admin,
            "/v1/provider/connections/mars/consent",
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    // The consent page carries PKCE (S256) and the configured redirect URI.
    let start = app
        .post(
            &app.admin,
            "/v1/provider/connections/global/consent",
            &json!({}),
        )
        .await;
    assert_eq!(start.status, 201, "{}", start.body);
    let page = start.body["authorize_url"].as_str().unwrap();
    assert!(
        page.starts_with(&format!("{}/partner-tenant/oauth2/authorize?", pc.url)),
        "{page}"
    );
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "response_type=code",
        "redirect_uri=https%3A%2F%2Friskdesk.test",
    ] {
        assert!(page.contains(part), "{part} in {page}");
    }
    // A state riskdesk never issued, or no state, is refused.
    let r = app
        .get("", "/v1/provider/consent/callback?code=x&state=forged")
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("unknown or expired consent state")
    );
    let r = app.get("", "/v1/provider/consent/callback?code=x").await;
    assert_eq!(r.status, 422, "{}", r.body);
    // The admin declined: the flow ends with the reason.
    let declined = app
        .post(
            &app.admin,
            "/v1/provider/connections/global/consent",
            &json!({}),
        )
        .await;
    let state = declined.body["authorize_url"]
        .as_str()
        .unwrap()
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let r = app
        .get("", &format!("/v1/provider/consent/callback?state={state}&error=access_denied&error_description=AADSTS65004%3A+declined"))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("access_denied"),
        "{}",
        r.body
    );

    let c = connect(&app, "global").await;
    assert!(c["token_expires_at"].as_str().is_some(), "{c}");
    assert!(c.get("refresh_token").is_none(), "never returned: {c}");
    // Stored sealed: no token in clear anywhere in the row.
    let sealed = app
        .db
        .fetch_all::<i64>(riskdesk_storage::query::Q::new(
            "SELECT COUNT(*) AS n FROM provider_connections WHERE instance = 'global' \
             AND refresh_token LIKE 'v1.k1.%' AND refresh_token NOT LIKE '%fake-rt%'",
        ))
        .await
        .unwrap();
    assert_eq!(sealed, vec![1]);
    // The connect is audited.
    let audit = app.get(&app.admin, "/v1/audit?limit=200").await;
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "provider.connect"),
        "{}",
        audit.body
    );
    // The poll's fraud-event call, refused before (no consent), now carries the delegated
    // token and the event becomes the customer's alert.
    let mut alerts = Value::Null;
    for _ in 0..100 {
        alerts = app
            .get(
                &app.admin,
                &format!("/v1/alerts?customer_id={cid}&rule=provider.fraud_event"),
            )
            .await
            .body;
        if alerts["items"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(alerts["items"].as_array().unwrap().len(), 1, "{alerts}");
    let bearers = pc.bearers();
    assert!(
        bearers
            .iter()
            .any(|(p, k)| p == "/v1/fraudEvents" && k == "user"),
        "{bearers:?}"
    );
    assert!(
        bearers
            .iter()
            .all(|(p, k)| p != "/v1/fraudEvents" || k == "user"),
        "never an app-only token on an app + user call: {bearers:?}"
    );
    assert!(
        bearers
            .iter()
            .any(|(p, k)| p == "/v1/auditrecords" && k == "app"),
        "{bearers:?}"
    );
}

async fn lost_alerts(app: &TestApp) -> Vec<Value> {
    app.get(&app.admin, "/v1/alerts?rule=provider.connection_lost")
        .await
        .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A consent revoked at Microsoft: one critical alert and one `provider.connection_lost`
/// webhook per tenant, the connection shown lost, the calls kept; after reconnecting they
/// go through again.
#[tokio::test]
async fn a_revoked_consent_is_one_critical_alert_and_the_calls_resume_after_reconnecting() {
    let pc = FakePartnerCenter::start().await;
    let mut opts = options(&[("global", &pc)]);
    opts.provider_poll_every = Some(Duration::from_millis(150));
    let app = spawn_app_with(opts).await;
    let (cid, _) = linked_customer(&app, "global", "pc-cust-2", "pc-sub-2").await;
    let ep = app
        .post(
            &app.admin,
            "/v1/webhook-endpoints",
            &json!({"url": "http://127.0.0.1:9/hooks"}),
        )
        .await;
    assert_eq!(ep.status, 201, "{}", ep.body);
    connect(&app, "global").await;
    pc.revoke_consent();
    let mut found = Vec::new();
    for _ in 0..100 {
        found = lost_alerts(&app).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["severity"], "critical");
    let conn = app.get(&app.admin, "/v1/provider/connections").await.body;
    assert_eq!(conn["items"][0]["state"], "lost", "{conn}");
    assert!(
        conn["items"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{conn}"
    );
    assert!(conn["items"][0]["lost_at"].as_str().is_some());
    // Later passes keep failing quietly: still one alert, one webhook.
    pc.add_fraud_event(
        "pc-cust-2",
        "pc-sub-2",
        "vm-2",
        "NetworkConnectionsToCryptoMiningPools",
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(lost_alerts(&app).await.len(), 1);
    let hooks = app
        .get(&app.admin, "/v1/outbox?channel=webhook&limit=500")
        .await
        .body;
    let n = hooks
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["event_type"] == "provider.connection_lost")
        .count();
    assert_eq!(n, 1, "{hooks}");
    let fraud = format!("/v1/alerts?customer_id={cid}&rule=provider.fraud_event");
    assert_eq!(app.get(&app.admin, &fraud).await.body["items"], json!([]));
    // Reconnected: the fraud event comes through.
    let c = connect(&app, "global").await;
    assert_eq!(c["lost_at"], Value::Null);
    let mut alerts = Value::Null;
    for _ in 0..100 {
        alerts = app.get(&app.admin, &fraud).await.body;
        if alerts["items"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(alerts["items"].as_array().unwrap().len(), 1, "{alerts}");
}

/// Azure plan usage pulled by riskdesk itself: the unbilled line items, page by page
/// (`links.next` + `MS-ContinuationToken`), become the linked customer's usage events with
/// their exact costs; later passes read them again and add nothing.
#[tokio::test]
async fn unbilled_usage_line_items_are_pulled_page_by_page_into_ingest_once() {
    let pc = FakePartnerCenter::start().await;
    // Five line items (pages of two: three pages), costs beyond f64's digits; one more for a
    // customer no tenant links.
    let costs = [
        "28.82860766744404945074",
        "0.000000000001",
        "1.5",
        "1000",
        "0.123456789012",
    ];
    for (i, cost) in costs.iter().enumerate() {
        pc.add_unbilled_line_item(
            "EUR",
            &format!(
                r#"{{"customerId": "pc-cust-u", "entitlementId": "az-1", "usageDate": "2026-11-0{}T00:00:00Z",
                "meterCategory": "Virtual Machines", "meterName": "D4s v5", "meterId": "m-{i}", "resourceLocation": "westeurope",
                "quantity": 1.0, "unitOfMeasure": "1 Hour", "billingPreTaxTotal": {cost}, "billingCurrency": "EUR",
                "chargeType": "new", "attributes": {{"objectType": "DailyRatedUsageLineItem"}}}}"#,
                i + 1
            ),
        );
    }
    pc.add_unbilled_line_item(
        "EUR",
        r#"{"customerId": "nobody", "usageDate": "2026-11-01T00:00:00Z", "meterCategory": "Storage",
           "billingPreTaxTotal": 2, "billingCurrency": "EUR", "attributes": {"objectType": "DailyRatedUsageLineItem"}}"#,
    );
    let mut opts = options(&[("global", &pc)]);
    opts.provider_poll_every = Some(Duration::from_millis(200));
    let app = spawn_app_with(opts).await;
    linked_customer(&app, "global", "pc-cust-u", "pc-sub-u").await;
    let count = || async {
        app.db
            .fetch_all::<i64>(riskdesk_storage::query::Q::new(
                "SELECT COUNT(*) AS n FROM events WHERE event_id LIKE 'pc-usage:%'",
            ))
            .await
            .unwrap()[0]
    };
    let mut n = 0;
    for _ in 0..100 {
        n = count().await;
        if n == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        n, 5,
        "every line item of every page, the unlinked one kept nowhere"
    );
    // Exact: 1030.452064456457 (each cost rounded half-to-even to 12 decimals first; the
    // first has 20 decimals, more than an f64 carries).
    let sum = app
        .db
        .fetch_all::<i64>(riskdesk_storage::query::Q::new(
            "SELECT CAST(SUM(cost_units) * 1000000000000 + SUM(cost_rem) AS BIGINT) AS n FROM events WHERE event_id LIKE 'pc-usage:%'",
        ))
        .await
        .unwrap()[0];
    assert_eq!(sum, 1_030_452_064_456_457, "{sum}");
    // Pages followed with the continuation token the service gave; passes after the first
    // read the period again and store nothing new.
    let pages: Vec<_> = pc
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/invoices/unbilled/lineitems")
        .collect();
    assert!(pages.len() >= 3, "{}", pages.len());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        pc.requests()
            .iter()
            .filter(|r| r.path == "/v1/invoices/unbilled/lineitems")
            .count()
            > pages.len()
    );
    assert_eq!(count().await, 5);
    // The status shows each feed, where it is and how long ago it moved.
    let conn = app.get(&app.admin, "/v1/provider/connections").await.body;
    let pulls = conn["items"][0]["pulls"].as_array().unwrap();
    let feed = |name: &str| pulls.iter().find(|p| p["feed"] == name).cloned();
    assert!(feed("audit_day").is_some(), "{conn}");
    let usage = feed("usage:EUR:current").expect("the usage feed");
    assert!(
        ["complete", "in_progress"].contains(&usage["position"].as_str().unwrap()),
        "{usage}"
    );
    assert!(usage["lag_seconds"].as_i64().unwrap() < 60, "{usage}");
    assert!(feed("usage:EUR:current:complete").is_some(), "{conn}");
    // Prometheus: line items read, and when each feed last moved (its lag is now minus that).
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("riskdesk_provider_line_items_total"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(
            |l| l.starts_with("riskdesk_provider_pull_last_success_seconds")
                && l.contains("feed=\"usage\"")
        ),
        "{metrics}"
    );

    // The month is invoiced: its billed line items are read once; one was pulled unbilled
    // (same identity, a corrected cost: nothing added), one is new.
    pc.add_invoice(
        "G000123",
        "EUR",
        &[
            r#"{"customerId": "pc-cust-u", "entitlementId": "az-1", "usageDate": "2026-11-01T00:00:00Z",
               "meterCategory": "Virtual Machines", "meterName": "D4s v5", "meterId": "m-0", "resourceLocation": "westeurope",
               "billingPreTaxTotal": 28.9, "billingCurrency": "EUR", "chargeType": "new", "invoiceNumber": "G000123"}"#,
            r#"{"customerId": "pc-cust-u", "entitlementId": "az-1", "usageDate": "2026-11-30T00:00:00Z",
               "meterCategory": "Storage", "meterName": "LRS", "meterId": "m-9", "resourceLocation": "westeurope",
               "billingPreTaxTotal": 0.5, "billingCurrency": "EUR", "chargeType": "new", "invoiceNumber": "G000123"}"#,
        ],
    );
    for _ in 0..100 {
        n = count().await;
        if n == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, 6);
    let mut billed = Value::Null;
    for _ in 0..50 {
        let conn = app.get(&app.admin, "/v1/provider/connections").await.body;
        billed = conn["items"][0]["pulls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["feed"] == "billed:G000123")
            .cloned()
            .unwrap_or(Value::Null);
        if billed["position"] == "complete" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(billed["position"], "complete", "{billed}");
    let reads = |pc: &FakePartnerCenter| {
        pc.requests()
            .iter()
            .filter(|r| r.path == "/v1/invoices/G000123/lineitems")
            .count()
    };
    let before = reads(&pc);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(reads(&pc), before, "a complete invoice is not read again");
    assert_eq!(count().await, 6);
}

/// `riskdesk provider keygen` prints a key the settings take; `provider status` without any
/// `[partner_center]` says so.
#[tokio::test]
async fn the_cli_makes_consent_keys_and_reports_no_instance() {
    let app = spawn_app_with(ServerOptions::default()).await;
    let out = app.cli(&["provider", "keygen", "--id", "k7"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let key = line
        .trim()
        .strip_prefix("provider_token_keys = \"")
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{line}"));
    let cipher = riskdesk_app::kernel::secrets::TokenCipher::parse(key).unwrap();
    assert_eq!(cipher.current_key(), "k7");
    let out = app.cli(&["provider", "status"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no [partner_center.<instance>] is configured")
    );
    let out = app.cli(&["provider", "connect", "global"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("Partner Center is not configured for global"),
        "{err}"
    );
}

/// A usage pull cut short by a crash (SIGKILL of the real binary while a page is in flight)
/// resumes at the page it was on: nothing missing, nothing twice.
// Several threads: the fake Partner Center answers the real binary while this test waits
// for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_pull_killed_mid_way_resumes_without_a_gap_or_a_double() {
    let pc = FakePartnerCenter::start().await;
    for i in 0..7 {
        pc.add_unbilled_line_item(
            "EUR",
            &format!(
                r#"{{"customerId": "pc-cust-k", "entitlementId": "az-k", "usageDate": "2026-11-{:02}T00:00:00Z",
                "meterCategory": "Virtual Machines", "meterName": "D4s v5", "meterId": "k-{i}", "resourceLocation": "westeurope",
                "billingPreTaxTotal": 1.000000000001, "billingCurrency": "EUR", "chargeType": "new"}}"#,
                i + 1
            ),
        );
    }
    let app = spawn_app_with(options(&[("global", &pc)])).await;
    linked_customer(&app, "global", "pc-cust-k", "pc-sub-k").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("riskdesk.toml");
    std::fs::write(
        &config,
        format!(
            r#"[scheduler]
lease_seconds = 3

[partner_center.global]
tenant_id = "partner-tenant"
client_id = "riskdesk-app"
client_secret = "secret"
rest_base = "{pc}"
token_authority = "{pc}/"
retries = 0
usage_currencies = ["EUR"]
usage_page_size = 2
"#,
            pc = pc.url
        ),
    )
    .unwrap();
    let count = || async {
        app.db
            .fetch_all::<i64>(riskdesk_storage::query::Q::new(
                "SELECT COUNT(*) AS n FROM events WHERE event_id LIKE 'pc-usage:%'",
            ))
            .await
            .unwrap()[0]
    };
    let line_item_reads = |pc: &FakePartnerCenter| {
        pc.requests()
            .into_iter()
            .filter(|r| r.path == "/v1/invoices/unbilled/lineitems")
            .count()
    };
    // Two pages answered, the third never: the process is killed while it waits.
    pc.hang_line_items_after(2);
    let mut worker = app
        .cli_command_with(&["worker", "--roles", "scheduler", "--once"], &config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if line_item_reads(&pc) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(line_item_reads(&pc), 3, "the third page is in flight");
    worker.kill().unwrap(); // SIGKILL
    worker.wait().unwrap();
    assert_eq!(count().await, 4, "the two pages answered are stored");
    // Run again (once the killed process's lease has run out): it goes on from page three.
    let mut ran = false;
    for _ in 0..40 {
        let out = app
            .cli_command_with(&["worker", "--roles", "scheduler", "--once"], &config)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if text.contains("provider-poll: ran") {
            assert!(
                text.contains("line_items: 3, "),
                "pages three (2) and four (1): {text}"
            );
            assert!(text.contains("events_accepted: 3, "), "{text}");
            ran = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ran, "the poll ran again");
    assert_eq!(count().await, 7, "every line item once");
    // Four pages in all (2, 2, 2, 1): three read by the killed process, the last two by the
    // next one (it started at the page in flight, not at the first).
    assert_eq!(line_item_reads(&pc), 5);
    let sum = app
        .db
        .fetch_all::<i64>(riskdesk_storage::query::Q::new(
            "SELECT CAST(SUM(cost_units) * 1000000000000 + SUM(cost_rem) AS BIGINT) AS n FROM events WHERE event_id LIKE 'pc-usage:%'",
        ))
        .await
        .unwrap()[0];
    assert_eq!(sum, 7_000_000_000_007);
}

/// The alerts `path` lists, once there is at least one (the poll raises them in the
/// background).
async fn alerts_once_raised(app: &TestApp, path: &str) -> Vec<Value> {
    let mut found = Vec::new();
    for _ in 0..100 {
        found = app.get(&app.admin, path).await.body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    found
}

/// The status line of the Activity Log pulls (`N subscriptions, M without access`).
async fn activity_position(app: &TestApp) -> String {
    let conn = app.get(&app.admin, "/v1/provider/connections").await.body;
    conn["items"][0]["pulls"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["feed"] == "activity_log"))
        .and_then(|p| p["position"].as_str())
        .unwrap_or_else(|| panic!("no activity_log feed: {conn}"))
        .to_owned()
}

/// An Activity Log event as ARM lists it (the published sample's shape, trimmed), `minutes`
/// before now.
fn arm_event(
    sub: &str,
    id: &str,
    operation: &str,
    status: &str,
    status_code: &str,
    minutes: i64,
    request_body: &str,
) -> Value {
    let at = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_mins(minutes))
        .unwrap();
    json!({
        "caller": "intruder@fabrikam.example",
        "correlationId": format!("corr-{id}"),
        "eventDataId": id,
        "eventName": {"value": if status == "Started" { "BeginRequest" } else { "EndRequest" }},
        "category": {"value": "Administrative"},
        "eventTimestamp": at.to_string(),
        "level": "Informational",
        "operationName": {"value": operation, "localizedValue": operation},
        "resourceId": format!("/subscriptions/{sub}/resourceGroups/rg/providers/{operation}/x-{id}"),
        "status": {"value": status},
        "subStatus": {"value": ""},
        "subscriptionId": sub,
        "httpRequest": {"clientIpAddress": "203.0.113.9", "method": "PUT"},
        "properties": {"statusCode": status_code, "requestbody": request_body}
    })
}

/// The Azure Activity Log of a linked Azure subscription pulled by riskdesk itself, with a
/// customer-tenant token redeemed from the partner's consent: a quota increase then ten VMs
/// (each logged Started and Succeeded) and an outbound port-25 rule fire the shipped
/// detectors; ARM's pages are followed; a removed delegated access is one alert, and the
/// pull resumes once access is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_log_is_pulled_per_subscription_and_feeds_the_detectors() {
    let pc = FakePartnerCenter::start().await;
    let sub = "5c2f7a80-0000-4000-8000-00000000a11a";
    pc.add_azure_subscription("pc-cust-a", sub);
    pc.set_activity_page_size(4);
    pc.add_activity_event(
        sub,
        arm_event(
            sub,
            "q-1",
            "Microsoft.Capacity/resourceProviders/locations/serviceLimits/write",
            "Succeeded",
            "OK",
            50,
            "",
        ),
    );
    for i in 0..10 {
        for (status, code) in [("Started", ""), ("Succeeded", "Created")] {
            pc.add_activity_event(
                sub,
                arm_event(
                    sub,
                    &format!("vm-{i}-{status}"),
                    "Microsoft.Compute/virtualMachines/write",
                    status,
                    code,
                    40 - i,
                    "",
                ),
            );
        }
    }
    pc.add_activity_event(
        sub,
        arm_event(
            sub,
            "nsg-1",
            "Microsoft.Network/networkSecurityGroups/securityRules/write",
            "Succeeded",
            "Created",
            20,
            r#"{"properties":{"direction":"Outbound","access":"Allow","protocol":"Tcp","destinationPortRange":"25","priority":100}}"#,
        ),
    );
    let mut settings = pc_settings(&pc);
    settings.activity_log = true;
    let mut opts = options(&[]);
    opts.partner_center.insert("global".into(), settings);
    opts.provider_poll_every = Some(Duration::from_millis(200));
    let app = spawn_app_with(opts).await;
    let (cid, sid) = linked_customer(&app, "global", "pc-cust-a", "azure-plan-a").await;
    let r = app
        .put(
            &app.admin,
            &format!("/v1/subscriptions/{sid}/provider-link"),
            &json!({"provider_subscription_id": "azure-plan-a", "azure_entitlement_id": sub}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Another customer's subscription the partner cannot read from the start.
    let sub_b = "5c2f7a80-0000-4000-8000-00000000b22b";
    pc.add_azure_subscription("pc-cust-b", sub_b);
    pc.set_arm_access(sub_b, false);
    let (cid_b, sid_b) = linked_customer(&app, "global", "pc-cust-b", "azure-plan-b").await;
    let r = app
        .put(
            &app.admin,
            &format!("/v1/subscriptions/{sid_b}/provider-link"),
            &json!({"provider_subscription_id": "azure-plan-b", "azure_entitlement_id": sub_b}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Nothing is pulled before a partner admin connects the instance (no delegated token),
    // while the app-only feeds are (two passes of audit records seen).
    for _ in 0..100 {
        let passes = pc
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/auditrecords")
            .count();
        if passes >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(pc.activity_filters().is_empty());
    connect(&app, "global").await;

    let ids = {
        let r = app.get(&app.admin, "/v1/rules").await;
        let mut m = HashMap::new();
        for x in r.body.as_array().unwrap() {
            if let (Some(b), Some(id)) = (x["builtin"].as_str(), x["id"].as_str()) {
                m.insert(b.to_owned(), id.to_owned());
            }
        }
        m
    };
    let fired = || async {
        app.get(
            &app.admin,
            &format!("/v1/alerts?customer_id={cid}&limit=500"),
        )
        .await
        .body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let (mining, spam) = (
        &ids["crypto_mining_quota_then_vms"],
        &ids["spam_port_25_opened"],
    );
    let mut alerts = Vec::new();
    for _ in 0..150 {
        alerts = fired().await;
        let has = |rule: &str| alerts.iter().any(|a| a["rule"] == rule);
        if has(mining) && has(spam) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let count = |rule: &str| alerts.iter().filter(|a| a["rule"] == rule).count();
    assert_eq!(count(mining), 1, "{alerts:#?}");
    assert_eq!(count(spam), 1, "{alerts:#?}");
    // Every event once (22 of them, on six pages of four), a VM counted once, not twice.
    let n = |sql: &'static str| {
        let db = app.db.clone();
        async move {
            db.fetch_all::<i64>(riskdesk_storage::query::Q::new(sql))
                .await
                .unwrap()[0]
        }
    };
    assert_eq!(
        n("SELECT COUNT(*) AS n FROM events WHERE event_id LIKE 'azure:%'").await,
        22
    );
    assert_eq!(
        n("SELECT COUNT(*) AS n FROM events WHERE event_id LIKE 'azure:%' AND operation = 'vm_created'").await,
        10
    );
    // ARM was asked with a start and an end, pages followed by their nextLink, always with
    // a customer-tenant token (never the app's).
    let filters = pc.activity_filters();
    assert!(
        filters.iter().all(
            |f| f.starts_with("eventTimestamp ge '") && f.contains("' and eventTimestamp le '")
        ),
        "{filters:?}"
    );
    let arm: Vec<_> = pc
        .bearers()
        .into_iter()
        .filter(|(p, _)| p.starts_with("/subscriptions/"))
        .collect();
    assert!(arm.len() >= 6, "{arm:?}");
    assert!(arm.iter().all(|(_, kind)| kind == "arm"), "{arm:?}");
    // The subscription refused from its first pull is one alert for its customer, and counts
    // in the status though nothing was ever read from it.
    let lost_b = format!("/v1/alerts?customer_id={cid_b}&rule=provider.subscription_access_lost");
    let found = alerts_once_raised(&app, &lost_b).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        activity_position(&app).await,
        "2 subscriptions, 1 without access"
    );

    // The partner's access to the subscription is removed: one high alert, however many
    // passes see it, and the status says so.
    pc.set_arm_access(sub, false);
    let lost = format!("/v1/alerts?customer_id={cid}&rule=provider.subscription_access_lost");
    let found = alerts_once_raised(&app, &lost).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["severity"], "high");
    let refused_before = pc.requests().len();
    for _ in 0..100 {
        if pc.requests().len() >= refused_before + 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.get(&app.admin, &lost).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        activity_position(&app).await,
        "2 subscriptions, 2 without access"
    );
    // Access comes back: the storage account opened to the public meanwhile is read, and
    // its detector fires.
    pc.add_activity_event(
        sub,
        arm_event(
            sub,
            "st-1",
            "Microsoft.Storage/storageAccounts/write",
            "Succeeded",
            "OK",
            1,
            r#"{"properties":{"allowBlobPublicAccess":true}}"#,
        ),
    );
    pc.set_arm_access(sub, true);
    let public = &ids["malware_public_storage"];
    for _ in 0..100 {
        alerts = fired().await;
        if alerts.iter().any(|a| &a["rule"] == public) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(alerts.iter().any(|a| &a["rule"] == public), "{alerts:#?}");
    assert_eq!(
        activity_position(&app).await,
        "2 subscriptions, 1 without access"
    );
}
