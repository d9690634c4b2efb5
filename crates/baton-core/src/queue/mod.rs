//! One queue's semantics: SQS-style standard and FIFO queues as a state machine.
//!
//! # States
//! Every message is in exactly one state: *delayed* (in `delayed`, keyed by when it becomes
//! visible), *visible* (in the ready index), or *in flight* (in `leases`, keyed by the lease's
//! deadline). A message that leaves (ack, dead-letter, expiry, purge, redrive) is removed from
//! every index at once by `detach` and its status moves to the archive.
//!
//! # Time
//! Every operation takes `now` and first calls `advance(now)`, which promotes due delayed
//! messages, ends expired leases (dead-lettering messages that used up their receives) and
//! expires messages past retention. Each message crosses each boundary once, so the work is
//! amortised O(log n) per message; no operation scans the queue.
//!
//! # FIFO
//! Messages of a group wait in the group's `pending` set in sequence order, delayed or not. A
//! group is *available* when nothing of it is in flight and its head is visible; available
//! groups are ordered by their head's sequence, so the oldest work goes first. A receive takes
//! consecutive visible messages from the head of each available group in turn.
//!
//! # Cross-queue moves
//! Dead-lettered messages are put in an outbox (`take_moved`) for the engine to deliver to the
//! dead-letter queue, which sees every queue; this queue only knows its own state.
//!
//! # Memory
//! A queue may hold millions of messages, so what each costs beyond its body is kept small
//! (about 140 bytes for a plain message, allocator overhead of the body included): a 64-byte
//! record with rarely used fields boxed apart and the first history event implied, found by
//! sequence through an array (4 bytes) and by id through 8-byte hash entries (`store`); the
//! orders that messages usually join in sequence order (visible by sequence, all by send
//! time) are deques of sequences rather than B-trees (`order`).

mod archive;
mod dedup;
mod leases;
mod order;
mod peek;
mod snapshot;
mod store;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::attributes::{first_non_xml_char, MessageAttributes};
use crate::config::QueueConfig;
use crate::error::{QueueError, ReceiptError};
use crate::limits::*;
use crate::message::*;
use crate::name::QueueName;
use crate::time::Timestamp;
use archive::Archive;
use dedup::DedupWindow;
pub use leases::VisibilityOutcome;
use order::{BySent, ByVisible};
pub use peek::{PeekState, PeekedMessage};
pub use snapshot::{
    ArchivedSnapshot, DedupSnapshot, MessageSnapshot, MessageStateSnapshot, QueueHeaderSnapshot,
};
use store::{Parts, Record, Store};

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendEntry {
    /// Chosen by the caller (a random UUID), so that the core stays deterministic.
    pub id: MessageId,
    pub body: Arc<str>,
    pub attributes: MessageAttributes,
    /// Overrides the queue's `delay_ms`.
    pub delay_ms: Option<u64>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub notify: Option<Notify>,
}

impl SendEntry {
    pub fn new(id: MessageId, body: impl Into<Arc<str>>) -> Self {
        SendEntry {
            id,
            body: body.into(),
            attributes: MessageAttributes::default(),
            delay_ms: None,
            group_id: None,
            dedup_id: None,
            notify: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOutcome {
    pub id: MessageId,
    pub seq: Seq,
    /// The dedup id was seen within the window: nothing was enqueued, `id` is the original's.
    pub duplicate: bool,
}

/// What an ack completed; push delivery and callbacks act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    pub id: MessageId,
    pub sent_at: Timestamp,
    pub receive_count: u32,
    pub notify: Option<Notify>,
}

/// Counts and totals. `visible + in_flight + delayed` is the queue's depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    /// Age of the oldest message in the queue, 0 when empty.
    pub oldest_age_ms: u64,
    pub sent_total: u64,
    pub duplicates_total: u64,
    pub received_total: u64,
    pub acked_total: u64,
    pub nacked_total: u64,
    pub dead_lettered_total: u64,
    pub expired_total: u64,
    pub purged_total: u64,
    /// Messages that arrived by dead-lettering or redrive from another queue.
    pub moved_in_total: u64,
    /// Messages that left by redrive to another queue.
    pub moved_out_total: u64,
}

impl QueueStats {
    pub fn depth(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Delayed { until: Timestamp },
    Visible,
    InFlight { deadline: Timestamp, lease: u64 },
}

#[derive(Debug, Default)]
struct Group {
    /// Delayed and visible messages of the group, in order.
    pending: BTreeSet<Seq>,
    in_flight: u32,
    /// The key this group has in `FifoIndex::available`, if any.
    available_at: Option<Seq>,
}

#[derive(Debug, Default)]
struct FifoIndex {
    groups: HashMap<Arc<str>, Group>,
    available: BTreeSet<(Seq, Arc<str>)>,
}

#[derive(Debug)]
enum Ready {
    /// Visible messages in sequence order.
    Standard(ByVisible),
    Fifo(FifoIndex),
}

#[derive(Debug)]
pub struct Queue {
    name: QueueName,
    config: QueueConfig,
    limits: QueueLimits,
    epoch: u64,
    next_seq: Seq,
    next_lease: u64,
    /// Live messages, by sequence and by id.
    messages: Store,
    ready: Ready,
    n_visible: u64,
    delayed: BTreeSet<(Timestamp, Seq)>,
    leases: BTreeSet<(Timestamp, Seq)>,
    /// Every message by send time: retention, the oldest age, redrive order.
    by_sent: BySent,
    dedup: DedupWindow,
    archive: Archive,
    stats: QueueStats,
    moved_out: Vec<MovedMessage>,
    live_bytes: u64,
}

/// Bookkeeping bytes counted per message in `live_bytes`, beyond body and attributes.
const MESSAGE_OVERHEAD_BYTES: u64 = 128;

fn message_bytes(body: &str, attributes: &MessageAttributes) -> u64 {
    body.len() as u64 + attributes.size_bytes() + MESSAGE_OVERHEAD_BYTES
}

fn invalid(field: &str, reason: impl Into<String>) -> QueueError {
    QueueError::InvalidParameter {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// SQS group and dedup ids: 1–128 characters of printable ASCII without spaces.
fn check_token(field: &str, value: &str, chars_max: usize) -> Result<(), QueueError> {
    if value.is_empty() || value.len() > chars_max {
        return Err(invalid(
            field,
            format!("must be 1 to {chars_max} characters"),
        ));
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(invalid(
            field,
            format!("character {bad:?} is not allowed: use letters, digits and punctuation"),
        ));
    }
    Ok(())
}

fn content_dedup_id(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    hex::encode(digest)
}

impl Queue {
    /// A new, empty queue. `epoch` must differ between incarnations of the same name (the
    /// engine passes a random number) so receipts of a deleted queue never match a new one.
    pub fn new(
        name: QueueName,
        config: QueueConfig,
        limits: QueueLimits,
        epoch: u64,
    ) -> Result<Self, QueueError> {
        config.validate(&name)?;
        let ready = if config.fifo {
            Ready::Fifo(FifoIndex::default())
        } else {
            Ready::Standard(ByVisible::default())
        };
        Ok(Queue {
            name,
            config,
            limits,
            epoch,
            next_seq: 1,
            next_lease: 1,
            messages: Store::default(),
            ready,
            n_visible: 0,
            delayed: BTreeSet::new(),
            leases: BTreeSet::new(),
            by_sent: BySent::default(),
            dedup: DedupWindow::default(),
            archive: Archive::default(),
            stats: QueueStats::default(),
            moved_out: Vec::new(),
            live_bytes: 0,
        })
    }

    pub fn name(&self) -> &QueueName {
        &self.name
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// This incarnation's epoch (named by every receipt it issues).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Approximate bytes held by live messages: bodies, attributes and a fixed overhead each.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    pub fn is_fifo(&self) -> bool {
        self.config.fifo
    }

    /// Replaces the attributes. The kind (FIFO or standard) cannot change.
    pub fn update_config(&mut self, config: QueueConfig) -> Result<(), QueueError> {
        config.validate(&self.name)?;
        if config.fifo != self.config.fifo {
            return Err(invalid(
                "fifo",
                "a queue's kind (FIFO or standard) cannot change",
            ));
        }
        self.config = config;
        Ok(())
    }

    pub fn depth(&self) -> u64 {
        self.messages.len() as u64
    }

    fn in_flight_max(&self) -> u32 {
        if self.config.fifo {
            self.limits.in_flight_max_fifo
        } else {
            self.limits.in_flight_max_standard
        }
    }

    /// Counts as of the last operation; call `advance(now)` first for counts as of `now`.
    pub fn stats(&self, now: Timestamp) -> QueueStats {
        QueueStats {
            visible: self.n_visible,
            in_flight: self.leases.len() as u64,
            delayed: self.delayed.len() as u64,
            oldest_age_ms: self
                .by_sent
                .first(&self.messages)
                .map_or(0, |(sent_at, _)| now.millis_since(sent_at)),
            ..self.stats
        }
    }

    /// The next moment at which a message becomes visible by itself (a delay or a lease ends).
    /// Long polls sleep until then at the latest.
    pub fn next_visible_at(&self) -> Option<Timestamp> {
        let delayed = self.delayed.first().map(|(until, _)| *until);
        let lease = self.leases.first().map(|(deadline, _)| *deadline);
        match (delayed, lease) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Messages that left for another queue (dead-lettering). The engine must deliver them.
    pub fn take_moved(&mut self) -> Vec<MovedMessage> {
        std::mem::take(&mut self.moved_out)
    }

    /// Enqueues `entries` atomically: either every entry is valid and fits, and each is enqueued
    /// (or recognised as a duplicate), or nothing changes.
    pub fn send(
        &mut self,
        now: Timestamp,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<SendOutcome>, QueueError> {
        self.advance(now);
        let dedup_ids = self.validate_send(&entries)?;
        let mut outcomes = Vec::with_capacity(entries.len());
        for (entry, dedup_id) in entries.into_iter().zip(dedup_ids) {
            self.stats.sent_total += 1;
            let dedup_id: Option<Arc<str>> = dedup_id.map(Arc::from);
            if let Some((id, seq)) = dedup_id.as_deref().and_then(|d| self.dedup.get(d)) {
                self.stats.duplicates_total += 1;
                outcomes.push(SendOutcome {
                    id,
                    seq,
                    duplicate: true,
                });
                continue;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            if let Some(d) = &dedup_id {
                self.dedup.insert(d.clone(), entry.id, seq, now);
            }
            let delay_ms = entry.delay_ms.unwrap_or(self.config.delay_ms);
            let group_id = entry.group_id.map(|group_id| self.group_key(group_id));
            let message = Record::sent(
                entry.id,
                entry.body,
                now,
                entry.attributes,
                group_id,
                dedup_id,
                entry.notify,
            );
            outcomes.push(SendOutcome {
                id: entry.id,
                seq,
                duplicate: false,
            });
            self.insert(seq, message, now.plus_ms(delay_ms), now);
        }
        Ok(outcomes)
    }

    /// Checks that `send(now, entries)` would succeed, changing nothing. The caller must have
    /// applied `advance(now)` first (the engine does under the queue's lock), so that this and
    /// the `send` that follows see the same queue. A publish to several queues checks each
    /// before sending to any, which is what makes the fan-out all or nothing.
    pub fn check_send(&self, entries: &[SendEntry]) -> Result<(), QueueError> {
        self.validate_send(entries).map(|_| ())
    }

    /// Checks one message as a send would (size, body, delay, group and dedup ids), changing
    /// nothing; SQS's SendMessageBatch uses it to fail single entries instead of the batch.
    pub fn check_message(&self, entry: &SendEntry) -> Result<(), QueueError> {
        self.check_entry(entry).map(|_| ())
    }

    /// Validates a batch whole and returns each entry's effective dedup id.
    fn validate_send(&self, entries: &[SendEntry]) -> Result<Vec<Option<String>>, QueueError> {
        if entries.is_empty() {
            return Err(invalid("messages", "a send needs at least one message"));
        }
        if entries.len() > SEND_BATCH_MAX {
            return Err(invalid(
                "messages",
                format!(
                    "{} messages given, at most {SEND_BATCH_MAX} per call",
                    entries.len()
                ),
            ));
        }
        let mut dedup_ids = Vec::with_capacity(entries.len());
        for entry in entries {
            dedup_ids.push(self.check_entry(entry)?);
        }
        // Count what would really be enqueued: repeats inside the batch and within the window
        // are duplicates, not new messages.
        let mut fresh_in_batch: BTreeSet<&str> = BTreeSet::new();
        let mut n_new = 0u64;
        for dedup_id in &dedup_ids {
            match dedup_id {
                Some(d) if self.dedup.get(d).is_some() || !fresh_in_batch.insert(d.as_str()) => {}
                _ => n_new += 1,
            }
        }
        if let Some(max_depth) = self.config.max_depth {
            if self.depth() + n_new > max_depth {
                return Err(QueueError::QueueFull {
                    queue: self.name.clone(),
                    depth: self.depth(),
                    max_depth,
                });
            }
        }
        Ok(dedup_ids)
    }

    /// Validates one entry and returns its effective dedup id.
    fn check_entry(&self, entry: &SendEntry) -> Result<Option<String>, QueueError> {
        let size_bytes = entry.body.len() as u64 + entry.attributes.size_bytes();
        if size_bytes > u64::from(self.config.max_message_bytes) {
            return Err(QueueError::MessageTooLarge {
                size_bytes,
                max_bytes: self.config.max_message_bytes,
            });
        }
        if let Some(bad) = first_non_xml_char(&entry.body) {
            return Err(invalid(
                "body",
                format!(
                    "character U+{:04X} is not allowed in a message body",
                    bad as u32
                ),
            ));
        }
        if let Some(delay_ms) = entry.delay_ms {
            // Up to the queue's retention: a message delayed to its end would expire the
            // moment it became visible. (The SQS API keeps its own 15-minute limit.)
            let max = self.config.retention_ms.saturating_sub(1);
            if delay_ms > max {
                return Err(invalid(
                    "delay_ms",
                    format!(
                        "{delay_ms} is outside 0..={max}: a message's delay must end within the queue's retention ({} ms)",
                        self.config.retention_ms
                    ),
                ));
            }
        }
        if let Some(group_id) = &entry.group_id {
            check_token("group_id", group_id, GROUP_ID_CHARS_MAX)?;
        } else if self.config.fifo {
            return Err(QueueError::GroupIdRequired {
                queue: self.name.clone(),
            });
        }
        if let Some(dedup_id) = &entry.dedup_id {
            check_token("dedup_id", dedup_id, DEDUP_ID_CHARS_MAX)?;
            return Ok(Some(dedup_id.clone()));
        }
        if self.config.content_based_dedup {
            return Ok(Some(content_dedup_id(&entry.body)));
        }
        if self.config.fifo {
            return Err(QueueError::DedupIdRequired {
                queue: self.name.clone(),
            });
        }
        Ok(None)
    }

    /// `group_id` as the `Arc` its group's other messages share, when it has any here.
    fn group_key(&self, group_id: impl AsRef<str> + Into<Arc<str>>) -> Arc<str> {
        if let Ready::Fifo(fifo) = &self.ready {
            if let Some((key, _)) = fifo.groups.get_key_value(group_id.as_ref()) {
                return key.clone();
            }
        }
        group_id.into()
    }

    /// Puts a new message into the indexes, delayed until `visible_at` if that is later than `now`.
    fn insert(&mut self, seq: Seq, mut message: Record, visible_at: Timestamp, now: Timestamp) {
        let state = if now < visible_at {
            State::Delayed { until: visible_at }
        } else {
            State::Visible
        };
        message.set_state(state);
        self.live_bytes += message_bytes(&message.body, message.attributes());
        self.by_sent.insert(message.sent_at, seq);
        match state {
            State::Delayed { until } => {
                self.delayed.insert((until, seq));
            }
            State::Visible => self.n_visible += 1,
            State::InFlight { .. } => unreachable!("new messages are never in flight"),
        }
        let group = message.group_id().cloned();
        let visible = state == State::Visible;
        self.messages.insert(seq, message);
        match &mut self.ready {
            Ready::Standard(ready) => {
                if visible {
                    ready.insert(seq);
                }
            }
            Ready::Fifo(fifo) => {
                let group = group.expect("FIFO messages always have a group");
                fifo.groups
                    .entry(group.clone())
                    .or_default()
                    .pending
                    .insert(seq);
                fifo.refresh(&group, &self.messages);
            }
        }
    }

    /// Removes message `seq` from every index and returns it.
    fn detach(&mut self, seq: Seq) -> Record {
        let message = self
            .messages
            .remove(seq)
            .expect("detach is called on live messages");
        let state = message.state();
        match state {
            State::Delayed { until } => {
                self.delayed.remove(&(until, seq));
            }
            State::Visible => self.n_visible -= 1,
            State::InFlight { deadline, .. } => {
                self.leases.remove(&(deadline, seq));
            }
        }
        match &mut self.ready {
            Ready::Standard(ready) => {
                if state == State::Visible {
                    ready.remove(seq, &self.messages);
                }
            }
            Ready::Fifo(fifo) => {
                let group = message
                    .group_id()
                    .cloned()
                    .expect("FIFO messages always have a group");
                let entry = fifo
                    .groups
                    .get_mut(&group)
                    .expect("groups of live messages exist");
                if matches!(state, State::InFlight { .. }) {
                    entry.in_flight -= 1;
                } else {
                    entry.pending.remove(&seq);
                }
                fifo.refresh(&group, &self.messages);
            }
        }
        self.by_sent.remove(message.sent_at, seq, &self.messages);
        self.live_bytes -= message_bytes(&message.body, message.attributes());
        message
    }

    /// Applies everything that became due by `now`: retention expiry, delays ending, leases
    /// ending, dedup ids and status records ageing out.
    ///
    /// Returns true when a message expired or a lease ended: changes that depend on `now` and
    /// that a durable engine must therefore log (delays ending do not count; replaying any later
    /// operation reproduces them).
    pub fn advance(&mut self, now: Timestamp) -> bool {
        let mut changed = false;
        while let Some((sent_at, seq)) = self.by_sent.first(&self.messages) {
            if now < sent_at.plus_ms(self.config.retention_ms) {
                break;
            }
            let mut message = self.detach(seq);
            message.push_history(HistoryEvent {
                kind: HistoryEventKind::Expired,
                at: now,
                receive_count: message.receive_count,
                detail: None,
            });
            let message = message.into_parts();
            self.stats.expired_total += 1;
            changed = true;
            self.archive.insert(
                message.id,
                MessageStatus::Expired,
                message.history,
                now,
                self.limits.status_records_max,
            );
        }
        while let Some(&(until, seq)) = self.delayed.first() {
            if now < until {
                break;
            }
            self.delayed.pop_first();
            let message = self.messages.get_mut(seq).expect("delayed messages exist");
            message.set_state(State::Visible);
            self.n_visible += 1;
            let group = message.group_id().cloned();
            match &mut self.ready {
                Ready::Standard(ready) => {
                    ready.insert(seq);
                }
                Ready::Fifo(fifo) => {
                    fifo.refresh(
                        &group.expect("FIFO messages always have a group"),
                        &self.messages,
                    );
                }
            }
        }
        while let Some(&(deadline, seq)) = self.leases.first() {
            if now < deadline {
                break;
            }
            self.end_lease(seq, now, 0, "visibility timeout expired");
            changed = true;
        }
        self.dedup.expire(now);
        self.archive.expire(now, self.limits.status_retention_ms);
        changed
    }

    /// Deletes every message, in flight or not. Returns how many.
    pub fn purge(&mut self, now: Timestamp) -> u64 {
        self.advance(now);
        let seqs: Vec<Seq> = self.messages.seqs();
        for &seq in &seqs {
            let mut message = self.detach(seq);
            message.push_history(HistoryEvent {
                kind: HistoryEventKind::Purged,
                at: now,
                receive_count: message.receive_count,
                detail: None,
            });
            let message = message.into_parts();
            self.archive.insert(
                message.id,
                MessageStatus::Purged,
                message.history,
                now,
                self.limits.status_records_max,
            );
        }
        self.stats.purged_total += seqs.len() as u64;
        seqs.len() as u64
    }

    /// Accepts a message moved here from another queue (dead-lettering or redrive). It is
    /// visible at once, with a fresh receive count. Depth limits do not apply: a move must not
    /// lose a message. Returns false (and changes nothing) when a message with the same id is
    /// already live here.
    pub fn accept_moved(
        &mut self,
        now: Timestamp,
        moved: MovedMessage,
        kind: HistoryEventKind,
    ) -> bool {
        self.advance(now);
        if self.messages.contains_id(moved.id) {
            // Already here (a move delivered twice): one live copy per id.
            return false;
        }
        let group_id = match (self.config.fifo, moved.group_id) {
            (true, None) => Some(self.group_key(moved.source.as_str())),
            (true, Some(group_id)) => Some(self.group_key(group_id)),
            (false, group_id) => group_id,
        };
        let arrival = (kind != HistoryEventKind::DeadLettered).then(|| HistoryEvent {
            kind,
            at: now,
            receive_count: 0,
            detail: Some(format!("from {}", moved.source)),
        });
        let seq = self.next_seq;
        self.next_seq += 1;
        self.archive.remove(moved.id);
        self.stats.moved_in_total += 1;
        let mut message = Record::from_parts(
            Parts {
                id: moved.id,
                body: moved.body,
                attributes: moved.attributes,
                group_id,
                dedup_id: moved.dedup_id,
                notify: moved.notify,
                sent_at: moved.sent_at,
                receive_count: 0,
                first_received_at: None,
                dead_letter_source: moved.dead_letter_source,
                history: moved.history,
            },
            State::Visible,
        );
        if let Some(event) = arrival {
            message.push_history(event);
        }
        self.insert(seq, message, now, now);
        true
    }

    /// Takes up to `max` messages that are not in flight, oldest first, for redrive. Only
    /// messages whose dead-letter source satisfies `accept` are taken; the rest stay.
    pub fn take_for_redrive(
        &mut self,
        now: Timestamp,
        max: u64,
        accept: impl Fn(Option<&QueueName>) -> bool,
    ) -> Vec<MovedMessage> {
        self.advance(now);
        let chosen = self.redrive_candidates(max, accept);
        self.take_for_move(now, &chosen)
    }

    /// The sequences `take_for_redrive` would take, as of the last `advance`: messages not in
    /// flight, oldest first, whose dead-letter source satisfies `accept`.
    pub fn redrive_candidates(
        &self,
        max: u64,
        accept: impl Fn(Option<&QueueName>) -> bool,
    ) -> Vec<Seq> {
        let mut chosen = Vec::new();
        for (_, seq) in self.by_sent.iter(&self.messages) {
            if chosen.len() as u64 >= max {
                break;
            }
            let Some(message) = self.messages.get(seq) else {
                continue;
            };
            if !message.is_in_flight() && accept(message.dead_letter_source()) {
                chosen.push(seq);
            }
        }
        chosen
    }

    /// Removes the messages `seqs` (those still here and not in flight) for a move to another
    /// queue. Their send time restarts at `now` in the queue they move to.
    pub fn take_for_move(&mut self, now: Timestamp, seqs: &[Seq]) -> Vec<MovedMessage> {
        let mut moved = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            let movable = self.messages.get(seq).is_some_and(|m| !m.is_in_flight());
            if !movable {
                continue;
            }
            let message = self.detach(seq).into_parts();
            self.stats.moved_out_total += 1;
            moved.push(MovedMessage {
                id: message.id,
                body: message.body,
                attributes: message.attributes,
                group_id: message.group_id,
                dedup_id: message.dedup_id,
                notify: message.notify,
                sent_at: now,
                source: self.name.clone(),
                dead_letter_source: message.dead_letter_source,
                history: message.history,
            });
        }
        moved
    }

    /// The status and history of message `id`, live or finished within the status retention.
    pub fn status(&self, id: MessageId) -> Option<StatusRecord> {
        if let Some(message) = self.messages.get_by_id(id) {
            let status = match message.state() {
                State::Delayed { .. } => MessageStatus::Delayed,
                State::Visible => MessageStatus::Pending,
                State::InFlight { .. } => MessageStatus::Processing,
            };
            return Some(StatusRecord {
                id,
                status,
                history: message.history(),
            });
        }
        self.archive.get(id)
    }

    /// Number of finished messages whose status is still kept.
    pub fn n_status_records(&self) -> usize {
        self.archive.len()
    }

    /// Records the outcome of a completion callback on the status record of finished message
    /// `id`: a failure makes it `CallbackFailed` (with `reason` in the history), a success
    /// gives it back the status its finish gave it (`Completed`, or `DeadLettered` when the
    /// callback reported a dead-letter). `None` when no record of `id` is kept (never
    /// finished, or aged out): nothing changes then.
    pub fn record_callback(
        &mut self,
        now: Timestamp,
        id: MessageId,
        succeeded: bool,
        reason: Option<String>,
    ) -> Option<StatusRecord> {
        let receive_count = self
            .archive
            .get(id)?
            .history
            .last()
            .map_or(0, |event| event.receive_count);
        let kind = if succeeded {
            HistoryEventKind::CallbackSucceeded
        } else {
            HistoryEventKind::CallbackFailed
        };
        let event = HistoryEvent {
            kind,
            at: now,
            receive_count,
            detail: reason,
        };
        self.archive.append_event(id, event, |history| {
            if !succeeded {
                return MessageStatus::CallbackFailed;
            }
            let finished = history.iter().rev().find(|event| {
                !matches!(
                    event.kind,
                    HistoryEventKind::CallbackSucceeded | HistoryEventKind::CallbackFailed
                )
            });
            match finished.map(|event| event.kind) {
                Some(HistoryEventKind::DeadLettered) => MessageStatus::DeadLettered,
                Some(HistoryEventKind::Expired) => MessageStatus::Expired,
                Some(HistoryEventKind::Purged) => MessageStatus::Purged,
                _ => MessageStatus::Completed,
            }
        })
    }

    /// Status records of finished messages whose last callback failed, oldest finish first,
    /// at most `max` of them.
    pub fn callback_failed(&self, max: usize) -> Vec<StatusRecord> {
        self.archive
            .iter()
            .filter(|(_, _, status, _)| *status == MessageStatus::CallbackFailed)
            .take(max)
            .map(|(id, _, status, history)| StatusRecord {
                id,
                status,
                history: history.to_vec(),
            })
            .collect()
    }
}

impl FifoIndex {
    /// Re-derives whether `group` is available after its pending set, in-flight count or head
    /// state changed, and drops the group once it is empty.
    fn refresh(&mut self, group: &Arc<str>, messages: &Store) {
        let Some(entry) = self.groups.get_mut(group) else {
            return;
        };
        let head = entry.pending.first().copied();
        let want = match head {
            Some(seq) if entry.in_flight == 0 => messages
                .get(seq)
                .is_some_and(Record::is_visible)
                .then_some(seq),
            _ => None,
        };
        if want != entry.available_at {
            if let Some(old) = entry.available_at {
                self.available.remove(&(old, group.clone()));
            }
            if let Some(new) = want {
                self.available.insert((new, group.clone()));
            }
            entry.available_at = want;
        }
        if entry.pending.is_empty() && entry.in_flight == 0 {
            self.groups.remove(group);
        }
    }
}
