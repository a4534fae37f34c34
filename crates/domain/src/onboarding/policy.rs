//! The partner's onboarding policy: points per reason, thresholds, hard rejects, credit terms
//! by score band, MFA, velocity limits and country overrides. Written in `riskdesk.toml` under
//! `[onboarding]`; every field has a safe default. `Policy::compile` checks it all and reports
//! every problem at once (used by `riskdesk policy check` and at start-up).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::assess::{ReasonCode, VelocityKind};
use crate::money::{Currency, Money};
use crate::values::CountryCode;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CreditBand {
    /// The band applies to scores up to and including this.
    pub max_score: u32,
    /// Decimal string in `credit_currency`.
    pub limit: String,
    pub prepayment_required: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VelocityRule {
    /// ip, ip_subnet, device, card, phone or email_domain.
    pub signal: String,
    pub window_seconds: u64,
    /// More than this many sign-ups with the same value in the window fires the reason.
    pub max: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Points per reason code; codes not named keep their default.
    pub points: BTreeMap<String, u32>,
    pub review_at: u32,
    pub reject_at: u32,
    /// Reasons that reject whatever the score.
    pub hard_reject: Vec<String>,
    pub credit_currency: String,
    /// Ordered by `max_score`; the last must reach 100.
    pub credit_bands: Vec<CreditBand>,
    /// MFA at sign-up is required from this score (0 = always).
    pub mfa_from_score: u32,
    pub velocity: Vec<VelocityRule>,
    /// ISO country → `sanctioned`, `high` or `none` (overrides the FATF lists).
    pub country_overrides: BTreeMap<String, String>,
    /// A verification provider's credit score below this raises `credit_low`.
    pub credit_low_below: u32,
    /// Full admin access needs a verified customer (MFA passed or analyst-approved).
    pub admin_access_requires_verification: bool,
    /// Full admin access needs the first payment received.
    pub admin_access_requires_first_payment: bool,
    /// Full admin access needs this many days since the customer was created.
    pub admin_access_min_days: u32,
    /// MFA one-time codes: validity and attempts.
    pub mfa_code_ttl_seconds: u64,
    pub mfa_max_attempts: u32,
    /// MFA codes sent per phone number, and per sign-up IP, per hour.
    pub mfa_sends_per_phone_per_hour: u32,
    pub mfa_sends_per_ip_per_hour: u32,
}

impl Default for Policy {
    fn default() -> Self {
        let v = |signal: &str, window_seconds: u64, max: u32| VelocityRule {
            signal: signal.into(),
            window_seconds,
            max,
        };
        Policy {
            points: BTreeMap::new(),
            review_at: 30,
            reject_at: 70,
            hard_reject: vec![
                "card_prepaid".into(),
                "country_sanctioned".into(),
                "blocklisted".into(),
            ],
            credit_currency: "USD".into(),
            credit_bands: vec![
                CreditBand {
                    max_score: 9,
                    limit: "5000.00".into(),
                    prepayment_required: false,
                },
                CreditBand {
                    max_score: 29,
                    limit: "1000.00".into(),
                    prepayment_required: false,
                },
                CreditBand {
                    max_score: 69,
                    limit: "0.00".into(),
                    prepayment_required: true,
                },
                CreditBand {
                    max_score: 100,
                    limit: "0.00".into(),
                    prepayment_required: true,
                },
            ],
            mfa_from_score: 0,
            velocity: vec![
                v("ip", 600, 3),
                v("ip_subnet", 3600, 10),
                v("device", 86_400, 2),
                v("card", 86_400, 2),
                v("phone", 86_400, 2),
                v("email_domain", 3600, 5),
            ],
            country_overrides: BTreeMap::new(),
            credit_low_below: 40,
            admin_access_requires_verification: true,
            admin_access_requires_first_payment: true,
            admin_access_min_days: 14,
            mfa_code_ttl_seconds: 600,
            mfa_max_attempts: 5,
            mfa_sends_per_phone_per_hour: 3,
            mfa_sends_per_ip_per_hour: 10,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountryOverride {
    Sanctioned,
    High,
    None,
}

/// A checked policy, ready for the hot path.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    pub points: BTreeMap<ReasonCode, u32>,
    pub review_at: u32,
    pub reject_at: u32,
    pub hard_reject: Vec<ReasonCode>,
    pub credit_bands: Vec<(u32, Money, bool)>,
    pub currency: Currency,
    pub mfa_from_score: u32,
    pub velocity: Vec<(VelocityKind, u64, u32)>,
    pub country_overrides: BTreeMap<CountryCode, CountryOverride>,
    pub credit_low_below: u32,
    pub admin_access_requires_verification: bool,
    pub admin_access_requires_first_payment: bool,
    pub admin_access_min_days: u32,
    pub mfa_code_ttl_seconds: u64,
    pub mfa_max_attempts: u32,
    pub mfa_sends_per_phone_per_hour: u32,
    pub mfa_sends_per_ip_per_hour: u32,
}

impl CompiledPolicy {
    pub fn points(&self, code: ReasonCode) -> u32 {
        self.points
            .get(&code)
            .copied()
            .unwrap_or_else(|| code.default_points())
    }
}

impl Policy {
    /// Checks every field; the error lists each problem with where it is.
    pub fn compile(&self) -> Result<CompiledPolicy, Vec<String>> {
        let mut errs = Vec::new();
        let mut points = BTreeMap::new();
        for (k, v) in &self.points {
            match ReasonCode::parse(k) {
                Some(c) if *v <= 100 => {
                    points.insert(c, *v);
                }
                Some(_) => errs.push(format!("points.{k}: {v} is above 100")),
                None => errs.push(format!(
                    "points.{k}: no such reason code (known: {})",
                    ReasonCode::ALL
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        if self.review_at == 0 || self.review_at > 100 {
            errs.push(format!(
                "review_at: {} must be between 1 and 100",
                self.review_at
            ));
        }
        if self.reject_at > 100 || self.reject_at <= self.review_at {
            errs.push(format!(
                "reject_at: {} must be above review_at ({}) and at most 100",
                self.reject_at, self.review_at
            ));
        }
        let hard_reject = self
            .hard_reject
            .iter()
            .filter_map(|h| {
                let c = ReasonCode::parse(h);
                if c.is_none() {
                    errs.push(format!("hard_reject: '{h}' is not a reason code"));
                }
                c
            })
            .collect();
        let currency = match Currency::parse(&self.credit_currency) {
            Ok(c) => Some(c),
            Err(e) => {
                errs.push(format!("credit_currency: {e}"));
                None
            }
        };
        let mut credit_bands = Vec::new();
        let mut last = None;
        for (i, b) in self.credit_bands.iter().enumerate() {
            if last.is_some_and(|l| b.max_score <= l) {
                errs.push(format!(
                    "credit_bands[{i}].max_score: {} must be above the previous band's",
                    b.max_score
                ));
            }
            last = Some(b.max_score);
            if let Some(cur) = currency {
                match Money::parse(&b.limit, cur) {
                    Ok(m) if m.minor >= 0 => {
                        credit_bands.push((b.max_score, m, b.prepayment_required))
                    }
                    Ok(_) => errs.push(format!("credit_bands[{i}].limit: must not be negative")),
                    Err(e) => errs.push(format!("credit_bands[{i}].limit: {e}")),
                }
            }
        }
        if last != Some(100) {
            errs.push(
                "credit_bands: the last band must have max_score = 100 so every score has terms"
                    .into(),
            );
        }
        let mut velocity = Vec::new();
        for (i, v) in self.velocity.iter().enumerate() {
            match VelocityKind::parse(&v.signal) {
                Some(k) if v.window_seconds > 0 && v.window_seconds <= 90 * 86_400 => velocity.push((k, v.window_seconds, v.max)),
                Some(_) => errs.push(format!("velocity[{i}].window_seconds: must be between 1 and 7776000 (90 days)")),
                None => errs.push(format!("velocity[{i}].signal: '{}' is not one of ip, ip_subnet, device, card, phone, email_domain", v.signal)),
            }
        }
        if !(60..=86_400).contains(&self.mfa_code_ttl_seconds) {
            errs.push(format!(
                "mfa_code_ttl_seconds: {} must be between 60 and 86400",
                self.mfa_code_ttl_seconds
            ));
        }
        if !(1..=20).contains(&self.mfa_max_attempts) {
            errs.push(format!(
                "mfa_max_attempts: {} must be between 1 and 20",
                self.mfa_max_attempts
            ));
        }
        let mut country_overrides = BTreeMap::new();
        for (k, v) in &self.country_overrides {
            let o = match v.as_str() {
                "sanctioned" => Some(CountryOverride::Sanctioned),
                "high" => Some(CountryOverride::High),
                "none" => Some(CountryOverride::None),
                _ => {
                    errs.push(format!(
                        "country_overrides.{k}: '{v}' must be sanctioned, high or none"
                    ));
                    None
                }
            };
            match (CountryCode::parse(k), o) {
                (Ok(c), Some(o)) => {
                    country_overrides.insert(c, o);
                }
                (Err(e), _) => errs.push(format!("country_overrides.{k}: {e}")),
                _ => {}
            }
        }
        match (errs.is_empty(), currency) {
            (true, Some(currency)) => Ok(CompiledPolicy {
                points,
                review_at: self.review_at,
                reject_at: self.reject_at,
                hard_reject,
                credit_bands,
                currency,
                mfa_from_score: self.mfa_from_score,
                velocity,
                country_overrides,
                credit_low_below: self.credit_low_below,
                admin_access_requires_verification: self.admin_access_requires_verification,
                admin_access_requires_first_payment: self.admin_access_requires_first_payment,
                admin_access_min_days: self.admin_access_min_days,
                mfa_code_ttl_seconds: self.mfa_code_ttl_seconds,
                mfa_max_attempts: self.mfa_max_attempts,
                mfa_sends_per_phone_per_hour: self.mfa_sends_per_phone_per_hour,
                mfa_sends_per_ip_per_hour: self.mfa_sends_per_ip_per_hour,
            }),
            _ => Err(errs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_compiles() {
        let p = Policy::default().compile().unwrap();
        assert_eq!(
            p.points(ReasonCode::CardPrepaid),
            ReasonCode::CardPrepaid.default_points()
        );
        assert_eq!(p.credit_bands.last().unwrap().0, 100);
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let mut p = Policy::default();
        p.points.insert("email_typo".into(), 10);
        p.reject_at = 10;
        p.credit_currency = "EURO".into();
        p.velocity[0].signal = "mac".into();
        p.country_overrides.insert("FR".into(), "maybe".into());
        p.credit_bands.pop();
        let errs = p.compile().unwrap_err();
        let text = errs.join("\n");
        for needle in [
            "points.email_typo",
            "reject_at",
            "credit_currency",
            "velocity[0].signal",
            "country_overrides.FR",
            "max_score = 100",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
    }
}
