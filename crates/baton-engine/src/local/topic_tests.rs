//! Topics on the durable engine: definitions and published copies survive restarts, with and
//! without a checkpoint in between, and replay equals the live state.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use baton_core::topic::{Pattern, RoutingKey, Target};
use baton_core::{ManualClock, MessageAttributes};
use baton_storage::{SimFs, SyncPolicy};

use super::*;
use crate::conformance::{subscription_name, topic};
use crate::new_message_id;
use crate::TopicEngineError;
use crate::{PublishEntry, TopicEngine};
use baton_core::topic::Subscription;

fn name(s: &str) -> QueueName {
    QueueName::new(s).unwrap()
}

fn storage(checkpoint_bytes_min: u64) -> StorageConfig {
    StorageConfig {
        data_dir: "/data".into(),
        sync: SyncPolicy::Always,
        segment_bytes_max: 2048,
        checkpoint_bytes_min,
        repair: false,
        disk_free_min_bytes: 0,
        disk_reserve_bytes: 0,
        keys: None,
    }
}

fn open_with(fs: &SimFs, clock: Arc<dyn baton_core::Clock>, storage: StorageConfig) -> LocalEngine {
    let engine = LocalEngine::durable(
        clock,
        EngineConfig::default(),
        Arc::new(fs.clone()),
        storage,
        false,
    )
    .unwrap();
    engine.reload().unwrap();
    engine
}

fn open(fs: &SimFs, clock: Arc<ManualClock>) -> LocalEngine {
    open_with(fs, clock, storage(1 << 30))
}

fn subscription(sub: &str, queue: &str, pattern: Option<&str>) -> Subscription {
    Subscription {
        name: subscription_name(sub),
        target: Target::Queue(name(queue)),
        pattern: pattern.map(|p| Pattern::new(p).unwrap()),
        filter: None,
    }
}

fn entry(key: &str, body: &str) -> PublishEntry {
    PublishEntry {
        id: new_message_id(),
        routing_key: RoutingKey::new(key).unwrap(),
        body: Arc::from(body),
        attributes: MessageAttributes::default(),
        group_id: None,
        dedup_id: None,
    }
}

async fn bodies(engine: &LocalEngine, queue: &str) -> Vec<String> {
    let options = ReceiveOptions {
        max: 1000,
        wait_ms: Some(0),
        visibility_timeout_ms: Some(600_000),
    };
    let mut out: Vec<String> = engine
        .receive(&name(queue), options)
        .await
        .unwrap()
        .iter()
        .map(|d| d.body.to_string())
        .collect();
    out.sort();
    out
}

async fn subscriptions(engine: &LocalEngine, name: &str) -> Vec<String> {
    engine
        .get_topic(&topic(name))
        .await
        .unwrap()
        .subscriptions
        .iter()
        .map(|s| s.name.to_string())
        .collect()
}

#[tokio::test]
async fn topics_and_fan_out_replay_across_a_checkpoint_and_the_log_after_it() {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    let engine = open(&fs, clock.clone());
    for queue in ["a", "b", "c"] {
        engine
            .create_queue(name(queue), QueueConfig::default())
            .await
            .unwrap();
    }
    engine.create_topic(topic("t")).await.unwrap();
    engine.create_topic(topic("gone")).await.unwrap();
    engine
        .put_subscription(&topic("t"), subscription("to-a", "a", Some("x.*")))
        .await
        .unwrap();
    engine
        .put_subscription(&topic("t"), subscription("to-b", "b", None))
        .await
        .unwrap();
    engine
        .publish(
            &topic("t"),
            vec![entry("x.1", "before-1"), entry("y", "before-2")],
        )
        .await
        .unwrap();
    engine.checkpoint().unwrap();

    // After the checkpoint: more definitions and copies, only in the log.
    engine
        .put_subscription(&topic("t"), subscription("to-c", "c", Some("#.2")))
        .await
        .unwrap();
    engine
        .delete_subscription(&topic("t"), &subscription_name("to-b"))
        .await
        .unwrap();
    engine.delete_topic(&topic("gone")).await.unwrap();
    let outcomes = engine
        .publish(&topic("t"), vec![entry("x.2", "after")])
        .await
        .unwrap();
    assert_eq!(outcomes[0].delivered_to, 2);
    drop(engine);

    let engine = open(&fs, clock.clone());
    let topics: Vec<String> = engine
        .list_topics()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(topics, ["t"]);
    assert_eq!(subscriptions(&engine, "t").await, ["to-a", "to-c"]);
    assert_eq!(bodies(&engine, "a").await, ["after", "before-1"]);
    assert_eq!(bodies(&engine, "b").await, ["before-1", "before-2"]);
    assert_eq!(bodies(&engine, "c").await, ["after"]);

    // A second checkpoint covers everything; a restart from it alone agrees.
    engine.checkpoint().unwrap();
    drop(engine);
    let engine = open(&fs, clock);
    assert_eq!(subscriptions(&engine, "t").await, ["to-a", "to-c"]);
    let view = engine.get_queue(&name("a")).await.unwrap();
    assert_eq!(view.stats.depth(), 2, "copies are neither lost nor doubled");
}

#[tokio::test]
async fn a_failed_publish_logs_nothing_and_changes_nothing() {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    let engine = open(&fs, clock.clone());
    engine
        .create_queue(name("ok"), QueueConfig::default())
        .await
        .unwrap();
    let full = QueueConfig {
        max_depth: Some(1),
        ..QueueConfig::default()
    };
    engine.create_queue(name("full"), full).await.unwrap();
    engine.create_topic(topic("t")).await.unwrap();
    for (sub, queue) in [("s1", "ok"), ("s2", "full")] {
        engine
            .put_subscription(&topic("t"), subscription(sub, queue, None))
            .await
            .unwrap();
    }
    let error = engine
        .publish(&topic("t"), vec![entry("k", "1"), entry("k", "2")])
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        TopicEngineError::Engine(EngineError::Queue(baton_core::QueueError::QueueFull { .. }))
    ));
    assert_eq!(
        engine.get_queue(&name("ok")).await.unwrap().stats.depth(),
        0
    );
    drop(engine);
    let engine = open(&fs, clock);
    assert_eq!(
        engine.get_queue(&name("ok")).await.unwrap().stats.depth(),
        0
    );
    assert_eq!(
        engine.get_queue(&name("full")).await.unwrap().stats.depth(),
        0
    );
    let view = engine.get_topic(&topic("t")).await.unwrap();
    assert_eq!(
        view.stats.published_total, 0,
        "stats count only what was published"
    );
}

use std::collections::BTreeSet;

use baton_storage::{CrashMode, SimRun};
use parking_lot::Mutex;

/// Producers and their batches in the power-loss test.
const N_PRODUCERS: u64 = 3;
const N_PUBLISHES: u64 = 150;

/// Topic `t` fanning out to queues `a`, `b` and `c`.
async fn fan_out_to_three(engine: &LocalEngine) {
    engine.create_topic(topic("t")).await.unwrap();
    for queue in ["a", "b", "c"] {
        engine
            .create_queue(name(queue), QueueConfig::default())
            .await
            .unwrap();
        engine
            .put_subscription(&topic("t"), subscription(queue, queue, None))
            .await
            .unwrap();
    }
}

/// Publishes `N_PUBLISHES` batches of one to three bodies, until the first refusal.
async fn publish_load(
    engine: Arc<LocalEngine>,
    acknowledged: Arc<Mutex<BTreeSet<String>>>,
    producer: u64,
) {
    for n in 0..N_PUBLISHES {
        let bodies: Vec<String> = (0..1 + n % 3)
            .map(|i| format!("p{producer}-{n}-{i}"))
            .collect();
        let entries = bodies.iter().map(|b| entry("k", b)).collect();
        match engine.publish(&topic("t"), entries).await {
            Ok(_) => acknowledged.lock().extend(bodies),
            Err(_) => return,
        }
        engine.tick().await;
    }
}

/// After recovery the three queues hold the same messages, among them every acknowledged
/// publish. Returns whether the power loss cut publishing short.
async fn check_publishes_whole(
    schedule: &baton_storage::SimSchedule,
    engine: &LocalEngine,
    acknowledged: &Mutex<BTreeSet<String>>,
) -> bool {
    // Bodies published per producer when nothing interrupts it.
    let total_per_producer: usize = (0..N_PUBLISHES).map(|n| 1 + (n % 3) as usize).sum();
    let mut contents = Vec::new();
    for queue in ["a", "b", "c"] {
        contents.push(
            bodies(engine, queue)
                .await
                .into_iter()
                .collect::<BTreeSet<_>>(),
        );
    }
    assert_eq!(
        contents[0], contents[1],
        "{schedule}: queues a and b differ"
    );
    assert_eq!(
        contents[1], contents[2],
        "{schedule}: queues b and c differ"
    );
    let acknowledged = acknowledged.lock();
    let lost: Vec<&String> = acknowledged.difference(&contents[0]).collect();
    assert!(lost.is_empty(), "{schedule}: lost acknowledged {lost:?}");
    !acknowledged.is_empty() && acknowledged.len() < N_PRODUCERS as usize * total_per_producer
}

/// Power loss (with a torn last write) while producers publish to a topic that fans out to
/// three queues, with checkpoints in between: after recovery every queue holds exactly the
/// same messages (a publish is all or nothing across its targets), and every acknowledged
/// publish is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_loss_never_splits_a_publish_across_its_targets() {
    let mut n_interrupted = 0;
    for schedule in SimRun::from_env(0x70, 30).schedules() {
        let mut rng = schedule.rng();
        let fs = SimFs::new();
        let clock: Arc<dyn baton_core::Clock> = Arc::new(crate::SystemClock);
        let engine = Arc::new(open_with(&fs, clock.clone(), storage(8192)));
        fan_out_to_three(&engine).await;
        let acknowledged = Arc::new(Mutex::new(BTreeSet::<String>::new()));
        let mut tasks = Vec::new();
        for producer in 0..N_PRODUCERS {
            let (engine, acknowledged) = (engine.clone(), acknowledged.clone());
            tasks.push(tokio::spawn(publish_load(engine, acknowledged, producer)));
        }
        tokio::time::sleep(std::time::Duration::from_micros(rng.below(20_000))).await;
        fs.power_off(CrashMode::Torn {
            keep_bytes: rng.below(400),
        });
        for task in tasks {
            task.await.unwrap();
        }
        drop(engine);
        fs.fail_writes(None);

        let engine = open_with(&fs, clock, storage(8192));
        if check_publishes_whole(&schedule, &engine, &acknowledged).await {
            n_interrupted += 1;
        }
    }
    assert!(
        n_interrupted >= 10,
        "only {n_interrupted} schedules cut publishing short; the test would prove little"
    );
}
