//! Faults of Redis itself, on a cluster of this binary's own (the tests kill its nodes), one
//! test at a time: a master killed (its replica takes over), and every node stopped and
//! started again. Each checks that every acknowledged send is still there and that the engine
//! recovers by itself.

#![allow(clippy::unwrap_used)]

#[path = "../support/cluster.rs"]
mod cluster;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use baton_core::{MessageId, QueueConfig, QueueName, SendEntry};
use baton_engine::{Engine, EngineConfig, EngineError, QueueEngine, ReceiveOptions};
use baton_redis::{RedisEngine, RedisSettings};

/// One fault at a time: they share the cluster.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn name(text: &str) -> QueueName {
    QueueName::new(text).unwrap()
}

async fn send_batches(node: &RedisEngine, n: usize) -> BTreeSet<MessageId> {
    let mut acknowledged = BTreeSet::new();
    for i in 0..n {
        let batch: Vec<SendEntry> = (0..5)
            .map(|j| SendEntry::new(baton_engine::new_message_id(), format!("m{i}-{j}")))
            .collect();
        for outcome in node.send(&name("q"), batch).await.unwrap() {
            acknowledged.insert(outcome.id);
        }
    }
    acknowledged
}

/// Sends one message, retrying while the engine reports Redis unavailable, within `within`.
async fn send_when_back(node: &RedisEngine, within: Duration) -> MessageId {
    let started = Instant::now();
    loop {
        let entry = SendEntry::new(baton_engine::new_message_id(), "after");
        match node.send(&name("q"), vec![entry]).await {
            Ok(outcomes) => return outcomes[0].id,
            // A write whose replica confirmation fell short may exist or not: it is not counted
            // as acknowledged, and the retry sends a new message.
            Err(
                EngineError::StorageUnavailable { reason } | EngineError::OutcomeUnknown { reason },
            ) => {
                assert!(started.elapsed() < within, "no recovery: {reason}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
}

async fn drain(node: &RedisEngine) -> BTreeSet<MessageId> {
    let mut ids = BTreeSet::new();
    loop {
        let options = ReceiveOptions {
            max: 100,
            wait_ms: Some(0),
            visibility_timeout_ms: Some(60_000),
        };
        let got = node.receive(&name("q"), options).await.unwrap();
        if got.is_empty() {
            return ids;
        }
        ids.extend(got.iter().map(|d| d.id));
    }
}

async fn node(namespace: &str) -> RedisEngine {
    let settings = RedisSettings::new(cluster::shared().urls());
    let node = RedisEngine::connect(settings, namespace, EngineConfig::default(), None)
        .await
        .unwrap();
    node.create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_loses_no_acknowledged_send_and_the_engine_recovers() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let cluster = cluster::shared();
    cluster.wait_healthy(Duration::from_secs(60));
    let namespace = cluster::fresh_namespace();
    let node = node(&namespace).await;
    let mut acknowledged = send_batches(&node, 20).await;

    let key = format!("{{{namespace}:q:q}}:h");
    let master = cluster.master_of(&key, cluster.ports[0]).unwrap();
    let other = *cluster.ports.iter().find(|p| **p != master).unwrap();
    cluster.stop_node(master, "KILL");
    let started = Instant::now();
    while cluster.master_of(&key, other).is_none_or(|m| m == master) {
        assert!(started.elapsed() < Duration::from_secs(30), "no failover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The old master comes back as the new master's replica, so writes can be confirmed.
    cluster.start_node(master);
    cluster.wait_healthy(Duration::from_secs(60));

    acknowledged.insert(send_when_back(&node, Duration::from_secs(30)).await);
    let present = drain(&node).await;
    let lost: Vec<_> = acknowledged.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged sends lost: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_answers_unavailable_at_once_and_the_engine_recovers() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let cluster = cluster::shared();
    cluster.wait_healthy(Duration::from_secs(60));
    let node = node(&cluster::fresh_namespace()).await;
    let mut acknowledged = send_batches(&node, 2).await;

    for &port in &cluster.ports {
        cluster.stop_node(port, "TERM");
    }
    let started = Instant::now();
    let entry = SendEntry::new(baton_engine::new_message_id(), "while down");
    let refused = node.send(&name("q"), vec![entry]).await;
    assert!(
        matches!(refused, Err(EngineError::StorageUnavailable { .. })),
        "{refused:?}"
    );
    // Not a speed check: a bound that a hanging request would cross.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(node.storage_failure().is_some());

    for &port in &cluster.ports {
        cluster.start_node(port);
    }
    cluster.wait_healthy(Duration::from_secs(60));
    acknowledged.insert(send_when_back(&node, Duration::from_secs(60)).await);
    let present = drain(&node).await;
    let lost: Vec<_> = acknowledged.difference(&present).collect();
    assert!(lost.is_empty(), "acknowledged sends lost: {lost:?}");
    assert!(node.storage_failure().is_none());
}
