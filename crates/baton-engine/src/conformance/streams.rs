//! Stream semantics every engine keeps: dense offsets per partition, key routing, consumer
//! groups with pending lists, claim and seek, the idempotent producer.

use std::sync::Arc;

use baton_core::stream::{
    ConsumerName, GroupConfig, GroupMode, GroupName, ProducerSeq, ReadFrom, RecordId, StartPosition,
};
use baton_core::StreamConfig;

use super::{stream, Harness};
use crate::{Engine, EngineConfig, NewRecord};

fn config(partitions: u32) -> StreamConfig {
    StreamConfig {
        partitions,
        retention_ms: None,
        retention_bytes: None,
        max_records: None,
    }
}

fn record(key: Option<&str>, value: &str) -> NewRecord {
    NewRecord {
        key: key.map(str::to_string),
        value: value.to_string(),
        headers: Vec::new(),
        partition: None,
    }
}

fn group(name: &str) -> GroupName {
    GroupName::new(name).unwrap()
}

fn consumer(name: &str) -> ConsumerName {
    ConsumerName::new(name).unwrap()
}

fn shared(start: StartPosition) -> GroupConfig {
    GroupConfig {
        start,
        mode: GroupMode::Shared,
        session_timeout_ms: 30_000,
    }
}

async fn with_stream(harness: &dyn Harness, partitions: u32) -> Arc<dyn Engine> {
    let engine = harness.engine(EngineConfig::default()).await;
    engine
        .create_stream(stream("s"), config(partitions))
        .await
        .unwrap();
    engine
}

async fn values(engine: &Arc<dyn Engine>, partition: u32, from: u64) -> Vec<String> {
    engine
        .read_stream(&stream("s"), partition, ReadFrom::Offset(from), 1000, 0)
        .await
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.value)
        .collect()
}

pub async fn appended_records_read_back_in_order_with_dense_offsets(harness: &dyn Harness) {
    let engine = with_stream(harness, 1).await;
    let first = engine
        .append(
            &stream("s"),
            None,
            vec![record(None, "a"), record(None, "b")],
        )
        .await
        .unwrap();
    let second = engine
        .append(&stream("s"), None, vec![record(None, "c")])
        .await
        .unwrap();
    let offsets: Vec<u64> = first.iter().chain(&second).map(|a| a.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2]);
    assert_eq!(values(&engine, 0, 0).await, vec!["a", "b", "c"]);
    assert_eq!(values(&engine, 0, 1).await, vec!["b", "c"]);
    let read = engine
        .read_stream(&stream("s"), 0, ReadFrom::Offset(3), 10, 0)
        .await
        .unwrap();
    assert!(read.records.is_empty());
    assert_eq!(read.next_offset, 3);
    // Records are kept after they are read.
    assert_eq!(values(&engine, 0, 0).await.len(), 3);
}

pub async fn keyed_records_stay_in_one_partition(harness: &dyn Harness) {
    let engine = with_stream(harness, 4).await;
    let appended = engine
        .append(
            &stream("s"),
            None,
            (0..8)
                .map(|i| record(Some("user-7"), &format!("v{i}")))
                .collect(),
        )
        .await
        .unwrap();
    let partition = appended[0].partition;
    assert!(appended.iter().all(|a| a.partition == partition));
    let expected: Vec<String> = (0..8).map(|i| format!("v{i}")).collect();
    assert_eq!(
        values(&engine, partition, 0).await,
        expected,
        "in append order"
    );
}

pub async fn a_group_delivers_each_record_once_and_keeps_it_pending_until_acked(
    harness: &dyn Harness,
) {
    let engine = with_stream(harness, 1).await;
    engine
        .append(&stream("s"), None, vec![record(None, "old")])
        .await
        .unwrap();
    engine
        .create_group(&stream("s"), group("g"), shared(StartPosition::Latest))
        .await
        .unwrap();
    engine
        .append(
            &stream("s"),
            None,
            vec![record(None, "new-1"), record(None, "new-2")],
        )
        .await
        .unwrap();
    let got = engine
        .group_read(&stream("s"), &group("g"), &consumer("w1"), 10, 0)
        .await
        .unwrap();
    let got_values: Vec<&str> = got.iter().map(|r| r.record.value.as_str()).collect();
    assert_eq!(
        got_values,
        vec!["new-1", "new-2"],
        "a latest group skips what came before"
    );
    assert!(engine
        .group_read(&stream("s"), &group("g"), &consumer("w2"), 10, 0)
        .await
        .unwrap()
        .is_empty());
    let pending = engine
        .group_pending(&stream("s"), &group("g"), None, 10)
        .await
        .unwrap();
    assert_eq!(pending.count, 2);
    let first = RecordId {
        partition: got[0].record.partition,
        offset: got[0].record.offset,
    };
    let acked = engine
        .group_ack(&stream("s"), &group("g"), vec![first, first])
        .await
        .unwrap();
    assert!(acked[0].is_ok() && acked[1].is_err(), "{acked:?}");
    let pending = engine
        .group_pending(&stream("s"), &group("g"), None, 10)
        .await
        .unwrap();
    assert_eq!(pending.count, 1);
}

pub async fn claim_hands_idle_pending_records_to_another_consumer(harness: &dyn Harness) {
    let engine = with_stream(harness, 1).await;
    engine
        .create_group(&stream("s"), group("g"), shared(StartPosition::Earliest))
        .await
        .unwrap();
    engine
        .append(&stream("s"), None, vec![record(None, "job")])
        .await
        .unwrap();
    let got = engine
        .group_read(&stream("s"), &group("g"), &consumer("w1"), 1, 0)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let early = engine
        .group_claim(&stream("s"), &group("g"), &consumer("w2"), 5_000, 10)
        .await
        .unwrap();
    assert!(early.is_empty(), "not idle long enough");
    harness.advance(&engine, 5_001).await;
    let claimed = engine
        .group_claim(&stream("s"), &group("g"), &consumer("w2"), 5_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].record.value, "job");
    assert_eq!(claimed[0].delivery_count, 2);
}

pub async fn seek_moves_a_group_back(harness: &dyn Harness) {
    let engine = with_stream(harness, 1).await;
    engine
        .append(
            &stream("s"),
            None,
            vec![record(None, "a"), record(None, "b")],
        )
        .await
        .unwrap();
    engine
        .create_group(&stream("s"), group("g"), shared(StartPosition::Earliest))
        .await
        .unwrap();
    let got = engine
        .group_read(&stream("s"), &group("g"), &consumer("w"), 10, 0)
        .await
        .unwrap();
    let ids: Vec<RecordId> = got
        .iter()
        .map(|r| RecordId {
            partition: r.record.partition,
            offset: r.record.offset,
        })
        .collect();
    engine
        .group_ack(&stream("s"), &group("g"), ids)
        .await
        .unwrap();
    engine
        .group_seek(&stream("s"), &group("g"), None, StartPosition::Offset(1))
        .await
        .unwrap();
    let again = engine
        .group_read(&stream("s"), &group("g"), &consumer("w"), 10, 0)
        .await
        .unwrap();
    let values: Vec<&str> = again.iter().map(|r| r.record.value.as_str()).collect();
    assert_eq!(values, vec!["b"]);
}

pub async fn an_idempotent_producer_answers_a_repeat_with_the_original_offsets(
    harness: &dyn Harness,
) {
    let engine = with_stream(harness, 1).await;
    let producer = |sequence| ProducerSeq {
        producer: "p1".to_string(),
        sequence,
    };
    let first = engine
        .append(&stream("s"), Some(producer(1)), vec![record(None, "once")])
        .await
        .unwrap();
    let repeat = engine
        .append(&stream("s"), Some(producer(1)), vec![record(None, "once")])
        .await
        .unwrap();
    assert_eq!(first, repeat);
    assert_eq!(values(&engine, 0, 0).await, vec!["once"]);
    engine
        .append(&stream("s"), Some(producer(2)), vec![record(None, "next")])
        .await
        .unwrap();
    assert_eq!(values(&engine, 0, 0).await, vec!["once", "next"]);
}
