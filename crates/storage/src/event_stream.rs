//! What the ingest workers of a scaled-out installation keep in the database (migration
//! 0016): per partition the offset after the last message applied, the parts applied (and what
//! each did), and the messages given up on.

use riskdesk_domain::TenantId;
use uuid::Uuid;

use crate::query::{FromRow, Q, RowLike};
use crate::{Db, Result, Tx};

/// Creates the offset rows of `stream`'s partitions `0..partitions` (kept if they exist) and
/// returns how many partitions the database knows for it: a different figure means the stream
/// was created with another partition count, which must not be mixed.
pub async fn register(db: &Db, stream: &str, partitions: u32) -> Result<u32> {
    let mut tx = db.begin().await?;
    for p in 0..partitions {
        tx.execute(
            Q::new(
                "INSERT INTO ingest_offsets (stream, partition, next_seq) VALUES ($1, $2, 1) \
                 ON CONFLICT (stream, partition) DO NOTHING",
            )
            .bind(stream)
            .bind(i64::from(p)),
        )
        .await?;
    }
    let n: i64 = tx
        .fetch_optional::<i64>(
            Q::new("SELECT COUNT(*) AS n FROM ingest_offsets WHERE stream = $1").bind(stream),
        )
        .await?
        .unwrap_or(0);
    tx.commit().await?;
    Ok(n as u32)
}

/// What the fence found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fence {
    /// The message is next: the offset now stands after it, in this unit of work.
    Next,
    /// Already applied (its sequence is below the offset): acknowledge and skip it.
    Done,
    /// This worker no longer holds the partition (another took it over): stop.
    Lost,
}

/// The offset fence, first statement of a worker's unit of work for message `seq` of
/// `partition`: holds the partition's lease row shared (a takeover, which updates it, waits
/// until this unit ends, and then reads the offset it wrote), checks that `holder` still has
/// it at `epoch`, and moves the offset past `seq` if `seq` is not below it.
#[allow(clippy::too_many_arguments)]
pub async fn fence(
    tx: &mut Tx,
    stream: &str,
    partition: u32,
    lease: &str,
    holder: &str,
    epoch: i64,
    seq: u64,
) -> Result<Fence> {
    let share = if tx.backend() == crate::Backend::Postgres {
        " FOR SHARE"
    } else {
        ""
    };
    let held = tx
        .fetch_optional::<i64>(
            Q::new(format!(
                "SELECT epoch AS n FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3{share}"
            ))
            .bind(lease)
            .bind(holder)
            .bind(epoch),
        )
        .await?;
    if held.is_none() {
        return Ok(Fence::Lost);
    }
    let moved = tx
        .execute(
            Q::new(
                "UPDATE ingest_offsets SET next_seq = $3 + 1 \
                 WHERE stream = $1 AND partition = $2 AND next_seq <= $3",
            )
            .bind(stream)
            .bind(i64::from(partition))
            .bind(seq as i64),
        )
        .await?;
    Ok(if moved == 1 { Fence::Next } else { Fence::Done })
}

/// Every partition's offset of `stream`.
pub async fn offsets(db: &Db, stream: &str) -> Result<Vec<(u32, u64)>> {
    struct O(u32, u64);
    impl FromRow for O {
        fn from_row(r: &dyn RowLike) -> Result<Self> {
            Ok(O(r.i64("partition")? as u32, r.i64("next_seq")? as u64))
        }
    }
    Ok(db
        .fetch_all::<O>(
            Q::new(
                "SELECT partition, next_seq FROM ingest_offsets WHERE stream = $1 ORDER BY partition",
            )
            .bind(stream),
        )
        .await?
        .into_iter()
        .map(|o| (o.0, o.1))
        .collect())
}

/// A part applied.
#[derive(Clone, Debug)]
pub struct PartRow {
    pub part: u32,
    pub parts: u32,
    pub summary_json: String,
    pub done_at: i64,
}

impl FromRow for PartRow {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        Ok(PartRow {
            part: r.i64("part")? as u32,
            parts: r.i64("parts")? as u32,
            summary_json: r.text("summary_json")?,
            done_at: r.i64("done_at")?,
        })
    }
}

/// The part as applied before, if it was (under another sequence: published again after
/// the de-duplication window).
pub async fn applied_part(
    tx: &mut Tx,
    tenant: TenantId,
    batch: Uuid,
    part: u32,
) -> Result<Option<PartRow>> {
    tx.fetch_optional(
        Q::new(
            "SELECT part, parts, summary_json, done_at FROM ingest_parts \
             WHERE tenant_id = $1 AND batch_id = $2 AND part = $3",
        )
        .bind(tenant.0)
        .bind(batch)
        .bind(i64::from(part)),
    )
    .await
}

/// Records a part applied, with what it did, in the unit of work that applied it.
#[allow(clippy::too_many_arguments)]
pub async fn record_part(
    tx: &mut Tx,
    tenant: TenantId,
    batch: Uuid,
    part: u32,
    parts: u32,
    stream: &str,
    seq: u64,
    summary_json: &str,
    done_at: i64,
) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO ingest_parts (tenant_id, batch_id, part, parts, stream, seq, summary_json, done_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tenant.0)
        .bind(batch)
        .bind(i64::from(part))
        .bind(i64::from(parts))
        .bind(stream)
        .bind(seq as i64)
        .bind(summary_json)
        .bind(done_at),
    )
    .await?;
    Ok(())
}

/// The parts of a batch applied so far, by part.
pub async fn parts_of(db: &Db, tenant: TenantId, batch: Uuid) -> Result<Vec<PartRow>> {
    db.fetch_all(
        Q::new(
            "SELECT part, parts, summary_json, done_at FROM ingest_parts \
             WHERE tenant_id = $1 AND batch_id = $2 ORDER BY part",
        )
        .bind(tenant.0)
        .bind(batch),
    )
    .await
}

/// Keeps a message given up on, in the unit of work that moves the offset past it.
pub async fn dead_letter(
    tx: &mut Tx,
    stream: &str,
    partition: u32,
    seq: u64,
    payload: &str,
    error: &str,
    at: i64,
) -> Result<()> {
    tx.execute(
        Q::new(
            "INSERT INTO ingest_dead_letters (stream, partition, seq, payload, error, at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (stream, seq) DO NOTHING",
        )
        .bind(stream)
        .bind(i64::from(partition))
        .bind(seq as i64)
        .bind(payload)
        .bind(error)
        .bind(at),
    )
    .await?;
    Ok(())
}

/// How many messages of `stream` were given up on.
pub async fn dead_letters(db: &Db, stream: &str) -> Result<i64> {
    Ok(db
        .fetch_optional::<i64>(
            Q::new("SELECT COUNT(*) AS n FROM ingest_dead_letters WHERE stream = $1").bind(stream),
        )
        .await?
        .unwrap_or(0))
}

/// Parts older than `before` (µs) are forgotten: the idempotency keys that could ask for them
/// are gone too.
pub async fn prune_parts(db: &Db, before: i64) -> Result<u64> {
    let mut tx = db.begin().await?;
    let n = tx
        .execute(Q::new("DELETE FROM ingest_parts WHERE done_at < $1").bind(before))
        .await?;
    tx.commit().await?;
    Ok(n)
}
