//! Receivables, dunning and aging: pure functions over invoices, their open amounts and a day.
//!
//! Billing thinks in calendar days (UTC): an invoice is due on a day, a ladder step falls on a
//! day, aging counts days. [`Day`] is that day as a number, so "due + 7" is plain arithmetic.

pub mod aging;
pub mod dunning;
pub mod format;

use std::fmt;

use jiff::civil::Date;
use jiff::{Timestamp, tz::TimeZone};

use crate::values::ValueError;

/// A UTC calendar day, counted from 1970-01-01 (day 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

const SECONDS_PER_DAY: i64 = 86_400;

impl Day {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Day, ValueError> {
        let d: Date = s
            .trim()
            .parse()
            .map_err(|_| ValueError(format!("'{s}' is not a date like \"2026-11-30\"")))?;
        if s.trim().len() != 10 {
            return Err(ValueError(format!(
                "'{s}' is not a date like \"2026-11-30\""
            )));
        }
        Ok(Day::from_date(d))
    }

    /// Parses `YYYY-MM-DD`, or an RFC 3339 instant (its UTC day).
    pub fn parse_date_or_instant(s: &str) -> Result<Day, ValueError> {
        if s.trim().len() == 10 {
            return Day::parse(s);
        }
        let t: Timestamp = s.trim().parse().map_err(|_| {
            ValueError(format!(
                "'{s}' is neither a date (YYYY-MM-DD) nor an RFC 3339 time"
            ))
        })?;
        Ok(Day::of(t))
    }

    pub fn from_date(d: Date) -> Day {
        let secs = d
            .to_zoned(TimeZone::UTC)
            .map(|z| z.timestamp().as_second())
            .unwrap_or(0);
        Day(secs.div_euclid(SECONDS_PER_DAY) as i32)
    }

    /// The UTC day of an instant.
    pub fn of(t: Timestamp) -> Day {
        Day(t.as_second().div_euclid(SECONDS_PER_DAY) as i32)
    }

    pub fn date(self) -> Date {
        Timestamp::from_second(self.0 as i64 * SECONDS_PER_DAY)
            .map(|t| t.to_zoned(TimeZone::UTC).date())
            .unwrap_or_default()
    }

    /// Midnight UTC at the start of this day.
    pub fn start(self) -> Timestamp {
        Timestamp::from_second(self.0 as i64 * SECONDS_PER_DAY).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Midnight UTC at the end of this day (the start of the next).
    pub fn end(self) -> Timestamp {
        self.plus(1).start()
    }

    pub fn plus(self, days: i32) -> Day {
        Day(self.0.saturating_add(days))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.date())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_count_from_the_epoch() {
        assert_eq!(Day::parse("1970-01-01").unwrap(), Day(0));
        let d = Day::parse("2026-11-30").unwrap();
        assert_eq!(d.to_string(), "2026-11-30");
        assert_eq!(d.plus(1).to_string(), "2026-12-01");
        assert_eq!(Day::parse("1969-12-31").unwrap(), Day(-1));
        assert!(Day::parse("2026-02-30").is_err());
        assert!(Day::parse("2026-1-5").is_err());
        assert_eq!(
            Day::parse_date_or_instant("2026-11-30T23:59:59Z").unwrap(),
            d
        );
        assert_eq!(d.end(), d.plus(1).start());
    }
}
