//! The streaming detector's speed and state (run by hand: `cargo bench -p riskdesk-domain
//! --bench detector`; figures in BENCHMARKS.md).
//!
//! One series of 1,000,000 five-minute points (a daily wave, a weekly one, deterministic
//! noise and a few level shifts) scored point by point, against a baseline in the same run:
//! an exponentially weighted z-score over the same points (the simplest streaming detector
//! there is; ~10 floating-point operations a point). Rounds alternate between the two, so a
//! noisy neighbour slows both; the ratio is what to compare across machines. Then the state
//! the monitoring pipeline keeps per series: the detector's bytes after 90 days of hourly
//! spend of generated customers (`riskdesk scenarios`' generator).

use std::hint::black_box;
use std::time::Instant;

use riskdesk_domain::anomaly::detector::Detector;
use riskdesk_domain::anomaly::scenarios::{CATEGORIES, Customer, START};

fn series(n: usize) -> Vec<(i64, f64)> {
    let mut x: u64 = 0x1234_5678;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = (x % 1000) as f64 / 1000.0 - 0.5;
            let t = i as f64 * 300.0;
            let day = (t / 86_400.0 * std::f64::consts::TAU).sin();
            let week = (t / 604_800.0 * std::f64::consts::TAU).sin();
            let shift = if (i / 50_000) % 3 == 1 { 20.0 } else { 0.0 };
            (
                1_400_000_000 + i as i64 * 300,
                100.0 + 30.0 * day + 10.0 * week + 8.0 * noise + shift,
            )
        })
        .collect()
}

fn detector(points: &[(i64, f64)]) -> f64 {
    let mut d = Detector::default();
    points.iter().map(|&(t, v)| d.score(t, v)).sum()
}

fn ewma(points: &[(i64, f64)]) -> f64 {
    let (mut mean, mut var, mut sum): (f64, f64, f64) = (points[0].1, 1.0, 0.0);
    for &(_, v) in points {
        let z = (v - mean).abs() / var.sqrt().max(1e-9);
        sum += (z / 6.0).min(1.0);
        let d = v - mean;
        mean += 0.01 * d;
        var = 0.99 * (var + 0.01 * d * d);
    }
    sum
}

fn main() {
    let n = 1_000_000;
    let points = series(n);
    let (mut det, mut base) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        black_box(detector(black_box(&points)));
        det.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        black_box(ewma(black_box(&points)));
        base.push(t.elapsed().as_secs_f64());
    }
    det.sort_by(f64::total_cmp);
    base.sort_by(f64::total_cmp);
    let (d, b) = (det[2], base[2]);
    println!(
        "detector: {n} points in {d:.3} s (median of 5) = {:.2} M points/s; \
         EWMA z-score baseline {b:.4} s = {:.0} M points/s; detector/baseline time {:.0}x",
        n as f64 / d / 1e6,
        n as f64 / b / 1e6,
        d / b
    );

    // State per series after 90 days of hourly spend.
    let mut sizes = Vec::new();
    for i in 0..200 {
        let c = Customer::generate(1, i);
        for cat in 0..CATEGORIES.len() {
            let mut d = Detector::default();
            for (h, v) in c.series(cat, None).into_iter().enumerate() {
                d.score(START + h as i64 * 3_600, v);
            }
            sizes.push(d.state_bytes());
        }
    }
    sizes.sort_unstable();
    let mut d = Detector::default();
    for &(t, v) in &points {
        d.score(t, v);
    }
    println!(
        "state per hourly spend series after 90 days ({} series): median {:.1} KiB, max {:.1} KiB; \
         the five-minute series above after {n} points: {:.1} KiB",
        sizes.len(),
        sizes[sizes.len() / 2] as f64 / 1024.0,
        sizes[sizes.len() - 1] as f64 / 1024.0,
        d.state_bytes() as f64 / 1024.0
    );
}
