//! Topic semantics every engine keeps: fan-out to queue and stream subscriptions by routing
//! pattern and attribute filter, and a publish that changes nothing when a target is gone.

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_core::topic::{Condition, FilterPolicy, Pattern, RoutingKey, Subscription, Target};
use baton_core::{AttributeData, AttributeValue, MessageAttributes, QueueConfig, StreamConfig};

use super::{queue, stream, subscription_name, take, topic, Harness};
use crate::{Engine, EngineConfig, PublishEntry, TopicEngineError};

fn subscription(name: &str, target: Target, pattern: Option<&str>) -> Subscription {
    Subscription {
        name: subscription_name(name),
        target,
        pattern: pattern.map(|p| Pattern::new(p).unwrap()),
        filter: None,
    }
}

fn message(key: &str, body: &str, amount: Option<&str>) -> PublishEntry {
    let mut attributes = BTreeMap::new();
    if let Some(amount) = amount {
        attributes.insert(
            "amount".to_string(),
            AttributeValue::new("Number", AttributeData::Text(amount.to_string())).unwrap(),
        );
    }
    PublishEntry {
        id: crate::new_message_id(),
        routing_key: RoutingKey::new(key).unwrap(),
        body: Arc::from(body),
        attributes: MessageAttributes::new(attributes).unwrap(),
        group_id: None,
        dedup_id: None,
    }
}

async fn bodies(engine: &Arc<dyn Engine>, name: &str) -> Vec<String> {
    let mut out: Vec<String> = take(engine, name, 100, Some(60_000))
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    out.sort();
    out
}

pub async fn a_publish_fans_out_by_pattern_and_filter(harness: &dyn Harness) {
    let engine = harness.engine(EngineConfig::default()).await;
    for name in ["eu", "big", "all"] {
        engine
            .create_queue(queue(name), QueueConfig::default())
            .await
            .unwrap();
    }
    engine.create_topic(topic("orders")).await.unwrap();
    let t = topic("orders");
    engine
        .put_subscription(
            &t,
            subscription("eu", Target::Queue(queue("eu")), Some("order.eu.*")),
        )
        .await
        .unwrap();
    let mut big = subscription("big", Target::Queue(queue("big")), None);
    let mut conditions = BTreeMap::new();
    conditions.insert(
        "amount".to_string(),
        vec![Condition::Numeric(vec![(
            baton_core::topic::NumericOp::Ge,
            100.0,
        )])],
    );
    big.filter = Some(FilterPolicy::new(conditions).unwrap());
    engine.put_subscription(&t, big).await.unwrap();
    engine
        .put_subscription(
            &t,
            subscription("all", Target::Queue(queue("all")), Some("#")),
        )
        .await
        .unwrap();
    let outcomes = engine
        .publish(
            &t,
            vec![
                message("order.eu.created", "eu small", Some("5")),
                message("order.us.created", "us big", Some("250")),
            ],
        )
        .await
        .unwrap();
    let reached: Vec<u32> = outcomes.iter().map(|o| o.delivered_to).collect();
    assert_eq!(reached, vec![2, 2]);
    assert_eq!(bodies(&engine, "eu").await, vec!["eu small"]);
    assert_eq!(bodies(&engine, "big").await, vec!["us big"]);
    assert_eq!(bodies(&engine, "all").await, vec!["eu small", "us big"]);
}

pub async fn a_publish_reaches_stream_subscriptions(harness: &dyn Harness) {
    let engine = harness.engine(EngineConfig::default()).await;
    engine
        .create_stream(
            stream("history"),
            StreamConfig {
                partitions: 1,
                retention_ms: None,
                retention_bytes: None,
                max_records: None,
            },
        )
        .await
        .unwrap();
    engine.create_topic(topic("chat")).await.unwrap();
    engine
        .put_subscription(
            &topic("chat"),
            subscription("history", Target::Stream(stream("history")), None),
        )
        .await
        .unwrap();
    engine
        .publish(
            &topic("chat"),
            vec![
                message("room.1", "hi", None),
                message("room.1", "there", None),
            ],
        )
        .await
        .unwrap();
    let read = engine
        .read_stream(
            &stream("history"),
            0,
            baton_core::stream::ReadFrom::Offset(0),
            10,
            0,
        )
        .await
        .unwrap();
    let values: Vec<&str> = read.records.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(values, vec!["hi", "there"]);
}

pub async fn a_publish_to_a_missing_target_changes_nothing(harness: &dyn Harness) {
    let engine = harness.engine(EngineConfig::default()).await;
    for name in ["kept", "gone"] {
        engine
            .create_queue(queue(name), QueueConfig::default())
            .await
            .unwrap();
    }
    engine.create_topic(topic("t")).await.unwrap();
    for name in ["kept", "gone"] {
        engine
            .put_subscription(
                &topic("t"),
                subscription(name, Target::Queue(queue(name)), None),
            )
            .await
            .unwrap();
    }
    engine.delete_queue(&queue("gone")).await.unwrap();
    let refused = engine
        .publish(&topic("t"), vec![message("k", "m", None)])
        .await;
    assert!(
        matches!(
            refused,
            Err(TopicEngineError::SubscriptionTargetMissing { .. })
        ),
        "{refused:?}"
    );
    assert!(
        bodies(&engine, "kept").await.is_empty(),
        "no copy went anywhere"
    );
    let missing = engine
        .publish(&topic("nope"), vec![message("k", "m", None)])
        .await;
    assert!(matches!(
        missing,
        Err(TopicEngineError::TopicNotFound { .. })
    ));
}
