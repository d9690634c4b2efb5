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
//! are applied, logged under the lock, and answered once durable. A stopped log (a failed or
//! full disk) refuses writes (503, or 507 when the disk is full) and keeps serving reads; the
//! tick reloads the stream from disk once the log can be reopened (`retention.rs`). While the
//! disk-free alarm is on, appends are refused and group operations go on.
//!
//! # Layout
//! `mod.rs`: the registry, a stream's state and body index; `ops.rs`: create, read, append;
//! `groups.rs`: consumer groups; `retention.rs`: the tick; `replay.rs`: recovery;
//! `codec.rs`: domain ↔ record conversions.
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
use baton_storage::frame::{self, HEADER_BYTES};
use baton_storage::records::{decode, encode};
use baton_storage::seal;
use baton_storage::stream_records::{
    GroupV1, PendingV1, ProducerV1, StartV1, StreamConfigV1, StreamOp, StreamRecordV1,
    StreamSnapshotV1, KIND_STREAM_OP,
};
use baton_storage::wal::{self, LogEnd};
use baton_storage::Keyring;
use baton_storage::{DiskSpace, FileSystem, ReplayMode, SyncPolicy, Wal, WalConfig};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use super::LocalEngine;
use crate::durable::StorageConfig;
use crate::{
    EngineError, GroupRecord, GroupView, NewRecord, PendingView, StreamEngineError, StreamRead,
    StreamRecord, StreamView, STREAMS_MAX,
};

/// Where durable streams live and how their logs behave.
pub(crate) struct Disk {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    sync: SyncPolicy,
    segment_bytes_max: u64,
    repair: bool,
    space: Arc<DiskSpace>,
    keys: Option<Arc<Keyring>>,
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
    fn submit(&mut self, op: &StreamOp) -> Result<u64, StreamEngineError> {
        let payload = encode(op);
        let lsn = self
            .wal
            .submit(KIND_STREAM_OP, &payload)
            .map_err(crate::durable::storage_error)?;
        assert_eq!(lsn, self.next_lsn(), "only this stream submits to its log");
        self.frame_starts.push_back(self.next_frame_start);
        self.next_frame_start += self.wal.frame_bytes(payload.len()) as u64;
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

fn not_found(name: &StreamName) -> StreamEngineError {
    StreamEngineError::Stream(StreamError::StreamNotFound {
        stream: name.to_string(),
    })
}

fn storage(reason: impl std::fmt::Display) -> EngineError {
    EngineError::StorageUnavailable {
        reason: reason.to_string(),
    }
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
                keys: storage.keys.clone(),
            }),
            last_reopen: Mutex::new(None),
        }
    }

    fn slot(&self, name: &StreamName) -> Result<Arc<Slot>, StreamEngineError> {
        self.registry
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    /// Loads every stream from disk (the durable engine's start-up).
    pub(crate) fn recover(&self) -> Result<(), StreamEngineError> {
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
    fn check_live(&self, name: &StreamName) -> Result<(), StreamEngineError> {
        if self.deleted {
            return Err(not_found(name));
        }
        Ok(())
    }

    fn log(
        &mut self,
        op: impl FnOnce() -> StreamOp,
    ) -> Result<Option<(Arc<Wal>, u64)>, StreamEngineError> {
        match &mut self.bodies {
            Bodies::Memory { .. } => Ok(None),
            Bodies::Disk(index) => {
                let lsn = index.submit(&op())?;
                Ok(Some((index.wal.clone(), lsn)))
            }
        }
    }

    fn check_writable(&self) -> Result<(), StreamEngineError> {
        if let Bodies::Disk(index) = &self.bodies {
            if let Some(failure) = index.wal.failure() {
                return Err(crate::durable::failure_error(&failure).into());
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
    ) -> Result<Vec<StreamRecord>, StreamEngineError> {
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
                            ))
                            .into())
                        }
                    };
                    let frame = frame::decode(&bytes).map_err(|e| {
                        storage(format!(
                            "corrupt record frame in {} at {position}: {e:?}",
                            path.display()
                        ))
                    })?;
                    let (kind, payload) =
                        seal::open_frame(disk.keys.as_deref(), &frame).map_err(|e| {
                            storage(format!(
                                "record frame in {} at {position}: {e}",
                                path.display()
                            ))
                        })?;
                    match decode::<StreamOp>(kind, &payload) {
                        Ok(StreamOp::Record(record))
                            if record.partition == id.partition && record.offset == id.offset =>
                        {
                            (record.key, record.value, record.headers)
                        }
                        other => {
                            return Err(storage(format!(
                                "the frame in {} at {position} is not record {id}: {other:?}",
                                path.display()
                            ))
                            .into())
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

    async fn wait_logged(&self, logged: Option<(Arc<Wal>, u64)>) -> Result<(), StreamEngineError> {
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
    ) -> Result<GroupView, StreamEngineError> {
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
    ) -> Result<Vec<GroupRecord>, StreamEngineError> {
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
}

mod codec;
mod groups;
mod ops;
mod replay;
mod retention;

use codec::*;
use replay::*;

#[cfg(test)]
mod failure_tests;
#[cfg(test)]
mod tests;
