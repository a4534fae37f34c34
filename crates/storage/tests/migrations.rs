//! Both backends must carry the same migrations, so a schema change never lands on one only.

use std::collections::BTreeSet;
use std::path::Path;

fn versions(dir: &str) -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect()
}

#[test]
fn sqlite_and_postgres_have_the_same_migrations() {
    let sqlite = versions("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, versions("postgres"));
}

#[test]
fn every_sqlite_migration_file_is_embedded() {
    let embedded: BTreeSet<String> = riskdesk_storage::SQLITE_MIGRATIONS
        .iter()
        .map(|(_, name, _)| name.to_string())
        .collect();
    assert_eq!(embedded, versions("sqlite"));
    for (i, (version, name, _)) in riskdesk_storage::SQLITE_MIGRATIONS.iter().enumerate() {
        assert_eq!(*version, i as i64 + 1, "{name}: versions run 1, 2, 3, …");
        assert!(name.starts_with(&format!("{version:04}_")), "{name}");
    }
}

#[tokio::test]
async fn migrating_twice_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("m.db").to_string_lossy().into_owned();
    let db = riskdesk_storage::Db::connect(&url, &Default::default())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();
    assert_eq!(riskdesk_storage::tenants::list(&db).await.unwrap().len(), 0);
}

/// Migration 0013 makes "one open case per customer" a unique index. A book that holds two
/// open cases of one customer from an earlier version keeps the oldest open; the others are
/// dismissed, each with a timeline entry naming the kept case; and the index then holds.
#[tokio::test]
async fn migration_0013_folds_duplicate_open_cases_into_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let (tenant, customer) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let cases: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE _riskdesk_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)")
            .unwrap();
        for (version, name, sql) in &riskdesk_storage::SQLITE_MIGRATIONS[..12] {
            c.execute_batch(sql).unwrap();
            c.execute(
                "INSERT INTO _riskdesk_migrations VALUES (?1, ?2, 0)",
                rusqlite::params![version, name],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO tenants (id, slug, name, created_at) VALUES (?1, 'x', 'x', 0)",
            [tenant.as_bytes().as_slice()],
        )
        .unwrap();
        for (i, (id, status)) in cases
            .iter()
            .zip(["open", "investigating", "resolved"])
            .enumerate()
        {
            c.execute(
                "INSERT INTO cases (id, tenant_id, customer_id, kind, severity, status, title, opened_at, due_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'alert', 'high', ?4, 'c', ?5, 1000, ?5)",
                rusqlite::params![id.as_bytes().as_slice(), tenant.as_bytes().as_slice(), customer.as_bytes().as_slice(), status, 100 + i as i64],
            )
            .unwrap();
        }
    }
    let db = riskdesk_storage::Db::connect(&path.to_string_lossy(), &Default::default())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    drop(db);

    let c = rusqlite::Connection::open(&path).unwrap();
    let statuses: Vec<String> = c
        .prepare("SELECT status FROM cases ORDER BY opened_at")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(statuses, ["open", "dismissed", "resolved"]);
    let (case_id, ref_id, data): (Vec<u8>, Vec<u8>, String) = c
        .query_row(
            "SELECT case_id, ref_id, data_json FROM case_entries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(case_id, cases[1].as_bytes());
    assert_eq!(ref_id, cases[0].as_bytes());
    assert_eq!(data, r#"{"from":"investigating","to":"dismissed"}"#);
    let second_open = c.execute(
        "UPDATE cases SET status = 'open' WHERE id = ?1",
        [cases[2].as_bytes().as_slice()],
    );
    assert!(
        second_open.is_err(),
        "the unique index refuses a second open case"
    );
}
