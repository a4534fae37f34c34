//! Events through NATS JetStream (`[scale]`): API processes publish, `riskdesk worker --roles
//! ingest` processes apply. Needs PostgreSQL (RISKDESK_TEST_BACKEND=postgres) and a NATS
//! server with JetStream (RISKDESK_TEST_NATS_URL); without both these tests say so and pass
//! nothing (CI sets both, and a server that is not there fails them). Each test has a stream
//! and subjects of its own and deletes the stream.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use riskdesk_app::monitoring::stream::Scale;
use riskdesk_app::workers::Roles;
use riskdesk_connectors::jetstream::{EventStream, StreamSettings};
use riskdesk_http::ServerOptions;
use serde_json::{Value, json};

use crate::helpers::{Resp, TestApp, backend_is_postgres, customer_body, spawn_app_with};

struct Setup {
    app: TestApp,
    stream: EventStream,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

fn settings(max_bytes: i64) -> Option<StreamSettings> {
    let url = std::env::var("RISKDESK_TEST_NATS_URL").ok()?;
    if !backend_is_postgres() {
        return None;
    }
    let run = uuid::Uuid::now_v7().simple().to_string();
    Some(StreamSettings {
        url,
        stream: format!("RDT_{run}"),
        subject_prefix: format!("rdt{run}"),
        partitions: 4,
        replicas: 1,
        max_bytes,
        ack_wait: Duration::from_secs(30),
    })
}

/// An API-only server publishing to a fresh stream, and the settings file its workers read.
async fn setup(max_bytes: i64, sync_wait: Duration) -> Option<Setup> {
    let Some(s) = settings(max_bytes) else {
        eprintln!(
            "skipped: needs RISKDESK_TEST_BACKEND=postgres and RISKDESK_TEST_NATS_URL (a NATS server with JetStream)"
        );
        return None;
    };
    let stream = EventStream::connect(s.clone())
        .await
        .expect("RISKDESK_TEST_NATS_URL is set: NATS must be reachable");
    let scale = Arc::new(Scale {
        stream: stream.clone(),
        sync_wait,
        lease: Duration::from_secs(3),
        worker_concurrency: 4,
    });
    let app = spawn_app_with(ServerOptions {
        roles: Roles::API,
        scale: Some(scale),
        ..ServerOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("riskdesk.toml");
    // Workers apply two messages at once, fewer than the partitions each owns: every
    // partition still drains (the chaos test's counts and the waiting answer below).
    std::fs::write(
        &config,
        format!(
            "[scale]\nnats_url = \"{}\"\nstream = \"{}\"\nsubject_prefix = \"{}\"\npartitions = {}\nmax_bytes = {}\nlease_seconds = 3\nack_wait_seconds = 30\nworker_concurrency = 2\n",
            s.url, s.stream, s.subject_prefix, s.partitions, s.max_bytes
        ),
    )
    .unwrap();
    Some(Setup {
        app,
        stream,
        config,
        _dir: dir,
    })
}

impl Setup {
    /// `riskdesk worker --roles ingest --once`, run to its end; its output.
    async fn ingest_once(&self, env: &[(&str, &str)]) -> (bool, String) {
        let mut c = self
            .app
            .cli_command_with(&["worker", "--roles", "ingest", "--once"], &self.config);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = tokio::task::spawn_blocking(move || c.output())
            .await
            .unwrap()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Runs ingest passes until the stream is empty (a crashed worker's partitions come free
    /// when its leases run out); the passes' outputs.
    async fn drain(&self) -> String {
        let mut all = String::new();
        for _ in 0..60 {
            let (ok, out) = self.ingest_once(&[]).await;
            assert!(ok, "{out}");
            all.push_str(&out);
            if self.stream.backlog().await.unwrap() == 0 {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("the stream did not drain: {all}");
    }

    async fn post(&self, key: &str, body: &Value, respond_async: bool) -> Resp {
        let mut req = self
            .app
            .client
            .post(format!(
                "{}/v1/events?as_of=2026-11-03T12:00:00Z",
                self.app.base
            ))
            .bearer_auth(&self.app.admin)
            .header("Idempotency-Key", key)
            .json(body);
        if respond_async {
            req = req.header("Prefer", "respond-async");
        }
        self.app.send(req).await
    }

    async fn events_stored(&self) -> i64 {
        self.app
            .db
            .fetch_optional::<i64>(riskdesk_storage::query::Q::new(
                "SELECT COUNT(*) AS n FROM events",
            ))
            .await
            .unwrap()
            .unwrap()
    }
}

fn usage(id: &str, c: &str, hour: u32, cost: &str) -> Value {
    json!({"type": "usage", "event_id": id, "customer_id": c, "time": format!("2026-11-03T{hour:02}:00:00Z"),
           "meter_category": "Virtual Machines", "meter_name": "D4s v5", "region": "westeurope",
           "quantity": 1, "unit": "Hours", "cost": cost, "currency": "USD"})
}

async fn customers(app: &TestApp, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            app.create_customer(&app.admin, customer_body(&format!("Streamed {i}")))
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    out
}

/// A monthly budget of `amount` USD on each customer (the month-to-date figures read from it).
async fn budgets(app: &TestApp, cs: &[String], amount: &str) {
    for c in cs {
        let r = app
            .put(
                &app.admin,
                &format!("/v1/customers/{c}/budget"),
                &json!({"monthly_amount": amount, "currency": "USD"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

async fn month_to_date(app: &TestApp, c: &str) -> String {
    let r = app
        .get(
            &app.admin,
            &format!("/v1/customers/{c}/budget?as_of=2026-11-03T12:00:00Z"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["month_to_date"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_batch_through_the_stream_is_applied_once_with_its_summary() {
    let Some(s) = setup(64 << 20, Duration::from_secs(10)).await else {
        return;
    };
    let cs = customers(&s.app, 3).await;
    budgets(&s.app, &cs, "100.00").await;
    // 30 events over three customers (so several partitions), one invalid line.
    let mut events: Vec<Value> = (0..30)
        .map(|i| {
            usage(
                &format!("s-{i}"),
                &cs[i % 3],
                1 + (i / 3) as u32,
                "6.000000001",
            )
        })
        .collect();
    events.insert(7, json!({"type": "usage", "event_id": "bad"}));
    let body = Value::Array(events);

    let r = s.post("batch-1", &body, true).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["batch_id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("/v1/event-batches/{id}")
    );
    assert!(r.body["parts"].as_u64().unwrap() >= 2, "{}", r.body);
    // Published, not applied: nothing stored yet, and the batch is not known.
    assert_eq!(s.events_stored().await, 0);
    let g = s
        .app
        .get(&s.app.admin, &format!("/v1/event-batches/{id}"))
        .await;
    g.problem(404);

    // The same request again replays the answer; nothing more is published.
    let again = s.post("batch-1", &body, true).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.body["batch_id"], r.body["batch_id"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");

    let out = s.drain().await;
    assert!(out.contains(", 0 dead-lettered"), "{out}");
    assert_eq!(s.events_stored().await, 30);
    let g = s
        .app
        .get(&s.app.admin, &format!("/v1/event-batches/{id}"))
        .await;
    assert_eq!(g.status, 200, "{}", g.body);
    assert_eq!(g.body["status"], "applied");
    assert_eq!(g.body["summary"]["accepted"], 30);
    assert_eq!(g.body["summary"]["rejected"][0]["index"], 7, "{}", g.body);
    // 10 × 6.000000001 each, exact; every customer past 50 % of its budget exactly once.
    for c in &cs {
        assert_eq!(month_to_date(&s.app, c).await, "60.00000001");
    }
    let alerts = s.app.get(&s.app.admin, "/v1/alerts?limit=100").await;
    let budget50 = alerts.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "budget.percent:50")
        .count();
    assert_eq!(budget50, 3, "{}", alerts.body);

    // The same events under a new key: all duplicates, counted nowhere.
    let r = s.post("batch-2", &body, true).await;
    assert_eq!(r.status, 202);
    let id2 = r.body["batch_id"].as_str().unwrap().to_owned();
    s.drain().await;
    let g = s
        .app
        .get(&s.app.admin, &format!("/v1/event-batches/{id2}"))
        .await;
    assert_eq!(g.body["summary"]["accepted"], 0, "{}", g.body);
    assert_eq!(g.body["summary"]["duplicates"], 30);
    assert_eq!(s.events_stored().await, 30);
    for c in &cs {
        assert_eq!(month_to_date(&s.app, c).await, "60.00000001");
    }
    s.stream.delete().await.unwrap();
}

#[tokio::test]
async fn a_worker_killed_after_commit_before_ack_loses_and_doubles_nothing() {
    let Some(s) = setup(64 << 20, Duration::from_secs(10)).await else {
        return;
    };
    let cs = customers(&s.app, 4).await;
    budgets(&s.app, &cs, "1000.00").await;
    let mut ids = Vec::new();
    for b in 0..5 {
        let events: Vec<Value> = (0..20)
            .map(|i| usage(&format!("k-{b}-{i}"), &cs[i % 4], 1 + b as u32, "1.25"))
            .collect();
        let r = s
            .post(&format!("kill-{b}"), &Value::Array(events), true)
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        ids.push(r.body["batch_id"].as_str().unwrap().to_owned());
    }
    // A worker that dies right after its second commit, before acknowledging it: the
    // message stays in the stream though its effect is in the database.
    let (ok, out) = s
        .ingest_once(&[("RISKDESK_TEST_CRASH", "ingest.after_commit:2")])
        .await;
    assert!(!ok, "the worker was to die: {out}");
    assert!(out.contains("RISKDESK_TEST_CRASH"), "{out}");
    let committed = s.events_stored().await;
    assert!(
        (2..100).contains(&committed),
        "two messages were committed: {committed} events"
    );

    // The next workers take the partitions over once the dead one's leases run out, are
    // delivered the unacknowledged message again, and skip it.
    let out = s.drain().await;
    let skipped: u64 = out
        .lines()
        .filter_map(|l| l.split(" messages applied, ").nth(1))
        .filter_map(|t| t.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(skipped, 1, "{out}");
    assert_eq!(s.events_stored().await, 100);
    for c in &cs {
        // 25 events of 1.25 each.
        assert_eq!(month_to_date(&s.app, c).await, "31.25");
    }
    for id in ids {
        let g = s
            .app
            .get(&s.app.admin, &format!("/v1/event-batches/{id}"))
            .await;
        assert_eq!(g.body["summary"]["accepted"], 20, "{}", g.body);
    }
    s.stream.delete().await.unwrap();
}

#[tokio::test]
async fn the_default_answer_waits_for_a_running_worker_and_a_full_stream_answers_503() {
    let Some(s) = setup(64 << 20, Duration::from_secs(10)).await else {
        return;
    };
    let cs = customers(&s.app, 2).await;
    let mut worker = s
        .app
        .cli_command_with(&["worker", "--roles", "ingest"], &s.config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let events: Vec<Value> = (0..10)
        .map(|i| usage(&format!("w-{i}"), &cs[i % 2], 2, "3.5"))
        .collect();
    let r = s.post("sync-1", &Value::Array(events.clone()), false).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["accepted"], 10, "{}", r.body);
    assert_eq!(s.events_stored().await, 10, "200 comes after the commit");
    let r = s.post("sync-2", &Value::Array(events), false).await;
    assert_eq!(r.body["duplicates"], 10, "{}", r.body);
    worker.kill().unwrap();
    let _ = tokio::task::spawn_blocking(move || worker.wait()).await;
    s.stream.delete().await.unwrap();

    // A stream with room for a few kilobytes refuses a bigger batch: 503, with when to retry.
    let Some(small) = setup(4096, Duration::from_secs(1)).await else {
        return;
    };
    let cs = customers(&small.app, 1).await;
    let events: Vec<Value> = (0..40)
        .map(|i| usage(&format!("f-{i}"), &cs[0], 3, "1"))
        .collect();
    let r = small.post("full-1", &Value::Array(events), true).await;
    let p = r.problem(503);
    assert!(
        p["detail"].as_str().unwrap().contains("Idempotency-Key"),
        "{p}"
    );
    assert!(r.headers.contains_key("retry-after"));
    small.stream.delete().await.unwrap();
}

/// One riskdesk process the chaos test starts, kills and restarts.
struct Proc {
    child: std::process::Child,
}

impl Proc {
    fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl Setup {
    /// `riskdesk worker --roles ROLES` running until killed.
    fn worker(&self, roles: &str, config: &std::path::Path) -> Proc {
        let child = self
            .app
            .cli_command_with(&["worker", "--roles", roles], config)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Proc { child }
    }

    /// `riskdesk serve --roles api` on a port of its own; the process and its base URL.
    async fn api_node(&self) -> (Proc, String) {
        let mut child = self
            .app
            .cli_command_with(
                &["serve", "--roles", "api", "--bind", "127.0.0.1:0"],
                &self.config,
            )
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let base = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stdout).lines();
            loop {
                let l = lines.next().expect("the API node exited").unwrap();
                if let Some(rest) = l.strip_prefix("riskdesk listening on ") {
                    // Keep reading (and dropping) its output so it never blocks on a full pipe.
                    let base = rest.split_whitespace().next().unwrap().to_owned();
                    std::thread::spawn(move || for _ in lines {});
                    return base;
                }
            }
        })
        .await
        .unwrap();
        (Proc { child }, base)
    }

    /// The pid of the ingest worker holding the most partitions of this stream.
    async fn busiest_worker(&self) -> Option<u32> {
        struct H(String);
        impl riskdesk_storage::query::FromRow for H {
            fn from_row(
                r: &dyn riskdesk_storage::query::RowLike,
            ) -> riskdesk_storage::Result<Self> {
                Ok(H(r.text("holder")?))
            }
        }
        let stream = self.stream.settings().stream.clone();
        let h: Option<H> = self
            .app
            .db
            .fetch_optional(
                riskdesk_storage::query::Q::new(
                    "SELECT holder FROM leases WHERE name LIKE $1 GROUP BY holder ORDER BY count(*) DESC, holder LIMIT 1",
                )
                .bind(format!("ingest:{stream}:p%")),
            )
            .await
            .unwrap();
        h.and_then(|h| h.0.strip_prefix("pid")?.split('-').next()?.parse().ok())
    }

    async fn count(&self, sql: &'static str) -> i64 {
        self.app
            .db
            .fetch_optional::<i64>(riskdesk_storage::query::Q::new(sql))
            .await
            .unwrap()
            .unwrap()
    }
}

/// A decimal string ("12.5", "0.000000000001") in picos (10⁻¹² of the unit).
fn picos(s: &str) -> i128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.len() <= 12, "{s}");
    let frac = format!("{frac:0<12}");
    int.parse::<i128>().unwrap() * 1_000_000_000_000 + frac.parse::<i128>().unwrap()
}

fn from_picos(p: i128) -> String {
    format!("{}.{:012}", p / 1_000_000_000_000, p % 1_000_000_000_000)
}

/// Every alert of a tenant: (customer id, rule or title, count).
async fn all_alerts(app: &TestApp, token: &str) -> Vec<(String, String, String, i64)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/alerts?limit=500&cursor={c}"),
            None => "/v1/alerts?limit=500".to_owned(),
        };
        let r = app.get(token, &path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        for a in r.body["items"].as_array().unwrap() {
            out.push((
                a["customer_id"].as_str().unwrap_or("").to_owned(),
                a["rule"].as_str().unwrap_or("").to_owned(),
                a["title"].as_str().unwrap_or("").to_owned(),
                a["count"].as_i64().unwrap_or(0),
            ));
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// The scale-out test: 2 API processes, 3 ingest workers and 1 outbox/provider/scheduler
/// process over one PostgreSQL and the local NATS. A generator sends usage for many customers
/// with exact sums (half answered after the commit, half after the PubAck), 5 % of the bodies
/// again under new keys (true duplicates), retries on the other node with the same
/// Idempotency-Key, budgets that cross every mark and a history rule that must fire once per
/// chosen customer; a worker is killed (-9) twice and an API process once, mid-run. Then: no
/// event lost or counted twice, spend exact to 12 decimals, every budget and rule alert exactly
/// once, every webhook delivered once, the dunning run's steps once, the audit chain intact,
/// the stream drained, and the other tenant untouched.
#[tokio::test]
async fn several_processes_killed_mid_run_lose_and_double_nothing() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let Some(s) = setup(256 << 20, Duration::from_secs(10)).await else {
        return;
    };
    let started = std::time::Instant::now();
    let app = &s.app;
    // The partner's endpoint: records every delivery's event id.
    let got: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let hook = {
        use axum::{Router, http::HeaderMap, routing::post};
        let store = got.clone();
        let r = Router::new().route(
            "/hooks",
            post(move |h: HeaderMap| {
                let store = store.clone();
                async move {
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
        tokio::spawn(async move { axum::serve(l, r).await.unwrap() });
        url
    };
    let ep = app
        .post(&app.admin, "/v1/webhook-endpoints", &json!({"url": hook}))
        .await;
    assert_eq!(ep.status, 201, "{}", ep.body);
    let rule = app
        .post(
            &app.admin,
            "/v1/rules",
            &json!({"name": "five failed sign-ins in 10 minutes", "scope": "activity", "severity": "high",
                    "mode": "active", "condition": "failed_ops('sign-in', '10m') >= 5"}),
        )
        .await;
    assert_eq!(rule.status, 201, "{}", rule.body);
    const CUSTOMERS: usize = 60;
    const BODIES: usize = 40;
    const PER_BODY: usize = 400;
    let cs = customers(app, CUSTOMERS).await;
    // Tenant B, the isolation control.
    let b_token = app.token("reseller-b", riskdesk_domain::Role::Admin).await;
    let mut b_cs = Vec::new();
    for i in 0..3 {
        let r = app
            .post(&b_token, "/v1/customers", &customer_body(&format!("B{i}")))
            .await;
        b_cs.push(r.body["id"].as_str().unwrap().to_owned());
    }
    // Overdue invoices for the dunning run.
    for (i, c) in cs.iter().take(3).enumerate() {
        let r = app
            .post(
                &app.admin,
                "/v1/invoices",
                &json!({"customer_id": c, "number": format!("CH-{i}"), "issue_date": "2026-10-01",
                        "due_date": "2026-10-31", "currency": "EUR",
                        "lines": [{"description": "Azure plan usage", "amount": "300.00"}], "total": "300.00"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    // The load: usage with 12-decimal costs; the expected spend per customer, exact.
    let mut expected: std::collections::HashMap<String, i128> = Default::default();
    let mut bodies: Vec<(String, Value, bool)> = Vec::new();
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // 10 customers get 5 failed sign-ins within 10 minutes, 10 others 4, over several bodies.
    let chosen: Vec<&String> = cs[10..20].iter().collect();
    let near: Vec<&String> = cs[20..30].iter().collect();
    for b in 0..BODIES {
        let mut events = Vec::with_capacity(PER_BODY + 4);
        for i in 0..PER_BODY {
            let c = &cs[(next() % CUSTOMERS as u64) as usize];
            let p = (next() % 5_000_000_000_000) as i128 + 1; // up to 5.000000000000
            *expected.entry(c.clone()).or_default() += p;
            events.push(usage(
                &format!("u-{b}-{i}"),
                c,
                (b % 11) as u32,
                &from_picos(p),
            ));
        }
        if b % 8 == 0 {
            let k = b / 8; // bodies 0, 8, 16, 24, 32: failure k of each
            for (set, n) in [(&chosen, 5), (&near, 4)] {
                for c in set.iter().filter(|_| k < n) {
                    events.push(json!({"type": "activity", "event_id": format!("f-{c}-{k}"), "customer_id": c,
                        "time": format!("2026-11-03T11:0{k}:00Z"), "operation": "sign-in",
                        "actor": "someone@example.com", "status": "failed"}));
                }
            }
        }
        bodies.push((format!("chaos-{b}"), Value::Array(events), b >= BODIES / 2));
    }
    // 5 % true duplicates: the same events under new keys.
    for b in [5, 17] {
        let (_, body, mode) = bodies[b].clone();
        bodies.push((format!("chaos-dup-{b}"), body, mode));
    }
    let events_sent: usize = BODIES * PER_BODY + 5 * 10 + 4 * 10;
    // Budgets on 20 customers at 80 % of their spend: every mark is crossed.
    for c in &cs[30..50] {
        let cents = expected[c] * 8 / 10 / 10_000_000_000;
        let r = app
            .put(
                &app.admin,
                &format!("/v1/customers/{c}/budget"),
                &json!({"monthly_amount": format!("{}.{:02}", cents / 100, cents % 100), "currency": "USD"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // B's load, through the same processes.
    let mut b_expected: std::collections::HashMap<String, i128> = Default::default();
    let mut b_bodies = Vec::new();
    for b in 0..3 {
        let events: Vec<Value> = (0..100)
            .map(|i| {
                let c = &b_cs[i % 3];
                *b_expected.entry(c.clone()).or_default() += 1_500_000_000_000;
                usage(&format!("u-{b}-{i}"), c, 1, "1.5")
            })
            .collect();
        b_bodies.push((format!("b-{b}"), Value::Array(events), b == 1));
    }

    // The processes.
    let side_config = s.config.with_file_name("side.toml");
    std::fs::write(
        &side_config,
        format!(
            "{}\n[dunning]\nrun_every_minutes = 60\n",
            std::fs::read_to_string(&s.config).unwrap()
        ),
    )
    .unwrap();
    let mut workers: Vec<Proc> = (0..3).map(|_| s.worker("ingest", &s.config)).collect();
    let side = s.worker("outbox,provider,scheduler", &side_config);
    let (mut api1, base1) = s.api_node().await;
    let (_api2, base2) = s.api_node().await;
    let nodes = Arc::new(std::sync::Mutex::new(vec![base1, base2]));

    // The generator: 4 senders; body i waits until the chaos controller releases it.
    let queue = Arc::new(std::sync::Mutex::new(
        bodies
            .into_iter()
            .chain(b_bodies)
            .enumerate()
            .collect::<std::collections::VecDeque<_>>(),
    ));
    let total = queue.lock().unwrap().len();
    let done = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let (release, released) = tokio::sync::watch::channel(0usize);
    let mut senders = Vec::new();
    for _ in 0..4 {
        let (queue, nodes, done, retries) =
            (queue.clone(), nodes.clone(), done.clone(), retries.clone());
        let mut released = released.clone();
        let client = app.client.clone();
        let (a, b) = (app.admin.clone(), b_token.clone());
        senders.push(tokio::spawn(async move {
            let mut answers: Vec<(String, u16, Value)> = Vec::new();
            loop {
                let Some((i, (key, body, respond_async))) = queue.lock().unwrap().pop_front()
                else {
                    return answers;
                };
                released.wait_for(|r| *r > i).await.unwrap();
                let token = if key.starts_with("b-") { &b } else { &a };
                let mut node = i % 2;
                for attempt in 0.. {
                    assert!(attempt < 200, "body {key} never accepted");
                    let base = nodes.lock().unwrap()[node].clone();
                    let mut req = client
                        .post(format!("{base}/v1/events?as_of=2026-11-03T12:00:00Z"))
                        .bearer_auth(token)
                        .header("Idempotency-Key", &key)
                        .timeout(Duration::from_secs(30))
                        .json(&body);
                    if respond_async {
                        req = req.header("Prefer", "respond-async");
                    }
                    match req.send().await {
                        Ok(r) if r.status().as_u16() == 200 || r.status().as_u16() == 202 => {
                            let status = r.status().as_u16();
                            answers.push((key.clone(), status, r.json().await.unwrap()));
                            break;
                        }
                        Ok(r) if r.status().is_client_error() && r.status().as_u16() != 409 => {
                            panic!("body {key}: {} {}", r.status(), r.text().await.unwrap())
                        }
                        _ => {
                            // Refused, reset, 409 (in progress elsewhere) or 5xx: the same
                            // request again, on the other node.
                            retries.fetch_add(1, Ordering::Relaxed);
                            node = 1 - node;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let wait_done = async |n: usize| {
        while done.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let mut kills = Vec::new();
    for (at, what) in [(25, "worker"), (40, "api"), (60, "worker")] {
        let upto = total * at / 100;
        release.send(upto).unwrap();
        // Strike while the last released bodies are in flight (the first half of the bodies
        // wait for their commit: the API node is killed with requests open on it).
        wait_done(upto.saturating_sub(4)).await;
        match what {
            "worker" => {
                let pid = s.busiest_worker().await.expect("a worker holds partitions");
                let w = workers
                    .iter_mut()
                    .find(|w| w.child.id() == pid)
                    .expect("the busiest worker is one of ours");
                w.kill9();
                kills.push(format!("worker pid {pid} at {at} %"));
                *w = s.worker("ingest", &s.config);
            }
            _ => {
                api1.kill9();
                kills.push(format!("api1 at {at} %"));
                let (p, base) = s.api_node().await;
                api1 = p;
                nodes.lock().unwrap()[0] = base;
            }
        }
    }
    release.send(usize::MAX).unwrap();
    let mut answers = Vec::new();
    for t in senders {
        answers.extend(t.await.unwrap());
    }
    assert_eq!(answers.len(), total, "every body accepted once in the end");
    // 3. A body sent again under a new key, answered after its commit, counts only duplicates.
    for (key, status, body) in answers.iter().filter(|a| a.0.starts_with("chaos-dup-")) {
        if *status == 200 {
            assert_eq!(body["accepted"], 0, "{key}: {body}");
            assert_eq!(body["duplicates"], PER_BODY, "{key}: {body}");
        }
    }
    assert!(
        retries.load(Ordering::Relaxed) > 0,
        "the killed API node had requests open: they were sent again to the other"
    );
    let sent_in = started.elapsed();

    // Stop the running processes (killed: they are not asked to finish anything), then drive
    // single passes until the stream is empty and the outbox has sent everything.
    drop(workers);
    drop(side);
    drop(api1);
    s.drain().await;
    for _ in 0..20 {
        let out = tokio::task::spawn_blocking({
            let mut c = app.cli_command_with(
                &["worker", "--roles", "outbox,scheduler", "--once"],
                &side_config,
            );
            move || c.output().unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if s.count(
            "SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending' AND channel = 'webhook'",
        )
        .await
            == 0
        {
            break;
        }
    }

    // 1. Every event once: A's and B's.
    let a_events = s
        .count("SELECT COUNT(*) AS n FROM events e JOIN tenants t ON t.id = e.tenant_id WHERE t.slug = 'default'")
        .await;
    assert_eq!(a_events as usize, events_sent, "tenant A's events");
    let b_events = s
        .count("SELECT COUNT(*) AS n FROM events e JOIN tenants t ON t.id = e.tenant_id WHERE t.slug = 'reseller-b'")
        .await;
    assert_eq!(b_events, 300, "tenant B's events");
    // 2. Spend exact to 12 decimals, per customer (the hourly buckets, in picos), and every
    // event in a bucket once; the budgeted customers' month-to-date through the API too.
    struct Spend(String, String, i64);
    impl riskdesk_storage::query::FromRow for Spend {
        fn from_row(r: &dyn riskdesk_storage::query::RowLike) -> riskdesk_storage::Result<Self> {
            Ok(Spend(
                r.text("customer")?,
                r.text("picos")?,
                r.i64("events")?,
            ))
        }
    }
    let spend: Vec<Spend> = app
        .db
        .fetch_all(riskdesk_storage::query::Q::new(
            "SELECT customer_id::text AS customer, \
             (SUM(cost_units)::numeric * 1000000000000 + SUM(cost_rem))::text AS picos, \
             CAST(SUM(events) AS BIGINT) AS events FROM spend_hourly GROUP BY customer_id",
        ))
        .await
        .unwrap();
    let spent: std::collections::HashMap<String, i128> = spend
        .iter()
        .map(|s| (s.0.clone(), s.1.parse().unwrap()))
        .collect();
    assert_eq!(
        spend.iter().map(|s| s.2).sum::<i64>() as usize,
        BODIES * PER_BODY + 300,
        "usage events in the buckets"
    );
    for c in &cs {
        assert_eq!(
            spent.get(c).copied().unwrap_or(0),
            expected.get(c).copied().unwrap_or(0),
            "customer {c}"
        );
    }
    for c in &cs[30..50] {
        assert_eq!(
            picos(&month_to_date(app, c).await),
            expected[c],
            "customer {c}"
        );
    }
    for c in &b_cs {
        assert_eq!(spent[c], b_expected[c], "B's customer {c}");
        // A's token does not see B's customers.
        assert_eq!(
            app.get(&app.admin, &format!("/v1/customers/{c}"))
                .await
                .status,
            404
        );
    }
    // 4. Budget marks: each budgeted customer exactly once per mark; nobody else.
    let alerts = all_alerts(app, &app.admin).await;
    for c in &cs {
        let budgeted = cs[30..50].contains(c);
        for mark in ["50", "75", "90", "100"] {
            let hits: Vec<_> = alerts
                .iter()
                .filter(|a| a.0 == *c && a.1 == format!("budget.percent:{mark}"))
                .collect();
            if budgeted {
                assert_eq!(hits.len(), 1, "{c} budget {mark} %: {hits:?}");
                assert_eq!(hits[0].3, 1, "{c} budget {mark} %: {hits:?}");
            } else {
                assert!(hits.is_empty(), "{c} has no budget: {hits:?}");
            }
        }
    }
    // 5. The history rule: exactly the chosen customers, once each.
    let mut fired: Vec<(String, i64)> = alerts
        .iter()
        .filter(|a| a.2 == "five failed sign-ins in 10 minutes")
        .map(|a| (a.0.clone(), a.3))
        .collect();
    fired.sort();
    let mut want: Vec<(String, i64)> = chosen.iter().map(|c| ((*c).clone(), 1)).collect();
    want.sort();
    assert_eq!(fired, want);
    assert!(
        all_alerts(app, &b_token).await.is_empty(),
        "B raised nothing"
    );
    // 6. Every webhook delivered once.
    let webhooks = s
        .count("SELECT COUNT(*) AS n FROM outbox WHERE channel = 'webhook' AND status = 'sent'")
        .await;
    let pending = s
        .count("SELECT COUNT(*) AS n FROM outbox WHERE channel = 'webhook' AND status <> 'sent'")
        .await;
    assert_eq!(pending, 0);
    let mut ids = got.lock().unwrap().clone();
    let delivered = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as i64, webhooks, "every webhook arrived");
    let redelivered = delivered - ids.len();
    // The dunning run's steps: each once, audited once, its notice queued once.
    let steps = s.count("SELECT COUNT(*) AS n FROM dunning_steps").await;
    assert!(
        steps >= 3,
        "the run sent the overdue invoices' steps: {steps}"
    );
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'dunning.step'")
            .await,
        steps
    );
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM outbox WHERE channel = 'email' AND event_type LIKE 'dunning.%'").await,
        steps
    );
    // 7. The audit chain verifies.
    let out = app.cli(&["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // 8. The stream drained; nothing dead-lettered; epochs went up at the takeovers.
    assert_eq!(s.stream.backlog().await.unwrap(), 0);
    assert_eq!(
        s.count("SELECT COUNT(*) AS n FROM ingest_dead_letters")
            .await,
        0
    );
    let takeovers = s
        .count("SELECT CAST(COALESCE(SUM(epoch - 1), 0) AS BIGINT) AS n FROM leases WHERE name LIKE 'ingest:%'")
        .await;
    assert!(takeovers >= 1, "partitions changed hands");
    eprintln!(
        "chaos: {events_sent} + 300 events in {} bodies sent in {:.1} s ({} retries; {}), {} s in all; \
         {steps} dunning steps; {webhooks} webhooks, {redelivered} redelivered; {takeovers} partition takeovers",
        total,
        sent_in.as_secs_f64(),
        retries.load(Ordering::Relaxed),
        kills.join(", "),
        started.elapsed().as_secs()
    );
    s.stream.delete().await.unwrap();
}
