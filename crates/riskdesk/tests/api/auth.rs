use riskdesk_domain::Role;
use serde_json::json;

use crate::helpers::{customer_body, spawn_app};

#[tokio::test]
async fn no_token_bad_token_and_revoked_token_are_401() {
    let app = spawn_app().await;
    let r = app
        .send(app.client.get(format!("{}/v1/customers", app.base)))
        .await;
    r.problem(401);
    assert_eq!(r.headers.get("www-authenticate").unwrap(), "Bearer");
    let r = app.get("rdk_not-a-real-token", "/v1/customers").await;
    r.problem(401);
    let r = app
        .send(
            app.client
                .get(format!("{}/v1/customers", app.base))
                .header("authorization", format!("Basic {}", app.admin)),
        )
        .await;
    r.problem(401);

    let analyst = app.token("default", Role::Analyst).await;
    assert_eq!(app.get(&analyst, "/v1/customers").await.status, 200);
    let me = app.get(&analyst, "/v1/me").await;
    assert_eq!(me.body["role"], "analyst");
    let out = app.cli(&["token", "revoke", me.body["token_id"].as_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Revoked from another process: refused once the server's token cache (1 s) expires.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.get(&analyst, "/v1/customers").await.problem(401);
}

#[tokio::test]
async fn roles_limit_what_a_token_may_do() {
    let app = spawn_app().await;
    let auditor = app.token("default", Role::Auditor).await;
    let analyst = app.token("default", Role::Analyst).await;
    let collections = app.token("default", Role::Collections).await;

    let c = app
        .create_customer(&analyst, customer_body("By analyst"))
        .await;
    let sub = app
        .create_subscription(&analyst, c["id"].as_str().unwrap())
        .await;
    let sub_id = sub["id"].as_str().unwrap();

    // The auditor reads everything, including the audit log, and changes nothing.
    assert_eq!(app.get(&auditor, "/v1/customers").await.status, 200);
    assert_eq!(app.get(&auditor, "/v1/audit").await.status, 200);
    app.post(&auditor, "/v1/customers", &customer_body("x"))
        .await
        .problem(403);
    app.act(&auditor, sub_id, "suspend", "fraud")
        .await
        .problem(403);

    // Analysts act on subscriptions but do not read the audit log.
    assert_eq!(
        app.act(&analyst, sub_id, "suspend", "fraud").await.status,
        200
    );
    app.get(&analyst, "/v1/audit").await.problem(403);

    // Collections staff read customers but take no lifecycle action in this API.
    assert_eq!(
        app.get(&collections, &format!("/v1/subscriptions/{sub_id}"))
            .await
            .status,
        200
    );
    app.act(&collections, sub_id, "reactivate", "resolved")
        .await
        .problem(403);

    // The audit entry names who acted.
    let audit = app
        .get(
            &app.admin,
            &format!("/v1/audit?entity_id={sub_id}&action=subscription.suspend"),
        )
        .await;
    assert_eq!(
        audit.body["items"][0]["actor"],
        json!({"kind": "token", "name": "analyst-test", "role": "analyst"})
    );
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let app = spawn_app().await;
    let a_admin = app.admin.clone();
    let b_admin = app.token("reseller-b", Role::Admin).await;

    let c = app
        .create_customer(&a_admin, customer_body("Tenant A customer"))
        .await;
    let c_id = c["id"].as_str().unwrap();
    let sub_id = app.create_subscription(&a_admin, c_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another tenant's objects are "not found", never "forbidden".
    app.get(&b_admin, &format!("/v1/customers/{c_id}"))
        .await
        .problem(404);
    app.patch(
        &b_admin,
        &format!("/v1/customers/{c_id}"),
        &json!({"name": "pwned"}),
    )
    .await
    .problem(404);
    app.get(&b_admin, &format!("/v1/subscriptions/{sub_id}"))
        .await
        .problem(404);
    app.get(&b_admin, &format!("/v1/customers/{c_id}/subscriptions"))
        .await
        .problem(404);
    app.post(
        &b_admin,
        &format!("/v1/customers/{c_id}/subscriptions"),
        &json!({"offer": "x"}),
    )
    .await
    .problem(404);
    app.act(&b_admin, &sub_id, "cancel", "fraud")
        .await
        .problem(404);
    assert_eq!(
        app.get(&b_admin, "/v1/customers").await.body["items"],
        json!([])
    );
    let b_audit = app
        .get(&b_admin, &format!("/v1/audit?entity_id={c_id}"))
        .await;
    assert_eq!(b_audit.body["items"], json!([]));

    // And nothing changed in tenant A.
    let sub = app
        .get(&a_admin, &format!("/v1/subscriptions/{sub_id}"))
        .await;
    assert_eq!(sub.body["status"], "active");
    assert_eq!(
        app.get(&a_admin, &format!("/v1/customers/{c_id}"))
            .await
            .body["name"],
        "Tenant A customer"
    );
}

/// The scheme is case-insensitive (RFC 9110 §11.1); two Authorization headers are ambiguous
/// and refused whatever their order (issue 18: the first one won).
#[tokio::test]
async fn any_case_of_bearer_works_and_two_authorization_headers_are_refused() {
    let app = spawn_app().await;
    let url = format!("{}/v1/customers", app.base);
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = app
            .send(
                app.client
                    .get(&url)
                    .header("authorization", format!("{scheme} {}", app.admin)),
            )
            .await;
        assert_eq!(r.status, 200, "{scheme}: {}", r.body);
    }
    for (first, second) in [
        (app.admin.clone(), "rdk_not_a_token".to_owned()),
        ("rdk_not_a_token".to_owned(), app.admin.clone()),
        (app.admin.clone(), app.admin.clone()),
    ] {
        let r = app
            .send(
                app.client
                    .get(&url)
                    .header("authorization", format!("Bearer {first}"))
                    .header("authorization", format!("Bearer {second}")),
            )
            .await;
        let p = r.problem(401);
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("more than one Authorization header"),
            "{p}"
        );
    }
}
