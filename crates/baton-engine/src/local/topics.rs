//! Topics in the local engine: the registry of topics and subscriptions, and publish.
//!
//! # Locking
//! `topics` is an `RwLock` taken after the queue registry, never before it while that is held:
//! publish routes under the topics read lock and releases it before it touches queues; a new
//! subscription's queue is looked up before the topics write lock is taken; checkpoints take
//! the topics read lock inside the queue registry's read lock. Topic definition records
//! (create, delete, subscriptions) are submitted under the topics write lock, so their log
//! order is their application order and the checkpoint's `Topics` part is consistent.
//!
//! # Publish is one unit
//! A publish locks every target queue at once (in name order, so two publishes cannot
//! deadlock; everything else holds at most one queue lock), checks every copy against every
//! queue (`Queue::check_send`: sizes, FIFO group and dedup ids, `max_depth`), and only then
//! enqueues them all and submits one `TopicOp::Publish` record holding every copy, still under
//! the locks. Replay applies that record to each queue whose snapshot does not cover it.
//!
//! # Stream targets: two logs, one unit
//! A stream has its own log, so a publish reaching streams cannot be one frame. What holds:
//! - Before anything is logged, every stream copy is checked (`stream_check_append`: the
//!   stream exists, its log works, sizes and headers fit); a failure changes nothing.
//! - The main-log record (`TopicOp::PublishToStreams`) is the commit point: it holds the queue
//!   copies *and* the stream records, and is registered in flight (`InFlight`, keyed by its
//!   LSN) in the same critical section as its submission.
//! - Stream appends are submitted only once the main record is durable, in LSN order over all
//!   in-flight publishes (`submit_stream_copies`; the main log is durable as a prefix, so
//!   everything before a durable record is durable too), with the idempotent producer
//!   `topic_producer(topic)` and the record's LSN as the sequence. A stream therefore never
//!   holds a copy a crash could take from the queues, and one topic's appends reach a stream
//!   in sequence order.
//! - The answer waits until the main record and every stream append are durable.
//! - Recovery appends the copies of every `PublishToStreams` record still in the log again,
//!   in LSN order, and waits for them before the engine is ready. A stream log is durable as a
//!   prefix, so an append it lost is newer than every one it kept: the producer window answers
//!   a kept one as a duplicate, or as stale (older than its window), and both mean "already
//!   there"; a lost one is appended. Nothing is duplicated, and nothing whose main record (or
//!   queue copies, below) survived is missing from the streams.
//! - A checkpoint can delete the main-log record before the stream append is durable, and its
//!   queue snapshots can hold copies whose main record never becomes durable; so the publishes
//!   still in flight after every queue snapshot go into the checkpoint
//!   (`TopicCheckpointPart::StreamCopiesInFlight`) and are re-applied likewise.
//! - Limits of the guarantee: a stream that forgot the topic's producer (more than
//!   `PRODUCERS_MAX` producers) or was deleted and created again under the same name before
//!   the record left the log may receive such a copy a second time at a restart. A stream
//!   deleted between the publish and its append gets nothing. In-memory engines have no
//!   recovery, so their copies are appended without a producer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use baton_core::stream::{key_hash, ProducerSeq};
use baton_core::topic::{
    Put, Subscription, Target, Topic, TopicError, PUBLISH_BATCH_BYTES_MAX, PUBLISH_BATCH_MAX,
    PUBLISH_COPIES_MAX, PUBLISH_COPY_BYTES_MAX, TOPICS_MAX,
};
use baton_core::{
    AttributeData, QueueError, QueueName, SendEntry, StreamError, StreamName, SubscriptionName,
    Timestamp, TopicName,
};
use baton_storage::records::{self, QueueOp};
use baton_storage::topic_records::{
    StreamCopiesV1, StreamCopyV1, TopicCheckpointPart, TopicOp, KIND_TOPIC_CHECKPOINT,
    KIND_TOPIC_OP,
};
use parking_lot::Mutex;

use super::streams::SubmittedAppend;
use super::{Access, LocalEngine};
use crate::durable::{codec, topics as disk, Durable};
use crate::{
    EngineError, NewRecord, PublishEntry, PublishOutcome, StreamEngineError, TopicEngineError,
    TopicStats, TopicView,
};

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    delivered: AtomicU64,
    unmatched: AtomicU64,
}

/// A publish whose stream appends are not known durable yet (see the module doc).
/// Registered with its main-log record; its appends are submitted once that is durable.
struct InFlight {
    now: u64,
    copies: Vec<StreamCopiesV1>,
    /// `None` until the appends were submitted.
    appends: Option<Vec<SubmittedAppend>>,
}

impl InFlight {
    fn is_durable(&self) -> bool {
        self.appends
            .as_ref()
            .is_some_and(|appends| appends.iter().all(SubmittedAppend::is_durable))
    }
}

/// Publishes with stream copies in flight, by the LSN of their main-log record.
type InFlightMap = Arc<Mutex<BTreeMap<u64, InFlight>>>;

/// The idempotent producer a topic's stream appends use: readable, within the producer name
/// rule (`[A-Za-z0-9_-]`, at most 80), and unique through the hash of the full name.
pub(crate) fn topic_producer(topic: &str) -> String {
    let readable: String = topic
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("topic-{readable}-{:016x}", key_hash(topic.as_bytes()))
}

/// The stream record of a published message: key = routing key (none when empty), value =
/// body, headers = attributes (text as is, binary base64-encoded).
fn stream_record(message: &PublishEntry) -> NewRecord {
    use base64::Engine as _;
    let key = message.routing_key.as_str();
    NewRecord {
        key: (!key.is_empty()).then(|| key.to_string()),
        value: message.body.to_string(),
        headers: message
            .attributes
            .user()
            .map(|(name, value)| {
                let text = match value.data() {
                    AttributeData::Text(text) => text.clone(),
                    AttributeData::Binary(bytes) => {
                        base64::engine::general_purpose::STANDARD.encode(bytes)
                    }
                };
                (name.clone(), text)
            })
            .collect(),
        partition: None,
    }
}

/// Runs a future to completion on this thread. Recovery is synchronous, and what it waits
/// for (a stream log's sync) is done by that log's own writer thread, not by the runtime.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

fn copy_to_disk(record: &NewRecord) -> StreamCopyV1 {
    StreamCopyV1 {
        key: record.key.clone(),
        value: record.value.clone(),
        headers: record.headers.clone(),
    }
}

fn copy_from_disk(copy: StreamCopyV1) -> NewRecord {
    NewRecord {
        key: copy.key,
        value: copy.value,
        headers: copy.headers,
        partition: None,
    }
}

struct TopicEntry {
    topic: Topic,
    created_at: Timestamp,
    stats: Arc<Counters>,
}

#[derive(Default)]
pub(crate) struct TopicRegistry {
    topics: BTreeMap<TopicName, TopicEntry>,
    in_flight: InFlightMap,
    /// Tests: publishes stop after the main-log record, as a crash between the two logs does.
    #[cfg(test)]
    pub(super) skip_stream_appends: std::sync::atomic::AtomicBool,
}

impl TopicRegistry {
    /// Replaces every topic with what recovery rebuilt; counters of topics that remain carry
    /// on (they count since the process started).
    pub fn restore(&mut self, recovered: Vec<(Topic, Timestamp)>) {
        let mut old = std::mem::take(&mut self.topics);
        for (topic, created_at) in recovered {
            let stats = old
                .remove(topic.name())
                .map(|entry| entry.stats)
                .unwrap_or_default();
            self.topics.insert(
                topic.name().clone(),
                TopicEntry {
                    topic,
                    created_at,
                    stats,
                },
            );
        }
    }
}

impl TopicEntry {
    fn view(&self) -> TopicView {
        TopicView {
            name: self.topic.name().clone(),
            created_at: self.created_at,
            subscriptions: self.topic.subscriptions().cloned().collect(),
            stats: TopicStats {
                published_total: self.stats.published.load(Ordering::Relaxed),
                delivered_total: self.stats.delivered.load(Ordering::Relaxed),
                unmatched_total: self.stats.unmatched.load(Ordering::Relaxed),
            },
        }
    }
}

fn topic_not_found(name: &TopicName) -> TopicEngineError {
    TopicEngineError::TopicNotFound {
        topic: name.to_string(),
    }
}

fn invalid(field: &str, reason: String) -> EngineError {
    EngineError::Queue(QueueError::InvalidParameter {
        field: field.to_string(),
        reason,
    })
}

impl LocalEngine {
    /// The checkpoint part of every topic; `last_lsn` is read under the topics lock.
    pub(super) fn topics_checkpoint_part(&self, last_lsn: &dyn Fn() -> u64) -> (u8, Vec<u8>) {
        let topics = self.topics.read();
        let covered_lsn = last_lsn();
        disk::checkpoint_part(
            topics.topics.values().map(|e| (&e.topic, e.created_at)),
            covered_lsn,
        )
    }

    /// The checkpoint part of the publishes whose stream copies are not known durable (see
    /// the module doc). Taken after every queue's snapshot: a publish whose queue copies a
    /// snapshot holds was registered before that snapshot was taken, so it is in here unless
    /// its appends are durable — even when its main-log record never became durable.
    pub(super) fn topics_in_flight_part(&self) -> Vec<(u8, Vec<u8>)> {
        let in_flight = self.topics.read().in_flight.clone();
        let copies = {
            let mut in_flight = in_flight.lock();
            in_flight.retain(|_, entry| !entry.is_durable());
            in_flight
                .iter()
                .map(|(lsn, entry)| (*lsn, entry.now, entry.copies.clone()))
                .collect::<Vec<_>>()
        };
        if copies.is_empty() {
            return Vec::new();
        }
        vec![(
            KIND_TOPIC_CHECKPOINT,
            records::encode(&TopicCheckpointPart::StreamCopiesInFlight { copies }),
        )]
    }

    /// Recovery: appends again, in LSN order, the stream copies of every publish the main log
    /// (or its checkpoint) still holds; the producer sequence makes those the stream kept
    /// no-ops. Called before the engine is ready, so no publish interleaves; each append is
    /// waited for (the stream logs have writer threads of their own), so they are durable and
    /// visible before any checkpoint could drop their main-log records. One that fails stays
    /// in flight, so checkpoints keep it for the next recovery.
    pub(super) fn redo_stream_copies(&self, copies: BTreeMap<u64, (u64, Vec<StreamCopiesV1>)>) {
        let in_flight = self.topics.read().in_flight.clone();
        // What was in flight before a reload is either in `copies` (its main-log record or the
        // checkpoint survived) or was never durable and must not reach a stream.
        in_flight.lock().clear();
        let mut n_appended = 0_usize;
        for (lsn, (now, streams)) in copies {
            let mut failed = false;
            for copy in &streams {
                let Ok(name) = StreamName::new(&copy.stream) else {
                    continue;
                };
                let records: Vec<NewRecord> =
                    copy.records.iter().cloned().map(copy_from_disk).collect();
                let producer = ProducerSeq {
                    producer: copy.producer.clone(),
                    sequence: lsn,
                };
                let result = self
                    .stream_append_submit(&name, Some(producer), records)
                    .and_then(|submitted| {
                        let appended = submitted.logged.is_some();
                        block_on(self.stream_append_finish(&submitted))?;
                        Ok(appended)
                    });
                match result {
                    Ok(appended) => n_appended += usize::from(appended),
                    // Kept by the stream, older than the producer's window.
                    Err(StreamEngineError::Stream(StreamError::ProducerSequenceStale {
                        ..
                    })) => {}
                    // Deleted since: the copy has nowhere to go.
                    Err(StreamEngineError::Stream(StreamError::StreamNotFound { .. })) => {}
                    Err(error) => {
                        failed = true;
                        tracing::warn!(%error, stream = %copy.stream, lsn, "a publish's stream copy could not be appended again; it stays in flight");
                    }
                }
            }
            if failed {
                in_flight.lock().insert(
                    lsn,
                    InFlight {
                        now,
                        copies: streams,
                        appends: None,
                    },
                );
            }
        }
        if n_appended > 0 {
            tracing::info!(
                n_appended,
                "recovery appended publishes' stream copies the streams had lost"
            );
        }
    }

    /// Refuses writes once the log has failed, before anything changes in memory.
    fn check_writable(&self) -> Result<(), TopicEngineError> {
        self.check_ready()?;
        if let Some(failure) = self.durable.as_ref().and_then(Durable::failure) {
            return Err(crate::durable::failure_error(&failure).into());
        }
        Ok(())
    }

    /// Submits a topic record (when durable); call it under the lock that orders such records.
    fn submit_topic_op(
        &self,
        op: impl FnOnce() -> TopicOp,
    ) -> Result<Option<u64>, TopicEngineError> {
        match &self.durable {
            Some(durable) => durable
                .submit_frame(KIND_TOPIC_OP, &records::encode(&op()))
                .map(Some)
                .map_err(Into::into),
            None => Ok(None),
        }
    }

    pub(super) async fn create_topic_impl(
        &self,
        name: TopicName,
    ) -> Result<(TopicView, bool), TopicEngineError> {
        self.check_writable()?;
        let (view, lsn) = {
            let mut topics = self.topics.write();
            if let Some(entry) = topics.topics.get(&name) {
                return Ok((entry.view(), false));
            }
            if topics.topics.len() >= TOPICS_MAX {
                return Err(TopicEngineError::TooManyTopics { limit: TOPICS_MAX });
            }
            let now = self.clock.now();
            let lsn = self.submit_topic_op(|| TopicOp::CreateTopic {
                name: name.to_string(),
                now: now.as_millis(),
            })?;
            let entry = TopicEntry {
                topic: Topic::new(name.clone()),
                created_at: now,
                stats: Arc::default(),
            };
            let view = entry.view();
            topics.topics.insert(name, entry);
            (view, lsn)
        };
        self.wait(lsn).await?;
        Ok((view, true))
    }

    pub(super) async fn delete_topic_impl(&self, name: &TopicName) -> Result<(), TopicEngineError> {
        self.check_writable()?;
        let lsn = {
            let mut topics = self.topics.write();
            if !topics.topics.contains_key(name) {
                return Err(topic_not_found(name));
            }
            let now = self.clock.now();
            let lsn = self.submit_topic_op(|| TopicOp::DeleteTopic {
                name: name.to_string(),
                now: now.as_millis(),
            })?;
            topics.topics.remove(name);
            lsn
        };
        self.wait(lsn).await.map_err(Into::into)
    }

    pub(super) fn get_topic_impl(&self, name: &TopicName) -> Result<TopicView, TopicEngineError> {
        self.check_ready()?;
        let topics = self.topics.read();
        topics
            .topics
            .get(name)
            .map(TopicEntry::view)
            .ok_or_else(|| topic_not_found(name))
    }

    pub(super) fn list_topics_impl(&self) -> Result<Vec<TopicView>, TopicEngineError> {
        self.check_ready()?;
        Ok(self
            .topics
            .read()
            .topics
            .values()
            .map(TopicEntry::view)
            .collect())
    }

    pub(super) async fn put_subscription_impl(
        &self,
        topic: &TopicName,
        subscription: Subscription,
    ) -> Result<(Subscription, Put), TopicEngineError> {
        self.check_writable()?;
        match &subscription.target {
            Target::Queue(queue) => {
                if !self.queues.read().contains_key(queue) {
                    return Err(EngineError::QueueNotFound {
                        queue: queue.to_string(),
                    }
                    .into());
                }
            }
            Target::Stream(stream) => {
                let name = StreamName::new(stream.as_str())
                    .map_err(|e| invalid("target.stream", e.to_string()))?;
                self.streams_contains(&name)?;
            }
            other => return Err(TopicEngineError::TargetUnsupported { kind: other.kind() }),
        }
        let (put, lsn) = {
            let mut topics = self.topics.write();
            let entry = topics
                .topics
                .get_mut(topic)
                .ok_or_else(|| topic_not_found(topic))?;
            // Checked on a copy first, so a failure to log changes nothing.
            let mut next = entry.topic.clone();
            let put = next.put_subscription(subscription.clone())?;
            let lsn = match put {
                Put::Existing => None,
                Put::New => {
                    let now = self.clock.now();
                    let lsn = self.submit_topic_op(|| TopicOp::PutSubscription {
                        topic: topic.to_string(),
                        now: now.as_millis(),
                        subscription: disk::subscription_to_disk(&subscription),
                    })?;
                    entry.topic = next;
                    lsn
                }
            };
            (put, lsn)
        };
        self.wait(lsn).await?;
        Ok((subscription, put))
    }

    pub(super) async fn delete_subscription_impl(
        &self,
        topic: &TopicName,
        name: &SubscriptionName,
    ) -> Result<(), TopicEngineError> {
        self.check_writable()?;
        let lsn = {
            let mut topics = self.topics.write();
            let entry = topics
                .topics
                .get_mut(topic)
                .ok_or_else(|| topic_not_found(topic))?;
            if entry.topic.subscription(name).is_none() {
                return Err(TopicEngineError::SubscriptionNotFound {
                    topic: topic.to_string(),
                    subscription: name.to_string(),
                });
            }
            let now = self.clock.now();
            let lsn = self.submit_topic_op(|| TopicOp::DeleteSubscription {
                topic: topic.to_string(),
                now: now.as_millis(),
                name: name.to_string(),
            })?;
            entry.topic.remove_subscription(name);
            lsn
        };
        self.wait(lsn).await.map_err(Into::into)
    }

    pub(super) async fn publish_impl(
        &self,
        topic: &TopicName,
        messages: Vec<PublishEntry>,
    ) -> Result<Vec<PublishOutcome>, TopicEngineError> {
        let sizes = check_publish(&messages)?;
        self.check_writable()?;

        // Route under the topics lock, then let it go before touching queues.
        let (plan, stream_plan, counters, outcomes, in_flight) = {
            let topics = self.topics.read();
            let entry = topics
                .topics
                .get(topic)
                .ok_or_else(|| topic_not_found(topic))?;
            self.check_write_alarms()?;
            // Target queue → (a subscription naming it, indexes of the messages it gets).
            let mut plan: BTreeMap<QueueName, (String, Vec<usize>)> = BTreeMap::new();
            // Target stream → indexes of the messages it gets.
            let mut stream_plan: BTreeMap<StreamName, Vec<usize>> = BTreeMap::new();
            let mut outcomes = Vec::with_capacity(messages.len());
            for (index, message) in messages.iter().enumerate() {
                let fan_out = entry
                    .topic
                    .fan_out(&message.routing_key, &message.attributes);
                if let Some(target) = fan_out.unsupported.first() {
                    return Err(TopicEngineError::TargetUnsupported {
                        kind: target.kind(),
                    });
                }
                for queue in fan_out.queues {
                    // A subscription naming the queue, for the error if the queue is gone.
                    let subscription_of = |queue: &QueueName| {
                        let target = Target::Queue(queue.clone());
                        entry
                            .topic
                            .subscriptions()
                            .find(|s| s.target == target)
                            .map_or_else(|| queue.to_string(), |s| s.name.to_string())
                    };
                    plan.entry(queue.clone())
                        .or_insert_with(|| (subscription_of(&queue), Vec::new()))
                        .1
                        .push(index);
                }
                for stream in fan_out.streams {
                    stream_plan.entry(stream).or_default().push(index);
                }
                outcomes.push(PublishOutcome {
                    id: message.id,
                    delivered_to: fan_out.n_subscriptions,
                });
            }
            (
                plan,
                stream_plan,
                entry.stats.clone(),
                outcomes,
                topics.in_flight.clone(),
            )
        };

        check_fan_out(&sizes, &plan, &stream_plan)?;
        if stream_plan.is_empty() {
            let lsn = if plan.is_empty() {
                None
            } else {
                self.deliver_copies(topic, &messages, plan, None)?
            };
            self.wait(lsn).await?;
        } else {
            self.publish_with_streams(topic, &messages, plan, stream_plan, &in_flight)
                .await?;
        }
        let n_copies: u64 = outcomes.iter().map(|o| u64::from(o.delivered_to)).sum();
        let n_unmatched = outcomes.iter().filter(|o| o.delivered_to == 0).count() as u64;
        counters
            .published
            .fetch_add(outcomes.len() as u64, Ordering::Relaxed);
        counters.delivered.fetch_add(n_copies, Ordering::Relaxed);
        counters.unmatched.fetch_add(n_unmatched, Ordering::Relaxed);
        Ok(outcomes)
    }

    /// Enqueues every copy in `plan` as one unit (see the module doc); returns the LSN to wait
    /// for.
    fn deliver_copies(
        &self,
        topic: &TopicName,
        messages: &[PublishEntry],
        plan: BTreeMap<QueueName, (String, Vec<usize>)>,
        streams: Option<(Vec<StreamCopiesV1>, &InFlightMap, &mut Option<u64>)>,
    ) -> Result<Option<u64>, TopicEngineError> {
        let registry = self.queues.read();
        let mut slots = Vec::with_capacity(plan.len());
        for (queue, (subscription, indexes)) in &plan {
            let slot =
                registry
                    .get(queue)
                    .ok_or_else(|| TopicEngineError::SubscriptionTargetMissing {
                        topic: topic.to_string(),
                        subscription: subscription.to_string(),
                        queue: queue.to_string(),
                    })?;
            let entries: Vec<SendEntry> = indexes
                .iter()
                .filter_map(|i| messages.get(*i))
                .map(|m| SendEntry {
                    id: m.id,
                    body: m.body.clone(),
                    attributes: m.attributes.clone(),
                    delay_ms: None,
                    group_id: m.group_id.clone(),
                    dedup_id: m.dedup_id.clone(),
                    notify: None,
                })
                .collect();
            slots.push((queue, slot, entries));
        }
        let now = self.clock.now();
        let mut moved_all = Vec::new();
        let result = {
            // `plan` is a BTreeMap, so the locks are taken in name order.
            let mut guards: Vec<_> = slots.iter().map(|(_, slot, _)| slot.queue.lock()).collect();
            let mut journal = self.journal();
            for queue in guards.iter_mut() {
                if queue.advance(now) {
                    let name = queue.name().to_string();
                    journal.push(|| QueueOp::Advance {
                        queue: name,
                        now: now.as_millis(),
                    });
                }
            }
            let checked = slots
                .iter()
                .zip(guards.iter())
                .try_for_each(|((_, _, entries), queue)| queue.check_send(entries));
            let result = match checked {
                Err(error) => {
                    // Only the advances happened; logging them is best effort, as for reads.
                    self.submit(journal, Access::Read)?;
                    Err(EngineError::Queue(error))
                }
                Ok(()) => {
                    let mut deliveries = Vec::with_capacity(slots.len());
                    for ((queue_name, _, entries), queue) in slots.iter().zip(guards.iter_mut()) {
                        let record = journal
                            .enabled
                            .then(|| entries.iter().map(codec::entry_to_disk).collect::<Vec<_>>());
                        let sent = queue.send(now, entries.clone());
                        assert!(
                            sent.is_ok(),
                            "check_send accepted this batch under the same lock"
                        );
                        if let Some(record) = record {
                            deliveries.push((queue_name.to_string(), record));
                        }
                    }
                    let advanced = self.submit(journal, Access::Write)?;
                    let published = self.submit_publish(topic, now, deliveries, streams)?;
                    Ok(advanced.max(published))
                }
            };
            for queue in guards.iter_mut() {
                let moved = queue.take_moved();
                if !moved.is_empty() {
                    let target = queue.config().dead_letter.as_ref().map(|d| d.queue.clone());
                    moved_all.push((queue.name().clone(), moved, target));
                }
            }
            result
        };
        for (_, slot, _) in &slots {
            slot.visible.notify_waiters();
        }
        let mut lsn = result?;
        for (source, moved, target) in moved_all {
            if let Some(slot) = registry.get(&source) {
                let moved_lsn =
                    self.deliver_dead_letters(&registry, slot, moved, target, now, Access::Write)?;
                lsn = lsn.max(moved_lsn);
            }
        }
        Ok(lsn)
    }

    /// Submits the record of a publish whose copies were just enqueued (under the target
    /// queues' locks): a `Publish`, or with stream targets a `PublishToStreams` registered as
    /// in flight in the same critical section. The LSN to wait for.
    fn submit_publish(
        &self,
        topic: &TopicName,
        now: Timestamp,
        deliveries: Vec<(String, Vec<baton_storage::records::EntryV1>)>,
        streams: Option<(Vec<StreamCopiesV1>, &InFlightMap, &mut Option<u64>)>,
    ) -> Result<Option<u64>, TopicEngineError> {
        Ok(match (&self.durable, streams) {
            (None, _) => None,
            (Some(_), None) => self.submit_topic_op(|| TopicOp::Publish {
                topic: topic.to_string(),
                now: now.as_millis(),
                deliveries,
            })?,
            (Some(_), Some((copies, in_flight, publish_lsn))) => {
                // Registered in the same critical section as the submission, so a
                // checkpoint starting after it either sees the entry or a record
                // above its start (see the module doc).
                let mut in_flight = in_flight.lock();
                let lsn = self.submit_topic_op(|| TopicOp::PublishToStreams {
                    topic: topic.to_string(),
                    now: now.as_millis(),
                    deliveries,
                    streams: copies.clone(),
                })?;
                *publish_lsn = lsn;
                if let Some(lsn) = lsn {
                    in_flight.insert(
                        lsn,
                        InFlight {
                            now: now.as_millis(),
                            copies,
                            appends: None,
                        },
                    );
                }
                lsn
            }
        })
    }

    /// A publish reaching at least one stream (see "Stream targets" in the module doc).
    async fn publish_with_streams(
        &self,
        topic: &TopicName,
        messages: &[PublishEntry],
        plan: BTreeMap<QueueName, (String, Vec<usize>)>,
        stream_plan: BTreeMap<StreamName, Vec<usize>>,
        in_flight: &InFlightMap,
    ) -> Result<(), TopicEngineError> {
        let producer = topic_producer(topic.as_str());
        let mut copies = Vec::with_capacity(stream_plan.len());
        for (stream, indexes) in stream_plan {
            let name = StreamName::new(stream.as_str())
                .map_err(|e| invalid("target.stream", e.to_string()))?;
            let records: Vec<NewRecord> = indexes
                .iter()
                .filter_map(|i| messages.get(*i))
                .map(stream_record)
                .collect();
            self.stream_check_append(&name, &records)?;
            copies.push(StreamCopiesV1 {
                stream: name.to_string(),
                producer: producer.clone(),
                records: records.iter().map(copy_to_disk).collect(),
            });
        }
        if self.durable.is_none() {
            // In memory: nothing to recover, so no producer and no main-log ordering.
            let lsn = self.deliver_copies(topic, messages, plan, None)?;
            self.wait(lsn).await?;
            for copy in copies {
                let name = StreamName::new(&copy.stream)
                    .map_err(|e| invalid("target.stream", e.to_string()))?;
                let records = copy.records.into_iter().map(copy_from_disk).collect();
                match self.stream_append_submit(&name, None, records) {
                    Ok(submitted) => self.stream_append_finish(&submitted).await?,
                    Err(StreamEngineError::Stream(StreamError::StreamNotFound { .. })) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            return Ok(());
        }
        let mut publish_lsn = None;
        let lsn = self.deliver_copies(
            topic,
            messages,
            plan,
            Some((copies, in_flight, &mut publish_lsn)),
        )?;
        self.wait(lsn).await?;
        let Some(publish_lsn) = publish_lsn else {
            return Ok(());
        };
        #[cfg(test)]
        if self
            .topics
            .read()
            .skip_stream_appends
            .load(Ordering::Relaxed)
        {
            return Err(EngineError::StorageUnavailable {
                reason: "test: stream appends skipped".to_string(),
            }
            .into());
        }
        let appends = self.submit_stream_copies(in_flight, publish_lsn)?;
        for submitted in &appends {
            self.stream_append_finish(submitted).await?;
        }
        in_flight.lock().remove(&publish_lsn);
        Ok(())
    }

    /// Submits the stream appends of every in-flight publish up to `upto` not submitted yet,
    /// in LSN order, and answers those of `upto`. Call it once `upto`'s main-log record is
    /// durable: the main log is durable as a prefix, so so are all of these; a stream never
    /// holds a copy whose main-log record a crash could take back, and each stream gets one
    /// topic's appends in sequence order.
    fn submit_stream_copies(
        &self,
        in_flight: &InFlightMap,
        upto: u64,
    ) -> Result<Vec<SubmittedAppend>, TopicEngineError> {
        let mut map = in_flight.lock();
        let mut mine: Result<_, TopicEngineError> =
            Err(TopicEngineError::Engine(EngineError::StorageUnavailable {
                reason: format!("the stream copies of publish {upto} are not registered"),
            }));
        for (lsn, entry) in map.range_mut(..=upto) {
            if let Some(appends) = &entry.appends {
                if *lsn == upto {
                    mine = Ok(appends.clone());
                }
                continue;
            }
            let mut appends = Vec::with_capacity(entry.copies.len());
            let mut failed = None;
            for copy in &entry.copies {
                let Ok(name) = StreamName::new(&copy.stream) else {
                    continue;
                };
                let producer = ProducerSeq {
                    producer: copy.producer.clone(),
                    sequence: *lsn,
                };
                let records = copy.records.iter().cloned().map(copy_from_disk).collect();
                match self.stream_append_submit(&name, Some(producer), records) {
                    Ok(submitted) => appends.push(submitted),
                    // Deleted since the check: the copy has nowhere to go.
                    Err(StreamEngineError::Stream(StreamError::StreamNotFound { .. })) => {}
                    Err(error) => {
                        failed = Some(error);
                        break;
                    }
                }
            }
            if let Some(error) = failed {
                // Left unsubmitted: checkpoints keep it, recovery appends it (a stream's
                // log failure is sticky, so no later copy overtakes it in that stream).
                if *lsn == upto {
                    mine = Err(error.into());
                }
                continue;
            }
            if *lsn == upto {
                mine = Ok(appends.clone());
            }
            entry.appends = Some(appends);
        }
        mine
    }
}

/// A publish's batch limits: at least one message, at most `PUBLISH_BATCH_MAX` and
/// `PUBLISH_BATCH_BYTES_MAX` in all. Each message's size, for the targets' own limits.
fn check_publish(messages: &[PublishEntry]) -> Result<Vec<u64>, TopicEngineError> {
    if messages.is_empty() {
        return Err(invalid(
            "messages",
            "a publish needs at least one message".to_string(),
        )
        .into());
    }
    if messages.len() > PUBLISH_BATCH_MAX {
        return Err(invalid(
            "messages",
            format!(
                "{} messages given, at most {PUBLISH_BATCH_MAX} per call",
                messages.len()
            ),
        )
        .into());
    }
    let sizes: Vec<u64> = messages
        .iter()
        .map(|m| m.body.len() as u64 + m.attributes.size_bytes())
        .collect();
    let size_bytes: u64 = sizes.iter().sum();
    if size_bytes > PUBLISH_BATCH_BYTES_MAX {
        return Err(EngineError::BatchTooLarge {
            size_bytes,
            max_bytes: PUBLISH_BATCH_BYTES_MAX,
        }
        .into());
    }
    Ok(sizes)
}

/// Refuses a fan-out over `PUBLISH_COPIES_MAX` copies or `PUBLISH_COPY_BYTES_MAX` bytes: the
/// whole fan-out is one log record.
fn check_fan_out(
    sizes: &[u64],
    plan: &BTreeMap<QueueName, (String, Vec<usize>)>,
    stream_plan: &BTreeMap<StreamName, Vec<usize>>,
) -> Result<(), TopicEngineError> {
    let indexes = plan
        .values()
        .map(|(_, indexes)| indexes)
        .chain(stream_plan.values());
    let (mut copies, mut bytes) = (0usize, 0u64);
    for index in indexes.flatten() {
        copies += 1;
        bytes += sizes.get(*index).copied().unwrap_or(0);
    }
    if copies > PUBLISH_COPIES_MAX || bytes > PUBLISH_COPY_BYTES_MAX {
        return Err(TopicEngineError::Topic(TopicError::FanOutTooLarge {
            copies,
            bytes,
        }));
    }
    Ok(())
}
