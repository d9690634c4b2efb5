//! The data directory's free space: the disk-free alarm and the emergency reserve.
//!
//! A full disk is a state the broker lives through, not a failure (RabbitMQ's disk-free alarm
//! is the model). Below `free_min_bytes` the alarm is on: the engine refuses producers
//! (sends, publishes, stream appends) while consumers go on — their records are small and fit
//! in what is left. Should the disk fill up all the same (another process, or a restart on a
//! full disk), a log write that gets ENOSPC gives up the *emergency reserve*, a file of
//! `reserve_bytes` zeros kept in the data directory, and tries once more; the engine puts the
//! reserve back once the alarm is off and there is room for it.
//!
//! The free space is read (statvfs) on the engine's tick, whenever a log takes a new segment,
//! and after every `CHECK_EVERY_BYTES` written, so the alarm lags the disk by at most that much
//! per log.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::io::FileSystem;

/// The reserve's file name in the data directory.
pub const RESERVE_FILE: &str = "disk-reserve";
/// A log re-reads the free space after writing this much.
pub const CHECK_EVERY_BYTES: u64 = 1024 * 1024;

pub struct DiskSpace {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    free_min_bytes: u64,
    reserve_bytes: u64,
    free_bytes: AtomicU64,
    low: AtomicBool,
    /// Whether the last read of the free space failed (then the alarm keeps its state).
    unknown: AtomicBool,
    written_since_check: AtomicU64,
    /// Serialises giving up and putting back the reserve.
    reserve: Mutex<()>,
}

impl std::fmt::Debug for DiskSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskSpace")
            .field("dir", &self.dir)
            .field("free_min_bytes", &self.free_min_bytes)
            .field("reserve_bytes", &self.reserve_bytes)
            .field("free_bytes", &self.free_bytes())
            .field("low", &self.is_low())
            .finish()
    }
}

impl DiskSpace {
    /// Watches the file system of `data_dir`; reads its free space once.
    pub fn new(
        fs: Arc<dyn FileSystem>,
        data_dir: &Path,
        free_min_bytes: u64,
        reserve_bytes: u64,
    ) -> Arc<Self> {
        let space = Arc::new(DiskSpace {
            fs,
            dir: data_dir.to_path_buf(),
            free_min_bytes,
            reserve_bytes,
            free_bytes: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
            unknown: AtomicBool::new(false),
            written_since_check: AtomicU64::new(0),
            reserve: Mutex::new(()),
        });
        space.check();
        space
    }

    fn reserve_path(&self) -> PathBuf {
        self.dir.join(RESERVE_FILE)
    }

    /// Reads the free space and sets the alarm from it; returns it (`None` when it cannot be
    /// read, which leaves the alarm as it was).
    pub fn check(&self) -> Option<u64> {
        self.written_since_check.store(0, Ordering::Relaxed);
        match self.fs.free_bytes(&self.dir) {
            Ok(free) => {
                self.free_bytes.store(free, Ordering::Relaxed);
                self.unknown.store(false, Ordering::Relaxed);
                let low = free < self.free_min_bytes;
                if self.low.swap(low, Ordering::AcqRel) != low {
                    if low {
                        tracing::warn!(free_bytes = free, disk_free_min = self.free_min_bytes, dir = %self.dir.display(), "disk space low: refusing sends, publishes and stream appends until space is freed");
                    } else {
                        tracing::info!(
                            free_bytes = free,
                            disk_free_min = self.free_min_bytes,
                            "disk space recovered: accepting writes again"
                        );
                    }
                }
                Some(free)
            }
            Err(error) => {
                if !self.unknown.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, dir = %self.dir.display(), "cannot read the free disk space");
                }
                None
            }
        }
    }

    /// Counts bytes a log wrote; re-reads the free space every `CHECK_EVERY_BYTES`.
    pub fn note_written(&self, bytes: u64) {
        let since = self.written_since_check.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if since >= CHECK_EVERY_BYTES {
            self.check();
        }
    }

    /// Whether the alarm is on: free space below `free_min_bytes`.
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::Acquire)
    }

    /// Free bytes at the last check.
    pub fn free_bytes(&self) -> u64 {
        self.free_bytes.load(Ordering::Relaxed)
    }

    pub fn free_min_bytes(&self) -> u64 {
        self.free_min_bytes
    }

    pub fn reserve_bytes(&self) -> u64 {
        self.reserve_bytes
    }

    /// Whether the emergency reserve is in place.
    pub fn reserve_present(&self) -> bool {
        self.reserve_bytes > 0 && self.fs.file_len(&self.reserve_path()).is_ok()
    }

    /// Deletes the emergency reserve so a write that found the disk full can finish; returns
    /// whether it freed anything.
    pub fn release_reserve(&self) -> bool {
        let _guard = self.reserve.lock();
        let path = self.reserve_path();
        if self.fs.file_len(&path).is_err() || self.fs.remove(&path).is_err() {
            return false;
        }
        tracing::warn!(
            reserve_bytes = self.reserve_bytes,
            "released the emergency disk reserve"
        );
        self.check();
        true
    }

    /// Puts the emergency reserve back when the alarm is off and there is room for it without
    /// turning the alarm on. Returns whether it created the reserve.
    ///
    /// # Errors
    /// I/O errors other than a lack of space (that only means "not now").
    pub fn restore_reserve(&self) -> std::io::Result<bool> {
        if self.reserve_bytes == 0 || self.reserve_present() {
            return Ok(false);
        }
        let Some(free) = self.check() else {
            return Ok(false);
        };
        if free < self.free_min_bytes.saturating_add(self.reserve_bytes) {
            return Ok(false);
        }
        let _guard = self.reserve.lock();
        let path = self.reserve_path();
        let tmp = self.dir.join(format!("{RESERVE_FILE}.tmp"));
        let created = (|| {
            let mut file = self.fs.create(&tmp)?;
            file.prepare(self.reserve_bytes)?;
            self.fs.rename(&tmp, &path)?;
            self.fs.sync_dir(&self.dir)
        })();
        match created {
            Ok(()) => {
                self.check();
                Ok(true)
            }
            Err(error) => {
                let _ = self.fs.remove(&tmp);
                if crate::io::is_disk_full(&error) {
                    Ok(false)
                } else {
                    Err(error)
                }
            }
        }
    }
}
