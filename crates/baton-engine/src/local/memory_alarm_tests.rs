//! The memory alarm on the local engine: a backlog that reaches the watermark of what queues
//! hold is refused and accepted again once drained; and, with the usage injected, above the
//! watermark every producer write (send, send_each, publish, stream append) is refused with
//! `MemoryPressure` and changes nothing, while receives, acks, nacks and the broker's own
//! sends for consumers go on; once usage falls the next tick accepts writes again.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use baton_core::topic::{RoutingKey, Subscription, Target};
use baton_core::{ManualClock, MessageAttributes, StreamConfig, StreamName};

use super::*;
use crate::conformance::{subscription_name, topic};
use crate::{
    new_message_id, MemoryAlarm, NewRecord, PublishEntry, StreamEngine, StreamEngineError,
};
use crate::{TopicEngine, TopicEngineError};

const WATERMARK: u64 = 1_000_000;

fn name(s: &str) -> QueueName {
    QueueName::new(s).unwrap()
}

fn engine_with_usage() -> (LocalEngine, Arc<AtomicU64>) {
    let usage = Arc::new(AtomicU64::new(0));
    let probe = usage.clone();
    let alarm = MemoryAlarm::with_probe(WATERMARK, Arc::new(move || probe.load(Ordering::Relaxed)));
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = LocalEngine::in_memory(clock, EngineConfig::default()).with_memory_alarm(alarm);
    (engine, usage)
}

async fn send(engine: &LocalEngine, body: &str) -> Result<Vec<SendOutcome>, EngineError> {
    engine
        .send(&name("q"), vec![SendEntry::new(new_message_id(), body)])
        .await
}

async fn append_one(
    engine: &LocalEngine,
    stream: &StreamName,
) -> Result<Vec<baton_core::stream::Appended>, StreamEngineError> {
    let record = NewRecord {
        key: None,
        value: "v".to_string(),
        headers: Vec::new(),
        partition: None,
    };
    engine.append(stream, None, vec![record]).await
}

fn is_pressure(error: &EngineError) -> bool {
    is_pressure_at(error, WATERMARK)
}

#[tokio::test]
async fn above_the_watermark_producers_are_refused_and_consumers_drain() {
    let (engine, usage) = engine_with_usage();
    engine
        .create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    let stream = StreamName::new("s").unwrap();
    engine
        .create_stream(
            stream.clone(),
            StreamConfig {
                partitions: 1,
                retention_ms: None,
                retention_bytes: None,
                max_records: None,
            },
        )
        .await
        .unwrap();
    engine.create_topic(topic("t")).await.unwrap();
    engine
        .put_subscription(
            &topic("t"),
            Subscription {
                name: subscription_name("all"),
                target: Target::Queue(name("q")),
                pattern: None,
                filter: None,
            },
        )
        .await
        .unwrap();
    send(&engine, "before 1").await.unwrap();
    send(&engine, "before 2").await.unwrap();

    usage.store(WATERMARK, Ordering::Relaxed);
    engine.tick().await;
    let status = engine.memory_status().unwrap();
    assert!(status.alarm, "{status:?}");
    assert_eq!(status.used_bytes, WATERMARK);

    let refused = send(&engine, "during").await.unwrap_err();
    assert!(is_pressure(&refused), "{refused:?}");
    let each = engine
        .send_each(&name("q"), vec![SendEntry::new(new_message_id(), "each")])
        .await;
    assert!(matches!(&each, Err(e) if is_pressure(e)), "{each:?}");
    let published = engine
        .publish(
            &topic("t"),
            vec![PublishEntry {
                id: new_message_id(),
                routing_key: RoutingKey::new("k").unwrap(),
                body: Arc::from("published"),
                attributes: MessageAttributes::default(),
                group_id: None,
                dedup_id: None,
            }],
        )
        .await;
    assert!(
        matches!(&published, Err(TopicEngineError::Engine(e)) if is_pressure(e)),
        "{published:?}"
    );
    let appended = append_one(&engine, &stream).await;
    assert!(
        matches!(&appended, Err(StreamEngineError::Engine(e)) if is_pressure(e)),
        "{appended:?}"
    );
    // Nothing refused was stored.
    let stats = engine.get_queue(&name("q")).await.unwrap().stats;
    assert_eq!(stats.visible, 2, "{stats:?}");

    // Consumers go on: receive, nack, receive again, ack.
    let options = ReceiveOptions {
        max: 10,
        wait_ms: Some(0),
        visibility_timeout_ms: Some(60_000),
    };
    let got = engine.receive(&name("q"), options).await.unwrap();
    assert_eq!(got.len(), 2);
    let nacked = engine
        .nack(&name("q"), vec![got[1].receipt], None)
        .await
        .unwrap();
    assert!(nacked.iter().all(Result::is_ok), "{nacked:?}");
    let again = engine.receive(&name("q"), options).await.unwrap();
    assert_eq!(again.len(), 1);
    let acked = engine
        .ack(&name("q"), vec![got[0].receipt, again[0].receipt])
        .await
        .unwrap();
    assert!(acked.iter().all(Result::is_ok), "{acked:?}");
    // The broker's own sends for consumers (completion callbacks) are not refused either.
    engine
        .send_internal(&name("q"), vec![SendEntry::new(new_message_id(), "job")])
        .await
        .unwrap();
    assert_eq!(engine.memory_status().unwrap().refused_writes, 4);

    // Within the hysteresis the alarm stays on; below it the next tick lets writes in.
    usage.store(WATERMARK - WATERMARK / 40, Ordering::Relaxed);
    engine.tick().await;
    assert!(send(&engine, "still refused").await.is_err());
    usage.store(WATERMARK / 2, Ordering::Relaxed);
    engine.tick().await;
    assert!(!engine.memory_status().unwrap().alarm);
    send(&engine, "after").await.unwrap();
    append_one(&engine, &stream).await.unwrap();
}

#[tokio::test]
async fn a_backlog_reaching_the_watermark_is_refused_until_it_is_drained() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = LocalEngine::in_memory(clock, EngineConfig::default())
        .with_memory_alarm(MemoryAlarm::new(64 * 1024));
    engine
        .create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    let body = "x".repeat(1024);
    let mut acknowledged = 0;
    let refused = loop {
        match send(&engine, &body).await {
            Ok(_) => acknowledged += 1,
            Err(error) => break error,
        }
        engine.tick().await;
        assert!(acknowledged < 1_000, "the alarm never went on");
    };
    assert!(is_pressure_at(&refused, 64 * 1024), "{refused:?}");
    // Each message counts its body and 128 bytes of bookkeeping (1,152 bytes): the alarm went
    // on after the 57th send took the queue past 64 KiB.
    assert_eq!(acknowledged, 57, "{:?}", engine.memory_status());

    let options = ReceiveOptions {
        max: 100,
        wait_ms: Some(0),
        visibility_timeout_ms: Some(60_000),
    };
    let got = engine.receive(&name("q"), options).await.unwrap();
    assert_eq!(got.len(), acknowledged);
    engine.tick().await;
    assert!(
        send(&engine, &body).await.is_err(),
        "in flight still holds memory"
    );
    let receipts = got.iter().map(|d| d.receipt).collect();
    engine.ack(&name("q"), receipts).await.unwrap();
    engine.tick().await;
    assert_eq!(engine.memory_status().unwrap().used_bytes, 0);
    send(&engine, &body).await.unwrap();
}

fn is_pressure_at(error: &EngineError, watermark: u64) -> bool {
    matches!(error, EngineError::MemoryPressure { high_watermark_bytes, .. } if *high_watermark_bytes == watermark)
}
