//! Several riskdesk processes over one database: `riskdesk worker` processes beside the
//! server, outbox messages claimed before they are sent, scheduler jobs under leases.

use std::sync::{Arc, Mutex};

use riskdesk_app::workers::Roles;
use riskdesk_http::ServerOptions;
use serde_json::{Value, json};

use crate::helpers::{TestApp, customer_body, spawn_app_with};

/// A server running only the api role: outbox and scheduler work is left to the workers
/// each test starts.
async fn api_only() -> TestApp {
    spawn_app_with(ServerOptions {
        roles: Roles::API,
        ..ServerOptions::default()
    })
    .await
}

/// A partner endpoint that takes 150 ms per delivery and records each event id it got.
async fn slow_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::{Router, http::HeaderMap, routing::post};
    let got: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    let app = Router::new().route(
        "/hooks",
        post(move |h: HeaderMap| {
            let store = store.clone();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(150)).await;
                let id = h
                    .get("riskdesk-event-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                store.lock().unwrap().push(id);
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.ok() });
    (url, got)
}

async fn webhooks(app: &TestApp) -> Vec<Value> {
    let r = app
        .get(&app.admin, "/v1/outbox?channel=webhook&limit=100")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body.as_array().unwrap().clone()
}

#[tokio::test]
async fn two_outbox_workers_at_once_deliver_each_webhook_once() {
    let app = api_only().await;
    let (url, got) = slow_receiver().await;
    let r = app
        .post(&app.admin, "/v1/webhook-endpoints", &json!({"url": url}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Six customers each pass half of their budget: six alerts, each a webhook.
    let mut events = Vec::new();
    for i in 0..6 {
        let c = app
            .create_customer(&app.admin, customer_body(&format!("Spender {i}")))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = app
            .put(
                &app.admin,
                &format!("/v1/customers/{c}/budget"),
                &json!({"monthly_amount": "10.00", "currency": "EUR", "thresholds": [50]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        events.push(
            json!({"type": "usage", "event_id": format!("u-{i}"), "customer_id": c,
            "time": "2026-11-03T09:00:00Z", "meter_category": "Storage", "meter_name": "LRS",
            "region": "westeurope", "cost": "6.00", "currency": "EUR"}),
        );
    }
    let r = app
        .post(
            &app.admin,
            "/v1/events?as_of=2026-11-03T10:00:00Z",
            &Value::Array(events),
        )
        .await;
    assert_eq!(r.body["accepted"], 6, "{}", r.body);
    let queued = webhooks(&app).await;
    assert!(queued.len() >= 6, "{queued:?}");
    assert!(
        queued.iter().all(|m| m["status"] == "pending"),
        "{queued:?}"
    );

    // Two worker processes, started together; each would take about a second to send them
    // all, so without claims both would send every one.
    let children: Vec<std::process::Child> = (0..2)
        .map(|_| {
            app.cli_command(&["worker", "--roles", "outbox", "--once"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a worker")
        })
        .collect();
    let mut attempted = 0;
    for c in children {
        // Waited for off the runtime's thread: the receiver runs on it.
        let out = tokio::task::spawn_blocking(move || c.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let n: usize = text
            .strip_prefix("outbox: ")
            .and_then(|t| t.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{text}"));
        attempted += n;
    }
    let mut ids = got.lock().unwrap().clone();
    assert_eq!(attempted, queued.len());
    assert_eq!(ids.len(), queued.len(), "{ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), queued.len(), "a webhook was delivered twice");
    assert!(webhooks(&app).await.iter().all(|m| m["status"] == "sent"));
}

fn worker_once(app: &TestApp) -> String {
    let out = app.cli(&["worker", "--roles", "scheduler", "--once"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test]
async fn a_scheduler_job_runs_where_its_lease_is_held_and_is_taken_over_when_it_runs_out() {
    let app = api_only().await;
    // Another process holds the SLA pass.
    app.raw_sql(
        "INSERT INTO leases (name, holder, epoch, lease_until, acquired_at) \
         VALUES ('sla', 'another-process', 7, 9000000000000000000, 0)",
    )
    .await;
    let text = worker_once(&app);
    assert!(
        text.contains("sla: not run (another process holds its lease)"),
        "{text}"
    );
    assert!(text.contains("prune: ran"), "{text}");
    // Its holder died: once its lease has run out, the next worker takes the job over.
    app.raw_sql("UPDATE leases SET lease_until = 1 WHERE name = 'sla'")
        .await;
    let text = worker_once(&app);
    assert!(text.contains("sla: ran"), "{text}");
    let leases = riskdesk_storage::leases::list(&app.db).await.unwrap();
    let sla = leases.iter().find(|l| l.name == "sla").unwrap();
    assert_eq!(sla.epoch, 8, "a change of holder counts: {sla:?}");
    assert!(sla.holder.starts_with("pid"), "{sla:?}");
    // The worker gave its leases up when it stopped: the next process need not wait.
    assert!(leases.iter().all(|l| l.lease_until == 0), "{leases:?}");
    let prune = leases.iter().find(|l| l.name == "prune").unwrap();
    assert_eq!(prune.epoch, 2, "two workers held it in turn: {prune:?}");
    // What an operator sees.
    let out = String::from_utf8(app.cli(&["leases"]).stdout).unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with("sla "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("epoch 8") && line.ends_with("released"),
        "{out}"
    );
}

#[tokio::test]
async fn of_many_processes_asking_for_a_lease_at_once_exactly_one_gets_it() {
    let app = api_only().await;
    let now = jiff::Timestamp::now().as_microsecond();
    let asks = (0..8).map(|i| {
        let db = app.db.clone();
        tokio::spawn(async move {
            riskdesk_storage::leases::hold(&db, "dunning", &format!("p{i}"), now, now + 10_000_000)
                .await
                .unwrap()
        })
    });
    let mut held = Vec::new();
    for a in asks {
        if let Some(l) = a.await.unwrap() {
            held.push(l);
        }
    }
    assert_eq!(held.len(), 1, "{held:?}");
    let winner = held[0].holder.clone();
    // The holder renews without a change of epoch; another cannot take it before it runs out …
    let renewed =
        riskdesk_storage::leases::hold(&app.db, "dunning", &winner, now + 1, now + 20_000_000)
            .await
            .unwrap()
            .unwrap();
    assert_eq!((renewed.epoch, renewed.lease_until), (1, now + 20_000_000));
    let other = if winner == "p0" { "p1" } else { "p0" };
    assert_eq!(
        riskdesk_storage::leases::hold(&app.db, "dunning", other, now + 2, now + 30_000_000)
            .await
            .unwrap(),
        None
    );
    // … and takes it over after, with the next epoch.
    let taken = riskdesk_storage::leases::hold(
        &app.db,
        "dunning",
        other,
        now + 20_000_001,
        now + 40_000_000,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((taken.holder.as_str(), taken.epoch), (other, 2));
}

/// Posts one failed sign-in of `customer` at minute `m` to the server at `base`; returns the
/// titles of the alerts it raised.
async fn failed_sign_in(
    app: &TestApp,
    base: &str,
    customer: &str,
    id: &str,
    m: u32,
) -> Vec<String> {
    let ev = json!([{"type": "activity", "event_id": id, "customer_id": customer,
        "time": format!("2026-11-02T10:{m:02}:00Z"), "operation": "sign-in",
        "actor": "someone@example.com", "status": "failed"}]);
    let r = app
        .send(
            app.client
                .post(format!("{base}/v1/events?as_of=2026-11-02T11:00:00Z"))
                .bearer_auth(&app.admin)
                .json(&ev),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut titles = Vec::new();
    for a in r.body["alerts"].as_array().unwrap() {
        let a = app
            .get(&app.admin, &format!("/v1/alerts/{}", a.as_str().unwrap()))
            .await;
        titles.push(a.body["title"].as_str().unwrap_or("").to_owned());
    }
    titles
}

/// A rule over a customer's history sees every process's events: the history one server
/// cached is reloaded as soon as another server ingested for the customer (the ingest counter
/// moved), not after a time-to-live.
#[tokio::test]
async fn a_rule_over_history_sees_the_events_another_process_ingested() {
    let app = api_only().await;
    let other = app.restarted().await;
    let r = app
        .post(
            &app.admin,
            "/v1/rules",
            &json!({"name": "three failed sign-ins", "scope": "activity", "severity": "high",
                    "mode": "active", "condition": "failed_ops('sign-in', '1h') >= 3"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ours = |titles: &[String]| {
        titles
            .iter()
            .filter(|t| *t == "three failed sign-ins")
            .count()
    };
    for (name, servers) in [
        ("one server", [&app.base, &app.base, &app.base]),
        ("two servers", [&app.base, &other, &app.base]),
    ] {
        let c = app.create_customer(&app.admin, customer_body(name)).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut hits = Vec::new();
        for (i, base) in servers.iter().enumerate() {
            let t = failed_sign_in(&app, base, &c, &format!("{name}-{i}"), i as u32).await;
            hits.push(ours(&t));
        }
        // The first server cached the history at the first event; the second event came in
        // through the other server; the third (back on the first) sees all three.
        assert_eq!(hits, vec![0, 0, 1], "{name}");
    }
}

#[tokio::test]
async fn a_scale_section_with_no_worker_concurrency_is_refused_naming_the_setting() {
    let app = api_only().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("riskdesk.toml");
    std::fs::write(&config, "[scale]\nworker_concurrency = 0\n").unwrap();
    let out = app
        .cli_command_with(&["worker", "--roles", "ingest", "--once"], &config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("[scale] worker_concurrency must be at least 1"),
        "{err}"
    );
}
