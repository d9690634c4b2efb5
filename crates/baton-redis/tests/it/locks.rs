//! What only the Redis engine's locks have: wake-ups across nodes, the queue's fence floor
//! (the storage-side half of fencing), the name index behind listing and `locks_max`, and the
//! limits checked before any script runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_core::lock::{Holder, LockError, LockLimits, LockName};
use baton_core::{ManualClock, QueueConfig, QueueName, SendEntry, Timestamp};
use baton_engine::{
    EngineConfig, FencedWrite, LockEngine, LockEngineError, LockSettings, QueueEngine,
};
use baton_redis::{RedisEngine, RedisSettings};

use crate::cluster;

fn lock(name: &str) -> LockName {
    LockName::new(name, &LockLimits::default()).unwrap()
}

fn holder(name: &str) -> Holder {
    Holder::new(name).unwrap()
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)))
}

async fn node(namespace: &str, clock: Option<Arc<ManualClock>>) -> RedisEngine {
    let settings = RedisSettings::new(cluster::shared().urls());
    let clock = clock.map(|c| c as Arc<dyn baton_core::Clock>);
    RedisEngine::connect(settings, namespace, EngineConfig::default(), clock)
        .await
        .unwrap()
}

fn small_limits() -> LockSettings {
    LockSettings {
        limits: LockLimits {
            locks_max: 3,
            name_chars_max: 8,
            ttl_ms_min: 100,
            ttl_ms_max: 10_000,
        },
        waiters_max: 1,
        wait_ms_max: 5_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_on_one_node_wakes_an_acquire_waiting_on_another() {
    let namespace = cluster::fresh_namespace();
    let first = node(&namespace, None).await;
    let second = Arc::new(node(&namespace, None).await);
    let held = first
        .acquire_lock(&lock("job"), &holder("a"), 60_000, 0)
        .await
        .unwrap();
    let waiter = {
        let second = second.clone();
        tokio::spawn(async move {
            second
                .acquire_lock(&lock("job"), &holder("b"), 60_000, 20_000)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    first
        .release_lock(&lock("job"), &holder("a"), held.token)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiting acquire answered before its wait ended")
        .unwrap()
        .unwrap();
    assert_eq!(got.holder, holder("b"));
    assert!(got.token > held.token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_acquire_gets_the_lock_when_the_hold_expires() {
    let node = node(&cluster::fresh_namespace(), None).await;
    let first = node
        .acquire_lock(&lock("job"), &holder("a"), 300, 0)
        .await
        .unwrap();
    let started = Instant::now();
    let second = node
        .acquire_lock(&lock("job"), &holder("b"), 1_000, 5_000)
        .await
        .unwrap();
    assert_eq!(second.token.get(), first.token.get() + 1);
    // Woken at the expiry (no release publishes anything), not at the end of the wait.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

fn send(queue: &str, body: &str) -> FencedWrite {
    FencedWrite::Send {
        queue: QueueName::new(queue).unwrap(),
        entries: vec![SendEntry::new(baton_engine::new_message_id(), body)],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_written_by_a_later_token_refuses_an_earlier_one() {
    let namespace = cluster::fresh_namespace();
    let node = node(&namespace, Some(clock())).await;
    node.create_queue(QueueName::new("jobs").unwrap(), QueueConfig::default())
        .await
        .unwrap();
    let hold = node
        .acquire_lock(&lock("nightly"), &holder("a"), 60_000, 0)
        .await
        .unwrap();
    node.fenced(&lock("nightly"), hold.token, send("jobs", "one"))
        .await
        .unwrap();
    let cluster = cluster::shared();
    let floor_key = format!("{{{namespace}:q:jobs}}:fence");
    let port = cluster.master_of(&floor_key, cluster.ports[0]).unwrap();
    assert_eq!(
        cluster.cli(port, &["HGET", &floor_key, "nightly"]).trim(),
        hold.token.to_string(),
        "the write raised the queue's fence floor to its token"
    );
    // As if a later holder (token + 1) had written here while this one passed the lock's
    // check: the queue's own script refuses the older token and writes nothing.
    let later = (hold.token.get() + 1).to_string();
    cluster.cli(port, &["HSET", &floor_key, "nightly", &later]);
    assert_eq!(
        node.fenced(&lock("nightly"), hold.token, send("jobs", "late"))
            .await,
        Err(LockEngineError::Fenced {
            lock: "nightly".into(),
            token: hold.token.get(),
            current: Some(hold.token.get()),
        })
    );
    let stats = node
        .get_queue(&QueueName::new("jobs").unwrap())
        .await
        .unwrap()
        .stats;
    assert_eq!(stats.visible, 1, "the refused send wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_stream_and_topic_writes_are_not_on_this_engine() {
    let node = node(&cluster::fresh_namespace(), None).await;
    let hold = node
        .acquire_lock(&lock("job"), &holder("a"), 60_000, 0)
        .await
        .unwrap();
    let append = FencedWrite::Append {
        stream: baton_core::StreamName::new("audit").unwrap(),
        producer: None,
        records: Vec::new(),
    };
    assert!(matches!(
        node.fenced(&lock("job"), hold.token, append).await,
        Err(LockEngineError::Stream(
            baton_engine::StreamEngineError::Engine(baton_engine::EngineError::NotOnEngine { .. })
        ))
    ));
    let publish = FencedWrite::Publish {
        topic: baton_core::TopicName::new("reports").unwrap(),
        messages: Vec::new(),
    };
    assert!(matches!(
        node.fenced(&lock("job"), hold.token, publish).await,
        Err(LockEngineError::Topic(
            baton_engine::TopicEngineError::Engine(baton_engine::EngineError::NotOnEngine { .. })
        ))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_prefix_skips_free_locks_and_pages() {
    let clock = clock();
    let node = node(&cluster::fresh_namespace(), Some(clock.clone())).await;
    for name in ["job:a", "job:b", "job:c", "jobs", "other"] {
        node.acquire_lock(&lock(name), &holder("h"), 1_000, 0)
            .await
            .unwrap();
    }
    let b = node.get_lock(&lock("job:b")).await.unwrap().unwrap();
    node.release_lock(&lock("job:b"), &holder("h"), b.token)
        .await
        .unwrap();
    let names = |list: Vec<baton_core::lock::LockHold>| {
        list.into_iter()
            .map(|h| h.name.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(node.list_locks("job:", None, 10).await.unwrap()),
        ["job:a", "job:c"]
    );
    assert_eq!(
        names(node.list_locks("job", None, 2).await.unwrap()),
        ["job:a", "job:c"]
    );
    assert_eq!(
        names(node.list_locks("job", Some("job:c"), 10).await.unwrap()),
        ["jobs"]
    );
    clock.advance_ms(1_000);
    assert!(node.list_locks("", None, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_index_sweeps_free_names_and_tokens_never_go_back() {
    let clock = clock();
    let node = node(&cluster::fresh_namespace(), Some(clock.clone()))
        .await
        .with_lock_settings(small_limits());
    for name in ["a", "b", "c"] {
        node.acquire_lock(&lock(name), &holder("h"), 1_000, 0)
            .await
            .unwrap();
    }
    assert_eq!(
        node.acquire_lock(&lock("d"), &holder("h"), 1_000, 0).await,
        Err(LockEngineError::Lock(LockError::TooManyLocks { limit: 3 }))
    );
    clock.advance_ms(1_000);
    let d = node
        .acquire_lock(&lock("d"), &holder("h"), 1_000, 0)
        .await
        .unwrap();
    assert_eq!(d.token.get(), 1);
    // `a` left the index in the sweep, but its counter stayed: its next token is 2.
    let a = node
        .acquire_lock(&lock("a"), &holder("h"), 1_000, 0)
        .await
        .unwrap();
    assert_eq!(a.token.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_the_embedded_engines_errors() {
    let node = Arc::new(
        node(&cluster::fresh_namespace(), None)
            .await
            .with_lock_settings(small_limits()),
    );
    assert_eq!(
        node.acquire_lock(&lock("job"), &holder("a"), 1_000, 5_001)
            .await,
        Err(LockEngineError::WaitTooLong {
            wait_ms: 5_001,
            max: 5_000
        })
    );
    assert_eq!(
        node.acquire_lock(&lock("job"), &holder("a"), 99, 0).await,
        Err(LockEngineError::Lock(LockError::TtlOutOfRange {
            ttl_ms: 99,
            min: 100,
            max: 10_000
        }))
    );
    assert!(matches!(
        node.acquire_lock(&lock("much-too-long"), &holder("a"), 1_000, 0).await,
        Err(LockEngineError::Lock(LockError::InvalidName { reason, .. })) if reason.contains("at most 8")
    ));
    assert!(matches!(
        node.renew_lock(
            &lock("job"),
            &holder("a"),
            baton_core::lock::FencingToken::new(1),
            1_000
        )
        .await,
        Err(LockEngineError::Lock(LockError::NotHeld { .. }))
    ));
    node.acquire_lock(&lock("job"), &holder("a"), 10_000, 0)
        .await
        .unwrap();
    let waiting = {
        let node = node.clone();
        tokio::spawn(async move {
            node.acquire_lock(&lock("job"), &holder("b"), 1_000, 2_000)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        node.acquire_lock(&lock("job"), &holder("c"), 1_000, 2_000)
            .await,
        Err(LockEngineError::TooManyWaiters { limit: 1 })
    );
    assert!(matches!(
        waiting.await.unwrap(),
        Err(LockEngineError::Lock(LockError::Held { .. }))
    ));
}
