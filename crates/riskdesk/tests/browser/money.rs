//! Aging against the CLI, money and dates per language.

use fantoccini::Locator;
use riskdesk_domain::{Locale, Role};
use serde_json::json;

use crate::harness::*;

async fn invoice(
    env: &Env,
    cid: &str,
    number: &str,
    issue: &str,
    due: &str,
    currency: &str,
    total: &str,
) {
    env.api(
        &env.admin,
        "POST",
        "/v1/invoices",
        Some(json!({"customer_id": cid, "number": number, "issue_date": issue, "due_date": due,
            "currency": currency, "lines": [{"description": "Azure plan usage", "amount": total}], "total": total})),
    )
    .await;
}

#[tokio::test]
async fn the_aging_chart_and_its_csv_equal_the_cli_report() {
    if !browser_available("aging") {
        return;
    }
    let env = env().await;
    let (a, _) = env.customer(&env.admin, "Contoso", None).await;
    let (b, _) = env.customer(&env.admin, "Fabrikam", None).await;
    invoice(
        &env,
        &a,
        "INV-1",
        "2026-09-01",
        "2026-10-01",
        "EUR",
        "1200.00",
    )
    .await;
    invoice(
        &env,
        &a,
        "INV-2",
        "2026-11-01",
        "2026-11-20",
        "EUR",
        "300.50",
    )
    .await;
    invoice(
        &env,
        &b,
        "INV-3",
        "2026-08-01",
        "2026-08-15",
        "USD",
        "99.99",
    )
    .await;
    invoice(
        &env,
        &b,
        "INV-4",
        "2026-11-15",
        "2026-12-15",
        "EUR",
        "10.00",
    )
    .await;
    let pw = env
        .user("default", "col@example.com", Role::Collections, Locale::En)
        .await;
    let mut d = Driver::start().await;
    let c = d.browser(1280, 800).await;
    sign_in(&c, &env, "col@example.com", &pw).await;
    c.goto(&env.url("/ui/reports/aging?as_of=2026-12-01"))
        .await
        .unwrap();

    let out = env.cli(&[
        "report",
        "aging",
        "--as-of",
        "2026-12-01",
        "--format",
        "csv",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli = String::from_utf8(out.stdout).unwrap();
    // The figures on the page: one chart per currency (never summed), each segment's title
    // "bucket: amount currency"; and the table's TOTAL rows.
    for line in cli.lines().filter(|l| l.starts_with("TOTAL")) {
        let cols: Vec<&str> = line.split(',').collect();
        let currency = cols[2];
        let chart = c
            .find(Locator::Css(&format!(
                "svg.aging-svg desc[id='a-d-{currency}']"
            )))
            .await
            .unwrap()
            .html(true)
            .await
            .unwrap();
        let header: Vec<&str> = cli.lines().next().unwrap().split(',').collect();
        for (i, amount) in cols[3..cols.len() - 1].iter().enumerate() {
            assert!(
                chart.contains(&format!("{}: {amount}", header[3 + i])),
                "{currency}: {chart} vs {line}"
            );
        }
        assert!(
            text(&c, "#aging-table tfoot")
                .await
                .contains(cols[cols.len() - 1]),
            "{line}"
        );
    }
    assert_eq!(
        c.find_all(Locator::Css("svg.aging-svg"))
            .await
            .unwrap()
            .len(),
        2
    );
    // The CSV the page offers is the CLI's, byte for byte.
    let csv = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.getElementById('aging-csv').href).then(r => r.text()).then(done);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(csv.as_str(), Some(cli.as_str()));
    // Clicking the 61–90 EUR segment filters the table to the customers with money in it.
    let seg = c.find(Locator::Css("a#seg-EUR-3")).await.unwrap();
    seg.click().await.unwrap();
    wait_path(&c, |p| p.contains("bucket=3")).await;
    let rows = text(&c, "#aging-table tbody").await;
    assert!(
        rows.contains("Contoso") && !rows.contains("Fabrikam"),
        "{rows}"
    );
    shot(&c, "aging-segment-1280x800").await;
    env.assert_no_reports();
    c.close().await.unwrap();
}

#[tokio::test]
async fn dates_and_money_are_written_in_the_persons_language() {
    if !browser_available("languages") {
        return;
    }
    let env = env().await;
    let (cid, _) = env.customer(&env.admin, "Contoso", None).await;
    invoice(
        &env,
        &cid,
        "INV-BR",
        "2026-11-01",
        "2026-12-01",
        "BRL",
        "1234.50",
    )
    .await;
    let pw_zh = env
        .user("default", "li@example.com", Role::Analyst, Locale::ZhCn)
        .await;
    let pw_pt = env
        .user("default", "joao@example.com", Role::Analyst, Locale::PtBr)
        .await;
    let mut d = Driver::start().await;

    let zh = d.browser(1280, 800).await;
    sign_in(&zh, &env, "li@example.com", &pw_zh).await;
    zh.goto(&env.url(&format!("/ui/customers/{cid}")))
        .await
        .unwrap();
    let lang = zh
        .find(Locator::Css("html"))
        .await
        .unwrap()
        .attr("lang")
        .await
        .unwrap();
    assert_eq!(lang.as_deref(), Some("zh-CN"));
    let inv = text(&zh, "table tr[id^=invoice-]").await;
    assert!(inv.contains("2026年12月1日"), "{inv}");
    let nav = text(&zh, "header.top nav").await;
    assert!(
        !nav.contains("Cases") && nav.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{nav}"
    );
    shot(&zh, "customer-zh-CN-1280x800").await;

    let pt = d.browser(1280, 800).await;
    sign_in(&pt, &env, "joao@example.com", &pw_pt).await;
    pt.goto(&env.url(&format!("/ui/customers/{cid}")))
        .await
        .unwrap();
    let inv = text(&pt, "table tr[id^=invoice-]").await;
    assert!(inv.contains("1.234,50"), "{inv}");
    shot(&pt, "customer-pt-BR-1280x800").await;

    // The language is the person's choice: switching on /ui/me changes every page.
    pt.goto(&env.url("/ui/me")).await.unwrap();
    pt.find(Locator::Css("#locale"))
        .await
        .unwrap()
        .select_by_value("fr-FR")
        .await
        .unwrap();
    click(&pt, "#set-locale").await;
    // The form posts back to /ui/me: the path says nothing, so wait for the new page's
    // language (the old page's element goes stale as the new one loads).
    let mut lang = None;
    for _ in 0..100 {
        if let Ok(e) = pt.find(Locator::Css("html")).await
            && let Ok(l) = e.attr("lang").await
        {
            lang = l;
            if lang.as_deref() == Some("fr-FR") {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(path(&pt).await, "/ui/me");
    assert_eq!(lang.as_deref(), Some("fr-FR"));
    env.assert_no_reports();
    zh.close().await.unwrap();
    pt.close().await.unwrap();
}

#[tokio::test]
async fn a_payment_lifts_the_lever_on_the_invoice_dunning_timeline() {
    if !browser_available("dunning_timeline") {
        return;
    }
    let env = env().await;
    let (cid, _) = env.customer(&env.admin, "Contoso", None).await;
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let day = |offset: i64| (today + jiff::Span::new().days(offset)).to_string();
    // Due twenty days ago; the ladder ran the day after the due date, then not until yesterday.
    let due = day(-20);
    invoice(&env, &cid, "INV-77", &day(-50), &due, "EUR", "250.00").await;
    for as_of in [day(-19), day(-1)] {
        let out = env.cli(&["dunning", "run", "--as-of", &as_of]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pw = env
        .user("default", "col@example.com", Role::Collections, Locale::En)
        .await;
    let mut d = Driver::start().await;
    let c = d.browser(1280, 800).await;
    sign_in(&c, &env, "col@example.com", &pw).await;
    c.goto(&env.url("/ui/invoices?filter=overdue"))
        .await
        .unwrap();
    keys(&c, "j").await;
    c.execute("document.activeElement.blur()", vec![])
        .await
        .unwrap();
    keys(&c, "\u{E007}").await;
    wait_path(&c, |p| p.starts_with("/ui/invoices/")).await;
    assert_eq!(text(&c, "#invoice-title").await, "Invoice INV-77");

    // The steps went out on the days the ladder ran; the warning's lever is in force; the next
    // step (blocked access, planned 15 days after the due date) waits for the warning to be
    // five days old, and says so.
    assert_eq!(text(&c, "#step-reminder .sent").await, day(-19));
    assert_eq!(text(&c, "#step-overdue .sent").await, day(-19));
    assert_eq!(text(&c, "#step-warning .sent").await, day(-1));
    assert_eq!(text(&c, "#levers .lever").await, "new purchases blocked");
    let next = text(&c, "#next-step").await;
    assert!(next.contains("access_disabled"), "{next}");
    let wait = text(&c, "#step-access_disabled").await;
    assert!(
        wait.contains(&format!(
            "waits until {} because the notice 'warning' went out on {}",
            day(4),
            day(-1)
        )),
        "{wait}"
    );
    assert!(exists(&c, "svg.dunning-svg rect.lever-band").await);
    shot(&c, "invoice-lever-1280x800").await;

    // The customer pays in full from this page: the lever is lifted, the payment is a marker,
    // and no step is left.
    fill(&c, "#pay-amount", "250.00").await;
    click(&c, "#pay").await;
    wait_text(&c, "#open-amount", 10, |t| t.starts_with("0.00")).await;
    assert_eq!(text(&c, "#no-levers").await, "none");
    assert!(text(&c, "#markers").await.contains("payment"));
    assert!(text(&c, "#next-step").await.contains("No step left"));
    assert!(!exists(&c, "svg.dunning-svg rect.lever-band").await);
    let cust = env
        .api(&env.admin, "GET", &format!("/v1/customers/{cid}"), None)
        .await;
    assert_eq!(cust["purchases_blocked"], false, "{cust}");
    shot(&c, "invoice-paid-1280x800").await;
    // The customer's story is on any of its cases: the steps sent and the payment.
    let case = env.fraud_case(&env.admin, &cid).await;
    c.goto(&env.url(&format!("/ui/cases/{case}")))
        .await
        .unwrap();
    let story = text(&c, "#timeline").await;
    assert!(
        story.contains("dunning step") && story.contains("warning"),
        "{story}"
    );
    assert!(
        story.contains("payment") && story.contains("250.00"),
        "{story}"
    );
    env.assert_no_reports();
    c.close().await.unwrap();
}

#[tokio::test]
async fn the_global_as_of_control_keeps_the_page_and_its_filters() {
    if !browser_available("as_of") {
        return;
    }
    let env = env().await;
    let (cid, _) = env.customer(&env.admin, "Contoso", None).await;
    invoice(
        &env,
        &cid,
        "INV-9",
        "2026-09-01",
        "2026-10-01",
        "EUR",
        "100.00",
    )
    .await;
    let pw = env
        .user("default", "col@example.com", Role::Collections, Locale::En)
        .await;
    let mut d = Driver::start().await;
    let c = d.browser(1280, 800).await;
    sign_in(&c, &env, "col@example.com", &pw).await;
    c.goto(&env.url("/ui/reports/aging?basis=issue_date"))
        .await
        .unwrap();
    fill(&c, "#global-as-of", "2026-10-15\u{E007}").await;
    let p = wait_path(&c, |p| p.contains("as_of=2026-10-15")).await;
    assert!(
        p.starts_with("/ui/reports/aging?") && p.contains("basis=issue_date"),
        "{p}"
    );
    assert!(text(&c, "#aging-as-of-day").await.contains("2026-10-15"));
    assert!(text(&c, ".as-of-banner").await.contains("2026-10-15"));
    // Pages that do not read it do not offer it.
    c.goto(&env.url("/ui/approvals")).await.unwrap();
    assert!(!exists(&c, "#global-as-of").await);
    env.assert_no_reports();
    c.close().await.unwrap();
}
