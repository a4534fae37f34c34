//! Usage costs. A usage line costs fractions of a cent (FOCUS exports carry up to 11 decimals,
//! e.g. `0.00107392473`), so costs are kept in pico-units (1e-12 of the currency unit) as
//! integers — never floats. Storage keeps them as two integers (whole units and the pico
//! remainder, see [`split`]) because an i64 of pico-units would cap at 9.2 million units. Money
//! that is owed (budgets, invoices) stays in the currency's minor units (`Money`).

use std::fmt;

use crate::ValueError;
use crate::money::{Currency, Money};

/// Decimal places a cost keeps.
pub const COST_DECIMALS: u32 = 12;
pub const PICOS_PER_UNIT: i128 = 1_000_000_000_000;

/// An exact cost in pico-units of its currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub picos: i128,
    pub currency: Currency,
}

impl Cost {
    /// Parses a decimal string ("0.00107392473", "-1.5", "12"). Digits past the 12th decimal
    /// must be zeros: a cost that cannot be kept exactly is refused, not rounded.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, ValueError> {
        Ok(Cost {
            picos: parse_picos(amount)?,
            currency,
        })
    }

    /// The cost in the currency's minor units, rounded half away from zero (for comparing
    /// spend with a budget or a credit limit).
    pub fn to_minor(self) -> i64 {
        picos_to_minor(self.picos, self.currency)
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", format_picos(self.picos), self.currency)
    }
}

/// Stored form: (whole units, pico remainder with the same sign). Adding two stored values
/// column by column and carrying `remainder / 1e12` keeps the exact sum (see storage).
pub fn split(picos: i128) -> (i64, i64) {
    let units = picos / PICOS_PER_UNIT;
    let rem = picos % PICOS_PER_UNIT;
    (
        units.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        rem as i64,
    )
}

pub fn join(units: i64, rem: i64) -> i128 {
    units as i128 * PICOS_PER_UNIT + rem as i128
}

/// Parses a decimal string into pico-units.
pub fn parse_picos(amount: &str) -> Result<i128, ValueError> {
    let bad = || ValueError(format!("'{amount}' is not a decimal amount like \"12.50\""));
    let s = amount.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (digits.contains('.') && frac.is_empty())
    {
        return Err(bad());
    }
    let (kept, rest) = frac.split_at(frac.len().min(COST_DECIMALS as usize));
    if rest.bytes().any(|b| b != b'0') {
        return Err(ValueError(format!(
            "'{amount}' has more than {COST_DECIMALS} significant decimals"
        )));
    }
    let too_large = || ValueError(format!("'{amount}' is too large"));
    let int: i64 = int.parse().map_err(|_| too_large())?;
    let mut f: i128 = if kept.is_empty() {
        0
    } else {
        kept.parse().map_err(|_| bad())?
    };
    for _ in kept.len()..COST_DECIMALS as usize {
        f *= 10;
    }
    let n = int as i128 * PICOS_PER_UNIT + f;
    Ok(if neg { -n } else { n })
}

/// A pico-unit amount as a decimal string with trailing zeros trimmed (at least 2 decimals).
pub fn format_picos(picos: i128) -> String {
    let sign = if picos < 0 { "-" } else { "" };
    let abs = picos.unsigned_abs();
    let int = abs / PICOS_PER_UNIT as u128;
    let frac = format!("{:012}", abs % PICOS_PER_UNIT as u128);
    let mut frac = frac.trim_end_matches('0').to_owned();
    while frac.len() < 2 {
        frac.push('0');
    }
    format!("{sign}{int}.{frac}")
}

/// Pico-units to the currency's minor units, rounded half away from zero.
pub fn picos_to_minor(picos: i128, currency: Currency) -> i64 {
    let div = 10i128.pow(COST_DECIMALS - currency.exponent() as u32);
    let q = picos / div;
    let r = picos % div;
    let q = if r.abs() * 2 >= div {
        q + r.signum()
    } else {
        q
    };
    q.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Minor units of money to pico-units (exact).
pub fn money_to_picos(m: Money) -> i128 {
    m.minor as i128 * 10i128.pow(COST_DECIMALS - m.currency.exponent() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn parses_export_precision_exactly() {
        assert_eq!(parse_picos("0.00107392473").unwrap(), 1_073_924_730);
        assert_eq!(parse_picos("12").unwrap(), 12 * PICOS_PER_UNIT);
        assert_eq!(parse_picos("-1.5").unwrap(), -1_500_000_000_000);
        assert_eq!(parse_picos("0.000000000001").unwrap(), 1);
        assert_eq!(parse_picos("0.0000000000010000").unwrap(), 1);
    }

    #[test]
    fn refuses_what_it_cannot_keep_exactly() {
        assert!(parse_picos("0.0000000000001").is_err());
        assert!(parse_picos("1e5").is_err());
        assert!(parse_picos("1.").is_err());
        assert!(parse_picos("").is_err());
        assert!(parse_picos("99999999999999999999").is_err());
    }

    #[test]
    fn split_and_join_keep_sums_exact_whatever_the_signs() {
        for (a, b) in [
            (1_500_000_000_001i128, 700_000_000_000),
            (-1_073_924_730, 5),
            (-3 * PICOS_PER_UNIT - 7, 2 * PICOS_PER_UNIT + 9),
        ] {
            let (ua, ra) = split(a);
            let (ub, rb) = split(b);
            // What the storage upsert does: add columns, carry the remainder's whole units.
            let r = ra + rb;
            let (u, r) = (
                ua + ub + r / PICOS_PER_UNIT as i64,
                r % PICOS_PER_UNIT as i64,
            );
            assert_eq!(join(u, r), a + b);
        }
    }

    #[test]
    fn formats_and_rounds_to_minor_units() {
        assert_eq!(format_picos(1_073_924_730), "0.00107392473");
        assert_eq!(format_picos(-1_500_000_000_000), "-1.50");
        let c = Cost::parse("10.005", usd()).unwrap();
        assert_eq!(c.to_minor(), 1001);
        let c = Cost::parse("-10.005", usd()).unwrap();
        assert_eq!(c.to_minor(), -1001);
        let c = Cost::parse("10.0049", usd()).unwrap();
        assert_eq!(c.to_minor(), 1000);
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Cost::parse("10.5", jpy).unwrap().to_minor(), 11);
        assert_eq!(
            money_to_picos(Money::parse("1.25", usd()).unwrap()),
            1_250_000_000_000
        );
    }
}
