use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::Caller;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process answers. Does not touch the database (see `/readyz`).
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.db().ping().await {
        Ok(()) => (StatusCode::OK, Json(Health { status: "ok" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            let mut r = ApiError::Internal("database unreachable".into()).into_response();
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            r
        }
    }
}

/// Prometheus text exposition of the server's metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}

/// This API's OpenAPI 3.1 document, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, content_type = "application/json", body = Object)))]
pub async fn openapi(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        s.openapi_json.as_ref().clone(),
    )
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub tenant_id: uuid::Uuid,
    pub token_id: uuid::Uuid,
    pub name: String,
    pub role: riskdesk_domain::Role,
}

/// Who the bearer token is: its tenant, name and role.
#[utoipa::path(get, path = "/v1/me", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn me(caller: Caller) -> Json<Me> {
    let p = caller.0;
    Json(Me {
        tenant_id: p.tenant_id.0,
        token_id: p.token_id.0,
        name: p.name,
        role: p.role,
    })
}
