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
//! - the Redis Cluster engine (crate `baton-redis`), where each operation is one server-side
//!   script on one slot.
//!
//! The engine owns what spans queues (dead-letter moves, redrive, the registry of queues) and
//! what spans time (long-poll waits and wake-ups). It does not know HTTP.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
#[cfg(any(test, feature = "conformance"))]
pub mod counting;
mod durable;
mod local;
mod locks;
mod memory;
mod queue_engine;
mod schedules;
mod stream_engine;
mod stream_types;
mod topic_engine;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use baton_core::stream::{
    Appended, ConsumerName, GroupConfig, GroupName, ProducerSeq, ReadFrom, RecordId, StartPosition,
};
use baton_core::topic::{Put, RoutingKey, Subscription};
use baton_core::{
    Acked, Delivery, MessageId, Notify, PeekedMessage, QueueConfig, QueueError, QueueLimits,
    QueueName, QueueStats, ReceiptError, ReceiptHandle, SendEntry, SendOutcome, Seq, StatusRecord,
    StreamConfig, StreamError, StreamName, SubscriptionName, Timestamp, TopicName,
    VisibilityOutcome,
};

pub use durable::{
    scan_encryption, verify, StorageConfig, StorageStats, VerifyReport, DISK_FREE_MIN_SEGMENTS,
};
pub use local::LocalEngine;
pub use locks::{FencedOutcome, FencedWrite, LockEngine, LockEngineError, LockSettings};
pub use memory::{available_memory, resident_bytes, MemoryAlarm, MemoryProbe, MemoryStatus};
pub use queue_engine::QueueEngine;
pub use schedules::{QueueFiring, ScheduleEngine, ScheduleEngineError, SchedulePlans};
pub use stream_engine::{StreamEngine, StreamEngineError};
pub use stream_types::{
    GroupRecord, GroupView, NewRecord, PendingView, StreamRead, StreamRecord, StreamView,
    STREAMS_MAX,
};
pub use topic_engine::{TopicEngine, TopicEngineError};

/// The data directory's disk as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskStatus {
    /// Free bytes at the last check.
    pub free_bytes: u64,
    /// The alarm's threshold (`disk_free_min`).
    pub free_min_bytes: u64,
    /// The alarm is on: producers are refused.
    pub low: bool,
    /// The emergency reserve is in place.
    pub reserve_present: bool,
    pub reserve_bytes: u64,
    /// Sends, publishes and stream appends refused by the alarm since start.
    pub refused_writes: u64,
    /// The log stopped because the disk is full (it reopens once there is space).
    pub log_stopped_full: bool,
}

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
    /// The queue's HTTP push subscription, if it has one.
    pub push: Option<PushSpec>,
}

/// A queue's HTTP push subscription as the engine keeps it (`QueueEngine::set_push`): the
/// broker consumes the queue and POSTs each message to `url`. Checked by the server before it
/// is stored; `None` fields take the server's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSpec {
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub concurrency: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub rate_per_s: Option<u32>,
}

/// A change of a queue's metadata (`Engine::update_queue_meta`): keys to put and to remove,
/// and values attributes must have first (`None`: absent), for read-modify-writes of one
/// attribute (an SQS policy) that retry on `MetaConflict`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaPatch {
    pub put_tags: BTreeMap<String, String>,
    pub remove_tags: Vec<String>,
    pub put_attributes: BTreeMap<String, String>,
    pub remove_attributes: Vec<String>,
    pub expect_attributes: BTreeMap<String, Option<String>>,
}

impl MetaPatch {
    /// Applies the patch to a queue's maps, or names the first attribute whose value is not
    /// the expected one.
    pub fn apply(
        self,
        tags: &mut BTreeMap<String, String>,
        attributes: &mut BTreeMap<String, String>,
    ) -> Result<(), String> {
        for (key, expected) in &self.expect_attributes {
            if attributes.get(key) != expected.as_ref() {
                return Err(key.clone());
            }
        }
        for key in &self.remove_tags {
            tags.remove(key);
        }
        tags.extend(self.put_tags);
        for key in &self.remove_attributes {
            attributes.remove(key);
        }
        attributes.extend(self.put_attributes);
        Ok(())
    }
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
    #[error("the metadata attribute {attribute} of queue {queue} changed meanwhile; read it again and retry")]
    MetaConflict { queue: String, attribute: String },
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
    /// The write was applied but its durability could not be confirmed in time; a retry with
    /// the same ids is exactly-once.
    #[error("the outcome of the write is unknown: {reason}")]
    OutcomeUnknown { reason: String },
    #[error("disk space low: {free_bytes} bytes free on the data directory's disk, below disk_free_min ({min_bytes}); sends, publishes and stream appends are refused until space is freed, receives and acks go on")]
    DiskLow { free_bytes: u64, min_bytes: u64 },
    #[error("messages hold {used_bytes} bytes of memory, at or above memory_high_watermark ({high_watermark_bytes}); sends, publishes and stream appends are refused until consumers drain, receives and acks go on")]
    MemoryPressure {
        used_bytes: u64,
        high_watermark_bytes: u64,
    },
    #[error("the disk is full, nothing was stored: {reason}")]
    DiskFull { reason: String },
    #[error("the batch is {size_bytes} bytes, more than the limit of {max_bytes}")]
    BatchTooLarge { size_bytes: u64, max_bytes: u64 },
    /// The engine this node runs has no such operation (yet): a lasting answer of this
    /// deployment, not a failure, so callers neither retry it soon nor count it as an outage.
    #[error("{feature} are not available on the {engine} engine yet")]
    NotOnEngine {
        feature: &'static str,
        engine: &'static str,
    },
}

/// Every broker operation the server needs, by concern: queues ([`QueueEngine`]), streams
/// ([`StreamEngine`]), topics ([`TopicEngine`]) and locks ([`LockEngine`]), plus the
/// engine's own lifecycle here. Implementations must be safe to call from many tasks at once;
/// each call is atomic with respect to the queues it touches. Through `Arc<dyn Engine>` every
/// operation is reachable without naming its trait.
#[async_trait]
pub trait Engine:
    QueueEngine + StreamEngine + TopicEngine + LockEngine + ScheduleEngine + Send + Sync + 'static
{
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

    /// Whether other nodes may change this engine's state too (cluster mode), so a node must
    /// re-read what it keeps in memory (push subscriptions) rather than trust its own view.
    fn shared_by_nodes(&self) -> bool {
        false
    }

    /// Write-ahead-log counters, for metrics; `None` without durable storage.
    fn storage_stats(&self) -> Option<StorageStats> {
        None
    }

    /// Memory in use and the memory alarm; `None` where the engine holds no messages in
    /// this process.
    fn memory_status(&self) -> Option<MemoryStatus> {
        None
    }

    /// The data directory's free space and the disk-free alarm; `None` without a disk.
    fn disk_status(&self) -> Option<DiskStatus> {
        None
    }

    /// Loads durable state; until it returns, operations answer `NotReady`. Engines without
    /// durable state are ready at once.
    async fn recover(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Applies expiries and dead-letter moves that became due without traffic. The server
    /// calls it every `tick_interval_ms`.
    async fn tick(&self);

    /// Ends every waiting receive (they answer with what they have) and makes new ones return
    /// at once. Part of graceful shutdown.
    fn begin_shutdown(&self);
    /// Registers the function called with the messages carrying `notify` that complete (are
    /// acked) or are dead-lettered, after their record was submitted to the log. Replaces any
    /// earlier hook. The hook itself must not block; it runs under no lock. An ack awaits the
    /// future it returns before answering (so the hook can make the callback job durable
    /// first: an acknowledged ack implies a durable job); a dead-letter move, which happens
    /// inside other operations, spawns it onto the runtime.
    fn set_completion_hook(&self, hook: CompletionHook);

    /// The completions of the acks and dead-letter arrivals the last recovery replayed (the
    /// log after the checkpoint), without replies; emptied by the call. A crash between such
    /// a record and the callback job the hook writes for it loses the job; the server
    /// re-creates the jobs that are missing from these.
    fn take_recovered_completions(&self) -> Vec<Completion>;
}

/// A topic as seen from outside.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicView {
    pub name: TopicName,
    pub created_at: Timestamp,
    pub subscriptions: Vec<Subscription>,
    pub stats: TopicStats,
}

/// Counters since the engine started (they are not persisted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicStats {
    /// Messages published.
    pub published_total: u64,
    /// Copies delivered to targets, over all messages.
    pub delivered_total: u64,
    /// Messages that matched no subscription (published, delivered nowhere).
    pub unmatched_total: u64,
}

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishEntry {
    /// Chosen by the caller; every copy carries it.
    pub id: MessageId,
    pub routing_key: RoutingKey,
    pub body: std::sync::Arc<str>,
    pub attributes: baton_core::MessageAttributes,
    /// Needed when a FIFO queue is a target.
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOutcome {
    pub id: MessageId,
    /// Subscriptions the message reached.
    pub delivered_to: u32,
}

/// How a message with `notify` left its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionKind {
    /// Acked by a consumer or a push target.
    Completed,
    /// Moved to the dead-letter queue after its last allowed receive.
    DeadLettered,
}

/// A message with `notify` that completed or was dead-lettered: what its callback reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub queue: QueueName,
    pub id: MessageId,
    pub kind: CompletionKind,
    pub sent_at: Timestamp,
    pub completed_at: Timestamp,
    pub receive_count: u32,
    pub notify: Notify,
    /// The consumer's reply (JSON text, opaque to the engine), when its ack carried one.
    pub reply: Option<std::sync::Arc<str>>,
}

impl Completion {
    /// What the ack of message `acked` of `queue` at `now` reports (none without `notify`).
    pub(crate) fn of_ack(
        queue: &QueueName,
        acked: &Acked,
        now: Timestamp,
        reply: Option<std::sync::Arc<str>>,
    ) -> Option<Completion> {
        Some(Completion {
            queue: queue.clone(),
            id: acked.id,
            kind: CompletionKind::Completed,
            sent_at: acked.sent_at,
            completed_at: now,
            receive_count: acked.receive_count,
            notify: acked.notify.clone()?,
            reply,
        })
    }

    /// What the dead-letter arrival of `moved` at `now` reports (none without `notify`).
    pub(crate) fn of_dead_letter(
        moved: &baton_core::MovedMessage,
        now: Timestamp,
    ) -> Option<Completion> {
        Some(Completion {
            queue: moved.source.clone(),
            id: moved.id,
            kind: CompletionKind::DeadLettered,
            sent_at: moved.sent_at,
            completed_at: now,
            receive_count: moved.history.last().map_or(0, |e| e.receive_count),
            notify: moved.notify.clone()?,
            reply: None,
        })
    }
}

/// See `Engine::set_completion_hook`.
pub type CompletionHook = std::sync::Arc<dyn Fn(Vec<Completion>) -> CompletionFuture + Send + Sync>;

/// What a `CompletionHook` returns: the hand-over of its completions, awaited by acks.
pub type CompletionFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The attributes in which `existing` and `requested` differ, as `field is a, requested b`
/// (what `EngineError::QueueExists` names), for every engine's `create_queue`.
pub fn config_differences(existing: &QueueConfig, requested: &QueueConfig) -> Vec<String> {
    local::differences(existing, requested)
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
