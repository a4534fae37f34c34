//! Signing in and out, disabled accounts, tenants, cross-site forms.

use riskdesk_domain::{Locale, Role};

use crate::harness::*;

#[tokio::test]
async fn sign_in_refuses_a_wrong_password_signs_out_and_a_disabled_account_loses_its_session() {
    if !browser_available("sign_in") {
        return;
    }
    let env = env().await;
    let pw = env
        .user("default", "ana@example.com", Role::Analyst, Locale::En)
        .await;
    let mut d = Driver::start().await;
    let c = d.browser(1280, 800).await;

    // A page asked for before signing in comes back after it.
    c.goto(&env.url("/ui/cases?severity=critical"))
        .await
        .unwrap();
    let p = wait_path(&c, |p| p.starts_with("/ui/login")).await;
    assert!(p.contains("next="), "{p}");
    fill(&c, "#email", "ana@example.com").await;
    fill(&c, "#password", "not-the-password").await;
    click(&c, "#sign-in").await;
    let msg = text(&c, "#login-error").await;
    assert!(msg.contains("not right"), "{msg}");
    assert!(path(&c).await.starts_with("/ui/login"));

    // The login page keeps where to go; the right password gets there.
    fill(&c, "#password", &pw).await;
    click(&c, "#sign-in").await;
    let p = wait_path(&c, |p| p.starts_with("/ui/cases")).await;
    assert_eq!(p, "/ui/cases?severity=critical");
    assert_eq!(text(&c, "h1").await, "Case queue");
    let cookies = c.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|k| k.name() == "__Host-riskdesk_session")
        .expect("the session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.secure(), Some(true));
    assert_eq!(session.path(), Some("/"));

    // Sign out: back to the sign-in page, and the old cookie opens nothing.
    click(&c, "#sign-out").await;
    wait_path(&c, |p| p.starts_with("/ui/login")).await;
    c.goto(&env.url("/ui/")).await.unwrap();
    wait_path(&c, |p| p.starts_with("/ui/login")).await;

    // Signed in again, then disabled from the CLI: the next page is the sign-in page, and the
    // password no longer works.
    sign_in(&c, &env, "ana@example.com", &pw).await;
    assert_eq!(path(&c).await, "/ui/");
    let out = env.cli(&["user", "disable", "ana@example.com"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.goto(&env.url("/ui/cases")).await.unwrap();
    wait_path(&c, |p| p.starts_with("/ui/login")).await;
    fill(&c, "#email", "ana@example.com").await;
    fill(&c, "#password", &pw).await;
    click(&c, "#sign-in").await;
    assert!(text(&c, "#login-error").await.contains("not right"));
    env.assert_no_reports();
    c.close().await.unwrap();
}

#[tokio::test]
async fn another_tenants_case_and_customer_are_a_404_page() {
    if !browser_available("tenants") {
        return;
    }
    let env = env().await;
    let (cid, _) = env.customer(&env.admin, "Contoso", None).await;
    let case = env.fraud_case(&env.admin, &cid).await;
    let pw_b = env
        .user("reseller-b", "bob@b.example", Role::Admin, Locale::En)
        .await;
    let pw_a = env
        .user("default", "ann@a.example", Role::Analyst, Locale::En)
        .await;
    let mut d = Driver::start().await;
    let c = d.browser(1280, 800).await;

    // Tenant A's analyst sees the case.
    sign_in(&c, &env, "ann@a.example", &pw_a).await;
    c.goto(&env.url(&format!("/ui/cases/{case}")))
        .await
        .unwrap();
    assert!(text(&c, "#case-title").await.contains("fraud"));
    click(&c, "#sign-out").await;

    // Tenant B's admin gets the same page as for an id that does not exist.
    sign_in(&c, &env, "bob@b.example", &pw_b).await;
    for p in [
        format!("/ui/cases/{case}"),
        format!("/ui/customers/{cid}"),
        "/ui/cases/00000000-0000-0000-0000-000000000000".into(),
    ] {
        c.goto(&env.url(&p)).await.unwrap();
        assert_eq!(text(&c, "h1 .status").await, "404", "{p}");
    }
    // And B's queue does not list it.
    c.goto(&env.url("/ui/cases")).await.unwrap();
    assert!(!exists(&c, &format!("#row-{case}")).await);
    assert!(exists(&c, "#queue-empty").await);
    env.assert_no_reports();
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_form_posted_from_another_origin_is_refused() {
    if !browser_available("cross_site") {
        return;
    }
    let env = env().await;
    let pw = env
        .user("default", "ana@example.com", Role::Analyst, Locale::En)
        .await;
    // Another origin (same host, another port) serving a form aimed at the dashboard.
    let target = env.url("/ui/logout-everywhere");
    let evil = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move {
            axum::response::Html(format!(
                "<!doctype html><form method=post action=\"{target}\"><button id=go>win a prize</button></form>"
            ))
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil_url = format!("http://{}/", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, evil).await });

    let mut d = Driver::start().await;
    let c = d.browser(1280, 800).await;
    sign_in(&c, &env, "ana@example.com", &pw).await;
    c.goto(&evil_url).await.unwrap();
    click(&c, "#go").await;
    let detail = text(&c, "#error-detail").await;
    assert!(detail.contains("another site"), "{detail}");
    assert_eq!(text(&c, "h1 .status").await, "403");
    // The session was not signed out everywhere: it still opens the dashboard.
    c.goto(&env.url("/ui/")).await.unwrap();
    assert_eq!(path(&c).await, "/ui/");
    env.assert_no_reports();
    c.close().await.unwrap();
}

#[tokio::test]
async fn sign_in_with_entra_id_links_the_account_and_refuses_strangers() {
    use riskdesk_connectors::oidc::OidcSettings;
    use riskdesk_connectors::oidc_fake::{FakeIssuer, Person};
    if !browser_available("entra") {
        return;
    }
    let idp = FakeIssuer::start("app-secret").await;
    let issuer = idp.issuer.clone();
    let env = env_full(None, |base| {
        let mut ui = riskdesk_ui::UiOptions::default();
        ui.entra.insert(
            "default".into(),
            OidcSettings {
                issuer: issuer.clone(),
                client_id: "riskdesk-app".into(),
                client_secret: "app-secret".into(),
                redirect_uri: format!("{base}/ui/login/entra/callback"),
                directory_id: Some("dir-1".into()),
                timeout_ms: 5_000,
            },
        );
        ui
    })
    .await;
    env.user("default", "ana@example.com", Role::Analyst, Locale::En)
        .await;
    let person = |oid: &str, tid: &str, email: &str| Person {
        oid: oid.into(),
        tid: tid.into(),
        email: email.into(),
        name: "Someone".into(),
    };
    let mut d = Driver::start().await;
    let c = d.browser(1280, 800).await;

    // The person signs in at Microsoft; riskdesk finds their account by email and links it.
    idp.sign_in_as(person("oid-ana", "dir-1", "Ana@Example.com"));
    c.goto(&env.url("/ui/login?next=%2Fui%2Fcases"))
        .await
        .unwrap();
    click(&c, "#entra-default").await;
    wait_path(&c, |p| p == "/ui/cases").await;
    let me = text(&c, "#me").await;
    assert_eq!(me, "ana");
    let asked = idp.authorize_requests();
    assert_eq!(asked.len(), 1);
    let a = &asked[0];
    assert_eq!(a["code_challenge_method"], "S256");
    assert_eq!(a["client_id"], "riskdesk-app");
    assert_eq!(a["redirect_uri"], env.url("/ui/login/entra/callback"));
    assert!(a["state"].len() >= 40 && a["nonce"].len() >= 40, "{a:?}");
    assert!(idp.refusals().is_empty(), "{:?}", idp.refusals());
    let u = riskdesk_storage::staff::user_by_email(&env.db, "ana@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.oidc_subject.as_deref(), Some("oid-ana"));
    click(&c, "#sign-out").await;
    wait_path(&c, |p| p.starts_with("/ui/login")).await;

    // Once linked, the object id is what counts, whatever the email now says.
    idp.sign_in_as(person("oid-ana", "dir-1", "ana.renamed@example.com"));
    click(&c, "#entra-default").await;
    wait_path(&c, |p| p == "/ui/").await;
    click(&c, "#sign-out").await;

    // Someone of another directory, and someone with no account here, are refused.
    idp.sign_in_as(person("oid-eve", "dir-2", "ana@example.com"));
    click(&c, "#entra-default").await;
    assert!(text(&c, "#login-error").await.contains("did not confirm"));
    idp.sign_in_as(person("oid-zed", "dir-1", "zed@example.com"));
    click(&c, "#entra-default").await;
    assert!(
        text(&c, "#login-error")
            .await
            .contains("no riskdesk account")
    );
    // A callback this browser did not start (no flow cookie, or another state) opens nothing.
    c.goto(&env.url("/ui/login/entra/callback?code=stolen&state=forged"))
        .await
        .unwrap();
    let msg = text(&c, "#login-error").await;
    assert!(
        msg.contains("expired") || msg.contains("not started here"),
        "{msg}"
    );
    c.goto(&env.url("/ui/")).await.unwrap();
    wait_path(&c, |p| p.starts_with("/ui/login")).await;
    env.assert_no_reports();
    c.close().await.unwrap();
}

#[tokio::test]
async fn an_account_with_a_second_factor_signs_in_with_its_authenticator_code() {
    if !browser_available("totp") {
        return;
    }
    let env = env().await;
    let pw = env
        .user("default", "ana@example.com", Role::Analyst, Locale::En)
        .await;
    // The second factor is turned on from the CLI, which prints the otpauth URL once.
    let out = env.cli(&["user", "totp", "ana@example.com"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap();
    let secret = url
        .split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("a secret in the otpauth URL")
        .to_owned();
    let totp = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(&secret).unwrap())
        .build()
        .unwrap();
    let mut d = Driver::start().await;
    let c = d.browser(1280, 800).await;
    c.goto(&env.url("/ui/login")).await.unwrap();
    fill(&c, "#email", "ana@example.com").await;
    fill(&c, "#password", &pw).await;
    click(&c, "#sign-in").await;
    // The right password alone is not enough: the page asks for the code.
    assert!(
        text(&c, "label[for=code]")
            .await
            .contains("Authenticator code")
    );
    assert!(path(&c).await.starts_with("/ui/login"));
    let now = jiff::Timestamp::now().as_second() as u64;
    let right = totp.generate(now).to_string();
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    fill(&c, "#password", &pw).await;
    fill(&c, "#code", wrong).await;
    click(&c, "#sign-in").await;
    let msg = text(&c, "#login-error").await;
    assert!(
        msg.contains("code is not right") || msg.contains("not right"),
        "{msg}"
    );
    // A wrong code counts as a failed sign-in: the password is asked again, then the code
    // (on the next page: wait for it before filling it, or the old page's field goes stale).
    assert!(
        !exists(&c, "#code").await,
        "after a wrong code the page asks for the password alone"
    );
    fill(&c, "#password", &pw).await;
    click(&c, "#sign-in").await;
    assert!(
        text(&c, "label[for=code]")
            .await
            .contains("Authenticator code")
    );
    let code = totp
        .generate(jiff::Timestamp::now().as_second() as u64)
        .to_string();
    fill(&c, "#password", &pw).await;
    fill(&c, "#code", &code).await;
    click(&c, "#sign-in").await;
    wait_path(&c, |p| p == "/ui/").await;
    env.assert_no_reports();
    c.close().await.unwrap();
}

/// An admin connects Partner Center from the dashboard: the page shows the instance not
/// connected, Connect leads to Microsoft's consent page (the fake, standing for the sign-in
/// with MFA), which sends the browser back through riskdesk's callback to the page, now
/// connected; Disconnect forgets it. An analyst has no such page.
#[tokio::test]
async fn an_admin_connects_partner_center_from_the_dashboard() {
    if !browser_available("provider") {
        return;
    }
    let pc = riskdesk_connectors::partner_center_fake::FakePartnerCenter::start().await;
    let env = env_with(Some(pc)).await;
    let pw = env
        .user("default", "ada@example.com", Role::Admin, Locale::En)
        .await;
    let pw_an = env
        .user("default", "ann@example.com", Role::Analyst, Locale::En)
        .await;
    let mut d = Driver::start().await;
    let c = d.browser(1280, 800).await;

    sign_in(&c, &env, "ann@example.com", &pw_an).await;
    assert!(!exists(&c, "nav a[href='/ui/admin/provider']").await);
    c.goto(&env.url("/ui/admin/provider")).await.unwrap();
    assert_eq!(text(&c, "h1 .status").await, "403");
    c.goto(&env.url("/ui/")).await.unwrap();
    click(&c, "#sign-out").await;

    sign_in(&c, &env, "ada@example.com", &pw).await;
    click(&c, "nav a[href='/ui/admin/provider']").await;
    wait_path(&c, |p| p == "/ui/admin/provider").await;
    assert_eq!(text(&c, "#state-global").await, "not connected");
    click(&c, "#connect-global").await;
    let link = c
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(fantoccini::Locator::Css("#consent-link"))
        .await
        .unwrap();
    let href = link.attr("href").await.unwrap().unwrap();
    assert!(href.contains("code_challenge_method=S256"), "{href}");
    assert!(href.contains("/partner-tenant/oauth2/authorize?"), "{href}");
    link.click().await.unwrap();
    let p = wait_path(&c, |p| p.starts_with("/ui/admin/provider?connected=")).await;
    assert_eq!(p, "/ui/admin/provider?connected=global");
    assert!(exists(&c, "#provider-connected").await);
    assert_eq!(text(&c, "#state-global").await, "connected");
    shot(&c, "provider-connected").await;
    // The consent is stored sealed, never in clear.
    let sealed = riskdesk_storage::provider::connections(&env.db)
        .await
        .unwrap();
    assert_eq!(sealed.len(), 1);
    let token = sealed[0].refresh_token.clone().unwrap();
    assert!(token.starts_with("v1.k1."), "{token}");

    // A danger button asks first.
    click(&c, "#disconnect-global").await;
    c.accept_alert().await.unwrap();
    wait_text(&c, "#state-global", 10, |t| t == "disconnected").await;
    env.assert_no_reports();
    c.close().await.unwrap();
}
