//! Rebuilding the queues from a checkpoint and the log.
//!
//! # Which records apply
//! A checkpoint starts at `start_lsn` and snapshots each queue under its lock at `covered_lsn`
//! (≥ `start_lsn`). Because every record of a queue is submitted under that queue's lock, the
//! snapshot reflects exactly the queue's records up to `covered_lsn`. So a record of queue `q`
//! applies when its LSN is above `q`'s `covered_lsn`, or above `start_lsn` for queues that are
//! not in the checkpoint.
//!
//! # Moves between queues
//! A move is two records: the source's operation (which dead-letters, or `TakeForMove`) and,
//! later, `AcceptMoved` in the destination. Replaying the source's operation puts the message in
//! `pending`; its `AcceptMoved` record takes it out again (whether that record applies or is
//! covered by the destination's snapshot). Whatever is still pending at the end was cut off by a
//! crash between the two records: the engine delivers it after recovery, so no move loses a
//! message.

use std::collections::BTreeMap;

use baton_core::{
    HistoryEventKind, MessageId, MovedMessage, Queue, QueueHeaderSnapshot, QueueLimits, QueueName,
    ReceiptHandle, Timestamp,
};
use baton_storage::records::{
    self, CheckpointPart, QueueOp, ReceiptV1, KIND_CHECKPOINT, KIND_QUEUE_OP,
};

use super::codec::{self, DecodeResult};
use crate::QueueMeta;

#[derive(Default)]
pub(crate) struct ReplayState {
    pub queues: BTreeMap<QueueName, Queue>,
    pub metas: BTreeMap<QueueName, QueueMeta>,
    covered: BTreeMap<QueueName, u64>,
    start_lsn: u64,
    /// Moves whose arrival record has not been seen: id → (destination, message).
    pub pending: BTreeMap<MessageId, (QueueName, MovedMessage)>,
    limits: QueueLimits,
    /// Topics and their subscriptions (see `topics`).
    pub topics: super::topics::TopicReplay,
    /// Completions of messages with `notify` whose ack or dead-letter arrival was replayed
    /// (so after the checkpoint): the server re-creates the callback jobs a crash cut off.
    pub completions: Vec<crate::Completion>,
    /// The lock table (see `locks`).
    pub locks: super::locks::LockReplay,
    /// The schedule table (see `schedules`).
    pub schedules: super::schedules::ScheduleReplay,
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

impl ReplayState {
    pub fn new(limits: QueueLimits) -> Self {
        ReplayState {
            limits,
            ..ReplayState::default()
        }
    }

    /// Applies one checkpoint frame.
    pub fn apply_checkpoint(&mut self, kind: u8, payload: &[u8]) -> DecodeResult<()> {
        if kind == baton_storage::topic_records::KIND_TOPIC_CHECKPOINT {
            return super::topics::apply_checkpoint(self, payload);
        }
        if kind == baton_storage::lock_records::KIND_LOCK_CHECKPOINT {
            return super::locks::apply_checkpoint(self, payload);
        }
        if kind == baton_storage::schedule_records::KIND_SCHEDULE_CHECKPOINT {
            return super::schedules::apply_checkpoint(self, payload);
        }
        if kind != KIND_CHECKPOINT {
            return Err(format!("unknown checkpoint frame kind {kind}"));
        }
        let part: CheckpointPart = records::decode(kind, payload).map_err(|e| e.to_string())?;
        match part {
            CheckpointPart::Start { start_lsn } => self.start_lsn = start_lsn,
            CheckpointPart::Queue {
                name,
                covered_lsn,
                config,
                epoch,
                next_seq,
                next_lease,
                totals,
            } => {
                let name = codec::name(&name)?;
                let header = QueueHeaderSnapshot {
                    name: name.clone(),
                    config: codec::config_from_disk(config)?,
                    epoch,
                    next_seq,
                    next_lease,
                    stats: codec::totals_from_disk(totals),
                };
                let queue = Queue::from_snapshot(header, self.limits).map_err(|e| e.to_string())?;
                self.covered.insert(name.clone(), covered_lsn);
                self.queues.insert(name, queue);
            }
            CheckpointPart::Messages { queue, messages } => {
                let queue = self.checkpointed(&queue)?;
                for message in messages {
                    queue.restore_message(codec::message_from_disk(message)?);
                }
            }
            CheckpointPart::Dedup { queue, entries } => {
                let queue = self.checkpointed(&queue)?;
                for entry in entries {
                    queue.restore_dedup(baton_core::DedupSnapshot {
                        dedup_id: entry.dedup_id.into(),
                        id: MessageId::from_u128(entry.id),
                        seq: entry.seq,
                        expires_at: at(entry.expires_at),
                    });
                }
            }
            CheckpointPart::Meta {
                queue,
                created_at,
                modified_at,
                tags,
                attributes,
            } => {
                let name = codec::name(&queue)?;
                self.metas.insert(
                    name,
                    QueueMeta {
                        created_at: at(created_at),
                        modified_at: at(modified_at),
                        tags: tags.into_iter().collect(),
                        attributes: attributes.into_iter().collect(),
                        push: None,
                    },
                );
            }
            CheckpointPart::Push { queue, push } => {
                let meta = self.metas.entry(codec::name(&queue)?).or_default();
                meta.push = Some(codec::push_from_disk(push));
            }
            CheckpointPart::Archive { queue, records } => {
                let queue = self.checkpointed(&queue)?;
                for record in records {
                    queue.restore_archived(baton_core::ArchivedSnapshot {
                        id: MessageId::from_u128(record.id),
                        finished_at: at(record.finished_at),
                        status: codec::status_from_disk(&record.status)?,
                        history: codec::history_from_disk(record.history)?,
                    });
                }
            }
        }
        Ok(())
    }

    fn checkpointed(&mut self, queue: &str) -> DecodeResult<&mut Queue> {
        let name = codec::name(queue)?;
        self.queues
            .get_mut(&name)
            .ok_or_else(|| format!("checkpoint part for queue {queue} before its header"))
    }

    /// The first LSN the log must be read from.
    pub fn first_log_lsn(&self) -> u64 {
        self.start_lsn + 1
    }

    /// Applies one log record (see the module doc for which records apply).
    pub fn apply_record(&mut self, lsn: u64, kind: u8, payload: &[u8]) -> DecodeResult<()> {
        if kind == baton_storage::topic_records::KIND_TOPIC_OP {
            return super::topics::apply_record(self, lsn, payload);
        }
        if kind == baton_storage::lock_records::KIND_LOCK_OP {
            return super::locks::apply_record(self, lsn, payload);
        }
        if kind == baton_storage::schedule_records::KIND_SCHEDULE_OP {
            return super::schedules::apply_record(self, lsn, payload);
        }
        if kind != KIND_QUEUE_OP {
            return Err(format!("unknown log record kind {kind}"));
        }
        let op: QueueOp = records::decode(kind, payload).map_err(|e| e.to_string())?;
        let queue_name = codec::name(op_queue(&op))?;
        if let QueueOp::AcceptMoved { message, .. } = &op {
            self.pending.remove(&MessageId::from_u128(message.id));
        }
        let applies = match self.covered.get(&queue_name) {
            Some(covered) => lsn > *covered,
            None => lsn > self.start_lsn,
        };
        if !applies {
            return Ok(());
        }
        match op {
            QueueOp::CreateQueue {
                config, epoch, now, ..
            } => {
                let config = codec::config_from_disk(config)?;
                let queue = Queue::new(queue_name.clone(), config, self.limits, epoch)
                    .map_err(|e| e.to_string())?;
                self.covered.remove(&queue_name);
                self.queues.insert(queue_name.clone(), queue);
                let meta = QueueMeta {
                    created_at: at(now),
                    modified_at: at(now),
                    ..QueueMeta::default()
                };
                self.metas.insert(queue_name, meta);
                Ok(())
            }
            QueueOp::DeleteQueue { .. } => {
                self.queues.remove(&queue_name);
                self.metas.remove(&queue_name);
                Ok(())
            }
            op => self.apply_to_queue(&queue_name, op),
        }
    }

    /// Applies an operation on an existing queue (its settings, messages or moves), then takes
    /// the messages it moved out (dead letters) into `pending`.
    fn apply_to_queue(&mut self, queue_name: &QueueName, op: QueueOp) -> DecodeResult<()> {
        let Some(queue) = self.queues.get_mut(queue_name) else {
            // The queue was deleted later in a part of the log the checkpoint covers.
            return Ok(());
        };
        match op {
            QueueOp::CreateQueue { .. } | QueueOp::DeleteQueue { .. } => {
                unreachable!("apply_record creates and deletes queues")
            }
            QueueOp::UpdateQueue { .. } | QueueOp::SetMeta { .. } | QueueOp::SetPush { .. } => {
                let meta = self.metas.entry(queue_name.clone()).or_default();
                replay_meta(queue, meta, queue_name, op)?;
            }
            QueueOp::TakeForMove {
                now,
                seqs,
                destinations,
                ..
            } => take_for_move(queue, &mut self.pending, at(now), seqs, destinations)?,
            QueueOp::AcceptMoved {
                now, message, kind, ..
            } => accept_moved(queue, &mut self.completions, at(now), message, &kind)?,
            QueueOp::Send { now, entries, .. } => {
                let sent = queue.send(at(now), entries_from_disk(entries)?);
                reproduced("send", queue_name, sent.is_ok());
            }
            QueueOp::Receive {
                now,
                max,
                visibility_timeout_ms,
                ..
            } => {
                // Logged only when it leased something.
                let received = queue.receive(at(now), max, visibility_timeout_ms);
                reproduced(
                    "receive",
                    queue_name,
                    matches!(received, Ok(d) if !d.is_empty()),
                );
            }
            QueueOp::Ack { .. } | QueueOp::Nack { .. } | QueueOp::ChangeVisibility { .. } => {
                replay_receipts(queue, &mut self.completions, queue_name, op);
            }
            QueueOp::Advance { now, .. } => {
                queue.advance(at(now));
            }
            QueueOp::Purge { now, .. } => {
                queue.purge(at(now));
            }
            QueueOp::ReleaseLeases { now, .. } => {
                queue.release_all_leases(at(now));
            }
            QueueOp::RecordCallback {
                now,
                id,
                succeeded,
                reason,
                ..
            } => {
                let recorded =
                    queue.record_callback(at(now), MessageId::from_u128(id), succeeded, reason);
                reproduced("callback", queue_name, recorded.is_some());
            }
        }
        self.take_moved(queue_name);
        Ok(())
    }

    /// Takes the messages `queue_name` moved out (dead letters) into `pending`.
    fn take_moved(&mut self, queue_name: &QueueName) {
        let Some(queue) = self.queues.get_mut(queue_name) else {
            return;
        };
        let dead_letter_queue = queue.config().dead_letter.as_ref().map(|d| d.queue.clone());
        for moved in queue.take_moved() {
            let destination = dead_letter_queue
                .clone()
                .unwrap_or_else(|| moved.source.clone());
            self.pending.insert(moved.id, (destination, moved));
        }
    }

    /// The checkpoint's `start_lsn` (0 without a checkpoint).
    pub fn start_lsn(&self) -> u64 {
        self.start_lsn
    }

    /// Applies a send that another `record` (a topic publish, a schedule firing) carries for
    /// `queue_name`, under the same rule as the queue's own records: only above its snapshot's
    /// `covered_lsn`.
    pub fn apply_send(
        &mut self,
        record: &str,
        lsn: u64,
        queue_name: &QueueName,
        now: Timestamp,
        entries: Vec<baton_core::SendEntry>,
    ) {
        let applies = match self.covered.get(queue_name) {
            Some(covered) => lsn > *covered,
            None => lsn > self.start_lsn,
        };
        let Some(queue) = self.queues.get_mut(queue_name).filter(|_| applies) else {
            return;
        };
        let sent = queue.send(now, entries);
        reproduced(record, queue_name, sent.is_ok());
        let dead_letter_queue = queue.config().dead_letter.as_ref().map(|d| d.queue.clone());
        for moved in queue.take_moved() {
            let destination = dead_letter_queue
                .clone()
                .unwrap_or_else(|| moved.source.clone());
            self.pending.insert(moved.id, (destination, moved));
        }
    }

    /// Delivers the moves a crash cut off (see the module doc). Returns them so the engine can
    /// log their arrival.
    pub fn finish_pending(
        &mut self,
        now: Timestamp,
    ) -> Vec<(QueueName, MovedMessage, HistoryEventKind)> {
        let pending = std::mem::take(&mut self.pending);
        let mut delivered = Vec::new();
        for (_, (destination, moved)) in pending {
            let target = if self.queues.contains_key(&destination) {
                destination
            } else {
                moved.source.clone()
            };
            if let Some(queue) = self.queues.get_mut(&target) {
                let kind = if moved.dead_letter_source.as_ref() == Some(&moved.source)
                    && target != moved.source
                {
                    HistoryEventKind::DeadLettered
                } else {
                    HistoryEventKind::Redriven
                };
                if queue.accept_moved(now, moved.clone(), kind) {
                    if kind == HistoryEventKind::DeadLettered {
                        self.completions
                            .extend(crate::Completion::of_dead_letter(&moved, now));
                    }
                    delivered.push((target, moved, kind));
                }
            } else {
                tracing::error!(id = %moved.id, source = %moved.source, "a moved message has neither destination nor source queue left");
            }
        }
        delivered
    }
}

fn op_queue(op: &QueueOp) -> &str {
    match op {
        QueueOp::CreateQueue { name, .. }
        | QueueOp::UpdateQueue { name, .. }
        | QueueOp::DeleteQueue { name, .. } => name,
        QueueOp::Send { queue, .. }
        | QueueOp::Receive { queue, .. }
        | QueueOp::Ack { queue, .. }
        | QueueOp::Nack { queue, .. }
        | QueueOp::ChangeVisibility { queue, .. }
        | QueueOp::Advance { queue, .. }
        | QueueOp::Purge { queue, .. }
        | QueueOp::ReleaseLeases { queue, .. }
        | QueueOp::TakeForMove { queue, .. }
        | QueueOp::AcceptMoved { queue, .. }
        | QueueOp::SetMeta { queue, .. }
        | QueueOp::SetPush { queue, .. }
        | QueueOp::RecordCallback { queue, .. } => queue,
    }
}

/// Re-applies a change of a queue's settings or metadata.
fn replay_meta(
    queue: &mut Queue,
    meta: &mut QueueMeta,
    queue_name: &QueueName,
    op: QueueOp,
) -> DecodeResult<()> {
    match op {
        QueueOp::UpdateQueue { config, now, .. } => {
            let config = codec::config_from_disk(config)?;
            let updated = queue.update_config(config).is_ok();
            reproduced("update", queue_name, updated);
            if updated {
                meta.modified_at = at(now);
            }
        }
        QueueOp::SetMeta {
            now,
            tags,
            attributes,
            ..
        } => set_meta(meta, at(now), tags, attributes),
        QueueOp::SetPush { now, push, .. } => {
            meta.push = push.map(codec::push_from_disk);
            meta.modified_at = at(now);
        }
        _ => unreachable!("only settings and metadata records"),
    }
    Ok(())
}

/// Re-applies acks, nacks and visibility changes; acks' completions go to `completions`.
fn replay_receipts(
    queue: &mut Queue,
    completions: &mut Vec<crate::Completion>,
    queue_name: &QueueName,
    op: QueueOp,
) {
    match op {
        // Acks and visibility changes are replayed by SQS's rule (any receipt issued for
        // the message), which does what the native rule did for the current lease it
        // took, so the log needs no record of which rule applied.
        QueueOp::Ack { now, receipts, .. } => {
            // Logged only for the receipts that finished their message.
            for r in receipts {
                let deleted = queue.delete(at(now), &receipt(r, queue));
                reproduced("ack", queue_name, matches!(deleted, Ok(Some(_))));
                if let Ok(Some(acked)) = deleted {
                    completions.extend(crate::Completion::of_ack(
                        queue_name,
                        &acked,
                        at(now),
                        None,
                    ));
                }
            }
        }
        QueueOp::Nack {
            now,
            receipts,
            delay_ms,
            ..
        } => {
            for r in receipts {
                let nacked = queue.nack(at(now), &receipt(r, queue), delay_ms);
                reproduced("nack", queue_name, nacked.is_ok());
            }
        }
        QueueOp::ChangeVisibility {
            now,
            receipt: r,
            timeout_ms,
            ..
        } => {
            let handle = receipt(r, queue);
            let changed = queue.change_visibility_of_message(at(now), &handle, timeout_ms);
            // Logged only when it changed a lease.
            reproduced(
                "visibility",
                queue_name,
                changed == Ok(baton_core::VisibilityOutcome::Changed),
            );
        }
        _ => unreachable!("only receipt records"),
    }
}

/// Checks that re-applying a `record` record of `queue` did what the live operation did
/// when it logged it (each kind is logged only for what succeeded, so replay must succeed
/// too): an assertion in debug builds and tests, a warning in release builds.
fn reproduced(record: &str, queue: &QueueName, ok: bool) {
    debug_assert!(
        ok,
        "replaying a {record} record of queue {queue} did not reproduce the live operation"
    );
    if !ok {
        tracing::warn!(%queue, record, "replay did not reproduce a live operation");
    }
}

/// One side of a redrive or dead-letter move: the messages taken out wait in `pending` until
/// their destination's record accepts them.
fn take_for_move(
    queue: &mut Queue,
    pending: &mut BTreeMap<MessageId, (QueueName, MovedMessage)>,
    now: Timestamp,
    seqs: Vec<u64>,
    destinations: Vec<String>,
) -> DecodeResult<()> {
    for (seq, destination) in seqs.into_iter().zip(destinations) {
        let destination = codec::name(&destination)?;
        for moved in queue.take_for_move(now, &[seq]) {
            pending.insert(moved.id, (destination.clone(), moved));
        }
    }
    Ok(())
}

/// The other side: a moved message arrives (with its completion when it is a dead letter of a
/// message with `notify`).
fn accept_moved(
    queue: &mut Queue,
    completions: &mut Vec<crate::Completion>,
    now: Timestamp,
    message: baton_storage::records::MovedV1,
    kind: &str,
) -> DecodeResult<()> {
    let moved = codec::moved_from_disk(message)?;
    let kind = codec::history_kind(kind)?;
    let completion = (kind == HistoryEventKind::DeadLettered)
        .then(|| crate::Completion::of_dead_letter(&moved, now))
        .flatten();
    if queue.accept_moved(now, moved, kind) {
        completions.extend(completion);
    }
    Ok(())
}

/// A queue's tags and attributes as a `SetMeta` record left them.
fn set_meta(
    meta: &mut QueueMeta,
    now: Timestamp,
    tags: Vec<(String, String)>,
    attributes: Vec<(String, String)>,
) {
    meta.tags = tags.into_iter().collect();
    meta.attributes = attributes.into_iter().collect();
    meta.modified_at = now;
}

fn entries_from_disk(
    entries: Vec<baton_storage::records::EntryV1>,
) -> DecodeResult<Vec<baton_core::SendEntry>> {
    entries.into_iter().map(codec::entry_from_disk).collect()
}

/// The receipt a logged `ReceiptV1` names, in `queue`'s incarnation.
fn receipt(r: ReceiptV1, queue: &Queue) -> ReceiptHandle {
    ReceiptHandle::from_parts(queue.epoch(), r.seq, r.lease)
}
