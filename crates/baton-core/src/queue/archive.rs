//! Status records of messages that have left the queue (acked, dead-lettered, expired,
//! purged), kept for `status_retention_ms` and at most `status_records_max` of them.

use std::collections::{HashMap, VecDeque};

use crate::limits::HISTORY_EVENTS_MAX;
use crate::message::{HistoryEvent, MessageId, MessageStatus, StatusRecord};
use crate::time::Timestamp;

/// Invariants: every insert gets the next `generation`; `by_finish` is in nondecreasing finish
/// time (a finish time earlier than the newest one, from a clock that stepped back, is raised
/// to it) and holds exactly one live entry `(finished_at, generation, id)` per record, the one
/// with the record's generation. It may also hold stale entries — of records removed or
/// archived again since — which are skipped when met and dropped when they outnumber the live
/// ones. So an ack archives in O(1) instead of keeping a
/// sorted tree (the archive was a tenth of the server's work per message in the end-to-end
/// benchmark).
#[derive(Debug, Default)]
pub(crate) struct Archive {
    records: HashMap<MessageId, Archived>,
    by_finish: VecDeque<Entry>,
    generation: u64,
}

#[derive(Debug)]
struct Archived {
    finished_at: Timestamp,
    generation: u64,
    status: MessageStatus,
    history: Vec<HistoryEvent>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    finished_at: Timestamp,
    generation: u64,
    id: MessageId,
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
        let finished_at = match self.by_finish.back() {
            Some(newest) if now < newest.finished_at => newest.finished_at,
            _ => now,
        };
        self.generation += 1;
        let generation = self.generation;
        // A record archived again replaces the old one, whose entry turns stale.
        self.records.insert(
            id,
            Archived {
                finished_at,
                generation,
                status,
                history,
            },
        );
        self.by_finish.push_back(Entry {
            finished_at,
            generation,
            id,
        });
        while self.records.len() > records_max as usize {
            if self.pop_oldest().is_none() {
                break;
            }
        }
        self.compact();
    }

    pub(crate) fn remove(&mut self, id: MessageId) {
        self.records.remove(&id);
        self.compact();
    }

    pub(crate) fn expire(&mut self, now: Timestamp, retention_ms: u64) {
        while let Some(oldest) = self.by_finish.front() {
            if now < oldest.finished_at.plus_ms(retention_ms) {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Whether the entry is the live one of its record.
    fn is_live(&self, entry: Entry) -> bool {
        matches!(self.records.get(&entry.id), Some(record) if record.generation == entry.generation)
    }

    /// Removes the oldest entry and, if it is live, its record; returns the entry.
    fn pop_oldest(&mut self) -> Option<Entry> {
        let entry = self.by_finish.pop_front()?;
        if self.is_live(entry) {
            self.records.remove(&entry.id);
        }
        Some(entry)
    }

    /// Drops stale entries once they are more than half of all entries (amortised O(1)).
    fn compact(&mut self) {
        if self.by_finish.len() > 2 * self.records.len() + 64 {
            let by_finish = std::mem::take(&mut self.by_finish);
            self.by_finish = by_finish
                .into_iter()
                .filter(|&entry| self.is_live(entry))
                .collect();
        }
    }

    pub(crate) fn get(&self, id: MessageId) -> Option<StatusRecord> {
        self.records.get(&id).map(|record| StatusRecord {
            id,
            status: record.status,
            history: record.history.clone(),
        })
    }

    /// Every record as `(id, finished_at, status, history)`, oldest first.
    pub(crate) fn iter(
        &self,
    ) -> impl Iterator<Item = (MessageId, Timestamp, MessageStatus, &[HistoryEvent])> {
        self.by_finish.iter().filter_map(|entry| {
            let record = self.records.get(&entry.id)?;
            (record.generation == entry.generation).then_some((
                entry.id,
                record.finished_at,
                record.status,
                record.history.as_slice(),
            ))
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
        let record = self.records.get_mut(&id)?;
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
        self.records.len()
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
    fn stale_entries_do_not_pile_up() {
        let mut archive = Archive::default();
        let id = MessageId::from_u128(7);
        for ms in 0..10_000 {
            archive.insert(id, MessageStatus::Completed, Vec::new(), at(ms), 100);
            archive.remove(id);
        }
        assert!(archive.by_finish.len() <= 2 * archive.records.len() + 65);
        assert_eq!(archive.len(), 0);
    }
}
