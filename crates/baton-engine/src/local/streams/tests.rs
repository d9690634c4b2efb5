//! Streams in the local engine: in memory, and durable on a simulated disk — restarts keep
//! records, offsets, groups (positions, pending, delivery counts) and producer state; bodies
//! are read back from the segment files; retention deletes segments without losing group
//! state; power loss loses no acknowledged append.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use baton_core::stream::{GroupMode, RECORD_BYTES_MAX};
use baton_core::ManualClock;
use baton_storage::{CrashMode, SimFs, SimRun, SyncPolicy};

use super::*;
use crate::StreamEngine;
use crate::StreamEngineError;
use crate::{Engine, EngineConfig};

pub(super) fn s(name: &str) -> StreamName {
    StreamName::new(name).unwrap()
}

pub(super) fn g(name: &str) -> GroupName {
    GroupName::new(name).unwrap()
}

pub(super) fn c(name: &str) -> ConsumerName {
    ConsumerName::new(name).unwrap()
}

pub(super) fn config(partitions: u32) -> StreamConfig {
    StreamConfig {
        partitions,
        retention_ms: None,
        retention_bytes: None,
        max_records: None,
    }
}

pub(super) fn record(key: Option<&str>, value: &str) -> NewRecord {
    NewRecord {
        key: key.map(str::to_string),
        value: value.to_string(),
        headers: vec![("h".to_string(), value.to_string())],
        partition: None,
    }
}

pub(super) fn group_config(mode: GroupMode) -> GroupConfig {
    GroupConfig {
        start: StartPosition::Earliest,
        mode,
        session_timeout_ms: 1000,
    }
}

pub(super) fn memory(clock: Arc<ManualClock>) -> LocalEngine {
    LocalEngine::in_memory(clock, EngineConfig::default())
}

pub(super) fn storage() -> StorageConfig {
    StorageConfig {
        data_dir: "/data".into(),
        sync: SyncPolicy::Always,
        segment_bytes_max: 1024,
        checkpoint_bytes_min: 64 * 1024 * 1024,
        repair: false,
        disk_free_min_bytes: 0,
        disk_reserve_bytes: 0,
        keys: None,
    }
}

pub(super) async fn durable(fs: &SimFs, clock: Arc<ManualClock>) -> LocalEngine {
    durable_with(fs, clock, 0).await
}

/// A durable engine whose disk-free alarm goes off below `disk_free_min_bytes`.
pub(super) async fn durable_with(
    fs: &SimFs,
    clock: Arc<ManualClock>,
    disk_free_min_bytes: u64,
) -> LocalEngine {
    let engine = LocalEngine::durable(
        clock,
        EngineConfig::default(),
        Arc::new(fs.clone()),
        StorageConfig {
            disk_free_min_bytes,
            ..storage()
        },
        false,
    )
    .unwrap();
    engine.recover().await.unwrap();
    engine
}

pub(super) fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)))
}

pub(super) fn values(records: &[StreamRecord]) -> Vec<&str> {
    records.iter().map(|r| r.value.as_str()).collect()
}

pub(super) fn segments(fs: &SimFs, stream: &str) -> Vec<u64> {
    wal::list_segments(fs, &PathBuf::from("/data/streams").join(stream))
        .unwrap()
        .into_iter()
        .map(|(first, _)| first)
        .collect()
}

#[tokio::test]
async fn append_then_read_returns_bodies_in_order() {
    let engine = memory(clock());
    engine.create_stream(s("s"), config(1)).await.unwrap();
    let appended = engine
        .append(&s("s"), None, vec![record(None, "a"), record(None, "b")])
        .await
        .unwrap();
    assert_eq!(
        appended.iter().map(|a| a.offset).collect::<Vec<_>>(),
        vec![0, 1]
    );
    let read = engine
        .read_stream(&s("s"), 0, ReadFrom::Offset(0), 10, 0)
        .await
        .unwrap();
    assert_eq!(values(&read.records), vec!["a", "b"]);
    assert_eq!(
        read.records[0].headers,
        vec![("h".to_string(), "a".to_string())]
    );
    assert_eq!(read.next_offset, 2);
}

#[tokio::test]
async fn create_is_idempotent_and_conflicts_on_other_attributes() {
    let engine = memory(clock());
    assert!(engine.create_stream(s("s"), config(2)).await.unwrap().1);
    assert!(!engine.create_stream(s("s"), config(2)).await.unwrap().1);
    assert!(matches!(
        engine.create_stream(s("s"), config(3)).await,
        Err(StreamEngineError::Stream(StreamError::StreamExists { .. }))
    ));
}

#[tokio::test]
async fn unknown_stream_is_an_error() {
    let engine = memory(clock());
    assert!(matches!(
        engine
            .append(&s("nope"), None, vec![record(None, "a")])
            .await,
        Err(StreamEngineError::Stream(
            StreamError::StreamNotFound { .. }
        ))
    ));
}

#[tokio::test]
async fn too_many_headers_and_oversized_records_change_nothing() {
    let engine = memory(clock());
    engine.create_stream(s("s"), config(1)).await.unwrap();
    let mut many = record(None, "a");
    many.headers = (0..=HEADERS_MAX)
        .map(|i| (format!("h{i}"), String::new()))
        .collect();
    assert!(matches!(
        engine.append(&s("s"), None, vec![many]).await,
        Err(StreamEngineError::Stream(StreamError::InvalidParameter {
            field: "headers",
            ..
        }))
    ));
    let big = record(None, &"x".repeat(RECORD_BYTES_MAX as usize));
    assert!(matches!(
        engine
            .append(&s("s"), None, vec![record(None, "ok"), big])
            .await,
        Err(StreamEngineError::Stream(StreamError::RecordTooLarge {
            index: 1,
            ..
        }))
    ));
    assert_eq!(engine.get_stream(&s("s")).await.unwrap().stats.records, 0);
}

#[tokio::test]
async fn a_long_poll_at_the_head_wakes_on_append() {
    let engine = Arc::new(memory(clock()));
    engine.create_stream(s("s"), config(1)).await.unwrap();
    let reader = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .read_stream(&s("s"), 0, ReadFrom::Offset(0), 10, 5_000)
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine
        .append(&s("s"), None, vec![record(None, "late")])
        .await
        .unwrap();
    let read = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(values(&read.records), vec!["late"]);
}

#[tokio::test]
async fn a_long_poll_ends_empty_when_its_wait_is_over() {
    let engine = memory(clock());
    engine.create_stream(s("s"), config(1)).await.unwrap();
    let read = engine
        .read_stream(&s("s"), 0, ReadFrom::Offset(0), 10, 30)
        .await
        .unwrap();
    assert!(read.records.is_empty());
    assert_eq!(read.next_offset, 0);
}

#[tokio::test]
async fn waiting_reads_are_bounded() {
    let engine = Arc::new(LocalEngine::in_memory(
        clock(),
        EngineConfig {
            max_waiting_receives: 1,
            ..EngineConfig::default()
        },
    ));
    engine.create_stream(s("s"), config(1)).await.unwrap();
    let first = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .read_stream(&s("s"), 0, ReadFrom::Offset(0), 1, 1_000)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        engine
            .read_stream(&s("s"), 0, ReadFrom::Offset(0), 1, 1_000)
            .await,
        Err(StreamEngineError::Engine(EngineError::TooManyWaiters {
            limit: 1
        }))
    ));
    engine.begin_shutdown();
    assert!(first.await.unwrap().unwrap().records.is_empty());
}

#[tokio::test]
async fn group_long_poll_wakes_on_append_and_retention_frees_memory_bodies() {
    let clock = clock();
    let engine = Arc::new(memory(clock.clone()));
    engine
        .create_stream(
            s("s"),
            StreamConfig {
                max_records: Some(1),
                ..config(1)
            },
        )
        .await
        .unwrap();
    engine
        .create_group(&s("s"), g("g"), group_config(GroupMode::Shared))
        .await
        .unwrap();
    let reader = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .group_read(&s("s"), &g("g"), &c("a"), 10, 5_000)
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine
        .append(&s("s"), None, vec![record(None, "x")])
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].record.value, "x");
    engine
        .append(&s("s"), None, vec![record(None, "y")])
        .await
        .unwrap();
    engine.tick().await;
    let slot = engine.streams.slot(&s("s")).unwrap();
    let Bodies::Memory { map, .. } = &slot.state.lock().bodies else {
        panic!("in memory");
    };
    assert_eq!(map.len(), 1, "retention frees the removed record's body");
}

#[tokio::test]
async fn durable_restart_keeps_records_groups_and_producers() {
    let fs = SimFs::new();
    let clock = clock();
    let engine = durable(&fs, clock.clone()).await;
    engine.create_stream(s("s"), config(2)).await.unwrap();
    let producer = ProducerSeq {
        producer: "p".to_string(),
        sequence: 1,
    };
    let first = engine
        .append(
            &s("s"),
            Some(producer.clone()),
            (0..6)
                .map(|i| record(Some(&format!("k{i}")), &format!("v{i}")))
                .collect(),
        )
        .await
        .unwrap();
    engine
        .create_group(&s("s"), g("g"), group_config(GroupMode::Shared))
        .await
        .unwrap();
    let got = engine
        .group_read(&s("s"), &g("g"), &c("a"), 4, 0)
        .await
        .unwrap();
    assert_eq!(got.len(), 4);
    clock.advance_ms(10);
    engine
        .group_ack(
            &s("s"),
            &g("g"),
            vec![RecordId {
                partition: got[0].record.partition,
                offset: got[0].record.offset,
            }],
        )
        .await
        .unwrap();
    clock.advance_ms(10);
    let claimed = engine
        .group_claim(&s("s"), &g("g"), &c("b"), 0, 1)
        .await
        .unwrap();
    assert_eq!(claimed[0].delivery_count, 2);
    let before = engine.get_stream(&s("s")).await.unwrap();
    let pending_before = engine
        .group_pending(&s("s"), &g("g"), None, 100)
        .await
        .unwrap();
    drop(engine);

    let engine = durable(&fs, clock.clone()).await;
    let after = engine.get_stream(&s("s")).await.unwrap();
    assert_eq!(after.config, before.config);
    assert_eq!(after.stats.partitions, before.stats.partitions);
    assert_eq!(after.stats.groups[0].lag, before.stats.groups[0].lag);
    let pending_after = engine
        .group_pending(&s("s"), &g("g"), None, 100)
        .await
        .unwrap();
    assert_eq!(pending_after, pending_before);
    // The retried batch lands once and answers the original offsets, after the restart too.
    let retry = engine
        .append(&s("s"), Some(producer), vec![record(None, "ignored")])
        .await
        .unwrap();
    assert_eq!(retry, first);
    // Bodies come back from disk.
    let mut all = Vec::new();
    for partition in 0..2 {
        let read = engine
            .read_stream(&s("s"), partition, ReadFrom::Offset(0), 100, 0)
            .await
            .unwrap();
        all.extend(read.records);
    }
    let mut got_values: Vec<String> = all.iter().map(|r| r.value.clone()).collect();
    got_values.sort();
    assert_eq!(
        got_values,
        (0..6).map(|i| format!("v{i}")).collect::<Vec<_>>()
    );
    // New appends continue the offsets.
    let next = engine
        .append(
            &s("s"),
            None,
            vec![NewRecord {
                partition: Some(0),
                ..record(None, "n")
            }],
        )
        .await
        .unwrap();
    assert_eq!(next[0].offset, before.stats.partitions[0].next_offset);
}

#[tokio::test]
async fn bodies_are_read_from_the_segment_files() {
    let fs = SimFs::new();
    let engine = durable(&fs, clock()).await;
    engine.create_stream(s("s"), config(1)).await.unwrap();
    engine
        .append(&s("s"), None, vec![record(None, "needle-body")])
        .await
        .unwrap();
    let slot = engine.streams.slot(&s("s")).unwrap();
    assert!(
        matches!(slot.state.lock().bodies, Bodies::Disk(_)),
        "no bodies in memory"
    );
    // Flip a bit inside the body on disk: the read must notice (it reads the file).
    let path = PathBuf::from("/data/streams/s").join(wal::segment_name(segments(&fs, "s")[0]));
    let contents = fs.contents(&path).unwrap();
    let at = contents
        .windows(b"needle-body".len())
        .position(|w| w == b"needle-body")
        .unwrap();
    fs.flip_bit(&path, at as u64, 0);
    assert!(matches!(
        engine
            .read_stream(&s("s"), 0, ReadFrom::Offset(0), 10, 0)
            .await,
        Err(StreamEngineError::Engine(
            EngineError::StorageUnavailable { .. }
        ))
    ));
}

#[tokio::test]
async fn retention_deletes_segments_and_group_state_survives_restart() {
    let fs = SimFs::new();
    let clock = clock();
    let engine = durable(&fs, clock.clone()).await;
    engine
        .create_stream(
            s("s"),
            StreamConfig {
                max_records: Some(5),
                ..config(1)
            },
        )
        .await
        .unwrap();
    engine
        .create_group(&s("s"), g("g"), group_config(GroupMode::Partitioned))
        .await
        .unwrap();
    for i in 0..60 {
        engine
            .append(
                &s("s"),
                None,
                vec![record(None, &format!("value-{i:04}-{}", "p".repeat(40)))],
            )
            .await
            .unwrap();
        if i % 7 == 0 {
            let got = engine
                .group_read(&s("s"), &g("g"), &c("a"), 3, 0)
                .await
                .unwrap();
            if let Some(first) = got.first() {
                engine
                    .group_ack(
                        &s("s"),
                        &g("g"),
                        vec![RecordId {
                            partition: 0,
                            offset: first.record.offset,
                        }],
                    )
                    .await
                    .unwrap();
            }
        }
    }
    assert!(
        segments(&fs, "s").len() > 3,
        "the log spans several segments"
    );
    engine.tick().await;
    engine.tick().await;
    let remaining = segments(&fs, "s");
    assert!(
        remaining.len() <= 3,
        "retention deleted old segments: {remaining:?}"
    );
    let read = engine
        .read_stream(&s("s"), 0, ReadFrom::Offset(55), 10, 0)
        .await
        .unwrap();
    assert_eq!(read.records.len(), 5);
    assert!(matches!(
        engine
            .read_stream(&s("s"), 0, ReadFrom::Offset(0), 10, 0)
            .await,
        Err(StreamEngineError::Stream(StreamError::OffsetExpired {
            first_offset: 55,
            ..
        }))
    ));
    let before = engine.get_stream(&s("s")).await.unwrap();
    let pending_before = engine
        .group_pending(&s("s"), &g("g"), None, 100)
        .await
        .unwrap();
    drop(engine);

    let engine = durable(&fs, clock).await;
    let after = engine.get_stream(&s("s")).await.unwrap();
    assert_eq!(after.stats.partitions, before.stats.partitions);
    assert_eq!(after.stats.groups[0].lag, before.stats.groups[0].lag);
    assert_eq!(
        engine
            .group_pending(&s("s"), &g("g"), None, 100)
            .await
            .unwrap(),
        pending_before
    );
    let read = engine
        .read_stream(&s("s"), 0, ReadFrom::Offset(55), 10, 0)
        .await
        .unwrap();
    assert_eq!(
        read.records[0].value,
        format!("value-0055-{}", "p".repeat(40))
    );
}

#[tokio::test]
async fn power_loss_keeps_every_acknowledged_append() {
    let fs = SimFs::new();
    let clock = clock();
    let engine = durable(&fs, clock.clone()).await;
    engine.create_stream(s("s"), config(1)).await.unwrap();
    for i in 0..20 {
        engine
            .append(
                &s("s"),
                None,
                vec![
                    record(None, &format!("a{i}")),
                    record(None, &format!("b{i}")),
                ],
            )
            .await
            .unwrap();
    }
    fs.power_off(CrashMode::Torn { keep_bytes: 7 });
    drop(engine);
    fs.fail_writes(None);
    let engine = durable(&fs, clock).await;
    let read = engine
        .read_stream(&s("s"), 0, ReadFrom::Offset(0), 1000, 0)
        .await
        .unwrap();
    assert_eq!(read.records.len(), 40);
    assert_eq!(read.records[39].value, "b19");
}

#[tokio::test]
async fn a_torn_batch_is_dropped_whole() {
    let fs = SimFs::new();
    let clock = clock();
    let engine = durable(&fs, clock.clone()).await;
    engine.create_stream(s("s"), config(1)).await.unwrap();
    engine
        .append(&s("s"), None, vec![record(None, "kept")])
        .await
        .unwrap();
    // Submit a three-record batch whose tail never reaches the disk.
    fs.fail_writes(Some(std::io::ErrorKind::BrokenPipe));
    let _ = engine
        .append(
            &s("s"),
            None,
            vec![record(None, "x"), record(None, "y"), record(None, "z")],
        )
        .await;
    drop(engine);
    fs.fail_writes(None);
    fs.crash(CrashMode::Torn { keep_bytes: 60 });
    let engine = durable(&fs, clock).await;
    let read = engine
        .read_stream(&s("s"), 0, ReadFrom::Offset(0), 10, 0)
        .await
        .unwrap();
    assert_eq!(values(&read.records), vec!["kept"]);
    let next = engine
        .append(&s("s"), None, vec![record(None, "after")])
        .await
        .unwrap();
    assert_eq!(next[0].offset, 1);
}

#[tokio::test]
async fn delete_is_durable_and_the_name_can_be_reused() {
    let fs = SimFs::new();
    let clock = clock();
    let engine = durable(&fs, clock.clone()).await;
    engine.create_stream(s("s"), config(1)).await.unwrap();
    engine
        .append(&s("s"), None, vec![record(None, "old")])
        .await
        .unwrap();
    engine.delete_stream(&s("s")).await.unwrap();
    assert!(matches!(
        engine.get_stream(&s("s")).await,
        Err(StreamEngineError::Stream(
            StreamError::StreamNotFound { .. }
        ))
    ));
    drop(engine);
    let engine = durable(&fs, clock.clone()).await;
    assert!(engine.list_streams().await.unwrap().is_empty());
    engine.create_stream(s("s"), config(1)).await.unwrap();
    engine
        .append(&s("s"), None, vec![record(None, "new")])
        .await
        .unwrap();
    drop(engine);
    let engine = durable(&fs, clock).await;
    let read = engine
        .read_stream(&s("s"), 0, ReadFrom::Offset(0), 10, 0)
        .await
        .unwrap();
    assert_eq!(values(&read.records), vec!["new"]);
}

#[tokio::test]
async fn seek_and_group_deletion_survive_restart() {
    let fs = SimFs::new();
    let clock = clock();
    let engine = durable(&fs, clock.clone()).await;
    engine.create_stream(s("s"), config(1)).await.unwrap();
    engine
        .append(
            &s("s"),
            None,
            (0..5).map(|i| record(None, &i.to_string())).collect(),
        )
        .await
        .unwrap();
    engine
        .create_group(&s("s"), g("g"), group_config(GroupMode::Shared))
        .await
        .unwrap();
    engine
        .create_group(&s("s"), g("gone"), group_config(GroupMode::Shared))
        .await
        .unwrap();
    engine
        .group_seek(&s("s"), &g("g"), None, StartPosition::Offset(3))
        .await
        .unwrap();
    engine.delete_group(&s("s"), &g("gone")).await.unwrap();
    drop(engine);
    let engine = durable(&fs, clock).await;
    let got = engine
        .group_read(&s("s"), &g("g"), &c("a"), 10, 0)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|r| r.record.offset).collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert!(matches!(
        engine.get_group(&s("s"), &g("gone")).await,
        Err(StreamEngineError::Stream(StreamError::GroupNotFound { .. }))
    ));
}

#[tokio::test]
async fn streams_beyond_the_limit_are_refused() {
    let engine = memory(clock());
    for n in 0..STREAMS_MAX {
        engine
            .create_stream(s(&format!("s{n}")), config(1))
            .await
            .unwrap();
    }
    assert!(matches!(
        engine.create_stream(s("one-more"), config(1)).await,
        Err(StreamEngineError::TooManyStreams { limit: STREAMS_MAX })
    ));
    // An identical create of an existing stream still answers.
    assert!(!engine.create_stream(s("s0"), config(1)).await.unwrap().1);
}

mod replay_property {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Append {
            n: usize,
            keyed: bool,
            producer: Option<u64>,
        },
        Read {
            consumer: u8,
            max: u32,
        },
        Ack {
            n: usize,
        },
        Claim {
            consumer: u8,
            min_idle_ms: u64,
        },
        Seek {
            offset: u64,
        },
        Advance {
            ms: u64,
        },
        Tick,
        Restart,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1usize..6, any::<bool>(), prop::option::of(0u64..4))
                .prop_map(|(n, keyed, producer)| Op::Append { n, keyed, producer }),
            3 => (0u8..3, 1u32..6).prop_map(|(consumer, max)| Op::Read { consumer, max }),
            2 => (0usize..4).prop_map(|n| Op::Ack { n }),
            1 => (0u8..3, 0u64..100).prop_map(|(consumer, min_idle_ms)| Op::Claim { consumer, min_idle_ms }),
            1 => (0u64..10).prop_map(|offset| Op::Seek { offset }),
            2 => (1u64..500).prop_map(|ms| Op::Advance { ms }),
            2 => Just(Op::Tick),
            2 => Just(Op::Restart),
        ]
    }

    /// Everything a client can observe, as of the clock's now.
    async fn observe(engine: &LocalEngine) -> (StreamView, PendingView, Vec<StreamRecord>) {
        let view = engine.get_stream(&s("s")).await.unwrap();
        let pending = engine
            .group_pending(&s("s"), &g("g"), None, 100_000)
            .await
            .unwrap();
        let mut records = Vec::new();
        for p in &view.stats.partitions {
            let read = engine
                .read_stream(
                    &s("s"),
                    p.partition,
                    ReadFrom::Offset(p.first_offset),
                    READ_MAX,
                    0,
                )
                .await
                .unwrap();
            records.extend(read.records);
        }
        // Live consumers are not durable; everything else is.
        let mut view = view;
        for group in &mut view.stats.groups {
            group.consumers.clear();
        }
        (view, pending, records)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn a_restart_recovers_exactly_what_was_acknowledged(
            ops in prop::collection::vec(op(), 1..60),
            shared in any::<bool>(),
            max_records in prop::option::of(3u64..12),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let fs = SimFs::new();
                let clock = clock();
                let mut engine = durable(&fs, clock.clone()).await;
                engine
                    .create_stream(s("s"), StreamConfig { max_records, ..config(2) })
                    .await
                    .unwrap();
                let mode = if shared { GroupMode::Shared } else { GroupMode::Partitioned };
                engine.create_group(&s("s"), g("g"), group_config(mode)).await.unwrap();
                let mut n = 0u64;
                for op in ops {
                    match op {
                        Op::Append { n: count, keyed, producer } => {
                            let records = (0..count)
                                .map(|i| {
                                    n += 1;
                                    let key = format!("k{}", i % 3);
                                    record(keyed.then_some(key.as_str()), &format!("value-{n}-{}", "x".repeat(30)))
                                })
                                .collect();
                            let producer = producer.map(|sequence| ProducerSeq { producer: "p".to_string(), sequence });
                            let _ = engine.append(&s("s"), producer, records).await;
                        }
                        Op::Read { consumer, max } => {
                            let _ = engine.group_read(&s("s"), &g("g"), &c(&format!("c{consumer}")), max, 0).await;
                        }
                        Op::Ack { n } => {
                            let pending = engine.group_pending(&s("s"), &g("g"), None, n.max(1)).await.unwrap();
                            let ids: Vec<RecordId> = pending.entries.iter().take(n).map(|p| p.id).collect();
                            if !ids.is_empty() {
                                engine.group_ack(&s("s"), &g("g"), ids).await.unwrap();
                            }
                        }
                        Op::Claim { consumer, min_idle_ms } => {
                            engine.group_claim(&s("s"), &g("g"), &c(&format!("c{consumer}")), min_idle_ms, 10).await.unwrap();
                        }
                        Op::Seek { offset } => {
                            let _ = engine.group_seek(&s("s"), &g("g"), None, StartPosition::Offset(offset)).await;
                        }
                        Op::Advance { ms } => clock.advance_ms(ms),
                        Op::Tick => engine.tick().await,
                        Op::Restart => {
                            let before = observe(&engine).await;
                            drop(engine);
                            engine = durable(&fs, clock.clone()).await;
                            let after = observe(&engine).await;
                            prop_assert_eq!(&after.0, &before.0);
                            prop_assert_eq!(&after.1, &before.1);
                            prop_assert_eq!(&after.2, &before.2);
                        }
                    }
                }
                Ok(())
            })?;
        }
    }
}

/// Concurrent appenders (and the retention tick) when the power goes at a random moment:
/// after recovery every acknowledged record is there exactly once, offsets are dense, and the
/// stream takes appends again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_loss_under_concurrent_appends_loses_no_acknowledged_record() {
    let mut total_acked = 0;
    for schedule in SimRun::from_env(0x5EED_2026, 12).schedules() {
        let (round, mut rng) = (schedule.index, schedule.rng());
        let fs = SimFs::new();
        let clock = clock();
        let engine = Arc::new(durable(&fs, clock.clone()).await);
        engine.create_stream(s("s"), config(3)).await.unwrap();
        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut tasks = Vec::new();
        for producer in 0..3 {
            let engine = engine.clone();
            let acked = acked.clone();
            tasks.push(tokio::spawn(async move {
                for batch in 0..1000 {
                    let values: Vec<String> = (0..3)
                        .map(|i| format!("r{round}-p{producer}-b{batch}-{i}"))
                        .collect();
                    let records = values.iter().map(|v| record(Some(v), v)).collect();
                    match engine.append(&s("s"), None, records).await {
                        Ok(_) => acked.lock().extend(values),
                        Err(_) => return,
                    }
                    if batch % 10 == 0 {
                        engine.tick().await;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_micros(rng.below(20_000))).await;
        fs.power_off(CrashMode::Torn {
            keep_bytes: rng.below(300),
        });
        for task in tasks {
            task.await.unwrap();
        }
        drop(Arc::try_unwrap(engine).ok());
        fs.fail_writes(None);

        let engine = durable(&fs, clock).await;
        let view = engine.get_stream(&s("s")).await.unwrap();
        let mut found = Vec::new();
        for p in &view.stats.partitions {
            let mut offset = p.first_offset;
            loop {
                let read = engine
                    .read_stream(&s("s"), p.partition, ReadFrom::Offset(offset), READ_MAX, 0)
                    .await
                    .unwrap();
                for (i, r) in read.records.iter().enumerate() {
                    assert_eq!(r.offset, offset + i as u64, "offsets are dense");
                }
                found.extend(read.records.iter().map(|r| r.value.clone()));
                if read.next_offset == offset {
                    break;
                }
                offset = read.next_offset;
            }
        }
        total_acked += acked.lock().len();
        let found_set: std::collections::BTreeSet<&String> = found.iter().collect();
        assert_eq!(
            found_set.len(),
            found.len(),
            "{schedule}: a record is there twice"
        );
        for value in acked.lock().iter() {
            assert!(
                found_set.contains(value),
                "{schedule}: acknowledged {value} lost"
            );
        }
        engine
            .append(&s("s"), None, vec![record(None, "after")])
            .await
            .unwrap();
    }
    assert!(
        total_acked > 0,
        "the power went before anything was acknowledged"
    );
}
