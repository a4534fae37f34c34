//! A fake OpenID Connect issuer for tests (feature `fake`), shaped like Entra ID's v2.0
//! endpoints: discovery, `/authorize` (the person configured with [`FakeIssuer::sign_in_as`]
//! "signs in" at once and the browser is sent back with a code and the state), `/token` (the
//! code redeemed once, with the client secret, the same redirect URI and a `code_verifier`
//! whose S256 hash is the challenge — else `invalid_grant`), and `/keys` (the JWKS). ID tokens
//! are RS256-signed with the test key in `testdata/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const KEY: &[u8] = include_bytes!("../testdata/oidc-test-key.pk8");
const JWK: &str = include_str!("../testdata/oidc-test-key.jwk.json");

#[derive(Clone, Debug)]
pub struct Person {
    pub oid: String,
    pub tid: String,
    pub email: String,
    pub name: String,
}

struct Pending {
    challenge: String,
    nonce: String,
    redirect_uri: String,
    client_id: String,
    person: Person,
}

#[derive(Default)]
struct FakeState {
    person: Option<Person>,
    codes: HashMap<String, Pending>,
    /// Each /authorize request's query, for tests to assert on.
    authorize_requests: Vec<HashMap<String, String>>,
    /// Token requests refused (wrong verifier, reused code, …), with why.
    refusals: Vec<String>,
    client_secret: String,
    next: u64,
}

type Shared = Arc<Mutex<FakeState>>;

pub struct FakeIssuer {
    /// `http://127.0.0.1:PORT/<tenant>/v2.0`: the issuer, as Entra ID names its own.
    pub issuer: String,
    state: Shared,
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl FakeIssuer {
    /// Starts the issuer for a client whose secret is `client_secret`.
    pub async fn start(client_secret: &str) -> Self {
        let state: Shared = Arc::default();
        state.lock().expect("state").client_secret = client_secret.to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake issuer");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let issuer = format!("{base}/fake-directory/v2.0");
        let app = Router::new()
            .route(
                "/fake-directory/v2.0/.well-known/openid-configuration",
                get({
                    let issuer = issuer.clone();
                    move || async move {
                        axum::Json(json!({
                            "issuer": issuer,
                            "authorization_endpoint": format!("{issuer}/authorize"),
                            "token_endpoint": format!("{issuer}/token"),
                            "jwks_uri": format!("{issuer}/keys"),
                            "response_types_supported": ["code"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                        }))
                    }
                }),
            )
            .route("/fake-directory/v2.0/authorize", get(authorize))
            .route("/fake-directory/v2.0/token", post(token))
            .route(
                "/fake-directory/v2.0/keys",
                get(|| async {
                    let jwk: Value = serde_json::from_str(JWK).expect("the test JWK");
                    axum::Json(json!({ "keys": [jwk] }))
                }),
            )
            .with_state((state.clone(), issuer.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeIssuer { issuer, state }
    }

    /// The person who signs in at the next /authorize.
    pub fn sign_in_as(&self, p: Person) {
        self.state.lock().expect("state").person = Some(p);
    }

    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().expect("state").authorize_requests.clone()
    }

    pub fn refusals(&self) -> Vec<String> {
        self.state.lock().expect("state").refusals.clone()
    }
}

async fn authorize(
    State((s, _)): State<(Shared, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = s.lock().expect("state");
    st.authorize_requests.push(q.clone());
    let need = |k: &str| q.get(k).cloned().unwrap_or_default();
    if need("response_type") != "code" || need("code_challenge_method") != "S256" {
        return (
            StatusCode::BAD_REQUEST,
            "response_type=code and S256 PKCE required",
        )
            .into_response();
    }
    let Some(person) = st.person.clone() else {
        return (StatusCode::FORBIDDEN, "nobody signs in").into_response();
    };
    st.next += 1;
    let code = format!("code-{}", st.next);
    st.codes.insert(
        code.clone(),
        Pending {
            challenge: need("code_challenge"),
            nonce: need("nonce"),
            redirect_uri: need("redirect_uri"),
            client_id: need("client_id"),
            person,
        },
    );
    let to = format!(
        "{}?{}",
        need("redirect_uri"),
        form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", &need("state"))
            .finish()
    );
    Redirect::to(&to).into_response()
}

async fn token(State((s, issuer)): State<(Shared, String)>, body: String) -> Response {
    let f: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let mut st = s.lock().expect("state");
    let refuse = |st: &mut FakeState, why: &str| {
        st.refusals.push(why.to_owned());
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response()
    };
    if get("grant_type") != "authorization_code" {
        return refuse(&mut st, "grant_type");
    }
    if get("client_secret") != st.client_secret {
        return refuse(&mut st, "client_secret");
    }
    let Some(p) = st.codes.remove(&get("code")) else {
        return refuse(&mut st, "unknown or reused code");
    };
    if b64(&Sha256::digest(get("code_verifier").as_bytes())) != p.challenge {
        return refuse(&mut st, "code_verifier does not match the code_challenge");
    }
    if get("redirect_uri") != p.redirect_uri || get("client_id") != p.client_id {
        return refuse(&mut st, "redirect_uri or client_id differs");
    }
    let now = jiff::Timestamp::now().as_second();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "riskdesk-test-1"});
    let claims = json!({
        "iss": issuer, "aud": p.client_id, "sub": format!("pairwise-{}", p.person.oid),
        "oid": p.person.oid, "tid": p.person.tid, "preferred_username": p.person.email,
        "name": p.person.name, "nonce": p.nonce, "iat": now, "nbf": now, "exp": now + 3600,
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = ring::signature::RsaKeyPair::from_pkcs8(KEY).expect("the test key");
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    axum::Json(json!({
        "token_type": "Bearer", "expires_in": "3600", "scope": "openid profile email",
        "access_token": "fake-access-token", "id_token": format!("{input}.{}", b64(&sig)),
    }))
    .into_response()
}
