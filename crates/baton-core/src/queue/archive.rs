//! Status records of messages that have left the queue (acked, dead-lettered, expired,
//! purged), kept for `status_retention_ms` and at most `status_records_max` of them.

use std::collections::{HashMap, VecDeque};

use rustc_hash::FxBuildHasher;

use crate::limits::HISTORY_EVENTS_MAX;
use crate::message::{HistoryEvent, MessageId, MessageStatus, StatusRecord};
use crate::time::Timestamp;

/// Records live in `ring` in finish order, so archiving, dropping the oldest and walking them
/// all for a checkpoint touch memory in sequence; `index` finds a record by id (ids are the
/// server's random UUIDs, so a fast non-keyed hash spreads them well).
///
/// Invariants: the slot at position `p` of `ring` belongs to generation `front_generation + p`;
/// `index` maps the id of every live record to its generation, and a slot is `Some` exactly
/// when its record is live (a record removed or archived again leaves `None` behind, dropped
/// when it reaches the front or when such holes outnumber the live records). Finish times are
/// nondecreasing along `ring` (a finish time earlier than the newest one, from a clock that
/// stepped back, is raised to it). Every operation is O(1), amortised for compaction (the
/// archive was a tenth of the server's work per message in the end-to-end benchmark while it
/// was a sorted tree, and still the largest part of an ack while records sat in the hash map).
#[derive(Debug, Default)]
pub(crate) struct Archive {
    ring: VecDeque<Option<Archived>>,
    front_generation: u64,
    index: HashMap<MessageId, u64, FxBuildHasher>,
    newest_finished_at: Timestamp,
}

#[derive(Debug)]
struct Archived {
    id: MessageId,
    finished_at: Timestamp,
    status: MessageStatus,
    history: Vec<HistoryEvent>,
}

impl Archive {
    pub(crate) fn insert(
        &mut self,
        id: MessageId,
        status: MessageStatus,
        history: Vec<HistoryEvent>,
        now: Timestamp,
        records_max: u32,
    ) {
        if records_max == 0 {
            return;
        }
        let finished_at = now.max(self.newest_finished_at);
        self.newest_finished_at = finished_at;
        let generation = self.front_generation + self.ring.len() as u64;
        // A record archived again replaces the old one, whose slot turns into a hole.
        if let Some(old) = self.index.insert(id, generation) {
            self.clear_slot(old);
        }
        self.ring.push_back(Some(Archived {
            id,
            finished_at,
            status,
            history,
        }));
        while self.index.len() > records_max as usize && self.pop_oldest() {}
        self.compact();
    }

    pub(crate) fn remove(&mut self, id: MessageId) {
        if let Some(generation) = self.index.remove(&id) {
            self.clear_slot(generation);
            self.compact();
        }
    }

    pub(crate) fn expire(&mut self, now: Timestamp, retention_ms: u64) {
        while let Some(front) = self.ring.front() {
            if let Some(oldest) = front {
                if now < oldest.finished_at.plus_ms(retention_ms) {
                    break;
                }
            }
            self.pop_oldest();
        }
    }

    fn position(&self, generation: u64) -> Option<usize> {
        usize::try_from(generation.checked_sub(self.front_generation)?).ok()
    }

    fn slot(&self, id: MessageId) -> Option<&Archived> {
        let position = self.position(*self.index.get(&id)?)?;
        self.ring.get(position)?.as_ref()
    }

    fn slot_mut(&mut self, id: MessageId) -> Option<&mut Archived> {
        let position = self.position(*self.index.get(&id)?)?;
        self.ring.get_mut(position)?.as_mut()
    }

    fn clear_slot(&mut self, generation: u64) {
        if let Some(position) = self.position(generation) {
            if let Some(slot) = self.ring.get_mut(position) {
                *slot = None;
            }
        }
    }

    /// Removes the oldest slot and, if it holds a record, the record; false when empty.
    fn pop_oldest(&mut self) -> bool {
        let Some(slot) = self.ring.pop_front() else {
            return false;
        };
        self.front_generation += 1;
        if let Some(record) = slot {
            self.index.remove(&record.id);
        }
        true
    }

    /// Drops the holes once they are more than half of all slots (amortised O(1)).
    fn compact(&mut self) {
        if self.ring.len() <= 2 * self.index.len() + 64 {
            return;
        }
        let ring = std::mem::take(&mut self.ring);
        self.ring = ring.into_iter().flatten().map(Some).collect();
        for (position, record) in self.ring.iter().enumerate() {
            if let Some(record) = record {
                self.index
                    .insert(record.id, self.front_generation + position as u64);
            }
        }
    }

    pub(crate) fn get(&self, id: MessageId) -> Option<StatusRecord> {
        self.slot(id).map(|record| StatusRecord {
            id,
            status: record.status,
            history: record.history.clone(),
        })
    }

    /// Every record as `(id, finished_at, status, history)`, oldest first.
    pub(crate) fn iter(
        &self,
    ) -> impl Iterator<Item = (MessageId, Timestamp, MessageStatus, &[HistoryEvent])> {
        self.ring.iter().flatten().map(|record| {
            (
                record.id,
                record.finished_at,
                record.status,
                record.history.as_slice(),
            )
        })
    }

    /// Appends `event` to the history of finished message `id` and sets its status to what
    /// `status_of` derives from the history; the finish time (and so retention) is unchanged.
    /// `None` when no record of `id` is kept.
    pub(crate) fn append_event(
        &mut self,
        id: MessageId,
        event: HistoryEvent,
        status_of: impl FnOnce(&[HistoryEvent]) -> MessageStatus,
    ) -> Option<StatusRecord> {
        let record = self.slot_mut(id)?;
        let history = &mut record.history;
        if history.len() >= HISTORY_EVENTS_MAX && history.len() > 1 {
            // Keep `sent` (the first event) and the most recent ones, as live messages do.
            history.remove(1);
        }
        history.push(event);
        record.status = status_of(history);
        Some(StatusRecord {
            id,
            status: record.status,
            history: history.clone(),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn ids(archive: &Archive) -> Vec<(u128, u64)> {
        archive
            .iter()
            .map(|(id, finished_at, _, _)| (id.as_u128(), finished_at.as_millis()))
            .collect()
    }

    #[test]
    fn keeps_the_newest_records_in_finish_order() {
        let mut archive = Archive::default();
        for i in 0..5u64 {
            let id = MessageId::from_u128(u128::from(i));
            archive.insert(id, MessageStatus::Completed, Vec::new(), at(10 + i), 3);
        }
        assert_eq!(ids(&archive), vec![(2, 12), (3, 13), (4, 14)]);
        assert_eq!(archive.len(), 3);
        assert!(archive.get(MessageId::from_u128(1)).is_none());
    }

    #[test]
    fn archiving_again_moves_a_record_to_its_new_finish_time() {
        let mut archive = Archive::default();
        let (a, b) = (MessageId::from_u128(1), MessageId::from_u128(2));
        archive.insert(a, MessageStatus::Completed, Vec::new(), at(10), 10);
        archive.insert(b, MessageStatus::Completed, Vec::new(), at(11), 10);
        archive.insert(a, MessageStatus::DeadLettered, Vec::new(), at(12), 10);
        assert_eq!(ids(&archive), vec![(2, 11), (1, 12)]);
        // Removed and archived again within the same millisecond: still one record.
        archive.remove(a);
        archive.insert(a, MessageStatus::Completed, Vec::new(), at(12), 10);
        assert_eq!(ids(&archive), vec![(2, 11), (1, 12)]);
        // Expiry goes by finish time and skips what is stale.
        archive.expire(at(21), 10);
        assert_eq!(ids(&archive), vec![(1, 12)]);
        archive.expire(at(22), 10);
        assert!(ids(&archive).is_empty());
        assert_eq!(archive.len(), 0);
    }

    #[test]
    fn a_clock_that_steps_back_keeps_the_order() {
        let mut archive = Archive::default();
        archive.insert(
            MessageId::from_u128(1),
            MessageStatus::Completed,
            Vec::new(),
            at(50),
            10,
        );
        archive.insert(
            MessageId::from_u128(2),
            MessageStatus::Completed,
            Vec::new(),
            at(40),
            10,
        );
        assert_eq!(ids(&archive), vec![(1, 50), (2, 50)]);
    }

    #[test]
    fn compaction_keeps_order_and_lookups() {
        let mut archive = Archive::default();
        for i in 0..400u64 {
            let id = MessageId::from_u128(u128::from(i));
            archive.insert(id, MessageStatus::Completed, Vec::new(), at(i), 1_000);
        }
        // Remove three in four: the holes outnumber the records and get compacted away.
        for i in (0..400u64).filter(|i| i % 4 != 0) {
            archive.remove(MessageId::from_u128(u128::from(i)));
        }
        assert!(archive.ring.len() <= 2 * archive.index.len() + 65);
        let kept: Vec<(u128, u64)> = (0..400u64)
            .filter(|i| i % 4 == 0)
            .map(|i| (u128::from(i), i))
            .collect();
        assert_eq!(ids(&archive), kept);
        for i in 0..400u64 {
            let found = archive.get(MessageId::from_u128(u128::from(i)));
            assert_eq!(found.is_some(), i % 4 == 0, "id {i}");
        }
        // Archiving again after compaction still replaces, and the limit still drops the oldest.
        archive.insert(
            MessageId::from_u128(0),
            MessageStatus::DeadLettered,
            Vec::new(),
            at(500),
            100,
        );
        assert_eq!(archive.len(), 100);
        assert_eq!(ids(&archive).last(), Some(&(0, 500)));
        assert_eq!(ids(&archive).first(), Some(&(4, 4)));
        assert_eq!(
            archive.get(MessageId::from_u128(0)).map(|r| r.status),
            Some(MessageStatus::DeadLettered)
        );
    }

    #[test]
    fn stale_entries_do_not_pile_up() {
        let mut archive = Archive::default();
        let id = MessageId::from_u128(7);
        for ms in 0..10_000 {
            archive.insert(id, MessageStatus::Completed, Vec::new(), at(ms), 100);
            archive.remove(id);
        }
        assert!(archive.ring.len() <= 2 * archive.index.len() + 65);
        assert_eq!(archive.len(), 0);
    }
}
