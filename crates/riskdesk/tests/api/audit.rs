use riskdesk_domain::Role;
use serde_json::json;

use crate::helpers::{backend_is_postgres, customer_body, spawn_app};

#[tokio::test]
async fn every_change_is_in_the_log_with_before_and_after() {
    let app = spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Contoso"))
        .await;
    let sub = app
        .create_subscription(&app.admin, c["id"].as_str().unwrap())
        .await;
    let sub_id = sub["id"].as_str().unwrap();
    app.act(&app.admin, sub_id, "suspend", "investigation")
        .await;

    let all = app.get(&app.admin, "/v1/audit?limit=500").await;
    let items = all.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "tenant.create",
            "token.create",
            "customer.create",
            "subscription.create",
            "subscription.suspend"
        ]
    );
    // Chained: each entry names its predecessor's hash.
    for w in items.windows(2) {
        assert_eq!(w[1]["prev_hash"], w[0]["hash"]);
        assert_eq!(
            w[1]["seq"].as_i64().unwrap(),
            w[0]["seq"].as_i64().unwrap() + 1
        );
    }
    let suspend = &items[4];
    assert_eq!(suspend["entity_type"], "subscription");
    assert_eq!(suspend["entity_id"], sub_id);
    assert_eq!(suspend["before"]["status"], "active");
    assert_eq!(suspend["after"]["status"], "suspended");
    assert_eq!(suspend["reason"], "investigation");
    assert_eq!(
        suspend["actor"],
        json!({"kind": "token", "name": "initial-admin", "role": "admin"})
    );

    let paged = app.get(&app.admin, "/v1/audit?limit=2").await;
    assert_eq!(paged.body["items"].as_array().unwrap().len(), 2);
    let next = paged.body["next_cursor"].as_str().unwrap();
    let page2 = app
        .get(&app.admin, &format!("/v1/audit?limit=2&cursor={next}"))
        .await;
    assert_eq!(page2.body["items"][0]["action"], "customer.create");
}

#[tokio::test]
async fn verify_passes_on_an_intact_chain_and_names_the_altered_entry() {
    let app = spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Contoso"))
        .await;
    let sub_id = app
        .create_subscription(&app.admin, c["id"].as_str().unwrap())
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.act(&app.admin, &sub_id, "suspend", "investigation")
        .await;
    app.token("reseller-b", Role::Admin).await;

    let out = app.cli(&["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // default: tenant, token, customer, subscription, suspend; reseller-b: tenant, token.
    assert!(stdout.contains("7 audit entries verified"), "{stdout}");

    // The log refuses updates through SQL...
    let tamper = "UPDATE audit_log SET reason = 'resolved' WHERE action = 'subscription.suspend'";
    let refused = app.db.execute_raw(tamper).await.is_err();
    assert!(refused, "the append-only trigger must refuse the update");
    // ...and an attacker who removes that guard is still caught by the chain.
    if backend_is_postgres() {
        app.raw_sql("DROP TRIGGER audit_log_no_change ON audit_log")
            .await;
    } else {
        app.raw_sql("DROP TRIGGER audit_log_no_update").await;
    }
    app.raw_sql(tamper).await;
    let out = app.cli(&["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("tenant default: BROKEN at entry 5"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tenant reseller-b: 2 entries, chain intact"),
        "{stdout}"
    );
}

/// Plays someone with write access to the database: the append-only trigger dropped, the
/// last entry deleted.
async fn remove_last_entry(app: &crate::helpers::TestApp) {
    if backend_is_postgres() {
        app.raw_sql("DROP TRIGGER audit_log_no_change ON audit_log")
            .await;
    } else {
        app.raw_sql("DROP TRIGGER audit_log_no_delete").await;
    }
    app.raw_sql("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")
        .await;
}

#[tokio::test]
async fn verify_finds_removed_entries() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_customer(&app.admin, customer_body(&format!("C{i}")))
            .await;
    }
    remove_last_entry(&app).await;
    let out = app.cli(&["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("BROKEN at entry 5"), "{stdout}");
}

#[tokio::test]
async fn concurrent_writers_never_fork_the_chain() {
    let app = spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Contoso"))
        .await;
    let c_id = c["id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let client = app.client.clone();
        let url = if i % 2 == 0 {
            format!("{}/v1/customers", app.base)
        } else {
            format!("{}/v1/customers/{c_id}/subscriptions", app.base)
        };
        let body = if i % 2 == 0 {
            customer_body(&format!("C{i}"))
        } else {
            json!({"offer": format!("Offer {i}")})
        };
        let token = app.admin.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let out = app.cli(&["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("27 audit entries verified"), "{stdout}");
}

/// Someone with write access to the database can cut the chain back and fix its head, so that
/// the chain is consistent in itself and `audit verify` passes; a checkpoint signed before,
/// kept outside the database, shows it.
#[tokio::test]
async fn signed_checkpoints_show_a_chain_rewritten_consistently_after_them() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_customer(&app.admin, customer_body(&format!("C{i}")))
            .await;
    }
    let keygen = String::from_utf8(app.cli(&["audit", "keygen"]).stdout).unwrap();
    let value = |name: &str| {
        keygen
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{keygen}"))
            .to_owned()
    };
    let (seed, public) = (value("audit_signing_key"), value("public_key"));
    let sign = |seed: &str| {
        let out = app
            .cli_command(&["audit", "checkpoint"])
            .env("RISKDESK_AUDIT_SIGNING_KEY", seed)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints.jsonl");
    std::fs::write(&file, sign(&seed)).unwrap();
    let verify = |file: &std::path::Path| {
        let out = app.cli(&[
            "audit",
            "verify",
            "--checkpoints",
            file.to_str().unwrap(),
            "--public-key",
            &public,
        ]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = verify(&file);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("1 checkpoints match the chain"), "{text}");

    // The consistent rewrite: the last entry removed and the head moved back to the one before.
    remove_last_entry(&app).await;
    app.raw_sql(
        "UPDATE audit_heads SET seq = seq - 1, hash = (SELECT l.hash FROM audit_log l \
         WHERE l.tenant_id = audit_heads.tenant_id AND l.seq = audit_heads.seq - 1) \
         WHERE seq > 0",
    )
    .await;
    let plain = app.cli(&["audit", "verify"]);
    assert_eq!(
        plain.status.code(),
        Some(0),
        "the chain alone cannot tell: {}",
        String::from_utf8_lossy(&plain.stdout)
    );
    let (code, text) = verify(&file);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("MISSING: the chain no longer holds the entry"),
        "{text}"
    );
    // Nor can the rewriter sign for the new head: a checkpoint under another key fails.
    let (_, forger) = {
        let k = String::from_utf8(app.cli(&["audit", "keygen"]).stdout).unwrap();
        let seed = k
            .lines()
            .next()
            .unwrap()
            .split('"')
            .nth(1)
            .unwrap()
            .to_owned();
        (k, seed)
    };
    let forged = dir.path().join("forged.jsonl");
    std::fs::write(&forged, sign(&forger)).unwrap();
    let (code, text) = verify(&forged);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("does not verify with this public key"),
        "{text}"
    );
}
