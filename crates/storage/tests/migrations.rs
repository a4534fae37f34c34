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
