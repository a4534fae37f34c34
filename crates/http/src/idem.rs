//! Idempotent POSTs: a write handler calls [`begin`] first thing in its unit of work and
//! [`finish`] last; `finish` stores the response and commits, so they and the effect are one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use riskdesk_app::Uow;
use riskdesk_storage::Tx;
use riskdesk_storage::idempotency::{self, Claim};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::{Caller, IdempotencyKey};

/// The identity of a request for idempotency: same key + same method, path and body = same
/// request.
pub struct Fingerprint<'a> {
    pub key: &'a IdempotencyKey,
    pub method_path: String,
    pub body_sha256: &'a str,
}

impl<'a> Fingerprint<'a> {
    /// A POST without a body: the method and path alone identify it.
    pub fn without_body(key: &'a IdempotencyKey, method_path: String) -> Self {
        Fingerprint {
            key,
            method_path,
            body_sha256: "",
        }
    }

    fn hash(&self) -> String {
        hex::encode(Sha256::digest(format!(
            "{}\n{}",
            self.method_path, self.body_sha256
        )))
    }
}

/// Claims the key. `Ok(Some(response))` means answer with that stored response and do nothing.
pub async fn begin(
    tx: &mut Tx,
    caller: &Caller,
    fp: &Fingerprint<'_>,
    now: Timestamp,
) -> Result<Option<Response>, ApiError> {
    let Some(key) = &fp.key.0 else {
        return Ok(None);
    };
    match idempotency::claim(tx, caller.tenant(), key, &fp.hash(), now).await? {
        Claim::Fresh => Ok(None),
        Claim::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut resp = (status, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(Some(resp))
        }
        Claim::Mismatch => Err(ApiError::IdempotencyMismatch(format!(
            "Idempotency-Key '{key}' was already used with a different request (method, path or body)"
        ))),
    }
}

/// Serialises the response, stores it under the key (if any), commits the unit of work and
/// returns the response: the effect, the stored response and the commit cannot come apart.
pub async fn finish<T: Serialize>(
    mut tx: Uow,
    caller: &Caller,
    fp: &Fingerprint<'_>,
    status: StatusCode,
    body: &T,
) -> Result<Response, ApiError> {
    let json = serde_json::to_string(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(key) = &fp.key.0 {
        idempotency::complete(&mut tx, caller.tenant(), key, status.as_u16(), &json).await?;
    }
    tx.commit().await?;
    let mut resp = (status, json).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
