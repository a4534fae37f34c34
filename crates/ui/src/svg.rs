//! Charts drawn on the server as SVG: the exposure gauge, the budget bar, the aging bars. No
//! script, deterministic, printable; colours come from classes in the style sheet (a `style`
//! attribute would break the CSP), and each chart has a `<title>` and `<desc>` for screen
//! readers.

use std::fmt::Write as _;

use riskdesk_app::billing::reports::{AgingRowOut, ExposureOut};
use riskdesk_storage::budgets::BudgetRow;

use crate::i18n::T;

/// Escapes text for SVG/XML content and attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or(0.0)
}

const W: f64 = 360.0;

/// A bullet bar: exposure against the credit limit, with the limit marked and the part over
/// it in the alarm colour.
pub fn exposure_gauge(t: &T, e: &ExposureOut) -> String {
    let exposure = num(&e.exposure).max(0.0);
    let limit = e.credit_limit.as_deref().map(num);
    let scale = match limit {
        Some(l) if l > 0.0 => (l.max(exposure) * 1.1).max(1.0),
        _ => (exposure * 1.25).max(1.0),
    };
    let x = |v: f64| (v / scale * W).clamp(0.0, W);
    let desc = match (&e.credit_limit, e.limit_used_percent) {
        (Some(l), Some(p)) => t.a(
            "gauge-desc",
            "text",
            format!(
                "{} {} / {} {} ({p:.2} %)",
                e.exposure, e.currency, l, e.currency
            ),
        ),
        _ => t.a(
            "gauge-desc",
            "text",
            format!("{} {}", e.exposure, e.currency),
        ),
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="gauge-svg" viewBox="0 0 {W} 44" width="100%" role="img" aria-labelledby="g-t g-d" xmlns="http://www.w3.org/2000/svg"><title id="g-t">{}</title><desc id="g-d">{}</desc><rect class="track" x="0" y="8" width="{W}" height="18" rx="3"/>"#,
        esc(&t.t("exposure")),
        esc(&desc)
    );
    match limit {
        Some(l) if exposure > l => {
            let _ = write!(
                s,
                r#"<rect class="fill" x="0" y="8" width="{:.1}" height="18"/><rect class="over" x="{:.1}" y="8" width="{:.1}" height="18"/>"#,
                x(l),
                x(l),
                x(exposure) - x(l)
            );
        }
        _ => {
            let _ = write!(
                s,
                r#"<rect class="fill" x="0" y="8" width="{:.1}" height="18"/>"#,
                x(exposure)
            );
        }
    }
    if let Some(l) = limit {
        let _ = write!(
            s,
            r#"<line class="limit" x1="{0:.1}" x2="{0:.1}" y1="2" y2="32"/><text class="label" x="{0:.1}" y="42" text-anchor="middle">{1}</text>"#,
            x(l),
            esc(&t.t("credit-limit"))
        );
    }
    s.push_str("</svg>");
    s
}

/// Month-to-date spend against the budget, with a tick per threshold and the month's forecast
/// (spend so far, extrapolated linearly to the month's end) as a marker.
pub fn budget_bar(t: &T, b: &BudgetRow, spent_picos: i128, month_start: i64, at: i64) -> String {
    let exp = riskdesk_domain::money::Currency::parse(&b.currency)
        .map(|c| c.exponent())
        .unwrap_or(2);
    let budget = b.monthly_minor as f64 / 10f64.powi(i32::from(exp));
    let spent = spent_picos as f64 / 1e12;
    let elapsed = ((at - month_start) as f64).max(1.0);
    let month = 30.4375 * 86_400_000_000.0;
    let forecast = spent * month / elapsed;
    let scale = budget.max(spent).max(forecast).max(1e-9) * 1.1;
    let x = |v: f64| (v / scale * W).clamp(0.0, W);
    let thresholds: Vec<f64> = serde_json::from_str(&b.thresholds_json).unwrap_or_default();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="budget-svg" viewBox="0 0 {W} 44" width="100%" role="img" aria-labelledby="b-t b-d" xmlns="http://www.w3.org/2000/svg"><title id="b-t">{}</title><desc id="b-d">{}</desc><rect class="track" x="0" y="8" width="{:.1}" height="18" rx="3"/><rect class="{}" x="0" y="8" width="{:.1}" height="18"/>"#,
        esc(&t.t("budget")),
        esc(&t.a(
            "budget-desc",
            "text",
            format!("{spent:.2} / {budget:.2} {} → {forecast:.2}", b.currency)
        )),
        x(budget),
        if spent > budget { "over" } else { "fill" },
        x(spent)
    );
    for p in thresholds {
        let _ = write!(
            s,
            r#"<line class="tick" x1="{0:.1}" x2="{0:.1}" y1="4" y2="30"/>"#,
            x(budget * p / 100.0)
        );
    }
    let _ = write!(
        s,
        r#"<path class="forecast" d="M{0:.1} 30 l-5 8 h10 z"/><text class="label" x="{0:.1}" y="8" text-anchor="middle">{1}</text></svg>"#,
        x(forecast),
        esc(&t.t("forecast"))
    );
    s
}

/// One currency's aging as a stacked bar; each segment links to the table filtered to it.
pub fn aging_bar(t: &T, labels: &[String], total: &AgingRowOut, qs: &str) -> String {
    let values: Vec<f64> = total.amounts.iter().map(|a| num(a).max(0.0)).collect();
    let sum: f64 = values.iter().sum::<f64>().max(1e-9);
    let mut s = String::new();
    let desc: Vec<String> = labels
        .iter()
        .zip(&total.amounts)
        .map(|(l, a)| format!("{l}: {a}"))
        .collect();
    let _ = write!(
        s,
        r#"<svg class="aging-svg" viewBox="0 0 {W} 64" width="100%" role="img" aria-labelledby="a-t-{0} a-d-{0}" xmlns="http://www.w3.org/2000/svg"><title id="a-t-{0}">{1}</title><desc id="a-d-{0}">{2}</desc>"#,
        esc(&total.currency),
        esc(&format!(
            "{} {} {}",
            t.t("aging-title"),
            total.currency,
            total.total
        )),
        esc(&desc.join("; "))
    );
    let mut x = 0.0;
    for (i, v) in values.iter().enumerate() {
        let w = v / sum * W;
        if w <= 0.0 {
            continue;
        }
        let sep = if qs.is_empty() { "" } else { "&amp;" };
        let _ = write!(
            s,
            r#"<a href="/ui/reports/aging?{}{sep}currency={}&amp;bucket={i}" class="segment" id="seg-{}-{i}"><rect class="b{i}" x="{x:.1}" y="4" width="{w:.1}" height="30"><title>{}</title></rect></a>"#,
            esc(qs),
            esc(&total.currency),
            esc(&total.currency),
            esc(&format!(
                "{}: {} {}",
                labels.get(i).map(String::as_str).unwrap_or(""),
                total.amounts.get(i).map(String::as_str).unwrap_or(""),
                total.currency
            )),
        );
        x += w;
    }
    let _ = write!(
        s,
        r#"<text class="label" x="0" y="54">{}</text></svg>"#,
        esc(&format!("{} {}", total.currency, total.total))
    );
    s
}

/// The per-invoice dunning timeline: days from the due date on the x axis; each step at its
/// planned day (hollow) and, once sent, at the day it went out (filled); the levers pulled by
/// sent lever steps as bands up to today while in force; payments and credits as markers;
/// pauses as a hatched band; today as a line.
pub fn dunning_timeline(t: &T, tl: &riskdesk_app::billing::dunning::InvoiceTimeline) -> String {
    use riskdesk_domain::billing::Day;
    let due = Day::parse(&tl.due_day).map(|d| d.0).unwrap_or(0);
    let today = Day::parse(&tl.as_of).map(|d| d.0).unwrap_or(due) - due;
    let rel = |d: &str| Day::parse(d).map(|d| d.0 - due).unwrap_or(0);
    let mut lo = -3;
    let mut hi = 60;
    for st in &tl.steps {
        lo = lo.min(st.offset_days - 2);
        hi = hi.max(st.offset_days + 5);
        if let Some(w) = &st.waits_until {
            hi = hi.max(rel(w) + 3);
        }
    }
    hi = hi.max(today + 3);
    lo = lo.min(today - 3);
    let (w, left, right) = (720.0, 8.0, 8.0);
    let x = |d: i32| left + (d - lo) as f64 / (hi - lo).max(1) as f64 * (w - left - right);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="dunning-svg" viewBox="0 0 {w} 120" width="100%" role="img" aria-labelledby="d-t d-d" xmlns="http://www.w3.org/2000/svg"><title id="d-t">{}</title><desc id="d-d">{}</desc><defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line class="hatch" x1="0" y1="0" x2="0" y2="6"/></pattern></defs><line class="axis" x1="{left}" x2="{:.1}" y1="60" y2="60"/>"##,
        esc(&t.t("dunning-timeline")),
        esc(&tl
            .steps
            .iter()
            .map(|st| format!(
                "{} {} {}",
                st.name,
                st.planned_day,
                st.sent_day.as_deref().unwrap_or("-")
            ))
            .collect::<Vec<_>>()
            .join("; ")),
        w - right
    );
    // Pauses: the whole span hatched.
    if tl.pauses.iter().any(|p| p != "settled") {
        let _ = write!(
            s,
            r##"<rect class="pause" x="{left}" y="66" width="{:.1}" height="10" fill="url(#hatch)"/>"##,
            w - left - right
        );
    }
    // Lever bands: from the day a lever step went out to today, while a lever is in force.
    if !tl.levers_in_force.is_empty() {
        for st in tl.steps.iter().filter(|st| st.lever != "none") {
            if let Some(d) = &st.sent_day {
                let (a, b) = (x(rel(d)), x(today));
                let _ = write!(
                    s,
                    r#"<rect class="lever-band lever-{}" x="{a:.1}" y="44" width="{:.1}" height="10"><title>{}</title></rect>"#,
                    esc(&st.lever),
                    (b - a).max(2.0),
                    esc(&t.label("lever", &st.lever))
                );
            }
        }
    }
    // Day 0 and today.
    let _ = write!(
        s,
        r#"<line class="due" x1="{0:.1}" x2="{0:.1}" y1="30" y2="90"/><text class="label" x="{0:.1}" y="100" text-anchor="middle">{1}</text><line class="today" x1="{2:.1}" x2="{2:.1}" y1="20" y2="96"/><text class="label" x="{2:.1}" y="16" text-anchor="middle">{3}</text>"#,
        x(0),
        esc(&t.t("due")),
        x(today),
        esc(&t.t("today"))
    );
    for (i, st) in tl.steps.iter().enumerate() {
        let px = x(st.offset_days);
        // A lever step held back by the notice gate: a dashed line to the day it can go.
        if let Some(wd) = &st.waits_until {
            let _ = write!(
                s,
                r#"<line class="gate" x1="{px:.1}" x2="{:.1}" y1="60" y2="60"><title>{}</title></line><circle class="step gate-end" cx="{:.1}" cy="60" r="3"/>"#,
                x(rel(wd)),
                esc(st.wait_reason.as_deref().unwrap_or("")),
                x(rel(wd))
            );
        }
        let _ = write!(
            s,
            r#"<circle class="step planned" cx="{px:.1}" cy="60" r="5"><title>{} {}</title></circle>"#,
            esc(&st.name),
            esc(&st.planned_day)
        );
        if let Some(d) = &st.sent_day {
            let _ = write!(
                s,
                r#"<circle class="step sent" cx="{:.1}" cy="60" r="5"><title>{} {}</title></circle>"#,
                x(rel(d)),
                esc(&st.name),
                esc(d)
            );
        }
        let _ = write!(
            s,
            r#"<text class="label step-label" x="{px:.1}" y="{}" text-anchor="middle">{}</text>"#,
            // Alternate heights so neighbouring steps' names do not overlap.
            if i % 2 == 0 { 40 } else { 28 },
            esc(&st.name)
        );
    }
    for m in &tl.markers {
        let px = x(rel(&m.day));
        let _ = write!(
            s,
            r#"<path class="marker marker-{}" d="M{px:.1} 80 l-5 9 h10 z"><title>{} {} {}</title></path>"#,
            esc(&m.kind),
            esc(&m.kind),
            esc(&m.day),
            esc(&m.amount)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn charts_carry_no_style_attribute() {
        let t = T(riskdesk_domain::Locale::En);
        let e = ExposureOut {
            customer_id: uuid::Uuid::nil(),
            customer_name: "A".into(),
            as_of: "2026-12-01T00:00:00Z".into(),
            credit_limit: Some("100.00".into()),
            credit_currency: Some("USD".into()),
            exposure: "150.00".into(),
            currency: "USD".into(),
            available: Some("-50.00".into()),
            over_limit: true,
            limit_used_percent: Some(150.0),
            lines: vec![],
        };
        let g = exposure_gauge(&t, &e);
        assert!(g.contains(r#"class="over""#), "{g}");
        assert!(!g.contains("style="), "{g}");
        let a = aging_bar(
            &t,
            &["current".into(), "1-30".into()],
            &AgingRowOut {
                customer_id: None,
                customer_name: None,
                currency: "EUR".into(),
                amounts: vec!["10.00".into(), "30.00".into()],
                total: "40.00".into(),
                invoices: 2,
            },
            "basis=due_date",
        );
        assert!(a.contains("bucket=1"), "{a}");
        assert!(!a.contains("style="), "{a}");
    }
}
