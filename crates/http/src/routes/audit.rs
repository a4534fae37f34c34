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

/// The tenant's audit log, oldest first. Each entry carries its lane, its position in the lane,
/// its hash and its predecessor's, so a client can check each lane's chain itself.
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
        |r| r.pos.to_string(),
        AuditEntry::from,
    )))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckpointQuery {
    /// 1 to 500, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A signed statement that a lane of the tenant's audit chain ended at entry `seq` with hash
/// `hash` at time `at` (Ed25519 over `riskdesk audit checkpoint v1|v2` lines; see the README).
/// The JSON of one item is the line format `riskdesk audit verify --checkpoints` reads.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditCheckpoint {
    pub tenant_id: uuid::Uuid,
    pub lane: i32,
    pub seq: i64,
    pub hash: String,
    /// RFC 3339, UTC: when it was signed.
    pub at: String,
    /// The first 16 hex digits of SHA-256 of the signing public key.
    pub key_id: String,
    /// Hex.
    pub signature: String,
}

/// The signed checkpoints of the tenant's audit chain that the scheduler's `audit-checkpoint`
/// job stored, oldest first: an auditor keeps them outside riskdesk and checks the chain
/// against them later with the partner's public key.
#[utoipa::path(get, path = "/v1/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_audit"))),
    params(CheckpointQuery),
    responses((status = 200, body = Page<AuditCheckpoint>), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list_checkpoints(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CheckpointQuery>,
) -> Result<Json<Page<AuditCheckpoint>>, ApiError> {
    caller.require(Permission::ReadAudit)?;
    let mut v = Validator::default();
    let limit = v.check(
        "limit",
        check_limit(q.limit).map_err(|_| "must be between 1 and 500"),
    );
    let after = v.check(
        "cursor",
        decode_cursor::<String>(&q.cursor)
            .ok()
            .and_then(|c| match c {
                None => Some(None),
                Some(c) => {
                    let mut it = c.split(':').map(str::parse::<i64>);
                    match (it.next(), it.next(), it.next(), it.next()) {
                        (Some(Ok(a)), Some(Ok(l)), Some(Ok(s)), None) => {
                            Some(Some((a, i32::try_from(l).ok()?, s)))
                        }
                        _ => None,
                    }
                }
            })
            .ok_or("is not a cursor this API returned"),
    );
    v.finish()?;
    let limit = limit.unwrap_or(crate::dto::DEFAULT_LIMIT);
    let rows = audit::checkpoints(s.db(), caller.tenant().0, after.flatten(), limit + 1).await?;
    Ok(Json(page(
        rows,
        limit,
        |r| format!("{}:{}:{}", r.created_at, r.lane, r.seq),
        |r| AuditCheckpoint {
            tenant_id: r.tenant_id,
            lane: r.lane,
            seq: r.seq,
            hash: r.hash,
            at: r.at,
            key_id: r.key_id,
            signature: r.signature,
        },
    )))
}
