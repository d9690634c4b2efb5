//! [`TopicEngine`](crate::TopicEngine) for the local engine: each call hands over to the topic
//! registry and the publish path (`topics.rs`).

use super::*;
use crate::{PublishEntry, PublishOutcome, TopicView};
use crate::{TopicEngine, TopicEngineError};
use baton_core::topic::{Put, Subscription};
use baton_core::{SubscriptionName, TopicName};

#[async_trait]
impl TopicEngine for LocalEngine {
    async fn create_topic(&self, name: TopicName) -> Result<(TopicView, bool), TopicEngineError> {
        self.create_topic_impl(name).await
    }

    async fn delete_topic(&self, name: &TopicName) -> Result<(), TopicEngineError> {
        self.delete_topic_impl(name).await
    }

    async fn get_topic(&self, name: &TopicName) -> Result<TopicView, TopicEngineError> {
        self.get_topic_impl(name)
    }

    async fn list_topics(&self) -> Result<Vec<TopicView>, TopicEngineError> {
        self.list_topics_impl()
    }

    async fn put_subscription(
        &self,
        topic: &TopicName,
        subscription: Subscription,
    ) -> Result<(Subscription, Put), TopicEngineError> {
        self.put_subscription_impl(topic, subscription).await
    }

    async fn delete_subscription(
        &self,
        topic: &TopicName,
        name: &SubscriptionName,
    ) -> Result<(), TopicEngineError> {
        self.delete_subscription_impl(topic, name).await
    }

    async fn publish(
        &self,
        topic: &TopicName,
        messages: Vec<PublishEntry>,
    ) -> Result<Vec<PublishOutcome>, TopicEngineError> {
        self.publish_impl(topic, messages).await
    }
}
