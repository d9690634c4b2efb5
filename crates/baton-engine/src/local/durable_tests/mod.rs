//! The durable engine on a simulated disk: replaying the log (and checkpoints) reproduces the
//! live state exactly; power loss at random moments under concurrent load loses no
//! acknowledged message and brings back no acked one; a failing disk refuses writes, keeps
//! reads, and recovers by itself.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use baton_core::{
    ArchivedSnapshot, DeadLetterPolicy, DedupSnapshot, ManualClock, MessageSnapshot,
    QueueHeaderSnapshot, QueueLimits, RetryPolicy,
};
use baton_storage::checkpoint;
use baton_storage::wal;
use baton_storage::{CrashMode, ReplayMode, SimFs, SyncPolicy};
use proptest::prelude::*;

use super::*;
use crate::durable::replay::ReplayState;
use crate::new_message_id;

mod completions;
mod power_loss;
mod replay;
mod restart;

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

fn open(fs: &SimFs, clock: Arc<ManualClock>, checkpoint_bytes_min: u64) -> LocalEngine {
    open_with(fs, clock, storage(checkpoint_bytes_min))
}

fn open_with(fs: &SimFs, clock: Arc<dyn Clock>, storage: StorageConfig) -> LocalEngine {
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

#[derive(Debug, PartialEq)]
struct FullSnapshot {
    meta: QueueMeta,
    header: QueueHeaderSnapshot,
    messages: Vec<MessageSnapshot>,
    dedup: Vec<(String, DedupSnapshot)>,
    archive: Vec<ArchivedSnapshot>,
}

fn full_snapshot(queue: &Queue, meta: QueueMeta) -> FullSnapshot {
    let mut messages = Vec::new();
    queue.snapshot_messages(|m| messages.push(m));
    let mut dedup = Vec::new();
    queue.snapshot_dedup(|d| dedup.push((d.dedup_id.to_string(), d)));
    dedup.sort_by(|a, b| a.0.cmp(&b.0));
    let mut archive = Vec::new();
    queue.snapshot_archive(|a| archive.push(a));
    FullSnapshot {
        meta,
        header: queue.snapshot_header(),
        messages,
        dedup,
        archive,
    }
}

/// The live state, advanced to `now` (delays that ended are not logged: any later operation
/// reproduces them, so both sides are compared as of the same moment).
fn live(engine: &LocalEngine, now: Timestamp) -> BTreeMap<QueueName, FullSnapshot> {
    engine
        .queues
        .read()
        .iter()
        .map(|(name, slot)| {
            let mut queue = slot.queue.lock();
            queue.advance(now);
            (
                name.clone(),
                full_snapshot(&queue, slot.meta.lock().clone()),
            )
        })
        .collect()
}

/// What a recovery would rebuild from the disk as it is now (without cutting anything).
fn replayed(fs: &SimFs, now: Timestamp) -> BTreeMap<QueueName, FullSnapshot> {
    let dir = std::path::Path::new("/data/wal");
    let mut state = ReplayState::new(QueueLimits::default());
    checkpoint::load_newest(fs, dir, |kind, payload| {
        state.apply_checkpoint(kind, payload)
    })
    .unwrap();
    wal::replay(
        fs,
        dir,
        state.first_log_lsn(),
        ReplayMode::Verify,
        |lsn, kind, payload| state.apply_record(lsn, kind, payload),
    )
    .unwrap();
    assert!(
        state.pending.is_empty(),
        "a move without its arrival in a log that did not crash"
    );
    state
        .queues
        .iter_mut()
        .map(|(name, queue)| {
            queue.advance(now);
            (
                name.clone(),
                full_snapshot(queue, state.metas.get(name).cloned().unwrap_or_default()),
            )
        })
        .collect()
}

async fn setup_queues(engine: &LocalEngine) {
    engine
        .create_queue(name("dlq"), QueueConfig::default())
        .await
        .unwrap();
    let q = QueueConfig {
        visibility_timeout_ms: 1_000,
        dead_letter: Some(DeadLetterPolicy {
            queue: name("dlq"),
            max_receive_count: 3,
        }),
        retry: Some(RetryPolicy {
            base_delay_ms: 100,
            max_delay_ms: 1_000,
        }),
        ..QueueConfig::default()
    };
    engine.create_queue(name("q"), q).await.unwrap();
    engine
        .create_queue(
            name("fdlq.fifo"),
            QueueConfig {
                fifo: true,
                ..QueueConfig::default()
            },
        )
        .await
        .unwrap();
    let f = QueueConfig {
        fifo: true,
        visibility_timeout_ms: 1_000,
        dead_letter: Some(DeadLetterPolicy {
            queue: name("fdlq.fifo"),
            max_receive_count: 2,
        }),
        ..QueueConfig::default()
    };
    engine.create_queue(name("f.fifo"), f).await.unwrap();
}
