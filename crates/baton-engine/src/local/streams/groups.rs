//! Consumer-group operations: create, get, delete, read, ack, pending, claim, seek.

use super::*;

impl LocalEngine {
    pub(in crate::local) async fn stream_create_group(
        &self,
        name: &StreamName,
        group: GroupName,
        config: GroupConfig,
    ) -> Result<(GroupView, bool), StreamEngineError> {
        self.check_ready()?;
        let slot = self.streams.slot(name)?;
        let now = self.clock.now();
        let (view, created, logged) = {
            let mut state = slot.state.lock();
            state.check_live(name)?;
            state.check_writable()?;
            let created = state.stream.create_group(group.clone(), config)?;
            let logged = if created {
                let record = group_to_disk(state.stream.group(&group)?);
                state.log(|| StreamOp::GroupCreated(record))?
            } else {
                None
            };
            (
                Self::group_view(&state.stream, &group, now)?,
                created,
                logged,
            )
        };
        self.wait_logged(logged).await?;
        Ok((view, created))
    }

    pub(in crate::local) async fn stream_get_group(
        &self,
        name: &StreamName,
        group: &GroupName,
    ) -> Result<GroupView, StreamEngineError> {
        self.check_ready()?;
        let slot = self.streams.slot(name)?;
        let state = slot.state.lock();
        state.check_live(name)?;
        Self::group_view(&state.stream, group, self.clock.now())
    }

    pub(in crate::local) async fn stream_delete_group(
        &self,
        name: &StreamName,
        group: &GroupName,
    ) -> Result<(), StreamEngineError> {
        self.check_ready()?;
        let slot = self.streams.slot(name)?;
        let logged = {
            let mut state = slot.state.lock();
            state.check_live(name)?;
            state.check_writable()?;
            state.stream.delete_group(group)?;
            state.log(|| StreamOp::GroupDeleted {
                group: group.to_string(),
            })?
        };
        self.wait_logged(logged).await
    }

    pub(in crate::local) async fn stream_group_read(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        max: u32,
        wait_ms: u64,
    ) -> Result<Vec<GroupRecord>, StreamEngineError> {
        check_max(max)?;
        check_wait(wait_ms)?;
        let started = tokio::time::Instant::now();
        let mut permit = None;
        loop {
            self.check_ready()?;
            let slot = self.streams.slot(name)?;
            let notified = slot.published.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.clock.now();
            let (delivered, logged) = {
                let mut state = slot.state.lock();
                state.check_live(name)?;
                state.check_writable()?;
                let delivered = state.stream.group_read(group, consumer, now, max)?;
                let with_entries: Vec<(Delivered, Entry)> = delivered
                    .iter()
                    .filter_map(|d| state.stream.entry(d.id).map(|e| (*d, *e)))
                    .collect();
                let logged = if delivered.is_empty() {
                    None
                } else {
                    let ids: Vec<RecordId> = delivered.iter().map(|d| d.id).collect();
                    state.log(|| StreamOp::Delivered {
                        group: group.to_string(),
                        consumer: consumer.to_string(),
                        now: now.as_millis(),
                        ids: ids_to_disk(&ids),
                    })?
                };
                (with_entries, logged)
            };
            let waited = started.elapsed();
            let budget = Duration::from_millis(wait_ms);
            if !delivered.is_empty() || waited >= budget || self.shutdown.is_cancelled() {
                self.wait_logged(logged).await?;
                return self.deliveries_to_records(&slot, delivered);
            }
            if permit.is_none() {
                permit = Some(self.acquire_wait_permit()?);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(budget - waited) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
    }

    pub(in crate::local) async fn stream_group_ack(
        &self,
        name: &StreamName,
        group: &GroupName,
        ids: Vec<RecordId>,
    ) -> Result<Vec<Result<(), StreamError>>, StreamEngineError> {
        self.check_ready()?;
        if ids.len() > READ_MAX as usize {
            return Err(StreamError::BatchTooLarge {
                reason: format!("{} ids, at most {READ_MAX} per call", ids.len()),
            }
            .into());
        }
        let slot = self.streams.slot(name)?;
        let (results, logged) = {
            let mut state = slot.state.lock();
            state.check_live(name)?;
            state.check_writable()?;
            let results = state.stream.group_ack(group, &ids)?;
            let acked: Vec<RecordId> = ids
                .iter()
                .zip(&results)
                .filter(|(_, r)| r.is_ok())
                .map(|(id, _)| *id)
                .collect();
            let logged = if acked.is_empty() {
                None
            } else {
                state.log(|| StreamOp::Acked {
                    group: group.to_string(),
                    ids: ids_to_disk(&acked),
                })?
            };
            (results, logged)
        };
        self.wait_logged(logged).await?;
        Ok(results)
    }

    pub(in crate::local) async fn stream_group_pending(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: Option<&ConsumerName>,
        max: usize,
    ) -> Result<PendingView, StreamEngineError> {
        self.check_ready()?;
        let slot = self.streams.slot(name)?;
        let state = slot.state.lock();
        state.check_live(name)?;
        let (count, entries) =
            state
                .stream
                .group(group)?
                .pending(consumer, self.clock.now(), max)?;
        Ok(PendingView { count, entries })
    }

    pub(in crate::local) async fn stream_group_claim(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        min_idle_ms: u64,
        max: u32,
    ) -> Result<Vec<GroupRecord>, StreamEngineError> {
        self.check_ready()?;
        check_max(max)?;
        let slot = self.streams.slot(name)?;
        let now = self.clock.now();
        let (claimed, logged) = {
            let mut state = slot.state.lock();
            state.check_live(name)?;
            state.check_writable()?;
            let claimed = state
                .stream
                .group_claim(group, consumer, now, min_idle_ms, max)?;
            let with_entries: Vec<(Delivered, Entry)> = claimed
                .iter()
                .filter_map(|d| state.stream.entry(d.id).map(|e| (*d, *e)))
                .collect();
            let logged = if claimed.is_empty() {
                None
            } else {
                let ids: Vec<RecordId> = claimed.iter().map(|d| d.id).collect();
                state.log(|| StreamOp::Claimed {
                    group: group.to_string(),
                    consumer: consumer.to_string(),
                    now: now.as_millis(),
                    ids: ids_to_disk(&ids),
                })?
            };
            (with_entries, logged)
        };
        self.wait_logged(logged).await?;
        self.deliveries_to_records(&slot, claimed)
    }

    pub(in crate::local) async fn stream_group_seek(
        &self,
        name: &StreamName,
        group: &GroupName,
        partition: Option<u32>,
        position: StartPosition,
    ) -> Result<GroupView, StreamEngineError> {
        self.check_ready()?;
        let slot = self.streams.slot(name)?;
        let now = self.clock.now();
        let (view, logged) = {
            let mut state = slot.state.lock();
            state.check_live(name)?;
            state.check_writable()?;
            let positions = state.stream.seek(group, partition, position)?;
            let logged = state.log(|| StreamOp::Seeked {
                group: group.to_string(),
                positions,
            })?;
            (Self::group_view(&state.stream, group, now)?, logged)
        };
        self.wait_logged(logged).await?;
        slot.published.notify_waiters();
        Ok(view)
    }
}
