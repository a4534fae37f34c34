//! Every page, at a desktop and a phone size: it renders (a heading, no CSP violation, no
//! script error), fits 390 px without scrolling sideways, and is photographed for people to
//! look at (`target/browser-screenshots/`).

use riskdesk_connectors::partner_center_fake::FakePartnerCenter;
use riskdesk_domain::{Locale, Role};
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn every_page_renders_at_1280_and_390_without_csp_violations() {
    if !browser_available("tour") {
        return;
    }
    let pc = FakePartnerCenter::start().await;
    pc.add_subscription("pc-cust-1", "pc-sub-1", true, true);
    let env = env_with(Some(pc)).await;
    let (cid, sid) = env
        .customer(&env.admin, "Contoso", Some(("pc-cust-1", "pc-sub-1")))
        .await;
    let case = env.fraud_case(&env.admin, &cid).await;
    let analyst = env.token("default", Role::Analyst).await;
    let action = env
        .api(
            &analyst,
            "POST",
            &format!("/v1/cases/{case}/actions"),
            Some(json!({"kind": "suspend", "subscription_id": sid, "reason": "fraud", "require_approval": true})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.api(
        &env.admin,
        "POST",
        "/v1/invoices",
        Some(json!({"customer_id": cid, "number": "INV-1", "issue_date": "2026-09-01", "due_date": "2026-10-01",
            "currency": "EUR", "lines": [{"description": "Azure plan usage", "amount": "1200.00"}], "total": "1200.00"})),
    )
    .await;
    let invoice = env
        .api(
            &env.admin,
            "GET",
            &format!("/v1/invoices?customer_id={cid}"),
            None,
        )
        .await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let signup = env
        .api(
            &env.admin,
            "POST",
            "/v1/signups/assess",
            Some(json!({
                "company": {"name": "Founder Labs", "domain": "founderlabs.co.uk", "country": "GB", "address": "1 High St"},
                "contact": {"email": "founder@gmail.com", "phone": "+33142685300", "name": "Ada"},
                "ip": "203.0.113.8", "device_id": "dev-1",
                "payment_instrument": {"type": "card", "bin": "100100", "last4": "0001"},
                "cloud_instance": "global", "locale": "en",
            })),
        )
        .await["assessment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pw = env
        .user("default", "ada@example.com", Role::Admin, Locale::En)
        .await;
    let pages = [
        ("home", "/ui/".to_owned()),
        ("cases", "/ui/cases".to_owned()),
        ("case", format!("/ui/cases/{case}")),
        ("approvals", "/ui/approvals".to_owned()),
        ("action", format!("/ui/actions/{action}")),
        ("signups", "/ui/signups".to_owned()),
        ("signup", format!("/ui/signups/{signup}")),
        ("customers", "/ui/customers".to_owned()),
        ("customer", format!("/ui/customers/{cid}")),
        ("aging", "/ui/reports/aging".to_owned()),
        ("invoices", "/ui/invoices".to_owned()),
        ("invoice", format!("/ui/invoices/{invoice}")),
        ("me", "/ui/me".to_owned()),
        ("users", "/ui/admin/users".to_owned()),
        (
            "not-found",
            "/ui/cases/00000000-0000-0000-0000-000000000000".to_owned(),
        ),
    ];
    let mut d = Driver::start().await;
    for (w, h) in [(1280, 800), (390, 844)] {
        let c = d.browser(w, h).await;
        c.goto(&env.url("/ui/login")).await.unwrap();
        shot(&c, &format!("login-{w}x{h}")).await;
        sign_in(&c, &env, "ada@example.com", &pw).await;
        for (name, p) in &pages {
            c.goto(&env.url(p)).await.unwrap();
            let h1 = text(&c, "h1").await;
            assert!(!h1.trim().is_empty(), "{name}: no heading");
            shot(&c, &format!("{name}-{w}x{h}")).await;
            let wide = c
                .execute(
                    "return document.documentElement.scrollWidth - window.innerWidth;",
                    vec![],
                )
                .await
                .unwrap();
            assert!(
                wide.as_i64().unwrap_or(0) <= 1,
                "{name} at {w}px is {wide} px too wide"
            );
        }
        c.close().await.unwrap();
    }
    env.assert_no_reports();
}
