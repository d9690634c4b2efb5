//! The in-memory engine: `baton-core` queues behind locks, long polls on `Notify`.
//!
//! # Locking
//! The registry (`queues`) is an `RwLock`: operations on queues hold it for reading, creating
//! and deleting queues take it for writing. Each queue has its own `Mutex`. At most one queue
//! mutex is held at a time, and never across an `.await`: a dead-letter move locks the source,
//! takes the moved messages out, unlocks, then locks the dead-letter queue. Because the
//! registry read lock is held throughout, the dead-letter queue cannot be deleted in between.
//!
//! # Long polls
//! A waiting receive registers for the queue's `Notify` *before* it looks at the queue, so a
//! send between the look and the wait still wakes it. It also sleeps no later than the
//! moment the queue says the next delayed or leased message becomes visible.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use baton_core::{
    Acked, Clock, Delivery, HistoryEventKind, MessageId, MovedMessage, Queue, QueueConfig,
    QueueName, ReceiptError, ReceiptHandle, SendEntry, SendOutcome, StatusRecord, Timestamp,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    Created, Engine, EngineConfig, EngineError, QueueView, ReceiveOptions, RedriveOptions,
};

pub struct MemoryEngine {
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    queues: RwLock<BTreeMap<QueueName, Arc<Slot>>>,
    n_waiting: AtomicU32,
    shutdown: CancellationToken,
}

struct Slot {
    queue: Mutex<Queue>,
    /// Woken when messages may have become visible: sends, nacks, releases, moves, deletion.
    visible: Notify,
}

/// Counts one waiting receive for as long as it lives.
struct WaitPermit<'a>(&'a AtomicU32);

impl Drop for WaitPermit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

type Registry = BTreeMap<QueueName, Arc<Slot>>;

fn not_found(name: &QueueName) -> EngineError {
    EngineError::QueueNotFound {
        queue: name.to_string(),
    }
}

/// The attributes in which `a` and `b` differ, as `field: a → b`.
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

impl MemoryEngine {
    pub fn new(clock: Arc<dyn Clock>, config: EngineConfig) -> Self {
        MemoryEngine {
            clock,
            config,
            queues: RwLock::new(BTreeMap::new()),
            n_waiting: AtomicU32::new(0),
            shutdown: CancellationToken::new(),
        }
    }

    fn view(queue: &mut Queue, now: Timestamp) -> QueueView {
        queue.advance(now);
        QueueView {
            name: queue.name().clone(),
            config: queue.config().clone(),
            stats: queue.stats(now),
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

    /// Runs `op` on queue `name` under its lock, then delivers any messages it dead-lettered.
    fn with_queue<T>(
        &self,
        name: &QueueName,
        op: impl FnOnce(&mut Queue, Timestamp) -> T,
    ) -> Result<T, EngineError> {
        let registry = self.queues.read();
        let slot = registry.get(name).ok_or_else(|| not_found(name))?;
        self.run_on(&registry, slot, op)
    }

    fn run_on<T>(
        &self,
        registry: &Registry,
        slot: &Slot,
        op: impl FnOnce(&mut Queue, Timestamp) -> T,
    ) -> Result<T, EngineError> {
        let now = self.clock.now();
        let (out, moved, target) = {
            let mut queue = slot.queue.lock();
            let out = op(&mut queue, now);
            let moved = queue.take_moved();
            let target = queue.config().dead_letter.as_ref().map(|d| d.queue.clone());
            (out, moved, target)
        };
        if !moved.is_empty() {
            self.deliver_dead_letters(registry, slot, moved, target, now);
        }
        Ok(out)
    }

    fn deliver_dead_letters(
        &self,
        registry: &Registry,
        source: &Slot,
        moved: Vec<MovedMessage>,
        target: Option<QueueName>,
        now: Timestamp,
    ) {
        let destination = target.as_ref().and_then(|name| registry.get(name));
        match destination {
            Some(dead_letter) => {
                let mut queue = dead_letter.queue.lock();
                for message in moved {
                    queue.accept_moved(now, message, HistoryEventKind::DeadLettered);
                }
                drop(queue);
                dead_letter.visible.notify_waiters();
            }
            None => {
                // Unreachable while deletes of dead-letter queues are refused; if it happens,
                // keep the messages rather than lose them.
                tracing::error!(
                    dead_letter_queue = ?target,
                    n_messages = moved.len(),
                    "dead-letter queue missing; messages stay in their source queue"
                );
                let mut queue = source.queue.lock();
                for message in moved {
                    queue.accept_moved(now, message, HistoryEventKind::Redriven);
                }
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
}

#[async_trait]
impl Engine for MemoryEngine {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    async fn create_queue(
        &self,
        name: QueueName,
        config: QueueConfig,
    ) -> Result<Created, EngineError> {
        let mut registry = self.queues.write();
        let now = self.clock.now();
        if let Some(slot) = registry.get(&name) {
            let mut queue = slot.queue.lock();
            let found = differences(queue.config(), &config);
            if !found.is_empty() {
                return Err(EngineError::QueueExists {
                    queue: name.to_string(),
                    differences: found.join(", "),
                });
            }
            return Ok(Created::Existing(Self::view(&mut queue, now)));
        }
        config.validate(&name)?;
        Self::check_dead_letter(&registry, &config)?;
        let epoch = uuid::Uuid::new_v4().as_u64_pair().0;
        let mut queue = Queue::new(name.clone(), config, self.config.limits, epoch)?;
        let view = Self::view(&mut queue, now);
        registry.insert(
            name,
            Arc::new(Slot {
                queue: Mutex::new(queue),
                visible: Notify::new(),
            }),
        );
        Ok(Created::New(view))
    }

    async fn update_queue(
        &self,
        name: &QueueName,
        config: QueueConfig,
    ) -> Result<QueueView, EngineError> {
        let registry = self.queues.read();
        let slot = registry.get(name).ok_or_else(|| not_found(name))?;
        config.validate(name)?;
        Self::check_dead_letter(&registry, &config)?;
        let view = self.run_on(&registry, slot, |queue, now| {
            queue.update_config(config)?;
            Ok::<_, EngineError>(Self::view(queue, now))
        })??;
        // A shorter delay or retention may have made messages visible or expired them.
        slot.visible.notify_waiters();
        Ok(view)
    }

    async fn delete_queue(&self, name: &QueueName) -> Result<(), EngineError> {
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
        if let Some(slot) = registry.remove(name) {
            slot.visible.notify_waiters();
        }
        Ok(())
    }

    async fn get_queue(&self, name: &QueueName) -> Result<QueueView, EngineError> {
        self.with_queue(name, Self::view)
    }

    async fn list_queues(&self) -> Result<Vec<QueueView>, EngineError> {
        let registry = self.queues.read();
        let mut views = Vec::with_capacity(registry.len());
        for slot in registry.values() {
            views.push(self.run_on(&registry, slot, Self::view)?);
        }
        Ok(views)
    }

    async fn purge_queue(&self, name: &QueueName) -> Result<u64, EngineError> {
        self.with_queue(name, |queue, now| queue.purge(now))
    }

    async fn send(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<SendOutcome>, EngineError> {
        let registry = self.queues.read();
        let slot = registry.get(name).ok_or_else(|| not_found(name))?;
        let outcomes = self.run_on(&registry, slot, |queue, now| queue.send(now, entries))??;
        slot.visible.notify_waiters();
        Ok(outcomes)
    }

    async fn receive(
        &self,
        name: &QueueName,
        options: ReceiveOptions,
    ) -> Result<Vec<Delivery>, EngineError> {
        let started = tokio::time::Instant::now();
        let mut permit = None;
        loop {
            let slot = self
                .queues
                .read()
                .get(name)
                .cloned()
                .ok_or_else(|| not_found(name))?;
            let notified = slot.visible.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (deliveries, wait_ms, next_visible_in) = self.with_queue(name, |queue, now| {
                let wait_ms = options.wait_ms.unwrap_or(queue.config().receive_wait_ms);
                let deliveries = queue.receive(now, options.max, options.visibility_timeout_ms);
                let next_visible_in = queue.next_visible_at().map(|at| at.millis_since(now));
                (deliveries, wait_ms, next_visible_in)
            })?;
            let deliveries = deliveries?;
            let deadline = started + Duration::from_millis(wait_ms);
            let now = tokio::time::Instant::now();
            if !deliveries.is_empty() || now >= deadline || self.shutdown.is_cancelled() {
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
        self.with_queue(name, |queue, now| {
            receipts
                .iter()
                .map(|receipt| queue.ack(now, receipt))
                .collect()
        })
    }

    async fn nack(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        delay_ms: Option<u64>,
    ) -> Result<Vec<Result<(), ReceiptError>>, EngineError> {
        let registry = self.queues.read();
        let slot = registry.get(name).ok_or_else(|| not_found(name))?;
        let results = self.run_on(&registry, slot, |queue, now| {
            receipts
                .iter()
                .map(|receipt| queue.nack(now, receipt, delay_ms))
                .collect::<Vec<_>>()
        })?;
        slot.visible.notify_waiters();
        Ok(results)
    }

    async fn change_visibility(
        &self,
        name: &QueueName,
        receipt: ReceiptHandle,
        timeout_ms: u64,
    ) -> Result<(), EngineError> {
        let registry = self.queues.read();
        let slot = registry.get(name).ok_or_else(|| not_found(name))?;
        self.run_on(&registry, slot, |queue, now| {
            queue.change_visibility(now, &receipt, timeout_ms)
        })??;
        if timeout_ms == 0 {
            slot.visible.notify_waiters();
        }
        Ok(())
    }

    async fn message_status(
        &self,
        name: &QueueName,
        id: MessageId,
    ) -> Result<StatusRecord, EngineError> {
        self.with_queue(name, |queue, now| {
            queue.advance(now);
            queue.status(id)
        })?
        .ok_or_else(|| EngineError::MessageNotFound {
            queue: name.to_string(),
            id: id.to_string(),
        })
    }

    async fn redrive(&self, name: &QueueName, options: RedriveOptions) -> Result<u64, EngineError> {
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
        let moved = self.run_on(&registry, slot, |queue, now| {
            queue.take_for_redrive(now, options.max.unwrap_or(u64::MAX), |origin| {
                match (&to, origin) {
                    (Some(_), _) => true,
                    (None, Some(origin)) => origins.get(origin).copied().unwrap_or(false),
                    (None, None) => false,
                }
            })
        })?;
        let n_moved = moved.len() as u64;
        let now = self.clock.now();
        for message in moved {
            let destination = match (&options.to, &message.dead_letter_source) {
                (Some(to), _) => to.clone(),
                (None, Some(origin)) => origin.clone(),
                (None, None) => unreachable!("only messages with a destination are taken"),
            };
            let target = registry
                .get(&destination)
                .expect("destinations were checked under the same lock");
            target
                .queue
                .lock()
                .accept_moved(now, message, HistoryEventKind::Redriven);
            target.visible.notify_waiters();
        }
        Ok(n_moved)
    }

    async fn tick(&self) {
        let registry = self.queues.read();
        for slot in registry.values() {
            let _ = self.run_on(&registry, slot, |queue, now| queue.advance(now));
        }
    }

    fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use baton_core::{DeadLetterPolicy, ManualClock, MessageStatus};

    use super::*;
    use crate::new_message_id;

    fn name(s: &str) -> QueueName {
        QueueName::new(s).unwrap()
    }

    fn engine() -> (Arc<ManualClock>, MemoryEngine) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
        let engine = MemoryEngine::new(clock.clone(), EngineConfig::default());
        (clock, engine)
    }

    fn entry(body: &str) -> SendEntry {
        SendEntry::new(new_message_id(), body)
    }

    fn receive_now(max: u32) -> ReceiveOptions {
        ReceiveOptions {
            max,
            wait_ms: Some(0),
            visibility_timeout_ms: None,
        }
    }

    #[tokio::test]
    async fn create_is_idempotent_and_conflicts_name_the_difference() {
        let (_, engine) = engine();
        assert!(matches!(
            engine.create_queue(name("q"), QueueConfig::default()).await,
            Ok(Created::New(_))
        ));
        assert!(matches!(
            engine.create_queue(name("q"), QueueConfig::default()).await,
            Ok(Created::Existing(_))
        ));
        let other = QueueConfig {
            visibility_timeout_ms: 5,
            ..QueueConfig::default()
        };
        let err = engine.create_queue(name("q"), other).await.unwrap_err();
        assert!(
            matches!(&err, EngineError::QueueExists { differences, .. } if differences.contains("visibility_timeout_ms"))
        );
    }

    #[tokio::test]
    async fn dead_letter_queue_must_exist_and_match_kind_and_cannot_be_deleted_while_used() {
        let (_, engine) = engine();
        let with_dlq = |queue: &str| QueueConfig {
            dead_letter: Some(DeadLetterPolicy {
                queue: name(queue),
                max_receive_count: 2,
            }),
            ..QueueConfig::default()
        };
        assert!(matches!(
            engine.create_queue(name("q"), with_dlq("dlq")).await,
            Err(EngineError::DeadLetterQueueInvalid { .. })
        ));
        engine
            .create_queue(
                name("dlq.fifo"),
                QueueConfig {
                    fifo: true,
                    ..QueueConfig::default()
                },
            )
            .await
            .unwrap();
        assert!(matches!(
            engine.create_queue(name("q"), with_dlq("dlq.fifo")).await,
            Err(EngineError::DeadLetterQueueInvalid { .. })
        ));
        engine
            .create_queue(name("dlq"), QueueConfig::default())
            .await
            .unwrap();
        engine
            .create_queue(name("q"), with_dlq("dlq"))
            .await
            .unwrap();
        assert!(matches!(
            engine.delete_queue(&name("dlq")).await,
            Err(EngineError::QueueInUse { .. })
        ));
        engine.delete_queue(&name("q")).await.unwrap();
        engine.delete_queue(&name("dlq")).await.unwrap();
        let left: Vec<_> = engine
            .list_queues()
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(left, vec![name("dlq.fifo")]);
    }

    #[tokio::test]
    async fn dead_letters_move_across_queues_and_redrive_brings_them_home() {
        let (clock, engine) = engine();
        engine
            .create_queue(name("dlq"), QueueConfig::default())
            .await
            .unwrap();
        let config = QueueConfig {
            visibility_timeout_ms: 1_000,
            dead_letter: Some(DeadLetterPolicy {
                queue: name("dlq"),
                max_receive_count: 2,
            }),
            ..QueueConfig::default()
        };
        engine.create_queue(name("q"), config).await.unwrap();
        let sent = engine
            .send(&name("q"), vec![entry("poison")])
            .await
            .unwrap();
        for _ in 0..2 {
            assert_eq!(
                engine
                    .receive(&name("q"), receive_now(1))
                    .await
                    .unwrap()
                    .len(),
                1
            );
            clock.advance_ms(1_000);
        }
        engine.tick().await;
        assert_eq!(engine.get_queue(&name("q")).await.unwrap().stats.depth(), 0);
        assert_eq!(
            engine.get_queue(&name("dlq")).await.unwrap().stats.visible,
            1
        );
        let status = engine.message_status(&name("q"), sent[0].id).await.unwrap();
        assert_eq!(status.status, MessageStatus::DeadLettered);

        assert_eq!(
            engine
                .redrive(&name("dlq"), RedriveOptions::default())
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            engine.get_queue(&name("dlq")).await.unwrap().stats.depth(),
            0
        );
        let back = engine.receive(&name("q"), receive_now(1)).await.unwrap();
        assert_eq!(back[0].id, sent[0].id);
        assert_eq!(
            back[0].receive_count, 1,
            "redrive gives a fresh receive count"
        );
    }

    #[tokio::test]
    async fn long_poll_returns_as_soon_as_a_message_arrives() {
        let clock = Arc::new(crate::SystemClock);
        let engine = Arc::new(MemoryEngine::new(clock, EngineConfig::default()));
        engine
            .create_queue(name("q"), QueueConfig::default())
            .await
            .unwrap();
        let waiter = {
            let engine = engine.clone();
            tokio::spawn(async move {
                let options = ReceiveOptions {
                    max: 1,
                    wait_ms: Some(10_000),
                    visibility_timeout_ms: None,
                };
                engine.receive(&name("q"), options).await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        engine.send(&name("q"), vec![entry("hello")]).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(&*got[0].body, "hello");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn waiting_receives_are_bounded() {
        let clock = Arc::new(crate::SystemClock);
        let config = EngineConfig {
            max_waiting_receives: 1,
            ..EngineConfig::default()
        };
        let engine = Arc::new(MemoryEngine::new(clock, config));
        engine
            .create_queue(name("q"), QueueConfig::default())
            .await
            .unwrap();
        let first = {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine
                    .receive(
                        &name("q"),
                        ReceiveOptions {
                            max: 1,
                            wait_ms: Some(2_000),
                            visibility_timeout_ms: None,
                        },
                    )
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = engine
            .receive(
                &name("q"),
                ReceiveOptions {
                    max: 1,
                    wait_ms: Some(2_000),
                    visibility_timeout_ms: None,
                },
            )
            .await;
        assert!(matches!(
            second,
            Err(EngineError::TooManyWaiters { limit: 1 })
        ));
        engine.begin_shutdown();
        assert!(
            first.await.unwrap().unwrap().is_empty(),
            "shutdown ends waits with no messages"
        );
    }
}
