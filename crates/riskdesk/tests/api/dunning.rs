//! The dunning ladder over simulated months (days passed as `as_of`), notices by email to a
//! real local SMTP sink and by signed webhooks, the collections policy document.

use std::sync::{Arc, Mutex};

use riskdesk_http::ServerOptions;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::billing::{customer, invoice, pay};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn run(app: &TestApp, day: &str) -> Value {
    let r = app
        .post(
            &app.admin,
            &format!("/v1/dunning/run?as_of={day}"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Runs every day from `from` for `days` days.
async fn run_daily(app: &TestApp, from: &str, days: i32) {
    let start: jiff::civil::Date = from.parse().unwrap();
    for i in 0..days {
        let d = start.checked_add(jiff::Span::new().days(i)).unwrap();
        run(app, &d.to_string()).await;
    }
}

/// (step, day) sent for one invoice, in the order sent.
async fn steps(app: &TestApp, c: &str, invoice: &Value) -> Vec<(String, String)> {
    let d = app
        .get(&app.admin, &format!("/v1/customers/{c}/dunning"))
        .await;
    assert_eq!(d.status, 200, "{}", d.body);
    d.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["invoice_id"] == invoice["id"])
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_owned(),
                s["day"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn names(s: &[(String, String)]) -> Vec<&str> {
    s.iter().map(|x| x.0.as_str()).collect()
}

async fn sub_status(app: &TestApp, sub: &Value) -> String {
    app.get(
        &app.admin,
        &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap()),
    )
    .await
    .body["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn paid_on_time_gets_only_the_reminder() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let inv = invoice(&app, &c, "INV-1", "2026-11-10", "2026-12-10", "100.00").await;
    run_daily(&app, "2026-12-01", 8).await; // Dec 1..8
    pay(&app, &c, "100.00", "2026-12-09T10:00:00Z", None).await;
    run_daily(&app, "2026-12-09", 30).await;
    assert_eq!(
        steps(&app, &c, &inv).await,
        [("reminder".to_owned(), "2026-12-07".to_owned())]
    );
}

#[tokio::test]
async fn paid_late_inside_the_grace_period_gets_notices_but_no_lever() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let sub = app.create_subscription(&app.admin, &c).await;
    let inv = invoice(&app, &c, "INV-1", "2026-11-10", "2026-12-10", "100.00").await;
    run_daily(&app, "2026-12-05", 10).await; // through Dec 14
    pay(&app, &c, "100.00", "2026-12-15T10:00:00Z", None).await;
    run_daily(&app, "2026-12-15", 20).await;
    assert_eq!(names(&steps(&app, &c, &inv).await), ["reminder", "overdue"]);
    assert_eq!(sub_status(&app, &sub).await, "active");
}

#[tokio::test]
async fn a_missed_week_is_caught_up_in_order_and_paying_up_undoes_the_levers() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let sub = app.create_subscription(&app.admin, &c).await;
    let inv = invoice(&app, &c, "INV-1", "2026-11-01", "2026-12-01", "100.00").await;
    // The scheduler was down until Dec 20: the skipped notices go out, the warning waits
    // for the overdue notice to have been out 5 days.
    let r = run(&app, "2026-12-20").await;
    assert_eq!(r["steps"], 2, "{r}");
    assert_eq!(names(&steps(&app, &c, &inv).await), ["reminder", "overdue"]);
    // Running the same day again does nothing new.
    assert_eq!(run(&app, "2026-12-20").await["steps"], 0);
    run_daily(&app, "2026-12-21", 10).await; // through Dec 30
    let s = steps(&app, &c, &inv).await;
    assert_eq!(
        s.iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect::<Vec<_>>(),
        [
            ("reminder", "2026-12-20"),
            ("overdue", "2026-12-20"),
            ("warning", "2026-12-25"),
            ("access_disabled", "2026-12-30")
        ]
    );
    assert_eq!(sub_status(&app, &sub).await, "disabled");
    let cust = app.get(&app.admin, &format!("/v1/customers/{c}")).await;
    assert_eq!(cust.body["purchases_blocked"], true);
    app.post(
        &app.admin,
        &format!("/v1/customers/{c}/subscriptions"),
        &json!({"offer": "Azure plan", "quantity": 1}),
    )
    .await
    .problem(409);
    // Partial payment: still unpaid, nothing changes.
    pay(&app, &c, "40.00", "2026-12-31T10:00:00Z", None).await;
    assert_eq!(sub_status(&app, &sub).await, "disabled");
    // Paid up: access comes back at once, purchases are unblocked.
    pay(&app, &c, "60.00", "2026-12-31T11:00:00Z", None).await;
    assert_eq!(sub_status(&app, &sub).await, "active");
    let cust = app.get(&app.admin, &format!("/v1/customers/{c}")).await;
    assert_eq!(cust.body["purchases_blocked"], false);
    let d = app
        .get(&app.admin, &format!("/v1/customers/{c}/dunning"))
        .await;
    assert_eq!(d.body["levers"], json!([]));
    // Every step and lever is in the audit log.
    let a = app
        .get(
            &app.admin,
            &format!("/v1/audit?entity_id={}", sub["id"].as_str().unwrap()),
        )
        .await;
    let acts: Vec<&str> = a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        acts,
        [
            "subscription.create",
            "subscription.disable_access",
            "subscription.reactivate"
        ]
    );
}

#[tokio::test]
async fn the_oldest_invoice_paid_the_newer_one_still_gets_its_warning_before_any_lever() {
    // Kill Bill #2297: paying the earliest unpaid invoice must not let the next one skip its
    // warning.
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let sub = app.create_subscription(&app.admin, &c).await;
    let a = invoice(&app, &c, "A", "2027-02-01", "2027-03-01", "100.00").await;
    let b = invoice(&app, &c, "B", "2027-02-06", "2027-03-06", "100.00").await;
    run_daily(&app, "2027-02-25", 12).await; // through Mar 8
    pay(
        &app,
        &c,
        "100.00",
        "2027-03-09T10:00:00Z",
        Some(a["id"].as_str().unwrap()),
    )
    .await;
    run_daily(&app, "2027-03-09", 20).await; // through Mar 28
    assert_eq!(
        names(&steps(&app, &c, &a).await),
        ["reminder", "overdue", "warning"]
    );
    let sb = steps(&app, &c, &b).await;
    assert_eq!(
        sb.iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect::<Vec<_>>(),
        [
            ("reminder", "2027-03-03"),
            ("overdue", "2027-03-07"),
            ("warning", "2027-03-13"),
            ("access_disabled", "2027-03-21")
        ]
    );
    assert_eq!(sub_status(&app, &sub).await, "disabled");
}

#[tokio::test]
async fn a_dispute_pauses_the_invoice_and_enforcement_off_sends_notices_only() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let sub = app.create_subscription(&app.admin, &c).await;
    let inv = invoice(&app, &c, "INV-1", "2026-11-01", "2026-12-01", "100.00").await;
    let dispute = format!("/v1/invoices/{}/dispute", inv["id"].as_str().unwrap());
    let r = app
        .post(
            &app.admin,
            &dispute,
            &json!({"open": true, "reason": "customer disputes usage"}),
        )
        .await;
    assert_eq!(r.body["disputed"], true, "{}", r.body);
    run_daily(&app, "2026-11-25", 30).await;
    assert_eq!(steps(&app, &c, &inv).await, []);
    // Dispute closed, customer set to enforcement off: notices resume, no lever.
    app.post(
        &app.admin,
        &dispute,
        &json!({"open": false, "reason": "usage confirmed"}),
    )
    .await;
    let r = app
        .put(
            &app.admin,
            &format!("/v1/customers/{c}/dunning"),
            &json!({"enforcement_off": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    run_daily(&app, "2026-12-25", 40).await;
    assert_eq!(
        names(&steps(&app, &c, &inv).await),
        [
            "reminder",
            "overdue",
            "warning",
            "access_disabled",
            "suspended",
            "cancelled"
        ]
    );
    assert_eq!(sub_status(&app, &sub).await, "active");
    let cust = app.get(&app.admin, &format!("/v1/customers/{c}")).await;
    assert_eq!(cust.body["purchases_blocked"], false);
}

#[tokio::test]
async fn twenty_one_vianet_ends_at_blocked_access_and_global_cancels() {
    let app = spawn_app().await;
    let china = customer(&app, "china_21vianet").await;
    let global = customer(&app, "global").await;
    let s_china = app.create_subscription(&app.admin, &china).await;
    let s_global = app.create_subscription(&app.admin, &global).await;
    invoice(&app, &china, "CN-1", "2026-10-01", "2026-11-01", "100.00").await;
    invoice(&app, &global, "GL-1", "2026-10-01", "2026-11-01", "100.00").await;
    run_daily(&app, "2026-10-29", 70).await;
    assert_eq!(sub_status(&app, &s_china).await, "disabled");
    assert_eq!(sub_status(&app, &s_global).await, "cancelled");
    // The 21Vianet customer's policy document says so, in its language.
    let doc = app
        .send(
            app.client
                .get(format!(
                    "{}/v1/customers/{china}/collections-policy?format=text&locale=zh-CN",
                    app.base
                ))
                .bearer_auth(&app.admin),
        )
        .await;
    assert_eq!(doc.status, 200);
}

#[tokio::test]
async fn the_collections_policy_document_is_the_ladder_in_the_customers_language() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await; // locale fr-FR
    let r = app
        .client
        .get(format!(
            "{}/v1/customers/{c}/collections-policy?format=text",
            app.base
        ))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.headers()["content-language"], "fr-FR");
    let text = r.text().await.unwrap();
    assert!(text.starts_with("Politique de recouvrement"), "{text}");
    assert!(text.contains("4. 15 jours après l’échéance : un avis de blocage de l’accès. L’accès à vos abonnements est bloqué."), "{text}");
    // A changed ladder changes the document.
    let mut p = app.get(&app.admin, "/v1/dunning/policy").await.body["policy"].clone();
    p["steps"][3]["offset_days"] = json!(20);
    let put = app.put(&app.admin, "/v1/dunning/policy", &p).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let html = app
        .client
        .get(format!("{}/v1/customers/{c}/collections-policy", app.base))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<li>20 jours après l’échéance"), "{html}");
    // A bad ladder is refused with every problem named.
    p["steps"][1]["offset_days"] = json!(-10);
    p["steps"][2]["notice"] = json!("shout");
    let bad = app.put(&app.admin, "/v1/dunning/policy", &p).await;
    bad.problem(422);
    assert_eq!(bad.fields(), ["steps[1].offset_days", "steps[2].notice"]);
}

/// A minimal SMTP server that keeps every message it receives.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 sink ESMTP\r\n").await.ok();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line == "." {
                            store.lock().unwrap().push(data.take().unwrap());
                            w.write_all(b"250 queued\r\n").await.ok();
                        } else {
                            d.push_str(&line);
                            d.push('\n');
                        }
                        continue;
                    }
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        b"250 sink\r\n"
                    } else if cmd.starts_with("DATA") {
                        data = Some(String::new());
                        b"354 go ahead\r\n"
                    } else if cmd.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.ok();
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).await.ok();
                }
            });
        }
    });
    (port, got)
}

/// A partner endpoint that records (signature header, event id, body).
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<(String, String, String)>>>) {
    use axum::{Router, body::Bytes, http::HeaderMap, routing::post};
    let got: Arc<Mutex<Vec<(String, String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    let app = Router::new().route(
        "/hooks",
        post(move |h: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let hv = |k: &str| {
                    h.get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                store.lock().unwrap().push((
                    hv("riskdesk-signature"),
                    hv("riskdesk-event-id"),
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.ok() });
    (url, got)
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..100 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn notices_arrive_by_email_in_the_customers_language_and_webhooks_verify() {
    let (port, mails) = smtp_sink().await;
    let (url, hooks) = webhook_receiver().await;
    let app = spawn_app_with(ServerOptions {
        smtp: Some(riskdesk_connectors::email::SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            from: "Contoso Billing <billing@contoso.example>".into(),
            username: None,
            password: None,
            starttls: false,
        }),
        outbox_interval: std::time::Duration::from_millis(100),
        ..ServerOptions::default()
    })
    .await;
    let ep = app
        .post(&app.admin, "/v1/webhook-endpoints", &json!({"url": url}))
        .await;
    assert_eq!(ep.status, 201, "{}", ep.body);
    let secret = ep.body["secret"].as_str().unwrap().to_owned();
    let c = customer(&app, "global").await; // fr-FR, billing@contoso.com
    invoice(
        &app,
        &c,
        "FA-2026-001",
        "2026-11-01",
        "2026-12-01",
        "1234.50",
    )
    .await;
    run(&app, "2026-12-02").await; // reminder + overdue notice

    let mail = wait_for("two emails", || {
        let m = mails.lock().unwrap();
        (m.len() >= 2).then(|| m.join("\n=====\n"))
    })
    .await;
    assert!(mail.contains("billing@contoso.com"), "{mail}");
    let hook = wait_for("two webhooks", || {
        let h = hooks.lock().unwrap();
        (h.len() >= 2).then(|| h.clone())
    })
    .await;
    let now = jiff::Timestamp::now().as_second();
    for (sig, id, body) in &hook {
        riskdesk_connectors::webhook::verify(&secret, sig, body.as_bytes(), now, 300)
            .unwrap_or_else(|e| panic!("{e}: {sig} {body}"));
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["type"], "dunning.step");
        assert_eq!(v["id"].as_str(), Some(id.as_str()));
        assert_eq!(v["data"]["invoice_number"], "FA-2026-001");
    }
    // A forged body does not verify.
    assert!(riskdesk_connectors::webhook::verify(&secret, &hook[0].0, b"{}", now, 300).is_err());
    // The delivery log shows them sent; the email text is French.
    let mut sent = Value::Null;
    for _ in 0..50 {
        sent = app
            .get(
                &app.admin,
                &format!("/v1/outbox?customer_id={c}&channel=email"),
            )
            .await
            .body;
        if sent
            .as_array()
            .is_some_and(|a| a.iter().all(|m| m["status"] == "sent"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let items = sent.as_array().unwrap();
    assert_eq!(items.len(), 2, "{sent}");
    assert!(items.iter().all(|m| m["status"] == "sent"), "{sent}");
    // Each email that reached the sink carries its outbox id as Message-ID.
    for m in items {
        assert!(
            mail.contains(&format!("<{}@riskdesk>", m["id"].as_str().unwrap())),
            "{mail}"
        );
    }
    let overdue = items
        .iter()
        .find(|m| m["event_type"] == "dunning.payment_overdue")
        .unwrap();
    assert_eq!(
        overdue["subject"],
        "La facture FA-2026-001 est en retard de paiement"
    );
    assert!(
        overdue["body"]
            .as_str()
            .unwrap()
            .contains("1\u{202f}234,50\u{a0}EUR"),
        "{overdue}"
    );
    // Running the day again queues nothing new (one decision, one message).
    run(&app, "2026-12-02").await;
    let again = app
        .get(&app.admin, &format!("/v1/outbox?customer_id={c}"))
        .await;
    assert_eq!(again.body.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn the_cli_runs_the_ladder_and_prints_the_aging_report() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let inv = invoice(&app, &c, "INV-9", "2026-10-01", "2026-10-31", "1250.00").await;
    let out = app.cli(&[
        "dunning",
        "run",
        "--as-of",
        "2026-11-02",
        "--tenant",
        "default",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 steps sent"), "{text}");
    assert_eq!(names(&steps(&app, &c, &inv).await), ["reminder", "overdue"]);
    let out = app.cli(&[
        "report",
        "aging",
        "--as-of",
        "2026-11-30",
        "--format",
        "csv",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "customer,customer_id,currency,current,1-30,31-60,61-90,90+,total"
    );
    assert_eq!(
        lines[1],
        format!("Fabrikam,{c},EUR,0.00,1250.00,0.00,0.00,0.00,1250.00")
    );
    assert_eq!(lines[2], "TOTAL,,EUR,0.00,1250.00,0.00,0.00,0.00,1250.00");
    let out = app.cli(&["report", "aging", "--as-of", "2026-11-30"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("Fabrikam  EUR"), "{table}");
    let out = app.cli(&["notices", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn a_manual_hold_pauses_the_account_until_its_day() {
    let app = spawn_app().await;
    let c = customer(&app, "global").await;
    let inv = invoice(&app, &c, "INV-1", "2026-11-01", "2026-12-01", "100.00").await;
    let path = format!("/v1/customers/{c}/dunning");
    app.put(&app.admin, &path, &json!({"hold_until": "2026-12-20"}))
        .await
        .problem(422);
    let r = app
        .put(
            &app.admin,
            &path,
            &json!({"hold_until": "2026-12-20", "hold_reason": "payment plan agreed by phone"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["hold_until"], "2026-12-20");
    run_daily(&app, "2026-11-25", 25).await; // through Dec 19
    assert_eq!(steps(&app, &c, &inv).await, []);
    run(&app, "2026-12-20").await;
    assert_eq!(names(&steps(&app, &c, &inv).await), ["reminder", "overdue"]);
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_logged_and_can_be_re_sent() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let healthy = Arc::new(AtomicBool::new(false));
    let got = Arc::new(Mutex::new(0usize));
    let (h, g) = (healthy.clone(), got.clone());
    let hook = axum::Router::new().route(
        "/h",
        axum::routing::post(move || {
            let (h, g) = (h.clone(), g.clone());
            async move {
                if h.load(Ordering::SeqCst) {
                    *g.lock().unwrap() += 1;
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/h", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, hook).await.ok() });
    let app = spawn_app_with(ServerOptions {
        outbox_interval: std::time::Duration::from_millis(100),
        ..ServerOptions::default()
    })
    .await;
    let ep = app
        .post(&app.admin, "/v1/webhook-endpoints", &json!({"url": url}))
        .await;
    assert_eq!(ep.status, 201);
    let c = customer(&app, "global").await;
    invoice(&app, &c, "INV-1", "2026-11-01", "2026-12-01", "100.00").await;
    run(&app, "2026-11-28").await; // the reminder
    let mut msg = Value::Null;
    for _ in 0..100 {
        let log = app.get(&app.admin, "/v1/outbox?channel=webhook").await.body;
        msg = log[0].clone();
        if msg["attempts"].as_i64() >= Some(1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(msg["status"], "pending", "{msg}");
    assert!(msg["last_error"].as_str().unwrap().contains("500"), "{msg}");
    // The retry is scheduled with backoff (30 s after the first failure), not hammered.
    assert!(msg["next_attempt_at"].as_str().unwrap() > msg["created_at"].as_str().unwrap());
    healthy.store(true, Ordering::SeqCst);
    let id = msg["id"].as_str().unwrap();
    let r = app
        .post(&app.admin, &format!("/v1/outbox/{id}/resend"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sent = wait_for("the re-sent webhook", || {
        (*got.lock().unwrap() >= 1).then_some(())
    })
    .await;
    let _ = sent;
    for _ in 0..50 {
        let m = app.get(&app.admin, "/v1/outbox?channel=webhook").await.body;
        if m[0]["status"] == "sent" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the re-sent message was not marked sent");
}

#[tokio::test]
async fn a_new_alert_is_sent_to_the_partners_endpoints_signed() {
    let (url, hooks) = webhook_receiver().await;
    let app = spawn_app_with(ServerOptions {
        outbox_interval: std::time::Duration::from_millis(100),
        ..ServerOptions::default()
    })
    .await;
    let ep = app
        .post(&app.admin, "/v1/webhook-endpoints", &json!({"url": url}))
        .await;
    let secret = ep.body["secret"].as_str().unwrap().to_owned();
    let c = customer(&app, "global").await;
    let budget = app
        .put(
            &app.admin,
            &format!("/v1/customers/{c}/budget"),
            &json!({"monthly_amount": "100.00", "currency": "EUR", "thresholds": [50]}),
        )
        .await;
    assert_eq!(budget.status, 200, "{}", budget.body);
    let usage = |id: &str| {
        json!({"type": "usage", "event_id": id, "customer_id": c, "time": "2026-11-02T10:00:00Z",
               "meter_category": "Storage", "meter_name": "LRS", "region": "westeurope",
               "quantity": 1, "unit": "GB", "cost": "60.00", "currency": "EUR"})
    };
    let r = app
        .post(
            &app.admin,
            "/v1/events?as_of=2026-11-02T11:00:00Z",
            &json!([usage("u-1")]),
        )
        .await;
    assert_eq!(r.body["accepted"], 1, "{}", r.body);
    let got = wait_for("the alert webhook", || {
        let h = hooks.lock().unwrap();
        h.iter()
            .find(|(_, _, b)| b.contains("\"alert.raised\""))
            .cloned()
    })
    .await;
    let now = jiff::Timestamp::now().as_second();
    riskdesk_connectors::webhook::verify(&secret, &got.0, got.2.as_bytes(), now, 300).unwrap();
    let v: Value = serde_json::from_str(&got.2).unwrap();
    assert_eq!(v["data"]["rule"], "budget.percent:50", "{v}");
    assert_eq!(v["data"]["customer_id"], json!(c));
}

#[tokio::test]
async fn emails_waiting_for_an_smtp_server_do_not_hold_webhooks_back() {
    let (url, hooks) = webhook_receiver().await;
    let app = spawn_app_with(ServerOptions {
        outbox_interval: std::time::Duration::from_millis(100),
        ..ServerOptions::default()
    })
    .await;
    app.post(&app.admin, "/v1/webhook-endpoints", &json!({"url": url}))
        .await;
    let c = customer(&app, "global").await;
    for i in 0..101 {
        invoice(
            &app,
            &c,
            &format!("INV-{i}"),
            "2026-11-01",
            "2026-12-01",
            "10.00",
        )
        .await;
    }
    assert_eq!(run(&app, "2026-12-02").await["steps"], 202);
    // 202 emails stay pending (no [email] configured); every webhook still goes out.
    wait_for("202 webhooks", || {
        (hooks.lock().unwrap().len() >= 202).then_some(())
    })
    .await;
    let pending = app
        .get(
            &app.admin,
            &format!("/v1/outbox?customer_id={c}&channel=email&status=pending&limit=500"),
        )
        .await;
    assert_eq!(pending.body.as_array().unwrap().len(), 202);
}

#[tokio::test]
async fn levers_that_need_approval_wait_in_a_case_and_paying_up_withdraws_or_undoes_them() {
    let app = spawn_app().await;
    let mut p = app.get(&app.admin, "/v1/dunning/policy").await.body["policy"].clone();
    p["levers_need_approval"] = json!(true);
    let put = app.put(&app.admin, "/v1/dunning/policy", &p).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let a = customer(&app, "global").await;
    let sub_a = app.create_subscription(&app.admin, &a).await;
    invoice(&app, &a, "INV-A", "2026-11-01", "2026-12-01", "100.00").await;
    let b = customer(&app, "global").await;
    let sub_b = app.create_subscription(&app.admin, &b).await;
    invoice(&app, &b, "INV-B", "2026-11-01", "2026-12-01", "50.00").await;
    run_daily(&app, "2026-12-20", 11).await; // through Dec 30: access_disabled is due
    // Nothing was blocked; each customer has a proposal in an approval case.
    assert_eq!(sub_status(&app, &sub_a).await, "active");
    assert_eq!(sub_status(&app, &sub_b).await, "active");
    let waiting = app
        .get(&app.admin, "/v1/actions?status=awaiting_approval")
        .await;
    let items = waiting.body.as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", waiting.body);
    for it in items {
        assert_eq!(it["kind"], "disable_access");
        assert_eq!(it["proposed_by"], "system:dunning");
        assert_eq!(it["reason"], "non_payment");
    }
    let cases = app
        .get(&app.admin, "/v1/cases?kind=enforcement_approval")
        .await;
    assert_eq!(
        cases.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        cases.body
    );
    // Another run proposes nothing new.
    assert_eq!(run(&app, "2026-12-30").await["levers_proposed"], 0);
    // The notice does not claim access is blocked (French customer).
    let outbox = app
        .get(&app.admin, &format!("/v1/outbox?customer_id={a}"))
        .await;
    let notice = outbox
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["event_type"] == "dunning.access_disabled")
        .cloned()
        .unwrap_or_else(|| panic!("{}", outbox.body));
    let body = notice["body"].as_str().unwrap();
    assert!(body.contains("peuvent désormais être restreints"), "{body}");

    // A: approved → access blocked; paid → restored (the ladder owns the lever).
    let pa = items.iter().find(|i| i["customer_id"] == json!(a)).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(&app.admin, &format!("/v1/actions/{pa}/approve"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sub_status(&app, &sub_a).await, "disabled");
    pay(&app, &a, "100.00", "2026-12-31T10:00:00Z", None).await;
    assert_eq!(sub_status(&app, &sub_a).await, "active");

    // B: paid before anyone approved → the proposal is withdrawn, nothing was ever blocked.
    pay(&app, &b, "50.00", "2026-12-31T10:00:00Z", None).await;
    run(&app, "2026-12-31").await;
    let pb = items.iter().find(|i| i["customer_id"] == json!(b)).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.get(&app.admin, &format!("/v1/actions/{pb}")).await;
    assert_eq!(r.body["status"], "rejected", "{}", r.body);
    assert_eq!(sub_status(&app, &sub_b).await, "active");
}
