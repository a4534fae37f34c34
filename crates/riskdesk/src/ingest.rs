//! `riskdesk ingest`: files → batches of events → the same unit of work as `POST /v1/events`.

use std::io::{BufReader, Read};
use std::path::PathBuf;

use anyhow::Context as _;
use jiff::Timestamp;
use riskdesk_domain::monitoring::Event;
use riskdesk_domain::{Clock, TenantId};
use riskdesk_server::formats::{self, FileOptions, Format};
use riskdesk_server::monitoring::{self, IngestSummary};
use riskdesk_storage::Db;
use riskdesk_storage::tenants::TenantRow;

/// Rejected records printed in full; the rest are counted.
const SHOWN_REJECTS: usize = 20;

/// Loads every file; returns false if one could not be read at all.
pub async fn run(
    db: &Db,
    tenant: TenantRow,
    files: &[PathBuf],
    opts: &FileOptions,
    batch: usize,
    clock: &dyn Clock,
    as_of: Timestamp,
) -> anyhow::Result<bool> {
    let tenant = TenantId(tenant.id);
    let mut all_ok = true;
    let started = std::time::Instant::now();
    let mut total = IngestSummary::default();
    let mut records = 0usize;
    let mut shown = 0usize;
    for path in files {
        let mut head = vec![0u8; 4096];
        let n = std::fs::File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .with_context(|| format!("cannot read {}", path.display()));
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                eprintln!("{e:#}");
                all_ok = false;
                continue;
            }
        };
        let format = match formats::detect(&head[..n]) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                all_ok = false;
                continue;
            }
        };
        let file = std::fs::File::open(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(format!("{} ({})", path.display(), format.name()));
        let reader = BufReader::with_capacity(1 << 20, bar.wrap_read(file));
        let mut iter: Box<dyn Iterator<Item = (usize, Result<Event, String>)>> = match format {
            Format::Ndjson => Box::new(formats::ndjson(reader)),
            Format::Focus => match formats::focus(reader, opts) {
                Ok(it) => Box::new(it),
                Err(e) => {
                    bar.finish_and_clear();
                    eprintln!("{}: {e}", path.display());
                    all_ok = false;
                    continue;
                }
            },
        };
        let mut summary = IngestSummary::default();
        loop {
            let chunk: Vec<(usize, Result<Event, String>)> = iter.by_ref().take(batch).collect();
            if chunk.is_empty() {
                break;
            }
            records += chunk.len();
            let (lines, events): (Vec<usize>, Vec<Result<Event, String>>) =
                chunk.into_iter().unzip();
            let mut tx = db.begin().await?;
            let mut s = monitoring::ingest(&mut tx, tenant, events, clock.now(), as_of)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            tx.commit().await?;
            // Batch positions back to the file's line numbers.
            for r in &mut s.rejected {
                r.index = lines[r.index];
                if shown < SHOWN_REJECTS {
                    bar.suspend(|| eprintln!("{}:{}: {}", path.display(), r.index + 1, r.reason));
                    shown += 1;
                }
            }
            summary.absorb(s, 0);
        }
        bar.finish_and_clear();
        eprintln!(
            "{}: {} — {} accepted ({} waiting for their customer), {} duplicates, {} rejected, {} alerts",
            path.display(),
            format.name(),
            summary.accepted,
            summary.pending_customer,
            summary.duplicates,
            summary.rejected.len(),
            summary.alerts.len()
        );
        total.absorb(summary, 0);
    }
    let secs = started.elapsed().as_secs_f64();
    if total.rejected.len() > shown {
        eprintln!(
            "… and {} more rejected records",
            total.rejected.len() - shown
        );
    }
    eprintln!(
        "{records} records in {secs:.2} s ({:.0}/s): {} accepted, {} duplicates, {} rejected, {} alerts",
        records as f64 / secs.max(1e-9),
        total.accepted,
        total.duplicates,
        total.rejected.len(),
        total.alerts.len()
    );
    Ok(all_ok)
}
