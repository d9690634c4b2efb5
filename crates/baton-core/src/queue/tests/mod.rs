//! Unit tests of the queue state machine.
//!
//! Most cases are one line: `check(setup, script)` runs a script of `;`-separated steps against
//! a fresh queue, through one `Harness` that calls the public API with an explicit `now`. A step
//! is `command => expected output`, or just `command`, which must then not fail (no `err`,
//! `stale`, `invalid` or `dup:`). After every step the queue's private indexes are checked
//! against each other (`check_invariants`).
//!
//! Commands (labels such as `a` name messages; a message's body is its label by default):
//! - `+MS` moves the clock forward (the queue sees it at its next operation); `tick` advances
//!   the queue to now.
//! - `send SPEC...` sends one batch; `SPEC` is `label[:g=GROUP][:d=DEDUP][:delay=MS][:body=TEXT]`.
//!   Output: per entry the label enqueued, or `dup:ORIGINAL` for a duplicate.
//! - `recv MAX [vt=MS]` prints the labels received, `-` for none.
//! - `ack R`, `nack R [DELAY_MS]`, `vis R TIMEOUT_MS` print `ok`, `stale` or `invalid`. `R` is a
//!   label (its latest receipt), `label#N` (its N-th receipt), or `label!epoch` / `label!seq`
//!   (its latest receipt forged with another queue incarnation / a sequence never issued).
//! - `del R` (SQS's delete) prints `ok`, `gone`, `stale` or `invalid`; `mvis R TIMEOUT_MS`
//!   (SQS's visibility change) prints `ok`, `not_in_flight`, `gone` or `invalid`.
//! - `stats` prints the non-zero counters; `status L` prints `STATUS: history events`;
//!   `delivery L` prints the latest delivery of L; `purge` prints the count; `moved` prints the
//!   dead-letter outbox; `next` prints `next_visible_at`; `records` the kept status records.
//!
//! Errors print as `err Variant(detail)`. Time starts at 0.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use proptest::prelude::*;

use super::*;
use crate::attributes::{AttributeData, AttributeValue};
use crate::config::{DeadLetterPolicy, RetryPolicy};

mod callbacks;
mod construction;
mod dead_letter;
mod fifo;
mod limits;
mod random_ops;
mod receive;
mod retention;
mod send;
mod sqs_receipts;

const EPOCH: u64 = 0xBA70_0001;

// ---------------------------------------------------------------------------------------------
// Setup: a queue's name, attributes and limits.

#[derive(Debug, Clone)]
struct Setup {
    name: &'static str,
    config: QueueConfig,
    limits: QueueLimits,
}

fn standard() -> Setup {
    Setup {
        name: "q",
        config: QueueConfig::default(),
        limits: QueueLimits::default(),
    }
}

/// A FIFO queue with content-based dedup, so that distinct bodies need no dedup id.
fn fifo() -> Setup {
    Setup {
        name: "q.fifo",
        config: QueueConfig {
            fifo: true,
            content_based_dedup: true,
            ..QueueConfig::default()
        },
        limits: QueueLimits::default(),
    }
}

impl Setup {
    fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }
    fn visibility_ms(mut self, ms: u64) -> Self {
        self.config.visibility_timeout_ms = ms;
        self
    }
    fn delay_ms(mut self, ms: u64) -> Self {
        self.config.delay_ms = ms;
        self
    }
    fn retention_ms(mut self, ms: u64) -> Self {
        self.config.retention_ms = ms;
        self
    }
    fn max_message_bytes(mut self, bytes: u32) -> Self {
        self.config.max_message_bytes = bytes;
        self
    }
    fn dead_letter(mut self, max_receive_count: u32) -> Self {
        let queue = QueueName::new("dlq").unwrap();
        self.config.dead_letter = Some(DeadLetterPolicy {
            queue,
            max_receive_count,
        });
        self
    }
    fn retry(mut self, base_delay_ms: u64, max_delay_ms: u64) -> Self {
        self.config.retry = Some(RetryPolicy {
            base_delay_ms,
            max_delay_ms,
        });
        self
    }
    fn max_depth(mut self, max_depth: u64) -> Self {
        self.config.max_depth = Some(max_depth);
        self
    }
    fn content_dedup(mut self, on: bool) -> Self {
        self.config.content_based_dedup = on;
        self
    }
    fn in_flight_max(mut self, n: u32) -> Self {
        self.limits.in_flight_max_standard = n;
        self.limits.in_flight_max_fifo = n;
        self
    }
    fn status_retention_ms(mut self, ms: u64) -> Self {
        self.limits.status_retention_ms = ms;
        self
    }
    fn status_records_max(mut self, n: u32) -> Self {
        self.limits.status_records_max = n;
        self
    }
    fn queue(&self) -> Queue {
        Queue::new(
            QueueName::new(self.name).unwrap(),
            self.config.clone(),
            self.limits,
            EPOCH,
        )
        .unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// The harness: one function per command, all calling the public API with `now`.

struct Harness {
    queue: Queue,
    now: Timestamp,
    ids: HashMap<String, MessageId>,
    labels: HashMap<MessageId, String>,
    receipts: HashMap<String, Vec<ReceiptHandle>>,
    deliveries: HashMap<String, Delivery>,
}

impl Harness {
    fn new(setup: &Setup) -> Self {
        Harness {
            queue: setup.queue(),
            now: Timestamp::ZERO,
            ids: HashMap::new(),
            labels: HashMap::new(),
            receipts: HashMap::new(),
            deliveries: HashMap::new(),
        }
    }

    fn id(&mut self, label: &str) -> MessageId {
        if let Some(id) = self.ids.get(label) {
            return *id;
        }
        let id = MessageId::from_u128(self.ids.len() as u128 + 1);
        self.ids.insert(label.to_string(), id);
        self.labels.insert(id, label.to_string());
        id
    }

    fn label(&self, id: MessageId) -> String {
        self.labels
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("?{id}"))
    }

    fn entry(&mut self, spec: &str) -> SendEntry {
        let mut parts = spec.split(':');
        let label = parts.next().unwrap();
        let mut entry = SendEntry::new(self.id(label), label);
        for part in parts {
            let (key, value) = part.split_once('=').expect("send options are key=value");
            match key {
                "g" => entry.group_id = Some(value.to_string()),
                "d" => entry.dedup_id = Some(value.to_string()),
                "delay" => entry.delay_ms = Some(value.parse().unwrap()),
                "body" => entry.body = Arc::from(value),
                other => panic!("unknown send option {other:?}"),
            }
        }
        entry
    }

    fn receipt(&self, selector: &str) -> ReceiptHandle {
        let (selector, forge) = match selector.split_once('!') {
            Some((selector, forge)) => (selector, Some(forge)),
            None => (selector, None),
        };
        let (label, nth) = match selector.split_once('#') {
            Some((label, nth)) => (label, Some(nth.parse::<usize>().unwrap())),
            None => (selector, None),
        };
        let issued = self
            .receipts
            .get(label)
            .expect("a receipt of a received message");
        let mut receipt = match nth {
            Some(nth) => issued[nth - 1],
            None => *issued.last().unwrap(),
        };
        match forge {
            Some("epoch") => receipt.tag ^= 1,
            Some("seq") => receipt.seq = u64::MAX,
            Some("zero") => receipt.seq = 0,
            Some("lease") => receipt.lease = u64::MAX,
            Some(other) => panic!("unknown forgery {other:?}"),
            None => {}
        }
        receipt
    }

    fn run(&mut self, command: &str) -> String {
        let words: Vec<&str> = command.split_whitespace().collect();
        let (&verb, args) = words.split_first().expect("a command");
        if let Some(ms) = verb.strip_prefix('+') {
            self.now = self.now.plus_ms(ms.parse().unwrap());
            return String::new();
        }
        match verb {
            "tick" => {
                self.queue.advance(self.now);
                String::new()
            }
            "send" => self.send_command(args),
            "recv" => self.recv_command(args),
            "ack" | "nack" | "vis" | "del" | "mvis" => self.receipt_command(verb, args),
            _ => self.inspect_command(verb, args),
        }
    }

    /// `send SPEC...`.
    fn send_command(&mut self, args: &[&str]) -> String {
        let entries = args.iter().map(|spec| self.entry(spec)).collect();
        match self.queue.send(self.now, entries) {
            Ok(outcomes) => words_or_dash(outcomes.iter().map(|outcome| {
                let label = self.label(outcome.id);
                if outcome.duplicate {
                    format!("dup:{label}")
                } else {
                    label
                }
            })),
            Err(error) => render_error(&error),
        }
    }

    /// `recv MAX [vt=MS]`: keeps each delivery and its receipt under the message's label.
    fn recv_command(&mut self, args: &[&str]) -> String {
        let timeout_ms = args
            .get(1)
            .map(|a| a.strip_prefix("vt=").unwrap().parse().unwrap());
        match self
            .queue
            .receive(self.now, number(args, 0) as u32, timeout_ms)
        {
            Ok(deliveries) => {
                let labels: Vec<String> = deliveries.iter().map(|d| self.label(d.id)).collect();
                for (label, delivery) in labels.iter().zip(deliveries) {
                    self.receipts
                        .entry(label.clone())
                        .or_default()
                        .push(delivery.receipt);
                    self.deliveries.insert(label.clone(), delivery);
                }
                words_or_dash(labels.into_iter())
            }
            Err(error) => render_error(&error),
        }
    }

    /// `ack`, `nack`, `vis`, `del` and `mvis`: the commands that present a receipt.
    fn receipt_command(&mut self, verb: &str, args: &[&str]) -> String {
        let receipt = self.receipt(args[0]);
        match verb {
            "ack" => render_receipt(self.queue.ack(self.now, &receipt).map(|_| ())),
            "nack" => {
                let delay_ms = args.get(1).map(|_| number(args, 1));
                render_receipt(self.queue.nack(self.now, &receipt, delay_ms))
            }
            "vis" => render_receipt(self.queue.change_visibility(
                self.now,
                &receipt,
                number(args, 1),
            )),
            "del" => match self.queue.delete(self.now, &receipt) {
                Ok(Some(acked)) => {
                    assert_eq!(
                        self.label(acked.id),
                        args[0].split(['#', '!']).next().unwrap()
                    );
                    "ok".to_string()
                }
                Ok(None) => "gone".to_string(),
                Err(error) => render_receipt(Err(error)),
            },
            "mvis" => {
                match self
                    .queue
                    .change_visibility_of_message(self.now, &receipt, number(args, 1))
                {
                    Ok(VisibilityOutcome::Changed) => "ok".to_string(),
                    Ok(VisibilityOutcome::NotInFlight) => "not_in_flight".to_string(),
                    Ok(VisibilityOutcome::Gone) => "gone".to_string(),
                    Err(error) => render_receipt(Err(error)),
                }
            }
            other => panic!("not a receipt command {other:?}"),
        }
    }

    /// The commands that only read the queue (`purge` and `moved` drain what they print).
    fn inspect_command(&mut self, verb: &str, args: &[&str]) -> String {
        match verb {
            "stats" => {
                self.queue.advance(self.now);
                render_stats(&self.queue.stats(self.now))
            }
            "status" => {
                self.queue.advance(self.now);
                let id = self.id(args[0]);
                match self.queue.status(id) {
                    None => "none".to_string(),
                    Some(record) => {
                        assert_eq!(record.id, id);
                        let events: Vec<&str> =
                            record.history.iter().map(|e| e.kind.as_str()).collect();
                        format!("{}: {}", record.status.as_str(), events.join(" "))
                    }
                }
            }
            "delivery" => {
                let d = &self.deliveries[args[0]];
                let mut out = format!(
                    "rc={} sent={} first={}",
                    d.receive_count,
                    d.sent_at.as_millis(),
                    d.first_received_at.as_millis()
                );
                if let Some(group) = &d.group_id {
                    write!(out, " group={group}").unwrap();
                }
                out
            }
            "purge" => self.queue.purge(self.now).to_string(),
            "moved" => words_or_dash(self.queue.take_moved().iter().map(|m| self.label(m.id))),
            "next" => self
                .queue
                .next_visible_at()
                .map_or("-".to_string(), |t| t.as_millis().to_string()),
            "records" => self.queue.n_status_records().to_string(),
            "depth" => self.queue.depth().to_string(),
            other => panic!("unknown command {other:?}"),
        }
    }
}

/// The `i`-th argument of a command, as a number.
fn number(args: &[&str], i: usize) -> u64 {
    args[i].parse().unwrap()
}

fn words_or_dash(words: impl Iterator<Item = String>) -> String {
    let words: Vec<String> = words.collect();
    if words.is_empty() {
        "-".to_string()
    } else {
        words.join(" ")
    }
}

fn render_error(error: &QueueError) -> String {
    match error {
        QueueError::InvalidName { .. } => "err InvalidName".to_string(),
        QueueError::InvalidParameter { field, .. } => format!("err InvalidParameter({field})"),
        QueueError::MessageTooLarge {
            size_bytes,
            max_bytes,
        } => {
            format!("err MessageTooLarge({size_bytes}>{max_bytes})")
        }
        QueueError::GroupIdRequired { .. } => "err GroupIdRequired".to_string(),
        QueueError::DedupIdRequired { .. } => "err DedupIdRequired".to_string(),
        QueueError::QueueFull {
            depth, max_depth, ..
        } => format!("err QueueFull({depth}/{max_depth})"),
        QueueError::TooManyInFlight { in_flight, .. } => {
            format!("err TooManyInFlight({in_flight})")
        }
    }
}

fn render_receipt(result: Result<(), ReceiptError>) -> String {
    match result {
        Ok(()) => "ok",
        Err(ReceiptError::Stale) => "stale",
        Err(ReceiptError::Invalid) => "invalid",
    }
    .to_string()
}

fn render_stats(stats: &QueueStats) -> String {
    let fields = [
        ("visible", stats.visible),
        ("in_flight", stats.in_flight),
        ("delayed", stats.delayed),
        ("oldest_age_ms", stats.oldest_age_ms),
        ("sent", stats.sent_total),
        ("duplicates", stats.duplicates_total),
        ("received", stats.received_total),
        ("acked", stats.acked_total),
        ("nacked", stats.nacked_total),
        ("dead_lettered", stats.dead_lettered_total),
        ("expired", stats.expired_total),
        ("purged", stats.purged_total),
        ("moved_in", stats.moved_in_total),
        ("moved_out", stats.moved_out_total),
    ];
    words_or_dash(
        fields
            .iter()
            .filter(|(_, n)| *n != 0)
            .map(|(name, n)| format!("{name}={n}")),
    )
}

fn is_failure(output: &str) -> bool {
    output.starts_with("err")
        || output == "stale"
        || output == "invalid"
        || output.split(' ').any(|word| word.starts_with("dup:"))
}

/// Runs `script` against a fresh queue made from `setup`; see the module docs.
fn check(setup: Setup, script: &str) {
    let mut harness = Harness::new(&setup);
    let mut transcript = String::new();
    for step in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (command, expected) = match step.split_once("=>") {
            Some((command, expected)) => (command.trim(), Some(expected.trim())),
            None => (step, None),
        };
        let actual = harness.run(command);
        writeln!(transcript, "  {command} => {actual}").unwrap();
        match expected {
            Some(expected) => {
                assert_eq!(actual, expected, "at `{step}`; transcript:\n{transcript}")
            }
            None => assert!(
                !is_failure(&actual),
                "`{command}` failed; transcript:\n{transcript}"
            ),
        }
        check_invariants(&harness.queue);
    }
}

/// Every private index agrees with the messages, and the totals are conserved.
fn check_invariants(queue: &Queue) {
    let mut n_visible = 0;
    let mut visible = BTreeSet::new();
    let mut delayed = BTreeSet::new();
    let mut leases = BTreeSet::new();
    let mut lease_ids = HashSet::new();
    let mut by_sent = BTreeSet::new();
    for (seq, message) in queue.messages.iter() {
        assert!(seq < queue.next_seq, "sequences are issued below next_seq");
        assert!(
            queue
                .messages
                .get_by_id(message.id)
                .is_some_and(|named| std::ptr::eq(named, message)),
            "by_id names every message"
        );
        by_sent.insert((message.sent_at, seq));
        assert!(message.history().len() <= HISTORY_EVENTS_MAX);
        assert_eq!(
            message.history().first().map(|e| e.kind),
            Some(HistoryEventKind::Sent)
        );
        match message.state() {
            State::Visible => {
                n_visible += 1;
                visible.insert(seq);
            }
            State::Delayed { until } => {
                delayed.insert((until, seq));
            }
            State::InFlight { deadline, lease } => {
                assert!(
                    lease < queue.next_lease,
                    "leases are issued below next_lease"
                );
                assert!(lease_ids.insert(lease), "one lease per message");
                assert!(message.receive_count >= 1, "a leased message was received");
                leases.insert((deadline, seq));
            }
        }
        assert_eq!(
            message.first_received_at().is_some(),
            message.receive_count > 0
        );
    }
    assert_eq!(queue.messages.n_ids(), queue.messages.len());
    assert_eq!(
        queue.by_sent.iter(&queue.messages).collect::<Vec<_>>(),
        by_sent.into_iter().collect::<Vec<_>>()
    );
    assert_eq!(queue.n_visible, n_visible);
    assert_eq!(queue.delayed, delayed);
    assert_eq!(queue.leases, leases);
    match &queue.ready {
        Ready::Standard(ready) => assert_eq!(
            ready.iter(&queue.messages).collect::<Vec<_>>(),
            visible.into_iter().collect::<Vec<_>>()
        ),
        Ready::Fifo(fifo) => check_fifo_index(queue, fifo),
    }
    let stats = queue.stats(Timestamp::ZERO);
    assert_eq!(stats.depth(), queue.depth());
    assert_eq!(
        stats.sent_total - stats.duplicates_total + stats.moved_in_total,
        queue.depth()
            + stats.acked_total
            + stats.dead_lettered_total
            + stats.expired_total
            + stats.purged_total
            + stats.moved_out_total,
        "every message sent or moved in is still here or left exactly once: {stats:?}"
    );
}

fn check_fifo_index(queue: &Queue, fifo: &FifoIndex) {
    let mut pending: BTreeMap<Arc<str>, BTreeSet<Seq>> = BTreeMap::new();
    let mut in_flight: BTreeMap<Arc<str>, u32> = BTreeMap::new();
    for (seq, message) in queue.messages.iter() {
        let group = message
            .group_id()
            .cloned()
            .expect("FIFO messages have a group");
        if matches!(message.state(), State::InFlight { .. }) {
            *in_flight.entry(group.clone()).or_default() += 1;
            pending.entry(group).or_default();
        } else {
            pending.entry(group.clone()).or_default().insert(seq);
            in_flight.entry(group).or_default();
        }
    }
    let groups: BTreeSet<&Arc<str>> = fifo.groups.keys().collect();
    assert_eq!(
        groups,
        pending.keys().collect::<BTreeSet<_>>(),
        "exactly the groups with messages exist"
    );
    let mut available = BTreeSet::new();
    for (key, group) in &fifo.groups {
        assert_eq!(group.pending, pending[key], "group {key} pending");
        assert_eq!(group.in_flight, in_flight[key], "group {key} in flight");
        let head = group.pending.first().copied();
        let want = head.filter(|seq| {
            group.in_flight == 0 && queue.messages.get(*seq).unwrap().state() == State::Visible
        });
        assert_eq!(
            group.available_at, want,
            "group {key} is available iff idle with a visible head"
        );
        if let Some(seq) = want {
            available.insert((seq, key.clone()));
        }
    }
    assert_eq!(fifo.available, available);
}

/// After `advance(now)` nothing due is left undone.
fn check_nothing_due(queue: &Queue, now: Timestamp) {
    assert!(queue.delayed.first().is_none_or(|(until, _)| now < *until));
    assert!(queue
        .leases
        .first()
        .is_none_or(|(deadline, _)| now < *deadline));
    let retention_ms = queue.config.retention_ms;
    assert!(queue
        .by_sent
        .first(&queue.messages)
        .is_none_or(|(sent, _)| now < sent.plus_ms(retention_ms)));
}

fn text(s: &str) -> AttributeData {
    AttributeData::Text(s.to_string())
}

fn attributes(entries: &[(&str, &str, AttributeData)]) -> MessageAttributes {
    let map = entries
        .iter()
        .map(|(name, data_type, data)| {
            (
                name.to_string(),
                AttributeValue::new(data_type, data.clone()).unwrap(),
            )
        })
        .collect();
    MessageAttributes::new(map).unwrap()
}

fn entry(id: u128, body: &str) -> SendEntry {
    SendEntry::new(MessageId::from_u128(id), body)
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}
