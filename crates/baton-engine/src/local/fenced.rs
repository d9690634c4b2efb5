//! Fenced sends: a send that carries a lock's token and is refused unless that token is the
//! lock's live hold.
//!
//! The check runs under the target queue's lock, in the same critical section that enqueues
//! the batch (the lock table's mutex is taken inside it; the table never takes a queue lock,
//! so the order cannot deadlock). So a fenced send is ordered before any send of a later
//! holder to that queue: a holder that paused past its lease and comes back with an old token
//! is refused, even when it checked the lock just before the pause.

use baton_core::lock::{FencingToken, LockName};
use baton_core::{QueueName, SendEntry, SendOutcome};
use baton_storage::records::QueueOp;

use super::{not_found, Access, LocalEngine};
use crate::durable::codec;
use crate::locks::LockEngineError;

impl LocalEngine {
    pub(crate) async fn send_fenced_impl(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
        lock: &LockName,
        token: FencingToken,
    ) -> Result<Vec<SendOutcome>, LockEngineError> {
        self.check_ready()?;
        let (outcomes, lsn) = {
            let registry = self.queues.read();
            let slot = registry.get(name).ok_or_else(|| not_found(name))?;
            self.check_disk()?;
            let (outcomes, lsn) =
                self.run_on(&registry, slot, Access::Write, |queue, now, journal| {
                    let current = self.locks.current_token(now, lock);
                    if current != Some(token) {
                        return Err(LockEngineError::Fenced {
                            lock: lock.to_string(),
                            token: token.get(),
                            current: current.map(FencingToken::get),
                        });
                    }
                    let record = journal
                        .enabled
                        .then(|| entries.iter().map(codec::entry_to_disk).collect::<Vec<_>>());
                    let outcomes = queue.send(now, entries).map_err(crate::EngineError::from)?;
                    if let Some(record) = record {
                        journal.push(|| QueueOp::Send {
                            queue: name.to_string(),
                            now: now.as_millis(),
                            entries: record,
                        });
                    }
                    Ok(outcomes)
                })?;
            let outcomes = outcomes?;
            slot.visible.notify_waiters();
            (outcomes, lsn)
        };
        self.wait(lsn).await?;
        Ok(outcomes)
    }
}
