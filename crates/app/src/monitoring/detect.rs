//! Detection rules at ingest: each tenant's compiled rules, each customer's recent history (in
//! memory, rebuilt from stored events when missing or stale), and what a hit does — an alert
//! with the evidence, a recorded hit in shadow mode, an enforcement action.
//!
//! The in-memory state is a cache of storage: a process that restarts, or another process
//! that ingested meanwhile, is caught up by reloading. A cached history carries the customer's
//! ingest counter (`customer_ingest_heads`) it reflects; every unit of work that changes the
//! customer's events bumps the counter under the customer's lock, so a history is reused only
//! when no one else wrote since it was cached — exactly, whichever process wrote. Rule sets
//! older than `RULES_TTL` are reloaded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use riskdesk_domain::TenantId;
use riskdesk_domain::lifecycle::LifecycleAction;
use riskdesk_domain::monitoring::budget::EnforcementMode;
use riskdesk_domain::monitoring::cost::{format_picos, join};
use riskdesk_domain::monitoring::rules::{
    Compiled, EventView, FieldValue, HISTORY_MICROS, History, Interner, Rec, RuleRuntime, Scope,
    Subject, status_failed,
};
use riskdesk_domain::monitoring::{Event, EventBody};
use riskdesk_storage::events::{self, StoredEvent};
use riskdesk_storage::rules::{self, RuleRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::kernel::Uow;
use crate::kernel::error::AppError;

const RULES_TTL: Duration = Duration::from_secs(5);
/// Customers whose history is kept in memory at most (then the cache starts over).
const MAX_CACHED: usize = 100_000;

/// A rule's optional enforcement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleAction {
    pub action: String,
    pub mode: String,
}

pub struct LoadedRule {
    pub row: RuleRow,
    pub compiled: Compiled,
    pub action: Option<(LifecycleAction, EnforcementMode)>,
}

/// A tenant's rules that run (active and shadow).
pub struct RuleSet {
    pub rules: Vec<LoadedRule>,
    /// Whether a rule reads `customer.budget_used_pct` (costly to compute, so only then).
    pub needs_budget: bool,
    loaded: Instant,
}

struct CachedHistory {
    history: History,
    /// The customer's ingest counter after the unit of work that cached it.
    seq: i64,
}

/// Rules and histories for every tenant of this process.
pub struct Detector {
    /// Shared with the threads that evaluate a batch while its events are written.
    pub runtime: Arc<RuleRuntime>,
    rule_sets: Mutex<HashMap<Uuid, Arc<RuleSet>>>,
    histories: Mutex<HashMap<(Uuid, Uuid), CachedHistory>>,
    /// Anomaly detection on the hourly spend series ingest touches.
    pub spend: crate::monitoring::spend::SpendScorer,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            runtime: Arc::new(RuleRuntime::default()),
            rule_sets: Mutex::new(HashMap::new()),
            histories: Mutex::new(HashMap::new()),
            spend: Default::default(),
        }
    }
}

/// Parses a stored or requested action (`{"action": "suspend", "mode": "auto"}`).
pub fn parse_action(a: &RuleAction) -> Result<(LifecycleAction, EnforcementMode), String> {
    let action = LifecycleAction::parse(&a.action)
        .filter(|x| matches!(x, LifecycleAction::Suspend | LifecycleAction::DisableAccess))
        .ok_or("must be suspend or disable_access")?;
    let mode = EnforcementMode::parse(&a.mode).ok_or("must be auto or require_approval")?;
    Ok((action, mode))
}

impl Detector {
    /// The tenant's running rules (compiled; a stored rule that no longer compiles is skipped
    /// and logged).
    pub async fn rules(&self, tx: &mut Uow, tenant: TenantId) -> Result<Arc<RuleSet>, AppError> {
        if let Some(s) = self.lock_sets().get(&tenant.0) {
            if s.loaded.elapsed() < RULES_TTL {
                return Ok(s.clone());
            }
        }
        // First read for this tenant in this process: make sure the shipped detectors exist.
        crate::monitoring::builtin_rules::ensure(tx, tenant, jiff::Timestamp::now()).await?;
        let rows = rules::list_tx(tx, tenant).await?;
        let mut loaded = Vec::new();
        for row in rows.into_iter().filter(|r| r.mode != "disabled") {
            let Some(scope) = Scope::parse(&row.scope) else {
                continue;
            };
            match self.runtime.compile(&row.condition, scope) {
                Ok(compiled) => {
                    let action = row
                        .action_json
                        .as_deref()
                        .and_then(|j| serde_json::from_str::<RuleAction>(j).ok())
                        .and_then(|a| parse_action(&a).ok());
                    loaded.push(LoadedRule {
                        row,
                        compiled,
                        action,
                    });
                }
                Err(e) => {
                    tracing::warn!(rule = %row.id, errors = ?e, "a stored rule does not compile; skipped")
                }
            }
        }
        let set = Arc::new(RuleSet {
            needs_budget: loaded
                .iter()
                .any(|r| r.row.condition.contains("budget_used_pct")),
            rules: loaded,
            loaded: Instant::now(),
        });
        self.lock_sets().insert(tenant.0, set.clone());
        Ok(set)
    }

    /// Forget a tenant's compiled rules (after a rule changes).
    pub fn invalidate(&self, tenant: TenantId) {
        self.lock_sets().remove(&tenant.0);
    }

    fn lock_sets(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<RuleSet>>> {
        self.rule_sets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_histories(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, Uuid), CachedHistory>> {
        self.histories.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes customers' histories out of the cache, loading from storage in one scan (events
    /// from each customer's earliest new event minus the longest window) those missing or
    /// stale: cached at a counter other than the one just before this unit's bump (`heads`,
    /// from `events::bump_ingest_heads`). Give them back with [`Detector::give_back`].
    pub async fn take_histories(
        &self,
        tx: &mut Uow,
        tenant: TenantId,
        earliest: &std::collections::BTreeMap<Uuid, i64>,
        heads: &HashMap<Uuid, i64>,
    ) -> Result<std::collections::BTreeMap<Uuid, History>, AppError> {
        let mut out = std::collections::BTreeMap::new();
        let mut missing = std::collections::BTreeMap::new();
        {
            let mut all = self.lock_histories();
            for (c, t) in earliest {
                match all.remove(&(tenant.0, *c)) {
                    Some(h) if heads.get(c).is_some_and(|now| h.seq + 1 == *now) => {
                        out.insert(*c, h.history);
                    }
                    _ => {
                        missing.insert(*c, *t);
                    }
                }
            }
        }
        if !missing.is_empty() {
            out.extend(load_histories(tx, tenant, &missing, &Default::default()).await?);
        }
        Ok(out)
    }

    /// Caches a customer's history as of ingest counter `seq` (this unit's bump).
    pub fn give_back(
        &self,
        tenant: TenantId,
        customer: Uuid,
        mut history: History,
        newest: i64,
        seq: i64,
    ) {
        history.trim(newest);
        let mut all = self.lock_histories();
        if all.len() >= MAX_CACHED {
            all.clear();
        }
        all.insert((tenant.0, customer), CachedHistory { history, seq });
    }

    /// Drops cached histories (when the unit of work that updated them did not commit).
    pub fn forget(&self, tenant: TenantId, customers: &[Uuid]) {
        let mut all = self.lock_histories();
        for c in customers {
            all.remove(&(tenant.0, *c));
        }
    }
}

/// Customers' histories read from storage, ignoring the cache (one scan from the earliest
/// event minus the longest window), without the events named in `skip`.
pub async fn load_histories(
    tx: &mut Uow,
    tenant: TenantId,
    earliest: &std::collections::BTreeMap<Uuid, i64>,
    skip: &std::collections::HashSet<&str>,
) -> Result<std::collections::BTreeMap<Uuid, History>, AppError> {
    let mut out: std::collections::BTreeMap<Uuid, History> =
        earliest.keys().map(|c| (*c, History::default())).collect();
    let Some(since) = earliest.values().min() else {
        return Ok(out);
    };
    let customers: Vec<Uuid> = earliest.keys().copied().collect();
    for e in events::recent_for_customers(tx, tenant, &customers, since - HISTORY_MICROS).await? {
        if skip.contains(e.event_id.as_str()) {
            continue;
        }
        if let Some(h) = out.get_mut(&e.customer_id) {
            h.push(rec_of_stored(&e));
        }
    }
    Ok(out)
}

thread_local! {
    /// Strings of the records this thread builds, shared: a history's records then point to a
    /// few hot copies of each category, region and SKU instead of one allocation each, which
    /// window scans chased through the cache (measured: `spend_in` was 10 % of a rules ingest).
    static STRINGS: std::cell::RefCell<Interner> = std::cell::RefCell::new(Interner::default());
}

/// The shared copy of `s` (the set is emptied past 100,000 strings, e.g. many actors).
pub fn shared(s: &str) -> Arc<str> {
    STRINGS.with(|i| {
        let mut i = i.borrow_mut();
        if i.len() >= 100_000 {
            i.clear();
        }
        i.share(s)
    })
}

fn arc(s: Option<&str>) -> Arc<str> {
    shared(s.unwrap_or(""))
}

pub fn rec_of_event(e: &Event, at: i64) -> Rec {
    match &e.body {
        EventBody::Usage(u) => Rec {
            at,
            usage: true,
            cost: u.cost.picos as f64 / 1e12,
            category: shared(&u.meter_category),
            region: shared(&u.region),
            sku: shared(&u.meter_name),
            operation: shared(""),
            failed: false,
            actor: shared(""),
        },
        EventBody::Activity(a) => Rec {
            at,
            usage: false,
            cost: 0.0,
            category: shared(""),
            region: shared(""),
            sku: shared(""),
            operation: shared(&a.operation),
            failed: status_failed(a.status.as_deref()),
            actor: arc(a.actor.as_deref()),
        },
    }
}

pub fn rec_of_stored(e: &StoredEvent) -> Rec {
    Rec::of_stored(&e.fields(), shared)
}

fn hour_and_weekday(at: i64) -> (i64, i64) {
    let t = riskdesk_storage::time::from_micros(at).to_zoned(jiff::tz::TimeZone::UTC);
    (
        i64::from(t.hour()),
        i64::from(t.weekday().to_monday_one_offset()),
    )
}

/// The `event` a rule sees, as JSON (also the evidence).
pub fn event_json(e: &Event) -> serde_json::Value {
    use serde_json::Value;
    let at = riskdesk_storage::time::to_micros(e.time);
    let (hour, weekday) = hour_and_weekday(at);
    let text = |s: &str| Value::String(s.to_owned());
    let opt = |s: &Option<String>| Value::String(s.clone().unwrap_or_default());
    // Built in one pass, each field once (this runs for every ingested event a rule sees).
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put("type", text(e.kind()));
    put("event_id", text(&e.event_id));
    put("time", Value::String(e.time.to_string()));
    put("hour", hour.into());
    put("weekday", weekday.into());
    match &e.body {
        EventBody::Usage(u) => {
            put("meter_category", text(&u.meter_category));
            put("meter_name", text(&u.meter_name));
            put("region", text(&u.region));
            put("resource_id", opt(&u.resource_id));
            let quantity = u.quantity.as_deref().and_then(|q| q.parse::<f64>().ok());
            put("quantity", quantity.unwrap_or(0.0).into());
            put("unit", opt(&u.unit));
            put("cost", (u.cost.picos as f64 / 1e12).into());
            put("cost_exact", Value::String(format_picos(u.cost.picos)));
            put("currency", text(u.cost.currency.code()));
            for k in ["operation", "actor", "status"] {
                put(k, text(""));
            }
            put("properties", Value::Object(serde_json::Map::new()));
        }
        EventBody::Activity(a) => {
            for k in [
                "meter_category",
                "meter_name",
                "region",
                "resource_id",
                "unit",
                "currency",
            ] {
                put(k, text(""));
            }
            put("quantity", 0.0.into());
            put("cost", 0.0.into());
            put("operation", text(&a.operation));
            put("actor", opt(&a.actor));
            put("status", opt(&a.status));
            put("properties", a.properties.clone());
        }
    }
    Value::Object(m)
}

/// An ingested event as rules read it: each field of [`event_json`] read in place, without
/// building the JSON (fields that are not stored as such — `time`, `cost_exact`, `properties`
/// — are left to the interpreter, which gets the JSON).
pub struct EventFields<'e> {
    pub event: &'e Event,
    /// The event's time (µs).
    pub at: i64,
}

impl EventView for EventFields<'_> {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        use FieldValue::{Double, Int, Str};
        let e = self.event;
        Some(match (name, &e.body) {
            ("type", _) => Str(e.kind()),
            ("event_id", _) => Str(&e.event_id),
            ("hour", _) => Int(hour_and_weekday(self.at).0),
            ("weekday", _) => Int(hour_and_weekday(self.at).1),
            ("meter_category", EventBody::Usage(u)) => Str(&u.meter_category),
            ("meter_name", EventBody::Usage(u)) => Str(&u.meter_name),
            ("region", EventBody::Usage(u)) => Str(&u.region),
            ("resource_id", EventBody::Usage(u)) => Str(u.resource_id.as_deref().unwrap_or("")),
            ("unit", EventBody::Usage(u)) => Str(u.unit.as_deref().unwrap_or("")),
            ("currency", EventBody::Usage(u)) => Str(u.cost.currency.code()),
            ("quantity", EventBody::Usage(u)) => {
                let q = u.quantity.as_deref().and_then(|q| q.parse::<f64>().ok());
                match q.unwrap_or(0.0) {
                    // JSON has no NaN or infinity: event_json holds null there.
                    q if q.is_finite() => Double(q),
                    _ => FieldValue::Null,
                }
            }
            ("cost", EventBody::Usage(u)) => Double(u.cost.picos as f64 / 1e12),
            ("operation" | "actor" | "status", EventBody::Usage(_)) => Str(""),
            ("operation", EventBody::Activity(a)) => Str(&a.operation),
            ("actor", EventBody::Activity(a)) => Str(a.actor.as_deref().unwrap_or("")),
            ("status", EventBody::Activity(a)) => Str(a.status.as_deref().unwrap_or("")),
            (
                "meter_category" | "meter_name" | "region" | "resource_id" | "unit" | "currency",
                EventBody::Activity(_),
            ) => Str(""),
            ("quantity" | "cost", EventBody::Activity(_)) => Double(0.0),
            _ => return None,
        })
    }

    fn to_json(&self) -> serde_json::Value {
        event_json(self.event)
    }
}

/// When the customer of a context was created (µs).
pub fn created_at(ctx: &serde_json::Value) -> Option<i64> {
    ctx.get("created_at_us").and_then(|v| v.as_i64())
}

/// A customer's age in whole days at `at` (µs).
pub fn age_in_days(created: i64, at: i64) -> i64 {
    (at - created).max(0) / 86_400_000_000
}

/// A customer context with `age_days` as of `at` (µs).
pub fn customer_at(ctx: &serde_json::Value, at: i64) -> serde_json::Value {
    let mut c = ctx.clone();
    if let Some(created) = created_at(ctx) {
        c["age_days"] = age_in_days(created, at).into();
    }
    if let Some(m) = c.as_object_mut() {
        m.remove("created_at_us");
    }
    c
}

/// The `event` a rule sees for a stored event (backtests).
pub fn stored_event_json(e: &StoredEvent) -> serde_json::Value {
    let (hour, weekday) = hour_and_weekday(e.time);
    let cost = match (e.cost_units, e.cost_rem) {
        (Some(u), Some(r)) => join(u, r),
        _ => 0,
    };
    serde_json::json!({
        "type": e.kind, "event_id": e.event_id, "time": riskdesk_storage::time::from_micros(e.time).to_string(),
        "hour": hour, "weekday": weekday,
        "meter_category": e.meter_category.clone().unwrap_or_default(), "meter_name": e.meter_name.clone().unwrap_or_default(),
        "region": e.region.clone().unwrap_or_default(), "resource_id": e.resource_id.clone().unwrap_or_default(),
        "quantity": e.quantity.as_deref().and_then(|q| q.parse::<f64>().ok()).unwrap_or(0.0),
        "unit": e.unit.clone().unwrap_or_default(), "cost": cost as f64 / 1e12, "cost_exact": format_picos(cost),
        "currency": e.currency.clone().unwrap_or_default(), "operation": e.operation.clone().unwrap_or_default(),
        "actor": e.actor.clone().unwrap_or_default(), "status": e.status.clone().unwrap_or_default(),
        "properties": e.properties_json.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok()).unwrap_or_else(|| serde_json::json!({})),
    })
}

/// The subject of an evaluation.
pub fn subject<'e>(
    e: &Event,
    event: &'e dyn EventView,
    customer: Arc<serde_json::Value>,
) -> Subject<'e> {
    let (region, sku) = match &e.body {
        EventBody::Usage(u) => (shared(&u.region), shared(&u.meter_name)),
        EventBody::Activity(_) => (shared(""), shared("")),
    };
    Subject::viewing(
        event,
        customer,
        riskdesk_storage::time::to_micros(e.time),
        region,
        sku,
    )
}

pub fn scope_of(e: &Event) -> Scope {
    match e.body {
        EventBody::Usage(_) => Scope::Usage,
        EventBody::Activity(_) => Scope::Activity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riskdesk_domain::monitoring::event::RawEvent;

    fn event(json: serde_json::Value) -> Event {
        serde_json::from_value::<RawEvent>(json)
            .unwrap()
            .validate()
            .unwrap()
    }

    /// Every field the view answers is the field of the JSON the interpreter sees.
    #[test]
    fn the_event_view_reads_what_the_json_holds() {
        let usage = event(serde_json::json!({
            "type": "usage", "event_id": "u-1", "customer_id": "0190f5a4-5b6e-7c8d-9e0f-1a2b3c4d5e6f",
            "time": "2026-11-05T13:20:00Z", "meter_category": "Virtual Machines",
            "meter_name": "NC24ads A100 v4", "region": "westeurope", "quantity": "2.5",
            "unit": "Hours", "cost": "12.3456", "currency": "EUR"}));
        let activity = event(serde_json::json!({
            "type": "activity", "event_id": "a-1", "customer_id": "0190f5a4-5b6e-7c8d-9e0f-1a2b3c4d5e6f",
            "time": "2026-11-07T23:59:00Z", "operation": "role assignment", "actor": "x@example.com",
            "status": "Failed", "properties": {"role": "Owner"}}));
        for e in [&usage, &activity] {
            let at = riskdesk_storage::time::to_micros(e.time);
            let view = EventFields { event: e, at };
            let json = event_json(e);
            let mut answered = 0;
            for (name, _) in json.as_object().unwrap() {
                match view.field(name) {
                    Some(v) => {
                        assert_eq!(Some(v), json.field(name), "{name}");
                        answered += 1;
                    }
                    None => assert!(
                        ["time", "cost_exact", "properties"].contains(&name.as_str()),
                        "{name} left to the interpreter"
                    ),
                }
            }
            assert_eq!(
                answered, 15,
                "every field but time, cost_exact and properties"
            );
            assert_eq!(view.field("no_such_field"), None);
            assert_eq!(view.to_json(), json);
        }
    }
}
