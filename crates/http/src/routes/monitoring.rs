//! Events in, budgets, alerts.

use crate::extract::Path;
use axum::Json;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use jiff::Timestamp;
use riskdesk_app::AppError;
use riskdesk_domain::lifecycle::LifecycleAction;
use riskdesk_domain::money::{Currency, Money};
use riskdesk_domain::monitoring::budget::{
    self, Budget, DEFAULT_THRESHOLDS, Enforcement, EnforcementMode,
};
use riskdesk_domain::monitoring::cost::format_picos;
use riskdesk_domain::monitoring::{Event, RawEvent};
use riskdesk_domain::{CustomerId, Permission};
use riskdesk_storage::alerts::{self, AlertFilter, AlertRow};
use riskdesk_storage::budgets::{self, BudgetRow};
use riskdesk_storage::customers;
use riskdesk_storage::time::to_micros;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::parse_id;
use crate::AppState;
use crate::dto::{Page, check_limit, decode_cursor, page, rfc3339};
use crate::error::{ApiError, Problem, Validator};
use crate::extract::{ApiJson, ApiQuery, Caller, IdempotencyKey, strip_position};
use crate::idem::{self, Fingerprint};
use riskdesk_app::alerts::triage::{Triage, triage_alert};
use riskdesk_app::monitoring::customer_budgets;
use riskdesk_app::monitoring::{self, IngestSummary};

/// Largest `POST /v1/events` body.
pub const EVENTS_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// Most events in one request.
pub const EVENTS_MAX: usize = 10_000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IngestQuery {
    /// Evaluate budgets as of this instant (RFC 3339; default: now). For replays and tests.
    pub as_of: Option<String>,
}

fn parse_as_of(raw: &Option<String>, now: Timestamp) -> Result<Timestamp, ApiError> {
    match raw {
        None => Ok(now),
        Some(s) => s
            .parse()
            .map_err(|_| ApiError::field("as_of", format!("'{s}' is not an RFC 3339 time"))),
    }
}

/// Parses a batch: a JSON array of events, or NDJSON (one event per line, index = line number
/// from 0; a blank line is rejected, a final newline is not a line). Each element fails alone.
pub fn parse_batch(bytes: &[u8], ndjson: bool) -> Result<Vec<Result<Event, String>>, ApiError> {
    Ok(parse_batch_raw(bytes, ndjson)?
        .into_iter()
        .map(|r| r.map(|(e, _)| e))
        .collect())
}

/// As [`parse_batch`], keeping each valid event's JSON as sent (what the event stream carries).
pub fn parse_batch_raw(
    bytes: &[u8],
    ndjson: bool,
) -> Result<Vec<Result<(Event, &[u8]), String>>, ApiError> {
    let parse_one = |v: &'_ [u8]| -> Result<Event, String> {
        serde_json::from_slice::<RawEvent>(v)
            .map_err(|e| strip_position(&e.to_string()))?
            .validate()
    };
    let out: Vec<Result<(Event, &[u8]), String>> = if ndjson {
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if body.is_empty() {
            Vec::new()
        } else {
            body.split(|b| *b == b'\n')
                .map(|l| {
                    let l = l.strip_suffix(b"\r").unwrap_or(l);
                    if l.iter().all(u8::is_ascii_whitespace) {
                        Err("empty line".to_owned())
                    } else {
                        parse_one(l).map(|e| (e, l))
                    }
                })
                .collect()
        }
    } else {
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_slice(bytes).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body is not a JSON array of events: {e} (send NDJSON with Content-Type: application/x-ndjson)"
            ))
        })?;
        items
            .into_iter()
            .map(|r| {
                let raw = r.get().as_bytes();
                parse_one(raw).map(|e| (e, raw))
            })
            .collect()
    };
    if out.len() > EVENTS_MAX {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} events in one request; at most {EVENTS_MAX}",
            out.len()
        )));
    }
    Ok(out)
}

/// Send usage and activity events: a JSON array (`application/json`) or NDJSON
/// (`application/x-ndjson`), at most 10,000 events and 8 MiB. Each event is accepted, a
/// duplicate (its `event_id` is already stored), or rejected with its index and the reason;
/// bad events never block good ones. Budgets of the customers touched are evaluated.
///
/// The answer (200) comes after every accepted event is committed. On an installation that
/// carries events through NATS JetStream (`[scale]`), `Prefer: respond-async` asks for 202
/// as soon as the stream has stored the batch (see the README for what that survives), and a
/// batch whose parts are not all applied within the wait is answered 202 too; either way
/// `Location` names `/v1/event-batches/{id}`, which gives the summary once it is applied. A
/// full or unreachable stream answers 503 with `Retry-After`: send the batch again with the
/// same `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/events", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("ingest_events"))),
    params(IngestQuery, ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry"),
           ("Prefer" = Option<String>, Header, description = "`respond-async`: answer 202 once the event stream has the batch (installations with `[scale]`; ignored otherwise)")),
    request_body(content = Vec<RawEvent>, description = "A JSON array of events, or the same objects as NDJSON lines (application/x-ndjson)"),
    responses((status = 200, body = IngestSummary),
              (status = 202, body = BatchQueued),
              (status = 503, body = Problem, content_type = "application/problem+json"),
              (status = 413, body = Problem, content_type = "application/problem+json"),
              (status = 415, body = Problem, content_type = "application/problem+json")))]
pub async fn post_events(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    ApiQuery(q): ApiQuery<IngestQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    caller.require(Permission::IngestEvents)?;
    let respond_async = req
        .headers()
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"));
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ndjson = match ct.as_str() {
        "application/json" => false,
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => true,
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "send application/json (an array) or application/x-ndjson, not '{}'",
                if other.is_empty() { "nothing" } else { other }
            )));
        }
    };
    let bytes = to_bytes(req.into_body(), EVENTS_BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(format!(
                "the body exceeds the limit of {EVENTS_BODY_LIMIT} bytes"
            ))
        })?;
    let now = s.clock.now();
    let as_of = parse_as_of(&q.as_of, now)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let fp = Fingerprint {
        key: &key,
        method_path: "POST /v1/events".into(),
        body_sha256: &sha,
    };
    if let Some(scale) = s.app.options.scale.clone() {
        let lines = parse_batch_raw(&bytes, ndjson)?;
        return post_events_to_stream(
            &s,
            &caller,
            &key,
            &fp,
            &scale,
            lines,
            now,
            as_of,
            respond_async,
        )
        .await;
    }
    let mut lines = parse_batch(&bytes, ndjson)?;
    // A batch bigger than a part is applied part by part, each its own bulk unit of work (on
    // SQLite, interactive writes waiting for the single writer go between two parts); the last
    // part also records the answer under the Idempotency-Key. A retry of a batch cut short
    // applies what is missing (what was applied counts as duplicates in that answer).
    let parts = lines.len().div_ceil(monitoring::INGEST_PART).max(1);
    if parts > 1 && key.0.is_some() {
        let mut tx = s.app.begin().await?;
        if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
            return Ok(replay);
        }
        // Not answered before: the claim is taken again with the last part.
        drop(tx);
    }
    let mut summary = monitoring::IngestSummary::default();
    // The parts' spend reaches the anomaly scorer once all are applied (when this drops).
    let hold = monitoring::spend::MarkHold::new(s.detector.clone());
    for p in 0..parts {
        let last = p + 1 == parts;
        let offset = p * monitoring::INGEST_PART;
        let part: Vec<_> = if last {
            std::mem::take(&mut lines)
        } else {
            lines.drain(..monitoring::INGEST_PART).collect()
        };
        let (tx, applied) = ingest_part(&s, &caller, &fp, part, now, as_of, last, &hold).await?;
        let applied = match applied {
            Ok(a) => a,
            Err(replay) => return Ok(replay),
        };
        summary.absorb(applied, offset);
        match tx {
            Some(tx) => return idem::finish(tx, &caller, &fp, StatusCode::OK, &summary).await,
            None => continue,
        }
    }
    unreachable!("the last part returns")
}

/// One part of a batch in its own bulk unit of work, run again (a bounded number of times)
/// when it loses a conflict with a concurrent unit of work (PostgreSQL's deadlock detector;
/// SQLite's single writer never loses one, so the part is not copied there). The last part
/// claims the Idempotency-Key and is returned uncommitted for the answer to be stored with it
/// (`Err`: the key was answered before: its replay).
#[allow(clippy::type_complexity)]
async fn ingest_part(
    s: &AppState,
    caller: &Caller,
    fp: &Fingerprint<'_>,
    lines: Vec<Result<Event, String>>,
    now: Timestamp,
    as_of: Timestamp,
    last: bool,
    hold: &monitoring::spend::MarkHold,
) -> Result<
    (
        Option<riskdesk_app::kernel::Uow>,
        Result<monitoring::IngestSummary, Response>,
    ),
    ApiError,
> {
    let retries = if s.db().backend() == riskdesk_storage::Backend::Postgres {
        INGEST_RETRIES
    } else {
        0
    };
    let mut lines = Some(lines);
    let mut attempt = 0;
    loop {
        let mut tx = s.app.begin_bulk().await?;
        if last && let Some(replay) = idem::begin(&mut tx, caller, fp, now).await? {
            return Ok((None, Err(replay)));
        }
        let batch = if attempt < retries {
            lines.clone().unwrap_or_default()
        } else {
            lines.take().unwrap_or_default()
        };
        match monitoring::ingest_part(
            &mut tx,
            caller.tenant(),
            &s.detector,
            batch,
            now,
            as_of,
            hold,
        )
        .await
        {
            Err(AppError::Contention(e)) if attempt < retries => {
                tracing::info!(error = %e, attempt, "ingest lost a conflict; running it again");
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
            Ok(summary) if last => return Ok((Some(tx), Ok(summary))),
            Ok(summary) => {
                tx.commit().await?;
                return Ok((None, Ok(summary)));
            }
        }
    }
}

/// How many times a batch that lost a conflict is run again.
const INGEST_RETRIES: u32 = 3;

/// A batch in the event stream, not (all) applied yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchQueued {
    pub batch_id: Uuid,
    /// `queued`.
    pub status: String,
    /// Messages the batch was cut into (one or more per partition of its customers).
    pub parts: u32,
}

/// `POST /v1/events` with `[scale]`: published to the stream; the key (if any) is claimed in a
/// unit of work held open until the answer is stored with it, so a retry waits for this one
/// and then replays its answer.
#[allow(clippy::too_many_arguments)]
async fn post_events_to_stream(
    s: &AppState,
    caller: &Caller,
    key: &IdempotencyKey,
    fp: &Fingerprint<'_>,
    scale: &riskdesk_app::monitoring::stream::Scale,
    lines: Vec<Result<(Event, &[u8]), String>>,
    now: Timestamp,
    as_of: Timestamp,
    respond_async: bool,
) -> Result<Response, ApiError> {
    use riskdesk_app::monitoring::stream::{self, Submitted};
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, caller, fp, now).await? {
        return Ok(replay);
    }
    let batch = stream::batch_id(caller.tenant(), key.0.as_deref());
    let r = stream::submit(
        &s.app.ctx,
        scale,
        caller.tenant(),
        batch,
        lines,
        now,
        as_of,
        !respond_async,
    )
    .await?;
    match r {
        Submitted::Applied(summary) => idem::finish(tx, caller, fp, StatusCode::OK, &summary).await,
        Submitted::Queued { batch_id, parts } => {
            let body = BatchQueued {
                batch_id,
                status: "queued".into(),
                parts,
            };
            let mut resp = idem::finish(tx, caller, fp, StatusCode::ACCEPTED, &body).await?;
            if let Ok(v) = header::HeaderValue::from_str(&format!("/v1/event-batches/{batch_id}")) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Ok(resp)
        }
    }
}

/// A batch sent through the event stream: its parts applied so far and, once all are, what
/// it did (the summary `POST /v1/events` would have answered).
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchOut {
    pub batch_id: Uuid,
    /// `applying` (some parts applied) or `applied`.
    pub status: String,
    pub parts: u32,
    pub parts_applied: u32,
    pub summary: Option<IngestSummary>,
}

/// Where a batch sent with `Prefer: respond-async` (or answered 202) stands. A batch none of
/// whose parts is applied yet is not known here (404): ask again shortly.
#[utoipa::path(get, path = "/v1/event-batches/{id}", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("ingest_events"))),
    params(("id" = String, Path, description = "The `batch_id` of the 202 answer")),
    responses((status = 200, body = BatchOut),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_event_batch(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BatchOut>, ApiError> {
    caller.require(Permission::IngestEvents)?;
    let id: Uuid = parse_id(&id, "batch")?;
    let st =
        riskdesk_app::monitoring::stream::batch_status(&s.app.ctx, caller.tenant(), id).await?;
    let Some(parts) = st.parts else {
        return Err(ApiError::NotFound(format!(
            "no part of batch {id} is applied yet (or it is older than the idempotency retention)"
        )));
    };
    Ok(Json(BatchOut {
        batch_id: id,
        status: if st.summary.is_some() {
            "applied"
        } else {
            "applying"
        }
        .into(),
        parts,
        parts_applied: st.applied,
        summary: st.summary,
    }))
}

/// A budget as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetIn {
    /// Decimal string in `currency`, e.g. "5000.00".
    pub monthly_amount: String,
    pub currency: String,
    /// Percentages of the monthly amount that notify when reached (default 50, 75, 90, 100).
    pub thresholds: Option<Vec<u32>>,
    /// Amounts in `currency` that notify when reached.
    pub absolute_thresholds: Option<Vec<String>>,
    pub enforcement: Option<EnforcementIn>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnforcementIn {
    /// e.g. 150 (% of the monthly amount).
    pub at_percent: u32,
    /// `suspend` or `disable_access` (every active subscription of the customer).
    pub action: String,
    /// `auto` (applied at once) or `require_approval` (an alert proposes it).
    pub mode: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnforcementOut {
    pub at_percent: u32,
    pub action: String,
    pub mode: String,
}

/// A budget and where the month stands against it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetOut {
    pub customer_id: Uuid,
    pub monthly_amount: String,
    pub currency: String,
    pub thresholds: Vec<u32>,
    pub absolute_thresholds: Vec<String>,
    pub enforcement: Option<EnforcementOut>,
    pub updated_at: String,
    /// The month (UTC) the figures below are for, `YYYY-MM`.
    pub month: String,
    pub as_of: String,
    /// Month-to-date spend in the budget's currency (decimal string, up to 12 decimals).
    pub month_to_date: String,
    /// Spend as a percentage of the monthly amount (two decimals).
    pub percent_used: f64,
    /// Month-to-date plus the average daily rate over the rest of the month.
    pub forecast_month_end: String,
    /// Marks reached this month: `percent:50`, `absolute:<minor units>`, `forecast`.
    pub thresholds_crossed: Vec<String>,
    /// Spend this month in other currencies (not converted, not counted against the budget).
    pub other_currencies: Vec<OtherCurrency>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OtherCurrency {
    pub currency: String,
    pub amount: String,
}

fn parse_budget(b: &BudgetIn) -> Result<Budget, ApiError> {
    let mut v = Validator::default();
    let currency = v.check("currency", Currency::parse(&b.currency).map_err(|e| e.0));
    let mut monthly = None;
    let mut absolute = Vec::new();
    if let Some(c) = currency {
        monthly = v.check(
            "monthly_amount",
            Money::parse(&b.monthly_amount, c).map_err(|e| e.0),
        );
        for (i, a) in b.absolute_thresholds.iter().flatten().enumerate() {
            if let Some(m) = v.check(
                &format!("absolute_thresholds[{i}]"),
                Money::parse(a, c).map_err(|e| e.0),
            ) {
                absolute.push(m);
            }
        }
    }
    let enforcement = b.enforcement.as_ref().and_then(|e| {
        let action = v.check(
            "enforcement.action",
            LifecycleAction::parse(&e.action)
                .filter(|a| matches!(a, LifecycleAction::Suspend | LifecycleAction::DisableAccess))
                .ok_or("must be suspend or disable_access"),
        );
        let mode = v.check(
            "enforcement.mode",
            EnforcementMode::parse(&e.mode).ok_or("must be auto or require_approval"),
        );
        Some(Enforcement {
            at_percent: e.at_percent,
            action: action?,
            mode: mode?,
        })
    });
    v.finish()?;
    let monthly = monthly.ok_or_else(|| ApiError::field("monthly_amount", "is required"))?;
    Budget::new(
        monthly,
        b.thresholds
            .clone()
            .unwrap_or_else(|| DEFAULT_THRESHOLDS.to_vec()),
        absolute,
        enforcement,
    )
    .map_err(|(f, m)| ApiError::field(f, m))
}

async fn budget_out(
    s: &AppState,
    tenant: riskdesk_domain::TenantId,
    row: &BudgetRow,
    as_of: Timestamp,
) -> Result<BudgetOut, ApiError> {
    let b = monitoring::budget_of(row)?;
    let (month, standing, spend) =
        monitoring::standing_now(s.db(), tenant, row.customer_id, &b, as_of).await?;
    let cur = b.monthly.currency;
    Ok(BudgetOut {
        customer_id: row.customer_id,
        monthly_amount: b.monthly.to_decimal_string(),
        currency: cur.code().to_owned(),
        thresholds: b.thresholds_pct.clone(),
        absolute_thresholds: b.absolute.iter().map(|m| m.to_decimal_string()).collect(),
        enforcement: b.enforcement.map(|e| EnforcementOut {
            at_percent: e.at_percent,
            action: e.action.as_str().to_owned(),
            mode: e.mode.as_str().to_owned(),
        }),
        updated_at: rfc3339(row.updated_at),
        month: month.key(),
        as_of: as_of.to_string(),
        month_to_date: format_picos(standing.spend_picos),
        percent_used: standing.used_basis_points as f64 / 100.0,
        forecast_month_end: format_picos(standing.forecast_picos),
        thresholds_crossed: standing.reached.iter().map(budget::Mark::key).collect(),
        other_currencies: spend
            .iter()
            .filter(|c| c.currency != cur.code())
            .map(|c| OtherCurrency {
                currency: c.currency.clone(),
                amount: format_picos(riskdesk_domain::monitoring::cost::join(c.units, c.rem)),
            })
            .collect(),
    })
}

/// Set a customer's monthly spending budget (replaces the previous one; audited). Marks
/// already notified this month stay notified.
#[utoipa::path(put, path = "/v1/customers/{id}/budget", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("manage_budgets"))),
    params(("id" = Uuid, Path, description = "customer id")),
    request_body = BudgetIn,
    responses((status = 200, body = BudgetOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_budget(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<BudgetIn>,
) -> Result<Json<BudgetOut>, ApiError> {
    caller.require(Permission::ManageBudgets)?;
    let customer: CustomerId = parse_id(&id, "customer")?;
    let b = parse_budget(&body.value)?;
    let now = s.clock.now();
    let tenant = caller.tenant();
    let mut tx = s.app.begin().await?;
    let row =
        customer_budgets::set_budget(&mut tx, tenant, &caller.actor(), customer, &b, now).await?;
    tx.commit().await?;
    Ok(Json(budget_out(&s, tenant, &row, now).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BudgetQuery {
    /// The instant to report for (RFC 3339; default now): its month, spend up to it, forecast.
    pub as_of: Option<String>,
}

/// A customer's budget with month-to-date spend, percent used, month-end forecast and the
/// thresholds crossed.
#[utoipa::path(get, path = "/v1/customers/{id}/budget", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path, description = "customer id"), BudgetQuery),
    responses((status = 200, body = BudgetOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_budget(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<BudgetQuery>,
) -> Result<Json<BudgetOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let customer: CustomerId = parse_id(&id, "customer")?;
    let as_of = parse_as_of(&q.as_of, s.clock.now())?;
    let tenant = caller.tenant();
    customers::get(s.db(), tenant, customer).await?;
    let row = budgets::get(s.db(), tenant, customer.0)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("customer {customer} has no budget; PUT one first"))
        })?;
    Ok(Json(budget_out(&s, tenant, &row, as_of).await?))
}

/// An alert with its evidence.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertOut {
    pub id: Uuid,
    pub customer_id: Option<Uuid>,
    /// What raised it: a rule id, `budget.<mark>`, `budget.enforcement`, a detector.
    pub rule: String,
    pub severity: String,
    /// `open`, `acknowledged` or `dismissed`.
    pub status: String,
    pub title: String,
    /// The values the condition saw (of the latest occurrence).
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// Occurrences folded into this alert (same rule and customer within the cool-down).
    pub count: i64,
    pub first_at: String,
    pub last_at: String,
    pub created_at: String,
    pub updated_at: String,
    pub note: Option<String>,
}

impl From<AlertRow> for AlertOut {
    fn from(r: AlertRow) -> Self {
        AlertOut {
            id: r.id,
            customer_id: r.customer_id,
            rule: r.rule,
            severity: r.severity,
            status: r.status,
            title: r.title,
            evidence: serde_json::from_str(&r.evidence_json).unwrap_or(serde_json::Value::Null),
            count: r.count,
            first_at: rfc3339(r.first_at),
            last_at: rfc3339(r.last_at),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            note: r.note,
        }
    }
}

const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];
const STATUSES: [&str; 3] = ["open", "acknowledged", "dismissed"];

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    pub customer_id: Option<String>,
    /// info, low, medium, high, critical
    pub severity: Option<String>,
    /// open, acknowledged, dismissed
    pub status: Option<String>,
    pub rule: Option<String>,
    /// Alerts whose last occurrence is at or after this time (RFC 3339).
    pub since: Option<String>,
    /// … and before this time.
    pub until: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/v1/alerts", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(AlertsQuery),
    responses((status = 200, body = Page<AlertOut>), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_alerts(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AlertsQuery>,
) -> Result<Json<Page<AlertOut>>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let mut v = Validator::default();
    let customer_id = q.customer_id.as_deref().and_then(|c| {
        v.check(
            "customer_id",
            Uuid::parse_str(c).map_err(|_| "is not a UUID"),
        )
    });
    if let Some(sev) = &q.severity {
        if !SEVERITIES.contains(&sev.as_str()) {
            v.fail(
                "severity",
                "must be one of info, low, medium, high, critical",
            );
        }
    }
    if let Some(st) = &q.status {
        if !STATUSES.contains(&st.as_str()) {
            v.fail("status", "must be one of open, acknowledged, dismissed");
        }
    }
    let time = |v: &mut Validator, f: &str, t: &Option<String>| {
        t.as_deref()
            .and_then(|t| {
                v.check(
                    f,
                    t.parse::<Timestamp>()
                        .map_err(|_| "is not an RFC 3339 time"),
                )
            })
            .map(to_micros)
    };
    let since = time(&mut v, "since", &q.since);
    let until = time(&mut v, "until", &q.until);
    let limit = v.check(
        "limit",
        check_limit(q.limit).map_err(|_| "must be between 1 and 500"),
    );
    let before_id = v
        .check(
            "cursor",
            decode_cursor::<Uuid>(&q.cursor).map_err(|_| "is not a cursor from this list"),
        )
        .flatten();
    v.finish()?;
    let limit = limit.unwrap_or(50);
    let f = AlertFilter {
        customer_id,
        severity: q.severity,
        status: q.status,
        rule: q.rule,
        since,
        until,
        before_id,
    };
    let rows = alerts::list(s.db(), caller.tenant(), &f, limit + 1).await?;
    Ok(Json(page(
        rows,
        limit,
        |r| r.id.to_string(),
        AlertOut::from,
    )))
}

/// One alert with its evidence.
#[utoipa::path(get, path = "/v1/alerts/{id}", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path, description = "alert id")),
    responses((status = 200, body = AlertOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_alert(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: Uuid = parse_id(&id, "alert")?;
    Ok(Json(alerts::get(s.db(), caller.tenant(), id).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertAction {
    /// `acknowledge`, `dismiss` or `reopen`.
    pub action: String,
    pub note: Option<String>,
}

/// Acknowledge, dismiss or reopen an alert, with a note (audited).
#[utoipa::path(post, path = "/v1/alerts/{id}", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("triage_alerts"))),
    params(("id" = Uuid, Path, description = "alert id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = AlertAction,
    responses((status = 200, body = AlertOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn act_on_alert(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<AlertAction>,
) -> Result<Response, ApiError> {
    caller.require(Permission::TriageAlerts)?;
    let id: Uuid = parse_id(&id, "alert")?;
    let mut v = Validator::default();
    let triage = v.check(
        "action",
        Triage::parse(&body.value.action).ok_or("must be acknowledge, dismiss or reopen"),
    );
    let note = body.value.note.as_deref().and_then(|n| {
        v.check(
            "note",
            riskdesk_domain::customer::parse_note(n).map_err(|e| e.0),
        )
    });
    v.finish()?;
    let triage = triage.unwrap_or(Triage::Reopen);
    let fp = Fingerprint {
        key: &key,
        method_path: format!("POST /v1/alerts/{id}"),
        body_sha256: &body.body_sha256,
    };
    let now = s.clock.now();
    let tenant = caller.tenant();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let after = triage_alert(
        &mut tx,
        tenant,
        &caller.actor(),
        id,
        triage,
        note.as_deref(),
        now,
    )
    .await?;
    idem::finish(tx, &caller, &fp, StatusCode::OK, &AlertOut::from(after)).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SpendQuery {
    /// Start (RFC 3339; default: 14 days before `to`), rounded down to the hour.
    pub from: Option<String>,
    /// End, excluded (RFC 3339; default: the end of the current hour).
    pub to: Option<String>,
}

/// A customer's hourly spend per meter category, each hour with its anomaly score (the
/// detector of the monitoring pass, replayed over the stored hours), at most 92 days.
#[utoipa::path(get, path = "/v1/customers/{id}/spend", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path, description = "customer id"), SpendQuery),
    responses((status = 200, body = riskdesk_app::monitoring::spend::SpendSeries),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn spend(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SpendQuery>,
) -> Result<Json<riskdesk_app::monitoring::spend::SpendSeries>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let customer: CustomerId = parse_id(&id, "customer")?;
    let hour = 3_600_000_000i64;
    let mut v = crate::error::Validator::default();
    let instant = |v: &mut crate::error::Validator, field: &str, raw: &Option<String>| {
        raw.as_deref().and_then(|t| {
            v.check(
                field,
                t.parse::<jiff::Timestamp>()
                    .map(riskdesk_storage::time::to_micros)
                    .map_err(|_| "must be an RFC 3339 instant"),
            )
        })
    };
    let to = instant(&mut v, "to", &q.to);
    let from = instant(&mut v, "from", &q.from);
    v.finish()?;
    let now = riskdesk_storage::time::to_micros(s.clock.now());
    let to = to.unwrap_or((now.div_euclid(hour) + 1) * hour);
    let from = from.unwrap_or(to - 14 * 24 * hour);
    let tenant = caller.tenant();
    customers::get(s.db(), tenant, customer).await?;
    Ok(Json(
        riskdesk_app::monitoring::spend::spend_series(
            s.db(),
            tenant,
            customer.0,
            from,
            to,
            s.app.detector.spend.threshold,
        )
        .await?,
    ))
}
