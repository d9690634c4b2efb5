//! The write-ahead log and checkpoints against a simulated disk: round trips, group commit,
//! torn writes at every byte, bit flips, power loss, interrupted checkpoints, poisoning.
#![allow(clippy::unwrap_used)]

mod checkpoints;
mod full_disk;
mod fuzz_corpus;
mod wal;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_storage::wal::{self as wal_mod, LogEnd, WalConfig};
use baton_storage::{FileSystem, SimFs, SyncPolicy, Wal};

pub fn dir() -> PathBuf {
    PathBuf::from("/data")
}

pub fn config(segment_bytes_max: u64) -> WalConfig {
    WalConfig {
        dir: dir(),
        sync: SyncPolicy::Always,
        segment_bytes_max,
        space: None,
        keys: None,
    }
}

pub type Records = Vec<(u64, u8, Vec<u8>)>;

/// Replays the whole log; returns `(lsn, kind, payload)` of every record and where it ends.
pub fn read_all(
    fs: &SimFs,
    from_lsn: u64,
) -> Result<(Records, LogEnd), baton_storage::RecoveryError> {
    let mut records = Vec::new();
    let end = wal_mod::replay(
        fs,
        &dir(),
        from_lsn,
        baton_storage::ReplayMode::Recover,
        |lsn, kind, payload| {
            records.push((lsn, kind, payload.to_vec()));
            Ok(())
        },
    )?;
    Ok((records, end))
}

pub fn open(fs: &SimFs, end: &LogEnd, segment_bytes_max: u64) -> Wal {
    let fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    Wal::open(fs, config(segment_bytes_max), end).unwrap()
}

pub fn fresh_end() -> LogEnd {
    LogEnd::empty(1)
}

pub fn payload(i: u64) -> Vec<u8> {
    format!("record number {i}").into_bytes()
}

/// Writes `n` records durably, one batch each, to a fresh log and closes it.
pub async fn write_records(fs: &SimFs, n: u64, segment_bytes_max: u64) {
    let wal = open(fs, &fresh_end(), segment_bytes_max);
    for i in 1..=n {
        let lsn = wal.submit(7, &payload(i)).unwrap();
        wal.wait_durable(lsn).await.unwrap();
    }
    wal.close();
}

pub fn segment_path(first_lsn: u64) -> PathBuf {
    dir().join(wal_mod::segment_name(first_lsn))
}

pub fn last_segment(fs: &SimFs) -> PathBuf {
    wal_mod::list_segments(fs, Path::new("/data"))
        .unwrap()
        .last()
        .unwrap()
        .1
        .clone()
}
