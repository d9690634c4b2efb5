//! Random operations keep every index consistent (proptest against the invariants).

use super::*;

// ---------------------------------------------------------------------------------------------
// Random operations keep every index consistent.

#[derive(Debug, Clone)]
enum Op {
    Send {
        n: u8,
        group: u8,
        dedup: Option<u8>,
        delay_ms: Option<u64>,
    },
    Receive {
        max: u32,
        timeout_ms: Option<u64>,
    },
    Ack {
        pick: usize,
    },
    Nack {
        pick: usize,
        delay_ms: Option<u64>,
    },
    ChangeVisibility {
        pick: usize,
        timeout_ms: u64,
    },
    Advance {
        ms: u64,
    },
    Purge,
    Redrive {
        max: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..4u8, 0..3u8, proptest::option::of(0..6u8), proptest::option::weighted(0.2, 0..300u64))
            .prop_map(|(n, group, dedup, delay_ms)| Op::Send { n, group, dedup, delay_ms }),
        3 => (1..4u32, proptest::option::of(0..300u64)).prop_map(|(max, timeout_ms)| Op::Receive { max, timeout_ms }),
        2 => any::<usize>().prop_map(|pick| Op::Ack { pick }),
        2 => (any::<usize>(), proptest::option::of(0..300u64)).prop_map(|(pick, delay_ms)| Op::Nack { pick, delay_ms }),
        1 => (any::<usize>(), 0..300u64).prop_map(|(pick, timeout_ms)| Op::ChangeVisibility { pick, timeout_ms }),
        3 => prop_oneof![9 => 0..200u64, 1 => 0..400_000u64].prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Purge),
        1 => (1..3u64).prop_map(|max| Op::Redrive { max }),
    ]
}

fn random_setup() -> impl Strategy<Value = Setup> {
    (
        any::<bool>(),
        proptest::option::of(1..4u32),
        any::<bool>(),
        proptest::option::of(2..8u64),
        1..6u32,
    )
        .prop_map(|(is_fifo, dead_letter, retry, max_depth, in_flight_max)| {
            let mut setup = if is_fifo { fifo() } else { standard() };
            setup = setup
                .visibility_ms(100)
                .retention_ms(120_000)
                .in_flight_max(in_flight_max);
            setup.config.dead_letter = dead_letter.map(|max_receive_count| DeadLetterPolicy {
                queue: QueueName::new("dlq").unwrap(),
                max_receive_count,
            });
            setup.config.retry = retry.then_some(RetryPolicy {
                base_delay_ms: 10,
                max_delay_ms: 100,
            });
            setup.config.max_depth = max_depth;
            setup
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_every_index_consistent(setup in random_setup(), ops in proptest::collection::vec(op(), 1..80)) {
        let mut queue = setup.queue();
        let mut now = Timestamp::ZERO;
        let mut receipts: Vec<ReceiptHandle> = Vec::new();
        let mut next_id = 1u128;
        for op in ops {
            match op {
                Op::Send { n, group, dedup, delay_ms } => {
                    let entries = (0..n).map(|_| {
                        let mut e = entry(next_id, &format!("body {next_id}"));
                        next_id += 1;
                        e.group_id = Some(format!("g{group}"));
                        e.dedup_id = dedup.map(|d| format!("d{d}"));
                        e.delay_ms = delay_ms;
                        e
                    }).collect();
                    let _ = queue.send(now, entries);
                }
                Op::Receive { max, timeout_ms } => {
                    if let Ok(deliveries) = queue.receive(now, max, timeout_ms) {
                        receipts.extend(deliveries.iter().map(|d| d.receipt));
                    }
                }
                Op::Ack { pick } => if let Some(r) = receipts.get(pick % receipts.len().max(1)) {
                    let _ = queue.ack(now, r);
                },
                Op::Nack { pick, delay_ms } => if let Some(r) = receipts.get(pick % receipts.len().max(1)) {
                    let _ = queue.nack(now, r, delay_ms);
                },
                Op::ChangeVisibility { pick, timeout_ms } => if let Some(r) = receipts.get(pick % receipts.len().max(1)) {
                    let _ = queue.change_visibility(now, r, timeout_ms);
                },
                Op::Advance { ms } => {
                    now = now.plus_ms(ms);
                    queue.advance(now);
                    check_nothing_due(&queue, now);
                }
                Op::Purge => {
                    queue.purge(now);
                }
                Op::Redrive { max } => {
                    let moved = queue.take_for_redrive(now, max, |_| true);
                    prop_assert!(moved.len() as u64 <= max);
                    for m in moved {
                        queue.accept_moved(now, m, HistoryEventKind::Redriven);
                    }
                }
            }
            check_invariants(&queue);
            for m in queue.take_moved() {
                prop_assert_eq!(queue.status(m.id).map(|r| r.status), Some(MessageStatus::DeadLettered));
            }
        }
    }
}
