//! Staff accounts: people who sign in to the dashboard as themselves. Passwords are hashed with
//! argon2id (OWASP's parameters: 19 MiB, 2 passes, 1 lane), an optional TOTP second factor,
//! sessions with idle and absolute expiry, sign-in throttled per email on every process sharing
//! the database. The audit log names the person (`user:<email>`), so maker-checker compares
//! people, not tokens.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jiff::Timestamp;
use rand::RngCore as _;
use riskdesk_domain::audit::Actor;
use riskdesk_domain::{Locale, Role, TenantId};
use riskdesk_storage::audit::{self, AuditDraft};
use riskdesk_storage::staff::{
    self, NewSession, NewUser, SessionRow, StaffSession, StaffUserRow, Throttle, UserChange,
};
use riskdesk_storage::{Db, Tx};
use uuid::Uuid;

use crate::kernel::Ctx;
use crate::kernel::error::AppError;

/// How long sessions live and how sign-in is throttled (`[dashboard]`).
#[derive(Clone, Debug)]
pub struct SessionPolicy {
    pub idle: std::time::Duration,
    pub absolute: std::time::Duration,
    pub throttle: Throttle,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: std::time::Duration::from_secs(30 * 60),
            absolute: std::time::Duration::from_secs(12 * 3600),
            throttle: Throttle {
                max: 5,
                window: std::time::Duration::from_secs(15 * 60),
                lock: std::time::Duration::from_secs(15 * 60),
            },
        }
    }
}

/// The audit identity of a person.
pub fn actor(user: &StaffUserRow) -> Actor {
    Actor {
        kind: "user".into(),
        name: user.email.clone(),
        role: user.role.clone(),
    }
}

pub const PASSWORD_MIN: usize = 12;
pub const PASSWORD_MAX: usize = 200;

/// A sign-in email: trimmed, lower case, one `@` with text on both sides, at most 254 bytes.
pub fn normalise_email(s: &str) -> Result<String, AppError> {
    let e = s.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
        })
        && e.matches('@').count() == 1
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e)
    } else {
        Err(AppError::field("email", "must be an email address"))
    }
}

fn check_password(p: &str) -> Result<(), AppError> {
    let n = p.chars().count();
    if n < PASSWORD_MIN {
        return Err(AppError::field(
            "password",
            format!("must be at least {PASSWORD_MIN} characters"),
        ));
    }
    if n > PASSWORD_MAX {
        return Err(AppError::field(
            "password",
            format!("must be at most {PASSWORD_MAX} characters"),
        ));
    }
    Ok(())
}

fn hasher() -> argon2::Argon2<'static> {
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19 * 1024, 2, 1, None).expect("OWASP's argon2id parameters are valid"),
    )
}

/// The argon2id PHC string of `password` (CPU-bound: tens of milliseconds, run off the async
/// threads).
pub async fn hash_password(password: &str) -> Result<String, AppError> {
    check_password(password)?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| AppError::Internal(e.to_string()))?;
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(format!("argon2: {e}")))
    })
    .await
    .map_err(|e| AppError::Internal(format!("hashing task: {e}")))?
}

/// Checks `password` against a stored hash; with no hash, against a dummy one, so an unknown
/// email costs the same time as a wrong password.
async fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        hasher()
            .hash_password(
                b"not anyone's password",
                &SaltString::encode_b64(&[7u8; 16]).expect("a 16-byte salt encodes"),
            )
            .map(|h| h.to_string())
            .unwrap_or_default()
    });
    let (password, stored, real) = (
        password.to_owned(),
        stored.unwrap_or(dummy).to_owned(),
        stored.is_some(),
    );
    tokio::task::spawn_blocking(move || {
        let ok = PasswordHash::new(&stored)
            .map(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false);
        ok && real
    })
    .await
    .unwrap_or(false)
}

pub struct CreateUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    /// None: the person signs in with Entra ID only.
    pub password: Option<&'a str>,
    pub locale: Locale,
}

/// Creates a staff account in `tenant`.
pub async fn create_user(
    tx: &mut Tx,
    tenant: TenantId,
    by: &Actor,
    u: &CreateUser<'_>,
    now: Timestamp,
) -> Result<StaffUserRow, AppError> {
    let email = normalise_email(u.email)?;
    let name =
        riskdesk_domain::customer::parse_name(u.name).map_err(|e| AppError::field("name", e.0))?;
    let hash = match u.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let row = staff::create_user(
        tx,
        &NewUser {
            tenant,
            email: &email,
            name: &name,
            role: u.role,
            password_hash: hash.as_deref(),
            locale: u.locale.as_str(),
        },
        now,
    )
    .await?;
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(by, "staff.create", "staff_user", row.id).after(&row),
    )
    .await?;
    Ok(row)
}

/// What an admin may change on an account.
#[derive(Default)]
pub struct ChangeUser<'a> {
    pub name: Option<&'a str>,
    pub role: Option<Role>,
    pub password: Option<&'a str>,
    pub disabled: Option<bool>,
    /// Some(None) removes the second factor; Some(Some(b32)) sets it.
    pub totp_secret: Option<Option<&'a str>>,
    pub oidc_subject: Option<&'a str>,
    pub locale: Option<Locale>,
}

/// Changes an account. Disabling it, or changing its password, role or second factor, ends
/// every session it has (they were opened under the old terms).
pub async fn update_user(
    tx: &mut Tx,
    tenant: TenantId,
    by: &Actor,
    id: Uuid,
    c: &ChangeUser<'_>,
    now: Timestamp,
) -> Result<StaffUserRow, AppError> {
    let name = match c.name {
        Some(n) => Some(
            riskdesk_domain::customer::parse_name(n).map_err(|e| AppError::field("name", e.0))?,
        ),
        None => None,
    };
    let hash = match c.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let (before, after) = staff::update_user(
        tx,
        tenant,
        id,
        &UserChange {
            name: name.as_deref(),
            role: c.role,
            password_hash: hash.as_deref(),
            totp_secret: c.totp_secret,
            oidc_subject: c.oidc_subject,
            locale: c.locale.map(Locale::as_str),
            disabled: c.disabled,
        },
        now,
    )
    .await?;
    let ends_sessions = c.disabled == Some(true)
        || hash.is_some()
        || before.role != after.role
        || before.totp_enabled != after.totp_enabled;
    let ended = if ends_sessions {
        staff::revoke_user_sessions(tx, id, now).await?
    } else {
        0
    };
    audit::append(
        tx,
        tenant,
        now,
        AuditDraft::new(by, "staff.update", "staff_user", id)
            .before(&before)
            .after(&serde_json::json!({ "user": after, "sessions_ended": ended })),
    )
    .await?;
    Ok(after)
}

/// The outcome of a sign-in attempt. Refusals never say which of email or password was wrong.
pub enum SignIn {
    Ok {
        session: SessionRow,
        secret: String,
        user: StaffUserRow,
    },
    /// The password was right; the account asks for its TOTP code (none or a wrong one given).
    NeedsCode,
    Refused,
    /// Too many failures: refused until then (microseconds), whatever the password.
    Locked(i64),
}

pub struct Attempt<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub code: Option<&'a str>,
    pub locale: Option<Locale>,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// Signs in with email and password (and code when the account has a second factor).
pub async fn sign_in(
    ctx: &std::sync::Arc<Ctx>,
    a: &Attempt<'_>,
    policy: &SessionPolicy,
    now: Timestamp,
) -> Result<SignIn, AppError> {
    let db = &ctx.db;
    let Ok(email) = normalise_email(a.email) else {
        return Ok(SignIn::Refused);
    };
    if let Some(until) = staff::locked_until(db, &email, now).await? {
        return Ok(SignIn::Locked(until));
    }
    let user = staff::user_by_email(db, &email).await?;
    let usable = user.as_ref().filter(|u| u.disabled_at.is_none());
    let password_ok =
        verify_password(a.password, usable.and_then(|u| u.password_hash.as_deref())).await;
    let code_ok = match usable.and_then(|u| u.totp_secret.as_deref()) {
        None => Some(true),
        Some(secret) => match a.code.map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(code) => Some(totp_ok(secret, &email, code, now)),
        },
    };
    let mut tx = ctx.begin().await?;
    match (usable, password_ok, code_ok) {
        (Some(u), true, Some(true)) => {
            staff::clear_failures(&mut tx, &email).await?;
            let (session, secret) = open_session(&mut tx, u, a, "password", policy, now).await?;
            tx.commit().await?;
            Ok(SignIn::Ok {
                session,
                secret,
                user: u.clone(),
            })
        }
        (Some(_), true, None) => {
            drop(tx);
            Ok(SignIn::NeedsCode)
        }
        _ => {
            let locked = staff::record_failure(&mut tx, &email, policy.throttle, now).await?;
            tx.commit().await?;
            Ok(match locked {
                Some(until) => SignIn::Locked(until),
                None => SignIn::Refused,
            })
        }
    }
}

/// A session for `u`, audited as a sign-in by `method`.
async fn open_session(
    tx: &mut Tx,
    u: &StaffUserRow,
    a: &Attempt<'_>,
    method: &str,
    policy: &SessionPolicy,
    now: Timestamp,
) -> Result<(SessionRow, String), AppError> {
    let locale = a
        .locale
        .or_else(|| Locale::parse(&u.locale).ok())
        .unwrap_or(Locale::En);
    let (session, secret) = staff::create_session(
        tx,
        &NewSession {
            user: u,
            locale: locale.as_str(),
            idle: policy.idle,
            absolute: policy.absolute,
            user_agent: a.user_agent,
            ip: a.ip,
        },
        now,
    )
    .await?;
    audit::append(
        tx,
        TenantId(u.tenant_id),
        now,
        AuditDraft::new(&actor(u), "staff.sign_in", "ui_session", session.id)
            .after(&serde_json::json!({"method": method, "totp": u.totp_enabled, "ip": a.ip})),
    )
    .await?;
    Ok((session, secret))
}

/// A person the tenant's identity provider vouched for (Entra ID).
pub struct Vouched<'a> {
    /// The provider's stable id of the person (Entra's `oid`).
    pub subject: &'a str,
    pub email: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Signs in a person the tenant's identity provider vouched for: the staff account linked to
/// that subject, else the tenant's account with that email, which is then linked to it (one
/// subject per account, from then on). No account, or a disabled one: refused — accounts are
/// made by an admin, never by signing in.
pub async fn sign_in_vouched(
    ctx: &std::sync::Arc<Ctx>,
    tenant: TenantId,
    v: &Vouched<'_>,
    policy: &SessionPolicy,
    now: Timestamp,
) -> Result<SignIn, AppError> {
    let db = &ctx.db;
    let mut user = staff::user_by_oidc_subject(db, tenant, v.subject).await?;
    let mut link = false;
    if user.is_none()
        && let Some(email) = v.email.and_then(|e| normalise_email(e).ok())
    {
        user = staff::user_by_email(db, &email)
            .await?
            .filter(|u| u.tenant_id == tenant.0 && u.oidc_subject.is_none());
        link = user.is_some();
    }
    let Some(u) = user.filter(|u| u.disabled_at.is_none()) else {
        return Ok(SignIn::Refused);
    };
    let mut tx = ctx.begin().await?;
    let u = if link {
        let (_, after) = staff::update_user(
            &mut tx,
            tenant,
            u.id,
            &UserChange {
                oidc_subject: Some(v.subject),
                ..Default::default()
            },
            now,
        )
        .await?;
        audit::append(
            &mut tx,
            tenant,
            now,
            AuditDraft::new(
                &actor(&after),
                "staff.link_identity",
                "staff_user",
                after.id,
            )
            .after(&serde_json::json!({"provider": "entra_id", "subject": v.subject})),
        )
        .await?;
        after
    } else {
        u
    };
    let a = Attempt {
        email: &u.email,
        password: "",
        code: None,
        locale: None,
        user_agent: v.user_agent,
        ip: None,
    };
    let (session, secret) = open_session(&mut tx, &u, &a, "entra_id", policy, now).await?;
    tx.commit().await?;
    Ok(SignIn::Ok {
        session,
        secret,
        user: u,
    })
}

fn totp_ok(secret_b32: &str, account: &str, code: &str, now: Timestamp) -> bool {
    let Ok(secret) = totp_rs::Secret::try_from_base32(secret_b32) else {
        return false;
    };
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name(account.to_owned())
        .with_issuer(Some("riskdesk"))
        .build()
        .map(|t| t.check(code, now.as_second().max(0) as u64).is_some())
        .unwrap_or(false)
}

/// A fresh TOTP secret (base32) and its otpauth URL, for an account's second factor.
pub fn new_totp(account: &str) -> Result<(String, String), AppError> {
    let secret = totp_rs::Secret::generate().to_base32();
    let t = totp_rs::Builder::new()
        .with_secret(
            totp_rs::Secret::try_from_base32(&secret)
                .map_err(|e| AppError::Internal(format!("TOTP: {e:?}")))?,
        )
        .with_account_name(account.to_owned())
        .with_issuer(Some("riskdesk"))
        .build()
        .map_err(|e| AppError::Internal(format!("TOTP: {e:?}")))?;
    let url = t
        .to_url()
        .map_err(|e| AppError::Internal(format!("TOTP: {e:?}")))?;
    Ok((secret, url))
}

/// The live session of a cookie secret, its idle expiry moved on (written at most once a
/// minute, so a page view is not a write).
pub async fn session(
    ctx: &std::sync::Arc<Ctx>,
    secret: &str,
    policy: &SessionPolicy,
    now: Timestamp,
) -> Result<Option<StaffSession>, AppError> {
    let Some(s) = staff::session_by_secret(&ctx.db, secret, now).await? else {
        return Ok(None);
    };
    let at = riskdesk_storage::time::to_micros(now);
    if at - s.session.last_seen_at > 60_000_000 {
        let mut tx = ctx.begin().await?;
        staff::touch_session(&mut tx, s.session.id, policy.idle, now).await?;
        tx.commit().await?;
    }
    Ok(Some(s))
}

/// Ends one session (sign out).
pub async fn sign_out(tx: &mut Tx, s: &StaffSession, now: Timestamp) -> Result<(), AppError> {
    staff::revoke_session(tx, s.session.id, now).await?;
    audit::append(
        tx,
        TenantId(s.user.tenant_id),
        now,
        AuditDraft::new(
            &actor(&s.user),
            "staff.sign_out",
            "ui_session",
            s.session.id,
        ),
    )
    .await?;
    Ok(())
}

/// Ends every session of the person (sign out everywhere); returns how many.
pub async fn sign_out_everywhere(
    tx: &mut Tx,
    s: &StaffSession,
    now: Timestamp,
) -> Result<u64, AppError> {
    let n = staff::revoke_user_sessions(tx, s.user.id, now).await?;
    audit::append(
        tx,
        TenantId(s.user.tenant_id),
        now,
        AuditDraft::new(
            &actor(&s.user),
            "staff.sign_out_everywhere",
            "staff_user",
            s.user.id,
        )
        .after(&serde_json::json!({ "sessions_ended": n })),
    )
    .await?;
    Ok(n)
}

pub async fn set_locale(tx: &mut Tx, s: &StaffSession, locale: Locale) -> Result<(), AppError> {
    staff::set_session_locale(tx, s.session.id, locale.as_str()).await?;
    Ok(())
}

pub async fn users(db: &Db, tenant: TenantId) -> Result<Vec<StaffUserRow>, AppError> {
    Ok(staff::list_users(db, tenant).await?)
}
