//! HTTP load benchmark (run by hand: `cargo bench -p riskdesk --bench http`; see BENCHMARKS.md).
//!
//! Starts the real `riskdesk serve` binary on a fresh database, then drives it from this
//! process with C concurrent keep-alive connections for D seconds per phase:
//!   1. GET /healthz                    — the baseline: the same server doing no work
//!   2. GET /v1/customers/{id}          — an authenticated read
//!   3. POST /v1/subscriptions/{id}/actions — a durable write with its audit entry; each
//!      connection owns SUBS_PER_CONN subscriptions and suspends then reactivates each in turn,
//!      so every request is a real state change (no 409s) and histories stay realistic.
//!   4. POST /v1/invoices               — a recorded invoice (lines, ledger entry, audit entry,
//!      exposure); each connection bills its own customer.
//!   5. POST /v1/signups/assess         — a stored assessment with velocity counted, fraud
//!      links looked up, and (approve) the customer created; every request a new company,
//!      email and IP, so each is a full approval path.
//! Reports requests/s, p50/p99 latency and the ratio to the baseline measured in the same run.
//!
//! Environment: BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 64),
//! BENCH_DATABASE_URL (default: a fresh SQLite file; e.g. postgres://postgres@127.0.0.1:5432/test
//! runs against a fresh schema there), BENCH_SQLITE_SYNCHRONOUS (default full),
//! BENCH_PG_POOL (PostgreSQL connections of the server, default its configured 16),
//! BENCH_API_PROCESSES (PostgreSQL: this many API processes on the one database, default 1),
//! BENCH_ASSESS_RATE (sign-ups a second in the open-loop phases of item 5, default 200).
//!
//! Item 5 (interactive writes beside bulk ingest) is measured two ways. Closed loop: 16
//! connections send assessments back to back while 4 send event batches, which shows how the
//! two share a saturated machine. Open loop: assessments arrive at BENCH_ASSESS_RATE a second
//! whatever the server is doing, as sign-ups do, and their latency counts from when each was
//! due (`support/paced.rs`), which is what the target's p99 is about.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/paced.rs"]
mod paced;

const SUBS_PER_CONN: usize = 16;

struct PhaseResult {
    name: &'static str,
    requests: usize,
    errors: usize,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

/// Runs `conns` workers for `secs`; worker i calls `make(i, n)` for its n-th request.
async fn phase<F>(name: &'static str, conns: usize, secs: u64, make: F) -> PhaseResult
where
    F: Fn(&reqwest::Client, usize, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..conns {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0usize;
            let mut n = 0usize;
            while Instant::now() < deadline {
                let t = Instant::now();
                match make(&client, i, n).send().await {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        let _ = r.bytes().await;
                        if !ok {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
                lat.push(t.elapsed().as_micros() as u64);
                n += 1;
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    PhaseResult {
        name,
        requests: all.len(),
        errors,
        rps: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
    }
}

/// Starts `riskdesk serve` (with `--roles ROLES` when given) on `db_url`; the process, its
/// base URL and the admin token it prints on a fresh database.
fn start_server(
    db_url: &str,
    config: &std::path::Path,
    roles: Option<&str>,
) -> (std::process::Child, String, Option<String>) {
    let sync = std::env::var("BENCH_SQLITE_SYNCHRONOUS").unwrap_or_else(|_| "full".into());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_riskdesk"));
    cmd.arg("serve");
    if let Some(r) = roles {
        cmd.args(["--roles", r]);
    }
    let mut child = cmd
        .args([
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            db_url,
            "--config",
        ])
        .arg(config)
        .env("RISKDESK_SQLITE_SYNCHRONOUS", &sync)
        .envs(
            std::env::var("BENCH_BULK_YIELD_MS")
                .ok()
                .map(|n| ("RISKDESK_SQLITE_BULK_YIELD_MS", n)),
        )
        .envs(
            std::env::var("BENCH_PG_POOL")
                .ok()
                .map(|n| ("RISKDESK_PG_MAX_CONNECTIONS", n)),
        )
        .env("RISKDESK_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start riskdesk");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut token = None;
    loop {
        let mut l = String::new();
        assert!(reader.read_line(&mut l).unwrap() > 0, "server exited");
        if l.starts_with("rdk_") {
            token = Some(l.trim().to_owned());
        }
        if let Some(rest) = l.strip_prefix("riskdesk listening on ") {
            let base = rest.split_whitespace().next().unwrap().to_owned();
            std::thread::spawn(move || for _ in reader.lines() {});
            return (child, base, token);
        }
    }
}

/// The environment variable `name` parsed, or `default` when unset or unreadable.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Connections of the mixed phases (item 5): event batches and assessments.
const INGEST_CONNS: usize = 4;
const ASSESS_CONNS: usize = 16;

fn main() {
    let secs: u64 = env_or("BENCH_SECONDS", 10);
    let conns: usize = env_or("BENCH_CONNECTIONS", 64);
    let api_processes: usize = env_or("BENCH_API_PROCESSES", 1);
    let assess_rate: f64 = env_or("BENCH_ASSESS_RATE", 200.0);
    // BENCH_ONLY=invoices,item5 runs those groups (and the baseline) only: reads, actions,
    // invoices, item5, assess.
    let only = std::env::var("BENCH_ONLY").ok();
    let want = move |group: &str| {
        only.as_ref()
            .is_none_or(|o| o.split(',').any(|g| g == group))
    };
    let dir = tempfile::tempdir().unwrap();
    let (db_url, label) = match std::env::var("BENCH_DATABASE_URL") {
        Ok(u) if u.starts_with("postgres") => {
            let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
            let admin = Command::new("psql")
                .arg(&u)
                .arg("-qc")
                .arg(format!("CREATE SCHEMA {schema}"))
                .status();
            assert!(
                admin.map(|s| s.success()).unwrap_or(false),
                "cannot create schema {schema} with psql"
            );
            let sep = if u.contains('?') { '&' } else { '?' };
            (
                format!("{u}{sep}options=-c%20search_path%3D{schema}"),
                "PostgreSQL".to_owned(),
            )
        }
        Ok(u) => (u, "SQLite".to_owned()),
        Err(_) => (
            dir.path().join("bench.db").to_string_lossy().into_owned(),
            "SQLite".to_owned(),
        ),
    };
    assert!(
        api_processes == 1 || label == "PostgreSQL",
        "BENCH_API_PROCESSES > 1 needs BENCH_DATABASE_URL=postgres://…"
    );
    let sync = std::env::var("BENCH_SQLITE_SYNCHRONOUS").unwrap_or_else(|_| "full".into());
    let (child, base, token) = start_server(&db_url, &dir.path().join("none.toml"), None);
    let token = token.expect("a fresh database prints its admin token");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut extra = Vec::new();
    let (results, paced_out) = rt.block_on(async {
        let c = reqwest::Client::new();
        let customer: Value = c
            .post(format!("{base}/v1/customers"))
            .bearer_auth(&token)
            .json(&json!({"name": "Bench Ltd", "domain": "bench.example", "country": "FR", "email": "a@bench.example", "cloud_instance": "global"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let cid = customer["id"].as_str().unwrap().to_owned();
        let mut subs = Vec::new();
        for _ in 0..conns * SUBS_PER_CONN {
            let s: Value = c
                .post(format!("{base}/v1/customers/{cid}/subscriptions"))
                .bearer_auth(&token)
                .json(&json!({"offer": "Azure plan"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            subs.push(s["id"].as_str().unwrap().to_owned());
        }
        let subs = Arc::new(subs);
        // One customer per connection for the invoice phase (a customer's invoices are one
        // account: its writers queue on it).
        let mut payers = Vec::new();
        for i in 0..conns {
            let p: Value = c
                .post(format!("{base}/v1/customers"))
                .bearer_auth(&token)
                .json(&json!({"name": format!("Payer {i}"), "domain": format!("payer{i}.example"), "country": "FR", "email": format!("a@payer{i}.example"), "cloud_instance": "global"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            payers.push(p["id"].as_str().unwrap().to_owned());
        }
        let payers = Arc::new(payers);
        let mut out = Vec::new();
        let mut paced_out = None;
        // BENCH_API_PROCESSES (PostgreSQL only): more `serve --roles api` processes on the
        // same database; connection i talks to process i mod their number.
        let mut bases = vec![base.clone()];
        for _ in 1..api_processes {
            let (p, b, _) = start_server(&db_url, &dir.path().join("none.toml"), Some("api"));
            extra.push(p);
            bases.push(b);
        }
        let bases = Arc::new(bases);
        let b = bases.clone();
        out.push(phase("GET /healthz", conns, secs, move |c, i, _| c.get(format!("{}/healthz", b[i % b.len()]))).await);
        let (b, t) = (bases.clone(), token.clone());
        if want("reads") {
            out.push(phase("GET /v1/customers/{id}", conns, secs, move |c, i, _| c.get(format!("{}/v1/customers/{cid}", b[i % b.len()])).bearer_auth(&t)).await);
        }
        let (b, t) = (bases.clone(), token.clone());
        if want("actions") { out.push(
            phase("POST /v1/subscriptions/{id}/actions", conns, secs, move |c, i, n| {
                let body = if n % 2 == 0 { json!({"action": "suspend", "reason": "investigation"}) } else { json!({"action": "reactivate", "reason": "resolved"}) };
                let sub = &subs[i * SUBS_PER_CONN + (n / 2) % SUBS_PER_CONN];
                c.post(format!("{}/v1/subscriptions/{sub}/actions", b[i % b.len()])).bearer_auth(&t).json(&body)
            })
            .await,
        ); }
        let (b, t, payers_) = (bases.clone(), token.clone(), payers.clone());
        if want("invoices") { out.push(
            phase("POST /v1/invoices", conns, secs, move |c, i, n| {
                let payers = &payers_;
                let body = json!({
                    "customer_id": payers[i], "number": format!("INV-{i}-{n}"),
                    "issue_date": "2026-11-01", "due_date": "2026-12-01", "currency": "EUR",
                    "lines": [{"description": "Azure plan usage", "amount": "120.50"}], "total": "120.50",
                });
                c.post(format!("{}/v1/invoices", b[i % b.len()])).bearer_auth(&t).json(&body)
            })
            .await,
        ); }
        // Item 5 of issue 20: interactive writes under bulk ingest. Usage streams in over
        // POST /v1/events (1,000 events per request, INGEST_CONNS connections) alone, then
        // assessments alone (ASSESS_CONNS), then both at once.
        let events_req = {
            // Usage of many customers, as a partner's feed is (one customer's lock would
            // serialise every request).
            let (b, t, cids) = (bases.clone(), token.clone(), payers.clone());
            move |c: &reqwest::Client, i: usize, n: usize, tag: &str| {
                let mut body = String::with_capacity(300 * 1000);
                for k in 0..1000 {
                    let cid = &cids[(i * 7919 + n * 1000 + k) % cids.len()];
                    body.push_str(&json!({"type": "usage", "event_id": format!("{tag}-{i}-{n}-{k}"), "customer_id": cid,
                        "time": "2026-11-03T10:00:00Z", "meter_category": "Virtual Machines", "meter_name": "D4s v5",
                        "region": "westeurope", "quantity": 1, "unit": "Hours", "cost": "0.123456789012", "currency": "USD"}).to_string());
                    body.push('\n');
                }
                c.post(format!("{}/v1/events?as_of=2026-11-03T12:00:00Z", b[i % b.len()])).bearer_auth(&t)
                    .header("content-type", "application/x-ndjson").body(body)
            }
        };
        let assess_req = {
            let (b, t) = (bases.clone(), token.clone());
            move |c: &reqwest::Client, i: usize, n: usize, tag: &str| {
                let body = json!({
                    "company": {"name": format!("Mix {tag} {i}-{n}"), "domain": format!("m{tag}{i}-{n}.example.com"), "country": "GB"},
                    "contact": {"email": format!("ops@m{tag}{i}-{n}.example.com"), "phone": format!("+44208{:07}", (i * 100_000 + n) % 10_000_000)},
                    // Consecutive sign-ups from different /24s, as independent
                    // companies' are (one subnet's are counted, so locked, in turn).
                    "ip": format!("10.{}.{}.{}", 100 + i, n % 250, (n / 250) % 250),
                    "device_id": format!("m{tag}{i}-{n}"),
                    "payment_instrument": {"type": "bank_transfer"},
                    "cloud_instance": "global",
                });
                c.post(format!("{}/v1/signups/assess", b[i % b.len()])).bearer_auth(&t).json(&body)
            }
        };
        if want("item5") {
            let e = events_req.clone();
            out.push(phase("POST /v1/events ×1000, alone", INGEST_CONNS, secs, move |c, i, n| e(c, i, n, "a")).await);
            let a = assess_req.clone();
            out.push(phase("POST /v1/signups/assess, alone", ASSESS_CONNS, secs, move |c, i, n| a(c, i, n, "a")).await);
            let (e, a) = (events_req.clone(), assess_req.clone());
            let (ev, asv) = tokio::join!(
                phase("POST /v1/events ×1000, mixed", INGEST_CONNS, secs, move |c, i, n| e(c, i, n, "m")),
                phase("POST /v1/signups/assess, mixed", ASSESS_CONNS, secs, move |c, i, n| a(c, i, n, "m")),
            );
            out.push(ev);
            out.push(asv);
            // Open loop: sign-ups at a fixed rate, alone and beside full-speed ingest.
            let a = assess_req.clone();
            let alone = paced::paced(assess_rate, secs as f64, move |c, n| a(c, 120, n, "pa")).await;
            // Ingest alone again, on the database as the phases before left it: ingest slows
            // as the tables grow, so its share beside sign-ups is read against this run.
            let e = events_req.clone();
            out.push(phase("POST /v1/events ×1000, alone again", INGEST_CONNS, secs, move |c, i, n| e(c, i, n, "r")).await);
            let (e, a) = (events_req.clone(), assess_req.clone());
            let (ev, mixed) = tokio::join!(
                phase("POST /v1/events ×1000, beside paced", INGEST_CONNS, secs, move |c, i, n| e(c, i, n, "p")),
                paced::paced(assess_rate, secs as f64, move |c, n| a(c, 121, n, "pm")),
            );
            out.push(ev);
            paced_out = Some((alone, mixed));
        }
        let (b, t) = (bases.clone(), token.clone());
        if want("assess") { out.push(
            phase("POST /v1/signups/assess", conns, secs, move |c, i, n| {
                let body = json!({
                    "company": {"name": format!("Bench {i}-{n}"), "domain": format!("b{i}-{n}.example.com"), "country": "GB"},
                    "contact": {"email": format!("ops@b{i}-{n}.example.com"), "phone": format!("+44207{:07}", (i * 100_000 + n) % 10_000_000)},
                    "ip": format!("10.{}.{}.{}", i, (n / 250) % 250, n % 250),
                    "device_id": format!("d{i}-{n}"),
                    "payment_instrument": {"type": "bank_transfer"},
                    "cloud_instance": "global",
                });
                c.post(format!("{}/v1/signups/assess", b[i % b.len()])).bearer_auth(&t).json(&body)
            })
            .await,
        ); }
        (out, paced_out)
    });
    for mut p in extra.into_iter().chain([child]) {
        let _ = p.kill();
        let _ = p.wait();
    }
    let baseline = results[0].rps;
    println!(
        "backend: {label} (sqlite synchronous={sync}); {api_processes} API process(es); {conns} connections, {secs} s per phase"
    );
    println!(
        "{:<38} {:>9} {:>7} {:>10} {:>8} {:>8} {:>9}",
        "phase", "requests", "errors", "req/s", "p50 ms", "p99 ms", "vs health"
    );
    let by = |n: &str| results.iter().find(|r| r.name == n);
    if let (Some(ea), Some(aa), Some(em), Some(am)) = (
        by("POST /v1/events ×1000, alone"),
        by("POST /v1/signups/assess, alone"),
        by("POST /v1/events ×1000, mixed"),
        by("POST /v1/signups/assess, mixed"),
    ) {
        println!(
            "under ingest: assessment p99 {:.2} ms vs {:.2} ms alone ({:.2}×, target ≤ 3×); ingest {:.0} events/s vs {:.0} alone ({:.0} %, target ≥ 80 %)",
            am.p99_ms,
            aa.p99_ms,
            am.p99_ms / aa.p99_ms,
            em.rps * 1000.0,
            ea.rps * 1000.0,
            100.0 * em.rps / ea.rps
        );
    }
    if let (Some((alone, mixed)), Some(ea), Some(ep)) = (
        &paced_out,
        by("POST /v1/events ×1000, alone again"),
        by("POST /v1/events ×1000, beside paced"),
    ) {
        println!(
            "open loop, assessments at {assess_rate}/s: alone {:.0}/s p50 {:.2} p99 {:.2} max {:.2} ms ({} errors); beside ingest {:.0}/s p50 {:.2} p99 {:.2} max {:.2} ms ({} errors): p99 {:.2}× (target ≤ 3×); ingest {:.0} events/s vs {:.0} alone just before ({:.0} %, target ≥ 80 %)",
            alone.rps,
            alone.p50_ms,
            alone.p99_ms,
            alone.max_ms,
            alone.errors,
            mixed.rps,
            mixed.p50_ms,
            mixed.p99_ms,
            mixed.max_ms,
            mixed.errors,
            mixed.p99_ms / alone.p99_ms,
            ep.rps * 1000.0,
            ea.rps * 1000.0,
            100.0 * ep.rps / ea.rps
        );
    }
    for r in &results {
        println!(
            "{:<38} {:>9} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>8.1}%",
            r.name,
            r.requests,
            r.errors,
            r.rps,
            r.p50_ms,
            r.p99_ms,
            100.0 * r.rps / baseline
        );
    }
}
