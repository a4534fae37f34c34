//! Spend scenarios: the product's own case for the detector. A generator of realistic hourly
//! spend per customer and meter category (daily and weekly seasonality, growth, noise), with
//! fraud shapes injected into a customer's compute spend, scored the way the monitoring pass
//! scores a spend series: one [`Detector`] per (customer, meter category), an hour is an alert
//! when its score reaches the threshold **and** its spend is above what the detector expected
//! (a drop is not a risk), one alert per series within six hours.
//!
//! What it measures, at a given threshold (the product's is [`ALARM_THRESHOLD`]):
//! - **hours to detect** each shape: from the shape's first hour to the end of the first hour
//!   that alerts (the pass scores an hour once it is complete, so 1 is the best possible);
//! - **false alarms per customer-month** on the same customers without any shape, over every
//!   meter category, after each series' first week (a new series learns before it alerts).
//!
//! Everything is deterministic from a seed (`riskdesk scenarios`, BENCHMARKS.md).

use super::detector::{ALARM_THRESHOLD, Detector};

/// 2026-01-05T00:00:00Z, a Monday: series start at midnight UTC on a Monday.
pub const START: i64 = 1_767_571_200;
const HOUR: i64 = 3_600;
/// Days of spend per customer.
pub const DAYS: usize = 90;
/// The day a shape starts (its hour within the day is drawn per customer).
pub const FRAUD_DAY: usize = 60;
/// Hours before false alarms are counted: a series' first week.
pub const SETTLE_HOURS: usize = 7 * 24;
/// One alert per series within this many hours (the pass's cooldown).
pub const COOLDOWN_HOURS: usize = 6;

/// The meter categories of a generated customer; the shapes go into the first (compute, where
/// GPU virtual machines are billed).
pub const CATEGORIES: [&str; 3] = ["Virtual Machines", "Storage", "Bandwidth"];

/// A fraud shape injected into a customer's compute spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Crypto-mining on GPU machines: compute spend ×3 from the first hour, for a week.
    MiningBurst3x,
    /// The same at ×10.
    MiningBurst10x,
    /// Spend climbing linearly from ×1 to ×3 over five days, then staying there (a thief
    /// adding machines slowly to stay under the radar).
    SlowRamp,
    /// Compute spend ×4 on Saturdays and Sundays only (when nobody watches), three weekends.
    WeekendOnly,
    /// Machines started in a region the customer never used: five times its usual hourly
    /// compute spend added for six hours, then stopped.
    NewRegionSpike,
}

impl Shape {
    pub const ALL: [Shape; 5] = [
        Shape::MiningBurst3x,
        Shape::MiningBurst10x,
        Shape::SlowRamp,
        Shape::WeekendOnly,
        Shape::NewRegionSpike,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::MiningBurst3x => "mining burst 3x",
            Shape::MiningBurst10x => "mining burst 10x",
            Shape::SlowRamp => "slow ramp to 3x over 5 days",
            Shape::WeekendOnly => "weekend-only 4x",
            Shape::NewRegionSpike => "new-region spike +5x for 6 h",
        }
    }

    /// Hours during which the shape is present (a detection later than this is a miss).
    pub fn duration_hours(self) -> usize {
        match self {
            Shape::MiningBurst3x | Shape::MiningBurst10x => 7 * 24,
            Shape::SlowRamp => (DAYS - FRAUD_DAY) * 24,
            Shape::WeekendOnly => 21 * 24,
            Shape::NewRegionSpike => 6,
        }
    }

    /// The compute spend of hour `h` since the shape's start, from the clean spend `clean`
    /// and the customer's usual hourly compute spend `base`; `weekday` 0 is Monday.
    fn apply(self, h: usize, weekday: usize, clean: f64, base: f64) -> f64 {
        match self {
            Shape::MiningBurst3x => clean * 3.0,
            Shape::MiningBurst10x => clean * 10.0,
            Shape::SlowRamp => clean * (1.0 + 2.0 * (h as f64 / 120.0).min(1.0)),
            Shape::WeekendOnly if weekday >= 5 => clean * 4.0,
            Shape::WeekendOnly => clean,
            Shape::NewRegionSpike if h < 6 => clean + 5.0 * base,
            Shape::NewRegionSpike => clean,
        }
    }

    /// The shape's first hour from the customer's draw: shapes start on `FRAUD_DAY` at a
    /// drawn hour, the weekend pattern on the first Saturday from then.
    fn start(self, hour_of_day: usize) -> usize {
        let h = FRAUD_DAY * 24 + hour_of_day;
        match self {
            Shape::WeekendOnly => {
                let day = FRAUD_DAY + (5 + 7 - FRAUD_DAY % 7) % 7;
                day * 24
            }
            _ => h,
        }
    }
}

/// splitmix64: small, fast and good enough to draw spend.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-300);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// One meter category's spend model.
#[derive(Clone, Debug)]
struct Model {
    /// Usual spend per hour (EUR).
    base: f64,
    /// Share of the base that follows office hours (0 = flat).
    daily: f64,
    /// Weekend spend as a share of weekday spend.
    weekend: f64,
    /// Growth per 30 days (0.03 = 3 %).
    growth: f64,
    /// Multiplicative noise (log-normal σ).
    noise: f64,
    /// UTC hour at which the customer's working day peaks.
    peak: f64,
}

impl Model {
    fn clean(&self, hour: usize, rng: &mut Rng) -> f64 {
        let hod = (hour % 24) as f64;
        let weekday = (hour / 24) % 7;
        // Office hours: a smooth bump of ±12 h around the peak.
        let d = ((hod - self.peak + 36.0) % 24.0) - 12.0;
        let office = (-(d * d) / 18.0).exp();
        let mut v = self.base * (1.0 - self.daily + 2.0 * self.daily * office);
        if weekday >= 5 {
            v *= self.weekend;
        }
        v *= 1.0 + self.growth * hour as f64 / (30.0 * 24.0);
        v *= (self.noise * rng.normal() - self.noise * self.noise / 2.0).exp();
        // Spend is recorded to the cent.
        (v * 100.0).round() / 100.0
    }
}

/// A generated customer: its three categories' models, and where a shape would start.
#[derive(Clone, Debug)]
pub struct Customer {
    models: [Model; 3],
    fraud_hour_of_day: usize,
    seed: u64,
}

impl Customer {
    /// The customer number `i` of the population drawn from `seed`.
    pub fn generate(seed: u64, i: u64) -> Customer {
        let seed = seed
            .wrapping_mul(0x2545_F491_4F6C_DD1D)
            .wrapping_add(i.wrapping_mul(0x9E37_79B9));
        let mut r = Rng(seed);
        let peak = r.range(7.0, 16.0);
        let compute = Model {
            base: r.range(2.0, 60.0),
            daily: r.range(0.0, 0.45),
            weekend: r.range(0.5, 1.0),
            growth: r.range(-0.02, 0.08),
            noise: r.range(0.03, 0.2),
            peak,
        };
        let storage = Model {
            base: r.range(0.2, 8.0),
            daily: r.range(0.0, 0.05),
            weekend: r.range(0.95, 1.0),
            growth: r.range(0.0, 0.06),
            noise: r.range(0.01, 0.05),
            peak,
        };
        let bandwidth = Model {
            base: r.range(0.1, 4.0),
            daily: r.range(0.1, 0.5),
            weekend: r.range(0.4, 1.0),
            growth: r.range(-0.02, 0.08),
            noise: r.range(0.1, 0.35),
            peak,
        };
        Customer {
            models: [compute, storage, bandwidth],
            fraud_hour_of_day: (r.next() % 24) as usize,
            seed: r.next(),
        }
    }

    /// Hourly spend of category `c` (an index of [`CATEGORIES`]) for [`DAYS`] days, with
    /// `shape` in the compute series when given.
    pub fn series(&self, c: usize, shape: Option<Shape>) -> Vec<f64> {
        let m = &self.models[c];
        let mut rng = Rng(self.seed ^ (c as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let n = DAYS * 24;
        let start = shape.map(|s| s.start(self.fraud_hour_of_day));
        (0..n)
            .map(|h| {
                let clean = m.clean(h, &mut rng);
                match (shape, start) {
                    (Some(s), Some(st)) if c == 0 && h >= st && h - st < s.duration_hours() => {
                        (s.apply(h - st, (h / 24) % 7, clean, m.base) * 100.0).round() / 100.0
                    }
                    _ => clean,
                }
            })
            .collect()
    }

    /// The hour the shape starts in the compute series.
    pub fn shape_start(&self, shape: Shape) -> usize {
        shape.start(self.fraud_hour_of_day)
    }
}

/// The hours (indices) that reach the alert condition: score at or above `threshold` with
/// spend above what the detector expected.
pub fn alarm_hours(series: &[f64], threshold: f64) -> Vec<usize> {
    let mut d = Detector::default();
    let mut out = Vec::new();
    for (h, &v) in series.iter().enumerate() {
        let s = d.score_explained(START + h as i64 * HOUR, v);
        if s.score >= threshold && v > s.expected {
            out.push(h);
        }
    }
    out
}

/// The hours that raise a new alert, as the monitoring pass raises them: an alarm within
/// [`COOLDOWN_HOURS`] of the series' previous one folds into that alert (its count and
/// evidence are updated; the analyst sees the new hour there) instead of raising another.
pub fn alerts(series: &[f64], threshold: f64) -> Vec<usize> {
    let mut out = Vec::new();
    let mut last: Option<usize> = None;
    for h in alarm_hours(series, threshold) {
        if last.is_none_or(|l| h - l >= COOLDOWN_HOURS) {
            out.push(h);
        }
        last = Some(h);
    }
    out
}

/// How one shape fared over the population.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeResult {
    pub shape: Shape,
    /// Hours to detect, per customer that was detected within the shape's duration.
    pub hours: Vec<usize>,
    pub missed: usize,
}

impl ShapeResult {
    pub fn detected(&self) -> usize {
        self.hours.len()
    }
    /// The `q` quantile (0–1) of the hours to detect, by nearest rank.
    pub fn quantile(&self, q: f64) -> Option<usize> {
        let mut h = self.hours.clone();
        h.sort_unstable();
        if h.is_empty() {
            return None;
        }
        let i = ((q * h.len() as f64).ceil() as usize).clamp(1, h.len()) - 1;
        Some(h[i])
    }
}

/// What a population of customers gives at a threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub customers: usize,
    pub threshold: f64,
    pub shapes: Vec<ShapeResult>,
    /// Alerts on the clean series after their first week, over every category.
    pub false_alarms: usize,
    /// Customer-months those were counted over.
    pub customer_months: f64,
}

impl Report {
    pub fn false_alarms_per_customer_month(&self) -> f64 {
        self.false_alarms as f64 / self.customer_months
    }
}

/// Runs every shape on `customers` customers drawn from `seed`.
pub fn evaluate(seed: u64, customers: usize, threshold: f64) -> Report {
    let mut shapes: Vec<ShapeResult> = Shape::ALL
        .iter()
        .map(|&shape| ShapeResult {
            shape,
            hours: Vec::new(),
            missed: 0,
        })
        .collect();
    let mut false_alarms = 0;
    for i in 0..customers {
        let c = Customer::generate(seed, i as u64);
        for cat in 0..CATEGORIES.len() {
            false_alarms += alerts(&c.series(cat, None), threshold)
                .into_iter()
                .filter(|h| *h >= SETTLE_HOURS)
                .count();
        }
        for r in &mut shapes {
            let start = c.shape_start(r.shape);
            let end = start + r.shape.duration_hours();
            // Detected when an hour of the shape raises an alert or folds into the open one.
            match alarm_hours(&c.series(0, Some(r.shape)), threshold)
                .into_iter()
                .find(|h| *h >= start)
            {
                Some(h) if h < end => r.hours.push(h - start + 1),
                _ => r.missed += 1,
            }
        }
    }
    let months = (DAYS * 24 - SETTLE_HOURS) as f64 / (30.0 * 24.0);
    Report {
        customers,
        threshold,
        shapes,
        false_alarms,
        customer_months: customers as f64 * months,
    }
}

/// [`evaluate`] at the product's alarm threshold.
pub fn evaluate_at_product_threshold(seed: u64, customers: usize) -> Report {
    evaluate(seed, customers, ALARM_THRESHOLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_seasonal() {
        let a = Customer::generate(7, 3);
        let b = Customer::generate(7, 3);
        assert_eq!(a.series(0, None), b.series(0, None));
        assert_ne!(a.series(0, None), Customer::generate(8, 3).series(0, None));
        // A shape changes the compute series from its start only, and no other category.
        let s = a.shape_start(Shape::MiningBurst10x);
        let (clean, burst) = (a.series(0, None), a.series(0, Some(Shape::MiningBurst10x)));
        assert_eq!(clean[..s], burst[..s]);
        assert!(
            (burst[s] / clean[s] - 10.0).abs() < 0.01,
            "{} {}",
            burst[s],
            clean[s]
        );
        assert_eq!(a.series(1, None), a.series(1, Some(Shape::MiningBurst10x)));
        // Weekends below weekdays on average for a customer whose weekend share is below 1.
        let mean = |days: &[usize]| {
            let v: Vec<f64> = days
                .iter()
                .flat_map(|d| clean[d * 24..d * 24 + 24].iter().copied())
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let weekdays: Vec<usize> = (0..28).filter(|d| d % 7 < 5).collect();
        let weekends: Vec<usize> = (0..28).filter(|d| d % 7 >= 5).collect();
        let m = &a.models[0];
        if m.weekend < 0.8 {
            assert!(mean(&weekends) < mean(&weekdays));
        }
        // The weekend shape starts on a Saturday.
        assert_eq!((a.shape_start(Shape::WeekendOnly) / 24) % 7, 5);
    }

    /// The product's promise on its own case: a 10× mining burst on compute spend raises an
    /// alert (or folds into the open one) in its first hour, for every customer of the
    /// population, at the product's threshold — also right after a false alarm.
    #[test]
    fn a_tenfold_mining_burst_is_caught_in_its_first_hour() {
        let r = evaluate_at_product_threshold(1, 60);
        let burst = r
            .shapes
            .iter()
            .find(|s| s.shape == Shape::MiningBurst10x)
            .unwrap();
        assert_eq!(burst.missed, 0, "{burst:?}");
        assert_eq!(burst.quantile(1.0), Some(1), "{burst:?}");
    }
}
