//! `riskdesk report aging`, `riskdesk dunning run`, `riskdesk notices check`.

use jiff::Timestamp;
use riskdesk_app::billing::reports::{AgingReport, aging_header, aging_report, aging_rows};
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
        "csv" => {
            riskdesk_app::billing::reports::aging_csv(&r).map_err(|e| anyhow::anyhow!("{e}"))?
        }
        _ => table(&r),
    })
}

fn table(r: &AgingReport) -> String {
    let mut all = vec![aging_header(r)];
    all.extend(aging_rows(r));
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
