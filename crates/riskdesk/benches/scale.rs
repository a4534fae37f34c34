//! Scale-out bench (issue 20; run by hand, see BENCHMARKS.md):
//!
//! `RISKDESK_BENCH_PG=postgres://postgres@127.0.0.1:5432/test cargo bench -p riskdesk --bench scale`
//! (NATS with JetStream at `RISKDESK_BENCH_NATS`, default nats://127.0.0.1:4222).
//!
//! Each run starts real `riskdesk` processes on a fresh PostgreSQL schema and a fresh stream:
//! - **stream, W workers** (W = 1, 2, 3): one `serve --roles api` with `[scale]` and W
//!   `worker --roles ingest`; the generator posts every body with `Prefer: respond-async`
//!   (202 after the PubAck) and the clock stops when the last event is committed;
//! - **in-process**: one `serve` without `[scale]` (events ingested in the request, 200 after
//!   the commit), the same bodies: the baseline for the NATS hop;
//! - **stream, 1 worker, with sign-ups** (item 5): the W = 1 run while sign-ups arrive at the
//!   API at BENCH_ASSESS_RATE a second (default 200; 0 skips the run) in an open loop
//!   (`support/paced.rs`); their p99 is compared with the same rate alone on the same
//!   processes (BENCH_ASSESS_SECONDS, default 5, before the events), the events/s with the
//!   W = 1 run of the round;
//! - **takeover**: 2 workers; when half the bodies are in, the worker holding the most
//!   partitions is killed (-9); the time until the other holds every partition it held, and
//!   until the stream is drained.
//!
//! The runs are interleaved (ROUNDS times: W=1, 2, 3, in-process) so the shared machine's
//! drift hits them alike; ratios are within a round. Environment: BENCH_EVENTS (per run,
//! default 200,000), BENCH_PER_BODY (default 1,000), BENCH_CUSTOMERS (default 500),
//! BENCH_SENDERS (concurrent HTTP clients, default 8), BENCH_PARTITIONS (default 16),
//! BENCH_ROUNDS (default 2), BENCH_WORKER_CONCURRENCY (`[scale] worker_concurrency`, default 4).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/paced.rs"]
mod paced;

use std::sync::atomic::{AtomicBool, Ordering};

use riskdesk_storage::query::Q;
use riskdesk_storage::{Db, DbOptions};
use serde_json::{Value, json};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Run {
    url: String,
    db: Db,
    config: std::path::PathBuf,
    stream: Option<String>,
    _dir: tempfile::TempDir,
}

fn riskdesk(run: &Run, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_riskdesk"));
    c.args(args)
        .arg("--database-url")
        .arg(&run.url)
        .arg("--config")
        .arg(&run.config)
        .env("RISKDESK_LOG", "warn")
        .stderr(Stdio::inherit());
    c
}

/// Starts `serve` and returns it, its base URL and (on a fresh database) the admin token.
fn serve(run: &Run, roles: &str) -> (Proc, String, Option<String>) {
    let mut child = riskdesk(run, &["serve", "--roles", roles, "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start riskdesk");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut token = None;
    loop {
        let l = lines.next().expect("riskdesk exited").unwrap();
        if l.starts_with("rdk_") {
            token = Some(l.trim().to_owned());
        }
        if let Some(rest) = l.strip_prefix("riskdesk listening on ") {
            let base = rest.split_whitespace().next().unwrap().to_owned();
            std::thread::spawn(move || for _ in lines {});
            return (Proc(child), base, token);
        }
    }
}

async fn fresh(pg: &str, nats: Option<&str>, partitions: usize) -> Run {
    let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
    let db = Db::connect(
        pg,
        &DbOptions {
            pg_schema: Some(schema.clone()),
            ..DbOptions::default()
        },
    )
    .await
    .expect("PostgreSQL");
    db.migrate().await.unwrap();
    let sep = if pg.contains('?') { '&' } else { '?' };
    let url = format!("{pg}{sep}options=-c%20search_path%3D{schema}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("riskdesk.toml");
    let stream = nats.map(|n| {
        let run = uuid::Uuid::now_v7().simple().to_string();
        let name = format!("RDB_{run}");
        std::fs::write(
            &config,
            format!(
                "[scale]\nnats_url = \"{n}\"\nstream = \"{name}\"\nsubject_prefix = \"rdb{run}\"\npartitions = {partitions}\nlease_seconds = 3\nworker_concurrency = {}\n",
                env("BENCH_WORKER_CONCURRENCY", 4)
            ),
        )
        .unwrap();
        name
    });
    if stream.is_none() {
        std::fs::write(&config, "").unwrap();
    }
    Run {
        url,
        db,
        config,
        stream,
        _dir: dir,
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    db.fetch_optional::<i64>(Q::new(sql.to_owned()))
        .await
        .unwrap()
        .unwrap_or(0)
}

struct Load {
    bodies: Vec<String>,
    events: usize,
}

fn load(customers: &[String], events: usize, per_body: usize) -> Load {
    let mut bodies = Vec::new();
    let mut seed: u64 = 0x5ca1e;
    let mut n = 0;
    while n < events {
        let mut lines = String::new();
        for _ in 0..per_body.min(events - n) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let c = &customers[(seed % customers.len() as u64) as usize];
            let ev = json!({"type": "usage", "event_id": format!("e-{n}"), "customer_id": c,
                "time": format!("2026-11-03T{:02}:00:00Z", n % 12), "meter_category": "Virtual Machines",
                "meter_name": "D4s v5", "region": "westeurope", "quantity": 1, "unit": "Hours",
                "cost": format!("0.{:012}", seed % 1_000_000_000_000), "currency": "USD"});
            lines.push_str(&ev.to_string());
            lines.push('\n');
            n += 1;
        }
        bodies.push(lines);
    }
    Load { bodies, events }
}

/// Posts every body from `senders` clients; per-request latencies (ms).
async fn send(
    base: &str,
    token: &str,
    bodies: &[String],
    first: usize,
    senders: usize,
    respond_async: bool,
) -> Vec<f64> {
    let queue = Arc::new(Mutex::new((0..bodies.len()).collect::<Vec<_>>()));
    let bodies = Arc::new(bodies.to_vec());
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (queue, bodies) = (queue.clone(), bodies.clone());
        let (base, token) = (base.to_owned(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut lat = Vec::new();
            loop {
                let Some(i) = queue.lock().unwrap().pop() else {
                    return lat;
                };
                let t = Instant::now();
                let mut req = c
                    .post(format!("{base}/v1/events?as_of=2026-11-03T12:00:00Z"))
                    .bearer_auth(&token)
                    .header("content-type", "application/x-ndjson")
                    .header("Idempotency-Key", format!("b-{}", first + i))
                    .body(bodies[i].clone());
                if respond_async {
                    req = req.header("Prefer", "respond-async");
                }
                let r = req.send().await.expect("riskdesk answers");
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                assert!(status == 200 || status == 202, "{status}: {text}");
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by(f64::total_cmp);
    all
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn customers(base: &str, token: &str, n: usize) -> Vec<String> {
    let c = reqwest::Client::new();
    let mut out = Vec::new();
    for i in 0..n {
        let r: Value = c
            .post(format!("{base}/v1/customers"))
            .bearer_auth(token)
            .json(&json!({"name": format!("Scale {i}"), "domain": format!("s{i}.example"), "country": "FR",
                          "email": format!("a@s{i}.example"), "cloud_instance": "global"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.push(r["id"].as_str().unwrap().to_owned());
    }
    out
}

struct Outcome {
    events_per_s: f64,
    http_p50: f64,
    http_p99: f64,
    takeover_s: Option<f64>,
    /// Sign-ups at a fixed rate: alone, then beside the events.
    signups: Option<(paced::Paced, paced::Paced)>,
}

/// A new company signing up, `n`-th of run `tag`.
fn signup(
    c: &reqwest::Client,
    base: &str,
    token: &str,
    tag: u8,
    n: usize,
) -> reqwest::RequestBuilder {
    let body = json!({
        "company": {"name": format!("Signup {tag}-{n}"), "domain": format!("su{tag}-{n}.example.com"), "country": "GB"},
        "contact": {"email": format!("ops@su{tag}-{n}.example.com"), "phone": format!("+44209{tag}{:06}", n % 1_000_000)},
        // Consecutive sign-ups from different /24s, as independent companies' are: sign-ups of
        // one subnet are counted, so locked, in turn (that is velocity's point).
        "ip": format!("10.{}.{}.{}", 200 + tag, n % 250, (n / 250) % 250),
        "device_id": format!("su{tag}-{n}"),
        "payment_instrument": {"type": "bank_transfer"},
        "cloud_instance": "global",
    });
    c.post(format!("{base}/v1/signups/assess"))
        .bearer_auth(token)
        .json(&body)
}

/// Waits until `expected` events are committed.
async fn drained(db: &Db, expected: i64) {
    while count(db, "SELECT COUNT(*) AS n FROM events").await < expected {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One run: `workers` ingest workers (None: in-process), optionally killing one mid-run,
/// optionally with sign-ups at `signups` a second.
async fn one(
    pg: &str,
    nats: &str,
    workers: Option<usize>,
    kill: bool,
    signups: Option<f64>,
) -> Outcome {
    let (events, per_body, n_customers, senders, partitions) = (
        env("BENCH_EVENTS", 200_000),
        env("BENCH_PER_BODY", 1_000),
        env("BENCH_CUSTOMERS", 500),
        env("BENCH_SENDERS", 8),
        env("BENCH_PARTITIONS", 16),
    );
    let run = fresh(pg, workers.map(|_| nats), partitions).await;
    let (_api, base, token) = serve(&run, "api");
    let token = token.expect("a fresh database prints its admin token");
    let cs = customers(&base, &token, n_customers).await;
    let l = load(&cs, events, per_body);
    let mut procs: Vec<Proc> = (0..workers.unwrap_or(0))
        .map(|_| {
            Proc(
                riskdesk(&run, &["worker", "--roles", "ingest"])
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    if workers.is_some() {
        // Every partition owned before the clock starts.
        let want = partitions as i64;
        while count(
            &run.db,
            "SELECT COUNT(*) AS n FROM leases WHERE name LIKE 'ingest:%:p%' AND lease_until > 0",
        )
        .await
            < want
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut paced_alone = None;
    if let Some(rate) = signups {
        let (b, t) = (base.clone(), token.clone());
        let secs = env("BENCH_ASSESS_SECONDS", 5) as f64;
        // A second of them first, not counted: the API's pool opens its connections.
        let (b2, t2) = (b.clone(), t.clone());
        paced::paced(rate, 1.0, move |c, n| signup(c, &b2, &t2, 2, n)).await;
        paced_alone = Some(paced::paced(rate, secs, move |c, n| signup(c, &b, &t, 0, n)).await);
    }
    let expected = l.events as i64;
    let started = Instant::now();
    let mut takeover_s = None;
    let mut paced_mixed = None;
    let lat = if kill {
        let half = l.bodies.len() / 2;
        let mut lat = send(&base, &token, &l.bodies[..half], 0, senders, true).await;
        let (victim, held) = busiest(&run.db).await;
        let idx = procs
            .iter()
            .position(|p| p.0.id() == victim)
            .expect("our worker");
        let killed = Instant::now();
        drop(procs.remove(idx));
        let rest = send(&base, &token, &l.bodies[half..], half, senders, true);
        let watch = async {
            loop {
                let still = held_by(&run.db, victim, &held).await;
                if still == 0 {
                    return killed.elapsed().as_secs_f64();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let (more, t) = tokio::join!(rest, watch);
        takeover_s = Some(t);
        lat.extend(more);
        lat.sort_by(f64::total_cmp);
        lat
    } else {
        let stop = Arc::new(AtomicBool::new(false));
        let ingest = async {
            let lat = send(&base, &token, &l.bodies, 0, senders, workers.is_some()).await;
            drained(&run.db, expected).await;
            stop.store(true, Ordering::Relaxed);
            lat
        };
        match signups {
            Some(rate) => {
                let (b, t) = (base.clone(), token.clone());
                let (lat, p) = tokio::join!(
                    ingest,
                    paced::paced_until(rate, stop.clone(), move |c, n| signup(c, &b, &t, 1, n))
                );
                paced_mixed = Some(p);
                lat
            }
            None => ingest.await,
        }
    };
    drained(&run.db, expected).await;
    let secs = started.elapsed().as_secs_f64();
    drop(procs);
    if let Some(stream) = &run.stream {
        let s = riskdesk_connectors::jetstream::EventStream::connect(
            riskdesk_connectors::jetstream::StreamSettings {
                url: nats.to_owned(),
                stream: stream.clone(),
                subject_prefix: "unused".into(),
                partitions: partitions as u32,
                replicas: 1,
                max_bytes: 1 << 30,
                ack_wait: Duration::from_secs(30),
            },
        )
        .await;
        if let Ok(s) = s {
            let _ = s.delete().await;
        }
    }
    Outcome {
        events_per_s: l.events as f64 / secs,
        http_p50: pct(&lat, 0.5),
        http_p99: pct(&lat, 0.99),
        takeover_s,
        signups: paced_alone.zip(paced_mixed),
    }
}

async fn busiest(db: &Db) -> (u32, Vec<String>) {
    struct L(String, String);
    impl riskdesk_storage::query::FromRow for L {
        fn from_row(r: &dyn riskdesk_storage::query::RowLike) -> riskdesk_storage::Result<Self> {
            Ok(L(r.text("name")?, r.text("holder")?))
        }
    }
    let rows: Vec<L> = db
        .fetch_all(Q::new(
            "SELECT name, holder FROM leases WHERE name LIKE 'ingest:%:p%'",
        ))
        .await
        .unwrap();
    let mut by: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in rows {
        by.entry(r.1).or_default().push(r.0);
    }
    let (holder, names) = by.into_iter().max_by_key(|(_, v)| v.len()).unwrap();
    let pid = holder
        .strip_prefix("pid")
        .and_then(|h| h.split('-').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    (pid, names)
}

/// How many of `names` are still held by the worker of `pid` (or by nobody live).
async fn held_by(db: &Db, pid: u32, names: &[String]) -> i64 {
    let list = names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(",");
    count(
        db,
        &format!(
            "SELECT COUNT(*) AS n FROM leases WHERE name IN ({list}) AND holder LIKE 'pid{pid}-%'"
        ),
    )
    .await
}

fn main() {
    let pg = std::env::var("RISKDESK_BENCH_PG")
        .expect("RISKDESK_BENCH_PG=postgres://… (this bench runs on PostgreSQL)");
    let nats =
        std::env::var("RISKDESK_BENCH_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let rounds = env("BENCH_ROUNDS", 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "events {} per run, {} per body, {} customers, {} senders, {} partitions",
            env("BENCH_EVENTS", 200_000),
            env("BENCH_PER_BODY", 1_000),
            env("BENCH_CUSTOMERS", 500),
            env("BENCH_SENDERS", 8),
            env("BENCH_PARTITIONS", 16)
        );
        println!("{:<8} {:<22} {:>10} {:>10} {:>10} {:>8}", "round", "run", "events/s", "p50 ms", "p99 ms", "vs W=1");
        for r in 1..=rounds {
            let mut w1 = 0.0;
            let rate = env("BENCH_ASSESS_RATE", 200) as f64;
            let mut runs = vec![("stream, 1 worker", Some(1), None)];
            if rate > 0.0 {
                runs.push(("1 worker + sign-ups", Some(1), Some(rate)));
            }
            runs.extend([("stream, 2 workers", Some(2), None), ("stream, 3 workers", Some(3), None), ("in-process (no NATS)", None, None)]);
            for (name, w, signups) in runs {
                let o = one(&pg, &nats, w, false, signups).await;
                if w == Some(1) && signups.is_none() {
                    w1 = o.events_per_s;
                }
                println!(
                    "{r:<8} {name:<22} {:>10.0} {:>10.1} {:>10.1} {:>8.2}",
                    o.events_per_s, o.http_p50, o.http_p99, o.events_per_s / w1
                );
                if let Some((alone, mixed)) = &o.signups {
                    println!(
                        "{r:<8}   sign-ups at {rate}/s: alone p50 {:.2} p99 {:.2} ms ({} errors), beside the events p50 {:.2} p99 {:.2} max {:.2} ms ({} errors, {:.0}/s): p99 {:.2}× (target ≤ 3×); events/s {:.0} % of W=1 (target ≥ 80 %)",
                        alone.p50_ms, alone.p99_ms, alone.errors, mixed.p50_ms, mixed.p99_ms, mixed.max_ms, mixed.errors, mixed.rps,
                        mixed.p99_ms / alone.p99_ms, 100.0 * o.events_per_s / w1
                    );
                }
            }
        }
        let o = one(&pg, &nats, Some(2), true, None).await;
        println!(
            "takeover: 2 workers, the busiest killed (-9) half-way: its partitions held by the other after {:.2} s; {:.0} events/s over the run (p50 {:.1} ms, p99 {:.1} ms)",
            o.takeover_s.unwrap(),
            o.events_per_s,
            o.http_p50,
            o.http_p99
        );
    });
}
