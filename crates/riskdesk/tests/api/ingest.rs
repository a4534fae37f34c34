//! `riskdesk ingest` with the real FOCUS samples in data/focus-samples.

use serde_json::json;

use crate::helpers::{TestApp, customer_body, spawn_app};

const FOCUS_1_0: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/focus-samples/v1.0/focus_sample_1000.csv"
);
const FOCUS_1_2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/focus-samples/v1.2/commitment_flexibility_2_resources.csv"
);
const FOCUS_1_2_SPREADSHEET: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/focus-samples/v1.2/simple_saas_agreements_a1.csv"
);

/// The exact sum of BilledCost for one SubAccountId, added up here independently of the
/// product's parser (decimal strings padded to 12 places, summed as integers).
fn expected_spend(sub_account: &str) -> String {
    let mut r = csv::Reader::from_path(FOCUS_1_0).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |n: &str| {
        h.iter()
            .position(|x| x.trim_start_matches('\u{feff}') == n)
            .unwrap()
    };
    let (sa, cost) = (col("SubAccountId"), col("BilledCost"));
    let mut total: i128 = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        if &rec[sa] != sub_account {
            continue;
        }
        let (neg, digits) = match rec[cost].strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, &rec[cost]),
        };
        let (i, f) = digits.split_once('.').unwrap_or((digits, ""));
        let f = format!("{f:0<12}");
        let v = i.parse::<i128>().unwrap() * 1_000_000_000_000 + f[..12].parse::<i128>().unwrap();
        total += if neg { -v } else { v };
    }
    let s = format!(
        "{}.{:012}",
        total / 1_000_000_000_000,
        total % 1_000_000_000_000
    );
    let s = s.trim_end_matches('0').to_owned();
    if s.ends_with('.') {
        format!("{s}00")
    } else {
        s
    }
}

fn ingest(app: &TestApp, args: &[&str]) -> (bool, String) {
    let mut all = vec!["ingest"];
    all.extend_from_slice(args);
    let out = app.cli(&all);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_focus_export_lands_in_each_customers_month_once() {
    let app = spawn_app().await;
    let mut body = customer_body("Sub account 11353890204");
    body["external_id"] = json!("11353890204");
    let c = app.create_customer(&app.admin, body).await;
    let id = c["id"].as_str().unwrap();
    let r = app
        .put(
            &app.admin,
            &format!("/v1/customers/{id}/budget"),
            &json!({"monthly_amount": "10.00", "currency": "USD", "thresholds": [50, 100]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let (ok, err) = ingest(&app, &[FOCUS_1_0, "--as-of", "2024-09-30T23:00:00Z"]);
    assert!(ok, "{err}");
    assert!(
        err.contains(
            "1000 accepted (775 waiting for their customer), 0 duplicates, 0 rejected, 3 alerts"
        ),
        "{err}"
    );

    let b = app
        .get(
            &app.admin,
            &format!("/v1/customers/{id}/budget?as_of=2024-09-30T23:59:00Z"),
        )
        .await;
    assert_eq!(b.body["month_to_date"], expected_spend("11353890204"));
    assert_eq!(b.body["month_to_date"], "13.6164825497");
    assert_eq!(
        b.body["thresholds_crossed"],
        json!(["percent:50", "percent:100", "forecast"])
    );

    // Loading it again stores nothing and notifies nothing.
    let (ok, err) = ingest(&app, &[FOCUS_1_0, "--as-of", "2024-09-30T23:00:00Z"]);
    assert!(ok);
    assert!(
        err.contains(
            "0 accepted (0 waiting for their customer), 1000 duplicates, 0 rejected, 0 alerts"
        ),
        "{err}"
    );

    // A customer created later gets the spend that waited for it.
    let mut body = customer_body("Sub account 18938484842");
    body["external_id"] = json!("18938484842");
    let later = app.create_customer(&app.admin, body).await;
    let lid = later["id"].as_str().unwrap();
    app.put(
        &app.admin,
        &format!("/v1/customers/{lid}/budget"),
        &json!({"monthly_amount": "1000.00", "currency": "USD"}),
    )
    .await;
    let b = app
        .get(
            &app.admin,
            &format!("/v1/customers/{lid}/budget?as_of=2024-09-30T23:59:00Z"),
        )
        .await;
    assert_eq!(b.body["month_to_date"], expected_spend("18938484842"));
}

#[tokio::test]
async fn focus_1_2_files_need_what_they_lack_and_bad_rows_are_named() {
    let app = spawn_app().await;
    let (ok, err) = ingest(&app, &[FOCUS_1_2]);
    assert!(ok);
    assert!(
        err.contains("commitment_flexibility_2_resources.csv:2: no customer"),
        "{err}"
    );
    assert!(err.contains("0 accepted"), "{err}");

    let (ok, err) = ingest(
        &app,
        &[
            FOCUS_1_2,
            "--customer-external-id",
            "ACME",
            "--currency",
            "USD",
        ],
    );
    assert!(ok);
    // Two identical usage rows are two charges: three rows, three events.
    assert!(
        err.contains("3 accepted (3 waiting for their customer), 0 duplicates, 0 rejected"),
        "{err}"
    );

    let (ok, err) = ingest(&app, &[FOCUS_1_2_SPREADSHEET]);
    assert!(ok);
    assert!(
        err.contains(
            "simple_saas_agreements_a1.csv:2: ChargePeriodStart '4/1/25' is not a date-time"
        ),
        "{err}"
    );

    let junk = std::env::temp_dir().join(format!("junk-{}.csv", uuid::Uuid::now_v7()));
    std::fs::write(&junk, "a,b\n1,2\n").unwrap();
    let (ok, err) = ingest(&app, &[junk.to_str().unwrap()]);
    assert!(!ok, "an unreadable format fails the command");
    assert!(err.contains("not a format riskdesk reads"), "{err}");
    let _ = std::fs::remove_file(junk);
}

const PC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/partner-center-samples/"
);
const AZ: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/azure-activity-log/"
);

#[tokio::test]
async fn partner_center_rated_usage_and_audit_records() {
    let app = spawn_app().await;
    let mut body = customer_body("Acme");
    body["external_id"] = json!("ACME");
    let acme = app.create_customer(&app.admin, body).await;
    let id = acme["id"].as_str().unwrap();
    app.put(
        &app.admin,
        &format!("/v1/customers/{id}/budget"),
        &json!({"monthly_amount": "100.00", "currency": "USD"}),
    )
    .await;
    // The published samples leave customerId empty: the option names the customer.
    let unbilled = format!("{PC}get-invoice-unbilled-consumption-lineitems__response1.json");
    let (ok, err) = ingest(&app, &[&unbilled]);
    assert!(ok);
    assert!(
        err.contains("record 0: no customer: the record has no customerId"),
        "{err}"
    );
    let (ok, err) = ingest(
        &app,
        &[
            &unbilled,
            "--customer-external-id",
            "ACME",
            "--as-of",
            "2019-01-02T12:00:00Z",
        ],
    );
    assert!(ok);
    assert!(
        err.contains("2 accepted (0 waiting for their customer)"),
        "{err}"
    );
    // 30.7197334080551 twice: Partner Center's float literal kept to 12 decimals (half-even).
    let b = app
        .get(
            &app.admin,
            &format!("/v1/customers/{id}/budget?as_of=2019-01-31T00:00:00Z"),
        )
        .await;
    assert_eq!(b.body["month_to_date"], "61.43946681611", "{}", b.body);

    // Audit records are activity events of the customer named by customerId.
    let mut body = customer_body("Relecloud");
    body["external_id"] = json!("0c39d6d5-c70d-4c55-bc02-f620844f3fd1");
    app.create_customer(&app.admin, body).await;
    let (ok, err) = ingest(
        &app,
        &[&format!(
            "{PC}get-a-record-of-partner-center-activity-by-user__response1.json"
        )],
    );
    assert!(ok);
    assert!(
        err.contains("2 accepted (0 waiting for their customer), 0 duplicates, 0 rejected"),
        "{err}"
    );

    // Other line-item kinds are named, not guessed at.
    let (_, err) = ingest(
        &app,
        &[&format!("{PC}get-invoiceline-items__response2.json")],
    );
    assert!(
        err.contains("Partner Center object 'UsageBasedLineItem' is not one riskdesk reads"),
        "{err}"
    );
}

#[tokio::test]
async fn azure_activity_log_in_both_published_shapes() {
    let app = spawn_app().await;
    let rest: Vec<String> = [
        "administrative",
        "alert",
        "autoscale",
        "recommendation",
        "resourcehealth",
        "security",
        "servicehealth",
    ]
    .iter()
    .map(|n| format!("{AZ}rest-api-shape/{n}.json"))
    .collect();
    let mut args: Vec<&str> = rest.iter().map(String::as_str).collect();
    args.extend(["--customer-external-id", "ACME"]);
    let (ok, err) = ingest(&app, &args);
    assert!(ok, "{err}");
    assert!(err.contains("7 records in"), "{err}");
    assert!(
        err.contains(": 7 accepted, 0 duplicates, 0 rejected"),
        "{err}"
    );

    // The export shape names the subscription in resourceId: that is the customer's external id.
    let exports: Vec<String> = [
        "docs_records_supportticket_write",
        "otel_administrative_valid_1",
        "otel_alert_valid_2",
        "otel_recommendation_valid_1",
    ]
    .iter()
    .map(|n| format!("{AZ}storage-eventhub-shape/{n}.json"))
    .collect();
    let spec = format!("{AZ}rest-api-spec-example/GetActivityLogsFiltered.json");
    let mut args: Vec<&str> = exports.iter().map(String::as_str).collect();
    args.push(&spec);
    let (ok, err) = ingest(&app, &args);
    assert!(ok, "{err}");
    assert!(
        err.contains(": 5 accepted, 0 duplicates, 0 rejected"),
        "{err}"
    );
    assert!(err.contains("(1 waiting for their customer)"), "{err}");

    // Published with raw line breaks inside a string: not JSON, and said so.
    let (ok, err) = ingest(
        &app,
        &[&format!(
            "{AZ}rest-api-shape/policy_as_published_INVALID_JSON.json"
        )],
    );
    assert!(!ok);
    assert!(err.contains("not valid JSON"), "{err}");
}
