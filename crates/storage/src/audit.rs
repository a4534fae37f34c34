//! The audit log: append inside the unit of work that made the change, read, and verify.

use jiff::Timestamp;
use riskdesk_domain::TenantId;
use riskdesk_domain::audit::{
    Actor, AuditContent, ChainBreak, ChainVerifier, StoredEntry, entry_hash,
};
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::time::to_micros;
use crate::{Db, Result, StorageError, Tx};

/// What a caller records; the chain position and hashes are filled in by [`append`].
pub struct AuditDraft<'a> {
    pub actor: &'a Actor,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub reason: Option<&'a str>,
    pub note: Option<&'a str>,
}

impl<'a> AuditDraft<'a> {
    /// An entry about `entity_type` `entity_id`; add snapshots, reason and note as they apply.
    pub fn new(
        actor: &'a Actor,
        action: &'a str,
        entity_type: &'a str,
        entity_id: impl ToString,
    ) -> Self {
        AuditDraft {
            actor,
            action,
            entity_type,
            entity_id: entity_id.to_string(),
            before: None,
            after: None,
            reason: None,
            note: None,
        }
    }

    pub fn before<T: serde::Serialize>(mut self, v: &T) -> Self {
        self.before = snapshot(v);
        self
    }

    pub fn after<T: serde::Serialize>(mut self, v: &T) -> Self {
        self.after = snapshot(v);
        self
    }

    pub fn reason(mut self, reason: &'a str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn note(mut self, note: Option<&'a str>) -> Self {
        self.note = note;
        self
    }
}

/// Serialises a snapshot for `before`/`after`.
pub fn snapshot<T: serde::Serialize>(v: &T) -> Option<String> {
    serde_json::to_string(v).ok()
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct AuditRow {
    pub tenant_id: Uuid,
    /// The lane of the tenant's chain the entry is in, and its position there.
    pub lane: i32,
    pub seq: i64,
    /// The tenant-wide listing order across lanes (not part of the chain's proof).
    pub pos: i64,
    pub at: i64,
    pub actor_kind: String,
    pub actor_name: String,
    pub actor_role: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl FromRow for AuditRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(AuditRow {
            tenant_id: r.uuid("tenant_id")?,
            lane: r.i64("lane")? as i32,
            seq: r.i64("seq")?,
            pos: r.i64("pos")?,
            at: r.i64("at")?,
            actor_kind: r.text("actor_kind")?,
            actor_name: r.text("actor_name")?,
            actor_role: r.text("actor_role")?,
            action: r.text("action")?,
            entity_type: r.text("entity_type")?,
            entity_id: r.text("entity_id")?,
            before_json: r.opt_text("before_json")?,
            after_json: r.opt_text("after_json")?,
            reason: r.opt_text("reason")?,
            note: r.opt_text("note")?,
            prev_hash: r.text("prev_hash")?,
            hash: r.text("hash")?,
        })
    }
}

impl AuditRow {
    fn into_stored(self) -> StoredEntry {
        StoredEntry {
            content: AuditContent {
                tenant_id: self.tenant_id,
                lane: self.lane,
                seq: self.seq,
                at_micros: self.at,
                actor: Actor {
                    kind: self.actor_kind,
                    name: self.actor_name,
                    role: self.actor_role,
                },
                action: self.action,
                entity_type: self.entity_type,
                entity_id: self.entity_id,
                before: self.before_json,
                after: self.after_json,
                reason: self.reason,
                note: self.note,
            },
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

struct Head {
    lane: i32,
    seq: i64,
    hash: String,
}

impl FromRow for Head {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(Head {
            lane: r.i64("lane")? as i32,
            seq: r.i64("seq")?,
            hash: r.text("hash")?,
        })
    }
}

/// How many lanes a tenant's chain has on PostgreSQL (SQLite, with its single writer: one).
pub const PG_LANES: i32 = 32;

/// The lanes of a tenant's chain on this backend.
pub fn lanes(backend: crate::Backend) -> i32 {
    match backend {
        crate::Backend::Postgres => PG_LANES,
        crate::Backend::Sqlite => 1,
    }
}

/// The lanes this process's PostgreSQL transactions append to, and the last head of each
/// (tenant, lane) this process committed: a **hint**, never trusted. A transaction takes a
/// lane no other transaction of this process is appending to ([`LaneLease`]); when it knows
/// the lane's head it appends with one statement that moves the head only if it is still
/// that head (`WHERE seq = … AND hash = …`, under the head row's lock), so a head another
/// process moved meanwhile makes the statement insert nothing and the append falls back to
/// reserving the head as it is. The chain is the same either way: an entry's hash depends only
/// on its content and the previous hash, and the head row's lock still orders appenders.
struct Lanes {
    free: Vec<i32>,
    heads: std::collections::HashMap<(Uuid, i32), (i64, String)>,
}

/// Heads remembered at most (then forgotten all at once: they are only hints).
const MAX_REMEMBERED_HEADS: usize = 100_000;

static LANES: std::sync::LazyLock<std::sync::Mutex<Lanes>> = std::sync::LazyLock::new(|| {
    use rand::seq::SliceRandom;
    // A random order per process, so processes sharing a database mostly start on different
    // lanes (a shared lane costs only the fallback round trip).
    let mut free: Vec<i32> = (0..PG_LANES).collect();
    free.shuffle(&mut rand::rng());
    std::sync::Mutex::new(Lanes {
        free,
        heads: std::collections::HashMap::new(),
    })
});

fn lane_state() -> std::sync::MutexGuard<'static, Lanes> {
    LANES.lock().unwrap_or_else(|p| p.into_inner())
}

/// One transaction's lane (returned to the free ones when the transaction ends) and the heads
/// it moved (remembered for the next transactions once it commits).
pub(crate) struct LaneLease {
    lane: i32,
    moved: std::collections::HashMap<Uuid, (i64, String)>,
}

impl LaneLease {
    /// A free lane, if there is one (with more appenders at once than lanes, the others use
    /// the connection's lane as before: correct, without hints).
    fn take() -> Option<LaneLease> {
        lane_state().free.pop().map(|lane| LaneLease {
            lane,
            moved: std::collections::HashMap::new(),
        })
    }

    /// The head of `tenant`'s chain in this lane as far as this process knows.
    fn known_head(&self, tenant: Uuid) -> Option<(i64, String)> {
        if let Some(h) = self.moved.get(&tenant) {
            return Some(h.clone());
        }
        lane_state().heads.get(&(tenant, self.lane)).cloned()
    }

    /// Called once the transaction committed: its heads become the process's hints.
    pub(crate) fn committed(mut self) {
        let moved = std::mem::take(&mut self.moved);
        let mut l = lane_state();
        if l.heads.len() + moved.len() > MAX_REMEMBERED_HEADS {
            l.heads.clear();
        }
        for (tenant, head) in moved {
            l.heads.insert((tenant, self.lane), head);
        }
    }
}

impl Drop for LaneLease {
    fn drop(&mut self) {
        lane_state().free.push(self.lane);
    }
}

/// The transaction's lane on PostgreSQL (taken at its first append), None on SQLite or when
/// every lane is in use.
fn lease(tx: &mut Tx) -> Option<&mut LaneLease> {
    match tx {
        Tx::Postgres(t) => {
            if t.lane.is_none() {
                t.lane = LaneLease::take();
            }
            t.lane.as_mut()
        }
        Tx::Sqlite(_) => None,
    }
}

/// Records that this transaction moved `tenant`'s head in `lane` to (`seq`, `hash`).
fn note_moved(tx: &mut Tx, tenant: TenantId, lane: i32, seq: i64, hash: &str) {
    if let Some(l) = lease(tx)
        && l.lane == lane
    {
        l.moved.insert(tenant.0, (seq, hash.to_owned()));
    }
}

/// `$n` placeholders of `sql` renumbered from `$(n + by)` (our own statement texts only: they
/// hold no `$` in literals).
fn shift_params(sql: &str, by: usize) -> String {
    if by == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' {
            let mut n = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(*d);
                chars.next();
            }
            match n.parse::<usize>() {
                Ok(k) => out.push_str(&(k + by).to_string()),
                Err(_) => out.push_str(&n),
            }
        }
    }
    out
}

/// Reserves `n` positions in one lane of the tenant's chain and returns the lane, the last
/// reserved seq and the hash before the first. Bumping the head row takes its row lock until
/// commit, so appenders to the same lane queue instead of forking it. On PostgreSQL the lane
/// is the connection's (`pg_backend_pid() % 32`): every append of a transaction lands in the
/// same lane (one head lock per transaction, so lanes add no lock-order deadlock), and
/// transactions on different connections — in this process or another — mostly take
/// different lanes and do not wait for each other. SQLite's writer lock already serialises.
async fn reserve(tx: &mut Tx, tenant: TenantId, n: i64) -> Result<Head> {
    reserve_after(tx, tenant, n, None).await
}

/// [`reserve`], after the write `write` (the change the entry records). On PostgreSQL the
/// write runs in the same statement, as a data-modifying `WITH` (executed once and to
/// completion whether or not the head bump reads it): one round trip for both. SQLite runs
/// the two statements in process.
async fn reserve_after(tx: &mut Tx, tenant: TenantId, n: i64, write: Option<Q>) -> Result<Head> {
    let pg = tx.backend() == crate::Backend::Postgres;
    let leased = lease(tx).map(|l| l.lane);
    let lane = match (pg, leased) {
        (true, Some(l)) => l.to_string(),
        (true, None) => format!("pg_backend_pid() % {PG_LANES}"),
        (false, _) => "0".to_owned(),
    };
    let (prefix, mut args) = match write {
        Some(w) if pg => (format!("WITH written AS ({}) ", w.sql), w.args),
        Some(w) => {
            tx.execute(w).await?;
            (String::new(), Vec::new())
        }
        None => (String::new(), Vec::new()),
    };
    let (t, k) = (args.len() + 1, args.len() + 2);
    args.push(tenant.0.into());
    args.push(n.into());
    tx.fetch_optional(Q {
        sql: format!(
            "{prefix}UPDATE audit_heads SET seq = seq + ${k} WHERE tenant_id = ${t} AND lane = {lane} \
             RETURNING lane, seq, hash"
        )
        .into(),
        args,
    })
    .await?
    .ok_or(StorageError::NotFound("tenant audit head"))
}

const INSERT_COLUMNS: &str = "tenant_id, lane, seq, at, actor_kind, actor_name, actor_role, action, entity_type, \
                              entity_id, before_json, after_json, reason, note, prev_hash, hash";

/// Appends an entry to the tenant's chain (see [`reserve`] for the lane). Returns the
/// entry's seq in its lane.
pub async fn append(
    tx: &mut Tx,
    tenant: TenantId,
    at: Timestamp,
    d: AuditDraft<'_>,
) -> Result<i64> {
    append_core::<AuditRow>(tx, tenant, at, d, false, None, None)
        .await
        .map(|(seq, _, _)| seq)
}

/// [`append`], returning every entry of the entry's entity in order, the new one last (what
/// an answer showing the entity's history needs). On PostgreSQL the history is read in the
/// statement that inserts the entry: no round trip more than `append`.
pub async fn append_with_history(
    tx: &mut Tx,
    tenant: TenantId,
    at: Timestamp,
    d: AuditDraft<'_>,
) -> Result<Vec<AuditRow>> {
    append_core::<AuditRow>(tx, tenant, at, d, true, None, None)
        .await
        .map(|(_, h, _)| h.unwrap_or_default())
}

/// [`append`] of the entry recording `write`, which runs first: on PostgreSQL in the same
/// round trip as the head bump (see [`reserve_after`]). An error of the write (a uniqueness
/// conflict, say) is returned as the write alone would return it.
pub async fn append_after(
    tx: &mut Tx,
    tenant: TenantId,
    at: Timestamp,
    write: Q,
    d: AuditDraft<'_>,
) -> Result<i64> {
    append_core::<AuditRow>(tx, tenant, at, d, false, Some(write), None)
        .await
        .map(|(seq, _, _)| seq)
}

/// [`append_with_history`] of the entry recording `write`, which runs first (on PostgreSQL in
/// the same statement: see [`append_after`]).
pub async fn append_after_with_history(
    tx: &mut Tx,
    tenant: TenantId,
    at: Timestamp,
    write: Q,
    d: AuditDraft<'_>,
) -> Result<Vec<AuditRow>> {
    append_core::<AuditRow>(tx, tenant, at, d, true, Some(write), None)
        .await
        .map(|(_, h, _)| h.unwrap_or_default())
}

/// [`append_after`], then `read` — on PostgreSQL all in one statement when the lane's head is
/// known. `read` names what the write needs to exist (the customer an invoice is for) and
/// must not read what the write or the entry change (on PostgreSQL it sees the database as it
/// was before the statement). When it finds nothing the write had nothing to write for: the
/// answer is `NotFound(what)` and the transaction can no longer commit (the entry it may have
/// appended must not stay).
pub async fn append_after_reading<T: FromRow>(
    tx: &mut Tx,
    tenant: TenantId,
    at: Timestamp,
    write: Q,
    read: Q,
    d: AuditDraft<'_>,
    what: &'static str,
) -> Result<Vec<T>> {
    if tx.backend() == crate::Backend::Sqlite {
        // No data-modifying WITH on SQLite: the three in turn, in process.
        tx.execute(write).await?;
        let rows: Vec<T> = tx.fetch_all(read).await?;
        if rows.is_empty() {
            return Err(StorageError::NotFound(what));
        }
        append_core::<AuditRow>(tx, tenant, at, d, false, None, None).await?;
        return Ok(rows);
    }
    let (_, _, rows) = append_core(tx, tenant, at, d, false, Some(write), Some(read)).await?;
    if rows.is_empty() {
        tx.poison();
        return Err(StorageError::NotFound(what));
    }
    Ok(rows)
}

/// A row of a caller's read and the seq of the entry appended in its statement (NULL when the
/// head had moved and nothing was appended).
struct WithSeq<T>(T, Option<i64>);

impl<T: FromRow> FromRow for WithSeq<T> {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(WithSeq(T::from_row(r)?, r.opt_i64("appended_seq_")?))
    }
}

/// The append itself: the entry (after `write`, if any), the entity's history if asked for,
/// and the rows of `read` if any (PostgreSQL only: see [`append_after_reading`]).
async fn append_core<T: FromRow>(
    tx: &mut Tx,
    tenant: TenantId,
    at: Timestamp,
    d: AuditDraft<'_>,
    history: bool,
    mut write: Option<Q>,
    mut read: Option<Q>,
) -> Result<(i64, Option<Vec<AuditRow>>, Vec<T>)> {
    let mut read_rows: Vec<T> = Vec::new();
    let mut content = AuditContent {
        tenant_id: tenant.0,
        lane: 0,
        seq: 0,
        at_micros: to_micros(at),
        actor: d.actor.clone(),
        action: d.action.to_owned(),
        entity_type: d.entity_type.to_owned(),
        entity_id: d.entity_id,
        before: d.before,
        after: d.after,
        reason: d.reason.map(str::to_owned),
        note: d.note.map(str::to_owned),
    };
    let values = "$1, $16, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15";
    // $1 tenant, $2 seq, $3–$13 the content, $14 the previous hash, $15 the entry's hash,
    // $16 the lane (then, on the hinted path, $17 the seq the head must still be at).
    let bind = |q: Q, c: &AuditContent, prev: &str, hash: &str| {
        q.bind(tenant.0)
            .bind(c.seq)
            .bind(c.at_micros)
            .bind(&c.actor.kind)
            .bind(&c.actor.name)
            .bind(&c.actor.role)
            .bind(&c.action)
            .bind(&c.entity_type)
            .bind(&c.entity_id)
            .bind(&c.before)
            .bind(&c.after)
            .bind(&c.reason)
            .bind(&c.note)
            .bind(prev.to_owned())
            .bind(hash.to_owned())
            .bind(i64::from(c.lane))
    };
    let cols = SELECT
        .trim_start_matches("SELECT ")
        .trim_end_matches(" FROM audit_log");

    // PostgreSQL, with the lane's head known to this process: the write (if any), the head
    // moved and the entry inserted in one statement — if the head is still the one known.
    let hint = lease(tx).and_then(|l| l.known_head(tenant.0).map(|h| (l.lane, h)));
    if let Some((lane, (seq, prev))) = hint {
        content.lane = lane;
        content.seq = seq + 1;
        let hash = entry_hash(&content, &prev);
        let (prefix, mut args) = match write.take() {
            Some(w) => (format!("WITH written AS ({}), ", w.sql), w.args),
            None => ("WITH ".to_owned(), Vec::new()),
        };
        let head = "h AS (UPDATE audit_heads SET seq = $2, hash = $15 \
                    WHERE tenant_id = $1 AND lane = $16 AND seq = $17 AND hash = $14 RETURNING seq)";
        let insert = format!("INSERT INTO audit_log ({INSERT_COLUMNS}) SELECT {values} FROM h");
        let template = if history {
            format!(
                "{head}, entry AS ({insert} RETURNING {cols}) \
                 SELECT * FROM ({SELECT} WHERE tenant_id = $1 AND entity_id = $9 \
                 UNION ALL SELECT {cols} FROM entry) x ORDER BY pos"
            )
        } else if read.is_some() {
            format!("{head}, entry AS ({insert} RETURNING seq) ")
        } else {
            format!("{head} {insert} RETURNING seq AS n")
        };
        let ours = bind(Q::new(String::new()), &content, &prev, &hash).bind(seq);
        let mut sql = format!("{prefix}{}", shift_params(&template, args.len()));
        args.extend(ours.args);
        if let Some(r) = read.take() {
            // The caller's read, its placeholders after ours, each row with the entry's seq.
            sql.push_str(&format!(
                "SELECT r.*, (SELECT seq FROM entry) AS appended_seq_ FROM ({}) r",
                shift_params(&r.sql, args.len())
            ));
            args.extend(r.args);
            let rows: Vec<WithSeq<T>> = tx
                .fetch_all(Q {
                    sql: sql.into(),
                    args,
                })
                .await?;
            let appended = rows.first().is_some_and(|r| r.1.is_some());
            let rows: Vec<T> = rows.into_iter().map(|r| r.0).collect();
            if appended {
                note_moved(tx, tenant, lane, content.seq, &hash);
                return Ok((content.seq, None, rows));
            }
            if rows.is_empty() {
                // Nothing to write for (the caller fails the unit of work): whether or not the
                // entry went in, it goes with the rollback.
                return Ok((0, None, rows));
            }
            // The head had moved: the write is done and the rows read; the entry as below.
            read_rows = rows;
        } else {
            let q = Q {
                sql: sql.into(),
                args,
            };
            if history {
                let rows: Vec<AuditRow> = tx.fetch_all(q).await?;
                if rows.last().is_some_and(|r| r.hash == hash) {
                    note_moved(tx, tenant, lane, content.seq, &hash);
                    return Ok((content.seq, Some(rows), Vec::new()));
                }
            } else if tx.fetch_optional::<i64>(q).await?.is_some() {
                note_moved(tx, tenant, lane, content.seq, &hash);
                return Ok((content.seq, None, Vec::new()));
            }
        }
        // Another process moved the head: the write is done, the entry goes in as below.
    }
    if let Some(r) = read.take() {
        // No head known: the write and the read in one statement, then the entry.
        let q = match write.take() {
            Some(w) => {
                let mut args = w.args;
                let sql = format!(
                    "WITH written AS ({}) SELECT * FROM ({}) r",
                    w.sql,
                    shift_params(&r.sql, args.len())
                );
                args.extend(r.args);
                Q {
                    sql: sql.into(),
                    args,
                }
            }
            None => r,
        };
        read_rows = tx.fetch_all(q).await?;
        if read_rows.is_empty() {
            return Ok((0, None, read_rows));
        }
    }

    let head = reserve_after(tx, tenant, 1, write).await?;
    content.lane = head.lane;
    content.seq = head.seq;
    let hash = entry_hash(&content, &head.hash);
    // On PostgreSQL the entry and the head's new hash go in one statement (one round trip
    // fewer on every audited write) and `pos` comes from its sequence; SQLite runs them in
    // process, two statements cost nothing, and `pos` is the seq of its single lane.
    let pg = tx.backend() == crate::Backend::Postgres;
    if pg && history {
        // The entity's earlier entries (this statement's snapshot does not see the new one)
        // and the new one as inserted.
        let rows: Vec<AuditRow> = tx
            .fetch_all(bind(
                Q::new(format!(
                    "WITH entry AS (INSERT INTO audit_log ({INSERT_COLUMNS}) VALUES ({values}) RETURNING {cols}), \
                     head AS (UPDATE audit_heads SET hash = $15 WHERE tenant_id = $1 AND lane = $16) \
                     SELECT * FROM ({SELECT} WHERE tenant_id = $1 AND entity_id = $9 UNION ALL SELECT {cols} FROM entry) h \
                     ORDER BY pos"
                )),
                &content,
                &head.hash,
                &hash,
            ))
            .await?;
        note_moved(tx, tenant, head.lane, content.seq, &hash);
        return Ok((content.seq, Some(rows), read_rows));
    }
    tx.execute(bind(
        Q::new(if pg {
            format!(
                "WITH entry AS (INSERT INTO audit_log ({INSERT_COLUMNS}) VALUES ({values})) \
                 UPDATE audit_heads SET hash = $15 WHERE tenant_id = $1 AND lane = $16"
            )
        } else {
            format!("INSERT INTO audit_log ({INSERT_COLUMNS}, pos) VALUES ({values}, $2)")
        }),
        &content,
        &head.hash,
        &hash,
    ))
    .await?;
    if pg {
        note_moved(tx, tenant, head.lane, content.seq, &hash);
    } else {
        tx.execute(
            Q::new("UPDATE audit_heads SET hash = $2 WHERE tenant_id = $1 AND lane = 0")
                .bind(tenant.0)
                .bind(&hash),
        )
        .await?;
    }
    let rows = if history {
        Some(for_entity_tx(tx, tenant, &content.entity_id).await?)
    } else {
        None
    };
    Ok((content.seq, rows, read_rows))
}

/// Appends several entries to the tenant's chain with one head bump, one multi-row insert and
/// one head update (the hot paths that record several changes at once, e.g. an approved
/// sign-up: its assessment, the customer and its credit terms). Same chain as `append` called
/// once per draft, in order, in one lane. Returns the first entry's seq.
pub async fn append_many(
    tx: &mut Tx,
    tenant: TenantId,
    at: Timestamp,
    drafts: Vec<AuditDraft<'_>>,
) -> Result<i64> {
    let n = drafts.len() as i64;
    if n == 0 {
        return Err(StorageError::Config(
            "append_many needs at least one entry".into(),
        ));
    }
    let head = reserve(tx, tenant, n).await?;
    let first = head.seq - n + 1;
    let mut prev = head.hash;
    let mut rows = Vec::with_capacity(drafts.len());
    for (i, d) in drafts.into_iter().enumerate() {
        let content = AuditContent {
            tenant_id: tenant.0,
            lane: head.lane,
            seq: first + i as i64,
            at_micros: to_micros(at),
            actor: d.actor.clone(),
            action: d.action.to_owned(),
            entity_type: d.entity_type.to_owned(),
            entity_id: d.entity_id,
            before: d.before,
            after: d.after,
            reason: d.reason.map(str::to_owned),
            note: d.note.map(str::to_owned),
        };
        let hash = entry_hash(&content, &prev);
        rows.push((content, std::mem::replace(&mut prev, hash.clone()), hash));
    }
    let pg = tx.backend() == crate::Backend::Postgres;
    if pg {
        // One statement text whatever the count (prepared once per connection, not parsed
        // and planned for each batch size), one array per column, and the head moved in the
        // same round trip.
        let col =
            |f: &dyn Fn(&(AuditContent, String, String)) -> Option<String>| -> Vec<Option<String>> {
                rows.iter().map(f).collect()
            };
        let q = Q::new(format!(
            "WITH entry AS (INSERT INTO audit_log ({INSERT_COLUMNS}) \
             SELECT $1, $3, v.seq, $2, v.ak, v.an, v.ar, v.ac, v.et, v.ei, v.bf, v.af, v.rs, v.nt, v.ph, v.h \
             FROM unnest($4::int8[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
             $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[]) \
             AS v(seq, ak, an, ar, ac, et, ei, bf, af, rs, nt, ph, h)) \
             UPDATE audit_heads SET hash = $17 WHERE tenant_id = $1 AND lane = $3"
        ))
        .bind(tenant.0)
        .bind(to_micros(at))
        .bind(i64::from(head.lane))
        .bind(rows.iter().map(|r| Some(r.0.seq)).collect::<Vec<_>>())
        .bind(col(&|r| Some(r.0.actor.kind.clone())))
        .bind(col(&|r| Some(r.0.actor.name.clone())))
        .bind(col(&|r| Some(r.0.actor.role.clone())))
        .bind(col(&|r| Some(r.0.action.clone())))
        .bind(col(&|r| Some(r.0.entity_type.clone())))
        .bind(col(&|r| Some(r.0.entity_id.clone())))
        .bind(col(&|r| r.0.before.clone()))
        .bind(col(&|r| r.0.after.clone()))
        .bind(col(&|r| r.0.reason.clone()))
        .bind(col(&|r| r.0.note.clone()))
        .bind(col(&|r| Some(r.1.clone())))
        .bind(col(&|r| Some(r.2.clone())))
        .bind(&prev);
        tx.execute(q).await?;
        note_moved(tx, tenant, head.lane, head.seq, &prev);
        return Ok(first);
    }
    // SQLite: $1 tenant, $2 at, $3 lane, then 13 parameters per entry (and `pos` = seq).
    let values: Vec<String> = (0..rows.len())
        .map(|i| {
            let b = 4 + 13 * i;
            let params = (b..b + 13).map(|k| format!("${k}")).collect::<Vec<_>>();
            format!(
                "($1, $3, {}, $2, {}{})",
                params[0],
                params[1..].join(", "),
                if pg {
                    String::new()
                } else {
                    format!(", {}", params[0])
                }
            )
        })
        .collect();
    let mut q = Q::new(format!(
        "INSERT INTO audit_log ({INSERT_COLUMNS}{}) VALUES {}",
        if pg { "" } else { ", pos" },
        values.join(", ")
    ))
    .bind(tenant.0)
    .bind(to_micros(at))
    .bind(i64::from(head.lane));
    for (c, prev_hash, hash) in &rows {
        q = q
            .bind(c.seq)
            .bind(&c.actor.kind)
            .bind(&c.actor.name)
            .bind(&c.actor.role)
            .bind(&c.action)
            .bind(&c.entity_type)
            .bind(&c.entity_id)
            .bind(&c.before)
            .bind(&c.after)
            .bind(&c.reason)
            .bind(&c.note)
            .bind(prev_hash)
            .bind(hash);
    }
    tx.execute(q).await?;
    tx.execute(
        Q::new("UPDATE audit_heads SET hash = $2 WHERE tenant_id = $1 AND lane = $3")
            .bind(tenant.0)
            .bind(&prev)
            .bind(i64::from(head.lane)),
    )
    .await?;
    Ok(first)
}

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub entity_id: Option<String>,
    pub entity_type: Option<String>,
    pub action: Option<String>,
}

const SELECT: &str = "SELECT tenant_id, lane, seq, pos, at, actor_kind, actor_name, actor_role, action, entity_type, \
                      entity_id, before_json, after_json, reason, note, prev_hash, hash FROM audit_log";

/// One page of a tenant's entries in listing order (`pos`: append order across the lanes, chain
/// order within each), after position `after_pos`.
pub async fn list(
    db: &Db,
    tenant: TenantId,
    f: &AuditFilter,
    after_pos: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditRow>> {
    let q = Q::new(format!(
        "{SELECT} WHERE tenant_id = $1 AND ($2 IS NULL OR entity_id = $2) AND ($3 IS NULL OR entity_type = $3) \
         AND ($4 IS NULL OR action = $4) AND pos > $5 ORDER BY pos LIMIT $6"
    ))
    .bind(tenant.0)
    .bind(&f.entity_id)
    .bind(&f.entity_type)
    .bind(&f.action)
    .bind(after_pos.unwrap_or(0))
    .bind(i64::from(limit));
    db.fetch_all(q).await
}

/// Every entry about one entity inside a unit of work (used to return a history with a change).
pub async fn for_entity_tx(
    tx: &mut Tx,
    tenant: TenantId,
    entity_id: &str,
) -> Result<Vec<AuditRow>> {
    tx.fetch_all(
        Q::new(format!(
            "{SELECT} WHERE tenant_id = $1 AND entity_id = $2 ORDER BY pos"
        ))
        .bind(tenant.0)
        .bind(entity_id),
    )
    .await
}

/// The outcome of verifying one tenant's chain (every lane of it).
#[derive(Debug)]
pub struct TenantVerification {
    pub tenant_id: Uuid,
    pub slug: String,
    /// The number of entries verified, or the first break found.
    pub result: std::result::Result<i64, ChainBreak>,
}

/// Verifies every tenant's chain, lane by lane, streaming entries in pages so memory stays
/// bounded. Every lane this backend has must have its head: a lane removed entirely (head and
/// entries) is a break too.
pub async fn verify_all(db: &Db) -> Result<Vec<TenantVerification>> {
    const PAGE: i64 = 10_000;
    let tenants = crate::tenants::list(db).await?;
    let lanes = lanes(db.backend());
    let mut out = Vec::with_capacity(tenants.len());
    for t in tenants {
        let heads: Vec<Head> = db
            .fetch_all(
                Q::new(
                    "SELECT lane, seq, hash FROM audit_heads WHERE tenant_id = $1 ORDER BY lane",
                )
                .bind(t.id),
            )
            .await?;
        let mut total = 0i64;
        let mut result = Ok(());
        'lanes: for lane in 0..lanes {
            let mut verifier = ChainVerifier::new(t.id, lane);
            let mut after = 0i64;
            loop {
                let rows: Vec<AuditRow> = db
                    .fetch_all(
                        Q::new(format!(
                            "{SELECT} WHERE tenant_id = $1 AND lane = $2 AND seq > $3 ORDER BY seq LIMIT $4"
                        ))
                        .bind(t.id)
                        .bind(i64::from(lane))
                        .bind(after)
                        .bind(PAGE),
                    )
                    .await?;
                let n = rows.len() as i64;
                for r in rows {
                    after = r.seq;
                    if let Err(e) = verifier.feed(&r.into_stored()) {
                        result = Err(e);
                        break 'lanes;
                    }
                }
                if n < PAGE {
                    break;
                }
            }
            match heads.iter().find(|h| h.lane == lane) {
                None => {
                    result = Err(ChainBreak {
                        tenant_id: t.id,
                        lane,
                        seq: 0,
                        why: "the lane's audit head is missing".into(),
                    });
                    break 'lanes;
                }
                Some(h) => match verifier.finish(h.seq, &h.hash) {
                    Ok(n) => total += n,
                    Err(e) => {
                        result = Err(e);
                        break 'lanes;
                    }
                },
            }
        }
        // Entries in a lane this backend does not have would not be looked at above.
        if result.is_ok() {
            let stray: Option<Head> = db
                .fetch_optional(
                    Q::new(
                        "SELECT lane, seq, hash FROM audit_log WHERE tenant_id = $1 AND (lane < 0 OR lane >= $2) LIMIT 1",
                    )
                    .bind(t.id)
                    .bind(i64::from(lanes)),
                )
                .await?;
            if let Some(h) = stray {
                result = Err(ChainBreak {
                    tenant_id: t.id,
                    lane: h.lane,
                    seq: h.seq,
                    why: format!(
                        "the entry is in lane {}, which this chain does not have",
                        h.lane
                    ),
                });
            }
        }
        out.push(TenantVerification {
            tenant_id: t.id,
            slug: t.slug,
            result: result.map(|()| total),
        });
    }
    Ok(out)
}

/// One lane head of a tenant's chain.
#[derive(Clone, Debug)]
pub struct LaneHead {
    pub tenant_id: Uuid,
    pub slug: String,
    pub lane: i32,
    pub seq: i64,
    pub hash: String,
}

/// Every tenant's lane heads; lanes without entries are left out.
pub async fn heads(db: &Db) -> Result<Vec<LaneHead>> {
    let mut out = Vec::new();
    for t in crate::tenants::list(db).await? {
        let heads: Vec<Head> = db
            .fetch_all(
                Q::new(
                    "SELECT lane, seq, hash FROM audit_heads WHERE tenant_id = $1 AND seq > 0 ORDER BY lane",
                )
                .bind(t.id),
            )
            .await?;
        out.extend(heads.into_iter().map(|h| LaneHead {
            tenant_id: t.id,
            slug: t.slug.clone(),
            lane: h.lane,
            seq: h.seq,
            hash: h.hash,
        }));
    }
    Ok(out)
}

/// The stored hash of entry `seq` of a lane of a tenant's chain, if it is there.
pub async fn stored_hash(db: &Db, tenant: Uuid, lane: i32, seq: i64) -> Result<Option<String>> {
    struct H(String);
    impl FromRow for H {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(H(r.text("hash")?))
        }
    }
    Ok(db
        .fetch_optional::<H>(
            Q::new("SELECT hash FROM audit_log WHERE tenant_id = $1 AND lane = $2 AND seq = $3")
                .bind(tenant)
                .bind(i64::from(lane))
                .bind(seq),
        )
        .await?
        .map(|h| h.0))
}

/// A signed checkpoint as stored by the scheduler's `audit-checkpoint` job.
#[derive(Clone, Debug)]
pub struct CheckpointRow {
    pub tenant_id: Uuid,
    pub lane: i32,
    pub seq: i64,
    pub hash: String,
    /// When it was signed (RFC 3339, UTC), as signed.
    pub at: String,
    pub key_id: String,
    pub signature: String,
    pub created_at: i64,
}

impl FromRow for CheckpointRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(CheckpointRow {
            tenant_id: r.uuid("tenant_id")?,
            lane: r.i64("lane")? as i32,
            seq: r.i64("seq")?,
            hash: r.text("hash")?,
            at: r.text("at")?,
            key_id: r.text("key_id")?,
            signature: r.text("signature")?,
            created_at: r.i64("created_at")?,
        })
    }
}

/// The latest stored checkpoint of every lane: (tenant, lane) → seq.
pub async fn checkpointed(db: &Db) -> Result<std::collections::HashMap<(Uuid, i32), i64>> {
    struct L(Uuid, i32, i64);
    impl FromRow for L {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(L(
                r.uuid("tenant_id")?,
                r.i64("lane")? as i32,
                r.i64("seq")?,
            ))
        }
    }
    let rows: Vec<L> = db
        .fetch_all(Q::new(
            "SELECT tenant_id, lane, max(seq) AS seq FROM audit_checkpoints GROUP BY tenant_id, lane",
        ))
        .await?;
    Ok(rows.into_iter().map(|l| ((l.0, l.1), l.2)).collect())
}

/// Stores checkpoints (one transaction; a checkpoint of a head already checkpointed is kept
/// as it was). Returns how many were new.
pub async fn store_checkpoints(db: &Db, rows: &[CheckpointRow]) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let mut added = 0;
    for c in rows {
        added += tx
            .execute(
                Q::new(
                    "INSERT INTO audit_checkpoints (tenant_id, lane, seq, hash, at, key_id, signature, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, lane, seq) DO NOTHING",
                )
                .bind(c.tenant_id)
                .bind(i64::from(c.lane))
                .bind(c.seq)
                .bind(&c.hash)
                .bind(&c.at)
                .bind(&c.key_id)
                .bind(&c.signature)
                .bind(c.created_at),
            )
            .await?;
    }
    tx.commit().await?;
    Ok(added)
}

/// One page of a tenant's stored checkpoints, oldest first, after the `(created_at, lane,
/// seq)` position given.
pub async fn checkpoints(
    db: &Db,
    tenant: Uuid,
    after: Option<(i64, i32, i64)>,
    limit: u32,
) -> Result<Vec<CheckpointRow>> {
    let (c, l, s) = after.unwrap_or((i64::MIN, i32::MIN, i64::MIN));
    db.fetch_all(
        Q::new(
            "SELECT tenant_id, lane, seq, hash, at, key_id, signature, created_at FROM audit_checkpoints \
             WHERE tenant_id = $1 AND (created_at > $2 OR (created_at = $2 AND (lane > $3 OR (lane = $3 AND seq > $4)))) \
             ORDER BY created_at, lane, seq LIMIT $5",
        )
        .bind(tenant)
        .bind(c)
        .bind(i64::from(l))
        .bind(s)
        .bind(i64::from(limit)),
    )
    .await
}

/// For tests of the hinted append: what another process moving a lane's head looks like to
/// this one.
#[doc(hidden)]
pub mod testing {
    use uuid::Uuid;

    /// Makes every head of `tenant` this process remembers (and every lane it does not) a head
    /// the chain is no longer at, as if another process had appended since: the next appends
    /// must find out and fall back.
    pub fn make_hints_stale(tenant: Uuid) {
        let mut l = super::lane_state();
        for lane in 0..super::PG_LANES {
            l.heads
                .insert((tenant, lane), (-1, super::STALE_HASH.to_owned()));
        }
    }

    /// The head of `tenant`'s `lane` this process remembers.
    pub fn hint(tenant: Uuid, lane: i32) -> Option<(i64, String)> {
        super::lane_state().heads.get(&(tenant, lane)).cloned()
    }
}

/// A hash no entry has (not 64 hex digits).
const STALE_HASH: &str = "stale";
