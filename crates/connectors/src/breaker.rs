//! A circuit breaker: after `failures` consecutive failures the circuit opens and calls fail
//! fast for `open_for`; then one trial call is let through (half-open) and its outcome closes or
//! re-opens the circuit.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Breaker {
    failures: u32,
    open_for: Duration,
    state: Mutex<State>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed { consecutive: u32 },
    Open { until: Instant },
    HalfOpen,
}

impl Breaker {
    pub fn new(failures: u32, open_for: Duration) -> Self {
        Breaker {
            failures: failures.max(1),
            open_for,
            state: Mutex::new(State::Closed { consecutive: 0 }),
        }
    }

    /// May a call go through now? (Moves an expired open circuit to half-open: one trial.)
    pub fn allow(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match *s {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *s = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    pub fn success(&self) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = State::Closed { consecutive: 0 };
    }

    pub fn failure(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *s = match *s {
            State::Closed { consecutive } if consecutive + 1 < self.failures => State::Closed {
                consecutive: consecutive + 1,
            },
            _ => State::Open {
                until: Instant::now() + self.open_for,
            },
        };
    }

    pub fn is_open(&self) -> bool {
        matches!(
            *self.state.lock().unwrap_or_else(|p| p.into_inner()),
            State::Open { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_half_opens_later() {
        let b = Breaker::new(3, Duration::from_millis(30));
        b.failure();
        b.failure();
        assert!(b.allow());
        b.success();
        b.failure();
        b.failure();
        assert!(!b.is_open(), "a success resets the count");
        b.failure();
        assert!(b.is_open());
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "one trial after the open period");
        assert!(!b.allow(), "only one");
        b.failure();
        assert!(b.is_open());
    }
}
