//! The dashboard's words in the product's five languages (Fluent files in `crates/ui/locales/`),
//! and money and dates written per language with the same writer the customer notices use.
//! A message missing in a language falls back to English; [`missing`] lists every gap (a test
//! fails on any).

use std::borrow::Borrow;
use std::sync::OnceLock;

use fluent_bundle::{FluentArgs, FluentValue};
use riskdesk_app::kernel::fluent::Catalog;
use riskdesk_domain::Locale;
use riskdesk_domain::billing::Day;
use riskdesk_domain::billing::format;
use riskdesk_domain::money::{Currency, Money};

const SOURCES: [(Locale, &str); 5] = [
    (Locale::En, include_str!("../locales/en.ftl")),
    (Locale::ZhCn, include_str!("../locales/zh-CN.ftl")),
    (Locale::ZhTw, include_str!("../locales/zh-TW.ftl")),
    (Locale::FrFr, include_str!("../locales/fr-FR.ftl")),
    (Locale::PtBr, include_str!("../locales/pt-BR.ftl")),
];

fn catalog() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| Catalog::new(&SOURCES))
}

fn format(locale: Locale, id: &str, args: Option<&FluentArgs>) -> String {
    catalog()
        .format(locale, id, args)
        .unwrap_or_else(|| id.to_owned())
}

/// Every message English has that another language lacks ("locale: id"), messages another
/// language has that English lacks, and parse errors.
pub fn missing() -> Vec<String> {
    catalog().missing()
}

/// A translator for one language, handed to every template as `t`.
#[derive(Clone, Copy, Debug)]
pub struct T(pub Locale);

impl T {
    /// The BCP 47 tag for `<html lang>`.
    pub fn lang(&self) -> &'static str {
        self.0.as_str()
    }

    pub fn t(&self, id: &str) -> String {
        format(self.0, id, None)
    }

    /// A message with one named argument.
    pub fn a(&self, id: &str, name: &str, value: impl std::fmt::Display) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), FluentValue::from(value.to_string()));
        format(self.0, id, Some(&args))
    }

    /// A message with a count (plural forms chosen by Fluent).
    pub fn n(&self, id: &str, count: i64) -> String {
        let mut args = FluentArgs::new();
        args.set("count", FluentValue::from(count));
        format(self.0, id, Some(&args))
    }

    /// Money in minor units of `currency`, as this language writes it ("USD 1,234.50",
    /// "1 234,50 USD", "USD 1.234,50").
    pub fn money(&self, minor: impl Borrow<i64>, currency: &str) -> String {
        let minor = *minor.borrow();
        match Currency::parse(currency) {
            Ok(c) => format::money(&Money { minor, currency: c }, self.0),
            Err(_) => format!("{minor} {currency}"),
        }
    }

    /// A day as this language writes it ("1 December 2026", "2026年12月1日").
    pub fn day(&self, d: Day) -> String {
        format::date(d, self.0)
    }

    /// The UTC day of an instant (microseconds).
    pub fn date(&self, micros: impl Borrow<i64>) -> String {
        let micros = *micros.borrow();
        self.day(day_of(micros))
    }

    /// Day and UTC time of an instant.
    pub fn datetime(&self, micros: impl Borrow<i64>) -> String {
        let micros = *micros.borrow();
        let ts = jiff::Timestamp::from_microsecond(micros).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        format!("{} {} UTC", self.date(micros), ts.strftime("%H:%M"))
    }

    /// A deadline relative to `now` ("in 43 min", "2 h ago").
    pub fn relative(&self, at: i64, now: i64) -> String {
        let secs = (at - now) / 1_000_000;
        let (n, unit) = match secs.unsigned_abs() {
            s if s < 3600 => ((s / 60) as i64, "min"),
            s if s < 48 * 3600 => ((s / 3600) as i64, "h"),
            s => ((s / 86400) as i64, "d"),
        };
        let mut args = FluentArgs::new();
        args.set("n", FluentValue::from(n));
        let id = format!("time-{}-{unit}", if secs >= 0 { "in" } else { "ago" });
        format(self.0, &id, Some(&args))
    }

    /// An enumerated value's label (`case-status-open`, `severity-high`, …), falling back to
    /// the value itself.
    pub fn label(&self, prefix: &str, value: &str) -> String {
        let id = format!("{prefix}-{}", value.replace('_', "-"));
        let s = format(self.0, &id, None);
        if s == id { value.to_owned() } else { s }
    }
}

pub fn day_of(micros: i64) -> Day {
    Day(micros.div_euclid(86_400_000_000) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_message() {
        let gaps = missing();
        assert!(gaps.is_empty(), "missing UI messages: {gaps:#?}");
    }

    #[test]
    fn dates_and_money_follow_the_language() {
        // 2026-12-01T00:00:00Z
        let micros = 1_796_083_200_000_000;
        assert_eq!(T(Locale::ZhCn).date(micros), "2026年12月1日");
        assert_eq!(T(Locale::PtBr).money(123_450, "BRL"), "BRL\u{a0}1.234,50");
        assert_eq!(T(Locale::En).money(123_450, "USD"), "USD\u{a0}1,234.50");
    }

    #[test]
    fn deadlines_read_relative() {
        let t = T(Locale::En);
        assert_eq!(t.relative(43 * 60_000_000, 0), "in 43 min");
        assert_eq!(t.relative(0, 3 * 3_600_000_000), "3 h ago");
    }
}

/// A stored day number as a [`Day`] (for templates).
pub fn day(d: impl Borrow<i32>) -> Day {
    Day(*d.borrow())
}
