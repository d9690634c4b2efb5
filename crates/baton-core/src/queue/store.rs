//! Where a queue keeps its live messages, compactly.
//!
//! A queue may hold millions of messages, so what each one costs beyond its body matters. A
//! message is a 64-byte `Record` in a slab (a `Vec` whose freed slots are reused), found by
//! sequence through `SeqIndex` and by id through `IdIndex`:
//!
//! - Fields that most messages lack (attributes, group and dedup ids, notify, dead-letter
//!   source, the lease and first receive, history beyond `sent`) live in one boxed `Extras`,
//!   allocated the first time a message needs any of them.
//! - A message sent to this queue starts its history with `sent` at `sent_at`; that event is
//!   implied rather than stored. A history that starts otherwise (a redriven message keeps the
//!   `sent` of its first queue) is stored whole.
//! - `SeqIndex` is an array of slot numbers (4 bytes) indexed by sequence from the oldest live
//!   one, since sequences are issued densely; messages left far behind by the ones that
//!   followed them move to a hash map, so the array stays at least half full (beyond a fixed
//!   slack).
//! - `IdIndex` keys 8-byte entries by a 32-bit fold of the id and confirms a match against the
//!   record; ids whose fold is taken by another live id go to a second, full-keyed map.
//!
//! Every operation is O(1), amortised where the array sheds positions. When the store
//! empties, a large one gives its memory back.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::State;
use crate::attributes::MessageAttributes;
use crate::limits::HISTORY_EVENTS_MAX;
use crate::message::{HistoryEvent, HistoryEventKind, MessageId, Notify, Seq};
use crate::name::QueueName;
use crate::time::Timestamp;

/// A message with every field spelled out, as it enters (`Record::from_parts`) or leaves
/// (`Record::into_parts`) the store.
#[derive(Debug)]
pub(super) struct Parts {
    pub(super) id: MessageId,
    pub(super) body: Arc<str>,
    pub(super) attributes: MessageAttributes,
    pub(super) group_id: Option<Arc<str>>,
    pub(super) dedup_id: Option<Arc<str>>,
    pub(super) notify: Option<Notify>,
    pub(super) sent_at: Timestamp,
    pub(super) receive_count: u32,
    pub(super) first_received_at: Option<Timestamp>,
    pub(super) dead_letter_source: Option<QueueName>,
    pub(super) history: Vec<HistoryEvent>,
}

/// One live message.
#[derive(Debug)]
pub(super) struct Record {
    pub(super) id: MessageId,
    pub(super) body: Arc<str>,
    pub(super) sent_at: Timestamp,
    /// `until` when delayed, `deadline` when in flight; unused when visible.
    at: Timestamp,
    extras: Option<Box<Extras>>,
    pub(super) receive_count: u32,
    kind: StateKind,
}

// The point of `Record`: keep it at 64 bytes.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Record>() == 64);
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Option<Record>>() == 64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateKind {
    Visible,
    Delayed,
    InFlight,
}

/// What a record holds when any of it differs from the default.
#[derive(Debug, Default)]
struct Extras {
    attributes: MessageAttributes,
    group_id: Option<Arc<str>>,
    dedup_id: Option<Arc<str>>,
    notify: Option<Box<Notify>>,
    dead_letter_source: Option<QueueName>,
    first_received_at: Option<Timestamp>,
    /// The current lease, while in flight.
    lease: u64,
    /// The events after the implied `sent`, or the whole history when `history_whole`.
    history: Vec<HistoryEvent>,
    history_whole: bool,
}

static NO_ATTRIBUTES: MessageAttributes = MessageAttributes::EMPTY;

/// The event every message sent to this queue starts its history with.
fn sent_event(at: Timestamp) -> HistoryEvent {
    HistoryEvent {
        kind: HistoryEventKind::Sent,
        at,
        receive_count: 0,
        detail: None,
    }
}

impl Record {
    /// A message just sent: visible, never received, its history the one `sent` event.
    pub(super) fn sent(
        id: MessageId,
        body: Arc<str>,
        sent_at: Timestamp,
        attributes: MessageAttributes,
        group_id: Option<Arc<str>>,
        dedup_id: Option<Arc<str>>,
        notify: Option<Notify>,
    ) -> Record {
        let mut record = Record {
            id,
            body,
            sent_at,
            at: Timestamp::ZERO,
            extras: None,
            receive_count: 0,
            kind: StateKind::Visible,
        };
        if !attributes.is_empty() {
            record.extras_mut().attributes = attributes;
        }
        if group_id.is_some() {
            record.extras_mut().group_id = group_id;
        }
        if dedup_id.is_some() {
            record.extras_mut().dedup_id = dedup_id;
        }
        if let Some(notify) = notify {
            record.extras_mut().notify = Some(Box::new(notify));
        }
        record
    }

    pub(super) fn from_parts(parts: Parts, state: State) -> Record {
        let mut record = Record::sent(
            parts.id,
            parts.body,
            parts.sent_at,
            parts.attributes,
            parts.group_id,
            parts.dedup_id,
            parts.notify,
        );
        record.receive_count = parts.receive_count;
        if parts.first_received_at.is_some() {
            record.extras_mut().first_received_at = parts.first_received_at;
        }
        if parts.dead_letter_source.is_some() {
            record.extras_mut().dead_letter_source = parts.dead_letter_source;
        }
        record.set_history(parts.history);
        record.set_state(state);
        record
    }

    pub(super) fn into_parts(self) -> Parts {
        let Record {
            id,
            body,
            sent_at,
            receive_count,
            extras,
            ..
        } = self;
        let extras = extras.map(|extras| *extras).unwrap_or_default();
        let mut history = extras.history;
        if !extras.history_whole {
            history.insert(0, sent_event(sent_at));
        }
        Parts {
            id,
            body,
            attributes: extras.attributes,
            group_id: extras.group_id,
            dedup_id: extras.dedup_id,
            notify: extras.notify.map(|notify| *notify),
            sent_at,
            receive_count,
            first_received_at: extras.first_received_at,
            dead_letter_source: extras.dead_letter_source,
            history,
        }
    }

    fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    pub(super) fn state(&self) -> State {
        match self.kind {
            StateKind::Visible => State::Visible,
            StateKind::Delayed => State::Delayed { until: self.at },
            StateKind::InFlight => State::InFlight {
                deadline: self.at,
                lease: self.extras.as_ref().map_or(0, |extras| extras.lease),
            },
        }
    }

    pub(super) fn set_state(&mut self, state: State) {
        match state {
            State::Visible => self.kind = StateKind::Visible,
            State::Delayed { until } => {
                self.kind = StateKind::Delayed;
                self.at = until;
            }
            State::InFlight { deadline, lease } => {
                self.kind = StateKind::InFlight;
                self.at = deadline;
                self.extras_mut().lease = lease;
            }
        }
    }

    pub(super) fn is_visible(&self) -> bool {
        self.kind == StateKind::Visible
    }

    pub(super) fn is_in_flight(&self) -> bool {
        self.kind == StateKind::InFlight
    }

    pub(super) fn attributes(&self) -> &MessageAttributes {
        self.extras
            .as_ref()
            .map_or(&NO_ATTRIBUTES, |extras| &extras.attributes)
    }

    pub(super) fn group_id(&self) -> Option<&Arc<str>> {
        self.extras.as_ref()?.group_id.as_ref()
    }

    pub(super) fn dedup_id(&self) -> Option<&Arc<str>> {
        self.extras.as_ref()?.dedup_id.as_ref()
    }

    pub(super) fn notify(&self) -> Option<&Notify> {
        self.extras.as_ref()?.notify.as_deref()
    }

    pub(super) fn dead_letter_source(&self) -> Option<&QueueName> {
        self.extras.as_ref()?.dead_letter_source.as_ref()
    }

    pub(super) fn first_received_at(&self) -> Option<Timestamp> {
        self.extras.as_ref()?.first_received_at
    }

    /// Records a receive at `now` as the first unless there was one; returns the first.
    pub(super) fn note_receive(&mut self, now: Timestamp) -> Timestamp {
        *self.extras_mut().first_received_at.get_or_insert(now)
    }

    /// The whole history, `sent` first.
    pub(super) fn history(&self) -> Vec<HistoryEvent> {
        match &self.extras {
            None => vec![sent_event(self.sent_at)],
            Some(extras) if extras.history_whole => extras.history.clone(),
            Some(extras) => {
                let mut history = Vec::with_capacity(1 + extras.history.len());
                history.push(sent_event(self.sent_at));
                history.extend_from_slice(&extras.history);
                history
            }
        }
    }

    /// Appends `event`; beyond `HISTORY_EVENTS_MAX` events the oldest after the first go.
    pub(super) fn push_history(&mut self, event: HistoryEvent) {
        let extras = self.extras_mut();
        let n_implied = usize::from(!extras.history_whole);
        if n_implied + extras.history.len() >= HISTORY_EVENTS_MAX {
            // Keep `sent` (index 0 of the whole history) and the most recent events.
            extras.history.remove(1 - n_implied);
        }
        extras.history.push(event);
    }

    /// Replaces the whole history, storing `sent` at `sent_at` as implied when it comes first.
    fn set_history(&mut self, mut history: Vec<HistoryEvent>) {
        let whole = history.first() != Some(&sent_event(self.sent_at));
        if !whole {
            history.remove(0);
        }
        if !whole && history.is_empty() {
            if let Some(extras) = &mut self.extras {
                extras.history = Vec::new();
                extras.history_whole = false;
            }
            return;
        }
        let extras = self.extras_mut();
        extras.history = history;
        extras.history_whole = whole;
    }
}

/// Live messages by sequence and by id.
#[derive(Debug, Default)]
pub(super) struct Store {
    slots: Vec<Option<Record>>,
    free: Vec<u32>,
    by_seq: SeqIndex,
    by_id: IdIndex,
    len: usize,
}

impl Store {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn contains(&self, seq: Seq) -> bool {
        self.by_seq.get(seq).is_some()
    }

    pub(super) fn get(&self, seq: Seq) -> Option<&Record> {
        let slot = self.by_seq.get(seq)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    pub(super) fn get_mut(&mut self, seq: Seq) -> Option<&mut Record> {
        let slot = self.by_seq.get(seq)?;
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// The live message with id `id`. When several share it (only a caller's error can make
    /// that happen), the one inserted last, as long as it is live.
    pub(super) fn get_by_id(&self, id: MessageId) -> Option<&Record> {
        let slot = self.by_id.get(id, &self.slots)?;
        record_at(&self.slots, slot)
    }

    pub(super) fn contains_id(&self, id: MessageId) -> bool {
        self.by_id.get(id, &self.slots).is_some()
    }

    /// How many ids the id index holds (as many as messages when ids are unique).
    #[cfg(test)]
    pub(super) fn n_ids(&self) -> usize {
        self.by_id.len()
    }

    /// Adds `record` as message `seq`, which must not be live. An id that is already live
    /// now names this message, as in a map.
    pub(super) fn insert(&mut self, seq: Seq, record: Record) {
        assert!(!self.contains(seq), "sequence {seq} is live already");
        let id = record.id;
        let slot = match self.free.pop() {
            Some(slot) => {
                let place = self
                    .slots
                    .get_mut(slot as usize)
                    .expect("free slots are in the slab");
                debug_assert!(place.is_none());
                *place = Some(record);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|slot| *slot != NO_SLOT)
                    .expect("fewer than 2^32 - 1 live messages per queue");
                self.slots.push(Some(record));
                slot
            }
        };
        self.by_seq.insert(seq, slot);
        self.by_id.insert(id, slot, &self.slots);
        self.len += 1;
    }

    /// Removes message `seq`; its id no longer names a message (as in a map).
    pub(super) fn remove(&mut self, seq: Seq) -> Option<Record> {
        let slot = self.by_seq.remove(seq)?;
        let id = record_at(&self.slots, slot)
            .expect("indexed slots hold records")
            .id;
        self.by_id.remove(id, &self.slots);
        let record = self
            .slots
            .get_mut(slot as usize)
            .and_then(Option::take)
            .expect("indexed slots hold records");
        self.free.push(slot);
        self.len -= 1;
        if self.len == 0 {
            // Start the slab over; a large store gives its memory back.
            if self.slots.capacity() > EMPTY_CAPACITY_KEPT {
                *self = Store::default();
            } else {
                self.slots.clear();
                self.free.clear();
            }
        }
        Some(record)
    }

    /// Every live sequence, in order.
    pub(super) fn seqs(&self) -> Vec<Seq> {
        self.by_seq.iter().map(|(seq, _)| seq).collect()
    }

    /// Every live message with its sequence, in sequence order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Seq, &Record)> + '_ {
        self.by_seq.iter().map(|(seq, slot)| {
            let record = record_at(&self.slots, slot).expect("indexed slots hold records");
            (seq, record)
        })
    }
}

impl Store {
    /// Live messages with a sequence above `after`, in sequence order. Starts at `after` in
    /// the dense part, so a page costs what it returns (plus the few sparse stragglers).
    pub(super) fn iter_after(&self, after: Seq) -> impl Iterator<Item = (Seq, &Record)> + '_ {
        self.by_seq.iter_after(after).map(|(seq, slot)| {
            let record = record_at(&self.slots, slot).expect("indexed slots hold records");
            (seq, record)
        })
    }
}

/// Messages' worth of capacity a store keeps when it empties.
const EMPTY_CAPACITY_KEPT: usize = 4096;

/// Never a slot: marks an empty position in `SeqIndex::dense`.
const NO_SLOT: u32 = u32::MAX;

fn record_at(slots: &[Option<Record>], slot: u32) -> Option<&Record> {
    slots.get(slot as usize)?.as_ref()
}

/// How many empty positions `SeqIndex::dense` may have beyond as many as it has messages.
const DENSE_SLACK: usize = 1024;
/// The longest run of missing sequences filled with empty positions when a later one arrives;
/// a longer gap (only restoring a snapshot makes any) starts the dense part afresh.
const DENSE_GAP_MAX: u64 = 64;

/// Sequence → slot. Sequences at or after `base` are positions in `dense`; the few live ones
/// before it (left behind while later messages came and went) are in `sparse`.
#[derive(Debug, Default)]
struct SeqIndex {
    base: Seq,
    dense: VecDeque<u32>,
    /// Positions in `dense` that hold a slot.
    n_dense: usize,
    sparse: HashMap<Seq, u32>,
}

impl SeqIndex {
    fn get(&self, seq: Seq) -> Option<u32> {
        if seq < self.base {
            return self.sparse.get(&seq).copied();
        }
        let position = usize::try_from(seq - self.base).ok()?;
        self.dense
            .get(position)
            .copied()
            .filter(|slot| *slot != NO_SLOT)
    }

    fn insert(&mut self, seq: Seq, slot: u32) {
        debug_assert_ne!(slot, NO_SLOT);
        if seq < self.base {
            self.sparse.insert(seq, slot);
            return;
        }
        if self.dense.is_empty() {
            self.base = seq;
        }
        let end = self.base + self.dense.len() as u64;
        if seq < end {
            let position = (seq - self.base) as usize;
            let place = self.dense.get_mut(position).expect("inside dense");
            debug_assert_eq!(*place, NO_SLOT);
            *place = slot;
        } else {
            if seq - end > DENSE_GAP_MAX {
                self.spill_all();
                self.base = seq;
            } else {
                let gap = (seq - end) as usize;
                self.dense.extend(std::iter::repeat_n(NO_SLOT, gap));
            }
            self.dense.push_back(slot);
        }
        self.n_dense += 1;
        self.rebalance();
    }

    fn remove(&mut self, seq: Seq) -> Option<u32> {
        if seq < self.base {
            return self.sparse.remove(&seq);
        }
        let position = usize::try_from(seq - self.base).ok()?;
        let place = self.dense.get_mut(position)?;
        if *place == NO_SLOT {
            return None;
        }
        let slot = std::mem::replace(place, NO_SLOT);
        self.n_dense -= 1;
        self.rebalance();
        Some(slot)
    }

    /// Drops empty positions at the front, then, while fewer than half the positions hold a
    /// slot, moves the oldest to `sparse`. Each position is pushed and popped once, so this is
    /// amortised O(1) per operation.
    fn rebalance(&mut self) {
        while self.dense.front() == Some(&NO_SLOT) {
            self.dense.pop_front();
            self.base += 1;
        }
        while self.dense.len() > 2 * self.n_dense + DENSE_SLACK {
            let Some(slot) = self.dense.pop_front() else {
                break;
            };
            if slot != NO_SLOT {
                self.sparse.insert(self.base, slot);
                self.n_dense -= 1;
            }
            self.base += 1;
        }
    }

    /// Moves every slot of `dense` to `sparse` and empties it; the caller sets a new `base`
    /// after all of them.
    fn spill_all(&mut self) {
        for (position, slot) in self.dense.drain(..).enumerate() {
            if slot != NO_SLOT {
                self.sparse.insert(self.base + position as u64, slot);
            }
        }
        self.n_dense = 0;
    }

    /// Every `(seq, slot)`, in sequence order.
    fn iter(&self) -> impl Iterator<Item = (Seq, u32)> + '_ {
        let mut sparse: Vec<(Seq, u32)> = self
            .sparse
            .iter()
            .map(|(seq, slot)| (*seq, *slot))
            .collect();
        sparse.sort_unstable();
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter(|(_, slot)| **slot != NO_SLOT)
            .map(|(position, slot)| (self.base + position as u64, *slot));
        sparse.into_iter().chain(dense)
    }
}

impl SeqIndex {
    /// Every `(seq, slot)` with `seq > after`, in sequence order.
    fn iter_after(&self, after: Seq) -> impl Iterator<Item = (Seq, u32)> + '_ {
        let mut sparse: Vec<(Seq, u32)> = self
            .sparse
            .iter()
            .filter(|(seq, _)| **seq > after)
            .map(|(seq, slot)| (*seq, *slot))
            .collect();
        sparse.sort_unstable();
        let skip = usize::try_from(after.saturating_add(1).saturating_sub(self.base))
            .unwrap_or(usize::MAX);
        let base = self.base;
        let dense = self
            .dense
            .iter()
            .enumerate()
            .skip(skip)
            .filter(|(_, slot)| **slot != NO_SLOT)
            .map(move |(position, slot)| (base + position as u64, *slot));
        sparse.into_iter().chain(dense)
    }
}

/// Message id → slot.
#[derive(Debug, Default)]
struct IdIndex {
    /// Keyed by `fold(id)`; an entry names its id only if that slot's record has the id.
    /// Folds of random ids need no keyed hash; ids chosen to collide only land in `collided`.
    by_fold: HashMap<u32, u32, rustc_hash::FxBuildHasher>,
    /// Ids whose fold another live id held when they were inserted.
    collided: HashMap<MessageId, u32>,
}

/// A 32-bit digest of an id. Ids are random, so folds are spread; ids chosen to collide only
/// land in `collided`, a map like any other.
fn fold(id: MessageId) -> u32 {
    let id = id.as_u128();
    let half = (id as u64) ^ ((id >> 64) as u64);
    (half as u32) ^ ((half >> 32) as u32)
}

impl IdIndex {
    fn get(&self, id: MessageId, slots: &[Option<Record>]) -> Option<u32> {
        if let Some(&slot) = self.by_fold.get(&fold(id)) {
            if record_at(slots, slot).is_some_and(|record| record.id == id) {
                return Some(slot);
            }
        }
        self.collided.get(&id).copied()
    }

    /// Points `id` at `slot`, whose record has that id.
    fn insert(&mut self, id: MessageId, slot: u32, slots: &[Option<Record>]) {
        match self.by_fold.entry(fold(id)) {
            Entry::Occupied(mut entry) => {
                if record_at(slots, *entry.get()).is_some_and(|record| record.id == id) {
                    entry.insert(slot);
                } else {
                    self.collided.insert(id, slot);
                }
            }
            Entry::Vacant(entry) => match self.collided.get_mut(&id) {
                Some(place) => *place = slot,
                None => {
                    entry.insert(slot);
                }
            },
        }
    }

    /// Forgets `id`. Call while the record it names is still in `slots`.
    fn remove(&mut self, id: MessageId, slots: &[Option<Record>]) {
        if let Entry::Occupied(entry) = self.by_fold.entry(fold(id)) {
            if record_at(slots, *entry.get()).is_some_and(|record| record.id == id) {
                entry.remove();
                return;
            }
        }
        self.collided.remove(&id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_fold.len() + self.collided.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn record(id: u128) -> Record {
        Record::sent(
            MessageId::from_u128(id),
            Arc::from("x"),
            Timestamp::from_millis(5),
            MessageAttributes::default(),
            None,
            None,
            None,
        )
    }

    /// The store against a plain map, through inserts and removes in the given order.
    fn check_against_map(ops: &[(bool, Seq)]) {
        let mut store = Store::default();
        let mut model: std::collections::BTreeMap<Seq, u128> = Default::default();
        for &(insert, seq) in ops {
            let id = u128::from(seq) * 7 + 1;
            if insert {
                if model.contains_key(&seq) {
                    continue;
                }
                store.insert(seq, record(id));
                model.insert(seq, id);
            } else {
                let removed = store.remove(seq).map(|r| r.id.as_u128());
                assert_eq!(removed, model.remove(&seq), "remove {seq}");
            }
            assert_eq!(store.len(), model.len());
            let got: Vec<(Seq, u128)> = store.iter().map(|(s, r)| (s, r.id.as_u128())).collect();
            let want: Vec<(Seq, u128)> = model.iter().map(|(s, id)| (*s, *id)).collect();
            assert_eq!(got, want);
            for (&seq, &id) in &model {
                assert_eq!(store.get(seq).unwrap().id.as_u128(), id);
                assert!(store.contains_id(MessageId::from_u128(id)));
            }
            assert_eq!(store.n_ids(), model.len());
            let index = &store.by_seq;
            assert!(index.sparse.keys().all(|seq| *seq < index.base));
            assert!(index.dense.len() <= 2 * index.n_dense + DENSE_SLACK + 1);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        /// Mostly new sequences at the end, some gaps and some restored out of order, removed
        /// in any order: the store answers as a map does.
        #[test]
        fn the_store_behaves_as_a_map(
            ops in proptest::collection::vec((0u8..10, 0u64..3000), 1..1500)
        ) {
            let mut next: Seq = 1;
            let ops: Vec<(bool, Seq)> = ops
                .into_iter()
                .map(|(kind, n)| match kind {
                    0..=3 => {
                        next += 1;
                        (true, next)
                    }
                    4 => {
                        next += 1 + n % 200;
                        (true, next)
                    }
                    5 => (true, n),
                    _ => (false, n.min(next)),
                })
                .collect();
            check_against_map(&ops);
        }
    }

    #[test]
    fn messages_left_far_behind_move_out_of_the_dense_part() {
        let mut ops: Vec<(bool, Seq)> = (1..=5000).map(|seq| (true, seq)).collect();
        // Keep every 100th, drop the rest: the dense part must shed the stragglers.
        ops.extend(
            (1..=5000)
                .filter(|seq| seq % 100 != 0)
                .map(|seq| (false, seq)),
        );
        ops.extend((5001..=5100).map(|seq| (true, seq)));
        ops.extend((1..=5100).rev().map(|seq| (false, seq)));
        check_against_map(&ops);
    }

    #[test]
    fn out_of_order_and_gapped_sequences_are_found() {
        let mut ops = vec![(true, 10), (true, 3), (true, 11), (true, 80), (true, 81)];
        ops.extend([(true, 1_000_000), (true, 5), (true, 1_000_002), (true, 79)]);
        ops.extend([
            (false, 3),
            (true, 4),
            (false, 80),
            (false, 10),
            (false, 1_000_000),
        ]);
        ops.extend([(true, u64::MAX - 1), (false, 11), (false, 5), (false, 79)]);
        check_against_map(&ops);
    }

    #[test]
    fn ids_whose_folds_collide_are_told_apart() {
        // Folds to the same 32 bits: the two halves cancel.
        let a = 0x0000_0001_0000_0002_u128;
        let b = a << 64;
        let c = 0x0000_0002_0000_0001_u128;
        assert_eq!(fold(MessageId::from_u128(a)), fold(MessageId::from_u128(b)));
        assert_eq!(fold(MessageId::from_u128(a)), fold(MessageId::from_u128(c)));
        let mut store = Store::default();
        store.insert(1, record(a));
        store.insert(2, record(b));
        store.insert(3, record(c));
        for (seq, id) in [(1, a), (2, b), (3, c)] {
            assert_eq!(
                store.get(seq).unwrap().id,
                store.get_by_id(MessageId::from_u128(id)).unwrap().id
            );
        }
        store.remove(1);
        assert!(!store.contains_id(MessageId::from_u128(a)));
        assert!(store.contains_id(MessageId::from_u128(b)));
        assert!(store.contains_id(MessageId::from_u128(c)));
        store.insert(4, record(a));
        store.remove(3);
        assert!(store.contains_id(MessageId::from_u128(a)));
        assert!(store.contains_id(MessageId::from_u128(b)));
        assert!(!store.contains_id(MessageId::from_u128(c)));
        assert_eq!(store.n_ids(), 2);
    }

    #[test]
    fn a_repeated_id_names_the_latest_until_either_leaves() {
        let mut store = Store::default();
        store.insert(1, record(9));
        store.insert(2, record(9));
        let id = MessageId::from_u128(9);
        assert_eq!(store.n_ids(), 1);
        assert!(std::ptr::eq(
            store.get_by_id(id).unwrap(),
            store.get(2).unwrap()
        ));
        store.remove(1);
        assert!(
            !store.contains_id(id),
            "as a map: removing the id forgets it"
        );
        assert!(store.get(2).is_some());
    }

    #[test]
    fn history_keeps_sent_implied_and_the_cap() {
        let mut r = record(1);
        assert_eq!(r.history(), vec![sent_event(Timestamp::from_millis(5))]);
        for i in 0..100u32 {
            r.push_history(HistoryEvent {
                kind: HistoryEventKind::Received,
                at: Timestamp::from_millis(u64::from(i)),
                receive_count: i,
                detail: None,
            });
        }
        let history = r.history();
        assert_eq!(history.len(), HISTORY_EVENTS_MAX);
        assert_eq!(history[0].kind, HistoryEventKind::Sent);
        assert_eq!(history[1].receive_count, 100 - 63);
        assert_eq!(r.into_parts().history, history);
    }
}
