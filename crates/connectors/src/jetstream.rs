//! The event stream of a scaled-out installation: NATS JetStream (nats-server 2.9.10 or later),
//! one work-queue stream split into `partitions` subjects `<prefix>.ev.<p>` by a hash of the
//! customer. API processes publish validated batches here; ingest workers own partitions (the
//! application layer leases them in the database) and pull each partition through its own
//! durable consumer. What is here is the protocol only: stream and consumer settings, publish
//! with `Nats-Msg-Id` de-duplication, pull, acknowledge, and the core-NATS replies.
//!
//! Facts this relies on (checked on 2.9.10, `../shared/reference/scale-out.md` §2): a
//! work-queue stream removes a message once acknowledged and allows one consumer per subject;
//! `discard: new` refuses a publish when the stream is full instead of dropping old messages;
//! a consumer hands out new messages before expired ones until `ack_wait`, so a new owner of
//! a partition deletes and recreates its consumer to be delivered from the oldest
//! unacknowledged message; a plain ack is fire-and-forget, so acks here wait for the server.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;

/// `[scale]`: where the stream is and how it is cut.
#[derive(Clone, Debug)]
pub struct StreamSettings {
    pub url: String,
    /// The stream's name (tests use one unique to the run).
    pub stream: String,
    /// Subjects are `<prefix>.ev.<partition>`.
    pub subject_prefix: String,
    /// Fixed when the stream is created (checked against the database at start).
    pub partitions: u32,
    /// 1 on one server; 3 in production (a PubAck then means a quorum has the message).
    pub replicas: usize,
    /// The backlog's limit: past it a publish is refused (the API answers 503).
    pub max_bytes: i64,
    /// How long a delivered message may go unacknowledged before it is delivered again.
    pub ack_wait: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            url: "nats://127.0.0.1:4222".into(),
            stream: "RD_EVENTS".into(),
            subject_prefix: "rd".into(),
            partitions: 32,
            replicas: 1,
            max_bytes: 8 << 30,
            ack_wait: Duration::from_secs(60),
        }
    }
}

/// The largest message this stream takes (the server's default `max_payload`).
pub const MAX_MESSAGE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The server is unreachable or refused the connection.
    #[error("NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The stream refused the publish (full: `discard: new`) or did not answer in time.
    #[error("the event stream refused a publish: {0}")]
    Refused(String),
    /// Any other failure of a JetStream call.
    #[error("NATS JetStream: {0}")]
    Other(String),
}

fn other(e: impl std::fmt::Display) -> StreamError {
    StreamError::Other(e.to_string())
}

/// FNV-1a, 32 bits: the hash nats-server's own `partition()` subject mapping uses, so the
/// mapping could move to the server later without moving any customer.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// One message to publish: its partition, its de-duplication id and its body.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub partition: u32,
    pub msg_id: String,
    /// Where the worker answers once the message is applied (core NATS, best effort).
    pub reply_to: Option<String>,
    pub payload: Vec<u8>,
}

/// What the stream said of one published message.
#[derive(Clone, Copy, Debug)]
pub struct Acked {
    pub sequence: u64,
    /// The same `Nats-Msg-Id` was stored within the de-duplication window: not stored again.
    pub duplicate: bool,
}

/// A connection to the event stream.
#[derive(Clone)]
pub struct EventStream {
    client: async_nats::Client,
    js: jetstream::Context,
    settings: StreamSettings,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("settings", &self.settings)
            .finish()
    }
}

/// The header a reply subject travels in.
pub const REPLY_HEADER: &str = "Rd-Reply";

impl EventStream {
    /// Connects and creates the stream if it does not exist (an existing one is used as it is).
    pub async fn connect(settings: StreamSettings) -> Result<Self, StreamError> {
        if settings.partitions == 0 || settings.partitions > 1024 {
            return Err(StreamError::Other(format!(
                "partitions must be 1 to 1024, not {}",
                settings.partitions
            )));
        }
        let client = async_nats::ConnectOptions::new()
            .name("riskdesk")
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(&settings.url)
            .await
            .map_err(|e| StreamError::Connect {
                url: settings.url.clone(),
                reason: e.to_string(),
            })?;
        // A first round trip: `retry_on_initial_connect` would otherwise hide a server that
        // is not there.
        tokio::time::timeout(Duration::from_secs(5), client.flush())
            .await
            .map_err(|_| StreamError::Connect {
                url: settings.url.clone(),
                reason: "no answer within 5 s".into(),
            })?
            .map_err(|e| StreamError::Connect {
                url: settings.url.clone(),
                reason: e.to_string(),
            })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(10))
            .build(client.clone());
        let s = EventStream {
            client,
            js,
            settings,
        };
        s.ensure_stream().await?;
        Ok(s)
    }

    pub fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.settings.stream.clone(),
            subjects: vec![format!("{}.ev.*", self.settings.subject_prefix)],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::New,
            max_bytes: self.settings.max_bytes,
            max_message_size: MAX_MESSAGE as i32,
            duplicate_window: Duration::from_secs(120),
            num_replicas: self.settings.replicas,
            ..Default::default()
        }
    }

    async fn ensure_stream(&self) -> Result<(), StreamError> {
        self.js
            .get_or_create_stream(self.stream_config())
            .await
            .map_err(other)?;
        Ok(())
    }

    /// The subject of partition `p`.
    pub fn subject(&self, p: u32) -> String {
        format!("{}.ev.{p}", self.settings.subject_prefix)
    }

    /// The partition a key (tenant and customer) belongs to.
    pub fn partition_of(&self, key: &[u8]) -> u32 {
        fnv1a32(key) % self.settings.partitions
    }

    /// Publishes every message with its PubAck in flight together, and waits for them all.
    /// An error means at least one was not acknowledged (the others may be stored: publish
    /// again under the same ids, which the stream de-duplicates).
    pub async fn publish(&self, out: Vec<Outgoing>) -> Result<Vec<Acked>, StreamError> {
        let mut pending = Vec::with_capacity(out.len());
        for m in out {
            let mut p = jetstream::message::PublishMessage::build()
                .payload(Bytes::from(m.payload))
                .message_id(&m.msg_id);
            if let Some(r) = &m.reply_to {
                p = p.header(REPLY_HEADER, r.as_str());
            }
            let fut = self
                .js
                .send_publish(self.subject(m.partition), p)
                .await
                .map_err(|e| StreamError::Refused(e.to_string()))?;
            pending.push(fut);
        }
        let mut acks = Vec::with_capacity(pending.len());
        for fut in pending {
            let a = fut.await.map_err(|e| StreamError::Refused(e.to_string()))?;
            acks.push(Acked {
                sequence: a.sequence,
                duplicate: a.duplicate,
            });
        }
        Ok(acks)
    }

    /// A subject only this connection listens on (for replies).
    pub fn new_inbox(&self) -> String {
        self.client.new_inbox()
    }

    /// Listens on `subject` (core NATS): subscribe before publishing what will be answered.
    pub async fn subscribe(&self, subject: String) -> Result<Replies, StreamError> {
        Ok(Replies(
            self.client.subscribe(subject).await.map_err(other)?,
        ))
    }

    /// Answers on a reply subject (core NATS: best effort, nobody may be listening).
    pub async fn reply(&self, subject: String, payload: Vec<u8>) -> Result<(), StreamError> {
        self.client
            .publish(subject, Bytes::from(payload))
            .await
            .map_err(other)
    }

    fn consumer_name(&self, p: u32) -> String {
        format!("ingest-p{p}")
    }

    fn consumer_config(&self, p: u32) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(self.consumer_name(p)),
            filter_subject: self.subject(p),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            ack_wait: self.settings.ack_wait,
            max_ack_pending: 64,
            max_deliver: -1,
            ..Default::default()
        }
    }

    /// Takes partition `p` over: its consumer is deleted and created again, so delivery starts
    /// at the oldest unacknowledged message (a shared consumer would first hand the new owner
    /// messages after the ones the old owner left unacknowledged).
    pub async fn take_partition(&self, p: u32) -> Result<Partition, StreamError> {
        let stream = self
            .js
            .get_stream(&self.settings.stream)
            .await
            .map_err(other)?;
        // Not found is fine: nobody had it yet.
        let _ = stream.delete_consumer(&self.consumer_name(p)).await;
        let consumer = stream
            .create_consumer(self.consumer_config(p))
            .await
            .map_err(other)?;
        Ok(Partition {
            partition: p,
            consumer,
        })
    }

    /// Messages stored and not yet acknowledged, over every partition.
    pub async fn backlog(&self) -> Result<u64, StreamError> {
        let mut stream = self
            .js
            .get_stream(&self.settings.stream)
            .await
            .map_err(other)?;
        Ok(stream.info().await.map_err(other)?.state.messages)
    }

    /// Deletes the stream and everything in it (tests, and `riskdesk stream delete`).
    pub async fn delete(&self) -> Result<(), StreamError> {
        self.js
            .delete_stream(&self.settings.stream)
            .await
            .map_err(other)?;
        Ok(())
    }
}

/// Replies arriving on an inbox.
pub struct Replies(async_nats::Subscriber);

impl Replies {
    /// The next reply, or `None` when `deadline` passes first.
    pub async fn next_before(&mut self, deadline: tokio::time::Instant) -> Option<Bytes> {
        match tokio::time::timeout_at(deadline, self.0.next()).await {
            Ok(Some(m)) => Some(m.payload),
            _ => None,
        }
    }
}

/// One partition's consumer, held by the worker that owns the partition.
pub struct Partition {
    pub partition: u32,
    consumer: consumer::Consumer<consumer::pull::Config>,
}

/// A message delivered from a partition.
pub struct Delivery {
    /// Its place in the stream: what the offset fence compares.
    pub sequence: u64,
    /// How many times it has been delivered (1 the first time).
    pub delivered: i64,
    pub reply_to: Option<String>,
    pub payload: Bytes,
    msg: jetstream::Message,
}

impl Delivery {
    /// Acknowledges it and waits for the server to confirm: an ack lost in flight would have
    /// the message delivered again (harmless behind the fence, but not free).
    pub async fn ack(&self) -> Result<(), StreamError> {
        self.msg.double_ack().await.map_err(other)
    }

    /// Tells the server the message is still being worked on (restarts `ack_wait`).
    pub async fn in_progress(&self) -> Result<(), StreamError> {
        self.msg
            .ack_with(jetstream::AckKind::Progress)
            .await
            .map_err(other)
    }
}

impl Partition {
    /// Up to `max` messages, in stream order, waiting at most `wait` for the first.
    pub async fn fetch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, StreamError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(other)?;
        let mut out = Vec::new();
        while let Some(m) = batch.next().await {
            let msg = m.map_err(other)?;
            let (sequence, delivered) = {
                let info = msg.info().map_err(other)?;
                (info.stream_sequence, info.delivered)
            };
            let reply_to = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(REPLY_HEADER))
                .map(|v| v.as_str().to_owned());
            out.push(Delivery {
                sequence,
                delivered,
                reply_to,
                payload: msg.payload.clone(),
                msg,
            });
        }
        Ok(out)
    }
}
