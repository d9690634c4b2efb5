//! The topic operations of an engine: topics, subscriptions, and publish (one durable fan-out
//! to every matching target).

use super::*;

#[async_trait]
pub trait TopicEngine: Send + Sync {
    /// Creates a topic, or finds the existing one (a topic has no attributes to conflict).
    /// Returns the topic and whether it was created.
    async fn create_topic(&self, name: TopicName) -> Result<(TopicView, bool), EngineError>;

    /// Deletes a topic and its subscriptions; messages already delivered stay in their queues.
    async fn delete_topic(&self, name: &TopicName) -> Result<(), EngineError>;

    async fn get_topic(&self, name: &TopicName) -> Result<TopicView, EngineError>;

    /// Every topic, ordered by name.
    async fn list_topics(&self) -> Result<Vec<TopicView>, EngineError>;

    /// Adds a subscription, or finds an identical one under its name (a different one is a
    /// conflict). Queue targets must exist; stream and URL targets are refused for now.
    async fn put_subscription(
        &self,
        topic: &TopicName,
        subscription: Subscription,
    ) -> Result<(Subscription, Put), EngineError>;

    async fn delete_subscription(
        &self,
        topic: &TopicName,
        name: &SubscriptionName,
    ) -> Result<(), EngineError>;

    /// Publishes a batch: routes each message and delivers a copy to every matching target.
    /// The whole batch's fan-out is one durable unit: every target is checked first (exists,
    /// message sizes, FIFO requirements, `max_depth`), then all copies are enqueued and logged
    /// as one record; a failure changes nothing. Returns once durable, one outcome per message.
    async fn publish(
        &self,
        topic: &TopicName,
        messages: Vec<PublishEntry>,
    ) -> Result<Vec<PublishOutcome>, EngineError>;
}
