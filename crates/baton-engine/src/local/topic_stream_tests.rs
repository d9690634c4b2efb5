//! Topic subscriptions with stream targets on the durable engine: the fan-out to queues and
//! streams survives restarts, a publish whose stream append was lost (a crash between the two
//! logs, or a failed stream log) is completed by recovery exactly once, also after a
//! checkpoint deleted its main-log record, and power loss never leaves a queue and a stream
//! disagreeing.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use baton_core::stream::ReadFrom;
use baton_core::topic::{Pattern, RoutingKey, Target};
use baton_core::{AttributeValue, ManualClock, MessageAttributes, StreamConfig, StreamName};
use baton_storage::{wal, SimFs, SyncPolicy};

use super::*;
use crate::conformance::{stream, subscription_name, topic};
use crate::new_message_id;
use crate::{PublishEntry, StreamEngine, TopicEngine};
use crate::{StreamEngineError, TopicEngineError};
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

async fn open(
    fs: &SimFs,
    clock: Arc<dyn baton_core::Clock>,
    checkpoint_bytes_min: u64,
) -> Arc<LocalEngine> {
    let engine = LocalEngine::durable(
        clock,
        EngineConfig::default(),
        Arc::new(fs.clone()),
        storage(checkpoint_bytes_min),
        false,
    )
    .unwrap();
    engine.recover().await.unwrap();
    Arc::new(engine)
}

fn entry(key: &str, body: &str) -> PublishEntry {
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("color".to_string(), AttributeValue::string("red"));
    PublishEntry {
        id: new_message_id(),
        routing_key: RoutingKey::new(key).unwrap(),
        body: Arc::from(body),
        attributes: MessageAttributes::new(attributes).unwrap(),
        group_id: None,
        dedup_id: None,
    }
}

/// Topic `t` with queue `q` and stream `s` (`partitions` partitions) subscribed to `orders.#`.
async fn setup(engine: &LocalEngine, partitions: u32) {
    engine.create_topic(topic("t")).await.unwrap();
    engine
        .create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    engine
        .create_stream(
            StreamName::new("s").unwrap(),
            StreamConfig {
                partitions,
                retention_ms: None,
                retention_bytes: None,
                max_records: None,
            },
        )
        .await
        .unwrap();
    for (sub, target) in [
        ("to-q", Target::Queue(name("q"))),
        ("to-s", Target::Stream(stream("s"))),
    ] {
        engine
            .put_subscription(
                &topic("t"),
                Subscription {
                    name: subscription_name(sub),
                    target,
                    pattern: Some(Pattern::new("orders.#").unwrap()),
                    filter: None,
                },
            )
            .await
            .unwrap();
    }
}

/// A stream record as the tests compare it: (partition, key, value, headers).
type Row = (u32, Option<String>, String, Vec<(String, String)>);

/// Every record of stream `s`: (partition, key, value, headers), in partition and offset order.
async fn stream_records(engine: &LocalEngine) -> Vec<Row> {
    let name = StreamName::new("s").unwrap();
    let view = engine.get_stream(&name).await.unwrap();
    let mut out = Vec::new();
    for partition in 0..view.config.partitions {
        let mut from = 0;
        loop {
            let read = engine
                .read_stream(&name, partition, ReadFrom::Offset(from), 1000, 0)
                .await
                .unwrap();
            if read.records.is_empty() {
                break;
            }
            for record in read.records {
                out.push((partition, record.key, record.value, record.headers));
            }
            from = read.next_offset;
        }
    }
    out
}

fn stream_values(records: &[Row]) -> Vec<String> {
    records.iter().map(|r| r.2.clone()).collect()
}

async fn queue_bodies(engine: &LocalEngine) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let options = ReceiveOptions {
            max: 10,
            wait_ms: Some(0),
            visibility_timeout_ms: Some(600_000),
        };
        let got = engine.receive(&name("q"), options).await.unwrap();
        if got.is_empty() {
            break;
        }
        out.extend(got.iter().map(|d| d.body.to_string()));
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_publish_reaches_queues_and_streams_and_survives_a_restart() {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = open(&fs, clock.clone(), 1 << 30).await;
    setup(&engine, 2).await;
    let outcomes = engine
        .publish(
            &topic("t"),
            vec![
                entry("orders.eu", "a"),
                entry("orders.us", "b"),
                entry("orders.eu", "c"),
                entry("audit", "unmatched"),
            ],
        )
        .await
        .unwrap();
    let reached: Vec<u32> = outcomes.iter().map(|o| o.delivered_to).collect();
    assert_eq!(reached, [2, 2, 2, 0]);
    let records = stream_records(&engine).await;
    let mut values = stream_values(&records);
    values.sort();
    assert_eq!(values, ["a", "b", "c"]);
    // key = routing key, headers = attributes; one key's records share a partition, in order.
    let eu: Vec<_> = records
        .iter()
        .filter(|r| r.1.as_deref() == Some("orders.eu"))
        .collect();
    assert_eq!(eu.len(), 2);
    assert_eq!(eu[0].0, eu[1].0);
    assert_eq!((eu[0].2.as_str(), eu[1].2.as_str()), ("a", "c"));
    assert_eq!(eu[0].3, [("color".to_string(), "red".to_string())]);
    drop(engine);

    let engine = open(&fs, clock, 1 << 30).await;
    assert_eq!(
        stream_records(&engine).await,
        records,
        "a restart changes no record"
    );
    assert_eq!(queue_bodies(&engine).await, ["a", "b", "c"]);
}

#[tokio::test]
async fn stream_targets_are_checked_before_anything_is_logged() {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = open(&fs, clock.clone(), 1 << 30).await;
    setup(&engine, 1).await;
    // A subscription to a missing stream is refused.
    let missing = engine
        .put_subscription(
            &topic("t"),
            Subscription {
                name: subscription_name("to-nowhere"),
                target: Target::Stream(stream("nowhere")),
                pattern: None,
                filter: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing,
            TopicEngineError::Stream(StreamEngineError::Stream(
                baton_core::StreamError::StreamNotFound { .. }
            ))
        ),
        "{missing:?}"
    );
    // A publish whose stream copy cannot be appended (the stream was deleted under its
    // subscription) fails whole: the queue gets nothing either.
    engine
        .delete_stream(&StreamName::new("s").unwrap())
        .await
        .unwrap();
    let error = engine
        .publish(&topic("t"), vec![entry("orders.eu", "a")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            TopicEngineError::Stream(StreamEngineError::Stream(
                baton_core::StreamError::StreamNotFound { .. }
            ))
        ),
        "{error:?}"
    );
    assert!(queue_bodies(&engine).await.is_empty());
}

/// A crash (or a failed stream log) between the main-log record and the stream append: the
/// copy is completed by recovery, once, whether the record is still in the main log or a
/// checkpoint deleted it.
#[tokio::test]
async fn recovery_appends_a_lost_stream_copy_exactly_once() {
    for checkpoint_between in [false, true] {
        let fs = SimFs::new();
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
        let engine = open(&fs, clock.clone(), 1 << 30).await;
        setup(&engine, 2).await;
        engine
            .publish(
                &topic("t"),
                vec![entry("orders.eu", "a"), entry("orders.us", "b")],
            )
            .await
            .unwrap();
        engine
            .topics
            .read()
            .skip_stream_appends
            .store(true, Ordering::Relaxed);
        let lost = engine
            .publish(
                &topic("t"),
                vec![entry("orders.eu", "c"), entry("orders.us", "d")],
            )
            .await;
        assert!(
            lost.is_err(),
            "the stream half failed, so the publish is not acknowledged"
        );
        let mut before = stream_values(&stream_records(&engine).await);
        before.sort();
        assert_eq!(before, ["a", "b"], "the stream append did not happen");
        if checkpoint_between {
            // Fill the main log past its segments with queue-only traffic, then checkpoint:
            // the segment holding the publish record is deleted, only the checkpoint knows.
            engine
                .create_queue(name("filler"), QueueConfig::default())
                .await
                .unwrap();
            for i in 0..40 {
                engine
                    .send(
                        &name("filler"),
                        vec![SendEntry {
                            id: new_message_id(),
                            body: Arc::from(format!("filler {i} {}", "x".repeat(100)).as_str()),
                            attributes: MessageAttributes::default(),
                            delay_ms: None,
                            group_id: None,
                            dedup_id: None,
                            notify: None,
                        }],
                    )
                    .await
                    .unwrap();
            }
            let segments_before = wal::list_segments(&fs, &PathBuf::from("/data/wal")).unwrap();
            engine.checkpoint().unwrap();
            let segments = wal::list_segments(&fs, &PathBuf::from("/data/wal")).unwrap();
            assert!(
                segments.len() < segments_before.len() && segments[0].0 > 20,
                "the checkpoint deleted the old segments: {segments_before:?} -> {segments:?}"
            );
        }
        drop(engine);

        let engine = open(&fs, clock.clone(), 1 << 30).await;
        let records = stream_records(&engine).await;
        let mut values = stream_values(&records);
        values.sort();
        assert_eq!(
            values,
            ["a", "b", "c", "d"],
            "recovery appended the lost copy (checkpoint in between: {checkpoint_between})"
        );
        let eu: Vec<&str> = records
            .iter()
            .filter(|r| r.1.as_deref() == Some("orders.eu"))
            .map(|r| r.2.as_str())
            .collect();
        assert_eq!(eu, ["a", "c"], "per-key order holds");
        assert_eq!(queue_bodies(&engine).await, ["a", "b", "c", "d"]);
        // Publishing goes on after recovery, and a second restart duplicates nothing.
        engine
            .publish(&topic("t"), vec![entry("orders.eu", "e")])
            .await
            .unwrap();
        drop(engine);
        let engine = open(&fs, clock.clone(), 1 << 30).await;
        let mut values = stream_values(&stream_records(&engine).await);
        values.sort();
        assert_eq!(values, ["a", "b", "c", "d", "e"]);
    }
}

use baton_storage::SimRun;

/// Power loss (torn last write) while producers publish to a topic fanning out to a queue and
/// a stream, with checkpoints in between: after recovery the stream holds exactly the queue's
/// messages, none twice, and every acknowledged publish is in both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_loss_never_splits_a_publish_between_a_queue_and_a_stream() {
    use baton_storage::CrashMode;
    use parking_lot::Mutex;

    let mut n_interrupted = 0;
    for schedule in SimRun::from_env(0x51, 20).schedules() {
        let mut rng = schedule.rng();
        let fs = SimFs::new();
        let clock: Arc<dyn baton_core::Clock> = Arc::new(crate::SystemClock);
        let engine = open(&fs, clock.clone(), 8192).await;
        setup(&engine, 3).await;
        let acknowledged = Arc::new(Mutex::new(BTreeSet::<String>::new()));
        let mut tasks = Vec::new();
        for producer in 0..3u64 {
            let (engine, acknowledged) = (engine.clone(), acknowledged.clone());
            tasks.push(tokio::spawn(async move {
                for n in 0..100u64 {
                    let bodies: Vec<String> = (0..1 + n % 3)
                        .map(|i| format!("p{producer}-{n}-{i}"))
                        .collect();
                    let entries = bodies
                        .iter()
                        .map(|b| entry(&format!("orders.k{}", n % 4), b))
                        .collect();
                    match engine.publish(&topic("t"), entries).await {
                        Ok(_) => acknowledged.lock().extend(bodies),
                        Err(_) => return,
                    }
                    engine.tick().await;
                }
            }));
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

        let engine = open(&fs, clock.clone(), 8192).await;
        let values = stream_values(&stream_records(&engine).await);
        let distinct: BTreeSet<String> = values.iter().cloned().collect();
        assert_eq!(
            distinct.len(),
            values.len(),
            "{schedule}: the stream holds a copy twice"
        );
        let queue: BTreeSet<String> = queue_bodies(&engine).await.into_iter().collect();
        assert_eq!(distinct, queue, "{schedule}: queue and stream differ");
        let acknowledged = acknowledged.lock();
        let lost: Vec<&String> = acknowledged.difference(&queue).collect();
        assert!(lost.is_empty(), "{schedule}: lost acknowledged {lost:?}");
        if !acknowledged.is_empty() && acknowledged.len() < 600 {
            n_interrupted += 1;
        }
    }
    assert!(
        n_interrupted >= 5,
        "only {n_interrupted} schedules cut publishing short; the test would prove little"
    );
}
