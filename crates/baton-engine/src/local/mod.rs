//! The local engine: `baton-core` queues in this process, in memory only or made durable by
//! the write-ahead log (`durable`).
//!
//! # Locking
//! The registry (`queues`) is an `RwLock`: operations on queues hold it for reading, creating
//! and deleting queues (and recovery) take it for writing. Each queue has its own `Mutex`. At
//! most one queue mutex is held at a time, and no lock across an `.await`: a dead-letter move
//! locks the source, takes the moved messages out, unlocks, then locks the dead-letter queue.
//! Because the registry read lock is held throughout, the dead-letter queue cannot be deleted
//! in between. Log records are submitted under the queue's lock, so the log's order is the
//! order in which each queue saw its operations; the wait for durability happens after every
//! lock is released, which is what lets concurrent operations share an fsync.
//!
//! # Long polls
//! A waiting receive registers for the queue's `Notify` *before* it looks at the queue, so a
//! send between the look and the wait still wakes it. It also sleeps no later than the moment
//! the queue says the next delayed or leased message becomes visible.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use baton_core::{
    Acked, Clock, Delivery, HistoryEventKind, MessageId, MovedMessage, Queue, QueueConfig,
    QueueName, ReceiptError, ReceiptHandle, SendEntry, SendOutcome, StatusRecord, Timestamp,
    VisibilityOutcome,
};
use baton_storage::records::{QueueOp, ReceiptV1};
use baton_storage::FileSystem;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::durable::{codec, Durable, StorageConfig};
use crate::{
    Completion, CompletionHook, CompletionKind, Created, Engine, EngineConfig, EngineError,
    QueueMeta, QueueView, ReceiveOptions, RedriveOptions, QUEUE_META_ATTRIBUTES_MAX,
    QUEUE_META_VALUE_BYTES_MAX, QUEUE_TAGS_MAX,
};
use crate::{GroupRecord, GroupView, NewRecord, PendingView, StreamRead, StreamView};
use crate::{PublishEntry, PublishOutcome, TopicView};
use baton_core::stream::{
    Appended, ConsumerName, GroupConfig, GroupName, ProducerSeq, ReadFrom, RecordId, StartPosition,
};
use baton_core::topic::{Put, Subscription};
use baton_core::{StreamConfig, StreamError, StreamName};
use receipts::ReceiptRule;
use streams::Streams;

pub struct LocalEngine {
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    queues: RwLock<Registry>,
    n_waiting: AtomicU32,
    shutdown: CancellationToken,
    durable: Option<Durable>,
    ready: AtomicBool,
    /// Set by the first successful recovery; before it, a closed log is not a failure.
    recovered_once: AtomicBool,
    streams: Streams,
    /// Told about completions and dead-letters of messages with `notify` (callbacks).
    completion_hook: RwLock<Option<CompletionHook>>,
    /// Completions the last recovery replayed, until `take_recovered_completions`.
    recovered_completions: parking_lot::Mutex<Vec<Completion>>,
    /// Topics and their subscriptions (`topics.rs`). Never locked while a queue lock is held.
    topics: RwLock<topics::TopicRegistry>,
    /// Producer writes the disk-free alarm refused.
    refused_writes: AtomicU64,
    /// Distributed locks (`locks.rs`). Locked alone, or inside a queue lock (fenced sends).
    locks: locks::Locks,
}

struct Slot {
    queue: Mutex<Queue>,
    /// Locked only alone or inside `queue`'s lock, never the other way round.
    meta: Mutex<QueueMeta>,
    /// Woken when messages may have become visible: sends, nacks, releases, moves, deletion.
    visible: Notify,
}

impl Slot {
    fn new(queue: Queue, meta: QueueMeta) -> Arc<Slot> {
        Arc::new(Slot {
            queue: Mutex::new(queue),
            meta: Mutex::new(meta),
            visible: Notify::new(),
        })
    }

    fn view(&self, queue: &Queue, now: Timestamp) -> QueueView {
        QueueView {
            name: queue.name().clone(),
            config: queue.config().clone(),
            stats: queue.stats(now),
            meta: self.meta.lock().clone(),
        }
    }
}

type Registry = BTreeMap<QueueName, Arc<Slot>>;

/// Counts one waiting receive for as long as it lives.
struct WaitPermit<'a>(&'a AtomicU32);

impl Drop for WaitPermit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Log records an operation produces; built only when the engine is durable.
pub(crate) struct Journal {
    enabled: bool,
    ops: Vec<QueueOp>,
}

impl Journal {
    fn push(&mut self, op: impl FnOnce() -> QueueOp) {
        if self.enabled {
            self.ops.push(op());
        }
    }
}

/// Who sends: a client (refused by the disk-free alarm) or the broker for a consumer's
/// operation (never refused by it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Producer {
    Client,
    Broker,
}

/// Whether a failure to log is the caller's failure (writes) or only the log's (reads that
/// happened to observe an expiry).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

fn not_found(name: &QueueName) -> EngineError {
    EngineError::QueueNotFound {
        queue: name.to_string(),
    }
}

fn receipt_to_disk(receipt: &ReceiptHandle) -> ReceiptV1 {
    let (seq, lease) = receipt.parts();
    ReceiptV1 { seq, lease }
}

fn max_lsn(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    a.max(b)
}

/// The attributes in which `existing` and `requested` differ, as `field is a, requested b`.
fn differences(existing: &QueueConfig, requested: &QueueConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |field: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{field} is {a}, requested {b}"));
        }
    };
    check(
        "fifo",
        existing.fifo.to_string(),
        requested.fifo.to_string(),
    );
    check(
        "visibility_timeout_ms",
        existing.visibility_timeout_ms.to_string(),
        requested.visibility_timeout_ms.to_string(),
    );
    check(
        "delay_ms",
        existing.delay_ms.to_string(),
        requested.delay_ms.to_string(),
    );
    check(
        "retention_ms",
        existing.retention_ms.to_string(),
        requested.retention_ms.to_string(),
    );
    check(
        "max_message_bytes",
        existing.max_message_bytes.to_string(),
        requested.max_message_bytes.to_string(),
    );
    check(
        "receive_wait_ms",
        existing.receive_wait_ms.to_string(),
        requested.receive_wait_ms.to_string(),
    );
    check(
        "dead_letter",
        format!("{:?}", existing.dead_letter),
        format!("{:?}", requested.dead_letter),
    );
    check(
        "content_based_dedup",
        existing.content_based_dedup.to_string(),
        requested.content_based_dedup.to_string(),
    );
    check(
        "max_depth",
        format!("{:?}", existing.max_depth),
        format!("{:?}", requested.max_depth),
    );
    check(
        "retry",
        format!("{:?}", existing.retry),
        format!("{:?}", requested.retry),
    );
    out
}

impl LocalEngine {
    /// An engine that keeps everything in memory: fast, gone at exit.
    pub fn in_memory(clock: Arc<dyn Clock>, config: EngineConfig) -> Self {
        LocalEngine {
            clock,
            config,
            queues: RwLock::new(BTreeMap::new()),
            n_waiting: AtomicU32::new(0),
            shutdown: CancellationToken::new(),
            durable: None,
            ready: AtomicBool::new(true),
            recovered_once: AtomicBool::new(false),
            streams: Streams::in_memory(),
            completion_hook: RwLock::new(None),
            recovered_completions: parking_lot::Mutex::new(Vec::new()),
            topics: RwLock::new(topics::TopicRegistry::default()),
            refused_writes: AtomicU64::new(0),
            locks: locks::Locks::new(crate::LockSettings::default()),
        }
    }

    /// Hands `completions` to the completion hook, if one is set, and waits for the hand-over.
    async fn emit_completions(&self, completions: Vec<Completion>) {
        if completions.is_empty() {
            return;
        }
        let hook = self.completion_hook.read().clone();
        if let Some(hook) = hook {
            hook(completions).await;
        }
    }

    /// Like `emit_completions`, from inside a synchronous operation: the hand-over runs on
    /// its own task.
    fn spawn_completions(&self, completions: Vec<Completion>) {
        if completions.is_empty() {
            return;
        }
        let hook = self.completion_hook.read().clone();
        if let (Some(hook), Ok(runtime)) = (hook, tokio::runtime::Handle::try_current()) {
            runtime.spawn(hook(completions));
        }
    }

    /// A durable engine over `storage`. It is not ready until `recover` has run. `lock_data_dir`
    /// takes the data-dir lock (use it with the real file system).
    pub fn durable(
        clock: Arc<dyn Clock>,
        config: EngineConfig,
        fs: Arc<dyn FileSystem>,
        storage: StorageConfig,
        lock_data_dir: bool,
    ) -> Result<Self, EngineError> {
        let durable = Durable::open(fs.clone(), storage.clone(), lock_data_dir)?;
        let streams = Streams::on_disk(fs, &storage, durable.space().clone());
        Ok(LocalEngine {
            durable: Some(durable),
            streams,
            ready: AtomicBool::new(false),
            ..Self::in_memory(clock, config)
        })
    }

    /// Refuses a producer's write (send, publish, stream append) while the disk-free alarm is
    /// on; consumers' writes are never refused by it.
    pub(crate) fn check_disk(&self) -> Result<(), EngineError> {
        let Some(space) = self.durable.as_ref().map(Durable::space) else {
            return Ok(());
        };
        if !space.is_low() {
            return Ok(());
        }
        self.refused_writes.fetch_add(1, Ordering::Relaxed);
        Err(EngineError::DiskLow {
            free_bytes: space.free_bytes(),
            min_bytes: space.free_min_bytes(),
        })
    }

    fn check_ready(&self) -> Result<(), EngineError> {
        if self.ready.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(EngineError::NotReady)
        }
    }

    fn journal(&self) -> Journal {
        Journal {
            enabled: self.durable.is_some(),
            ops: Vec::new(),
        }
    }

    fn submit(&self, journal: Journal, access: Access) -> Result<Option<u64>, EngineError> {
        let Some(durable) = &self.durable else {
            return Ok(None);
        };
        match durable.submit(&journal.ops) {
            Ok(lsn) => Ok(lsn),
            Err(error) if access == Access::Read => {
                tracing::debug!(%error, "could not log an expiry observed by a read");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    async fn wait(&self, lsn: Option<u64>) -> Result<(), EngineError> {
        match (&self.durable, lsn) {
            (Some(durable), Some(lsn)) => durable.wait(lsn).await,
            _ => Ok(()),
        }
    }

    /// Checks that `config`'s dead-letter queue exists and is of the same kind.
    fn check_dead_letter(registry: &Registry, config: &QueueConfig) -> Result<(), EngineError> {
        let Some(policy) = &config.dead_letter else {
            return Ok(());
        };
        let Some(slot) = registry.get(&policy.queue) else {
            return Err(EngineError::DeadLetterQueueInvalid {
                reason: format!("queue {} does not exist", policy.queue),
            });
        };
        let dead_letter_fifo = slot.queue.lock().is_fifo();
        if dead_letter_fifo != config.fifo {
            let kind = |fifo: bool| if fifo { "FIFO" } else { "standard" };
            return Err(EngineError::DeadLetterQueueInvalid {
                reason: format!(
                    "queue {} is {}, a {} queue needs a {} dead-letter queue",
                    policy.queue,
                    kind(dead_letter_fifo),
                    kind(config.fifo),
                    kind(config.fifo)
                ),
            });
        }
        Ok(())
    }

    /// Runs `op` on `slot`'s queue under its lock: first applies (and logs) what became due by
    /// now, then the operation, then logs its records and delivers any messages it
    /// dead-lettered. Returns the operation's result and the LSN to wait for.
    fn run_on<T>(
        &self,
        registry: &Registry,
        slot: &Slot,
        access: Access,
        op: impl FnOnce(&mut Queue, Timestamp, &mut Journal) -> T,
    ) -> Result<(T, Option<u64>), EngineError> {
        if access == Access::Write {
            // Once the log has failed, refuse before changing anything in memory.
            if let Some(failure) = self.durable.as_ref().and_then(Durable::failure) {
                return Err(crate::durable::failure_error(&failure));
            }
        }
        let now = self.clock.now();
        let (out, moved, target, lsn) = {
            let mut queue = slot.queue.lock();
            let mut journal = self.journal();
            if queue.advance(now) {
                let name = queue.name().to_string();
                journal.push(|| QueueOp::Advance {
                    queue: name,
                    now: now.as_millis(),
                });
            }
            let out = op(&mut queue, now, &mut journal);
            let moved = queue.take_moved();
            let target = queue.config().dead_letter.as_ref().map(|d| d.queue.clone());
            let lsn = self.submit(journal, access);
            (out, moved, target, lsn)
        };
        let moved_lsn = if moved.is_empty() {
            None
        } else {
            self.deliver_dead_letters(registry, slot, moved, target, now, access)?
        };
        Ok((out, max_lsn(lsn?, moved_lsn)))
    }

    /// Runs `op` on queue `name` (see `run_on`).
    fn with_queue<T>(
        &self,
        name: &QueueName,
        access: Access,
        op: impl FnOnce(&mut Queue, Timestamp, &mut Journal) -> T,
    ) -> Result<(T, Option<u64>), EngineError> {
        self.check_ready()?;
        let registry = self.queues.read();
        let slot = registry.get(name).ok_or_else(|| not_found(name))?;
        self.run_on(&registry, slot, access, op)
    }

    /// Puts moved messages into `destination` (or back into `source` if it is gone, so that no
    /// message is lost) and logs their arrival.
    fn accept_all(
        &self,
        slot: &Slot,
        moved: Vec<MovedMessage>,
        kind: HistoryEventKind,
        now: Timestamp,
        access: Access,
    ) -> Result<Option<u64>, EngineError> {
        let mut queue = slot.queue.lock();
        let mut journal = self.journal();
        let name = queue.name().to_string();
        // What became due by `now` is logged on its own, so it is replayed even when no
        // arrival record follows (a move of an id that is already here changes nothing).
        if queue.advance(now) {
            journal.push(|| QueueOp::Advance {
                queue: name.clone(),
                now: now.as_millis(),
            });
        }
        for message in moved {
            let record = journal.enabled.then(|| codec::moved_to_disk(&message));
            if queue.accept_moved(now, message, kind) {
                if let Some(record) = record {
                    journal.push(|| QueueOp::AcceptMoved {
                        queue: name.clone(),
                        now: now.as_millis(),
                        message: record,
                        kind: kind.as_str().to_string(),
                    });
                }
            }
        }
        let lsn = self.submit(journal, access);
        drop(queue);
        slot.visible.notify_waiters();
        lsn
    }

    fn deliver_dead_letters(
        &self,
        registry: &Registry,
        source: &Slot,
        moved: Vec<MovedMessage>,
        target: Option<QueueName>,
        now: Timestamp,
        access: Access,
    ) -> Result<Option<u64>, EngineError> {
        match target.as_ref().and_then(|name| registry.get(name)) {
            Some(dead_letter) => {
                let completions: Vec<Completion> = moved
                    .iter()
                    .filter_map(|message| {
                        Some(Completion {
                            queue: message.source.clone(),
                            id: message.id,
                            kind: CompletionKind::DeadLettered,
                            sent_at: message.sent_at,
                            completed_at: now,
                            receive_count: message.history.last().map_or(0, |e| e.receive_count),
                            notify: message.notify.clone()?,
                            reply: None,
                        })
                    })
                    .collect();
                let lsn = self.accept_all(
                    dead_letter,
                    moved,
                    HistoryEventKind::DeadLettered,
                    now,
                    access,
                )?;
                // The hook's callback job is logged after the move, so a durable job implies
                // a durable move.
                self.spawn_completions(completions);
                Ok(lsn)
            }
            None => {
                // Unreachable while deletes of dead-letter queues are refused; if it happens,
                // keep the messages rather than lose them.
                tracing::error!(
                    dead_letter_queue = ?target,
                    n_messages = moved.len(),
                    "dead-letter queue missing; messages stay in their source queue"
                );
                self.accept_all(source, moved, HistoryEventKind::Redriven, now, access)
            }
        }
    }

    fn acquire_wait_permit(&self) -> Result<WaitPermit<'_>, EngineError> {
        let limit = self.config.max_waiting_receives;
        if self.n_waiting.fetch_add(1, Ordering::SeqCst) >= limit {
            self.n_waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(EngineError::TooManyWaiters { limit });
        }
        Ok(WaitPermit(&self.n_waiting))
    }

    /// Rebuilds every queue from disk, then ends all leases (they are not durable) and logs
    /// what recovery itself changed.
    fn reload(&self) -> Result<(), EngineError> {
        let result = self.reload_all();
        if result.is_err() && self.recovered_once.load(Ordering::Acquire) {
            // Reads go on from memory; writes are refused until a reopen succeeds.
            self.ready.store(true, Ordering::Release);
        }
        result
    }

    fn reload_all(&self) -> Result<(), EngineError> {
        let Some(durable) = &self.durable else {
            return Ok(());
        };
        let mut registry = self.queues.write();
        self.ready.store(false, Ordering::Release);
        let now = self.clock.now();
        let recovered = durable
            .recover(self.config.limits, now)
            .map_err(|e| crate::durable::recovery_error(&e))?;
        for slot in registry.values() {
            slot.visible.notify_waiters();
        }
        registry.clear();
        for (queue, meta) in recovered.queues {
            registry.insert(queue.name().clone(), Slot::new(queue, meta));
        }
        self.topics.write().restore(recovered.topics);
        self.locks.restore(&recovered.locks);
        self.recovered_completions
            .lock()
            .extend(recovered.completions);
        self.redo_stream_copies(recovered.stream_copies);
        let mut journal = self.journal();
        for (destination, moved, kind) in &recovered.delivered {
            journal.push(|| QueueOp::AcceptMoved {
                queue: destination.to_string(),
                now: now.as_millis(),
                message: codec::moved_to_disk(moved),
                kind: kind.as_str().to_string(),
            });
        }
        self.submit(journal, Access::Write)?;
        for slot in registry.values() {
            let (released, moved, target) = {
                let mut queue = slot.queue.lock();
                let released = queue.release_all_leases(now);
                // Logged for every queue, released leases or not: the release first applies
                // whatever became due by `now` (a lease that just expired, say), and replay
                // must apply it at this same moment.
                let mut journal = self.journal();
                let name = queue.name().to_string();
                journal.push(|| QueueOp::ReleaseLeases {
                    queue: name,
                    now: now.as_millis(),
                });
                self.submit(journal, Access::Write)?;
                (
                    released,
                    queue.take_moved(),
                    queue.config().dead_letter.as_ref().map(|d| d.queue.clone()),
                )
            };
            if !moved.is_empty() {
                self.deliver_dead_letters(&registry, slot, moved, target, now, Access::Write)?;
            }
            let _ = released;
        }
        tracing::info!(
            n_queues = registry.len(),
            truncated_bytes = recovered.truncated_bytes,
            "storage recovered"
        );
        self.ready.store(true, Ordering::Release);
        self.recovered_once.store(true, Ordering::Release);
        Ok(())
    }

    /// A send; a client's is refused while the disk-free alarm is on (after the checks that
    /// name the queue, so a wrong name is still told as such).
    async fn send_as(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
        producer: Producer,
    ) -> Result<Vec<SendOutcome>, EngineError> {
        self.check_ready()?;
        let (outcomes, lsn) = {
            let registry = self.queues.read();
            let slot = registry.get(name).ok_or_else(|| not_found(name))?;
            if producer == Producer::Client {
                self.check_disk()?;
            }
            let (outcomes, lsn) =
                self.run_on(&registry, slot, Access::Write, |queue, now, journal| {
                    let record = journal
                        .enabled
                        .then(|| entries.iter().map(codec::entry_to_disk).collect::<Vec<_>>());
                    let outcomes = queue.send(now, entries)?;
                    if let Some(record) = record {
                        journal.push(|| QueueOp::Send {
                            queue: name.to_string(),
                            now: now.as_millis(),
                            entries: record,
                        });
                    }
                    Ok::<_, EngineError>(outcomes)
                })?;
            let outcomes = outcomes?;
            slot.visible.notify_waiters();
            (outcomes, lsn)
        };
        self.wait(lsn).await?;
        Ok(outcomes)
    }

    /// Writes a checkpoint now (the tick does it when the log has grown enough).
    pub fn checkpoint(&self) -> Result<(), EngineError> {
        let Some(durable) = &self.durable else {
            return Ok(());
        };
        self.check_ready()?;
        let registry = self.queues.read();
        let write = || {
            durable.checkpoint(
                registry.values().map(|slot| (&slot.queue, &slot.meta)),
                |last_lsn| {
                    vec![
                        self.topics_checkpoint_part(last_lsn),
                        self.locks_checkpoint_part(last_lsn),
                    ]
                },
                || self.topics_in_flight_part(),
            )
        };
        match write() {
            // On a full disk the checkpoint is what frees space (the log it covers): it may
            // have the emergency reserve, which the tick puts back once there is room.
            Err(EngineError::DiskFull { reason }) if durable.space().release_reserve() => {
                tracing::warn!(%reason, "checkpoint found the disk full; retrying with the emergency reserve");
                write()?;
            }
            other => {
                other?;
            }
        }
        Ok(())
    }

    fn live_bytes(&self) -> u64 {
        self.queues
            .read()
            .values()
            .map(|slot| slot.queue.lock().live_bytes())
            .sum()
    }
}

#[async_trait]
impl Engine for LocalEngine {
    fn kind(&self) -> &'static str {
        if self.durable.is_some() {
            "embedded"
        } else {
            "memory"
        }
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn storage_failure(&self) -> Option<String> {
        self.durable
            .as_ref()
            .and_then(Durable::failure)
            .map(|f| f.reason.to_string())
    }

    fn disk_status(&self) -> Option<crate::DiskStatus> {
        let durable = self.durable.as_ref()?;
        let space = durable.space();
        Some(crate::DiskStatus {
            log_stopped_full: durable.failure().is_some_and(|f| f.disk_full),
            free_bytes: space.free_bytes(),
            free_min_bytes: space.free_min_bytes(),
            low: space.is_low(),
            reserve_present: space.reserve_present(),
            reserve_bytes: space.reserve_bytes(),
            refused_writes: self.refused_writes.load(Ordering::Relaxed),
        })
    }

    fn storage_stats(&self) -> Option<crate::StorageStats> {
        self.durable.as_ref().map(Durable::stats)
    }

    async fn recover(&self) -> Result<(), EngineError> {
        // Streams first: `reload` makes the engine ready.
        self.streams.recover()?;
        self.reload()
    }

    async fn create_queue(
        &self,
        name: QueueName,
        config: QueueConfig,
    ) -> Result<Created, EngineError> {
        self.check_ready()?;
        let (created, lsn) = {
            let mut registry = self.queues.write();
            let now = self.clock.now();
            if let Some(slot) = registry.get(&name) {
                let queue = slot.queue.lock();
                let found = differences(queue.config(), &config);
                if !found.is_empty() {
                    return Err(EngineError::QueueExists {
                        queue: name.to_string(),
                        differences: found.join(", "),
                    });
                }
                return Ok(Created::Existing(slot.view(&queue, now)));
            }
            config.validate(&name)?;
            Self::check_dead_letter(&registry, &config)?;
            let epoch = uuid::Uuid::new_v4().as_u64_pair().0;
            let queue = Queue::new(name.clone(), config.clone(), self.config.limits, epoch)?;
            let meta = QueueMeta {
                created_at: now,
                modified_at: now,
                ..QueueMeta::default()
            };
            let slot = Slot::new(queue, meta);
            let view = slot.view(&slot.queue.lock(), now);
            let mut journal = self.journal();
            journal.push(|| QueueOp::CreateQueue {
                name: name.to_string(),
                config: codec::config_to_disk(&config),
                epoch,
                now: now.as_millis(),
            });
            let lsn = self.submit(journal, Access::Write)?;
            registry.insert(name, slot);
            (Created::New(view), lsn)
        };
        self.wait(lsn).await?;
        Ok(created)
    }

    async fn update_queue(
        &self,
        name: &QueueName,
        config: QueueConfig,
    ) -> Result<QueueView, EngineError> {
        self.check_ready()?;
        let (view, lsn) = {
            let registry = self.queues.read();
            let slot = registry.get(name).ok_or_else(|| not_found(name))?;
            config.validate(name)?;
            Self::check_dead_letter(&registry, &config)?;
            let (view, lsn) =
                self.run_on(&registry, slot, Access::Write, |queue, now, journal| {
                    queue.update_config(config.clone())?;
                    journal.push(|| QueueOp::UpdateQueue {
                        name: name.to_string(),
                        config: codec::config_to_disk(&config),
                        now: now.as_millis(),
                    });
                    slot.meta.lock().modified_at = now;
                    Ok::<_, EngineError>(slot.view(queue, now))
                })?;
            // A shorter delay or retention may have made messages visible or expired them.
            slot.visible.notify_waiters();
            (view?, lsn)
        };
        self.wait(lsn).await?;
        Ok(view)
    }

    async fn delete_queue(&self, name: &QueueName) -> Result<(), EngineError> {
        self.check_ready()?;
        let lsn = {
            let mut registry = self.queues.write();
            if !registry.contains_key(name) {
                return Err(not_found(name));
            }
            let sources: Vec<String> = registry
                .iter()
                .filter(|(other, slot)| {
                    *other != name
                        && slot
                            .queue
                            .lock()
                            .config()
                            .dead_letter
                            .as_ref()
                            .is_some_and(|d| &d.queue == name)
                })
                .map(|(other, _)| other.to_string())
                .collect();
            if !sources.is_empty() {
                return Err(EngineError::QueueInUse {
                    queue: name.to_string(),
                    sources: sources.join(", "),
                });
            }
            let mut journal = self.journal();
            journal.push(|| QueueOp::DeleteQueue {
                name: name.to_string(),
                now: self.clock.now().as_millis(),
            });
            let lsn = self.submit(journal, Access::Write)?;
            if let Some(slot) = registry.remove(name) {
                slot.visible.notify_waiters();
            }
            lsn
        };
        self.wait(lsn).await
    }

    async fn get_queue(&self, name: &QueueName) -> Result<QueueView, EngineError> {
        self.check_ready()?;
        let registry = self.queues.read();
        let slot = registry.get(name).ok_or_else(|| not_found(name))?;
        Ok(self
            .run_on(&registry, slot, Access::Read, |queue, now, _| {
                slot.view(queue, now)
            })?
            .0)
    }

    async fn set_queue_meta(
        &self,
        name: &QueueName,
        tags: Option<BTreeMap<String, String>>,
        attributes: Option<BTreeMap<String, String>>,
    ) -> Result<QueueView, EngineError> {
        let too_big = |map: &BTreeMap<String, String>| {
            map.iter()
                .any(|(k, v)| k.len() + v.len() > QUEUE_META_VALUE_BYTES_MAX)
        };
        if let Some(tags) = &tags {
            if tags.len() > QUEUE_TAGS_MAX || too_big(tags) {
                return Err(EngineError::Queue(baton_core::QueueError::InvalidParameter {
                    field: "tags".to_string(),
                    reason: format!("at most {QUEUE_TAGS_MAX} tags of at most {QUEUE_META_VALUE_BYTES_MAX} bytes each"),
                }));
            }
        }
        if let Some(attributes) = &attributes {
            if attributes.len() > QUEUE_META_ATTRIBUTES_MAX || too_big(attributes) {
                return Err(EngineError::Queue(baton_core::QueueError::InvalidParameter {
                    field: "attributes".to_string(),
                    reason: format!(
                        "at most {QUEUE_META_ATTRIBUTES_MAX} attributes of at most {QUEUE_META_VALUE_BYTES_MAX} bytes each"
                    ),
                }));
            }
        }
        self.check_ready()?;
        let (view, lsn) = {
            let registry = self.queues.read();
            let slot = registry.get(name).ok_or_else(|| not_found(name))?;
            self.run_on(&registry, slot, Access::Write, |queue, now, journal| {
                let mut meta = slot.meta.lock();
                if let Some(tags) = tags {
                    meta.tags = tags;
                }
                if let Some(attributes) = attributes {
                    meta.attributes = attributes;
                }
                meta.modified_at = now;
                let (tags, attributes) = (meta.tags.clone(), meta.attributes.clone());
                drop(meta);
                journal.push(|| QueueOp::SetMeta {
                    queue: name.to_string(),
                    now: now.as_millis(),
                    tags: tags.into_iter().collect(),
                    attributes: attributes.into_iter().collect(),
                });
                slot.view(queue, now)
            })?
        };
        self.wait(lsn).await?;
        Ok(view)
    }

    async fn list_queues(&self) -> Result<Vec<QueueView>, EngineError> {
        self.check_ready()?;
        let registry = self.queues.read();
        let mut views = Vec::with_capacity(registry.len());
        for slot in registry.values() {
            views.push(
                self.run_on(&registry, slot, Access::Read, |queue, now, _| {
                    slot.view(queue, now)
                })?
                .0,
            );
        }
        Ok(views)
    }

    async fn purge_queue(&self, name: &QueueName) -> Result<u64, EngineError> {
        let (purged, lsn) = self.with_queue(name, Access::Write, |queue, now, journal| {
            let purged = queue.purge(now);
            journal.push(|| QueueOp::Purge {
                queue: name.to_string(),
                now: now.as_millis(),
            });
            purged
        })?;
        self.wait(lsn).await?;
        Ok(purged)
    }

    async fn send(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<SendOutcome>, EngineError> {
        self.send_as(name, entries, Producer::Client).await
    }

    async fn send_internal(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<SendOutcome>, EngineError> {
        self.send_as(name, entries, Producer::Broker).await
    }

    async fn receive(
        &self,
        name: &QueueName,
        options: ReceiveOptions,
    ) -> Result<Vec<Delivery>, EngineError> {
        let started = tokio::time::Instant::now();
        let mut permit = None;
        loop {
            self.check_ready()?;
            let slot = self
                .queues
                .read()
                .get(name)
                .cloned()
                .ok_or_else(|| not_found(name))?;
            let notified = slot.visible.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let ((deliveries, wait_ms, next_visible_in), _unsynced_lsn) =
                self.with_queue(name, Access::Write, |queue, now, journal| {
                    let wait_ms = options.wait_ms.unwrap_or(queue.config().receive_wait_ms);
                    let deliveries = queue.receive(now, options.max, options.visibility_timeout_ms);
                    if matches!(&deliveries, Ok(d) if !d.is_empty()) {
                        journal.push(|| QueueOp::Receive {
                            queue: name.to_string(),
                            now: now.as_millis(),
                            max: options.max,
                            visibility_timeout_ms: options.visibility_timeout_ms,
                        });
                    }
                    let next_visible_in = queue.next_visible_at().map(|at| at.millis_since(now));
                    (deliveries, wait_ms, next_visible_in)
                })?;
            let deliveries = deliveries?;
            if !deliveries.is_empty() {
                // A receive is logged but answered without waiting for its sync: leases are not
                // durable anyway, and any later ack, nack or visibility change of these
                // messages waits for a later position in the log, so it covers this record
                // too. A crash can only forget the receive counts of the last unsynced
                // receives (the messages come back, as every leased message does).
                return Ok(deliveries);
            }
            let deadline = started + Duration::from_millis(wait_ms);
            let now = tokio::time::Instant::now();
            if now >= deadline || self.shutdown.is_cancelled() {
                return Ok(deliveries);
            }
            if permit.is_none() {
                permit = Some(self.acquire_wait_permit()?);
            }
            let wake_at = match next_visible_in {
                Some(ms) => deadline.min(now + Duration::from_millis(ms)),
                None => deadline,
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
    }

    async fn ack(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
    ) -> Result<Vec<Result<Acked, ReceiptError>>, EngineError> {
        self.ack_with_reply(name, receipts, None).await
    }

    fn take_recovered_completions(&self) -> Vec<Completion> {
        std::mem::take(&mut *self.recovered_completions.lock())
    }

    async fn ack_with_reply(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        reply: Option<Arc<str>>,
    ) -> Result<Vec<Result<Acked, ReceiptError>>, EngineError> {
        let results = self
            .finish(name, receipts, reply, ReceiptRule::CurrentLease)
            .await?;
        // By the current-lease rule a message is acked or the receipt refused, never gone.
        Ok(results
            .into_iter()
            .map(|result| result.and_then(|acked| acked.ok_or(ReceiptError::Stale)))
            .collect())
    }

    async fn delete(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
    ) -> Result<Vec<Result<Option<Acked>, ReceiptError>>, EngineError> {
        self.finish(name, receipts, None, ReceiptRule::AnyIssued)
            .await
    }

    async fn nack(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        delay_ms: Option<u64>,
    ) -> Result<Vec<Result<(), ReceiptError>>, EngineError> {
        self.check_ready()?;
        let (results, lsn) = {
            let registry = self.queues.read();
            let slot = registry.get(name).ok_or_else(|| not_found(name))?;
            let out = self.run_on(&registry, slot, Access::Write, |queue, now, journal| {
                let results: Vec<_> = receipts
                    .iter()
                    .map(|receipt| queue.nack(now, receipt, delay_ms))
                    .collect();
                let done: Vec<ReceiptV1> = receipts
                    .iter()
                    .zip(&results)
                    .filter(|(_, r)| r.is_ok())
                    .map(|(h, _)| receipt_to_disk(h))
                    .collect();
                if !done.is_empty() {
                    journal.push(|| QueueOp::Nack {
                        queue: name.to_string(),
                        now: now.as_millis(),
                        receipts: done,
                        delay_ms,
                    });
                }
                results
            })?;
            slot.visible.notify_waiters();
            out
        };
        self.wait(lsn).await?;
        Ok(results)
    }

    async fn change_visibility(
        &self,
        name: &QueueName,
        receipt: ReceiptHandle,
        timeout_ms: u64,
    ) -> Result<(), EngineError> {
        self.check_ready()?;
        let lsn = {
            let registry = self.queues.read();
            let slot = registry.get(name).ok_or_else(|| not_found(name))?;
            let (result, lsn) =
                self.run_on(&registry, slot, Access::Write, |queue, now, journal| {
                    let result = queue.change_visibility(now, &receipt, timeout_ms);
                    if result.is_ok() {
                        journal.push(|| QueueOp::ChangeVisibility {
                            queue: name.to_string(),
                            now: now.as_millis(),
                            receipt: receipt_to_disk(&receipt),
                            timeout_ms,
                        });
                    }
                    result
                })?;
            result?;
            if timeout_ms == 0 {
                slot.visible.notify_waiters();
            }
            lsn
        };
        self.wait(lsn).await
    }

    async fn change_message_visibility(
        &self,
        name: &QueueName,
        receipt: ReceiptHandle,
        timeout_ms: u64,
    ) -> Result<VisibilityOutcome, EngineError> {
        self.retime_message(name, receipt, timeout_ms).await
    }

    async fn message_status(
        &self,
        name: &QueueName,
        id: MessageId,
    ) -> Result<StatusRecord, EngineError> {
        self.with_queue(name, Access::Read, |queue, _, _| queue.status(id))?
            .0
            .ok_or_else(|| EngineError::MessageNotFound {
                queue: name.to_string(),
                id: id.to_string(),
            })
    }

    async fn redrive(&self, name: &QueueName, options: RedriveOptions) -> Result<u64, EngineError> {
        self.check_ready()?;
        let (n_moved, lsn) = {
            let registry = self.queues.read();
            let slot = registry.get(name).ok_or_else(|| not_found(name))?;
            let fifo = slot.queue.lock().is_fifo();
            let kind_of = |queue: &QueueName| registry.get(queue).map(|s| s.queue.lock().is_fifo());
            if let Some(to) = &options.to {
                if to == name {
                    return Err(EngineError::DeadLetterQueueInvalid {
                        reason: "cannot redrive a queue into itself".to_string(),
                    });
                }
                match kind_of(to) {
                    None => return Err(not_found(to)),
                    Some(to_fifo) if to_fifo != fifo => {
                        return Err(EngineError::DeadLetterQueueInvalid {
                            reason: format!("queue {to} is of the other kind (FIFO vs standard)"),
                        })
                    }
                    Some(_) => {}
                }
            }
            // Which origins can take messages back, decided before taking any out.
            let origins: BTreeMap<QueueName, bool> = registry
                .keys()
                .filter(|other| *other != name)
                .map(|other| (other.clone(), kind_of(other) == Some(fifo)))
                .collect();
            let to = options.to.clone();
            let (moved, mut lsn) =
                self.run_on(&registry, slot, Access::Write, |queue, now, journal| {
                    let destination_of = |origin: Option<&QueueName>| -> Option<QueueName> {
                        match (&to, origin) {
                            (Some(to), _) => Some(to.clone()),
                            (None, Some(origin))
                                if origins.get(origin).copied().unwrap_or(false) =>
                            {
                                Some(origin.clone())
                            }
                            (None, _) => None,
                        }
                    };
                    let seqs = queue
                        .redrive_candidates(options.max.unwrap_or(u64::MAX), |origin| {
                            destination_of(origin).is_some()
                        });
                    let moved = queue.take_for_move(now, &seqs);
                    let destinations: Vec<QueueName> = moved
                        .iter()
                        .map(|m| {
                            destination_of(m.dead_letter_source.as_ref())
                                .expect("candidates have a destination")
                        })
                        .collect();
                    if !moved.is_empty() {
                        let names = destinations.iter().map(|d| d.to_string()).collect();
                        journal.push(|| QueueOp::TakeForMove {
                            queue: name.to_string(),
                            now: now.as_millis(),
                            seqs,
                            destinations: names,
                        });
                    }
                    (moved, destinations, now)
                })?;
            let (moved, destinations, now) = moved;
            let n_moved = moved.len() as u64;
            for (message, destination) in moved.into_iter().zip(destinations) {
                let target = registry
                    .get(&destination)
                    .expect("destinations were checked under the same lock");
                let arrived = self.accept_all(
                    target,
                    vec![message],
                    HistoryEventKind::Redriven,
                    now,
                    Access::Write,
                )?;
                lsn = max_lsn(lsn, arrived);
            }
            (n_moved, lsn)
        };
        self.wait(lsn).await?;
        Ok(n_moved)
    }

    async fn tick(&self) {
        if let Some(durable) = &self.durable {
            let space = durable.space();
            space.check();
            if !space.is_low() {
                if let Err(error) = space.restore_reserve() {
                    tracing::warn!(%error, "cannot create the emergency disk reserve");
                }
            }
            if self.recovered_once.load(Ordering::Acquire) && durable.should_reopen() {
                tracing::warn!(failure = ?durable.failure(), "storage failed; reopening from disk");
                if let Err(error) = self.reload() {
                    tracing::warn!(%error, "storage still unavailable");
                }
                return;
            }
        }
        if !self.is_ready() {
            return;
        }
        {
            let registry = self.queues.read();
            for slot in registry.values() {
                let _ = self.run_on(&registry, slot, Access::Read, |_, _, _| ());
            }
        }
        self.stream_tick().await;
        if let Some(durable) = &self.durable {
            if durable.checkpoint_due(self.live_bytes()) {
                if let Err(error) = self.checkpoint() {
                    tracing::warn!(%error, "checkpoint failed; the log keeps growing until one succeeds");
                }
            }
        }
    }

    fn begin_shutdown(&self) {
        self.shutdown.cancel();
        self.streams.wake_all();
    }

    async fn create_stream(
        &self,
        name: StreamName,
        config: StreamConfig,
    ) -> Result<(StreamView, bool), EngineError> {
        self.stream_create(name, config).await
    }

    async fn get_stream(&self, name: &StreamName) -> Result<StreamView, EngineError> {
        self.stream_get(name).await
    }

    async fn list_streams(&self) -> Result<Vec<StreamView>, EngineError> {
        self.stream_list().await
    }

    async fn delete_stream(&self, name: &StreamName) -> Result<(), EngineError> {
        self.stream_delete(name).await
    }

    async fn append(
        &self,
        name: &StreamName,
        producer: Option<ProducerSeq>,
        records: Vec<NewRecord>,
    ) -> Result<Vec<Appended>, EngineError> {
        self.stream_append(name, producer, records).await
    }

    async fn read_stream(
        &self,
        name: &StreamName,
        partition: u32,
        from: ReadFrom,
        max: u32,
        wait_ms: u64,
    ) -> Result<StreamRead, EngineError> {
        self.stream_read(name, partition, from, max, wait_ms).await
    }

    async fn create_group(
        &self,
        name: &StreamName,
        group: GroupName,
        config: GroupConfig,
    ) -> Result<(GroupView, bool), EngineError> {
        self.stream_create_group(name, group, config).await
    }

    async fn get_group(
        &self,
        name: &StreamName,
        group: &GroupName,
    ) -> Result<GroupView, EngineError> {
        self.stream_get_group(name, group).await
    }

    async fn delete_group(&self, name: &StreamName, group: &GroupName) -> Result<(), EngineError> {
        self.stream_delete_group(name, group).await
    }

    async fn group_read(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        max: u32,
        wait_ms: u64,
    ) -> Result<Vec<GroupRecord>, EngineError> {
        self.stream_group_read(name, group, consumer, max, wait_ms)
            .await
    }

    async fn group_ack(
        &self,
        name: &StreamName,
        group: &GroupName,
        ids: Vec<RecordId>,
    ) -> Result<Vec<Result<(), StreamError>>, EngineError> {
        self.stream_group_ack(name, group, ids).await
    }

    async fn group_pending(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: Option<&ConsumerName>,
        max: usize,
    ) -> Result<PendingView, EngineError> {
        self.stream_group_pending(name, group, consumer, max).await
    }

    async fn group_claim(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        min_idle_ms: u64,
        max: u32,
    ) -> Result<Vec<GroupRecord>, EngineError> {
        self.stream_group_claim(name, group, consumer, min_idle_ms, max)
            .await
    }

    async fn group_seek(
        &self,
        name: &StreamName,
        group: &GroupName,
        partition: Option<u32>,
        position: StartPosition,
    ) -> Result<GroupView, EngineError> {
        self.stream_group_seek(name, group, partition, position)
            .await
    }

    fn set_completion_hook(&self, hook: CompletionHook) {
        *self.completion_hook.write() = Some(hook);
    }

    async fn record_callback(
        &self,
        name: &QueueName,
        id: MessageId,
        succeeded: bool,
        reason: Option<String>,
    ) -> Result<StatusRecord, EngineError> {
        let (record, lsn) = self.with_queue(name, Access::Write, |queue, now, journal| {
            let record = queue.record_callback(now, id, succeeded, reason.clone());
            if record.is_some() {
                journal.push(|| QueueOp::RecordCallback {
                    queue: name.to_string(),
                    now: now.as_millis(),
                    id: id.as_u128(),
                    succeeded,
                    reason,
                });
            }
            record
        })?;
        self.wait(lsn).await?;
        record.ok_or_else(|| EngineError::MessageNotFound {
            queue: name.to_string(),
            id: id.to_string(),
        })
    }

    async fn callback_failed(
        &self,
        max: usize,
    ) -> Result<Vec<(QueueName, StatusRecord)>, EngineError> {
        self.check_ready()?;
        let registry = self.queues.read();
        let mut out = Vec::new();
        for (name, slot) in registry.iter() {
            if out.len() >= max {
                break;
            }
            let records = slot.queue.lock().callback_failed(max - out.len());
            out.extend(records.into_iter().map(|record| (name.clone(), record)));
        }
        Ok(out)
    }

    async fn create_topic(&self, name: QueueName) -> Result<(TopicView, bool), EngineError> {
        self.create_topic_impl(name).await
    }

    async fn delete_topic(&self, name: &QueueName) -> Result<(), EngineError> {
        self.delete_topic_impl(name).await
    }

    async fn get_topic(&self, name: &QueueName) -> Result<TopicView, EngineError> {
        self.get_topic_impl(name)
    }

    async fn list_topics(&self) -> Result<Vec<TopicView>, EngineError> {
        self.list_topics_impl()
    }

    async fn put_subscription(
        &self,
        topic: &QueueName,
        subscription: Subscription,
    ) -> Result<(Subscription, Put), EngineError> {
        self.put_subscription_impl(topic, subscription).await
    }

    async fn delete_subscription(
        &self,
        topic: &QueueName,
        name: &QueueName,
    ) -> Result<(), EngineError> {
        self.delete_subscription_impl(topic, name).await
    }

    async fn publish(
        &self,
        topic: &QueueName,
        messages: Vec<PublishEntry>,
    ) -> Result<Vec<PublishOutcome>, EngineError> {
        self.publish_impl(topic, messages).await
    }

    async fn peek(
        &self,
        name: &QueueName,
        after: baton_core::Seq,
        max: u32,
    ) -> Result<Vec<baton_core::PeekedMessage>, EngineError> {
        Ok(self
            .with_queue(name, Access::Read, |queue, _, _| queue.peek(after, max))?
            .0)
    }
}

mod fenced;
mod locks;
mod receipts;
mod streams;
mod topics;

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod durable_tests;
#[cfg(test)]
mod full_disk_tests;
#[cfg(test)]
mod lock_tests;
#[cfg(test)]
mod topic_stream_tests;
#[cfg(test)]
mod topic_tests;
