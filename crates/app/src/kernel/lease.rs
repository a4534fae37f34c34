//! Jobs that one process at a time must run (a scheduler's passes), under leases in the
//! database (`riskdesk_storage::leases`): every process that could run a job tries to hold its
//! lease every third of the lease's time; the holder runs the job, the others wait, and when
//! the holder dies its leases run out and another process takes them over. Leases are
//! infrastructure, not business time: they run on the processes' wall clocks (which must
//! agree within a fraction of the lease, as NTP keeps them), not on the injected clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use riskdesk_storage::Db;
use riskdesk_storage::leases::{self, LeaseRow};

use crate::kernel::AppError;

/// The leases this process asks for, and until when (by its monotonic clock) each is its own.
pub struct Leases {
    db: Db,
    holder: String,
    ttl: Duration,
    names: Vec<&'static str>,
    held: Mutex<HashMap<&'static str, Instant>>,
}

fn wall_micros() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

impl Leases {
    /// A process's leases on `names`, each held for `ttl` from its last renewal.
    pub fn new(db: Db, names: Vec<&'static str>, ttl: Duration) -> Self {
        let id = uuid::Uuid::now_v7().simple().to_string();
        Leases {
            db,
            holder: format!("pid{}-{}", std::process::id(), &id[id.len() - 12..]),
            ttl,
            names,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// This process's name in the lease table.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Takes or renews every lease this process asks for; returns the ones it holds.
    pub async fn beat(&self) -> Result<Vec<LeaseRow>, AppError> {
        let mut got = Vec::new();
        for &name in &self.names {
            let asked = Instant::now();
            let now = wall_micros();
            let until = now + self.ttl.as_micros() as i64;
            let held = leases::hold(&self.db, name, &self.holder, now, until).await?;
            let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
            match held {
                // Counted from before the statement: the database's lease runs out no earlier.
                Some(row) => {
                    h.insert(name, asked + self.ttl);
                    got.push(row);
                }
                None => {
                    h.remove(name);
                }
            }
        }
        Ok(got)
    }

    /// Whether this process holds `name` now. A process that could not renew (the database
    /// was unreachable) stops leading when its last renewal runs out, before anyone can
    /// take the lease over.
    pub fn leads(&self, name: &str) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .is_some_and(|until| Instant::now() < *until)
    }

    /// Gives every lease held up, so the next process need not wait for them to run out.
    pub async fn release_all(&self) {
        let names: Vec<&'static str> = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(n, _)| n)
            .collect();
        for name in names {
            if let Err(e) = leases::release(&self.db, name, &self.holder).await {
                tracing::warn!(lease = name, error = %e, "could not release a lease");
            }
        }
    }

    /// Renews the leases every third of their time until `stop`, then releases them.
    pub async fn run(self: std::sync::Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.beat().await {
                tracing::warn!(error = %e, "lease renewal failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.ttl / 3) => {}
                _ = stop.changed() => break,
            }
        }
        self.release_all().await;
    }
}
