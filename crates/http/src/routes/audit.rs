use axum::Json;
use axum::extract::State;
use riskdesk_domain::Permission;
use riskdesk_storage::audit::{self, AuditFilter};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::dto::{AuditEntry, Page, check_limit, decode_cursor, page};
use crate::error::{ApiError, Problem, Validator};
use crate::extract::{ApiQuery, Caller};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries about this entity (customer, subscription, token, tenant id).
    pub entity_id: Option<String>,
    /// `customer`, `subscription`, `token` or `tenant`.
    pub entity_type: Option<String>,
    /// e.g. `subscription.suspend`.
    pub action: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The tenant's audit log in chain order (oldest first). Each entry carries its hash and its
/// predecessor's, so a client can check the chain itself.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_audit"))),
    params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list_audit(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    caller.require(Permission::ReadAudit)?;
    let mut v = Validator::default();
    let limit = v.check(
        "limit",
        check_limit(q.limit).map_err(|_| "must be between 1 and 500"),
    );
    let after = v.check(
        "cursor",
        decode_cursor::<i64>(&q.cursor).map_err(|_| "is not a cursor this API returned"),
    );
    v.finish()?;
    let limit = limit.unwrap_or(crate::dto::DEFAULT_LIMIT);
    let filter = AuditFilter {
        entity_id: q.entity_id,
        entity_type: q.entity_type,
        action: q.action,
    };
    let rows = audit::list(s.db(), caller.tenant(), &filter, after.flatten(), limit + 1).await?;
    Ok(Json(page(
        rows,
        limit,
        |r| r.seq.to_string(),
        AuditEntry::from,
    )))
}
