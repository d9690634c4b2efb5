//! A queue's complete state as plain data, for checkpoints: taken piece by piece from a live
//! queue and put back piece by piece into a new one, exactly (leases included), so that the
//! log records after a checkpoint replay onto the same state they were first applied to.

use std::sync::Arc;

use super::store::{Parts, Record};
use super::{Group, Queue, Ready, State};
use crate::attributes::MessageAttributes;
use crate::config::QueueConfig;
use crate::error::QueueError;
use crate::limits::QueueLimits;
use crate::message::{HistoryEvent, MessageId, MessageStatus, Notify, Seq};
use crate::name::QueueName;
use crate::queue::QueueStats;
use crate::time::Timestamp;

/// Everything about a queue except its messages, dedup window and archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueHeaderSnapshot {
    pub name: QueueName,
    pub config: QueueConfig,
    pub epoch: u64,
    pub next_seq: Seq,
    pub next_lease: u64,
    /// Totals; the counts (visible, in flight, delayed) are rebuilt from the messages.
    pub stats: QueueStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStateSnapshot {
    Delayed { until: Timestamp },
    Visible,
    InFlight { deadline: Timestamp, lease: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSnapshot {
    pub seq: Seq,
    pub id: MessageId,
    pub body: Arc<str>,
    pub attributes: MessageAttributes,
    pub group_id: Option<Arc<str>>,
    pub dedup_id: Option<Arc<str>>,
    pub notify: Option<Notify>,
    pub sent_at: Timestamp,
    pub state: MessageStateSnapshot,
    pub receive_count: u32,
    pub first_received_at: Option<Timestamp>,
    pub dead_letter_source: Option<QueueName>,
    pub history: Vec<HistoryEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupSnapshot {
    pub dedup_id: Arc<str>,
    pub id: MessageId,
    pub seq: Seq,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedSnapshot {
    pub id: MessageId,
    pub finished_at: Timestamp,
    pub status: MessageStatus,
    pub history: Vec<HistoryEvent>,
}

impl Queue {
    pub fn snapshot_header(&self) -> QueueHeaderSnapshot {
        QueueHeaderSnapshot {
            name: self.name.clone(),
            config: self.config.clone(),
            epoch: self.epoch,
            next_seq: self.next_seq,
            next_lease: self.next_lease,
            stats: self.stats,
        }
    }

    /// Hands every message to `each`, in sequence order.
    pub fn snapshot_messages(&self, mut each: impl FnMut(MessageSnapshot)) {
        for (seq, message) in self.messages.iter() {
            each(MessageSnapshot {
                seq,
                id: message.id,
                body: message.body.clone(),
                attributes: message.attributes().clone(),
                group_id: message.group_id().cloned(),
                dedup_id: message.dedup_id().cloned(),
                notify: message.notify().cloned(),
                sent_at: message.sent_at,
                state: match message.state() {
                    State::Delayed { until } => MessageStateSnapshot::Delayed { until },
                    State::Visible => MessageStateSnapshot::Visible,
                    State::InFlight { deadline, lease } => {
                        MessageStateSnapshot::InFlight { deadline, lease }
                    }
                },
                receive_count: message.receive_count,
                first_received_at: message.first_received_at(),
                dead_letter_source: message.dead_letter_source().cloned(),
                history: message.history(),
            });
        }
    }

    pub fn snapshot_dedup(&self, mut each: impl FnMut(DedupSnapshot)) {
        for (dedup_id, id, seq, expires_at) in self.dedup.iter() {
            each(DedupSnapshot {
                dedup_id: dedup_id.clone(),
                id,
                seq,
                expires_at,
            });
        }
    }

    pub fn snapshot_archive(&self, mut each: impl FnMut(ArchivedSnapshot)) {
        for (id, finished_at, status, history) in self.archived() {
            each(ArchivedSnapshot {
                id,
                finished_at,
                status,
                history: history.to_vec(),
            });
        }
    }

    /// The archive's records, oldest first, borrowed: [`Queue::snapshot_archive`] without a
    /// copy of each history, for checkpoints, which encode the records at once.
    pub fn archived(
        &self,
    ) -> impl Iterator<Item = (MessageId, Timestamp, MessageStatus, &[HistoryEvent])> + '_ {
        self.archive.iter()
    }

    /// An empty queue with the snapshot's identity and totals; add its parts with the
    /// `restore_*` methods.
    pub fn from_snapshot(
        header: QueueHeaderSnapshot,
        limits: QueueLimits,
    ) -> Result<Queue, QueueError> {
        let mut queue = Queue::new(header.name, header.config, limits, header.epoch)?;
        queue.next_seq = header.next_seq;
        queue.next_lease = header.next_lease;
        queue.stats = QueueStats {
            visible: 0,
            in_flight: 0,
            delayed: 0,
            oldest_age_ms: 0,
            ..header.stats
        };
        Ok(queue)
    }

    pub fn restore_message(&mut self, snapshot: MessageSnapshot) {
        let seq = snapshot.seq;
        let state = match snapshot.state {
            MessageStateSnapshot::Delayed { until } => State::Delayed { until },
            MessageStateSnapshot::Visible => State::Visible,
            MessageStateSnapshot::InFlight { deadline, lease } => {
                State::InFlight { deadline, lease }
            }
        };
        if self.messages.contains(seq) || self.messages.contains_id(snapshot.id) {
            return;
        }
        let group_id = match (self.config.fifo, snapshot.group_id) {
            (true, None) => Some(self.group_key("default")),
            (true, Some(group_id)) => Some(self.group_key(group_id)),
            (false, group_id) => group_id,
        };
        self.next_seq = self.next_seq.max(seq + 1);
        let message = Record::from_parts(
            Parts {
                id: snapshot.id,
                body: snapshot.body,
                attributes: snapshot.attributes,
                group_id,
                dedup_id: snapshot.dedup_id,
                notify: snapshot.notify,
                sent_at: snapshot.sent_at,
                receive_count: snapshot.receive_count,
                first_received_at: snapshot.first_received_at,
                dead_letter_source: snapshot.dead_letter_source,
                history: snapshot.history,
            },
            state,
        );
        self.live_bytes += super::message_bytes(&message.body, message.attributes());
        self.by_sent.insert(message.sent_at, seq);
        match state {
            State::Delayed { until } => {
                self.delayed.insert((until, seq));
            }
            State::Visible => self.n_visible += 1,
            State::InFlight { deadline, lease } => {
                self.leases.insert((deadline, seq));
                self.next_lease = self.next_lease.max(lease + 1);
            }
        }
        let group = message.group_id().cloned();
        self.messages.insert(seq, message);
        match &mut self.ready {
            Ready::Standard(ready) => {
                if state == State::Visible {
                    ready.insert(seq);
                }
            }
            Ready::Fifo(fifo) => {
                let group = group.expect("FIFO messages always have a group");
                let entry: &mut Group = fifo.groups.entry(group.clone()).or_default();
                if matches!(state, State::InFlight { .. }) {
                    entry.in_flight += 1;
                } else {
                    entry.pending.insert(seq);
                }
                fifo.refresh(&group, &self.messages);
            }
        }
    }

    pub fn restore_dedup(&mut self, snapshot: DedupSnapshot) {
        self.dedup.insert_until(
            snapshot.dedup_id,
            snapshot.id,
            snapshot.seq,
            snapshot.expires_at,
        );
    }

    pub fn restore_archived(&mut self, snapshot: ArchivedSnapshot) {
        self.archive.insert(
            snapshot.id,
            snapshot.status,
            snapshot.history,
            snapshot.finished_at,
            self.limits.status_records_max,
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::queue::SendEntry;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn copy(queue: &Queue) -> Queue {
        let mut restored =
            Queue::from_snapshot(queue.snapshot_header(), QueueLimits::default()).unwrap();
        let mut messages = Vec::new();
        queue.snapshot_messages(|m| messages.push(m));
        messages
            .into_iter()
            .for_each(|m| restored.restore_message(m));
        let mut dedup = Vec::new();
        queue.snapshot_dedup(|d| dedup.push(d));
        dedup.into_iter().for_each(|d| restored.restore_dedup(d));
        let mut archive = Vec::new();
        queue.snapshot_archive(|a| archive.push(a));
        archive
            .into_iter()
            .for_each(|a| restored.restore_archived(a));
        restored
    }

    /// Drives both queues through the same operations and compares every answer.
    fn assert_same_future(mut a: Queue, mut b: Queue, ids: &[MessageId]) {
        let now = at(10_000);
        assert_eq!(a.stats(now), b.stats(now));
        for id in ids {
            assert_eq!(a.status(*id), b.status(*id));
        }
        for step in 0..6u64 {
            let now = at(10_000 + step * 20_000);
            let got_a = a.receive(now, 3, Some(15_000)).unwrap();
            let got_b = b.receive(now, 3, Some(15_000)).unwrap();
            assert_eq!(got_a, got_b, "step {step}");
            if let Some(first) = got_a.first() {
                assert_eq!(a.ack(now, &first.receipt), b.ack(now, &first.receipt));
            }
            let dup = SendEntry {
                dedup_id: Some("d1".into()),
                ..SendEntry::new(MessageId::from_u128(99 + u128::from(step)), "x")
            };
            assert_eq!(a.send(now, vec![dup.clone()]), b.send(now, vec![dup]));
            assert_eq!(a.stats(now), b.stats(now));
        }
    }

    #[test]
    fn a_restored_queue_behaves_exactly_like_the_original() {
        for fifo in [false, true] {
            let name = QueueName::new(if fifo { "q.fifo" } else { "q" }).unwrap();
            let config = QueueConfig {
                fifo,
                content_based_dedup: fifo,
                ..QueueConfig::default()
            };
            let mut queue = Queue::new(name, config, QueueLimits::default(), 42).unwrap();
            let ids: Vec<MessageId> = (1..=8).map(MessageId::from_u128).collect();
            let entries = ids
                .iter()
                .enumerate()
                .map(|(i, id)| SendEntry {
                    group_id: Some(format!("g{}", i % 3)),
                    dedup_id: (i == 0).then(|| "d1".to_string()),
                    delay_ms: (i == 7).then_some(50_000),
                    ..SendEntry::new(*id, format!("body {i}"))
                })
                .collect();
            queue.send(at(0), entries).unwrap();
            let got = queue.receive(at(1), 3, None).unwrap();
            queue.ack(at(2), &got[0].receipt).unwrap();
            if let Some(second) = got.get(1) {
                queue.nack(at(3), &second.receipt, Some(5_000)).unwrap();
            }
            let restored = copy(&queue);
            assert_same_future(queue, restored, &ids);
        }
    }
}
