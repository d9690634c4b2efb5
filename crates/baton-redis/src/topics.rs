//! Topics on Redis: the `TopicEngine` of `RedisEngine`, with the semantics of
//! `baton_core::topic` (patterns, filter policies and fan-out decided in Rust, never in Lua),
//! for subscriptions whose target is a queue.
//!
//! # What lives where
//! - **A topic** is one hash `{<namespace>:t:<name>}:h` in the slot its name hashes to
//!   (`keys.rs`): `rec`, its record as JSON (`topic_codec.rs`: creation time and every
//!   subscription); `rev`, raised by every write; `pub`, `dlv`, `unm`, its counters (shared
//!   by every node, raised by the publish script). Every change reads the hash, applies the
//!   change to a `baton_core::topic::Topic`, and writes the result with
//!   `lua/schedule_write.lua`, a compare-and-set on `rev` (a lost one reads and decides
//!   again, at most `CAS_TRIES` times).
//! - **The index** `{<namespace>}:topics` (a sorted set by name, in the registry's slot) serves
//!   `list_topics`, the tick and `TOPICS_MAX` (admitted by `lua/lock_admit.lua` before the
//!   first write). It is a superset of the names with a record: a name stays while its topic
//!   has a record *or* a non-empty outbox, so the tick still finds copies a deleted topic
//!   left behind.
//! - **The outbox** `{<namespace>:t:<name>}:out`, in the topic's slot: one field per publish
//!   and destination queue, token `t:<topic>:<publish id>:<queue>` → that queue's copies.
//!
//! # Publish
//! 1. Route: read the topic at `rev`, fan every message out with `Topic::fan_out`, and check
//!    every target queue (it exists, and `Queue::check_send` of its copies: sizes, FIFO group
//!    and dedup ids). A refusal changes nothing.
//! 2. Record: `lua/topic_publish.lua`, one script on the topic's slot, writes every copy to
//!    the outbox if the topic is still at `rev` (else route again). This is the commit point.
//! 3. Hand over: each outbox entry is sent to its queue by `send.lua` after
//!    `lua/published.lua`, which answers a token the queue recorded already as a duplicate
//!    and records it in the same script as the send; then the entry is removed from the
//!    outbox. The publish is answered once every copy's hand-over is done.
//!
//! # Invariants
//! - **A recorded copy is delivered once.** A node that dies after step 2 leaves entries in
//!   the outbox; the next tick (of any node) or publish-time hand-over finishes them. A node
//!   that dies between a send and its outbox removal leaves the entry too, and the repeated
//!   send is answered by the queue's token as a duplicate. Tokens are remembered for seven
//!   days in the queue (`movedin`, as for moves); a queue deleted and recreated meanwhile
//!   takes the copy as new.
//! - **A publish answered `Ok` is in every queue.** A hand-over failure after step 2 answers
//!   `OutcomeUnknown`: the copies are recorded and will be delivered by a tick.
//! - **Limits of the guarantee.** `max_depth` is checked by the send at hand-over, not at
//!   step 1 (the queue's depth is in another slot): a queue full then keeps its copy in the
//!   outbox, retried by every tick, and the publish answers `OutcomeUnknown`. A queue deleted
//!   after step 2 gets nothing (its copy is dropped, logged).
//! - Stream targets are refused (`NotOnEngine`: streams are not on this engine) and URL
//!   targets as in the embedded engine (`TargetUnsupported`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use baton_core::topic::{
    Put, Subscription, Target, Topic, TopicError, PUBLISH_BATCH_BYTES_MAX, PUBLISH_BATCH_MAX,
    PUBLISH_COPIES_MAX, PUBLISH_COPY_BYTES_MAX, TOPICS_MAX,
};
use baton_core::{QueueError, QueueName, SendEntry, SubscriptionName, TopicName};
use baton_engine::{
    Engine, EngineError, PublishEntry, PublishOutcome, TopicEngine, TopicEngineError, TopicStats,
    TopicView,
};
use redis::Value as RedisValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{self, Access};
use crate::topic_codec::{topic_from_json, topic_to_json, StoredTopic};
use crate::unavailable::not_yet;
use crate::{codec, keys, scripts, HandOverFault, RedisEngine};

/// Reads and compare-and-sets one change makes before it gives up.
const CAS_TRIES: usize = 8;
/// Outbox entries read per round, and rounds per hand-over of one topic.
const HAND_OVER_BATCH: usize = 100;
const HAND_OVER_ROUNDS: usize = 10;

/// A topic's hash as read.
struct Read {
    rev: u64,
    stored: Option<StoredTopic>,
    stats: TopicStats,
}

/// One queue's copies of one publish, as the outbox holds them.
#[derive(Debug, Serialize, Deserialize)]
struct CopiesDoc {
    dest: String,
    m: Vec<CopyDoc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CopyDoc {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    g: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<String>,
    /// Body and attributes (`codec::payload_to_json`).
    p: String,
}

fn topic_not_found(name: &TopicName) -> TopicEngineError {
    TopicEngineError::TopicNotFound {
        topic: name.to_string(),
    }
}

fn contended(name: &TopicName) -> TopicEngineError {
    EngineError::StorageUnavailable {
        reason: format!("topic {name} kept changing under this write; try again"),
    }
    .into()
}

fn stopped() -> EngineError {
    EngineError::StorageUnavailable {
        reason: "the hand-over was stopped by an injected fault".to_string(),
    }
}

fn invalid(field: &str, reason: String) -> TopicEngineError {
    EngineError::Queue(QueueError::InvalidParameter {
        field: field.to_string(),
        reason,
    })
    .into()
}

fn view(name: &TopicName, read: &Read, stored: &StoredTopic) -> TopicView {
    TopicView {
        name: name.clone(),
        created_at: stored.created_at,
        subscriptions: stored.topic.subscriptions().cloned().collect(),
        stats: read.stats,
    }
}

impl RedisEngine {
    async fn read_topic(&self, name: &TopicName) -> Result<Read, EngineError> {
        let hash = keys::topic_hash(&self.namespace, name);
        let mut hmget = redis::cmd("HMGET");
        hmget
            .arg(&hash)
            .arg("rec")
            .arg("rev")
            .arg("pub")
            .arg("dlv")
            .arg("unm");
        let replies = self
            .call(self.redis.run_commands(&hash, vec![hmget], Access::Read))
            .await?;
        let fields = replies
            .first()
            .map(client::texts_with_nils)
            .unwrap_or_default();
        let number = |i: usize| -> Result<u64, EngineError> {
            match fields.get(i).cloned().flatten() {
                None => Ok(0),
                Some(text) => text
                    .parse()
                    .map_err(|e| codec::corrupt("topic counter", &e)),
            }
        };
        let stored = match fields.first().cloned().flatten() {
            Some(text) => Some(topic_from_json(name, &text)?),
            None => None,
        };
        Ok(Read {
            rev: number(1)?,
            stored,
            stats: TopicStats {
                published_total: number(2)?,
                delivered_total: number(3)?,
                unmatched_total: number(4)?,
            },
        })
    }

    /// Writes `stored` (or deletes the record) if the hash is still at `rev`; false when
    /// another write came first.
    async fn write_topic(
        &self,
        name: &TopicName,
        rev: u64,
        stored: Option<&StoredTopic>,
    ) -> Result<bool, EngineError> {
        let hash = keys::topic_hash(&self.namespace, name);
        let args = [
            rev.to_string(),
            stored.map(topic_to_json).unwrap_or_default(),
            "0".to_string(),
        ];
        let answer = self
            .call(self.redis.run_script(
                &scripts::SCHEDULE_WRITE,
                std::slice::from_ref(&hash),
                &args,
                Access::Write,
            ))
            .await?;
        let value: Value =
            serde_json::from_str(&answer).map_err(|e| codec::corrupt("topic write answer", &e))?;
        Ok(value.get("err").is_none())
    }

    async fn topic_index_command(&self, cmd: redis::Cmd) -> Result<Vec<RedisValue>, EngineError> {
        let index = keys::topic_index(&self.namespace);
        self.call(self.redis.run_commands(&index, vec![cmd], Access::Write))
            .await
    }

    /// Admits `name` to the index within `TOPICS_MAX`.
    async fn topic_admit(&self, name: &TopicName) -> Result<(), TopicEngineError> {
        let index = keys::topic_index(&self.namespace);
        let args = [name.to_string(), TOPICS_MAX.to_string()];
        let answer = self
            .call(self.redis.run_script(
                &scripts::LOCK_ADMIT,
                std::slice::from_ref(&index),
                &args,
                Access::Write,
            ))
            .await?;
        let value: Value =
            serde_json::from_str(&answer).map_err(|e| codec::corrupt("topic admit answer", &e))?;
        if value.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        Err(TopicEngineError::TooManyTopics { limit: TOPICS_MAX })
    }

    async fn outbox_len(&self, name: &TopicName) -> Result<u64, EngineError> {
        let out = keys::topic_outbox(&self.namespace, name);
        let mut hlen = redis::cmd("HLEN");
        hlen.arg(&out);
        let replies = self
            .call(self.redis.run_commands(&out, vec![hlen], Access::Read))
            .await?;
        Ok(match replies.first() {
            Some(RedisValue::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        })
    }

    /// Takes `name` out of the index unless it has a record or outbox entries: removed first,
    /// then both read and the name put back if either is there (a create racing this).
    async fn topic_forget(&self, name: &TopicName) -> Result<(), EngineError> {
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(keys::topic_index(&self.namespace))
            .arg(name.as_str());
        self.topic_index_command(zrem).await?;
        if self.read_topic(name).await?.stored.is_some() || self.outbox_len(name).await? > 0 {
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(keys::topic_index(&self.namespace))
                .arg(0)
                .arg(name.as_str());
            self.topic_index_command(zadd).await?;
        }
        Ok(())
    }

    async fn topic_names(&self) -> Result<Vec<TopicName>, EngineError> {
        let mut range = redis::cmd("ZRANGE");
        range.arg(keys::topic_index(&self.namespace)).arg(0).arg(-1);
        let index = keys::topic_index(&self.namespace);
        let replies = self
            .call(self.redis.run_commands(&index, vec![range], Access::Read))
            .await?;
        let names = replies.first().map(client::texts).unwrap_or_default();
        Ok(names
            .iter()
            .filter_map(|n| TopicName::new(n).ok())
            .collect())
    }

    /// Hands over what every topic's outbox holds (the tick); failures stay for the next.
    pub(crate) async fn tick_topics(&self) {
        let names = match self.topic_names().await {
            Ok(names) => names,
            Err(error) => {
                tracing::debug!(%error, "tick: cannot list topics");
                return;
            }
        };
        for name in names {
            match self.hand_over_topic(&name, None).await {
                Ok(()) => {
                    if let Ok(read) = self.read_topic(&name).await {
                        if read.stored.is_none() {
                            let _ = self.topic_forget(&name).await;
                        }
                    }
                }
                Err(error) => {
                    tracing::debug!(topic = %name, %error, "topic hand-over left for the next tick")
                }
            }
        }
    }

    /// Hands over the outbox entries of topic `name` (only `tokens`, when given).
    async fn hand_over_topic(
        &self,
        name: &TopicName,
        tokens: Option<&[String]>,
    ) -> Result<(), EngineError> {
        let out = keys::topic_outbox(&self.namespace, name);
        if let Some(tokens) = tokens {
            let mut hmget = redis::cmd("HMGET");
            hmget.arg(&out).arg(tokens);
            let replies = self
                .call(self.redis.run_commands(&out, vec![hmget], Access::Read))
                .await?;
            let entries = replies
                .first()
                .map(client::texts_with_nils)
                .unwrap_or_default();
            for (token, entry) in tokens.iter().zip(entries) {
                if let Some(entry) = entry {
                    self.hand_over_copies(&out, token, &entry).await?;
                }
            }
            return Ok(());
        }
        for _ in 0..HAND_OVER_ROUNDS {
            let mut hscan = redis::cmd("HSCAN");
            hscan.arg(&out).arg(0).arg("COUNT").arg(HAND_OVER_BATCH);
            let replies = self
                .call(self.redis.run_commands(&out, vec![hscan], Access::Read))
                .await?;
            let pairs = match replies.first() {
                Some(RedisValue::Array(parts)) => {
                    parts.get(1).map(client::texts).unwrap_or_default()
                }
                _ => Vec::new(),
            };
            if pairs.is_empty() {
                return Ok(());
            }
            for pair in pairs.chunks(2) {
                if let [token, entry] = pair {
                    self.hand_over_copies(&out, token, entry).await?;
                }
            }
        }
        Ok(())
    }

    /// Sends one outbox entry to its queue under its token, then removes it.
    async fn hand_over_copies(
        &self,
        out: &str,
        token: &str,
        entry: &str,
    ) -> Result<(), EngineError> {
        if *self.fault.read() == Some(HandOverFault::BeforeAccept) {
            return Err(stopped());
        }
        let doc: CopiesDoc =
            serde_json::from_str(entry).map_err(|e| codec::corrupt("topic outbox entry", &e))?;
        let dest =
            QueueName::new(&doc.dest).map_err(|e| codec::corrupt("topic outbox entry", &e))?;
        let mut entries = Vec::with_capacity(doc.m.len());
        for copy in doc.m {
            let (body, attributes) = codec::payload_from_json(&copy.p)?;
            entries.push(SendEntry {
                id: codec::id_from_text(&copy.id)?,
                body,
                attributes,
                delay_ms: None,
                group_id: copy.g,
                dedup_id: copy.d,
                notify: None,
            });
        }
        match self.send_published(&dest, entries, token).await {
            Ok(()) => {}
            Err(EngineError::QueueNotFound { .. }) => {
                tracing::error!(queue = %dest, token, "a topic copy's queue is gone; the copy is dropped");
            }
            Err(error) => return Err(error),
        }
        if *self.fault.read() == Some(HandOverFault::AfterAccept) {
            return Err(stopped());
        }
        let mut hdel = redis::cmd("HDEL");
        hdel.arg(out).arg(token);
        self.call(self.redis.run_commands(out, vec![hdel], Access::Write))
            .await
            .map(drop)
    }

    /// Routes `messages` through `stored` and checks every target queue (step 1).
    async fn route(
        &self,
        name: &TopicName,
        stored: &StoredTopic,
        messages: &[PublishEntry],
        sizes: &[u64],
    ) -> Result<(BTreeMap<QueueName, Vec<usize>>, Vec<PublishOutcome>), TopicEngineError> {
        let mut plan: BTreeMap<QueueName, Vec<usize>> = BTreeMap::new();
        let mut outcomes = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            let fan_out = stored
                .topic
                .fan_out(&message.routing_key, &message.attributes);
            if let Some(target) = fan_out.unsupported.first() {
                return Err(TopicEngineError::TargetUnsupported {
                    kind: target.kind(),
                });
            }
            if !fan_out.streams.is_empty() {
                return Err(not_yet("streams").into());
            }
            for queue in fan_out.queues {
                plan.entry(queue).or_default().push(index);
            }
            outcomes.push(PublishOutcome {
                id: message.id,
                delivered_to: fan_out.n_subscriptions,
            });
        }
        let (mut copies, mut bytes) = (0usize, 0u64);
        for index in plan.values().flatten() {
            copies += 1;
            bytes += sizes.get(*index).copied().unwrap_or(0);
        }
        if copies > PUBLISH_COPIES_MAX || bytes > PUBLISH_COPY_BYTES_MAX {
            return Err(TopicError::FanOutTooLarge { copies, bytes }.into());
        }
        for (queue, indexes) in &plan {
            let info = match self.info(queue).await {
                Err(EngineError::QueueNotFound { .. }) => {
                    let target = Target::Queue(queue.clone());
                    let subscription = stored
                        .topic
                        .subscriptions()
                        .find(|s| s.target == target)
                        .map_or_else(|| queue.to_string(), |s| s.name.to_string());
                    return Err(TopicEngineError::SubscriptionTargetMissing {
                        topic: name.to_string(),
                        subscription,
                        queue: queue.to_string(),
                    });
                }
                other => other?,
            };
            let entries: Vec<SendEntry> = indexes
                .iter()
                .filter_map(|i| messages.get(*i))
                .map(send_entry)
                .collect();
            info.checker
                .check_send(&entries)
                .map_err(EngineError::from)?;
        }
        Ok((plan, outcomes))
    }

    async fn publish_on(
        &self,
        name: &TopicName,
        messages: Vec<PublishEntry>,
    ) -> Result<Vec<PublishOutcome>, TopicEngineError> {
        let sizes = check_publish(&messages)?;
        let publish_id = codec::id_to_text(baton_engine::new_message_id());
        for _ in 0..CAS_TRIES {
            let read = self.read_topic(name).await?;
            let Some(stored) = &read.stored else {
                return Err(topic_not_found(name));
            };
            let (plan, outcomes) = self.route(name, stored, &messages, &sizes).await?;
            let n_copies: usize = plan.values().map(Vec::len).sum();
            let n_unmatched = outcomes.iter().filter(|o| o.delivered_to == 0).count();
            let mut tokens = Vec::with_capacity(plan.len());
            let mut args = vec![
                read.rev.to_string(),
                messages.len().to_string(),
                n_copies.to_string(),
                n_unmatched.to_string(),
                plan.len().to_string(),
            ];
            for (queue, indexes) in &plan {
                let doc = CopiesDoc {
                    dest: queue.to_string(),
                    m: indexes
                        .iter()
                        .filter_map(|i| messages.get(*i))
                        .map(|m| CopyDoc {
                            id: codec::id_to_text(m.id),
                            g: m.group_id.clone(),
                            d: m.dedup_id.clone(),
                            p: codec::payload_to_json(&m.body, &m.attributes),
                        })
                        .collect(),
                };
                let token = format!("t:{name}:{publish_id}:{queue}");
                args.push(token.clone());
                args.push(serde_json::to_string(&doc).unwrap_or_default());
                tokens.push(token);
            }
            let script_keys = [
                keys::topic_hash(&self.namespace, name),
                keys::topic_outbox(&self.namespace, name),
            ];
            let answer = self
                .call(self.redis.run_script(
                    &scripts::TOPIC_PUBLISH,
                    &script_keys,
                    &args,
                    Access::Write,
                ))
                .await?;
            let value: Value = serde_json::from_str(&answer)
                .map_err(|e| codec::corrupt("topic publish answer", &e))?;
            match value.get("err").and_then(Value::as_str) {
                Some("CONFLICT") => continue,
                Some("NOT_FOUND") => return Err(topic_not_found(name)),
                Some(other) => {
                    return Err(EngineError::StorageUnavailable {
                        reason: format!("the publish script refused with an unknown code {other}"),
                    }
                    .into())
                }
                None => {}
            }
            if let Err(error) = self.hand_over_topic(name, Some(&tokens)).await {
                return Err(EngineError::OutcomeUnknown {
                    reason: format!(
                        "the publish is recorded but not every copy was handed over yet ({error}); a tick finishes it"
                    ),
                }
                .into());
            }
            return Ok(outcomes);
        }
        Err(contended(name))
    }
}

fn send_entry(message: &PublishEntry) -> SendEntry {
    SendEntry {
        id: message.id,
        body: message.body.clone(),
        attributes: message.attributes.clone(),
        delay_ms: None,
        group_id: message.group_id.clone(),
        dedup_id: message.dedup_id.clone(),
        notify: None,
    }
}

/// A publish's batch limits (as in the embedded engine): at least one message, at most
/// `PUBLISH_BATCH_MAX` and `PUBLISH_BATCH_BYTES_MAX` in all. Each message's size.
fn check_publish(messages: &[PublishEntry]) -> Result<Vec<u64>, TopicEngineError> {
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

#[async_trait]
impl TopicEngine for RedisEngine {
    async fn create_topic(&self, name: TopicName) -> Result<(TopicView, bool), TopicEngineError> {
        self.topic_admit(&name).await?;
        for _ in 0..CAS_TRIES {
            let read = self.read_topic(&name).await?;
            if let Some(stored) = &read.stored {
                return Ok((view(&name, &read, stored), false));
            }
            let stored = StoredTopic {
                created_at: self.now(),
                topic: Topic::new(name.clone()),
            };
            if self.write_topic(&name, read.rev, Some(&stored)).await? {
                return Ok((view(&name, &read, &stored), true));
            }
        }
        Err(contended(&name))
    }

    async fn delete_topic(&self, name: &TopicName) -> Result<(), TopicEngineError> {
        for _ in 0..CAS_TRIES {
            let read = self.read_topic(name).await?;
            if read.stored.is_none() {
                return Err(topic_not_found(name));
            }
            if self.write_topic(name, read.rev, None).await? {
                // Copies recorded before the delete are still delivered: now, or by a tick
                // (the index keeps the name while its outbox has entries).
                if let Err(error) = self.hand_over_topic(name, None).await {
                    tracing::debug!(topic = %name, %error, "hand-over left for the next tick");
                }
                self.topic_forget(name).await?;
                return Ok(());
            }
        }
        Err(contended(name))
    }

    async fn get_topic(&self, name: &TopicName) -> Result<TopicView, TopicEngineError> {
        let read = self.read_topic(name).await?;
        match &read.stored {
            Some(stored) => Ok(view(name, &read, stored)),
            None => Err(topic_not_found(name)),
        }
    }

    async fn list_topics(&self) -> Result<Vec<TopicView>, TopicEngineError> {
        let mut views = Vec::new();
        for name in self.topic_names().await? {
            let read = self.read_topic(&name).await?;
            if let Some(stored) = &read.stored {
                views.push(view(&name, &read, stored));
            }
        }
        Ok(views)
    }

    async fn put_subscription(
        &self,
        topic: &TopicName,
        subscription: Subscription,
    ) -> Result<(Subscription, Put), TopicEngineError> {
        match &subscription.target {
            Target::Queue(queue) => {
                self.info(queue).await?;
            }
            Target::Stream(_) => return Err(not_yet("streams").into()),
            other => return Err(TopicEngineError::TargetUnsupported { kind: other.kind() }),
        }
        for _ in 0..CAS_TRIES {
            let read = self.read_topic(topic).await?;
            let Some(mut stored) = read.stored else {
                return Err(topic_not_found(topic));
            };
            let put = stored.topic.put_subscription(subscription.clone())?;
            if put == Put::Existing {
                return Ok((subscription, put));
            }
            if self.write_topic(topic, read.rev, Some(&stored)).await? {
                return Ok((subscription, put));
            }
        }
        Err(contended(topic))
    }

    async fn delete_subscription(
        &self,
        topic: &TopicName,
        name: &SubscriptionName,
    ) -> Result<(), TopicEngineError> {
        for _ in 0..CAS_TRIES {
            let read = self.read_topic(topic).await?;
            let Some(mut stored) = read.stored else {
                return Err(topic_not_found(topic));
            };
            if stored.topic.remove_subscription(name).is_none() {
                return Err(TopicEngineError::SubscriptionNotFound {
                    topic: topic.to_string(),
                    subscription: name.to_string(),
                });
            }
            if self.write_topic(topic, read.rev, Some(&stored)).await? {
                return Ok(());
            }
        }
        Err(contended(topic))
    }

    async fn publish(
        &self,
        topic: &TopicName,
        messages: Vec<PublishEntry>,
    ) -> Result<Vec<PublishOutcome>, TopicEngineError> {
        self.publish_on(topic, messages).await
    }
}
