//! The block list: typed identifiers that refuse a sign-up (reason `blocklisted`).

use crate::extract::Path;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use riskdesk_domain::Permission;
use riskdesk_domain::response::blocklist::{BlockKind, normalize};
use riskdesk_storage::blocklist::{self, BlockRow};
use riskdesk_storage::time::to_micros;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::parse_id;
use crate::AppState;
use crate::error::{ApiError, Problem, Validator};
use crate::extract::{ApiJson, ApiQuery, Caller, IdempotencyKey};
use crate::idem::{self, Fingerprint};
use riskdesk_app::kernel::time::parse_as_of;
use riskdesk_app::kernel::time::rfc3339;
use riskdesk_app::response::blocklist::{self as app_blocklist, NewBlock};

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockOut {
    pub id: Uuid,
    /// email, domain, phone, ip, bin, device
    pub kind: String,
    /// Normalised: lower-case email/domain, E.164 phone, `network/prefix` for IPs.
    pub value: String,
    pub reason: String,
    pub case_id: Option<Uuid>,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub removed_at: Option<String>,
    pub removed_by: Option<String>,
}

impl From<BlockRow> for BlockOut {
    fn from(b: BlockRow) -> Self {
        BlockOut {
            id: b.id,
            kind: b.kind,
            value: b.value,
            reason: b.reason,
            case_id: b.case_id,
            created_by: b.created_by,
            created_at: rfc3339(b.created_at),
            expires_at: b.expires_at.map(rfc3339),
            removed_at: b.removed_at.map(rfc3339),
            removed_by: b.removed_by,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockIn {
    /// email, domain (and its subdomains), phone (E.164), ip (address or CIDR range), bin (6–8
    /// digits: every card starting with it), device
    pub kind: String,
    pub value: String,
    pub reason: String,
    /// Until when (RFC 3339); none: until removed.
    pub expires_at: Option<String>,
    /// The case this comes from (the entry goes on its timeline).
    pub case_id: Option<Uuid>,
}

/// Adds an identifier to the block list (audited). Sign-ups matching an entry in force are
/// refused with reason `blocklisted`.
#[utoipa::path(post, path = "/v1/blocklist", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = BlockIn,
    responses((status = 201, body = BlockOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn add(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<BlockIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WorkCases)?;
    let b = &body.value;
    let mut v = Validator::default();
    let kind = v.check(
        "kind",
        BlockKind::parse(&b.kind).ok_or("must be email, domain, phone, ip, bin or device"),
    );
    let value = kind.and_then(|k| v.check("value", normalize(k, &b.value)));
    let reason = riskdesk_domain::customer::parse_note(&b.reason)
        .map_err(|e| v.fail("reason", &e.0))
        .ok();
    let now = s.clock.now();
    let expires = b.expires_at.as_deref().and_then(|t| {
        v.check(
            "expires_at",
            t.parse::<Timestamp>()
                .map_err(|_| "is not an RFC 3339 time".to_owned())
                .and_then(|t| {
                    if t > now {
                        Ok(t)
                    } else {
                        Err("must be in the future".to_owned())
                    }
                }),
        )
    });
    v.finish()?;
    let fp = Fingerprint {
        key: &key,
        method_path: "POST /v1/blocklist".into(),
        body_sha256: &body.body_sha256,
    };
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row = app_blocklist::add(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        NewBlock {
            kind: kind.expect("validated"),
            value: value.expect("validated"),
            reason: reason.unwrap_or_default(),
            case: b.case_id,
            expires_at: expires,
        },
        now,
    )
    .await?;
    idem::finish(tx, &caller, &fp, StatusCode::CREATED, &BlockOut::from(row)).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BlockQuery {
    pub kind: Option<String>,
    /// `true` (default): only entries in force at `as_of`; `false`: every entry, newest first.
    pub active: Option<bool>,
    pub as_of: Option<String>,
}

/// The block list.
#[utoipa::path(get, path = "/v1/blocklist", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(BlockQuery),
    responses((status = 200, body = Vec<BlockOut>), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<BlockQuery>,
) -> Result<Json<Vec<BlockOut>>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    if let Some(k) = &q.kind
        && BlockKind::parse(k).is_none()
    {
        return Err(ApiError::field(
            "kind",
            "must be email, domain, phone, ip, bin or device",
        ));
    }
    let rows = if q.active.unwrap_or(true) {
        let at = parse_as_of(&q.as_of, s.clock.now())?;
        blocklist::active(s.db(), caller.tenant(), q.kind.as_deref(), to_micros(at)).await?
    } else {
        blocklist::all(s.db(), caller.tenant(), q.kind.as_deref(), 5_000).await?
    };
    Ok(Json(rows.into_iter().map(BlockOut::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveIn {
    pub note: Option<String>,
}

/// Takes an entry off the block list (kept, marked removed; audited).
#[utoipa::path(post, path = "/v1/blocklist/{id}/remove", tag = "cases", security(("bearer" = [])),
    extensions(("x-permission" = json!("work_cases"))),
    params(("id" = Uuid, Path, description = "entry id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = RemoveIn,
    responses((status = 200, body = BlockOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<RemoveIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::WorkCases)?;
    let id: Uuid = parse_id(&id, "block-list entry")?;
    let note = body
        .value
        .note
        .as_deref()
        .map(|n| riskdesk_domain::customer::parse_note(n).map_err(|e| ApiError::field("note", e.0)))
        .transpose()?;
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/blocklist/{id}/remove"),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let after = app_blocklist::remove(
        &mut tx,
        caller.tenant(),
        &caller.actor(),
        id,
        note.as_deref(),
        now,
    )
    .await?;
    idem::finish(tx, &caller, &fp, StatusCode::OK, &BlockOut::from(after)).await
}
