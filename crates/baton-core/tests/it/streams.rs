//! Property tests of streams: random appends (keyed, keyless, idempotent retries), group reads
//! by three consumers, acks, claims, seeks and retention, with the invariants checked after
//! every step against a model of what was appended and delivered.

use std::collections::{BTreeMap, BTreeSet};

use baton_core::stream::{
    AppendOutcome, AppendSpec, ConsumerName, GroupConfig, GroupMode, GroupName, ProducerSeq,
    RecordId, StartPosition, Stream,
};
use baton_core::{StreamConfig, StreamName, Timestamp};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append { keys: Vec<Option<u8>>, size: u64 },
    ProducerAppend { sequence: u64, n: usize },
    Read { consumer: u8, max: u32 },
    Ack { consumer: u8, n: usize },
    Claim { consumer: u8, min_idle_ms: u64 },
    Advance { ms: u64 },
    Retain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop::collection::vec(prop::option::of(0u8..6), 1..5), 1u64..50)
            .prop_map(|(keys, size)| Op::Append { keys, size }),
        2 => (0u64..6, 1usize..4).prop_map(|(sequence, n)| Op::ProducerAppend { sequence, n }),
        4 => (0u8..3, 1u32..5).prop_map(|(consumer, max)| Op::Read { consumer, max }),
        2 => (0u8..3, 0usize..4).prop_map(|(consumer, n)| Op::Ack { consumer, n }),
        1 => (0u8..3, 0u64..200).prop_map(|(consumer, min_idle_ms)| Op::Claim { consumer, min_idle_ms }),
        2 => (0u64..300).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Retain),
    ]
}

fn config() -> impl Strategy<Value = (StreamConfig, bool)> {
    (
        1u32..5,
        prop::option::of(50u64..500),
        prop::option::of(20u64..400),
        prop::option::of(1u64..20),
        any::<bool>(),
    )
        .prop_map(
            |(partitions, retention_ms, retention_bytes, max_records, shared)| {
                (
                    StreamConfig {
                        partitions,
                        retention_ms,
                        retention_bytes,
                        max_records,
                    },
                    shared,
                )
            },
        )
}

struct Model {
    /// Every record ever appended: id → (timestamp, size, key).
    records: BTreeMap<RecordId, (Timestamp, u64, Option<u8>)>,
    /// Ids ever handed out by a read (reads never hand out one twice).
    delivered: BTreeSet<RecordId>,
    /// Pending: id → consumer.
    pending: BTreeMap<RecordId, u8>,
    /// Per producer sequence, the answer it got.
    answers: BTreeMap<u64, Vec<RecordId>>,
    /// Per key, the offsets of its records in append order.
    by_key: BTreeMap<u8, Vec<RecordId>>,
}

fn consumer(n: u8) -> ConsumerName {
    ConsumerName::new(&format!("c{n}")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn stream_invariants_hold_under_random_operations(
        (config, shared) in config(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut stream = Stream::new(StreamName::new("s").unwrap(), config.clone()).unwrap();
        let group = GroupName::new("g").unwrap();
        let mode = if shared { GroupMode::Shared } else { GroupMode::Partitioned };
        stream.create_group(group.clone(), GroupConfig {
            start: StartPosition::Earliest,
            mode,
            session_timeout_ms: 1000,
        }).unwrap();
        let mut now = Timestamp::from_millis(1_000);
        let mut location = 0u64;
        let mut model = Model {
            records: BTreeMap::new(),
            delivered: BTreeSet::new(),
            pending: BTreeMap::new(),
            answers: BTreeMap::new(),
            by_key: BTreeMap::new(),
        };
        let mut next_offsets = vec![0u64; config.partitions as usize];
        for op in ops {
            match op {
                Op::Append { keys, size } => {
                    let specs: Vec<AppendSpec> = keys.iter().map(|k| AppendSpec {
                        key: k.map(|k| vec![k]),
                        partition: None,
                        size_bytes: size,
                    }).collect();
                    let outcome = stream.append(now, None, &specs, |_, _| { location += 1; location }).unwrap();
                    let AppendOutcome::Appended(out) = outcome else { panic!("no producer, no duplicate") };
                    for (appended, key) in out.iter().zip(&keys) {
                        let id = RecordId { partition: appended.partition, offset: appended.offset };
                        // Offsets are dense and monotone per partition.
                        prop_assert_eq!(appended.offset, next_offsets[appended.partition as usize]);
                        next_offsets[appended.partition as usize] += 1;
                        model.records.insert(id, (appended.timestamp, size, *key));
                        if let Some(key) = key {
                            model.by_key.entry(*key).or_default().push(id);
                        }
                    }
                    stream.publish_all();
                }
                Op::ProducerAppend { sequence, n } => {
                    let seq = ProducerSeq { producer: "p".to_string(), sequence };
                    let specs: Vec<AppendSpec> = (0..n).map(|_| AppendSpec { key: None, partition: None, size_bytes: 1 }).collect();
                    let before = stream.stats(now).records;
                    match stream.append(now, Some(&seq), &specs, |_, _| { location += 1; location }) {
                        Ok(AppendOutcome::Duplicate(answer)) => {
                            // A retry lands once: nothing new, the original answer.
                            let ids: Vec<RecordId> = answer.iter().map(|a| RecordId { partition: a.partition, offset: a.offset }).collect();
                            prop_assert_eq!(Some(&ids), model.answers.get(&sequence));
                            prop_assert_eq!(stream.stats(now).records, before);
                        }
                        Ok(AppendOutcome::Appended(out)) => {
                            let ids: Vec<RecordId> = out.iter().map(|a| RecordId { partition: a.partition, offset: a.offset }).collect();
                            for (appended, id) in out.iter().zip(&ids) {
                                prop_assert_eq!(appended.offset, next_offsets[appended.partition as usize]);
                                next_offsets[appended.partition as usize] += 1;
                                model.records.insert(*id, (appended.timestamp, 1, None));
                            }
                            model.answers.insert(sequence, ids);
                        }
                        Err(error) => {
                            let stale = matches!(error, baton_core::StreamError::ProducerSequenceStale { .. });
                            prop_assert!(stale, "unexpected {:?}", error);
                            prop_assert_eq!(stream.stats(now).records, before);
                        }
                    }
                    stream.publish_all();
                }
                Op::Read { consumer: c, max } => {
                    let got = stream.group_read(&group, &consumer(c), now, max).unwrap();
                    prop_assert!(got.len() <= max as usize);
                    for d in got {
                        // Exactly one consumer per record until acked or claimed: a read
                        // never hands out a record that was handed out before.
                        prop_assert!(model.delivered.insert(d.id), "{} delivered twice", d.id);
                        prop_assert!(model.records.contains_key(&d.id));
                        model.pending.insert(d.id, c);
                    }
                }
                Op::Ack { consumer: c, n } => {
                    let ids: Vec<RecordId> = model.pending.iter().filter(|(_, o)| **o == c).map(|(id, _)| *id).take(n).collect();
                    let results = stream.group_ack(&group, &ids).unwrap();
                    for (id, result) in ids.iter().zip(results) {
                        prop_assert!(result.is_ok());
                        model.pending.remove(id);
                    }
                }
                Op::Claim { consumer: c, min_idle_ms } => {
                    let claimed = stream.group_claim(&group, &consumer(c), now, min_idle_ms, 10).unwrap();
                    for d in claimed {
                        prop_assert!(model.pending.contains_key(&d.id), "claimed {} that was not pending", d.id);
                        prop_assert!(d.delivery_count >= 2);
                        model.pending.insert(d.id, c);
                    }
                }
                Op::Advance { ms } => now = now.plus_ms(ms),
                Op::Retain => {
                    stream.enforce_retention(now);
                    for partition in 0..config.partitions {
                        let (first, next) = stream.bounds(partition).unwrap();
                        prop_assert_eq!(next, next_offsets[partition as usize]);
                        // Retention never removes a record inside every bound.
                        let ids: Vec<RecordId> = model.records.keys().filter(|id| id.partition == partition).copied().collect();
                        let mut suffix_bytes = 0u64;
                        for (rank, id) in ids.iter().rev().enumerate() {
                            let (ts, size, _) = model.records[id];
                            suffix_bytes += size;
                            let in_time = config.retention_ms.is_none_or(|ms| ts.plus_ms(ms) > now);
                            let in_bytes = config.retention_bytes.is_none_or(|b| suffix_bytes <= b);
                            let in_count = config.max_records.is_none_or(|n| (rank as u64) < n);
                            if in_time && in_bytes && in_count {
                                prop_assert!(id.offset >= first, "retention removed {} inside its bounds", id);
                            }
                        }
                    }
                    // Pending records removed by retention leave the pending list.
                    model.pending.retain(|id, _| stream.bounds(id.partition).unwrap().0 <= id.offset);
                }
            }
            // The group's pending list is exactly the model's.
            let (count, list) = stream.group(&group).unwrap().pending(None, now, usize::MAX).unwrap();
            prop_assert_eq!(count as usize, model.pending.len());
            for info in list {
                let expected = model.pending.get(&info.id).map(|c| consumer(*c));
                prop_assert_eq!(Some(info.consumer), expected);
            }
        }
        // Per-key order: every key's records sit in one partition, in append order.
        for ids in model.by_key.values() {
            prop_assert!(ids.windows(2).all(|w| w[0].partition == w[1].partition && w[0].offset < w[1].offset));
        }
    }
}
