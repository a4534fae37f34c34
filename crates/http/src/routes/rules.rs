//! Detection rules: write, check, version, backtest.

use std::collections::{BTreeMap, HashMap};

use crate::extract::Path;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use riskdesk_domain::Permission;
use riskdesk_domain::monitoring::rules::{
    HISTORY_MICROS, History, MODES, RuleError, SEVERITIES, Scope,
};
use riskdesk_storage::events;
use riskdesk_storage::rules::{self, RuleRow};
use riskdesk_storage::time::to_micros;
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::parse_id;
use crate::AppState;
use crate::error::{ApiError, Problem, Validator};
use crate::extract::{ApiJson, Caller, IdempotencyKey};
use crate::idem::{self, Fingerprint};
use riskdesk_app::kernel::time::rfc3339;
use riskdesk_app::monitoring::detect::{self, RuleAction, parse_action};
use riskdesk_app::monitoring::rules as rule_ops;

/// A rule as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleIn {
    /// Unique in the tenant.
    pub name: String,
    /// `usage` or `activity`: which events the rule sees.
    pub scope: String,
    /// A CEL expression giving true or false (README: variables and functions).
    pub condition: String,
    /// info, low, medium, high, critical
    pub severity: String,
    /// A hit within this many seconds of the rule's last alert for the customer folds into it
    /// (default 3600).
    pub cooldown_seconds: Option<i64>,
    /// `active` (alerts), `shadow` (hits recorded, no alert) or `disabled`; default `shadow`,
    /// so a new rule is tried before it alerts.
    pub mode: Option<String>,
    /// Optional enforcement on a hit: `{"action": "suspend"|"disable_access", "mode": "auto"|"require_approval"}`.
    pub action: Option<RuleAction>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleOut {
    pub id: Uuid,
    pub name: String,
    pub scope: String,
    pub condition: String,
    pub severity: String,
    pub cooldown_seconds: i64,
    pub mode: String,
    pub action: Option<RuleAction>,
    /// The built-in detector this rule was shipped as, if any.
    pub builtin: Option<String>,
    /// 1 at creation, +1 at each change (each version's text is in the audit log).
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Hits recorded while in shadow mode.
    pub shadow_hits: i64,
}

fn out(r: RuleRow, shadow_hits: i64) -> RuleOut {
    RuleOut {
        id: r.id,
        action: r
            .action_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok()),
        name: r.name,
        scope: r.scope,
        condition: r.condition,
        severity: r.severity,
        cooldown_seconds: r.cooldown_seconds,
        mode: r.mode,
        builtin: r.builtin,
        version: r.version,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
        shadow_hits,
    }
}

fn position(e: &RuleError) -> String {
    match (e.line, e.column) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: {}", e.message),
        _ => e.message.clone(),
    }
}

/// Validates a rule body into a row (id, version and times to be set by the caller).
fn check(s: &AppState, b: &RuleIn) -> Result<RuleRow, ApiError> {
    let mut v = Validator::default();
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        v.fail("name", "must be 1 to 100 characters");
    }
    let scope = v.check(
        "scope",
        Scope::parse(&b.scope).ok_or("must be usage, activity or signup"),
    );
    if !SEVERITIES.contains(&b.severity.as_str()) {
        v.fail(
            "severity",
            "must be one of info, low, medium, high, critical",
        );
    }
    let mode = b.mode.clone().unwrap_or_else(|| "shadow".into());
    if !MODES.contains(&mode.as_str()) {
        v.fail("mode", "must be active, shadow or disabled");
    }
    let cooldown = b.cooldown_seconds.unwrap_or(3600);
    if !(0..=30 * 86_400).contains(&cooldown) {
        v.fail(
            "cooldown_seconds",
            "must be between 0 and 2592000 (30 days)",
        );
    }
    if let Some(a) = &b.action {
        if let Err(e) = parse_action(a) {
            v.fail("action", e);
        }
    }
    if let Some(scope) = scope {
        if let Err(errors) = s.detector.runtime.compile(&b.condition, scope) {
            for e in errors {
                v.fail("condition", position(&e));
            }
        }
    }
    v.finish()?;
    Ok(RuleRow {
        id: Uuid::now_v7(),
        name: name.to_owned(),
        scope: b.scope.clone(),
        condition: b.condition.clone(),
        severity: b.severity.clone(),
        cooldown_seconds: cooldown,
        mode,
        action_json: b
            .action
            .as_ref()
            .map(|a| serde_json::to_string(a).unwrap_or_default()),
        builtin: None,
        version: 1,
        created_at: 0,
        updated_at: 0,
    })
}

/// Create a rule (version 1; `shadow` unless another mode is given). Audited.
#[utoipa::path(post, path = "/v1/rules", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("manage_rules"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    request_body = RuleIn,
    responses((status = 201, body = RuleOut), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_rule(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    body: ApiJson<RuleIn>,
) -> Result<Response, ApiError> {
    caller.require(Permission::ManageRules)?;
    let row = check(&s, &body.value)?;
    let now = s.clock.now();
    let fp = Fingerprint {
        key: &key,
        method_path: "POST /v1/rules".into(),
        body_sha256: &body.body_sha256,
    };
    let tenant = caller.tenant();
    let mut tx = s.app.begin().await?;
    if let Some(replay) = idem::begin(&mut tx, &caller, &fp, now).await? {
        return Ok(replay);
    }
    let row =
        rule_ops::create_rule(&mut tx, tenant, &caller.actor(), &s.detector, row, now).await?;
    idem::finish(tx, &caller, &fp, StatusCode::CREATED, &out(row, 0)).await
}

/// Change a rule: a new version (the previous text stays in the audit log).
#[utoipa::path(put, path = "/v1/rules/{id}", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("manage_rules"))),
    params(("id" = Uuid, Path, description = "rule id")),
    request_body = RuleIn,
    responses((status = 200, body = RuleOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "another rule has this name", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_rule(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: ApiJson<RuleIn>,
) -> Result<Json<RuleOut>, ApiError> {
    caller.require(Permission::ManageRules)?;
    let id: Uuid = parse_id(&id, "rule")?;
    let checked = check(&s, &body.value)?;
    let now = s.clock.now();
    let tenant = caller.tenant();
    let mut tx = s.app.begin().await?;
    let after = rule_ops::update_rule(
        &mut tx,
        tenant,
        &caller.actor(),
        &s.detector,
        id,
        checked,
        now,
    )
    .await?;
    tx.commit().await?;
    let hits = rules::hit_count(s.db(), tenant, id).await?;
    Ok(Json(out(after, hits)))
}

/// The tenant's rules, by name.
#[utoipa::path(get, path = "/v1/rules", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    responses((status = 200, body = Vec<RuleOut>)))]
pub async fn list_rules(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<RuleOut>>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    // The shipped detectors appear from the first look, before any event arrives.
    let mut tx = s.app.begin().await?;
    if rule_ops::ensure_builtins(&mut tx, caller.tenant(), &s.detector, s.clock.now()).await? > 0 {
        tx.commit().await?;
    }
    let mut items = Vec::new();
    for r in rules::list(s.db(), caller.tenant()).await? {
        let hits = rules::hit_count(s.db(), caller.tenant(), r.id).await?;
        items.push(out(r, hits));
    }
    Ok(Json(items))
}

/// One rule.
#[utoipa::path(get, path = "/v1/rules/{id}", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path, description = "rule id")),
    responses((status = 200, body = RuleOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_rule(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RuleOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: Uuid = parse_id(&id, "rule")?;
    let r = rules::get(s.db(), caller.tenant(), id).await?;
    let hits = rules::hit_count(s.db(), caller.tenant(), id).await?;
    Ok(Json(out(r, hits)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateIn {
    pub scope: String,
    pub condition: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidateOut {
    pub valid: bool,
    /// Each problem with its position (1-based line and column) when the parser knows it.
    pub errors: Vec<RuleError>,
}

/// Check a condition without saving it: parse errors with their position, unknown names,
/// and what goes wrong when it runs on a sample event (a wrong type, a missing field, a
/// result that is not true or false).
#[utoipa::path(post, path = "/v1/rules/validate", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Accepted; validation has no effect to repeat")),
    request_body = ValidateIn,
    responses((status = 200, body = ValidateOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn validate_rule(
    State(s): State<AppState>,
    caller: Caller,
    _key: IdempotencyKey,
    body: ApiJson<ValidateIn>,
) -> Result<Json<ValidateOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let scope = Scope::parse(&body.value.scope)
        .ok_or_else(|| ApiError::field("scope", "must be usage, activity or signup"))?;
    Ok(Json(
        match s.detector.runtime.compile(&body.value.condition, scope) {
            Ok(_) => ValidateOut {
                valid: true,
                errors: Vec::new(),
            },
            Err(errors) => ValidateOut {
                valid: false,
                errors,
            },
        },
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestIn {
    /// RFC 3339; events from this instant …
    pub from: String,
    /// … to this one (excluded). At most 366 days.
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerHits {
    pub customer_id: Uuid,
    pub hits: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DayHits {
    /// YYYY-MM-DD (UTC)
    pub day: String,
    pub hits: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BacktestOut {
    pub rule_id: Uuid,
    pub version: i64,
    pub from: String,
    pub to: String,
    /// Stored events read (including the history before `from` the windows need).
    pub events_scanned: u64,
    /// Events in the range and the rule's scope, evaluated.
    pub events_evaluated: u64,
    pub hits: u64,
    /// Evaluations that failed (e.g. a property an event lacks).
    pub errors: u64,
    pub by_customer: Vec<CustomerHits>,
    pub by_day: Vec<DayHits>,
    pub elapsed_ms: u64,
}

/// Run a rule over stored events in a time range, as if it had been running then: hits per
/// customer and per day. Nothing is written.
#[utoipa::path(post, path = "/v1/rules/{id}/backtest", tag = "monitoring", security(("bearer" = [])),
    extensions(("x-permission" = json!("read_customers"))),
    params(("id" = Uuid, Path, description = "rule id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Accepted; a backtest writes nothing")),
    request_body = BacktestIn,
    responses((status = 200, body = BacktestOut), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn backtest_rule(
    State(s): State<AppState>,
    caller: Caller,
    _key: IdempotencyKey,
    Path(id): Path<String>,
    body: ApiJson<BacktestIn>,
) -> Result<Json<BacktestOut>, ApiError> {
    caller.require(Permission::ReadCustomers)?;
    let id: Uuid = parse_id(&id, "rule")?;
    let mut v = Validator::default();
    let from = v.check(
        "from",
        body.value
            .from
            .parse::<Timestamp>()
            .map_err(|_| "is not an RFC 3339 time"),
    );
    let to = v.check(
        "to",
        body.value
            .to
            .parse::<Timestamp>()
            .map_err(|_| "is not an RFC 3339 time"),
    );
    if let (Some(f), Some(t)) = (from, to) {
        if t <= f || t.duration_since(f).as_secs() > 366 * 86_400 {
            v.fail("to", "must be after `from`, at most 366 days later");
        }
    }
    v.finish()?;
    let (from, to) = (from.unwrap_or_default(), to.unwrap_or_default());
    let tenant = caller.tenant();
    let rule = rules::get(s.db(), tenant, id).await?;
    let scope =
        Scope::parse(&rule.scope).ok_or_else(|| ApiError::Internal("stored rule scope".into()))?;
    if scope == Scope::Signup {
        return Err(ApiError::Conflict(
            "backtests replay stored usage and activity events; a signup rule is tried in shadow mode instead".into(),
        ));
    }
    let compiled = s
        .detector
        .runtime
        .compile(&rule.condition, scope)
        .map_err(|e| {
            ApiError::Conflict(format!(
                "the rule does not compile: {}",
                e.iter().map(position).collect::<Vec<_>>().join("; ")
            ))
        })?;
    let started = std::time::Instant::now();
    let (from_us, to_us) = (to_micros(from), to_micros(to));
    let mut report = BacktestOut {
        rule_id: id,
        version: rule.version,
        from: from.to_string(),
        to: to.to_string(),
        events_scanned: 0,
        events_evaluated: 0,
        hits: 0,
        errors: 0,
        by_customer: Vec::new(),
        by_day: Vec::new(),
        elapsed_ms: 0,
    };
    // Hits per UTC day (days since the epoch), named when reported.
    const DAY_MICROS: i64 = 86_400_000_000;
    let mut days: BTreeMap<i64, u64> = BTreeMap::new();
    // Per customer: its history so far, its context, its hits.
    let mut state: HashMap<Uuid, (History, serde_json::Value, u64), FxBuildHasher> =
        HashMap::default();
    let reach = compiled.history_reach();
    // Events are read on another thread while this one evaluates.
    let mut batches = events::replay(
        s.db(),
        tenant,
        from_us - HISTORY_MICROS,
        to_us,
        compiled.uses_event,
    );
    while let Some(batch) = batches.recv().await {
        for e in batch? {
            report.events_scanned += 1;
            if !state.contains_key(&e.customer_id) {
                let ctx = backtest_customer(&s, tenant, e.customer_id).await?;
                state.insert(e.customer_id, (History::default(), ctx, 0));
            }
            let Some((history, ctx, n)) = state.get_mut(&e.customer_id) else {
                continue;
            };
            let (at, usage) = (e.rec.at, e.rec.usage);
            let (region, sku) = (e.rec.region.clone(), e.rec.sku.clone());
            history.push(e.rec);
            // Keep what this rule's windows can reach (the replay is in time order). A rule that
            // may read the whole history (`baseline_ratio` measures from the first event kept)
            // keeps it untrimmed, so its answer does not depend on when trimming happened.
            if reach < HISTORY_MICROS && history.len() % 256 == 0 {
                history.trim_to(at, reach);
            }
            if at < from_us || usage != (scope == Scope::Usage) {
                continue;
            }
            report.events_evaluated += 1;
            // Only what the condition reads is built (most of a backtest's time otherwise).
            let event = match &e.stored {
                Some(stored) if compiled.uses_event => detect::stored_event_json(stored),
                _ => serde_json::Value::Null,
            };
            let customer = if compiled.uses_customer {
                detect::customer_at(ctx, at)
            } else {
                serde_json::Value::Null
            };
            let subject =
                riskdesk_domain::monitoring::rules::Subject::new(event, customer, at, region, sku);
            match s.detector.runtime.decide(&compiled, &subject, history) {
                Ok(true) => {
                    report.hits += 1;
                    *n += 1;
                    *days.entry(at.div_euclid(DAY_MICROS)).or_insert(0) += 1;
                }
                Ok(_) => {}
                Err(_) => report.errors += 1,
            }
        }
    }
    let mut by_customer: Vec<CustomerHits> = state
        .into_iter()
        .filter(|(_, (_, _, n))| *n > 0)
        .map(|(customer_id, (_, _, hits))| CustomerHits { customer_id, hits })
        .collect();
    by_customer.sort_by(|a, b| b.hits.cmp(&a.hits).then(a.customer_id.cmp(&b.customer_id)));
    report.by_customer = by_customer;
    report.by_day = days
        .into_iter()
        .map(|(day, hits)| DayHits {
            day: riskdesk_storage::time::from_micros(day * DAY_MICROS).to_string()[..10].to_owned(),
            hits,
        })
        .collect();
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(Json(report))
}

async fn backtest_customer(
    s: &AppState,
    tenant: riskdesk_domain::TenantId,
    id: Uuid,
) -> Result<serde_json::Value, ApiError> {
    let c =
        riskdesk_storage::customers::get(s.db(), tenant, riskdesk_domain::CustomerId(id)).await?;
    Ok(serde_json::json!({
        "id": id.to_string(), "age_days": 0, "country": c.country, "cloud_instance": c.cloud_instance,
        "risk_status": c.risk_status, "admin_access": c.admin_access, "credit_limit": -1.0, "budget_used_pct": -1.0,
        "paid": c.first_payment_at.is_some(),
        "created_at_us": c.created_at,
    }))
}
