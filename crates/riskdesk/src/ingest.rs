//! `riskdesk ingest`: files → batches of events → the same unit of work as `POST /v1/events`.

use std::io::{BufReader, Read};
use std::path::PathBuf;

use anyhow::Context as _;
use jiff::Timestamp;
use riskdesk_app::monitoring::formats::{self, FileOptions, Format};
use riskdesk_app::monitoring::{self, IngestSummary};
use riskdesk_domain::monitoring::Event;
use riskdesk_domain::{Clock, TenantId};
use riskdesk_storage::tenants::TenantRow;

type Batch = Vec<(usize, Result<Event, String>)>;

/// Rejected records printed in full; the rest are counted.
const SHOWN_REJECTS: usize = 20;

/// Loads every file; returns false if one could not be read at all.
pub async fn run(
    app: &riskdesk_app::App,
    tenant: TenantRow,
    files: &[PathBuf],
    opts: &FileOptions,
    batch: usize,
    clock: &dyn Clock,
    as_of: Timestamp,
) -> anyhow::Result<bool> {
    let tenant = TenantId(tenant.id);
    let detector = &app.detector;
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
        // Reading and parsing run on their own thread, a batch ahead of the database writes.
        let (tx_batches, mut rx_batches) = tokio::sync::mpsc::channel::<Result<Batch, String>>(2);
        let reader_bar = bar.clone();
        let reader_opts = opts.clone();
        let reader = std::thread::spawn(move || {
            let reader = BufReader::with_capacity(1 << 20, reader_bar.wrap_read(file));
            let mut iter: Box<dyn Iterator<Item = (usize, Result<Event, String>)>> = match format {
                Format::Ndjson => Box::new(formats::ndjson(reader)),
                Format::Focus => match formats::focus(reader, &reader_opts) {
                    Ok(it) => Box::new(it),
                    Err(e) => {
                        let _ = tx_batches.blocking_send(Err(e));
                        return;
                    }
                },
                Format::JsonDocument => {
                    let mut text = String::new();
                    let mut reader = reader;
                    let read = std::io::Read::read_to_string(&mut reader, &mut text)
                        .map_err(|e| format!("unreadable: {e}"))
                        .and_then(|_| formats::json_document(&text, &reader_opts));
                    match read {
                        Ok(v) => Box::new(v.into_iter()),
                        Err(e) => {
                            let _ = tx_batches.blocking_send(Err(e));
                            return;
                        }
                    }
                }
            };
            loop {
                let chunk: Batch = iter.by_ref().take(batch).collect();
                if chunk.is_empty() || tx_batches.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            }
        });
        let mut summary = IngestSummary::default();
        let mut failed = false;
        while let Some(chunk) = rx_batches.recv().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    bar.suspend(|| eprintln!("{}: {e}", path.display()));
                    failed = true;
                    break;
                }
            };
            records += chunk.len();
            let (lines, events): (Vec<usize>, Vec<Result<Event, String>>) =
                chunk.into_iter().unzip();
            let mut tx = app.begin().await?;
            // Committing marks the spend series the batch added to for anomaly scoring.
            let mut s = monitoring::ingest(&mut tx, tenant, detector, events, clock.now(), as_of)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            tx.commit().await?;
            // Batch positions back to the file's line numbers.
            for r in &mut s.rejected {
                r.index = lines[r.index];
                if shown < SHOWN_REJECTS {
                    // Lines for NDJSON and CSV; the record's position for JSON documents.
                    let place = match format {
                        Format::JsonDocument => format!("record {}", r.index),
                        _ => (r.index + 1).to_string(),
                    };
                    bar.suspend(|| eprintln!("{}:{place}: {}", path.display(), r.reason));
                    shown += 1;
                }
            }
            summary.absorb(s, 0);
        }
        let _ = reader.join();
        if failed {
            bar.finish_and_clear();
            all_ok = false;
            continue;
        }
        bar.finish_and_clear();
        eprintln!(
            "{}: {} — {} accepted ({} waiting for their customer), {} duplicates, {} rejected, {} alerts, {} shadow hits",
            path.display(),
            format.name(),
            summary.accepted,
            summary.pending_customer,
            summary.duplicates,
            summary.rejected.len(),
            summary.alerts.len(),
            summary.shadow_hits
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
    // Spend anomalies: the hours completed before `as_of` of every series the files touched,
    // in order (hours already scored again when the files brought them late spend).
    let series = detector.spend.pending();
    if series > 0 {
        let t = std::time::Instant::now();
        let now = clock.now();
        let p = detector
            .spend
            .pass(&app.ctx, as_of, now)
            .await
            .map_err(|e| anyhow::anyhow!("spend anomaly pass: {e}"))?;
        eprintln!(
            "spend anomalies: {} hours of {} series scored in {:.2} s, {} alerts",
            p.hours_scored,
            p.series,
            t.elapsed().as_secs_f64(),
            p.alerts
        );
    }
    Ok(all_ok)
}
