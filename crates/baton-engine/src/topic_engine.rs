//! The topic operations of an engine: topics, subscriptions, and publish (one durable fan-out
//! to every matching target).

use super::*;

/// What a topic operation can fail with: the topic registry's and publish's own errors, and
/// what any engine operation can meet (`Engine`), a target queue's included (a publish is
/// checked against every target queue's limits), and a target stream's (`Stream`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicEngineError {
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
    #[error(transparent)]
    Stream(#[from] StreamEngineError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

#[async_trait]
pub trait TopicEngine: Send + Sync {
    /// Creates a topic, or finds the existing one (a topic has no attributes to conflict).
    /// Returns the topic and whether it was created.
    async fn create_topic(&self, name: TopicName) -> Result<(TopicView, bool), TopicEngineError>;

    /// Deletes a topic and its subscriptions; messages already delivered stay in their queues.
    async fn delete_topic(&self, name: &TopicName) -> Result<(), TopicEngineError>;

    async fn get_topic(&self, name: &TopicName) -> Result<TopicView, TopicEngineError>;

    /// Every topic, ordered by name.
    async fn list_topics(&self) -> Result<Vec<TopicView>, TopicEngineError>;

    /// Adds a subscription, or finds an identical one under its name (a different one is a
    /// conflict). Queue targets must exist; stream and URL targets are refused for now.
    async fn put_subscription(
        &self,
        topic: &TopicName,
        subscription: Subscription,
    ) -> Result<(Subscription, Put), TopicEngineError>;

    async fn delete_subscription(
        &self,
        topic: &TopicName,
        name: &SubscriptionName,
    ) -> Result<(), TopicEngineError>;

    /// Publishes a batch: routes each message and delivers a copy to every matching target.
    /// The whole batch's fan-out is one durable unit: every target is checked first (exists,
    /// message sizes, FIFO requirements, `max_depth`), then all copies are enqueued and logged
    /// as one record; a failure changes nothing. Returns once durable, one outcome per message.
    async fn publish(
        &self,
        topic: &TopicName,
        messages: Vec<PublishEntry>,
    ) -> Result<Vec<PublishOutcome>, TopicEngineError>;
}
