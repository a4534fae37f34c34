//! Anomaly detection on customers' hourly spend, through ingest, as a user sees it.

use riskdesk_domain::anomaly::detector::ALARM_THRESHOLD;
use riskdesk_http::ServerOptions;
use serde_json::{Value, json};

use crate::helpers::{TestApp, customer_body, spawn_app_with};

fn hourly(customer: &str, prefix: &str, hours: i64, spike_at: Option<i64>) -> Vec<Value> {
    let start: jiff::Timestamp = "2026-09-01T00:00:00Z".parse().unwrap();
    (0..hours)
        .map(|h| {
            let t = start + jiff::SignedDuration::from_hours(h) + jiff::SignedDuration::from_mins(17);
            let cost = if Some(h) == spike_at {
                "200.00".to_owned()
            } else {
                format!("{:.2}", 10.0 + ((h * 7919) % 13) as f64 / 13.0)
            };
            json!({"type": "usage", "event_id": format!("{prefix}-{h}"), "customer_id": customer,
                   "time": t.to_string(), "meter_category": "Virtual Machines", "meter_name": "D4s v5",
                   "region": "westeurope", "quantity": 1, "unit": "Hours", "cost": cost, "currency": "EUR"})
        })
        .collect()
}

async fn anomaly_alerts(app: &TestApp, customer: &str) -> Vec<Value> {
    app.get(
        &app.admin,
        &format!("/v1/alerts?rule=anomaly.spend&customer_id={customer}"),
    )
    .await
    .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_spend_spike_raises_one_alert_with_observed_and_expected_and_steady_spend_none() {
    let app = spawn_app_with(ServerOptions {
        anomaly_every: std::time::Duration::from_millis(100),
        ..ServerOptions::default()
    })
    .await;
    let spiky = app
        .create_customer(&app.admin, customer_body("Spiky"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let steady = app
        .create_customer(&app.admin, customer_body("Steady"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let spike_hour = 20 * 24 + 5;
    let mut events = hourly(&spiky, "s", 24 * 22, Some(spike_hour));
    events.extend(hourly(&steady, "q", 24 * 22, None));
    let r = app
        .post(&app.admin, "/v1/events", &Value::Array(events))
        .await;
    assert_eq!(r.body["accepted"], 24 * 22 * 2, "{}", r.body);
    let mut found = Vec::new();
    for _ in 0..100 {
        found = anomaly_alerts(&app, &spiky).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(found.len(), 1, "{found:?}");
    let one = app
        .get(
            &app.admin,
            &format!("/v1/alerts/{}", found[0]["id"].as_str().unwrap()),
        )
        .await;
    let ev = &one.body["evidence"];
    assert_eq!(ev["meter_category"], "Virtual Machines");
    assert_eq!(ev["hour"], "2026-09-21T05:00:00Z");
    assert!(ev["observed"].as_str().unwrap().starts_with("200"), "{ev}");
    let expected: f64 = ev["expected"].as_str().unwrap().parse().unwrap();
    assert!((10.0..11.0).contains(&expected), "{ev}");
    assert!(ev["score"].as_f64().unwrap() >= ALARM_THRESHOLD);
    // Steady spend raised nothing; re-sending the same events scores nothing again.
    assert_eq!(anomaly_alerts(&app, &steady).await, Vec::<Value>::new());
    let again = hourly(&spiky, "s", 24 * 22, Some(spike_hour));
    let r = app
        .post(&app.admin, "/v1/events", &Value::Array(again))
        .await;
    assert_eq!(r.body["duplicates"], 24 * 22, "{}", r.body);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let after = anomaly_alerts(&app, &spiky).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["count"], 1);
}
