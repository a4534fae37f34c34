//! Signed checkpoints of the audit chains: the scheduler's `audit-checkpoint` job.
//!
//! A checkpoint states, under the partner's Ed25519 key, that a lane of a tenant's chain ended
//! at entry `seq` with hash `hash` at a moment. Stored in the database and exported to an
//! auditor (`riskdesk audit checkpoints`, `GET /v1/audit/checkpoints`), it lets the auditor
//! show later that history before it was not rewritten — even by someone who can write to the
//! database and recompute every hash, since they cannot sign for the rewritten heads.

use riskdesk_domain::audit::checkpoint;
use riskdesk_storage::Db;
use riskdesk_storage::audit::{self, CheckpointRow};

use crate::kernel::AppError;

/// Signs every lane head that moved since its last stored checkpoint and stores the
/// checkpoints. Returns how many were stored.
pub async fn checkpoint_pass(db: &Db, seed: &str, now: jiff::Timestamp) -> Result<u64, AppError> {
    let key = checkpoint::key_from_seed(seed).map_err(AppError::Internal)?;
    let done = audit::checkpointed(db).await?;
    let at = now.to_string();
    let created_at = now.as_microsecond();
    let rows: Vec<CheckpointRow> = audit::heads(db)
        .await?
        .into_iter()
        .filter(|h| done.get(&(h.tenant_id, h.lane)).is_none_or(|s| *s < h.seq))
        .map(|h| {
            let c = checkpoint::sign(&key, h.tenant_id, h.lane, h.seq, &h.hash, &at);
            CheckpointRow {
                tenant_id: c.tenant_id,
                lane: c.lane,
                seq: c.seq,
                hash: c.hash,
                at: c.at,
                key_id: c.key_id,
                signature: c.signature,
                created_at,
            }
        })
        .collect();
    Ok(audit::store_checkpoints(db, &rows).await?)
}

/// A stored checkpoint as the auditor's tools read it (`riskdesk audit verify --checkpoints`).
pub fn to_checkpoint(r: CheckpointRow) -> checkpoint::Checkpoint {
    checkpoint::Checkpoint {
        tenant_id: r.tenant_id,
        lane: r.lane,
        seq: r.seq,
        hash: r.hash,
        at: r.at,
        key_id: r.key_id,
        signature: r.signature,
    }
}
