//! Times are stored as i64 microseconds since the Unix epoch on both backends: exact ordering,
//! one SQL text, no time-zone ambiguity.

use jiff::Timestamp;

pub fn to_micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub fn from_micros(us: i64) -> Timestamp {
    // Every value we store came from a valid Timestamp; clamp rather than panic on corrupt rows.
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}
