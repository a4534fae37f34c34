//! Exact money: integer minor units and an ISO 4217 currency. Never floats.

use std::fmt;

use crate::values::ValueError;

/// An ISO 4217 alphabetic code known to the shipped country table, with its minor-unit exponent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let up = s.trim().to_ascii_uppercase();
        if up.len() != 3 || !up.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ValueError(format!(
                "'{s}' is not an ISO 4217 currency code (three letters, e.g. \"EUR\")"
            )));
        }
        let exponent = crate::values::currency_exponent(&up)
            .ok_or_else(|| ValueError(format!("'{s}' is not an ISO 4217 currency in use")))?;
        let b = up.as_bytes();
        Ok(Currency {
            code: [b[0], b[1], b[2]],
            exponent,
        })
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in minor units of a currency (cents for USD, yen for JPY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    /// Parses a decimal string ("1250.50") with at most the currency's number of decimals.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, ValueError> {
        let s = amount.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let exp = currency.exponent as usize;
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (digits.contains('.') && frac.is_empty())
        {
            return Err(ValueError(format!(
                "'{amount}' is not a decimal amount like \"1250.50\""
            )));
        }
        if frac.len() > exp {
            return Err(ValueError(format!(
                "'{amount}' has more than {exp} decimals, the minor unit of {currency}"
            )));
        }
        let mut minor: i64 = int
            .parse()
            .map_err(|_| ValueError(format!("'{amount}' is too large")))?;
        for _ in 0..exp {
            minor = minor
                .checked_mul(10)
                .ok_or_else(|| ValueError(format!("'{amount}' is too large")))?;
        }
        let mut f: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse()
                .map_err(|_| ValueError(format!("'{amount}' is not a decimal amount")))?
        };
        for _ in frac.len()..exp {
            f *= 10;
        }
        minor = minor
            .checked_add(f)
            .ok_or_else(|| ValueError(format!("'{amount}' is too large")))?;
        Ok(Money {
            minor: if neg { -minor } else { minor },
            currency,
        })
    }

    /// The decimal string with exactly the currency's decimals ("1250.50", "1000" for JPY).
    pub fn to_decimal_string(&self) -> String {
        let exp = self.currency.exponent as u32;
        let abs = self.minor.unsigned_abs();
        let sign = if self.minor < 0 { "-" } else { "" };
        if exp == 0 {
            return format!("{sign}{abs}");
        }
        let div = 10u64.pow(exp);
        format!(
            "{sign}{}.{:0width$}",
            abs / div,
            abs % div,
            width = exp as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_and_exponents() {
        assert_eq!(Currency::parse("usd").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("BHD").unwrap().exponent(), 3);
        assert!(Currency::parse("ZZZ").is_err());
        assert!(Currency::parse("US").is_err());
    }

    #[test]
    fn amounts_round_trip_exactly() {
        let usd = Currency::parse("USD").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::parse("1250.5", usd).unwrap().minor, 125_050);
        assert_eq!(
            Money::parse("1250.50", usd).unwrap().to_decimal_string(),
            "1250.50"
        );
        assert_eq!(Money::parse("0.01", usd).unwrap().minor, 1);
        assert_eq!(
            Money::parse("-3.2", usd).unwrap().to_decimal_string(),
            "-3.20"
        );
        assert_eq!(
            Money::parse("1000", jpy).unwrap().to_decimal_string(),
            "1000"
        );
        for bad in [
            "1.234",
            "1,00",
            "",
            ".5",
            "5.",
            "1e3",
            "abc",
            "99999999999999999999",
        ] {
            assert!(Money::parse(bad, usd).is_err(), "{bad}");
        }
        assert!(Money::parse("1.5", jpy).is_err());
    }
}
