//! A standard queue without timeouts against a reference model made of two `Vec`s: visible
//! messages in sequence order and messages in flight. With a 12-hour visibility timeout and a
//! clock that never moves, a receive must return exactly the oldest visible messages, an ack or
//! nack must succeed exactly for receipts the model holds, and every count must agree.

use baton_core::limits::VISIBILITY_TIMEOUT_MS_MAX;
use baton_core::{
    MessageId, Queue, QueueConfig, QueueLimits, QueueName, ReceiptError, ReceiptHandle, SendEntry,
    Timestamp,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Send {
        n: usize,
    },
    Receive {
        max: u32,
    },
    Ack {
        pick: usize,
    },
    Nack {
        pick: usize,
    },
    /// Presents a receipt whose lease has ended (acked or nacked earlier), if there is one.
    Stale {
        pick: usize,
        ack: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1..5usize).prop_map(|n| Op::Send { n }),
        3 => (1..6u32).prop_map(|max| Op::Receive { max }),
        2 => any::<usize>().prop_map(|pick| Op::Ack { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Nack { pick }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, ack)| Op::Stale { pick, ack }),
    ]
}

#[derive(Debug, Default)]
struct Model {
    /// Visible messages, oldest (lowest sequence) first.
    visible: Vec<(u64, MessageId)>,
    in_flight: Vec<(u64, MessageId, ReceiptHandle)>,
    ended: Vec<ReceiptHandle>,
    sent: u64,
    received: u64,
    acked: u64,
    nacked: u64,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn standard_queue_matches_a_vec_model(ops in proptest::collection::vec(op(), 1..150)) {
        let config = QueueConfig { visibility_timeout_ms: VISIBILITY_TIMEOUT_MS_MAX, ..QueueConfig::default() };
        let mut queue = Queue::new(QueueName::new("ref").unwrap(), config, QueueLimits::default(), 7).unwrap();
        let now = Timestamp::from_millis(1_700_000_000_000);
        let mut model = Model::default();
        let mut next_id = 1u128;
        for op in ops {
            match op {
                Op::Send { n } => {
                    let entries: Vec<SendEntry> = (0..n)
                        .map(|i| SendEntry::new(MessageId::from_u128(next_id + i as u128), "body"))
                        .collect();
                    next_id += n as u128;
                    for outcome in queue.send(now, entries).unwrap() {
                        prop_assert!(!outcome.duplicate);
                        prop_assert!(model.visible.last().is_none_or(|(seq, _)| *seq < outcome.seq));
                        model.visible.push((outcome.seq, outcome.id));
                        model.sent += 1;
                    }
                }
                Op::Receive { max } => {
                    let got: Vec<(u64, MessageId)> = queue
                        .receive(now, max, None)
                        .unwrap()
                        .into_iter()
                        .map(|d| {
                            model.in_flight.push((d.seq, d.id, d.receipt));
                            (d.seq, d.id)
                        })
                        .collect();
                    let n = (max as usize).min(model.visible.len());
                    let expected: Vec<(u64, MessageId)> = model.visible.drain(..n).collect();
                    prop_assert_eq!(got, expected);
                    model.received += n as u64;
                }
                Op::Ack { pick } | Op::Nack { pick } => {
                    if model.in_flight.is_empty() {
                        continue;
                    }
                    let (seq, id, receipt) = model.in_flight.remove(pick % model.in_flight.len());
                    model.ended.push(receipt);
                    if matches!(op, Op::Ack { .. }) {
                        prop_assert_eq!(queue.ack(now, &receipt).map(|a| a.id), Ok(id));
                        model.acked += 1;
                    } else {
                        prop_assert_eq!(queue.nack(now, &receipt, None), Ok(()));
                        let at = model.visible.partition_point(|(s, _)| *s < seq);
                        model.visible.insert(at, (seq, id));
                        model.nacked += 1;
                    }
                }
                Op::Stale { pick, ack } => {
                    if model.ended.is_empty() {
                        continue;
                    }
                    let receipt = model.ended[pick % model.ended.len()];
                    let result = if ack { queue.ack(now, &receipt).map(|_| ()) } else { queue.nack(now, &receipt, None) };
                    prop_assert_eq!(result, Err(ReceiptError::Stale));
                }
            }
            let stats = queue.stats(now);
            prop_assert_eq!(stats.visible, model.visible.len() as u64);
            prop_assert_eq!(stats.in_flight, model.in_flight.len() as u64);
            prop_assert_eq!(stats.delayed, 0);
            prop_assert_eq!(queue.depth(), (model.visible.len() + model.in_flight.len()) as u64);
            prop_assert_eq!(
                (stats.sent_total, stats.received_total, stats.acked_total, stats.nacked_total),
                (model.sent, model.received, model.acked, model.nacked)
            );
        }
    }
}
