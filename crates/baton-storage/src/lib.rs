//! # baton-storage
//!
//! Baton's on-disk format and nothing else: a segmented write-ahead log of checksummed frames
//! with group commit ([`wal`]), atomic checkpoints ([`checkpoint`]), the data-dir lock
//! ([`lock`]; distributed locks' records are [`lock_records`]), the file-system seam with a simulated disk for crash and full-disk tests
//! ([`io`]), the free-space alarm with its emergency reserve ([`space`]), and encryption at rest
//! of frames under a key file ([`seal`]).
//!
//! This crate moves bytes; it does not know what a queue is. The engine encodes its own
//! versioned record types into frame payloads.
//!
//! Limits: frame payloads up to 256 MiB, segments of 64 MiB by default (a batch may run over),
//! 256 MiB of records waiting for the writer before `submit` refuses.

pub mod checkpoint;
pub mod frame;
pub mod io;
pub mod lock;
pub mod lock_records;
pub mod records;
pub mod schedule_records;
pub mod seal;
pub mod space;
pub mod stream_records;
pub mod topic_records;
pub mod wal;

pub use io::{
    is_disk_full, sim_random, CrashMode, FileSystem, RealFs, SimCall, SimFaults, SimFs, SimRng,
    SimRun, SimSchedule,
};
pub use lock::{DataDirLock, LockError};
pub use seal::{KeyFileError, Keyring, SealError, SealScan};
pub use space::DiskSpace;
pub use wal::{
    replay, LastSegment, LogEnd, LogGap, RecoveryError, ReplayMode, SyncPolicy, Wal, WalConfig,
    WalError, WalFailure,
};

#[cfg(test)]
mod tests {
    /// Every frame kind names one record type, in whichever log it appears: a frame can never
    /// be decoded as another type's.
    #[test]
    fn frame_kinds_are_distinct() {
        let kinds = [
            crate::records::KIND_QUEUE_OP,
            crate::records::KIND_CHECKPOINT,
            crate::topic_records::KIND_TOPIC_OP,
            crate::topic_records::KIND_TOPIC_CHECKPOINT,
            crate::stream_records::KIND_STREAM_OP,
            crate::lock_records::KIND_LOCK_OP,
            crate::lock_records::KIND_LOCK_CHECKPOINT,
            crate::schedule_records::KIND_SCHEDULE_OP,
            crate::schedule_records::KIND_SCHEDULE_CHECKPOINT,
        ];
        let distinct: std::collections::BTreeSet<u8> = kinds.iter().copied().collect();
        assert_eq!(distinct.len(), kinds.len(), "{kinds:?}");
        // The high bit marks a sealed frame.
        assert!(kinds.iter().all(|kind| *kind < 0x7F), "{kinds:?}");
    }
}
