//! Events through NATS JetStream (`[scale]`): the API side publishes a validated batch in
//! parts, one or more per partition of the customers it names, and (by default) waits for the
//! parts' results; ingest workers own partitions under leases and apply each message with the
//! same unit of work as in-process ingest ([`super::ingest`]).
//!
//! Exactly-once effect over at-least-once delivery, three layers: the stream drops a part
//! published again under the same `Nats-Msg-Id` within two minutes; a per-partition offset
//! moved in the unit of work that applies a message skips a message delivered again; a part
//! recorded in `ingest_parts` is not applied twice under another sequence; and underneath, an
//! event is stored once per `(tenant, event_id)`.
//!
//! Ownership: a worker holds the lease `ingest:<stream>:p<N>` of each partition it runs (the
//! epoch grows at each change of holder) and renews it every third of its time; the fence
//! (the first statement of every unit of work) checks holder and epoch and holds the lease
//! row shared, so a takeover waits for a unit in flight and then sees its offset. Workers
//! announce themselves with `ingest-worker:<stream>:<id>` leases; each takes its fair share of
//! the partitions by its rank among the live ones, and gives up what is above it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use riskdesk_connectors::jetstream::{Delivery, EventStream, Outgoing, StreamError};
use riskdesk_domain::TenantId;
use riskdesk_domain::monitoring::{CustomerRef, Event, RawEvent};
use riskdesk_storage::event_stream::{self as offsets, Fence};
use riskdesk_storage::leases;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::detect::Detector;
use super::{IngestSummary, Rejected};
use crate::kernel::{AppError, Ctx};

/// A message's payload stays under the server's 1 MiB with room for headers.
const PART_BYTES: usize = 900 * 1024;
/// A worker takes at most this many messages of a partition at a time.
const FETCH: usize = 64;

/// `[scale]`: the stream and how long the API waits for a batch's parts.
pub struct Scale {
    pub stream: EventStream,
    /// How long `POST /v1/events` waits for every part before answering 202 instead.
    pub sync_wait: Duration,
    /// How long a partition's lease lasts from its last renewal: the takeover time after a
    /// worker dies.
    pub lease: Duration,
    /// Messages an ingest worker applies at once, across its partitions (each partition's
    /// still one at a time, in order). Units beyond what the database's cores can run only
    /// lengthen its run queue, and every other process's statements wait in it.
    pub worker_concurrency: usize,
}

impl Scale {
    fn partition_lease(&self, p: u32) -> String {
        format!("ingest:{}:p{p}", self.stream.settings().stream)
    }

    fn worker_prefix(&self) -> String {
        format!("ingest-worker:{}:", self.stream.settings().stream)
    }
}

/// One part as carried in the stream.
#[derive(Serialize, Deserialize)]
struct Envelope {
    /// Format version.
    v: u32,
    /// The caller's tenant (set by the API from the authenticated caller, never from the body).
    tenant: Uuid,
    batch: Uuid,
    part: u32,
    parts: u32,
    /// When the API received the batch (what in-process ingest records as `received_at`).
    received_at: Timestamp,
    as_of: Timestamp,
    /// (index in the request, the event as sent).
    events: Vec<(usize, Box<RawValue>)>,
    /// The request's lines the API refused (part 0 carries them, so the batch's stored
    /// summary lists them).
    #[serde(default)]
    rejected: Vec<Rejected>,
}

/// A part's result, as a worker answers it and as `ingest_parts` keeps it.
#[derive(Serialize, Deserialize)]
struct PartResult {
    part: u32,
    summary: IngestSummary,
}

/// What [`submit`] came to.
pub enum Submitted {
    /// Every part was applied: the batch's summary (indices are the request's).
    Applied(IngestSummary),
    /// In the stream, not all applied yet (asked not to wait, or the wait ran out).
    Queued { batch_id: Uuid, parts: u32 },
}

/// The batch id of a request: derived from its idempotency key (a retry publishes the same
/// message ids, which the stream and `ingest_parts` recognise), else new.
pub fn batch_id(tenant: TenantId, idempotency_key: Option<&str>) -> Uuid {
    match idempotency_key {
        Some(k) => Uuid::new_v5(
            &Uuid::NAMESPACE_URL,
            format!("riskdesk:events:{}:{k}", tenant.0).as_bytes(),
        ),
        None => Uuid::now_v7(),
    }
}

fn partition_key(tenant: TenantId, e: &Event) -> String {
    match &e.customer {
        CustomerRef::Id(id) => format!("{}|c|{id}", tenant.0),
        CustomerRef::External(x) => format!("{}|x|{x}", tenant.0),
    }
}

fn stream_unavailable(e: StreamError) -> AppError {
    AppError::Unavailable {
        detail: format!(
            "the event stream cannot take the batch now ({e}); nothing was lost: send it again with the same Idempotency-Key"
        ),
        retry_after_secs: 2,
    }
}

/// Publishes a parsed batch (`lines[i]` is the request's element `i`: the event and its JSON
/// as sent, or why it was refused) and, if `wait`, waits for its parts to be applied.
#[allow(clippy::too_many_arguments)]
pub async fn submit(
    ctx: &Ctx,
    scale: &Scale,
    tenant: TenantId,
    batch: Uuid,
    lines: Vec<Result<(Event, &[u8]), String>>,
    received_at: Timestamp,
    as_of: Timestamp,
    wait: bool,
) -> Result<Submitted, AppError> {
    let mut refused = Vec::new();
    let mut groups: BTreeMap<u32, Vec<(usize, Box<RawValue>)>> = BTreeMap::new();
    for (i, line) in lines.into_iter().enumerate() {
        match line {
            Err(reason) => refused.push(Rejected { index: i, reason }),
            Ok((e, raw)) => {
                let p = scale
                    .stream
                    .partition_of(partition_key(tenant, &e).as_bytes());
                let raw = std::str::from_utf8(raw)
                    .ok()
                    .and_then(|s| RawValue::from_string(s.trim().to_owned()).ok())
                    .ok_or_else(|| AppError::Internal("a parsed event is not JSON".into()))?;
                groups.entry(p).or_default().push((i, raw));
            }
        }
    }
    // Parts: each partition's events in order, cut to fit a message.
    let mut cut: Vec<(u32, Vec<(usize, Box<RawValue>)>)> = Vec::new();
    for (p, events) in groups {
        let mut cur = Vec::new();
        let mut size = 0;
        for (i, raw) in events {
            let n = raw.get().len() + 24;
            if size + n > PART_BYTES && !cur.is_empty() {
                cut.push((p, std::mem::take(&mut cur)));
                size = 0;
            }
            size += n;
            cur.push((i, raw));
        }
        if !cur.is_empty() {
            cut.push((p, cur));
        }
    }
    let parts = cut.len() as u32;
    if parts == 0 {
        return Ok(Submitted::Applied(IngestSummary {
            rejected: refused,
            ..Default::default()
        }));
    }
    let inbox = wait.then(|| scale.stream.new_inbox());
    let mut replies = match &inbox {
        Some(i) => Some(
            scale
                .stream
                .subscribe(i.clone())
                .await
                .map_err(stream_unavailable)?,
        ),
        None => None,
    };
    let mut out = Vec::with_capacity(cut.len());
    for (part, (p, events)) in cut.into_iter().enumerate() {
        let env = Envelope {
            v: 1,
            tenant: tenant.0,
            batch,
            part: part as u32,
            parts,
            received_at,
            as_of,
            events,
            rejected: if part == 0 {
                std::mem::take(&mut refused)
            } else {
                Vec::new()
            },
        };
        out.push(Outgoing {
            partition: p,
            msg_id: format!("{}:{batch}:{part}", tenant.0),
            reply_to: inbox.clone(),
            payload: serde_json::to_vec(&env).map_err(|e| AppError::Internal(e.to_string()))?,
        });
    }
    let started = Instant::now();
    scale
        .stream
        .publish(out)
        .await
        .map_err(stream_unavailable)?;
    metrics::histogram!("riskdesk_stream_publish_seconds").record(started.elapsed().as_secs_f64());
    let Some(replies) = replies.as_mut() else {
        return Ok(Submitted::Queued {
            batch_id: batch,
            parts,
        });
    };
    let mut done: BTreeMap<u32, IngestSummary> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + scale.sync_wait;
    while done.len() < parts as usize {
        let Some(bytes) = replies.next_before(deadline).await else {
            break;
        };
        if let Ok(r) = serde_json::from_slice::<PartResult>(&bytes) {
            done.insert(r.part, r.summary);
        }
    }
    if done.len() < parts as usize {
        // A reply can be lost (core NATS); what was applied is in the database.
        for row in offsets::parts_of(&ctx.db, tenant, batch).await? {
            if let Ok(s) = serde_json::from_str::<IngestSummary>(&row.summary_json) {
                done.entry(row.part).or_insert(s);
            }
        }
    }
    if done.len() < parts as usize {
        return Ok(Submitted::Queued {
            batch_id: batch,
            parts,
        });
    }
    let mut summary = IngestSummary::default();
    for (_, s) in done {
        summary.absorb(s, 0);
    }
    summary.rejected.sort_by_key(|r| r.index);
    Ok(Submitted::Applied(summary))
}

/// Where a batch stands: its parts applied so far, and (once all are) its summary.
pub struct BatchStatus {
    pub parts: Option<u32>,
    pub applied: u32,
    pub summary: Option<IngestSummary>,
}

/// The parts of `batch` applied so far (a batch nobody has applied a part of is unknown).
pub async fn batch_status(
    ctx: &Ctx,
    tenant: TenantId,
    batch: Uuid,
) -> Result<BatchStatus, AppError> {
    let rows = offsets::parts_of(&ctx.db, tenant, batch).await?;
    let parts = rows.first().map(|r| r.parts);
    let applied = rows.len() as u32;
    let summary = if parts == Some(applied) {
        let mut s = IngestSummary::default();
        for r in &rows {
            let one: IngestSummary = serde_json::from_str(&r.summary_json)
                .map_err(|e| AppError::Internal(format!("a stored part summary: {e}")))?;
            s.absorb(one, 0);
        }
        s.rejected.sort_by_key(|r| r.index);
        Some(s)
    } else {
        None
    };
    Ok(BatchStatus {
        parts,
        applied,
        summary,
    })
}

/// What applying one delivered message came to.
#[derive(Debug, PartialEq, Eq)]
enum Applied {
    /// Applied now; the part's result (for the reply).
    Now(Vec<u8>),
    /// Applied before under another sequence (published again after the window).
    Before(Vec<u8>),
    /// Already behind the offset: delivered again.
    Skipped,
    /// Unreadable, or failed again and again: kept in `ingest_dead_letters`.
    DeadLettered,
    /// This worker no longer holds the partition.
    Lost,
}

/// Counts of one worker pass, for `riskdesk worker --once` and the logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassSummary {
    pub partitions: u32,
    pub applied: u64,
    pub skipped: u64,
    pub dead_lettered: u64,
}

/// A test-only crash point: `RISKDESK_TEST_CRASH=ingest.after_commit:N` kills the process
/// after its Nth commit of a message, before the message is acknowledged (what a kill -9
/// at the worst moment leaves behind).
fn crash_after_commit() -> Option<u64> {
    let v = std::env::var("RISKDESK_TEST_CRASH").ok()?;
    v.strip_prefix("ingest.after_commit:")?.parse().ok()
}

struct Owned {
    epoch: i64,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// One ingest worker: the partitions it owns, each drained by a task of its own.
pub struct IngestWorker {
    ctx: Arc<Ctx>,
    detector: Arc<Detector>,
    scale: Arc<Scale>,
    holder: String,
    owned: Mutex<BTreeMap<u32, Owned>>,
    commits: std::sync::atomic::AtomicU64,
    crash_after: Option<u64>,
    /// Units of work in progress at most (`Scale::worker_concurrency`).
    units: tokio::sync::Semaphore,
}

fn wall_micros() -> i64 {
    Timestamp::now().as_microsecond()
}

impl IngestWorker {
    pub fn new(ctx: Arc<Ctx>, detector: Arc<Detector>, scale: Arc<Scale>) -> Arc<Self> {
        let id = Uuid::now_v7().simple().to_string();
        let units = tokio::sync::Semaphore::new(scale.worker_concurrency.max(1));
        Arc::new(IngestWorker {
            units,
            ctx,
            detector,
            scale,
            holder: format!("pid{}-{}", std::process::id(), &id[id.len() - 12..]),
            owned: Mutex::new(BTreeMap::new()),
            commits: Default::default(),
            crash_after: crash_after_commit(),
        })
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn owned_list(&self) -> Vec<(u32, i64)> {
        self.owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(p, o)| (*p, o.epoch))
            .collect()
    }

    /// This worker's fair share of the partitions, by its rank among the live workers.
    async fn share(&self) -> Result<u32, AppError> {
        let now = wall_micros();
        let ttl = self.scale.lease.as_micros() as i64;
        leases::hold(
            &self.ctx.db,
            &format!("{}{}", self.scale.worker_prefix(), self.holder),
            &self.holder,
            now,
            now + ttl,
        )
        .await?;
        let live: Vec<String> = leases::with_prefix(&self.ctx.db, &self.scale.worker_prefix())
            .await?
            .into_iter()
            .filter(|l| l.lease_until >= now)
            .map(|l| l.holder)
            .collect();
        let n = live.len().max(1) as u32;
        let rank = live.iter().position(|h| *h == self.holder).unwrap_or(0) as u32;
        let p = self.scale.stream.settings().partitions;
        Ok(p / n + u32::from(rank < p % n))
    }

    /// Renews the partitions it owns (dropping any it lost), gives up what is above its share
    /// and claims free or expired partitions up to it. Returns the partitions newly claimed
    /// (their consumers recreated) for the caller to drain.
    async fn rebalance(
        self: &Arc<Self>,
        spawn: bool,
    ) -> Result<Vec<(u32, i64, riskdesk_connectors::jetstream::Partition)>, AppError> {
        let share = self.share().await?;
        let now = wall_micros();
        let until = now + self.scale.lease.as_micros() as i64;
        for (p, epoch) in self.owned_list() {
            let name = self.scale.partition_lease(p);
            let kept = leases::hold(&self.ctx.db, &name, &self.holder, now, until).await?;
            if kept.as_ref().is_none_or(|l| l.epoch != epoch) {
                tracing::warn!(partition = p, "lost the partition's lease");
                self.stop_partition(p, false).await;
            }
        }
        let mine = self.owned_list();
        if mine.len() as u32 > share {
            for (p, _) in mine.iter().rev().take(mine.len() - share as usize) {
                self.stop_partition(*p, true).await;
            }
        }
        let mut claimed = Vec::new();
        let total = self.scale.stream.settings().partitions;
        let mut have = self.owned_list().len() as u32;
        for p in 0..total {
            if have >= share {
                break;
            }
            if self
                .owned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&p)
            {
                continue;
            }
            let name = self.scale.partition_lease(p);
            let Some(lease) = leases::hold(&self.ctx.db, &name, &self.holder, now, until).await?
            else {
                continue;
            };
            let part = match self.scale.stream.take_partition(p).await {
                Ok(c) => c,
                Err(e) => {
                    leases::release(&self.ctx.db, &name, &self.holder).await?;
                    return Err(AppError::Unavailable {
                        detail: e.to_string(),
                        retry_after_secs: 2,
                    });
                }
            };
            tracing::info!(partition = p, epoch = lease.epoch, "took the partition");
            metrics::counter!("riskdesk_ingest_partitions_taken_total").increment(1);
            have += 1;
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let task = if spawn {
                let me = self.clone();
                Some(tokio::spawn(me.drain_forever(
                    p,
                    lease.epoch,
                    part,
                    stopped,
                )))
            } else {
                claimed.push((p, lease.epoch, part));
                None
            };
            self.owned.lock().unwrap_or_else(|e| e.into_inner()).insert(
                p,
                Owned {
                    epoch: lease.epoch,
                    stop,
                    task,
                },
            );
        }
        Ok(claimed)
    }

    /// Stops the partition's task (it finishes the message in hand) and, if `release`, gives
    /// its lease up for another worker to take at once.
    async fn stop_partition(&self, p: u32, release: bool) {
        let owned = self
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&p);
        if let Some(o) = owned {
            let _ = o.stop.send(true);
            if let Some(t) = o.task {
                let _ = t.await;
            }
        }
        if release {
            let name = self.scale.partition_lease(p);
            if let Err(e) = leases::release(&self.ctx.db, &name, &self.holder).await {
                tracing::warn!(partition = p, error = %e, "could not give the partition up");
            }
        }
    }

    /// Runs until `stop`: rebalances every third of the lease, and each owned partition is
    /// drained by its own task. On stop, every partition is given up (a rolling restart has
    /// no lease gap).
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let every = self.scale.lease / 3;
        loop {
            if let Err(e) = self.rebalance(true).await {
                tracing::warn!(error = %e, "ingest worker: rebalancing failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => break,
            }
        }
        self.give_up_all().await;
    }

    async fn give_up_all(&self) {
        for (p, _) in self.owned_list() {
            self.stop_partition(p, true).await;
        }
        let name = format!("{}{}", self.scale.worker_prefix(), self.holder);
        let _ = leases::release(&self.ctx.db, &name, &self.holder).await;
    }

    /// One pass, for `riskdesk worker --roles ingest --once` and tests: claims this worker's
    /// share, applies every message waiting in those partitions, and gives them up.
    pub async fn pass(self: &Arc<Self>) -> Result<PassSummary, AppError> {
        let claimed = self.rebalance(false).await?;
        let mut s = PassSummary {
            partitions: claimed.len() as u32,
            ..Default::default()
        };
        for (p, epoch, part) in claimed {
            'partition: loop {
                let batch = part
                    .fetch(FETCH, Duration::from_millis(200))
                    .await
                    .map_err(|e| AppError::Unavailable {
                        detail: e.to_string(),
                        retry_after_secs: 2,
                    })?;
                if batch.is_empty() {
                    break;
                }
                for d in &batch {
                    match self.handle(p, epoch, d).await? {
                        Applied::Now(_) | Applied::Before(_) => s.applied += 1,
                        Applied::Skipped => s.skipped += 1,
                        Applied::DeadLettered => s.dead_lettered += 1,
                        Applied::Lost => break 'partition,
                    }
                }
            }
        }
        self.give_up_all().await;
        Ok(s)
    }

    async fn drain_forever(
        self: Arc<Self>,
        p: u32,
        epoch: i64,
        part: riskdesk_connectors::jetstream::Partition,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            let batch = tokio::select! {
                b = part.fetch(FETCH, Duration::from_secs(1)) => b,
                _ = stop.changed() => return,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "fetch failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            for d in &batch {
                // The message in hand is finished even when asked to stop.
                let _unit = tokio::select! {
                    u = self.units.acquire() => match u {
                        Ok(u) => u,
                        Err(_) => return,
                    },
                    // Not started: delivered again to whoever owns the partition next.
                    _ = stop.changed() => return,
                };
                match self.handle(p, epoch, d).await {
                    Ok(Applied::Lost) => {
                        tracing::warn!(partition = p, "another worker holds the partition now");
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // Storage out of reach and the like: stop here; the message is
                        // delivered again, and the fence tells what was done.
                        tracing::warn!(partition = p, error = %e, "ingest failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
                if *stop.borrow() {
                    return;
                }
            }
        }
    }

    /// Applies one message and acknowledges it (and answers its reply subject).
    async fn handle(&self, p: u32, epoch: i64, d: &Delivery) -> Result<Applied, AppError> {
        let r = self.apply(p, epoch, d).await?;
        if r == Applied::Lost {
            return Ok(r);
        }
        if let (Some(n), Applied::Now(_)) = (self.crash_after, &r) {
            let done = self
                .commits
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                + 1;
            if done >= n {
                eprintln!("RISKDESK_TEST_CRASH: stopping dead after commit {done}");
                std::process::abort();
            }
        }
        if let Err(e) = d.ack().await {
            // Committed: a redelivery is skipped by the fence.
            tracing::warn!(partition = p, error = %e, "ack failed");
        }
        if let (Some(reply), Applied::Now(body) | Applied::Before(body)) = (&d.reply_to, &r) {
            let _ = self.scale.stream.reply(reply.clone(), body.clone()).await;
        }
        Ok(r)
    }

    async fn apply(&self, p: u32, epoch: i64, d: &Delivery) -> Result<Applied, AppError> {
        let stream = self.scale.stream.settings().stream.clone();
        let lease = self.scale.partition_lease(p);
        let env: Result<Envelope, String> =
            serde_json::from_slice(&d.payload).map_err(|e| format!("unreadable message: {e}"));
        let mut failures = 0u32;
        loop {
            let mut tx = self.ctx.begin().await?;
            match offsets::fence(&mut tx, &stream, p, &lease, &self.holder, epoch, d.sequence)
                .await?
            {
                Fence::Lost => return Ok(Applied::Lost),
                Fence::Done => {
                    metrics::counter!("riskdesk_ingest_redelivered_skipped_total").increment(1);
                    return Ok(Applied::Skipped);
                }
                Fence::Next => {}
            }
            let env = match &env {
                Ok(e) if e.v == 1 => e,
                Ok(e) => {
                    let why = format!("message format {} is not known to this version", e.v);
                    return self.dead_letter(tx, p, d, &why).await;
                }
                Err(why) => return self.dead_letter(tx, p, d, why).await,
            };
            let tenant = TenantId(env.tenant);
            if let Some(prev) = offsets::applied_part(&mut tx, tenant, env.batch, env.part).await? {
                tx.commit().await?;
                let r = format!(
                    "{{\"part\":{},\"summary\":{}}}",
                    prev.part, prev.summary_json
                );
                return Ok(Applied::Before(r.into_bytes()));
            }
            let lines: Vec<Result<Event, String>> = env
                .events
                .iter()
                .map(|(_, raw)| {
                    serde_json::from_str::<RawEvent>(raw.get())
                        .map_err(|e| e.to_string())?
                        .validate()
                })
                .collect();
            match super::ingest(
                &mut tx,
                tenant,
                &self.detector,
                lines,
                env.received_at,
                env.as_of,
            )
            .await
            {
                Ok(mut summary) => {
                    for r in &mut summary.rejected {
                        r.index = env.events.get(r.index).map(|(i, _)| *i).unwrap_or(r.index);
                    }
                    summary.rejected.extend(env.rejected.iter().cloned());
                    summary.rejected.sort_by_key(|r| r.index);
                    let json = serde_json::to_string(&summary)
                        .map_err(|e| AppError::Internal(e.to_string()))?;
                    offsets::record_part(
                        &mut tx,
                        tenant,
                        env.batch,
                        env.part,
                        env.parts,
                        &stream,
                        d.sequence,
                        &json,
                        wall_micros(),
                    )
                    .await?;
                    tx.commit().await?;
                    metrics::counter!("riskdesk_ingest_stream_events_total")
                        .increment(env.events.len() as u64);
                    let r = format!("{{\"part\":{},\"summary\":{json}}}", env.part);
                    return Ok(Applied::Now(r.into_bytes()));
                }
                Err(AppError::Contention(e)) => {
                    drop(tx);
                    tracing::info!(error = %e, "ingest lost a conflict; running it again");
                }
                Err(AppError::Internal(e)) => {
                    // Storage trouble: not the message's fault. Retried until it passes;
                    // the partition waits (and the stream keeps the backlog).
                    drop(tx);
                    failures += 1;
                    let _ = d.in_progress().await;
                    tracing::warn!(error = %e, failures, "ingest failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(25))))
                        .await;
                }
                Err(e) => {
                    // Deterministic: the same message fails the same way. Kept, and the
                    // partition moves on.
                    drop(tx);
                    let mut tx = self.ctx.begin().await?;
                    match offsets::fence(
                        &mut tx,
                        &stream,
                        p,
                        &lease,
                        &self.holder,
                        epoch,
                        d.sequence,
                    )
                    .await?
                    {
                        Fence::Lost => return Ok(Applied::Lost),
                        Fence::Done => return Ok(Applied::Skipped),
                        Fence::Next => {}
                    }
                    return self.dead_letter(tx, p, d, &e.to_string()).await;
                }
            }
        }
    }

    async fn dead_letter(
        &self,
        mut tx: crate::kernel::Uow,
        p: u32,
        d: &Delivery,
        why: &str,
    ) -> Result<Applied, AppError> {
        tracing::error!(
            partition = p,
            seq = d.sequence,
            error = why,
            "message dead-lettered"
        );
        metrics::counter!("riskdesk_ingest_dead_letters_total").increment(1);
        offsets::dead_letter(
            &mut tx,
            &self.scale.stream.settings().stream,
            p,
            d.sequence,
            &String::from_utf8_lossy(&d.payload),
            why,
            wall_micros(),
        )
        .await?;
        tx.commit().await?;
        Ok(Applied::DeadLettered)
    }
}
