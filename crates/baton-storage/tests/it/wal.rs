use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use baton_storage::frame::{FRAME_OVERHEAD_BYTES, HEADER_BYTES};
use baton_storage::wal::{self as wal_mod, WalError};
use baton_storage::{CrashMode, FileSystem, RecoveryError, SimFs, SyncPolicy, Wal};

use crate::*;

#[tokio::test]
async fn records_come_back_in_order_after_reopen() {
    let fs = SimFs::new();
    write_records(&fs, 100, 1 << 20).await;
    let (records, end) = read_all(&fs, 1).unwrap();
    assert_eq!(records.len(), 100);
    for (i, (lsn, kind, body)) in records.iter().enumerate() {
        assert_eq!(
            (*lsn, *kind, body),
            ((i + 1) as u64, 7, &payload(i as u64 + 1))
        );
    }
    assert_eq!((end.next_lsn, end.truncated_bytes), (101, 0));

    // The log continues where it ended.
    let wal = open(&fs, &end, 1 << 20);
    let lsn = wal.submit(8, b"more").unwrap();
    assert_eq!(lsn, 101);
    wal.wait_durable(lsn).await.unwrap();
    wal.close();
    let (records, _) = read_all(&fs, 1).unwrap();
    assert_eq!(records.last().unwrap(), &(101, 8, b"more".to_vec()));
    let (from_middle, _) = read_all(&fs, 51).unwrap();
    assert_eq!(from_middle.first().unwrap().0, 51);
}

#[tokio::test]
async fn small_segments_roll_and_replay_across_them() {
    let fs = SimFs::new();
    write_records(&fs, 200, 512).await;
    let segments = wal_mod::list_segments(&fs, &dir()).unwrap();
    assert!(segments.len() > 5, "{} segments", segments.len());
    let (records, _) = read_all(&fs, 1).unwrap();
    assert_eq!(records.len(), 200);

    // A missing segment in the middle is a gap, not silently skipped.
    fs.remove(&segments[2].1).unwrap();
    assert!(matches!(read_all(&fs, 1), Err(RecoveryError::Gap { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submitters_share_fsyncs() {
    let fs = SimFs::new();
    let wal = Arc::new(open(&fs, &fresh_end(), 64 << 20));
    let mut tasks = Vec::new();
    for producer in 0..32u64 {
        let wal = wal.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50u64 {
                let lsn = wal.submit(1, &payload(producer * 1000 + i)).unwrap();
                wal.wait_durable(lsn).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.n_records.load(Relaxed), 32 * 50);
    assert!(stats.n_syncs.load(Relaxed) <= stats.n_batches.load(Relaxed));
    let wal = Arc::try_unwrap(wal).ok().unwrap();
    wal.close();
    assert_eq!(read_all(&fs, 1).unwrap().0.len(), 32 * 50);
}

#[tokio::test]
async fn a_torn_last_record_is_cut_at_every_byte_offset() {
    let pristine = SimFs::new();
    write_records(&pristine, 5, 4096).await;
    let path = last_segment(&pristine);
    // Segments are zero-filled ahead of the writer; the log ends where its records end.
    let log_len = read_all(&pristine, 1)
        .unwrap()
        .1
        .last_segment
        .unwrap()
        .len_bytes as usize;
    let last_len = FRAME_OVERHEAD_BYTES + payload(5).len();
    let last_start = log_len - last_len;
    for cut in last_start..log_len {
        // A torn write into prepared space: the record's bytes from `cut` on are still zeros.
        let fs = SimFs::new();
        write_records(&fs, 5, 4096).await;
        let mut file = fs.open_at(&path, cut as u64).unwrap();
        file.append(&vec![0u8; log_len - cut]).unwrap();
        file.sync().unwrap();
        let (records, end) = read_all(&fs, 1).unwrap();
        assert_eq!((records.len(), end.next_lsn), (4, 5), "zeroed from {cut}");
        assert_eq!(
            end.last_segment.as_ref().unwrap().len_bytes,
            last_start as u64,
            "zeroed from {cut}"
        );

        let fs = SimFs::new();
        write_records(&fs, 5, 4096).await;
        fs.truncate(&path, cut as u64).unwrap();
        let (records, end) = read_all(&fs, 1).unwrap();
        assert_eq!(records.len(), 4, "cut at {cut}");
        assert_eq!(
            end.truncated_bytes,
            (cut - last_start) as u64,
            "cut at {cut}"
        );
        assert_eq!(end.next_lsn, 5);
        assert_eq!(
            fs.contents(&path).unwrap().len(),
            last_start,
            "the tail is cut on disk"
        );
        // Appending after the cut works and is read back.
        let wal = open(&fs, &end, 4096);
        let lsn = wal.submit(7, b"after").unwrap();
        wal.wait_durable(lsn).await.unwrap();
        wal.close();
        let (records, _) = read_all(&fs, 1).unwrap();
        assert_eq!(records.len(), 5);
        assert_eq!(records[4], (5, 7, b"after".to_vec()));
    }
}

#[tokio::test]
async fn a_torn_segment_header_of_a_new_segment_is_dropped() {
    let fs = SimFs::new();
    write_records(&fs, 3, 1 << 20).await;
    let torn = segment_path(4);
    let mut file = fs.create(&torn).unwrap();
    file.append(b"BATON").unwrap();
    file.sync().unwrap();
    let (records, end) = read_all(&fs, 1).unwrap();
    assert_eq!(
        (records.len(), end.next_lsn, end.truncated_bytes),
        (3, 4, 5)
    );
}

#[tokio::test]
async fn bit_flips_in_the_tail_are_cut_and_in_the_middle_stop_recovery() {
    let record_bytes = (FRAME_OVERHEAD_BYTES + payload(1).len()) as u64;
    let header = HEADER_BYTES as u64;
    // Tail: the last record's payload.
    let fs = SimFs::new();
    write_records(&fs, 5, 4096).await;
    let path = last_segment(&fs);
    let size = read_all(&fs, 1).unwrap().1.last_segment.unwrap().len_bytes;
    fs.flip_bit(&path, size - 2, 3);
    let (records, end) = read_all(&fs, 1).unwrap();
    assert_eq!(records.len(), 4);
    assert!(end.truncated_bytes > 0);

    // Middle: the second record; the records after it are intact, so this is real damage.
    let fs = SimFs::new();
    write_records(&fs, 5, 4096).await;
    let offset = header + record_bytes + FRAME_OVERHEAD_BYTES as u64 + 1;
    fs.flip_bit(&path, offset, 0);
    match read_all(&fs, 1) {
        Err(RecoveryError::Corrupt {
            path: p,
            offset_bytes,
        }) => {
            assert_eq!(p, path);
            assert_eq!(offset_bytes, header + record_bytes);
            let message = RecoveryError::Corrupt {
                path: p,
                offset_bytes,
            }
            .to_string();
            assert!(message.contains("--repair"), "{message}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    // `--repair` cuts there.
    let mut n = 0;
    let end = wal_mod::replay(
        &fs,
        &dir(),
        1,
        baton_storage::ReplayMode::Repair,
        |_, _, _| {
            n += 1;
            Ok(())
        },
    )
    .unwrap();
    assert_eq!((n, end.next_lsn), (1, 2));

    // A flip in a segment that is not the last one is always an error.
    let fs = SimFs::new();
    write_records(&fs, 40, 256).await;
    let first = wal_mod::list_segments(&fs, &dir()).unwrap()[0].1.clone();
    let contents = fs.contents(&first).unwrap();
    let size = contents.iter().rposition(|b| *b != 0).unwrap() as u64 + 1;
    fs.flip_bit(&first, size - 1, 1);
    assert!(matches!(
        read_all(&fs, 1),
        Err(RecoveryError::Corrupt { .. })
    ));
}

/// Found by the `wal_replay` fuzz target (`fuzz/regressions/wal_replay/`): a repair that cuts
/// the log below the checkpoint's position, with segments after the cut, left the log ending
/// there, so the next record got an LSN the checkpoint covers and the recovery after it
/// skipped that acknowledged record.
#[tokio::test]
async fn a_repair_that_cuts_below_the_checkpoint_continues_the_log_at_the_checkpoint() {
    let fs = SimFs::new();
    write_records(&fs, 40, 256).await;
    let segments = wal_mod::list_segments(&fs, &dir()).unwrap();
    assert!(segments.len() > 1 && segments[1].0 > 3, "{segments:?}");
    // Damage record 2 of the first segment; a checkpoint covers records 1 and 2.
    let record_bytes = (FRAME_OVERHEAD_BYTES + payload(1).len()) as u64;
    fs.flip_bit(&segments[0].1, HEADER_BYTES as u64 + record_bytes + 5, 0);
    let from_lsn = 3;
    let end = wal_mod::replay(
        &fs,
        &dir(),
        from_lsn,
        baton_storage::ReplayMode::Repair,
        |_, _, _| Ok(()),
    )
    .unwrap();
    assert!(end.gap.is_some(), "{end:?}");
    assert_eq!((end.next_lsn, &end.last_segment), (from_lsn, &None));

    let wal = open(&fs, &end, 256);
    let lsn = wal.submit(7, b"after the repair").unwrap();
    wal.wait_durable(lsn).await.unwrap();
    wal.close();
    assert_eq!(lsn, from_lsn);
    let (records, _) = read_all(&fs, from_lsn).unwrap();
    assert_eq!(records, vec![(lsn, 7, b"after the repair".to_vec())]);
}

#[tokio::test]
async fn power_loss_keeps_every_acknowledged_record_under_fsync_always() {
    for keep_bytes in [0u64, 1, 7, 20, 1000] {
        let fs = SimFs::new();
        let wal = open(&fs, &fresh_end(), 1 << 20);
        let mut acked = 0;
        for i in 1..=50u64 {
            let lsn = wal.submit(1, &payload(i)).unwrap();
            if i % 10 == 0 {
                wal.wait_durable(lsn).await.unwrap();
                acked = lsn;
            }
        }
        // Power fails now, while later records may be written but not synced.
        fs.crash(CrashMode::Torn { keep_bytes });
        drop(wal);
        fs.crash(CrashMode::Torn { keep_bytes });
        let (records, _) = read_all(&fs, 1).unwrap();
        assert!(
            records.len() as u64 >= acked,
            "lost acknowledged records (kept {keep_bytes} torn bytes)"
        );
        for (i, (lsn, _, body)) in records.iter().enumerate() {
            assert_eq!((*lsn, body), (i as u64 + 1, &payload(i as u64 + 1)));
        }
    }
}

#[tokio::test]
async fn a_failed_write_poisons_the_log_and_nothing_more_is_acknowledged() {
    let fs = SimFs::new();
    let wal = open(&fs, &fresh_end(), 1 << 20);
    let ok = wal.submit(1, b"before").unwrap();
    wal.wait_durable(ok).await.unwrap();
    fs.fail_writes(Some(std::io::ErrorKind::Other));
    let doomed = wal.submit(1, b"during").unwrap();
    assert!(matches!(
        wal.wait_durable(doomed).await,
        Err(WalError::Poisoned { .. })
    ));
    assert!(matches!(
        wal.submit(1, b"after"),
        Err(WalError::Poisoned { .. })
    ));
    let failure = wal.failure().unwrap();
    assert!(failure.reason.contains("simulated"), "{failure}");
    assert!(!failure.disk_full);
    drop(wal);
    fs.fail_writes(None);
    let (records, end) = read_all(&fs, 1).unwrap();
    assert_eq!(records.len(), 1);
    // Reopening after the disk recovered works.
    let wal = open(&fs, &end, 1 << 20);
    let lsn = wal.submit(1, b"recovered").unwrap();
    wal.wait_durable(lsn).await.unwrap();
}

#[tokio::test]
async fn interval_and_never_policies_acknowledge_after_write() {
    for sync in [
        SyncPolicy::Interval(std::time::Duration::from_millis(5)),
        SyncPolicy::Never,
    ] {
        let fs = SimFs::new();
        let shared: Arc<dyn FileSystem> = Arc::new(fs.clone());
        let wal = Wal::open(
            shared,
            baton_storage::WalConfig {
                dir: dir(),
                sync,
                segment_bytes_max: 1 << 20,
                space: None,
                keys: None,
            },
            &fresh_end(),
        )
        .unwrap();
        let lsn = wal.submit(1, b"x").unwrap();
        wal.wait_durable(lsn).await.unwrap();
        wal.close();
        assert_eq!(read_all(&fs, 1).unwrap().0.len(), 1, "{sync}");
    }
    assert_eq!(
        "interval=250".parse::<SyncPolicy>(),
        Ok(SyncPolicy::Interval(std::time::Duration::from_millis(250)))
    );
    assert!("interval=0".parse::<SyncPolicy>().is_err());
    assert!("sometimes".parse::<SyncPolicy>().is_err());
}
