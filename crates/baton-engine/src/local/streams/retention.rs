//! The streams' tick: reopening stopped logs, retention, and deleting segments no retained
//! record needs.

use super::*;

impl LocalEngine {
    /// Retention for every stream: trims the index under each stream's lock, then (durable)
    /// writes a snapshot if group operations would otherwise be lost, and deletes the
    /// segments no retained record needs once that snapshot is durable.
    pub(in crate::local) async fn stream_tick(&self) {
        self.reopen_failed_streams();
        let now = self.clock.now();
        let slots: Vec<Arc<Slot>> = self.streams.registry.read().values().cloned().collect();
        for slot in slots {
            if let Err(error) = self.retain(&slot, now).await {
                tracing::warn!(%error, dir = %slot.dir.display(), "stream retention failed; it is retried on the next tick");
            }
        }
    }

    /// Reloads from disk every stream whose log stopped (a full or failing disk), at most once
    /// a second: what was applied in memory but never logged is dropped, what is on disk comes
    /// back, and the stream accepts writes again once its log works.
    fn reopen_failed_streams(&self) {
        let Some(disk) = self.stream_disk() else {
            return;
        };
        let failed: Vec<(StreamName, Arc<Slot>)> = self
            .streams
            .registry
            .read()
            .iter()
            .filter(|(_, slot)| slot.state.lock().log_failed())
            .map(|(name, slot)| (name.clone(), slot.clone()))
            .collect();
        if failed.is_empty() {
            return;
        }
        {
            let mut last = self.streams.last_reopen.lock();
            if last.is_some_and(|at| at.elapsed() < REOPEN_INTERVAL) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        for (name, slot) in failed {
            let mut state = slot.state.lock();
            if state.deleted || !state.log_failed() {
                continue;
            }
            match recover_stream_state(disk, &name, &slot.dir) {
                Ok(Some(recovered)) => {
                    tracing::info!(stream = %name, "stream log reopened");
                    *state = recovered;
                }
                Ok(None) => state.deleted = true,
                Err(error) => {
                    tracing::warn!(stream = %name, %error, "stream log still unavailable");
                    continue;
                }
            }
            drop(state);
            slot.published.notify_waiters();
        }
    }

    async fn retain(&self, slot: &Slot, now: Timestamp) -> Result<(), StreamEngineError> {
        let (boundary, logged) = {
            let mut state = slot.state.lock();
            if state.deleted {
                return Ok(());
            }
            let State { stream, bodies, .. } = &mut *state;
            let (removed, moved) = stream.enforce_retention(now);
            let min_needed = stream.min_location();
            match bodies {
                Bodies::Memory { map, .. } => {
                    for entry in removed {
                        map.remove(&entry.location);
                    }
                    return Ok(());
                }
                Bodies::Disk(index) => {
                    if index.wal.failure().is_some() {
                        return Ok(());
                    }
                    if !moved.is_empty() {
                        index.submit(&StreamOp::Trimmed { firsts: moved })?;
                    }
                    let Some(disk) = self.stream_disk() else {
                        return Ok(());
                    };
                    if let Ok(segments) = wal::list_segments(disk.fs.as_ref(), &slot.dir) {
                        index.segments = segments.into_iter().map(|(first, _)| first).collect();
                        index.listed_upto = index.published_lsn;
                    }
                    let min_needed = min_needed.unwrap_or_else(|| index.next_lsn());
                    // The newest segment start at or below `min_needed`: everything before
                    // it can go (the active, last segment never does).
                    let boundary = index
                        .segments
                        .iter()
                        .copied()
                        .filter(|first| *first <= min_needed && *first > index.base_lsn)
                        .max();
                    let Some(boundary) = boundary else {
                        return Ok(());
                    };
                    let lsn = if index.snapshot_lsn < boundary {
                        let lsn = index.submit(&snapshot(stream, now))?;
                        index.snapshot_lsn = lsn;
                        lsn
                    } else {
                        index.next_lsn().saturating_sub(1)
                    };
                    (boundary, (index.wal.clone(), lsn))
                }
            }
        };
        self.wait_logged(Some(logged)).await?;
        let removable: Vec<u64> = {
            let mut state = slot.state.lock();
            let Bodies::Disk(index) = &mut state.bodies else {
                return Ok(());
            };
            let removable: Vec<u64> = index
                .segments
                .iter()
                .copied()
                .filter(|first| *first < boundary)
                .collect();
            index.segments.retain(|first| *first >= boundary);
            while index.base_lsn < boundary && !index.frame_starts.is_empty() {
                index.frame_starts.pop_front();
                index.base_lsn += 1;
            }
            removable
        };
        let Some(disk) = self.stream_disk() else {
            return Ok(());
        };
        for first in removable {
            let path = slot.dir.join(wal::segment_name(first));
            disk.fs
                .remove(&path)
                .map_err(|e| storage(format!("cannot remove {}: {e}", path.display())))?;
        }
        disk.fs
            .sync_dir(&slot.dir)
            .map_err(|e| storage(format!("cannot sync {}: {e}", slot.dir.display())))?;
        Ok(())
    }
}
