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

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use baton_core::topic::{
    Put, Subscription, Target, Topic, PUBLISH_BATCH_BYTES_MAX, PUBLISH_BATCH_MAX, TOPICS_MAX,
};
use baton_core::{QueueError, QueueName, SendEntry, Timestamp};
use baton_storage::records::{self, QueueOp};
use baton_storage::topic_records::{TopicOp, KIND_TOPIC_OP};

use super::{Access, LocalEngine};
use crate::durable::{codec, topics as disk, Durable};
use crate::{EngineError, PublishEntry, PublishOutcome, TopicStats, TopicView};

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    delivered: AtomicU64,
    unmatched: AtomicU64,
}

struct TopicEntry {
    topic: Topic,
    created_at: Timestamp,
    stats: Arc<Counters>,
}

#[derive(Default)]
pub(crate) struct TopicRegistry {
    topics: BTreeMap<QueueName, TopicEntry>,
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

fn topic_not_found(name: &QueueName) -> EngineError {
    EngineError::TopicNotFound {
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

    /// Refuses writes once the log has failed, before anything changes in memory.
    fn check_writable(&self) -> Result<(), EngineError> {
        self.check_ready()?;
        if let Some(reason) = self.durable.as_ref().and_then(Durable::failure) {
            return Err(EngineError::StorageUnavailable { reason });
        }
        Ok(())
    }

    /// Submits a topic record (when durable); call it under the lock that orders such records.
    fn submit_topic_op(&self, op: impl FnOnce() -> TopicOp) -> Result<Option<u64>, EngineError> {
        match &self.durable {
            Some(durable) => durable
                .submit_frame(KIND_TOPIC_OP, &records::encode(&op()))
                .map(Some),
            None => Ok(None),
        }
    }

    pub(super) async fn create_topic_impl(
        &self,
        name: QueueName,
    ) -> Result<(TopicView, bool), EngineError> {
        self.check_writable()?;
        let (view, lsn) = {
            let mut topics = self.topics.write();
            if let Some(entry) = topics.topics.get(&name) {
                return Ok((entry.view(), false));
            }
            if topics.topics.len() >= TOPICS_MAX {
                return Err(EngineError::TooManyTopics { limit: TOPICS_MAX });
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

    pub(super) async fn delete_topic_impl(&self, name: &QueueName) -> Result<(), EngineError> {
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
        self.wait(lsn).await
    }

    pub(super) fn get_topic_impl(&self, name: &QueueName) -> Result<TopicView, EngineError> {
        self.check_ready()?;
        let topics = self.topics.read();
        topics
            .topics
            .get(name)
            .map(TopicEntry::view)
            .ok_or_else(|| topic_not_found(name))
    }

    pub(super) fn list_topics_impl(&self) -> Result<Vec<TopicView>, EngineError> {
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
        topic: &QueueName,
        subscription: Subscription,
    ) -> Result<(Subscription, Put), EngineError> {
        self.check_writable()?;
        match &subscription.target {
            Target::Queue(queue) => {
                if !self.queues.read().contains_key(queue) {
                    return Err(EngineError::QueueNotFound {
                        queue: queue.to_string(),
                    });
                }
            }
            other => return Err(EngineError::TargetUnsupported { kind: other.kind() }),
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
        topic: &QueueName,
        name: &QueueName,
    ) -> Result<(), EngineError> {
        self.check_writable()?;
        let lsn = {
            let mut topics = self.topics.write();
            let entry = topics
                .topics
                .get_mut(topic)
                .ok_or_else(|| topic_not_found(topic))?;
            if entry.topic.subscription(name).is_none() {
                return Err(EngineError::SubscriptionNotFound {
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
        self.wait(lsn).await
    }

    pub(super) async fn publish_impl(
        &self,
        topic: &QueueName,
        messages: Vec<PublishEntry>,
    ) -> Result<Vec<PublishOutcome>, EngineError> {
        if messages.is_empty() {
            return Err(invalid(
                "messages",
                "a publish needs at least one message".to_string(),
            ));
        }
        if messages.len() > PUBLISH_BATCH_MAX {
            return Err(invalid(
                "messages",
                format!(
                    "{} messages given, at most {PUBLISH_BATCH_MAX} per call",
                    messages.len()
                ),
            ));
        }
        let size_bytes: u64 = messages
            .iter()
            .map(|m| m.body.len() as u64 + m.attributes.size_bytes())
            .sum();
        if size_bytes > PUBLISH_BATCH_BYTES_MAX {
            return Err(EngineError::BatchTooLarge {
                size_bytes,
                max_bytes: PUBLISH_BATCH_BYTES_MAX,
            });
        }
        self.check_writable()?;

        // Route under the topics lock, then let it go before touching queues.
        let (plan, counters, outcomes) = {
            let topics = self.topics.read();
            let entry = topics
                .topics
                .get(topic)
                .ok_or_else(|| topic_not_found(topic))?;
            // Target queue → (a subscription naming it, indexes of the messages it gets).
            let mut plan: BTreeMap<QueueName, (QueueName, Vec<usize>)> = BTreeMap::new();
            let mut outcomes = Vec::with_capacity(messages.len());
            for (index, message) in messages.iter().enumerate() {
                let fan_out = entry
                    .topic
                    .fan_out(&message.routing_key, &message.attributes);
                if let Some(target) = fan_out.unsupported.first() {
                    return Err(EngineError::TargetUnsupported {
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
                            .map_or_else(|| queue.clone(), |s| s.name.clone())
                    };
                    plan.entry(queue.clone())
                        .or_insert_with(|| (subscription_of(&queue), Vec::new()))
                        .1
                        .push(index);
                }
                outcomes.push(PublishOutcome {
                    id: message.id,
                    delivered_to: fan_out.n_subscriptions,
                });
            }
            (plan, entry.stats.clone(), outcomes)
        };

        let lsn = if plan.is_empty() {
            None
        } else {
            self.deliver_copies(topic, &messages, plan)?
        };
        self.wait(lsn).await?;
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
        topic: &QueueName,
        messages: &[PublishEntry],
        plan: BTreeMap<QueueName, (QueueName, Vec<usize>)>,
    ) -> Result<Option<u64>, EngineError> {
        let registry = self.queues.read();
        let mut slots = Vec::with_capacity(plan.len());
        for (queue, (subscription, indexes)) in &plan {
            let slot =
                registry
                    .get(queue)
                    .ok_or_else(|| EngineError::SubscriptionTargetMissing {
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
                    let published = if self.durable.is_some() {
                        self.submit_topic_op(|| TopicOp::Publish {
                            topic: topic.to_string(),
                            now: now.as_millis(),
                            deliveries,
                        })?
                    } else {
                        None
                    };
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
}
