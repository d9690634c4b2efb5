//! Reloading state from disk after the log stopped (a failed or full disk), and checkpoints.

use super::*;

impl LocalEngine {
    /// Rebuilds every queue from disk, then ends all leases (they are not durable) and logs
    /// what recovery itself changed.
    pub(super) fn reload(&self) -> Result<(), EngineError> {
        let result = self.reload_all();
        if result.is_err() && self.recovered_once.load(Ordering::Acquire) {
            // Reads go on from memory; writes are refused until a reopen succeeds.
            self.ready.store(true, Ordering::Release);
        }
        result
    }

    pub(super) fn reload_all(&self) -> Result<(), EngineError> {
        let Some(durable) = &self.durable else {
            return Ok(());
        };
        let mut registry = self.queues.write();
        self.ready.store(false, Ordering::Release);
        let now = self.clock.now();
        let recovered = durable
            .recover(self.config.limits, now)
            .map_err(|e| crate::durable::recovery_error(&e))?;
        for slot in registry.values() {
            slot.visible.notify_waiters();
        }
        registry.clear();
        for (queue, meta) in recovered.queues {
            registry.insert(queue.name().clone(), Slot::new(queue, meta));
        }
        self.topics.write().restore(recovered.topics);
        self.locks.restore(&recovered.locks);
        self.schedules.restore(&recovered.schedules);
        self.recovered_completions
            .lock()
            .extend(recovered.completions);
        self.redo_stream_copies(recovered.stream_copies);
        let mut journal = self.journal();
        for (destination, moved, kind) in &recovered.delivered {
            journal.push(|| QueueOp::AcceptMoved {
                queue: destination.to_string(),
                now: now.as_millis(),
                message: codec::moved_to_disk(moved),
                kind: kind.as_str().to_string(),
            });
        }
        self.submit(journal, Access::Write)?;
        for slot in registry.values() {
            let (released, moved, target) = {
                let mut queue = slot.queue.lock();
                let released = queue.release_all_leases(now);
                // Logged for every queue, released leases or not: the release first applies
                // whatever became due by `now` (a lease that just expired, say), and replay
                // must apply it at this same moment.
                let mut journal = self.journal();
                let name = queue.name().to_string();
                journal.push(|| QueueOp::ReleaseLeases {
                    queue: name,
                    now: now.as_millis(),
                });
                self.submit(journal, Access::Write)?;
                (
                    released,
                    queue.take_moved(),
                    queue.config().dead_letter.as_ref().map(|d| d.queue.clone()),
                )
            };
            if !moved.is_empty() {
                self.deliver_dead_letters(&registry, slot, moved, target, now, Access::Write)?;
            }
            let _ = released;
        }
        tracing::info!(
            n_queues = registry.len(),
            truncated_bytes = recovered.truncated_bytes,
            "storage recovered"
        );
        self.ready.store(true, Ordering::Release);
        self.recovered_once.store(true, Ordering::Release);
        Ok(())
    }

    /// Writes a checkpoint now (the tick does it when the log has grown enough).
    pub fn checkpoint(&self) -> Result<(), EngineError> {
        let Some(durable) = &self.durable else {
            return Ok(());
        };
        self.check_ready()?;
        let registry = self.queues.read();
        let write = || {
            durable.checkpoint(
                registry.values().map(|slot| (&slot.queue, &slot.meta)),
                |last_lsn| {
                    vec![
                        self.topics_checkpoint_part(last_lsn),
                        self.locks_checkpoint_part(last_lsn),
                        self.schedules_checkpoint_part(last_lsn),
                    ]
                },
                || self.topics_in_flight_part(),
            )
        };
        match write() {
            // On a full disk the checkpoint is what frees space (the log it covers): it may
            // have the emergency reserve, which the tick puts back once there is room.
            Err(EngineError::DiskFull { reason }) if durable.space().release_reserve() => {
                tracing::warn!(%reason, "checkpoint found the disk full; retrying with the emergency reserve");
                write()?;
            }
            other => {
                other?;
            }
        }
        Ok(())
    }

    pub(super) fn live_bytes(&self) -> u64 {
        self.queues
            .read()
            .values()
            .map(|slot| slot.queue.lock().live_bytes())
            .sum()
    }

    pub(super) async fn tick_all(&self) {
        if let Some(durable) = &self.durable {
            let space = durable.space();
            space.check();
            if !space.is_low() {
                if let Err(error) = space.restore_reserve() {
                    tracing::warn!(%error, "cannot create the emergency disk reserve");
                }
            }
            if self.recovered_once.load(Ordering::Acquire) && durable.should_reopen() {
                tracing::warn!(failure = ?durable.failure(), "storage failed; reopening from disk");
                if let Err(error) = self.reload() {
                    tracing::warn!(%error, "storage still unavailable");
                }
                return;
            }
        }
        if !self.is_ready() {
            return;
        }
        {
            let registry = self.queues.read();
            for slot in registry.values() {
                let _ = self.run_on(&registry, slot, Access::Read, |_, _, _| ());
            }
        }
        self.stream_tick().await;
        let live_bytes = self.live_bytes();
        self.memory.check(live_bytes);
        if let Some(durable) = &self.durable {
            if durable.checkpoint_due(live_bytes) {
                if let Err(error) = self.checkpoint() {
                    tracing::warn!(%error, "checkpoint failed; the log keeps growing until one succeeds");
                }
            }
        }
    }
}
