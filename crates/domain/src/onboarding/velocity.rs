//! In-memory sliding-window counts, for assessing a batch offline (the server counts in its
//! database instead, so several processes agree).

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;

use jiff::Timestamp;

use super::assess::VelocityKind;

#[derive(Default)]
pub struct SlidingCounter {
    seen: HashMap<(VelocityKind, String), VecDeque<Timestamp>>,
}

impl SlidingCounter {
    /// Records one event at `at` and returns how many fall in (`at` − window, `at`], counting
    /// at most `cap` (only the newest `cap` events are kept, so a burst costs bounded memory
    /// and time). Events should arrive in time order; an out-of-order one is still counted.
    pub fn record(
        &mut self,
        kind: VelocityKind,
        value: &str,
        at: Timestamp,
        window_seconds: u64,
        cap: u32,
    ) -> u32 {
        let q = match self.seen.get_mut(&(kind, value.to_owned())) {
            Some(q) => q,
            None => self.seen.entry((kind, value.to_owned())).or_default(),
        };
        q.push_back(at);
        let since = at - jiff::SignedDuration::from_secs(window_seconds as i64);
        while q.front().is_some_and(|t| *t <= since) || q.len() > cap.max(1) as usize {
            q.pop_front();
        }
        // At most `cap` kept, so this scan is short.
        q.iter()
            .filter(|t| **t > since && **t <= at)
            .count()
            .min(cap as usize) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_inside_the_window_only() {
        let mut c = SlidingCounter::default();
        let t0: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let at = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
        assert_eq!(c.record(VelocityKind::Ip, "1.2.3.4", at(0), 600, 100), 1);
        assert_eq!(c.record(VelocityKind::Ip, "1.2.3.4", at(100), 600, 100), 2);
        assert_eq!(c.record(VelocityKind::Ip, "5.6.7.8", at(100), 600, 100), 1);
        assert_eq!(c.record(VelocityKind::Ip, "1.2.3.4", at(599), 600, 100), 3);
        assert_eq!(
            c.record(VelocityKind::Ip, "1.2.3.4", at(650), 600, 100),
            3,
            "the first fell out of the window"
        );
    }

    #[test]
    fn counting_stops_at_the_cap() {
        let mut c = SlidingCounter::default();
        let t0: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        for i in 0..1000 {
            let n = c.record(
                VelocityKind::Card,
                "411111:1111",
                t0 + jiff::SignedDuration::from_secs(i),
                86_400,
                3,
            );
            assert_eq!(n, (i as u32 + 1).min(3));
        }
    }
}
