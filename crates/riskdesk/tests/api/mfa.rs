//! MFA at sign-up over HTTP, with a local fake of the SMS provider (Twilio's Messages API)
//! standing in for the customer's phone; and the admin-access gate.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Form, Json, Router};
use riskdesk_app::onboarding::risk::{DataSettings, RiskEngine};
use riskdesk_connectors::sms::{SmsClient, SmsSettings};
use riskdesk_http::ServerOptions;
use serde_json::{Value, json};

use crate::helpers::{Resp, TestApp, customer_body, spawn_app_with};

type Inbox = Arc<Mutex<Vec<(String, String)>>>;

async fn fake_sms() -> (String, Inbox) {
    let inbox: Inbox = Arc::default();
    async fn messages(
        State(inbox): State<Inbox>,
        Form(f): Form<std::collections::HashMap<String, String>>,
    ) -> (StatusCode, Json<Value>) {
        inbox
            .lock()
            .unwrap()
            .push((f["To"].clone(), f["Body"].clone()));
        (
            StatusCode::CREATED,
            Json(json!({"sid": "SM1", "status": "queued"})),
        )
    }
    let app = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(messages))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, inbox)
}

async fn app_with_sms(policy: riskdesk_domain::onboarding::Policy) -> (TestApp, Inbox) {
    let (url, inbox) = fake_sms().await;
    let sms = SmsClient::new(SmsSettings {
        account_sid: "AC1".into(),
        auth_token: "t".into(),
        from: "+15005550006".into(),
        base_url: url,
        timeout_ms: 2000,
        retries: 0,
    })
    .unwrap();
    let opts = ServerOptions {
        sms: Some(Arc::new(sms)),
        risk: Arc::new(RiskEngine::load(&DataSettings::default(), &policy).unwrap()),
        ..Default::default()
    };
    (spawn_app_with(opts).await, inbox)
}

async fn approved_signup(app: &TestApp, n: u32) -> (String, String) {
    let body = json!({
        "company": {"name": "Contoso Ltd", "domain": "contoso.co.uk", "country": "GB"},
        "contact": {"email": format!("ops{n}@contoso.co.uk"), "phone": "+442071838750"},
        "ip": format!("203.0.113.{n}"),
        "cloud_instance": "global",
    });
    let r = app.post(&app.admin, "/v1/signups/assess", &body).await;
    assert_eq!(r.body["decision"], "approve", "{}", r.body);
    (
        r.body["assessment_id"].as_str().unwrap().to_owned(),
        r.body["customer_id"].as_str().unwrap().to_owned(),
    )
}

async fn start(app: &TestApp, signup: &str, channel: &str) -> Resp {
    app.post(
        &app.admin,
        &format!("/v1/signups/{signup}/verification"),
        &json!({"channel": channel}),
    )
    .await
}

async fn confirm(app: &TestApp, signup: &str, code: &str) -> Resp {
    app.post(
        &app.admin,
        &format!("/v1/signups/{signup}/verification/confirm"),
        &json!({"code": code}),
    )
    .await
}

fn code_in(inbox: &Inbox) -> String {
    let msgs = inbox.lock().unwrap();
    let (_, body) = msgs.last().expect("an SMS was sent");
    body.split_whitespace()
        .find(|w| w.len() == 7 && w.ends_with('.'))
        .map(|w| w.trim_end_matches('.').to_owned())
        .expect("a code in the SMS")
}

#[tokio::test]
async fn sms_code_verifies_the_signup_and_its_customer() {
    let (app, inbox) = app_with_sms(Default::default()).await;
    let (signup, _customer) = approved_signup(&app, 1).await;
    let r = start(&app, &signup, "sms").await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["destination"], "+•••••••••750");
    assert!(r.body.get("code").is_none(), "the code is never returned");
    assert_eq!(inbox.lock().unwrap()[0].0, "+442071838750");
    let code = code_in(&inbox);
    let wrong = if code == "000000" { "111111" } else { "000000" };

    let r = confirm(&app, &signup, &wrong).await;
    assert!(
        r.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("4 attempt(s) left"),
        "{}",
        r.body
    );
    let r = confirm(&app, &signup, &code).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"verified": true})));
    confirm(&app, &signup, &code).await.problem(409);

    // Nothing about the code is in the audit log.
    let audit = app
        .get(&app.admin, &format!("/v1/audit?entity_id={signup}"))
        .await;
    assert!(!audit.body.to_string().contains(&code));
}

#[tokio::test]
async fn attempts_and_sends_are_limited() {
    let (app, inbox) = app_with_sms(Default::default()).await;
    let (signup, _) = approved_signup(&app, 2).await;
    start(&app, &signup, "sms").await;
    let code = code_in(&inbox);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        confirm(&app, &signup, &wrong).await.problem(422);
    }
    let r = confirm(&app, &signup, &code).await;
    assert!(
        r.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("too many"),
        "even the right code is refused after 5 misses"
    );
    // Three codes per phone per hour: two more are sent, the fourth is refused.
    for _ in 0..2 {
        assert_eq!(start(&app, &signup, "sms").await.status, 201);
    }
    start(&app, &signup, "sms").await.problem(429);
    assert_eq!(inbox.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn admin_access_waits_for_every_control() {
    let mut policy = riskdesk_domain::onboarding::Policy::default();
    let (app, inbox) = app_with_sms(policy.clone()).await;
    let c = app
        .create_customer(&app.admin, customer_body("Direct"))
        .await;
    let r = app
        .post(
            &app.admin,
            &format!("/v1/customers/{}/admin-access", c["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    let mut missing = r.fields();
    missing.sort();
    assert_eq!(r.problem(409)["type"], "/problems/conditions-unmet");
    assert_eq!(missing, ["first_payment", "min_days", "verified"]);
    // An overdue invoice and an open high-severity alert (here: over a zero credit limit) are
    // controls too.
    let id = c["id"].as_str().unwrap();
    let terms = app
        .put(
            &app.admin,
            &format!("/v1/customers/{id}/credit-terms"),
            &json!({"limit": "0", "currency": "EUR", "prepayment_required": false}),
        )
        .await;
    assert_eq!(terms.status, 200, "{}", terms.body);
    let inv = app
        .post(
            &app.admin,
            "/v1/invoices",
            &json!({"customer_id": id, "number": "OLD-1", "issue_date": "2026-10-01", "due_date": "2026-10-31",
                    "currency": "EUR", "lines": [{"description": "usage", "amount": "10.00"}], "total": "10.00"}),
        )
        .await;
    assert_eq!(inv.status, 201, "{}", inv.body);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/customers/{id}/admin-access"),
            &json!({}),
        )
        .await;
    let mut missing = r.fields();
    missing.sort();
    assert_eq!(
        missing,
        [
            "first_payment",
            "min_days",
            "open_alerts",
            "overdue_invoices",
            "verified"
        ]
    );
    assert_eq!(
        app.get(
            &app.admin,
            &format!("/v1/customers/{}", c["id"].as_str().unwrap())
        )
        .await
        .body["admin_access"],
        "restricted"
    );

    // With a policy that needs only verification, MFA is what unlocks it.
    policy.admin_access_requires_first_payment = false;
    policy.admin_access_min_days = 0;
    let (app, inbox2) = app_with_sms(policy).await;
    drop(inbox);
    let (signup, customer) = approved_signup(&app, 3).await;
    let r = app
        .post(
            &app.admin,
            &format!("/v1/customers/{customer}/admin-access"),
            &json!({}),
        )
        .await;
    assert_eq!(r.problem(409)["errors"][0]["field"], "verified");
    start(&app, &signup, "sms").await;
    let code = code_in(&inbox2);
    confirm(&app, &signup, &code).await;
    let r = app
        .post(
            &app.admin,
            &format!("/v1/customers/{customer}/admin-access"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["admin_access"], "granted");
}

#[tokio::test]
async fn totp_enrolment_verifies_with_the_authenticator_code() {
    let (app, _) = app_with_sms(Default::default()).await;
    let (signup, _) = approved_signup(&app, 4).await;
    let r = start(&app, &signup, "totp").await;
    assert_eq!(r.status, 201, "{}", r.body);
    let url = r.body["otpauth_url"].as_str().unwrap();
    assert!(
        url.starts_with("otpauth://totp/") && url.contains("issuer=riskdesk"),
        "{url}"
    );
    // The customer's authenticator app, from the secret shown once.
    let secret = totp_rs::Secret::try_from_base32(r.body["secret"].as_str().unwrap()).unwrap();
    let app_totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    let code = app_totp.generate_current().to_string();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    confirm(&app, &signup, &wrong).await.problem(422);
    let r = confirm(&app, &signup, &code).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"verified": true})));
    // The secret is not in the audit log.
    let audit = app
        .get(&app.admin, &format!("/v1/audit?entity_id={signup}"))
        .await;
    assert!(!audit.body.to_string().contains("otpauth"));
}
