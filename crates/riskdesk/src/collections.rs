//! `riskdesk report aging`, `riskdesk dunning run`, `riskdesk notices check`.

use jiff::Timestamp;
use riskdesk_app::billing::reports::{AgingReport, aging_report};
use riskdesk_domain::TenantId;
use riskdesk_domain::billing::Day;
use riskdesk_domain::billing::aging::{Basis, Buckets};
use riskdesk_domain::billing::dunning::Policy;
use riskdesk_storage::Db;

/// Prints the aging report as a table, CSV or JSON.
pub async fn aging(
    db: &Db,
    tenant: TenantId,
    as_of: Timestamp,
    basis: Basis,
    buckets: &Buckets,
    format: &str,
) -> anyhow::Result<String> {
    let r = aging_report(db, tenant, as_of, basis, buckets)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(match format {
        "json" => serde_json::to_string_pretty(&r)? + "\n",
        "csv" => csv_out(&r)?,
        _ => table(&r),
    })
}

fn rows(r: &AgingReport) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for c in &r.customers {
        let mut row = vec![
            c.customer_name.clone().unwrap_or_default(),
            c.customer_id.map(|i| i.to_string()).unwrap_or_default(),
            c.currency.clone(),
        ];
        row.extend(c.amounts.iter().cloned());
        row.push(c.total.clone());
        out.push(row);
    }
    for t in &r.totals {
        let mut row = vec!["TOTAL".to_owned(), String::new(), t.currency.clone()];
        row.extend(t.amounts.iter().cloned());
        row.push(t.total.clone());
        out.push(row);
    }
    out
}

fn header(r: &AgingReport) -> Vec<String> {
    let mut h = vec![
        "customer".to_owned(),
        "customer_id".into(),
        "currency".into(),
    ];
    h.extend(r.buckets.iter().cloned());
    h.push("total".into());
    h
}

fn csv_out(r: &AgingReport) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header(r))?;
    for row in rows(r) {
        w.write_record(row)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn table(r: &AgingReport) -> String {
    let mut all = vec![header(r)];
    all.extend(rows(r));
    // The id column is long and rarely read in a terminal: drop it from the table.
    for row in &mut all {
        row.remove(1);
    }
    let widths: Vec<usize> = (0..all[0].len())
        .map(|i| all.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("Aging as of {} (basis: {})\n", r.as_of, r.basis);
    for (n, row) in all.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths[i] - c.chars().count();
                if i < 2 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if n == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
            out.push('\n');
        }
    }
    out
}

/// Runs the ladder for one day; prints what it did.
pub async fn dunning_run(
    ctx: &std::sync::Arc<riskdesk_app::Ctx>,
    tenant: TenantId,
    policy: &Policy,
    day: Day,
    now: Timestamp,
) -> anyhow::Result<String> {
    let s = riskdesk_app::billing::dunning::run_tenant(ctx, tenant, policy, day, now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(format!(
        "dunning run for {}: {} customers looked at, {} steps sent, {} levers applied, {} undone, purchases blocked for {}, unblocked for {}\n",
        s.as_of,
        s.customers,
        s.steps,
        s.levers_applied,
        s.levers_undone,
        s.purchases_blocked,
        s.purchases_unblocked
    ))
}
