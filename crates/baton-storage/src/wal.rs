//! The write-ahead log: segment files of checksummed frames, one writer thread doing group
//! commit, and recovery that replays the log and cuts a torn tail.
//!
//! # Group commit
//! `submit` encodes a frame into a shared buffer and returns its log sequence number (LSN) at
//! once; callers hold their queue's lock only for that. The writer thread takes everything
//! submitted while it was busy, writes it with one `write` and, under `SyncPolicy::Always`, one
//! `fdatasync`, then publishes the new durable LSN. `wait_durable(lsn)` resolves when the record
//! is durable. So N concurrent producers share one fsync instead of paying N.
//!
//! # Failure is sticky
//! After a failed write or sync the log is poisoned: the durable LSN stops, every waiter and every
//! later `submit` gets `WalError::Poisoned`, and the writer thread exits. Nothing unpersisted is
//! acknowledged. The owner recovers by reopening the log (which re-reads what is really on disk).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::frame::{self, FrameError, HEADER_BYTES};
use crate::io::{AppendFile, FileSystem};

pub const SEGMENT_MAGIC: &[u8; 8] = b"BATONWAL";
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Encoded frames waiting for the writer; beyond it `submit` refuses (backpressure).
pub const PENDING_BYTES_MAX: usize = 256 * 1024 * 1024;
/// How far ahead of the writer a segment is zero-filled.
const PREPARE_STEP_BYTES: u64 = 4 * 1024 * 1024;
/// What an idle writer zero-fills at a time: a record that arrives meanwhile waits for at
/// most this much. Under a steady low load (the p99 benchmark) zero-filling a whole step in the
/// way of waiting records made the tail latency (docs/benchmarks.md).
const PREPARE_IDLE_CHUNK_BYTES: u64 = 512 * 1024;
/// Largest written batch buffer kept for reuse; a burst's larger one is freed.
const SPARE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// When the writer calls `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Before any record of a batch is acknowledged. Survives power loss.
    Always,
    /// At most every `Duration`; records are acknowledged once written. Power loss may drop the
    /// last interval; a process crash loses nothing.
    Interval(Duration),
    /// Never (the OS decides). For benchmarks and throwaway data.
    Never,
}

impl std::str::FromStr for SyncPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "always" => Ok(SyncPolicy::Always),
            "never" => Ok(SyncPolicy::Never),
            other => {
                let ms = other
                    .strip_prefix("interval=")
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .filter(|ms| (1..=60_000).contains(ms))
                    .ok_or_else(|| {
                        format!("fsync policy {other:?} is not `always`, `never` or `interval=<1..60000 ms>`")
                    })?;
                Ok(SyncPolicy::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

impl std::fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncPolicy::Always => f.write_str("always"),
            SyncPolicy::Never => f.write_str("never"),
            SyncPolicy::Interval(interval) => write!(f, "interval={}", interval.as_millis()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalError {
    #[error("storage failed and refuses writes until it recovers: {reason}")]
    Poisoned { reason: Arc<str> },
    #[error("storage is overloaded: {pending_bytes} bytes are waiting to be written")]
    Overloaded { pending_bytes: usize },
    #[error("the log is closed")]
    Closed,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt record in {path} at byte {offset_bytes}; the data after it cannot be trusted (run `baton storage verify`, or start with `--repair` to cut the log there and lose what follows)")]
    Corrupt { path: PathBuf, offset_bytes: u64 },
    #[error(
        "log segment missing: {path} starts at record {found}, record {expected} was expected"
    )]
    Gap {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("record {lsn} in {path} could not be applied: {reason}")]
    Apply {
        path: PathBuf,
        lsn: u64,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durable {
    pub lsn: u64,
    pub failure: Option<Arc<str>>,
}

struct Pending {
    buf: Vec<u8>,
    /// LSN of the first record in `buf`.
    buf_first_lsn: u64,
    next_lsn: u64,
    poisoned: Option<Arc<str>>,
    closing: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    durable: watch::Sender<Durable>,
}

pub struct WalConfig {
    pub dir: PathBuf,
    pub sync: SyncPolicy,
    pub segment_bytes_max: u64,
}

/// Upper bounds of the fsync latency histogram's buckets, in microseconds.
pub const SYNC_MICROS_BUCKETS: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];
/// Upper bounds of the group-commit batch size histogram's buckets, in records.
pub const BATCH_RECORDS_BUCKETS: [u64; 12] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/// Counts `value` in the first bucket whose bound it does not exceed (none past the last:
/// the total count, kept separately, covers those).
fn observe(buckets: &[std::sync::atomic::AtomicU64], bounds: &[u64], value: u64) {
    if let Some(i) = bounds.iter().position(|bound| value <= *bound) {
        if let Some(bucket) = buckets.get(i) {
            bucket.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Counters the writer keeps, for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct WalStats {
    pub n_batches: std::sync::atomic::AtomicU64,
    pub n_syncs: std::sync::atomic::AtomicU64,
    /// Time spent in `fdatasync`, in microseconds.
    pub sync_micros: std::sync::atomic::AtomicU64,
    /// Time spent writing batches (not syncing), in microseconds.
    pub write_micros: std::sync::atomic::AtomicU64,
    pub n_records: std::sync::atomic::AtomicU64,
    pub n_bytes: std::sync::atomic::AtomicU64,
    /// Syncs per `SYNC_MICROS_BUCKETS` bucket (not cumulative; slower ones only in `n_syncs`).
    pub sync_micros_buckets: [std::sync::atomic::AtomicU64; SYNC_MICROS_BUCKETS.len()],
    /// Batches per `BATCH_RECORDS_BUCKETS` bucket (not cumulative; larger ones only in
    /// `n_batches`).
    pub batch_records_buckets: [std::sync::atomic::AtomicU64; BATCH_RECORDS_BUCKETS.len()],
}

pub struct Wal {
    shared: Arc<Shared>,
    durable: watch::Receiver<Durable>,
    writer: Option<JoinHandle<()>>,
    stats: Arc<WalStats>,
}

pub fn segment_name(first_lsn: u64) -> String {
    format!("wal-{first_lsn:020}.seg")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".seg")?
        .parse()
        .ok()
}

/// The segments in `dir`, ordered by their first LSN.
pub fn list_segments(fs: &dyn FileSystem, dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut segments: Vec<(u64, PathBuf)> = fs
        .list(dir)?
        .into_iter()
        .filter_map(|name| parse_segment_name(&name).map(|lsn| (lsn, dir.join(name))))
        .collect();
    segments.sort();
    Ok(segments)
}

/// Where the log ends after recovery, so the writer can continue it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEnd {
    pub next_lsn: u64,
    /// The last segment (its first LSN and path), if any segment exists.
    pub last_segment: Option<(u64, PathBuf)>,
    /// Where the log's records end in the last segment (the zero-filled, prepared space after
    /// them is not part of the log).
    pub last_segment_len: u64,
    /// Bytes cut from a torn tail.
    pub truncated_bytes: u64,
}

/// What `replay` may do to the files it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayMode {
    /// Cut a torn or corrupt tail of the last segment; any other corruption is an error.
    Recover,
    /// Cut the log at the first corruption wherever it is, deleting later segments.
    Repair,
    /// Change nothing; report what `Recover` would cut.
    Verify,
}

/// Reads every record with LSN ≥ `from_lsn` in order and hands it to `apply`. A torn or corrupt
/// tail of the last segment is cut and reported in `LogEnd::truncated_bytes`; corruption
/// anywhere else is an error naming the file and offset (see `ReplayMode` for the other modes).
pub fn replay(
    fs: &dyn FileSystem,
    dir: &Path,
    from_lsn: u64,
    mode: ReplayMode,
    mut apply: impl FnMut(u64, u8, &[u8]) -> Result<(), String>,
) -> Result<LogEnd, RecoveryError> {
    let repair = mode == ReplayMode::Repair;
    let segments = list_segments(fs, dir).map_err(|source| RecoveryError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut next_lsn = from_lsn;
    let mut end = LogEnd {
        next_lsn: from_lsn,
        last_segment: None,
        last_segment_len: 0,
        truncated_bytes: 0,
    };
    let n_segments = segments.len();
    let mut index = 0;
    let mut expected_first: Option<u64> = None;
    while index < n_segments {
        let Some((first_lsn, path)) = segments.get(index).cloned() else {
            break;
        };
        let is_last = index + 1 == n_segments;
        // Skip segments that end before `from_lsn` without reading them.
        if let Some((next_first, _)) = segments.get(index + 1) {
            if *next_first <= from_lsn {
                index += 1;
                continue;
            }
        }
        let expected = expected_first.unwrap_or(from_lsn);
        let contiguous = match expected_first {
            Some(expected) => first_lsn == expected,
            None => first_lsn <= from_lsn,
        };
        if !contiguous {
            return Err(RecoveryError::Gap {
                path,
                expected,
                found: first_lsn,
            });
        }
        let bytes = fs.read(&path).map_err(|source| RecoveryError::Io {
            path: path.clone(),
            source,
        })?;
        let mut cut_at: Option<u64> = None;
        match frame::check_header(&bytes, SEGMENT_MAGIC) {
            Ok(_) => {}
            Err(FrameError::Truncated) if is_last => cut_at = Some(0),
            Err(_) if repair => cut_at = Some(0),
            Err(_) => {
                return Err(RecoveryError::Corrupt {
                    path,
                    offset_bytes: 0,
                })
            }
        }
        let mut offset = HEADER_BYTES;
        let mut lsn = first_lsn;
        while cut_at.is_none() && offset < bytes.len() {
            let rest = bytes.get(offset..).unwrap_or_default();
            match frame::decode(rest) {
                Ok(found) => {
                    if lsn >= from_lsn {
                        apply(lsn, found.kind, found.payload).map_err(|reason| {
                            RecoveryError::Apply {
                                path: path.clone(),
                                lsn,
                                reason,
                            }
                        })?;
                    }
                    lsn += 1;
                    offset += found.len_bytes;
                }
                Err(_) if rest.iter().all(|b| *b == 0) => {
                    // Space prepared (zero-filled) ahead of the writer: the clean end.
                    break;
                }
                Err(error) => {
                    let is_tail = is_last && tail_is_unreadable(rest, error);
                    if is_tail || repair {
                        cut_at = Some(offset as u64);
                    } else {
                        return Err(RecoveryError::Corrupt {
                            path,
                            offset_bytes: offset as u64,
                        });
                    }
                }
            }
        }
        next_lsn = lsn;
        expected_first = Some(lsn);
        end.last_segment_len = cut_at.unwrap_or(offset as u64).max(HEADER_BYTES as u64);
        if let Some(cut) = cut_at {
            let dropped = bytes.len() as u64 - cut;
            tracing::warn!(segment = %path.display(), offset_bytes = cut, dropped_bytes = dropped, "cutting a torn or corrupt log tail");
            end.truncated_bytes += dropped;
            if mode == ReplayMode::Verify {
                end.last_segment = Some((first_lsn, path.clone()));
                break;
            }
            fs.truncate(&path, cut)
                .map_err(|source| RecoveryError::Io {
                    path: path.clone(),
                    source,
                })?;
            if cut == 0 {
                fs.remove(&path).map_err(|source| RecoveryError::Io {
                    path: path.clone(),
                    source,
                })?;
            } else {
                end.last_segment = Some((first_lsn, path.clone()));
            }
            // With `repair`, everything after the cut is gone.
            for (_, later) in segments.iter().skip(index + 1) {
                tracing::warn!(segment = %later.display(), "removing a log segment after a repaired cut");
                fs.remove(later).map_err(|source| RecoveryError::Io {
                    path: later.clone(),
                    source,
                })?;
            }
            let _ = fs.sync_dir(dir);
            break;
        }
        end.last_segment = Some((first_lsn, path));
        index += 1;
    }
    end.next_lsn = next_lsn;
    Ok(end)
}

/// True when the bytes from a failed frame to the end of the file hold no readable frame at the
/// place the failed one says the next begins: the mark of a write that did not finish, as
/// opposed to damage in the middle of the log.
fn tail_is_unreadable(rest: &[u8], error: FrameError) -> bool {
    match error {
        FrameError::Truncated => true,
        FrameError::Corrupt => {
            let declared = rest
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .unwrap_or(u32::MAX);
            if declared > frame::PAYLOAD_BYTES_MAX {
                return !has_frame_anywhere(rest);
            }
            let next = frame::FRAME_OVERHEAD_BYTES + declared as usize;
            match rest.get(next..) {
                None | Some([]) => true,
                Some(after) => frame::decode(after).is_err() && !has_frame_anywhere(after),
            }
        }
    }
}

/// Whether any complete, valid frame starts somewhere in `bytes` (bounded scan).
fn has_frame_anywhere(bytes: &[u8]) -> bool {
    const SCAN_BYTES_MAX: usize = 1 << 20;
    (1..bytes.len().min(SCAN_BYTES_MAX)).any(|start| {
        bytes.get(start..).is_some_and(|rest| matches!(frame::decode(rest), Ok(f) if f.len_bytes > frame::FRAME_OVERHEAD_BYTES))
    })
}

impl Wal {
    /// Starts the writer, continuing the log where recovery left it.
    pub fn open(fs: Arc<dyn FileSystem>, config: WalConfig, end: &LogEnd) -> std::io::Result<Wal> {
        fs.create_dir_all(&config.dir)?;
        let (segment, segment_first_lsn) = match &end.last_segment {
            Some((first_lsn, path)) => (fs.open_at(path, end.last_segment_len)?, *first_lsn),
            None => (
                new_segment(fs.as_ref(), &config.dir, end.next_lsn)?,
                end.next_lsn,
            ),
        };
        let durable = Durable {
            lsn: end.next_lsn.saturating_sub(1),
            failure: None,
        };
        let (durable_tx, durable_rx) = watch::channel(durable);
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                buf: Vec::new(),
                buf_first_lsn: end.next_lsn,
                next_lsn: end.next_lsn,
                poisoned: None,
                closing: false,
            }),
            wake: Condvar::new(),
            durable: durable_tx,
        });
        let stats = Arc::new(WalStats::default());
        let writer = Writer {
            fs,
            config,
            shared: shared.clone(),
            segment,
            segment_first_lsn,
            prepared_bytes: 0,
            stats: stats.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("baton-wal".to_string())
            .spawn(move || writer.run())?;
        Ok(Wal {
            shared,
            durable: durable_rx,
            writer: Some(writer),
            stats,
        })
    }

    /// Queues one record and returns its LSN. Records are written in LSN order.
    pub fn submit(&self, kind: u8, payload: &[u8]) -> Result<u64, WalError> {
        let mut pending = self.shared.pending.lock();
        if let Some(reason) = &pending.poisoned {
            return Err(WalError::Poisoned {
                reason: reason.clone(),
            });
        }
        if pending.closing {
            return Err(WalError::Closed);
        }
        if pending.buf.len() > PENDING_BYTES_MAX {
            return Err(WalError::Overloaded {
                pending_bytes: pending.buf.len(),
            });
        }
        let lsn = pending.next_lsn;
        if pending.buf.is_empty() {
            pending.buf_first_lsn = lsn;
        }
        frame::encode(kind, payload, &mut pending.buf);
        pending.next_lsn += 1;
        drop(pending);
        self.shared.wake.notify_one();
        Ok(lsn)
    }

    /// The LSN the next submitted record will get.
    pub fn next_lsn(&self) -> u64 {
        self.shared.pending.lock().next_lsn
    }

    /// Resolves once record `lsn` is durable (per the sync policy), or with the failure that
    /// stopped the log.
    pub async fn wait_durable(&self, lsn: u64) -> Result<(), WalError> {
        let mut durable = self.durable.clone();
        let state = durable
            .wait_for(|d| d.lsn >= lsn || d.failure.is_some())
            .await
            .map_err(|_| WalError::Closed)?
            .clone();
        if state.lsn >= lsn {
            return Ok(());
        }
        Err(WalError::Poisoned {
            reason: state.failure.unwrap_or_else(|| Arc::from("unknown")),
        })
    }

    pub fn failure(&self) -> Option<Arc<str>> {
        self.durable.borrow().failure.clone()
    }

    pub fn stats(&self) -> &WalStats {
        &self.stats
    }

    /// Writes and syncs what is pending, then stops the writer.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.pending.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn new_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    first_lsn: u64,
) -> std::io::Result<Box<dyn AppendFile>> {
    let path = dir.join(segment_name(first_lsn));
    let mut file = fs.create(&path)?;
    file.append(&frame::header(SEGMENT_MAGIC))?;
    file.sync()?;
    fs.sync_dir(dir)?;
    Ok(file)
}

struct Writer {
    fs: Arc<dyn FileSystem>,
    config: WalConfig,
    shared: Arc<Shared>,
    segment: Box<dyn AppendFile>,
    segment_first_lsn: u64,
    /// How far the current segment is zero-filled; appends below it change no file size.
    prepared_bytes: u64,
    stats: Arc<WalStats>,
}

impl Writer {
    /// Runs until closed or poisoned.
    fn run(mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut last_sync = Instant::now();
        let mut unsynced = false;
        let mut spare = Vec::new();
        let shared = Arc::clone(&self.shared);
        loop {
            let (batch, batch_first_lsn, next_lsn, closing) = {
                let mut pending = shared.pending.lock();
                while pending.buf.is_empty() && !pending.closing {
                    if self.prepare_ahead_due() {
                        // Idle: zero-fill ahead now, one chunk at a time, so that a record
                        // arriving later does not wait behind a whole prepare step.
                        drop(pending);
                        if let Err(error) = self.prepare_ahead_chunk() {
                            self.poison(&error);
                            return;
                        }
                        pending = shared.pending.lock();
                        continue;
                    }
                    match (self.config.sync, unsynced) {
                        (SyncPolicy::Interval(interval), true) => {
                            let due = last_sync + interval;
                            if Instant::now() >= due
                                || self.shared.wake.wait_until(&mut pending, due).timed_out()
                            {
                                break;
                            }
                        }
                        _ => self.shared.wake.wait(&mut pending),
                    }
                }
                // The buffer written last time goes back, so submits append into memory that
                // already has room instead of growing a new buffer by copies every batch.
                let batch = std::mem::replace(&mut pending.buf, std::mem::take(&mut spare));
                (
                    batch,
                    pending.buf_first_lsn,
                    pending.next_lsn,
                    pending.closing,
                )
            };
            let write_started = Instant::now();
            let written = self.write_batch(&batch, batch_first_lsn);
            self.stats.write_micros.fetch_add(
                write_started.elapsed().as_micros() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            let result = written.and_then(|()| {
                let sync_now = match self.config.sync {
                    SyncPolicy::Always => !batch.is_empty() || (closing && unsynced),
                    SyncPolicy::Interval(interval) => {
                        (unsynced || !batch.is_empty())
                            && (last_sync.elapsed() >= interval || closing)
                    }
                    SyncPolicy::Never => closing && (unsynced || !batch.is_empty()),
                };
                if sync_now {
                    let started = Instant::now();
                    self.segment.sync()?;
                    let micros = started.elapsed().as_micros() as u64;
                    self.stats.sync_micros.fetch_add(micros, Relaxed);
                    // The count first, so a scrape never sees buckets above it.
                    self.stats.n_syncs.fetch_add(1, Relaxed);
                    observe(
                        &self.stats.sync_micros_buckets,
                        &SYNC_MICROS_BUCKETS,
                        micros,
                    );
                    last_sync = Instant::now();
                    unsynced = false;
                } else if !batch.is_empty() {
                    unsynced = true;
                }
                Ok(())
            });
            match result {
                Ok(()) => {
                    if !batch.is_empty() {
                        self.stats.n_batches.fetch_add(1, Relaxed);
                        self.stats
                            .n_records
                            .fetch_add(next_lsn - batch_first_lsn, Relaxed);
                        observe(
                            &self.stats.batch_records_buckets,
                            &BATCH_RECORDS_BUCKETS,
                            next_lsn - batch_first_lsn,
                        );
                        self.stats.n_bytes.fetch_add(batch.len() as u64, Relaxed);
                        self.shared.durable.send_modify(|d| d.lsn = next_lsn - 1);
                    }
                }
                Err(error) => {
                    self.poison(&error);
                    return;
                }
            }
            if batch.capacity() <= SPARE_BYTES_MAX {
                spare = batch;
                spare.clear();
            }
            if closing && self.shared.pending.lock().buf.is_empty() {
                return;
            }
        }
    }

    /// Stops the log after an I/O failure: nothing more is accepted, every waiter is told.
    fn poison(&self, error: &std::io::Error) {
        let reason: Arc<str> = Arc::from(format!("write-ahead log I/O failed: {error}"));
        tracing::error!(%reason, "poisoning the write-ahead log");
        self.shared.pending.lock().poisoned = Some(reason.clone());
        self.shared
            .durable
            .send_modify(|d| d.failure = Some(reason));
    }

    /// Whether the current segment is zero-filled less than a whole step ahead of the writer
    /// (and can still grow).
    fn prepare_ahead_due(&self) -> bool {
        let target =
            (self.segment.len_bytes() + PREPARE_STEP_BYTES).min(self.config.segment_bytes_max);
        self.prepared_bytes < target
    }

    /// Zero-fills (and syncs) one more chunk of the current segment.
    fn prepare_ahead_chunk(&mut self) -> std::io::Result<()> {
        let upto = (self.prepared_bytes.max(self.segment.len_bytes()) + PREPARE_IDLE_CHUNK_BYTES)
            .min(self.config.segment_bytes_max);
        self.segment.prepare(upto)?;
        self.prepared_bytes = upto;
        Ok(())
    }

    fn write_batch(&mut self, batch: &[u8], batch_first_lsn: u64) -> std::io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let has_records = self.segment.len_bytes() > HEADER_BYTES as u64;
        if has_records
            && self.segment.len_bytes() + batch.len() as u64 > self.config.segment_bytes_max
        {
            self.segment.sync()?;
            self.segment = new_segment(self.fs.as_ref(), &self.config.dir, batch_first_lsn)?;
            self.segment_first_lsn = batch_first_lsn;
            self.prepared_bytes = 0;
        }
        let end = self.segment.len_bytes() + batch.len() as u64;
        if end > self.prepared_bytes {
            // Zero-fill ahead in steps, so most syncs find the file size unchanged.
            let upto = (self.segment.len_bytes() + PREPARE_STEP_BYTES)
                .min(self.config.segment_bytes_max)
                .max(end);
            self.segment.prepare(upto)?;
            self.prepared_bytes = upto;
        }
        self.segment.append(batch)
    }
}
