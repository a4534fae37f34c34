//! A quick loop for working on the detector: the leave-one-category-out NAB scores of
//! `riskdesk nab`, from the domain crate alone (it builds in seconds after a change to the
//! detector; `riskdesk nab` builds the whole product). Run:
//! `cargo run --release -p riskdesk-domain --example nab_eval [data/nab]`.

use riskdesk_domain::anomaly::detector::Detector;
use riskdesk_domain::anomaly::nab::{self, Series};

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` (NAB's format) as seconds since the epoch.
fn seconds(s: &str) -> i64 {
    let s = s.trim();
    let civil: jiff::civil::DateTime = s.replace(' ', "T").parse().expect("a NAB timestamp");
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("UTC")
        .timestamp()
        .as_second()
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--scenarios") {
        let r = riskdesk_domain::anomaly::scenarios::evaluate_at_product_threshold(1, 200);
        for s in &r.shapes {
            println!(
                "{:<30} detected {}/{} median {:?} p90 {:?} max {:?}",
                s.shape.name(),
                s.detected(),
                r.customers,
                s.quantile(0.5),
                s.quantile(0.9),
                s.quantile(1.0)
            );
        }
        println!(
            "false alarms per customer-month {:.3}",
            r.false_alarms_per_customer_month()
        );
        return;
    }
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or("data/nab".into()));
    let labels: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("labels/combined_windows.json")).expect("labels"),
    )
    .expect("labels JSON");
    let mut files: Vec<(String, Series)> = Vec::new();
    for (name, wins) in labels.as_object().expect("an object") {
        let path = dir.join("data").join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let mut d = Detector::default();
        let (mut times, mut scores) = (Vec::new(), Vec::new());
        for line in text.lines().skip(1) {
            let (t, v) = line.split_once(',').expect("timestamp,value");
            let t = seconds(t);
            scores.push(d.score(t, v.trim().parse().unwrap_or(0.0)));
            times.push(t);
        }
        let wins = wins
            .as_array()
            .expect("windows")
            .iter()
            .map(|w| {
                (
                    seconds(w[0].as_str().unwrap()),
                    seconds(w[1].as_str().unwrap()),
                )
            })
            .collect();
        files.push((name.clone(), (times, scores, wins)));
    }
    let all: Vec<Series> = files.iter().map(|f| f.1.clone()).collect();
    let t = riskdesk_domain::anomaly::detector::ALARM_THRESHOLD;
    let quiet: u32 = files
        .iter()
        .filter(|(n, _)| n.starts_with("artificialNoAnomaly/"))
        .map(|(_, (ts, s, w))| nab::score_file(ts, s, w, t, nab::STANDARD).fp)
        .sum();
    println!("alarms on the series without anomalies at {t}: {quiet}");
    for (name, p) in [
        ("standard", nab::STANDARD),
        ("low_FP", nab::REWARD_LOW_FP),
        ("low_FN", nab::REWARD_LOW_FN),
    ] {
        let (loco, thresholds) = nab::leave_one_category_out(&files, p);
        let (t, ins) = nab::best_threshold(&all, p);
        println!("{name:<9} LOCO {loco:6.2}  in-sample {ins:6.2} at {t:.4}");
        // Each held-out category at its own threshold.
        for (cat, t) in thresholds {
            let scored: Vec<nab::FileScore> = files
                .iter()
                .filter(|(n, _)| n.split('/').next() == Some(cat.as_str()))
                .map(|(_, (ts, s, w))| nab::score_file(ts, s, w, t, p))
                .collect();
            println!(
                "  {cat:<22} at {t:.4}: raw {:6.2}, found {}, missed {}, false positives {}",
                scored.iter().map(|f| f.raw).sum::<f64>(),
                scored.iter().map(|f| f.tp).sum::<u32>(),
                scored.iter().map(|f| f.fn_).sum::<u32>(),
                scored.iter().map(|f| f.fp).sum::<u32>()
            );
        }
    }
}
