//! SQLite group commit: units of work that overlap share a COMMIT, but each keeps its own
//! fate — a unit that fails or is dropped rolls back alone, and every committed unit is
//! visible (durable) once its `commit()` returns.

use std::sync::Arc;

use riskdesk_domain::TenantSlug;
use riskdesk_storage::{Db, DbOptions, tenants};

async fn fresh_db(dir: &tempfile::TempDir) -> Db {
    let url = dir.path().join("g.db").to_string_lossy().into_owned();
    let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
    db.migrate().await.unwrap();
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_dropped_units_roll_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(fresh_db(&dir).await);
    let now = jiff::Timestamp::now();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            // Every third unit reuses a slug another unit also inserts: one of each pair fails
            // on the unique constraint; every fifth unit is abandoned after writing.
            let slug = if i % 3 == 0 {
                "shared".to_owned()
            } else {
                format!("t{i}")
            };
            let inserted =
                tenants::insert(&mut tx, &TenantSlug::parse(&slug).unwrap(), "x", now).await;
            match inserted {
                Err(e) => {
                    assert!(e.to_string().contains("already exists"), "{e}");
                    drop(tx);
                    "conflict"
                }
                Ok(_) if i % 5 == 1 => {
                    drop(tx);
                    "dropped"
                }
                Ok(_) => {
                    tx.commit().await.unwrap();
                    "committed"
                }
            }
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let committed = outcomes.iter().filter(|o| **o == "committed").count();
    let stored = tenants::list(&db).await.unwrap();
    assert_eq!(
        stored.len(),
        committed,
        "exactly the committed units are stored: {outcomes:?}"
    );
    assert_eq!(stored.iter().filter(|t| t.slug == "shared").count(), 1);
    for (i, o) in outcomes.iter().enumerate() {
        let slug = format!("t{i}");
        if i % 3 != 0 {
            assert_eq!(
                stored.iter().any(|t| t.slug == slug),
                *o == "committed",
                "{slug}: {o}"
            );
        }
    }
    // And it survives a reopen (it was committed, not just visible to this connection).
    drop(db);
    let reopened = fresh_db(&dir).await;
    assert_eq!(tenants::list(&reopened).await.unwrap().len(), committed);
}

/// A unit alone in its batch runs without a savepoint: dropping it must still undo exactly it,
/// and the writer must be usable afterwards.
#[tokio::test]
async fn a_lone_unit_dropped_after_writing_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(&dir).await;
    let now = jiff::Timestamp::now();
    let mut tx = db.begin().await.unwrap();
    tenants::insert(&mut tx, &TenantSlug::parse("kept").unwrap(), "x", now)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.begin().await.unwrap();
    tenants::insert(&mut tx, &TenantSlug::parse("dropped").unwrap(), "x", now)
        .await
        .unwrap();
    drop(tx);

    let mut tx = db.begin().await.unwrap();
    let err = tenants::insert(&mut tx, &TenantSlug::parse("kept").unwrap(), "x", now).await;
    assert!(err.is_err(), "a failing statement leaves the unit usable");
    tenants::insert(&mut tx, &TenantSlug::parse("after").unwrap(), "x", now)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let slugs: Vec<String> = tenants::list(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.slug)
        .collect();
    assert_eq!(slugs.len(), 2, "{slugs:?}");
    assert!(slugs.contains(&"kept".to_owned()) && slugs.contains(&"after".to_owned()));
}

/// Commits are copied from the WAL into the database file by the checkpoint thread, not left
/// for the writer: the writer's own checkpoint only starts at 10,000 WAL pages, far more than
/// this schema and a few tenants take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_thread_copies_commits_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(&dir).await;
    let file = dir.path().join("g.db");
    let pages = || {
        std::fs::metadata(&file)
            .map(|m| m.len() / 4096)
            .unwrap_or(0)
    };
    let before = pages();
    assert!(
        before < 20,
        "the schema is still in the WAL: {before} pages"
    );
    let now = jiff::Timestamp::now();
    for i in 0..20 {
        let mut tx = db.begin().await.unwrap();
        tenants::insert(
            &mut tx,
            &TenantSlug::parse(&format!("c{i}")).unwrap(),
            "x",
            now,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    // The schema alone is dozens of pages; the file grows once they are checkpointed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pages() < 20 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(pages() >= 20, "database file {before} → {} pages", pages());
    assert_eq!(tenants::list(&db).await.unwrap().len(), 20);
}

/// Interactive units go before bulk ones: with a bulk unit holding the writer and another bulk
/// unit waiting, an interactive unit that arrives later still gets the writer first; and both
/// bulk units commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_unit_goes_before_a_waiting_bulk_unit() {
    interactive_goes_first(true).await;
}

/// The same when the writer is held by an interactive unit: no interactive unit waits when the
/// bulk unit arrives, so it queues for the writer, and still lets the later interactive unit go
/// first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_unit_already_queued_lets_a_later_interactive_unit_go_first() {
    interactive_goes_first(false).await;
}

/// A unit holds the writer (`bulk_holder`: a bulk one); a bulk unit arrives, then an
/// interactive one; the interactive unit must get the writer first.
async fn interactive_goes_first(bulk_holder: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(fresh_db(&dir).await);
    let now = jiff::Timestamp::now();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let holder = if bulk_holder {
        db.begin_bulk().await.unwrap()
    } else {
        db.begin().await.unwrap()
    };
    let unit = |name: &'static str, bulk: bool| {
        let (db, order) = (db.clone(), order.clone());
        tokio::spawn(async move {
            let mut tx = if bulk {
                db.begin_bulk().await.unwrap()
            } else {
                db.begin().await.unwrap()
            };
            order.lock().unwrap().push(name);
            tenants::insert(&mut tx, &TenantSlug::parse(name).unwrap(), name, now)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        })
    };
    let bulk = unit("bulk-waiting", true);
    // The bulk unit waits (for its turn, or for the writer) before the interactive one arrives.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let interactive = unit("interactive", false);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(order.lock().unwrap().is_empty(), "the writer is held");
    holder.commit().await.unwrap();
    interactive.await.unwrap();
    bulk.await.unwrap();
    assert_eq!(*order.lock().unwrap(), ["interactive", "bulk-waiting"]);
    assert_eq!(tenants::list(&db).await.unwrap().len(), 2);
}

/// An interactive unit's COMMIT does not wait for a bulk unit queued behind it: no bulk unit
/// joins a batch an interactive unit is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_commit_does_not_wait_for_the_bulk_unit_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(fresh_db(&dir).await);
    let now = jiff::Timestamp::now();
    let slug = |s: &str| TenantSlug::parse(s).unwrap();
    // A bulk unit holds the writer; an interactive unit waits for it.
    let mut holder = db.begin_bulk().await.unwrap();
    tenants::insert(&mut holder, &slug("bulk-first"), "x", now)
        .await
        .unwrap();
    let (db2, db3) = (db.clone(), db.clone());
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (joined_tx, joined_rx) = tokio::sync::oneshot::channel::<()>();
    let interactive = tokio::spawn(async move {
        let mut tx = db2.begin().await.unwrap();
        // The next bulk unit queues behind this one before it commits.
        let _ = go_rx.await;
        tenants::insert(&mut tx, &slug("interactive"), "x", now)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let first = tokio::spawn(holder.commit());
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // A second bulk unit: once it has the writer it holds it until told to commit.
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let bulk = tokio::spawn(async move {
        let mut tx = db3.begin_bulk().await.unwrap();
        let _ = joined_tx.send(());
        tenants::insert(&mut tx, &slug("bulk-second"), "x", now)
            .await
            .unwrap();
        let _ = release_rx.await;
        tx.commit().await.unwrap();
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let _ = go_tx.send(());
    // The interactive unit commits (with the first bulk unit's batch) while the second bulk
    // unit has not committed.
    tokio::time::timeout(std::time::Duration::from_secs(5), interactive)
        .await
        .expect("the interactive commit waited for the bulk unit behind it")
        .unwrap();
    first.await.unwrap().unwrap();
    joined_rx.await.unwrap();
    let _ = release_tx.send(());
    bulk.await.unwrap();
    assert_eq!(tenants::list(&db).await.unwrap().len(), 3);
}
