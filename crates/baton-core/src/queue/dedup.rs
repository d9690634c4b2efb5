//! The deduplication window: a dedup id seen in the last `DEDUP_WINDOW_MS` maps to the message
//! it first produced, and a repeat returns that message instead of enqueueing a new one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::limits::DEDUP_WINDOW_MS;
use crate::message::{MessageId, Seq};
use crate::time::Timestamp;

#[derive(Debug, Default)]
pub(crate) struct DedupWindow {
    entries: HashMap<Arc<str>, (MessageId, Seq, Timestamp)>,
    by_expiry: BTreeSet<(Timestamp, Arc<str>)>,
}

impl DedupWindow {
    pub(crate) fn get(&self, dedup_id: &str) -> Option<(MessageId, Seq)> {
        self.entries.get(dedup_id).map(|(id, seq, _)| (*id, *seq))
    }

    pub(crate) fn insert(&mut self, dedup_id: Arc<str>, id: MessageId, seq: Seq, now: Timestamp) {
        self.insert_until(dedup_id, id, seq, now.plus_ms(DEDUP_WINDOW_MS));
    }

    pub(crate) fn insert_until(
        &mut self,
        dedup_id: Arc<str>,
        id: MessageId,
        seq: Seq,
        expires_at: Timestamp,
    ) {
        if let Some((_, _, old_expiry)) =
            self.entries.insert(dedup_id.clone(), (id, seq, expires_at))
        {
            self.by_expiry.remove(&(old_expiry, dedup_id.clone()));
        }
        self.by_expiry.insert((expires_at, dedup_id));
    }

    /// Every entry as `(dedup_id, id, seq, expires_at)`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Arc<str>, MessageId, Seq, Timestamp)> {
        self.entries
            .iter()
            .map(|(dedup_id, (id, seq, expires_at))| (dedup_id, *id, *seq, *expires_at))
    }

    pub(crate) fn expire(&mut self, now: Timestamp) {
        while let Some((expires_at, _)) = self.by_expiry.first() {
            if now < *expires_at {
                break;
            }
            if let Some((_, dedup_id)) = self.by_expiry.pop_first() {
                self.entries.remove(&dedup_id);
            }
        }
    }
}
