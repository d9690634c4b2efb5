//! Topics: publish/subscribe fan-out with routing, as pure data and rules.
//!
//! A [`Topic`] holds named [`Subscription`]s. Each subscription has a [`Target`] (a queue, a
//! stream, or an HTTP endpoint once push delivery of topics exists) and an optional filter: a routing-key
//! [`Pattern`] and/or an attribute [`FilterPolicy`]. [`Topic::route`] answers which
//! subscriptions a published message reaches; delivering it (atomically, durably) is the
//! engine's job. A subscription without pattern and filter receives every message.
//!
//! Invariants: names, patterns and filters are validated at construction; a topic holds at
//! most [`SUBSCRIPTIONS_PER_TOPIC_MAX`] subscriptions; re-putting a subscription with identical
//! settings is a no-op, with different settings a conflict (never a silent change).

pub mod filter;
pub mod pattern;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

pub use filter::{Condition, FilterPolicy, Literal, NumericOp};
pub use pattern::{Pattern, RoutingKey};

use crate::attributes::MessageAttributes;
use crate::name::{QueueName, SubscriptionName, TopicName};
use crate::stream::StreamName;

/// Subscriptions one topic may hold.
pub const SUBSCRIPTIONS_PER_TOPIC_MAX: usize = 100;
/// Messages in one publish call (the one write batch limit).
pub const PUBLISH_BATCH_MAX: usize = crate::limits::WRITE_BATCH_MAX;
/// Sum of body and attribute bytes over one publish call (before fan-out).
pub const PUBLISH_BATCH_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Copies one publish call may make (each message times the targets it reaches). The whole
/// fan-out is one log record, so it is bounded on its own: 50,000 is what the largest
/// publish made when a publish took at most 500 messages (500 × 100 subscriptions).
pub const PUBLISH_COPIES_MAX: usize = 50_000;
/// Body and attribute bytes over all copies of one publish call: keeps the fan-out's log
/// record well below the storage's largest frame (256 MiB).
pub const PUBLISH_COPY_BYTES_MAX: u64 = 128 * 1024 * 1024;
/// Topics one engine may hold.
pub const TOPICS_MAX: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("invalid routing key {key:?}: {reason}")]
    InvalidRoutingKey { key: String, reason: String },
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    #[error("invalid filter: {reason}")]
    InvalidFilter { reason: String },
    #[error("subscription {subscription} already exists with different settings: {differences}")]
    SubscriptionExists {
        subscription: String,
        differences: String,
    },
    #[error("topic {topic} already has {limit} subscriptions, its limit")]
    TooManySubscriptions { topic: String, limit: usize },
    #[error("the publish would make {copies} copies of {bytes} bytes in all (each message once per target it reaches); at most {PUBLISH_COPIES_MAX} copies and {PUBLISH_COPY_BYTES_MAX} bytes per call: publish fewer messages per call")]
    FanOutTooLarge { copies: usize, bytes: u64 },
}

/// Where a subscription delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Queue(QueueName),
    Stream(StreamName),
    Url {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

impl Target {
    /// The kind's name as the API spells it: "queue", "stream", "url".
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Queue(_) => "queue",
            Target::Stream(_) => "stream",
            Target::Url { .. } => "url",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub name: SubscriptionName,
    pub target: Target,
    pub pattern: Option<Pattern>,
    pub filter: Option<FilterPolicy>,
}

impl Subscription {
    /// Whether a message with this key and these attributes reaches the subscription.
    pub fn matches(&self, key: &RoutingKey, attributes: &MessageAttributes) -> bool {
        self.pattern.as_ref().is_none_or(|p| p.matches(key))
            && self.filter.as_ref().is_none_or(|f| f.matches(attributes))
    }

    fn differences(&self, other: &Subscription) -> Vec<String> {
        let mut out = Vec::new();
        if self.target != other.target {
            out.push(format!(
                "target is {:?}, requested {:?}",
                self.target, other.target
            ));
        }
        if self.pattern != other.pattern {
            out.push(format!(
                "pattern is {:?}, requested {:?}",
                self.pattern.as_ref().map(Pattern::as_str),
                other.pattern.as_ref().map(Pattern::as_str)
            ));
        }
        if self.filter != other.filter {
            out.push("filter differs".to_string());
        }
        out
    }
}

/// Whether `put_subscription` added a subscription or found an identical one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    New,
    Existing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    name: TopicName,
    subscriptions: BTreeMap<SubscriptionName, Subscription>,
}

impl Topic {
    pub fn new(name: TopicName) -> Self {
        Topic {
            name,
            subscriptions: BTreeMap::new(),
        }
    }

    pub fn name(&self) -> &TopicName {
        &self.name
    }

    pub fn subscriptions(&self) -> impl Iterator<Item = &Subscription> {
        self.subscriptions.values()
    }

    pub fn subscription(&self, name: &SubscriptionName) -> Option<&Subscription> {
        self.subscriptions.get(name)
    }

    /// Adds `subscription`, or finds an identical one under its name.
    ///
    /// # Errors
    /// `SubscriptionExists` when the name is taken with other settings; `TooManySubscriptions`
    /// at the limit. Neither changes anything.
    pub fn put_subscription(&mut self, subscription: Subscription) -> Result<Put, TopicError> {
        if let Some(existing) = self.subscriptions.get(&subscription.name) {
            let differences = existing.differences(&subscription);
            if differences.is_empty() {
                return Ok(Put::Existing);
            }
            return Err(TopicError::SubscriptionExists {
                subscription: subscription.name.to_string(),
                differences: differences.join("; "),
            });
        }
        if self.subscriptions.len() >= SUBSCRIPTIONS_PER_TOPIC_MAX {
            return Err(TopicError::TooManySubscriptions {
                topic: self.name.to_string(),
                limit: SUBSCRIPTIONS_PER_TOPIC_MAX,
            });
        }
        self.subscriptions
            .insert(subscription.name.clone(), subscription);
        Ok(Put::New)
    }

    /// Removes a subscription; returns it if it existed.
    pub fn remove_subscription(&mut self, name: &SubscriptionName) -> Option<Subscription> {
        self.subscriptions.remove(name)
    }

    /// The subscriptions a message reaches, in name order.
    pub fn route<'a>(
        &'a self,
        key: &'a RoutingKey,
        attributes: &'a MessageAttributes,
    ) -> impl Iterator<Item = &'a Subscription> + 'a {
        self.subscriptions
            .values()
            .filter(move |s| s.matches(key, attributes))
    }

    /// Resolves a message's fan-out: the subscriptions it reaches and the distinct targets
    /// that get a copy. A target reached by several subscriptions gets one copy (as a queue
    /// bound twice to an AMQP exchange does).
    pub fn fan_out(&self, key: &RoutingKey, attributes: &MessageAttributes) -> FanOut {
        let mut fan_out = FanOut::default();
        for subscription in self.route(key, attributes) {
            fan_out.n_subscriptions += 1;
            match &subscription.target {
                Target::Queue(queue) => {
                    fan_out.queues.insert(queue.clone());
                }
                Target::Stream(stream) => {
                    fan_out.streams.insert(stream.clone());
                }
                other => fan_out.unsupported.push(other.clone()),
            }
        }
        fan_out
    }
}

/// Where one published message goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FanOut {
    /// Subscriptions it reached.
    pub n_subscriptions: u32,
    /// Distinct queues that get a copy.
    pub queues: BTreeSet<QueueName>,
    /// Distinct streams that get a record.
    pub streams: BTreeSet<StreamName>,
    /// Targets of kinds this build cannot deliver to (URLs).
    pub unsupported: Vec<Target>,
}
