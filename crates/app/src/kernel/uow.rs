//! The unit of work: one storage transaction plus the application context it runs in.
//!
//! Every write of a use case happens inside one `Uow`: the change, its audit entry, the
//! outbox rows of its side effects and every in-transaction reaction to the events it emits
//! commit together or not at all. `Uow` derefs to the storage [`Tx`], so storage calls take it
//! as they took a `Tx`. A use case handed a `Uow` never commits it; whoever began it does
//! (a route through the idempotency record, a worker, the CLI).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use riskdesk_storage::{Db, StorageError, Tx};

use super::error::AppError;
use super::event::Event;
use super::ports::{Approvals, Hooks};
use super::settings::ResponseSettings;

/// What every unit of work of one application shares: the database, the settings the use
/// cases read and the wiring between capabilities. Built once, by [`crate::App`].
pub struct Ctx {
    pub db: Db,
    /// `[response]`: case thresholds, SLAs, where staff notices go.
    pub response: ResponseSettings,
    pub(crate) hooks: Arc<dyn Hooks>,
    pub(crate) approvals: Arc<dyn Approvals>,
}

impl Ctx {
    /// A context whose events go to `hooks` and whose proposals go to `approvals`.
    pub fn new(
        db: Db,
        response: ResponseSettings,
        hooks: Arc<dyn Hooks>,
        approvals: Arc<dyn Approvals>,
    ) -> Self {
        Self {
            db,
            response,
            hooks,
            approvals,
        }
    }

    /// Begins a unit of work.
    pub async fn begin(self: &Arc<Self>) -> Result<Uow, StorageError> {
        Ok(Uow {
            tx: Some(self.db.begin().await?),
            ctx: self.clone(),
            after_commit: Vec::new(),
            on_rollback: Vec::new(),
        })
    }

    /// Begins a unit of work holding `customer`'s billing lock (the one every change to its
    /// invoices, payments and wallet takes; on PostgreSQL taken in the `BEGIN`'s round trip).
    pub async fn begin_billing(
        self: &Arc<Self>,
        tenant: riskdesk_domain::TenantId,
        customer: uuid::Uuid,
    ) -> Result<Uow, StorageError> {
        let key = riskdesk_storage::billing::customer_lock_key(tenant, customer);
        Ok(Uow {
            tx: Some(self.db.begin_holding(&[key]).await?),
            ctx: self.clone(),
            after_commit: Vec::new(),
            on_rollback: Vec::new(),
        })
    }

    /// Begins a bulk unit of work (a part of an event batch): see `Db::begin_bulk`.
    pub async fn begin_bulk(self: &Arc<Self>) -> Result<Uow, StorageError> {
        Ok(Uow {
            tx: Some(self.db.begin_bulk().await?),
            ctx: self.clone(),
            after_commit: Vec::new(),
            on_rollback: Vec::new(),
        })
    }
}

type Hook = Box<dyn FnOnce() + Send>;

/// One transaction in an application context. See the module documentation.
pub struct Uow {
    tx: Option<Tx>,
    ctx: Arc<Ctx>,
    after_commit: Vec<Hook>,
    on_rollback: Vec<Hook>,
}

impl Uow {
    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }

    /// `[response]` settings of this application.
    pub fn response_settings(&self) -> &ResponseSettings {
        &self.ctx.response
    }

    /// Tells the other capabilities that `event` happened. Their in-transaction reactions
    /// run now, in this unit of work, in the order `wiring` declares; an error in one fails
    /// the unit of work like an error of the emitter's own.
    pub async fn emit(&mut self, event: Event<'_>) -> Result<(), AppError> {
        let hooks = self.ctx.hooks.clone();
        hooks.react(self, &event).await
    }

    /// The port through which a capability asks for an enforcement to be approved.
    pub fn approvals(&self) -> Arc<dyn Approvals> {
        self.ctx.approvals.clone()
    }

    /// Runs `f` once this unit of work has committed (never if it rolls back).
    pub fn after_commit(&mut self, f: impl FnOnce() + Send + 'static) {
        self.after_commit.push(Box::new(f));
    }

    /// Runs `f` if this unit of work is dropped uncommitted or its commit fails.
    pub fn on_rollback(&mut self, f: impl FnOnce() + Send + 'static) {
        self.on_rollback.push(Box::new(f));
    }

    /// Commits; then runs the `after_commit` hooks (or, if the commit failed, the
    /// `on_rollback` ones).
    pub async fn commit(mut self) -> Result<(), StorageError> {
        let tx = self.tx.take().expect("a unit of work commits once");
        match tx.commit().await {
            Ok(()) => {
                self.on_rollback.clear();
                for f in std::mem::take(&mut self.after_commit) {
                    f();
                }
                Ok(())
            }
            // Drop runs the rollback hooks.
            Err(e) => Err(e),
        }
    }
}

impl Drop for Uow {
    fn drop(&mut self) {
        for f in std::mem::take(&mut self.on_rollback) {
            f();
        }
    }
}

impl Deref for Uow {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        self.tx
            .as_ref()
            .expect("a unit of work is used before it commits")
    }
}

impl DerefMut for Uow {
    fn deref_mut(&mut self) -> &mut Tx {
        self.tx
            .as_mut()
            .expect("a unit of work is used before it commits")
    }
}
