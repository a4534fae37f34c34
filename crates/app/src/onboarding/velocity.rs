//! Sign-up velocity counted in memory.
//!
//! Counting a sign-up's velocity values in SQL (insert, then one `COUNT` per value) was the
//! largest share of an assessment's time under SQLite's single writer, and every assessment
//! queued behind it. On SQLite one server process owns the database file, so the windows can
//! live in this process: each tenant's records are loaded once from `signup_velocity` (the
//! durable copy, still written by every assessment) and every assessment then counts and
//! records under a short mutex, before its unit of work starts. Counting and recording are one
//! step, so concurrent sign-ups count each other exactly; a sign-up whose unit of work fails is
//! taken back out ([`Recorded`] is dropped without [`Recorded::keep`]).
//!
//! The book answers only for windows it holds completely: records at or after its `floor`. An
//! assessment whose window reaches back before the floor (an `as_of` replay of the past) is
//! counted in SQL instead. PostgreSQL (several server processes) always counts in SQL, under
//! advisory locks.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use riskdesk_domain::onboarding::assess::VelocityKind;
use riskdesk_storage::Db;
use riskdesk_storage::signups;
use riskdesk_storage::time::to_micros;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// How far behind the newest record the book keeps more than the longest window. Requests read
/// the clock before they take the lock, so a live sign-up's time can be a moment older than the
/// newest record; without this margin its window would reach before the floor and be counted
/// in storage instead.
const PRUNE_SLACK_MICROS: i64 = 10 * 60 * 1_000_000;

pub struct VelocityBook {
    /// The longest configured window (microseconds): what a tenant's book must hold.
    longest: i64,
    /// Loaded at or after this instant (the process start minus the longest window).
    start_floor: i64,
    tenants: Mutex<HashMap<Uuid, Arc<OnceCell<Arc<Mutex<Windows>>>>>>,
}

#[derive(Default)]
struct Windows {
    /// Every record with `at >= floor` is here.
    floor: i64,
    /// Record times per (kind, value), ascending.
    by_key: HashMap<(VelocityKind, String), Vec<i64>>,
    /// Every record's (time, key), oldest first: pruning pops what the windows no longer reach
    /// instead of visiting every key (that visit, every 4,096 records, held the lock for tens of
    /// milliseconds once a burst of distinct values had filled the book). A record taken back
    /// out stays here until pruned; pruning a key twice is harmless.
    by_time: BinaryHeap<Reverse<(i64, (VelocityKind, String))>>,
    latest: i64,
}

impl Windows {
    fn insert(&mut self, key: &(VelocityKind, String), at: i64) {
        let times = self.by_key.entry(key.clone()).or_default();
        let pos = times.partition_point(|t| *t <= at);
        times.insert(pos, at);
        self.by_time.push(Reverse((at, key.clone())));
        self.latest = self.latest.max(at);
    }

    fn remove(&mut self, key: &(VelocityKind, String), at: i64) {
        if let Some(times) = self.by_key.get_mut(key) {
            if let Some(pos) = times.iter().rposition(|t| *t == at) {
                times.remove(pos);
            }
            if times.is_empty() {
                self.by_key.remove(key);
            }
        }
    }

    /// Records in (`at` − `window`, `at`]; `live`: in (`at` − `window`, ∞).
    fn count(&self, key: &(VelocityKind, String), at: i64, window: i64, live: bool) -> u32 {
        self.by_key.get(key).map_or(0, |times| {
            let hi = if live {
                times.len()
            } else {
                times.partition_point(|t| *t <= at)
            };
            let lo = times.partition_point(|t| *t <= at - window);
            u32::try_from(hi - lo).unwrap_or(u32::MAX)
        })
    }

    /// Drops what no window can reach any more and raises the floor to match: O(log n) per
    /// record dropped, nothing when nothing is old enough.
    fn prune(&mut self, longest: i64) {
        let keep_from = self.latest - longest;
        if keep_from <= self.floor {
            return;
        }
        while let Some(Reverse((at, _))) = self.by_time.peek() {
            if *at >= keep_from {
                break;
            }
            let Some(Reverse((_, key))) = self.by_time.pop() else {
                break;
            };
            if let Some(times) = self.by_key.get_mut(&key) {
                let cut = times.partition_point(|t| *t < keep_from);
                times.drain(..cut);
                if times.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
        self.floor = keep_from;
    }
}

/// A sign-up's records in the book; dropped without [`Recorded::keep`] (its unit of work
/// failed) they are taken back out.
pub struct Recorded {
    windows: Arc<Mutex<Windows>>,
    keys: Vec<(VelocityKind, String)>,
    at: i64,
    kept: bool,
}

impl Recorded {
    /// The sign-up was stored: its records stay.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let mut w = lock(&self.windows);
        for k in &self.keys {
            w.remove(k, self.at);
        }
    }
}

fn lock(m: &Mutex<Windows>) -> std::sync::MutexGuard<'_, Windows> {
    // A panic while holding the lock leaves consistent data (every step is one Vec operation).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a sign-up's velocity came to.
pub struct Counted {
    /// Per key given, the records in its window, this sign-up included; `None` when the
    /// window reaches before what the book holds (count in storage).
    pub counts: Option<Vec<u32>>,
    /// This sign-up's records (also when the counts come from storage: later sign-ups must
    /// see it).
    pub recorded: Option<Recorded>,
}

impl VelocityBook {
    pub fn new(start: Timestamp, longest_window_seconds: u64) -> Self {
        let longest = i64::try_from(longest_window_seconds)
            .unwrap_or(i64::MAX / 2_000_000)
            .saturating_mul(1_000_000);
        VelocityBook {
            longest,
            start_floor: to_micros(start).saturating_sub(longest),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    async fn windows(
        &self,
        db: &Db,
        tenant: TenantId,
    ) -> Result<Arc<Mutex<Windows>>, riskdesk_storage::StorageError> {
        let cell = {
            let mut t = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            t.entry(tenant.0).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let floor = self.start_floor;
            let mut w = Windows {
                floor,
                ..Windows::default()
            };
            for r in signups::velocity_since(db, tenant, floor).await? {
                if let Some(kind) = VelocityKind::parse(&r.kind) {
                    w.insert(&(kind, r.value), r.at);
                }
            }
            Ok(Arc::new(Mutex::new(w)))
        })
        .await
        .cloned()
    }

    /// Counts and records a sign-up at `at` under each (kind, value, window seconds) in one
    /// step. A `live` sign-up (its time is the server's clock, not a given `as_of`) counts
    /// every record in its window already made, also one whose clock reading came a moment
    /// later than its own (a concurrent burst); a replay of a given `as_of` counts only what
    /// was recorded up to it.
    pub async fn count_and_record(
        &self,
        db: &Db,
        tenant: TenantId,
        at: Timestamp,
        live: bool,
        keys: &[(VelocityKind, String, u64)],
    ) -> Result<Counted, riskdesk_storage::StorageError> {
        let windows = self.windows(db, tenant).await?;
        let at = to_micros(at);
        let mut w = lock(&windows);
        let reaches_back = keys.iter().any(|(_, _, secs)| {
            at.saturating_sub(
                i64::try_from(*secs)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000),
            ) < w.floor
        });
        if at < w.floor {
            // Older than anything held: not recorded here (no window can count it).
            return Ok(Counted {
                counts: None,
                recorded: None,
            });
        }
        // Recorded once per value, however many rules (windows) read it.
        let mut keys_only: Vec<(VelocityKind, String)> = Vec::with_capacity(keys.len());
        for (k, v, _) in keys {
            if !keys_only.iter().any(|(ok, ov)| ok == k && ov == v) {
                keys_only.push((*k, v.clone()));
            }
        }
        for k in &keys_only {
            w.insert(k, at);
        }
        let counts = (!reaches_back).then(|| {
            keys.iter()
                .map(|(kind, value, secs)| {
                    w.count(
                        &(*kind, value.clone()),
                        at,
                        i64::try_from(*secs)
                            .unwrap_or(i64::MAX)
                            .saturating_mul(1_000_000),
                        live,
                    )
                })
                .collect()
        });
        w.prune(self.longest.saturating_add(PRUNE_SLACK_MICROS));
        drop(w);
        Ok(Counted {
            counts,
            recorded: Some(Recorded {
                windows,
                keys: keys_only,
                at,
                kept: false,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: &str) -> (VelocityKind, String) {
        (VelocityKind::Ip, v.to_owned())
    }

    #[test]
    fn counts_the_half_open_window_and_takes_back_on_failure() {
        let mut w = Windows::default();
        for at in [10, 20, 30, 40] {
            w.insert(&key("a"), at);
        }
        w.insert(&key("b"), 40);
        // (40 − 20, 40] holds 30 and 40: 20 itself is outside, as in the SQL count.
        assert_eq!(w.count(&key("a"), 40, 20, false), 2);
        assert_eq!(w.count(&key("a"), 40, 100, false), 4);
        assert_eq!(
            w.count(&key("a"), 25, 100, false),
            2,
            "later records are not counted"
        );
        assert_eq!(w.count(&key("a"), 25, 100, true), 4, "unless live");
        assert_eq!(w.count(&key("b"), 40, 100, false), 1);
        w.remove(&key("a"), 30);
        assert_eq!(w.count(&key("a"), 40, 20, false), 1);
        w.remove(&key("b"), 40);
        assert!(!w.by_key.contains_key(&key("b")));
    }

    #[test]
    fn pruning_raises_the_floor_to_what_no_window_reaches() {
        let mut w = Windows::default();
        for at in [100, 200, 300, 1_000] {
            w.insert(&key("a"), at);
        }
        w.insert(&key("gone"), 150);
        w.prune(500);
        assert_eq!(w.floor, 500);
        assert_eq!(w.by_key[&key("a")], vec![1_000]);
        assert!(!w.by_key.contains_key(&key("gone")));
        // Pruning never lowers the floor.
        w.prune(5_000);
        assert_eq!(w.floor, 500);
    }

    #[test]
    fn pruning_pops_records_in_time_order_whatever_order_they_came_in() {
        let mut w = Windows::default();
        // Out of order (an `as_of` replay), a record taken back out, and a duplicate time.
        for (v, at) in [("a", 900), ("b", 100), ("a", 300), ("c", 300), ("b", 950)] {
            w.insert(&key(v), at);
        }
        w.remove(&key("c"), 300);
        w.insert(&key("c"), 300);
        w.insert(&key("c"), 300);
        w.prune(600); // latest 950: keep from 350
        assert_eq!(w.floor, 350);
        assert_eq!(w.by_key[&key("a")], vec![900]);
        assert_eq!(w.by_key[&key("b")], vec![950]);
        assert!(!w.by_key.contains_key(&key("c")));
        assert_eq!(
            w.by_time.len(),
            2,
            "only the records still held stay queued"
        );
        // Nothing old enough: nothing popped, floor unchanged.
        w.prune(600);
        assert_eq!((w.floor, w.by_time.len()), (350, 2));
        w.insert(&key("a"), 2_000);
        w.prune(600);
        assert_eq!(w.by_key[&key("a")], vec![2_000]);
        assert!(!w.by_key.contains_key(&key("b")));
        assert_eq!(w.by_time.len(), 1);
    }
}
