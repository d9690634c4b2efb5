//! Moves between queues: dead-lettered messages delivered to their dead-letter queue (the
//! source's record first, then `AcceptMoved` in the destination, each under its own queue's
//! lock, never both at once).

use super::*;

impl LocalEngine {
    /// Puts moved messages into `destination` (or back into `source` if it is gone, so that no
    /// message is lost) and logs their arrival.
    pub(super) fn accept_all(
        &self,
        slot: &Slot,
        moved: Vec<MovedMessage>,
        kind: HistoryEventKind,
        now: Timestamp,
        access: Access,
    ) -> Result<Option<u64>, EngineError> {
        let mut queue = slot.queue.lock();
        let mut journal = self.journal();
        let name = queue.name().to_string();
        // What became due by `now` is logged on its own, so it is replayed even when no
        // arrival record follows (a move of an id that is already here changes nothing).
        if queue.advance(now) {
            journal.push(|| QueueOp::Advance {
                queue: name.clone(),
                now: now.as_millis(),
            });
        }
        for message in moved {
            let record = journal.enabled.then(|| codec::moved_to_disk(&message));
            if queue.accept_moved(now, message, kind) {
                if let Some(record) = record {
                    journal.push(|| QueueOp::AcceptMoved {
                        queue: name.clone(),
                        now: now.as_millis(),
                        message: record,
                        kind: kind.as_str().to_string(),
                    });
                }
            }
        }
        let lsn = self.submit(journal, access);
        drop(queue);
        slot.visible.notify_waiters();
        lsn
    }

    pub(super) fn deliver_dead_letters(
        &self,
        registry: &Registry,
        source: &Slot,
        moved: Vec<MovedMessage>,
        target: Option<QueueName>,
        now: Timestamp,
        access: Access,
    ) -> Result<Option<u64>, EngineError> {
        match target.as_ref().and_then(|name| registry.get(name)) {
            Some(dead_letter) => {
                let completions: Vec<Completion> = moved
                    .iter()
                    .filter_map(|message| Completion::of_dead_letter(message, now))
                    .collect();
                let lsn = self.accept_all(
                    dead_letter,
                    moved,
                    HistoryEventKind::DeadLettered,
                    now,
                    access,
                )?;
                // The hook's callback job is logged after the move, so a durable job implies
                // a durable move.
                self.spawn_completions(completions);
                Ok(lsn)
            }
            None => {
                // Unreachable while deletes of dead-letter queues are refused; if it happens,
                // keep the messages rather than lose them.
                tracing::error!(
                    dead_letter_queue = ?target,
                    n_messages = moved.len(),
                    "dead-letter queue missing; messages stay in their source queue"
                );
                self.accept_all(source, moved, HistoryEventKind::Redriven, now, access)
            }
        }
    }

    pub(super) async fn redrive_queue(
        &self,
        name: &QueueName,
        options: RedriveOptions,
    ) -> Result<u64, EngineError> {
        self.check_ready()?;
        let (n_moved, lsn) = {
            let registry = self.queues.read();
            let slot = registry.get(name).ok_or_else(|| not_found(name))?;
            let fifo = slot.queue.lock().is_fifo();
            let kind_of = |queue: &QueueName| registry.get(queue).map(|s| s.queue.lock().is_fifo());
            if let Some(to) = &options.to {
                if to == name {
                    return Err(EngineError::DeadLetterQueueInvalid {
                        reason: "cannot redrive a queue into itself".to_string(),
                    });
                }
                match kind_of(to) {
                    None => return Err(not_found(to)),
                    Some(to_fifo) if to_fifo != fifo => {
                        return Err(EngineError::DeadLetterQueueInvalid {
                            reason: format!("queue {to} is of the other kind (FIFO vs standard)"),
                        })
                    }
                    Some(_) => {}
                }
            }
            // Which origins can take messages back, decided before taking any out.
            let origins: BTreeMap<QueueName, bool> = registry
                .keys()
                .filter(|other| *other != name)
                .map(|other| (other.clone(), kind_of(other) == Some(fifo)))
                .collect();
            let to = options.to.clone();
            let (moved, mut lsn) =
                self.run_on(&registry, slot, Access::Write, |queue, now, journal| {
                    let destination_of = |origin: Option<&QueueName>| -> Option<QueueName> {
                        match (&to, origin) {
                            (Some(to), _) => Some(to.clone()),
                            (None, Some(origin))
                                if origins.get(origin).copied().unwrap_or(false) =>
                            {
                                Some(origin.clone())
                            }
                            (None, _) => None,
                        }
                    };
                    let seqs = queue
                        .redrive_candidates(options.max.unwrap_or(u64::MAX), |origin| {
                            destination_of(origin).is_some()
                        });
                    let moved = queue.take_for_move(now, &seqs);
                    let destinations: Vec<QueueName> = moved
                        .iter()
                        .map(|m| {
                            destination_of(m.dead_letter_source.as_ref())
                                .expect("candidates have a destination")
                        })
                        .collect();
                    if !moved.is_empty() {
                        let names = destinations.iter().map(|d| d.to_string()).collect();
                        journal.push(|| QueueOp::TakeForMove {
                            queue: name.to_string(),
                            now: now.as_millis(),
                            seqs,
                            destinations: names,
                        });
                    }
                    (moved, destinations, now)
                })?;
            let (moved, destinations, now) = moved;
            let n_moved = moved.len() as u64;
            for (message, destination) in moved.into_iter().zip(destinations) {
                let target = registry
                    .get(&destination)
                    .expect("destinations were checked under the same lock");
                let arrived = self.accept_all(
                    target,
                    vec![message],
                    HistoryEventKind::Redriven,
                    now,
                    Access::Write,
                )?;
                lsn = max_lsn(lsn, arrived);
            }
            (n_moved, lsn)
        };
        self.wait(lsn).await?;
        Ok(n_moved)
    }
}
