//! Replay reproduces the live state: random operations with restarts, checked against a
//! fresh replay of the log and checkpoints, and the cases the property test found.

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Send {
        fifo: bool,
        n: u8,
        group: u8,
        dedup: Option<u8>,
        delay_ms: Option<u16>,
    },
    Receive {
        queue: u8,
        max: u8,
        visibility_ms: Option<u16>,
    },
    Ack {
        queue: u8,
        pick: u8,
    },
    Nack {
        queue: u8,
        pick: u8,
        delay_ms: Option<u16>,
    },
    Visibility {
        queue: u8,
        pick: u8,
        timeout_ms: u16,
    },
    /// SQS's delete and visibility change: by any receipt issued for the message.
    Delete {
        queue: u8,
        pick: u8,
    },
    MessageVisibility {
        queue: u8,
        pick: u8,
        timeout_ms: u16,
    },
    Sleep {
        ms: u16,
    },
    Read {
        queue: u8,
    },
    Purge {
        queue: u8,
    },
    Redrive {
        queue: u8,
    },
    Update {
        visibility_ms: u16,
    },
    Tag {
        queue: u8,
        key: u8,
    },
    Checkpoint,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 1..4u8, 0..3u8, proptest::option::weighted(0.3, 0..4u8), proptest::option::weighted(0.2, 0..2000u16))
            .prop_map(|(fifo, n, group, dedup, delay_ms)| Op::Send { fifo, n, group, dedup, delay_ms }),
        4 => (0..4u8, 1..4u8, proptest::option::weighted(0.3, 0..1500u16))
            .prop_map(|(queue, max, visibility_ms)| Op::Receive { queue, max, visibility_ms }),
        3 => (0..4u8, any::<u8>()).prop_map(|(queue, pick)| Op::Ack { queue, pick }),
        2 => (0..4u8, any::<u8>(), proptest::option::weighted(0.5, 0..1500u16))
            .prop_map(|(queue, pick, delay_ms)| Op::Nack { queue, pick, delay_ms }),
        1 => (0..4u8, any::<u8>(), 0..2000u16).prop_map(|(queue, pick, timeout_ms)| Op::Visibility { queue, pick, timeout_ms }),
        2 => (0..4u8, any::<u8>()).prop_map(|(queue, pick)| Op::Delete { queue, pick }),
        1 => (0..4u8, any::<u8>(), 0..2000u16).prop_map(|(queue, pick, timeout_ms)| Op::MessageVisibility { queue, pick, timeout_ms }),
        3 => (0..3000u16).prop_map(|ms| Op::Sleep { ms }),
        1 => (0..4u8).prop_map(|queue| Op::Read { queue }),
        1 => (0..4u8).prop_map(|queue| Op::Purge { queue }),
        1 => (0..4u8).prop_map(|queue| Op::Redrive { queue }),
        1 => (500..3000u16).prop_map(|visibility_ms| Op::Update { visibility_ms }),
        1 => (0..4u8, 0..3u8).prop_map(|(queue, key)| Op::Tag { queue, key }),
        3 => Just(Op::Checkpoint),
        1 => Just(Op::Restart),
    ]
}

const QUEUES: [&str; 4] = ["q", "f.fifo", "dlq", "fdlq.fifo"];

/// What the operations remember across engines: the clock, the receipts issued per queue
/// index, and how many messages were sent.
struct Driver {
    clock: Arc<ManualClock>,
    receipts: BTreeMap<u8, Vec<ReceiptHandle>>,
    n_sent: u32,
}

fn queue_of(i: u8) -> QueueName {
    name(QUEUES[usize::from(i) % QUEUES.len()])
}

impl Driver {
    /// One of the receipts received from queue `queue`, if it has any.
    fn pick(&self, queue: u8, pick: u8) -> Option<ReceiptHandle> {
        self.receipts
            .get(&queue)
            .filter(|r| !r.is_empty())
            .map(|r| r[usize::from(pick) % r.len()])
    }

    /// Applies any operation but `Restart`, which replaces the engine.
    async fn apply(&mut self, engine: &LocalEngine, op: Op) {
        match op {
            Op::Send {
                fifo,
                n,
                group,
                dedup,
                delay_ms,
            } => self.send(engine, fifo, n, group, dedup, delay_ms).await,
            Op::Receive {
                queue,
                max,
                visibility_ms,
            } => self.receive(engine, queue, max, visibility_ms).await,
            Op::Ack { .. }
            | Op::Nack { .. }
            | Op::Visibility { .. }
            | Op::Delete { .. }
            | Op::MessageVisibility { .. } => self.apply_to_receipt(engine, op).await,
            _ => self.apply_to_queue(engine, op).await,
        }
    }

    async fn send(
        &mut self,
        engine: &LocalEngine,
        fifo: bool,
        n: u8,
        group: u8,
        dedup: Option<u8>,
        delay_ms: Option<u16>,
    ) {
        let entries = (0..n)
            .map(|_| {
                self.n_sent += 1;
                let n_sent = self.n_sent;
                let mut entry = SendEntry::new(new_message_id(), format!("m{n_sent}"));
                entry.group_id = fifo.then(|| format!("g{group}"));
                entry.dedup_id = match (dedup, fifo) {
                    (Some(d), _) => Some(format!("d{d}")),
                    (None, true) => Some(format!("u{n_sent}")),
                    (None, false) => None,
                };
                entry.delay_ms = delay_ms.filter(|_| !fifo).map(u64::from);
                entry
            })
            .collect();
        let _ = engine
            .send(&name(if fifo { "f.fifo" } else { "q" }), entries)
            .await;
    }

    async fn receive(
        &mut self,
        engine: &LocalEngine,
        queue: u8,
        max: u8,
        visibility_ms: Option<u16>,
    ) {
        let options = ReceiveOptions {
            max: u32::from(max),
            wait_ms: Some(0),
            visibility_timeout_ms: visibility_ms.map(u64::from),
        };
        if let Ok(got) = engine.receive(&queue_of(queue), options).await {
            self.receipts
                .entry(queue % 4)
                .or_default()
                .extend(got.iter().map(|d| d.receipt));
        }
    }

    /// The operations that present one receipt: nothing happens before any was received.
    async fn apply_to_receipt(&self, engine: &LocalEngine, op: Op) {
        let (Op::Ack { queue, pick }
        | Op::Nack { queue, pick, .. }
        | Op::Visibility { queue, pick, .. }
        | Op::Delete { queue, pick }
        | Op::MessageVisibility { queue, pick, .. }) = op
        else {
            unreachable!("{op:?} presents no receipt");
        };
        let Some(receipt) = self.pick(queue % 4, pick) else {
            return;
        };
        let queue = &queue_of(queue);
        match op {
            Op::Ack { .. } => {
                let _ = engine.ack(queue, vec![receipt]).await;
            }
            Op::Nack { delay_ms, .. } => {
                let _ = engine
                    .nack(queue, vec![receipt], delay_ms.map(u64::from))
                    .await;
            }
            Op::Visibility { timeout_ms, .. } => {
                let _ = engine
                    .change_visibility(queue, receipt, u64::from(timeout_ms))
                    .await;
            }
            Op::Delete { .. } => {
                let _ = engine.delete(queue, vec![receipt]).await;
            }
            Op::MessageVisibility { timeout_ms, .. } => {
                let _ = engine
                    .change_message_visibility(queue, receipt, u64::from(timeout_ms))
                    .await;
            }
            _ => unreachable!(),
        }
    }

    /// The operations on a queue as a whole, the clock and the checkpoint.
    async fn apply_to_queue(&self, engine: &LocalEngine, op: Op) {
        match op {
            Op::Sleep { ms } => {
                self.clock.advance_ms(u64::from(ms));
                engine.tick().await;
            }
            Op::Read { queue } => {
                let _ = engine.get_queue(&queue_of(queue)).await.unwrap();
            }
            Op::Purge { queue } => {
                engine.purge_queue(&queue_of(queue)).await.unwrap();
            }
            Op::Redrive { queue } => {
                let _ = engine
                    .redrive(&queue_of(queue), RedriveOptions::default())
                    .await;
            }
            Op::Update { visibility_ms } => {
                let mut config = engine.get_queue(&name("q")).await.unwrap().config;
                config.visibility_timeout_ms = u64::from(visibility_ms);
                engine.update_queue(&name("q"), config).await.unwrap();
            }
            Op::Tag { queue, key } => {
                let tags = [(format!("k{key}"), format!("v{}", self.n_sent))]
                    .into_iter()
                    .collect();
                let attributes = [("Policy".to_string(), format!("{{\"v\":{key}}}"))]
                    .into_iter()
                    .collect();
                engine
                    .set_queue_meta(&queue_of(queue), Some(tags), Some(attributes))
                    .await
                    .unwrap();
            }
            Op::Checkpoint => engine.checkpoint().unwrap(),
            _ => unreachable!("{op:?} is not an operation on a queue as a whole"),
        }
    }
}

async fn run(ops: Vec<Op>) {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let mut engine = open(&fs, clock.clone(), 1 << 40);
    setup_queues(&engine).await;
    let mut driver = Driver {
        clock: clock.clone(),
        receipts: BTreeMap::new(),
        n_sent: 0,
    };
    for op in ops {
        clock.advance_ms(1);
        if let Op::Restart = op {
            engine.durable.as_ref().unwrap().flush().await.unwrap();
            drop(engine);
            // Receipts stay: by SQS's rule they still delete their messages.
            engine = open(&fs, clock.clone(), 1 << 40);
        } else {
            driver.apply(&engine, op).await;
        }
    }
    engine.durable.as_ref().unwrap().flush().await.unwrap();
    let now = clock.now();
    assert_eq!(
        replayed(&fs, now),
        live(&engine, now),
        "replay must rebuild exactly the live state"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn replaying_the_log_and_checkpoints_rebuilds_the_exact_live_state(ops in proptest::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(ops));
    }
}

/// Found by the property test: a lease that expires exactly at a restart is ended by the
/// recovery's own release, which must be logged even when no lease is left to release.
#[tokio::test]
async fn a_lease_expiring_at_a_restart_replays_at_the_same_moment() {
    let send = || Op::Send {
        fifo: false,
        n: 1,
        group: 0,
        dedup: None,
        delay_ms: None,
    };
    run(vec![
        send(),
        Op::Receive {
            queue: 0,
            max: 1,
            visibility_ms: Some(0),
        },
        Op::Restart,
        send(),
    ])
    .await;
}

/// A log whose ack names a message that was never received cannot come from the live engine
/// (it logs only the acks that finished a message): replay says so instead of skipping it.
#[test]
#[should_panic(expected = "replaying a ack record of queue q did not reproduce the live operation")]
fn replay_asserts_it_reproduces_what_the_live_operation_logged() {
    use baton_storage::records::{self, QueueOp, ReceiptV1, KIND_QUEUE_OP};
    let mut state = ReplayState::new(QueueLimits::default());
    let config = crate::durable::codec::config_to_disk(&QueueConfig::default());
    let log = [
        QueueOp::CreateQueue {
            name: "q".to_string(),
            config,
            epoch: 1,
            now: 1_000,
        },
        QueueOp::Send {
            queue: "q".to_string(),
            now: 1_000,
            entries: vec![crate::durable::codec::entry_to_disk(&SendEntry::new(
                new_message_id(),
                "never received",
            ))],
        },
        QueueOp::Ack {
            queue: "q".to_string(),
            now: 1_001,
            receipts: vec![ReceiptV1 { seq: 1, lease: 1 }],
        },
    ];
    for (lsn, op) in log.iter().enumerate() {
        state
            .apply_record(lsn as u64 + 1, KIND_QUEUE_OP, &records::encode(op))
            .unwrap();
    }
}
