//! Staff sessions and sign-in throttling, on the clock given: a session lives until its idle
//! or its absolute expiry (touching it moves the idle one, never past the absolute one), a
//! revoked or disabled one is gone at once, and failed sign-ins lock an email for a while.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use riskdesk_domain::{Role, TenantSlug};
use riskdesk_storage::staff::{self, NewSession, NewUser, Throttle, UserChange};
use riskdesk_storage::{Db, DbOptions, tenants};

async fn fresh_db(dir: &tempfile::TempDir) -> Db {
    let url = dir.path().join("s.db").to_string_lossy().into_owned();
    let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
    db.migrate().await.unwrap();
    db
}

fn at(mins: i64) -> Timestamp {
    "2026-12-01T09:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(mins)
}

#[tokio::test]
async fn sessions_end_at_idle_and_absolute_expiry_and_when_revoked_or_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(&dir).await;
    let mut tx = db.begin().await.unwrap();
    let t = tenants::insert(&mut tx, &TenantSlug::parse("acme").unwrap(), "Acme", at(0))
        .await
        .unwrap();
    let u = staff::create_user(
        &mut tx,
        &NewUser {
            tenant: t.tenant_id(),
            email: "ana@example.com",
            name: "Ana",
            role: Role::Analyst,
            password_hash: None,
            locale: "en",
        },
        at(0),
    )
    .await
    .unwrap();
    let new = |ua| NewSession {
        user: &u,
        locale: "en",
        idle: Duration::from_secs(30 * 60),
        absolute: Duration::from_secs(2 * 3600),
        user_agent: ua,
        ip: None,
    };
    let (s1, secret1) = staff::create_session(&mut tx, &new(Some("a")), at(0))
        .await
        .unwrap();
    let (_, secret2) = staff::create_session(&mut tx, &new(Some("b")), at(0))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Only the SHA-256 of the secret is stored: the secret itself finds the session.
    assert!(
        staff::session_by_secret(&db, &secret1, at(29))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        staff::session_by_secret(&db, &format!("{secret1}x"), at(1))
            .await
            .unwrap()
            .is_none()
    );
    // Idle for 30 minutes: ended.
    assert!(
        staff::session_by_secret(&db, &secret1, at(30))
            .await
            .unwrap()
            .is_none()
    );
    // Touched at minute 20, it lives until minute 50; touching never passes the absolute
    // expiry (two hours).
    for m in [20, 45, 70, 95, 115] {
        let mut tx = db.begin().await.unwrap();
        staff::touch_session(&mut tx, s1.id, Duration::from_secs(30 * 60), at(m))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    assert!(
        staff::session_by_secret(&db, &secret1, at(119))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        staff::session_by_secret(&db, &secret1, at(120))
            .await
            .unwrap()
            .is_none()
    );
    // Revoked: gone at once, the other session untouched until the account is disabled.
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        staff::revoke_session(&mut tx, s1.id, at(1)).await.unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert!(
        staff::session_by_secret(&db, &secret1, at(2))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        staff::session_by_secret(&db, &secret2, at(2))
            .await
            .unwrap()
            .is_some()
    );
    let mut tx = db.begin().await.unwrap();
    staff::update_user(
        &mut tx,
        t.tenant_id(),
        u.id,
        &UserChange {
            disabled: Some(true),
            ..Default::default()
        },
        at(3),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(
        staff::session_by_secret(&db, &secret2, at(4))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn failed_sign_ins_lock_the_email_for_a_while() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(&dir).await;
    let t = Throttle {
        max: 3,
        window: Duration::from_secs(15 * 60),
        lock: Duration::from_secs(10 * 60),
    };
    let fail = |m: i64| {
        let db = db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            let r = staff::record_failure(&mut tx, "ana@example.com", t, at(m))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            r
        }
    };
    assert_eq!(fail(0).await, None);
    assert_eq!(fail(1).await, None);
    // Failures spread over more than the window do not add up.
    assert_eq!(fail(20).await, None);
    assert_eq!(fail(21).await, None);
    let locked = fail(22)
        .await
        .expect("the third failure within 15 minutes locks");
    assert_eq!(locked, riskdesk_storage::time::to_micros(at(32)));
    assert!(
        staff::locked_until(&db, "ana@example.com", at(31))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        staff::locked_until(&db, "ana@example.com", at(32))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        staff::locked_until(&db, "bob@example.com", at(25))
            .await
            .unwrap()
            .is_none()
    );
    // A success clears the count.
    let mut tx = db.begin().await.unwrap();
    staff::clear_failures(&mut tx, "ana@example.com")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(fail(40).await, None);
}
