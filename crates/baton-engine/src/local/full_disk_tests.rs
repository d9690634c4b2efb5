//! The durable engine on a disk that fills up (the simulated disk with a capacity, and random
//! ENOSPC at every kind of call): producers are refused below `disk_free_min` while consumers
//! drain, the node accepts writes again by itself once space is back, a restart on a full disk
//! starts, and whatever the schedule, every acknowledged send survives a reopen and a power
//! loss, nothing acked comes back, and the data directory always opens.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use baton_core::ManualClock;
use baton_storage::{CrashMode, SimFaults, SimFs, SyncPolicy};

use super::*;
use crate::new_message_id;
use crate::StreamEngineError;
use crate::{NewRecord, StreamEngine};
use baton_core::{StreamConfig, StreamName};

fn name(s: &str) -> QueueName {
    QueueName::new(s).unwrap()
}

const SEGMENT_BYTES: u64 = 64 * 1024;

fn storage(disk_free_min_bytes: u64, disk_reserve_bytes: u64) -> StorageConfig {
    StorageConfig {
        data_dir: "/data".into(),
        sync: SyncPolicy::Always,
        segment_bytes_max: SEGMENT_BYTES,
        checkpoint_bytes_min: 1 << 40,
        repair: false,
        disk_free_min_bytes,
        disk_reserve_bytes,
        keys: None,
    }
}

fn open(fs: &SimFs, clock: Arc<dyn Clock>, storage: StorageConfig) -> LocalEngine {
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

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)))
}

/// Sends one `body_bytes` message per call until the engine refuses; returns the bodies it
/// acknowledged and the refusal.
async fn fill(engine: &LocalEngine, queue: &str, body_bytes: usize) -> (Vec<String>, EngineError) {
    let mut acknowledged = Vec::new();
    for n in 0..100_000u64 {
        let body = format!("{n:08}-{}", "x".repeat(body_bytes));
        match engine
            .send(
                &name(queue),
                vec![SendEntry::new(new_message_id(), body.as_str())],
            )
            .await
        {
            Ok(_) => acknowledged.push(body),
            Err(error) => return (acknowledged, error),
        }
    }
    panic!("the disk never filled");
}

/// Lets the next tick checkpoint for low disk again at once.
fn forget_low_disk_checkpoint(engine: &LocalEngine) {
    *engine
        .durable
        .as_ref()
        .unwrap()
        .last_low_disk_checkpoint
        .lock() = None;
}

/// Receives and acks everything visible; returns the bodies.
async fn drain(engine: &LocalEngine, queue: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let got = engine
            .receive(
                &name(queue),
                ReceiveOptions {
                    max: 100,
                    wait_ms: Some(0),
                    visibility_timeout_ms: Some(600_000),
                },
            )
            .await
            .unwrap();
        if got.is_empty() {
            return bodies;
        }
        let results = engine
            .ack(&name(queue), got.iter().map(|d| d.receipt).collect())
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        bodies.extend(got.iter().map(|d| d.body.to_string()));
    }
}

/// Receives everything visible without acking.
async fn peek_all(engine: &LocalEngine, queue: &str) -> BTreeSet<String> {
    let mut bodies = BTreeSet::new();
    loop {
        let options = ReceiveOptions {
            max: 1000,
            wait_ms: Some(0),
            visibility_timeout_ms: Some(600_000),
        };
        let got = engine.receive(&name(queue), options).await.unwrap();
        if got.is_empty() {
            return bodies;
        }
        bodies.extend(got.iter().map(|d| d.body.to_string()));
    }
}

/// The reported fill, scaled down: one message per send until the broker refuses. With the
/// alarm the refusal is `DiskLow` before the disk is full; consumers drain, a checkpoint frees
/// the log, and sends are accepted again without a restart.
#[tokio::test]
async fn a_filling_disk_refuses_sends_lets_consumers_drain_and_resumes_by_itself() {
    let fs = SimFs::new();
    fs.set_capacity(Some(1536 * 1024));
    let engine = open(&fs, clock(), storage(3 * SEGMENT_BYTES, SEGMENT_BYTES));
    engine.tick().await;
    assert!(engine.disk_status().unwrap().reserve_present);
    engine
        .create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    let (acknowledged, refused) = fill(&engine, "q", 15 * 1024).await;
    assert!(
        matches!(refused, EngineError::DiskLow { min_bytes, .. } if min_bytes == 3 * SEGMENT_BYTES),
        "{refused:?}"
    );
    assert!(acknowledged.len() > 20, "{}", acknowledged.len());
    let status = engine.disk_status().unwrap();
    eprintln!("after fill {status:?} used {}", fs.used_bytes());
    assert!(status.low && status.refused_writes >= 1, "{status:?}");
    assert!(
        engine.storage_failure().is_none(),
        "the alarm is not a failure"
    );
    // Topic publishes and stream appends are refused too; creating things is not.
    engine
        .create_stream(
            StreamName::new("s").unwrap(),
            StreamConfig {
                partitions: 1,
                retention_ms: None,
                retention_bytes: None,
                max_records: None,
            },
        )
        .await
        .unwrap();
    let appended = engine
        .append(
            &StreamName::new("s").unwrap(),
            None,
            vec![NewRecord {
                key: None,
                value: "v".to_string(),
                headers: Vec::new(),
                partition: None,
            }],
        )
        .await;
    assert!(
        matches!(
            appended,
            Err(StreamEngineError::Engine(EngineError::DiskLow { .. }))
        ),
        "{appended:?}"
    );
    // Consumers drain the queue that filled the disk.
    let drained = drain(&engine, "q").await;
    eprintln!(
        "after drain {:?} used {}",
        engine.disk_status(),
        fs.used_bytes()
    );
    assert_eq!(drained, acknowledged, "every acknowledged send, in order");
    // The tick checkpoints (the log is all dead now), which frees it; the alarm goes off.
    for _ in 0..3 {
        forget_low_disk_checkpoint(&engine);
        engine.tick().await;
    }
    let status = engine.disk_status().unwrap();
    assert!(!status.low, "{status:?}");
    engine
        .send(&name("q"), vec![SendEntry::new(new_message_id(), "after")])
        .await
        .unwrap();
    assert_eq!(drain(&engine, "q").await, vec!["after".to_string()]);
}

/// Without the alarm the disk really fills: the write that hit ENOSPC is not acknowledged, the
/// engine reopens from disk by itself, and again and again; every acknowledged send is there
/// after each reopen and after a restart, and the directory always opens (it did not: an empty
/// new segment once made recovery rewind the segment before it).
#[tokio::test]
async fn sends_into_a_full_disk_without_the_alarm_lose_nothing_acknowledged_across_reopens() {
    let fs = SimFs::new();
    fs.set_capacity(Some(1024 * 1024));
    let config = storage(0, 0);
    let engine = open(&fs, clock(), config.clone());
    engine
        .create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    let mut acknowledged = Vec::new();
    for round in 0..3 {
        let (more, refused) = fill(&engine, "q", 15 * 1024).await;
        assert!(
            matches!(refused, EngineError::DiskFull { .. }),
            "round {round}: {refused:?}"
        );
        acknowledged.extend(more);
        assert!(engine.storage_failure().is_some());
        // Reads go on while the log is stopped.
        assert!(engine.get_queue(&name("q")).await.is_ok());
        // The tick reopens from disk (the full disk does not keep it from opening).
        *engine.durable.as_ref().unwrap().last_reopen_for_tests() = None;
        engine.tick().await;
        assert!(engine.is_ready());
        // A little space comes back each round, as if an operator freed some.
        fs.set_capacity(Some(fs.used_bytes() + 200 * 1024));
    }
    drop(engine);
    let engine = open(&fs, clock(), config);
    let found = peek_all(&engine, "q").await;
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|b| !found.contains(*b))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged sends lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
}

/// A restart on a disk with no space left at all starts, and consumers drain it.
#[tokio::test]
async fn a_restart_on_a_full_disk_starts_and_consumers_can_drain() {
    let fs = SimFs::new();
    fs.set_capacity(Some(1024 * 1024));
    let config = storage(2 * SEGMENT_BYTES, SEGMENT_BYTES);
    let engine = open(&fs, clock(), config.clone());
    engine.tick().await;
    engine
        .create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    let (acknowledged, refused) = fill(&engine, "q", 15 * 1024).await;
    assert!(
        matches!(refused, EngineError::DiskLow { .. }),
        "{refused:?}"
    );
    drop(engine);
    // Something else takes every byte left while the broker is down.
    fs.set_capacity(Some(fs.used_bytes()));
    let engine = open(&fs, clock(), config);
    assert!(engine.disk_status().unwrap().low);
    let drained = drain(&engine, "q").await;
    assert_eq!(drained, acknowledged);
}

use baton_storage::{SimRng, SimRun, SimSchedule};

#[derive(Default)]
struct Ledger {
    /// Bodies of acknowledged sends.
    acknowledged: BTreeSet<String>,
    /// Bodies whose ack succeeded: they must never come back.
    acked: BTreeSet<String>,
    /// Bodies whose ack failed: their record may or may not have reached the disk.
    maybe_acked: BTreeSet<String>,
}

/// A small disk and a storage configuration drawn from `rng`.
fn random_disk(rng: &mut SimRng) -> (SimFs, StorageConfig) {
    let fs = SimFs::new();
    fs.set_capacity(Some(96 * 1024 + rng.below(160 * 1024)));
    let config = StorageConfig {
        segment_bytes_max: 2048 + rng.below(4096),
        // Half the schedules never checkpoint: then every segment holds acknowledged records.
        checkpoint_bytes_min: match rng.below(2) {
            0 => 2048 + rng.below(8192),
            _ => 1 << 40,
        },
        ..storage(rng.pick(&[0, 8 * 1024, 24 * 1024]), rng.pick(&[0, 4096]))
    };
    (fs, config)
}

/// Sends 60 batches of one to three bodies of random length.
async fn produce(engine: &LocalEngine, ledger: &Mutex<Ledger>, rng: &mut SimRng) {
    for n in 0..60u64 {
        let bodies: Vec<String> = (0..1 + rng.below(3))
            .map(|i| format!("m{n}-{i}-{}", "p".repeat(rng.below(600) as usize)))
            .collect();
        let entries = bodies
            .iter()
            .map(|b| SendEntry::new(new_message_id(), b.as_str()))
            .collect();
        if engine.send(&name("q"), entries).await.is_ok() {
            ledger.lock().acknowledged.extend(bodies);
        }
        tokio::task::yield_now().await;
    }
}

/// Receives 80 times; nacks one delivery in three and acks the others.
async fn consume(engine: &LocalEngine, ledger: &Mutex<Ledger>, rng: &mut SimRng) {
    for _ in 0..80u64 {
        let options = ReceiveOptions {
            max: 1 + rng.below(4) as u32,
            wait_ms: Some(0),
            visibility_timeout_ms: Some(if rng.one_in(4) { 0 } else { 60_000 }),
        };
        if let Ok(got) = engine.receive(&name("q"), options).await {
            for delivery in got {
                let body = delivery.body.to_string();
                if rng.one_in(3) {
                    let _ = engine.nack(&name("q"), vec![delivery.receipt], None).await;
                    continue;
                }
                match engine.ack(&name("q"), vec![delivery.receipt]).await {
                    Ok(results) if results[0].is_ok() => {
                        ledger.lock().acked.insert(body);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        ledger.lock().maybe_acked.insert(body);
                    }
                }
            }
        }
        tokio::task::yield_now().await;
    }
}

/// Ticks 40 times with the reopen and low-disk checkpoint back-offs cleared.
async fn tick(engine: &LocalEngine) {
    for _ in 0..40 {
        *engine.durable.as_ref().unwrap().last_reopen_for_tests() = None;
        forget_low_disk_checkpoint(engine);
        engine.tick().await;
        tokio::task::yield_now().await;
    }
}

/// Every acknowledged send is in `found` unless its ack may have landed; no acked one is.
fn check_ledger(schedule: &SimSchedule, ledger: &Ledger, found: &BTreeSet<String>) {
    let lost: Vec<&String> = ledger
        .acknowledged
        .iter()
        .filter(|b| {
            !found.contains(*b) && !ledger.acked.contains(*b) && !ledger.maybe_acked.contains(*b)
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{schedule}: lost {} acknowledged sends, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    let back: Vec<&String> = ledger.acked.iter().filter(|b| found.contains(*b)).collect();
    assert!(
        back.is_empty(),
        "{schedule}: acked messages came back: {back:?}"
    );
}

/// One schedule: a producer, a consumer and a ticker (checkpoints, reopens) run concurrently
/// on a small disk with random ENOSPC at every kind of call; then the faults stop, the power
/// goes out, and the directory must open with every acknowledged send and no acked one.
async fn full_disk_schedule(
    schedule: SimSchedule,
    injected: &mut BTreeSet<baton_storage::SimCall>,
) {
    let mut rng = schedule.rng();
    let (fs, config) = random_disk(&mut rng);
    let clock: Arc<dyn Clock> = Arc::new(crate::SystemClock);
    let engine = open(&fs, clock.clone(), config.clone());
    engine
        .create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    fs.set_faults(Some(SimFaults {
        seed: rng.next_u64(),
        one_in: 3 + rng.below(30) as u32,
    }));
    let ledger = Mutex::new(Ledger::default());
    let (mut producer_rng, mut consumer_rng) = (rng.fork(), rng.fork());
    tokio::join!(
        produce(&engine, &ledger, &mut producer_rng),
        consume(&engine, &ledger, &mut consumer_rng),
        tick(&engine)
    );
    drop(engine);
    injected.extend(fs.faults_injected().into_keys());
    fs.set_faults(None);
    fs.crash(CrashMode::Torn {
        keep_bytes: rng.below(300),
    });
    // More room, so the check below can receive everything.
    fs.set_capacity(None);
    let engine = LocalEngine::durable(
        clock,
        EngineConfig::default(),
        Arc::new(fs.clone()),
        config,
        false,
    )
    .unwrap();
    if let Err(error) = engine.reload() {
        panic!("{schedule}: the data directory does not open: {error}");
    }
    let found = peek_all(&engine, "q").await;
    check_ledger(&schedule, &ledger.lock(), &found);
}

#[tokio::test]
async fn random_enospc_under_concurrent_load_loses_nothing_acknowledged_and_always_reopens() {
    let mut injected = BTreeSet::new();
    for schedule in SimRun::from_env(0xF011, 2000).schedules() {
        full_disk_schedule(schedule, &mut injected).await;
    }
    use baton_storage::SimCall;
    for call in [
        SimCall::Write,
        SimCall::Prepare,
        SimCall::Sync,
        SimCall::Create,
        SimCall::Rename,
        SimCall::SyncDir,
    ] {
        assert!(
            injected.contains(&call),
            "no schedule faulted {call:?}: {injected:?}"
        );
    }
}
