//! The verification client against a local fake provider that scripts its answers and counts
//! the calls it receives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use riskdesk_connectors::verification::{
    Verification, VerificationClient, VerificationSettings, VerifyCompany, VerifyContact,
    VerifyRequest,
};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Fake {
    /// Answers in order; the last repeats. (status, body, delay ms)
    script: Arc<Mutex<Vec<(u16, Value, u64)>>>,
    calls: Arc<AtomicUsize>,
    keys: Arc<Mutex<Vec<String>>>,
}

async fn verify(
    State(f): State<Fake>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let n = f.calls.fetch_add(1, Ordering::SeqCst);
    assert_eq!(headers.get("authorization").unwrap(), "Bearer secret");
    assert_eq!(body["company"]["country"], "GB");
    f.keys.lock().unwrap().push(
        headers
            .get("idempotency-key")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned(),
    );
    let (status, answer, delay) = {
        let s = f.script.lock().unwrap();
        s.get(n).or(s.last()).cloned().unwrap()
    };
    tokio::time::sleep(Duration::from_millis(delay)).await;
    (StatusCode::from_u16(status).unwrap(), Json(answer))
}

async fn start(script: Vec<(u16, Value, u64)>) -> (String, Fake) {
    let fake = Fake {
        script: Arc::new(Mutex::new(script)),
        ..Default::default()
    };
    let app = Router::new()
        .route("/v1/verify", post(verify))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fake)
}

fn client(url: &str) -> VerificationClient {
    VerificationClient::new(VerificationSettings {
        url: url.into(),
        api_key: "secret".into(),
        timeout_ms: 200,
        retries: 2,
        backoff_ms: 5,
        breaker_failures: 2,
        breaker_open_seconds: 60,
    })
    .unwrap()
}

fn request() -> VerifyRequest {
    VerifyRequest {
        reference: "assessment-1".into(),
        company: VerifyCompany {
            name: "Contoso".into(),
            domain: "contoso.co.uk".into(),
            country: "GB".into(),
        },
        contact: VerifyContact {
            email: "ops@contoso.co.uk".into(),
            phone: None,
            name: None,
        },
    }
}

#[tokio::test]
async fn answers_are_read() {
    let (url, fake) = start(vec![(
        200,
        json!({"identity": "unverified", "credit_score": 22, "provider_reference": "p-9"}),
        0,
    )])
    .await;
    let v = client(&url).verify(&request()).await;
    assert_eq!(
        v,
        Verification::Answered {
            identity_verified: Some(false),
            credit_score: Some(22),
            provider_reference: Some("p-9".into())
        }
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retried_with_the_same_key() {
    let ok = json!({"identity": "verified", "credit_score": 80});
    let (url, fake) = start(vec![
        (503, json!({}), 0),
        (200, ok.clone(), 500),
        (200, ok, 0),
    ])
    .await;
    let v = client(&url).verify(&request()).await;
    assert!(
        matches!(
            v,
            Verification::Answered {
                identity_verified: Some(true),
                credit_score: Some(80),
                ..
            }
        ),
        "{v:?}"
    );
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        3,
        "503, then a timeout, then the answer"
    );
    assert!(
        fake.keys
            .lock()
            .unwrap()
            .iter()
            .all(|k| k == "assessment-1")
    );
}

#[tokio::test]
async fn client_errors_are_final_and_reported() {
    let (url, fake) = start(vec![(400, json!({"error": "bad country"}), 0)]).await;
    let v = client(&url).verify(&request()).await;
    assert!(
        matches!(&v, Verification::Unavailable { why } if why.contains("HTTP 400")),
        "{v:?}"
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failing_provider_opens_the_circuit() {
    let (url, fake) = start(vec![(500, json!({}), 0)]).await;
    let c = client(&url);
    for _ in 0..2 {
        assert!(matches!(
            c.verify(&request()).await,
            Verification::Unavailable { .. }
        ));
    }
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        6,
        "two calls of three attempts each"
    );
    let v = c.verify(&request()).await;
    assert!(
        matches!(&v, Verification::Unavailable { why } if why.contains("circuit open")),
        "{v:?}"
    );
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        6,
        "no call while the circuit is open"
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable() {
    let v = client("http://127.0.0.1:9").verify(&request()).await;
    assert!(matches!(v, Verification::Unavailable { .. }));
}
