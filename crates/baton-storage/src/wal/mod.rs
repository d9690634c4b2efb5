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
//! # Failure stops the log
//! After a failed write or sync the log stops: the durable LSN stops, every waiter and every
//! later `submit` gets the failure, and the writer thread exits. Nothing unpersisted is
//! acknowledged. The owner recovers by reopening the log (which re-reads what is really on
//! disk). A disk that lied (EIO, a failed fsync) is `WalError::Poisoned`; a disk without space
//! is `WalError::DiskFull`, which the writer first tries to avoid: zero-filling ahead is skipped
//! when space is short, and the data directory's emergency reserve ([`crate::space`]) is given
//! up to finish a write.
//!
//! # Segments
//! A new segment is used only once its header and its directory entry are durable; a segment
//! that holds a record is never reopened below that record's end ([`replay`] returns the
//! segment and its end as one value) and never removed before a checkpoint covering its
//! records is durable ([`crate::checkpoint::remove_covered`]).

mod replay;
mod writer;

pub use replay::{
    replay, replay_with, LastSegment, LogEnd, LogGap, RecoveryError, ReplayMode, Replayed,
    DROPPED_DIR,
};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::io::FileSystem;
use crate::seal::{self, Keyring};
use crate::space::DiskSpace;
use writer::Writer;

pub const SEGMENT_MAGIC: &[u8; 8] = b"BATONWAL";
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Encoded frames waiting for the writer; beyond it `submit` refuses (backpressure).
pub const PENDING_BYTES_MAX: usize = 256 * 1024 * 1024;

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
    #[error("the disk is full; nothing more is written until there is space again: {reason}")]
    DiskFull { reason: Arc<str> },
    #[error("storage is overloaded: {pending_bytes} bytes are waiting to be written")]
    Overloaded { pending_bytes: usize },
    #[error("the log is closed")]
    Closed,
}

/// Why the log stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalFailure {
    pub reason: Arc<str>,
    /// Out of space (or quota): the disk works, and reopening succeeds once there is room.
    pub disk_full: bool,
}

impl WalFailure {
    fn error(&self) -> WalError {
        let reason = self.reason.clone();
        if self.disk_full {
            WalError::DiskFull { reason }
        } else {
            WalError::Poisoned { reason }
        }
    }
}

impl std::fmt::Display for WalFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durable {
    pub lsn: u64,
    pub failure: Option<WalFailure>,
}

struct Pending {
    buf: Vec<u8>,
    /// LSN of the first record in `buf`.
    buf_first_lsn: u64,
    next_lsn: u64,
    failed: Option<WalFailure>,
    closing: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the writer: records were submitted, or the log is closing.
    wake: Condvar,
    /// Wakes blocking waiters: a batch became durable, or the log stopped.
    synced: Condvar,
    durable: watch::Sender<Durable>,
}

pub struct WalConfig {
    pub dir: PathBuf,
    pub sync: SyncPolicy,
    pub segment_bytes_max: u64,
    /// The data directory's free-space monitor and emergency reserve, if it has one.
    pub space: Option<Arc<DiskSpace>>,
    /// Seal every frame with the keyring's active key (encryption at rest).
    pub keys: Option<Arc<Keyring>>,
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
    keys: Option<Arc<Keyring>>,
    durable: watch::Receiver<Durable>,
    writer: Option<JoinHandle<()>>,
    stats: Arc<WalStats>,
}

pub fn segment_name(first_lsn: u64) -> String {
    format!("wal-{first_lsn:020}.seg")
}

pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
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

impl Wal {
    /// Starts the writer, continuing the log where recovery left it.
    ///
    /// # Errors
    /// Besides I/O errors, `InvalidData` when `end` does not describe the log's newest
    /// segment: continuing an older one would give its new records the LSNs of later ones.
    pub fn open(fs: Arc<dyn FileSystem>, config: WalConfig, end: &LogEnd) -> std::io::Result<Wal> {
        fs.create_dir_all(&config.dir)?;
        // What recovery left (the segment to continue, the leftovers it removed) must be the
        // directory's durable state before a record is acknowledged in it: otherwise a power
        // loss could bring back a removed segment, or lose the one continued.
        fs.sync_dir(&config.dir)?;
        let newest = list_segments(fs.as_ref(), &config.dir)?
            .last()
            .map(|(first, _)| *first);
        let continues_newest = match (&end.last_segment, newest) {
            (Some(last), Some(newest)) => last.first_lsn == newest,
            (None, Some(newest)) => newest < end.next_lsn,
            (_, None) => end.last_segment.is_none(),
        };
        if !continues_newest {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "refusing to continue the log in {}: its newest segment starts at record {newest:?}, recovery ended in {:?}",
                    config.dir.display(),
                    end.last_segment
                ),
            ));
        }
        let (segment, segment_first_lsn) = match &end.last_segment {
            Some(last) => (fs.open_at(&last.path, last.len_bytes)?, last.first_lsn),
            None => (
                writer::create_segment(
                    fs.as_ref(),
                    &config.dir,
                    end.next_lsn,
                    config.space.as_deref(),
                )?,
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
                failed: None,
                closing: false,
            }),
            wake: Condvar::new(),
            synced: Condvar::new(),
            durable: durable_tx,
        });
        let stats = Arc::new(WalStats::default());
        let keys = config.keys.clone();
        let writer = Writer::new(
            fs,
            config,
            shared.clone(),
            segment,
            segment_first_lsn,
            stats.clone(),
        );
        let writer = std::thread::Builder::new()
            .name("baton-wal".to_string())
            .spawn(move || writer.run())?;
        Ok(Wal {
            shared,
            keys,
            durable: durable_rx,
            writer: Some(writer),
            stats,
        })
    }

    /// Queues one record and returns its LSN. Records are written in LSN order.
    pub fn submit(&self, kind: u8, payload: &[u8]) -> Result<u64, WalError> {
        let mut pending = self.shared.pending.lock();
        if let Some(failure) = &pending.failed {
            return Err(failure.error());
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
        // Sealed under the lock, as the checksum is: LSN order is file order.
        seal::encode_frame(self.keys.as_deref(), kind, payload, &mut pending.buf);
        pending.next_lsn += 1;
        drop(pending);
        self.shared.wake.notify_one();
        Ok(lsn)
    }

    /// Bytes the frame of a `payload_len`-byte record occupies in a segment.
    pub fn frame_bytes(&self, payload_len: usize) -> usize {
        seal::frame_bytes(self.keys.as_deref(), payload_len)
    }

    /// The LSN the next submitted record will get.
    pub fn next_lsn(&self) -> u64 {
        self.shared.pending.lock().next_lsn
    }

    /// The newest LSN known durable.
    pub fn durable_lsn(&self) -> u64 {
        self.durable.borrow().lsn
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
        Err(state.failure.map_or(
            WalError::Poisoned {
                reason: Arc::from("unknown"),
            },
            |failure| failure.error(),
        ))
    }

    /// Blocks the calling thread until record `lsn` is durable or the log stops (for callers
    /// outside the async runtime's workers, such as a checkpoint).
    pub fn wait_durable_blocking(&self, lsn: u64) -> Result<(), WalError> {
        let mut pending = self.shared.pending.lock();
        loop {
            let state = self.durable.borrow().clone();
            if state.lsn >= lsn {
                return Ok(());
            }
            if let Some(failure) = state.failure {
                return Err(failure.error());
            }
            if pending.closing && pending.buf.is_empty() {
                return Err(WalError::Closed);
            }
            // The writer notifies `synced` after every published batch and on failure.
            self.shared
                .synced
                .wait_for(&mut pending, std::time::Duration::from_millis(50));
        }
    }

    pub fn failure(&self) -> Option<WalFailure> {
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
