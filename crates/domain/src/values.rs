//! Typed values that validate on construction ("parse, don't validate"). Once a value of one
//! of these types exists it is known to be well formed, so nothing downstream re-checks it.

use rustc_hash::FxHashMap as HashMap;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// Why a value was refused. The message names the rule that failed, for API error details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ValueError> {
    Err(ValueError(msg.into()))
}

/// One row of the ISO 3166 table compiled in from `data/country-codes/iso3166.tsv`.
#[derive(Debug, Clone)]
pub struct CountryInfo {
    pub alpha2: &'static str,
    pub alpha3: &'static str,
    pub name: &'static str,
    /// International calling codes without separators, e.g. `["1268"]` for Antigua.
    pub dial_codes: Vec<String>,
    pub currencies: Vec<&'static str>,
}

static COUNTRY_TABLE: &str = include_str!("../../../data/country-codes/iso3166.tsv");

static COUNTRIES: LazyLock<HashMap<&'static str, CountryInfo>> = LazyLock::new(|| {
    COUNTRY_TABLE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&'static str> = l.split('\t').collect();
            let info = CountryInfo {
                alpha2: f[0],
                alpha3: f.get(1).copied().unwrap_or(""),
                name: f.get(2).copied().unwrap_or(""),
                dial_codes: f
                    .get(3)
                    .map(|d| {
                        d.split(',')
                            .map(|c| c.chars().filter(char::is_ascii_digit).collect::<String>())
                            .filter(|c| !c.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
                currencies: f
                    .get(4)
                    .map(|c| c.split(',').filter(|c| c.len() == 3).collect())
                    .unwrap_or_default(),
            };
            (info.alpha2, info)
        })
        .collect()
});

/// ISO 4217 code → minor-unit exponent, from the same table.
static CURRENCY_EXPONENTS: LazyLock<HashMap<&'static str, u8>> = LazyLock::new(|| {
    let mut m = HashMap::default();
    for l in COUNTRY_TABLE.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&'static str> = l.split('\t').collect();
        let (Some(codes), Some(units)) = (f.get(4), f.get(5)) else {
            continue;
        };
        for (c, u) in codes.split(',').zip(units.split(',')) {
            if let (3, Ok(u)) = (c.len(), u.trim().parse::<u8>()) {
                m.insert(c, u);
            }
        }
    }
    m
});

/// Every assigned ISO 3166-1 alpha-2 code riskdesk accepts, sorted.
pub fn country_codes() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = COUNTRIES.keys().copied().collect();
    v.sort_unstable();
    v
}

/// Every ISO 4217 code riskdesk accepts (those in use in the shipped table), sorted.
pub fn currency_codes() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = CURRENCY_EXPONENTS.keys().copied().collect();
    v.sort_unstable();
    v
}

pub(crate) fn currency_exponent(code: &str) -> Option<u8> {
    CURRENCY_EXPONENTS.get(code).copied()
}

/// Every calling code any country uses, for E.164 prefix checks.
static DIAL_CODES: LazyLock<rustc_hash::FxHashSet<String>> = LazyLock::new(|| {
    COUNTRIES
        .values()
        .flat_map(|c| c.dial_codes.iter().cloned())
        .collect()
});

/// ISO 3166-1 alpha-2 country code, upper case, assigned in the shipped table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let up = s.trim().to_ascii_uppercase();
        if up.len() != 2 || !up.bytes().all(|b| b.is_ascii_uppercase()) {
            return err(format!(
                "'{s}' is not an ISO 3166-1 alpha-2 country code (two letters, e.g. \"FR\")"
            ));
        }
        if !COUNTRIES.contains_key(up.as_str()) {
            return err(format!(
                "'{s}' is not an assigned ISO 3166-1 alpha-2 country code"
            ));
        }
        let b = up.as_bytes();
        Ok(Self([b[0], b[1]]))
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    pub fn info(&self) -> Option<&'static CountryInfo> {
        COUNTRIES.get(self.as_str())
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl TryFrom<String> for CountryCode {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        Self::parse(&s)
    }
}
impl From<CountryCode> for String {
    fn from(c: CountryCode) -> String {
        c.as_str().to_owned()
    }
}

macro_rules! string_value {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(s: String) -> Result<Self, ValueError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

/// A DNS domain name in ASCII (IDNs in their `xn--` form), lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);
string_value!(DomainName);

impl DomainName {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
        if d.is_empty() {
            return err("domain is empty");
        }
        if !d.is_ascii() {
            return err(format!(
                "'{s}' has non-ASCII characters: give internationalised domains in their punycode (xn--) form"
            ));
        }
        if d.len() > 253 {
            return err("domain is longer than 253 characters");
        }
        let labels: Vec<&str> = d.split('.').collect();
        if labels.len() < 2 {
            return err(format!(
                "'{s}' is not a fully qualified domain name (needs at least one dot)"
            ));
        }
        for l in &labels {
            if l.is_empty() || l.len() > 63 {
                return err(format!(
                    "'{s}' has an empty label or one longer than 63 characters"
                ));
            }
            if !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                || l.starts_with('-')
                || l.ends_with('-')
            {
                return err(format!(
                    "'{s}' has a label with characters other than letters, digits and inner hyphens"
                ));
            }
        }
        let tld = labels[labels.len() - 1];
        if !(tld.bytes().all(|b| b.is_ascii_alphabetic()) || tld.starts_with("xn--")) {
            return err(format!(
                "'{s}' has a top-level domain that is not alphabetic"
            ));
        }
        Ok(Self(d))
    }
}

/// An email address: a pragmatic RFC 5321 subset (dot-atom local part, DNS domain).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);
string_value!(Email);

impl Email {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        if s.len() > 254 {
            return err("email is longer than 254 characters");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return err(format!("'{s}' is not an email address (no '@')"));
        };
        const LOCAL_SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~.";
        if local.is_empty() || local.len() > 64 {
            return err("the part of the email before '@' must be 1 to 64 characters");
        }
        if !local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(&b))
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return err(format!("'{s}' has characters not allowed before the '@'"));
        }
        let domain =
            DomainName::parse(domain).map_err(|e| ValueError(format!("email domain: {}", e.0)))?;
        Ok(Self(format!("{local}@{domain}")))
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

/// A phone number in E.164 form (`+` then 8 to 15 digits) whose calling code is assigned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);
string_value!(Phone);

impl Phone {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        let Some(digits) = s.strip_prefix('+') else {
            return err(format!(
                "'{s}' is not in E.164 form: it must start with '+' and the country calling code"
            ));
        };
        if !digits.bytes().all(|b| b.is_ascii_digit())
            || !(8..=15).contains(&digits.len())
            || digits.starts_with('0')
        {
            return err(format!(
                "'{s}' is not in E.164 form: '+' then 8 to 15 digits, no spaces or punctuation"
            ));
        }
        if !(1..=4).any(|n| DIAL_CODES.contains(&digits[..n])) {
            return err(format!(
                "'{s}' does not start with an assigned country calling code"
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// The languages riskdesk writes customer notices in (those of the seed documents).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub enum Locale {
    #[schema(rename = "en")]
    En,
    #[schema(rename = "zh-CN")]
    ZhCn,
    #[schema(rename = "zh-TW")]
    ZhTw,
    #[schema(rename = "fr-FR")]
    FrFr,
    #[schema(rename = "pt-BR")]
    PtBr,
}

impl Locale {
    pub const ALL: [Locale; 5] = [
        Locale::En,
        Locale::ZhCn,
        Locale::ZhTw,
        Locale::FrFr,
        Locale::PtBr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhCn => "zh-CN",
            Locale::ZhTw => "zh-TW",
            Locale::FrFr => "fr-FR",
            Locale::PtBr => "pt-BR",
        }
    }

    /// BCP 47 tags compare case-insensitively; `_` is accepted for `-`.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let norm = s.trim().replace('_', "-");
        Locale::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(&norm))
            .ok_or_else(|| {
                ValueError(format!(
                    "locale '{s}' is not supported; supported: en, zh-CN, zh-TW, fr-FR, pt-BR"
                ))
            })
    }
}

impl TryFrom<String> for Locale {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        Self::parse(&s)
    }
}
impl From<Locale> for String {
    fn from(l: Locale) -> String {
        l.as_str().to_owned()
    }
}

/// A tenant's short name: lower-case letters, digits and hyphens, 1 to 63 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantSlug(String);
string_value!(TenantSlug);

impl TenantSlug {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if !ok {
            return err(format!(
                "tenant slug '{s}' must be 1 to 63 lower-case letters, digits or inner hyphens"
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A bounded, trimmed, non-empty free-text value (names, offers, notes).
pub fn bounded_text(field: &str, s: &str, max: usize) -> Result<String, ValueError> {
    let t = s.trim();
    if t.is_empty() {
        return err(format!("{field} must not be empty"));
    }
    if t.chars().count() > max {
        return err(format!("{field} must be at most {max} characters"));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return err(format!("{field} must not contain control characters"));
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes() {
        assert_eq!(CountryCode::parse("fr").unwrap().as_str(), "FR");
        assert_eq!(
            CountryCode::parse("NA").unwrap().info().unwrap().name,
            "Namibia"
        );
        assert!(CountryCode::parse("XX").is_err());
        assert!(CountryCode::parse("FRA").is_err());
        assert!(CountryCode::parse("1A").is_err());
        assert_eq!(
            CountryCode::parse("CN").unwrap().info().unwrap().currencies,
            vec!["CNY"]
        );
    }

    #[test]
    fn domains() {
        assert_eq!(
            DomainName::parse("Contoso.COM.").unwrap().as_str(),
            "contoso.com"
        );
        assert!(DomainName::parse("xn--fiqs8s.xn--fiqs8s").is_ok());
        for bad in [
            "",
            "localhost",
            "a..b",
            "-a.com",
            "a-.com",
            "exa mple.com",
            "例子.中国",
            "a.123",
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("Ops.Team+x@Contoso.com").unwrap().as_str(),
            "Ops.Team+x@contoso.com"
        );
        assert_eq!(Email::parse("a@b.co").unwrap().domain(), "b.co");
        for bad in [
            "",
            "nobody",
            "@x.com",
            "a@",
            "a..b@x.com",
            ".a@x.com",
            "a b@x.com",
            "a@localhost",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn phones() {
        assert!(Phone::parse("+33142685300").is_ok());
        assert!(Phone::parse("+8613800138000").is_ok());
        assert!(Phone::parse("+12025550123").is_ok());
        for bad in [
            "0142685300",
            "+0142685300",
            "+33 1 42 68 53 00",
            "+331",
            "+1234567890123456",
            "+",
            "+99912345678",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn locales() {
        assert_eq!(Locale::parse("zh-cn").unwrap(), Locale::ZhCn);
        assert_eq!(Locale::parse("pt_BR").unwrap(), Locale::PtBr);
        assert!(Locale::parse("de-DE").unwrap_err().0.contains("supported"));
        for l in Locale::ALL {
            assert_eq!(Locale::parse(l.as_str()).unwrap(), l);
        }
    }

    #[test]
    fn slugs_and_text() {
        assert!(TenantSlug::parse("reseller-42").is_ok());
        for bad in ["", "Caps", "-x", "x-", "a_b"] {
            assert!(TenantSlug::parse(bad).is_err());
        }
        assert_eq!(bounded_text("name", "  Contoso  ", 10).unwrap(), "Contoso");
        assert!(bounded_text("name", "   ", 10).is_err());
        assert!(bounded_text("name", "abcdefghijk", 10).is_err());
        assert!(bounded_text("name", "a\u{0}b", 10).is_err());
    }
}

/// Fields whose values are free text, written by people: there (and in anything under an
/// activity event's `properties`, which carries the provider's own descriptions) tab and line
/// feed are kept. Everywhere else — names, ids, codes, filters — no control character is.
pub const FREE_TEXT_FIELDS: &[&str] = &[
    "address",
    "body",
    "condition",
    "description",
    "hold_reason",
    "note",
    "properties",
    "provider_action",
    "reason",
    "requested_action",
    "response",
    "text",
];

/// Whether a field of this name holds free text (see [`FREE_TEXT_FIELDS`]).
pub fn is_free_text(field: &str) -> bool {
    FREE_TEXT_FIELDS.contains(&field)
}

/// The first control character riskdesk does not accept in text: any of Unicode's control
/// characters (U+0000 to U+001F, U+007F to U+009F), except tab and line feed in free text.
/// (PostgreSQL cannot store NUL; none of them means anything in a name, an id or a filter.)
pub fn forbidden_control(s: &str, free_text: bool) -> Option<char> {
    s.chars()
        .find(|&c| c.is_control() && !(free_text && matches!(c, '\t' | '\n')))
}

/// The first string (value or key) of a JSON value holding a [`forbidden_control`]
/// character: its path from `path` (`path.key`, `path[2]`; a bad key is reported at the path
/// of its object, and a key at the root has no leading dot) and the character. A value is
/// free text when its own field, or one it is nested in, is named in [`FREE_TEXT_FIELDS`]
/// (`free_text` says so for `v` itself).
pub fn control_character_in_json(
    v: &serde_json::Value,
    path: &str,
    free_text: bool,
) -> Option<(String, char)> {
    match v {
        serde_json::Value::String(s) => {
            forbidden_control(s, free_text).map(|c| (path.to_owned(), c))
        }
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| control_character_in_json(x, &format!("{path}[{i}]"), free_text)),
        serde_json::Value::Object(m) => m.iter().find_map(|(k, x)| {
            if let Some(c) = forbidden_control(k, false) {
                return Some((path.to_owned(), c));
            }
            let free = free_text || is_free_text(k);
            if path.is_empty() {
                control_character_in_json(x, k, free)
            } else {
                control_character_in_json(x, &format!("{path}.{k}"), free)
            }
        }),
        _ => None,
    }
}
