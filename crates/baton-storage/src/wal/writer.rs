//! The log's writer thread: group commit, segment rolls, zero-filling ahead, and what it does
//! when the disk fills up.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::frame::{self, HEADER_BYTES};
use crate::io::{is_disk_full, AppendFile, FileSystem};
use crate::space::DiskSpace;

use super::{
    observe, segment_name, Shared, SyncPolicy, WalConfig, WalFailure, WalStats,
    BATCH_RECORDS_BUCKETS, SEGMENT_MAGIC, SYNC_MICROS_BUCKETS,
};

/// How far ahead of the writer a segment is zero-filled.
const PREPARE_STEP_BYTES: u64 = 4 * 1024 * 1024;
/// What an idle writer zero-fills at a time: a record that arrives meanwhile waits for at
/// most this much. Under a steady low load (the p99 benchmark) zero-filling a whole step in the
/// way of waiting records made the tail latency (docs/benchmarks.md).
const PREPARE_IDLE_CHUNK_BYTES: u64 = 512 * 1024;
/// Largest written batch buffer kept for reuse; a burst's larger one is freed.
const SPARE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// After zero-filling failed for want of space, how long the writer waits before it tries
/// again (writes go on without it meanwhile).
const PREPARE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Runs `op`; when it fails for want of space and the data directory's emergency reserve can be
/// given up, gives it up and runs `op` once more. A failed append leaves the file's logical
/// length where it was, so running it again rewrites the same bytes.
fn with_reserve<T>(
    space: Option<&DiskSpace>,
    mut op: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    match op() {
        Err(error) if is_disk_full(&error) && space.is_some_and(DiskSpace::release_reserve) => {
            tracing::warn!(%error, "the disk is full; gave up the emergency reserve to finish a log write");
            op()
        }
        other => other,
    }
}

/// Creates segment `first_lsn` and makes it durable (header, file, directory entry) before it
/// is used. A half-created segment is removed again, so that no empty file is left behind.
pub(super) fn create_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    first_lsn: u64,
    space: Option<&DiskSpace>,
) -> std::io::Result<Box<dyn AppendFile>> {
    if let Some(space) = space {
        // Rolls are when the log takes new space: the alarm should know at once.
        space.check();
    }
    let path = dir.join(segment_name(first_lsn));
    let attempt = || -> std::io::Result<Box<dyn AppendFile>> {
        let created = (|| {
            let mut file = fs.create(&path)?;
            file.append(&frame::header(SEGMENT_MAGIC))?;
            file.sync()?;
            fs.sync_dir(dir)?;
            Ok(file)
        })();
        if created.is_err() {
            // Best effort: replay drops an unreadable newest segment anyway.
            let _ = fs.remove(&path);
            let _ = fs.sync_dir(dir);
        }
        created
    };
    with_reserve(space, attempt)
}

pub(super) struct Writer {
    fs: Arc<dyn FileSystem>,
    config: WalConfig,
    shared: Arc<Shared>,
    segment: Box<dyn AppendFile>,
    segment_first_lsn: u64,
    /// How far the current segment is zero-filled; appends below it change no file size.
    prepared_bytes: u64,
    /// Set when zero-filling failed for want of space: not before this instant again.
    prepare_blocked_until: Option<Instant>,
    stats: Arc<WalStats>,
}

impl Writer {
    pub(super) fn new(
        fs: Arc<dyn FileSystem>,
        config: WalConfig,
        shared: Arc<Shared>,
        segment: Box<dyn AppendFile>,
        segment_first_lsn: u64,
        stats: Arc<WalStats>,
    ) -> Self {
        Writer {
            fs,
            config,
            shared,
            segment,
            segment_first_lsn,
            prepared_bytes: 0,
            prepare_blocked_until: None,
            stats,
        }
    }

    /// Runs until closed or failed.
    pub(super) fn run(mut self) {
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
                            self.fail(&error);
                            return;
                        }
                        pending = shared.pending.lock();
                        continue;
                    }
                    let due = match (self.config.sync, unsynced) {
                        (SyncPolicy::Interval(interval), true) => Some(last_sync + interval),
                        _ => self.prepare_blocked_until,
                    };
                    match due {
                        Some(due) => {
                            if Instant::now() >= due
                                || self.shared.wake.wait_until(&mut pending, due).timed_out()
                            {
                                break;
                            }
                        }
                        None => self.shared.wake.wait(&mut pending),
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
            self.stats
                .write_micros
                .fetch_add(write_started.elapsed().as_micros() as u64, Relaxed);
            let result = written.and_then(|()| {
                self.sync_if_due(!batch.is_empty(), closing, &mut unsynced, &mut last_sync)
            });
            if let Err(error) = result {
                self.fail(&error);
                return;
            }
            if !batch.is_empty() {
                self.note_written(batch.len() as u64, batch_first_lsn, next_lsn);
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

    /// Syncs the segment when the policy says so after a batch (`wrote`: it held records),
    /// and keeps `unsynced` and `last_sync` up to date.
    fn sync_if_due(
        &mut self,
        wrote: bool,
        closing: bool,
        unsynced: &mut bool,
        last_sync: &mut Instant,
    ) -> std::io::Result<()> {
        let sync_now = match self.config.sync {
            SyncPolicy::Always => wrote || (closing && *unsynced),
            SyncPolicy::Interval(interval) => {
                (*unsynced || wrote) && (last_sync.elapsed() >= interval || closing)
            }
            SyncPolicy::Never => closing && (*unsynced || wrote),
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
            *last_sync = Instant::now();
            *unsynced = false;
        } else if wrote {
            *unsynced = true;
        }
        Ok(())
    }

    /// Counts a written batch of records `first_lsn..next_lsn` and tells the waiters what is
    /// durable now.
    fn note_written(&self, bytes: u64, first_lsn: u64, next_lsn: u64) {
        self.stats.n_batches.fetch_add(1, Relaxed);
        self.stats
            .n_records
            .fetch_add(next_lsn - first_lsn, Relaxed);
        observe(
            &self.stats.batch_records_buckets,
            &BATCH_RECORDS_BUCKETS,
            next_lsn - first_lsn,
        );
        self.stats.n_bytes.fetch_add(bytes, Relaxed);
        self.shared.durable.send_modify(|d| d.lsn = next_lsn - 1);
        self.shared.synced.notify_all();
        if let Some(space) = &self.config.space {
            space.note_written(bytes);
        }
    }

    /// Stops the log after an I/O failure: nothing more is accepted, every waiter is told.
    fn fail(&self, error: &std::io::Error) {
        let disk_full = is_disk_full(error);
        let failure = WalFailure {
            reason: Arc::from(format!("write-ahead log I/O failed: {error}")),
            disk_full,
        };
        if disk_full {
            if let Some(space) = &self.config.space {
                space.check();
            }
            tracing::error!(reason = %failure, dir = %self.config.dir.display(), "the disk is full; the write-ahead log stops until it is reopened");
        } else {
            tracing::error!(reason = %failure, dir = %self.config.dir.display(), "poisoning the write-ahead log");
        }
        self.shared.pending.lock().failed = Some(failure.clone());
        self.shared
            .durable
            .send_modify(|d| d.failure = Some(failure));
        self.shared.synced.notify_all();
    }

    /// Whether the current segment is zero-filled less than a whole step ahead of the writer
    /// (and can still grow), and zero-filling is not on hold for want of space.
    fn prepare_ahead_due(&self) -> bool {
        if self
            .prepare_blocked_until
            .is_some_and(|until| Instant::now() < until)
        {
            return false;
        }
        let target =
            (self.segment.len_bytes() + PREPARE_STEP_BYTES).min(self.config.segment_bytes_max);
        self.prepared_bytes < target
    }

    /// Zero-fills (and syncs) one more chunk of the current segment.
    fn prepare_ahead_chunk(&mut self) -> std::io::Result<()> {
        let upto = (self.prepared_bytes.max(self.segment.len_bytes()) + PREPARE_IDLE_CHUNK_BYTES)
            .min(self.config.segment_bytes_max);
        self.prepare(upto)
    }

    /// Zero-fills the current segment up to `upto`. Zero-filling only makes later syncs
    /// cheaper, so a disk without the space for it is not an error: the writer goes on without
    /// and tries again later (the emergency reserve is kept for records).
    fn prepare(&mut self, upto: u64) -> std::io::Result<()> {
        match self.segment.prepare(upto) {
            Ok(()) => {
                self.prepared_bytes = upto;
                self.prepare_blocked_until = None;
                Ok(())
            }
            Err(error) if is_disk_full(&error) => {
                if self.prepare_blocked_until.is_none() {
                    tracing::warn!(%error, "not enough space to zero-fill the log ahead; writing without");
                }
                self.prepare_blocked_until = Some(Instant::now() + PREPARE_RETRY_AFTER);
                self.prepared_bytes = self.prepared_bytes.max(self.segment.len_bytes());
                Ok(())
            }
            Err(error) => Err(error),
        }
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
            self.segment = create_segment(
                self.fs.as_ref(),
                &self.config.dir,
                batch_first_lsn,
                self.config.space.as_deref(),
            )?;
            self.segment_first_lsn = batch_first_lsn;
            self.prepared_bytes = 0;
            self.prepare_blocked_until = None;
        }
        let end = self.segment.len_bytes() + batch.len() as u64;
        let prepare_on_hold = self
            .prepare_blocked_until
            .is_some_and(|until| Instant::now() < until);
        if end > self.prepared_bytes && !prepare_on_hold {
            // Zero-fill ahead in steps, so most syncs find the file size unchanged.
            let upto = (self.segment.len_bytes() + PREPARE_STEP_BYTES)
                .min(self.config.segment_bytes_max)
                .max(end);
            self.prepare(upto)?;
        }
        let segment = &mut self.segment;
        with_reserve(self.config.space.as_deref(), || segment.append(batch))
    }
}
