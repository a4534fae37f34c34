//! SQLite migrations (PostgreSQL's run through `sqlx::migrate!`). Same files, same versions;
//! applied in order, each in its own transaction, recorded in `_riskdesk_migrations`.

use crate::Result;

/// (version, file name, SQL). A test checks this lists every file in `migrations/sqlite`.
pub const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_foundation.sql",
        include_str!("../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "0002_onboarding.sql",
        include_str!("../migrations/sqlite/0002_onboarding.sql"),
    ),
    (
        3,
        "0003_verification.sql",
        include_str!("../migrations/sqlite/0003_verification.sql"),
    ),
    (
        4,
        "0004_monitoring.sql",
        include_str!("../migrations/sqlite/0004_monitoring.sql"),
    ),
    (
        5,
        "0005_rules.sql",
        include_str!("../migrations/sqlite/0005_rules.sql"),
    ),
    (
        6,
        "0006_billing.sql",
        include_str!("../migrations/sqlite/0006_billing.sql"),
    ),
    (
        7,
        "0007_spend_anomaly.sql",
        include_str!("../migrations/sqlite/0007_spend_anomaly.sql"),
    ),
    (
        8,
        "0008_signup_rules.sql",
        include_str!("../migrations/sqlite/0008_signup_rules.sql"),
    ),
    (
        9,
        "0009_response.sql",
        include_str!("../migrations/sqlite/0009_response.sql"),
    ),
    (
        10,
        "0010_blocklist.sql",
        include_str!("../migrations/sqlite/0010_blocklist.sql"),
    ),
    (
        11,
        "0011_provider_poll.sql",
        include_str!("../migrations/sqlite/0011_provider_poll.sql"),
    ),
    (
        12,
        "0012_signup_keys_without_rowid.sql",
        include_str!("../migrations/sqlite/0012_signup_keys_without_rowid.sql"),
    ),
    (
        13,
        "0013_one_open_case_per_customer.sql",
        include_str!("../migrations/sqlite/0013_one_open_case_per_customer.sql"),
    ),
    (
        14,
        "0014_staff_users.sql",
        include_str!("../migrations/sqlite/0014_staff_users.sql"),
    ),
    (
        15,
        "0015_several_processes.sql",
        include_str!("../migrations/sqlite/0015_several_processes.sql"),
    ),
    (
        16,
        "0016_event_stream.sql",
        include_str!("../migrations/sqlite/0016_event_stream.sql"),
    ),
    (
        17,
        "0017_audit_lanes.sql",
        include_str!("../migrations/sqlite/0017_audit_lanes.sql"),
    ),
    (
        18,
        "0018_open_invoices.sql",
        include_str!("../migrations/sqlite/0018_open_invoices.sql"),
    ),
    (
        19,
        "0019_provider_consent.sql",
        include_str!("../migrations/sqlite/0019_provider_consent.sql"),
    ),
    (
        20,
        "0020_no_tenant_fks.sql",
        include_str!("../migrations/sqlite/0020_no_tenant_fks.sql"),
    ),
];

pub(crate) fn sqlite(c: &rusqlite::Connection) -> Result<()> {
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS _riskdesk_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )?;
    for (version, name, sql) in SQLITE_MIGRATIONS {
        let done: i64 = c.query_row(
            "SELECT COUNT(*) FROM _riskdesk_migrations WHERE version = ?1",
            [version],
            |r| r.get(0),
        )?;
        if done > 0 {
            continue;
        }
        c.execute_batch("BEGIN IMMEDIATE")?;
        let applied = c.execute_batch(sql).and_then(|_| {
            c.execute(
                "INSERT INTO _riskdesk_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![version, name, jiff::Timestamp::now().as_microsecond()],
            )
        });
        match applied {
            Ok(_) => c.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = c.execute_batch("ROLLBACK");
                return Err(e.into());
            }
        }
    }
    Ok(())
}
