//! Collections at scale (issue 5 targets): 100,000 customers and 1,000,000 invoices, then
//! - the dunning run for one day (target < 10 s),
//! - the aging report (target < 2 s),
//! - exposure of one customer (target < 1 ms),
//!
//! each next to a baseline measured in the same run on the same data (a full scan counting the
//! invoices), because the machines are shared and noisy.
//!
//! `cargo bench -p riskdesk --bench collections` (SQLite in a temp dir), or with
//! `RISKDESK_BENCH_PG=postgres://postgres@127.0.0.1:5432/test` for PostgreSQL (own schema).
//! `RISKDESK_BENCH_CUSTOMERS` scales the book (invoices = 10 per customer).
//!
//! The book: each customer has 10 monthly invoices; the 9 oldest are paid; the newest is open
//! with a due date spread over the 30 days around the run day, so a day's run does what a
//! daily run does in steady state (reminders and overdue notices for the invoices reaching
//! them that day), not a first-time catch-up.

use std::time::Instant;

use jiff::Timestamp;
use riskdesk_app::accounts as service;
use riskdesk_app::billing::reports::{aging_report, exposure_of};
use riskdesk_domain::billing::Day;
use riskdesk_domain::billing::aging::{Basis, Buckets};
use riskdesk_domain::billing::dunning::Policy;
use riskdesk_domain::customer::NewCustomer;
use riskdesk_domain::{CloudInstance, CountryCode, DomainName, Email, Locale, TenantId};
use riskdesk_storage::billing::{self, InvoiceRow};
use riskdesk_storage::customers;
use riskdesk_storage::time::to_micros;
use riskdesk_storage::{Db, DbOptions};
use uuid::Uuid;

/// This process's CPU time so far (user + system, from `/proc/self/stat`; 0 where there is
/// none), to tell the run's own work from its waits on the database.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces, so split after its ')'): utime
    // and stime are the 14th and 15th fields, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let n_customers: usize = std::env::var("RISKDESK_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let (db, backend) = match std::env::var("RISKDESK_BENCH_PG") {
        Ok(url) => {
            let schema = format!("bench_{}", Uuid::now_v7().simple());
            let db = Db::connect(
                &url,
                &DbOptions {
                    pg_schema: Some(schema),
                    ..DbOptions::default()
                },
            )
            .await?;
            (db, "PostgreSQL")
        }
        Err(_) => {
            let path = dir.path().join("bench.db");
            (
                Db::connect(&path.to_string_lossy(), &DbOptions::default()).await?,
                "SQLite (synchronous=FULL)",
            )
        }
    };
    db.migrate().await?;
    let now = Timestamp::now();
    let tenant = service::ensure_default_tenant(&db, now).await?;
    let tenant: TenantId = match tenant {
        Some((t, _)) => t.tenant_id(),
        None => service::tenant_by_slug(&db, service::DEFAULT_TENANT)
            .await?
            .tenant_id(),
    };
    let run_day = Day::parse("2027-06-15").map_err(|e| anyhow::anyhow!(e.0))?;

    let t = Instant::now();
    let mut ids = Vec::with_capacity(n_customers);
    let locales = Locale::ALL;
    for chunk_start in (0..n_customers).step_by(5_000) {
        let mut tx = db.begin().await?;
        for i in chunk_start..(chunk_start + 5_000).min(n_customers) {
            let c = customers::insert(
                &mut tx,
                tenant,
                &NewCustomer {
                    external_id: Some(format!("C{i}")),
                    name: format!("Customer {i}"),
                    domain: DomainName::parse("example.com").map_err(|e| anyhow::anyhow!(e.0))?,
                    country: CountryCode::parse("FR").map_err(|e| anyhow::anyhow!(e.0))?,
                    email: Email::parse(&format!("billing{i}@example.com"))
                        .map_err(|e| anyhow::anyhow!(e.0))?,
                    phone: None,
                    locale: locales[i % locales.len()],
                    cloud_instance: CloudInstance::Global,
                },
                now,
            )
            .await?;
            ids.push(c.id);
        }
        tx.commit().await?;
    }
    let load_customers = t.elapsed();

    let t = Instant::now();
    let at = to_micros(now);
    for chunk in ids.chunks(1_000) {
        let mut tx = db.begin().await?;
        for (k, c) in chunk.iter().enumerate() {
            let spread = (k % 30) as i32 - 14; // newest invoice due run_day-14 .. run_day+15
            for m in 0..10 {
                let due = run_day.plus(spread - 30 * (9 - m));
                let open = m == 9;
                let total = 10_000 + (k as i64 * 37 + m as i64 * 101) % 90_000;
                billing::insert_invoice(
                    &mut tx,
                    tenant,
                    &InvoiceRow {
                        id: Uuid::now_v7(),
                        customer_id: *c,
                        number: format!("{c}-{m}"),
                        issue_day: due.plus(-30).0,
                        due_day: due.0,
                        currency: "EUR".into(),
                        total_minor: total,
                        lines_json: "[]".into(),
                        subscription_ids_json: "[]".into(),
                        open_minor: if open { total } else { 0 },
                        settled_at: (!open).then_some(to_micros(due.start())),
                        disputed: false,
                        dispute_reason: None,
                        // As daily runs would have left it: the next step is the reminder at
                        // due − 3, or the overdue notice at due + 1 once the reminder is out.
                        next_check_day: open.then_some(due.plus(-3).0),
                        created_at: at,
                        updated_at: at,
                    },
                )
                .await?;
            }
        }
        tx.commit().await?;
    }
    let load_invoices = t.elapsed();
    println!(
        "{backend}: {} customers in {:.1} s, {} invoices in {:.1} s",
        ids.len(),
        load_customers.as_secs_f64(),
        ids.len() * 10,
        load_invoices.as_secs_f64()
    );

    // PostgreSQL plans from table statistics, which autovacuum gathers soon after a bulk load
    // like this one; gather them now, as a running server's tables would have them.
    if db.backend() == riskdesk_storage::Backend::Postgres {
        db.execute_raw("ANALYZE").await?;
    }

    // Baseline: a full scan of the invoices.
    let t = Instant::now();
    let open_now =
        billing::open_items_as_of(&db, tenant, Day::of(now).0 + 10_000, i64::MAX).await?;
    let baseline = t.elapsed();
    println!(
        "baseline full scan (open items, no ledger reads): {:.3} s ({} open)",
        baseline.as_secs_f64(),
        open_now.len()
    );

    let policy = Policy::default();
    let app = riskdesk_app::App::new(
        db.clone(),
        std::sync::Arc::new(riskdesk_app::SystemClock),
        &Default::default(),
    )?;
    // Catch-up so the book is in steady state on the day before (reminders and overdue
    // notices already sent for invoices past them), then the measured day.
    let t = Instant::now();
    let cpu = cpu_seconds();
    let warm = riskdesk_app::billing::dunning::run_tenant(
        &app.ctx,
        tenant,
        &policy,
        run_day.plus(-1),
        now,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "catch-up run for {} (first run over the book): {:.2} s ({:.2} s of this process's CPU), {} customers, {} steps",
        warm.as_of,
        t.elapsed().as_secs_f64(),
        cpu_seconds() - cpu,
        warm.customers,
        warm.steps
    );
    let t = Instant::now();
    let day = riskdesk_app::billing::dunning::run_tenant(&app.ctx, tenant, &policy, run_day, now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let run_time = t.elapsed();
    println!(
        "dunning run for one day ({}): {:.2} s = {:.1}x baseline, {} customers, {} steps, {} levers (target < 10 s)",
        day.as_of,
        run_time.as_secs_f64(),
        run_time.as_secs_f64() / baseline.as_secs_f64(),
        day.customers,
        day.steps,
        day.levers_applied
    );
    let t = Instant::now();
    let again = riskdesk_app::billing::dunning::run_tenant(&app.ctx, tenant, &policy, run_day, now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "same day again: {:.3} s, {} steps (idempotent)",
        t.elapsed().as_secs_f64(),
        again.steps
    );

    let as_of = run_day.end();
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let r = aging_report(&db, tenant, as_of, Basis::DueDate, &Buckets::default())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(t.elapsed());
        assert!(!r.totals.is_empty());
    }
    times.sort();
    println!(
        "aging report as of {run_day}: median {:.3} s = {:.1}x baseline (target < 2 s)",
        times[1].as_secs_f64(),
        times[1].as_secs_f64() / baseline.as_secs_f64()
    );
    let t = Instant::now();
    let _past = aging_report(
        &db,
        tenant,
        run_day.plus(-60).end(),
        Basis::DueDate,
        &Buckets::default(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "aging report as of 60 days earlier (reads the ledger): {:.3} s",
        t.elapsed().as_secs_f64()
    );

    let mut tx = db.begin().await?;
    let sample: Vec<_> = customers::get_many_tx(&mut tx, tenant, &ids[..1000]).await?;
    tx.commit().await?;
    let mut lat = Vec::new();
    for c in sample.iter().cycle().take(5_000) {
        let t = Instant::now();
        let e = exposure_of(&db, tenant, c, as_of)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        lat.push(t.elapsed());
        std::hint::black_box(e);
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    println!(
        "exposure of one customer: median {:.0} µs, p99 {:.0} µs (target < 1 ms)",
        p(0.5),
        p(0.99)
    );
    Ok(())
}
