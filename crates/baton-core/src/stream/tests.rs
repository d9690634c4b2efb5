//! Unit tests of the stream rules, one behaviour each, with explicit time.

#![allow(clippy::unwrap_used)]

use super::*;

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn stream(partitions: u32) -> Stream {
    Stream::new(
        StreamName::new("s").unwrap(),
        StreamConfig {
            partitions,
            retention_ms: None,
            retention_bytes: None,
            max_records: None,
        },
    )
    .unwrap()
}

fn spec(key: Option<&str>, size: u64) -> AppendSpec {
    AppendSpec {
        key: key.map(|k| k.as_bytes().to_vec()),
        partition: None,
        size_bytes: size,
    }
}

/// Appends and publishes; locations count up from 0 across calls.
fn append(s: &mut Stream, now: u64, specs: &[AppendSpec]) -> Vec<Appended> {
    let base = s
        .partitions
        .iter()
        .map(|p| p.entries.len() as u64)
        .sum::<u64>()
        + 1000;
    let out = match s
        .append(t(now), None, specs, |i, _| base + i as u64)
        .unwrap()
    {
        AppendOutcome::Appended(out) => out,
        AppendOutcome::Duplicate(_) => panic!("not a duplicate"),
    };
    s.publish_all();
    out
}

fn group(s: &mut Stream, name: &str, start: StartPosition, mode: GroupMode) -> GroupName {
    let g = GroupName::new(name).unwrap();
    s.create_group(
        g.clone(),
        GroupConfig {
            start,
            mode,
            session_timeout_ms: 1000,
        },
    )
    .unwrap();
    g
}

fn c(name: &str) -> ConsumerName {
    ConsumerName::new(name).unwrap()
}

#[test]
fn keyed_records_go_to_the_hash_partition_and_keep_order() {
    let mut s = stream(8);
    let out = append(&mut s, 1, &[spec(Some("k"), 1), spec(Some("k"), 1)]);
    let expected = (key_hash(b"k") % 8) as u32;
    assert_eq!(out[0].partition, expected);
    assert_eq!(out[1].partition, expected);
    assert_eq!(out[1].offset, out[0].offset + 1);
}

#[test]
fn keyless_records_go_round_robin() {
    let mut s = stream(3);
    let out = append(
        &mut s,
        1,
        &[spec(None, 1), spec(None, 1), spec(None, 1), spec(None, 1)],
    );
    let partitions: Vec<u32> = out.iter().map(|a| a.partition).collect();
    assert_eq!(partitions, vec![0, 1, 2, 0]);
}

#[test]
fn timestamps_never_go_down_in_a_partition() {
    let mut s = stream(1);
    append(&mut s, 100, &[spec(None, 1)]);
    let out = append(&mut s, 50, &[spec(None, 1)]);
    assert_eq!(out[0].timestamp, t(100));
}

#[test]
fn explicit_partition_out_of_range_is_refused_and_changes_nothing() {
    let mut s = stream(2);
    let bad = AppendSpec {
        key: None,
        partition: Some(2),
        size_bytes: 1,
    };
    let result = s.append(t(1), None, &[spec(None, 1), bad], |i, _| i as u64);
    assert!(matches!(
        result,
        Err(StreamError::PartitionOutOfRange {
            partition: 2,
            partitions: 2
        })
    ));
    assert_eq!(s.stats(t(1)).records, 0);
}

#[test]
fn oversized_records_and_batches_are_refused() {
    let mut s = stream(1);
    let big = spec(None, u64::from(RECORD_BYTES_MAX) + 1);
    assert!(matches!(
        s.append(t(1), None, &[big], |i, _| i as u64),
        Err(StreamError::RecordTooLarge { index: 0, .. })
    ));
    let many: Vec<AppendSpec> = (0..=APPEND_BATCH_MAX).map(|_| spec(None, 1)).collect();
    assert!(matches!(
        s.append(t(1), None, &many, |i, _| i as u64),
        Err(StreamError::BatchTooLarge { .. })
    ));
    let heavy: Vec<AppendSpec> = (0..9)
        .map(|_| spec(None, u64::from(RECORD_BYTES_MAX)))
        .collect();
    assert!(matches!(
        s.append(t(1), None, &heavy, |i, _| i as u64),
        Err(StreamError::BatchTooLarge { .. })
    ));
    assert_eq!(s.stats(t(1)).records, 0);
}

#[test]
fn producer_retry_answers_the_original_offsets_and_lands_once() {
    let mut s = stream(2);
    let seq = ProducerSeq {
        producer: "p1".to_string(),
        sequence: 7,
    };
    let first = s.append(t(1), Some(&seq), &[spec(None, 1), spec(None, 1)], |i, _| {
        i as u64
    });
    let AppendOutcome::Appended(first) = first.unwrap() else {
        panic!("first append is new");
    };
    let retry = s.append(t(2), Some(&seq), &[spec(None, 1), spec(None, 1)], |i, _| {
        10 + i as u64
    });
    assert_eq!(retry.unwrap(), AppendOutcome::Duplicate(first));
    assert_eq!(s.stats(t(2)).records, 2);
}

#[test]
fn producer_sequence_older_than_the_window_is_stale() {
    let mut s = stream(1);
    for sequence in 1..=(PRODUCER_WINDOW as u64 + 1) {
        let seq = ProducerSeq {
            producer: "p".to_string(),
            sequence,
        };
        s.append(t(1), Some(&seq), &[spec(None, 1)], |i, _| i as u64)
            .unwrap();
    }
    let old = ProducerSeq {
        producer: "p".to_string(),
        sequence: 1,
    };
    assert!(matches!(
        s.append(t(1), Some(&old), &[spec(None, 1)], |i, _| i as u64),
        Err(StreamError::ProducerSequenceStale { sequence: 1, .. })
    ));
}

#[test]
fn producers_beyond_the_limit_forget_the_least_recently_seen() {
    let mut s = stream(1);
    for n in 0..=PRODUCERS_MAX as u64 {
        let seq = ProducerSeq {
            producer: format!("p{n}"),
            sequence: 1,
        };
        s.append(t(n), Some(&seq), &[spec(None, 1)], |i, _| i as u64)
            .unwrap();
    }
    assert_eq!(s.producers().count(), PRODUCERS_MAX);
    assert!(s.producers().all(|(name, _, _)| name != "p0"));
}

#[test]
fn read_from_time_starts_at_the_first_record_at_or_after_it() {
    let mut s = stream(1);
    append(&mut s, 10, &[spec(None, 1)]);
    append(&mut s, 20, &[spec(None, 1)]);
    append(&mut s, 30, &[spec(None, 1)]);
    let (records, next) = s.read(0, ReadFrom::Time(t(15)), 10).unwrap();
    assert_eq!(
        records.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(next, 3);
}

#[test]
fn read_past_the_end_or_before_retention_names_the_bounds() {
    let mut s = Stream::new(
        StreamName::new("s").unwrap(),
        StreamConfig {
            partitions: 1,
            retention_ms: None,
            retention_bytes: None,
            max_records: Some(2),
        },
    )
    .unwrap();
    append(&mut s, 1, &[spec(None, 1), spec(None, 1), spec(None, 1)]);
    s.enforce_retention(t(1));
    assert!(matches!(
        s.read(0, ReadFrom::Offset(0), 10),
        Err(StreamError::OffsetExpired {
            first_offset: 1,
            ..
        })
    ));
    assert!(matches!(
        s.read(0, ReadFrom::Offset(4), 10),
        Err(StreamError::OffsetOutOfRange { next_offset: 3, .. })
    ));
    assert!(s.read(0, ReadFrom::Offset(3), 10).unwrap().0.is_empty());
}

#[test]
fn unpublished_records_are_not_read() {
    let mut s = stream(1);
    s.append(t(1), None, &[spec(None, 1), spec(None, 1)], |i, _| {
        5 + i as u64
    })
    .unwrap();
    assert!(s.read(0, ReadFrom::Offset(0), 10).unwrap().0.is_empty());
    s.publish_upto(5);
    assert_eq!(s.read(0, ReadFrom::Offset(0), 10).unwrap().0.len(), 1);
}

#[test]
fn retention_by_time_bytes_and_count() {
    let config = |ms, bytes, n| StreamConfig {
        partitions: 1,
        retention_ms: ms,
        retention_bytes: bytes,
        max_records: n,
    };
    let name = StreamName::new("s").unwrap();
    let mut by_time = Stream::new(name.clone(), config(Some(100), None, None)).unwrap();
    append(&mut by_time, 0, &[spec(None, 1)]);
    append(&mut by_time, 50, &[spec(None, 1)]);
    by_time.enforce_retention(t(99));
    assert_eq!(by_time.bounds(0).unwrap(), (0, 2));
    by_time.enforce_retention(t(100));
    assert_eq!(by_time.bounds(0).unwrap(), (1, 2));

    let mut by_bytes = Stream::new(name.clone(), config(None, Some(10), None)).unwrap();
    append(
        &mut by_bytes,
        0,
        &[spec(None, 6), spec(None, 4), spec(None, 5)],
    );
    by_bytes.enforce_retention(t(0));
    assert_eq!(by_bytes.bounds(0).unwrap(), (1, 3));

    let mut by_count = Stream::new(name, config(None, None, Some(1))).unwrap();
    append(&mut by_count, 0, &[spec(None, 1), spec(None, 1)]);
    let (removed, moved) = by_count.enforce_retention(t(0));
    assert_eq!(removed.len(), 1);
    assert_eq!(moved, vec![(0, 1)]);
}

#[test]
fn offsets_stay_monotone_after_retention_empties_a_partition() {
    let mut s = Stream::new(
        StreamName::new("s").unwrap(),
        StreamConfig {
            partitions: 1,
            retention_ms: Some(10),
            retention_bytes: None,
            max_records: None,
        },
    )
    .unwrap();
    append(&mut s, 0, &[spec(None, 1), spec(None, 1)]);
    s.enforce_retention(t(100));
    let out = append(&mut s, 100, &[spec(None, 1)]);
    assert_eq!(out[0].offset, 2);
}

#[test]
fn group_start_positions() {
    let mut s = stream(1);
    append(&mut s, 10, &[spec(None, 1), spec(None, 1), spec(None, 1)]);
    let cases = [
        (StartPosition::Earliest, 0),
        (StartPosition::Latest, 3),
        (StartPosition::Offset(1), 1),
        (StartPosition::Time(t(11)), 3),
    ];
    for (index, (start, position)) in cases.into_iter().enumerate() {
        let g = group(&mut s, &format!("g{index}"), start, GroupMode::Partitioned);
        assert_eq!(s.group(&g).unwrap().positions(), &[position], "{start:?}");
    }
    let bad = s.create_group(
        GroupName::new("bad").unwrap(),
        GroupConfig {
            start: StartPosition::Offset(4),
            mode: GroupMode::Shared,
            session_timeout_ms: 1000,
        },
    );
    assert!(matches!(bad, Err(StreamError::OffsetOutOfRange { .. })));
}

#[test]
fn group_create_is_idempotent_and_conflicts_on_differences() {
    let mut s = stream(1);
    let config = GroupConfig {
        start: StartPosition::Earliest,
        mode: GroupMode::Shared,
        session_timeout_ms: 1000,
    };
    let g = GroupName::new("g").unwrap();
    assert!(s.create_group(g.clone(), config).unwrap());
    assert!(!s.create_group(g.clone(), config).unwrap());
    let other = GroupConfig {
        mode: GroupMode::Partitioned,
        ..config
    };
    assert!(matches!(
        s.create_group(g, other),
        Err(StreamError::GroupExists { .. })
    ));
}

#[test]
fn read_makes_records_pending_and_ack_removes_them() {
    let mut s = stream(1);
    append(&mut s, 0, &[spec(None, 1), spec(None, 1)]);
    let g = group(&mut s, "g", StartPosition::Earliest, GroupMode::Shared);
    let got = s.group_read(&g, &c("a"), t(5), 10).unwrap();
    assert_eq!(got.len(), 2);
    assert!(s.group_read(&g, &c("b"), t(5), 10).unwrap().is_empty());
    let (count, list) = s.group(&g).unwrap().pending(None, t(8), 100).unwrap();
    assert_eq!(count, 2);
    assert_eq!(list[0].idle_ms, 3);
    assert_eq!(list[0].consumer, c("a"));
    let acked = s.group_ack(&g, &[got[0].id, got[0].id]).unwrap();
    assert!(acked[0].is_ok());
    assert!(matches!(acked[1], Err(StreamError::NotPending { .. })));
    assert_eq!(s.group(&g).unwrap().n_pending(), 1);
}

#[test]
fn claim_takes_idle_records_and_counts_deliveries() {
    let mut s = stream(1);
    append(&mut s, 0, &[spec(None, 1), spec(None, 1)]);
    let g = group(&mut s, "g", StartPosition::Earliest, GroupMode::Shared);
    s.group_read(&g, &c("a"), t(0), 1).unwrap();
    s.group_read(&g, &c("a"), t(50), 1).unwrap();
    let claimed = s.group_claim(&g, &c("b"), t(100), 60, 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id.offset, 0);
    assert_eq!(claimed[0].delivery_count, 2);
    let (_, list) = s
        .group(&g)
        .unwrap()
        .pending(Some(&c("b")), t(100), 10)
        .unwrap();
    assert_eq!(list.len(), 1);
}

#[test]
fn pending_of_an_unknown_consumer_is_an_error() {
    let mut s = stream(1);
    let g = group(&mut s, "g", StartPosition::Earliest, GroupMode::Shared);
    assert!(matches!(
        s.group(&g).unwrap().pending(Some(&c("nobody")), t(0), 10),
        Err(StreamError::ConsumerNotFound { .. })
    ));
}

#[test]
fn partitions_are_split_between_live_consumers_and_move_when_one_stops() {
    let mut s = stream(4);
    let g = group(&mut s, "g", StartPosition::Earliest, GroupMode::Partitioned);
    s.group_read(&g, &c("a"), t(0), 10).unwrap();
    assert_eq!(s.group(&g).unwrap().owned(&c("a")), vec![0, 1, 2, 3]);
    s.group_read(&g, &c("b"), t(10), 10).unwrap();
    assert_eq!(s.group(&g).unwrap().owned(&c("a")), vec![0, 2]);
    assert_eq!(s.group(&g).unwrap().owned(&c("b")), vec![1, 3]);
    // `a` stops reading; after the session timeout `b` takes everything.
    s.group_read(&g, &c("b"), t(1001), 10).unwrap();
    assert_eq!(s.group(&g).unwrap().owned(&c("b")), vec![0, 1, 2, 3]);
}

#[test]
fn a_partition_moves_only_when_its_owner_holds_nothing_in_it() {
    let mut s = stream(2);
    append(&mut s, 0, &[spec(None, 1), spec(None, 1)]);
    let g = group(&mut s, "g", StartPosition::Earliest, GroupMode::Partitioned);
    let got = s.group_read(&g, &c("a"), t(0), 10).unwrap();
    assert_eq!(got.len(), 2);
    // `b` joins: partition 1 is its target, but `a` still holds a record there.
    s.group_read(&g, &c("b"), t(1), 10).unwrap();
    assert_eq!(s.group(&g).unwrap().owned(&c("b")), Vec::<u32>::new());
    let in_one: Vec<RecordId> = got
        .iter()
        .filter(|d| d.id.partition == 1)
        .map(|d| d.id)
        .collect();
    s.group_ack(&g, &in_one).unwrap();
    s.group_read(&g, &c("b"), t(2), 10).unwrap();
    assert_eq!(s.group(&g).unwrap().owned(&c("b")), vec![1]);
}

#[test]
fn retention_drops_pending_records_it_removes() {
    let mut s = Stream::new(
        StreamName::new("s").unwrap(),
        StreamConfig {
            partitions: 1,
            retention_ms: None,
            retention_bytes: None,
            max_records: Some(1),
        },
    )
    .unwrap();
    let g = group(&mut s, "g", StartPosition::Earliest, GroupMode::Shared);
    append(&mut s, 0, &[spec(None, 1)]);
    s.group_read(&g, &c("a"), t(0), 10).unwrap();
    append(&mut s, 0, &[spec(None, 1)]);
    s.enforce_retention(t(0));
    assert_eq!(s.group(&g).unwrap().n_pending(), 0);
}

#[test]
fn seek_moves_positions_and_keeps_pending() {
    let mut s = stream(1);
    append(&mut s, 0, &[spec(None, 1), spec(None, 1)]);
    let g = group(&mut s, "g", StartPosition::Earliest, GroupMode::Shared);
    s.group_read(&g, &c("a"), t(0), 10).unwrap();
    s.seek(&g, None, StartPosition::Offset(1)).unwrap();
    assert_eq!(s.group(&g).unwrap().positions(), &[1]);
    assert_eq!(s.group(&g).unwrap().n_pending(), 2);
    assert!(matches!(
        s.seek(&g, Some(3), StartPosition::Earliest),
        Err(StreamError::PartitionOutOfRange { .. })
    ));
}

#[test]
fn record_ids_round_trip_and_reject_garbage() {
    let id: RecordId = "3-17".parse().unwrap();
    assert_eq!(
        id,
        RecordId {
            partition: 3,
            offset: 17
        }
    );
    assert_eq!(id.to_string(), "3-17");
    for bad in ["", "3", "a-1", "1-", "-1", "1-2-3"] {
        assert!(bad.parse::<RecordId>().is_err(), "{bad}");
    }
}

#[test]
fn invalid_config_is_refused() {
    let base = StreamConfig {
        partitions: 1,
        retention_ms: None,
        retention_bytes: None,
        max_records: None,
    };
    for bad in [
        StreamConfig {
            partitions: 0,
            ..base.clone()
        },
        StreamConfig {
            partitions: PARTITIONS_MAX + 1,
            ..base.clone()
        },
        StreamConfig {
            retention_ms: Some(0),
            ..base.clone()
        },
    ] {
        assert!(matches!(
            bad.validate(),
            Err(StreamError::InvalidParameter { .. })
        ));
    }
}

#[test]
fn an_owner_losing_a_partition_drains_it_instead_of_reading_further() {
    let mut s = stream(2);
    append(&mut s, 0, &[spec(None, 1), spec(None, 1)]);
    let g = group(&mut s, "g", StartPosition::Earliest, GroupMode::Partitioned);
    let got = s.group_read(&g, &c("a"), t(0), 10).unwrap();
    assert_eq!(got.len(), 2);
    s.group_read(&g, &c("b"), t(1), 10).unwrap();
    // `a` still owns partition 1 (it holds 1-0), but gets nothing new from it.
    append(&mut s, 2, &[spec(None, 1), spec(None, 1)]);
    let more = s.group_read(&g, &c("a"), t(3), 10).unwrap();
    assert!(more.iter().all(|d| d.id.partition == 0), "{more:?}");
    let held: Vec<RecordId> = got
        .iter()
        .map(|d| d.id)
        .filter(|id| id.partition == 1)
        .collect();
    s.group_ack(&g, &held).unwrap();
    let for_b = s.group_read(&g, &c("b"), t(4), 10).unwrap();
    assert_eq!(
        for_b.iter().map(|d| d.id.partition).collect::<Vec<_>>(),
        vec![1]
    );
}

#[test]
fn groups_beyond_the_limit_are_refused() {
    let mut s = stream(1);
    for n in 0..group::GROUPS_MAX {
        group(
            &mut s,
            &format!("g{n}"),
            StartPosition::Earliest,
            GroupMode::Shared,
        );
    }
    let result = s.create_group(
        GroupName::new("one-more").unwrap(),
        GroupConfig {
            start: StartPosition::Earliest,
            mode: GroupMode::Shared,
            session_timeout_ms: 1000,
        },
    );
    assert!(matches!(result, Err(StreamError::TooManyGroups { .. })));
}

#[test]
fn consumers_beyond_the_limit_are_refused_until_idle_ones_are_forgotten() {
    let mut s = stream(1);
    let g = group(&mut s, "g", StartPosition::Earliest, GroupMode::Shared);
    for n in 0..group::CONSUMERS_MAX {
        s.group_read(&g, &c(&format!("c{n}")), t(0), 1).unwrap();
    }
    assert!(matches!(
        s.group_read(&g, &c("late"), t(10), 1),
        Err(StreamError::TooManyConsumers { .. })
    ));
    // Past the session timeout, consumers holding nothing are forgotten to make room.
    assert!(s.group_read(&g, &c("late"), t(2000), 1).is_ok());
}

#[test]
fn a_full_pending_list_refuses_reads_until_acks() {
    let mut s = stream(1);
    let g = group(&mut s, "g", StartPosition::Earliest, GroupMode::Shared);
    let batch: Vec<AppendSpec> = (0..APPEND_BATCH_MAX).map(|_| spec(None, 1)).collect();
    for _ in 0..=(group::PENDING_MAX / APPEND_BATCH_MAX) {
        append(&mut s, 0, &batch);
    }
    let mut delivered = Vec::new();
    while delivered.len() < group::PENDING_MAX {
        delivered.extend(s.group_read(&g, &c("a"), t(0), READ_MAX).unwrap());
    }
    assert_eq!(delivered.len(), group::PENDING_MAX);
    assert!(matches!(
        s.group_read(&g, &c("a"), t(0), 1),
        Err(StreamError::PendingFull { .. })
    ));
    s.group_ack(&g, &[delivered[0].id]).unwrap();
    assert_eq!(s.group_read(&g, &c("a"), t(0), 10).unwrap().len(), 1);
}
