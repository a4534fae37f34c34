//! `riskdesk detect` and `riskdesk nab` on the Numenta Anomaly Benchmark series in data/nab.

use riskdesk_domain::anomaly::detector::ALARM_THRESHOLD;

use crate::helpers::spawn_app;

const NAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/nab");

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_riskdesk"))
        .args(args)
        .env("RISKDESK_LOG", "warn")
        .output()
        .expect("run riskdesk")
}

/// `riskdesk detect --input INPUT --output OUTPUT`.
fn detect(input: &str, output: &str) -> std::process::Output {
    run(&["detect", "--input", input, "--output", output])
}

fn scores(path: &std::path::Path) -> Vec<(String, f64)> {
    let mut r = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        vec!["timestamp", "value", "anomaly_score"]
    );
    r.records()
        .map(|x| {
            let x = x.unwrap();
            (x[0].to_owned(), x[2].parse().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn detect_scores_every_row_finds_the_jump_and_stays_quiet_without_anomalies() {
    let _app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("jumpsup.csv");
    let input = format!("{NAB}/data/artificialWithAnomaly/art_daily_jumpsup.csv");
    let o = detect(&input, out.to_str().unwrap());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = scores(&out);
    assert_eq!(s.len(), 4032);
    assert!(s.iter().all(|(_, x)| (0.0..=1.0).contains(x)));
    // The labelled window is 2014-04-10 16:15 – 2014-04-12 01:45: after NAB's probationary
    // period, the highest score lies in it.
    let probation = (s.len() * 15 / 100).min(750);
    let (at, best) = s[probation..]
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(*best >= ALARM_THRESHOLD, "{best}");
    assert!(
        at.as_str() >= "2014-04-10 16:15:00" && at.as_str() <= "2014-04-12 01:45:00",
        "{at}"
    );

    for quiet in [
        "art_daily_no_noise",
        "art_daily_perfect_square_wave",
        "art_flatline",
        "art_noisy",
        "art_daily_small_noise",
    ] {
        let out = dir.path().join(format!("{quiet}.csv"));
        let input = format!("{NAB}/data/artificialNoAnomaly/{quiet}.csv");
        assert!(detect(&input, out.to_str().unwrap()).status.success());
        let s = scores(&out);
        let probation = (s.len() * 15 / 100).min(750);
        let alarms = s[probation..]
            .iter()
            .filter(|(_, x)| *x >= ALARM_THRESHOLD)
            .count();
        assert_eq!(
            alarms, 0,
            "{quiet}: {alarms} alarms on a series without anomalies"
        );
    }

    // A blank or non-numeric value, or an unreadable timestamp, costs its row only: reported
    // with its row number, left out, and the rest of the file is scored.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n2014-04-01 00:10:00,\n\
         yesterday,4\n2014-04-01 00:15:00,NaN\n2014-04-01 00:20:00,2\n",
    )
    .unwrap();
    let out = dir.path().join("x.csv");
    let o = detect(bad.to_str().unwrap(), out.to_str().unwrap());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for want in [
        "row 3: value 'abc' is not a number; skipped",
        "row 4: the value is blank; skipped",
        "row 5: timestamp 'yesterday' is not a timestamp; skipped",
        "row 6: value 'NaN' is not a number; skipped",
        "2 rows scored",
        "4 skipped",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    let s = scores(&out);
    assert_eq!(
        s.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["2014-04-01 00:00:00", "2014-04-01 00:20:00"]
    );
    std::fs::write(&bad, "time,v\n1,2\n").unwrap();
    let o = detect(
        bad.to_str().unwrap(),
        dir.path().join("x.csv").to_str().unwrap(),
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("`timestamp` and `value`"));
}

#[tokio::test]
async fn nab_scores_the_detector_with_the_benchmarks_rules() {
    let o = run(&["nab", NAB]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("41 series, 64 windows"), "{text}");
    let score_after = |prefix: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap();
        let mut words = line.split_whitespace().skip_while(|w| *w != "score");
        words.nth(1).and_then(|x| x.parse().ok()).unwrap()
    };
    // Issue 21's target is on the figure that cannot flatter: each category scored at a
    // threshold chosen on the others (BENCHMARKS.md has the runs: 74.12 now, 71.29 before).
    let loco = score_after("leave-one-category-out standard");
    assert!(loco >= 72.0, "{loco}: {text}");
    let in_sample = score_after("standard");
    assert!(in_sample >= loco, "{in_sample} vs {loco}");
    // No regression in the reward_low_FP_rate profile (67.48 before).
    assert!(
        score_after("leave-one-category-out reward_low_FP_rate") >= 67.48,
        "{text}"
    );
    // No false positive on the series without anomalies, at the threshold chosen.
    let quiet = text
        .lines()
        .find(|l| l.trim_start().starts_with("artificialNoAnomaly"))
        .unwrap();
    assert!(quiet.contains("false positives 0"), "{quiet}");
}

/// Timestamps that go back or repeat (clock changes, merged exports, re-sent rows) are scored
/// in arrival order, to the end of the file; the scores of the rows before the first
/// disorder are those of the clean file (scoring is streaming), and the jump is still found.
#[tokio::test]
async fn timestamps_that_go_back_or_repeat_are_scored_in_arrival_order_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!("{NAB}/data/artificialWithAnomaly/art_daily_jumpsup.csv");
    let text = std::fs::read_to_string(&input).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    // Row 1001 repeats row 1000; rows 2001-2003 are an hour earlier than their neighbours.
    let repeat = lines[999];
    lines.insert(1000, repeat);
    let back_rows: Vec<String> = lines[2000..2003]
        .iter()
        .map(|l| {
            let (t, v) = l.split_once(',').unwrap();
            let earlier = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", t).unwrap()
                - jiff::Span::new().hours(1);
            format!("{},{v}", earlier.strftime("%Y-%m-%d %H:%M:%S"))
        })
        .collect();
    let mut disordered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    for (i, r) in back_rows.into_iter().enumerate() {
        disordered[2000 + i] = r;
    }
    let path = dir.path().join("disordered.csv");
    std::fs::write(&path, disordered.join("\n") + "\n").unwrap();
    let out = dir.path().join("scored.csv");
    let o = detect(path.to_str().unwrap(), out.to_str().unwrap());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("4033 rows scored"), "{err}");
    assert!(err.contains("1 repeated"), "{err}");
    assert!(err.contains("1 went back"), "{err}");
    let s = scores(&out);
    assert_eq!(s.len(), 4033);

    let clean_out = dir.path().join("clean.csv");
    assert!(detect(&input, clean_out.to_str().unwrap()).status.success());
    let clean = scores(&clean_out);
    // lines[0] is the header: the repeat follows data row 999 (index 998).
    let same = s.iter().zip(&clean).take_while(|(a, b)| a == b).count();
    assert_eq!(
        same, 999,
        "streaming: the rows before the disorder score the same"
    );
    let probation = (s.len() * 15 / 100).min(750);
    let (at, best) = s[probation..]
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(*best >= ALARM_THRESHOLD, "{best}");
    assert!(
        at.as_str() >= "2014-04-10 16:15:00" && at.as_str() <= "2014-04-12 01:45:00",
        "{at}"
    );
}

/// Streaming is strict: a point's score uses only that point and earlier ones. A file cut after
/// 2,500 rows scores those rows exactly as the whole file does (with the rest rule that lets a
/// larger point end a rest, a score still never looks ahead).
#[tokio::test]
async fn a_cut_file_scores_its_rows_as_the_whole_file_does() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!("{NAB}/data/realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv");
    let text = std::fs::read_to_string(&input).unwrap();
    let cut: Vec<&str> = text.lines().take(2_501).collect();
    let cut_path = dir.path().join("cut.csv");
    std::fs::write(&cut_path, cut.join("\n") + "\n").unwrap();
    let (whole_out, cut_out) = (dir.path().join("whole.out"), dir.path().join("cut.out"));
    for (i, o) in [
        (&input, &whole_out),
        (&cut_path.to_str().unwrap().to_owned(), &cut_out),
    ] {
        let r = detect(i, o.to_str().unwrap());
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let (whole, part) = (scores(&whole_out), scores(&cut_out));
    assert!(whole.len() > 3_000, "{}", whole.len());
    assert_eq!(part.len(), 2_500);
    assert_eq!(&whole[..2_500], &part[..]);
    // The part cut holds alarms, so the comparison covers rests too.
    assert!(part.iter().any(|(_, s)| *s >= ALARM_THRESHOLD));
}
