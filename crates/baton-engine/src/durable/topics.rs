//! Durability of topics: the domain ↔ record conversions of subscriptions, and the replay of
//! topic records and topic checkpoint parts.
//!
//! # Which records apply
//! Topic definitions (create, delete, subscriptions) are covered by the checkpoint's
//! `Topics` part at its `covered_lsn`: such a record applies when its LSN is above it (or
//! above the checkpoint's `start_lsn` when there is no `Topics` part). A `Publish` record
//! touches queues only, so it follows the queues' rule: it applies to each target queue whose
//! snapshot does not cover its LSN. Because the engine submits it while holding every target
//! queue's lock, each queue's snapshot holds either all of that queue's copies or none.

use std::collections::BTreeMap;

use baton_core::topic::{
    Condition, FilterPolicy, Literal, NumericOp, Pattern, Subscription, Target, Topic,
};
use baton_core::{Timestamp, TopicName};
use baton_storage::records;
use baton_storage::topic_records::{
    ConditionV1, LiteralV1, StreamCopiesV1, SubscriptionV1, TargetV1, TopicCheckpointPart, TopicOp,
    KIND_TOPIC_CHECKPOINT, KIND_TOPIC_OP,
};

use super::codec::{self, DecodeResult};
use super::replay::ReplayState;

/// Topics as replay rebuilds them: name → (topic, created_at).
#[derive(Default)]
pub(crate) struct TopicReplay {
    pub topics: BTreeMap<TopicName, (Topic, Timestamp)>,
    /// Topic definition records at or below this LSN are in the checkpoint.
    covered_lsn: Option<u64>,
    /// Publishes whose stream copies recovery appends again (idempotently): LSN → (now,
    /// copies), from `PublishToStreams` records and the checkpoint's in-flight part.
    pub stream_copies: BTreeMap<u64, (u64, Vec<StreamCopiesV1>)>,
}

pub(crate) fn subscription_to_disk(subscription: &Subscription) -> SubscriptionV1 {
    SubscriptionV1 {
        name: subscription.name.to_string(),
        target: match &subscription.target {
            Target::Queue(queue) => TargetV1::Queue(queue.to_string()),
            Target::Stream(stream) => TargetV1::Stream(stream.to_string()),
            Target::Url { url, headers } => TargetV1::Url {
                url: url.clone(),
                headers: headers.clone().into_iter().collect(),
            },
        },
        pattern: subscription
            .pattern
            .as_ref()
            .map(|p| p.as_str().to_string()),
        filter: subscription.filter.as_ref().map(|filter| {
            filter
                .conditions()
                .iter()
                .map(|(name, list)| (name.clone(), list.iter().map(condition_to_disk).collect()))
                .collect()
        }),
    }
}

fn literal_to_disk(literal: &Literal) -> LiteralV1 {
    match literal {
        Literal::Text(text) => LiteralV1::Text(text.clone()),
        Literal::Number(number) => LiteralV1::Number(*number),
    }
}

fn condition_to_disk(condition: &Condition) -> ConditionV1 {
    match condition {
        Condition::Exact(text) => ConditionV1::Exact(text.clone()),
        Condition::ExactNumber(number) => ConditionV1::ExactNumber(*number),
        Condition::Prefix(text) => ConditionV1::Prefix(text.clone()),
        Condition::AnythingBut(values) => {
            ConditionV1::AnythingBut(values.iter().map(literal_to_disk).collect())
        }
        Condition::AnythingButPrefix(text) => ConditionV1::AnythingButPrefix(text.clone()),
        Condition::Numeric(bounds) => ConditionV1::Numeric(
            bounds
                .iter()
                .map(|(op, bound)| (op.as_str().to_string(), *bound))
                .collect(),
        ),
        Condition::Exists(present) => ConditionV1::Exists(*present),
    }
}

fn condition_from_disk(condition: ConditionV1) -> DecodeResult<Condition> {
    Ok(match condition {
        ConditionV1::Exact(text) => Condition::Exact(text),
        ConditionV1::ExactNumber(number) => Condition::ExactNumber(number),
        ConditionV1::Prefix(text) => Condition::Prefix(text),
        ConditionV1::AnythingBut(values) => Condition::AnythingBut(
            values
                .into_iter()
                .map(|v| match v {
                    LiteralV1::Text(text) => Literal::Text(text),
                    LiteralV1::Number(number) => Literal::Number(number),
                })
                .collect(),
        ),
        ConditionV1::AnythingButPrefix(text) => Condition::AnythingButPrefix(text),
        ConditionV1::Numeric(bounds) => Condition::Numeric(
            bounds
                .into_iter()
                .map(|(op, bound)| {
                    NumericOp::parse(&op)
                        .map(|op| (op, bound))
                        .ok_or_else(|| format!("unknown numeric operator {op:?}"))
                })
                .collect::<DecodeResult<_>>()?,
        ),
        ConditionV1::Exists(present) => Condition::Exists(present),
    })
}

pub(crate) fn subscription_from_disk(subscription: SubscriptionV1) -> DecodeResult<Subscription> {
    let target = match subscription.target {
        TargetV1::Queue(queue) => Target::Queue(codec::name(&queue)?),
        TargetV1::Stream(stream) => Target::Stream(codec::stream_name(&stream)?),
        TargetV1::Url { url, headers } => Target::Url {
            url,
            headers: headers.into_iter().collect(),
        },
    };
    let pattern = subscription
        .pattern
        .map(|p| Pattern::new(&p))
        .transpose()
        .map_err(|e| e.to_string())?;
    let filter = match subscription.filter {
        None => None,
        Some(pairs) => {
            let mut conditions = BTreeMap::new();
            for (name, list) in pairs {
                let list = list
                    .into_iter()
                    .map(condition_from_disk)
                    .collect::<DecodeResult<Vec<_>>>()?;
                conditions.insert(name, list);
            }
            Some(FilterPolicy::new(conditions).map_err(|e| e.to_string())?)
        }
    };
    Ok(Subscription {
        name: codec::subscription_name(&subscription.name)?,
        target,
        pattern,
        filter,
    })
}

/// The checkpoint part holding every topic, as of `covered_lsn`.
pub(crate) fn checkpoint_part<'t>(
    topics: impl Iterator<Item = (&'t Topic, Timestamp)>,
    covered_lsn: u64,
) -> (u8, Vec<u8>) {
    let topics = topics
        .map(|(topic, created_at)| {
            (
                topic.name().to_string(),
                created_at.as_millis(),
                topic.subscriptions().map(subscription_to_disk).collect(),
            )
        })
        .collect();
    (
        KIND_TOPIC_CHECKPOINT,
        records::encode(&TopicCheckpointPart::Topics {
            covered_lsn,
            topics,
        }),
    )
}

pub(crate) fn apply_checkpoint(state: &mut ReplayState, payload: &[u8]) -> DecodeResult<()> {
    let part: TopicCheckpointPart =
        records::decode(KIND_TOPIC_CHECKPOINT, payload).map_err(|e| e.to_string())?;
    match part {
        TopicCheckpointPart::Topics {
            covered_lsn,
            topics,
        } => {
            state.topics.covered_lsn = Some(covered_lsn);
            state.topics.topics.clear();
            for (name, created_at, subscriptions) in topics {
                let name = codec::topic_name(&name)?;
                let mut topic = Topic::new(name.clone());
                for subscription in subscriptions {
                    topic
                        .put_subscription(subscription_from_disk(subscription)?)
                        .map_err(|e| e.to_string())?;
                }
                state
                    .topics
                    .topics
                    .insert(name, (topic, Timestamp::from_millis(created_at)));
            }
        }
        TopicCheckpointPart::StreamCopiesInFlight { copies } => {
            for (lsn, now, streams) in copies {
                state.topics.stream_copies.insert(lsn, (now, streams));
            }
        }
    }
    Ok(())
}

pub(crate) fn apply_record(state: &mut ReplayState, lsn: u64, payload: &[u8]) -> DecodeResult<()> {
    let op: TopicOp = records::decode(KIND_TOPIC_OP, payload).map_err(|e| e.to_string())?;
    let definition_applies = lsn > state.topics.covered_lsn.unwrap_or(state.start_lsn());
    let topics = &mut state.topics.topics;
    match op {
        TopicOp::Publish {
            now, deliveries, ..
        } => {
            for (queue, entries) in deliveries {
                let queue = codec::name(&queue)?;
                let entries = entries
                    .into_iter()
                    .map(codec::entry_from_disk)
                    .collect::<DecodeResult<Vec<_>>>()?;
                state.apply_send("publish", lsn, &queue, Timestamp::from_millis(now), entries);
            }
        }
        TopicOp::PublishToStreams {
            now,
            deliveries,
            streams,
            ..
        } => {
            for (queue, entries) in deliveries {
                let queue = codec::name(&queue)?;
                let entries = entries
                    .into_iter()
                    .map(codec::entry_from_disk)
                    .collect::<DecodeResult<Vec<_>>>()?;
                state.apply_send("publish", lsn, &queue, Timestamp::from_millis(now), entries);
            }
            state.topics.stream_copies.insert(lsn, (now, streams));
        }
        _ if !definition_applies => {}
        TopicOp::CreateTopic { name, now } => {
            let name = codec::topic_name(&name)?;
            topics
                .entry(name.clone())
                .or_insert_with(|| (Topic::new(name), Timestamp::from_millis(now)));
        }
        TopicOp::DeleteTopic { name, .. } => {
            topics.remove(&codec::topic_name(&name)?);
        }
        TopicOp::PutSubscription {
            topic,
            subscription,
            ..
        } => {
            if let Some((topic, _)) = topics.get_mut(&codec::topic_name(&topic)?) {
                let _ = topic.put_subscription(subscription_from_disk(subscription)?);
            }
        }
        TopicOp::DeleteSubscription { topic, name, .. } => {
            if let Some((topic, _)) = topics.get_mut(&codec::topic_name(&topic)?) {
                topic.remove_subscription(&codec::subscription_name(&name)?);
            }
        }
    }
    Ok(())
}
