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
        let arg = |i: usize| -> u64 { args[i].parse().unwrap() };
        if let Some(ms) = verb.strip_prefix('+') {
            self.now = self.now.plus_ms(ms.parse().unwrap());
            return String::new();
        }
        match verb {
            "tick" => {
                self.queue.advance(self.now);
                String::new()
            }
            "send" => {
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
            "recv" => {
                let timeout_ms = args
                    .get(1)
                    .map(|a| a.strip_prefix("vt=").unwrap().parse().unwrap());
                match self.queue.receive(self.now, arg(0) as u32, timeout_ms) {
                    Ok(deliveries) => {
                        let labels: Vec<String> =
                            deliveries.iter().map(|d| self.label(d.id)).collect();
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
            "ack" => {
                let receipt = self.receipt(args[0]);
                render_receipt(self.queue.ack(self.now, &receipt).map(|_| ()))
            }
            "nack" => {
                let receipt = self.receipt(args[0]);
                let delay_ms = args.get(1).map(|_| arg(1));
                render_receipt(self.queue.nack(self.now, &receipt, delay_ms))
            }
            "vis" => {
                let receipt = self.receipt(args[0]);
                render_receipt(self.queue.change_visibility(self.now, &receipt, arg(1)))
            }
            "del" => {
                let receipt = self.receipt(args[0]);
                match self.queue.delete(self.now, &receipt) {
                    Ok(Some(acked)) => {
                        assert_eq!(
                            self.label(acked.id),
                            args[0].split(['#', '!']).next().unwrap()
                        );
                        "ok".to_string()
                    }
                    Ok(None) => "gone".to_string(),
                    Err(error) => render_receipt(Err(error)),
                }
            }
            "mvis" => {
                let receipt = self.receipt(args[0]);
                match self
                    .queue
                    .change_visibility_of_message(self.now, &receipt, arg(1))
                {
                    Ok(VisibilityOutcome::Changed) => "ok".to_string(),
                    Ok(VisibilityOutcome::NotInFlight) => "not_in_flight".to_string(),
                    Ok(VisibilityOutcome::Gone) => "gone".to_string(),
                    Err(error) => render_receipt(Err(error)),
                }
            }
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

// ---------------------------------------------------------------------------------------------
// Send.

#[test]
fn send_enqueues_visible_messages_in_order() {
    check(standard(), "send a b c => a b c; stats => visible=3 sent=3; status a => PENDING: sent; recv 10 => a b c");
}

#[test]
fn send_needs_at_least_one_message() {
    check(
        standard(),
        "send => err InvalidParameter(messages); stats => -",
    );
}

#[test]
fn send_takes_at_most_send_batch_max_messages() {
    let mut queue = standard().queue();
    let batch = |n: usize| {
        (0..n)
            .map(|i| entry(i as u128 + 1, "m"))
            .collect::<Vec<_>>()
    };
    let too_many = queue.send(at(0), batch(SEND_BATCH_MAX + 1));
    assert!(
        matches!(too_many, Err(QueueError::InvalidParameter { field, .. }) if field == "messages")
    );
    assert_eq!(queue.depth(), 0);
    assert_eq!(
        queue.send(at(0), batch(SEND_BATCH_MAX)).unwrap().len(),
        SEND_BATCH_MAX
    );
}

#[test]
fn send_assigns_dense_increasing_sequences() {
    let mut queue = standard().queue();
    let outcomes = queue
        .send(at(0), vec![entry(1, "a"), entry(2, "b")])
        .unwrap();
    let more = queue.send(at(0), vec![entry(3, "c")]).unwrap();
    let seqs: Vec<Seq> = outcomes.iter().chain(&more).map(|o| o.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(outcomes.iter().all(|o| !o.duplicate));
}

#[test]
fn message_delay_hides_a_message_until_it_ends() {
    check(standard(), "send a:delay=100 b; status a => DELAYED: sent; recv 10 => b; stats => in_flight=1 delayed=1 sent=2 received=1; next => 100; +99; recv 10 => -; +1; recv 10 => a");
}

#[test]
fn queue_delay_applies_unless_the_message_overrides_it() {
    check(standard().delay_ms(100), "send a b:delay=0 c:delay=50; recv 10 => b; +50; recv 10 => c; +49; recv 10 => -; +1; recv 10 => a");
}

#[test]
fn delay_up_to_fifteen_minutes_is_accepted() {
    check(standard(), "send a:delay=900000 => a; send b:delay=900001 => err InvalidParameter(delay_ms); +899999; recv 1 => -; +1; recv 1 => a");
}

#[test]
fn group_id_is_kept_on_a_standard_queue() {
    check(
        standard(),
        "send a:g=G1; recv 1 => a; delivery a => rc=1 sent=0 first=0 group=G1",
    );
}

#[test]
fn dedup_id_suppresses_repeats_within_five_minutes() {
    check(standard(), "send a:d=x => a; +299999; send b:d=x => dup:a; stats => visible=1 oldest_age_ms=299999 sent=2 duplicates=1; +1; send c:d=x => c; recv 10 => a c");
}

#[test]
fn a_duplicate_does_not_extend_the_dedup_window() {
    check(
        standard(),
        "send a:d=x; +200000; send b:d=x => dup:a; +100000; send c:d=x => c",
    );
}

#[test]
fn dedup_outlives_the_original_message() {
    check(standard(), "send a:d=x; recv 1 => a; ack a; send b:d=x => dup:a; stats => sent=2 duplicates=1 received=1 acked=1");
}

#[test]
fn distinct_dedup_ids_do_not_collide() {
    check(standard(), "send a:d=x b:d=y => a b; send c:d=X => c");
}

#[test]
fn standard_queue_without_content_dedup_keeps_equal_bodies() {
    check(
        standard(),
        "send a:body=same b:body=same => a b; stats => visible=2 sent=2",
    );
}

#[test]
fn content_based_dedup_uses_the_body() {
    check(
        standard().content_dedup(true),
        "send a:body=same b:body=same c:body=other => a dup:a c; +300000; send d:body=same => d",
    );
}

#[test]
fn explicit_dedup_id_overrides_content_based_dedup() {
    check(
        standard().content_dedup(true),
        "send a:body=s:d=1 b:body=s:d=2 => a b; send c:body=s => c; send d:body=t:d=1 => dup:a",
    );
}

#[test]
fn duplicates_within_one_batch_enqueue_once() {
    check(
        standard(),
        "send a:d=x b:d=x c => a dup:a c; stats => visible=2 sent=3 duplicates=1",
    );
}

#[test]
fn content_dedup_returns_the_original_sequence() {
    let mut queue = standard().content_dedup(true).queue();
    let first = queue.send(at(0), vec![entry(1, "same")]).unwrap();
    let again = queue.send(at(5), vec![entry(2, "same")]).unwrap();
    assert_eq!(
        again,
        [SendOutcome {
            id: first[0].id,
            seq: first[0].seq,
            duplicate: true
        }]
    );
}

#[test]
fn one_bad_entry_refuses_the_whole_batch() {
    let cases = [
        ("send a b:delay=900001 c", "err InvalidParameter(delay_ms)"),
        ("send a b:g= c", "err InvalidParameter(group_id)"),
        ("send a b:d= c", "err InvalidParameter(dedup_id)"),
        ("send a:d=x b c:d=x", "a b dup:a"), // a control: the same shape succeeds when valid
    ];
    for (send, expected) in cases {
        let refused = expected.starts_with("err");
        let after = if refused {
            "stats => -; status a => none"
        } else {
            "stats => visible=2 sent=3 duplicates=1"
        };
        check(standard(), &format!("{send} => {expected}; {after}"));
    }
}

#[test]
fn one_bad_entry_does_not_consume_dedup_ids() {
    check(
        standard(),
        "send a:d=x b:delay=900001 => err InvalidParameter(delay_ms); send c:d=x => c",
    );
}

#[test]
fn group_and_dedup_ids_are_one_to_128_printable_characters() {
    let long = "x".repeat(128);
    let too_long = "x".repeat(129);
    let cases: [(Option<&str>, Option<&str>, Option<&str>); 8] = [
        (Some("g-1_!#"), Some("d.1~"), None),
        (Some(&long), Some(&long), None),
        (Some(""), None, Some("group_id")),
        (Some(&too_long), None, Some("group_id")),
        (Some("a b"), None, Some("group_id")),
        (Some("é"), None, Some("group_id")),
        (None, Some(&too_long), Some("dedup_id")),
        (None, Some("tab\t"), Some("dedup_id")),
    ];
    for (group_id, dedup_id, bad_field) in cases {
        let mut queue = standard().queue();
        let mut one = entry(1, "m");
        one.group_id = group_id.map(str::to_string);
        one.dedup_id = dedup_id.map(str::to_string);
        let result = queue.send(at(0), vec![one]);
        match bad_field {
            None => assert!(result.is_ok(), "{group_id:?} {dedup_id:?}: {result:?}"),
            Some(bad) => assert!(
                matches!(&result, Err(QueueError::InvalidParameter { field, .. }) if field == bad),
                "{group_id:?} {dedup_id:?}: {result:?}"
            ),
        }
    }
}

#[test]
fn size_limit_counts_body_and_attribute_names_types_and_values() {
    // max_message_bytes is 1024; `ab: String "xyz"` counts 2 + 6 + 3 = 11 bytes.
    let string = || attributes(&[("ab", "String", text("xyz"))]);
    let binary = || attributes(&[("bin", "Binary", AttributeData::Binary(vec![0; 4]))]);
    let number = || attributes(&[("n", "Number.int", text("12345"))]);
    let cases: Vec<(String, MessageAttributes, Option<u64>)> = vec![
        ("x".repeat(1024), MessageAttributes::default(), None),
        ("x".repeat(1025), MessageAttributes::default(), Some(1025)),
        ("é".repeat(512), MessageAttributes::default(), None), // bytes, not characters
        ("é".repeat(513), MessageAttributes::default(), Some(1026)),
        ("x".repeat(1013), string(), None),
        ("x".repeat(1014), string(), Some(1025)),
        ("x".repeat(1011), binary(), None), // 3 + 6 + 4
        ("x".repeat(1012), binary(), Some(1025)),
        ("x".repeat(1008), number(), None), // 1 + 10 + 5
        ("x".repeat(1009), number(), Some(1025)),
    ];
    for (body, attributes, too_large) in cases {
        let mut queue = standard().max_message_bytes(1024).queue();
        let mut one = entry(1, &body);
        one.attributes = attributes.clone();
        let result = queue.send(at(0), vec![one]);
        match too_large {
            None => assert!(
                result.is_ok(),
                "{} body bytes, {attributes:?}: {result:?}",
                body.len()
            ),
            Some(size_bytes) => {
                assert_eq!(
                    result,
                    Err(QueueError::MessageTooLarge {
                        size_bytes,
                        max_bytes: 1024
                    })
                );
                assert_eq!(queue.depth(), 0);
            }
        }
    }
}

#[test]
fn too_large_entry_refuses_the_whole_batch() {
    let mut queue = standard().max_message_bytes(1024).queue();
    let result = queue.send(at(0), vec![entry(1, "ok"), entry(2, &"x".repeat(1025))]);
    assert!(matches!(
        result,
        Err(QueueError::MessageTooLarge {
            size_bytes: 1025,
            ..
        })
    ));
    assert_eq!(queue.depth(), 0);
    assert_eq!(queue.stats(at(0)).sent_total, 0);
}

#[test]
fn bodies_allow_only_xml_characters() {
    let cases = [
        ("tab\t newline\n return\r", true),
        ("unicode é ✓ 🦀", true),
        ("\u{20}\u{D7FF}\u{E000}\u{FFFD}\u{10000}\u{10FFFF}", true),
        ("", true),
        ("nul \u{0}", false),
        ("bell \u{7}", false),
        ("vertical tab \u{B}", false),
        ("form feed \u{C}", false),
        ("unit separator \u{1F}", false),
        ("not a character \u{FFFE}", false),
        ("not a character \u{FFFF}", false),
    ];
    for (body, valid) in cases {
        let mut queue = standard().queue();
        let result = queue.send(at(0), vec![entry(1, body)]);
        if valid {
            assert!(result.is_ok(), "{body:?}: {result:?}");
        } else {
            assert!(
                matches!(&result, Err(QueueError::InvalidParameter { field, .. }) if field == "body"),
                "{body:?}: {result:?}"
            );
        }
    }
}

#[test]
fn typed_attributes_are_delivered_unchanged() {
    let attrs = attributes(&[
        ("kind", "String", text("order")),
        ("price", "Number", text("-12.50")),
        ("count", "Number.int", text("7")),
        (
            "blob",
            "Binary.png",
            AttributeData::Binary(vec![0, 159, 255]),
        ),
    ]);
    let mut queue = standard().queue();
    let mut one = entry(1, "body");
    one.attributes = attrs.clone();
    queue.send(at(0), vec![one]).unwrap();
    let delivered = queue.receive(at(0), 1, None).unwrap();
    assert_eq!(delivered[0].attributes, attrs);
    assert_eq!(&*delivered[0].body, "body");
    assert_eq!(
        delivered[0].attributes.get("count").unwrap().data_type(),
        "Number.int"
    );
}

#[test]
fn deliveries_carry_the_dedup_id_used() {
    let mut queue = fifo().queue();
    let mut explicit = entry(1, "a");
    explicit.group_id = Some("g".to_string());
    explicit.dedup_id = Some("d-1".to_string());
    let mut by_content = entry(2, "b");
    by_content.group_id = Some("g".to_string());
    queue.send(at(0), vec![explicit, by_content]).unwrap();
    let delivered = queue.receive(at(0), 10, None).unwrap();
    let dedup_ids: Vec<Option<&str>> = delivered.iter().map(|d| d.dedup_id.as_deref()).collect();
    let sha256_of_b = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";
    assert_eq!(dedup_ids, [Some("d-1"), Some(sha256_of_b)]);
}

// ---------------------------------------------------------------------------------------------
// Receive.

#[test]
fn receive_returns_at_most_max_oldest_first() {
    check(standard(), "send a b c d; recv 2 => a b; recv 10 => c d; recv 1 => -; stats => in_flight=4 sent=4 received=4");
}

#[test]
fn receive_refuses_bad_parameters_and_changes_nothing() {
    check(standard(), "send a; recv 0 => err InvalidParameter(max); recv 1001 => err InvalidParameter(max); recv 1 vt=43200001 => err InvalidParameter(visibility_timeout_ms); stats => visible=1 sent=1");
}

#[test]
fn receive_takes_up_to_receive_max() {
    let mut queue = standard().queue();
    for chunk in 0..2u128 {
        let batch = (0..1000)
            .map(|i| entry(chunk * 1000 + i + 1, "m"))
            .collect();
        queue.send(at(0), batch).unwrap();
    }
    assert_eq!(
        queue.receive(at(0), RECEIVE_MAX, None).unwrap().len(),
        RECEIVE_MAX as usize
    );
}

#[test]
fn received_message_is_invisible_for_the_queue_visibility_timeout() {
    check(standard().visibility_ms(1000), "send a; recv 1 => a; status a => PROCESSING: sent received; +999; recv 1 => -; +1; recv 1 => a");
}

#[test]
fn receive_visibility_timeout_overrides_the_queue_default() {
    check(standard().visibility_ms(1000), "send a; recv 1 vt=100 => a; +99; recv 1 => -; +1; recv 1 vt=5000 => a; +4999; recv 1 => -; +1; recv 1 => a");
}

#[test]
fn zero_visibility_timeout_leaves_the_message_visible() {
    check(
        standard(),
        "send a; recv 1 vt=0 => a; recv 1 => a; ack a#1 => stale; ack a#2 => ok",
    );
}

#[test]
fn redelivery_counts_receives_and_keeps_the_first_receive_time() {
    check(standard(), "+7; send a; +10; recv 1 vt=5 => a; delivery a => rc=1 sent=7 first=17; +5; recv 1 => a; delivery a => rc=2 sent=7 first=17; status a => PROCESSING: sent received nacked received");
}

#[test]
fn standard_receive_keeps_sequence_order_after_redelivery() {
    check(
        standard(),
        "send a b c d; recv 3 => a b c; nack c; nack a; recv 10 => a c d",
    );
}

// ---------------------------------------------------------------------------------------------
// Ack, nack, change visibility.

#[test]
fn ack_deletes_the_message_once() {
    check(standard(), "send a b; recv 1 => a; ack a => ok; ack a => stale; recv 10 => b; stats => in_flight=1 sent=2 received=2 acked=1; status a => COMPLETED: sent received acked");
}

#[test]
fn nack_without_delay_makes_the_message_visible_at_once() {
    check(standard(), "send a; recv 1 => a; nack a => ok; status a => PENDING: sent received nacked; stats => visible=1 sent=1 received=1 nacked=1; recv 1 => a; delivery a => rc=2 sent=0 first=0");
}

#[test]
fn nack_with_delay_hides_the_message_for_the_delay() {
    check(standard(), "send a; recv 1 => a; +10; nack a 100 => ok; status a => DELAYED: sent received nacked; next => 110; +99; recv 1 => -; +1; recv 1 => a");
}

#[test]
fn nack_delay_is_capped_at_twelve_hours() {
    check(
        standard(),
        "send a; recv 1; nack a 99999999999 => ok; next => 43200000",
    );
}

#[test]
fn nack_explicit_delay_overrides_the_retry_policy() {
    check(
        standard().retry(1000, 10000),
        "send a; recv 1; nack a 0 => ok; recv 1 => a; nack a 10 => ok; next => 10",
    );
}

#[test]
fn nack_without_delay_waits_the_retry_backoff() {
    let policy = RetryPolicy {
        base_delay_ms: 100,
        max_delay_ms: 1000,
    };
    let mut h = Harness::new(&standard().retry(100, 1000));
    h.run("send a");
    for receive_count in 1..=6u32 {
        assert_eq!(h.run("recv 1"), "a");
        let seq = h.deliveries["a"].seq;
        let delay_ms = policy.delay_ms(receive_count, seq);
        let exponential = (100u64 << (receive_count - 1)).min(1000);
        assert!(
            exponential / 2 <= delay_ms && delay_ms <= exponential,
            "{receive_count}: {delay_ms}"
        );
        assert_eq!(h.run("nack a"), "ok");
        assert!(h.run("status a").starts_with("DELAYED"));
        assert_eq!(
            h.run("next"),
            h.now.plus_ms(delay_ms).as_millis().to_string()
        );
        h.now = h.now.plus_ms(delay_ms - 1);
        assert_eq!(h.run("recv 1"), "-", "{receive_count}");
        h.now = h.now.plus_ms(1);
        check_invariants(&h.queue);
    }
}

#[test]
fn nack_of_an_ended_lease_is_stale() {
    check(standard(), "send a; recv 1 vt=10; +10; nack a => stale; vis a 100 => stale; stats => visible=1 oldest_age_ms=10 sent=1 received=1");
}

#[test]
fn change_visibility_extends_the_lease_from_now() {
    check(standard(), "send a; recv 1 vt=100 => a; +50; vis a 100 => ok; +99; recv 1 => -; +1; recv 1 => a; delivery a => rc=2 sent=0 first=0");
}

#[test]
fn change_visibility_can_shorten_the_lease() {
    check(
        standard(),
        "send a; recv 1 vt=1000 => a; vis a 10 => ok; next => 10; +10; recv 1 => a",
    );
}

#[test]
fn change_visibility_to_zero_releases_the_message() {
    check(standard().retry(1000, 10000), "send a; recv 1 => a; vis a 0 => ok; stats => visible=1 sent=1 received=1 nacked=1; status a => PENDING: sent received nacked; recv 1 => a; ack a#1 => stale; ack a => ok");
}

#[test]
fn extended_lease_keeps_its_receipt() {
    check(
        standard(),
        "send a; recv 1 vt=10; vis a 1000; +500; vis a 1000 => ok; +999; ack a => ok",
    );
}

// ---------------------------------------------------------------------------------------------
// Receipts.

#[test]
fn receipt_of_another_incarnation_or_unknown_sequence_is_invalid_and_changes_nothing() {
    check(standard(), "send a; recv 1; ack a!epoch => invalid; ack a!seq => invalid; nack a!epoch => invalid; nack a!seq => invalid; vis a!epoch 0 => invalid; vis a!seq 0 => invalid; status a => PROCESSING: sent received; ack a => ok");
}

#[test]
fn receipt_with_a_sequence_zero_or_a_lease_never_issued_is_invalid() {
    check(standard(), "send a; recv 1; ack a!zero => invalid; ack a!lease => invalid; nack a!lease => invalid; ack a => ok");
}

#[test]
fn a_move_delivered_twice_keeps_one_live_copy() {
    let mut source = standard().dead_letter(1).queue();
    let mut dlq = standard().named("dlq").queue();
    source.send(at(0), vec![entry(1, "a")]).unwrap();
    let delivery = source.receive(at(0), 1, None).unwrap().remove(0);
    source.nack(at(0), &delivery.receipt, None).unwrap();
    let moved = source.take_moved().remove(0);
    assert!(dlq.accept_moved(at(1), moved.clone(), HistoryEventKind::DeadLettered));
    assert!(!dlq.accept_moved(at(1), moved, HistoryEventKind::DeadLettered));
    check_invariants(&dlq);
    assert_eq!(dlq.depth(), 1);
}

#[test]
fn receipt_after_ack_is_stale() {
    check(
        standard(),
        "send a; recv 1; ack a; ack a => stale; nack a => stale; vis a 10 => stale",
    );
}

#[test]
fn receipt_after_its_lease_expired_is_stale() {
    check(standard(), "send a; recv 1 vt=100; +99; vis a 1 => ok; +1; ack a => stale; status a => PENDING: sent received nacked");
}

#[test]
fn receipt_of_an_earlier_delivery_is_stale() {
    check(standard(), "send a; recv 1 vt=10; +10; recv 1 => a; ack a#1 => stale; nack a#1 => stale; status a => PROCESSING: sent received nacked received; ack a#2 => ok");
}

#[test]
fn receipt_after_nack_is_stale_even_when_redelivered() {
    check(
        standard(),
        "send a; recv 1; nack a; ack a#1 => stale; recv 1 => a; ack a#1 => stale; ack a#2 => ok",
    );
}

#[test]
fn receipt_after_purge_is_stale() {
    check(standard(), "send a; recv 1; purge => 1; ack a => stale");
}

#[test]
fn receipts_round_trip_through_text() {
    let mut h = Harness::new(&standard());
    h.run("send a");
    h.run("recv 1");
    let text = h.receipt("a").to_string();
    let parsed = ReceiptHandle::parse(&text).unwrap();
    assert_eq!(
        h.queue.ack(h.now, &parsed).map(|acked| acked.id),
        Ok(h.id("a"))
    );
}

// ---------------------------------------------------------------------------------------------
// Dead-lettering and redrive.

#[test]
fn nack_after_max_receive_count_dead_letters() {
    check(standard().dead_letter(2), "send a b; recv 1 => a; nack a; moved => -; recv 1 => a; nack a => ok; moved => a; moved => -; status a => DEAD_LETTERED: sent received nacked received nacked dead_lettered; stats => visible=1 sent=2 received=2 nacked=2 dead_lettered=1; recv 10 => b");
}

#[test]
fn lease_expiry_after_max_receive_count_dead_letters() {
    check(standard().dead_letter(2), "send a; recv 1 vt=10; +10; recv 1 vt=10 => a; +9; moved => -; tick; moved => -; +1; recv 1 => -; moved => a; ack a => stale; stats => sent=1 received=2 dead_lettered=1");
}

#[test]
fn release_after_max_receive_count_dead_letters() {
    check(
        standard().dead_letter(1),
        "send a; recv 1; vis a 0 => ok; moved => a; recv 1 => -",
    );
}

#[test]
fn ack_on_the_last_allowed_receive_completes() {
    check(
        standard().dead_letter(1),
        "send a; recv 1; ack a => ok; moved => -; status a => COMPLETED: sent received acked",
    );
}

#[test]
fn moved_message_carries_its_content_and_history() {
    let mut source = standard().dead_letter(1).queue();
    let mut one = entry(1, "payload");
    one.attributes = attributes(&[("k", "String", text("v"))]);
    one.dedup_id = Some("d".to_string());
    one.group_id = Some("g".to_string());
    one.notify = Some(Notify {
        url: "http://x".to_string(),
        headers: vec![],
    });
    source.send(at(5), vec![one.clone()]).unwrap();
    let delivery = source.receive(at(6), 1, None).unwrap().remove(0);
    source.nack(at(7), &delivery.receipt, None).unwrap();
    let moved = source.take_moved();
    assert_eq!(moved.len(), 1);
    let m = &moved[0];
    assert_eq!(
        (m.id, &*m.body, &m.attributes),
        (one.id, "payload", &one.attributes)
    );
    assert_eq!(
        (m.group_id.as_deref(), m.dedup_id.as_deref()),
        (Some("g"), Some("d"))
    );
    assert_eq!(m.notify, one.notify);
    assert_eq!(m.sent_at, at(5));
    assert_eq!(m.source.as_str(), "q");
    assert_eq!(
        m.dead_letter_source.as_ref().map(QueueName::as_str),
        Some("q")
    );
    let events: Vec<(HistoryEventKind, u64, u32)> = m
        .history
        .iter()
        .map(|e| (e.kind, e.at.as_millis(), e.receive_count))
        .collect();
    assert_eq!(
        events,
        [
            (HistoryEventKind::Sent, 5, 0),
            (HistoryEventKind::Received, 6, 1),
            (HistoryEventKind::Nacked, 7, 1),
            (HistoryEventKind::DeadLettered, 7, 1),
        ]
    );
    assert_eq!(m.history[3].detail.as_deref(), Some("moved to dlq"));
    assert_eq!(
        source.status(one.id).map(|r| r.status),
        Some(MessageStatus::DeadLettered)
    );
    check_invariants(&source);
}

#[test]
fn dead_letter_queue_accepts_moved_messages_and_redrives_them_home() {
    let mut source = standard().dead_letter(1).queue();
    let mut dlq = standard().named("dlq").queue();
    source
        .send(at(0), vec![entry(1, "a"), entry(2, "b")])
        .unwrap();
    for delivery in source.receive(at(0), 10, None).unwrap() {
        source.nack(at(0), &delivery.receipt, None).unwrap();
    }
    let moved = source.take_moved();
    assert_eq!(moved.len(), 2);
    for m in moved {
        dlq.accept_moved(at(10), m, HistoryEventKind::DeadLettered);
    }
    check_invariants(&dlq);
    let stats = dlq.stats(at(10));
    assert_eq!(
        (stats.visible, stats.moved_in_total, stats.sent_total),
        (2, 2, 0)
    );
    let id = MessageId::from_u128(1);
    let in_dlq = dlq.status(id).unwrap();
    assert_eq!(in_dlq.status, MessageStatus::Pending);
    let kinds: Vec<HistoryEventKind> = in_dlq.history.iter().map(|e| e.kind).collect();
    use HistoryEventKind::*;
    assert_eq!(
        kinds,
        [Sent, Received, Nacked, DeadLettered],
        "no second event for the arrival"
    );

    // The dead-letter queue delivers with a fresh receive count and the original send time.
    let delivered = dlq.receive(at(20), 1, None).unwrap();
    assert_eq!((delivered[0].id, delivered[0].receive_count), (id, 1));
    assert_eq!(
        (delivered[0].sent_at, delivered[0].first_received_at),
        (at(0), at(20))
    );

    // Redrive skips messages in flight and those from other sources, and takes at most `max`.
    let from_elsewhere =
        |source: Option<&QueueName>| source.map(QueueName::as_str) == Some("other");
    assert!(dlq.take_for_redrive(at(30), 10, from_elsewhere).is_empty());
    let from_source = |source: Option<&QueueName>| source.map(QueueName::as_str) == Some("q");
    let back = dlq.take_for_redrive(at(30), 10, from_source);
    assert_eq!(
        back.iter().map(|m| m.id).collect::<Vec<_>>(),
        [MessageId::from_u128(2)]
    );
    dlq.nack(at(30), &delivered[0].receipt, None).unwrap();
    let back_too = dlq.take_for_redrive(at(40), 1, from_source);
    assert_eq!(back_too.iter().map(|m| m.id).collect::<Vec<_>>(), [id]);
    let stats = dlq.stats(at(40));
    assert_eq!((stats.depth(), stats.moved_out_total), (0, 2));
    check_invariants(&dlq);

    // Home again: live, with a `redriven` event, its dead-letter record replaced.
    assert_eq!(source.n_status_records(), 2);
    for m in back.into_iter().chain(back_too) {
        assert_eq!(m.source.as_str(), "dlq");
        source.accept_moved(at(50), m, HistoryEventKind::Redriven);
    }
    assert_eq!(source.n_status_records(), 0);
    let home = source.status(id).unwrap();
    assert_eq!(home.status, MessageStatus::Pending);
    let last = home.history.last().unwrap();
    assert_eq!(
        (last.kind, last.at, last.detail.as_deref()),
        (Redriven, at(50), Some("from dlq"))
    );
    let again = source.receive(at(50), 10, None).unwrap();
    assert_eq!(
        again
            .iter()
            .map(|d| (d.id.as_u128(), d.receive_count))
            .collect::<Vec<_>>(),
        [(2, 1), (1, 1)],
        "in the order they came home"
    );
    let stats = source.stats(at(50));
    assert_eq!((stats.dead_lettered_total, stats.moved_in_total), (2, 2));
    check_invariants(&source);
}

#[test]
fn moved_messages_are_accepted_beyond_max_depth() {
    let mut dlq = standard().named("dlq").max_depth(1).queue();
    dlq.send(at(0), vec![entry(1, "a")]).unwrap();
    let mut source = standard().dead_letter(1).queue();
    source.send(at(0), vec![entry(2, "b")]).unwrap();
    let d = source.receive(at(0), 1, None).unwrap();
    source.nack(at(0), &d[0].receipt, None).unwrap();
    for m in source.take_moved() {
        dlq.accept_moved(at(0), m, HistoryEventKind::DeadLettered);
    }
    assert_eq!(dlq.depth(), 2);
    check_invariants(&dlq);
}

#[test]
fn fifo_dead_letter_queue_groups_messages_without_a_group_by_source() {
    let mut source = standard().dead_letter(1).queue();
    let mut dlq = fifo().named("dlq.fifo").queue();
    source
        .send(at(0), vec![entry(1, "a"), entry(2, "b")])
        .unwrap();
    for d in source.receive(at(0), 10, None).unwrap() {
        source.nack(at(0), &d.receipt, None).unwrap();
    }
    for m in source.take_moved() {
        dlq.accept_moved(at(0), m, HistoryEventKind::DeadLettered);
    }
    check_invariants(&dlq);
    let delivered = dlq.receive(at(0), 10, None).unwrap();
    let groups: Vec<Option<&str>> = delivered.iter().map(|d| d.group_id.as_deref()).collect();
    assert_eq!(groups, [Some("q"), Some("q")]);
}

// ---------------------------------------------------------------------------------------------
// Retention, purge, stats.

#[test]
fn messages_expire_after_retention() {
    check(standard().retention_ms(60_000), "send a; +30000; send b; +29999; stats => visible=2 oldest_age_ms=59999 sent=2; +1; stats => visible=1 oldest_age_ms=30000 sent=2 expired=1; status a => EXPIRED: sent expired; recv 10 => b");
}

#[test]
fn messages_in_flight_and_delayed_expire_too() {
    check(standard().retention_ms(60_000), "send a b:delay=100; recv 1 vt=43200000 => a; +60000; ack a => stale; stats => sent=2 received=1 expired=2; status a => EXPIRED: sent received expired; status b => EXPIRED: sent expired");
}

#[test]
fn retention_counts_from_the_original_send() {
    check(standard().retention_ms(60_000), "send a; recv 1 vt=10; +59990; recv 1 => a; nack a; +9; recv 1 => a; +1; recv 1 => -; stats => sent=1 received=3 nacked=1 expired=1");
}

#[test]
fn purge_deletes_every_message_in_any_state() {
    check(standard(), "send a b c:delay=100; recv 1 => a; purge => 3; stats => sent=3 received=1 purged=3; status a => PURGED: sent received purged; status c => PURGED: sent purged; recv 10 => -; purge => 0; send d => d");
}

#[test]
fn stats_report_depth_by_state_and_totals() {
    check(standard().dead_letter(1), "send a b c:delay=10 d:d=x e:d=x => a b c d dup:d; recv 2 => a b; ack a; nack b; moved => b; +5; stats => visible=1 delayed=1 oldest_age_ms=5 sent=5 duplicates=1 received=2 acked=1 nacked=1 dead_lettered=1; recv 1 => d; +5; stats => visible=1 in_flight=1 oldest_age_ms=10 sent=5 duplicates=1 received=3 acked=1 nacked=1 dead_lettered=1");
}

#[test]
fn oldest_age_is_zero_when_empty() {
    check(standard(), "stats => -; send a; +25; stats => visible=1 oldest_age_ms=25 sent=1; recv 1; ack a; stats => sent=1 received=1 acked=1");
}

#[test]
fn next_visible_at_is_the_earliest_delay_or_lease_end() {
    check(standard(), "next => -; send a:delay=50; next => 50; send b; recv 1 vt=20 => b; next => 20; +20; tick; next => 50; +30; tick; next => -");
}

// ---------------------------------------------------------------------------------------------
// Status records.

#[test]
fn unknown_message_has_no_status() {
    check(standard(), "status nobody => none");
}

#[test]
fn status_of_a_finished_message_is_kept_for_status_retention() {
    check(standard().status_retention_ms(1000), "send a; recv 1; ack a; records => 1; +999; status a => COMPLETED: sent received acked; +1; status a => none; records => 0");
}

#[test]
fn status_records_beyond_the_maximum_evict_the_oldest() {
    check(standard().status_records_max(2), "send a b c; recv 3; ack a; +1; ack b; +1; ack c; records => 2; status a => none; status b => COMPLETED: sent received acked; status c => COMPLETED: sent received acked");
}

#[test]
fn zero_status_records_keeps_none() {
    check(
        standard().status_records_max(0),
        "send a; recv 1; ack a; records => 0; status a => none",
    );
}

#[test]
fn history_is_capped_and_keeps_the_sent_event() {
    let mut h = Harness::new(&standard());
    h.run("send a");
    for i in 0..40u64 {
        h.now = at(i);
        assert_eq!(h.run("recv 1"), "a");
        assert_eq!(h.run("nack a"), "ok");
    }
    let id = h.id("a");
    let history = h.queue.status(id).unwrap().history;
    assert_eq!(history.len(), HISTORY_EVENTS_MAX);
    assert_eq!(history[0].kind, HistoryEventKind::Sent);
    let last = history.last().unwrap();
    assert_eq!(
        (last.kind, last.at, last.receive_count),
        (HistoryEventKind::Nacked, at(39), 40)
    );
    assert_eq!(last.detail.as_deref(), Some("nacked"));
    let second = &history[1];
    assert_eq!(
        (second.kind, second.receive_count),
        (HistoryEventKind::Nacked, 9),
        "the oldest later events were dropped"
    );
}

#[test]
fn history_says_why_a_lease_ended() {
    let mut h = Harness::new(&standard());
    for step in [
        "send a",
        "recv 1 vt=10",
        "+10",
        "recv 1",
        "vis a 0",
        "recv 1",
        "nack a",
    ] {
        h.run(step);
    }
    let id = h.id("a");
    let details: Vec<Option<String>> = h
        .queue
        .status(id)
        .unwrap()
        .history
        .into_iter()
        .filter(|e| e.kind == HistoryEventKind::Nacked)
        .map(|e| e.detail)
        .collect();
    let expected =
        ["visibility timeout expired", "released", "nacked"].map(|s| Some(s.to_string()));
    assert_eq!(details, expected);
}

// ---------------------------------------------------------------------------------------------
// Limits: max_depth and in-flight.

#[test]
fn send_beyond_max_depth_is_refused_and_changes_nothing() {
    check(standard().max_depth(2), "send a => a; send b c => err QueueFull(1/2); stats => visible=1 sent=1; send b => b; send c => err QueueFull(2/2); recv 1; ack a; send c => c");
}

#[test]
fn duplicates_do_not_count_toward_max_depth() {
    check(
        standard().max_depth(2),
        "send a:d=x b => a b; send c:d=x => dup:a; send d:d=y e:d=y => err QueueFull(2/2)",
    );
}

#[test]
fn repeats_within_a_batch_count_once_toward_max_depth() {
    check(
        standard().max_depth(2),
        "send a; send b:d=y c:d=y => b dup:b; stats => visible=2 sent=3 duplicates=1",
    );
}

#[test]
fn messages_in_flight_and_delayed_count_toward_max_depth() {
    check(
        standard().max_depth(2),
        "send a b:delay=100; recv 1; send c => err QueueFull(2/2)",
    );
}

#[test]
fn standard_receive_at_the_in_flight_limit_is_refused() {
    check(standard().in_flight_max(2), "send a b c d; recv 1 => a; recv 5 => b; recv 1 => err TooManyInFlight(2); stats => visible=2 in_flight=2 sent=4 received=2; ack a; recv 5 => c; nack c; recv 5 => c");
}

#[test]
fn standard_receive_at_the_in_flight_limit_with_nothing_visible_is_empty() {
    check(
        standard().in_flight_max(1),
        "send a b:delay=10; recv 1 => a; recv 1 => -",
    );
}

#[test]
fn fifo_receive_at_the_in_flight_limit_is_empty() {
    check(
        fifo().in_flight_max(2),
        "send a:g=1 b:g=2 c:g=3; recv 5 => a b; recv 1 => -; ack b; recv 5 => c",
    );
}

// ---------------------------------------------------------------------------------------------
// FIFO.

#[test]
fn fifo_requires_a_group_id() {
    check(
        fifo(),
        "send a => err GroupIdRequired; send a:g=1 b => err GroupIdRequired; stats => -",
    );
}

#[test]
fn fifo_requires_a_dedup_id_or_content_based_dedup() {
    check(
        fifo().content_dedup(false),
        "send a:g=1 => err DedupIdRequired; send a:g=1:d=x => a; send b:g=1:d=x => dup:a",
    );
}

#[test]
fn fifo_group_is_received_in_strict_order() {
    check(fifo(), "send a:g=1 b:g=1 c:g=1 => a b c; recv 1 => a; recv 1 => -; ack a; recv 1 => b; ack b; recv 5 => c");
}

#[test]
fn fifo_receive_takes_consecutive_messages_of_each_group() {
    check(fifo(), "send a:g=1 b:g=2 c:g=1 d:g=2 e:g=1; recv 3 => a c e; recv 3 => b d; delivery c => rc=1 sent=0 first=0 group=1");
}

#[test]
fn fifo_group_in_flight_is_not_handed_to_another_receive() {
    check(fifo(), "send a:g=1 b:g=1 c:g=2; recv 1 => a; recv 10 => c; recv 10 => -; ack c; recv 10 => -; +30000; recv 10 => a b");
}

#[test]
fn fifo_groups_proceed_in_parallel() {
    check(fifo(), "send a:g=1 b:g=1 c:g=2 d:g=2; recv 1 => a; recv 1 => c; ack c; recv 1 => d; ack a; recv 1 => b");
}

#[test]
fn fifo_serves_the_group_with_the_oldest_head_first() {
    check(
        fifo(),
        "send a:g=2 b:g=1 c:g=2; recv 1 => a; recv 1 => b; recv 1 => -; ack a; recv 1 => c",
    );
}

#[test]
fn fifo_nack_returns_the_message_to_the_head_of_its_group() {
    check(fifo(), "send a:g=1 b:g=1; recv 1 => a; nack a => ok; recv 10 => a b; delivery a => rc=2 sent=0 first=0 group=1");
}

#[test]
fn fifo_nack_inside_a_batch_waits_for_the_rest_of_the_batch() {
    check(
        fifo(),
        "send a:g=1 b:g=1 c:g=1; recv 2 => a b; nack a; recv 5 => -; ack b; recv 5 => a c",
    );
}

#[test]
fn fifo_nack_with_delay_holds_back_the_group() {
    check(
        fifo(),
        "send a:g=1 b:g=1 c:g=2; recv 1 => a; nack a 100; recv 10 => c; +100; recv 10 => a b",
    );
}

#[test]
fn fifo_expired_lease_returns_the_message_to_the_head() {
    check(
        fifo(),
        "send a:g=1 b:g=1; recv 1 vt=10 => a; +10; recv 5 => a b",
    );
}

#[test]
fn fifo_delayed_head_holds_back_its_group() {
    check(
        fifo(),
        "send a:g=1:delay=100 b:g=1 c:g=2; recv 10 => c; +100; recv 10 => a b",
    );
}

#[test]
fn fifo_dead_lettering_unblocks_the_group() {
    check(
        fifo().dead_letter(1),
        "send a:g=1 b:g=1; recv 1 => a; nack a; moved => a; recv 5 => b",
    );
}

#[test]
fn fifo_purge_empties_every_group() {
    check(
        fifo(),
        "send a:g=1 b:g=1 c:g=2; recv 1 => a; purge => 3; send d:g=1 => d; recv 10 => d",
    );
}

#[test]
fn fifo_expiry_unblocks_the_group() {
    check(
        fifo().retention_ms(60_000),
        "send a:g=1; +1; send b:g=1; recv 1 vt=43200000 => a; +59999; recv 1 => b",
    );
}

#[test]
fn fifo_dedup_id_applies_across_groups() {
    check(
        fifo().content_dedup(false),
        "send a:g=1:d=x b:g=2:d=x => a dup:a",
    );
}

// ---------------------------------------------------------------------------------------------
// Construction and configuration.

#[test]
fn queue_kind_must_match_its_name_and_cannot_change() {
    let fifo_config = QueueConfig {
        fifo: true,
        ..QueueConfig::default()
    };
    let standard_name = QueueName::new("q").unwrap();
    assert!(matches!(
        Queue::new(standard_name.clone(), fifo_config.clone(), QueueLimits::default(), 1),
        Err(QueueError::InvalidParameter { field, .. }) if field == "fifo"
    ));
    let mut queue = standard().queue();
    assert!(matches!(
        queue.update_config(fifo_config),
        Err(QueueError::InvalidParameter { field, .. }) if field == "fifo"
    ));
    assert!(!queue.is_fifo());
}

#[test]
fn updated_config_applies_to_later_operations() {
    let mut h = Harness::new(&standard());
    h.run("send a");
    let config = QueueConfig {
        visibility_timeout_ms: 10,
        delay_ms: 5,
        ..QueueConfig::default()
    };
    h.queue.update_config(config.clone()).unwrap();
    assert_eq!(h.queue.config(), &config);
    for (step, expected) in [
        ("recv 1", "a"),
        ("+10", ""),
        ("send b", "b"),
        ("recv 5", "a"),
        ("+5", ""),
        ("recv 5", "b"),
    ] {
        assert_eq!(h.run(step), expected, "{step}");
    }
}

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

// ---------------------------------------------------------------------------------------------
// Callback outcomes on status records.

fn kinds(record: &StatusRecord) -> Vec<&'static str> {
    record.history.iter().map(|e| e.kind.as_str()).collect()
}

#[test]
fn callback_failure_marks_a_completed_message_and_success_restores_completed() {
    let mut queue = standard().queue();
    queue.send(at(0), vec![entry(1, "a")]).unwrap();
    let delivery = queue.receive(at(1), 1, None).unwrap().remove(0);
    queue.ack(at(2), &delivery.receipt).unwrap();
    let id = delivery.id;

    let failed = queue
        .record_callback(at(3), id, false, Some("HTTP 500".to_string()))
        .unwrap();
    assert_eq!(failed.status, MessageStatus::CallbackFailed);
    assert_eq!(
        kinds(&failed),
        ["sent", "received", "acked", "callback_failed"]
    );
    let last = failed.history.last().unwrap();
    assert_eq!(
        (last.at, last.receive_count, last.detail.as_deref()),
        (at(3), 1, Some("HTTP 500"))
    );
    assert_eq!(queue.callback_failed(10), vec![failed]);

    let done = queue.record_callback(at(4), id, true, None).unwrap();
    assert_eq!(done.status, MessageStatus::Completed);
    assert_eq!(
        kinds(&done),
        [
            "sent",
            "received",
            "acked",
            "callback_failed",
            "callback_succeeded"
        ]
    );
    assert_eq!(queue.status(id).unwrap(), done);
    assert!(queue.callback_failed(10).is_empty());
}

#[test]
fn callback_success_after_a_dead_letter_keeps_dead_lettered() {
    let mut queue = standard().dead_letter(1).queue();
    queue.send(at(0), vec![entry(1, "a")]).unwrap();
    let delivery = queue.receive(at(0), 1, None).unwrap().remove(0);
    queue.nack(at(1), &delivery.receipt, None).unwrap();
    let id = delivery.id;
    let failed = queue.record_callback(at(2), id, false, None).unwrap();
    assert_eq!(failed.status, MessageStatus::CallbackFailed);
    let done = queue.record_callback(at(3), id, true, None).unwrap();
    assert_eq!(done.status, MessageStatus::DeadLettered);
}

#[test]
fn callback_outcome_of_an_unknown_or_live_message_changes_nothing() {
    let mut queue = standard().queue();
    queue.send(at(0), vec![entry(1, "a")]).unwrap();
    let live = MessageId::from_u128(1);
    let before = queue.status(live);
    assert_eq!(queue.record_callback(at(1), live, false, None), None);
    assert_eq!(queue.status(live), before);
    assert_eq!(
        queue.record_callback(at(1), MessageId::from_u128(99), true, None),
        None
    );
}

#[test]
fn callback_history_stays_bounded() {
    let mut queue = standard().queue();
    queue.send(at(0), vec![entry(1, "a")]).unwrap();
    let delivery = queue.receive(at(0), 1, None).unwrap().remove(0);
    queue.ack(at(0), &delivery.receipt).unwrap();
    for i in 0..(HISTORY_EVENTS_MAX as u64 * 2) {
        queue
            .record_callback(at(i), delivery.id, false, None)
            .unwrap();
    }
    let record = queue.status(delivery.id).unwrap();
    assert_eq!(record.history.len(), HISTORY_EVENTS_MAX);
    assert_eq!(record.history[0].kind, HistoryEventKind::Sent);
}
