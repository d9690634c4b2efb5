//! Fenced writes: every kind of write that may carry a fence lands with the lock's current
//! token and is refused, changing nothing, with a token a later grant replaced. The queue
//! writes (send, ack, nack) have a case of their own, for engines without streams or topics.

use std::sync::Arc;

use baton_core::lock::{FencingToken, Holder, LockLimits, LockName};
use baton_core::stream::{
    ConsumerName, GroupConfig, GroupMode, GroupName, RecordId, StartPosition,
};
use baton_core::topic::{RoutingKey, Subscription, Target};
use baton_core::{MessageAttributes, QueueConfig, ReceiptHandle, SendEntry, StreamConfig};

use super::{queue, stream, subscription_name, take, topic, Harness};
use crate::{
    Engine, EngineConfig, FencedOutcome, FencedWrite, LockEngineError, NewRecord, PublishEntry,
};

fn lock() -> LockName {
    LockName::new("nightly-report", &LockLimits::default()).unwrap()
}

fn holder(name: &str) -> Holder {
    Holder::new(name).unwrap()
}

fn send(body: &str) -> FencedWrite {
    FencedWrite::Send {
        queue: queue("jobs"),
        entries: vec![SendEntry::new(crate::new_message_id(), body)],
    }
}

fn append(value: &str) -> FencedWrite {
    FencedWrite::Append {
        stream: stream("audit"),
        producer: None,
        records: vec![NewRecord {
            key: None,
            value: value.to_string(),
            headers: Vec::new(),
            partition: None,
        }],
    }
}

fn publish(body: &str) -> FencedWrite {
    FencedWrite::Publish {
        topic: topic("reports"),
        messages: vec![PublishEntry {
            id: crate::new_message_id(),
            routing_key: RoutingKey::new("report.daily").unwrap(),
            body: Arc::from(body),
            attributes: MessageAttributes::default(),
            group_id: None,
            dedup_id: None,
        }],
    }
}

fn group() -> GroupName {
    GroupName::new("archivers").unwrap()
}

/// A queue `jobs`, a stream `audit` with group `archivers`, and a topic `reports` that fans
/// out to queue `report-copies`.
async fn targets(engine: &Arc<dyn Engine>) {
    for name in ["jobs", "report-copies"] {
        engine
            .create_queue(queue(name), QueueConfig::default())
            .await
            .unwrap();
    }
    let config = StreamConfig {
        partitions: 1,
        retention_ms: None,
        retention_bytes: None,
        max_records: None,
    };
    engine.create_stream(stream("audit"), config).await.unwrap();
    let group_config = GroupConfig {
        start: StartPosition::Earliest,
        mode: GroupMode::Shared,
        session_timeout_ms: 30_000,
    };
    engine
        .create_group(&stream("audit"), group(), group_config)
        .await
        .unwrap();
    engine.create_topic(topic("reports")).await.unwrap();
    let subscription = Subscription {
        name: subscription_name("copies"),
        target: Target::Queue(queue("report-copies")),
        pattern: None,
        filter: None,
    };
    engine
        .put_subscription(&topic("reports"), subscription)
        .await
        .unwrap();
}

async fn counts(engine: &Arc<dyn Engine>) -> (u64, u64, u64, u64) {
    let jobs = engine.get_queue(&queue("jobs")).await.unwrap().stats;
    let copies = engine
        .get_queue(&queue("report-copies"))
        .await
        .unwrap()
        .stats;
    let audit = engine.get_stream(&stream("audit")).await.unwrap().stats;
    (
        jobs.visible + jobs.in_flight,
        jobs.in_flight,
        copies.visible,
        audit.records,
    )
}

fn ack(receipt: ReceiptHandle) -> FencedWrite {
    FencedWrite::Ack {
        queue: queue("jobs"),
        receipts: vec![receipt],
        reply: None,
    }
}

fn nack(receipt: ReceiptHandle) -> FencedWrite {
    FencedWrite::Nack {
        queue: queue("jobs"),
        receipts: vec![receipt],
        delay_ms: None,
    }
}

fn group_ack(record: RecordId) -> FencedWrite {
    FencedWrite::GroupAck {
        stream: stream("audit"),
        group: group(),
        ids: vec![record],
    }
}

async fn fenced(
    engine: &Arc<dyn Engine>,
    token: FencingToken,
    write: FencedWrite,
) -> Result<FencedOutcome, LockEngineError> {
    engine.fenced(&lock(), token, write).await
}

/// Holder `a` takes the lock and sends two jobs, appends and publishes with its token; then two
/// jobs are received and the group reads the record. Returns the token, the two receipts and
/// the record.
async fn first_holder_writes(
    engine: &Arc<dyn Engine>,
) -> (FencingToken, Vec<ReceiptHandle>, RecordId) {
    let first = engine
        .acquire_lock(&lock(), &holder("a"), 60_000, 0)
        .await
        .unwrap();
    for write in [send("one"), send("two"), append("a1"), publish("p1")] {
        fenced(engine, first.token, write).await.unwrap();
    }
    let receipts: Vec<_> = take(engine, "jobs", 2, Some(60_000))
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(receipts.len(), 2);
    let read = engine
        .group_read(
            &stream("audit"),
            &group(),
            &ConsumerName::new("w").unwrap(),
            10,
            0,
        )
        .await
        .unwrap();
    let record = RecordId {
        partition: read[0].record.partition,
        offset: read[0].record.offset,
    };
    (first.token, receipts, record)
}

/// Holder `a` releases and `b` takes over; returns `b`'s token.
async fn take_over(engine: &Arc<dyn Engine>, first: FencingToken) -> FencingToken {
    engine
        .release_lock(&lock(), &holder("a"), first)
        .await
        .unwrap();
    let second = engine
        .acquire_lock(&lock(), &holder("b"), 60_000, 0)
        .await
        .unwrap();
    assert!(second.token > first);
    second.token
}

/// Every kind of write with the replaced token is refused and changes nothing.
async fn check_stale_token_is_refused(
    engine: &Arc<dyn Engine>,
    (first, second): (FencingToken, FencingToken),
    receipts: &[ReceiptHandle],
    record: RecordId,
) {
    let before = counts(engine).await;
    let stale = [
        send("late"),
        ack(receipts[0]),
        nack(receipts[1]),
        append("late"),
        group_ack(record),
        publish("late"),
    ];
    for write in stale {
        let op = write.op();
        assert_eq!(
            fenced(engine, first, write).await,
            Err(LockEngineError::Fenced {
                lock: "nightly-report".into(),
                token: first.get(),
                current: Some(second.get()),
            }),
            "{op} with a replaced token"
        );
    }
    assert_eq!(
        counts(engine).await,
        before,
        "refused writes changed nothing"
    );
    let audit = engine.get_stream(&stream("audit")).await.unwrap().stats;
    assert_eq!(
        audit.groups[0].pending, 1,
        "the refused group ack left it pending"
    );
}

/// The current token does each kind of write.
async fn check_current_token_lands(
    engine: &Arc<dyn Engine>,
    second: FencingToken,
    receipts: &[ReceiptHandle],
    record: RecordId,
) {
    let acked = fenced(engine, second, ack(receipts[0])).await.unwrap();
    assert!(matches!(acked, FencedOutcome::Acked(r) if r[0].is_ok()));
    let nacked = fenced(engine, second, nack(receipts[1])).await.unwrap();
    assert!(matches!(nacked, FencedOutcome::Nacked(r) if r[0].is_ok()));
    let group_acked = fenced(engine, second, group_ack(record)).await.unwrap();
    assert!(matches!(group_acked, FencedOutcome::GroupAcked(r) if r[0].is_ok()));
    let published = fenced(engine, second, publish("p2")).await.unwrap();
    assert!(matches!(published, FencedOutcome::Published(p) if p[0].delivered_to == 1));
    let appended = fenced(engine, second, append("a2")).await.unwrap();
    assert!(matches!(appended, FencedOutcome::Appended(a) if a[0].offset == 1));
    // jobs: one acked, one back to visible; two copies; two records.
    assert_eq!(counts(engine).await, (1, 0, 2, 2));
}

pub async fn every_fenced_write_needs_the_current_token(harness: &dyn Harness) {
    let engine = harness.engine(EngineConfig::default()).await;
    targets(&engine).await;
    let (first, receipts, record) = first_holder_writes(&engine).await;
    // Another holder takes over: every write with the old token is refused.
    let second = take_over(&engine, first).await;
    check_stale_token_is_refused(&engine, (first, second), &receipts, record).await;
    check_current_token_lands(&engine, second, &receipts, record).await;
}

/// Send, ack and nack alone: the same rules on an engine with queues only.
pub async fn fenced_queue_writes_need_the_current_token(harness: &dyn Harness) {
    let engine = harness.engine(EngineConfig::default()).await;
    engine
        .create_queue(queue("jobs"), QueueConfig::default())
        .await
        .unwrap();
    let first = engine
        .acquire_lock(&lock(), &holder("a"), 60_000, 0)
        .await
        .unwrap()
        .token;
    for body in ["one", "two"] {
        let sent = fenced(&engine, first, send(body)).await.unwrap();
        assert!(matches!(sent, FencedOutcome::Sent(s) if s.len() == 1));
    }
    let receipts: Vec<_> = take(&engine, "jobs", 2, Some(60_000))
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(receipts.len(), 2);
    let second = take_over(&engine, first).await;
    let jobs = |engine: Arc<dyn Engine>| async move {
        let stats = engine.get_queue(&queue("jobs")).await.unwrap().stats;
        (stats.visible, stats.in_flight)
    };
    let before = jobs(engine.clone()).await;
    for write in [send("late"), ack(receipts[0]), nack(receipts[1])] {
        let op = write.op();
        assert_eq!(
            fenced(&engine, first, write).await,
            Err(LockEngineError::Fenced {
                lock: "nightly-report".into(),
                token: first.get(),
                current: Some(second.get()),
            }),
            "{op} with a replaced token"
        );
    }
    assert_eq!(
        jobs(engine.clone()).await,
        before,
        "refused writes changed nothing"
    );
    let acked = fenced(&engine, second, ack(receipts[0])).await.unwrap();
    assert!(matches!(acked, FencedOutcome::Acked(r) if r[0].is_ok()));
    let nacked = fenced(&engine, second, nack(receipts[1])).await.unwrap();
    assert!(matches!(nacked, FencedOutcome::Nacked(r) if r[0].is_ok()));
    // One acked, one back to visible.
    assert_eq!(jobs(engine.clone()).await, (1, 0));
    // An expired hold fences nothing either.
    harness.advance(&engine, 60_000).await;
    assert_eq!(
        fenced(&engine, second, send("after expiry")).await,
        Err(LockEngineError::Fenced {
            lock: "nightly-report".into(),
            token: second.get(),
            current: None,
        })
    );
}
