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
    });
    let app = spawn_app_with(ServerOptions {
        roles: Roles::API,
        scale: Some(scale),
        ..ServerOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("riskdesk.toml");
    std::fs::write(
        &config,
        format!(
            "[scale]\nnats_url = \"{}\"\nstream = \"{}\"\nsubject_prefix = \"{}\"\npartitions = {}\nmax_bytes = {}\nlease_seconds = 3\nack_wait_seconds = 30\n",
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
