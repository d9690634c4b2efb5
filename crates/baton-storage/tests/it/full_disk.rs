//! The log on a disk that fills up: nothing acknowledged is lost or overwritten, the directory
//! always opens again, the emergency reserve lets a write finish, gaps are reported and
//! repaired.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use baton_storage::wal::{self as wal_mod, WalError, DROPPED_DIR};
use baton_storage::{
    CrashMode, DiskSpace, FileSystem, RecoveryError, ReplayMode, SimFaults, SimFs, SimRun,
    SimSchedule, Wal, WalConfig,
};

use crate::*;

fn replay_mode(fs: &SimFs, mode: ReplayMode) -> Result<(Records, wal_mod::LogEnd), RecoveryError> {
    let mut records = Vec::new();
    let end = wal_mod::replay(fs, &dir(), 1, mode, |lsn, kind, payload| {
        records.push((lsn, kind, payload.to_vec()));
        Ok(())
    })?;
    Ok((records, end))
}

/// The cut that lost acknowledged messages: a roll that failed for want of space left an empty
/// newest segment; recovery removed it and must continue the segment before it at its end, not
/// at its start.
#[tokio::test]
async fn an_empty_newest_segment_left_by_a_failed_roll_does_not_rewind_the_one_before() {
    let fs = SimFs::new();
    write_records(&fs, 6, 1 << 20).await;
    // What a roll that got ENOSPC writing the header leaves behind.
    let empty = fs.create(&segment_path(7)).unwrap();
    drop(empty);
    fs.sync_dir(&dir()).unwrap();
    let (records, end) = read_all(&fs, 1).unwrap();
    assert_eq!((records.len(), end.next_lsn), (6, 7));
    let last = end.last_segment.clone().unwrap();
    assert_eq!(last.first_lsn, 1, "the log continues in the segment before");
    assert!(last.len_bytes > HEADER_BYTES_U64, "{last:?}");
    let wal = open(&fs, &end, 1 << 20);
    for i in 7..=9 {
        let lsn = wal.submit(7, &payload(i)).unwrap();
        wal.wait_durable(lsn).await.unwrap();
    }
    wal.close();
    let (records, _) = read_all(&fs, 1).unwrap();
    let expected: Vec<(u64, u8, Vec<u8>)> = (1..=9).map(|i| (i, 7, payload(i))).collect();
    assert_eq!(records, expected);
}

const HEADER_BYTES_U64: u64 = baton_storage::frame::HEADER_BYTES as u64;

#[tokio::test]
async fn open_refuses_to_continue_a_segment_that_is_not_the_newest() {
    let fs = SimFs::new();
    write_records(&fs, 30, 256).await;
    let (_, end) = read_all(&fs, 1).unwrap();
    let mut stale = end.clone();
    let first = wal_mod::list_segments(&fs, &dir()).unwrap()[0].clone();
    stale.last_segment = Some(baton_storage::LastSegment {
        first_lsn: first.0,
        path: first.1,
        len_bytes: HEADER_BYTES_U64,
    });
    let shared: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let refused = Wal::open(shared, config(256), &stale);
    assert!(
        matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::InvalidData),
        "{:?}",
        refused.err()
    );
    assert_eq!(read_all(&fs, 1).unwrap().0.len(), 30, "nothing was touched");
}

#[tokio::test]
async fn a_full_disk_stops_the_log_as_disk_full_and_it_continues_once_there_is_space() {
    let fs = SimFs::new();
    fs.set_capacity(Some(16 * 1024));
    let wal = open(&fs, &fresh_end(), 4096);
    let mut acknowledged = 0u64;
    let failure = loop {
        let lsn = wal.submit(7, &[b'x'; 300]).unwrap();
        match wal.wait_durable(lsn).await {
            Ok(()) => acknowledged += 1,
            Err(error) => break error,
        }
        assert!(acknowledged < 1000, "the disk never filled");
    };
    assert!(matches!(failure, WalError::DiskFull { .. }), "{failure}");
    assert!(wal.failure().unwrap().disk_full);
    assert!(matches!(
        wal.submit(7, b"more"),
        Err(WalError::DiskFull { .. })
    ));
    drop(wal);
    // The directory opens on the full disk, with every acknowledged record.
    let (records, end) = read_all(&fs, 1).unwrap();
    assert!(
        acknowledged <= records.len() as u64 && records.len() as u64 <= acknowledged + 1,
        "{acknowledged} acknowledged, {} replayed",
        records.len()
    );
    fs.set_capacity(Some(64 * 1024));
    let wal = open(&fs, &end, 4096);
    let lsn = wal.submit(7, b"after").unwrap();
    wal.wait_durable(lsn).await.unwrap();
    wal.close();
    let (records, _) = read_all(&fs, 1).unwrap();
    assert_eq!(records.last().unwrap().2, b"after");
}

#[tokio::test]
async fn the_emergency_reserve_is_given_up_to_finish_a_write_on_a_full_disk() {
    let fs = SimFs::new();
    fs.set_capacity(Some(64 * 1024));
    let shared: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let space = DiskSpace::new(shared.clone(), Path::new("/"), 12 * 1024, 8 * 1024);
    assert!(space.restore_reserve().unwrap());
    assert!(space.reserve_present());
    assert!(!space.is_low());
    let wal = Wal::open(
        shared.clone(),
        WalConfig {
            space: Some(space.clone()),
            keys: None,
            ..config(2048)
        },
        &fresh_end(),
    )
    .unwrap();
    let lsn = wal.submit(7, b"first").unwrap();
    wal.wait_durable(lsn).await.unwrap();
    // Something else takes every byte that is left.
    let mut hog = fs.create(Path::new("/other/hog")).unwrap();
    let free = fs.free_bytes(Path::new("/")).unwrap();
    hog.prepare(free).unwrap();
    assert_eq!(fs.free_bytes(Path::new("/")).unwrap(), 0);
    // Enough records to need new segments: the reserve makes room.
    for i in 0..150u64 {
        let lsn = wal.submit(7, &payload(i)).unwrap();
        wal.wait_durable(lsn).await.unwrap();
    }
    assert!(!space.reserve_present(), "the reserve was given up");
    assert!(space.is_low(), "and the alarm is on");
    // No room for it again until space is freed.
    assert!(!space.restore_reserve().unwrap());
    drop(hog);
    fs.remove(Path::new("/other/hog")).unwrap();
    space.check();
    assert!(!space.is_low());
    assert!(space.restore_reserve().unwrap());
    wal.close();
    assert_eq!(read_all(&fs, 1).unwrap().0.len(), 151);
}

#[tokio::test]
async fn a_missing_segment_is_reported_by_verify_refused_by_recover_and_cut_by_repair() {
    let fs = SimFs::new();
    write_records(&fs, 40, 256).await;
    let segments = wal_mod::list_segments(&fs, &dir()).unwrap();
    assert!(segments.len() >= 4, "{segments:?}");
    let (missing_first, missing) = segments[1].clone();
    let (resumes_at, _) = segments[2].clone();
    fs.remove(&missing).unwrap();
    fs.sync_dir(&dir()).unwrap();

    let refused = read_all(&fs, 1);
    assert!(
        matches!(&refused, Err(RecoveryError::Gap { expected, found, .. }) if *expected == missing_first && *found == resumes_at),
        "{:?}",
        refused.err()
    );

    let (before, end) = replay_mode(&fs, ReplayMode::Verify).unwrap();
    let gap = end.gap.clone().unwrap();
    assert_eq!(before.len() as u64, missing_first - 1);
    assert_eq!(
        (gap.missing_from, gap.resumes_at),
        (missing_first, resumes_at)
    );
    assert_eq!(gap.segments_after.len(), segments.len() - 2);
    assert_eq!(gap.records_after, 40 - (resumes_at - 1));
    assert_eq!(
        wal_mod::list_segments(&fs, &dir()).unwrap().len(),
        segments.len() - 1,
        "verify changes nothing"
    );

    let (kept, end) = replay_mode(&fs, ReplayMode::Repair).unwrap();
    assert_eq!(kept, before);
    assert_eq!(end.gap.as_ref().unwrap().records_after, gap.records_after);
    assert_eq!(end.next_lsn, missing_first);
    let dropped = fs.list(&dir().join(DROPPED_DIR)).unwrap();
    assert_eq!(dropped.len(), segments.len() - 2, "{dropped:?}");
    // The repaired log continues and recovers normally afterwards.
    let wal = open(&fs, &end, 256);
    let lsn = wal.submit(7, b"after repair").unwrap();
    wal.wait_durable(lsn).await.unwrap();
    wal.close();
    let (records, _) = read_all(&fs, 1).unwrap();
    assert_eq!(records.len() as u64, missing_first);
    assert_eq!(records.last().unwrap().2, b"after repair");
}

/// Opens the log as recovery would, retrying while faults stop it; returns the acknowledged
/// records found on disk.
fn reopen(fs: &SimFs, space: &Arc<DiskSpace>, segment_bytes: u64) -> (Records, Wal) {
    let mut last_error = String::new();
    for _ in 0..1000 {
        let (records, end) = match read_all(fs, 1) {
            Ok(read) => read,
            Err(error) => {
                // A fault inside recovery's own cut (truncate, remove) may stop it: try again.
                last_error = error.to_string();
                continue;
            }
        };
        let shared: Arc<dyn FileSystem> = Arc::new(fs.clone());
        let config = WalConfig {
            space: Some(space.clone()),
            keys: None,
            ..config(segment_bytes)
        };
        match Wal::open(shared, config, &end) {
            Ok(wal) => return (records, wal),
            Err(error) => last_error = error.to_string(),
        }
    }
    panic!("the log did not open in 1000 attempts: {last_error}");
}

#[tokio::test]
async fn random_enospc_at_every_kind_of_call_never_loses_or_rewrites_an_acknowledged_record() {
    let mut injected: BTreeMap<baton_storage::SimCall, u64> = BTreeMap::new();
    for schedule in SimRun::from_env(0xD15C, 1000).schedules() {
        let mut rng = schedule.rng();
        let fs = SimFs::new();
        let capacity = 6 * 1024 + rng.below(24 * 1024);
        fs.set_capacity(Some(capacity));
        fs.set_faults(Some(SimFaults {
            seed: rng.next_u64(),
            one_in: 4 + rng.below(40) as u32,
        }));
        let shared: Arc<dyn FileSystem> = Arc::new(fs.clone());
        let space = DiskSpace::new(shared, Path::new("/"), 1024, 1024);
        let _ = space.restore_reserve();
        let segment_bytes = 300 + rng.below(1200);
        // Payload → LSN of every acknowledged record.
        let mut acknowledged: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        let mut n = 0u64;
        let (_, mut wal) = reopen(&fs, &space, segment_bytes);
        for _round in 0..12 {
            let batch = 1 + rng.below(6);
            let mut submitted = Vec::new();
            for _ in 0..batch {
                n += 1;
                let body = format!(
                    "s{}-r{n}-{}",
                    schedule.index,
                    "x".repeat(rng.below(120) as usize)
                );
                if let Ok(lsn) = wal.submit(7, body.as_bytes()) {
                    submitted.push((body.into_bytes(), lsn));
                }
            }
            for (body, lsn) in submitted {
                if wal.wait_durable(lsn).await.is_ok() {
                    acknowledged.insert(body, lsn);
                }
            }
            if wal.failure().is_some() || rng.one_in(5) {
                drop(wal);
                if rng.one_in(2) {
                    fs.crash(CrashMode::Torn {
                        keep_bytes: rng.below(200),
                    });
                }
                if rng.one_in(3) {
                    // Space comes back now and then.
                    fs.set_capacity(Some(capacity + rng.below(16 * 1024)));
                }
                let (records, reopened) = reopen(&fs, &space, segment_bytes);
                check_acknowledged(&records, &acknowledged, schedule);
                wal = reopened;
            }
        }
        drop(wal);
        for (call, count) in fs.faults_injected() {
            *injected.entry(call).or_default() += count;
        }
        fs.set_faults(None);
        fs.crash(CrashMode::LoseUnsynced);
        let (records, end) = read_all(&fs, 1)
            .unwrap_or_else(|e| panic!("{schedule}: the directory does not open: {e}"));
        check_acknowledged(&records, &acknowledged, schedule);
        let shared: Arc<dyn FileSystem> = Arc::new(fs.clone());
        Wal::open(shared, config(segment_bytes), &end)
            .unwrap_or_else(|e| panic!("{schedule}: the log does not continue: {e}"));
    }
    // Every kind of call the log makes was hit many times over the schedules (renames are a
    // checkpoint's: the engine's full-disk schedules hit those).
    for call in [
        baton_storage::SimCall::Write,
        baton_storage::SimCall::Prepare,
        baton_storage::SimCall::Sync,
        baton_storage::SimCall::Create,
        baton_storage::SimCall::SyncDir,
    ] {
        assert!(
            injected.get(&call).copied().unwrap_or(0) >= 20,
            "{call:?} was hardly faulted: {injected:?}"
        );
    }
}

/// Every acknowledged record is on disk once, with the LSN it was acknowledged with.
fn check_acknowledged(
    records: &Records,
    acknowledged: &BTreeMap<Vec<u8>, u64>,
    schedule: SimSchedule,
) {
    let found: BTreeMap<&[u8], u64> = records
        .iter()
        .map(|(lsn, _, body)| (body.as_slice(), *lsn))
        .collect();
    assert_eq!(found.len(), records.len(), "{schedule}: a record twice");
    for (body, lsn) in acknowledged {
        assert_eq!(
            found.get(body.as_slice()),
            Some(lsn),
            "{schedule}: acknowledged record {} lost or moved",
            String::from_utf8_lossy(body)
        );
    }
}
