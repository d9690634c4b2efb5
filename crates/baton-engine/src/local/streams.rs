//! Streams in the local engine: the registry of `baton-core` streams, their record bodies
//! (in memory, or on disk in a log per stream), long polls at the head, and retention.
//!
//! # Storage (durable engine)
//! Each stream has its own write-ahead log under `<data_dir>/streams/<name>/`: the same
//! segments, crc32c frames, group commit and torn-tail recovery as the main log
//! (`baton_storage::Wal`), holding only `StreamOp` frames. Every appended record is one frame;
//! group operations (deliveries, claims, acks, seeks, creations) are frames too, logged as
//! their outcomes so replay does not depend on timing. A snapshot frame (configuration,
//! offsets, groups, producers) opens the log and is written again before retention deletes
//! segments, so the log can always be replayed from its oldest remaining segment.
//!
//! The core keeps per record only `(timestamp, size, location = LSN)`; this module keeps per
//! LSN the frame's start in the log's byte stream (`LogIndex::frame_starts`), which with the
//! list of segments gives each record's file and position. Bodies are read with positioned
//! reads outside every lock. A stream's data may therefore be far larger than memory.
//!
//! # Durability and visibility
//! An append is applied to the core and its frames submitted while the stream's lock is held
//! (so log order is application order), then the caller waits for the frames to be durable and
//! only then *publishes* them: readers never see a record a crash could lose. Group operations
//! are applied, logged under the lock, and answered once durable. A failed log refuses writes
//! (503) and keeps serving reads; a restart recovers from disk.
//!
//! # Locking
//! The registry is an `RwLock`; each stream has a `Mutex` around its state. No lock is held
//! across an `.await` or a body read. Retention runs in the tick: trimming the index is
//! O(records removed) under the lock; deleting segment files happens after it is released,
//! so it never blocks appends.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_core::stream::{
    AppendOutcome, AppendSpec, Appended, ConsumerName, Delivered, Entry, Group, GroupConfig,
    GroupMode, GroupName, ProducerSeq, ReadFrom, RecordId, StartPosition, Stream, HEADERS_MAX,
    READ_MAX, WAIT_MS_MAX,
};
use baton_core::{StreamConfig, StreamError, StreamName, Timestamp};
use baton_storage::frame::{self, FRAME_OVERHEAD_BYTES, HEADER_BYTES};
use baton_storage::records::{decode, encode};
use baton_storage::stream_records::{
    GroupV1, PendingV1, ProducerV1, StartV1, StreamConfigV1, StreamOp, StreamRecordV1,
    StreamSnapshotV1, KIND_STREAM_OP,
};
use baton_storage::wal::{self, LogEnd};
use baton_storage::{DiskSpace, FileSystem, ReplayMode, SyncPolicy, Wal, WalConfig};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use super::LocalEngine;
use crate::durable::StorageConfig;
use crate::{
    EngineError, GroupRecord, GroupView, NewRecord, PendingView, StreamRead, StreamRecord,
    StreamView, STREAMS_MAX,
};

/// Where durable streams live and how their logs behave.
pub(crate) struct Disk {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    sync: SyncPolicy,
    segment_bytes_max: u64,
    repair: bool,
    space: Arc<DiskSpace>,
}

/// How often a stream whose log stopped retries reopening it.
const REOPEN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The streams of one engine.
pub(crate) struct Streams {
    registry: RwLock<BTreeMap<StreamName, Arc<Slot>>>,
    disk: Option<Disk>,
    last_reopen: Mutex<Option<std::time::Instant>>,
}

/// An append submitted to a stream's log (see `LocalEngine::stream_append_submit`).
#[derive(Clone)]
pub(super) struct SubmittedAppend {
    slot: Arc<Slot>,
    pub appended: Vec<Appended>,
    /// The log and the LSN of the append's last frame (durable engine, not a duplicate).
    pub logged: Option<(Arc<Wal>, u64)>,
}

impl SubmittedAppend {
    /// Whether the frames are durable now (true when nothing was logged).
    pub fn is_durable(&self) -> bool {
        use std::future::Future;
        let Some((wal, lsn)) = &self.logged else {
            return true;
        };
        // `wait_durable` resolves on its first poll when the record is already durable.
        let future = std::pin::pin!(wal.wait_durable(*lsn));
        let waker = std::task::Waker::noop();
        matches!(
            future.poll(&mut std::task::Context::from_waker(waker)),
            std::task::Poll::Ready(Ok(()))
        )
    }
}

struct Slot {
    state: Mutex<State>,
    /// Woken when records are published, and on deletion and shutdown.
    published: Notify,
    dir: PathBuf,
}

struct State {
    stream: Stream,
    bodies: Bodies,
    deleted: bool,
}

/// The body of a record kept in memory.
#[derive(Debug)]
struct Body {
    key: Option<String>,
    value: String,
    headers: Vec<(String, String)>,
}

enum Bodies {
    Memory {
        map: HashMap<u64, Arc<Body>>,
        next_location: u64,
    },
    Disk(LogIndex),
}

/// Where each frame of a stream's log is.
struct LogIndex {
    wal: Arc<Wal>,
    /// LSN of `frame_starts[0]`: the first frame of the oldest remaining segment.
    base_lsn: u64,
    /// Per LSN from `base_lsn`, where its frame starts in the log's byte stream (frames only,
    /// segment headers not counted).
    frame_starts: VecDeque<u64>,
    next_frame_start: u64,
    /// First LSNs of the segments, ascending, as last listed.
    segments: Vec<u64>,
    /// Every LSN up to this one was durable when `segments` was listed.
    listed_upto: u64,
    /// LSN of the newest snapshot frame.
    snapshot_lsn: u64,
    /// Every record up to this LSN is durable and published.
    published_lsn: u64,
}

impl LogIndex {
    fn next_lsn(&self) -> u64 {
        self.base_lsn + self.frame_starts.len() as u64
    }

    /// Submits `op`; returns its LSN.
    fn submit(&mut self, op: &StreamOp) -> Result<u64, EngineError> {
        let payload = encode(op);
        let lsn = self
            .wal
            .submit(KIND_STREAM_OP, &payload)
            .map_err(crate::durable::storage_error)?;
        assert_eq!(lsn, self.next_lsn(), "only this stream submits to its log");
        self.frame_starts.push_back(self.next_frame_start);
        self.next_frame_start += (FRAME_OVERHEAD_BYTES + payload.len()) as u64;
        Ok(lsn)
    }

    fn frame_start(&self, lsn: u64) -> Option<u64> {
        let index = usize::try_from(lsn.checked_sub(self.base_lsn)?).ok()?;
        self.frame_starts.get(index).copied()
    }

    /// The file, position and length of frame `lsn`.
    fn locate(&self, dir: &Path, lsn: u64) -> Option<(PathBuf, u64, usize)> {
        let start = self.frame_start(lsn)?;
        let end = self.frame_start(lsn + 1).unwrap_or(self.next_frame_start);
        let segment = *self.segments.iter().rev().find(|first| **first <= lsn)?;
        let segment_start = self.frame_start(segment)?;
        Some((
            dir.join(wal::segment_name(segment)),
            HEADER_BYTES as u64 + start - segment_start,
            usize::try_from(end - start).ok()?,
        ))
    }
}

/// Where one record's body is to be found, resolved under the lock and read after it.
enum BodyRef {
    Memory(Arc<Body>),
    Disk(PathBuf, u64, usize),
}

fn not_found(name: &StreamName) -> EngineError {
    EngineError::Stream(StreamError::StreamNotFound {
        stream: name.to_string(),
    })
}

fn storage(reason: impl std::fmt::Display) -> EngineError {
    EngineError::StorageUnavailable {
        reason: reason.to_string(),
    }
}

fn config_to_disk(config: &StreamConfig) -> StreamConfigV1 {
    StreamConfigV1 {
        partitions: config.partitions,
        retention_ms: config.retention_ms,
        retention_bytes: config.retention_bytes,
        max_records: config.max_records,
    }
}

fn config_from_disk(config: &StreamConfigV1) -> StreamConfig {
    StreamConfig {
        partitions: config.partitions,
        retention_ms: config.retention_ms,
        retention_bytes: config.retention_bytes,
        max_records: config.max_records,
    }
}

fn start_to_disk(start: StartPosition) -> StartV1 {
    match start {
        StartPosition::Earliest => StartV1::Earliest,
        StartPosition::Latest => StartV1::Latest,
        StartPosition::Offset(offset) => StartV1::Offset(offset),
        StartPosition::Time(time) => StartV1::Time(time.as_millis()),
    }
}

fn start_from_disk(start: StartV1) -> StartPosition {
    match start {
        StartV1::Earliest => StartPosition::Earliest,
        StartV1::Latest => StartPosition::Latest,
        StartV1::Offset(offset) => StartPosition::Offset(offset),
        StartV1::Time(ms) => StartPosition::Time(Timestamp::from_millis(ms)),
    }
}

fn ids_to_disk(ids: &[RecordId]) -> Vec<(u32, u64)> {
    ids.iter().map(|id| (id.partition, id.offset)).collect()
}

fn ids_from_disk(ids: &[(u32, u64)]) -> Vec<RecordId> {
    ids.iter()
        .map(|(partition, offset)| RecordId {
            partition: *partition,
            offset: *offset,
        })
        .collect()
}

fn group_to_disk(group: &Group) -> GroupV1 {
    GroupV1 {
        name: group.name().to_string(),
        start: start_to_disk(group.config().start),
        shared: group.config().mode == GroupMode::Shared,
        session_timeout_ms: group.config().session_timeout_ms,
        positions: group.positions().to_vec(),
        pending: group
            .pending_entries()
            .map(|(id, consumer, at, count)| PendingV1 {
                partition: id.partition,
                offset: id.offset,
                consumer: consumer.to_string(),
                delivered_at: at.as_millis(),
                delivery_count: count,
            })
            .collect(),
    }
}

fn group_from_disk(group: &GroupV1) -> Result<Group, String> {
    let name = GroupName::new(&group.name).map_err(|e| e.to_string())?;
    let config = GroupConfig {
        start: start_from_disk(group.start),
        mode: if group.shared {
            GroupMode::Shared
        } else {
            GroupMode::Partitioned
        },
        session_timeout_ms: group.session_timeout_ms,
    };
    let mut pending = Vec::with_capacity(group.pending.len());
    for p in &group.pending {
        pending.push((
            RecordId {
                partition: p.partition,
                offset: p.offset,
            },
            ConsumerName::new(&p.consumer).map_err(|e| e.to_string())?,
            Timestamp::from_millis(p.delivered_at),
            p.delivery_count,
        ));
    }
    Ok(Group::restore(
        name,
        config,
        group.positions.clone(),
        pending,
    ))
}

fn snapshot(stream: &Stream, now: Timestamp) -> StreamOp {
    StreamOp::Snapshot(StreamSnapshotV1 {
        name: stream.name().to_string(),
        config: config_to_disk(stream.config()),
        bounds: (0..stream.n_partitions())
            .map(|p| stream.bounds(p).unwrap_or((0, 0)))
            .collect(),
        round_robin: stream.round_robin(),
        groups: stream.groups().map(group_to_disk).collect(),
        producers: stream
            .producers()
            .map(|(producer, last_seen, batches)| ProducerV1 {
                producer: producer.to_string(),
                last_seen: last_seen.as_millis(),
                batches: batches
                    .iter()
                    .map(|(seq, answer)| {
                        (
                            *seq,
                            answer
                                .iter()
                                .map(|a| (a.partition, a.offset, a.timestamp.as_millis()))
                                .collect(),
                        )
                    })
                    .collect(),
            })
            .collect(),
        now: now.as_millis(),
    })
}

fn record_size(record: &StreamRecordV1) -> u32 {
    let headers: usize = record.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    (record.key.as_ref().map_or(0, String::len) + record.value.len() + headers) as u32
}

/// Rebuilds a stream from its log, frame by frame.
struct Replay {
    name: StreamName,
    stream: Option<Stream>,
    /// Records seen before the first snapshot (their snapshot follows): `(partition, offset,
    /// entry)`.
    early: Vec<(u32, u64, Entry)>,
    /// The append batch being read: its records and LSNs, from `batch_start` on.
    batch: Vec<(StreamRecordV1, u64)>,
    batch_start: u32,
    /// Whether any frame was applied yet.
    started: bool,
    snapshot_lsn: u64,
    deleted: bool,
}

impl Replay {
    fn new(name: StreamName) -> Self {
        Replay {
            name,
            stream: None,
            early: Vec::new(),
            batch: Vec::new(),
            batch_start: 0,
            started: false,
            snapshot_lsn: 0,
            deleted: false,
        }
    }

    fn apply(&mut self, lsn: u64, op: StreamOp) -> Result<(), String> {
        let first_frame = !self.started;
        self.started = true;
        if !matches!(op, StreamOp::Record(_)) && !self.batch.is_empty() {
            // A batch cut short by a crash was never acknowledged: it does not count.
            self.batch.clear();
        }
        match op {
            StreamOp::Record(record) => {
                if record.batch_index == 0 {
                    self.batch.clear();
                    self.batch_start = 0;
                } else if first_frame {
                    // The log starts inside a batch: a segment can begin in the middle of
                    // one, and retention deleted the segment with its first records. They
                    // were written (only a tail can be torn), so the rest counts.
                    self.batch_start = record.batch_index;
                }
                if record.batch_index as usize != self.batch_start as usize + self.batch.len() {
                    self.batch.clear();
                    return Ok(());
                }
                let complete = record.batch_index + 1 == record.batch_len;
                self.batch.push((record, lsn));
                if complete {
                    self.finish_batch();
                }
            }
            StreamOp::Snapshot(snapshot) => {
                self.deleted = false;
                self.snapshot_lsn = lsn;
                self.restore_snapshot(&snapshot)?;
            }
            StreamOp::Deleted => {
                self.deleted = true;
                self.stream = None;
                self.early.clear();
            }
            other => {
                let Some(stream) = self.stream.as_mut() else {
                    // Superseded by the snapshot that follows.
                    return Ok(());
                };
                apply_group_op(stream, other)?;
            }
        }
        Ok(())
    }

    fn finish_batch(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        // A batch whose start retention deleted has no whole answer to remember (the
        // snapshot written before that deletion holds the producer's state).
        let partial = std::mem::take(&mut self.batch_start) > 0;
        let mut answer = Vec::with_capacity(batch.len());
        let mut producer = None;
        let mut now = Timestamp::ZERO;
        for (record, lsn) in &batch {
            let entry = Entry {
                timestamp: Timestamp::from_millis(record.timestamp),
                size_bytes: record_size(record),
                location: *lsn,
            };
            answer.push(Appended {
                partition: record.partition,
                offset: record.offset,
                timestamp: entry.timestamp,
            });
            producer.clone_from(&record.producer);
            now = Timestamp::from_millis(record.now);
            match self.stream.as_mut() {
                Some(stream) => {
                    if !stream.restore_entry(record.partition, record.offset, entry) {
                        tracing::warn!(stream = %self.name, partition = record.partition, offset = record.offset, "skipping a record out of order in the stream log");
                    }
                }
                None => self.early.push((record.partition, record.offset, entry)),
            }
        }
        if let (Some(stream), Some((producer, sequence)), false) =
            (self.stream.as_mut(), producer, partial)
        {
            stream.restore_producer_batch(now, &ProducerSeq { producer, sequence }, answer);
        }
    }

    fn restore_snapshot(&mut self, snapshot: &StreamSnapshotV1) -> Result<(), String> {
        let config = config_from_disk(&snapshot.config);
        let mut early = std::mem::take(&mut self.early);
        if let Some(mut all) = self.stream.take() {
            early.clear();
            all.publish_all();
            for partition in 0..all.n_partitions() {
                let (first, _) = all.bounds(partition).map_err(|e| e.to_string())?;
                let (records, _) = all
                    .read(partition, ReadFrom::Offset(first), u32::MAX)
                    .map_err(|e| e.to_string())?;
                early.extend(records.into_iter().map(|(o, e)| (partition, o, e)));
            }
        }
        let mut stream = Stream::new(self.name.clone(), config).map_err(|e| e.to_string())?;
        for (partition, offset, entry) in early {
            let first = snapshot
                .bounds
                .get(partition as usize)
                .map_or(0, |(first, _)| *first);
            if offset >= first {
                stream.restore_entry(partition, offset, entry);
            }
        }
        stream.restore_bounds(&snapshot.bounds, snapshot.round_robin);
        for group in &snapshot.groups {
            stream.restore_group(group_from_disk(group)?);
        }
        for producer in &snapshot.producers {
            for (sequence, answer) in &producer.batches {
                let answer = answer
                    .iter()
                    .map(|(partition, offset, ts)| Appended {
                        partition: *partition,
                        offset: *offset,
                        timestamp: Timestamp::from_millis(*ts),
                    })
                    .collect();
                stream.restore_producer_batch(
                    Timestamp::from_millis(producer.last_seen),
                    &ProducerSeq {
                        producer: producer.producer.clone(),
                        sequence: *sequence,
                    },
                    answer,
                );
            }
        }
        self.stream = Some(stream);
        Ok(())
    }
}

fn apply_group_op(stream: &mut Stream, op: StreamOp) -> Result<(), String> {
    let group_name = |name: &str| GroupName::new(name).map_err(|e| e.to_string());
    let consumer_name = |name: &str| ConsumerName::new(name).map_err(|e| e.to_string());
    match op {
        StreamOp::GroupCreated(group) => stream.restore_group(group_from_disk(&group)?),
        StreamOp::GroupDeleted { group } => {
            let _ = stream.delete_group(&group_name(&group)?);
        }
        StreamOp::Delivered {
            group,
            consumer,
            now,
            ids,
        } => {
            let _ = stream.restore_delivered(
                &group_name(&group)?,
                &consumer_name(&consumer)?,
                Timestamp::from_millis(now),
                &ids_from_disk(&ids),
            );
        }
        StreamOp::Claimed {
            group,
            consumer,
            now,
            ids,
        } => {
            let _ = stream.restore_claimed(
                &group_name(&group)?,
                &consumer_name(&consumer)?,
                Timestamp::from_millis(now),
                &ids_from_disk(&ids),
            );
        }
        StreamOp::Acked { group, ids } => {
            let _ = stream.group_ack(&group_name(&group)?, &ids_from_disk(&ids));
        }
        StreamOp::Seeked { group, positions } => {
            let _ = stream.restore_positions(&group_name(&group)?, &positions);
        }
        StreamOp::Trimmed { firsts } => {
            for (partition, first) in firsts {
                stream.trim_to(partition, first);
            }
        }
        StreamOp::Record(_) | StreamOp::Snapshot(_) | StreamOp::Deleted => {}
    }
    Ok(())
}

impl Streams {
    pub(crate) fn in_memory() -> Self {
        Streams {
            registry: RwLock::new(BTreeMap::new()),
            disk: None,
            last_reopen: Mutex::new(None),
        }
    }

    pub(crate) fn on_disk(
        fs: Arc<dyn FileSystem>,
        storage: &StorageConfig,
        space: Arc<DiskSpace>,
    ) -> Self {
        Streams {
            registry: RwLock::new(BTreeMap::new()),
            disk: Some(Disk {
                fs,
                dir: storage.data_dir.join("streams"),
                sync: storage.sync,
                segment_bytes_max: storage.segment_bytes_max,
                repair: storage.repair,
                space,
            }),
            last_reopen: Mutex::new(None),
        }
    }

    fn slot(&self, name: &StreamName) -> Result<Arc<Slot>, EngineError> {
        self.registry
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    /// Loads every stream from disk (the durable engine's start-up).
    pub(crate) fn recover(&self) -> Result<(), EngineError> {
        let Some(disk) = &self.disk else {
            return Ok(());
        };
        disk.fs
            .create_dir_all(&disk.dir)
            .map_err(|e| storage(format!("cannot create {}: {e}", disk.dir.display())))?;
        let names = disk
            .fs
            .list(&disk.dir)
            .map_err(|e| storage(format!("cannot list {}: {e}", disk.dir.display())))?;
        let mut registry = self.registry.write();
        registry.clear();
        for dir_name in names {
            let Ok(name) = StreamName::new(&dir_name) else {
                continue;
            };
            let dir = disk.dir.join(&dir_name);
            if let Some(slot) = recover_stream(disk, &name, &dir)? {
                registry.insert(name, slot);
            }
        }
        tracing::info!(n_streams = registry.len(), "streams recovered");
        Ok(())
    }

    pub(crate) fn wake_all(&self) {
        for slot in self.registry.read().values() {
            slot.published.notify_waiters();
        }
    }
}

fn remove_segments(disk: &Disk, dir: &Path) -> Result<(), EngineError> {
    let segments = wal::list_segments(disk.fs.as_ref(), dir)
        .map_err(|e| storage(format!("cannot list {}: {e}", dir.display())))?;
    for (_, path) in segments {
        disk.fs
            .remove(&path)
            .map_err(|e| storage(format!("cannot remove {}: {e}", path.display())))?;
    }
    let _ = disk.fs.sync_dir(dir);
    Ok(())
}

fn recover_stream(
    disk: &Disk,
    name: &StreamName,
    dir: &Path,
) -> Result<Option<Arc<Slot>>, EngineError> {
    Ok(recover_stream_state(disk, name, dir)?.map(|state| {
        Arc::new(Slot {
            state: Mutex::new(state),
            published: Notify::new(),
            dir: dir.to_path_buf(),
        })
    }))
}

/// Reads a stream's log back into its state; `None` when the stream was deleted.
fn recover_stream_state(
    disk: &Disk,
    name: &StreamName,
    dir: &Path,
) -> Result<Option<State>, EngineError> {
    let segments = wal::list_segments(disk.fs.as_ref(), dir)
        .map_err(|e| storage(format!("cannot list {}: {e}", dir.display())))?;
    let Some((base_lsn, _)) = segments.first().cloned() else {
        return Ok(None);
    };
    let mut replay = Replay::new(name.clone());
    let mut frame_starts = VecDeque::new();
    let mut next_frame_start = 0u64;
    let mode = if disk.repair {
        ReplayMode::Repair
    } else {
        ReplayMode::Recover
    };
    let end = wal::replay(
        disk.fs.as_ref(),
        dir,
        base_lsn,
        mode,
        |lsn, kind, payload| {
            frame_starts.push_back(next_frame_start);
            next_frame_start += (FRAME_OVERHEAD_BYTES + payload.len()) as u64;
            if kind != KIND_STREAM_OP {
                return Err(format!("frame kind {kind} in a stream log"));
            }
            let op: StreamOp = decode(kind, payload).map_err(|e| e.to_string())?;
            replay.apply(lsn, op)
        },
    )
    .map_err(|e| storage(format!("stream {name}: recovery failed: {e}")))?;
    let Some(mut stream) = replay.stream.take().filter(|_| !replay.deleted) else {
        // Deleted (or created and never made durable): finish removing it.
        remove_segments(disk, dir)?;
        return Ok(None);
    };
    stream.publish_all();
    let wal = open_wal(disk, dir, &end)?;
    let segments = wal::list_segments(disk.fs.as_ref(), dir)
        .map_err(|e| storage(format!("cannot list {}: {e}", dir.display())))?
        .into_iter()
        .map(|(first, _)| first)
        .collect();
    let index = LogIndex {
        wal: Arc::new(wal),
        base_lsn,
        frame_starts,
        next_frame_start,
        segments,
        listed_upto: end.next_lsn.saturating_sub(1),
        snapshot_lsn: replay.snapshot_lsn,
        published_lsn: end.next_lsn.saturating_sub(1),
    };
    tracing::info!(stream = %name, truncated_bytes = end.truncated_bytes, "stream recovered");
    Ok(Some(State {
        stream,
        bodies: Bodies::Disk(index),
        deleted: false,
    }))
}

fn open_wal(disk: &Disk, dir: &Path, end: &LogEnd) -> Result<Wal, EngineError> {
    Wal::open(
        disk.fs.clone(),
        WalConfig {
            dir: dir.to_path_buf(),
            sync: disk.sync,
            segment_bytes_max: disk.segment_bytes_max,
            space: Some(disk.space.clone()),
        },
        end,
    )
    .map_err(|e| storage(format!("cannot open the log in {}: {e}", dir.display())))
}

fn check_records(records: &[NewRecord]) -> Result<(), StreamError> {
    for (index, record) in records.iter().enumerate() {
        if record.headers.len() > HEADERS_MAX {
            return Err(StreamError::InvalidParameter {
                field: "headers",
                reason: format!(
                    "record {index} has {} headers, at most {HEADERS_MAX}",
                    record.headers.len()
                ),
            });
        }
        if record.headers.iter().any(|(k, _)| k.is_empty()) {
            return Err(StreamError::InvalidParameter {
                field: "headers",
                reason: format!("record {index} has a header with an empty name"),
            });
        }
    }
    Ok(())
}

fn check_max(max: u32) -> Result<(), StreamError> {
    if !(1..=READ_MAX).contains(&max) {
        return Err(StreamError::InvalidParameter {
            field: "max",
            reason: format!("must be 1..={READ_MAX}, got {max}"),
        });
    }
    Ok(())
}

fn check_wait(wait_ms: u64) -> Result<(), StreamError> {
    if wait_ms > WAIT_MS_MAX {
        return Err(StreamError::InvalidParameter {
            field: "wait_ms",
            reason: format!("must be 0..={WAIT_MS_MAX}, got {wait_ms}"),
        });
    }
    Ok(())
}

impl State {
    fn check_live(&self, name: &StreamName) -> Result<(), EngineError> {
        if self.deleted {
            return Err(not_found(name));
        }
        Ok(())
    }

    fn log(
        &mut self,
        op: impl FnOnce() -> StreamOp,
    ) -> Result<Option<(Arc<Wal>, u64)>, EngineError> {
        match &mut self.bodies {
            Bodies::Memory { .. } => Ok(None),
            Bodies::Disk(index) => {
                let lsn = index.submit(&op())?;
                Ok(Some((index.wal.clone(), lsn)))
            }
        }
    }

    fn check_writable(&self) -> Result<(), EngineError> {
        if let Bodies::Disk(index) = &self.bodies {
            if let Some(failure) = index.wal.failure() {
                return Err(crate::durable::failure_error(&failure));
            }
        }
        Ok(())
    }

    /// Whether this stream's log stopped (and must be reopened from disk).
    fn log_failed(&self) -> bool {
        matches!(&self.bodies, Bodies::Disk(index) if index.wal.failure().is_some())
    }

    /// Resolves where each record's body is (under the lock; the reads happen after).
    fn body_refs(
        &mut self,
        dir: &Path,
        fs: Option<&dyn FileSystem>,
        records: &[(RecordId, Entry)],
    ) -> Vec<BodyRef> {
        match &mut self.bodies {
            Bodies::Memory { map, .. } => records
                .iter()
                .filter_map(|(_, e)| map.get(&e.location).cloned().map(BodyRef::Memory))
                .collect(),
            Bodies::Disk(index) => {
                let newest = records.iter().map(|(_, e)| e.location).max().unwrap_or(0);
                if newest > index.listed_upto {
                    if let Some(fs) = fs {
                        // Every published record is written, so its segment is listed.
                        if let Ok(segments) = wal::list_segments(fs, dir) {
                            index.segments = segments.into_iter().map(|(first, _)| first).collect();
                            index.listed_upto = index.published_lsn;
                        }
                    }
                }
                records
                    .iter()
                    .filter_map(|(_, e)| {
                        index
                            .locate(dir, e.location)
                            .map(|(path, position, len)| BodyRef::Disk(path, position, len))
                    })
                    .collect()
            }
        }
    }
}

impl LocalEngine {
    fn stream_disk(&self) -> Option<&Disk> {
        self.streams.disk.as_ref()
    }

    /// Reads the bodies of `records` (outside every lock). A record whose segment retention
    /// deleted meanwhile ends the list there.
    fn load_bodies(
        &self,
        slot: &Slot,
        records: Vec<(RecordId, Entry)>,
    ) -> Result<Vec<StreamRecord>, EngineError> {
        let refs = {
            let mut state = slot.state.lock();
            let fs = self.stream_disk().map(|d| d.fs.as_ref());
            state.body_refs(&slot.dir, fs, &records)
        };
        let mut out = Vec::with_capacity(records.len());
        for ((id, entry), body) in records.into_iter().zip(refs) {
            let (key, value, headers) = match body {
                BodyRef::Memory(body) => {
                    (body.key.clone(), body.value.clone(), body.headers.clone())
                }
                BodyRef::Disk(path, position, len) => {
                    let Some(disk) = self.stream_disk() else {
                        break;
                    };
                    let bytes = match disk.fs.read_at(&path, position, len) {
                        Ok(bytes) => bytes,
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => break,
                        Err(error) => {
                            return Err(storage(format!(
                                "cannot read {} at {position}: {error}",
                                path.display()
                            )))
                        }
                    };
                    let frame = frame::decode(&bytes).map_err(|e| {
                        storage(format!(
                            "corrupt record frame in {} at {position}: {e:?}",
                            path.display()
                        ))
                    })?;
                    match decode::<StreamOp>(frame.kind, frame.payload) {
                        Ok(StreamOp::Record(record))
                            if record.partition == id.partition && record.offset == id.offset =>
                        {
                            (record.key, record.value, record.headers)
                        }
                        other => {
                            return Err(storage(format!(
                                "the frame in {} at {position} is not record {id}: {other:?}",
                                path.display()
                            )))
                        }
                    }
                }
            };
            out.push(StreamRecord {
                partition: id.partition,
                offset: id.offset,
                timestamp: entry.timestamp,
                key,
                value,
                headers,
            });
        }
        Ok(out)
    }

    async fn wait_logged(&self, logged: Option<(Arc<Wal>, u64)>) -> Result<(), EngineError> {
        if let Some((wal, lsn)) = logged {
            wal.wait_durable(lsn)
                .await
                .map_err(crate::durable::storage_error)?;
        }
        Ok(())
    }

    fn group_view(
        stream: &Stream,
        group: &GroupName,
        now: Timestamp,
    ) -> Result<GroupView, EngineError> {
        let g = stream.group(group)?;
        let stats = stream
            .stats(now)
            .groups
            .into_iter()
            .find(|s| s.name == *group)
            .ok_or_else(|| StreamError::GroupNotFound {
                stream: stream.name().to_string(),
                group: group.to_string(),
            })?;
        Ok(GroupView {
            name: group.clone(),
            config: *g.config(),
            stats,
        })
    }

    fn deliveries_to_records(
        &self,
        slot: &Slot,
        stream_entries: Vec<(Delivered, Entry)>,
    ) -> Result<Vec<GroupRecord>, EngineError> {
        let counts: Vec<u32> = stream_entries
            .iter()
            .map(|(d, _)| d.delivery_count)
            .collect();
        let records = stream_entries.into_iter().map(|(d, e)| (d.id, e)).collect();
        let loaded = self.load_bodies(slot, records)?;
        Ok(loaded
            .into_iter()
            .zip(counts)
            .map(|(record, delivery_count)| GroupRecord {
                record,
                delivery_count,
            })
            .collect())
    }

    /// Retention for every stream: trims the index under each stream's lock, then (durable)
    /// writes a snapshot if group operations would otherwise be lost, and deletes the
    /// segments no retained record needs once that snapshot is durable.
    pub(super) async fn stream_tick(&self) {
        self.reopen_failed_streams();
        let now = self.clock.now();
        let slots: Vec<Arc<Slot>> = self.streams.registry.read().values().cloned().collect();
        for slot in slots {
            if let Err(error) = self.retain(&slot, now).await {
                tracing::warn!(%error, dir = %slot.dir.display(), "stream retention failed; it is retried on the next tick");
            }
        }
    }

    /// Reloads from disk every stream whose log stopped (a full or failing disk), at most once
    /// a second: what was applied in memory but never logged is dropped, what is on disk comes
    /// back, and the stream accepts writes again once its log works.
    fn reopen_failed_streams(&self) {
        let Some(disk) = self.stream_disk() else {
            return;
        };
        let failed: Vec<(StreamName, Arc<Slot>)> = self
            .streams
            .registry
            .read()
            .iter()
            .filter(|(_, slot)| slot.state.lock().log_failed())
            .map(|(name, slot)| (name.clone(), slot.clone()))
            .collect();
        if failed.is_empty() {
            return;
        }
        {
            let mut last = self.streams.last_reopen.lock();
            if last.is_some_and(|at| at.elapsed() < REOPEN_INTERVAL) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        for (name, slot) in failed {
            let mut state = slot.state.lock();
            if state.deleted || !state.log_failed() {
                continue;
            }
            match recover_stream_state(disk, &name, &slot.dir) {
                Ok(Some(recovered)) => {
                    tracing::info!(stream = %name, "stream log reopened");
                    *state = recovered;
                }
                Ok(None) => state.deleted = true,
                Err(error) => {
                    tracing::warn!(stream = %name, %error, "stream log still unavailable");
                    continue;
                }
            }
            drop(state);
            slot.published.notify_waiters();
        }
    }

    async fn retain(&self, slot: &Slot, now: Timestamp) -> Result<(), EngineError> {
        let (boundary, logged) = {
            let mut state = slot.state.lock();
            if state.deleted {
                return Ok(());
            }
            let State { stream, bodies, .. } = &mut *state;
            let (removed, moved) = stream.enforce_retention(now);
            let min_needed = stream.min_location();
            match bodies {
                Bodies::Memory { map, .. } => {
                    for entry in removed {
                        map.remove(&entry.location);
                    }
                    return Ok(());
                }
                Bodies::Disk(index) => {
                    if index.wal.failure().is_some() {
                        return Ok(());
                    }
                    if !moved.is_empty() {
                        index.submit(&StreamOp::Trimmed { firsts: moved })?;
                    }
                    let Some(disk) = self.stream_disk() else {
                        return Ok(());
                    };
                    if let Ok(segments) = wal::list_segments(disk.fs.as_ref(), &slot.dir) {
                        index.segments = segments.into_iter().map(|(first, _)| first).collect();
                        index.listed_upto = index.published_lsn;
                    }
                    let min_needed = min_needed.unwrap_or_else(|| index.next_lsn());
                    // The newest segment start at or below `min_needed`: everything before
                    // it can go (the active, last segment never does).
                    let boundary = index
                        .segments
                        .iter()
                        .copied()
                        .filter(|first| *first <= min_needed && *first > index.base_lsn)
                        .max();
                    let Some(boundary) = boundary else {
                        return Ok(());
                    };
                    let lsn = if index.snapshot_lsn < boundary {
                        let lsn = index.submit(&snapshot(stream, now))?;
                        index.snapshot_lsn = lsn;
                        lsn
                    } else {
                        index.next_lsn().saturating_sub(1)
                    };
                    (boundary, (index.wal.clone(), lsn))
                }
            }
        };
        self.wait_logged(Some(logged)).await?;
        let removable: Vec<u64> = {
            let mut state = slot.state.lock();
            let Bodies::Disk(index) = &mut state.bodies else {
                return Ok(());
            };
            let removable: Vec<u64> = index
                .segments
                .iter()
                .copied()
                .filter(|first| *first < boundary)
                .collect();
            index.segments.retain(|first| *first >= boundary);
            while index.base_lsn < boundary && !index.frame_starts.is_empty() {
                index.frame_starts.pop_front();
                index.base_lsn += 1;
            }
            removable
        };
        let Some(disk) = self.stream_disk() else {
            return Ok(());
        };
        for first in removable {
            let path = slot.dir.join(wal::segment_name(first));
            disk.fs
                .remove(&path)
                .map_err(|e| storage(format!("cannot remove {}: {e}", path.display())))?;
        }
        disk.fs
            .sync_dir(&slot.dir)
            .map_err(|e| storage(format!("cannot sync {}: {e}", slot.dir.display())))?;
        Ok(())
    }

    pub(super) async fn stream_create(
        &self,
        name: StreamName,
        config: StreamConfig,
    ) -> Result<(StreamView, bool), EngineError> {
        self.check_ready()?;
        config.validate()?;
        let now = self.clock.now();
        let (view, logged) = {
            let mut registry = self.streams.registry.write();
            if let Some(slot) = registry.get(&name) {
                let state = slot.state.lock();
                let differences = state.stream.config().differences(&config);
                if !differences.is_empty() {
                    return Err(StreamError::StreamExists {
                        stream: name.to_string(),
                        differences: differences.join(", "),
                    }
                    .into());
                }
                return Ok((
                    StreamView {
                        name: name.clone(),
                        config: config.clone(),
                        stats: state.stream.stats(now),
                    },
                    false,
                ));
            }
            if registry.len() >= STREAMS_MAX {
                return Err(EngineError::TooManyStreams { limit: STREAMS_MAX });
            }
            let stream = Stream::new(name.clone(), config.clone())?;
            let (bodies, dir, logged) = match self.stream_disk() {
                None => (
                    Bodies::Memory {
                        map: HashMap::new(),
                        next_location: 0,
                    },
                    PathBuf::new(),
                    None,
                ),
                Some(disk) => {
                    let dir = disk.dir.join(name.as_str());
                    disk.fs
                        .create_dir_all(&dir)
                        .map_err(|e| storage(format!("cannot create {}: {e}", dir.display())))?;
                    // Leftovers of a deletion a crash interrupted.
                    remove_segments(disk, &dir)?;
                    let end = LogEnd::empty(1);
                    let wal = Arc::new(open_wal(disk, &dir, &end)?);
                    let mut index = LogIndex {
                        wal: wal.clone(),
                        base_lsn: 1,
                        frame_starts: VecDeque::new(),
                        next_frame_start: 0,
                        segments: vec![1],
                        listed_upto: 0,
                        snapshot_lsn: 1,
                        published_lsn: 0,
                    };
                    let lsn = index.submit(&snapshot(&stream, now))?;
                    (Bodies::Disk(index), dir, Some((wal, lsn)))
                }
            };
            let view = StreamView {
                name: name.clone(),
                config,
                stats: stream.stats(now),
            };
            registry.insert(
                name,
                Arc::new(Slot {
                    state: Mutex::new(State {
                        stream,
                        bodies,
                        deleted: false,
                    }),
                    published: Notify::new(),
                    dir,
                }),
            );
            (view, logged)
        };
        self.wait_logged(logged).await?;
        Ok((view, true))
    }

    pub(super) async fn stream_get(&self, name: &StreamName) -> Result<StreamView, EngineError> {
        self.check_ready()?;
        let slot = self.streams.slot(name)?;
        let state = slot.state.lock();
        state.check_live(name)?;
        Ok(StreamView {
            name: name.clone(),
            config: state.stream.config().clone(),
            stats: state.stream.stats(self.clock.now()),
        })
    }

    pub(super) async fn stream_list(&self) -> Result<Vec<StreamView>, EngineError> {
        self.check_ready()?;
        let now = self.clock.now();
        let registry = self.streams.registry.read();
        Ok(registry
            .iter()
            .map(|(name, slot)| {
                let state = slot.state.lock();
                StreamView {
                    name: name.clone(),
                    config: state.stream.config().clone(),
                    stats: state.stream.stats(now),
                }
            })
            .collect())
    }

    pub(super) async fn stream_delete(&self, name: &StreamName) -> Result<(), EngineError> {
        self.check_ready()?;
        let (slot, logged) = {
            let mut registry = self.streams.registry.write();
            let slot = registry.get(name).cloned().ok_or_else(|| not_found(name))?;
            let logged = {
                let mut state = slot.state.lock();
                state.check_writable()?;
                let logged = state.log(|| StreamOp::Deleted)?;
                state.deleted = true;
                logged
            };
            registry.remove(name);
            (slot, logged)
        };
        slot.published.notify_waiters();
        self.wait_logged(logged).await?;
        let wal = {
            let mut state = slot.state.lock();
            match std::mem::replace(
                &mut state.bodies,
                Bodies::Memory {
                    map: HashMap::new(),
                    next_location: 0,
                },
            ) {
                Bodies::Disk(index) => Some(index.wal),
                Bodies::Memory { .. } => None,
            }
        };
        if let (Some(wal), Some(disk)) = (wal, self.stream_disk()) {
            // Closing joins the log's writer thread: off the async workers.
            let _ = tokio::task::spawn_blocking(move || drop(wal)).await;
            remove_segments(disk, &slot.dir)?;
        }
        Ok(())
    }

    pub(super) async fn stream_append(
        &self,
        name: &StreamName,
        producer: Option<ProducerSeq>,
        records: Vec<NewRecord>,
    ) -> Result<Vec<Appended>, EngineError> {
        self.check_ready()?;
        self.streams.slot(name)?;
        self.check_disk()?;
        let submitted = self.stream_append_submit(name, producer, records)?;
        self.stream_append_finish(&submitted).await?;
        Ok(submitted.appended)
    }

    /// The synchronous half of an append: checks, applies to the core and submits the frames
    /// under the stream's lock. The records are neither durable nor visible until
    /// `stream_append_finish`. A duplicate (idempotent producer) submits nothing.
    pub(super) fn stream_append_submit(
        &self,
        name: &StreamName,
        producer: Option<ProducerSeq>,
        records: Vec<NewRecord>,
    ) -> Result<SubmittedAppend, EngineError> {
        check_records(&records)?;
        let slot = self.streams.slot(name)?;
        let specs: Vec<AppendSpec> = records
            .iter()
            .map(|r| AppendSpec {
                key: r.key.as_ref().map(|k| k.as_bytes().to_vec()),
                partition: r.partition,
                size_bytes: r.size_bytes(),
            })
            .collect();
        let now = self.clock.now();
        let (appended, logged) = {
            let mut state = slot.state.lock();
            state.check_live(name)?;
            state.check_writable()?;
            let State { stream, bodies, .. } = &mut *state;
            let base = match bodies {
                Bodies::Memory { next_location, .. } => *next_location,
                Bodies::Disk(index) => index.next_lsn(),
            };
            let outcome = stream.append(now, producer.as_ref(), &specs, |i, _| base + i as u64)?;
            let appended = match outcome {
                AppendOutcome::Duplicate(answer) => {
                    drop(state);
                    return Ok(SubmittedAppend {
                        slot,
                        appended: answer,
                        logged: None,
                    });
                }
                AppendOutcome::Appended(appended) => appended,
            };
            let batch_len = records.len() as u32;
            let logged = match bodies {
                Bodies::Memory { map, next_location } => {
                    for (i, record) in records.into_iter().enumerate() {
                        map.insert(
                            base + i as u64,
                            Arc::new(Body {
                                key: record.key,
                                value: record.value,
                                headers: record.headers,
                            }),
                        );
                    }
                    *next_location = base + u64::from(batch_len);
                    stream.publish_all();
                    None
                }
                Bodies::Disk(index) => {
                    let mut last = 0;
                    for (i, (record, at)) in records.into_iter().zip(&appended).enumerate() {
                        last = index.submit(&StreamOp::Record(StreamRecordV1 {
                            partition: at.partition,
                            offset: at.offset,
                            timestamp: at.timestamp.as_millis(),
                            key: record.key,
                            value: record.value,
                            headers: record.headers,
                            producer: producer.as_ref().map(|p| (p.producer.clone(), p.sequence)),
                            batch_index: i as u32,
                            batch_len,
                            now: now.as_millis(),
                        }))?;
                    }
                    Some((index.wal.clone(), last))
                }
            };
            (appended, logged)
        };
        Ok(SubmittedAppend {
            slot,
            appended,
            logged,
        })
    }

    /// Whether a stream of this name exists (a topic subscription's target must).
    pub(super) fn streams_contains(&self, name: &StreamName) -> Result<(), EngineError> {
        self.streams.slot(name)?.state.lock().check_live(name)
    }

    /// Checks that `records` could be appended to `name` now (the stream exists, its log
    /// works, sizes and headers fit), without changing anything. A topic publish checks its
    /// stream copies with this before it logs anything.
    pub(super) fn stream_check_append(
        &self,
        name: &StreamName,
        records: &[NewRecord],
    ) -> Result<(), EngineError> {
        check_records(records)?;
        let slot = self.streams.slot(name)?;
        let specs: Vec<AppendSpec> = records
            .iter()
            .map(|r| AppendSpec {
                key: r.key.as_ref().map(|k| k.as_bytes().to_vec()),
                partition: r.partition,
                size_bytes: r.size_bytes(),
            })
            .collect();
        let state = slot.state.lock();
        state.check_live(name)?;
        state.check_writable()?;
        state.stream.check_append(&specs)?;
        Ok(())
    }

    /// Waits until a submitted append is durable, then makes its records visible.
    pub(super) async fn stream_append_finish(
        &self,
        submitted: &SubmittedAppend,
    ) -> Result<(), EngineError> {
        let slot = &submitted.slot;
        if let Some((_, lsn)) = &submitted.logged {
            let lsn = *lsn;
            self.wait_logged(submitted.logged.clone()).await?;
            let mut state = slot.state.lock();
            state.stream.publish_upto(lsn);
            if let Bodies::Disk(index) = &mut state.bodies {
                index.published_lsn = index.published_lsn.max(lsn);
            }
        }
        slot.published.notify_waiters();
        Ok(())
    }

    pub(super) async fn stream_read(
        &self,
        name: &StreamName,
        partition: u32,
        from: ReadFrom,
        max: u32,
        wait_ms: u64,
    ) -> Result<StreamRead, EngineError> {
        check_max(max)?;
        check_wait(wait_ms)?;
        let started = tokio::time::Instant::now();
        let mut permit = None;
        let mut from = from;
        loop {
            self.check_ready()?;
            let slot = self.streams.slot(name)?;
            let notified = slot.published.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (records, next_offset) = {
                let state = slot.state.lock();
                state.check_live(name)?;
                state.stream.read(partition, from, max)?
            };
            let waited = started.elapsed();
            let budget = Duration::from_millis(wait_ms);
            if !records.is_empty() || waited >= budget || self.shutdown.is_cancelled() {
                let ids: Vec<(RecordId, Entry)> = records
                    .into_iter()
                    .map(|(offset, e)| (RecordId { partition, offset }, e))
                    .collect();
                let wanted: Vec<u64> = ids.iter().map(|(id, _)| id.offset).collect();
                let records = self.load_bodies(&slot, ids)?;
                // Retention may have deleted some bodies meanwhile: continue after the last
                // one returned, so the caller's next read reports what is gone.
                let next_offset = if records.len() < wanted.len() {
                    records.last().map_or_else(
                        || wanted.first().copied().unwrap_or(next_offset),
                        |r| r.offset + 1,
                    )
                } else {
                    next_offset
                };
                return Ok(StreamRead {
                    records,
                    next_offset,
                });
            }
            // Later rounds continue from where this one ended (a time maps to an offset once).
            from = ReadFrom::Offset(next_offset);
            if permit.is_none() {
                permit = Some(self.acquire_wait_permit()?);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(budget - waited) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
    }

    pub(super) async fn stream_create_group(
        &self,
        name: &StreamName,
        group: GroupName,
        config: GroupConfig,
    ) -> Result<(GroupView, bool), EngineError> {
        self.check_ready()?;
        let slot = self.streams.slot(name)?;
        let now = self.clock.now();
        let (view, created, logged) = {
            let mut state = slot.state.lock();
            state.check_live(name)?;
            state.check_writable()?;
            let created = state.stream.create_group(group.clone(), config)?;
            let logged = if created {
                let record = group_to_disk(state.stream.group(&group)?);
                state.log(|| StreamOp::GroupCreated(record))?
            } else {
                None
            };
            (
                Self::group_view(&state.stream, &group, now)?,
                created,
                logged,
            )
        };
        self.wait_logged(logged).await?;
        Ok((view, created))
    }

    pub(super) async fn stream_get_group(
        &self,
        name: &StreamName,
        group: &GroupName,
    ) -> Result<GroupView, EngineError> {
        self.check_ready()?;
        let slot = self.streams.slot(name)?;
        let state = slot.state.lock();
        state.check_live(name)?;
        Self::group_view(&state.stream, group, self.clock.now())
    }

    pub(super) async fn stream_delete_group(
        &self,
        name: &StreamName,
        group: &GroupName,
    ) -> Result<(), EngineError> {
        self.check_ready()?;
        let slot = self.streams.slot(name)?;
        let logged = {
            let mut state = slot.state.lock();
            state.check_live(name)?;
            state.check_writable()?;
            state.stream.delete_group(group)?;
            state.log(|| StreamOp::GroupDeleted {
                group: group.to_string(),
            })?
        };
        self.wait_logged(logged).await
    }

    pub(super) async fn stream_group_read(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        max: u32,
        wait_ms: u64,
    ) -> Result<Vec<GroupRecord>, EngineError> {
        check_max(max)?;
        check_wait(wait_ms)?;
        let started = tokio::time::Instant::now();
        let mut permit = None;
        loop {
            self.check_ready()?;
            let slot = self.streams.slot(name)?;
            let notified = slot.published.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.clock.now();
            let (delivered, logged) = {
                let mut state = slot.state.lock();
                state.check_live(name)?;
                state.check_writable()?;
                let delivered = state.stream.group_read(group, consumer, now, max)?;
                let with_entries: Vec<(Delivered, Entry)> = delivered
                    .iter()
                    .filter_map(|d| state.stream.entry(d.id).map(|e| (*d, *e)))
                    .collect();
                let logged = if delivered.is_empty() {
                    None
                } else {
                    let ids: Vec<RecordId> = delivered.iter().map(|d| d.id).collect();
                    state.log(|| StreamOp::Delivered {
                        group: group.to_string(),
                        consumer: consumer.to_string(),
                        now: now.as_millis(),
                        ids: ids_to_disk(&ids),
                    })?
                };
                (with_entries, logged)
            };
            let waited = started.elapsed();
            let budget = Duration::from_millis(wait_ms);
            if !delivered.is_empty() || waited >= budget || self.shutdown.is_cancelled() {
                self.wait_logged(logged).await?;
                return self.deliveries_to_records(&slot, delivered);
            }
            if permit.is_none() {
                permit = Some(self.acquire_wait_permit()?);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(budget - waited) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
    }

    pub(super) async fn stream_group_ack(
        &self,
        name: &StreamName,
        group: &GroupName,
        ids: Vec<RecordId>,
    ) -> Result<Vec<Result<(), StreamError>>, EngineError> {
        self.check_ready()?;
        if ids.len() > READ_MAX as usize {
            return Err(StreamError::BatchTooLarge {
                reason: format!("{} ids, at most {READ_MAX} per call", ids.len()),
            }
            .into());
        }
        let slot = self.streams.slot(name)?;
        let (results, logged) = {
            let mut state = slot.state.lock();
            state.check_live(name)?;
            state.check_writable()?;
            let results = state.stream.group_ack(group, &ids)?;
            let acked: Vec<RecordId> = ids
                .iter()
                .zip(&results)
                .filter(|(_, r)| r.is_ok())
                .map(|(id, _)| *id)
                .collect();
            let logged = if acked.is_empty() {
                None
            } else {
                state.log(|| StreamOp::Acked {
                    group: group.to_string(),
                    ids: ids_to_disk(&acked),
                })?
            };
            (results, logged)
        };
        self.wait_logged(logged).await?;
        Ok(results)
    }

    pub(super) async fn stream_group_pending(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: Option<&ConsumerName>,
        max: usize,
    ) -> Result<PendingView, EngineError> {
        self.check_ready()?;
        let slot = self.streams.slot(name)?;
        let state = slot.state.lock();
        state.check_live(name)?;
        let (count, entries) =
            state
                .stream
                .group(group)?
                .pending(consumer, self.clock.now(), max)?;
        Ok(PendingView { count, entries })
    }

    pub(super) async fn stream_group_claim(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        min_idle_ms: u64,
        max: u32,
    ) -> Result<Vec<GroupRecord>, EngineError> {
        self.check_ready()?;
        check_max(max)?;
        let slot = self.streams.slot(name)?;
        let now = self.clock.now();
        let (claimed, logged) = {
            let mut state = slot.state.lock();
            state.check_live(name)?;
            state.check_writable()?;
            let claimed = state
                .stream
                .group_claim(group, consumer, now, min_idle_ms, max)?;
            let with_entries: Vec<(Delivered, Entry)> = claimed
                .iter()
                .filter_map(|d| state.stream.entry(d.id).map(|e| (*d, *e)))
                .collect();
            let logged = if claimed.is_empty() {
                None
            } else {
                let ids: Vec<RecordId> = claimed.iter().map(|d| d.id).collect();
                state.log(|| StreamOp::Claimed {
                    group: group.to_string(),
                    consumer: consumer.to_string(),
                    now: now.as_millis(),
                    ids: ids_to_disk(&ids),
                })?
            };
            (with_entries, logged)
        };
        self.wait_logged(logged).await?;
        self.deliveries_to_records(&slot, claimed)
    }

    pub(super) async fn stream_group_seek(
        &self,
        name: &StreamName,
        group: &GroupName,
        partition: Option<u32>,
        position: StartPosition,
    ) -> Result<GroupView, EngineError> {
        self.check_ready()?;
        let slot = self.streams.slot(name)?;
        let now = self.clock.now();
        let (view, logged) = {
            let mut state = slot.state.lock();
            state.check_live(name)?;
            state.check_writable()?;
            let positions = state.stream.seek(group, partition, position)?;
            let logged = state.log(|| StreamOp::Seeked {
                group: group.to_string(),
                positions,
            })?;
            (Self::group_view(&state.stream, group, now)?, logged)
        };
        self.wait_logged(logged).await?;
        slot.published.notify_waiters();
        Ok(view)
    }
}

#[cfg(test)]
mod tests;
