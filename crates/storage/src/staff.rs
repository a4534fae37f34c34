//! Staff accounts (people, per tenant), their dashboard sessions and sign-in throttling.
//!
//! A session's cookie carries 32 random bytes; only their SHA-256 is stored (as for API tokens:
//! a fast hash is right for a high-entropy secret). Passwords are hashed by the caller (argon2id,
//! in the application layer); this module stores the PHC string it is given.

use base64::Engine as _;
use jiff::Timestamp;
use rand::RngCore as _;
use riskdesk_domain::{Role, TenantId};
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::time::to_micros;
use crate::tokens::hash_secret;
use crate::{Db, Result, StorageError, Tx, conflict_on_unique};

#[derive(Clone, Debug, serde::Serialize)]
pub struct StaffUserRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    /// Never serialised into audit entries or answers.
    #[serde(skip)]
    pub password_hash: Option<String>,
    #[serde(skip)]
    pub totp_secret: Option<String>,
    /// Whether a second factor is set (what the audit entry and the admin page may show).
    pub totp_enabled: bool,
    pub oidc_subject: Option<String>,
    pub locale: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub disabled_at: Option<i64>,
}

impl FromRow for StaffUserRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        let totp_secret = r.opt_text("totp_secret")?;
        Ok(StaffUserRow {
            id: r.uuid("id")?,
            tenant_id: r.uuid("tenant_id")?,
            email: r.text("email")?,
            name: r.text("name")?,
            role: r.text("role")?,
            password_hash: r.opt_text("password_hash")?,
            totp_enabled: totp_secret.is_some(),
            totp_secret,
            oidc_subject: r.opt_text("oidc_subject")?,
            locale: r.text("locale")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
            disabled_at: r.opt_i64("disabled_at")?,
        })
    }
}

impl StaffUserRow {
    pub fn role(&self) -> Result<Role> {
        Role::parse(&self.role).ok_or_else(|| {
            StorageError::Corrupt(format!("staff user {} has role '{}'", self.id, self.role))
        })
    }
}

const USER_COLS: &str = "id, tenant_id, email, name, role, password_hash, totp_secret, oidc_subject, locale, created_at, updated_at, disabled_at";

pub struct NewUser<'a> {
    pub tenant: TenantId,
    /// Lower case, validated by the caller.
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: Option<&'a str>,
    pub locale: &'a str,
}

pub async fn create_user(tx: &mut Tx, u: &NewUser<'_>, now: Timestamp) -> Result<StaffUserRow> {
    let at = to_micros(now);
    let id = Uuid::now_v7();
    tx.execute(
        Q::new(
            "INSERT INTO staff_users (id, tenant_id, email, name, role, password_hash, locale, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(id)
        .bind(u.tenant.0)
        .bind(u.email)
        .bind(u.name)
        .bind(u.role.as_str())
        .bind(u.password_hash.map(str::to_owned))
        .bind(u.locale)
        .bind(at),
    )
    .await
    .map_err(|e| conflict_on_unique(e, || format!("a staff user with email {} exists", u.email)))?;
    user_tx(tx, u.tenant, id).await
}

async fn user_tx(tx: &mut Tx, tenant: TenantId, id: Uuid) -> Result<StaffUserRow> {
    tx.fetch_optional(
        Q::new(format!(
            "SELECT {USER_COLS} FROM staff_users WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("staff user"))
}

/// The user with this sign-in email, in any tenant (emails are unique in the installation).
pub async fn user_by_email(db: &Db, email: &str) -> Result<Option<StaffUserRow>> {
    db.fetch_optional(
        Q::new(format!(
            "SELECT {USER_COLS} FROM staff_users WHERE email = $1"
        ))
        .bind(email),
    )
    .await
}

pub async fn user_by_oidc_subject(
    db: &Db,
    tenant: TenantId,
    subject: &str,
) -> Result<Option<StaffUserRow>> {
    db.fetch_optional(
        Q::new(format!(
            "SELECT {USER_COLS} FROM staff_users WHERE tenant_id = $1 AND oidc_subject = $2"
        ))
        .bind(tenant.0)
        .bind(subject),
    )
    .await
}

pub async fn get_user(db: &Db, tenant: TenantId, id: Uuid) -> Result<StaffUserRow> {
    db.fetch_optional(
        Q::new(format!(
            "SELECT {USER_COLS} FROM staff_users WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.0)
        .bind(id),
    )
    .await?
    .ok_or(StorageError::NotFound("staff user"))
}

pub async fn list_users(db: &Db, tenant: TenantId) -> Result<Vec<StaffUserRow>> {
    db.fetch_all(
        Q::new(format!(
            "SELECT {USER_COLS} FROM staff_users WHERE tenant_id = $1 ORDER BY email"
        ))
        .bind(tenant.0),
    )
    .await
}

/// What may change on an account; `None` leaves a field as it is.
#[derive(Default)]
pub struct UserChange<'a> {
    pub name: Option<&'a str>,
    pub role: Option<Role>,
    pub password_hash: Option<&'a str>,
    /// `Some(None)` removes the second factor.
    pub totp_secret: Option<Option<&'a str>>,
    pub oidc_subject: Option<&'a str>,
    pub locale: Option<&'a str>,
    /// `Some(true)` disables, `Some(false)` enables again.
    pub disabled: Option<bool>,
}

/// Applies `c`; returns the row before and after.
pub async fn update_user(
    tx: &mut Tx,
    tenant: TenantId,
    id: Uuid,
    c: &UserChange<'_>,
    now: Timestamp,
) -> Result<(StaffUserRow, StaffUserRow)> {
    let before = user_tx(tx, tenant, id).await?;
    let at = to_micros(now);
    let disabled_at = match c.disabled {
        None => before.disabled_at,
        Some(true) => before.disabled_at.or(Some(at)),
        Some(false) => None,
    };
    let totp = match c.totp_secret {
        None => before.totp_secret.clone(),
        Some(v) => v.map(str::to_owned),
    };
    tx.execute(
        Q::new(
            "UPDATE staff_users SET name = $3, role = $4, password_hash = $5, totp_secret = $6, \
             oidc_subject = $7, locale = $8, disabled_at = $9, updated_at = $10 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.0)
        .bind(id)
        .bind(c.name.unwrap_or(&before.name))
        .bind(c.role.map(Role::as_str).unwrap_or(&before.role))
        .bind(
            c.password_hash
                .map(str::to_owned)
                .or(before.password_hash.clone()),
        )
        .bind(totp)
        .bind(
            c.oidc_subject
                .map(str::to_owned)
                .or(before.oidc_subject.clone()),
        )
        .bind(c.locale.unwrap_or(&before.locale))
        .bind(disabled_at)
        .bind(at),
    )
    .await
    .map_err(|e| conflict_on_unique(e, || "that Entra ID subject is another user's".into()))?;
    let after = user_tx(tx, tenant, id).await?;
    Ok((before, after))
}

// ---------------------------------------------------------------------------------------------
// Sessions

#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub locale: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_expires_at: i64,
    pub absolute_expires_at: i64,
    pub revoked_at: Option<i64>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl FromRow for SessionRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(SessionRow {
            id: r.uuid("id")?,
            user_id: r.uuid("user_id")?,
            tenant_id: r.uuid("tenant_id")?,
            locale: r.text("locale")?,
            created_at: r.i64("created_at")?,
            last_seen_at: r.i64("last_seen_at")?,
            idle_expires_at: r.i64("idle_expires_at")?,
            absolute_expires_at: r.i64("absolute_expires_at")?,
            revoked_at: r.opt_i64("revoked_at")?,
            user_agent: r.opt_text("user_agent")?,
            ip: r.opt_text("ip")?,
        })
    }
}

const SESSION_COLS: &str = "s.id, s.user_id, s.tenant_id, s.locale, s.created_at, s.last_seen_at, s.idle_expires_at, s.absolute_expires_at, s.revoked_at, s.user_agent, s.ip";

/// A live session and the person behind it.
#[derive(Clone, Debug)]
pub struct StaffSession {
    pub session: SessionRow,
    pub user: StaffUserRow,
}

impl FromRow for StaffSession {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        let totp_secret = r.opt_text("totp_secret")?;
        Ok(StaffSession {
            session: SessionRow::from_row(r)?,
            user: StaffUserRow {
                id: r.uuid("user_id")?,
                tenant_id: r.uuid("tenant_id")?,
                email: r.text("email")?,
                name: r.text("name")?,
                role: r.text("role")?,
                password_hash: None,
                totp_enabled: totp_secret.is_some(),
                totp_secret: None,
                oidc_subject: r.opt_text("oidc_subject")?,
                locale: r.text("user_locale")?,
                created_at: r.i64("user_created_at")?,
                updated_at: r.i64("updated_at")?,
                disabled_at: r.opt_i64("disabled_at")?,
            },
        })
    }
}

pub struct NewSession<'a> {
    pub user: &'a StaffUserRow,
    pub locale: &'a str,
    pub idle: std::time::Duration,
    pub absolute: std::time::Duration,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
}

/// Creates a session; returns it and the cookie secret (never stored, never shown again).
pub async fn create_session(
    tx: &mut Tx,
    s: &NewSession<'_>,
    now: Timestamp,
) -> Result<(SessionRow, String)> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let at = to_micros(now);
    let row = SessionRow {
        id: Uuid::now_v7(),
        user_id: s.user.id,
        tenant_id: s.user.tenant_id,
        locale: s.locale.to_owned(),
        created_at: at,
        last_seen_at: at,
        idle_expires_at: at.saturating_add(micros(s.idle)),
        absolute_expires_at: at.saturating_add(micros(s.absolute)),
        revoked_at: None,
        user_agent: s.user_agent.map(|u| u.chars().take(300).collect()),
        ip: s.ip.map(str::to_owned),
    };
    tx.execute(
        Q::new(
            "INSERT INTO ui_sessions (id, user_id, tenant_id, secret_hash, locale, created_at, last_seen_at, \
             idle_expires_at, absolute_expires_at, user_agent, ip) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10)",
        )
        .bind(row.id)
        .bind(row.user_id)
        .bind(row.tenant_id)
        .bind(hash_secret(&secret))
        .bind(&row.locale)
        .bind(at)
        .bind(row.idle_expires_at)
        .bind(row.absolute_expires_at)
        .bind(row.user_agent.clone())
        .bind(row.ip.clone()),
    )
    .await?;
    Ok((row, secret))
}

/// The live session a cookie secret belongs to at `now`: not revoked, not past either expiry,
/// its user not disabled.
pub async fn session_by_secret(
    db: &Db,
    secret: &str,
    now: Timestamp,
) -> Result<Option<StaffSession>> {
    if secret.is_empty() || secret.len() > 100 {
        return Ok(None);
    }
    let at = to_micros(now);
    db.fetch_optional(
        Q::new(format!(
            "SELECT {SESSION_COLS}, u.email, u.name, u.role, u.totp_secret, u.oidc_subject, \
             u.locale AS user_locale, u.created_at AS user_created_at, u.updated_at, u.disabled_at \
             FROM ui_sessions s JOIN staff_users u ON u.id = s.user_id \
             WHERE s.secret_hash = $1 AND s.revoked_at IS NULL AND u.disabled_at IS NULL \
             AND s.idle_expires_at > $2 AND s.absolute_expires_at > $2"
        ))
        .bind(hash_secret(secret))
        .bind(at),
    )
    .await
}

/// Moves the idle expiry on (never past the absolute one).
pub async fn touch_session(
    tx: &mut Tx,
    id: Uuid,
    idle: std::time::Duration,
    now: Timestamp,
) -> Result<()> {
    let at = to_micros(now);
    tx.execute(
        Q::new(
            "UPDATE ui_sessions SET last_seen_at = $2, \
             idle_expires_at = CASE WHEN $3 < absolute_expires_at THEN $3 ELSE absolute_expires_at END \
             WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(at)
        .bind(at.saturating_add(micros(idle))),
    )
    .await?;
    Ok(())
}

pub async fn set_session_locale(tx: &mut Tx, id: Uuid, locale: &str) -> Result<()> {
    tx.execute(
        Q::new("UPDATE ui_sessions SET locale = $2 WHERE id = $1")
            .bind(id)
            .bind(locale),
    )
    .await?;
    Ok(())
}

pub async fn revoke_session(tx: &mut Tx, id: Uuid, now: Timestamp) -> Result<u64> {
    tx.execute(
        Q::new("UPDATE ui_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(to_micros(now)),
    )
    .await
}

/// Ends every live session of a user; returns how many.
pub async fn revoke_user_sessions(tx: &mut Tx, user: Uuid, now: Timestamp) -> Result<u64> {
    tx.execute(
        Q::new("UPDATE ui_sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user)
            .bind(to_micros(now)),
    )
    .await
}

/// A user's sessions still live at `now`, newest first.
pub async fn live_sessions(db: &Db, user: Uuid, now: Timestamp) -> Result<Vec<SessionRow>> {
    let at = to_micros(now);
    db.fetch_all(
        Q::new(format!(
            "SELECT {SESSION_COLS} FROM ui_sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL \
             AND s.idle_expires_at > $2 AND s.absolute_expires_at > $2 ORDER BY s.created_at DESC"
        ))
        .bind(user)
        .bind(at),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Sign-in throttling

struct Failures {
    failures: i64,
    first_at: i64,
    locked_until: Option<i64>,
}

impl FromRow for Failures {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(Failures {
            failures: r.i64("failures")?,
            first_at: r.i64("first_at")?,
            locked_until: r.opt_i64("locked_until")?,
        })
    }
}

/// Until when sign-in for `key` is refused, if it is at `now`.
pub async fn locked_until(db: &Db, key: &str, now: Timestamp) -> Result<Option<i64>> {
    let f: Option<Failures> = db
        .fetch_optional(
            Q::new("SELECT failures, first_at, locked_until FROM signin_failures WHERE key = $1")
                .bind(key),
        )
        .await?;
    let at = to_micros(now);
    Ok(f.and_then(|f| f.locked_until).filter(|&u| u > at))
}

/// The throttle: `max` failures within `window` lock the key for `lock`.
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    pub max: i64,
    pub window: std::time::Duration,
    pub lock: std::time::Duration,
}

/// Counts a failed sign-in; returns the lock's end when this failure set one.
pub async fn record_failure(
    tx: &mut Tx,
    key: &str,
    t: Throttle,
    now: Timestamp,
) -> Result<Option<i64>> {
    let at = to_micros(now);
    let f: Option<Failures> = tx
        .fetch_optional(
            Q::new("SELECT failures, first_at, locked_until FROM signin_failures WHERE key = $1")
                .bind(key),
        )
        .await?;
    let (failures, first_at) = match f {
        Some(f) if at - f.first_at < micros(t.window) => (f.failures + 1, f.first_at),
        _ => (1, at),
    };
    let locked = (failures >= t.max).then(|| at.saturating_add(micros(t.lock)));
    // A lock starts the count again once it ends.
    let (stored_failures, stored_first) = if locked.is_some() {
        (0, at)
    } else {
        (failures, first_at)
    };
    tx.execute(
        Q::new(
            "INSERT INTO signin_failures (key, failures, first_at, locked_until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, first_at = excluded.first_at, \
             locked_until = excluded.locked_until",
        )
        .bind(key)
        .bind(stored_failures)
        .bind(stored_first)
        .bind(locked),
    )
    .await?;
    Ok(locked)
}

pub async fn clear_failures(tx: &mut Tx, key: &str) -> Result<()> {
    tx.execute(Q::new("DELETE FROM signin_failures WHERE key = $1").bind(key))
        .await?;
    Ok(())
}
