//! `CountingEngine`: an engine that forwards every operation to another and counts the calls
//! by operation name. Tests use it to show how many engine calls a request costs (the SQS
//! data path must cost one, because under a network engine each call is a round trip).

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_core::lock::{FencingToken, Holder, LockHold, LockName, Released};
use baton_core::schedule;
use baton_core::stream::{
    Appended, ConsumerName, GroupConfig, GroupName, ProducerSeq, ReadFrom, RecordId, StartPosition,
};
use baton_core::topic::{Put, Subscription};
use baton_core::{
    Acked, Delivery, MessageId, PeekedMessage, QueueConfig, QueueError, QueueName, ReceiptError,
    ReceiptHandle, SendEntry, SendOutcome, Seq, StatusRecord, StreamConfig, StreamError,
    StreamName, Timestamp, VisibilityOutcome,
};
use baton_core::{SubscriptionName, TopicName};
use parking_lot::Mutex;

use crate::{
    Completion, CompletionHook, Created, DiskStatus, Engine, EngineError, GroupRecord, GroupView,
    LockEngine, LockEngineError, LockSettings, MetaPatch, NewRecord, PendingView, PublishEntry,
    PublishOutcome, QueueEngine, QueueView, ReceiveOptions, RedriveOptions, ScheduleEngine,
    ScheduleEngineError, SchedulePlans, StorageStats, StreamEngine, StreamEngineError, StreamRead,
    StreamView, TopicEngine, TopicEngineError, TopicView,
};

/// Forwards to `inner`, counting each call by the trait method's name and, for operations on
/// one queue, the queue's name (so that background workers on other queues do not count).
pub struct CountingEngine {
    inner: Arc<dyn Engine>,
    calls: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl CountingEngine {
    pub fn new(inner: Arc<dyn Engine>) -> Self {
        Self {
            inner,
            calls: Mutex::new(BTreeMap::new()),
        }
    }

    /// The calls since the last `take` that name `queue`, by operation, and starts counting
    /// afresh (for every queue).
    pub fn take(&self, queue: &str) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.calls.lock())
            .into_iter()
            .filter(|((_, subject), _)| subject == queue)
            .map(|((operation, _), n)| (operation, n))
            .collect()
    }

    fn count(&self, operation: &'static str, subject: String) {
        *self.calls.lock().entry((operation, subject)).or_default() += 1;
    }
}

/// Writes one trait's async operations once: each counts itself, then forwards. Operations
/// in the `on_queue` group name their queue, stream or topic in their first argument.
macro_rules! counting_engine {
    (
        $trait:ident
        on_queue { $( async fn $qname:ident(&self, $queue:ident: &$subject:ident $(, $qarg:ident: $qty:ty)*) -> $qret:ty; )* }
        other { $( async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )* }
    ) => {
        #[async_trait::async_trait]
        impl $trait for CountingEngine {
            $(
                async fn $qname(&self, $queue: &$subject $(, $qarg: $qty)*) -> $qret {
                    self.count(stringify!($qname), $queue.to_string());
                    self.inner.$qname($queue $(, $qarg)*).await
                }
            )*
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    self.count(stringify!($name), String::new());
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
}

#[async_trait::async_trait]
impl Engine for CountingEngine {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn is_ready(&self) -> bool {
        self.inner.is_ready()
    }
    fn now(&self) -> Timestamp {
        self.inner.now()
    }
    fn storage_failure(&self) -> Option<String> {
        self.inner.storage_failure()
    }
    fn shared_by_nodes(&self) -> bool {
        self.inner.shared_by_nodes()
    }
    fn storage_stats(&self) -> Option<StorageStats> {
        self.inner.storage_stats()
    }
    fn disk_status(&self) -> Option<DiskStatus> {
        self.inner.disk_status()
    }
    fn begin_shutdown(&self) {
        self.inner.begin_shutdown()
    }
    fn set_completion_hook(&self, hook: CompletionHook) {
        self.inner.set_completion_hook(hook)
    }
    fn take_recovered_completions(&self) -> Vec<Completion> {
        self.inner.take_recovered_completions()
    }
    async fn tick(&self) {
        self.inner.tick().await
    }
    async fn recover(&self) -> Result<(), EngineError> {
        self.count("recover", String::new());
        self.inner.recover().await
    }
}

counting_engine! {
    QueueEngine
    on_queue {
        async fn set_queue_meta(&self, name: &QueueName, tags: Option<BTreeMap<String, String>>, attributes: Option<BTreeMap<String, String>>) -> Result<QueueView, EngineError>;
        async fn update_queue_meta(&self, name: &QueueName, patch: MetaPatch) -> Result<QueueView, EngineError>;
        async fn set_push(&self, name: &QueueName, push: Option<crate::PushSpec>, expect: Option<Option<crate::PushSpec>>) -> Result<QueueView, EngineError>;
        async fn update_queue(&self, name: &QueueName, config: QueueConfig) -> Result<QueueView, EngineError>;
        async fn delete_queue(&self, name: &QueueName) -> Result<(), EngineError>;
        async fn get_queue(&self, name: &QueueName) -> Result<QueueView, EngineError>;
        async fn purge_queue(&self, name: &QueueName) -> Result<u64, EngineError>;
        async fn send(&self, name: &QueueName, entries: Vec<SendEntry>) -> Result<Vec<SendOutcome>, EngineError>;
        async fn send_each(&self, name: &QueueName, entries: Vec<SendEntry>) -> Result<Vec<Result<SendOutcome, QueueError>>, EngineError>;
        async fn send_internal(&self, name: &QueueName, entries: Vec<SendEntry>) -> Result<Vec<SendOutcome>, EngineError>;
        async fn receive(&self, name: &QueueName, options: ReceiveOptions) -> Result<Vec<Delivery>, EngineError>;
        async fn ack(&self, name: &QueueName, receipts: Vec<ReceiptHandle>) -> Result<Vec<Result<Acked, ReceiptError>>, EngineError>;
        async fn nack(&self, name: &QueueName, receipts: Vec<ReceiptHandle>, delay_ms: Option<u64>) -> Result<Vec<Result<(), ReceiptError>>, EngineError>;
        async fn delete(&self, name: &QueueName, receipts: Vec<ReceiptHandle>) -> Result<Vec<Result<Option<Acked>, ReceiptError>>, EngineError>;
        async fn change_message_visibility(&self, name: &QueueName, receipt: ReceiptHandle, timeout_ms: u64) -> Result<VisibilityOutcome, EngineError>;
        async fn change_visibility(&self, name: &QueueName, receipt: ReceiptHandle, timeout_ms: u64) -> Result<(), EngineError>;
        async fn message_status(&self, name: &QueueName, id: MessageId) -> Result<StatusRecord, EngineError>;
        async fn redrive(&self, name: &QueueName, options: RedriveOptions) -> Result<u64, EngineError>;
        async fn record_callback(&self, name: &QueueName, id: MessageId, succeeded: bool, reason: Option<String>) -> Result<StatusRecord, EngineError>;
        async fn peek(&self, name: &QueueName, after: Seq, max: u32) -> Result<Vec<PeekedMessage>, EngineError>;
        async fn ack_with_reply(&self, name: &QueueName, receipts: Vec<ReceiptHandle>, reply: Option<Arc<str>>) -> Result<Vec<Result<Acked, ReceiptError>>, EngineError>;
    }
    other {
        async fn create_queue(&self, name: QueueName, config: QueueConfig) -> Result<Created, EngineError>;
        async fn list_queues(&self) -> Result<Vec<QueueView>, EngineError>;
        async fn callback_failed(&self, max: usize) -> Result<Vec<(QueueName, StatusRecord)>, EngineError>;
    }
}

counting_engine! {
    StreamEngine
    on_queue {

    }
    other {
        async fn create_stream(&self, name: StreamName, config: StreamConfig) -> Result<(StreamView, bool), StreamEngineError>;
        async fn get_stream(&self, name: &StreamName) -> Result<StreamView, StreamEngineError>;
        async fn list_streams(&self) -> Result<Vec<StreamView>, StreamEngineError>;
        async fn delete_stream(&self, name: &StreamName) -> Result<(), StreamEngineError>;
        async fn append(&self, name: &StreamName, producer: Option<ProducerSeq>, records: Vec<NewRecord>) -> Result<Vec<Appended>, StreamEngineError>;
        async fn read_stream(&self, name: &StreamName, partition: u32, from: ReadFrom, max: u32, wait_ms: u64) -> Result<StreamRead, StreamEngineError>;
        async fn create_group(&self, name: &StreamName, group: GroupName, config: GroupConfig) -> Result<(GroupView, bool), StreamEngineError>;
        async fn get_group(&self, name: &StreamName, group: &GroupName) -> Result<GroupView, StreamEngineError>;
        async fn delete_group(&self, name: &StreamName, group: &GroupName) -> Result<(), StreamEngineError>;
        async fn group_read(&self, name: &StreamName, group: &GroupName, consumer: &ConsumerName, max: u32, wait_ms: u64) -> Result<Vec<GroupRecord>, StreamEngineError>;
        async fn group_ack(&self, name: &StreamName, group: &GroupName, ids: Vec<RecordId>) -> Result<Vec<Result<(), StreamError>>, StreamEngineError>;
        async fn group_pending(&self, name: &StreamName, group: &GroupName, consumer: Option<&ConsumerName>, max: usize) -> Result<PendingView, StreamEngineError>;
        async fn group_claim(&self, name: &StreamName, group: &GroupName, consumer: &ConsumerName, min_idle_ms: u64, max: u32) -> Result<Vec<GroupRecord>, StreamEngineError>;
        async fn group_seek(&self, name: &StreamName, group: &GroupName, partition: Option<u32>, position: StartPosition) -> Result<GroupView, StreamEngineError>;
    }
}

counting_engine! {
    TopicEngine
    on_queue {
        async fn delete_topic(&self, name: &TopicName) -> Result<(), TopicEngineError>;
        async fn get_topic(&self, name: &TopicName) -> Result<TopicView, TopicEngineError>;
    }
    other {
        async fn create_topic(&self, name: TopicName) -> Result<(TopicView, bool), TopicEngineError>;
        async fn list_topics(&self) -> Result<Vec<TopicView>, TopicEngineError>;
        async fn put_subscription(&self, topic: &TopicName, subscription: Subscription) -> Result<(Subscription, Put), TopicEngineError>;
        async fn delete_subscription(&self, topic: &TopicName, name: &SubscriptionName) -> Result<(), TopicEngineError>;
        async fn publish(&self, topic: &TopicName, messages: Vec<PublishEntry>) -> Result<Vec<PublishOutcome>, TopicEngineError>;
    }
}

/// Locks are forwarded uncounted (no request path under test takes one), fenced sends counted.
#[async_trait::async_trait]
impl LockEngine for CountingEngine {
    fn lock_settings(&self) -> LockSettings {
        self.inner.lock_settings()
    }

    async fn acquire_lock(
        &self,
        name: &LockName,
        holder: &Holder,
        ttl_ms: u64,
        wait_ms: u64,
    ) -> Result<LockHold, LockEngineError> {
        self.inner.acquire_lock(name, holder, ttl_ms, wait_ms).await
    }

    async fn renew_lock(
        &self,
        name: &LockName,
        holder: &Holder,
        token: FencingToken,
        ttl_ms: u64,
    ) -> Result<LockHold, LockEngineError> {
        self.inner.renew_lock(name, holder, token, ttl_ms).await
    }

    async fn release_lock(
        &self,
        name: &LockName,
        holder: &Holder,
        token: FencingToken,
    ) -> Result<Released, LockEngineError> {
        self.inner.release_lock(name, holder, token).await
    }

    async fn get_lock(&self, name: &LockName) -> Result<Option<LockHold>, LockEngineError> {
        self.inner.get_lock(name).await
    }

    async fn fenced(
        &self,
        lock: &LockName,
        token: FencingToken,
        write: crate::FencedWrite,
    ) -> Result<crate::FencedOutcome, LockEngineError> {
        // One name for every fenced write; the subject says which write, on what.
        self.count("fenced", format!("{} {}", write.op(), write.target()));
        self.inner.fenced(lock, token, write).await
    }

    async fn list_locks(
        &self,
        prefix: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<LockHold>, LockEngineError> {
        self.inner.list_locks(prefix, after, max).await
    }
}

#[async_trait::async_trait]
impl ScheduleEngine for CountingEngine {
    fn schedule_limits(&self) -> schedule::ScheduleLimits {
        self.inner.schedule_limits()
    }

    async fn put_schedule(
        &self,
        name: &schedule::ScheduleName,
        spec: schedule::ScheduleSpec,
        paused: bool,
    ) -> Result<(schedule::Put, schedule::Schedule), ScheduleEngineError> {
        self.inner.put_schedule(name, spec, paused).await
    }

    async fn delete_schedule(
        &self,
        name: &schedule::ScheduleName,
    ) -> Result<(), ScheduleEngineError> {
        self.inner.delete_schedule(name).await
    }

    async fn set_schedule_paused(
        &self,
        name: &schedule::ScheduleName,
        paused: bool,
    ) -> Result<schedule::Schedule, ScheduleEngineError> {
        self.inner.set_schedule_paused(name, paused).await
    }

    async fn get_schedule(
        &self,
        name: &schedule::ScheduleName,
    ) -> Result<Option<schedule::Schedule>, ScheduleEngineError> {
        self.inner.get_schedule(name).await
    }

    async fn list_schedules(
        &self,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<schedule::Schedule>, ScheduleEngineError> {
        self.inner.list_schedules(after, max).await
    }

    async fn plan_schedules(&self) -> Result<SchedulePlans, ScheduleEngineError> {
        self.inner.plan_schedules().await
    }

    async fn advance_schedule(
        &self,
        name: &schedule::ScheduleName,
        version: u64,
        position: Timestamp,
        n_missed: u64,
        outcome: Option<schedule::FireOutcome>,
    ) -> Result<schedule::Schedule, ScheduleEngineError> {
        self.inner
            .advance_schedule(name, version, position, n_missed, outcome)
            .await
    }
    async fn fire_to_queue(
        &self,
        firing: crate::QueueFiring,
    ) -> Result<(schedule::Schedule, baton_core::SendOutcome), ScheduleEngineError> {
        self.count("fire_to_queue", firing.queue.to_string());
        self.inner.fire_to_queue(firing).await
    }
}
