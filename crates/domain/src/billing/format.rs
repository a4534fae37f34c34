//! Money and dates written the way each notice language writes them.

use super::Day;
use crate::money::Money;
use crate::values::Locale;

/// "USD 1,234.56" (en, zh), "1 234,56 USD" (fr-FR, with narrow no-break spaces), "USD 1.234,56"
/// (pt-BR). The ISO code, not a symbol, so "$" is never ambiguous between USD, CAD or AUD.
pub fn money(m: &Money, locale: Locale) -> String {
    let plain = m.to_decimal_string();
    let (neg, plain) = match plain.strip_prefix('-') {
        Some(p) => (true, p.to_owned()),
        None => (false, plain),
    };
    let (int, frac) = plain.split_once('.').unwrap_or((&plain, ""));
    let (group, decimal) = match locale {
        Locale::En | Locale::ZhCn | Locale::ZhTw => (",", "."),
        Locale::FrFr => ("\u{202f}", ","),
        Locale::PtBr => (".", ","),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push_str(group);
        }
        grouped.push(c);
    }
    let mut number = if neg { format!("-{grouped}") } else { grouped };
    if !frac.is_empty() {
        number.push_str(decimal);
        number.push_str(frac);
    }
    let code = m.currency.code();
    match locale {
        Locale::FrFr => format!("{number}\u{a0}{code}"),
        _ => format!("{code}\u{a0}{number}"),
    }
}

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const FR_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const PT_MONTHS: [&str; 12] = [
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
];

/// "November 30, 2026", "30 novembre 2026", "30 de novembro de 2026", "2026年11月30日".
pub fn date(d: Day, locale: Locale) -> String {
    let c = d.date();
    let (y, m, day) = (c.year(), c.month() as usize, c.day());
    match locale {
        Locale::En => format!("{} {day}, {y}", EN_MONTHS[m - 1]),
        Locale::FrFr => format!(
            "{}\u{a0}{} {y}",
            if day == 1 {
                "1er".to_owned()
            } else {
                day.to_string()
            },
            FR_MONTHS[m - 1]
        ),
        Locale::PtBr => format!("{day} de {} de {y}", PT_MONTHS[m - 1]),
        Locale::ZhCn | Locale::ZhTw => format!("{y}年{m}月{day}日"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    #[test]
    fn money_per_locale() {
        let m = Money::parse("1234567.5", Currency::parse("EUR").unwrap()).unwrap();
        assert_eq!(money(&m, Locale::En), "EUR\u{a0}1,234,567.50");
        assert_eq!(
            money(&m, Locale::FrFr),
            "1\u{202f}234\u{202f}567,50\u{a0}EUR"
        );
        assert_eq!(money(&m, Locale::PtBr), "EUR\u{a0}1.234.567,50");
        assert_eq!(money(&m, Locale::ZhTw), "EUR\u{a0}1,234,567.50");
        let y = Money::parse("-500", Currency::parse("JPY").unwrap()).unwrap();
        assert_eq!(money(&y, Locale::En), "JPY\u{a0}-500");
    }

    #[test]
    fn dates_per_locale() {
        let d = Day::parse("2026-12-01").unwrap();
        assert_eq!(date(d, Locale::En), "December 1, 2026");
        assert_eq!(date(d, Locale::FrFr), "1er\u{a0}décembre 2026");
        assert_eq!(date(d, Locale::PtBr), "1 de dezembro de 2026");
        assert_eq!(date(d, Locale::ZhCn), "2026年12月1日");
    }
}
