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
    // Chained: each entry names its predecessor's hash in its lane, at the next position
    // (one lane on SQLite; on PostgreSQL each connection appends to its own).
    let mut lanes: std::collections::HashMap<i64, (i64, String)> = Default::default();
    for e in items {
        let (lane, seq) = (e["lane"].as_i64().unwrap(), e["seq"].as_i64().unwrap());
        let (prev_seq, prev_hash) = lanes
            .get(&lane)
            .cloned()
            .unwrap_or((0, riskdesk_domain::audit::GENESIS_HASH.to_owned()));
        assert_eq!(
            (seq, e["prev_hash"].as_str().unwrap()),
            (prev_seq + 1, &*prev_hash),
            "{e}"
        );
        lanes.insert(lane, (seq, e["hash"].as_str().unwrap().to_owned()));
    }
    if !backend_is_postgres() {
        assert_eq!(lanes.keys().collect::<Vec<_>>(), [&0]);
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

    let stdout = verified(&app);
    // default: tenant, token, customer, subscription, suspend; reseller-b: tenant, token.
    assert!(stdout.contains("7 audit entries verified"), "{stdout}");

    // The log refuses updates through SQL...
    let tamper = "UPDATE audit_log SET reason = 'resolved' WHERE action = 'subscription.suspend'";
    let suspend = app
        .get(&app.admin, "/v1/audit?action=subscription.suspend")
        .await;
    let at = place(&suspend.body["items"][0]);
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
        stdout.contains(&format!("tenant default: BROKEN at entry {at}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("tenant reseller-b: 2 entries, chain intact"),
        "{stdout}"
    );
}

/// A new signing key from `riskdesk audit keygen`: (seed, public key).
fn keygen(app: &crate::helpers::TestApp) -> (String, String) {
    let out = String::from_utf8(app.cli(&["audit", "keygen"]).stdout).unwrap();
    let value = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{out}"))
            .to_owned()
    };
    (value("audit_signing_key"), value("public_key"))
}

/// Where an entry of `GET /v1/audit` is, as `riskdesk audit verify` names it: "5", or "5 of
/// lane 3" (PostgreSQL splits a tenant's chain into lanes; SQLite has lane 0 only).
fn place(entry: &serde_json::Value) -> String {
    let (lane, seq) = (
        entry["lane"].as_i64().unwrap(),
        entry["seq"].as_i64().unwrap(),
    );
    if lane == 0 {
        format!("{seq}")
    } else {
        format!("{seq} of lane {lane}")
    }
}

/// Plays someone with write access to the database: the append-only trigger dropped, the
/// default tenant's last entry deleted. Returns that entry's (lane, seq).
async fn remove_last_entry(app: &crate::helpers::TestApp) -> (i64, i64) {
    let all = app.get(&app.admin, "/v1/audit?limit=500").await;
    let items = all.body["items"].as_array().unwrap();
    assert!(items.len() < 500);
    let last = items.last().unwrap();
    let (lane, seq) = (
        last["lane"].as_i64().unwrap(),
        last["seq"].as_i64().unwrap(),
    );
    if backend_is_postgres() {
        app.raw_sql("DROP TRIGGER audit_log_no_change ON audit_log")
            .await;
    } else {
        app.raw_sql("DROP TRIGGER audit_log_no_delete").await;
    }
    app.raw_sql(&format!(
        "DELETE FROM audit_log WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'default') \
         AND lane = {lane} AND seq = {seq}"
    ))
    .await;
    (lane, seq)
}

#[tokio::test]
async fn verify_finds_removed_entries() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_customer(&app.admin, customer_body(&format!("C{i}")))
            .await;
    }
    let (lane, seq) = remove_last_entry(&app).await;
    let out = app.cli(&["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let at = place(&serde_json::json!({"lane": lane, "seq": seq}));
    assert!(
        stdout.contains(&format!("BROKEN at entry {at}:")),
        "{stdout}"
    );
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
    let stdout = verified(&app);
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
    let (seed, public) = keygen(&app);
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
    let signed = sign(&seed);
    // One checkpoint per lane with entries (one on SQLite).
    let lanes = signed.lines().count();
    assert!(lanes >= 1, "{signed}");
    std::fs::write(&file, signed).unwrap();
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
    assert!(
        text.contains(&format!("{lanes} checkpoints match the chain")),
        "{text}"
    );

    // The consistent rewrite: the last entry removed and its lane's head moved back to the
    // one before.
    let (lane, _) = remove_last_entry(&app).await;
    app.raw_sql(&format!(
        "UPDATE audit_heads SET seq = seq - 1, hash = COALESCE((SELECT l.hash FROM audit_log l \
         WHERE l.tenant_id = audit_heads.tenant_id AND l.lane = audit_heads.lane AND l.seq = audit_heads.seq - 1), \
         '{}') WHERE lane = {lane} AND tenant_id = (SELECT id FROM tenants WHERE slug = 'default')",
        riskdesk_domain::audit::GENESIS_HASH
    ))
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

/// The scheduler's `audit-checkpoint` job signs the lane heads that moved and stores them; the
/// API and `riskdesk audit checkpoints` export them (each tenant sees its own), and the export
/// is what `audit verify --checkpoints` reads.
// The scheduler under test is a separate `riskdesk worker` process: this server runs the API
// only (its own scheduler would hold lease rows the worker waits for), on several threads (it
// must answer while this test waits for the worker).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_stores_signed_checkpoints_that_an_auditor_exports_and_checks() {
    let app = crate::helpers::spawn_app_with(riskdesk_http::ServerOptions {
        roles: riskdesk_app::workers::Roles::API,
        ..riskdesk_http::ServerOptions::default()
    })
    .await;
    for i in 0..3 {
        app.create_customer(&app.admin, customer_body(&format!("C{i}")))
            .await;
    }
    let other = app.token("reseller-b", Role::Admin).await;
    let (seed, public) = keygen(&app);
    let scheduler = || {
        let out = app
            .cli_command(&["worker", "--roles", "scheduler", "--once"])
            .env("RISKDESK_AUDIT_SIGNING_KEY", &seed)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .find_map(|l| l.strip_prefix("audit-checkpoint: ran ("))
            .and_then(|l| l.strip_suffix(" lane heads checkpointed)"))
            .unwrap_or_else(|| panic!("{text}"))
            .parse::<usize>()
            .unwrap()
    };
    let first = scheduler();
    let mine = app.get(&app.admin, "/v1/audit/checkpoints").await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    let items = mine.body["items"].as_array().unwrap().clone();
    let theirs = app.get(&other, "/v1/audit/checkpoints").await;
    let their_items = theirs.body["items"].as_array().unwrap();
    assert_eq!(first, items.len() + their_items.len());
    let tenant = items[0]["tenant_id"].clone();
    assert!(items.iter().all(|c| c["tenant_id"] == tenant));
    assert!(their_items.iter().all(|c| c["tenant_id"] != tenant));
    // Each checkpoint names the head of its lane as the log shows it.
    let log = app.get(&app.admin, "/v1/audit?limit=500").await;
    for c in &items {
        let last = log.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["lane"] == c["lane"])
            .last()
            .unwrap();
        assert_eq!((&last["seq"], &last["hash"]), (&c["seq"], &c["hash"]));
    }
    // Nothing moved: nothing new to sign. One more entry: its lane is signed again.
    assert_eq!(scheduler(), 0);
    app.create_customer(&app.admin, customer_body("C3")).await;
    assert_eq!(scheduler(), 1);
    let paged = app.get(&app.admin, "/v1/audit/checkpoints?limit=1").await;
    assert_eq!(paged.body["items"].as_array().unwrap().len(), 1);
    let bad = app
        .get(&app.admin, "/v1/audit/checkpoints?cursor=bm9wZQ")
        .await;
    assert_eq!(
        bad.problem(422)["errors"][0]["field"],
        "cursor",
        "{}",
        bad.body
    );

    // The export, checked by the auditor against the public key and the chain.
    let out = app.cli(&["audit", "checkpoints", "--tenant", "default"]);
    assert!(out.status.success());
    let export = String::from_utf8(out.stdout).unwrap();
    assert_eq!(export.lines().count(), items.len() + 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.jsonl");
    std::fs::write(&file, &export).unwrap();
    let out = app.cli(&[
        "audit",
        "verify",
        "--checkpoints",
        file.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("{} checkpoints match the chain", items.len() + 1)),
        "{text}"
    );
    let none = app.cli(&["audit", "checkpoints", "--tenant", "nobody"]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no tenant 'nobody'"));
}

struct Lane(i64);
impl riskdesk_storage::query::FromRow for Lane {
    fn from_row(r: &dyn riskdesk_storage::query::RowLike) -> riskdesk_storage::Result<Self> {
        Ok(Lane(r.i64("lane")?))
    }
}

/// On PostgreSQL a tenant's chain has lanes: a writer appends to its transaction's lane, so two
/// writers of one tenant on different lanes do not wait for each other (the second commits
/// while the first still holds its lane), while two on the same lane still queue (that lock is
/// what keeps a lane from forking). SQLite has one writer and one lane per tenant.
#[tokio::test]
async fn writers_of_one_tenant_wait_only_for_writers_of_the_same_lane() {
    use riskdesk_domain::TenantId;
    use riskdesk_domain::audit::Actor;
    use riskdesk_storage::audit::{self, AuditDraft};
    use riskdesk_storage::query::Q;
    let app = spawn_app().await;
    let tenants = riskdesk_storage::tenants::list(&app.db).await.unwrap();
    let tenant = TenantId(tenants.iter().find(|t| t.slug == "default").unwrap().id);
    let heads: Vec<Lane> = app
        .db
        .fetch_all(
            Q::new("SELECT lane FROM audit_heads WHERE tenant_id = $1 ORDER BY lane")
                .bind(tenant.0),
        )
        .await
        .unwrap();
    if !backend_is_postgres() {
        assert_eq!(heads.iter().map(|l| l.0).collect::<Vec<_>>(), [0]);
        return;
    }
    assert_eq!(
        heads.iter().map(|l| l.0).collect::<Vec<_>>(),
        (0..32).collect::<Vec<_>>()
    );
    let actor = Actor::cli();
    let now = jiff::Timestamp::now();
    // The lane a transaction's entry went to (each transaction of a process takes a lane no
    // other transaction of the process is appending to).
    let lane_of = async |tx: &mut riskdesk_storage::Tx, action: &'static str| {
        tx.fetch_optional::<Lane>(
            Q::new("SELECT CAST(lane AS BIGINT) AS lane FROM audit_log WHERE tenant_id = $1 AND action = $2")
                .bind(tenant.0)
                .bind(action),
        )
        .await
        .unwrap()
        .unwrap()
        .0
    };
    let mut first = app.db.begin().await.unwrap();
    audit::append(
        &mut first,
        tenant,
        now,
        AuditDraft::new(&actor, "test.first", "tenant", "t"),
    )
    .await
    .unwrap();
    let first_lane = lane_of(&mut first, "test.first").await;
    let mut other = app.db.begin().await.unwrap();
    other
        .execute(Q::new("SET LOCAL lock_timeout = '5s'"))
        .await
        .unwrap();
    audit::append(
        &mut other,
        tenant,
        now,
        AuditDraft::new(&actor, "test.other", "tenant", "t"),
    )
    .await
    .expect("a writer on another lane does not wait for the first");
    assert_ne!(lane_of(&mut other, "test.other").await, first_lane);
    other.commit().await.unwrap();
    // The first's lane is still locked: a writer there would queue.
    let mut probe = app.db.begin().await.unwrap();
    probe
        .execute(Q::new("SET LOCAL lock_timeout = '200ms'"))
        .await
        .unwrap();
    let blocked = probe
        .execute(
            Q::new("UPDATE audit_heads SET seq = seq WHERE tenant_id = $1 AND lane = $2")
                .bind(tenant.0)
                .bind(first_lane),
        )
        .await;
    assert!(
        blocked.is_err(),
        "the first writer's lane must stay locked until it commits"
    );
    drop(probe);
    first.commit().await.unwrap();
    verified(&app);
}

/// On PostgreSQL a process appends with one statement when it knows its lane's head, and only
/// if the head is still there. Every remembered head made stale (as if other processes had
/// appended meanwhile), each action falls back to reading the head: the answers are right, the
/// chain verifies, and the heads are remembered again for the next appends.
#[tokio::test]
async fn appends_whose_lane_moved_elsewhere_fall_back_and_keep_the_chain() {
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
    let tenant = riskdesk_storage::tenants::list(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.slug == "default")
        .unwrap()
        .id;
    let mut expected = vec!["subscription.create".to_owned()];
    for round in 0..8 {
        if round % 2 == 0 {
            riskdesk_storage::audit::testing::make_hints_stale(tenant);
        }
        let (action, reason, done) = if round % 2 == 0 {
            ("suspend", "investigation", "subscription.suspend")
        } else {
            ("reactivate", "resolved", "subscription.reactivate")
        };
        let r = app.act(&app.admin, &sub_id, action, reason).await;
        assert_eq!(r.status, 200, "{}", r.body);
        expected.push(done.to_owned());
        let history: Vec<String> = r.body["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(history, expected, "round {round}");
        let got = app
            .get(&app.admin, &format!("/v1/subscriptions/{sub_id}"))
            .await;
        assert_eq!(got.body, r.body, "round {round}: GET shows the same");
    }
    if backend_is_postgres() {
        // After the last (fallen back) append, its lane's real head is remembered again.
        let last = &got_last_entry(&app, &sub_id).await;
        let lane = last["lane"].as_i64().unwrap() as i32;
        let head = riskdesk_storage::audit::heads(&app.db)
            .await
            .unwrap()
            .into_iter()
            .find(|h| h.tenant_id == tenant && h.lane == lane)
            .unwrap();
        assert_eq!(
            riskdesk_storage::audit::testing::hint(tenant, lane),
            Some((head.seq, head.hash.clone()))
        );
        assert_eq!(last["hash"], head.hash.as_str());
    }
    // An invoice is inserted, audited and its customer read in one statement when the head
    // is known: with the head stale, with it known again, and for a customer the tenant does
    // not have (refused, nothing kept).
    let cid = c["id"].as_str().unwrap();
    for (i, stale, customer) in [
        (0, true, cid.to_owned()),
        (1, false, cid.to_owned()),
        (2, true, uuid::Uuid::now_v7().to_string()),
        (3, false, uuid::Uuid::now_v7().to_string()),
    ] {
        if stale {
            riskdesk_storage::audit::testing::make_hints_stale(tenant);
        }
        let r = app
            .post(
                &app.admin,
                "/v1/invoices",
                &json!({"customer_id": customer, "number": format!("INV-{i}"),
                        "issue_date": "2026-11-01", "due_date": "2026-12-01", "currency": "EUR",
                        "lines": [{"description": "usage", "amount": "10.00"}], "total": "10.00"}),
            )
            .await;
        if customer == cid {
            assert_eq!(r.status, 201, "{}", r.body);
            let got = app
                .get(
                    &app.admin,
                    &format!("/v1/invoices/{}", r.body["id"].as_str().unwrap()),
                )
                .await;
            assert_eq!(got.body["number"], format!("INV-{i}"));
        } else {
            assert_eq!(r.status, 422, "{}", r.body);
            assert!(
                r.body["detail"].as_str().unwrap().contains("customer_id"),
                "{}",
                r.body
            );
        }
    }
    let invoices = app.get(&app.admin, "/v1/invoices").await;
    assert_eq!(
        invoices.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        invoices.body
    );
    let stdout = verified(&app);
    // tenant, token, customer, subscription, the eight actions and the two invoices.
    assert!(stdout.contains("14 audit entries verified"), "{stdout}");
}

/// The last entry `GET /v1/audit` lists for `entity`.
async fn got_last_entry(app: &crate::helpers::TestApp, entity: &str) -> serde_json::Value {
    let r = app
        .get(
            &app.admin,
            &format!("/v1/audit?entity_id={entity}&limit=500"),
        )
        .await;
    r.body["items"].as_array().unwrap().last().unwrap().clone()
}

/// `riskdesk audit verify` over the test's database, which must pass; what it printed.
fn verified(app: &crate::helpers::TestApp) -> String {
    let out = app.cli(&["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
