//! The Numenta Anomaly Benchmark's scoring (NAB's published rules; summary in
//! `data/nab/SCORING.md`): windows around each labelled anomaly, a probationary period, a scaled
//! sigmoid that rewards early detection and discounts false positives close after a window, and
//! a score normalised between the null detector (0) and the perfect one (100).

/// Weights of a scoring profile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    pub tp: f64,
    pub fp: f64,
    pub fn_: f64,
}

pub const STANDARD: Profile = Profile {
    tp: 1.0,
    fp: 0.11,
    fn_: 1.0,
};
pub const REWARD_LOW_FP: Profile = Profile {
    tp: 1.0,
    fp: 0.22,
    fn_: 1.0,
};
pub const REWARD_LOW_FN: Profile = Profile {
    tp: 1.0,
    fp: 0.11,
    fn_: 2.0,
};

/// `2 / (1 + e^(5p)) - 1`, and -1 past p = 3.
pub fn scaled_sigmoid(p: f64) -> f64 {
    if p > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * p).exp()) - 1.0
    }
}

/// One file's result at one threshold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileScore {
    pub raw: f64,
    pub tp: u32,
    pub fp: u32,
    pub fn_: u32,
    pub windows: u32,
}

/// Rows of a labelled window: first and last row index inside it.
fn window_rows(times: &[i64], windows: &[(i64, i64)]) -> Vec<(usize, usize)> {
    windows
        .iter()
        .filter_map(|(start, end)| {
            let left = times.partition_point(|t| t < start);
            let right = times.partition_point(|t| t <= end);
            (right > left).then(|| (left, right - 1))
        })
        .collect()
}

/// The rows NAB never scores at the start of a file.
pub fn probation(n: usize) -> usize {
    ((0.15 * n as f64).floor() as usize).min(750)
}

/// Scores one file: `times` (any monotonic unit), `scores` in [0, 1], `windows` in the same unit.
pub fn score_file(
    times: &[i64],
    scores: &[f64],
    windows: &[(i64, i64)],
    threshold: f64,
    p: Profile,
) -> FileScore {
    let rows = window_rows(times, windows);
    let start = probation(times.len());
    let mut out = FileScore {
        windows: rows.len() as u32,
        ..Default::default()
    };
    let mut detected = vec![false; rows.len()];
    let mut w = 0; // the window at or after row i
    for i in 0..times.len() {
        while w < rows.len() && rows[w].1 < i {
            w += 1;
        }
        if i < start || scores[i] < threshold {
            continue;
        }
        if w < rows.len() && rows[w].0 <= i {
            let (left, right) = rows[w];
            if !detected[w] {
                detected[w] = true;
                let width = (right - left + 1) as f64;
                let pos = -((right - i + 1) as f64) / width;
                out.raw += p.tp * scaled_sigmoid(pos) / scaled_sigmoid(-1.0);
                out.tp += 1;
            }
        } else {
            let weight = if w == 0 {
                -1.0
            } else {
                let (left, right) = rows[w - 1];
                let width = (right - left + 1) as f64;
                let pos = (i - right) as f64 / (width - 1.0).max(1.0);
                scaled_sigmoid(pos)
            };
            out.raw += p.fp * weight;
            out.fp += 1;
        }
    }
    let missed = detected.iter().filter(|d| !**d).count() as u32;
    out.fn_ = missed;
    out.raw -= p.fn_ * missed as f64;
    out
}

/// 100 × (raw − null) / (perfect − null) over several files.
pub fn normalised(files: &[FileScore], p: Profile) -> f64 {
    let raw: f64 = files.iter().map(|f| f.raw).sum();
    let windows: f64 = files.iter().map(|f| f.windows as f64).sum();
    let perfect = p.tp * windows;
    let null = -p.fn_ * windows;
    if perfect == null {
        return 0.0;
    }
    100.0 * (raw - null) / (perfect - null)
}

/// The threshold that maximises the normalised score, as NAB chooses it: every distinct score
/// value is a candidate. `files` holds (times, scores, windows).
pub fn best_threshold(files: &[(Vec<i64>, Vec<f64>, Vec<(i64, i64)>)], p: Profile) -> (f64, f64) {
    let mut candidates: Vec<f64> = files.iter().flat_map(|f| f.1.iter().copied()).collect();
    candidates.sort_by(|a, b| a.total_cmp(b));
    candidates.dedup();
    // Bound the sweep: every one of the 1,000 highest distinct values (where the best
    // threshold of a sparse detector lies), ~400 quantiles of the rest, and 1.1 (no detection).
    let top = candidates.len().saturating_sub(1000);
    let step = (top / 400).max(1);
    let mut thresholds: Vec<f64> = candidates[..top].iter().step_by(step).copied().collect();
    thresholds.extend_from_slice(&candidates[top..]);
    thresholds.push(1.1);
    let mut best = (1.1, f64::MIN);
    for t in thresholds {
        let scored: Vec<FileScore> = files
            .iter()
            .map(|(ts, s, w)| score_file(ts, s, w, t, p))
            .collect();
        let n = normalised(&scored, p);
        if n > best.1 {
            best = (t, n);
        }
    }
    best
}

/// A series for scoring: (times, scores, windows).
pub type Series = (Vec<i64>, Vec<f64>, Vec<(i64, i64)>);

/// NAB's normalised score of a detector evaluated so that no series is scored with a threshold
/// chosen by looking at it: for each category (the part of a file's name before its first
/// `/`), the threshold is the best one on the *other* categories, and that category's files
/// are scored with it; the figure is the normalised score over every file scored that way.
/// Returns it with each category's threshold. (Only the threshold is chosen here: constants
/// written into the detector are whatever they are.)
pub fn leave_one_category_out(files: &[(String, Series)], p: Profile) -> (f64, Vec<(String, f64)>) {
    let category = |name: &str| name.split('/').next().unwrap_or("").to_owned();
    let mut cats: Vec<String> = files.iter().map(|(n, _)| category(n)).collect();
    cats.sort();
    cats.dedup();
    let mut scored = Vec::with_capacity(files.len());
    let mut thresholds = Vec::with_capacity(cats.len());
    for cat in &cats {
        let others: Vec<Series> = files
            .iter()
            .filter(|(n, _)| &category(n) != cat)
            .map(|(_, s)| s.clone())
            .collect();
        // A single category has nothing else to choose on: no detection is the honest choice.
        let t = if others.is_empty() {
            1.1
        } else {
            best_threshold(&others, p).0
        };
        thresholds.push((cat.clone(), t));
        scored.extend(
            files
                .iter()
                .filter(|(n, _)| &category(n) == cat)
                .map(|(_, (ts, s, w))| score_file(ts, s, w, t, p)),
        );
    }
    (normalised(&scored, p), thresholds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_is_never_scored_with_a_threshold_chosen_on_it() {
        let times: Vec<i64> = (0..1000).collect();
        let windows = vec![(500, 599)];
        // Category a: its anomaly scores 0.9, its noise 0.6. Category b: its anomaly 0.7.
        let mut a = vec![0.0; 1000];
        a[300] = 0.6;
        a[500] = 0.9;
        let mut b = vec![0.0; 1000];
        b[500] = 0.7;
        let files = vec![
            ("a/one.csv".to_owned(), (times.clone(), a, windows.clone())),
            ("b/one.csv".to_owned(), (times, b, windows)),
        ];
        let all: Vec<Series> = files.iter().map(|f| f.1.clone()).collect();
        let (_, in_sample) = best_threshold(&all, STANDARD);
        let (loco, thresholds) = leave_one_category_out(&files, STANDARD);
        // a is scored at b's best (0.7: catches a's anomaly, not its noise at 0.6);
        // b at a's best (0.9: above b's 0.7, so b's anomaly is missed).
        assert_eq!(
            thresholds,
            vec![("a".to_owned(), 0.7), ("b".to_owned(), 0.9)]
        );
        let want = normalised(
            &[
                score_file(&all[0].0, &all[0].1, &all[0].2, 0.7, STANDARD),
                score_file(&all[1].0, &all[1].1, &all[1].2, 0.9, STANDARD),
            ],
            STANDARD,
        );
        assert_eq!(loco, want);
        assert!(loco < in_sample, "{loco} vs in-sample {in_sample}");
    }

    #[test]
    fn the_sigmoid_rewards_early_detection() {
        assert!((scaled_sigmoid(-1.0) - 0.986_614).abs() < 1e-5);
        assert!(scaled_sigmoid(0.0).abs() < 1e-12);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
    }

    #[test]
    fn one_window_early_late_missed_and_false_positives() {
        let times: Vec<i64> = (0..1000).collect();
        let windows = [(500, 599)];
        let mut s = vec![0.0; 1000];
        // Nothing detected: one false negative.
        let f = score_file(&times, &s, &windows, 0.5, STANDARD);
        assert_eq!((f.tp, f.fn_, f.raw), (0, 1, -1.0));
        // Detected at the window's first row: a full true positive.
        s[500] = 1.0;
        let f = score_file(&times, &s, &windows, 0.5, STANDARD);
        assert!((f.raw - 1.0).abs() < 1e-9, "{f:?}");
        // A false positive before any window costs the full fp weight; one in the probation
        // period costs nothing.
        s[300] = 1.0;
        s[10] = 1.0;
        let f = score_file(&times, &s, &windows, 0.5, STANDARD);
        assert!((f.raw - (1.0 - 0.11)).abs() < 1e-9, "{f:?}");
        assert_eq!(normalised(&[f], STANDARD), 100.0 * (0.89 + 1.0) / 2.0);
    }
}
