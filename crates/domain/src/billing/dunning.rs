//! The dunning ladder as pure functions (after Kill Bill's overdue states and Lago's dunning
//! campaigns; <https://docs.killbill.io/latest/overdue.html>, <https://getlago.com/docs>).
//!
//! Every unpaid invoice has its own position on the ladder, anchored on its own due date, so
//! paying the oldest invoice never shifts a newer one's clock (Kill Bill #2297). A run on any day
//! walks each invoice through every step it has reached, in order: a run after downtime sends
//! each skipped notice, and a step that pulls a lever waits until the notice before it has been
//! out for `min_notice_days` — so no lever ever fires before its warning. Levers are not events
//! but a *desired state* derived from the steps reached by the invoices still unpaid: when those
//! are paid, the desired state is empty and the caller undoes what dunning did.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Day;
use crate::cloud::CloudInstance;
use crate::lifecycle::LifecycleAction;
use crate::money::{Currency, Money};
use crate::values::ValueError;

/// What a step does besides sending its notice, from mildest to most severe.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Lever {
    None,
    /// Refuse new subscriptions; what runs keeps running.
    BlockNewPurchases,
    /// The customer loses access; nothing is cancelled.
    DisableAccess,
    Suspend,
    Cancel,
}

impl Lever {
    pub fn as_str(self) -> &'static str {
        match self {
            Lever::None => "none",
            Lever::BlockNewPurchases => "block_new_purchases",
            Lever::DisableAccess => "disable_access",
            Lever::Suspend => "suspend",
            Lever::Cancel => "cancel",
        }
    }

    /// The lifecycle action that applies this lever to a subscription (none for the
    /// account-level levers).
    pub fn action(self) -> Option<LifecycleAction> {
        match self {
            Lever::DisableAccess => Some(LifecycleAction::DisableAccess),
            Lever::Suspend => Some(LifecycleAction::Suspend),
            Lever::Cancel => Some(LifecycleAction::Cancel),
            Lever::None | Lever::BlockNewPurchases => None,
        }
    }

    /// The strongest form of this lever the cloud instance has. Where cancelling is not
    /// possible (21Vianet), the ladder ends at blocked access: suspend and cancel become
    /// disable_access there.
    pub fn on(self, instance: CloudInstance) -> Lever {
        if !instance.allows(LifecycleAction::Cancel) && self > Lever::DisableAccess {
            Lever::DisableAccess
        } else {
            self
        }
    }
}

/// Which subscriptions a lever reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every subscription of the customer.
    Account,
    /// The subscriptions the invoice names (the whole account if it names none).
    InvoiceSubscriptions,
}

/// One rung of the ladder, as configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Stable name, e.g. "warning"; a step is sent once per invoice under this name.
    pub name: String,
    /// Days from the invoice's due date (negative: before it).
    pub offset_days: i32,
    /// The notice template sent to the customer, e.g. "final_warning".
    pub notice: String,
    #[serde(default = "no_lever")]
    pub lever: Lever,
    #[serde(default = "account_scope")]
    pub scope: Scope,
}

fn no_lever() -> Lever {
    Lever::None
}
fn account_scope() -> Scope {
    Scope::Account
}

/// The notice templates riskdesk ships (in every language).
pub const NOTICES: &[&str] = &[
    "invoice_due_soon",
    "payment_overdue",
    "final_warning",
    "purchases_blocked",
    "access_disabled",
    "service_suspended",
    "service_cancelled",
];

/// A dunning policy as stored and sent (`PUT /v1/dunning/policy`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub steps: Vec<Step>,
    /// A step with a lever waits until the notice before it has been out this many days.
    #[serde(default = "default_min_notice")]
    pub min_notice_days: u32,
    /// Invoices whose open amount is below this (in the invoice's currency, decimal string)
    /// take no further steps and pull no lever.
    #[serde(default = "default_min_overdue")]
    pub min_overdue_amount: String,
    /// Levers on subscriptions (blocked access, suspension, cancellation) wait for an analyst:
    /// the run proposes them as actions in the customer's case instead of applying them.
    /// Blocking new purchases is never held back.
    #[serde(default)]
    pub levers_need_approval: bool,
}

fn default_min_notice() -> u32 {
    5
}
fn default_min_overdue() -> String {
    "0".into()
}

impl Default for Policy {
    /// The standard ladder: a reminder 3 days before the due date, a notice the day after, a
    /// warning (and no new purchases) after a week, blocked access after 15 days, suspension
    /// after 30, cancellation after 60.
    fn default() -> Self {
        let step = |name: &str, offset_days, notice: &str, lever| Step {
            name: name.into(),
            offset_days,
            notice: notice.into(),
            lever,
            scope: Scope::Account,
        };
        Policy {
            steps: vec![
                step("reminder", -3, "invoice_due_soon", Lever::None),
                step("overdue", 1, "payment_overdue", Lever::None),
                step("warning", 7, "final_warning", Lever::BlockNewPurchases),
                step(
                    "access_disabled",
                    15,
                    "access_disabled",
                    Lever::DisableAccess,
                ),
                step("suspended", 30, "service_suspended", Lever::Suspend),
                step("cancelled", 60, "service_cancelled", Lever::Cancel),
            ],
            min_notice_days: 5,
            min_overdue_amount: "0".into(),
            levers_need_approval: false,
        }
    }
}

impl Policy {
    /// Every problem with the policy, each naming its field.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.steps.is_empty() {
            out.push(("steps".into(), "give at least one step".into()));
        }
        if self.steps.len() > 20 {
            out.push(("steps".into(), "at most 20 steps".into()));
        }
        let mut names = BTreeSet::new();
        for (i, s) in self.steps.iter().enumerate() {
            let f = |x: &str| format!("steps[{i}].{x}");
            if s.name.is_empty()
                || s.name.len() > 40
                || !s
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                out.push((
                    f("name"),
                    format!("'{}' is not a step name (a-z, 0-9, _; 1–40)", s.name),
                ));
            }
            if !names.insert(s.name.as_str()) {
                out.push((
                    f("name"),
                    format!("'{}' is used by an earlier step", s.name),
                ));
            }
            if !NOTICES.contains(&s.notice.as_str()) {
                out.push((
                    f("notice"),
                    format!(
                        "'{}' is not a notice; known: {}",
                        s.notice,
                        NOTICES.join(", ")
                    ),
                ));
            }
            if !(-90..=365).contains(&s.offset_days) {
                out.push((f("offset_days"), "must be between -90 and 365".into()));
            }
            if i > 0 && s.offset_days <= self.steps[i - 1].offset_days {
                out.push((
                    f("offset_days"),
                    "steps must come in strictly increasing offset order".into(),
                ));
            }
            if i == 0 && s.lever != Lever::None {
                out.push((
                    f("lever"),
                    "the first step only notifies: a lever needs a notice before it".into(),
                ));
            }
        }
        if self.min_notice_days > 60 {
            out.push(("min_notice_days".into(), "at most 60".into()));
        }
        let m = self.min_overdue_amount.trim();
        let (int, frac) = m.split_once('.').unwrap_or((m, ""));
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            out.push((
                "min_overdue_amount".into(),
                format!("'{m}' is not a non-negative decimal amount"),
            ));
        }
        out
    }

    /// The minimum overdue amount in `currency`'s minor units (0 if it has too many decimals
    /// for that currency's minor unit, rounded down).
    pub fn min_overdue_minor(&self, currency: Currency) -> i64 {
        let m = self.min_overdue_amount.trim();
        let exp = currency.exponent() as usize;
        let (int, frac) = m.split_once('.').unwrap_or((m, ""));
        let frac: String = frac.chars().take(exp).collect();
        Money::parse(
            &if frac.is_empty() {
                int.to_owned()
            } else {
                format!("{int}.{frac}")
            },
            currency,
        )
        .map(|x| x.minor)
        .unwrap_or(0)
    }

    pub fn step(&self, name: &str) -> Option<(usize, &Step)> {
        self.steps.iter().enumerate().find(|(_, s)| s.name == name)
    }
}

/// One unpaid invoice as the ladder sees it.
#[derive(Clone, Debug)]
pub struct Receivable<S> {
    pub due_day: Day,
    pub open_minor: i64,
    pub currency: Currency,
    /// Disputed, or on manual hold: no steps, no levers.
    pub paused: bool,
    /// Steps already sent for it: name → day sent.
    pub done: BTreeMap<String, Day>,
    /// The subscriptions it bills (may be empty).
    pub subscriptions: Vec<S>,
}

/// What the ladder decides for one invoice on a day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Steps to send today, in ladder order.
    pub fire: Vec<usize>,
    /// When the invoice next needs looking at (None: no step left, or nothing can happen).
    pub next_check: Option<Day>,
}

impl<S> Receivable<S> {
    fn active(&self, policy: &Policy) -> bool {
        !self.paused
            && self.open_minor > 0
            && self.open_minor >= policy.min_overdue_minor(self.currency)
    }
}

/// The steps an invoice reaches on `as_of`, walking the ladder in order from its last sent step.
pub fn progress<S>(policy: &Policy, r: &Receivable<S>, as_of: Day) -> Progress {
    if !r.active(policy) {
        return Progress {
            fire: vec![],
            next_check: None,
        };
    }
    let mut fire = Vec::new();
    // The day the most recent notice went out (or goes out in this run).
    let mut last_notice: Option<Day> = None;
    for (i, step) in policy.steps.iter().enumerate() {
        if let Some(d) = r.done.get(&step.name) {
            last_notice = Some(last_notice.map_or(*d, |l| l.max(*d)));
            continue;
        }
        let mut earliest = r.due_day.plus(step.offset_days);
        if step.lever != Lever::None
            && let Some(l) = last_notice
        {
            earliest = earliest.max(l.plus(policy.min_notice_days as i32));
        }
        if earliest <= as_of {
            fire.push(i);
            last_notice = Some(as_of);
            continue;
        }
        return Progress {
            fire,
            next_check: Some(earliest),
        };
    }
    Progress {
        fire,
        next_check: None,
    }
}

/// The state dunning wants the account in, given what every unpaid invoice has reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired<S: Ord> {
    pub block_new_purchases: bool,
    /// The lever for every subscription of the account.
    pub account: Option<Lever>,
    /// Levers for named subscriptions (on top of `account`).
    pub subscriptions: BTreeMap<S, Lever>,
}

impl<S: Ord + Clone> Desired<S> {
    /// The lever a subscription should be under (None: dunning wants nothing of it).
    pub fn lever_for(&self, sub: &S) -> Option<Lever> {
        let own = self.subscriptions.get(sub).copied();
        match (self.account, own) {
            (Some(a), Some(o)) => Some(a.max(o)),
            (a, o) => a.or(o),
        }
        .filter(|l| l.action().is_some())
    }

    pub fn is_clear(&self) -> bool {
        !self.block_new_purchases
            && self.account.is_none_or(|l| l.action().is_none())
            && self.subscriptions.values().all(|l| l.action().is_none())
    }
}

/// The levers of every step the active invoices have been sent (including the steps about to
/// be sent, passed in `done`). Paused and settled invoices pull nothing.
pub fn desired<S: Ord + Clone>(policy: &Policy, receivables: &[Receivable<S>]) -> Desired<S> {
    let mut d = Desired {
        block_new_purchases: false,
        account: None,
        subscriptions: BTreeMap::new(),
    };
    for r in receivables.iter().filter(|r| r.active(policy)) {
        for step in policy.steps.iter().filter(|s| r.done.contains_key(&s.name)) {
            if step.lever == Lever::None {
                continue;
            }
            // Any lever at or above "block new purchases" also blocks new purchases.
            d.block_new_purchases = true;
            if step.lever.action().is_none() {
                continue;
            }
            if step.scope == Scope::InvoiceSubscriptions && !r.subscriptions.is_empty() {
                for s in &r.subscriptions {
                    let e = d.subscriptions.entry(s.clone()).or_insert(step.lever);
                    *e = (*e).max(step.lever);
                }
            } else {
                d.account = Some(d.account.map_or(step.lever, |a| a.max(step.lever)));
            }
        }
    }
    d
}

/// Parses a policy document, listing every problem.
pub fn parse_policy(json: &str) -> Result<Policy, ValueError> {
    let p: Policy = serde_json::from_str(json)
        .map_err(|e| ValueError(format!("the dunning policy is not valid: {e}")))?;
    let problems = p.problems();
    if problems.is_empty() {
        Ok(p)
    } else {
        Err(ValueError(
            problems
                .into_iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn inv(due: &str, open: i64) -> Receivable<u32> {
        Receivable {
            due_day: Day::parse(due).unwrap(),
            open_minor: open,
            currency: usd(),
            paused: false,
            done: BTreeMap::new(),
            subscriptions: vec![],
        }
    }

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    fn names(p: &Policy, idx: &[usize]) -> Vec<String> {
        idx.iter().map(|i| p.steps[*i].name.clone()).collect()
    }

    /// Runs the ladder on each of `days`, recording what was sent and when.
    fn run(p: &Policy, r: &mut Receivable<u32>, days: &[Day]) -> Vec<(String, Day)> {
        let mut sent = vec![];
        for d in days {
            for i in progress(p, r, *d).fire {
                r.done.insert(p.steps[i].name.clone(), *d);
                sent.push((p.steps[i].name.clone(), *d));
            }
        }
        sent
    }

    #[test]
    fn the_default_policy_is_valid_and_round_trips() {
        let p = Policy::default();
        assert!(p.problems().is_empty(), "{:?}", p.problems());
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(parse_policy(&json).unwrap(), p);
    }

    #[test]
    fn a_bad_policy_names_every_problem() {
        let mut p = Policy::default();
        p.steps[1].offset_days = -5;
        p.steps[2].notice = "shout".into();
        p.steps[3].name = "warning".into();
        p.steps[0].lever = Lever::Suspend;
        p.min_overdue_amount = "-1".into();
        let fields: Vec<String> = p.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "steps[0].lever",
                "steps[1].offset_days",
                "steps[2].notice",
                "steps[3].name",
                "min_overdue_amount"
            ]
        );
    }

    #[test]
    fn daily_runs_send_each_step_on_its_day() {
        let p = Policy::default();
        let mut r = inv("2026-11-10", 10_000);
        let days: Vec<Day> = (0..80).map(|i| day("2026-11-01").plus(i)).collect();
        let sent = run(&p, &mut r, &days);
        let got: Vec<(&str, String)> = sent
            .iter()
            .map(|(n, d)| (n.as_str(), d.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("reminder", "2026-11-07".to_owned()),
                ("overdue", "2026-11-11".to_owned()),
                ("warning", "2026-11-17".to_owned()),
                ("access_disabled", "2026-11-25".to_owned()),
                ("suspended", "2026-12-10".to_owned()),
                ("cancelled", "2027-01-09".to_owned()),
            ]
        );
    }

    #[test]
    fn a_late_run_sends_every_skipped_notice_and_holds_the_lever_until_the_warning_has_been_out() {
        let p = Policy::default();
        let mut r = inv("2026-11-10", 10_000);
        // Nothing ran until 40 days past due.
        let first = progress(&p, &r, day("2026-12-20"));
        assert_eq!(names(&p, &first.fire), ["reminder", "overdue"]);
        // The warning (it blocks purchases) waits for the overdue notice to be 5 days old.
        assert_eq!(first.next_check, Some(day("2026-12-25")));
        let days: Vec<Day> = (0..60).map(|i| day("2026-12-20").plus(i)).collect();
        let sent = run(&p, &mut r, &days);
        let order: Vec<&str> = sent.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            order,
            [
                "reminder",
                "overdue",
                "warning",
                "access_disabled",
                "suspended",
                "cancelled"
            ]
        );
        for w in sent.windows(2) {
            if p.step(&w[1].0).unwrap().1.lever != Lever::None {
                assert!(w[1].1.0 - w[0].1.0 >= 5, "{w:?}");
            }
        }
    }

    #[test]
    fn any_run_schedule_sends_the_same_notices_in_the_same_order_as_daily_runs() {
        let p = Policy::default();
        let daily = {
            let mut r = inv("2026-11-10", 1);
            let days: Vec<Day> = (0..200).map(|i| day("2026-10-01").plus(i)).collect();
            run(&p, &mut r, &days)
        };
        // Runs every k days from several starting offsets (a deterministic sweep of schedules).
        for k in 1..=23 {
            for start in 0..k {
                let mut r = inv("2026-11-10", 1);
                let days: Vec<Day> = (0..400)
                    .map(|i| day("2026-10-01").plus(start + i * k))
                    .collect();
                let sent = run(&p, &mut r, &days);
                let a: Vec<&String> = sent.iter().map(|x| &x.0).collect();
                let b: Vec<&String> = daily.iter().map(|x| &x.0).collect();
                assert_eq!(a, b, "every {k} days from +{start}");
                // No lever before its notice, and never earlier than daily runs would.
                for (w, d) in sent.windows(2).zip(daily.iter().skip(1)) {
                    assert!(w[1].1 >= d.1);
                    if p.step(&w[1].0).unwrap().1.lever != Lever::None {
                        assert!(w[1].1.0 - w[0].1.0 >= p.min_notice_days as i32);
                    }
                }
            }
        }
    }

    #[test]
    fn paid_paused_and_small_invoices_take_no_step() {
        let mut p = Policy::default();
        assert!(
            progress(&p, &inv("2026-11-10", 0), day("2026-12-30"))
                .fire
                .is_empty()
        );
        let mut paused = inv("2026-11-10", 500);
        paused.paused = true;
        assert!(progress(&p, &paused, day("2026-12-30")).fire.is_empty());
        p.min_overdue_amount = "5.01".into();
        assert!(
            progress(&p, &inv("2026-11-10", 500), day("2026-12-30"))
                .fire
                .is_empty()
        );
        assert!(
            !progress(&p, &inv("2026-11-10", 501), day("2026-12-30"))
                .fire
                .is_empty()
        );
    }

    #[test]
    fn levers_come_from_unpaid_invoices_only_and_take_the_most_severe() {
        let p = Policy::default();
        let mut a = inv("2026-10-01", 100);
        for s in [
            "reminder",
            "overdue",
            "warning",
            "access_disabled",
            "suspended",
        ] {
            a.done.insert(s.into(), day("2026-10-01"));
        }
        let mut b = inv("2026-11-01", 100);
        for s in ["reminder", "overdue", "warning"] {
            b.done.insert(s.into(), day("2026-11-01"));
        }
        let d = desired(&p, &[a.clone(), b.clone()]);
        assert!(d.block_new_purchases);
        assert_eq!(d.account, Some(Lever::Suspend));
        assert_eq!(d.lever_for(&7), Some(Lever::Suspend));
        // The older invoice is paid: the newer one only blocks purchases.
        a.open_minor = 0;
        let d = desired(&p, &[a.clone(), b.clone()]);
        assert!(d.block_new_purchases);
        assert_eq!(d.lever_for(&7), None);
        b.open_minor = 0;
        assert!(desired(&p, &[a, b]).is_clear());
    }

    #[test]
    fn invoice_scope_reaches_only_its_subscriptions() {
        let mut p = Policy::default();
        p.steps[3].scope = Scope::InvoiceSubscriptions;
        let mut a = inv("2026-10-01", 100);
        a.subscriptions = vec![1];
        for s in ["reminder", "overdue", "warning", "access_disabled"] {
            a.done.insert(s.into(), day("2026-10-01"));
        }
        let d = desired(&p, &[a]);
        assert_eq!(d.lever_for(&1), Some(Lever::DisableAccess));
        assert_eq!(d.lever_for(&2), None);
    }

    #[test]
    fn twenty_one_vianet_ends_at_blocked_access() {
        assert_eq!(
            Lever::Cancel.on(CloudInstance::China21vianet),
            Lever::DisableAccess
        );
        assert_eq!(
            Lever::Suspend.on(CloudInstance::China21vianet),
            Lever::DisableAccess
        );
        assert_eq!(Lever::Cancel.on(CloudInstance::Global), Lever::Cancel);
        assert_eq!(
            Lever::BlockNewPurchases.on(CloudInstance::China21vianet),
            Lever::BlockNewPurchases
        );
    }
}
