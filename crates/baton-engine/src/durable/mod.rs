//! Durability for the local engine: every state change is logged as a whole operation
//! ([`QueueOp`]) to the write-ahead log before it is acknowledged, recovery replays the newest
//! checkpoint and the log after it, and checkpoints keep the log (and start-up time) in
//! proportion to live data.
//!
//! The engine applies an operation to the in-memory queue first, then submits its record while
//! still holding the queue's lock (so log order is application order per queue), then releases
//! the lock and waits for the record to be durable before answering. An operation that fails is
//! not logged. If the log fails, the engine stops acknowledging writes, keeps serving reads from
//! memory, and reloads its state from disk once the disk works again.

pub(crate) mod codec;
pub(crate) mod locks;
pub(crate) mod replay;
pub(crate) mod schedules;
pub(crate) mod topics;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_core::{HistoryEventKind, MovedMessage, Queue, QueueLimits, QueueName, Timestamp};
use baton_storage::checkpoint::{self, CheckpointWriter};
use baton_storage::records::{self, CheckpointPart, QueueOp, KIND_CHECKPOINT, KIND_QUEUE_OP};
use baton_storage::wal::{self, LogEnd, LogGap};
use baton_storage::{
    DataDirLock, DiskSpace, FileSystem, Keyring, RecoveryError, ReplayMode, SyncPolicy, Wal,
    WalConfig, WalError, WalFailure,
};
use parking_lot::{Mutex, RwLock};

use crate::{EngineError, QueueMeta};
use replay::ReplayState;

/// Largest encoding buffer a thread keeps for its next record.
const ENCODE_BUFFER_KEPT_BYTES: usize = 4 * 1024 * 1024;

/// The disk-free alarm's default threshold, in log segments: room for the checkpoint and the
/// records that let consumers drain a full disk.
pub const DISK_FREE_MIN_SEGMENTS: u64 = 3;

/// Where and how the embedded engine stores its data.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub sync: SyncPolicy,
    pub segment_bytes_max: u64,
    /// A checkpoint is written once the log has grown by this much since the last one and by
    /// more than twice the live data.
    pub checkpoint_bytes_min: u64,
    /// Cut the log at the first corruption instead of refusing to start.
    pub repair: bool,
    /// Below this much free space on the data directory's file system, producers are refused
    /// (the disk-free alarm); 0 switches the alarm off.
    pub disk_free_min_bytes: u64,
    /// Size of the emergency reserve file a full disk's log writes may give up; 0 for none.
    pub disk_reserve_bytes: u64,
    /// Encryption at rest: every frame of the log, the checkpoints and the stream logs is
    /// sealed with the keyring's active key; `None` writes plain frames (sealed ones still need
    /// their key to be read).
    pub keys: Option<Arc<Keyring>>,
}

impl StorageConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StorageConfig {
            data_dir: data_dir.into(),
            sync: SyncPolicy::Always,
            segment_bytes_max: wal::SEGMENT_BYTES_DEFAULT,
            checkpoint_bytes_min: 256 * 1024 * 1024,
            repair: false,
            disk_free_min_bytes: DISK_FREE_MIN_SEGMENTS * wal::SEGMENT_BYTES_DEFAULT,
            disk_reserve_bytes: wal::SEGMENT_BYTES_DEFAULT,
            keys: None,
        }
    }

    fn wal_dir(&self) -> PathBuf {
        self.data_dir.join("wal")
    }
}

/// Write-ahead-log counters since start (or since the log was last reopened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StorageStats {
    pub batches: u64,
    pub syncs: u64,
    pub records: u64,
    pub bytes: u64,
    pub sync_micros: u64,
    pub write_micros: u64,
    /// Syncs per `baton_storage::wal::SYNC_MICROS_BUCKETS` bucket, not cumulative.
    pub sync_micros_buckets: [u64; baton_storage::wal::SYNC_MICROS_BUCKETS.len()],
    /// Batches per `baton_storage::wal::BATCH_RECORDS_BUCKETS` bucket, not cumulative.
    pub batch_records_buckets: [u64; baton_storage::wal::BATCH_RECORDS_BUCKETS.len()],
}

/// What `verify` found in a data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The LSN the newest checkpoint covers, if there is one.
    pub checkpoint_lsn: Option<u64>,
    /// Log records read after the checkpoint.
    pub records: u64,
    /// The LSN the next record would get.
    pub next_lsn: u64,
    /// Bytes of a torn or corrupt tail that a start would cut (a warning, not an error).
    pub torn_tail_bytes: u64,
    /// Records missing from the log, and what after them cannot be used; a start refuses such
    /// a log, `--repair` keeps what is before the gap.
    pub gap: Option<LogGap>,
    pub queues: u64,
    pub messages: u64,
}

/// What every log segment and checkpoint of a data dir (queue log and stream logs) is sealed
/// with, and which frames do not open with `keys`; changes nothing.
pub fn scan_encryption(
    fs: &dyn FileSystem,
    data_dir: &std::path::Path,
    keys: Option<&Keyring>,
) -> std::io::Result<baton_storage::SealScan> {
    let mut dirs = vec![data_dir.join("wal")];
    let streams = data_dir.join("streams");
    match fs.list(&streams) {
        Ok(names) => dirs.extend(names.into_iter().map(|name| streams.join(name))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    baton_storage::SealScan::of_dirs(fs, &dirs, keys)
}

/// Reads a data dir the way start-up does, changing nothing, and reports what it found. Fails
/// with the same error (file and offset) that would stop a start.
pub fn verify(
    fs: &dyn FileSystem,
    data_dir: &std::path::Path,
    limits: QueueLimits,
    keys: Option<&Keyring>,
) -> Result<VerifyReport, RecoveryError> {
    let dir = data_dir.join("wal");
    let mut state = ReplayState::new(limits);
    let checkpoint_lsn = checkpoint::load_newest_with(fs, &dir, keys, |kind, payload| {
        state.apply_checkpoint(kind, payload)
    })?;
    let mut records = 0;
    let end = wal::replay_with(
        fs,
        &dir,
        state.first_log_lsn(),
        ReplayMode::Verify,
        keys,
        |record| {
            records += 1;
            state.apply_record(record.lsn, record.kind, record.payload)
        },
    )?;
    Ok(VerifyReport {
        checkpoint_lsn,
        records,
        next_lsn: end.next_lsn,
        torn_tail_bytes: end.truncated_bytes,
        gap: end.gap,
        queues: state.queues.len() as u64,
        messages: state.queues.values().map(Queue::depth).sum(),
    })
}

/// Messages per `Messages` checkpoint frame.
const CHECKPOINT_CHUNK: usize = 1024;
/// How often a failed log retries reopening.
const REOPEN_INTERVAL: Duration = Duration::from_secs(1);
/// How often a checkpoint is tried while the disk-free alarm is on.
const LOW_DISK_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct Durable {
    fs: Arc<dyn FileSystem>,
    config: StorageConfig,
    wal: RwLock<Option<Arc<Wal>>>,
    _lock: Option<DataDirLock>,
    /// Log bytes written when the last checkpoint started.
    checkpointed_at_bytes: Mutex<u64>,
    last_reopen: Mutex<Option<Instant>>,
    space: Arc<DiskSpace>,
    /// When a checkpoint was last tried for want of disk space.
    pub(crate) last_low_disk_checkpoint: Mutex<Option<Instant>>,
    /// Why the last reopen failed, while the log is closed because of it.
    reopen_failure: Mutex<Option<WalFailure>>,
}

/// What recovery rebuilt.
pub(crate) struct Recovered {
    pub queues: Vec<(Queue, QueueMeta)>,
    /// Moves a crash cut off, already delivered in `queues`, whose arrival must be logged.
    pub delivered: Vec<(QueueName, MovedMessage, HistoryEventKind)>,
    pub truncated_bytes: u64,
    /// Topics with their subscriptions and creation times.
    pub topics: Vec<(baton_core::topic::Topic, Timestamp)>,
    /// Completions of the replayed acks and dead-letter arrivals (see `ReplayState`).
    pub completions: Vec<crate::Completion>,
    /// Publishes whose stream copies recovery appends again: LSN → (now, copies).
    pub stream_copies:
        std::collections::BTreeMap<u64, (u64, Vec<baton_storage::topic_records::StreamCopiesV1>)>,
    /// The lock table (under replay's limits; the engine re-applies its own).
    pub locks: baton_core::lock::LockTable,
    /// The schedule table (under replay's limits; the engine re-applies its own).
    pub schedules: baton_core::schedule::ScheduleTable,
}

pub(crate) fn storage_error(error: WalError) -> EngineError {
    match error {
        WalError::DiskFull { reason } => EngineError::DiskFull {
            reason: reason.to_string(),
        },
        other => EngineError::StorageUnavailable {
            reason: other.to_string(),
        },
    }
}

/// The engine's error for a failed recovery (a full disk is told as such: it is waited out).
pub(crate) fn recovery_error(error: &RecoveryError) -> EngineError {
    let reason = format!("recovery failed: {error}");
    match error {
        RecoveryError::Io { source, .. } if baton_storage::is_disk_full(source) => {
            EngineError::DiskFull { reason }
        }
        _ => EngineError::StorageUnavailable { reason },
    }
}

/// The error for a write refused because the log stopped with `failure`.
pub(crate) fn failure_error(failure: &WalFailure) -> EngineError {
    if failure.disk_full {
        EngineError::DiskFull {
            reason: failure.reason.to_string(),
        }
    } else {
        EngineError::StorageUnavailable {
            reason: failure.reason.to_string(),
        }
    }
}

impl Durable {
    /// Locks the data dir (on the real file system) and prepares; `recover` does the reading.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        config: StorageConfig,
        lock: bool,
    ) -> Result<Durable, EngineError> {
        let data_lock = if lock {
            Some(DataDirLock::acquire(&config.data_dir).map_err(|e| {
                EngineError::StorageUnavailable {
                    reason: e.to_string(),
                }
            })?)
        } else {
            None
        };
        fs.create_dir_all(&config.wal_dir())
            .map_err(|e| EngineError::StorageUnavailable {
                reason: format!("cannot create {}: {e}", config.wal_dir().display()),
            })?;
        let space = DiskSpace::new(
            fs.clone(),
            &config.data_dir,
            config.disk_free_min_bytes,
            config.disk_reserve_bytes,
        );
        Ok(Durable {
            fs,
            config,
            wal: RwLock::new(None),
            _lock: data_lock,
            checkpointed_at_bytes: Mutex::new(0),
            last_reopen: Mutex::new(None),
            space,
            last_low_disk_checkpoint: Mutex::new(None),
            reopen_failure: Mutex::new(None),
        })
    }

    /// Reads the newest checkpoint and the log, and starts a new log writer after it.
    pub fn recover(&self, limits: QueueLimits, now: Timestamp) -> Result<Recovered, RecoveryError> {
        let recovered = self.recover_inner(limits, now);
        *self.reopen_failure.lock() = recovered.as_ref().err().map(|error| WalFailure {
            reason: Arc::from(format!("recovery failed: {error}")),
            disk_full: matches!(error, RecoveryError::Io { source, .. } if baton_storage::is_disk_full(source)),
        });
        recovered
    }

    fn recover_inner(
        &self,
        limits: QueueLimits,
        now: Timestamp,
    ) -> Result<Recovered, RecoveryError> {
        let dir = self.config.wal_dir();
        // The old writer (if any) must be gone before the files are read and cut.
        if let Some(old) = self.wal.write().take() {
            drop(old);
        }
        let mut state = ReplayState::new(limits);
        let keys = self.config.keys.as_deref();
        checkpoint::load_newest_with(self.fs.as_ref(), &dir, keys, |kind, payload| {
            state.apply_checkpoint(kind, payload)
        })?;
        let mode = if self.config.repair {
            ReplayMode::Repair
        } else {
            ReplayMode::Recover
        };
        let end: LogEnd = wal::replay_with(
            self.fs.as_ref(),
            &dir,
            state.first_log_lsn(),
            mode,
            keys,
            |record| state.apply_record(record.lsn, record.kind, record.payload),
        )?;
        let delivered = state.finish_pending(now);
        if let Some(gap) = &end.gap {
            tracing::warn!(
                missing_from = gap.missing_from,
                resumes_at = gap.resumes_at,
                dropped_segments = gap.segments_after.len(),
                dropped_records = gap.records_after,
                moved_to = %dir.join(wal::DROPPED_DIR).display(),
                "repair: the log had a gap; kept the records before it, moved the segments after it aside"
            );
        }
        let wal_config = WalConfig {
            dir: dir.clone(),
            sync: self.config.sync,
            segment_bytes_max: self.config.segment_bytes_max,
            space: Some(self.space.clone()),
            keys: self.config.keys.clone(),
        };
        let wal =
            Wal::open(self.fs.clone(), wal_config, &end).map_err(|source| RecoveryError::Io {
                path: dir.clone(),
                source,
            })?;
        *self.wal.write() = Some(Arc::new(wal));
        *self.checkpointed_at_bytes.lock() = 0;
        let mut metas = std::mem::take(&mut state.metas);
        let queues = state
            .queues
            .into_iter()
            .map(|(name, queue)| {
                let meta = metas.remove(&name).unwrap_or_default();
                (queue, meta)
            })
            .collect();
        Ok(Recovered {
            queues,
            delivered,
            truncated_bytes: end.truncated_bytes,
            topics: std::mem::take(&mut state.topics.topics)
                .into_values()
                .collect(),
            completions: std::mem::take(&mut state.completions),
            stream_copies: std::mem::take(&mut state.topics.stream_copies),
            locks: std::mem::take(&mut state.locks).table,
            schedules: std::mem::take(&mut state.schedules).table,
        })
    }

    fn current(&self) -> Result<Arc<Wal>, EngineError> {
        self.wal
            .read()
            .clone()
            .ok_or_else(|| EngineError::StorageUnavailable {
                reason: "the write-ahead log is not open (storage failed or is recovering)"
                    .to_string(),
            })
    }

    /// Submits records in order; returns the last one's LSN.
    pub fn submit(&self, ops: &[QueueOp]) -> Result<Option<u64>, EngineError> {
        if ops.is_empty() {
            return Ok(None);
        }
        let wal = self.current()?;
        let mut last = None;
        // One encoding buffer per thread, kept between records: a fresh vector per record
        // grew by doubling and copied large sends several times.
        thread_local! {
            static ENCODED: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
        }
        for op in ops {
            let encoded = records::encode_into(op, ENCODED.take());
            let submitted = wal.submit(KIND_QUEUE_OP, &encoded);
            if encoded.capacity() <= ENCODE_BUFFER_KEPT_BYTES {
                ENCODED.set(encoded);
            }
            last = Some(submitted.map_err(storage_error)?);
        }
        Ok(last)
    }

    /// Submits one record of another family (`kind`, encoded `payload`); returns its LSN.
    pub fn submit_frame(&self, kind: u8, payload: &[u8]) -> Result<u64, EngineError> {
        self.current()?.submit(kind, payload).map_err(storage_error)
    }

    pub async fn wait(&self, lsn: u64) -> Result<(), EngineError> {
        let wal = self.current()?;
        wal.wait_durable(lsn).await.map_err(storage_error)
    }

    /// Waits until every record submitted so far is durable.
    #[cfg(test)]
    pub async fn flush(&self) -> Result<(), EngineError> {
        let wal = self.current()?;
        let last = wal.next_lsn() - 1;
        wal.wait_durable(last).await.map_err(storage_error)
    }

    /// The failure that stopped the log, if it stopped.
    pub fn failure(&self) -> Option<WalFailure> {
        match &*self.wal.read() {
            Some(wal) => wal.failure(),
            None => Some(self.reopen_failure.lock().clone().unwrap_or(WalFailure {
                reason: Arc::from("the write-ahead log is not open"),
                disk_full: false,
            })),
        }
    }

    /// The data directory's free space and alarm.
    pub fn space(&self) -> &Arc<DiskSpace> {
        &self.space
    }

    /// True when the log failed and it is time to try reopening it.
    pub fn should_reopen(&self) -> bool {
        if self.failure().is_none() {
            return false;
        }
        let mut last = self.last_reopen.lock();
        let due = last.is_none_or(|at| at.elapsed() >= REOPEN_INTERVAL);
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    #[cfg(test)]
    pub fn last_reopen_for_tests(&self) -> parking_lot::MutexGuard<'_, Option<Instant>> {
        self.last_reopen.lock()
    }

    pub fn stats(&self) -> StorageStats {
        use std::sync::atomic::Ordering::Relaxed;
        match &*self.wal.read() {
            Some(wal) => {
                let stats = wal.stats();
                StorageStats {
                    batches: stats.n_batches.load(Relaxed),
                    syncs: stats.n_syncs.load(Relaxed),
                    records: stats.n_records.load(Relaxed),
                    bytes: stats.n_bytes.load(Relaxed),
                    sync_micros: stats.sync_micros.load(Relaxed),
                    write_micros: stats.write_micros.load(Relaxed),
                    sync_micros_buckets: stats
                        .sync_micros_buckets
                        .each_ref()
                        .map(|b| b.load(Relaxed)),
                    batch_records_buckets: stats
                        .batch_records_buckets
                        .each_ref()
                        .map(|b| b.load(Relaxed)),
                }
            }
            None => StorageStats::default(),
        }
    }

    /// Whether the log has grown enough since the last checkpoint to write a new one, or,
    /// while the disk-free alarm is on, whether a checkpoint would free a segment's worth of
    /// space (tried at most once a second: on a full disk the checkpoint itself may not fit).
    pub fn checkpoint_due(&self, live_bytes: u64) -> bool {
        let Ok(wal) = self.current() else {
            return false;
        };
        if wal.failure().is_some() {
            return false;
        }
        if self.space.is_low() {
            let mut last = self.last_low_disk_checkpoint.lock();
            if last.is_none_or(|at| at.elapsed() >= LOW_DISK_CHECKPOINT_INTERVAL) {
                let log_bytes = self.log_disk_bytes();
                let freed = log_bytes.saturating_sub(live_bytes.saturating_mul(2));
                if freed >= self.config.segment_bytes_max {
                    *last = Some(Instant::now());
                    return true;
                }
            }
        }
        let written = wal
            .stats()
            .n_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        let since = written.saturating_sub(*self.checkpointed_at_bytes.lock());
        since
            >= self
                .config
                .checkpoint_bytes_min
                .max(live_bytes.saturating_mul(2))
    }

    /// Bytes the log's segments take on disk.
    fn log_disk_bytes(&self) -> u64 {
        let dir = self.config.wal_dir();
        wal::list_segments(self.fs.as_ref(), &dir)
            .map(|segments| {
                segments
                    .iter()
                    .filter_map(|(_, path)| self.fs.file_len(path).ok())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Writes a checkpoint of `queues` (each locked in turn), of the frames `others` returns
    /// and, after the queues, of those `after_queues` returns, and deletes the log it covers. `others` is called after the checkpoint's start
    /// with a function giving the LSN of the last record submitted so far, which it records as
    /// what its frames cover (taken under the lock that orders its records).
    pub fn checkpoint<'q>(
        &self,
        queues: impl Iterator<Item = (&'q Mutex<Queue>, &'q Mutex<QueueMeta>)>,
        others: impl FnOnce(&dyn Fn() -> u64) -> Vec<(u8, Vec<u8>)>,
        after_queues: impl FnOnce() -> Vec<(u8, Vec<u8>)>,
    ) -> Result<u64, EngineError> {
        let wal = self.current()?;
        let io_error = |e: std::io::Error| {
            let reason = format!("checkpoint failed: {e}");
            if baton_storage::is_disk_full(&e) {
                EngineError::DiskFull { reason }
            } else {
                EngineError::StorageUnavailable { reason }
            }
        };
        let written = wal
            .stats()
            .n_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        let start_lsn = wal.next_lsn() - 1;
        let dir = self.config.wal_dir();
        let mut writer = CheckpointWriter::begin(self.fs.as_ref(), &dir, start_lsn)
            .map_err(io_error)?
            .sealed_with(self.config.keys.as_deref());
        let part = |part: &CheckpointPart| records::encode(part);
        writer
            .frame(KIND_CHECKPOINT, &part(&CheckpointPart::Start { start_lsn }))
            .map_err(io_error)?;
        for (kind, payload) in others(&|| wal.next_lsn() - 1) {
            writer.frame(kind, &payload).map_err(io_error)?;
        }
        for (slot, meta) in queues {
            let queue = slot.lock();
            let meta = meta.lock().clone();
            let covered_lsn = wal.next_lsn() - 1;
            checkpoint_queue(&mut writer, &queue, meta, covered_lsn).map_err(io_error)?;
        }
        for (kind, payload) in after_queues() {
            writer.frame(kind, &payload).map_err(io_error)?;
        }
        // Only what is durable may be covered: were the log to stop before these records reach
        // the disk, recovery would continue it below the checkpoint's position.
        wal.wait_durable_blocking(wal.next_lsn() - 1)
            .map_err(storage_error)?;
        writer.finish().map_err(io_error)?;
        *self.checkpointed_at_bytes.lock() = written;
        let removed =
            checkpoint::remove_covered(self.fs.as_ref(), &dir, start_lsn).map_err(io_error)?;
        tracing::info!(start_lsn, removed_files = removed, "checkpoint written");
        Ok(start_lsn)
    }
}

/// Writes the checkpoint frames of one queue (under its lock): its header with what it
/// covers, its messages, dedup entries and metadata in chunks, then its status archive.
fn checkpoint_queue(
    writer: &mut CheckpointWriter<'_>,
    queue: &Queue,
    meta: QueueMeta,
    covered_lsn: u64,
) -> std::io::Result<()> {
    let part = |part: &CheckpointPart| records::encode(part);
    let header = queue.snapshot_header();
    let name = header.name.to_string();
    writer.frame(
        KIND_CHECKPOINT,
        &part(&CheckpointPart::Queue {
            name: name.clone(),
            covered_lsn,
            config: codec::config_to_disk(&header.config),
            epoch: header.epoch,
            next_seq: header.next_seq,
            next_lease: header.next_lease,
            totals: codec::totals_to_disk(&header.stats),
        }),
    )?;
    let mut result = Ok(());
    let mut chunk = Vec::with_capacity(CHECKPOINT_CHUNK);
    queue.snapshot_messages(|message| {
        chunk.push(codec::message_to_disk(&message));
        if chunk.len() == CHECKPOINT_CHUNK && result.is_ok() {
            let messages = std::mem::take(&mut chunk);
            result = writer.frame(
                KIND_CHECKPOINT,
                &part(&CheckpointPart::Messages {
                    queue: name.clone(),
                    messages,
                }),
            );
        }
    });
    result?;
    if !chunk.is_empty() {
        writer.frame(
            KIND_CHECKPOINT,
            &part(&CheckpointPart::Messages {
                queue: name.clone(),
                messages: chunk,
            }),
        )?;
    }
    let mut entries = Vec::new();
    queue.snapshot_dedup(|d| {
        entries.push(records::DedupV1 {
            dedup_id: d.dedup_id.to_string(),
            id: d.id.as_u128(),
            seq: d.seq,
            expires_at: d.expires_at.as_millis(),
        })
    });
    for entries in entries.chunks(CHECKPOINT_CHUNK * 8) {
        writer.frame(
            KIND_CHECKPOINT,
            &part(&CheckpointPart::Dedup {
                queue: name.clone(),
                entries: entries.to_vec(),
            }),
        )?;
    }
    let archived = archived_frames(queue, &name);
    let push = meta.push.as_ref().map(codec::push_to_disk);
    writer.frame(
        KIND_CHECKPOINT,
        &part(&CheckpointPart::Meta {
            queue: name.clone(),
            created_at: meta.created_at.as_millis(),
            modified_at: meta.modified_at.as_millis(),
            tags: meta.tags.into_iter().collect(),
            attributes: meta.attributes.into_iter().collect(),
        }),
    )?;
    if let Some(push) = push {
        writer.frame(
            KIND_CHECKPOINT,
            &part(&CheckpointPart::Push {
                queue: name.clone(),
                push,
            }),
        )?;
    }
    for payload in archived {
        writer.frame(KIND_CHECKPOINT, &payload)?;
    }
    Ok(())
}

/// The checkpoint frames of `queue`'s status archive.
///
/// Encoded straight from the queue's records, chunk by chunk, without converting
/// each record and history event into owned disk types: the archive holds up to
/// `status_records_max` records per queue, checkpoints come often under load, and
/// this runs under the queue's lock.
fn archived_frames(queue: &Queue, name: &str) -> Vec<Vec<u8>> {
    let mut archived: Vec<Vec<u8>> = Vec::new();
    let mut chunk = Vec::with_capacity(CHECKPOINT_CHUNK);
    for (id, finished_at, status, history) in queue.archived() {
        chunk.push(records::ArchivedV1Ref {
            id: id.as_u128(),
            finished_at: finished_at.as_millis(),
            status: status.as_str(),
            history: codec::HistoryOnDisk(history),
        });
        if chunk.len() == CHECKPOINT_CHUNK {
            archived.push(records::encode(&records::ArchivePartRef {
                queue: name,
                records: &chunk,
            }));
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        archived.push(records::encode(&records::ArchivePartRef {
            queue: name,
            records: &chunk,
        }));
    }
    archived
}
