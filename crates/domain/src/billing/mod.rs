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
    /// The first day riskdesk accepts: 0001-01-01.
    pub const FIRST: Day = Day(-719_162);
    /// The last day riskdesk accepts: 9999-12-29, the last whose end (the next midnight) is an
    /// instant the product can represent (jiff's last instant is 9999-12-30T22:00Z).
    pub const LAST: Day = Day(2_932_894);

    /// Parses `YYYY-MM-DD` between [`Day::FIRST`] and [`Day::LAST`].
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
        Day::from_date(d).in_range(s)
    }

    /// `Ok(self)` if riskdesk can represent this day and its end; otherwise an error naming the
    /// accepted range (never a day that silently wraps).
    fn in_range(self, s: &str) -> Result<Day, ValueError> {
        if self < Day::FIRST || self > Day::LAST {
            return Err(ValueError(format!(
                "'{}' is outside the dates riskdesk accepts ({} to {})",
                s.trim(),
                Day::FIRST,
                Day::LAST
            )));
        }
        Ok(self)
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
        Day::of(t).in_range(s)
    }

    /// The day of a calendar date, computed on the calendar itself (every `Date` has one; days
    /// near the end of time have no instant to go through).
    pub fn from_date(d: Date) -> Day {
        // Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
        let (m, day) = (d.month() as i64, d.day() as i64);
        let y = d.year() as i64 - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Day((era * 146_097 + doe - 719_468) as i32)
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

    /// Midnight UTC at the start of this day (clamped to the representable instants: a day
    /// outside them never becomes 1970-01-01).
    pub fn start(self) -> Timestamp {
        Timestamp::from_second(self.0 as i64 * SECONDS_PER_DAY).unwrap_or(if self.0 > 0 {
            Timestamp::MAX
        } else {
            Timestamp::MIN
        })
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
    fn days_riskdesk_cannot_represent_are_refused_not_wrapped() {
        assert_eq!(Day::parse("0001-01-01").unwrap(), Day::FIRST);
        assert_eq!(Day::parse("9999-12-29").unwrap(), Day::LAST);
        assert_eq!(Day::LAST.to_string(), "9999-12-29");
        assert_eq!(Day::LAST.end().to_string(), "9999-12-30T00:00:00Z");
        let e = Day::parse("9999-12-31").unwrap_err().0;
        assert_eq!(
            e,
            "'9999-12-31' is outside the dates riskdesk accepts (0001-01-01 to 9999-12-29)"
        );
        assert!(Day::parse("9999-12-30").is_err());
        // The calendar computation agrees with the clock's on ordinary and edge dates.
        for d in [
            "1970-01-01",
            "2000-02-29",
            "2026-11-30",
            "1969-12-31",
            "0001-01-01",
            "9999-12-29",
        ] {
            let date: Date = d.parse().unwrap();
            let via_clock = date
                .to_zoned(TimeZone::UTC)
                .unwrap()
                .timestamp()
                .as_second();
            assert_eq!(
                Day::from_date(date).0 as i64,
                via_clock.div_euclid(SECONDS_PER_DAY),
                "{d}"
            );
        }
        assert!(Day::parse_date_or_instant("9999-12-31T12:00:00Z").is_err());
        assert!(Day::parse_date_or_instant("2026-11-30T12:00:00Z").is_ok());
        // Arithmetic past the end clamps to the last instant, never to the epoch.
        assert_eq!(Day::LAST.plus(5).start(), Timestamp::MAX);
        assert_eq!(Day(i32::MIN).start(), Timestamp::MIN);
    }

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
