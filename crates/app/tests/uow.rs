//! The unit of work: hooks run once at the right moment, and events reach the wiring inside
//! the emitter's transaction.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use riskdesk_app::kernel::ports::{
    Approvals, BoxFuture, DunningProposal, EnforcementProposal, Hooks,
};
use riskdesk_app::kernel::{AppError, Ctx, Event, ResponseSettings, Uow};
use riskdesk_domain::{CustomerId, TenantId};
use riskdesk_storage::{Db, DbOptions};

/// Records what it was told, and checks it can use the emitter's unit of work.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
}

impl Hooks for Recorder {
    fn react<'a>(
        &'a self,
        uow: &'a mut Uow,
        event: &'a Event<'a>,
    ) -> BoxFuture<'a, Result<(), AppError>> {
        Box::pin(async move {
            let tenants = riskdesk_storage::tenants::by_slug_tx(uow, "default")
                .await
                .map(|t| t.is_some());
            self.seen.lock().unwrap().push(format!(
                "{} ({:?}, min severity {})",
                event.name(),
                tenants,
                uow.response_settings().case_min_severity
            ));
            Ok(())
        })
    }
}

struct NoApprovals;

impl Approvals for NoApprovals {
    fn propose_enforcement<'a>(
        &'a self,
        _: &'a mut Uow,
        _: EnforcementProposal<'a>,
    ) -> BoxFuture<'a, Result<Vec<uuid::Uuid>, AppError>> {
        Box::pin(async { Ok(vec![]) })
    }
    fn propose_dunning_lever<'a>(
        &'a self,
        _: &'a mut Uow,
        _: DunningProposal<'a>,
    ) -> BoxFuture<'a, Result<bool, AppError>> {
        Box::pin(async { Ok(false) })
    }
    fn withdraw_dunning_proposals<'a>(
        &'a self,
        _: &'a mut Uow,
        _: TenantId,
        _: &'a riskdesk_domain::audit::Actor,
        _: uuid::Uuid,
        _: jiff::Timestamp,
    ) -> BoxFuture<'a, Result<(), AppError>> {
        Box::pin(async { Ok(()) })
    }
}

async fn ctx(dir: &tempfile::TempDir, hooks: Arc<Recorder>) -> Arc<Ctx> {
    let path = dir.path().join("uow.db");
    let db = Db::connect(&path.to_string_lossy(), &DbOptions::default())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    Arc::new(Ctx::new(
        db,
        ResponseSettings {
            case_min_severity: "high".into(),
            ..Default::default()
        },
        hooks,
        Arc::new(NoApprovals),
    ))
}

fn counter() -> (Arc<AtomicUsize>, impl FnOnce() + Send + 'static) {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    (n, move || {
        m.fetch_add(1, Ordering::SeqCst);
    })
}

#[tokio::test]
async fn after_commit_runs_once_on_commit_and_on_rollback_never() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(&dir, Default::default()).await;
    let mut uow = ctx.begin().await.unwrap();
    let (committed, on_commit) = counter();
    let (rolled_back, on_rollback) = counter();
    uow.after_commit(on_commit);
    uow.on_rollback(on_rollback);
    assert_eq!(committed.load(Ordering::SeqCst), 0, "not before the commit");
    uow.commit().await.unwrap();
    assert_eq!(committed.load(Ordering::SeqCst), 1);
    assert_eq!(rolled_back.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn on_rollback_runs_once_when_the_unit_of_work_is_dropped_uncommitted() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(&dir, Default::default()).await;
    let mut uow = ctx.begin().await.unwrap();
    let (committed, on_commit) = counter();
    let (rolled_back, on_rollback) = counter();
    uow.after_commit(on_commit);
    uow.on_rollback(on_rollback);
    drop(uow);
    assert_eq!(rolled_back.load(Ordering::SeqCst), 1);
    assert_eq!(committed.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_event_reaches_the_hooks_inside_the_emitters_unit_of_work() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = Arc::new(Recorder::default());
    let ctx = ctx(&dir, hooks.clone()).await;
    let mut uow = ctx.begin().await.unwrap();
    uow.emit(Event::CustomerExternalIdSet {
        tenant: TenantId(uuid::Uuid::now_v7()),
        at: jiff::Timestamp::now(),
        customer: CustomerId(uuid::Uuid::now_v7()),
        external_id: "C-1",
    })
    .await
    .unwrap();
    // Dispatched at once (not at commit), with this application's settings.
    assert_eq!(
        *hooks.seen.lock().unwrap(),
        vec!["customer.external_id_set (Ok(false), min severity high)".to_owned()]
    );
    drop(uow);
}
