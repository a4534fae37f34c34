//! Receivables, prepaid balance, exposure and aging — over HTTP.

use serde_json::{Value, json};

use crate::helpers::{TestApp, customer_body, spawn_app};

pub async fn customer(app: &TestApp, instance: &str) -> String {
    let mut b = customer_body("Fabrikam");
    b["cloud_instance"] = json!(instance);
    app.create_customer(&app.admin, b).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn invoice(
    app: &TestApp,
    c: &str,
    number: &str,
    issue: &str,
    due: &str,
    total: &str,
) -> Value {
    let r = app
        .post(
            &app.admin,
            "/v1/invoices",
            &json!({"customer_id": c, "number": number, "issue_date": issue, "due_date": due, "currency": "EUR",
                    "lines": [{"description": "Azure plan usage", "amount": total}], "total": total}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

/// `GET /v1/customers/{c}/balance{query}` (200), its body.
async fn balance(app: &TestApp, c: &str, query: &str) -> Value {
    let r = app
        .get(&app.admin, &format!("/v1/customers/{c}/balance{query}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

pub async fn pay(app: &TestApp, c: &str, amount: &str, at: &str, invoice: Option<&str>) -> Value {
    let mut b = json!({"customer_id": c, "amount": amount, "currency": "EUR", "received_at": at});
    if let Some(i) = invoice {
        b["invoice_id"] = json!(i);
    }
    let r = app.post(&app.admin, "/v1/payments", &b).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

pub async fn get_invoice(app: &TestApp, id: &Value) -> Value {
    app.get(
        &app.admin,
        &format!("/v1/invoices/{}", id.as_str().unwrap()),
    )
    .await
    .body
}

#[tokio::test]
async fn payments_go_to_the_oldest_due_invoice_first_and_the_rest_to_the_balance() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let newer = invoice(&app, &c, "INV-2", "2026-11-20", "2026-12-10", "50.00").await;
    let older = invoice(&app, &c, "INV-1", "2026-11-01", "2026-12-01", "100.00").await;
    assert_eq!(older["open_amount"], "100.00");

    let p = pay(&app, &c, "120.00", "2026-12-02T09:00:00Z", None).await;
    let alloc: Vec<(String, String)> = p["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["invoice_number"].as_str().unwrap().to_owned(),
                a["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        alloc,
        [
            ("INV-1".to_owned(), "100.00".to_owned()),
            ("INV-2".to_owned(), "20.00".to_owned())
        ]
    );
    assert_eq!(p["to_balance"], "0.00");
    assert_eq!(get_invoice(&app, &older["id"]).await["status"], "settled");
    let n = get_invoice(&app, &newer["id"]).await;
    assert_eq!(
        (n["status"].as_str(), n["open_amount"].as_str()),
        (Some("open"), Some("30.00"))
    );
    assert_eq!(n["entries"][0]["amount"], "-20.00");

    // Over-payment: 10.00 is left on the prepaid balance, and the next invoice draws it.
    let p = pay(
        &app,
        &c,
        "40.00",
        "2026-12-03T09:00:00Z",
        Some(newer["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(p["to_balance"], "10.00");
    assert_eq!(
        balance(&app, &c, "?as_of=2026-12-04").await["balances"],
        json!([{"currency": "EUR", "amount": "10.00"}])
    );
    let third = invoice(&app, &c, "INV-3", "2026-12-05", "2026-12-20", "25.00").await;
    assert_eq!(third["open_amount"], "15.00");
    // The draw is dated when the invoice is issued, or when it is recorded if that is later
    // (a balance is never drawn before the invoice existed).
    let bal = balance(&app, &c, "").await;
    assert_eq!(
        bal["balances"],
        json!([{"currency": "EUR", "amount": "0.00"}])
    );
    let draw = bal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "invoice_draw")
        .expect("the invoice drew the balance")
        .clone();
    assert_eq!(
        (draw["amount"].as_str(), draw["source_id"].as_str()),
        (Some("-10.00"), third["id"].as_str())
    );
    let drawn_at: jiff::Timestamp = draw["at"].as_str().unwrap().parse().unwrap();
    assert!(
        drawn_at >= "2026-12-05T00:00:00Z".parse().unwrap(),
        "drawn at {drawn_at}, before the invoice's issue day"
    );
    // `as_of` is exclusive: the balance as of an instant counts what happened before it.
    let just_after = drawn_at + jiff::SignedDuration::from_micros(1);
    for (as_of, left) in [(drawn_at, "10.00"), (just_after, "0.00")] {
        assert_eq!(
            balance(&app, &c, &format!("?as_of={as_of}")).await["balances"],
            json!([{"currency": "EUR", "amount": left}]),
            "as of {as_of}"
        );
    }
    // The first payment is on the customer (it lifts the admin-access condition).
    let cust = app.get(&app.admin, &format!("/v1/customers/{c}")).await;
    assert_eq!(cust.body["first_payment_at"], "2026-12-02T09:00:00Z");
}

#[tokio::test]
async fn bad_invoices_and_payments_are_refused_field_by_field() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let r = app
        .post(
            &app.admin,
            "/v1/invoices",
            &json!({"customer_id": c, "number": "", "issue_date": "2026-12-01", "due_date": "2026-11-01", "currency": "EUR",
                    "lines": [{"description": "a", "amount": "10.001"}, {"description": "b", "amount": "5"}], "total": "20"}),
        )
        .await;
    r.problem(422);
    assert_eq!(r.fields(), ["number", "due_date", "lines[0].amount"]);
    let r = app
        .post(
            &app.admin,
            "/v1/invoices",
            &json!({"customer_id": c, "number": "X", "issue_date": "2026-12-01", "due_date": "2026-12-31", "currency": "EUR",
                    "lines": [{"description": "a", "amount": "10"}], "total": "20"}),
        )
        .await;
    assert!(
        r.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("the lines add up to 10.00")
    );
    invoice(&app, &c, "DUP", "2026-12-01", "2026-12-31", "10").await;
    let r = app
        .post(
            &app.admin,
            "/v1/invoices",
            &json!({"customer_id": c, "number": "DUP", "issue_date": "2026-12-01", "due_date": "2026-12-31", "currency": "EUR",
                    "lines": [{"description": "a", "amount": "10"}], "total": "10"}),
        )
        .await;
    r.problem(409);
    let r = app
        .post(
            &app.admin,
            "/v1/payments",
            &json!({"customer_id": c, "amount": "-5", "currency": "EURO", "received_at": "yesterday"}),
        )
        .await;
    r.problem(422);
    assert_eq!(r.fields(), ["currency", "received_at"]);
}

#[tokio::test]
async fn a_chargeback_reopens_what_the_payment_paid() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let inv = invoice(&app, &c, "INV-1", "2026-11-01", "2026-12-01", "100.00").await;
    let p = pay(&app, &c, "130.00", "2026-11-20T09:00:00Z", None).await;
    assert_eq!(get_invoice(&app, &inv["id"]).await["status"], "settled");
    let path = format!("/v1/payments/{}/chargeback", p["id"].as_str().unwrap());
    let r = app
        .post(
            &app.admin,
            &path,
            &json!({"reason": "card issuer dispute 4837"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "charged_back");
    let i = get_invoice(&app, &inv["id"]).await;
    assert_eq!(
        (i["status"].as_str(), i["open_amount"].as_str()),
        (Some("open"), Some("100.00"))
    );
    // The 30.00 it left on the balance is taken back too.
    let bal = app
        .get(&app.admin, &format!("/v1/customers/{c}/balance"))
        .await;
    assert_eq!(
        bal.body["balances"],
        json!([{"currency": "EUR", "amount": "0.00"}])
    );
    app.post(&app.admin, &path, &json!({"reason": "again"}))
        .await
        .problem(409);
    let audit = app
        .get(
            &app.admin,
            &format!("/v1/audit?entity_id={}", p["id"].as_str().unwrap()),
        )
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["payment.receive", "payment.chargeback"]);
}

#[tokio::test]
async fn credit_notes_write_offs_and_refunds_keep_the_books_exact() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let inv = invoice(&app, &c, "INV-1", "2026-11-01", "2026-12-01", "100.00").await;
    let path = |what: &str| format!("/v1/invoices/{}/{what}", inv["id"].as_str().unwrap());
    let r = app
        .post(
            &app.admin,
            &path("credit-notes"),
            &json!({"amount": "30.00", "reason": "duplicated_charge"}),
        )
        .await;
    assert_eq!(r.body["open_amount"], "70.00", "{}", r.body);
    let r = app
        .post(
            &app.admin,
            &path("credit-notes"),
            &json!({"amount": "80.00", "reason": "too much"}),
        )
        .await;
    assert!(
        r.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("would exceed its total of 100.00")
    );
    pay(&app, &c, "70.00", "2026-11-20T09:00:00Z", None).await;
    // The invoice is paid: a further credit goes to the prepaid balance, which can be refunded.
    let r = app
        .post(
            &app.admin,
            &path("credit-notes"),
            &json!({"amount": "20.00", "reason": "goodwill"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let bal = app
        .get(&app.admin, &format!("/v1/customers/{c}/balance"))
        .await;
    assert_eq!(
        bal.body["balances"],
        json!([{"currency": "EUR", "amount": "20.00"}])
    );
    let refund = format!("/v1/customers/{c}/balance/refunds");
    app.post(
        &app.admin,
        &refund,
        &json!({"amount": "25.00", "currency": "EUR", "reason": "r"}),
    )
    .await
    .problem(409);
    let r = app
        .post(
            &app.admin,
            &refund,
            &json!({"amount": "20.00", "currency": "EUR", "reason": "customer left"}),
        )
        .await;
    assert_eq!(r.body["balance_after"], "0.00", "{}", r.body);
    // Write-off of what is open on another invoice.
    let other = invoice(&app, &c, "INV-2", "2026-11-01", "2026-12-01", "40.00").await;
    let w = format!("/v1/invoices/{}/write-off", other["id"].as_str().unwrap());
    let r = app
        .post(&app.admin, &w, &json!({"reason": "uncollectible"}))
        .await;
    assert_eq!(
        (r.body["status"].as_str(), r.body["open_amount"].as_str()),
        (Some("settled"), Some("0.00"))
    );
    app.post(&app.admin, &w, &json!({"reason": "again"}))
        .await
        .problem(409);
}

#[tokio::test]
async fn aging_buckets_by_due_date_per_currency_and_reproduces_a_past_day() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    invoice(&app, &c, "A", "2026-08-01", "2026-08-31", "100.00").await; // 91 days past on Nov 30
    invoice(&app, &c, "B", "2026-10-01", "2026-10-31", "50.00").await; // 30 days
    invoice(&app, &c, "C", "2026-11-20", "2026-12-20", "25.00").await; // current
    pay(&app, &c, "60.00", "2026-12-05T10:00:00Z", None).await; // pays A partly, after Nov 30
    let r = app
        .get(&app.admin, "/v1/reports/aging?as_of=2026-11-30")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["buckets"],
        json!(["current", "1-30", "31-60", "61-90", "90+"])
    );
    // The day asked for, not the instant that ends it.
    assert_eq!(r.body["as_of"], "2026-11-30");
    assert_eq!(
        r.body["totals"][0]["amounts"],
        json!(["25.00", "50.00", "0.00", "0.00", "100.00"])
    );
    assert_eq!(r.body["customers"][0]["customer_name"], "Fabrikam");
    // After the payment, A has 40.00 open and has aged further.
    let r = app
        .get(&app.admin, "/v1/reports/aging?as_of=2026-12-06")
        .await;
    assert_eq!(
        r.body["totals"][0]["amounts"],
        json!(["25.00", "0.00", "50.00", "0.00", "40.00"])
    );
    let r = app
        .get(
            &app.admin,
            "/v1/reports/aging?as_of=2026-11-30&basis=issue_date&buckets=60,120",
        )
        .await;
    assert_eq!(
        r.body["buckets"],
        json!(["current", "1-60", "61-120", "120+"])
    );
    assert_eq!(
        r.body["totals"][0]["amounts"],
        json!(["0.00", "75.00", "0.00", "100.00"])
    );
    app.get(&app.admin, "/v1/reports/aging?basis=month")
        .await
        .problem(422);
    app.get(&app.admin, "/v1/reports/aging?buckets=30,10")
        .await
        .problem(422);
}

#[tokio::test]
async fn exposure_is_unbilled_usage_plus_unpaid_invoices_minus_the_prepaid_balance() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    invoice(&app, &c, "INV-1", "2026-11-01", "2026-12-01", "100.00").await;
    let r = app
        .post(
            &app.admin,
            "/v1/events",
            &json!([{"type": "usage", "event_id": "u-1", "customer_id": c, "time": "2026-11-05T10:00:00Z",
                     "meter_category": "Virtual Machines", "meter_name": "D4s v5", "region": "westeurope",
                     "quantity": 1, "unit": "Hours", "cost": "30.004", "currency": "EUR"},
                    {"type": "usage", "event_id": "u-0", "customer_id": c, "time": "2026-10-20T10:00:00Z",
                     "meter_category": "Virtual Machines", "meter_name": "D4s v5", "region": "westeurope",
                     "quantity": 1, "unit": "Hours", "cost": "999", "currency": "EUR"}]),
        )
        .await;
    assert_eq!(r.body["accepted"], 2, "{}", r.body);
    let r = app
        .post(
            &app.admin,
            &format!("/v1/customers/{c}/balance/top-ups"),
            &json!({"amount": "50.00", "currency": "EUR", "received_at": "2026-11-10T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let e = app
        .get(
            &app.admin,
            &format!("/v1/customers/{c}/exposure?as_of=2026-11-30"),
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.body);
    // Usage before the last invoice's issue date is billed already; 30.004 rounds to 30.00.
    assert_eq!(
        e.body["lines"],
        json!([{"currency": "EUR", "unbilled": "30.00", "unpaid": "100.00", "prepaid": "50.00", "exposure": "80.00"}])
    );
    assert_eq!(e.body["exposure"], "80.00");
    // Before the top-up, nothing was prepaid.
    let e = app
        .get(
            &app.admin,
            &format!("/v1/customers/{c}/exposure?as_of=2026-11-09"),
        )
        .await;
    assert_eq!(e.body["exposure"], "130.00");
    let rep = app
        .get(&app.admin, "/v1/reports/exposure?as_of=2026-11-30")
        .await;
    assert_eq!(rep.body["customers_with_exposure"], 1);
    assert_eq!(
        rep.body["totals"],
        json!([{"currency": "EUR", "amount": "80.00"}])
    );
}

#[tokio::test]
async fn prepaid_and_stored_value_cards_cannot_be_registered() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let path = format!("/v1/customers/{c}/payment-instruments");
    let r = app
        .post(
            &app.admin,
            &path,
            &json!({"type": "card", "bin": "40781234", "last4": "4242"}),
        )
        .await;
    assert!(
        r.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("prepaid")
    );
    let r = app
        .post(&app.admin, &path, &json!({"type": "bank_transfer"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let list = app.get(&app.admin, &path).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn exposure_over_the_credit_limit_raises_one_alert_a_day() {
    let app = spawn_app().await;
    let signup = json!({
        "company": {"name": "Contoso Ltd", "domain": "contoso.co.uk", "country": "GB", "address": "1 High St, London"},
        "contact": {"email": "ops@contoso.co.uk", "phone": "+442071838750", "name": "Ada"},
        "ip": "203.0.113.7", "device_id": "dev-1", "payment_instrument": {"type": "bank_transfer"},
        "cloud_instance": "global", "locale": "en", "as_of": "2026-11-01T12:00:00Z",
    });
    let r = app.post(&app.admin, "/v1/signups/assess", &signup).await;
    assert_eq!(r.body["decision"], "approve", "{}", r.body);
    let c = r.body["customer_id"].as_str().unwrap().to_owned();
    let limit = r.body["credit"]["limit"].as_str().unwrap().to_owned();
    let cur = r.body["credit"]["currency"].as_str().unwrap().to_owned();
    let limit_units: i64 = limit.split('.').next().unwrap().parse().unwrap();
    let inv = |n: &str, total: String| {
        json!({"customer_id": c, "number": n, "issue_date": "2026-11-01", "due_date": "2026-11-30", "currency": cur,
               "lines": [{"description": "usage", "amount": total}], "total": total})
    };
    // At the limit: no alert.
    let r = app
        .post(
            &app.admin,
            "/v1/invoices",
            &inv("L-1", format!("{limit_units}")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let alerts = app
        .get(&app.admin, "/v1/alerts?rule=credit_limit.exceeded")
        .await;
    assert_eq!(alerts.body["items"], json!([]), "{}", alerts.body);
    // Over it: one alert with the figures; a second invoice the same day folds into it.
    app.post(&app.admin, "/v1/invoices", &inv("L-2", "10".into()))
        .await;
    app.post(&app.admin, "/v1/invoices", &inv("L-3", "5".into()))
        .await;
    let alerts = app
        .get(&app.admin, "/v1/alerts?rule=credit_limit.exceeded")
        .await;
    let items = alerts.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", alerts.body);
    assert_eq!(items[0]["count"], 2);
    assert_eq!(items[0]["severity"], "high");
    let one = app
        .get(
            &app.admin,
            &format!("/v1/alerts/{}", items[0]["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(one.body["evidence"]["credit_limit"], json!(limit));
    let e = app
        .get(&app.admin, &format!("/v1/customers/{c}/exposure"))
        .await;
    assert_eq!(e.body["over_limit"], true, "{}", e.body);
}

async fn put_terms(app: &TestApp, c: &str, body: Value) -> crate::helpers::Resp {
    app.put(
        &app.admin,
        &format!("/v1/customers/{c}/credit-terms"),
        &body,
    )
    .await
}

#[tokio::test]
async fn with_prepayment_required_new_subscriptions_wait_until_the_balance_covers_them() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let r = put_terms(
        &app,
        &c,
        json!({"limit": "0", "currency": "EUR", "prepayment_required": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["customer"]["credit"]["prepayment_required"], true);
    let subs = format!("/v1/customers/{c}/subscriptions");
    // The price of the first period is required for such a customer.
    let r = app
        .post(&app.admin, &subs, &json!({"offer": "Azure plan"}))
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "first_period_amount");
    let a = app
        .post(
            &app.admin,
            &subs,
            &json!({"offer": "Azure plan", "first_period_amount": "300.00", "currency": "EUR"}),
        )
        .await;
    assert_eq!(a.body["status"], "pending_payment", "{}", a.body);
    let b = app
        .post(
            &app.admin,
            &subs,
            &json!({"offer": "M365 E3", "first_period_amount": "100.00", "currency": "EUR"}),
        )
        .await;
    assert_eq!(b.body["status"], "pending_payment");
    // Waiting subscriptions cannot be suspended or reactivated, only cancelled.
    let r = app
        .act(
            &app.admin,
            a.body["id"].as_str().unwrap(),
            "reactivate",
            "resolved",
        )
        .await;
    assert!(
        r.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("waits for its prepayment")
    );
    let top_up = format!("/v1/customers/{c}/balance/top-ups");
    // 250 covers neither the oldest (300) nor — in order — the next one.
    app.post(
        &app.admin,
        &top_up,
        &json!({"amount": "250.00", "currency": "EUR"}),
    )
    .await;
    let sub = |v: &Value| format!("/v1/subscriptions/{}", v["id"].as_str().unwrap());
    assert_eq!(
        app.get(&app.admin, &sub(&a.body)).await.body["status"],
        "pending_payment"
    );
    app.post(
        &app.admin,
        &top_up,
        &json!({"amount": "150.00", "currency": "EUR"}),
    )
    .await;
    let got = app.get(&app.admin, &sub(&a.body)).await;
    assert_eq!(got.body["status"], "active");
    assert_eq!(
        got.body["history"].as_array().unwrap().last().unwrap()["action"],
        "subscription.activate"
    );
    assert_eq!(
        app.get(&app.admin, &sub(&b.body)).await.body["status"],
        "active"
    );
    // The first payment lifted the admin-access payment condition.
    assert!(
        app.get(&app.admin, &format!("/v1/customers/{c}"))
            .await
            .body["first_payment_at"]
            .is_string()
    );
}

#[tokio::test]
async fn a_credit_limit_breach_can_suspend_automatically_or_only_propose_it() {
    let app = spawn_app().await;
    let auto = customer(&app, "global").await;
    let manual = customer(&app, "global").await;
    let s_auto = app.create_subscription(&app.admin, &auto).await;
    let s_manual = app.create_subscription(&app.admin, &manual).await;
    for (c, mode) in [(&auto, "auto"), (&manual, "require_approval")] {
        let r = put_terms(
            &app,
            c,
            json!({"limit": "100.00", "currency": "EUR", "prepayment_required": false,
                   "on_breach": {"action": "suspend", "mode": mode}}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        invoice(
            &app,
            c,
            &format!("OVER-{mode}"),
            "2026-11-01",
            "2026-11-30",
            "150.00",
        )
        .await;
    }
    let status = |s: &Value| format!("/v1/subscriptions/{}", s["id"].as_str().unwrap());
    assert_eq!(
        app.get(&app.admin, &status(&s_auto)).await.body["status"],
        "suspended"
    );
    assert_eq!(
        app.get(&app.admin, &status(&s_manual)).await.body["status"],
        "active"
    );
    let alerts = app
        .get(
            &app.admin,
            &format!("/v1/alerts?rule=credit_limit.exceeded&customer_id={manual}"),
        )
        .await;
    let id = alerts.body["items"][0]["id"].as_str().unwrap().to_owned();
    let one = app.get(&app.admin, &format!("/v1/alerts/{id}")).await;
    assert_eq!(
        one.body["evidence"]["enforcement"],
        json!({"action": "suspend", "mode": "require_approval", "applied": false, "subscriptions_acted_on": []})
    );
    let bad = put_terms(
        &app,
        &auto,
        json!({"limit": "-1", "currency": "EUR", "prepayment_required": false,
                                             "on_breach": {"action": "cancel", "mode": "later"}}),
    )
    .await;
    bad.problem(422);
    assert_eq!(
        bad.fields(),
        ["limit", "on_breach.action", "on_breach.mode"]
    );
}

#[tokio::test]
async fn over_the_limit_new_purchases_are_refused_until_exposure_drops() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let r = put_terms(&app, &c, json!({"limit": "100.00", "currency": "EUR", "prepayment_required": false,
                                        "on_breach": {"action": "block_new_purchases", "mode": "auto"}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let subs = format!("/v1/customers/{c}/subscriptions");
    assert_eq!(
        app.post(&app.admin, &subs, &json!({"offer": "Azure plan"}))
            .await
            .status,
        201
    );
    invoice(&app, &c, "INV-1", "2026-11-01", "2026-11-30", "150.00").await;
    let r = app
        .post(&app.admin, &subs, &json!({"offer": "Azure plan"}))
        .await;
    assert!(
        r.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("exposure 150.00 EUR is over the credit limit of 100.00 EUR")
    );
    pay(&app, &c, "60.00", "2026-11-10T10:00:00Z", None).await;
    assert_eq!(
        app.post(&app.admin, &subs, &json!({"offer": "Azure plan"}))
            .await
            .status,
        201
    );
}
