//! Stream operations: create, get, list, delete, append (with its two halves for topic
//! publishes), read.

use super::*;

impl LocalEngine {
    pub(in crate::local) async fn stream_create(
        &self,
        name: StreamName,
        config: StreamConfig,
    ) -> Result<(StreamView, bool), StreamEngineError> {
        self.check_ready()?;
        config.validate()?;
        let now = self.clock.now();
        let (view, logged) = {
            let mut registry = self.streams.registry.write();
            if let Some(slot) = registry.get(&name) {
                let state = slot.state.lock();
                let differences = state.stream.config().differences(&config);
                if !differences.is_empty() {
                    return Err(StreamError::StreamExists {
                        stream: name.to_string(),
                        differences: differences.join(", "),
                    }
                    .into());
                }
                return Ok((
                    StreamView {
                        name: name.clone(),
                        config: config.clone(),
                        stats: state.stream.stats(now),
                    },
                    false,
                ));
            }
            if registry.len() >= STREAMS_MAX {
                return Err(StreamEngineError::TooManyStreams { limit: STREAMS_MAX });
            }
            let stream = Stream::new(name.clone(), config.clone())?;
            let (bodies, dir, logged) = match self.stream_disk() {
                None => (
                    Bodies::Memory {
                        map: HashMap::new(),
                        next_location: 0,
                    },
                    PathBuf::new(),
                    None,
                ),
                Some(disk) => {
                    let dir = disk.dir.join(name.as_str());
                    disk.fs
                        .create_dir_all(&dir)
                        .map_err(|e| storage(format!("cannot create {}: {e}", dir.display())))?;
                    // Leftovers of a deletion a crash interrupted.
                    remove_segments(disk, &dir)?;
                    let end = LogEnd::empty(1);
                    let wal = Arc::new(open_wal(disk, &dir, &end)?);
                    let mut index = LogIndex {
                        wal: wal.clone(),
                        base_lsn: 1,
                        frame_starts: VecDeque::new(),
                        next_frame_start: 0,
                        segments: vec![1],
                        listed_upto: 0,
                        snapshot_lsn: 1,
                        published_lsn: 0,
                    };
                    let lsn = index.submit(&snapshot(&stream, now))?;
                    (Bodies::Disk(index), dir, Some((wal, lsn)))
                }
            };
            let view = StreamView {
                name: name.clone(),
                config,
                stats: stream.stats(now),
            };
            registry.insert(
                name,
                Arc::new(Slot {
                    state: Mutex::new(State {
                        stream,
                        bodies,
                        deleted: false,
                    }),
                    published: Notify::new(),
                    dir,
                }),
            );
            (view, logged)
        };
        self.wait_logged(logged).await?;
        Ok((view, true))
    }

    pub(in crate::local) async fn stream_get(
        &self,
        name: &StreamName,
    ) -> Result<StreamView, StreamEngineError> {
        self.check_ready()?;
        let slot = self.streams.slot(name)?;
        let state = slot.state.lock();
        state.check_live(name)?;
        Ok(StreamView {
            name: name.clone(),
            config: state.stream.config().clone(),
            stats: state.stream.stats(self.clock.now()),
        })
    }

    pub(in crate::local) async fn stream_list(&self) -> Result<Vec<StreamView>, StreamEngineError> {
        self.check_ready()?;
        let now = self.clock.now();
        let registry = self.streams.registry.read();
        Ok(registry
            .iter()
            .map(|(name, slot)| {
                let state = slot.state.lock();
                StreamView {
                    name: name.clone(),
                    config: state.stream.config().clone(),
                    stats: state.stream.stats(now),
                }
            })
            .collect())
    }

    pub(in crate::local) async fn stream_delete(
        &self,
        name: &StreamName,
    ) -> Result<(), StreamEngineError> {
        self.check_ready()?;
        let (slot, logged) = {
            let mut registry = self.streams.registry.write();
            let slot = registry.get(name).cloned().ok_or_else(|| not_found(name))?;
            let logged = {
                let mut state = slot.state.lock();
                state.check_writable()?;
                let logged = state.log(|| StreamOp::Deleted)?;
                state.deleted = true;
                logged
            };
            registry.remove(name);
            (slot, logged)
        };
        slot.published.notify_waiters();
        self.wait_logged(logged).await?;
        let wal = {
            let mut state = slot.state.lock();
            match std::mem::replace(
                &mut state.bodies,
                Bodies::Memory {
                    map: HashMap::new(),
                    next_location: 0,
                },
            ) {
                Bodies::Disk(index) => Some(index.wal),
                Bodies::Memory { .. } => None,
            }
        };
        if let (Some(wal), Some(disk)) = (wal, self.stream_disk()) {
            // Closing joins the log's writer thread: off the async workers.
            let _ = tokio::task::spawn_blocking(move || drop(wal)).await;
            remove_segments(disk, &slot.dir)?;
        }
        Ok(())
    }

    pub(in crate::local) async fn stream_append(
        &self,
        name: &StreamName,
        producer: Option<ProducerSeq>,
        records: Vec<NewRecord>,
    ) -> Result<Vec<Appended>, StreamEngineError> {
        self.check_ready()?;
        self.streams.slot(name)?;
        self.check_write_alarms()?;
        let submitted = self.stream_append_submit(name, producer, records)?;
        self.stream_append_finish(&submitted).await?;
        Ok(submitted.appended)
    }

    /// The synchronous half of an append: checks, applies to the core and submits the frames
    /// under the stream's lock. The records are neither durable nor visible until
    /// `stream_append_finish`. A duplicate (idempotent producer) submits nothing.
    pub(in crate::local) fn stream_append_submit(
        &self,
        name: &StreamName,
        producer: Option<ProducerSeq>,
        records: Vec<NewRecord>,
    ) -> Result<SubmittedAppend, StreamEngineError> {
        check_records(&records)?;
        let slot = self.streams.slot(name)?;
        let specs: Vec<AppendSpec> = records
            .iter()
            .map(|r| AppendSpec {
                key: r.key.as_ref().map(|k| k.as_bytes().to_vec()),
                partition: r.partition,
                size_bytes: r.size_bytes(),
            })
            .collect();
        let now = self.clock.now();
        let (appended, logged) = {
            let mut state = slot.state.lock();
            state.check_live(name)?;
            state.check_writable()?;
            let State { stream, bodies, .. } = &mut *state;
            let base = match bodies {
                Bodies::Memory { next_location, .. } => *next_location,
                Bodies::Disk(index) => index.next_lsn(),
            };
            let outcome = stream.append(now, producer.as_ref(), &specs, |i, _| base + i as u64)?;
            let appended = match outcome {
                AppendOutcome::Duplicate(answer) => {
                    drop(state);
                    return Ok(SubmittedAppend {
                        slot,
                        appended: answer,
                        logged: None,
                    });
                }
                AppendOutcome::Appended(appended) => appended,
            };
            let batch_len = records.len() as u32;
            let logged = match bodies {
                Bodies::Memory { map, next_location } => {
                    for (i, record) in records.into_iter().enumerate() {
                        map.insert(
                            base + i as u64,
                            Arc::new(Body {
                                key: record.key,
                                value: record.value,
                                headers: record.headers,
                            }),
                        );
                    }
                    *next_location = base + u64::from(batch_len);
                    stream.publish_all();
                    None
                }
                Bodies::Disk(index) => {
                    let mut last = 0;
                    for (i, (record, at)) in records.into_iter().zip(&appended).enumerate() {
                        last = index.submit(&StreamOp::Record(StreamRecordV1 {
                            partition: at.partition,
                            offset: at.offset,
                            timestamp: at.timestamp.as_millis(),
                            key: record.key,
                            value: record.value,
                            headers: record.headers,
                            producer: producer.as_ref().map(|p| (p.producer.clone(), p.sequence)),
                            batch_index: i as u32,
                            batch_len,
                            now: now.as_millis(),
                        }))?;
                    }
                    Some((index.wal.clone(), last))
                }
            };
            (appended, logged)
        };
        Ok(SubmittedAppend {
            slot,
            appended,
            logged,
        })
    }

    /// Whether a stream of this name exists (a topic subscription's target must).
    pub(in crate::local) fn streams_contains(
        &self,
        name: &StreamName,
    ) -> Result<(), StreamEngineError> {
        self.streams.slot(name)?.state.lock().check_live(name)
    }

    /// Checks that `records` could be appended to `name` now (the stream exists, its log
    /// works, sizes and headers fit), without changing anything. A topic publish checks its
    /// stream copies with this before it logs anything.
    pub(in crate::local) fn stream_check_append(
        &self,
        name: &StreamName,
        records: &[NewRecord],
    ) -> Result<(), StreamEngineError> {
        check_records(records)?;
        let slot = self.streams.slot(name)?;
        let specs: Vec<AppendSpec> = records
            .iter()
            .map(|r| AppendSpec {
                key: r.key.as_ref().map(|k| k.as_bytes().to_vec()),
                partition: r.partition,
                size_bytes: r.size_bytes(),
            })
            .collect();
        let state = slot.state.lock();
        state.check_live(name)?;
        state.check_writable()?;
        state.stream.check_append(&specs)?;
        Ok(())
    }

    /// Waits until a submitted append is durable, then makes its records visible.
    pub(in crate::local) async fn stream_append_finish(
        &self,
        submitted: &SubmittedAppend,
    ) -> Result<(), StreamEngineError> {
        let slot = &submitted.slot;
        if let Some((_, lsn)) = &submitted.logged {
            let lsn = *lsn;
            self.wait_logged(submitted.logged.clone()).await?;
            let mut state = slot.state.lock();
            state.stream.publish_upto(lsn);
            if let Bodies::Disk(index) = &mut state.bodies {
                index.published_lsn = index.published_lsn.max(lsn);
            }
        }
        slot.published.notify_waiters();
        Ok(())
    }

    pub(in crate::local) async fn stream_read(
        &self,
        name: &StreamName,
        partition: u32,
        from: ReadFrom,
        max: u32,
        wait_ms: u64,
    ) -> Result<StreamRead, StreamEngineError> {
        check_max(max)?;
        check_wait(wait_ms)?;
        let started = tokio::time::Instant::now();
        let mut permit = None;
        let mut from = from;
        loop {
            self.check_ready()?;
            let slot = self.streams.slot(name)?;
            let notified = slot.published.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (records, next_offset) = {
                let state = slot.state.lock();
                state.check_live(name)?;
                state.stream.read(partition, from, max)?
            };
            let waited = started.elapsed();
            let budget = Duration::from_millis(wait_ms);
            if !records.is_empty() || waited >= budget || self.shutdown.is_cancelled() {
                let ids: Vec<(RecordId, Entry)> = records
                    .into_iter()
                    .map(|(offset, e)| (RecordId { partition, offset }, e))
                    .collect();
                let wanted: Vec<u64> = ids.iter().map(|(id, _)| id.offset).collect();
                let records = self.load_bodies(&slot, ids)?;
                // Retention may have deleted some bodies meanwhile: continue after the last
                // one returned, so the caller's next read reports what is gone.
                let next_offset = if records.len() < wanted.len() {
                    records.last().map_or_else(
                        || wanted.first().copied().unwrap_or(next_offset),
                        |r| r.offset + 1,
                    )
                } else {
                    next_offset
                };
                return Ok(StreamRead {
                    records,
                    next_offset,
                });
            }
            // Later rounds continue from where this one ended (a time maps to an offset once).
            from = ReadFrom::Offset(next_offset);
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
}
