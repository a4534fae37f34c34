//! Anomaly detection on each customer's hourly spend per meter category.
//!
//! Ingest marks the series it touched, once its unit of work has committed; a pass (every minute in `serve`, at the end of
//! `riskdesk ingest`) scores each marked series' *completed* hours, in order, with the streaming
//! detector of `riskdesk_domain::anomaly` (hours without spend are zeros), and raises an
//! `anomaly.spend` alert with the observed and expected values when a score reaches the
//! threshold. Scoring is kept off the ingest path: a month of history loaded at once is many
//! hours per series, and the rate of events must not depend on it.
//!
//! Each series' next hour to score is stored (`anomaly_series`), so an hour is scored once even
//! across restarts; the detector's state is a cache rebuilt from `spend_hourly` (the previous
//! 1,000 hours replayed without alerting), and dropped whenever the stored next hour is not the
//! one the cache expects (another process scored the series, or spend came late).
//!
//! **Late spend.** Usage is often reported hours or days after it happened (Partner Center's
//! usage records lag; billed line items come with the invoice). An event for an hour already
//! scored is not lost to detection: ingest marks its series with the earliest hour it touched,
//! and the next pass replays the detector from storage up to that hour and scores it and every
//! later hour again with the totals as they now are — at most [`LATE_RESCORE`] back. A
//! re-scored hour that reaches the threshold raises an alert marked `"late": true` in its
//! evidence, unless an alert of this rule was already raised for that customer and hour (so a
//! re-score never repeats an alert). Spend older than [`LATE_RESCORE`] before the next hour to
//! score counts in the spend figures and budgets but is not scored again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::Mutex;

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use riskdesk_domain::anomaly::detector::{ALARM_THRESHOLD, Detector, RECENT};
use riskdesk_domain::audit::Actor;
use riskdesk_domain::monitoring::cost::{format_picos, join};
use riskdesk_storage::alerts::NewAlert;
use riskdesk_storage::events;
use riskdesk_storage::time::{from_micros, to_micros};
use serde::Serialize;
use uuid::Uuid;

use crate::kernel::error::AppError;
use crate::kernel::{Ctx, Uow};

const HOUR: i64 = 3_600_000_000;
/// History replayed to warm a detector up: the points it compares a new one with (its recent
/// window, which also covers the three weeks of seasonal look-back).
const WARM_UP: i64 = RECENT as i64 * HOUR;
/// One anomaly of a series is one alert within this time.
const COOLDOWN: i64 = 6 * HOUR;
/// Series scored per unit of work.
const BATCH: usize = 200;
/// How far back late spend is scored again: a billing month and its reporting lag.
pub const LATE_RESCORE: i64 = 35 * 24 * HOUR;

type Key = (Uuid, Uuid, String);

struct Series {
    det: Detector,
    /// The next hour (µs) to score.
    next_hour: i64,
    /// The pass that last scored it (for evicting the least recently used).
    used: u64,
}

/// Detectors kept in memory at most (each 60–120 KiB after three months of hourly spend;
/// `cargo bench -p riskdesk-domain --bench detector`). Past this, the series scored least
/// recently are dropped down to nine tenths of it; a dropped series is rebuilt from storage
/// when it next gets spend (its last 1,000 hours replayed, well under a millisecond).
pub const CACHED_SERIES: usize = 10_000;

/// The detectors of the spend series this process has seen, and the series waiting for a pass
/// (each with the earliest hour that got spend since the last pass).
pub struct SpendScorer {
    series: Mutex<HashMap<Key, Series>>,
    dirty: Mutex<BTreeMap<Key, i64>>,
    passes: std::sync::atomic::AtomicU64,
    pub threshold: f64,
}

impl Default for SpendScorer {
    fn default() -> Self {
        SpendScorer {
            series: Mutex::new(HashMap::new()),
            dirty: Mutex::new(BTreeMap::new()),
            passes: std::sync::atomic::AtomicU64::new(0),
            threshold: ALARM_THRESHOLD,
        }
    }
}

/// What a pass did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PassSummary {
    pub series: u64,
    pub hours_scored: u64,
    pub alerts: u64,
}

fn value(units: i64, rem: i64) -> f64 {
    // A score needs no more than f64's precision; the stored figures stay exact.
    join(units, rem) as f64 / 1e12
}

/// Marks of spend series held back until the parts of one batch have all been applied: they
/// reach the scorer when the last clone of the hold is dropped (whether the batch was applied
/// whole or cut short by an error: what committed is marked).
#[derive(Clone)]
pub struct MarkHold {
    inner: Arc<HeldMarks>,
}

struct HeldMarks {
    detector: Arc<crate::monitoring::detect::Detector>,
    marks: Mutex<Vec<(TenantId, Uuid, String, i64)>>,
}

impl MarkHold {
    pub fn new(detector: Arc<crate::monitoring::detect::Detector>) -> Self {
        MarkHold {
            inner: Arc::new(HeldMarks {
                detector,
                marks: Mutex::new(Vec::new()),
            }),
        }
    }

    pub(crate) fn mark(
        &self,
        tenant: TenantId,
        series: impl IntoIterator<Item = (Uuid, String, i64)>,
    ) {
        let mut m = self.inner.marks.lock().unwrap_or_else(|p| p.into_inner());
        m.extend(series.into_iter().map(|(c, cat, h)| (tenant, c, cat, h)));
    }
}

impl Drop for HeldMarks {
    fn drop(&mut self) {
        let marks = std::mem::take(self.marks.get_mut().unwrap_or_else(|p| p.into_inner()));
        let mut d = self
            .detector
            .spend
            .dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (tenant, c, cat, hour) in marks {
            d.entry((tenant.0, c, cat))
                .and_modify(|h| *h = (*h).min(hour))
                .or_insert(hour);
        }
    }
}

impl SpendScorer {
    /// Marks series for the next pass: (customer, meter category, earliest hour (µs) that got
    /// spend).
    pub fn mark(&self, tenant: TenantId, series: impl IntoIterator<Item = (Uuid, String, i64)>) {
        let mut d = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        for (c, cat, hour) in series {
            d.entry((tenant.0, c, cat))
                .and_modify(|h| *h = (*h).min(hour))
                .or_insert(hour);
        }
    }

    fn put_back(&self, chunk: &[(Key, i64)]) {
        let mut d = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        for (k, hour) in chunk {
            d.entry(k.clone())
                .and_modify(|h| *h = (*h).min(*hour))
                .or_insert(*hour);
        }
    }

    pub fn pending(&self) -> usize {
        self.dirty.lock().map(|d| d.len()).unwrap_or(0)
    }

    /// Scores every marked series up to the last hour completed before `as_of`.
    pub async fn pass(
        &self,
        ctx: &Arc<Ctx>,
        as_of: Timestamp,
        now: Timestamp,
    ) -> Result<PassSummary, AppError> {
        let keys: Vec<(Key, i64)> =
            std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .collect();
        let horizon = to_micros(as_of).div_euclid(HOUR) * HOUR;
        let pass = self
            .passes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut summary = PassSummary::default();
        for (i, chunk) in keys.chunks(BATCH).enumerate() {
            let mut tx = ctx.begin().await?;
            let mut scored = Vec::new();
            for (key, earliest) in chunk {
                match self
                    .score_series(&mut tx, key, *earliest, horizon, now, &mut summary)
                    .await
                {
                    Ok(Some(s)) => scored.push((key.clone(), s)),
                    Ok(None) => {}
                    Err(e) => {
                        // Put this chunk and the ones not reached back for the next pass.
                        self.put_back(&keys[i * BATCH..]);
                        return Err(e);
                    }
                }
            }
            match tx.commit().await {
                Ok(()) => {
                    let mut cache = self.series.lock().unwrap_or_else(|p| p.into_inner());
                    for (k, mut s) in scored {
                        s.used = pass;
                        cache.insert(k, s);
                    }
                    evict(&mut cache, CACHED_SERIES);
                }
                Err(e) => {
                    self.put_back(&keys[i * BATCH..]);
                    return Err(e.into());
                }
            }
        }
        Ok(summary)
    }

    async fn score_series(
        &self,
        tx: &mut Uow,
        key: &Key,
        earliest: i64,
        horizon: i64,
        now: Timestamp,
        summary: &mut PassSummary,
    ) -> Result<Option<Series>, AppError> {
        let tenant = TenantId(key.0);
        let (customer, category) = (key.1, key.2.as_str());
        let stored = events::anomaly_next_hour_tx(tx, tenant, customer, category).await?;
        // A cache is good only for the next hour it expects (another process may have scored
        // on).
        let cached = self
            .series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
            .filter(|s| Some(s.next_hour) == stored);
        // Spend arrived for hours already scored: they are scored again, up to the next hour.
        let late_until = stored.filter(|n| earliest < *n);
        let mut s = match (cached, late_until) {
            (Some(s), None) => s,
            _ => {
                let next_hour = match (stored, late_until) {
                    (Some(n), Some(_)) => earliest.max(n - LATE_RESCORE),
                    (Some(n), None) => n,
                    (None, _) => {
                        let first = events::series_hours_tx(
                            tx,
                            tenant,
                            customer,
                            category,
                            i64::MIN,
                            horizon,
                        )
                        .await?
                        .first()
                        .map(|h| h.hour);
                        match first {
                            Some(f) => f,
                            // No spend stored (yet): nothing to score, nothing to remember.
                            None => return Ok(None),
                        }
                    }
                };
                Series {
                    det: replay(tx, tenant, customer, category, next_hour).await?,
                    next_hour,
                    used: 0,
                }
            }
        };
        if s.next_hour >= horizon {
            return Ok(Some(s));
        }
        let rows =
            events::series_hours_tx(tx, tenant, customer, category, s.next_hour, horizon).await?;
        let mut it = rows.iter().peekable();
        let actor = Actor::system("anomaly");
        summary.series += 1;
        while s.next_hour < horizon {
            // Weeks without spend are not scored hour by hour: the series resumes a warm-up
            // before its next spend (or before the horizon).
            let next_spend = it.peek().map_or(horizon, |r| r.hour);
            if next_spend - s.next_hour > WARM_UP {
                s.next_hour = next_spend - WARM_UP;
            }
            let h = s.next_hour;
            let (v, picos) = match it.peek() {
                Some(r) if r.hour == h => {
                    let r = it.next().expect("peeked");
                    (value(r.units, r.rem), join(r.units, r.rem))
                }
                _ => (0.0, 0),
            };
            let scored = s.det.score_explained(h / 1_000_000, v);
            summary.hours_scored += 1;
            let late = late_until.is_some_and(|n| h < n);
            // Only more spend than expected is a risk; a drop is not alerted on. A re-scored
            // hour that already raised its alert does not raise it again.
            if scored.score >= self.threshold
                && v > scored.expected
                && !(late
                    && riskdesk_storage::alerts::raised_for(
                        tx,
                        tenant,
                        customer,
                        "anomaly.spend",
                        h,
                    )
                    .await?)
            {
                let expected = format_picos((scored.expected * 1e12).round() as i128);
                let observed = format_picos(picos);
                let title = format!(
                    "Unusual {category} spend: {observed} in the hour from {} (expected about {expected})",
                    from_micros(h)
                );
                let evidence = serde_json::json!({
                    "meter_category": category,
                    "hour": from_micros(h).to_string(),
                    "observed": observed,
                    "expected": expected,
                    "score": (scored.score * 1000.0).round() / 1000.0,
                    "threshold": self.threshold,
                    "late": late,
                });
                crate::alerts::raise(
                    tx,
                    tenant,
                    &actor,
                    NewAlert {
                        customer_id: Some(customer),
                        rule: "anomaly.spend",
                        severity: "medium",
                        title: &title,
                        evidence_json: evidence.to_string(),
                        at: h,
                        cooldown_micros: COOLDOWN,
                        occurrences: 1,
                        last_at: h,
                    },
                    now,
                )
                .await?;
                summary.alerts += 1;
            }
            s.next_hour += HOUR;
        }
        if !events::set_anomaly_next_hour(tx, tenant, customer, category, stored, s.next_hour)
            .await?
        {
            return Err(AppError::Contention(format!(
                "another process scored the {category} spend of customer {customer} meanwhile"
            )));
        }
        Ok(Some(s))
    }
}

/// Drops the least recently scored series once more than `limit` are kept, down to nine
/// tenths of it.
fn evict(cache: &mut HashMap<Key, Series>, limit: usize) {
    if cache.len() <= limit {
        return;
    }
    let cut = cache.len() - limit * 9 / 10;
    let mut by_use: Vec<(u64, Key)> = cache.iter().map(|(k, s)| (s.used, k.clone())).collect();
    by_use.sort_unstable_by_key(|(used, _)| *used);
    for (_, k) in by_use.into_iter().take(cut) {
        cache.remove(&k);
    }
}

/// A detector warmed up on the stored hours before `next_hour` (its recent window), hours
/// without spend as zeros, without alerting.
async fn replay(
    tx: &mut Uow,
    tenant: TenantId,
    customer: Uuid,
    category: &str,
    next_hour: i64,
) -> Result<Detector, AppError> {
    let mut det = Detector::default();
    let from = next_hour - WARM_UP;
    let rows = events::series_hours_tx(tx, tenant, customer, category, from, next_hour).await?;
    let start = rows.first().map_or(next_hour, |r| r.hour);
    let mut it = rows.iter().peekable();
    let mut h = start;
    while h < next_hour {
        let v = match it.peek() {
            Some(r) if r.hour == h => {
                let r = it.next().expect("peeked");
                value(r.units, r.rem)
            }
            _ => 0.0,
        };
        det.score(h / 1_000_000, v);
        h += HOUR;
    }
    Ok(det)
}

/// Runs a pass every `every` until `stop`.
pub async fn schedule(
    ctx: Arc<Ctx>,
    clock: std::sync::Arc<dyn riskdesk_domain::Clock>,
    detector: std::sync::Arc<crate::monitoring::detect::Detector>,
    every: std::time::Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut stop = stop;
    loop {
        if detector.spend.pending() > 0 {
            let now = clock.now();
            match detector.spend.pass(&ctx, now, now).await {
                Ok(s) if s.alerts > 0 => tracing::info!(?s, "spend anomaly pass"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "spend anomaly pass failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One hour of a spend chart.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpendPoint {
    /// The hour's start (RFC 3339, UTC).
    pub hour: String,
    /// Spend in the hour over every currency of the category (decimal text, exact).
    pub spend: String,
    /// The detector's score in [0, 1].
    pub score: f64,
    /// The level the hour is judged against.
    pub expected: f64,
    /// Whether the hour reaches the alert threshold with more spend than expected.
    pub anomaly: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CategorySeries {
    pub meter_category: String,
    /// The currencies the category's spend is in (a chart is per currency when several).
    pub currencies: Vec<String>,
    /// Every hour in [from, to), hours without spend as zero.
    pub points: Vec<SpendPoint>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpendSeries {
    pub customer_id: Uuid,
    pub from: String,
    pub to: String,
    pub threshold: f64,
    pub series: Vec<CategorySeries>,
}

/// The longest span a spend series is asked for.
pub const SPEND_SERIES_MAX_HOURS: i64 = 92 * 24;

/// A customer's hourly spend per meter category in [from, to) (whole hours, µs), each hour
/// with its anomaly score. Scores are recomputed from the stored hours by the same detector
/// the monitoring pass runs, warmed up on the `RECENT` hours before `from`, hours without spend
/// as zeros. They can differ from the scores the pass raised alerts on where spend arrived
/// more than `LATE_RESCORE` after the pass had scored its hour, or where the pass skipped weeks
/// without spend.
pub async fn spend_series(
    db: &riskdesk_storage::Db,
    tenant: TenantId,
    customer: Uuid,
    from: i64,
    to: i64,
    threshold: f64,
) -> Result<SpendSeries, AppError> {
    let from = from.div_euclid(HOUR) * HOUR;
    let to = to.div_euclid(HOUR) * HOUR;
    if to <= from {
        return Err(AppError::field("to", "must be at least an hour after from"));
    }
    if (to - from) / HOUR > SPEND_SERIES_MAX_HOURS {
        return Err(AppError::field(
            "to",
            format!("at most {SPEND_SERIES_MAX_HOURS} hours after from"),
        ));
    }
    let rows = events::customer_spend_hours(db, tenant, customer, from - WARM_UP, to).await?;
    // category → hour → picos (over currencies), and the currencies seen
    let mut by_cat: std::collections::BTreeMap<
        String,
        (std::collections::BTreeMap<i64, i128>, BTreeSet<String>),
    > = Default::default();
    for r in rows {
        let e = by_cat.entry(r.meter_category).or_default();
        *e.0.entry(r.hour).or_default() += join(r.units, r.rem);
        e.1.insert(r.currency);
    }
    let mut series = Vec::new();
    for (category, (hours, currencies)) in by_cat {
        let mut det = Detector::default();
        let first = hours.keys().next().copied().unwrap_or(from).min(from);
        let mut points = Vec::with_capacity(((to - from) / HOUR) as usize);
        let mut h = first;
        while h < to {
            let picos = hours.get(&h).copied().unwrap_or(0);
            let v = picos as f64 / 1e12;
            let s = det.score_explained(h / 1_000_000, v);
            if h >= from {
                points.push(SpendPoint {
                    hour: from_micros(h).to_string(),
                    spend: format_picos(picos),
                    score: (s.score * 1000.0).round() / 1000.0,
                    expected: (s.expected * 1e6).round() / 1e6,
                    anomaly: s.score >= threshold && v > s.expected,
                });
            }
            h += HOUR;
        }
        series.push(CategorySeries {
            meter_category: category,
            currencies: currencies.into_iter().collect(),
            points,
        });
    }
    Ok(SpendSeries {
        customer_id: customer,
        from: from_micros(from).to_string(),
        to: from_micros(to).to_string(),
        threshold,
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_marks_reach_the_scorer_when_the_last_part_lets_go() {
        let detector = Arc::new(crate::monitoring::detect::Detector::default());
        let tenant = TenantId(Uuid::from_u128(1));
        let c = Uuid::from_u128(2);
        let hold = MarkHold::new(detector.clone());
        let part = hold.clone();
        part.mark(tenant, [(c, "Virtual Machines".to_owned(), 7 * HOUR)]);
        hold.mark(tenant, [(c, "Virtual Machines".to_owned(), 3 * HOUR)]);
        drop(part);
        assert_eq!(
            detector.spend.pending(),
            0,
            "a pass now would see half a batch"
        );
        drop(hold);
        assert_eq!(detector.spend.pending(), 1);
        let dirty = detector.spend.dirty.lock().unwrap();
        let (_, earliest) = dirty.iter().next().unwrap();
        assert_eq!(
            *earliest,
            3 * HOUR,
            "scored from the earliest hour of every part"
        );
    }

    #[test]
    fn the_cache_drops_the_series_scored_least_recently() {
        let mut cache = HashMap::new();
        for i in 0..12u64 {
            let key = (Uuid::nil(), Uuid::from_u128(i.into()), "Storage".to_owned());
            let used = i % 6; // two series per pass 0..5
            cache.insert(
                key,
                Series {
                    det: Detector::default(),
                    next_hour: 0,
                    used,
                },
            );
        }
        evict(&mut cache, 12);
        assert_eq!(cache.len(), 12, "at the limit nothing goes");
        evict(&mut cache, 10);
        // Down to 9: the three least recently used went (both of pass 0, one of pass 1).
        assert_eq!(cache.len(), 9);
        assert!(cache.values().all(|s| s.used >= 1));
        assert_eq!(cache.values().filter(|s| s.used == 1).count(), 1);
    }
}
