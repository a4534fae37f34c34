//! The two backends behind one interface.
//!
//! SQLite runs through rusqlite **in the calling task**: a statement on a local WAL database
//! takes microseconds, far less than the thread hand-off per statement that an async driver
//! with a worker thread costs (measured: that hand-off was >50 % of CPU time; BENCHMARKS.md).
//! One writer connection serialises writers (SQLite allows one anyway) and group-commits
//! concurrent units of work (`sqlite_writer`); a few reader connections serve reads
//! concurrently (WAL). Only COMMIT, which fsyncs, leaves the task, to a blocking thread.
//!
//! PostgreSQL runs through sqlx's native pool.

use std::sync::Arc;
use std::time::Duration;

use crate::sqlite_writer::{SqliteTx, Writer};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::query::{FromRow, Q, Val, pg_query, sqlite_execute, sqlite_fetch};
use crate::{Result, StorageError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Connection settings beyond the URL.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// SQLite `synchronous`: `true` = FULL (every commit is fsynced before it returns: an
    /// acknowledged write survives power loss), `false` = NORMAL (survives a process crash only).
    pub sqlite_full_sync: bool,
    pub sqlite_read_connections: usize,
    pub pg_max_connections: u32,
    /// PostgreSQL schema to use (created if missing); tests give each run its own.
    pub pg_schema: Option<String>,
    /// SQLite: how long a bulk unit (a part of an event batch) lets interactive units waiting
    /// for the writer go first before it queues anyway (`None`: for as long as any wait).
    pub sqlite_bulk_yield: Option<std::time::Duration>,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            sqlite_full_sync: true,
            sqlite_read_connections: 4,
            pg_max_connections: 16,
            pg_schema: None,
            sqlite_bulk_yield: Some(DEFAULT_BULK_YIELD),
        }
    }
}

/// See [`DbOptions::sqlite_bulk_yield`] and BENCHMARKS.md ("interactive writes under ingest").
pub const DEFAULT_BULK_YIELD: std::time::Duration = std::time::Duration::from_millis(5);

pub struct SqliteStore {
    writer: Arc<Writer>,
    readers: Vec<std::sync::Mutex<rusqlite::Connection>>,
    path: String,
    full_sync: bool,
}

impl SqliteStore {
    /// A read-only connection of its own, for a long scan that must not hold a shared reader.
    pub(crate) fn open_reader(&self) -> Result<rusqlite::Connection> {
        open_sqlite(&self.path, self.full_sync, true)
    }
}

#[derive(Clone)]
pub enum Db {
    Sqlite(Arc<SqliteStore>),
    Postgres(PgPool),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Db::Sqlite(_) => "Db::Sqlite",
            Db::Postgres(_) => "Db::Postgres",
        })
    }
}

/// A unit of work: everything done through it commits or rolls back together.
pub enum Tx {
    Sqlite(SqliteTx),
    Postgres(PgTx),
}

/// A PostgreSQL transaction and the advisory locks it holds (taking one again costs nothing).
pub struct PgTx {
    t: sqlx::Transaction<'static, sqlx::Postgres>,
    held: Vec<String>,
    /// The audit lane this transaction appends to, once it has appended (see `audit`).
    pub(crate) lane: Option<crate::audit::LaneLease>,
    /// Set when what it wrote must not be committed (see `audit::append_after_reading`).
    poisoned: bool,
}

impl PgTx {
    fn new(t: sqlx::Transaction<'static, sqlx::Postgres>, held: Vec<String>) -> Self {
        PgTx {
            t,
            held,
            lane: None,
            poisoned: false,
        }
    }
}

fn open_sqlite(path: &str, full_sync: bool, read_only: bool) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    };
    let c = rusqlite::Connection::open_with_flags(path, flags)?;
    c.busy_timeout(Duration::from_secs(30))?;
    c.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536; PRAGMA mmap_size = 1073741824;",
        if full_sync { "FULL" } else { "NORMAL" }
    ))?;
    // mmap_size: pages are read from the mapped file instead of copied by read() (measured: a
    // backtest over 1M events 139k → 165k events/s).
    // Every distinct query text stays prepared (there are ~100; re-preparing costs more than running).
    c.set_prepared_statement_cache_capacity(512);
    Ok(c)
}

/// SQLite keeps allocation statistics behind a global mutex taken on every allocation (measured:
/// 5 % of an ingest's CPU). riskdesk never reads them. Must run before SQLite initialises, so
/// before the first connection; later calls are refused by SQLite and ignored here.
fn disable_sqlite_memstatus() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int; sqlite3_config is only unsafe because
        // it must not race with other SQLite use, and this runs before any connection exists
        // (Once serialises callers). A refused call (already initialised) changes nothing.
        unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            );
        }
    });
}

impl Db {
    /// Connects to `url`: `postgres://…`/`postgresql://…`, `sqlite:…`, or a plain file path
    /// (SQLite, created if missing).
    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut o: PgConnectOptions = url.parse()?;
            if let Some(schema) = &opts.pg_schema {
                // Create the schema first, over a plain connection, then pin search_path to it.
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect_with(&o).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{}\"",
                    schema.replace('"', "")
                )))
                .execute(&mut c)
                .await?;
                sqlx::Connection::close(c).await?;
                o = o.options([("search_path", schema.as_str())]);
            }
            // sqlx pings a connection before lending it (`test_before_acquire`, a round trip per
            // acquire). It stays on: that ping is also what sends the ROLLBACK a transaction
            // dropped uncommitted left pending on its connection — without it the abandoned
            // transaction stays open, holding its locks, until the connection is next used
            // (measured: a lease upsert held for minutes).
            let pool = PgPoolOptions::new()
                .max_connections(opts.pg_max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(o)
                .await?;
            return Ok(Db::Postgres(pool));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url)
            .to_owned();
        if path.is_empty() || path == ":memory:" {
            return Err(StorageError::Config(
                "in-memory SQLite is not supported: give a file path".into(),
            ));
        }
        disable_sqlite_memstatus();
        let full = opts.sqlite_full_sync;
        let n = opts.sqlite_read_connections.max(1);
        let bulk_yield = opts.sqlite_bulk_yield;
        tokio::task::spawn_blocking(move || {
            let writer = open_sqlite(&path, full, false)?;
            let checkpointer = open_sqlite(&path, full, false)?;
            let readers = (0..n)
                .map(|_| open_sqlite(&path, full, true).map(std::sync::Mutex::new))
                .collect::<Result<Vec<_>>>()?;
            Ok(Db::Sqlite(Arc::new(SqliteStore {
                writer: Writer::new(writer, checkpointer, bulk_yield)?,
                readers,
                path,
                full_sync: full,
            })))
        })
        .await
        .map_err(|e| StorageError::Config(format!("opening SQLite failed: {e}")))?
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the backend's migrations (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(s) => {
                let w = s.writer.lock_idle().await?;
                crate::migrate::sqlite(&w.conn)
            }
            Db::Postgres(p) => Ok(sqlx::migrate!("./migrations/postgres").run(p).await?),
        }
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(s) => Tx::Sqlite(s.writer.begin(false).await?),
            Db::Postgres(p) => Tx::Postgres(PgTx::new(p.begin().await?, Vec::new())),
        })
    }

    /// [`begin`](Self::begin), holding the transaction-scoped advisory locks `keys` (as
    /// [`Tx::advisory_xact_lock`] takes them, in the keys' byte order). On PostgreSQL they are
    /// taken in the `BEGIN`'s own round trip (one simple query: `BEGIN; SELECT
    /// pg_advisory_xact_lock(…)`), so a unit of work that knows its locks up front saves a
    /// round trip; SQLite's single writer already serialises.
    pub async fn begin_holding(&self, keys: &[String]) -> Result<Tx> {
        match self {
            Db::Sqlite(_) => self.begin().await,
            Db::Postgres(p) => {
                let mut held: Vec<String> = keys.to_vec();
                held.sort();
                held.dedup();
                if held.is_empty() {
                    return self.begin().await;
                }
                let mut sql = String::from("BEGIN; SELECT ");
                for (i, k) in held.iter().enumerate() {
                    if k.contains('\0') {
                        return Err(StorageError::Config(format!(
                            "an advisory lock key holds a NUL byte: {k:?}"
                        )));
                    }
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    // A standard string literal (standard_conforming_strings is on in every
                    // supported PostgreSQL): quotes doubled, nothing else is special.
                    sql.push_str("pg_advisory_xact_lock(hashtextextended('");
                    sql.push_str(&k.replace('\'', "''"));
                    sql.push_str("', 0))");
                }
                let t = p.begin_with(sqlx::AssertSqlSafe(sql)).await?;
                Ok(Tx::Postgres(PgTx::new(t, held)))
            }
        }
    }

    /// How many units of work of one job (a dunning run's batches, say) should run at once:
    /// one on SQLite (its single writer runs them in turn anyway); on PostgreSQL `want`, but
    /// never more than a quarter of the pool, so the job leaves connections to the API.
    pub fn parallel_units(&self, want: usize) -> usize {
        match self {
            Db::Sqlite(_) => 1,
            Db::Postgres(p) => {
                let pool = p.options().get_max_connections() as usize;
                want.min(pool / 4).max(1)
            }
        }
    }

    /// Starts a write transaction for bulk work (a part of an event batch): on SQLite it lets
    /// interactive transactions waiting for the single writer go first; on PostgreSQL it is
    /// [`begin`](Self::begin).
    pub async fn begin_bulk(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(s) => Tx::Sqlite(s.writer.begin(true).await?),
            Db::Postgres(p) => Tx::Postgres(PgTx::new(p.begin().await?, Vec::new())),
        })
    }

    /// Runs `f` on a reader connection (a free one if any; they are held only synchronously).
    fn with_reader<R>(s: &SqliteStore, f: impl FnOnce(&rusqlite::Connection) -> R) -> R {
        for r in &s.readers {
            if let Ok(c) = r.try_lock() {
                return f(&c);
            }
        }
        let c = s.readers[0].lock().unwrap_or_else(|p| p.into_inner());
        f(&c)
    }

    pub async fn fetch_all<T: FromRow>(&self, q: Q) -> Result<Vec<T>> {
        match self {
            Db::Sqlite(s) => Self::with_reader(s, |c| sqlite_fetch(c, &q)),
            Db::Postgres(p) => {
                let rows = pg_query(&q).fetch_all(p).await?;
                rows.iter().map(|r| T::from_row(r)).collect()
            }
        }
    }

    pub async fn fetch_optional<T: FromRow>(&self, q: Q) -> Result<Option<T>> {
        Ok(self.fetch_all(q).await?.into_iter().next())
    }

    /// Runs SQL text as is (several statements allowed). For maintenance and tests only.
    pub async fn execute_raw(&self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(s) => Ok(s.writer.lock_idle().await?.conn.execute_batch(sql)?),
            Db::Postgres(p) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(p)
                    .await?;
                Ok(())
            }
        }
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<()> {
        self.fetch_all::<i64>(Q::new("SELECT CAST(1 AS BIGINT) AS n"))
            .await
            .map(|_| ())
    }

    pub async fn close(&self) {
        if let Db::Postgres(p) = self {
            p.close().await;
        }
    }
}

impl Tx {
    /// On PostgreSQL, a transaction-scoped advisory lock on `key` (held until commit or
    /// rollback; units of work that take the same key wait for each other). SQLite has a
    /// single writer, which already serialises them: nothing to do.
    pub(crate) async fn advisory_xact_lock(&mut self, key: String) -> Result<()> {
        if let Tx::Postgres(t) = self {
            if t.held.contains(&key) {
                return Ok(());
            }
            self.execute(
                Q::new("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(key.clone()),
            )
            .await?;
            if let Tx::Postgres(t) = self {
                t.held.push(key);
            }
        }
        Ok(())
    }

    /// [`advisory_xact_lock`](Self::advisory_xact_lock) on each of `keys` in one round trip,
    /// in the keys' byte order (callers that lock several keys of one kind agree on it, so
    /// they wait for each other instead of deadlocking).
    pub(crate) async fn advisory_xact_locks(&mut self, keys: &[String]) -> Result<()> {
        if let Tx::Postgres(t) = self {
            let mut todo: Vec<String> = keys
                .iter()
                .filter(|k| !t.held.contains(k))
                .cloned()
                .collect();
            todo.sort();
            todo.dedup();
            match todo.len() {
                0 => return Ok(()),
                1 => return self.advisory_xact_lock(todo.remove(0)).await,
                _ => {}
            }
            self.execute(
                Q::new(
                    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) \
                     FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i)",
                )
                .bind(Val::TextArray(todo.iter().cloned().map(Some).collect())),
            )
            .await?;
            if let Tx::Postgres(t) = self {
                t.held.extend(todo);
            }
        }
        Ok(())
    }

    /// Makes [`commit`](Self::commit) refuse: what this transaction wrote must roll back.
    pub(crate) fn poison(&mut self) {
        if let Tx::Postgres(t) = self {
            t.poisoned = true;
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn execute(&mut self, q: Q) -> Result<u64> {
        match self {
            Tx::Sqlite(t) => sqlite_execute(t.conn(), &q),
            Tx::Postgres(t) => Ok(pg_query(&q).execute(&mut *t.t).await?.rows_affected()),
        }
    }

    pub async fn fetch_all<T: FromRow>(&mut self, q: Q) -> Result<Vec<T>> {
        match self {
            Tx::Sqlite(t) => sqlite_fetch(t.conn(), &q),
            Tx::Postgres(t) => {
                let rows = pg_query(&q).fetch_all(&mut *t.t).await?;
                rows.iter().map(|r| T::from_row(r)).collect()
            }
        }
    }

    pub async fn fetch_optional<T: FromRow>(&mut self, q: Q) -> Result<Option<T>> {
        Ok(self.fetch_all(q).await?.into_iter().next())
    }

    /// Makes the unit of work durable. Nothing is acknowledged to a caller before this returns.
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(PgTx { poisoned: true, .. }) => Err(StorageError::Config(
                "this unit of work failed a write it depended on and can only roll back".into(),
            )),
            Tx::Postgres(PgTx { t, lane, .. }) => {
                t.commit().await?;
                if let Some(l) = lane {
                    l.committed();
                }
                Ok(())
            }
        }
    }
}
