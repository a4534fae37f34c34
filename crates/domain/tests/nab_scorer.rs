//! The NAB scorer reproduces the benchmark's published per-file scores for the Numenta
//! detector's own outputs (data/nab/results/numenta), at the published standard threshold.

use riskdesk_domain::anomaly::nab::{STANDARD, score_file};

const NAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/nab");
const THRESHOLD: f64 = 0.5421876907348634;

fn seconds(s: &str) -> i64 {
    let s = s.trim().replace(' ', "T");
    let t: jiff::civil::DateTime = s.parse().unwrap();
    t.to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_second()
}

fn published(file: &str) -> f64 {
    let mut r =
        csv::Reader::from_path(format!("{NAB}/results/numenta/numenta_standard_scores.csv"))
            .unwrap();
    for rec in r.records() {
        let rec = rec.unwrap();
        if &rec[2] == file {
            return rec[4].parse().unwrap();
        }
    }
    panic!("{file} not in the table")
}

fn check(file: &str, output: &str) {
    let windows: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{NAB}/labels/combined_windows.json")).unwrap(),
    )
    .unwrap();
    let windows: Vec<(i64, i64)> = windows[file]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                seconds(w[0].as_str().unwrap()),
                seconds(w[1].as_str().unwrap()),
            )
        })
        .collect();
    let mut r = csv::Reader::from_path(format!("{NAB}/results/numenta/{output}")).unwrap();
    let (mut times, mut scores) = (Vec::new(), Vec::new());
    for rec in r.records() {
        let rec = rec.unwrap();
        times.push(seconds(&rec[0]));
        scores.push(rec[2].parse::<f64>().unwrap());
    }
    let got = score_file(&times, &scores, &windows, THRESHOLD, STANDARD).raw;
    let want = published(file);
    assert!(
        (got - want).abs() < 1e-6,
        "{file}: {got} vs published {want}"
    );
}

#[test]
fn reproduces_numentas_published_per_file_scores() {
    check(
        "artificialWithAnomaly/art_daily_jumpsup.csv",
        "numenta_art_daily_jumpsup.csv",
    );
    check(
        "artificialNoAnomaly/art_daily_small_noise.csv",
        "numenta_art_daily_small_noise.csv",
    );
    check(
        "realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv",
        "numenta_ec2_cpu_utilization_24ae8d.csv",
    );
}
