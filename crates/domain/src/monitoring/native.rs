//! A native evaluator for the common shapes of rule conditions: comparisons, `&&`/`||`/`!`,
//! arithmetic, `in` a literal list, string `contains`/`startsWith`/`endsWith`, one-level field
//! access on `event` and `customer`, and the window functions with literal arguments.
//!
//! It exists for speed: the CEL interpreter converts and allocates on every call, and a rule
//! set runs on every ingested event. It never decides alone when unsure: any case it does not
//! model exactly (mixed numeric types, a missing field, an overflow, an unknown window) returns
//! [`Undecided`] and the caller runs the CEL interpreter, the source of truth, on that event.
//! A hit is always re-run by the interpreter to record its evidence, so only "false" is ever
//! decided here alone.

use std::sync::Arc;

use std::borrow::Cow;

use cel::common::ast::{Expr, LiteralValue};

use super::rules::{History, window_micros};

/// The native evaluator could not decide exactly: run the interpreter.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Undecided;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum V<'a> {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Null,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Root {
    Event,
    Customer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StrOp {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Win {
    Spend(i64),
    SpendIn(Arc<str>, i64),
    Events(i64),
    Ops(Arc<str>, i64),
    FailedOps(Arc<str>, i64),
    DistinctRegions(i64),
    DistinctActors(i64),
    BaselineRatio(i64),
    NewRegion,
    NewSku,
}

/// A compiled condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Lit(V<'static>),
    Field(Root, Arc<str>),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Bin(Op, Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    In(Box<Node>, Vec<Node>),
    Str(StrOp, Box<Node>, Box<Node>),
    Win(Win),
}

/// What a condition reads.
pub(crate) struct Ctx<'a> {
    pub(crate) event: &'a dyn super::rules::EventView,
    pub customer: &'a serde_json::Value,
    pub history: &'a History,
    pub at: i64,
    pub region: &'a str,
    pub sku: &'a str,
}

fn lit_str(e: &Expr) -> Option<Arc<str>> {
    match e {
        Expr::Literal(LiteralValue::String(s)) => Some(Arc::from(s.inner())),
        _ => None,
    }
}

/// Compiles the supported subset; None for anything else (the interpreter runs it).
pub(crate) fn compile(e: &Expr) -> Option<Node> {
    Some(match e {
        Expr::Literal(l) => Node::Lit(match l {
            LiteralValue::Boolean(b) => V::Bool(*b.inner()),
            LiteralValue::Int(i) => V::Int(*i.inner()),
            LiteralValue::UInt(u) => V::UInt(*u.inner()),
            LiteralValue::Double(d) => V::Float(*d.inner()),
            LiteralValue::String(s) => V::Str(Cow::Owned(s.inner().to_owned())),
            LiteralValue::Null => V::Null,
            LiteralValue::Bytes(_) => return None,
        }),
        Expr::Select(s) if !s.test => match &s.operand.expr {
            Expr::Ident(r) if r == "event" => Node::Field(Root::Event, Arc::from(s.field.as_str())),
            Expr::Ident(r) if r == "customer" => {
                Node::Field(Root::Customer, Arc::from(s.field.as_str()))
            }
            _ => return None,
        },
        Expr::Call(c) => {
            let arg = |i: usize| c.args.get(i).and_then(|a| compile(&a.expr)).map(Box::new);
            let win_arg = |i: usize| {
                c.args
                    .get(i)
                    .and_then(|a| lit_str(&a.expr))
                    .and_then(|w| window_micros(&w))
            };
            let name = c.func_name.as_str();
            match (name, c.target.as_ref(), c.args.len()) {
                ("_&&_", None, 2) => Node::And(arg(0)?, arg(1)?),
                ("_||_", None, 2) => Node::Or(arg(0)?, arg(1)?),
                ("!_", None, 1) => Node::Not(arg(0)?),
                ("-_", None, 1) => Node::Neg(arg(0)?),
                ("_?_:_", None, 3) => Node::Cond(arg(0)?, arg(1)?, arg(2)?),
                ("@in", None, 2) => match &c.args[1].expr {
                    Expr::List(l) if l.optional_indices.is_empty() => Node::In(
                        arg(0)?,
                        l.elements
                            .iter()
                            .map(|x| compile(&x.expr))
                            .collect::<Option<Vec<_>>>()?,
                    ),
                    _ => return None,
                },
                (op, None, 2) => {
                    let op = match op {
                        "_==_" => Op::Eq,
                        "_!=_" => Op::Ne,
                        "_<_" => Op::Lt,
                        "_<=_" => Op::Le,
                        "_>_" => Op::Gt,
                        "_>=_" => Op::Ge,
                        "_+_" => Op::Add,
                        "_-_" => Op::Sub,
                        "_*_" => Op::Mul,
                        "_/_" => Op::Div,
                        "spend_in" => {
                            return Some(Node::Win(Win::SpendIn(
                                lit_str(&c.args[0].expr)?,
                                win_arg(1)?,
                            )));
                        }
                        "ops" => {
                            return Some(Node::Win(Win::Ops(
                                lit_str(&c.args[0].expr)?,
                                win_arg(1)?,
                            )));
                        }
                        "failed_ops" => {
                            return Some(Node::Win(Win::FailedOps(
                                lit_str(&c.args[0].expr)?,
                                win_arg(1)?,
                            )));
                        }
                        _ => return None,
                    };
                    Node::Bin(op, arg(0)?, arg(1)?)
                }
                (s @ ("contains" | "startsWith" | "endsWith"), Some(t), 1) => Node::Str(
                    match s {
                        "contains" => StrOp::Contains,
                        "startsWith" => StrOp::StartsWith,
                        _ => StrOp::EndsWith,
                    },
                    Box::new(compile(&t.expr)?),
                    arg(0)?,
                ),
                ("spend", None, 1) => Node::Win(Win::Spend(win_arg(0)?)),
                ("events", None, 1) => Node::Win(Win::Events(win_arg(0)?)),
                ("distinct_regions", None, 1) => Node::Win(Win::DistinctRegions(win_arg(0)?)),
                ("distinct_actors", None, 1) => Node::Win(Win::DistinctActors(win_arg(0)?)),
                ("baseline_ratio", None, 1) => Node::Win(Win::BaselineRatio(win_arg(0)?)),
                ("new_region", None, 0) => Node::Win(Win::NewRegion),
                ("new_sku", None, 0) => Node::Win(Win::NewSku),
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// How far back (µs) before an event the condition's window functions read: the longest window,
/// the whole history for `baseline_ratio` (it compares with what came before the window, as far
/// back as the history goes), 30 days for `new_region`/`new_sku`.
pub(crate) fn reach(n: &Node) -> i64 {
    const MONTH: i64 = 30 * 24 * 3_600_000_000;
    match n {
        Node::Lit(_) | Node::Field(..) => 0,
        Node::Not(x) | Node::Neg(x) => reach(x),
        Node::And(a, b) | Node::Or(a, b) | Node::Bin(_, a, b) | Node::Str(_, a, b) => {
            reach(a).max(reach(b))
        }
        Node::Cond(a, b, c) => reach(a).max(reach(b)).max(reach(c)),
        Node::In(x, list) => list.iter().map(reach).fold(reach(x), i64::max),
        Node::Win(w) => match w {
            Win::Spend(win)
            | Win::SpendIn(_, win)
            | Win::Events(win)
            | Win::Ops(_, win)
            | Win::FailedOps(_, win)
            | Win::DistinctRegions(win)
            | Win::DistinctActors(win) => *win,
            Win::BaselineRatio(_) => super::rules::HISTORY_MICROS,
            Win::NewRegion | Win::NewSku => MONTH,
        },
    }
}

/// A field as `json_to_cel` would convert it: integers stay ints, other numbers are doubles.
fn field<'a>(root: &'a dyn super::rules::EventView, name: &str) -> Result<V<'a>, Undecided> {
    use super::rules::FieldValue;
    Ok(match root.field(name).ok_or(Undecided)? {
        FieldValue::Bool(b) => V::Bool(b),
        FieldValue::Int(i) => V::Int(i),
        FieldValue::Double(f) => V::Float(f),
        FieldValue::Str(s) => V::Str(Cow::Borrowed(s)),
        FieldValue::Null => V::Null,
    })
}

/// Runs a compiled condition: Ok(true/false), or Undecided.
pub(crate) fn eval_bool<'a>(n: &'a Node, c: &Ctx<'a>) -> Result<bool, Undecided> {
    match eval(n, c)? {
        V::Bool(b) => Ok(b),
        _ => Err(Undecided),
    }
}

fn eval<'a>(n: &'a Node, c: &Ctx<'a>) -> Result<V<'a>, Undecided> {
    Ok(match n {
        Node::Lit(v) => v.clone(),
        Node::Field(Root::Event, f) => field(c.event, f)?,
        Node::Field(Root::Customer, f) => field(c.customer, f)?,
        Node::Not(x) => V::Bool(!eval_bool(x, c)?),
        Node::Neg(x) => match eval(x, c)? {
            V::Int(i) => V::Int(i.checked_neg().ok_or(Undecided)?),
            V::Float(f) => V::Float(-f),
            _ => return Err(Undecided),
        },
        // Short-circuit only on a decided operand; an undecided one is the interpreter's
        // (CEL's && and || absorb errors in either order).
        Node::And(a, b) => {
            if !eval_bool(a, c)? {
                V::Bool(false)
            } else {
                V::Bool(eval_bool(b, c)?)
            }
        }
        Node::Or(a, b) => {
            if eval_bool(a, c)? {
                V::Bool(true)
            } else {
                V::Bool(eval_bool(b, c)?)
            }
        }
        Node::Cond(t, a, b) => {
            if eval_bool(t, c)? {
                eval(a, c)?
            } else {
                eval(b, c)?
            }
        }
        Node::In(x, list) => {
            let x = eval(x, c)?;
            let mut found = false;
            for e in list {
                let e = eval(e, c)?;
                if std::mem::discriminant(&e) != std::mem::discriminant(&x) {
                    return Err(Undecided);
                }
                if e == x {
                    found = true;
                    break;
                }
            }
            V::Bool(found)
        }
        Node::Str(op, t, a) => match (eval(t, c)?, eval(a, c)?) {
            (V::Str(t), V::Str(a)) => V::Bool(match op {
                StrOp::Contains => t.contains(&*a),
                StrOp::StartsWith => t.starts_with(&*a),
                StrOp::EndsWith => t.ends_with(&*a),
            }),
            _ => return Err(Undecided),
        },
        Node::Bin(op, a, b) => bin(*op, eval(a, c)?, eval(b, c)?)?,
        Node::Win(w) => window(w, c),
    })
}

fn bin<'a>(op: Op, a: V<'a>, b: V<'a>) -> Result<V<'a>, Undecided> {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (&a, &b) {
        (V::Int(x), V::Int(y)) => Some(x.cmp(y)),
        (V::UInt(x), V::UInt(y)) => Some(x.cmp(y)),
        (V::Float(x), V::Float(y)) => x.partial_cmp(y),
        (V::Str(x), V::Str(y)) => Some(x.cmp(y)),
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(y)),
        (V::Null, V::Null) => Some(Ordering::Equal),
        // Mixed types: whatever CEL does, the interpreter decides.
        _ => return Err(Undecided),
    };
    let is_num = |v: &V| matches!(v, V::Int(_) | V::UInt(_) | V::Float(_));
    Ok(match op {
        Op::Eq => match (&a, &b) {
            // NaN and float equality: leave to the interpreter.
            (V::Float(_), V::Float(_)) => V::Bool(ord.ok_or(Undecided)? == Ordering::Equal),
            _ => V::Bool(ord == Some(Ordering::Equal)),
        },
        Op::Ne => match (&a, &b) {
            (V::Float(_), V::Float(_)) => V::Bool(ord.ok_or(Undecided)? != Ordering::Equal),
            _ => V::Bool(ord != Some(Ordering::Equal)),
        },
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            if !(is_num(&a) || matches!(a, V::Str(_))) {
                return Err(Undecided);
            }
            let o = ord.ok_or(Undecided)?;
            V::Bool(match op {
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })
        }
        Op::Add | Op::Sub | Op::Mul | Op::Div => match (a, b) {
            (V::Int(x), V::Int(y)) => V::Int(
                match op {
                    Op::Add => x.checked_add(y),
                    Op::Sub => x.checked_sub(y),
                    Op::Mul => x.checked_mul(y),
                    _ => x.checked_div(y),
                }
                .ok_or(Undecided)?,
            ),
            (V::Float(x), V::Float(y)) => V::Float(match op {
                Op::Add => x + y,
                Op::Sub => x - y,
                Op::Mul => x * y,
                _ => x / y,
            }),
            _ => return Err(Undecided),
        },
    })
}

fn window(w: &Win, c: &Ctx<'_>) -> V<'static> {
    let h = c.history;
    match w {
        Win::Spend(win) => V::Float(h.w_spend(c.at, *win, None)),
        Win::SpendIn(cat, win) => V::Float(h.w_spend(c.at, *win, Some(cat))),
        Win::Events(win) => V::Int(h.w_events(c.at, *win)),
        Win::Ops(op, win) => V::Int(h.w_ops(c.at, *win, op, false)),
        Win::FailedOps(op, win) => V::Int(h.w_ops(c.at, *win, op, true)),
        Win::DistinctRegions(win) => V::Int(h.w_distinct_regions(c.at, *win)),
        Win::DistinctActors(win) => V::Int(h.w_distinct_actors(c.at, *win)),
        Win::BaselineRatio(win) => V::Float(h.w_baseline_ratio(c.at, *win).0),
        Win::NewRegion => V::Bool(h.w_new_region(c.at, c.region)),
        Win::NewSku => V::Bool(h.w_new_sku(c.at, c.sku)),
    }
}
