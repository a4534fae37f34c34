//! A streaming anomaly detector for one series: the score of a point uses only that point and
//! earlier ones.
//!
//! A point is an anomaly when it is **new in sequence, large in size and not a repeat of the
//! season**:
//!
//! - *Sequence.* Values are quantised into [`LEVELS`] levels of the range seen so far, and the
//!   detector counts, for the last 1 to [`ORDERS`] levels, which level came next. A point scores
//!   by how unexpected its level is after what came before: `(1 − mean probability + share of
//!   orders where it never followed) / 2`, so 1 means "never seen after even the last level
//!   alone". Two grids, one shifted by half a level, must both find it new, so noise crossing a
//!   level boundary is not novelty. When a value leaves the range, the range grows (with a
//!   margin) and the counts are rebuilt from the kept history. Daily and weekly patterns and
//!   a level that has settled are sequences seen before: they stop scoring by themselves.
//! - *Size.* The point must lie at least [`MIN_SURPRISE`] robust standard deviations (MAD) from
//!   the median of the last [`RECENT`] points; a new extreme of plain noise is not an anomaly.
//! - *Season.* A value within a third of a level of the same phase one to three days or weeks
//!   earlier (from the timestamps' spacing) is not an anomaly.
//!
//! After a point scores at or above [`RAISE`] (the alarm threshold), later points report 0 for
//! [`REST`] points: one anomaly is one alarm, not a run of them — unless a point lies [`BREAK`]
//! times farther from what was expected than the one that started the rest: an alarm, true or
//! false, must not hide a much larger anomaly right after it. The first [`LEARNING`] points
//! report 0. Every [`RECENT`] points the model is fitted back to the kept history: a range
//! widened by an extreme that has left it shrinks again, and sequence counts beyond what the
//! history can produce are rebuilt from it.
//!
//! On the Numenta Anomaly Benchmark's series shipped in `data/nab` this scores 74.1 with NAB's
//! own scoring, each category at a threshold chosen on the others (BENCHMARKS.md, `riskdesk
//! nab data/nab`). Most constants were chosen on those series in earlier work; [`BREAK`] was
//! chosen on the product's own case (`riskdesk scenarios`: a false alarm hid a mining burst
//! for two days) before it was scored on NAB.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

/// Quantisation levels of the range seen so far.
pub const LEVELS: usize = 9;
/// The longest run of earlier levels a prediction looks at.
pub const ORDERS: usize = 4;
/// A range that grows is widened by this share of itself, so it does not grow at every new
/// extreme of a trend.
const MARGIN: f64 = 0.15;
/// A range is squeezed when the recent points (all but the outer 1 %) span less than this
/// fraction of it (see `unsqueeze`; 100 levels' worth of empty range is no longer resolution).
const SQUEEZED: f64 = 100.0;
/// The same phase of an earlier day or week explains a point within this many levels.
const SEASONAL_TOLERANCE: f64 = 0.3;
/// Points compared for size (median and MAD).
pub const RECENT: usize = 1000;
/// Robust standard deviations from the recent median a point needs to be an anomaly.
pub const MIN_SURPRISE: f64 = 4.0;
/// A raw score at or above this starts a rest (every alarm does) …
const RAISE: f64 = ALARM_THRESHOLD;
/// … of this many points, during which the detector reports 0.
pub const REST: usize = 48;
/// A point this many times farther from its expected value than the one that started a rest
/// ends the rest with an alarm: an alarm (true or false) must not hide a much larger anomaly
/// right after it (a false alarm followed by a mining burst).
pub const BREAK: f64 = 3.0;
/// The detector reports 0 for its first points, while it learns.
pub const LEARNING: usize = 150;
/// Most points kept (for the seasonal comparison and rebuilding the counts).
const MAX_HISTORY: usize = 10_000;
/// Seasonal comparison looks three days and three weeks back.
const SEASONS_BACK: usize = 3;

/// The score at which a point is an alarm: new after the last level in at least three of the
/// four orders and all but never seen after the fourth, or new after all four. Chosen as NAB
/// chooses a detector's threshold (the best standard-profile score on `data/nab`).
pub const ALARM_THRESHOLD: f64 = 0.874;

/// How often each level followed one context. 16-bit counts keep a context in 18 bytes (the
/// per-series state is mostly these); a count reaching the top halves the context's counts,
/// as adaptive frequency models do, which keeps the proportions.
#[derive(Clone, Debug, Default)]
struct Counts {
    next: [u16; LEVELS],
}

impl Counts {
    fn total(&self) -> u32 {
        self.next.iter().map(|&n| u32::from(n)).sum()
    }

    fn add(&mut self, level: u8) {
        let n = &mut self.next[level as usize];
        if *n == u16::MAX {
            for n in &mut self.next {
                *n = n.div_ceil(2);
            }
        }
        self.next[level as usize] += 1;
    }
}

/// One quantisation grid: the levels' boundaries are shifted by `offset` (0 rounds down, 0.5
/// rounds to nearest).
#[derive(Clone, Debug)]
struct Grid {
    offset: f64,
    /// The last `ORDERS` levels, oldest first.
    last: VecDeque<u8>,
    /// Key: the context's order and its levels, 4 bits each.
    counts: FxHashMap<u32, Counts>,
}

fn context_key(last: &VecDeque<u8>, order: usize) -> u32 {
    let start = last.len() - order;
    last.range(start..)
        .fold(order as u32, |key, &level| (key << 4) | level as u32)
}

impl Grid {
    fn new(offset: f64) -> Self {
        Grid {
            offset,
            last: VecDeque::with_capacity(ORDERS + 1),
            counts: FxHashMap::default(),
        }
    }

    fn level(&self, x: f64, range: Range) -> u8 {
        let width = range.hi - range.lo;
        if width <= 0.0 {
            return 0;
        }
        let q = (x - range.lo) / width * (LEVELS - 1) as f64 + self.offset;
        (q.max(0.0) as usize).min(LEVELS - 1) as u8
    }

    /// How unexpected `level` is after the last levels; `None` before any level.
    fn surprise(&self, level: u8) -> Option<f64> {
        let orders = self.last.len().min(ORDERS);
        if orders == 0 {
            return None;
        }
        let (mut probability, mut novel) = (0.0, 0.0);
        for order in 1..=orders {
            match self.counts.get(&context_key(&self.last, order)) {
                Some(c) if c.next[level as usize] > 0 => {
                    probability += f64::from(c.next[level as usize]) / f64::from(c.total());
                }
                _ => novel += 1.0,
            }
        }
        let n = orders as f64;
        Some((1.0 - probability / n + novel / n) / 2.0)
    }

    fn learn(&mut self, level: u8) {
        for order in 1..=self.last.len().min(ORDERS) {
            let c = self
                .counts
                .entry(context_key(&self.last, order))
                .or_default();
            c.add(level);
        }
        if self.last.len() == ORDERS {
            self.last.pop_front();
        }
        self.last.push_back(level);
    }

    fn rebuild(&mut self, history: &VecDeque<f64>, range: Range) {
        self.counts.clear();
        self.last.clear();
        for &x in history {
            let level = self.level(x, range);
            self.learn(level);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Range {
    lo: f64,
    hi: f64,
}

#[derive(Clone, Debug)]
pub struct Detector {
    grids: [Grid; 2],
    range: Option<Range>,
    /// The points kept, oldest first.
    history: VecDeque<f64>,
    first_time: Option<i64>,
    /// Seconds between the first two points: the seasons' length in points derives from it.
    step: Option<i64>,
    seen: usize,
    /// Points since the last raw score at or above `RAISE` (0 at the start: learning rests).
    since_raise: usize,
    /// How far from its expected value the point that started the rest was (the largest such
    /// distance during the rest): a point [`BREAK`] times farther out breaks the rest.
    rest_distance: f64,
    /// The last [`RECENT`] points, sorted: their median and MAD are then two look-ups and a
    /// binary search instead of two selections over 1,000 values (most of a pass's time).
    recent_sorted: Vec<f64>,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            grids: [Grid::new(0.5), Grid::new(0.0)],
            range: None,
            history: VecDeque::new(),
            first_time: None,
            step: None,
            seen: 0,
            since_raise: 0,
            rest_distance: f64::INFINITY,
            recent_sorted: Vec::new(),
        }
    }
}

/// A point's score and what the detector expected there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// In [0, 1]; at or above [`ALARM_THRESHOLD`] is an alarm.
    pub score: f64,
    /// The level the point is judged against: the recent median or the same phase of an earlier
    /// day or week, whichever is closer to the point. (For a point whose sequence raises no
    /// surprise, score ≤ 0.5, the median is not computed: the value itself stands in for it.)
    pub expected: f64,
}

/// The `k`-th smallest (from 0) of `|x - m|` over sorted `x`, `m = x[x.len() / 2]`: the
/// distances left of the middle, read from it outwards, and those from it rightwards are two
/// ascending lists; the classic k-th of two sorted lists by binary search on how many come from
/// the left one.
fn kth_distance(x: &[f64], k: usize) -> f64 {
    let p = x.len() / 2;
    let m = x[p];
    let left = |j: usize| (x[p - 1 - j] - m).abs(); // j < p
    let right = |j: usize| (x[p + j] - m).abs(); // j < x.len() - p
    let (nl, nr) = (p, x.len() - p);
    let take = k + 1;
    // i from the left list and take - i from the right.
    let (mut lo, mut hi) = (take.saturating_sub(nr), take.min(nl));
    loop {
        let i = (lo + hi) / 2;
        let j = take - i;
        if i < nl && j > 0 && right(j - 1) > left(i) {
            lo = i + 1; // too few from the left
        } else if i > 0 && j < nr && left(i - 1) > right(j) {
            hi = i - 1; // too many from the left
        } else {
            let a = if i > 0 { left(i - 1) } else { f64::MIN };
            let b = if j > 0 { right(j - 1) } else { f64::MIN };
            return a.max(b);
        }
    }
}

impl Detector {
    /// Scores the next point (`time` in seconds) and adds it to the history.
    pub fn score(&mut self, time: i64, value: f64) -> f64 {
        self.score_explained(time, value).score
    }

    /// Like [`Detector::score`], with the expected value.
    pub fn score_explained(&mut self, time: i64, value: f64) -> Scored {
        if !value.is_finite() {
            // Not a measurement: neither scored nor learnt.
            return Scored {
                score: 0.0,
                expected: value,
            };
        }
        match self.first_time {
            None => self.first_time = Some(time),
            Some(first) if self.step.is_none() && time > first => self.step = Some(time - first),
            _ => {}
        }
        let range = self.widen_range(value);
        let sequence = self
            .grids
            .iter()
            .filter_map(|g| g.surprise(g.level(value, range)))
            .reduce(f64::min)
            .unwrap_or(0.0);
        // The size check can only lower a raw score above 0.5 (to 0.5): below, the median and
        // MAD of the recent points (two selections over up to 1,000 values, most of a pass's
        // time) are not needed.
        let (median, spread) = if sequence > 0.5 {
            self.recent_level()
        } else {
            (None, None)
        };
        let mut expected = median.unwrap_or(value);
        let mut raw = sequence;
        if let (Some(m), Some(s)) = (median, spread) {
            if (value - m).abs() / s < MIN_SURPRISE {
                raw = raw.min(0.5);
            }
        }
        let tolerance = SEASONAL_TOLERANCE * (range.hi - range.lo) / (LEVELS - 1) as f64;
        for earlier in self.same_phase() {
            if (earlier - value).abs() <= tolerance {
                raw = raw.min(0.5);
            }
            if (earlier - value).abs() < (expected - value).abs() {
                expected = earlier;
            }
        }
        let distance = (value - expected).abs();
        let resting = self.since_raise < REST;
        let breaks = resting && raw >= RAISE && distance >= BREAK * self.rest_distance;
        let score = if (!resting || breaks) && self.seen >= LEARNING {
            raw
        } else {
            0.0
        };
        if raw >= RAISE {
            self.rest_distance = if resting && !breaks {
                self.rest_distance.max(distance)
            } else {
                distance
            };
            self.since_raise = 0;
        } else {
            self.since_raise = self.since_raise.saturating_add(1);
        }
        for g in &mut self.grids {
            let level = g.level(value, range);
            g.learn(level);
        }
        self.history.push_back(value);
        let at = self
            .recent_sorted
            .partition_point(|x| x.total_cmp(&value).is_lt());
        self.recent_sorted.insert(at, value);
        if let Some(left) = self.history.len().checked_sub(RECENT + 1) {
            let gone = self.history[left];
            let at = self
                .recent_sorted
                .partition_point(|x| x.total_cmp(&gone).is_lt());
            self.recent_sorted.remove(at);
        }
        if self.history.len() > self.history_cap() {
            self.history.pop_front();
        }
        self.seen += 1;
        self.forget_what_history_dropped();
        Scored { score, expected }
    }

    /// Bytes this detector holds, its own and what it owns on the heap (by capacity; a hash
    /// table's buckets with their control bytes): the state the monitoring pipeline keeps per
    /// customer and meter category.
    pub fn state_bytes(&self) -> usize {
        let grid = |g: &Grid| {
            // hashbrown keeps at most 7/8 of its buckets full.
            let buckets = (g.counts.capacity() * 8).div_ceil(7);
            g.last.capacity() + buckets * (std::mem::size_of::<(u32, Counts)>() + 1)
        };
        std::mem::size_of::<Self>()
            + self.grids.iter().map(grid).sum::<usize>()
            + (self.history.capacity() + self.recent_sorted.capacity()) * std::mem::size_of::<f64>()
    }

    /// The range including `value`; when it had to grow, the counts are rebuilt on it.
    fn widen_range(&mut self, value: f64) -> Range {
        let Some(mut r) = self.range else {
            let r = Range {
                lo: value,
                hi: value,
            };
            self.range = Some(r);
            return r;
        };
        if value < r.lo || value > r.hi {
            let margin = (r.hi.max(value) - r.lo.min(value)) * MARGIN;
            if value < r.lo {
                r.lo = value - margin;
            }
            if value > r.hi {
                r.hi = value + margin;
            }
            self.range = Some(r);
            for g in &mut self.grids {
                g.rebuild(&self.history, r);
            }
        }
        r
    }

    /// Keeps the model to what the kept history supports, checked every `RECENT` points: once
    /// the extreme that widened the range has left the history, the range is recomputed from
    /// the history (else a single old spike would squeeze every later value into one level and
    /// blind the detector), and the sequence counts are rebuilt when they hold far more
    /// contexts than the history can produce (bounding memory per series).
    fn forget_what_history_dropped(&mut self) {
        if self.seen % REST == 0 {
            self.unsqueeze();
        }
        if self.seen % RECENT != 0 || self.history.is_empty() {
            return;
        }
        let Some(range) = self.range else { return };
        let (lo, hi) = self
            .history
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        let margin = (hi - lo) * MARGIN;
        let kept = Range {
            lo: lo - margin,
            hi: hi + margin,
        };
        let too_wide = (kept.hi - kept.lo) < (range.hi - range.lo) / 2.0;
        let too_many = self
            .grids
            .iter()
            .any(|g| g.counts.len() > 2 * ORDERS * self.history.len());
        if too_wide || too_many {
            let r = if too_wide { kept } else { range };
            self.range = Some(r);
            for g in &mut self.grids {
                g.rebuild(&self.history, r);
            }
        }
    }

    /// A range squeezed by a few extremes: when all but the outer 1 % of the recent points lie
    /// within a hundredth of it, the range is rebuilt on those points (the extremes, still in the
    /// history, sit on the edge levels). Without this, one wild value (a unit error, a glitch)
    /// would leave every ordinary value in one level, and the detector blind to the next real
    /// change, for as long as it stays in the history (about six weeks of hourly data).
    fn unsqueeze(&mut self) {
        let x = &self.recent_sorted;
        let n = x.len();
        let Some(range) = self.range else { return };
        if n < 2 * REST {
            return;
        }
        let (p1, p99) = (x[n / 100], x[n - 1 - n / 100]);
        let width = range.hi - range.lo;
        if p99 <= p1 || (p99 - p1) * SQUEEZED >= width {
            return;
        }
        let margin = (p99 - p1) * MARGIN;
        let r = Range {
            lo: p1 - margin,
            hi: p99 + margin,
        };
        self.range = Some(r);
        for g in &mut self.grids {
            g.rebuild(&self.history, r);
        }
    }

    /// Median and MAD-based spread of the recent points (the spread floored so that a flat
    /// series does not divide by zero); `None` before 12 points.
    fn recent_level(&self) -> (Option<f64>, Option<f64>) {
        let x = &self.recent_sorted;
        let n = x.len();
        if n < 12 {
            return (None, None);
        }
        let m = x[n / 2];
        let mad = kth_distance(x, n / 2) * 1.4826;
        (Some(m), Some(mad.max(m.abs() * 0.01).max(1e-9)))
    }

    /// Points a day or a week (1 to 3 of them) before the next one, when kept.
    fn same_phase(&self) -> impl Iterator<Item = f64> + '_ {
        let n = self.history.len();
        let seasons = match self.step.filter(|s| *s > 0) {
            Some(step) => [(86_400 / step) as usize, (7 * 86_400 / step) as usize],
            None => [0, 0],
        };
        seasons
            .into_iter()
            .filter(|season| *season > 0)
            .flat_map(move |season| {
                (1..=SEASONS_BACK).filter_map(move |k| n.checked_sub(k * season))
            })
            .map(|i| self.history[i])
    }

    /// History kept: the recent window, and three weeks for the seasonal comparison.
    fn history_cap(&self) -> usize {
        let weeks = match self.step.filter(|s| *s > 0) {
            Some(step) => (SEASONS_BACK as i64 * 7 * 86_400 / step) as usize + 1,
            None => 0,
        };
        RECENT.max(weeks).min(MAX_HISTORY)
    }
}

#[cfg(test)]
mod tests {
    /// The median and MAD by selection, as the detector first computed them.
    fn selected(v: &[f64]) -> (f64, f64) {
        let mut v = v.to_vec();
        let n = v.len();
        let m = *v.select_nth_unstable_by(n / 2, f64::total_cmp).1;
        for x in v.iter_mut() {
            *x = (*x - m).abs();
        }
        (m, *v.select_nth_unstable_by(n / 2, f64::total_cmp).1)
    }

    #[test]
    fn the_sorted_window_gives_the_median_and_mad_of_the_recent_points() {
        // Hourly: the history is capped at the window; by the minute: it keeps three weeks, so
        // points leave the window long before they leave the history.
        for step in [3_600, 60] {
            window_matches_selections(step);
        }
    }

    fn window_matches_selections(step: i64) {
        let mut d = Detector::default();
        let mut values = Vec::new();
        for i in 0..2_600i64 {
            // Noise with repeats and a few outliers, so ties and both sides are exercised.
            let v = if i % 97 == 0 {
                50.0
            } else {
                (noise(i) * 4.0).round()
            };
            values.push(v);
            d.score(i * step, v);
            let n = values.len();
            if n >= 12 && (n < 40 || n % 7 == 0) {
                let (m, mad) = selected(&values[n.saturating_sub(RECENT)..]);
                let (dm, ds) = d.recent_level();
                assert_eq!(dm, Some(m), "median after {n} points");
                assert_eq!(
                    ds,
                    Some((mad * 1.4826).max(m.abs() * 0.01).max(1e-9)),
                    "spread after {n} points"
                );
            }
        }
        assert_eq!(d.recent_sorted.len(), RECENT);
        assert_eq!(d.history.len(), if step == 60 { 2_600 } else { RECENT });
    }

    use super::*;

    /// A deterministic noise in [0, 1).
    fn noise(i: i64) -> f64 {
        ((i * 7919) % 13) as f64 / 13.0
    }

    #[test]
    fn a_spike_scores_high_and_noise_low() {
        let mut d = Detector::default();
        let mut max_noise: f64 = 0.0;
        for i in 0..500 {
            max_noise = max_noise.max(d.score(i * 300, 10.0 + noise(i)));
        }
        assert!(max_noise < ALARM_THRESHOLD, "{max_noise}");
        let spike = d.score_explained(500 * 300, 60.0);
        assert!(spike.score >= ALARM_THRESHOLD, "{spike:?}");
        assert!((10.0..11.0).contains(&spike.expected), "{spike:?}");
        // The spike rests the detector: the next one, right after, does not alarm again.
        assert!(d.score(501 * 300, 60.0) < ALARM_THRESHOLD);
    }

    #[test]
    fn a_full_count_halves_its_context_keeping_the_proportions() {
        let mut c = Counts::default();
        c.next[1] = u16::MAX;
        c.next[2] = 1001;
        c.add(1);
        assert_eq!(c.next[1], 32_769);
        assert_eq!(c.next[2], 501);
        assert_eq!(c.total(), 33_270);
    }

    #[test]
    fn an_alarm_does_not_hide_a_much_larger_anomaly_right_after_it() {
        let mut d = Detector::default();
        for i in 0..500 {
            d.score(i * 300, 10.0 + noise(i));
        }
        // A modest spike alarms and starts a rest …
        assert!(d.score(500 * 300, 16.0) >= ALARM_THRESHOLD);
        // … a value about as far out does not alarm again during it …
        assert!(d.score(501 * 300, 10.0 + noise(501)) < ALARM_THRESHOLD);
        assert!(d.score(502 * 300, 17.0) < ALARM_THRESHOLD);
        // … but one BREAK times farther out than the spike that started the rest does.
        let burst = d.score_explained(503 * 300, 100.0);
        assert!(burst.score >= ALARM_THRESHOLD, "{burst:?}");
        // And that one rests the detector in its turn.
        assert!(d.score(504 * 300, 100.0) < ALARM_THRESHOLD);
    }

    #[test]
    fn nothing_is_an_alarm_while_learning() {
        let mut d = Detector::default();
        for i in 0..LEARNING as i64 {
            let v = if i % 37 == 36 { 1000.0 } else { noise(i) };
            assert_eq!(d.score(i * 60, v), 0.0, "point {i}");
        }
    }

    #[test]
    fn a_daily_pattern_is_not_an_anomaly() {
        let mut d = Detector::default();
        let mut late = 0.0f64;
        for i in 0..(288 * 10) {
            let phase = (i % 288) as f64 / 288.0;
            let v = if phase > 0.25 && phase < 0.75 {
                100.0
            } else {
                10.0
            } + noise(i as i64);
            let s = d.score(i as i64 * 300, v);
            if i > 288 * 2 {
                late = late.max(s);
            }
        }
        assert!(late < ALARM_THRESHOLD, "{late}");
    }

    #[test]
    fn a_new_extreme_of_plain_noise_is_not_an_anomaly_but_a_large_one_is() {
        // A pseudo-random walk-free noise whose extremes keep growing a little: new levels
        // appear, but never far from the median.
        let mut d = Detector::default();
        let mut worst = 0.0f64;
        for i in 0..2000i64 {
            let wiggle = ((i * 2_654_435_761) % 1000) as f64 / 1000.0;
            let v = 100.0 + (wiggle - 0.5) * (1.0 + i as f64 / 2000.0);
            worst = worst.max(d.score(i * 3600, v));
        }
        assert!(worst < ALARM_THRESHOLD, "{worst}");
        assert!(d.score(2000 * 3600, 150.0) >= ALARM_THRESHOLD);
    }

    #[test]
    fn a_level_shift_alarms_once_then_becomes_the_norm() {
        let mut d = Detector::default();
        for i in 0..1000i64 {
            d.score(i * 3600, 10.0 + noise(i));
        }
        let alarms: Vec<i64> = (1000..1600i64)
            .filter(|i| d.score(i * 3600, 50.0 + noise(*i)) >= ALARM_THRESHOLD)
            .collect();
        assert_eq!(alarms, vec![1000]);
    }

    #[test]
    fn an_old_spike_does_not_blind_the_detector() {
        let mut d = Detector::default();
        for i in 0..300i64 {
            d.score(i * 3600, 10.0 + noise(i));
        }
        assert!(d.score(300 * 3600, 1000.0) >= ALARM_THRESHOLD);
        // Long after the spike left the kept history, a tenfold hour is an anomaly again.
        for i in 301..2600i64 {
            d.score(i * 3600, 10.0 + noise(i));
        }
        assert!(d.score(2600 * 3600, 100.0) >= ALARM_THRESHOLD);
        // Values that are not measurements are neither scored nor learnt.
        assert_eq!(d.score(2601 * 3600, f64::NAN), 0.0);
        assert_eq!(d.score(2602 * 3600, f64::INFINITY), 0.0);
    }

    #[test]
    fn the_history_kept_is_bounded() {
        let mut d = Detector::default();
        for i in 0..30_000i64 {
            d.score(i, noise(i));
        }
        assert!(d.history.len() <= MAX_HISTORY);
        let mut hourly = Detector::default();
        for i in 0..5_000i64 {
            hourly.score(i * 3600, noise(i));
        }
        assert_eq!(hourly.history.len(), RECENT);
    }
}

/// Real series are not clean (issue 21, item 3): each case the detector must survive.
#[cfg(test)]
mod robustness {
    use super::{ALARM_THRESHOLD, Detector, LEARNING};

    /// An hourly series with a daily cycle and a little deterministic noise.
    fn daily(h: i64) -> f64 {
        let phase = (h % 24) as f64 / 24.0 * std::f64::consts::TAU;
        100.0 + 30.0 * phase.sin() + ((h * 7919) % 13) as f64 * 0.5
    }

    fn alarms(d: &mut Detector, points: impl IntoIterator<Item = (i64, f64)>) -> Vec<usize> {
        points
            .into_iter()
            .enumerate()
            .filter_map(|(i, (t, v))| {
                let s = d.score(t, v);
                assert!((0.0..=1.0).contains(&s), "score {s} at {i}");
                (s >= ALARM_THRESHOLD).then_some(i)
            })
            .collect()
    }

    #[test]
    fn a_very_short_series_is_learnt_not_scored() {
        for n in 0..5 {
            let mut d = Detector::default();
            for i in 0..n {
                assert_eq!(d.score(i * 3600, if i % 2 == 0 { 1.0 } else { 1e6 }), 0.0);
            }
        }
        // Up to the learning period nothing alarms, however wild the values.
        let mut d = Detector::default();
        let wild = (0..LEARNING as i64).map(|i| (i * 3600, ((i * 104_729) % 1000) as f64 * 1e3));
        assert!(alarms(&mut d, wild).is_empty());
    }

    #[test]
    fn a_long_constant_stretch_is_quiet_and_a_jump_after_it_is_found() {
        let mut d = Detector::default();
        let flat = (0..5_000).map(|h| (h * 3600, 42.0));
        assert!(alarms(&mut d, flat).is_empty());
        let jump = (5_000..5_010).map(|h| (h * 3600, 420.0));
        let found = alarms(&mut d, jump);
        assert_eq!(found.first(), Some(&0), "{found:?}");
    }

    #[test]
    fn a_gap_of_days_is_not_an_anomaly() {
        let mut d = Detector::default();
        let before = (0..24 * 30).map(|h| (h * 3600, daily(h)));
        let quiet_before = alarms(&mut d, before);
        // Three days without data, then the same daily cycle.
        let after = (24 * 33..24 * 60).map(|h| (h * 3600, daily(h)));
        let quiet_after = alarms(&mut d, after);
        assert!(quiet_before.is_empty(), "{quiet_before:?}");
        assert!(quiet_after.is_empty(), "{quiet_after:?}");
    }

    #[test]
    fn an_extreme_spike_is_found_scores_stay_finite_and_a_later_jump_is_still_found() {
        let mut d = Detector::default();
        assert!(alarms(&mut d, (0..24 * 30).map(|h| (h * 3600, daily(h)))).is_empty());
        let t = 24 * 30 * 3600;
        let spike = d.score(t, 1e300);
        assert!(spike >= ALARM_THRESHOLD, "{spike}");
        for (i, v) in [-1e300, f64::MAX, f64::MIN, f64::INFINITY, f64::NAN]
            .into_iter()
            .enumerate()
        {
            let s = d.score(t + (i as i64 + 1) * 3600, v);
            assert!(s.is_finite() && (0.0..=1.0).contains(&s), "{v}: {s}");
        }
        // Back to normal for two weeks: quiet again …
        let start = 24 * 30 + 6;
        let normal = alarms(
            &mut d,
            (start..start + 24 * 14).map(|h| (h * 3600, daily(h))),
        );
        assert!(normal.len() <= 2, "{normal:?}");
        // … and a tenfold jump is still seen.
        let end = start + 24 * 14;
        let jump = alarms(&mut d, (end..end + 12).map(|h| (h * 3600, 10.0 * daily(h))));
        assert!(
            !jump.is_empty(),
            "a tenfold jump after an extreme spike went unseen"
        );
    }
}
