//! Time as the use cases speak it: RFC 3339 UTC text, and `as_of` instants.

use jiff::Timestamp;
use riskdesk_domain::billing::Day;
use riskdesk_storage::time::from_micros;

use super::error::AppError;

/// RFC 3339 UTC, e.g. `2026-11-21T09:30:00.123456Z`.
pub fn rfc3339(us: i64) -> String {
    from_micros(us).to_string()
}

/// `as_of` as an instant: RFC 3339, or a date meaning the end of that UTC day. Default now.
pub fn parse_as_of(raw: &Option<String>, now: Timestamp) -> Result<Timestamp, AppError> {
    match raw.as_deref() {
        None => Ok(now),
        Some(s) if s.trim().len() == 10 => Day::parse(s)
            .map(|d| d.end())
            .map_err(|e| AppError::field("as_of", e.0)),
        Some(s) => {
            let t: Timestamp = s.parse().map_err(|_| {
                AppError::field(
                    "as_of",
                    format!("'{s}' is neither a date (YYYY-MM-DD) nor an RFC 3339 time"),
                )
            })?;
            // The day it reports on must be one riskdesk can represent (never wrapped).
            Day::parse_date_or_instant(s).map_err(|e| AppError::field("as_of", e.0))?;
            Ok(t)
        }
    }
}

/// The UTC day an `as_of` instant reports on (the end of a day belongs to that day).
pub fn report_day(as_of: Timestamp) -> Day {
    Day::of(Timestamp::from_microsecond(as_of.as_microsecond() - 1).unwrap_or(as_of))
}
