//! Request extractors that turn every malformed input into a precise problem, never a panic or
//! axum's plain-text rejection.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use riskdesk_domain::Permission;
use riskdesk_domain::audit::Actor;
use riskdesk_storage::tokens::Principal;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// A JSON body read strictly (unknown fields are refused by the DTOs), with the SHA-256 of its
/// raw bytes for idempotency checks.
pub struct ApiJson<T> {
    pub value: T,
    pub body_sha256: String,
}

fn is_json(ct: &str) -> bool {
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !is_json(&ct) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected a JSON body with Content-Type: application/json, got '{}'",
                if ct.is_empty() { "nothing" } else { &ct }
            )));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!(
                    "the body exceeds the limit of {} bytes",
                    crate::BODY_LIMIT
                ))
            } else {
                ApiError::BadRequest(format!("could not read the body: {e}"))
            }
        })?;
        let value = parse_json(&bytes)?;
        Ok(ApiJson {
            value,
            body_sha256: hex::encode(Sha256::digest(&bytes)),
        })
    }
}

pub use riskdesk_app::kernel::json::strip_position;

/// Deserialises with the failing field's path in the message.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    Ok(riskdesk_app::kernel::json::parse_json(bytes)?)
}

/// A path parameter; a segment that is not UTF-8 text (`/v1/customers/%FF`) is a problem
/// document like every other error, not axum's plain-text rejection.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e| ApiError::BadRequest(format!("the path is not valid: {}", e.body_text())))
    }
}

/// Query parameters, strictly: unknown parameters and bad values are a 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            if let Some(m) = riskdesk_app::kernel::json::control_character_in_parameter(&v)
                .or_else(|| riskdesk_app::kernel::json::control_character_in_parameter(&k))
            {
                return Err(ApiError::field(&k, m));
            }
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                ApiError::field(
                    if path == "." { "query" } else { &path },
                    e.into_inner().to_string(),
                )
            })
    }
}

/// The `Idempotency-Key` header, when present: 1 to 255 visible ASCII characters.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let s = v
            .to_str()
            .map_err(|_| ApiError::field("Idempotency-Key", "must be visible ASCII"))?;
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::field(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(IdempotencyKey(Some(s.to_owned())))
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is case-insensitive
/// (RFC 9110 §11.1), one or more spaces follow it, and the token is one non-empty word.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_matches(' ');
    (!token.is_empty() && !token.contains(char::is_whitespace)).then_some(token)
}

/// The authenticated caller. Every `/v1` handler takes one; it is the only way to learn the
/// tenant, so no handler can forget to scope a query by tenant.
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

impl Caller {
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.0.role.allows(p) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "role '{}' may not do this",
                self.0.role.as_str()
            )))
        }
    }

    pub fn actor(&self) -> Actor {
        Actor::token(&self.0.name, self.0.role)
    }

    pub fn tenant(&self) -> riskdesk_domain::TenantId {
        self.0.tenant_id
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Authenticated already by `strict::authorize_first` (one look-up per request).
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        authenticate(&parts.headers, state).await
    }
}

/// The caller an `Authorization: Bearer <token>` header names: exactly one such header, a
/// token that is neither invalid nor revoked (remembered for a moment by the auth cache).
pub async fn authenticate(headers: &HeaderMap, state: &AppState) -> Result<Caller, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or_else(|| {
        ApiError::Unauthorized("missing Authorization: Bearer <token> header".into())
    })?;
    if values.next().is_some() {
        // Which one would be meant? Refuse rather than pick (RFC 9110 §11.6.2: one value).
        return Err(ApiError::Unauthorized(
            "more than one Authorization header: send exactly one".into(),
        ));
    }
    let token = value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
        ApiError::Unauthorized("the Authorization header must be 'Bearer <token>'".into())
    })?;
    if let Some(p) = state.auth_cache.get(token) {
        return Ok(Caller(p));
    }
    match riskdesk_storage::tokens::authenticate(state.db(), token).await? {
        Some(p) => {
            state.auth_cache.put(token, &p);
            Ok(Caller(p))
        }
        None => Err(ApiError::Unauthorized(
            "the token is invalid or revoked".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_one_word() {
        for ok in [
            "Bearer rdk_x",
            "bearer rdk_x",
            "BEARER rdk_x",
            "BeArEr   rdk_x  ",
        ] {
            assert_eq!(bearer_token(ok), Some("rdk_x"), "{ok}");
        }
        for bad in [
            "Bearer",
            "Bearer ",
            "Basic rdk_x",
            "Bearerrdk_x",
            "Bearer a b",
            "rdk_x",
        ] {
            assert_eq!(bearer_token(bad), None, "{bad}");
        }
    }
}
