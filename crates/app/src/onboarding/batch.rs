//! Offline batch assessment (`riskdesk signups assess FILE.jsonl`): the same validation and
//! the same pure assessment as the API, velocity counted in memory across the batch, nothing
//! stored. One JSON line out per line in.

use std::io::{BufRead, Write};

use riskdesk_domain::onboarding::assess::{SignupFacts, assess, velocity_keys};
use riskdesk_domain::onboarding::velocity::SlidingCounter;
use serde::Serialize;

use crate::onboarding::StoredOutcome;
use crate::onboarding::request::parse_request_bytes;
use crate::onboarding::risk::RiskEngine;

#[derive(Serialize)]
struct LineOut<'a> {
    /// 1-based line number in the input.
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    assessment: Option<StoredOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a serde_json::Value>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchSummary {
    pub lines: usize,
    pub approve: usize,
    pub review: usize,
    pub reject: usize,
    pub invalid: usize,
}

/// Assesses every line of `input`, writing one JSON line per input line to `out`. `progress`
/// is called after each line with the count so far; `problem` renders an invalid line's error
/// (the CLI gives it the API's problem document, so a line reads as the API would answer it).
pub fn assess_lines(
    engine: &RiskEngine,
    input: impl BufRead,
    mut out: impl Write,
    now: jiff::Timestamp,
    mut progress: impl FnMut(usize),
    problem_of: impl Fn(crate::kernel::error::AppError) -> serde_json::Value,
) -> std::io::Result<BatchSummary> {
    let mut counter = SlidingCounter::default();
    let mut s = BatchSummary::default();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        s.lines += 1;
        let problem;
        let rec = match parse_request_bytes(line.as_bytes(), now) {
            Ok((signup, _)) => {
                let keys = velocity_keys(&signup, &engine.data.email_lists);
                let velocity = engine
                    .policy
                    .velocity
                    .iter()
                    .filter_map(|(kind, window, max)| {
                        keys.iter().find(|(k, _)| k == kind).map(|(k, v)| {
                            (
                                *k,
                                v.clone(),
                                counter.record(*k, v, signup.as_of, *window, max.saturating_add(1)),
                            )
                        })
                    })
                    .collect();
                let a = assess(
                    &signup,
                    &SignupFacts {
                        velocity,
                        fraud_links: vec![],
                        ..Default::default()
                    },
                    &engine.data,
                    &engine.policy,
                );
                match a.decision {
                    riskdesk_domain::onboarding::Decision::Approve => s.approve += 1,
                    riskdesk_domain::onboarding::Decision::Review => s.review += 1,
                    riskdesk_domain::onboarding::Decision::Reject => s.reject += 1,
                }
                LineOut {
                    line: i + 1,
                    assessment: Some(StoredOutcome::from(&a)),
                    error: None,
                }
            }
            Err(e) => {
                s.invalid += 1;
                problem = problem_of(e);
                LineOut {
                    line: i + 1,
                    assessment: None,
                    error: Some(&problem),
                }
            }
        };
        serde_json::to_writer(&mut out, &rec)?;
        out.write_all(b"\n")?;
        progress(s.lines);
    }
    out.flush()?;
    Ok(s)
}
