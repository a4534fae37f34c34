//! The SMS client against a local fake of Twilio's Messages endpoint.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Form, Json, Router};
use riskdesk_connectors::sms::{SmsClient, SmsSettings};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Fake {
    statuses: Arc<Mutex<Vec<u16>>>,
    calls: Arc<AtomicUsize>,
    sent: Arc<Mutex<Vec<(String, String, String)>>>,
}

async fn messages(
    State(f): State<Fake>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let n = f.calls.fetch_add(1, Ordering::SeqCst);
    assert_eq!(sid, "AC123");
    // Basic auth: base64("AC123:tok").
    assert_eq!(headers.get("authorization").unwrap(), "Basic QUMxMjM6dG9r");
    let status = {
        let s = f.statuses.lock().unwrap();
        *s.get(n).or(s.last()).unwrap()
    };
    if status != 201 {
        return (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"code": 21211, "message": "Invalid 'To' Phone Number", "status": status})),
        );
    }
    f.sent.lock().unwrap().push((
        form["To"].clone(),
        form["From"].clone(),
        form["Body"].clone(),
    ));
    (
        StatusCode::CREATED,
        Json(json!({"sid": format!("SM{n}"), "status": "queued"})),
    )
}

async fn start(statuses: Vec<u16>) -> (String, Fake) {
    let fake = Fake {
        statuses: Arc::new(Mutex::new(statuses)),
        ..Default::default()
    };
    let app = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(messages))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fake)
}

fn client(url: &str) -> SmsClient {
    SmsClient::new(SmsSettings {
        account_sid: "AC123".into(),
        auth_token: "tok".into(),
        from: "+15005550006".into(),
        base_url: url.into(),
        timeout_ms: 500,
        retries: 2,
    })
    .unwrap()
}

#[tokio::test]
async fn sends_with_basic_auth_and_form_fields() {
    let (url, fake) = start(vec![201]).await;
    let sid = client(&url)
        .send("+442071838750", "Your code is 123456")
        .await
        .unwrap();
    assert_eq!(sid, "SM0");
    assert_eq!(
        fake.sent.lock().unwrap()[0],
        (
            "+442071838750".into(),
            "+15005550006".into(),
            "Your code is 123456".into()
        )
    );
}

#[tokio::test]
async fn throttling_is_retried_but_rejections_are_not() {
    let (url, fake) = start(vec![429, 201]).await;
    assert_eq!(
        client(&url).send("+442071838750", "x").await.unwrap(),
        "SM1"
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);

    let (url, fake) = start(vec![400]).await;
    let err = client(&url).send("+1", "x").await.unwrap_err();
    assert!(err.0.contains("21211"), "{err}");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);

    // A 5xx may have sent the message: reported, never re-sent.
    let (url, fake) = start(vec![500, 201]).await;
    assert!(client(&url).send("+442071838750", "x").await.is_err());
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}
