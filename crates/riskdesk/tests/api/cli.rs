use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::spawn_app;

#[tokio::test]
async fn token_create_prints_only_the_token_and_it_works() {
    let app = spawn_app().await;
    let out = app.cli(&["tenant", "create", "reseller-x", "--name", "Reseller X"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = app.cli(&[
        "token",
        "create",
        "--tenant",
        "reseller-x",
        "--role",
        "analyst",
        "--name",
        "alice",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let token = lines[0];
    assert!(token.starts_with("rdk_"));
    let me = app.get(token, "/v1/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["name"], "alice");
    assert_eq!(me.body["role"], "analyst");

    let list = app.cli(&["token", "list", "--tenant", "reseller-x"]);
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(listed.contains("alice\tanalyst\tactive"), "{listed}");
    assert!(!listed.contains(token), "secrets are never listed");

    let bad = app.cli(&[
        "token",
        "create",
        "--tenant",
        "reseller-x",
        "--role",
        "root",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("not one of admin, analyst, collections, auditor")
    );
    let bad = app.cli(&["token", "create", "--tenant", "nobody", "--role", "admin"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no tenant 'nobody'"));
    let bad = app.cli(&["tenant", "create", "reseller-x"]);
    assert!(!bad.status.success(), "a tenant slug is unique");
}

/// `riskdesk serve` on a fresh database: prints a one-time admin token, loads the demo book,
/// and answers; a second start prints no token.
#[tokio::test]
async fn serve_first_start_and_demo() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let start = |demo: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_riskdesk"));
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--database-url"])
            .arg(&db)
            .arg("--config")
            .arg(dir.path().join("none.toml"));
        if demo {
            cmd.arg("--demo");
        }
        cmd.env("RISKDESK_SQLITE_SYNCHRONOUS", "normal")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let read_until_listening = |child: &mut std::process::Child| {
        let mut lines = Vec::new();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        loop {
            let mut l = String::new();
            if reader.read_line(&mut l).unwrap() == 0 {
                panic!("server exited early: {lines:?}");
            }
            let done = l.starts_with("riskdesk listening on ");
            lines.push(l.trim_end().to_owned());
            if done {
                return lines;
            }
        }
    };

    let mut child = start(true);
    let lines = read_until_listening(&mut child);
    let token = lines
        .iter()
        .find(|l| l.starts_with("rdk_"))
        .expect("a one-time admin token")
        .clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Loaded the demo book: 32 customers")),
        "{lines:?}"
    );
    let base = lines
        .last()
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let page: serde_json::Value = client
        .get(format!("{base}/v1/customers?limit=500"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let customers = page["items"].as_array().unwrap();
    assert_eq!(customers.len(), 32);
    // The demo's people can sign in to the dashboard with the password printed for them.
    let signin = lines
        .iter()
        .find(|l| l.contains("demo sign-in (analyst): analyst@demo.riskdesk.example / "))
        .unwrap_or_else(|| panic!("a demo sign-in: {lines:?}"));
    let password = signin.rsplit(" / ").next().unwrap().trim();
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .post(format!("{base}/ui/login"))
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[
            ("email", "analyst@demo.riskdesk.example"),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("__Host-riskdesk_session="),
        "{:?}",
        r.headers()
    );
    // The case queue has something to show: a provider fraud event and an AUP notice.
    let cases: serde_json::Value = client
        .get(format!("{base}/v1/cases"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kinds: Vec<&str> = cases["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["provider_fraud", "provider_notice"], "{cases}");
    for inst in ["global", "us_government", "germany", "china_21vianet"] {
        assert!(
            customers
                .iter()
                .filter(|c| c["cloud_instance"] == inst)
                .count()
                >= 6,
            "{inst}"
        );
    }
    let mut statuses = std::collections::BTreeSet::new();
    for c in customers {
        let subs: serde_json::Value = client
            .get(format!(
                "{base}/v1/customers/{}/subscriptions",
                c["id"].as_str().unwrap()
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for s in subs["items"].as_array().unwrap() {
            statuses.insert(s["status"].as_str().unwrap().to_owned());
            if c["cloud_instance"] == "china_21vianet" {
                assert_ne!(
                    s["status"], "cancelled",
                    "21Vianet subscriptions are never cancelled"
                );
            }
        }
    }
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        ["active", "cancelled", "disabled", "suspended"]
    );
    // The demo book has receivables: 45-day-old invoices (some unpaid or half paid) and
    // current ones.
    let aging: serde_json::Value = client
        .get(format!("{base}/v1/reports/aging"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let eur = &aging["totals"][0];
    assert_eq!(eur["currency"], "EUR", "{aging}");
    assert_ne!(eur["amounts"][0], "0.00", "{aging}");
    assert_ne!(eur["amounts"][2], "0.00", "{aging}");
    child.kill().unwrap();
    child.wait().unwrap();

    let mut child = start(true);
    let lines = read_until_listening(&mut child);
    assert!(
        !lines.iter().any(|l| l.starts_with("rdk_")),
        "no second token: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("Demo book not loaded")),
        "{lines:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `riskdesk signups assess FILE.jsonl`: one JSON line out per line in, invalid lines named,
/// velocity counted across the batch.
#[tokio::test]
async fn batch_assessment_offline() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let line = |email: &str, ip: &str| {
        serde_json::json!({
            "company": {"name": "Contoso", "domain": "contoso.co.uk", "country": "GB"},
            "contact": {"email": email},
            "ip": ip,
            "cloud_instance": "global",
            "as_of": "2026-11-01T12:00:00Z",
        })
        .to_string()
    };
    let lines = [
        line("a@contoso.co.uk", "203.0.113.1"),
        line("b@mailinator.com", "203.0.113.2"),
        "{\"company\": 1}".to_owned(),
        line("c@contoso.co.uk", "198.51.100.9"),
        line("d@contoso.co.uk", "198.51.100.9"),
        line("e@contoso.co.uk", "198.51.100.9"),
        line("f@contoso.co.uk", "198.51.100.9"),
    ];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = app.cli(&["signups", "assess", input.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 7);
    assert_eq!(results[0]["assessment"]["decision"], "approve");
    assert_eq!(
        results[1]["assessment"]["reasons"][0]["code"],
        "email_disposable"
    );
    assert_eq!(results[2]["line"], 3);
    assert_eq!(results[2]["error"]["status"], 422);
    let fired = |r: &serde_json::Value| {
        r["assessment"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["code"] == "velocity_ip")
    };
    assert!(
        !fired(&results[5]),
        "the third sign-up from one IP is within the limit"
    );
    assert!(fired(&results[6]), "the fourth exceeds 3 in 10 minutes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("7 lines") && stderr.contains("1 invalid"),
        "{stderr}"
    );
}

#[tokio::test]
async fn data_status_and_policy_check() {
    let app = spawn_app().await;
    let out = app.cli(&["data", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for name in [
        "disposable_domains",
        "free_mail_domains",
        "bin_table",
        "fatf_lists",
        "geoip_location",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(
        text.contains("not configured: IP signals are skipped"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[onboarding]\nreview_at = 25\nreject_at = 60\n").unwrap();
    let out = app.cli(&["policy", "check", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[onboarding]\nreject_at = 10\ncredit_currency = \"EURO\"\n[onboarding.points]\nemail_typo = 5\n").unwrap();
    let out = app.cli(&["policy", "check", bad.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for needle in ["reject_at", "credit_currency", "points.email_typo"] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }

    // A corrupt GeoIP database stops the start-up with a message naming it.
    let cfg = dir.path().join("geo.toml");
    let bad_db = dir.path().join("bad.mmdb");
    std::fs::write(&bad_db, b"garbage").unwrap();
    std::fs::write(
        &cfg,
        format!("[data]\ngeoip_location = \"{}\"\n", bad_db.display()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_riskdesk"))
        .args(["data", "status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("location database") && err.contains("not a readable MaxMind database"),
        "{err}"
    );
}

#[tokio::test]
async fn prune_removes_only_what_has_expired() {
    let app = spawn_app().await;
    let body = |n: u32| {
        serde_json::json!({
            "company": {"name": "Contoso", "domain": "contoso.co.uk", "country": "GB"},
            "contact": {"email": format!("u{n}@contoso.co.uk")},
            "ip": "203.0.113.50",
            "cloud_instance": "global",
            "as_of": if n == 0 { "2026-01-01T00:00:00Z".to_owned() } else { jiff::Timestamp::now().to_string() },
        })
    };
    // One sign-up long ago and one now; the old one's velocity rows are past every window.
    let recent = body(1);
    app.post(&app.admin, "/v1/signups/assess", &body(0)).await;
    app.post_with_key(&app.admin, "/v1/signups/assess", "recent-key", &recent)
        .await;
    let out = app.cli(&["prune"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ip, ip_subnet and email_domain rows of the old sign-up; nothing recent; the fresh key kept.
    assert!(
        text.contains("pruned 3 velocity rows, 0 idempotency keys"),
        "{text}"
    );
    let again = app
        .post_with_key(&app.admin, "/v1/signups/assess", "recent-key", &recent)
        .await;
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
}
