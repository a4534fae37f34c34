//! SQLite's single writer, with group commit.
//!
//! SQLite allows one writer, and with `synchronous=FULL` every COMMIT waits for an fsync
//! (≈0.4 ms here), which alone caps one-transaction-per-request writes near 1,000/s. So units
//! of work that arrive while another holds the writer share one database transaction: each unit
//! that joins a batch runs inside its own SAVEPOINT (so a failing unit rolls back alone; the
//! batch's first unit needs none: rolling back the transaction undoes exactly it), and the batch is
//! committed — one fsync — when no further unit is waiting or the batch is full. Every unit
//! waits for that COMMIT before it returns: nothing is acknowledged before it is durable, and a
//! failed COMMIT fails every unit of the batch.
//!
//! Interactive units go first. A *bulk* unit (a part of an event batch: [`Writer::begin`] with
//! `bulk`) waits for its turn among bulk units, then until no interactive unit is waiting — for
//! at most the writer's *bulk yield* (`DbOptions::sqlite_bulk_yield`), so a steady stream of
//! interactive units cannot starve ingest — and only then queues for the writer. If it gets the
//! writer while interactive units queued behind it (within the same yield), it lets go and waits
//! again. It gives the turn up as soon as it lets go of the writer after its work. So a sign-up
//! assessment arriving while events stream in waits for the bulk unit that holds the writer
//! (bulk units are kept small: see `monitoring::INGEST_PART`), not for one queued before it.
//!
//! Bulk units share COMMITs with each other, and an interactive unit may join a batch of bulk
//! units. A batch holding an interactive unit is left open for interactive units only, and no
//! bulk unit joins it: otherwise the interactive unit's COMMIT would wait for the bulk unit's
//! work too. Measured beside full-speed ingest, the two rules took the sign-up p50 from
//! 25–29 ms to 12 ms and its p99 from 53–56 ms to 39 ms (BENCHMARKS.md, 2026-12-07).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, Notify, OwnedMutexGuard, watch};

use crate::{Result, StorageError};

/// WAL pages past which the writer checkpoints itself (SQLite's default is 1,000) when a
/// checkpointer thread runs.
const WRITER_CHECKPOINT_PAGES: i64 = 10_000;
/// How long the checkpointer lets commits gather after a nudge.
const CHECKPOINT_GATHER: Duration = Duration::from_millis(5);

/// Units sharing one COMMIT at most.
const MAX_BATCH: usize = 256;
/// A unit whose batch is left open for others flushes it itself after this long (covers a
/// waiting unit that was cancelled before it could).
const FLUSH_AFTER: Duration = Duration::from_millis(2);

type Outcome = Option<std::result::Result<(), String>>;

struct Batch {
    id: u64,
    units: usize,
    /// Whether an interactive unit is in it: it is then left open for interactive units only.
    interactive: bool,
    done: watch::Sender<Outcome>,
}

pub(crate) struct WriterState {
    pub(crate) conn: rusqlite::Connection,
    batch: Option<Batch>,
    checkpointer: Checkpointer,
}

pub(crate) struct Writer {
    state: Arc<AsyncMutex<WriterState>>,
    /// Units waiting for the writer: while any wait, a finished unit leaves the batch open.
    waiting: AtomicUsize,
    next_batch: AtomicU64,
    /// Interactive units waiting for the writer: bulk units wait until there are none.
    interactive: AtomicUsize,
    /// Tells bulk units the last waiting interactive unit got the writer.
    interactive_gone: Notify,
    /// Bulk units take turns: one at a time waits for (or holds) the writer.
    bulk_turn: Arc<AsyncMutex<()>>,
    /// How long a bulk unit lets waiting interactive units go first (None: while any wait).
    bulk_yield: Option<Duration>,
}

/// Counts an interactive unit as waiting until it has the writer (or its future is dropped).
struct InteractiveWaiting<'a>(&'a Writer);
impl Drop for InteractiveWaiting<'_> {
    fn drop(&mut self) {
        if self.0.interactive.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.interactive_gone.notify_waiters();
        }
    }
}

/// Decrements the waiting count even if the waiting future is dropped.
struct Waiting<'a>(&'a AtomicUsize);
impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Writer {
    /// `checkpointer`: a second connection, which copies the WAL back into the database after
    /// commits on a thread of its own (see [`Checkpointer`]).
    pub(crate) fn new(
        conn: rusqlite::Connection,
        checkpointer: rusqlite::Connection,
        bulk_yield: Option<Duration>,
    ) -> Result<Arc<Self>> {
        // The writer checkpoints itself only when the WAL outgrows this (a safety net: the
        // checkpointer thread has usually copied all but the last commit by then).
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        let checkpointer = Checkpointer::start(checkpointer)?;
        Ok(Arc::new(Writer {
            state: Arc::new(AsyncMutex::new(WriterState {
                conn,
                batch: None,
                checkpointer,
            })),
            waiting: AtomicUsize::new(0),
            next_batch: AtomicU64::new(1),
            interactive: AtomicUsize::new(0),
            interactive_gone: Notify::new(),
            bulk_turn: Arc::new(AsyncMutex::new(())),
            bulk_yield,
        }))
    }

    /// Starts a unit of work: joins the open batch or opens one. A `bulk` unit lets every
    /// interactive unit waiting for the writer go first (see the module documentation).
    pub(crate) async fn begin(self: &Arc<Self>, bulk: bool) -> Result<SqliteTx> {
        let mut turn = None;
        // Until when a bulk unit lets interactive units go first (None: no limit).
        let mut yield_until = None;
        if bulk {
            turn = Some(self.bulk_turn.clone().lock_owned().await);
            yield_until = self.bulk_yield.map(|d| tokio::time::Instant::now() + d);
            self.let_interactive_go(yield_until).await;
        }
        let mut g = loop {
            let g = {
                self.waiting.fetch_add(1, Ordering::SeqCst);
                let _w = Waiting(&self.waiting);
                let _i = (!bulk).then(|| {
                    self.interactive.fetch_add(1, Ordering::SeqCst);
                    InteractiveWaiting(self)
                });
                self.state.clone().lock_owned().await
            };
            if !bulk {
                break g;
            }
            // Interactive units that queued for the writer after this bulk unit did are behind
            // it in the lock's queue: it steps out of the queue and lets them go first.
            let yielding = yield_until.is_none_or(|t| tokio::time::Instant::now() < t);
            if yielding && self.interactive.load(Ordering::SeqCst) > 0 {
                drop(g);
                self.let_interactive_go(yield_until).await;
                continue;
            }
            // A bulk unit never joins a batch an interactive unit is in: that unit's COMMIT
            // would wait for the bulk unit's whole work. The batch is committed first.
            if g.batch.as_ref().is_some_and(|b| b.interactive) {
                // Its units hear the outcome; this unit starts a batch of its own either way.
                if let Err(e) = flush(g).await {
                    tracing::warn!(error = %e, "commit of a batch failed");
                }
                continue;
            }
            break g;
        };
        if g.batch.is_none() {
            g.conn.execute_batch("BEGIN IMMEDIATE")?;
            let (done, _) = watch::channel(None);
            g.batch = Some(Batch {
                id: self.next_batch.fetch_add(1, Ordering::SeqCst),
                units: 0,
                interactive: !bulk,
                done,
            });
            // The first unit of a batch is the whole transaction so far: if it fails, rolling
            // back the transaction undoes exactly it. No savepoint, so no sub-journal copy of
            // every page it touches (measured: ~10 % of a large ingest unit).
            return Ok(SqliteTx {
                guard: Some(g),
                writer: self.clone(),
                savepoint: false,
                bulk_turn: turn,
            });
        }
        if let Err(e) = g.conn.execute_batch("SAVEPOINT uow") {
            abandon_if_empty(&mut g);
            return Err(e.into());
        }
        if !bulk && let Some(b) = g.batch.as_mut() {
            b.interactive = true;
        }
        Ok(SqliteTx {
            guard: Some(g),
            writer: self.clone(),
            savepoint: true,
            bulk_turn: turn,
        })
    }

    /// Waits until no interactive unit is waiting for the writer, or until `until`.
    async fn let_interactive_go(&self, until: Option<tokio::time::Instant>) {
        let gone = async {
            loop {
                let gone = self.interactive_gone.notified();
                tokio::pin!(gone);
                gone.as_mut().enable();
                if self.interactive.load(Ordering::SeqCst) == 0 {
                    break;
                }
                gone.await;
            }
        };
        match until {
            None => gone.await,
            Some(t) => {
                let _ = tokio::time::timeout_at(t, gone).await;
            }
        }
    }

    /// The writer with no batch open (for migrations and maintenance).
    pub(crate) async fn lock_idle(self: &Arc<Self>) -> Result<OwnedMutexGuard<WriterState>> {
        let g = self.state.clone().lock_owned().await;
        if g.batch.is_some() {
            flush(g).await?;
            return Box::pin(self.lock_idle()).await;
        }
        Ok(g)
    }
}

/// Rolls back a batch no unit has finished in, so the write lock is not held for nothing.
fn abandon_if_empty(g: &mut WriterState) {
    if g.batch.as_ref().is_some_and(|b| b.units == 0) {
        let _ = g.conn.execute_batch("ROLLBACK");
        g.batch = None;
    }
}

/// Commits the open batch (off the async workers: COMMIT fsyncs) and tells its units.
async fn flush(mut g: OwnedMutexGuard<WriterState>) -> Result<()> {
    let Some(batch) = g.batch.take() else {
        return Ok(());
    };
    let (g, r) = tokio::task::spawn_blocking(move || {
        let r = g.conn.execute_batch("COMMIT");
        if r.is_err() && !g.conn.is_autocommit() {
            let _ = g.conn.execute_batch("ROLLBACK");
        }
        (g, r)
    })
    .await
    .map_err(|e| StorageError::Config(format!("commit task failed: {e}")))?;
    if r.is_ok() {
        g.checkpointer.nudge();
    }
    drop(g);
    let outcome = r.as_ref().map(|_| ()).map_err(|e| e.to_string());
    let _ = batch.done.send(Some(outcome));
    Ok(r?)
}

/// A SQLite unit of work (a savepoint inside the writer's batch). Dropped uncommitted, it rolls
/// back its own changes only.
pub struct SqliteTx {
    guard: Option<OwnedMutexGuard<WriterState>>,
    writer: Arc<Writer>,
    /// Whether the unit runs in its own SAVEPOINT (it joined a batch others are in).
    savepoint: bool,
    /// A bulk unit's turn, given up with the writer (declared after `guard`: dropped after it).
    bulk_turn: Option<OwnedMutexGuard<()>>,
}

impl SqliteTx {
    pub(crate) fn conn(&self) -> &rusqlite::Connection {
        // `guard` is None only once commit has consumed the unit.
        &self.guard.as_ref().expect("unit of work in progress").conn
    }

    /// Finishes the unit and returns once the batch holding it is durable.
    pub(crate) async fn commit(mut self) -> Result<()> {
        let mut g = self
            .guard
            .take()
            .ok_or_else(|| StorageError::Config("unit of work already finished".into()))?;
        if g.conn.is_autocommit() {
            // A statement error ended the whole transaction (e.g. disk full): nothing to keep.
            g.batch = None;
            return Err(StorageError::Config(
                "the transaction was aborted by the database".into(),
            ));
        }
        if self.savepoint {
            g.conn.execute_batch("RELEASE uow")?;
        }
        let batch = g
            .batch
            .as_mut()
            .ok_or_else(|| StorageError::Config("no open batch".into()))?;
        batch.units += 1;
        let (id, units, mut rx) = (batch.id, batch.units, batch.done.subscribe());
        // A batch holding an interactive unit waits for interactive units only (a bulk unit
        // would not join it anyway: see `begin`).
        let waiting = if batch.interactive {
            self.writer.interactive.load(Ordering::SeqCst)
        } else {
            self.writer.waiting.load(Ordering::SeqCst)
        };
        if waiting == 0 || units >= MAX_BATCH {
            let r = flush(g).await;
            drop(self.bulk_turn.take());
            return r;
        }
        // Others are queued for the writer: let them join this batch; the last one commits.
        drop(g);
        drop(self.bulk_turn.take());
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    changed.map_err(|_| StorageError::Config("the batch was dropped before commit".into()))?;
                }
                _ = tokio::time::sleep(FLUSH_AFTER) => {
                    let g = self.writer.state.clone().lock_owned().await;
                    if g.batch.as_ref().is_some_and(|b| b.id == id) {
                        return flush(g).await;
                    }
                }
            }
            if let Some(outcome) = rx.borrow().clone() {
                return outcome.map_err(|e| StorageError::Config(format!("commit failed: {e}")));
            }
        }
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if let Some(g) = &mut self.guard {
            if g.conn.is_autocommit() {
                g.batch = None;
            } else if self.savepoint {
                if let Err(e) = g.conn.execute_batch("ROLLBACK TO uow; RELEASE uow") {
                    tracing::error!(error = %e, "rollback of a unit of work failed");
                }
            } else {
                // The batch's first unit: the transaction holds nothing else.
                if let Err(e) = g.conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %e, "rollback of a unit of work failed");
                }
                g.batch = None;
            }
            abandon_if_empty(g);
        }
    }
}

/// Copies the WAL back into the database file on a thread and connection of its own.
///
/// SQLite's automatic checkpoint runs inside the COMMIT that crosses `wal_autocheckpoint`
/// pages, on the writer, which then waits for it: measured on a 1M-event ingest, the writer
/// spent 15–30 % of its time there. A PASSIVE checkpoint never blocks the writer or readers,
/// so here it runs after commits on another core; the writer's own checkpoint remains as a
/// safety net at [`WRITER_CHECKPOINT_PAGES`] and then finds almost everything already copied.
/// Durability is unchanged: a commit is durable once its WAL frames are synced, whoever
/// checkpoints them later.
struct Checkpointer {
    /// `None` once dropping: the thread then ends.
    nudge: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Waits for the thread: a checkpoint in progress finishes and its connection closes before the
/// writer is gone, not after the process has moved on.
impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.nudge = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Checkpointer {
    fn start(conn: rusqlite::Connection) -> Result<Checkpointer> {
        let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                // Ends when the writer (the sender) is dropped.
                while nudged.recv().is_ok() {
                    std::thread::sleep(CHECKPOINT_GATHER);
                    while nudged.try_recv().is_ok() {}
                    let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                    });
                    match r {
                        Ok((log, copied)) => {
                            tracing::trace!(log, copied, "WAL checkpointed")
                        }
                        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                    }
                }
            })
            .map_err(|e| {
                StorageError::Config(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Checkpointer {
            nudge: Some(nudge),
            thread: Some(thread),
        })
    }

    /// Asks for a checkpoint soon (one pending request is enough).
    fn nudge(&self) {
        if let Some(n) = &self.nudge {
            let _ = n.try_send(());
        }
    }
}
