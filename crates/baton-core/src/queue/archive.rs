//! Status records of messages that have left the queue (acked, dead-lettered, expired,
//! purged), kept for `status_retention_ms` and at most `status_records_max` of them.

use std::collections::{BTreeSet, HashMap};

use crate::limits::HISTORY_EVENTS_MAX;
use crate::message::{HistoryEvent, MessageId, MessageStatus, StatusRecord};
use crate::time::Timestamp;

#[derive(Debug, Default)]
pub(crate) struct Archive {
    records: HashMap<MessageId, (Timestamp, MessageStatus, Vec<HistoryEvent>)>,
    by_finish: BTreeSet<(Timestamp, MessageId)>,
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
        self.remove(id);
        self.records.insert(id, (now, status, history));
        self.by_finish.insert((now, id));
        while self.records.len() > records_max as usize {
            let Some((_, oldest)) = self.by_finish.pop_first() else {
                break;
            };
            self.records.remove(&oldest);
        }
    }

    pub(crate) fn remove(&mut self, id: MessageId) {
        if let Some((finished_at, _, _)) = self.records.remove(&id) {
            self.by_finish.remove(&(finished_at, id));
        }
    }

    pub(crate) fn expire(&mut self, now: Timestamp, retention_ms: u64) {
        while let Some(&(finished_at, id)) = self.by_finish.first() {
            if now < finished_at.plus_ms(retention_ms) {
                break;
            }
            self.by_finish.pop_first();
            self.records.remove(&id);
        }
    }

    pub(crate) fn get(&self, id: MessageId) -> Option<StatusRecord> {
        self.records
            .get(&id)
            .map(|(_, status, history)| StatusRecord {
                id,
                status: *status,
                history: history.clone(),
            })
    }

    /// Every record as `(id, finished_at, status, history)`, oldest first.
    pub(crate) fn iter(
        &self,
    ) -> impl Iterator<Item = (MessageId, Timestamp, MessageStatus, &[HistoryEvent])> {
        self.by_finish.iter().filter_map(|(finished_at, id)| {
            let (_, status, history) = self.records.get(id)?;
            Some((*id, *finished_at, *status, history.as_slice()))
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
        let (_, status, history) = self.records.get_mut(&id)?;
        if history.len() >= HISTORY_EVENTS_MAX && history.len() > 1 {
            // Keep `sent` (the first event) and the most recent ones, as live messages do.
            history.remove(1);
        }
        history.push(event);
        *status = status_of(history);
        Some(StatusRecord {
            id,
            status: *status,
            history: history.clone(),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }
}
