//! Sends: the one path every send takes (`send_filtered`: the disk-free alarm for clients, the
//! queue's lock, `Queue::send`, one `QueueOp::Send` record, a wake-up for long polls, the wait
//! for durability), and SQS's per-entry batch (`send_each`) on top of it.

use super::*;

impl LocalEngine {
    /// A send; a client's is refused while the disk-free alarm is on (after the checks that
    /// name the queue, so a wrong name is still told as such).
    pub(super) async fn send_as(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
        producer: Producer,
    ) -> Result<Vec<SendOutcome>, EngineError> {
        let (outcomes, _) = self
            .send_filtered(name, entries, producer, |_, entries| {
                Ok((entries, Vec::new()))
            })
            .await?;
        Ok(outcomes)
    }

    /// SQS batch semantics (`Engine::send_each`).
    pub(super) async fn send_each_as(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<Result<SendOutcome, QueueError>>, EngineError> {
        let n = entries.len();
        let (outcomes, refused) = self
            .send_filtered(name, entries, Producer::Client, |queue, entries| {
                let mut kept = Vec::with_capacity(entries.len());
                let mut refused = Vec::new();
                for (index, entry) in entries.into_iter().enumerate() {
                    match queue.check_message(&entry) {
                        Ok(()) => kept.push(entry),
                        Err(
                            error @ (QueueError::GroupIdRequired { .. }
                            | QueueError::DedupIdRequired { .. }),
                        ) => return Err(error),
                        Err(error) => refused.push((index, error)),
                    }
                }
                Ok((kept, refused))
            })
            .await?;
        let mut results: Vec<Option<Result<SendOutcome, QueueError>>> =
            (0..n).map(|_| None).collect();
        for (index, error) in refused {
            results[index] = Some(Err(error));
        }
        let mut outcomes = outcomes.into_iter();
        let results = results
            .into_iter()
            .filter_map(|slot| slot.or_else(|| outcomes.next().map(Ok)))
            .collect();
        Ok(results)
    }

    /// Sends what `keep` leaves of `entries` (under the queue's lock, so it sees the config
    /// the send uses), returning the outcomes and what `keep` refused; nothing is sent or
    /// logged when it keeps nothing.
    pub(super) async fn send_filtered(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
        producer: Producer,
        keep: impl FnOnce(&Queue, Vec<SendEntry>) -> Result<KeptEntries, QueueError>,
    ) -> Result<(Vec<SendOutcome>, Vec<(usize, QueueError)>), EngineError> {
        self.check_ready()?;
        let (outcomes, lsn) = {
            let registry = self.queues.read();
            let slot = registry.get(name).ok_or_else(|| not_found(name))?;
            if producer == Producer::Client {
                self.check_write_alarms()?;
            }
            let (outcomes, lsn) =
                self.run_on(&registry, slot, Access::Write, |queue, now, journal| {
                    let (entries, refused) = keep(queue, entries)?;
                    if entries.is_empty() && !refused.is_empty() {
                        return Ok((Vec::new(), refused));
                    }
                    let record = journal
                        .enabled
                        .then(|| entries.iter().map(codec::entry_to_disk).collect::<Vec<_>>());
                    let outcomes = queue.send(now, entries)?;
                    if let Some(record) = record {
                        journal.push(|| QueueOp::Send {
                            queue: name.to_string(),
                            now: now.as_millis(),
                            entries: record,
                        });
                    }
                    Ok::<_, EngineError>((outcomes, refused))
                })?;
            let outcomes = outcomes?;
            slot.visible.notify_waiters();
            (outcomes, lsn)
        };
        self.wait(lsn).await?;
        Ok(outcomes)
    }
}
