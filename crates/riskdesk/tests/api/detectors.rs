//! The shipped detectors, one scenario each: a synthetic customer whose events show the abuse
//! fires it; a customer behaving normally does not.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::helpers::{TestApp, customer_body, spawn_app};

/// Events on 2026-11-10 plus `minute` minutes (before: whole days back).
fn t(day_offset: i64, minute: i64) -> String {
    let base: jiff::Timestamp = "2026-11-10T00:00:00Z".parse().unwrap();
    base.checked_add(jiff::SignedDuration::from_secs(
        day_offset * 86_400 + minute * 60,
    ))
    .unwrap()
    .to_string()
}

fn usage(
    id: &str,
    c: &str,
    time: String,
    category: &str,
    meter: &str,
    region: &str,
    cost: f64,
) -> Value {
    json!({"type": "usage", "event_id": id, "customer_id": c, "time": time, "meter_category": category,
           "meter_name": meter, "region": region, "cost": format!("{cost:.2}"), "currency": "USD"})
}

fn activity(id: &str, c: &str, time: String, op: &str, props: Value) -> Value {
    json!({"type": "activity", "event_id": id, "customer_id": c, "time": time, "operation": op,
           "actor": format!("user-{id}@example.com"), "status": "succeeded", "properties": props})
}

/// A week of spend every hour (the baseline, `daily` a day), then `spike` in one hour.
fn week_then_spike(
    c: &str,
    p: &str,
    category: &str,
    meter: &str,
    daily: f64,
    spike: f64,
) -> Vec<Value> {
    let mut v: Vec<Value> = (0..168)
        .map(|h| {
            usage(
                &format!("{p}-h{h}"),
                c,
                t(-7, 600 + h * 60),
                category,
                meter,
                "westeurope",
                daily / 24.0,
            )
        })
        .collect();
    v.push(usage(
        &format!("{p}-spike"),
        c,
        t(0, 600),
        category,
        meter,
        "westeurope",
        spike,
    ));
    v
}

type Scenario = fn(&str, &str) -> Vec<Value>;

fn scenarios() -> Vec<(&'static str, Scenario, Scenario)> {
    vec![
        (
            "crypto_mining_gpu_surge",
            |c, p| {
                let mut v = week_then_spike(c, p, "Virtual Machines", "D2s v5", 1.0, 0.0);
                v.pop();
                v.push(usage(
                    &format!("{p}-gpu"),
                    c,
                    t(0, 600),
                    "Virtual Machines",
                    "NC24ads A100 v4",
                    "westeurope",
                    250.0,
                ));
                v
            },
            // Normal: a young account using a GPU modestly every day.
            |c, p| week_then_spike(c, p, "Virtual Machines", "NC24ads A100 v4", 40.0, 40.0),
        ),
        (
            "crypto_mining_quota_then_vms",
            |c, p| {
                let mut v = vec![activity(
                    &format!("{p}-q"),
                    c,
                    t(0, 0),
                    "quota_increase",
                    json!({}),
                )];
                v.extend((0..10).map(|i| {
                    activity(
                        &format!("{p}-vm{i}"),
                        c,
                        t(0, 10 + i),
                        "vm_created",
                        json!({}),
                    )
                }));
                v
            },
            |c, p| {
                (0..10)
                    .map(|i| {
                        activity(
                            &format!("{p}-vm{i}"),
                            c,
                            t(0, 10 + i),
                            "vm_created",
                            json!({}),
                        )
                    })
                    .collect()
            },
        ),
        (
            "ddos_egress_spike",
            |c, p| week_then_spike(c, p, "Bandwidth", "Data Transfer Out", 24.0, 60.0),
            |c, p| week_then_spike(c, p, "Bandwidth", "Data Transfer Out", 1440.0, 60.0),
        ),
        (
            "spam_port_25_opened",
            |c, p| {
                vec![activity(
                    &format!("{p}-fw"),
                    c,
                    t(0, 0),
                    "firewall_rule_opened",
                    json!({"port": 25, "direction": "outbound"}),
                )]
            },
            |c, p| {
                vec![activity(
                    &format!("{p}-fw"),
                    c,
                    t(0, 0),
                    "firewall_rule_opened",
                    json!({"port": 443}),
                )]
            },
        ),
        (
            "hacking_sign_in_failures",
            |c, p| {
                (0..20)
                    .map(|i| {
                        activity(
                            &format!("{p}-f{i}"),
                            c,
                            t(0, i / 4),
                            "sign_in_failure",
                            json!({}),
                        )
                    })
                    .collect()
            },
            |c, p| {
                (0..5)
                    .map(|i| {
                        activity(
                            &format!("{p}-f{i}"),
                            c,
                            t(0, i),
                            "sign_in_failure",
                            json!({}),
                        )
                    })
                    .collect()
            },
        ),
        (
            "hacking_privileged_outsider",
            |c, p| {
                vec![activity(
                    &format!("{p}-r"),
                    c,
                    t(0, 0),
                    "role_assignment",
                    json!({"role": "Owner", "external": true}),
                )]
            },
            |c, p| {
                vec![activity(
                    &format!("{p}-r"),
                    c,
                    t(0, 0),
                    "role_assignment",
                    json!({"role": "Owner", "external": false}),
                )]
            },
        ),
        (
            "malware_storage_egress",
            |c, p| week_then_spike(c, p, "Storage", "Hot Data Egress", 12.0, 30.0),
            |c, p| week_then_spike(c, p, "Storage", "Hot Data Egress", 720.0, 30.0),
        ),
        (
            "malware_public_storage",
            |c, p| {
                vec![activity(
                    &format!("{p}-s"),
                    c,
                    t(0, 0),
                    "storage_public_access_enabled",
                    json!({}),
                )]
            },
            |c, p| {
                vec![activity(
                    &format!("{p}-s"),
                    c,
                    t(0, 0),
                    "storage_account_created",
                    json!({}),
                )]
            },
        ),
        (
            "resold_admin_churn",
            |c, p| {
                let mut v = vec![activity(
                    &format!("{p}-o"),
                    c,
                    t(0, 0),
                    "owner_changed",
                    json!({}),
                )];
                v.extend((0..10).map(|i| {
                    activity(
                        &format!("{p}-u{i}"),
                        c,
                        t(0, 5 + i),
                        "user_added",
                        json!({}),
                    )
                }));
                v
            },
            |c, p| {
                (0..3)
                    .map(|i| {
                        activity(
                            &format!("{p}-u{i}"),
                            c,
                            t(0, 5 + i),
                            "user_added",
                            json!({}),
                        )
                    })
                    .collect()
            },
        ),
        (
            "resold_many_regions",
            |c, p| {
                [
                    "westeurope",
                    "eastus",
                    "brazilsouth",
                    "japaneast",
                    "australiaeast",
                ]
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    usage(
                        &format!("{p}-{i}"),
                        c,
                        t(0, i as i64 * 30),
                        "Virtual Machines",
                        "D2s v5",
                        r,
                        1.0,
                    )
                })
                .collect()
            },
            |c, p| {
                ["westeurope", "northeurope"]
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        usage(
                            &format!("{p}-{i}"),
                            c,
                            t(0, i as i64 * 30),
                            "Virtual Machines",
                            "D2s v5",
                            r,
                            1.0,
                        )
                    })
                    .collect()
            },
        ),
        (
            "theft_of_service_before_payment",
            |c, p| {
                vec![usage(
                    &format!("{p}-b"),
                    c,
                    t(0, 0),
                    "Virtual Machines",
                    "D2s v5",
                    "westeurope",
                    1200.0,
                )]
            },
            |c, p| {
                vec![usage(
                    &format!("{p}-b"),
                    c,
                    t(0, 0),
                    "Virtual Machines",
                    "D2s v5",
                    "westeurope",
                    500.0,
                )]
            },
        ),
        (
            "provider_fraud_notification",
            |c, p| {
                vec![activity(
                    &format!("{p}-n"),
                    c,
                    t(0, 0),
                    "provider_fraud_notification",
                    json!({"source": "partner_center"}),
                )]
            },
            |c, p| {
                vec![activity(
                    &format!("{p}-n"),
                    c,
                    t(0, 0),
                    "support_ticket_opened",
                    json!({}),
                )]
            },
        ),
    ]
}

async fn builtin_ids(app: &TestApp) -> HashMap<String, String> {
    let r = app.get(&app.admin, "/v1/rules").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| {
            Some((
                x["builtin"].as_str()?.to_owned(),
                x["id"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

async fn fired(app: &TestApp, customer: &str) -> Vec<String> {
    let r = app
        .get(
            &app.admin,
            &format!("/v1/alerts?customer_id={customer}&limit=500"),
        )
        .await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_shipped_detector_fires_on_its_abuse_and_not_on_normal_use() {
    let app = spawn_app().await;
    let ids = builtin_ids(&app).await;
    assert_eq!(ids.len(), 13, "{ids:?}");
    for (key, abusive, normal) in scenarios() {
        let rule = ids
            .get(key)
            .unwrap_or_else(|| panic!("no built-in rule {key}"));
        let bad = app
            .create_customer(&app.admin, customer_body(&format!("{key} abuser")))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let good = app
            .create_customer(&app.admin, customer_body(&format!("{key} normal")))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = app
            .post(
                &app.admin,
                "/v1/events",
                &json!(abusive(&bad, &format!("{key}-a"))),
            )
            .await;
        assert_eq!(r.status, 200, "{key}: {}", r.body);
        assert_eq!(r.body["rejected"], json!([]), "{key}: {}", r.body);
        let r = app
            .post(
                &app.admin,
                "/v1/events",
                &json!(normal(&good, &format!("{key}-n"))),
            )
            .await;
        assert_eq!(r.body["rejected"], json!([]), "{key}: {}", r.body);
        assert!(
            fired(&app, &bad).await.contains(rule),
            "{key} did not fire on the abuse"
        );
        assert!(
            !fired(&app, &good).await.contains(rule),
            "{key} fired on normal use"
        );
    }
}

#[tokio::test]
async fn theft_of_service_over_the_credit_limit_uses_the_onboarding_terms() {
    let app = spawn_app().await;
    let ids = builtin_ids(&app).await;
    let rule = &ids["theft_of_service_over_credit"];
    let signup = |email: &str| {
        json!({
            "company": {"name": "Contoso Ltd", "domain": "contoso.co.uk", "country": "GB"},
            "contact": {"email": email, "phone": "+442071838750"},
            "ip": "203.0.113.7", "payment_instrument": {"type": "bank_transfer"}, "cloud_instance": "global",
        })
    };
    let mut customers = Vec::new();
    for email in ["ops@contoso.co.uk", "it@contoso.co.uk"] {
        let r = app
            .post(&app.admin, "/v1/signups/assess", &signup(email))
            .await;
        assert_eq!(r.body["decision"], "approve", "{}", r.body);
        customers.push((
            r.body["customer_id"].as_str().unwrap().to_owned(),
            r.body["credit"]["limit"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .unwrap(),
        ));
    }
    let (bad, limit) = &customers[0];
    let (good, _) = &customers[1];
    app.post(
        &app.admin,
        "/v1/events",
        &json!([usage(
            "c-1",
            bad,
            t(0, 0),
            "Virtual Machines",
            "D2s v5",
            "westeurope",
            limit * 1.6
        )]),
    )
    .await;
    app.post(
        &app.admin,
        "/v1/events",
        &json!([usage(
            "c-2",
            good,
            t(0, 0),
            "Virtual Machines",
            "D2s v5",
            "westeurope",
            limit * 0.5
        )]),
    )
    .await;
    assert!(fired(&app, bad).await.contains(rule));
    assert!(!fired(&app, good).await.contains(rule));
}

#[tokio::test]
async fn a_shipped_detector_is_an_ordinary_rule_that_can_be_turned_off() {
    let app = spawn_app().await;
    let ids = builtin_ids(&app).await;
    let id = &ids["spam_port_25_opened"];
    let r = app.get(&app.admin, &format!("/v1/rules/{id}")).await;
    let body = json!({"name": r.body["name"], "scope": r.body["scope"], "condition": r.body["condition"],
        "severity": r.body["severity"], "cooldown_seconds": r.body["cooldown_seconds"], "mode": "disabled"});
    let r = app.put(&app.admin, &format!("/v1/rules/{id}"), &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["builtin"], "spam_port_25_opened");
    assert_eq!(r.body["version"], 2);
    let c = app
        .create_customer(&app.admin, customer_body("Mailer"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            &app.admin,
            "/v1/events",
            &json!([activity(
                "p-1",
                &c,
                t(0, 0),
                "firewall_rule_opened",
                json!({"port": 25})
            )]),
        )
        .await;
    assert_eq!(r.body["alerts"], json!([]), "{}", r.body);
}
