use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn signup(email: &str, ip: &str) -> Value {
    json!({
        "company": {"name": "Contoso Ltd", "domain": "contoso.co.uk", "country": "GB", "address": "1 High St, London"},
        "contact": {"email": email, "phone": "+442071838750", "name": "Ada"},
        "ip": ip,
        "device_id": format!("dev-{email}"),
        "payment_instrument": {"type": "bank_transfer"},
        "cloud_instance": "global",
        "locale": "en",
        "as_of": "2026-11-01T12:00:00Z",
    })
}

#[tokio::test]
async fn a_clean_signup_is_approved_and_becomes_a_customer_with_terms() {
    let app = spawn_app().await;
    let r = app
        .post(
            &app.admin,
            "/v1/signups/assess",
            &signup("ops@contoso.co.uk", "203.0.113.7"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["decision"], "approve");
    assert_eq!(r.body["score"], 0);
    assert_eq!(r.body["reasons"], json!([]));
    assert_eq!(
        r.body["credit"],
        json!({"limit": "5000.00", "currency": "USD", "prepayment_required": false})
    );
    assert_eq!(r.body["verification"]["mfa_required"], true);
    let skipped: Vec<&str> = r.body["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["signal"].as_str().unwrap())
        .collect();
    assert!(
        skipped.contains(&"ip_country_mismatch"),
        "no GeoIP database configured: {skipped:?}"
    );
    let customer_id = r.body["customer_id"]
        .as_str()
        .expect("customer created")
        .to_owned();
    let c = app
        .get(&app.admin, &format!("/v1/customers/{customer_id}"))
        .await;
    assert_eq!(c.body["name"], "Contoso Ltd");
    assert_eq!(c.body["credit"]["limit"], "5000.00");
    assert_eq!(c.body["admin_access"], "restricted");
    assert_eq!(c.body["signup_id"], r.body["assessment_id"]);

    let stored = app
        .get(
            &app.admin,
            &format!("/v1/signups/{}", r.body["assessment_id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(stored.body["status"], "approved");
    assert_eq!(stored.body["input"]["company"]["domain"], "contoso.co.uk");
}

#[tokio::test]
async fn prepaid_cards_are_rejected_and_create_nothing() {
    let app = spawn_app().await;
    let mut s = signup("ops@contoso.co.uk", "203.0.113.7");
    s["payment_instrument"] = json!({"type": "card", "bin": "40781234", "last4": "4242"});
    let r = app.post(&app.admin, "/v1/signups/assess", &s).await;
    assert_eq!(r.body["decision"], "reject", "{}", r.body);
    assert!(
        r.body["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["code"] == "card_prepaid")
    );
    assert_eq!(r.body["customer_id"], Value::Null);
    assert_eq!(r.body["credit"]["limit"], "0.00");
    assert_eq!(
        app.get(&app.admin, "/v1/customers").await.body["items"],
        json!([])
    );
}

#[tokio::test]
async fn review_queue_then_analyst_approval_creates_the_customer() {
    let app = spawn_app().await;
    // Free mail (10) + phone from another country (15) + card from another country (20) = 45: review.
    let mut s = signup("founder@gmail.com", "203.0.113.8");
    s["contact"]["phone"] = json!("+33142685300");
    s["payment_instrument"] = json!({"type": "card", "bin": "100100", "last4": "0001"});
    let r = app.post(&app.admin, "/v1/signups/assess", &s).await;
    assert_eq!(r.body["decision"], "review", "{}", r.body);
    assert_eq!(r.body["score"], 45);
    assert_eq!(r.body["status"], "pending_review");
    assert_eq!(r.body["customer_id"], Value::Null);
    let id = r.body["assessment_id"].as_str().unwrap().to_owned();

    let queue = app
        .get(
            &app.admin,
            "/v1/signups?decision=review&status=pending_review",
        )
        .await;
    let ids: Vec<&str> = queue.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["assessment_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);

    let analyst = app.token("default", riskdesk_domain::Role::Analyst).await;
    let done = app
        .post(
            &analyst,
            &format!("/v1/signups/{id}/review"),
            &json!({"decision": "approve", "note": "called +33 1 42 68 53 00, confirmed"}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["status"], "approved");
    let customer_id = done.body["customer_id"].as_str().unwrap();
    let c = app
        .get(&app.admin, &format!("/v1/customers/{customer_id}"))
        .await;
    assert_eq!(
        c.body["credit"],
        json!({"limit": "0.00", "currency": "USD", "prepayment_required": true})
    );
    // Reviewed once only; the queue is empty; the review is audited.
    app.post(
        &analyst,
        &format!("/v1/signups/{id}/review"),
        &json!({"decision": "reject"}),
    )
    .await
    .problem(409);
    assert_eq!(
        app.get(&app.admin, "/v1/signups?status=pending_review")
            .await
            .body["items"],
        json!([])
    );
    let audit = app
        .get(&app.admin, &format!("/v1/audit?entity_id={id}"))
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["signup.assess", "signup.review"]);
    assert_eq!(audit.body["items"][1]["actor"]["role"], "analyst");
}

#[tokio::test]
async fn bot_bursts_from_one_ip_are_counted_exactly_under_concurrency() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let client = app.client.clone();
        let url = format!("{}/v1/signups/assess", app.base);
        let token = app.admin.clone();
        let body = signup(&format!("user{i}@contoso.co.uk"), "198.51.100.23");
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }));
    }
    let mut fired = 0;
    for t in tasks {
        let body = t.await.unwrap();
        if body["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "velocity_ip")
        {
            fired += 1;
        }
    }
    // The limit is 3 per IP in 10 minutes: sign-ups 4, 5 and 6 exceed it, whatever the order.
    assert_eq!(fired, 3);
}

/// A sign-up at the current time (no `as_of`): counted by the server's in-memory velocity
/// book on SQLite, in storage on PostgreSQL.
fn signup_now(email: &str, ip: &str) -> Value {
    let mut b = signup(email, ip);
    b.as_object_mut().unwrap().remove("as_of");
    b
}

fn fired(body: &Value, code: &str) -> bool {
    body["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["code"] == code)
}

#[tokio::test]
async fn current_bursts_are_counted_exactly_under_concurrency() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let client = app.client.clone();
        let url = format!("{}/v1/signups/assess", app.base);
        let token = app.admin.clone();
        let body = signup_now(&format!("now{i}@contoso.co.uk"), "198.51.100.77");
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()
        }));
    }
    let mut n = 0;
    for t in tasks {
        if fired(&t.await.unwrap(), "velocity_ip") {
            n += 1;
        }
    }
    // 3 per IP in 10 minutes: sign-ups 4 to 8 exceed it, whatever the order.
    assert_eq!(n, 5);
}

#[tokio::test]
async fn velocity_survives_a_restart_and_replays_are_not_counted() {
    let app = spawn_app().await;
    let ip = "198.51.100.99";
    // One sign-up, then its idempotent replays: the replays are not new sign-ups.
    let first = signup_now("r0@contoso.co.uk", ip);
    for _ in 0..3 {
        let r = app
            .post_with_key(&app.admin, "/v1/signups/assess", "burst-0", &first)
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert!(!fired(&r.body, "velocity_ip"), "{}", r.body);
    }
    let r = app
        .post(
            &app.admin,
            "/v1/signups/assess",
            &signup_now("r1@contoso.co.uk", ip),
        )
        .await;
    assert!(!fired(&r.body, "velocity_ip"), "2nd sign-up: {}", r.body);
    // A new process over the same database sees the two stored sign-ups.
    let base = app.restarted().await;
    let mut codes = Vec::new();
    for i in 2..5 {
        let r = app
            .send(
                app.client
                    .post(format!("{base}/v1/signups/assess"))
                    .bearer_auth(&app.admin)
                    .json(&signup_now(&format!("r{i}@contoso.co.uk"), ip)),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        codes.push(fired(&r.body, "velocity_ip"));
    }
    // Sign-ups 3 (allowed), 4 and 5 (over 3 in 10 minutes).
    assert_eq!(codes, [false, true, true]);
}

#[tokio::test]
async fn marking_fraud_links_future_signups_and_flags_sharing_customers() {
    let app = spawn_app().await;
    let a = app
        .post(
            &app.admin,
            "/v1/signups/assess",
            &signup("a@contoso.co.uk", "203.0.113.10"),
        )
        .await;
    let mut b_body = signup("b@contoso.co.uk", "203.0.113.11");
    b_body["device_id"] = json!("dev-a@contoso.co.uk"); // the same device as A
    let b = app.post(&app.admin, "/v1/signups/assess", &b_body).await;
    let a_customer = a.body["customer_id"].as_str().unwrap().to_owned();
    let b_customer = b.body["customer_id"].as_str().unwrap().to_owned();

    let r = app
        .post(
            &app.admin,
            &format!("/v1/customers/{a_customer}/fraud"),
            &json!({"note": "chargeback: stolen card"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["customer"]["risk_status"], "fraudulent");
    let linked: Vec<&str> = r.body["linked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["customer_id"].as_str().unwrap())
        .collect();
    assert!(linked.contains(&b_customer.as_str()), "{}", r.body);
    assert_eq!(
        app.get(&app.admin, &format!("/v1/customers/{b_customer}"))
            .await
            .body["risk_status"],
        "review"
    );

    // A new sign-up from A's phone is linked to fraud and held for review.
    let c = app
        .post(
            &app.admin,
            "/v1/signups/assess",
            &signup("c@contoso.co.uk", "203.0.113.12"),
        )
        .await;
    let codes: Vec<&str> = c.body["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"linked_to_fraud"), "{codes:?}");
    assert_ne!(c.body["decision"], "approve");
}

#[tokio::test]
async fn malformed_signups_name_the_field() {
    let app = spawn_app().await;
    let mut s = signup("not-an-email", "999.1.1.1");
    s["payment_instrument"] = json!({"type": "card", "bin": "12ab", "last4": "42"});
    s["contact"]["phone"] = json!("call me");
    s["company"]["country"] = json!("XX");
    s["as_of"] = json!("yesterday");
    let r = app.post(&app.admin, "/v1/signups/assess", &s).await;
    r.problem(422);
    let mut f = r.fields();
    f.sort();
    assert_eq!(
        f,
        [
            "as_of",
            "company.country",
            "contact.email",
            "contact.phone",
            "ip",
            "payment_instrument.bin",
            "payment_instrument.last4"
        ]
    );
    let mut s = signup("a@contoso.co.uk", "203.0.113.7");
    s["company"]["vat"] = json!("GB123");
    let r = app.post(&app.admin, "/v1/signups/assess", &s).await;
    assert!(r.problem(422)["detail"].as_str().unwrap().contains("vat"));
}

#[tokio::test]
async fn an_unreachable_verification_provider_holds_the_signup_for_review() {
    use riskdesk_connectors::verification::{VerificationClient, VerificationSettings};
    let verifier = VerificationClient::new(VerificationSettings {
        url: "http://127.0.0.1:9".into(),
        api_key: "k".into(),
        timeout_ms: 200,
        retries: 1,
        backoff_ms: 5,
        breaker_failures: 5,
        breaker_open_seconds: 30,
    })
    .unwrap();
    let opts = riskdesk_http::ServerOptions {
        verifier: Some(std::sync::Arc::new(verifier)),
        ..Default::default()
    };
    let app = crate::helpers::spawn_app_with(opts).await;
    let r = app
        .post(
            &app.admin,
            "/v1/signups/assess",
            &signup("ops@contoso.co.uk", "203.0.113.7"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["score"], 0);
    assert_eq!(
        r.body["decision"], "review",
        "never a silent approve: {}",
        r.body
    );
    assert!(
        r.body["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["signal"] == "identity_unverified"
                && s["why"].as_str().unwrap().contains("did not answer"))
    );
}
