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

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
#[cfg(any(test, feature = "conformance"))]
pub mod counting;
mod durable;
mod local;
mod locks;
mod schedules;
mod stream_types;

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
    StreamConfig, StreamError, StreamName, Timestamp, VisibilityOutcome,
};

pub use durable::{verify, StorageConfig, StorageStats, VerifyReport, DISK_FREE_MIN_SEGMENTS};
pub use local::LocalEngine;
pub use locks::{FencedOutcome, FencedWrite, LockEngine, LockEngineError, LockSettings};
pub use schedules::{ScheduleEngine, ScheduleEngineError, SchedulePlans};
pub use stream_types::{
    GroupRecord, GroupView, NewRecord, PendingView, StreamRead, StreamRecord, StreamView,
    STREAMS_MAX,
};

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
    #[error("disk space low: {free_bytes} bytes free on the data directory's disk, below disk_free_min ({min_bytes}); sends, publishes and stream appends are refused until space is freed, receives and acks go on")]
    DiskLow { free_bytes: u64, min_bytes: u64 },
    #[error("the disk is full, nothing was stored: {reason}")]
    DiskFull { reason: String },
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("the engine already holds {limit} streams")]
    TooManyStreams { limit: usize },
    #[error("topic {topic} does not exist")]
    TopicNotFound { topic: String },
    #[error("subscription {subscription} does not exist in topic {topic}")]
    SubscriptionNotFound { topic: String, subscription: String },
    #[error(transparent)]
    Topic(#[from] baton_core::topic::TopicError),
    #[error("{kind} targets are not available yet; subscribe a queue (`{{\"queue\": name}}`) or a stream (`{{\"stream\": name}}`)")]
    TargetUnsupported { kind: &'static str },
    #[error("subscription {subscription} of topic {topic} delivers to queue {queue}, which does not exist; nothing was published")]
    SubscriptionTargetMissing {
        topic: String,
        subscription: String,
        queue: String,
    },
    #[error("{limit} topics exist already, the engine's limit")]
    TooManyTopics { limit: usize },
    #[error("the batch is {size_bytes} bytes, more than the limit of {max_bytes}")]
    BatchTooLarge { size_bytes: u64, max_bytes: u64 },
}

/// Every broker operation the server needs. Implementations must be safe to call from many
/// tasks at once; each call is atomic with respect to the queues it touches. Locks are their
/// own trait ([`LockEngine`]), which every engine implements too.
#[async_trait]
pub trait Engine: LockEngine + ScheduleEngine + Send + Sync + 'static {
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

    /// The data directory's free space and the disk-free alarm; `None` without a disk.
    fn disk_status(&self) -> Option<DiskStatus> {
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

    /// Changes a queue's metadata by `patch` in one atomic step, so that concurrent changes
    /// (from any node) keep each other's keys; `MetaConflict` when an expected value differs.
    async fn update_queue_meta(
        &self,
        name: &QueueName,
        patch: MetaPatch,
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
    /// Refused with `DiskLow` while the disk-free alarm is on.
    async fn send(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<SendOutcome>, EngineError>;

    /// SQS's SendMessageBatch in one call: entries that fail their own checks (size, body,
    /// delay, ids) get their error in their place and the others are enqueued atomically; a
    /// FIFO entry without a group id, or without a dedup id on a queue without content-based
    /// dedup, fails the whole call, as does a limit of the queue (max depth). One result per
    /// entry, in order.
    async fn send_each(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<Result<SendOutcome, QueueError>>, EngineError>;

    /// A send the broker itself makes on behalf of a consumer's operation (the callback job
    /// of an ack): like `send`, but not refused by the disk-free alarm, so that consumers can
    /// always drain a full disk.
    async fn send_internal(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<SendOutcome>, EngineError> {
        self.send(name, entries).await
    }

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

    /// SQS's `DeleteMessage`: deletes the message each receipt was issued for, by any receipt
    /// ever issued for it, not only the current lease's (`Queue::delete`; on a FIFO queue the
    /// message must be in flight). `Ok(None)` when the message had already left. One result
    /// per receipt, in order.
    async fn delete(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
    ) -> Result<Vec<Result<Option<Acked>, ReceiptError>>, EngineError>;

    /// SQS's `ChangeMessageVisibility`: by any receipt issued for the message, sets the lease
    /// it is under now (`Queue::change_visibility_of_message`).
    async fn change_message_visibility(
        &self,
        name: &QueueName,
        receipt: ReceiptHandle,
        timeout_ms: u64,
    ) -> Result<VisibilityOutcome, EngineError>;

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

    // ---- streams (semantics in `baton_core::stream`) ----

    /// Creates a stream, or returns the existing one (`false`) if its attributes are identical.
    async fn create_stream(
        &self,
        name: StreamName,
        config: StreamConfig,
    ) -> Result<(StreamView, bool), EngineError>;

    async fn get_stream(&self, name: &StreamName) -> Result<StreamView, EngineError>;

    /// Every stream, ordered by name.
    async fn list_streams(&self) -> Result<Vec<StreamView>, EngineError>;

    /// Deletes a stream, its records and its groups.
    async fn delete_stream(&self, name: &StreamName) -> Result<(), EngineError>;

    /// Appends a batch atomically (all or nothing); answers once it is durable, in request
    /// order. With `producer`, a retried batch lands once and answers the original offsets.
    /// Other engine parts (topic fan-out) call this too.
    async fn append(
        &self,
        name: &StreamName,
        producer: Option<ProducerSeq>,
        records: Vec<NewRecord>,
    ) -> Result<Vec<Appended>, EngineError>;

    /// Reads up to `max` records of one partition, waiting up to `wait_ms` at the head.
    async fn read_stream(
        &self,
        name: &StreamName,
        partition: u32,
        from: ReadFrom,
        max: u32,
        wait_ms: u64,
    ) -> Result<StreamRead, EngineError>;

    async fn create_group(
        &self,
        name: &StreamName,
        group: GroupName,
        config: GroupConfig,
    ) -> Result<(GroupView, bool), EngineError>;

    async fn get_group(
        &self,
        name: &StreamName,
        group: &GroupName,
    ) -> Result<GroupView, EngineError>;

    async fn delete_group(&self, name: &StreamName, group: &GroupName) -> Result<(), EngineError>;

    /// Delivers up to `max` new records to `consumer` (pending for it until acked), waiting up
    /// to `wait_ms` for a first one.
    async fn group_read(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        max: u32,
        wait_ms: u64,
    ) -> Result<Vec<GroupRecord>, EngineError>;

    /// Acks each id; one result per id, in order.
    async fn group_ack(
        &self,
        name: &StreamName,
        group: &GroupName,
        ids: Vec<RecordId>,
    ) -> Result<Vec<Result<(), StreamError>>, EngineError>;

    async fn group_pending(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: Option<&ConsumerName>,
        max: usize,
    ) -> Result<PendingView, EngineError>;

    /// Hands `consumer` up to `max` pending records idle for at least `min_idle_ms`.
    async fn group_claim(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        min_idle_ms: u64,
        max: u32,
    ) -> Result<Vec<GroupRecord>, EngineError>;

    /// Moves the group's position in every partition (or only `partition`).
    async fn group_seek(
        &self,
        name: &StreamName,
        group: &GroupName,
        partition: Option<u32>,
        position: StartPosition,
    ) -> Result<GroupView, EngineError>;
    /// Registers the function called with the messages carrying `notify` that complete (are
    /// acked) or are dead-lettered, after their record was submitted to the log. Replaces any
    /// earlier hook. The hook itself must not block; it runs under no lock. An ack awaits the
    /// future it returns before answering (so the hook can make the callback job durable
    /// first: an acknowledged ack implies a durable job); a dead-letter move, which happens
    /// inside other operations, spawns it onto the runtime.
    fn set_completion_hook(&self, hook: CompletionHook);

    /// Records the outcome of a completion callback on the status record of finished message
    /// `id` (see `Queue::record_callback`); durable before it returns.
    async fn record_callback(
        &self,
        name: &QueueName,
        id: MessageId,
        succeeded: bool,
        reason: Option<String>,
    ) -> Result<StatusRecord, EngineError>;

    /// Status records whose last callback failed, over all queues (by queue name, then finish
    /// time), at most `max`.
    async fn callback_failed(
        &self,
        max: usize,
    ) -> Result<Vec<(QueueName, StatusRecord)>, EngineError>;
    /// Creates a topic, or finds the existing one (a topic has no attributes to conflict).
    /// Returns the topic and whether it was created.
    async fn create_topic(&self, name: QueueName) -> Result<(TopicView, bool), EngineError>;

    /// Deletes a topic and its subscriptions; messages already delivered stay in their queues.
    async fn delete_topic(&self, name: &QueueName) -> Result<(), EngineError>;

    async fn get_topic(&self, name: &QueueName) -> Result<TopicView, EngineError>;

    /// Every topic, ordered by name.
    async fn list_topics(&self) -> Result<Vec<TopicView>, EngineError>;

    /// Adds a subscription, or finds an identical one under its name (a different one is a
    /// conflict). Queue targets must exist; stream and URL targets are refused for now.
    async fn put_subscription(
        &self,
        topic: &QueueName,
        subscription: Subscription,
    ) -> Result<(Subscription, Put), EngineError>;

    async fn delete_subscription(
        &self,
        topic: &QueueName,
        name: &QueueName,
    ) -> Result<(), EngineError>;

    /// Publishes a batch: routes each message and delivers a copy to every matching target.
    /// The whole batch's fan-out is one durable unit: every target is checked first (exists,
    /// message sizes, FIFO requirements, `max_depth`), then all copies are enqueued and logged
    /// as one record; a failure changes nothing. Returns once durable, one outcome per message.
    async fn publish(
        &self,
        topic: &QueueName,
        messages: Vec<PublishEntry>,
    ) -> Result<Vec<PublishOutcome>, EngineError>;
    /// Up to `max` (at most `baton_core::limits::PEEK_MAX`) live messages of queue `name` with
    /// a sequence above `after`, in sequence order, without consuming them: no lease, no
    /// receive count, nothing logged beyond what became due by now (the dashboard's browser).
    async fn peek(
        &self,
        name: &QueueName,
        after: Seq,
        max: u32,
    ) -> Result<Vec<PeekedMessage>, EngineError>;

    /// `ack`, carrying the consumer's `reply` (JSON text, opaque to the engine) to the
    /// completions of the acked messages, so their callbacks report it.
    async fn ack_with_reply(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        reply: Option<std::sync::Arc<str>>,
    ) -> Result<Vec<Result<Acked, ReceiptError>>, EngineError>;

    /// The completions of the acks and dead-letter arrivals the last recovery replayed (the
    /// log after the checkpoint), without replies; emptied by the call. A crash between such
    /// a record and the callback job the hook writes for it loses the job; the server
    /// re-creates the jobs that are missing from these.
    fn take_recovered_completions(&self) -> Vec<Completion>;
}

/// A topic as seen from outside.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicView {
    pub name: QueueName,
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

/// See `Engine::set_completion_hook`.
pub type CompletionHook = std::sync::Arc<dyn Fn(Vec<Completion>) -> CompletionFuture + Send + Sync>;

/// What a `CompletionHook` returns: the hand-over of its completions, awaited by acks.
pub type CompletionFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

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
