//! The case queue, the workspace's actions with maker-checker, sign-up review.

use fantoccini::Locator;
use riskdesk_connectors::partner_center_fake::FakePartnerCenter;
use riskdesk_domain::{Locale, Role};
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn the_queue_keeps_its_filters_in_the_url_and_answers_the_keyboard() {
    if !browser_available("queue") {
        return;
    }
    let env = env().await;
    let mut cases = Vec::new();
    for name in ["Contoso", "Fabrikam", "Northwind"] {
        let (cid, _) = env.customer(&env.admin, name, None).await;
        cases.push(env.fraud_case(&env.admin, &cid).await);
    }
    let pw = env
        .user("default", "ana@example.com", Role::Analyst, Locale::En)
        .await;
    let mut d = Driver::start().await;
    let c = d.browser(1280, 800).await;
    sign_in(&c, &env, "ana@example.com", &pw).await;
    c.goto(&env.url("/ui/cases")).await.unwrap();

    // A filter chosen in the form is in the URL; a reload keeps it, and the form shows it.
    let sel = c.find(Locator::Css("#f-severity")).await.unwrap();
    sel.select_by_value("critical").await.unwrap();
    c.find(Locator::Css("#f-overdue"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(&c, "#apply-filters").await;
    let p = wait_path(&c, |p| p.contains("severity=critical")).await;
    assert!(p.contains("overdue=on"), "{p}");
    // Nothing is past its SLA yet (critical: 1 h).
    assert!(exists(&c, "#queue-empty").await);
    c.refresh().await.unwrap();
    assert_eq!(path(&c).await, p);
    let v = c
        .find(Locator::Css("#f-severity"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("critical"));
    let checked = c
        .find(Locator::Css("#f-overdue"))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap();
    assert_eq!(checked.as_deref(), Some("true"));

    // A saved view is a URL too; j moves to the first row, j again to the second, k back up,
    // x selects it, Enter opens it.
    c.goto(&env.url("/ui/cases?view=critical")).await.unwrap();
    let rows = c.find_all(Locator::Css("tr[data-row]")).await.unwrap();
    assert_eq!(rows.len(), 3);
    keys(&c, "j").await;
    keys(&c, "j").await;
    keys(&c, "k").await;
    let first = c.find(Locator::Css("tr[data-row].current")).await.unwrap();
    let first_id = first.attr("id").await.unwrap().unwrap();
    assert_eq!(first_id, rows[0].attr("id").await.unwrap().unwrap());
    // Keys go to the page, not to the focused link's own handling: send them to the body.
    c.execute("document.activeElement.blur()", vec![])
        .await
        .unwrap();
    keys(&c, "x").await;
    let boxed = c
        .find(Locator::Css(&format!("#{first_id} input[type=checkbox]")))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap();
    assert_eq!(boxed.as_deref(), Some("true"));
    keys(&c, "\u{E007}").await; // Enter
    let opened = wait_path(&c, |p| p.starts_with("/ui/cases/")).await;
    assert_eq!(
        opened,
        format!("/ui/cases/{}", first_id.trim_start_matches("row-"))
    );
    // Back returns to the view.
    c.back().await.unwrap();
    assert_eq!(
        wait_path(&c, |p| p.starts_with("/ui/cases?")).await,
        "/ui/cases?view=critical"
    );

    // Bulk: select two, assign them to me (on a fresh page: the browser restores the
    // checkbox ticked above when going back).
    c.goto(&env.url("/ui/cases?view=critical")).await.unwrap();
    for id in &cases[..2] {
        c.find(Locator::Css(&format!("#row-{id} input[type=checkbox]")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    c.find(Locator::Css("#bulk-op"))
        .await
        .unwrap()
        .select_by_value("assign_me")
        .await
        .unwrap();
    click(&c, "#bulk-apply").await;
    let done = text(&c, "#bulk-done").await;
    assert!(done.contains('2'), "{done}");
    for id in &cases[..2] {
        let r = env
            .api(&env.admin, "GET", &format!("/v1/cases/{id}"), None)
            .await;
        assert_eq!(r["case"]["assignee"], "ana@example.com");
        assert_eq!(r["case"]["status"], "investigating");
    }
    // The '?' key opens the help.
    keys(&c, "?").await;
    assert!(c.find(Locator::Css("dialog#help[open]")).await.is_ok());
    env.assert_no_reports();
    c.close().await.unwrap();
}

#[tokio::test]
async fn take_next_never_gives_one_case_to_two_people() {
    if !browser_available("take_next") {
        return;
    }
    let env = env().await;
    for name in ["Contoso", "Fabrikam"] {
        let (cid, _) = env.customer(&env.admin, name, None).await;
        env.fraud_case(&env.admin, &cid).await;
    }
    let pw_a = env
        .user("default", "ana@example.com", Role::Analyst, Locale::En)
        .await;
    let pw_b = env
        .user("default", "ben@example.com", Role::Analyst, Locale::En)
        .await;
    let mut d = Driver::start().await;
    let a = d.browser(1280, 800).await;
    let b = d.browser(1280, 800).await;
    sign_in(&a, &env, "ana@example.com", &pw_a).await;
    sign_in(&b, &env, "ben@example.com", &pw_b).await;
    for c in [&a, &b] {
        c.goto(&env.url("/ui/cases?view=unassigned")).await.unwrap();
    }
    // Both press Take next at once.
    let (ea, eb) = (
        a.find(Locator::Css("#take-next")).await.unwrap(),
        b.find(Locator::Css("#take-next")).await.unwrap(),
    );
    let (ra, rb) = tokio::join!(ea.click(), eb.click());
    ra.unwrap();
    rb.unwrap();
    let pa = wait_path(&a, |p| p.starts_with("/ui/cases/")).await;
    let pb = wait_path(&b, |p| p.starts_with("/ui/cases/")).await;
    assert_ne!(pa, pb, "both were given {pa}");
    assert_eq!(text(&a, "#assignee").await, "Assignee: ana@example.com");
    assert_eq!(text(&b, "#assignee").await, "Assignee: ben@example.com");
    // Nothing is left to take.
    a.goto(&env.url("/ui/cases?view=unassigned")).await.unwrap();
    click(&a, "#take-next").await;
    assert!(text(&a, "#take-none").await.contains("No unassigned case"));
    env.assert_no_reports();
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn a_proposed_suspension_is_approved_by_another_analyst_and_reaches_partner_center() {
    if !browser_available("maker_checker") {
        return;
    }
    let pc = FakePartnerCenter::start().await;
    pc.add_subscription("pc-cust-1", "pc-sub-1", true, true);
    let env = env_with(Some(pc)).await;
    let (cid, sid) = env
        .customer(&env.admin, "Contoso", Some(("pc-cust-1", "pc-sub-1")))
        .await;
    let case = env.fraud_case(&env.admin, &cid).await;
    let pw_a = env
        .user("default", "ana@example.com", Role::Analyst, Locale::En)
        .await;
    let pw_b = env
        .user("default", "ben@example.com", Role::Analyst, Locale::En)
        .await;
    let mut d = Driver::start().await;
    let a = d.browser(1280, 800).await;
    sign_in(&a, &env, "ana@example.com", &pw_a).await;
    a.goto(&env.url(&format!("/ui/cases/{case}")))
        .await
        .unwrap();

    // The preview says what suspending does here and at Partner Center, and which notice goes out.
    click(&a, &format!("#preview-suspend-{sid} summary")).await;
    let effect = text(&a, &format!("#preview-suspend-{sid} .provider-effect")).await;
    assert!(
        effect.contains("pc-cust-1") && effect.contains("pc-sub-1"),
        "{effect}"
    );
    let here = text(&a, &format!("#preview-suspend-{sid} dd")).await;
    assert!(here.contains("active → suspended"), "{here}");
    let notice = text(&a, &format!("#preview-suspend-{sid} .notice-preview")).await;
    assert!(notice.contains("fr-FR"), "{notice}");
    // Reactivating an active subscription is not possible: the preview says so, no button.
    assert!(
        text(&a, &format!("#preview-reactivate-{sid} summary"))
            .await
            .contains("not possible")
    );
    assert!(!exists(&a, &format!("#apply-reactivate-{sid}")).await);
    click(&a, &format!("#propose-suspend-{sid}")).await;
    // The page comes back with the proposal in its actions panel.
    wait_text(&a, ".action-row", 10, |t| t.contains("awaiting approval")).await;
    let actions = env
        .api(
            &env.admin,
            "GET",
            &format!("/v1/actions?case_id={case}"),
            None,
        )
        .await;
    let action = actions[0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{actions}"))
        .to_owned();
    assert_eq!(actions[0]["status"], "awaiting_approval");
    assert_eq!(actions[0]["proposed_by"], "user:ana@example.com");
    assert_eq!(
        text(&a, &format!("#status-{action}")).await,
        "awaiting approval"
    );

    // The proposer sees it among their own, with no approve button, and the server refuses
    // their approval anyway.
    a.goto(&env.url("/ui/approvals")).await.unwrap();
    assert!(exists(&a, &format!("#mine-{action}")).await);
    assert!(!exists(&a, &format!("#approve-{action}")).await);
    let status = a
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                   body: 'key=self-approve&decision=approve'}).then(r => done(r.status));",
            vec![json!(format!("/ui/actions/{action}/decide"))],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));

    // Another analyst approves it; the provider status goes pending → done on the case.
    let b = d.browser(1280, 800).await;
    sign_in(&b, &env, "ben@example.com", &pw_b).await;
    b.goto(&env.url("/ui/approvals")).await.unwrap();
    let proposal = text(&b, &format!("#proposal-{action}")).await;
    assert!(proposal.contains("ana@example.com"), "{proposal}");
    click(&b, &format!("#approve-{action}")).await;
    b.accept_alert().await.unwrap();
    wait_path(&b, |p| p == "/ui/approvals").await;
    b.goto(&env.url(&format!("/ui/cases/{case}")))
        .await
        .unwrap();
    let s = text(&b, &format!("#status-{action}")).await;
    assert!(s == "pending at the provider" || s == "done", "{s}");
    // htmx polls the status every 2 s until it is final.
    wait_text(&b, &format!("#status-{action}"), 20, |t| t == "done").await;
    let pc = env.pc.as_ref().unwrap();
    assert_eq!(pc.requests_with("PATCH").len(), 1);
    assert_eq!(
        pc.subscription("pc-cust-1", "pc-sub-1")["status"],
        "suspended"
    );
    let act = env
        .api(&env.admin, "GET", &format!("/v1/actions/{action}"), None)
        .await;
    assert_eq!(act["decided_by"], "user:ben@example.com");
    env.assert_no_reports();
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn approving_a_signup_from_the_review_queue_creates_the_customer() {
    if !browser_available("signup_review") {
        return;
    }
    let env = env().await;
    // Free mail + a phone and a card from other countries: review.
    let r = env
        .api(
            &env.admin,
            "POST",
            "/v1/signups/assess",
            Some(json!({
                "company": {"name": "Founder Labs", "domain": "founderlabs.co.uk", "country": "GB", "address": "1 High St, London"},
                "contact": {"email": "founder@gmail.com", "phone": "+33142685300", "name": "Ada"},
                "ip": "203.0.113.8", "device_id": "dev-1",
                "payment_instrument": {"type": "card", "bin": "100100", "last4": "0001"},
                "cloud_instance": "global", "locale": "en",
            })),
        )
        .await;
    assert_eq!(r["decision"], "review", "{r}");
    let id = r["assessment_id"].as_str().unwrap().to_owned();
    let pw = env
        .user("default", "ana@example.com", Role::Analyst, Locale::En)
        .await;
    let mut d = Driver::start().await;
    let c = d.browser(1280, 800).await;
    sign_in(&c, &env, "ana@example.com", &pw).await;
    c.goto(&env.url("/ui/signups")).await.unwrap();
    let row = text(&c, &format!("#signup-{id}")).await;
    assert!(row.contains("Founder Labs") && row.contains("45"), "{row}");
    keys(&c, "j").await;
    c.execute("document.activeElement.blur()", vec![])
        .await
        .unwrap();
    keys(&c, "\u{E007}").await;
    wait_path(&c, |p| p == format!("/ui/signups/{id}")).await;
    let terms = text(&c, "#credit-terms").await;
    assert!(!terms.is_empty());
    fill(&c, "#review-note", "called the founder").await;
    click(&c, "#approve").await;
    let p = wait_path(&c, |p| p.starts_with("/ui/customers/")).await;
    assert_eq!(text(&c, "#customer-name").await, "Founder Labs");
    let cid = p.trim_start_matches("/ui/customers/");
    let cust = env
        .api(&env.admin, "GET", &format!("/v1/customers/{cid}"), None)
        .await;
    assert_eq!(cust["name"], "Founder Labs");
    let s = env
        .api(&env.admin, "GET", &format!("/v1/signups/{id}"), None)
        .await;
    assert_eq!(s["status"], "approved");
    env.assert_no_reports();
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_subscription_is_suspended_from_the_customer_page_with_its_preview() {
    if !browser_available("customer_actions") {
        return;
    }
    let env = env().await;
    let (cid, sid) = env.customer(&env.admin, "Contoso", None).await;
    let pw = env
        .user("default", "ana@example.com", Role::Analyst, Locale::En)
        .await;
    let mut d = Driver::start().await;
    let c = d.browser(1280, 800).await;
    sign_in(&c, &env, "ana@example.com", &pw).await;
    c.goto(&env.url(&format!("/ui/customers/{cid}")))
        .await
        .unwrap();
    click(&c, &format!("#preview-suspend-{sid} summary")).await;
    let effect = text(&c, &format!("#preview-suspend-{sid} .provider-effect")).await;
    assert!(effect.contains("no provider link"), "{effect}");
    click(&c, &format!("#apply-suspend-{sid}")).await;
    c.accept_alert().await.unwrap();
    wait_text(&c, &format!("#sub-{sid} .sub-status"), 10, |t| {
        t == "suspended"
    })
    .await;
    let sub = env
        .api(&env.admin, "GET", &format!("/v1/subscriptions/{sid}"), None)
        .await;
    assert_eq!(sub["status"], "suspended");
    // The audit log names the person; an analyst's page does not show it (no audit role).
    assert!(!exists(&c, "#audit").await);
    let audit = env
        .api(
            &env.admin,
            "GET",
            &format!("/v1/audit?entity_id={sid}"),
            None,
        )
        .await;
    assert!(audit.to_string().contains("ana@example.com"), "{audit}");
    env.assert_no_reports();
    c.close().await.unwrap();
}
