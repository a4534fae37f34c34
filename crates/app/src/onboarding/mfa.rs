//! MFA at sign-up by SMS one-time code, and the admin-access gate.
//!
//! A code is 6 random digits, stored only as SHA-256(challenge id ‖ code), valid for
//! `mfa_code_ttl_seconds`, with `mfa_max_attempts` tries; sends are limited per phone and per
//! sign-up IP. The code appears in the SMS body only — never in a log, a response or the audit.

use jiff::Timestamp;
use rand::Rng as _;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::onboarding::policy::CompiledPolicy;
use riskdesk_domain::{CustomerId, TenantId};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::challenges::{self, ChallengeRow};
use riskdesk_storage::customers::{self, CustomerRow};
use riskdesk_storage::signups;
use riskdesk_storage::time::to_micros;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::kernel::Uow;
use crate::kernel::error::{AppError, FieldError};

fn code_hash(challenge: Uuid, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{challenge}:{code}")))
}

/// Compares without an early exit, so timing says nothing about how much matched.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The phone and IP a sign-up was assessed with.
fn contact_of(input_json: &str) -> (Option<String>, Option<String>) {
    let v: serde_json::Value = serde_json::from_str(input_json).unwrap_or_default();
    let r = &v["request"];
    (
        r["contact"]["phone"].as_str().map(str::to_owned),
        r["ip"].as_str().map(str::to_owned),
    )
}

/// What a started challenge looks like to the caller (never the code).
#[derive(Debug, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeOut {
    pub challenge_id: Uuid,
    pub channel: String,
    /// The phone number with all but the last 3 digits masked.
    pub destination: String,
    pub expires_at: String,
    pub max_attempts: i64,
    /// TOTP only: the enrolment URL for an authenticator app (shown once; contains the secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otpauth_url: Option<String>,
    /// TOTP only: the shared secret in base32, for manual entry (shown once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn mask(phone: &str) -> String {
    let keep = phone.len().saturating_sub(3);
    phone
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i < keep && c.is_ascii_digit() {
                '•'
            } else {
                c
            }
        })
        .collect()
}

/// Creates an SMS challenge (committed), then sends the code. Returns the challenge and the
/// code to send; the caller sends it after commit so no lock is held across the provider call.
pub async fn start_sms(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    signup: Uuid,
    policy: &CompiledPolicy,
    now: Timestamp,
) -> Result<(ChallengeOut, String, String), AppError> {
    let s = signups::get_tx(tx, tenant, signup).await?;
    if s.status == "rejected" {
        return Err(AppError::Conflict(format!(
            "sign-up {signup} was rejected; there is nothing to verify"
        )));
    }
    let (phone, ip) = contact_of(&s.input_json);
    let phone = phone.ok_or_else(|| {
        AppError::field(
            "channel",
            "the sign-up has no phone number to send a code to",
        )
    })?;
    let hour = 3600;
    let mut keys = vec![(
        "mfa_phone".to_owned(),
        phone.clone(),
        hour,
        policy.mfa_sends_per_phone_per_hour.saturating_add(1),
    )];
    if let Some(ip) = &ip {
        keys.push((
            "mfa_ip".to_owned(),
            ip.clone(),
            hour,
            policy.mfa_sends_per_ip_per_hour.saturating_add(1),
        ));
    }
    let lock: Vec<(String, String)> = keys
        .iter()
        .map(|(k, v, _, _)| (k.clone(), v.clone()))
        .collect();
    signups::lock_velocity_keys(tx, tenant, &lock).await?;
    let id = Uuid::now_v7();
    let counts = signups::count_velocity(tx, tenant, id, now, &keys).await?;
    if counts[0] > policy.mfa_sends_per_phone_per_hour {
        return Err(AppError::TooManyRequests(format!(
            "more than {} codes sent to this phone in the last hour; try later",
            policy.mfa_sends_per_phone_per_hour
        )));
    }
    if counts
        .get(1)
        .is_some_and(|n| *n > policy.mfa_sends_per_ip_per_hour)
    {
        return Err(AppError::TooManyRequests(format!(
            "more than {} codes requested from this sign-up's IP in the last hour; try later",
            policy.mfa_sends_per_ip_per_hour
        )));
    }
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    let expires = now + jiff::SignedDuration::from_secs(policy.mfa_code_ttl_seconds as i64);
    let row = ChallengeRow {
        id,
        tenant_id: tenant.0,
        signup_id: signup,
        channel: "sms".into(),
        destination: Some(phone.clone()),
        code_hash: Some(code_hash(id, &code)),
        totp_secret: None,
        attempts: 0,
        max_attempts: i64::from(policy.mfa_max_attempts),
        created_at: to_micros(now),
        expires_at: to_micros(expires),
        confirmed_at: None,
        provider_ref: None,
    };
    challenges::insert(tx, &row).await?;
    let out = ChallengeOut {
        challenge_id: id,
        channel: "sms".into(),
        destination: mask(&phone),
        expires_at: expires.to_string(),
        max_attempts: row.max_attempts,
        otpauth_url: None,
        secret: None,
    };
    audit::append(tx, tenant, now, AuditDraft::new(actor, "signup.mfa_started", "signup", signup).after(&serde_json::json!({"challenge_id": id, "channel": "sms", "destination": out.destination}))).await?;
    Ok((out, phone, code))
}

fn totp_for(secret_b32: &str, account: &str) -> Result<totp_rs::Totp, AppError> {
    let secret = totp_rs::Secret::try_from_base32(secret_b32)
        .map_err(|e| AppError::Internal(format!("stored TOTP secret: {e:?}")))?;
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name(account.to_owned())
        .with_issuer(Some("riskdesk"))
        .build()
        .map_err(|e| AppError::Internal(format!("TOTP: {e:?}")))
}

/// Starts TOTP enrolment: a new shared secret, returned once as an otpauth URL; the sign-up is
/// verified when the first code from the app is confirmed before `expires_at`.
pub async fn start_totp(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    signup: Uuid,
    policy: &CompiledPolicy,
    now: Timestamp,
) -> Result<ChallengeOut, AppError> {
    let s = signups::get_tx(tx, tenant, signup).await?;
    if s.status == "rejected" {
        return Err(AppError::Conflict(format!(
            "sign-up {signup} was rejected; there is nothing to verify"
        )));
    }
    let v: serde_json::Value = serde_json::from_str(&s.input_json).unwrap_or_default();
    let account = v["request"]["contact"]["email"]
        .as_str()
        .unwrap_or("customer")
        .to_owned();
    let secret = totp_rs::Secret::generate().to_base32();
    let totp = totp_for(&secret, &account)?;
    let id = Uuid::now_v7();
    let expires = now + jiff::SignedDuration::from_secs(policy.mfa_code_ttl_seconds as i64);
    let row = ChallengeRow {
        id,
        tenant_id: tenant.0,
        signup_id: signup,
        channel: "totp".into(),
        destination: Some(account.clone()),
        code_hash: None,
        totp_secret: Some(secret.clone()),
        attempts: 0,
        max_attempts: i64::from(policy.mfa_max_attempts),
        created_at: to_micros(now),
        expires_at: to_micros(expires),
        confirmed_at: None,
        provider_ref: None,
    };
    challenges::insert(tx, &row).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "signup.mfa_started", "signup", signup)
            .after(&serde_json::json!({"challenge_id": id, "channel": "totp"})),
    )
    .await?;
    Ok(ChallengeOut {
        challenge_id: id,
        channel: "totp".into(),
        destination: account,
        expires_at: expires.to_string(),
        max_attempts: row.max_attempts,
        otpauth_url: Some(
            totp.to_url()
                .map_err(|e| AppError::Internal(format!("TOTP URL: {e:?}")))?,
        ),
        secret: Some(secret),
    })
}

pub enum ConfirmOutcome {
    Verified,
    /// Wrong code; the attempt was recorded (commit it), `left` tries remain.
    Wrong {
        left: i64,
    },
}

pub async fn confirm(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    signup: Uuid,
    code: &str,
    now: Timestamp,
) -> Result<ConfirmOutcome, AppError> {
    let s = signups::get_tx(tx, tenant, signup).await?;
    let c = challenges::latest(tx, tenant, signup)
        .await?
        .ok_or_else(|| AppError::Conflict("no verification was started for this sign-up".into()))?;
    if c.confirmed_at.is_some() {
        return Err(AppError::Conflict(
            "this sign-up is already verified".into(),
        ));
    }
    if to_micros(now) >= c.expires_at {
        return Err(AppError::Conflict(
            "the code has expired; request a new one".into(),
        ));
    }
    if c.attempts >= c.max_attempts {
        return Err(AppError::Conflict(
            "too many wrong codes; request a new one".into(),
        ));
    }
    let matches = match (c.channel.as_str(), &c.totp_secret) {
        ("totp", Some(secret)) => {
            let totp = totp_for(secret, c.destination.as_deref().unwrap_or("customer"))?;
            totp.check(code.trim(), now.as_second().max(0) as u64)
                .is_some()
        }
        _ => same(
            &code_hash(c.id, code.trim()),
            c.code_hash.as_deref().unwrap_or(""),
        ),
    };
    if !matches {
        challenges::record_attempt(tx, c.id).await?;
        return Ok(ConfirmOutcome::Wrong {
            left: c.max_attempts - c.attempts - 1,
        });
    }
    challenges::confirm(tx, c.id, now).await?;
    signups::set_verified(tx, tenant, signup, now).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "signup.verified", "signup", signup)
            .after(&serde_json::json!({"challenge_id": c.id, "channel": c.channel})),
    )
    .await?;
    if let Some(customer) = s.customer_id {
        let (b, a) = customers::set_verified(tx, tenant, CustomerId(customer), now).await?;
        audit::append(
            tx,
            tenant,
            now,
            AuditDraft::new(actor, "customer.verified", "customer", customer)
                .before(&b)
                .after(&a),
        )
        .await?;
    }
    Ok(ConfirmOutcome::Verified)
}

/// What still stands between a customer and full admin access.
pub async fn missing_for_admin(
    tx: &mut Uow,
    tenant: TenantId,
    c: &CustomerRow,
    policy: &CompiledPolicy,
    as_of: Timestamp,
) -> Result<Vec<FieldError>, AppError> {
    let mut missing = Vec::new();
    if policy.admin_access_requires_verification {
        let via_signup = match c.signup_id {
            Some(s) => signups::is_verified(tx, tenant, s).await?,
            None => false,
        };
        if c.verified_at.is_none() && !via_signup {
            missing.push(FieldError {
                field: "verified".into(),
                message: "the customer has not passed MFA at sign-up or been verified".into(),
            });
        }
    }
    if policy.admin_access_requires_first_payment && c.first_payment_at.is_none() {
        missing.push(FieldError {
            field: "first_payment".into(),
            message: "no payment has been received yet".into(),
        });
    }
    let serious = riskdesk_storage::alerts::open_serious_count_tx(tx, tenant, c.id).await?;
    if serious > 0 {
        missing.push(FieldError {
            field: "open_alerts".into(),
            message: format!("{serious} open alert(s) of high or critical severity"),
        });
    }
    let overdue = riskdesk_storage::billing::overdue_count_tx(
        tx,
        tenant,
        c.id,
        riskdesk_domain::billing::Day::of(as_of).0,
    )
    .await?;
    if overdue > 0 {
        missing.push(FieldError {
            field: "overdue_invoices".into(),
            message: format!("{overdue} invoice(s) past their due date"),
        });
    }
    let days = (to_micros(as_of) - c.created_at) / 86_400_000_000;
    if days < i64::from(policy.admin_access_min_days) {
        missing.push(FieldError {
            field: "min_days".into(),
            message: format!(
                "customer for {days} days; {} required",
                policy.admin_access_min_days
            ),
        });
    }
    Ok(missing)
}

/// Grants full admin access when every condition holds.
pub async fn grant_admin(
    tx: &mut Uow,
    tenant: TenantId,
    actor: &Actor,
    id: CustomerId,
    policy: &CompiledPolicy,
    as_of: Timestamp,
    now: Timestamp,
) -> Result<CustomerRow, AppError> {
    let c = customers::get_tx(tx, tenant, id).await?;
    if c.admin_access == "granted" {
        return Err(AppError::Conflict(
            "full admin access is already granted".into(),
        ));
    }
    let missing = missing_for_admin(tx, tenant, &c, policy, as_of).await?;
    if !missing.is_empty() {
        let detail = format!(
            "full admin access needs every risk control met; missing: {}",
            missing
                .iter()
                .map(|m| m.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Err(AppError::Unmet { detail, missing });
    }
    let (b, a) = customers::grant_admin_access(tx, tenant, id, now).await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(actor, "customer.admin_access_granted", "customer", id)
            .before(&b)
            .after(&a),
    )
    .await?;
    Ok(a)
}
