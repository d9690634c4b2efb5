//! What only the Redis engine's topics have: a publish recorded in the topic's outbox whose
//! hand-over is cut (before any queue took its copy, or after the queues took them and before
//! the outbox entry was removed), finished by another node's tick with each copy exactly once;
//! and stream subscriptions refused as not on this engine.

use std::sync::Arc;

use baton_core::topic::{RoutingKey, Subscription, Target};
use baton_core::{
    ManualClock, MessageAttributes, QueueConfig, QueueName, StreamName, SubscriptionName,
    Timestamp, TopicName,
};
use baton_engine::{
    Engine, EngineConfig, EngineError, PublishEntry, QueueEngine, ReceiveOptions, TopicEngine,
    TopicEngineError,
};
use baton_redis::{HandOverFault, RedisEngine, RedisSettings};

use crate::cluster;

async fn node(namespace: &str, clock: &Arc<ManualClock>) -> RedisEngine {
    let settings = RedisSettings::new(cluster::shared().urls());
    let clock = clock.clone() as Arc<dyn baton_core::Clock>;
    RedisEngine::connect(settings, namespace, EngineConfig::default(), Some(clock))
        .await
        .unwrap()
}

fn queue(name: &str) -> QueueName {
    QueueName::new(name).unwrap()
}

fn topic() -> TopicName {
    TopicName::new("orders").unwrap()
}

fn subscription(name: &str, target: Target) -> Subscription {
    Subscription {
        name: SubscriptionName::new(name).unwrap(),
        target,
        pattern: None,
        filter: None,
    }
}

fn message(body: &str) -> PublishEntry {
    PublishEntry {
        id: baton_engine::new_message_id(),
        routing_key: RoutingKey::new("order.created").unwrap(),
        body: Arc::from(body),
        attributes: MessageAttributes::default(),
        group_id: None,
        dedup_id: None,
    }
}

async fn bodies(engine: &RedisEngine, name: &str) -> Vec<String> {
    let options = ReceiveOptions {
        max: 10,
        wait_ms: Some(0),
        visibility_timeout_ms: Some(600_000),
    };
    let mut out: Vec<String> = engine
        .receive(&queue(name), options)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.body.to_string())
        .collect();
    out.sort();
    out
}

/// Two nodes on one namespace, a topic with two queue subscriptions.
async fn two_nodes() -> (RedisEngine, RedisEngine) {
    let namespace = cluster::fresh_namespace();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
    let one = node(&namespace, &clock).await;
    let two = node(&namespace, &clock).await;
    for name in ["a", "b"] {
        one.create_queue(queue(name), QueueConfig::default())
            .await
            .unwrap();
    }
    one.create_topic(topic()).await.unwrap();
    for name in ["a", "b"] {
        one.put_subscription(&topic(), subscription(name, Target::Queue(queue(name))))
            .await
            .unwrap();
    }
    (one, two)
}

async fn cut_publish_is_finished_by_another_nodes_tick(fault: HandOverFault) {
    let (one, two) = two_nodes().await;
    one.inject_hand_over_fault(Some(fault));
    let cut = one
        .publish(&topic(), vec![message("m1"), message("m2")])
        .await;
    assert!(
        matches!(
            cut,
            Err(TopicEngineError::Engine(EngineError::OutcomeUnknown { .. }))
        ),
        "{cut:?}"
    );
    two.tick().await;
    two.tick().await;
    one.inject_hand_over_fault(None);
    one.tick().await;
    assert_eq!(bodies(&two, "a").await, vec!["m1", "m2"]);
    assert_eq!(bodies(&two, "b").await, vec!["m1", "m2"]);
    two.tick().await;
    assert!(bodies(&two, "a").await.is_empty(), "no copy twice");
    assert!(bodies(&two, "b").await.is_empty(), "no copy twice");
    let stats = two.get_topic(&topic()).await.unwrap().stats;
    assert_eq!(stats.published_total, 2);
    assert_eq!(stats.delivered_total, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_cut_after_the_outbox_write_is_delivered_once_by_another_nodes_tick() {
    cut_publish_is_finished_by_another_nodes_tick(HandOverFault::BeforeAccept).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_cut_after_the_queues_took_it_is_not_delivered_twice_by_a_tick() {
    cut_publish_is_finished_by_another_nodes_tick(HandOverFault::AfterAccept).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_made_on_one_node_is_published_to_on_another() {
    let (one, two) = two_nodes().await;
    let outcomes = two.publish(&topic(), vec![message("hello")]).await.unwrap();
    assert_eq!(outcomes[0].delivered_to, 2);
    assert_eq!(bodies(&one, "a").await, vec!["hello"]);
    assert_eq!(bodies(&one, "b").await, vec!["hello"]);
    let listed = two.list_topics().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].subscriptions.len(), 2);
    two.delete_topic(&topic()).await.unwrap();
    assert!(one.list_topics().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_subscription_is_refused_as_not_on_this_engine() {
    let (one, _two) = two_nodes().await;
    let refused = one
        .put_subscription(
            &topic(),
            subscription("s", Target::Stream(StreamName::new("history").unwrap())),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(TopicEngineError::Engine(EngineError::NotOnEngine { .. }))
        ),
        "{refused:?}"
    );
}
