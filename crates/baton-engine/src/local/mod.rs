//! The local engine: `baton-core` queues in this process, in memory only or made durable by
//! the write-ahead log (`durable`).
//!
//! # Locking
//! The registry (`queues`) is an `RwLock`: operations on queues hold it for reading, creating
//! and deleting queues (and recovery) take it for writing. Each queue has its own `Mutex`. A
//! queue operation holds one queue mutex, a topic publish those of its targets in name order
//! (`topics.rs`), and no lock is held across an `.await`: a dead-letter move locks the source,
//! takes the moved messages out, unlocks, then locks the dead-letter queue (`moves.rs`).
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
    QueueError, QueueName, ReceiptError, ReceiptHandle, SendEntry, SendOutcome, StatusRecord,
    Timestamp, VisibilityOutcome,
};
use baton_storage::records::{QueueOp, ReceiptV1};
use baton_storage::FileSystem;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::durable::{codec, Durable, StorageConfig};
use crate::memory::MemoryAlarm;
use crate::{
    Completion, CompletionHook, Created, Engine, EngineConfig, EngineError, QueueEngine, QueueMeta,
    QueueView, ReceiveOptions, RedriveOptions,
};
pub(crate) use queue_config::differences;
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
    /// The memory alarm (`crate::memory`), sampled by the tick.
    memory: MemoryAlarm,
    /// Distributed locks (`locks.rs`) and the fence gates of fenced writes (`fenced.rs`).
    locks: locks::Locks,
    /// Schedules (`schedules.rs`). Locked alone.
    schedules: schedules::Schedules,
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

/// What a send's filter keeps, and the entries it refused (by index, with their errors).
type KeptEntries = (Vec<SendEntry>, Vec<(usize, QueueError)>);

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
            memory: MemoryAlarm::new(0),
            locks: locks::Locks::new(crate::LockSettings::default()),
            schedules: schedules::Schedules::new(Default::default()),
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

    /// The engine with `alarm` as its memory alarm (the default one only measures).
    pub fn with_memory_alarm(self, alarm: MemoryAlarm) -> Self {
        LocalEngine {
            memory: alarm,
            ..self
        }
    }

    /// Refuses a producer's write (send, publish, stream append, schedule firing) while the
    /// disk-free alarm or the memory alarm is on; consumers' writes are never refused by them.
    pub(crate) fn check_write_alarms(&self) -> Result<(), EngineError> {
        self.memory.admit()?;
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

    fn acquire_wait_permit(&self) -> Result<WaitPermit<'_>, EngineError> {
        let limit = self.config.max_waiting_receives;
        if self.n_waiting.fetch_add(1, Ordering::SeqCst) >= limit {
            self.n_waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(EngineError::TooManyWaiters { limit });
        }
        Ok(WaitPermit(&self.n_waiting))
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

    fn memory_status(&self) -> Option<crate::MemoryStatus> {
        Some(self.memory.status())
    }

    async fn recover(&self) -> Result<(), EngineError> {
        // Streams first: `reload` makes the engine ready.
        self.streams.recover().map_err(|error| match error {
            crate::StreamEngineError::Engine(error) => error,
            other => EngineError::StorageUnavailable {
                reason: format!("stream recovery: {other}"),
            },
        })?;
        self.reload()
    }

    fn take_recovered_completions(&self) -> Vec<Completion> {
        std::mem::take(&mut *self.recovered_completions.lock())
    }

    async fn tick(&self) {
        self.tick_all().await
    }

    fn begin_shutdown(&self) {
        self.shutdown.cancel();
        self.streams.wake_all();
    }

    fn set_completion_hook(&self, hook: CompletionHook) {
        *self.completion_hook.write() = Some(hook);
    }
}

#[async_trait]
impl QueueEngine for LocalEngine {
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
        self.change_meta(name, move |current_tags, current_attributes| {
            if let Some(tags) = tags {
                *current_tags = tags;
            }
            if let Some(attributes) = attributes {
                *current_attributes = attributes;
            }
            Ok(())
        })
        .await
    }

    async fn set_push(
        &self,
        name: &QueueName,
        push: Option<crate::PushSpec>,
        expect: Option<Option<crate::PushSpec>>,
    ) -> Result<QueueView, EngineError> {
        self.change_push(name, push, expect).await
    }

    async fn update_queue_meta(
        &self,
        name: &QueueName,
        patch: crate::MetaPatch,
    ) -> Result<QueueView, EngineError> {
        self.change_meta(name, move |tags, attributes| {
            patch
                .apply(tags, attributes)
                .map_err(|attribute| EngineError::MetaConflict {
                    queue: name.to_string(),
                    attribute,
                })
        })
        .await
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

    async fn send_each(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<Result<SendOutcome, QueueError>>, EngineError> {
        self.send_each_as(name, entries).await
    }

    async fn receive(
        &self,
        name: &QueueName,
        options: ReceiveOptions,
    ) -> Result<Vec<Delivery>, EngineError> {
        self.receive_queue(name, options).await
    }

    async fn ack(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
    ) -> Result<Vec<Result<Acked, ReceiptError>>, EngineError> {
        self.ack_with_reply(name, receipts, None).await
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
        self.redrive_queue(name, options).await
    }

    async fn record_callback(
        &self,
        name: &QueueName,
        id: MessageId,
        succeeded: bool,
        reason: Option<String>,
    ) -> Result<StatusRecord, EngineError> {
        self.record_callback_outcome(name, id, succeeded, reason)
            .await
    }

    async fn callback_failed(
        &self,
        max: usize,
    ) -> Result<Vec<(QueueName, StatusRecord)>, EngineError> {
        self.callbacks_failed(max).await
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

mod completions;
mod fenced;
mod locks;
mod meta;
mod moves;
mod queue_config;
mod receipts;
mod receive;
mod reload;
mod schedules;
mod sends;
mod stream_calls;
mod streams;
mod topic_calls;
mod topics;

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod durable_tests;
#[cfg(test)]
mod encryption_tests;
#[cfg(test)]
mod full_disk_tests;
#[cfg(test)]
mod lock_tests;
#[cfg(test)]
mod memory_alarm_tests;
#[cfg(test)]
mod schedule_tests;
#[cfg(test)]
mod topic_stream_tests;
#[cfg(test)]
mod topic_tests;
