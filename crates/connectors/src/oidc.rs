//! Sign-in with Microsoft Entra ID (OpenID Connect, authorization code flow with PKCE), as
//! documented by Microsoft ("Microsoft identity platform and OpenID Connect protocol"):
//! discovery at `{issuer}/.well-known/openid-configuration`, the browser sent to the
//! `authorization_endpoint` with `response_type=code`, `state`, `nonce` and an S256
//! `code_challenge`, the code redeemed at the `token_endpoint` (form body, the client secret
//! and the `code_verifier`), and the `id_token` verified here: RS256 signature by a key of
//! `jwks_uri` (by `kid`), `iss` equal to the discovered issuer, `aud` the client id, `exp` and
//! `nbf` with a 5-minute skew, and the `nonce` of this sign-in. Entra's `oid` (the person's
//! object id in the directory) is the stable subject; `tid` names the directory.
//!
//! Tested against the fake issuer of `oidc_fake` (feature `fake`), which implements the same
//! endpoints and checks PKCE.

use base64::Engine as _;
use rand_core_shim::fill_random;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, serde::Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The issuer, e.g. `https://login.microsoftonline.com/<directory id>/v2.0` (Entra ID's
    /// v2.0 endpoint of the partner's directory).
    pub issuer: String,
    /// The application (client) id of riskdesk's app registration.
    pub client_id: String,
    pub client_secret: String,
    /// Where Entra ID sends the browser back: `https://<riskdesk host>/ui/login/entra/callback`,
    /// registered as a redirect URI of the app registration.
    pub redirect_uri: String,
    /// Only people of this directory (`tid`) are let in (default: any the issuer vouches for).
    #[serde(default)]
    pub directory_id: Option<String>,
    /// Milliseconds for each call to the issuer.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    10_000
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider could not be reached or answered badly: {0}")]
    Provider(String),
    #[error("the ID token is not valid: {0}")]
    Token(String),
}

#[derive(Clone, Debug, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

/// What riskdesk reads of a verified ID token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `oid` when present (Entra), else `sub`.
    pub subject: String,
    pub directory_id: Option<String>,
    /// `email`, else `preferred_username` (Entra's sign-in name), lower case.
    pub email: Option<String>,
    pub name: Option<String>,
}

/// The secrets of one sign-in attempt, kept by the browser in a cookie until the callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

mod rand_core_shim {
    /// Random bytes from the operating system (ring's generator).
    pub fn fill_random(buf: &mut [u8]) {
        use ring::rand::SecureRandom as _;
        ring::rand::SystemRandom::new()
            .fill(buf)
            .expect("the operating system's random source works");
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    fill_random(&mut b);
    b64(&b)
}

impl Flow {
    pub fn new() -> Self {
        Flow {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
        }
    }

    /// The S256 code challenge of the verifier (RFC 7636 §4.2).
    pub fn challenge(&self) -> String {
        b64(&Sha256::digest(self.verifier.as_bytes()))
    }

    /// `state.nonce.verifier`: URL-safe base64 parts, so a dot never occurs inside one.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.state, self.nonce, self.verifier)
    }

    pub fn decode(s: &str) -> Option<Flow> {
        let mut it = s.split('.');
        let (state, nonce, verifier) = (it.next()?, it.next()?, it.next()?);
        let ok = |p: &str| {
            !p.is_empty()
                && p.len() <= 100
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        (it.next().is_none() && ok(state) && ok(nonce) && ok(verifier)).then(|| Flow {
            state: state.into(),
            nonce: nonce.into(),
            verifier: verifier.into(),
        })
    }
}

impl Default for Flow {
    fn default() -> Self {
        Self::new()
    }
}

pub struct Client {
    pub settings: OidcSettings,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

const SKEW: i64 = 300;

impl Client {
    pub fn new(settings: OidcSettings) -> Result<Self, OidcError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(
                settings.timeout_ms.max(100),
            ))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OidcError::Provider(e.to_string()))?;
        Ok(Client { settings, http })
    }

    pub async fn discover(&self) -> Result<Discovery, OidcError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        if !r.status().is_success() {
            return Err(OidcError::Provider(format!("{url}: {}", r.status())));
        }
        r.json::<Discovery>()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))
    }

    /// Where to send the browser to sign in.
    pub fn authorize_url(&self, d: &Discovery, flow: &Flow) -> String {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &self.settings.redirect_uri)
            .append_pair("response_mode", "query")
            .append_pair("scope", "openid profile email")
            .append_pair("state", &flow.state)
            .append_pair("nonce", &flow.nonce)
            .append_pair("code_challenge", &flow.challenge())
            .append_pair("code_challenge_method", "S256")
            .finish();
        let sep = if d.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}{q}", d.authorization_endpoint)
    }

    /// Redeems the code and verifies the ID token it brings; `now` in Unix seconds.
    pub async fn redeem(
        &self,
        d: &Discovery,
        code: &str,
        flow: &Flow,
        now: i64,
    ) -> Result<Identity, OidcError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.settings.redirect_uri),
            ("client_id", &self.settings.client_id),
            ("client_secret", &self.settings.client_secret),
            ("code_verifier", &flow.verifier),
            ("scope", "openid profile email"),
        ];
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let r = self
            .http
            .post(&d.token_endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let status = r.status();
        let t: TokenAnswer = r
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint ({status}): {e}")))?;
        let jwt = match (t.id_token, t.error) {
            (Some(j), None) => j,
            (_, Some(e)) => {
                return Err(OidcError::Provider(format!(
                    "token endpoint refused the code: {e}{}",
                    t.error_description
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                )));
            }
            (None, None) => return Err(OidcError::Provider("no id_token in the answer".into())),
        };
        let jwks: Jwks = self
            .http
            .get(&d.jwks_uri)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("jwks: {e}")))?
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("jwks: {e}")))?;
        verify(&jwt, &jwks.keys, d, &self.settings, &flow.nonce, now)
    }
}

fn verify(
    jwt: &str,
    keys: &[Jwk],
    d: &Discovery,
    s: &OidcSettings,
    nonce: &str,
    now: i64,
) -> Result<Identity, OidcError> {
    let bad = |m: &str| OidcError::Token(m.to_owned());
    let mut parts = jwt.split('.');
    let (h, p, sig) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => (h, p, s),
        _ => return Err(bad("not a JWS compact serialisation")),
    };
    let dec = |x: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(x)
            .map_err(|_| bad("a part is not base64url"))
    };
    let header: Header =
        serde_json::from_slice(&dec(h)?).map_err(|_| bad("the header is not JSON"))?;
    if header.alg != "RS256" {
        return Err(bad(&format!(
            "algorithm {} is not accepted (RS256 only)",
            header.alg
        )));
    }
    let key = keys
        .iter()
        .filter(|k| k.kty == "RSA")
        .find(|k| header.kid.is_none() || k.kid == header.kid)
        .ok_or_else(|| bad("no key of the issuer has this kid"))?;
    let (n, e) = match (&key.n, &key.e) {
        (Some(n), Some(e)) => (dec(n)?, dec(e)?),
        _ => return Err(bad("the issuer's key has no modulus or exponent")),
    };
    let public = ring::signature::RsaPublicKeyComponents { n: &n, e: &e };
    public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            format!("{h}.{p}").as_bytes(),
            &dec(sig)?,
        )
        .map_err(|_| bad("the signature does not verify"))?;
    let c: Claims = serde_json::from_slice(&dec(p)?).map_err(|_| bad("the claims are not JSON"))?;
    if c.iss != d.issuer {
        return Err(bad(&format!("issued by {}, not {}", c.iss, d.issuer)));
    }
    let aud_ok = match &c.aud {
        serde_json::Value::String(a) => a == &s.client_id,
        serde_json::Value::Array(a) => a.iter().any(|x| x.as_str() == Some(&s.client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(bad("issued for another application"));
    }
    if c.exp + SKEW < now {
        return Err(bad("expired"));
    }
    if c.nbf.is_some_and(|nbf| nbf - SKEW > now) {
        return Err(bad("not valid yet"));
    }
    if c.nonce.as_deref() != Some(nonce) {
        return Err(bad("the nonce is not this sign-in's"));
    }
    if let Some(want) = &s.directory_id
        && c.tid.as_deref() != Some(want.as_str())
    {
        return Err(bad("the person belongs to another directory"));
    }
    Ok(Identity {
        subject: c.oid.unwrap_or(c.sub),
        directory_id: c.tid,
        email: c
            .email
            .or(c.preferred_username)
            .map(|e| e.trim().to_lowercase())
            .filter(|e| e.contains('@')),
        name: c.name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_round_trips_and_refuses_garbage() {
        let f = Flow::new();
        assert_eq!(Flow::decode(&f.encode()), Some(f.clone()));
        for bad in ["", "a.b", "a.b.c.d", "a..c", "a.b.c=", "a.b.<script>"] {
            assert_eq!(Flow::decode(bad), None, "{bad}");
        }
        // RFC 7636 appendix B.
        let f = Flow {
            state: "s".into(),
            nonce: "n".into(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        };
        assert_eq!(f.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
