//! The browser tests' harness: a riskdesk server (API + dashboard) on a random port over a
//! temp SQLite database, Debian's chromedriver driving headless Chromium over WebDriver, staff
//! accounts made as the CLI makes them, and screenshots of what was seen.
//!
//! Without /usr/bin/chromedriver the tests print "skipped" and pass, unless
//! RISKDESK_BROWSER_TESTS=1 (CI sets it), where a missing browser fails the suite.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use riskdesk_app::SystemClock;
use riskdesk_app::accounts::{self as service, staff};
use riskdesk_connectors::partner_center::PartnerCenterSettings;
use riskdesk_connectors::partner_center_fake::FakePartnerCenter;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::{Locale, Role, TenantId, TenantSlug};
use riskdesk_http::{Application, ServerOptions};
use riskdesk_storage::{Db, DbOptions};
use serde_json::{Value, json};

pub const DRIVER: &str = "/usr/bin/chromedriver";

/// Whether the browser tests can run here; panics when they must (CI) and cannot.
pub fn browser_available(test: &str) -> bool {
    if std::path::Path::new(DRIVER).exists() {
        return true;
    }
    if std::env::var("RISKDESK_BROWSER_TESTS").as_deref() == Ok("1") {
        panic!("{DRIVER} is missing: install chromium chromium-driver (RISKDESK_BROWSER_TESTS=1)");
    }
    eprintln!("{test}: skipped: install chromium chromium-driver to run the browser tests");
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One chromedriver for one test, killed when dropped.
pub struct Driver {
    pub url: String,
    child: Child,
    profiles: Vec<tempfile::TempDir>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    pub async fn start() -> Driver {
        let port = free_port();
        let child = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && r.status().is_success()
            {
                return Driver {
                    url,
                    child,
                    profiles: vec![],
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chromedriver did not answer on {url}/status");
    }

    /// A new browser session (its own empty profile) with a window of `w`×`h`.
    pub async fn browser(&mut self, w: u32, h: u32) -> Client {
        let profile = tempfile::tempdir().expect("profile dir");
        let binary = if std::path::Path::new("/usr/lib/chromium/chromium").exists() {
            "/usr/lib/chromium/chromium"
        } else {
            "/usr/bin/chromium"
        };
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--disable-extensions", "--lang=en-US",
                    format!("--window-size={w},{h}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        self.profiles.push(profile);
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a browser session");
        client.set_window_size(w, h).await.expect("window size");
        client
    }
}

pub fn pc_settings(fake: &FakePartnerCenter) -> PartnerCenterSettings {
    PartnerCenterSettings {
        tenant_id: "partner-tenant".into(),
        client_id: "riskdesk-app".into(),
        client_secret: "secret".into(),
        rest_base: fake.url.clone(),
        token_authority: format!("{}/", fake.url),
        resource: "https://api.partnercenter.microsoft.com".into(),
        timeout_ms: 2_000,
        retries: 2,
        backoff_ms: 20,
        max_wait_seconds: 2,
        requests_per_minute: 500,
        redirect_uri: String::new(),
        usage_currencies: Vec::new(),
        usage_page_size: 2000,
        activity_log: false,
        arm_base: String::new(),
    }
}

/// A running riskdesk: API and dashboard over one database.
pub struct Env {
    pub base: String,
    pub db: Db,
    pub admin: String,
    pub reports: Arc<riskdesk_ui::Reports>,
    pub http: reqwest::Client,
    pub pc: Option<FakePartnerCenter>,
    pub db_path: String,
    dir: tempfile::TempDir,
}

pub async fn env() -> Env {
    env_with(None).await
}

pub async fn env_with(pc: Option<FakePartnerCenter>) -> Env {
    env_full(pc, |_| riskdesk_ui::UiOptions::default()).await
}

/// With dashboard options made knowing the server's base URL (e.g. a redirect URI).
pub async fn env_full(
    pc: Option<FakePartnerCenter>,
    ui: impl FnOnce(&str) -> riskdesk_ui::UiOptions,
) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir
        .path()
        .join("riskdesk.db")
        .to_string_lossy()
        .into_owned();
    let db = Db::connect(
        &path,
        &DbOptions {
            sqlite_full_sync: false,
            ..DbOptions::default()
        },
    )
    .await
    .expect("database");
    db.migrate().await.expect("migrations");
    let (_, admin) = service::ensure_default_tenant(&db, jiff::Timestamp::now())
        .await
        .expect("default tenant")
        .expect("new tenant");
    // The port is chosen first, so the options can name the server's address.
    let port = free_port();
    let mut opts = ServerOptions {
        provider_interval: Duration::from_millis(100),
        ..ServerOptions::default()
    };
    if let Some(fake) = &pc {
        // Connectable: Entra ID (the fake) sends the admin's browser back to this server.
        let mut settings = pc_settings(fake);
        settings.redirect_uri = format!("http://127.0.0.1:{port}/v1/provider/consent/callback");
        opts.partner_center.insert("global".into(), settings);
        opts.provider_token_keys = Some(Arc::new(
            riskdesk_app::kernel::secrets::TokenCipher::parse(
                &riskdesk_app::kernel::secrets::TokenCipher::generate("k1"),
            )
            .expect("a key"),
        ));
    }
    let reports = Arc::new(riskdesk_ui::Reports::default());
    let r2 = reports.clone();
    let ui = ui(&format!("http://127.0.0.1:{port}"));
    let app = Application::build_with(
        &format!("127.0.0.1:{port}"),
        db.clone(),
        Arc::new(SystemClock),
        &opts,
        move |app| riskdesk_ui::router(app, ui, r2),
    )
    .await
    .expect("bind");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    Env {
        base,
        db,
        admin,
        reports,
        http: reqwest::Client::new(),
        pc,
        db_path: path,
        dir,
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The tenant with this slug, created if needed.
    pub async fn tenant(&self, slug: &str) -> TenantId {
        let now = jiff::Timestamp::now();
        let mut tx = self.db.begin().await.unwrap();
        let t = match riskdesk_storage::tenants::by_slug_tx(&mut tx, slug)
            .await
            .unwrap()
        {
            Some(t) => t,
            None => service::create_tenant(
                &mut tx,
                &Actor::cli(),
                &TenantSlug::parse(slug).unwrap(),
                slug,
                now,
            )
            .await
            .unwrap(),
        };
        tx.commit().await.unwrap();
        t.tenant_id()
    }

    /// A staff account; returns its password.
    pub async fn user(&self, tenant: &str, email: &str, role: Role, locale: Locale) -> String {
        let t = self.tenant(tenant).await;
        let password = format!("pw-{}-correct-horse", email.len());
        let mut tx = self.db.begin().await.unwrap();
        staff::create_user(
            &mut tx,
            t,
            &Actor::cli(),
            &staff::CreateUser {
                email,
                name: email.split('@').next().unwrap(),
                role,
                password: Some(&password),
                locale,
            },
            jiff::Timestamp::now(),
        )
        .await
        .expect("create user");
        tx.commit().await.unwrap();
        password
    }

    /// An API token of `role` in tenant `slug`.
    pub async fn token(&self, slug: &str, role: Role) -> String {
        let t = self.tenant(slug).await;
        let mut tx = self.db.begin().await.unwrap();
        let (_, secret) = service::create_token(
            &mut tx,
            t,
            &Actor::cli(),
            "browser-test",
            role,
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        secret
    }

    pub async fn api(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("API request");
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    /// A customer (with one subscription), optionally linked to provider ids; its id and the
    /// subscription's.
    pub async fn customer(
        &self,
        token: &str,
        name: &str,
        link: Option<(&str, &str)>,
    ) -> (String, String) {
        let c = self
            .api(
                token,
                "POST",
                "/v1/customers",
                Some(
                    json!({"name": name, "domain": "contoso.com", "country": "FR",
                    "email": "billing@contoso.com", "phone": "+33142685300", "locale": "fr-FR",
                    "cloud_instance": "global"}),
                ),
            )
            .await;
        let cid = c["id"].as_str().unwrap().to_owned();
        let s = self
            .api(
                token,
                "POST",
                &format!("/v1/customers/{cid}/subscriptions"),
                Some(json!({"offer": "Azure plan", "quantity": 3})),
            )
            .await;
        let sid = s["id"].as_str().unwrap().to_owned();
        if let Some((pc_cust, pc_sub)) = link {
            self.api(
                token,
                "PUT",
                &format!("/v1/customers/{cid}/provider-link"),
                Some(json!({"provider_customer_id": pc_cust})),
            )
            .await;
            self.api(
                token,
                "PUT",
                &format!("/v1/subscriptions/{sid}/provider-link"),
                Some(json!({"provider_subscription_id": pc_sub})),
            )
            .await;
        }
        (cid, sid)
    }

    /// The provider's fraud notification for a customer: a critical alert, which opens a case.
    /// Returns the case id.
    pub async fn fraud_case(&self, token: &str, cid: &str) -> String {
        self.api(
            token,
            "POST",
            "/v1/events",
            Some(json!([{"type": "activity", "event_id": format!("fraud-{cid}"), "customer_id": cid,
                "time": jiff::Timestamp::now().to_string(), "operation": "provider_fraud_notification",
                "actor": "partner-center", "status": "succeeded", "properties": {}}])),
        )
        .await;
        let r = self
            .api(token, "GET", &format!("/v1/cases?customer_id={cid}"), None)
            .await;
        r["items"][0]["id"].as_str().expect("a case").to_owned()
    }

    /// Runs the real `riskdesk` binary against this database.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_riskdesk"))
            .args(args)
            .arg("--database-url")
            .arg(&self.db_path)
            .arg("--config")
            .arg(self.dir.path().join("absent.toml"))
            .env_remove("RISKDESK_BIND")
            .env_remove("RISKDESK_DATABASE_URL")
            .env("RISKDESK_LOG", "warn")
            .output()
            .expect("run riskdesk")
    }

    /// No page reported a CSP violation or a script error.
    pub fn assert_no_reports(&self) {
        assert_eq!(
            self.reports.count(),
            0,
            "pages reported CSP violations or script errors: {:?}",
            self.reports.last()
        );
    }
}

/// Signs in through the form; lands wherever the sign-in page was sent to go next.
pub async fn sign_in(c: &Client, env: &Env, email: &str, password: &str) {
    c.goto(&env.url("/ui/login")).await.unwrap();
    fill(c, "#email", email).await;
    fill(c, "#password", password).await;
    click(c, "#sign-in").await;
    wait_path(c, |p| !p.starts_with("/ui/login")).await;
}

pub async fn fill(c: &Client, css: &str, text: &str) {
    let e = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

pub async fn click(c: &Client, css: &str) {
    let e = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
    e.click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

pub async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .unwrap()
}

pub async fn exists(c: &Client, css: &str) -> bool {
    c.find(Locator::Css(css)).await.is_ok()
}

pub async fn path(c: &Client) -> String {
    let u = c.current_url().await.unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    }
}

/// Waits (up to 10 s) until the page's path and query satisfy `ok`; returns them.
pub async fn wait_path(c: &Client, ok: impl Fn(&str) -> bool) -> String {
    for _ in 0..200 {
        let p = path(c).await;
        if ok(&p) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h1 = match c.find(Locator::Css("h1")).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    panic!("the page stayed at {} (h1: {h1})", path(c).await);
}

/// Waits (up to `secs`) until the element's text satisfies `ok`; returns it.
pub async fn wait_text(c: &Client, css: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..secs * 10 {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
        {
            if ok(&t) {
                return t;
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} still reads '{last}'");
}

/// Presses keys on the page (not in a field).
pub async fn keys(c: &Client, keys: &str) {
    let body = c.find(Locator::Css("body")).await.unwrap();
    body.send_keys(keys).await.unwrap();
}

/// Where screenshots go: `target/browser-screenshots/` (kept by CI as artefacts).
pub fn shots_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
    std::fs::create_dir_all(&d).expect("screenshot dir");
    d
}

pub async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(shots_dir().join(format!("{name}.png")), png).expect("write screenshot");
}
