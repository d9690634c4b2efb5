//! What only the Redis engine has: hand-overs through the outbox that survive a node dying
//! mid-way, Redis's own clock, replicas that must confirm a write, nodes that share
//! queues, and the deployment check the server judges at start-up.

use std::sync::Arc;
use std::time::Duration;

use baton_core::{
    DeadLetterPolicy, ManualClock, MessageStatus, QueueConfig, QueueName, ReceiptError, SendEntry,
    Timestamp,
};
use baton_engine::{Engine, EngineConfig, EngineError, QueueEngine, ReceiveOptions};
use baton_redis::{HandOverFault, RedisEngine, RedisSettings};

use crate::cluster;

fn name(text: &str) -> QueueName {
    QueueName::new(text).unwrap()
}

fn entry(body: &str) -> SendEntry {
    SendEntry::new(baton_engine::new_message_id(), body)
}

fn at_once(max: u32, visibility_ms: Option<u64>) -> ReceiveOptions {
    ReceiveOptions {
        max,
        wait_ms: Some(0),
        visibility_timeout_ms: visibility_ms,
    }
}

async fn engine_with(
    namespace: &str,
    settings: RedisSettings,
    clock: Option<Arc<ManualClock>>,
) -> RedisEngine {
    let clock = clock.map(|c| c as Arc<dyn baton_core::Clock>);
    RedisEngine::connect(settings, namespace, EngineConfig::default(), clock)
        .await
        .unwrap()
}

async fn engine(namespace: &str, clock: Option<Arc<ManualClock>>) -> RedisEngine {
    engine_with(
        namespace,
        RedisSettings::new(cluster::shared().urls()),
        clock,
    )
    .await
}

/// A queue `q` whose messages go to `dlq` after their first receive, with one message
/// received and its lease about to end.
async fn one_message_about_to_dead_letter(node: &RedisEngine) -> baton_core::MessageId {
    node.create_queue(name("dlq"), QueueConfig::default())
        .await
        .unwrap();
    let config = QueueConfig {
        visibility_timeout_ms: 1_000,
        dead_letter: Some(DeadLetterPolicy {
            queue: name("dlq"),
            max_receive_count: 1,
        }),
        ..QueueConfig::default()
    };
    node.create_queue(name("q"), config).await.unwrap();
    let sent = node.send(&name("q"), vec![entry("poison")]).await.unwrap();
    assert_eq!(
        node.receive(&name("q"), at_once(1, None))
            .await
            .unwrap()
            .len(),
        1
    );
    sent[0].id
}

async fn depth(node: &RedisEngine, queue: &str) -> (u64, u64) {
    let stats = node.get_queue(&name(queue)).await.unwrap().stats;
    (stats.depth(), stats.moved_in_total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_stopped_after_the_outbox_write_completes_on_the_next_tick_once() {
    let namespace = cluster::fresh_namespace();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
    let first = engine(&namespace, Some(clock.clone())).await;
    let id = one_message_about_to_dead_letter(&first).await;
    first.inject_hand_over_fault(Some(HandOverFault::BeforeAccept));
    clock.advance_ms(1_001);
    first.tick().await;
    // The source let go of the message (it is in its outbox), the destination has nothing.
    assert_eq!(depth(&first, "q").await.0, 0);
    assert_eq!(depth(&first, "dlq").await, (0, 0));
    drop(first); // the node dies here

    let second = engine(&namespace, Some(clock.clone())).await;
    second.tick().await;
    second.tick().await;
    assert_eq!(depth(&second, "dlq").await, (1, 1), "moved exactly once");
    let got = second
        .receive(&name("dlq"), at_once(10, None))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].id, got[0].dead_letter_source.clone()),
        (id, Some(name("q")))
    );
    let status = second.message_status(&name("q"), id).await.unwrap();
    assert_eq!(status.status, MessageStatus::DeadLettered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_stopped_after_the_destination_accepted_is_not_repeated() {
    let namespace = cluster::fresh_namespace();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
    let first = engine(&namespace, Some(clock.clone())).await;
    one_message_about_to_dead_letter(&first).await;
    first.inject_hand_over_fault(Some(HandOverFault::AfterAccept));
    clock.advance_ms(1_001);
    first.tick().await;
    assert_eq!(depth(&first, "dlq").await, (1, 1));
    drop(first); // dies with the outbox entry still there

    let second = engine(&namespace, Some(clock.clone())).await;
    second.tick().await;
    second.tick().await;
    assert_eq!(
        depth(&second, "dlq").await,
        (1, 1),
        "the repeated hand-over was recognised by its token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_time_a_stale_receipt_after_lease_expiry_does_not_ack() {
    let node = engine(&cluster::fresh_namespace(), None).await;
    node.create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    node.send(&name("q"), vec![entry("m")]).await.unwrap();
    let first = node
        .receive(&name("q"), at_once(1, Some(200)))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    // Redis's clock decides when the lease ends; poll until it has.
    let mut second = Vec::new();
    for _ in 0..100 {
        second = node
            .receive(&name("q"), at_once(1, Some(60_000)))
            .await
            .unwrap();
        if !second.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((second[0].id, second[0].receive_count), (first[0].id, 2));
    let stale = node.ack(&name("q"), vec![first[0].receipt]).await.unwrap();
    assert_eq!(stale[0].as_ref().err(), Some(&ReceiptError::Stale));
    let current = node.ack(&name("q"), vec![second[0].receipt]).await.unwrap();
    assert!(current[0].is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_replicas_cannot_confirm_is_an_error_not_a_success() {
    let mut settings = RedisSettings::new(cluster::shared().urls());
    settings.wait_replicas = 2; // every master has one replica
    settings.wait_timeout_ms = 100;
    let node = engine_with(&cluster::fresh_namespace(), settings, None).await;
    let refused = node.create_queue(name("q"), QueueConfig::default()).await;
    assert!(
        matches!(&refused, Err(EngineError::OutcomeUnknown { reason }) if reason.contains("1 of the 2 replicas")),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_on_one_node_wakes_a_long_poll_on_another() {
    let namespace = cluster::fresh_namespace();
    let sender = engine(&namespace, None).await;
    let waiter = Arc::new(engine(&namespace, None).await);
    sender
        .create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    let poll = {
        let waiter = waiter.clone();
        tokio::spawn(async move {
            let options = ReceiveOptions {
                max: 1,
                wait_ms: Some(20_000),
                visibility_timeout_ms: None,
            };
            waiter.receive(&name("q"), options).await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = sender.send(&name("q"), vec![entry("hello")]).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("the long poll answered before its wait ended")
        .unwrap()
        .unwrap();
    assert_eq!(got[0].id, sent[0].id);
    // Either node acks what the other leased.
    let acked = sender.ack(&name("q"), vec![got[0].receipt]).await.unwrap();
    assert!(acked[0].is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployment_check_reads_every_master_and_counts_online_replicas() {
    let node = engine(&cluster::fresh_namespace(), None).await;
    let check = node.check_deployment().await.unwrap();
    assert_eq!(check.masters.len(), 3, "{check:?}");
    assert!(check.masters.iter().all(|m| m.starts_with("127.0.0.1:")));
    assert!(check.shortfalls.is_empty(), "{check:?}");
    assert!(check.unchecked.is_empty(), "{check:?}");

    let mut settings = RedisSettings::new(cluster::shared().urls());
    settings.wait_replicas = 2; // every master has one replica
    let asking_for_two = engine_with(&cluster::fresh_namespace(), settings, None).await;
    let check = asking_for_two.check_deployment().await.unwrap();
    assert_eq!(check.shortfalls.len(), 3, "{check:?}");
    for shortfall in &check.shortfalls {
        assert_eq!(
            (shortfall.setting, shortfall.found.as_str()),
            ("replicas", "1 online")
        );
        assert!(check.masters.contains(&shortfall.node), "{shortfall}");
    }
}
