//! Anomaly detection on customers' hourly spend, through ingest, as a user sees it.

use riskdesk_domain::anomaly::detector::ALARM_THRESHOLD;
use riskdesk_http::ServerOptions;
use serde_json::{Value, json};

use crate::helpers::{TestApp, customer_body, spawn_app, spawn_app_with};

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

/// An alert's evidence, as `GET /v1/alerts/{id}` gives it.
async fn evidence(app: &TestApp, alert: &Value) -> Value {
    let one = app
        .get(
            &app.admin,
            &format!("/v1/alerts/{}", alert["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(one.status, 200, "{}", one.body);
    one.body["evidence"].clone()
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
    let ev = &evidence(&app, &found[0]).await;
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

/// Writes events as NDJSON (the `POST /v1/events` contract, one per line) and ingests them with
/// `riskdesk ingest` as of `as_of`; the ingest runs the anomaly pass at its end.
fn ingest_ndjson(
    app: &TestApp,
    dir: &std::path::Path,
    name: &str,
    events: &[Value],
    as_of: &str,
) -> String {
    let path = dir.join(name);
    let lines: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = app.cli(&["ingest", path.to_str().unwrap(), "--as-of", as_of]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

#[tokio::test]
async fn spend_reported_late_for_an_hour_already_scored_is_scored_again_once() {
    let app = spawn_app().await;
    let c = app
        .create_customer(&app.admin, customer_body("Late usage"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let as_of = "2026-09-23T00:00:00Z";
    // 22 days of ordinary spend: every hour scored, nothing raised.
    let err = ingest_ndjson(
        &app,
        dir.path(),
        "steady.ndjson",
        &hourly(&c, "s", 24 * 22, None),
        as_of,
    );
    assert!(
        err.contains("spend anomalies: 528 hours of 1 series scored"),
        "{err}"
    );
    assert_eq!(anomaly_alerts(&app, &c).await, Vec::<Value>::new());

    // Two days later the usage of one hour two days back turns out to have been 19× more: its
    // hour (already scored at about 10 EUR) is scored again with the new total, and the hours
    // after it too.
    let spike_hour = 20 * 24 + 5;
    let late = |id: &str, cost: &str| {
        json!({"type": "usage", "event_id": id, "customer_id": c, "time": "2026-09-21T05:40:00Z",
               "meter_category": "Virtual Machines", "meter_name": "D4s v5", "region": "westeurope",
               "quantity": 18, "unit": "Hours", "cost": cost, "currency": "EUR"})
    };
    let err = ingest_ndjson(
        &app,
        dir.path(),
        "late.ndjson",
        &[late("late-1", "190.00")],
        as_of,
    );
    assert!(
        err.contains(&format!(
            "spend anomalies: {} hours of 1 series scored",
            24 * 22 - spike_hour
        )),
        "{err}"
    );
    let found = anomaly_alerts(&app, &c).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let ev = &evidence(&app, &found[0]).await;
    assert_eq!(ev["hour"], "2026-09-21T05:00:00Z", "{ev}");
    assert_eq!(ev["late"], true, "{ev}");
    assert!(ev["observed"].as_str().unwrap().starts_with("200"), "{ev}");

    // More late spend for the same hour scores it again, but its alert is not raised twice;
    // the same file again is all duplicates and scores nothing.
    let later = || {
        ingest_ndjson(
            &app,
            dir.path(),
            "later.ndjson",
            &[late("late-2", "5.00")],
            as_of,
        )
    };
    let err = later();
    assert!(err.contains("1 accepted"), "{err}");
    let err = later();
    assert!(err.contains("1 duplicates"), "{err}");
    assert!(!err.contains("spend anomalies"), "{err}");
    let after = anomaly_alerts(&app, &c).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["count"], 1, "{after:?}");
    // The spend chart shows the hour with its whole spend, as the pass scored it.
    let spend = app
        .get(
            &app.admin,
            &format!("/v1/customers/{c}/spend?from=2026-09-21T00:00:00Z&to=2026-09-22T00:00:00Z"),
        )
        .await;
    let p = &spend.body["series"][0]["points"][5];
    assert_eq!(p["hour"], "2026-09-21T05:00:00Z", "{}", spend.body);
    assert!(p["spend"].as_str().unwrap().starts_with("205"), "{p}");
    assert_eq!(p["anomaly"], true, "{p}");
}
