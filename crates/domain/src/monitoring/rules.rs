//! Detection rules: a condition in CEL over the event, the customer and the customer's recent
//! history, compiled once and checked before it is saved.
//!
//! Variables: `event` (`type`, `event_id`, `meter_category`, `meter_name`, `region`,
//! `resource_id`, `quantity`, `unit`, `cost`, `currency`, `operation`, `actor`, `status`,
//! `properties`, `hour` 0–23 UTC, `weekday` 1–7) and `customer` (`id`, `age_days`, `country`,
//! `cloud_instance`, `risk_status`, `admin_access`, `credit_limit`, `budget_used_pct`; the
//! last two are -1 when unset). Functions over the customer's history up to and including the
//! event, each taking a window `"10m"`, `"1h"`, `"24h"`, `"7d"` or `"30d"`: `spend(w)`,
//! `spend_in(category, w)`, `events(w)`, `ops(operation, w)`, `failed_ops(operation, w)`,
//! `distinct_regions(w)`, `distinct_actors(w)`, `baseline_ratio(w)` (spend in the window over
//! the customer's average for a window that long in the 7 days before it, or in the part of them
//! the customer has history for; 1.0 with less than one window of history); and `new_region()`,
//! `new_sku()` (not seen in the customer's previous 30 days). Costs in rules are doubles: a
//! rule compares, the stored money stays exact.

use std::cell::RefCell;
use std::sync::Arc;

use cel::{Context, ExecutionError, Program, Value};

/// CEL's value type, for callers building a [`Subject`].
pub use cel::Value as CelValue;

/// What a rule looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Usage,
    Activity,
    /// Evaluated on each sign-up assessment: `event` is the sign-up (no history, so no window
    /// functions), `customer` the customer it created (empty before approval).
    Signup,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "usage" => Some(Scope::Usage),
            "activity" => Some(Scope::Activity),
            "signup" => Some(Scope::Signup),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Usage => "usage",
            Scope::Activity => "activity",
            Scope::Signup => "signup",
        }
    }
}

pub const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];
pub const MODES: [&str; 3] = ["active", "shadow", "disabled"];

/// The windows functions accept, in µs.
pub fn window_micros(w: &str) -> Option<i64> {
    const MIN: i64 = 60_000_000;
    match w {
        "10m" => Some(10 * MIN),
        "1h" => Some(60 * MIN),
        "24h" => Some(24 * 60 * MIN),
        "7d" => Some(7 * 24 * 60 * MIN),
        "30d" => Some(30 * 24 * 60 * MIN),
        _ => None,
    }
}

/// How far back history must reach for every function (30 days + the baseline's 7 days).
pub const HISTORY_MICROS: i64 = 37 * 24 * 3_600_000_000;

/// One past event as the window functions see it.
#[derive(Clone, Debug)]
pub struct Rec {
    pub at: i64,
    pub usage: bool,
    pub cost: f64,
    pub category: Arc<str>,
    pub region: Arc<str>,
    pub sku: Arc<str>,
    pub operation: Arc<str>,
    pub failed: bool,
    pub actor: Arc<str>,
}

/// The fields of a stored event that make its [`Rec`], borrowed from wherever they were read.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoredFields<'a> {
    pub at: i64,
    pub kind: &'a str,
    /// Usage cost in pico-units.
    pub cost_picos: Option<i128>,
    pub category: Option<&'a str>,
    pub region: Option<&'a str>,
    pub sku: Option<&'a str>,
    pub operation: Option<&'a str>,
    pub status: Option<&'a str>,
    pub actor: Option<&'a str>,
}

impl Rec {
    /// The record of a stored event. `share` makes each string's `Arc<str>`: `Arc::from`, or an
    /// [`Interner`] when many events repeat the same few regions, SKUs and operations.
    pub fn of_stored(f: &StoredFields<'_>, mut share: impl FnMut(&str) -> Arc<str>) -> Rec {
        Rec {
            at: f.at,
            usage: f.kind == "usage",
            cost: f.cost_picos.map_or(0.0, |p| p as f64 / 1e12),
            category: share(f.category.unwrap_or("")),
            region: share(f.region.unwrap_or("")),
            sku: share(f.sku.unwrap_or("")),
            operation: share(f.operation.unwrap_or("")),
            failed: status_failed(f.status),
            actor: share(f.actor.unwrap_or("")),
        }
    }
}

/// Whether an activity's status says it failed ("Failed", "failure", "denied", "error").
pub fn status_failed(status: Option<&str>) -> bool {
    status.is_some_and(|s| {
        s.as_bytes()
            .windows(4)
            .any(|w| w.eq_ignore_ascii_case(b"fail"))
            || s.eq_ignore_ascii_case("denied")
            || s.eq_ignore_ascii_case("error")
    })
}

/// One shared copy of each distinct string: a replay of millions of events allocates each
/// region, SKU or operation once.
#[derive(Debug, Default)]
pub struct Interner(std::collections::HashSet<Arc<str>, rustc_hash::FxBuildHasher>);

impl Interner {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Forgets every string (those already shared stay valid).
    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn share(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(a.clone());
        a
    }
}

/// How many of `ats` (ascending) are `<= t`, searched from the end with doubling steps. New
/// events and windows sit at the newest end of a history: this touches a few neighbouring
/// times where a binary search over a long history misses the cache at every step (measured:
/// 52 % of a 10M-event backtest's CPU in `History::push`).
fn count_at_or_before(ats: &[i64], t: i64) -> usize {
    let n = ats.len();
    let (mut step, mut hi) = (1, n);
    loop {
        let lo = n.saturating_sub(step);
        if lo == 0 || ats[lo] <= t {
            return lo + ats[lo..hi].partition_point(|a| *a <= t);
        }
        hi = lo;
        step *= 2;
    }
}

/// A customer's recent events, ordered by time (late events are inserted in place).
#[derive(Clone, Debug, Default)]
pub struct History {
    recs: Vec<Rec>,
    /// `recs[i].at`, dense: window bounds are searched here (8 bytes a record, not ~100).
    ats: Vec<i64>,
    /// `spent[i]` = usage cost of `recs[..i]`, so a window's spend is two look-ups.
    spent: Vec<f64>,
    /// When each region had usage, and each actor activity: a window's distinct count is a
    /// binary search per value instead of a pass over the window (which made every event's
    /// count cost as much as the customer's history: 19 % of a busy ingest's CPU).
    regions: Seen,
    actors: Seen,
}

/// The region a record counts under in `distinct_regions`: a usage record's.
fn region_of(r: &Rec) -> Option<&str> {
    r.usage.then_some(&*r.region)
}

/// The actor a record counts under in `distinct_actors`: an activity record's, when named.
fn actor_of(r: &Rec) -> Option<&str> {
    (!r.usage && !r.actor.is_empty()).then_some(&*r.actor)
}

/// The times at which each value was seen, each list sorted. Values are few in practice
/// (regions, a customer's admins); `History` falls back to a pass over the window when that is
/// shorter than the list of values.
#[derive(Clone, Debug, Default)]
struct Seen {
    by: Vec<(Arc<str>, Vec<i64>)>,
}

impl Seen {
    fn add(&mut self, v: &Arc<str>, at: i64) {
        let i = match self.by.iter().position(|(k, _)| **k == **v) {
            Some(i) => i,
            None => {
                self.by.push((v.clone(), Vec::new()));
                self.by.len() - 1
            }
        };
        let times = &mut self.by[i].1;
        let pos = times.partition_point(|t| *t <= at);
        times.insert(pos, at);
    }

    /// Forgets what was seen before `cut`.
    fn drop_before(&mut self, cut: i64) {
        for (_, t) in &mut self.by {
            let n = t.partition_point(|x| *x < cut);
            t.drain(..n);
        }
        self.by.retain(|(_, t)| !t.is_empty());
    }

    /// How many values were seen in (from, to].
    fn distinct(&self, from: i64, to: i64) -> i64 {
        self.by
            .iter()
            .filter(|(_, t)| {
                let i = t.partition_point(|x| *x <= from);
                i < t.len() && t[i] <= to
            })
            .count() as i64
    }
}

impl History {
    pub fn push(&mut self, r: Rec) {
        let at = r.at;
        if region_of(&r).is_some() {
            self.regions.add(&r.region, at);
        } else if actor_of(&r).is_some() {
            self.actors.add(&r.actor, at);
        }
        let pos = count_at_or_before(&self.ats, at);
        self.recs.insert(pos, r);
        self.ats.insert(pos, at);
        if self.spent.is_empty() {
            self.spent.push(0.0);
        }
        // Appends (the usual case) extend the prefix sums; a late event recomputes from it.
        self.spent.truncate(pos + 1);
        for i in pos..self.recs.len() {
            let c = if self.recs[i].usage {
                self.recs[i].cost
            } else {
                0.0
            };
            let prev = self.spent[i];
            self.spent.push(prev + c);
        }
    }

    /// When the oldest kept event happened.
    pub fn first_at(&self) -> Option<i64> {
        self.recs.first().map(|r| r.at)
    }

    /// Usage cost in (from, to].
    fn spend_between(&self, from: i64, to: i64) -> f64 {
        let a = count_at_or_before(&self.ats, from);
        let b = count_at_or_before(&self.ats, to).max(a);
        if self.spent.len() <= b {
            return 0.0;
        }
        self.spent[b] - self.spent[a]
    }

    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// Drops what is older than every window needs, relative to `now`.
    pub fn trim(&mut self, now: i64) {
        self.trim_to(now, HISTORY_MICROS);
    }

    /// Drops what is older than `reach` before `now` (a rule's [`Compiled::history_reach`]).
    pub fn trim_to(&mut self, now: i64, reach: i64) {
        let cut = self.ats.partition_point(|a| *a < now - reach);
        if cut > 0 {
            self.regions.drop_before(now - reach);
            self.actors.drop_before(now - reach);
            self.recs.drain(..cut);
            self.ats.drain(..cut);
            let base = self.spent.get(cut).copied().unwrap_or(0.0);
            self.spent.drain(..cut);
            for v in &mut self.spent {
                *v -= base;
            }
        }
    }

    /// Records in (from, to].
    fn between(&self, from: i64, to: i64) -> &[Rec] {
        let a = count_at_or_before(&self.ats, from);
        let b = count_at_or_before(&self.ats, to);
        &self.recs[a..b.max(a)]
    }
}

/// The window functions' values, shared by the CEL functions and the native evaluator so
/// both compute exactly the same thing.
impl History {
    pub(crate) fn sum_spend(&self, from: i64, to: i64, category: Option<&str>) -> f64 {
        match category {
            None => self.spend_between(from, to),
            Some(c) => self
                .between(from, to)
                .iter()
                .filter(|r| r.usage && &*r.category == c)
                .map(|r| r.cost)
                .sum(),
        }
    }
    pub(crate) fn w_spend(&self, at: i64, win: i64, category: Option<&str>) -> f64 {
        self.sum_spend(at - win, at, category)
    }
    pub(crate) fn w_events(&self, at: i64, win: i64) -> i64 {
        self.between(at - win, at).len() as i64
    }
    pub(crate) fn w_ops(&self, at: i64, win: i64, op: &str, failed_only: bool) -> i64 {
        self.between(at - win, at)
            .iter()
            .filter(|r| !r.usage && (!failed_only || r.failed) && &*r.operation == op)
            .count() as i64
    }
    pub(crate) fn w_distinct_regions(&self, at: i64, win: i64) -> i64 {
        self.distinct_in(&self.regions, at, win, region_of)
    }
    pub(crate) fn w_distinct_actors(&self, at: i64, win: i64) -> i64 {
        self.distinct_in(&self.actors, at, win, actor_of)
    }
    /// How many values `value` gives in the window: from `seen` (the index of those values),
    /// or by a pass over the window when it holds fewer records than `seen` holds values.
    fn distinct_in(&self, seen: &Seen, at: i64, win: i64, value: fn(&Rec) -> Option<&str>) -> i64 {
        let window = self.between(at - win, at);
        if window.len() <= seen.by.len() {
            return distinct(window.iter().filter_map(value));
        }
        seen.distinct(at - win, at)
    }
    /// (ratio, spend in the window, baseline). The baseline covers the part of the 7 days
    /// before the window that the customer has history for: a customer seen for two days is
    /// compared with those two days, not with a week of zeros.
    pub(crate) fn w_baseline_ratio(&self, at: i64, win: i64) -> (f64, f64, f64) {
        let week = 7 * 24 * 3_600_000_000i64;
        let now = self.sum_spend(at - win, at, None);
        let first = self.first_at().unwrap_or(at);
        let start = (at - win - week).max(first - 1);
        let observed = (at - win) - start;
        if observed < win {
            // Less history than one window: nothing to compare with, neutral.
            (1.0, now, now)
        } else {
            let before = self.sum_spend(start, at - win, None);
            let baseline = before * win as f64 / observed as f64;
            (now / baseline.max(0.01), now, baseline)
        }
    }
    /// The event itself is in the history: new means it is the only one in 30 days.
    pub(crate) fn w_new_region(&self, at: i64, region: &str) -> bool {
        let month = 30 * 24 * 3_600_000_000i64;
        // Newest first, stopping at the second match: a known region is found at once.
        self.between(at - month, at)
            .iter()
            .rev()
            .filter(|r| r.usage && &*r.region == region)
            .nth(1)
            .is_none()
    }
    pub(crate) fn w_new_sku(&self, at: i64, sku: &str) -> bool {
        let month = 30 * 24 * 3_600_000_000i64;
        self.between(at - month, at)
            .iter()
            .rev()
            .filter(|r| r.usage && &*r.sku == sku)
            .nth(1)
            .is_none()
    }
}

/// A field of an event or customer as a rule reads it: `json_to_cel`'s conversion (integers
/// stay ints, other numbers are doubles). `None` for a missing field or one the native
/// evaluator leaves to the interpreter (objects, lists, text that is not stored as such).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue<'a> {
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(&'a str),
    Null,
}

/// What a rule's `event` is: its fields by name for the native evaluator, and its JSON for the
/// interpreter and an alert's evidence (built only then).
pub trait EventView: Send + Sync {
    fn field(&self, name: &str) -> Option<FieldValue<'_>>;
    fn to_json(&self) -> serde_json::Value;
}

impl EventView for serde_json::Value {
    fn field(&self, name: &str) -> Option<FieldValue<'_>> {
        Some(match self.as_object()?.get(name)? {
            serde_json::Value::Bool(b) => FieldValue::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => FieldValue::Int(i),
                None => FieldValue::Double(n.as_f64()?),
            },
            serde_json::Value::String(s) => FieldValue::Str(s),
            serde_json::Value::Null => FieldValue::Null,
            _ => return None,
        })
    }

    fn to_json(&self) -> serde_json::Value {
        self.clone()
    }
}

enum EventSource<'e> {
    Json(serde_json::Value),
    View(&'e dyn EventView),
}

/// The event and customer a rule sees.
pub struct Subject<'e> {
    event: EventSource<'e>,
    /// The event's JSON when it is a view, built the first time it is asked for.
    event_json: std::sync::OnceLock<serde_json::Value>,
    /// Shared: one customer's events within a day see the same context.
    pub customer: Arc<serde_json::Value>,
    pub at: i64,
    pub region: Arc<str>,
    pub sku: Arc<str>,
    /// The CEL values of the event and customer, built only if the interpreter runs.
    cel: std::sync::OnceLock<(Value, Value)>,
}

impl Subject<'static> {
    /// A subject whose event is JSON.
    pub fn new(
        event: serde_json::Value,
        customer: impl Into<Arc<serde_json::Value>>,
        at: i64,
        region: Arc<str>,
        sku: Arc<str>,
    ) -> Self {
        Subject::with(EventSource::Json(event), customer.into(), at, region, sku)
    }
}

impl<'e> Subject<'e> {
    /// A subject whose event is read through a view (its JSON is built only if needed).
    pub fn viewing(
        event: &'e dyn EventView,
        customer: impl Into<Arc<serde_json::Value>>,
        at: i64,
        region: Arc<str>,
        sku: Arc<str>,
    ) -> Self {
        Subject::with(EventSource::View(event), customer.into(), at, region, sku)
    }

    fn with(
        event: EventSource<'e>,
        customer: Arc<serde_json::Value>,
        at: i64,
        region: Arc<str>,
        sku: Arc<str>,
    ) -> Self {
        Subject {
            event,
            event_json: std::sync::OnceLock::new(),
            customer,
            at,
            region,
            sku,
            cel: std::sync::OnceLock::new(),
        }
    }

    /// The event as JSON.
    pub fn event(&self) -> &serde_json::Value {
        match &self.event {
            EventSource::Json(v) => v,
            EventSource::View(v) => self.event_json.get_or_init(|| v.to_json()),
        }
    }

    pub(crate) fn event_view(&self) -> &dyn EventView {
        match &self.event {
            EventSource::Json(v) => v,
            EventSource::View(v) => *v,
        }
    }

    fn cel(&self) -> &(Value, Value) {
        self.cel
            .get_or_init(|| (json_to_cel(self.event()), json_to_cel(&self.customer)))
    }
}

struct Frame {
    history: History,
    at: i64,
    region: Arc<str>,
    sku: Arc<str>,
    calls: Vec<(String, serde_json::Value)>,
    recording: bool,
}

thread_local! {
    // The history the window functions read during one evaluation (evaluation is synchronous).
    static FRAME: RefCell<Option<Frame>> = const { RefCell::new(None) };
}

fn with_frame<T>(f: impl FnOnce(&mut Frame) -> T) -> Result<T, ExecutionError> {
    FRAME.with(|c| {
        c.borrow_mut()
            .as_mut()
            .map(f)
            .ok_or_else(|| ExecutionError::function_error("history", "no history bound"))
    })
}

fn window(name: &str, w: &str) -> Result<i64, ExecutionError> {
    window_micros(w).ok_or_else(|| {
        ExecutionError::function_error(
            name,
            format!("window '{w}' is not one of \"10m\", \"1h\", \"24h\", \"7d\", \"30d\""),
        )
    })
}

/// Records a window function's call and value for the evidence — only when recording: rules
/// are evaluated without it, and a hit is evaluated once more to record (formatting every
/// call of every rule on every event was the largest cost of evaluation).
macro_rules! record {
    ($f:expr, $call:expr, $v:expr $(,)?) => {
        if $f.recording {
            record_call($f, $call, $v)
        }
    };
}

fn record_call(f: &mut Frame, call: String, v: serde_json::Value) {
    if f.calls.len() < 64 && !f.calls.iter().any(|(c, _)| *c == call) {
        f.calls.push((call, v));
    }
}

/// How many different values.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> i64 {
    // Few distinct values in practice (regions, actors): a linear set beats sorting every
    // value of the window; past 32 it sorts what is left.
    let mut seen: Vec<&str> = Vec::new();
    let mut values = values;
    for v in values.by_ref() {
        if !seen.contains(&v) {
            seen.push(v);
            if seen.len() > 32 {
                break;
            }
        }
    }
    seen.extend(values);
    if seen.len() > 33 {
        seen.sort_unstable();
        seen.dedup();
    }
    seen.len() as i64
}

/// The root context: the standard library plus riskdesk's window functions.
fn root_context() -> Context<'static, 'static> {
    let mut ctx = Context::default();
    let add = |ctx: &mut Context<'static, 'static>, r: Result<(), cel::DeclarationError>| {
        if let Err(e) = r {
            // Only a name clash with the standard library can fail; the names are ours.
            debug_assert!(false, "{e:?}");
            let _ = ctx;
        }
    };
    let r = ctx.add_function("spend", |w: Arc<String>| -> Result<f64, ExecutionError> {
        let win = window("spend", &w)?;
        with_frame(|f| {
            let v = f.history.w_spend(f.at, win, None);
            record!(f, format!("spend(\"{w}\")"), serde_json::json!(v));
            v
        })
    });
    add(&mut ctx, r);
    let r = ctx.add_function(
        "spend_in",
        |c: Arc<String>, w: Arc<String>| -> Result<f64, ExecutionError> {
            let win = window("spend_in", &w)?;
            with_frame(|f| {
                let v = f.history.w_spend(f.at, win, Some(&c));
                record!(
                    f,
                    format!("spend_in(\"{c}\", \"{w}\")"),
                    serde_json::json!(v),
                );
                v
            })
        },
    );
    add(&mut ctx, r);
    let r = ctx.add_function("events", |w: Arc<String>| -> Result<i64, ExecutionError> {
        let win = window("events", &w)?;
        with_frame(|f| {
            let v = f.history.w_events(f.at, win);
            record!(f, format!("events(\"{w}\")"), serde_json::json!(v));
            v
        })
    });
    add(&mut ctx, r);
    let r = ctx.add_function(
        "ops",
        |op: Arc<String>, w: Arc<String>| -> Result<i64, ExecutionError> {
            let win = window("ops", &w)?;
            with_frame(|f| {
                let v = f.history.w_ops(f.at, win, &op, false);
                record!(f, format!("ops(\"{op}\", \"{w}\")"), serde_json::json!(v));
                v
            })
        },
    );
    add(&mut ctx, r);
    let r = ctx.add_function(
        "failed_ops",
        |op: Arc<String>, w: Arc<String>| -> Result<i64, ExecutionError> {
            let win = window("failed_ops", &w)?;
            with_frame(|f| {
                let v = f.history.w_ops(f.at, win, &op, true);
                record!(
                    f,
                    format!("failed_ops(\"{op}\", \"{w}\")"),
                    serde_json::json!(v),
                );
                v
            })
        },
    );
    add(&mut ctx, r);
    let r = ctx.add_function(
        "distinct_regions",
        |w: Arc<String>| -> Result<i64, ExecutionError> {
            let win = window("distinct_regions", &w)?;
            with_frame(|f| {
                let v = f.history.w_distinct_regions(f.at, win);
                record!(
                    f,
                    format!("distinct_regions(\"{w}\")"),
                    serde_json::json!(v),
                );
                v
            })
        },
    );
    add(&mut ctx, r);
    let r = ctx.add_function(
        "distinct_actors",
        |w: Arc<String>| -> Result<i64, ExecutionError> {
            let win = window("distinct_actors", &w)?;
            with_frame(|f| {
                let v = f.history.w_distinct_actors(f.at, win);
                record!(f, format!("distinct_actors(\"{w}\")"), serde_json::json!(v));
                v
            })
        },
    );
    add(&mut ctx, r);
    let r = ctx.add_function(
        "baseline_ratio",
        |w: Arc<String>| -> Result<f64, ExecutionError> {
            let win = window("baseline_ratio", &w)?;
            with_frame(|f| {
                let (v, now, baseline) = f.history.w_baseline_ratio(f.at, win);
                record!(
                    f,
                    format!("baseline_ratio(\"{w}\")"),
                    serde_json::json!({"ratio": v, "window_spend": now, "baseline": baseline}),
                );
                v
            })
        },
    );
    add(&mut ctx, r);
    let r = ctx.add_function("new_region", || -> Result<bool, ExecutionError> {
        with_frame(|f| {
            let v = f.history.w_new_region(f.at, &f.region);
            record!(f, "new_region()".into(), serde_json::json!(v));
            v
        })
    });
    add(&mut ctx, r);
    let r = ctx.add_function("new_sku", || -> Result<bool, ExecutionError> {
        with_frame(|f| {
            let v = f.history.w_new_sku(f.at, &f.sku);
            record!(f, "new_sku()".into(), serde_json::json!(v));
            v
        })
    });
    add(&mut ctx, r);
    ctx
}

const FUNCTIONS: [&str; 10] = [
    "spend",
    "spend_in",
    "events",
    "ops",
    "failed_ops",
    "distinct_regions",
    "distinct_actors",
    "baseline_ratio",
    "new_region",
    "new_sku",
];

/// An error in a rule's condition, with its position (1-based line and column) when known.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RuleError {
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

/// A compiled condition.
pub struct Compiled {
    program: Program,
    pub source: String,
    pub scope: Scope,
    /// Whether the condition reads `event` / `customer` (building them costs more than many
    /// conditions: callers skip what no rule reads).
    pub uses_event: bool,
    pub uses_customer: bool,
    /// The condition compiled for the native evaluator, when its shape allows (see
    /// `native`); it decides "false" without the interpreter.
    native: Option<super::native::Node>,
}

/// What an evaluation found.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub hit: bool,
    /// Each window function called and what it returned.
    pub calls: Vec<(String, serde_json::Value)>,
}

/// The native evaluator's answer for a rule, when it has a native form that decides.
fn native_answer(rule: &Compiled, s: &Subject, history: &History) -> Option<bool> {
    let n = rule.native.as_ref()?;
    let ctx = super::native::Ctx {
        event: s.event_view(),
        customer: &s.customer,
        history,
        at: s.at,
        region: &s.region,
        sku: &s.sku,
    };
    super::native::eval_bool(n, &ctx).ok()
}

impl Compiled {
    /// How much history before an event the condition reads (µs): its longest window when the
    /// native evaluator compiled it (literal windows), else everything rules keep.
    pub fn history_reach(&self) -> i64 {
        self.native
            .as_ref()
            .map_or(HISTORY_MICROS, super::native::reach)
            .min(HISTORY_MICROS)
    }
}

/// The compiler and evaluator (the CEL context with riskdesk's functions, built once).
pub struct RuleRuntime {
    root: Context<'static, 'static>,
}

impl Default for RuleRuntime {
    fn default() -> Self {
        RuleRuntime {
            root: root_context(),
        }
    }
}

impl RuleRuntime {
    /// Parses the condition, checks its names, and runs it once on a sample event of its scope:
    /// what cannot run or is not a boolean is refused with the reason.
    pub fn compile(&self, source: &str, scope: Scope) -> Result<Compiled, Vec<RuleError>> {
        if source.trim().is_empty() {
            return Err(vec![RuleError {
                line: None,
                column: None,
                message: "the condition is empty".into(),
            }]);
        }
        if source.len() > 4096 {
            return Err(vec![RuleError {
                line: None,
                column: None,
                message: "the condition is longer than 4096 characters".into(),
            }]);
        }
        let program = Program::compile(source).map_err(|e| {
            e.errors
                .iter()
                .map(|p| RuleError {
                    line: u32::try_from(p.pos.0).ok(),
                    column: u32::try_from(p.pos.1 + 1).ok(),
                    message: p.msg.clone(),
                })
                .collect::<Vec<_>>()
        })?;
        let refs = program.references();
        let mut errors = Vec::new();
        for v in refs.variables() {
            if !matches!(v, "event" | "customer") {
                errors.push(RuleError {
                    line: None,
                    column: None,
                    message: format!("unknown variable '{v}': use `event` or `customer`"),
                });
            }
        }
        for f in refs.functions() {
            let std = self.root_has_std(f);
            if scope == Scope::Signup && FUNCTIONS.contains(&f) {
                errors.push(RuleError {
                    line: None,
                    column: None,
                    message: format!(
                        "'{f}' reads a customer's event history, which a sign-up does not have"
                    ),
                });
            } else if !std && !FUNCTIONS.contains(&f) {
                errors.push(RuleError {
                    line: None,
                    column: None,
                    message: format!("unknown function '{f}'"),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let vars = refs.variables();
        let (uses_event, uses_customer) = (vars.contains(&"event"), vars.contains(&"customer"));
        drop(refs);
        let native = super::native::compile(&program.expression().expr);
        // Validated by the interpreter alone: the sample run must see every type error.
        let mut compiled = Compiled {
            program,
            source: source.to_owned(),
            scope,
            uses_event,
            uses_customer,
            native: None,
        };
        let sample = sample_subject(scope);
        match self.evaluate(&compiled, &sample, &mut History::default()) {
            Ok(_) => {
                compiled.native = native;
                Ok(compiled)
            }
            Err(e) => Err(vec![RuleError {
                line: None,
                column: None,
                message: e,
            }]),
        }
    }

    fn root_has_std(&self, f: &str) -> bool {
        // The CEL standard library's functions and macros.
        matches!(
            f,
            "size"
                | "contains"
                | "startsWith"
                | "endsWith"
                | "matches"
                | "has"
                | "all"
                | "exists"
                | "exists_one"
                | "map"
                | "filter"
                | "int"
                | "uint"
                | "double"
                | "string"
                | "bytes"
                | "bool"
                | "type"
                | "max"
                | "min"
                | "duration"
                | "timestamp"
                | "dyn"
                | "@in"
                | "_==_"
                | "_!=_"
                | "_<_"
                | "_<=_"
                | "_>_"
                | "_>=_"
                | "_&&_"
                | "_||_"
                | "!_"
                | "_+_"
                | "_-_"
                | "_*_"
                | "_/_"
                | "_%_"
                | "-_"
                | "_?_:_"
                | "_[_]"
                | "@not_strictly_false"
        )
    }

    /// Whether a condition holds on one event, without the evidence (a backtest counts hits):
    /// the native evaluator's answer when it has one, true or false, else the interpreter's.
    pub fn decide(
        &self,
        rule: &Compiled,
        s: &Subject,
        history: &mut History,
    ) -> Result<bool, String> {
        if let Some(decided) = native_answer(rule, s, history) {
            return Ok(decided);
        }
        self.evaluate_all(&[rule], s, history)
            .pop()
            .unwrap_or_else(|| Err("no rule".into()))
            .map(|o| o.hit)
    }

    /// Runs a condition on one event with the customer's history (which must already hold the
    /// event). The history is lent to the window functions and given back.
    pub fn evaluate(
        &self,
        rule: &Compiled,
        s: &Subject,
        history: &mut History,
    ) -> Result<Outcome, String> {
        // What the native evaluator decides false needs nothing more (nor any allocation).
        if native_answer(rule, s, history) == Some(false) {
            return Ok(Outcome {
                hit: false,
                calls: Vec::new(),
            });
        }
        self.evaluate_all(&[rule], s, history)
            .pop()
            .unwrap_or_else(|| Err("no rule".into()))
    }

    /// Runs several conditions on one event: the event and customer are bound once, the
    /// history is lent once.
    pub fn evaluate_all(
        &self,
        rules: &[&Compiled],
        s: &Subject,
        history: &mut History,
    ) -> Vec<Result<Outcome, String>> {
        // The native evaluator first: what it decides false needs nothing more.
        let decided: Vec<Option<Result<Outcome, String>>> = rules
            .iter()
            .map(|rule| {
                (native_answer(rule, s, history) == Some(false)).then(|| {
                    Ok(Outcome {
                        hit: false,
                        calls: Vec::new(),
                    })
                })
            })
            .collect();
        if decided.iter().all(Option::is_some) {
            return decided.into_iter().flatten().collect();
        }
        let mut scope = self.root.new_inner_scope();
        let (event, customer) = s.cel();
        scope.add_variable_from_value("event", event.clone());
        scope.add_variable_from_value("customer", customer.clone());
        FRAME.with(|c| {
            *c.borrow_mut() = Some(Frame {
                history: std::mem::take(history),
                at: s.at,
                region: s.region.clone(),
                sku: s.sku.clone(),
                calls: Vec::new(),
                recording: false,
            })
        });
        let set_recording = |on: bool| {
            FRAME.with(|c| {
                if let Some(f) = c.borrow_mut().as_mut() {
                    f.recording = on;
                    f.calls.clear();
                }
            })
        };
        let mut out = Vec::with_capacity(rules.len());
        for (rule, known) in rules.iter().zip(decided) {
            if let Some(known) = known {
                out.push(known);
                continue;
            }
            let result = match rule.program.execute(&scope) {
                Ok(Value::Bool(true)) => {
                    // A hit: run again, recording what each window function saw.
                    set_recording(true);
                    let again = rule.program.execute(&scope);
                    let calls = FRAME.with(|c| {
                        c.borrow_mut()
                            .as_mut()
                            .map(|f| std::mem::take(&mut f.calls))
                            .unwrap_or_default()
                    });
                    set_recording(false);
                    match again {
                        Ok(Value::Bool(hit)) => Ok(Outcome { hit, calls }),
                        Ok(other) => Err(format!(
                            "the condition must give true or false, it gave {other:?}"
                        )),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Ok(Value::Bool(false)) => Ok(Outcome {
                    hit: false,
                    calls: Vec::new(),
                }),
                Ok(other) => Err(format!(
                    "the condition must give true or false, it gave {other:?}"
                )),
                Err(e) => Err(e.to_string()),
            };
            out.push(result);
        }
        if let Some(f) = FRAME.with(|c| c.borrow_mut().take()) {
            *history = f.history;
        }
        out
    }
}

/// A plausible sign-up as signup rules see it (every field present).
pub fn sample_signup() -> serde_json::Value {
    serde_json::json!({
        "type": "signup", "assessment_id": "sample", "decision": "review", "score": 40,
        "reasons": ["email_free_provider"], "company_name": "Contoso Ltd", "company_domain": "contoso.com",
        "company_country": "FR", "email": "ops@contoso.com", "email_domain": "contoso.com",
        "phone": "+33142685300", "ip": "203.0.113.7", "device_id": "dev-1", "payment_type": "card",
        "card_bin": "411111", "card_country": "FR", "cloud_instance": "global", "mfa_required": false,
        "hour": 12, "weekday": 3,
    })
}

/// A plausible event and customer of a scope, every field present (used to check rules).
pub fn sample_subject(scope: Scope) -> Subject<'static> {
    if scope == Scope::Signup {
        return Subject::new(
            sample_signup(),
            serde_json::json!({}),
            0,
            Arc::from(""),
            Arc::from(""),
        );
    }
    let event = serde_json::json!({
        "type": scope.as_str(), "event_id": "sample", "meter_category": "Virtual Machines",
        "meter_name": "NC24ads A100 v4", "region": "westeurope", "resource_id": "/subscriptions/x/vm",
        "quantity": 1.0, "unit": "Hours", "cost": 1.0, "currency": "USD", "operation": "sign_in",
        "actor": "someone@example.com", "status": "succeeded", "properties": {}, "hour": 12, "weekday": 3,
    });
    Subject::new(
        event,
        serde_json::json!({
            "id": "00000000-0000-0000-0000-000000000000", "age_days": 10, "country": "FR",
            "cloud_instance": "global", "risk_status": "normal", "admin_access": "restricted",
            "credit_limit": 1000.0, "budget_used_pct": 10.0, "paid": false,
        }),
        0,
        Arc::from("westeurope"),
        Arc::from("NC24ads A100 v4"),
    )
}

/// JSON to a CEL value (numbers: integers stay ints, others doubles).
pub fn json_to_cel(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) if !n.to_string().contains('.') => Value::Int(i),
            _ => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(a) => Value::List(Arc::new(a.iter().map(json_to_cel).collect())),
        serde_json::Value::Object(m) => {
            let map: std::collections::HashMap<String, Value> =
                m.iter().map(|(k, v)| (k.clone(), json_to_cel(v))).collect();
            Value::from(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searching_from_the_end_finds_what_a_binary_search_finds() {
        for n in [0usize, 1, 2, 3, 7, 64, 1000] {
            let ats: Vec<i64> = (0..n as i64).map(|i| i / 3).collect();
            for at in -1..=(n as i64 / 3 + 1) {
                assert_eq!(
                    count_at_or_before(&ats, at),
                    ats.partition_point(|x| *x <= at),
                    "n={n} at={at}"
                );
            }
        }
    }

    #[test]
    fn a_rule_reaches_back_as_far_as_its_longest_window() {
        let rt = RuleRuntime::default();
        let reach = |c: &str| rt.compile(c, Scope::Usage).unwrap().history_reach();
        let hour = 3_600_000_000i64;
        assert_eq!(reach("spend('1h') > 50.0"), hour);
        assert_eq!(
            reach("spend('10m') > 1.0 || (events('24h') > 3 && event.cost > 1.0)"),
            24 * hour
        );
        assert_eq!(reach("new_region()"), 30 * 24 * hour);
        assert_eq!(reach("baseline_ratio('1h') > 3.0"), HISTORY_MICROS);
        assert_eq!(reach("event.cost > 1000.0"), 0);
    }

    #[test]
    fn failed_statuses_and_shared_strings() {
        for s in ["Failed", "FAILURE", "SignInFailed", "denied", "Error"] {
            assert!(status_failed(Some(s)), "{s}");
        }
        for s in ["Succeeded", "Started", "errors-none", ""] {
            assert!(!status_failed(Some(s)), "{s}");
        }
        assert!(!status_failed(None));
        let mut i = Interner::default();
        let (a, b) = (i.share("westeurope"), i.share("westeurope"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &i.share("eastus")));
        let r = Rec::of_stored(
            &StoredFields {
                at: 7,
                kind: "usage",
                cost_picos: Some(1_500_000_000_000),
                region: Some("westeurope"),
                ..Default::default()
            },
            |s| i.share(s),
        );
        assert!(r.usage && r.cost == 1.5 && Arc::ptr_eq(&r.region, &a) && !r.failed);
    }

    fn rec(at_min: i64, cost: f64, region: &str) -> Rec {
        Rec {
            at: at_min * 60_000_000,
            usage: true,
            cost,
            category: Arc::from("Virtual Machines"),
            region: Arc::from(region),
            sku: Arc::from("D2"),
            operation: Arc::from(""),
            failed: false,
            actor: Arc::from(""),
        }
    }

    /// What a pass over the window counts, the indexed count must count: usage and activity
    /// mixed, events late and on time, trims, windows of every size.
    #[test]
    fn distinct_counts_from_the_index_match_a_pass_over_the_window() {
        let scan = |h: &History, at: i64, win: i64, usage: bool| {
            distinct(
                h.between(at - win, at)
                    .iter()
                    .filter(|r| r.usage == usage && (usage || !r.actor.is_empty()))
                    .map(|r| if usage { &*r.region } else { &*r.actor }),
            )
        };
        let mut h = History::default();
        let mut seed: u64 = 0x9e37_79b9;
        let mut next = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        let mut checked = 0;
        // Windows answered by a pass and by the index, regions then actors.
        let mut by_pass = [0; 2];
        let mut by_index = [0; 2];
        for step in 0..3_000i64 {
            // Mostly in order, one in five up to 90 minutes late.
            let late = if next(5) == 0 { next(90) as i64 } else { 0 };
            let at_min = step / 2 - late;
            let mut r = rec(at_min, 1.0, &format!("region{}", next(40)));
            if next(3) == 0 {
                r.usage = false;
                r.actor = Arc::from(match next(12) {
                    0 => String::new(),
                    n => format!("admin{n}@example.com"),
                });
            }
            h.push(r);
            if step % 700 == 699 {
                h.trim_to(at_min * 60_000_000, 6 * 3_600_000_000);
            }
            let at = (step / 2 - next(30) as i64) * 60_000_000;
            for win_min in [0, 1, 5, 60, 600, 10_000] {
                let win = win_min * 60_000_000;
                let len = h.between(at - win, at).len();
                for (k, seen) in [&h.regions, &h.actors].into_iter().enumerate() {
                    if len <= seen.by.len() {
                        by_pass[k] += 1;
                    } else {
                        by_index[k] += 1;
                    }
                }
                assert_eq!(
                    h.w_distinct_regions(at, win),
                    scan(&h, at, win, true),
                    "step {step}, window {win_min} min"
                );
                assert_eq!(
                    h.w_distinct_actors(at, win),
                    scan(&h, at, win, false),
                    "step {step}, window {win_min} min"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 18_000);
        // Both ways were taken, for regions and for actors.
        assert!(
            by_pass.iter().chain(&by_index).all(|n| *n > 0),
            "{by_pass:?} {by_index:?}"
        );
    }

    #[test]
    fn errors_name_the_position_or_the_name() {
        let rt = RuleRuntime::default();
        let e = rt.compile("event.cost > ", Scope::Usage).err().unwrap();
        assert!(e[0].line.is_some() && e[0].column.is_some(), "{e:?}");
        let e = rt.compile("evnt.cost > 1.0", Scope::Usage).err().unwrap();
        assert!(e[0].message.contains("unknown variable 'evnt'"), "{e:?}");
        let e = rt
            .compile("spend_all(\"1h\") > 1.0", Scope::Usage)
            .err()
            .unwrap();
        assert!(
            e[0].message.contains("unknown function 'spend_all'"),
            "{e:?}"
        );
        let e = rt
            .compile("spend(\"2h\") > 1.0", Scope::Usage)
            .err()
            .unwrap();
        assert!(e[0].message.contains("window '2h'"), "{e:?}");
        let e = rt.compile("event.cost + 1.0", Scope::Usage).err().unwrap();
        assert!(e[0].message.contains("true or false"), "{e:?}");
        let e = rt.compile("event.cots > 1.0", Scope::Usage).err().unwrap();
        assert!(e[0].message.contains("cots"), "{e:?}");
        let e = rt
            .compile("event.cost > 'a lot'", Scope::Usage)
            .err()
            .unwrap();
        assert!(!e[0].message.is_empty());
        assert!(
            rt.compile("event.cost > 1.0 && customer.age_days < 30", Scope::Usage)
                .is_ok()
        );
    }

    #[test]
    fn windows_see_the_history_up_to_the_event() {
        let rt = RuleRuntime::default();
        let mut h = History::default();
        for (m, c) in [(0, 10.0), (50, 20.0), (119, 30.0), (120, 40.0)] {
            h.push(rec(m, c, "westeurope"));
        }
        h.push(rec(121, 5.0, "brazilsouth"));
        let rule = rt
            .compile(
                "spend(\"1h\") > 70.0 && new_region() && distinct_regions(\"24h\") == 2",
                Scope::Usage,
            )
            .unwrap();
        let mut s = sample_subject(Scope::Usage);
        s.at = 121 * 60_000_000;
        s.region = Arc::from("brazilsouth");
        let out = rt.evaluate(&rule, &s, &mut h).unwrap();
        assert!(out.hit, "{out:?}");
        assert_eq!(
            out.calls[0],
            ("spend(\"1h\")".to_owned(), serde_json::json!(75.0))
        );
        assert_eq!(h.len(), 5, "the history is given back");
        // An hour later the window has moved on.
        s.at = 240 * 60_000_000;
        assert!(!rt.evaluate(&rule, &s, &mut h).unwrap().hit);
    }

    #[test]
    fn baseline_ratio_compares_with_the_week_before() {
        let rt = RuleRuntime::default();
        let mut h = History::default();
        // 1.0 per hour for a week, then 50 in the last hour.
        for hour in 0..168 {
            h.push(rec(hour * 60, 1.0, "x"));
        }
        h.push(rec(168 * 60 + 30, 50.0, "x"));
        let rule = rt
            .compile("baseline_ratio(\"1h\") > 10.0", Scope::Usage)
            .unwrap();
        let mut s = sample_subject(Scope::Usage);
        s.at = (168 * 60 + 30) * 60_000_000;
        let out = rt.evaluate(&rule, &s, &mut h).unwrap();
        assert!(out.hit, "{out:?}");
    }

    /// The native evaluator agrees with the interpreter on every condition, subject and
    /// history below (it may leave a case to the interpreter, never answer differently).
    #[test]
    fn native_and_interpreter_agree() {
        let rt = RuleRuntime::default();
        let conditions = [
            "event.operation == 'vm_created' && ops('quota_increase', '24h') >= 1 && ops('vm_created', '1h') >= 10",
            "event.meter_category == 'Bandwidth' && spend_in('Bandwidth', '1h') > 50.0 && baseline_ratio('1h') > 10.0",
            "event.operation == 'sign_in_failure' && failed_ops('sign_in_failure', '10m') >= 2",
            "customer.age_days < 60 && event.operation in ['owner_changed', 'admin_changed', 'user_added']",
            "customer.age_days < 30 && distinct_regions('24h') >= 2",
            "customer.credit_limit > 0.0 && spend('30d') > 1.5 * customer.credit_limit",
            "!customer.paid && customer.age_days < 45 && spend('30d') > 10.0",
            "spend('1h') > 30.0 && new_region() == false",
            "new_sku() || events('10m') > 3",
            "event.meter_name.contains('A100') && spend('1h') > 1.0",
            "event.meter_name.startsWith('NC') ? spend('1h') > 1.0 : false",
            "event.cost > 1",
            "event.cost * 2.0 - 1.0 >= 1.0 && -event.cost < 0.0",
            "event.missing_field > 1.0",
            "customer.age_days / 0 == 1",
            "event.cost > 0.5 || customer.nope == 1",
            "customer.nope == 1 || event.cost > 0.5",
            "event.region != 'westeurope' && distinct_actors('24h') > 1",
            "event.quantity in [1.0, 2.0] && event.unit == 'Hours'",
            "customer.age_days in [10, 'x']",
            "event.hour >= 9 && event.hour <= 17 && event.weekday < 6",
        ];
        let mut histories = Vec::new();
        let mut h = History::default();
        histories.push((h.clone(), 0i64));
        for (m, c, r) in [
            (0, 10.0, "westeurope"),
            (30, 20.0, "eastus"),
            (59, 40.0, "westeurope"),
        ] {
            h.push(rec(m, c, r));
        }
        histories.push((h.clone(), 59 * 60_000_000));
        let mut subjects = Vec::new();
        for (cost, age, paid) in [(1.0, 10, false), (0.25, 90, true), (500.0, 5, false)] {
            let sample = sample_subject(Scope::Usage);
            subjects.push(Subject::new(
                serde_json::json!({
                    "type": "usage", "meter_category": "Bandwidth", "meter_name": "NC24ads A100 v4",
                    "region": "eastus", "quantity": 1.0, "unit": "Hours", "cost": cost, "operation": "vm_created",
                    "hour": 12, "weekday": 3,
                }),
                serde_json::json!({"age_days": age, "credit_limit": 100.0, "paid": paid}),
                sample.at,
                sample.region.clone(),
                sample.sku.clone(),
            ));
        }
        let mut native_decided = 0;
        for c in conditions {
            // Conditions that fail validation (a missing field on the sample) are built by
            // hand: the native path must still defer their errors to the interpreter.
            let program = Program::compile(c).unwrap();
            let with_native = Compiled {
                native: super::super::native::compile(&program.expression().expr),
                program,
                source: c.to_owned(),
                scope: Scope::Usage,
                uses_event: true,
                uses_customer: true,
            };
            assert_eq!(
                rt.compile(c, Scope::Usage)
                    .map(|x| x.native.is_some())
                    .unwrap_or(true),
                with_native.native.is_some()
            );
            let interpreter_only = Compiled {
                program: Program::compile(c).unwrap(),
                source: c.to_owned(),
                scope: Scope::Usage,
                uses_event: true,
                uses_customer: true,
                native: None,
            };
            for (hist, at) in &histories {
                for subject in &subjects {
                    let s = Subject::new(
                        subject.event().clone(),
                        subject.customer.clone(),
                        *at,
                        subject.region.clone(),
                        subject.sku.clone(),
                    );
                    let a = rt.evaluate(&with_native, &s, &mut hist.clone());
                    let b = rt.evaluate(&interpreter_only, &s, &mut hist.clone());
                    assert_eq!(a, b, "{c} at {at}");
                    if with_native.native.as_ref().is_some_and(|n| {
                        let ctx = super::super::native::Ctx {
                            event: s.event_view(),
                            customer: &s.customer,
                            history: hist,
                            at: *at,
                            region: &s.region,
                            sku: &s.sku,
                        };
                        super::super::native::eval_bool(n, &ctx).is_ok()
                    }) {
                        native_decided += 1;
                    }
                }
            }
        }
        // Most of these are decided natively (the point of it).
        assert!(native_decided > 60, "{native_decided}");
    }
}
