//! `riskdesk detect` (score any `timestamp,value` series) and `riskdesk nab` (evaluate the
//! detector on the Numenta Anomaly Benchmark with its own scoring).

use std::path::Path;

use anyhow::{Context as _, bail};
use riskdesk_domain::anomaly::detector::{ALARM_THRESHOLD, Detector};
use riskdesk_domain::anomaly::nab::{self, Profile};
use riskdesk_domain::anomaly::scenarios;

/// Seconds since the epoch from `2014-04-01 00:00:00`, RFC 3339, or a window bound with
/// fractional seconds.
pub fn seconds(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_second());
    }
    let civil: jiff::civil::DateTime = s
        .replace(' ', "T")
        .parse()
        .with_context(|| format!("'{s}' is not a timestamp"))?;
    Ok(civil
        .to_zoned(jiff::tz::TimeZone::UTC)?
        .timestamp()
        .as_second())
}

/// What `detect` did with a file: rows scored, and the rows it could not score (skipped, each
/// reported with its row number) or that came out of time order (scored as they arrived).
#[derive(Debug, Default)]
pub struct DetectReport {
    pub scored: usize,
    /// (row number in the file, header = row 1; why)
    pub skipped: Vec<(usize, String)>,
    /// Rows whose timestamp is earlier than the one before them.
    pub went_back: usize,
    /// Rows whose timestamp repeats the one before them.
    pub repeated: usize,
}

/// Reads `timestamp,value` (header required), scores each row in the order it arrives,
/// writes `timestamp,value,anomaly_score`.
///
/// Real exports are not clean, and one bad row must not cost the rest of the file:
/// - a row whose timestamp goes back or repeats is scored where it arrives (the detector
///   reads the series as a sequence; time only sets the seasonal step, from the first
///   positive gap), and counted in the report;
/// - a row with a blank or non-numeric value, or an unreadable timestamp, is left out of
///   the output and reported with its row number; the detector neither scores nor learns it.
pub fn detect(input: &Path, output: &Path) -> anyhow::Result<DetectReport> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(input)
        .with_context(|| format!("cannot read {}", input.display()))?;
    let h = r.headers()?.clone();
    let ts = h.iter().position(|c| c.trim() == "timestamp");
    let val = h.iter().position(|c| c.trim() == "value");
    let (Some(ts), Some(val)) = (ts, val) else {
        bail!(
            "{}: the header must name the columns `timestamp` and `value`",
            input.display()
        );
    };
    let mut w = csv::Writer::from_path(output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    w.write_record(["timestamp", "value", "anomaly_score"])?;
    let mut d = Detector::default();
    let mut report = DetectReport::default();
    let mut last: Option<i64> = None;
    for (i, rec) in r.records().enumerate() {
        let row = i + 2;
        let rec = match rec {
            Ok(rec) => rec,
            Err(e) => {
                report.skipped.push((row, format!("unreadable: {e}")));
                continue;
            }
        };
        let (Some(t_raw), Some(v_raw)) = (rec.get(ts), rec.get(val)) else {
            report.skipped.push((row, "missing a column".into()));
            continue;
        };
        let t = match seconds(t_raw) {
            Ok(t) => t,
            Err(_) => {
                report
                    .skipped
                    .push((row, format!("timestamp '{t_raw}' is not a timestamp")));
                continue;
            }
        };
        let v = match v_raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ if v_raw.trim().is_empty() => {
                report.skipped.push((row, "the value is blank".into()));
                continue;
            }
            _ => {
                report
                    .skipped
                    .push((row, format!("value '{v_raw}' is not a number")));
                continue;
            }
        };
        match last {
            Some(l) if t < l => report.went_back += 1,
            Some(l) if t == l => report.repeated += 1,
            _ => {}
        }
        last = Some(t);
        let s = d.score(t, v);
        w.write_record([t_raw, v_raw, &format!("{s:.6}")])?;
        report.scored += 1;
    }
    w.flush()?;
    Ok(report)
}

type Scored = (Vec<i64>, Vec<f64>, Vec<(i64, i64)>);

/// Runs the detector on every series under `dir/data` and scores it with NAB's rules; prints
/// the per-profile score at NAB's best threshold and the per-category scores.
pub fn nab(dir: &Path) -> anyhow::Result<()> {
    let windows: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("labels/combined_windows.json"))
            .context("labels/combined_windows.json")?,
    )?;
    let windows = windows.as_object().context("windows: an object")?;
    let mut files: Vec<(String, Scored)> = Vec::new();
    for (name, wins) in windows {
        let path = dir.join("data").join(name);
        if !path.exists() {
            continue;
        }
        let mut r = csv::Reader::from_path(&path)?;
        let mut d = Detector::default();
        let (mut times, mut scores) = (Vec::new(), Vec::new());
        for rec in r.records() {
            let rec = rec?;
            let t = seconds(&rec[0])?;
            let v: f64 = rec[1].trim().parse().unwrap_or(0.0);
            scores.push(d.score(t, v));
            times.push(t);
        }
        let wins: Vec<(i64, i64)> = wins
            .as_array()
            .context("windows: lists")?
            .iter()
            .map(|w| {
                Ok((
                    seconds(w[0].as_str().unwrap_or(""))?,
                    seconds(w[1].as_str().unwrap_or(""))?,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        files.push((name.clone(), (times, scores, wins)));
    }
    if files.is_empty() {
        bail!("no NAB series found under {}", dir.display());
    }
    println!(
        "{} series, {} windows",
        files.len(),
        files.iter().map(|f| f.1.2.len()).sum::<usize>()
    );
    // First the figure that cannot flatter: each category scored at a threshold chosen on
    // the other categories only.
    for (name, profile) in [
        ("standard", nab::STANDARD),
        ("reward_low_FP_rate", nab::REWARD_LOW_FP),
        ("reward_low_FN_rate", nab::REWARD_LOW_FN),
    ] {
        let (score, thresholds) = nab::leave_one_category_out(&files, profile);
        println!(
            "leave-one-category-out {name:<20} score {score:6.2} (thresholds: {})",
            thresholds
                .iter()
                .map(|(c, t)| format!("{c} {t:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!("in-sample (threshold chosen on every series, as NAB's leaderboard does):");
    let all: Vec<Scored> = files.iter().map(|f| f.1.clone()).collect();
    for (name, profile) in [
        ("standard", nab::STANDARD),
        ("reward_low_FP_rate", nab::REWARD_LOW_FP),
        ("reward_low_FN_rate", nab::REWARD_LOW_FN),
    ] {
        let (t, score) = nab::best_threshold(&all, profile);
        let fixed: Vec<nab::FileScore> = all
            .iter()
            .map(|(ts, s, w)| nab::score_file(ts, s, w, ALARM_THRESHOLD, profile))
            .collect();
        println!(
            "{name:<20} score {score:6.2} at threshold {t:.4} (NAB's choice); {:6.2} at the product's alarm threshold {ALARM_THRESHOLD}",
            nab::normalised(&fixed, profile)
        );
        if name == "standard" {
            per_category(&files, t, profile);
        }
    }
    Ok(())
}

fn per_category(files: &[(String, Scored)], t: f64, p: Profile) {
    let mut cats: std::collections::BTreeMap<&str, Vec<nab::FileScore>> = Default::default();
    for (name, (times, scores, wins)) in files {
        let cat = name.split('/').next().unwrap_or("");
        cats.entry(cat)
            .or_default()
            .push(nab::score_file(times, scores, wins, t, p));
    }
    for (cat, scored) in cats {
        let fp: u32 = scored.iter().map(|f| f.fp).sum();
        let tp: u32 = scored.iter().map(|f| f.tp).sum();
        let fns: u32 = scored.iter().map(|f| f.fn_).sum();
        let raw: f64 = scored.iter().map(|f| f.raw).sum();
        println!(
            "  {cat:<24} raw {raw:7.2}  windows found {tp}, missed {fns}, false positives {fp}"
        );
    }
}

/// Prints what [`scenarios::evaluate`] measures on a generated population.
pub fn scenarios(customers: usize, seed: u64, threshold: Option<f64>) -> anyhow::Result<()> {
    if customers == 0 {
        bail!("--customers must be at least 1");
    }
    let threshold = threshold.unwrap_or(ALARM_THRESHOLD);
    if !(0.0..=1.0).contains(&threshold) {
        bail!("--threshold must be in [0, 1]");
    }
    let t = std::time::Instant::now();
    let r = scenarios::evaluate(seed, customers, threshold);
    println!(
        "{customers} customers x {} meter categories x {} days (seed {seed}), threshold {threshold}",
        scenarios::CATEGORIES.len(),
        scenarios::DAYS
    );
    println!(
        "{:<30} {:>9} {:>7} {:>7} {:>7} {:>7}",
        "shape", "detected", "median", "p90", "max", "missed"
    );
    let h = |x: Option<usize>| x.map_or("-".to_owned(), |v| format!("{v} h"));
    for s in &r.shapes {
        println!(
            "{:<30} {:>9} {:>7} {:>7} {:>7} {:>7}",
            s.shape.name(),
            format!("{}/{}", s.detected(), customers),
            h(s.quantile(0.5)),
            h(s.quantile(0.9)),
            h(s.quantile(1.0)),
            s.missed
        );
    }
    println!(
        "false alarms on clean series: {} in {:.0} customer-months = {:.3} per customer-month",
        r.false_alarms,
        r.customer_months,
        r.false_alarms_per_customer_month()
    );
    println!("({:.2} s)", t.elapsed().as_secs_f64());
    Ok(())
}
