//! # baton-engine
//!
//! The boundary between the server and the state it drives. [`Engine`] speaks in whole broker
//! operations (create a queue, send a batch, receive with a lease and a long poll, ack a batch),
//! is async, and answers with everything a response needs in one call, never "get a key, then
//! set it". That shape lets three engines sit behind it:
//!
//! - [`LocalEngine::durable`] (the default, "embedded"): `baton-core` queues in memory, every
//!   change logged to a write-ahead log before it is acknowledged, recovered at start-up.
//! - [`LocalEngine::in_memory`] ("memory"): the same without the log. Fast, not durable.
//! - a Redis Cluster engine (planned), where each operation becomes one server-side script.
//!
//! The engine owns what spans queues (dead-letter moves, redrive, the registry of queues) and
//! what spans time (long-poll waits and wake-ups). It does not know HTTP.

mod durable;
mod local;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use baton_core::{
    Acked, Delivery, MessageId, PeekedMessage, QueueConfig, QueueError, QueueLimits, QueueName,
    QueueStats, ReceiptError, ReceiptHandle, SendEntry, SendOutcome, Seq, StatusRecord, Timestamp,
};

pub use durable::{verify, StorageConfig, StorageStats, VerifyReport};
pub use local::LocalEngine;

/// A queue as seen from outside: its name, attributes and statistics as of now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueView {
    pub name: QueueName,
    pub config: QueueConfig,
    pub stats: QueueStats,
    pub meta: QueueMeta,
}

/// What the engine keeps about a queue besides its semantics: when it was created and last
/// changed, its tags, and attributes that only an API layer interprets (such as the SQS
/// `Policy` or `KmsMasterKeyId`), stored verbatim and durably.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueMeta {
    pub created_at: Timestamp,
    pub modified_at: Timestamp,
    pub tags: BTreeMap<String, String>,
    pub attributes: BTreeMap<String, String>,
}

/// Upper bounds on `QueueMeta`, so a queue's metadata stays small.
pub const QUEUE_TAGS_MAX: usize = 50;
pub const QUEUE_META_ATTRIBUTES_MAX: usize = 32;
pub const QUEUE_META_VALUE_BYTES_MAX: usize = 20 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveOptions {
    /// 1..=`RECEIVE_MAX`.
    pub max: u32,
    /// How long to wait for a first message; `None` takes the queue's `receive_wait_ms`.
    pub wait_ms: Option<u64>,
    /// Lease length; `None` takes the queue's `visibility_timeout_ms`.
    pub visibility_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RedriveOptions {
    /// At most this many messages; `None` moves all that can be moved.
    pub max: Option<u64>,
    /// Destination for every message; `None` sends each back to the queue it was
    /// dead-lettered from (messages whose origin is unknown or gone stay).
    pub to: Option<QueueName>,
}

/// Whether `create_queue` made a new queue or found an identical one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New(QueueView),
    Existing(QueueView),
}

/// Engine-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    pub limits: QueueLimits,
    /// Long polls that may wait at once, over all queues.
    pub max_waiting_receives: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            limits: QueueLimits::default(),
            max_waiting_receives: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("queue {queue} does not exist")]
    QueueNotFound { queue: String },
    #[error("queue {queue} already exists with different attributes: {differences}")]
    QueueExists { queue: String, differences: String },
    #[error("queue {queue} is the dead-letter queue of {sources}; change their dead_letter first")]
    QueueInUse { queue: String, sources: String },
    #[error("invalid dead-letter queue: {reason}")]
    DeadLetterQueueInvalid { reason: String },
    #[error("message {id} is not known in queue {queue}")]
    MessageNotFound { queue: String, id: String },
    #[error("{limit} receives are already waiting (the server's max_waiting_receives)")]
    TooManyWaiters { limit: u32 },
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error("storage is not ready yet (recovering)")]
    NotReady,
    #[error("storage unavailable: {reason}")]
    StorageUnavailable { reason: String },
}

/// Every broker operation the server needs. Implementations must be safe to call from many
/// tasks at once; each call is atomic with respect to the queues it touches.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// A short name for `/v1/server`: "memory", "embedded", "redis".
    fn kind(&self) -> &'static str;

    /// True once storage is recovered and operations are served.
    fn is_ready(&self) -> bool;

    /// The time the engine stamps operations with.
    fn now(&self) -> Timestamp;

    /// Why storage refuses writes right now, if it does.
    fn storage_failure(&self) -> Option<String> {
        None
    }

    /// Write-ahead-log counters, for metrics; `None` without durable storage.
    fn storage_stats(&self) -> Option<StorageStats> {
        None
    }

    /// Loads durable state; until it returns, operations answer `NotReady`. Engines without
    /// durable state are ready at once.
    async fn recover(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Creates a queue, or returns the existing one if its attributes are identical
    /// (defaults included). A dead-letter queue must exist and be of the same kind.
    async fn create_queue(
        &self,
        name: QueueName,
        config: QueueConfig,
    ) -> Result<Created, EngineError>;

    /// Replaces the given parts of a queue's metadata (tags, API-specific attributes).
    async fn set_queue_meta(
        &self,
        name: &QueueName,
        tags: Option<BTreeMap<String, String>>,
        attributes: Option<BTreeMap<String, String>>,
    ) -> Result<QueueView, EngineError>;

    /// Replaces a queue's attributes; its kind cannot change.
    async fn update_queue(
        &self,
        name: &QueueName,
        config: QueueConfig,
    ) -> Result<QueueView, EngineError>;

    /// Deletes a queue and its messages. Refused while it is another queue's dead-letter queue.
    async fn delete_queue(&self, name: &QueueName) -> Result<(), EngineError>;

    async fn get_queue(&self, name: &QueueName) -> Result<QueueView, EngineError>;

    /// Every queue, ordered by name.
    async fn list_queues(&self) -> Result<Vec<QueueView>, EngineError>;

    /// Deletes every message of the queue; returns how many.
    async fn purge_queue(&self, name: &QueueName) -> Result<u64, EngineError>;

    /// Enqueues a batch atomically (all or nothing). Returns once the batch is durable.
    async fn send(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<SendOutcome>, EngineError>;

    /// Receives up to `max` messages, waiting up to `wait_ms` for the first one. Returns as
    /// soon as at least one message is available, or empty when the wait ends or the engine
    /// shuts down.
    async fn receive(
        &self,
        name: &QueueName,
        options: ReceiveOptions,
    ) -> Result<Vec<Delivery>, EngineError>;

    /// Acks each receipt; one result per receipt, in order.
    async fn ack(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
    ) -> Result<Vec<Result<Acked, ReceiptError>>, EngineError>;

    /// Nacks each receipt (visible after `delay_ms`, or the queue's retry backoff).
    async fn nack(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        delay_ms: Option<u64>,
    ) -> Result<Vec<Result<(), ReceiptError>>, EngineError>;

    /// Sets the lease of one message to end `timeout_ms` from now (0 releases it).
    async fn change_visibility(
        &self,
        name: &QueueName,
        receipt: ReceiptHandle,
        timeout_ms: u64,
    ) -> Result<(), EngineError>;

    async fn message_status(
        &self,
        name: &QueueName,
        id: MessageId,
    ) -> Result<StatusRecord, EngineError>;

    /// Moves messages out of dead-letter queue `name`; returns how many moved.
    async fn redrive(&self, name: &QueueName, options: RedriveOptions) -> Result<u64, EngineError>;

    /// Applies expiries and dead-letter moves that became due without traffic. The server
    /// calls it every `tick_interval_ms`.
    async fn tick(&self);

    /// Ends every waiting receive (they answer with what they have) and makes new ones return
    /// at once. Part of graceful shutdown.
    fn begin_shutdown(&self);

    /// Up to `max` (at most `baton_core::limits::PEEK_MAX`) live messages of queue `name` with
    /// a sequence above `after`, in sequence order, without consuming them: no lease, no
    /// receive count, nothing logged beyond what became due by now (the dashboard's browser).
    async fn peek(
        &self,
        name: &QueueName,
        after: Seq,
        max: u32,
    ) -> Result<Vec<PeekedMessage>, EngineError>;
}

/// A fresh random message id.
pub fn new_message_id() -> MessageId {
    MessageId::from_u128(uuid::Uuid::new_v4().as_u128())
}

/// The wall clock, in milliseconds since the Unix epoch.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl baton_core::Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp::from_millis(since_epoch.as_millis() as u64)
    }
}
