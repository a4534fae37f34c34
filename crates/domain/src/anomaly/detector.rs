//! A streaming anomaly detector for one series: the score of a point uses only that point and
//! earlier ones.
//!
//! Each point is compared with two robust expectations — the recent level (median and MAD of
//! the last `RECENT` points) and, once a season of history exists, the same phase of earlier
//! seasons (daily and weekly, from the timestamps' spacing) — and the smaller surprise counts,
//! so a daily or weekly pattern is not an anomaly. A level shift is absorbed as the recent
//! window fills with the new level. The surprise (in robust standard deviations) maps to [0, 1).

use std::collections::VecDeque;

const RECENT: usize = 400;
const MIN_POINTS: usize = 12;
/// A score at or above this is an alarm …
const ALARM: f64 = 0.9;
/// … and after one, further alarms are held below `ALARM` for this many points: one anomaly
/// is one alert, not a run of them.
const HOLD: usize = 100;

#[derive(Clone, Debug)]
pub struct Detector {
    recent: VecDeque<f64>,
    /// All points so far (value), for seasonal look-back.
    history: Vec<f64>,
    times: Vec<i64>,
    step: Option<i64>,
    since_alarm: usize,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            recent: VecDeque::new(),
            history: Vec::new(),
            times: Vec::new(),
            step: None,
            since_alarm: usize::MAX / 2,
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median and MAD-based spread (floored so a flat series does not divide by zero).
fn robust(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut v: Vec<f64> = values.collect();
    let m = median(&mut v);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&mut dev) * 1.4826;
    let floor = (m.abs() * 0.01).max(1e-9);
    (m, mad.max(floor))
}

/// A point's score and what the detector expected there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// In [0, 1); at or above [`ALARM_THRESHOLD`] is an alarm.
    pub score: f64,
    /// The expectation the point was judged against (recent level or same seasonal phase,
    /// whichever it was closer to).
    pub expected: f64,
}

/// The score at which a point is an alarm.
pub const ALARM_THRESHOLD: f64 = ALARM;

/// Seasonal look-back needs at most three weeks of points; older ones are dropped.
const MAX_SEASONS_BACK: i64 = 3 * 7 * 86_400;

impl Detector {
    /// Scores the next point (`time` in seconds) and adds it to the history.
    pub fn score(&mut self, time: i64, value: f64) -> f64 {
        self.score_explained(time, value).score
    }

    /// Like [`Detector::score`], with the expected value.
    pub fn score_explained(&mut self, time: i64, value: f64) -> Scored {
        if let Some(&last) = self.times.last() {
            if self.step.is_none() && time > last {
                self.step = Some(time - last);
            }
        }
        let mut expected = value;
        let score = if self.recent.len() < MIN_POINTS {
            0.0
        } else {
            let (m, s) = robust(self.recent.iter().copied());
            let mut z = (value - m).abs() / s;
            expected = m;
            if let Some(step) = self.step.filter(|s| *s > 0) {
                for season in [86_400 / step, 7 * 86_400 / step] {
                    let season = season as usize;
                    if season == 0 || self.history.len() < season {
                        continue;
                    }
                    // The same phase in up to the last three seasons.
                    let n = self.history.len();
                    let same_phase = (1..=3)
                        .filter_map(|k| n.checked_sub(k * season))
                        .map(|i| self.history[i]);
                    let (sm, _) = robust(same_phase);
                    let zs = (value - sm).abs() / s;
                    if zs < z {
                        z = zs;
                        expected = sm;
                    }
                }
            }
            // 3 robust sigmas → 0.5, 6 → 0.8, growing towards 1.
            1.0 - 1.0 / (1.0 + (z / 3.0).powi(2))
        };
        self.since_alarm = self.since_alarm.saturating_add(1);
        let score = if score >= ALARM {
            if self.history.len() >= HOLD && self.since_alarm > HOLD {
                self.since_alarm = 0;
                score
            } else if self.history.len() < HOLD {
                self.since_alarm = 0;
                ALARM - 0.01
            } else {
                ALARM - 0.01
            }
        } else {
            score.min(ALARM - 0.01)
        };
        self.recent.push_back(value);
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        self.history.push(value);
        self.times.push(time);
        // Keep what seasonal look-back can use (amortised: trim when twice that long).
        if let Some(step) = self.step.filter(|s| *s > 0) {
            let keep = (MAX_SEASONS_BACK / step) as usize + 1;
            if self.history.len() > 2 * keep.max(HOLD) {
                let cut = self.history.len() - keep.max(HOLD);
                self.history.drain(..cut);
                self.times.drain(..cut);
            }
        }
        Scored { score, expected }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spike_scores_high_and_noise_low() {
        let mut d = Detector::default();
        let mut max_noise: f64 = 0.0;
        for i in 0..500 {
            let v = 10.0 + ((i * 7919) % 13) as f64 / 13.0;
            max_noise = max_noise.max(d.score(i * 300, v));
        }
        assert!(max_noise < 0.5, "{max_noise}");
        assert!(d.score(500 * 300, 60.0) > 0.9);
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
            };
            let s = d.score(i as i64 * 300, v);
            if i > 288 * 5 {
                late = late.max(s);
            }
        }
        assert!(late < 0.5, "{late}");
    }
}
