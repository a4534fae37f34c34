//! Monitoring as units of work: ingesting a batch of events (stored once each, spend added to
//! the hourly buckets, budgets of the customers it touched evaluated, alerts raised), and
//! applying events kept for an external id when its customer appears. Shared by the API and
//! `riskdesk ingest`.

pub mod builtin_rules;
pub mod customer_budgets;
pub mod detect;
pub mod formats;
pub mod rules;
pub mod spend;
pub mod stream;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::lifecycle::LifecycleAction;
use riskdesk_domain::money::{Currency, Money};
use riskdesk_domain::monitoring::budget::{
    self, Budget, Change, Enforcement, EnforcementMode, Month,
};
use riskdesk_domain::monitoring::cost::{format_picos, join, split};
use riskdesk_domain::monitoring::{CustomerRef, Event, EventBody};
use riskdesk_domain::{CustomerId, TenantId};
use riskdesk_storage::Db;
use riskdesk_storage::alerts::NewAlert;
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::budgets::{self, BudgetRow};
use riskdesk_storage::events::{self, BucketKey, EventRow};
use riskdesk_storage::time::to_micros;
use serde::Serialize;
use uuid::Uuid;

use crate::alerts::raise;
use crate::kernel::Uow;
use crate::kernel::error::AppError;
use crate::monitoring::detect::{Detector, LoadedRule, RuleSet};
use riskdesk_domain::monitoring::rules::{Compiled, History, Scope};
use riskdesk_storage::customers;

const HOUR_MICROS: i64 = 3_600_000_000;

/// One refused line or array element.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rejected {
    /// Position in the batch, from 0 (lines of NDJSON, elements of an array).
    pub index: usize,
    pub reason: String,
}

/// What a batch did.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestSummary {
    /// Stored now (including events kept for a customer not known yet).
    pub accepted: u64,
    /// Already stored (same `event_id`): not counted again.
    pub duplicates: u64,
    pub rejected: Vec<Rejected>,
    /// Of the accepted, how many wait for a customer with their `customer_external_id`.
    pub pending_customer: u64,
    /// Alerts raised or folded by this batch.
    pub alerts: Vec<Uuid>,
    /// Hits of rules in shadow mode (recorded, no alert).
    pub shadow_hits: u64,
    /// Rule evaluations that failed on an event (e.g. a property the event lacks).
    pub rule_errors: u64,
}

impl IngestSummary {
    pub fn absorb(&mut self, other: IngestSummary, offset: usize) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.pending_customer += other.pending_customer;
        self.rejected
            .extend(other.rejected.into_iter().map(|mut r| {
                r.index += offset;
                r
            }));
        self.alerts.extend(other.alerts);
        self.shadow_hits += other.shadow_hits;
        self.rule_errors += other.rule_errors;
    }
}

/// Stores a batch of parsed lines in the caller's unit of work. Lines that failed to parse
/// come in as `Err(reason)`; they and events naming an unknown riskdesk customer id are
/// rejected without blocking the others.
///
/// Once the batch is written, the unit of work carries the detector's bookkeeping: if it does
/// not commit, the customers' cached histories (which saw the batch) are forgotten, to be
/// reloaded from storage; once it has committed, the spend series that got new spend are
/// marked for anomaly scoring (a pass must see the spend it scores). An error from `ingest`
/// itself registers neither.
pub async fn ingest(
    tx: &mut Uow,
    tenant: TenantId,
    detector: &Arc<Detector>,
    lines: Vec<Result<Event, String>>,
    now: Timestamp,
    as_of: Timestamp,
) -> Result<IngestSummary, AppError> {
    ingest_marking(tx, tenant, detector, lines, now, as_of, None).await
}

/// Events applied in one unit of work when a batch comes over HTTP without `[scale]`: a batch
/// of 1,000 is four parts, so on SQLite an interactive write waits for at most one part of
/// bulk ingest (≈ 5 ms) instead of a whole batch, and parts still share COMMITs.
pub const INGEST_PART: usize = 250;

/// [`ingest`] of one part of a batch: the spend series its commit marks are held in `hold`
/// until every part of the batch has been applied (the hold is dropped), so an anomaly pass
/// never scores a batch half-written: a spike in a later part would otherwise be spend
/// arriving late for hours the pass has already moved past.
pub async fn ingest_part(
    tx: &mut Uow,
    tenant: TenantId,
    detector: &Arc<Detector>,
    lines: Vec<Result<Event, String>>,
    now: Timestamp,
    as_of: Timestamp,
    hold: &crate::monitoring::spend::MarkHold,
) -> Result<IngestSummary, AppError> {
    ingest_marking(tx, tenant, detector, lines, now, as_of, Some(hold)).await
}

async fn ingest_marking(
    tx: &mut Uow,
    tenant: TenantId,
    detector: &Arc<Detector>,
    lines: Vec<Result<Event, String>>,
    now: Timestamp,
    as_of: Timestamp,
    hold: Option<&crate::monitoring::spend::MarkHold>,
) -> Result<IngestSummary, AppError> {
    let mut summary = IngestSummary::default();
    let mut externals: BTreeSet<String> = BTreeSet::new();
    let mut direct: BTreeSet<Uuid> = BTreeSet::new();
    for e in lines.iter().flatten() {
        match &e.customer {
            CustomerRef::Id(id) => direct.insert(*id),
            CustomerRef::External(x) => externals.insert(x.clone()),
        };
    }
    let by_external =
        events::customers_by_external_id(tx, tenant, &externals.into_iter().collect::<Vec<_>>())
            .await?;
    let known =
        events::existing_customers(tx, tenant, &direct.into_iter().collect::<Vec<_>>()).await?;

    let received_at = to_micros(now);
    let mut rows = Vec::with_capacity(lines.len());
    let mut kept: Vec<Event> = Vec::with_capacity(lines.len());
    for (i, line) in lines.into_iter().enumerate() {
        let e = match line {
            Ok(e) => e,
            Err(reason) => {
                summary.rejected.push(Rejected { index: i, reason });
                continue;
            }
        };
        let (customer_id, external) = match &e.customer {
            CustomerRef::Id(id) if known.contains(id) => (Some(*id), None),
            CustomerRef::Id(id) => {
                summary.rejected.push(Rejected {
                    index: i,
                    reason: format!("`customer_id` {id} is not a customer of this tenant"),
                });
                continue;
            }
            CustomerRef::External(x) => (by_external.get(x).copied(), Some(x.clone())),
        };
        rows.push(event_row(&e, customer_id, external, received_at));
        kept.push(e);
    }
    // One batch at a time per customer (PostgreSQL; in one global order, so never a deadlock
    // between batches): spend, budget marks and alert folding are read-then-write.
    let keys: Vec<String> = rows
        .iter()
        .map(|r| match (&r.customer_id, &r.customer_external_id) {
            (Some(c), _) => format!("c|{c}"),
            (None, x) => format!("x|{}", x.as_deref().unwrap_or_default()),
        })
        .collect();
    events::lock_for_ingest(tx, tenant, &keys).await?;
    let placed: Vec<(Option<Uuid>, i64)> = rows.iter().map(|r| (r.customer_id, r.time)).collect();
    // Under those locks: every process's cached history of these customers is now stale but
    // this one's, if it was current (see `detect`).
    let customers_here: Vec<Uuid> = placed.iter().filter_map(|(c, _)| *c).collect();
    let heads = events::bump_ingest_heads(tx, tenant, &customers_here).await?;
    let kept = Arc::new(kept);
    // Rules need each customer's history as it was before this batch: read it first.
    let rule_set = detector.rules(tx, tenant).await?;
    let mut rules_pass: Option<RulesPass> = None;
    if !rule_set.rules.is_empty() {
        let mut earliest: BTreeMap<Uuid, i64> = BTreeMap::new();
        for (c, t) in &placed {
            if let Some(c) = c {
                let e = earliest.entry(*c).or_insert(*t);
                *e = (*e).min(*t);
            }
        }
        let histories = detector
            .take_histories(tx, tenant, &earliest, &heads)
            .await?;
        let customers: Vec<Uuid> = histories.keys().copied().collect();
        // Unless a rule reads the budget (which this batch's spend changes), the rules are
        // evaluated on another thread while the events are written, as if every event were new;
        // the customers of any duplicate the write finds are evaluated again below.
        let speculation = if rule_set.needs_budget {
            Err(histories)
        } else {
            let contexts = Arc::new(customer_contexts(tx, tenant, &customers, false, as_of).await?);
            let (runtime, set, events, all) = (
                detector.runtime.clone(),
                rule_set.clone(),
                kept.clone(),
                placed.clone(),
            );
            let ctx = contexts.clone();
            let handle = tokio::task::spawn_blocking(move || {
                let new_events = all
                    .iter()
                    .zip(events.iter())
                    .filter_map(|((c, t), e)| c.map(|c| (c, *t, e)));
                evaluate_rules(&runtime, &set, &ctx, histories, new_events)
            });
            Ok((contexts, handle))
        };
        rules_pass = Some(RulesPass {
            earliest,
            customers,
            speculation,
        });
    }
    let stored = events::insert_new(tx, tenant, rows).await?;

    // Spend of the new usage events, per hourly bucket; the (customer, month)s they touch.
    let mut buckets: BTreeMap<BucketKey, (i128, i64)> = BTreeMap::new();
    for (((customer, time), e), new) in placed.iter().zip(kept.iter()).zip(&stored) {
        if !new {
            summary.duplicates += 1;
            continue;
        }
        summary.accepted += 1;
        let Some(customer) = customer else {
            summary.pending_customer += 1;
            continue;
        };
        if let EventBody::Usage(u) = &e.body {
            let key = BucketKey {
                customer_id: *customer,
                meter_category: u.meter_category.clone(),
                hour: time.div_euclid(HOUR_MICROS) * HOUR_MICROS,
                currency: u.cost.currency.code().to_owned(),
            };
            let b = buckets.entry(key).or_insert((0, 0));
            b.0 += u.cost.picos;
            b.1 += 1;
        }
    }
    let hours: BTreeSet<(Uuid, i64)> = buckets.keys().map(|k| (k.customer_id, k.hour)).collect();
    let touched: BTreeSet<(Uuid, i64)> = hours
        .into_iter()
        .map(|(c, hour)| {
            (
                c,
                to_micros(Month::of(riskdesk_storage::time::from_micros(hour)).start),
            )
        })
        .collect();
    // Spend series (customer, meter category) that got new spend, with the earliest hour.
    let mut spend_series: BTreeMap<(Uuid, String), i64> = BTreeMap::new();
    for k in buckets.keys() {
        spend_series
            .entry((k.customer_id, k.meter_category.clone()))
            .and_modify(|h| *h = (*h).min(k.hour))
            .or_insert(k.hour);
    }
    add_buckets(tx, tenant, buckets).await?;
    for (customer, month_start) in touched {
        let month = Month::of(riskdesk_storage::time::from_micros(month_start));
        summary
            .alerts
            .extend(evaluate_budget(tx, tenant, customer, &month, now, as_of).await?);
    }
    // Customers whose cached history this batch updated.
    let mut cached: Vec<Uuid> = Vec::new();
    if let Some(pass) = rules_pass {
        let new_events = || {
            placed
                .iter()
                .zip(kept.iter())
                .zip(&stored)
                .filter(|(_, new)| **new)
                .filter_map(|(((c, t), e), _)| c.map(|c| (c, *t, e)))
        };
        // Customers some event of this batch re-sent (their speculative evaluation saw it).
        let resent: BTreeSet<Uuid> = placed
            .iter()
            .zip(&stored)
            .filter(|(_, new)| !**new)
            .filter_map(|((c, _), _)| *c)
            .collect();
        let (contexts, evaluation) = match pass.speculation {
            Ok((contexts, handle)) => {
                let speculated = handle
                    .await
                    .map_err(|e| AppError::Internal(format!("rule evaluation failed: {e}")))?;
                if resent.is_empty() {
                    (contexts, speculated)
                } else {
                    // A duplicate was evaluated as new: the customers it belongs to (each
                    // customer's evaluation is independent of the others') are evaluated again
                    // from their histories as they were before this batch.
                    let mut evaluation = speculated;
                    evaluation.forget(&resent);
                    let skip: std::collections::HashSet<&str> = kept
                        .iter()
                        .zip(&stored)
                        .filter(|(_, new)| **new)
                        .map(|(e, _)| e.event_id.as_str())
                        .collect();
                    let earliest: BTreeMap<Uuid, i64> = pass
                        .earliest
                        .iter()
                        .filter(|(c, _)| resent.contains(c))
                        .map(|(c, t)| (*c, *t))
                        .collect();
                    let histories = detect::load_histories(tx, tenant, &earliest, &skip).await?;
                    let again = evaluate_rules(
                        &detector.runtime,
                        &rule_set,
                        &contexts,
                        histories,
                        new_events().filter(|(c, _, _)| resent.contains(c)),
                    );
                    evaluation.absorb(again);
                    (contexts, evaluation)
                }
            }
            Err(histories) => {
                let contexts = Arc::new(
                    customer_contexts(tx, tenant, &pass.customers, rule_set.needs_budget, as_of)
                        .await?,
                );
                let evaluation = evaluate_rules(
                    &detector.runtime,
                    &rule_set,
                    &contexts,
                    histories,
                    new_events(),
                );
                (contexts, evaluation)
            }
        };
        cached = act_on_hits(
            tx,
            tenant,
            detector,
            &rule_set,
            &contexts,
            evaluation,
            &mut summary,
            now,
            &heads,
        )
        .await?;
    }
    if !cached.is_empty() {
        let d = detector.clone();
        tx.on_rollback(move || d.forget(tenant, &cached));
    }
    if !spend_series.is_empty() {
        let series = spend_series.into_iter().map(|((c, cat), h)| (c, cat, h));
        match hold {
            Some(hold) => {
                let hold = hold.clone();
                tx.after_commit(move || hold.mark(tenant, series));
            }
            None => {
                let d = detector.clone();
                tx.after_commit(move || d.spend.mark(tenant, series));
            }
        }
    }
    Ok(summary)
}

/// The rules' work on a batch, started before its write.
struct RulesPass {
    /// Each customer's earliest event in the batch (where its history must reach back from).
    earliest: BTreeMap<Uuid, i64>,
    /// The customers whose histories were taken out of the cache.
    customers: Vec<Uuid>,
    /// `Ok`: the customers' contexts and the evaluation running while the batch is written;
    /// `Err`: the histories, for an evaluation after the write.
    speculation: Result<
        (
            Arc<BTreeMap<Uuid, serde_json::Value>>,
            tokio::task::JoinHandle<Evaluation>,
        ),
        BTreeMap<Uuid, History>,
    >,
}

/// A rule that held on one event.
struct Hit {
    /// Index in the rule set.
    rule: usize,
    customer: Uuid,
    at: i64,
    event_id: String,
    event: serde_json::Value,
    calls: Vec<(String, serde_json::Value)>,
}

/// What the rules found on a batch; no storage touched yet.
struct Evaluation {
    /// In batch order within each customer (alerts fold per rule and customer).
    hits: Vec<Hit>,
    histories: BTreeMap<Uuid, History>,
    /// Each customer's newest event time (its history is trimmed from there).
    newest: BTreeMap<Uuid, i64>,
    /// Failed evaluations per customer.
    rule_errors: BTreeMap<Uuid, u64>,
}

impl Evaluation {
    /// Drops what was found for these customers.
    fn forget(&mut self, customers: &BTreeSet<Uuid>) {
        self.hits.retain(|h| !customers.contains(&h.customer));
        for c in customers {
            self.histories.remove(c);
            self.newest.remove(c);
            self.rule_errors.remove(c);
        }
    }

    /// Adds the findings of another evaluation over other customers.
    fn absorb(&mut self, other: Evaluation) {
        self.hits.extend(other.hits);
        self.histories.extend(other.histories);
        self.newest.extend(other.newest);
        self.rule_errors.extend(other.rule_errors);
    }
}

/// Evaluates every running rule on each new event, in batch order, the event already in its
/// customer's history. Pure computation, so it can run on another thread.
fn evaluate_rules<'e>(
    runtime: &riskdesk_domain::monitoring::rules::RuleRuntime,
    set: &RuleSet,
    contexts: &BTreeMap<Uuid, serde_json::Value>,
    mut histories: BTreeMap<Uuid, History>,
    new_events: impl Iterator<Item = (Uuid, i64, &'e Event)>,
) -> Evaluation {
    let mut hits: Vec<Hit> = Vec::new();
    let mut rule_errors: BTreeMap<Uuid, u64> = BTreeMap::new();
    let mut newest: BTreeMap<Uuid, i64> = BTreeMap::new();
    let empty = Arc::new(serde_json::json!({}));
    // The rules of each scope, listed once per batch.
    let of_scope = |scope: Scope| -> (Vec<usize>, Vec<&Compiled>) {
        let rules: Vec<usize> = (0..set.rules.len())
            .filter(|&i| set.rules[i].compiled.scope == scope)
            .collect();
        let compiled = rules.iter().map(|&i| &set.rules[i].compiled).collect();
        (rules, compiled)
    };
    let (usage_rules, activity_rules) = (of_scope(Scope::Usage), of_scope(Scope::Activity));
    // Each customer's context at the age (in days) of its last event: shared by its events of
    // the same age.
    struct CustomerView {
        created: Option<i64>,
        age: Option<i64>,
        value: Arc<serde_json::Value>,
    }
    let mut views: HashMap<Uuid, CustomerView> = HashMap::new();
    for (customer, at, e) in new_events {
        let Some(history) = histories.get_mut(&customer) else {
            continue;
        };
        history.push(detect::rec_of_event(e, at));
        let n = newest.entry(customer).or_insert(at);
        *n = (*n).max(at);
        let (matching, compiled) = match detect::scope_of(e) {
            Scope::Usage => &usage_rules,
            Scope::Activity => &activity_rules,
            Scope::Signup => continue,
        };
        if matching.is_empty() {
            continue;
        }
        let ctx = match contexts.get(&customer) {
            Some(c) => {
                let view = views.entry(customer).or_insert_with(|| CustomerView {
                    created: detect::created_at(c),
                    age: None,
                    value: empty.clone(),
                });
                let age = view.created.map(|t| detect::age_in_days(t, at));
                if age != view.age || Arc::ptr_eq(&view.value, &empty) {
                    view.age = age;
                    view.value = Arc::new(detect::customer_at(c, at));
                }
                view.value.clone()
            }
            None => empty.clone(),
        };
        // Rules read the event's fields in place; its JSON is built only for the interpreter
        // or a hit's evidence.
        let view = detect::EventFields { event: e, at };
        let subj = detect::subject(e, &view, ctx);
        let results = runtime.evaluate_all(compiled, &subj, history);
        for (&rule, result) in matching.iter().zip(results) {
            match result {
                Ok(o) if o.hit => hits.push(Hit {
                    rule,
                    customer,
                    at,
                    event_id: e.event_id.clone(),
                    event: subj.event().clone(),
                    calls: o.calls,
                }),
                Ok(_) => {}
                Err(why) => {
                    *rule_errors.entry(customer).or_default() += 1;
                    tracing::debug!(rule = %set.rules[rule].row.id, event = %e.event_id, %why, "rule could not be evaluated");
                }
            }
        }
    }
    Evaluation {
        hits,
        histories,
        newest,
        rule_errors,
    }
}

/// Gives the histories back to the cache and writes what the hits call for: alerts (hits of
/// one rule for one customer inside its cool-down folded into one), shadow hits, enforcement.
/// Returns the customers whose histories went back to the cache.
#[allow(clippy::too_many_arguments)]
async fn act_on_hits(
    tx: &mut Uow,
    tenant: TenantId,
    detector: &Detector,
    set: &RuleSet,
    contexts: &BTreeMap<Uuid, serde_json::Value>,
    evaluation: Evaluation,
    summary: &mut IngestSummary,
    now: Timestamp,
    heads: &HashMap<Uuid, i64>,
) -> Result<Vec<Uuid>, AppError> {
    let Evaluation {
        hits,
        histories,
        newest,
        rule_errors,
    } = evaluation;
    summary.rule_errors += rule_errors.values().sum::<u64>();
    let touched: Vec<Uuid> = histories.keys().copied().collect();
    for (c, h) in histories {
        let at = newest.get(&c).copied().unwrap_or(0);
        // Every customer with a history here was bumped by this unit of work.
        let seq = heads.get(&c).copied().unwrap_or(i64::MIN);
        detector.give_back(tenant, c, h, at, seq);
    }
    let actor = Actor::system("rules");
    // Hits of one rule for one customer inside its cool-down fold before anything is written:
    // one alert write per run of hits, not one per event.
    struct Run {
        hit: Hit,
        first_at: i64,
        count: i64,
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut open: std::collections::HashMap<(Uuid, Uuid), usize> = std::collections::HashMap::new();
    for hit in hits {
        let rule = &set.rules[hit.rule];
        let key = (rule.row.id, hit.customer);
        let shadow = rule.row.mode == "shadow";
        let cooldown = rule.row.cooldown_seconds.saturating_mul(1_000_000);
        if !shadow {
            if let Some(&i) = open.get(&key) {
                if hit.at - runs[i].hit.at <= cooldown && hit.at >= runs[i].hit.at {
                    runs[i].count += 1;
                    runs[i].hit = hit;
                    continue;
                }
            }
            open.insert(key, runs.len());
        }
        runs.push(Run {
            first_at: hit.at,
            count: 1,
            hit,
        });
    }
    for run in runs {
        let (hit, first_at, occurrences) = (run.hit, run.first_at, run.count);
        let rule = &set.rules[hit.rule];
        let row = &rule.row;
        let mut evidence = serde_json::json!({
            "rule": {"id": row.id, "name": row.name, "version": row.version, "condition": row.condition, "mode": row.mode},
            "event": hit.event,
            "customer": contexts.get(&hit.customer).cloned().unwrap_or_default(),
            "values": hit.calls.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<serde_json::Map<_, _>>(),
        });
        if row.mode == "shadow" {
            riskdesk_storage::rules::record_hit(
                tx,
                tenant,
                row.id,
                row.version,
                hit.customer,
                &hit.event_id,
                hit.at,
                &evidence.to_string(),
            )
            .await?;
            summary.shadow_hits += 1;
            continue;
        }
        if let Some((action, mode)) = rule.action {
            let acted = if mode == EnforcementMode::Auto {
                let note = format!(
                    "rule '{}' (version {}) fired on event {}",
                    row.name, row.version, hit.event_id
                );
                crate::accounts::act_on_active_subscriptions(
                    tx,
                    tenant,
                    &actor,
                    hit.customer,
                    action,
                    &note,
                    now,
                )
                .await?
            } else {
                Vec::new()
            };
            evidence["enforcement"] = serde_json::json!({"action": action.as_str(), "mode": mode.as_str(), "subscriptions_acted_on": acted});
        }
        let rule_key = row.id.to_string();
        let alert = raise(
            tx,
            tenant,
            &actor,
            NewAlert {
                customer_id: Some(hit.customer),
                rule: &rule_key,
                severity: &row.severity,
                title: &row.name,
                evidence_json: evidence.to_string(),
                at: first_at,
                cooldown_micros: row.cooldown_seconds.saturating_mul(1_000_000),
                occurrences,
                last_at: hit.at,
            },
            now,
        )
        .await?;
        if let Some((action, EnforcementMode::RequireApproval)) = rule.action {
            tx.approvals()
                .propose_enforcement(
                    tx,
                    crate::kernel::ports::EnforcementProposal {
                        tenant,
                        actor: &actor,
                        customer: hit.customer,
                        kind: riskdesk_domain::response::ActionKind::from_lifecycle(action),
                        why: &format!("rule '{}' proposes {}", row.name, action.as_str()),
                        alert: Some(alert.id),
                        now,
                    },
                )
                .await?;
        }
        summary.alerts.push(alert.id);
    }
    Ok(touched)
}

/// The `customer` a rule sees, per customer.
async fn customer_contexts(
    tx: &mut Uow,
    tenant: TenantId,
    ids: &[Uuid],
    with_budget: bool,
    as_of: Timestamp,
) -> Result<BTreeMap<Uuid, serde_json::Value>, AppError> {
    let mut out = BTreeMap::new();
    // One query per 500 customers, not one each (a batch of 20,000 events touches thousands).
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        rows.extend(customers::get_many_tx(tx, tenant, chunk).await?);
    }
    for c in rows {
        let id = &c.id;
        let age_days = (to_micros(as_of) - c.created_at).max(0) / 86_400_000_000;
        // `created_at_us` lets each evaluation compute the age at its event's time.
        let credit_limit = match (
            c.credit_limit_minor,
            c.credit_currency
                .as_deref()
                .and_then(|x| Currency::parse(x).ok()),
        ) {
            (Some(m), Some(cur)) => m as f64 / 10f64.powi(i32::from(cur.exponent())),
            _ => -1.0,
        };
        let mut budget_used_pct = -1.0;
        if with_budget {
            if let Some(row) = budgets::get_tx(tx, tenant, *id).await? {
                let b = budget_of(&row)?;
                let month = Month::of(as_of);
                let spend = events::spend_between_tx(
                    tx,
                    tenant,
                    *id,
                    to_micros(month.start),
                    to_micros(month.end),
                )
                .await?;
                let st = budget::standing(&b, &month, spend_in(&spend, b.monthly.currency), as_of);
                budget_used_pct = st.used_basis_points as f64 / 100.0;
            }
        }
        out.insert(
            *id,
            serde_json::json!({
                "id": id.to_string(), "age_days": age_days, "country": c.country, "cloud_instance": c.cloud_instance,
                "risk_status": c.risk_status, "admin_access": c.admin_access, "credit_limit": credit_limit,
                "budget_used_pct": budget_used_pct, "created_at_us": c.created_at,
                "paid": c.first_payment_at.is_some(),
            }),
        );
    }
    Ok(out)
}

async fn add_buckets(
    tx: &mut Uow,
    tenant: TenantId,
    buckets: BTreeMap<BucketKey, (i128, i64)>,
) -> Result<(), AppError> {
    let list: Vec<(BucketKey, (i64, i64), i64)> = buckets
        .into_iter()
        .map(|(k, (picos, n))| (k, split(picos), n))
        .collect();
    events::add_spend(tx, tenant, &list).await?;
    Ok(())
}

fn event_row(
    e: &Event,
    customer_id: Option<Uuid>,
    external: Option<String>,
    received_at: i64,
) -> EventRow {
    let mut row = EventRow {
        event_id: e.event_id.clone(),
        kind: e.kind(),
        customer_id,
        customer_external_id: external,
        subscription_id: e.subscription_id,
        time: to_micros(e.time),
        received_at,
        meter_category: None,
        meter_name: None,
        region: None,
        resource_id: None,
        quantity: None,
        unit: None,
        cost: None,
        currency: None,
        operation: None,
        actor: None,
        status: None,
        properties_json: None,
    };
    match &e.body {
        EventBody::Usage(u) => {
            row.meter_category = Some(u.meter_category.clone());
            row.meter_name = Some(u.meter_name.clone());
            row.region = Some(u.region.clone());
            row.resource_id = u.resource_id.clone();
            row.quantity = u.quantity.clone();
            row.unit = u.unit.clone();
            row.cost = Some(split(u.cost.picos));
            row.currency = Some(u.cost.currency.code().to_owned());
        }
        EventBody::Activity(a) => {
            row.operation = Some(a.operation.clone());
            row.actor = a.actor.clone();
            row.status = a.status.clone();
            row.properties_json = Some(a.properties.to_string());
        }
    }
    row
}

/// Gives the events kept for `external_id` to a customer that now has it and adds their spend.
pub async fn attach_pending(
    tx: &mut Uow,
    tenant: TenantId,
    external_id: &str,
    customer: CustomerId,
) -> Result<u64, AppError> {
    let (n, lines) = events::attach_pending(tx, tenant, external_id, customer.0).await?;
    if n > 0 {
        // The customer's history gained events: every cached copy is stale.
        events::lock_for_ingest(tx, tenant, &[format!("c|{}", customer.0)]).await?;
        events::bump_ingest_heads(tx, tenant, &[customer.0]).await?;
    }
    let mut buckets: BTreeMap<BucketKey, (i128, i64)> = BTreeMap::new();
    for l in lines {
        let b = buckets
            .entry(BucketKey {
                customer_id: customer.0,
                meter_category: l.meter_category,
                hour: l.time.div_euclid(HOUR_MICROS) * HOUR_MICROS,
                currency: l.currency,
            })
            .or_insert((0, 0));
        b.0 += join(l.units, l.rem);
        b.1 += 1;
    }
    add_buckets(tx, tenant, buckets).await?;
    Ok(n)
}

/// A stored budget as the domain's value.
pub fn budget_of(row: &BudgetRow) -> Result<Budget, AppError> {
    let corrupt =
        |what: &str| AppError::Internal(format!("stored budget of {}: {what}", row.customer_id));
    let currency = Currency::parse(&row.currency).map_err(|_| corrupt("currency"))?;
    let thresholds: Vec<u32> =
        serde_json::from_str(&row.thresholds_json).map_err(|_| corrupt("thresholds"))?;
    let absolute: Vec<i64> =
        serde_json::from_str(&row.absolute_json).map_err(|_| corrupt("absolute thresholds"))?;
    let enforcement = match &row.enforcement_json {
        None => None,
        Some(j) => {
            let v: StoredEnforcement =
                serde_json::from_str(j).map_err(|_| corrupt("enforcement"))?;
            Some(Enforcement {
                at_percent: v.at_percent,
                action: LifecycleAction::parse(&v.action)
                    .ok_or_else(|| corrupt("enforcement action"))?,
                mode: EnforcementMode::parse(&v.mode).ok_or_else(|| corrupt("enforcement mode"))?,
            })
        }
    };
    Budget::new(
        Money {
            minor: row.monthly_minor,
            currency,
        },
        thresholds,
        absolute
            .into_iter()
            .map(|minor| Money { minor, currency })
            .collect(),
        enforcement,
    )
    .map_err(|(f, e)| corrupt(&format!("{f}: {e}")))
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct StoredEnforcement {
    pub at_percent: u32,
    pub action: String,
    pub mode: String,
}

/// Spend in the budget's currency over a month, in pico-units.
pub fn spend_in(spend: &[events::CurrencySpend], currency: Currency) -> i128 {
    spend
        .iter()
        .filter(|s| s.currency == currency.code())
        .map(|s| join(s.units, s.rem))
        .sum()
}

/// Notifies the budget marks a month newly reached or left, and enforces if due. Returns the
/// alerts raised.
pub async fn evaluate_budget(
    tx: &mut Uow,
    tenant: TenantId,
    customer: Uuid,
    month: &Month,
    now: Timestamp,
    as_of: Timestamp,
) -> Result<Vec<Uuid>, AppError> {
    let Some(row) = budgets::get_tx(tx, tenant, customer).await? else {
        return Ok(Vec::new());
    };
    let budget = budget_of(&row)?;
    let spend = events::spend_between_tx(
        tx,
        tenant,
        customer,
        to_micros(month.start),
        to_micros(month.end),
    )
    .await?;
    let spend = spend_in(&spend, budget.monthly.currency);
    let standing = budget::standing(&budget, month, spend, as_of);
    let last = budgets::marks_tx(tx, tenant, customer, &month.key()).await?;
    let mut raised = Vec::new();
    let actor = Actor::system("budget-monitor");
    let currency = budget.monthly.currency;
    let evidence = |mark: &str, change: &str| {
        serde_json::json!({
            "month": month.key(),
            "mark": mark,
            "change": change,
            "budget": budget.monthly.to_decimal_string(),
            "currency": currency.code(),
            "spend": format_picos(spend),
            "percent_used": standing.used_basis_points as f64 / 100.0,
            "forecast": format_picos(standing.forecast_picos),
            "as_of": as_of.to_string(),
        })
        .to_string()
    };
    for change in budget::changes(&budget, &standing, &last) {
        let (mark, reached) = match &change {
            Change::Reached(m) => (m, true),
            Change::Recovered(m) => (m, false),
        };
        budgets::set_mark(
            tx,
            tenant,
            customer,
            &month.key(),
            &mark.key(),
            reached,
            to_micros(now),
        )
        .await?;
        let severity = match (mark, reached) {
            (_, false) => "info",
            (budget::Mark::Forecast, true) => "medium",
            (budget::Mark::Percent(p), true) if *p >= 100 => "high",
            _ => "medium",
        };
        let title = if reached {
            format!(
                "Budget {}: {}",
                month.key(),
                budget::describe(mark, &budget)
            )
        } else {
            format!(
                "Budget {}: back under {}",
                month.key(),
                budget::describe(mark, &budget)
            )
        };
        let rule = format!("budget.{}", mark.key());
        let alert = raise(
            tx,
            tenant,
            &actor,
            NewAlert {
                customer_id: Some(customer),
                rule: &rule,
                severity,
                title: &title,
                evidence_json: evidence(&mark.key(), if reached { "reached" } else { "recovered" }),
                at: to_micros(as_of),
                cooldown_micros: 0,
                occurrences: 1,
                last_at: to_micros(as_of),
            },
            now,
        )
        .await?;
        raised.push(alert.id);
    }
    if let Some(e) = budget::enforcement_due(&budget, &standing) {
        let key = format!("enforce:{}", e.at_percent);
        if !last.get(&key).copied().unwrap_or(false) {
            budgets::set_mark(
                tx,
                tenant,
                customer,
                &month.key(),
                &key,
                true,
                to_micros(now),
            )
            .await?;
            raised.push(
                enforce(
                    tx,
                    tenant,
                    &actor,
                    customer,
                    &budget,
                    e,
                    &evidence(&key, "reached"),
                    now,
                    as_of,
                )
                .await?,
            );
        }
    }
    Ok(raised)
}

#[allow(clippy::too_many_arguments)]
async fn enforce(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: Uuid,
    budget: &Budget,
    e: Enforcement,
    evidence: &str,
    now: Timestamp,
    as_of: Timestamp,
) -> Result<Uuid, AppError> {
    let action = e.action.as_str();
    let acted = if e.mode == EnforcementMode::Auto {
        let note = format!("spend reached {} % of the monthly budget", e.at_percent);
        crate::accounts::act_on_active_subscriptions(
            tx, tenant, actor, customer, e.action, &note, now,
        )
        .await?
    } else {
        Vec::new()
    };
    let mut ev: serde_json::Value = serde_json::from_str(evidence).unwrap_or_default();
    ev["enforcement"] = serde_json::json!({
        "action": action, "mode": e.mode.as_str(), "at_percent": e.at_percent,
        "subscriptions_acted_on": acted,
    });
    let title = match e.mode {
        EnforcementMode::Auto => format!(
            "Budget enforcement: {action} applied at {} % of {} {}",
            e.at_percent,
            budget.monthly.to_decimal_string(),
            budget.monthly.currency
        ),
        EnforcementMode::RequireApproval => format!(
            "Budget enforcement awaiting approval: {action} at {} % of {} {}",
            e.at_percent,
            budget.monthly.to_decimal_string(),
            budget.monthly.currency
        ),
    };
    let alert = raise(
        tx,
        tenant,
        actor,
        NewAlert {
            customer_id: Some(customer),
            rule: "budget.enforcement",
            severity: "high",
            title: &title,
            evidence_json: ev.to_string(),
            at: to_micros(as_of),
            cooldown_micros: 0,
            occurrences: 1,
            last_at: to_micros(as_of),
        },
        now,
    )
    .await?;
    if e.mode == EnforcementMode::RequireApproval {
        tx.approvals()
            .propose_enforcement(
                tx,
                crate::kernel::ports::EnforcementProposal {
                    tenant,
                    actor,
                    customer,
                    kind: riskdesk_domain::response::ActionKind::from_lifecycle(e.action),
                    why: &title,
                    alert: Some(alert.id),
                    now,
                },
            )
            .await?;
    }
    Ok(alert.id)
}

/// Month-to-date standing of a customer's budget, for `GET …/budget`.
pub async fn standing_now(
    db: &Db,
    tenant: TenantId,
    customer: Uuid,
    budget: &Budget,
    as_of: Timestamp,
) -> Result<(Month, budget::Standing, Vec<events::CurrencySpend>), AppError> {
    let month = Month::of(as_of);
    let spend = events::spend_between(
        db,
        tenant,
        customer,
        to_micros(month.start),
        to_micros(month.end).min(to_micros(as_of) + 1),
    )
    .await?;
    let mine = spend_in(&spend, budget.monthly.currency);
    Ok((month, budget::standing(budget, &month, mine, as_of), spend))
}

/// Runs the tenant's `signup` rules on an assessed sign-up, in the assessment's unit of work: an
/// active rule's hit raises an alert (on the customer if the sign-up created one), a shadow
/// rule's hit is recorded (under the assessment's id). Returns the alerts raised.
#[allow(clippy::too_many_arguments)]
pub async fn run_signup_rules(
    tx: &mut Uow,
    tenant: TenantId,
    detector: &detect::Detector,
    signup: &riskdesk_storage::signups::SignupRow,
    input: &riskdesk_domain::onboarding::assess::SignupInput,
    assessment: &riskdesk_domain::onboarding::assess::Assessment,
    cloud_instance: &str,
    now: Timestamp,
) -> Result<Vec<Uuid>, AppError> {
    use riskdesk_domain::monitoring::rules::{Scope, Subject};
    use riskdesk_domain::onboarding::assess::PaymentInstrument;
    let set = detector.rules(tx, tenant).await?;
    let rules: Vec<&LoadedRule> = set
        .rules
        .iter()
        .filter(|r| r.compiled.scope == Scope::Signup)
        .collect();
    if rules.is_empty() {
        return Ok(vec![]);
    }
    let (payment_type, card_bin, card_country) = match &input.payment {
        Some(PaymentInstrument::Card { bin, country, .. }) => (
            "card",
            bin.clone(),
            country.map(|c| c.as_str().to_owned()).unwrap_or_default(),
        ),
        Some(PaymentInstrument::BankTransfer) => ("bank_transfer", String::new(), String::new()),
        Some(PaymentInstrument::Invoice) => ("invoice", String::new(), String::new()),
        None => ("none", String::new(), String::new()),
    };
    let at = input.as_of;
    let zoned = at.to_zoned(jiff::tz::TimeZone::UTC);
    let event = serde_json::json!({
        "type": "signup", "assessment_id": signup.id, "decision": assessment.decision.as_str(),
        "score": assessment.score, "reasons": assessment.reasons.iter().map(|r| r.code).collect::<Vec<_>>(),
        "company_name": input.company_name, "company_domain": input.company_domain.to_string(),
        "company_country": input.company_country.as_str(), "email": input.email.to_string(),
        "email_domain": input.email.domain(), "phone": input.phone.clone().unwrap_or_default(),
        "ip": input.ip.to_string(), "device_id": input.device_id.clone().unwrap_or_default(),
        "payment_type": payment_type, "card_bin": card_bin, "card_country": card_country,
        "cloud_instance": cloud_instance, "mfa_required": assessment.mfa_required,
        "hour": zoned.hour(), "weekday": zoned.weekday().to_monday_zero_offset(),
    });
    let customer = match signup.customer_id {
        Some(c) => customer_contexts(tx, tenant, &[c], false, now)
            .await?
            .remove(&c)
            .unwrap_or_default(),
        None => serde_json::json!({}),
    };
    let subj = Subject::new(
        event.clone(),
        customer.clone(),
        to_micros(at),
        std::sync::Arc::from(""),
        std::sync::Arc::from(""),
    );
    let compiled: Vec<&Compiled> = rules.iter().map(|r| &r.compiled).collect();
    let results = detector
        .runtime
        .evaluate_all(&compiled, &subj, &mut Default::default());
    let actor = Actor::system("rules");
    let mut alerts = Vec::new();
    for (rule, result) in rules.into_iter().zip(results) {
        let row = &rule.row;
        match result {
            Ok(o) if o.hit => {
                let evidence = serde_json::json!({
                    "rule": {"id": row.id, "name": row.name, "version": row.version, "condition": row.condition, "mode": row.mode},
                    "signup": event, "customer": customer,
                });
                if row.mode == "shadow" {
                    riskdesk_storage::rules::record_hit(
                        tx,
                        tenant,
                        row.id,
                        row.version,
                        signup.customer_id.unwrap_or(signup.id),
                        &format!("signup:{}", signup.id),
                        to_micros(at),
                        &evidence.to_string(),
                    )
                    .await?;
                    continue;
                }
                let rule_key = row.id.to_string();
                let a = raise(
                    tx,
                    tenant,
                    &actor,
                    NewAlert {
                        customer_id: signup.customer_id,
                        rule: &rule_key,
                        severity: &row.severity,
                        title: &row.name,
                        evidence_json: evidence.to_string(),
                        at: to_micros(at),
                        cooldown_micros: 0,
                        occurrences: 1,
                        last_at: to_micros(at),
                    },
                    now,
                )
                .await?;
                alerts.push(a.id);
            }
            Ok(_) => {}
            Err(why) => {
                tracing::debug!(rule = %row.id, signup = %signup.id, %why, "signup rule could not be evaluated")
            }
        }
    }
    Ok(alerts)
}

/// Sets (or lowers) a customer's monthly budget amount, keeping its thresholds and
/// enforcement (the default thresholds when it had no budget). Audited as `customer.budget`.
pub async fn set_budget_amount(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    customer: Uuid,
    monthly: riskdesk_domain::money::Money,
    now: Timestamp,
) -> Result<(), AppError> {
    let current = riskdesk_storage::budgets::get_tx(tx, tenant, customer).await?;
    let row = riskdesk_storage::budgets::BudgetRow {
        customer_id: customer,
        monthly_minor: monthly.minor,
        currency: monthly.currency.code().to_owned(),
        thresholds_json: current.as_ref().map_or_else(
            || "[50,75,90,100]".to_owned(),
            |b| b.thresholds_json.clone(),
        ),
        absolute_json: current
            .as_ref()
            .filter(|b| b.currency == monthly.currency.code())
            .map_or_else(|| "[]".to_owned(), |b| b.absolute_json.clone()),
        enforcement_json: current.as_ref().and_then(|b| b.enforcement_json.clone()),
        updated_at: to_micros(now),
    };
    let before = riskdesk_storage::budgets::put(tx, tenant, &row).await?;
    let mut draft = AuditDraft::new(actor, "customer.budget", "customer", customer).after(&row);
    if let Some(b) = &before {
        draft = draft.before(b);
    }
    audit::append(tx, tenant, now, draft).await?;
    Ok(())
}
