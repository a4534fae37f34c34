//! Monthly spending budgets: where a customer's month stands and which marks (percent or
//! absolute thresholds, the month-end forecast) it has reached. Pure: spend and time come in.
//!
//! Crossing semantics: each mark notifies once per month when it is reached and once when it is
//! no longer reached (e.g. after a credit); reached again after that, it notifies again. The
//! caller keeps each mark's last state per month and passes it to [`changes`].

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan, tz::TimeZone};

use super::cost::money_to_picos;
use crate::lifecycle::LifecycleAction;
use crate::money::Money;

pub const DEFAULT_THRESHOLDS: [u32; 4] = [50, 75, 90, 100];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnforcementMode {
    /// The action is taken when the mark is reached.
    Auto,
    /// An alert proposes the action; staff approve it.
    RequireApproval,
}

impl EnforcementMode {
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementMode::Auto => "auto",
            EnforcementMode::RequireApproval => "require_approval",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "require_approval" => Some(Self::RequireApproval),
            _ => None,
        }
    }
}

/// Optional enforcement when spend reaches a percentage of the budget (e.g. suspend at 150 %).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enforcement {
    pub at_percent: u32,
    pub action: LifecycleAction,
    pub mode: EnforcementMode,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    pub monthly: Money,
    /// Percent of `monthly`, ascending, each 1..=1000.
    pub thresholds_pct: Vec<u32>,
    /// Absolute amounts in the budget's currency, ascending.
    pub absolute: Vec<Money>,
    pub enforcement: Option<Enforcement>,
}

impl Budget {
    /// Checks the parts together; the error names the field.
    pub fn new(
        monthly: Money,
        mut thresholds_pct: Vec<u32>,
        mut absolute: Vec<Money>,
        enforcement: Option<Enforcement>,
    ) -> Result<Self, (&'static str, String)> {
        if monthly.minor <= 0 {
            return Err(("monthly_amount", "must be greater than zero".into()));
        }
        if thresholds_pct.len() > 20 || thresholds_pct.iter().any(|t| *t == 0 || *t > 1000) {
            return Err((
                "thresholds",
                "at most 20 percentages, each between 1 and 1000".into(),
            ));
        }
        thresholds_pct.sort_unstable();
        thresholds_pct.dedup();
        if absolute.len() > 20 || absolute.iter().any(|a| a.minor <= 0) {
            return Err((
                "absolute_thresholds",
                "at most 20 amounts, each greater than zero".into(),
            ));
        }
        if absolute.iter().any(|a| a.currency != monthly.currency) {
            return Err((
                "absolute_thresholds",
                format!(
                    "amounts must be in the budget's currency {}",
                    monthly.currency
                ),
            ));
        }
        absolute.sort_by_key(|a| a.minor);
        absolute.dedup();
        if let Some(e) = &enforcement {
            if e.at_percent == 0 || e.at_percent > 1000 {
                return Err((
                    "enforcement.at_percent",
                    "must be between 1 and 1000".into(),
                ));
            }
            if !matches!(
                e.action,
                LifecycleAction::Suspend | LifecycleAction::DisableAccess
            ) {
                return Err((
                    "enforcement.action",
                    "must be suspend or disable_access".into(),
                ));
            }
        }
        Ok(Budget {
            monthly,
            thresholds_pct,
            absolute,
            enforcement,
        })
    }
}

/// A calendar month in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Month {
    pub first_day: Date,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Month {
    pub fn of(t: Timestamp) -> Month {
        let d = t.to_zoned(TimeZone::UTC).date();
        let first_day = d.first_of_month();
        let next = first_day.checked_add(1.month()).unwrap_or(first_day);
        let at = |d: Date| {
            d.to_zoned(TimeZone::UTC)
                .map(|z| z.timestamp())
                .unwrap_or(Timestamp::MAX)
        };
        Month {
            first_day,
            start: at(first_day),
            end: at(next),
        }
    }

    /// `YYYY-MM`.
    pub fn key(&self) -> String {
        format!("{:04}-{:02}", self.first_day.year(), self.first_day.month())
    }
}

/// The month-end forecast: the month's spend so far plus its average daily rate over the rest of
/// the month. The rate uses at least one day of elapsed time, so a single early charge is not
/// extrapolated from a few minutes. A month that has ended forecasts its actual spend.
pub fn forecast_picos(month: &Month, spend_picos: i128, as_of: Timestamp) -> i128 {
    if as_of >= month.end {
        return spend_picos;
    }
    let elapsed = (as_of.as_second() - month.start.as_second()).max(86_400) as i128;
    let remaining = (month.end.as_second() - as_of.as_second()).max(0) as i128;
    spend_picos + spend_picos * remaining / elapsed
}

/// One notification mark of a budget.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    Percent(u32),
    Absolute(i64),
    Forecast,
}

impl Mark {
    /// Stable key, stored with the mark's state (`percent:90`, `absolute:100000` in minor
    /// units, `forecast`).
    pub fn key(&self) -> String {
        match self {
            Mark::Percent(p) => format!("percent:{p}"),
            Mark::Absolute(m) => format!("absolute:{m}"),
            Mark::Forecast => "forecast".into(),
        }
    }
}

/// Where a month stands against a budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    pub spend_picos: i128,
    pub forecast_picos: i128,
    /// Spend as a percentage of the budget, in hundredths of a percent.
    pub used_basis_points: i64,
    /// Every mark reached, in order.
    pub reached: Vec<Mark>,
}

pub fn standing(budget: &Budget, month: &Month, spend_picos: i128, as_of: Timestamp) -> Standing {
    let budget_picos = money_to_picos(budget.monthly);
    let forecast = forecast_picos(month, spend_picos, as_of);
    let mut reached = Vec::new();
    for p in &budget.thresholds_pct {
        if spend_picos * 100 >= budget_picos * *p as i128 {
            reached.push(Mark::Percent(*p));
        }
    }
    for a in &budget.absolute {
        if spend_picos >= money_to_picos(*a) {
            reached.push(Mark::Absolute(a.minor));
        }
    }
    if forecast > budget_picos {
        reached.push(Mark::Forecast);
    }
    Standing {
        spend_picos,
        forecast_picos: forecast,
        used_basis_points: (spend_picos * 10_000 / budget_picos).clamp(0, i64::MAX as i128) as i64,
        reached,
    }
}

/// What to notify for one mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Reached(Mark),
    Recovered(Mark),
}

/// The notifications due, given each mark's last notified state this month (`true` = reached;
/// a mark never notified is absent). Every mark of the budget is considered, so a mark that is
/// reached again after a recovery notifies again.
pub fn changes(budget: &Budget, standing: &Standing, last: &BTreeMap<String, bool>) -> Vec<Change> {
    let mut all: Vec<Mark> = budget
        .thresholds_pct
        .iter()
        .map(|p| Mark::Percent(*p))
        .chain(budget.absolute.iter().map(|a| Mark::Absolute(a.minor)))
        .collect();
    all.push(Mark::Forecast);
    let mut out = Vec::new();
    for m in all {
        let now = standing.reached.contains(&m);
        let before = last.get(&m.key()).copied();
        match (before, now) {
            (None | Some(false), true) => out.push(Change::Reached(m)),
            (Some(true), false) => out.push(Change::Recovered(m)),
            _ => {}
        }
    }
    out
}

/// Whether the enforcement percentage is reached.
pub fn enforcement_due(budget: &Budget, standing: &Standing) -> Option<Enforcement> {
    let e = budget.enforcement?;
    (standing.used_basis_points >= e.at_percent as i64 * 100).then_some(e)
}

/// A human line for a mark ("90 % of 1000.00 USD").
pub fn describe(mark: &Mark, budget: &Budget) -> String {
    let cur = budget.monthly.currency;
    match mark {
        Mark::Percent(p) => format!(
            "{p} % of the monthly budget of {} {cur}",
            budget.monthly.to_decimal_string()
        ),
        Mark::Absolute(m) => format!(
            "{} {cur} spent",
            Money {
                minor: *m,
                currency: cur
            }
            .to_decimal_string()
        ),
        Mark::Forecast => format!(
            "forecast month-end spend above the budget of {} {cur}",
            budget.monthly.to_decimal_string()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn usd(s: &str) -> Money {
        Money::parse(s, Currency::parse("USD").unwrap()).unwrap()
    }
    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }
    fn picos(s: &str) -> i128 {
        super::super::cost::parse_picos(s).unwrap() as i128
    }

    #[test]
    fn months_are_utc_calendar_months() {
        let m = Month::of(t("2026-02-14T23:30:00-05:00"));
        assert_eq!(m.key(), "2026-02");
        assert_eq!(m.start, t("2026-02-01T00:00:00Z"));
        assert_eq!(m.end, t("2026-03-01T00:00:00Z"));
        assert_eq!(
            Month::of(t("2026-12-31T23:59:59Z")).end,
            t("2027-01-01T00:00:00Z")
        );
    }

    #[test]
    fn forecast_extrapolates_the_daily_rate_and_settles_at_month_end() {
        let m = Month::of(t("2026-11-01T00:00:00Z"));
        // 100 spent in 10 days of a 30-day month → 300.
        assert_eq!(
            forecast_picos(&m, picos("100"), t("2026-11-11T00:00:00Z")),
            picos("300")
        );
        // One hour in: the rate uses one day, not one hour.
        assert_eq!(
            forecast_picos(&m, picos("10"), t("2026-11-01T01:00:00Z")),
            picos("10") + picos("10") * (30 * 24 - 1) / 24
        );
        assert_eq!(
            forecast_picos(&m, picos("100"), t("2026-12-05T00:00:00Z")),
            picos("100")
        );
    }

    #[test]
    fn each_mark_notifies_once_and_once_more_when_it_recovers() {
        let b = Budget::new(
            usd("1000"),
            DEFAULT_THRESHOLDS.to_vec(),
            vec![usd("800")],
            None,
        )
        .unwrap();
        let m = Month::of(t("2026-11-01T00:00:00Z"));
        let at = t("2026-11-30T00:00:00Z");
        let mut last = BTreeMap::new();
        let mut apply = |spend: &str| {
            let s = standing(&b, &m, picos(spend), at);
            let c = changes(&b, &s, &last);
            for ch in &c {
                match ch {
                    Change::Reached(m) => last.insert(m.key(), true),
                    Change::Recovered(m) => last.insert(m.key(), false),
                };
            }
            c
        };
        assert_eq!(apply("499.99"), vec![]);
        assert_eq!(apply("500"), vec![Change::Reached(Mark::Percent(50))]);
        assert_eq!(apply("520"), vec![]);
        let c = apply("1000");
        assert_eq!(
            c,
            vec![
                Change::Reached(Mark::Percent(75)),
                Change::Reached(Mark::Percent(90)),
                Change::Reached(Mark::Percent(100)),
                Change::Reached(Mark::Absolute(80_000)),
                Change::Reached(Mark::Forecast),
            ]
        );
        assert_eq!(apply("1000"), vec![]);
        // A credit brings spend back under 90 %.
        let c = apply("850");
        assert_eq!(
            c,
            vec![
                Change::Recovered(Mark::Percent(90)),
                Change::Recovered(Mark::Percent(100)),
                Change::Recovered(Mark::Forecast),
            ]
        );
        // 950 with a day left forecasts 982.76: under the budget, so no forecast notice.
        assert_eq!(apply("950"), vec![Change::Reached(Mark::Percent(90))]);
    }

    #[test]
    fn budgets_validate_their_parts() {
        assert!(Budget::new(usd("0"), vec![50], vec![], None).is_err());
        assert!(Budget::new(usd("10"), vec![0], vec![], None).is_err());
        let eur = Money::parse("5", Currency::parse("EUR").unwrap()).unwrap();
        assert_eq!(
            Budget::new(usd("10"), vec![], vec![eur], None)
                .unwrap_err()
                .0,
            "absolute_thresholds"
        );
        let e = Enforcement {
            at_percent: 150,
            action: LifecycleAction::Cancel,
            mode: EnforcementMode::Auto,
        };
        assert_eq!(
            Budget::new(usd("10"), vec![], vec![], Some(e))
                .unwrap_err()
                .0,
            "enforcement.action"
        );
        let b = Budget::new(usd("10"), vec![90, 50, 90], vec![], None).unwrap();
        assert_eq!(b.thresholds_pct, vec![50, 90]);
    }

    #[test]
    fn enforcement_is_due_at_its_percentage() {
        let e = Enforcement {
            at_percent: 150,
            action: LifecycleAction::Suspend,
            mode: EnforcementMode::Auto,
        };
        let b = Budget::new(usd("100"), vec![], vec![], Some(e)).unwrap();
        let m = Month::of(t("2026-11-01T00:00:00Z"));
        let at = t("2026-11-20T00:00:00Z");
        assert_eq!(
            enforcement_due(&b, &standing(&b, &m, picos("149.99"), at)),
            None
        );
        assert_eq!(
            enforcement_due(&b, &standing(&b, &m, picos("150"), at)),
            Some(e)
        );
    }
}
