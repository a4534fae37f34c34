use serde_json::json;

use crate::helpers::{customer_body, spawn_app};

#[tokio::test]
async fn create_then_read_a_customer() {
    let app = spawn_app().await;
    let mut body = customer_body("Contoso Ltd");
    body["external_id"] = json!("pc-4711");
    let created = app.create_customer(&app.admin, body).await;
    assert_eq!(created["name"], "Contoso Ltd");
    assert_eq!(created["country"], "FR");
    assert_eq!(created["locale"], "fr-FR");
    assert_eq!(created["cloud_instance"], "global");
    assert_eq!(created["external_id"], "pc-4711");
    let created_at = created["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.parse::<jiff::Timestamp>().is_ok(),
        "{created_at}"
    );

    let got = app
        .get(
            &app.admin,
            &format!("/v1/customers/{}", created["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, created);
}

#[tokio::test]
async fn values_are_normalised_and_locale_defaults_to_english() {
    let app = spawn_app().await;
    let c = app
        .create_customer(
            &app.admin,
            json!({"name": "  Fabrikam  ", "domain": "Fabrikam.COM", "country": "us", "email": "Ops@Fabrikam.com", "cloud_instance": "us_government"}),
        )
        .await;
    assert_eq!(c["name"], "Fabrikam");
    assert_eq!(c["domain"], "fabrikam.com");
    assert_eq!(c["country"], "US");
    assert_eq!(c["email"], "Ops@fabrikam.com");
    assert_eq!(c["locale"], "en");
    assert_eq!(c["phone"], serde_json::Value::Null);
}

#[tokio::test]
async fn every_invalid_field_is_named() {
    let app = spawn_app().await;
    let r = app
        .post(
            &app.admin,
            "/v1/customers",
            &json!({"name": "", "domain": "nodot", "country": "ZZ", "email": "x@", "phone": "0142", "locale": "de-DE", "cloud_instance": "mars"}),
        )
        .await;
    r.problem(422);
    let mut fields = r.fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            "cloud_instance",
            "country",
            "domain",
            "email",
            "locale",
            "name",
            "phone"
        ]
    );
    assert!(
        r.detail()
            .contains("'ZZ' is not an assigned ISO 3166-1 alpha-2 country code"),
        "{}",
        r.detail()
    );
    // Nothing was created.
    let list = app.get(&app.admin, "/v1/customers").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn missing_and_unknown_fields_are_refused_by_name() {
    let app = spawn_app().await;
    let mut body = customer_body("X");
    body.as_object_mut().unwrap().remove("cloud_instance");
    let r = app.post(&app.admin, "/v1/customers", &body).await;
    r.problem(422);
    assert!(
        r.detail().contains("missing field `cloud_instance`"),
        "{}",
        r.detail()
    );

    let mut body = customer_body("X");
    body["credit_limit"] = json!("100");
    let r = app.post(&app.admin, "/v1/customers", &body).await;
    r.problem(422);
    assert!(
        r.detail().contains("unknown field `credit_limit`"),
        "{}",
        r.detail()
    );

    let mut body = customer_body("X");
    body["country"] = json!(33);
    let r = app.post(&app.admin, "/v1/customers", &body).await;
    r.problem(422);
    assert_eq!(r.fields(), ["country"]);
}

#[tokio::test]
async fn external_id_is_unique_per_tenant() {
    let app = spawn_app().await;
    let mut body = customer_body("A");
    body["external_id"] = json!("pc-1");
    app.create_customer(&app.admin, body.clone()).await;
    let r = app.post(&app.admin, "/v1/customers", &body).await;
    r.problem(409);
    assert!(r.detail().contains("pc-1"), "{}", r.detail());

    // Another tenant may use the same external id.
    let other = app.token("reseller-b", riskdesk_domain::Role::Admin).await;
    app.create_customer(&other, body).await;
}

#[tokio::test]
async fn list_filters_and_pages_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut b = customer_body(&format!("Customer {i}"));
        if i % 2 == 0 {
            b["country"] = json!("BR");
            b["cloud_instance"] = json!("china_21vianet");
        }
        ids.push(
            app.create_customer(&app.admin, b).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut path = "/v1/customers?limit=3".to_owned();
    loop {
        let r = app.get(&app.admin, &path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let items = r.body["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/customers?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen, ids,
        "pages list every customer once, in creation order"
    );

    let br = app
        .get(
            &app.admin,
            "/v1/customers?country=br&cloud_instance=china_21vianet",
        )
        .await;
    assert_eq!(br.body["items"].as_array().unwrap().len(), 4);
    let named = app
        .get(&app.admin, "/v1/customers?name_contains=CUSTOMER%205")
        .await;
    let items = named.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "Customer 5");
    // LIKE wildcards in the search text are literal.
    let none = app.get(&app.admin, "/v1/customers?name_contains=%25").await;
    assert_eq!(none.body["items"].as_array().unwrap().len(), 0);

    let bad = app.get(&app.admin, "/v1/customers?limit=0").await;
    assert_eq!(bad.problem(422)["errors"][0]["field"], "limit");
    let bad = app.get(&app.admin, "/v1/customers?cursor=garbage").await;
    assert_eq!(bad.problem(422)["errors"][0]["field"], "cursor");
    let bad = app.get(&app.admin, "/v1/customers?colour=red").await;
    assert!(
        bad.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
}

#[tokio::test]
async fn patch_changes_clears_and_refuses_what_cannot_change() {
    let app = spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Old name"))
        .await;
    let path = format!("/v1/customers/{}", c["id"].as_str().unwrap());

    let r = app
        .patch(
            &app.admin,
            &path,
            &json!({"name": "New name", "phone": null, "locale": "pt-BR"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"], "New name");
    assert_eq!(r.body["phone"], serde_json::Value::Null);
    assert_eq!(r.body["locale"], "pt-BR");
    assert_eq!(r.body["email"], c["email"], "absent fields stay");
    assert_ne!(r.body["updated_at"], c["updated_at"]);

    let r = app
        .patch(
            &app.admin,
            &path,
            &json!({"cloud_instance": "china_21vianet"}),
        )
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "cloud_instance");
    let r = app
        .patch(&app.admin, &path, &json!({"email": "not-an-email"}))
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "email");

    let got = app.get(&app.admin, &path).await;
    assert_eq!(got.body["name"], "New name");
    assert_eq!(got.body["cloud_instance"], "global");

    let audit = app
        .get(
            &app.admin,
            &format!("/v1/audit?entity_id={}", c["id"].as_str().unwrap()),
        )
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["customer.create", "customer.update"],
        "refused patches leave no trace"
    );
    let update = &audit.body["items"][1];
    assert_eq!(update["before"]["name"], "Old name");
    assert_eq!(update["after"]["name"], "New name");
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let app = spawn_app().await;
    let r = app
        .get(
            &app.admin,
            &format!("/v1/customers/{}", uuid::Uuid::now_v7()),
        )
        .await;
    r.problem(404);
    let r = app.get(&app.admin, "/v1/customers/not-a-uuid").await;
    assert!(
        r.problem(404)["detail"]
            .as_str()
            .unwrap()
            .contains("not-a-uuid")
    );
}
