//! Issue 6 target: opening a case from an alert and queueing its notification, in process,
//! under 5 ms at p99.
//!
//! Each sample is one unit of work, committed: `monitoring::raise` of a new high alert for a
//! customer without a case — the alert, its audit entry, the case (opened with its SLA), its
//! timeline entry and audit entry, and the `alert.raised` + `case.opened` webhooks for two
//! endpoints queued in the outbox. The baseline, interleaved with it on the same data, is the
//! bare alert insert and commit (`alerts::raise`), so the ratio says what cases cost on top.
//!
//! `cargo bench -p riskdesk --bench response` (SQLite, synchronous=FULL, in a temp dir), or
//! with `RISKDESK_BENCH_PG=postgres://postgres@127.0.0.1:5432/test` (own schema).
//! `RISKDESK_BENCH_SAMPLES` (default 2,000 of each).

use std::time::{Duration, Instant};

use jiff::Timestamp;
use riskdesk_app::accounts as service;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::customer::NewCustomer;
use riskdesk_domain::{CloudInstance, CountryCode, DomainName, Email, Locale, TenantId};
use riskdesk_storage::alerts::{self, NewAlert};
use riskdesk_storage::outbox::{self, EndpointRow};
use riskdesk_storage::time::to_micros;
use riskdesk_storage::{Db, DbOptions, customers};
use uuid::Uuid;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn run() -> anyhow::Result<()> {
    let n: usize = std::env::var("RISKDESK_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
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
    let tenant: TenantId = match service::ensure_default_tenant(&db, now).await? {
        Some((t, _)) => t.tenant_id(),
        None => service::tenant_by_slug(&db, service::DEFAULT_TENANT)
            .await?
            .tenant_id(),
    };
    let app = riskdesk_app::App::new(
        db.clone(),
        std::sync::Arc::new(riskdesk_app::SystemClock),
        &riskdesk_app::AppOptions {
            response: riskdesk_app::kernel::ResponseSettings {
                staff_email: Some("risk-team@partner.example".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )?;
    let mut tx = db.begin().await?;
    for k in 0..2 {
        outbox::insert_endpoint(
            &mut tx,
            &EndpointRow {
                id: Uuid::now_v7(),
                tenant_id: tenant.0,
                url: format!("https://hooks.partner.example/{k}"),
                secret: "whsec_bench".into(),
                active: true,
                created_at: to_micros(now),
            },
        )
        .await?;
    }
    let mut ids = Vec::with_capacity(2 * n);
    for i in 0..2 * n {
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
                locale: Locale::En,
                cloud_instance: CloudInstance::Global,
            },
            now,
        )
        .await?;
        ids.push(c.id);
    }
    tx.commit().await?;

    let actor = Actor::system("bench");
    let alert = |c: Uuid| NewAlert {
        customer_id: Some(c),
        rule: "bench.rule",
        severity: "high",
        title: "GPU spend surge on a young account",
        evidence_json: r#"{"spend_1h":"812.00"}"#.into(),
        at: to_micros(now),
        cooldown_micros: 3_600_000_000,
        occurrences: 1,
        last_at: to_micros(now),
    };
    let (mut base, mut full) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for pair in ids.chunks(2) {
        let t = Instant::now();
        let mut tx = db.begin().await?;
        alerts::raise(&mut tx, tenant, alert(pair[0]), to_micros(now)).await?;
        tx.commit().await?;
        base.push(t.elapsed());

        let t = Instant::now();
        let mut tx = app.begin().await?;
        riskdesk_app::alerts::raise(&mut tx, tenant, &actor, alert(pair[1]), now)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tx.commit().await?;
        full.push(t.elapsed());
    }
    base.sort();
    full.sort();
    let cases: Vec<i64> = db
        .fetch_all(riskdesk_storage::query::Q::new(
            "SELECT COUNT(*) AS n FROM cases",
        ))
        .await?;
    let queued: Vec<i64> = db
        .fetch_all(riskdesk_storage::query::Q::new(
            "SELECT COUNT(*) AS n FROM outbox",
        ))
        .await?;
    assert_eq!(cases[0] as usize, n, "every measured alert opened a case");
    println!(
        "backend: {backend}; {n} samples each; cases opened: {}, outbox rows: {}",
        cases[0], queued[0]
    );
    for (name, v) in [
        ("baseline: alert insert + commit", &base),
        ("alert -> case -> notifications queued + commit", &full),
    ] {
        println!(
            "{name:<48} p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
            pct(v, 0.50).as_secs_f64() * 1e3,
            pct(v, 0.99).as_secs_f64() * 1e3,
            v.last().unwrap().as_secs_f64() * 1e3
        );
    }
    println!(
        "ratio p50 {:.2}x, p99 {:.2}x (target: p99 < 5 ms)",
        pct(&full, 0.5).as_secs_f64() / pct(&base, 0.5).as_secs_f64(),
        pct(&full, 0.99).as_secs_f64() / pct(&base, 0.99).as_secs_f64()
    );
    Ok(())
}
