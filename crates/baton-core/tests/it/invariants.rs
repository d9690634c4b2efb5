//! Random operation sequences (send, receive, ack, nack, change visibility, advance time, tick,
//! purge) on standard and FIFO queues. A `World` keeps what a client can know from the answers
//! (which messages exist, which receipt is the current lease of which message and when it ends,
//! receive counts, the dedup window) and, after every step, checks:
//!
//! - every message is in exactly one state: each message ever enqueued has exactly one status;
//!   the live ones are exactly those not acked, dead-lettered or purged; the counts of PENDING,
//!   DELAYED and PROCESSING equal `visible`, `delayed` and `in_flight`;
//! - leases are exclusive: a receive never returns a message whose current lease has not ended,
//!   and a receipt works if and only if it is its message's current, unexpired lease;
//! - FIFO order: when a receive delivers message `m` of group `g`, every earlier message of `g`
//!   still in the queue is delivered by the same receive, before `m`;
//! - receives are greedy: fewer than `max` messages only when the in-flight limit or the
//!   queue's contents (nothing visible; for FIFO, no group free) allow no more;
//! - every total matches the model, and `sent − duplicates = depth + acked + dead_lettered +
//!   expired + purged` (this queue never moves messages in or out by redrive).
//!
//! Sends, duplicates, `QueueFull`, `TooManyInFlight`, purge counts and dead-lettering are
//! predicted exactly, not merely accepted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use baton_core::limits::{DEDUP_WINDOW_MS, RETENTION_MS_MAX};
use baton_core::{
    DeadLetterPolicy, Delivery, HistoryEventKind, MessageId, MessageStatus, Queue, QueueConfig,
    QueueError, QueueLimits, QueueName, ReceiptError, ReceiptHandle, RetryPolicy, SendEntry,
    SendOutcome, Seq, Timestamp,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Setup {
    fifo: bool,
    content_dedup: bool,
    visibility_timeout_ms: u64,
    delay_ms: u64,
    max_receive_count: Option<u32>,
    retry: bool,
    max_depth: Option<u64>,
    in_flight_max: u32,
}

#[derive(Debug, Clone)]
struct Message {
    /// A shared body (`b{n}`) so that content-based dedup has something to find, or unique.
    shared_body: Option<u8>,
    group: u8,
    dedup: Option<u8>,
    delay_ms: Option<u64>,
}

#[derive(Debug, Clone)]
enum Op {
    Send(Vec<Message>),
    Receive { max: u32, timeout_ms: Option<u64> },
    Ack { pick: usize },
    Nack { pick: usize, delay_ms: Option<u64> },
    ChangeVisibility { pick: usize, timeout_ms: u64 },
    Advance { ms: u64 },
    Tick,
    Purge,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(0u64), 1..400u64],
        prop_oneof![3 => Just(0u64), 1 => 1..200u64],
        proptest::option::of(1..4u32),
        any::<bool>(),
        proptest::option::of(2..12u64),
        prop_oneof![3 => 1..6u32, 1 => Just(1000u32)],
    )
        .prop_map(
            |(
                fifo,
                content_dedup,
                visibility_timeout_ms,
                delay_ms,
                max_receive_count,
                retry,
                max_depth,
                in_flight_max,
            )| Setup {
                fifo,
                // A FIFO queue needs a dedup id per message; content-based dedup supplies it.
                content_dedup: content_dedup || fifo,
                visibility_timeout_ms,
                delay_ms,
                max_receive_count,
                retry,
                max_depth,
                in_flight_max,
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    (
        proptest::option::weighted(0.3, 0..3u8),
        0..3u8,
        proptest::option::weighted(0.3, 0..4u8),
        proptest::option::weighted(0.2, 0..300u64),
    )
        .prop_map(|(shared_body, group, dedup, delay_ms)| Message {
            shared_body,
            group,
            dedup,
            delay_ms,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(message(), 1..4).prop_map(Op::Send),
        4 => (1..5u32, proptest::option::of(prop_oneof![Just(0u64), 1..400u64]))
            .prop_map(|(max, timeout_ms)| Op::Receive { max, timeout_ms }),
        3 => any::<usize>().prop_map(|pick| Op::Ack { pick }),
        2 => (any::<usize>(), proptest::option::of(0..300u64))
            .prop_map(|(pick, delay_ms)| Op::Nack { pick, delay_ms }),
        1 => (any::<usize>(), prop_oneof![Just(0u64), 1..400u64])
            .prop_map(|(pick, timeout_ms)| Op::ChangeVisibility { pick, timeout_ms }),
        3 => prop_oneof![20 => 0..250u64, 1 => 0..2 * DEDUP_WINDOW_MS, 1 => Just(DEDUP_WINDOW_MS)]
            .prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Tick),
        1 => Just(Op::Purge),
    ]
}

/// What the client knows about one enqueued message.
#[derive(Debug)]
struct Known {
    id: MessageId,
    group: Option<String>,
    body: String,
    sent_at: Timestamp,
    receive_count: u32,
    first_received_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    receipt: ReceiptHandle,
    deadline: Timestamp,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    sent: u64,
    duplicates: u64,
    received: u64,
    acked: u64,
    nacked: u64,
    dead_lettered: u64,
    purged: u64,
}

struct World {
    setup: Setup,
    queue: Queue,
    now: Timestamp,
    next_id: u128,
    next_seq: Seq,
    known: BTreeMap<Seq, Known>,
    seq_of: HashMap<MessageId, Seq>,
    /// Live messages: neither acked, dead-lettered nor purged.
    live: BTreeSet<Seq>,
    /// The current lease of each message believed in flight; removed once it ends.
    leases: HashMap<Seq, Lease>,
    receipts: Vec<(Seq, ReceiptHandle)>,
    dedup: HashMap<String, (MessageId, Seq, Timestamp)>,
    totals: Totals,
    /// Messages whose lease ended in this step with no receives left.
    due_for_dead_letter: BTreeSet<Seq>,
}

impl World {
    fn new(setup: Setup) -> Self {
        let name = if setup.fifo { "q.fifo" } else { "q" };
        let config = QueueConfig {
            fifo: setup.fifo,
            visibility_timeout_ms: setup.visibility_timeout_ms,
            delay_ms: setup.delay_ms,
            content_based_dedup: setup.content_dedup,
            dead_letter: setup
                .max_receive_count
                .map(|max_receive_count| DeadLetterPolicy {
                    queue: QueueName::new("dlq").unwrap(),
                    max_receive_count,
                }),
            retry: setup.retry.then_some(RetryPolicy {
                base_delay_ms: 10,
                max_delay_ms: 200,
            }),
            max_depth: setup.max_depth,
            ..QueueConfig::default()
        };
        let limits = QueueLimits {
            in_flight_max_standard: setup.in_flight_max,
            in_flight_max_fifo: setup.in_flight_max,
            // Keep every status for the whole run, so that each message can be asked about.
            status_retention_ms: RETENTION_MS_MAX,
            ..QueueLimits::default()
        };
        let queue = Queue::new(QueueName::new(name).unwrap(), config, limits, 0xE90C).unwrap();
        World {
            setup,
            queue,
            now: Timestamp::from_millis(1_000_000),
            next_id: 1,
            next_seq: 1,
            known: BTreeMap::new(),
            seq_of: HashMap::new(),
            live: BTreeSet::new(),
            leases: HashMap::new(),
            receipts: Vec::new(),
            dedup: HashMap::new(),
            totals: Totals::default(),
            due_for_dead_letter: BTreeSet::new(),
        }
    }

    /// Every queue operation first advances the queue to `now`: leases due by then end, and
    /// those with no receives left are dead-lettered.
    fn end_due_leases(&mut self) {
        let now = self.now;
        let due: Vec<Seq> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(s, _)| *s)
            .collect();
        for seq in due {
            self.end_lease(seq);
        }
        self.dedup.retain(|_, (_, _, expires_at)| now < *expires_at);
    }

    fn end_lease(&mut self, seq: Seq) {
        self.leases.remove(&seq);
        let receive_count = self.known[&seq].receive_count;
        if self
            .setup
            .max_receive_count
            .is_some_and(|max| max <= receive_count)
        {
            self.due_for_dead_letter.insert(seq);
        }
    }

    fn receipt(&self, pick: usize) -> Option<(Seq, ReceiptHandle)> {
        if self.receipts.is_empty() {
            return None;
        }
        Some(self.receipts[pick % self.receipts.len()])
    }

    fn is_current(&self, seq: Seq, receipt: ReceiptHandle) -> bool {
        self.leases.get(&seq).is_some_and(|l| l.receipt == receipt)
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        if let Op::Advance { ms } = op {
            self.now = self.now.plus_ms(ms);
            return Ok(());
        }
        self.end_due_leases();
        let now = self.now;
        match op {
            Op::Advance { .. } => unreachable!(),
            Op::Tick => {
                self.queue.advance(now);
            }
            Op::Send(messages) => self.send(messages)?,
            Op::Receive { max, timeout_ms } => self.receive(max, timeout_ms)?,
            Op::Ack { pick } => {
                let Some((seq, receipt)) = self.receipt(pick) else {
                    self.queue.advance(now);
                    return self.check();
                };
                let result = self.queue.ack(now, &receipt);
                if self.is_current(seq, receipt) {
                    let known = &self.known[&seq];
                    let acked = result.map_err(|e| fail(format!("ack of a current lease: {e}")))?;
                    prop_assert_eq!(acked.id, known.id);
                    prop_assert_eq!(acked.sent_at, known.sent_at);
                    prop_assert_eq!(acked.receive_count, known.receive_count);
                    self.leases.remove(&seq);
                    self.live.remove(&seq);
                    self.totals.acked += 1;
                    let status = self.queue.status(known.id).map(|r| r.status);
                    prop_assert_eq!(status, Some(MessageStatus::Completed));
                } else {
                    prop_assert_eq!(result.map(|_| ()), Err(ReceiptError::Stale));
                }
            }
            Op::Nack { pick, delay_ms } => {
                let Some((seq, receipt)) = self.receipt(pick) else {
                    self.queue.advance(now);
                    return self.check();
                };
                let result = self.queue.nack(now, &receipt, delay_ms);
                if self.is_current(seq, receipt) {
                    prop_assert_eq!(result, Ok(()));
                    self.totals.nacked += 1;
                    self.end_lease(seq);
                } else {
                    prop_assert_eq!(result, Err(ReceiptError::Stale));
                }
            }
            Op::ChangeVisibility { pick, timeout_ms } => {
                let Some((seq, receipt)) = self.receipt(pick) else {
                    self.queue.advance(now);
                    return self.check();
                };
                let result = self.queue.change_visibility(now, &receipt, timeout_ms);
                if self.is_current(seq, receipt) {
                    prop_assert_eq!(result, Ok(()));
                    if timeout_ms == 0 {
                        self.totals.nacked += 1;
                        self.end_lease(seq);
                    } else {
                        self.leases.insert(
                            seq,
                            Lease {
                                receipt,
                                deadline: now.plus_ms(timeout_ms),
                            },
                        );
                    }
                } else {
                    prop_assert_eq!(result, Err(ReceiptError::Stale));
                }
            }
            Op::Purge => {
                let expected = (self.live.len() - self.due_for_dead_letter.len()) as u64;
                prop_assert_eq!(self.queue.purge(now), expected);
                self.totals.purged += expected;
                let purged: Vec<Seq> = self
                    .live
                    .difference(&self.due_for_dead_letter)
                    .copied()
                    .collect();
                for seq in purged {
                    self.live.remove(&seq);
                    self.leases.remove(&seq);
                    let status = self.queue.status(self.known[&seq].id).map(|r| r.status);
                    prop_assert_eq!(status, Some(MessageStatus::Purged));
                }
            }
        }
        self.collect_dead_letters()?;
        self.check()
    }

    fn send(&mut self, messages: Vec<Message>) -> Result<(), TestCaseError> {
        let now = self.now;
        let mut entries = Vec::new();
        let mut expected = Vec::new();
        let mut in_batch: HashMap<String, (MessageId, Seq)> = HashMap::new();
        let mut next_seq = self.next_seq;
        for message in &messages {
            let id = MessageId::from_u128(self.next_id);
            self.next_id += 1;
            let body = match message.shared_body {
                Some(n) => format!("b{n}"),
                None => format!("unique {}", id.as_u128()),
            };
            let mut entry = SendEntry::new(id, body.as_str());
            if self.setup.fifo || message.group != 0 {
                entry.group_id = Some(format!("g{}", message.group));
            }
            entry.dedup_id = message.dedup.map(|d| format!("d{d}"));
            entry.delay_ms = message.delay_ms;
            let dedup_key = entry
                .dedup_id
                .clone()
                .or_else(|| self.setup.content_dedup.then(|| body.clone()));
            let original = dedup_key.as_ref().and_then(|key| {
                self.dedup
                    .get(key)
                    .map(|(id, seq, _)| (*id, *seq))
                    .or_else(|| in_batch.get(key).copied())
            });
            match original {
                Some((id, seq)) => expected.push(SendOutcome {
                    id,
                    seq,
                    duplicate: true,
                }),
                None => {
                    expected.push(SendOutcome {
                        id,
                        seq: next_seq,
                        duplicate: false,
                    });
                    if let Some(key) = dedup_key {
                        in_batch.insert(key, (id, next_seq));
                    }
                    next_seq += 1;
                }
            }
            entries.push(entry);
        }
        let n_new = expected.iter().filter(|o| !o.duplicate).count() as u64;
        let depth = (self.live.len() - self.due_for_dead_letter.len()) as u64;
        let result = self.queue.send(now, entries.clone());
        if let Some(max_depth) = self.setup.max_depth.filter(|max| depth + n_new > *max) {
            prop_assert!(
                matches!(&result, Err(QueueError::QueueFull { depth: d, max_depth: m, .. }) if *d == depth && *m == max_depth),
                "expected QueueFull at depth {} + {}, got {:?}",
                depth,
                n_new,
                result
            );
            return Ok(());
        }
        let outcomes = result.map_err(|e| fail(format!("send refused: {e}")))?;
        prop_assert_eq!(&outcomes, &expected);
        self.totals.sent += outcomes.len() as u64;
        for (entry, outcome) in entries.into_iter().zip(outcomes) {
            if outcome.duplicate {
                self.totals.duplicates += 1;
                continue;
            }
            let known = Known {
                id: entry.id,
                group: entry.group_id.clone(),
                body: entry.body.to_string(),
                sent_at: now,
                receive_count: 0,
                first_received_at: None,
            };
            let dedup_key = entry
                .dedup_id
                .or_else(|| self.setup.content_dedup.then(|| entry.body.to_string()));
            if let Some(key) = dedup_key {
                self.dedup
                    .insert(key, (entry.id, outcome.seq, now.plus_ms(DEDUP_WINDOW_MS)));
            }
            self.seq_of.insert(entry.id, outcome.seq);
            self.known.insert(outcome.seq, known);
            self.live.insert(outcome.seq);
        }
        self.next_seq = next_seq;
        Ok(())
    }

    fn receive(&mut self, max: u32, timeout_ms: Option<u64>) -> Result<(), TestCaseError> {
        let now = self.now;
        let in_flight = self.leases.len() as u32;
        let room = self.setup.in_flight_max.saturating_sub(in_flight);
        let result = self.queue.receive(now, max, timeout_ms);
        let stats = self.queue.stats(now);
        let deliveries: Vec<Delivery> = match result {
            Err(QueueError::TooManyInFlight { in_flight: n, .. }) => {
                prop_assert!(
                    !self.setup.fifo,
                    "a FIFO queue answers with no messages instead"
                );
                prop_assert_eq!((room, n), (0, in_flight));
                prop_assert!(stats.visible > 0, "refused although nothing was visible");
                return Ok(());
            }
            Err(error) => return Err(fail(format!("receive refused: {error}"))),
            Ok(deliveries) => deliveries,
        };
        prop_assert!(
            self.setup.fifo || room > 0 || stats.visible == 0,
            "a standard queue at its in-flight limit refuses instead of answering empty"
        );
        prop_assert!(
            deliveries.len() as u32 <= max.min(room),
            "{} > min({max}, {room})",
            deliveries.len()
        );
        let deadline = now.plus_ms(timeout_ms.unwrap_or(self.setup.visibility_timeout_ms));
        for delivery in &deliveries {
            let seq = delivery.seq;
            prop_assert!(
                !self.leases.contains_key(&seq),
                "message {} delivered twice while leased",
                seq
            );
            prop_assert!(
                self.live.contains(&seq),
                "message {} delivered but not live",
                seq
            );
            let known = self.known.get_mut(&seq).unwrap();
            prop_assert_eq!(delivery.id, known.id);
            prop_assert_eq!(&*delivery.body, known.body.as_str());
            prop_assert_eq!(delivery.group_id.as_deref(), known.group.as_deref());
            prop_assert_eq!(delivery.sent_at, known.sent_at);
            prop_assert_eq!(delivery.receive_count, known.receive_count + 1);
            prop_assert_eq!(
                delivery.first_received_at,
                known.first_received_at.unwrap_or(now)
            );
            known.receive_count += 1;
            known.first_received_at = Some(delivery.first_received_at);
            self.leases.insert(
                seq,
                Lease {
                    receipt: delivery.receipt,
                    deadline,
                },
            );
            self.receipts.push((seq, delivery.receipt));
        }
        self.totals.received += deliveries.len() as u64;

        let statuses = self.statuses();
        let pending: Vec<Seq> = statuses
            .iter()
            .filter(|(_, s)| **s == MessageStatus::Pending)
            .map(|(q, _)| *q)
            .collect();
        let delivered: Vec<Seq> = deliveries.iter().map(|d| d.seq).collect();
        let short = (deliveries.len() as u32) < max.min(room);
        // Messages dead-lettered by this receive's own advance have left already.
        let live: BTreeSet<Seq> = self
            .live
            .difference(&self.due_for_dead_letter)
            .copied()
            .collect();
        if self.setup.fifo {
            for (i, delivery) in deliveries.iter().enumerate() {
                let group = &self.known[&delivery.seq].group;
                for seq in live.range(..delivery.seq) {
                    if &self.known[seq].group == group {
                        prop_assert!(
                            delivered[..i].contains(seq),
                            "FIFO: delivered {} of {:?} while earlier {} was not delivered before it", delivery.seq, group, seq
                        );
                    }
                }
            }
            if short {
                // No group is free: each group with a visible message has one in flight, or its
                // oldest waiting message is delayed.
                for seq in &pending {
                    let group = &self.known[seq].group;
                    let members: Vec<(Seq, MessageStatus)> = statuses
                        .iter()
                        .filter(|(q, _)| live.contains(q) && &self.known[*q].group == group)
                        .map(|(q, s)| (*q, *s))
                        .collect();
                    let busy = members.iter().any(|(_, s)| *s == MessageStatus::Processing);
                    let head = members
                        .iter()
                        .find(|(_, s)| *s != MessageStatus::Processing)
                        .map(|(_, s)| *s);
                    prop_assert!(
                        busy || head == Some(MessageStatus::Delayed),
                        "FIFO receive left group {:?} free",
                        group
                    );
                }
            }
        } else {
            prop_assert!(
                delivered.windows(2).all(|w| w[0] < w[1]),
                "standard receive out of order: {:?}",
                delivered
            );
            if let Some(last) = delivered.last() {
                prop_assert!(
                    pending.iter().all(|seq| seq > last),
                    "an older visible message was skipped"
                );
            }
            prop_assert!(
                !short || pending.is_empty(),
                "receive returned {} of {} with messages visible",
                delivered.len(),
                max
            );
        }
        Ok(())
    }

    fn statuses(&self) -> BTreeMap<Seq, MessageStatus> {
        self.known
            .iter()
            .map(|(seq, k)| {
                (
                    *seq,
                    self.queue
                        .status(k.id)
                        .map(|r| r.status)
                        .expect("every message has a status"),
                )
            })
            .collect()
    }

    fn collect_dead_letters(&mut self) -> Result<(), TestCaseError> {
        let moved: BTreeSet<Seq> = self
            .queue
            .take_moved()
            .iter()
            .map(|m| self.seq_of[&m.id])
            .collect();
        let due = std::mem::take(&mut self.due_for_dead_letter);
        prop_assert_eq!(&moved, &due, "dead-lettered messages");
        for seq in moved {
            prop_assert!(self.live.remove(&seq));
            self.totals.dead_lettered += 1;
            let record = self.queue.status(self.known[&seq].id).unwrap();
            prop_assert_eq!(record.status, MessageStatus::DeadLettered);
            prop_assert_eq!(
                record.history.last().map(|e| e.kind),
                Some(HistoryEventKind::DeadLettered)
            );
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let stats = self.queue.stats(self.now);
        let statuses = self.statuses();
        let count =
            |status: MessageStatus| statuses.values().filter(|s| **s == status).count() as u64;
        prop_assert_eq!(count(MessageStatus::Pending), stats.visible);
        prop_assert_eq!(count(MessageStatus::Delayed), stats.delayed);
        prop_assert_eq!(count(MessageStatus::Processing), stats.in_flight);
        prop_assert_eq!(self.queue.depth(), self.live.len() as u64);
        prop_assert_eq!(stats.depth(), self.queue.depth());
        for (seq, status) in &statuses {
            let is_live = matches!(
                status,
                MessageStatus::Pending | MessageStatus::Delayed | MessageStatus::Processing
            );
            prop_assert_eq!(
                is_live,
                self.live.contains(seq),
                "message {} is {:?}",
                seq,
                status
            );
            let leased = self.leases.contains_key(seq);
            prop_assert_eq!(
                *status == MessageStatus::Processing,
                leased,
                "message {} is {:?}",
                seq,
                status
            );
        }
        let totals = Totals {
            sent: stats.sent_total,
            duplicates: stats.duplicates_total,
            received: stats.received_total,
            acked: stats.acked_total,
            nacked: stats.nacked_total,
            dead_lettered: stats.dead_lettered_total,
            purged: stats.purged_total,
        };
        prop_assert_eq!(totals, self.totals);
        prop_assert_eq!(
            (
                stats.expired_total,
                stats.moved_in_total,
                stats.moved_out_total
            ),
            (0, 0, 0)
        );
        prop_assert_eq!(
            stats.sent_total - stats.duplicates_total,
            stats.depth()
                + stats.acked_total
                + stats.dead_lettered_total
                + stats.expired_total
                + stats.purged_total
        );
        prop_assert!(self.setup.in_flight_max as u64 >= stats.in_flight);
        if let Some(max_depth) = self.setup.max_depth {
            prop_assert!(stats.depth() <= max_depth);
        }
        Ok(())
    }
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_every_queue_invariant(setup in setup(), ops in proptest::collection::vec(op(), 1..120)) {
        let mut world = World::new(setup);
        for op in ops {
            world.apply(op)?;
        }
    }
}
