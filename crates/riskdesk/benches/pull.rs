//! Usage pulled from Partner Center (issue 22; run by hand, see BENCHMARKS.md):
//!
//! `cargo bench -p riskdesk --bench pull` (BENCH_LINE_ITEMS, default 20,000; BENCH_CUSTOMERS,
//! default 200; BENCH_ROUNDS, default 2).
//!
//! A fake Partner Center (in this process) serves BENCH_LINE_ITEMS unbilled usage line items in
//! pages of 2,000; riskdesk (the real binary, SQLite FULL) has BENCH_CUSTOMERS customers linked
//! to their Partner Center ids. Timed, on copies of the same database:
//! - **pull**: `riskdesk worker --roles scheduler --once` — the poll reads every page and
//!   ingests each line item (customer found by its link, one event per line item identity);
//! - **file** (the baseline): `riskdesk ingest` of the same line items saved as one Partner
//!   Center JSON document — the same ingest without the network and the link lookups.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use riskdesk_connectors::partner_center_fake::FakePartnerCenter;
use serde_json::{Value, json};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn riskdesk(config: &std::path::Path, db: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_riskdesk"));
    c.args(args)
        .arg("--database-url")
        .arg(db)
        .arg("--config")
        .arg(config)
        .env("RISKDESK_LOG", "error");
    c
}

fn main() {
    let (n, customers, rounds) = (
        env("BENCH_LINE_ITEMS", 20_000),
        env("BENCH_CUSTOMERS", 200),
        env("BENCH_ROUNDS", 2),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pc = rt.block_on(FakePartnerCenter::start());
    let dir = tempfile::tempdir().unwrap();
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let raw = format!(
            r#"{{"customerId": "pc-{c}", "entitlementId": "az-{c}", "usageDate": "2026-11-{d:02}T00:00:00Z", "meterCategory": "Virtual Machines", "meterName": "D4s v5", "meterId": "m-{i}", "resourceLocation": "westeurope", "resourceUri": "/subscriptions/az-{c}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm{i}", "quantity": 24.0, "unitOfMeasure": "1 Hour", "billingPreTaxTotal": 4.{f:012}7, "billingCurrency": "EUR", "chargeType": "new", "attributes": {{"objectType": "DailyRatedUsageLineItem"}}}}"#,
            c = i % customers,
            d = 1 + i % 28,
            f = (i as u64 * 7919) % 1_000_000_000_000
        );
        pc.add_unbilled_line_item("EUR", &raw);
        items.push(raw);
    }
    let file = dir.path().join("lineitems.json");
    std::fs::write(&file, format!("{{\"items\": [{}]}}", items.join(","))).unwrap();
    let config = dir.path().join("riskdesk.toml");
    std::fs::write(
        &config,
        format!(
            "[provider_worker]\npoll_every_minutes = 60\n\n[partner_center.global]\ntenant_id = \"partner-tenant\"\nclient_id = \"app\"\nclient_secret = \"secret\"\nrest_base = \"{u}\"\ntoken_authority = \"{u}/\"\nrequests_per_minute = 100000\nusage_currencies = [\"EUR\"]\nusage_page_size = 2000\n",
            u = pc.url
        ),
    )
    .unwrap();
    // The book: customers linked to their Partner Center ids, through the API.
    let base_db = dir.path().join("base.db");
    let mut server = riskdesk(
        &config,
        &base_db,
        &["serve", "--roles", "api", "--bind", "127.0.0.1:0"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut token = String::new();
    let base = loop {
        let l = lines.next().expect("riskdesk exited").unwrap();
        if l.starts_with("rdk_") {
            token = l.trim().to_owned();
        }
        if let Some(rest) = l.strip_prefix("riskdesk listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    rt.block_on(async {
        let c = reqwest::Client::new();
        for i in 0..customers {
            let r: Value = c
                .post(format!("{base}/v1/customers"))
                .bearer_auth(&token)
                .json(&json!({"name": format!("Pull {i}"), "domain": format!("p{i}.example"), "country": "FR",
                              "email": format!("a@p{i}.example"), "cloud_instance": "global",
                              "external_id": format!("pc-{i}")}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = r["id"].as_str().unwrap();
            let s = c
                .put(format!("{base}/v1/customers/{id}/provider-link"))
                .bearer_auth(&token)
                .json(&json!({"provider_customer_id": format!("pc-{i}")}))
                .send()
                .await
                .unwrap()
                .status();
            assert!(s.is_success(), "{s}");
        }
    });
    server.kill().unwrap();
    server.wait().unwrap();
    println!("{n} line items in pages of 2,000, {customers} linked customers, SQLite FULL");
    println!(
        "{:<6} {:<34} {:>10} {:>14} {:>8}",
        "round", "run", "seconds", "line items/s", "vs file"
    );
    for r in 1..=rounds {
        // The database with its write-ahead log (the server was stopped, not checkpointed).
        let copy = |name: &str| {
            let p = dir.path().join(format!("{name}-{r}.db"));
            std::fs::copy(&base_db, &p).unwrap();
            for ext in ["-wal", "-shm"] {
                let from = format!("{}{ext}", base_db.display());
                if std::path::Path::new(&from).exists() {
                    std::fs::copy(&from, format!("{}{ext}", p.display())).unwrap();
                }
            }
            p
        };
        let (file_db, pull_db) = (copy("file"), copy("pull"));
        let t = Instant::now();
        let out = riskdesk(
            &config,
            &file_db,
            &[
                "ingest",
                file.to_str().unwrap(),
                "--as-of",
                "2026-11-30T00:00:00Z",
            ],
        )
        .output()
        .unwrap();
        let file_s = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t = Instant::now();
        let out = riskdesk(
            &config,
            &pull_db,
            &["worker", "--roles", "scheduler", "--once"],
        )
        .output()
        .unwrap();
        let pull_s = t.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && text.contains(&format!("events_accepted: {n},")),
            "{text}"
        );
        let (file_rate, pull_rate) = (n as f64 / file_s, n as f64 / pull_s);
        println!(
            "{r:<6} {:<34} {file_s:>10.2} {file_rate:>14.0} {:>8.2}",
            "file (riskdesk ingest)", 1.0
        );
        println!(
            "{r:<6} {:<34} {pull_s:>10.2} {pull_rate:>14.0} {:>8.2}",
            "pull (worker --once, all pages)",
            pull_rate / file_rate
        );
    }
}
